//! Chat Completions stream chunks <-> canonical stream events.
//!
//! [`ChunkDecoder`] turns a provider's `chat.completion.chunk`s into [`StreamEvent`]s;
//! [`ChunkEncoder`] turns events back into SSE bytes for a Chat Completions client. Both are
//! incremental (one chunk in, its events out) and sit on the hot path of every stream, so the
//! decoder borrows from the event text and the encoder writes the part of each chunk that never
//! changes (`id`, `object`, `created`, `model`) once per stream.

use std::borrow::Cow;
use std::io::Write;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use super::request::arguments_text;
use super::response::{decode_usage, encode_usage};
use super::wire::*;
use crate::error::GatewayError;
use crate::schema::*;

// === decode ===

/// What one chunk decoded to.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    Events(Vec<StreamEvent>),
    /// The chunk was an error object; the caller extracts its message.
    Error,
}

/// Per-stream state for decoding provider chunks.
#[derive(Debug, Default)]
pub struct ChunkDecoder {
    started: bool,
    /// Tool calls started so far: (choice, wire index, id); the canonical index is the position
    /// among this choice's entries. Providers that send each call whole under index 0 (seen
    /// with Mistral) are told apart by id.
    tool_calls: Vec<(u32, u32, String)>,
}

impl ChunkDecoder {
    /// Decode one chunk's JSON text.
    pub fn decode_json(&mut self, data: &str) -> Result<Decoded, serde_json::Error> {
        let chunk: OaiChunkIn<'_> = serde_json::from_str(data)?;
        if chunk.error.is_some() && chunk.choices.is_empty() {
            return Ok(Decoded::Error);
        }
        let mut out = Vec::with_capacity(2);
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: chunk.id.into_owned(),
                model: chunk.model.into_owned(),
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
                    delta: Delta::Reasoning(r.into_owned()),
                });
            }
            if let Some(raw) = d.content {
                decode_content(choice, raw.get(), &mut out)?;
            }
            if let Some(r) = d.refusal.filter(|r| !r.is_empty()) {
                out.push(StreamEvent::Delta {
                    choice,
                    delta: Delta::Refusal(r.into_owned()),
                });
            }
            for tc in d.tool_calls.unwrap_or_default() {
                self.tool_call(choice, tc, &mut out);
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
        Ok(Decoded::Events(out))
    }

    fn tool_call(&mut self, choice: u32, tc: OaiToolCallDelta, out: &mut Vec<StreamEvent>) {
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
}

