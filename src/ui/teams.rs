//! `GET /ui/teams`: the teams, users and projects the viewer manages (the admin: all; a team
//! admin: its own team and its team's users and projects), each with its budgets, rate limit
//! and models, and whether the config file or the store holds it. Read through
//! `admin::entities::listed`, the admin API's own lists.

use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};
use serde_json::Value;

use super::layout::{self, Audience, page};
use super::viewer::Viewer;
use crate::admin::entities::listed;
use crate::state::AppState;
use crate::store::Entity;

pub async fn show(State(state): State<AppState>, viewer: Viewer) -> Response {
    if !Audience::Managers.admits(&viewer.caller) {
        return layout::forbidden();
    }
    let content = html! {
        @for (entity, title, with_team) in [(Entity::Team, "Teams", false), (Entity::User, "Users", true), (Entity::Project, "Projects", true)] {
            h2 { (title) }
            (table(&listed(&state, &viewer.caller, entity), with_team))
        }
        p.hint { "Entities of the config file change with the file; the others through the admin API (docs/http-api.md)." }
    };
    page(&viewer, "/ui/teams", "Teams, users and projects", content)
}

fn table(rows: &[Value], with_team: bool) -> Markup {
    html! {
        @if rows.is_empty() {
            p.empty { "None." }
        } @else {
            div.scroll {
                table {
                    thead { tr {
                        th scope="col" { "Name" }
                        @if with_team { th scope="col" { "Team" } } @else { th scope="col" { "Models" } }
                        th scope="col" { "Budgets" }
                        th scope="col" { "Rate limit" }
                        th scope="col" { "Held in" }
                    } }
                    tbody {
                        @for r in rows {
                            tr {
                                th scope="row" { (r["name"].as_str().unwrap_or("")) }
                                @if with_team {
                                    td { (r["team"].as_str().unwrap_or("—")) }
                                } @else {
                                    td { (r["models"].as_array().map_or_else(|| "any".to_owned(), |m| m.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))) }
                                }
                                td { (budgets(&r["limits"]["budgets"])) }
                                td { (rate_limit(&r["limits"]["rate_limit"])) }
                                td { (r["source"].as_str().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `$100 monthly, 2,000,000 tokens daily`, or a dash.
fn budgets(list: &Value) -> String {
    let parts: Vec<String> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            let limit = match &b["limit"] {
                Value::String(s) => s.parse::<f64>().unwrap_or(0.0),
                other => other.as_f64().unwrap_or(0.0),
            };
            let amount = if b["unit"] == "usd" {
                format!("${limit:.2}")
            } else {
                format!(
                    "{} {}",
                    super::overview::count(limit as u64),
                    b["unit"].as_str().unwrap_or("")
                )
            };
            format!("{amount} {}", b["period"].as_str().unwrap_or(""))
        })
        .collect();
    if parts.is_empty() {
        "—".to_owned()
    } else {
        parts.join(", ")
    }
}

/// `60 rpm, 100,000 tpm`, or a dash.
fn rate_limit(v: &Value) -> String {
    let parts: Vec<String> = ["rpm", "tpm", "concurrent"]
        .iter()
        .filter_map(|k| {
            v[*k]
                .as_u64()
                .map(|n| format!("{} {k}", super::overview::count(n)))
        })
        .collect();
    if parts.is_empty() {
        "—".to_owned()
    } else {
        parts.join(", ")
    }
}
