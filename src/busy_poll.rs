//! Busy polling (`[server] busy_poll`): after each request starts or ends, the runtime's
//! thread keeps polling for I/O for a short window instead of blocking in `epoll_wait` at once.
//!
//! Why: on a virtual machine a CPU with nothing to run halts, and waking it for the next
//! packet costs tens of microseconds (an exit to the host, the host's scheduler, the idle
//! tick re-armed). A proxied request crosses that wake twice on the gateway's side: the
//! client's request, then the provider's reply. Linux guests avoid it with haltpoll (the CPU
//! polls up to `guest_halt_poll_ns`, 200 µs by default, before it halts), but hosts may turn
//! that off, as ours do (`haltpoll.guest_halt_poll_ns=0`). This is the same trade made in
//! the gateway: CPU time for latency, bounded by the window.
//!
//! How: one task, the spinner, yields in a loop. tokio runs a task that yielded only after it
//! has polled its I/O driver without blocking (`epoll_wait` with a zero timeout), so while the
//! spinner is awake the thread never sleeps and a ready socket is seen within one turn of the
//! loop. [`Activity::mark`] is called when a request starts and when its response body is
//! done (its last frame handed to hyper, or the client gone); when `window` has passed with no
//! mark, the spinner goes dormant until the next one, so an idle gateway uses no CPU and a
//! busy one (never idle anyway) loses nothing measurable. The time spent spinning and the
//! wake-ups are metrics (`gatehouse_busy_poll_microseconds_total`,
//! `gatehouse_busy_poll_wakeups_total`): what the setting costs, in CPU.
//!
//! Only tokio's single-threaded runtime (one worker: one CPU, or `GATEHOUSE_WORKERS=1`):
//! under the multi-threaded scheduler a parked worker holds the I/O driver while it blocks,
//! so a spinning worker could not poll it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Marks of request activity, shared by the connections and the spinner.
#[derive(Debug, Default)]
pub struct Activity {
    marks: AtomicU64,
    dormant: AtomicBool,
    wake: Notify,
}

impl Activity {
    /// Start the spinner on the current runtime with this window; the handle is the
    /// spinner's task (abort it to stop). `None` (and a warning) when the runtime is not
    /// single-threaded.
    pub fn start(window: Duration) -> Option<(Arc<Self>, tokio::task::JoinHandle<()>)> {
        let handle = tokio::runtime::Handle::current();
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread {
            tracing::warn!(
                "server.busy_poll needs the single-threaded runtime (one CPU, or GATEHOUSE_WORKERS=1); it is off"
            );
            return None;
        }
        let activity = Arc::new(Self::default());
        #[expect(
            clippy::disallowed_methods,
            reason = "the spinner lives as long as the server, which aborts it at shutdown; it does no work"
        )]
        let spinner = handle.spawn(Arc::clone(&activity).spin(window));
        Some((activity, spinner))
    }

    /// A request started or its response body is done: keep (or start) polling.
    ///
    /// `SeqCst` here and in the spinner: the spinner stores `dormant` then reads `marks`, a
    /// mark adds to `marks` then reads `dormant`, and only a single total order guarantees
    /// that one of the two sees the other (marks come from the runtime's own thread today,
    /// where this holds anyway). On x86 the add is a locked instruction either way.
    #[inline]
    pub fn mark(&self) {
        self.marks.fetch_add(1, Ordering::SeqCst);
        if self.dormant.load(Ordering::SeqCst) && self.dormant.swap(false, Ordering::SeqCst) {
            // Stores a permit if the spinner is between deciding to sleep and sleeping.
            self.wake.notify_one();
        }
    }

    /// How many marks so far (for tests).
    pub fn marks(&self) -> u64 {
        self.marks.load(Ordering::SeqCst)
    }

    /// Is the spinner asleep, waiting for a mark (for tests)?
    pub fn is_dormant(&self) -> bool {
        self.dormant.load(Ordering::SeqCst)
    }

    // The window is wall time: under tokio's paused test clock a spinner (never idle) would
    // never see time advance.
    #[expect(
        clippy::disallowed_methods,
        reason = "the window is measured in wall time"
    )]
    async fn spin(self: Arc<Self>, window: Duration) {
        let mut awake_since = Instant::now();
        loop {
            let mut seen = self.marks.load(Ordering::SeqCst);
            let mut since = Instant::now();
            loop {
                tokio::task::yield_now().await;
                let now = self.marks.load(Ordering::SeqCst);
                if now != seen {
                    seen = now;
                    since = Instant::now();
                } else if since.elapsed() >= window {
                    break;
                }
            }
            self.dormant.store(true, Ordering::SeqCst);
            // A mark between the last look and the store above found `dormant` false and
            // left no permit: look once more before sleeping.
            if self.marks.load(Ordering::SeqCst) != seen {
                self.dormant.store(false, Ordering::SeqCst);
                continue;
            }
            crate::metrics::busy_poll_spun(awake_since.elapsed());
            self.wake.notified().await;
            crate::metrics::busy_poll_woke();
            awake_since = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn spins_after_a_mark_then_sleeps() {
        let window = Duration::from_millis(20);
        let (a, spinner) = Activity::start(window).expect("current-thread runtime");
        // Dormant once the first window passes with no mark.
        assert!(
            dormant_within(&a, Duration::from_secs(2)).await,
            "the spinner sleeps when nothing happens"
        );
        a.mark();
        assert!(!a.is_dormant(), "a mark wakes it");
        tokio::task::yield_now().await;
        assert!(!a.is_dormant(), "still spinning within the window");
        assert!(
            dormant_within(&a, Duration::from_secs(2)).await,
            "asleep again after the window"
        );
        assert_eq!(a.marks(), 1);
        spinner.abort();
    }

    /// Waits (on wall time, as the spinner does) until the spinner sleeps.
    async fn dormant_within(a: &Activity, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if a.is_dormant() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        a.is_dormant()
    }

    /// This thread's voluntary context switches: each time it blocked in the kernel.
    #[cfg(target_os = "linux")]
    fn blocked_so_far() -> u64 {
        let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap()
    }

    /// How often the runtime's thread blocked while a socket's data arrived 30 ms late.
    #[cfg(target_os = "linux")]
    async fn blocks_while_waiting_for_a_socket() -> u64 {
        use tokio::io::AsyncReadExt;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            let (mut s, _) = listener.accept().unwrap();
            std::thread::sleep(Duration::from_millis(30));
            s.write_all(b"x").unwrap();
            s
        });
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        let before = blocked_so_far();
        let mut b = [0u8; 1];
        conn.read_exact(&mut b).await.unwrap();
        let after = blocked_so_far();
        drop(writer.join().unwrap());
        after - before
    }

    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "current_thread")]
    async fn a_spinning_thread_sees_io_without_blocking() {
        // Without the spinner, the wait blocks the thread in epoll_wait.
        assert!(blocks_while_waiting_for_a_socket().await >= 1);
        let (a, _spinner) =
            Activity::start(Duration::from_millis(500)).expect("current-thread runtime");
        a.mark();
        assert_eq!(
            blocks_while_waiting_for_a_socket().await,
            0,
            "the spinner's zero-timeout polls found the data"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refuses_the_multi_threaded_runtime() {
        assert!(Activity::start(Duration::from_micros(100)).is_none());
    }
}
