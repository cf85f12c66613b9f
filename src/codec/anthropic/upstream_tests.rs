//! Tests of the upstream half of the Anthropic codec: request encoding (golden output and
//! validation against the published `CreateMessageParams` schema), reply and error decoding.
//! The stream decoder's tests are in `upstream_stream_tests`.

use std::sync::OnceLock;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::*;
use crate::codec::Warnings;
use crate::schema::*;

// === helpers ===

fn msg(role: Role, parts: Vec<Part>) -> Message {
    Message {
        role,
        parts,
        name: None,
        extra: JsonMap::new(),
    }
}

fn call(id: &str, name: &str, arguments: &str) -> Part {
    Part::ToolCall(ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: arguments.into(),
    })
}

fn result(id: &str, text: &str, is_error: bool) -> Part {
    Part::ToolResult(ToolResult {
        call_id: id.into(),
        content: vec![Part::text(text)],
        is_error,
    })
}

fn signed(text: &str, sig: &str) -> Part {
    Part::Reasoning {
        text: text.into(),
        signature: Some(sig.into()),
    }
}

fn tool(name: &str) -> Tool {
    Tool {
        name: name.into(),
        description: None,
        parameters: json!({"type": "object", "properties": {}}),
        strict: None,
        cache_control: None,
    }
}

fn simple(messages: Vec<Message>) -> ChatRequest {
    ChatRequest {
        model: "client-model".into(),
        messages,
        max_output_tokens: Some(1000),
        ..ChatRequest::default()
    }
}

fn encode(req: &ChatRequest) -> (Value, Vec<String>) {
    let mut w = Warnings::default();
    let body = serde_json::to_value(encode_request(req, "claude-sonnet-4-5", &mut w)).unwrap();
    (body, w.iter().map(str::to_owned).collect())
}

/// `CreateMessageParams` from ../shared/specs/anthropic/openapi.json as a validator; `None`
/// (with a notice) where ../shared is absent.
fn validator() -> Option<&'static jsonschema::Validator> {
    static V: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    V.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/specs/anthropic/openapi.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            eprintln!(
                "notice: {} not found; Anthropic requests are not validated against the spec",
                path.display()
            );
            return None;
        };
        let spec: Value = serde_json::from_str(&text).expect("Anthropic spec parses");
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": "#/components/schemas/CreateMessageParams",
            "components": spec["components"],
        });
        Some(jsonschema::validator_for(&root).expect("Anthropic schema compiles"))
    })
    .as_ref()
}

