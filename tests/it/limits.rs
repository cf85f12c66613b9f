//! Size limits (RELIABILITY 20): bodies over the limit are refused before any provider is
//! contacted, without buffering them, and the client reads the 413 (the rest of the body is
//! drained, not reset: `pipeline::intake`); oversized request heads get 431. Python's
//! `urllib` and curl with a 64 MiB body: `overload::ordinary_clients_read_the_413_of_a_64_mib_body`.

use futures_util::stream;
use serde_json::Value;

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
