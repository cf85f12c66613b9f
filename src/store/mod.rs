//! The store: SQLite by default (one file, WAL mode, created on first start) or PostgreSQL
//! when `store.url` says so.
//!
//! Today the gateway only opens it and reports whether it is reachable (`/readyz`); virtual
//! keys, budgets and the request log keep their tables here as they land, each with its
//! migrations. Writes never happen on the request path (STYLE §3.4).

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// How long a connection attempt (at start, or by the pool later) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `/readyz` waits for the store to answer.
pub const PING_TIMEOUT: Duration = Duration::from_secs(1);
/// SQLite allows one writer at a time; a writer waits this long for the lock instead of
/// failing with "database is locked".
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Why the store could not be opened. The URL is never part of the message (a Postgres URL
/// may carry a password).
#[derive(Debug, thiserror::Error)]
#[error("cannot open the store ({backend}): {reason}")]
pub struct StoreError {
    backend: &'static str,
    reason: String,
}

impl Store {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("postgres") {
            let err = |e: sqlx::Error| StoreError {
                backend: "postgres",
                reason: describe(&e),
            };
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(CONNECT_TIMEOUT)
                .connect(url)
                .await
                .map_err(err)?;
            Ok(Store::Postgres(pool))
        } else {
            let err = |e: sqlx::Error| StoreError {
                backend: "sqlite",
                reason: describe(&e),
            };
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(err)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT);
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .acquire_timeout(CONNECT_TIMEOUT)
                .connect_with(opts)
                .await
                .map_err(err)?;
            Ok(Store::Sqlite(pool))
        }
    }

    /// True when the store answers a trivial query within [`PING_TIMEOUT`].
    pub async fn ping(&self) -> bool {
        let q = async {
            match self {
                Store::Sqlite(p) => sqlx::query("SELECT 1").execute(p).await.is_ok(),
                Store::Postgres(p) => sqlx::query("SELECT 1").execute(p).await.is_ok(),
            }
        };
        tokio::time::timeout(PING_TIMEOUT, q).await.unwrap_or(false)
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    pub async fn close(&self) {
        match self {
            Store::Sqlite(p) => p.close().await,
            Store::Postgres(p) => p.close().await,
        }
    }
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
        let Store::Sqlite(pool) = &store else {
            panic!("not sqlite")
        };
        let mode: (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(mode.0, "wal");
        store.close().await;
    }

    #[tokio::test]
    async fn postgres_on_this_machine_is_reachable() {
        // The machine runs PostgreSQL on 127.0.0.1:5432 (trust auth, database `test`).
        match Store::connect("postgres://postgres@127.0.0.1:5432/test").await {
            Ok(store) => assert!(store.ping().await),
            // CI always has it; a user's machine may not.
            Err(e) if std::env::var_os("CI").is_none() => {
                eprintln!("notice: PostgreSQL not reachable here ({e}); skipped");
            }
            Err(e) => panic!("PostgreSQL must be reachable in CI: {e}"),
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