fn assert_valid(body: &Value) {
    let Some(v) = validator() else { return };
    let errors: Vec<String> = v
        .iter_errors(body)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{body:#}");
}

// === request encoding ===

fn weather_schema() -> Value {
    json!({"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]})
}

/// A request using every feature the encoder handles.
fn full_request() -> ChatRequest {
    let ephemeral = Some(json!({"type": "ephemeral"}));
    ChatRequest {
        model: "client-model".into(),
        messages: vec![
            msg(
                Role::System,
                vec![
                    Part::text("You are a careful assistant."),
                    Part::Text(TextPart {
                        text: "Project rules...".into(),
                        cache_control: ephemeral.clone(),
                        citations: Vec::new(),
                    }),
                ],
            ),
            Message::text(Role::Developer, "Answer in English."),
            msg(
                Role::User,
                vec![
                    Part::text("What's the weather in Paris?"),
                    Part::Image(ImagePart {
                        source: MediaSource::Base64 {
                            media_type: "image/png".into(),
                            data: "iVBORw0KGgo=".into(),
                        },
                        detail: Some("high".into()),
                    }),
                    Part::Image(ImagePart {
                        source: MediaSource::Url("https://example.com/paris.jpg".into()),
                        detail: None,
                    }),
                    Part::File(FilePart {
                        source: FileSource::Media(MediaSource::Base64 {
                            media_type: "application/pdf".into(),
                            data: "JVBERi0x".into(),
                        }),
                        filename: Some("forecast.pdf".into()),
                    }),
                    Part::File(FilePart {
                        source: FileSource::Media(MediaSource::Url(
                            "https://example.com/report.pdf".into(),
                        )),
                        filename: None,
                    }),
                    Part::File(FilePart {
                        source: FileSource::FileId("file-abc".into()),
                        filename: None,
                    }),
                    Part::Audio {
                        data: "UklGRg==".into(),
                        format: "wav".into(),
                    },
                ],
            ),
            msg(
                Role::Assistant,
                vec![
                    signed("The user wants the weather.", "sig-1"),
                    Part::RedactedReasoning {
                        data: "opaque-data".into(),
                    },
                    Part::Reasoning {
                        text: "unsigned musing".into(),
                        signature: None,
                    },
                    Part::text("Checking."),
                    call("call_1", "get_weather", r#"{"location":"Paris"}"#),
                    call("call.2:x", "get_time", "not json"),
                ],
            ),
            msg(Role::Tool, vec![result("call_1", "18C and sunny", false)]),
            msg(
                Role::Tool,
                vec![result("call.2:x", "clock unavailable", true)],
            ),
            Message::text(Role::System, "Keep answers short."),
            msg(
                Role::User,
                vec![
                    Part::text("Thanks! Summarise."),
                    Part::Opaque {
                        schema: WireSchema::AnthropicMessages,
                        value: json!({"type": "search_result", "source": "https://example.com",
                                      "title": "Forecast", "content": [{"type": "text", "text": "Sunny"}]}),
                    },
                    Part::Opaque {
                        schema: WireSchema::OpenAiChat,
                        value: json!({"type": "input_video", "video": "x"}),
                    },
                ],
            ),
        ],
        sampling: Sampling {
            temperature: Some(1.0),
            top_p: Some(0.98),
            seed: Some(7),
            presence_penalty: Some(0.1),
            n: Some(1),
            logprobs: Some(false),
            ..Sampling::default()
        },
        max_output_tokens: Some(32000),
        stop: vec!["END".into()],
        tools: vec![
            Tool {
                name: "get_weather".into(),
                description: Some("Current weather".into()),
                parameters: weather_schema(),
                strict: Some(true),
                cache_control: ephemeral,
            },
            Tool {
                parameters: Value::Null,
                ..tool("get_time")
            },
        ],
        tool_choice: Some(ToolChoice::Auto),
        parallel_tool_calls: Some(false),
        reasoning: Some(Reasoning {
            effort: Some(ReasoningEffort::High),
            ..Reasoning::default()
        }),
        response_format: Some(ResponseFormat::JsonSchema {
            name: "weather".into(),
            description: None,
            schema: weather_schema(),
            strict: Some(true),
        }),
        stream: true,
        stream_usage: true,
        user: Some("user-42".into()),
        metadata: Some(serde_json::from_value(json!({"trace": "t1"})).unwrap()),
        extra: serde_json::from_value(json!({"service_tier": "auto", "store": true})).unwrap(),
        raw: None,
    }
}

#[test]
fn golden_request_with_every_feature() {
    let (body, warnings) = encode(&full_request());
    let h = Sha256::digest(b"call.2:x");
    let id2 = format!("call_2_x_{:02x}{:02x}{:02x}{:02x}", h[0], h[1], h[2], h[3]);
    let expected = json!({
        "model": "claude-sonnet-4-5",
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "What's the weather in Paris?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/paris.jpg"}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}, "title": "forecast.pdf"},
                {"type": "document", "source": {"type": "url", "url": "https://example.com/report.pdf"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "The user wants the weather.", "signature": "sig-1"},
                {"type": "redacted_thinking", "data": "opaque-data"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"location": "Paris"}},
                {"type": "tool_use", "id": id2, "name": "get_time", "input": {}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C and sunny"},
                {"type": "tool_result", "tool_use_id": id2, "content": "clock unavailable", "is_error": true},
                {"type": "text", "text": "Keep answers short."},
                {"type": "text", "text": "Thanks! Summarise."},
                {"type": "search_result", "source": "https://example.com", "title": "Forecast",
                 "content": [{"type": "text", "text": "Sunny"}]}
            ]}
        ],
        "max_tokens": 32000,
        "system": [
            {"type": "text", "text": "You are a careful assistant."},
            {"type": "text", "text": "Project rules...", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Answer in English."}
        ],
        "metadata": {"user_id": "user-42"},
        "stop_sequences": ["END"],
        "stream": true,
        "temperature": 1.0,
        "tools": [
            {"name": "get_weather", "description": "Current weather", "input_schema": weather_schema(),
             "cache_control": {"type": "ephemeral"}, "strict": true},
            {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
        ],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
        "thinking": {"type": "enabled", "budget_tokens": 16384},
        "output_config": {"format": {"type": "json_schema", "schema": weather_schema()}},
        "service_tier": "auto"
    });
    assert_eq!(body, expected, "{body:#}");
    assert_eq!(
        warnings,
        [
            "image detail dropped for anthropic",
            "file id dropped for anthropic",
            "audio dropped for anthropic",
            "unsigned reasoning dropped for anthropic",
            "tool call ids rewritten for anthropic",
            "invalid tool call arguments sent as {} for anthropic",
            "mid-conversation system message sent as user text for anthropic",
            "input_video block dropped for anthropic",
            "top_p dropped with temperature for anthropic",
            "seed dropped for anthropic",
            "presence_penalty dropped for anthropic",
            "metadata dropped for anthropic",
            "store dropped for anthropic",
        ]
    );
    assert_valid(&body);
}

#[test]
fn encoded_requests_match_the_published_schema() {
    let plain = simple(vec![Message::text(Role::User, "hi")]);
    let mut variants = vec![full_request(), plain.clone()];
    for (choice, parallel) in [
        (ToolChoice::Required, Some(false)),
        (ToolChoice::Tool("get_time".into()), None),
        (ToolChoice::None, Some(false)),
    ] {
        variants.push(ChatRequest {
            tools: vec![tool("get_time")],
            tool_choice: Some(choice),
            parallel_tool_calls: parallel,
            ..plain.clone()
        });
    }
    variants.push(ChatRequest {
        reasoning: Some(Reasoning {
            effort: Some(ReasoningEffort::None),
            ..Reasoning::default()
        }),
        ..plain.clone()
    });
    variants.push(ChatRequest {
        reasoning: Some(Reasoning {
            budget_tokens: Some(5000),
            include_thoughts: Some(false),
            ..Reasoning::default()
        }),
        max_output_tokens: None,
        ..plain
    });
    for r in &variants {
        assert_valid(&encode(r).0);
    }
    // The validator does catch what Anthropic would refuse.
    if let Some(v) = validator() {
        let mut bad = encode(&variants[1]).0;
        bad["messages"][0]["content"] = json!([{"type": "text", "text": ""}]);
        bad["top_k"] = json!("many");
        assert!(!v.is_valid(&bad));
    }
}

#[test]
fn consecutive_tool_results_merge_into_one_user_turn() {
    let (body, warnings) = encode(&simple(vec![
        Message::text(Role::User, "weather and time?"),
        msg(
            Role::Assistant,
            vec![call("a", "get_weather", "{}"), call("b", "get_time", "")],
        ),
        // A user note placed before the results still leaves them first in the turn.
        Message::text(Role::System, "note"),
        msg(Role::Tool, vec![result("a", "sunny", false)]),
        msg(Role::Tool, vec![result("b", "noon", false)]),
        Message::text(Role::User, "thanks"),
    ]));
    let turns = body["messages"].as_array().unwrap();
    assert_eq!(turns.len(), 3);
    let kinds: Vec<&str> = turns[2]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["tool_result", "tool_result", "text", "text"]);
    assert_eq!(turns[1]["content"][1]["input"], json!({}));
    assert_eq!(
        warnings,
        ["mid-conversation system message sent as user text for anthropic"]
    );
}

