//! Gemini API: `POST /v1beta/models/{model}:{method}` (also under `/gemini`, and `v1`):
//! `generateContent` and `streamGenerateContent` are chat requests (`chat::Gemini`);
//! `countTokens` answers with an estimate from the gateway's tokenizer, whatever provider
//! serves the model. Credentials come as `x-goog-api-key` or `?key=` (never logged).

use axum::extract::{Request, State};
use axum::response::Response;
use http::StatusCode;
use serde_json::json;

use super::chat::{gemini_generate, gemini_target};
use super::{
    add_ctx_headers, authenticate, authorize_model, error_response, json_response, parse_json,
    read_body,
};
use crate::codec::gemini;
use crate::error::{ErrorKind, GatewayError};
use crate::pipeline::RequestCtx;
use crate::state::AppState;
use crate::tokens;

pub async fn models(state: State<AppState>, req: Request) -> Response {
    let method = gemini_target(req.uri().path()).1.to_owned();
    match method.as_str() {
        "generateContent" | "streamGenerateContent" => gemini_generate(state, req).await,
        "countTokens" => count_tokens(state, req).await,
        other => {
            let e = GatewayError::new(
                ErrorKind::NotFound,
                format!(
                    "method `{other}` is not served: use generateContent, streamGenerateContent or countTokens"
                ),
            );
            error_response(&e, &gemini::error_body(&e), &RequestCtx::new())
        }
    }
}

async fn count_tokens(State(state): State<AppState>, req: Request) -> Response {
    let mut ctx = RequestCtx::new();
    let live = state.live();
    let (parts, body) = req.into_parts();
    let result: Result<u64, GatewayError> = async {
        authenticate(&state, &live, &parts, &mut ctx).await?;
        let bytes = read_body(&parts.headers, body, live.config.server.max_body_bytes).await?;
        // `{contents, ...}`, or a whole request under `generateContentRequest`.
        let w: gemini::wire::GeminiCountTokensRequest = parse_json(&bytes)?;
        let (model, _) = gemini_target(parts.uri.path());
        let creq = gemini::decode_request(gemini::count_tokens_request(w)?, model, false)?.chat;
        authorize_model(&state, &ctx, &creq.model)?;
        let n = tokens::estimate_off_runtime(creq).await?;
        ctx.warnings
            .push(format!("totalTokens estimated with {}", tokens::TOKENIZER));
        Ok(n)
    }
    .await;
    match result {
        Ok(n) => {
            let mut r = json_response(StatusCode::OK, &json!({ "totalTokens": n }));
            add_ctx_headers(&mut r, &ctx);
            r
        }
        Err(e) => error_response(&e, &gemini::error_body(&e), &ctx),
    }
}
