//! Per-request context shared by the pipeline stages (pingora's `CTX`).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::codec::Warnings;
use crate::error::GatewayError;
use crate::governance::{Admission, Principal};

/// Everything the pipeline learns about one request; the handler turns it into response
/// headers, and (with the request log) into the request's record.
pub struct RequestCtx {
    pub id: String,
    pub started: Instant,
    /// Who is calling (`None` when the gateway is open: no keys exist).
    pub principal: Option<Arc<Principal>>,
    /// Index of the `[[routes]]` rule that chose the targets.
    pub rule: Option<usize>,
    pub attempts: Vec<Attempt>,
    /// (provider, model) that served.
    pub served: Option<(String, String)>,
    /// Translation notes of the attempt that served (or failed last).
    pub warnings: Warnings,
    /// Budget reservations and rate-limit leases, settled when the request ends (dropping it
    /// settles it as a failure).
    pub admission: Option<Admission>,
    /// `x-ratelimit-*` headers for the reply.
    pub rate_headers: Vec<(&'static str, String)>,
    /// What routing rules may test about this request.
    pub facts: crate::routing::Facts,
}

impl RequestCtx {
    pub fn new() -> Self {
        Self {
            id: new_request_id(),
            started: Instant::now(),
            principal: None,
            rule: None,
            attempts: Vec::new(),
            served: None,
            warnings: Warnings::default(),
            admission: None,
            rate_headers: Vec::new(),
            facts: crate::routing::Facts::default(),
        }
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
    }
}

/// One try of one target.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub provider: String,
    pub model: String,
    pub latency: Duration,
    pub error: Option<GatewayError>,
}

/// A time-ordered unique id in UUIDv7 layout (48-bit Unix milliseconds, then random bits),
/// `gh-` prefixed so it is recognisable in provider logs. The random bits come from a
/// per-thread generator seeded once from the OS, so an id costs no system call.
pub fn new_request_id() -> String {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(seed());
    }
    fn seed() -> u64 {
        let u = uuid::Uuid::new_v4();
        let b = u.as_bytes();
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) | 1
    }
    /// splitmix64: fast, full-period, good enough for ids (not for secrets).
    fn next() -> u64 {
        STATE.with(|s| {
            let mut z = s.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
            s.set(z);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        })
    }
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut bytes = [0u8; 10];
    bytes[..8].copy_from_slice(&next().to_le_bytes());
    bytes[8..].copy_from_slice(&next().to_le_bytes()[..2]);
    let id = uuid::Builder::from_unix_timestamp_millis(ms, &bytes).into_uuid();
    format!("gh-{}", id.simple())
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_are_unique_and_time_ordered() {
        let a = super::new_request_id();
        let b = super::new_request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 35);
        let ua = uuid::Uuid::parse_str(&a[3..]).unwrap();
        assert_eq!(ua.get_version_num(), 7);
    }
}
