//! Responses request -> canonical request.
//!
//! Input items map onto canonical messages: `message` items keep their role (`developer`
//! and `system` included) and parts; `function_call` and `reasoning` items join the
//! assistant turn they follow (reasoning keeps its `encrypted_content` as the signature, so
//! Anthropic thinking survives a round trip); each `function_call_output` is a tool
//! message. `custom` (free-form) tools become function tools with one string argument,
//! `input`, and their calls and outputs map the same way; the functions of a `namespace`
//! tool become functions named `namespace__name`. Tools hosted by OpenAI (web search, file
//! search...) cannot run elsewhere and are dropped with a warning; items of such tools are
//! kept whole for a provider that speaks Responses and dropped by the others.

use serde_json::{Value, json};

use super::wire::RespRequest;
use crate::error::GatewayError;
use crate::schema::*;

/// What the decoder returns besides the canonical request.
pub struct Decoded {
    pub chat: ChatRequest,
    pub tooling: Tooling,
    /// What was dropped or coerced, for `x-gatehouse-warnings`.
    pub warnings: Vec<String>,
}

/// How the request's tools were renamed or reshaped, to undo it on the way out.
#[derive(Debug, Clone, Default)]
pub struct Tooling {
    /// Free-form (`custom`) tools, whose calls are returned as `custom_tool_call` items.
    pub custom: Vec<String>,
    /// Functions of `namespace` tools: (flat name, namespace, name).
    pub namespaced: Vec<(String, String, String)>,
}

impl Tooling {
    /// A called tool's name as the client knows it, its namespace, and whether it is
    /// free-form.
    pub fn resolve(&self, flat: &str) -> (String, Option<String>, bool) {
        if let Some((_, ns, name)) = self.namespaced.iter().find(|(f, ..)| f == flat) {
            return (name.clone(), Some(ns.clone()), false);
        }
        (flat.to_owned(), None, self.custom.iter().any(|c| c == flat))
    }
}

/// The separator of a namespaced function's flat name.
const NS_SEP: &str = "__";

/// The request's `input` as a list of items (a string is one user message).
pub fn normalize_input(input: Option<Value>) -> Result<Vec<Value>, GatewayError> {
    match input {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(vec![json!({
            "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": text}],
        })]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(GatewayError::invalid_param(
            "input",
            "`input` must be a string or an array of input items",
        )),
    }
}

