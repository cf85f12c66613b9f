//! End to end with the official `openai`, `anthropic` and `google-genai` Python SDKs
//! (tests/e2e/*.py). CI installs them (.ci/run); elsewhere, without them, the tests print a
//! notice and pass.
//!
//! The scripted tests first, each SDK's wider surface on one provider; then
//! tests/e2e/sdk_on_kind.py, each SDK (OpenAI Chat Completions and Responses, Anthropic,
//! google-genai) on every provider kind's strict mock (`support::kinds`; one test per SDK
//! and kind): a plain reply and a streamed tool call, the mock playing the model in its own
//! wire format (`support::play`). The Responses API passes through on kind `openai`, and
//! so do Anthropic's SDK on `anthropic` and Google's on `gemini`.

use std::process::Command;

use serde_json::{Value, json};

use crate::support::kinds::{self, *};
use crate::support::mock::{Recorded, chunk};
use crate::support::play::{self, Call, Turn, Wire};
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

// === every SDK on every provider kind ===

/// The Python SDKs `sdk_on_kind.py` drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sdk {
    OpenAiChat,
    OpenAiResponses,
    Anthropic,
    GoogleGenai,
}

impl Sdk {
    fn arg(self) -> &'static str {
        match self {
            Self::OpenAiChat => "openai-chat",
            Self::OpenAiResponses => "openai-responses",
            Self::Anthropic => "anthropic",
            Self::GoogleGenai => "google-genai",
        }
    }

    fn module(self) -> &'static str {
        match self {
            Self::OpenAiChat | Self::OpenAiResponses => "openai",
            Self::Anthropic => "anthropic",
            Self::GoogleGenai => "google.genai",
        }
    }

    /// The model the SDK asks for (routed to the kind's model).
    fn model(self) -> &'static str {
        match self {
            Self::OpenAiChat | Self::OpenAiResponses => "gpt-4.1-mini",
            Self::Anthropic => "claude-sonnet-4-5",
            Self::GoogleGenai => "gemini-2.5-flash",
        }
    }

    /// The wire format a provider of kind `k` speaks with the SDK's requests.
    fn wire(self, k: &Kind) -> Wire {
        match k.profile {
            Profile::OpenAi if k.kind == "openai" && self == Self::OpenAiResponses => {
                Wire::Responses
            }
            Profile::OpenAi | Profile::Azure | Profile::Mistral => Wire::Chat,
            Profile::Anthropic => Wire::Anthropic,
            Profile::Gemini => Wire::Gemini,
            Profile::Bedrock => Wire::Bedrock,
        }
    }
}

/// The model: offered tools, it calls `get_weather` for Paris (its arguments in two
/// fragments); otherwise it says the script's TEXT with the script's USAGE.
fn sdk_model(wire: Wire, k: &Kind, path: &str, body: &Value) -> Reply {
    let turn = if play::offers_tools(wire, body) {
        let mut call = Call::new(k.call_id, "get_weather", &["{\"city\":", "\"Paris\"}"]);
        if wire == Wire::Gemini {
            call = call.signed("c2lnbmF0dXJlLXNkaw==");
        }
        Turn {
            text: String::new(),
            call: Some(call),
            usage: (20, 5),
        }
    } else {
        Turn {
            text: "Hello from the mock".to_owned(),
            call: None,
            usage: (12, 3),
        }
    };
    play::reply(wire, play::streamed(wire, path, body), k.model, &turn)
}

