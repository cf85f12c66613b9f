//! HTTP/1.1 on a provider connection, done by the request itself.
//!
//! hyper's client runs each connection as a task of its own: a request goes to it through a
//! channel, the response comes back through another, and the body through a third, so a
//! proxied request woke and polled four futures to cross one socket (a tenth of its
//! instructions; bench/RESULTS.md, session 14). Here the request's future owns the connection
//! while it is checked out: it writes the request head and body in one vectored write, reads
//! the response head with `httparse`, and the body reads the socket when it is polled.
//!
//! What it speaks (RFC 9112): requests with a complete body and `content-length`; responses
//! framed by `transfer-encoding: chunked` (extensions and trailers skipped), by
//! `content-length`, or by the end of the connection; `1xx` interim responses skipped;
//! `204`/`304` without a body. A connection is kept for another request only when the
//! response was HTTP/1.1, did not say `connection: close`, was framed by length or chunks,
//! and was read to its end with nothing after it. Anything malformed is an error, and the
//! connection is dropped, which closes it. A server that answers before reading all of a
//! large body (an early 413) and closes fails the rest of the write; its answer is still
//! read and returned. (One that answers and keeps the connection open without reading the
//! body stalls the write until the caller's first-byte timeout.)

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf as _, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, Version, header};
use http_body::Frame;
use http_body_util::Full;
use hyper_rustls::MaybeHttpsStream;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::Shared;

/// The byte stream of a provider connection, TLS or not, as tokio reads it.
pub type Io = TokioIo<MaybeHttpsStream<TokioIo<TcpStream>>>;

/// Largest response head accepted, and most header fields in it.
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 128;
/// Longest chunk-size line (size, extensions) or trailer line accepted.
const MAX_LINE: usize = 4 * 1024;
/// How much room a read asks for.
const READ_ROOM: usize = 16 * 1024;

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// An open HTTP/1.1 connection between requests.
pub struct Conn {
    /// Boxed: with its TLS state the stream is kilobytes, and a connection moves from the
    /// pool to a request's future to its body and back.
    io: Box<Io>,
    /// Bytes read past the previous response (always empty on a connection that is kept).
    buf: BytesMut,
}

/// Why a request failed: `unsent` when the connection failed before any of the request
/// was written, so it may go again on another connection.
pub struct Failed {
    pub error: io::Error,
    pub unsent: bool,
}

impl Conn {
    pub fn new(io: Io) -> Self {
        Self {
            io: Box::new(io),
            buf: BytesMut::new(),
        }
    }

    /// Whether an idle connection still looks usable: the server has not closed it and has
    /// sent nothing unasked. Polls the socket once without waiting.
    pub fn is_open(&mut self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut probe = [0u8; 1];
        let mut rb = tokio::io::ReadBuf::new(&mut probe);
        matches!(
            Pin::new(&mut *self.io).poll_read(&mut cx, &mut rb),
            Poll::Pending
        )
    }

    /// Send `req` (its URI in origin form, `host` among its headers) and read the response
    /// head. The body reads the rest from the connection and hands it to `home` when it has
    /// been read to its end and the connection may serve again.
    pub async fn send(
        mut self,
        req: &mut Request<Full<Bytes>>,
        home: Arc<Shared>,
    ) -> Result<Response<Body>, Failed> {
        let body = take_body(req.body_mut());
        let head = encode_head(req, body.len());
        let head_request = req.method() == http::Method::HEAD;
        let written = write_all2(&mut self.io, &head, &body).await;
        // The body goes back, for a caller that tries again on another connection.
        *req.body_mut() = Full::new(body);
        // A server may answer before it has read the whole body (an early 413) and close the
        // connection, which fails the rest of the write: its answer, if it sent one, is what
        // the caller gets.
        let broken = match written {
            Ok(()) => None,
            Err((error, 0)) => {
                return Err(Failed {
                    error,
                    unsent: true,
                });
            }
            Err((error, _)) => Some(error),
        };
        let sent = |error| Failed {
            error,
            unsent: false,
        };
        loop {
            let mut head = match self.read_head().await {
                Ok(head) => head,
                // No answer after a broken write: the write's failure is the one to tell.
                Err(e) => return Err(sent(broken.unwrap_or(e))),
            };
            let Some((framing, keep)) = final_head(&mut head, head_request).map_err(sent)? else {
                continue;
            };
            let keep = keep && broken.is_none();
            let mut resp = Response::new(Body {
                conn: Some(self),
                framing,
                keep,
                home: Some(home),
            });
            *resp.status_mut() = head.status;
            *resp.version_mut() = head.version;
            *resp.headers_mut() = head.headers;
            // A body already complete (empty, or read with the head) releases the
            // connection at once.
            resp.body_mut().advance_framing();
            return Ok(resp);
        }
    }

