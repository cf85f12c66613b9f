//! Relaying a chosen stream to the client, event by event, as it arrives (STYLE §4.8).
//!
//! Each batch of upstream events is encoded in the client's schema and sent at once: nothing
//! is buffered beyond one batch. During a silence longer than the keep-alive interval an SSE
//! comment goes out. The provider's terminator ends the stream normally; any failure after
//! the first byte (idle timeout, broken connection, an in-stream error, a stream cut without
//! its terminator) becomes the schema's error event and ends the stream, never a normal stop.
//! Dropping the body (the client disconnected) drops the upstream stream, which closes the
//! provider connection, and the [`StreamRecord`] notes the cancellation.
//!
//! When the stream ends, however it ends, the record settles the request's admission with
//! the usage the provider reported. A stream cut before the provider's final usage (client
//! gone, provider failure) is charged for what was delivered: output tokens counted from the
//! text sent (o200k_base, plus 20 % for other vendors' tokenizers, and at least one token per
//! content event), input tokens as estimated at admission unless the provider said.

use std::convert::Infallible;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use tokio::time::{Instant, timeout};

use super::LiveStream;
use crate::error::GatewayError;
use crate::governance::admission::Delivered;
use crate::governance::{Admission, Outcome};
use crate::providers::exec::UpstreamEvents;
use crate::schema::{FinishReason, StreamEvent, Usage};

/// Encodes canonical events in one client schema's stream format.
pub trait StreamEncoder: Send + 'static {
    /// The client schema it writes (what it has no form for is noted as a warning).
    const SCHEMA: crate::schema::WireSchema;
    fn event(&mut self, ev: &StreamEvent, out: &mut BytesMut);
    /// The normal end (e.g. usage chunk and `[DONE]`).
    fn finish(&mut self, out: &mut BytesMut);
    /// The normal end of a stream relayed raw: only the schema's terminator, since
    /// everything else was the provider's own bytes.
    fn finish_raw(&mut self, out: &mut BytesMut);
    /// The error event that ends a failed stream.
    fn error(&mut self, err: &GatewayError, out: &mut BytesMut);
    /// What keeps the connection alive during a long silence: an SSE comment, unless the
    /// stream is not SSE.
    fn keepalive(&self) -> &'static [u8] {
        KEEPALIVE_COMMENT
    }
}

impl StreamEncoder for crate::codec::openai_chat::ChunkEncoder {
    const SCHEMA: crate::schema::WireSchema = crate::schema::WireSchema::OpenAiChat;
    fn event(&mut self, ev: &StreamEvent, out: &mut BytesMut) {
        self.encode(ev, out);
    }
    fn finish(&mut self, out: &mut BytesMut) {
        crate::codec::openai_chat::ChunkEncoder::finish(self, out);
    }
    fn finish_raw(&mut self, out: &mut BytesMut) {
        out.extend_from_slice(b"data: [DONE]\n\n");
    }
    fn error(&mut self, err: &GatewayError, out: &mut BytesMut) {
        crate::codec::openai_chat::ChunkEncoder::error(self, err, out);
    }
}

impl StreamEncoder for crate::codec::anthropic::MessageEncoder {
    const SCHEMA: crate::schema::WireSchema = crate::schema::WireSchema::AnthropicMessages;
    fn event(&mut self, ev: &StreamEvent, out: &mut BytesMut) {
        self.encode(ev, out);
    }
    fn finish(&mut self, out: &mut BytesMut) {
        crate::codec::anthropic::MessageEncoder::finish(self, out);
    }
    fn finish_raw(&mut self, out: &mut BytesMut) {
        out.extend_from_slice(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    }
    fn error(&mut self, err: &GatewayError, out: &mut BytesMut) {
        crate::codec::anthropic::MessageEncoder::error(self, err, out);
    }
}

impl StreamEncoder for crate::codec::responses::ResponsesEncoder {
    const SCHEMA: crate::schema::WireSchema = crate::schema::WireSchema::OpenAiResponses;
    fn event(&mut self, ev: &StreamEvent, out: &mut BytesMut) {
        self.encode(ev, out);
    }
    fn finish(&mut self, out: &mut BytesMut) {
        crate::codec::responses::ResponsesEncoder::finish(self, out);
    }
    /// OpenAI's own stream ends with its terminal event, relayed already.
    fn finish_raw(&mut self, _: &mut BytesMut) {
        crate::codec::responses::ResponsesEncoder::finish_raw(self);
    }
    fn error(&mut self, err: &GatewayError, out: &mut BytesMut) {
        crate::codec::responses::ResponsesEncoder::error(self, err, out);
    }
}

const KEEPALIVE_COMMENT: &[u8] = b": keep-alive\n\n";

impl StreamEncoder for crate::codec::gemini::GeminiEncoder {
    const SCHEMA: crate::schema::WireSchema = crate::schema::WireSchema::Gemini;
    fn event(&mut self, ev: &StreamEvent, out: &mut BytesMut) {
        self.encode(ev, out);
    }
    fn finish(&mut self, out: &mut BytesMut) {
        crate::codec::gemini::GeminiEncoder::finish(self, out);
    }
    fn finish_raw(&mut self, out: &mut BytesMut) {
        crate::codec::gemini::GeminiEncoder::finish_raw(self, out);
    }
    fn error(&mut self, err: &GatewayError, out: &mut BytesMut) {
        crate::codec::gemini::GeminiEncoder::error(self, err, out);
    }
    /// A JSON array may hold whitespace between its elements.
    fn keepalive(&self) -> &'static [u8] {
        if self.is_sse() {
            KEEPALIVE_COMMENT
        } else {
            b"\r\n"
        }
    }
}

