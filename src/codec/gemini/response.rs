//! Canonical reply -> Gemini `GenerateContentResponse`; Gemini's error body.

use serde_json::{Value, json};

use crate::error::{ErrorKind, GatewayError};
use crate::schema::*;

/// Gemini's finish reason for a canonical one.
pub fn finish_reason(r: &FinishReason) -> &'static str {
    match r {
        FinishReason::Stop
        | FinishReason::StopSequence(_)
        | FinishReason::ToolCalls
        | FinishReason::PauseTurn => "STOP",
        FinishReason::Length | FinishReason::ContextWindowExceeded => "MAX_TOKENS",
        FinishReason::ContentFilter | FinishReason::Refusal => "SAFETY",
        FinishReason::Error | FinishReason::Other(_) => "OTHER",
    }
}

pub fn usage_json(u: &Usage) -> Value {
    let mut v = json!({
        "promptTokenCount": u.input_tokens,
        "candidatesTokenCount": u.output_tokens.saturating_sub(u.reasoning_tokens),
        "totalTokenCount": u.total(),
    });
    if u.reasoning_tokens > 0 {
        v["thoughtsTokenCount"] = json!(u.reasoning_tokens);
    }
    if u.cache_read_tokens > 0 {
        v["cachedContentTokenCount"] = json!(u.cache_read_tokens);
    }
    v
}

/// A function call's part: its arguments as an object (Gemini has no text form).
pub fn call_part(c: &ToolCall) -> Value {
    let args: Value = serde_json::from_str(&c.arguments)
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    json!({"functionCall": {"id": c.id, "name": c.name, "args": args}})
}

pub fn encode_response(r: &ChatResponse) -> Value {
    let candidates: Vec<Value> = r
        .choices
        .iter()
        .map(|c| {
            let mut parts = Vec::new();
            for p in &c.message.parts {
                match p {
                    Part::Text(t) => parts.push(json!({"text": t.text})),
                    Part::Reasoning { text, signature } => {
                        let mut part = json!({"text": text, "thought": true});
                        if let Some(s) = signature {
                            part["thoughtSignature"] = json!(s);
                        }
                        parts.push(part);
                    }
                    Part::ToolCall(call) => parts.push(call_part(call)),
                    _ => {}
                }
            }
            let mut cand = json!({"content": {"role": "model", "parts": parts}, "index": c.index});
            if let Some(f) = &c.finish_reason {
                cand["finishReason"] = json!(finish_reason(f));
            }
            cand
        })
        .collect();
    let mut v = json!({"candidates": candidates, "modelVersion": r.model, "responseId": r.id});
    if let Some(u) = &r.usage {
        v["usageMetadata"] = usage_json(u);
    }
    v
}

/// `{"error": {"code", "message", "status"}}`, Google's error shape.
pub fn error_body(e: &GatewayError) -> Value {
    let code = e.status().as_u16();
    let status = match e.kind {
        ErrorKind::InvalidRequest
        | ErrorKind::PayloadTooLarge
        | ErrorKind::HeadersTooLarge
        | ErrorKind::UnsupportedMediaType => "INVALID_ARGUMENT",
        ErrorKind::Unauthorized => "UNAUTHENTICATED",
        ErrorKind::Forbidden => "PERMISSION_DENIED",
        ErrorKind::ModelNotFound | ErrorKind::NotFound => "NOT_FOUND",
        ErrorKind::RateLimited | ErrorKind::BudgetExhausted => "RESOURCE_EXHAUSTED",
        ErrorKind::UpstreamTimeout | ErrorKind::RequestTimeout => "DEADLINE_EXCEEDED",
        ErrorKind::UpstreamUnavailable | ErrorKind::Unavailable | ErrorKind::BudgetUnavailable => {
            "UNAVAILABLE"
        }
        ErrorKind::UpstreamRejected if code == 400 => "INVALID_ARGUMENT",
        ErrorKind::Conflict => "ALREADY_EXISTS",
        // Google's status for a concurrency conflict.
        ErrorKind::IdempotencyKeyInUse => "ABORTED",
        ErrorKind::IdempotencyKeyReused => "INVALID_ARGUMENT",
        ErrorKind::MethodNotAllowed => "UNIMPLEMENTED",
        _ => "INTERNAL",
    };
    json!({"error": {"code": code, "message": e.message, "status": status}})
}
