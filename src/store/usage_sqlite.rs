//! Writing batches of usage records to SQLite: on a connection of the writer's own, through
//! rusqlite, on a blocking thread.
//!
//! The rest of the SQLite store goes through sqlx, whose statements run on a worker thread
//! of the connection's: each value is first copied into sqlx's argument list, then bound,
//! and every parameter is cleared after each statement. For the request log, the one write
//! every request makes, that machinery cost about as much as SQLite's own work of storing
//! the row (bench/RESULTS.md, session 15). Here values are bound straight from the records.
//!
//! Records, tags and roll-up rows go as multi-row `INSERT`s, in chunks of fixed sizes
//! ([`CHUNKS`]): a few statement texts, each prepared once and cached by the connection,
//! serve every batch length, and SQLite stores 64 rows of one statement for about half of
//! what 64 single-row statements cost it (each statement is a sub-transaction of its own,
//! and its cursors seek from the root).
//!
//! The connection is opened after sqlx's pool has migrated the database, with the same busy
//! timeout and synchronous mode. An in-memory store is a `memdb` database with a name of its
//! own, which both sqlx's connection and this one open ([`memory_name`]).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rusqlite::{CachedStatement, Connection, OpenFlags, ToSql, TransactionBehavior};

use super::usage::{UsageRecord, to_i64};

/// The `memdb` name of the in-memory database of a new store: shared by the connections of
/// this process that open it by this name, private to the store.
pub fn memory_name() -> String {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("/gatehouse-{}-{n}", std::process::id())
}

/// Rows per statement, largest first. A batch of `n` rows takes `n / 64` statements of 64
/// and at most 3 each of the smaller sizes. 64 rows of the 32 record columns are 2,048
/// parameters, far below SQLite's limit (32,766).
const CHUNKS: [usize; 4] = [64, 16, 4, 1];

/// `head VALUES (?, ...), ... tail` with `rows` groups of `cols` parameters.
fn values_sql(head: &str, cols: usize, rows: usize, tail: &str) -> String {
    let group = format!("({})", vec!["?"; cols].join(", "));
    format!("{head} VALUES {} {tail}", vec![group; rows].join(", "))
}

/// The statement texts of one table, one per chunk size, built the first time.
struct Texts {
    head: &'static str,
    cols: usize,
    tail: &'static str,
    built: OnceLock<[String; CHUNKS.len()]>,
}

impl Texts {
    const fn new(head: &'static str, cols: usize, tail: &'static str) -> Self {
        Self {
            head,
            cols,
            tail,
            built: OnceLock::new(),
        }
    }

    /// The text for chunks of `CHUNKS[size]` rows.
    fn get(&self, size: usize) -> &str {
        let built = self
            .built
            .get_or_init(|| CHUNKS.map(|n| values_sql(self.head, self.cols, n, self.tail)));
        &built[size]
    }
}

/// `items` cut into runs of the sizes in [`CHUNKS`], largest first, each with the index of
/// its size.
fn chunks<T>(mut items: &[T]) -> impl Iterator<Item = (usize, &[T])> {
    std::iter::from_fn(move || {
        let size = CHUNKS.iter().position(|&n| n <= items.len())?;
        let (head, rest) = items.split_at(CHUNKS[size]);
        items = rest;
        Some((size, head))
    })
}

static RECORDS: Texts = Texts::new(
    "INSERT INTO usage_records (request_id, created_at, key_id, key_name, user_name, team, \
     project, end_user, provider, model, requested_model, input_tokens, output_tokens, \
     cache_read_tokens, cache_write_tokens, cost_nanos, status, route, fallback, attempts, \
     latency_ms, mirror_of, mirror_route, output, client_schema, http_status, error_class, \
     error, ttft_ms, reasoning_tokens, warnings, cache_hit)",
    32,
    "ON CONFLICT (request_id) DO NOTHING",
);

static TAGS: Texts = Texts::new(
    "INSERT INTO usage_tags (request_id, tag)",
    2,
    "ON CONFLICT DO NOTHING",
);

static ROLLUP: Texts = Texts::new(super::rollup::UPSERT_HEAD, 7, super::rollup::UPSERT_TAIL);

/// The bodies' insert with SQLite's placeholders.
fn bodies() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| super::bodies::INSERT.replace('$', "?"))
}

