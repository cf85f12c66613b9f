//! Who is looking at a dashboard page: the session its cookie names, and the caller that
//! session is now (`admin::Caller`, so that every page reads only what the admin API would
//! let the same caller read).
//!
//! `app` asks [`find`] before any `/ui` route but the public ones (`ui::PUBLIC`), and puts
//! the [`Viewer`] in the request's extensions; a page takes it as an extractor. Without a
//! cookie a page answers 303 to the sign-in page (SPEC §5); with a cookie that names no open
//! session (signed out, expired, its key revoked, the admin token rotated) 401, with the
//! cookie cleared (RELIABILITY 35: a replayed cookie gets 401).

use axum::response::Response;
use http::StatusCode;

use super::cookie;
use crate::admin::Caller;
use crate::governance::keys::{digest, from_hex, hex, same_digest};
use crate::governance::now_unix;
use crate::governance::sessions::Who;
use crate::state::AppState;

/// The signed-in viewer of a page.
#[derive(Clone)]
pub struct Viewer {
    pub caller: Caller,
    /// The session's id (from the cookie): to sign it out.
    pub session: String,
    /// The token every form that changes something carries ([`Viewer::csrf_ok`]).
    pub csrf: String,
}

impl Viewer {
    /// Whether a form's `_csrf` field is this session's token (compared in constant time).
    pub fn csrf_ok(&self, presented: &str) -> bool {
        same_digest(&digest(presented), &digest(&self.csrf))
    }
}

/// A session's form token: derived from its id, which only the browser's cookie holds, so
/// another site can neither read nor make it.
pub fn csrf_token(session: &str) -> String {
    hex(&digest(&format!("gatehouse-ui-csrf:{session}")))
}

/// The viewer of this request, or the answer to give instead (see the module header).
pub async fn find(state: &AppState, head: &http::request::Parts) -> Result<Viewer, Response> {
    let Some(id) = cookie::read(&head.headers, cookie::SESSION).filter(|v| !v.is_empty()) else {
        return Err(no_session(head));
    };
    let row = match state
        .governance()
        .sessions()
        .find(state.store(), id, now_unix())
        .await
    {
        Ok(row) => row,
        Err(e) => {
            tracing::error!(error = %e, "dashboard: sessions unreadable");
            return Err(super::layout::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "The store cannot be reached",
                "Sessions cannot be checked right now. Try again in a moment.",
            ));
        }
    };
    let caller = row.and_then(|r| {
        let credential = from_hex(&r.credential_hash)?;
        match Who::parse(&r.who)? {
            Who::Admin => {
                let live = state.live();
                let admin = live.config.server.admin_token.as_ref()?;
                same_digest(&digest(admin.expose()), &credential).then_some(Caller::Admin)
            }
            Who::Key => state
                .governance()
                .principal_by_digest(&credential)
                .map(Caller::of),
        }
    });
    match caller {
        Some(caller) => Ok(Viewer {
            caller,
            csrf: csrf_token(id),
            session: id.to_owned(),
        }),
        None => {
            let mut r = super::layout::problem(
                StatusCode::UNAUTHORIZED,
                "Signed out",
                "This session has ended (signed out, expired, or its credential is no longer valid). Sign in again.",
            );
            super::layout::set_cookie(
                &mut r,
                &cookie::set(cookie::SESSION, "", 0, cookie::secure(&head.headers)),
            );
            Err(r)
        }
    }
}

/// No session cookie at all: a page view goes to the sign-in page; anything else is 401.
fn no_session(head: &http::request::Parts) -> Response {
    if head.method == http::Method::GET || head.method == http::Method::HEAD {
        super::layout::see_other("/ui/login")
    } else {
        super::layout::problem(
            StatusCode::UNAUTHORIZED,
            "Not signed in",
            "Sign in to use the dashboard.",
        )
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Viewer {
    type Rejection = Response;

    /// The viewer `app` found for this page (see the module header).
    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Viewer>().cloned().ok_or_else(|| {
            super::layout::problem(
                StatusCode::UNAUTHORIZED,
                "Not signed in",
                "Sign in to use the dashboard.",
            )
        })
    }
}
