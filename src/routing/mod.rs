//! Routing: which providers, with which model names, may serve a request.
//!
//! `resolve` walks the `[[routes]]` top to bottom: a `rewrite` renames the model and keeps
//! matching; the first `targets` rule gives the failover chain. When no rule matches, a name
//! of the form `provider/model` addresses that provider directly, and otherwise the first
//! provider (in file order) whose `models` patterns match serves it, catch-all providers
//! (`models = ["*"]`, the default of `openai-compatible`) last.
//!
//! A rule may also test [`Facts`] about the request: headers, the caller's key, team and user,
//! a tag, the estimated input tokens, and budget states (`budget_exhausted` serves callers
//! whose budget is spent instead of refusing them; a provider's budget state is read before
//! routing, only when some rule tests it).
//!
//! [`route`] orders the chosen rule's targets for the pipeline: a split picks one by weight
//! (sticky by a hash of the caller when asked) and puts the others after it, heaviest first;
//! a balanced pool puts the least loaded first ([`balance`]); a failover chain keeps its
//! order. [`resolve_with`] is the same walk without choosing (written order, no state
//! touched), for admission to price every possible target.
//!
//! Each provider's run-time form ([`Provider`]: its adapter, backend and keys, and the order
//! to use the keys in), the run-time health of providers ([`backends`]), the retry budget
//! ([`retry`]) and the loop guard ([`loopguard`]) live beside the rules.

pub mod backends;
pub mod balance;
pub mod loopguard;
mod provider;
pub mod retry;

use std::sync::Arc;

use crate::config::{Balance, BudgetOf, Config, RouteAction, Sticky};
use crate::error::{ErrorKind, GatewayError};
pub use provider::{KeyPlan, Provider};

/// Live routing state: one config snapshot and its providers. A request holds one `Arc<Live>`
/// from start to end, so a reload never changes a request mid-flight.
pub struct Live {
    pub config: Arc<Config>,
    pub providers: Vec<Arc<Provider>>,
    /// Round-robin state of each rule (used by `balance = "round_robin"`).
    rr: Vec<balance::RoundRobin>,
    pub backends: Arc<backends::Backends>,
}

impl Live {
    /// A snapshot for `config`; its providers share health, load and connection pools with
    /// earlier snapshots through `backends`.
    pub fn new(config: Config, backends: Arc<backends::Backends>) -> Self {
        let providers = config
            .providers
            .iter()
            .map(|p| Arc::new(Provider::new(p.clone(), &backends, &config.server.egress)))
            .collect();
        let rr = config.routes.iter().map(|_| Default::default()).collect();
        Self {
            config: Arc::new(config),
            providers,
            rr,
            backends,
        }
    }

    pub fn provider(&self, name: &str) -> Option<&Arc<Provider>> {
        self.providers.iter().find(|p| p.name() == name)
    }
}

/// One place to send the request: a provider and the model name to ask it for.
#[derive(Clone)]
pub struct Candidate {
    pub provider: Arc<Provider>,
    pub model: String,
}

pub struct Resolved {
    pub candidates: Vec<Candidate>,
    /// Index of the `[[routes]]` rule that chose the targets, if one did.
    pub rule: Option<usize>,
    /// The model name after the rules' rewrites.
    pub model: String,
}

/// What routing rules may test about a request besides its model.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Budgets found spent: the caller's (which a `budget_exhausted` rule serves instead of
    /// refusing) and those of the providers some rule tests.
    pub spent: Vec<BudgetOf>,
    /// The caller's key name, team and user.
    pub key: Option<String>,
    pub team: Option<String>,
    pub user: Option<String>,
    pub tags: Vec<String>,
    /// Estimated input tokens.
    pub input_tokens: u64,
    /// Values of the request headers some rule tests.
    pub headers: Vec<(http::HeaderName, String)>,
}

impl Facts {
    /// The values of the request headers that the config's rules test.
    pub fn headers_of(live: &Live, headers: &http::HeaderMap) -> Vec<(http::HeaderName, String)> {
        let mut out: Vec<(http::HeaderName, String)> = Vec::new();
        for name in crate::config::RouteConditions::tested_headers(&live.config.routes) {
            if out.iter().any(|(n, _)| n == name) {
                continue;
            }
            if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
                out.push((name.clone(), v.to_owned()));
            }
        }
        out
    }
}

