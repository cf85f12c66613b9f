//! Canonical response -> Anthropic Messages reply, and Anthropic error bodies.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

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
/// them (see `schema::usage`). Saturating, as the counts are the provider's.
pub fn usage_json(u: &Usage) -> Value {
    let cached = u.cache_read_tokens.saturating_add(u.cache_write_tokens);
    json!({
        "input_tokens": u.input_tokens.saturating_sub(cached),
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

/// A tool-use id as the spec requires it (`^[a-zA-Z0-9_-]+$`): one made up for a call the
/// provider gave none, and the provider's id rewritten by [`conforming_tool_id`] when it has
/// other characters (OpenAI-compatible servers send ids like `functions.get_weather:0`).
pub fn tool_use_id(id: &str, index: usize) -> String {
    if id.is_empty() {
        format!("toolu_gh{index:04}")
    } else {
        conforming_tool_id(id).unwrap_or_else(|| id.to_owned())
    }
}

/// `None` when `id` matches `^[a-zA-Z0-9_-]+$`; otherwise the id with each other character
/// replaced by `_` and four bytes of its SHA-256 appended, so that two ids never collide and
/// an id maps the same way in every turn with no state kept (the client sends the new id back
/// in its `tool_result`, and the call in its history carries it too). Shared with the
/// upstream encoder, so an id rewritten for a client is already valid for Anthropic.
pub(super) fn conforming_tool_id(id: &str) -> Option<String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !id.is_empty() && id.chars().all(ok) {
        return None;
    }
    let hash = Sha256::digest(id.as_bytes());
    let kept: String = id.chars().map(|c| if ok(c) { c } else { '_' }).collect();
    Some(format!(
        "{kept}_{:02x}{:02x}{:02x}{:02x}",
        hash[0], hash[1], hash[2], hash[3]
    ))
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
            Part::Text(t) if !t.citations.is_empty() => cited_blocks(t, &mut content),
            Part::Text(t) if !t.text.is_empty() => content.push(json!({"type": "text", "text": t.text})),
            Part::Reasoning { text, signature } => content.push(
                json!({"type": "thinking", "thinking": text, "signature": signature.clone().unwrap_or_default()}),
            ),
            Part::RedactedReasoning { data } => content.push(json!({"type": "redacted_thinking", "data": data})),
            // Server tools' calls and results, and other blocks kept whole.
            Part::Opaque {
                schema: WireSchema::AnthropicMessages,
                value,
            } => content.push(value.clone()),
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
        ErrorKind::RateLimited | ErrorKind::BudgetExhausted => "rate_limit_error",
        ErrorKind::Unavailable | ErrorKind::UpstreamUnavailable => "overloaded_error",
        // Anthropic's own type for a request that took too long (its spec's `TimeoutError`).
        ErrorKind::UpstreamTimeout => "timeout_error",
        ErrorKind::UpstreamFailed
        | ErrorKind::LoopDetected
        | ErrorKind::BudgetUnavailable
        | ErrorKind::Internal => "api_error",
        _ => "invalid_request_error",
    };
    json!({"type": "error", "error": {"type": kind, "message": e.message}})
}

/// An Anthropic citation as a canonical one: web sources keep their URL, title and passage;
/// the others (passages of the request's documents) only their kind.
pub fn decode_citation(c: &Value) -> Citation {
    let text = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_owned);
    Citation {
        kind: text("type").unwrap_or_else(|| "unknown".to_owned()),
        url: text("url"),
        title: text("title"),
        cited_text: text("cited_text"),
        range: None,
    }
}

/// A text part with citations as Anthropic text blocks: each cited range (or the whole
/// part) a block of its own with its web sources as `web_search_result_location` citations,
/// the text between them plain blocks. Sources without a URL were another schema's and
/// have no form here (noted by `codec::note_unsent`).
fn cited_blocks(t: &TextPart, content: &mut Vec<Value>) {
    let chars: Vec<char> = t.text.chars().collect();
    let slice = |a: usize, b: usize| -> String {
        chars[a.min(chars.len())..b.min(chars.len())]
            .iter()
            .collect()
    };
    let location = |c: &Citation, span: &str| {
        json!({"type": "web_search_result_location", "url": c.url, "title": c.title,
               "cited_text": c.cited_text.clone().unwrap_or_else(|| span.to_owned()), "encrypted_index": ""})
    };
    let web: Vec<&Citation> = t.citations.iter().filter(|c| c.is_web()).collect();
    // Ranges in order, without overlaps; citations of the whole part cite every block.
    let mut ranges: Vec<(usize, usize)> = web.iter().filter_map(|c| c.range).collect();
    ranges.sort_unstable();
    ranges.dedup();
    let whole: Vec<&Citation> = web.iter().copied().filter(|c| c.range.is_none()).collect();
    let mut at = 0;
    let push = |a: usize, b: usize, cited: Vec<&Citation>, content: &mut Vec<Value>| {
        let span = slice(a, b);
        if span.is_empty() {
            return;
        }
        let mut block = json!({"type": "text", "text": span});
        let cites: Vec<Value> = cited
            .iter()
            .chain(&whole)
            .map(|c| location(c, &span))
            .collect();
        if !cites.is_empty() {
            block["citations"] = Value::Array(cites);
        }
        content.push(block);
    };
    for (a, b) in ranges {
        if a < at || b <= a {
            continue;
        }
        push(at, a, Vec::new(), content);
        let cited = web
            .iter()
            .copied()
            .filter(|c| c.range == Some((a, b)))
            .collect();
        push(a, b, cited, content);
        at = b;
    }
    push(at, chars.len(), Vec::new(), content);
}
