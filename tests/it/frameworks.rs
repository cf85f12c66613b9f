//! Frameworks end to end: the Vercel AI SDK (`ai` with `@ai-sdk/openai`, `@ai-sdk/anthropic`
//! and `@ai-sdk/google`, tests/e2e/node/ai_sdk.mjs) through Gatehouse, `generateText` and
//! `streamText`, each served by mock providers of other schemas than the client's.
//!
//! Every case is two turns. Turn 1 asks for the weather with a `get_weather` tool: the model
//! answers with a sentence and a call of the tool, the SDK runs the tool and sends its result,
//! the model answers with text that quotes the result. Turn 2 sends turn 1's messages back
//! with a new question, and the model answers it. The script checks every step's text, tool
//! calls, finish reason and token usage against what the mock answered ([`expectation`]);
//! this file checks what reached the provider. The model the mock plays ([`play`]) reads the
//! conversation in its provider's own schema, and says in its text what it found missing, so
//! a lost tool result or a lost earlier answer shows up as a text mismatch in the script.
//!
//! The SDK is installed by `.ci/run` (`npm ci` in tests/e2e/node); without it the tests print
//! a notice and pass (they fail in CI). The Gemini mock checks every body against Google's
//! discovery document in ../shared, and only prints a notice where that is absent.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::support::mock::Recorded;
use crate::support::play;
use crate::support::*;

const MARKER: &str = "GATEHOUSE_TOOL_OK";

/// What the tool returns.
const TOOL_OUTPUT: &str = "Sunny and 21 C in Paris [GATEHOUSE_TOOL_OK]";

const PROMPT_1: &str = "What is the weather in Paris? Use the get_weather tool.";

const PROMPT_2: &str = "And tomorrow?";

/// The model's text before it calls the tool.
const PREAMBLE: &str = "Let me check the weather.";

/// The model's answer once it has the tool's result.
const ANSWER_1: &str = "The weather tool says it is sunny and 21 C in Paris (GATEHOUSE_TOOL_OK).";

/// The model's answer to the second turn.
const ANSWER_2: &str = "Tomorrow will be sunny in Paris as well.";

/// Input and output tokens the mock reports for each stage: distinct, so that a count moved
/// to the wrong step, summed twice or lost shows.
const USAGE_CALL: (u64, u64) = (101, 11);

const USAGE_ANSWER: (u64, u64) = (202, 22);

const USAGE_SECOND: (u64, u64) = (303, 33);

const TOOL: &str = "get_weather";

/// The SDK's client flavours: its provider package, and for OpenAI which API.
#[derive(Clone, Copy, Debug)]
enum Client {
    /// `openai(model)`: the Responses API, with the default `store: true`.
    OpenAiResponses,
    /// `openai.chat(model)`: Chat Completions.
    OpenAiChat,
    Anthropic,
    Google,
}

impl Client {
    fn flavour(self) -> &'static str {
        match self {
            Self::OpenAiResponses => "openai",
            Self::OpenAiChat => "openai-chat",
            Self::Anthropic => "anthropic",
            Self::Google => "google",
        }
    }

    /// The model name the client asks for.
    fn model(self) -> &'static str {
        match self {
            Self::OpenAiResponses | Self::OpenAiChat => "gpt-4.1-mini",
            Self::Anthropic => "claude-sonnet-4-5",
            Self::Google => "gemini-2.5-flash",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Generate,
    Stream,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Self::Generate => "generate",
            Self::Stream => "stream",
        }
    }
}

/// A provider the gateway translates to: its config kind, its mock, its model.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Wire {
    /// Chat Completions only (`openai-compatible`).
    OpenAi,
    Anthropic,
    Gemini,
}

impl Wire {
    fn kind(self) -> &'static str {
        match self {
            Self::OpenAi => "openai-compatible",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
        }
    }

    fn profile(self) -> Profile {
        match self {
            Self::OpenAi => Profile::OpenAi,
            Self::Anthropic => Profile::Anthropic,
            Self::Gemini => Profile::Gemini,
        }
    }

    /// The wire format the mock plays the model in.
    fn play(self) -> play::Wire {
        match self {
            Self::OpenAi => play::Wire::Chat,
            Self::Anthropic => play::Wire::Anthropic,
            Self::Gemini => play::Wire::Gemini,
        }
    }

    fn model(self) -> &'static str {
        match self {
            Self::OpenAi => "gpt-4.1-mini",
            Self::Anthropic => "claude-sonnet-4-5",
            Self::Gemini => "gemini-2.5-flash",
        }
    }
}

fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/node")
}

