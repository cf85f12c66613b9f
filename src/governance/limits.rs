//! Rate limits: requests per minute, tokens per minute, concurrent requests.
//!
//! Per-minute limits use a sliding window of two fixed minutes: the estimate at time `t` is
//! `previous × (1 − f) + current`, where `f` is how far `t` is into the current minute. Unlike
//! a token bucket it never lets more than about `limit` through in any 60 seconds (a burst of
//! `limit` right after a quiet minute, then the rate the window allows). Tokens per minute
//! are reserved up front (input estimate plus `max_tokens`) and corrected to the actual count
//! when the request ends. Concurrency is a count of leases, each released at the end (a lease
//! of an instance that died ends by itself after [`CONCURRENCY_LEASE_MS`]).
//!
//! All checks of a request pass or none is counted. With Redis the counters are shared (one
//! Lua script, [`super::shared`]); while Redis is down each instance enforces its share,
//! `limit / instances`, locally.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::shared::{Shared, SharedError};

/// A concurrency lease ends by itself after this long.
pub const CONCURRENCY_LEASE_MS: u64 = 600_000;
const MINUTE_MS: u64 = 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rpm,
    Tpm,
    Concurrent,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Rpm => "rpm",
            Kind::Tpm => "tpm",
            Kind::Concurrent => "concurrent",
        }
    }
}

/// One limit to check for a request.
#[derive(Debug, Clone)]
pub struct Check {
    pub kind: Kind,
    /// `key:<id>`, `team:<name>`, ...
    pub scope: String,
    /// How messages name the scope (`team `platform``).
    pub label: String,
    pub limit: u64,
    /// 1 for requests, the reserved tokens for tokens, 1 for concurrency.
    pub cost: u64,
}

/// What an admitted request counted, to correct or release when it ends.
#[derive(Debug, Default)]
pub struct Hold {
    items: Vec<(Check, u64)>,
    /// Counted in Redis (otherwise locally).
    shared: bool,
    /// After admission, per check: what is left in the window (for `x-ratelimit-*`).
    pub remaining: Vec<(Kind, u64, u64)>,
    /// Seconds to the end of the current minute.
    pub reset_secs: u64,
}

/// Why a request was refused.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub message: String,
    pub retry_after: u64,
    pub kind: Kind,
    pub limit: u64,
}

#[derive(Default)]
struct Window {
    minute: u64,
    current: u64,
    previous: u64,
}

impl Window {
    fn roll(&mut self, minute: u64) {
        if self.minute == minute {
            return;
        }
        self.previous = if self.minute + 1 == minute {
            self.current
        } else {
            0
        };
        self.current = 0;
        self.minute = minute;
    }
}

#[derive(Default)]
struct LocalState {
    windows: HashMap<String, Window>,
    concurrent: HashMap<String, u64>,
    last_sweep: u64,
}

pub struct Limiter {
    local: Mutex<LocalState>,
    shared: Option<Arc<Shared>>,
}

/// The sliding-window estimate after adding `cost`, and the wait before it fits.
fn estimate(previous: u64, current: u64, now_ms: u64) -> f64 {
    let f = (now_ms % MINUTE_MS) as f64 / MINUTE_MS as f64;
    previous as f64 * (1.0 - f) + current as f64
}

fn retry_after(previous: u64, current: u64, cost: u64, limit: u64, now_ms: u64) -> u64 {
    let into = now_ms % MINUTE_MS;
    let left_ms = MINUTE_MS - into;
    let ms = if current + cost <= limit && previous > 0 {
        // Wait until the previous minute's weight has decayed enough.
        let need_f = 1.0 - (limit - current - cost) as f64 / previous as f64;
        let need_ms = (need_f * MINUTE_MS as f64).ceil() as u64;
        need_ms.saturating_sub(into)
    } else if cost <= limit && current > 0 {
        // Next minute, once this minute's weight decayed enough.
        let need_f = (1.0 - (limit - cost) as f64 / current as f64).max(0.0);
        left_ms + (need_f * MINUTE_MS as f64).ceil() as u64
    } else {
        left_ms
    };
    ms.div_ceil(1000).max(1)
}

fn refusal(c: &Check, previous: u64, current: u64, now_ms: u64) -> Refusal {
    let (message, retry) = match c.kind {
        Kind::Concurrent => (
            format!(
                "rate limit: {} allows {} concurrent requests",
                c.label, c.limit
            ),
            1,
        ),
        Kind::Tpm if c.cost > c.limit => (
            format!(
                "rate limit: this request may use up to {} tokens, more than the {} tokens per minute that {} allows; lower max_tokens",
                c.cost, c.limit, c.label
            ),
            60,
        ),
        kind => (
            format!(
                "rate limit: {} allows {} {} per minute",
                c.label,
                c.limit,
                if kind == Kind::Rpm {
                    "requests"
                } else {
                    "tokens"
                }
            ),
            retry_after(previous, current, c.cost, c.limit, now_ms),
        ),
    };
    Refusal {
        message,
        retry_after: retry,
        kind: c.kind,
        limit: c.limit,
    }
}

