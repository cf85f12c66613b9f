//! Fuzz entry points: each takes arbitrary bytes, runs them through one decoding path of the
//! gateway as a request, reply, stream, config file or request head would, and returns
//! nothing. Errors are expected and ignored; a panic is a bug.
//!
//! They are called by the cargo-fuzz targets in `fuzz/` (`cargo fuzz run <target>`, see
//! fuzz/README.md) and, on stable, by `tests/fuzz_corpus.rs`, which replays the seed corpus
//! in `fuzz/corpus/<target>/` and random mutations of it. Every path here is pure (no I/O
//! beyond memory), so one input always does the same thing.
//!
//! What each entry point covers (this file holds the codec paths shared by all of them):
//! - [`anthropic_request`], [`openai_request`], [`gemini_request`], [`responses_request`]: a
//!   client's body parsed as the ingress wire type and decoded to the canonical request,
//!   which is then encoded for every upstream: Chat Completions and Anthropic Messages by the
//!   codecs, and through each adapter's `build_chat` (OpenAI's and Mistral's narrowing,
//!   Gemini's, Bedrock's Converse, the same-schema passthrough of the client's own bytes).
//! - [`anthropic_reply`], [`openai_reply`], [`gemini_reply`]: a provider's non-streamed reply
//!   decoded, its usage read as a passthrough would, and encoded for every client schema.
//! - [`anthropic_stream`], [`openai_stream`], [`gemini_stream`], [`responses_stream`]: a
//!   provider's SSE bytes fed to the SSE parser in several chunkings, each event decoded by
//!   the provider's stream decoder, and the canonical events encoded for every client schema,
//!   ending as the relay ends a stream (`finish` on the provider's terminator, `error` on a
//!   decode failure).
//! - [`bedrock_stream`] (`bedrock`): Bedrock's binary event stream through the AWS frame
//!   decoder in several chunkings, then the ConverseStream decoder and the encoders.
//! - [`http1_response`] (`http1`): a provider's HTTP/1.1 response read by the connection
//!   pool's own parser, compared with hyper's reading of the same bytes.
//! - [`config_toml`] (`config`): a config file parsed and validated.
//! - [`auth_headers`] (`auth`): a request head's credential, loop guard and `Host`/`Origin`
//!   checks.
//!
//! Properties are checked with `assert!`, so that a fuzzer reports their violation like a
//! crash: the SSE and event-stream parsers yield the same events however the bytes are cut,
//! every frame the stream encoders write is `data:` JSON (or `[DONE]`) when no raw
//! passthrough event was relayed, and the others each module's header names.

mod auth;
mod bedrock;
mod config;
mod gemini;
mod http1;
mod responses;

pub use auth::auth_headers;
pub use bedrock::bedrock_stream;
pub use config::config_toml;
pub use gemini::{gemini_reply, gemini_request, gemini_stream};
pub use http1::http1_response;
pub use responses::{responses_request, responses_stream};

use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};

use crate::codec::{Warnings, anthropic, gemini as gemini_codec, openai_chat, responses as resp};
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
    (ProviderKind::Gemini, "gemini-2.5-pro"),
    (ProviderKind::Bedrock, "anthropic.claude-sonnet-4-5-v1:0"),
];

/// Chunk sizes the stream bytes are cut into (besides one piece), so that events and line
/// ends split across chunks are exercised.
const CHUNK_SIZES: &[usize] = &[1, 2, 7, 64];

