//! The store: SQLite by default (one file, WAL mode, created on first start) or PostgreSQL
//! when `store.url` says so.
//!
//! It holds virtual keys ([`keys`]), usage records ([`usage`], written in batches off the
//! request path) and, when no Redis is configured, the budget counters ([`budgets`]): the
//! one write on the request path, because admission must be atomic across instances.
//!
//! Every call is bounded by `[store] timeout` (5 s by default; RELIABILITY 26): [`Store::bounded`] gives up
//! on a call that has not answered by then (a paused database, a network that drops
//! packets, a SQLite write lock another process holds), and the same value is the pool's
//! acquire timeout, SQLite's busy timeout and Postgres' `statement_timeout`. A request that
//! needs the store (budget admission without Redis, an unknown key) therefore fails within
//! the timeout instead of hanging; one that does not (a known key without a budget) never
//! waits on it. The request log's writer is the exception: it retries off the request path
//! behind a bounded queue ([`crate::governance::recorder`]), so its batches are not cut off.

mod bodies;
mod budgets;
mod directory;
mod keys;
mod logs;
mod responses;
mod rollup;
mod sessions;
mod usage;
mod usage_sqlite;

pub use budgets::{COUNTER_RETENTION, CounterRef, CounterState};
pub use directory::{DUPLICATE, Entity, EntityRow};
pub use keys::KeyRow;
pub use logs::{LogFilter, MAX_PAGE, PURGE_BATCH, to_csv as logs_csv};
pub use responses::{MAX_CHAIN, ResponseRow};
pub use sessions::SessionRow;
pub use usage::{GroupBy, ReportRow, UsageFilter, UsageRecord};

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// How long a connection attempt (at start, or by the pool later) may take, when no
/// `[store] timeout` is given ([`Store::connect`]).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Store calls given up on since start, by backend: `[sqlite, postgres]`.
static TIMEOUTS: [std::sync::atomic::AtomicU64; 2] = [
    std::sync::atomic::AtomicU64::new(0),
    std::sync::atomic::AtomicU64::new(0),
];

/// Store calls given up on since start (see [`Store::bounded`]), by backend name.
pub fn timeouts() -> [(&'static str, u64); 2] {
    let n = |i: usize| TIMEOUTS[i].load(std::sync::atomic::Ordering::Relaxed);
    [("sqlite", n(0)), ("postgres", n(1))]
}

/// How long `/readyz` waits for the store to answer.
pub const PING_TIMEOUT: Duration = Duration::from_secs(1);
/// SQLite allows one writer at a time; the request log's writer waits this long for the
/// lock instead of failing with "database is locked" (the pool's connections wait
/// `[store] timeout`).
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub enum Store {
    /// The pool, and the request log's writer with its own connection (see
    /// [`Store::connect`]).
    Sqlite(SqlitePool, usage_sqlite::LogWriter),
    Postgres(PgPool),
}

/// Why the store could not be opened. The URL is never part of the message (a Postgres URL
/// may carry a password).
#[derive(Clone, Debug, thiserror::Error)]
#[error("store ({backend}): {reason}")]
pub struct StoreError {
    backend: &'static str,
    reason: String,
    /// The store did not answer in time (see [`Store::bounded`]).
    timed_out: bool,
}

impl StoreError {
    /// A request the store cannot carry out as asked (not a failure of the store itself).
    pub fn invalid(reason: String) -> Self {
        Self {
            backend: "request",
            reason,
            timed_out: false,
        }
    }

    /// A failure of the store itself.
    pub(crate) fn failed(backend: &'static str, reason: String) -> Self {
        Self {
            backend,
            reason,
            timed_out: false,
        }
    }

    /// A store that did not answer within `limit`.
    pub(crate) fn timeout(backend: &'static str, limit: Duration) -> Self {
        Self {
            backend,
            reason: format!("did not answer within {limit:?}"),
            timed_out: true,
        }
    }

    /// The store did not answer in time (a stall, rather than a refusal).
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }

    /// The name is taken (see [`DUPLICATE`]).
    pub fn is_duplicate(&self) -> bool {
        self.backend == "request" && self.reason == DUPLICATE
    }
}

