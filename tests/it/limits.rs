//! Size limits (RELIABILITY 20): bodies over the limit are refused before any provider is
//! contacted, without buffering them, and the client reads the 413 (the rest of the body is
//! drained, not reset: `pipeline::intake`); request heads over 60 KiB or 100 header fields
//! get 431, over HTTP/1 and HTTP/2, and heads at those limits pass. Python's `urllib` and
//! curl with a 64 MiB body: `overload::ordinary_clients_read_the_413_of_a_64_mib_body`.

use futures_util::stream;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

const LIMIT: u64 = 4 * 1024 * 1024;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A streamed body of `total` bytes that the test never holds in memory at once.
fn big_body(total: usize) -> reqwest::Body {
    let piece = bytes::Bytes::from(vec![b' '; 64 * 1024]);
    let n = total / piece.len();
    let head = bytes::Bytes::from_static(b"{\"model\":\"m\",\"messages\":[],\"pad\":\"");
    let chunks = std::iter::once(head)
        .chain(std::iter::repeat_n(piece, n))
        .map(Ok::<_, std::io::Error>);
    reqwest::Body::wrap_stream(stream::iter(chunks))
}

#[tokio::test]
async fn oversized_bodies_get_413_before_the_provider_without_buffering() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let cfg = one_provider("openai-compatible").replace(
        "[server]\n",
        &format!("[server]\nmax_body_bytes = {LIMIT}\n"),
    );
    let gw = Gateway::start(&cfg, &[&mock]).await;
    let c = client();
    let before = rss_kib();

    // Declared length over the limit: refused from the header alone.
    let r = c
        .post(gw.url("/v1/chat/completions"))
        .header("content-length", (LIMIT * 16).to_string())
        .body(big_body((LIMIT * 16) as usize - 35))
        .send()
        .await
        .expect("the 413 reaches the client (lingering close)");
    assert_eq!(r.status(), 413);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "payload_too_large");

    // Chunked, no declared length: refused once the limit is passed.
    let r = c
        .post(gw.url("/v1/chat/completions"))
        .body(big_body((LIMIT * 16) as usize))
        .send()
        .await
        .expect("the 413 reaches the client (lingering close)");
    assert_eq!(r.status(), 413);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "payload_too_large");
    let growth = rss_kib().saturating_sub(before);
    assert!(
        growth < 2 * LIMIT / 1024,
        "RSS grew by {growth} KiB for a {} KiB limit",
        LIMIT / 1024
    );
    assert_eq!(mock.calls(), 0, "an oversized request reached the provider");

    // Just under the limit is accepted.
    let mut req = chat_req("m", false);
    req["pad"] = Value::String(" ".repeat(LIMIT as usize - 200));
    let r = c
        .post(gw.url("/v1/chat/completions"))
        .json(&req)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn oversized_heads_get_431() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    let c = client();
    let mut many = c
        .post(gw.url("/v1/chat/completions"))
        .json(&chat_req("m", false));
    for i in 0..120 {
        many = many.header(format!("x-h-{i}"), "v");
    }
    assert_eq!(many.send().await.unwrap().status(), 431);
    let big = c
        .post(gw.url("/v1/chat/completions"))
        .header("x-big", "a".repeat(70 * 1024))
        .json(&chat_req("m", false))
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 431);
    assert_eq!(mock.calls(), 0);
    // The gateway is still fine.
    let ok = c
        .post(gw.url("/v1/chat/completions"))
        .json(&chat_req("m", false))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

/// The head limits (`config::MAX_HEAD_BYTES`, `MAX_HEADERS`).
const HEAD_LIMIT: usize = 60 * 1024;
const FIELDS_LIMIT: usize = 100;

