//! One classified error type for the whole gateway (STYLE §4.2).
//!
//! Every failure, from a malformed body to a provider timeout, becomes a [`GatewayError`]
//! with a [`ErrorKind`] (which decides the HTTP status and the error `type` each client schema
//! shows), the [`Side`] it came from, and whether the fallback loop may try the next target.
//! Nothing here renders or logs: rendering happens at the edge, per client schema
//! (`codec::openai_chat::error_body`, later the Anthropic and Gemini ones), and logging
//! happens once, in the request span, when the reply is finished.

use std::fmt;

use http::StatusCode;

/// What went wrong, coarse enough to be a metric label and to pick an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request body or a parameter is malformed or invalid (400).
    InvalidRequest,
    /// Missing or unknown credential (401).
    Unauthorized,
    /// The key may not use this model or feature (403).
    Forbidden,
    /// No route or provider serves the requested model (404).
    ModelNotFound,
    /// The path is not one of ours (404).
    NotFound,
    /// Method not allowed on this path (405).
    MethodNotAllowed,
    /// The name is taken, or the thing is not ours to change (409, admin API).
    Conflict,
    /// The request's `Idempotency-Key` is held by a request still in flight (409).
    IdempotencyKeyInUse,
    /// The request's `Idempotency-Key` was used for a different request (422).
    IdempotencyKeyReused,
    /// Body over the configured limit (413), refused before any provider is contacted.
    PayloadTooLarge,
    /// The request head has more header fields, or more bytes, than allowed (431).
    HeadersTooLarge,
    /// The request body did not arrive within `[server] body_read_timeout` (408).
    RequestTimeout,
    /// Unsupported media type (415).
    UnsupportedMediaType,
    /// Rate limited, by us or by every provider we tried (429).
    RateLimited,
    /// A budget that applies to the caller is spent (429, `Retry-After` at the period's end).
    BudgetExhausted,
    /// Budgets cannot be checked (their shared counters are unreachable): fail closed (503).
    BudgetUnavailable,
    /// The provider rejected the request as the caller's fault (its own 4xx, kept as is).
    UpstreamRejected,
    /// The provider failed (5xx or an unreadable reply) after every allowed fallback (502).
    UpstreamFailed,
    /// No provider could be reached (503).
    UpstreamUnavailable,
    /// A provider timed out: connect, first byte or idle between chunks (504).
    UpstreamTimeout,
    /// The request came back to us through a provider pointing at the gateway itself (508).
    LoopDetected,
    /// The gateway is shutting down or overloaded (503).
    Unavailable,
    /// A bug or an unexpected local failure (500).
    Internal,
}

/// Where the failure originated (pingora's `ErrorSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Upstream,
    Internal,
}

/// The gateway's error: classified, with a message safe to show the caller.
///
/// Messages never contain secrets: provider bodies are reduced to their `message` field by the
/// adapters, and credentials are never formatted into errors anywhere.
#[derive(Debug, Clone)]
pub struct GatewayError {
    pub kind: ErrorKind,
    pub side: Side,
    /// May the fallback loop try the next target (before the first byte reached the client)?
    pub retryable: bool,
    pub message: String,
    /// The offending request field, for OpenAI's `param`.
    pub param: Option<String>,
    /// The provider's own HTTP status, kept for `UpstreamRejected` and for the log.
    pub upstream_status: Option<u16>,
    /// Seconds the caller should wait (429/503), from the provider's `Retry-After` or ours.
    pub retry_after: Option<u64>,
}

