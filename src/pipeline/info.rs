//! The inference API's read routes, behind the same authentication as inference but
//! outside its stages: the models a caller may use (`GET /v1/models`), its usage and
//! budgets (`GET /v1/usage`), and its stored responses (`GET` and `DELETE
//! /v1/responses/{id}`).

use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use super::RequestCtx;
use super::auth::Caller;
use super::reply::{add_ctx_headers, json_response, openai_error};
use crate::config::Period;
use crate::error::{ErrorKind, GatewayError};
use crate::governance::period;
use crate::state::AppState;
use crate::store::{GroupBy, UsageFilter};

/// The JSON reply of a read route, or its error in OpenAI's format.
fn render(result: Result<Value, GatewayError>, ctx: &RequestCtx) -> Response {
    match result {
        Ok(v) => {
            let mut r = json_response(StatusCode::OK, &v);
            add_ctx_headers(&mut r, ctx);
            r
        }
        Err(e) => openai_error(&e, ctx),
    }
}

fn ctx_of(caller: &Caller) -> RequestCtx {
    let mut ctx = RequestCtx::new();
    ctx.principal.clone_from(&caller.principal);
    ctx
}

/// Only the models this key may use (SPEC §3), in OpenAI's list format.
pub fn models(state: &AppState, caller: &Caller) -> Response {
    let live = state.live();
    let ctx = ctx_of(caller);
    let data: Vec<_> = crate::routing::listed_models(&live)
        .into_iter()
        .filter(|(id, _)| super::admit::authorize(state, &ctx, id).is_ok())
        .map(|(id, owner)| json!({"id": id, "object": "model", "created": 0, "owned_by": owner}))
        .collect();
    json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
}

/// What the calling key has spent, per calendar period (UTC day, ISO week, month), and
/// every budget that applies to it with what remains. On an open gateway (no keys) the
/// whole gateway's usage.
pub async fn usage(state: &AppState, caller: &Caller) -> Response {
    let ctx = ctx_of(caller);
    render(usage_report(state, caller).await, &ctx)
}

async fn usage_report(state: &AppState, caller: &Caller) -> Result<Value, GatewayError> {
    let enforcer = state.governance().enforcer();
    let now = enforcer.clock().now_secs();
    let key_id = caller.principal.as_ref().map(|p| p.key_id.clone());
    let unavailable = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "usage report failed");
        GatewayError::new(
            ErrorKind::Unavailable,
            "usage cannot be read right now; try again shortly",
        )
    };
    let mut periods = serde_json::Map::new();
    for (name, p) in [
        ("day", Period::Daily),
        ("week", Period::Weekly),
        ("month", Period::Monthly),
    ] {
        let w = period::window(p, &jiff::tz::TimeZone::UTC, now);
        let filter = UsageFilter {
            since: w.start,
            until: Some(w.end),
            key_id: key_id.clone(),
            team: None,
        };
        // Grouped by key within one key (or the whole gateway): sum the rows.
        let rows = state
            .store()
            .usage_report(GroupBy::Key, &filter)
            .await
            .map_err(|e| unavailable(&e))?;
        let sum = |f: fn(&crate::store::ReportRow) -> u64| rows.iter().map(f).sum::<u64>();
        periods.insert(
            name.to_owned(),
            json!({
                "start": w.start,
                "end": w.end,
                "requests": sum(|r| r.requests),
                "input_tokens": sum(|r| r.input_tokens),
                "output_tokens": sum(|r| r.output_tokens),
                "cost_usd": sum(|r| r.cost_nanos) as f64 / crate::config::NANOS_PER_USD,
            }),
        );
    }
    let (key, budgets, rate_limits) = match caller.principal.as_deref() {
        Some(p) => {
            let directory = state.governance().directory();
            let budgets = enforcer
                .budget_status(&directory, p)
                .await
                .map_err(|e| unavailable(&e))?;
            let limits: Vec<_> = crate::governance::budget::caller_scopes(p, &directory)
                .into_iter()
                .filter(|(_, pol)| !pol.rate_limit.is_empty())
                .map(|(s, pol)| json!({"scope": s.kind.as_str(), "name": s.label, "limits": pol.rate_limit}))
                .collect();
            (
                json!({"id": p.key_id, "name": p.key_name, "user": p.user, "team": p.team, "project": p.project}),
                budgets,
                limits,
            )
        }
        None => (Value::Null, Vec::new(), Vec::new()),
    };
    Ok(json!({
        "object": "usage",
        "key": key,
        "periods": periods,
        "budgets": budgets,
        "rate_limits": rate_limits,
    }))
}

/// A response this key stored.
pub async fn get_response(state: &AppState, caller: &Caller, id: &str) -> Response {
    let ctx = ctx_of(caller);
    let owner = super::client::responses::owner(caller.principal.as_deref());
    let result = state
        .responses()
        .get(state.store(), id, owner.as_deref())
        .await
        .map(|row| serde_json::from_str(&row.response).unwrap_or(Value::Null));
    render(result, &ctx)
}

/// Delete a response this key stored.
pub async fn delete_response(state: &AppState, caller: &Caller, id: &str) -> Response {
    let ctx = ctx_of(caller);
    let owner = super::client::responses::owner(caller.principal.as_deref());
    let result = match state.store().delete_response(id, owner.as_deref()).await {
        Ok(true) => Ok(json!({"id": id, "object": "response", "deleted": true})),
        Ok(false) => Err(crate::responses::not_found(id)),
        Err(e) => {
            tracing::error!(error = %e, "stored response not deleted");
            Err(GatewayError::new(
                ErrorKind::Unavailable,
                "stored responses cannot be changed right now",
            ))
        }
    };
    render(result, &ctx)
}
