//! The request log: `GET /ui/logs` (filters as query parameters, the admin API's own:
//! `since`, `until`, `key`, `team`, `user`, `project`, `model`, `provider`, `status`,
//! `error_class`, `tag`, `q`, `limit`,
//! `cursor`), `GET /ui/logs/{request_id}` (one request in full) and
//! `GET /ui/logs/{request_id}/body/{part}` (one kept body, as plain text).
//!
//! Every read goes through `admin::logs` with the viewer's caller, so a page shows exactly
//! what `GET /admin/api/logs` would: all of it to the admin, a team's requests to its team
//! admin, a key's own to its holder; kept bodies to the admin only. Pages are keyset-paginated
//! (the list never reads bodies); a body over [`INLINE_BODY`] bytes is not put in the page but
//! behind a link, so a request with a large body costs its page nothing.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use maud::{Markup, html};
use serde_json::Value;

use super::layout::{self, page};
use super::overview::{count, usd};
use super::viewer::Viewer;
use crate::admin::Caller;
use crate::admin::logs::{entry_of, filter, page as log_page};
use crate::error::ErrorKind;
use crate::governance::now_unix;
use crate::state::AppState;

/// Bodies up to this many bytes are shown in the page (collapsed); larger ones behind a link.
const INLINE_BODY: usize = 16 * 1024;
/// The filters the form offers, in order: parameter, label, placeholder.
const FILTERS: &[(&str, &str, &str)] = &[
    ("since", "Since", "7d"),
    ("until", "Until", "now"),
    ("model", "Model", "asked for or served"),
    ("provider", "Provider", ""),
    ("key", "Key id", ""),
    ("team", "Team", ""),
    ("user", "User", ""),
    ("project", "Project", ""),
    ("error_class", "Error class", "upstream_rejected"),
    ("tag", "Tag", "name=value"),
    ("q", "Error text", ""),
];
/// The parts of a request's kept bodies, in the order shown.
const PARTS: &[(&str, &str)] = &[
    ("request", "What the client sent"),
    (
        "provider_request",
        "What the gateway sent the provider (last attempt)",
    ),
    (
        "provider_response",
        "The provider's raw reply (last attempt)",
    ),
    ("reply", "What the client got"),
];

pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(mut q): Query<HashMap<String, String>>,
) -> Response {
    // An empty field of the form is no filter.
    q.retain(|_, v| !v.trim().is_empty());
    q.remove("format");
    let result = match filter(&q, now_unix()) {
        Ok((f, _)) => log_page(&state, &viewer.caller, f).await,
        Err(e) => Err(e),
    };
    let (rows, next, problem) = match result {
        Ok((rows, next)) => (rows, next, None),
        Err(e) if e.kind == ErrorKind::InvalidRequest => (Vec::new(), None, Some(e.message)),
        Err(e) => {
            tracing::error!(error = %e.message, "dashboard: the log is unreadable");
            return layout::unavailable("The log");
        }
    };
    let shown_key = !matches!(viewer.caller, Caller::Member(_));
    let content = html! {
        form.filters method="get" action="/ui/logs" role="search" {
            @for (name, label, hint) in FILTERS {
                @if *name != "key" || shown_key {
                    label {
                        span { (label) }
                        input name=(name) value=(q.get(*name).map_or("", String::as_str)) placeholder=(hint);
                    }
                }
            }
            label {
                span { "Status" }
                select name="status" {
                    @for (v, l) in [("", "any"), ("ok", "ok"), ("error", "error"), ("cancelled", "cancelled")] {
                        option value=(v) selected[q.get("status").map_or("", String::as_str) == v] { (l) }
                    }
                }
            }
            div.actions {
                button type="submit" { "Search" }
                a href="/ui/logs" { "Clear" }
            }
        }
        @if let Some(p) = &problem {
            p.error role="alert" { (p) }
        }
        @if rows.is_empty() && problem.is_none() {
            p.empty { "No request matches." }
        } @else if !rows.is_empty() {
            div.scroll {
                table.log {
                    thead { tr {
                        th scope="col" { "Time (UTC)" }
                        th scope="col" { "Status" }
                        th scope="col" { "Model" }
                        th scope="col" { "Provider" }
                        @if shown_key { th scope="col" { "Key" } th scope="col" { "Team" } }
                        th.num scope="col" { "Tokens in / out" }
                        th.num scope="col" { "Cost" }
                        th.num scope="col" { "Latency" }
                    } }
                    tbody {
                        @for r in &rows {
                            (row(r, shown_key))
                        }
                    }
                }
            }
        }
        nav.pages aria-label="Pages" {
            @if q.contains_key("cursor") {
                a href=(link(&q, None)) { "Newest" }
            }
            @if let Some(c) = &next {
                a href=(link(&q, Some(c))) rel="next" { "Older" }
            }
        }
    };
    page(&viewer, "/ui/logs", "Requests", content)
}

