//! The `gemini` provider's half of the Gemini codec: canonical request -> Gemini's
//! `GenerateContentRequest`, and Gemini's replies and stream chunks -> canonical ones.
//!
//! Gemini differs from the chat schemas in ways that matter here:
//! - system text goes in `systemInstruction`; tool results are `functionResponse` parts of a
//!   user turn, named after their function (looked up from the call they answer);
//! - thoughts are never sent back, only their `thoughtSignature`, on the part that follows
//!   them (Gemini 3 refuses a function-calling history without it; a step whose first call
//!   has none gets Google's documented stand-in, [`UNSIGNED_CALL`], with a warning);
//! - function-call arguments are objects, never text; function parameters are Gemini's
//!   `Schema`, an OpenAPI subset (`schema`);
//! - thinking is a `thinkingLevel` on Gemini 3 models and a `thinkingBudget` on earlier ones;
//! - `candidatesTokenCount` excludes thoughts (`thoughtsTokenCount`), where the canonical
//!   output count includes them;
//! - a blocked prompt comes back as 200 with `promptFeedback.blockReason` and no candidate,
//!   which is the caller's 400 here; a candidate stopped by a filter is `content_filter`.

use serde_json::{Value, json};

use crate::codec::Warnings;
use crate::error::{ErrorKind, GatewayError};
use crate::schema::*;

/// Thinking budgets for an effort, on models that take a budget (Gemini 2.5): none off,
/// then Google's documented range (dynamic thinking tops out at 24,576 on Flash).
pub fn thinking_budget(effort: ReasoningEffort) -> u64 {
    match effort {
        ReasoningEffort::None => 0,
        ReasoningEffort::Minimal => 512,
        ReasoningEffort::Low => 1_024,
        ReasoningEffort::Medium => 8_192,
        ReasoningEffort::High => 24_576,
        ReasoningEffort::XHigh | ReasoningEffort::Max => 32_768,
    }
}

/// The signature Google documents for function calls it did not sign (history from another
/// model, or one whose signature was lost): Gemini 3 then skips its validation.
pub const UNSIGNED_CALL: &str = "skip_thought_signature_validator";

/// The Gemini 3 thinking level for an effort. Flash takes four levels; Pro takes only LOW and
/// HIGH (it refuses MINIMAL and MEDIUM: "Thinking level MEDIUM is not supported for this
/// model"), so there minimal goes to LOW and medium to HIGH, the nearest at or above. No
/// Gemini 3 model turns thinking off: `none` is the lowest level.
fn thinking_level(effort: ReasoningEffort, model: &str) -> &'static str {
    let two_levels = model.contains("-pro");
    match effort {
        ReasoningEffort::None | ReasoningEffort::Minimal if two_levels => "LOW",
        ReasoningEffort::None | ReasoningEffort::Minimal => "MINIMAL",
        ReasoningEffort::Low => "LOW",
        ReasoningEffort::Medium if two_levels => "HIGH",
        ReasoningEffort::Medium => "MEDIUM",
        _ => "HIGH",
    }
}

/// Gemini 3 models take a thinking level rather than a budget.
fn takes_level(model: &str) -> bool {
    model.starts_with("gemini-3")
}

