//! `[server] cancel_on_disconnect` (RELIABILITY 13): whether a client that leaves before its
//! reply was sent cancels the request.
//!
//! On (the default), a request's handling is the future hyper polls for its connection:
//! when the client leaves, hyper drops it, and with it the provider call (closed within a
//! second), the request settled as cancelled (`settle`), and its place in flight (`shed`).
//!
//! Off, the handler runs the request on a task of its own ([`crate::tasks`], so shutdown
//! waits for it) and awaits it; a client that leaves drops only that wait. The request runs
//! on to its reply: the provider answers, its usage is charged and recorded (`ok`, as if the
//! reply had gone out), and the reply is then dropped unsent. The task holds the request's
//! place in flight ([`Detached`], the `shed` ticket that `app` hands over in the request's
//! extensions) until the reply is made, so `max_in_flight` still counts the work. A stream
//! already being relayed still stops when its client leaves: its reply is its body, which
//! hyper drops, and with it the upstream stream (`relay`); keeping a stream going for nobody
//! would pay for every token of it.
//!
//! Which way a request goes is decided once, by `app`, from the config snapshot its
//! shedding read: the marker is there or not.
//!
//! This wraps [`super::serve`] (and the other inference entries) from outside, in the
//! handlers, so the stages themselves do not know which way they run.

use std::future::Future;

use axum::extract::Request;
use axum::response::Response;
use futures_util::future::BoxFuture;

use super::RequestCtx;
use super::shed::Ticket;
use crate::error::{ErrorKind, GatewayError};
use crate::tasks::{self, Kind};

/// In a request's extensions: run it on a task of its own, holding this place in flight
/// until its reply is made (`cancel_on_disconnect = false`). Put there by `app`.
#[derive(Clone)]
pub struct Detached(pub Ticket);

/// The handling of `req` by `serve`: polled in place, or run on a task of its own when the
/// request carries [`Detached`].
pub fn serve<F>(mut req: Request, serve: impl FnOnce(Request) -> F) -> BoxFuture<'static, Response>
where
    F: Future<Output = Response> + Send + 'static,
{
    match req.extensions_mut().remove::<Detached>() {
        None => Box::pin(serve(req)),
        Some(d) => d.run(serve(req)),
    }
}

/// [`serve`] for a handling that is boxed already (boxed once, not twice, when polled in
/// place).
pub fn serve_boxed(
    mut req: Request,
    serve: impl FnOnce(Request) -> BoxFuture<'static, Response>,
) -> BoxFuture<'static, Response> {
    match req.extensions_mut().remove::<Detached>() {
        None => serve(req),
        Some(d) => d.run(serve(req)),
    }
}

impl Detached {
    fn run<F>(self, handling: F) -> BoxFuture<'static, Response>
    where
        F: Future<Output = Response> + Send + 'static,
    {
        let task = tasks::spawn(Kind::Request, async move {
            let reply = handling.await;
            // The place in flight is given back once the reply is made; a reply that goes
            // out holds its own (`held::Holding`) until its last byte.
            drop(self);
            reply
        });
        Box::pin(async move {
            match task.await {
                Ok(reply) => reply,
                // A panic is the catch-panic layer's to answer, as if it had happened here.
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Only when the runtime shuts down under it.
                Err(_) => {
                    let e = GatewayError::new(ErrorKind::Unavailable, "the gateway is stopping");
                    super::reply::openai_error(&e, &RequestCtx::new())
                }
            }
        })
    }
}
