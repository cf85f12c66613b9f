//! The first stage, authentication, as the layer `app` puts around every route: who is
//! calling, before the request's body is read. The loop guard comes first (508 for a
//! request that already passed through this gateway), then the caller's key (401 without a
//! valid one, once any key exists). The handler finds the result as [`Caller`] in the
//! request's extensions.
//!
//! A gateway with no keys is open to whoever can reach it, which on loopback means this
//! machine's programs, and also any web page its browser opens: a page on another site can
//! POST to `http://127.0.0.1:8080` (a "simple" request needs no preflight), and a site that
//! re-points its own name at 127.0.0.1 (DNS rebinding) can read the replies. So an open
//! gateway answers only requests whose `Host` is a loopback address, `localhost` or a name in
//! `[server] allowed_hosts`, and whose `Origin`, when a browser sent one, is a loopback
//! origin or one in `[server] allowed_origins` ([`browser_check`]); a refusal is 403 and
//! names the setting. Non-browser clients (SDKs, CLIs) send no `Origin`. A gateway with keys
//! needs none of this: a page cannot present a key it does not have.

use std::sync::Arc;

use crate::error::GatewayError;
use crate::governance::Principal;
use crate::state::AppState;

/// Who is calling an inference route (`principal` is `None` when the gateway is open: no
/// keys exist), and the loop guard's hop header for its upstream requests.
#[derive(Clone, Debug, Default)]
pub struct Caller {
    pub principal: Option<Arc<Principal>>,
    /// `None`: the request's first pass through a gateway.
    pub hop: Option<http::HeaderValue>,
}

/// Authenticate an inference request from its head.
pub async fn authenticate(
    state: &AppState,
    head: &http::request::Parts,
) -> Result<Caller, GatewayError> {
    let hop = hop(head)?;
    let live = state.live();
    let principal = state
        .governance()
        .authenticate(&live.config, state.store(), &head.headers, head.uri.query())
        .await?;
    if principal.is_none() {
        browser_check(head, &live.config.server)?;
    }
    Ok(Caller { principal, hop })
}

/// [`authenticate`] without waiting, as almost every request can be: `None` when the key
/// is unknown and the keys in memory may be stale (then `authenticate` looks again).
pub fn authenticate_now(
    state: &AppState,
    head: &http::request::Parts,
) -> Option<Result<Caller, GatewayError>> {
    let hop = match hop(head) {
        Ok(hop) => hop,
        Err(e) => return Some(Err(e)),
    };
    let principal = match state
        .governance()
        .authenticate_now(&head.headers, head.uri.query())?
    {
        Ok(None) => match browser_check(head, &state.live_now().config.server) {
            Ok(()) => None,
            Err(e) => return Some(Err(e)),
        },
        Ok(p) => p,
        Err(e) => return Some(Err(e)),
    };
    Some(Ok(Caller { principal, hop }))
}

/// May an open gateway (no keys) answer this request? Its `Host` must be a loopback
/// address, `localhost` or an allowed name, and its `Origin` (sent by browsers) a loopback
/// origin or an allowed one; 403 otherwise (see the module header).
pub fn browser_check(
    head: &http::request::Parts,
    server: &crate::config::ServerConfig,
) -> Result<(), GatewayError> {
    let forbidden = |m: String| GatewayError::new(crate::error::ErrorKind::Forbidden, m);
    let host = head
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| head.uri.authority().map(http::uri::Authority::as_str));
    if let Some(host) = host {
        let name = without_port(host);
        if !is_loopback(name)
            && !server
                .allowed_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name))
        {
            return Err(forbidden(format!(
                "this gateway has no keys, so it answers only requests addressed to a loopback \
                 address or an allowed name, and `{}` is neither (a web page that points its own \
                 name at this machine would look like this): add it to `[server] allowed_hosts`, \
                 or create a key",
                crate::pipeline::reply::header_safe(&name.to_ascii_lowercase())
            )));
        }
    }
    if let Some(origin) = head.headers.get(http::header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("null");
        let loopback = origin
            .split_once("://")
            .is_some_and(|(_, rest)| is_loopback(without_port(rest)));
        if !loopback
            && !server
                .allowed_origins
                .iter()
                .any(|o| o.eq_ignore_ascii_case(origin))
        {
            return Err(forbidden(format!(
                "this gateway has no keys, so it does not answer web pages of other sites, and \
                 this request came from `{}`: add the origin to `[server] allowed_origins`, or \
                 create a key",
                crate::pipeline::reply::header_safe(&origin.to_ascii_lowercase())
            )));
        }
    }
    Ok(())
}