fn holds(c: &crate::config::RouteConditions, f: &Facts) -> bool {
    let text = |p: &Option<crate::config::ModelPattern>, v: &Option<String>| {
        p.as_ref()
            .is_none_or(|p| v.as_deref().is_some_and(|v| p.matches(v)))
    };
    c.budgets
        .iter()
        .all(|b| f.spent.iter().any(|s| s.satisfies(&b.of)) == b.exhausted)
        && text(&c.key, &f.key)
        && text(&c.team, &f.team)
        && text(&c.user, &f.user)
        && c.tag
            .as_ref()
            .is_none_or(|p| f.tags.iter().any(|t| p.matches(t)))
        && c.min_input_tokens.is_none_or(|m| f.input_tokens >= m)
        && c.max_input_tokens.is_none_or(|m| f.input_tokens <= m)
        && c.headers
            .iter()
            .all(|(name, p)| f.headers.iter().any(|(n, v)| n == name && p.matches(v)))
}

pub fn resolve(live: &Live, requested: &str) -> Result<Resolved, GatewayError> {
    resolve_with(live, requested, &Facts::default())
}

/// A request's route, resolved once when its facts are known and handed to admission and
/// then to the attempt loop, so that routing is walked once per request (again only when
/// admission finds a budget spent, which rules may test).
pub struct Query<'a> {
    pub live: &'a Live,
    pub model: &'a str,
    pub facts: &'a Facts,
    pub resolved: Result<Resolved, GatewayError>,
}

impl<'a> Query<'a> {
    pub fn new(live: &'a Live, model: &'a str, facts: &'a Facts) -> Self {
        Self {
            live,
            model,
            facts,
            resolved: resolve_with(live, model, facts),
        }
    }

    /// The candidates that may serve the request (none when it has no route).
    pub fn candidates(&self) -> &[Candidate] {
        self.resolved
            .as_ref()
            .map_or(&[], |r| r.candidates.as_slice())
    }

    /// Would a `budget_exhausted` rule serve the request once these budgets are spent?
    pub fn serves_exhausted(&self, spent: &[BudgetOf]) -> bool {
        serves_exhausted(self.live, self.model, self.facts, spent)
    }
}

/// True when a `budget_exhausted` rule would serve `requested` for a caller whose budgets
/// `spent` are spent: the request then routes by that rule instead of being refused.
pub fn serves_exhausted(live: &Live, requested: &str, facts: &Facts, spent: &[BudgetOf]) -> bool {
    let mut facts = facts.clone();
    facts.spent.extend_from_slice(spent);
    resolve_with(live, requested, &facts).is_ok_and(|r| {
        r.rule
            .and_then(|i| live.config.routes.get(i))
            .is_some_and(|route| route.conditions.serves_spent_callers())
    })
}

pub fn resolve_with(live: &Live, requested: &str, facts: &Facts) -> Result<Resolved, GatewayError> {
    let mut name = requested.to_owned();
    for (i, route) in live.config.routes.iter().enumerate() {
        if !route.model.as_ref().is_none_or(|m| m.matches(&name))
            || !holds(&route.conditions, facts)
        {
            continue;
        }
        match &route.action {
            RouteAction::Rewrite(to) => name.clone_from(to),
            RouteAction::Targets { .. } | RouteAction::Split { .. } => {
                let candidates = route
                    .action
                    .targets()
                    .iter()
                    .filter_map(|w| {
                        Some(Candidate {
                            provider: live.provider(&w.target.provider)?.clone(),
                            model: w.target.model.clone().unwrap_or_else(|| name.clone()),
                        })
                    })
                    .collect();
                return Ok(Resolved {
                    candidates,
                    rule: Some(i),
                    model: name,
                });
            }
        }
    }
    if let Some((prefix, model)) = name.split_once('/')
        && let Some(p) = live.provider(prefix)
    {
        return Ok(Resolved {
            candidates: vec![Candidate {
                provider: p.clone(),
                model: model.to_owned(),
            }],
            rule: None,
            model: name.clone(),
        });
    }
    let chosen = live
        .providers
        .iter()
        .filter(|p| !p.config.is_catch_all())
        .find(|p| p.config.serves(&name))
        .or_else(|| live.providers.iter().find(|p| p.config.serves(&name)));
    match chosen {
        Some(p) => Ok(Resolved {
            candidates: vec![Candidate {
                provider: p.clone(),
                model: name.clone(),
            }],
            rule: None,
            model: name,
        }),
        None => Err(GatewayError::new(
            ErrorKind::ModelNotFound,
            format!("model `{requested}` is not served by any configured provider"),
        )
        .with_param("model")),
    }
}

