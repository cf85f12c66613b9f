//! `POST /v1/messages/count_tokens` (also under `/anthropic`): how many input tokens an
//! Anthropic Messages request would use on the model it routes to.
//!
//! A provider that counts tokens itself is asked (the `anthropic` provider, when it lands);
//! for every other provider the answer is an estimate from a real tokenizer (see
//! [`crate::tokens`]), and `x-gatehouse-warnings` says so. Claude Code calls this before
//! long requests, so it must answer whatever provider serves the model.

use axum::extract::{Request, State};
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use super::{add_ctx_headers, error_response, json_response, read_json};
use crate::codec::anthropic::{self, wire::AnthRequest};
use crate::error::GatewayError;
use crate::pipeline::RequestCtx;
use crate::routing;
use crate::state::AppState;
use crate::tokens;

pub async fn count_tokens(State(state): State<AppState>, req: Request) -> Response {
    let mut ctx = RequestCtx::new();
    let live = state.live();
    let (parts, body) = req.into_parts();
    let result: Result<u64, GatewayError> = async {
        let mut v: Value =
            read_json(&parts.headers, body, live.config.server.max_body_bytes).await?;
        // The count request is a Messages request without `max_tokens`.
        if let Some(obj) = v.as_object_mut() {
            obj.entry("max_tokens").or_insert(json!(1));
        }
        let wire: AnthRequest = serde_json::from_value(v)
            .map_err(|e| GatewayError::invalid(format!("invalid count_tokens request: {e}")))?;
        let creq = anthropic::decode_request(wire)?;
        let resolved = routing::resolve(&live, &creq.model)?;
        ctx.rule = resolved.rule;
        if let Some(c) = resolved.candidates.first() {
            ctx.served = Some((c.provider.name().to_owned(), c.model.clone()));
        }
        let n = tokio::task::spawn_blocking(move || tokens::estimate(&creq))
            .await
            .ok()
            .flatten()
            .ok_or_else(|| GatewayError::internal("the tokenizer could not be loaded"))?;
        ctx.warnings
            .push(format!("input_tokens estimated with {}", tokens::TOKENIZER));
        Ok(n)
    }
    .await;
    match result {
        Ok(n) => {
            let mut r = json_response(StatusCode::OK, &json!({ "input_tokens": n }));
            add_ctx_headers(&mut r, &ctx);
            r
        }
        Err(e) => error_response(&e, &anthropic::error_body(&e), &ctx),
    }
}
