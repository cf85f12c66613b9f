//! Amazon Bedrock's Converse API, the `bedrock` provider's wire format: canonical requests
//! encoded as `ConverseRequest` bodies, `ConverseResponse` and the ConverseStream events
//! (already unframed from AWS's event stream, see `providers::eventstream`) decoded.
//!
//! Converse is close to Anthropic's Messages: roles alternate strictly (consecutive turns of
//! one role are merged, tool results go in the user turn), system text is a list of blocks,
//! tool calls are `toolUse` blocks with object input, results `toolResult` blocks with a
//! status, reasoning is `reasoningContent` with its signature. Images and documents travel as
//! base64 `bytes`; URLs cannot (Bedrock reads only bytes and S3), so they are dropped with a
//! warning. What Converse has no field for (top-k, thinking for Claude) goes in
//! `additionalModelRequestFields`, as AWS documents for each model family.

use serde_json::{Value, json};

use super::Warnings;
use crate::error::{ErrorKind, GatewayError};
use crate::schema::*;

fn image_format(media_type: &str) -> Option<&'static str> {
    Some(match media_type {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => return None,
    })
}

fn document_format(media_type: &str, filename: Option<&str>) -> &'static str {
    let ext = filename
        .and_then(|f| f.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase());
    match (media_type, ext.as_deref()) {
        ("text/csv", _) | (_, Some("csv")) => "csv",
        ("text/html", _) | (_, Some("html")) => "html",
        ("text/plain", _) | (_, Some("txt")) => "txt",
        ("text/markdown", _) | (_, Some("md")) => "md",
        (_, Some("docx")) => "docx",
        (_, Some("xlsx")) => "xlsx",
        _ => "pdf",
    }
}

/// The thinking budget for a Claude model on Bedrock, under the rules Anthropic's API sets
/// (as the `anthropic` provider applies them): none when thinking is off, with a forced tool
/// choice, or when the tool turn being answered has no signed reasoning to replay; at least
/// 1,024 tokens.
fn claude_thinking(req: &ChatRequest, r: &Reasoning, w: &mut Warnings) -> Option<u64> {
    use crate::codec::anthropic::{MIN_THINKING_BUDGET, thinking_budget};
    let budget = match (r.effort, r.budget_tokens) {
        (Some(ReasoningEffort::None), _) => return None,
        (_, Some(b)) => b,
        (Some(e), None) => thinking_budget(e).unwrap_or(MIN_THINKING_BUDGET),
        (None, None) => return None,
    };
    if matches!(
        req.tool_choice,
        Some(ToolChoice::Required | ToolChoice::Tool(_))
    ) {
        w.push("thinking dropped with forced tool_choice for bedrock");
        return None;
    }
    let last_call_turn = req.messages.iter().rev().find(|m| {
        m.role == Role::Assistant && m.parts.iter().any(|p| matches!(p, Part::ToolCall(_)))
    });
    if let Some(turn) = last_call_turn
        && !turn.parts.iter().any(|p| {
            matches!(
                p,
                Part::Reasoning {
                    signature: Some(_),
                    ..
                } | Part::RedactedReasoning { .. }
            )
        })
    {
        w.push("thinking dropped for a tool turn without signed reasoning for bedrock");
        return None;
    }
    Some(budget.max(MIN_THINKING_BUDGET))
}

pub fn encode_request(req: &ChatRequest, model: &str, w: &mut Warnings) -> Value {
    let (system, messages) = encode_turns(req, w);
    let mut body = json!({"messages": messages});
    if !system.is_empty() {
        body["system"] = json!(system);
    }
    let (inference, additional) = inference_config(req, model, w);
    if !inference.is_empty() {
        body["inferenceConfig"] = Value::Object(inference);
    }
    if !additional.is_empty() {
        body["additionalModelRequestFields"] = Value::Object(additional);
    }
    if let Some(config) = tool_config(req, w) {
        body["toolConfig"] = config;
    }
    if matches!(
        req.response_format,
        Some(ResponseFormat::JsonObject | ResponseFormat::JsonSchema { .. })
    ) {
        w.push("response_format dropped for bedrock");
    }
    for (set, what) in [
        (req.sampling.seed.is_some(), "seed"),
        (req.sampling.presence_penalty.is_some(), "presence_penalty"),
        (
            req.sampling.frequency_penalty.is_some(),
            "frequency_penalty",
        ),
        (req.sampling.n.is_some_and(|n| n > 1), "n"),
        (req.sampling.logit_bias.is_some(), "logit_bias"),
        (req.sampling.logprobs.is_some(), "logprobs"),
        (req.user.is_some(), "user"),
    ] {
        if set {
            w.push(format!("{what} dropped for bedrock"));
        }
    }
    body
}