/// The one candidate of an explicit target (a spent budget's `route_to`): its provider,
/// with the target's model or else the requested one.
pub fn resolve_target(
    live: &Live,
    target: &crate::config::Target,
    requested: &str,
) -> Result<Resolved, GatewayError> {
    let provider = live.provider(&target.provider).ok_or_else(|| {
        GatewayError::new(
            ErrorKind::ModelNotFound,
            format!(
                "budget fallback target `{}` is not a configured provider",
                target.provider
            ),
        )
    })?;
    Ok(Resolved {
        candidates: vec![Candidate {
            provider: provider.clone(),
            model: target.model.clone().unwrap_or_else(|| requested.to_owned()),
        }],
        rule: None,
        model: requested.to_owned(),
    })
}

/// Resolve the route and order its candidates for this request: the split's pick or the
/// least loaded first (see the module header). Each call advances round-robin state, so
/// call it once per request.
pub fn route(live: &Live, requested: &str, facts: &Facts) -> Result<Resolved, GatewayError> {
    Ok(order(live, resolve_with(live, requested, facts)?, facts))
}

/// Order the candidates of a resolved route for this request (see [`route`]).
pub fn order(live: &Live, mut r: Resolved, facts: &Facts) -> Resolved {
    let Some(i) = r.rule else { return r };
    let Some(rule) = live.config.routes.get(i) else {
        return r;
    };
    // Candidates whose provider is gone were dropped; weights follow the ones kept.
    let weights: Vec<u32> = rule
        .action
        .targets()
        .iter()
        .filter(|w| live.provider(&w.target.provider).is_some())
        .map(|w| w.weight)
        .collect();
    if weights.len() != r.candidates.len() || r.candidates.len() < 2 {
        return r;
    }
    let order = match &rule.action {
        RouteAction::Split { sticky, .. } => {
            let value = match sticky {
                Some(Sticky::User) => facts.user.as_deref().or(facts.key.as_deref()),
                Some(Sticky::Header(h)) => facts
                    .headers
                    .iter()
                    .find(|(n, _)| n == h)
                    .map(|(_, v)| v.as_str()),
                None => None,
            };
            let point =
                value.map_or_else(crate::random_u64, |v| balance::sticky_point(&rule.name, v));
            match balance::pick_weighted(&weights, point) {
                Some(first) => balance::chosen_then_heaviest(&weights, first),
                None => return r,
            }
        }
        RouteAction::Targets { balance: b, .. } => {
            let load = |f: &dyn Fn(&backends::Load) -> u64| -> Vec<u64> {
                r.candidates
                    .iter()
                    .map(|c| f(&c.provider.backend.load))
                    .collect()
            };
            match b {
                Balance::Failover => return r,
                Balance::RoundRobin => {
                    balance::chosen_then_heaviest(&weights, live.rr[i].pick(&weights))
                }
                Balance::LeastInFlight => balance::by_lowest(&load(&|l| l.in_flight())),
                // One request in 20 explores in random order, so a backend that was slow
                // once is measured again.
                Balance::LowestLatency if crate::random_unit() < 0.05 => {
                    let first = (crate::random_u64() % weights.len() as u64) as usize;
                    balance::chosen_then_heaviest(&weights, first)
                }
                Balance::LowestLatency => balance::by_lowest(&load(&|l| l.latency_us())),
            }
        }
        RouteAction::Rewrite(_) => return r,
    };
    let mut slots: Vec<Option<Candidate>> = r.candidates.into_iter().map(Some).collect();
    r.candidates = order
        .iter()
        .filter_map(|i| slots.get_mut(*i)?.take())
        .collect();
    r
}

