//! Canonical stream events -> the Responses event stream.
//!
//! Order, as OpenAI sends it: `response.created`, `response.in_progress`; then each output
//! item in turn: `output_item.added`, its parts and deltas (`content_part.added`,
//! `output_text.delta`... for a message; `reasoning_summary_part.added`,
//! `reasoning_summary_text.delta`... for reasoning; `function_call_arguments.delta` for a
//! call), their `.done` events, `output_item.done`; last `response.completed` (or
//! `response.incomplete`) with the whole response, or, when the provider fails mid-stream,
//! `error` then `response.failed`. Every event carries `sequence_number`, from 0.
//!
//! A message or reasoning item stays open while deltas of its kind arrive; any other kind
//! closes it. A call stays open until the next call starts or the stream ends, so the
//! argument fragments of a call always land on its own item. A free-form (`custom`) tool's
//! input arrives as JSON arguments `{"input": ...}`, so it is sent whole when its call
//! closes (`custom_tool_call_input.delta` then `.done`).

use bytes::{BufMut, BytesMut};
use serde_json::{Value, json};

use super::output::{
    ContentKind, Echo, Head, Item, Output, Status, custom_input, new_id, part_json,
};
use crate::error::GatewayError;
use crate::schema::{Delta, FinishReason, StreamEvent, Usage};

/// Called once with the final response object (completed, incomplete or failed).
pub type OnDone = Box<dyn FnOnce(&Value) + Send>;

pub struct ResponsesEncoder {
    echo: std::sync::Arc<Echo>,
    head: Head,
    seq: u64,
    started: bool,
    out: Output,
    /// The open message or reasoning item (an index into `out.items`).
    open: Option<usize>,
    /// The open calls: canonical tool-call index -> item index.
    calls: Vec<(u32, usize)>,
    finish: Option<FinishReason>,
    usage: Usage,
    on_done: Option<OnDone>,
    /// A stream relayed as the provider sent it (OpenAI's own): its terminal response.
    raw_final: Option<Value>,
}

impl ResponsesEncoder {
    pub fn new(echo: std::sync::Arc<Echo>, head: Head, on_done: Option<OnDone>) -> Self {
        Self {
            echo,
            head,
            seq: 0,
            started: false,
            out: Output::default(),
            open: None,
            calls: Vec::new(),
            finish: None,
            usage: Usage::default(),
            on_done,
            raw_final: None,
        }
    }

    fn emit(&mut self, out: &mut BytesMut, kind: &str, mut data: Value) {
        data["type"] = Value::String(kind.to_owned());
        data["sequence_number"] = json!(self.seq);
        self.seq += 1;
        out.put_slice(b"event: ");
        out.put_slice(kind.as_bytes());
        out.put_slice(b"\ndata: ");
        let _ = serde_json::to_writer(out.writer(), &data);
        out.put_slice(b"\n\n");
    }

    fn snapshot(&self, status: &Status, usage: Option<&Usage>) -> Value {
        let output = self
            .out
            .items
            .iter()
            .enumerate()
            .map(|(i, item)| item.to_json(!self.is_open(i)))
            .collect();
        self.echo.response(&self.head, status, output, usage)
    }

    fn is_open(&self, i: usize) -> bool {
        self.open == Some(i) || self.calls.iter().any(|(_, j)| *j == i)
    }

    fn start(&mut self, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        let r = self.snapshot(&Status::InProgress, None);
        self.emit(out, "response.created", json!({"response": r}));
        self.emit(out, "response.in_progress", json!({"response": r}));
    }

    /// Open `item` at the end of the output and announce it.
    fn add(&mut self, out: &mut BytesMut, item: Item) -> usize {
        let i = self.out.items.len();
        let json = item.to_json(false);
        self.out.items.push(item);
        self.emit(
            out,
            "response.output_item.added",
            json!({"output_index": i, "item": json}),
        );
        i
    }