pub fn encode_request(req: &ChatRequest, model: &str, w: &mut Warnings) -> Value {
    let (system, contents) = encode_messages(&req.messages, model, w);
    let mut body = json!({"contents": contents});
    if !system.is_empty() {
        body["systemInstruction"] = json!({"parts": system});
    }
    if !req.tools.is_empty() {
        body["tools"] = json!([{"functionDeclarations": encode_tools(&req.tools, w)}]);
    }
    if let Some(choice) = &req.tool_choice {
        let config = match choice {
            ToolChoice::Auto => json!({"mode": "AUTO"}),
            ToolChoice::None => json!({"mode": "NONE"}),
            ToolChoice::Required => json!({"mode": "ANY"}),
            ToolChoice::Tool(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
        };
        body["toolConfig"] = json!({"functionCallingConfig": config});
    }
    let g = generation_config(req, model, w);
    if !g.is_empty() {
        body["generationConfig"] = Value::Object(g);
    }
    for (set, what) in [
        (req.sampling.logit_bias.is_some(), "logit_bias"),
        (req.parallel_tool_calls.is_some(), "parallel_tool_calls"),
        (req.user.is_some(), "user"),
    ] {
        if set {
            w.push(format!("{what} dropped for gemini"));
        }
    }
    body
}

/// The system text (for `systemInstruction`) and the turns (`contents`): assistant turns
/// are `model` turns, and consecutive user turns (tool results, then text) are one.
fn encode_messages(
    messages: &[Message],
    model: &str,
    w: &mut Warnings,
) -> (Vec<Value>, Vec<Value>) {
    let mut system: Vec<Value> = Vec::new();
    let mut contents: Vec<Value> = Vec::new();
    // Function names by call id, for the results that answer them.
    let mut names: Vec<(&str, &str)> = Vec::new();
    for m in messages {
        match m.role {
            Role::System | Role::Developer => {
                for p in &m.parts {
                    if let Part::Text(t) = p {
                        system.push(json!({"text": t.text}));
                    }
                }
            }
            Role::Assistant => {
                let parts = model_parts(m, &mut names, model, w);
                if !parts.is_empty() {
                    contents.push(json!({"role": "model", "parts": parts}));
                }
            }
            Role::User | Role::Tool => {
                let parts = user_parts(m, &names, w);
                if parts.is_empty() {
                    continue;
                }
                // Consecutive user turns (tool results, then text) are one Gemini turn.
                match contents.last_mut() {
                    Some(last) if last["role"] == "user" => {
                        if let Some(a) = last["parts"].as_array_mut() {
                            a.extend(parts);
                        }
                    }
                    _ => contents.push(json!({"role": "user", "parts": parts})),
                }
            }
        }
    }
    (system, contents)
}

/// An assistant turn's parts: text and function calls, each carrying the thought signature
/// of the reasoning before it; the calls' names are noted in `names`.
fn model_parts<'a>(
    m: &'a Message,
    names: &mut Vec<(&'a str, &'a str)>,
    model: &str,
    w: &mut Warnings,
) -> Vec<Value> {
    let mut parts = Vec::new();
    let mut signature: Option<&str> = None;
    let mut first_call = true;
    for p in &m.parts {
        let part = match p {
            Part::Text(t) => json!({"text": t.text}),
            Part::Reasoning { signature: s, .. } => {
                signature = s.as_deref().or(signature);
                continue;
            }
            Part::ToolCall(c) => {
                names.push((c.id.as_str(), c.name.as_str()));
                let args: Value = serde_json::from_str(&c.arguments)
                    .ok()
                    .filter(Value::is_object)
                    .unwrap_or_else(|| json!({}));
                json!({"functionCall": {"id": c.id, "name": c.name, "args": args}})
            }
            Part::RedactedReasoning { .. } => {
                w.push("redacted_thinking dropped for gemini");
                continue;
            }
            other => {
                w.push(format!("{} part dropped for gemini", part_kind(other)));
                continue;
            }
        };
        let mut part = part;
        let call = part.get("functionCall").is_some();
        if call && std::mem::take(&mut first_call) && signature.is_none() && takes_level(model) {
            // Gemini 3 refuses a step whose first call comes back unsigned;
            // history it did not sign (another provider's, a client that lost
            // the signature) gets Google's documented stand-in.
            signature = Some(UNSIGNED_CALL);
            w.push(format!(
                "thought signature missing: {UNSIGNED_CALL} sent for gemini"
            ));
        }
        if let Some(s) = signature.take() {
            part["thoughtSignature"] = json!(s);
        }
        parts.push(part);
    }
    parts
}