/// Decode a request whose input items are `history` (the turns `previous_response_id`
/// reaches, oldest first) then `input` (its own).
pub fn decode(
    w: &RespRequest,
    history: &[Value],
    input: &[Value],
) -> Result<Decoded, GatewayError> {
    if w.model.is_empty() {
        return Err(GatewayError::invalid_param("model", "`model` is required"));
    }
    if w.background == Some(true) {
        return Err(GatewayError::invalid_param(
            "background",
            "background responses are not supported by this gateway",
        ));
    }
    if w.conversation.as_ref().is_some_and(|c| !c.is_null()) {
        return Err(GatewayError::invalid_param(
            "conversation",
            "`conversation` is not supported by this gateway; use `previous_response_id`",
        ));
    }
    let mut messages = Vec::new();
    match &w.instructions {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => messages.push(Message::text(Role::System, s.clone())),
        Some(Value::Array(items)) => decode_items(items, "instructions", &mut messages)?,
        Some(_) => {
            return Err(GatewayError::invalid_param(
                "instructions",
                "`instructions` must be a string",
            ));
        }
    }
    decode_items(history, "previous_response_id", &mut messages)?;
    decode_items(input, "input", &mut messages)?;
    let mut warnings = Vec::new();
    if !messages
        .iter()
        .any(|m| m.role != Role::System && m.role != Role::Developer)
    {
        return Err(GatewayError::invalid_param(
            "input",
            "`input` must hold at least one message or item",
        ));
    }

    let mut tooling = Tooling::default();
    let mut tools = decode_tools(
        w.tools.as_deref().unwrap_or_default(),
        "tools",
        &mut tooling,
        &mut warnings,
    )?;
    // Tools announced in the input (`additional_tools` items) join the request's.
    for (i, item) in history.iter().chain(input).enumerate() {
        if item_type(item) == Some("additional_tools") {
            let listed = item
                .get("tools")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            tools.extend(decode_tools(
                listed,
                &format!("input[{i}].tools"),
                &mut tooling,
                &mut warnings,
            )?);
        }
    }

    let tool_choice = w.tool_choice.as_ref().map(decode_tool_choice).transpose()?;
    let reasoning = w.reasoning.as_ref().map(|r| -> Result<_, GatewayError> {
        let effort = match r.effort.as_deref() {
            None => None,
            Some(e) => Some(ReasoningEffort::parse(e).ok_or_else(|| {
                GatewayError::invalid_param(
                    "reasoning.effort",
                    format!(
                        "invalid effort `{e}`: expected none, minimal, low, medium, high or xhigh"
                    ),
                )
            })?),
        };
        let summary = r.summary.as_deref().or(r.generate_summary.as_deref());
        Ok(Reasoning {
            effort,
            budget_tokens: None,
            include_thoughts: summary.map(|s| s != "none"),
        })
    });
    let response_format = match w.text.as_ref().and_then(|t| t.format.as_ref()) {
        None | Some(Value::Null) => None,
        Some(f) => Some(decode_format(f)?),
    };
    let mut extra = JsonMap::new();
    for k in w.extra.keys() {
        warnings.push(format!("{k} dropped"));
    }
    if let Some(key) = &w.prompt_cache_key {
        extra.insert("prompt_cache_key".into(), Value::String(key.clone()));
    }
    if let Some(tier) = &w.service_tier {
        extra.insert("service_tier".into(), Value::String(tier.clone()));
    }
    Ok(Decoded {
        chat: ChatRequest {
            model: w.model.clone(),
            messages,
            sampling: Sampling {
                temperature: w.temperature,
                top_p: w.top_p,
                logprobs: w.top_logprobs.map(|n| n > 0),
                top_logprobs: w.top_logprobs.filter(|n| *n > 0),
                ..Sampling::default()
            },
            max_output_tokens: w.max_output_tokens,
            stop: Vec::new(),
            tools,
            tool_choice,
            parallel_tool_calls: w.parallel_tool_calls,
            reasoning: reasoning.transpose()?,
            response_format,
            stream: w.stream,
            // The Responses stream always ends with the usage (in `response.completed`).
            stream_usage: true,
            user: w.safety_identifier.clone().or_else(|| w.user.clone()),
            metadata: w.metadata.clone(),
            extra,
            raw: None,
        },
        tooling,
        warnings,
    })
}

fn item_type(item: &Value) -> Option<&str> {
    match item.get("type").and_then(Value::as_str) {
        Some(t) => Some(t),
        // An "easy" input message: `{role, content}` without a type.
        None if item.get("role").is_some() => Some("message"),
        None => None,
    }
}

fn text_of<'a>(item: &'a Value, field: &str, at: &str) -> Result<&'a str, GatewayError> {
    item.get(field).and_then(Value::as_str).ok_or_else(|| {
        GatewayError::invalid_param(
            &format!("{at}.{field}"),
            format!("`{field}` must be a string"),
        )
    })
}

/// Add `part` to the assistant turn it belongs to: the last message when it is the
/// assistant's, else a new one.
fn push_assistant(messages: &mut Vec<Message>, part: Part) {
    match messages.last_mut() {
        Some(m) if m.role == Role::Assistant => m.parts.push(part),
        _ => messages.push(Message {
            role: Role::Assistant,
            parts: vec![part],
            name: None,
            extra: JsonMap::new(),
        }),
    }
}

