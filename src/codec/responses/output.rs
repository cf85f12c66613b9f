//! The output items of a reply and the response object around them.
//!
//! [`Output`] is built whole from a canonical reply (`from_reply`) or piece by piece by the
//! stream encoder; either way the same item ids appear in every event and in the final
//! response. [`Echo`] is what the response object repeats of the request.

use serde_json::{Value, json};

use super::request::Tooling;
use super::wire::RespRequest;
use crate::schema::{ChatResponse, FinishReason, Part, Usage};

/// A new id with OpenAI's prefix for its kind (`resp`, `msg`, `fc`, `rs`, `ctc`).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

pub fn response_id() -> String {
    new_id("resp")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentKind {
    Text,
    Refusal,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// Reasoning: its summary text and the provider's signature (or encrypted reasoning),
    /// returned as `encrypted_content` so that a later turn can replay it.
    Reasoning {
        id: String,
        text: String,
        signature: Option<String>,
    },
    Message {
        id: String,
        parts: Vec<(ContentKind, String)>,
        /// The `url_citation` annotations of its text, with ranges in that text.
        annotations: Vec<Value>,
    },
    /// A function call, or (`custom`) a free-form tool's call whose `input` is the
    /// `input` argument.
    Call {
        id: String,
        call_id: String,
        name: String,
        /// The `namespace` tool the function belongs to.
        namespace: Option<String>,
        arguments: String,
        custom: bool,
    },
    /// An item the gateway passes on as it came.
    Opaque(Value),
}

impl Item {
    /// A call of the tool the provider knows as `flat_name`, with no arguments yet.
    pub fn call(tooling: &Tooling, call_id: &str, flat_name: &str) -> Self {
        let (name, namespace, custom) = tooling.resolve(flat_name);
        Item::Call {
            id: new_id(if custom { "ctc" } else { "fc" }),
            call_id: call_id.to_owned(),
            name,
            namespace,
            arguments: String::new(),
            custom,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Item::Reasoning { id, .. } | Item::Message { id, .. } | Item::Call { id, .. } => id,
            Item::Opaque(v) => v.get("id").and_then(Value::as_str).unwrap_or(""),
        }
    }

    /// The item as JSON; `done` says whether it is complete.
    pub fn to_json(&self, done: bool) -> Value {
        let status = if done { "completed" } else { "in_progress" };
        match self {
            Item::Reasoning {
                id,
                text,
                signature,
            } => {
                let summary = if text.is_empty() {
                    json!([])
                } else {
                    json!([{"type": "summary_text", "text": text}])
                };
                let mut v = json!({"id": id, "type": "reasoning", "summary": summary});
                if let Some(s) = signature {
                    v["encrypted_content"] = Value::String(s.clone());
                }
                v
            }
            Item::Message {
                id,
                parts,
                annotations,
            } => json!({
                "id": id, "type": "message", "status": status, "role": "assistant",
                "content": parts.iter().map(|(k, t)| {
                    let mut p = part_json(*k, t);
                    if *k == ContentKind::Text && !annotations.is_empty() {
                        p["annotations"] = Value::Array(annotations.clone());
                    }
                    p
                }).collect::<Vec<_>>(),
            }),
            Item::Call {
                id,
                call_id,
                name,
                namespace,
                arguments,
                custom: false,
            } => {
                let mut v = json!({
                    "id": id, "type": "function_call", "status": status,
                    "call_id": call_id, "name": name, "arguments": arguments,
                });
                if let Some(ns) = namespace {
                    v["namespace"] = Value::String(ns.clone());
                }
                v
            }
            Item::Call {
                id,
                call_id,
                name,
                arguments,
                custom: true,
                ..
            } => json!({
                "id": id, "type": "custom_tool_call", "status": status,
                "call_id": call_id, "name": name, "input": custom_input(arguments),
            }),
            Item::Opaque(v) => v.clone(),
        }
    }
}

/// A web source cited by characters `start..end` of an `output_text`, as its annotation.
pub fn url_annotation(c: &crate::schema::Citation, start: usize, end: usize) -> Value {
    json!({"type": "url_citation", "url": c.url, "title": c.title.clone().unwrap_or_default(),
           "start_index": start, "end_index": end})
}

/// A content part of an assistant message.
pub fn part_json(kind: ContentKind, text: &str) -> Value {
    match kind {
        ContentKind::Text => {
            json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
        }
        ContentKind::Refusal => json!({"type": "refusal", "refusal": text}),
    }
}

/// A free-form tool's input, from the `{"input": "..."}` arguments it was called with as a
/// function (the arguments themselves when they are not of that shape).
pub fn custom_input(arguments: &str) -> String {
    serde_json::from_str::<Value>(arguments)
        .ok()
        .and_then(|v| v.get("input").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| arguments.to_owned())
}

/// The output items of a reply.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Output {
    pub items: Vec<Item>,
}

