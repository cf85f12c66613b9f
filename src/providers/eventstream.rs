//! AWS's binary event-stream framing (Bedrock's ConverseStream), turned into the same
//! [`SseEvent`]s the other providers' streams yield: each message's `:event-type` (or, for an
//! exception, its `:exception-type`) as the event name and its JSON payload as the data, so
//! one decoder interface serves both framings. Frames are checked (lengths, CRCs) by the AWS
//! SDK's own decoder.

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use bytes::{Buf, BytesMut};

use super::sse::SseEvent;

/// The most a single message may hold (AWS caps event-stream messages at 16 MiB).
const MAX_BUFFERED: usize = 16 * 1024 * 1024 + 1024;

#[derive(Default)]
pub struct EventStreamParser {
    buf: BytesMut,
    decoder: MessageFrameDecoder,
}

#[derive(Debug)]
pub struct Malformed(pub String);

impl EventStreamParser {
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<SseEvent>) -> Result<(), Malformed> {
        self.buf.extend_from_slice(data);
        loop {
            match self.decoder.decode_frame(&mut self.buf) {
                Ok(DecodedFrame::Complete(m)) => {
                    let header = |name: &str| {
                        m.headers()
                            .iter()
                            .find(|h| h.name().as_str() == name)
                            .and_then(|h| h.value().as_string().ok())
                            .map(|s| s.as_str().to_owned())
                    };
                    let kind = match header(":message-type").as_deref() {
                        Some("exception") => header(":exception-type"),
                        Some("error") => header(":error-code").or(Some("error".to_owned())),
                        _ => header(":event-type"),
                    };
                    out.push(SseEvent {
                        event: kind,
                        data: String::from_utf8_lossy(m.payload()).into_owned(),
                        raw: None,
                    });
                }
                Ok(DecodedFrame::Incomplete) => {
                    if self.buf.remaining() > MAX_BUFFERED {
                        return Err(Malformed("an event-stream message over 16 MiB".into()));
                    }
                    return Ok(());
                }
                Err(e) => return Err(Malformed(e.to_string())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_smithy_eventstream::frame::write_message_to;
    use aws_smithy_types::event_stream::{Header, HeaderValue, Message};

    use super::*;

    fn message(kind: &str, payload: &str) -> Vec<u8> {
        let m = Message::new(payload.as_bytes().to_vec())
            .add_header(Header::new(
                ":message-type",
                HeaderValue::String("event".into()),
            ))
            .add_header(Header::new(
                ":event-type",
                HeaderValue::String(kind.to_owned().into()),
            ))
            .add_header(Header::new(
                ":content-type",
                HeaderValue::String("application/json".into()),
            ));
        let mut out = Vec::new();
        write_message_to(&m, &mut out).unwrap();
        out
    }

    #[test]
    fn messages_are_events_wherever_the_bytes_are_split() {
        let mut bytes = message(
            "contentBlockDelta",
            r#"{"delta":{"text":"Hi"},"contentBlockIndex":0}"#,
        );
        bytes.extend(message("messageStop", r#"{"stopReason":"end_turn"}"#));
        for split in 1..bytes.len() {
            let mut p = EventStreamParser::default();
            let mut out = Vec::new();
            p.feed(&bytes[..split], &mut out).unwrap();
            p.feed(&bytes[split..], &mut out).unwrap();
            assert_eq!(out.len(), 2, "split at {split}");
            assert_eq!(out[0].event.as_deref(), Some("contentBlockDelta"));
            assert_eq!(out[1].data, r#"{"stopReason":"end_turn"}"#);
        }
    }

    #[test]
    fn a_corrupted_frame_is_refused() {
        let mut bytes = message("messageStop", r#"{"stopReason":"end_turn"}"#);
        let n = bytes.len();
        bytes[n - 6] ^= 0xff;
        let mut out = Vec::new();
        assert!(EventStreamParser::default().feed(&bytes, &mut out).is_err());
    }
}
