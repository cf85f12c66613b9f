//! `GET /v1/models`: the models a caller may ask for, in OpenAI's list format.

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde_json::json;

use super::json_response;
use crate::routing;
use crate::state::AppState;

pub async fn list_models(State(state): State<AppState>) -> Response {
    let live = state.live();
    let data: Vec<_> = routing::listed_models(&live)
        .into_iter()
        .map(|(id, owner)| json!({"id": id, "object": "model", "created": 0, "owned_by": owner}))
        .collect();
    json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
}
