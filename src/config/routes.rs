//! `[[routes]]` and `[routing]`: the validated routing rules and the retry, attempt and
//! ejection settings every route shares (issue #4).
//!
//! A rule has one action: `rewrite` (rename, keep matching), `targets` (a failover chain, or a
//! balanced pool with `balance`), or `split` (weighted, optionally sticky). `targets` and
//! `split` may add a `mirror` and a `timeout`. Refused at load: a target listed twice in one
//! rule (each deployment is tried at most once per request, so a repeat could only be a
//! mistake), weights that sum to zero, a mirror sample outside 0..=1, and `max_attempts`
//! above 5. A fallback chain is a list inside one rule and rewrites only move down the file,
//! so the routing graph has no cycles by construction.

use std::time::Duration;

use http::HeaderName;

use super::raw::{self, RawConfig, RawRoute, RawSticky, RawWeighted, Str};
use super::source::Source;
use super::{Budget, ModelPattern, policy};

/// Most upstream attempts one request may make, whatever the config says (RELIABILITY 16).
pub const MAX_ATTEMPTS: u32 = 5;
/// Envoy's retry budget: retries may add 20 % to the requests, plus 3 whatever the traffic.
pub const DEFAULT_RETRY_PERCENT: u32 = 20;
pub const DEFAULT_RETRY_MIN: u32 = 3;
/// Envoy's default retry backoff: 25 ms base, ten times that at most, full jitter.
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(25);
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_millis(250);
/// Envoy's outlier detection: 5 consecutive failures eject a backend for 30 s (doubling on
/// each repeat ejection, up to 10 times that unless `max_ejection` says otherwise: 300 s,
/// Envoy's `max_ejection_time`).
pub const DEFAULT_EJECT_AFTER: u32 = 5;
pub const DEFAULT_EJECTION: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_EJECTION_FACTOR: u32 = 10;
/// At most half the backends of the gateway out at once (at least one may always be ejected).
pub const DEFAULT_MAX_EJECTION_PERCENT: u32 = 50;
/// A provider key that got 429 without `Retry-After` rests this long.
pub const DEFAULT_KEY_COOLDOWN: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Route {
    /// `name = "..."`, or `routes[i]` (0-based).
    pub name: String,
    pub model: Option<ModelPattern>,
    /// What else the rule tests; every condition set must hold.
    pub conditions: RouteConditions,
    pub action: RouteAction,
    /// A sampled shadow copy of the request (`targets` and `split` rules only).
    pub mirror: Option<Mirror>,
    /// Bound on the time until the reply starts (a non-streaming reply: until it is read),
    /// every attempt and backoff included.
    pub timeout: Option<Duration>,
}

/// A rule's conditions besides the model. Text conditions are globs.
#[derive(Debug, Clone, Default)]
pub struct RouteConditions {
    /// Request headers: each named header must be present with a matching value.
    pub headers: Vec<(HeaderName, ModelPattern)>,
    /// The caller's key name, team, user (the key's, else the end user the request names).
    pub key: Option<ModelPattern>,
    pub team: Option<ModelPattern>,
    pub user: Option<ModelPattern>,
    /// One of the request's `x-gatehouse-tags`.
    pub tag: Option<ModelPattern>,
    /// Bounds of the estimated input tokens (inclusive).
    pub min_input_tokens: Option<u64>,
    pub max_input_tokens: Option<u64>,
    /// Budget states that must hold: a caller whose budget is spent is served by a rule
    /// that asks for it (instead of refused); a provider's budget state is read before
    /// routing.
    pub budgets: Vec<BudgetState>,
}

/// A budget condition: the budget of `of` is spent (`exhausted`) or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetState {
    pub of: BudgetOf,
    pub exhausted: bool,
}

/// Whose budget a condition tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BudgetOf {
    /// Any budget of the caller: its key's, user's, team's or project's.
    Caller,
    Key,
    User,
    Team,
    Project,
    /// A provider's own budget.
    Provider(String),
}

impl BudgetOf {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "key" => Self::Key,
            "user" => Self::User,
            "team" => Self::Team,
            "project" => Self::Project,
            _ => Self::Provider(text.strip_prefix("provider:")?.to_owned()),
        })
    }

    /// True when a spent budget of `self` covers `cond` (`Caller` covers each caller scope).
    pub fn satisfies(&self, cond: &BudgetOf) -> bool {
        self == cond || (*cond == BudgetOf::Caller && !matches!(self, BudgetOf::Provider(_)))
    }
}

