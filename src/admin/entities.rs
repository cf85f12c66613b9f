//! `/admin/api/teams`, `/admin/api/users`, `/admin/api/projects`: the directory.
//!
//! Teams are the admin's to create, change and delete; a team admin reads its own. Users and
//! projects belong to a team: a team admin creates and deletes them in its own team only,
//! within what it holds. Entities written in the config file are read-only here (409).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json as j};

use super::{
    AdminResult, Caller, body, check_name, conflict, forbidden, json, not_found, respond,
    store_failed,
};
use crate::config::{Policy, RateLimit, StoredBudget, StoredPolicy};
use crate::error::GatewayError;
use crate::governance::directory::{Directory, MemberEntry, TeamEntry};
use crate::governance::now_unix;
use crate::state::AppState;
use crate::store::{Entity, EntityRow};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamBody {
    pub name: Option<String>,
    pub models: Option<Vec<String>>,
    #[serde(default)]
    pub budgets: Vec<StoredBudget>,
    #[serde(default)]
    pub rate_limit: RateLimit,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberBody {
    pub name: String,
    pub team: Option<String>,
    #[serde(default)]
    pub budgets: Vec<StoredBudget>,
    #[serde(default)]
    pub rate_limit: RateLimit,
}

fn policy_json(policy: &Policy) -> Value {
    j!({
        "budgets": policy.budgets.iter().map(|b| j!({
            "unit": b.unit.as_str(), "limit": b.limit_display(), "period": b.period.as_str(),
            "timezone": b.timezone,
        })).collect::<Vec<_>>(),
        "rate_limit": policy.rate_limit,
    })
}

fn team_json(name: &str, t: &TeamEntry) -> Value {
    j!({
        "name": name,
        "models": t.models.as_ref().map(|m| m.iter().map(|p| p.pattern.clone()).collect::<Vec<_>>()),
        "limits": policy_json(&t.policy),
        "source": if t.from_config { "config" } else { "store" },
    })
}

fn member_json(name: &str, m: &MemberEntry) -> Value {
    j!({
        "name": name,
        "team": m.team,
        "limits": policy_json(&m.policy),
        "source": if m.from_config { "config" } else { "store" },
    })
}

fn stored_policy(
    budgets: &[StoredBudget],
    rate_limit: RateLimit,
) -> Result<(StoredPolicy, Policy), GatewayError> {
    let stored = StoredPolicy {
        budgets: budgets.to_vec(),
        rate_limit,
        log_bodies: None,
    };
    let policy = stored
        .to_policy()
        .map_err(|e| GatewayError::invalid_param("budgets", e))?;
    Ok((stored, policy))
}

fn policy_text(stored: &StoredPolicy) -> Option<String> {
    (stored != &StoredPolicy::default())
        .then(|| serde_json::to_string(stored).ok())
        .flatten()
}

fn check_models(models: Option<&[String]>) -> Result<(), GatewayError> {
    for m in models.into_iter().flatten() {
        crate::config::ModelPattern::new(m).map_err(|e| {
            GatewayError::invalid_param("models", format!("invalid model pattern `{m}`: {e}"))
        })?;
    }
    Ok(())
}

// ---- teams ----

pub async fn list_teams(State(state): State<AppState>, caller: Caller) -> Response {
    respond(caller.manager().map(|c| {
        json(
            StatusCode::OK,
            &j!({"data": listed(&state, &c, Entity::Team)}),
        )
    }))
}

/// The teams, users or projects `caller` (the admin or a team admin) sees, by name, as the
/// admin API lists them: the API's lists and the dashboard's.
pub fn listed(state: &AppState, caller: &Caller, entity: Entity) -> Vec<Value> {
    let d = state.governance().directory();
    let mut list: Vec<_> = match entity {
        Entity::Team => d
            .teams
            .iter()
            .filter(|(n, _)| caller.may_manage(Some(n)))
            .map(|(n, t)| team_json(n, t))
            .collect(),
        _ => members(&d, entity)
            .iter()
            .filter(|(_, m)| caller.may_manage(m.team.as_deref()))
            .map(|(n, m)| member_json(n, m))
            .collect(),
    };
    list.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    list
}

pub async fn get_team(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Response {
    respond((|| {
        let caller = caller.manager()?;
        let d = state.governance().directory();
        match d.teams.get(&name) {
            Some(t) if caller.may_manage(Some(&name)) => {
                Ok(json(StatusCode::OK, &team_json(&name, t)))
            }
            _ => Err(not_found("team")),
        }
    })())
}

pub async fn create_team(State(state): State<AppState>, caller: Caller, bytes: Bytes) -> Response {
    respond(
        async {
            caller.admin_only()?;
            let b: TeamBody = body(&bytes)?;
            let name = b
                .name
                .ok_or_else(|| GatewayError::invalid_param("name", "missing field `name`"))?;
            check_name("name", &name)?;
            check_models(b.models.as_deref())?;
            let (stored, _) = stored_policy(&b.budgets, b.rate_limit)?;
            if state.governance().directory().teams.contains_key(&name) {
                return Err(conflict(format!("team `{name}` exists")));
            }
            let row = EntityRow {
                name: name.clone(),
                models: b.models,
                policy: policy_text(&stored),
                created_at: now_unix(),
                ..EntityRow::default()
            };
            insert(&state, Entity::Team, &row).await?;
            let d = state.governance().directory();
            let t = d.teams.get(&name).ok_or_else(|| not_found("team"))?;
            Ok(json(StatusCode::CREATED, &team_json(&name, t)))
        }
        .await,
    )
}

pub async fn update_team(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Response {
    respond(
        async {
            caller.admin_only()?;
            let b: TeamBody = body(&bytes)?;
            if b.name.as_ref().is_some_and(|n| n != &name) {
                return Err(GatewayError::invalid_param(
                    "name",
                    "a team cannot be renamed",
                ));
            }
            check_models(b.models.as_deref())?;
            let (stored, _) = stored_policy(&b.budgets, b.rate_limit)?;
            read_only_if_config(&state.governance().directory(), Entity::Team, &name)?;
            let changed = state
                .store()
                .update_team(&name, b.models.as_deref(), policy_text(&stored).as_deref())
                .await
                .map_err(|e| store_failed(&e))?;
            if !changed {
                return Err(not_found("team"));
            }
            super::reload(&state).await;
            let d = state.governance().directory();
            let t = d.teams.get(&name).ok_or_else(|| not_found("team"))?;
            Ok(json(StatusCode::OK, &team_json(&name, t)))
        }
        .await,
    )
}

pub async fn delete_team(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Response {
    respond(
        async {
            caller.admin_only()?;
            delete(&state, Entity::Team, &name).await
        }
        .await,
    )
}

// ---- users and projects ----

fn members(d: &Directory, entity: Entity) -> &std::collections::HashMap<String, MemberEntry> {
    match entity {
        Entity::Project => &d.projects,
        _ => &d.users,
    }
}

fn what(entity: Entity) -> &'static str {
    match entity {
        Entity::Team => "team",
        Entity::User => "user",
        Entity::Project => "project",
    }
}

async fn list_members(state: &AppState, caller: Caller, entity: Entity) -> AdminResult {
    let caller = caller.manager()?;
    Ok(json(
        StatusCode::OK,
        &j!({"data": listed(state, &caller, entity)}),
    ))
}

async fn get_member(state: &AppState, caller: Caller, entity: Entity, name: &str) -> AdminResult {
    let caller = caller.manager()?;
    let d = state.governance().directory();
    match members(&d, entity).get(name) {
        Some(m) if caller.may_manage(m.team.as_deref()) => {
            Ok(json(StatusCode::OK, &member_json(name, m)))
        }
        _ => Err(not_found(what(entity))),
    }
}

async fn create_member(
    state: &AppState,
    caller: Caller,
    entity: Entity,
    bytes: &Bytes,
) -> AdminResult {
    let caller = caller.manager()?;
    let b: MemberBody = body(bytes)?;
    check_name("name", &b.name)?;
    if let Some(t) = &b.team {
        check_name("team", t)?;
    }
    let team = match (&caller, b.team) {
        (Caller::TeamAdmin { team, .. }, None) => Some(team.clone()),
        (Caller::TeamAdmin { team, .. }, Some(t)) if &t == team => Some(t),
        (Caller::TeamAdmin { .. }, Some(_)) => {
            return Err(forbidden(format!(
                "you may only create {}s in your own team",
                what(entity)
            )));
        }
        (_, t) => t,
    };
    let d = state.governance().directory();
    if let Some(t) = &team
        && !d.teams.contains_key(t)
    {
        return Err(GatewayError::invalid_param(
            "team",
            format!("unknown team `{t}`"),
        ));
    }
    let (stored, policy) = stored_policy(&b.budgets, b.rate_limit)?;
    if let Caller::TeamAdmin { key, team: own } = &caller {
        let entry = d
            .teams
            .get(own)
            .ok_or_else(|| forbidden("your team no longer exists"))?;
        super::grants::check(key, entry, Some(&[]), &policy).map_err(forbidden)?;
    }
    if members(&d, entity).contains_key(&b.name) {
        return Err(conflict(format!("{} `{}` exists", what(entity), b.name)));
    }
    let row = EntityRow {
        name: b.name.clone(),
        team,
        policy: policy_text(&stored),
        created_at: now_unix(),
        ..EntityRow::default()
    };
    insert(state, entity, &row).await?;
    let d = state.governance().directory();
    let m = members(&d, entity)
        .get(&b.name)
        .ok_or_else(|| not_found(what(entity)))?;
    Ok(json(StatusCode::CREATED, &member_json(&b.name, m)))
}

async fn delete_member(
    state: &AppState,
    caller: Caller,
    entity: Entity,
    name: &str,
) -> AdminResult {
    let caller = caller.manager()?;
    let d = state.governance().directory();
    match members(&d, entity).get(name) {
        Some(m) if caller.may_manage(m.team.as_deref()) => {}
        _ => return Err(not_found(what(entity))),
    }
    delete(state, entity, name).await
}

fn read_only_if_config(d: &Directory, entity: Entity, name: &str) -> Result<(), GatewayError> {
    let from_config = match entity {
        Entity::Team => d.teams.get(name).is_some_and(|t| t.from_config),
        _ => members(d, entity).get(name).is_some_and(|m| m.from_config),
    };
    if from_config {
        return Err(conflict(format!(
            "{} `{name}` is defined in the config file; change it there",
            what(entity)
        )));
    }
    Ok(())
}

async fn insert(state: &AppState, entity: Entity, row: &EntityRow) -> Result<(), GatewayError> {
    match state.store().insert_entity(entity, row).await {
        Ok(()) => {}
        Err(e) if e.is_duplicate() => {
            return Err(conflict(format!("{} `{}` exists", what(entity), row.name)));
        }
        Err(e) => return Err(store_failed(&e)),
    }
    super::reload(state).await;
    Ok(())
}

async fn delete(state: &AppState, entity: Entity, name: &str) -> AdminResult {
    read_only_if_config(&state.governance().directory(), entity, name)?;
    let gone = state
        .store()
        .delete_entity(entity, name)
        .await
        .map_err(|e| store_failed(&e))?;
    if !gone {
        return Err(not_found(what(entity)));
    }
    super::reload(state).await;
    Ok(json(StatusCode::OK, &j!({"deleted": name})))
}

pub async fn list_users(State(state): State<AppState>, caller: Caller) -> Response {
    respond(list_members(&state, caller, Entity::User).await)
}
pub async fn list_projects(State(state): State<AppState>, caller: Caller) -> Response {
    respond(list_members(&state, caller, Entity::Project).await)
}
pub async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(n): Path<String>,
) -> Response {
    respond(get_member(&state, caller, Entity::User, &n).await)
}
pub async fn get_project(
    State(state): State<AppState>,
    caller: Caller,
    Path(n): Path<String>,
) -> Response {
    respond(get_member(&state, caller, Entity::Project, &n).await)
}
pub async fn create_user(State(state): State<AppState>, caller: Caller, bytes: Bytes) -> Response {
    respond(create_member(&state, caller, Entity::User, &bytes).await)
}
pub async fn create_project(
    State(state): State<AppState>,
    caller: Caller,
    bytes: Bytes,
) -> Response {
    respond(create_member(&state, caller, Entity::Project, &bytes).await)
}
pub async fn delete_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(n): Path<String>,
) -> Response {
    respond(delete_member(&state, caller, Entity::User, &n).await)
}
pub async fn delete_project(
    State(state): State<AppState>,
    caller: Caller,
    Path(n): Path<String>,
) -> Response {
    respond(delete_member(&state, caller, Entity::Project, &n).await)
}
