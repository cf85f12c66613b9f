//! The request pipeline: every stage of an inference request, in order, in one place
//! (STYLE §3.3). [`serve`] runs them for any client schema ([`client::ClientSchema`]):
//!
//! | # | stage | where |
//! |---|---|---|
//! | 0 | shed: the in-flight and buffered-body bounds, from the head alone (503 past them) | [`shed`], as the layer `app` puts around every route |
//! | 1 | authenticate: the loop guard, then the caller's key | [`auth`], as the layer `app` puts around every route |
//! | 2 | decode the body (read within its deadline and the body budget: [`intake`]) in the client's schema into the canonical request | [`reply::read_body`], [`client`] |
//! | 3 | authorize the model for the caller | [`admit::authorize`] |
//! | 3b | `Idempotency-Key`: a retry replays the first reply; the key is held until the reply is final | [`idempotency`] |
//! | 4 | admit: routing facts and the route, once; budgets and rate limits; the settlement guard | [`admit::admit`] |
//! | 5 | *cache lookup* (empty: the response cache lands here) | [`serve`] |
//! | 6 | *input guardrails* (empty: guardrails on requests land here) | [`serve`] |
//! | 7 | route and attempt: the candidates and their keys, failover, retries, mirrors | [`failover`], [`mirror`], [`chat`] |
//! | 8 | *output guardrails* (empty: guardrails on replies land here) | [`serve`] |
//! | 9 | respond: the whole reply, or the stream relayed event by event | [`respond`], [`relay`] |
//!
//! Every request settles in one place, its [`settle::Settle`] guard (in the context until
//! the reply, then in the stream's body). Handlers are one line: a route and a schema.
//!
//! The attempt loop ([`failover`]) tries the candidates and their keys in turn: a retryable
//! failure (connect error, timeout, 429, 5xx) moves on, within the retry budget and
//! `max_attempts`; any other failure is returned at once. For a stream,
//! a candidate is kept only once its first content arrived (text, a tool call, a finish: its
//! metadata alone, such as Anthropic's `message_start`, is held back with it), so a provider
//! that answers 200 and then fails at once still falls back, and what usage it reported
//! before failing is never counted; if no content comes within the keep-alive interval of
//! the attempt being sent, whether the provider is silent before its response headers or
//! after them, the stream is committed (headers and what was held go out, keep-alives start;
//! a provider still to answer is awaited in the stream's body) and fallback ends.

pub mod admit;
pub mod auth;
mod ceiling;
pub mod client;
mod context;
pub mod count;
pub mod detach;
mod failover;
pub mod idempotency;
pub mod info;
pub mod intake;
mod mirror;
pub mod relay;
pub mod reply;
pub mod settle;
pub mod shed;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use tokio::time::{Instant, timeout_at};

pub use context::{Attempt, RequestCtx, new_request_id};
pub use reply::{parse_json, read_body};

use self::admit::Size;
use self::client::{ClientSchema, Decoded};
use crate::codec::Warnings;
use crate::error::GatewayError;
use crate::providers::StreamMode;
use crate::providers::exec::{self, Outbound, UpstreamEvents};
use crate::routing::{Candidate, Live};
use crate::schema::{
    ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, RawBody, StreamEvent, Usage,
};
use crate::state::AppState;

