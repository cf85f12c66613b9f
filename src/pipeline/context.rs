//! Per-request context shared by the pipeline stages (pingora's `CTX`).

use std::time::Duration;

use tokio::time::Instant;

use crate::codec::Warnings;
use crate::error::GatewayError;

/// Everything the pipeline learns about one request; the handler turns it into response
/// headers, and (with the request log) into the request's record.
pub struct RequestCtx {
    pub id: String,
    pub started: Instant,
    /// Index of the `[[routes]]` rule that chose the targets.
    pub rule: Option<usize>,
    pub attempts: Vec<Attempt>,
    /// (provider, model) that served.
    pub served: Option<(String, String)>,
    /// Translation notes of the attempt that served (or failed last).
    pub warnings: Warnings,
}

impl RequestCtx {
    pub fn new() -> Self {
        Self {
            id: new_request_id(),
            started: Instant::now(),
            rule: None,
            attempts: Vec::new(),
            served: None,
            warnings: Warnings::default(),
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

/// A time-ordered unique id (UUIDv7), `gh-` prefixed so it is recognisable in provider logs.
pub fn new_request_id() -> String {
    format!("gh-{}", uuid::Uuid::now_v7().simple())
}
