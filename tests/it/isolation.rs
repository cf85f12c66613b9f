//! Header isolation and the `Host` header (RELIABILITY 30, 33).
//!
//! Whatever a client sends (its credential in every accepted form, cookies, proxy and
//! forwarding headers, hop-by-hop headers, a header of its own), a provider receives only
//! what the gateway writes itself and the headers its client schema allowlists
//! (`ClientSchema::FORWARDED`: `anthropic-version` and `anthropic-beta` from an Anthropic
//! client to an Anthropic provider; nothing from any other client), on every route that
//! reaches a provider, passthrough included. And with keys configured, no `Host` (or
//! forwarding header) changes what a credential is worth.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

const KEY: &str = "sk-isolation-client-key-0000001";
const ADMIN: &str = "admin-token-isolation-0123456789";
const PROVIDER_KEY: &str = "sk-provider-secret-0000";
/// In every header value the client sends but its credential: found anywhere upstream
/// (a header, the path, the query, the body), it leaked.
const CANARY: &str = "canary-7f3e9c";
/// The `anthropic-beta` an Anthropic client sends (no canary: it is allowlisted).
const CLIENT_BETA: &str = "context-management-2025-06-27";

fn config() -> String {
    format!(
        "[server]\nstream_keepalive = \"2s\"\nadmin_token = \"{ADMIN}\"\n\
         [providers.oai]\nkind = \"openai\"\nbase_url = \"{{mock0}}\"\napi_key = \"${{MOCK_KEY}}\"\nmodels = [\"gpt-*\", \"text-embedding-*\"]\n\
         [providers.compat]\nkind = \"openai-compatible\"\nbase_url = \"{{mock1}}\"\napi_key = \"${{MOCK_KEY}}\"\nmodels = [\"mistral-*\"]\n\
         [providers.claude]\nkind = \"anthropic\"\nbase_url = \"{{mock2}}\"\napi_key = \"${{MOCK_KEY}}\"\nmodels = [\"claude-*\"]\n\
         [providers.gem]\nkind = \"gemini\"\nbase_url = \"{{mock3}}\"\napi_key = \"${{MOCK_KEY}}\"\nmodels = [\"gemini-*\"]\n\
         [[keys]]\nname = \"client\"\nkey = \"{KEY}\"\n"
    )
}

/// Headers a client may send that are not the gateway's business to pass on.
fn client_headers() -> Vec<(&'static str, String)> {
    vec![
        ("cookie", format!("session={CANARY}-cookie; theme=dark")),
        ("x-forwarded-for", format!("10.9.8.7, {CANARY}-xff")),
        ("x-forwarded-host", format!("{CANARY}-xfh.example")),
        ("x-forwarded-proto", format!("{CANARY}-xfp")),
        ("forwarded", format!("for=10.9.8.7;host={CANARY}-fwd")),
        ("x-real-ip", format!("{CANARY}-xri")),
        ("proxy-authorization", format!("Basic {CANARY}-proxyauth")),
        ("x-secret", format!("{CANARY}-secret")),
        ("openai-organization", format!("org-{CANARY}")),
        ("openai-project", format!("proj-{CANARY}")),
        ("referer", format!("https://{CANARY}.example/page")),
        // Hop-by-hop: `connection` names one of the client's own headers as hop-by-hop.
        ("connection", "x-hop-custom".to_owned()),
        ("x-hop-custom", format!("{CANARY}-hop")),
        ("keep-alive", "timeout=5".to_owned()),
        ("te", "trailers".to_owned()),
        ("trailer", "x-client-trailer".to_owned()),
        ("proxy-connection", "keep-alive".to_owned()),
    ]
}

/// The headers the gateway writes on every upstream request (`providers::exec::send`, and
/// `host`/`content-length` from the HTTP client).
const GATEWAY_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "user-agent",
    "accept",
    "x-gatehouse-hop",
    "x-request-id",
];

/// The mocks, in the order of `{mockN}` in [`config`].
const OAI: usize = 0;
const COMPAT: usize = 1;
const CLAUDE: usize = 2;
const GEM: usize = 3;

/// A provider's own credential header (its value must be the provider's key).
fn auth_header(mock: usize) -> (&'static str, String) {
    match mock {
        OAI | COMPAT => ("authorization", format!("Bearer {PROVIDER_KEY}")),
        CLAUDE => ("x-api-key", PROVIDER_KEY.to_owned()),
        _ => ("x-goog-api-key", PROVIDER_KEY.to_owned()),
    }
}

struct Case {
    path: &'static str,
    body: Value,
    /// The mock it must reach, or `None` (answered by the gateway itself).
    reaches: Option<usize>,
    /// Client headers that must arrive as sent (the schema's allowlist).
    forwarded: &'static [&'static str],
}

