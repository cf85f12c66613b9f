//! Canonical stream events -> Anthropic Messages SSE.
//!
//! Anthropic's stream is block-structured: `message_start`, then for each content block a
//! `content_block_start`, its deltas and a `content_block_stop`, with indexes counting up
//! from 0; then `message_delta` (stop reason and final usage) and `message_stop`. Canonical
//! events are flat deltas, so the encoder keeps the open block and opens a new one whenever
//! the kind changes (text, thinking, each tool call). Nothing is buffered beyond that state.

use bytes::{BufMut, BytesMut};
use serde_json::{Value, json};

use super::response::{error_body, message_id, stop_reason, tool_use_id, usage_json};
use crate::error::GatewayError;
use crate::schema::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
    /// A tool call, by its canonical index.
    Tool(u32),
}

#[derive(Debug, Default)]
pub struct MessageEncoder {
    started: bool,
    id: String,
    model: String,
    /// The open block and its index.
    open: Option<(Open, usize)>,
    next_index: usize,
    tools_seen: usize,
    finish: Option<FinishReason>,
    usage: Usage,
}

fn event(out: &mut BytesMut, name: &str, data: &Value) {
    out.put_slice(b"event: ");
    out.put_slice(name.as_bytes());
    out.put_slice(b"\ndata: ");
    let _ = serde_json::to_writer(out.writer(), data);
    out.put_slice(b"\n\n");
}

impl MessageEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn start(&mut self, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        let message = json!({
            "id": message_id(&self.id), "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": null, "stop_sequence": null, "usage": usage_json(&self.usage),
        });
        event(
            out,
            "message_start",
            &json!({"type": "message_start", "message": message}),
        );
        event(out, "ping", &json!({"type": "ping"}));
    }

    fn close(&mut self, out: &mut BytesMut) {
        if let Some((_, index)) = self.open.take() {
            event(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            );
        }
    }

    /// Make `kind` the open block, opening it with `block` when it is not.
    fn ensure(&mut self, kind: Open, block: impl FnOnce() -> Value, out: &mut BytesMut) -> usize {
        if let Some((k, index)) = self.open
            && k == kind
        {
            return index;
        }
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((kind, index));
        event(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block()}),
        );
        index
    }

    fn delta(out: &mut BytesMut, index: usize, delta: Value) {
        event(
            out,
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
        );
    }

    pub fn encode(&mut self, ev: &StreamEvent, out: &mut BytesMut) {
        match ev {
            StreamEvent::Start { id, model, .. } => {
                self.id.clone_from(id);
                self.model.clone_from(model);
                self.start(out);
            }
            StreamEvent::Usage(u) => self.usage.merge(u),
            StreamEvent::Raw(b) => out.extend_from_slice(b),
            StreamEvent::Finish { choice: 0, reason } => self.finish = Some(reason.clone()),
            // Anthropic has one choice.
            StreamEvent::Finish { .. } | StreamEvent::Delta { choice: 1.., .. } => {}
            StreamEvent::Delta { delta, .. } => {
                self.start(out);
                match delta {
                    Delta::Text(t) | Delta::Refusal(t) => {
                        let i =
                            self.ensure(Open::Text, || json!({"type": "text", "text": ""}), out);
                        Self::delta(out, i, json!({"type": "text_delta", "text": t}));
                    }
                    Delta::Reasoning(t) => {
                        let i = self.ensure(
                            Open::Thinking,
                            || json!({"type": "thinking", "thinking": "", "signature": ""}),
                            out,
                        );
                        Self::delta(out, i, json!({"type": "thinking_delta", "thinking": t}));
                    }
                    Delta::ReasoningSignature(s) => {
                        let i = self.ensure(
                            Open::Thinking,
                            || json!({"type": "thinking", "thinking": "", "signature": ""}),
                            out,
                        );
                        Self::delta(out, i, json!({"type": "signature_delta", "signature": s}));
                    }
                    Delta::Unrepresented(_) | Delta::Citation { .. } => {}
                    // A block of its own, whole in its start event, as Anthropic streams it.
                    Delta::RedactedReasoning(data) => {
                        self.close(out);
                        let index = self.next_index;
                        self.next_index += 1;
                        event(
                            out,
                            "content_block_start",
                            &json!({"type": "content_block_start", "index": index,
                                    "content_block": {"type": "redacted_thinking", "data": data}}),
                        );
                        event(
                            out,
                            "content_block_stop",
                            &json!({"type": "content_block_stop", "index": index}),
                        );
                    }
                    Delta::ToolCallStart { index, id, name } => {
                        let id = tool_use_id(id, self.tools_seen);
                        self.tools_seen += 1;
                        self.close(out);
                        self.ensure(
                            Open::Tool(*index),
                            || json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                            out,
                        );
                    }
                    Delta::ToolCallArgs { index, fragment } => {
                        let i = self.ensure(
                            Open::Tool(*index),
                            || json!({"type": "tool_use", "id": tool_use_id("", *index as usize), "name": "", "input": {}}),
                            out,
                        );
                        Self::delta(
                            out,
                            i,
                            json!({"type": "input_json_delta", "partial_json": fragment}),
                        );
                    }
                }
            }
        }
    }

    /// The normal end: close the open block, then `message_delta` with the stop reason and
    /// final usage, then `message_stop`.
    pub fn finish(&mut self, out: &mut BytesMut) {
        self.start(out);
        self.close(out);
        let stop_sequence = match &self.finish {
            Some(FinishReason::StopSequence(Some(s))) => Value::String(s.clone()),
            _ => Value::Null,
        };
        event(
            out,
            "message_delta",
            &json!({"type": "message_delta",
                    "delta": {"stop_reason": stop_reason(self.finish.as_ref()), "stop_sequence": stop_sequence},
                    "usage": usage_json(&self.usage)}),
        );
        event(out, "message_stop", &json!({"type": "message_stop"}));
    }

    /// A failure after the stream started: `event: error`, then the stream ends.
    pub fn error(&mut self, e: &GatewayError, out: &mut BytesMut) {
        event(out, "error", &error_body(e));
    }
}
