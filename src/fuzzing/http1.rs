//! The provider connection pool's HTTP/1.1 response reader (`providers::pool::h1`), checked
//! against hyper's client reading the same bytes.
//!
//! The pool speaks HTTP/1.1 itself (hyper's client cost a task and three channels per
//! request); hyper's is the reference reading. Each input is a provider's response to
//! `GET /` (or to `HEAD /`, chosen by the input's first byte), read by both:
//!
//! - **Ours is consistent with itself:** the result is the same whether the socket's reads
//!   return the bytes whole, one at a time or in 7- or 64-byte pieces.
//! - **Ours agrees with hyper's:** both read a complete response, with the same status, HTTP
//!   version, header fields (names, values and order) and body bytes (the body framing:
//!   `Content-Length`, chunked, or to the connection's close; no body for `HEAD`, 204, 304);
//!   or both refuse the bytes. Error messages are not compared, nor trailers (hyper returns
//!   them, the pool skips them), nor whether the connection could serve again (hyper does
//!   not tell).
//!
//! Known differences, where the pool is deliberately more lenient and the comparison is
//! skipped (each is harmless: the pool reads one provider's responses to its own requests,
//! so there is no second party to smuggle a message past):
//! - `101 Switching Protocols`: hyper hands it to the caller (who may upgrade), the pool
//!   refuses it (it never asks for an upgrade).
//! - `Transfer-Encoding` in an HTTP/1.0 response: hyper refuses it, the pool honours it.
//! - Trailer fields: the pool skips each line up to its CRLF without parsing it; hyper
//!   parses the trailer section as header fields and refuses malformed ones.
//! - Chunk extensions: the pool skips them up to the CRLF; hyper parses them and refuses
//!   some bytes in them (a bare CR, a LF).
//! - Limits: inputs of 60 KiB or more are not compared (the pool's head limit is 64 KiB,
//!   hyper's 400 KiB; a chunk-size line may be 4 KiB with the pool).

use std::io;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, StatusCode, Version};
use http_body_util::{BodyExt as _, Empty};

use crate::providers::pool::{Replayed, replay_h1 as replay};

/// Inputs this long or longer are not compared (see the module header).
const MAX_COMPARED: usize = 60 * 1024;
/// Read sizes besides the whole input.
const CHUNK_SIZES: &[usize] = &[1, 7, 64];
/// The pool's header-field limit, given to hyper too.
const MAX_HEADERS: usize = 128;

/// What a reader made of a response: its head and body, or a refusal.
#[derive(Debug, PartialEq, Eq)]
struct Read {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// The first byte chooses the request (odd: `HEAD`); the rest is the response.
pub fn http1_response(data: &[u8]) {
    let Some((&first, wire)) = data.split_first() else {
        return;
    };
    if data.len() >= MAX_COMPARED {
        return;
    }
    let head_request = first & 1 == 1;
    let ours = replay(wire, head_request, wire.len().max(1));
    for &size in CHUNK_SIZES {
        let cut = replay(wire, head_request, size);
        assert!(
            same(&ours, &cut),
            "the pool reads the response differently in {size}-byte reads:\nwhole: {ours:?}\ncut:   {cut:?}"
        );
    }
    let ours = ours.map(|r: Replayed| Read {
        status: r.status,
        version: r.version,
        headers: r.headers,
        body: r.body,
    });
    let theirs = hyper_reads(wire, head_request);
    let agree = match (&ours, &theirs) {
        (Ok(a), Ok(b)) => a == b,
        (Err(_), Err(_)) => true,
        // hyper hands a 101 to its caller (see the module header).
        (Err(_), Ok(b)) if b.status == StatusCode::SWITCHING_PROTOCOLS => true,
        _ => known_difference(wire),
    };
    assert!(
        agree,
        "the pool and hyper read the response differently:\npool:  {ours:?}\nhyper: {theirs:?}"
    );
}

fn same(a: &io::Result<Replayed>, b: &io::Result<Replayed>) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => {
            a.status == b.status
                && a.version == b.version
                && a.headers == b.headers
                && a.body == b.body
                && a.reusable == b.reusable
        }
        (Err(_), Err(_)) => true,
        _ => false,
    }
}

/// A response one of the documented differences may apply to (see the module header), where
/// one reader accepting and the other refusing is not a failure.
fn known_difference(wire: &[u8]) -> bool {
    // Empty lines before a head are skipped by both readers (found by the fuzz target: bare
    // LFs between a `100 Continue` and the response it announced).
    let start = wire
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n'))
        .unwrap_or(wire.len());
    let wire = &wire[start..];
    // The head ends at an empty line, CRLF or bare LF as httparse takes it.
    let ends = [&b"\n\r\n"[..], b"\n\n"]
        .into_iter()
        .filter_map(|end| memchr::memmem::find(wire, end).map(|i| (i, i + end.len())))
        .min();
    let Some((head_end, body_start)) = ends else {
        return false;
    };
    let head = wire[..head_end].to_ascii_lowercase();
    // An interim response (`100 Continue`, `103 Early Hints`) comes before the real one,
    // which both readers skip to: the difference, if any, is in that one.
    if head.len() > 9 && head[9] == b'1' && head.starts_with(b"http/1.") {
        return known_difference(&wire[body_start..]);
    }
    if memchr::memmem::find(&head, b"transfer-encoding").is_none() {
        return false;
    }
    head.starts_with(b"http/1.0") || extensions_or_trailers(&wire[body_start..])
}

