//! The route table and the layers around it, in one place.
//!
//! Layers, outermost first:
//! - head limits: a head of more than `config::MAX_HEADERS` fields gets 431 (HTTP/2's; an
//!   HTTP/1 one, and a head of too many bytes, never gets here: `server`).
//! - shedding (`pipeline::shed`): an inference request past `[server] max_in_flight` or
//!   `max_buffered_body_bytes` is refused here with 503, before authentication, its body or
//!   any provider; an admitted one holds its place until its reply body is dropped (the
//!   service's reply body is a `held::Holding` of the request's `shed::Ticket`). Every body but the public routes' is read
//!   through `pipeline::intake`: within `body_read_timeout`, within the body budget, and
//!   drained a bounded amount when a reply went out before it was read (lingering close).
//!   The public routes (health, readiness) are exempt, and so are the admin API and
//!   `/metrics` from the in-flight and body bounds. With `[server] cancel_on_disconnect`
//!   off, an admitted inference request's place also goes to its handler, which runs it on
//!   a task of its own (`pipeline::detach`).
//! - authentication, deny by default ([`App`]): every route needs a caller except the
//!   named [`PUBLIC`] ones. Inference routes (everything outside `/admin/` and `/metrics`)
//!   get the pipeline's first stage (`pipeline::auth`), the admin API and `/metrics` the
//!   admin's credential check (`admin::caller`); the caller goes into the request's
//!   extensions for the handler's extractor, and a refusal is answered here, in the schema
//!   the path implies. A route added later is closed until it is named public.
//! - catch-panic: a bug becomes a 500 in OpenAI's format, never a dropped connection.
//!
//! Everything else that needs the parsed request is an explicit pipeline stage instead
//! (STYLE §3.4). Inference routes are mounted at `/v1/...` and again under `/openai/v1/...`
//! so that `OPENAI_BASE_URL=http://host:8080/openai/v1` works.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::routing::future::RouteFuture;
use axum::routing::{get, post};
use futures_util::future::{BoxFuture, Either};
use tower::Service;
use tower_http::catch_panic::CatchPanicLayer;

use crate::config::MAX_HEADERS;
use crate::error::{ErrorKind, GatewayError};
use crate::handlers;
use crate::held::{HoldUntilSent, Holding};
use crate::pipeline::RequestCtx;
use crate::pipeline::auth;
use crate::pipeline::client::error_body_for;
use crate::pipeline::detach::Detached;
use crate::pipeline::intake::{self, Intake};
use crate::pipeline::reply::{error_response, openai_error};
use crate::pipeline::shed::{Load, Ticket};
use crate::state::AppState;

/// The routes anyone may call, without a credential.
pub const PUBLIC: &[&str] = &["/healthz", "/readyz", "/admin/api/openapi.json"];

pub fn router(state: AppState) -> App {
    // Flat paths, not `nest`: a nested router rewrites every request's URI to strip its
    // prefix, an allocation and a URI parse per request on the hot path.
    let mut app = Router::new();
    for prefix in ["/v1", "/openai/v1"] {
        app = app
            .route(
                &format!("{prefix}/chat/completions"),
                post(handlers::chat_completions),
            )
            .route(&format!("{prefix}/embeddings"), post(handlers::embeddings))
            .route(&format!("{prefix}/models"), get(handlers::models))
            .route(&format!("{prefix}/usage"), get(handlers::usage))
            .route(&format!("{prefix}/responses"), post(handlers::responses))
            .route(
                &format!("{prefix}/responses/{{id}}"),
                get(handlers::get_response).delete(handlers::delete_response),
            );
    }
    // Anthropic clients: `ANTHROPIC_BASE_URL=http://host:8080/anthropic` (or the bare host);
    // query strings such as `?beta=true` are accepted.
    for prefix in ["/v1", "/anthropic/v1"] {
        app = app
            .route(&format!("{prefix}/messages"), post(handlers::messages))
            .route(
                &format!("{prefix}/messages/count_tokens"),
                post(handlers::count_tokens),
            );
    }
    // Gemini clients: `GOOGLE_GEMINI_BASE_URL=http://host:8080/gemini` (or the bare host).
    for prefix in ["/v1beta", "/gemini/v1beta", "/gemini/v1"] {
        app = app.route(
            &format!("{prefix}/models/{{target}}"),
            post(handlers::gemini),
        );
    }
    let router = app
        .merge(crate::admin::router())
        .merge(crate::ui::router())
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/metrics", get(crate::admin::routing::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state.clone());
    App {
        router,
        state,
        load: Load::new(),
    }
}

/// The route table behind the authentication layer (see the module header).
#[derive(Clone)]
pub struct App {
    router: Router,
    state: AppState,
    /// Requests in flight and body bytes held, for shedding (`pipeline::shed`).
    load: Arc<Load>,
}

/// Who a path is for.
#[derive(Clone, Copy)]
enum Access {
    Public,
    Admin,
    /// The dashboard: a session cookie, found by `ui::viewer` (its sign-in page excepted).
    Ui,
    Inference,
}

fn access(path: &str) -> Access {
    if PUBLIC.contains(&path) {
        Access::Public
    } else if path.starts_with("/admin/") || path == "/metrics" {
        Access::Admin
    } else if crate::ui::is_ui(path) {
        Access::Ui
    } else {
        Access::Inference
    }
}