/// A user or tool turn's parts: tool results become `functionResponse` parts named after
/// the call they answer.
fn user_parts(m: &Message, names: &[(&str, &str)], w: &mut Warnings) -> Vec<Value> {
    let mut parts = Vec::new();
    for p in &m.parts {
        match p {
            Part::ToolResult(r) => {
                let name = names
                    .iter()
                    .rev()
                    .find(|(id, _)| *id == r.call_id)
                    .map_or("unknown", |(_, n)| *n);
                let text: String = r
                    .content
                    .iter()
                    .filter_map(|p| match p {
                        Part::Text(t) => Some(t.text.as_str()),
                        _ => None,
                    })
                    .collect();
                let response = if r.is_error {
                    json!({"error": text})
                } else {
                    json!({"output": text})
                };
                parts.push(json!({"functionResponse": {"id": r.call_id, "name": name, "response": response}}));
            }
            other => {
                if let Some(part) = user_part(other, w) {
                    parts.push(part);
                }
            }
        }
    }
    parts
}

/// Function declarations, their parameters reduced to the subset every Gemini model's
/// `Schema` accepts.
fn encode_tools(tools: &[Tool], w: &mut Warnings) -> Vec<Value> {
    tools
        .iter()
        .map(|t| {
            let (schema, dropped) = super::schema::reduce(&t.parameters);
            if !dropped.is_empty() {
                let names: Vec<_> = dropped.into_iter().collect();
                w.push(format!(
                    "schema keywords {} dropped for gemini",
                    names.join(" ")
                ));
            }
            let mut d = json!({"name": t.name, "parameters": schema});
            if let Some(desc) = &t.description {
                d["description"] = json!(desc);
            }
            d
        })
        .collect()
}

/// `generationConfig`: sampling, the output limit, stop sequences, JSON output, thinking.
fn generation_config(
    req: &ChatRequest,
    model: &str,
    w: &mut Warnings,
) -> serde_json::Map<String, Value> {
    let mut g = serde_json::Map::new();
    let s = &req.sampling;
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            g.insert(k.to_owned(), v);
        }
    };
    put("temperature", s.temperature.map(|v| json!(v)));
    put("topP", s.top_p.map(|v| json!(v)));
    put("topK", s.top_k.map(|v| json!(v)));
    put("presencePenalty", s.presence_penalty.map(|v| json!(v)));
    put("frequencyPenalty", s.frequency_penalty.map(|v| json!(v)));
    put("seed", s.seed.map(|v| json!(v)));
    put("candidateCount", s.n.map(|v| json!(v)));
    put("responseLogprobs", s.logprobs.map(|v| json!(v)));
    put("logprobs", s.top_logprobs.map(|v| json!(v)));
    put("maxOutputTokens", req.max_output_tokens.map(|v| json!(v)));
    if !req.stop.is_empty() {
        put("stopSequences", Some(json!(req.stop)));
    }
    match &req.response_format {
        Some(ResponseFormat::JsonObject) => {
            put("responseMimeType", Some(json!("application/json")))
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            put("responseMimeType", Some(json!("application/json")));
            put("responseJsonSchema", Some(schema.clone()));
        }
        Some(ResponseFormat::Text) | None => {}
    }
    if let Some(r) = &req.reasoning {
        let t = thinking_config(r, model, w);
        if !t.is_empty() {
            put("thinkingConfig", Some(Value::Object(t)));
        }
    }
    g
}

/// `thinkingConfig`: a budget as asked, else the effort as a level (Gemini 3) or a budget.
fn thinking_config(r: &Reasoning, model: &str, w: &mut Warnings) -> serde_json::Map<String, Value> {
    let mut t = serde_json::Map::new();
    if let Some(b) = r.budget_tokens {
        t.insert("thinkingBudget".into(), json!(b));
    } else if let Some(e) = r.effort {
        if takes_level(model) {
            let level = thinking_level(e, model);
            if !matches!(
                (e, level),
                (ReasoningEffort::Low, "LOW")
                    | (ReasoningEffort::Medium, "MEDIUM")
                    | (ReasoningEffort::High, "HIGH")
                    | (ReasoningEffort::Minimal, "MINIMAL")
            ) {
                w.push(format!(
                    "reasoning effort {}->{} for {model}",
                    e.as_str(),
                    level.to_ascii_lowercase()
                ));
            }
            t.insert("thinkingLevel".into(), json!(level));
        } else {
            t.insert("thinkingBudget".into(), json!(thinking_budget(e)));
        }
    }
    if let Some(i) = r.include_thoughts {
        t.insert("includeThoughts".into(), json!(i));
    }
    t
}