/// Run the same sqlx code on whichever pool the store has: `pool` is bound to a
/// `SqlitePool` in one arm and a `PgPool` in the other.
macro_rules! on_store {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite($pool, ..) => $body,
            $crate::store::Store::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_store;

/// SQLite lets one writer in at a time, and a writer that finds the lock taken sleeps in
/// steps of a millisecond or more. Write transactions of this process take this lock first,
/// so they queue without sleeping (another process on the same file still can collide; the
/// busy timeout covers that).
pub(crate) async fn sqlite_write_lock() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// Statements are written with Postgres placeholders (`$1`); SQLite spells them `?1`.
pub(crate) fn sql<'a>(store: &Store, text: &'a str) -> Cow<'a, str> {
    match store {
        Store::Postgres(_) => Cow::Borrowed(text),
        Store::Sqlite(..) => Cow::Owned(text.replace('$', "?")),
    }
}

/// Migrations, embedded at build time and run at every start (already applied ones are
/// skipped). Both backends have the same tables; only the column types differ.
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

impl Store {
    /// Open the store at `url` with calls bounded by [`CONNECT_TIMEOUT`] (tools and tests;
    /// the gateway opens its configured store with [`Store::open`]).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, CONNECT_TIMEOUT).await
    }

    /// Open the store `[store]` configures.
    pub async fn open(config: &crate::config::StoreConfig) -> Result<Self, StoreError> {
        Self::connect_with(&config.url, config.timeout).await
    }

    /// Open the store at `url`, every call bounded by `timeout` (see [`Store::bounded`]).
    pub async fn connect_with(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        if url.starts_with("postgres") {
            let err = |e: sqlx::Error| StoreError {
                backend: "postgres",
                reason: describe(&e),
                timed_out: matches!(e, sqlx::Error::PoolTimedOut),
            };
            let mut opts = PgConnectOptions::from_str(url).map_err(err)?;
            // The server gives up on a statement (a lock wait, a slow plan) when the client
            // does; a URL that sets its own `statement_timeout` keeps it.
            if !url.contains("statement_timeout") {
                opts = opts.options([("statement_timeout", format!("{}", timeout.as_millis()))]);
            }
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(timeout)
                .after_connect(|conn, _| Box::pin(learn_clock_skew(conn)))
                .connect_with(opts)
                .await
                .map_err(err)?;
            // Migrations may take long (an index on a big table) and wait for another
            // instance's: on a connection of their own, without the statement timeout, closed
            // after.
            let migrate = async {
                let mut conn = pool.acquire().await?.detach();
                sqlx::query("SET statement_timeout = 0")
                    .execute(&mut conn)
                    .await?;
                let ran = POSTGRES_MIGRATIONS.run(&mut conn).await;
                let _ = sqlx::Connection::close(conn).await;
                ran.map_err(sqlx::Error::from)
            };
            migrate.await.map_err(|e| StoreError {
                backend: "postgres",
                reason: format!("migrating: {}", describe(&e)),
                timed_out: false,
            })?;
            Ok(Store::Postgres(pool))
        } else {
            let err = |e: sqlx::Error| StoreError {
                backend: "sqlite",
                reason: describe(&e),
                timed_out: matches!(e, sqlx::Error::PoolTimedOut),
            };
            // An in-memory store is a `memdb` database of its own name, so that the request
            // log's connection (`usage_sqlite`) opens the same database as the pool's.
            let memory = url.contains(":memory:");
            let opts = if memory {
                SqliteConnectOptions::new()
                    .filename(usage_sqlite::memory_name())
                    .vfs("memdb")
                    .journal_mode(SqliteJournalMode::Memory)
            } else {
                SqliteConnectOptions::from_str(url)
                    .map_err(err)?
                    .journal_mode(SqliteJournalMode::Wal)
            }
            .create_if_missing(true)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(timeout);
            // The in-memory database lives while a connection to it is open: keep one.
            let pool = SqlitePoolOptions::new()
                .max_connections(if memory { 1 } else { 4 })
                .min_connections(u32::from(memory))
                .idle_timeout(if memory {
                    None
                } else {
                    Some(Duration::from_secs(600))
                })
                .max_lifetime(if memory {
                    None
                } else {
                    Some(Duration::from_secs(1800))
                })
                .acquire_timeout(timeout)
                .connect_with(opts.clone())
                .await
                .map_err(err)?;
            SQLITE_MIGRATIONS.run(&pool).await.map_err(|e| StoreError {
                backend: "sqlite",
                reason: format!("migrating: {e}"),
                timed_out: false,
            })?;
            // The request log's batch writer keeps one connection of its own (see
            // `usage_sqlite`), which also keeps its page cache warm from batch to batch.
            let writer =
                usage_sqlite::LogWriter::open(opts.get_filename(), memory, SQLITE_BUSY_TIMEOUT)
                    .map_err(|e| StoreError {
                        backend: "sqlite",
                        reason: format!("opening the request log's connection: {e}"),
                        timed_out: false,
                    })?;
            Ok(Store::Sqlite(pool, writer))
        }
    }

    /// True when the store answers a trivial query within [`PING_TIMEOUT`].
    pub async fn ping(&self) -> bool {
        let q = async {
            match self {
                Store::Sqlite(p, ..) => sqlx::query("SELECT 1").execute(p).await.is_ok(),
                Store::Postgres(p) => sqlx::query("SELECT 1").execute(p).await.is_ok(),
            }
        };
        tokio::time::timeout(PING_TIMEOUT, q).await.unwrap_or(false)
    }

    /// How long one call may take (`[store] timeout`): kept as the pool's acquire timeout.
    pub fn timeout(&self) -> Duration {
        match self {
            Store::Sqlite(p, ..) => p.options().get_acquire_timeout(),
            Store::Postgres(p) => p.options().get_acquire_timeout(),
        }
    }

    /// Run one store call, giving up when it has not answered within [`Store::timeout`]
    /// (the error then says so: [`StoreError::timed_out`]). What a call abandoned this way
    /// had sent may still run once the store answers again; calls whose effect must not
    /// come late check a deadline in the database as well (budget admission).
    ///
    /// The call is boxed: a store call's state (sqlx's statements and transactions, several
    /// kilobytes) then lives on the heap for the calls that run, instead of inline in every
    /// future that may make one. The request's future holds a pointer, so the requests that
    /// make no store call (no budget, a cached key) do not copy those kilobytes each time
    /// the future is moved.
    pub fn bounded<'a, T: 'a>(
        &'a self,
        call: impl std::future::Future<Output = Result<T, StoreError>> + 'a,
    ) -> impl std::future::Future<Output = Result<T, StoreError>> + 'a {
        let call = Box::pin(call);
        async move {
            let limit = self.timeout();
            match tokio::time::timeout(limit, call).await {
                Ok(r) => r,
                Err(_) => {
                    self.count_timeout();
                    Err(StoreError::timeout(self.backend(), limit))
                }
            }
        }
    }

    /// Count a call given up on (`gatehouse_store_timeouts_total`, read by `metrics`).
    pub(crate) fn count_timeout(&self) {
        let i = usize::from(matches!(self, Store::Postgres(_)));
        if let Some(n) = TIMEOUTS.get(i) {
            n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(..) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// A failed statement as an error that names the backend (never the URL).
    pub(crate) fn error(&self, e: &sqlx::Error) -> StoreError {
        StoreError {
            backend: self.backend(),
            reason: describe(e),
            timed_out: matches!(e, sqlx::Error::PoolTimedOut),
        }
    }

    pub async fn close(&self) {
        match self {
            // The request log's connection closes with the last clone of the store.
            Store::Sqlite(p, _) => p.close().await,
            Store::Postgres(p) => p.close().await,
        }
    }
}

/// A fresh, empty Postgres schema on this machine's server (127.0.0.1:5432, database
/// `test`) for one test, migrated. `None`, with a notice, where no server runs (a user's
/// clone); CI always has one, so there it fails instead.
#[cfg(test)]
pub async fn test_postgres() -> Option<Store> {
    let base = "postgres://postgres@127.0.0.1:5432/test";
    let admin = match PgPoolOptions::new().max_connections(1).connect(base).await {
        Ok(p) => p,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("notice: PostgreSQL not reachable here ({e}); skipped");
            return None;
        }
        Err(e) => panic!("PostgreSQL must be reachable in CI: {e}"),
    };
    let schema = test_schema(&admin).await.unwrap();
    admin.close().await;
    Some(
        Store::connect(&format!("{base}?options=-c%20search_path%3D{schema}"))
            .await
            .unwrap(),
    )
}