/// True (after a notice) when Node or the SDK is not installed; CI must have them (.ci/run).
fn skip_without_sdk() -> bool {
    let modules = node_dir().join("node_modules");
    let installed = [
        "ai",
        "@ai-sdk/openai",
        "@ai-sdk/anthropic",
        "@ai-sdk/google",
        "zod",
    ]
    .iter()
    .all(|p| modules.join(p).join("package.json").exists());
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if installed && node {
        return false;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must install Node and the Vercel AI SDK in tests/e2e/node (see .ci/run)"
    );
    eprintln!("notice: node or the Vercel AI SDK not installed in tests/e2e/node; test skipped");
    true
}

// === the model the mock plays ===

/// Where the conversation stands, as the provider's request shows it.
enum Stage {
    /// No tool result yet: call the tool.
    Call,
    /// The last message is the tool's result (serialized as the provider received it).
    Answer(String),
    /// A question after the tool's answer: the second turn.
    Second,
}

/// What the model answers at one stage.
struct Step {
    text: String,
    call: bool,
    usage: (u64, u64),
}

fn stage(wire: Wire, body: &Value) -> Stage {
    let w = wire.play();
    let messages = play::items(w, body);
    if let Some(result) = messages.last().and_then(|m| play::result_of(w, m)) {
        Stage::Answer(result)
    } else if messages.iter().any(|m| play::result_of(w, m).is_some()) {
        Stage::Second
    } else {
        Stage::Call
    }
}

/// The model: the step it answers with at this stage. Where the conversation lacks what the
/// client sent before, it says so in its text instead.
fn step(wire: Wire, body: &Value) -> Step {
    let seen = body.to_string();
    let missing = |needles: &[&str]| -> Vec<String> {
        needles
            .iter()
            .filter(|n| !seen.contains(*n))
            .map(|n| format!("{n:?}"))
            .collect()
    };
    let (text, call, usage) = match stage(wire, body) {
        Stage::Call => (PREAMBLE.to_owned(), true, USAGE_CALL),
        Stage::Answer(result) => {
            let lost = missing(&[PROMPT_1, PREAMBLE]);
            let text = if !result.contains(MARKER) {
                format!("the tool result lacks the marker: {result}")
            } else if !lost.is_empty() {
                format!("the provider did not see {}", lost.join(", "))
            } else {
                ANSWER_1.to_owned()
            };
            (text, false, USAGE_ANSWER)
        }
        Stage::Second => {
            let lost = missing(&[PROMPT_1, PREAMBLE, TOOL, MARKER, ANSWER_1, PROMPT_2]);
            let text = if lost.is_empty() {
                ANSWER_2.to_owned()
            } else {
                format!("the provider did not see {}", lost.join(", "))
            };
            (text, false, USAGE_SECOND)
        }
    };
    Step { text, call, usage }
}

/// The tool call's arguments, in the two fragments streams send them in.
const ARGS: [&str; 2] = ["{\"city\":", "\"Paris\"}"];

/// The reply of the model at this request, in the provider's wire format, streamed when the
/// request asks for a stream.
fn play(wire: Wire, path: &str, body: &Value) -> Reply {
    let s = step(wire, body);
    let id = match wire {
        Wire::OpenAi => "call_fw1",
        Wire::Anthropic | Wire::Gemini => "toolu_01FW",
    };
    let turn = play::Turn {
        text: s.text,
        call: s.call.then(|| play::Call::new(id, TOOL, &ARGS)),
        usage: s.usage,
    };
    let w = wire.play();
    play::reply(w, play::streamed(w, path, body), wire.model(), &turn)
}

// === the case ===

/// What the script must see, step by step, given the model above.
fn expectation() -> Value {
    let step = |text: &str, call: bool, (input, output): (u64, u64)| {
        json!({
            "text": text,
            "toolCalls": if call { json!([{"toolName": TOOL, "input": {"city": "Paris"}}]) } else { json!([]) },
            "finishReason": if call { "tool-calls" } else { "stop" },
            "usage": {"inputTokens": input, "outputTokens": output},
        })
    };
    json!({
        "toolOutput": TOOL_OUTPUT,
        "turns": [
            {"prompt": PROMPT_1, "steps": [step(PREAMBLE, true, USAGE_CALL), step(ANSWER_1, false, USAGE_ANSWER)]},
            {"prompt": PROMPT_2, "steps": [step(ANSWER_2, false, USAGE_SECOND)]},
        ],
    })
}

/// The gateway: one provider of the mock's kind, and a route from the client's model to it.
async fn gateway(client: Client, wire: Wire, mock: &MockProvider) -> Gateway {
    let cfg = format!(
        "{}[[routes]]\nmatch = {{ model = \"{}\" }}\ntargets = [\"p/{}\"]\n",
        one_provider(wire.kind()),
        client.model(),
        wire.model()
    );
    Gateway::start(&cfg, &[mock]).await
}

