//! HTTP handlers: one line each, binding a route to the pipeline with its client schema
//! (STYLE §4.5). Authentication happened in the layer around every route (`app`); every
//! stage of a request is in `pipeline`.

use axum::extract::{Path, Request, State};
use axum::response::Response;
use futures_util::future::BoxFuture;

use crate::pipeline::auth::Caller;
use crate::pipeline::client::{AnthropicMessages, OpenAiChat, Responses};
use crate::pipeline::reply::json_response;
use crate::pipeline::{self, client, detach, info};
use crate::state::AppState;

// The inference handlers return their future boxed: it is several kilobytes, and axum's
// layers (routing, response mapping, the hyper glue) each move their inner future by value.
// Boxed, each of those moves is a pointer's, not a copy of the whole request's state.
// `detach` boxes them, and with `[server] cancel_on_disconnect` off runs them on a task of
// their own, so that a client that leaves does not cut them.

/// `POST /v1/chat/completions` (OpenAI Chat Completions).
pub fn chat_completions(State(s): State<AppState>, r: Request) -> BoxFuture<'static, Response> {
    detach::serve(r, |r| pipeline::serve::<OpenAiChat>(s, r))
}

/// `POST /v1/messages` (Anthropic Messages).
pub fn messages(State(s): State<AppState>, r: Request) -> BoxFuture<'static, Response> {
    detach::serve(r, |r| pipeline::serve::<AnthropicMessages>(s, r))
}

/// `POST /v1/responses` (OpenAI Responses).
pub fn responses(State(s): State<AppState>, r: Request) -> BoxFuture<'static, Response> {
    detach::serve(r, |r| pipeline::serve::<Responses>(s, r))
}

/// `POST /v1beta/models/{model}:{method}` (Gemini: generate, stream, count tokens).
pub fn gemini(State(s): State<AppState>, r: Request) -> BoxFuture<'static, Response> {
    detach::serve_boxed(r, |r| client::gemini::dispatch(s, r))
}

/// `POST /v1/messages/count_tokens` (Anthropic).
pub fn count_tokens(State(s): State<AppState>, r: Request) -> BoxFuture<'static, Response> {
    detach::serve(r, |r| pipeline::count::anthropic(s, r))
}

/// `POST /v1/embeddings`.
pub fn embeddings(State(s): State<AppState>, r: Request) -> BoxFuture<'static, Response> {
    detach::serve(r, |r| pipeline::serve_embeddings(s, r))
}

/// `GET /v1/models`: the models the caller may use.
pub async fn models(State(s): State<AppState>, c: Caller) -> Response {
    info::models(&s, &c)
}

/// `GET /v1/usage`: the caller's usage and budgets.
pub async fn usage(State(s): State<AppState>, c: Caller) -> Response {
    info::usage(&s, &c).await
}

/// `GET /v1/responses/{id}`: a stored response.
pub async fn get_response(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> Response {
    info::get_response(&s, &c, &id).await
}

/// `DELETE /v1/responses/{id}`.
pub async fn delete_response(
    State(s): State<AppState>,
    c: Caller,
    Path(id): Path<String>,
) -> Response {
    info::delete_response(&s, &c, &id).await
}

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> Response {
    json_response(http::StatusCode::OK, &serde_json::json!({"status": "ok"}))
}

/// `GET /readyz`: this instance should receive traffic (see `AppState::readiness`).
pub async fn readyz(State(s): State<AppState>) -> Response {
    let (status, body) = s.readiness().await;
    json_response(status, &body)
}
