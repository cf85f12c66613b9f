//! Chat inference for every client schema: `POST /v1/chat/completions` (OpenAI, also under
//! `/openai`) and `POST /v1/messages` (Anthropic, also under `/anthropic`).
//!
//! One generic handler, [`serve_chat`], does extract -> decode -> `pipeline::chat` -> encode;
//! a [`ChatSchema`] says how each client schema decodes its request, encodes a reply, a
//! stream and an error.

use std::marker::PhantomData;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use futures_util::future::BoxFuture;
use http::{HeaderName, HeaderValue, header};
use serde::de::DeserializeOwned;

use super::{
    Size, add_ctx_headers, admit, authenticate, authorize_model, error_response, openai_error,
    parse_json, read_body, reply_bytes, reply_json, settle,
};
use crate::codec::{anthropic, gemini, openai_chat};
use crate::error::GatewayError;
use crate::pipeline::relay::{StreamEncoder, StreamRecord, relay};
use crate::pipeline::{self, ChatOutcome, RequestCtx};
use crate::schema::{ChatRequest, ChatResponse, RawBody, WireSchema};
use crate::state::AppState;

/// How one client schema speaks.
pub trait ChatSchema: Send + 'static {
    const SCHEMA: WireSchema;
    /// Client headers sent on to a provider of the same schema.
    const FORWARDED: &'static [&'static str];
    type Wire: DeserializeOwned + Send;
    type Encoder: StreamEncoder;
    /// The canonical request, and what the canonical model could not carry (for
    /// `x-gatehouse-warnings`). `head` is for schemas that name the model or the streaming
    /// in the path (Gemini).
    fn decode(
        w: Self::Wire,
        head: &http::request::Parts,
    ) -> Result<(ChatRequest, Vec<String>), GatewayError>;
    /// The whole reply (kept for the record when it keeps bodies).
    fn reply(r: &ChatResponse, ctx: &RequestCtx) -> Response;
    fn encoder(req: &ChatRequest, head: &http::request::Parts) -> Self::Encoder;
    /// The reply that carries a stream.
    fn stream_response(body: Body, _head: &http::request::Parts) -> Response {
        sse_response(body)
    }
    fn error(e: &GatewayError, ctx: &RequestCtx) -> Response;
}

/// OpenAI Chat Completions.
pub struct OpenAiChat;

impl ChatSchema for OpenAiChat {
    const SCHEMA: WireSchema = WireSchema::OpenAiChat;
    const FORWARDED: &'static [&'static str] = &[];
    type Wire = openai_chat::wire::OaiChatRequest;
    type Encoder = openai_chat::ChunkEncoder;
    fn decode(
        w: Self::Wire,
        _: &http::request::Parts,
    ) -> Result<(ChatRequest, Vec<String>), GatewayError> {
        Ok((openai_chat::decode_request(w)?, Vec::new()))
    }
    fn reply(r: &ChatResponse, ctx: &RequestCtx) -> Response {
        reply_json(ctx, &openai_chat::encode_response(r))
    }
    fn encoder(req: &ChatRequest, _: &http::request::Parts) -> Self::Encoder {
        openai_chat::ChunkEncoder::new(req.stream_usage)
    }
    fn error(e: &GatewayError, ctx: &RequestCtx) -> Response {
        openai_error(e, ctx)
    }
}

/// Anthropic Messages.
pub struct AnthropicMessages;

impl ChatSchema for AnthropicMessages {
    const SCHEMA: WireSchema = WireSchema::AnthropicMessages;
    const FORWARDED: &'static [&'static str] = &["anthropic-version", "anthropic-beta"];
    type Wire = anthropic::wire::AnthRequest;
    type Encoder = anthropic::MessageEncoder;
    fn decode(
        w: Self::Wire,
        _: &http::request::Parts,
    ) -> Result<(ChatRequest, Vec<String>), GatewayError> {
        Ok((anthropic::decode_request(w)?, Vec::new()))
    }
    fn reply(r: &ChatResponse, ctx: &RequestCtx) -> Response {
        reply_json(ctx, &anthropic::encode_response(r))
    }
    fn encoder(_: &ChatRequest, _: &http::request::Parts) -> Self::Encoder {
        anthropic::MessageEncoder::new()
    }
    fn error(e: &GatewayError, ctx: &RequestCtx) -> Response {
        error_response(e, &anthropic::error_body(e), ctx)
    }
}

/// Gemini `models/{model}:generateContent` and `:streamGenerateContent`.
pub struct Gemini;

impl ChatSchema for Gemini {
    const SCHEMA: WireSchema = WireSchema::Gemini;
    const FORWARDED: &'static [&'static str] = &[];
    type Wire = gemini::wire::GeminiRequest;
    type Encoder = gemini::GeminiEncoder;
    fn decode(
        w: Self::Wire,
        head: &http::request::Parts,
    ) -> Result<(ChatRequest, Vec<String>), GatewayError> {
        let (model, method) = gemini_target(head.uri.path());
        let d = gemini::decode_request(w, model, method == "streamGenerateContent")?;
        Ok((d.chat, d.warnings))
    }
    fn reply(r: &ChatResponse, ctx: &RequestCtx) -> Response {
        reply_json(ctx, &gemini::encode_response(r))
    }
    fn encoder(req: &ChatRequest, head: &http::request::Parts) -> Self::Encoder {
        gemini::GeminiEncoder::new(gemini_sse(head), &req.model)
    }
    fn stream_response(body: Body, head: &http::request::Parts) -> Response {
        if gemini_sse(head) {
            return sse_response(body);
        }
        let mut r = Response::new(body);
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    }
    fn error(e: &GatewayError, ctx: &RequestCtx) -> Response {
        error_response(e, &gemini::error_body(e), ctx)
    }
}

