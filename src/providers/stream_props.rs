//! Property tests of stream translation: any canonical stream, encoded for a client schema
//! and decoded again by the same schema's upstream decoder (the one a provider of that
//! schema goes through), means the same thing: the same text, reasoning, tool calls (ids,
//! names, arguments), finish and usage. Chat Completions, Anthropic Messages and Gemini each
//! have both halves. Responses has no upstream translation (OpenAI is passed through), so
//! its property is that the final `response.completed` holds exactly what the deltas said,
//! with every event numbered in order and every delta on an item that was added.
//!
//! The translation is `codec`'s; the tests live here because the bytes go through the SSE
//! parser (`providers::sse`) on their way back, as a provider's stream does, and `codec`
//! sits below `providers`.

use bytes::BytesMut;
use proptest::prelude::*;
use serde_json::Value;

use super::StreamStep;
use super::sse::{SseEvent, SseParser};
use crate::schema::*;

/// What a stream means, accumulated.
#[derive(Debug, Default, PartialEq)]
struct Meaning {
    text: String,
    reasoning: String,
    signature: String,
    /// (id, name, arguments as JSON)
    calls: Vec<(String, String, Value)>,
    finish: Option<FinishReason>,
    usage: Usage,
}

fn meaning(events: &[StreamEvent]) -> Meaning {
    let mut m = Meaning::default();
    let mut args: Vec<String> = Vec::new();
    for e in events {
        match e {
            StreamEvent::Delta { delta, .. } => match delta {
                Delta::Text(t) | Delta::Refusal(t) => m.text.push_str(t),
                Delta::Reasoning(t) => m.reasoning.push_str(t),
                Delta::ReasoningSignature(s) => m.signature.push_str(s),
                // Not generated here: their translation has its own tests.
                Delta::RedactedReasoning(_) | Delta::Unrepresented(_) | Delta::Citation { .. } => {}
                Delta::ToolCallStart { id, name, .. } => {
                    m.calls.push((id.clone(), name.clone(), Value::Null));
                    args.push(String::new());
                }
                Delta::ToolCallArgs { index, fragment } => {
                    if let Some(a) = args.get_mut(*index as usize) {
                        a.push_str(fragment);
                    }
                }
            },
            StreamEvent::Finish { reason, .. } => m.finish = Some(reason.clone()),
            StreamEvent::Usage(u) => m.usage.merge(u),
            StreamEvent::Start { .. } | StreamEvent::Raw(_) => {}
        }
    }
    for (call, a) in m.calls.iter_mut().zip(args) {
        call.2 = serde_json::from_str(&a).unwrap_or(Value::String(a));
    }
    m
}

fn text() -> impl Strategy<Value = String> {
    // Quotes, backslashes, newlines, non-ASCII and emoji: what breaks hand-written encoders.
    proptest::string::string_regex("[a-zA-Z0-9 \"\\\\\n\té漢😀{}:,]{1,12}").unwrap()
}

