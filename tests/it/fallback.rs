//! Failover: on connect error, timeout, 429 and 5xx before the first byte; never on other
//! 4xx, and never after the first byte (RELIABILITY 15).

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::mock::{chat_body, chunk, named_sse, usage_chunk};
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

// === No double count (RELIABILITY 3) ===

const ADMIN: &str = "admin-token-for-fallback-tests-01";
const KEY: &str = "sk-fallback-key-000000000000001";

/// a (its kind given) then b, each model at $1,000 a million input tokens and $2,000 a
/// million output tokens; the key has a budget the tests read the spend of.
fn charged(a_kind: &str, store: &str, redis: &str) -> String {
    format!(
        r#"
[server]
stream_keepalive = "2s"
admin_token = "{ADMIN}"
[providers.a]
kind = "{a_kind}"
base_url = "{{mock0}}"
api_key = "${{MOCK_KEY}}"
[providers.b]
kind = "openai-compatible"
base_url = "{{mock1}}"
[[routes]]
match = {{ model = "m" }}
targets = ["a/first", "b/second"]
[routing]
retry_budget = {{ min = 1000 }}
[pricing.first]
input = 1000
output = 2000
[pricing.second]
input = 1000
output = 2000
[[keys]]
name = "k"
key = "{KEY}"
budget = {{ usd = 100, period = "daily" }}
[store]
url = "{store}"
{redis}"#
    )
}

/// A budget on the admin API by scope and name: (spent, reserved) in dollars.
async fn budget(gw: &Gateway, scope: &str, name: &str) -> (f64, f64) {
    let v: Value = serde_json::from_str(&gw.get_text("/admin/api/budgets", ADMIN).await).unwrap();
    let b = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["scope"] == scope && b["name"] == name)
        .unwrap_or_else(|| panic!("{v}"))
        .clone();
    (
        b["spent"].as_f64().unwrap(),
        b["reserved"].as_f64().unwrap(),
    )
}

/// The request's record on the admin API.
async fn record(gw: &Gateway, id: &str) -> Value {
    gw.flush_records().await;
    background_done().await;
    serde_json::from_str(&gw.get_text(&format!("/admin/api/logs/{id}"), ADMIN).await).unwrap()
}

