//! The admin API under `/admin/api/` (SPEC §3): keys, teams, users, projects, budgets and
//! usage, as JSON, described by the OpenAPI document at `/admin/api/openapi.json`.
//!
//! Who may do what ([`Caller`]):
//! - the **admin** (`Authorization: Bearer <server.admin_token>`) sees and manages all;
//! - a **team admin** (a key with `role = "team_admin"`) sees and manages its own team's
//!   keys, users and projects, and never grants more than it holds ([`grants`]);
//! - any other key may read `GET /admin/api/me` and its own requests in the log
//!   (`GET /admin/api/logs`, `GET /admin/api/logs/{id}`), and nothing else (403);
//! - no credential, or an unknown one: 401.
//!
//! Every parameter is validated before it reaches the store (names: 1 to 128 characters of
//! letters, digits and `._@+-`), and every statement is parameterized, so hostile input
//! gets a clean 4xx. Changes apply on this instance at once and on others within the key
//! ring's refresh interval.

pub mod entities;
pub mod grants;
pub mod keys;
pub mod logs;
pub mod openapi;
pub mod reports;
pub mod routing;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::response::Response;
use axum::routing::get;
use http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::{ErrorKind, GatewayError};
use crate::governance::Principal;
use crate::governance::keys::{digest, same_digest};
use crate::pipeline::RequestCtx;
use crate::state::AppState;

/// Who is calling the admin API.
#[derive(Debug, Clone)]
pub enum Caller {
    Admin,
    TeamAdmin { team: String, key: Arc<Principal> },
    Member(Arc<Principal>),
}

impl Caller {
    /// The team this caller is confined to (`None`: the admin, who sees all).
    pub fn team(&self) -> Option<&str> {
        match self {
            Caller::Admin => None,
            Caller::TeamAdmin { team, .. } => Some(team),
            Caller::Member(p) => Some(p.team.as_deref().unwrap_or("")),
        }
    }

    /// May this caller see or manage something of `team`?
    pub fn may_manage(&self, team: Option<&str>) -> bool {
        match self {
            Caller::Admin => true,
            Caller::TeamAdmin { team: own, .. } => team == Some(own.as_str()),
            Caller::Member(_) => false,
        }
    }

    pub fn role(&self) -> &'static str {
        match self {
            Caller::Admin => "admin",
            Caller::TeamAdmin { .. } => "team_admin",
            Caller::Member(_) => "member",
        }
    }
}

pub type AdminResult = Result<Response, GatewayError>;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/api/openapi.json", get(openapi::document))
        .route("/admin/api/me", get(me))
        .route("/admin/api/logs", get(logs::logs))
        .route("/admin/api/logs/{request_id}", get(logs::entry))
        .route("/admin/api/keys", get(keys::list).post(keys::create))
        .route(
            "/admin/api/keys/{id}",
            get(keys::get_one).delete(keys::revoke),
        )
        .route(
            "/admin/api/teams",
            get(entities::list_teams).post(entities::create_team),
        )
        .route(
            "/admin/api/teams/{name}",
            get(entities::get_team)
                .put(entities::update_team)
                .delete(entities::delete_team),
        )
        .route(
            "/admin/api/users",
            get(entities::list_users).post(entities::create_user),
        )
        .route(
            "/admin/api/users/{name}",
            get(entities::get_user).delete(entities::delete_user),
        )
        .route(
            "/admin/api/projects",
            get(entities::list_projects).post(entities::create_project),
        )
        .route(
            "/admin/api/projects/{name}",
            get(entities::get_project).delete(entities::delete_project),
        )
        .route("/admin/api/budgets", get(reports::budgets))
        .route("/admin/api/usage", get(reports::usage))
        .route("/admin/api/config", get(routing::config_status))
        .route(
            "/admin/api/config/reload",
            axum::routing::post(routing::reload_config),
        )
        .route("/admin/api/routing", get(routing::status))
        .route(
            "/admin/api/routing/explain",
            axum::routing::post(routing::explain),
        )
}

/// Render an admin handler's result: JSON, or the error in OpenAI's shape.
pub fn respond(r: AdminResult) -> Response {
    r.unwrap_or_else(|e| crate::pipeline::reply::openai_error(&e, &RequestCtx::new()))
}

/// The caller, from `Authorization: Bearer`. 401 without a valid credential.
pub fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, GatewayError> {
    let unauthorized = |m: &str| GatewayError::new(ErrorKind::Unauthorized, m);
    let token = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let v = v.trim();
            v.get(..7)
                .filter(|p| p.eq_ignore_ascii_case("bearer "))
                .map(|_| v[7..].trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            unauthorized("missing credential: send `Authorization: Bearer <admin token or key>`")
        })?;
    caller_from_token(state, token).ok_or_else(|| unauthorized("invalid credential"))
}

