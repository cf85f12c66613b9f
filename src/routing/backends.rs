//! The health and load of every backend (a provider at its base URL) and of each of its API
//! keys, kept across config reloads so that a reload neither forgets an ejection nor drops
//! the connection pools.
//!
//! - **In flight** and a **latency moving average** (time to the reply's start, EWMA with
//!   α = 0.2) per backend and per key feed `least_in_flight` and `lowest_latency`.
//! - **Key cool-down**: a key that got 429 rests until its `Retry-After` (or
//!   `[routing] key_cooldown`); requests use the provider's other keys meanwhile.
//! - **Outlier ejection** (Envoy's): `eject_after` consecutive failures (5xx, connect errors,
//!   timeouts; not 4xx, not 429) eject a backend for `ejection`, doubled on every repeat
//!   ejection up to `max_ejection` ([`ejection_length`]); repeats count from zero again once
//!   the backend stayed healthy for as long as its last ejection. At most
//!   `max_ejection_percent` of the backends (at least one) are out at once. Routing skips an ejected backend unless every candidate of the request
//!   is ejected (then it tries them anyway: better a likely failure than a certain one).
//! - The **retry budget** of [`super::retry`] lives here too, one for the gateway.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::retry::RetryBudget;
use crate::config::{ProviderConfig, RoutingSettings, Secret};
use crate::egress::Resolver;
use crate::providers::exec;
use crate::providers::pool::Pool;

/// The registry: one per gateway process. It holds its backends and key loads weakly: the
/// live config's providers (and the requests still using an older one) hold them, so a
/// reload that keeps a provider finds its backend again, while one that drops it lets it go:
/// it no longer counts towards `max_ejection_percent` and its pool is freed.
#[derive(Default)]
pub struct Backends {
    map: Mutex<HashMap<String, Weak<Backend>>>,
    keys: Mutex<HashMap<String, Weak<Load>>>,
    pub retry: RetryBudget,
    /// Who answers the pools' name lookups (unset: the system's resolver).
    dns: std::sync::OnceLock<Arc<dyn crate::egress::Dns>>,
}

impl Backends {
    /// From now on, pools made for new backends ask `dns` for addresses (tests script the
    /// answers, to show what a rebinding name can and cannot reach). Once only: false if a
    /// resolver was set before. The gateway never calls it.
    pub fn set_dns(&self, dns: Arc<dyn crate::egress::Dns>) -> bool {
        self.dns.set(dns).is_ok()
    }

    /// The backend of a provider config (the same one as before a reload when the provider's
    /// name, URL, connect timeout and address policy are unchanged) and the load of each of its keys.
    pub fn backend(
        &self,
        config: &ProviderConfig,
        egress: &Arc<crate::egress::Policy>,
    ) -> (Arc<Backend>, Vec<Arc<Load>>) {
        let id = format!(
            "{}\u{0}{}\u{0}{}\u{0}{}",
            config.name,
            config.base_url,
            config.timeouts.connect.as_millis(),
            egress.fingerprint()
        );
        let make = || {
            Arc::new(Backend::new(
                &config.name,
                &config.base_url,
                config.timeouts.connect,
                self.resolver(egress),
            ))
        };
        let backend = match self.map.lock() {
            Ok(mut map) => {
                map.retain(|_, b| b.strong_count() > 0);
                live_or_new(&mut map, id, make)
            }
            Err(_) => make(),
        };
        let keys = config
            .api_keys
            .iter()
            .map(|k| {
                let id = format!("{}\u{0}{}", config.name, fingerprint(k));
                match self.keys.lock() {
                    Ok(mut map) => {
                        map.retain(|_, l| l.strong_count() > 0);
                        live_or_new(&mut map, id, Arc::default)
                    }
                    Err(_) => Arc::default(),
                }
            })
            .collect();
        (backend, keys)
    }

    /// The resolver of a new backend's pool: `egress` checked on the registry's DNS.
    fn resolver(&self, egress: &Arc<crate::egress::Policy>) -> Resolver {
        match self.dns.get() {
            Some(dns) => Resolver::new(Arc::clone(egress), Arc::clone(dns)),
            None => Resolver::system(Arc::clone(egress)),
        }
    }

