//! Canonical stream events -> Gemini's stream: each chunk a whole `GenerateContentResponse`
//! carrying the new parts, the last one with `finishReason` and `usageMetadata`.
//!
//! With `alt=sse` each chunk is an SSE event (`data: {...}` and a blank line, `\r\n` as
//! Google writes them); without it the chunks are the elements of one JSON array, written as
//! they come. A function call is sent whole (Gemini has no argument deltas): its fragments
//! are gathered until the next part or the end. A reasoning signature rides on the part that
//! follows the thinking, as Gemini's `thoughtSignature` does.

use bytes::{BufMut, BytesMut};
use serde_json::{Value, json};

use super::response::{call_part, error_body, finish_reason, usage_json};
use crate::error::GatewayError;
use crate::schema::*;

#[derive(Debug, Default)]
pub struct GeminiEncoder {
    sse: bool,
    /// Array mode: the opening `[` is written.
    opened: bool,
    id: String,
    model: String,
    /// The call being gathered: (canonical index, call).
    call: Option<(u32, ToolCall)>,
    /// A signature waiting for the next part.
    signature: Option<String>,
    finish: Option<FinishReason>,
    usage: Usage,
}

impl GeminiEncoder {
    /// `sse`: `alt=sse` was asked for.
    pub fn new(sse: bool, model: &str) -> Self {
        Self {
            sse,
            model: model.to_owned(),
            ..Self::default()
        }
    }

    pub fn is_sse(&self) -> bool {
        self.sse
    }

    fn write(&mut self, out: &mut BytesMut, v: &Value) {
        if self.sse {
            out.put_slice(b"data: ");
            let _ = serde_json::to_writer(out.writer(), v);
            out.put_slice(b"\r\n\r\n");
        } else {
            out.put_slice(if self.opened { b",\r\n" } else { b"[" });
            self.opened = true;
            let _ = serde_json::to_writer(out.writer(), v);
        }
    }

    fn chunk(&mut self, out: &mut BytesMut, parts: Vec<Value>, last: bool) {
        let mut cand = json!({"content": {"role": "model", "parts": parts}, "index": 0});
        let mut v = json!({"candidates": [], "modelVersion": self.model, "responseId": self.id});
        if last {
            cand["finishReason"] = json!(finish_reason(
                self.finish.as_ref().unwrap_or(&FinishReason::Stop)
            ));
            v["usageMetadata"] = usage_json(&self.usage);
        }
        v["candidates"] = json!([cand]);
        self.write(out, &v);
    }

    /// A part, with a pending signature attached.
    fn part(&mut self, mut p: Value) -> Value {
        if let Some(s) = self.signature.take() {
            p["thoughtSignature"] = json!(s);
        }
        p
    }

    /// Send the gathered call, if any.
    fn flush_call(&mut self, out: &mut BytesMut) {
        if let Some((_, call)) = self.call.take() {
            let p = self.part(call_part(&call));
            self.chunk(out, vec![p], false);
        }
    }

    pub fn encode(&mut self, ev: &StreamEvent, out: &mut BytesMut) {
        match ev {
            StreamEvent::Start { id, model, .. } => {
                self.id.clone_from(id);
                if !model.is_empty() {
                    self.model.clone_from(model);
                }
            }
            StreamEvent::Usage(u) => self.usage.merge(u),
            // A Gemini provider's own chunk (SSE): as it came, or as an array element.
            StreamEvent::Raw(b) if self.sse => out.extend_from_slice(b),
            StreamEvent::Raw(b) => {
                let text = String::from_utf8_lossy(b);
                let data: String = text
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect::<Vec<_>>()
                    .join("\n");
                if let Ok(v) = serde_json::from_str::<Value>(&data) {
                    self.write(out, &v);
                }
            }
            StreamEvent::Finish { choice: 0, reason } => self.finish = Some(reason.clone()),
            StreamEvent::Finish { .. } | StreamEvent::Delta { choice: 1.., .. } => {}
            StreamEvent::Delta { delta, .. } => match delta {
                Delta::Text(t) | Delta::Refusal(t) => {
                    self.flush_call(out);
                    let p = self.part(json!({"text": t}));
                    self.chunk(out, vec![p], false);
                }
                Delta::Reasoning(t) => {
                    self.flush_call(out);
                    self.chunk(out, vec![json!({"text": t, "thought": true})], false);
                }
                Delta::ReasoningSignature(s) => {
                    self.signature.get_or_insert_default().push_str(s);
                }
                // Gemini has no form for these (the relay notes them, `codec::unsent_delta`).
                Delta::RedactedReasoning(_) | Delta::Unrepresented(_) | Delta::Citation { .. } => {}
                Delta::ToolCallStart { index, id, name } => {
                    self.flush_call(out);
                    self.call = Some((
                        *index,
                        ToolCall {
                            id: id.clone(),
                            name: name.clone(),
                            arguments: String::new(),
                        },
                    ));
                }
                Delta::ToolCallArgs { index, fragment } => {
                    if let Some((i, call)) = &mut self.call
                        && i == index
                    {
                        call.arguments.push_str(fragment);
                    }
                }
            },
        }
    }

    /// The last chunk: the gathered call or an empty text, the finish reason and the usage.
    pub fn finish(&mut self, out: &mut BytesMut) {
        let parts = match self.call.take() {
            Some((_, call)) => vec![self.part(call_part(&call))],
            None => vec![self.part(json!({"text": ""}))],
        };
        self.chunk(out, parts, true);
        self.close(out);
    }

    /// The end of a stream relayed raw (a Gemini provider's own chunks).
    pub fn finish_raw(&mut self, out: &mut BytesMut) {
        self.close(out);
    }

    fn close(&mut self, out: &mut BytesMut) {
        if !self.sse {
            out.put_slice(if self.opened { b"]" } else { b"[]" });
            self.opened = true;
        }
    }

    /// A failure mid-stream: one more chunk holding Google's error object.
    pub fn error(&mut self, err: &GatewayError, out: &mut BytesMut) {
        self.flush_call(out);
        let v = error_body(err);
        self.write(out, &v);
        self.close(out);
    }
}