fn row(r: &Value, shown_key: bool) -> Markup {
    let id = r["request_id"].as_str().unwrap_or("");
    let status = r["status"].as_str().unwrap_or("");
    html! {
        tr {
            td { a href=(format!("/ui/logs/{}", enc(id))) { (layout::time(r["created_at"].as_i64().unwrap_or(0))) } }
            td { span class=(format!("status {status}")) { (status) }
                @if let Some(c) = r["error_class"].as_str() { " " span.hint { (c) } }
                @if r["fallback"] == true { " " span.hint { "fallback" } } }
            td { (model(r)) }
            td { (text(&r["provider"])) }
            @if shown_key {
                td { (text(&r["key_name"])) }
                td { (text(&r["team"])) }
            }
            td.num { (count(uint(&r["tokens"]["input"]))) " / " (count(uint(&r["tokens"]["output"]))) }
            td.num { (usd(nanos(&r["cost_usd"]))) }
            td.num { (ms(&r["latency_ms"])) }
        }
    }
}

pub async fn entry(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    let r = match entry_of(&state, &viewer.caller, &id).await {
        Ok(r) => r,
        Err(e) if e.kind == ErrorKind::NotFound => {
            return layout::problem(
                StatusCode::NOT_FOUND,
                "No such request",
                "No request with this id is in the log for this sign-in.",
            );
        }
        Err(e) => {
            tracing::error!(error = %e.message, "dashboard: the log is unreadable");
            return layout::unavailable("The log");
        }
    };
    let status = r["status"].as_str().unwrap_or("");
    let content = html! {
        p { a href="/ui/logs" { "← Requests" } }
        dl.facts {
            dt { "Request id" } dd { code { (id) } }
            dt { "Time" } dd { (layout::time(r["created_at"].as_i64().unwrap_or(0))) }
            dt { "Status" } dd {
                span class=(format!("status {status}")) { (status) }
                @if let Some(h) = r["http_status"].as_i64() { " (HTTP " (h) ")" }
                @if let Some(c) = r["error_class"].as_str() { " " (c) }
            }
            @if let Some(e) = r["error"].as_str() {
                dt { "Error" } dd { pre.error-text { (e) } }
            }
            dt { "Client schema" } dd { (text(&r["client_schema"])) }
            dt { "Model" } dd { (model(&r)) }
            dt { "Provider" } dd { (text(&r["provider"])) }
            dt { "Route" } dd { (text(&r["route"])) @if r["fallback"] == true { " (served by a fallback)" } }
            dt { "Key" } dd { (text(&r["key_name"])) " " span.hint { (text(&r["key_id"])) } }
            dt { "Team / user / project" } dd { (text(&r["team"])) " / " (text(&r["user"])) " / " (text(&r["project"])) }
            dt { "Tokens" } dd {
                (count(uint(&r["tokens"]["input"]))) " in, " (count(uint(&r["tokens"]["output"]))) " out"
                @if uint(&r["tokens"]["cache_read"]) > 0 { ", " (count(uint(&r["tokens"]["cache_read"]))) " read from cache" }
                @if uint(&r["tokens"]["reasoning"]) > 0 { ", " (count(uint(&r["tokens"]["reasoning"]))) " reasoning" }
            }
            dt { "Cost" } dd { (usd(nanos(&r["cost_usd"]))) }
            dt { "Latency" } dd { (ms(&r["latency_ms"])) @if !r["ttft_ms"].is_null() { ", first token " (ms(&r["ttft_ms"])) } }
            @if let Some(w) = r["warnings"].as_str() {
                dt { "Translation warnings" } dd { (w) }
            }
            @if let Some(m) = r["mirror_of"].as_str() {
                dt { "Mirror of" } dd { a href=(format!("/ui/logs/{}", enc(m))) { (m) } }
            }
        }
        h2 { "Attempts" }
        @match r["attempts"].as_array() {
            Some(list) if !list.is_empty() => {
                ol.attempts {
                    @for a in list { li { (object(a)) } }
                }
            }
            _ => p.empty { "No attempt reached a provider." },
        }
        @if matches!(viewer.caller, Caller::Admin) {
            h2 { "Bodies" }
            @if r["bodies"].is_null() {
                p.empty { "No body was kept for this request ([log] bodies, docs/configuration.md)." }
            } @else {
                @for (part, label) in PARTS {
                    @let body = &r["bodies"][*part];
                    @if let Some(t) = body["text"].as_str() {
                        details.body {
                            summary {
                                (label) " " span.hint {
                                    (count(uint(&body["bytes"]))) " bytes"
                                    @if body["truncated"] == true { ", cut at the kept size" }
                                }
                            }
                            @if t.len() <= INLINE_BODY {
                                pre { (t) }
                            } @else {
                                p { a href=(format!("/ui/logs/{}/body/{part}", enc(&id))) { "Open the whole body as text" } }
                            }
                        }
                    }
                }
            }
        }
    };
    page(&viewer, "/ui/logs", "Request", content)
}

