use bytes::BytesMut;
use serde_json::{Value, json};

use super::*;
use crate::schema::*;

fn wire(v: Value) -> wire::GeminiRequest {
    serde_json::from_value(v).unwrap()
}

fn decode(v: Value) -> Decoded {
    decode_request(wire(v), "gemini-2.5-flash", false).unwrap()
}

#[test]
fn contents_system_and_tool_turns_become_messages() {
    let d = decode(json!({
        "systemInstruction": {"role": "user", "parts": [{"text": "You are Gemini CLI."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "<ctx>"}, {"text": "list files"}]},
            {"role": "model", "parts": [
                {"text": "thinking...", "thought": true},
                {"text": "Let me look."},
                {"functionCall": {"name": "list_directory", "args": {"dir_path": "."}}, "thoughtSignature": "skip_thought_signature_validator"},
                {"functionCall": {"id": "c2", "name": "read_file", "args": {"path": "a"}}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "read_file", "id": "c2", "response": {"output": "A"}}},
                {"functionResponse": {"name": "list_directory", "response": {"output": "a.txt"}}}
            ]},
            {"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": "iVBOR"}}]}
        ]
    }));
    let m = &d.chat.messages;
    assert_eq!(m[0].role, Role::System);
    assert_eq!(m[0].joined_text(), "You are Gemini CLI.");
    assert_eq!(m[1].parts.len(), 2);
    assert_eq!(m[2].role, Role::Assistant);
    let calls: Vec<&ToolCall> = m[2]
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::ToolCall(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(calls[0].name, "list_directory");
    assert_eq!(calls[0].arguments, r#"{"dir_path":"."}"#);
    assert_eq!(calls[1].id, "c2");
    // Each result is a tool message answering its call: by id, else by name.
    let results: Vec<&ToolResult> = m[3..5]
        .iter()
        .map(|m| match &m.parts[0] {
            Part::ToolResult(r) => r,
            _ => panic!("{m:?}"),
        })
        .collect();
    assert_eq!(results[0].call_id, "c2");
    assert_eq!(results[0].content, vec![Part::text("A")]);
    assert_eq!(results[1].call_id, calls[0].id);
    assert!(
        matches!(&m[5].parts[0], Part::Image(ImagePart { source: MediaSource::Base64 { media_type, .. }, .. }) if media_type == "image/png")
    );
}

#[test]
fn generation_config_tools_and_schemas_map_onto_the_canonical_request() {
    let d = decode(json!({
        "contents": [{"parts": [{"text": "x"}]}],
        "tools": [
            {"functionDeclarations": [
                {"name": "a", "description": "A", "parametersJsonSchema": {"type": "object", "properties": {"p": {"type": "string"}}}},
                {"name": "b", "parameters": {"type": "OBJECT", "properties": {"type": {"type": "STRING", "nullable": true}}, "required": ["type"]}}
            ]},
            {"googleSearch": {}}
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["a"]}},
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        "generationConfig": {"temperature": 1, "topP": 0.95, "topK": 64, "maxOutputTokens": 100, "stopSequences": ["END"],
            "responseMimeType": "application/json",
            "responseJsonSchema": {"type": "OBJECT", "properties": {"score": {"type": "INTEGER"}}, "required": ["score"]},
            "thinkingConfig": {"includeThoughts": true, "thinkingLevel": "HIGH"}}
    }));
    let c = &d.chat;
    assert_eq!(c.tools.len(), 2);
    assert_eq!(
        c.tools[1].parameters,
        json!({"type": "object", "properties": {"type": {"type": ["string", "null"]}}, "required": ["type"]})
    );
    assert_eq!(c.tool_choice, Some(ToolChoice::Tool("a".into())));
    assert_eq!(
        (c.sampling.temperature, c.sampling.top_p, c.sampling.top_k),
        (Some(1.0), Some(0.95), Some(64))
    );
    assert_eq!(c.max_output_tokens, Some(100));
    assert_eq!(c.stop, ["END"]);
    assert!(
        matches!(&c.response_format, Some(ResponseFormat::JsonSchema { schema, .. })
        if *schema == json!({"type": "object", "properties": {"score": {"type": "integer"}}, "required": ["score"]}))
    );
    let r = c.reasoning.as_ref().unwrap();
    assert_eq!(
        (r.effort, r.include_thoughts),
        (Some(ReasoningEffort::High), Some(true))
    );
    assert_eq!(
        d.warnings,
        ["tool googleSearch dropped", "safetySettings dropped"]
    );
    let budget = decode(
        json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}}),
    );
    assert_eq!(
        budget.chat.reasoning.unwrap().effort,
        Some(ReasoningEffort::None)
    );
}