impl RouteConditions {
    /// The providers whose budget state some rule tests.
    pub fn tested_provider_budgets(routes: &[Route]) -> impl Iterator<Item = &str> {
        routes.iter().flat_map(|r| {
            r.conditions.budgets.iter().filter_map(|b| match &b.of {
                BudgetOf::Provider(p) => Some(p.as_str()),
                _ => None,
            })
        })
    }

    /// True when the rule serves callers whose own budget is spent.
    pub fn serves_spent_callers(&self) -> bool {
        self.budgets
            .iter()
            .any(|b| b.exhausted && !matches!(b.of, BudgetOf::Provider(_)))
    }
}

impl RouteConditions {
    /// The headers some rule of `routes` tests or sticks on, for requests to collect.
    pub fn tested_headers(routes: &[Route]) -> impl Iterator<Item = &HeaderName> {
        routes.iter().flat_map(|r| {
            let sticky = match &r.action {
                RouteAction::Split {
                    sticky: Some(Sticky::Header(h)),
                    ..
                } => Some(h),
                _ => None,
            };
            r.conditions.headers.iter().map(|(n, _)| n).chain(sticky)
        })
    }
}

#[derive(Debug, Clone)]
pub enum RouteAction {
    /// Replace the model name and keep matching the routes below.
    Rewrite(String),
    /// Serve with these targets: in order (a failover chain), or spread by `balance`.
    Targets {
        targets: Vec<Weighted>,
        balance: Balance,
    },
    /// Pick one target by weight (the others follow as fallbacks, heaviest first).
    Split {
        targets: Vec<Weighted>,
        sticky: Option<Sticky>,
    },
}

impl RouteAction {
    /// The targets a `targets` or `split` rule may send to.
    pub fn targets(&self) -> &[Weighted] {
        match self {
            RouteAction::Rewrite(_) => &[],
            RouteAction::Targets { targets, .. } | RouteAction::Split { targets, .. } => targets,
        }
    }
}

/// A target with its weight (1 unless written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weighted {
    pub target: Target,
    pub weight: u32,
}

/// How a pool of targets, or a provider's keys, share the requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Balance {
    /// In the order written; the next only when the one before failed.
    #[default]
    Failover,
    /// Smooth weighted round robin.
    RoundRobin,
    /// Fewest requests in flight from this gateway.
    LeastInFlight,
    /// Lowest moving average of the time to the reply's start.
    LowestLatency,
}

impl Balance {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "failover" => Self::Failover,
            "round_robin" => Self::RoundRobin,
            "least_in_flight" => Self::LeastInFlight,
            "lowest_latency" => Self::LowestLatency,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Failover => "failover",
            Self::RoundRobin => "round_robin",
            Self::LeastInFlight => "least_in_flight",
            Self::LowestLatency => "lowest_latency",
        }
    }
}

/// What keeps a caller on one side of a split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sticky {
    /// The caller's user (the key's, else the end user the request names), else its key.
    User,
    /// The value of this request header.
    Header(HeaderName),
}

/// A shadow copy: sent after admission to `target` for a `sample` share of the requests,
/// never delaying or changing the reply, spending only its own `budgets`.
#[derive(Debug, Clone)]
pub struct Mirror {
    pub target: Target,
    pub sample: f64,
    pub budgets: Vec<Budget>,
}

/// A provider and the model name to ask it for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub provider: String,
    /// `None`: the model name as routed so far.
    pub model: Option<String>,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.model {
            Some(m) => write!(f, "{}/{m}", self.provider),
            None => f.write_str(&self.provider),
        }
    }
}

/// `[routing]`: retries, attempts and outlier ejection.
#[derive(Debug, Clone)]
pub struct RoutingSettings {
    /// Most upstream attempts per request (1..=5).
    pub max_attempts: u32,
    /// Retries may add this percentage of the requests (over the last 10 s) ...
    pub retry_percent: u32,
    /// ... plus this many.
    pub retry_min: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Consecutive failures (5xx, connect errors, timeouts) that eject a backend.
    pub eject_after: u32,
    /// First ejection's length; each repeat doubles it, up to `max_ejection`.
    pub ejection: Duration,
    /// The longest an ejection lasts, however often it repeats (default ten times
    /// `ejection`).
    pub max_ejection: Duration,
    pub max_ejection_percent: u32,
    pub key_cooldown: Duration,
}