/// For tests (of this crate and its integration tests): a new schema in the machine's `test`
/// database, whose name says when it was made (`gh_test_<unix seconds>_<random>`). The
/// database outlives a run, so first the schemas tests left more than six hours ago are
/// dropped, one statement each, by one test process at a time (an advisory lock; the others
/// skip the sweep). Best effort: a failed sweep is retried by the next test.
#[doc(hidden)]
pub async fn test_schema(admin: &PgPool) -> Result<String, sqlx::Error> {
    const SWEEP_LOCK: i64 = 0x6768_7465_7374; // "ghtest"
    const KEEP_SECS: u64 = 6 * 3600;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if let Ok(mut conn) = admin.acquire().await {
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(SWEEP_LOCK)
            .fetch_one(&mut *conn)
            .await
            .unwrap_or(false);
        if locked {
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'gh\\_test\\_%'",
            )
            .fetch_all(&mut *conn)
            .await
            .unwrap_or_default();
            for name in names {
                // Names without a time are from before names had one: all old.
                let made = name
                    .strip_prefix("gh_test_")
                    .and_then(|rest| rest.split_once('_'))
                    .and_then(|(secs, _)| secs.parse::<u64>().ok())
                    .unwrap_or(0);
                if made + KEEP_SECS < now {
                    let drop = format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE");
                    let _ = sqlx::query(&drop).execute(&mut *conn).await;
                }
            }
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(SWEEP_LOCK)
                .execute(&mut *conn)
                .await;
        }
    }
    let schema = format!("gh_test_{now}_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(admin)
        .await?;
    Ok(schema)
}