fn decode_items(
    items: &[Value],
    field: &str,
    messages: &mut Vec<Message>,
) -> Result<(), GatewayError> {
    for (i, item) in items.iter().enumerate() {
        let at = format!("{field}[{i}]");
        match item_type(item) {
            Some("message") => {
                let role = match item.get("role").and_then(Value::as_str) {
                    Some("user") => Role::User,
                    Some("assistant") => Role::Assistant,
                    Some("system") => Role::System,
                    Some("developer") => Role::Developer,
                    other => {
                        return Err(GatewayError::invalid_param(
                            &format!("{at}.role"),
                            format!(
                                "unsupported role `{}`: expected user, assistant, system or developer",
                                other.unwrap_or("")
                            ),
                        ));
                    }
                };
                let parts = decode_content(item.get("content"), &format!("{at}.content"))?;
                if role == Role::Assistant {
                    for p in parts {
                        push_assistant(messages, p);
                    }
                } else {
                    messages.push(Message {
                        role,
                        parts,
                        name: None,
                        extra: JsonMap::new(),
                    });
                }
            }
            Some("function_call") => {
                let name = text_of(item, "name", &at)?;
                let call = ToolCall {
                    id: text_of(item, "call_id", &at)?.to_owned(),
                    name: match item.get("namespace").and_then(Value::as_str) {
                        Some(ns) => format!("{ns}{NS_SEP}{name}"),
                        None => name.to_owned(),
                    },
                    arguments: text_of(item, "arguments", &at)?.to_owned(),
                };
                push_assistant(messages, Part::ToolCall(call));
            }
            Some("custom_tool_call") => {
                let call = ToolCall {
                    id: text_of(item, "call_id", &at)?.to_owned(),
                    name: text_of(item, "name", &at)?.to_owned(),
                    arguments: json!({"input": text_of(item, "input", &at)?}).to_string(),
                };
                push_assistant(messages, Part::ToolCall(call));
            }
            Some(kind @ ("function_call_output" | "custom_tool_call_output")) => {
                let call_id = text_of(item, "call_id", &at)?.to_owned();
                let content = match item.get("output") {
                    Some(Value::String(s)) => vec![Part::text(s.clone())],
                    Some(v @ Value::Array(_)) => decode_content(Some(v), &format!("{at}.output"))?,
                    _ => {
                        return Err(GatewayError::invalid_param(
                            &format!("{at}.output"),
                            format!("a `{kind}` item needs `output` (a string or content parts)"),
                        ));
                    }
                };
                messages.push(Message {
                    role: Role::Tool,
                    parts: vec![Part::ToolResult(ToolResult {
                        call_id,
                        content,
                        is_error: false,
                    })],
                    name: None,
                    extra: JsonMap::new(),
                });
            }
            Some("reasoning") => {
                let mut text = String::new();
                let pieces = ["summary", "content"]
                    .into_iter()
                    .filter_map(|f| item.get(f).and_then(Value::as_array))
                    .flatten()
                    .filter_map(|p| p.get("text").and_then(Value::as_str));
                for piece in pieces {
                    if !text.is_empty() {
                        text.push_str("\n\n");
                    }
                    text.push_str(piece);
                }
                let encrypted = item
                    .get("encrypted_content")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let part = match (text.is_empty(), encrypted) {
                    (true, Some(data)) => Part::RedactedReasoning { data },
                    (true, None) => continue,
                    (false, signature) => Part::Reasoning { text, signature },
                };
                push_assistant(messages, part);
            }
            // Its tools were read with the request's.
            Some("additional_tools") => {}
            // The handler replaces references with the items they name (from the stored
            // responses) before decoding; one left here names nothing it could find.
            Some("item_reference") => {
                let id = item.get("id").and_then(Value::as_str).unwrap_or_default();
                return Err(GatewayError::invalid_param(
                    &at,
                    format!("Item with id '{id}' not found."),
                ));
            }
            Some(_) => {
                // A hosted tool's call or output: only a Responses provider understands it.
                push_assistant(
                    messages,
                    Part::Opaque {
                        schema: WireSchema::OpenAiResponses,
                        value: item.clone(),
                    },
                );
            }
            None => {
                return Err(GatewayError::invalid_param(
                    &format!("{at}.type"),
                    "an input item needs `type`",
                ));
            }
        }
    }
    Ok(())
}

