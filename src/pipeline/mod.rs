//! The request pipeline: explicit stages, in order, for every inference request
//! (STYLE §3.3): resolve the route (or the fallback target of a spent budget), then the
//! fallback loop, which reserves on each provider's own budget before trying it. Admission
//! (budgets, rate limits) runs before, in the handler; the cache and guardrails plug in as
//! stages here, before and after the loop.
//!
//! The attempt loop ([`failover`]) tries the candidates and their keys in turn: a retryable
//! failure (connect error, timeout, 429, 5xx) moves on, within the retry budget and
//! `max_attempts`; any other failure is returned at once. For a stream,
//! a candidate is kept only once its first events arrived, so a provider that answers 200 and
//! then fails at once still falls back; if the first events take longer than the keep-alive
//! interval the stream is committed (headers go out, keep-alives start) and fallback ends.

mod ceiling;
mod context;
mod failover;
mod mirror;
pub mod relay;

use std::time::Duration;

use bytes::Bytes;
use tokio::time::timeout;

pub use context::{Attempt, RequestCtx, new_request_id};

use crate::codec::Warnings;
use crate::error::GatewayError;
use crate::providers::StreamMode;
use crate::providers::exec::{self, Outbound, UpstreamEvents};
use crate::routing::{Candidate, Live};
use crate::schema::{
    ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, StreamEvent, Usage,
};

/// What the fallback loop produced for a chat request.
pub enum ChatOutcome {
    Complete(ChatResponse),
    /// The provider's reply in the client's own schema, relayed as it came (SPEC §3).
    Passthrough {
        body: Bytes,
        usage: Option<Usage>,
    },
    /// Boxed: a live stream (its parser and decoder) is several hundred bytes, and the outcome
    /// is moved through every layer of the failover loop.
    Stream(Box<LiveStream>),
}

/// A stream whose provider is chosen: the events already read, and the rest to come.
pub struct LiveStream {
    pub first: Vec<StreamEvent>,
    /// `None` when the provider's stream already ended with the first events.
    pub upstream: Option<UpstreamEvents>,
}

/// What every attempt of a request sends besides its body, taken from the request's context
/// (which the attempt loop holds while the attempts run).
struct Sender {
    hop: http::HeaderValue,
    request_id: String,
    capture: Option<std::sync::Arc<crate::bodies::Capture>>,
    trace: Option<crate::traces::TraceIds>,
}

impl Sender {
    fn of(ctx: &RequestCtx) -> Self {
        Self {
            hop: ctx.hop.clone(),
            request_id: ctx.id.clone(),
            capture: ctx.capture.clone(),
            trace: ctx.trace,
        }
    }

    /// The `n`th attempt's (from 1), to `c` with its key `key`.
    fn outbound<'a>(&'a self, c: &'a Candidate, key: Option<usize>, n: u32) -> Outbound<'a> {
        Outbound {
            key: c.provider.key(key),
            hop: &self.hop,
            request_id: &self.request_id,
            capture: self.capture.as_ref(),
            traceparent: self.trace.map(|t| t.traceparent(t.attempt_span(n))),
        }
    }
}

pub async fn chat(
    live: &Live,
    ctx: &mut RequestCtx,
    req: &ChatRequest,
    keepalive: Duration,
) -> Result<ChatOutcome, GatewayError> {
    let resolved = failover::plan(live, ctx, &req.model)?;
    mirror::maybe_spawn(live, ctx, &resolved.model, req);
    let mirrored = ctx.mirrored;
    let notes = ctx.ingress_warnings.clone();
    let notes = &notes;
    let from = Sender::of(ctx);
    let from = &from;
    // The attempts are numbered as the loop sends them, which names their trace spans.
    let mut sent = 0;
    let pricing = &*live.config.pricing;
    failover::run(live, ctx, resolved, move |c, key| {
        sent += 1;
        Box::pin(async move {
            let mut w = Warnings::default();
            let out = from.outbound(&c, key, sent);
            let r = match ceiling::fit(req, &c.model, pricing, &mut w) {
                Ok(req) => chat_attempt(&c, &out, &req, keepalive, mirrored, notes, &mut w).await,
                Err(e) => Err(e),
            };
            (r, w)
        })
    })
    .await
}

async fn chat_attempt(
    c: &Candidate,
    out: &Outbound<'_>,
    req: &ChatRequest,
    keepalive: Duration,
    mirrored: bool,
    notes: &Warnings,
    w: &mut Warnings,
) -> Result<ChatOutcome, GatewayError> {
    let p = &c.provider;
    let up = p.adapter.build_chat(req, &c.model, w)?;
    let passthrough = up.passthrough;
    // What the client's own schema lost in the canonical model: gone unless passed through.
    if !passthrough {
        let own = std::mem::take(w);
        for n in notes.iter().chain(own.iter()) {
            w.push(n);
        }
    }
    if !req.stream {
        let body = exec::send_for_body(p, out, up).await?;
        if passthrough {
            let usage = p.adapter.reply_usage(&body)?;
            return Ok(ChatOutcome::Passthrough { body, usage });
        }
        return Ok(ChatOutcome::Complete(p.adapter.parse_chat(&body)?));
    }
    let resp = exec::send(p, out, up, true).await?;
    let mut events = UpstreamEvents::new(
        resp,
        p.adapter.stream_decoder(StreamMode {
            passthrough,
            client_usage: req.stream_usage,
            text: mirrored,
            schema: req.raw.as_ref().map(|r| r.schema),
        }),
        p.config.timeouts.idle,
        p.name(),
    )
    .tapped(out.capture);
    match timeout(keepalive, events.next()).await {
        Ok(Ok(Some(first))) => Ok(ChatOutcome::Stream(Box::new(LiveStream {
            first,
            upstream: Some(events),
        }))),
        Ok(Ok(None)) => {
            events.finish();
            Ok(ChatOutcome::Stream(Box::new(LiveStream {
                first: Vec::new(),
                upstream: None,
            })))
        }
        // A failure before anything reached the client may still fall back.
        Ok(Err(e)) => Err(e.retryable(true)),
        Err(_) => Ok(ChatOutcome::Stream(Box::new(LiveStream {
            first: Vec::new(),
            upstream: Some(events),
        }))),
    }
}

pub async fn embeddings(
    live: &Live,
    ctx: &mut RequestCtx,
    req: &EmbeddingRequest,
) -> Result<EmbeddingResponse, GatewayError> {
    let resolved = failover::plan(live, ctx, &req.model)?;
    let from = Sender::of(ctx);
    let from = &from;
    let mut sent = 0;
    failover::run(live, ctx, resolved, move |c, key| {
        sent += 1;
        Box::pin(async move {
            let mut w = Warnings::default();
            let out = from.outbound(&c, key, sent);
            let r = embeddings_attempt(&c, &out, req, &mut w).await;
            (r, w)
        })
    })
    .await
}

async fn embeddings_attempt(
    c: &Candidate,
    out: &Outbound<'_>,
    req: &EmbeddingRequest,
    w: &mut Warnings,
) -> Result<EmbeddingResponse, GatewayError> {
    let p = &c.provider;
    let up = p.adapter.build_embeddings(req, &c.model, w)?;
    let body = exec::send_for_body(p, out, up).await?;
    p.adapter.parse_embeddings(&body)
}
