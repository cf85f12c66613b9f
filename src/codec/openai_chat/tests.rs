use bytes::BytesMut;
use serde_json::{Value, json};

use super::wire::*;
use super::*;
use crate::codec::Warnings;
use crate::schema::*;

fn decode(v: Value) -> ChatRequest {
    decode_request(serde_json::from_value(v).unwrap()).unwrap()
}

#[test]
fn request_round_trips_through_the_canonical_model() {
    let client = json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{\"x\":1}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "a cat"}
        ],
        "tools": [{"type": "function", "function": {"name": "look", "parameters": {"type": "object"}}}],
        "tool_choice": "required",
        "temperature": 0.2,
        "max_completion_tokens": 100,
        "stream": true,
        "stream_options": {"include_usage": true},
        "reasoning_effort": "low",
        "user": "u1",
        "store": true
    });
    let req = decode(client);
    assert!(req.stream && req.stream_usage);
    assert_eq!(req.max_output_tokens, Some(100));
    assert_eq!(req.tool_choice, Some(ToolChoice::Required));
    assert_eq!(req.extra.get("store"), Some(&json!(true)));
    match &req.messages[1].parts[1] {
        Part::Image(i) => assert_eq!(
            i.source,
            MediaSource::Base64 {
                media_type: "image/png".into(),
                data: "AAAA".into()
            }
        ),
        other => panic!("{other:?}"),
    }
    let mut w = Warnings::default();
    let up = serde_json::to_value(encode_request(&req, "gpt-4o-2024", &mut w)).unwrap();
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(up["model"], "gpt-4o-2024");
    assert_eq!(up["stream_options"], json!({"include_usage": true}));
    assert_eq!(
        up["messages"][1]["content"][1]["image_url"]["url"],
        "data:image/png;base64,AAAA"
    );
    assert_eq!(
        up["messages"][2]["tool_calls"][0]["function"]["arguments"],
        "{\"x\":1}"
    );
    assert!(up["messages"][2].get("content").is_none());
    assert_eq!(
        up["messages"][3],
        json!({"role": "tool", "content": "a cat", "tool_call_id": "call_1"})
    );
    assert_eq!(up["store"], true);
    assert_eq!(up["user"], "u1");
}

#[test]
fn invalid_requests_name_the_field() {
    let e = decode_request(serde_json::from_value(json!({"model": "m", "messages": []})).unwrap())
        .unwrap_err();
    assert_eq!(e.param.as_deref(), Some("messages"));
    let e = decode_request(
        serde_json::from_value(
            json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}),
        )
        .unwrap(),
    )
    .unwrap_err();
    assert_eq!(e.param.as_deref(), Some("messages[0].tool_call_id"));
    let e = decode_request(
        serde_json::from_value(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "lots"}))
            .unwrap(),
    )
    .unwrap_err();
    assert_eq!(e.param.as_deref(), Some("reasoning_effort"));
}

#[test]
fn response_decodes_reasoning_tools_and_usage() {
    let w: OaiChatResponse = serde_json::from_value(json!({
        "id": "c1", "object": "chat.completion", "created": 7, "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": null, "reasoning_content": "hmm",
            "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]
        }}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                  "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 2}}
    }))
    .unwrap();
    let r = decode_response(w);
    let u = r.usage.unwrap();
    assert_eq!(
        (
            u.input_tokens,
            u.output_tokens,
            u.cache_read_tokens,
            u.reasoning_tokens
        ),
        (10, 5, 4, 2)
    );
    assert_eq!(r.choices[0].finish_reason, Some(FinishReason::ToolCalls));
    let out = serde_json::to_value(encode_response(&r)).unwrap();
    assert_eq!(
        out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{\"a\":1}"
    );
    assert_eq!(out["choices"][0]["message"]["reasoning_content"], "hmm");
    assert_eq!(out["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(out["usage"]["total_tokens"], 15);
}

fn chunk(v: Value) -> String {
    v.to_string()
}

fn events(d: &mut ChunkDecoder, data: String) -> Vec<StreamEvent> {
    match d.decode_json(&data).unwrap() {
        Decoded::Events(e) => e,
        Decoded::Error => panic!("error chunk"),
    }
}

#[test]
fn stream_decoder_assembles_tool_calls() {
    let mut d = ChunkDecoder::default();
    let mut ev = events(
        &mut d,
        chunk(
            json!({"id": "s", "model": "m", "created": 1, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]}),
        ),
    );
    ev.extend(events(&mut d, chunk(json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}]}, "finish_reason": null}]}))));
    ev.extend(events(&mut d, chunk(json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\""}}]}, "finish_reason": null}]}))));
    // Mistral style: a second whole call under index 0 with its own id.
    ev.extend(events(&mut d, chunk(json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "abcdefghi", "function": {"name": "g", "arguments": {"b": 2}}}]}, "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}))));
    assert_eq!(
        ev,
        vec![
            StreamEvent::Start {
                id: "s".into(),
                model: "m".into(),
                created: 1
            },
            StreamEvent::Delta {
                choice: 0,
                delta: Delta::ToolCallStart {
                    index: 0,
                    id: "c1".into(),
                    name: "f".into()
                }
            },
            StreamEvent::Delta {
                choice: 0,
                delta: Delta::ToolCallArgs {
                    index: 0,
                    fragment: "{\"a\"".into()
                }
            },
            StreamEvent::Delta {
                choice: 0,
                delta: Delta::ToolCallStart {
                    index: 1,
                    id: "abcdefghi".into(),
                    name: "g".into()
                }
            },
            StreamEvent::Delta {
                choice: 0,
                delta: Delta::ToolCallArgs {
                    index: 1,
                    fragment: "{\"b\":2}".into()
                }
            },
            StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::ToolCalls
            },
            StreamEvent::Usage(Usage {
                input_tokens: 3,
                output_tokens: 4,
                ..Usage::default()
            }),
        ]
    );
}

