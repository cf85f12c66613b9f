//! Retries: a budget that keeps them a bounded share of the traffic, and their backoff.
//!
//! The budget (Finagle's and Envoy's idea, counted our way): over the last 10 seconds,
//! retries may number at most `percent` % of the requests plus `min`. Every request counts
//! when it makes its first attempt; every further attempt (a retry on another key, or a
//! fallback to another target) must be allowed by the budget first. When providers fail for
//! everyone, upstream attempts stay under `(1 + percent/100) × requests + min` instead of
//! multiplying by the chain's length (RELIABILITY 14).

use std::sync::Mutex;
use std::time::Duration;

/// Seconds the budget looks back.
const WINDOW_SECS: u64 = 10;

#[derive(Debug, Default)]
pub struct RetryBudget {
    window: Mutex<[Bucket; WINDOW_SECS as usize]>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Bucket {
    /// Monotonic second this bucket counts.
    second: u64,
    requests: u64,
    retries: u64,
}

impl RetryBudget {
    /// A request made its first attempt.
    pub fn request(&self) {
        self.count(crate::mono_ms() / 1000, |b| b.requests += 1);
    }

    /// May one more retry go out? Counts it when it may.
    pub fn try_retry(&self, percent: u32, min: u32) -> bool {
        self.try_retry_at(crate::mono_ms() / 1000, percent, min)
    }

    fn try_retry_at(&self, now: u64, percent: u32, min: u32) -> bool {
        let Ok(mut w) = self.window.lock() else {
            return false;
        };
        let (requests, retries) = w
            .iter()
            .filter(|b| b.second + WINDOW_SECS > now)
            .fold((0, 0), |(q, r), b| (q + b.requests, r + b.retries));
        // retries + 1 <= min + requests * percent / 100, in integers.
        if (retries + 1) * 100 > u64::from(min) * 100 + requests * u64::from(percent) {
            return false;
        }
        slot(&mut w, now).retries += 1;
        true
    }

    fn count(&self, now: u64, f: impl FnOnce(&mut Bucket)) {
        if let Ok(mut w) = self.window.lock() {
            f(slot(&mut w, now));
        }
    }
}

fn slot(w: &mut [Bucket; WINDOW_SECS as usize], now: u64) -> &mut Bucket {
    let b = &mut w[(now % WINDOW_SECS) as usize];
    if b.second != now {
        *b = Bucket {
            second: now,
            ..Bucket::default()
        };
    }
    b
}

/// The wait before retry number `n` (1 for the first): full jitter over
/// `min(max, base × 2^(n-1))`, so retries of many requests do not arrive together.
pub fn backoff(n: u32, base: Duration, max: Duration) -> Duration {
    let ceiling = base
        .saturating_mul(1 << n.saturating_sub(1).min(16))
        .min(max);
    ceiling.mul_f64(crate::random_unit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_stay_within_the_share_of_requests() {
        let b = RetryBudget::default();
        let mut allowed = 0;
        for s in 0..10 {
            for _ in 0..50 {
                b.count(s, |b| b.requests += 1);
                if b.try_retry_at(s, 20, 3) {
                    allowed += 1;
                }
            }
        }
        // 500 requests in 10 s: 20 % of them plus 3.
        assert_eq!(allowed, 103);
    }

    #[test]
    fn the_window_forgets_old_seconds() {
        let b = RetryBudget::default();
        for _ in 0..3 {
            assert!(b.try_retry_at(100, 20, 3));
        }
        assert!(!b.try_retry_at(100, 20, 3), "the minimum is spent");
        assert!(!b.try_retry_at(109, 20, 3), "still inside the window");
        assert!(
            b.try_retry_at(110, 20, 3),
            "the first second left the window"
        );
    }

    #[test]
    fn backoff_is_jittered_under_a_growing_ceiling() {
        let base = Duration::from_millis(25);
        let max = Duration::from_millis(250);
        for n in 1..8 {
            let ceiling = base.saturating_mul(1 << (n - 1)).min(max);
            for _ in 0..50 {
                assert!(backoff(n, base, max) <= ceiling);
            }
        }
        let spread: std::collections::HashSet<_> = (0..20).map(|_| backoff(3, base, max)).collect();
        assert!(spread.len() > 10, "jitter varies the waits");
    }
}
