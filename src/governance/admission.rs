//! Admission and settlement: the budget and rate-limit stage of every inference request.
//!
//! [`Enforcer::admit`] runs once the model is known, before any provider is contacted:
//! 1. rate limits of the key, user, team and project (all counted or none; 429 with
//!    `Retry-After` otherwise);
//! 2. budgets of the same scopes: the request's worst case (input estimate plus
//!    `max_tokens`, at the highest price among its targets) is reserved on every budget
//!    that applies, all or nothing. A budget is open while `spent + reserved < limit`, so
//!    spend can pass a budget by at most one request's worst case, whatever the concurrency.
//!    A spent budget blocks (429 naming it, `Retry-After` at its period's end) or, with
//!    `on_exhausted = { route_to }`, sends the request to that target instead.
//!
//! Provider budgets are reserved per attempt by the fallback loop ([`Admission::provider`]),
//! once per request and provider however often the route names it; a spent provider is
//! skipped, and only the provider that served is charged (RELIABILITY 3: no double count).
//! The returned [`Admission`] travels with the request and is settled exactly once when the
//! request ends (reply sent, stream finished or cut, client gone, failure): the reservations
//! become the actual cost, rate-limit leases are released, the usage record is written and
//! the 50/80/100 % alerts go out. Dropping an unsettled admission settles it as a failure
//! with no usage, so nothing stays reserved.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::Clock;
use super::alerts::Alerts;
use super::budget::{self, Line, Scope, ScopeKind};
use super::directory::Directory;
use super::ledger::{self, Ledger};
use super::limits::{self, Check, Hold, Limiter};
use super::recorder::Recorder;
use crate::config::{BudgetUnit, Config, OnExhausted, Policy, Target};
use crate::error::{ErrorKind, GatewayError};
use crate::governance::Principal;
use crate::pricing::PriceTable;
use crate::schema::Usage;
pub use crate::traces::AttemptNote;

/// Output tokens assumed for the worst case when a request sets no `max_tokens`.
pub const DEFAULT_MAX_OUTPUT: u64 = 16_384;

/// The budget and rate-limit machinery shared by every request.
pub struct Enforcer {
    pub(super) ledger: Ledger,
    pub(super) limiter: Limiter,
    pub(super) recorder: Recorder,
    pub(super) alerts: Alerts,
    pub(super) clock: Clock,
    /// Where request traces go (`[traces]`).
    traces: Option<crate::traces::export::Exporter>,
    /// Settlements under way (spawned, not finished).
    settling: AtomicU64,
}

/// What the caller asks for, as far as admission cares.
pub struct Ask<'a> {
    pub model: &'a str,
    pub input_tokens: u64,
    /// Per choice; `None`: the request sets no limit ([`DEFAULT_MAX_OUTPUT`] is assumed).
    /// Each served model's output ceiling clamps it, as the attempt does.
    pub max_output: Option<u64>,
    /// How many choices the request asks for (OpenAI `n`), each up to `max_output`.
    pub choices: u64,
    /// Embeddings produce no output tokens.
    pub has_output: bool,
    /// The request's route, resolved once before admission: the models that may serve it
    /// (each reserving no more output than it can produce), and whether a
    /// `budget_exhausted` rule serves it once a budget is spent.
    pub route: &'a crate::routing::Query<'a>,
    pub tags: Vec<String>,
    pub end_user: Option<String>,
    /// The client's schema, for the request log.
    pub schema: &'static str,
}

mod settlement;
mod shadow;
use settlement::Settlement;
pub use shadow::Shadow;

/// How the request ended, for its settlement.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub provider: Option<String>,
    pub model: Option<String>,
    pub usage: Usage,
    pub status: &'static str,
    /// A stream's delivered text, to charge what the provider's usage does not say.
    pub delivered: Option<Delivered>,
    /// The reply's text, kept in the record of a mirrored request and of its shadow.
    pub output: Option<String>,
    /// What the request log keeps besides usage.
    pub report: Report,
    /// The bodies the record may keep.
    pub bodies: Option<Arc<crate::bodies::Capture>>,
}

/// How a request ended, for the request log.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The HTTP status the client got; 0 when it left before the reply.
    pub http_status: u16,
    /// Why it failed: the error's code and message.
    pub error: Option<(&'static str, String)>,
    /// Milliseconds from admission to the reply's first byte.
    pub ttft_ms: Option<u64>,
    /// `x-gatehouse-warnings`.
    pub warnings: Option<String>,
}