/// Note on a new Postgres connection how far the server's clock is ahead of ours (seconds,
/// negative when behind), as the session setting `gatehouse.clock_skew`: calls that must
/// not run after the client's deadline (`budgets`) compare it in the server's time.
async fn learn_clock_skew(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    let unix = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    let before = unix();
    let server: f64 = sqlx::query_scalar("SELECT extract(epoch FROM clock_timestamp())::float8")
        .fetch_one(&mut *conn)
        .await?;
    let skew = server - (before + unix()) / 2.0;
    sqlx::query("SELECT set_config('gatehouse.clock_skew', $1, false)")
        .bind(format!("{skew:.6}"))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A short cause without connection strings.
fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::PoolTimedOut => "timed out connecting".to_owned(),
        sqlx::Error::Configuration(_) => "invalid store URL".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_file_is_created_in_wal_mode() {
        let dir = std::env::temp_dir().join(format!("gh-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("g.db");
        let store = Store::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        assert!(store.ping().await);
        assert!(path.exists());
        let Store::Sqlite(pool, ..) = &store else {
            panic!("not sqlite")
        };
        let mode: (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(mode.0, "wal");
        store.close().await;
    }

    /// A migration once landed is never edited: a database that applied it refuses to start
    /// when its checksum changes. Add a new migration instead, and its line here.
    #[test]
    fn migrations_are_append_only() {
        use sha2::{Digest, Sha256};
        const LANDED: &[(&str, &str)] = &[
            (
                "migrations/postgres/0001_virtual_keys.sql",
                "46cd905ea270296eefbb65296dedfd5b6fd732c7bf78bc14c2ab651622656d31",
            ),
            (
                "migrations/postgres/0002_budgets_usage.sql",
                "02f604ad635f7ee4f9baf1da941265da3bfb09e66331da454d9e4e78ac7110cf",
            ),
            (
                "migrations/postgres/0003_directory.sql",
                "25496fa5ff52e4e4f10549ef7bf84163a2a5036f229c4e9308a8eaa595138fcd",
            ),
            (
                "migrations/postgres/0004_usage_without_team_index.sql",
                "58fc1c65cd324880dc4da77e3c0db0e1fbaaf71f92fe3d4bbf10db766766ddf9",
            ),
            (
                "migrations/postgres/0005_budget_functions.sql",
                "01deef5d9841ed04d9c40c1631c50004a09b8206846fdd72f9fba70194b026eb",
            ),
            (
                "migrations/postgres/0006_routing_decisions.sql",
                "e0601b214520986e6ca09e59a16b42ef73adb1ffb875b3d2d7703c3ce4849d76",
            ),
            (
                "migrations/postgres/0007_responses.sql",
                "8aaf6a235304d7862764a6ccb36c2ee506a56be62a73f2c7de0d0db923c7f4b9",
            ),
            (
                "migrations/postgres/0008_request_log.sql",
                "b885665eaefabac225f000dc1a4b5566db049b1bb4368d2e81dc617a0882116d",
            ),
            (
                "migrations/postgres/0009_usage_rollup.sql",
                "b0ae6122461907104ab412d5746b172ae1e3755c6a07e71e2456d023c610cdc4",
            ),
            (
                "migrations/postgres/0010_request_bodies.sql",
                "c451f75a1a15f382cb3d715dfa63a1419cb62f6d0256559e097da7fe8cfe6f9e",
            ),
            (
                "migrations/postgres/0011_team_rollup.sql",
                "ef96336106c4202857a35215a86fc90514a13a6c9d8eb4abe8933eca3f66131f",
            ),
            (
                "migrations/postgres/0012_partial_mirror_indexes.sql",
                "47cdb6c23b91b21f7ed6f024e4015c239a95cad6d3d020f7cc958fd1e9e94e4f",
            ),
            (
                "migrations/postgres/0013_response_items.sql",
                "7c3986e989497f7b3f93e02beb0f142a2ebaf39a3a3ad5c3d5de55ac6341c5dd",
            ),
            (
                "migrations/postgres/0014_ui_sessions.sql",
                "02a4cd8974e5a36aea915f516ae9c3e9bca7b27d57a2fffa4c1aca1068aed6cc",
            ),
            (
                "migrations/sqlite/0001_virtual_keys.sql",
                "0dae28414527075a9a6db06c9281c37eb37a6bc0f25007f5fcca00bde08ec4f8",
            ),
            (
                "migrations/sqlite/0002_budgets_usage.sql",
                "02f604ad635f7ee4f9baf1da941265da3bfb09e66331da454d9e4e78ac7110cf",
            ),
            (
                "migrations/sqlite/0003_directory.sql",
                "25496fa5ff52e4e4f10549ef7bf84163a2a5036f229c4e9308a8eaa595138fcd",
            ),
            (
                "migrations/sqlite/0004_usage_without_team_index.sql",
                "58fc1c65cd324880dc4da77e3c0db0e1fbaaf71f92fe3d4bbf10db766766ddf9",
            ),
            (
                "migrations/sqlite/0006_routing_decisions.sql",
                "e0601b214520986e6ca09e59a16b42ef73adb1ffb875b3d2d7703c3ce4849d76",
            ),
            (
                "migrations/sqlite/0007_responses.sql",
                "8aaf6a235304d7862764a6ccb36c2ee506a56be62a73f2c7de0d0db923c7f4b9",
            ),
            (
                "migrations/sqlite/0008_request_log.sql",
                "b885665eaefabac225f000dc1a4b5566db049b1bb4368d2e81dc617a0882116d",
            ),
            (
                "migrations/sqlite/0009_usage_rollup.sql",
                "b0ae6122461907104ab412d5746b172ae1e3755c6a07e71e2456d023c610cdc4",
            ),
            (
                "migrations/sqlite/0010_request_bodies.sql",
                "c451f75a1a15f382cb3d715dfa63a1419cb62f6d0256559e097da7fe8cfe6f9e",
            ),
            (
                "migrations/sqlite/0011_team_rollup.sql",
                "65f3db22b55e0b279a991154b0b619fa5dea5617eb5db72bbe63ce3766b58fa2",
            ),
            (
                "migrations/sqlite/0012_partial_mirror_indexes.sql",
                "5dc31e420bf94986963b2bf9705e614ad1eb3f33a64f65aeff28ee6926f0b356",
            ),
            (
                "migrations/sqlite/0013_response_items.sql",
                "7c3986e989497f7b3f93e02beb0f142a2ebaf39a3a3ad5c3d5de55ac6341c5dd",
            ),
            (
                "migrations/sqlite/0014_ui_sessions.sql",
                "e4086e8b1a23afdba743be4c18d088608b65a4764fa861651cdedc846133fcbb",
            ),
        ];
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut on_disk: Vec<String> = ["migrations/sqlite", "migrations/postgres"]
            .iter()
            .flat_map(|d| std::fs::read_dir(root.join(d)).unwrap())
            .map(|e| {
                e.unwrap()
                    .path()
                    .strip_prefix(root)
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = LANDED.iter().map(|(f, _)| (*f).to_owned()).collect();
        listed.sort();
        assert_eq!(on_disk, listed, "list each new migration here");
        for (file, sum) in LANDED {
            let text = std::fs::read(root.join(file)).unwrap();
            let got: String = Sha256::digest(&text)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(
                &got, sum,
                "{file} was edited after it landed: add a new migration instead"
            );
        }
    }

    #[tokio::test]
    async fn postgres_on_this_machine_is_reachable() {
        // The machine runs PostgreSQL on 127.0.0.1:5432 (trust auth, database `test`). The
        // database outlives a run, and its `public` schema may hold migrations of another
        // checkout (whose checksums differ): migrate a fresh schema, as every test does.
        // `test_postgres` fails in CI when the server is not there, and skips elsewhere.
        if let Some(store) = test_postgres().await {
            assert!(store.ping().await);
        }
    }

    #[tokio::test]
    async fn errors_never_show_the_url() {
        let e = Store::connect("postgres://user:hunter2secret@127.0.0.1:1/db")
            .await
            .unwrap_err();
        assert!(!e.to_string().contains("hunter2secret"), "{e}");
    }
}
