//! `GET /ui/config`: the loaded config (where from, its version, when, its digest) and what the
//! last reload did, with every error when it was refused; `POST /ui/config/reload` reloads
//! now. The admin only, as `GET /admin/api/config` and `POST /admin/api/config/reload`.

use axum::Form;
use axum::extract::State;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::layout::{self, Audience, page};
use super::viewer::Viewer;
use crate::state::AppState;

pub async fn show(State(state): State<AppState>, viewer: Viewer) -> Response {
    if !Audience::Admin.admits(&viewer.caller) {
        return layout::forbidden();
    }
    render(&state, &viewer, None)
}

#[derive(Deserialize)]
pub struct Reload {
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

pub async fn reload(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(f): Form<Reload>,
) -> Response {
    if !Audience::Admin.admits(&viewer.caller) {
        return layout::forbidden();
    }
    if !viewer.csrf_ok(&f.csrf) {
        return layout::csrf_refused();
    }
    let attempt = crate::state::reload::reload(&state, "dashboard").await;
    let note = if attempt.ok {
        "Reloaded."
    } else {
        "The file was refused; the config loaded before stays active."
    };
    render(&state, &viewer, Some(note))
}

fn render(state: &AppState, viewer: &Viewer, note: Option<&str>) -> Response {
    let s = state.reload_status();
    let content = html! {
        @if let Some(n) = note {
            p.note role="status" { (n) }
        }
        dl.facts {
            dt { "Source" } dd { code { (s.source) } }
            dt { "Version" } dd { (s.version) " " span.hint { "(0: as loaded at start; each successful reload adds one)" } }
            dt { "Loaded" } dd { (layout::time(s.loaded_at as i64)) }
            dt { "SHA-256" } dd { code.digest { (s.digest) } }
        }
        h2 { "Last reload" }
        @match &s.last_attempt {
            None => p.empty { "None since the gateway started." },
            Some(a) => {
                p {
                    (layout::time(a.at as i64)) ", asked by " (a.trigger) ": "
                    @if a.ok { strong { "applied" } } @else { strong.error { "refused" } }
                }
                @if !a.errors.is_empty() {
                    h3 { "Errors" }
                    ul.problems { @for e in &a.errors { li { code { (e) } } } }
                }
                @if !a.warnings.is_empty() {
                    h3 { "Waiting for a restart" }
                    ul.problems { @for w in &a.warnings { li { (w) } } }
                }
            }
        }
        form method="post" action="/ui/config/reload" {
            input type="hidden" name="_csrf" value=(viewer.csrf);
            button type="submit" { "Reload the config now" }
        }
    };
    page(viewer, "/ui/config", "Config", content)
}
