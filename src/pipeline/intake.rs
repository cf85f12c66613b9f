//! A request's body as the handlers read it: within a deadline, within the gateway's budget
//! of buffered body bytes, and, when a reply goes out before the body was read, drained
//! (a bounded amount, for a bounded time) so that the client sees the reply.
//!
//! The layer `app` puts around every route wraps each request's body in an [`Intake`]:
//! - **Deadline.** The whole body must arrive within `[server] body_read_timeout` of the
//!   request's head; a trickle past it fails the read with [`IntakeError::TimedOut`] (the
//!   pipeline answers 408), and the rest of the body is not read: the connection closes.
//! - **Budget.** Bytes past what the head declared (a body without `Content-Length`) are
//!   reserved from the gateway's budget as they arrive (`shed::Ticket::reserve`); a body
//!   that does not fit fails with [`IntakeError::BuffersFull`] (503).
//! - **Lingering close.** A reply sent before the body was read (413 from the declared
//!   length, 401, 503, a body cut at the size limit) leaves the client still sending, and a
//!   socket closed with unread bytes in it is reset by the kernel, often before the client
//!   has read the reply: Python's `urllib`, which sends the whole body before reading, then
//!   sees a broken pipe instead of the 413. So an `Intake` dropped before its end hands the
//!   rest of the body to a task that reads and discards it, as nginx's lingering close does,
//!   at most [`LINGER_BYTES`] for at most [`LINGER_TIME`], holding no request's place or
//!   bytes; the client finishes sending, then reads the reply. HTTP/1 only: HTTP/2 resets the
//!   stream alone, and a client that sent `Expect: 100-continue` and got its reply before
//!   the `100 Continue` sends no body.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::time::{Instant, Sleep};

use super::shed::Ticket;
use crate::error::{ErrorKind, GatewayError};

/// The most a lingering close reads and discards: an oversized upload a few times the
/// default 32 MiB limit still ends in its 413 being read.
pub const LINGER_BYTES: u64 = 128 * 1024 * 1024;
/// The longest a lingering close waits for the rest of a body (nginx's `lingering_time` is
/// 30 s; the bytes bound usually ends it far sooner).
pub const LINGER_TIME: Duration = Duration::from_secs(10);

/// Why reading a body failed, found by the pipeline under the body's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntakeError {
    /// The body did not arrive within the deadline.
    TimedOut(Duration),
    /// The body does not fit in the gateway's budget of buffered bytes (the limit).
    BuffersFull(u64),
}

impl std::fmt::Display for IntakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TimedOut(d) => write!(f, "request body not received within {d:?}"),
            Self::BuffersFull(max) => write!(f, "request bodies past the limit of {max} bytes"),
        }
    }
}

impl std::error::Error for IntakeError {}

impl IntakeError {
    /// The reply for it, in the caller's schema.
    pub fn to_gateway(self) -> GatewayError {
        match self {
            Self::TimedOut(d) => GatewayError::new(
                ErrorKind::RequestTimeout,
                format!(
                    "the request body did not arrive within {}s (`[server] body_read_timeout`)",
                    d.as_secs_f64()
                ),
            ),
            Self::BuffersFull(max) => super::shed::buffers_full(max),
        }
    }

    /// The intake error somewhere in `e`'s chain of sources, if there is one.
    pub fn find(e: &(dyn std::error::Error + 'static)) -> Option<Self> {
        let mut cur = Some(e);
        while let Some(e) = cur {
            if let Some(i) = e.downcast_ref::<Self>() {
                return Some(*i);
            }
            cur = e.source();
        }
        None
    }
}

/// The bounds one body is read within.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub timeout: Duration,
    /// `[server] max_buffered_body_bytes`.
    pub budget: u64,
    /// Bytes already reserved for this body (its declared length).
    pub reserved: u64,
}

/// A request body read within its bounds (see the module header). Generic over the body
/// hyper hands in, so that a request's body is boxed once (as the `Body` around this).
pub struct Intake<B>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<axum::BoxError>,
{
    /// `None` once handed to a lingering close.
    inner: Option<B>,
    ticket: Option<Ticket>,
    bounds: Bounds,
    deadline: Instant,
    /// Armed only when a read has to wait, so a body that is already there costs no timer.
    sleep: Option<Pin<Box<Sleep>>>,
    read: u64,
    /// The body ended, failed or timed out: nothing is left to drain.
    finished: bool,
    /// Drain the rest on drop (HTTP/1, and not a `100-continue` the client still waits on).
    linger: bool,
    /// `Expect: 100-continue`: nothing was sent until the body is first read.
    expects_continue: bool,
}

impl<B> Intake<B>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<axum::BoxError>,
{
    /// Wrap a request's body; `ticket` is the request's place in flight (none for the routes
    /// that are exempt from shedding).
    pub fn new(
        inner: B,
        head: &http::request::Parts,
        ticket: Option<Ticket>,
        bounds: Bounds,
    ) -> Self {
        let finished = inner.is_end_stream();
        let expects_continue = head
            .headers
            .get(http::header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        Self {
            inner: Some(inner),
            ticket,
            bounds,
            deadline: Instant::now() + bounds.timeout,
            sleep: None,
            read: 0,
            finished,
            linger: head.version <= http::Version::HTTP_11,
            expects_continue,
        }
    }

    fn fail(&mut self, e: IntakeError) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        self.finished = true;
        Poll::Ready(Some(Err(axum::Error::new(e))))
    }
}

impl<B> HttpBody for Intake<B>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut().filter(|_| !this.finished) else {
            return Poll::Ready(None);
        };
        // Reading the body sends `100 Continue`: from here on the client sends it.
        this.expects_continue = false;
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let before = this.read;
                    this.read += data.len() as u64;
                    let extra = this.read.saturating_sub(this.bounds.reserved.max(before));
                    if let Some(t) = &this.ticket
                        && !t.reserve(extra, this.bounds.budget)
                    {
                        return this.fail(IntakeError::BuffersFull(this.bounds.budget));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.finished = true;
                Poll::Ready(Some(Err(axum::Error::new(e))))
            }
            Poll::Ready(None) => {
                this.finished = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                let deadline = this.deadline;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => this.fail(IntakeError::TimedOut(this.bounds.timeout)),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.finished || self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

impl<B> Drop for Intake<B>
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<axum::BoxError>,
{
    fn drop(&mut self) {
        // The request's place and bytes are not held by the drain.
        self.ticket = None;
        let Some(rest) = self.inner.take() else {
            return;
        };
        if self.finished || !self.linger || self.expects_continue || rest.is_end_stream() {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            #[expect(
                clippy::disallowed_methods,
                reason = "a connection's lingering close: it holds nothing of a request, and ends within LINGER_TIME or with its connection"
            )]
            rt.spawn(linger(rest, Instant::now() + LINGER_TIME));
        }
    }
}

/// Read and discard what is left of a body, up to [`LINGER_BYTES`] and `deadline`, then
/// drop it (hyper then closes the connection if the body did not end).
async fn linger<B>(mut rest: B, deadline: Instant)
where
    B: HttpBody<Data = Bytes> + Unpin,
{
    let mut left = LINGER_BYTES;
    let _ = tokio::time::timeout_at(deadline, async {
        while let Some(Ok(frame)) = rest.frame().await {
            let n = frame.data_ref().map_or(0, |d| d.len() as u64);
            match left.checked_sub(n) {
                Some(l) => left = l,
                None => return,
            }
        }
    })
    .await;
}
