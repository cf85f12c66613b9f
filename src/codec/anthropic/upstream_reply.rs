//! Anthropic Messages reply -> canonical reply, plus the pieces the stream decoder shares:
//! usage, stop reasons and error bodies. Upstream side of the codec (see `upstream`).

use serde_json::Value;

use super::wire::*;
use crate::schema::*;
use crate::unix_now;

/// Decode a provider's non-streamed reply (`Message`). Blocks keep their order; block types
/// the model does not name (server tool calls and results, ...) are kept whole as
/// `Part::Opaque`, so an Anthropic client still gets them back. Citations on text are kept.
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, serde_json::Error> {
    let w: AnthResponse = serde_json::from_slice(body)?;
    let mut parts = Vec::with_capacity(w.content.len());
    for b in w.content {
        parts.push(match b {
            AnthBlock::Text {
                text, citations, ..
            } => Part::Text(TextPart {
                text,
                cache_control: None,
                citations: citations
                    .unwrap_or_default()
                    .iter()
                    .map(super::response::decode_citation)
                    .collect(),
            }),
            AnthBlock::Thinking {
                thinking,
                signature,
            } => super::request::reasoning_part(thinking, signature),
            AnthBlock::RedactedThinking { data } => Part::RedactedReasoning { data },
            AnthBlock::ToolUse {
                id, name, input, ..
            } => Part::ToolCall(ToolCall {
                id,
                name,
                arguments: input.to_string(),
            }),
            AnthBlock::Other(value) => opaque(value),
            // Request-only block types, not expected in a reply: kept whole all the same.
            other => opaque(serde_json::to_value(other)?),
        });
    }
    let finish_reason = w
        .stop_reason
        .as_deref()
        .map(|r| finish_reason(r, w.stop_sequence));
    let mut extra = w.extra;
    extra.retain(|_, v| !v.is_null());
    Ok(ChatResponse {
        id: w.id,
        model: w.model,
        // Anthropic replies carry no timestamp: the time it arrived.
        created: unix_now(),
        choices: vec![Choice {
            index: 0,
            message: Message {
                role: Role::Assistant,
                parts,
                name: None,
                extra: JsonMap::new(),
            },
            finish_reason,
            logprobs: None,
        }],
        usage: Some(decode_usage(&w.usage)),
        system_fingerprint: None,
        extra,
    })
}

fn opaque(value: Value) -> Part {
    Part::Opaque {
        schema: WireSchema::AnthropicMessages,
        value,
    }
}

/// Anthropic's usage in the canonical convention: `input_tokens` counts cache reads and
/// writes too (the ingress encoder's `usage_json` takes them out again).
pub fn decode_usage(u: &AnthUsage) -> Usage {
    let read = u.cache_read_input_tokens.unwrap_or(0);
    let write = u.cache_creation_input_tokens.unwrap_or(0);
    Usage {
        input_tokens: u
            .input_tokens
            .unwrap_or(0)
            .saturating_add(read)
            .saturating_add(write),
        output_tokens: u.output_tokens.unwrap_or(0),
        cache_read_tokens: read,
        cache_write_tokens: write,
        reasoning_tokens: u.output_tokens_details.map_or(0, |d| d.thinking_tokens),
    }
}

/// The canonical finish reason for Anthropic's `stop_reason` (the inverse of the ingress
/// encoder's `stop_reason`).
pub fn finish_reason(stop_reason: &str, stop_sequence: Option<String>) -> FinishReason {
    match stop_reason {
        "end_turn" => FinishReason::Stop,
        "stop_sequence" => FinishReason::StopSequence(stop_sequence),
        "max_tokens" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::Refusal,
        "pause_turn" => FinishReason::PauseTurn,
        "model_context_window_exceeded" => FinishReason::ContextWindowExceeded,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// The HTTP status Anthropic uses for an error `type`, for errors that arrive inside a
/// stream (`event: error`), where the status line said 200.
pub fn error_status(kind: &str) -> u16 {
    match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    }
}
