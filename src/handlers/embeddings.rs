//! `POST /v1/embeddings` (also under `/openai`).

use axum::extract::{Request, State};
use axum::response::Response;

use super::{
    Size, add_ctx_headers, admit, authenticate, authorize_model, openai_error, parse_json,
    read_body, reply_json, settle,
};
use crate::codec::openai_embeddings::{self, OaiEmbeddingRequest};
use crate::pipeline::{self, RequestCtx};
use crate::state::AppState;

pub async fn embeddings(State(state): State<AppState>, req: Request) -> Response {
    let mut ctx = RequestCtx::new();
    ctx.schema = "embeddings";
    let live = state.live();
    let (parts, body) = req.into_parts();
    let result = async {
        authenticate(&state, &live, &parts, &mut ctx).await?;
        let bytes = read_body(&parts.headers, body, live.config.server.max_body_bytes).await?;
        let wire: OaiEmbeddingRequest = parse_json(&bytes)?;
        let ereq = openai_embeddings::decode_request(wire)?;
        authorize_model(&state, &ctx, &ereq.model)?;
        let size = Size {
            input_tokens: openai_embeddings::estimate_input(&ereq),
            max_output: None,
            choices: 1,
            has_output: false,
            user: ereq.user.clone(),
        };
        admit(
            &state,
            &live,
            &mut ctx,
            &parts.headers,
            &ereq.model,
            size,
            &bytes,
        )
        .await?;
        pipeline::embeddings(&live, &mut ctx, &ereq).await
    }
    .await;
    match result {
        Ok(resp) => {
            let mut r = reply_json(&ctx, &openai_embeddings::encode_response(&resp));
            add_ctx_headers(&mut r, &ctx);
            let usage = crate::schema::Usage {
                input_tokens: resp.input_tokens,
                ..Default::default()
            };
            settle(&mut ctx, usage, "ok", || None);
            r
        }
        Err(e) => {
            super::fail(&mut ctx, &e);
            openai_error(&e, &ctx)
        }
    }
}
