//! Bodies in the request log: which are kept and how they are captured, redacted and cut.
//!
//! Off by default. `[log] bodies`, a provider's `log_bodies` and a key's `log_bodies` say
//! `off`, `client` (the client's request and the reply it got) or `all` (also the request
//! the last attempt sent its provider and the provider's raw response); the most specific
//! wins: the key, then the provider that served (or was tried last), then `[log]`.
//!
//! A [`Capture`] rides with a request whose bodies may be kept. It holds the request as read
//! (a reference to the same bytes, no copy) and taps the reply and the provider's response as
//! they pass, copying at most the limit plus a margin, so a long stream costs a bounded copy.
//! At settlement, off the request path, [`Capture::finish`] decides the level, redacts each
//! body (with the config's [`Redactor`]) and then cuts it to the limit at a character boundary and never inside
//! a word-like run, so that a cut cannot leave a secret's first characters behind.
//!
//! The level ([`BodyLevel`]), the default limit and the [`Redactor`] are `config`'s: the
//! config holds them, and `config` sits below this module.

use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};

use crate::config::{BodyLevel, Redactor};

/// Bytes read past the limit, so that a secret straddling it is still recognised (and
/// redacted) before the cut.
const MARGIN: usize = 512;

/// The bodies kept of one request, redacted and cut, as the store writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BodyRecord {
    /// The provider of the last attempt (whose level decided).
    pub provider: Option<String>,
    pub request: Option<Kept>,
    pub reply: Option<Kept>,
    pub provider_request: Option<Kept>,
    pub provider_response: Option<Kept>,
}

impl BodyRecord {
    /// The four bodies with their names, in the store's column order.
    pub fn parts(&self) -> [(&'static str, &Option<Kept>); 4] {
        [
            ("request", &self.request),
            ("reply", &self.reply),
            ("provider_request", &self.provider_request),
            ("provider_response", &self.provider_response),
        ]
    }

    /// The names of the bodies that were cut, comma-separated.
    pub fn truncated(&self) -> String {
        self.parts()
            .iter()
            .filter(|(_, k)| k.as_ref().is_some_and(|k| k.truncated))
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Bytes the record holds, for the writer queue's bound.
    pub fn size(&self) -> usize {
        self.parts()
            .iter()
            .filter_map(|(_, k)| k.as_ref())
            .map(|k| k.text.len())
            .sum()
    }
}

/// One body as kept: its text (redacted, cut to the limit), the bytes that passed, and
/// whether it was cut.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Kept {
    pub text: String,
    pub bytes: u64,
    pub truncated: bool,
}

/// Bytes that passed, of which the first `limit + MARGIN` are copied.
#[derive(Debug, Default)]
struct Tap {
    buf: BytesMut,
    total: u64,
}

impl Tap {
    fn push(&mut self, data: &[u8], room: usize) {
        self.total += data.len() as u64;
        let take = room.saturating_sub(self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..take]);
    }

    fn whole(bytes: &Bytes) -> Self {
        Self {
            buf: BytesMut::from(&bytes[..]),
            total: bytes.len() as u64,
        }
    }
}

#[derive(Debug, Default)]
struct Captured {
    request: Option<Bytes>,
    reply: Tap,
    /// The last attempt's provider and its own `log_bodies`.
    provider: Option<(String, Option<BodyLevel>)>,
    provider_request: Option<Bytes>,
    provider_response: Tap,
}

/// The bodies of one request as it runs; shared by the handler, the attempts and the stream
/// relay, handed to the settlement with the request's outcome.
#[derive(Debug)]
pub struct Capture {
    limit: usize,
    key: Option<BodyLevel>,
    global: BodyLevel,
    redactor: Arc<Redactor>,
    inner: Mutex<Captured>,
}