#[test]
fn tool_choice_and_parallel_calls() {
    let with = |choice: Option<ToolChoice>, parallel: Option<bool>| {
        let r = ChatRequest {
            tools: vec![tool("t")],
            tool_choice: choice,
            parallel_tool_calls: parallel,
            ..simple(vec![Message::text(Role::User, "x")])
        };
        encode(&r).0.get("tool_choice").cloned()
    };
    assert_eq!(with(None, None), None);
    assert_eq!(
        with(None, Some(false)),
        Some(json!({"type": "auto", "disable_parallel_tool_use": true}))
    );
    assert_eq!(
        with(Some(ToolChoice::Auto), Some(true)),
        Some(json!({"type": "auto"}))
    );
    assert_eq!(
        with(Some(ToolChoice::Required), None),
        Some(json!({"type": "any"}))
    );
    assert_eq!(
        with(Some(ToolChoice::Tool("t".into())), Some(false)),
        Some(json!({"type": "tool", "name": "t", "disable_parallel_tool_use": true}))
    );
    assert_eq!(
        with(Some(ToolChoice::None), Some(false)),
        Some(json!({"type": "none"}))
    );
}

#[test]
fn effort_and_budget_fit_max_tokens() {
    let with = |reasoning: Reasoning, max: Option<u64>| {
        let r = ChatRequest {
            reasoning: Some(reasoning),
            max_output_tokens: max,
            sampling: Sampling {
                temperature: Some(0.2),
                top_k: Some(5),
                ..Sampling::default()
            },
            ..simple(vec![Message::text(Role::User, "x")])
        };
        encode(&r)
    };
    let effort = |e| Reasoning {
        effort: Some(e),
        ..Reasoning::default()
    };
    let budget = |b| Reasoning {
        budget_tokens: Some(b),
        ..Reasoning::default()
    };
    // No limit given: the budget plus room for the answer.
    let (b, w) = with(effort(ReasoningEffort::Low), None);
    assert_eq!(
        b["thinking"],
        json!({"type": "enabled", "budget_tokens": 2048})
    );
    assert_eq!(b["max_tokens"], 2048 + 4096);
    assert!(b.get("temperature").is_none() && b.get("top_k").is_none());
    assert_eq!(
        w,
        [
            "max_tokens defaulted to 6144 for anthropic",
            "temperature dropped with thinking for anthropic",
            "top_k dropped with thinking for anthropic"
        ]
    );
    // Budget over the limit: half the limit; under 1024: raised.
    let (b, w) = with(budget(3000), Some(2500));
    assert_eq!(b["thinking"]["budget_tokens"], 1250);
    assert!(w.contains(&"thinking budget 3000->1250 for anthropic".to_owned()));
    let (b, _) = with(budget(100), Some(8000));
    assert_eq!(b["thinking"]["budget_tokens"], 1024);
    // No room for any thinking: dropped, and sampling kept.
    let (b, w) = with(effort(ReasoningEffort::Minimal), Some(1024));
    assert!(b.get("thinking").is_none());
    assert_eq!(b["temperature"], 0.2);
    assert!(w.contains(&"thinking dropped as max_tokens is under 1025 for anthropic".to_owned()));
    let (b, _) = with(effort(ReasoningEffort::None), Some(100));
    assert_eq!(b["thinking"], json!({"type": "disabled"}));
    let table: Vec<Option<u64>> = ReasoningEffort::ALL
        .into_iter()
        .map(thinking_budget)
        .collect();
    assert_eq!(
        table,
        [
            None,
            Some(1024),
            Some(2048),
            Some(8192),
            Some(16384),
            Some(24576),
            Some(27904)
        ]
    );
    // Without reasoning and without a limit.
    let r = ChatRequest {
        max_output_tokens: None,
        ..simple(vec![Message::text(Role::User, "x")])
    };
    let (b, w) = encode(&r);
    assert_eq!(b["max_tokens"], DEFAULT_MAX_TOKENS);
    assert_eq!(w, ["max_tokens defaulted to 4096 for anthropic"]);
}