/// Binds a statement's parameters in order.
struct Binder<'s, 'c> {
    stmt: &'s mut CachedStatement<'c>,
    next: usize,
}

impl<'s, 'c> Binder<'s, 'c> {
    fn new(stmt: &'s mut CachedStatement<'c>) -> Self {
        Self { stmt, next: 1 }
    }

    fn bind<T: ToSql>(&mut self, value: T) -> rusqlite::Result<&mut Self> {
        self.stmt.raw_bind_parameter(self.next, value)?;
        self.next += 1;
        Ok(self)
    }
}

/// How [`insert_records`] writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pace {
    /// In chunks; gives up (`None`) if any record of a chunk was stored already, since a
    /// multi-row statement tells how many rows it wrote but not which.
    Chunks,
    /// A record a statement: slower, but knows which records it wrote.
    OneByOne,
}

/// The request log's SQLite connection. Batches take [`super::sqlite_write_lock`] before
/// they write, so the lock here is never waited on.
#[derive(Clone, Debug)]
pub struct LogWriter {
    conn: Arc<Mutex<Connection>>,
}

impl LogWriter {
    /// Open the database file at `path`, or with `memdb` the in-memory database of that
    /// name (which must be open already, or it would be a new, empty one).
    pub fn open(path: &std::path::Path, memdb: bool, busy: Duration) -> rusqlite::Result<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = if memdb {
            Connection::open_with_flags_and_vfs(path, flags, "memdb")?
        } else {
            Connection::open_with_flags(path, flags)?
        };
        conn.busy_timeout(busy)?;
        // Four chunk sizes each of records, tags and roll-ups, and the bodies' insert.
        conn.set_prepared_statement_cache_capacity(32);
        // Per connection: as the pool's (WAL on a file, where NORMAL syncs at checkpoints).
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        if memdb {
            conn.pragma_update(None, "journal_mode", "MEMORY")?;
        }
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Write `records` in one transaction on a blocking thread, and give them back. A
    /// record already stored is left as it is, and neither its tags, bodies nor roll-ups
    /// are written again.
    pub async fn write(&self, records: &mut Vec<UsageRecord>) -> Result<(), String> {
        let batch = std::mem::take(records);
        let conn = Arc::clone(&self.conn);
        let done = tokio::task::spawn_blocking(move || {
            // After a panic mid-batch the connection is still sound (its transaction rolled
            // back when dropped), so a poisoned lock is taken over rather than refused.
            let mut c = conn
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let result = write_batch(&mut c, &batch).map_err(|e| e.to_string());
            drop(c);
            (batch, result)
        })
        .await;
        match done {
            Ok((batch, result)) => {
                *records = batch;
                result
            }
            // The batch went with the thread (a panic: a bug); its transaction was rolled
            // back, so its records are lost, and said so.
            Err(e) => Err(format!(
                "the request log's writer failed ({e}); its batch is lost"
            )),
        }
    }
}

fn write_batch(conn: &mut Connection, records: &[UsageRecord]) -> rusqlite::Result<()> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let written = match insert_records(&tx, records, Pace::Chunks)? {
        Some(w) => w,
        // A batch retried after its commit failed, or records written by another process:
        // write it again a record at a time to learn which are new.
        None => {
            tx.rollback()?;
            tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            insert_records(&tx, records, Pace::OneByOne)?.unwrap_or_default()
        }
    };
    insert_tags(&tx, &written)?;
    insert_bodies(&tx, &written)?;
    add_rollups(&tx, &written)?;
    tx.commit()
}

