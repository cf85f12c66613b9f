//! Incremental Server-Sent Events parser for provider streams (WHATWG "event stream" rules:
//! `\n`, `\r\n` or `\r` line ends; `data:` lines joined with `\n`; `:` comments ignored; an
//! empty line dispatches). Feed it bytes as they arrive, in chunks of any size: the events
//! are the same wherever the chunk boundaries fall (property-tested below).
//!
//! An event that arrived whole in one read and is already in the form [`SseEvent::to_bytes`]
//! writes (`event: ` and `data: ` lines ending in `\n`, nothing else), as providers send
//! them, keeps its bytes as they came ([`SseEvent::raw`], a slice of the read, not a copy):
//! a stream relayed unchanged then costs no rebuilding of each event.

use bytes::{Buf, Bytes, BytesMut};

pub use crate::codec::upstream_stream::SseEvent;

#[derive(Debug, Default)]
pub struct SseParser {
    /// The start of a line that has not ended yet.
    buf: BytesMut,
    event: Option<String>,
    data: String,
    has_data: bool,
    /// The previous chunk ended with `\r`: a `\n` starting the next one belongs to it.
    skip_lf: bool,
    /// The event being read has a line (it ends at the next empty line).
    open: bool,
    /// Where the event being read starts in the bytes being scanned; `None` when it began in
    /// an earlier read (its bytes are gone, so it gets no `raw`).
    start: Option<usize>,
    /// Every line of the event being read is in `to_bytes`' form.
    plain: bool,
    /// Events of this scan that get their bytes: (index in `out`, start, end).
    spans: Vec<(usize, usize, usize)>,
}