impl Report {
    /// The report of a request that failed with `e`.
    pub fn failed(e: &GatewayError) -> Self {
        Self {
            http_status: e.status().as_u16(),
            error: Some((e.label(), e.message.clone())),
            ..Self::default()
        }
    }
}

/// What a stream sent the client: its text (up to a cap), the text's full size, and how
/// many content events carried it.
#[derive(Debug, Clone, Default)]
pub struct Delivered {
    pub text: String,
    pub bytes: u64,
    pub content_events: u64,
}

impl Delivered {
    /// [`Self::output_tokens`] when there is nothing to count: with no text kept (a stream
    /// relayed raw), a token per content event. `None` when the text goes to the counting
    /// thread.
    pub fn without_counting(&self) -> Option<u64> {
        self.text.is_empty().then_some(self.content_events)
    }

    /// Output tokens at least as many as were delivered: the text counted with o200k_base
    /// (extrapolated past the cap), plus 20 % for other vendors' tokenizers, and at least one
    /// token per content event. Counted on the gateway's counting thread; when that thread is
    /// behind (a flood of streams without usage), a token per three bytes delivered, the
    /// request path's own over-estimate.
    pub async fn output_tokens(self) -> u64 {
        if let Some(tokens) = self.without_counting() {
            return tokens;
        }
        let (bytes, kept, events) = (self.bytes, self.text.len() as u64, self.content_events);
        let tokens = match crate::tokens::count_text_queued(self.text).await {
            Some(counted) => {
                crate::metrics::output_estimate("tokenizer");
                (counted * bytes / kept * 6).div_ceil(5)
            }
            None => {
                crate::metrics::output_estimate("bytes");
                bytes.div_ceil(3)
            }
        };
        tokens.max(events)
    }
}

/// One admitted request's reservations and leases, settled once.
pub struct Admission {
    enforcer: Arc<Enforcer>,
    pricing: Arc<PriceTable>,
    ticket: Ticket,
    /// Output tokens asked for, per choice (0: the request produces none).
    asked_output: u64,
    choices: u64,
    /// The most output tokens any of the request's candidate models can produce (each
    /// ceiling applied), all choices together: what caller-wide reservations count.
    max_output: u64,
    /// A spent budget sends the request here instead.
    pub route_to: Option<Target>,
    /// The scopes whose spent budgets a `budget_exhausted` routing rule serves (instead of
    /// refusing the request).
    pub spent: Vec<ScopeKind>,
    settled: bool,
}

/// What a settlement needs of its admission.
#[derive(Default)]
struct Ticket {
    request_id: String,
    created_at: i64,
    principal: Option<Arc<Principal>>,
    requested_model: String,
    tags: Vec<String>,
    end_user: Option<String>,
    /// Caller budgets reserved on.
    lines: Vec<Line>,
    /// Provider budgets reserved on by attempts.
    provider_lines: Vec<Line>,
    hold: Option<Hold>,
    /// Input tokens estimated at admission.
    input_tokens: u64,
    /// How routing served it, for the usage record.
    route: Option<RouteNote>,
    /// A mirror's shadow request: the primary's id and the mirroring rule.
    mirror_of: Option<(String, String)>,
    started: Option<tokio::time::Instant>,
    /// The client's schema.
    schema: &'static str,
    /// The request's trace, when it is traced.
    trace: Option<crate::traces::TraceIds>,
}

/// The routing decision of a request, kept in its usage record.
#[derive(Debug, Clone, Default)]
pub struct RouteNote {
    /// The rule's name (`None`: no rule, the model named its provider).
    pub rule: Option<String>,
    /// Served, but not by the route's first choice.
    pub fallback: bool,
    /// Every attempt, written to the record as JSON by the settlement (off the request path).
    pub attempts: Vec<AttemptNote>,
}

impl Enforcer {
    pub fn new(
        ledger: Ledger,
        limiter: Limiter,
        recorder: Recorder,
        alerts: Alerts,
        clock: Clock,
        traces: Option<crate::traces::export::Exporter>,
    ) -> Self {
        Self {
            ledger,
            limiter,
            recorder,
            alerts,
            clock,
            traces,
            settling: AtomicU64::new(0),
        }
    }

