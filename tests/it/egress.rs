//! Where the gateway may connect (RELIABILITY 28, SSRF): a provider, webhook or collector
//! name is resolved once per connection, every address checked, and the connection made to
//! exactly what was checked, so a name whose answer changes (DNS rebinding) reaches a
//! private or metadata address only if the config allows it. Redirects are not followed.
//! The resolver is scripted: `rebind.test` exists in no DNS, so a request that reaches a
//! server through it went to the address the script answered.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use gatehouse::egress::{Dns, Policy, Range, Resolver};
use gatehouse::providers::exec;
use gatehouse::providers::pool::{Pool, SendError};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::*;

/// Answers each lookup with the next of its answers (the last one repeats), and counts.
struct Script {
    answers: Mutex<Vec<Vec<IpAddr>>>,
    lookups: AtomicUsize,
}

impl Script {
    fn new(answers: &[&[&str]]) -> Arc<Self> {
        Arc::new(Self {
            answers: Mutex::new(
                answers
                    .iter()
                    .map(|a| a.iter().map(|s| s.parse().unwrap()).collect())
                    .collect(),
            ),
            lookups: AtomicUsize::new(0),
        })
    }

    fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }
}

impl Dns for Script {
    fn lookup(
        &self,
        _host: &str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>
    {
        let n = self.lookups.fetch_add(1, Ordering::SeqCst);
        let answers = self.answers.lock().unwrap();
        let answer = answers[n.min(answers.len() - 1)].clone();
        Box::pin(async move { Ok(answer) })
    }
}

/// A server on 127.0.0.1 that answers each request with `reply` and closes the connection
/// (so the next request needs a new one); its port and a count of accepted connections.
async fn server(reply: &'static str) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let acc = accepted.clone();
    spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            acc.fetch_add(1, Ordering::SeqCst);
            spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // The head and a 2-byte body.
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n")
                        && buf.len() >= end + 6
                    {
                        break;
                    }
                }
                let _ = sock.write_all(reply.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (port, accepted)
}

const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";

fn pool(base: &str, policy: Policy, dns: Arc<Script>) -> Pool {
    let resolver = Resolver::new(Arc::new(policy), dns);
    Pool::new(base, exec::connector_with(Duration::from_secs(2), resolver))
}

async fn post(pool: &Pool) -> Result<(u16, Bytes), SendError> {
    let req = http::Request::post(pool.target("/x").unwrap())
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let resp = pool.send(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Ok((status, body))
}

fn refused(r: Result<(u16, Bytes), SendError>) -> Range {
    match r {
        Err(SendError::Refused(r)) => r.range,
        Err(e) => panic!("not refused by the policy: {e:?}"),
        Ok((status, _)) => panic!("connected ({status})"),
    }
}

#[tokio::test]
async fn a_rebinding_name_reaches_only_the_address_checked_for_each_connection() {
    let (port, accepted) = server(OK).await;
    // Allowed, then metadata, then allowed, then private: what a rebinding name answers.
    // Loopback 127.0.0.2 is allowed too but nothing listens there: a connection that
    // resolved again after the check would land on it and fail.
    let dns = Script::new(&[
        &["127.0.0.1"],
        &["169.254.169.254"],
        &["127.0.0.1"],
        &["10.0.0.7"],
        &["::ffff:169.254.169.254"],
        &["127.0.0.2"],
    ]);
    let p = pool(
        &format!("http://rebind.test:{port}/v1"),
        Policy::default(),
        dns.clone(),
    );
    let (status, body) = post(&p).await.unwrap();
    assert_eq!((status, &body[..]), (200, &b"ok"[..]));
    assert_eq!(dns.lookups(), 1, "one lookup for one connection");
    assert_eq!(refused(post(&p).await), Range::Metadata);
    assert_eq!(dns.lookups(), 2);
    assert_eq!(post(&p).await.unwrap().0, 200);
    assert_eq!(refused(post(&p).await), Range::Private);
    assert_eq!(refused(post(&p).await), Range::Metadata);
    assert_eq!(dns.lookups(), 5);
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "only the connections to the checked loopback answers were made"
    );
    // The last answer (127.0.0.2) is allowed: the connection goes there, where nothing
    // listens, and fails to connect; it is not refused, and it never reaches 127.0.0.1.
    assert!(matches!(post(&p).await, Err(SendError::Connect { .. })));
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_name_first_answering_private_then_allowed_connects_only_once_allowed() {
    let (port, accepted) = server(OK).await;
    let dns = Script::new(&[
        &["192.168.0.10"],
        &["127.0.0.1", "10.1.1.1"],
        &["127.0.0.1"],
    ]);
    let p = pool(
        &format!("http://rebind.test:{port}"),
        Policy::default(),
        dns.clone(),
    );
    assert_eq!(refused(post(&p).await), Range::Private);
    // One refused address in an answer refuses the whole answer.
    assert_eq!(refused(post(&p).await), Range::Private);
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
    assert_eq!(post(&p).await.unwrap().0, 200);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_allow_list_lets_a_name_or_network_through() {
    // A name entry allows that name's private answers, not another name's.
    let mut by_name = Policy::default();
    by_name.allow("rebind.test").unwrap();
    let dns = Script::new(&[&["10.0.0.7"]]);
    let resolver = Resolver::new(Arc::new(by_name), dns.clone());
    assert!(resolver.resolve("rebind.test").await.is_ok());
    assert!(resolver.resolve("other.test").await.is_err());
    assert_eq!(dns.lookups(), 2);
    // A network entry allows its addresses under any name, and no others.
    let mut by_net = Policy::default();
    by_net.allow("10.0.0.0/8").unwrap();
    let resolver = Resolver::new(
        Arc::new(by_net),
        Script::new(&[&["10.2.3.4"], &["172.16.0.1"]]),
    );
    let addrs = resolver.resolve("anything.test").await.unwrap();
    assert_eq!(addrs[0].ip().to_string(), "10.2.3.4");
    assert!(resolver.resolve("anything.test").await.is_err());
}

#[tokio::test]
async fn an_address_written_as_the_host_is_refused_without_a_lookup() {
    let dns = Script::new(&[&["127.0.0.1"]]);
    for (base, range) in [
        ("http://169.254.169.254/latest", Range::Metadata),
        ("http://[::ffff:169.254.169.254]", Range::Metadata),
        ("http://[::ffff:a9fe:a9fe]:80", Range::Metadata),
        ("http://10.0.0.1:8000", Range::Private),
        ("http://0.0.0.0:8000", Range::Unspecified),
        ("https://[fe80::1]", Range::LinkLocal),
        ("http://[fd00:ec2::254]", Range::Metadata),
    ] {
        let p = pool(base, Policy::default(), dns.clone());
        assert_eq!(refused(post(&p).await), range, "{base}");
    }
    assert_eq!(dns.lookups(), 0);
}

#[tokio::test]
async fn redirects_are_handed_back_not_followed() {
    let (target_port, target_accepted) = server(OK).await;
    let redirect: &'static str = Box::leak(
        format!(
            "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:{target_port}/x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        )
        .into_boxed_str(),
    );
    let (port, _) = server(redirect).await;
    // The provider pool.
    let p = pool(
        &format!("http://127.0.0.1:{port}"),
        Policy::default(),
        Script::new(&[&[]]),
    );
    assert_eq!(post(&p).await.unwrap().0, 302);
    // The client of the webhook and the trace exporter.
    let client = exec::client(Duration::from_secs(2), &Arc::default());
    let resp = client
        .request(
            http::Request::post(format!("http://127.0.0.1:{port}/hook"))
                .body(Full::new(Bytes::from_static(b"{}")))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        target_accepted.load(Ordering::SeqCst),
        0,
        "a redirect was followed"
    );
}

#[tokio::test]
async fn the_webhook_client_refuses_what_the_policy_refuses() {
    let client = exec::client(Duration::from_secs(2), &Arc::default());
    let err = client
        .request(
            http::Request::post("http://169.254.169.254/latest/meta-data")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap_err();
    let refused = gatehouse::egress::refused_in(&err).expect("refused by the policy");
    assert_eq!(refused.range, Range::Metadata);
}

/// Swap the config `text` into `gw` as a reload would, without the load's checks (so a
/// provider the policy would refuse at load is tried at run time).
async fn swap_in(gw: &Gateway, text: &str) {
    let cfg = gatehouse::config::parse("t.toml", text, &test_env()).unwrap();
    let attempt = gatehouse::state::reload::ReloadAttempt {
        at: 0,
        trigger: "test",
        ok: true,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    gw.state.swap_config(cfg, "test", &attempt).await;
}

/// A gateway whose provider `r` is at `rebind.test` (the scripted resolver's name) on the
/// mock's port.
async fn rebinding_gateway(mock: &MockProvider, dns: Arc<Script>, server: &str) -> Gateway {
    let gw = Gateway::with_openai(mock).await;
    assert!(gw.state.backends().set_dns(dns));
    let port = mock.addr.port();
    let text = with_mocks(
        &format!(
            "[server]\n{server}\n[providers.r]\nkind = \"openai-compatible\"\nbase_url = \"http://rebind.test:{port}/v1\"\nmodels = [\"*\"]\ntimeouts = {{ connect = \"1s\", first_byte = \"5s\", idle = \"3s\" }}\n"
        ),
        &[],
    );
    swap_in(&gw, &text).await;
    gw
}

#[tokio::test]
async fn a_refused_provider_address_is_a_503_in_the_callers_schema_naming_the_setting() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let dns = Script::new(&[&["10.0.0.7"]]);
    let gw = rebinding_gateway(&mock, dns.clone(), "").await;
    // OpenAI's schema.
    let r = gw.chat(&chat_req("m", false)).await;
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    let msg = body["error"]["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("server.allowed_private_upstreams"), "{body}");
    assert!(msg.contains("a private address"), "{body}");
    assert!(
        !msg.contains("10.0.0.7") && !msg.contains("rebind.test"),
        "{body}"
    );
    // Anthropic's.
    let r = client()
        .post(gw.url("/v1/messages"))
        .json(&json!({"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "error", "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("server.allowed_private_upstreams"), "{body}");
    assert_eq!(mock.calls(), 0);
    assert!(dns.lookups() >= 2);
}

#[tokio::test]
async fn an_allowed_or_loopback_answer_reaches_the_provider_at_the_checked_address() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    // `rebind.test` is in no DNS: the request reaches the mock only through the scripted
    // answer, which the policy checked (with an allow list configured, loopback still passes).
    let dns = Script::new(&[&["127.0.0.1"]]);
    let gw = rebinding_gateway(
        &mock,
        dns.clone(),
        "allowed_private_upstreams = [\"10.0.0.0/8\"]",
    )
    .await;
    let r = gw.chat(&chat_req("m", false)).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(mock.calls(), 1);
    assert_eq!(dns.lookups(), 1);
}

// === at load ===

fn load(text: &str) -> Result<gatehouse::config::Config, Vec<String>> {
    gatehouse::config::parse("g.toml", text, &test_env())
        .map_err(|errs| errs.iter().map(ToString::to_string).collect())
}

fn provider_at(url: &str) -> String {
    format!("[providers.p]\nkind = \"openai-compatible\"\nbase_url = \"{url}\"\n")
}

#[test]
fn a_provider_address_in_a_refused_range_fails_the_load_in_every_form() {
    for (url, what) in [
        ("http://169.254.169.254/latest", "a cloud metadata address"),
        ("http://2852039166/", "a cloud metadata address"),
        ("http://0xa9fea9fe/", "a cloud metadata address"),
        ("http://0251.0376.0251.0376/", "a cloud metadata address"),
        ("http://169.254.43518/", "a cloud metadata address"),
        (
            "http://[::ffff:169.254.169.254]/",
            "a cloud metadata address",
        ),
        (
            "http://[::ffff:a9fe:a9fe]:8080/",
            "a cloud metadata address",
        ),
        ("http://[fd00:ec2::254]/", "a cloud metadata address"),
        (
            "http://metadata.google.internal/v1",
            "a cloud metadata address name",
        ),
        ("http://169.254.1.1:8000/v1", "a link-local address"),
        ("http://[fe80::1]:8000/v1", "a link-local address"),
        ("http://10.0.0.1:8000/v1", "a private address"),
        ("http://167772161:8000/v1", "a private address"),
        ("http://172.16.5.4/v1", "a private address"),
        ("http://192.168.1.20:11434", "a private address"),
        ("http://[fd12:3456::1]/v1", "a private address"),
        ("http://[::ffff:10.0.0.1]/v1", "a private address"),
        ("http://100.64.0.1/v1", "a shared (CGNAT) address"),
        ("http://0.0.0.0:8000/v1", "an unspecified address"),
        ("http://[::]:8000/v1", "an unspecified address"),
    ] {
        let errs = load(&provider_at(url)).expect_err(url);
        assert_eq!(errs.len(), 1, "{url}: {errs:?}");
        let e = &errs[0];
        assert!(e.starts_with("g.toml:3:12: invalid base_url"), "{url}: {e}");
        assert!(e.contains(what), "{url}: {e}");
        assert!(e.contains("server.allowed_private_upstreams"), "{url}: {e}");
    }
}

#[test]
fn loopback_and_public_provider_urls_load_as_before() {
    for url in [
        "http://127.0.0.1:8081/v1",
        "http://127.1.2.3:8081/v1",
        "http://localhost:11434/v1",
        "http://[::1]:8000/v1",
        "http://2130706433:8080/v1",
        "https://api.example.com/v1",
        "https://8.8.8.8/v1",
        "http://vllm.internal:8000/v1",
    ] {
        assert!(load(&provider_at(url)).is_ok(), "{url}");
    }
}

#[test]
fn the_allow_list_admits_private_addresses_and_names_at_load() {
    let text = format!(
        "[server]\nallowed_private_upstreams = [\"10.0.0.0/8\", \"fd00::/8\", \"metadata.google.internal\"]\n{}[providers.q]\nkind = \"openai-compatible\"\nbase_url = \"http://[fd12::1]:8000\"\n[providers.m]\nkind = \"openai-compatible\"\nbase_url = \"http://metadata.google.internal\"\n[alerts]\nwebhook = \"http://10.9.9.9/hook\"\n[traces]\nendpoint = \"http://10.9.9.10:4318/v1/traces\"\n",
        provider_at("http://10.0.0.1:8000/v1")
    );
    let cfg = load(&text).unwrap();
    assert_ne!(*cfg.server.egress, Policy::default());
    // Not listed: still refused.
    let text = "[server]\nallowed_private_upstreams = [\"10.0.0.0/8\"]\n".to_owned()
        + &provider_at("http://192.168.0.2/v1");
    assert!(load(&text).unwrap_err()[0].contains("a private address"));
    let errs = load("[server]\nallowed_private_upstreams = [\"10.0.0.0/33\", \"http://x/\"]\n")
        .unwrap_err();
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].starts_with("g.toml:2:30: invalid server.allowed_private_upstreams entry"));
}

#[test]
fn webhook_and_trace_endpoints_are_held_to_the_same_policy() {
    let errs = load(
        "[alerts]\nwebhook = \"http://169.254.169.254/hook\"\n[traces]\nendpoint = \"http://[::ffff:10.0.0.3]:4318/v1/traces\"\n",
    )
    .unwrap_err();
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs[0].starts_with(
            "g.toml:2:11: invalid alerts.webhook: 169.254.169.254 is a cloud metadata address"
        ),
        "{}",
        errs[0]
    );
    assert!(
        errs[1].starts_with("g.toml:4:12: invalid traces.endpoint:"),
        "{}",
        errs[1]
    );
    assert!(errs[1].contains("a private address"), "{}", errs[1]);
    assert!(load("[alerts]\nwebhook = \"http://127.0.0.1:9/hook\"\n[traces]\nendpoint = \"http://localhost:4318/v1/traces\"\n").is_ok());
}

#[test]
fn credentials_queries_fragments_and_odd_hosts_in_outbound_urls_fail_the_load() {
    for url in [
        "http://user:pw@api.example.com/v1",
        "http://api.example.com@169.254.169.254/v1",
        "http://api.example.com/v1?x=1",
        "http://api.example.com/v1#frag",
        "http://evil.example#@169.254.169.254/",
        "http://169.254.169.254#@api.example.com/",
        "http://%31%36%39.254.169.254/",
        // A backslash, written for TOML.
        "http://169.254.169.254\\\\@api.example.com/",
        "ftp://api.example.com/",
        "//api.example.com/v1",
    ] {
        let errs = load(&provider_at(url)).expect_err(url);
        assert!(errs[0].contains("invalid base_url"), "{url}: {errs:?}");
    }
    // Values that go into a built URL: Bedrock's region, Azure's api-version.
    let errs = load("[providers.b]\nkind = \"bedrock\"\nregion = \"us-east-1.evil.example/#\"\n")
        .unwrap_err();
    assert!(
        errs.iter().any(|e| e.contains("invalid region")),
        "{errs:?}"
    );
    let errs = load("[providers.a]\nkind = \"azure-openai\"\nbase_url = \"https://x.openai.azure.com\"\napi_version = \"2024-10-21&x=1\"\n")
        .unwrap_err();
    assert!(
        errs.iter().any(|e| e.contains("invalid api_version")),
        "{errs:?}"
    );
}

// === the loop guard (RELIABILITY 18) with the policy in front ===

#[tokio::test]
async fn loopback_is_allowed_and_a_provider_pointing_at_the_gateway_is_still_caught() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    let port = gw.addr.port();
    // At load: each form of our own address is found, whatever the policy.
    for url in [
        format!("http://127.0.0.1:{port}/v1"),
        format!("http://localhost:{port}/v1"),
        format!("http://2130706433:{port}/v1"),
    ] {
        let cfg = load(&provider_at(&url)).unwrap();
        let loops = gatehouse::routing::loopguard::self_pointing(&cfg, gw.addr).await;
        assert_eq!(loops.len(), 1, "{url}");
    }
    let other = load(&provider_at(&format!("http://127.0.0.1:{}/v1", port ^ 1))).unwrap();
    assert!(
        gatehouse::routing::loopguard::self_pointing(&other, gw.addr)
            .await
            .is_empty()
    );
    // At run time (a config swapped in without the load check): the policy lets the
    // loopback connection through, and the hop header stops the second pass with 508.
    let text = with_mocks(
        &format!(
            "[providers.me]\nkind = \"openai-compatible\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\nmodels = [\"*\"]\n"
        ),
        &[],
    );
    swap_in(&gw, &text).await;
    let r = tokio::time::timeout(Duration::from_secs(10), gw.chat(&chat_req("m", false)))
        .await
        .expect("a loop was answered within 10 s");
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    assert_ne!(status, 200, "{body}");
    assert!(
        body.contains("already passed through this gateway"),
        "{status} {body}"
    );
    assert_eq!(mock.calls(), 0);
}

#[tokio::test]
async fn url_fields_in_a_request_body_do_not_choose_where_the_gateway_connects() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    let mut body = chat_req("m", false);
    for field in ["api_base", "base_url", "baseURL", "endpoint"] {
        body[field] = json!("http://169.254.169.254/latest/meta-data");
    }
    let r = gw.chat(&body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        mock.calls(),
        1,
        "the request went to the configured provider"
    );
}
