//! The request pipeline: explicit stages, in order, for every inference request
//! (STYLE §3.3): resolve the route (or the fallback target of a spent budget), then the
//! fallback loop, which reserves on each provider's own budget before trying it. Admission
//! (budgets, rate limits) runs before, in the handler; the cache and guardrails plug in as
//! stages here, before and after the loop.
//!
//! The fallback loop tries each candidate in turn. A retryable failure (connect error,
//! timeout, 429, 5xx) moves to the next; any other failure is returned at once. For a stream,
//! a candidate is kept only once its first events arrived, so a provider that answers 200 and
//! then fails at once still falls back; if the first events take longer than the keep-alive
//! interval the stream is committed (headers go out, keep-alives start) and fallback ends.

mod context;
pub mod relay;

use std::ops::ControlFlow;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::time::{Instant, timeout};

pub use context::{Attempt, RequestCtx};

use crate::codec::Warnings;
use crate::error::GatewayError;
use crate::providers::StreamMode;
use crate::providers::exec::{self, UpstreamEvents};
use crate::routing::{self, Candidate, Live};
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
    Stream(LiveStream),
}

/// A stream whose provider is chosen: the events already read, and the rest to come.
pub struct LiveStream {
    pub first: Vec<StreamEvent>,
    /// `None` when the provider's stream already ended with the first events.
    pub upstream: Option<UpstreamEvents>,
}

pub async fn chat(
    live: &Live,
    ctx: &mut RequestCtx,
    req: &ChatRequest,
    keepalive: Duration,
) -> Result<ChatOutcome, GatewayError> {
    fallback(live, ctx, &req.model, |c| {
        Box::pin(async move {
            let mut w = Warnings::default();
            let r = chat_attempt(&c, req, keepalive, &mut w).await;
            (r, w)
        })
    })
    .await
}

async fn chat_attempt(
    c: &Candidate,
    req: &ChatRequest,
    keepalive: Duration,
    w: &mut Warnings,
) -> Result<ChatOutcome, GatewayError> {
    let p = &c.provider;
    let up = p.adapter.build_chat(req, &c.model, w)?;
    let passthrough = up.passthrough;
    if !req.stream {
        let body = exec::send_for_body(p, up).await?;
        if passthrough {
            let usage = p.adapter.reply_usage(&body)?;
            return Ok(ChatOutcome::Passthrough { body, usage });
        }
        return Ok(ChatOutcome::Complete(p.adapter.parse_chat(&body)?));
    }
    let resp = exec::send(p, up, true).await?;
    let mut events = UpstreamEvents::new(
        resp,
        p.adapter.stream_decoder(StreamMode {
            passthrough,
            client_usage: req.stream_usage,
        }),
        p.config.timeouts.idle,
        p.name(),
    );
    match timeout(keepalive, events.next()).await {
        Ok(Ok(Some(first))) => Ok(ChatOutcome::Stream(LiveStream {
            first,
            upstream: Some(events),
        })),
        Ok(Ok(None)) => Ok(ChatOutcome::Stream(LiveStream {
            first: Vec::new(),
            upstream: None,
        })),
        // A failure before anything reached the client may still fall back.
        Ok(Err(e)) => Err(e.retryable(true)),
        Err(_) => Ok(ChatOutcome::Stream(LiveStream {
            first: Vec::new(),
            upstream: Some(events),
        })),
    }
}

pub async fn embeddings(
    live: &Live,
    ctx: &mut RequestCtx,
    req: &EmbeddingRequest,
) -> Result<EmbeddingResponse, GatewayError> {
    fallback(live, ctx, &req.model, |c| {
        Box::pin(async move {
            let mut w = Warnings::default();
            let r = embeddings_attempt(&c, req, &mut w).await;
            (r, w)
        })
    })
    .await
}