/// A message's content: a string or an array of content parts.
fn decode_content(content: Option<&Value>, at: &str) -> Result<Vec<Part>, GatewayError> {
    let parts = match content {
        Some(Value::String(s)) => return Ok(vec![Part::text(s.clone())]),
        Some(Value::Array(parts)) => parts,
        _ => {
            return Err(GatewayError::invalid_param(
                at,
                "`content` must be a string or an array of content parts",
            ));
        }
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        let at = format!("{at}[{j}]");
        let kind = p.get("type").and_then(Value::as_str).unwrap_or("");
        out.push(match kind {
            "input_text" | "output_text" | "text" | "summary_text" | "reasoning_text" => {
                Part::text(text_of(p, "text", &at)?)
            }
            "refusal" => Part::text(text_of(p, "refusal", &at)?),
            "input_image" => {
                let detail = p.get("detail").and_then(Value::as_str).map(str::to_owned);
                if let Some(url) = p.get("image_url").and_then(Value::as_str) {
                    Part::Image(ImagePart {
                        source: MediaSource::from_url(url),
                        detail,
                    })
                } else if let Some(id) = p.get("file_id").and_then(Value::as_str) {
                    Part::File(FilePart {
                        source: FileSource::FileId(id.to_owned()),
                        filename: None,
                    })
                } else {
                    return Err(GatewayError::invalid_param(
                        &at,
                        "an `input_image` part needs `image_url` or `file_id`",
                    ));
                }
            }
            "input_file" => {
                let filename = p.get("filename").and_then(Value::as_str).map(str::to_owned);
                let source = if let Some(data) = p.get("file_data").and_then(Value::as_str) {
                    FileSource::Media(if data.starts_with("data:") {
                        MediaSource::from_url(data)
                    } else {
                        MediaSource::Base64 {
                            media_type: "application/pdf".into(),
                            data: data.to_owned(),
                        }
                    })
                } else if let Some(id) = p.get("file_id").and_then(Value::as_str) {
                    FileSource::FileId(id.to_owned())
                } else if let Some(url) = p.get("file_url").and_then(Value::as_str) {
                    FileSource::Media(MediaSource::Url(url.to_owned()))
                } else {
                    return Err(GatewayError::invalid_param(
                        &at,
                        "an `input_file` part needs `file_data`, `file_id` or `file_url`",
                    ));
                };
                Part::File(FilePart { source, filename })
            }
            "input_audio" => {
                let audio = p.get("input_audio").unwrap_or(p);
                Part::Audio {
                    data: text_of(audio, "data", &at)?.to_owned(),
                    format: text_of(audio, "format", &at)?.to_owned(),
                }
            }
            _ => Part::Opaque {
                schema: WireSchema::OpenAiResponses,
                value: p.clone(),
            },
        });
    }
    Ok(out)
}

