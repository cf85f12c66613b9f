//! Anthropic Messages request -> canonical request.

use serde_json::Value;

use super::wire::*;
use crate::error::GatewayError;
use crate::schema::*;

/// Decode a `count_tokens` request: a Messages request with no need of `max_tokens`.
pub fn decode_count_request(mut w: AnthRequest) -> Result<ChatRequest, GatewayError> {
    w.max_tokens.get_or_insert(1);
    decode_request(w)
}

/// Decode an Anthropic Messages request. Every failure names the offending field.
///
/// System text (top-level `system`, `role: "system"` messages and `mid_conv_system` blocks)
/// becomes system messages at the place it stood; `tool_result` blocks stay inside the user
/// turn (providers that want separate tool messages split them when encoding); thinking
/// blocks keep their signatures.
pub fn decode_request(w: AnthRequest) -> Result<ChatRequest, GatewayError> {
    // Worded as serde words a missing field: serde checked it before `count_tokens` bodies
    // (which have none) came to share the wire type.
    let max_tokens = w
        .max_tokens
        .ok_or_else(|| GatewayError::invalid_param("max_tokens", "missing field `max_tokens`"))?;
    crate::codec::require_model_and_messages(&w.model, w.messages.len())?;
    let messages = decode_messages(w.system, w.messages)?;
    let tools = decode_tools(w.tools.unwrap_or_default())?;
    let (tool_choice, parallel_tool_calls) = match w.tool_choice {
        None => (None, None),
        Some(c) => decode_tool_choice(c)?,
    };
    let reasoning = decode_reasoning(w.thinking.as_ref(), w.output_config.as_ref())?;
    let response_format = decode_output_format(w.output_config.and_then(|o| o.format))?;
    let stream = w.stream.unwrap_or(false);
    Ok(ChatRequest {
        model: w.model,
        messages,
        sampling: Sampling {
            temperature: w.temperature,
            top_p: w.top_p,
            top_k: w.top_k,
            ..Sampling::default()
        },
        max_output_tokens: Some(max_tokens),
        stop: w.stop_sequences.unwrap_or_default(),
        tools,
        tool_choice,
        parallel_tool_calls,
        reasoning,
        response_format,
        stream,
        // Anthropic streams always carry usage (message_start and message_delta).
        stream_usage: stream,
        user: w.metadata.and_then(|m| m.user_id),
        metadata: None,
        extra: w.extra,
        raw: None,
    })
}

/// The system text, then the turns, each system part a system message where it stood.
fn decode_messages(
    system: Option<AnthContent>,
    turns: Vec<AnthMessage>,
) -> Result<Vec<Message>, GatewayError> {
    let mut messages = Vec::with_capacity(turns.len() + 1);
    if let Some(system) = system {
        let parts = decode_content(system, "system", &mut messages, Role::System)?;
        push(&mut messages, Role::System, parts);
    }
    for (i, m) in turns.into_iter().enumerate() {
        let role = match m.role.as_str() {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "system" => Role::System,
            other => {
                return Err(GatewayError::invalid_param(
                    &format!("messages[{i}].role"),
                    format!("unsupported role `{other}`: expected user, assistant or system"),
                ));
            }
        };
        let parts = decode_content(
            m.content,
            &format!("messages[{i}].content"),
            &mut messages,
            role,
        )?;
        push(&mut messages, role, parts);
    }
    Ok(messages)
}

/// Custom tools; a server tool (`web_search_...`) is refused: no other provider runs it.
fn decode_tools(tools: Vec<AnthTool>) -> Result<Vec<Tool>, GatewayError> {
    let mut out = Vec::new();
    for (i, t) in tools.into_iter().enumerate() {
        match t {
            AnthTool::Custom(t) if t.kind.as_deref().is_none_or(|k| k == "custom") => {
                out.push(Tool {
                    name: t.name,
                    description: t.description,
                    parameters: t.input_schema,
                    strict: t.strict,
                    cache_control: t.cache_control,
                })
            }
            AnthTool::Custom(AnthCustomTool { kind, .. }) => {
                return Err(server_tool(i, kind.as_deref().unwrap_or("unknown")));
            }
            AnthTool::Server(v) => {
                return Err(server_tool(
                    i,
                    v.get("type").and_then(Value::as_str).unwrap_or("unknown"),
                ));
            }
        }
    }
    Ok(out)
}

