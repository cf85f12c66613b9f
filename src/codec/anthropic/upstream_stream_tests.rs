//! Tests of the Anthropic stream decoder (`upstream_stream`): a realistic stream decoded to
//! canonical events, the same events wherever the bytes are cut, a round trip through the
//! ingress `MessageEncoder`, skipped block and event types, and in-stream errors.

use bytes::BytesMut;
use proptest::prelude::*;

use super::*;
use crate::providers::sse::{self, SseParser};
use crate::providers::{StreamDecoder, StreamStep};
use crate::schema::*;

const STREAM: &str = concat!(
    "event: message_start\n",
    r#"data: {"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":472,"cache_creation_input_tokens":0,"cache_read_input_tokens":2048,"output_tokens":2}}}"#,
    "\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\n",
    "event: content_block_start\n",
    r#"data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#,
    "\n\nevent: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"The user wants the weather. "}}"#,
    "\n\nevent: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"I should call get_weather."}}"#,
    "\n\nevent: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3h"}}"#,
    "\n\nevent: content_block_stop\n",
    r#"data: {"type":"content_block_stop","index":0}"#,
    "\n\nevent: content_block_start\n",
    r#"data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
    "\n\nevent: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Checking the weather in "}}"#,
    "\n\nevent: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"\"Paris\" \u00e9t\u00e9\u2026"}}"#,
    "\n\nevent: content_block_stop\n",
    r#"data: {"type":"content_block_stop","index":1}"#,
    "\n\nevent: content_block_start\n",
    r#"data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}"#,
    "\n\nevent: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}"#,
    "\n\nevent: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"location\": \"Par"}}"#,
    "\n\nevent: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"is, France\", \"unit\": \"cel"}}"#,
    "\n\nevent: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"sius\"}"}}"#,
    "\n\nevent: content_block_stop\n",
    r#"data: {"type":"content_block_stop","index":2}"#,
    "\n\nevent: content_block_start\n",
    r#"data: {"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_02","name":"get_time","input":{}}}"#,
    "\n\nevent: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#,
    "\n\nevent: content_block_stop\n",
    r#"data: {"type":"content_block_stop","index":3}"#,
    "\n\nevent: message_delta\n",
    r#"data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}"#,
    "\n\nevent: message_stop\n",
    r#"data: {"type":"message_stop"}"#,
    "\n\n",
);

fn delta(delta: Delta) -> StreamEvent {
    StreamEvent::Delta { choice: 0, delta }
}

/// Parse SSE bytes fed in `chunks` and decode every event, up to `message_stop`; `created`
/// (the clock) is zeroed so runs compare equal.
fn decode_chunks(chunks: &[&[u8]]) -> Vec<StreamEvent> {
    let mut parser = SseParser::new();
    let mut decoder = MessageDecoder::default();
    let mut out = Vec::new();
    let mut done = false;
    for c in chunks {
        let mut sse = Vec::new();
        parser.feed(c, &mut sse).unwrap();
        for ev in sse {
            assert!(!done, "event after message_stop");
            match decoder.decode(&ev).unwrap() {
                StreamStep::Events(e) => out.extend(e),
                StreamStep::Done => done = true,
                StreamStep::Last(_) => unreachable!("Anthropic's terminator carries nothing"),
            }
        }
    }
    assert!(done, "no message_stop");
    for e in &mut out {
        if let StreamEvent::Start { created, .. } = e {
            *created = 0;
        }
    }
    out
}

#[test]
fn realistic_stream_decodes_to_canonical_events() {
    let usage = |output_tokens| {
        StreamEvent::Usage(Usage {
            input_tokens: 472 + 2048,
            output_tokens,
            cache_read_tokens: 2048,
            ..Usage::default()
        })
    };
    let args = |index, f: &str| {
        delta(Delta::ToolCallArgs {
            index,
            fragment: f.into(),
        })
    };
    assert_eq!(
        decode_chunks(&[STREAM.as_bytes()]),
        vec![
            StreamEvent::Start {
                id: "msg_01XFDUDYJgAACzvnptvVoYEL".into(),
                model: "claude-sonnet-4-5-20250929".into(),
                created: 0
            },
            usage(2),
            delta(Delta::Reasoning("The user wants the weather. ".into())),
            delta(Delta::Reasoning("I should call get_weather.".into())),
            delta(Delta::ReasoningSignature(
                "EqQBCgIYAhIM1gbcDa9GJwZA2b3h".into()
            )),
            delta(Delta::Text("Checking the weather in ".into())),
            delta(Delta::Text("\"Paris\" été…".into())),
            delta(Delta::ToolCallStart {
                index: 0,
                id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6".into(),
                name: "get_weather".into()
            }),
            args(0, "{\"location\": \"Par"),
            args(0, "is, France\", \"unit\": \"cel"),
            args(0, "sius\"}"),
            delta(Delta::ToolCallStart {
                index: 1,
                id: "toolu_02".into(),
                name: "get_time".into()
            }),
            args(1, "{}"),
            StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::ToolCalls
            },
            usage(89),
        ]
    );
}

