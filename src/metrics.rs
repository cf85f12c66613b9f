//! Prometheus metrics at `GET /metrics` (admin token required, SPEC §3), through the
//! `metrics` facade and its Prometheus exporter (rendered on scrape, no listener of its own).
//!
//! Routing (issue #4):
//! - `gatehouse_requests_total{route, provider, model, fallback, cheaper, outcome}`: requests
//!   that reached the attempt loop, by what served them; `fallback="true"` when it was not
//!   the route's first choice, `cheaper="true"` when the model that served costs less than
//!   the one asked for. The share served by a fallback or a cheaper model is a ratio of
//!   these.
//! - `gatehouse_upstream_attempts_total{provider, outcome}`: every attempt, `ok`, `skipped`,
//!   or the error's code.
//! - `gatehouse_backend_ejections_total{provider}`, `gatehouse_key_rests_total{provider}`,
//!   `gatehouse_retry_budget_exhausted_total`, `gatehouse_mirror_requests_total{outcome}`,
//!   `gatehouse_config_reloads_total{result}`.
//!
//! Request log (issue #6): `gatehouse_requests_completed_total{schema, provider, status}`,
//! `gatehouse_errors_total{class}`, the histograms `gatehouse_request_duration_seconds` and
//! `gatehouse_time_to_first_byte_seconds{schema, provider}`,
//! `gatehouse_tokens_total{provider, model, kind}`, `gatehouse_cost_nanodollars_total{provider,
//! model}`, `gatehouse_refusals_total{reason}`, `gatehouse_budget_used_ratio{scope, name,
//! period}`, `gatehouse_log_queue_depth` (records waiting for the store),
//! `gatehouse_log_records_dropped_total` (dropped because the queue was full),
//! `gatehouse_log_bodies_dropped_total` (records written without their bodies) and
//! `gatehouse_store_timeouts_total{backend}` (store calls given up on, RELIABILITY 26).
//! Labels are bounded: no user ids, no paths, and a model the price table does not know is
//! `other`.
//!
//! Process: `gatehouse_runtime_tasks` (tasks alive in the async runtime) and
//! `gatehouse_background_tasks` (mirror shadows, stored-response writes and settlements
//! still running), both read when scraped.
//!
//! `Idempotency-Key`s: `gatehouse_idempotency_total{outcome}` (see [`idempotency`]).
//! Client connections (`server::edge`): `gatehouse_client_connections` (open now) and
//! `gatehouse_client_connections_closed_total{reason}` (`done`, `header_timeout`, `idle`,
//! `shutdown`).
//!
//! Busy polling (`[server] busy_poll`): `gatehouse_busy_poll_microseconds_total` (time the
//! thread spent polling instead of sleeping) and `gatehouse_busy_poll_wakeups_total`.

use std::sync::{Arc, Mutex, OnceLock};

use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Histogram buckets of the durations (seconds): a fast gateway's overhead up to a long
/// generation.
const SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// The recorder's handle, once [`install`] ran.
static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Install the recorder once per process (later calls reuse it).
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Suffix("_seconds".to_owned()),
                    SECONDS_BUCKETS,
                )
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            spawn_upkeep(handle.clone());
            Some(handle)
        })
        .as_ref()
}

/// How often histogram samples are folded into their buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The recorder keeps each histogram sample until it is folded into the buckets, which a
/// scrape does, or this upkeep. Without it, a gateway nobody scrapes grows by every
/// request's samples (measured: 1.2 MB a second at 29k requests a second). A thread of its
/// own, so that it outlives any one runtime.
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("gatehouse-metrics".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the metrics upkeep thread; scrapes still fold samples");
    }
}

/// The Prometheus text exposition of every metric, through the secret redactor: a label
/// value is a name from the config or the admin API, or a model, and none may carry a
/// secret out (`config::live_redactor`). The process gauges are read at scrape time: the
/// runtime's live tasks and the background tasks `crate::tasks` tracks (a leak shows as a
/// count that does not come back down once load stops: `bench/soak.sh`).
pub fn render() -> String {
    let Some(handle) = install() else {
        return String::new();
    };
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        metrics::gauge!("gatehouse_runtime_tasks").set(rt.metrics().num_alive_tasks() as f64);
    }
    metrics::gauge!("gatehouse_background_tasks").set(crate::tasks::running() as f64);
    // Counted by the store (which sits below this module), published here.
    for (backend, n) in crate::store::timeouts() {
        if n > 0 {
            metrics::counter!("gatehouse_store_timeouts_total", "backend" => backend).absolute(n);
        }
    }
    crate::config::live_redactor().redact(&handle.render())
}

fn flag(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

pub struct Served<'a> {
    pub route: &'a str,
    pub provider: &'a str,
    pub model: &'a str,
    pub fallback: bool,
    pub cheaper: bool,
    pub outcome: &'static str,
}

/// Handles of metrics by their labels, so that a request's metrics cost a lookup of one
/// string rather than building, hashing and comparing a labelled key per metric (and
/// allocating its label values). The labels are bounded (see the module's header); past
/// [`MAX_CACHED`] label sets, handles are built each time instead.
struct Cache<T> {
    map: Mutex<Option<foldhash::HashMap<Box<str>, Arc<T>>>>,
}

