//! Accepting connections and shutting down gracefully.
//!
//! `run` takes an already-bound listener and a shutdown future (mini-redis), so tests can
//! bind port 0 and stop the server at will. The accept loop holds at most `[server]
//! max_connections` open (at the cap it stops accepting: new connections wait in the kernel's
//! backlog). Each connection is served with TCP_NODELAY (STYLE §4.18) by `serve_conn`: the
//! protocol is detected under the head deadline, then hyper's HTTP/1 builder (header-read
//! timeout, header limits: more than 100 fields or a head over 60 KiB gets 431) or HTTP/2
//! builder (keep-alive pings, the same head limits) serves it, and a connection idle too
//! long is shut down; `edge` has the mechanisms and the bounds. On shutdown the listener
//! closes at once (new connections are refused and `/readyz` answers 503 to the ones still
//! open), every connection is asked to close once its request ends (HTTP/2: GOAWAY),
//! in-flight requests get up to `drain_timeout` to finish, the background tasks they left
//! (`crate::tasks`: mirror shadows, stored-response writes, settlements, requests run past
//! their client) end within the same deadline, the usage and trace writers flush, then the
//! process exits.
//!
//! With `[server] busy_poll` set, each request's start and the end of its response body are
//! marks of activity for the busy-polling spinner (`busy_poll`).

pub mod edge;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app;
use crate::busy_poll::Activity;
use crate::config::{ConnectionLimits, MAX_HEAD_BYTES, MAX_HEADERS};
use crate::held::{HoldUntilSent, Holding};
use crate::state::AppState;
use edge::{ConnActivity, InFlight, Proto, Rewind};

/// Period of the timer tick that keeps tokio's driver from being woken on every request
/// (see `run`).
const TIMER_TICK: Duration = Duration::from_secs(1);
/// The most an HTTP/1 connection's read and write buffers hold (hyper's `max_buf_size`): at
/// least the largest head allowed.
const MAX_BUF_BYTES: usize = 64 * 1024;
/// `h2` refuses a header list that *reaches* its setting, so the setting is one more than
/// the largest list allowed.
const H2_MAX_HEADER_LIST: u32 = 60 * 1024 + 1;
const _: () = assert!(H2_MAX_HEADER_LIST as usize == MAX_HEAD_BYTES + 1);

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
    let limits = state.live().config.server.connections;
    let http = Arc::new(Http::new(&limits));
    let max_connections = limits
        .max_connections
        .unwrap_or_else(|| edge::default_max_connections(edge::open_file_limit()));
    let open_files = edge::open_file_limit();
    tracing::info!(
        max_connections,
        open_file_limit = open_files,
        header_read_timeout = ?limits.header_read_timeout,
        idle_timeout = ?limits.idle_timeout,
        "client connections"
    );
    if let Some(n) = open_files
        && u64::try_from(max_connections).unwrap_or(u64::MAX) > n.saturating_sub(edge::RESERVED_FDS)
    {
        tracing::warn!(
            max_connections,
            open_file_limit = n,
            "max_connections is above what the open-file limit allows: accepts will fail and back off when descriptors run out"
        );
    }
    let permits = Arc::new(Semaphore::new(max_connections));
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
                // Hourly too: dashboard sessions past their end.
                if n % 360 == 3
                    && let Err(e) = state
                        .governance()
                        .sessions()
                        .purge(state.store(), crate::governance::now_unix())
                        .await
                {
                    tracing::warn!(error = %e, "could not delete expired dashboard sessions");
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
    // Connection tasks, this server's own: shutdown waits on them; `stop` asks them to close.
    let conns = TaskTracker::new();
    let stop = CancellationToken::new();
    let accept_failures = AcceptFailures::default();
    tokio::pin!(shutdown);
    loop {
        // At the cap, wait for a connection to close before accepting the next one.
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) if edge::is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    accept_failures.note(&e);
                    tokio::time::sleep(edge::ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let conn = Conn {
            app: app.clone(),
            busy: activity.clone(),
            http: Arc::clone(&http),
            limits,
            stop: stop.clone(),
        };
        conns.spawn(async move {
            crate::metrics::client_connection_opened();
            let end = conn.serve(stream).await;
            crate::metrics::client_connection_closed(end.as_str());
            drop(permit);
        });
    }
    state.set_draining();
    drop(listener);
    stop.cancel();
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
    if tokio::time::timeout_at(deadline, conns.wait())
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

/// hyper's builders for each protocol, configured once.
struct Http {
    h1: http1::Builder,
    h2: http2::Builder<TokioExecutor>,
}

impl Http {
    fn new(limits: &ConnectionLimits) -> Self {
        let mut h1 = http1::Builder::new();
        h1.timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_headers(MAX_HEADERS)
            .max_header_size(MAX_HEAD_BYTES)
            .max_buf_size(MAX_BUF_BYTES);
        let mut h2 = http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new())
            .keep_alive_interval(limits.http2_keepalive_interval)
            .keep_alive_timeout(limits.http2_keepalive_timeout)
            .max_header_list_size(H2_MAX_HEADER_LIST);
        Self { h1, h2 }
    }
}

