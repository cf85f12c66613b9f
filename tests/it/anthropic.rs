//! Anthropic Messages in (`/v1/messages`, `/anthropic/v1/messages`), served by an
//! OpenAI-style provider.

use serde_json::{Value, json};

use crate::support::*;

fn messages_req(stream: bool) -> Value {
    json!({
        "model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": stream,
        "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "weather in Paris?"}],
        "tools": [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    })
}

async fn post(gw: &Gateway, path: &str, body: &Value) -> reqwest::Response {
    client()
        .post(gw.url(path))
        .header("x-api-key", "sk-client")
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_reply_with_a_tool_call_comes_back_as_an_anthropic_message() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    mock.push(Reply::json(200, json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "qwen",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": "Checking.",
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 9, "total_tokens": 39, "prompt_tokens_details": {"cached_tokens": 10}}
    })));
    let r = post(
        &gw,
        "/anthropic/v1/messages?beta=true",
        &messages_req(false),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-gatehouse-provider"], "p");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["type"], "message");
    assert_eq!(b["role"], "assistant");
    assert_eq!(
        b["content"][0],
        json!({"type": "text", "text": "Checking."})
    );
    assert_eq!(
        b["content"][1],
        json!({"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}})
    );
    assert_eq!(b["stop_reason"], "tool_use");
    assert_eq!(
        b["usage"],
        json!({"input_tokens": 20, "output_tokens": 9, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 10})
    );
    let up = mock.last_request();
    assert!(up.headers.get("x-api-key").is_none());
    assert_eq!(
        up.body["messages"][0],
        json!({"role": "system", "content": "be brief"})
    );
    assert_eq!(up.body["max_tokens"], 1024);
    assert_eq!(up.body["tools"][0]["function"]["name"], "get_weather");
}

/// (event name, data) pairs of an Anthropic SSE body.
fn events(body: &str) -> Vec<(String, Value)> {
    sse_frames(body)
        .iter()
        .filter(|f| f.starts_with("event: "))
        .map(|f| {
            let (name, data) = f.split_once('\n').unwrap();
            (
                name.trim_start_matches("event: ").to_owned(),
                serde_json::from_str(data.trim_start_matches("data: ")).unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_stream_is_rebuilt_as_anthropic_blocks() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    mock.push(crate::support::mock::thinking_text_tool_stream("call_9"));
    let r = post(&gw, "/v1/messages", &messages_req(true)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let ev = events(&r.text().await.unwrap());
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(ev[2].1["content_block"]["type"], "thinking");
    assert_eq!(
        ev[3].1["delta"],
        json!({"type": "thinking_delta", "thinking": "think"})
    );
    assert_eq!(ev[5].1["index"], 1);
    assert_eq!(
        ev[6].1["delta"],
        json!({"type": "text_delta", "text": "Let me "})
    );
    assert_eq!(
        ev[9].1["content_block"],
        json!({"type": "tool_use", "id": "call_9", "name": "get_weather", "input": {}})
    );
    let json_text: String = ev[10..12]
        .iter()
        .map(|(_, d)| d["delta"]["partial_json"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(json_text, "{\"city\":\"Paris\"}");
    assert_eq!(ev[12].1["index"], 2);
    assert_eq!(ev[13].1["delta"]["stop_reason"], "tool_use");
    assert_eq!(ev[13].1["usage"]["output_tokens"], 12);
    assert_eq!(ev[13].1["usage"]["input_tokens"], 40);
}

#[tokio::test]
async fn errors_use_anthropic_shapes() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(
        "[providers.p]\nkind = \"openai-compatible\"\nbase_url = \"{mock0}\"\nmodels = [\"claude-*\"]\n",
        &[&mock],
    )
    .await;
    let r = post(
        &gw,
        "/v1/messages",
        &json!({"model": "claude-x", "messages": []}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["type"], "error");
    assert_eq!(b["error"]["type"], "invalid_request_error");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens"),
        "{b}"
    );
    let r = post(
        &gw,
        "/v1/messages",
        &json!({"model": "gpt-9", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "not_found_error"
    );
    assert_eq!(mock.calls(), 0);
}

#[tokio::test]
async fn a_cut_stream_ends_with_an_error_event() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    mock.push(Reply::stream(&["partial", " more"]).truncate_after(2));
    let r = post(&gw, "/anthropic/v1/messages", &messages_req(true)).await;
    let ev = events(&r.text().await.unwrap());
    let (last, data) = ev.last().unwrap();
    assert_eq!(last, "error");
    assert_eq!(data["error"]["type"], "api_error");
    assert!(!ev.iter().any(|(n, _)| n == "message_stop"));
}

#[tokio::test]
async fn count_tokens_estimates_for_openai_style_providers_without_calling_them() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    let mut body = messages_req(false);
    let obj = body.as_object_mut().unwrap();
    obj.remove("max_tokens");
    obj.remove("stream");
    let r = post(&gw, "/anthropic/v1/messages/count_tokens?beta=true", &body).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["x-gatehouse-warnings"]
            .to_str()
            .unwrap()
            .contains("estimated with o200k_base")
    );
    let short: Value = r.json().await.unwrap();
    let short = short["input_tokens"].as_u64().unwrap();
    // system (2) + message (~4) + tool schema (~20) + framing: tens of tokens, not zero.
    assert!((20..200).contains(&short), "{short}");

    // Ten times the text costs about ten times the tokens.
    body["messages"][0]["content"] = json!("weather in Paris? ".repeat(100));
    let r = post(&gw, "/v1/messages/count_tokens", &body).await;
    let long: Value = r.json().await.unwrap();
    let long = long["input_tokens"].as_u64().unwrap();
    assert!(long > short + 300, "{short} -> {long}");
    assert_eq!(mock.calls(), 0, "an estimate never calls the provider");

    let r = post(&gw, "/v1/messages/count_tokens", &json!({"model": "m"})).await;
    assert_eq!(r.status(), 400);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["type"], "error");
}

#[tokio::test]
async fn unknown_paths_under_anthropic_get_anthropic_errors() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    let r = post(&gw, "/anthropic/v1/nothing", &json!({})).await;
    assert_eq!(r.status(), 404);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["type"], "error");
    assert_eq!(b["error"]["type"], "not_found_error");
}