/// A line longer than this without an end is a broken or hostile stream.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineTooLong;

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add bytes and append every event they complete to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), LineTooLong> {
        self.feed_bytes(Bytes::copy_from_slice(chunk), out)
    }

    /// [`Self::feed`] for bytes already shared: events that lie whole in them keep a slice of
    /// them as their `raw` bytes.
    pub fn feed_bytes(&mut self, chunk: Bytes, out: &mut Vec<SseEvent>) -> Result<(), LineTooLong> {
        let mut chunk = chunk;
        if chunk.is_empty() {
            return Ok(());
        }
        if self.skip_lf {
            self.skip_lf = false;
            if chunk.first() == Some(&b'\n') {
                chunk.advance(1);
            }
        }
        // Lines are read in place: straight from the chunk when no line is pending (the
        // common case), else from the pending start with the chunk appended.
        if self.buf.is_empty() {
            let used = self.scan(&chunk, out);
            self.attach(&chunk, out);
            self.buf.extend_from_slice(&chunk[used..]);
        } else {
            self.buf.extend_from_slice(&chunk);
            let buf = std::mem::take(&mut self.buf);
            let used = self.scan(&buf, out);
            self.buf = buf;
            let done = self.buf.split_to(used).freeze();
            self.attach(&done, out);
        }
        if self.buf.len() > MAX_LINE_BYTES {
            return Err(LineTooLong);
        }
        Ok(())
    }

    /// Read every whole line of `buf`; how many bytes that was.
    fn scan(&mut self, buf: &[u8], out: &mut Vec<SseEvent>) -> usize {
        // Offsets are into `buf`: an event begun in an earlier read has no start here.
        self.start = None;
        self.spans.clear();
        let mut start = 0;
        while let Some(rel) = memchr::memchr2(b'\n', b'\r', &buf[start..]) {
            let end = start + rel;
            let mut next = end + 1;
            if buf[end] == b'\r' {
                match buf.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
            self.line(&buf[start..end], start, buf[end] == b'\n', out);
            if !self.open
                && let Some(at) = self.start.take()
            {
                // The line just read ended an event in `to_bytes`' form, all of it here.
                self.spans.push((out.len() - 1, at, next));
            }
            start = next;
        }
        start
    }

    /// Give the events of the last scan their bytes, out of `source` (the bytes scanned).
    fn attach(&mut self, source: &Bytes, out: &mut [SseEvent]) {
        for &(i, start, end) in &self.spans {
            out[i].raw = Some(source.slice(start..end));
        }
        self.spans.clear();
    }

    /// One line, found at `at` in the bytes scanned; `lf` when it ended with `\n` alone.
    fn line(&mut self, line: &[u8], at: usize, lf: bool, out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if self.has_data {
                out.push(SseEvent {
                    event: self.event.take(),
                    data: std::mem::take(&mut self.data),
                    raw: None,
                });
                self.has_data = false;
                // The scan gives it its bytes when they are in `to_bytes`' form.
                if !(self.plain && lf) {
                    self.start = None;
                }
            } else {
                self.event = None;
                self.start = None;
            }
            self.open = false;
            return;
        }
        if !self.open {
            self.open = true;
            self.plain = true;
            self.start = Some(at);
        }
        // The first line of an event may name it; every other line must be data.
        let first = self.start == Some(at);
        self.plain &=
            lf && (line.starts_with(b"data: ") || (first && line.starts_with(b"event: ")));
        if line[0] == b':' {
            return;
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        // Valid UTF-8 (the rule) is checked on the fast path; anything else is repaired.
        let value = match std::str::from_utf8(value) {
            Ok(v) => std::borrow::Cow::Borrowed(v),
            Err(_) => {
                self.plain = false;
                String::from_utf8_lossy(value)
            }
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&value);
                self.has_data = true;
            }
            b"event" => self.event = Some(value.into_owned()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c, &mut out).unwrap();
        }
        out
    }

    const SAMPLE: &[u8] = b": comment\n\nevent: message_start\ndata: {\"a\":1}\n\ndata: line1\r\ndata: line2\r\n\r\ndata:nospace\r\rdata: [DONE]\n\n";

    #[test]
    fn parses_fields_and_line_endings() {
        let ev = parse_all(&[SAMPLE]);
        assert_eq!(
            ev,
            vec![
                SseEvent {
                    event: Some("message_start".into()),
                    data: "{\"a\":1}".into(),
                    raw: None,
                },
                SseEvent {
                    event: None,
                    data: "line1\nline2".into(),
                    raw: None,
                },
                SseEvent {
                    event: None,
                    data: "nospace".into(),
                    raw: None,
                },
                SseEvent {
                    event: None,
                    data: "[DONE]".into(),
                    raw: None,
                },
            ]
        );
    }

    #[test]
    fn every_split_point_gives_the_same_events() {
        let whole = parse_all(&[SAMPLE]);
        for i in 0..=SAMPLE.len() {
            assert_eq!(
                parse_all(&[&SAMPLE[..i], &SAMPLE[i..]]),
                whole,
                "split at {i}"
            );
        }
    }

    /// The event as `to_bytes` builds it, without its memo.
    fn rebuilt(e: &SseEvent) -> Bytes {
        SseEvent {
            raw: None,
            ..e.clone()
        }
        .to_bytes()
    }

    #[test]
    fn events_in_relay_form_keep_their_own_bytes() {
        let text = b"data: {\"a\":1}\n\nevent: delta\ndata: x\ndata: y\n\n: hi\ndata: z\n\ndata:nospace\n\nid: 7\ndata: w\n\ndata: v\r\n\r\ndata: u\ndata: t\nevent: late\n\n";
        let events = parse_all(&[text]);
        let raw: Vec<Option<&[u8]>> = events.iter().map(|e| e.raw.as_deref()).collect();
        assert_eq!(
            raw,
            [
                Some(&b"data: {\"a\":1}\n\n"[..]),
                Some(&b"event: delta\ndata: x\ndata: y\n\n"[..]),
                // A comment, no space after the colon, another field, CRLF, a late name:
                // rebuilt instead.
                None,
                None,
                None,
                None,
                None,
            ]
        );
        for e in &events {
            assert_eq!(e.to_bytes(), rebuilt(e));
        }
        // Cut after the second event's first line: it began in the earlier read and is
        // rebuilt.
        let events = parse_all(&[&text[..30], &text[30..]]);
        assert!(events[0].raw.is_some() && events[1].raw.is_none());
        assert_eq!(events[1].to_bytes(), rebuilt(&events[1]));
        // Cut inside the first line: the pending start and the rest make it whole again.
        let events = parse_all(&[&text[..3], &text[3..]]);
        assert_eq!(events[0].raw.as_deref(), Some(&b"data: {\"a\":1}\n\n"[..]));
    }

    proptest! {
        /// However a stream is cut into reads, it gives the same events, and the bytes an
        /// event keeps are what rebuilding it gives.
        #[test]
        fn arbitrary_chunking_is_invisible(
            events in prop::collection::vec(("[a-z_]{0,8}", "[ -~]{0,40}", 0usize..3, any::<bool>()), 0..12),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let endings: [&str; 3] = ["\n", "\r\n", "\r"];
            let mut text = String::new();
            for (name, data, e, comment) in &events {
                let nl = endings[*e];
                if *comment { text.push_str(&format!(": c{nl}")); }
                if !name.is_empty() { text.push_str(&format!("event: {name}{nl}")); }
                text.push_str(&format!("data: {data}{nl}{nl}"));
            }
            let bytes = text.as_bytes();
            let whole = parse_all(&[bytes]);
            prop_assert_eq!(whole.len(), events.len());
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut last = 0;
            for p in points { chunks.push(&bytes[last..p]); last = p; }
            chunks.push(&bytes[last..]);
            let cut = parse_all(&chunks);
            for e in whole.iter().chain(&cut) {
                prop_assert_eq!(e.to_bytes(), rebuilt(e));
            }
            prop_assert_eq!(cut, whole);
        }
    }
}