/// What happened to a stream, kept until it ends or is dropped.
pub struct StreamRecord {
    pub request_id: String,
    pub provider: String,
    pub model: String,
    pub started: Instant,
    pub first_byte: Option<Duration>,
    pub usage: Usage,
    pub finish: Option<FinishReason>,
    pub outcome: Option<Result<(), GatewayError>>,
    /// Settled when the record drops.
    pub admission: Option<Admission>,
    /// Text sent to the client (up to [`MAX_COUNTED_TEXT`] bytes), and how many content
    /// events carried it, for a stream cut before its usage came.
    delivered: String,
    delivered_bytes: u64,
    content_events: u64,
    /// The request is mirrored: keep the delivered text in its record.
    mirrored: bool,
    /// The serving backend's and key's in-flight counts, held until the stream ends.
    _holds: Vec<crate::routing::backends::InFlight>,
    /// The request's translation notes, for its record.
    warnings: crate::codec::Warnings,
    /// The bodies its record may keep: the stream is tapped into it as it goes out.
    capture: Option<std::sync::Arc<crate::bodies::Capture>>,
}

/// Text kept to count a cut stream's tokens; beyond it the count is extrapolated.
const MAX_COUNTED_TEXT: usize = 64 * 1024;

impl StreamRecord {
    /// A record for the stream a request is about to relay; it takes over the request's
    /// admission.
    pub fn new(ctx: &mut super::RequestCtx) -> Self {
        let (provider, model) = ctx.served.clone().unwrap_or_default();
        Self {
            request_id: ctx.id.clone(),
            provider,
            model,
            started: ctx.started,
            first_byte: None,
            usage: Usage::default(),
            finish: None,
            outcome: None,
            admission: ctx.admission.take(),
            delivered: String::new(),
            delivered_bytes: 0,
            content_events: 0,
            mirrored: ctx.mirrored,
            _holds: std::mem::take(&mut ctx.holds),
            warnings: ctx.warnings.clone(),
            capture: ctx.capture.take(),
        }
    }

    fn observe(&mut self, ev: &StreamEvent) {
        use crate::schema::Delta;
        match ev {
            StreamEvent::Usage(u) => self.usage.merge(u),
            StreamEvent::Finish { reason, .. } => self.finish = Some(reason.clone()),
            StreamEvent::Delta { delta, .. } => {
                let text = match delta {
                    Delta::Text(t) | Delta::Refusal(t) | Delta::Reasoning(t) => t,
                    Delta::ToolCallArgs { fragment, .. } => fragment,
                    Delta::ToolCallStart { name, .. } => name,
                    Delta::ReasoningSignature(_)
                    | Delta::RedactedReasoning(_)
                    | Delta::Unrepresented(_)
                    | Delta::Citation { .. } => return,
                };
                self.content_events += 1;
                self.delivered_bytes += text.len() as u64;
                if self.delivered.len() + text.len() <= MAX_COUNTED_TEXT {
                    self.delivered.push_str(text);
                }
            }
            // A raw chunk (OpenAI passthrough) carries about one token.
            StreamEvent::Raw(_) if self.admission.is_some() => self.content_events += 1,
            _ => {}
        }
    }
}

