//! What the gateway logs while a test runs: every event at every level, as plain text.
//!
//! The subscriber is this thread's default for as long as the [`Captured`] lives, so it sees
//! what the gateway logs on a current-thread runtime (`#[tokio::test]`'s): its server, its
//! handlers and its store calls all run on the test's thread.

use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub struct Captured {
    buf: Buf,
    _guard: tracing::subscriber::DefaultGuard,
}

/// Capture every event from now until the result is dropped.
pub fn capture() -> Captured {
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    Captured {
        buf,
        _guard: tracing::subscriber::set_default(subscriber),
    }
}

impl Captured {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.0.lock().unwrap()).into_owned()
    }
}