impl Default for RoutingSettings {
    fn default() -> Self {
        Self {
            max_attempts: MAX_ATTEMPTS,
            retry_percent: DEFAULT_RETRY_PERCENT,
            retry_min: DEFAULT_RETRY_MIN,
            backoff_base: DEFAULT_BACKOFF_BASE,
            backoff_max: DEFAULT_BACKOFF_MAX,
            eject_after: DEFAULT_EJECT_AFTER,
            ejection: DEFAULT_EJECTION,
            max_ejection: DEFAULT_EJECTION.saturating_mul(DEFAULT_MAX_EJECTION_FACTOR),
            max_ejection_percent: DEFAULT_MAX_EJECTION_PERCENT,
            key_cooldown: DEFAULT_KEY_COOLDOWN,
        }
    }
}

pub(super) fn settings(src: &mut Source<'_>, r: &raw::RawRouting) -> RoutingSettings {
    let mut s = RoutingSettings::default();
    if let Some(m) = &r.max_attempts {
        if (1..=MAX_ATTEMPTS).contains(m.get_ref()) {
            s.max_attempts = *m.get_ref();
        } else {
            src.error(
                &m.span(),
                format!("max_attempts must be between 1 and {MAX_ATTEMPTS}"),
            );
        }
    }
    if let Some(b) = &r.retry_budget {
        if let Some(p) = &b.percent {
            if *p.get_ref() > 100 {
                src.error(&p.span(), "retry_budget.percent must be at most 100");
            } else {
                s.retry_percent = *p.get_ref();
            }
        }
        if let Some(m) = b.min {
            s.retry_min = m;
        }
    }
    if let Some(b) = &r.backoff {
        if let Some(d) = b.base.as_ref().and_then(|v| src.duration(v)) {
            s.backoff_base = d;
        }
        if let Some(d) = b.max.as_ref().and_then(|v| src.duration(v)) {
            s.backoff_max = d;
        }
    }
    if let Some(o) = &r.outlier {
        if let Some(n) = &o.consecutive_failures {
            if *n.get_ref() == 0 {
                src.error(&n.span(), "consecutive_failures must be at least 1");
            } else {
                s.eject_after = *n.get_ref();
            }
        }
        if let Some(d) = o.ejection.as_ref().and_then(|v| src.duration(v)) {
            s.ejection = d;
        }
        s.max_ejection = s.ejection.saturating_mul(DEFAULT_MAX_EJECTION_FACTOR);
        if let Some(v) = &o.max_ejection
            && let Some(d) = src.duration(v)
        {
            if d < s.ejection {
                src.error(
                    &v.span(),
                    "max_ejection must be at least the first ejection's length (`ejection`)",
                );
            } else {
                s.max_ejection = d;
            }
        }
        if let Some(p) = &o.max_ejection_percent {
            if *p.get_ref() > 100 {
                src.error(&p.span(), "max_ejection_percent must be at most 100");
            } else {
                s.max_ejection_percent = *p.get_ref();
            }
        }
    }
    if let Some(d) = r.key_cooldown.as_ref().and_then(|v| src.duration(v)) {
        s.key_cooldown = d;
    }
    s
}

/// A string or a table with the text under `field` (`target` or `key`), and its weight.
pub(super) fn weighted_text(
    src: &mut Source<'_>,
    item: &toml::Spanned<RawWeighted>,
    field: &str,
) -> Option<(Str, u32)> {
    let span = item.span();
    match item.get_ref() {
        RawWeighted::Str(s) => Some((toml::Spanned::new(span, s.clone()), 1)),
        RawWeighted::Table(t) => {
            let (text, other) = match field {
                "key" => (&t.key, t.target.is_some()),
                _ => (&t.target, t.key.is_some()),
            };
            let Some(text) = text.clone().filter(|_| !other) else {
                src.error(&span, format!("expected `{field}` in this table"));
                return None;
            };
            Some((toml::Spanned::new(span, text), t.weight.unwrap_or(1)))
        }
    }
}

pub(super) fn balance(src: &mut Source<'_>, v: Option<&Str>, default: Balance) -> Balance {
    let Some(v) = v else { return default };
    Balance::parse(v.get_ref()).unwrap_or_else(|| {
        src.error(
            &v.span(),
            format!(
                "unknown balance `{}`: expected failover, round_robin, least_in_flight or lowest_latency",
                v.get_ref()
            ),
        );
        default
    })
}

