//! `anthropic` provider: the Messages API (`POST {base_url}/v1/messages`, `x-api-key`,
//! `anthropic-version`).
//!
//! An Anthropic client's request passes through intact apart from `model` (SPEC §3): thinking
//! blocks with their signatures, `cache_control`, `context_management`, `output_config`, and
//! the client's `anthropic-version` and `anthropic-beta` headers. Its reply comes back as the
//! provider wrote it, streamed or not, with usage still read. Any other client's request is
//! translated by the Anthropic codec's upstream half.

use http::{HeaderName, HeaderValue};

use super::sse::SseEvent;
use super::{
    Adapter, StreamDecoder, StreamMode, StreamStep, UpstreamRequest, bad_reply, json_body,
    upstream_error,
};
use crate::codec::anthropic::{self, MessageDecoder};
use crate::codec::{Warnings, passthrough};
use crate::config::{ProviderKind, Secret};
use crate::error::GatewayError;
use crate::schema::{
    ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, RawBody, StreamEvent, Usage,
    WireSchema,
};

const NAME: &str = "anthropic";
/// The API version sent when the client did not choose one.
pub const API_VERSION: &str = "2023-06-01";

pub struct AnthropicAdapter;

impl Adapter for AnthropicAdapter {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Anthropic
    }

    fn build_chat(
        &self,
        req: &ChatRequest,
        model: &str,
        warnings: &mut Warnings,
    ) -> Result<UpstreamRequest, GatewayError> {
        let path = "/v1/messages".to_owned();
        if let Some(raw) = req
            .raw
            .as_ref()
            .filter(|r| r.schema == WireSchema::AnthropicMessages)
        {
            let body = passthrough::with_model(&raw.bytes, model, &[])
                .map_err(|e| GatewayError::invalid(format!("malformed request body: {e}")))?;
            return Ok(UpstreamRequest {
                path,
                body,
                headers: raw.headers.clone(),
                passthrough: true,
            });
        }
        let body = anthropic::encode_request(req, model, warnings);
        Ok(UpstreamRequest {
            path,
            body: json_body(&body)?,
            headers: Vec::new(),
            passthrough: false,
        })
    }

    fn parse_chat(&self, body: &[u8]) -> Result<ChatResponse, GatewayError> {
        anthropic::decode_response(body).map_err(|e| bad_reply(NAME, e))
    }

    fn reply_usage(&self, body: &[u8]) -> Result<Option<Usage>, GatewayError> {
        let usage =
            crate::codec::scan::top_level_member(body, "usage").map_err(|e| bad_reply(NAME, e))?;
        let Some(usage) = usage else { return Ok(None) };
        let usage: Option<anthropic::wire::AnthUsage> =
            serde_json::from_slice(usage).map_err(|e| bad_reply(NAME, e))?;
        Ok(usage.as_ref().map(anthropic::decode_usage))
    }

    fn stream_decoder(&self, mode: StreamMode) -> Box<dyn StreamDecoder> {
        Box::new(AnthropicStream {
            inner: MessageDecoder::default(),
            raw: mode.passthrough,
        })
    }

    fn build_embeddings(
        &self,
        _req: &EmbeddingRequest,
        _model: &str,
        _warnings: &mut Warnings,
    ) -> Result<UpstreamRequest, GatewayError> {
        Err(GatewayError::invalid(
            "Anthropic has no embeddings API: route embedding models to another provider",
        ))
    }

    fn parse_embeddings(&self, _body: &[u8]) -> Result<EmbeddingResponse, GatewayError> {
        Err(GatewayError::internal("Anthropic has no embeddings API"))
    }

    /// `POST /v1/messages/count_tokens` with the client's own body (its `max_tokens`, if any,
    /// removed: the endpoint refuses it).
    fn count_tokens(&self, raw: &RawBody, model: &str) -> Option<UpstreamRequest> {
        if raw.schema != WireSchema::AnthropicMessages {
            return None;
        }
        let body = passthrough::with_model(&raw.bytes, model, &["max_tokens", "stream"]).ok()?;
        Some(UpstreamRequest {
            path: "/v1/messages/count_tokens".to_owned(),
            body,
            headers: raw.headers.clone(),
            passthrough: true,
        })
    }

    fn parse_error(&self, status: u16, body: &[u8], retry_after: Option<u64>) -> GatewayError {
        upstream_error(NAME, status, body, retry_after)
    }

    fn auth_headers(&self, key: &Secret) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = vec![(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(API_VERSION),
        )];
        if let Ok(mut v) = HeaderValue::try_from(key.expose()) {
            v.set_sensitive(true);
            out.push((HeaderName::from_static("x-api-key"), v));
        }
        out
    }
}

/// Decodes a Messages stream; in a passthrough each event is also relayed as it came, first.
struct AnthropicStream {
    inner: MessageDecoder,
    raw: bool,
}

impl StreamDecoder for AnthropicStream {
    fn decode(&mut self, ev: &SseEvent) -> Result<StreamStep, GatewayError> {
        let step = self.inner.decode(ev)?;
        match step {
            StreamStep::Events(mut events) if self.raw => {
                events.insert(0, StreamEvent::Raw(ev.to_bytes()));
                Ok(StreamStep::Events(events))
            }
            step => Ok(step),
        }
    }

    /// Each raw event comes with everything the Messages decoder read from it.
    fn describes_raw(&self) -> bool {
        true
    }
}
