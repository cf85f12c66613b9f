//! Usage records: one row per admitted request with its tokens and cost, written in batches
//! by the usage writer (never on the request path), and the reports read from them
//! (`gatehouse usage`, `GET /v1/usage`, the admin API).

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, on_store, sql};

/// One request's usage, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsageRecord {
    pub request_id: String,
    /// Unix seconds when the request was admitted.
    pub created_at: i64,
    pub key_id: Option<String>,
    pub key_name: Option<String>,
    pub user: Option<String>,
    pub team: Option<String>,
    pub project: Option<String>,
    /// `x-gatehouse-user`: the end user the caller names, for attribution only.
    pub end_user: Option<String>,
    /// What served (`None` when nothing did).
    pub provider: Option<String>,
    pub model: Option<String>,
    pub requested_model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub cost_nanos: u64,
    /// `ok`, `error` or `cancelled`.
    pub status: &'static str,
    /// `name=value` tags from `x-gatehouse-tags`.
    pub tags: Vec<String>,
    /// The routing rule that served (its name).
    pub route: Option<String>,
    /// Served, but not by the route's first choice.
    pub fallback: bool,
    /// Every attempt, as JSON.
    pub attempts: Option<String>,
    /// Milliseconds from admission to the end of the reply.
    pub latency_ms: Option<u64>,
    /// A mirror's shadow request: the primary's id, and the rule that mirrored it.
    pub mirror_of: Option<String>,
    pub mirror_route: Option<String>,
    /// Reply text, kept for a mirrored request and its shadow.
    pub output: Option<String>,
    /// The client's schema: `chat`, `messages`, `responses`, `gemini`, `embeddings`.
    pub client_schema: &'static str,
    /// The HTTP status the client got; 0 when it left before the reply.
    pub http_status: u16,
    /// Why the request failed: the error's code (`upstream_failed`...) and message.
    pub error_class: Option<&'static str>,
    pub error: Option<String>,
    /// Milliseconds from admission to the reply's first byte.
    pub ttft_ms: Option<u64>,
    pub reasoning_tokens: u64,
    /// Translation notes (`x-gatehouse-warnings`).
    pub warnings: Option<String>,
    /// A response cache answered.
    pub cache_hit: bool,
    /// The bodies kept of the request (`log_bodies`), written to `request_bodies`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bodies: Option<Box<crate::bodies::BodyRecord>>,
}

/// How a report groups usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    Key,
    Team,
    User,
    Project,
    Model,
    Provider,
    Tag,
    Day,
}

impl GroupBy {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "key" => Self::Key,
            "team" => Self::Team,
            "user" => Self::User,
            "project" => Self::Project,
            "model" => Self::Model,
            "provider" => Self::Provider,
            "tag" => Self::Tag,
            "day" => Self::Day,
            _ => return None,
        })
    }

    /// The grouping expression: a fixed identifier per variant, never user input.
    fn expr(self) -> &'static str {
        match self {
            Self::Key => "COALESCE(u.key_name, u.key_id, '-')",
            Self::Team => "COALESCE(u.team, '-')",
            Self::User => "COALESCE(u.user_name, '-')",
            Self::Project => "COALESCE(u.project, '-')",
            Self::Model => "COALESCE(u.model, u.requested_model)",
            Self::Provider => "COALESCE(u.provider, '-')",
            Self::Tag => "t.tag",
            // Integer division: the UTC day's first second.
            Self::Day => "(u.created_at / 86400) * 86400",
        }
    }
}

/// One line of a report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReportRow {
    pub group: String,
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_nanos: u64,
}

/// Only rows matching every set field are counted.
#[derive(Debug, Clone, Default)]
pub struct UsageFilter {
    pub since: i64,
    pub until: Option<i64>,
    pub key_id: Option<String>,
    pub team: Option<String>,
}

/// A record as the insert statements read it from the batch's JSON.
#[derive(Serialize)]
struct JsonRow<'a> {
    request_id: &'a str,
    created_at: i64,
    key_id: Option<&'a str>,
    key_name: Option<&'a str>,
    user_name: Option<&'a str>,
    team: Option<&'a str>,
    project: Option<&'a str>,
    end_user: Option<&'a str>,
    provider: Option<&'a str>,
    model: Option<&'a str>,
    requested_model: &'a str,
    input_tokens: i64,
    output_tokens: i64,
    cache_read_tokens: i64,
    cache_write_tokens: i64,
    cost_nanos: i64,
    status: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    tags: &'a [String],
    route: Option<&'a str>,
    fallback: i64,
    attempts: Option<&'a str>,
    latency_ms: Option<i64>,
    mirror_of: Option<&'a str>,
    mirror_route: Option<&'a str>,
    output: Option<&'a str>,
    client_schema: &'a str,
    http_status: i64,
    error_class: Option<&'a str>,
    error: Option<&'a str>,
    ttft_ms: Option<i64>,
    reasoning_tokens: i64,
    warnings: Option<&'a str>,
    cache_hit: i64,
}

