//! Stage 0, overload shedding: the gateway's bounds on work at once (RELIABILITY 21), checked
//! by the layer `app` puts around every route, from the request's head alone, before the
//! caller is authenticated, before the body is read and before anything upstream, so that a
//! refused request costs a counter check and a small reply.
//!
//! Two bounds, both from `[server]` (`config::Overload`), read from the live config on each
//! request so that a reload applies to the next one:
//! - `max_in_flight`: inference requests being served at once. A request holds its place (a
//!   [`Ticket`]) from its head until its reply's last byte is sent or the client leaves, so a
//!   long stream counts for as long as it runs.
//! - `max_buffered_body_bytes`: the bytes of request bodies being read or held by requests in
//!   flight. A body's declared `Content-Length` is reserved here at once; a body without one
//!   reserves its bytes as they arrive (`intake`). The bytes are given back with the ticket.
//!
//! Past either, the request is refused at once with 503, `Retry-After: 1` and the caller's
//! error schema (the path's, as every refusal before a handler): never queued, never a hang.
//!
//! Exempt: the health routes (`/healthz`, `/readyz`: a load balancer must keep seeing the
//! gateway live and ready while it sheds), and the admin API and `/metrics` (an operator
//! must be able to look and act, such as revoke a key, during a flood; they need the admin
//! credential, so a flood of them is an admin's own).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use http::HeaderMap;

use crate::config::Overload;
use crate::error::{ErrorKind, GatewayError};

/// Seconds a refused caller is told to wait before trying again.
pub const RETRY_AFTER_SECS: u64 = 1;

/// The gateway's current load: requests in flight and body bytes reserved. One per server.
#[derive(Debug, Default)]
pub struct Load {
    in_flight: AtomicUsize,
    body_bytes: AtomicU64,
}

impl Load {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Inference requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Body bytes reserved now.
    pub fn body_bytes(&self) -> u64 {
        self.body_bytes.load(Ordering::Relaxed)
    }

    /// Admit a request whose head is `headers`, or refuse it (503) when the gateway is at one
    /// of its bounds. A declared body (at most `max_body_bytes`: a larger one is refused with
    /// 413 from its header, unread) is reserved whole.
    pub fn admit(
        self: &Arc<Self>,
        limits: &Overload,
        max_body_bytes: u64,
        headers: &HeaderMap,
    ) -> Result<Ticket, GatewayError> {
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        // From here on, dropping the ticket gives the place back.
        let ticket = Ticket(Arc::new(Held {
            load: Arc::clone(self),
            bytes: AtomicU64::new(0),
        }));
        if before >= limits.max_in_flight {
            return Err(overloaded(format!(
                "the gateway is serving its limit of {} requests at once (`[server] max_in_flight`); \
                 retry shortly",
                limits.max_in_flight
            )));
        }
        let declared = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|&n| n <= max_body_bytes)
            .unwrap_or(0);
        if !ticket.reserve(declared, limits.max_buffered_body_bytes) {
            return Err(buffers_full(limits.max_buffered_body_bytes));
        }
        Ok(ticket)
    }
}

/// A request's place in flight and the body bytes it reserved, given back when the last
/// clone drops (the request body's reader and the reply's body each hold one).
#[derive(Clone, Debug)]
pub struct Ticket(Arc<Held>);

#[derive(Debug)]
struct Held {
    load: Arc<Load>,
    bytes: AtomicU64,
}

impl Ticket {
    /// Body bytes this request holds reserved.
    pub fn reserved(&self) -> u64 {
        self.0.bytes.load(Ordering::Relaxed)
    }

    /// Reserve `n` more body bytes within `max` for all requests; false (nothing reserved)
    /// when they do not fit.
    pub fn reserve(&self, n: u64, max: u64) -> bool {
        if n == 0 {
            return true;
        }
        let load = &self.0.load;
        let before = load.body_bytes.fetch_add(n, Ordering::AcqRel);
        if before.saturating_add(n) > max {
            load.body_bytes.fetch_sub(n, Ordering::AcqRel);
            return false;
        }
        self.0.bytes.fetch_add(n, Ordering::Relaxed);
        true
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.load
            .body_bytes
            .fetch_sub(*self.bytes.get_mut(), Ordering::AcqRel);
        self.load.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

fn overloaded(message: String) -> GatewayError {
    crate::metrics::refused("overloaded");
    GatewayError::new(ErrorKind::Unavailable, message).with_retry_after(RETRY_AFTER_SECS)
}

/// The refusal of a body that does not fit in what is left of `max` (503).
pub fn buffers_full(max: u64) -> GatewayError {
    overloaded(format!(
        "the gateway is holding its limit of {max} bytes of request bodies \
         (`[server] max_buffered_body_bytes`); retry shortly"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(n: usize, bytes: u64) -> Overload {
        Overload {
            max_in_flight: n,
            max_buffered_body_bytes: bytes,
            ..Overload::default()
        }
    }

    fn declared(n: u64) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::CONTENT_LENGTH, n.into());
        h
    }

    #[test]
    fn past_the_in_flight_limit_requests_are_refused_until_one_ends() {
        let load = Load::new();
        let l = limits(2, 1000);
        let a = load.admit(&l, 100, &HeaderMap::new()).unwrap();
        let b = load.admit(&l, 100, &HeaderMap::new()).unwrap();
        let e = load.admit(&l, 100, &HeaderMap::new()).unwrap_err();
        assert_eq!(e.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.retry_after, Some(RETRY_AFTER_SECS));
        assert!(e.message.contains("max_in_flight"), "{}", e.message);
        assert_eq!(load.in_flight(), 2, "a refusal holds no place");
        // A clone (the reply's body) keeps the place until both are gone.
        let a2 = a.clone();
        drop(a);
        assert!(load.admit(&l, 100, &HeaderMap::new()).is_err());
        drop(a2);
        let c = load.admit(&l, 100, &HeaderMap::new()).unwrap();
        drop((b, c));
        assert_eq!(load.in_flight(), 0);
    }

    #[test]
    fn body_bytes_are_bounded_and_given_back() {
        let load = Load::new();
        let l = limits(100, 1000);
        let a = load.admit(&l, 800, &declared(600)).unwrap();
        assert_eq!(load.body_bytes(), 600);
        let e = load.admit(&l, 800, &declared(500)).unwrap_err();
        assert!(
            e.message.contains("max_buffered_body_bytes"),
            "{}",
            e.message
        );
        assert_eq!(load.body_bytes(), 600);
        // Past max_body_bytes: nothing reserved (413 follows from the header, unread).
        let big = load.admit(&l, 800, &declared(900)).unwrap();
        // A body without a length reserves as it arrives.
        assert!(big.reserve(300, 1000));
        assert!(!big.reserve(200, 1000));
        assert_eq!(load.body_bytes(), 900);
        drop((a, big));
        assert_eq!((load.body_bytes(), load.in_flight()), (0, 0));
    }
}
