//! Reading a provider's refusal: every error body shape the providers and the common
//! self-hosted servers send, reduced to the provider's own words (what is wrong, and with
//! which field), never its raw body.
//!
//! Shapes read, whichever provider sent them (servers behind `openai-compatible` vary):
//! - OpenAI, llama-server, new vLLM, Azure: `{"error": {"message", "type", "param", "code"}}`
//!   (Azure may add `innererror.code`, e.g. `ResponsibleAIPolicyViolation`);
//! - Anthropic: `{"type": "error", "error": {"type", "message"}}`;
//! - Gemini: `{"error": {"code", "message", "status", "details": [{"fieldViolations": [...]}]}}`,
//!   also wrapped in a one-element array;
//! - Mistral and old vLLM: `{"object": "error", "message", "type", "param", "code"}`, where
//!   Mistral's `message` may be an object holding a pydantic `detail` list;
//! - FastAPI/pydantic (Mistral's 422, vLLM and others): `{"detail": [{"type", "loc", "msg",
//!   "input"}]}` or `{"detail": "text"}`;
//! - Bedrock: `{"message"}` or `{"Message"}`, with `__type`;
//! - Ollama and TGI: `{"error": "text"}` (TGI adds `error_type`);
//! - a short plain-text body that is not HTML.
//!
//! The result is redacted by the executor (provider keys and credential shapes) before it
//! reaches the caller; here only the caller's own inputs are kept short.

use serde_json::Value;

/// What a provider said when it refused a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProviderError {
    /// The provider's explanation, with the field it names (`reasoning_effort: Input should
    /// be 'none' or 'high' (got 'medium')`).
    pub message: String,
    /// The request field the provider blamed, as a dotted path (`messages.0.content`).
    pub param: Option<String>,
    /// The provider's own error type or status (`invalid_request_error`, `INVALID_ARGUMENT`,
    /// `ValidationException`).
    pub kind: Option<String>,
}

/// Longest plain-text body taken as a message; longer ones are pages, not messages.
const MAX_TEXT: usize = 600;
/// Longest value of the caller's input quoted back in a validation message.
const MAX_INPUT: usize = 80;
/// Most validation entries listed; the rest are counted.
const MAX_ENTRIES: usize = 5;

/// The provider's refusal in `body`, if it says anything readable.
pub fn read(body: &[u8]) -> Option<ProviderError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => read_value(&v),
        Err(_) => plain_text(body),
    }
}

/// [`read`] on a parsed body.
pub fn read_value(v: &Value) -> Option<ProviderError> {
    let v = match v {
        Value::Array(items) => items.first()?,
        v => v,
    };
    let obj = v.as_object()?;
    if let Some(e) = obj.get("error") {
        match e {
            Value::Object(_) => {
                if let Some(found) = from_error_object(e) {
                    return Some(found);
                }
            }
            Value::String(s) if !s.trim().is_empty() => {
                return Some(ProviderError {
                    message: s.trim().to_owned(),
                    param: None,
                    kind: string(obj.get("error_type")),
                });
            }
            _ => {}
        }
    }
    if let Some(m) = obj.get("message").or_else(|| obj.get("Message")) {
        let kind = string(obj.get("type")).or_else(|| string(obj.get("__type")));
        match m {
            Value::String(s) if !s.trim().is_empty() => {
                return Some(ProviderError {
                    message: s.trim().to_owned(),
                    param: string(obj.get("param")),
                    kind,
                });
            }
            // Mistral's validation form: the message is an object with a `detail` list.
            Value::Object(_) | Value::Array(_) => {
                if let Some(mut found) = read_value(m).or_else(|| detail(m)) {
                    found.kind = found.kind.or(kind);
                    return Some(found);
                }
            }
            _ => {}
        }
    }
    detail(v)
}

