//! Admin endpoints of routing and config (issue #4), all for the admin only:
//! - `GET /admin/api/config`: where the active config came from, its version and digest,
//!   and what the last reload did (with every error when it was refused);
//! - `POST /admin/api/config/reload`: reload now; 200 with warnings, or 422 with the errors
//!   (the last good config stays active);
//! - `GET /admin/api/routing`: the rules, and each provider's health (ejected, in flight,
//!   latency average, resting keys);
//! - `GET /metrics`: Prometheus text.

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde_json::json;

use super::{Caller, json, respond};
use crate::config::RouteAction;
use crate::state::AppState;

pub async fn config_status(State(state): State<AppState>, caller: Caller) -> Response {
    respond((|| {
        caller.admin_only()?;
        Ok(json(
            StatusCode::OK,
            &serde_json::to_value(state.reload_status()).unwrap_or_default(),
        ))
    })())
}

pub async fn reload_config(State(state): State<AppState>, caller: Caller) -> Response {
    if let Err(e) = caller.admin_only() {
        return respond(Err(e));
    }
    let attempt = crate::state::reload::reload(&state, "admin").await;
    let status = if attempt.ok {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let version = state.reload_status().version;
    json(
        status,
        &json!({
            "ok": attempt.ok,
            "version": version,
            "errors": attempt.errors,
            "warnings": attempt.warnings,
        }),
    )
}

fn weighted(targets: &[crate::config::Weighted]) -> Vec<serde_json::Value> {
    targets
        .iter()
        .map(|w| json!({"target": w.target.to_string(), "weight": w.weight}))
        .collect()
}

pub async fn status(State(state): State<AppState>, caller: Caller) -> Response {
    respond(routing_status(&state, &caller).map(|v| json(StatusCode::OK, &v)))
}

/// The rules in order, each provider's health and the routing settings (the admin only):
/// `GET /admin/api/routing` and the dashboard's providers and routes pages.
pub fn routing_status(
    state: &AppState,
    caller: &Caller,
) -> Result<serde_json::Value, crate::error::GatewayError> {
    caller.clone().admin_only()?;
    let live = state.live();
    let routes: Vec<_> = live
        .config
        .routes
        .iter()
        .map(|r| {
            let (action, balance, sticky) = match &r.action {
                RouteAction::Rewrite(to) => (json!({ "rewrite": to }), None, None),
                RouteAction::Targets { targets, balance } => (
                    json!({ "targets": weighted(targets) }),
                    Some(balance.as_str()),
                    None,
                ),
                RouteAction::Split { targets, sticky } => (
                    json!({ "split": weighted(targets) }),
                    None,
                    Some(match sticky {
                        Some(crate::config::Sticky::User) => "user".to_owned(),
                        Some(crate::config::Sticky::Header(h)) => format!("header:{h}"),
                        None => "none".to_owned(),
                    }),
                ),
            };
            json!({
                "name": r.name,
                "model": r.model.as_ref().map(|m| m.pattern.clone()),
                "action": action,
                "balance": balance,
                "sticky": sticky,
                "mirror": r.mirror.as_ref().map(|m| json!({"target": m.target.to_string(), "sample": m.sample})),
                "timeout_ms": r.timeout.map(|t| t.as_millis()),
            })
        })
        .collect();
    let providers: Vec<_> = live
        .providers
        .iter()
        .map(|p| {
            let b = &p.backend;
            json!({
                "name": p.name(),
                "kind": p.config.kind.as_str(),
                "ejected": b.is_ejected(),
                "ejected_ms": b.ejected_ms(),
                "ejections": b.ejections(),
                "in_flight": b.load.in_flight(),
                "latency_ms": b.load.latency_us() as f64 / 1000.0,
                "balance": p.config.balance.as_str(),
                "keys": p.keys.iter().zip(&p.config.api_keys).map(|(l, k)| json!({
                    "key": k.hint(),
                    "in_flight": l.in_flight(),
                    "latency_ms": l.latency_us() as f64 / 1000.0,
                    "resting_ms": l.cooling_ms(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let s = &live.config.routing;
    Ok(json!({
        "routes": routes,
        "providers": providers,
        "settings": {
            "max_attempts": s.max_attempts,
            "retry_budget": {"percent": s.retry_percent, "min": s.retry_min},
            "outlier": {"consecutive_failures": s.eject_after, "ejection_ms": s.ejection.as_millis(), "max_ejection_ms": s.max_ejection.as_millis(), "max_ejection_percent": s.max_ejection_percent},
        },
    }))
}

pub async fn metrics(caller: Caller) -> Response {
    if let Err(e) = caller.admin_only() {
        return respond(Err(e));
    }
    let mut r = Response::new(axum::body::Body::from(crate::metrics::render()));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

/// `POST /admin/api/routing/explain`: which rule and targets a request would take.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainBody {
    pub model: String,
    /// A key's name or id: its key, user and team, and its budgets' state, are the facts.
    pub key: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Request headers (those the rules test count).
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// Estimated input tokens.
    #[serde(default)]
    pub input_tokens: u64,
}

pub async fn explain(
    State(state): State<AppState>,
    caller: Caller,
    bytes: axum::body::Bytes,
) -> Response {
    let r = match super::body::<ExplainBody>(&bytes) {
        Ok(b) => explanation(&state, &caller, &b)
            .await
            .map(|v| json(StatusCode::OK, &v)),
        Err(e) => Err(e),
    };
    respond(r)
}

/// What the rules decide for a request of `b`'s model, key, tags and headers, now: the rule
/// (in order, the first that holds), the model after rewrites, the targets in the order
/// they would be tried (with each provider's health), and the budgets found spent, which
/// rules may test. The admin only, as `GET /admin/api/routing`.
pub async fn explanation(
    state: &AppState,
    caller: &Caller,
    b: &ExplainBody,
) -> Result<serde_json::Value, crate::error::GatewayError> {
    use crate::config::BudgetOf;
    use crate::error::GatewayError;
    caller.clone().admin_only()?;
    if b.model.trim().is_empty() {
        return Err(GatewayError::invalid_param("model", "`model` is required"));
    }
    let live = state.live();
    let principal = match b.key.as_deref().filter(|k| !k.is_empty()) {
        Some(k) => Some(
            state
                .governance()
                .principals()
                .into_iter()
                .find(|p| p.key_name == k || p.key_id == k)
                .ok_or_else(|| super::not_found("key"))?,
        ),
        None => None,
    };
    let unreadable = |e: crate::governance::ledger::LedgerError| {
        tracing::error!(error = %e, "admin API: budgets unreadable for an explanation");
        GatewayError::new(
            crate::error::ErrorKind::BudgetUnavailable,
            "budget counters cannot be read right now",
        )
    };
    let enforcer = state.governance().enforcer();
    let mut spent = Vec::new();
    if let Some(p) = &principal {
        let directory = state.governance().directory();
        for s in enforcer
            .budget_status(&directory, p)
            .await
            .map_err(unreadable)?
            .iter()
            .filter(|s| s.exhausted)
        {
            let of = match s.scope {
                "key" => BudgetOf::Key,
                "user" => BudgetOf::User,
                "team" => BudgetOf::Team,
                "project" => BudgetOf::Project,
                _ => continue,
            };
            if !spent.contains(&of) {
                spent.push(of);
            }
        }
    }
    for p in live
        .config
        .providers
        .iter()
        .filter(|p| !p.budgets.is_empty())
    {
        if enforcer.provider_spent(p).await.map_err(unreadable)? {
            spent.push(BudgetOf::Provider(p.name.clone()));
        }
    }
    let mut headers = http::HeaderMap::new();
    for (k, v) in &b.headers {
        let name = http::HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
            GatewayError::invalid_param("headers", format!("invalid header name `{k}`"))
        })?;
        let value = http::HeaderValue::from_str(v).map_err(|_| {
            GatewayError::invalid_param("headers", format!("invalid value of `{k}`"))
        })?;
        headers.insert(name, value);
    }
    let facts = crate::routing::Facts {
        spent: spent.clone(),
        key: principal.as_ref().map(|p| p.key_name.clone()),
        team: principal.as_ref().and_then(|p| p.team.clone()),
        user: principal.as_ref().and_then(|p| p.user.clone()),
        tags: b.tags.clone(),
        input_tokens: b.input_tokens,
        headers: crate::routing::Facts::headers_of(&live, &headers),
    };
    let spent: Vec<String> = spent
        .iter()
        .map(|s| match s {
            BudgetOf::Provider(p) => format!("provider {p}"),
            BudgetOf::Key => "key".to_owned(),
            BudgetOf::User => "user".to_owned(),
            BudgetOf::Team => "team".to_owned(),
            BudgetOf::Project => "project".to_owned(),
            BudgetOf::Caller => "caller".to_owned(),
        })
        .collect();
    let facts_json = json!({
        "key": facts.key, "team": facts.team, "user": facts.user, "tags": facts.tags,
        "input_tokens": facts.input_tokens, "budgets_spent": spent,
    });
    Ok(
        match crate::routing::resolve_with(&live, &b.model, &facts) {
            Err(e) => json!({"model": b.model, "facts": facts_json, "refused": e.message}),
            Ok(r) => {
                let r = crate::routing::order(&live, r, &facts);
                let rule = r.rule.and_then(|i| live.config.routes.get(i).map(|rule| {
                json!({"index": i, "name": rule.name, "model": rule.model.as_ref().map(|m| m.pattern.clone())})
            }));
                let targets: Vec<_> = r
                .candidates
                .iter()
                .map(|c| json!({"provider": c.provider.name(), "model": c.model, "ejected": c.provider.backend.is_ejected()}))
                .collect();
                json!({"model": b.model, "routed_model": r.model, "rule": rule, "targets": targets, "facts": facts_json})
            }
        },
    )
}
