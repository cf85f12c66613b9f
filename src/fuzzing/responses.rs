//! The Responses API's decoders: a client's `POST /v1/responses` body, and the event stream
//! (and response object) of a provider that speaks Responses itself, relayed as it comes.

use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};

use crate::codec::responses::{self as resp, upstream, wire::RespRequest};
use crate::config::ProviderKind;
use crate::providers::StreamMode;
use crate::schema::{ChatResponse, StreamEvent, WireSchema};

/// A Responses request from a client (Codex CLI, the OpenAI SDK's `responses.create`),
/// decoded as the handler does (its `input` normalized, alone and after a stored turn, the
/// body rebuilt with that turn for an OpenAI provider), encoded for every upstream, and its
/// reply and stream written with the request's echo and tooling. The same bytes are also
/// read as a provider's response object for its usage (the passthrough's reply).
pub fn responses_request(data: &[u8]) {
    let _ = upstream::reply_usage(data);
    let Ok(mut w) = crate::pipeline::reply::parse_json::<RespRequest>(data) else {
        return;
    };
    let Ok(input) = resp::normalize_input(w.input.take()) else {
        return;
    };
    let history = [json!({
        "type": "message", "role": "user",
        "content": [{"type": "input_text", "text": "an earlier turn"}],
    })];
    let _ = upstream::with_history(data, &history);
    let _ = resp::decode(&w, &history, &input);
    let Ok(d) = resp::decode(&w, &[], &input) else {
        return;
    };
    let echo = Arc::new(resp::Echo::new(&w, d.tooling.clone()));
    super::translate(d.chat, WireSchema::OpenAiResponses, data);
    // The reply and the stream as this client gets them, with its own echo and tools.
    let head = resp::Head {
        id: "resp_fuzz".to_owned(),
        created_at: 0,
        model: w.model.clone(),
    };
    if let Some(r) = reply() {
        let output = resp::Output::from_reply(r, &echo.tooling);
        let status = resp::Status::of(r.choices.first().and_then(|c| c.finish_reason.as_ref()));
        let _ =
            serde_json::to_vec(&echo.response(&head, &status, output.to_json(), r.usage.as_ref()));
        let mut enc = resp::ResponsesEncoder::new(echo, head, None);
        let mut out = bytes::BytesMut::new();
        for ev in events(r) {
            enc.encode(&ev, &mut out);
        }
        enc.finish(&mut out);
    }
}

/// A provider's reply with text, reasoning and a call of each kind a Responses client can
/// declare (a function, a namespaced function, a free-form tool).
fn reply() -> Option<&'static ChatResponse> {
    static REPLY: OnceLock<Option<ChatResponse>> = OnceLock::new();
    REPLY
        .get_or_init(|| {
            let body = json!({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-5",
                "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                    "role": "assistant", "content": "Let me look.", "reasoning_content": "hm",
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Nice\"}"}},
                        {"id": "c2", "type": "function", "function": {"name": "files__read", "arguments": "{}"}},
                        {"id": "c3", "type": "function", "function": {"name": "apply_patch", "arguments": "{\"input\":\"*** Begin Patch\"}"}}
                    ]}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
            });
            let a = super::adapter(ProviderKind::OpenAi)?;
            a.parse_chat(body.to_string().as_bytes()).ok()
        })
        .as_ref()
}

/// A reply as the stream events that carry it.
fn events(r: &ChatResponse) -> Vec<StreamEvent> {
    use crate::schema::{Delta, Part};
    let mut out = vec![StreamEvent::Start {
        id: r.id.clone(),
        model: r.model.clone(),
        created: 0,
    }];
    let mut calls = 0;
    for c in &r.choices {
        for p in &c.message.parts {
            let deltas = match p {
                Part::Text(t) => vec![Delta::Text(t.text.clone())],
                Part::ToolCall(call) => {
                    calls += 1;
                    vec![
                        Delta::ToolCallStart {
                            index: calls - 1,
                            id: call.id.clone(),
                            name: call.name.clone(),
                        },
                        Delta::ToolCallArgs {
                            index: calls - 1,
                            fragment: call.arguments.clone(),
                        },
                    ]
                }
                _ => Vec::new(),
            };
            out.extend(deltas.into_iter().map(|delta| StreamEvent::Delta {
                choice: c.index,
                delta,
            }));
        }
        if let Some(reason) = &c.finish_reason {
            out.push(StreamEvent::Finish {
                choice: c.index,
                reason: reason.clone(),
            });
        }
    }
    out.extend(r.usage.map(StreamEvent::Usage));
    out
}

/// A Responses event stream from OpenAI (or Azure), relayed raw to a Responses client by the
/// adapter's passthrough decoder, with and without its text read alongside; each event's
/// `response` member is also read for usage as a reply's would be.
pub fn responses_stream(data: &[u8]) {
    super::stream(data, || {
        [ProviderKind::OpenAi, ProviderKind::AzureOpenAi]
            .into_iter()
            .filter_map(super::adapter)
            .flat_map(|a| {
                [false, true].map(|text| {
                    a.stream_decoder(StreamMode {
                        passthrough: true,
                        client_usage: false,
                        text,
                        schema: Some(WireSchema::OpenAiResponses),
                    })
                })
            })
            .collect()
    });
    for line in data.split(|&b| b == b'\n') {
        if let Some(json) = line.strip_prefix(b"data:")
            && let Ok(v) = serde_json::from_slice::<Value>(json)
            && let Some(r) = v.get("response")
        {
            let _ = upstream::reply_usage(r.to_string().as_bytes());
        }
    }
}