/// Insert `records` (those already stored are left alone); the records this wrote. `None`
/// when [`Pace::Chunks`] met a record stored already.
fn insert_records<'r>(
    conn: &Connection,
    records: &'r [UsageRecord],
    pace: Pace,
) -> rusqlite::Result<Option<Vec<&'r UsageRecord>>> {
    let mut written = Vec::with_capacity(records.len());
    let runs: Box<dyn Iterator<Item = (usize, &[UsageRecord])>> = match pace {
        Pace::Chunks => Box::new(chunks(records)),
        Pace::OneByOne => Box::new(records.chunks(1).map(|one| (CHUNKS.len() - 1, one))),
    };
    for (size, chunk) in runs {
        let mut stmt = conn.prepare_cached(RECORDS.get(size))?;
        let mut b = Binder::new(&mut stmt);
        for r in chunk {
            b.bind(&r.request_id)?
                .bind(r.created_at)?
                .bind(&r.key_id)?
                .bind(&r.key_name)?
                .bind(&r.user)?
                .bind(&r.team)?
                .bind(&r.project)?
                .bind(&r.end_user)?
                .bind(&r.provider)?
                .bind(&r.model)?
                .bind(&r.requested_model)?
                .bind(to_i64(r.input_tokens))?
                .bind(to_i64(r.output_tokens))?
                .bind(to_i64(r.cache_read_tokens))?
                .bind(to_i64(r.cache_write_tokens))?
                .bind(to_i64(r.cost_nanos))?
                .bind(r.status)?
                .bind(&r.route)?
                .bind(r.fallback)?
                .bind(&r.attempts)?
                .bind(r.latency_ms.map(to_i64))?
                .bind(&r.mirror_of)?
                .bind(&r.mirror_route)?
                .bind(&r.output)?
                .bind(r.client_schema)?
                .bind(r.http_status)?
                .bind(r.error_class)?
                .bind(&r.error)?
                .bind(r.ttft_ms.map(to_i64))?
                .bind(to_i64(r.reasoning_tokens))?
                .bind(&r.warnings)?
                .bind(r.cache_hit)?;
        }
        let stored = stmt.raw_execute()?;
        if stored == chunk.len() {
            written.extend(chunk);
        } else if pace == Pace::Chunks {
            return Ok(None);
        }
    }
    Ok(Some(written))
}

fn insert_tags(conn: &Connection, written: &[&UsageRecord]) -> rusqlite::Result<()> {
    let tags: Vec<(&str, &str)> = written
        .iter()
        .flat_map(|r| r.tags.iter().map(|t| (r.request_id.as_str(), t.as_str())))
        .collect();
    for (size, chunk) in chunks(&tags) {
        let mut stmt = conn.prepare_cached(TAGS.get(size))?;
        let mut b = Binder::new(&mut stmt);
        for (id, tag) in chunk {
            b.bind(id)?.bind(tag)?;
        }
        stmt.raw_execute()?;
    }
    Ok(())
}

fn insert_bodies(conn: &Connection, written: &[&UsageRecord]) -> rusqlite::Result<()> {
    for r in written {
        let Some(body) = r.bodies.as_deref() else {
            continue;
        };
        let mut stmt = conn.prepare_cached(bodies())?;
        let mut b = Binder::new(&mut stmt);
        b.bind(&r.request_id)?
            .bind(r.created_at)?
            .bind(&body.provider)?;
        for (_, kept) in body.parts() {
            let (text, bytes) = super::bodies::columns(kept);
            b.bind(text)?.bind(bytes)?;
        }
        b.bind(body.truncated())?;
        stmt.raw_execute()?;
    }
    Ok(())
}

/// Add the roll-up rows of the records written.
fn add_rollups(conn: &Connection, written: &[&UsageRecord]) -> rusqlite::Result<()> {
    let sums: Vec<_> = super::rollup::sums(written.iter().copied())
        .into_iter()
        .collect();
    for (size, chunk) in chunks(&sums) {
        let mut stmt = conn.prepare_cached(ROLLUP.get(size))?;
        let mut b = Binder::new(&mut stmt);
        for ((dim, value, day), [n, i, o, c]) in chunk {
            b.bind(dim)?
                .bind(value.as_ref())?
                .bind(day)?
                .bind(n)?
                .bind(i)?
                .bind(o)?
                .bind(c)?;
        }
        stmt.raw_execute()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_length_in_few_statements() {
        for len in 0..300 {
            let items: Vec<usize> = (0..len).collect();
            let parts: Vec<(usize, &[usize])> = chunks(&items).collect();
            let joined: Vec<usize> = parts.iter().flat_map(|(_, p)| p.iter().copied()).collect();
            assert_eq!(joined, items, "len {len}");
            assert!(parts.iter().all(|(size, p)| CHUNKS[*size] == p.len()));
            assert!(parts.len() <= len / 64 + 9, "len {len}: {}", parts.len());
        }
    }

    #[test]
    fn statements_have_a_parameter_a_column() {
        let s = values_sql("INSERT INTO t (a, b)", 2, 3, "ON CONFLICT DO NOTHING");
        assert_eq!(
            s,
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?) ON CONFLICT DO NOTHING"
        );
        assert_eq!(RECORDS.get(0).matches('?').count(), 64 * 32);
    }
}
