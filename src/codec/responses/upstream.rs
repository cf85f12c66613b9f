//! A Responses request passed through to OpenAI itself (SPEC §3): the reply's usage, and the
//! event stream relayed as it comes with its usage and finish read alongside.
//!
//! The stream ends with its terminal event (`response.completed`, `response.incomplete`
//! or `response.failed`), which is relayed too; there is no `[DONE]`.

use serde::Deserialize;
use serde_json::Value;

use crate::codec::upstream_stream::{SseEvent, StreamDecoder, StreamStep};
use crate::error::{ErrorKind, GatewayError};
use crate::schema::{Delta, FinishReason, StreamEvent, Usage};

#[derive(Debug, Default, Deserialize)]
struct WireUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    input_tokens_details: Option<Details>,
    output_tokens_details: Option<Details>,
}

#[derive(Debug, Default, Deserialize)]
struct Details {
    #[serde(default)]
    cached_tokens: u64,
    #[serde(default)]
    cache_write_tokens: u64,
    #[serde(default)]
    reasoning_tokens: u64,
}

fn usage(u: &WireUsage) -> Usage {
    let input = u.input_tokens_details.as_ref();
    Usage {
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
        cache_read_tokens: input.map_or(0, |d| d.cached_tokens),
        cache_write_tokens: input.map_or(0, |d| d.cache_write_tokens),
        reasoning_tokens: u
            .output_tokens_details
            .as_ref()
            .map_or(0, |d| d.reasoning_tokens),
    }
}

/// The usage of a response object.
pub fn reply_usage(body: &[u8]) -> Result<Option<Usage>, serde_json::Error> {
    use serde::de::Error;
    let member =
        crate::codec::scan::top_level_member(body, "usage").map_err(serde_json::Error::custom)?;
    usage_member(member)
}

/// The usage of a response object from its raw `usage` member.
pub fn usage_member(member: Option<&[u8]>) -> Result<Option<Usage>, serde_json::Error> {
    let Some(member) = member else {
        return Ok(None);
    };
    let u: Option<WireUsage> = serde_json::from_slice(member)?;
    Ok(u.as_ref().map(usage))
}

/// Is this raw top-level `object` member a response object's (rather than a chat
/// completion's)?
pub fn is_response_object(object: Option<&[u8]>) -> bool {
    object.is_some_and(|v| v == b"\"response\"")
}

/// Relays a Responses stream event for event.
pub struct RawDecoder {
    pub provider: &'static str,
    /// Also emit the text it relays as deltas (a mirrored request's record).
    pub text: bool,
}

impl StreamDecoder for RawDecoder {
    fn decode(&mut self, ev: &SseEvent) -> Result<StreamStep, GatewayError> {
        let data = ev.data.trim();
        if data.is_empty() {
            return Ok(StreamStep::Events(Vec::new()));
        }
        let raw = StreamEvent::Raw(ev.to_bytes());
        // Most events are deltas: relayed without parsing unless their text is wanted.
        let kind = event_type(ev);
        let terminal = matches!(
            kind.as_deref(),
            Some("response.completed" | "response.incomplete" | "response.failed")
        );
        if !terminal && kind.as_deref() != Some("error") {
            let mut events = vec![raw];
            if self.text && kind.as_deref() == Some("response.output_text.delta") {
                let v: Value = serde_json::from_str(data).map_err(|e| bad(self.provider, &e))?;
                if let Some(t) = v.get("delta").and_then(Value::as_str) {
                    events.push(StreamEvent::Delta {
                        choice: 0,
                        delta: Delta::Text(t.to_owned()),
                    });
                }
            }
            return Ok(StreamStep::Events(events));
        }
        let v: Value = serde_json::from_str(data).map_err(|e| bad(self.provider, &e))?;
        if kind.as_deref() == Some("error") {
            let message = v
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("error event in stream");
            return Err(GatewayError::new(
                ErrorKind::UpstreamFailed,
                format!("{}: {message}", self.provider),
            ));
        }
        let response = v.get("response").cloned().unwrap_or(Value::Null);
        let mut events = vec![raw];
        if let Some(u) = response.get("usage")
            && let Ok(u) = serde_json::from_value::<WireUsage>(u.clone())
        {
            events.push(StreamEvent::Usage(usage(&u)));
        }
        let reason = match kind.as_deref() {
            Some("response.incomplete") => match response
                .pointer("/incomplete_details/reason")
                .and_then(Value::as_str)
            {
                Some("content_filter") => FinishReason::ContentFilter,
                _ => FinishReason::Length,
            },
            Some("response.failed") => FinishReason::Error,
            _ => FinishReason::Stop,
        };
        events.push(StreamEvent::Finish { choice: 0, reason });
        Ok(StreamStep::Last(events))
    }
}

/// The event's type: its `event:` line, else the `type` in its data.
fn event_type(ev: &SseEvent) -> Option<String> {
    if let Some(e) = &ev.event {
        return Some(e.clone());
    }
    let member = crate::codec::scan::top_level_member(ev.data.as_bytes(), "type").ok()??;
    serde_json::from_slice(member).ok()
}

fn bad(provider: &str, e: &serde_json::Error) -> GatewayError {
    GatewayError::new(
        ErrorKind::UpstreamFailed,
        format!("{provider} sent an unreadable stream event: {e}"),
    )
}

/// The client's body for a provider that speaks Responses, when the gateway continued a
/// stored conversation itself: the earlier turns' items put before the input, and
/// `previous_response_id` removed (the provider never saw that response). The adapter
/// replaces the model later, as for any passthrough.
pub fn with_history(raw: &[u8], history: &[Value]) -> Result<bytes::Bytes, serde_json::Error> {
    let mut v: serde_json::Map<String, Value> = serde_json::from_slice(raw)?;
    let own = match v.remove("input") {
        Some(Value::String(text)) => vec![serde_json::json!({"role": "user", "content": text})],
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    let mut input = history.to_vec();
    input.extend(own);
    v.insert("input".into(), Value::Array(input));
    v.remove("previous_response_id");
    Ok(serde_json::to_vec(&v)?.into())
}
