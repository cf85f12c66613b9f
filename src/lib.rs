//! Gatehouse: an AI gateway in one binary.
//!
//! # Layout
//! - [`config`]: the TOML file, raw then validated; the embedded default.
//! - [`schema`]: the canonical request/response/stream model (the hub).
//! - [`codec`]: each client schema's wire types and translation to/from the hub (spokes).
//! - [`providers`]: one pure adapter per provider kind, and the shared executor (`exec`).
//! - [`routing`]: which provider and model serve a request; the live config snapshot.
//! - [`pipeline`]: the ordered stages of a request, the fallback loop and the stream relay.
//! - [`store`]: SQLite or PostgreSQL, migrated at start, checked by `/readyz`; virtual keys.
//! - [`governance`]: virtual keys, model access, budgets, rate limits, usage records.
//! - [`pricing`]: the price of each model, built in and overridable; the cost of a request.
//! - [`handlers`], [`app`], [`server`]: HTTP edge, route table, accept loop and shutdown.
//! - [`tasks`]: the background tasks shutdown waits for (mirror shadows, settlements, writes).
//! - [`admin`]: the admin JSON API (keys, teams, users, projects, budgets, usage) and its roles.
//! - [`fuzzing`]: byte-level entry points into the codecs for the fuzz targets in `fuzz/`.
//!
//! # One request
//! ```text
//! client -> server (hyper, TCP_NODELAY) -> app (catch-panic) -> handler
//!        -> governance::authenticate (401) -> read_json (limit, schema errors) -> codec::<schema>::decode_request -> ChatRequest
//!        -> pipeline::chat: routing::resolve -> for each candidate:
//!               adapter.build_chat -> exec::send -> adapter.parse_chat | stream decoder
//!               (retryable failure before the first event -> next candidate)
//!        -> codec::<schema>::encode_response | relay(encoder) -> client
//! ```
//! The dependency rule is one-way: `schema` <- `codec`/`providers` <- `routing` <-
//! `pipeline` <- `handlers` <- `app`.

pub mod admin;
pub mod app;
pub mod bodies;
pub mod busy_poll;
pub mod codec;
pub mod commands;
pub mod config;
pub mod error;
pub mod fuzzing;
pub mod governance;
pub mod handlers;
pub mod metrics;
pub mod pipeline;
pub mod pricing;
pub mod providers;
pub mod reload;
pub mod responses;
pub mod routing;
pub mod schema;
pub mod server;
pub mod state;
pub mod store;
pub mod tasks;
pub mod tokens;
pub mod traces;

/// Unix seconds now (0 if the clock is before 1970): the one reading of the wall clock for
/// timestamps (`created` fields, key expiry).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A duration in whole milliseconds, saturating at `u64::MAX`.
pub fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Unix milliseconds now (0 if the clock is before 1970).
pub fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, millis)
}

/// A fast pseudo-random number (splitmix64 over a per-thread state seeded once from the OS):
/// for ids, sampling, splits and jitter, never for secrets.
pub fn random_u64() -> u64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(seed());
    }
    fn seed() -> u64 {
        let u = uuid::Uuid::new_v4();
        let b = u.as_bytes();
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) | 1
    }
    STATE.with(|s| {
        let mut z = s.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        s.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

/// A uniform number in `0.0..1.0`.
pub fn random_unit() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Milliseconds on a monotonic clock since the process started: for cool-downs, ejections,
/// idle connections and per-second counts, which must not jump with the wall clock.
///
/// The kernel's coarse clock: it is the time of the last scheduler tick (1 to 10 ms old), and
/// reading it costs a few nanoseconds where the precise clock costs about 40 on our VMs. A
/// request reads this several times, and nothing it times is shorter than a second. Once a
/// test called [`follow_tokio_clock`], it reads tokio's clock instead, so paused time moves
/// it; until then the switch costs one load.
pub fn mono_ms() -> u64 {
    match TOKIO_CLOCK.get() {
        None => coarse_mono_ms(),
        Some((at, base)) => base + millis(at.elapsed()),
    }
}

/// Set by [`follow_tokio_clock`]: tokio's instant and [`mono_ms`]'s reading at that call.
static TOKIO_CLOCK: std::sync::OnceLock<(tokio::time::Instant, u64)> = std::sync::OnceLock::new();

/// For tests: from now on [`mono_ms`] follows tokio's clock, so `tokio::time::pause` and
/// `advance` move cool-downs, ejections, the retry budget's seconds and idle connections as
/// they move tokio's own timers. It goes on from where the kernel's clock was, so readings
/// taken before stay comparable. The gateway never calls it.
pub fn follow_tokio_clock() {
    TOKIO_CLOCK.get_or_init(|| (tokio::time::Instant::now(), coarse_mono_ms()));
}

fn coarse_mono_ms() -> u64 {
    #[cfg(target_os = "linux")]
    fn coarse_ms() -> u64 {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
        u64::try_from(t.tv_sec).unwrap_or(0) * 1000
            + u64::try_from(t.tv_nsec).unwrap_or(0) / 1_000_000
    }
    #[cfg(not(target_os = "linux"))]
    fn coarse_ms() -> u64 {
        static START: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
        millis(START.get_or_init(tokio::time::Instant::now).elapsed())
    }
    static ORIGIN: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    coarse_ms().saturating_sub(*ORIGIN.get_or_init(coarse_ms))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn mono_ms_follows_paused_time_once_asked() {
        let before = super::mono_ms();
        super::follow_tokio_clock();
        let from = super::mono_ms();
        assert!(from >= before, "{from} after {before}");
        tokio::time::advance(Duration::from_secs(30)).await;
        let after = super::mono_ms();
        assert!(
            (30_000..30_100).contains(&(after - from)),
            "moved {} ms",
            after - from
        );
    }
}
