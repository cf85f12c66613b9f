//! `GET /v1/usage`: what the calling key has spent, per calendar period (UTC day, ISO week,
//! month), and every budget that applies to it with what remains. On an open gateway (no
//! keys) it reports the whole gateway's usage.

use axum::extract::{Request, State};
use axum::response::Response;
use http::StatusCode;
use serde_json::json;

use super::{authenticate, json_response, openai_error};
use crate::config::Period;
use crate::error::GatewayError;
use crate::governance::period;
use crate::pipeline::RequestCtx;
use crate::state::AppState;
use crate::store::{GroupBy, UsageFilter};

pub async fn usage(State(state): State<AppState>, req: Request) -> Response {
    let live = state.live();
    let mut ctx = RequestCtx::new();
    let (parts, _) = req.into_parts();
    let result: Result<serde_json::Value, GatewayError> = async {
        authenticate(&state, &live, &parts, &mut ctx).await?;
        let enforcer = state.governance().enforcer();
        let now = enforcer.clock().now_secs();
        let key_id = ctx.principal.as_ref().map(|p| p.key_id.clone());
        let unavailable = |e: &dyn std::fmt::Display| {
            tracing::error!(error = %e, "usage report failed");
            GatewayError::new(
                crate::error::ErrorKind::Unavailable,
                "usage cannot be read right now; try again shortly",
            )
        };
        let mut periods = serde_json::Map::new();
        for (name, p) in [("day", Period::Daily), ("week", Period::Weekly), ("month", Period::Monthly)] {
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
        let (key, budgets, rate_limits) = match ctx.principal.as_deref() {
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
            None => (serde_json::Value::Null, Vec::new(), Vec::new()),
        };
        Ok(json!({
            "object": "usage",
            "key": key,
            "periods": periods,
            "budgets": budgets,
            "rate_limits": rate_limits,
        }))
    }
    .await;
    match result {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => openai_error(&e, &ctx),
    }
}
