//! One backend's connections: a keep-alive pool bound to a single origin.
//!
//! A backend is a provider at its base URL, so every request it sends goes to one origin.
//! The pool knows that origin from the start: it keeps the `Host` value and the path prefix
//! ready, holds idle HTTP/1.1 connections in a plain list (the most recently used first, so
//! the warm ones serve), and shares one HTTP/2 connection when TLS negotiates `h2`. A
//! general client keyed by scheme and authority paid for that generality on every request:
//! the URL parsed and re-formed, the key hashed three times, a task spawned to wait for the
//! connection to become free again (a tenth of a proxied request's instructions).
//!
//! HTTP/1.1 is spoken by the request's own future ([`h1`]), not by hyper's client: the
//! request writes to and reads from the connection it checked out, with no connection task
//! between them. HTTP/2 goes through hyper.
//!
//! An HTTP/1.1 connection returns to the pool when its response body has been read to the
//! end ([`PooledBody`]); a reader that stopped at the last event of a stream hands the body
//! to [`PooledBody::drain`], which reads the framing that follows on a task of its own. A
//! body dropped in the middle closes its connection: that is how a client's disconnect
//! reaches the provider.

mod h1;

/// The HTTP/1.1 reader run over bytes in memory, for the fuzz target `crate::fuzzing::http1_response`.
pub(crate) use h1::{Replayed, replay as replay_h1};

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, Uri, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::client::legacy::connect::Connection;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tower::ServiceExt as _;

use super::exec::Connector;
type H2 = http2::SendRequest<Full<Bytes>>;

/// Idle connections kept at most, and for how long.
pub const MAX_IDLE: usize = 256;
pub const IDLE_FOR: Duration = Duration::from_secs(90);

/// How long, and how many bytes, a finished stream's remaining framing may take before its
/// connection is closed rather than returned ([`PooledBody::drain`]).
const DRAIN_FOR: Duration = Duration::from_secs(1);
const DRAIN_MAX: usize = 64 * 1024;

/// Why a request got no response.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be made (`timed_out` when the connect timeout ran out).
    Connect { timed_out: bool },
    /// The connection failed before a response arrived.
    Transport(io::Error),
    /// The backend's base URL has no usable origin.
    BadUrl,
    /// The address policy refused the origin's address ([`crate::egress`]); nothing was
    /// connected to.
    Refused(crate::egress::Refused),
}

/// Where a backend's requests go, worked out once.
struct Origin {
    scheme: Scheme,
    authority: Authority,
    /// `Host` for HTTP/1.1: the authority without a default port.
    host: HeaderValue,
    /// The base URL's path, without a trailing slash.
    base_path: String,
}

impl Origin {
    fn parse(base_url: &str) -> Option<Self> {
        let uri: Uri = base_url.parse().ok()?;
        let scheme = uri.scheme()?.clone();
        let authority = uri.authority()?.clone();
        let default_port = if scheme == Scheme::HTTPS { 443 } else { 80 };
        let host = match authority.port_u16() {
            Some(p) if p != default_port => authority.as_str().to_owned(),
            _ => authority.host().to_owned(),
        };
        Some(Self {
            scheme,
            authority,
            host: HeaderValue::from_str(&host).ok()?,
            base_path: uri.path().trim_end_matches('/').to_owned(),
        })
    }
}

struct Idle {
    conn: h1::Conn,
    since_ms: u64,
}

impl Idle {
    /// Kept longer than [`IDLE_FOR`] by `now` (ms on [`crate::mono_ms`]'s clock).
    fn expired(&self, now: u64) -> bool {
        now.saturating_sub(self.since_ms) >= crate::millis(IDLE_FOR)
    }
}

struct Shared {
    origin: Option<Origin>,
    connector: Connector,
    idle: Mutex<Vec<Idle>>,
    h2: Mutex<Option<H2>>,
}

/// The connection pool of one backend.
#[derive(Clone)]
pub struct Pool(Arc<Shared>);

/// A connection checked out for one request.
enum Conn {
    H1 { conn: h1::Conn, reused: bool },
    H2(H2),
}