    /// Read and parse one response head, leaving what follows it in the buffer.
    async fn read_head(&mut self) -> io::Result<Head> {
        loop {
            if let Some(head) = take_head(&mut self.buf)? {
                return Ok(head);
            }
            let n = std::future::poll_fn(|cx| self.poll_fill(cx)).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before a response",
                ));
            }
        }
    }

    /// Read what the socket has into the buffer; `Ok(0)` at its end.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < READ_ROOM / 4 {
            self.buf.reserve(READ_ROOM);
        }
        tokio_util::io::poll_read_buf(Pin::new(&mut *self.io), cx, &mut self.buf)
    }
}

/// The response head at the front of `buf`, taken off it; `None` while it is incomplete.
fn take_head(buf: &mut BytesMut) -> io::Result<Option<Head>> {
    if !buf.is_empty()
        && let Some((head, len)) = parse_head(buf)?
    {
        buf.advance(len);
        return Ok(Some(head));
    }
    if buf.len() >= MAX_HEAD {
        return Err(bad("response head too large"));
    }
    Ok(None)
}

/// What a response head means for the exchange: `None` for an interim response (100
/// Continue, 103 Early Hints), which comes before the real one; else the body's framing and
/// whether the connection may serve again after it.
fn final_head(head: &mut Head, head_request: bool) -> io::Result<Option<(Framing, bool)>> {
    if head.status.is_informational() {
        if head.status == StatusCode::SWITCHING_PROTOCOLS {
            return Err(bad("unexpected 101 Switching Protocols"));
        }
        return Ok(None);
    }
    let framing = framing(head, head_request)?;
    // A message framed both ways is not trusted with another (RFC 9112 §6.3).
    let both = head.headers.contains_key(header::TRANSFER_ENCODING)
        && head.headers.contains_key(header::CONTENT_LENGTH);
    if both {
        // Transfer-Encoding framed it; the Content-Length it overrides is not passed on
        // (RFC 9112 §6.3, as hyper does since 1.13).
        head.headers.remove(header::CONTENT_LENGTH);
    }
    let keep = head.keep_alive && !both && framing != Framing::Eof;
    Ok(Some((framing, keep)))
}

/// The request's body: `Full` yields its one frame at once.
fn take_body(full: &mut Full<Bytes>) -> Bytes {
    use http_body::Body as _;
    let mut cx = Context::from_waker(std::task::Waker::noop());
    match Pin::new(full).poll_frame(&mut cx) {
        Poll::Ready(Some(Ok(frame))) => frame.into_data().unwrap_or_default(),
        _ => Bytes::new(),
    }
}