#[test]
fn thinking_is_dropped_where_anthropic_would_refuse_it() {
    let high = Some(Reasoning {
        effort: Some(ReasoningEffort::High),
        ..Reasoning::default()
    });
    let loop_turns = |first: Vec<Part>| {
        let mut asst = first;
        asst.push(call("a", "t", "{}"));
        vec![
            Message::text(Role::User, "go"),
            msg(Role::Assistant, asst),
            msg(Role::Tool, vec![result("a", "ok", false)]),
        ]
    };
    // A tool loop whose reasoning came back unsigned (any OpenAI-schema client).
    let r = ChatRequest {
        reasoning: high.clone(),
        max_output_tokens: Some(20000),
        ..simple(loop_turns(vec![Part::text("calling")]))
    };
    let (b, w) = encode(&r);
    assert!(b.get("thinking").is_none());
    assert!(w.contains(
        &"thinking dropped for a tool turn without signed reasoning for anthropic".to_owned()
    ));
    // The same loop with the signed thinking replayed keeps thinking.
    let r = ChatRequest {
        reasoning: high.clone(),
        max_output_tokens: Some(20000),
        ..simple(loop_turns(vec![signed("hmm", "sig")]))
    };
    assert_eq!(encode(&r).0["thinking"]["budget_tokens"], 16384);
    // A forced tool choice.
    let r = ChatRequest {
        reasoning: high,
        tools: vec![tool("t")],
        tool_choice: Some(ToolChoice::Required),
        ..simple(vec![Message::text(Role::User, "x")])
    };
    let (b, w) = encode(&r);
    assert!(b.get("thinking").is_none());
    assert_eq!(
        w,
        ["thinking dropped with forced tool_choice for anthropic"]
    );
}

