//! The dashboard at `/ui` (issue 10; SPEC §5): pages rendered on the server from templates
//! compiled into the binary (`maud`), one stylesheet of our own, no script and nothing fetched
//! from elsewhere, so it works air-gapped.
//!
//! - Who sees what: [`viewer`] turns the session cookie into the same `admin::Caller` the
//!   admin API would see for the credential signed in with, and every page reads through that
//!   caller's scope: the admin everything, a team admin its team, any other key its own usage.
//! - Signing in and out: [`login`] (a session in the store, `governance::sessions`).
//! - The page shell, security headers and problem pages: [`layout`]; charts: [`svg`].
//!
//! `app` routes every `/ui` path here, and finds the viewer before any route but the ones
//! in [`PUBLIC`]; a page without one never runs.

mod budgets;
mod config;
mod cookie;
mod keys;
mod layout;
mod login;
mod logs;
mod overview;
mod routing;
mod svg;
mod teams;
mod usage;
pub mod viewer;

use axum::Router;
use axum::response::Response;
use axum::routing::{get, post};

use crate::state::AppState;

/// The dashboard paths that need no session.
pub const PUBLIC: &[&str] = &["/ui/login", "/ui/static/app.css"];

/// Whether `path` belongs to the dashboard.
pub fn is_ui(path: &str) -> bool {
    path == "/ui" || path.starts_with("/ui/")
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(to_overview))
        .route("/ui/", get(overview::page_for))
        .route("/ui/login", get(login::page).post(login::sign_in))
        .route("/ui/logout", post(login::sign_out))
        .route("/ui/logs", get(logs::list))
        .route("/ui/logs/{request_id}", get(logs::entry))
        .route("/ui/logs/{request_id}/body/{part}", get(logs::body))
        .route("/ui/usage", get(usage::show))
        .route("/ui/usage/export", get(usage::export))
        .route("/ui/budgets", get(budgets::show))
        .route("/ui/keys", get(keys::show).post(keys::create))
        .route("/ui/keys/{id}/revoke", post(keys::revoke))
        .route("/ui/teams", get(teams::show))
        .route("/ui/providers", get(routing::providers))
        .route("/ui/routes", get(routing::routes))
        .route("/ui/config", get(config::show))
        .route("/ui/config/reload", post(config::reload))
        .route("/ui/static/app.css", get(layout::stylesheet))
}

async fn to_overview() -> Response {
    layout::see_other("/ui/")
}