/// Serve one chat request in client schema `S`: the stages of the module header, in order.
pub async fn serve<S: ClientSchema>(state: AppState, req: Request) -> Response {
    let live = state.live();
    let (head, body) = req.into_parts();
    // 1. Authenticated by the layer around every route: the caller is in the head.
    let mut ctx = RequestCtx::of(&head, S::SCHEMA.name());
    let keepalive = live.config.server.stream_keepalive;
    let mut claim = None;
    let result: Result<_, GatewayError> = async {
        // 2. Decode.
        let bytes = read_body(&head.headers, body, live.config.server.max_body_bytes).await?;
        let Decoded {
            chat: mut creq,
            turn,
            upstream_body,
        } = S::decode(&state, &mut ctx, &head, &bytes).await?;
        ctx.warnings = ctx.ingress_warnings.clone();
        // 3. Authorize.
        admit::authorize(&state, &ctx, &creq.model)?;
        // 3b. Idempotency-Key: a replay is answered before admission counts it.
        match idempotency::begin(&state, &live.config.idempotency, &ctx, &head, &bytes).await? {
            idempotency::Began::Run(c) => claim = c,
            idempotency::Began::Replay(r) => return Ok(Err(r)),
        }
        // 4. Admit.
        let size = Size::of_chat(&creq);
        admit::admit(
            &state,
            &live,
            &mut ctx,
            &head.headers,
            &creq.model,
            size,
            &bytes,
        )
        .await?;
        creq.raw = Some(RawBody {
            schema: S::SCHEMA,
            bytes: upstream_body.unwrap_or(bytes),
            headers: client::forwarded(S::FORWARDED, &head.headers),
        });
        // 5. Cache lookup: none yet.
        // 6. Input guardrails: none yet.
        // 7. Route and attempt.
        let outcome = chat(&live, &mut ctx, &creq, keepalive).await?;
        // 8. Output guardrails: none yet.
        Ok(Ok((outcome, turn, creq)))
    }
    .await;
    // 9. Respond.
    match result {
        Ok(Ok((outcome, turn, creq))) => {
            let r = respond::<S>(
                &state, &live, &mut ctx, &head, outcome, turn, &creq, keepalive, &mut claim,
            )
            .await;
            idempotency::finish(claim, r, &live.config.idempotency).await
        }
        Ok(Err(replayed)) => replayed,
        Err(e) => {
            tracing::debug!(request_id = %ctx.id, error = %e, "request failed");
            if let Some(c) = claim {
                c.release().await;
            }
            ctx.fail(&e);
            reply::error_response(&e, S::error_body(&e), &ctx)
        }
    }
}

/// Stage 9: the reply in the client's schema, and the request settled.
#[expect(
    clippy::too_many_arguments,
    reason = "the stage's inputs, each used once"
)]
async fn respond<S: ClientSchema>(
    state: &AppState,
    live: &Live,
    ctx: &mut RequestCtx,
    head: &http::request::Parts,
    outcome: ChatOutcome,
    turn: S::Turn,
    creq: &ChatRequest,
    keepalive: Duration,
    claim: &mut Option<crate::idempotency::Claim>,
) -> Response {
    match outcome {
        ChatOutcome::Complete(resp) => {
            for c in &resp.choices {
                crate::codec::note_unsent(&c.message.parts, S::SCHEMA, &mut ctx.warnings);
            }
            let usage = resp.usage.unwrap_or_default();
            // Charged from here on, even if the client leaves while the reply is made.
            ctx.answered(usage);
            match S::reply(state, turn, &resp).await {
                Ok(body) => {
                    let r = reply::whole(ctx, body);
                    ctx.complete(usage, || Some(resp.output_text()));
                    r
                }
                Err(e) => {
                    ctx.complete(usage, || None);
                    reply::error_response(&e, S::error_body(&e), ctx)
                }
            }
        }
        // Only a request in the client's own schema is passed through, so its reply is too.
        ChatOutcome::Passthrough { body, usage } => {
            let usage = usage.unwrap_or_default();
            ctx.answered(usage);
            if let Err(e) = S::passthrough(state, turn, &body).await {
                ctx.complete(usage, || None);
                return reply::error_response(&e, S::error_body(&e), ctx);
            }
            let r = reply::whole(ctx, body.clone());
            let served = ctx
                .served
                .as_ref()
                .and_then(|(p, _)| live.provider(p))
                .cloned();
            ctx.complete(usage, || {
                let reply = served?.adapter.parse_chat(&body).ok()?;
                Some(reply.output_text())
            });
            r
        }
        ChatOutcome::Stream(live_stream) => {
            let encoder = S::encoder(state, turn, creq, head);
            let settle = ctx.streaming();
            // With a key, the stream is kept as it goes out (its claim goes with it).
            let (body, kept) = match claim.take() {
                None => {
                    let body = relay::relay(*live_stream, encoder, keepalive, settle);
                    (Body::from_stream(body), None)
                }
                Some(c) => {
                    let settings = &live.config.idempotency;
                    let (body, kept) = idempotency::relay_kept(
                        c,
                        settings,
                        *live_stream,
                        encoder,
                        keepalive,
                        settle,
                    );
                    (body, Some(kept))
                }
            };
            let mut r = S::stream_response(body, head);
            reply::add_ctx_headers(&mut r, ctx);
            if let Some(k) = kept {
                k.set(r.headers());
            }
            r
        }
    }
}