pub(super) fn validate_route(
    src: &mut Source<'_>,
    index: usize,
    r: &toml::Spanned<RawRoute>,
    raw: &RawConfig,
) -> Option<Route> {
    let span = r.span();
    let r = r.get_ref();
    let model = match &r.matcher.model {
        Some(v) => {
            let text = src.expand(v);
            match ModelPattern::new(&text) {
                Ok(p) => Some(p),
                Err(e) => {
                    src.error(
                        &v.span(),
                        format!("invalid model pattern `{}`: {e}", v.get_ref()),
                    );
                    None
                }
            }
        }
        None => None,
    };
    let weighted = |src: &mut Source<'_>, list: &[toml::Spanned<RawWeighted>]| {
        let mut out: Vec<Weighted> = Vec::new();
        if list.is_empty() {
            src.error(&span, "a route must list at least one target");
        }
        for item in list {
            let Some((text, weight)) = weighted_text(src, item, "target") else {
                continue;
            };
            let Some(target) = parse_target(src, &text, raw) else {
                continue;
            };
            if out.iter().any(|w| w.target == target) {
                src.error(
                    &text.span(),
                    format!("target `{target}` is listed twice in this route"),
                );
                continue;
            }
            out.push(Weighted { target, weight });
        }
        out
    };
    let action = match (&r.rewrite, &r.targets, &r.split) {
        (Some(rw), None, None) => RouteAction::Rewrite(src.expand(rw)),
        (None, Some(ts), None) => {
            let targets = weighted(src, ts);
            let balance = balance(src, r.balance.as_ref(), Balance::Failover);
            RouteAction::Targets { targets, balance }
        }
        (None, None, Some(ts)) => {
            let targets = weighted(src, ts);
            if !targets.is_empty() && targets.iter().all(|w| w.weight == 0) {
                src.error(&span, "the split's weights add up to 0");
            }
            if let Some(b) = &r.balance {
                src.error(&b.span(), "balance applies to targets, not to a split");
            }
            let sticky = r.sticky.as_ref().and_then(|s| sticky(src, s));
            RouteAction::Split { targets, sticky }
        }
        (None, None, None) => {
            src.error(&span, "a route needs one of rewrite, targets or split");
            return None;
        }
        _ => {
            src.error(
                &span,
                "a route has one of rewrite, targets or split, not several",
            );
            return None;
        }
    };
    if let (Some(s), false) = (&r.sticky, matches!(action, RouteAction::Split { .. })) {
        src.error(&s.span(), "sticky applies to a split only");
    }
    let rewrite = matches!(action, RouteAction::Rewrite(_));
    let mirror = r.mirror.as_ref().and_then(|m| mirror(src, m, raw));
    if rewrite && r.mirror.is_some() {
        src.error(
            &span,
            "a rewrite rule cannot mirror; put the mirror on the rule that serves",
        );
    }
    let timeout = r.timeout.as_ref().and_then(|t| src.duration(t));
    if rewrite && timeout.is_some() {
        src.error(&span, "a rewrite rule cannot have a timeout");
    }
    let conditions = route_conditions(src, &r.matcher, &span, raw);
    Some(Route {
        name: r
            .name
            .as_ref()
            .map_or_else(|| format!("routes[{index}]"), |n| src.expand(n)),
        model,
        conditions,
        action,
        mirror,
        timeout,
    })
}

fn sticky(src: &mut Source<'_>, s: &toml::Spanned<RawSticky>) -> Option<Sticky> {
    match s.get_ref() {
        RawSticky::Str(w) if w == "user" => Some(Sticky::User),
        RawSticky::Str(w) => {
            src.error(
                &s.span(),
                format!("unknown sticky `{w}`: expected \"user\" or {{ header = \"name\" }}"),
            );
            None
        }
        RawSticky::Table(h) => match HeaderName::try_from(h.header.to_ascii_lowercase()) {
            Ok(n) => Some(Sticky::Header(n)),
            Err(_) => {
                src.error(&s.span(), format!("invalid header name `{}`", h.header));
                None
            }
        },
    }
}