/// `METHOD target HTTP/1.1`, the headers, and the body's length.
fn encode_head(req: &Request<Full<Bytes>>, body_len: usize) -> Vec<u8> {
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut head = Vec::with_capacity(256 + 64 * req.headers().len());
    head.extend_from_slice(req.method().as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(target.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in req.headers() {
        // The body's framing is ours to state.
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if body_len > 0 || req.method() != http::Method::GET {
        head.extend_from_slice(b"content-length: ");
        head.extend_from_slice(body_len.to_string().as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// Write `a` then `b`, vectored; on failure, the error and how many bytes went out.
async fn write_all2(io: &mut Io, a: &[u8], b: &[u8]) -> Result<(), (io::Error, usize)> {
    let total = a.len() + b.len();
    let mut done = 0;
    while done < total {
        let slices = if done < a.len() {
            [io::IoSlice::new(&a[done..]), io::IoSlice::new(b)]
        } else {
            [
                io::IoSlice::new(&b[done - a.len()..]),
                io::IoSlice::new(&[]),
            ]
        };
        match io.write_vectored(&slices).await {
            Ok(0) => return Err((io::ErrorKind::WriteZero.into(), done)),
            Ok(n) => done += n,
            Err(e) => return Err((e, done)),
        }
    }
    // TLS keeps records until flushed.
    io.flush().await.map_err(|e| (e, done))
}

struct Head {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    keep_alive: bool,
}

/// The response head at the start of `buf` and its length, or `None` if incomplete.
fn parse_head(buf: &[u8]) -> io::Result<Option<(Head, usize)>> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut slots);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(bad(&format!("invalid response head: {e}"))),
    };
    let status = resp
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or_else(|| bad("invalid status"))?;
    let version = if resp.version == Some(1) {
        Version::HTTP_11
    } else {
        Version::HTTP_10
    };
    let mut headers = HeaderMap::with_capacity(resp.headers.len());
    let mut close = version != Version::HTTP_11;
    for h in resp.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| bad("header name"))?;
        let value = HeaderValue::from_bytes(h.value).map_err(|_| bad("header value"))?;
        if name == header::CONNECTION && has_token(&value, "close") {
            close = true;
        }
        headers.append(name, value);
    }
    Ok(Some((
        Head {
            status,
            version,
            headers,
            keep_alive: !close,
        },
        len,
    )))
}

/// Whether a comma-separated header value lists `token` (case-insensitively).
fn has_token(value: &HeaderValue, token: &str) -> bool {
    value
        .to_str()
        .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// How a response body ends.
#[derive(Debug, PartialEq, Eq)]
enum Framing {
    /// This many bytes still to come.
    Length(u64),
    Chunked(Chunk),
    /// Until the server closes the connection.
    Eof,
    /// Read to its end.
    Done,
}

/// Where a chunked body's reader is.
#[derive(Debug, PartialEq, Eq)]
enum Chunk {
    /// At a chunk-size line.
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// At the CRLF after a chunk's data.
    DataEnd,
    /// Past the last chunk, at the trailer lines (ended by an empty line).
    Trailers,
}

/// The framing of a response's body (RFC 9112 §6.3).
fn framing(head: &Head, head_request: bool) -> io::Result<Framing> {
    if head_request
        || head.status == StatusCode::NO_CONTENT
        || head.status == StatusCode::NOT_MODIFIED
    {
        return Ok(Framing::Done);
    }
    let h = &head.headers;
    if let Some(te) = h.get_all(header::TRANSFER_ENCODING).iter().next_back() {
        let last = te.to_str().ok().and_then(|v| v.rsplit(',').next());
        return Ok(match last {
            Some(t) if t.trim().eq_ignore_ascii_case("chunked") => Framing::Chunked(Chunk::Size),
            _ => Framing::Eof,
        });
    }
    let mut length = None;
    for v in h.get_all(header::CONTENT_LENGTH) {
        for part in v.to_str().map_err(|_| bad("content-length"))?.split(',') {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("content-length"));
            }
            let n: u64 = part.parse().map_err(|_| bad("content-length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(bad("conflicting content-length"));
            }
            length = Some(n);
        }
    }
    Ok(match length {
        Some(0) => Framing::Done,
        Some(n) => Framing::Length(n),
        None => Framing::Eof,
    })
}

/// A response body read from its connection as it is polled.
pub struct Body {
    /// `None` once the body ended (the connection went home) or broke.
    conn: Option<Conn>,
    framing: Framing,
    /// Whether the connection may serve another request after this body.
    keep: bool,
    home: Option<Arc<Shared>>,
}

impl Body {
    /// Move through the framing that is already buffered and carries no data (a chunk's
    /// CRLF, size lines, trailers), so that a body whose end has arrived is done without
    /// another poll; then release the connection if it is.
    fn advance_framing(&mut self) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        while let Framing::Chunked(state) = &mut self.framing {
            match step_chunked(state, &mut conn.buf) {
                Ok(Step::Done) => self.framing = Framing::Done,
                Ok(Step::Moved) => continue,
                // Data, a need for more bytes, or an error: for the next poll.
                Ok(Step::Data | Step::More) | Err(_) => break,
            }
        }
        if self.framing == Framing::Done {
            self.release();
        }
    }

    /// The body ended: its connection goes home if it may serve again.
    fn release(&mut self) {
        let conn = self.conn.take();
        if let (Some(conn), Some(home)) = (conn, self.home.take())
            && self.keep
            && conn.buf.is_empty()
        {
            home.put_h1(conn);
        }
    }

    fn fail(&mut self, e: io::Error) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        self.conn = None;
        self.framing = Framing::Done;
        Poll::Ready(Some(Err(e)))
    }
}