impl Capture {
    /// A capture for a request whose key says `key` (its own `log_bodies`), or `None` when
    /// nothing could keep its bodies.
    pub fn start(log: &crate::config::LogSettings, key: Option<BodyLevel>) -> Option<Arc<Self>> {
        let possible = match key {
            Some(level) => level > BodyLevel::Off,
            None => log.bodies > BodyLevel::Off || log.provider_bodies,
        };
        possible.then(|| {
            Arc::new(Self {
                limit: log.body_limit,
                key,
                global: log.bodies,
                redactor: Arc::clone(&log.redactor),
                inner: Mutex::new(Captured::default()),
            })
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Captured> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn room(&self) -> usize {
        self.limit + MARGIN
    }

    /// The client's request, as read.
    pub fn request(&self, body: &Bytes) {
        self.lock().request = Some(body.clone());
    }

    /// A whole reply sent to the client.
    pub fn reply(&self, body: &Bytes) {
        self.lock().reply = Tap::whole(body);
    }

    /// Bytes of a streamed reply, as they go to the client.
    pub fn reply_chunk(&self, data: &[u8]) {
        let room = self.room();
        self.lock().reply.push(data, room);
    }

    /// An attempt is about to send `body` to `provider` (whose own setting is `level`): it
    /// replaces what an earlier attempt captured. True when its response is to be tapped.
    pub fn attempt(&self, provider: &str, level: Option<BodyLevel>, body: &Bytes) -> bool {
        let all = self.key.or(level).unwrap_or(self.global) == BodyLevel::All;
        let mut c = self.lock();
        c.provider = Some((provider.to_owned(), level));
        c.provider_request = all.then(|| body.clone());
        c.provider_response = Tap::default();
        all
    }

    /// Bytes of the provider's response (a whole body, an error body, or stream frames).
    pub fn provider_chunk(&self, data: &[u8]) {
        let room = self.room();
        let mut c = self.lock();
        if c.provider_request.is_some() {
            c.provider_response.push(data, room);
        }
    }

    /// The bodies to keep, redacted and cut, or `None` when the level that applies is
    /// `off`. CPU-bound (redaction): run it off the runtime.
    pub fn finish(&self) -> Option<BodyRecord> {
        let c = std::mem::take(&mut *self.lock());
        let (provider, provider_level) = c.provider.unzip();
        let level = self.key.or(provider_level.flatten()).unwrap_or(self.global);
        if level == BodyLevel::Off {
            return None;
        }
        let keep =
            |tap: Tap| -> Option<Kept> { (tap.total > 0).then(|| self.kept(&tap.buf, tap.total)) };
        let all = level == BodyLevel::All;
        Some(BodyRecord {
            provider,
            request: c
                .request
                .as_ref()
                .map(|b| self.kept(&b[..b.len().min(self.room())], b.len() as u64)),
            reply: keep(c.reply),
            provider_request: c
                .provider_request
                .as_ref()
                .filter(|_| all)
                .map(|b| self.kept(&b[..b.len().min(self.room())], b.len() as u64)),
            provider_response: if all { keep(c.provider_response) } else { None },
        })
    }

    fn kept(&self, bytes: &[u8], total: u64) -> Kept {
        let text = String::from_utf8_lossy(bytes);
        let redacted = self.redactor.redact(&text);
        // Cut only what was past the limit in the original: redaction may shorten or
        // lengthen the text, and what the margin read is there to be cut.
        let cut = total > self.limit as u64 || redacted.len() > self.limit;
        let text = if cut {
            cut_at(&redacted, self.limit)
        } else {
            redacted
        };
        Kept {
            text,
            bytes: total,
            truncated: cut,
        }
    }
}

/// `s` cut to at most `limit` bytes, at a character boundary, and back to the start of the
/// word-like run (letters, digits, `-_+/=.`) the cut falls in, so that no secret's prefix
/// is left at the end.
fn cut_at(s: &str, limit: usize) -> String {
    if s.len() <= limit {
        return s.to_owned();
    }
    let mut end = limit;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let wordy = |c: char| c.is_ascii_alphanumeric() || "-_+/=.".contains(c);
    if s[end..].chars().next().is_some_and(wordy) {
        end = s[..end]
            .char_indices()
            .rev()
            .find(|&(_, c)| !wordy(c))
            .map_or(0, |(i, c)| i + c.len_utf8());
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_never_leaves_a_secret_prefix() {
        assert_eq!(cut_at("hello world", 100), "hello world");
        assert_eq!(cut_at("hello wonderful", 8), "hello ");
        assert_eq!(cut_at("héllo", 2), "h");
        assert_eq!(cut_at("a é b", 3), "a ");
        // The margin lets a secret across the limit be seen whole, then the cut drops it.
        let log = crate::config::LogSettings {
            bodies: BodyLevel::Client,
            body_limit: 20,
            ..Default::default()
        };
        let c = Capture::start(&log, None).unwrap();
        c.request(&Bytes::from_static(
            b"{\"q\":\"abc sk-0123456789abcdefghijkl\"}",
        ));
        let rec = c.finish().unwrap();
        let req = rec.request.unwrap();
        assert_eq!(req.bytes, 37);
        assert!(req.truncated);
        assert!(!req.text.contains("sk-0"), "{}", req.text);
        assert!(req.text.len() <= 20);
    }

    #[test]
    fn the_most_specific_level_decides() {
        let mut log = crate::config::LogSettings::default();
        let body = Bytes::from_static(b"{\"model\":\"m\"}");
        // Off everywhere: nothing is captured at all.
        assert!(Capture::start(&log, None).is_none());
        assert!(Capture::start(&log, Some(BodyLevel::Off)).is_none());
        // A provider asks for all: the request is captured in case it serves.
        log.provider_bodies = true;
        let c = Capture::start(&log, None).unwrap();
        c.request(&body);
        assert!(c.attempt("p", Some(BodyLevel::All), &body));
        c.provider_chunk(b"raw reply");
        let rec = c.finish().unwrap();
        assert_eq!(rec.provider.as_deref(), Some("p"));
        assert_eq!(rec.provider_response.unwrap().text, "raw reply");
        assert!(rec.request.is_some());
        // Served by another provider, which says nothing: the global level (off) applies.
        let c = Capture::start(&log, None).unwrap();
        c.request(&body);
        assert!(c.attempt("p", Some(BodyLevel::All), &body));
        assert!(!c.attempt("q", None, &body));
        assert!(c.finish().is_none());
        // A key that says client wins over the provider's all.
        let c = Capture::start(&log, Some(BodyLevel::Client)).unwrap();
        c.request(&body);
        c.reply(&Bytes::from_static(b"{\"ok\":true}"));
        assert!(!c.attempt("p", Some(BodyLevel::All), &body));
        c.provider_chunk(b"raw");
        let rec = c.finish().unwrap();
        assert!(rec.provider_request.is_none() && rec.provider_response.is_none());
        assert_eq!(rec.reply.unwrap().text, "{\"ok\":true}");
        // A key that says off wins over everything.
        log.bodies = BodyLevel::All;
        assert!(Capture::start(&log, Some(BodyLevel::Off)).is_none());
    }

    #[test]
    fn a_long_stream_is_copied_only_up_to_the_limit() {
        let log = crate::config::LogSettings {
            bodies: BodyLevel::Client,
            body_limit: 100,
            ..Default::default()
        };
        let c = Capture::start(&log, None).unwrap();
        for _ in 0..10_000 {
            c.reply_chunk(b"data: {\"x\":1}\n\n");
        }
        assert!(c.lock().reply.buf.len() <= 100 + MARGIN);
        let reply = c.finish().unwrap().reply.unwrap();
        assert_eq!(reply.bytes, 150_000);
        assert!(reply.text.len() <= 100);
    }
}