/// The mirror of rule `rule`, when this request is sampled for it: the rule, its mirror and
/// the shadow's candidate.
pub fn mirror_for<'l>(
    live: &'l Live,
    rule: Option<usize>,
    model: &str,
) -> Option<(
    &'l crate::config::Route,
    &'l crate::config::Mirror,
    Candidate,
)> {
    let route = live.config.routes.get(rule?)?;
    let m = route.mirror.as_ref()?;
    if m.sample <= 0.0 || crate::random_unit() >= m.sample {
        return None;
    }
    let candidate = Candidate {
        provider: live.provider(&m.target.provider)?.clone(),
        model: m.target.model.clone().unwrap_or_else(|| model.to_owned()),
    };
    Some((route, m, candidate))
}

/// Model names to list in `/v1/models`: literal route patterns and provider model lists.
pub fn listed_models(live: &Live) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut push = |id: &str, owner: &str| {
        if !out.iter().any(|(i, _)| i == id) {
            out.push((id.to_owned(), owner.to_owned()));
        }
    };
    for r in &live.config.routes {
        if let Some(lit) = r.model.as_ref().and_then(|m| m.literal()) {
            push(lit, "gatehouse");
        }
    }
    for p in &live.config.providers {
        for m in &p.models {
            if let Some(lit) = m.literal() {
                push(lit, &p.name);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn live(text: &str) -> Live {
        let env: HashMap<String, String> = HashMap::new();
        Live::new(
            crate::config::parse("t.toml", text, &env).unwrap(),
            Arc::default(),
        )
    }

    const CFG: &str = r#"
[providers.mistral]
kind = "mistral"
api_key = "k"
[providers.local]
kind = "openai-compatible"
base_url = "http://127.0.0.1:1/v1"
[providers.oa]
kind = "openai"
api_key = "k"
[[routes]]
match = { model = "claude-opus-*" }
rewrite = "claude-cheap"
[[routes]]
match = { model = "claude-*" }
targets = ["mistral/devstral-2512", "local"]
"#;

    fn names(r: &Resolved) -> Vec<String> {
        r.candidates
            .iter()
            .map(|c| format!("{}/{}", c.provider.name(), c.model))
            .collect()
    }

    #[test]
    fn rules_rewrite_then_target() {
        let l = live(CFG);
        let r = resolve(&l, "claude-opus-4").unwrap();
        assert_eq!(names(&r), ["mistral/devstral-2512", "local/claude-cheap"]);
        assert_eq!(r.rule, Some(1));
    }

    #[test]
    fn provider_defaults_and_explicit_prefix() {
        let l = live(CFG);
        assert_eq!(names(&resolve(&l, "gpt-4o").unwrap()), ["oa/gpt-4o"]);
        assert_eq!(
            names(&resolve(&l, "devstral-small").unwrap()),
            ["mistral/devstral-small"]
        );
        assert_eq!(names(&resolve(&l, "qwen3").unwrap()), ["local/qwen3"]);
        assert_eq!(
            names(&resolve(&l, "oa/my-ft-model").unwrap()),
            ["oa/my-ft-model"]
        );
    }

    #[test]
    fn unknown_model_is_404() {
        let l = live("[providers.oa]\nkind = \"openai\"\napi_key = \"k\"\n");
        let e = resolve(&l, "llama-3").err().unwrap();
        assert_eq!(e.status(), http::StatusCode::NOT_FOUND);
    }

    #[test]
    fn rules_test_headers_callers_tags_and_input_size() {
        let l = live(
            r#"
[providers.big]
kind = "openai-compatible"
base_url = "http://127.0.0.1:1/v1"
[providers.small]
kind = "openai-compatible"
base_url = "http://127.0.0.1:2/v1"
[[routes]]
match = { model = "m", header = { "X-Env" = "prod*" } }
targets = ["big/prod"]
[[routes]]
match = { model = "m", team = "ml", tag = "feature=search" }
targets = ["big/search"]
[[routes]]
match = { model = "m", key = "ci-*", user = "*@example.com" }
targets = ["small/ci"]
[[routes]]
match = { model = "m", min_input_tokens = 100000 }
targets = ["big/long"]
[[routes]]
match = { model = "m", budget_exhausted = true }
targets = ["small/cheap"]
[[routes]]
match = { model = "m" }
targets = ["small/default"]
"#,
        );
        let served = |f: Facts| names(&resolve_with(&l, "m", &f).unwrap()).remove(0);
        assert_eq!(served(Facts::default()), "small/default");
        let mut headers = http::HeaderMap::new();
        headers.insert("x-env", http::HeaderValue::from_static("production"));
        headers.insert("x-other", http::HeaderValue::from_static("1"));
        let only_tested = Facts::headers_of(&l, &headers);
        assert_eq!(only_tested.len(), 1, "{only_tested:?}");
        assert_eq!(
            served(Facts {
                headers: only_tested,
                ..Facts::default()
            }),
            "big/prod"
        );
        let ml = Facts {
            team: Some("ml".into()),
            ..Facts::default()
        };
        assert_eq!(served(ml.clone()), "small/default", "the tag is missing");
        assert_eq!(
            served(Facts {
                tags: vec!["env=x".into(), "feature=search".into()],
                ..ml
            }),
            "big/search"
        );
        let ci = Facts {
            key: Some("ci-runner".into()),
            user: Some("bot@example.com".into()),
            ..Facts::default()
        };
        assert_eq!(served(ci), "small/ci");
        assert_eq!(
            served(Facts {
                input_tokens: 150_000,
                ..Facts::default()
            }),
            "big/long"
        );
        assert_eq!(
            served(Facts {
                spent: vec![BudgetOf::Team],
                ..Facts::default()
            }),
            "small/cheap"
        );
        assert!(serves_exhausted(
            &l,
            "m",
            &Facts::default(),
            &[BudgetOf::Key]
        ));
        assert!(!serves_exhausted(
            &l,
            "other",
            &Facts::default(),
            &[BudgetOf::Key]
        ));
    }

    #[test]
    fn budget_conditions_name_whose_budget() {
        let l = live(
            r#"
[providers.mistral]
kind = "mistral"
api_key = "k"
budget = { tokens = 100000, period = "daily" }
[providers.local]
kind = "openai-compatible"
base_url = "http://127.0.0.1:2/v1"
[[routes]]
match = { model = "m", budget_exhausted = "team" }
targets = ["local/team-spent"]
[[routes]]
match = { model = "m", budget_exhausted = "provider:mistral" }
targets = ["local/mistral-spent"]
[[routes]]
match = { model = "m", budget_available = "key" }
targets = ["mistral/key-has-budget"]
[[routes]]
match = { model = "m" }
targets = ["local/key-spent"]
"#,
        );
        let served = |spent: Vec<BudgetOf>| {
            names(
                &resolve_with(
                    &l,
                    "m",
                    &Facts {
                        spent,
                        ..Facts::default()
                    },
                )
                .unwrap(),
            )
            .remove(0)
        };
        assert_eq!(served(vec![]), "mistral/key-has-budget");
        assert_eq!(served(vec![BudgetOf::Team]), "local/team-spent");
        assert_eq!(
            served(vec![BudgetOf::Provider("mistral".into())]),
            "local/mistral-spent"
        );
        assert_eq!(served(vec![BudgetOf::Key]), "local/key-spent");
        assert_eq!(
            served(vec![BudgetOf::Key, BudgetOf::Team]),
            "local/team-spent",
            "the first rule that holds serves"
        );
        // Only a rule asking for a spent caller budget serves a spent caller instead of
        // refusing: the key's spent budget reaches the catch-all rule, which does not ask.
        let none = Facts::default();
        assert!(serves_exhausted(&l, "m", &none, &[BudgetOf::Team]));
        assert!(!serves_exhausted(&l, "m", &none, &[BudgetOf::Key]));
        assert!(!serves_exhausted(&l, "m", &none, &[BudgetOf::User]));
        assert_eq!(
            crate::config::RouteConditions::tested_provider_budgets(&l.config.routes)
                .collect::<Vec<_>>(),
            ["mistral"]
        );
    }
}