impl Output {
    /// The first choice's parts as items: reasoning, one message per run of text, calls.
    pub fn from_reply(r: &ChatResponse, tooling: &Tooling) -> Self {
        let mut out = Output::default();
        let parts = r.choices.first().map_or(&[][..], |c| &c.message.parts[..]);
        for p in parts {
            match p {
                Part::Text(t) => {
                    out.push_text(ContentKind::Text, &t.text);
                    out.cite(t);
                }
                Part::Reasoning { text, signature } => out.items.push(Item::Reasoning {
                    id: new_id("rs"),
                    text: text.clone(),
                    signature: signature.clone(),
                }),
                Part::RedactedReasoning { data } => out.items.push(Item::Reasoning {
                    id: new_id("rs"),
                    text: String::new(),
                    signature: Some(data.clone()),
                }),
                Part::ToolCall(c) => {
                    let mut call = Item::call(tooling, &c.id, &c.name);
                    if let Item::Call { arguments, .. } = &mut call {
                        arguments.clone_from(&c.arguments);
                    }
                    out.items.push(call);
                }
                Part::Opaque {
                    schema: crate::schema::WireSchema::OpenAiResponses,
                    value,
                } => out.items.push(Item::Opaque(value.clone())),
                _ => {}
            }
        }
        out
    }

    /// Append text to the last message item, or start one.
    fn push_text(&mut self, kind: ContentKind, text: &str) {
        if let Some(Item::Message { parts, .. }) = self.items.last_mut() {
            match parts.last_mut() {
                Some((k, t)) if *k == kind => t.push_str(text),
                _ => parts.push((kind, text.to_owned())),
            }
            return;
        }
        self.items.push(Item::Message {
            id: new_id("msg"),
            parts: vec![(kind, text.to_owned())],
            annotations: Vec::new(),
        });
    }

    /// The web sources `t` cites, as `url_citation` annotations of the message its text was
    /// just added to (ranges in that message's text). Other kinds of citation have no form
    /// here (noted by `codec::note_unsent`).
    fn cite(&mut self, t: &crate::schema::TextPart) {
        if !t.citations.iter().any(crate::schema::Citation::is_web) {
            return;
        }
        let Some(Item::Message {
            parts, annotations, ..
        }) = self.items.last_mut()
        else {
            return;
        };
        let total = parts
            .iter()
            .find(|(k, _)| *k == ContentKind::Text)
            .map_or(0, |(_, text)| text.chars().count());
        let len = t.text.chars().count();
        let offset = total.saturating_sub(len);
        for c in t.citations.iter().filter(|c| c.is_web()) {
            let (start, end) = c.range.unwrap_or((0, len));
            annotations.push(url_annotation(c, offset + start, offset + end));
        }
    }

    pub fn to_json(&self) -> Vec<Value> {
        self.items.iter().map(|i| i.to_json(true)).collect()
    }
}

/// How a response ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    InProgress,
    Completed,
    /// `incomplete_details.reason`: `max_output_tokens` or `content_filter`.
    Incomplete(&'static str),
    /// The error's code and message.
    Failed(&'static str, String),
}

impl Status {
    pub fn of(finish: Option<&FinishReason>) -> Self {
        match finish {
            Some(FinishReason::Length | FinishReason::ContextWindowExceeded) => {
                Status::Incomplete("max_output_tokens")
            }
            Some(FinishReason::ContentFilter) => Status::Incomplete("content_filter"),
            _ => Status::Completed,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Status::InProgress => "in_progress",
            Status::Completed => "completed",
            Status::Incomplete(_) => "incomplete",
            Status::Failed(..) => "failed",
        }
    }
}

pub fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input_tokens,
        "input_tokens_details": {"cached_tokens": u.cache_read_tokens, "cache_write_tokens": u.cache_write_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.total(),
    })
}

/// What the response object repeats of its request (the effective settings).
#[derive(Debug, Clone)]
pub struct Echo {
    fields: serde_json::Map<String, Value>,
    pub store: bool,
    pub previous_response_id: Option<String>,
    /// How the request's tools were reshaped for the provider.
    pub tooling: Tooling,
}

