//! Frameworks end to end: the Vercel AI SDK (`ai` with `@ai-sdk/openai`, `@ai-sdk/anthropic`
//! and `@ai-sdk/google`, tests/e2e/node/ai_sdk.mjs) through Gatehouse, `generateText` and
//! `streamText`, each client flavour in each mode on every provider kind's strict mock
//! (`support::kinds`; one test per flavour, mode and kind, named after all three), the
//! same-schema pairs among them: `@ai-sdk/anthropic` on `anthropic` and `@ai-sdk/google` on
//! `gemini` pass through, and so does `@ai-sdk/openai`'s Responses API on `openai`, whose
//! mock answers the Responses API there.
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

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::support::kinds::{self, *};
use crate::support::mock::Recorded;
use crate::support::play::{self, Wire};
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

/// The wire format a provider of kind `k` speaks with the client's requests: the Responses
/// API passes through to OpenAI's own; every other pair by the provider's schema.
fn wire(client: Client, k: &Kind) -> Wire {
    match k.profile {
        Profile::OpenAi if k.kind == "openai" && matches!(client, Client::OpenAiResponses) => {
            Wire::Responses
        }
        Profile::OpenAi | Profile::Azure | Profile::Mistral => Wire::Chat,
        Profile::Anthropic => Wire::Anthropic,
        Profile::Gemini => Wire::Gemini,
        Profile::Bedrock => Wire::Bedrock,
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

fn stage(w: Wire, body: &Value) -> Stage {
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

/// The output items OpenAI stored, by id: what the Responses API's `item_reference`s in
/// later requests stand for (the SDK stores its responses by default).
type Stored = Arc<Mutex<HashMap<String, Value>>>;

/// `body` with each `item_reference` in its input replaced by the stored item, as OpenAI
/// reads it; an unknown reference stays as it is (and the model then misses its text).
fn resolve(stored: &Stored, body: &Value) -> Value {
    let mut body = body.clone();
    if let Some(input) = body["input"].as_array_mut() {
        let stored = stored.lock().unwrap();
        for item in input.iter_mut() {
            if item["type"] == "item_reference"
                && let Some(found) = item["id"].as_str().and_then(|id| stored.get(id))
            {
                *item = found.clone();
            }
        }
    }
    body
}

/// The reply of the model at this request, in the provider's wire format, streamed when the
/// request asks for a stream; a call has an id of the kind's shape (Gemini's is signed).
/// On the Responses API the model reads stored items where the request refers to them, and
/// its output is stored.
fn play(wire: Wire, k: &Kind, stored: &Stored, path: &str, body: &Value) -> Reply {
    let body = &resolve(stored, body);
    let s = step(wire, body);
    let call = s.call.then(|| {
        let call = play::Call::new(k.call_id, TOOL, &ARGS);
        if wire == Wire::Gemini {
            call.signed("c2lnbmF0dXJlLWZ3")
        } else {
            call
        }
    });
    let turn = play::Turn {
        text: s.text,
        call,
        usage: s.usage,
    };
    if wire == Wire::Responses {
        let mut stored = stored.lock().unwrap();
        for item in play::response_items(&turn) {
            stored.insert(item["id"].as_str().unwrap_or_default().to_owned(), item);
        }
    }
    play::reply(wire, play::streamed(wire, path, body), k.model, &turn)
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

/// Run the script for `client` in `mode` through a gateway to a mock of kind `k`, whose
/// route sends the client's model to the kind's; what went wrong, if anything.
async fn run(client: Client, mode: Mode, k: Kind) -> Result<(), String> {
    let wire = wire(client, &k);
    let mock = kinds::mock(&k).await;
    let stored = Stored::default();
    mock.respond_to(move |path, body| play(wire, &k, &stored, path, body));
    let gw = Gateway::start(&kinds::config(&k, client.model()), &[&mock]).await;
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
    let case = format!(
        "{client:?} ({}) {} on {} ({})",
        client.flavour(),
        mode.name(),
        k.kind,
        k.model
    );
    if !out.status.success() || !stdout.contains("\"ok\":true") {
        return Err(format!(
            "{case}: exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}\nprovider calls:\n{}",
            out.status.code(),
            calls(&requests)
        ));
    }
    eprintln!("{case}: {stdout}");
    check_provider_calls(wire, &k, mode, &requests)
        .map_err(|e| format!("{case}: {e}\nprovider calls:\n{}", calls(&requests)))
}

fn calls(requests: &[Recorded]) -> String {
    requests
        .iter()
        .map(|r| format!("  {} {}", r.path, r.body))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Three provider calls (the tool call, the answer, the second turn), on the kind's own
/// endpoint for its model, streamed as the client streamed, each offering the tool.
fn check_provider_calls(
    wire: Wire,
    k: &Kind,
    mode: Mode,
    requests: &[Recorded],
) -> Result<(), String> {
    if requests.len() != 3 {
        return Err(format!("{} provider calls, not 3", requests.len()));
    }
    for r in requests {
        let streamed = play::streamed(wire, &r.path, &r.body);
        let path = expected_path(wire, k, streamed);
        if r.path != path {
            return Err(format!("called {}, not {path}", r.path));
        }
        if matches!(wire, Wire::Chat | Wire::Anthropic | Wire::Responses)
            && k.profile != Profile::Azure
            && r.body["model"] != k.model
        {
            return Err(format!("asked for model {}", r.body["model"]));
        }
        if streamed != (mode == Mode::Stream) {
            return Err(format!("streamed={streamed} in {} mode", mode.name()));
        }
        let tools = if wire == Wire::Bedrock {
            &r.body["toolConfig"]["tools"]
        } else {
            &r.body["tools"]
        };
        let tools = tools.to_string();
        if !tools.contains(TOOL) || !tools.contains("city") {
            return Err(format!("the tool was not offered: {tools}"));
        }
    }
    Ok(())
}

/// One test per client flavour, mode and provider kind, so that nextest runs them side by
/// side and a failure names all three.
macro_rules! matrix {
    ($($(#[$attr:meta])* $name:ident: $client:ident $mode:ident on $kind:ident;)*) => {
        $(
            #[tokio::test]
            $(#[$attr])*
            async fn $name() {
                if skip_without_sdk() {
                    return;
                }
                if let Err(e) = run(Client::$client, Mode::$mode, $kind).await {
                    panic!("{e}");
                }
            }
        )*
    };
}

matrix! {
    ai_sdk_openai_responses_generate_text_on_openai: OpenAiResponses Generate on OPENAI;
    ai_sdk_openai_responses_generate_text_on_azure_openai: OpenAiResponses Generate on AZURE;
    ai_sdk_openai_responses_generate_text_on_mistral: OpenAiResponses Generate on MISTRAL;
    ai_sdk_openai_responses_generate_text_on_anthropic: OpenAiResponses Generate on ANTHROPIC;
    ai_sdk_openai_responses_generate_text_on_gemini: OpenAiResponses Generate on GEMINI;
    ai_sdk_openai_responses_generate_text_on_bedrock: OpenAiResponses Generate on BEDROCK;
    ai_sdk_openai_responses_generate_text_on_openai_compatible: OpenAiResponses Generate on OPENAI_COMPATIBLE;
    ai_sdk_openai_responses_stream_text_on_openai: OpenAiResponses Stream on OPENAI;
    ai_sdk_openai_responses_stream_text_on_azure_openai: OpenAiResponses Stream on AZURE;
    ai_sdk_openai_responses_stream_text_on_mistral: OpenAiResponses Stream on MISTRAL;
    ai_sdk_openai_responses_stream_text_on_anthropic: OpenAiResponses Stream on ANTHROPIC;
    ai_sdk_openai_responses_stream_text_on_gemini: OpenAiResponses Stream on GEMINI;
    ai_sdk_openai_responses_stream_text_on_bedrock: OpenAiResponses Stream on BEDROCK;
    ai_sdk_openai_responses_stream_text_on_openai_compatible: OpenAiResponses Stream on OPENAI_COMPATIBLE;
    ai_sdk_openai_chat_generate_text_on_openai: OpenAiChat Generate on OPENAI;
    ai_sdk_openai_chat_generate_text_on_azure_openai: OpenAiChat Generate on AZURE;
    ai_sdk_openai_chat_generate_text_on_mistral: OpenAiChat Generate on MISTRAL;
    ai_sdk_openai_chat_generate_text_on_anthropic: OpenAiChat Generate on ANTHROPIC;
    ai_sdk_openai_chat_generate_text_on_gemini: OpenAiChat Generate on GEMINI;
    ai_sdk_openai_chat_generate_text_on_bedrock: OpenAiChat Generate on BEDROCK;
    ai_sdk_openai_chat_generate_text_on_openai_compatible: OpenAiChat Generate on OPENAI_COMPATIBLE;
    ai_sdk_openai_chat_stream_text_on_openai: OpenAiChat Stream on OPENAI;
    ai_sdk_openai_chat_stream_text_on_azure_openai: OpenAiChat Stream on AZURE;
    ai_sdk_openai_chat_stream_text_on_mistral: OpenAiChat Stream on MISTRAL;
    ai_sdk_openai_chat_stream_text_on_anthropic: OpenAiChat Stream on ANTHROPIC;
    ai_sdk_openai_chat_stream_text_on_gemini: OpenAiChat Stream on GEMINI;
    ai_sdk_openai_chat_stream_text_on_bedrock: OpenAiChat Stream on BEDROCK;
    ai_sdk_openai_chat_stream_text_on_openai_compatible: OpenAiChat Stream on OPENAI_COMPATIBLE;
    ai_sdk_anthropic_generate_text_on_openai: Anthropic Generate on OPENAI;
    ai_sdk_anthropic_generate_text_on_azure_openai: Anthropic Generate on AZURE;
    ai_sdk_anthropic_generate_text_on_mistral: Anthropic Generate on MISTRAL;
    ai_sdk_anthropic_generate_text_on_anthropic: Anthropic Generate on ANTHROPIC;
    ai_sdk_anthropic_generate_text_on_gemini: Anthropic Generate on GEMINI;
    ai_sdk_anthropic_generate_text_on_bedrock: Anthropic Generate on BEDROCK;
    ai_sdk_anthropic_generate_text_on_openai_compatible: Anthropic Generate on OPENAI_COMPATIBLE;
    ai_sdk_anthropic_stream_text_on_openai: Anthropic Stream on OPENAI;
    ai_sdk_anthropic_stream_text_on_azure_openai: Anthropic Stream on AZURE;
    ai_sdk_anthropic_stream_text_on_mistral: Anthropic Stream on MISTRAL;
    ai_sdk_anthropic_stream_text_on_anthropic: Anthropic Stream on ANTHROPIC;
    ai_sdk_anthropic_stream_text_on_gemini: Anthropic Stream on GEMINI;
    ai_sdk_anthropic_stream_text_on_bedrock: Anthropic Stream on BEDROCK;
    ai_sdk_anthropic_stream_text_on_openai_compatible: Anthropic Stream on OPENAI_COMPATIBLE;
    ai_sdk_google_generate_text_on_openai: Google Generate on OPENAI;
    ai_sdk_google_generate_text_on_azure_openai: Google Generate on AZURE;
    ai_sdk_google_generate_text_on_mistral: Google Generate on MISTRAL;
    ai_sdk_google_generate_text_on_anthropic: Google Generate on ANTHROPIC;
    ai_sdk_google_generate_text_on_gemini: Google Generate on GEMINI;
    ai_sdk_google_generate_text_on_bedrock: Google Generate on BEDROCK;
    ai_sdk_google_generate_text_on_openai_compatible: Google Generate on OPENAI_COMPATIBLE;
    ai_sdk_google_stream_text_on_openai: Google Stream on OPENAI;
    ai_sdk_google_stream_text_on_azure_openai: Google Stream on AZURE;
    ai_sdk_google_stream_text_on_mistral: Google Stream on MISTRAL;
    ai_sdk_google_stream_text_on_anthropic: Google Stream on ANTHROPIC;
    ai_sdk_google_stream_text_on_gemini: Google Stream on GEMINI;
    ai_sdk_google_stream_text_on_bedrock: Google Stream on BEDROCK;
    ai_sdk_google_stream_text_on_openai_compatible: Google Stream on OPENAI_COMPATIBLE;
}
