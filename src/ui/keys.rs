//! `/ui/keys`: the stored keys the viewer manages (the admin: all; a team admin: its team's),
//! a form to create one, and a button to revoke each. Creating and revoking go through the
//! admin API's own functions (`admin::keys::create_key`, `revoke_key`) with the viewer's
//! caller, so the same rules hold: a team admin creates keys for its own team only and grants
//! no more than it holds. A new key is shown once, in the reply to the form (which no cache
//! keeps), never in a URL. Keys written in the config file are managed there.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Response;
use http::StatusCode;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, Audience, page};
use super::viewer::Viewer;
use crate::admin::Caller;
use crate::admin::keys::{NewKeyBody, create_key, revoke_key, visible_keys};
use crate::config::{RateLimit, StoredBudget};
use crate::error::{ErrorKind, GatewayError};
use crate::governance::now_unix;
use crate::state::AppState;
use crate::store::KeyRow;

pub async fn show(State(state): State<AppState>, viewer: Viewer) -> Response {
    render(&state, &viewer, Notice::None, &NewKeyForm::default()).await
}

/// What the page says above the list.
enum Notice {
    None,
    /// A key was created: shown once.
    Created {
        name: String,
        key: String,
    },
    Revoked(String),
    /// The form was refused (400/403/409), with the admin API's reason.
    Refused(StatusCode, String),
}

/// The create form's fields, as posted (kept to fill the form again after a refusal).
#[derive(Deserialize, Default)]
pub struct NewKeyForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    team: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    project: String,
    /// Comma-separated model patterns.
    #[serde(default)]
    models: String,
    /// A duration (`30d`).
    #[serde(default)]
    expires_in: String,
    /// Dollars a month.
    #[serde(default)]
    monthly_usd: String,
    #[serde(default)]
    rpm: String,
    #[serde(default)]
    team_admin: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(f): Form<NewKeyForm>,
) -> Response {
    if matches!(viewer.caller, Caller::Member(_)) {
        return layout::forbidden();
    }
    if !viewer.csrf_ok(&f.csrf) {
        return layout::csrf_refused();
    }
    let notice = match body_of(&f) {
        Ok(b) => match create_key(&state, &viewer.caller, b).await {
            Ok((row, key)) => Notice::Created {
                name: row.name,
                key,
            },
            Err(e) => refused(e),
        },
        Err(e) => refused(e),
    };
    let keep = if matches!(notice, Notice::Created { .. }) {
        NewKeyForm::default()
    } else {
        f
    };
    render(&state, &viewer, notice, &keep).await
}