    /// Close the open message or reasoning item.
    fn close_open(&mut self, out: &mut BytesMut) {
        let Some(i) = self.open.take() else {
            return;
        };
        let item = self.out.items[i].clone();
        match &item {
            Item::Message { id, parts, .. } => {
                if let Some((k, t)) = parts.last() {
                    self.close_part(out, id, i, parts.len() - 1, *k, t);
                }
            }
            Item::Reasoning { id, text, .. } if !text.is_empty() => {
                let ids = json!({"item_id": id, "output_index": i, "summary_index": 0});
                self.emit(
                    out,
                    "response.reasoning_summary_text.done",
                    with(&ids, "text", json!(text)),
                );
                let part = json!({"type": "summary_text", "text": text});
                self.emit(
                    out,
                    "response.reasoning_summary_part.done",
                    with(&ids, "part", part),
                );
            }
            _ => {}
        }
        self.emit(
            out,
            "response.output_item.done",
            json!({"output_index": i, "item": item.to_json(true)}),
        );
    }

    fn close_part(
        &mut self,
        out: &mut BytesMut,
        id: &str,
        i: usize,
        c: usize,
        kind: ContentKind,
        text: &str,
    ) {
        let ids = json!({"item_id": id, "output_index": i, "content_index": c});
        match kind {
            ContentKind::Text => {
                let mut done = with(&ids, "text", json!(text));
                done["logprobs"] = json!([]);
                self.emit(out, "response.output_text.done", done);
            }
            ContentKind::Refusal => {
                self.emit(
                    out,
                    "response.refusal.done",
                    with(&ids, "refusal", json!(text)),
                );
            }
        }
        let mut part = part_json(kind, text);
        if kind == ContentKind::Text
            && let Some(Item::Message { annotations, .. }) = self.out.items.get(i)
            && !annotations.is_empty()
        {
            part["annotations"] = Value::Array(annotations.clone());
        }
        self.emit(out, "response.content_part.done", with(&ids, "part", part));
    }

    fn close_calls(&mut self, out: &mut BytesMut) {
        for (_, i) in std::mem::take(&mut self.calls) {
            let item = self.out.items[i].clone();
            if let Item::Call {
                id,
                name,
                arguments,
                custom,
                ..
            } = &item
            {
                let ids = json!({"item_id": id, "output_index": i});
                if *custom {
                    let input = custom_input(arguments);
                    self.emit(
                        out,
                        "response.custom_tool_call_input.delta",
                        with(&ids, "delta", json!(input)),
                    );
                    self.emit(
                        out,
                        "response.custom_tool_call_input.done",
                        with(&ids, "input", json!(input)),
                    );
                } else {
                    let mut done = with(&ids, "arguments", json!(arguments));
                    done["name"] = json!(name);
                    self.emit(out, "response.function_call_arguments.done", done);
                }
            }
            self.emit(
                out,
                "response.output_item.done",
                json!({"output_index": i, "item": item.to_json(true)}),
            );
        }
    }

    fn text(&mut self, out: &mut BytesMut, kind: ContentKind, delta: &str) {
        let i = match self.open {
            Some(i) if matches!(self.out.items[i], Item::Message { .. }) => i,
            _ => {
                self.close_open(out);
                let i = self.add(
                    out,
                    Item::Message {
                        id: new_id("msg"),
                        parts: Vec::new(),
                        annotations: Vec::new(),
                    },
                );
                self.open = Some(i);
                i
            }
        };
        let Item::Message { id, parts, .. } = &self.out.items[i] else {
            return;
        };
        let id = id.clone();
        let last = parts.last().map(|(k, t)| (*k, t.clone()));
        let c = match last {
            Some((k, _)) if k == kind => parts.len() - 1,
            other => {
                if let Some((k, t)) = other {
                    self.close_part(out, &id, i, parts.len() - 1, k, &t);
                }
                let c = match &mut self.out.items[i] {
                    Item::Message { parts, .. } => {
                        parts.push((kind, String::new()));
                        parts.len() - 1
                    }
                    _ => return,
                };
                let ids = json!({"item_id": id, "output_index": i, "content_index": c});
                self.emit(
                    out,
                    "response.content_part.added",
                    with(&ids, "part", part_json(kind, "")),
                );
                c
            }
        };
        if let Item::Message { parts, .. } = &mut self.out.items[i] {
            parts[c].1.push_str(delta);
        }
        let ids = json!({"item_id": id, "output_index": i, "content_index": c});
        match kind {
            ContentKind::Text => {
                let mut d = with(&ids, "delta", json!(delta));
                d["logprobs"] = json!([]);
                self.emit(out, "response.output_text.delta", d);
            }
            ContentKind::Refusal => self.emit(
                out,
                "response.refusal.delta",
                with(&ids, "delta", json!(delta)),
            ),
        }
    }

