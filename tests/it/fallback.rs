//! Failover: on connect error, timeout, 429 and 5xx before the first byte; never on other
//! 4xx, and never after the first byte (RELIABILITY 15).

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::mock::chunk;
use crate::support::*;

const TWO: &str = r#"
[server]
stream_keepalive = "2s"
[providers.a]
kind = "openai-compatible"
base_url = "{mock0}"
timeouts = { connect = "500ms", first_byte = "500ms", idle = "2s" }
[providers.b]
kind = "openai-compatible"
base_url = "{mock1}"
timeouts = { connect = "500ms", first_byte = "2s", idle = "2s" }
[[routes]]
match = { model = "m" }
targets = ["a/first", "b/second"]
# Every case here fails over; the default retry budget (3 + 20 %) would stop them.
[routing]
retry_budget = { min = 1000 }
"#;

async fn setup() -> (MockProvider, MockProvider, Gateway) {
    let a = MockProvider::start(Profile::OpenAi).await;
    let b = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(TWO, &[&a, &b]).await;
    (a, b, gw)
}

async fn post(gw: &Gateway, stream: bool) -> reqwest::Response {
    gw.chat(&chat_req("m", stream)).await
}

#[tokio::test]
async fn retryable_failures_fall_back_to_the_next_target() {
    let (a, b, gw) = setup().await;
    let cases: Vec<(&str, Reply)> = vec![
        ("503", Reply::error(503, "overloaded")),
        ("500", Reply::error(500, "boom")),
        (
            "502 with an HTML body",
            Reply {
                body: crate::support::mock::Body::Raw("<html>Bad Gateway</html>"),
                ..Reply::error(502, "")
            },
        ),
        (
            "429",
            Reply::error(429, "slow down").header("retry-after", "7"),
        ),
        (
            "first-byte timeout",
            Reply::chat("late").delay(Duration::from_secs(2)),
        ),
    ];
    for (i, (name, reply)) in cases.into_iter().enumerate() {
        a.push(reply);
        let r = if name == "first-byte timeout" {
            // a's first-byte timeout (500 ms) fires as the clock moves.
            skip_once_received(&a, Duration::from_millis(600), post(&gw, false)).await
        } else {
            post(&gw, false).await
        };
        assert_eq!(r.status(), 200, "{name}");
        assert_eq!(r.headers()["x-gatehouse-provider"], "b", "{name}");
        assert_eq!(r.headers()["x-gatehouse-model"], "second", "{name}");
        assert_eq!(a.calls(), i + 1, "{name}");
        assert_eq!(b.calls(), i + 1, "{name}");
        assert_eq!(b.last_request().body["model"], "second");
    }
}

#[tokio::test]
async fn client_errors_are_never_retried() {
    let (a, b, gw) = setup().await;
    for status in [400u16, 401, 403, 404, 422] {
        a.push(Reply::error(status, "no"));
        let r = post(&gw, false).await;
        assert!(
            r.status().is_client_error() || r.status() == 502,
            "{status} -> {}",
            r.status()
        );
        assert_eq!(b.calls(), 0, "{status} was retried on the next target");
    }
    assert_eq!(a.calls(), 5);
}

#[tokio::test]
async fn unreachable_provider_falls_back() {
    let b = MockProvider::start(Profile::OpenAi).await;
    // A port nobody listens on: bind and drop.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let cfg = TWO.replace("{mock0}", &format!("http://{dead}/v1"));
    let gw = Gateway::start(&cfg, &[&b, &b]).await;
    let r = post(&gw, true).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-gatehouse-provider"], "b");
    assert!(r.text().await.unwrap().ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn stream_failing_before_its_first_event_falls_back() {
    let (a, b, gw) = setup().await;
    a.push(Reply::sse(vec![
        json!({"error": {"message": "overloaded", "type": "server_error"}}),
    ]));
    let r = post(&gw, true).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-gatehouse-provider"], "b");
    let body = r.text().await.unwrap();
    assert!(
        body.contains("Hello from the mock") || body.contains("[DONE]"),
        "{body}"
    );
    assert_eq!((a.calls(), b.calls()), (1, 1));
}

#[tokio::test]
async fn no_fallback_after_the_first_byte() {
    let (a, b, gw) = setup().await;
    a.push(
        Reply::sse(vec![
            chunk(json!({"role": "assistant", "content": "x"}), None),
            chunk(json!({"content": "y"}), None),
        ])
        .truncate_after(2),
    );
    let r = post(&gw, true).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-gatehouse-provider"], "a");
    let body = r.text().await.unwrap();
    assert!(body.contains("\"error\""), "{body}");
    assert_eq!(
        b.calls(),
        0,
        "fallback after the first byte reached the client"
    );
}

#[tokio::test]
async fn all_targets_failing_reports_each_reason() {
    let (a, b, gw) = setup().await;
    a.push(Reply::error(503, "a is down"));
    b.push(Reply::error(502, "b is down"));
    let r = post(&gw, false).await;
    assert_eq!(r.status(), 502);
    let body: Value = r.json().await.unwrap();
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("a is down") && msg.contains("b is down"),
        "{msg}"
    );
    assert_eq!(body["error"]["type"], "api_error");
}

#[tokio::test]
async fn rate_limited_everywhere_is_429_with_retry_after() {
    let (a, b, gw) = setup().await;
    a.push(Reply::error(429, "a busy"));
    b.push(Reply::error(429, "b busy").header("retry-after", "12"));
    let r = post(&gw, false).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "12");
}