/// What one step of the chunked reader did.
enum Step {
    /// A chunk's data is next.
    Data,
    /// The state moved on without data.
    Moved,
    /// The last chunk and the trailers were read.
    Done,
    /// More bytes are needed.
    More,
}

/// One step of a chunked body over the buffered bytes (not a chunk's data, which the body
/// hands out itself).
fn step_chunked(state: &mut Chunk, buf: &mut BytesMut) -> io::Result<Step> {
    match state {
        Chunk::Data(_) => Ok(Step::Data),
        Chunk::DataEnd => {
            if buf.len() < 2 {
                return Ok(Step::More);
            }
            if &buf[..2] != b"\r\n" {
                return Err(bad("chunk data not followed by CRLF"));
            }
            buf.advance(2);
            *state = Chunk::Size;
            Ok(Step::Moved)
        }
        Chunk::Size => {
            let Some(line) = take_line(buf)? else {
                return Ok(Step::More);
            };
            // `chunk-size [ chunk-ext ] CRLF`: hex digits first (any number of them, as long
            // as the size fits 64 bits), then optional whitespace before the extensions or
            // the line's end, as hyper reads it (the fuzz target `http1_response` compares:
            // the pool took leading whitespace and a `+` too).
            let size = line.split(|&b| b == b';').next().unwrap_or_default();
            let size = std::str::from_utf8(size)
                .ok()
                .map(|s| s.trim_end_matches([' ', '\t']))
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|s| u64::from_str_radix(s, 16).ok())
                .ok_or_else(|| bad("invalid chunk size"))?;
            *state = if size == 0 {
                Chunk::Trailers
            } else {
                Chunk::Data(size)
            };
            Ok(Step::Moved)
        }
        Chunk::Trailers => loop {
            let Some(line) = take_line(buf)? else {
                return Ok(Step::More);
            };
            if line.is_empty() {
                return Ok(Step::Done);
            }
        },
    }
}

/// What a body hands out next from the bytes buffered.
enum Next {
    Data(Bytes),
    /// The body is complete.
    Done,
    /// More bytes must be read first.
    Read,
}

/// The body's next step over what is buffered: a data frame, its end, or a need to read;
/// the framing moves on (chunk sizes, CRLFs, trailers) as far as the bytes allow.
fn next_frame(framing: &mut Framing, buf: &mut BytesMut) -> io::Result<Next> {
    loop {
        return Ok(match framing {
            Framing::Done => Next::Done,
            Framing::Length(left) if !buf.is_empty() => {
                let data = take_upto(buf, left);
                if *left == 0 {
                    *framing = Framing::Done;
                }
                Next::Data(data)
            }
            Framing::Eof if !buf.is_empty() => Next::Data(buf.split().freeze()),
            Framing::Chunked(Chunk::Data(left)) if !buf.is_empty() => {
                let data = take_upto(buf, left);
                if *left == 0 {
                    *framing = Framing::Chunked(Chunk::DataEnd);
                }
                Next::Data(data)
            }
            Framing::Chunked(state) => match step_chunked(state, buf)? {
                Step::Moved => continue,
                Step::Done => {
                    *framing = Framing::Done;
                    continue;
                }
                // Chunk data with nothing buffered, or an incomplete line: read.
                Step::Data | Step::More => Next::Read,
            },
            Framing::Length(_) | Framing::Eof => Next::Read,
        });
    }
}

/// The server closed the connection while the body wanted more: the end of a body framed
/// by the close (and then the connection cannot serve again), an error for any other.
fn at_close(framing: &mut Framing, keep: &mut bool) -> io::Result<()> {
    if *framing == Framing::Eof {
        *keep = false;
        *framing = Framing::Done;
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "connection closed in the middle of a body",
    ))
}

/// Up to `left` bytes off the front of `buf`, counted off `left`.
fn take_upto(buf: &mut BytesMut, left: &mut u64) -> Bytes {
    let n = (*left).min(buf.len() as u64);
    *left -= n;
    buf.split_to(n as usize).freeze()
}