/// `host` of `host:port` or `[v6]:port` (brackets kept off).
fn without_port(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    // The port is the digits after the last `:`, read from the end.
    let digits = authority
        .bytes()
        .rev()
        .take_while(u8::is_ascii_digit)
        .count();
    match authority.len().checked_sub(digits + 1) {
        Some(colon) if authority.as_bytes()[colon] == b':' => &authority[..colon],
        _ => authority,
    }
}

/// A loopback address, `localhost` or a name under `.localhost` (which resolvers keep on
/// this machine, RFC 6761).
fn is_loopback(host: &str) -> bool {
    // The address nearly every local client uses, without parsing it.
    if host == "127.0.0.1" {
        return true;
    }
    const SUFFIX: &str = ".localhost";
    let n = host.len();
    if host.eq_ignore_ascii_case("localhost")
        || (n > SUFFIX.len()
            && host
                .get(n - SUFFIX.len()..)
                .is_some_and(|s| s.eq_ignore_ascii_case(SUFFIX)))
    {
        return true;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(std::net::IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

/// The loop guard: the hop header for this request's upstream requests (`None` on its
/// first pass through a gateway), or 508 when it already passed through this one.
fn hop(head: &http::request::Parts) -> Result<Option<http::HeaderValue>, GatewayError> {
    if head
        .headers
        .contains_key(&crate::routing::loopguard::HOP_HEADER)
    {
        crate::routing::loopguard::check(&head.headers).map(Some)
    } else {
        Ok(None)
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = axum::response::Response;

    /// The caller the authentication layer found (see [`layer_found`]).
    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        layer_found(parts)
    }
}

/// What the authentication layer put in a request's extensions (the inference [`Caller`],
/// or the admin API's), for a handler's extractor; 401 on a route the layer let through
/// unauthenticated (a public one), which must not act for a caller.
#[expect(
    clippy::result_large_err,
    reason = "an extractor's rejection is the response itself"
)]
pub fn layer_found<T: Clone + Send + Sync + 'static>(
    parts: &http::request::Parts,
) -> Result<T, axum::response::Response> {
    parts.extensions.get::<T>().cloned().ok_or_else(|| {
        let e = GatewayError::new(
            crate::error::ErrorKind::Unauthorized,
            "this route is not authenticated",
        );
        super::reply::openai_error(&e, &super::RequestCtx::new())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(host: &str, origin: Option<&str>) -> http::request::Parts {
        let mut b = http::Request::builder().uri("/v1/chat/completions");
        if !host.is_empty() {
            b = b.header("host", host);
        }
        if let Some(o) = origin {
            b = b.header("origin", o);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn server(hosts: &[&str], origins: &[&str]) -> crate::config::ServerConfig {
        let env = std::collections::HashMap::<String, String>::new();
        let mut s = crate::config::parse("t.toml", "", &env).unwrap().server;
        s.allowed_hosts = hosts.iter().map(|h| (*h).to_owned()).collect();
        s.allowed_origins = origins.iter().map(|o| (*o).to_owned()).collect();
        s
    }

    #[test]
    fn an_open_gateway_answers_loopback_hosts_and_origins_only() {
        let s = server(&[], &[]);
        for host in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:8080",
            "127.1.2.3",
            "app.localhost:3000",
            "[::ffff:127.0.0.1]:80",
            "",
        ] {
            assert!(browser_check(&head(host, None), &s).is_ok(), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8080",
            "10.0.0.5:8080",
            "[2001:db8::1]:8080",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
        ] {
            let e = browser_check(&head(host, None), &s).unwrap_err();
            assert_eq!(e.status(), http::StatusCode::FORBIDDEN, "{host}");
            assert!(e.message.contains("allowed_hosts"), "{}", e.message);
        }
        for origin in [
            "http://localhost:3000",
            "http://127.0.0.1:5173",
            "http://[::1]:8000",
        ] {
            assert!(
                browser_check(&head("127.0.0.1:8080", Some(origin)), &s).is_ok(),
                "{origin}"
            );
        }
        for origin in [
            "https://evil.example",
            "null",
            "http://localhost.evil.example",
        ] {
            let e = browser_check(&head("127.0.0.1:8080", Some(origin)), &s).unwrap_err();
            assert!(e.message.contains("allowed_origins"), "{}", e.message);
        }
    }

    #[test]
    fn allowed_names_and_origins_are_answered() {
        let s = server(&["gateway.internal"], &["https://app.example.com"]);
        assert!(browser_check(&head("Gateway.Internal:8080", None), &s).is_ok());
        assert!(browser_check(&head("127.0.0.1", Some("https://app.example.com")), &s).is_ok());
        assert!(
            browser_check(&head("127.0.0.1", Some("https://app.example.com:444")), &s).is_err()
        );
    }
}
