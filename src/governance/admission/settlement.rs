//! Settling an admitted request: releasing what it held, charging what it used, and
//! writing its record and trace, in place when nothing needs waiting for, else on a
//! tracked task (`crate::tasks`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{Enforcer, Outcome, Ticket};
use crate::governance::budget::Line;
use crate::governance::ledger;
use crate::pricing::PriceTable;
use crate::schema::Usage;
use crate::store::UsageRecord;

/// An admission's ticket and how its request ended, to be settled once.
pub(super) struct Settlement {
    pub(super) enforcer: Arc<Enforcer>,
    pub(super) pricing: Arc<PriceTable>,
    pub(super) ticket: Ticket,
    pub(super) outcome: Outcome,
    /// When the request ended (its trace's end).
    pub(super) ended: std::time::SystemTime,
}

impl Settlement {
    /// Settle: right here when there is nothing to wait for (no budget, no rate-limit
    /// lease, no bodies to redact, no delivered text to count: the common request of a
    /// deployment without budgets), otherwise in a task of its own (tracked: shutdown waits
    /// for it).
    pub(super) fn run_or_spawn(self) {
        if !self.waits() {
            self.run_now();
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::error!(request_id = %self.ticket.request_id, "no runtime to settle a request on; its reservations expire with their lease");
            return;
        };
        self.enforcer.settling.fetch_add(1, Ordering::AcqRel);
        let settle = async move {
            let enforcer = Arc::clone(&self.enforcer);
            self.run().await;
            enforcer.settling.fetch_sub(1, Ordering::AcqRel);
        };
        crate::tasks::spawn_on(crate::tasks::Kind::Settlement, settle, &rt);
    }

    /// Does settling have to await anything?
    fn waits(&self) -> bool {
        !self.ticket.lines.is_empty()
            || !self.ticket.provider_lines.is_empty()
            || self.ticket.hold.is_some()
            || self.outcome.bodies.is_some()
            || self.outcome.delivered.as_ref().is_some_and(|d| {
                self.outcome.usage.output_tokens == 0 && d.without_counting().is_none()
            })
    }

    /// [`Self::run`] for a settlement that [does not wait](Self::waits).
    fn run_now(mut self) {
        let mut u = self.outcome.usage;
        if let Some(d) = self.outcome.delivered.take() {
            // Not waiting means there was nothing to count.
            if u.output_tokens == 0
                && let Some(tokens) = d.without_counting()
            {
                u.output_tokens = tokens;
            }
            self.input_of_cut_stream(&mut u);
        } else {
            self.input_of_cut_call(&mut u);
        }
        let cost = self.cost(&u);
        self.write(u, cost, None);
    }

    async fn run(mut self) {
        let mut u = self.outcome.usage;
        if let Some(d) = self.outcome.delivered.take() {
            if u.output_tokens == 0 && d.content_events > 0 {
                u.output_tokens = d.output_tokens().await;
            }
            self.input_of_cut_stream(&mut u);
        } else {
            self.input_of_cut_call(&mut u);
        }
        let cost = self.cost(&u);
        let tokens = u.total();
        let e = &self.enforcer;
        // Budgets: the caller's all get the actual amount; a provider's only if it served.
        let mut lines = std::mem::take(&mut self.ticket.lines);
        let served = self.outcome.provider.as_deref();
        let mut actual: Vec<u64> = lines.iter().map(|l| l.actual(tokens, cost)).collect();
        for l in std::mem::take(&mut self.ticket.provider_lines) {
            actual.push(if Some(l.scope.name.as_str()) == served {
                l.actual(tokens, cost)
            } else {
                0
            });
            lines.push(l);
        }
        if !lines.is_empty() {
            // Same counter order as admission.
            let mut pairs: Vec<(Line, u64)> = lines.into_iter().zip(actual).collect();
            pairs.sort_by(|a, b| a.0.counter.cmp(&b.0.counter));
            let (lines, actual): (Vec<Line>, Vec<u64>) = pairs.into_iter().unzip();
            match settle_patiently(e, &self.ticket.request_id, &lines, &actual).await {
                Ok(spent) => {
                    let now = e.clock.now_secs();
                    for ((l, after), a) in lines.iter().zip(spent.iter().copied()).zip(&actual) {
                        crate::metrics::budget_use(
                            l.scope.kind.as_str(),
                            &l.scope.label,
                            l.budget.period.as_str(),
                            after as f64 / l.budget.limit.max(1) as f64,
                        );
                        e.alerts
                            .check(&e.ledger, l, after.saturating_sub(*a), after, now)
                            .await;
                    }
                }
                Err(err) => {
                    tracing::error!(request_id = %self.ticket.request_id, error = %err, "could not settle budgets; the reservation is released when its lease ends, and this request's spend is not counted")
                }
            }
        }
        if let Some(hold) = self.ticket.hold.take() {
            e.limiter
                .release(&self.ticket.request_id, hold, tokens)
                .await;
        }
        // Redacting the bodies is CPU work: off the runtime.
        let bodies = match self.outcome.bodies.take() {
            Some(c) => tokio::task::spawn_blocking(move || c.finish())
                .await
                .ok()
                .flatten()
                .map(Box::new),
            None => None,
        };
        self.write(u, cost, bodies);
    }

