//! Anthropic Messages SSE -> canonical stream events: the stream half of the upstream codec,
//! the inverse of the ingress `MessageEncoder`.
//!
//! Anthropic's stream is block-structured (`message_start`, then per content block a
//! `content_block_start`, its deltas and a `content_block_stop`, then `message_delta` with the
//! stop reason and usage, then `message_stop`); canonical events are flat. So the decoder keeps
//! what each open block index is (text, thinking, which tool call) and numbers tool calls
//! per message, and it accumulates the raw usage counts, because `message_delta` may repeat
//! some counts and leave others null while the canonical input count is their sum.
//!
//! `redacted_thinking` blocks are one `RedactedReasoning` delta each. A text block's web
//! citations are `Citation` deltas when the block ends (over its whole text). Other citations
//! and server-tool blocks (`server_tool_use`, `web_search_tool_result`, ...) have no canonical
//! form: they are `Unrepresented` deltas, which clients of other schemas are warned about (an
//! Anthropic client on an Anthropic provider gets the stream as it came).

use super::upstream_reply::{decode_usage, error_status, finish_reason};
use super::wire::{AnthBlockStartIn, AnthStreamEventIn, AnthUsage};
use crate::codec::upstream_stream::{SseEvent, StreamDecoder, StreamStep, bad_reply};
use crate::error::GatewayError;
use crate::schema::{Delta, StreamEvent};
use crate::unix_now;

/// What a content block index holds, for routing its deltas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Thinking,
    /// A client tool call, by its canonical index.
    Tool(u32),
    /// Redacted thinking, server tools and block types we do not know: deltas ignored.
    Ignored,
}

/// Per-stream state for decoding an Anthropic event stream.
#[derive(Debug)]
pub struct MessageDecoder {
    /// Provider name for error messages (`anthropic`, or an Anthropic-compatible provider).
    name: &'static str,
    /// Anthropic sends no timestamp: the time the stream began.
    created: u64,
    /// Open and closed blocks of the current message, by Anthropic index.
    blocks: Vec<(u32, Block)>,
    /// Tool calls started in the current message.
    tools: u32,
    /// Usage reported so far, in Anthropic's terms (later non-null counts win).
    usage: AnthUsage,
    /// The web sources the open text block cites, emitted when it ends.
    citations: crate::codec::BlockCitations,
}

impl Default for MessageDecoder {
    fn default() -> Self {
        Self::new("anthropic")
    }
}

impl MessageDecoder {
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            created: unix_now(),
            blocks: Vec::new(),
            tools: 0,
            usage: AnthUsage::default(),
            citations: crate::codec::BlockCitations::default(),
        }
    }

    fn block(&self, index: Option<u32>) -> Option<Block> {
        let index = index?;
        self.blocks
            .iter()
            .rev()
            .find(|(i, _)| *i == index)
            .map(|(_, b)| *b)
    }

    fn merge_usage(&mut self, later: &AnthUsage) -> StreamEvent {
        let u = &mut self.usage;
        let pick = |a: &mut Option<u64>, b: Option<u64>| {
            if b.is_some() {
                *a = b;
            }
        };
        pick(&mut u.input_tokens, later.input_tokens);
        pick(&mut u.output_tokens, later.output_tokens);
        pick(
            &mut u.cache_read_input_tokens,
            later.cache_read_input_tokens,
        );
        pick(
            &mut u.cache_creation_input_tokens,
            later.cache_creation_input_tokens,
        );
        if later.output_tokens_details.is_some() {
            u.output_tokens_details = later.output_tokens_details;
        }
        StreamEvent::Usage(decode_usage(u))
    }

    fn start_block(&mut self, index: u32, b: AnthBlockStartIn<'_>, out: &mut Vec<StreamEvent>) {
        let kind = match b.kind.as_ref() {
            "text" => {
                self.citations.text(b.text.as_deref().unwrap_or_default());
                push_delta(
                    out,
                    b.text
                        .filter(|t| !t.is_empty())
                        .map(|t| Delta::Text(t.into_owned())),
                );
                Block::Text
            }
            "thinking" => {
                let text = b.thinking.filter(|t| !t.is_empty());
                push_delta(out, text.map(|t| Delta::Reasoning(t.into_owned())));
                let sig = b.signature.filter(|s| !s.is_empty());
                push_delta(out, sig.map(Delta::ReasoningSignature));
                Block::Thinking
            }
            "tool_use" => {
                let index = self.tools;
                self.tools += 1;
                push_delta(
                    out,
                    Some(Delta::ToolCallStart {
                        index,
                        id: b.id.unwrap_or_default(),
                        name: b.name.unwrap_or_default(),
                    }),
                );
                // Anthropic opens with `input: {}` and streams the arguments as deltas; an
                // input given whole up front is sent as one fragment.
                let input = b
                    .input
                    .filter(|i| i.as_object().is_some_and(|o| !o.is_empty()));
                push_delta(
                    out,
                    input.map(|i| Delta::ToolCallArgs {
                        index,
                        fragment: i.to_string(),
                    }),
                );
                Block::Tool(index)
            }
            "redacted_thinking" => {
                push_delta(out, b.data.map(Delta::RedactedReasoning));
                Block::Ignored
            }
            // Server tools' calls and results (`server_tool_use`, `web_search_tool_result`,
            // ...) and types to come: no canonical form, so a client of another schema is
            // told what it did not get.
            other => {
                push_delta(out, Some(Delta::Unrepresented(other.to_owned())));
                Block::Ignored
            }
        };
        self.blocks.push((index, kind));
    }
}

