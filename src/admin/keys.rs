//! `/admin/api/keys`: list, create (the key is in the reply, once), read and revoke stored
//! keys. Keys written in the config file are managed there, not here.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;

use super::{
    AdminResult, Caller, body, check_name, conflict, forbidden, json, not_found, respond,
    store_failed,
};
use crate::commands::{self, NewKey};
use crate::config::{ModelPattern, RateLimit, StoredBudget, StoredPolicy};
use crate::error::GatewayError;
use crate::governance::keys::ROLE_TEAM_ADMIN;
use crate::governance::now_unix;
use crate::state::AppState;
use crate::store::KeyRow;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKeyBody {
    pub name: String,
    pub team: Option<String>,
    pub user: Option<String>,
    pub project: Option<String>,
    pub models: Option<Vec<String>>,
    /// e.g. `30d`.
    pub expires_in: Option<String>,
    #[serde(default)]
    pub budgets: Vec<StoredBudget>,
    #[serde(default)]
    pub rate_limit: RateLimit,
    /// `team_admin` (the admin only).
    pub role: Option<String>,
    /// Bodies kept in this key's records: `off`, `client` or `all` (the admin only).
    pub log_bodies: Option<crate::config::BodyLevel>,
}

async fn visible(state: &AppState, caller: &Caller, id: &str) -> Result<KeyRow, GatewayError> {
    let rows = state
        .store()
        .list_keys()
        .await
        .map_err(|e| store_failed(&e))?;
    rows.into_iter()
        .find(|k| k.id == id && caller.may_manage(k.team.as_deref()))
        .ok_or_else(|| not_found("key"))
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> Response {
    respond(
        async {
            let now = now_unix();
            let list: Vec<_> = visible_keys(&state, &caller.manager()?)
                .await?
                .iter()
                .map(|k| commands::key_json(k, now))
                .collect();
            Ok(json(StatusCode::OK, &serde_json::json!({"data": list})))
        }
        .await,
    )
}

/// The stored keys `caller` manages, oldest first (403 for a key that is no team admin's).
pub async fn visible_keys(state: &AppState, caller: &Caller) -> Result<Vec<KeyRow>, GatewayError> {
    caller.clone().manager()?;
    let rows = state
        .store()
        .list_keys()
        .await
        .map_err(|e| store_failed(&e))?;
    Ok(rows
        .into_iter()
        .filter(|k| caller.may_manage(k.team.as_deref()))
        .collect())
}

pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    respond(
        async {
            let caller = caller.manager()?;
            let row = visible(&state, &caller, &id).await?;
            Ok(json(StatusCode::OK, &commands::key_json(&row, now_unix())))
        }
        .await,
    )
}

pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    respond(
        async {
            let row = revoke_key(&state, &caller.manager()?, &id).await?;
            Ok(json(StatusCode::OK, &commands::key_json(&row, now_unix())))
        }
        .await,
    )
}