/// Serve `POST /v1/embeddings` (OpenAI's schema): the same stages as [`serve`], with no
/// stream.
pub async fn serve_embeddings(state: AppState, req: Request) -> Response {
    use crate::codec::openai_embeddings::{self as codec, OaiEmbeddingRequest};
    let live = state.live();
    let (head, body) = req.into_parts();
    let mut ctx = RequestCtx::of(&head, "embeddings");
    let mut claim = None;
    let result = async {
        let bytes = read_body(&head.headers, body, live.config.server.max_body_bytes).await?;
        let wire: OaiEmbeddingRequest = parse_json(&bytes)?;
        let ereq = codec::decode_request(wire)?;
        admit::authorize(&state, &ctx, &ereq.model)?;
        match idempotency::begin(&state, &live.config.idempotency, &ctx, &head, &bytes).await? {
            idempotency::Began::Run(c) => claim = c,
            idempotency::Began::Replay(r) => return Ok(Err(r)),
        }
        let size = Size {
            input_tokens: codec::estimate_input(&ereq),
            max_output: None,
            choices: 1,
            has_output: false,
            user: ereq.user.clone(),
        };
        admit::admit(
            &state,
            &live,
            &mut ctx,
            &head.headers,
            &ereq.model,
            size,
            &bytes,
        )
        .await?;
        embeddings(&live, &mut ctx, &ereq).await.map(Ok)
    }
    .await;
    match result {
        Ok(Ok(resp)) => {
            let r = reply::whole(&ctx, client::to_json(&codec::encode_response(&resp)));
            let usage = Usage {
                input_tokens: resp.input_tokens,
                ..Default::default()
            };
            ctx.complete(usage, || None);
            idempotency::finish(claim, r, &live.config.idempotency).await
        }
        Ok(Err(replayed)) => replayed,
        Err(e) => {
            if let Some(c) = claim {
                c.release().await;
            }
            ctx.fail(&e);
            reply::openai_error(&e, &ctx)
        }
    }
}

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
            capture: ctx.settle.capture().cloned(),
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
    let mirrored = ctx.settle.mirrored();
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
    // The stream is committed (headers and a first keep-alive to the client, fallback over)
    // when it has carried no content within a keep-alive interval of being sent, whether its
    // provider is silent before its headers or after them: a client is never left without a
    // byte for longer than that (RELIABILITY 11). So the send may outlive this attempt, in
    // the stream's body: it owns what it sends.
    let commit_by = Instant::now() + keepalive;
    let decoder = p.adapter.stream_decoder(StreamMode {
        passthrough,
        client_usage: req.stream_usage,
        text: mirrored,
        schema: req.raw.as_ref().map(|r| r.schema),
    });
    let idle = p.config.timeouts.idle;
    let mut answer = exec::send_owned(Arc::clone(p), out.to_owned(), up, true);
    let mut events = match timeout_at(commit_by, &mut answer).await {
        Ok(resp) => UpstreamEvents::new(resp?, decoder, idle, p.name()),
        Err(_) => UpstreamEvents::awaiting(answer, decoder, idle, p.name()),
    }
    .tapped(out.capture);
    if !events.answered_yet() {
        return Ok(ChatOutcome::Stream(Box::new(LiveStream {
            first: Vec::new(),
            upstream: Some(events),
        })));
    }
    // Kept once the stream carries content. Its metadata alone (identity, usage: Anthropic's
    // `message_start`) is held back, so a provider that fails right after it still falls
    // back, and the usage it reported is dropped with it, never counted (RELIABILITY 3).
    let mut first = Vec::new();
    let live = |first, upstream| {
        Ok(ChatOutcome::Stream(Box::new(LiveStream {
            first,
            upstream,
        })))
    };
    loop {
        match timeout_at(commit_by, events.next()).await {
            Ok(Ok(Some(batch))) => {
                let content = carries_content(&batch, events.describes_raw());
                first.extend(batch);
                if content {
                    return live(first, Some(events));
                }
            }
            Ok(Ok(None)) => {
                events.finish();
                return live(first, None);
            }
            // A failure before anything reached the client may still fall back.
            Ok(Err(e)) => return Err(e.retryable(true)),
            // Slow to say anything: committed, so that keep-alives can start.
            Err(_) => return live(first, Some(events)),
        }
    }
}

/// Does this batch of a stream's events carry any of the reply (text, a tool call, a finish),
/// rather than only the stream's metadata (its identity, usage)? A raw event counts as the
/// reply unless its decoder [describes it](exec::UpstreamEvents::describes_raw).
fn carries_content(events: &[StreamEvent], raw_described: bool) -> bool {
    events.iter().any(|ev| match ev {
        StreamEvent::Start { .. } | StreamEvent::Usage(_) => false,
        StreamEvent::Raw(_) => !raw_described,
        StreamEvent::Delta { .. } | StreamEvent::Finish { .. } => true,
    })
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