/// Run the script for `client` in `mode` through a gateway to a `wire` mock; what went wrong,
/// if anything.
async fn run(client: Client, mode: Mode, wire: Wire) -> Result<(), String> {
    let mock = MockProvider::start(wire.profile()).await;
    mock.respond_to(move |path, body| play(wire, path, body));
    let gw = gateway(client, wire, &mock).await;
    let base = gw.url("");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .arg("120")
            .arg("node")
            .arg("ai_sdk.mjs")
            .args([&base, client.flavour(), mode.name(), client.model()])
            .current_dir(node_dir())
            .env("AI_SDK_EXPECT", expectation().to_string())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let requests = mock.requests();
    let case = format!("{client:?} {} on {wire:?}", mode.name());
    if !out.status.success() || !stdout.contains("\"ok\":true") {
        return Err(format!(
            "{case}: exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}\nprovider calls:\n{}",
            out.status.code(),
            calls(&requests)
        ));
    }
    eprintln!("{case}: {stdout}");
    check_provider_calls(wire, mode, &requests)
        .map_err(|e| format!("{case}: {e}\nprovider calls:\n{}", calls(&requests)))
}

fn calls(requests: &[Recorded]) -> String {
    requests
        .iter()
        .map(|r| format!("  {} {}", r.path, r.body))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Three provider calls (the tool call, the answer, the second turn), on the provider's own
/// endpoint for the target model, streamed as the client streamed.
fn check_provider_calls(wire: Wire, mode: Mode, requests: &[Recorded]) -> Result<(), String> {
    if requests.len() != 3 {
        return Err(format!("{} provider calls, not 3", requests.len()));
    }
    for r in requests {
        let (path, streamed) = match wire {
            Wire::OpenAi => ("/v1/chat/completions".to_owned(), r.body["stream"] == true),
            Wire::Anthropic => ("/v1/messages".to_owned(), r.body["stream"] == true),
            Wire::Gemini => {
                let method = if mode == Mode::Stream {
                    "streamGenerateContent"
                } else {
                    "generateContent"
                };
                (
                    format!("/v1beta/models/{}:{method}", wire.model()),
                    r.path.contains(":streamGenerateContent"),
                )
            }
        };
        if r.path != path {
            return Err(format!("called {}, not {path}", r.path));
        }
        if wire != Wire::Gemini && r.body["model"] != wire.model() {
            return Err(format!("asked for model {}", r.body["model"]));
        }
        if streamed != (mode == Mode::Stream) {
            return Err(format!("streamed={streamed} in {} mode", mode.name()));
        }
        let tools = r.body["tools"].to_string();
        if !tools.contains(TOOL) || !tools.contains("city") {
            return Err(format!("the tool was not offered: {tools}"));
        }
    }
    Ok(())
}

/// Run `client` in `mode` on each of `wires`; fail with every case that went wrong.
async fn cases(client: Client, mode: Mode, wires: &[Wire]) {
    if skip_without_sdk() {
        return;
    }
    let mut failures = Vec::new();
    for &wire in wires {
        if let Err(e) = run(client, mode, wire).await {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test]
async fn ai_sdk_openai_responses_generate_text_on_anthropic_and_gemini() {
    cases(
        Client::OpenAiResponses,
        Mode::Generate,
        &[Wire::Anthropic, Wire::Gemini],
    )
    .await;
}

#[tokio::test]
async fn ai_sdk_openai_responses_stream_text_on_anthropic_and_gemini() {
    cases(
        Client::OpenAiResponses,
        Mode::Stream,
        &[Wire::Anthropic, Wire::Gemini],
    )
    .await;
}

#[tokio::test]
async fn ai_sdk_openai_chat_generate_text_on_anthropic_and_gemini() {
    cases(
        Client::OpenAiChat,
        Mode::Generate,
        &[Wire::Anthropic, Wire::Gemini],
    )
    .await;
}

#[tokio::test]
async fn ai_sdk_openai_chat_stream_text_on_anthropic_and_gemini() {
    cases(
        Client::OpenAiChat,
        Mode::Stream,
        &[Wire::Anthropic, Wire::Gemini],
    )
    .await;
}

#[tokio::test]
async fn ai_sdk_anthropic_generate_text_on_openai_and_gemini() {
    cases(
        Client::Anthropic,
        Mode::Generate,
        &[Wire::OpenAi, Wire::Gemini],
    )
    .await;
}

#[tokio::test]
async fn ai_sdk_anthropic_stream_text_on_openai_and_gemini() {
    cases(
        Client::Anthropic,
        Mode::Stream,
        &[Wire::OpenAi, Wire::Gemini],
    )
    .await;
}

#[tokio::test]
async fn ai_sdk_google_generate_text_on_anthropic_and_openai() {
    cases(
        Client::Google,
        Mode::Generate,
        &[Wire::Anthropic, Wire::OpenAi],
    )
    .await;
}

#[tokio::test]
async fn ai_sdk_google_stream_text_on_anthropic_and_openai() {
    cases(
        Client::Google,
        Mode::Stream,
        &[Wire::Anthropic, Wire::OpenAi],
    )
    .await;
}