const MAX_CACHED: usize = 4_096;

impl<T> Cache<T> {
    const fn new() -> Self {
        Self {
            map: Mutex::new(None),
        }
    }

    /// The handles of `key` (the label values joined), built by `make` the first time.
    fn get(&self, key: &str, make: impl FnOnce() -> T) -> Arc<T> {
        let mut guard = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let map = guard.get_or_insert_with(foldhash::HashMap::default);
        if let Some(h) = map.get(key) {
            return Arc::clone(h);
        }
        let h = Arc::new(make());
        // A handle made before the recorder is installed records nothing: keep none of those.
        if map.len() < MAX_CACHED && HANDLE.get().is_some_and(Option::is_some) {
            map.insert(key.into(), Arc::clone(&h));
        }
        h
    }
}

/// The label values of one metric set as one cache key.
fn cache_key(parts: &[&str]) -> String {
    let mut k = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for p in parts {
        k.push_str(p);
        k.push('\u{1f}');
    }
    k
}

pub fn request(s: &Served<'_>) {
    static CACHE: Cache<Counter> = Cache::new();
    let (fallback, cheaper) = (flag(s.fallback), flag(s.cheaper));
    let key = cache_key(&[s.route, s.provider, s.model, fallback, cheaper, s.outcome]);
    CACHE
        .get(&key, || {
            metrics::counter!(
                "gatehouse_requests_total",
                "route" => s.route.to_owned(),
                "provider" => s.provider.to_owned(),
                "model" => s.model.to_owned(),
                "fallback" => fallback,
                "cheaper" => cheaper,
                "outcome" => s.outcome,
            )
        })
        .increment(1);
}

pub fn attempt(provider: &str, outcome: &'static str) {
    static CACHE: Cache<Counter> = Cache::new();
    CACHE
        .get(&cache_key(&[provider, outcome]), || {
            metrics::counter!("gatehouse_upstream_attempts_total", "provider" => provider.to_owned(), "outcome" => outcome)
        })
        .increment(1);
}

pub fn ejection(provider: &str) {
    metrics::counter!("gatehouse_backend_ejections_total", "provider" => provider.to_owned())
        .increment(1);
}

pub fn key_rest(provider: &str) {
    metrics::counter!("gatehouse_key_rests_total", "provider" => provider.to_owned()).increment(1);
}

/// The metrics of settled requests of one schema, provider, model and status.
struct SettledHandles {
    completed: Counter,
    duration: Histogram,
    ttfb: Histogram,
    /// input, output, cache_read, cache_write, reasoning
    tokens: [Counter; 5],
    cost: Counter,
}

const TOKEN_KINDS: [&str; 5] = ["input", "output", "cache_read", "cache_write", "reasoning"];

/// A settled request: its duration and time to first byte, its outcome and error class,
/// its tokens and cost, by schema, provider and model. `known_model` says whether the model
/// may be a label (the price table knows it); otherwise it is `other`.
pub fn settled(r: &crate::store::UsageRecord, known_model: bool) {
    static CACHE: Cache<SettledHandles> = Cache::new();
    let provider = r.provider.as_deref().unwrap_or("none");
    let model = match &r.model {
        Some(m) if known_model => m.as_str(),
        Some(_) => "other",
        None => "none",
    };
    let schema = r.client_schema;
    let key = cache_key(&[schema, provider, model, r.status]);
    let h = CACHE.get(&key, || SettledHandles {
        completed: metrics::counter!("gatehouse_requests_completed_total", "schema" => schema, "provider" => provider.to_owned(), "status" => r.status),
        duration: metrics::histogram!("gatehouse_request_duration_seconds", "schema" => schema, "provider" => provider.to_owned()),
        ttfb: metrics::histogram!("gatehouse_time_to_first_byte_seconds", "schema" => schema, "provider" => provider.to_owned()),
        tokens: TOKEN_KINDS.map(|kind| {
            metrics::counter!("gatehouse_tokens_total", "provider" => provider.to_owned(), "model" => model.to_owned(), "kind" => kind)
        }),
        cost: metrics::counter!("gatehouse_cost_nanodollars_total", "provider" => provider.to_owned(), "model" => model.to_owned()),
    });
    h.completed.increment(1);
    if let Some(class) = r.error_class {
        metrics::counter!("gatehouse_errors_total", "class" => class).increment(1);
    }
    if let Some(ms) = r.latency_ms {
        h.duration.record(ms as f64 / 1000.0);
    }
    if let Some(ms) = r.ttft_ms {
        h.ttfb.record(ms as f64 / 1000.0);
    }
    let counts = [
        r.input_tokens,
        r.output_tokens,
        r.cache_read_tokens,
        r.cache_write_tokens,
        r.reasoning_tokens,
    ];
    for (counter, n) in h.tokens.iter().zip(counts) {
        if n > 0 {
            counter.increment(n);
        }
    }
    if r.cost_nanos > 0 {
        h.cost.increment(r.cost_nanos);
    }
}