/// Whether a chunked body uses chunk extensions or trailer fields, read strictly (sizes are
/// hex digits, which whitespace may follow; each chunk's data as long as its size).
fn extensions_or_trailers(mut body: &[u8]) -> bool {
    loop {
        let Some(end) = memchr::memchr(b'\n', body) else {
            return false;
        };
        let line = &body[..end];
        if line.contains(&b';') {
            return true;
        }
        let mut digits = line.strip_suffix(b"\r").unwrap_or(line);
        // Whitespace after the size is taken by both readers.
        while let [rest @ .., b' ' | b'\t'] = digits {
            digits = rest;
        }
        let Some(size) = std::str::from_utf8(digits)
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|s| usize::from_str_radix(s, 16).ok())
        else {
            // A malformed size line: both readers must refuse it.
            return false;
        };
        body = &body[end + 1..];
        if size == 0 {
            return !body.starts_with(b"\r\n");
        }
        match body.get(size + 2..) {
            Some(rest) => body = rest,
            None => return false,
        }
    }
}

/// hyper's client reading `wire` as the reply to its `GET /` (or `HEAD /`).
fn hyper_reads(wire: &[u8], head_request: bool) -> Result<Read, String> {
    let rt = runtime().map_err(|e| e.to_string())?;
    let io = Wire {
        data: wire.to_vec(),
        at: 0,
        written: false,
        reader: None,
    };
    rt.block_on(async move {
        let mut b = hyper::client::conn::http1::Builder::new();
        b.max_headers(MAX_HEADERS);
        let (mut send, conn) = b
            .handshake::<_, Empty<Bytes>>(io)
            .await
            .map_err(|e| e.to_string())?;
        let req = http::Request::builder()
            .method(if head_request {
                http::Method::HEAD
            } else {
                http::Method::GET
            })
            .uri("/")
            .header(http::header::HOST, "provider.test")
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        // Queued now, so that the connection has a request to read the response for when
        // it is first polled.
        let response = send.send_request(req);
        let exchange = async move {
            let resp = response.await.map_err(|e| e.to_string())?;
            let (mut parts, body) = resp.into_parts();
            let body = body.collect().await.map_err(|e| e.to_string())?;
            // hyper before 1.13 kept a Content-Length that Transfer-Encoding overrides; since
            // 1.13 it removes it, as the pool does (RFC 9112 §6.3): compared the same way
            // whichever hyper this was built with.
            if parts.headers.contains_key(http::header::TRANSFER_ENCODING) {
                parts.headers.remove(http::header::CONTENT_LENGTH);
            }
            Ok(Read {
                status: parts.status,
                version: parts.version,
                headers: parts.headers,
                body: body.to_bytes().to_vec(),
            })
        };
        let (conn, exchange) = (pin!(conn), pin!(exchange));
        match futures_util::future::select(conn, exchange).await {
            futures_util::future::Either::Left((_, exchange)) => exchange.await,
            futures_util::future::Either::Right((read, _)) => read,
        }
    })
}

/// One single-threaded runtime per fuzzing thread (hyper's futures need no I/O driver here).
fn runtime() -> io::Result<&'static tokio::runtime::Runtime> {
    thread_local! {
        static RT: std::cell::OnceCell<&'static tokio::runtime::Runtime> = const { std::cell::OnceCell::new() };
    }
    RT.with(|cell| {
        if let Some(rt) = cell.get() {
            return Ok(*rt);
        }
        let rt: &'static _ = Box::leak(Box::new(
            tokio::runtime::Builder::new_current_thread().build()?,
        ));
        let _ = cell.set(rt);
        Ok(rt)
    })
}

/// A connection whose reads return the input, then its end, once the request was written
/// (a server answers after the request: hyper takes bytes on an idle connection for an
/// unsolicited message); writes go nowhere.
struct Wire {
    data: Vec<u8>,
    at: usize,
    written: bool,
    reader: Option<std::task::Waker>,
}

impl hyper::rt::Read for Wire {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.written {
            self.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.remaining().min(self.data.len() - self.at);
        let at = self.at;
        buf.put_slice(&self.data[at..at + n]);
        self.at += n;
        Poll::Ready(Ok(()))
    }
}

impl hyper::rt::Write for Wire {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.written = true;
        if let Some(w) = self.reader.take() {
            w.wake();
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