impl<'a> From<&'a UsageRecord> for JsonRow<'a> {
    fn from(r: &'a UsageRecord) -> Self {
        Self {
            request_id: &r.request_id,
            created_at: r.created_at,
            key_id: r.key_id.as_deref(),
            key_name: r.key_name.as_deref(),
            user_name: r.user.as_deref(),
            team: r.team.as_deref(),
            project: r.project.as_deref(),
            end_user: r.end_user.as_deref(),
            provider: r.provider.as_deref(),
            model: r.model.as_deref(),
            requested_model: &r.requested_model,
            input_tokens: to_i64(r.input_tokens),
            output_tokens: to_i64(r.output_tokens),
            cache_read_tokens: to_i64(r.cache_read_tokens),
            cache_write_tokens: to_i64(r.cache_write_tokens),
            cost_nanos: to_i64(r.cost_nanos),
            status: r.status,
            tags: &r.tags,
            route: r.route.as_deref(),
            fallback: i64::from(r.fallback),
            attempts: r.attempts.as_deref(),
            latency_ms: r.latency_ms.map(to_i64),
            mirror_of: r.mirror_of.as_deref(),
            mirror_route: r.mirror_route.as_deref(),
            output: r.output.as_deref(),
            client_schema: r.client_schema,
            http_status: i64::from(r.http_status),
            error_class: r.error_class,
            error: r.error.as_deref(),
            ttft_ms: r.ttft_ms.map(to_i64),
            reasoning_tokens: to_i64(r.reasoning_tokens),
            warnings: r.warnings.as_deref(),
            cache_hit: i64::from(r.cache_hit),
        }
    }
}

const POSTGRES_INSERT: &str = "INSERT INTO usage_records (request_id, created_at, key_id, key_name, \
    user_name, team, project, end_user, provider, model, requested_model, input_tokens, \
    output_tokens, cache_read_tokens, cache_write_tokens, cost_nanos, status, route, fallback, \
    attempts, latency_ms, mirror_of, mirror_route, output, client_schema, http_status, \
    error_class, error, ttft_ms, reasoning_tokens, warnings, cache_hit) \
    SELECT request_id, created_at, key_id, key_name, user_name, team, project, end_user, \
    provider, model, requested_model, input_tokens, output_tokens, cache_read_tokens, \
    cache_write_tokens, cost_nanos, status, route, fallback, attempts, latency_ms, mirror_of, \
    mirror_route, output, client_schema, http_status, error_class, error, ttft_ms, \
    reasoning_tokens, warnings, cache_hit \
    FROM jsonb_to_recordset($1::jsonb) AS x(request_id text, created_at bigint, key_id text, \
    key_name text, user_name text, team text, project text, end_user text, provider text, \
    model text, requested_model text, input_tokens bigint, output_tokens bigint, \
    cache_read_tokens bigint, cache_write_tokens bigint, cost_nanos bigint, status text, \
    route text, fallback integer, attempts text, latency_ms bigint, mirror_of text, \
    mirror_route text, output text, client_schema text, http_status integer, \
    error_class text, error text, ttft_ms bigint, reasoning_tokens bigint, warnings text, \
    cache_hit integer) \
    ON CONFLICT (request_id) DO NOTHING RETURNING request_id";

const POSTGRES_TAGS: &str = "INSERT INTO usage_tags (request_id, tag) \
    SELECT r->>'request_id', t FROM jsonb_array_elements($1::jsonb) r, \
    jsonb_array_elements_text(COALESCE(r->'tags', '[]'::jsonb)) t ON CONFLICT DO NOTHING";

/// A report row from a statement's `grp`, `n`, `i`, `o`, `c`.
fn report_row<R: Row>(r: &R) -> Result<ReportRow, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(ReportRow {
        group: r.try_get("grp")?,
        requests: to_u64(r.try_get("n")?),
        input_tokens: to_u64(r.try_get("i")?),
        output_tokens: to_u64(r.try_get("o")?),
        cost_nanos: to_u64(r.try_get("c")?),
    })
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A batch of usage records may take this many `[store] timeout`s on Postgres.
const BATCH_PATIENCE: u32 = 10;

