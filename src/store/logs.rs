//! The request log: one row per admitted request (`usage_records`), searched by time, key,
//! team, model, provider, status, tag and error text, newest first, a page at a time.
//!
//! Pages are keyset-paginated on `(created_at, request_id)`: the cursor is the last row's
//! pair, so a page costs the same however deep it is, and rows written meanwhile never shift
//! a page. The statement holds only the filters given, so each can use its index
//! (`usage_records_created`, `usage_records_key`, `usage_tags_tag`).

use serde_json::{Value, json};
use sqlx::Row;

use super::{Store, StoreError, on_store, sql};

/// What a page of the log is filtered by. Times are Unix seconds; `until` is exclusive.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub since: i64,
    pub until: Option<i64>,
    pub key_id: Option<String>,
    pub team: Option<String>,
    /// The user the key belongs to (`user_name`, as the usage report groups by).
    pub user: Option<String>,
    pub project: Option<String>,
    /// The model asked for or the one that served.
    pub model: Option<String>,
    pub provider: Option<String>,
    /// `ok`, `error` or `cancelled`.
    pub status: Option<String>,
    /// What kind of failure (`upstream_rejected`, `rate_limited`, ...).
    pub error_class: Option<String>,
    pub tag: Option<String>,
    /// Text the error message contains.
    pub error_text: Option<String>,
    /// After this row (the previous page's last): `(created_at, request_id)`.
    pub after: Option<(i64, String)>,
    /// This request only.
    pub request_id: Option<String>,
    pub limit: u32,
}

/// The most rows a page holds.
pub const MAX_PAGE: u32 = 1_000;

/// Below this many records, a tag's rows drive its page (see `Store::logs`).
const RARE_TAG: i64 = 5_000;

const COLUMNS: &str = "u.request_id, u.created_at, u.key_id, u.key_name, u.user_name, u.team, \
    u.project, u.end_user, u.client_schema, u.requested_model, u.route, u.fallback, u.attempts, \
    u.provider, u.model, u.status, u.http_status, u.error_class, u.error, u.latency_ms, \
    u.ttft_ms, u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens, \
    u.reasoning_tokens, u.cost_nanos, u.cache_hit, u.warnings, u.mirror_of";

/// A value bound to the statement.
enum Bind {
    Int(i64),
    Text(String),
}

impl Store {
    /// One page of the log, newest first, and the cursor of the next page (`None` at the end).
    pub async fn logs(
        &self,
        f: &LogFilter,
    ) -> Result<(Vec<Value>, Option<(i64, String)>), StoreError> {
        self.bounded(async {
            let mut clauses = vec!["u.created_at >= $1".to_owned()];
            let mut binds = vec![Bind::Int(f.since)];
            let mut add = |clause: &str, b: Bind| {
                binds.push(b);
                clauses.push(clause.replace('?', &format!("${}", binds.len())));
            };
            if let Some(u) = f.until {
                add("u.created_at < ?", Bind::Int(u));
            }
            if let Some(id) = &f.request_id {
                add("u.request_id = ?", Bind::Text(id.clone()));
            }
            if let Some(k) = &f.key_id {
                add("u.key_id = ?", Bind::Text(k.clone()));
            }
            if let Some(t) = &f.team {
                add("u.team = ?", Bind::Text(t.clone()));
            }
            if let Some(u) = &f.user {
                add("u.user_name = ?", Bind::Text(u.clone()));
            }
            if let Some(p) = &f.project {
                add("u.project = ?", Bind::Text(p.clone()));
            }
            if let Some(c) = &f.error_class {
                add("u.error_class = ?", Bind::Text(c.clone()));
            }
            if let Some(m) = &f.model {
                add(
                    "(u.model = ? OR u.requested_model = ?)",
                    Bind::Text(m.clone()),
                );
            }
            if let Some(p) = &f.provider {
                add("u.provider = ?", Bind::Text(p.clone()));
            }
            if let Some(s) = &f.status {
                add("u.status = ?", Bind::Text(s.clone()));
            }
            if let Some(t) = &f.tag {
                let clause = match self {
                    // SQLite picks one plan for every tag: driven by the tag's rows (quick for a
                    // rare tag, a sort of them all for a common one) or a newest-first walk of
                    // the time index checking each row (quick for a common tag, a scan of the
                    // window for a rare one). So: count the tag's rows, up to a cap, and choose.
                    Store::Sqlite(..) if self.tag_is_rare(t).await? => {
                        "u.request_id IN (SELECT request_id FROM usage_tags WHERE tag = ?)"
                    }
                    Store::Sqlite(..) => {
                        "(SELECT 1 FROM usage_tags t WHERE t.request_id = u.request_id AND t.tag = ?) IS NOT NULL"
                    }
                    Store::Postgres(_) => {
                        "EXISTS (SELECT 1 FROM usage_tags t WHERE t.request_id = u.request_id AND t.tag = ?)"
                    }
                };
                add(clause, Bind::Text(t.clone()));
            }
            if let Some(q) = &f.error_text {
                // LIKE's wildcards in the text are matched as themselves.
                let escaped = q
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_");
                add(
                    "u.error LIKE ? ESCAPE '\\'",
                    Bind::Text(format!("%{escaped}%")),
                );
            }
            if let Some((at, id)) = &f.after {
                binds.push(Bind::Int(*at));
                let n = binds.len();
                binds.push(Bind::Text(id.clone()));
                clauses.push(format!(
                    "(u.created_at < ${n} OR (u.created_at = ${n} AND u.request_id < ${}))",
                    n + 1
                ));
            }
            let limit = f.limit.clamp(1, MAX_PAGE);
            let text = format!(
                "SELECT {COLUMNS} FROM usage_records u WHERE {} \
                 ORDER BY u.created_at DESC, u.request_id DESC LIMIT {}",
                clauses.join(" AND "),
                limit + 1
            );
            let q = sql(self, &text);
            let rows: Result<Vec<Value>, sqlx::Error> = on_store!(self, pool => async {
                let mut query = sqlx::query(&q);
                for b in &binds {
                    query = match b {
                        Bind::Int(i) => query.bind(*i),
                        Bind::Text(t) => query.bind(t.as_str()),
                    };
                }
                let rows = query.fetch_all(pool).await?;
                rows.iter().map(row_json).collect()
            }.await);
            let mut rows = rows.map_err(|e| self.error(&e))?;
            let next = if rows.len() > limit as usize {
                rows.truncate(limit as usize);
                rows.last().map(|r| {
                    (
                        r["created_at"].as_i64().unwrap_or(0),
                        r["request_id"].as_str().unwrap_or_default().to_owned(),
                    )
                })
            } else {
                None
            };
            self.attach_tags(&mut rows).await?;
            Ok((rows, next))
        })
        .await
    }

