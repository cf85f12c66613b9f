//! What every provider stream decoder shares, wherever its schema's codec is: the event it
//! reads ([`SseEvent`]), the step it returns ([`StreamStep`]), the trait ([`StreamDecoder`])
//! and the error of a reply it cannot read (`bad_reply`).
//!
//! The decoders are codec code (each schema's `upstream` half), and the provider layer above
//! drives them: its SSE parser (`providers::sse`) and AWS event-stream reader make the
//! events, its adapters hand out the decoders, and its executor feeds one with the other.
//! These types are defined here, in the lower layer, so that codec needs nothing from
//! providers.

use bytes::Bytes;

use crate::error::GatewayError;
use crate::schema::StreamEvent;

/// One Server-Sent Event of a provider's stream (or an AWS event-stream message in the same
/// shape), as `providers::sse::SseParser` reads it.
#[derive(Debug, Clone, Default)]
pub struct SseEvent {
    /// The `event:` field, when present.
    pub event: Option<String>,
    pub data: String,
    /// The event's own bytes, when they are exactly what [`Self::to_bytes`] would write. A
    /// memo of the wire form: not part of the event's identity (`==` ignores it).
    pub raw: Option<Bytes>,
}

impl PartialEq for SseEvent {
    fn eq(&self, other: &Self) -> bool {
        self.event == other.event && self.data == other.data
    }
}

impl Eq for SseEvent {}

impl SseEvent {
    /// The event written back as SSE text, for relaying it as it came.
    pub fn to_bytes(&self) -> Bytes {
        if let Some(raw) = &self.raw {
            return raw.clone();
        }
        let mut out = Vec::with_capacity(self.data.len() + 32);
        if let Some(name) = &self.event {
            out.extend_from_slice(b"event: ");
            out.extend_from_slice(name.as_bytes());
            out.push(b'\n');
        }
        let data = self.data.as_bytes();
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', data).chain([data.len()]) {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(&data[start..end]);
            out.push(b'\n');
            start = end + 1;
        }
        out.push(b'\n');
        Bytes::from(out)
    }
}

/// Result of decoding one upstream stream event.
#[derive(Debug, PartialEq)]
pub enum StreamStep {
    Events(Vec<StreamEvent>),
    /// The provider's terminator (`[DONE]`, `message_stop`, ...): the stream ended normally.
    Done,
    /// These events, and the stream ended normally with them (a terminator that carries
    /// content, such as the Responses API's `response.completed`).
    Last(Vec<StreamEvent>),
}

/// Per-stream decoding state (tool-call assembly and the like).
pub trait StreamDecoder: Send {
    fn decode(&mut self, ev: &SseEvent) -> Result<StreamStep, GatewayError>;

    /// True when every `StreamEvent::Raw` it emits comes with that event's whole meaning as
    /// canonical events, so the canonical events alone say whether a raw event carried
    /// content (text, a tool call, a finish) or only the stream's metadata (identity,
    /// usage). False (the default) when a raw event may carry content its canonical events
    /// do not show: the pipeline then takes every raw event as content.
    fn describes_raw(&self) -> bool {
        false
    }
}

/// A provider reply we cannot read is the provider's failure (502), retryable.
pub(crate) fn bad_reply(provider: &str, e: impl std::fmt::Display) -> GatewayError {
    GatewayError::new(
        crate::error::ErrorKind::UpstreamFailed,
        format!("{provider} returned a reply that could not be read: {e}"),
    )
}
