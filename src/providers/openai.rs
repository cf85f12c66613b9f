//! `openai`, `azure-openai` and `openai-compatible` providers: Chat Completions and
//! Embeddings upstream.
//!
//! Azure OpenAI speaks OpenAI's schema at its own URLs: a deployment per model
//! (`{base_url}/openai/deployments/{deployment}/chat/completions?api-version=...`; the
//! target's model name is the deployment's name), with the key in an `api-key` header. It
//! is otherwise treated as OpenAI itself.
//!
//! OpenAI itself gets `max_completion_tokens` (the o-series reject `max_tokens`) and no
//! reasoning text in assistant history (it rejects unknown message fields). A generic
//! OpenAI-compatible server (llama-server, vLLM, Ollama, OpenRouter) gets the common subset:
//! `max_tokens`, `developer` sent as `system`, reasoning history as `reasoning_content`.
//!
//! A Responses client's request goes to OpenAI's own `/responses` as it came (apart from the
//! model), and its reply and event stream come back the same way.
//!
//! A Chat Completions client's request is not translated at all but passed through (SPEC §3),
//! except in the two cases above where the provider would reject what the client sent; its
//! reply and stream come back as the provider wrote them, minus the usage chunk the gateway
//! asked for on the client's behalf.

use http::{HeaderName, HeaderValue};

use super::sse::SseEvent;
use super::{
    Adapter, StreamDecoder, StreamMode, StreamStep, UpstreamRequest, bad_reply, bearer, json_body,
    upstream_error,
};
use crate::codec::openai_chat::{self, ChunkDecoder, Decoded, passthrough};
use crate::codec::{Warnings, openai_embeddings, responses};
use crate::config::{ProviderKind, Secret};
use crate::error::{ErrorKind, GatewayError};
use crate::schema::{
    ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, Message, Part, RawBody, Role,
    StreamEvent, Usage, WireSchema,
};

pub struct OpenAiAdapter {
    kind: ProviderKind,
    /// Azure's `api-version`.
    api_version: Option<String>,
}

impl OpenAiAdapter {
    pub fn new(kind: ProviderKind, api_version: Option<String>) -> Self {
        Self { kind, api_version }
    }

    /// OpenAI's own API (OpenAI, or Azure's deployments of its models), as opposed to a
    /// generic compatible server.
    fn is_openai(&self) -> bool {
        matches!(self.kind, ProviderKind::OpenAi | ProviderKind::AzureOpenAi)
    }

    /// The path of operation `op` (`chat/completions`, `embeddings`) for `model`.
    fn path(&self, op: &str, model: &str) -> Result<String, GatewayError> {
        if self.kind != ProviderKind::AzureOpenAi {
            return Ok(["/", op].concat());
        }
        // Azure deployment names: letters, digits, `-`, `_` and `.`.
        if model.is_empty()
            || !model
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(GatewayError::invalid_param(
                "model",
                format!("`{model}` is not a valid Azure OpenAI deployment name"),
            ));
        }
        let version = self
            .api_version
            .as_deref()
            .unwrap_or(crate::config::AZURE_API_VERSION);
        Ok(format!(
            "/openai/deployments/{model}/{op}?api-version={version}"
        ))
    }

    /// The client's own Chat Completions body, when it can go upstream as it is (SPEC §3):
    /// always, unless it holds something this provider is known to reject and the
    /// translation would fix (reasoning text in OpenAI's history; the `developer` role on a
    /// generic compatible server, whose chat template may not know it).
    fn passthrough<'r>(&self, req: &'r ChatRequest) -> Option<&'r RawBody> {
        let raw = req.raw.as_ref()?;
        match raw.schema {
            WireSchema::OpenAiChat => {}
            // Only OpenAI itself is known to serve the Responses API.
            WireSchema::OpenAiResponses if self.kind == ProviderKind::OpenAi => return Some(raw),
            _ => return None,
        }
        // A signed reasoning part in a Chat Completions request came from a call id that
        // carries another provider's signature (`codec::signed_id`): translated, the provider
        // gets the call's own id.
        let rejected = |m: &Message| {
            if self.is_openai() {
                m.parts.iter().any(|p| matches!(p, Part::Reasoning { .. }))
            } else {
                m.role == Role::Developer
                    || m.parts.iter().any(|p| {
                        matches!(
                            p,
                            Part::Reasoning {
                                signature: Some(_),
                                ..
                            }
                        )
                    })
            }
        };
        (!req.messages.iter().any(rejected)).then_some(raw)
    }
}

impl Adapter for OpenAiAdapter {
    fn kind(&self) -> ProviderKind {
        self.kind
    }

