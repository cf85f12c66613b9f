//! Where budget counters live: in Redis when `[redis]` is configured (shared by every
//! instance, started from the store's spend), otherwise in the store (shared by instances
//! on one Postgres). Both reserve all-or-nothing and settle the same way; both fail closed.

use std::sync::Arc;

use super::budget::Line;
use super::shared::{Shared, SharedError};
use crate::store::{CounterState, Store, UsageFilter};

/// Reservations of an instance that died are released after this long (longer than any
/// request may run).
pub const RESERVATION_LEASE: i64 = 3_600;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Shared(#[from] SharedError),
}

#[derive(Clone)]
pub enum Ledger {
    Store(Store),
    Redis { shared: Arc<Shared>, store: Store },
}

impl Ledger {
    /// Reserve each line's amount, on all or none. `Ok(Some(i))`: line `i` is spent.
    /// `lines` must be sorted by counter (see [`sort`]).
    pub async fn reserve(
        &self,
        request_id: &str,
        lines: &[Line],
        now: i64,
    ) -> Result<Option<usize>, LedgerError> {
        if lines.is_empty() {
            return Ok(None);
        }
        match self {
            Ledger::Store(store) => {
                let refs: Vec<_> = lines.iter().map(Line::counter_ref).collect();
                Ok(store
                    .budget_reserve(request_id, &refs, now, now + RESERVATION_LEASE)
                    .await?)
            }
            Ledger::Redis { shared, store } => {
                // At most one round of starting counters per line, then the reservation.
                for _ in 0..=lines.len() {
                    let mut inv = shared.scripts.budget_reserve.prepare_invoke();
                    inv.arg(now).arg(request_id).arg(now + RESERVATION_LEASE);
                    for l in lines {
                        let h = shared.key(&l.counter);
                        inv.key(&h).key(format!("{h}:leases"));
                        inv.arg(l.budget.limit)
                            .arg(l.amount)
                            .arg(l.window.end + crate::store::COUNTER_RETENTION);
                    }
                    let (status, index): (i64, usize) = shared.invoke(&inv).await?;
                    match status {
                        1 => return Ok(None),
                        0 => return Ok(Some(index.saturating_sub(1))),
                        _ => {
                            let Some(l) = lines.get(index.saturating_sub(1)) else {
                                break;
                            };
                            init(shared, store, l).await?;
                        }
                    }
                }
                Err(SharedError::Redis("budget counter could not be started".into()).into())
            }
        }
    }

    /// Swap the reservations for the actual amounts; returns each line's spend after.
    pub async fn settle(
        &self,
        request_id: &str,
        lines: &[Line],
        actual: &[u64],
    ) -> Result<Vec<u64>, LedgerError> {
        if lines.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Ledger::Store(store) => {
                let items: Vec<_> = lines
                    .iter()
                    .zip(actual)
                    .map(|(l, a)| {
                        (
                            l.counter.as_str(),
                            *a,
                            l.window.end + crate::store::COUNTER_RETENTION,
                        )
                    })
                    .collect();
                Ok(store.budget_settle(request_id, &items).await?)
            }
            Ledger::Redis { shared, .. } => {
                let mut inv = shared.scripts.budget_settle.prepare_invoke();
                inv.arg(request_id);
                for (l, a) in lines.iter().zip(actual) {
                    let h = shared.key(&l.counter);
                    inv.key(&h).key(format!("{h}:leases"));
                    inv.arg(*a)
                        .arg(l.window.end + crate::store::COUNTER_RETENTION);
                }
                let spent: Vec<u64> = shared.invoke(&inv).await?;
                Ok(spent)
            }
        }
    }

    /// Spent and reserved on each line's counter.
    pub async fn read(&self, lines: &[Line]) -> Result<Vec<CounterState>, LedgerError> {
        match self {
            Ledger::Store(store) => {
                let names: Vec<&str> = lines.iter().map(|l| l.counter.as_str()).collect();
                Ok(store.budget_read(&names).await?)
            }
            Ledger::Redis { shared, store } => {
                let mut out = Vec::with_capacity(lines.len());
                for l in lines {
                    let mut cmd = redis::cmd("HMGET");
                    cmd.arg(shared.key(&l.counter))
                        .arg("init")
                        .arg("spent")
                        .arg("reserved");
                    let (init, spent, reserved): (Option<u64>, Option<u64>, Option<u64>) =
                        shared.cmd(&cmd).await?;
                    if init.is_none() {
                        // Not started yet: what the store knows.
                        out.push(CounterState {
                            spent: spent_in_store(store, l).await?,
                            reserved: 0,
                        });
                    } else {
                        out.push(CounterState {
                            spent: spent.unwrap_or(0),
                            reserved: reserved.unwrap_or(0),
                        });
                    }
                }
                Ok(out)
            }
        }
    }

    /// Mark an alert as sent; false if it already was (by any instance).
    pub async fn alert_once(
        &self,
        line: &Line,
        threshold: u32,
        now: i64,
    ) -> Result<bool, LedgerError> {
        match self {
            Ledger::Store(store) => Ok(store.alert_once(&line.counter, threshold, now).await?),
            Ledger::Redis { shared, .. } => {
                let mut cmd = redis::cmd("SET");
                cmd.arg(shared.key(&format!("{}:alert:{threshold}", line.counter)))
                    .arg(now)
                    .arg("NX")
                    .arg("EXAT")
                    .arg(line.window.end + crate::store::COUNTER_RETENTION);
                let set: Option<String> = shared.cmd(&cmd).await?;
                Ok(set.is_some())
            }
        }
    }
}

/// Counters in the order every transaction takes them.
pub fn sort(lines: &mut [Line]) {
    lines.sort_by(|a, b| a.counter.cmp(&b.counter));
}

/// The spend the usage records hold for a line's scope and period.
async fn spent_in_store(store: &Store, l: &Line) -> Result<u64, LedgerError> {
    Ok(store
        .usage_sum(
            l.scope.kind.column(),
            &l.scope.name,
            l.budget.unit,
            &UsageFilter {
                since: l.window.start,
                until: Some(l.window.end),
                ..UsageFilter::default()
            },
        )
        .await?)
}

/// Start a Redis counter from the store's spend.
async fn init(shared: &Shared, store: &Store, l: &Line) -> Result<(), LedgerError> {
    let spent = spent_in_store(store, l).await?;
    let mut inv = shared.scripts.budget_init.prepare_invoke();
    inv.key(shared.key(&l.counter))
        .arg(spent)
        .arg(l.window.end + crate::store::COUNTER_RETENTION);
    let _: i64 = shared.invoke(&inv).await?;
    Ok(())
}