fn anthropic_req(model: &str) -> Value {
    json!({"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]})
}

fn gemini_req() -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
}

/// Every route that can reach a provider, to each kind of provider it can reach, in
/// passthrough and translated, streamed and not; and the two token counts.
fn cases() -> Vec<Case> {
    let anth = &["anthropic-version", "anthropic-beta"];
    let case = |path, body, reaches, forwarded| Case {
        path,
        body,
        reaches,
        forwarded,
    };
    vec![
        case(
            "/v1/chat/completions",
            chat_req("gpt-4o", false),
            Some(OAI),
            &[],
        ),
        case(
            "/openai/v1/chat/completions",
            chat_req("claude-sonnet-4-5", false),
            Some(CLAUDE),
            &[],
        ),
        case(
            "/v1/chat/completions",
            chat_req("gemini-2.5-flash", false),
            Some(GEM),
            &[],
        ),
        case(
            "/v1/chat/completions",
            chat_req("mistral-small", false),
            Some(COMPAT),
            &[],
        ),
        case(
            "/v1/embeddings",
            json!({"model": "text-embedding-3-small", "input": "hi"}),
            Some(OAI),
            &[],
        ),
        case(
            "/openai/v1/embeddings",
            json!({"model": "gemini-embedding-001", "input": ["hi"]}),
            Some(GEM),
            &[],
        ),
        // Responses: passthrough to OpenAI itself, translated elsewhere.
        case(
            "/v1/responses",
            json!({"model": "gpt-5", "input": "hi"}),
            Some(OAI),
            &[],
        ),
        case(
            "/openai/v1/responses",
            json!({"model": "mistral-small", "input": "hi"}),
            Some(COMPAT),
            &[],
        ),
        case(
            "/v1/responses",
            json!({"model": "claude-sonnet-4-5", "input": "hi", "max_output_tokens": 16}),
            Some(CLAUDE),
            &[],
        ),
        // Anthropic Messages: passthrough to Anthropic (its two headers go along),
        // translated to OpenAI.
        case(
            "/anthropic/v1/messages?beta=true",
            anthropic_req("claude-sonnet-4-5"),
            Some(CLAUDE),
            anth,
        ),
        case("/v1/messages", anthropic_req("gpt-4o"), Some(OAI), &[]),
        case(
            "/v1/messages/count_tokens",
            json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]}),
            Some(CLAUDE),
            anth,
        ),
        case(
            "/anthropic/v1/messages/count_tokens",
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
            None,
            &[],
        ),
        // Gemini: passthrough to Gemini (streamed too), translated elsewhere.
        case(
            "/v1beta/models/gemini-2.5-flash:generateContent",
            gemini_req(),
            Some(GEM),
            &[],
        ),
        case(
            "/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            gemini_req(),
            Some(GEM),
            &[],
        ),
        case(
            "/gemini/v1/models/gpt-4o:generateContent",
            gemini_req(),
            Some(OAI),
            &[],
        ),
        case(
            "/v1beta/models/claude-sonnet-4-5:generateContent",
            gemini_req(),
            Some(CLAUDE),
            &[],
        ),
        case(
            "/v1beta/models/gemini-2.5-flash:countTokens",
            gemini_req(),
            None,
            &[],
        ),
    ]
}