    fn build_chat(
        &self,
        req: &ChatRequest,
        model: &str,
        warnings: &mut Warnings,
    ) -> Result<UpstreamRequest, GatewayError> {
        if let Some(raw) = self.passthrough(req) {
            let responses = raw.schema == WireSchema::OpenAiResponses;
            // The client's own bytes when rewriting would change nothing: a Chat Completions
            // body (which names its model once: a repeated field is refused when it is
            // decoded) already naming the provider's model, and a stream already asking for
            // its usage.
            let unchanged = !responses && req.model == model && (!req.stream || req.stream_usage);
            // A Responses body only has its model replaced (its stream reports usage anyway).
            let body = if unchanged {
                raw.bytes.clone()
            } else {
                openai_chat::passthrough::request_body(&raw.bytes, model, req.stream && !responses)
                    .map_err(|e| GatewayError::invalid(format!("malformed request body: {e}")))?
            };
            return Ok(UpstreamRequest {
                path: if responses {
                    "/responses".to_owned()
                } else {
                    self.path("chat/completions", model)?
                },
                body,
                headers: Vec::new(),
                passthrough: true,
            });
        }
        let path = self.path("chat/completions", model)?;
        let mut body = openai_chat::encode_request(req, model, warnings);
        let name = self.kind.as_str();
        if self.is_openai() {
            body.max_completion_tokens = body.max_tokens.take();
            for m in &mut body.messages {
                if m.reasoning_content.take().is_some() {
                    warnings.push(format!("reasoning history dropped for {name}"));
                }
            }
            // OpenAI refuses a parameter its API does not have ("Unrecognized request
            // argument supplied: top_k") and a reasoning effort for a model that does not
            // reason ("'reasoning_effort' is not supported with this model").
            if body.top_k.take().is_some() {
                warnings.push(format!("top_k dropped for {name}"));
            }
            if !reasons(model) && body.reasoning_effort.take().is_some() {
                warnings.push(format!("reasoning_effort dropped for {model}"));
            }
        } else {
            for m in &mut body.messages {
                if m.role == "developer" {
                    m.role = "system".to_owned();
                    warnings.push(format!("developer role sent as system for {name}"));
                }
            }
        }
        Ok(UpstreamRequest {
            path,
            body: json_body(&body)?,
            headers: Vec::new(),
            passthrough: false,
        })
    }

    fn parse_chat(&self, body: &[u8]) -> Result<ChatResponse, GatewayError> {
        let w = serde_json::from_slice(body).map_err(|e| bad_reply(self.kind.as_str(), e))?;
        Ok(openai_chat::decode_response(w))
    }

    fn reply_usage(&self, body: &[u8]) -> Result<Option<Usage>, GatewayError> {
        // One pass finds both: which object this is, and its usage.
        let [object, usage] = crate::codec::scan::top_level_members(body, ["object", "usage"])
            .map_err(|e| bad_reply(self.kind.as_str(), e))?;
        if responses::upstream::is_response_object(object) {
            return responses::upstream::usage_member(usage)
                .map_err(|e| bad_reply(self.kind.as_str(), e));
        }
        openai_chat::passthrough::usage_member(usage).map_err(|e| bad_reply(self.kind.as_str(), e))
    }

    /// A passthrough stream is relayed chunk for chunk, except the usage chunk the gateway
    /// asked for and the client did not.
    fn stream_decoder(&self, mode: StreamMode) -> Box<dyn StreamDecoder> {
        if mode.passthrough && mode.schema == Some(WireSchema::OpenAiResponses) {
            return Box::new(responses::upstream::RawDecoder {
                provider: self.kind.as_str(),
                text: mode.text,
            });
        }
        if mode.passthrough {
            return Box::new(OpenAiRawStream {
                name: self.kind.as_str(),
                client_usage: mode.client_usage,
                text: mode.text,
            });
        }
        Box::new(OpenAiStream {
            name: self.kind.as_str(),
            inner: ChunkDecoder::default(),
        })
    }

    fn build_embeddings(
        &self,
        req: &EmbeddingRequest,
        model: &str,
        _warnings: &mut Warnings,
    ) -> Result<UpstreamRequest, GatewayError> {
        let body = openai_embeddings::encode_request(req, model);
        Ok(UpstreamRequest {
            path: self.path("embeddings", model)?,
            body: json_body(&body)?,
            headers: Vec::new(),
            passthrough: false,
        })
    }

    fn parse_embeddings(&self, body: &[u8]) -> Result<EmbeddingResponse, GatewayError> {
        let w = serde_json::from_slice(body).map_err(|e| bad_reply(self.kind.as_str(), e))?;
        Ok(openai_embeddings::decode_response(w))
    }