/// A request refused before any provider was asked: `rate_limited`, `budget_exceeded`,
/// `budget_unavailable` or `overloaded` (`gatehouse_refusals_total{reason}`).
pub fn refused(reason: &'static str) {
    metrics::counter!("gatehouse_refusals_total", "reason" => reason).increment(1);
}

/// How much of a budget is used in its current period (`gatehouse_budget_used_ratio`).
/// The labels are the budgets the config and the admin API define, a bounded set.
pub fn budget_use(scope: &'static str, name: &str, period: &'static str, ratio: f64) {
    metrics::gauge!("gatehouse_budget_used_ratio", "scope" => scope, "name" => name.to_owned(), "period" => period)
        .set(ratio);
}

/// Records waiting for the store (`gatehouse_log_queue_depth`).
pub fn log_queue(depth: u64) {
    // Set once a request: its handle is kept rather than looked up in the registry each time.
    static CACHE: Cache<Gauge> = Cache::new();
    CACHE
        .get("", || metrics::gauge!("gatehouse_log_queue_depth"))
        .set(depth as f64);
}

/// A record dropped because the log queue was full (`gatehouse_log_records_dropped_total`).
pub fn log_dropped() {
    metrics::counter!("gatehouse_log_records_dropped_total").increment(1);
}

/// A record that went to the store without its bodies, because too many bodies waited
/// (`gatehouse_log_bodies_dropped_total`).
pub fn log_bodies_dropped() {
    metrics::counter!("gatehouse_log_bodies_dropped_total").increment(1);
}

/// Spans of request traces, by what became of them (`gatehouse_trace_spans_total{outcome}`:
/// `exported`, `dropped_queue_full`, `dropped_export_failed`).
pub fn trace_spans(outcome: &'static str, n: u64) {
    metrics::counter!("gatehouse_trace_spans_total", "outcome" => outcome).increment(n);
}

/// How a stream without usage had its output tokens estimated
/// (`gatehouse_output_token_estimates_total{method}`: `tokenizer`, or `bytes` when the
/// counting thread was behind).
pub fn output_estimate(method: &'static str) {
    metrics::counter!("gatehouse_output_token_estimates_total", "method" => method).increment(1);
}

/// A request with an `Idempotency-Key`, by what the key did
/// (`gatehouse_idempotency_total{outcome}`: `claimed`, `replayed`, `in_flight`, `mismatch`,
/// `too_large`, `unavailable`).
pub fn idempotency(outcome: &'static str) {
    metrics::counter!("gatehouse_idempotency_total", "outcome" => outcome).increment(1);
}

pub fn retry_budget_exhausted() {
    metrics::counter!("gatehouse_retry_budget_exhausted_total").increment(1);
}

pub fn mirror(outcome: &'static str) {
    metrics::counter!("gatehouse_mirror_requests_total", "outcome" => outcome).increment(1);
}

/// Busy polling (`[server] busy_poll`): the time one spell of polling lasted, from a wake-up
/// to going dormant (`gatehouse_busy_poll_microseconds_total`): the CPU the setting spends.
pub fn busy_poll_spun(spell: std::time::Duration) {
    let us = u64::try_from(spell.as_micros()).unwrap_or(u64::MAX);
    metrics::counter!("gatehouse_busy_poll_microseconds_total").increment(us);
}

/// The busy-polling thread woke from dormancy for a request (`gatehouse_busy_poll_wakeups_total`).
pub fn busy_poll_woke() {
    metrics::counter!("gatehouse_busy_poll_wakeups_total").increment(1);
}

pub fn reload(ok: bool) {
    metrics::counter!("gatehouse_config_reloads_total", "result" => if ok { "ok" } else { "refused" })
        .increment(1);
}

/// A client connection was accepted (`gatehouse_client_connections`, open now).
pub fn client_connection_opened() {
    metrics::gauge!("gatehouse_client_connections").increment(1.0);
}

/// A client connection ended (`gatehouse_client_connections_closed_total{reason}`: `done`,
/// `header_timeout`, `idle`, `shutdown`).
pub fn client_connection_closed(reason: &'static str) {
    metrics::gauge!("gatehouse_client_connections").decrement(1.0);
    metrics::counter!("gatehouse_client_connections_closed_total", "reason" => reason).increment(1);
}

#[cfg(test)]
mod tests {
    /// Histogram samples are folded by a thread of the recorder's, whether or not anyone
    /// scrapes (a gateway nobody scrapes must not grow by every request).
    #[cfg(target_os = "linux")]
    #[test]
    fn the_recorder_comes_with_its_upkeep_thread() {
        assert!(super::install().is_some());
        let names = || -> Vec<String> {
            std::fs::read_dir("/proc/self/task")
                .unwrap()
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .map(|n| n.trim().to_owned())
                .collect()
        };
        // A thread names itself once it runs: give it up to 5 s.
        for _ in 0..500 {
            if names().iter().any(|n| n == "gatehouse-metri") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let names = names();
        // The kernel keeps 15 bytes of a thread's name.
        assert!(names.iter().any(|n| n == "gatehouse-metri"), "{names:?}");
    }
}