#[test]
fn foreign_extra_fields_and_unsupported_sampling_are_dropped() {
    let r = ChatRequest {
        sampling: Sampling {
            temperature: Some(1.7),
            frequency_penalty: Some(0.5),
            n: Some(3),
            logprobs: Some(true),
            logit_bias: Some(serde_json::from_value(json!({"42": 5})).unwrap()),
            ..Sampling::default()
        },
        extra: serde_json::from_value(json!({"service_tier": "flex"})).unwrap(),
        raw: Some(RawBody {
            schema: WireSchema::OpenAiChat,
            bytes: bytes::Bytes::new(),
            headers: Vec::new(),
        }),
        response_format: Some(ResponseFormat::JsonObject),
        ..simple(vec![
            Message {
                name: Some("bob".into()),
                ..Message::text(Role::User, "x")
            },
            Message {
                extra: serde_json::from_value(json!({"refusal": "no"})).unwrap(),
                ..Message::text(Role::Assistant, "")
            },
        ])
    };
    let (b, w) = encode(&r);
    assert_eq!(b["temperature"], 1.0);
    assert!(b.get("service_tier").is_none());
    // The empty assistant message has no block to send.
    assert_eq!(b["messages"], json!([{"role": "user", "content": "x"}]));
    assert_eq!(
        w,
        [
            "message name dropped for anthropic",
            "message refusal dropped for anthropic",
            "temperature 1.7->1 for anthropic",
            "n dropped for anthropic",
            "frequency_penalty dropped for anthropic",
            "logprobs dropped for anthropic",
            "logit_bias dropped for anthropic",
            "response_format json_object dropped for anthropic",
            "service_tier dropped for anthropic",
        ]
    );
    assert_valid(&b);
}

// === reply decoding ===