    fn parse_error(&self, status: u16, body: &[u8], retry_after: Option<u64>) -> GatewayError {
        upstream_error(self.kind.as_str(), status, body, retry_after)
    }

    fn auth_headers(&self, key: &Secret) -> Vec<(HeaderName, HeaderValue)> {
        if self.kind == ProviderKind::AzureOpenAi {
            return super::key_header("api-key", key);
        }
        bearer(key)
    }
}

/// Whether an OpenAI model takes `reasoning_effort`: the o-series and GPT-5 do; GPT-4,
/// GPT-4o, GPT-4.1, GPT-3.5 and the GPT-5 chat models do not. An Azure deployment is named by
/// its owner, so a name that says nothing is taken to reason, as the request asked.
fn reasons(model: &str) -> bool {
    let model = model.rsplit('/').next().unwrap_or(model);
    const NON_REASONING: &[&str] = &["gpt-4", "gpt-3.5", "chatgpt-", "gpt-5-chat", "gpt-5.1-chat"];
    !NON_REASONING.iter().any(|p| model.starts_with(p))
}

/// Relays a Chat Completions stream to a Chat Completions client as it came, reading only
/// each chunk's usage and finish reasons; `[DONE]` ends it.
struct OpenAiRawStream {
    name: &'static str,
    client_usage: bool,
    /// Also emit each chunk's content as text deltas (a mirrored request's record).
    text: bool,
}

impl StreamDecoder for OpenAiRawStream {
    fn decode(&mut self, ev: &SseEvent) -> Result<StreamStep, GatewayError> {
        let data = match chunk_text(ev) {
            Ok(data) => data,
            Err(step) => return Ok(step),
        };
        let texts = if self.text {
            passthrough::chunk_texts(data)
        } else {
            Vec::new()
        };
        let texts = texts.into_iter().map(|(choice, t)| StreamEvent::Delta {
            choice,
            delta: crate::schema::Delta::Text(t),
        });
        if ev.event.is_none() && !passthrough::may_carry_meta(data) {
            let mut events = vec![StreamEvent::Raw(ev.to_bytes())];
            events.extend(texts);
            return Ok(StreamStep::Events(events));
        }
        let meta = passthrough::chunk_meta(data).map_err(|e| bad_reply(self.name, e))?;
        if (meta.error && meta.no_choices) || ev.event.as_deref() == Some("error") {
            return Err(stream_error(self.name, data));
        }
        let mut events = Vec::with_capacity(2);
        let forced_usage = meta.no_choices && meta.usage.is_some() && !self.client_usage;
        if !forced_usage {
            events.push(StreamEvent::Raw(ev.to_bytes()));
        }
        events.extend(texts);
        events.extend(meta.usage.map(StreamEvent::Usage));
        events.extend(
            meta.finishes
                .into_iter()
                .map(|(choice, reason)| StreamEvent::Finish { choice, reason }),
        );
        Ok(StreamStep::Events(events))
    }
}

/// A chunk's JSON text, or the step an event without one means (`[DONE]` ends the stream;
/// an empty event is nothing).
fn chunk_text(ev: &SseEvent) -> Result<&str, StreamStep> {
    match ev.data.trim() {
        "[DONE]" => Err(StreamStep::Done),
        "" => Err(StreamStep::Events(Vec::new())),
        data => Ok(data),
    }
}

/// An error object in a stream, as the error that ends it.
fn stream_error(name: &str, data: &str) -> GatewayError {
    let msg = crate::codec::provider_error::read(data.as_bytes())
        .map_or_else(|| "error event in stream".to_owned(), |e| e.message);
    GatewayError::new(ErrorKind::UpstreamFailed, format!("{name}: {msg}"))
}

/// Decodes `data:` events of a Chat Completions stream; `[DONE]` ends it.
pub(super) struct OpenAiStream {
    pub name: &'static str,
    pub inner: ChunkDecoder,
}

impl StreamDecoder for OpenAiStream {
    fn decode(&mut self, ev: &SseEvent) -> Result<StreamStep, GatewayError> {
        let data = match chunk_text(ev) {
            Ok(data) => data,
            Err(step) => return Ok(step),
        };
        match self
            .inner
            .decode_json(data)
            .map_err(|e| bad_reply(self.name, e))?
        {
            Decoded::Events(events) if ev.event.as_deref() != Some("error") => {
                Ok(StreamStep::Events(events))
            }
            _ => Err(stream_error(self.name, data)),
        }
    }
}
