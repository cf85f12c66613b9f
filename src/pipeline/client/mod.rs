//! Client schemas: each API a client may speak is one [`ClientSchema`], defined once in a
//! module of its own here: how its request decodes into the canonical model, how a whole
//! reply, a stream and an error are written in it, and which of its headers go on to a
//! provider of the same schema. Adding a client API means one new module here (and its
//! wire translation in `codec`), a route in `app`, and nothing else.
//!
//! [`super::serve`] runs every stage of a request for any schema; the schema only speaks.

pub mod anthropic;
pub mod gemini;
pub mod openai_chat;
pub mod responses;

use std::future::Future;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, header};

use super::RequestCtx;
use super::relay::StreamEncoder;
use crate::error::GatewayError;
use crate::schema::{ChatRequest, ChatResponse, WireSchema};
use crate::state::AppState;

pub use anthropic::AnthropicMessages;
pub use gemini::Gemini;
pub use openai_chat::OpenAiChat;
pub use responses::Responses;

/// A request decoded from a client schema.
pub struct Decoded<T> {
    pub chat: ChatRequest,
    /// What the schema keeps for its reply.
    pub turn: T,
    /// The body a provider of the client's own schema gets, when it is not the client's
    /// as read (Responses: the stored turns put before its input).
    pub upstream_body: Option<Bytes>,
}

impl Decoded<()> {
    /// A request whose schema keeps nothing for its reply, sent on as the client wrote it.
    pub fn plain(chat: ChatRequest) -> Self {
        Self {
            chat,
            turn: (),
            upstream_body: None,
        }
    }
}

/// How one client schema speaks (see the module header).
pub trait ClientSchema: Send + 'static {
    const SCHEMA: WireSchema;
    /// Client headers sent on to a provider of the same schema.
    const FORWARDED: &'static [&'static str];
    type Encoder: StreamEncoder;
    /// What the schema keeps from its request for its reply (Responses: the fields it
    /// echoes, and what it stores).
    type Turn: Send;

    /// The canonical request from the client's body. What the canonical model cannot carry
    /// is noted in `ctx.ingress_warnings`.
    fn decode(
        state: &AppState,
        ctx: &mut RequestCtx,
        head: &Parts,
        body: &Bytes,
    ) -> impl Future<Output = Result<Decoded<Self::Turn>, GatewayError>> + Send;

    /// The body of a whole reply.
    fn reply(
        state: &AppState,
        turn: Self::Turn,
        reply: &ChatResponse,
    ) -> impl Future<Output = Result<Bytes, GatewayError>> + Send;

    /// A provider of the client's own schema answered: its body goes back as it came. A
    /// schema that keeps replies keeps it here.
    fn passthrough(
        _state: &AppState,
        _turn: Self::Turn,
        _body: &Bytes,
    ) -> impl Future<Output = Result<(), GatewayError>> + Send {
        async { Ok(()) }
    }

    /// The encoder of a streamed reply.
    fn encoder(
        state: &AppState,
        turn: Self::Turn,
        req: &ChatRequest,
        head: &Parts,
    ) -> Self::Encoder;

    /// The reply that carries a stream.
    fn stream_response(body: Body, _head: &Parts) -> Response {
        sse_response(body)
    }

    /// The schema's error object for `e`.
    fn error_body(e: &GatewayError) -> Bytes;
}

/// The error body of the schema a path belongs to, for replies made before any schema
/// took the request (authentication, unknown routes): Anthropic's under `/anthropic/` and
/// for `/v1/messages`, Gemini's under `/gemini/` and `/v1beta/`, OpenAI's elsewhere.
pub fn error_body_for(path: &str, e: &GatewayError) -> Bytes {
    if path.starts_with("/anthropic/") || path.starts_with("/v1/messages") {
        AnthropicMessages::error_body(e)
    } else if path.starts_with("/gemini/") || path.starts_with("/v1beta/") {
        Gemini::error_body(e)
    } else {
        OpenAiChat::error_body(e)
    }
}

/// The client's headers named in `names`, to send on to a provider of the same schema.
pub fn forwarded(names: &[&'static str], headers: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
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

/// A value's JSON.
pub fn to_json(v: &impl serde::Serialize) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}