/// `content` is a string (OpenAI), null, or an array of chunks (Mistral: text and thinking).
fn decode_content(
    choice: u32,
    raw: &str,
    out: &mut Vec<StreamEvent>,
) -> Result<(), serde_json::Error> {
    match raw.as_bytes().first() {
        Some(b'"') => {
            let t: Cow<'_, str> = serde_json::from_str(raw)?;
            if !t.is_empty() {
                out.push(StreamEvent::Delta {
                    choice,
                    delta: Delta::Text(t.into_owned()),
                });
            }
        }
        Some(b'[') => {
            let parts: Vec<OaiPart> = serde_json::from_str(raw)?;
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
    Ok(())
}

// === encode ===

/// Per-stream state for encoding events as Chat Completions SSE.
#[derive(Debug)]
pub struct ChunkEncoder {
    /// `data: {"id":..,"object":"chat.completion.chunk","created":..,"model":..,"choices":[`,
    /// built at the stream's start and reused for every chunk.
    prefix: Vec<u8>,
    /// The client asked for `stream_options.include_usage`.
    include_usage: bool,
    usage: Option<Usage>,
    /// The reasoning signature the next tool call's id carries (Gemini's call signature).
    signed: super::response::CallSignature,
}

impl ChunkEncoder {
    pub fn new(include_usage: bool) -> Self {
        Self {
            prefix: Vec::new(),
            include_usage,
            usage: None,
            signed: super::response::CallSignature::default(),
        }
    }

    fn set_prefix(&mut self, id: &str, model: &str, created: u64) {
        let p = &mut self.prefix;
        p.clear();
        p.extend_from_slice(b"data: {\"id\":");
        json_into(p, id);
        p.extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
        let _ = write!(p, "{created}");
        p.extend_from_slice(b",\"model\":");
        json_into(p, model);
        p.extend_from_slice(b",\"choices\":[");
    }

    fn prefix(&mut self) -> &[u8] {
        if self.prefix.is_empty() {
            self.set_prefix("", "", 0);
        }
        &self.prefix
    }

    /// Encode one event as zero or one `data:` frame, appended to `out`.
    pub fn encode(&mut self, ev: &StreamEvent, out: &mut BytesMut) {
        let (choice, finish) = match ev {
            StreamEvent::Start { id, model, created } => {
                self.set_prefix(id, model, *created);
                (0, None)
            }
            StreamEvent::Usage(u) => {
                match &mut self.usage {
                    Some(acc) => acc.merge(u),
                    None => self.usage = Some(*u),
                }
                return;
            }
            StreamEvent::Raw(b) => {
                out.extend_from_slice(b);
                return;
            }
            StreamEvent::Finish { choice, reason } => (*choice, Some(reason.as_openai())),
            StreamEvent::Delta {
                delta: d @ Delta::ReasoningSignature(_),
                ..
            } => {
                self.signed.see_delta(d);
                return;
            }
            // Chat Completions has no form for these (the relay notes them,
            // `codec::unsent_delta`).
            StreamEvent::Delta {
                delta:
                    Delta::RedactedReasoning(_) | Delta::Unrepresented(_) | Delta::Citation { .. },
                ..
            } => return,
            StreamEvent::Delta { choice, delta } => {
                self.signed.see_delta(delta);
                (*choice, None)
            }
        };
        let mut w = std::mem::take(out).writer();
        let _ = w.write_all(self.prefix());
        let _ = write!(w, "{{\"index\":{choice},\"delta\":");
        let b = w.get_mut();
        match ev {
            StreamEvent::Start { .. } => b.put_slice(b"{\"role\":\"assistant\",\"content\":\"\"}"),
            StreamEvent::Delta { delta, .. } => match delta {
                Delta::Text(t) => field(b, "content", t),
                Delta::Refusal(t) => field(b, "refusal", t),
                Delta::Reasoning(t) => field(b, "reasoning_content", t),
                Delta::ToolCallStart { index, id, name } => {
                    let _ = write!(b.writer(), "{{\"tool_calls\":[{{\"index\":{index},\"id\":");
                    json_into(b, &self.signed.id(id));
                    b.put_slice(b",\"type\":\"function\",\"function\":{\"name\":");
                    json_into(b, name);
                    b.put_slice(b",\"arguments\":\"\"}}]}");
                }
                Delta::ToolCallArgs { index, fragment } => {
                    let _ = write!(
                        b.writer(),
                        "{{\"tool_calls\":[{{\"index\":{index},\"function\":{{\"arguments\":"
                    );
                    json_into(b, fragment);
                    b.put_slice(b"}}]}");
                }
                Delta::ReasoningSignature(_)
                | Delta::RedactedReasoning(_)
                | Delta::Unrepresented(_)
                | Delta::Citation { .. } => {}
            },
            _ => b.put_slice(b"{}"),
        }
        b.put_slice(b",\"finish_reason\":");
        match finish {
            Some(f) => json_into(b, f),
            None => b.put_slice(b"null"),
        }
        b.put_slice(b"}]}\n\n");
        *out = w.into_inner();
    }

    /// The end of a complete stream: the usage chunk if the client asked, then `[DONE]`.
    pub fn finish(&mut self, out: &mut BytesMut) {
        if self.include_usage {
            let usage = encode_usage(&self.usage.unwrap_or_default());
            out.put_slice(self.prefix());
            out.put_slice(b"],\"usage\":");
            json_into(out, &usage);
            out.put_slice(b"}\n\n");
        }
        out.put_slice(b"data: [DONE]\n\n");
    }

    /// A failure after the stream started: an error object as the last event, no `[DONE]`,
    /// so that clients (the OpenAI SDKs raise on `error`) never mistake it for a normal end.
    pub fn error(&self, err: &GatewayError, out: &mut BytesMut) {
        out.put_slice(b"data: ");
        json_into(out, &super::error_body(err));
        out.put_slice(b"\n\n");
    }
}

/// `{"<name>":<json string>}`
fn field<B: BufMut>(b: &mut B, name: &str, value: &str) {
    b.put_u8(b'{');
    b.put_u8(b'"');
    b.put_slice(name.as_bytes());
    b.put_slice(b"\":");
    json_into(b, value);
    b.put_u8(b'}');
}

/// Serialize a value as JSON into a buffer (strings escaped); our own types always serialize.
fn json_into<B: BufMut, T: Serialize + ?Sized>(b: &mut B, value: &T) {
    let _ = serde_json::to_writer(b.writer(), value);
}

/// Convenience for tests and single events.
pub fn encode_all(enc: &mut ChunkEncoder, events: &[StreamEvent]) -> Bytes {
    let mut b = BytesMut::new();
    for e in events {
        enc.encode(e, &mut b);
    }
    b.freeze()
}
