//! Gatehouse: an AI gateway in one binary.
//!
//! The map for a newcomer, with the decisions behind it, is `ARCHITECTURE.md`.
//!
//! # Layout
//! - [`config`]: the TOML file, raw then validated; the embedded default.
//! - [`egress`]: where the gateway may connect (SSRF): the address policy and its resolver.
//! - [`schema`]: the canonical request/response/stream model (the hub).
//! - [`codec`]: each schema's wire types and translation to/from the hub (spokes).
//! - [`providers`]: one pure adapter per provider kind, the executor (`exec`), the
//!   connection pool and its HTTP/1.1 client, SSE.
//! - [`routing`]: which provider and model serve a request; each provider's run-time state
//!   (health, keys, balance); the live config snapshot.
//! - [`pipeline`]: the stages of a request in order ([`pipeline::serve`]), one module per
//!   client schema ([`pipeline::client`]), the settlement guard, the attempt loop and the
//!   stream relay.
//! - [`store`]: SQLite or PostgreSQL, migrated at start, checked by `/readyz`.
//! - [`governance`]: virtual keys, model access, budgets, rate limits, usage records.
//! - [`idempotency`]: the claims and kept replies of `Idempotency-Key`s, in memory and Redis.
//! - [`pricing`]: the price of each model, built in and overridable; the cost of a request.
//! - [`handlers`], [`app`], [`server`]: one-line handlers, the route table behind the
//!   authentication layer, the accept loop and shutdown.
//! - [`held`]: a reply whose body holds its request's places until it is dropped.
//! - [`tasks`]: the background tasks shutdown waits for (mirror shadows, settlements, writes).
//! - [`admin`]: the admin JSON API (keys, teams, users, projects, budgets, usage) and its roles.
//! - [`fuzzing`]: byte-level entry points into the codecs for the fuzz targets in `fuzz/`.
//!
//! # One request
//! ```text
//! client -> server (hyper, TCP_NODELAY) -> app: authenticate (pipeline::auth), catch-panic
//!        -> handler (one line) -> pipeline::serve::<ClientSchema>:
//!           decode -> authorize -> admit (route resolved once, Settle guard)
//!           -> [cache] -> [input guardrails]
//!           -> route and attempt: for each candidate and key
//!                  adapter.build_chat -> exec::send -> adapter.parse_chat | stream decoder
//!                  (retryable failure before the first event -> next candidate)
//!           -> [output guardrails] -> reply | relay(encoder, Settle) -> client
//! ```
//!
//! # Layers
//! The top-level modules are layered: a module uses only the modules on the lines above
//! its own in this list and those before it on its line. Bottom-up:
//! 1. `error`, `schema`, `tasks`, `held`; and the helpers in this file (clocks, random numbers, request ids, [`drained`], the log throttle); the tracker of background tasks.
//! 2. `codec`, `pricing`, `tokens`: wire types and translation, prices, token counts.
//! 3. `egress`, `config`: where outbound connections may go (the address policy, the resolver that pins what it checked); the config, with the types its settings hold (the body level, the redactor).
//! 4. `bodies`, `store`, `metrics`, `busy_poll`, `responses`: what requests leave behind, where it is kept, what is counted.
//! 5. `providers`: adapters, the executor, the connection pool, SSE.
//! 6. `routing`: the rules, and each provider's run-time state (health, keys, balance).
//! 7. `traces`, `governance`, `idempotency`: request traces; keys, budgets, limits, usage records; the replies kept for `Idempotency-Key` retries.
//! 8. `state`, `pipeline`, `commands`: the shared state with its hot reload; the request's stages; the CLI.
//! 9. `handlers`, `admin`, `ui`, `fuzzing`: the HTTP edge (`ui`: the dashboard's pages).
//! 10. `app`, `server`: the route table and its layers; the accept loop. Then `main.rs`.
//!
//! `tests/layering.rs` enforces it: it reads every `crate::x` path in `src/` (test code left
//! out) as an edge between top-level modules, and fails if the modules depend on each other
//! in a cycle, naming the cycle and the `file:line`s of each of its edges, and if an edge
//! goes up this list or a module has no place in it. A new module or a new edge fails the
//! test until the list (and so this map) says where it belongs.
//!
//! Why a test and not the wire and translation layer (`schema`, `codec`, `error`) in a crate
//! of its own, which would make the compiler enforce that boundary: of the four cycles this
//! test was written against, only one went through that layer; the others ran through
//! `config`, `bodies`, `store`, `metrics` and `busy_poll`, through `governance`, `pipeline`
//! and `traces`, and between `state` and its reload, which a split would not have caught and
//! the test does. One crate also keeps one build, one `[lints]` table and `pub(crate)` for
//! what is internal, where the split would move about 13k lines, turn their `pub(crate)`
//! items `pub`, and serve no second consumer of `codec` yet (STYLE §3.1 splits a crate out
//! for one). What the test cannot see is a path that reaches another module without
//! `crate::` (`super::super::x`, a macro's); the crate names other top-level modules by
//! `crate::` paths.

