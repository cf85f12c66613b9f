//! Fuzz entry points: each takes arbitrary bytes, runs them through one codec path of the
//! gateway as a request, reply or stream would, and returns nothing. Errors are expected and
//! ignored; a panic is a bug.
//!
//! They are called by the cargo-fuzz targets in `fuzz/` (`cargo +nightly fuzz run <target>`)
//! and, on stable, by `tests/fuzz_corpus.rs`, which replays the seed corpus in
//! `fuzz/corpus/<target>/` and random mutations of it. Every path here is pure (no I/O), so
//! one input always does the same thing.
//!
//! What each entry point covers:
//! - [`anthropic_request`], [`openai_request`]: a client's body parsed as the ingress wire
//!   type and decoded to the canonical request, which is then encoded for every upstream:
//!   Chat Completions and Anthropic Messages by the codecs, and through each adapter's
//!   `build_chat` (OpenAI's and Mistral's narrowing, the same-schema passthrough of the
//!   client's own bytes).
//! - [`anthropic_reply`], [`openai_reply`]: a provider's non-streamed reply decoded, its
//!   usage read as a passthrough would, and encoded for both client schemas.
//! - [`anthropic_stream`], [`openai_stream`]: a provider's SSE bytes fed to the SSE parser in
//!   several chunkings, each event decoded by the provider's stream decoder, and the
//!   canonical events encoded for both client schemas, ending as the relay ends a stream
//!   (`finish` on the provider's terminator, `error` on a decode failure).
//!
//! Two properties are checked with `assert!`, so that a fuzzer reports their violation like a
//! crash: the SSE parser yields the same events however the bytes are cut, and every frame the
//! stream encoders write is `data:` JSON (or `[DONE]`) when no raw passthrough event was
//! relayed.

use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};

use crate::codec::{Warnings, anthropic, openai_chat};
use crate::config::{ProviderConfig, ProviderKind, Timeouts};
use crate::error::GatewayError;
use crate::providers::sse::{SseEvent, SseParser};
use crate::providers::{Adapter, StreamDecoder, StreamStep, adapter_for};
use crate::schema::{ChatRequest, ChatResponse, RawBody, StreamEvent, WireSchema};

/// Model names the requests are encoded for: one per adapter, with Mistral twice because its
/// older models take only two reasoning levels and newer ones six.
const TARGETS: &[(ProviderKind, &str)] = &[
    (ProviderKind::OpenAi, "gpt-5"),
    (ProviderKind::OpenAiCompatible, "llama-3.3-70b"),
    (ProviderKind::Mistral, "devstral-2512"),
    (ProviderKind::Mistral, "mistral-next"),
    (ProviderKind::Anthropic, "claude-sonnet-4-5"),
];

/// Chunk sizes the stream bytes are cut into (besides one piece), so that events and line
/// ends split across chunks are exercised.
const CHUNK_SIZES: &[usize] = &[1, 2, 7, 64];

/// One adapter per provider kind, built once (adapters are stateless apart from config).
fn adapter(kind: ProviderKind) -> Option<&'static Arc<dyn Adapter>> {
    static ADAPTERS: OnceLock<Vec<(ProviderKind, Arc<dyn Adapter>)>> = OnceLock::new();
    let all = ADAPTERS.get_or_init(|| {
        [
            ProviderKind::OpenAi,
            ProviderKind::OpenAiCompatible,
            ProviderKind::Mistral,
            ProviderKind::Anthropic,
        ]
        .into_iter()
        .map(|kind| {
            let config = Arc::new(ProviderConfig {
                budgets: Vec::new(),
                name: kind.as_str().to_owned(),
                kind,
                base_url: String::new(),
                api_keys: Vec::new(),
                key_weights: Vec::new(),
                balance: crate::config::Balance::RoundRobin,
                models: Vec::new(),
                timeouts: Timeouts::default(),
                headers: Vec::new(),
                reasoning_effort: Vec::new(),
                api_version: None,
                region: None,
                aws: None,
                log_bodies: None,
            });
            (kind, adapter_for(&config))
        })
        .collect()
    });
    all.iter().find(|(k, _)| *k == kind).map(|(_, a)| a)
}

// === requests ===

/// An Anthropic Messages request from a client (`POST /v1/messages`).
pub fn anthropic_request(data: &[u8]) {
    let Ok(wire) = serde_json::from_slice::<anthropic::wire::AnthRequest>(data) else {
        return;
    };
    if let Ok(req) = anthropic::decode_request(wire) {
        translate(req, WireSchema::AnthropicMessages, data);
    }
}

/// A Chat Completions request from a client (`POST /v1/chat/completions`).
pub fn openai_request(data: &[u8]) {
    let Ok(wire) = serde_json::from_slice::<openai_chat::wire::OaiChatRequest>(data) else {
        return;
    };
    if let Ok(req) = openai_chat::decode_request(wire) {
        translate(req, WireSchema::OpenAiChat, data);
    }
}

/// Encode a decoded request for every upstream: first as the gateway built it, then with the
/// client's bytes attached, as the handlers attach them (the same-schema passthrough).
fn translate(mut req: ChatRequest, schema: WireSchema, data: &[u8]) {
    let mut warnings = Warnings::default();
    let oai = openai_chat::encode_request(&req, "gpt-5", &mut warnings);
    let _ = serde_json::to_vec(&oai);
    let anth = anthropic::encode_request(&req, "claude-sonnet-4-5", &mut warnings);
    let _ = serde_json::to_vec(&anth);
    build_all(&req, &mut warnings);
    req.raw = Some(RawBody {
        schema,
        bytes: Bytes::copy_from_slice(data),
        headers: Vec::new(),
    });
    build_all(&req, &mut warnings);
    let _ = warnings.header_value();
}