async fn send(gw: &Gateway, path: &str, body: &Value) -> (String, String) {
    let r = client()
        .post(gw.url(path))
        .bearer_auth(KEY)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-gatehouse-provider"], "b");
    let id = r.headers()["x-gatehouse-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    (id, r.text().await.unwrap())
}

/// Anthropic's `message_start`, reporting `input` tokens.
fn message_start(input: u64) -> Value {
    json!({"type": "message_start", "message": {"id": "msg_01Cut", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-5", "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": input, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 1}}})
}

/// A case: its name, a's kind, what a answers, the client's path and body, and b's usage
/// (input, output).
type Case = (
    &'static str,
    &'static str,
    Reply,
    &'static str,
    Value,
    (u64, u64),
);

/// A provider that reported usage and then failed, before it sent any of the reply: the
/// request falls back, and its record and every budget count only what served it.
async fn usage_of_a_failed_attempt_is_not_counted(store: &str, redis: &str) {
    let chat = |stream: bool| json!({"model": "m", "stream": stream, "messages": [{"role": "user", "content": "hi"}]});
    let messages = |stream: bool| json!({"model": "m", "max_tokens": 100, "stream": stream, "messages": [{"role": "user", "content": "hi"}]});
    let cases: Vec<Case> = vec![
        (
            "anthropic message_start, then overloaded_error",
            "anthropic",
            named_sse(&[
                ("message_start", message_start(900_000)),
                ("ping", json!({"type": "ping"})),
                (
                    "error",
                    json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
                ),
            ]),
            "/v1/chat/completions",
            chat(true),
            (12, 1),
        ),
        (
            "anthropic message_start, then the connection closes",
            "anthropic",
            named_sse(&[("message_start", message_start(900_000))]),
            "/v1/chat/completions",
            chat(true),
            (12, 1),
        ),
        (
            "anthropic message_start to an Anthropic client (relayed as is), then overloaded_error",
            "anthropic",
            named_sse(&[
                ("message_start", message_start(900_000)),
                (
                    "error",
                    json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
                ),
            ]),
            "/v1/messages",
            messages(true),
            (12, 1),
        ),
        (
            "openai usage chunk, then the connection closes",
            "openai-compatible",
            Reply::sse(vec![usage_chunk(900_000, 700)]).truncate_after(1),
            "/v1/messages",
            messages(true),
            (12, 1),
        ),
        (
            "openai usage chunk to a Chat client, then the connection closes",
            "openai-compatible",
            Reply::sse(vec![usage_chunk(900_000, 700)]).truncate_after(1),
            "/v1/chat/completions",
            chat(true),
            (12, 1),
        ),
        (
            "openai reply with usage and an unreadable body",
            "openai-compatible",
            Reply {
                body: crate::support::mock::Body::Raw(
                    r#"{"usage": {"prompt_tokens": 900000, "completion_tokens": 700, "total_tokens": 900700}, "choices": [{"index": 0, "message": {"#,
                ),
                ..Reply::json(200, Value::Null)
            },
            "/v1/chat/completions",
            chat(false),
            (12, 3),
        ),
        (
            "openai reply with usage and no choices, to an Anthropic client",
            "openai-compatible",
            Reply::json(
                200,
                json!({"id": "x", "object": "chat.completion", "created": 1, "model": "first",
                    "choices": "none", "usage": {"prompt_tokens": 900000, "completion_tokens": 700, "total_tokens": 900700}}),
            ),
            "/v1/messages",
            messages(false),
            (12, 3),
        ),
    ];
    for (name, kind, reply, path, body, (input, output)) in cases {
        let a = MockProvider::start(if kind == "anthropic" {
            Profile::Anthropic
        } else {
            Profile::OpenAi
        })
        .await;
        let b = MockProvider::start(Profile::OpenAi).await;
        b.respond_with(|body| {
            if body["stream"] == true {
                Reply::stream(&["fine"])
            } else {
                Reply::chat("fine")
            }
        });
        let gw = Gateway::start(&charged(kind, store, redis), &[&a, &b]).await;
        a.push(reply);
        // The cases share one Redis prefix: each counts from what the last one left.
        let (before, _) = budget(&gw, "key", "k").await;
        let (id, text) = send(&gw, path, &body).await;
        assert!(text.contains("fine"), "{name}: {text}");
        assert_eq!((a.calls(), b.calls()), (1, 1), "{name}");
        // b's usage at $1,000 / $2,000 a million.
        let cost = (input * 1_000 + output * 2_000) as f64 / 1e6;
        let r = record(&gw, &id).await;
        assert_eq!(
            (r["provider"].as_str(), r["status"].as_str()),
            (Some("b"), Some("ok")),
            "{name}: {r}"
        );
        assert_eq!(r["tokens"]["input"], input, "{name}: {r}");
        assert_eq!(r["tokens"]["output"], output, "{name}: {r}");
        assert!(
            (r["cost_usd"].as_f64().unwrap() - cost).abs() < 1e-9,
            "{name}: {r}"
        );
        assert_eq!(r["fallback"], true, "{name}: {r}");
        assert_eq!(r["attempts"][0]["provider"], "a", "{name}: {r}");
        assert_ne!(r["attempts"][0]["outcome"], "ok", "{name}: {r}");
        assert_eq!(r["attempts"][1]["outcome"], "ok", "{name}: {r}");
        let (after, reserved) = budget(&gw, "key", "k").await;
        let spent = after - before;
        assert!(
            (spent - cost).abs() < 1e-9,
            "{name}: the key spent {spent}, not {cost}"
        );
        assert_eq!(reserved, 0.0, "{name}");
    }
}

#[tokio::test]
async fn usage_reported_by_an_attempt_that_failed_over_is_not_counted() {
    usage_of_a_failed_attempt_is_not_counted("sqlite::memory:", "").await;
}

#[tokio::test]
async fn usage_reported_by_an_attempt_that_failed_over_is_not_counted_on_redis() {
    let Some(redis) = fresh_redis().await else {
        return;
    };
    usage_of_a_failed_attempt_is_not_counted("sqlite::memory:", &redis).await;
}

/// A route that names one provider twice (two of its models): its budget is reserved once,
/// and charged once, for the model that served.
async fn a_provider_named_twice(store: &str, redis: &str) {
    let a = MockProvider::start(Profile::OpenAi).await;
    let text = charged("openai-compatible", store, redis)
        .replace(
            "api_key = \"${MOCK_KEY}\"\n",
            "api_key = \"${MOCK_KEY}\"\nbudget = { usd = 50, period = \"daily\" }\n",
        )
        .replace("\"b/second\"", "\"a/second\"");
    let gw = Gateway::start(&text, &[&a, &a]).await;
    a.push(Reply::error(503, "first is overloaded"));
    a.push(Reply::json(200, chat_body("fine", 12, 3)));
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&chat_req("m", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(r.headers()["x-gatehouse-model"], "second");
    let id = r.headers()["x-gatehouse-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let cost = (12 * 1_000 + 3 * 2_000) as f64 / 1e6;
    let rec = record(&gw, &id).await;
    assert!(
        (rec["cost_usd"].as_f64().unwrap() - cost).abs() < 1e-9,
        "{rec}"
    );
    for (scope, name) in [("provider", "a"), ("key", "k")] {
        let (spent, reserved) = budget(&gw, scope, name).await;
        assert!(
            (spent - cost).abs() < 1e-9,
            "{scope} {name} spent {spent}, not {cost}"
        );
        assert_eq!(reserved, 0.0, "{scope} {name}: nothing stays reserved");
    }
}

#[tokio::test]
async fn a_provider_named_twice_in_a_route_is_charged_once() {
    a_provider_named_twice("sqlite::memory:", "").await;
}

#[tokio::test]
async fn a_provider_named_twice_in_a_route_is_charged_once_on_postgres() {
    let Some(url) = fresh_postgres().await else {
        return;
    };
    a_provider_named_twice(&url, "").await;
}

#[tokio::test]
async fn a_provider_named_twice_in_a_route_is_charged_once_on_redis() {
    let Some(redis) = fresh_redis().await else {
        return;
    };
    a_provider_named_twice("sqlite::memory:", &redis).await;
}