pub mod admin;
pub mod app;
pub mod bodies;
pub mod busy_poll;
pub mod codec;
pub mod commands;
pub mod config;
pub mod egress;
pub mod error;
pub mod fuzzing;
pub mod governance;
pub mod handlers;
pub mod held;
pub mod idempotency;
pub mod metrics;
pub mod pipeline;
pub mod pricing;
pub mod providers;
pub mod responses;
pub mod routing;
pub mod schema;
pub mod server;
pub mod state;
pub mod store;
pub mod tasks;
pub mod tokens;
pub mod traces;
pub mod ui;

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

/// A log line that may come at most once per interval, counting the occasions it was left
/// out: for warnings whose cause can repeat thousands of times a second (a provider down
/// under load, failing accepts), which a line each would turn into a flood.
#[derive(Debug, Default)]
pub struct LogThrottle {
    /// When the last line was let through, on [`mono_ms`] plus one (0: never).
    last: std::sync::atomic::AtomicU64,
    skipped: std::sync::atomic::AtomicU64,
}

impl LogThrottle {
    /// Whether a line is due now (none in the last `every`); if so, how many occasions were
    /// left out since the last line.
    pub fn due(&self, every: std::time::Duration) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        let now = mono_ms() + 1;
        let last = self.last.load(Relaxed);
        if (last == 0 || now.saturating_sub(last) >= millis(every))
            && self
                .last
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            return Some(self.skipped.swap(0, Relaxed));
        }
        self.skipped.fetch_add(1, Relaxed);
        None
    }
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

/// A time-ordered unique id in UUIDv7 layout (48-bit Unix milliseconds, then random bits),
/// `gh-` prefixed so it is recognisable in provider logs. The random bits come from
/// [`random_u64`], so an id costs no system call.
pub fn new_request_id() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut bytes = [0u8; 10];
    bytes[..8].copy_from_slice(&random_u64().to_le_bytes());
    bytes[8..].copy_from_slice(&random_u64().to_le_bytes()[..2]);
    let id = uuid::Builder::from_unix_timestamp_millis(ms, &bytes).into_uuid();
    // Written into a buffer of the right size: `format!` went through the formatting
    // machinery and grew its string twice.
    let mut hex = [0u8; uuid::fmt::Simple::LENGTH];
    let mut s = String::with_capacity(3 + hex.len());
    s.push_str("gh-");
    s.push_str(id.simple().encode_lower(&mut hex));
    s
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

/// Wait until `counter` is 0 (true), or `deadline` passes (false): how shutdown waits for the
/// work a component counts as pending (records being written, settlements, trace batches).
pub async fn drained(
    counter: &std::sync::atomic::AtomicU64,
    deadline: tokio::time::Instant,
) -> bool {
    while counter.load(std::sync::atomic::Ordering::Acquire) > 0 {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    true
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn request_ids_are_unique_and_time_ordered() {
        let a = super::new_request_id();
        let b = super::new_request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 35);
        let ua = uuid::Uuid::parse_str(&a[3..]).unwrap();
        assert_eq!(ua.get_version_num(), 7);
    }

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
