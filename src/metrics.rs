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

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Install the recorder once per process (later calls reuse it).
pub fn install() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .as_ref()
}

/// The Prometheus text exposition of every metric.
pub fn render() -> String {
    install().map(PrometheusHandle::render).unwrap_or_default()
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

pub fn request(s: &Served<'_>) {
    metrics::counter!(
        "gatehouse_requests_total",
        "route" => s.route.to_owned(),
        "provider" => s.provider.to_owned(),
        "model" => s.model.to_owned(),
        "fallback" => flag(s.fallback),
        "cheaper" => flag(s.cheaper),
        "outcome" => s.outcome,
    )
    .increment(1);
}

pub fn attempt(provider: &str, outcome: &'static str) {
    metrics::counter!("gatehouse_upstream_attempts_total", "provider" => provider.to_owned(), "outcome" => outcome)
        .increment(1);
}

pub fn ejection(provider: &str) {
    metrics::counter!("gatehouse_backend_ejections_total", "provider" => provider.to_owned())
        .increment(1);
}

pub fn key_rest(provider: &str) {
    metrics::counter!("gatehouse_key_rests_total", "provider" => provider.to_owned()).increment(1);
}

pub fn retry_budget_exhausted() {
    metrics::counter!("gatehouse_retry_budget_exhausted_total").increment(1);
}

pub fn mirror(outcome: &'static str) {
    metrics::counter!("gatehouse_mirror_requests_total", "outcome" => outcome).increment(1);
}

pub fn reload(ok: bool) {
    metrics::counter!("gatehouse_config_reloads_total", "result" => if ok { "ok" } else { "refused" })
        .increment(1);
}
