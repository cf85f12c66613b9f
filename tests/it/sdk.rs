//! End to end with the official `openai`, `anthropic` and `google-genai` Python SDKs
//! (tests/e2e/*.py). CI installs them (.ci/run); elsewhere, without them, the tests print a
//! notice and pass.

use std::process::Command;

use serde_json::json;

use crate::support::mock::chunk;
use crate::support::*;

fn sdk_available(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// True (after a notice) when the SDK is missing; CI must have it (see .ci/run).
fn skip_without_sdk(module: &str) -> bool {
    if sdk_available(module) {
        return false;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must have the {module} SDK (see .ci/run)"
    );
    eprintln!("notice: python3 with the `{module}` package not found; SDK test skipped");
    true
}

/// Run a script from tests/e2e against `base_url`; panics with its output when it fails.
async fn run_script(name: &str, base_url: String) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e")
        .join(name);
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .arg(base_url)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("all checks passed"), "{stdout}");
}

#[tokio::test]
async fn the_openai_python_sdk_works_through_the_gateway() {
    if skip_without_sdk("openai") {
        return;
    }
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    mock.push(Reply::chat("Hello from the mock"));
    mock.push(Reply::chat("Hello from the mock"));
    mock.push(Reply::stream(&["Hel", "lo"]));
    mock.push(Reply::sse(vec![
        chunk(json!({"role": "assistant", "content": null}), None),
        chunk(json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}), None),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}), None),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}), None),
        chunk(json!({}), Some("tool_calls")),
    ]));
    mock.push(Reply::json(400, json!({"error": {"message": "This model's maximum context length is 8192 tokens", "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}})));
    mock.push(Reply::stream(&["cut", "short"]).truncate_after(2));
    run_script("openai_sdk.py", gw.url("/v1")).await;
}

#[tokio::test]
async fn the_openai_python_sdk_responses_api_works_through_the_gateway() {
    if skip_without_sdk("openai") {
        return;
    }
    let mock = MockProvider::start(Profile::OpenAi).await;
    // A Chat-Completions-only provider: every call is translated.
    let gw = Gateway::start(&one_provider("openai-compatible"), &[&mock]).await;
    mock.push(Reply::chat("Hello from the mock"));
    mock.push(Reply::stream(&["Hel", "lo"]));
    mock.push(crate::support::mock::thinking_text_tool_stream("call_1"));
    mock.push(Reply::json(
        200,
        crate::support::mock::chat_body("{\"city\":\"Paris\"}", 5, 5),
    ));
    mock.push(Reply::stream(&["cut", "short"]).truncate_after(2));
    run_script("openai_responses.py", gw.url("/v1")).await;
    let sent = mock.requests();
    assert_eq!(sent.len(), 5);
    assert_eq!(
        sent[1].body["messages"].as_array().map(Vec::len),
        Some(3),
        "the stream continued the first response: {}",
        sent[1].body
    );
    assert_eq!(
        sent[3].body["response_format"]["json_schema"]["name"],
        "place"
    );
}

#[tokio::test]
async fn the_google_genai_python_sdk_works_through_the_gateway() {
    if skip_without_sdk("google.genai") {
        return;
    }
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&one_provider("openai-compatible"), &[&mock]).await;
    mock.push(Reply::chat("Hello from the mock"));
    mock.push(Reply::stream(&["Hel", "lo"]));
    mock.push(Reply::json(
        200,
        json!({"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}}),
    ));
    mock.push(Reply::json(400, json!({"error": {"message": "This model's maximum context length is 8192 tokens", "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}})));
    run_script("google_genai.py", gw.url("/gemini")).await;
    let sent = mock.requests();
    assert_eq!(sent.len(), 4, "count_tokens never reaches the provider");
    assert_eq!(
        sent[2].body["tools"][0]["function"]["parameters"],
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    );
}

#[tokio::test]
async fn the_anthropic_python_sdk_works_through_the_gateway_on_an_openai_style_provider() {
    if skip_without_sdk("anthropic") {
        return;
    }
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    mock.push(Reply::chat("Hello from the mock"));
    mock.push(crate::support::mock::thinking_text_tool_stream("call_9"));
    mock.push(Reply::json(
        400,
        json!({"error": {"message": "prompt is too long", "type": "invalid_request_error"}}),
    ));
    // The SDK appends /v1/messages to the base URL, as Claude Code does with ANTHROPIC_BASE_URL.
    run_script("anthropic_sdk.py", gw.url("/anthropic")).await;
}

#[tokio::test]
async fn the_openai_python_sdk_works_on_an_anthropic_provider() {
    if skip_without_sdk("openai") {
        return;
    }
    let mock = MockProvider::start(Profile::Anthropic).await;
    let gw = Gateway::start(&one_provider("anthropic"), &[&mock]).await;
    // The first two calls get the mock's default Anthropic message and stream.
    mock.respond_with(|b| {
        if b["messages"].as_array().is_some_and(|m| m.len() == 1) && b.get("tools").is_none() && b["max_tokens"] == 4096 {
            Reply::json(400, json!({"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long: 210000 tokens > 200000 maximum"}}))
        } else if b["stream"] == true {
            Reply {
                body: crate::support::mock::Body::SseText(crate::support::mock::ANTHROPIC_STREAM.to_owned()),
                ..Reply::json(200, serde_json::Value::Null)
            }
        } else {
            Reply {
                body: crate::support::mock::Body::Raw(crate::support::mock::ANTHROPIC_MESSAGE),
                ..Reply::json(200, serde_json::Value::Null)
            }
        }
    });
    run_script("openai_sdk_on_anthropic.py", gw.url("/v1")).await;
}