/// One CRLF-ended line off the front of `buf`, without its CRLF; `None` if incomplete.
fn take_line(buf: &mut BytesMut) -> io::Result<Option<Bytes>> {
    match memchr::memchr(b'\n', buf) {
        // As long a line is refused however the reads cut it (found by the fuzz target
        // `http1_response`: a long chunk extension read whole was taken, read in pieces
        // refused).
        Some(end) if end > MAX_LINE => Err(bad("chunk line too long")),
        Some(end) => {
            if end == 0 || buf[end - 1] != b'\r' {
                return Err(bad("line not ended by CRLF"));
            }
            let line = buf.split_to(end + 1);
            Ok(Some(line.freeze().slice(..end - 1)))
        }
        None if buf.len() > MAX_LINE => Err(bad("chunk line too long")),
        None => Ok(None),
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        let this = &mut *self;
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match next_frame(&mut this.framing, &mut conn.buf) {
                Err(e) => return this.fail(e),
                Ok(Next::Done) => {
                    this.release();
                    return Poll::Ready(None);
                }
                Ok(Next::Data(data)) => {
                    this.advance_framing();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Next::Read) => {}
            }
            // Nothing buffered to hand out: read.
            match ready!(conn.poll_fill(cx)) {
                Err(e) => return this.fail(e),
                Ok(0) => {
                    if let Err(e) = at_close(&mut this.framing, &mut this.keep) {
                        return this.fail(e);
                    }
                }
                Ok(_) => {}
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.framing == Framing::Done
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self.framing {
            Framing::Length(n) => http_body::SizeHint::with_exact(n),
            Framing::Done => http_body::SizeHint::with_exact(0),
            _ => http_body::SizeHint::default(),
        }
    }
}

/// A whole response as a request on this module's connection reads it: the final head and
/// the body's bytes.
#[derive(Debug)]
pub struct Replayed {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// Whether the connection would go back to the pool (nothing followed the body).
    pub reusable: bool,
}

/// Read the response in `wire` with the code [`Conn::send`] and [`Body`] run, the socket's
/// reads replaced by `chunk`-byte pieces of `wire` and its end by the end of `wire` (for the
/// fuzz target that compares this reading with hyper's, `crate::fuzzing::http1_response`).
pub fn replay(wire: &[u8], head_request: bool, chunk: usize) -> io::Result<Replayed> {
    let mut reads = wire.chunks(chunk.max(1));
    let mut buf = BytesMut::new();
    let mut fill = |buf: &mut BytesMut| match reads.next() {
        Some(c) => {
            buf.extend_from_slice(c);
            c.len()
        }
        None => 0,
    };
    let (head, mut framing, mut keep) = loop {
        let Some(mut head) = take_head(&mut buf)? else {
            if fill(&mut buf) == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before a response",
                ));
            }
            continue;
        };
        if let Some((framing, keep)) = final_head(&mut head, head_request)? {
            break (head, framing, keep);
        }
    };
    let mut body = Vec::new();
    loop {
        match next_frame(&mut framing, &mut buf)? {
            Next::Done => break,
            Next::Data(data) => body.extend_from_slice(&data),
            Next::Read => {
                if fill(&mut buf) == 0 {
                    at_close(&mut framing, &mut keep)?;
                }
            }
        }
    }
    let after = buf.len() + reads.map(<[u8]>::len).sum::<usize>();
    Ok(Replayed {
        status: head.status,
        version: head.version,
        headers: head.headers,
        body,
        reusable: keep && after == 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> Head {
        parse_head(raw.as_bytes()).unwrap().unwrap().0
    }

    /// Run the chunked reader over `wire` as the body does, collecting the data.
    fn dechunk(wire: &[u8]) -> io::Result<(Vec<u8>, bool)> {
        let mut buf = BytesMut::from(wire);
        let mut state = Chunk::Size;
        let mut out = Vec::new();
        loop {
            match step_chunked(&mut state, &mut buf)? {
                Step::Moved => {}
                Step::Done => return Ok((out, buf.is_empty())),
                Step::More => return Err(io::ErrorKind::UnexpectedEof.into()),
                Step::Data => {
                    let Chunk::Data(left) = &mut state else {
                        unreachable!()
                    };
                    if buf.is_empty() {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    out.extend_from_slice(&take_upto(&mut buf, left));
                    if *left == 0 {
                        state = Chunk::DataEnd;
                    }
                }
            }
        }
    }

    #[test]
    fn heads_are_parsed_with_their_keep_alive() {
        let h =
            head("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-A: 1\r\nX-A: 2\r\n\r\n");
        assert_eq!(h.status, StatusCode::OK);
        assert!(h.keep_alive);
        assert_eq!(h.headers.get_all("x-a").iter().count(), 2);
        assert!(!head("HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\n\r\n").keep_alive);
        assert!(!head("HTTP/1.0 200 OK\r\n\r\n").keep_alive);
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-")
                .unwrap()
                .is_none()
        );
        assert!(parse_head(b"HTTP/1.1 2x0 OK\r\n\r\n").is_err());
    }

    #[test]
    fn a_content_length_overridden_by_transfer_encoding_is_not_passed_on() {
        let mut h = head(
            "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        );
        let (framing, keep) = final_head(&mut h, false).unwrap().unwrap();
        assert_eq!(framing, Framing::Chunked(Chunk::Size));
        assert!(
            !keep,
            "a message framed both ways is not trusted with another"
        );
        assert!(!h.headers.contains_key(header::CONTENT_LENGTH));
        assert!(h.headers.contains_key(header::TRANSFER_ENCODING));
        // Alone, a Content-Length stays.
        let mut h = head("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n");
        final_head(&mut h, false).unwrap();
        assert_eq!(h.headers[header::CONTENT_LENGTH], "3");
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let f = |raw: &str| framing(&head(raw), false);
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n").unwrap(),
            Framing::Length(12)
        );
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap(),
            Framing::Done
        );
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\n\r\n").unwrap(),
            Framing::Length(7)
        );
        assert!(f("HTTP/1.1 200 OK\r\nContent-Length: 7, 8\r\n\r\n").is_err());
        assert!(f("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n").is_err());
        assert!(f("HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n").is_err());
        // Transfer-Encoding wins over Content-Length.
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n")
                .unwrap(),
            Framing::Chunked(Chunk::Size)
        );
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n").unwrap(),
            Framing::Eof
        );
        assert_eq!(f("HTTP/1.1 200 OK\r\n\r\n").unwrap(), Framing::Eof);
        assert_eq!(
            f("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n").unwrap(),
            Framing::Done
        );
        assert_eq!(
            framing(&head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), true).unwrap(),
            Framing::Done
        );
    }

    #[test]
    fn chunks_are_decoded_with_extensions_and_trailers() {
        let (data, rest_empty) =
            dechunk(b"5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n")
                .unwrap();
        assert_eq!(data, b"hello 0123456789");
        assert!(rest_empty);
        assert_eq!(dechunk(b"0\r\n\r\n").unwrap().0, b"");
        // Whitespace after the size, before an extension or the line's end, is taken.
        assert_eq!(
            dechunk(b"5 \t\r\nhello\r\n3\t;x\r\nabc\r\n0\t\r\n\r\n")
                .unwrap()
                .0,
            b"helloabc"
        );
        // Leading zeros do not count against the size's 64 bits.
        assert_eq!(
            dechunk(b"000000000000000000005\r\nhello\r\n0\r\n\r\n")
                .unwrap()
                .0,
            b"hello"
        );
        for bad_wire in [
            &b"5\r\nhelloXX0\r\n\r\n"[..],
            b"g\r\nx\r\n0\r\n\r\n",
            b"\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"11111111111111111\r\n",
            b" 0\r\n\r\n",
            b"10000000000000000\r\n",
            b"\t5\r\nhello\r\n0\r\n\r\n",
            b"+5\r\nhello\r\n0\r\n\r\n",
        ] {
            assert!(
                dechunk(bad_wire).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad_wire)
            );
        }
        // A chunk-size line over the limit is refused even when it arrives whole (as it is
        // when it arrives in pieces).
        let long = [&b"3;"[..], &[b'e'; MAX_LINE], b"\r\nabc\r\n0\r\n\r\n"].concat();
        assert!(dechunk(&long).is_err());
    }

    #[test]
    fn the_request_head_states_its_own_length() {
        let mut req = Request::post("/v1/chat?x=1")
            .header("host", "example.com")
            .header("content-length", "999")
            .header("x-b", "2")
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        let body = take_body(req.body_mut());
        assert_eq!(&body[..], b"{}");
        let head = encode_head(&req, body.len());
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "POST /v1/chat?x=1 HTTP/1.1\r\nhost: example.com\r\nx-b: 2\r\ncontent-length: 2\r\n\r\n"
        );
    }
}
