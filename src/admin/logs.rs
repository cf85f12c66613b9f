//! `GET /admin/api/logs`: the request log, filtered and a page at a time, as JSON, CSV or
//! JSON lines (SPEC §3). The admin sees every request; a team admin its team's; any other key
//! its own (so that a key's holder can follow what it spends).
//!
//! Filters: `since`, `until` (Unix seconds or a duration back, `7d`), `key` (id), `team`,
//! `user`, `project`, `model`, `provider`, `status` (`ok`, `error`, `cancelled`),
//! `error_class`, `tag` (`name=value`), `q`
//! (text of the error), `limit` (1 to 1,000, default 100), `cursor` (the previous page's
//! `next_cursor`), `format` (`json`, `csv`, `jsonl`).
//!
//! `GET /admin/api/logs/{request_id}`: one request's record, with the bodies it kept
//! (`log_bodies`) for the admin; a team admin sees its team's records, a key its own, without
//! bodies.
//!
//! The dashboard reads the same way: [`filter`] parses the same parameters, [`page`] and
//! [`entry_of`] apply the same scope.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

use super::{AdminResult, Caller, json as reply, respond, store_failed};
use crate::error::GatewayError;
use crate::governance::now_unix;
use crate::state::AppState;
use crate::store::LogFilter;

pub async fn logs(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    respond(logs_inner(&state, caller, &q).await)
}

async fn logs_inner(state: &AppState, caller: Caller, q: &HashMap<String, String>) -> AdminResult {
    let (f, format) = filter(q, now_unix())?;
    let (rows, next_cursor) = page(state, &caller, f).await?;
    Ok(match format {
        "csv" => text_reply(
            crate::store::logs_csv(&rows),
            "text/csv; charset=utf-8",
            next_cursor.as_deref(),
        ),
        "jsonl" => {
            let mut body = String::new();
            for r in &rows {
                body.push_str(&r.to_string());
                body.push('\n');
            }
            text_reply(body, "application/x-ndjson", next_cursor.as_deref())
        }
        _ => reply(
            StatusCode::OK,
            &json!({"object": "list", "data": rows, "next_cursor": next_cursor}),
        ),
    })
}

/// One page of the log in `caller`'s scope, whatever the filter asks for, and the cursor of
/// the next page.
pub async fn page(
    state: &AppState,
    caller: &Caller,
    mut f: LogFilter,
) -> Result<(Vec<serde_json::Value>, Option<String>), GatewayError> {
    caller.confine(&mut f.team, &mut f.key_id);
    let (rows, next) = state.store().logs(&f).await.map_err(|e| store_failed(&e))?;
    Ok((rows, next.map(|(at, id)| format!("{at}_{id}"))))
}

/// A filter and an output format from the query's parameters (the last week by default).
pub fn filter(
    q: &HashMap<String, String>,
    now: i64,
) -> Result<(LogFilter, &'static str), GatewayError> {
    let mut f = LogFilter {
        since: now - 7 * 86_400,
        limit: 100,
        ..LogFilter::default()
    };
    let mut format = "json";
    for (k, v) in q {
        let v = v.as_str();
        let text = |v: &str| Some(v.to_owned()).filter(|v| !v.is_empty());
        match k.as_str() {
            "since" => f.since = super::reports::time_param("since", v, now)?,
            "until" => f.until = Some(super::reports::time_param("until", v, now)?),
            "key" => f.key_id = text(v),
            "team" => f.team = text(v),
            "user" => f.user = text(v),
            "project" => f.project = text(v),
            "error_class" => f.error_class = text(v),
            "model" => f.model = text(v),
            "provider" => f.provider = text(v),
            "status" => {
                if !matches!(v, "ok" | "error" | "cancelled") {
                    return Err(GatewayError::invalid_param(
                        "status",
                        "`status` must be ok, error or cancelled",
                    ));
                }
                f.status = text(v);
            }
            "tag" => f.tag = text(v),
            "q" => f.error_text = text(v),
            "limit" => {
                f.limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=crate::store::MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        GatewayError::invalid_param("limit", "`limit` must be 1 to 1000")
                    })?;
            }
            "cursor" => {
                let parsed = v
                    .split_once('_')
                    .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_owned())))
                    .filter(|(_, id)| !id.is_empty());
                f.after = Some(parsed.ok_or_else(|| {
                    GatewayError::invalid_param(
                        "cursor",
                        "invalid `cursor`: use a page's `next_cursor`",
                    )
                })?);
            }
            "format" => {
                format = match v {
                    "json" => "json",
                    "csv" => "csv",
                    "jsonl" => "jsonl",
                    _ => {
                        return Err(GatewayError::invalid_param(
                            "format",
                            "`format` must be json, csv or jsonl",
                        ));
                    }
                };
            }
            other => {
                return Err(GatewayError::invalid_param(
                    other,
                    format!("unknown parameter `{other}`"),
                ));
            }
        }
    }
    Ok((f, format))
}

pub async fn entry(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    respond(entry_inner(&state, caller, id).await)
}

async fn entry_inner(state: &AppState, caller: Caller, id: String) -> AdminResult {
    Ok(reply(StatusCode::OK, &entry_of(state, &caller, &id).await?))
}

/// One request's record in `caller`'s scope (404 outside it), with its kept bodies for the
/// admin.
pub async fn entry_of(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<serde_json::Value, GatewayError> {
    let mut f = LogFilter {
        request_id: Some(id.to_owned()),
        limit: 1,
        ..LogFilter::default()
    };
    caller.confine(&mut f.team, &mut f.key_id);
    let (mut rows, _) = state.store().logs(&f).await.map_err(|e| store_failed(&e))?;
    let Some(mut row) = rows.pop() else {
        return Err(super::not_found("request"));
    };
    if matches!(caller, Caller::Admin) {
        let bodies = state
            .store()
            .request_bodies(id)
            .await
            .map_err(|e| store_failed(&e))?;
        row["bodies"] = json!(bodies);
    }
    Ok(row)
}

/// An export page, with the next page's cursor in `x-next-cursor`.
fn text_reply(body: String, content_type: &'static str, next: Option<&str>) -> Response {
    let mut r = Response::new(axum::body::Body::from(body));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(c) = next.and_then(|c| HeaderValue::from_str(c).ok()) {
        r.headers_mut().insert("x-next-cursor", c);
    }
    r
}