/// The caller a credential (the admin token or a key) makes; `None` for neither. The one
/// check of the admin token: the admin API's and the dashboard's sign-in.
pub fn caller_from_token(state: &AppState, token: &str) -> Option<Caller> {
    let live = state.live();
    if let Some(admin) = &live.config.server.admin_token {
        // Digests first: equal lengths, so the comparison's time says nothing of the token.
        if same_digest(&digest(admin.expose()), &digest(token)) {
            return Some(Caller::Admin);
        }
    }
    state.governance().principal(token).map(Caller::of)
}

impl Caller {
    /// Confine a read of the request log or usage to what this caller may see: a team admin's
    /// team, any other key's own requests, whatever `team` and `key_id` asked for; the
    /// admin's filters stay as they are.
    pub fn confine(&self, team: &mut Option<String>, key_id: &mut Option<String>) {
        match self {
            Caller::Admin => {}
            Caller::TeamAdmin { team: own, .. } => *team = Some(own.clone()),
            Caller::Member(p) => {
                *team = None;
                *key_id = Some(p.key_id.clone());
            }
        }
    }

    /// The caller a usable key makes: a team admin when its role says so and it has a team.
    pub fn of(p: Arc<Principal>) -> Caller {
        match p.team.clone() {
            Some(team) if p.team_admin => Caller::TeamAdmin { team, key: p },
            _ => Caller::Member(p),
        }
    }
}

impl Caller {
    /// 403 unless the caller is the admin or a team admin.
    pub fn manager(self) -> Result<Caller, GatewayError> {
        if matches!(self, Caller::Member(_)) {
            return Err(forbidden("this key may not use the admin API"));
        }
        Ok(self)
    }

    /// 403 unless the caller is the admin.
    pub fn admin_only(self) -> Result<Caller, GatewayError> {
        if !matches!(self, Caller::Admin) {
            return Err(forbidden("only the admin may do this"));
        }
        Ok(self)
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = Response;

    /// The caller the authentication layer (`app`) found for an admin route
    /// (`pipeline::auth::layer_found`).
    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        crate::pipeline::auth::layer_found(parts)
    }
}

pub fn forbidden(m: impl Into<String>) -> GatewayError {
    GatewayError::new(ErrorKind::Forbidden, m)
}

pub fn not_found(what: &str) -> GatewayError {
    GatewayError::new(ErrorKind::NotFound, format!("no such {what}"))
}

pub fn conflict(m: impl Into<String>) -> GatewayError {
    GatewayError::new(ErrorKind::Conflict, m)
}

pub fn store_failed(e: &crate::store::StoreError) -> GatewayError {
    tracing::error!(error = %e, "admin API: store failure");
    let message = if e.timed_out() {
        "the store did not answer in time (`[store] timeout`); try again shortly"
    } else {
        "the store cannot be reached right now"
    };
    GatewayError::new(ErrorKind::Unavailable, message).with_retry_after(1)
}

/// Parse a JSON body, naming the field at fault.
pub fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, GatewayError> {
    crate::pipeline::parse_json(bytes)
}

/// Names of keys, teams, users and projects: 1 to 128 of `[A-Za-z0-9._@+-]`.
pub fn check_name(what: &str, name: &str) -> Result<(), GatewayError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '+' | '-'));
    if ok {
        Ok(())
    } else {
        Err(GatewayError::invalid_param(
            what,
            format!("invalid {what}: use 1 to 128 letters, digits and . _ @ + -"),
        ))
    }
}

pub fn json(status: StatusCode, v: &serde_json::Value) -> Response {
    crate::pipeline::reply::json_response(status, v)
}

async fn me(c: Caller) -> Response {
    let key = match &c {
        Caller::Admin => serde_json::Value::Null,
        Caller::TeamAdmin { key, .. } | Caller::Member(key) => serde_json::json!({
            "id": key.key_id, "name": key.key_name, "user": key.user, "team": key.team, "project": key.project,
        }),
    };
    json(
        StatusCode::OK,
        &serde_json::json!({"role": c.role(), "team": c.team(), "key": key}),
    )
}

/// Apply a change on this instance at once (others pick it up within the refresh interval).
pub async fn reload(state: &AppState) {
    let live = state.live();
    state.governance().reload(&live.config, state.store()).await;
}