    /// The open reasoning item, opened if need be.
    fn reasoning(&mut self, out: &mut BytesMut) -> usize {
        if let Some(i) = self.open
            && matches!(self.out.items[i], Item::Reasoning { .. })
        {
            return i;
        }
        self.close_open(out);
        let i = self.add(
            out,
            Item::Reasoning {
                id: new_id("rs"),
                text: String::new(),
                signature: None,
            },
        );
        self.open = Some(i);
        i
    }

    /// A web source the last `chars` characters of the open message's text cite:
    /// `output_text.annotation.added`, and the annotation kept for the item's `done` and the
    /// final response.
    fn cite(&mut self, out: &mut BytesMut, c: &crate::schema::Citation, chars: usize) {
        let Some(i) = self.open else {
            return;
        };
        let Item::Message {
            id,
            parts,
            annotations,
        } = &mut self.out.items[i]
        else {
            return;
        };
        let Some(content_index) = parts.iter().position(|(k, _)| *k == ContentKind::Text) else {
            return;
        };
        let end = parts[content_index].1.chars().count();
        let annotation = super::output::url_annotation(c, end.saturating_sub(chars), end);
        annotations.push(annotation.clone());
        let d = json!({"item_id": id.clone(), "output_index": i, "content_index": content_index,
            "annotation_index": annotations.len() - 1, "annotation": annotation});
        self.emit(out, "response.output_text.annotation.added", d);
    }

    pub fn encode(&mut self, ev: &StreamEvent, out: &mut BytesMut) {
        match ev {
            StreamEvent::Start { model, .. } => {
                if self.head.model.is_empty() {
                    self.head.model.clone_from(model);
                }
                self.start(out);
            }
            StreamEvent::Usage(u) => self.usage.merge(u),
            StreamEvent::Raw(b) => {
                out.extend_from_slice(b);
                if self.on_done.is_some() {
                    self.raw_final = self.raw_final.take().or_else(|| terminal_response(b));
                }
            }
            StreamEvent::Finish { choice: 0, reason } => self.finish = Some(reason.clone()),
            // The Responses API has one output.
            StreamEvent::Finish { .. } | StreamEvent::Delta { choice: 1.., .. } => {}
            StreamEvent::Delta { delta, .. } => {
                self.start(out);
                match delta {
                    Delta::Text(t) => self.text(out, ContentKind::Text, t),
                    Delta::Refusal(t) => self.text(out, ContentKind::Refusal, t),
                    Delta::Reasoning(t) => {
                        let i = self.reasoning(out);
                        let Item::Reasoning { id, text, .. } = &mut self.out.items[i] else {
                            return;
                        };
                        let first = text.is_empty();
                        text.push_str(t);
                        let ids =
                            json!({"item_id": id.clone(), "output_index": i, "summary_index": 0});
                        if first {
                            let part = json!({"type": "summary_text", "text": ""});
                            self.emit(
                                out,
                                "response.reasoning_summary_part.added",
                                with(&ids, "part", part),
                            );
                        }
                        self.emit(
                            out,
                            "response.reasoning_summary_text.delta",
                            with(&ids, "delta", json!(t)),
                        );
                    }
                    Delta::ReasoningSignature(s) => {
                        let i = self.reasoning(out);
                        if let Item::Reasoning { signature, .. } = &mut self.out.items[i] {
                            signature.get_or_insert_default().push_str(s);
                        }
                    }
                    Delta::Unrepresented(_) => {}
                    Delta::Citation { citation, chars } => self.cite(out, citation, *chars),
                    // An item of its own, its data as `encrypted_content` (as a whole
                    // reply's redacted reasoning is), closed at once.
                    Delta::RedactedReasoning(data) => {
                        self.close_open(out);
                        let i = self.reasoning(out);
                        if let Item::Reasoning { signature, .. } = &mut self.out.items[i] {
                            *signature = Some(data.clone());
                        }
                        self.close_open(out);
                    }
                    Delta::ToolCallStart { index, id, name } => {
                        self.close_open(out);
                        self.close_calls(out);
                        let item = Item::call(&self.echo.tooling, id, name);
                        let i = self.add(out, item);
                        self.calls.push((*index, i));
                    }
                    Delta::ToolCallArgs { index, fragment } => {
                        let Some(&(_, i)) = self.calls.iter().find(|(k, _)| k == index) else {
                            return;
                        };
                        let Item::Call {
                            id,
                            arguments,
                            custom,
                            ..
                        } = &mut self.out.items[i]
                        else {
                            return;
                        };
                        arguments.push_str(fragment);
                        if !*custom {
                            let d = json!({"item_id": id.clone(), "output_index": i, "delta": fragment});
                            self.emit(out, "response.function_call_arguments.delta", d);
                        }
                    }
                }
            }
        }
    }