impl Pool {
    pub fn new(base_url: &str, connector: Connector) -> Self {
        Self(Arc::new(Shared {
            origin: Origin::parse(base_url),
            connector,
            idle: Mutex::new(Vec::new()),
            h2: Mutex::new(None),
        }))
    }

    /// The URL of `path` (path and query, appended to the base URL's path): absolute, as a
    /// request signature covers the host; [`Self::send`] writes it in origin form on
    /// HTTP/1.1.
    pub fn target(&self, path: &str) -> Option<Uri> {
        let origin = self.0.origin.as_ref()?;
        let mut full = String::with_capacity(origin.base_path.len() + path.len());
        full.push_str(&origin.base_path);
        full.push_str(path);
        if full.is_empty() {
            full.push('/');
        }
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(origin.scheme.clone());
        parts.authority = Some(origin.authority.clone());
        parts.path_and_query = Some(PathAndQuery::from_maybe_shared(Bytes::from(full)).ok()?);
        Uri::from_parts(parts).ok()
    }

    /// Send `req`, whose URI is a [`Self::target`] (on a retry, already in origin form),
    /// and wait for the response's headers.
    pub async fn send(
        &self,
        mut req: Request<Full<Bytes>>,
    ) -> Result<Response<PooledBody>, SendError> {
        let origin = self.0.origin.as_ref().ok_or(SendError::BadUrl)?;
        loop {
            match self.checkout().await? {
                Conn::H2(mut tx) => {
                    let resp = tx
                        .send_request(req)
                        .await
                        .map_err(|e| SendError::Transport(io::Error::other(e)))?;
                    return Ok(resp.map(|b| PooledBody(Inner::H2(b))));
                }
                Conn::H1 { conn, reused } => {
                    if req.uri().scheme().is_some() {
                        let path = req.uri().path_and_query().cloned();
                        *req.uri_mut() = path.map_or_else(|| Uri::from_static("/"), Uri::from);
                    }
                    req.headers_mut().insert(header::HOST, origin.host.clone());
                    match conn.send(&mut req, self.0.clone()).await {
                        Ok(resp) => return Ok(resp.map(|b| PooledBody(Inner::H1(b)))),
                        // A kept-alive connection the server closed as the request went
                        // out, before any of it was written: try again on another.
                        Err(f) if reused && f.unsent => {}
                        Err(f) => return Err(SendError::Transport(f.error)),
                    }
                }
            }
        }
    }

    /// A connection ready for a request: the shared HTTP/2 one, the warmest idle HTTP/1.1
    /// one, or a new one.
    async fn checkout(&self) -> Result<Conn, SendError> {
        if let Some(tx) = lock(&self.0.h2).as_ref().filter(|tx| !tx.is_closed()) {
            return Ok(Conn::H2(tx.clone()));
        }
        if let Some(conn) = self.take_idle() {
            return Ok(Conn::H1 { conn, reused: true });
        }
        // Boxed: a connection's setup (TLS, the HTTP/2 handshake) is kilobytes of future
        // state that every request's future would otherwise carry, and move, for the few
        // requests that open a connection.
        Box::pin(self.connect()).await
    }

    /// The warmest idle connection the server has not closed.
    fn take_idle(&self) -> Option<h1::Conn> {
        let now = crate::mono_ms();
        let mut idle = lock(&self.0.idle);
        while let Some(mut c) = idle.pop() {
            if c.expired(now) {
                // The rest are older still.
                idle.clear();
                return None;
            }
            if c.conn.is_open() {
                return Some(c.conn);
            }
        }
        None
    }

    async fn connect(&self) -> Result<Conn, SendError> {
        let origin = self.0.origin.as_ref().ok_or(SendError::BadUrl)?;
        let uri = Uri::builder()
            .scheme(origin.scheme.clone())
            .authority(origin.authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|_| SendError::BadUrl)?;
        let io =
            self.0.connector.clone().oneshot(uri).await.map_err(
                |e| match crate::egress::refused_in(e.as_ref()) {
                    Some(r) => SendError::Refused(r.clone()),
                    None => SendError::Connect {
                        timed_out: timed_out(e.as_ref()),
                    },
                },
            )?;
        if io.connected().is_negotiated_h2() {
            let (tx, conn) = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .handshake(io)
                .await
                .map_err(|e| SendError::Transport(io::Error::other(e)))?;
            drive(conn, "HTTP/2");
            let mut shared = lock(&self.0.h2);
            if shared.as_ref().is_none_or(H2::is_closed) {
                *shared = Some(tx.clone());
            }
            return Ok(Conn::H2(tx));
        }
        Ok(Conn::H1 {
            conn: h1::Conn::new(TokioIo::new(io)),
            reused: false,
        })
    }