#[test]
fn malformed_requests_name_the_field() {
    for (body, param) in [
        (json!({}), "contents"),
        (json!({"contents": []}), "contents"),
        (
            json!({"contents": [{"role": "system", "parts": []}]}),
            "contents[0].role",
        ),
        (
            json!({"contents": [{"parts": [{"bogus": 1}]}]}),
            "contents[0].parts[0]",
        ),
        (
            json!({"contents": [{"parts": [{"functionCall": {"args": {}}}]}]}),
            "contents[0].parts[0].functionCall.name",
        ),
    ] {
        let e = decode_request(wire(body.clone()), "m", false)
            .err()
            .unwrap_or_else(|| panic!("accepted {body}"));
        assert_eq!(e.param.as_deref(), Some(param), "{body}: {e}");
    }
}

/// The wire types read a body as the untyped decoder before them did: a value of the wrong
/// type is absent, a non-object in an object's place is an empty object, `null` is absent,
/// and keys are Google's camelCase JSON names only.
#[test]
fn the_wire_types_keep_the_decoders_tolerance() {
    let d = decode(json!({
        "system_instruction": {"parts": [{"text": "ignored: not a camelCase key"}]},
        "contents": [null, {"role": 7, "parts": [{"text": "x", "thought": "yes"}]}],
        "tools": "not a list",
        "toolConfig": {"functionCallingConfig": "not an object"},
        "generationConfig": {"temperature": "0.5", "topP": null, "topK": 40.0, "maxOutputTokens": -1,
            "seed": 1.0, "candidateCount": 2, "stopSequences": ["END", 3, null], "thinkingConfig": 1},
        "safetySettings": null
    }));
    let c = &d.chat;
    assert_eq!(c.messages.len(), 1);
    assert_eq!(
        (c.messages[0].role, c.messages[0].joined_text()),
        (Role::User, "x".into())
    );
    assert!(c.tools.is_empty());
    assert_eq!(c.tool_choice, Some(ToolChoice::Auto));
    assert_eq!(
        (
            c.sampling.temperature,
            c.sampling.top_p,
            c.sampling.top_k,
            c.sampling.seed
        ),
        (None, None, None, None)
    );
    assert_eq!((c.max_output_tokens, c.sampling.n), (None, Some(2)));
    assert_eq!(c.stop, ["END"]);
    assert_eq!(c.reasoning, Some(Reasoning::default()));
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);

    // Tools other than functions: one warning each, in name order, whatever their value.
    let d = decode(json!({"contents": [{"parts": [{"text": "x"}]}],
        "tools": [{"urlContext": null, "googleSearch": {}, "functionDeclarations": [{"name": "f"}], "codeExecution": {}}],
        "cachedContent": "cachedContents/1", "labels": {"team": "a"}}));
    assert_eq!(d.chat.tools[0].name, "f");
    assert_eq!(
        d.warnings,
        [
            "tool codeExecution dropped",
            "tool googleSearch dropped",
            "tool urlContext dropped",
            "cachedContent dropped",
            "labels dropped"
        ]
    );

    for (body, param) in [
        (
            json!({"contents": [{"parts": [{"inlineData": 1}]}]}),
            "contents[0].parts[0].inlineData.data",
        ),
        (
            json!({"contents": [{"parts": {"text": "x"}}]}),
            "contents[0].parts",
        ),
        (
            json!({"contents": [{"parts": [{"text": 1}]}]}),
            "contents[0].parts[0]",
        ),
        (json!({"contents": {"parts": []}}), "contents"),
        (
            json!({"contents": [{"parts": []}], "tools": [null]}),
            "tools[0]",
        ),
    ] {
        let e = decode_request(wire(body.clone()), "m", false)
            .err()
            .unwrap_or_else(|| panic!("accepted {body}"));
        assert_eq!(e.param.as_deref(), Some(param), "{body}: {e}");
    }
    let e = serde_json::from_str::<wire::GeminiRequest>("[]").unwrap_err();
    assert!(e.to_string().starts_with(wire::NOT_AN_OBJECT), "{e}");
}

#[test]
fn count_tokens_takes_the_fields_or_a_nested_request() {
    let count = |v: Value| {
        let w: wire::GeminiCountTokensRequest = serde_json::from_value(v).unwrap();
        count_tokens_request(w).and_then(|w| decode_request(w, "m", false))
    };
    let d = count(json!({"contents": [{"parts": [{"text": "top"}]}]})).unwrap();
    assert_eq!(d.chat.messages[0].joined_text(), "top");
    let d = count(json!({"contents": [{"parts": [{"text": "top"}]}],
        "generateContentRequest": {"model": "models/m", "contents": [{"parts": [{"text": "nested"}]}]}}))
    .unwrap();
    assert_eq!(d.chat.messages[0].joined_text(), "nested");
    let e = count(json!({"generateContentRequest": null}))
        .err()
        .unwrap();
    assert_eq!(e.message, wire::NOT_AN_OBJECT);
}

