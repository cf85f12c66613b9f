//! Budget counters in the store, used when no Redis is configured: admission reserves a
//! request's worst case on every budget that applies, all or nothing, in one transaction
//! that locks the counters' rows, so that instances sharing a Postgres enforce one budget.
//! Settling swaps the reservation for the actual amount. On Postgres each is one call of a
//! PL/pgSQL function (migration 0005, rows locked `FOR UPDATE`); on SQLite the same rules run
//! statement by statement in a `BEGIN IMMEDIATE` transaction.
//!
//! A counter is created on first use with the spend the usage records already hold for its
//! scope and period, so a budget added mid-month starts from the month's real spend.
//! Reservations whose lease ended (their instance died) are dropped when a budget looks spent,
//! before it refuses anyone.
//! Transactions take counters in the order given; callers sort them, so two transactions
//! never wait on each other in opposite orders.

use sqlx::Row;

use super::{Store, StoreError, sql};
use crate::config::BudgetUnit;

/// One budget's counter as a transaction sees it.
#[derive(Debug, Clone)]
pub struct CounterRef<'a> {
    /// `b:<scope>:<name>:<unit>:<start>:<end>`.
    pub counter: &'a str,
    /// The `usage_records` column that holds the scope's name (a fixed identifier, never
    /// user input).
    pub column: &'static str,
    pub name: &'a str,
    pub unit: BudgetUnit,
    pub start: i64,
    pub end: i64,
    pub limit: u64,
    /// What this request reserves on it.
    pub amount: u64,
}

/// Spent and reserved on one counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterState {
    pub spent: u64,
    pub reserved: u64,
}

/// Counters are kept this long after their period ends (for `/v1/usage` and alerts).
pub const COUNTER_RETENTION: i64 = 86_400;

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn init_sql(c: &CounterRef<'_>) -> String {
    let amount = match c.unit {
        BudgetUnit::Usd => "cost_nanos",
        BudgetUnit::Tokens => "input_tokens + output_tokens",
    };
    format!(
        "INSERT INTO budget_counters (counter, spent, reserved, expires_at) \
         SELECT $1, COALESCE(SUM({amount}), 0), 0, $2 FROM usage_records \
         WHERE {} = $3 AND created_at >= $4 AND created_at < $5 \
         ON CONFLICT (counter) DO NOTHING",
        c.column
    )
}