/// Why a client connection ended (the `reason` label of
/// `gatehouse_client_connections_closed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnEnd {
    /// It ended itself: the client closed it, or hyper did (an error, a timeout of its own).
    Done,
    /// No protocol or first request head within `header_read_timeout`.
    HeadTimeout,
    /// Nothing in progress for `idle_timeout`, then shut down.
    Idle,
    /// Closed at shutdown.
    Shutdown,
}

impl ConnEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnEnd::Done => "done",
            ConnEnd::HeadTimeout => "header_timeout",
            ConnEnd::Idle => "idle",
            ConnEnd::Shutdown => "shutdown",
        }
    }
}

/// What serving one connection needs.
struct Conn {
    app: app::App,
    busy: Option<Arc<Activity>>,
    http: Arc<Http>,
    limits: ConnectionLimits,
    stop: CancellationToken,
}

impl Conn {
    /// Detect the protocol under the head deadline, then serve it until it ends.
    async fn serve(self, mut stream: TcpStream) -> ConnEnd {
        let head_deadline = Instant::now() + self.limits.header_read_timeout;
        let mut first = BytesMut::new();
        let proto = tokio::select! {
            found = tokio::time::timeout_at(head_deadline, edge::detect(&mut stream, &mut first)) => match found {
                Ok(Ok(Some(p))) => p,
                Ok(Ok(None) | Err(_)) => return ConnEnd::Done,
                Err(_) => return ConnEnd::HeadTimeout,
            },
            () = self.stop.cancelled() => return ConnEnd::Shutdown,
        };
        let conn = ConnActivity::new();
        let service = Marked {
            inner: TowerToHyperService::new(self.app.clone()),
            busy: self.busy.clone(),
            conn: Arc::clone(&conn),
        };
        let io = TokioIo::new(Rewind::new(first.freeze(), stream));
        match proto {
            Proto::Http1 => {
                let c = self.http.h1.serve_connection(io, service).with_upgrades();
                // The first head is due by the same deadline as the protocol; hyper's own
                // timer (started after detection) bounds the later ones.
                self.drive(c, &conn, Some(head_deadline)).await
            }
            Proto::Http2 => {
                let c = self.http.h2.serve_connection(io, service);
                self.drive(c, &conn, None).await
            }
        }
    }

