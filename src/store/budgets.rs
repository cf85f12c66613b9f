//! Budget counters in the store, used when no Redis is configured: admission reserves a
//! request's worst case on every budget that applies, all or nothing, in one transaction
//! that locks the counters' rows (Postgres `FOR UPDATE`, SQLite `BEGIN IMMEDIATE`), so that
//! instances sharing a Postgres enforce one budget. Settling swaps the reservation for the
//! actual amount.
//!
//! A counter is created on first use with the spend the usage records already hold for its
//! scope and period, so a budget added mid-month starts from the month's real spend.
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

/// The body of a transaction, the same text for both backends (`$pool` is bound per arm).
macro_rules! in_tx {
    ($store:expr, $tx:ident => $body:expr) => {
        match $store {
            Store::Sqlite(pool) => {
                let mut $tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let out = $body;
                $tx.commit().await?;
                out
            }
            Store::Postgres(pool) => {
                let mut $tx = pool.begin().await?;
                let out = $body;
                $tx.commit().await?;
                out
            }
        }
    };
}

impl Store {
    /// Reserve `amount` on every counter, or on none: a counter is open while
    /// `spent + reserved < limit`. Returns the index of the first exhausted counter, if any.
    /// Reservations whose lease ended before `now` are dropped first.
    pub async fn budget_reserve(
        &self,
        request_id: &str,
        counters: &[CounterRef<'_>],
        now: i64,
        lease_until: i64,
    ) -> Result<Option<usize>, StoreError> {
        let lock = match self {
            Store::Postgres(_) => " FOR UPDATE",
            Store::Sqlite(_) => "",
        };
        let select = sql(
            self,
            &format!("SELECT spent, reserved FROM budget_counters WHERE counter = $1{lock}"),
        )
        .into_owned();
        let purge = sql(
            self,
            "DELETE FROM budget_reservations WHERE counter = $1 AND lease_until < $2 RETURNING amount",
        );
        let update = sql(
            self,
            "UPDATE budget_counters SET reserved = reserved + $2 WHERE counter = $1",
        );
        let insert = sql(
            self,
            "INSERT INTO budget_reservations (request_id, counter, amount, lease_until) VALUES ($1, $2, $3, $4)",
        );
        let run = async {
            Ok::<_, sqlx::Error>(in_tx!(self, tx => {
                let mut states = Vec::with_capacity(counters.len());
                let mut exhausted = None;
                for (i, c) in counters.iter().enumerate() {
                    sqlx::query(&sql(self, &init_sql(c)))
                        .bind(c.counter)
                        .bind(c.end + COUNTER_RETENTION)
                        .bind(c.name)
                        .bind(c.start)
                        .bind(c.end)
                        .execute(&mut *tx)
                        .await?;
                    let row = sqlx::query(&select).bind(c.counter).fetch_one(&mut *tx).await?;
                    let spent: i64 = row.try_get(0)?;
                    let reserved: i64 = row.try_get(1)?;
                    let released: i64 = sqlx::query(&purge)
                        .bind(c.counter)
                        .bind(now)
                        .fetch_all(&mut *tx)
                        .await?
                        .iter()
                        .map(|r| r.try_get::<i64, _>(0).unwrap_or(0))
                        .sum();
                    let reserved = reserved - released;
                    if exhausted.is_none() && to_u64(spent).saturating_add(to_u64(reserved)) >= c.limit {
                        exhausted = Some(i);
                    }
                    states.push(released);
                }
                for (c, released) in counters.iter().zip(&states) {
                    let add = if exhausted.is_none() { to_i64(c.amount) } else { 0 };
                    if add - released != 0 {
                        sqlx::query(&update)
                            .bind(c.counter)
                            .bind(add - released)
                            .execute(&mut *tx)
                            .await?;
                    }
                    if exhausted.is_none() {
                        sqlx::query(&insert)
                            .bind(request_id)
                            .bind(c.counter)
                            .bind(to_i64(c.amount))
                            .bind(lease_until)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                exhausted
            }))
        };
        run.await.map_err(|e| self.error(&e))
    }

    /// Replace this request's reservation on each counter by the actual amount. Returns each
    /// counter's spend after the update (for alerts). A reservation already dropped (its lease
    /// ended) releases nothing; the actual amount is added all the same.
    pub async fn budget_settle(
        &self,
        request_id: &str,
        counters: &[(&str, u64, i64)],
    ) -> Result<Vec<u64>, StoreError> {
        let release = sql(
            self,
            "DELETE FROM budget_reservations WHERE request_id = $1 AND counter = $2 RETURNING amount",
        );
        let update = sql(
            self,
            "INSERT INTO budget_counters (counter, spent, reserved, expires_at) VALUES ($1, $3, 0, $4) \
             ON CONFLICT (counter) DO UPDATE SET spent = budget_counters.spent + $3, \
             reserved = budget_counters.reserved - $2 RETURNING spent",
        );
        let run = async {
            Ok::<_, sqlx::Error>(in_tx!(self, tx => {
                let mut out = Vec::with_capacity(counters.len());
                for (counter, actual, expires_at) in counters {
                    let released: i64 = sqlx::query(&release)
                        .bind(request_id)
                        .bind(*counter)
                        .fetch_all(&mut *tx)
                        .await?
                        .iter()
                        .map(|r| r.try_get::<i64, _>(0).unwrap_or(0))
                        .sum();
                    let spent: i64 = sqlx::query(&update)
                        .bind(*counter)
                        .bind(released)
                        .bind(to_i64(*actual))
                        .bind(*expires_at)
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get(0)?;
                    out.push(to_u64(spent));
                }
                out
            }))
        };
        run.await.map_err(|e| self.error(&e))
    }

    /// Current state of counters (zero for one not created yet).
    pub async fn budget_read(&self, counters: &[&str]) -> Result<Vec<CounterState>, StoreError> {
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
    }

    /// Record that the alert `threshold` (percent) of `counter` went out; false if it already
    /// had (by this or another instance).
    pub async fn alert_once(
        &self,
        counter: &str,
        threshold: u32,
        now: i64,
    ) -> Result<bool, StoreError> {
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
    }

    /// Drop counters, reservations and alert marks of periods that ended long ago.
    pub async fn budget_gc(&self, now: i64) -> Result<(), StoreError> {
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
    }
}