    /// A stream cut before the provider said: the input as estimated at admission.
    fn input_of_cut_stream(&self, u: &mut Usage) {
        if u.input_tokens == 0 && (u.output_tokens > 0 || self.outcome.status == "cancelled") {
            u.input_tokens = self.ticket.input_tokens;
        }
    }

    /// A provider call the client left before its reply arrived (cancelled, with a provider
    /// and no usage): the input as estimated at admission (`pipeline::settle`).
    fn input_of_cut_call(&self, u: &mut Usage) {
        if self.outcome.status == "cancelled"
            && self.outcome.provider.is_some()
            && u.input_tokens == 0
            && u.output_tokens == 0
        {
            u.input_tokens = self.ticket.input_tokens;
        }
    }

    /// What `u` costs on the model that served (0 when unpriced or nothing served).
    fn cost(&self, u: &Usage) -> u64 {
        match self.outcome.model.as_deref() {
            Some(m) if u.total() > 0 => match self.pricing.lookup(m) {
                Some(p) => crate::pricing::cost_nanos(p, u),
                None => {
                    warn_unpriced(m);
                    0
                }
            },
            _ => 0,
        }
    }

    /// The request's record, trace and metrics, once its budgets are settled.
    fn write(self, u: Usage, cost: u64, bodies: Option<Box<crate::bodies::BodyRecord>>) {
        let e = &self.enforcer;
        let p = self.ticket.principal.as_deref();
        // A shadow is charged to its mirror only: it names the caller's key for reference
        // but no key id, user, team or project, so their budgets never count it.
        let owner = p.filter(|_| self.ticket.mirror_of.is_none());
        let route = self.ticket.route.unwrap_or_default();
        let (mirror_of, mirror_route) = self.ticket.mirror_of.unzip();
        // What the client named and what the request failed with leave the process (the
        // request log, the admin API, the trace) without a secret.
        let redactor = crate::config::live_redactor();
        let record = UsageRecord {
            request_id: self.ticket.request_id,
            created_at: self.ticket.created_at,
            key_id: owner.map(|p| p.key_id.clone()),
            key_name: p.map(|p| p.key_name.clone()),
            user: owner.and_then(|p| p.user.clone()),
            team: owner.and_then(|p| p.team.clone()),
            project: owner.and_then(|p| p.project.clone()),
            route: route.rule,
            fallback: route.fallback,
            attempts: (!route.attempts.is_empty())
                .then(|| serde_json::to_string(&route.attempts).unwrap_or_default()),
            latency_ms: self.ticket.started.map(|s| crate::millis(s.elapsed())),
            mirror_of,
            mirror_route,
            output: self.outcome.output,
            end_user: self.ticket.end_user,
            client_schema: self.ticket.schema,
            http_status: self.outcome.report.http_status,
            error_class: self.outcome.report.error.as_ref().map(|(c, _)| *c),
            error: self
                .outcome
                .report
                .error
                .map(|(_, m)| redactor.redact_owned(m)),
            ttft_ms: self.outcome.report.ttft_ms,
            reasoning_tokens: u.reasoning_tokens,
            warnings: self.outcome.report.warnings,
            cache_hit: false,
            bodies,
            provider: self.outcome.provider,
            model: self.outcome.model,
            requested_model: redactor.redact_owned(self.ticket.requested_model),
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
            cache_read_tokens: u.cache_read_tokens,
            cache_write_tokens: u.cache_write_tokens,
            cost_nanos: cost,
            status: if self.outcome.status.is_empty() {
                "ok"
            } else {
                self.outcome.status
            },
            tags: self.ticket.tags,
        };
        // Models the price table does not know are labelled `other`, so a client naming
        // models freely cannot grow the metrics without bound.
        if let (Some(ids), Some(exporter), Some(started)) =
            (self.ticket.trace, &e.traces, self.ticket.started)
        {
            // Admitted this long before now, on the wall clock.
            let start = std::time::SystemTime::now()
                .checked_sub(started.elapsed())
                .unwrap_or(self.ended);
            let spans =
                crate::traces::request_spans(&ids, &record, &route.attempts, start, self.ended);
            exporter.send(spans);
        }
        let known = record
            .model
            .as_deref()
            .is_some_and(|m| self.pricing.lookup(m).is_some());
        crate::metrics::settled(&record, known);
        e.recorder.record(record);
    }
}