/// The system text and the turns, consecutive turns of one role merged (Bedrock requires
/// strict alternation).
fn encode_turns(req: &ChatRequest, w: &mut Warnings) -> (Vec<Value>, Vec<Value>) {
    let mut system = Vec::new();
    let mut messages: Vec<Value> = Vec::new();
    let mut push = |role: &str, blocks: Vec<Value>| {
        if blocks.is_empty() {
            return;
        }
        match messages.last_mut() {
            Some(m) if m["role"] == role => {
                if let Some(c) = m["content"].as_array_mut() {
                    c.extend(blocks);
                }
            }
            _ => messages.push(json!({"role": role, "content": blocks})),
        }
    };
    for m in &req.messages {
        match m.role {
            Role::System | Role::Developer => {
                for p in &m.parts {
                    if let Part::Text(t) = p
                        && !t.text.is_empty()
                    {
                        system.push(json!({"text": t.text}));
                    }
                }
            }
            Role::Assistant => {
                let blocks = m
                    .parts
                    .iter()
                    .filter_map(|p| assistant_block(p, w))
                    .collect();
                push("assistant", blocks);
            }
            Role::User | Role::Tool => {
                let blocks = m.parts.iter().filter_map(|p| user_block(p, w)).collect();
                push("user", blocks);
            }
        }
    }
    (system, messages)
}

type Fields = serde_json::Map<String, Value>;

/// `inferenceConfig` and `additionalModelRequestFields`: the sampling parameters Converse
/// names, then what only the model takes (`top_k`, Claude's thinking, a reasoning effort).
fn inference_config(req: &ChatRequest, model: &str, w: &mut Warnings) -> (Fields, Fields) {
    let mut inference = serde_json::Map::new();
    if let Some(n) = req.max_output_tokens {
        inference.insert("maxTokens".into(), json!(n));
    }
    if let Some(t) = req.sampling.temperature {
        inference.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.sampling.top_p {
        // Claude 4.x takes one of the two (Anthropic's rule, below).
        if model.contains("anthropic.claude") && req.sampling.temperature.is_some() {
            w.push("top_p dropped with temperature for bedrock");
        } else {
            inference.insert("topP".into(), json!(p));
        }
    }
    if !req.stop.is_empty() {
        inference.insert("stopSequences".into(), json!(req.stop));
    }
    let mut additional = serde_json::Map::new();
    if let Some(k) = req.sampling.top_k {
        additional.insert("top_k".into(), json!(k));
    }
    let claude = model.contains("anthropic.claude");
    if let Some(r) = &req.reasoning {
        if claude {
            if let Some(budget) = claude_thinking(req, r, w) {
                let max = req.max_output_tokens.unwrap_or(budget.saturating_add(4096));
                let budget = if budget >= max {
                    let fit = (max / 2).max(1024);
                    if fit >= max {
                        w.push("thinking dropped as maxTokens is under 1025 for bedrock");
                        0
                    } else {
                        w.push(format!("thinking budget {budget}->{fit} for bedrock"));
                        fit
                    }
                } else {
                    budget
                };
                if budget > 0 {
                    additional.insert(
                        "thinking".into(),
                        json!({"type": "enabled", "budget_tokens": budget}),
                    );
                    inference.insert("maxTokens".into(), json!(max));
                    // Claude thinks only at its default temperature.
                    for k in ["temperature", "topP"] {
                        if inference.remove(k).is_some() {
                            w.push(format!("{k} dropped with thinking for bedrock"));
                        }
                    }
                }
            }
        } else if let Some(e) = r.effort {
            additional.insert("reasoning_effort".into(), json!(e.as_str()));
        }
    }
    (inference, additional)
}

/// `toolConfig`, unless the request has no tools or forbids them.
fn tool_config(req: &ChatRequest, w: &mut Warnings) -> Option<Value> {
    if !req.tools.is_empty() && req.tool_choice != Some(ToolChoice::None) {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                let mut schema = t.parameters.clone();
                if let Some(o) = schema.as_object_mut() {
                    o.remove("$schema");
                }
                let mut spec = json!({"name": t.name, "inputSchema": {"json": schema}});
                if let Some(d) = t.description.as_deref().filter(|d| !d.is_empty()) {
                    spec["description"] = json!(d);
                }
                json!({"toolSpec": spec})
            })
            .collect();
        let mut config = json!({"tools": tools});
        match &req.tool_choice {
            Some(ToolChoice::Auto) => config["toolChoice"] = json!({"auto": {}}),
            Some(ToolChoice::Required) => config["toolChoice"] = json!({"any": {}}),
            Some(ToolChoice::Tool(n)) => config["toolChoice"] = json!({"tool": {"name": n}}),
            Some(ToolChoice::None) | None => {}
        }
        return Some(config);
    } else if req.tool_choice == Some(ToolChoice::None) && !req.tools.is_empty() {
        w.push("tools dropped for bedrock: tool_choice none");
    }
    None
}