/// `{"message", "type"|"status", "param", "code", "details", "innererror"}`.
fn from_error_object(e: &Value) -> Option<ProviderError> {
    let kind = string(e.get("type")).or_else(|| string(e.get("status")));
    let mut param = string(e.get("param"));
    let mut message = match e.get("message") {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(m @ (Value::Object(_) | Value::Array(_))) => {
            let inner = read_value(m).or_else(|| detail(m))?;
            param = param.or(inner.param);
            inner.message
        }
        _ => String::new(),
    };
    // Gemini's field violations name the field and the reason.
    let violations: Vec<(String, String)> = e
        .get("details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| d.get("fieldViolations").and_then(Value::as_array))
        .flatten()
        .filter_map(|f| {
            let field = string(f.get("field"))?;
            let why = string(f.get("description")).unwrap_or_default();
            Some((field, why))
        })
        .collect();
    if param.is_none() {
        param = violations.first().map(|(f, _)| f.clone());
    }
    for (field, why) in violations.iter().take(MAX_ENTRIES) {
        if !message.contains(field.as_str()) {
            push_sentence(&mut message, &format!("{field}: {why}"));
        }
    }
    if let Some(inner) = e
        .get("innererror")
        .and_then(|i| string(i.get("code")))
        .filter(|c| !message.contains(c.as_str()))
    {
        push_sentence(&mut message, &format!("({inner})"));
    }
    if message.is_empty() {
        // No words, but a code is better than nothing (`{"error": {"code": "model_not_found"}}`).
        message = string(e.get("code")).or_else(|| kind.clone())?;
    }
    Some(ProviderError {
        message,
        param,
        kind,
    })
}

/// FastAPI/pydantic's `detail`: a list of validation entries, or a text.
fn detail(v: &Value) -> Option<ProviderError> {
    match v.get("detail")? {
        Value::String(s) if !s.trim().is_empty() => Some(ProviderError {
            message: s.trim().to_owned(),
            ..ProviderError::default()
        }),
        Value::Array(entries) if !entries.is_empty() => {
            let mut message = String::new();
            let mut param = None;
            for entry in entries.iter().take(MAX_ENTRIES) {
                let (field, text) = validation_entry(entry);
                if param.is_none() {
                    param = field;
                }
                if !message.is_empty() {
                    message.push_str("; ");
                }
                message.push_str(&text);
            }
            if entries.len() > MAX_ENTRIES {
                message.push_str(&format!("; and {} more", entries.len() - MAX_ENTRIES));
            }
            Some(ProviderError {
                message,
                param,
                kind: None,
            })
        }
        _ => None,
    }
}

/// One pydantic entry, `{"type", "loc": ["body", "reasoning_effort"], "msg", "input"}`, as
/// its field (`loc` without the leading `body`) and `field: msg (got input)`.
fn validation_entry(entry: &Value) -> (Option<String>, String) {
    let msg = string(entry.get("msg")).unwrap_or_else(|| "invalid".to_owned());
    let field = entry.get("loc").and_then(Value::as_array).map(|loc| {
        loc.iter()
            .skip_while(|p| p.as_str() == Some("body"))
            .map(|p| match p {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(".")
    });
    let field = field.filter(|f| !f.is_empty());
    let mut text = match &field {
        Some(f) => format!("{f}: {msg}"),
        None => msg,
    };
    // The caller's own value helps when it is short (an enum, a number); a long one (a
    // message, a whole body) is left out.
    let got = match entry.get("input") {
        Some(Value::String(s)) if s.chars().count() <= MAX_INPUT => Some(format!("'{s}'")),
        Some(n @ (Value::Number(_) | Value::Bool(_))) => Some(n.to_string()),
        _ => None,
    };
    if let Some(got) = got {
        text.push_str(&format!(" (got {got})"));
    }
    (field, text)
}

/// A short text body that is not a page.
fn plain_text(body: &[u8]) -> Option<ProviderError> {
    let text = std::str::from_utf8(body).ok()?.trim();
    if text.is_empty() || text.len() > MAX_TEXT || text.starts_with('<') {
        return None;
    }
    Some(ProviderError {
        message: text.to_owned(),
        ..ProviderError::default()
    })
}

/// A string member, or a number as text (`"code": 400`).
fn string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn push_sentence(message: &mut String, more: &str) {
    if message.is_empty() {
        message.push_str(more);
    } else {
        let sep = if message.ends_with(['.', ':', ';']) {
            " "
        } else {
            ": "
        };
        message.push_str(sep);
        message.push_str(more);
    }
}

#[cfg(test)]
mod tests;
