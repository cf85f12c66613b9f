//! Stage 3b, `Idempotency-Key` (RELIABILITY 4, SPEC §5): a retry of an inference request
//! with the same key and the same request within `idempotency.ttl` (24 h) gets the first
//! reply again, byte for byte, without a second provider call, charge or usage record.
//!
//! It runs after the request is decoded and authorized and before admission, so a replay
//! is never counted against budgets or rate limits; the reply is kept where it is final
//! (a whole reply once it is written, a stream once its last event went out). With no
//! `Idempotency-Key` header the stage costs one header lookup.
//!
//! - **Key**: 1 to 255 visible ASCII characters (`!` to `~`), one header; anything else is
//!   400. Scoped to the caller's virtual key (see `crate::idempotency`).
//! - **Same key, same request** (method, path, query and body): the kept reply, with its
//!   status, its headers as first sent (`x-gatehouse-request-id` names the first request)
//!   but for `x-ratelimit-*`, `retry-after`, `date` and the framing headers, and
//!   `Idempotent-Replayed: true`. A stream is replayed as the SSE bytes first sent.
//! - **Same key, another request**: 422 (`idempotency_key_reused`).
//! - **Same key while its first request is in flight**: 409 (`idempotency_key_in_use`).
//! - **What is kept**: only a reply that completed, that is a 200 whole reply, or a stream
//!   that ended with its provider's terminator. A request refused before it ran (400, 403,
//!   429, a budget) or that failed (any 4xx/5xx from a provider, a timeout), a stream cut
//!   mid-way (it ended with an error event) and a client that left before the end give the
//!   key back: its retry runs anew. Unlike Stripe, which replays 5xx, since a failed
//!   inference is not charged (a cut stream is charged for what it delivered, once) and
//!   retrying a 5xx is the reason to retry; a cut stream is never replayed as complete.
//! - **Bound**: a reply body larger than `idempotency.max_reply_bytes` (4 MiB) is not kept:
//!   the key remembers only that its request completed, and a retry gets 409 saying so
//!   (rather than a second charge). Kept replies take at most `idempotency.memory` bytes
//!   per instance (64 MiB); the oldest go first.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use http_body_util::BodyExt;

use super::relay::{self, StreamEncoder};
use super::settle::Settle;
use super::{LiveStream, RequestCtx};
use crate::config::IdempotencySettings;
use crate::error::{ErrorKind, GatewayError};
use crate::idempotency::{Begin, Claim, Done, Fingerprint, Kept, KeyId};
use crate::schema::StreamEvent;
use crate::state::AppState;

/// The request header (Stripe's, and the IETF draft's).
pub const KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// On a replayed reply (Stripe's convention).
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// The longest key (Stripe's limit).
pub const MAX_KEY_LEN: usize = 255;

/// What the stage decided.
pub enum Began {
    /// Run the request; with a claim when it has a key.
    Run(Option<Claim>),
    /// The first reply, again.
    Replay(Response),
}

/// The stage: the request's key looked up (and claimed if new), or nothing without one.
pub async fn begin(
    state: &AppState,
    settings: &IdempotencySettings,
    ctx: &RequestCtx,
    head: &http::request::Parts,
    body: &[u8],
) -> Result<Began, GatewayError> {
    if !settings.enabled || !head.headers.contains_key(KEY) {
        return Ok(Began::Run(None));
    }
    // Boxed: the lookup's future (a Redis call's) stays out of every request's future.
    Box::pin(begin_keyed(state, settings, ctx, head, body)).await
}

