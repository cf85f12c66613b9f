use bytes::BytesMut;
use serde_json::{Value, json};

use super::output::{Echo, Head, Output, Status};
use super::request::{decode, normalize_input};
use super::stream::ResponsesEncoder;
use super::wire::RespRequest;
use crate::schema::*;

fn wire(v: Value) -> RespRequest {
    serde_json::from_value(v).unwrap()
}

fn decoded(v: Value) -> super::Decoded {
    let mut w = wire(v);
    let input = normalize_input(w.input.take()).unwrap();
    decode(&w, &[], &input).unwrap()
}

#[test]
fn a_string_input_is_one_user_message_after_the_instructions() {
    let d = decoded(
        json!({"model": "m", "instructions": "be brief", "input": "hi", "max_output_tokens": 50}),
    );
    let c = d.chat;
    assert_eq!(c.messages.len(), 2);
    assert_eq!(c.messages[0].role, Role::System);
    assert_eq!(c.messages[0].joined_text(), "be brief");
    assert_eq!(c.messages[1].role, Role::User);
    assert_eq!(c.messages[1].joined_text(), "hi");
    assert_eq!(c.max_output_tokens, Some(50));
    assert!(c.stream_usage);
}

#[test]
fn calls_and_reasoning_join_one_assistant_turn_and_outputs_become_tool_messages() {
    let d = decoded(json!({"model": "m", "input": [
        {"role": "developer", "content": [{"type": "input_text", "text": "sys"}]},
        {"type": "message", "role": "user", "content": "run it"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "content": null, "encrypted_content": "sig"},
        {"type": "reasoning", "id": "rs_2", "summary": [{"type": "summary_text", "text": "think"}], "encrypted_content": "sig2"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
        {"type": "function_call", "id": "fc_1", "call_id": "call_a", "name": "exec", "arguments": "{\"cmd\":\"ls\"}"},
        {"type": "function_call", "id": "fc_2", "call_id": "call_b", "name": "close", "namespace": "agents", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_a", "output": "files"},
        {"type": "function_call_output", "call_id": "call_b", "output": [{"type": "input_text", "text": "closed"}]},
    ]}));
    let m = &d.chat.messages;
    assert_eq!(m.len(), 5, "{m:#?}");
    assert_eq!(m[0].role, Role::Developer);
    assert_eq!(m[2].role, Role::Assistant);
    assert_eq!(
        m[2].parts,
        vec![
            Part::RedactedReasoning { data: "sig".into() },
            Part::Reasoning {
                text: "think".into(),
                signature: Some("sig2".into())
            },
            Part::text("ok"),
            Part::ToolCall(ToolCall {
                id: "call_a".into(),
                name: "exec".into(),
                arguments: "{\"cmd\":\"ls\"}".into()
            }),
            Part::ToolCall(ToolCall {
                id: "call_b".into(),
                name: "agents__close".into(),
                arguments: "{}".into()
            }),
        ]
    );
    for (msg, id, text) in [(&m[3], "call_a", "files"), (&m[4], "call_b", "closed")] {
        assert_eq!(msg.role, Role::Tool);
        let Part::ToolResult(r) = &msg.parts[0] else {
            panic!("{msg:?}")
        };
        assert_eq!(r.call_id, id);
        assert_eq!(r.content, vec![Part::text(text)]);
    }
}

#[test]
fn tools_are_flattened_reshaped_or_dropped_with_a_warning() {
    let d = decoded(json!({"model": "m", "input": "x", "tools": [
        {"type": "function", "name": "exec", "strict": false, "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}},
        {"type": "namespace", "name": "agents", "tools": [{"type": "function", "name": "spawn", "parameters": {"type": "object"}}]},
        {"type": "custom", "name": "apply_patch", "description": "Patch files", "format": {"type": "grammar", "syntax": "lark", "definition": "start: x"}},
        {"type": "web_search", "external_web_access": true},
    ], "tool_choice": {"type": "function", "name": "exec"}, "client_metadata": {"a": "b"}}));
    let names: Vec<_> = d.chat.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["exec", "agents__spawn", "apply_patch"]);
    assert_eq!(d.chat.tools[2].parameters["required"], json!(["input"]));
    assert!(
        d.chat.tools[2]
            .description
            .as_deref()
            .unwrap()
            .contains("lark")
    );
    assert_eq!(d.chat.tool_choice, Some(ToolChoice::Tool("exec".into())));
    assert_eq!(
        d.warnings,
        [
            "tool web_search dropped: hosted by OpenAI",
            "client_metadata dropped"
        ]
    );
    assert!(
        d.chat.extra.is_empty(),
        "unknown fields never reach a provider"
    );
    assert_eq!(
        d.tooling.resolve("agents__spawn"),
        ("spawn".into(), Some("agents".into()), false)
    );
    assert_eq!(
        d.tooling.resolve("apply_patch"),
        ("apply_patch".into(), None, true)
    );
}

#[test]
fn options_map_onto_the_canonical_request() {
    let d = decoded(
        json!({"model": "m", "input": "x", "reasoning": {"effort": "high", "summary": "auto"},
        "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": true}},
        "temperature": 0.2, "top_p": 0.9, "safety_identifier": "u1", "parallel_tool_calls": false}),
    );
    let c = d.chat;
    assert_eq!(
        c.reasoning.as_ref().unwrap().effort,
        Some(ReasoningEffort::High)
    );
    assert_eq!(c.reasoning.as_ref().unwrap().include_thoughts, Some(true));
    assert!(
        matches!(c.response_format, Some(ResponseFormat::JsonSchema { ref name, strict: Some(true), .. }) if name == "out")
    );
    assert_eq!(c.sampling.temperature, Some(0.2));
    assert_eq!(c.user.as_deref(), Some("u1"));
    assert_eq!(c.parallel_tool_calls, Some(false));
}

