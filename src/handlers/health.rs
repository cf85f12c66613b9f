//! `/healthz` (the process is alive) and `/readyz` (it should receive traffic).

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde_json::json;

use super::json_response;
use crate::state::AppState;

pub async fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

/// 503 while draining after SIGTERM (so a load balancer stops sending new requests) or
/// while the store does not answer.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let store = state.store();
    if state.is_draining() {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "draining"}),
        )
    } else if !store.ping().await {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "unavailable", "store": store.backend(), "store_reachable": false}),
        )
    } else {
        json_response(
            StatusCode::OK,
            &json!({"status": "ready", "store": store.backend()}),
        )
    }
}