fn assistant_block(p: &Part, w: &mut Warnings) -> Option<Value> {
    Some(match p {
        Part::Text(t) if t.text.is_empty() => return None,
        Part::Text(t) => json!({"text": t.text}),
        Part::ToolCall(c) => {
            let input: Value = serde_json::from_str(&c.arguments)
                .ok()
                .filter(Value::is_object)
                .unwrap_or_else(|| json!({}));
            json!({"toolUse": {"toolUseId": tool_id(&c.id), "name": c.name, "input": input}})
        }
        Part::Reasoning { text, signature } => {
            let mut r = json!({"text": text});
            if let Some(s) = signature {
                r["signature"] = json!(s);
            }
            json!({"reasoningContent": {"reasoningText": r}})
        }
        Part::RedactedReasoning { data } => json!({"reasoningContent": {"redactedContent": data}}),
        other => return user_block(other, w),
    })
}

/// Bedrock tool-use ids: `[a-zA-Z0-9_-]+`, up to 64 characters; others are mapped by a
/// stable hash so that a call and its result still match.
fn tool_id(id: &str) -> String {
    if !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return id.to_owned();
    }
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(id.as_bytes());
    format!(
        "tooluse_{}",
        h.iter()
            .take(12)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

fn user_block(p: &Part, w: &mut Warnings) -> Option<Value> {
    Some(match p {
        Part::Text(t) if t.text.is_empty() => return None,
        Part::Text(t) => json!({"text": t.text}),
        Part::Image(ImagePart {
            source: MediaSource::Base64 { media_type, data },
            ..
        }) => match image_format(media_type) {
            Some(format) => json!({"image": {"format": format, "source": {"bytes": data}}}),
            None => {
                w.push(format!("image of type {media_type} dropped for bedrock"));
                return None;
            }
        },
        Part::File(FilePart {
            source: FileSource::Media(MediaSource::Base64 { media_type, data }),
            filename,
        }) => json!({"document": {
            "format": document_format(media_type, filename.as_deref()),
            // Bedrock document names: letters, digits, spaces, hyphens, brackets.
            "name": filename.as_deref().map_or_else(|| "document".to_owned(), |f| f.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '(' | ')' | '[' | ']')).collect()),
            "source": {"bytes": data},
        }}),
        Part::Image(_) | Part::File(_) => {
            w.push("media by URL dropped for bedrock: it reads bytes only");
            return None;
        }
        Part::ToolResult(r) => {
            let mut content: Vec<Value> = r
                .content
                .iter()
                .filter_map(|p| match p {
                    Part::Text(t) => Some(json!({"text": t.text})),
                    other => user_block(other, w),
                })
                .collect();
            if content.is_empty() {
                content.push(json!({"text": ""}));
            }
            let status = if r.is_error { "error" } else { "success" };
            json!({"toolResult": {"toolUseId": tool_id(&r.call_id), "content": content, "status": status}})
        }
        Part::Audio { .. } => {
            w.push("audio dropped for bedrock");
            return None;
        }
        Part::ToolCall(_) | Part::Reasoning { .. } | Part::RedactedReasoning { .. } => return None,
        Part::Opaque { .. } => {
            w.push("unknown part dropped for bedrock");
            return None;
        }
    })
}