impl Store {
    /// Write a batch of records in one transaction. A record already written (same request
    /// id) is left as it is. On Postgres the batch goes as one JSON parameter that
    /// `jsonb_to_recordset` unpacks: one statement and one round trip per batch. On SQLite,
    /// multi-row statements of a few fixed sizes on the request log's own connection, on a
    /// blocking thread (see [`super::usage_sqlite`]); the records are handed back when it
    /// is done.
    pub async fn insert_usage(&self, records: &mut Vec<UsageRecord>) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let pool = match self {
            Store::Sqlite(_, writer) => {
                let _one_writer = super::sqlite_write_lock().await;
                return writer
                    .write(records)
                    .await
                    .map_err(|reason| StoreError::failed("sqlite", reason));
            }
            Store::Postgres(pool) => pool,
        };
        let records: &[UsageRecord] = records;
        let run = async {
            let rows: Vec<JsonRow<'_>> = records.iter().map(JsonRow::from).collect();
            let batch =
                serde_json::to_string(&rows).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
            let mut tx = pool.begin().await?;
            let written: Vec<String> = sqlx::query_scalar(POSTGRES_INSERT)
                .bind(&batch)
                .fetch_all(&mut *tx)
                .await?;
            let written: std::collections::HashSet<String> = written.into_iter().collect();
            let sums =
                super::rollup::sums(records.iter().filter(|r| written.contains(&r.request_id)));
            for ((dim, value, day), [n, i, o, c]) in sums {
                sqlx::query(super::rollup::upsert())
                    .bind(dim)
                    .bind(value)
                    .bind(day)
                    .bind(n)
                    .bind(i)
                    .bind(o)
                    .bind(c)
                    .execute(&mut *tx)
                    .await?;
            }
            if records.iter().any(|r| !r.tags.is_empty()) {
                sqlx::query(POSTGRES_TAGS)
                    .bind(&batch)
                    .execute(&mut *tx)
                    .await?;
            }
            for r in records.iter().filter(|r| written.contains(&r.request_id)) {
                let Some(b) = r.bodies.as_deref() else {
                    continue;
                };
                let mut q = sqlx::query(super::bodies::INSERT)
                    .bind(&r.request_id)
                    .bind(r.created_at)
                    .bind(&b.provider);
                for (_, kept) in b.parts() {
                    let (text, bytes) = super::bodies::columns(kept);
                    q = q.bind(text).bind(bytes);
                }
                q.bind(b.truncated()).execute(&mut *tx).await?;
            }
            tx.commit().await
        };
        // Off the request path, so longer than a request's bound; but bounded, so that a
        // connection that went silent is given up and the batch tried again on another
        // (a batch written once already is skipped: this is safe to repeat).
        let limit = self.timeout() * BATCH_PATIENCE;
        match tokio::time::timeout(limit, run).await {
            Ok(r) => r.map_err(|e| self.error(&e)),
            Err(_) => {
                self.count_timeout();
                Err(StoreError::timeout(self.backend(), limit))
            }
        }
    }

    /// Usage grouped by `by`, most expensive first. Over the whole gateway (no key or team
    /// filter), the whole days of the window come from the daily roll-ups and only its
    /// partial days from the records.
    pub async fn usage_report(
        &self,
        by: GroupBy,
        filter: &UsageFilter,
    ) -> Result<Vec<ReportRow>, StoreError> {
        self.bounded(async {
            use super::rollup::{DAY, merge, sorted};
            if filter.key_id.is_some() {
                return self.usage_report_raw(by, filter).await;
            }
            let until = filter.until.unwrap_or(i64::MAX);
            // Whole days: from the first day boundary at or after `since` to the last at or
            // before `until` (no end: every day there is).
            let first = filter.since.div_euclid(DAY) * DAY
                + if filter.since.rem_euclid(DAY) == 0 {
                    0
                } else {
                    DAY
                };
            let last = if until == i64::MAX {
                i64::MAX
            } else {
                until.div_euclid(DAY) * DAY
            };
            if first >= last {
                return self.usage_report_raw(by, filter).await;
            }
            let mut rows = std::collections::HashMap::new();
            merge(
                &mut rows,
                self.rollup_report(by, first, last, filter.team.as_deref())
                    .await?,
            );
            if filter.since < first {
                let edge = UsageFilter {
                    since: filter.since,
                    until: Some(first),
                    ..filter.clone()
                };
                merge(&mut rows, self.usage_report_raw(by, &edge).await?);
            }
            if last < until {
                let edge = UsageFilter {
                    since: last,
                    until: filter.until,
                    ..filter.clone()
                };
                merge(&mut rows, self.usage_report_raw(by, &edge).await?);
            }
            Ok(sorted(rows))
        })
        .await
    }

    /// The roll-ups of the whole days in `[first, last)`, by `by`, of one team's requests
    /// when `team` is given.
    async fn rollup_report(
        &self,
        by: GroupBy,
        first: i64,
        last: i64,
        team: Option<&str>,
    ) -> Result<Vec<ReportRow>, StoreError> {
        use super::rollup::{TEAM_SEP, dim, team_dim};
        let group = if by == GroupBy::Day {
            "CAST(day AS TEXT)"
        } else {
            "value"
        };
        // The dimension, and the range of values that are this team's.
        let (dim, range) = match team {
            None => (dim(by), None),
            Some(t) => match team_dim(dim(by)) {
                // By team: the team's own row.
                None => (dim(by), Some((t.to_owned(), format!("{t}\u{1}")))),
                Some(d) => (d, Some((format!("{t}{TEAM_SEP}"), format!("{t}{}", ' ')))),
            },
        };
        let values = if range.is_some() {
            " AND value >= $4 AND value < $5"
        } else {
            ""
        };
        let text = format!(
            "SELECT {group} AS grp, CAST(SUM(requests) AS BIGINT) AS n, \
             CAST(SUM(input_tokens) AS BIGINT) AS i, CAST(SUM(output_tokens) AS BIGINT) AS o, \
             CAST(SUM(cost_nanos) AS BIGINT) AS c FROM usage_rollup \
             WHERE dim = $1 AND day >= $2 AND day < $3{values} GROUP BY {group}"
        );
        let q = sql(self, &text);
        let rows: Result<Vec<ReportRow>, sqlx::Error> = on_store!(self, pool => {
            let mut query = sqlx::query(&q).bind(dim).bind(first).bind(last);
            if let Some((from, to)) = &range {
                query = query.bind(from.as_str()).bind(to.as_str());
            }
            query
                .fetch_all(pool)
                .await
                .and_then(|rows| rows.iter().map(report_row).collect())
        });
        let mut rows = rows.map_err(|e| self.error(&e))?;
        if let (Some(t), true) = (team, by != GroupBy::Day && by != GroupBy::Team) {
            let prefix = format!("{t}{TEAM_SEP}");
            for r in &mut rows {
                if let Some(v) = r.group.strip_prefix(&prefix) {
                    r.group = v.to_owned();
                }
            }
        }
        Ok(rows)
    }

    /// A report read from the records themselves.
    async fn usage_report_raw(
        &self,
        by: GroupBy,
        filter: &UsageFilter,
    ) -> Result<Vec<ReportRow>, StoreError> {
        let join = if by == GroupBy::Tag {
            " JOIN usage_tags t ON t.request_id = u.request_id"
        } else {
            ""
        };
        // Only the filters given are in the statement: a generic `($3 IS NULL OR key_id = $3)`
        // keeps SQLite's planner off the key's index (a scan of the whole window instead).
        let mut filters = String::new();
        if filter.key_id.is_some() {
            filters.push_str(" AND u.key_id = $3");
        }
        if filter.team.is_some() {
            filters.push_str(if filter.key_id.is_some() {
                " AND u.team = $4"
            } else {
                " AND u.team = $3"
            });
        }
        // CAST: SUM of BIGINT is NUMERIC on Postgres; the group of `day` is an integer.
        let text = format!(
            "SELECT CAST({g} AS TEXT) AS grp, COUNT(*) AS n, \
             CAST(COALESCE(SUM(u.input_tokens), 0) AS BIGINT) AS i, \
             CAST(COALESCE(SUM(u.output_tokens), 0) AS BIGINT) AS o, \
             CAST(COALESCE(SUM(u.cost_nanos), 0) AS BIGINT) AS c \
             FROM usage_records u{join} \
             WHERE u.created_at >= $1 AND u.created_at < $2{filters} \
             GROUP BY {g} ORDER BY c DESC, grp",
            g = by.expr()
        );
        let q = sql(self, &text);
        let until = filter.until.unwrap_or(i64::MAX);
        let rows = on_store!(self, pool => {
            let mut query = sqlx::query(&q).bind(filter.since).bind(until);
            for v in [&filter.key_id, &filter.team].into_iter().flatten() {
                query = query.bind(v.as_str());
            }
            query
                .fetch_all(pool)
                .await
                .and_then(|rows| rows.iter().map(report_row).collect())
        });
        rows.map_err(|e| self.error(&e))
    }

    /// Spend (nano-USD) or tokens of one scope over `[since, until)`; `column` is a fixed
    /// identifier (`governance::budget::ScopeKind::column`), never user input.
    pub async fn usage_sum(
        &self,
        column: &'static str,
        name: &str,
        unit: crate::config::BudgetUnit,
        filter: &UsageFilter,
    ) -> Result<u64, StoreError> {
        self.bounded(async {
            let amount = match unit {
                crate::config::BudgetUnit::Usd => "cost_nanos",
                crate::config::BudgetUnit::Tokens => "input_tokens + output_tokens",
            };
            let text = format!(
                "SELECT CAST(COALESCE(SUM({amount}), 0) AS BIGINT) FROM usage_records \
                 WHERE {column} = $1 AND created_at >= $2 AND created_at < $3"
            );
            let q = sql(self, &text);
            let v: Result<i64, sqlx::Error> = on_store!(self, pool => sqlx::query(&q)
                .bind(name)
                .bind(filter.since)
                .bind(filter.until.unwrap_or(i64::MAX))
                .fetch_one(pool)
                .await
                .and_then(|r| r.try_get(0)));
            v.map(to_u64).map_err(|e| self.error(&e))
        })
        .await
    }

    /// Every record with this request id (0 or 1), for tests and the request log.
    pub async fn usage_record(&self, request_id: &str) -> Result<Option<UsageRecord>, StoreError> {
        self.bounded(async {
            let q = sql(
                self,
                "SELECT created_at, key_id, key_name, provider, model, requested_model, input_tokens, \
                 output_tokens, cache_read_tokens, cache_write_tokens, cost_nanos, status, route, \
                 fallback, attempts, latency_ms, mirror_of, mirror_route, output \
                 FROM usage_records WHERE request_id = $1",
            );
            let rec: Result<Option<UsageRecord>, sqlx::Error> = on_store!(self, pool => async {
                match sqlx::query(&q).bind(request_id).fetch_optional(pool).await? {
                    None => Ok(None),
                    Some(r) => {
                        let status: String = r.try_get("status")?;
                        Ok(Some(UsageRecord {
                            request_id: request_id.to_owned(),
                            created_at: r.try_get("created_at")?,
                            key_id: r.try_get("key_id")?,
                            key_name: r.try_get("key_name")?,
                            route: r.try_get("route")?,
                            fallback: r.try_get::<i32, _>("fallback")? != 0,
                            attempts: r.try_get("attempts")?,
                            latency_ms: r.try_get::<Option<i64>, _>("latency_ms")?.map(to_u64),
                            mirror_of: r.try_get("mirror_of")?,
                            mirror_route: r.try_get("mirror_route")?,
                            output: r.try_get("output")?,
                            provider: r.try_get("provider")?,
                            model: r.try_get("model")?,
                            requested_model: r.try_get("requested_model")?,
                            input_tokens: to_u64(r.try_get("input_tokens")?),
                            output_tokens: to_u64(r.try_get("output_tokens")?),
                            cache_read_tokens: to_u64(r.try_get("cache_read_tokens")?),
                            cache_write_tokens: to_u64(r.try_get("cache_write_tokens")?),
                            cost_nanos: to_u64(r.try_get("cost_nanos")?),
                            status: match status.as_str() {
                                "ok" => "ok",
                                "cancelled" => "cancelled",
                                _ => "error",
                            },
                            ..UsageRecord::default()
                        }))
                    }
                }
            }.await);
            rec.map_err(|e| self.error(&e))
        })
        .await
    }
}