/// One adapter per provider kind, built once (adapters are stateless apart from config).
pub(crate) fn adapter(kind: ProviderKind) -> Option<&'static Arc<dyn Adapter>> {
    static ADAPTERS: OnceLock<Vec<(ProviderKind, Arc<dyn Adapter>)>> = OnceLock::new();
    let all = ADAPTERS.get_or_init(|| {
        [
            ProviderKind::OpenAi,
            ProviderKind::OpenAiCompatible,
            ProviderKind::Mistral,
            ProviderKind::Anthropic,
            ProviderKind::Gemini,
            ProviderKind::Bedrock,
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
                region: (kind == ProviderKind::Bedrock).then(|| "us-east-1".to_owned()),
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
pub(crate) fn translate(mut req: ChatRequest, schema: WireSchema, data: &[u8]) {
    let mut warnings = Warnings::default();
    let oai = openai_chat::encode_request(&req, "gpt-5", &mut warnings);
    let _ = serde_json::to_vec(&oai);
    let anth = anthropic::encode_request(&req, "claude-sonnet-4-5", &mut warnings);
    let _ = serde_json::to_vec(&anth);
    let gem = gemini_codec::upstream::encode_request(&req, "gemini-2.5-pro", &mut warnings);
    let _ = serde_json::to_vec(&gem);
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
pub(crate) fn encode_reply(r: &ChatResponse) {
    let _ = serde_json::to_vec(&anthropic::encode_response(r));
    let _ = serde_json::to_vec(&openai_chat::encode_response(r));
    let _ = serde_json::to_vec(&gemini_codec::encode_response(r));
    if let Some(echo) = responses_echo() {
        let tooling = &echo.tooling;
        let output = resp::Output::from_reply(r, tooling);
        let status = resp::Status::of(r.choices.first().and_then(|c| c.finish_reason.as_ref()));
        let head = responses_head();
        let _ =
            serde_json::to_vec(&echo.response(&head, &status, output.to_json(), r.usage.as_ref()));
    }
}

/// What a Responses reply repeats of a plain request (`model` and `input` only).
fn responses_echo() -> Option<Arc<resp::Echo>> {
    static ECHO: OnceLock<Option<Arc<resp::Echo>>> = OnceLock::new();
    ECHO.get_or_init(|| {
        let w: resp::wire::RespRequest =
            serde_json::from_str(r#"{"model":"gpt-5","input":"hi"}"#).ok()?;
        Some(Arc::new(resp::Echo::new(&w, resp::Tooling::default())))
    })
    .clone()
}

fn responses_head() -> resp::Head {
    resp::Head {
        id: "resp_fuzz".to_owned(),
        created_at: 0,
        model: "gpt-5".to_owned(),
    }
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

pub(crate) fn stream(data: &[u8], decoders: impl Fn() -> Vec<Box<dyn StreamDecoder>>) {
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

/// The stream encoder of every client schema, with what each has written.
struct Encoders {
    anth: anthropic::MessageEncoder,
    oai: openai_chat::ChunkEncoder,
    gem_sse: gemini_codec::GeminiEncoder,
    gem_array: gemini_codec::GeminiEncoder,
    resp: Option<resp::ResponsesEncoder>,
    /// Output of each, in the order above.
    out: [BytesMut; 5],
    /// A raw passthrough event was relayed (then the frames are the provider's).
    raw: bool,
}

impl Encoders {
    fn new() -> Self {
        Self {
            anth: anthropic::MessageEncoder::new(),
            oai: openai_chat::ChunkEncoder::new(true),
            gem_sse: gemini_codec::GeminiEncoder::new(true, "gemini-2.5-pro"),
            gem_array: gemini_codec::GeminiEncoder::new(false, "gemini-2.5-pro"),
            resp: responses_echo().map(|e| resp::ResponsesEncoder::new(e, responses_head(), None)),
            out: Default::default(),
            raw: false,
        }
    }

    fn encode(&mut self, events: &[StreamEvent]) {
        let [a, o, gs, ga, r] = &mut self.out;
        for e in events {
            self.raw |= matches!(e, StreamEvent::Raw(_));
            self.anth.encode(e, a);
            self.oai.encode(e, o);
            self.gem_sse.encode(e, gs);
            self.gem_array.encode(e, ga);
            if let Some(enc) = &mut self.resp {
                enc.encode(e, r);
            }
        }
    }

    /// The normal end, as `pipeline::relay` ends a stream (raw or not).
    fn finish(&mut self) {
        let [a, o, gs, ga, r] = &mut self.out;
        self.anth.finish(a);
        self.oai.finish(o);
        if self.raw {
            self.gem_sse.finish_raw(gs);
            self.gem_array.finish_raw(ga);
            if let Some(enc) = &mut self.resp {
                enc.finish_raw();
            }
        } else {
            self.gem_sse.finish(gs);
            self.gem_array.finish(ga);
            if let Some(enc) = &mut self.resp {
                enc.finish(r);
            }
        }
    }

    fn error(&mut self, e: &GatewayError) {
        let [a, o, gs, ga, r] = &mut self.out;
        self.anth.error(e, a);
        self.oai.error(e, o);
        self.gem_sse.error(e, gs);
        self.gem_array.error(e, ga);
        if let Some(enc) = &mut self.resp {
            enc.error(e, r);
        }
    }

    /// Every SSE frame is JSON, and Gemini's array stream is one JSON array.
    fn check(&self) {
        if self.raw {
            return;
        }
        let [a, o, gs, ga, r] = &self.out;
        for out in [a, o, gs, r] {
            check_frames(out);
        }
        assert!(
            serde_json::from_slice::<serde_json::Value>(ga).is_ok_and(|v| v.is_array()),
            "the Gemini array stream is not one JSON array: {:?}",
            String::from_utf8_lossy(ga)
        );
    }
}

/// Decode events and encode them for every client schema, as `pipeline::relay` does.
pub(crate) fn relay(decoder: &mut dyn StreamDecoder, events: &[SseEvent]) {
    let mut enc = Encoders::new();
    let mut ended = false;
    for ev in events {
        match decoder.decode(ev) {
            Ok(StreamStep::Events(out)) => enc.encode(&out),
            Ok(StreamStep::Last(out)) => {
                enc.encode(&out);
                enc.finish();
                ended = true;
                break;
            }
            Ok(StreamStep::Done) => {
                enc.finish();
                ended = true;
                break;
            }
            Err(e) => {
                enc.error(&e);
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
        enc.error(&e);
    }
    enc.check();
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