fn sdk_calls(requests: &[Recorded]) -> String {
    requests
        .iter()
        .map(|r| format!("  {} {}", r.path, r.body))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Run `sdk_on_kind.py` for `sdk` through a gateway to a mock of kind `k`: the script's
/// checks pass, and its two provider calls went to the kind's endpoint for its model, the
/// second streamed and offering the tool.
async fn sdk_on_kind(sdk: Sdk, k: Kind) {
    if skip_without_sdk(sdk.module()) {
        return;
    }
    let wire = sdk.wire(&k);
    let mock = kinds::mock(&k).await;
    mock.respond_to(move |path, body| sdk_model(wire, &k, path, body));
    let gw = Gateway::start(&kinds::config(&k, sdk.model()), &[&mock]).await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/sdk_on_kind.py");
    let base = gw.url("");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .arg("120")
            .arg("python3")
            .arg(script)
            .args([sdk.arg(), &base, sdk.model()])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let case = format!("{} SDK on {} ({})", sdk.arg(), k.kind, k.model);
    let requests = mock.requests();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("all checks passed"),
        "{case}: exit {:?}\nstdout:\n{stdout}\nstderr:\n{}\nprovider calls:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr),
        sdk_calls(&requests)
    );
    assert_eq!(requests.len(), 2, "{case}:\n{}", sdk_calls(&requests));
    for (i, r) in requests.iter().enumerate() {
        let streamed = play::streamed(wire, &r.path, &r.body);
        assert_eq!(streamed, i == 1, "{case}: {}", sdk_calls(&requests));
        assert_eq!(
            r.path,
            expected_path(wire, &k, streamed),
            "{case}: {}",
            sdk_calls(&requests)
        );
        if matches!(wire, Wire::Chat | Wire::Anthropic | Wire::Responses)
            && k.profile != Profile::Azure
        {
            assert_eq!(r.body["model"], k.model, "{case}: {}", r.body);
        }
        assert_eq!(
            play::offers_tools(wire, &r.body),
            i == 1,
            "{case}: {}",
            r.body
        );
    }
}

/// One test per SDK and provider kind, so that a failure names both.
macro_rules! sdk_matrix {
    ($($(#[$attr:meta])* $name:ident: $sdk:ident on $kind:ident;)*) => {
        $(
            #[tokio::test]
            $(#[$attr])*
            async fn $name() {
                sdk_on_kind(Sdk::$sdk, $kind).await;
            }
        )*
    };
}

sdk_matrix! {
    python_openai_chat_sdk_on_openai: OpenAiChat on OPENAI;
    python_openai_chat_sdk_on_azure_openai: OpenAiChat on AZURE;
    python_openai_chat_sdk_on_mistral: OpenAiChat on MISTRAL;
    python_openai_chat_sdk_on_anthropic: OpenAiChat on ANTHROPIC;
    python_openai_chat_sdk_on_gemini: OpenAiChat on GEMINI;
    python_openai_chat_sdk_on_bedrock: OpenAiChat on BEDROCK;
    python_openai_chat_sdk_on_openai_compatible: OpenAiChat on OPENAI_COMPATIBLE;
    python_openai_responses_sdk_on_openai: OpenAiResponses on OPENAI;
    python_openai_responses_sdk_on_azure_openai: OpenAiResponses on AZURE;
    python_openai_responses_sdk_on_mistral: OpenAiResponses on MISTRAL;
    python_openai_responses_sdk_on_anthropic: OpenAiResponses on ANTHROPIC;
    python_openai_responses_sdk_on_gemini: OpenAiResponses on GEMINI;
    python_openai_responses_sdk_on_bedrock: OpenAiResponses on BEDROCK;
    python_openai_responses_sdk_on_openai_compatible: OpenAiResponses on OPENAI_COMPATIBLE;
    python_anthropic_sdk_on_openai: Anthropic on OPENAI;
    python_anthropic_sdk_on_azure_openai: Anthropic on AZURE;
    python_anthropic_sdk_on_mistral: Anthropic on MISTRAL;
    python_anthropic_sdk_on_anthropic: Anthropic on ANTHROPIC;
    python_anthropic_sdk_on_gemini: Anthropic on GEMINI;
    python_anthropic_sdk_on_bedrock: Anthropic on BEDROCK;
    python_anthropic_sdk_on_openai_compatible: Anthropic on OPENAI_COMPATIBLE;
    python_google_genai_sdk_on_openai: GoogleGenai on OPENAI;
    python_google_genai_sdk_on_azure_openai: GoogleGenai on AZURE;
    python_google_genai_sdk_on_mistral: GoogleGenai on MISTRAL;
    python_google_genai_sdk_on_anthropic: GoogleGenai on ANTHROPIC;
    python_google_genai_sdk_on_gemini: GoogleGenai on GEMINI;
    python_google_genai_sdk_on_bedrock: GoogleGenai on BEDROCK;
    python_google_genai_sdk_on_openai_compatible: GoogleGenai on OPENAI_COMPATIBLE;
}