impl Outcome {
    /// A request whose client left while `provider` served it with `model`: after its whole
    /// reply arrived (charged the `usage` it reported), or before (`None`: charged the input
    /// tokens estimated at admission).
    pub fn client_left_upstream(provider: String, model: String, usage: Option<Usage>) -> Self {
        let (usage, why) = match usage {
            Some(u) => (
                u,
                "the client closed the connection after the provider answered; charged the provider's usage",
            ),
            None => (
                Usage::default(),
                "the client closed the connection while the provider was answering; charged the input estimate",
            ),
        };
        Outcome {
            provider: Some(provider),
            model: Some(model),
            usage,
            status: "cancelled",
            report: super::Report {
                error: Some((super::CLIENT_LEFT, why.to_owned())),
                ..super::Report::default()
            },
            ..Outcome::default()
        }
    }
}

/// An unknown model costs 0; say so once per model, not once per request.
fn warn_unpriced(model: &str) {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if seen
        .get_or_insert_with(HashSet::new)
        .insert(model.to_owned())
    {
        tracing::warn!(
            model,
            "no price known for this model: its requests cost 0; add it under [pricing]"
        );
    }
}

/// The longest wait between two tries of a settlement.
const SETTLE_MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(2);

/// Settle budgets, trying again (with backoff) while the counters cannot be reached: each
/// try is bounded (`[store] timeout`, `[redis] timeout`), and a stalled store must not lose
/// the spend of the requests it admitted before it stalled, or budgets would be overspent
/// once it is back. Tries go on for as long as the reservation's lease
/// ([`ledger::RESERVATION_LEASE`]); an instance that stops meanwhile loses that request's
/// spend from the counter (its usage record still has it).
async fn settle_patiently(
    e: &Enforcer,
    request_id: &str,
    lines: &[Line],
    actual: &[u64],
) -> Result<Vec<u64>, ledger::LedgerError> {
    let give_up = tokio::time::Instant::now()
        + std::time::Duration::from_secs(ledger::RESERVATION_LEASE.unsigned_abs());
    let mut wait = std::time::Duration::from_millis(100);
    let mut tries = 0u32;
    loop {
        match e.ledger.settle(request_id, lines, actual).await {
            Err(err) if tokio::time::Instant::now() + wait < give_up => {
                tries += 1;
                if tries == 1 {
                    tracing::warn!(request_id, error = %err, "could not settle budgets yet; trying again until the counters answer");
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(SETTLE_MAX_BACKOFF);
            }
            done => return done,
        }
    }
}
