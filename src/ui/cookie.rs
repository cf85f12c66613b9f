//! The dashboard's cookies: read from `Cookie`, written as `Set-Cookie`. Every one is
//! `HttpOnly` and `SameSite=Strict`, scoped to `/ui`, and `Secure` wherever a browser keeps a
//! secure cookie ([`secure`]).

use http::HeaderMap;
use http::header::{COOKIE, HOST};

/// The session's id.
pub const SESSION: &str = "gatehouse_session";
/// The sign-in form's nonce: a form posted from another site cannot carry it.
pub const LOGIN: &str = "gatehouse_login";

/// The value of the cookie `name` among the request's `Cookie` fields (the first one).
pub fn read<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// A `Set-Cookie` value: `value` for `max_age` seconds (0 deletes the cookie).
pub fn set(name: &str, value: &str, max_age: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/ui; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

/// Whether the browser reached the gateway over HTTPS (a proxy in front said so with
/// `X-Forwarded-Proto` or `Forwarded`), or on a loopback host, where browsers keep `Secure`
/// cookies over plain HTTP too. Elsewhere, over plain HTTP, a `Secure` cookie would be
/// dropped and nobody could sign in; the sign-in page warns of that connection.
pub fn secure(headers: &HeaderMap) -> bool {
    https(headers) || loopback(headers)
}

/// A proxy in front says the browser's connection is HTTPS.
pub fn https(headers: &HeaderMap) -> bool {
    let said = |name: &str, test: &dyn Fn(&str) -> bool| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(test)
    };
    said("x-forwarded-proto", &|v| {
        v.split(',')
            .next()
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
    }) || said("forwarded", &|v| {
        v.split([';', ','])
            .filter_map(|p| p.trim().split_once('='))
            .any(|(k, v)| {
                k.eq_ignore_ascii_case("proto") && v.trim_matches('"').eq_ignore_ascii_case("https")
            })
    })
}

/// The request's `Host` names a loopback address.
fn loopback(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn cookies_are_read_by_exact_name_across_fields() {
        let h = headers(&[
            ("cookie", "a=1; gatehouse_session_x=2"),
            ("cookie", " gatehouse_session=abc ; b=3"),
        ]);
        assert_eq!(read(&h, SESSION), Some("abc"));
        assert_eq!(read(&h, "b"), Some("3"));
        assert_eq!(read(&h, LOGIN), None);
    }

    #[test]
    fn set_cookie_is_http_only_strict_and_scoped() {
        assert_eq!(
            set(SESSION, "v", 60, true),
            "gatehouse_session=v; Path=/ui; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
        );
        assert!(!set(SESSION, "v", 0, false).contains("Secure"));
    }

    #[test]
    fn secure_over_https_and_on_loopback_only() {
        assert!(secure(&headers(&[("host", "127.0.0.1:8080")])));
        assert!(secure(&headers(&[("host", "localhost")])));
        assert!(secure(&headers(&[("host", "[::1]:8080")])));
        assert!(!secure(&headers(&[("host", "10.0.0.5:8080")])));
        assert!(secure(&headers(&[
            ("host", "gw.example.com"),
            ("x-forwarded-proto", "https")
        ])));
        assert!(secure(&headers(&[
            ("host", "gw.example.com"),
            ("forwarded", "for=1.2.3.4;proto=https")
        ])));
        assert!(!secure(&headers(&[
            ("host", "gw.example.com"),
            ("x-forwarded-proto", "http")
        ])));
    }
}
