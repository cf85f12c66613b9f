//! The connection edge: what a client connection may hold, and for how long (RELIABILITY 19
//! and 21; `[server]` `header_read_timeout`, `idle_timeout`, `http2_keepalive_*`,
//! `max_connections`).
//!
//! - **Protocol detection** is ours, under the head deadline: [`detect`] reads until the
//!   first bytes differ from the HTTP/2 preface (HTTP/1), or until the whole HTTP/2 client
//!   connection preface (the 24-byte magic and the SETTINGS frame after it) is in; the bytes
//!   read are replayed to hyper ([`Rewind`]). hyper-util's `auto` builder reads the same bytes
//!   with no timer, so a peer that sent nothing, or half the magic, was held forever.
//! - **Heads**: an HTTP/1 connection's first request head must be complete within
//!   `header_read_timeout` of the accept (the serving loop in `server` drops it otherwise);
//!   hyper's own timer bounds every later head and the wait for it on a kept-alive
//!   connection. An HTTP/2 connection's preface has the same bound.
//! - **Idle**: [`ConnActivity`] counts a connection's requests in progress (from the call of
//!   the service to the drop of the response body); a connection with none for
//!   `idle_timeout` is shut down gracefully (HTTP/2: GOAWAY), and one that does not close
//!   within `header_read_timeout` more while still idle is dropped.
//! - **HTTP/2**: PINGs every `http2_keepalive_interval`, the connection closed when one is not
//!   acknowledged within `http2_keepalive_timeout`; streams the client resets before the
//!   server accepts them are capped by the `h2` crate (20 pending, then GOAWAY
//!   `ENHANCE_YOUR_CALM`: the CVE-2023-44487 defence), as are streams the server resets for
//!   a client's protocol errors (1,024).
//! - **How many**: at most `max_connections` are open; at the cap the accept loop stops
//!   accepting, so new connections wait in the kernel's backlog while open ones are served.
//!   Its default comes from the open-file limit, which `main` raises from its soft value to
//!   the hard one first, as Go programs do ([`raise_open_file_limit`],
//!   [`default_max_connections`]).
//! - **Accept errors**: a failure that belongs to one connection (reset or aborted before
//!   accept) is skipped; any other (out of file descriptors, of memory) backs off
//!   [`ACCEPT_BACKOFF`] instead of spinning, and is logged at most once per
//!   [`ACCEPT_WARN_EVERY`].

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The HTTP/2 connection preface's magic (RFC 9113 §3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An HTTP/2 frame header's length.
const FRAME_HEADER: usize = 9;
/// The SETTINGS frame type.
const SETTINGS: u8 = 0x4;
/// The largest SETTINGS frame waited for whole: the default SETTINGS_MAX_FRAME_SIZE. A
/// larger one is handed to hyper as it is, which refuses it.
const MAX_SETTINGS_LEN: usize = 16_384;

/// File descriptors kept out of the default `max_connections`: the listener, the store,
/// the log, the runtime's own.
pub const RESERVED_FDS: u64 = 64;
/// The default `max_connections` is at most this, whatever the open-file limit.
pub const MAX_DEFAULT_CONNECTIONS: usize = 65_536;
/// ... and at least this.
pub const MIN_DEFAULT_CONNECTIONS: usize = 16;
/// The open-file limit assumed where it cannot be read.
const ASSUMED_OPEN_FILE_LIMIT: u64 = 1024;
/// How long the accept loop waits after an accept failure that is not one connection's.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// At most one warning about failing accepts this often.
pub const ACCEPT_WARN_EVERY: Duration = Duration::from_secs(10);

/// The protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Http1,
    Http2,
}

/// Read from `io` into `buf` until the protocol is known. `None`: the peer closed first. The
/// caller bounds it in time.
pub async fn detect<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut BytesMut,
) -> io::Result<Option<Proto>> {
    loop {
        if let Some(p) = classify(buf) {
            return Ok(Some(p));
        }
        buf.reserve(512);
        if io.read_buf(buf).await? == 0 {
            return Ok(None);
        }
    }
}

/// What the first bytes of a connection say: HTTP/1 as soon as they leave the HTTP/2 magic,
/// HTTP/2 once the magic and the whole SETTINGS frame after it are in (or what follows the
/// magic is not a SETTINGS frame hyper would wait for), else not yet known.
pub fn classify(buf: &[u8]) -> Option<Proto> {
    let n = buf.len().min(PREFACE.len());
    if buf[..n] != PREFACE[..n] {
        return Some(Proto::Http1);
    }
    let frame = buf.get(PREFACE.len()..PREFACE.len() + FRAME_HEADER)?;
    let len = usize::from(frame[0]) << 16 | usize::from(frame[1]) << 8 | usize::from(frame[2]);
    if frame[3] != SETTINGS || len > MAX_SETTINGS_LEN {
        return Some(Proto::Http2);
    }
    (buf.len() >= PREFACE.len() + FRAME_HEADER + len).then_some(Proto::Http2)
}

/// A connection whose first bytes, read by [`detect`], are read again first.
pub struct Rewind {
    pre: Bytes,
    io: TcpStream,
}

impl Rewind {
    pub fn new(pre: Bytes, io: TcpStream) -> Self {
        Self { pre, io }
    }
}

