//! Chat Completions request <-> canonical request.

use serde_json::Value;

use super::wire::*;
use crate::codec::Warnings;
use crate::error::GatewayError;
use crate::schema::*;

// === decode (client -> canonical) ===

/// Decode a client's Chat Completions request. Every failure names the offending field.
pub fn decode_request(w: OaiChatRequest) -> Result<ChatRequest, GatewayError> {
    crate::codec::require_model_and_messages(&w.model, w.messages.len())?;
    let messages = w
        .messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| decode_message(i, m))
        .collect::<Result<Vec<_>, _>>()?;
    let tools = w
        .tools
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            if t.kind != "function" {
                return Err(GatewayError::invalid_param(
                    &format!("tools[{i}].type"),
                    format!(
                        "unsupported tool type `{}`: only `function` tools are supported",
                        t.kind
                    ),
                ));
            }
            Ok(Tool {
                name: t.function.name,
                description: t.function.description,
                parameters: t
                    .function
                    .parameters
                    .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
                strict: t.function.strict,
                cache_control: None,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tool_choice = w.tool_choice.map(decode_tool_choice).transpose()?;
    let response_format = w.response_format.map(decode_response_format).transpose()?;
    let reasoning = match w.reasoning_effort {
        Some(e) => Some(Reasoning {
            effort: Some(ReasoningEffort::parse(&e).ok_or_else(|| {
                GatewayError::invalid_param(
                    "reasoning_effort",
                    format!("invalid reasoning_effort `{e}`: expected none, minimal, low, medium, high, xhigh or max"),
                )
            })?),
            ..Reasoning::default()
        }),
        None => None,
    };
    let stream = w.stream.unwrap_or(false);
    Ok(ChatRequest {
        model: w.model,
        messages,
        sampling: Sampling {
            temperature: w.temperature,
            top_p: w.top_p,
            top_k: w.top_k,
            presence_penalty: w.presence_penalty,
            frequency_penalty: w.frequency_penalty,
            seed: w.seed,
            n: w.n,
            logprobs: w.logprobs,
            top_logprobs: w.top_logprobs,
            logit_bias: w.logit_bias,
        },
        max_output_tokens: w.max_completion_tokens.or(w.max_tokens),
        stop: match w.stop {
            Some(OaiStop::One(s)) => vec![s],
            Some(OaiStop::Many(v)) => v,
            None => Vec::new(),
        },
        tools,
        tool_choice,
        parallel_tool_calls: w.parallel_tool_calls,
        reasoning,
        response_format,
        stream,
        stream_usage: stream
            && w.stream_options
                .as_ref()
                .and_then(|o| o.include_usage)
                .unwrap_or(false),
        user: w.user,
        metadata: w.metadata,
        extra: w.extra,
        raw: None,
    })
}

fn decode_message(i: usize, mut m: OaiMessage) -> Result<Message, GatewayError> {
    let role = match m.role.as_str() {
        "system" => Role::System,
        "developer" => Role::Developer,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "tool" => Role::Tool,
        other => {
            return Err(GatewayError::invalid_param(
                &format!("messages[{i}].role"),
                format!(
                    "unsupported role `{other}`: expected system, developer, user, assistant or tool"
                ),
            ));
        }
    };
    let name = m.name.take();
    let tool_call_id = m.tool_call_id.take();
    let role_name = std::mem::take(&mut m.role);
    let MessageParts {
        mut parts,
        has_content,
        extra,
    } = message_parts(m, role == Role::Assistant);
    for (j, p) in parts.iter().enumerate() {
        if let Part::Opaque { value, .. } = p
            && let Some(kind) = value.get("type").and_then(Value::as_str)
            && MODELLED_PART_TYPES.contains(&kind)
        {
            return Err(GatewayError::invalid_param(
                &format!("messages[{i}].content[{j}]"),
                format!(
                    "invalid `{kind}` content part: a required field is missing or has the wrong type"
                ),
            ));
        }
    }
    match role {
        Role::Tool => {
            let call_id = tool_call_id.ok_or_else(|| {
                GatewayError::invalid_param(
                    &format!("messages[{i}].tool_call_id"),
                    "a `tool` message needs `tool_call_id`",
                )
            })?;
            let call_id = crate::codec::signed_id::split(&call_id).0.to_owned();
            let content = std::mem::take(&mut parts);
            parts.push(Part::ToolResult(ToolResult {
                call_id,
                content,
                is_error: false,
            }));
        }
        Role::Assistant => {}
        _ if !has_content => {
            return Err(GatewayError::invalid_param(
                &format!("messages[{i}].content"),
                format!("a `{role_name}` message needs `content`"),
            ));
        }
        _ => {}
    }
    Ok(Message {
        role,
        parts,
        name,
        extra,
    })
}

/// The canonical parts of a wire message, shared by requests and replies.
pub(super) struct MessageParts {
    /// Reasoning first, then content, then (assistant only) tool calls.
    pub parts: Vec<Part>,
    /// The message had a `content` field that was not null.
    pub has_content: bool,
    /// Fields the model does not name, with `refusal` among them.
    pub extra: JsonMap,
}

pub(super) fn message_parts(m: OaiMessage, with_tool_calls: bool) -> MessageParts {
    let mut parts = Vec::new();
    if let Some(r) = m
        .reasoning_content
        .or(m.reasoning)
        .filter(|r| !r.is_empty())
    {
        parts.push(Part::Reasoning {
            text: r,
            signature: None,
        });
    }
    let has_content = decode_content(m.content, &mut parts).is_some();
    if with_tool_calls {
        for c in m.tool_calls.unwrap_or_default() {
            // A call whose id carries its reasoning signature (`codec::signed_id`): the
            // signature goes back to the provider just before the call, as it came.
            let (id, signature) = crate::codec::signed_id::split(&c.id);
            if let Some(signature) = signature {
                parts.push(Part::Reasoning {
                    text: String::new(),
                    signature: Some(signature),
                });
            }
            parts.push(Part::ToolCall(ToolCall {
                id: id.to_owned(),
                name: c.function.name,
                arguments: arguments_text(c.function.arguments),
            }));
        }
    }
    let mut extra = m.extra;
    if let Some(r) = m.refusal {
        extra.insert("refusal".to_owned(), Value::String(r));
    }
    MessageParts {
        parts,
        has_content,
        extra,
    }
}

/// Append decoded content parts; `None` when the message had no content at all.
pub(super) fn decode_content(content: Option<OaiContent>, parts: &mut Vec<Part>) -> Option<()> {
    match content? {
        OaiContent::Text(t) => {
            if !t.is_empty() {
                parts.push(Part::text(t));
            }
        }
        OaiContent::Parts(ps) => {
            for p in ps {
                parts.push(match p {
                    OaiPart::Text { text } => Part::text(text),
                    OaiPart::ImageUrl { image_url } => {
                        let (url, detail) = match image_url {
                            OaiImageUrl::Object { url, detail } => (url, detail),
                            OaiImageUrl::Bare(url) => (url, None),
                        };
                        Part::Image(ImagePart {
                            source: MediaSource::from_url(&url),
                            detail,
                        })
                    }
                    OaiPart::InputAudio { input_audio } => Part::Audio {
                        data: input_audio.data,
                        format: input_audio.format,
                    },
                    OaiPart::File { file } => Part::File(FilePart {
                        source: match (file.file_data, file.file_id) {
                            (Some(d), _) => FileSource::Media(MediaSource::from_url(&d)),
                            (None, Some(id)) => FileSource::FileId(id),
                            (None, None) => FileSource::FileId(String::new()),
                        },
                        filename: file.filename,
                    }),
                    OaiPart::Refusal { refusal } => Part::text(refusal),
                    OaiPart::Thinking {
                        thinking,
                        signature,
                    } => Part::Reasoning {
                        text: thinking.into_iter().map(|t| t.text).collect(),
                        signature,
                    },
                    OaiPart::DocumentUrl {
                        document_url,
                        document_name,
                    } => Part::File(FilePart {
                        source: FileSource::Media(MediaSource::Url(document_url)),
                        filename: document_name,
                    }),
                    OaiPart::Other(value) => Part::Opaque {
                        schema: WireSchema::OpenAiChat,
                        value,
                    },
                });
            }
        }
    }
    Some(())
}

/// Tool-call arguments as JSON text: OpenAI sends a string, Mistral may send an object.
pub(super) fn arguments_text(v: Value) -> String {
    match v {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn decode_tool_choice(v: Value) -> Result<ToolChoice, GatewayError> {
    let bad = || {
        GatewayError::invalid_param(
            "tool_choice",
            "`tool_choice` must be `auto`, `none`, `required` or {\"type\":\"function\",\"function\":{\"name\":...}}",
        )
    };
    match &v {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" | "any" => Ok(ToolChoice::Required),
            _ => Err(bad()),
        },
        Value::Object(o) => o
            .get("function")
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .map(|n| ToolChoice::Tool(n.to_owned()))
            .ok_or_else(bad),
        _ => Err(bad()),
    }
}

fn decode_response_format(f: OaiResponseFormat) -> Result<ResponseFormat, GatewayError> {
    match f.kind.as_str() {
        "text" => Ok(ResponseFormat::Text),
        "json_object" => Ok(ResponseFormat::JsonObject),
        "json_schema" => {
            let s = f.json_schema.ok_or_else(|| {
                GatewayError::invalid_param(
                    "response_format.json_schema",
                    "`json_schema` is required",
                )
            })?;
            Ok(ResponseFormat::JsonSchema {
                name: s.name,
                description: s.description,
                schema: s.schema.unwrap_or_else(|| serde_json::json!({})),
                strict: s.strict,
            })
        }
        other => Err(GatewayError::invalid_param(
            "response_format.type",
            format!("unsupported response_format type `{other}`"),
        )),
    }
}

// === encode (canonical -> upstream) ===

/// Encode for an OpenAI-style provider. The result is the full OpenAI form (extras
/// included); adapters for stricter providers narrow it and record what they changed.
/// Streaming requests always ask for usage (`stream_options.include_usage`).
pub fn encode_request(req: &ChatRequest, model: &str, warnings: &mut Warnings) -> OaiChatRequest {
    let mut messages = Vec::with_capacity(req.messages.len());
    for m in &req.messages {
        encode_message(m, &mut messages, warnings);
    }
    let s = &req.sampling;
    OaiChatRequest {
        model: model.to_owned(),
        messages,
        temperature: s.temperature,
        top_p: s.top_p,
        top_k: s.top_k,
        n: s.n,
        stream: req.stream.then_some(true),
        stream_options: req.stream.then(|| OaiStreamOptions {
            include_usage: Some(true),
            extra: Default::default(),
        }),
        stop: match req.stop.len() {
            0 => None,
            1 => Some(OaiStop::One(req.stop[0].clone())),
            _ => Some(OaiStop::Many(req.stop.clone())),
        },
        max_tokens: req.max_output_tokens,
        max_completion_tokens: None,
        presence_penalty: s.presence_penalty,
        frequency_penalty: s.frequency_penalty,
        logit_bias: s.logit_bias.clone(),
        logprobs: s.logprobs,
        top_logprobs: s.top_logprobs,
        user: req.user.clone(),
        seed: s.seed,
        tools: (!req.tools.is_empty()).then(|| {
            req.tools
                .iter()
                .map(|t| OaiTool {
                    kind: "function".to_owned(),
                    function: OaiFunction {
                        name: t.name.clone(),
                        description: t.description.clone(),
                        parameters: Some(tool_parameters(&t.parameters, warnings)),
                        strict: t.strict,
                    },
                })
                .collect()
        }),
        tool_choice: req.tool_choice.as_ref().map(|c| match c {
            ToolChoice::Auto => Value::from("auto"),
            ToolChoice::None => Value::from("none"),
            ToolChoice::Required => Value::from("required"),
            ToolChoice::Tool(name) => {
                serde_json::json!({"type": "function", "function": {"name": name}})
            }
        }),
        parallel_tool_calls: req.parallel_tool_calls,
        response_format: req.response_format.as_ref().map(|f| match f {
            ResponseFormat::Text => OaiResponseFormat {
                kind: "text".to_owned(),
                json_schema: None,
            },
            ResponseFormat::JsonObject => OaiResponseFormat {
                kind: "json_object".to_owned(),
                json_schema: None,
            },
            ResponseFormat::JsonSchema {
                name,
                description,
                schema,
                strict,
            } => OaiResponseFormat {
                kind: "json_schema".to_owned(),
                json_schema: Some(OaiJsonSchema {
                    name: name.clone(),
                    description: description.clone(),
                    schema: Some(schema.clone()),
                    strict: *strict,
                }),
            },
        }),
        reasoning_effort: req
            .reasoning
            .as_ref()
            .and_then(|r| r.effort)
            .map(|e| e.as_str().to_owned()),
        metadata: req.metadata.clone(),
        extra: own_extras(req, warnings),
    }
}

/// The request's unmodelled top-level fields, when they are OpenAI's own (a Chat Completions
/// client's, or the ones the Responses decoder keeps for Chat: `prompt_cache_key`,
/// `service_tier`): another schema's (Anthropic's `context_management`, ...) mean nothing to
/// an OpenAI-style provider, which refuses what it does not know, so they are dropped with a
/// warning.
fn own_extras(req: &ChatRequest, warnings: &mut Warnings) -> JsonMap {
    let foreign = req.raw.as_ref().is_some_and(|r| {
        !matches!(
            r.schema,
            WireSchema::OpenAiChat | WireSchema::OpenAiResponses
        )
    });
    if !foreign {
        return req.extra.clone();
    }
    for k in req.extra.keys() {
        warnings.push(format!("{k} dropped"));
    }
    JsonMap::new()
}

/// A tool's JSON Schema as OpenAI-style providers take it. `$schema` (Claude Code sends
/// `https://json-schema.org/draft/2020-12/schema`) only names the dialect and never constrains
/// the arguments, while strict validators refuse unknown keywords: it is removed, with a
/// warning. Everything else is kept as the client wrote it.
fn tool_parameters(schema: &Value, warnings: &mut Warnings) -> Value {
    let mut schema = schema.clone();
    if let Some(obj) = schema.as_object_mut()
        && obj.remove("$schema").is_some()
    {
        warnings.push("$schema removed from tool schemas");
    }
    schema
}

/// Tool results become `tool` messages, whose content OpenAI's schema limits to text
/// (`ChatCompletionRequestToolMessageContentPart`; the API refuses an image there). So the
/// images and files of a tool result in a user turn (Anthropic's `tool_result` with a
/// screenshot, as Claude Code sends) go into the user message that follows the tool
/// messages, ahead of its own content. A `tool` message of a Chat Completions client is
/// encoded as it came.
fn encode_message(m: &Message, out: &mut Vec<OaiMessage>, warnings: &mut Warnings) {
    let mut content = Vec::new();
    let mut tool_calls = Vec::new();
    let mut reasoning = String::new();
    // Non-text parts of tool results, for the message after the tool messages.
    let mut carried = Vec::new();
    for p in &m.parts {
        match p {
            Part::ToolCall(c) => tool_calls.push(OaiToolCall {
                id: c.id.clone(),
                kind: "function".to_owned(),
                function: OaiFunctionCall {
                    name: c.name.clone(),
                    arguments: Value::String(if c.arguments.is_empty() {
                        "{}".to_owned()
                    } else {
                        c.arguments.clone()
                    }),
                },
            }),
            // Tool results become `tool` messages of their own, in order, before the rest of
            // the message (Anthropic puts them at the start of a user turn).
            Part::ToolResult(r) => {
                if r.is_error {
                    warnings.push("tool_result is_error carried as text");
                }
                let mut parts = Vec::new();
                for p in &r.content {
                    match encode_part(p, warnings) {
                        Some(p @ OaiPart::Text { .. }) => parts.push(p),
                        Some(p) if m.role != Role::Tool => {
                            warnings.push("tool result media sent in a user message");
                            carried.push(p);
                        }
                        Some(p) => parts.push(p),
                        None => {}
                    }
                }
                let text_only = parts.iter().all(|p| matches!(p, OaiPart::Text { .. }));
                let content = if text_only {
                    let mut t: String = parts
                        .into_iter()
                        .filter_map(|p| match p {
                            OaiPart::Text { text } => Some(text),
                            _ => None,
                        })
                        .collect::<Vec<_>>()
                        .join("\n");
                    if r.is_error {
                        t.insert_str(0, "Error: ");
                    }
                    OaiContent::Text(t)
                } else {
                    OaiContent::Parts(parts)
                };
                out.push(OaiMessage {
                    role: "tool".to_owned(),
                    content: Some(content),
                    tool_call_id: Some(r.call_id.clone()),
                    ..OaiMessage::default()
                });
            }
            Part::Reasoning { text, .. } => reasoning.push_str(text),
            Part::RedactedReasoning { .. } => {
                warnings.push("redacted reasoning dropped from history");
            }
            other => {
                if let Some(p) = encode_part(other, warnings) {
                    content.push(p);
                }
            }
        }
    }
    if m.role == Role::Tool {
        return;
    }
    content.splice(0..0, carried);
    let has_other = !content.is_empty() || !tool_calls.is_empty() || !reasoning.is_empty();
    let only_tool_results = !has_other && m.parts.iter().any(|p| matches!(p, Part::ToolResult(_)));
    if only_tool_results {
        return;
    }
    let content = if m.role == Role::Assistant {
        // Assistant content as a plain string is what every OpenAI-style server accepts.
        let text: String = content
            .iter()
            .filter_map(|p| match p {
                OaiPart::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        if content.iter().any(|p| !matches!(p, OaiPart::Text { .. })) {
            warnings.push("non-text assistant content dropped");
        }
        (!text.is_empty() || tool_calls.is_empty()).then_some(OaiContent::Text(text))
    } else if content.len() == 1 && matches!(content[0], OaiPart::Text { .. }) {
        match content.pop() {
            Some(OaiPart::Text { text }) => Some(OaiContent::Text(text)),
            _ => None,
        }
    } else if content.is_empty() {
        Some(OaiContent::Text(String::new()))
    } else {
        Some(OaiContent::Parts(content))
    };
    let refusal = m
        .extra
        .get("refusal")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut extra = m.extra.clone();
    extra.remove("refusal");
    out.push(OaiMessage {
        role: m.role.as_str().to_owned(),
        content,
        name: m.name.clone(),
        tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
        tool_call_id: None,
        refusal,
        reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
        reasoning: None,
        extra,
    });
}

fn encode_part(p: &Part, warnings: &mut Warnings) -> Option<OaiPart> {
    Some(match p {
        Part::Text(t) => {
            if t.cache_control.is_some() {
                warnings.push("cache_control dropped");
            }
            OaiPart::Text {
                text: t.text.clone(),
            }
        }
        Part::Image(i) => OaiPart::ImageUrl {
            image_url: OaiImageUrl::Object {
                url: i.source.to_url(),
                detail: i.detail.clone(),
            },
        },
        Part::Audio { data, format } => OaiPart::InputAudio {
            input_audio: OaiInputAudio {
                data: data.clone(),
                format: format.clone(),
            },
        },
        Part::File(f) => match &f.source {
            FileSource::Media(MediaSource::Url(url)) => {
                // Chat Completions takes files inline or by id only.
                warnings.push("file by URL dropped");
                let _ = url;
                return None;
            }
            FileSource::Media(m) => OaiPart::File {
                file: OaiFile {
                    file_data: Some(m.to_url()),
                    file_id: None,
                    filename: f.filename.clone(),
                },
            },
            FileSource::FileId(id) => OaiPart::File {
                file: OaiFile {
                    file_data: None,
                    file_id: Some(id.clone()),
                    filename: f.filename.clone(),
                },
            },
        },
        Part::Opaque {
            schema: WireSchema::OpenAiChat,
            value,
        } => OaiPart::Other(value.clone()),
        Part::Opaque { value, .. } => {
            let kind = value
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            warnings.push(format!("{kind} block dropped for chat completions"));
            return None;
        }
        Part::Reasoning { .. }
        | Part::RedactedReasoning { .. }
        | Part::ToolCall(_)
        | Part::ToolResult(_) => {
            return None;
        }
    })
}