async fn begin_keyed(
    state: &AppState,
    settings: &IdempotencySettings,
    ctx: &RequestCtx,
    head: &http::request::Parts,
    body: &[u8],
) -> Result<Began, GatewayError> {
    let mut values = head.headers.get_all(KEY).iter();
    let Some(value) = values.next() else {
        return Ok(Began::Run(None));
    };
    if values.next().is_some() {
        return Err(GatewayError::invalid(
            "more than one Idempotency-Key header: send one",
        ));
    }
    let key = valid_key(value)?;
    let scope = ctx.principal.as_deref().map_or("", |p| p.key_id.as_str());
    let id = KeyId::new(scope, key);
    let target = head.uri.path_and_query().map_or("", |p| p.as_str());
    let fp = Fingerprint::new(head.method.as_str(), target, body);
    let (outcome, result) = match state.idempotency().begin(id, fp, settings).await {
        Begin::Claimed(c) => ("claimed", Ok(Began::Run(Some(c)))),
        Begin::Done(Done::Reply(kept)) => ("replayed", Ok(Began::Replay(replay(&kept)))),
        Begin::Done(Done::TooLarge(n)) => (
            "too_large",
            Err(GatewayError::new(
                ErrorKind::Conflict,
                format!(
                    "the request with this Idempotency-Key completed, but its reply ({n} bytes) was larger than idempotency.max_reply_bytes and was not kept; send it with a new key to run it again"
                ),
            )),
        ),
        Begin::InFlight => (
            "in_flight",
            Err(GatewayError::new(
                ErrorKind::IdempotencyKeyInUse,
                "a request with this Idempotency-Key is still in progress; retry once it has completed",
            )
            .with_retry_after(1)),
        ),
        Begin::Mismatch => (
            "mismatch",
            Err(GatewayError::new(
                ErrorKind::IdempotencyKeyReused,
                "this Idempotency-Key was already used for a different request (method, path or body); use a new key for a new request",
            )),
        ),
        Begin::Unavailable => (
            "unavailable",
            Err(GatewayError::new(
                ErrorKind::Unavailable,
                "Idempotency-Key cannot be checked: Redis does not answer (idempotency.redis_down = \"refuse\")",
            )
            .with_retry_after(1)),
        ),
    };
    crate::metrics::idempotency(outcome);
    result
}

/// The key, if well-formed (400 otherwise, naming what is wrong).
fn valid_key(v: &HeaderValue) -> Result<&str, GatewayError> {
    let bytes = v.as_bytes();
    let bad = |why: &str| {
        GatewayError::invalid(format!(
            "invalid Idempotency-Key: {why} (expected 1 to {MAX_KEY_LEN} visible ASCII characters, such as a UUID)"
        ))
    };
    if bytes.is_empty() {
        return Err(bad("it is empty"));
    }
    if bytes.len() > MAX_KEY_LEN {
        return Err(bad(&format!("it is {} bytes long", bytes.len())));
    }
    if !bytes.iter().all(|b| b.is_ascii_graphic()) {
        return Err(bad("it has a space, a control or a non-ASCII character"));
    }
    v.to_str().map_err(|_| bad("it is not ASCII"))
}

/// A kept reply as a response.
fn replay(k: &Kept) -> Response {
    let mut r = Response::new(Body::from(k.body.clone()));
    *r.status_mut() = StatusCode::from_u16(k.status).unwrap_or(StatusCode::OK);
    let h = r.headers_mut();
    for (name, value) in &k.headers {
        h.append(name.clone(), value.clone());
    }
    h.insert(REPLAYED, HeaderValue::from_static("true"));
    r
}

/// The headers a replay repeats: not the framing (the replay has its own), nor what
/// described the moment of the first reply (rate-limit state, `Retry-After`, `Date`).
fn kept_headers(h: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    h.iter()
        .filter(|(n, _)| {
            !matches!(
                *n,
                &header::CONTENT_LENGTH
                    | &header::TRANSFER_ENCODING
                    | &header::CONNECTION
                    | &header::DATE
                    | &header::RETRY_AFTER
            ) && !n.as_str().starts_with("x-ratelimit-")
        })
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect()
}

fn done_of(
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    max: u64,
) -> Done {
    if body.len() as u64 > max {
        return Done::TooLarge(body.len() as u64);
    }
    Done::Reply(Arc::new(Kept {
        status: status.as_u16(),
        headers,
        body,
    }))
}

/// The end of a request that held a key, with its whole reply (or an error): a 200 is
/// kept, anything else gives the key back. A stream's claim went with its body
/// ([`relay_kept`]), so there is none left here.
pub async fn finish(
    claim: Option<Claim>,
    resp: Response,
    settings: &IdempotencySettings,
) -> Response {
    match claim {
        None => resp,
        // Boxed, as `begin_keyed`.
        Some(claim) => Box::pin(keep(claim, resp, settings)).await,
    }
}

async fn keep(claim: Claim, resp: Response, settings: &IdempotencySettings) -> Response {
    if resp.status() != StatusCode::OK {
        claim.release().await;
        return resp;
    }
    let (parts, body) = resp.into_parts();
    // A whole reply is already in memory: collecting it does not wait.
    let Ok(collected) = body.collect().await else {
        claim.release().await;
        return Response::from_parts(parts, Body::empty());
    };
    let bytes = collected.to_bytes();
    let done = done_of(
        parts.status,
        kept_headers(&parts.headers),
        bytes.clone(),
        settings.max_reply,
    );
    claim.commit(done, settings).await;
    Response::from_parts(parts, Body::from(bytes))
}

