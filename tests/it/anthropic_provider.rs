//! The `anthropic` provider: Anthropic clients pass through intact (SPEC §3), OpenAI-style
//! clients are translated both ways, streamed and not.

use serde_json::{Value, json};

use crate::support::mock::{ANTHROPIC_COUNT, ANTHROPIC_MESSAGE, ANTHROPIC_STREAM};
use crate::support::*;

fn config() -> String {
    "[server]\nstream_keepalive = \"2s\"\n[providers.claude]\nkind = \"anthropic\"\nbase_url = \"{mock0}\"\napi_key = \"${MOCK_KEY}\"\ntimeouts = { connect = \"1s\", first_byte = \"5s\", idle = \"3s\" }\n[[routes]]\nmatch = { model = \"alias\" }\ntargets = [\"claude/claude-sonnet-4-5\"]\n".to_owned()
}

/// What Claude Code sends: thinking with a signature in history, cache_control, a beta
/// field the gateway does not model.
const CLAUDE_CODE_BODY: &str = r#"{"model":"alias","max_tokens":32000,"stream":false,"system":[{"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"thinking","thinking":"hmm","signature":"EqQBsig"},{"type":"text","text":"hello"}]},{"role":"user","content":[{"type":"text","text":"weather?","cache_control":{"type":"ephemeral"}}]}],"thinking":{"type":"enabled","budget_tokens":10000},"context_management":{"edits":[{"type":"clear_tool_uses_20250919"}]},"metadata":{"user_id":"user_abc"}}"#;

async fn post_anthropic(gw: &Gateway, body: String) -> reqwest::Response {
    client()
        .post(gw.url("/anthropic/v1/messages?beta=true"))
        .header("x-api-key", "sk-client-key")
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "context-management-2025-06-27")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn anthropic_clients_pass_through_intact_apart_from_the_model() {
    let mock = MockProvider::start(Profile::Anthropic).await;
    let gw = Gateway::start(&config(), &[&mock]).await;
    let r = post_anthropic(&gw, CLAUDE_CODE_BODY.to_owned()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-gatehouse-provider"], "claude");
    assert_eq!(r.text().await.unwrap(), ANTHROPIC_MESSAGE, "reply changed");

    let up = mock.last_request();
    assert_eq!(up.path, "/v1/messages");
    assert_eq!(
        std::str::from_utf8(&up.raw).unwrap(),
        CLAUDE_CODE_BODY.replace(r#""model":"alias""#, r#""model":"claude-sonnet-4-5""#)
    );
    assert_eq!(up.headers["x-api-key"], "sk-provider-secret-0000");
    assert_eq!(up.headers["anthropic-version"], "2023-06-01");
    assert_eq!(
        up.headers["anthropic-beta"],
        "context-management-2025-06-27"
    );
    assert!(up.headers.get("authorization").is_none());
}

#[tokio::test]
async fn an_anthropic_stream_is_relayed_event_for_event() {
    let mock = MockProvider::start(Profile::Anthropic).await;
    let gw = Gateway::start(&config(), &[&mock]).await;
    let body = CLAUDE_CODE_BODY.replace(r#""stream":false"#, r#""stream":true"#);
    let r = post_anthropic(&gw, body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let text = r.text().await.unwrap();
    assert_eq!(
        text, ANTHROPIC_STREAM,
        "the provider's events, byte for byte"
    );
}

#[tokio::test]
async fn openai_clients_are_translated_to_messages_and_back() {
    let mock = MockProvider::start(Profile::Anthropic).await;
    let gw = Gateway::start(&config(), &[&mock]).await;
    let r = gw
        .chat(&json!({"model": "alias", "max_tokens": 100, "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["object"], "chat.completion");
    assert_eq!(b["choices"][0]["message"]["content"], "Hello from Claude");
    assert_eq!(b["choices"][0]["finish_reason"], "stop");
    // OpenAI counts cached tokens inside prompt_tokens.
    assert_eq!(b["usage"]["prompt_tokens"], 25);
    assert_eq!(b["usage"]["prompt_tokens_details"]["cached_tokens"], 5);
    assert_eq!(b["usage"]["completion_tokens"], 4);

    let up = mock.last_request().body;
    assert_eq!(up["model"], "claude-sonnet-4-5");
    assert_eq!(up["max_tokens"], 100);
    assert_eq!(up["system"], "be brief", "{up}");
    assert_eq!(up["messages"], json!([{"role": "user", "content": "hi"}]));
}

#[tokio::test]
async fn an_openai_stream_is_rebuilt_from_anthropic_events() {
    let mock = MockProvider::start(Profile::Anthropic).await;
    let gw = Gateway::start(&config(), &[&mock]).await;
    let r = gw
        .chat(&json!({"model": "alias", "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "weather in Paris?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]}))
        .await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let frames = sse_frames(&text);
    assert_eq!(
        frames.last().map(String::as_str),
        Some("data: [DONE]"),
        "{text}"
    );
    let chunks: Vec<Value> = frames
        .iter()
        .filter_map(|f| f.strip_prefix("data: {"))
        .map(|f| serde_json::from_str(&format!("{{{f}")).unwrap())
        .collect();
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Let me look.");
    let args: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"city": "Paris"})
    );
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "tool_calls")
    );
    let usage = chunks.iter().find(|c| c["usage"].is_object()).unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], 42);
    assert_eq!(usage["usage"]["prompt_tokens"], 25);
}