impl AsyncRead for Rewind {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pre.is_empty() {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        let n = this.pre.len().min(buf.remaining());
        buf.put_slice(&this.pre[..n]);
        this.pre.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// One connection's requests in progress, and since when it has had none.
#[derive(Debug)]
pub struct ConnActivity {
    in_flight: AtomicUsize,
    started: AtomicU64,
    /// `mono_ms` when the last request in progress ended (or the connection was accepted).
    idle_since: AtomicU64,
}

impl ConnActivity {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            in_flight: AtomicUsize::new(0),
            started: AtomicU64::new(0),
            idle_since: AtomicU64::new(crate::mono_ms()),
        })
    }

    /// A request starts; it ends when the guard drops.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(self))
    }

    /// Requests started on this connection so far.
    pub fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// `Some(ms)`: no request in progress, none since `mono_ms` `ms`.
    pub fn idle_since(&self) -> Option<u64> {
        (self.in_flight.load(Ordering::Acquire) == 0)
            .then(|| self.idle_since.load(Ordering::Relaxed))
    }
}

/// A request in progress on its connection (`ConnActivity::begin`).
#[derive(Debug)]
pub struct InFlight(Arc<ConnActivity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        // The time first, so that a watcher that sees no request in progress sees it too.
        self.0.idle_since.store(crate::mono_ms(), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The process's open-file limit (the soft one), if it can be read.
pub fn open_file_limit() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        rustix::process::getrlimit(rustix::process::Resource::Nofile).current
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// Raise the soft open-file limit to the hard one (many systems start processes at 1,024
/// with a hard limit far above). Returns the limit in force afterwards, if it can be read.
pub fn raise_open_file_limit() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let now = getrlimit(Resource::Nofile);
        if let (Some(soft), Some(hard)) = (now.current, now.maximum)
            && soft < hard
        {
            let raised = Rlimit {
                current: Some(hard),
                maximum: Some(hard),
            };
            if let Err(e) = setrlimit(Resource::Nofile, raised) {
                tracing::debug!(error = %e, soft, hard, "could not raise the open-file limit");
            }
        }
    }
    open_file_limit()
}

/// `max_connections` when the config does not set it: half the open-file limit less
/// [`RESERVED_FDS`] (each proxied request may hold a provider connection too), between
/// [`MIN_DEFAULT_CONNECTIONS`] and [`MAX_DEFAULT_CONNECTIONS`].
pub fn default_max_connections(open_file_limit: Option<u64>) -> usize {
    let limit = open_file_limit.unwrap_or(ASSUMED_OPEN_FILE_LIMIT);
    let half = usize::try_from(limit.saturating_sub(RESERVED_FDS) / 2).unwrap_or(usize::MAX);
    half.clamp(MIN_DEFAULT_CONNECTIONS, MAX_DEFAULT_CONNECTIONS)
}

/// An accept failure that belongs to the connection being accepted (the next accept may
/// succeed at once), as opposed to one of the process (out of descriptors or memory).
pub fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_bytes_tell_the_protocol() {
        assert_eq!(classify(b""), None);
        assert_eq!(classify(b"G"), Some(Proto::Http1));
        assert_eq!(classify(b"P"), None);
        assert_eq!(classify(b"POST / HTTP/1.1\r\n"), Some(Proto::Http1));
        assert_eq!(classify(b"PRI * HTTP/2.0\r\n"), None, "half the magic");
        assert_eq!(classify(PREFACE), None, "the magic without SETTINGS");
        let mut h2 = PREFACE.to_vec();
        h2.extend_from_slice(&[0, 0, 6, SETTINGS, 0, 0, 0, 0, 0]);
        assert_eq!(classify(&h2), None, "SETTINGS announced, payload not in");
        h2.extend_from_slice(&[0, 3, 0, 0, 0, 100]);
        assert_eq!(classify(&h2), Some(Proto::Http2));
        let mut empty = PREFACE.to_vec();
        empty.extend_from_slice(&[0, 0, 0, SETTINGS, 0, 0, 0, 0, 0]);
        assert_eq!(classify(&empty), Some(Proto::Http2));
        let mut other = PREFACE.to_vec();
        other.extend_from_slice(&[0, 0, 4, 0x8, 0, 0, 0, 0, 0]);
        assert_eq!(
            classify(&other),
            Some(Proto::Http2),
            "not SETTINGS: hyper refuses it"
        );
    }

    #[test]
    fn the_default_cap_leaves_half_the_descriptors_and_a_reserve() {
        assert_eq!(default_max_connections(Some(1024)), 480);
        assert_eq!(default_max_connections(Some(20_000)), 9_968);
        assert_eq!(default_max_connections(None), 480);
        assert_eq!(default_max_connections(Some(64)), MIN_DEFAULT_CONNECTIONS);
        assert_eq!(
            default_max_connections(Some(1 << 20)),
            MAX_DEFAULT_CONNECTIONS
        );
    }

    #[tokio::test]
    async fn detected_bytes_are_read_again() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut c = TcpStream::connect(addr).await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut c, b"GET / HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = BytesMut::new();
        assert_eq!(detect(&mut s, &mut buf).await.unwrap(), Some(Proto::Http1));
        let mut io = Rewind::new(buf.freeze(), s);
        let mut got = vec![0; 18];
        io.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"GET / HTTP/1.1\r\n\r\n");
    }
}