impl GatewayError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let side = match kind {
            ErrorKind::UpstreamRejected
            | ErrorKind::UpstreamFailed
            | ErrorKind::UpstreamUnavailable
            | ErrorKind::UpstreamTimeout => Side::Upstream,
            ErrorKind::Internal | ErrorKind::Unavailable => Side::Internal,
            _ => Side::Client,
        };
        let retryable = matches!(
            kind,
            ErrorKind::UpstreamFailed | ErrorKind::UpstreamUnavailable | ErrorKind::UpstreamTimeout
        );
        Self {
            kind,
            side,
            retryable,
            message: message.into(),
            param: None,
            upstream_status: None,
            retry_after: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, message)
    }

    pub fn invalid_param(param: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, message).with_param(param)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    pub fn with_param(mut self, param: &str) -> Self {
        self.param = Some(param.to_owned());
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// Classify a provider's non-2xx status: 429 and 5xx are retryable, other 4xx (408 too) are
    /// the caller's fault and pass through with the provider's status (STYLE §4.2).
    pub fn from_upstream_status(status: u16, message: String, retry_after: Option<u64>) -> Self {
        let kind = match status {
            429 => ErrorKind::RateLimited,
            // The provider refused *our* credential: not the caller's fault, so not a 401 for them.
            401 | 403 => ErrorKind::UpstreamFailed,
            408 => ErrorKind::UpstreamTimeout,
            400..=499 => ErrorKind::UpstreamRejected,
            _ => ErrorKind::UpstreamFailed,
        };
        let mut e = Self::new(kind, message);
        e.side = Side::Upstream;
        e.retryable = matches!(status, 429 | 500..=599);
        e.upstream_status = Some(status);
        e.retry_after = retry_after;
        e
    }

    /// The HTTP status the client sees.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::ModelNotFound | ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::Conflict | ErrorKind::IdempotencyKeyInUse => StatusCode::CONFLICT,
            ErrorKind::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorKind::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::RateLimited | ErrorKind::BudgetExhausted => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::BudgetUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::UpstreamRejected => self
                .upstream_status
                .and_then(|s| StatusCode::from_u16(s).ok())
                .filter(|s| s.is_client_error())
                .unwrap_or(StatusCode::BAD_REQUEST),
            ErrorKind::UpstreamFailed => StatusCode::BAD_GATEWAY,
            ErrorKind::UpstreamUnavailable | ErrorKind::Unavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ErrorKind::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::LoopDetected => StatusCode::LOOP_DETECTED,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A bounded label for metrics and logs; also OpenAI's `code` field.
    pub fn label(&self) -> &'static str {
        match self.kind {
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::ModelNotFound => "model_not_found",
            ErrorKind::NotFound => "not_found",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::Conflict => "conflict",
            ErrorKind::IdempotencyKeyInUse => "idempotency_key_in_use",
            ErrorKind::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::HeadersTooLarge => "headers_too_large",
            ErrorKind::RequestTimeout => "request_timeout",
            ErrorKind::UnsupportedMediaType => "unsupported_media_type",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::BudgetExhausted => "budget_exceeded",
            ErrorKind::BudgetUnavailable => "budget_unavailable",
            ErrorKind::UpstreamRejected => "upstream_rejected",
            ErrorKind::UpstreamFailed => "upstream_failed",
            ErrorKind::UpstreamUnavailable => "upstream_unavailable",
            ErrorKind::UpstreamTimeout => "upstream_timeout",
            ErrorKind::LoopDetected => "loop_detected",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal_error",
        }
    }
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.label(), self.message)
    }
}

impl std::error::Error for GatewayError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_statuses_are_classified() {
        let e = GatewayError::from_upstream_status(429, "slow down".into(), Some(3));
        assert!(e.retryable);
        assert_eq!(e.status(), StatusCode::TOO_MANY_REQUESTS);
        let e = GatewayError::from_upstream_status(503, "x".into(), None);
        assert!(e.retryable);
        assert_eq!(e.status(), StatusCode::BAD_GATEWAY);
        let e = GatewayError::from_upstream_status(422, "bad".into(), None);
        assert!(!e.retryable);
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let e = GatewayError::from_upstream_status(401, "bad key".into(), None);
        assert!(!e.retryable);
        assert_eq!(e.status(), StatusCode::BAD_GATEWAY);
    }
}