pub fn decode_finish(reason: &str) -> FinishReason {
    match reason {
        "end_turn" => FinishReason::Stop,
        "tool_use" => FinishReason::ToolCalls,
        "max_tokens" => FinishReason::Length,
        "stop_sequence" => FinishReason::StopSequence(None),
        "guardrail_intervened" | "content_filtered" => FinishReason::ContentFilter,
        "model_context_window_exceeded" => FinishReason::ContextWindowExceeded,
        other => FinishReason::Other(other.to_owned()),
    }
}

pub fn decode_usage(u: &Value) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let read = n("cacheReadInputTokens");
    let write = n("cacheWriteInputTokens");
    Usage {
        // Bedrock, like Anthropic, counts cached input apart from `inputTokens`.
        input_tokens: n("inputTokens").saturating_add(read).saturating_add(write),
        output_tokens: n("outputTokens"),
        cache_read_tokens: read,
        cache_write_tokens: write,
        reasoning_tokens: 0,
    }
}

fn bad(e: impl std::fmt::Display) -> GatewayError {
    crate::codec::upstream_stream::bad_reply("bedrock", e)
}

pub fn decode_response(body: &[u8]) -> Result<ChatResponse, GatewayError> {
    let v: Value = serde_json::from_slice(body).map_err(bad)?;
    let content = v
        .pointer("/output/message/content")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no `output.message.content`"))?;
    let mut parts = Vec::new();
    for b in content {
        if let Some(t) = b.get("text").and_then(Value::as_str) {
            parts.push(Part::text(t));
        } else if let Some(u) = b.get("toolUse") {
            parts.push(Part::ToolCall(ToolCall {
                id: u
                    .get("toolUseId")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                name: u
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                arguments: u
                    .get("input")
                    .cloned()
                    .unwrap_or_else(|| json!({}))
                    .to_string(),
            }));
        } else if let Some(r) = b.get("reasoningContent") {
            if let Some(t) = r.get("reasoningText") {
                parts.push(Part::Reasoning {
                    text: t
                        .get("text")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    signature: t
                        .get("signature")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                });
            } else if let Some(d) = r.get("redactedContent").and_then(Value::as_str) {
                parts.push(Part::RedactedReasoning { data: d.to_owned() });
            }
        } else if let Some(c) = b.get("citationsContent") {
            // The answer's text with the sources it rests on.
            let text: String = c
                .get("content")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|t| t.get("text").and_then(Value::as_str))
                .collect();
            parts.push(Part::Text(TextPart {
                text,
                cache_control: None,
                citations: c
                    .get("citations")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(decode_citation)
                    .collect(),
            }));
        }
    }
    Ok(ChatResponse {
        id: String::new(),
        model: String::new(),
        created: crate::unix_now(),
        choices: vec![Choice {
            index: 0,
            message: Message {
                role: Role::Assistant,
                parts,
                name: None,
                extra: JsonMap::new(),
            },
            finish_reason: v
                .get("stopReason")
                .and_then(Value::as_str)
                .map(decode_finish),
            logprobs: None,
        }],
        usage: v.get("usage").map(decode_usage),
        system_fingerprint: None,
        extra: JsonMap::new(),
    })
}