fn part_kind(p: &Part) -> &'static str {
    match p {
        Part::Text(_) => "text",
        Part::Image(_) => "image",
        Part::Audio { .. } => "audio",
        Part::File(_) => "file",
        Part::ToolCall(_) => "tool call",
        Part::ToolResult(_) => "tool result",
        Part::Reasoning { .. } | Part::RedactedReasoning { .. } => "reasoning",
        Part::Opaque { .. } => "unknown",
    }
}

/// A user's part: text, or media inline (base64) or by URI.
fn user_part(p: &Part, w: &mut Warnings) -> Option<Value> {
    let media = |source: &MediaSource, fallback: &str| match source {
        MediaSource::Base64 { media_type, data } => {
            json!({"inlineData": {"mimeType": media_type, "data": data}})
        }
        MediaSource::Url(u) => json!({"fileData": {"mimeType": fallback, "fileUri": u}}),
    };
    Some(match p {
        Part::Text(t) => json!({"text": t.text}),
        Part::Image(i) => media(&i.source, "image/jpeg"),
        Part::File(FilePart {
            source: FileSource::Media(m),
            ..
        }) => media(m, "application/pdf"),
        Part::Audio { data, format } => {
            json!({"inlineData": {"mimeType": format!("audio/{format}"), "data": data}})
        }
        other => {
            w.push(format!("{} part dropped for gemini", part_kind(other)));
            return None;
        }
    })
}

pub fn decode_finish(reason: &str, has_calls: bool) -> FinishReason {
    match reason {
        "STOP" if has_calls => FinishReason::ToolCalls,
        "STOP" => FinishReason::Stop,
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY"
        | "LANGUAGE" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_ascii_lowercase()),
    }
}

pub fn decode_usage(u: &Value) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let thoughts = n("thoughtsTokenCount");
    Usage {
        input_tokens: n("promptTokenCount").saturating_add(n("toolUsePromptTokenCount")),
        output_tokens: n("candidatesTokenCount").saturating_add(thoughts),
        cache_read_tokens: n("cachedContentTokenCount"),
        cache_write_tokens: 0,
        reasoning_tokens: thoughts,
    }
}

/// A prompt Gemini blocked (`promptFeedback.blockReason`), as the caller's error.
pub fn blocked(body: &Value) -> Option<GatewayError> {
    let reason = body.pointer("/promptFeedback/blockReason")?.as_str()?;
    Some(GatewayError::new(
        ErrorKind::UpstreamRejected,
        format!("gemini blocked the prompt (blockReason {reason})"),
    ))
}

/// Canonical parts of one candidate's content; `next_call` numbers calls without an id.
fn decode_parts(content: &Value, next_call: &mut usize) -> Vec<Part> {
    let mut out = Vec::new();
    for p in content
        .get("parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let signature = p
            .get("thoughtSignature")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(t) = p.get("text").and_then(Value::as_str) {
            if p.get("thought").and_then(Value::as_bool) == Some(true) {
                out.push(Part::Reasoning {
                    text: t.to_owned(),
                    signature,
                });
                continue;
            }
            if let Some(s) = signature {
                out.push(Part::Reasoning {
                    text: String::new(),
                    signature: Some(s),
                });
            }
            out.push(Part::text(t));
        } else if let Some(f) = p.get("functionCall") {
            if let Some(s) = signature {
                out.push(Part::Reasoning {
                    text: String::new(),
                    signature: Some(s),
                });
            }
            *next_call += 1;
            out.push(Part::ToolCall(ToolCall {
                id: f
                    .get("id")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("call_{next_call}"), str::to_owned),
                name: f
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                arguments: f
                    .get("args")
                    .cloned()
                    .unwrap_or_else(|| json!({}))
                    .to_string(),
            }));
        }
    }
    out
}