/// A canonical stream: optional reasoning (with a signature), text, tool calls whose JSON
/// arguments arrive in fragments, then a finish and usage.
fn stream() -> impl Strategy<Value = Vec<StreamEvent>> {
    (
        proptest::collection::vec(text(), 0..3),
        proptest::option::of("[a-zA-Z0-9+/=]{4,16}"),
        proptest::collection::vec(text(), 0..4),
        proptest::collection::vec(
            (
                "[a-zA-Z0-9_-]{1,12}",
                "[a-z_]{1,10}",
                proptest::collection::btree_map("[a-z]{1,5}", text(), 0..3),
                1usize..4,
            ),
            0..3,
        ),
        (1u64..5000, 1u64..500, 0u64..100),
        any::<bool>(),
    )
        .prop_map(
            |(reasoning, signature, texts, calls, (input, output, reasoning_tokens), long)| {
                let d = |delta| StreamEvent::Delta { choice: 0, delta };
                let mut ev = vec![StreamEvent::Start {
                    id: "id1".into(),
                    model: "m".into(),
                    created: 1,
                }];
                ev.extend(reasoning.iter().map(|t| d(Delta::Reasoning(t.clone()))));
                if !reasoning.is_empty()
                    && let Some(s) = signature
                {
                    ev.push(d(Delta::ReasoningSignature(s)));
                }
                ev.extend(texts.iter().map(|t| d(Delta::Text(t.clone()))));
                for (i, (id, name, args, pieces)) in calls.iter().enumerate() {
                    let index = u32::try_from(i).unwrap_or(0);
                    ev.push(d(Delta::ToolCallStart {
                        index,
                        id: format!("{id}{i}"),
                        name: name.clone(),
                    }));
                    let json = serde_json::to_string(args).unwrap_or_default();
                    let chars: Vec<char> = json.chars().collect();
                    let size = chars.len().div_ceil(*pieces).max(1);
                    for piece in chars.chunks(size) {
                        ev.push(d(Delta::ToolCallArgs {
                            index,
                            fragment: piece.iter().collect(),
                        }));
                    }
                }
                let finish = if !calls.is_empty() {
                    FinishReason::ToolCalls
                } else if long {
                    FinishReason::Length
                } else {
                    FinishReason::Stop
                };
                ev.push(StreamEvent::Finish {
                    choice: 0,
                    reason: finish,
                });
                ev.push(StreamEvent::Usage(Usage {
                    input_tokens: input,
                    output_tokens: output + reasoning_tokens,
                    reasoning_tokens,
                    ..Usage::default()
                }));
                ev
            },
        )
}

fn sse(bytes: &[u8]) -> Vec<SseEvent> {
    let mut out = Vec::new();
    SseParser::new().feed(bytes, &mut out).unwrap();
    out
}

