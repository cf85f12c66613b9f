//! Background work the gateway must not lose: one process-wide [`TaskTracker`] that
//! shutdown waits on (STYLE §4.7).
//!
//! Every task that does work a user would lose if the process ended under it is spawned
//! here ([`spawn`], [`spawn_on`]): a mirror shadow, the write of a streamed stored Responses
//! reply, a settlement that awaits the store or Redis, the release of a refused request's
//! rate-limit lease, a request that must outlive its client (`cancel_on_disconnect = false`). On SIGTERM, `server::run` closes the listener, lets in-flight requests
//! finish, then [`drain`]s this tracker until the same drain deadline (logging what was
//! left, by kind, if it passes), and only then flushes the usage and trace writers, so what
//! these tasks record is written too.
//!
//! Raw `tokio::spawn` is banned (`clippy.toml`). The tasks still spawned that way say why at
//! their site: per-connection tasks (the provider pool's connection drivers and body drains,
//! which end with their connection and hold nothing of a request), loops that live as long
//! as the server and are aborted at shutdown (the timer tick, the key refresh, the reload
//! triggers, the Redis health check, the busy-poll spinner), and the two batch writers (the
//! request log's and trace export's), which end only when their queue is dropped: shutdown
//! waits on their flush (everything handed to them written) rather than on their end.
//! `spawn_blocking` for CPU work awaited in place is not background work and stays allowed.
//!
//! Why one per process rather than a handle in `AppState`: settlements start in
//! `Admission`'s `Drop` and mirror shadows deep in the pipeline, and neither holds the
//! state; threading a handle to them would change the signatures of governance and the
//! pipeline for one clone each. A process serves one gateway; where tests run several in
//! one process, the shutdown of one also waits for the others' tasks, still bounded by its
//! drain deadline.

use std::future::Future;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

/// What a tracked task does, for the log of what a drain deadline cut.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// A shadow copy of a request sent to a mirror, and its record.
    Mirror,
    /// The background write of a streamed stored Responses reply.
    StoredResponse,
    /// A request's settlement: budgets, leases, redaction, its record and trace.
    Settlement,
    /// The release of the rate-limit lease of a request admission refused.
    Release,
    /// Keeping a streamed reply for its `Idempotency-Key`, or giving the key back.
    Idempotency,
    /// A request served on a task of its own, so that its client leaving does not cut it
    /// (`[server] cancel_on_disconnect = false`: `pipeline::detach`).
    Request,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Mirror,
        Kind::StoredResponse,
        Kind::Settlement,
        Kind::Release,
        Kind::Idempotency,
        Kind::Request,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Kind::Mirror => "mirror",
            Kind::StoredResponse => "stored_response",
            Kind::Settlement => "settlement",
            Kind::Release => "release",
            Kind::Idempotency => "idempotency",
            Kind::Request => "request",
        }
    }
}

/// The tracker; created on first use, never dropped. Closed by [`drain`] (tasks spawned
/// after that are still tracked: closing only lets `wait` end once none is left).
static TRACKER: LazyLock<TaskTracker> = LazyLock::new(TaskTracker::new);
/// Tasks running, by [`Kind`] (in `Kind::ALL` order).
static RUNNING: [AtomicUsize; Kind::ALL.len()] = [const { AtomicUsize::new(0) }; Kind::ALL.len()];

/// One running task of a kind; counted down however the task ends (done, panicked,
/// aborted, or dropped with its runtime).
struct Running(Kind);

impl Running {
    fn start(kind: Kind) -> Self {
        RUNNING[kind as usize].fetch_add(1, Ordering::Relaxed);
        Self(kind)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING[self.0 as usize].fetch_sub(1, Ordering::Relaxed);
    }
}

fn counted<F: Future>(kind: Kind, task: F) -> impl Future<Output = F::Output> {
    let running = Running::start(kind);
    async move {
        let out = task.await;
        drop(running);
        out
    }
}

/// Spawn `task` on the current runtime, tracked. Panics outside a runtime, as
/// `tokio::spawn` does; see [`spawn_on`] where there may be none.
pub fn spawn<F>(kind: Kind, task: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    TRACKER.spawn(counted(kind, task))
}

/// Spawn `task` on `handle`, tracked (for `Drop` impls, which find the runtime with
/// `Handle::try_current`).
pub fn spawn_on<F>(kind: Kind, task: F, handle: &Handle) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    TRACKER.spawn_on(counted(kind, task), handle)
}

/// Tracked tasks still running.
pub fn running() -> usize {
    TRACKER.len()
}

/// Close the tracker and wait until every tracked task has ended (true) or `deadline`
/// passed (false, and a warning naming how many of each kind were left: they are cut when
/// the process exits).
pub async fn drain(deadline: tokio::time::Instant) -> bool {
    TRACKER.close();
    if tokio::time::timeout_at(deadline, TRACKER.wait())
        .await
        .is_ok()
    {
        return true;
    }
    let left: Vec<String> = Kind::ALL
        .iter()
        .filter_map(|k| {
            let n = RUNNING[*k as usize].load(Ordering::Relaxed);
            (n > 0).then(|| format!("{}={n}", k.as_str()))
        })
        .collect();
    tracing::warn!(
        tasks = TRACKER.len(),
        left = %left.join(" "),
        "drain deadline reached with background tasks still running; they end with the process"
    );
    false
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn drain_waits_for_tracked_tasks_until_its_deadline() {
        let done = Arc::new(AtomicBool::new(false));
        let d = Arc::clone(&done);
        spawn(Kind::Mirror, async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            d.store(true, Ordering::SeqCst);
        });
        assert_eq!(RUNNING[Kind::Mirror as usize].load(Ordering::Relaxed), 1);
        assert!(!drain(Instant::now() + Duration::from_secs(1)).await);
        assert!(!done.load(Ordering::SeqCst));
        assert!(drain(Instant::now() + Duration::from_secs(5)).await);
        assert!(done.load(Ordering::SeqCst));
        assert_eq!(RUNNING[Kind::Mirror as usize].load(Ordering::Relaxed), 0);
        assert_eq!(running(), 0);
    }
}
