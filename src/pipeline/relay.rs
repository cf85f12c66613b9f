//! Relaying a chosen stream to the client, event by event, as it arrives (STYLE §4.8).
//!
//! Each batch of upstream events is encoded in the client's schema and sent at once: nothing
//! is buffered beyond one batch. During a silence longer than the keep-alive interval an SSE
//! comment goes out, the first with the headers when the provider's silence before its first
//! event is what committed the stream. The provider's terminator ends the stream normally;
//! any failure after the first byte (idle timeout, broken connection, an in-stream error, a
//! stream cut without its terminator) becomes the schema's error event and ends the stream,
//! never a normal stop.
//! Dropping the body (the client disconnected) drops the upstream stream, which closes the
//! provider connection.
//!
//! The request's settlement guard ([`Settle`]) travels in the body: it sees every event
//! that goes out and how the stream ended, and settles when the body is dropped, however
//! the stream ended.

use std::convert::Infallible;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use tokio::time::timeout;

use super::LiveStream;
use super::settle::Settle;
use crate::error::GatewayError;
use crate::providers::exec::UpstreamEvents;
use crate::schema::StreamEvent;

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

/// The comment that keeps an SSE connection alive.
pub const KEEPALIVE_COMMENT: &[u8] = b": keep-alive\n\n";

struct Relay<E> {
    first: Option<Vec<StreamEvent>>,
    upstream: Option<UpstreamEvents>,
    encoder: E,
    /// The stream carries the provider's own events (`StreamEvent::Raw`).
    raw: bool,
    keepalive: Duration,
    settle: Settle,
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
            self.settle.observe(ev);
            self.raw |= matches!(ev, StreamEvent::Raw(_));
            if !self.raw || matches!(ev, StreamEvent::Raw(_)) {
                if let StreamEvent::Delta { delta, .. } = ev
                    && let Some(w) = crate::codec::unsent_delta(delta, E::SCHEMA)
                {
                    self.settle.warn(w);
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
    settle: Settle,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    // Boxed: `unfold` moves its state into each item's future and back out, and a relay's
    // state (the upstream stream, the settlement guard) is a few kilobytes; a box is a pointer.
    let state = Box::new(Relay {
        first: Some(live.first),
        upstream: live.upstream,
        encoder,
        raw: false,
        keepalive,
        settle,
        done: false,
    });
    futures_util::stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        let mut out = BytesMut::new();
        if let Some(first) = s.first.take() {
            // No first events but more to come: the stream was committed because its provider
            // was silent for a whole keep-alive interval (`chat_attempt`), so one is due now,
            // with the headers, rather than an interval later.
            if first.is_empty() && s.upstream.is_some() {
                return Some((Ok(Bytes::from_static(s.encoder.keepalive())), s));
            }
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
                    s.settle.end(Ok(()));
                    s.done = true;
                    break;
                }
                Ok(Err(e)) => {
                    s.encoder.error(&e, &mut out);
                    s.settle.end(Err(e));
                    s.done = true;
                    break;
                }
            }
        }
        if !out.starts_with(s.encoder.keepalive()) {
            s.settle.first_byte();
            s.settle.tap(&out);
        }
        Some((Ok(out.freeze()), s))
    })
}
