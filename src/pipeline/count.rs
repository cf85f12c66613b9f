//! Counting a request's tokens without serving it: stages 1 to 3 of [`super::serve`]
//! (authenticated by the layer, decoded, authorized), then a count instead of admission.
//!
//! `POST /v1/messages/count_tokens` (also under `/anthropic`): how many input tokens an
//! Anthropic Messages request would use on the model it routes to.
//!
//! A provider that counts tokens itself is asked (the `anthropic` provider: its own
//! `count_tokens` with the client's body and headers); for every other provider, or when
//! that count fails, the answer is an estimate from a real tokenizer (see [`crate::tokens`]),
//! and `x-gatehouse-warnings` says so. Claude Code calls this before long requests, so it must
//! answer whatever provider serves the model.

use axum::extract::Request;
use axum::response::Response;
use http::StatusCode;
use serde_json::json;

use super::admit::authorize;
use super::client::{AnthropicMessages, ClientSchema, Gemini, forwarded};
use super::reply::{add_ctx_headers, error_response, json_response};
use super::{RequestCtx, parse_json, read_body};
use crate::codec::anthropic::{self, wire::AnthRequest};
use crate::codec::gemini;
use crate::error::GatewayError;
use crate::providers::{UpstreamRequest, bad_reply, exec};
use crate::routing::{self, Candidate};
use crate::schema::{RawBody, WireSchema};
use crate::state::AppState;
use crate::tokens;

/// Anthropic's `count_tokens`.
pub async fn anthropic(state: AppState, req: Request) -> Response {
    let live = state.live();
    let (parts, body) = req.into_parts();
    let mut ctx = RequestCtx::of(&parts, "messages");
    let result: Result<u64, GatewayError> = async {
        let bytes = read_body(&parts.headers, body, live.config.server.max_body_bytes).await?;
        let creq = anthropic::decode_count_request(parse_json::<AnthRequest>(&bytes)?)?;
        authorize(&state, &ctx, &creq.model)?;
        let resolved = routing::resolve(&live, &creq.model)?;
        ctx.rule = resolved.rule;
        if let Some(c) = resolved.candidates.first() {
            ctx.served = Some((c.provider.name().to_owned(), c.model.clone()));
            let raw = RawBody {
                schema: WireSchema::AnthropicMessages,
                bytes,
                headers: forwarded(AnthropicMessages::FORWARDED, &parts.headers),
            };
            if let Some(up) = c.provider.adapter.count_tokens(&raw, &c.model) {
                match provider_count(c, &ctx.hop, &ctx.id, up).await {
                    Ok(n) => return Ok(n),
                    // The provider's 4xx is about the request: the client's to see.
                    Err(e) if !e.retryable => return Err(e),
                    Err(e) => {
                        tracing::warn!(request_id = %ctx.id, provider = c.provider.name(), error = %e, "token count failed; estimating");
                        ctx.warnings.push(format!("{} could not count", c.provider.name()));
                    }
                }
            }
        }
        let n = tokens::estimate_off_runtime(creq).await?;
        ctx.warnings
            .push(format!("input_tokens estimated with {}", tokens::TOKENIZER));
        Ok(n)
    }
    .await;
    render::<AnthropicMessages>(result, "input_tokens", &ctx)
}

/// Gemini's `countTokens`: an estimate from the gateway's tokenizer, whatever provider
/// serves the model.
pub async fn gemini(state: AppState, req: Request) -> Response {
    let live = state.live();
    let (parts, body) = req.into_parts();
    let mut ctx = RequestCtx::of(&parts, "gemini");
    let result: Result<u64, GatewayError> = async {
        let bytes = read_body(&parts.headers, body, live.config.server.max_body_bytes).await?;
        // `{contents, ...}`, or a whole request under `generateContentRequest`.
        let w: gemini::wire::GeminiCountTokensRequest = parse_json(&bytes)?;
        let (model, _) = super::client::gemini::target(parts.uri.path());
        let creq = gemini::decode_request(gemini::count_tokens_request(w)?, model, false)?.chat;
        authorize(&state, &ctx, &creq.model)?;
        let n = tokens::estimate_off_runtime(creq).await?;
        ctx.warnings
            .push(format!("totalTokens estimated with {}", tokens::TOKENIZER));
        Ok(n)
    }
    .await;
    render::<Gemini>(result, "totalTokens", &ctx)
}

/// The count as `{field: n}`, or the error, in schema `S`.
fn render<S: ClientSchema>(
    result: Result<u64, GatewayError>,
    field: &str,
    ctx: &RequestCtx,
) -> Response {
    match result {
        Ok(n) => {
            let mut r = json_response(StatusCode::OK, &json!({ field: n }));
            add_ctx_headers(&mut r, ctx);
            r
        }
        Err(e) => error_response(&e, S::error_body(&e), ctx),
    }
}

/// The provider's own count: `{"input_tokens": n}`.
async fn provider_count(
    c: &Candidate,
    hop: &http::HeaderValue,
    request_id: &str,
    up: UpstreamRequest,
) -> Result<u64, GatewayError> {
    #[derive(serde::Deserialize)]
    struct Count {
        input_tokens: u64,
    }
    let p = &c.provider;
    let out = exec::Outbound {
        key: p.first_key(),
        hop,
        request_id,
        capture: None,
        traceparent: None,
    };
    let body = exec::send_for_body(p, &out, up).await?;
    serde_json::from_slice::<Count>(&body)
        .map(|c| c.input_tokens)
        .map_err(|e| bad_reply(p.name(), e))
}
