//! Bedrock's ConverseStream: AWS's binary event-stream framing (`providers::eventstream`,
//! frames checked by the AWS SDK's decoder), then the Converse stream decoder.

use crate::config::ProviderKind;
use crate::providers::StreamMode;
use crate::providers::eventstream::EventStreamParser;
use crate::providers::sse::SseEvent;

/// Chunk sizes the bytes are cut into besides one piece: a prelude (12 bytes) and a header
/// split across reads.
const CHUNK_SIZES: &[usize] = &[1, 3, 12, 64];

/// A Bedrock provider's `converse-stream` body: framed into events in several chunkings
/// (which must agree, events and failure alike), then decoded and encoded for every client
/// schema as the relay does. A framing failure ends the events where it happened, as it ends
/// the relay's stream.
pub fn bedrock_stream(data: &[u8]) {
    let whole = frames(data, data.len().max(1));
    for &size in CHUNK_SIZES {
        let cut = frames(data, size);
        assert!(
            cut == whole,
            "event-stream frames differ when the bytes are cut into {size}-byte chunks"
        );
    }
    let (events, _failed) = whole;
    if let Some(a) = super::adapter(ProviderKind::Bedrock) {
        super::relay(a.stream_decoder(StreamMode::default()).as_mut(), &events);
    }
}

/// The events of `data` fed in `size`-byte chunks, and whether the framing failed.
fn frames(data: &[u8], size: usize) -> (Vec<SseEvent>, bool) {
    let mut parser = EventStreamParser::default();
    let mut out = Vec::new();
    for chunk in data.chunks(size) {
        if parser.feed(chunk, &mut out).is_err() {
            return (out, true);
        }
    }
    (out, false)
}