fn mirror(
    src: &mut Source<'_>,
    m: &toml::Spanned<raw::RawMirror>,
    raw: &RawConfig,
) -> Option<Mirror> {
    let span = m.span();
    let m = m.get_ref();
    let target = parse_target(src, &m.target, raw)?;
    let sample = match &m.sample {
        Some(s) if (0.0..=1.0).contains(s.get_ref()) => *s.get_ref(),
        Some(s) => {
            src.error(&s.span(), "mirror sample must be between 0 and 1");
            0.0
        }
        None => 1.0,
    };
    let budgets = policy::budgets(
        src,
        &span,
        m.budget.as_ref(),
        policy::Holder::Provider,
        &mut |src, t| parse_target(src, t, raw),
    );
    Some(Mirror {
        target,
        sample,
        budgets,
    })
}

fn route_conditions(
    src: &mut Source<'_>,
    m: &raw::RawMatch,
    span: &std::ops::Range<usize>,
    raw: &RawConfig,
) -> RouteConditions {
    let mut glob = |v: &Option<Str>| -> Option<ModelPattern> {
        let v = v.as_ref()?;
        let text = src.expand(v);
        ModelPattern::new(&text)
            .map_err(|e| src.error(&v.span(), format!("invalid pattern `{}`: {e}", v.get_ref())))
            .ok()
    };
    let key = glob(&m.key);
    let team = glob(&m.team);
    let user = glob(&m.user);
    let tag = glob(&m.tag);
    let mut headers = Vec::new();
    for (name, v) in m.header.iter().flatten() {
        let Ok(n) = HeaderName::try_from(name.to_ascii_lowercase()) else {
            src.error(&v.span(), format!("invalid header name `{name}`"));
            continue;
        };
        let text = src.expand(v);
        match ModelPattern::new(&text) {
            Ok(p) => headers.push((n, p)),
            Err(e) => src.error(&v.span(), format!("invalid pattern `{}`: {e}", v.get_ref())),
        }
    }
    if let (Some(lo), Some(hi)) = (m.min_input_tokens, m.max_input_tokens)
        && lo > hi
    {
        src.error(span, "min_input_tokens is above max_input_tokens");
    }
    let mut budgets = Vec::new();
    if let Some(b) = &m.budget_exhausted {
        let of = match b.get_ref() {
            raw::BoolOrStr::Bool(exhausted) => Some(BudgetState {
                of: BudgetOf::Caller,
                exhausted: *exhausted,
            }),
            raw::BoolOrStr::Str(text) => {
                budget_of(src, &b.span(), text, raw).map(|of| BudgetState {
                    of,
                    exhausted: true,
                })
            }
        };
        budgets.extend(of);
    }
    if let Some(b) = &m.budget_available {
        budgets.extend(
            budget_of(src, &b.span(), b.get_ref(), raw).map(|of| BudgetState {
                of,
                exhausted: false,
            }),
        );
    }
    RouteConditions {
        headers,
        key,
        team,
        user,
        tag,
        min_input_tokens: m.min_input_tokens,
        max_input_tokens: m.max_input_tokens,
        budgets,
    }
}

/// Whose budget a `budget_exhausted` / `budget_available` string names; a provider must
/// exist and have a budget.
fn budget_of(
    src: &mut Source<'_>,
    span: &std::ops::Range<usize>,
    text: &str,
    raw: &RawConfig,
) -> Option<BudgetOf> {
    let Some(of) = BudgetOf::parse(text) else {
        src.error(
            span,
            format!("unknown budget `{text}`: expected \"key\", \"user\", \"team\", \"project\" or \"provider:NAME\""),
        );
        return None;
    };
    if let BudgetOf::Provider(name) = &of {
        match raw.providers.get(name) {
            None => {
                src.error(span, format!("`{text}` names unknown provider `{name}`"));
                return None;
            }
            Some(p) if p.get_ref().budget.is_none() => {
                src.error(span, format!("provider `{name}` has no budget to test"));
                return None;
            }
            Some(_) => {}
        }
    }
    Some(of)
}

pub(super) fn parse_target(src: &mut Source<'_>, t: &Str, raw: &RawConfig) -> Option<Target> {
    let text = src.expand(t);
    let (provider, model) = match text.split_once('/') {
        Some((p, m)) if !m.is_empty() => (p.to_owned(), Some(m.to_owned())),
        Some(_) => {
            src.error(
                &t.span(),
                format!("target `{}` has an empty model name", t.get_ref()),
            );
            return None;
        }
        None => (text.clone(), None),
    };
    if !raw.providers.contains_key(&provider) {
        src.error(
            &t.span(),
            format!(
                "target `{}` names unknown provider `{provider}`",
                t.get_ref()
            ),
        );
        return None;
    }
    Some(Target { provider, model })
}
