//! `POST /v1/chat/completions` (also under `/openai`).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};

use super::{add_ctx_headers, json_response, openai_error, read_json};
use crate::codec::openai_chat::{self, ChunkEncoder, wire::OaiChatRequest};
use crate::error::GatewayError;
use crate::pipeline::relay::{StreamRecord, relay};
use crate::pipeline::{self, ChatOutcome, RequestCtx};
use crate::state::AppState;

pub async fn chat_completions(State(state): State<AppState>, req: Request) -> Response {
    let mut ctx = RequestCtx::new();
    let live = state.live();
    let (parts, body) = req.into_parts();
    let server = &live.config.server;
    let result: Result<_, GatewayError> = async {
        let wire: OaiChatRequest = read_json(&parts.headers, body, server.max_body_bytes).await?;
        let creq = openai_chat::decode_request(wire)?;
        let outcome = pipeline::chat(&live, &mut ctx, &creq, server.stream_keepalive).await?;
        Ok((outcome, creq.stream_usage))
    }
    .await;
    match result {
        Ok((ChatOutcome::Complete(resp), _)) => {
            let mut r = json_response(StatusCode::OK, &openai_chat::encode_response(&resp));
            add_ctx_headers(&mut r, &ctx);
            r
        }
        Ok((ChatOutcome::Stream(live_stream), include_usage)) => {
            let (provider, model) = ctx.served.clone().unwrap_or_default();
            let record = StreamRecord {
                request_id: ctx.id.clone(),
                provider,
                model,
                started: ctx.started,
                first_byte: None,
                usage: Default::default(),
                finish: None,
                outcome: None,
            };
            let body = relay(
                live_stream,
                ChunkEncoder::new(include_usage),
                server.stream_keepalive,
                record,
            );
            let mut r = sse_response(Body::from_stream(body));
            add_ctx_headers(&mut r, &ctx);
            r
        }
        Err(e) => {
            tracing::debug!(request_id = %ctx.id, error = %e, "request failed");
            openai_error(&e, &ctx)
        }
    }
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