const REPLY: &str = r#"{
  "id": "msg_01Aq9w938a90dw8q", "type": "message", "role": "assistant",
  "model": "claude-sonnet-4-5-20250929",
  "content": [
    {"type": "thinking", "thinking": "Need the weather tool.", "signature": "EqQBCgIYAhIM"},
    {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
    {"type": "text", "text": "Let me look that up.", "citations": null},
    {"type": "server_tool_use", "id": "srvtoolu_01", "name": "web_search", "input": {"query": "paris weather"}},
    {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather",
     "input": {"location": "Paris, France", "unit": "celsius"}, "caller": {"type": "direct"}}
  ],
  "stop_reason": "tool_use", "stop_sequence": null, "stop_details": null, "container": null,
  "usage": {"input_tokens": 50, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 2000,
            "output_tokens": 120, "output_tokens_details": {"thinking_tokens": 40},
            "service_tier": "standard", "server_tool_use": {"web_search_requests": 1}}
}"#;

#[test]
fn realistic_reply_decodes_in_order() {
    let r = decode_response(REPLY.as_bytes()).unwrap();
    assert_eq!(r.id, "msg_01Aq9w938a90dw8q");
    assert_eq!(r.model, "claude-sonnet-4-5-20250929");
    assert!(r.created > 0);
    assert!(r.extra.is_empty(), "{:?}", r.extra);
    let c = &r.choices[0];
    assert_eq!(c.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(
        c.message.parts,
        vec![
            signed("Need the weather tool.", "EqQBCgIYAhIM"),
            Part::RedactedReasoning {
                data: "EmwKAhgBEgy3va3pzix".into()
            },
            Part::text("Let me look that up."),
            Part::Opaque {
                schema: WireSchema::AnthropicMessages,
                value: json!({"type": "server_tool_use", "id": "srvtoolu_01", "name": "web_search",
                              "input": {"query": "paris weather"}}),
            },
            call(
                "toolu_01A09q90qw90lq917835lq9",
                "get_weather",
                r#"{"location":"Paris, France","unit":"celsius"}"#
            ),
        ]
    );
    assert_eq!(
        r.usage,
        Some(Usage {
            input_tokens: 2150,
            output_tokens: 120,
            cache_read_tokens: 2000,
            cache_write_tokens: 100,
            reasoning_tokens: 40,
        })
    );
    // Back to an Anthropic client: the same numbers and stop reason.
    let back = encode_response(&r);
    let original: Value = serde_json::from_str(REPLY).unwrap();
    for k in [
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
    ] {
        assert_eq!(back["usage"][k], original["usage"][k], "{k}");
    }
    assert_eq!(back["stop_reason"], "tool_use");
    // The server tool's block comes back to an Anthropic client whole, in its place.
    assert_eq!(back["content"][3], original["content"][3]);
    assert_eq!(back["content"][4]["type"], "tool_use");
    assert_eq!(back["content"][4]["input"], original["content"][4]["input"]);
    // Unparseable bodies are errors, not empty replies.
    assert!(decode_response(b"{\"type\":\"error\"}").is_err());
}

#[test]
fn stop_reasons_map_both_ways() {
    for r in [
        "end_turn",
        "max_tokens",
        "stop_sequence",
        "tool_use",
        "pause_turn",
        "refusal",
        "model_context_window_exceeded",
    ] {
        let f = finish_reason(r, Some("###".into()));
        assert_eq!(super::response::stop_reason(Some(&f)), r);
    }
    assert_eq!(
        finish_reason("stop_sequence", Some("###".into())),
        FinishReason::StopSequence(Some("###".into()))
    );
    assert_eq!(
        finish_reason("brand_new", None),
        FinishReason::Other("brand_new".into())
    );
}

#[test]
fn error_types_have_their_statuses() {
    assert_eq!(error_status("overloaded_error"), 529);
    assert_eq!(error_status("rate_limit_error"), 429);
    assert_eq!(error_status("something_new"), 500);
}