impl Echo {
    pub fn new(w: &RespRequest, tooling: Tooling) -> Self {
        let opt = |v: Option<Value>| v.unwrap_or(Value::Null);
        let mut f = serde_json::Map::new();
        f.insert("instructions".into(), opt(w.instructions.clone()));
        f.insert("max_output_tokens".into(), json!(w.max_output_tokens));
        f.insert("max_tool_calls".into(), json!(w.max_tool_calls));
        f.insert(
            "metadata".into(),
            json!(w.metadata.clone().unwrap_or_default()),
        );
        f.insert(
            "parallel_tool_calls".into(),
            json!(w.parallel_tool_calls.unwrap_or(true)),
        );
        f.insert("previous_response_id".into(), json!(w.previous_response_id));
        let reasoning = w.reasoning.clone().unwrap_or_default();
        f.insert(
            "reasoning".into(),
            json!({"effort": reasoning.effort, "summary": reasoning.summary.or(reasoning.generate_summary)}),
        );
        f.insert(
            "service_tier".into(),
            json!(w.service_tier.as_deref().unwrap_or("default")),
        );
        f.insert("store".into(), json!(w.store.unwrap_or(true)));
        f.insert("temperature".into(), json!(w.temperature.unwrap_or(1.0)));
        let text = w.text.clone().unwrap_or_default();
        let mut text_json =
            json!({"format": text.format.unwrap_or_else(|| json!({"type": "text"}))});
        if let Some(v) = text.verbosity {
            text_json["verbosity"] = Value::String(v);
        }
        f.insert("text".into(), text_json);
        f.insert(
            "tool_choice".into(),
            w.tool_choice.clone().unwrap_or_else(|| json!("auto")),
        );
        // Function tools as the schema requires them: `parameters` and `strict` present.
        let tools: Vec<Value> = w
            .tools
            .iter()
            .flatten()
            .map(|t| {
                let mut t = t.clone();
                if t.get("type").and_then(Value::as_str) == Some("function")
                    && let Some(o) = t.as_object_mut()
                {
                    o.entry("parameters").or_insert(Value::Null);
                    o.entry("strict").or_insert(Value::Null);
                }
                t
            })
            .collect();
        f.insert("tools".into(), Value::Array(tools));
        f.insert("top_logprobs".into(), json!(w.top_logprobs.unwrap_or(0)));
        f.insert("top_p".into(), json!(w.top_p.unwrap_or(1.0)));
        f.insert(
            "truncation".into(),
            json!(w.truncation.as_deref().unwrap_or("disabled")),
        );
        if let Some(user) = &w.user {
            f.insert("user".into(), json!(user));
        }
        f.insert("safety_identifier".into(), json!(w.safety_identifier));
        f.insert("prompt_cache_key".into(), json!(w.prompt_cache_key));
        f.insert("background".into(), json!(false));
        Self {
            fields: f,
            store: w.store.unwrap_or(true),
            previous_response_id: w.previous_response_id.clone(),
            tooling,
        }
    }

    /// The response object.
    pub fn response(
        &self,
        head: &Head,
        status: &Status,
        output: Vec<Value>,
        usage: Option<&Usage>,
    ) -> Value {
        let mut r = serde_json::Map::new();
        r.insert("id".into(), json!(head.id));
        r.insert("object".into(), json!("response"));
        r.insert("created_at".into(), json!(head.created_at));
        r.insert("status".into(), json!(status.as_str()));
        r.insert(
            "completed_at".into(),
            match status {
                Status::Completed => json!(crate::unix_now()),
                _ => Value::Null,
            },
        );
        r.insert(
            "error".into(),
            match status {
                Status::Failed(code, message) => json!({"code": code, "message": message}),
                _ => Value::Null,
            },
        );
        r.insert(
            "incomplete_details".into(),
            match status {
                Status::Incomplete(reason) => json!({"reason": reason}),
                _ => Value::Null,
            },
        );
        r.insert("model".into(), json!(head.model));
        r.insert("output".into(), Value::Array(output));
        for (k, v) in &self.fields {
            r.insert(k.clone(), v.clone());
        }
        if let Some(u) = usage {
            r.insert("usage".into(), usage_json(u));
        }
        Value::Object(r)
    }
}

/// The response's identity.
#[derive(Debug, Clone)]
pub struct Head {
    pub id: String,
    pub created_at: u64,
    pub model: String,
}
