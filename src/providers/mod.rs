//! Providers: one pure adapter per provider kind, plus the shared executor that does the I/O.
//!
//! An [`Adapter`] turns a canonical request into an [`UpstreamRequest`] (path, body, headers)
//! and a provider's bytes back into canonical replies, stream events and errors. It does no
//! I/O, so every adapter is tested from fixtures, and the one executor (`exec`) owns
//! connections, timeouts and cancellation for all of them. See `README.md` in this folder for
//! the checklist a new adapter follows.
//!
//! Below routing, above codec: a provider's run-time state (health, key loads and cool-downs,
//! the key balance) is routing's (`routing::Provider`), and the executor sends through an
//! [`Endpoint`] (config, adapter, pool). The stream decoders' contract ([`StreamDecoder`],
//! [`StreamStep`], [`sse::SseEvent`]) is codec's (`codec::upstream_stream`), re-exported here.

mod anthropic;
mod bedrock;
pub(crate) mod eventstream;
pub mod exec;
mod gemini;
mod mistral;
mod openai;
pub mod pool;
pub mod sse;
#[cfg(test)]
mod stream_props;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};

use crate::codec::Warnings;
pub(crate) use crate::codec::upstream_stream::bad_reply;
pub use crate::codec::upstream_stream::{StreamDecoder, StreamStep};
use crate::config::{ProviderConfig, ProviderKind, Secret};
use crate::error::GatewayError;
use crate::schema::{
    ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, RawBody, Usage, WireSchema,
};

/// What an adapter asks the executor to send.
#[derive(Debug)]
pub struct UpstreamRequest {
    /// Appended to the provider's `base_url` (e.g. `/chat/completions`).
    pub path: String,
    pub body: Bytes,
    /// Adapter-specific headers; auth and the provider's configured headers are added by the
    /// executor.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The body is the client's own request (same schema, SPEC §3): the reply then goes back
    /// to the client as the provider wrote it.
    pub passthrough: bool,
}

/// How a stream is to be decoded.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamMode {
    /// The request was the client's own body (same schema): the decoder relays the
    /// provider's events raw (`StreamEvent::Raw`), with their usage and finish alongside.
    pub passthrough: bool,
    /// The client asked to see usage in the stream (Chat Completions `include_usage`); the
    /// gateway always asks the provider for it.
    pub client_usage: bool,
    /// A passthrough decoder also emits the text it relays (as deltas, beside the raw
    /// events), for a mirrored request's record.
    pub text: bool,
    /// The schema of the client's body (what a passthrough stream is in).
    pub schema: Option<WireSchema>,
}

/// A provider's wire format and quirks. Pure: no I/O.
pub trait Adapter: Send + Sync {
    fn kind(&self) -> ProviderKind;

    /// Build the upstream chat request for `model`, noting every coercion in `warnings`.
    fn build_chat(
        &self,
        req: &ChatRequest,
        model: &str,
        warnings: &mut Warnings,
    ) -> Result<UpstreamRequest, GatewayError>;

    fn parse_chat(&self, body: &[u8]) -> Result<ChatResponse, GatewayError>;

    /// The usage of a reply that is relayed as it came (`UpstreamRequest::passthrough`);
    /// an unreadable reply is the provider's failure, as in `parse_chat`.
    fn reply_usage(&self, body: &[u8]) -> Result<Option<Usage>, GatewayError> {
        self.parse_chat(body).map(|r| r.usage)
    }

    /// A decoder for one stream.
    fn stream_decoder(&self, mode: StreamMode) -> Box<dyn StreamDecoder>;

    fn build_embeddings(
        &self,
        req: &EmbeddingRequest,
        model: &str,
        warnings: &mut Warnings,
    ) -> Result<UpstreamRequest, GatewayError>;

    fn parse_embeddings(&self, body: &[u8]) -> Result<EmbeddingResponse, GatewayError>;

    /// The provider's own input-token count for a request in `raw`'s schema
    /// (`{"input_tokens": n}` comes back), if the provider offers one.
    fn count_tokens(&self, _raw: &RawBody, _model: &str) -> Option<UpstreamRequest> {
        None
    }

    /// Classify a non-2xx reply; the message is the provider's own, never its raw body.
    fn parse_error(&self, status: u16, body: &[u8], retry_after: Option<u64>) -> GatewayError;

    /// The credential headers for one of the provider's keys.
    fn auth_headers(&self, key: &Secret) -> Vec<(HeaderName, HeaderValue)>;

