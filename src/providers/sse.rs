//! Incremental Server-Sent Events parser for provider streams (WHATWG "event stream" rules:
//! `\n`, `\r\n` or `\r` line ends; `data:` lines joined with `\n`; `:` comments ignored; an
//! empty line dispatches). Feed it bytes as they arrive, in chunks of any size: the events
//! are the same wherever the chunk boundaries fall (property-tested below).

use bytes::{Buf, BytesMut};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, when present.
    pub event: Option<String>,
    pub data: String,
}

impl SseEvent {
    /// The event written back as SSE text, for relaying it as it came.
    pub fn to_bytes(&self) -> bytes::Bytes {
        let mut out = Vec::with_capacity(self.data.len() + 32);
        if let Some(name) = &self.event {
            out.extend_from_slice(b"event: ");
            out.extend_from_slice(name.as_bytes());
            out.push(b'\n');
        }
        let data = self.data.as_bytes();
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', data).chain([data.len()]) {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(&data[start..end]);
            out.push(b'\n');
            start = end + 1;
        }
        out.push(b'\n');
        bytes::Bytes::from(out)
    }
}

#[derive(Debug, Default)]
pub struct SseParser {
    buf: BytesMut,
    event: Option<String>,
    data: String,
    has_data: bool,
    /// The previous chunk ended with `\r`: a `\n` starting the next one belongs to it.
    skip_lf: bool,
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
        let mut chunk = chunk;
        if chunk.is_empty() {
            return Ok(());
        }
        if self.skip_lf {
            self.skip_lf = false;
            if chunk.first() == Some(&b'\n') {
                chunk = &chunk[1..];
            }
        }
        self.buf.extend_from_slice(chunk);
        // Lines are read in place and the buffer advanced once, past the last whole line.
        let buf = std::mem::take(&mut self.buf);
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
            self.line(&buf[start..end], out);
            start = next;
        }
        self.buf = buf;
        self.buf.advance(start);
        if self.buf.len() > MAX_LINE_BYTES {
            return Err(LineTooLong);
        }
        Ok(())
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if self.has_data {
                out.push(SseEvent {
                    event: self.event.take(),
                    data: std::mem::take(&mut self.data),
                });
                self.has_data = false;
            } else {
                self.event = None;
            }
            return;
        }
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
            Err(_) => String::from_utf8_lossy(value),
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
                    data: "{\"a\":1}".into()
                },
                SseEvent {
                    event: None,
                    data: "line1\nline2".into()
                },
                SseEvent {
                    event: None,
                    data: "nospace".into()
                },
                SseEvent {
                    event: None,
                    data: "[DONE]".into()
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

    proptest! {
        #[test]
        fn arbitrary_chunking_is_invisible(
            events in prop::collection::vec(("[a-z_]{0,8}", "[ -~]{0,40}", 0usize..3), 0..12),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let endings: [&str; 3] = ["\n", "\r\n", "\r"];
            let mut text = String::new();
            for (name, data, e) in &events {
                let nl = endings[*e];
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
            prop_assert_eq!(parse_all(&chunks), whole);
        }
    }
}