#[derive(Deserialize)]
pub struct Revoke {
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

pub async fn revoke(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(f): Form<Revoke>,
) -> Response {
    if matches!(viewer.caller, Caller::Member(_)) {
        return layout::forbidden();
    }
    if !viewer.csrf_ok(&f.csrf) {
        return layout::csrf_refused();
    }
    let notice = match revoke_key(&state, &viewer.caller, &id).await {
        Ok(row) => Notice::Revoked(row.name),
        Err(e) => refused(e),
    };
    render(&state, &viewer, notice, &NewKeyForm::default()).await
}

fn refused(e: GatewayError) -> Notice {
    let status = match e.kind {
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    Notice::Refused(status, e.message)
}

/// The admin API's request body for the form's fields.
fn body_of(f: &NewKeyForm) -> Result<NewKeyBody, GatewayError> {
    let opt = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let number = |field: &str, s: &str| -> Result<Option<f64>, GatewayError> {
        match opt(s) {
            None => Ok(None),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n > 0.0)
                .map(Some)
                .ok_or_else(|| {
                    GatewayError::invalid_param(
                        field,
                        format!("`{field}` must be a positive number"),
                    )
                }),
        }
    };
    let mut budgets = Vec::new();
    if let Some(usd) = number("monthly_usd", &f.monthly_usd)? {
        budgets.push(
            serde_json::from_value::<StoredBudget>(
                serde_json::json!({"usd": usd, "period": "monthly"}),
            )
            .map_err(|e| GatewayError::invalid_param("monthly_usd", e.to_string()))?,
        );
    }
    let rate_limit = RateLimit {
        rpm: number("rpm", &f.rpm)?.map(|n| n as u64),
        ..RateLimit::default()
    };
    let models: Vec<String> = f
        .models
        .split(',')
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .collect();
    Ok(NewKeyBody {
        name: f.name.trim().to_owned(),
        team: opt(&f.team),
        user: opt(&f.user),
        project: opt(&f.project),
        models: (!models.is_empty()).then_some(models),
        expires_in: opt(&f.expires_in),
        budgets,
        rate_limit,
        role: f
            .team_admin
            .is_some()
            .then(|| crate::governance::keys::ROLE_TEAM_ADMIN.to_owned()),
        log_bodies: None,
    })
}

async fn render(state: &AppState, viewer: &Viewer, notice: Notice, form: &NewKeyForm) -> Response {
    if !Audience::Managers.admits(&viewer.caller) {
        return layout::forbidden();
    }
    let keys = match visible_keys(state, &viewer.caller).await {
        Ok(k) => k,
        Err(_) => {
            return layout::unavailable("Keys");
        }
    };
    let now = now_unix();
    let status = match &notice {
        Notice::Refused(s, _) => *s,
        _ => StatusCode::OK,
    };
    let own_team = match &viewer.caller {
        Caller::TeamAdmin { team, .. } => Some(team.as_str()),
        _ => None,
    };
    let content = html! {
        @match &notice {
            Notice::None => {},
            Notice::Created { name, key } => {
                section.created role="status" {
                    p { "Key " strong { (name) } " created. Copy it now: it is not shown again." }
                    pre.key { (key) }
                }
            },
            Notice::Revoked(name) => p.note role="status" { "Key " strong { (name) } " revoked." },
            Notice::Refused(_, m) => p.error role="alert" { (m) },
        }
        @if keys.is_empty() {
            p.empty { "No stored key yet." }
        } @else {
            div.scroll {
                table {
                    thead { tr {
                        th scope="col" { "Name" }
                        th scope="col" { "Key" }
                        th scope="col" { "Team" }
                        th scope="col" { "User / project" }
                        th scope="col" { "Models" }
                        th scope="col" { "Status" }
                        th scope="col" { "Created" }
                        th scope="col" { span.visually-hidden { "Actions" } }
                    } }
                    tbody {
                        @for k in &keys { (row(k, now, &viewer.csrf)) }
                    }
                }
            }
        }
        p.hint { "Keys written in the config file are managed there and are not listed." }
        h2 { "Create a key" }
        form.create method="post" action="/ui/keys" {
            input type="hidden" name="_csrf" value=(viewer.csrf);
            label { span { "Name" } input name="name" required value=(form.name); }
            @match own_team {
                Some(t) => label { span { "Team" } input name="team" value=(t) readonly; },
                None => label { span { "Team" } input name="team" value=(form.team); },
            }
            label { span { "User" } input name="user" value=(form.user); }
            label { span { "Project" } input name="project" value=(form.project); }
            label { span { "Models" } input name="models" value=(form.models) placeholder="gpt-4o, claude-*"; }
            label { span { "Expires in" } input name="expires_in" value=(form.expires_in) placeholder="30d"; }
            label { span { "Monthly budget (USD)" } input name="monthly_usd" inputmode="decimal" value=(form.monthly_usd); }
            label { span { "Requests a minute" } input name="rpm" inputmode="numeric" value=(form.rpm); }
            @if matches!(viewer.caller, Caller::Admin) {
                label.check { input type="checkbox" name="team_admin" value="1" checked[form.team_admin.is_some()]; " Team admin (manages its team)" }
            }
            div.actions { button type="submit" { "Create" } }
        }
    };
    let mut r = page(viewer, "/ui/keys", "Keys", content);
    *r.status_mut() = status;
    r
}

fn row(k: &KeyRow, now: i64, csrf: &str) -> Markup {
    let status = crate::commands::key_status(k, now);
    html! {
        tr {
            th scope="row" { (k.name) @if k.role.is_some() { " " span.hint { "team admin" } } }
            td { code { (k.hint) } }
            td { (k.team.as_deref().unwrap_or("—")) }
            td { (k.user.as_deref().unwrap_or("—")) " / " (k.project.as_deref().unwrap_or("—")) }
            td { (k.models.as_ref().map_or_else(|| "any of its team's".to_owned(), |m| m.join(", "))) }
            td { span class=(format!("status {status}")) { (status) }
                @if let (Some(t), "active") = (k.expires_at, status) { " " span.hint { "until " (layout::time(t)) } } }
            td { (layout::time(k.created_at)) }
            td {
                @if status == "active" {
                    form.inline method="post" action=(format!("/ui/keys/{}/revoke", k.id)) {
                        input type="hidden" name="_csrf" value=(csrf);
                        button.danger type="submit" aria-label=(format!("Revoke {}", k.name)) { "Revoke" }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_the_admin_apis_body() {
        let f = NewKeyForm {
            name: " ci ".into(),
            team: "alpha".into(),
            models: "gpt-4o, claude-*,".into(),
            monthly_usd: "25".into(),
            rpm: "60".into(),
            ..NewKeyForm::default()
        };
        let b = body_of(&f).unwrap();
        assert_eq!(b.name, "ci");
        assert_eq!(b.team.as_deref(), Some("alpha"));
        assert_eq!(b.user, None);
        assert_eq!(
            b.models,
            Some(vec!["gpt-4o".to_owned(), "claude-*".to_owned()])
        );
        assert_eq!(b.budgets.len(), 1);
        assert_eq!(b.role, None);
        for bad in ["-1", "x", "NaN", "inf"] {
            let f = NewKeyForm {
                name: "x".into(),
                monthly_usd: bad.into(),
                ..NewKeyForm::default()
            };
            assert!(body_of(&f).is_err(), "{bad}");
        }
    }
}