pub fn decode_response(body: &[u8]) -> Result<ChatResponse, GatewayError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| crate::codec::upstream_stream::bad_reply("gemini", e))?;
    let cands = v
        .get("candidates")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if cands.is_empty()
        && let Some(e) = blocked(&v)
    {
        return Err(e);
    }
    let mut next_call = 0;
    let choices = cands
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let parts = decode_parts(&c["content"], &mut next_call);
            let has_calls = parts.iter().any(|p| matches!(p, Part::ToolCall(_)));
            Choice {
                index: c
                    .get("index")
                    .and_then(Value::as_u64)
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(i as u32),
                message: Message {
                    role: Role::Assistant,
                    parts,
                    name: None,
                    extra: JsonMap::new(),
                },
                finish_reason: c
                    .get("finishReason")
                    .and_then(Value::as_str)
                    .map(|r| decode_finish(r, has_calls)),
                logprobs: None,
            }
        })
        .collect();
    Ok(ChatResponse {
        id: text_field(&v, "responseId"),
        model: text_field(&v, "modelVersion"),
        created: crate::unix_now(),
        choices,
        usage: v.get("usageMetadata").map(decode_usage),
        system_fingerprint: None,
        extra: JsonMap::new(),
    })
}

/// Decodes Gemini's SSE chunks (each a whole `GenerateContentResponse`); the chunk that
/// carries a finish reason is the last.
#[derive(Default)]
pub struct ChunkDecoder {
    started: bool,
    calls: u32,
    next_call: usize,
}

impl ChunkDecoder {
    /// The canonical events of one chunk, and whether it ended the stream.
    pub fn decode(&mut self, data: &str) -> Result<(Vec<StreamEvent>, bool), GatewayError> {
        let v: Value = serde_json::from_str(data)
            .map_err(|e| crate::codec::upstream_stream::bad_reply("gemini", e))?;
        if let Some(e) = v.get("error") {
            let msg = e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("error in stream");
            return Err(GatewayError::new(
                ErrorKind::UpstreamFailed,
                format!("gemini: {msg}"),
            ));
        }
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: text_field(&v, "responseId"),
                model: text_field(&v, "modelVersion"),
                created: crate::unix_now(),
            });
        }
        let cands = v
            .get("candidates")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if cands.is_empty()
            && let Some(e) = blocked(&v)
        {
            return Err(e);
        }
        let mut last = false;
        for c in &cands {
            let choice = c
                .get("index")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0);
            let mut has_calls = false;
            for p in decode_parts(&c["content"], &mut self.next_call) {
                let delta = match p {
                    Part::Text(t) => vec![Delta::Text(t.text)],
                    Part::Reasoning { text, signature } => {
                        let mut d = Vec::new();
                        if !text.is_empty() {
                            d.push(Delta::Reasoning(text));
                        }
                        d.extend(signature.map(Delta::ReasoningSignature));
                        d
                    }
                    Part::ToolCall(call) => {
                        has_calls = true;
                        let index = self.calls;
                        self.calls += 1;
                        vec![
                            Delta::ToolCallStart {
                                index,
                                id: call.id,
                                name: call.name,
                            },
                            Delta::ToolCallArgs {
                                index,
                                fragment: call.arguments,
                            },
                        ]
                    }
                    _ => Vec::new(),
                };
                out.extend(
                    delta
                        .into_iter()
                        .map(|delta| StreamEvent::Delta { choice, delta }),
                );
            }
            if let Some(r) = c.get("finishReason").and_then(Value::as_str) {
                out.push(StreamEvent::Finish {
                    choice,
                    reason: decode_finish(r, has_calls || self.calls > 0),
                });
                last = true;
            }
        }
        if let Some(u) = v.get("usageMetadata") {
            out.push(StreamEvent::Usage(decode_usage(u)));
        }
        Ok((out, last))
    }
}

/// A string member, or empty.
fn text_field(v: &Value, name: &str) -> String {
    v.get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}