    /// Wait until every settlement and usage record is written (at most `limit`).
    pub async fn flush(&self, limit: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        crate::drained(&self.settling, deadline).await
            && self.recorder.flush(deadline).await
            && match &self.traces {
                Some(t) => t.flush(deadline).await,
                None => true,
            }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Request records dropped because the log queue was full, and those still waiting.
    pub fn log_queue(&self) -> (u64, u64) {
        (self.recorder.dropped(), self.recorder.pending())
    }

    /// Admit a request, or refuse it with 429 (limit or budget) or 503 (budgets cannot be
    /// checked).
    pub async fn admit(
        self: &Arc<Self>,
        config: &Config,
        directory: &Directory,
        principal: Option<Arc<Principal>>,
        request_id: &str,
        mut ask: Ask<'_>,
    ) -> Result<Admission, GatewayError> {
        let now_ms = self.clock.now_ms();
        let now = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
        let asked_output = if ask.has_output {
            ask.max_output.unwrap_or(DEFAULT_MAX_OUTPUT)
        } else {
            0
        };
        let choices = ask.choices.max(1);
        let mut adm = Admission {
            enforcer: Arc::clone(self),
            pricing: Arc::clone(&config.pricing),
            ticket: Ticket {
                request_id: request_id.to_owned(),
                created_at: now,
                principal: principal.clone(),
                requested_model: ask.model.to_owned(),
                tags: std::mem::take(&mut ask.tags),
                end_user: ask.end_user.take(),
                input_tokens: ask.input_tokens,
                started: Some(tokio::time::Instant::now()),
                schema: ask.schema,
                ..Ticket::default()
            },
            asked_output,
            choices,
            max_output: asked_output.saturating_mul(choices),
            route_to: None,
            spent: Vec::new(),
            settled: false,
        };
        let Some(p) = principal.as_deref() else {
            return Ok(adm);
        };
        let scopes = budget::caller_scopes(p, directory);
        if scopes.is_empty() {
            return Ok(adm);
        }
        // The models that may serve it, each reserving no more output than it can produce:
        // asked only when output counts (a token limit or any budget), as routing is walked.
        let counts_output = scopes
            .iter()
            .any(|(_, p)| p.rate_limit.tpm.is_some() || !p.budgets.is_empty());
        let candidates: &[crate::routing::Candidate] = if counts_output {
            ask.route.candidates()
        } else {
            &[]
        };
        if let Some(most) = candidates.iter().map(|c| adm.max_output_on(&c.model)).max() {
            adm.max_output = most;
        }
        let worst_tokens = ask.input_tokens.saturating_add(adm.max_output);

        // 1. Rate limits.
        if budget::any_rate_limit(&scopes) {
            self.hold_rate_limits(&mut adm, &scopes, request_id, worst_tokens, now_ms)
                .await?;
        }
        // 2. Budgets.
        self.reserve_budgets(
            &mut adm,
            &scopes,
            candidates,
            &ask,
            request_id,
            worst_tokens,
            now,
        )
        .await?;
        Ok(adm)
    }

    /// Take a lease on every rate limit of the caller's scopes, or refuse (429).
    async fn hold_rate_limits(
        &self,
        adm: &mut Admission,
        scopes: &[(Scope, &Policy)],
        request_id: &str,
        worst_tokens: u64,
        now_ms: u64,
    ) -> Result<(), GatewayError> {
        let mut checks = Vec::new();
        for (scope, policy) in scopes {
            let r = policy.rate_limit;
            let label = format!("{} `{}`", scope.kind.as_str(), scope.label);
            let mut push = |kind, limit: Option<u64>, cost| {
                if let Some(limit) = limit {
                    checks.push(Check {
                        kind,
                        scope: scope.id(),
                        label: label.clone(),
                        limit,
                        cost,
                    });
                }
            };
            push(limits::Kind::Rpm, r.rpm, 1);
            push(limits::Kind::Tpm, r.tpm, worst_tokens);
            push(limits::Kind::Concurrent, r.concurrent, 1);
        }
        match self.limiter.acquire(request_id, checks, now_ms).await {
            Ok(hold) => adm.ticket.hold = Some(hold),
            Err(refusal) => {
                adm.discard();
                let mut e = GatewayError::new(ErrorKind::RateLimited, refusal.message);
                e.retry_after = Some(refusal.retry_after);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Reserve the request's worst case on every budget of the caller's scopes. A spent
    /// budget routes the request to its fallback target, lets a `budget_exhausted` rule
    /// serve it, or refuses it (429); budgets that cannot be checked refuse it (503).
    #[expect(
        clippy::too_many_arguments,
        reason = "the admission's facts, each used once"
    )]
    async fn reserve_budgets(
        &self,
        adm: &mut Admission,
        scopes: &[(Scope, &Policy)],
        candidates: &[crate::routing::Candidate],
        ask: &Ask<'_>,
        request_id: &str,
        worst_tokens: u64,
        now: i64,
    ) -> Result<(), GatewayError> {
        let any_usd = scopes
            .iter()
            .any(|(_, p)| p.budgets.iter().any(|b| b.unit == BudgetUnit::Usd));
        let worst_cost = if any_usd {
            candidates
                .iter()
                .map(|c| adm.worst_cost(&c.model))
                .max()
                .unwrap_or(0)
        } else {
            0
        };
        let mut lines: Vec<Line> = scopes
            .iter()
            .flat_map(|(scope, policy)| {
                policy
                    .budgets
                    .iter()
                    .map(move |b| Line::reserving(scope, b, now, worst_cost, worst_tokens))
            })
            .collect();
        ledger::sort(&mut lines);
        loop {
            match self.ledger.reserve(request_id, &lines, now).await {
                Ok(None) => break,
                Ok(Some(i)) => {
                    let spent = lines.remove(i);
                    match &spent.budget.on_exhausted {
                        OnExhausted::RouteTo(t)
                            if adm.route_to.is_none() || adm.route_to.as_ref() == Some(t) =>
                        {
                            tracing::info!(request_id, budget = %spent.describe(), target = %format!("{}/{}", t.provider, t.model.as_deref().unwrap_or(ask.model)), "budget spent; routing to its fallback target");
                            adm.route_to = Some(t.clone());
                        }
                        OnExhausted::Block
                            if ask.route.serves_exhausted(
                                &[adm.spent.as_slice(), &[spent.scope.kind]]
                                    .concat()
                                    .iter()
                                    .filter_map(|k| k.budget_of())
                                    .collect::<Vec<_>>(),
                            ) =>
                        {
                            tracing::info!(request_id, budget = %spent.describe(), "budget spent; served by a budget_exhausted route");
                            adm.spent.push(spent.scope.kind);
                        }
                        _ => {
                            let mut e = GatewayError::new(
                                ErrorKind::BudgetExhausted,
                                format!(
                                    "budget exceeded: the {} is spent for this period; it resets in {}",
                                    spent.describe(),
                                    human_duration(spent.window.seconds_left(now))
                                ),
                            );
                            e.retry_after = Some(spent.window.seconds_left(now));
                            adm.discard();
                            return Err(e);
                        }
                    }
                }
                Err(e) => {
                    adm.discard();
                    tracing::error!(request_id, error = %e, "budgets cannot be checked; refusing (fail closed)");
                    return Err(GatewayError::new(
                        ErrorKind::BudgetUnavailable,
                        "budgets cannot be checked right now (their counters are unreachable); try again shortly",
                    )
                    .with_retry_after(1));
                }
            }
        }
        adm.ticket.lines = lines;
        Ok(())
    }
}

/// `3h 12m`, `45s`.
fn human_duration(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

impl Admission {
    /// Note how routing served this request, for its usage record.
    pub fn note_route(&mut self, note: RouteNote) {
        self.ticket.route = Some(note);
    }

    /// Trace this request with `ids` (its spans are built when it settles).
    pub fn trace(&mut self, ids: Option<crate::traces::TraceIds>) {
        self.ticket.trace = ids;
    }

    /// The id of the request this admission belongs to.
    pub fn request_id(&self) -> &str {
        &self.ticket.request_id
    }

    /// The request's worst-case cost on `model` (0 for a model with no price).
    fn worst_cost(&self, model: &str) -> u64 {
        self.pricing.lookup(model).map_or(0, |p| {
            crate::pricing::worst_case_nanos(p, self.ticket.input_tokens, self.max_output_on(model))
        })
    }

    /// The most output tokens the request can produce on `model`: what it asks for per
    /// choice, clamped to the model's output ceiling (as the attempt clamps what it
    /// sends), times its choices.
    fn max_output_on(&self, model: &str) -> u64 {
        let per_choice = self
            .pricing
            .max_output_tokens(model)
            .map_or(self.asked_output, |ceiling| ceiling.min(self.asked_output));
        per_choice.saturating_mul(self.choices)
    }

    /// Reserve on `provider`'s budgets before an attempt. `Err` (retryable): the provider's
    /// budget is spent or cannot be checked, so the fallback loop moves on.
    pub async fn provider(
        &mut self,
        provider: &crate::config::ProviderConfig,
        model: &str,
    ) -> Result<(), GatewayError> {
        if provider.budgets.is_empty() {
            return Ok(());
        }
        let now = self.enforcer.clock.now_secs();
        let scope = Scope::new(ScopeKind::Provider, &provider.name, &provider.name);
        let worst_cost = self.worst_cost(model);
        let worst_tokens = self
            .ticket
            .input_tokens
            .saturating_add(self.max_output_on(model));
        // A provider the route names twice (two of its models, one after the other fails) is
        // reserved on once: the ledger holds one reservation per request and counter, and
        // settlement charges each line, so a second line on a counter would be refused by
        // the store or, on Redis, charged twice with its first reservation never released.
        // The reservation held covers the provider's first model; the second's worst case
        // may differ, but settlement charges what it actually cost.
        let held = &self.ticket.provider_lines;
        let mut lines: Vec<Line> = provider
            .budgets
            .iter()
            .map(|b| Line::reserving(&scope, b, now, worst_cost, worst_tokens))
            .filter(|l| !held.iter().any(|h| h.counter == l.counter))
            .collect();
        if lines.is_empty() {
            return Ok(());
        }
        ledger::sort(&mut lines);
        match self
            .enforcer
            .ledger
            .reserve(&self.ticket.request_id, &lines, now)
            .await
        {
            Ok(None) => {
                self.ticket.provider_lines.extend(lines);
                Ok(())
            }
            Ok(Some(i)) => {
                let what = lines.get(i).map(Line::describe).unwrap_or_default();
                Err(GatewayError::new(
                    ErrorKind::RateLimited,
                    format!("provider budget spent: the {what} is spent for this period"),
                )
                .retryable(true))
            }
            Err(e) => Err(GatewayError::new(
                ErrorKind::BudgetUnavailable,
                format!("provider budgets cannot be checked: {e}"),
            )
            .retryable(true)),
        }
    }

    /// `x-ratelimit-*` headers for the reply: the tightest request and token limits.
    pub fn rate_headers(&self) -> Vec<(&'static str, String)> {
        let Some(hold) = &self.ticket.hold else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (kind, names) in [
            (
                limits::Kind::Rpm,
                (
                    "x-ratelimit-limit-requests",
                    "x-ratelimit-remaining-requests",
                    "x-ratelimit-reset-requests",
                ),
            ),
            (
                limits::Kind::Tpm,
                (
                    "x-ratelimit-limit-tokens",
                    "x-ratelimit-remaining-tokens",
                    "x-ratelimit-reset-tokens",
                ),
            ),
        ] {
            if let Some((_, limit, left)) = hold
                .remaining
                .iter()
                .filter(|(k, _, _)| *k == kind)
                .min_by_key(|(_, _, left)| *left)
            {
                out.push((names.0, limit.to_string()));
                out.push((names.1, left.to_string()));
                out.push((names.2, format!("{}s", hold.reset_secs)));
            }
        }
        out
    }

    /// Admission refused the request: nothing was reserved on budgets; the rate-limit
    /// counts stay (a refused request is still a request) but its leases and reserved
    /// tokens are released. No usage record: the request never ran.
    fn discard(&mut self) {
        self.settled = true;
        if let Some(hold) = self.ticket.hold.take() {
            let enforcer = Arc::clone(&self.enforcer);
            let id = std::mem::take(&mut self.ticket.request_id);
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                crate::tasks::spawn_on(
                    crate::tasks::Kind::Release,
                    async move { enforcer.limiter.release(&id, hold, 0).await },
                    &rt,
                );
            }
        }
    }

    /// Settle now (in the background): the request ended with `outcome`.
    pub fn finish(mut self, outcome: Outcome) {
        self.settle(outcome);
    }

    fn settle(&mut self, outcome: Outcome) {
        if std::mem::replace(&mut self.settled, true) {
            return;
        }
        Settlement {
            enforcer: Arc::clone(&self.enforcer),
            pricing: Arc::clone(&self.pricing),
            ticket: std::mem::take(&mut self.ticket),
            outcome,
            ended: std::time::SystemTime::now(),
        }
        .run_or_spawn();
    }
}

impl Drop for Admission {
    /// Never settled: the request's settlement guard (`pipeline::settle`) settles every
    /// admission it holds, so this is reached only by an admission dropped outside one (a
    /// refused shadow, a bug). Release everything and record it as cancelled, with no usage.
    fn drop(&mut self) {
        self.settle(Outcome::client_left());
    }
}

impl Outcome {
    /// A request whose client left before its reply: cancelled, with no usage.
    pub fn client_left() -> Self {
        Outcome {
            status: "cancelled",
            report: Report {
                error: Some((
                    CLIENT_LEFT,
                    "the client closed the connection before the reply".to_owned(),
                )),
                ..Report::default()
            },
            ..Outcome::default()
        }
    }
}

/// The error class of a request whose client left before the reply.
pub(crate) const CLIENT_LEFT: &str = "client_disconnected";

/// One budget as `/v1/usage` and the admin API show it.
#[derive(Debug, serde::Serialize)]
pub struct BudgetStatus {
    pub scope: &'static str,
    pub name: String,
    pub unit: &'static str,
    pub period: &'static str,
    pub timezone: String,
    pub period_start: i64,
    pub period_end: i64,
    /// In the unit: dollars or tokens.
    pub limit: f64,
    pub spent: f64,
    pub reserved: f64,
    pub remaining: f64,
    pub exhausted: bool,
    /// `block`, or the `provider/model` a spent budget routes to.
    pub on_exhausted: String,
}

impl Enforcer {
    /// Every budget that applies to `principal`, in its current period.
    pub async fn budget_status(
        &self,
        directory: &Directory,
        principal: &Principal,
    ) -> Result<Vec<BudgetStatus>, ledger::LedgerError> {
        let scoped: Vec<(Scope, crate::config::Budget)> =
            budget::caller_scopes(principal, directory)
                .into_iter()
                .flat_map(|(scope, policy)| {
                    policy
                        .budgets
                        .iter()
                        .map(move |b| (scope.clone(), b.clone()))
                })
                .collect();
        self.statuses(&scoped).await
    }

    /// True when one of `provider`'s own budgets is used up (spent and reserved) in its
    /// current period: what `budget_exhausted = "provider:NAME"` rules test.
    pub async fn provider_spent(
        &self,
        provider: &crate::config::ProviderConfig,
    ) -> Result<bool, ledger::LedgerError> {
        let scope = Scope::new(ScopeKind::Provider, &provider.name, &provider.name);
        let scoped: Vec<_> = provider
            .budgets
            .iter()
            .map(|b| (scope.clone(), b.clone()))
            .collect();
        Ok(self.statuses(&scoped).await?.iter().any(|s| s.exhausted))
    }

    /// The state of these budgets in their current periods.
    pub async fn statuses(
        &self,
        scoped: &[(Scope, crate::config::Budget)],
    ) -> Result<Vec<BudgetStatus>, ledger::LedgerError> {
        let now = self.clock.now_secs();
        let lines: Vec<Line> = scoped
            .iter()
            .map(|(scope, b)| Line::new(scope, b, now))
            .collect();
        let states = self.ledger.read(&lines).await?;
        Ok(lines
            .iter()
            .zip(states)
            .map(|(l, st)| {
                let v = |x: u64| match l.budget.unit {
                    BudgetUnit::Usd => x as f64 / crate::config::NANOS_PER_USD,
                    BudgetUnit::Tokens => x as f64,
                };
                BudgetStatus {
                    scope: l.scope.kind.as_str(),
                    name: l.scope.label.clone(),
                    unit: l.budget.unit.as_str(),
                    period: l.budget.period.as_str(),
                    timezone: l.budget.timezone.clone(),
                    period_start: l.window.start,
                    period_end: l.window.end,
                    limit: l.budget.limit_display(),
                    spent: v(st.spent),
                    reserved: v(st.reserved),
                    remaining: v(l
                        .budget
                        .limit
                        .saturating_sub(st.spent.saturating_add(st.reserved))),
                    exhausted: st.spent.saturating_add(st.reserved) >= l.budget.limit,
                    on_exhausted: match &l.budget.on_exhausted {
                        OnExhausted::Block => "block".to_owned(),
                        OnExhausted::RouteTo(t) => match &t.model {
                            Some(m) => format!("{}/{m}", t.provider),
                            None => t.provider.clone(),
                        },
                    },
                }
            })
            .collect())
    }
}
