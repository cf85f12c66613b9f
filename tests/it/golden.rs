//! Golden fixtures of translation (issue #5): two rich requests (a Chat Completions one with
//! an image, a tool loop, JSON-schema output and reasoning effort; Claude Code's shape of an
//! Anthropic one with signed thinking and a tool result) encoded for every provider kind,
//! compared byte for byte (as pretty JSON) with `tests/golden/<request>/<provider>.json`, and
//! each checked against that provider's published contract in ../shared/specs where there is
//! one. A change of translation shows up as a diff of these files.
//!
//! `GATEHOUSE_BLESS=1 cargo nextest run golden` rewrites the files after a deliberate change.

use std::path::PathBuf;
use std::sync::Arc;

use gatehouse::codec::{Warnings, anthropic, openai_chat};
use gatehouse::providers::adapter_for;
use gatehouse::schema::ChatRequest;
use serde_json::{Value, json};

use crate::support::*;

const KINDS: [(&str, &str); 7] = [
    ("openai", "gpt-5"),
    ("openai-compatible", "qwen2.5-coder"),
    ("mistral", "devstral-2512"),
    ("anthropic", "claude-sonnet-4-5"),
    ("gemini", "gemini-3-pro"),
    ("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("azure-openai", "prod-gpt5"),
];

fn chat_request() -> ChatRequest {
    let body = json!({
        "model": "alias", "max_completion_tokens": 2000, "temperature": 0.4, "stop": ["END"],
        "reasoning_effort": "high", "user": "u-42",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this picture, and the weather there?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="}}]},
            {"role": "assistant", "content": "A beach in Nice.", "tool_calls": [
                {"id": "call_w1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Nice\"}"}}]},
            {"role": "tool", "tool_call_id": "call_w1", "content": "sunny, 24°C"}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
        "tool_choice": "auto",
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "strict": true,
            "schema": {"type": "object", "properties": {"scene": {"type": "string"}, "weather": {"type": "string"}},
                       "required": ["scene", "weather"], "additionalProperties": false}}}
    });
    let w = serde_json::from_value(body).unwrap();
    openai_chat::decode_request(w).unwrap()
}

fn anthropic_request() -> ChatRequest {
    let body = json!({
        "model": "alias", "max_tokens": 32000,
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        "thinking": {"type": "enabled", "budget_tokens": 8000},
        "messages": [
            {"role": "user", "content": "List the files."},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "I should run ls.", "signature": "EqQBsig"},
                {"type": "tool_use", "id": "toolu_01A", "name": "Bash", "input": {"command": "ls"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "a.txt\nb.txt"},
                {"type": "text", "text": "Which is bigger?"}]}
        ],
        "tools": [{"name": "Bash", "description": "Run a command",
            "input_schema": {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
                             "properties": {"command": {"type": "string"}}, "required": ["command"]}}],
        "metadata": {"user_id": "user_abc"}
    });
    let w = serde_json::from_value(body).unwrap();
    anthropic::decode_request(w).unwrap()
}

fn config() -> gatehouse::config::Config {
    let mut text = String::new();
    for (kind, _) in KINDS {
        text.push_str(&format!(
            "[providers.{}]\nkind = \"{kind}\"\nbase_url = \"https://example.test\"\napi_key = \"k\"\n",
            kind.replace('-', "_")
        ));
    }
    gatehouse::config::parse("golden.toml", &text, &test_env()).unwrap()
}

/// Where the provider's contract is published: the violations of `body`.
fn contract(kind: &str, body: &Value) -> Vec<String> {
    match kind {
        "openai" | "openai-compatible" | "azure-openai" => {
            openai_spec::validate("CreateChatCompletionRequest", body).unwrap_or_default()
        }
        "mistral" => mistral_spec::validate("ChatCompletionRequest", body).unwrap_or_default(),
        "gemini" => gemini_spec::check("GenerateContentRequest", body),
        "bedrock" => bedrock_spec::check("ConverseRequest", body),
        // Anthropic's bodies are checked against its spec in spec_conformance.rs.
        _ => Vec::new(),
    }
}

fn golden(request: &str, req: &ChatRequest) {
    let cfg = config();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(request);
    let bless = std::env::var_os("GATEHOUSE_BLESS").is_some();
    let mut failures = Vec::new();
    for (p, (kind, model)) in cfg.providers.iter().zip(KINDS) {
        let adapter = adapter_for(&Arc::new((**p).clone()));
        let mut w = Warnings::default();
        let up = adapter.build_chat(req, model, &mut w).unwrap();
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        let doc = json!({"path": up.path, "warnings": w.iter().collect::<Vec<_>>(), "body": body});
        let text = serde_json::to_string_pretty(&doc).unwrap() + "\n";
        let file = dir.join(format!("{kind}.json"));
        let violations = contract(kind, &body);
        if !violations.is_empty() {
            failures.push(format!(
                "{kind}: violates its published contract: {violations:#?}"
            ));
        }
        match std::fs::read_to_string(&file) {
            Ok(want) if want == text => {}
            _ if bless => {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&file, &text).unwrap();
            }
            Ok(want) => failures.push(format!(
                "{kind}: differs from {}:\n--- want\n{want}\n--- got\n{text}",
                file.display()
            )),
            Err(_) => failures.push(format!(
                "{kind}: {} is missing (GATEHOUSE_BLESS=1 writes it)",
                file.display()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_chat_completions_request_for_every_provider() {
    golden("chat_completions", &chat_request());
}

#[test]
fn claude_codes_request_for_every_provider() {
    golden("claude_code", &anthropic_request());
}
