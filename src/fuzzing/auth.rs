//! A request head's credentials and origin: the virtual key a client presents
//! (`Authorization: Bearer`, `x-api-key`, `x-goog-api-key`, `?key=`), checked against a key
//! ring; the loop guard's hop header; and the `Host`/`Origin` checks an open gateway makes
//! (`pipeline::auth::browser_check`).

use std::sync::OnceLock;

use crate::config::{Config, ServerConfig};
use crate::governance::keys::{KeyRing, presented};

/// The static key the key ring holds.
const KEY: &str = "sk-gate-fuzz-0123456789abcdef";

/// Headers read from one head at most (hyper's server parses up to 100).
const MAX_HEADERS: usize = 100;

struct Fixture {
    ring: KeyRing,
    /// An open gateway with no names or origins allowed, and one with some.
    open: ServerConfig,
    allowing: ServerConfig,
}

fn fixture() -> Option<&'static Fixture> {
    static F: OnceLock<Option<Fixture>> = OnceLock::new();
    F.get_or_init(|| {
        let env = std::collections::HashMap::<String, String>::new();
        let text = format!("[[keys]]\nname = \"fuzz\"\nkey = \"{KEY}\"\n");
        let keyed: Config = crate::config::parse("fuzz.toml", &text, &env).ok()?;
        let open = crate::config::parse("fuzz.toml", "", &env).ok()?.server;
        let mut allowing = open.clone();
        allowing.allowed_hosts = vec!["gateway.internal".to_owned(), "[::1]".to_owned()];
        allowing.allowed_origins = vec!["https://app.example.com".to_owned(), "null".to_owned()];
        Some(Fixture {
            ring: KeyRing::build(&keyed, &[]),
            open,
            allowing,
        })
    })
    .as_ref()
}

/// An HTTP/1.1 request head (request line, header lines, blank line), parsed as hyper's
/// server parses it (`httparse`, then `http`'s types, which refuse what hyper refuses).
/// Checked:
/// - a presented credential is non-empty, without surrounding whitespace, and is part of the
///   header or query it came from; the ring's own key, presented, is accepted;
/// - the loop guard's hop value, when it accepts, ends with this gateway's id;
/// - the browser check never refuses what it accepted once more names are allowed, accepts
///   a head with neither `Host` nor `Origin` nor an authority, and its refusal's message
///   is a single line (it is sent to the client).
pub fn auth_headers(data: &[u8]) {
    let Some(f) = fixture() else { return };
    let Some(head) = parse_head(data) else { return };
    let query = head.uri.query();
    if let Some(k) = presented(&head.headers, query) {
        assert!(!k.is_empty(), "an empty credential was presented");
        let from_query = query.is_some_and(|q| q.split('&').any(|kv| kv == format!("key={k}")));
        if !from_query {
            assert_eq!(k, k.trim(), "a credential kept surrounding whitespace");
            let in_header = head
                .headers
                .values()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.contains(k));
            assert!(
                in_header,
                "a credential that is in no header or query: {k:?}"
            );
        }
        let checked = f.ring.check(k, 0);
        if k == KEY {
            assert!(checked.is_ok(), "the ring's own key was refused");
        } else {
            assert!(
                checked.is_err(),
                "a key the ring does not hold was accepted: {k:?}"
            );
        }
    }
    if let Ok(v) = crate::routing::loopguard::check(&head.headers) {
        let v = v.to_str().unwrap_or_default();
        assert!(
            v.ends_with(crate::routing::loopguard::instance_id()),
            "the hop header does not end with this gateway's id: {v:?}"
        );
    }
    let open = crate::pipeline::auth::browser_check(&head, &f.open);
    let allowing = crate::pipeline::auth::browser_check(&head, &f.allowing);
    assert!(
        !(open.is_ok() && allowing.is_err()),
        "allowing more names refused a request the open default answered"
    );
    let bare = !head.headers.contains_key(http::header::HOST)
        && !head.headers.contains_key(http::header::ORIGIN)
        && head.uri.authority().is_none();
    if bare {
        assert!(open.is_ok(), "a request with no Host or Origin was refused");
    }
    for e in [open.err(), allowing.err()].into_iter().flatten() {
        assert!(
            !e.message.contains(['\r', '\n']),
            "a refusal's message spans lines: {:?}",
            e.message
        );
    }
}

/// The head as a server request's parts; `None` for what hyper's server would refuse.
fn parse_head(data: &[u8]) -> Option<http::request::Parts> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let httparse::Status::Complete(_) = req.parse(data).ok()? else {
        return None;
    };
    let mut b = http::Request::builder().method(req.method?).uri(req.path?);
    for h in req.headers.iter() {
        b = b.header(h.name, h.value);
    }
    Some(b.body(()).ok()?.into_parts().0)
}
