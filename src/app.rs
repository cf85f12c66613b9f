//! The route table and the tower layers, in one place.
//!
//! Layers, outermost first: catch-panic (a bug becomes a 500 in OpenAI's format, never a
//! dropped connection). Everything that needs the parsed request is an explicit pipeline
//! stage instead (STYLE §3.4). Inference routes are mounted at `/v1/...` and again under
//! `/openai/v1/...` so that `OPENAI_BASE_URL=http://host:8080/openai/v1` works.

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;

use crate::codec::anthropic;
use crate::error::{ErrorKind, GatewayError};
use crate::handlers::{
    self, chat, count_tokens, embeddings, gemini, health, models, responses, usage,
};
use crate::pipeline::RequestCtx;
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    // Flat paths, not `nest`: a nested router rewrites every request's URI to strip its
    // prefix, an allocation and a URI parse per request on the hot path.
    let mut app = Router::new();
    for prefix in ["/v1", "/openai/v1"] {
        app = app
            .route(
                &format!("{prefix}/chat/completions"),
                post(chat::chat_completions),
            )
            .route(
                &format!("{prefix}/embeddings"),
                post(embeddings::embeddings),
            )
            .route(&format!("{prefix}/models"), get(models::list_models))
            .route(&format!("{prefix}/usage"), get(usage::usage))
            .route(&format!("{prefix}/responses"), post(responses::create))
            .route(
                &format!("{prefix}/responses/{{id}}"),
                get(responses::get).delete(responses::delete),
            );
    }
    // Anthropic clients: `ANTHROPIC_BASE_URL=http://host:8080/anthropic` (or the bare host);
    // query strings such as `?beta=true` are accepted.
    for prefix in ["/v1", "/anthropic/v1"] {
        app = app
            .route(&format!("{prefix}/messages"), post(chat::messages))
            .route(
                &format!("{prefix}/messages/count_tokens"),
                post(count_tokens::count_tokens),
            );
    }
    // Gemini clients: `GOOGLE_GEMINI_BASE_URL=http://host:8080/gemini` (or the bare host).
    for prefix in ["/v1beta", "/gemini/v1beta", "/gemini/v1"] {
        app = app.route(&format!("{prefix}/models/{{target}}"), post(gemini::models));
    }
    app.merge(crate::admin::router())
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(crate::admin::routing::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state)
}

/// An unknown path gets a 404 in the schema its prefix implies.
async fn not_found(uri: http::Uri) -> Response {
    let e = GatewayError::new(
        ErrorKind::NotFound,
        format!("no route for `{}`", uri.path()),
    );
    let ctx = RequestCtx::new();
    if uri.path().starts_with("/anthropic/") {
        return handlers::error_response(&e, &anthropic::error_body(&e), &ctx);
    }
    if uri.path().starts_with("/gemini/") || uri.path().starts_with("/v1beta/") {
        return handlers::error_response(&e, &crate::codec::gemini::error_body(&e), &ctx);
    }
    handlers::openai_error(&e, &ctx)
}

async fn method_not_allowed() -> Response {
    let e = GatewayError::new(
        ErrorKind::MethodNotAllowed,
        "method not allowed on this path",
    );
    handlers::openai_error(&e, &RequestCtx::new())
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    let e = GatewayError::internal("internal error");
    handlers::openai_error(&e, &RequestCtx::new()).into_response()
}
