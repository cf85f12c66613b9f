//! Canonical request -> Anthropic Messages request: the upstream half of the codec, which the
//! `anthropic` provider adapter calls. This file encodes the conversation (`system`, turns,
//! blocks); `upstream_params` the request parameters, `upstream_reply` the provider's replies
//! and error bodies, `upstream_stream` its event stream. Pure functions; every coercion or
//! drop is a warning.
//!
//! Choices (what the Messages API forces, and what we picked where it left room):
//! - Leading `system`/`developer` messages become the top-level `system` (text blocks keep
//!   their `cache_control`). A system message *after* the conversation started becomes user
//!   text where it stood, with a warning: `role: "system"` turns exist only in the newest
//!   spec and older models and Anthropic-compatible servers refuse them, and hoisting the text
//!   into `system` would change the prompt prefix and so void the prompt cache every turn.
//! - Turns must alternate, so consecutive same-role messages (tool results, the user text
//!   after them) merge into one turn, with `tool_result` blocks first as Anthropic requires.
//! - `max_tokens` is required: `DEFAULT_MAX_TOKENS` (4096) when the client set none (plus the
//!   thinking budget when thinking is on), with a warning.
//! - Reasoning effort becomes `thinking.budget_tokens` by `thinking_budget`; the budget is
//!   fitted under `max_tokens`. Thinking is dropped, with a warning, where Anthropic would
//!   refuse it: a forced `tool_choice`, or a tool-use turn whose reasoning was not replayed
//!   with its signature (clients of other schemas never replay it).
//! - Unsigned reasoning cannot be replayed and is dropped; so are sampling fields Anthropic
//!   lacks, and parts of another schema's own types.

use serde_json::{Value, json};

use super::response::conforming_tool_id;
use super::upstream_params::{DEFAULT_MAX_TOKENS, encode_params};
use super::wire::*;
use crate::codec::Warnings;
use crate::schema::*;

