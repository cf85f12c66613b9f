//! `[idempotency]`: how long the replies of requests sent with an `Idempotency-Key` are
//! kept for replay, and how much memory they may take (see `crate::idempotency`).

use std::time::Duration;

use super::raw::RawIdempotency;
use super::source::Source;

/// 24 hours, as Stripe keeps its keys: long enough for any client's retries (a batch job
/// re-run the next morning), short enough that keys do not pile up.
pub const DEFAULT_IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);
/// The longest a key may be kept: a week. Past that, a retry is a new request.
pub const MAX_IDEMPOTENCY_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// 64 MiB of kept replies in each instance's memory: about 16,000 typical chat replies
/// (4 KiB each) or sixteen of the largest kept.
pub const DEFAULT_IDEMPOTENCY_MEMORY: u64 = 64 * 1024 * 1024;
/// 4 MiB: a whole reply of 100,000 output tokens, or a streamed reply of about 20,000 tokens
/// (each SSE event carries some 150 bytes of framing). A larger reply is not kept (its key
/// then answers 409, so that a retry is never charged twice).
pub const DEFAULT_IDEMPOTENCY_MAX_REPLY: u64 = 4 * 1024 * 1024;

/// What happens to a request with an `Idempotency-Key` while the configured Redis does not
/// answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RedisDown {
    /// Keys are kept in this instance's memory: a retry to the same instance is still
    /// replayed, one to another instance is not seen.
    #[default]
    Local,
    /// Refused with 503 and `Retry-After`, so a key never runs twice across instances.
    Refuse,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencySettings {
    /// `false`: the header is ignored.
    pub enabled: bool,
    pub ttl: Duration,
    /// Bytes of kept replies in this instance's memory; the oldest go first beyond it.
    pub memory: u64,
    /// The largest reply kept (body and headers).
    pub max_reply: u64,
    pub redis_down: RedisDown,
}

impl Default for IdempotencySettings {
    fn default() -> Self {
        Self {
            enabled: true,
            ttl: DEFAULT_IDEMPOTENCY_TTL,
            memory: DEFAULT_IDEMPOTENCY_MEMORY,
            max_reply: DEFAULT_IDEMPOTENCY_MAX_REPLY,
            redis_down: RedisDown::Local,
        }
    }
}

/// `[idempotency]`, validated.
pub fn settings(src: &mut Source<'_>, raw: Option<&RawIdempotency>) -> IdempotencySettings {
    let mut s = IdempotencySettings::default();
    let Some(raw) = raw else {
        return s;
    };
    if let Some(e) = raw.enabled {
        s.enabled = e;
    }
    if let Some(v) = &raw.ttl
        && let Some(d) = src.duration(v)
    {
        if d < Duration::from_secs(1) || d > MAX_IDEMPOTENCY_TTL {
            src.error(
                &v.span(),
                "idempotency.ttl must be between 1s and 168h (a week)",
            );
        } else {
            s.ttl = d;
        }
    }
    if let Some(v) = &raw.memory {
        if *v.get_ref() == 0 {
            src.error(
                &v.span(),
                "idempotency.memory must be greater than 0 (to turn keys off: enabled = false)",
            );
        } else {
            s.memory = *v.get_ref();
        }
    }
    if let Some(v) = &raw.max_reply_bytes {
        let n = *v.get_ref();
        if n == 0 {
            src.error(
                &v.span(),
                "idempotency.max_reply_bytes must be greater than 0",
            );
        } else if n > s.memory {
            src.error(
                &v.span(),
                format!(
                    "idempotency.max_reply_bytes ({n}) must not exceed idempotency.memory ({})",
                    s.memory
                ),
            );
        } else {
            s.max_reply = n;
        }
    } else {
        s.max_reply = s.max_reply.min(s.memory);
    }
    if let Some(v) = &raw.redis_down {
        match v.get_ref().as_str() {
            "local" => s.redis_down = RedisDown::Local,
            "refuse" => s.redis_down = RedisDown::Refuse,
            other => src.error(
                &v.span(),
                format!("invalid idempotency.redis_down `{other}`: expected `local` or `refuse`"),
            ),
        }
    }
    s
}