    /// Idle HTTP/1.1 connections held now (for tests).
    pub fn idle_count(&self) -> usize {
        lock(&self.0.idle).len()
    }
}

impl Shared {
    /// Keep an HTTP/1.1 connection whose last response was read to its end.
    fn put_h1(&self, conn: h1::Conn) {
        let now = crate::mono_ms();
        let mut idle = lock(&self.idle);
        // Oldest first: drop those kept too long, and the oldest when full.
        let stale = idle.iter().take_while(|c| c.expired(now)).count();
        let over = (idle.len() - stale + 1).saturating_sub(MAX_IDLE);
        idle.drain(..stale + over);
        idle.push(Idle {
            conn,
            since_ms: now,
        });
    }
}

/// Run a connection's I/O on its own task until it closes.
fn drive(
    conn: impl std::future::Future<Output = hyper::Result<()>> + Send + 'static,
    protocol: &'static str,
) {
    #[expect(
        clippy::disallowed_methods,
        reason = "a connection's I/O: it ends with the connection and holds no request's work"
    )]
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, protocol, "provider connection ended");
        }
    });
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether a connect error was the connect timeout running out.
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        if err.to_string().contains("timed out") {
            return true;
        }
        cur = err.source();
    }
    false
}

/// A response body. On HTTP/1.1 its end returns the connection to the pool.
pub struct PooledBody(Inner);

enum Inner {
    H1(h1::Body),
    H2(Incoming),
}

