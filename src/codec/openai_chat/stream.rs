//! Chat Completions stream chunks <-> canonical stream events.
//!
//! [`ChunkDecoder`] turns a provider's `chat.completion.chunk`s into [`StreamEvent`]s;
//! [`ChunkEncoder`] turns events back into SSE bytes for a Chat Completions client. Both are
//! incremental: one chunk in, its events out, nothing buffered beyond tool-call bookkeeping.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde_json::Value;

use super::request::arguments_text;
use super::response::{decode_usage, encode_usage};
use super::wire::*;
use crate::error::GatewayError;
use crate::schema::*;

// === decode ===

/// Per-stream state for decoding provider chunks.
#[derive(Debug, Default)]
pub struct ChunkDecoder {
    started: bool,
    /// Tool calls started so far: (choice, wire index, id) -> canonical index is the position
    /// among this choice's entries. Providers that send each call whole under index 0 (seen
    /// with Mistral) are told apart by id.
    tool_calls: Vec<(u32, u32, String)>,
}

impl ChunkDecoder {
    pub fn decode(&mut self, chunk: OaiChunk) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: chunk.id,
                model: chunk.model,
                created: chunk.created,
            });
        }
        for c in chunk.choices {
            let choice = c.index;
            let d = c.delta;
            if let Some(r) = d
                .reasoning_content
                .or(d.reasoning)
                .filter(|r| !r.is_empty())
            {
                out.push(StreamEvent::Delta {
                    choice,
                    delta: Delta::Reasoning(r),
                });
            }
            match d.content {
                Some(OaiContent::Text(t)) if !t.is_empty() => {
                    out.push(StreamEvent::Delta {
                        choice,
                        delta: Delta::Text(t),
                    });
                }
                Some(OaiContent::Parts(parts)) => {
                    for p in parts {
                        match p {
                            OaiPart::Text { text } if !text.is_empty() => {
                                out.push(StreamEvent::Delta {
                                    choice,
                                    delta: Delta::Text(text),
                                });
                            }
                            OaiPart::Thinking {
                                thinking,
                                signature,
                            } => {
                                let text: String = thinking.into_iter().map(|t| t.text).collect();
                                if !text.is_empty() {
                                    out.push(StreamEvent::Delta {
                                        choice,
                                        delta: Delta::Reasoning(text),
                                    });
                                }
                                if let Some(s) = signature {
                                    out.push(StreamEvent::Delta {
                                        choice,
                                        delta: Delta::ReasoningSignature(s),
                                    });
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
            if let Some(r) = d.refusal.filter(|r| !r.is_empty()) {
                out.push(StreamEvent::Delta {
                    choice,
                    delta: Delta::Refusal(r),
                });
            }
            for tc in d.tool_calls.unwrap_or_default() {
                let (name, args) = match tc.function {
                    Some(f) => (f.name, f.arguments),
                    None => (None, None),
                };
                let existing = self
                    .tool_calls
                    .iter()
                    .rposition(|(ch, wi, _)| *ch == choice && *wi == tc.index);
                let is_new = match (&tc.id, existing) {
                    (_, None) => true,
                    (Some(id), Some(pos)) => !id.is_empty() && self.tool_calls[pos].2 != *id,
                    (None, Some(_)) => false,
                };
                let index = if is_new {
                    let index = self
                        .tool_calls
                        .iter()
                        .filter(|(ch, ..)| *ch == choice)
                        .count() as u32;
                    let id = tc.id.clone().unwrap_or_default();
                    self.tool_calls.push((choice, tc.index, id.clone()));
                    out.push(StreamEvent::Delta {
                        choice,
                        delta: Delta::ToolCallStart {
                            index,
                            id,
                            name: name.unwrap_or_default(),
                        },
                    });
                    index
                } else {
                    let pos = existing.unwrap_or(0);
                    self.tool_calls[..=pos]
                        .iter()
                        .filter(|(ch, ..)| *ch == choice)
                        .count() as u32
                        - 1
                };
                if let Some(a) = args {
                    let fragment = arguments_text(a);
                    if !fragment.is_empty() {
                        out.push(StreamEvent::Delta {
                            choice,
                            delta: Delta::ToolCallArgs { index, fragment },
                        });
                    }
                }
            }
            if let Some(f) = c.finish_reason {
                out.push(StreamEvent::Finish {
                    choice,
                    reason: FinishReason::from_openai(&f),
                });
            }
        }
        if let Some(u) = chunk.usage {
            out.push(StreamEvent::Usage(decode_usage(&u)));
        }
        out
    }
}

// === encode ===

/// Per-stream state for encoding events as Chat Completions SSE.
#[derive(Debug)]
pub struct ChunkEncoder {
    id: String,
    model: String,
    created: u64,
    /// The client asked for `stream_options.include_usage`.
    include_usage: bool,
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct OutChunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<OaiChunkChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<OaiUsage>,
}

impl ChunkEncoder {
    pub fn new(include_usage: bool) -> Self {
        Self {
            id: String::new(),
            model: String::new(),
            created: 0,
            include_usage,
            usage: None,
        }
    }

    /// Encode one event as zero or one `data:` frame, appended to `out`.
    pub fn encode(&mut self, ev: &StreamEvent, out: &mut BytesMut) {
        let (choice, delta, finish) = match ev {
            StreamEvent::Start { id, model, created } => {
                self.id.clone_from(id);
                self.model.clone_from(model);
                self.created = *created;
                let delta = OaiDelta {
                    role: Some("assistant".to_owned()),
                    content: Some(OaiContent::Text(String::new())),
                    ..OaiDelta::default()
                };
                (0, delta, None)
            }
            StreamEvent::Usage(u) => {
                match &mut self.usage {
                    Some(acc) => acc.merge(u),
                    None => self.usage = Some(*u),
                }
                return;
            }
            StreamEvent::Finish { choice, reason } => (
                *choice,
                OaiDelta::default(),
                Some(reason.as_openai().to_owned()),
            ),
            StreamEvent::Delta { choice, delta } => {
                let d = match delta {
                    Delta::Text(t) => OaiDelta {
                        content: Some(OaiContent::Text(t.clone())),
                        ..OaiDelta::default()
                    },
                    Delta::Refusal(t) => OaiDelta {
                        refusal: Some(t.clone()),
                        ..OaiDelta::default()
                    },
                    Delta::Reasoning(t) => OaiDelta {
                        reasoning_content: Some(t.clone()),
                        ..OaiDelta::default()
                    },
                    Delta::ReasoningSignature(_) => return,
                    Delta::ToolCallStart { index, id, name } => OaiDelta {
                        tool_calls: Some(vec![OaiToolCallDelta {
                            index: *index,
                            id: Some(id.clone()),
                            kind: Some("function".to_owned()),
                            function: Some(OaiFunctionDelta {
                                name: Some(name.clone()),
                                arguments: Some(Value::String(String::new())),
                            }),
                        }]),
                        ..OaiDelta::default()
                    },
                    Delta::ToolCallArgs { index, fragment } => OaiDelta {
                        tool_calls: Some(vec![OaiToolCallDelta {
                            index: *index,
                            id: None,
                            kind: None,
                            function: Some(OaiFunctionDelta {
                                name: None,
                                arguments: Some(Value::String(fragment.clone())),
                            }),
                        }]),
                        ..OaiDelta::default()
                    },
                };
                (*choice, d, None)
            }
        };
        let chunk = OutChunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: vec![OaiChunkChoice {
                index: choice,
                delta,
                finish_reason: finish,
                logprobs: None,
            }],
            usage: None,
        };
        write_data(out, &chunk);
    }

    /// The end of a complete stream: the usage chunk if the client asked, then `[DONE]`.
    pub fn finish(&mut self, out: &mut BytesMut) {
        if self.include_usage {
            let chunk = OutChunk {
                id: &self.id,
                object: "chat.completion.chunk",
                created: self.created,
                model: &self.model,
                choices: Vec::new(),
                usage: Some(encode_usage(&self.usage.unwrap_or_default())),
            };
            write_data(out, &chunk);
        }
        out.put_slice(b"data: [DONE]\n\n");
    }

    /// A failure after the stream started: an error object as the last event, no `[DONE]`,
    /// so that clients (the OpenAI SDKs raise on `error`) never mistake it for a normal end.
    pub fn error(&self, err: &GatewayError, out: &mut BytesMut) {
        write_data(out, &super::error_body(err));
    }
}

fn write_data<T: Serialize>(out: &mut BytesMut, value: &T) {
    out.put_slice(b"data: ");
    let mut w = out.writer();
    // Serializing our own plain structs cannot fail.
    let _ = serde_json::to_writer(&mut w, value);
    let out = w.into_inner();
    out.put_slice(b"\n\n");
}

/// Convenience for tests and single events.
pub fn encode_all(enc: &mut ChunkEncoder, events: &[StreamEvent]) -> Bytes {
    let mut b = BytesMut::new();
    for e in events {
        enc.encode(e, &mut b);
    }
    b.freeze()
}