impl Drop for StreamRecord {
    fn drop(&mut self) {
        if let Some(adm) = self.admission.take() {
            // Counting what was delivered needs the tokenizer: the settlement does it off the
            // runtime, never this drop (which may run while the provider connection closes).
            let output = self.mirrored.then(|| self.delivered.clone());
            let delivered =
                (self.usage.output_tokens == 0 || self.usage.input_tokens == 0).then(|| {
                    Delivered {
                        text: std::mem::take(&mut self.delivered),
                        bytes: self.delivered_bytes,
                        content_events: self.content_events,
                    }
                });
            adm.finish(Outcome {
                provider: Some(self.provider.clone()),
                model: Some(self.model.clone()),
                usage: self.usage,
                delivered,
                output,
                status: match &self.outcome {
                    Some(Ok(())) => "ok",
                    Some(Err(_)) => "error",
                    None => "cancelled",
                },
                report: crate::governance::Report {
                    // The stream's headers went out before any of this.
                    http_status: 200,
                    error: match &self.outcome {
                        Some(Err(e)) => Some((e.label(), e.message.clone())),
                        Some(Ok(())) => None,
                        None => Some((
                            crate::governance::admission::CLIENT_LEFT,
                            "the client closed the connection mid-stream".to_owned(),
                        )),
                    },
                    ttft_ms: self.first_byte.map(crate::millis),
                    warnings: (!self.warnings.is_empty()).then(|| self.warnings.header_value()),
                },
                bodies: self.capture.take(),
            });
        }
        // Read only when the line is written.
        let ms = || self.started.elapsed().as_millis() as u64;
        let u = &self.usage;
        match &self.outcome {
            Some(Ok(())) => tracing::debug!(
                request_id = %self.request_id, provider = %self.provider, model = %self.model,
                ttft_ms = self.first_byte.map(|d| d.as_millis() as u64),
                ms = ms(), input_tokens = u.input_tokens, output_tokens = u.output_tokens,
                finish = ?self.finish, "stream completed"
            ),
            Some(Err(e)) => tracing::warn!(
                request_id = %self.request_id, provider = %self.provider, model = %self.model,
                ms = ms(), input_tokens = u.input_tokens, output_tokens = u.output_tokens,
                error = %e, "stream failed after it started"
            ),
            None => tracing::debug!(
                request_id = %self.request_id, provider = %self.provider, model = %self.model,
                ms = ms(), output_tokens = u.output_tokens,
                "stream cancelled by the client"
            ),
        }
    }
}

struct Relay<E> {
    first: Option<Vec<StreamEvent>>,
    upstream: Option<UpstreamEvents>,
    encoder: E,
    /// The stream carries the provider's own events (`StreamEvent::Raw`).
    raw: bool,
    keepalive: Duration,
    record: StreamRecord,
    done: bool,
}

impl<E: StreamEncoder> Relay<E> {
    fn events(&mut self, events: &[StreamEvent], out: &mut BytesMut) {
        // Room for the provider's own events at once, rather than growing by doubling.
        let raw: usize = events
            .iter()
            .map(|ev| match ev {
                StreamEvent::Raw(b) => b.len(),
                _ => 0,
            })
            .sum();
        out.reserve(raw + 64);
        for ev in events {
            self.record.observe(ev);
            self.raw |= matches!(ev, StreamEvent::Raw(_));
            if !self.raw || matches!(ev, StreamEvent::Raw(_)) {
                if let StreamEvent::Delta { delta, .. } = ev
                    && let Some(w) = crate::codec::unsent_delta(delta, E::SCHEMA)
                {
                    self.record.warnings.push(w);
                }
                self.encoder.event(ev, out);
            }
        }
    }
}

/// The client-facing body of a stream.
pub fn relay<E: StreamEncoder>(
    live: LiveStream,
    encoder: E,
    keepalive: Duration,
    record: StreamRecord,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    // Boxed: `unfold` moves its state into each item's future and back out, and a relay's
    // state (the upstream stream, the record) is a few kilobytes; a box is a pointer.
    let state = Box::new(Relay {
        first: Some(live.first),
        upstream: live.upstream,
        encoder,
        raw: false,
        keepalive,
        record,
        done: false,
    });
    futures_util::stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        let mut out = BytesMut::new();
        if let Some(first) = s.first.take() {
            s.events(&first, &mut out);
        }
        loop {
            let step = match s.upstream.as_mut() {
                None => Ok(Ok(None)),
                Some(up) if out.is_empty() => timeout(s.keepalive, up.next()).await,
                // Send what we have first; read on at the next poll.
                Some(_) => break,
            };
            match step {
                Err(_) => {
                    out.extend_from_slice(s.encoder.keepalive());
                    break;
                }
                Ok(Ok(Some(events))) => s.events(&events, &mut out),
                Ok(Ok(None)) => {
                    if let Some(up) = s.upstream.take() {
                        up.finish();
                    }
                    if s.raw {
                        s.encoder.finish_raw(&mut out);
                    } else {
                        s.encoder.finish(&mut out);
                    }
                    s.record.outcome = Some(Ok(()));
                    s.done = true;
                    break;
                }
                Ok(Err(e)) => {
                    s.encoder.error(&e, &mut out);
                    s.record.outcome = Some(Err(e));
                    s.done = true;
                    break;
                }
            }
        }
        let keepalive = out.starts_with(s.encoder.keepalive());
        if s.record.first_byte.is_none() && !keepalive {
            s.record.first_byte = Some(s.record.started.elapsed());
        }
        if let Some(c) = &s.record.capture
            && !keepalive
        {
            c.reply_chunk(&out);
        }
        Some((Ok(out.freeze()), s))
    })
}