/// How a watched stream ended.
const RUNNING: u8 = 0;
const CLEAN: u8 = 1;
const FAILED: u8 = 2;

/// The encoder of a stream whose reply may be kept: it notes whether the stream ended
/// with the provider's terminator or with an error event.
struct Watched<E> {
    inner: E,
    end: Arc<AtomicU8>,
}

impl<E: StreamEncoder> StreamEncoder for Watched<E> {
    const SCHEMA: crate::schema::WireSchema = E::SCHEMA;

    fn event(&mut self, ev: &StreamEvent, out: &mut BytesMut) {
        self.inner.event(ev, out);
    }

    fn finish(&mut self, out: &mut BytesMut) {
        self.end.store(CLEAN, Ordering::Relaxed);
        self.inner.finish(out);
    }

    fn finish_raw(&mut self, out: &mut BytesMut) {
        self.end.store(CLEAN, Ordering::Relaxed);
        self.inner.finish_raw(out);
    }

    fn error(&mut self, err: &GatewayError, out: &mut BytesMut) {
        self.end.store(FAILED, Ordering::Relaxed);
        self.inner.error(err, out);
    }

    fn keepalive(&self) -> &'static [u8] {
        self.inner.keepalive()
    }
}

/// Where a stream's response headers are put once the response is built, for its replay.
pub struct KeptHead(Arc<OnceLock<Vec<(HeaderName, HeaderValue)>>>);

impl KeptHead {
    pub fn set(self, headers: &HeaderMap) {
        let _ = self.0.set(kept_headers(headers));
    }
}

/// A stream relayed (as [`relay::relay`]) whose bytes are kept, up to the bound, and
/// committed for `claim` once the stream ended cleanly and its last bytes went out.
pub fn relay_kept<E: StreamEncoder>(
    claim: Claim,
    settings: &IdempotencySettings,
    live: LiveStream,
    encoder: E,
    keepalive: Duration,
    settle: Settle,
) -> (Body, KeptHead) {
    let end = Arc::new(AtomicU8::new(RUNNING));
    let head = Arc::new(OnceLock::new());
    let encoder = Watched {
        inner: encoder,
        end: Arc::clone(&end),
    };
    let tee = Tee {
        inner: Box::pin(relay::relay(live, encoder, keepalive, settle)),
        kept: Some(BytesMut::new()),
        seen: 0,
        end,
        head: Arc::clone(&head),
        claim: Some(claim),
        settings: settings.clone(),
    };
    (Body::from_stream(tee), KeptHead(head))
}

/// The client-facing stream, copied as it goes out.
struct Tee<S> {
    inner: Pin<Box<S>>,
    /// The bytes sent so far (`None` once they passed `max_reply`).
    kept: Option<BytesMut>,
    seen: u64,
    end: Arc<AtomicU8>,
    head: Arc<OnceLock<Vec<(HeaderName, HeaderValue)>>>,
    /// Dropped (the key given back) unless the stream ends cleanly.
    claim: Option<Claim>,
    settings: IdempotencySettings,
}

impl<S> Tee<S> {
    fn ended(&mut self) {
        let Some(claim) = self.claim.take() else {
            return;
        };
        if self.end.load(Ordering::Relaxed) != CLEAN {
            // Cut mid-way: an error event went out. The key is given back as `claim` drops.
            return;
        }
        let headers = self.head.get().cloned().unwrap_or_default();
        let done = match self.kept.take() {
            Some(buf) => done_of(
                StatusCode::OK,
                headers,
                buf.freeze(),
                self.settings.max_reply,
            ),
            None => Done::TooLarge(self.seen),
        };
        let settings = self.settings.clone();
        crate::tasks::spawn(crate::tasks::Kind::Idempotency, async move {
            claim.commit(done, &settings).await;
        });
    }
}

impl<S: Stream<Item = Result<Bytes, Infallible>>> Stream for Tee<S> {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(b))) => {
                this.seen += b.len() as u64;
                if this.seen > this.settings.max_reply {
                    this.kept = None;
                } else if let Some(buf) = &mut this.kept {
                    buf.extend_from_slice(&b);
                }
                Poll::Ready(Some(Ok(b)))
            }
            Poll::Ready(None) => {
                this.ended();
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