/// `tool_choice`, and whether parallel tool calls are allowed.
fn decode_tool_choice(
    c: AnthToolChoice,
) -> Result<(Option<ToolChoice>, Option<bool>), GatewayError> {
    let choice = match c.kind.as_str() {
        "auto" => ToolChoice::Auto,
        "any" => ToolChoice::Required,
        "none" => ToolChoice::None,
        "tool" => ToolChoice::Tool(c.name.ok_or_else(|| {
            GatewayError::invalid_param(
                "tool_choice.name",
                "`tool_choice` of type `tool` needs `name`",
            )
        })?),
        other => {
            return Err(GatewayError::invalid_param(
                "tool_choice.type",
                format!("unsupported tool_choice type `{other}`: expected auto, any, tool or none"),
            ));
        }
    };
    Ok((Some(choice), c.disable_parallel_tool_use.map(|d| !d)))
}

/// `thinking` and `output_config.effort`: a budget, an effort, or thinking off.
fn decode_reasoning(
    thinking: Option<&AnthThinking>,
    output_config: Option<&AnthOutputConfig>,
) -> Result<Option<Reasoning>, GatewayError> {
    let effort = match output_config.and_then(|o| o.effort.as_deref()) {
        Some(e) => Some(
            ReasoningEffort::parse(e)
                .filter(|e| *e >= ReasoningEffort::Low)
                .ok_or_else(|| {
                    GatewayError::invalid_param(
                        "output_config.effort",
                        format!("invalid effort `{e}`: expected low, medium, high, xhigh or max"),
                    )
                })?,
        ),
        None => None,
    };
    Ok(match thinking {
        Some(t) => {
            let include_thoughts = Some(t.display.as_deref() != Some("omitted"));
            match t.kind.as_str() {
                "enabled" => Some(Reasoning {
                    effort,
                    budget_tokens: t.budget_tokens,
                    include_thoughts,
                }),
                "adaptive" => Some(Reasoning {
                    effort,
                    budget_tokens: None,
                    include_thoughts,
                }),
                // Thinking explicitly off.
                "disabled" => Some(Reasoning {
                    effort: Some(ReasoningEffort::None),
                    budget_tokens: None,
                    include_thoughts: Some(false),
                }),
                other => {
                    return Err(GatewayError::invalid_param(
                        "thinking.type",
                        format!(
                            "unsupported thinking type `{other}`: expected enabled, adaptive or disabled"
                        ),
                    ));
                }
            }
        }
        None => effort.map(|e| Reasoning {
            effort: Some(e),
            ..Reasoning::default()
        }),
    })
}

/// `output_config.format`: a JSON schema the reply must follow.
fn decode_output_format(format: Option<Value>) -> Result<Option<ResponseFormat>, GatewayError> {
    Ok(match format {
        Some(f) if f.get("type").and_then(Value::as_str) == Some("json_schema") => {
            Some(ResponseFormat::JsonSchema {
                name: "output".to_owned(),
                description: None,
                schema: f
                    .get("schema")
                    .cloned()
                    .unwrap_or_else(|| serde_json::json!({})),
                strict: Some(true),
            })
        }
        Some(_) => {
            return Err(GatewayError::invalid_param(
                "output_config.format.type",
                "unsupported output format: expected `json_schema`",
            ));
        }
        None => None,
    })
}

fn server_tool(i: usize, kind: &str) -> GatewayError {
    GatewayError::invalid_param(
        &format!("tools[{i}]"),
        format!(
            "server tool `{kind}` runs only on Anthropic; it cannot be translated for other providers"
        ),
    )
}

/// Append a message unless it would be empty.
fn push(messages: &mut Vec<Message>, role: Role, parts: Vec<Part>) {
    if !parts.is_empty() {
        messages.push(Message {
            role,
            parts,
            name: None,
            extra: JsonMap::new(),
        });
    }
}

/// Decode one message's content into parts. A `mid_conv_system` block closes the parts so far
/// (pushed as a `role` message) and becomes a system message of its own.
fn decode_content(
    content: AnthContent,
    field: &str,
    messages: &mut Vec<Message>,
    role: Role,
) -> Result<Vec<Part>, GatewayError> {
    let blocks = match content {
        AnthContent::Text(t) => {
            return Ok(if t.is_empty() {
                Vec::new()
            } else {
                vec![Part::text(t)]
            });
        }
        AnthContent::Blocks(b) => b,
    };
    let mut parts = Vec::with_capacity(blocks.len());
    for (j, b) in blocks.into_iter().enumerate() {
        let at = || format!("{field}[{j}]");
        match b {
            AnthBlock::MidConvSystem { content, .. } => {
                push(messages, role, std::mem::take(&mut parts));
                let system = decode_content(content, &at(), messages, Role::System)?;
                push(messages, Role::System, system);
            }
            other => parts.push(decode_block(other, &at)?),
        }
    }
    Ok(parts)
}