/// Encode a canonical request as an Anthropic Messages request for `model`.
pub fn encode_request(req: &ChatRequest, model: &str, warnings: &mut Warnings) -> AnthRequest {
    let mut system = Vec::new();
    let mut turns: Vec<(Role, Vec<AnthBlock>)> = Vec::new();
    for m in &req.messages {
        let is_system = matches!(m.role, Role::System | Role::Developer);
        if is_system && turns.is_empty() {
            system_text(m, &mut system, warnings);
            continue;
        }
        if m.name.is_some() {
            warnings.push("message name dropped for anthropic");
        }
        for k in m.extra.keys() {
            warnings.push(format!("message {k} dropped for anthropic"));
        }
        let mut blocks = Vec::with_capacity(m.parts.len());
        if is_system {
            warnings.push("mid-conversation system message sent as user text for anthropic");
            system_text(m, &mut blocks, warnings);
        } else {
            blocks.extend(m.parts.iter().filter_map(|p| encode_part(p, warnings)));
        }
        let role = if m.role == Role::Assistant {
            Role::Assistant
        } else {
            Role::User
        };
        match turns.last_mut() {
            _ if blocks.is_empty() => {}
            Some((r, b)) if *r == role => b.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    for (role, blocks) in &mut turns {
        if *role == Role::User {
            // Stable: results keep their order, and so does the rest.
            blocks.sort_by_key(|b| !matches!(b, AnthBlock::ToolResult { .. }));
        }
    }

    let mut body = AnthRequest {
        model: model.to_owned(),
        messages: turns
            .into_iter()
            .map(|(role, blocks)| AnthMessage {
                role: if role == Role::Assistant {
                    "assistant"
                } else {
                    "user"
                }
                .to_owned(),
                content: content(blocks),
            })
            .collect(),
        max_tokens: Some(DEFAULT_MAX_TOKENS),
        system: (!system.is_empty()).then(|| content(system)),
        metadata: None,
        stop_sequences: None,
        stream: None,
        temperature: None,
        top_p: None,
        top_k: None,
        tools: None,
        tool_choice: None,
        thinking: None,
        output_config: None,
        extra: JsonMap::new(),
    };
    encode_params(req, &mut body, warnings);
    body
}

/// One plain text block is sent as a string, anything else as blocks.
fn content(mut blocks: Vec<AnthBlock>) -> AnthContent {
    if let [
        AnthBlock::Text {
            cache_control: None,
            ..
        },
    ] = blocks.as_slice()
        && let Some(AnthBlock::Text { text, .. }) = blocks.pop()
    {
        return AnthContent::Text(text);
    }
    AnthContent::Blocks(blocks)
}

/// A system message's text blocks (the only kind a system prompt holds).
fn system_text(m: &Message, out: &mut Vec<AnthBlock>, warnings: &mut Warnings) {
    for p in &m.parts {
        match p {
            Part::Text(t) if t.text.is_empty() => {}
            Part::Text(t) => out.push(AnthBlock::Text {
                text: t.text.clone(),
                cache_control: t.cache_control.clone(),
                citations: None,
            }),
            _ => warnings.push("non-text system content dropped for anthropic"),
        }
    }
}

fn encode_part(p: &Part, warnings: &mut Warnings) -> Option<AnthBlock> {
    Some(match p {
        // Anthropic refuses empty text blocks.
        Part::Text(t) if t.text.is_empty() => return None,
        Part::Text(t) => AnthBlock::Text {
            text: t.text.clone(),
            cache_control: t.cache_control.clone(),
            citations: None,
        },
        Part::Image(i) => {
            if i.detail.is_some() {
                warnings.push("image detail dropped for anthropic");
            }
            AnthBlock::Image {
                source: media_source(&i.source),
                cache_control: None,
            }
        }
        Part::File(f) => match &f.source {
            // An image sent as a file is an image to Anthropic (documents are PDF or text).
            FileSource::Media(m @ MediaSource::Base64 { media_type, .. })
                if media_type.starts_with("image/") =>
            {
                AnthBlock::Image {
                    source: media_source(m),
                    cache_control: None,
                }
            }
            FileSource::Media(m) => AnthBlock::Document {
                source: media_source(m),
                title: f.filename.clone().filter(|t| !t.is_empty()),
                cache_control: None,
            },
            // Ids belong to another provider's file store (Anthropic's need a beta header).
            FileSource::FileId(_) => {
                warnings.push("file id dropped for anthropic");
                return None;
            }
        },
        Part::Audio { .. } => {
            warnings.push("audio dropped for anthropic");
            return None;
        }
        Part::ToolCall(c) => AnthBlock::ToolUse {
            id: tool_id(&c.id, warnings),
            name: c.name.clone(),
            input: tool_input(&c.arguments, warnings),
            cache_control: None,
        },
        Part::ToolResult(r) => {
            let mut blocks = Vec::with_capacity(r.content.len());
            for p in &r.content {
                match encode_part(p, warnings) {
                    Some(b @ (AnthBlock::Text { .. } | AnthBlock::Image { .. })) => blocks.push(b),
                    Some(b @ AnthBlock::Document { .. }) => blocks.push(b),
                    Some(_) => warnings.push("non-content tool result part dropped for anthropic"),
                    None => {}
                }
            }
            AnthBlock::ToolResult {
                tool_use_id: tool_id(&r.call_id, warnings),
                content: (!blocks.is_empty()).then(|| content(blocks)),
                is_error: r.is_error.then_some(true),
                cache_control: None,
            }
        }
        Part::Reasoning {
            text,
            signature: Some(signature),
        } if !signature.is_empty() => AnthBlock::Thinking {
            thinking: text.clone(),
            signature: signature.clone(),
        },
        Part::Reasoning { .. } => {
            warnings.push("unsigned reasoning dropped for anthropic");
            return None;
        }
        Part::RedactedReasoning { data } => AnthBlock::RedactedThinking { data: data.clone() },
        Part::Opaque {
            schema: WireSchema::AnthropicMessages,
            value,
        } => AnthBlock::Other(value.clone()),
        Part::Opaque { value, .. } => {
            let kind = value
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            warnings.push(format!("{kind} block dropped for anthropic"));
            return None;
        }
    })
}

fn media_source(m: &MediaSource) -> AnthSource {
    match m {
        MediaSource::Url(url) => AnthSource::Url { url: url.clone() },
        MediaSource::Base64 { media_type, data } => AnthSource::Base64 {
            media_type: media_type.clone(),
            data: data.clone(),
        },
    }
}

/// Tool-use ids must match `^[a-zA-Z0-9_-]+$`. Others are rewritten the same way wherever
/// they appear (a call and its result), with a hash of the original so two never collide.
fn tool_id(id: &str, warnings: &mut Warnings) -> String {
    match conforming_tool_id(id) {
        None => id.to_owned(),
        Some(rewritten) => {
            warnings.push("tool call ids rewritten for anthropic");
            rewritten
        }
    }
}

/// Tool-call arguments as the JSON object `input` must be.
fn tool_input(arguments: &str, warnings: &mut Warnings) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            warnings.push("invalid tool call arguments sent as {} for anthropic");
            json!({})
        }
    }
}
