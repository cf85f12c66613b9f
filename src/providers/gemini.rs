//! `gemini` provider: Google's Gemini API (`POST {base_url}/v1beta/models/{model}:generateContent`
//! and `:streamGenerateContent?alt=sse`, `x-goog-api-key`).
//!
//! A Gemini client's request passes through as it came (the model is in the path, so the
//! body is untouched), and its reply and stream come back as Gemini wrote them, with usage
//! read from `usageMetadata`. Any other client's request is translated by the Gemini codec's
//! upstream half (`codec::gemini::upstream`). Embeddings use `:batchEmbedContents`.

use http::{HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::sse::SseEvent;
use super::{
    Adapter, StreamDecoder, StreamMode, StreamStep, UpstreamRequest, bad_reply, json_body,
    upstream_error,
};
use crate::codec::Warnings;
use crate::codec::gemini::upstream::{self, ChunkDecoder};
use crate::config::{ProviderKind, Secret};
use crate::error::GatewayError;
use crate::schema::{
    ChatRequest, ChatResponse, Embedding, EmbeddingRequest, EmbeddingResponse, StreamEvent, Usage,
    WireSchema,
};

const NAME: &str = "gemini";

pub struct GeminiAdapter;

/// The model's path segment; model names are letters, digits, `-`, `_` and `.`.
fn model_path(model: &str, method: &str) -> Result<String, GatewayError> {
    if model.is_empty()
        || !model
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(GatewayError::invalid_param(
            "model",
            format!("`{model}` is not a valid Gemini model name"),
        ));
    }
    Ok(format!("/v1beta/models/{model}:{method}"))
}

impl Adapter for GeminiAdapter {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Gemini
    }

    fn build_chat(
        &self,
        req: &ChatRequest,
        model: &str,
        warnings: &mut Warnings,
    ) -> Result<UpstreamRequest, GatewayError> {
        let path = if req.stream {
            model_path(model, "streamGenerateContent")? + "?alt=sse"
        } else {
            model_path(model, "generateContent")?
        };
        if let Some(raw) = req.raw.as_ref().filter(|r| r.schema == WireSchema::Gemini) {
            return Ok(UpstreamRequest {
                path,
                body: raw.bytes.clone(),
                headers: Vec::new(),
                passthrough: true,
            });
        }
        let body = upstream::encode_request(req, model, warnings);
        Ok(UpstreamRequest {
            path,
            body: json_body(&body)?,
            headers: Vec::new(),
            passthrough: false,
        })
    }

    fn parse_chat(&self, body: &[u8]) -> Result<ChatResponse, GatewayError> {
        upstream::decode_response(body)
    }

    fn reply_usage(&self, body: &[u8]) -> Result<Option<Usage>, GatewayError> {
        let v: Value = serde_json::from_slice(body).map_err(|e| bad_reply(NAME, e))?;
        Ok(v.get("usageMetadata").map(upstream::decode_usage))
    }

    fn stream_decoder(&self, mode: StreamMode) -> Box<dyn StreamDecoder> {
        Box::new(GeminiStream {
            inner: ChunkDecoder::default(),
            raw: mode.passthrough,
            text: mode.text,
        })
    }

    fn build_embeddings(
        &self,
        req: &EmbeddingRequest,
        model: &str,
        _warnings: &mut Warnings,
    ) -> Result<UpstreamRequest, GatewayError> {
        let texts = req.input.texts().ok_or_else(|| {
            GatewayError::invalid_param("input", "gemini embeds text only, not token ids")
        })?;
        let requests: Vec<Value> = texts
            .iter()
            .map(|t| {
                let mut r = json!({"model": format!("models/{model}"), "content": {"parts": [{"text": t}]}});
                if let Some(d) = req.dimensions {
                    r["outputDimensionality"] = json!(d);
                }
                r
            })
            .collect();
        Ok(UpstreamRequest {
            path: model_path(model, "batchEmbedContents")?,
            body: json_body(&json!({ "requests": requests }))?,
            headers: Vec::new(),
            passthrough: false,
        })
    }

    fn parse_embeddings(&self, body: &[u8]) -> Result<EmbeddingResponse, GatewayError> {
        let v: Value = serde_json::from_slice(body).map_err(|e| bad_reply(NAME, e))?;
        let data = v
            .get("embeddings")
            .and_then(Value::as_array)
            .ok_or_else(|| bad_reply(NAME, "no `embeddings`"))?
            .iter()
            .enumerate()
            .map(|(i, e)| Embedding {
                index: u32::try_from(i).unwrap_or(u32::MAX),
                vector: e.get("values").cloned().unwrap_or_else(|| json!([])),
            })
            .collect();
        Ok(EmbeddingResponse {
            model: String::new(),
            data,
            input_tokens: v
                .pointer("/usageMetadata/promptTokenCount")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        })
    }

    fn parse_error(&self, status: u16, body: &[u8], retry_after: Option<u64>) -> GatewayError {
        upstream_error(NAME, status, body, retry_after)
    }

    fn auth_headers(&self, key: &Secret) -> Vec<(HeaderName, HeaderValue)> {
        super::key_header("x-goog-api-key", key)
    }
}

/// Gemini's SSE stream: each event a whole response; the one with a finish reason is the
/// last (Gemini ends the body after it, with no terminator of its own).
struct GeminiStream {
    inner: ChunkDecoder,
    /// Relay the chunks as they came (a Gemini client), with their meaning alongside.
    raw: bool,
    /// With `raw`, also the text (a mirrored request's record).
    text: bool,
}

impl StreamDecoder for GeminiStream {
    fn decode(&mut self, ev: &SseEvent) -> Result<StreamStep, GatewayError> {
        let data = ev.data.trim();
        if data.is_empty() {
            return Ok(StreamStep::Events(Vec::new()));
        }
        let (mut events, last) = self.inner.decode(data)?;
        if self.raw {
            let text = self.text;
            events.retain(|e| match e {
                StreamEvent::Usage(_) | StreamEvent::Finish { .. } => true,
                StreamEvent::Delta {
                    delta: crate::schema::Delta::Text(_),
                    ..
                } => text,
                _ => false,
            });
            events.insert(0, StreamEvent::Raw(ev.to_bytes()));
        }
        Ok(if last {
            StreamStep::Last(events)
        } else {
            StreamStep::Events(events)
        })
    }
}
