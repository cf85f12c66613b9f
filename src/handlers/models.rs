//! `GET /v1/models`: the models a caller may ask for, in OpenAI's list format.

use axum::extract::{Request, State};
use axum::response::Response;
use http::StatusCode;
use serde_json::json;

use super::{authenticate, authorize_model, json_response, openai_error};
use crate::pipeline::RequestCtx;
use crate::routing;
use crate::state::AppState;

pub async fn list_models(State(state): State<AppState>, req: Request) -> Response {
    let live = state.live();
    let mut ctx = RequestCtx::new();
    let (parts, _) = req.into_parts();
    if let Err(e) = authenticate(&state, &live, &parts, &mut ctx).await {
        return openai_error(&e, &ctx);
    }
    // Only the models this key may use (SPEC §3).
    let data: Vec<_> = routing::listed_models(&live)
        .into_iter()
        .filter(|(id, _)| authorize_model(&state, &ctx, id).is_ok())
        .map(|(id, owner)| json!({"id": id, "object": "model", "created": 0, "owned_by": owner}))
        .collect();
    json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
}