    /// Fewer than [`RARE_TAG`] records carry `tag` (read through the tag index, stopping
    /// at the cap).
    async fn tag_is_rare(&self, tag: &str) -> Result<bool, StoreError> {
        let q = sql(
            self,
            "SELECT COUNT(*) FROM (SELECT 1 FROM usage_tags WHERE tag = $1 LIMIT $2)",
        );
        let n: Result<i64, sqlx::Error> = on_store!(self, pool => sqlx::query_scalar(&q)
            .bind(tag)
            .bind(RARE_TAG)
            .fetch_one(pool)
            .await);
        Ok(n.map_err(|e| self.error(&e))? < RARE_TAG)
    }

    /// Each row's tags, read in one statement for the page.
    async fn attach_tags(&self, rows: &mut [Value]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = rows
            .iter()
            .filter_map(|r| r["request_id"].as_str().map(str::to_owned))
            .collect();
        let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let text = format!(
            "SELECT request_id, tag FROM usage_tags WHERE request_id IN ({}) ORDER BY tag",
            marks.join(", ")
        );
        let q = sql(self, &text);
        let pairs: Result<Vec<(String, String)>, sqlx::Error> = on_store!(self, pool => async {
            let mut query = sqlx::query(&q);
            for id in &ids {
                query = query.bind(id.as_str());
            }
            let rows = query.fetch_all(pool).await?;
            rows.iter()
                .map(|r| Ok((r.try_get("request_id")?, r.try_get("tag")?)))
                .collect()
        }.await);
        let pairs = pairs.map_err(|e| self.error(&e))?;
        for r in rows.iter_mut() {
            let id = r["request_id"].as_str().unwrap_or_default().to_owned();
            let tags: Vec<&str> = pairs
                .iter()
                .filter(|(i, _)| *i == id)
                .map(|(_, t)| t.as_str())
                .collect();
            r["tags"] = json!(tags);
        }
        Ok(())
    }
}

/// How many records a retention batch deletes: small enough that a batch holds SQLite's
/// write lock (or Postgres row locks) for a few milliseconds, so writes never wait long.
pub const PURGE_BATCH: i64 = 1_000;