    /// Record a failure of `b`; eject it when it reached the threshold and the cap allows.
    /// True when this call ejected it.
    pub fn failure(&self, b: &Backend, s: &RoutingSettings) -> bool {
        let n = b.consecutive.fetch_add(1, Ordering::Relaxed) + 1;
        if n < s.eject_after || b.is_ejected() {
            return false;
        }
        // Decided under the lock: of several failures that reach the threshold at once (a
        // burst of concurrent requests), only the first ejects; the others see it ejected
        // rather than counting a repeat ejection each (which would double its length).
        let Ok(map) = self.map.lock() else {
            return false;
        };
        if b.is_ejected() {
            return false;
        }
        let live: Vec<Arc<Backend>> = map.values().filter_map(Weak::upgrade).collect();
        let total = live.len();
        let out = live.iter().filter(|b| b.is_ejected()).count();
        let cap = (total * s.max_ejection_percent as usize / 100).max(1);
        if out >= cap {
            return false;
        }
        let repeats = b.ejections.fetch_add(1, Ordering::Relaxed);
        let length = ejection_length(s, repeats);
        b.ejected_until
            .store(crate::mono_ms() + crate::millis(length), Ordering::Relaxed);
        b.ejection_len
            .store(crate::millis(length), Ordering::Relaxed);
        b.consecutive.store(0, Ordering::Relaxed);
        tracing::warn!(provider = %b.name, seconds = length.as_secs_f64(), ejections = repeats + 1, "backend ejected after consecutive failures");
        true
    }
}

/// The entry of `id` while something still holds it, else a new one from `make`.
fn live_or_new<T>(
    map: &mut HashMap<String, Weak<T>>,
    id: String,
    make: impl FnOnce() -> Arc<T>,
) -> Arc<T> {
    if let Some(live) = map.get(&id).and_then(Weak::upgrade) {
        return live;
    }
    let fresh = make();
    map.insert(id, Arc::downgrade(&fresh));
    fresh
}

/// How long a backend is ejected after `repeats` earlier ejections in a row: `ejection`,
/// doubled on each repeat, at most `max_ejection`. (Envoy multiplies its base ejection time
/// by the number of ejections, capped by `max_ejection_time`; doubling reaches the cap in
/// fewer steps: with the defaults, 30 s, 60 s, 120 s, 240 s, then 300 s.)
pub fn ejection_length(s: &RoutingSettings, repeats: u32) -> Duration {
    s.ejection
        .saturating_mul(1 << repeats.min(16))
        .min(s.max_ejection)
}

/// A short stable fingerprint of a key, so its state survives a reload without keeping the
/// key's text in the map.
fn fingerprint(k: &Secret) -> String {
    let d = Sha256::digest(k.expose().as_bytes());
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Requests in flight and the latency moving average, of a backend or of a key.
#[derive(Debug, Default)]
pub struct Load {
    in_flight: AtomicU64,
    /// Microseconds; 0 until the first sample.
    ewma_us: AtomicU64,
    /// Monotonic ms until which this key rests (keys only).
    cool_until: AtomicU64,
}

impl Load {
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub fn latency_us(&self) -> u64 {
        self.ewma_us.load(Ordering::Relaxed)
    }

    /// Count a request in flight until the guard drops.
    pub fn enter(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    pub fn observe(&self, latency: Duration) {
        let sample = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let _ = self
            .ewma_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(if old == 0 {
                    sample
                } else {
                    (old * 4 + sample) / 5
                })
            });
    }

    /// Rest this key for `d`.
    pub fn cool(&self, d: Duration) {
        self.cool_until
            .fetch_max(crate::mono_ms() + crate::millis(d), Ordering::Relaxed);
    }

    /// Milliseconds this key still rests (0 when usable).
    pub fn cooling_ms(&self) -> u64 {
        self.cool_until
            .load(Ordering::Relaxed)
            .saturating_sub(crate::mono_ms())
    }
}