fn decode_block(b: AnthBlock, at: &dyn Fn() -> String) -> Result<Part, GatewayError> {
    // serde falls back to `Other` for a malformed source of a modelled type too.
    let check_source = |source: &AnthSource| match source {
        AnthSource::Other(v)
            if v.get("type")
                .and_then(Value::as_str)
                .is_none_or(|t| MODELLED_SOURCE_TYPES.contains(&t)) =>
        {
            Err(GatewayError::invalid_param(
                &format!("{}.source", at()),
                "invalid `source`: expected an object with `type` base64, url, text or file and its fields",
            ))
        }
        _ => Ok(()),
    };
    if let AnthBlock::Image { source, .. } | AnthBlock::Document { source, .. } = &b {
        check_source(source)?;
    }
    Ok(match b {
        // Citations in history are the client's record of an earlier reply: no provider reads
        // them back.
        AnthBlock::Text {
            text,
            cache_control,
            ..
        } => Part::Text(TextPart {
            citations: Vec::new(),
            text,
            cache_control,
        }),
        AnthBlock::Image { source, .. } => match source {
            AnthSource::Base64 { media_type, data } => Part::Image(ImagePart {
                source: MediaSource::Base64 { media_type, data },
                detail: None,
            }),
            AnthSource::Url { url } => Part::Image(ImagePart {
                source: MediaSource::Url(url),
                detail: None,
            }),
            other => opaque(serde_json::json!({"type": "image", "source": other})),
        },
        AnthBlock::Document { source, title, .. } => match source {
            AnthSource::Base64 { media_type, data } => Part::File(FilePart {
                source: FileSource::Media(MediaSource::Base64 { media_type, data }),
                filename: title,
            }),
            AnthSource::Url { url } => Part::File(FilePart {
                source: FileSource::Media(MediaSource::Url(url)),
                filename: title,
            }),
            AnthSource::File { file_id } => Part::File(FilePart {
                source: FileSource::FileId(file_id),
                filename: title,
            }),
            // A plain-text document is its text.
            AnthSource::Text { data, .. } => Part::text(data),
            other => {
                opaque(serde_json::json!({"type": "document", "source": other, "title": title}))
            }
        },
        AnthBlock::ToolUse {
            id, name, input, ..
        } => Part::ToolCall(ToolCall {
            id,
            name,
            arguments: input.to_string(),
        }),
        AnthBlock::ToolResult {
            tool_use_id,
            content,
            is_error,
            ..
        } => {
            let mut none = Vec::new();
            let content = match content {
                Some(c) => decode_content(c, &format!("{}.content", at()), &mut none, Role::User)?,
                None => Vec::new(),
            };
            Part::ToolResult(ToolResult {
                call_id: tool_use_id,
                content,
                is_error: is_error.unwrap_or(false),
            })
        }
        AnthBlock::Thinking {
            thinking,
            signature,
        } => reasoning_part(thinking, signature),
        AnthBlock::RedactedThinking { data } => Part::RedactedReasoning { data },
        AnthBlock::MidConvSystem { .. } => {
            return Err(GatewayError::invalid_param(
                &at(),
                "`mid_conv_system` is not allowed here",
            ));
        }
        AnthBlock::Other(v) => {
            if let Some(kind) = v.get("type").and_then(Value::as_str)
                && MODELLED_BLOCK_TYPES.contains(&kind)
            {
                return Err(GatewayError::invalid_param(
                    &at(),
                    format!(
                        "invalid `{kind}` block: a required field is missing or has the wrong type"
                    ),
                ));
            }
            opaque(v)
        }
    })
}

fn opaque(value: Value) -> Part {
    Part::Opaque {
        schema: WireSchema::AnthropicMessages,
        value,
    }
}

/// A thinking block as a reasoning part; an empty signature (Anthropic's placeholder) is none.
pub(super) fn reasoning_part(thinking: String, signature: String) -> Part {
    Part::Reasoning {
        text: thinking,
        signature: (!signature.is_empty()).then_some(signature),
    }
}