/// Revoke the stored key `id`, if `caller` manages it (404 otherwise, 403 for a key that is
/// no team admin's); applied at once here.
pub async fn revoke_key(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<KeyRow, GatewayError> {
    caller.clone().manager()?;
    let row = visible(state, caller, id).await?;
    let row = state
        .store()
        .revoke_key(&row.id, now_unix())
        .await
        .map_err(|e| store_failed(&e))?
        .ok_or_else(|| not_found("key"))?;
    super::reload(state).await;
    Ok(row)
}

pub async fn create(State(state): State<AppState>, caller: Caller, bytes: Bytes) -> Response {
    respond(create_inner(&state, caller, &bytes).await)
}

async fn create_inner(state: &AppState, caller: Caller, bytes: &Bytes) -> AdminResult {
    let caller = caller.manager()?;
    let (row, key) = create_key(state, &caller, body(bytes)?).await?;
    let mut out = commands::key_json(&row, now_unix());
    out["key"] = serde_json::Value::String(key);
    Ok(json(StatusCode::CREATED, &out))
}

/// Create a key as `caller` (the admin, or a team admin within its grants; 403 for any other
/// key): the stored row and the key itself, which nothing keeps.
pub async fn create_key(
    state: &AppState,
    caller: &Caller,
    b: NewKeyBody,
) -> Result<(KeyRow, String), GatewayError> {
    caller.clone().manager()?;
    check_name("name", &b.name)?;
    for (what, v) in [
        ("team", &b.team),
        ("user", &b.user),
        ("project", &b.project),
    ] {
        if let Some(v) = v {
            check_name(what, v)?;
        }
    }
    let directory = state.governance().directory();
    let team = match (caller, &b.team) {
        (Caller::TeamAdmin { team, .. }, None) => Some(team.clone()),
        (Caller::TeamAdmin { team, .. }, Some(t)) if t == team => Some(t.clone()),
        (Caller::TeamAdmin { .. }, Some(_)) => {
            return Err(forbidden("you may only create keys for your own team"));
        }
        (_, t) => t.clone(),
    };
    if let Some(t) = &team
        && !directory.teams.contains_key(t)
    {
        return Err(GatewayError::invalid_param(
            "team",
            format!("unknown team `{t}`"),
        ));
    }
    if let Some(role) = &b.role {
        if !matches!(caller, Caller::Admin) {
            return Err(forbidden("only the admin may give a key a role"));
        }
        if role != ROLE_TEAM_ADMIN || team.is_none() {
            return Err(GatewayError::invalid_param(
                "role",
                format!("role must be `{ROLE_TEAM_ADMIN}`, on a key with a team"),
            ));
        }
    }
    // A key never moves a user or project to another team.
    for (what, name, map) in [
        ("user", &b.user, &directory.users),
        ("project", &b.project, &directory.projects),
    ] {
        if let Some(n) = name
            && let Some(e) = map.get(n)
            && e.team.is_some()
            && e.team != team
        {
            return Err(conflict(format!("{what} `{n}` belongs to another team")));
        }
        if let (Some(n), Caller::TeamAdmin { .. }) = (name, caller)
            && map.get(n).is_some_and(|e| e.team.is_none())
        {
            return Err(forbidden(format!("{what} `{n}` is not in your team")));
        }
    }
    for m in b.models.iter().flatten() {
        ModelPattern::new(m).map_err(|e| {
            GatewayError::invalid_param("models", format!("invalid model pattern `{m}`: {e}"))
        })?;
    }
    if b.log_bodies.is_some() && !matches!(caller, Caller::Admin) {
        return Err(forbidden(
            "only the admin may choose which bodies a key's records keep",
        ));
    }
    let stored = StoredPolicy {
        budgets: b.budgets.clone(),
        rate_limit: b.rate_limit,
        log_bodies: b.log_bodies,
    };
    let policy = stored
        .to_policy()
        .map_err(|e| GatewayError::invalid_param("budgets", e))?;
    for budget in &stored.budgets {
        if let Some(t) = &budget.route_to {
            let provider = t.split_once('/').map_or(t.as_str(), |(p, _)| p);
            if state.live().config.provider(provider).is_none() {
                return Err(GatewayError::invalid_param(
                    "budgets",
                    format!("route_to `{t}` names unknown provider `{provider}`"),
                ));
            }
        }
    }
    if let Caller::TeamAdmin { key, team: own } = caller {
        let entry = directory
            .teams
            .get(own)
            .ok_or_else(|| forbidden("your team no longer exists"))?;
        super::grants::check(key, entry, b.models.as_deref(), &policy).map_err(forbidden)?;
    }
    let expires_in = match &b.expires_in {
        Some(text) => Some(crate::config::parse_duration(text).ok_or_else(|| {
            GatewayError::invalid_param(
                "expires_in",
                format!("invalid duration `{text}` (e.g. 30d)"),
            )
        })?),
        None => None,
    };
    let policy_json = if stored == StoredPolicy::default() {
        None
    } else {
        serde_json::to_string(&stored).ok()
    };
    let live = state.live();
    let (row, key) = commands::create_key(
        &live.config,
        state.store(),
        NewKey {
            name: b.name,
            team,
            user: b.user,
            project: b.project,
            models: b.models,
            expires_in,
            policy: policy_json,
            role: b.role,
        },
    )
    .await
    .map_err(GatewayError::invalid)?;
    super::reload(state).await;
    Ok((row, key))
}