impl Store {
    /// The shadow requests of a mirrored request, with their records.
    pub async fn mirrors_of(&self, request_id: &str) -> Result<Vec<String>, StoreError> {
        self.bounded(async {
            let q = sql(
                self,
                "SELECT request_id FROM usage_records WHERE mirror_of = $1 ORDER BY created_at",
            );
            let ids: Result<Vec<String>, sqlx::Error> = on_store!(self, pool => sqlx::query_scalar(&q)
                .bind(request_id)
                .fetch_all(pool)
                .await);
            ids.map_err(|e| self.error(&e))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> UsageRecord {
        UsageRecord {
            request_id: format!("gh-{i:04}"),
            created_at: 1_000 + i as i64,
            key_id: Some(format!("key_{}", i % 3)),
            team: Some(if i.is_multiple_of(2) { "a" } else { "b" }.to_owned()),
            model: Some("m".into()),
            requested_model: "m".into(),
            input_tokens: 10,
            output_tokens: 5,
            cost_nanos: 7,
            status: "ok",
            tags: if i.is_multiple_of(10) {
                vec!["f=x".into(), "e=y".into()]
            } else {
                Vec::new()
            },
            ..UsageRecord::default()
        }
    }

    async fn batches_and_reports(store: &Store) {
        let records: Vec<_> = (0..150).map(record).collect();
        store.insert_usage(&mut records.clone()).await.unwrap();
        // Written again: nothing doubles.
        store
            .insert_usage(&mut records[..70].to_vec())
            .await
            .unwrap();
        let all = UsageFilter::default();
        let by_team = store.usage_report(GroupBy::Team, &all).await.unwrap();
        assert_eq!(by_team.iter().map(|r| r.requests).sum::<u64>(), 150);
        assert_eq!(by_team[0].cost_nanos, 75 * 7);
        let tags = store.usage_report(GroupBy::Tag, &all).await.unwrap();
        assert_eq!(tags.len(), 2);
        assert!(tags.iter().all(|t| t.requests == 15));
        let one_key = UsageFilter {
            key_id: Some("key_1".into()),
            ..UsageFilter::default()
        };
        let rows = store.usage_report(GroupBy::Day, &one_key).await.unwrap();
        assert_eq!(
            rows,
            vec![ReportRow {
                group: "0".into(),
                requests: 50,
                input_tokens: 500,
                output_tokens: 250,
                cost_nanos: 350
            }]
        );
        let sum = store
            .usage_sum(
                "team",
                "a",
                crate::config::BudgetUnit::Tokens,
                &UsageFilter {
                    since: 1_000,
                    until: Some(1_100),
                    ..UsageFilter::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(sum, 50 * 15);
        assert_eq!(
            store
                .usage_record("gh-0007")
                .await
                .unwrap()
                .unwrap()
                .cost_nanos,
            7
        );
        // A batch of old and new records: only the new ones are added to the roll-ups.
        let more: Vec<_> = (140..160).map(record).collect();
        store.insert_usage(&mut more.clone()).await.unwrap();
        let by_team = store.usage_report(GroupBy::Team, &all).await.unwrap();
        assert_eq!(by_team.iter().map(|r| r.requests).sum::<u64>(), 160);
        let q = "SELECT CAST(SUM(requests) AS BIGINT) FROM usage_rollup WHERE dim = 'all'";
        let rolled: i64 =
            on_store!(store, pool => sqlx::query_scalar(q).fetch_one(pool).await).unwrap();
        assert_eq!(rolled, 160);
    }

    #[tokio::test]
    async fn usage_on_sqlite() {
        batches_and_reports(&Store::connect("sqlite::memory:").await.unwrap()).await;
    }

    #[tokio::test]
    async fn usage_on_a_sqlite_file() {
        let dir = std::env::temp_dir().join(format!("gh-usage-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("u.db");
        let _ = std::fs::remove_file(&path);
        let store = Store::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        batches_and_reports(&store).await;
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The log writer's connection opens the in-memory database of its own store, not
    /// another's.
    #[tokio::test]
    async fn in_memory_stores_are_apart() {
        let a = Store::connect("sqlite::memory:").await.unwrap();
        let b = Store::connect("sqlite::memory:").await.unwrap();
        a.insert_usage(&mut vec![record(1)]).await.unwrap();
        b.insert_usage(&mut vec![record(2)]).await.unwrap();
        assert!(a.usage_record("gh-0001").await.unwrap().is_some());
        assert!(a.usage_record("gh-0002").await.unwrap().is_none());
        assert!(b.usage_record("gh-0002").await.unwrap().is_some());
        assert!(b.usage_record("gh-0001").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn usage_on_postgres() {
        if let Some(store) = crate::store::test_postgres().await {
            batches_and_reports(&store).await;
        }
    }
}