impl PooledBody {
    /// The reader has all it wants (a stream's terminating event), but the body's framing
    /// may still be on its way: a provider sends the chunked terminator after its last event,
    /// often in a packet of its own. Read the rest on a task of its own, so that the
    /// connection returns to the pool when it ends. One that sends more than [`DRAIN_MAX`]
    /// bytes or does not end within [`DRAIN_FOR`] is closed instead. (Dropping the body
    /// unread would close the connection, and the next request would pay for a new one,
    /// TLS included.) On HTTP/2 the connection is shared and stays either way, but a stream
    /// dropped before its end is reset, which tells the provider its client cancelled.
    pub fn drain(mut self) {
        if self.is_end_stream() {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            #[expect(
                clippy::disallowed_methods,
                reason = "reads a finished body's framing to keep its connection; cutting it only closes the connection"
            )]
            rt.spawn(async move {
                // The end of the body releases the connection; anything else drops it
                // unfinished, which closes it.
                let _ = tokio::time::timeout(DRAIN_FOR, self.read_to_end(DRAIN_MAX)).await;
            });
        }
    }

    /// Read and discard frames until the end of the body, an error, or more than `max`
    /// bytes.
    async fn read_to_end(&mut self, mut max: usize) {
        while let Some(Ok(frame)) = self.frame().await {
            let n = frame.data_ref().map_or(0, Bytes::len);
            let Some(left) = max.checked_sub(n) else {
                return;
            };
            max = left;
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match &mut self.0 {
            Inner::H1(b) => Pin::new(b).poll_frame(cx),
            Inner::H2(b) => Pin::new(b).poll_frame(cx).map_err(io::Error::other),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::H1(b) => b.is_end_stream(),
            Inner::H2(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::H1(b) => b.size_hint(),
            Inner::H2(b) => b.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// The test's own servers and clients: not the gateway's background work.
    #[expect(
        clippy::disallowed_methods,
        reason = "the test's own tasks, not the gateway's"
    )]
    fn spawn<F>(task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        tokio::spawn(task)
    }

    /// A raw HTTP/1.1 server on port 0: `answer` gets each request's head and writes the
    /// reply; it returns whether to keep the connection open. Counts accepted connections
    /// and sends each request head it read to the returned list.
    async fn server(
        answer: impl Fn(&str) -> (Vec<u8>, bool) + Send + Sync + 'static,
    ) -> (String, Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(answer);
        let (acc, hs) = (accepted.clone(), heads.clone());
        spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                acc.fetch_add(1, Ordering::SeqCst);
                let (answer, hs) = (answer.clone(), hs.clone());
                spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let mut chunk = [0u8; 4096];
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        // Every test request carries a 2-byte body.
                        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            continue;
                        };
                        if buf.len() < end + 4 + 2 {
                            continue;
                        }
                        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                        buf.drain(..end + 6);
                        hs.lock().unwrap().push(head.clone());
                        let (reply, keep) = answer(&head);
                        if sock.write_all(&reply).await.is_err() {
                            return;
                        }
                        if !keep {
                            // Closed a moment after the reply, as an idle timeout would.
                            tokio::time::sleep(Duration::from_millis(2)).await;
                            return;
                        }
                    }
                });
            }
        });
        (format!("http://{addr}/v1/"), accepted, heads)
    }

    fn pool(base: &str) -> Pool {
        Pool::new(
            base,
            super::super::exec::connector(Duration::from_secs(2), &Arc::default()),
        )
    }

    async fn post(pool: &Pool, path: &str) -> Result<(u16, Bytes), SendError> {
        let req = Request::post(pool.target(path).unwrap())
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        let resp = pool.send(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Ok((status, body))
    }

    /// Send a request and read the first frame of its reply; the body, left unfinished.
    async fn first_frame(pool: &Pool) -> (Bytes, PooledBody) {
        let req = Request::post(pool.target("/x").unwrap())
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        let mut body = pool.send(req).await.ok().unwrap().into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        (first, body)
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

    #[tokio::test]
    async fn wire_forms_are_read_and_only_cleanly_ended_connections_kept() {
        let (base, accepted, _) = server(|head| {
            let path = head.split(' ').nth(1).unwrap_or_default();
            let reply: &[u8] = match path {
                // An interim response before the real one.
                "/v1/continue" => b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
                "/v1/chunked" => b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1;x=y\r\no\r\n1\r\nk\r\n0\r\nx-t: 1\r\n\r\n",
                "/v1/close" => b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok",
                // Bytes past the declared length: the connection is out of step.
                "/v1/extra" => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokXX",
                // Neither length nor chunks: the body ends with the connection.
                "/v1/eof" => b"HTTP/1.0 200 OK\r\n\r\nok",
                _ => b"HTTP/1.1 204 No Content\r\n\r\n",
            };
            (reply.to_vec(), !matches!(path, "/v1/close" | "/v1/eof"))
        })
        .await;
        let p = pool(&base);
        // (path, status, body, connections accepted after it)
        let steps: [(&str, u16, &[u8], usize); 8] = [
            ("/continue", 200, b"ok", 1),
            ("/chunked", 200, b"ok", 1),
            ("/none", 204, b"", 1),
            ("/close", 200, b"ok", 1),
            ("/continue", 200, b"ok", 2),
            ("/extra", 200, b"ok", 2),
            ("/eof", 200, b"ok", 3),
            ("/continue", 200, b"ok", 4),
        ];
        for (path, status, body, conns) in steps {
            let (s, b) = post(&p, path).await.unwrap();
            assert_eq!((s, &b[..]), (status, body), "{path}");
            // Let a closed connection's end reach the client side.
            tokio::time::sleep(Duration::from_millis(5)).await;
            assert_eq!(accepted.load(Ordering::SeqCst), conns, "after {path}");
        }
    }

    #[tokio::test]
    async fn an_answer_sent_before_the_body_was_read_reaches_the_caller() {
        // The server reads the head, refuses the upload at once and closes, leaving most of
        // a large body unread: the write fails, and the refusal is still the reply.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut chunk = [0u8; 4096];
            let _ = sock.read(&mut chunk).await;
            let _ = sock
                .write_all(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 7\r\nconnection: close\r\n\r\ntoo big")
                .await;
            // Closed with unread bytes: the kernel resets the connection.
            drop(sock);
        });
        let p = pool(&format!("http://{addr}"));
        let req = Request::post(p.target("/x").unwrap())
            .body(Full::new(Bytes::from(vec![b'x'; 32 * 1024 * 1024])))
            .unwrap();
        let resp = p.send(req).await.ok().unwrap();
        assert_eq!(resp.status(), 413);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"too big");
        assert_eq!(p.idle_count(), 0);
    }

    #[tokio::test]
    async fn a_reply_cut_into_single_bytes_is_read_whole() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let acc = accepted.clone();
        spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                acc.fetch_add(1, Ordering::SeqCst);
                sock.set_nodelay(true).unwrap();
                let mut chunk = [0u8; 4096];
                while sock.read(&mut chunk).await.unwrap_or(0) > 0 {
                    let reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
                    for b in reply {
                        sock.write_all(&[*b]).await.unwrap();
                        tokio::time::sleep(Duration::from_micros(300)).await;
                    }
                }
            }
        });
        let p = pool(&format!("http://{addr}"));
        for _ in 0..2 {
            let (status, body) = post(&p, "/x").await.unwrap();
            assert_eq!((status, &body[..]), (200, &b"hello world"[..]));
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_origin_is_worked_out_once() {
        let o = Origin::parse("https://api.openai.com/v1").unwrap();
        assert_eq!(
            (o.host.to_str().unwrap(), o.base_path.as_str()),
            ("api.openai.com", "/v1")
        );
        let o = Origin::parse("https://example.com:443/a/b/").unwrap();
        assert_eq!(
            (o.host.to_str().unwrap(), o.base_path.as_str()),
            ("example.com", "/a/b")
        );
        let o = Origin::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (o.host.to_str().unwrap(), o.base_path.as_str()),
            ("127.0.0.1:8080", "")
        );
        assert!(Origin::parse("not a url").is_none());
        let p = pool("http://127.0.0.1:8080/v1/");
        assert_eq!(
            p.target("/chat/completions?x=1").unwrap().to_string(),
            "http://127.0.0.1:8080/v1/chat/completions?x=1"
        );
    }

    #[tokio::test]
    async fn requests_in_turn_share_one_connection_in_origin_form() {
        let (base, accepted, heads) = server(|_| (OK.to_vec(), true)).await;
        let p = pool(&base);
        for _ in 0..5 {
            let (status, body) = post(&p, "/chat/completions").await.ok().unwrap();
            assert_eq!((status, &body[..]), (200, &b"ok"[..]));
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(p.idle_count(), 1);
        let port = base
            .trim_start_matches("http://127.0.0.1:")
            .trim_end_matches("/v1/");
        for head in heads.lock().unwrap().iter() {
            let lower = head.to_ascii_lowercase();
            assert!(
                lower.starts_with("post /v1/chat/completions http/1.1\r\n"),
                "{head}"
            );
            assert!(
                lower.contains(&format!("\r\nhost: 127.0.0.1:{port}")),
                "{head}"
            );
        }
    }

    #[tokio::test]
    async fn concurrent_requests_open_connections_that_all_return() {
        let (base, accepted, _) = server(|_| (OK.to_vec(), true)).await;
        let p = pool(&base);
        let all = (0..4).map(|_| {
            let p = p.clone();
            spawn(async move { post(&p, "/x").await.ok().unwrap() })
        });
        for h in all {
            assert_eq!(h.await.unwrap().0, 200);
        }
        let opened = accepted.load(Ordering::SeqCst);
        assert!((1..=4).contains(&opened), "{opened}");
        assert_eq!(p.idle_count(), opened);
    }

    #[tokio::test]
    async fn a_connection_the_server_closes_is_not_used_again() {
        // Keep-alive promised, then the socket closed while the connection sat idle: the
        // pool sees the close and opens a new connection rather than fail the request.
        let (base, accepted, _) = server(|_| (OK.to_vec(), false)).await;
        let p = pool(&base);
        for i in 0..10 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let (status, _) = post(&p, "/x")
                .await
                .map_err(|e| format!("{i}: {e:?}"))
                .unwrap();
            assert_eq!(status, 200);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 10);
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_closes_its_connection() {
        let closed = Arc::new(tokio::sync::Notify::new());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let c = closed.clone();
        spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut chunk = [0u8; 4096];
            let _ = sock.read(&mut chunk).await;
            let _ = sock
                .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n")
                .await;
            // The rest never comes; wait for the client to hang up.
            while sock.read(&mut chunk).await.unwrap_or(0) > 0 {}
            c.notify_one();
        });
        let p = pool(&format!("http://{addr}"));
        let (first, body) = first_frame(&p).await;
        assert_eq!(&first[..], b"ab");
        drop(body);
        tokio::time::timeout(Duration::from_secs(1), closed.notified())
            .await
            .expect("the upstream connection stayed open");
        assert_eq!(p.idle_count(), 0);
    }

    #[tokio::test]
    async fn connect_failures_are_told_apart_from_broken_connections() {
        // A port nothing listens on.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let p = pool(&format!("http://{addr}"));
        assert!(matches!(
            post(&p, "/x").await,
            Err(SendError::Connect { timed_out: false })
        ));
        // A server that reads the request and hangs up without a reply.
        let (base, _, _) = server(|_| (Vec::new(), false)).await;
        assert!(matches!(
            post(&pool(&base), "/x").await,
            Err(SendError::Transport(_))
        ));
    }

    type TestBody = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

    /// A TLS origin on port 0 that offers `h2` by ALPN and answers with `answer`; a pool for
    /// it (trusting its certificate), its port, and a count of accepted connections.
    /// A TLS origin offering `alpn` (in its order of preference).
    async fn tls_origin(
        alpn: &[&[u8]],
        answer: impl Fn(Request<Incoming>) -> Response<TestBody> + Send + Sync + 'static,
    ) -> (Pool, u16, Arc<AtomicUsize>) {
        use hyper_util::rt::TokioIo;
        let ring = || Arc::new(rustls::crypto::ring::default_provider());
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert_der = cert.cert.der().clone();
        let key = rustls::pki_types::PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der());
        let mut server_tls = rustls::ServerConfig::builder_with_provider(ring())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert_der.clone()], key.into())
            .unwrap();
        server_tls.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_tls));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let acc = accepted.clone();
        let answer = Arc::new(answer);
        spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                acc.fetch_add(1, Ordering::SeqCst);
                let (acceptor, answer) = (acceptor.clone(), answer.clone());
                spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let resp = answer(req);
                        async move { Ok::<_, std::convert::Infallible>(resp) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert_der).unwrap();
        let client_tls = rustls::ClientConfig::builder_with_provider(ring())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let policy = Arc::new(crate::egress::Policy::default());
        let resolver = crate::egress::Resolver::system(Arc::clone(&policy));
        let mut http =
            hyper_util::client::legacy::connect::HttpConnector::new_with_resolver(resolver);
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(client_tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(crate::egress::Guarded::new(http, policy));
        let pool = Pool::new(&format!("https://localhost:{port}/v1"), connector);
        (pool, port, accepted)
    }

    #[tokio::test]
    async fn http_1_1_over_tls_keeps_its_connection() {
        let (p, _, accepted) = tls_origin(&[b"http/1.1"], |req| {
            let seen = format!("{:?} {}", req.version(), req.uri());
            // Two frames: hyper sends them chunked.
            let frames = futures_util::stream::iter([
                Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(seen))),
                Ok(Frame::data(Bytes::from_static(b" done"))),
            ]);
            Response::new(http_body_util::StreamBody::new(frames).boxed())
        })
        .await;
        for _ in 0..3 {
            let (status, body) = post(&p, "/x").await.ok().unwrap();
            assert_eq!(status, 200);
            assert_eq!(String::from_utf8_lossy(&body), "HTTP/1.1 /v1/x done");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(p.idle_count(), 1);
    }

    #[tokio::test]
    async fn an_origin_that_negotiates_h2_gets_one_shared_connection() {
        let (p, port, accepted) = tls_origin(&[b"h2", b"http/1.1"], |req| {
            // What the server saw: protocol and target.
            let seen = format!("{:?} {}", req.version(), req.uri());
            Response::new(Full::new(Bytes::from(seen)).boxed())
        })
        .await;
        let (status, body) = post(&p, "/x").await.ok().unwrap();
        assert_eq!(status, 200);
        assert_eq!(
            String::from_utf8_lossy(&body),
            format!("HTTP/2.0 https://localhost:{port}/v1/x")
        );
        let all = (0..4).map(|_| {
            let p = p.clone();
            spawn(async move { post(&p, "/y").await.ok().unwrap() })
        });
        for h in all {
            let (status, body) = h.await.unwrap();
            assert_eq!(status, 200);
            assert!(body.starts_with(b"HTTP/2.0 "), "{body:?}");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(p.idle_count(), 0, "HTTP/2 is shared, not kept idle");
    }

    #[tokio::test]
    async fn an_h2_stream_drained_after_its_last_event_is_read_to_its_end() {
        // The stream's end (END_STREAM) comes 20 ms after its data: drained, the stream is
        // read to its end rather than reset, so the server's body runs to completion.
        let ended = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = ended.clone();
        let (p, _, _) = tls_origin(&[b"h2", b"http/1.1"], move |_| {
            let ended = seen.clone();
            let frames = futures_util::stream::unfold(true, move |first| {
                let ended = ended.clone();
                async move {
                    if first {
                        let hello = Frame::data(Bytes::from_static(b"hello"));
                        return Some((Ok::<_, std::convert::Infallible>(hello), false));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    ended.store(true, Ordering::SeqCst);
                    None
                }
            });
            Response::new(http_body_util::StreamBody::new(frames).boxed())
        })
        .await;
        let (first, body) = first_frame(&p).await;
        assert_eq!(&first[..], b"hello");
        body.drain();
        tokio::time::timeout(Duration::from_secs(1), async {
            while !ended.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("the stream was reset before its end");
    }

    /// A server whose every reply is a chunked stream: `first`, then, after `pause`, `rest`
    /// (the terminator, or more). Counts accepted connections; notifies `closed` when a
    /// client hangs up.
    async fn paused_stream_server(
        first: &'static [u8],
        pause: Duration,
        rest: Vec<u8>,
    ) -> (String, Arc<AtomicUsize>, Arc<tokio::sync::Notify>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(tokio::sync::Notify::new());
        let rest = Arc::new(rest);
        let (acc, cl) = (accepted.clone(), closed.clone());
        spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                acc.fetch_add(1, Ordering::SeqCst);
                let (rest, cl) = (rest.clone(), cl.clone());
                spawn(async move {
                    let mut chunk = [0u8; 4096];
                    // One read per request: each is a small head and a 2-byte body.
                    while sock.read(&mut chunk).await.unwrap_or(0) > 0 {
                        let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
                        let _ = sock.write_all(&[&head[..], first].concat()).await;
                        tokio::time::sleep(pause).await;
                        if sock.write_all(&rest).await.is_err() {
                            break;
                        }
                    }
                    cl.notify_one();
                });
            }
        });
        (format!("http://{addr}/v1/"), accepted, closed)
    }

    #[tokio::test]
    async fn a_stream_drained_after_its_last_event_returns_its_connection() {
        // The reader stops after the last chunk of data; the `0` chunk that ends the body
        // comes 20 ms later, as a provider's may. Drained, the connection goes back.
        let (base, accepted, _) = paused_stream_server(
            b"5\r\nhello\r\n",
            Duration::from_millis(20),
            b"0\r\n\r\n".to_vec(),
        )
        .await;
        let p = pool(&base);
        for _ in 0..3 {
            let (first, body) = first_frame(&p).await;
            assert_eq!(&first[..], b"hello");
            body.drain();
            tokio::time::timeout(Duration::from_secs(1), async {
                while p.idle_count() == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
            .await
            .expect("the connection did not come back");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_drained_stream_that_goes_on_is_closed() {
        // After the reader's last event the body keeps coming, past the drain's limit: the
        // connection is closed, not kept.
        let more = format!("{:x}\r\n{}\r\n", DRAIN_MAX + 1, "x".repeat(DRAIN_MAX + 1));
        let (base, accepted, closed) = paused_stream_server(
            b"5\r\nhello\r\n",
            Duration::from_millis(5),
            more.into_bytes(),
        )
        .await;
        let p = pool(&base);
        let (_, body) = first_frame(&p).await;
        body.drain();
        tokio::time::timeout(DRAIN_FOR / 2, closed.notified())
            .await
            .expect("the upstream connection stayed open");
        assert_eq!(p.idle_count(), 0);
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }
}