fn reply() -> ChatResponse {
    ChatResponse {
        id: "r1".into(),
        model: "served".into(),
        created: 1,
        choices: vec![Choice {
            index: 0,
            message: Message {
                role: Role::Assistant,
                parts: vec![
                    Part::Reasoning {
                        text: "hmm".into(),
                        signature: Some("sig".into()),
                    },
                    Part::text("Hi"),
                    Part::ToolCall(ToolCall {
                        id: "c1".into(),
                        name: "f".into(),
                        arguments: r#"{"a":1}"#.into(),
                    }),
                ],
                name: None,
                extra: JsonMap::new(),
            },
            finish_reason: Some(FinishReason::ToolCalls),
            logprobs: None,
        }],
        usage: Some(Usage {
            input_tokens: 10,
            output_tokens: 7,
            reasoning_tokens: 2,
            cache_read_tokens: 3,
            ..Usage::default()
        }),
        system_fingerprint: None,
        extra: JsonMap::new(),
    }
}

#[test]
fn a_reply_is_a_generate_content_response() {
    let v = encode_response(&reply());
    assert_eq!(
        v["candidates"][0]["content"]["parts"],
        json!([{"text": "hmm", "thought": true, "thoughtSignature": "sig"}, {"text": "Hi"},
               {"functionCall": {"id": "c1", "name": "f", "args": {"a": 1}}}])
    );
    assert_eq!(v["candidates"][0]["finishReason"], "STOP");
    assert_eq!(
        v["usageMetadata"],
        json!({"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 17,
        "thoughtsTokenCount": 2, "cachedContentTokenCount": 3})
    );
    let e = error_body(&crate::error::GatewayError::invalid_param(
        "contents", "bad",
    ));
    assert_eq!(
        e,
        json!({"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}})
    );
}

fn run(sse: bool, events: &[StreamEvent]) -> String {
    let mut enc = GeminiEncoder::new(sse, "asked");
    let mut out = BytesMut::new();
    for e in events {
        enc.encode(e, &mut out);
    }
    enc.finish(&mut out);
    String::from_utf8(out.to_vec()).unwrap()
}

fn delta(d: Delta) -> StreamEvent {
    StreamEvent::Delta {
        choice: 0,
        delta: d,
    }
}

#[test]
fn streams_are_whole_responses_per_chunk_with_calls_sent_whole() {
    let events = [
        StreamEvent::Start {
            id: "r1".into(),
            model: "served".into(),
            created: 1,
        },
        delta(Delta::Reasoning("th".into())),
        delta(Delta::ReasoningSignature("sig".into())),
        delta(Delta::Text("Hel".into())),
        delta(Delta::Text("lo".into())),
        delta(Delta::ToolCallStart {
            index: 0,
            id: "c1".into(),
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
            input_tokens: 4,
            output_tokens: 6,
            ..Usage::default()
        }),
    ];
    let sse = run(true, &events);
    let chunks: Vec<Value> = sse
        .split("\r\n\r\n")
        .filter(|c| !c.is_empty())
        .map(|c| serde_json::from_str(c.strip_prefix("data: ").unwrap()).unwrap())
        .collect();
    let parts: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["candidates"][0]["content"]["parts"][0])
        .collect();
    assert_eq!(parts[0], &json!({"text": "th", "thought": true}));
    assert_eq!(parts[1], &json!({"text": "Hel", "thoughtSignature": "sig"}));
    assert_eq!(parts[2], &json!({"text": "lo"}));
    assert_eq!(
        parts[3],
        &json!({"functionCall": {"id": "c1", "name": "f", "args": {"a": 1}}})
    );
    let last = chunks.last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["totalTokenCount"], 10);
    assert!(
        chunks
            .iter()
            .all(|c| c["modelVersion"] == "served" && c["responseId"] == "r1")
    );
    assert!(
        chunks[..3].iter().all(|c| c.get("usageMetadata").is_none()
            && c["candidates"][0].get("finishReason").is_none())
    );
    // Without alt=sse: the same chunks as one JSON array.
    let array: Vec<Value> = serde_json::from_str(&run(false, &events)).unwrap();
    assert_eq!(array, chunks);
}

#[test]
fn an_empty_stream_is_still_a_valid_array_and_errors_end_it() {
    let array: Vec<Value> = serde_json::from_str(&run(false, &[])).unwrap();
    assert_eq!(array.len(), 1);
    let mut enc = GeminiEncoder::new(false, "m");
    let mut out = BytesMut::new();
    enc.encode(&delta(Delta::Text("a".into())), &mut out);
    enc.error(
        &crate::error::GatewayError::new(crate::error::ErrorKind::UpstreamFailed, "cut"),
        &mut out,
    );
    let v: Vec<Value> = serde_json::from_slice(&out).unwrap();
    assert_eq!(v[1]["error"]["status"], "INTERNAL");
}
