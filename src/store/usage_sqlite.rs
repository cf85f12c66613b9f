//! Writing a batch of usage records to SQLite in as few statements as it takes.
//!
//! sqlx runs each SQLite statement on the connection's worker thread and hands the result
//! back through a channel: every statement costs two thread wake-ups. One statement a record
//! made those switches the largest cost of a logged request under load (a fifth of the
//! gateway's core at 64 connections). So records, tags and roll-up rows go as multi-row
//! `INSERT`s, in chunks of fixed sizes ([`CHUNKS`]): a few statement texts, each prepared
//! once and kept in the connection's statement cache, serve every batch length. Their
//! parameters are anonymous `?`s, which sqlx binds in order; numbered ones (`?12`) it
//! resolves by name, a cost that grows with the square of a statement's parameters.

use std::sync::OnceLock;

use sqlx::{Sqlite, Transaction};

use super::usage::{UsageRecord, to_i64};

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

/// How [`insert_records`] writes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// In chunks; gives up (`None`) if any record of a chunk was stored already, since a
    /// multi-row statement tells how many rows it wrote but not which. (`RETURNING` would,
    /// at the cost of a message from the worker thread a row.)
    Chunks,
    /// A record a statement: slower, but knows which records it wrote.
    OneByOne,
}

/// Insert `records` (those already stored are left alone) and their tags; the records this
/// wrote, to be rolled up. `None` when [`Pace::Chunks`] met a record stored already (a
/// batch retried after its commit failed): roll back and write it [`Pace::OneByOne`].
pub async fn insert_records<'r>(
    tx: &mut Transaction<'_, Sqlite>,
    records: &'r [UsageRecord],
    pace: Pace,
) -> Result<Option<Vec<&'r UsageRecord>>, sqlx::Error> {
    let mut written = Vec::with_capacity(records.len());
    let runs: Box<dyn Iterator<Item = (usize, &[UsageRecord])> + Send> = match pace {
        Pace::Chunks => Box::new(chunks(records)),
        Pace::OneByOne => Box::new(records.chunks(1).map(|one| (CHUNKS.len() - 1, one))),
    };
    for (size, chunk) in runs {
        let mut q = sqlx::query(RECORDS.get(size));
        for r in chunk {
            q = q
                .bind(&r.request_id)
                .bind(r.created_at)
                .bind(&r.key_id)
                .bind(&r.key_name)
                .bind(&r.user)
                .bind(&r.team)
                .bind(&r.project)
                .bind(&r.end_user)
                .bind(&r.provider)
                .bind(&r.model)
                .bind(&r.requested_model)
                .bind(to_i64(r.input_tokens))
                .bind(to_i64(r.output_tokens))
                .bind(to_i64(r.cache_read_tokens))
                .bind(to_i64(r.cache_write_tokens))
                .bind(to_i64(r.cost_nanos))
                .bind(r.status)
                .bind(&r.route)
                .bind(i64::from(r.fallback))
                .bind(&r.attempts)
                .bind(r.latency_ms.map(to_i64))
                .bind(&r.mirror_of)
                .bind(&r.mirror_route)
                .bind(&r.output)
                .bind(r.client_schema)
                .bind(i64::from(r.http_status))
                .bind(r.error_class)
                .bind(&r.error)
                .bind(r.ttft_ms.map(to_i64))
                .bind(to_i64(r.reasoning_tokens))
                .bind(&r.warnings)
                .bind(i64::from(r.cache_hit));
        }
        let stored = q.execute(&mut **tx).await?.rows_affected();
        if stored == chunk.len() as u64 {
            written.extend(chunk);
        } else if pace == Pace::Chunks {
            return Ok(None);
        }
    }
    let tags: Vec<(&str, &str)> = records
        .iter()
        .flat_map(|r| r.tags.iter().map(|t| (r.request_id.as_str(), t.as_str())))
        .collect();
    for (size, chunk) in chunks(&tags) {
        let mut q = sqlx::query(TAGS.get(size));
        for (id, tag) in chunk {
            q = q.bind(*id).bind(*tag);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(Some(written))
}

/// Add the roll-up rows of the records written.
pub async fn add_rollups(
    tx: &mut Transaction<'_, Sqlite>,
    written: &[&UsageRecord],
) -> Result<(), sqlx::Error> {
    let sums: Vec<_> = super::rollup::sums(written.iter().copied())
        .into_iter()
        .collect();
    for (size, chunk) in chunks(&sums) {
        let mut q = sqlx::query(ROLLUP.get(size));
        for ((dim, value, day), [n, i, o, c]) in chunk {
            q = q
                .bind(*dim)
                .bind(value.as_ref())
                .bind(*day)
                .bind(*n)
                .bind(*i)
                .bind(*o)
                .bind(*c);
        }
        q.execute(&mut **tx).await?;
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