impl Limiter {
    pub fn new(shared: Option<Arc<Shared>>) -> Self {
        Self {
            local: Mutex::new(LocalState::default()),
            shared,
        }
    }

    /// Count the request in every check, or refuse it.
    pub async fn acquire(
        &self,
        request_id: &str,
        checks: Vec<Check>,
        now_ms: u64,
    ) -> Result<Hold, Refusal> {
        if checks.is_empty() {
            return Ok(Hold::default());
        }
        if let Some(shared) = &self.shared {
            match self
                .acquire_shared(shared, request_id, &checks, now_ms)
                .await
            {
                Ok(r) => return r,
                Err(e) => tracing::debug!(error = %e, "rate limits checked locally"),
            }
            // Redis is down: this instance enforces its share.
            let n = shared.instances();
            let local: Vec<Check> = checks
                .into_iter()
                .map(|mut c| {
                    c.limit = c.limit.div_ceil(n);
                    c
                })
                .collect();
            return self.acquire_local(local, now_ms);
        }
        self.acquire_local(checks, now_ms)
    }

    /// A local window keeps its own minute (see [`Window::roll`]).
    fn local_key(c: &Check) -> String {
        format!("{}:{}", c.scope, c.kind.as_str())
    }

    /// A shared window's counter for one minute.
    fn window_key(c: &Check, minute: u64) -> String {
        format!("rl:{}:{}:{minute}", c.scope, c.kind.as_str())
    }

    async fn acquire_shared(
        &self,
        shared: &Shared,
        request_id: &str,
        checks: &[Check],
        now_ms: u64,
    ) -> Result<Result<Hold, Refusal>, SharedError> {
        let minute = now_ms / MINUTE_MS;
        let lease_end = now_ms + CONCURRENCY_LEASE_MS;
        let mut inv = shared.scripts.limit_acquire.prepare_invoke();
        inv.arg(now_ms).arg(request_id).arg(lease_end);
        for c in checks {
            match c.kind {
                Kind::Concurrent => {
                    let k = shared.key(&format!("rc:{}", c.scope));
                    inv.key(&k).key(&k).arg("c");
                }
                _ => {
                    inv.key(shared.key(&Self::window_key(c, minute)))
                        .key(shared.key(&Self::window_key(c, minute.saturating_sub(1))))
                        .arg("w");
                }
            }
            inv.arg(c.limit).arg(c.cost);
        }
        let r: Vec<i64> = shared.invoke(&inv).await?;
        let first = r.first().copied().unwrap_or(0);
        if first > 0 {
            let i = usize::try_from(first - 1).unwrap_or(0);
            let prev = u64::try_from(r.get(1).copied().unwrap_or(0)).unwrap_or(0);
            let cur = u64::try_from(r.get(2).copied().unwrap_or(0)).unwrap_or(0);
            let Some(c) = checks.get(i) else {
                return Err(SharedError::Redis("unexpected script reply".into()));
            };
            return Ok(Err(refusal(c, prev, cur, now_ms)));
        }
        let remaining = checks
            .iter()
            .zip(r.iter().skip(1))
            .map(|(c, rem)| (c.kind, c.limit, u64::try_from(*rem).unwrap_or(0)))
            .collect();
        Ok(Ok(Hold {
            items: checks.iter().map(|c| (c.clone(), minute)).collect(),
            shared: true,
            remaining,
            reset_secs: (MINUTE_MS - now_ms % MINUTE_MS).div_ceil(1000),
        }))
    }

    fn acquire_local(&self, checks: Vec<Check>, now_ms: u64) -> Result<Hold, Refusal> {
        let minute = now_ms / MINUTE_MS;
        let mut st = self.local.lock().unwrap_or_else(|p| p.into_inner());
        if st.last_sweep + 2 <= minute {
            st.windows.retain(|_, w| w.minute + 1 >= minute);
            st.concurrent.retain(|_, n| *n > 0);
            st.last_sweep = minute;
        }
        let mut remaining = Vec::with_capacity(checks.len());
        for c in &checks {
            match c.kind {
                Kind::Concurrent => {
                    let n = st.concurrent.get(&c.scope).copied().unwrap_or(0);
                    if n + 1 > c.limit {
                        return Err(refusal(c, n, 0, now_ms));
                    }
                    remaining.push((c.kind, c.limit, c.limit - n - 1));
                }
                _ => {
                    let w = st.windows.entry(Self::local_key(c)).or_default();
                    w.roll(minute);
                    let est = estimate(w.previous, w.current, now_ms) + c.cost as f64;
                    if est > c.limit as f64 {
                        return Err(refusal(c, w.previous, w.current, now_ms));
                    }
                    remaining.push((c.kind, c.limit, (c.limit as f64 - est).floor() as u64));
                }
            }
        }
        for c in &checks {
            match c.kind {
                Kind::Concurrent => *st.concurrent.entry(c.scope.clone()).or_default() += 1,
                _ => {
                    if let Some(w) = st.windows.get_mut(&Self::local_key(c)) {
                        w.current += c.cost;
                    }
                }
            }
        }
        Ok(Hold {
            items: checks.into_iter().map(|c| (c, minute)).collect(),
            shared: false,
            remaining,
            reset_secs: (MINUTE_MS - now_ms % MINUTE_MS).div_ceil(1000),
        })
    }