/// Resolve the route, then try its candidates in order until one succeeds or a failure may
/// not be retried. Each candidate is tried at most once; an attempt returns its result and
/// the translation warnings of its request.
async fn fallback<'a, T>(
    live: &Live,
    ctx: &mut RequestCtx,
    model: &str,
    mut attempt: impl FnMut(Candidate) -> BoxFuture<'a, (Result<T, GatewayError>, Warnings)>,
) -> Result<T, GatewayError> {
    let route_to = ctx.admission.as_ref().and_then(|a| a.route_to.clone());
    let resolved = match &route_to {
        // A spent budget routes this request to its fallback target.
        Some(t) => routing::resolve_target(live, t, model)?,
        None => {
            ctx.facts.budget_exhausted = ctx.admission.as_ref().is_some_and(|a| a.budget_exhausted);
            routing::resolve_with(live, model, &ctx.facts)?
        }
    };
    ctx.rule = resolved.rule;
    let mut last = None;
    for c in resolved.candidates {
        let started = Instant::now();
        if let Some(adm) = ctx.admission.as_mut()
            && let Err(e) = adm.provider(&c.provider.config, &c.model).await
        {
            // This provider's own budget is spent: skip it.
            match record::<T>(ctx, &c, started, Warnings::default(), Err(e)) {
                ControlFlow::Break(r) => return r,
                ControlFlow::Continue(e) => last = Some(e),
            }
            continue;
        }
        let (result, warnings) = attempt(c.clone()).await;
        match record(ctx, &c, started, warnings, result) {
            ControlFlow::Break(r) => return r,
            ControlFlow::Continue(e) => last = Some(e),
        }
    }
    Err(exhausted(ctx, last))
}

async fn embeddings_attempt(
    c: &Candidate,
    req: &EmbeddingRequest,
    w: &mut Warnings,
) -> Result<EmbeddingResponse, GatewayError> {
    let p = &c.provider;
    let up = p.adapter.build_embeddings(req, &c.model, w)?;
    let body = exec::send_for_body(p, up).await?;
    p.adapter.parse_embeddings(&body)
}

/// Record one attempt. `Break` ends the loop with this result (success, or a failure that
/// may not be retried); `Continue` carries a retryable failure on to the next candidate.
fn record<T>(
    ctx: &mut RequestCtx,
    c: &Candidate,
    started: Instant,
    warnings: Warnings,
    result: Result<T, GatewayError>,
) -> ControlFlow<Result<T, GatewayError>, GatewayError> {
    ctx.attempts.push(Attempt {
        provider: c.provider.name().to_owned(),
        model: c.model.clone(),
        latency: started.elapsed(),
        error: result.as_ref().err().cloned(),
    });
    ctx.warnings = warnings;
    match result {
        Ok(v) => {
            ctx.served = Some((c.provider.name().to_owned(), c.model.clone()));
            ControlFlow::Break(Ok(v))
        }
        Err(e) if e.retryable => {
            tracing::warn!(request_id = %ctx.id, provider = c.provider.name(), model = %c.model, error = %e, "attempt failed; trying the next target");
            ControlFlow::Continue(e)
        }
        Err(e) => ControlFlow::Break(Err(e)),
    }
}

/// The error after every candidate failed: the last failure's class, with every attempt's
/// reason in the message when there was more than one.
fn exhausted(ctx: &RequestCtx, last: Option<GatewayError>) -> GatewayError {
    match last {
        Some(mut e) if ctx.attempts.len() > 1 => {
            let summary: Vec<String> = ctx
                .attempts
                .iter()
                .map(|a| {
                    let why = a
                        .error
                        .as_ref()
                        .map_or_else(|| "ok".to_owned(), |e| e.message.clone());
                    format!("{}/{}: {why}", a.provider, a.model)
                })
                .collect();
            e.message = format!(
                "all {} targets failed: {}",
                ctx.attempts.len(),
                summary.join("; ")
            );
            e
        }
        Some(e) => e,
        None => GatewayError::new(
            crate::error::ErrorKind::ModelNotFound,
            "no target is configured for this model",
        ),
    }
}