#[test]
fn every_split_point_gives_the_same_events() {
    let bytes = STREAM.as_bytes();
    let whole = decode_chunks(&[bytes]);
    for i in 0..=bytes.len() {
        assert_eq!(
            decode_chunks(&[&bytes[..i], &bytes[i..]]),
            whole,
            "split at {i}"
        );
    }
}

proptest! {
    #[test]
    fn arbitrary_chunking_gives_the_same_events(
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let bytes = STREAM.as_bytes();
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut last = 0;
        for p in points {
            chunks.push(&bytes[last..p]);
            last = p;
        }
        chunks.push(&bytes[last..]);
        prop_assert_eq!(decode_chunks(&chunks), decode_chunks(&[bytes]));
    }
}

/// Non-usage events in order, and all usage reports merged.
fn split_usage(events: Vec<StreamEvent>) -> (Vec<StreamEvent>, Usage) {
    let mut usage = Usage::default();
    let mut rest = Vec::new();
    for e in events {
        match e {
            StreamEvent::Usage(u) => usage.merge(&u),
            other => rest.push(other),
        }
    }
    (rest, usage)
}

#[test]
fn stream_round_trips_through_the_ingress_encoder() {
    let first = decode_chunks(&[STREAM.as_bytes()]);
    let mut encoder = MessageEncoder::new();
    let mut sse = BytesMut::new();
    for e in &first {
        encoder.encode(e, &mut sse);
    }
    encoder.finish(&mut sse);
    let second = decode_chunks(&[&sse]);
    assert_eq!(split_usage(second), split_usage(first));
}

#[test]
fn unmodelled_blocks_are_named_and_unknown_events_skipped() {
    let events = [
        r#"{"type":"message_start","message":{"id":"m","model":"c","usage":{"input_tokens":5,"output_tokens":1}}}"#,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"redacted_thinking","data":"xyz"}}"#,
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"server_tool_use","id":"s","name":"web_search","input":{}}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"q\":1}"}}"#,
        r#"{"type":"content_block_start","index":2,"content_block":{"type":"text","text":"Hi"}}"#,
        r#"{"type":"content_block_delta","index":2,"delta":{"type":"citations_delta","citation":{"type":"char_location"}}}"#,
        r#"{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"t","name":"f","input":{"a":1}}}"#,
        r#"{"type":"brand_new_event","x":1}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":7,"input_tokens":null}}"#,
    ];
    let mut d = MessageDecoder::default();
    let mut out = Vec::new();
    for data in events {
        let ev = sse::SseEvent {
            event: None,
            data: data.into(),
            raw: None,
        };
        match d.decode(&ev).unwrap() {
            StreamStep::Events(e) => out.extend(e),
            StreamStep::Done | StreamStep::Last(_) => unreachable!(),
        }
    }
    let (rest, usage) = split_usage(out);
    assert_eq!(
        rest[1..],
        [
            delta(Delta::RedactedReasoning("xyz".into())),
            delta(Delta::Unrepresented("server_tool_use".into())),
            delta(Delta::Text("Hi".into())),
            delta(Delta::Unrepresented("citations char_location".into())),
            delta(Delta::ToolCallStart {
                index: 0,
                id: "t".into(),
                name: "f".into()
            }),
            delta(Delta::ToolCallArgs {
                index: 0,
                fragment: r#"{"a":1}"#.into()
            }),
            StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::Stop
            },
        ]
    );
    // A null count in message_delta keeps the earlier one.
    assert_eq!((usage.input_tokens, usage.output_tokens), (5, 7));
}

#[test]
fn error_event_ends_the_stream_with_the_provider_message() {
    let mut d = MessageDecoder::default();
    let ev = sse::SseEvent {
        event: Some("error".into()),
        data: r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
            .into(),
        raw: None,
    };
    let e = d.decode(&ev).unwrap_err();
    assert_eq!(e.message, "anthropic: Overloaded");
    assert_eq!(e.upstream_status, Some(529));
    assert!(e.retryable);
    let ev = sse::SseEvent {
        event: Some("error".into()),
        data: "upstream broke".into(),
        raw: None,
    };
    let e = d.decode(&ev).unwrap_err();
    assert_eq!(e.message, "anthropic: error event in stream");
    let ev = sse::SseEvent {
        event: Some("content_block_delta".into()),
        data: "{not json".into(),
        raw: None,
    };
    assert_eq!(
        d.decode(&ev).unwrap_err().kind,
        crate::error::ErrorKind::UpstreamFailed
    );
    let stop = sse::SseEvent {
        event: Some("message_stop".into()),
        data: r#"{"type":"message_stop"}"#.into(),
        raw: None,
    };
    assert_eq!(d.decode(&stop).unwrap(), StreamStep::Done);
}