/// Postgres: one call of `gatehouse_budget_reserve` (migration 0005), after creating any
/// counter it reports missing. The call runs only if the server starts it before `deadline`
/// (Unix seconds, the client's bound): a call the client gave up on, that reached the
/// server late (a paused database, a congested link), reserves nothing, and a call killed
/// by `statement_timeout` rolls back. So a refused request leaves no reservation behind.
async fn pg_reserve(
    pool: &sqlx::PgPool,
    request_id: &str,
    counters: &[CounterRef<'_>],
    (now, lease_until): (i64, i64),
    deadline: f64,
) -> Result<Option<usize>, sqlx::Error> {
    let names: Vec<&str> = counters.iter().map(|c| c.counter).collect();
    let limits: Vec<i64> = counters.iter().map(|c| to_i64(c.limit)).collect();
    let amounts: Vec<i64> = counters.iter().map(|c| to_i64(c.amount)).collect();
    // At most one creation per counter, then the answer.
    for _ in 0..=counters.len() {
        let r: Option<i32> = sqlx::query_scalar(
            "SELECT gatehouse_budget_reserve($1, $2, $3, $4, $5, $6) WHERE clock_timestamp() < to_timestamp($7 + COALESCE(NULLIF(current_setting('gatehouse.clock_skew', true), '')::float8, 0))",
        )
        .bind(request_id)
        .bind(&names)
        .bind(&limits)
        .bind(&amounts)
        .bind(now)
        .bind(lease_until)
        .bind(deadline)
        .fetch_optional(pool)
        .await?;
        let Some(r) = r else { return Err(late()) };
        match usize::try_from(r.unsigned_abs()).unwrap_or(0) {
            0 => return Ok(None),
            i if r > 0 => return Ok(Some(i - 1)),
            i => {
                let Some(c) = counters.get(i - 1) else { break };
                sqlx::query(&init_sql(c))
                    .bind(c.counter)
                    .bind(c.end + COUNTER_RETENTION)
                    .bind(c.name)
                    .bind(c.start)
                    .bind(c.end)
                    .execute(pool)
                    .await?;
            }
        }
    }
    Err(sqlx::Error::Protocol(
        "a budget counter could not be created".into(),
    ))
}

/// SQLite: the same rules statement by statement, in one write transaction (one writer at a
/// time, queued in-process).
async fn sqlite_reserve(
    pool: &sqlx::SqlitePool,
    request_id: &str,
    counters: &[CounterRef<'_>],
    now: i64,
    lease_until: i64,
) -> Result<Option<usize>, sqlx::Error> {
    let _one_writer = super::sqlite_write_lock().await;
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let select = "SELECT spent, reserved FROM budget_counters WHERE counter = ?1";
    let mut released_per_counter = Vec::with_capacity(counters.len());
    let mut exhausted = None;
    for (i, c) in counters.iter().enumerate() {
        // The counter's row, created from the usage records the first time.
        let row = match sqlx::query(select)
            .bind(c.counter)
            .fetch_optional(&mut *tx)
            .await?
        {
            Some(row) => row,
            None => {
                sqlx::query(&init_sql(c).replace('$', "?"))
                    .bind(c.counter)
                    .bind(c.end + COUNTER_RETENTION)
                    .bind(c.name)
                    .bind(c.start)
                    .bind(c.end)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(select)
                    .bind(c.counter)
                    .fetch_one(&mut *tx)
                    .await?
            }
        };
        let spent = to_u64(row.try_get(0)?);
        let mut reserved: i64 = row.try_get(1)?;
        // Leases of dead instances matter only when the budget looks spent: drop them then,
        // and look again.
        let mut released = 0;
        if spent.saturating_add(to_u64(reserved)) >= c.limit {
            released = sqlx::query(
                "DELETE FROM budget_reservations WHERE counter = ?1 AND lease_until < ?2 RETURNING amount",
            )
            .bind(c.counter)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get::<i64, _>(0).unwrap_or(0))
            .sum();
            reserved -= released;
        }
        if exhausted.is_none() && spent.saturating_add(to_u64(reserved)) >= c.limit {
            exhausted = Some(i);
        }
        released_per_counter.push(released);
    }
    for (c, released) in counters.iter().zip(&released_per_counter) {
        let add = if exhausted.is_none() {
            to_i64(c.amount)
        } else {
            0
        };
        if add - released != 0 {
            sqlx::query("UPDATE budget_counters SET reserved = reserved + ?2 WHERE counter = ?1")
                .bind(c.counter)
                .bind(add - released)
                .execute(&mut *tx)
                .await?;
        }
        if exhausted.is_none() {
            sqlx::query(
                "INSERT INTO budget_reservations (request_id, counter, amount, lease_until) VALUES (?1, ?2, ?3, ?4)",
            )
            .bind(request_id)
            .bind(c.counter)
            .bind(to_i64(c.amount))
            .bind(lease_until)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(exhausted)
}

/// Postgres: one call of `gatehouse_budget_settle` (migration 0005), run only if the
/// server starts it before `deadline`, as [`pg_reserve`]: a settlement that timed out is
/// tried again by its caller, and must not count twice.
async fn pg_settle(
    pool: &sqlx::PgPool,
    request_id: &str,
    counters: &[(&str, u64, i64)],
    deadline: f64,
) -> Result<Vec<u64>, sqlx::Error> {
    let names: Vec<&str> = counters.iter().map(|c| c.0).collect();
    let actual: Vec<i64> = counters.iter().map(|c| to_i64(c.1)).collect();
    let expires: Vec<i64> = counters.iter().map(|c| c.2).collect();
    let spent: Option<Vec<i64>> = sqlx::query_scalar(
        "SELECT gatehouse_budget_settle($1, $2, $3, $4) WHERE clock_timestamp() < to_timestamp($5 + COALESCE(NULLIF(current_setting('gatehouse.clock_skew', true), '')::float8, 0))",
    )
    .bind(request_id)
    .bind(&names)
    .bind(&actual)
    .bind(&expires)
    .bind(deadline)
    .fetch_optional(pool)
    .await?;
    Ok(spent.ok_or_else(late)?.into_iter().map(to_u64).collect())
}

/// A call the server reached after the client's deadline, and did not run. The deadline is
/// the client's clock; each connection learns how far the server's clock is ahead
/// (`gatehouse.clock_skew`, set when it connects: see `Store::connect_with`), so hosts whose
/// clocks differ compare the same instant.
fn late() -> sqlx::Error {
    sqlx::Error::Protocol("the database reached the call after its deadline; not run".into())
}

/// The Unix time (seconds) by which a call started now must have begun on the server.
fn deadline_of(store: &Store) -> f64 {
    (std::time::SystemTime::now() + store.timeout())
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// SQLite: the settlement statement by statement, in one write transaction.
async fn sqlite_settle(
    pool: &sqlx::SqlitePool,
    request_id: &str,
    counters: &[(&str, u64, i64)],
) -> Result<Vec<u64>, sqlx::Error> {
    let _one_writer = super::sqlite_write_lock().await;
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut out = Vec::with_capacity(counters.len());
    for (counter, actual, expires_at) in counters {
        let released: i64 = sqlx::query(
            "DELETE FROM budget_reservations WHERE request_id = ?1 AND counter = ?2 RETURNING amount",
        )
        .bind(request_id)
        .bind(*counter)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>(0).unwrap_or(0))
        .sum();
        let spent: i64 = sqlx::query(
            "INSERT INTO budget_counters (counter, spent, reserved, expires_at) VALUES (?1, ?3, 0, ?4) \
             ON CONFLICT (counter) DO UPDATE SET spent = budget_counters.spent + ?3, \
             reserved = budget_counters.reserved - ?2 RETURNING spent",
        )
        .bind(*counter)
        .bind(released)
        .bind(to_i64(*actual))
        .bind(*expires_at)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        out.push(to_u64(spent));
    }
    tx.commit().await?;
    Ok(out)
}

impl Store {
    /// Reserve `amount` on every counter, or on none: a counter is open while
    /// `spent + reserved < limit`. Returns the index of the first exhausted counter, if any.
    /// Reservations whose lease ended before `now` are dropped when a counter looks spent.
    pub async fn budget_reserve(
        &self,
        request_id: &str,
        counters: &[CounterRef<'_>],
        now: i64,
        lease_until: i64,
    ) -> Result<Option<usize>, StoreError> {
        self.bounded(async {
            let r = match self {
                Store::Postgres(pool) => {
                    pg_reserve(
                        pool,
                        request_id,
                        counters,
                        (now, lease_until),
                        deadline_of(self),
                    )
                    .await
                }
                Store::Sqlite(pool, ..) => {
                    sqlite_reserve(pool, request_id, counters, now, lease_until).await
                }
            };
            r.map_err(|e| self.error(&e))
        })
        .await
    }

    /// Replace this request's reservation on each counter by the actual amount. Returns each
    /// counter's spend after the update (for alerts). A reservation already dropped (its lease
    /// ended) releases nothing; the actual amount is added all the same.
    pub async fn budget_settle(
        &self,
        request_id: &str,
        counters: &[(&str, u64, i64)],
    ) -> Result<Vec<u64>, StoreError> {
        self.bounded(async {
            let r = match self {
                Store::Postgres(pool) => {
                    pg_settle(pool, request_id, counters, deadline_of(self)).await
                }
                Store::Sqlite(pool, ..) => sqlite_settle(pool, request_id, counters).await,
            };
            r.map_err(|e| self.error(&e))
        })
        .await
    }

    /// Current state of counters (zero for one not created yet).
    pub async fn budget_read(&self, counters: &[&str]) -> Result<Vec<CounterState>, StoreError> {
        self.bounded(async {
            let q = sql(
                self,
                "SELECT spent, reserved FROM budget_counters WHERE counter = $1",
            );
            let mut out = Vec::with_capacity(counters.len());
            for c in counters {
                let state: Result<CounterState, sqlx::Error> = super::on_store!(self, pool => async {
                    match sqlx::query(&q).bind(*c).fetch_optional(pool).await? {
                        Some(r) => Ok(CounterState {
                            spent: to_u64(r.try_get(0)?),
                            reserved: to_u64(r.try_get(1)?),
                        }),
                        None => Ok(CounterState::default()),
                    }
                }.await);
                out.push(state.map_err(|e| self.error(&e))?);
            }
            Ok(out)
        })
        .await
    }

    /// Record that the alert `threshold` (percent) of `counter` went out; false if it already
    /// had (by this or another instance).
    pub async fn alert_once(
        &self,
        counter: &str,
        threshold: u32,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.bounded(async {
            let q = sql(
                self,
                "INSERT INTO budget_alerts (counter, threshold, sent_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            );
            let done = super::on_store!(self, pool => sqlx::query(&q)
                .bind(counter)
                .bind(i64::from(threshold))
                .bind(now)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()))
            .map_err(|e| self.error(&e))?;
            Ok(done == 1)
        })
        .await
    }

    /// Drop counters, reservations and alert marks of periods that ended long ago.
    pub async fn budget_gc(&self, now: i64) -> Result<(), StoreError> {
        self.bounded(async {
            let q = sql(self, "DELETE FROM budget_counters WHERE expires_at < $1");
            super::on_store!(self, pool => sqlx::query(&q).bind(now).execute(pool).await.map(|_| ()))
                .map_err(|e| self.error(&e))?;
            for q in [
                "DELETE FROM budget_reservations WHERE counter NOT IN (SELECT counter FROM budget_counters)",
                "DELETE FROM budget_alerts WHERE counter NOT IN (SELECT counter FROM budget_counters)",
            ] {
                super::on_store!(self, pool => sqlx::query(q).execute(pool).await.map(|_| ()))
                    .map_err(|e| self.error(&e))?;
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(name: &'static str, limit: u64, amount: u64) -> CounterRef<'static> {
        CounterRef {
            counter: name,
            column: "key_id",
            name: "k",
            unit: BudgetUnit::Tokens,
            start: 0,
            end: 1_000,
            limit,
            amount,
        }
    }

    async fn reserve_settle_and_dead_leases(store: &Store) {
        let a = counter("b:key:k:tokens:0:1000", 100, 60);
        let b = counter("b:team:t:tokens:0:1000", 1_000, 60);
        // A budget admits while spent + reserved < limit (60 < 100 admits r2), and a request
        // is reserved on all its budgets or none (r3: a refuses, so b holds nothing for it).
        assert_eq!(
            store
                .budget_reserve("r1", &[a.clone(), b.clone()], 10, 3_610)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .budget_reserve("r2", &[a.clone(), b.clone()], 10, 3_610)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .budget_reserve("r3", &[a.clone(), b.clone()], 10, 3_610)
                .await
                .unwrap(),
            Some(0)
        );
        let st = store.budget_read(&[a.counter, b.counter]).await.unwrap();
        assert_eq!(
            st[0],
            CounterState {
                spent: 0,
                reserved: 120
            }
        );
        assert_eq!(
            st[1],
            CounterState {
                spent: 0,
                reserved: 120
            },
            "r3 reserved nothing on b"
        );
        // r1 settles at 7; r2's instance dies (its lease ends at 3,610).
        let spent = store
            .budget_settle("r1", &[(a.counter, 7, 2_000), (b.counter, 7, 2_000)])
            .await
            .unwrap();
        assert_eq!(spent, vec![7, 7]);
        // 7 spent + 60 reserved < 100: admitted (127 now held).
        assert_eq!(
            store
                .budget_reserve("r4", std::slice::from_ref(&a), 20, 3_620)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .budget_reserve("r5", std::slice::from_ref(&a), 30, 3_630)
                .await
                .unwrap(),
            Some(0)
        );
        // r2 and r4 die with their instance. Past their leases, the budget frees their 120
        // before refusing anyone.
        assert_eq!(
            store
                .budget_reserve("r6", std::slice::from_ref(&a), 4_000, 7_600)
                .await
                .unwrap(),
            None
        );
        let st = store.budget_read(&[a.counter]).await.unwrap();
        assert_eq!(
            st[0],
            CounterState {
                spent: 7,
                reserved: 60
            }
        );
        store
            .budget_gc(1_000 + COUNTER_RETENTION + 1)
            .await
            .unwrap();
        assert_eq!(
            store.budget_read(&[a.counter]).await.unwrap()[0],
            CounterState::default()
        );
    }

    #[tokio::test]
    async fn budgets_on_sqlite() {
        reserve_settle_and_dead_leases(&Store::connect("sqlite::memory:").await.unwrap()).await;
    }

    /// A reservation or settlement that reaches Postgres after the client's deadline (the
    /// client gave up on it) does nothing: a refused request leaves no reservation behind,
    /// and a settlement tried again is not counted twice.
    #[tokio::test]
    async fn postgres_skips_a_call_that_arrives_after_its_deadline() {
        let Some(store) = crate::store::test_postgres().await else {
            return;
        };
        let Store::Postgres(pool) = &store else {
            unreachable!()
        };
        let skew: f64 =
            sqlx::query_scalar("SELECT current_setting('gatehouse.clock_skew')::float8")
                .fetch_one(pool)
                .await
                .unwrap();
        assert!(skew.abs() < 1.0, "same host, same clock: {skew}");
        let a = counter("b:key:k:tokens:0:1000", 100, 60);
        let past = deadline_of(&store) - 3_600.0;
        let late = pg_reserve(pool, "r1", std::slice::from_ref(&a), (10, 3_610), past).await;
        assert!(late.is_err(), "{late:?}");
        // In time, it reserves (creating the counter first).
        let soon = deadline_of(&store);
        assert_eq!(
            pg_reserve(pool, "r2", std::slice::from_ref(&a), (10, 3_610), soon)
                .await
                .unwrap(),
            None
        );
        let late = pg_settle(pool, "r2", &[(a.counter, 7, 2_000)], past).await;
        assert!(late.is_err(), "{late:?}");
        assert_eq!(
            store.budget_read(&[a.counter]).await.unwrap()[0],
            CounterState {
                spent: 0,
                reserved: 60
            },
            "only r2's reservation, made in time"
        );
        assert_eq!(
            pg_settle(pool, "r2", &[(a.counter, 7, 2_000)], deadline_of(&store))
                .await
                .unwrap(),
            vec![7]
        );
    }

    #[tokio::test]
    async fn budgets_on_postgres() {
        if let Some(store) = crate::store::test_postgres().await {
            reserve_settle_and_dead_leases(&store).await;
        }
    }
}