    /// Poll the connection until it ends; drop it when its first request head is late, shut
    /// it down gracefully when it has been idle for `idle_timeout` or the server stops, and
    /// drop it when it is idle `header_read_timeout` after it was asked to close (a peer
    /// that never acknowledges the GOAWAY, or never reads).
    async fn drive<C>(
        &self,
        conn: C,
        activity: &ConnActivity,
        mut first_head: Option<Instant>,
    ) -> ConnEnd
    where
        C: Graceful,
    {
        tokio::pin!(conn);
        let grace = self.limits.header_read_timeout;
        let idle = self.limits.idle_timeout;
        // Since when the connection has been asked to close, and why.
        let mut closing: Option<(Instant, ConnEnd)> = None;
        let sleep = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(sleep);
        loop {
            let now = Instant::now();
            if activity.started() > 0 {
                first_head = None;
            }
            let idle_for = activity
                .idle_since()
                .map(|since| Duration::from_millis(crate::mono_ms().saturating_sub(since)));
            // Act on what is due, else find when to look again.
            let next = match closing {
                None => {
                    if first_head.is_some_and(|t| now >= t) {
                        return ConnEnd::HeadTimeout;
                    }
                    let next = match idle_for {
                        Some(d) if d >= idle => {
                            conn.as_mut().shut_down();
                            closing = Some((now, ConnEnd::Idle));
                            continue;
                        }
                        Some(d) => now + (idle - d),
                        None => now + idle,
                    };
                    first_head.map_or(next, |t| next.min(t))
                }
                Some((at, why)) if now >= at + grace => {
                    if idle_for.is_some() {
                        return why;
                    }
                    now + grace
                }
                Some((at, _)) => at + grace,
            };
            sleep.as_mut().reset(next);
            // The connection first: it is what wakes this task on every request.
            tokio::select! {
                biased;
                _ = conn.as_mut() => return closing.map_or(ConnEnd::Done, |(_, why)| why),
                () = self.stop.cancelled(), if closing.is_none() => {
                    conn.as_mut().shut_down();
                    closing = Some((Instant::now(), ConnEnd::Shutdown));
                }
                () = &mut sleep => {}
            }
        }
    }
}

/// The service hyper calls, and the connections it serves.
type Svc = Marked<TowerToHyperService<app::App>>;

/// A hyper connection that can be asked to close once its requests end.
trait Graceful: Future<Output = hyper::Result<()>> {
    fn shut_down(self: Pin<&mut Self>);
}

impl Graceful for http1::UpgradeableConnection<TokioIo<Rewind>, Svc> {
    fn shut_down(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl Graceful for http2::Connection<TokioIo<Rewind>, Svc, TokioExecutor> {
    fn shut_down(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Failing accepts, logged at most once per `edge::ACCEPT_WARN_EVERY`.
#[derive(Default)]
struct AcceptFailures(crate::LogThrottle);

impl AcceptFailures {
    fn note(&self, e: &std::io::Error) {
        if let Some(skipped) = self.0.due(edge::ACCEPT_WARN_EVERY) {
            tracing::warn!(error = %e, failures = skipped + 1, "accept failed; backing off");
        }
    }
}

/// The app as hyper calls it. Each request is counted on its connection from its start to
/// the drop of its response body (`ConnActivity`); with busy polling on, its start and the
/// end of its response body (complete or dropped) are marks of activity.
#[derive(Clone)]
struct Marked<S> {
    inner: S,
    busy: Option<Arc<Activity>>,
    conn: Arc<ConnActivity>,
}

impl<S, R, B> hyper::service::Service<R> for Marked<S>
where
    S: hyper::service::Service<R, Response = http::Response<B>>,
{
    type Response = http::Response<Holding<B, RequestEnd>>;
    type Error = S::Error;
    type Future = HoldUntilSent<S::Future, RequestEnd>;

    fn call(&self, req: R) -> Self::Future {
        if let Some(a) = &self.busy {
            a.mark();
        }
        HoldUntilSent::new(
            self.inner.call(req),
            Some(RequestEnd {
                _in_flight: self.conn.begin(),
                busy: self.busy.clone(),
            }),
        )
    }
}

/// A request's end, held by its response body (`held::Holding`): when dropped, it is no
/// longer in progress on its connection, and (busy polling) a mark of activity.
struct RequestEnd {
    _in_flight: InFlight,
    busy: Option<Arc<Activity>>,
}

impl Drop for RequestEnd {
    fn drop(&mut self) {
        if let Some(a) = &self.busy {
            a.mark();
        }
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