#[test]
fn malformed_requests_name_the_field() {
    for (body, param) in [
        (json!({"input": "x"}), "model"),
        (json!({"model": "m", "input": 3}), "input"),
        (
            json!({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f"}]}),
            "input[0].arguments",
        ),
        (
            json!({"model": "m", "input": [{"type": "item_reference", "id": "x"}]}),
            "input[0]",
        ),
        (
            json!({"model": "m", "input": "x", "reasoning": {"effort": "huge"}}),
            "reasoning.effort",
        ),
        (
            json!({"model": "m", "input": "x", "background": true}),
            "background",
        ),
        (json!({"model": "m", "instructions": "only"}), "input"),
    ] {
        let mut w = wire(body.clone());
        let e =
            normalize_input(w.input.take()).and_then(|input| decode(&w, &[], &input).map(|_| ()));
        let e = e.err().unwrap_or_else(|| panic!("accepted {body}"));
        assert_eq!(e.param.as_deref(), Some(param), "{body}: {e}");
    }
}

fn reply(parts: Vec<Part>, finish: FinishReason) -> ChatResponse {
    ChatResponse {
        id: "x".into(),
        model: "served".into(),
        created: 1,
        choices: vec![Choice {
            index: 0,
            message: Message {
                role: Role::Assistant,
                parts,
                name: None,
                extra: JsonMap::new(),
            },
            finish_reason: Some(finish),
            logprobs: None,
        }],
        usage: Some(Usage {
            input_tokens: 10,
            output_tokens: 5,
            cache_read_tokens: 4,
            reasoning_tokens: 2,
            ..Usage::default()
        }),
        system_fingerprint: None,
        extra: JsonMap::new(),
    }
}

fn echo(v: Value) -> Echo {
    let d = decoded(v.clone());
    Echo::new(&wire(v), d.tooling)
}

#[test]
fn a_reply_becomes_output_items_with_usage_and_status() {
    let e = echo(json!({"model": "m", "input": "x", "tools": [
        {"type": "custom", "name": "apply_patch"},
        {"type": "namespace", "name": "agents", "tools": [{"type": "function", "name": "spawn"}]}]}));
    let r = reply(
        vec![
            Part::Reasoning {
                text: "hmm".into(),
                signature: Some("sig".into()),
            },
            Part::text("a"),
            Part::text("b"),
            Part::ToolCall(ToolCall {
                id: "call_1".into(),
                name: "apply_patch".into(),
                arguments: "{\"input\":\"*** Begin Patch\"}".into(),
            }),
            Part::ToolCall(ToolCall {
                id: "call_2".into(),
                name: "agents__spawn".into(),
                arguments: "{}".into(),
            }),
        ],
        FinishReason::ToolCalls,
    );
    let head = Head {
        id: "resp_1".into(),
        created_at: 7,
        model: "served".into(),
    };
    let out = Output::from_reply(&r, &e.tooling);
    let v = e.response(
        &head,
        &Status::of(Some(&FinishReason::ToolCalls)),
        out.to_json(),
        r.usage.as_ref(),
    );
    assert_eq!(v["status"], "completed");
    assert_eq!(v["object"], "response");
    let o = v["output"].as_array().unwrap();
    assert_eq!(o.len(), 4, "{v}");
    assert_eq!(o[0]["type"], "reasoning");
    assert_eq!(o[0]["summary"][0]["text"], "hmm");
    assert_eq!(o[0]["encrypted_content"], "sig");
    assert_eq!(o[1]["content"][0]["text"], "ab");
    assert_eq!(o[2]["type"], "custom_tool_call");
    assert_eq!(o[2]["input"], "*** Begin Patch");
    assert_eq!(o[2]["call_id"], "call_1");
    assert_eq!(o[3]["type"], "function_call");
    assert_eq!(
        (o[3]["name"].as_str(), o[3]["namespace"].as_str()),
        (Some("spawn"), Some("agents"))
    );
    assert!(o[3]["id"].as_str().unwrap().starts_with("fc_"));
    assert_eq!(
        v["usage"],
        json!({"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
        "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 2}, "total_tokens": 15})
    );
    let cut = e.response(
        &head,
        &Status::of(Some(&FinishReason::Length)),
        vec![],
        None,
    );
    assert_eq!(cut["status"], "incomplete");
    assert_eq!(cut["incomplete_details"]["reason"], "max_output_tokens");
}

/// The events of a stream, as (type, data).
fn events(bytes: &[u8]) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(bytes).unwrap();
    text.split("\n\n")
        .filter(|b| !b.is_empty())
        .map(|b| {
            let mut lines = b.lines();
            let kind = lines
                .next()
                .unwrap()
                .strip_prefix("event: ")
                .unwrap()
                .to_owned();
            let data: Value =
                serde_json::from_str(lines.next().unwrap().strip_prefix("data: ").unwrap())
                    .unwrap();
            assert_eq!(data["type"], kind.as_str());
            (kind, data)
        })
        .collect()
}

fn delta(d: Delta) -> StreamEvent {
    StreamEvent::Delta {
        choice: 0,
        delta: d,
    }
}

#[test]
fn a_stream_is_complete_ordered_and_numbered() {
    let e = std::sync::Arc::new(echo(json!({"model": "m", "input": "x"})));
    let done = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = done.clone();
    let mut enc = ResponsesEncoder::new(
        e,
        Head {
            id: "resp_1".into(),
            created_at: 1,
            model: String::new(),
        },
        Some(Box::new(move |r: &Value| {
            *seen.lock().unwrap() = Some(r.clone())
        })),
    );
    let mut out = BytesMut::new();
    for ev in [
        StreamEvent::Start {
            id: "up".into(),
            model: "served".into(),
            created: 1,
        },
        delta(Delta::Reasoning("th".into())),
        delta(Delta::Reasoning("ink".into())),
        delta(Delta::ReasoningSignature("sig".into())),
        delta(Delta::Text("Hel".into())),
        delta(Delta::Text("lo".into())),
        delta(Delta::ToolCallStart {
            index: 0,
            id: "call_1".into(),
            name: "f".into(),
        }),
        delta(Delta::ToolCallArgs {
            index: 0,
            fragment: "{\"a\"".into(),
        }),
        delta(Delta::ToolCallArgs {
            index: 0,
            fragment: ":1}".into(),
        }),
        StreamEvent::Finish {
            choice: 0,
            reason: FinishReason::ToolCalls,
        },
        StreamEvent::Usage(Usage {
            input_tokens: 3,
            output_tokens: 4,
            ..Usage::default()
        }),
    ] {
        enc.encode(&ev, &mut out);
    }
    enc.finish(&mut out);
    let evs = events(&out);
    let kinds: Vec<&str> = evs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (i, (_, d)) in evs.iter().enumerate() {
        assert_eq!(d["sequence_number"], i, "{d}");
    }
    let items: Vec<&Value> = evs
        .iter()
        .filter(|(k, _)| k == "response.output_item.done")
        .map(|(_, d)| &d["item"])
        .collect();
    assert_eq!(items[0]["encrypted_content"], "sig");
    assert_eq!(items[1]["content"][0]["text"], "Hello");
    assert_eq!(items[2]["arguments"], "{\"a\":1}");
    let completed = &evs.last().unwrap().1["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["model"], "served");
    assert_eq!(completed["usage"]["total_tokens"], 7);
    assert_eq!(completed["output"].as_array().unwrap().len(), 3);
    for (i, item) in items.iter().enumerate() {
        assert_eq!(
            &completed["output"][i], *item,
            "the same ids and content in the final response"
        );
    }
    assert_eq!(done.lock().unwrap().as_ref(), Some(completed));
}

#[test]
fn a_failed_stream_ends_with_error_then_response_failed() {
    let e = std::sync::Arc::new(echo(json!({"model": "m", "input": "x"})));
    let mut enc = ResponsesEncoder::new(
        e,
        Head {
            id: "resp_1".into(),
            created_at: 1,
            model: "m".into(),
        },
        None,
    );
    let mut out = BytesMut::new();
    enc.encode(&delta(Delta::Text("par".into())), &mut out);
    enc.error(
        &crate::error::GatewayError::new(crate::error::ErrorKind::UpstreamFailed, "upstream cut"),
        &mut out,
    );
    let evs = events(&out);
    let kinds: Vec<&str> = evs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        &kinds[kinds.len() - 3..],
        ["response.output_item.done", "error", "response.failed"]
    );
    let failed = &evs.last().unwrap().1["response"];
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], "server_error");
    assert_eq!(failed["output"][0]["content"][0]["text"], "par");
}