/// An HTTP/1 chat request whose head, from its request line to its blank line, is `size`
/// bytes (a `x-pad` field takes up the rest) and holds `fields` header fields; the status
/// the gateway answered.
async fn http1_status(gw: &Gateway, size: usize, fields: usize) -> u16 {
    let body = chat_req("m", false).to_string();
    let mut head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n",
        gw.addr,
        body.len()
    );
    // Four fields so far, and `x-pad` last.
    for i in 0..fields - 5 {
        head.push_str(&format!("x-f-{i}: v\r\n"));
    }
    let rest = "x-pad: \r\n\r\n".len();
    assert!(
        head.len() + rest <= size,
        "{fields} fields do not fit {size} bytes"
    );
    head.push_str(&format!(
        "x-pad: {}\r\n\r\n",
        "a".repeat(size - head.len() - rest)
    ));
    assert_eq!(head.len(), size);
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    // A refused head may be answered, and the connection closed, before all of it is sent.
    let _ = s.write_all(head.as_bytes()).await;
    let _ = s.write_all(body.as_bytes()).await;
    let mut got = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut got)).await;
    let text = String::from_utf8_lossy(&got);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"))
}

#[tokio::test]
async fn http1_heads_past_60_kib_or_100_fields_get_431_and_heads_at_the_limits_pass() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    assert_eq!(http1_status(&gw, HEAD_LIMIT, 5).await, 200);
    assert_eq!(mock.calls(), 1);
    assert_eq!(http1_status(&gw, HEAD_LIMIT + 1, 5).await, 431);
    assert_eq!(http1_status(&gw, 8 * 1024, FIELDS_LIMIT).await, 200);
    assert_eq!(http1_status(&gw, 8 * 1024, FIELDS_LIMIT + 1).await, 431);
    assert_eq!(mock.calls(), 2, "a refused head reached the provider");
}

/// An HTTP/2 chat request (prior knowledge) whose header list, as RFC 9113 §6.5.2 counts it
/// (each field's name and value plus 32 bytes, pseudo-headers included), is `size` bytes (a
/// `x-pad` field takes up the rest) and holds `fields` header fields besides the
/// pseudo-headers; the status and body the gateway answered.
async fn http2_reply(gw: &Gateway, size: usize, fields: usize) -> (u16, String) {
    let field = |name: &str, value: &str| name.len() + value.len() + 32;
    let authority = gw.addr.to_string();
    let path = "/v1/chat/completions";
    let mut req = http::Request::post(format!("http://{authority}{path}"))
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    let mut list = field(":method", "POST")
        + field(":scheme", "http")
        + field(":authority", &authority)
        + field(":path", path)
        + field("content-type", "application/json");
    for i in 0..fields - 2 {
        let name = format!("x-f-{i}");
        list += field(&name, "v");
        req.headers_mut().insert(
            http::HeaderName::try_from(name).unwrap(),
            "v".parse().unwrap(),
        );
    }
    let pad = size - list - field("x-pad", "");
    req.headers_mut()
        .insert("x-pad", "a".repeat(pad).parse().unwrap());
    let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let (mut send, conn) = h2::client::handshake(tcp).await.unwrap();
    spawn(conn);
    let (resp, mut body_out) = send.send_request(req, false).unwrap();
    // A refused request may be reset before its body is taken.
    let _ = body_out.send_data(chat_req("m", false).to_string().into(), true);
    let resp = resp.await.unwrap();
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut text = Vec::new();
    while let Some(Ok(chunk)) = body.data().await {
        text.extend_from_slice(&chunk);
    }
    (status, String::from_utf8_lossy(&text).into_owned())
}

#[tokio::test]
async fn http2_header_lists_past_60_kib_or_100_fields_get_431_and_lists_at_the_limits_pass() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    let (status, body) = http2_reply(&gw, HEAD_LIMIT, 2).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(mock.calls(), 1);
    assert_eq!(http2_reply(&gw, HEAD_LIMIT + 1, 2).await.0, 431);
    let (status, body) = http2_reply(&gw, 8 * 1024, FIELDS_LIMIT).await;
    assert_eq!(status, 200, "{body}");
    // Past the count, the refusal is ours, in the path's schema.
    let (status, body) = http2_reply(&gw, 8 * 1024, FIELDS_LIMIT + 1).await;
    assert_eq!(status, 431);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "headers_too_large", "{v}");
    assert_eq!(mock.calls(), 2, "a refused head reached the provider");
}

#[tokio::test]
async fn multipart_bodies_are_refused_with_400() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    let boundary = "b".repeat(80);
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm\r\n--{boundary}--\r\n"
    );
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(mock.calls(), 0);
}
