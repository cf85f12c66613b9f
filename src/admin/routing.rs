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