fn build_all(req: &ChatRequest, warnings: &mut Warnings) {
    for (kind, model) in TARGETS {
        if let Some(a) = adapter(*kind) {
            let _ = a.build_chat(req, model, warnings);
        }
    }
}

// === replies ===

/// A non-streamed reply from an Anthropic provider.
pub fn anthropic_reply(data: &[u8]) {
    if let Some(a) = adapter(ProviderKind::Anthropic) {
        let _ = a.reply_usage(data);
    }
    if let Ok(r) = anthropic::decode_response(data) {
        encode_reply(&r);
    }
}

/// A non-streamed reply from an OpenAI-style provider.
pub fn openai_reply(data: &[u8]) {
    for kind in [ProviderKind::OpenAi, ProviderKind::Mistral] {
        let Some(a) = adapter(kind) else { continue };
        let _ = a.reply_usage(data);
        if let Ok(r) = a.parse_chat(data) {
            encode_reply(&r);
        }
    }
}

/// The reply as each client schema gets it.
fn encode_reply(r: &ChatResponse) {
    let _ = serde_json::to_vec(&anthropic::encode_response(r));
    let _ = serde_json::to_vec(&openai_chat::encode_response(r));
}

// === streams ===

/// An Anthropic Messages event stream from a provider, decoded by the codec's decoder and by
/// the adapter's (whose passthrough mode relays events raw).
pub fn anthropic_stream(data: &[u8]) {
    stream(data, || {
        let mut decoders: Vec<Box<dyn StreamDecoder>> =
            vec![Box::new(anthropic::MessageDecoder::default())];
        if let Some(a) = adapter(ProviderKind::Anthropic) {
            decoders.push(a.stream_decoder(crate::providers::StreamMode {
                passthrough: true,
                client_usage: false,
                text: false,
                schema: Some(crate::schema::WireSchema::AnthropicMessages),
            }));
        }
        decoders
    });
}

/// A Chat Completions chunk stream from an OpenAI-style provider (OpenAI's and Mistral's
/// decoders).
pub fn openai_stream(data: &[u8]) {
    stream(data, || {
        [ProviderKind::OpenAi, ProviderKind::Mistral]
            .into_iter()
            .filter_map(adapter)
            .map(|a| a.stream_decoder(crate::providers::StreamMode::default()))
            .collect()
    });
}

fn stream(data: &[u8], decoders: impl Fn() -> Vec<Box<dyn StreamDecoder>>) {
    let Some(events) = sse_events(data, data.len().max(1)) else {
        return;
    };
    for &size in CHUNK_SIZES {
        let cut = sse_events(data, size);
        assert!(
            cut.as_ref() == Some(&events),
            "SSE events differ when the stream is cut into {size}-byte chunks"
        );
    }
    for mut decoder in decoders() {
        relay(decoder.as_mut(), &events);
    }
}

/// The events of `data` fed in `size`-byte chunks; `None` if a line is too long.
fn sse_events(data: &[u8], size: usize) -> Option<Vec<SseEvent>> {
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    for chunk in data.chunks(size) {
        parser.feed(chunk, &mut out).ok()?;
    }
    Some(out)
}

/// Decode events and encode them for both client schemas, as `pipeline::relay` does.
fn relay(decoder: &mut dyn StreamDecoder, events: &[SseEvent]) {
    let mut anth = anthropic::MessageEncoder::new();
    let mut oai = openai_chat::ChunkEncoder::new(true);
    let (mut anth_out, mut oai_out) = (BytesMut::new(), BytesMut::new());
    let mut raw = false;
    let mut ended = false;
    for ev in events {
        match decoder.decode(ev) {
            Ok(StreamStep::Events(out)) => {
                for e in &out {
                    raw |= matches!(e, StreamEvent::Raw(_));
                    anth.encode(e, &mut anth_out);
                    oai.encode(e, &mut oai_out);
                }
            }
            Ok(StreamStep::Last(out)) => {
                for e in &out {
                    raw |= matches!(e, StreamEvent::Raw(_));
                    anth.encode(e, &mut anth_out);
                    oai.encode(e, &mut oai_out);
                }
                anth.finish(&mut anth_out);
                oai.finish(&mut oai_out);
                ended = true;
                break;
            }
            Ok(StreamStep::Done) => {
                anth.finish(&mut anth_out);
                oai.finish(&mut oai_out);
                ended = true;
                break;
            }
            Err(e) => {
                end_with_error(&mut anth, &mut oai, &e, &mut anth_out, &mut oai_out);
                ended = true;
                break;
            }
        }
    }
    if !ended {
        let e = GatewayError::new(
            crate::error::ErrorKind::UpstreamFailed,
            "stream ended early",
        );
        end_with_error(&mut anth, &mut oai, &e, &mut anth_out, &mut oai_out);
    }
    if !raw {
        check_frames(&anth_out);
        check_frames(&oai_out);
    }
}

fn end_with_error(
    anth: &mut anthropic::MessageEncoder,
    oai: &mut openai_chat::ChunkEncoder,
    e: &GatewayError,
    anth_out: &mut BytesMut,
    oai_out: &mut BytesMut,
) {
    anth.error(e, anth_out);
    oai.error(e, oai_out);
}

/// Every frame the encoders wrote is one JSON value (or the `[DONE]` terminator).
fn check_frames(out: &[u8]) {
    let Some(frames) = sse_events(out, out.len().max(1)) else {
        return;
    };
    for f in frames {
        assert!(
            f.data == "[DONE]" || serde_json::from_str::<serde_json::Value>(&f.data).is_ok(),
            "an encoder wrote a frame that is not JSON: {:?}",
            f.data
        );
    }
}