/// Feed a decoder until its stream ends; the events it produced.
fn decode_all(
    events: &[SseEvent],
    mut step: impl FnMut(&SseEvent) -> StreamStep,
) -> (Vec<StreamEvent>, bool) {
    let mut out = Vec::new();
    for e in events {
        match step(e) {
            StreamStep::Events(v) => out.extend(v),
            StreamStep::Done => return (out, true),
            StreamStep::Last(v) => {
                out.extend(v);
                return (out, true);
            }
        }
    }
    (out, false)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn chat_completions_streams_round_trip(events in stream()) {
        let mut enc = crate::codec::openai_chat::ChunkEncoder::new(true);
        let mut out = BytesMut::new();
        for e in &events {
            enc.encode(e, &mut out);
        }
        enc.finish(&mut out);
        let mut dec = crate::codec::openai_chat::ChunkDecoder::default();
        let (decoded, ended) = decode_all(&sse(&out), |e| match e.data.trim() {
            "[DONE]" => StreamStep::Done,
            data => match dec.decode_json(data).unwrap() {
                crate::codec::openai_chat::Decoded::Events(v) => StreamStep::Events(v),
                crate::codec::openai_chat::Decoded::Error => panic!("error chunk"),
            },
        });
        prop_assert!(ended);
        let (mut want, got) = (meaning(&events), meaning(&decoded));
        // Chat Completions has no field for a reasoning signature.
        want.signature.clear();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn anthropic_streams_round_trip(events in stream()) {
        let mut enc = crate::codec::anthropic::MessageEncoder::new();
        let mut out = BytesMut::new();
        for e in &events {
            enc.encode(e, &mut out);
        }
        enc.finish(&mut out);
        let mut dec = crate::codec::anthropic::MessageDecoder::default();
        let (decoded, ended) = decode_all(&sse(&out), |e| {
            super::StreamDecoder::decode(&mut dec, e).unwrap()
        });
        prop_assert!(ended);
        let (mut want, got) = (meaning(&events), meaning(&decoded));
        // Anthropic counts output tokens whole (no reasoning share) and tool ids are kept.
        want.usage.reasoning_tokens = 0;
        prop_assert_eq!(got, want);
    }

    #[test]
    fn gemini_streams_round_trip(events in stream()) {
        let mut enc = crate::codec::gemini::GeminiEncoder::new(true, "m");
        let mut out = BytesMut::new();
        for e in &events {
            enc.encode(e, &mut out);
        }
        enc.finish(&mut out);
        let mut dec = crate::codec::gemini::upstream::ChunkDecoder::default();
        let (decoded, ended) = decode_all(&sse(&out), |e| {
            let (v, last) = dec.decode(&e.data).unwrap();
            if last { StreamStep::Last(v) } else { StreamStep::Events(v) }
        });
        prop_assert!(ended);
        prop_assert_eq!(meaning(&decoded), meaning(&events));
    }

    #[test]
    fn responses_streams_complete_with_what_their_deltas_said(events in stream()) {
        let echo = std::sync::Arc::new(crate::codec::responses::Echo::new(
            &serde_json::from_value(serde_json::json!({"model": "m", "input": "x"})).unwrap(),
            crate::codec::responses::Tooling::default(),
        ));
        let head = crate::codec::responses::Head { id: "resp_1".into(), created_at: 1, model: String::new() };
        let mut enc = crate::codec::responses::ResponsesEncoder::new(echo, head, None);
        let mut out = BytesMut::new();
        for e in &events {
            enc.encode(e, &mut out);
        }
        enc.finish(&mut out);
        let mut added: Vec<String> = Vec::new();
        let mut text = String::new();
        let mut reasoning = String::new();
        let mut last: Option<Value> = None;
        for (i, e) in sse(&out).iter().enumerate() {
            let v: Value = serde_json::from_str(&e.data).unwrap();
            prop_assert_eq!(v["sequence_number"].as_u64(), Some(i as u64));
            prop_assert_eq!(e.event.as_deref(), v["type"].as_str());
            if let Some(item) = v["item_id"].as_str() {
                prop_assert!(added.iter().any(|a| a == item), "a delta on an item never added: {v}");
            }
            match v["type"].as_str().unwrap_or("") {
                "response.output_item.added" => added.push(v["item"]["id"].as_str().unwrap_or("").to_owned()),
                "response.output_text.delta" => text.push_str(v["delta"].as_str().unwrap_or("")),
                "response.reasoning_summary_text.delta" => reasoning.push_str(v["delta"].as_str().unwrap_or("")),
                _ => {}
            }
            last = Some(v);
        }
        let want = meaning(&events);
        prop_assert_eq!(&text, &want.text);
        prop_assert_eq!(&reasoning, &want.reasoning);
        let done = last.unwrap();
        let r = &done["response"];
        let kind = if want.finish == Some(FinishReason::Length) { "response.incomplete" } else { "response.completed" };
        prop_assert_eq!(done["type"].as_str(), Some(kind));
        let mut final_text = String::new();
        let mut calls = Vec::new();
        for item in r["output"].as_array().unwrap() {
            match item["type"].as_str().unwrap_or("") {
                "message" => final_text.push_str(item["content"][0]["text"].as_str().unwrap_or("")),
                "function_call" => calls.push((
                    item["call_id"].as_str().unwrap_or("").to_owned(),
                    item["name"].as_str().unwrap_or("").to_owned(),
                    serde_json::from_str::<Value>(item["arguments"].as_str().unwrap_or("")).unwrap_or(Value::Null),
                )),
                _ => {}
            }
        }
        prop_assert_eq!(final_text, want.text);
        prop_assert_eq!(calls, want.calls);
        prop_assert_eq!(r["usage"]["input_tokens"].as_u64(), Some(want.usage.input_tokens));
        prop_assert_eq!(r["usage"]["output_tokens"].as_u64(), Some(want.usage.output_tokens));
    }
}