    /// Sign the finished request (AWS SigV4 for Bedrock); the default signs nothing.
    fn sign(
        &self,
        _req: &mut http::Request<http_body_util::Full<Bytes>>,
        _key: Option<&Secret>,
    ) -> Result<(), GatewayError> {
        Ok(())
    }
}

pub fn adapter_for(config: &Arc<ProviderConfig>) -> Arc<dyn Adapter> {
    match config.kind {
        ProviderKind::Mistral => Arc::new(mistral::MistralAdapter::new(config.clone())),
        ProviderKind::Anthropic => Arc::new(anthropic::AnthropicAdapter),
        ProviderKind::Gemini => Arc::new(gemini::GeminiAdapter),
        ProviderKind::Bedrock => Arc::new(bedrock::BedrockAdapter::new(config.clone())),
        kind => Arc::new(openai::OpenAiAdapter::new(kind, config.api_version.clone())),
    }
}

/// A provider as the executor reaches it: its config, its adapter and the connection pool of
/// its backend. `routing::Provider`, which also holds the provider's run-time state (health,
/// key loads and cool-downs, the key balance), is what the pipeline hands the executor.
pub trait Endpoint: Send + Sync {
    fn config(&self) -> &ProviderConfig;
    fn adapter(&self) -> &dyn Adapter;
    fn pool(&self) -> &pool::Pool;
}

impl<T: Endpoint + ?Sized> Endpoint for Arc<T> {
    fn config(&self) -> &ProviderConfig {
        (**self).config()
    }

    fn adapter(&self) -> &dyn Adapter {
        (**self).adapter()
    }

    fn pool(&self) -> &pool::Pool {
        (**self).pool()
    }
}

/// The `Bearer` header OpenAI-style providers expect.
/// A key in a header of its own (Azure's `api-key`, Gemini's `x-goog-api-key`), marked
/// sensitive so that it is never logged.
pub(crate) fn key_header(name: &'static str, key: &Secret) -> Vec<(HeaderName, HeaderValue)> {
    match HeaderValue::try_from(key.expose()) {
        Ok(mut v) => {
            v.set_sensitive(true);
            vec![(HeaderName::from_static(name), v)]
        }
        Err(_) => Vec::new(),
    }
}

pub(crate) fn bearer(key: &Secret) -> Vec<(HeaderName, HeaderValue)> {
    match HeaderValue::try_from(format!("Bearer {}", key.expose())) {
        Ok(mut v) => {
            v.set_sensitive(true);
            vec![(http::header::AUTHORIZATION, v)]
        }
        Err(_) => Vec::new(),
    }
}

/// Serialize an upstream body; our own wire structs always serialize.
pub(crate) fn json_body<T: serde::Serialize>(value: &T) -> Result<Bytes, GatewayError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| GatewayError::internal(format!("cannot encode upstream request: {e}")))
}

/// A provider's non-2xx reply as an error, in the provider's own words (any error shape a
/// provider or self-hosted server sends, [`crate::codec::provider_error`]): its message, the
/// field it blamed as the error's `param`, and its error type where that says more than the
/// status (`INVALID_ARGUMENT`, `ValidationException`).
pub(crate) fn upstream_error(
    provider: &str,
    status: u16,
    body: &[u8],
    retry_after: Option<u64>,
) -> GatewayError {
    let found = crate::codec::provider_error::read(body);
    let (msg, param) = match found {
        Some(e) => {
            let mut msg = e.message;
            if let Some(kind) = e
                .kind
                .filter(|k| telling_kind(k) && !msg.contains(k.as_str()))
            {
                msg.push_str(&format!(" ({kind})"));
            }
            (msg, e.param)
        }
        None => (format!("HTTP {status} with no error message"), None),
    };
    let msg = if matches!(status, 401 | 403) {
        format!("{provider} refused the gateway's credentials: {msg}")
    } else {
        format!("{provider}: {msg}")
    };
    let mut e = GatewayError::from_upstream_status(status, msg, retry_after);
    e.param = param;
    e
}

/// A provider's error type worth showing beside its message: Google's statuses and AWS's
/// exception names say more than the HTTP status; OpenAI-style `*_error` types and numeric
/// codes do not.
fn telling_kind(kind: &str) -> bool {
    !kind.to_ascii_lowercase().ends_with("_error") && kind.parse::<u64>().is_err()
}