impl<B> Service<http::Request<B>> for App
where
    B: http_body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = http::Response<Holding<Body, Ticket>>;
    type Error = Infallible;
    /// The route's own future, or (for a refusal, or a key that must be looked up again)
    /// one of ours: most requests pay for no box and no extra state machine here. Its reply
    /// body holds the request's place in flight (`shed`).
    type Future = HoldUntilSent<
        Either<RouteFuture<Infallible>, BoxFuture<'static, Result<Response, Infallible>>>,
        Ticket,
    >;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        // A refusal, in the schema the path implies.
        let refuse = |e: GatewayError, path: &str| {
            let r = refusal(&e, path);
            HoldUntilSent::new(
                Either::Right(Box::pin(std::future::ready(Ok(r))) as BoxFuture<'static, _>),
                None,
            )
        };
        // Too many header fields: hyper refuses an HTTP/1 head's itself (`server`), and the
        // `h2` crate only an HTTP/2 one's bytes, so its fields are counted here.
        if req.headers().len() > MAX_HEADERS {
            return refuse(too_many_headers(), req.uri().path());
        }
        let access = access(req.uri().path());
        if let Access::Public = access {
            return HoldUntilSent::new(Either::Left(self.router.call(req.map(Body::new))), None);
        }
        let (mut head, body) = req.into_parts();
        // 0. Shed: the in-flight and body-bytes bounds, from the head alone (inference only).
        let (ticket, body) = {
            let live = self.state.live_now();
            let server = &live.config.server;
            let limits = server.overload;
            let ticket = match access {
                Access::Inference => {
                    match self
                        .load
                        .admit(&limits, server.max_body_bytes, &head.headers)
                    {
                        Ok(t) => Some(t),
                        Err(e) => {
                            // The unread body lingers (`intake`) so the client sees the 503.
                            drop(Intake::new(body, &head, None, bounds(&limits, 0)));
                            return refuse(e, head.uri.path());
                        }
                    }
                }
                _ => None,
            };
            let reserved = ticket.as_ref().map_or(0, Ticket::reserved);
            let intake = Intake::new(body, &head, ticket.clone(), bounds(&limits, reserved));
            // `cancel_on_disconnect = false`: the handler runs the request on a task that
            // holds its place (`pipeline::detach`).
            if !server.cancel_on_disconnect
                && let Some(t) = &ticket
            {
                head.extensions.insert(Detached(t.clone()));
            }
            (ticket, Body::new(intake))
        };
        if let Access::Ui = access {
            if crate::ui::PUBLIC.contains(&head.uri.path()) {
                let req = http::Request::from_parts(head, body);
                return HoldUntilSent::new(Either::Left(self.router.call(req)), None);
            }
            let (state, mut router) = (self.state.clone(), self.router.clone());
            return HoldUntilSent::new(
                Either::Right(Box::pin(async move {
                    match crate::ui::viewer::find(&state, &head).await {
                        Ok(viewer) => {
                            head.extensions.insert(viewer);
                            router.call(http::Request::from_parts(head, body)).await
                        }
                        Err(refused) => Ok(refused),
                    }
                })),
                None,
            );
        }
        if let Access::Admin = access {
            match crate::admin::caller(&self.state, &head.headers) {
                Ok(caller) => head.extensions.insert(caller),
                Err(e) => return refuse(e, head.uri.path()),
            };
            return HoldUntilSent::new(
                Either::Left(self.router.call(http::Request::from_parts(head, body))),
                None,
            );
        }
        match auth::authenticate_now(&self.state, &head) {
            Some(Ok(caller)) => {
                head.extensions.insert(caller);
                HoldUntilSent::new(
                    Either::Left(self.router.call(http::Request::from_parts(head, body))),
                    ticket,
                )
            }
            Some(Err(e)) => refuse(e, head.uri.path()),
            None => {
                let (state, mut router) = (self.state.clone(), self.router.clone());
                HoldUntilSent::new(
                    Either::Right(Box::pin(async move {
                        match auth::authenticate(&state, &head).await {
                            Ok(caller) => {
                                head.extensions.insert(caller);
                                router.call(http::Request::from_parts(head, body)).await
                            }
                            Err(e) => Ok(refusal(&e, head.uri.path())),
                        }
                    })),
                    ticket,
                )
            }
        }
    }
}

/// The refusal of a head with more than [`MAX_HEADERS`] fields (431).
fn too_many_headers() -> GatewayError {
    GatewayError::new(
        ErrorKind::HeadersTooLarge,
        format!("the request has more than {MAX_HEADERS} header fields"),
    )
}

/// The bounds a request's body is read within.
fn bounds(limits: &crate::config::Overload, reserved: u64) -> intake::Bounds {
    intake::Bounds {
        timeout: limits.body_read_timeout,
        budget: limits.max_buffered_body_bytes,
        reserved,
    }
}

/// A request refused before any handler took it, in the schema its path implies.
fn refusal(e: &GatewayError, path: &str) -> Response {
    error_response(e, error_body_for(path, e), &RequestCtx::new())
}

/// An unknown path gets a 404 in the schema its prefix implies.
async fn not_found(uri: http::Uri) -> Response {
    let e = GatewayError::new(
        ErrorKind::NotFound,
        format!("no route for `{}`", uri.path()),
    );
    refusal(&e, uri.path())
}

async fn method_not_allowed() -> Response {
    let e = GatewayError::new(
        ErrorKind::MethodNotAllowed,
        "method not allowed on this path",
    );
    openai_error(&e, &RequestCtx::new())
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    let e = GatewayError::internal("internal error");
    openai_error(&e, &RequestCtx::new()).into_response()
}
