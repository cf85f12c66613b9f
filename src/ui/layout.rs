//! The page shell every dashboard page is rendered in, and the answers every page gives the
//! same way: the security headers, a problem page, a redirect.
//!
//! Pages are HTML rendered on the server with `maud` (every spliced value escaped), styled by
//! one stylesheet of our own ([`STYLESHEET`], served at `/ui/static/app.css`), with no script
//! and nothing fetched from elsewhere: the dashboard works air-gapped. The headers forbid the
//! rest: no script at all, no framing, forms posted only to the gateway, no referrer.

use axum::response::{IntoResponse, Response};
use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, REFERRER_POLICY, SET_COOKIE,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::{HeaderValue, StatusCode};
use maud::{DOCTYPE, Markup, html};

use super::viewer::Viewer;
use crate::admin::Caller;

/// The dashboard's stylesheet.
pub const STYLESHEET: &str = include_str!("app.css");

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Who may see a page.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Everyone signed in (a key holder sees their own key's share).
    All,
    /// The admin and team admins.
    Managers,
    /// The admin only.
    Admin,
}

impl Audience {
    pub fn admits(self, caller: &Caller) -> bool {
        match self {
            Audience::All => true,
            Audience::Managers => !matches!(caller, Caller::Member(_)),
            Audience::Admin => matches!(caller, Caller::Admin),
        }
    }
}

/// The pages in the navigation, in order: path, label, audience.
pub const NAV: &[(&str, &str, Audience)] = &[
    ("/ui/", "Overview", Audience::All),
    ("/ui/logs", "Requests", Audience::All),
    ("/ui/usage", "Usage", Audience::All),
    ("/ui/budgets", "Budgets", Audience::All),
    ("/ui/keys", "Keys", Audience::Managers),
    ("/ui/teams", "Teams", Audience::Managers),
    ("/ui/providers", "Providers", Audience::Admin),
    ("/ui/routes", "Routes", Audience::Admin),
    ("/ui/config", "Config", Audience::Admin),
];

/// A whole page: the navigation for `viewer` with `current` marked, then `content`.
pub fn page(viewer: &Viewer, current: &str, title: &str, content: Markup) -> Response {
    let who = match &viewer.caller {
        Caller::Admin => "admin".to_owned(),
        Caller::TeamAdmin { team, key } => format!("{} (team admin, {team})", key.key_name),
        Caller::Member(key) => key.key_name.clone(),
    };
    let body = html! {
        header.top {
            a.brand href="/ui/" { "Gatehouse" }
            nav aria-label="Pages" {
                ul {
                    @for (path, label, audience) in NAV {
                        @if audience.admits(&viewer.caller) {
                            li {
                                a href=(path) aria-current=[(*path == current).then_some("page")] { (label) }
                            }
                        }
                    }
                }
            }
            form.signout method="post" action="/ui/logout" {
                span.who { (who) }
                input type="hidden" name="_csrf" value=(viewer.csrf);
                button type="submit" { "Sign out" }
            }
        }
        main id="main" {
            h1 { (title) }
            (content)
        }
    };
    html_response(StatusCode::OK, title, body)
}

/// A page without the navigation (sign-in, problems).
pub fn bare(status: StatusCode, title: &str, content: Markup) -> Response {
    html_response(
        status,
        title,
        html! {
            main.bare id="main" {
                h1 { (title) }
                (content)
            }
        },
    )
}

/// A problem page: what went wrong, in a sentence, and the way back.
pub fn problem(status: StatusCode, title: &str, message: &str) -> Response {
    bare(
        status,
        title,
        html! {
            p { (message) }
            p { a href="/ui/login" { "Sign in" } " · " a href="/ui/" { "Overview" } }
        },
    )
}

/// 503: the store did not answer; `what` cannot be read (or done) right now.
pub fn unavailable(what: &str) -> Response {
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!("{what} cannot be read"),
        "The store cannot be reached right now. Try again in a moment.",
    )
}

/// 403: a page this viewer may not see (as the admin API would refuse it).
pub fn forbidden() -> Response {
    problem(
        StatusCode::FORBIDDEN,
        "Not for this sign-in",
        "This page is for the admin only.",
    )
}

/// 403: a form that did not carry this session's token.
pub fn csrf_refused() -> Response {
    problem(
        StatusCode::FORBIDDEN,
        "Refused",
        "This form was not sent from a page of this session. Reload the page and try again.",
    )
}

/// A Unix time as `2026-12-08 01:45:00 UTC`.
pub fn time(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| unix.to_string())
}

/// 303 to `to` (a path of the dashboard).
pub fn see_other(to: &'static str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut()
        .insert(LOCATION, HeaderValue::from_static(to));
    secure_headers(&mut r);
    r
}

/// Text as `text/plain` (a kept body): never sniffed as HTML, never cached.
pub fn plain_text(text: String) -> Response {
    let mut r = text.into_response();
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    secure_headers(&mut r);
    r
}

/// Add a `Set-Cookie` field.
pub fn set_cookie(r: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().append(SET_COOKIE, v);
    }
}

/// The stylesheet, cached by the browser for a day.
pub async fn stylesheet() -> Response {
    let mut r = STYLESHEET.into_response();
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("max-age=86400"));
    r.headers_mut()
        .insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}

fn html_response(status: StatusCode, title: &str, body: Markup) -> Response {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Gatehouse" }
                link rel="stylesheet" href="/ui/static/app.css";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                (body)
            }
        }
    };
    let mut r = (status, axum::response::Html(doc.into_string())).into_response();
    secure_headers(&mut r);
    r
}

/// What every dashboard answer carries: no caching of pages, no script, no framing, no
/// referrer, no content sniffing.
fn secure_headers(r: &mut Response) {
    let h = r.headers_mut();
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
}
