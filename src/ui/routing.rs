//! `GET /ui/providers` (each provider's health: ejected or not and for how much longer, its
//! ejections, requests in flight, latency average, and each API key's rest after a 429) and
//! `GET /ui/routes` (the live rules in order, and the retry and ejection settings). The admin
//! only, from `admin::routing::routing_status`, as `GET /admin/api/routing`.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::Response;
use maud::{Markup, html};
use serde_json::Value;

use super::layout::{self, page};
use super::overview::count;
use super::viewer::Viewer;
use crate::admin::routing::{ExplainBody, explanation, routing_status};
use crate::state::AppState;

pub async fn providers(State(state): State<AppState>, viewer: Viewer) -> Response {
    let Ok(s) = routing_status(&state, &viewer.caller) else {
        return layout::forbidden();
    };
    let empty = Vec::new();
    let list = s["providers"].as_array().unwrap_or(&empty);
    let content = html! {
        div.scroll {
            table {
                thead { tr {
                    th scope="col" { "Provider" }
                    th scope="col" { "Kind" }
                    th scope="col" { "Health" }
                    th.num scope="col" { "Ejections" }
                    th.num scope="col" { "In flight" }
                    th.num scope="col" { "Latency (average)" }
                    th scope="col" { "Keys" }
                } }
                tbody {
                    @for p in list {
                        tr {
                            th scope="row" { (str(&p["name"])) }
                            td { (str(&p["kind"])) }
                            td {
                                @if p["ejected"] == true {
                                    span.status.error { "ejected" }
                                    " " span.hint { "for " (seconds(&p["ejected_ms"])) " more" }
                                } @else {
                                    span.status.ok { "serving" }
                                }
                            }
                            td.num { (count(p["ejections"].as_u64().unwrap_or(0))) }
                            td.num { (count(p["in_flight"].as_u64().unwrap_or(0))) }
                            td.num { (format!("{:.1} ms", p["latency_ms"].as_f64().unwrap_or(0.0))) }
                            td { (keys(&p["keys"])) }
                        }
                    }
                }
            }
        }
        p.hint { "A provider is ejected after consecutive failures and tried again when its time is up; a key rests after a 429 for as long as the provider asked." }
    };
    page(&viewer, "/ui/providers", "Providers", content)
}

fn keys(list: &Value) -> Markup {
    html! {
        @if let Some(keys) = list.as_array().filter(|k| k.len() > 1 || k.iter().any(|k| k["resting_ms"].as_u64().unwrap_or(0) > 0)) {
            ul.keys {
                @for k in keys {
                    li {
                        code { (str(&k["key"])) } " "
                        @if k["resting_ms"].as_u64().unwrap_or(0) > 0 {
                            span.status.cancelled { "resting " (seconds(&k["resting_ms"])) }
                        } @else {
                            (count(k["in_flight"].as_u64().unwrap_or(0))) " in flight"
                        }
                    }
                }
            }
        } @else {
            (list.as_array().map_or(0, Vec::len)) " key"
        }
    }
}

pub async fn routes(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Ok(s) = routing_status(&state, &viewer.caller) else {
        return layout::forbidden();
    };
    let get = |k: &str| q.get(k).map_or("", |v| v.trim());
    let asked = !get("model").is_empty();
    let explained = if asked {
        Some(explanation(&state, &viewer.caller, &explain_body(&q)).await)
    } else {
        None
    };
    let empty = Vec::new();
    let list = s["routes"].as_array().unwrap_or(&empty);
    let set = &s["settings"];
    let content = html! {
        p.scope { "The first rule whose model pattern matches a request decides it." }
        @if list.is_empty() {
            p.empty { "No rule: each model goes to the first provider that serves it." }
        } @else {
            ol.routes {
                @for r in list {
                    li {
                        strong { (r["model"].as_str().unwrap_or("any model")) }
                        @if let Some(n) = r["name"].as_str() { " " span.hint { "(" (n) ")" } }
                        " → " (action(&r["action"]))
                        @if let Some(b) = r["balance"].as_str() { " " span.hint { "balance: " (b) } }
                        @if let Some(st) = r["sticky"].as_str() { " " span.hint { "sticky: " (st) } }
                        @if let Some(m) = r["mirror"].as_object() {
                            " " span.hint { "mirrored to " (str(&m["target"])) " (" (m["sample"]) ")" }
                        }
                        @if let Some(t) = r["timeout_ms"].as_u64() { " " span.hint { "timeout " (seconds(&Value::from(t))) } }
                    }
                }
            }
        }
        h2 #explain { "Which route would this take?" }
        form.filters method="get" action="/ui/routes#explain" {
            label { span { "Model" } input name="model" required value=(get("model")); }
            label { span { "Key (name or id)" } input name="key" value=(get("key")); }
            label { span { "Tags" } input name="tags" value=(get("tags")) placeholder="feature=search, env=ci"; }
            label { span { "Headers" } input name="headers" value=(get("headers")) placeholder="x-env=prod"; }
            label { span { "Input tokens" } input name="input_tokens" inputmode="numeric" value=(get("input_tokens")); }
            div.actions { button type="submit" { "Explain" } }
        }
        @match &explained {
            None => {},
            Some(Err(e)) => p.error role="alert" { (e.message) },
            Some(Ok(v)) => (explained_view(v)),
        }
        h2 { "Retries and ejection" }
        dl.facts {
            dt { "Attempts a request" } dd { (set["max_attempts"]) }
            dt { "Retry budget" } dd { (set["retry_budget"]["percent"]) "% of the last 10 s of requests, plus " (set["retry_budget"]["min"]) }
            dt { "Ejected after" } dd { (set["outlier"]["consecutive_failures"]) " failures in a row" }
            dt { "Ejected for" } dd { (seconds(&set["outlier"]["ejection_ms"])) ", at most " (seconds(&set["outlier"]["max_ejection_ms"])) }
            dt { "Ejected at most" } dd { (set["outlier"]["max_ejection_percent"]) "% of providers" }
        }
    };
    page(&viewer, "/ui/routes", "Routes", content)
}

