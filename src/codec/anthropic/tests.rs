use serde_json::{Value, json};

use super::*;
use crate::codec::Warnings;
use crate::codec::openai_chat;
use crate::schema::*;

fn decode(v: Value) -> Result<ChatRequest, crate::error::GatewayError> {
    decode_request(serde_json::from_value(v).unwrap())
}

fn claude_code_request() -> Value {
    json!({
        "model": "claude-opus-5-5",
        "max_tokens": 128000,
        "stream": true,
        "system": [
            {"type": "text", "text": "You are Claude Code."},
            {"type": "text", "text": "Project context...", "cache_control": {"type": "ephemeral"}}
        ],
        "messages": [
            {"role": "user", "content": "List the files"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "I will run ls.", "signature": "sig-abc"},
                {"type": "text", "text": "Running ls."},
                {"type": "tool_use", "id": "toolu_01A", "name": "Bash", "input": {"command": "ls"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "a.txt\nb.txt", "is_error": false},
                {"type": "text", "text": "Now summarise."}
            ]},
            {"role": "system", "content": "Be brief from now on."},
            {"role": "user", "content": [{"type": "text", "text": "ok?"}]}
        ],
        "tools": [{
            "name": "Bash", "description": "Run a shell command", "defer_loading": true,
            "input_schema": {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
                             "properties": {"command": {"type": "string"}}, "required": ["command"]}
        }],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
        "thinking": {"type": "adaptive", "display": "omitted"},
        "output_config": {"effort": "medium"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "metadata": {"user_id": "{\"device_id\":\"d\",\"session_id\":\"s\"}"}
    })
}

#[test]
fn claude_code_request_decodes_completely() {
    let r = decode(claude_code_request()).unwrap();
    let roles: Vec<Role> = r.messages.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        [
            Role::System,
            Role::User,
            Role::Assistant,
            Role::User,
            Role::System,
            Role::User
        ]
    );
    match &r.messages[0].parts[1] {
        Part::Text(t) => assert_eq!(t.cache_control, Some(json!({"type": "ephemeral"}))),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        r.messages[2].parts[0],
        Part::Reasoning {
            text: "I will run ls.".into(),
            signature: Some("sig-abc".into())
        }
    );
    assert_eq!(
        r.messages[2].parts[2],
        Part::ToolCall(ToolCall {
            id: "toolu_01A".into(),
            name: "Bash".into(),
            arguments: "{\"command\":\"ls\"}".into()
        })
    );
    match &r.messages[3].parts[0] {
        Part::ToolResult(t) => {
            assert_eq!(t.call_id, "toolu_01A");
            assert_eq!(t.content, vec![Part::text("a.txt\nb.txt")]);
            assert!(!t.is_error);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.max_output_tokens, Some(128000));
    assert_eq!(r.tool_choice, Some(ToolChoice::Auto));
    assert_eq!(r.parallel_tool_calls, Some(false));
    assert_eq!(
        r.reasoning,
        Some(Reasoning {
            effort: Some(ReasoningEffort::Medium),
            budget_tokens: None,
            include_thoughts: Some(false)
        })
    );
    assert_eq!(
        r.user.as_deref(),
        Some("{\"device_id\":\"d\",\"session_id\":\"s\"}")
    );
    assert!(r.stream && r.stream_usage);
    assert!(r.extra.contains_key("context_management"));
    assert_eq!(
        r.tools[0].parameters["properties"]["command"]["type"],
        "string"
    );
}