/// Function tools as they are; free-form tools as function tools taking one string; the
/// functions of a namespace under flat names. Hosted tools are dropped with a warning.
fn decode_tools(
    tools: &[Value],
    field: &str,
    tooling: &mut Tooling,
    warnings: &mut Vec<String>,
) -> Result<Vec<Tool>, GatewayError> {
    let mut out = Vec::with_capacity(tools.len());
    for (i, t) in tools.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let description = t
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned);
        match t.get("type").and_then(Value::as_str) {
            Some("function") => out.push(function_tool(t, text_of(t, "name", &at)?.to_owned())),
            Some("custom") => {
                let name = text_of(t, "name", &at)?.to_owned();
                let mut about = description.unwrap_or_default();
                if let Some(def) = t.pointer("/format/definition").and_then(Value::as_str) {
                    let syntax = t
                        .pointer("/format/syntax")
                        .and_then(Value::as_str)
                        .unwrap_or("grammar");
                    about.push_str(&format!(
                        "\n\nThe `input` argument is free-form text in this {syntax}:\n{def}"
                    ));
                }
                out.push(Tool {
                    name: name.clone(),
                    description: Some(about.trim().to_owned()).filter(|d| !d.is_empty()),
                    parameters: json!({
                        "type": "object",
                        "properties": {"input": {"type": "string", "description": "The tool's free-form input."}},
                        "required": ["input"],
                        "additionalProperties": false,
                    }),
                    strict: None,
                    cache_control: None,
                });
                tooling.custom.push(name);
            }
            Some("namespace") => {
                let ns = text_of(t, "name", &at)?;
                let inner = t
                    .get("tools")
                    .and_then(Value::as_array)
                    .map_or(&[][..], Vec::as_slice);
                for (j, f) in inner.iter().enumerate() {
                    let at = format!("{at}.tools[{j}]");
                    if f.get("type").and_then(Value::as_str) != Some("function") {
                        warnings.push(format!(
                            "tool {ns}.{} dropped: only functions are served in a namespace",
                            f.get("name").and_then(Value::as_str).unwrap_or("?")
                        ));
                        continue;
                    }
                    let name = text_of(f, "name", &at)?;
                    let flat = format!("{ns}{NS_SEP}{name}");
                    out.push(function_tool(f, flat.clone()));
                    tooling
                        .namespaced
                        .push((flat, ns.to_owned(), name.to_owned()));
                }
            }
            Some(kind) => {
                warnings.push(format!("tool {kind} dropped: hosted by OpenAI"));
            }
            None => {
                return Err(GatewayError::invalid_param(
                    &format!("{at}.type"),
                    "a tool needs `type`",
                ));
            }
        }
    }
    Ok(out)
}

fn function_tool(t: &Value, name: String) -> Tool {
    Tool {
        name,
        description: t
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned),
        parameters: t
            .get("parameters")
            .filter(|p| !p.is_null())
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        strict: t.get("strict").and_then(Value::as_bool),
        cache_control: None,
    }
}

fn decode_tool_choice(c: &Value) -> Result<ToolChoice, GatewayError> {
    let bad = |what: &str| {
        GatewayError::invalid_param(
            "tool_choice",
            format!("unsupported tool_choice {what}: expected none, auto, required or a function"),
        )
    };
    match c {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            other => Err(bad(&format!("`{other}`"))),
        },
        Value::Object(o) => match o.get("type").and_then(Value::as_str) {
            Some("function" | "custom") => o
                .get("name")
                .and_then(Value::as_str)
                .map(|n| ToolChoice::Tool(n.to_owned()))
                .ok_or_else(|| bad("without a name")),
            Some("allowed_tools") => Ok(match o.get("mode").and_then(Value::as_str) {
                Some("required") => ToolChoice::Required,
                _ => ToolChoice::Auto,
            }),
            Some(other) => Err(bad(&format!("type `{other}`"))),
            None => Err(bad("without a type")),
        },
        _ => Err(bad("value")),
    }
}

fn decode_format(f: &Value) -> Result<ResponseFormat, GatewayError> {
    match f.get("type").and_then(Value::as_str) {
        Some("text") => Ok(ResponseFormat::Text),
        Some("json_object") => Ok(ResponseFormat::JsonObject),
        Some("json_schema") => Ok(ResponseFormat::JsonSchema {
            name: f
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("response")
                .to_owned(),
            description: f
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned),
            schema: f.get("schema").cloned().ok_or_else(|| {
                GatewayError::invalid_param(
                    "text.format.schema",
                    "a `json_schema` format needs `schema`",
                )
            })?,
            strict: f.get("strict").and_then(Value::as_bool),
        }),
        _ => Err(GatewayError::invalid_param(
            "text.format.type",
            "`text.format.type` must be text, json_object or json_schema",
        )),
    }
}