fn push_delta(out: &mut Vec<StreamEvent>, delta: Option<Delta>) {
    if let Some(delta) = delta {
        out.push(StreamEvent::Delta { choice: 0, delta });
    }
}

impl StreamDecoder for MessageDecoder {
    fn decode(&mut self, ev: &SseEvent) -> Result<StreamStep, GatewayError> {
        let data = ev.data.trim();
        if data.is_empty() {
            return Ok(StreamStep::Events(Vec::new()));
        }
        let is_error = ev.event.as_deref() == Some("error");
        let e: AnthStreamEventIn<'_> = match serde_json::from_str(data) {
            Ok(e) => e,
            // An error event whose body is not JSON still ends the stream as an error.
            Err(_) if is_error => AnthStreamEventIn::default(),
            Err(e) => return Err(bad_reply(self.name, e)),
        };
        let kind = match e.kind.as_deref().or(ev.event.as_deref()) {
            _ if is_error => "error",
            k => k.unwrap_or(""),
        };
        let mut out = Vec::new();
        match kind {
            "message_start" => {
                let m = e.message.unwrap_or_default();
                self.blocks.clear();
                self.tools = 0;
                out.push(StreamEvent::Start {
                    id: m.id,
                    model: m.model,
                    created: self.created,
                });
                if let Some(u) = &m.usage {
                    out.push(self.merge_usage(u));
                }
            }
            "content_block_start" => {
                if let (Some(index), Some(b)) = (e.index, e.content_block) {
                    self.start_block(index, b, &mut out);
                }
            }
            "content_block_delta" => {
                let block = self.block(e.index);
                let d = e.delta.unwrap_or_default();
                let delta = match (d.kind.as_deref().unwrap_or(""), block) {
                    (_, Some(Block::Ignored)) => None,
                    ("text_delta", _) => d.text.map(|t| {
                        self.citations.text(&t);
                        Delta::Text(t.into_owned())
                    }),
                    ("thinking_delta", _) => d.thinking.map(|t| Delta::Reasoning(t.into_owned())),
                    ("signature_delta", _) => d.signature.map(Delta::ReasoningSignature),
                    ("input_json_delta", Some(Block::Tool(index))) => d
                        .partial_json
                        .filter(|f| !f.is_empty())
                        .map(|f| Delta::ToolCallArgs {
                            index,
                            fragment: f.into_owned(),
                        }),
                    ("citations_delta", _) => {
                        self.citations.cite(super::response::decode_citation(
                            d.citation.as_ref().unwrap_or(&serde_json::Value::Null),
                        ))
                    }
                    // Fragments of blocks never opened, new delta types.
                    _ => None,
                };
                push_delta(
                    &mut out,
                    delta.filter(
                        |d| !matches!(d, Delta::Text(t) | Delta::Reasoning(t) if t.is_empty()),
                    ),
                );
            }
            "message_delta" => {
                let d = e.delta.unwrap_or_default();
                if let Some(r) = d.stop_reason {
                    out.push(StreamEvent::Finish {
                        choice: 0,
                        reason: finish_reason(&r, d.stop_sequence),
                    });
                }
                if let Some(u) = &e.usage {
                    out.push(self.merge_usage(u));
                }
            }
            "message_stop" => return Ok(StreamStep::Done),
            "error" => {
                let err = e.error.unwrap_or_default();
                let msg = if err.message.is_empty() {
                    "error event in stream"
                } else {
                    &err.message
                };
                return Err(GatewayError::from_upstream_status(
                    error_status(&err.kind),
                    format!("{}: {msg}", self.name),
                    None,
                ));
            }
            "content_block_stop" => {
                for d in self.citations.end() {
                    push_delta(&mut out, Some(d));
                }
            }
            // `ping`, and event types added later.
            _ => {}
        }
        Ok(StreamStep::Events(out))
    }
}