#[test]
fn claude_code_request_encodes_for_chat_completions() {
    let r = decode(claude_code_request()).unwrap();
    let mut w = Warnings::default();
    let up =
        serde_json::to_value(openai_chat::encode_request(&r, "devstral-2512", &mut w)).unwrap();
    let roles: Vec<&str> = up["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    // The tool result becomes a `tool` message right after the assistant's call.
    assert_eq!(
        roles,
        [
            "system",
            "user",
            "assistant",
            "tool",
            "user",
            "system",
            "user"
        ]
    );
    assert_eq!(up["messages"][2]["tool_calls"][0]["id"], "toolu_01A");
    assert_eq!(
        up["messages"][3],
        json!({"role": "tool", "content": "a.txt\nb.txt", "tool_call_id": "toolu_01A"})
    );
    assert_eq!(up["reasoning_effort"], "medium");
    assert_eq!(up["parallel_tool_calls"], false);
    assert_eq!(up["max_tokens"], 128000);
    assert!(w.iter().any(|x| x == "cache_control dropped"), "{w:?}");
    assert!(
        up["tools"][0]["function"]["parameters"]
            .get("$schema")
            .is_none()
    );
    assert_eq!(
        up["tools"][0]["function"]["parameters"]["required"],
        json!(["command"])
    );
    assert!(
        w.iter().any(|x| x == "$schema removed from tool schemas"),
        "{w:?}"
    );
}

#[test]
fn mid_conversation_system_blocks_split_the_turn() {
    let r = decode(
        json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "before"},
            {"type": "mid_conv_system", "content": "rules changed"},
            {"type": "text", "text": "after"}
        ]}]}),
    )
    .unwrap();
    let shape: Vec<(Role, String)> = r
        .messages
        .iter()
        .map(|m| (m.role, m.joined_text()))
        .collect();
    assert_eq!(
        shape,
        [
            (Role::User, "before".into()),
            (Role::System, "rules changed".into()),
            (Role::User, "after".into())
        ]
    );
}

#[test]
fn bad_input_names_the_field() {
    let e = decode(
        json!({"model": "m", "max_tokens": 1, "messages": [{"role": "robot", "content": "x"}]}),
    )
    .unwrap_err();
    assert_eq!(e.param.as_deref(), Some("messages[0].role"));
    let e = decode(json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "image", "source": 5}]}]})).unwrap_err();
    assert_eq!(
        e.param.as_deref(),
        Some("messages[0].content[0].source"),
        "{}",
        e.message
    );
    let e = decode(json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64"}}]}]}))
        .unwrap_err();
    assert_eq!(
        e.param.as_deref(),
        Some("messages[0].content[0].source"),
        "{}",
        e.message
    );
    let e = decode(
        json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
    )
    .unwrap_err();
    assert_eq!(e.param.as_deref(), Some("tools[0]"));
    let e = decode(json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}], "output_config": {"effort": "none"}})).unwrap_err();
    assert_eq!(e.param.as_deref(), Some("output_config.effort"));
}

/// `max_tokens` is required of a Messages request, with serde's wording, and not of a
/// `count_tokens` one, which parses into the same type.
#[test]
fn max_tokens_is_required_except_to_count_tokens() {
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
    let e = decode(body.clone()).unwrap_err();
    assert_eq!(e.param.as_deref(), Some("max_tokens"));
    assert_eq!(e.message, "missing field `max_tokens`");
    let c = decode_count_request(serde_json::from_value(body).unwrap()).unwrap();
    assert_eq!(c.max_output_tokens, Some(1));
    let c = decode_count_request(
        serde_json::from_value(
            json!({"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "x"}]}),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(c.max_output_tokens, Some(9));
}

#[test]
fn thinking_budgets_and_disabled_thinking() {
    let base = |thinking: Value| json!({"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "x"}], "thinking": thinking});
    let r = decode(base(json!({"type": "enabled", "budget_tokens": 2048}))).unwrap();
    assert_eq!(
        r.reasoning,
        Some(Reasoning {
            effort: None,
            budget_tokens: Some(2048),
            include_thoughts: Some(true)
        })
    );
    let r = decode(base(json!({"type": "disabled"}))).unwrap();
    assert_eq!(r.reasoning.unwrap().effort, Some(ReasoningEffort::None));
}

#[test]
fn every_request_in_the_spec_examples_shape_decodes() {
    // Unknown block types are carried whole and dropped with a warning for Chat Completions.
    let r = decode(json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "search_result", "source": "s", "title": "t", "content": [{"type": "text", "text": "x"}]},
        {"type": "text", "text": "q"}
    ]}]}))
    .unwrap();
    let mut w = Warnings::default();
    let up = serde_json::to_value(openai_chat::encode_request(&r, "m", &mut w)).unwrap();
    assert_eq!(up["messages"][0]["content"], "q");
    assert_eq!(
        w.iter().collect::<Vec<_>>(),
        ["search_result block dropped for chat completions"]
    );
}