#[tokio::test]
async fn only_allowlisted_headers_and_no_client_credential_reach_any_provider() {
    let mocks = [
        MockProvider::start(Profile::OpenAi).await,
        MockProvider::start(Profile::OpenAi).await,
        MockProvider::start(Profile::Anthropic).await,
        MockProvider::start(Profile::Gemini).await,
    ];
    let gw = Gateway::start(&config(), &mocks.iter().collect::<Vec<_>>()).await;
    let hostile = client_headers();
    let cases = cases();
    let mut reached = 0;
    for c in &cases {
        let before: Vec<usize> = mocks.iter().map(|m| m.requests().len()).collect();
        // The client's key in every form it may take at once: bearer, `x-api-key`,
        // `x-goog-api-key` and `?key=`.
        let sep = if c.path.contains('?') { '&' } else { '?' };
        let mut req = client()
            .post(gw.url(&format!("{}{sep}key={KEY}", c.path)))
            .bearer_auth(KEY)
            .header("x-api-key", KEY)
            .header("x-goog-api-key", KEY)
            .header("anthropic-version", "2023-06-01")
            .header("anthropic-beta", CLIENT_BETA)
            .json(&c.body);
        for (name, value) in &hostile {
            req = req.header(*name, value);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, 200, "{}: {text}", c.path);

        for (i, m) in mocks.iter().enumerate() {
            let new = &m.requests()[before[i]..];
            let want = usize::from(c.reaches == Some(i));
            assert_eq!(
                new.len(),
                want,
                "{} reached mock {i} {} times",
                c.path,
                new.len()
            );
            for up in new {
                reached += 1;
                let (auth, value) = auth_header(i);
                let mut allowed: BTreeSet<&str> = GATEWAY_HEADERS.iter().copied().collect();
                allowed.insert(auth);
                if i == CLAUDE {
                    // The provider's own version header, unless the client's went along.
                    allowed.insert("anthropic-version");
                }
                allowed.extend(c.forwarded);
                let names: BTreeSet<&str> = up.headers.keys().map(|n| n.as_str()).collect();
                let extra: Vec<&&str> = names.difference(&allowed).collect();
                assert!(
                    extra.is_empty(),
                    "{}: {extra:?} reached the provider",
                    c.path
                );
                assert_eq!(up.headers[auth], value.as_str(), "{}", c.path);
                for h in c.forwarded {
                    let sent = if *h == "anthropic-beta" {
                        CLIENT_BETA
                    } else {
                        "2023-06-01"
                    };
                    assert_eq!(up.headers[*h], sent, "{}: {h} not forwarded", c.path);
                }
                if !c.forwarded.contains(&"anthropic-beta") {
                    assert!(
                        up.headers
                            .get("anthropic-beta")
                            .is_none_or(|v| v != CLIENT_BETA),
                        "{}: the client's anthropic-beta reached a translation",
                        c.path
                    );
                }
                // Neither the client's key nor any canary anywhere in what was sent.
                let mut sent = vec![up.path.clone(), up.query.clone().unwrap_or_default()];
                sent.extend(
                    up.headers
                        .values()
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
                );
                sent.push(String::from_utf8_lossy(&up.raw).into_owned());
                for s in &sent {
                    assert!(
                        !s.contains(KEY),
                        "{}: the client's key reached the provider: {s}",
                        c.path
                    );
                    assert!(
                        !s.contains(CANARY),
                        "{}: a client header reached the provider: {s}",
                        c.path
                    );
                }
                assert!(
                    !up.query.as_deref().unwrap_or("").contains("key="),
                    "{}: {:?}",
                    c.path,
                    up.query
                );
            }
        }
    }
    // 18 routes, 16 of which reach a provider, each with 4 credential forms and 17 other
    // client headers.
    assert_eq!((cases.len(), reached), (18, 16));
    assert_eq!(hostile.len(), 17);
}

/// A raw HTTP/1.1 exchange with the gateway: the status of the reply.
async fn raw_status(gw: &Gateway, request: &str) -> u16 {
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"))
}

/// With keys configured, the `Host` (and what proxies say about it) decides nothing: a
/// valid key works, a wrong or missing one is 401, the admin token is the admin's, whatever
/// the request claims to be addressed to: a foreign name, an internal one, the loopback, an
/// absolute-form target naming another host.
#[tokio::test]
async fn no_host_header_changes_what_a_credential_is_worth() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let text = format!(
        "[server]\nadmin_token = \"{ADMIN}\"\n\
         [providers.p]\nkind = \"openai-compatible\"\nbase_url = \"{{mock0}}\"\nmodels = [\"*\"]\n\
         [[keys]]\nname = \"client\"\nkey = \"{KEY}\"\n"
    );
    let gw = Gateway::start(&text, &[&mock]).await;
    let hosts = [
        "evil.example",
        "evil.example:443",
        "localhost",
        "127.0.0.1",
        "admin.internal",
        "[::1]:8080",
        "gateway.local.",
    ];
    let mut cases = 0;
    for host in hosts {
        for (token, chat_want, admin_want) in [
            (Some(KEY), 200, 403),
            (Some("sk-wrong-key-0000000000000"), 401, 401),
            (None, 401, 401),
            (Some(ADMIN), 401, 200),
        ] {
            let send = |method: reqwest::Method, path: &str| {
                let mut r = client()
                    .request(method, gw.url(path))
                    .header("host", host)
                    .header("x-forwarded-host", host)
                    .header("forwarded", format!("host={host}"));
                if let Some(t) = token {
                    r = r.bearer_auth(t);
                }
                r
            };
            let r = send(reqwest::Method::POST, "/v1/chat/completions")
                .json(&chat_req("gpt-4o", false))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), chat_want, "{host} {token:?}");
            let r = send(reqwest::Method::GET, "/admin/api/keys")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), admin_want, "{host} {token:?}");
            cases += 2;
        }
    }
    // The absolute form: the target names another host; the Host header a third.
    let body = chat_req("gpt-4o", false).to_string();
    for (auth, want) in [
        (format!("authorization: Bearer {KEY}\r\n"), 200),
        (
            "authorization: Bearer sk-wrong-key-0000000000000\r\n".to_owned(),
            401,
        ),
        (String::new(), 401),
    ] {
        let req = format!(
            "POST http://evil.example/v1/chat/completions HTTP/1.1\r\nhost: other.example\r\n{auth}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        assert_eq!(raw_status(&gw, &req).await, want, "absolute form, {auth:?}");
        cases += 1;
    }
    assert_eq!(cases, 7 * 4 * 2 + 3);
    // Only the valid key's requests reached the provider: one per host, one absolute.
    assert_eq!(mock.calls(), 7 + 1);
}
