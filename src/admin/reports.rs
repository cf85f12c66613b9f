//! `/admin/api/budgets` (every budget in its current period: spent, reserved, remaining)
//! and `/admin/api/usage?by=key|team|user|project|model|provider|tag|day&since=&until=`.
//! A team admin sees its own team's only.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use http::StatusCode;
use serde_json::json;

use super::{AdminResult, Caller, json as reply, respond, store_failed};
use crate::config::Budget;
use crate::error::{ErrorKind, GatewayError};
use crate::governance::admission::BudgetStatus;
use crate::governance::budget::{Scope, ScopeKind};
use crate::governance::now_unix;
use crate::state::AppState;
use crate::store::{GroupBy, UsageFilter};

pub async fn budgets(State(state): State<AppState>, caller: Caller) -> Response {
    respond(budgets_inner(&state, caller).await)
}

async fn budgets_inner(state: &AppState, caller: Caller) -> AdminResult {
    let statuses = budget_statuses(state, &caller.manager()?).await?;
    Ok(reply(StatusCode::OK, &json!({"data": statuses})))
}

/// Every budget `caller` (the admin or a team admin) may see, in its current period: the
/// admin API's list and the dashboard's.
pub async fn budget_statuses(
    state: &AppState,
    caller: &Caller,
) -> Result<Vec<BudgetStatus>, GatewayError> {
    let d = state.governance().directory();
    let mut scoped: Vec<(Scope, Budget)> = Vec::new();
    let mut add = |kind: ScopeKind, name: &str, label: &str, budgets: &[Budget]| {
        for b in budgets {
            scoped.push((Scope::new(kind, name, label), b.clone()));
        }
    };
    for p in state.governance().principals() {
        if caller.may_manage(p.team.as_deref()) {
            add(ScopeKind::Key, &p.key_id, &p.key_name, &p.policy.budgets);
        }
    }
    for (n, m) in &d.users {
        if caller.may_manage(m.team.as_deref()) {
            add(ScopeKind::User, n, n, &m.policy.budgets);
        }
    }
    for (n, t) in &d.teams {
        if caller.may_manage(Some(n)) {
            add(ScopeKind::Team, n, n, &t.policy.budgets);
        }
    }
    for (n, m) in &d.projects {
        if caller.may_manage(m.team.as_deref()) {
            add(ScopeKind::Project, n, n, &m.policy.budgets);
        }
    }
    if matches!(caller, Caller::Admin) {
        for p in &state.live().config.providers {
            add(ScopeKind::Provider, &p.name, &p.name, &p.budgets);
        }
    }
    scoped.sort_by(|a, b| (a.0.kind, &a.0.label).cmp(&(b.0.kind, &b.0.label)));
    state
        .governance()
        .enforcer()
        .statuses(&scoped)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "admin API: budgets unreadable");
            GatewayError::new(
                ErrorKind::BudgetUnavailable,
                "budget counters cannot be read right now",
            )
        })
}

/// Usage grouped by `by` within `filter`'s window, in `caller`'s scope (a team admin's team,
/// a key's own key): the admin API's report and the dashboard's.
pub async fn usage_rows(
    state: &AppState,
    caller: &Caller,
    by: GroupBy,
    mut filter: UsageFilter,
) -> Result<Vec<crate::store::ReportRow>, GatewayError> {
    caller.confine(&mut filter.team, &mut filter.key_id);
    state
        .store()
        .usage_report(by, &filter)
        .await
        .map_err(|e| store_failed(&e))
}

/// `key=value` pairs of a query string; values are plain (no escapes needed by this API).
fn params(query: Option<&str>) -> Result<Vec<(&str, &str)>, GatewayError> {
    let mut out = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(GatewayError::invalid_param(
                k,
                format!("invalid value for `{k}`"),
            ));
        }
        out.push((k, v));
    }
    Ok(out)
}

/// A time: Unix seconds, or a duration back from now (`7d`, `24h`).
pub fn time_param(name: &str, v: &str, now: i64) -> Result<i64, GatewayError> {
    if let Ok(t) = v.parse::<i64>() {
        return Ok(t);
    }
    crate::config::parse_duration(v)
        .map(|d| now.saturating_sub(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)))
        .ok_or_else(|| {
            GatewayError::invalid_param(
                name,
                format!("invalid `{name}`: Unix seconds or a duration such as 7d"),
            )
        })
}

pub async fn usage(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(q): RawQuery,
) -> Response {
    respond(usage_inner(&state, caller, q.as_deref()).await)
}

async fn usage_inner(state: &AppState, caller: Caller, q: Option<&str>) -> AdminResult {
    let caller = caller.manager()?;
    let now = now_unix();
    let mut by = GroupBy::Key;
    let mut filter = UsageFilter {
        since: now - 7 * 86_400,
        ..UsageFilter::default()
    };
    for (k, v) in params(q)? {
        match k {
            "by" => {
                by = GroupBy::parse(v).ok_or_else(|| {
                    GatewayError::invalid_param(
                        "by",
                        "`by` must be key, team, user, project, model, provider, tag or day",
                    )
                })?;
            }
            "since" => filter.since = time_param("since", v, now)?,
            "until" => filter.until = Some(time_param("until", v, now)?),
            other => {
                return Err(GatewayError::invalid_param(
                    other,
                    format!("unknown parameter `{other}`"),
                ));
            }
        }
    }
    let rows = usage_rows(state, &caller, by, filter.clone()).await?;
    let data: Vec<_> = rows
        .iter()
        .map(|r| {
            json!({
                "group": r.group, "requests": r.requests, "input_tokens": r.input_tokens,
                "output_tokens": r.output_tokens, "cost_usd": r.cost_nanos as f64 / crate::config::NANOS_PER_USD,
            })
        })
        .collect();
    Ok(reply(
        StatusCode::OK,
        &json!({"by": by, "since": filter.since, "until": filter.until, "data": data}),
    ))
}