fn frames(b: &[u8]) -> Vec<Value> {
    std::str::from_utf8(b)
        .unwrap()
        .split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|f| {
            let d = f.strip_prefix("data: ").unwrap();
            if d == "[DONE]" {
                Value::String(d.into())
            } else {
                serde_json::from_str(d).unwrap()
            }
        })
        .collect()
}

#[test]
fn stream_encoder_reports_usage_only_when_asked() {
    let events = [
        StreamEvent::Start {
            id: "s".into(),
            model: "m".into(),
            created: 1,
        },
        StreamEvent::Delta {
            choice: 0,
            delta: Delta::Text("Hi".into()),
        },
        StreamEvent::Finish {
            choice: 0,
            reason: FinishReason::Stop,
        },
        StreamEvent::Usage(Usage {
            input_tokens: 3,
            output_tokens: 1,
            ..Usage::default()
        }),
    ];
    for include in [true, false] {
        let mut enc = ChunkEncoder::new(include);
        let mut b = BytesMut::from(&encode_all(&mut enc, &events)[..]);
        enc.finish(&mut b);
        let f = frames(&b);
        assert_eq!(f[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(f[1]["choices"][0]["delta"]["content"], "Hi");
        assert_eq!(f[2]["choices"][0]["finish_reason"], "stop");
        assert_eq!(f.last().unwrap(), "[DONE]");
        if include {
            assert_eq!(f[3]["usage"]["total_tokens"], 4);
            assert_eq!(f[3]["choices"], json!([]));
        } else {
            assert_eq!(f.len(), 4);
        }
    }
}

#[test]
fn stream_decoder_reads_mistral_thinking_chunks_and_error_objects() {
    let mut d = ChunkDecoder::default();
    let ev = events(
        &mut d,
        chunk(
            json!({"id": "m", "model": "magistral", "choices": [{"index": 0, "delta": {"content": [
            {"type": "thinking", "thinking": [{"type": "text", "text": "let me \"think\""}]},
            {"type": "text", "text": "Answer"}
        ]}, "finish_reason": null}]}),
        ),
    );
    assert_eq!(
        ev[1],
        StreamEvent::Delta {
            choice: 0,
            delta: Delta::Reasoning("let me \"think\"".into())
        }
    );
    assert_eq!(
        ev[2],
        StreamEvent::Delta {
            choice: 0,
            delta: Delta::Text("Answer".into())
        }
    );
    assert_eq!(
        d.decode_json(r#"{"error":{"message":"overloaded"}}"#)
            .unwrap(),
        Decoded::Error
    );
    assert!(d.decode_json("{not json").is_err());
}

#[test]
fn encoder_output_is_valid_json_with_escapes() {
    let mut enc = ChunkEncoder::new(true);
    let evs = [
        StreamEvent::Start {
            id: "a\"b".into(),
            model: "m\\n".into(),
            created: 5,
        },
        StreamEvent::Delta {
            choice: 0,
            delta: Delta::ToolCallStart {
                index: 1,
                id: "c".into(),
                name: "f\u{1}".into(),
            },
        },
        StreamEvent::Delta {
            choice: 0,
            delta: Delta::ToolCallArgs {
                index: 1,
                fragment: "{\"x\":\n".into(),
            },
        },
        StreamEvent::Delta {
            choice: 0,
            delta: Delta::Reasoning("r".into()),
        },
        StreamEvent::Finish {
            choice: 0,
            reason: FinishReason::ToolCalls,
        },
    ];
    let mut b = BytesMut::from(&encode_all(&mut enc, &evs)[..]);
    enc.finish(&mut b);
    let f = frames(&b);
    assert_eq!(f[0]["id"], "a\"b");
    assert_eq!(f[0]["model"], "m\\n");
    assert_eq!(f[0]["created"], 5);
    assert_eq!(
        f[1]["choices"][0]["delta"]["tool_calls"][0],
        json!({"index": 1, "id": "c", "type": "function", "function": {"name": "f\u{1}", "arguments": ""}})
    );
    assert_eq!(
        f[2]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"],
        "{\"x\":\n"
    );
    assert_eq!(f[3]["choices"][0]["delta"]["reasoning_content"], "r");
    assert_eq!(f[4]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(f[5]["usage"]["total_tokens"], 0);
    assert_eq!(f[6], "[DONE]");
}

#[test]
fn unknown_content_parts_are_kept_whole() {
    let p: OaiPart =
        serde_json::from_value(json!({"type": "input_video", "video_url": {"url": "u"}})).unwrap();
    assert!(matches!(p, OaiPart::Other(_)));
    let known: OaiPart = serde_json::from_value(json!({"type": "text", "text": "t"})).unwrap();
    assert!(matches!(known, OaiPart::Text { .. }));
    // serde falls back to `Other` for a malformed modelled part; the request decoder refuses it.
    let bad = json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url"}]}]});
    let e = decode_request(serde_json::from_value(bad).unwrap()).unwrap_err();
    assert_eq!(
        e.param.as_deref(),
        Some("messages[0].content[1]"),
        "{}",
        e.message
    );
}

#[test]
fn only_a_signature_alone_before_a_call_rides_in_its_id() {
    let call = || {
        Part::ToolCall(ToolCall {
            id: "call_1".into(),
            name: "f".into(),
            arguments: "{}".into(),
        })
    };
    let sig = |text: &str| Part::Reasoning {
        text: text.into(),
        signature: Some("SIG".into()),
    };
    let reply = |parts: Vec<Part>| ChatResponse {
        id: "r".into(),
        model: "gemini-3-pro-preview".into(),
        created: 0,
        choices: vec![Choice {
            index: 0,
            message: Message {
                role: Role::Assistant,
                parts,
                name: None,
                extra: JsonMap::new(),
            },
            finish_reason: Some(FinishReason::ToolCalls),
            logprobs: None,
        }],
        usage: None,
        system_fingerprint: None,
        extra: JsonMap::new(),
    };
    let id_of = |parts| {
        let v = serde_json::to_value(encode_response(&reply(parts))).unwrap();
        v["choices"][0]["message"]["tool_calls"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let signed = crate::codec::signed_id::sign("call_1", "SIG");
    assert_eq!(id_of(vec![sig(""), call()]), signed);
    assert_eq!(id_of(vec![sig("thinking"), call()]), "call_1");
    assert_eq!(id_of(vec![sig(""), Part::text("hi"), call()]), "call_1");

    // The same in a stream.
    let stream_id = |deltas: Vec<Delta>| {
        let mut enc = ChunkEncoder::new(false);
        let events: Vec<StreamEvent> = deltas
            .into_iter()
            .chain([Delta::ToolCallStart {
                index: 0,
                id: "call_1".into(),
                name: "f".into(),
            }])
            .map(|delta| StreamEvent::Delta { choice: 0, delta })
            .collect();
        let out = encode_all(&mut enc, &events);
        let text = String::from_utf8(out.to_vec()).unwrap();
        let last = text.trim_end().lines().last().unwrap().to_owned();
        let v: Value = serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap();
        v["choices"][0]["delta"]["tool_calls"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        stream_id(vec![Delta::ReasoningSignature("SIG".into())]),
        signed
    );
    assert_eq!(
        stream_id(vec![
            Delta::Reasoning("thinking".into()),
            Delta::ReasoningSignature("SIG".into())
        ]),
        "call_1"
    );

    // Back from the client: the call's own id, the signature just before it.
    let req = decode(json!({"model": "m", "messages": [
        {"role": "assistant", "content": null, "tool_calls": [{"id": signed, "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": signed, "content": "x"}]}));
    assert_eq!(
        req.messages[0].parts,
        vec![
            Part::Reasoning {
                text: String::new(),
                signature: Some("SIG".into())
            },
            call()
        ]
    );
    assert!(matches!(&req.messages[1].parts[0], Part::ToolResult(r) if r.call_id == "call_1"));
}