#[tokio::test]
async fn anthropic_errors_keep_their_status_and_message_and_overload_falls_back() {
    let mock = MockProvider::start(Profile::Anthropic).await;
    let gw = Gateway::start(&config(), &[&mock]).await;
    // max_tokens missing upstream would be the provider's 400: here the client's own 400 body.
    mock.push(Reply::json(
        400,
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": "messages.1: bad turn"}}),
    ));
    let r = post_anthropic(&gw, CLAUDE_CODE_BODY.to_owned()).await;
    assert_eq!(r.status(), 400);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["type"], "error");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("messages.1: bad turn"),
        "{b}"
    );

    // 529 overloaded: retryable, so the next target serves.
    let backup = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(
        "[providers.claude]\nkind = \"anthropic\"\nbase_url = \"{mock0}\"\napi_key = \"k\"\n[providers.backup]\nkind = \"openai-compatible\"\nbase_url = \"{mock1}\"\n[[routes]]\nmatch = { model = \"alias\" }\ntargets = [\"claude/claude-sonnet-4-5\", \"backup/qwen\"]\n",
        &[&mock, &backup],
    )
    .await;
    mock.push(Reply::json(
        529,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    ));
    let r = post_anthropic(&gw, CLAUDE_CODE_BODY.to_owned()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-gatehouse-provider"], "backup");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["type"], "message");
    assert_eq!(b["content"][0]["text"], "Hello from the mock");
}

#[tokio::test]
async fn count_tokens_asks_the_anthropic_provider_itself() {
    let mock = MockProvider::start(Profile::Anthropic).await;
    let gw = Gateway::start(&config(), &[&mock]).await;
    let r = client()
        .post(gw.url("/anthropic/v1/messages/count_tokens?beta=true"))
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "token-counting-2024-11-01")
        .json(&json!({"model": "alias", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers().get("x-gatehouse-warnings").is_none(),
        "not an estimate"
    );
    let b: Value = r.json().await.unwrap();
    assert_eq!(b, json!({"input_tokens": ANTHROPIC_COUNT}));
    let up = mock.last_request();
    assert_eq!(up.path, "/v1/messages/count_tokens");
    assert_eq!(up.body["model"], "claude-sonnet-4-5");
    assert!(up.body.get("max_tokens").is_none());
    assert_eq!(up.headers["anthropic-beta"], "token-counting-2024-11-01");

    // The provider unreachable: the estimate answers, and says so.
    let gw = Gateway::start(
        "[providers.claude]\nkind = \"anthropic\"\nbase_url = \"http://127.0.0.1:9\"\napi_key = \"k\"\n",
        &[],
    )
    .await;
    let r = client()
        .post(gw.url("/v1/messages/count_tokens"))
        .json(&json!({"model": "claude-opus-4-1", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let w = r.headers()["x-gatehouse-warnings"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        w.contains("claude could not count") && w.contains("estimated"),
        "{w}"
    );
    let b: Value = r.json().await.unwrap();
    assert!(b["input_tokens"].as_u64().unwrap() > 0);
}
