//! Accepting connections and shutting down gracefully.
//!
//! `run` takes an already-bound listener and a shutdown future (mini-redis), so tests can
//! bind port 0 and stop the server at will. Each connection is served by hyper with
//! TCP_NODELAY (STYLE §4.18), a header-read timeout (slow-header clients are closed), and
//! header limits (more than 100 fields or 64 KiB gets 431). On shutdown the listener closes
//! at once (new connections are refused and `/readyz` answers 503 to the ones still open),
//! in-flight requests get up to `drain_timeout` to finish, the background tasks they left
//! (`crate::tasks`: mirror shadows, stored-response writes, settlements) end within the same
//! deadline, the usage and trace writers flush, then the process exits.
//!
//! With `[server] busy_poll` set, each request's start and the end of its response body are
//! marks of activity for the busy-polling spinner (`busy_poll`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

use crate::app;
use crate::busy_poll::Activity;
use crate::state::AppState;

/// A client must send its whole request head within this time.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Period of the timer tick that keeps tokio's driver from being woken on every request
/// (see `run`).
const TIMER_TICK: Duration = Duration::from_secs(1);
/// Request-head limits: Envoy's defaults (RELIABILITY 20).
pub const MAX_HEADERS: usize = 100;
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

pub async fn run(
    listener: TcpListener,
    state: AppState,
    drain_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    if let Ok(addr) = listener.local_addr() {
        state.set_listener(addr);
    }
    crate::metrics::install();
    let reloaders = crate::state::reload::spawn_triggers(&state);
    let app = app::router(state.clone());
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_HEAD_BYTES);
    builder.http2().timer(TokioTimer::new());
    // Tokio wakes its time driver (an eventfd write and a spurious epoll_wait) whenever a new
    // timer is due before every pending one. hyper arms a header-read timer for each request,
    // and with nothing due sooner that happened on every request (measured: one write(2) and
    // one extra epoll_wait per request). A timer that is always due within a second keeps the
    // driver's next wake-up earlier than any header deadline; it costs one wake-up a second.
    #[expect(
        clippy::disallowed_methods,
        reason = "a timer for the server's life, aborted at shutdown; it does no work"
    )]
    let tick = tokio::spawn(async {
        loop {
            tokio::time::sleep(TIMER_TICK).await;
        }
    });
    // Keys created or revoked by another process (the CLI, another instance) are picked up.
    #[expect(
        clippy::disallowed_methods,
        reason = "a loop for the server's life, aborted at shutdown: a cut refresh or clean-up is done again by the next start"
    )]
    let refresh = tokio::spawn({
        let state = state.clone();
        async move {
            let mut n: u64 = 0;
            loop {
                tokio::time::sleep(crate::governance::keys::REFRESH_INTERVAL).await;
                let live = state.live();
                state.governance().reload(&live.config, state.store()).await;
                // Hourly: drop budget counters of periods long gone, and records past the
                // retention (a minute after start, then every hour).
                n += 1;
                if n.is_multiple_of(360)
                    && let Err(e) = state.store().budget_gc(crate::governance::now_unix()).await
                {
                    tracing::warn!(error = %e, "could not clean up old budget counters");
                }
                if n % 360 == 6
                    && let Some(days) = live.config.log.retention_days
                {
                    let before = crate::governance::now_unix()
                        - i64::try_from(days * 86_400).unwrap_or(i64::MAX);
                    match state.store().purge_before(before).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(
                            records = n,
                            days,
                            "request records past their retention deleted"
                        ),
                        Err(e) => {
                            tracing::warn!(error = %e, "could not delete records past their retention")
                        }
                    }
                }
            }
        }
    });
    // Busy polling, when configured: marks of request activity keep the thread polling.
    let busy_poll = state.live().config.server.busy_poll;
    let busy = (!busy_poll.is_zero())
        .then(|| Activity::start(busy_poll))
        .flatten();
    let activity = busy.as_ref().map(|(a, _)| Arc::clone(a));
    let graceful = GracefulShutdown::new();
    // Connection tasks, this server's own: shutdown waits on them through `graceful`.
    let conns = TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = Marked {
            inner: TowerToHyperService::new(app.clone()),
            activity: activity.clone(),
        };
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        let conn = graceful.watch(conn.into_owned());
        conns.spawn(async move {
            let _ = conn.await;
        });
    }
    state.set_draining();
    drop(listener);
    tick.abort();
    refresh.abort();
    if let Some((_, spinner)) = busy {
        spinner.abort();
    }
    for r in reloaders {
        r.abort();
    }
    tracing::info!(timeout = ?drain_timeout, "shutting down: draining in-flight requests");
    let deadline = tokio::time::Instant::now() + drain_timeout;
    conns.close();
    if tokio::time::timeout_at(deadline, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain timeout reached; closing the remaining connections");
    }
    // What the requests left running (mirror shadows, stored-response writes, settlements)
    // ends before the same deadline, and records what it did.
    crate::tasks::drain(deadline).await;
    // Every finished request's settlement and usage record reach the store before exit.
    if !state
        .governance()
        .enforcer()
        .flush(Duration::from_secs(10))
        .await
    {
        tracing::error!("usage records still unwritten at exit");
    }
}

/// The app as hyper calls it. With busy polling on, a request's start and the end of its
/// response body (complete or dropped) are marks of activity.
#[derive(Clone)]
struct Marked<S> {
    inner: S,
    activity: Option<Arc<Activity>>,
}

impl<S, R, B> hyper::service::Service<R> for Marked<S>
where
    S: hyper::service::Service<R, Response = http::Response<B>>,
{
    type Response = http::Response<MarkedBody<B>>;
    type Error = S::Error;
    type Future = MarkedFuture<S::Future>;

    fn call(&self, req: R) -> Self::Future {
        if let Some(a) = &self.activity {
            a.mark();
        }
        MarkedFuture {
            inner: self.inner.call(req),
            activity: self.activity.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    struct MarkedFuture<F> {
        #[pin]
        inner: F,
        activity: Option<Arc<Activity>>,
    }
}

impl<F, B, E> Future for MarkedFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
{
    type Output = Result<http::Response<MarkedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let resp = std::task::ready!(this.inner.poll(cx))?;
        let done = this.activity.take().map(MarkOnDrop);
        Poll::Ready(Ok(resp.map(|inner| MarkedBody { inner, _done: done })))
    }
}

pin_project_lite::pin_project! {
    /// A response body that marks activity when hyper drops it: after its last frame, or
    /// when the client left.
    struct MarkedBody<B> {
        #[pin]
        inner: B,
        _done: Option<MarkOnDrop>,
    }
}

struct MarkOnDrop(Arc<Activity>);

impl Drop for MarkOnDrop {
    fn drop(&mut self) {
        self.0.mark();
    }
}

impl<B: http_body::Body> http_body::Body for MarkedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