    fn close_all(&mut self, out: &mut BytesMut) {
        self.start(out);
        self.close_open(out);
        self.close_calls(out);
    }

    /// The normal end: every item closed, then `response.completed` (or `.incomplete`).
    pub fn finish(&mut self, out: &mut BytesMut) {
        self.close_all(out);
        let status = Status::of(self.finish.as_ref());
        let r = self.snapshot(&status, Some(&self.usage));
        let kind = match status {
            Status::Incomplete(_) => "response.incomplete",
            _ => "response.completed",
        };
        self.emit(out, kind, json!({"response": r}));
        if let Some(done) = self.on_done.take() {
            done(&r);
        }
    }

    /// The end of a stream relayed raw: its own terminal event was relayed already.
    pub fn finish_raw(&mut self) {
        if let (Some(r), Some(done)) = (self.raw_final.take(), self.on_done.take()) {
            done(&r);
        }
    }

    /// A failure mid-stream: `error`, then `response.failed` with what was produced.
    pub fn error(&mut self, err: &GatewayError, out: &mut BytesMut) {
        self.close_all(out);
        let code = match err.kind {
            crate::error::ErrorKind::RateLimited => "rate_limit_exceeded",
            _ => "server_error",
        };
        let message = err.message.clone();
        self.emit(
            out,
            "error",
            json!({"code": code, "message": message, "param": null}),
        );
        let r = self.snapshot(&Status::Failed(code, message), Some(&self.usage));
        self.emit(out, "response.failed", json!({"response": r}));
        if let Some(done) = self.on_done.take() {
            done(&r);
        }
    }
}

/// The response carried by a relayed terminal event (`response.completed`, `.incomplete`,
/// `.failed`), if `event` is one.
fn terminal_response(event: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(event).ok()?;
    if ![
        "response.completed",
        "response.incomplete",
        "response.failed",
    ]
    .iter()
    .any(|t| text.contains(t))
    {
        return None;
    }
    let data = text.lines().find_map(|l| l.strip_prefix("data:"))?;
    let v: Value = serde_json::from_str(data.trim()).ok()?;
    let kind = v.get("type").and_then(Value::as_str)?;
    matches!(
        kind,
        "response.completed" | "response.incomplete" | "response.failed"
    )
    .then(|| v.get("response").cloned())
    .flatten()
}

/// `ids` with one more field.
fn with(ids: &Value, key: &str, value: Value) -> Value {
    let mut v = ids.clone();
    v[key] = value;
    v
}