/// One kept body as plain text (the admin only, as the bodies in `GET /admin/api/logs/{id}`).
pub async fn body(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, part)): Path<(String, String)>,
) -> Response {
    if !matches!(viewer.caller, Caller::Admin) || !PARTS.iter().any(|(p, _)| *p == part) {
        return layout::problem(
            StatusCode::NOT_FOUND,
            "No such body",
            "Nothing is kept here for this sign-in.",
        );
    }
    let text = match state.store().request_bodies(&id).await {
        Ok(Some(b)) => match part.as_str() {
            "request" => b.request,
            "provider_request" => b.provider_request,
            "provider_response" => b.provider_response,
            _ => b.reply,
        }
        .map(|k| k.text),
        Ok(None) => None,
        Err(e) => {
            tracing::error!(error = %e, "dashboard: bodies unreadable");
            return layout::unavailable("The log");
        }
    };
    match text {
        Some(t) => layout::plain_text(t),
        None => layout::problem(
            StatusCode::NOT_FOUND,
            "No such body",
            "Nothing is kept here for this sign-in.",
        ),
    }
    .into_response()
}

/// A JSON object as a list of its fields (an attempt), values as text.
fn object(v: &Value) -> Markup {
    html! {
        @if let Some(map) = v.as_object() {
            dl.attempt {
                @for (k, v) in map {
                    @if !v.is_null() {
                        dt { (k) }
                        dd { @match v { Value::String(s) => (s), other => (other.to_string()) } }
                    }
                }
            }
        } @else {
            (v.to_string())
        }
    }
}

/// The model asked for, and the one that served when it differs.
fn model(r: &Value) -> Markup {
    let asked = r["requested_model"].as_str().unwrap_or("");
    let served = r["model"].as_str().unwrap_or("");
    html! {
        (asked)
        @if !served.is_empty() && served != asked { " → " (served) }
    }
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("—")
}

fn uint(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn nanos(v: &Value) -> u64 {
    (v.as_f64().unwrap_or(0.0) * crate::config::NANOS_PER_USD).round() as u64
}

fn ms(v: &Value) -> String {
    v.as_u64()
        .map_or_else(|| "—".to_owned(), |n| format!("{} ms", count(n)))
}

/// `/ui/logs` with the same filters and the cursor `cursor` (none: the newest page).
fn link(q: &HashMap<String, String>, cursor: Option<&str>) -> String {
    let mut pairs: Vec<(&str, &str)> = q
        .iter()
        .filter(|(k, _)| k.as_str() != "cursor")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.sort();
    if let Some(c) = cursor {
        pairs.push(("cursor", c));
    }
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    if query.is_empty() {
        "/ui/logs".to_owned()
    } else {
        format!("/ui/logs?{}", query.join("&"))
    }
}

/// Percent-encoding of everything but RFC 3986's unreserved characters.
pub(super) fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_links_keep_the_filters_and_encode_them() {
        let q: HashMap<String, String> = [
            ("tag", "feature=a b"),
            ("model", "gpt-4o"),
            ("cursor", "12_x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(link(&q, None), "/ui/logs?model=gpt-4o&tag=feature%3Da%20b");
        assert_eq!(
            link(&q, Some("99_gh-1")),
            "/ui/logs?model=gpt-4o&tag=feature%3Da%20b&cursor=99_gh-1"
        );
        assert_eq!(link(&HashMap::new(), None), "/ui/logs");
        assert_eq!(enc("a/b?c&d"), "a%2Fb%3Fc%26d");
    }
}