/// The explain form's fields as the admin API's request: comma-separated tags, and headers
/// as `name=value` pairs.
fn explain_body(q: &HashMap<String, String>) -> ExplainBody {
    let list = |k: &str| -> Vec<String> {
        q.get(k)
            .map(|v| {
                v.split(',')
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    };
    ExplainBody {
        model: q
            .get("model")
            .map_or(String::new(), |m| m.trim().to_owned()),
        key: q
            .get("key")
            .map(|k| k.trim().to_owned())
            .filter(|k| !k.is_empty()),
        tags: list("tags"),
        headers: list("headers")
            .into_iter()
            .filter_map(|h| {
                h.split_once('=')
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            })
            .collect(),
        input_tokens: q
            .get("input_tokens")
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0),
    }
}

fn explained_view(v: &Value) -> Markup {
    html! {
        section.note role="status" {
            @if let Some(refused) = v["refused"].as_str() {
                p { "Refused: " (refused) }
            } @else {
                p {
                    @match v["rule"].as_object() {
                        Some(rule) => {
                            "Rule " (rule["index"].as_u64().map_or(0, |i| i + 1))
                            @if let Some(n) = rule["name"].as_str() { " (" strong { (n) } ")" }
                            " matches"
                        },
                        None => "No rule matches: the first provider that serves the model takes it",
                    }
                    @if v["routed_model"] != v["model"] { ", the model rewritten to " code { (str(&v["routed_model"])) } }
                    "."
                }
                p { "Tried in this order: "
                    @for (i, t) in v["targets"].as_array().into_iter().flatten().enumerate() {
                        @if i > 0 { ", then " }
                        code { (str(&t["provider"])) "/" (str(&t["model"])) }
                        @if t["ejected"] == true { " " span.status.error { "(ejected)" } }
                    }
                }
            }
            @let spent = v["facts"]["budgets_spent"].as_array().cloned().unwrap_or_default();
            p.hint {
                "Budgets spent now: "
                @if spent.is_empty() { "none" } @else { (spent.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")) }
                "."
            }
        }
    }
}

/// A rule's action: a rewrite, weighted targets in order, or a split.
fn action(a: &Value) -> Markup {
    let targets = |list: &Value| -> String {
        list.as_array()
            .map(|l| {
                l.iter()
                    .map(|t| match t["weight"].as_u64() {
                        Some(w) if w != 1 => format!("{} ({w})", str(&t["target"])),
                        _ => str(&t["target"]).to_owned(),
                    })
                    .collect::<Vec<_>>()
                    .join(", then ")
            })
            .unwrap_or_default()
    };
    html! {
        @if let Some(to) = a["rewrite"].as_str() {
            "rewritten to " code { (to) }
        } @else if !a["targets"].is_null() {
            (targets(&a["targets"]))
        } @else if !a["split"].is_null() {
            "split: " (targets(&a["split"]).replace(", then ", ", "))
        }
    }
}

fn str(v: &Value) -> &str {
    v.as_str().unwrap_or("—")
}

fn seconds(ms: &Value) -> String {
    let ms = ms.as_u64().unwrap_or(0);
    if ms >= 1000 {
        format!("{:.0} s", ms as f64 / 1000.0)
    } else {
        format!("{ms} ms")
    }
}
