//! The Mistral adapter against a Mistral-profile mock that validates every body against
//! Mistral's published schema and enforces its quirks (9-character tool-call ids, older
//! models taking only `none`/`high` reasoning effort).

use serde_json::{Value, json};

use crate::support::mock::chunk;
use crate::support::*;

fn is_mistral_id(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 9 && s.bytes().all(|b| b.is_ascii_alphanumeric()))
}

async fn setup() -> (MockProvider, Gateway) {
    let mock = MockProvider::start(Profile::Mistral).await;
    mock.two_level_models(&["devstral-2512"]);
    let gw = Gateway::start(&one_provider("mistral"), &[&mock]).await;
    (mock, gw)
}

fn full_openai_request(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "stream": stream,
        "stream_options": {"include_usage": true},
        "messages": [
            {"role": "developer", "content": "You are terse."},
            {"role": "user", "name": "alice", "content": [
                {"type": "text", "text": "What is in this image, and what's the weather in Paris?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "high"}}
            ]},
            {"role": "assistant", "content": null, "reasoning_content": "I should call the tool.", "tool_calls": [
                {"id": "call_9b1e0c8f2a7d4e6b", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_9b1e0c8f2a7d4e6b", "content": "18C, cloudy"},
            {"role": "user", "content": "Thanks, and summarise."}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
        "tool_choice": "auto",
        "parallel_tool_calls": true,
        "temperature": 1.9,
        "top_p": 0.9,
        "max_completion_tokens": 300,
        "seed": 42,
        "user": "end-user-7",
        "logprobs": true,
        "top_logprobs": 2,
        "logit_bias": {"50256": -100},
        "reasoning_effort": "medium",
        "store": true,
        "safe_prompt": true,
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": true}}
    })
}

#[tokio::test]
async fn every_field_mistral_rejects_is_dropped_or_mapped_and_reported() {
    let (mock, gw) = setup().await;
    let r = gw.chat(&full_openai_request("devstral-2512", false)).await;
    let status = r.status();
    let warnings = r
        .headers()
        .get("x-gatehouse-warnings")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body}");

    let up = mock.last_request().body;
    for absent in [
        "user",
        "stream_options",
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "seed",
        "store",
        "max_completion_tokens",
    ] {
        assert!(up.get(absent).is_none(), "{absent} sent to mistral: {up}");
    }
    assert_eq!(up["random_seed"], 42);
    assert_eq!(up["max_tokens"], 300);
    assert_eq!(up["temperature"], 1.5);
    assert_eq!(up["safe_prompt"], true);
    assert_eq!(up["reasoning_effort"], "high");
    assert_eq!(up["messages"][0]["role"], "system");
    assert!(up["messages"][1].get("name").is_none());
    let call_id = &up["messages"][2]["tool_calls"][0]["id"];
    assert!(is_mistral_id(call_id), "{call_id}");
    assert_eq!(
        &up["messages"][3]["tool_call_id"], call_id,
        "tool result id must map like its call"
    );
    assert_eq!(up["messages"][2]["content"][0]["type"], "thinking");

    for w in [
        "reasoning_effort medium->high for mistral",
        "user dropped for mistral",
        "logprobs dropped for mistral",
        "store dropped for mistral",
        "temperature 1.9->1.5 for mistral",
        "developer role sent as system for mistral",
        "message name dropped for mistral",
    ] {
        assert!(
            warnings.contains(w),
            "missing warning `{w}` in `{warnings}`"
        );
    }

    // The same conversation next turn maps the same ids to the same values.
    let r2 = gw.chat(&full_openai_request("devstral-2512", false)).await;
    assert_eq!(r2.status(), 200);
    assert_eq!(
        &mock.last_request().body["messages"][2]["tool_calls"][0]["id"],
        call_id
    );
}

/// `random_seed` is Mistral's field, not OpenAI's: a Chat Completions client that sends it
/// still reaches Mistral with it (unless it also sent `seed`, which wins).
#[tokio::test]
async fn a_clients_own_random_seed_reaches_mistral() {
    let (mock, gw) = setup().await;
    let mut req = chat_req("mistral-future-2611", false);
    req["random_seed"] = json!(7);
    req["safe_prompt"] = json!(true);
    let r = gw.chat(&req).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-gatehouse-warnings").is_none());
    let up = mock.last_request().body;
    assert_eq!(up["random_seed"], 7);
    assert_eq!(up["safe_prompt"], true);
    req["random_seed"] = json!(-3);
    assert_eq!(gw.chat(&req).await.status(), 200);
    assert_eq!(mock.last_request().body["random_seed"], 0);
    req["seed"] = json!(11);
    assert_eq!(gw.chat(&req).await.status(), 200);
    let up = mock.last_request().body;
    assert_eq!(up["random_seed"], 11);
    assert!(up.get("seed").is_none());
}

#[tokio::test]
async fn newer_models_keep_their_effort_level() {
    let (mock, gw) = setup().await;
    let mut req = chat_req("mistral-future-2611", false);
    req["reasoning_effort"] = json!("low");
    let r = gw.chat(&req).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-gatehouse-warnings").is_none());
    assert_eq!(mock.last_request().body["reasoning_effort"], "low");
    req["reasoning_effort"] = json!("max");
    let r = gw.chat(&req).await;
    assert_eq!(
        r.headers()["x-gatehouse-warnings"],
        "reasoning_effort max->xhigh for mistral"
    );
}

#[tokio::test]
async fn the_mock_is_faithful_an_unnarrowed_body_is_refused() {
    let (mock, _gw) = setup().await;
    if !crate::support::mistral_spec::available() {
        eprintln!("notice: ../shared absent; Mistral spec checks skipped");
        return;
    }
    // Sent straight to the mock, OpenAI's form is refused the way Mistral refuses it.
    let r = client()
        .post(format!("{}/chat/completions", mock.base_url()))
        .json(&full_openai_request("devstral-2512", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let bad_id = json!({"model": "m", "messages": [{"role": "user", "content": "go"},
        {"role": "assistant", "tool_calls": [{"id": "call_1", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "done"}]});
    let r = client()
        .post(format!("{}/chat/completions", mock.base_url()))
        .json(&bad_id)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    // A user message right after tool results, or a conversation ending with system text:
    // the order Mistral's serving validator refuses.
    for messages in [
        json!([{"role": "user", "content": "go"},
            {"role": "assistant", "tool_calls": [{"id": "a1B2c3D4e", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "a1B2c3D4e", "content": "done"},
            {"role": "user", "content": "more"}]),
        json!([{"role": "user", "content": "go"}, {"role": "system", "content": "env"}]),
    ] {
        let r = client()
            .post(format!("{}/chat/completions", mock.base_url()))
            .json(&json!({"model": "m", "messages": messages}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["type"], "invalid_request_message_order", "{b}");
    }
}

#[tokio::test]
async fn mistral_streams_with_tool_calls_and_usage_in_the_last_chunk() {
    let (mock, gw) = setup().await;
    let mut last = chunk(
        json!({"tool_calls": [{"id": "D681PevKs", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}, "index": 0}]}),
        Some("tool_calls"),
    );
    last["usage"] = json!({"prompt_tokens": 70, "total_tokens": 91, "completion_tokens": 21});
    mock.push(Reply::sse(vec![
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"content": "Let me check."}), None),
        last,
    ]));
    let r = gw.chat(&full_openai_request("devstral-2512", true)).await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    let frames: Vec<Value> = sse_frames(&body)
        .iter()
        .filter_map(|f| f.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let start = frames
        .iter()
        .find(|f| f["choices"][0]["delta"]["tool_calls"][0]["id"].is_string())
        .unwrap();
    assert_eq!(
        start["choices"][0]["delta"]["tool_calls"][0]["id"],
        "D681PevKs"
    );
    assert_eq!(
        start["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    let args: String = frames
        .iter()
        .filter_map(|f| {
            f["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(args, "{\"city\": \"Paris\"}");
    let usage = frames.iter().find(|f| f.get("usage").is_some()).unwrap();
    assert_eq!(usage["usage"]["prompt_tokens"], 70);
    assert_eq!(usage["usage"]["completion_tokens"], 21);
    assert!(body.ends_with("data: [DONE]\n\n"));
    assert!(mock.last_request().body.get("stream_options").is_none());
}

#[tokio::test]
async fn mistral_embeddings_use_its_field_names() {
    let (mock, gw) = setup().await;
    let r = client()
        .post(gw.url("/v1/embeddings"))
        .json(&json!({"model": "mistral-embed", "input": ["a"], "dimensions": 256, "user": "u", "encoding_format": "float"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-gatehouse-warnings"],
        "user dropped for mistral"
    );
    let up = mock.last_request().body;
    assert_eq!(
        up,
        json!({"model": "mistral-embed", "input": ["a"], "output_dimension": 256, "encoding_format": "float"})
    );
}

#[tokio::test]
async fn unknown_content_parts_are_dropped_for_mistral_with_a_warning() {
    let (mock, gw) = setup().await;
    let req = json!({"model": "devstral-2512", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "hi"},
        {"type": "input_video", "video_url": {"url": "https://example.com/v.mp4"}}
    ]}]});
    let r = gw.chat(&req).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-gatehouse-warnings"],
        "content part input_video dropped for mistral"
    );
    assert_eq!(
        mock.last_request().body["messages"][0]["content"],
        json!([{"type": "text", "text": "hi"}])
    );
}