impl Store {
    /// Delete request records (with their tags) and stored responses created before
    /// `before`, [`PURGE_BATCH`] at a time, pausing between batches so that writers go first.
    /// Returns how many records were deleted.
    pub async fn purge_before(&self, before: i64) -> Result<u64, StoreError> {
        // Each batch is one bounded call: a long purge goes on batch by batch.
        let mut total = 0;
        loop {
            let n = self.bounded(self.purge_batch(before)).await?;
            total += n;
            if n < PURGE_BATCH as u64 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let q = sql(
            self,
            "DELETE FROM responses WHERE id IN (SELECT id FROM responses WHERE created_at < $1 LIMIT $2)",
        );
        loop {
            let n = self
                .bounded(async {
                    let _one = match self {
                        Store::Sqlite(..) => Some(super::sqlite_write_lock().await),
                        Store::Postgres(_) => None,
                    };
                    let n: Result<u64, sqlx::Error> = on_store!(self, pool => sqlx::query(&q)
                        .bind(before)
                        .bind(PURGE_BATCH)
                        .execute(pool)
                        .await
                        .map(|r| r.rows_affected()));
                    n.map_err(|e| self.error(&e))
                })
                .await?;
            if n < PURGE_BATCH as u64 {
                break;
            }
        }
        Ok(total)
    }

    /// One batch: the oldest records before `before`, and their tags, in one transaction.
    async fn purge_batch(&self, before: i64) -> Result<u64, StoreError> {
        let ids = sql(
            self,
            "SELECT request_id FROM usage_records WHERE created_at < $1 ORDER BY created_at LIMIT $2",
        );
        let _one = match self {
            Store::Sqlite(..) => Some(super::sqlite_write_lock().await),
            Store::Postgres(_) => None,
        };
        let n: Result<u64, sqlx::Error> = on_store!(self, pool => async {
            let mut tx = pool.begin().await?;
            let ids: Vec<String> = sqlx::query_scalar(&ids)
                .bind(before)
                .bind(PURGE_BATCH)
                .fetch_all(&mut *tx)
                .await?;
            if ids.is_empty() {
                return Ok(0);
            }
            let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
            let list = marks.join(", ");
            for table in ["usage_tags", "request_bodies", "usage_records"] {
                let raw = format!("DELETE FROM {table} WHERE request_id IN ({list})");
                let text = sql(self, &raw);
                let mut q = sqlx::query(&text);
                for id in &ids {
                    q = q.bind(id.as_str());
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(ids.len() as u64)
        }.await);
        n.map_err(|e| self.error(&e))
    }
}

/// A row as the API shows it.
fn row_json<R: Row>(r: &R) -> Result<Value, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i32: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let text = |c: &str| -> Result<Value, sqlx::Error> {
        Ok(r.try_get::<Option<String>, _>(c)?
            .map_or(Value::Null, Value::String))
    };
    let int = |c: &str| -> Result<Value, sqlx::Error> {
        Ok(r.try_get::<Option<i64>, _>(c)?
            .map_or(Value::Null, |v| json!(v)))
    };
    let attempts = r
        .try_get::<Option<String>, _>("attempts")?
        .and_then(|a| serde_json::from_str::<Value>(&a).ok())
        .unwrap_or(Value::Null);
    let cost = r.try_get::<i64, _>("cost_nanos")?;
    Ok(json!({
        "request_id": text("request_id")?,
        "created_at": int("created_at")?,
        "key_id": text("key_id")?,
        "key_name": text("key_name")?,
        "user": text("user_name")?,
        "team": text("team")?,
        "project": text("project")?,
        "end_user": text("end_user")?,
        "client_schema": text("client_schema")?,
        "requested_model": text("requested_model")?,
        "route": text("route")?,
        "fallback": r.try_get::<i32, _>("fallback")? != 0,
        "attempts": attempts,
        "provider": text("provider")?,
        "model": text("model")?,
        "status": text("status")?,
        "http_status": r.try_get::<Option<i32>, _>("http_status")?,
        "error_class": text("error_class")?,
        "error": text("error")?,
        "latency_ms": int("latency_ms")?,
        "ttft_ms": int("ttft_ms")?,
        "tokens": {
            "input": int("input_tokens")?,
            "output": int("output_tokens")?,
            "cache_read": int("cache_read_tokens")?,
            "cache_write": int("cache_write_tokens")?,
            "reasoning": int("reasoning_tokens")?,
        },
        "cost_usd": cost as f64 / crate::config::NANOS_PER_USD,
        "cache_hit": r.try_get::<i32, _>("cache_hit")? != 0,
        "warnings": text("warnings")?,
        "mirror_of": text("mirror_of")?,
    }))
}

const CSV_COLUMNS: &[&str] = &[
    "request_id",
    "created_at",
    "key_id",
    "key_name",
    "user",
    "team",
    "project",
    "client_schema",
    "requested_model",
    "route",
    "fallback",
    "provider",
    "model",
    "status",
    "http_status",
    "error_class",
    "error",
    "latency_ms",
    "ttft_ms",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_usd",
    "cache_hit",
    "tags",
];

/// RFC 4180: a header line, then one line per row; fields with a comma, quote or line break
/// are quoted, quotes doubled.
pub fn to_csv(rows: &[Value]) -> String {
    let field = |v: &Value| -> String {
        let s = match v {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            Value::Array(a) => a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(";"),
            other => other.to_string(),
        };
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s
        }
    };
    let mut out = CSV_COLUMNS.join(",");
    out.push_str("\r\n");
    for r in rows {
        let line: Vec<String> = CSV_COLUMNS
            .iter()
            .map(|c| {
                let v = match *c {
                    "input_tokens" => &r["tokens"]["input"],
                    "output_tokens" => &r["tokens"]["output"],
                    "cache_read_tokens" => &r["tokens"]["cache_read"],
                    "cache_write_tokens" => &r["tokens"]["cache_write"],
                    "reasoning_tokens" => &r["tokens"]["reasoning"],
                    other => &r[other],
                };
                field(v)
            })
            .collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}
