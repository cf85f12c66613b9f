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
use http::{HeaderName, HeaderValue, StatusCode, header};
use serde::de::DeserializeOwned;

use super::{
    Size, add_ctx_headers, admit, authenticate, authorize_model, error_response,
    json_bytes_response, json_response, openai_error, parse_json, read_body, settle,
};
use crate::codec::{anthropic, openai_chat};
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
    fn decode(w: Self::Wire) -> Result<ChatRequest, GatewayError>;
    fn reply(r: &ChatResponse) -> Response;
    fn encoder(req: &ChatRequest) -> Self::Encoder;
    fn error(e: &GatewayError, ctx: &RequestCtx) -> Response;
}

/// OpenAI Chat Completions.
pub struct OpenAiChat;

impl ChatSchema for OpenAiChat {
    const SCHEMA: WireSchema = WireSchema::OpenAiChat;
    const FORWARDED: &'static [&'static str] = &[];
    type Wire = openai_chat::wire::OaiChatRequest;
    type Encoder = openai_chat::ChunkEncoder;
    fn decode(w: Self::Wire) -> Result<ChatRequest, GatewayError> {
        openai_chat::decode_request(w)
    }
    fn reply(r: &ChatResponse) -> Response {
        json_response(StatusCode::OK, &openai_chat::encode_response(r))
    }
    fn encoder(req: &ChatRequest) -> Self::Encoder {
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
    fn decode(w: Self::Wire) -> Result<ChatRequest, GatewayError> {
        anthropic::decode_request(w)
    }
    fn reply(r: &ChatResponse) -> Response {
        json_response(StatusCode::OK, &anthropic::encode_response(r))
    }
    fn encoder(_: &ChatRequest) -> Self::Encoder {
        anthropic::MessageEncoder::new()
    }
    fn error(e: &GatewayError, ctx: &RequestCtx) -> Response {
        error_response(e, &anthropic::error_body(e), ctx)
    }
}

pub async fn chat_completions(state: State<AppState>, req: Request) -> Response {
    serve_chat(PhantomData::<OpenAiChat>, state, req).await
}

pub async fn messages(state: State<AppState>, req: Request) -> Response {
    serve_chat(PhantomData::<AnthropicMessages>, state, req).await
}

async fn serve_chat<S: ChatSchema>(
    _: PhantomData<S>,
    State(state): State<AppState>,
    req: Request,
) -> Response {
    let mut ctx = RequestCtx::new();
    let live = state.live();
    let (parts, body) = req.into_parts();
    let server = &live.config.server;
    let result: Result<_, GatewayError> = async {
        authenticate(&state, &live, &parts, &mut ctx).await?;
        let bytes = read_body(&parts.headers, body, server.max_body_bytes).await?;
        let mut creq = S::decode(parse_json(&bytes)?)?;
        authorize_model(&state, &ctx, &creq.model)?;
        let choices = u64::from(creq.sampling.n.unwrap_or(1).max(1));
        let size = Size {
            input_tokens: crate::tokens::quick_estimate(&creq),
            max_output: creq.max_output_tokens.map(|m| m.saturating_mul(choices)),
            has_output: true,
            user: creq.user.clone(),
        };
        admit(&state, &live, &mut ctx, &parts.headers, &creq.model, size).await?;
        creq.raw = Some(RawBody {
            schema: S::SCHEMA,
            bytes,
            headers: forwarded(S::FORWARDED, &parts.headers),
        });
        let outcome = pipeline::chat(&live, &mut ctx, &creq, server.stream_keepalive).await?;
        Ok((outcome, S::encoder(&creq)))
    }
    .await;
    match result {
        Ok((ChatOutcome::Complete(resp), _)) => {
            let mut r = S::reply(&resp);
            add_ctx_headers(&mut r, &ctx);
            settle(&mut ctx, resp.usage.unwrap_or_default(), "ok", || {
                Some(resp.output_text())
            });
            r
        }
        // Only a request in the client's own schema is passed through, so its reply is too.
        Ok((ChatOutcome::Passthrough { body, usage }, _)) => {
            let mut r = json_bytes_response(StatusCode::OK, body.clone());
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
            let body = relay(live_stream, encoder, server.stream_keepalive, record);
            let mut r = sse_response(Body::from_stream(body));
            add_ctx_headers(&mut r, &ctx);
            r
        }
        Err(e) => {
            tracing::debug!(request_id = %ctx.id, error = %e, "request failed");
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
