//! The usage writer: requests hand their [`UsageRecord`] to a channel and go on; one task
//! writes them to the store in batches (up to [`BATCH`] rows per transaction), lingering
//! [`LINGER`] after the first record of a batch so that a steady trickle of requests is
//! written a few dozen rows at a time rather than one transaction each (a row then costs a
//! fifth of the CPU). A batch the store refuses is retried with backoff, never dropped;
//! [`Recorder::flush`] waits until everything handed over is written (shutdown, tests).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::store::{Store, UsageRecord};

const BATCH: usize = 256;
/// How long a batch waits for more records after its first.
const LINGER: Duration = Duration::from_millis(50);

pub struct Recorder {
    tx: mpsc::UnboundedSender<UsageRecord>,
    /// Records handed over and not yet written.
    pending: Arc<AtomicU64>,
}

impl Recorder {
    pub fn new(store: Store) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<UsageRecord>();
        let pending = Arc::new(AtomicU64::new(0));
        let left = Arc::clone(&pending);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                let deadline = tokio::time::Instant::now() + LINGER;
                while batch.len() < BATCH {
                    let room = BATCH - batch.len();
                    match tokio::time::timeout_at(deadline, rx.recv_many(&mut batch, room)).await {
                        Ok(n) if n > 0 => {}
                        // Closed, or the linger is over.
                        _ => break,
                    }
                }
                let mut wait = Duration::from_millis(100);
                while let Err(e) = store.insert_usage(&batch).await {
                    tracing::error!(error = %e, rows = batch.len(), "could not write usage records; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
                left.fetch_sub(batch.len() as u64, Ordering::AcqRel);
                batch.clear();
            }
        });
        Self { tx, pending }
    }

    pub fn record(&self, r: UsageRecord) {
        self.pending.fetch_add(1, Ordering::AcqRel);
        if self.tx.send(r).is_err() {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            tracing::error!("usage writer stopped; a usage record was not written");
        }
    }

    /// Wait (until `deadline` at most) for every record handed over to be written.
    pub async fn flush(&self, deadline: tokio::time::Instant) -> bool {
        drained(&self.pending, deadline).await
    }
}

/// Wait until `counter` is 0 (true), or `deadline` passes (false).
pub async fn drained(counter: &AtomicU64, deadline: tokio::time::Instant) -> bool {
    while counter.load(Ordering::Acquire) > 0 {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}
