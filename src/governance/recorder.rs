//! The request log's writer: requests hand their [`UsageRecord`] to a bounded queue and go
//! on; one task writes them to the store in batches (up to [`BATCH`] rows per transaction),
//! lingering [`LINGER`] after the first record of a batch so that a steady trickle of
//! requests is written a few dozen rows at a time rather than one transaction each (a row
//! then costs a fifth of the CPU). A batch the store refuses is retried with backoff, never
//! dropped. While the store stalls, records wait in the queue; once it is full, new records
//! are dropped and counted (`gatehouse_log_records_dropped_total`) rather than let memory
//! grow (RELIABILITY 26), and the queue drains when the store is back. [`Recorder::flush`]
//! waits until everything handed over is written (shutdown, tests); a `kill -9` loses what
//! waited, at most about one linger of a healthy store's traffic (RELIABILITY 25).
//!
//! Records that carry bodies (`log_bodies`) are bounded twice: by the queue's length, and by
//! [`MAX_QUEUED_BODY_BYTES`] of bodies waiting in all; past that a record goes on without its
//! bodies (counted in `gatehouse_log_bodies_dropped_total`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::store::{Store, UsageRecord};

/// Rows per transaction at most. Under load every batch is full; a commit (its WAL frames,
/// the hot B-tree pages written again, the roll-up rows) is then paid once per 1,024 rows:
/// at 64 connections the writer's CPU went from about 4.0 to 3.2 µs a request with 256.
const BATCH: usize = 1024;
/// Bodies that may wait for the store in all: 64 MiB.
pub const MAX_QUEUED_BODY_BYTES: u64 = 64 * 1024 * 1024;
/// How long a batch waits for more records after its first.
const LINGER: Duration = Duration::from_millis(50);

pub struct Recorder {
    tx: mpsc::Sender<UsageRecord>,
    /// Records handed over and not yet written.
    pending: Arc<AtomicU64>,
    /// Bytes of bodies handed over and not yet written.
    body_bytes: Arc<AtomicU64>,
    /// Records dropped because the queue was full.
    dropped: AtomicU64,
    /// Also write each record as a log line.
    log_lines: bool,
}

/// The longest wait between two tries of a batch the store refused.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

impl Recorder {
    /// A writer whose queue holds at most `capacity` records; with `log_lines`, each record
    /// is also a log line (`--log-format json` makes it one JSON object).
    pub fn new(store: Store, capacity: usize, log_lines: bool) -> Self {
        let (tx, mut rx) = mpsc::channel::<UsageRecord>(capacity.max(1));
        let pending = Arc::new(AtomicU64::new(0));
        let left = Arc::clone(&pending);
        let body_bytes = Arc::new(AtomicU64::new(0));
        let bodies_left = Arc::clone(&body_bytes);
        // Not on `crate::tasks`: the writer ends only when its queue is dropped, with the
        // state; shutdown waits on `flush` (every record handed over written) instead.
        #[expect(
            clippy::disallowed_methods,
            reason = "lives as long as its queue; shutdown waits on its flush, not its end"
        )]
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
                // Counted before the write: a batch whose writer thread panicked does not
                // come back, and what it held must still leave the counts (or `flush` would
                // wait for it forever).
                let rows = batch.len() as u64;
                let batch_bodies: u64 = batch
                    .iter()
                    .filter_map(|r| r.bodies.as_ref())
                    .map(|b| b.size() as u64)
                    .sum();
                let mut wait = Duration::from_millis(100);
                while let Err(e) = store.insert_usage(&mut batch).await {
                    tracing::error!(error = %e, rows, "could not write usage records; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(MAX_BACKOFF);
                }
                bodies_left.fetch_sub(batch_bodies, Ordering::AcqRel);
                let left_now = left.fetch_sub(rows, Ordering::AcqRel) - rows;
                crate::metrics::log_queue(left_now);
                batch.clear();
            }
        });
        Self {
            tx,
            pending,
            body_bytes,
            dropped: AtomicU64::new(0),
            log_lines,
        }
    }

    pub fn record(&self, mut r: UsageRecord) {
        if let Some(size) = r.bodies.as_ref().map(|b| b.size() as u64) {
            let queued = self.body_bytes.fetch_add(size, Ordering::AcqRel) + size;
            if queued > MAX_QUEUED_BODY_BYTES {
                self.body_bytes.fetch_sub(size, Ordering::AcqRel);
                r.bodies = None;
                crate::metrics::log_bodies_dropped();
            }
        }
        if self.log_lines {
            tracing::info!(
                target: "gatehouse::request",
                request_id = %r.request_id,
                key = r.key_name.as_deref().unwrap_or(""),
                team = r.team.as_deref().unwrap_or(""),
                schema = r.client_schema,
                requested_model = %r.requested_model,
                provider = r.provider.as_deref().unwrap_or(""),
                model = r.model.as_deref().unwrap_or(""),
                route = r.route.as_deref().unwrap_or(""),
                status = r.status,
                http_status = r.http_status,
                error_class = r.error_class.unwrap_or(""),
                latency_ms = r.latency_ms.unwrap_or(0),
                ttft_ms = r.ttft_ms.unwrap_or(0),
                input_tokens = r.input_tokens,
                output_tokens = r.output_tokens,
                cost_usd = r.cost_nanos as f64 / crate::config::NANOS_PER_USD,
                "request"
            );
        }
        let pending = self.pending.fetch_add(1, Ordering::AcqRel) + 1;
        match self.tx.try_send(r) {
            Ok(()) => crate::metrics::log_queue(pending),
            Err(e) => {
                self.pending.fetch_sub(1, Ordering::AcqRel);
                let bodies = match &e {
                    mpsc::error::TrySendError::Full(r) | mpsc::error::TrySendError::Closed(r) => {
                        r.bodies.as_ref().map_or(0, |b| b.size() as u64)
                    }
                };
                self.body_bytes.fetch_sub(bodies, Ordering::AcqRel);
                let n = self.dropped.fetch_add(1, Ordering::AcqRel) + 1;
                crate::metrics::log_dropped();
                // Said once per thousand, not once per request, while the store stalls.
                if n % 1_000 == 1 {
                    let why = match e {
                        mpsc::error::TrySendError::Full(_) => {
                            "the log queue is full (the store is slow or down)"
                        }
                        mpsc::error::TrySendError::Closed(_) => "the log writer stopped",
                    };
                    tracing::error!(dropped = n, "request records dropped: {why}");
                }
            }
        }
    }

    /// Records dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Acquire)
    }

    /// Records handed over and not yet written.
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Acquire)
    }

    /// Wait (until `deadline` at most) for every record handed over to be written.
    pub async fn flush(&self, deadline: tokio::time::Instant) -> bool {
        crate::drained(&self.pending, deadline).await
    }
}
