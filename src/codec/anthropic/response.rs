//! Canonical response -> Anthropic Messages reply, and Anthropic error bodies.

use serde_json::{Value, json};

use crate::error::{ErrorKind, GatewayError};
use crate::schema::*;

/// Anthropic's `stop_reason` for a canonical finish reason.
pub fn stop_reason(f: Option<&FinishReason>) -> &'static str {
    match f {
        None | Some(FinishReason::Stop | FinishReason::Error | FinishReason::Other(_)) => {
            "end_turn"
        }
        Some(FinishReason::StopSequence(_)) => "stop_sequence",
        Some(FinishReason::Length) => "max_tokens",
        Some(FinishReason::ToolCalls) => "tool_use",
        Some(FinishReason::ContentFilter | FinishReason::Refusal) => "refusal",
        Some(FinishReason::PauseTurn) => "pause_turn",
        Some(FinishReason::ContextWindowExceeded) => "model_context_window_exceeded",
    }
}

/// Anthropic counts input tokens without cache reads and writes; the canonical count includes
/// them (see `schema::usage`).
pub fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input_tokens.saturating_sub(u.cache_read_tokens + u.cache_write_tokens),
        "output_tokens": u.output_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
    })
}

/// A tool call's arguments as the JSON object Anthropic's `input` must be; arguments that are
/// not a JSON object are wrapped so nothing is lost.
pub fn tool_input(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        Ok(other) => json!({ "value": other }),
        Err(_) => json!({ "arguments": arguments }),
    }
}

/// A tool-use id for a call the provider gave none.
pub fn tool_use_id(id: &str, index: usize) -> String {
    if id.is_empty() {
        format!("toolu_gh{index:04}")
    } else {
        id.to_owned()
    }
}

/// Encode the first choice of a canonical reply as an Anthropic `message`.
pub fn encode_response(r: &ChatResponse) -> Value {
    let choice = r.choices.first();
    let mut content = Vec::new();
    let mut calls = 0;
    for p in choice
        .map(|c| c.message.parts.as_slice())
        .unwrap_or_default()
    {
        match p {
            Part::Text(t) if !t.text.is_empty() => content.push(json!({"type": "text", "text": t.text})),
            Part::Reasoning { text, signature } => content.push(
                json!({"type": "thinking", "thinking": text, "signature": signature.clone().unwrap_or_default()}),
            ),
            Part::RedactedReasoning { data } => content.push(json!({"type": "redacted_thinking", "data": data})),
            Part::ToolCall(c) => {
                content.push(json!({"type": "tool_use", "id": tool_use_id(&c.id, calls), "name": c.name, "input": tool_input(&c.arguments)}));
                calls += 1;
            }
            _ => {}
        }
    }
    if let Some(refusal) = choice
        .and_then(|c| c.message.extra.get("refusal"))
        .and_then(Value::as_str)
    {
        content.push(json!({"type": "text", "text": refusal}));
    }
    let finish = choice.and_then(|c| c.finish_reason.as_ref());
    let stop_sequence = match finish {
        Some(FinishReason::StopSequence(s)) => s.clone().map(Value::String).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    json!({
        "id": message_id(&r.id),
        "type": "message",
        "role": "assistant",
        "model": r.model,
        "content": content,
        "stop_reason": stop_reason(finish),
        "stop_sequence": stop_sequence,
        "usage": usage_json(&r.usage.unwrap_or_default()),
    })
}

/// Anthropic message ids start with `msg_`; keep the provider's id behind that prefix.
pub fn message_id(id: &str) -> String {
    if id.starts_with("msg_") {
        id.to_owned()
    } else {
        format!("msg_{id}")
    }
}

/// `{"type":"error","error":{"type","message"}}` (SPEC §4).
pub fn error_body(e: &GatewayError) -> Value {
    let kind = match e.kind {
        ErrorKind::Unauthorized => "authentication_error",
        ErrorKind::Forbidden => "permission_error",
        ErrorKind::ModelNotFound | ErrorKind::NotFound => "not_found_error",
        ErrorKind::PayloadTooLarge => "request_too_large",
        ErrorKind::RateLimited => "rate_limit_error",
        ErrorKind::Unavailable | ErrorKind::UpstreamUnavailable => "overloaded_error",
        ErrorKind::UpstreamFailed
        | ErrorKind::UpstreamTimeout
        | ErrorKind::LoopDetected
        | ErrorKind::Internal => "api_error",
        _ => "invalid_request_error",
    };
    json!({"type": "error", "error": {"type": kind, "message": e.message}})
}