    /// The request ended: release its concurrency leases and correct its reserved tokens to
    /// `actual_tokens`.
    pub async fn release(&self, request_id: &str, hold: Hold, actual_tokens: u64) {
        if hold.items.is_empty() {
            return;
        }
        if hold.shared
            && let Some(shared) = &self.shared
        {
            let mut inv = shared.scripts.limit_adjust.prepare_invoke();
            inv.arg(request_id);
            let mut any = false;
            for (c, minute) in &hold.items {
                match c.kind {
                    Kind::Rpm => continue,
                    Kind::Tpm => {
                        let delta = i64::try_from(actual_tokens).unwrap_or(i64::MAX)
                            - i64::try_from(c.cost).unwrap_or(i64::MAX);
                        if delta == 0 {
                            continue;
                        }
                        inv.key(shared.key(&Self::window_key(c, *minute)))
                            .arg("w")
                            .arg(delta);
                    }
                    Kind::Concurrent => {
                        inv.key(shared.key(&format!("rc:{}", c.scope)))
                            .arg("c")
                            .arg(0);
                    }
                }
                any = true;
            }
            if any && let Err(e) = shared.invoke::<i64>(&inv).await {
                tracing::warn!(error = %e, "could not release rate-limit counters; leases expire by themselves");
            }
            return;
        }
        let mut st = self.local.lock().unwrap_or_else(|p| p.into_inner());
        for (c, minute) in &hold.items {
            match c.kind {
                Kind::Rpm => {}
                Kind::Tpm => {
                    if let Some(w) = st.windows.get_mut(&Self::local_key(c)) {
                        let slot = if w.minute == *minute {
                            &mut w.current
                        } else if w.minute == minute + 1 {
                            &mut w.previous
                        } else {
                            continue;
                        };
                        *slot = (*slot + actual_tokens).saturating_sub(c.cost);
                    }
                }
                Kind::Concurrent => {
                    if let Some(n) = st.concurrent.get_mut(&c.scope) {
                        *n = n.saturating_sub(1);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kind: Kind, limit: u64, cost: u64) -> Check {
        Check {
            kind,
            scope: "key:k".into(),
            label: "key `k`".into(),
            limit,
            cost,
        }
    }

    #[tokio::test]
    async fn rpm_allows_the_limit_in_any_sixty_seconds() {
        let l = Limiter::new(None);
        let t0 = 1_000 * MINUTE_MS + 50_000; // 50 s into a minute
        let mut ok = 0;
        // 200 requests over 10 s, crossing a minute boundary.
        for i in 0..200u64 {
            let now = t0 + i * 50;
            if l.acquire("r", vec![check(Kind::Rpm, 60, 1)], now)
                .await
                .is_ok()
            {
                ok += 1;
            }
        }
        assert!(ok <= 62, "{ok}");
        assert!(ok >= 60, "{ok}");
    }

    #[tokio::test]
    async fn tpm_reserves_up_front_and_settles_to_actual() {
        let l = Limiter::new(None);
        let now = 5 * MINUTE_MS;
        let mut holds = Vec::new();
        for _ in 0..10 {
            if let Ok(h) = l.acquire("r", vec![check(Kind::Tpm, 1000, 310)], now).await {
                holds.push(h);
            }
        }
        assert_eq!(holds.len(), 3);
        let refused = l
            .acquire("r", vec![check(Kind::Tpm, 1000, 310)], now)
            .await
            .unwrap_err();
        assert!(refused.retry_after >= 1);
        // They used 10 tokens each: room again.
        for h in holds {
            l.release("r", h, 10).await;
        }
        assert!(
            l.acquire("r", vec![check(Kind::Tpm, 1000, 310)], now)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn all_or_nothing_and_concurrency() {
        let l = Limiter::new(None);
        let now = 7 * MINUTE_MS;
        let both = || vec![check(Kind::Rpm, 100, 1), check(Kind::Concurrent, 1, 1)];
        let h = l.acquire("a", both(), now).await.unwrap();
        let e = l.acquire("b", both(), now).await.unwrap_err();
        assert_eq!(e.kind, Kind::Concurrent);
        // The refused request was not counted in the rpm window.
        assert_eq!(h.remaining[0], (Kind::Rpm, 100, 99));
        l.release("a", h, 0).await;
        let h2 = l.acquire("c", both(), now).await.unwrap();
        assert_eq!(h2.remaining[0], (Kind::Rpm, 100, 98));
    }

    #[test]
    fn retry_after_waits_for_the_window_to_slide() {
        // Full current minute, half-way through it: the next minute, then decay.
        let s = retry_after(0, 60, 1, 60, 30_000);
        assert!((30..=32).contains(&s), "{s}");
        // Previous minute full, current empty, at the minute's start: 1 s of decay.
        let s = retry_after(60, 0, 1, 60, 0);
        assert!((1..=2).contains(&s), "{s}");
    }
}