/// The model and method of a Gemini path (`.../models/{model}:{method}`).
pub fn gemini_target(path: &str) -> (&str, &str) {
    let last = path.rsplit('/').next().unwrap_or("");
    last.rsplit_once(':').unwrap_or((last, ""))
}

/// `alt=sse`: the stream as server-sent events rather than a JSON array.
fn gemini_sse(head: &http::request::Parts) -> bool {
    head.uri
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "alt=sse"))
}

// The chat handlers return their future boxed: it is several kilobytes, and axum's layers
// (routing, response mapping, the hyper glue) each move their inner future by value. Boxed,
// each of those moves is a pointer's, not a copy of the whole request's state.

/// Serve a Gemini chat request (the method is checked by the caller).
pub fn gemini_generate(state: State<AppState>, req: Request) -> BoxFuture<'static, Response> {
    Box::pin(serve_chat(PhantomData::<Gemini>, state, req))
}

pub fn chat_completions(state: State<AppState>, req: Request) -> BoxFuture<'static, Response> {
    Box::pin(serve_chat(PhantomData::<OpenAiChat>, state, req))
}

pub fn messages(state: State<AppState>, req: Request) -> BoxFuture<'static, Response> {
    Box::pin(serve_chat(PhantomData::<AnthropicMessages>, state, req))
}

async fn serve_chat<S: ChatSchema>(
    _: PhantomData<S>,
    State(state): State<AppState>,
    req: Request,
) -> Response {
    let mut ctx = RequestCtx::new();
    ctx.schema = S::SCHEMA.name();
    let live = state.live();
    let (parts, body) = req.into_parts();
    let server = &live.config.server;
    let result: Result<_, GatewayError> = async {
        authenticate(&state, &live, &parts, &mut ctx).await?;
        let bytes = read_body(&parts.headers, body, server.max_body_bytes).await?;
        let (mut creq, notes) = S::decode(parse_json(&bytes)?, &parts)?;
        for n in &notes {
            ctx.ingress_warnings.push(n.as_str());
        }
        ctx.warnings = ctx.ingress_warnings.clone();
        authorize_model(&state, &ctx, &creq.model)?;
        let choices = u64::from(creq.sampling.n.unwrap_or(1).max(1));
        let size = Size {
            input_tokens: crate::tokens::quick_estimate(&creq),
            max_output: creq.max_output_tokens,
            choices,
            has_output: true,
            user: creq.user.clone(),
        };
        admit(
            &state,
            &live,
            &mut ctx,
            &parts.headers,
            &creq.model,
            size,
            &bytes,
        )
        .await?;
        creq.raw = Some(RawBody {
            schema: S::SCHEMA,
            bytes,
            headers: forwarded(S::FORWARDED, &parts.headers),
        });
        let outcome = pipeline::chat(&live, &mut ctx, &creq, server.stream_keepalive).await?;
        Ok((outcome, S::encoder(&creq, &parts)))
    }
    .await;
    match result {
        Ok((ChatOutcome::Complete(resp), _)) => {
            for c in &resp.choices {
                crate::codec::note_unsent(&c.message.parts, S::SCHEMA, &mut ctx.warnings);
            }
            let mut r = S::reply(&resp, &ctx);
            add_ctx_headers(&mut r, &ctx);
            settle(&mut ctx, resp.usage.unwrap_or_default(), "ok", || {
                Some(resp.output_text())
            });
            r
        }
        // Only a request in the client's own schema is passed through, so its reply is too.
        Ok((ChatOutcome::Passthrough { body, usage }, _)) => {
            let mut r = reply_bytes(&ctx, body.clone());
            add_ctx_headers(&mut r, &ctx);
            let served = ctx
                .served
                .as_ref()
                .and_then(|(p, _)| live.provider(p))
                .cloned();
            settle(&mut ctx, usage.unwrap_or_default(), "ok", || {
                let reply = served?.adapter.parse_chat(&body).ok()?;
                Some(reply.output_text())
            });
            r
        }
        Ok((ChatOutcome::Stream(live_stream), encoder)) => {
            let record = StreamRecord::new(&mut ctx);
            let body = relay(*live_stream, encoder, server.stream_keepalive, record);
            let mut r = S::stream_response(Body::from_stream(body), &parts);
            add_ctx_headers(&mut r, &ctx);
            r
        }
        Err(e) => {
            tracing::debug!(request_id = %ctx.id, error = %e, "request failed");
            super::fail(&mut ctx, &e);
            S::error(&e, &ctx)
        }
    }
}

/// The client's headers named in `names`, to send on to a provider of the same schema.
pub fn forwarded(
    names: &[&'static str],
    headers: &http::HeaderMap,
) -> Vec<(HeaderName, HeaderValue)> {
    names
        .iter()
        .filter_map(|h| Some((HeaderName::from_static(h), headers.get(*h)?.clone())))
        .collect()
}

/// Headers every SSE reply carries: no caching, and no buffering by nginx-style proxies.
pub fn sse_response(body: Body) -> Response {
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}