/// One request in flight on a backend or key.
pub struct InFlight(Arc<Load>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A provider at its base URL.
pub struct Backend {
    pub name: String,
    pub load: Arc<Load>,
    /// The connection pool, kept across reloads with the backend.
    pub pool: Pool,
    consecutive: AtomicU32,
    ejections: AtomicU32,
    ejected_until: AtomicU64,
    ejection_len: AtomicU64,
    /// Failed attempts logged at WARN at most once per [`FAILURE_WARN_EVERY`].
    failure_log: crate::LogThrottle,
}

/// At most one WARN line a backend per this long for failed attempts: a provider that is
/// down under load fails every request, and a line each would fill the disk (770,000 lines,
/// 184 MB in 18 minutes of the soak) and spend a core formatting and redacting them. Every
/// attempt is in the request log regardless; the others go out at DEBUG.
pub const FAILURE_WARN_EVERY: Duration = Duration::from_secs(10);

impl Backend {
    fn new(name: &str, base_url: &str, connect: Duration, resolver: Resolver) -> Self {
        Self {
            name: name.to_owned(),
            load: Arc::default(),
            pool: Pool::new(base_url, exec::connector_with(connect, resolver)),
            consecutive: AtomicU32::new(0),
            ejections: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            ejection_len: AtomicU64::new(0),
            failure_log: crate::LogThrottle::default(),
        }
    }

    /// Whether a failed attempt of this backend gets a WARN line now (at most one per
    /// [`FAILURE_WARN_EVERY`]), with how many failed since the last one that had a line.
    pub fn should_warn(&self) -> Option<u64> {
        self.failure_log.due(FAILURE_WARN_EVERY)
    }

    pub fn is_ejected(&self) -> bool {
        self.ejected_until.load(Ordering::Relaxed) > crate::mono_ms()
    }

    /// Milliseconds this backend stays ejected (0 when it is not).
    pub fn ejected_ms(&self) -> u64 {
        self.ejected_until
            .load(Ordering::Relaxed)
            .saturating_sub(crate::mono_ms())
    }

    /// Ejections in a row so far (back to 0 once it stayed healthy for as long as its last
    /// ejection lasted): what the next ejection's length doubles from.
    pub fn ejections(&self) -> u32 {
        self.ejections.load(Ordering::Relaxed)
    }

    /// A reply started: the failure streak ends, and once a backend has stayed healthy for
    /// a whole ejection length after its last ejection, repeats count from zero again.
    pub fn success(&self) {
        self.consecutive.store(0, Ordering::Relaxed);
        let until = self.ejected_until.load(Ordering::Relaxed);
        if until != 0 && crate::mono_ms() > until + self.ejection_len.load(Ordering::Relaxed) {
            self.ejections.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(name: &str) -> ProviderConfig {
        let text = format!(
            "[providers.{name}]\nkind = \"openai-compatible\"\nbase_url = \"http://127.0.0.1:9/v1\"\napi_keys = [\"a\", \"b\"]\n"
        );
        let env: HashMap<String, String> = HashMap::new();
        let cfg = crate::config::parse("t.toml", &text, &env).unwrap();
        (*cfg.providers[0]).clone()
    }

    #[test]
    fn ejection_after_consecutive_failures_with_a_cap() {
        let reg = Backends::default();
        let s = RoutingSettings {
            eject_after: 3,
            max_ejection_percent: 50,
            ..RoutingSettings::default()
        };
        let (a, _) = reg.backend(&provider("a"), &Arc::default());
        let (b, _) = reg.backend(&provider("b"), &Arc::default());
        assert!(!reg.failure(&a, &s));
        a.success();
        assert!(!reg.failure(&a, &s));
        assert!(!reg.failure(&a, &s));
        assert!(reg.failure(&a, &s), "third failure in a row ejects");
        assert!(a.is_ejected());
        for _ in 0..3 {
            assert!(!reg.failure(&b, &s), "half of two backends is one: b stays");
        }
        assert!(!b.is_ejected());
    }

    fn settings(eject_after: u32, percent: u32) -> RoutingSettings {
        RoutingSettings {
            eject_after,
            ejection: Duration::from_secs(30),
            max_ejection: Duration::from_secs(100),
            max_ejection_percent: percent,
            ..RoutingSettings::default()
        }
    }

    /// Fail `b` until it is ejected; how long for (ms).
    fn eject(reg: &Backends, b: &Backend, s: &RoutingSettings) -> u64 {
        for _ in 1..s.eject_after {
            assert!(!reg.failure(b, s));
        }
        assert!(
            reg.failure(b, s),
            "{} failures in a row eject",
            s.eject_after
        );
        b.ejected_ms()
    }

    #[tokio::test(start_paused = true)]
    async fn repeat_ejections_last_longer_up_to_the_cap_and_health_resets_them() {
        crate::follow_tokio_clock();
        let reg = Backends::default();
        let s = settings(2, 100);
        let (a, _) = reg.backend(&provider("a"), &Arc::default());
        let mut lengths = Vec::new();
        for _ in 0..5 {
            let ms = eject(&reg, &a, &s);
            lengths.push(ms);
            // Out for exactly that long: failures meanwhile change nothing.
            tokio::time::advance(Duration::from_millis(ms - 1)).await;
            assert!(a.is_ejected());
            assert!(!reg.failure(&a, &s) && !reg.failure(&a, &s));
            tokio::time::advance(Duration::from_millis(2)).await;
            assert!(!a.is_ejected());
            a.success();
        }
        // 30 s, doubled on each repeat, at most `max_ejection`.
        assert_eq!(lengths, [30_000, 60_000, 100_000, 100_000, 100_000]);
        assert_eq!(a.ejections(), 5);
        // Healthy for as long as its last ejection lasted: repeats count from zero again.
        tokio::time::advance(Duration::from_secs(99)).await;
        a.success();
        assert_eq!(a.ejections(), 5, "not yet healthy for a whole ejection");
        tokio::time::advance(Duration::from_secs(2)).await;
        a.success();
        assert_eq!(a.ejections(), 0);
        assert_eq!(eject(&reg, &a, &s), 30_000);
        // The pure rule, with the defaults: 30 s, 60 s, 120 s, 240 s, then 300 s.
        let d = RoutingSettings::default();
        let secs: Vec<u64> = (0..7).map(|r| ejection_length(&d, r).as_secs()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 300, 300, 300]);
        assert_eq!(ejection_length(&d, u32::MAX).as_secs(), 300);
    }

    #[tokio::test(start_paused = true)]
    async fn at_most_max_ejection_percent_of_the_backends_are_out() {
        crate::follow_tokio_clock();
        let reg = Backends::default();
        let s = settings(1, 50);
        let b: Vec<_> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| reg.backend(&provider(n), &Arc::default()).0)
            .collect();
        assert!(reg.failure(&b[0], &s));
        assert!(reg.failure(&b[1], &s));
        for _ in 0..5 {
            assert!(!reg.failure(&b[2], &s), "half of four backends are out");
        }
        assert_eq!(b.iter().filter(|b| b.is_ejected()).count(), 2);
        // Once they are back, the next failures may eject others, two at a time again.
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(reg.failure(&b[2], &s) && reg.failure(&b[3], &s));
        assert!(!reg.failure(&b[0], &s), "two are out again");
        assert_eq!(b.iter().filter(|b| b.is_ejected()).count(), 2);
    }

    #[test]
    fn backends_a_reload_dropped_no_longer_count_towards_the_cap() {
        let reg = Backends::default();
        let s = settings(1, 50);
        let mut b: Vec<_> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| reg.backend(&provider(n), &Arc::default()).0)
            .collect();
        // A reload keeps a and b and drops c and d (nothing holds them any more).
        let (c, d) = (Arc::downgrade(&b[2]), Arc::downgrade(&b[3]));
        b.truncate(2);
        assert!(c.upgrade().is_none() && d.upgrade().is_none(), "let go");
        let (a_again, _) = reg.backend(&provider("a"), &Arc::default());
        assert!(
            Arc::ptr_eq(&a_again, &b[0]),
            "a kept backend is found again"
        );
        // Half of the two live backends is one: the second cannot be ejected too.
        assert!(reg.failure(&b[0], &s));
        assert!(!reg.failure(&b[1], &s), "one of two is out");
        assert_eq!(
            reg.map.lock().unwrap().len(),
            2,
            "the dropped entries are gone"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failed_attempts_get_one_warning_line_per_interval_with_a_count() {
        crate::follow_tokio_clock();
        let reg = Backends::default();
        let (a, _) = reg.backend(&provider("a"), &Arc::default());
        assert_eq!(a.should_warn(), Some(0), "the first failure is logged");
        for _ in 0..500 {
            assert_eq!(a.should_warn(), None);
        }
        tokio::time::advance(FAILURE_WARN_EVERY).await;
        assert_eq!(a.should_warn(), Some(500), "then one line, with the count");
        assert_eq!(a.should_warn(), None);
    }

    #[test]
    fn concurrent_failures_at_the_threshold_eject_once() {
        let reg = Arc::new(Backends::default());
        let s = Arc::new(settings(1, 100));
        let b: Vec<_> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| reg.backend(&provider(n), &Arc::default()).0)
            .collect();
        let a = Arc::clone(&b[0]);
        let start = Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (reg, s, a, start) = (reg.clone(), s.clone(), a.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    reg.failure(&a, &s)
                })
            })
            .collect();
        let ejected = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|e| *e)
            .count();
        assert_eq!(ejected, 1);
        assert_eq!(a.ejections(), 1, "one ejection, not a repeat per failure");
        assert!(a.ejected_ms() <= 30_000, "{} ms", a.ejected_ms());
    }

    #[test]
    fn state_survives_a_reload_and_keys_cool_down() {
        let reg = Backends::default();
        let (a1, k1) = reg.backend(&provider("a"), &Arc::default());
        let (a2, k2) = reg.backend(&provider("a"), &Arc::default());
        assert!(Arc::ptr_eq(&a1, &a2));
        assert!(Arc::ptr_eq(&k1[1], &k2[1]));
        assert!(!Arc::ptr_eq(&k1[0], &k1[1]));
        k1[0].cool(Duration::from_secs(5));
        assert!(k2[0].cooling_ms() > 4000);
        assert_eq!(k2[1].cooling_ms(), 0);
        let g = k1[1].enter();
        assert_eq!(k2[1].in_flight(), 1);
        drop(g);
        assert_eq!(k2[1].in_flight(), 0);
        k1[1].observe(Duration::from_millis(100));
        k1[1].observe(Duration::from_millis(200));
        assert_eq!(k1[1].latency_us(), 120_000);
    }
}
