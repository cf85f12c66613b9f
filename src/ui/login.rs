//! Signing in and out of the dashboard (`/ui/login`, `/ui/logout`).
//!
//! - `GET /ui/login`: the form, and a fresh nonce both in a cookie and in the form. A form
//!   posted from another site carries no such cookie (`SameSite=Strict`), so it is refused:
//!   nobody can be signed in as somebody else (login CSRF).
//! - `POST /ui/login` (`token`, `nonce`): the admin token or a key, checked exactly as the
//!   admin API checks `Authorization: Bearer` (`admin::caller_from_token`). A good one
//!   starts a session (`governance::sessions`) and 303s to the overview with the session's
//!   cookie; a bad one gets the form again, 401. The credential travels in the body only,
//!   never in a URL.
//! - `POST /ui/logout` (`_csrf`): revokes the session in the store, clears the cookie.

use axum::Form;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use maud::html;
use serde::Deserialize;

use super::cookie;
use super::layout::{self, see_other, set_cookie};
use super::viewer::Viewer;
use crate::admin::{Caller, caller_from_token};
use crate::governance::keys::{digest, same_digest};
use crate::governance::now_unix;
use crate::governance::sessions::{self, Who};
use crate::state::AppState;

/// How long a sign-in form stays usable.
const NONCE_SECS: u64 = 3600;

pub async fn page(headers: HeaderMap) -> Response {
    form(&headers, StatusCode::OK, None)
}

#[derive(Deserialize)]
pub struct SignIn {
    #[serde(default)]
    token: String,
    #[serde(default)]
    nonce: String,
}

pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<SignIn>,
) -> Response {
    let nonce_ok = cookie::read(&headers, cookie::LOGIN)
        .is_some_and(|c| !c.is_empty() && same_digest(&digest(c), &digest(&f.nonce)));
    if !nonce_ok {
        return form(
            &headers,
            StatusCode::FORBIDDEN,
            Some("This sign-in form has expired or was not sent from this page. Try again."),
        );
    }
    let token = f.token.trim();
    let Some(caller) = Some(token)
        .filter(|t| !t.is_empty())
        .and_then(|t| caller_from_token(&state, t))
    else {
        return form(
            &headers,
            StatusCode::UNAUTHORIZED,
            Some("That is neither the admin token nor a usable key."),
        );
    };
    let who = if matches!(caller, Caller::Admin) {
        Who::Admin
    } else {
        Who::Key
    };
    let created = state
        .governance()
        .sessions()
        .create(state.store(), who, &digest(token), now_unix())
        .await;
    match created {
        Ok((id, _)) => {
            let secure = cookie::secure(&headers);
            let mut r = see_other("/ui/");
            set_cookie(
                &mut r,
                &cookie::set(cookie::SESSION, &id, sessions::LIFETIME.as_secs(), secure),
            );
            set_cookie(&mut r, &cookie::set(cookie::LOGIN, "", 0, secure));
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "dashboard: could not start a session");
            layout::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "The store cannot be reached",
                "Sessions cannot be started right now. Try again in a moment.",
            )
        }
    }
}

#[derive(Deserialize)]
pub struct SignOut {
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

pub async fn sign_out(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(f): Form<SignOut>,
) -> Response {
    if !viewer.csrf_ok(&f.csrf) {
        return layout::csrf_refused();
    }
    if let Err(e) = state
        .governance()
        .sessions()
        .revoke(state.store(), &viewer.session, now_unix())
        .await
    {
        tracing::error!(error = %e, "dashboard: could not revoke a session");
        return layout::problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "The store cannot be reached",
            "The session could not be ended right now. Try again in a moment.",
        );
    }
    let mut r = see_other("/ui/login");
    set_cookie(
        &mut r,
        &cookie::set(cookie::SESSION, "", 0, cookie::secure(&headers)),
    );
    r
}

/// The sign-in form with a new nonce, and `error` above it.
fn form(headers: &HeaderMap, status: StatusCode, error: Option<&str>) -> Response {
    let Ok(nonce) = sessions::new_id() else {
        return layout::problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            "The gateway has no randomness to sign in with right now.",
        );
    };
    let secure = cookie::secure(headers);
    let mut r = layout::bare(
        status,
        "Sign in",
        html! {
            @if let Some(e) = error {
                p.error role="alert" { (e) }
            }
            @if !secure {
                p.warn {
                    "This connection is not encrypted: the token you type crosses the network in the clear. "
                    "Serve the dashboard over HTTPS (a proxy that sets X-Forwarded-Proto) or from this machine."
                }
            }
            form.signin method="post" action="/ui/login" {
                label for="token" { "Admin token or key" }
                input id="token" name="token" type="password" autocomplete="current-password" required autofocus;
                input type="hidden" name="nonce" value=(nonce);
                button type="submit" { "Sign in" }
            }
            p.hint {
                "The admin sees everything; a team admin's key, its team; any other key, its own usage."
            }
        },
    );
    set_cookie(
        &mut r,
        &cookie::set(cookie::LOGIN, &nonce, NONCE_SECS, secure),
    );
    r
}
