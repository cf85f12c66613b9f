//! `/healthz` (the process is alive) and `/readyz` (it should receive traffic).

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde_json::json;

use crate::pipeline::reply::json_response;
use crate::state::AppState;

pub async fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

/// 503 while draining after SIGTERM (so a load balancer stops sending new requests), while
/// the store does not answer, or while the configured Redis does not (budgets then refuse
/// every request: this instance is degraded).
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
    } else if state.governance().redis_up() == Some(false) {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "degraded", "store": store.backend(), "redis_reachable": false}),
        )
    } else {
        json_response(
            StatusCode::OK,
            &json!({"status": "ready", "store": store.backend()}),
        )
    }
}