/// A Converse citation as a canonical one: a web location keeps its URL and title; the
/// others (a passage of a document) are named by their location's kind.
fn decode_citation(c: &Value) -> Citation {
    let location = c.get("location").and_then(Value::as_object);
    let kind = location
        .and_then(|l| l.keys().next())
        .map_or("unknown", String::as_str);
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    Citation {
        kind: if kind == "web" {
            "web_search_result_location".to_owned()
        } else {
            kind.to_owned()
        },
        url: text(c.pointer("/location/web/url")),
        title: text(c.get("title")),
        cited_text: text(c.pointer("/sourceContent/0/text")),
        range: None,
    }
}

/// ConverseStream events (one per event-stream message, named by its `:event-type`) ->
/// canonical events. Content blocks are numbered by Bedrock; tool calls by the order they
/// start.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    started: bool,
    /// Bedrock's block index -> canonical tool-call index.
    tools: Vec<(u64, u32)>,
    /// The web sources the open block cites, emitted when it stops.
    citations: super::BlockCitations,
}

impl StreamDecoder {
    /// Events for one message, and whether it was the last (`metadata` follows
    /// `messageStop` and ends the stream).
    pub fn decode(
        &mut self,
        event: &str,
        data: &str,
    ) -> Result<(Vec<StreamEvent>, bool), GatewayError> {
        let v: Value = serde_json::from_str(data).map_err(bad)?;
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: String::new(),
                model: String::new(),
                created: crate::unix_now(),
            });
        }
        let delta = |d: Delta| StreamEvent::Delta {
            choice: 0,
            delta: d,
        };
        match event {
            "messageStart" => {}
            "contentBlockStop" => {
                out.extend(self.citations.end().map(delta));
            }
            "contentBlockStart" => {
                if let Some(t) = v.pointer("/start/toolUse") {
                    let block = v
                        .get("contentBlockIndex")
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                    let index = u32::try_from(self.tools.len()).unwrap_or(u32::MAX);
                    self.tools.push((block, index));
                    out.push(delta(Delta::ToolCallStart {
                        index,
                        id: t
                            .get("toolUseId")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        name: t
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                    }));
                }
            }
            "contentBlockDelta" => {
                let d = v.get("delta").unwrap_or(&Value::Null);
                if let Some(t) = d.get("text").and_then(Value::as_str) {
                    self.citations.text(t);
                    out.push(delta(Delta::Text(t.to_owned())));
                } else if let Some(c) = d.get("citation") {
                    out.extend(self.citations.cite(decode_citation(c)).map(delta));
                } else if let Some(input) = d.pointer("/toolUse/input").and_then(Value::as_str) {
                    let block = v
                        .get("contentBlockIndex")
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                    if let Some(&(_, index)) = self.tools.iter().find(|(b, _)| *b == block) {
                        out.push(delta(Delta::ToolCallArgs {
                            index,
                            fragment: input.to_owned(),
                        }));
                    }
                } else if let Some(r) = d.get("reasoningContent") {
                    if let Some(t) = r.get("text").and_then(Value::as_str) {
                        out.push(delta(Delta::Reasoning(t.to_owned())));
                    }
                    if let Some(s) = r.get("signature").and_then(Value::as_str) {
                        out.push(delta(Delta::ReasoningSignature(s.to_owned())));
                    }
                    // Claude's redacted thinking: the same data Anthropic calls
                    // `redacted_thinking`'s (a blob, base64 in JSON).
                    if let Some(data) = r.get("redactedContent").and_then(Value::as_str) {
                        out.push(delta(Delta::RedactedReasoning(data.to_owned())));
                    }
                }
            }
            "messageStop" => {
                let reason = v
                    .get("stopReason")
                    .and_then(Value::as_str)
                    .unwrap_or("end_turn");
                out.push(StreamEvent::Finish {
                    choice: 0,
                    reason: decode_finish(reason),
                });
            }
            "metadata" => {
                if let Some(u) = v.get("usage") {
                    out.push(StreamEvent::Usage(decode_usage(u)));
                }
                return Ok((out, true));
            }
            exception => {
                let message = v
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("stream failed");
                let kind = if exception == "throttlingException" {
                    ErrorKind::RateLimited
                } else {
                    ErrorKind::UpstreamFailed
                };
                return Err(GatewayError::new(
                    kind,
                    format!("bedrock {exception}: {message}"),
                ));
            }
        }
        Ok((out, false))
    }
}
