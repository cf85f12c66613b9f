//! `mistral` provider: Chat Completions and Embeddings on api.mistral.ai.
//!
//! Mistral's published schema (../shared/specs/mistral/openapi-public-doc.yaml) closes the
//! request and every message with `additionalProperties: false` and answers anything else
//! with 422 `extra_forbidden`. So this adapter starts from the OpenAI encoding and narrows it
//! to exactly what the schema accepts, recording every drop or coercion:
//! - no `stream_options`, `user`, `logprobs`, `top_logprobs`, `logit_bias`, `top_k`; `seed` is
//!   `random_seed`; `max_completion_tokens` is `max_tokens`; `temperature` is at most 1.5;
//! - of the top-level fields the OpenAI encoding does not model (a Chat Completions client's
//!   extras), only Mistral's own (`random_seed`, `safe_prompt`, `prompt_mode`, ...) pass;
//! - `developer` messages are `system`; `name` only on tool messages; reasoning history is a
//!   `thinking` chunk; files become `document_url` chunks;
//! - tool-call ids must be exactly 9 letters and digits: other ids are mapped by a hash, so
//!   the same id maps to the same value in every turn without any stored state;
//! - `reasoning_effort` is normalised to the levels the model accepts (older models take
//!   only `none`/`high`; see [`BUILTIN_REASONING_LEVELS`]), overridable per provider.

use std::sync::Arc;

use http::{HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

use super::openai::OpenAiStream;
use super::{
    Adapter, StreamDecoder, StreamMode, UpstreamRequest, bad_reply, bearer, json_body,
    upstream_error,
};
use crate::codec::openai_chat::wire::{OaiContent, OaiMessage, OaiPart, OaiThinkingItem};
use crate::codec::openai_chat::{self, ChunkDecoder};
use crate::codec::{Warnings, openai_embeddings};
use crate::config::{ProviderConfig, ProviderKind, Secret};
use crate::error::GatewayError;
use crate::schema::{
    ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, ReasoningEffort,
};

pub const PROVIDER_KIND: &str = "mistral";

/// Mistral's maximum `temperature` (OpenAI allows 2).
const MAX_TEMPERATURE: f64 = 1.5;

/// Top-level request fields Mistral accepts beyond the ones the OpenAI encoding models
/// (schema `ChatCompletionRequest`), which a Chat Completions client may send as extras; any
/// other extra field is dropped with a warning.
const MISTRAL_EXTRA_FIELDS: &[&str] = &[
    "random_seed",
    "safe_prompt",
    "prompt_mode",
    "guardrails",
    "prediction",
    "prompt_cache_key",
    "service_tier",
];

use ReasoningEffort as E;
const TWO_LEVELS: &[ReasoningEffort] = &[E::None, E::High];
const SIX_LEVELS: &[ReasoningEffort] = &[E::None, E::Minimal, E::Low, E::Medium, E::High, E::XHigh];

/// Which `reasoning_effort` values each model family accepts, first match wins. Mistral's
/// schema allowed only `none | high` until 2026-06 (../shared/specs/mistral/openapi.yaml) and
/// the models of that generation still answer 422 to other values; the current schema lists
/// six levels, which newer (and unknown) models get. A provider's `reasoning_effort` table
/// in the config overrides this.
pub const BUILTIN_REASONING_LEVELS: &[(&str, &[ReasoningEffort])] = &[
    ("devstral-", TWO_LEVELS),
    ("magistral-", TWO_LEVELS),
    ("mistral-small-", TWO_LEVELS),
    ("mistral-medium-", TWO_LEVELS),
    ("mistral-large-", TWO_LEVELS),
    ("ministral-", TWO_LEVELS),
    ("codestral-", TWO_LEVELS),
];

pub struct MistralAdapter {
    /// The provider's config, shared with its `Provider` (for the reasoning-effort overrides).
    config: Arc<ProviderConfig>,
}

impl MistralAdapter {
    pub fn new(config: Arc<ProviderConfig>) -> Self {
        Self { config }
    }

    fn levels_for(&self, model: &str) -> &[ReasoningEffort] {
        if let Some(levels) = self.config.reasoning_levels_for(model) {
            return levels;
        }
        BUILTIN_REASONING_LEVELS
            .iter()
            .find(|(prefix, _)| model.starts_with(prefix))
            .map_or(SIX_LEVELS, |(_, levels)| levels)
    }
}

impl Adapter for MistralAdapter {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Mistral
    }

    fn build_chat(
        &self,
        req: &ChatRequest,
        model: &str,
        w: &mut Warnings,
    ) -> Result<UpstreamRequest, GatewayError> {
        let mut b = openai_chat::encode_request(req, model, w);
        b.stream_options = None; // we add it ourselves for OpenAI; Mistral reports usage anyway
        if b.user.take().is_some() {
            w.push("user dropped for mistral");
        }
        for (field, dropped) in [
            ("logprobs", b.logprobs.take().is_some()),
            ("top_logprobs", b.top_logprobs.take().is_some()),
            ("logit_bias", b.logit_bias.take().is_some()),
            ("top_k", b.top_k.take().is_some()),
        ] {
            if dropped {
                w.push(format!("{field} dropped for mistral"));
            }
        }
        // `seed` is `random_seed` here; a client's own `random_seed` (an extra: OpenAI's
        // schema has no such field) counts when it sent no `seed`. Negative seeds are 0.
        let seed = b.seed.take().or_else(|| {
            b.extra
                .get("random_seed")
                .and_then(serde_json::Value::as_i64)
        });
        if let Some(s) = seed {
            b.extra.insert("random_seed".to_owned(), s.max(0).into());
        }
        if let Some(m) = b.max_completion_tokens.take() {
            b.max_tokens = Some(m);
        }
        if let Some(t) = b.temperature.filter(|t| *t > MAX_TEMPERATURE) {
            b.temperature = Some(MAX_TEMPERATURE);
            w.push(format!("temperature {t}->{MAX_TEMPERATURE} for mistral"));
        }
        b.extra.retain(|k, _| {
            let keep = MISTRAL_EXTRA_FIELDS.contains(&k.as_str());
            if !keep {
                w.push(format!("{k} dropped for mistral"));
            }
            keep
        });
        if let Some(e) = req.reasoning.as_ref().and_then(|r| r.effort) {
            b.reasoning_effort = normalise_effort(e, self.levels_for(model), w);
        }
        for m in &mut b.messages {
            narrow_message(m, w);
        }
        fit_message_order(&mut b.messages, w);
        Ok(UpstreamRequest {
            path: "/chat/completions".to_owned(),
            body: json_body(&b)?,
            headers: Vec::new(),
            passthrough: false,
        })
    }

    fn parse_chat(&self, body: &[u8]) -> Result<ChatResponse, GatewayError> {
        let w = serde_json::from_slice(body).map_err(|e| bad_reply(PROVIDER_KIND, e))?;
        Ok(openai_chat::decode_response(w))
    }

    fn stream_decoder(&self, _mode: StreamMode) -> Box<dyn StreamDecoder> {
        Box::new(OpenAiStream {
            name: PROVIDER_KIND,
            inner: ChunkDecoder::default(),
        })
    }

    fn build_embeddings(
        &self,
        req: &EmbeddingRequest,
        model: &str,
        w: &mut Warnings,
    ) -> Result<UpstreamRequest, GatewayError> {
        let mut b = openai_embeddings::encode_request(req, model);
        b.output_dimension = b.dimensions.take();
        if b.user.take().is_some() {
            w.push("user dropped for mistral");
        }
        b.extra.retain(|k, _| {
            let keep = matches!(k.as_str(), "output_dtype" | "metadata");
            if !keep {
                w.push(format!("{k} dropped for mistral"));
            }
            keep
        });
        if req.input.is_tokens() {
            return Err(GatewayError::invalid_param(
                "input",
                "mistral embeddings take text, not token ids",
            ));
        }
        Ok(UpstreamRequest {
            path: "/embeddings".to_owned(),
            body: json_body(&b)?,
            headers: Vec::new(),
            passthrough: false,
        })
    }

    fn parse_embeddings(&self, body: &[u8]) -> Result<EmbeddingResponse, GatewayError> {
        let w = serde_json::from_slice(body).map_err(|e| bad_reply(PROVIDER_KIND, e))?;
        Ok(openai_embeddings::decode_response(w))
    }

    fn parse_error(&self, status: u16, body: &[u8], retry_after: Option<u64>) -> GatewayError {
        upstream_error(PROVIDER_KIND, status, body, retry_after)
    }

    fn auth_headers(&self, key: &Secret) -> Vec<(HeaderName, HeaderValue)> {
        bearer(key)
    }
}

/// Map a requested effort onto the levels a model accepts: unchanged when accepted; `none`
/// to the lowest level; any other level to the nearest accepted level at or above it, else
/// the highest accepted one. An empty list means the model takes no `reasoning_effort`.
pub fn normalise_effort(
    want: ReasoningEffort,
    accepted: &[ReasoningEffort],
    w: &mut Warnings,
) -> Option<String> {
    if accepted.contains(&want) {
        return Some(want.as_str().to_owned());
    }
    let Some(&lowest) = accepted.first() else {
        w.push(format!(
            "reasoning_effort {} dropped for mistral",
            want.as_str()
        ));
        return None;
    };
    let got = if want == E::None {
        lowest
    } else {
        accepted
            .iter()
            .copied()
            .filter(|l| *l != E::None)
            .find(|l| *l >= want)
            .or_else(|| accepted.iter().copied().rfind(|l| *l != E::None))
            .unwrap_or(lowest)
    };
    w.push(format!(
        "reasoning_effort {}->{} for mistral",
        want.as_str(),
        got.as_str()
    ));
    Some(got.as_str().to_owned())
}

/// What a bridging assistant turn says: short, and true of any tool result.
const BRIDGE_TEXT: &str = "Ok.";

/// Mistral's serving validator takes a stricter order than OpenAI and Anthropic (400
/// `invalid_request_message_order`), and Claude Code meets it at once:
/// - after tool results only an assistant turn (or more results): Claude Code's turn after a
///   tool call is its results and text in one user turn, which become tool messages then a
///   user message, so a short assistant turn goes between them;
/// - the conversation ends with a user turn or tool results: Claude Code's first request in
///   `-p` mode is `[user, system]` (its environment comes last), so system text that ends the
///   conversation is sent as user text; an assistant turn that ends it (Anthropic's prefill,
///   a reply to continue) is marked `prefix`, Mistral's way of saying "continue from here".
fn fit_message_order(messages: &mut Vec<OaiMessage>, w: &mut Warnings) {
    let trailing_system = messages
        .iter()
        .rposition(|m| m.role != "system")
        .map_or(0, |i| i + 1);
    if trailing_system > 0 && trailing_system < messages.len() {
        for m in &mut messages[trailing_system..] {
            m.role = "user".to_owned();
        }
        w.push("system text after the conversation sent as user for mistral");
    }
    if let Some(last) = messages
        .last_mut()
        .filter(|m| m.role == "assistant" && m.tool_calls.is_none())
    {
        last.extra
            .insert("prefix".to_owned(), serde_json::Value::Bool(true));
    }
    let mut i = 1;
    while i < messages.len() {
        if matches!(messages[i].role.as_str(), "user" | "system") && messages[i - 1].role == "tool"
        {
            messages.insert(
                i,
                OaiMessage {
                    role: "assistant".to_owned(),
                    content: Some(OaiContent::Text(BRIDGE_TEXT.to_owned())),
                    ..OaiMessage::default()
                },
            );
            w.push("assistant turn added between tool results and user text for mistral");
            i += 1;
        }
        i += 1;
    }
}

fn narrow_message(m: &mut OaiMessage, w: &mut Warnings) {
    if m.role == "developer" {
        m.role = "system".to_owned();
        w.push("developer role sent as system for mistral");
    }
    if m.role != "tool" && m.name.take().is_some() {
        w.push("message name dropped for mistral");
    }
    if m.refusal.take().is_some() {
        w.push("refusal dropped for mistral");
    }
    m.reasoning = None;
    if !m.extra.is_empty() {
        for k in m.extra.keys() {
            w.push(format!("message {k} dropped for mistral"));
        }
        m.extra.clear();
    }
    if let Some(id) = &mut m.tool_call_id {
        *id = tool_call_id(id);
    }
    for c in m.tool_calls.iter_mut().flatten() {
        c.id = tool_call_id(&c.id);
    }
    // Reasoning history goes back as a `thinking` chunk ahead of the text.
    if let Some(r) = m.reasoning_content.take() {
        let mut parts = vec![OaiPart::Thinking {
            thinking: vec![OaiThinkingItem {
                kind: "text".to_owned(),
                text: r,
            }],
            signature: None,
        }];
        match m.content.take() {
            Some(OaiContent::Text(t)) if !t.is_empty() => parts.push(OaiPart::Text { text: t }),
            Some(OaiContent::Parts(p)) => parts.extend(p),
            _ => {}
        }
        m.content = Some(OaiContent::Parts(parts));
    }
    if let Some(OaiContent::Parts(parts)) = &mut m.content {
        parts.retain_mut(|p| match p {
            OaiPart::File { file } => match file.file_data.take() {
                Some(data) => {
                    *p = OaiPart::DocumentUrl {
                        document_url: data,
                        document_name: file.filename.take(),
                    };
                    true
                }
                None => {
                    w.push("file_id dropped for mistral");
                    false
                }
            },
            OaiPart::Other(v) => {
                let kind = v.get("type").and_then(|t| t.as_str()).unwrap_or("unknown");
                w.push(format!("content part {kind} dropped for mistral"));
                false
            }
            OaiPart::Refusal { .. } => {
                w.push("refusal dropped for mistral");
                false
            }
            // Mistral's `input_audio` is the base64 data itself (its `AudioChunk`).
            OaiPart::InputAudio { input_audio } => {
                let data = std::mem::take(&mut input_audio.data);
                *p =
                    OaiPart::Other(serde_json::json!({"type": "input_audio", "input_audio": data}));
                true
            }
            _ => true,
        });
    }
}

/// Mistral accepts tool-call ids of exactly 9 ASCII letters and digits. Conforming ids pass
/// unchanged; others map to the first 9 base-62 digits of their SHA-256, so an id and the
/// tool result that answers it map to the same value in every turn, with no state kept.
pub fn tool_call_id(id: &str) -> String {
    if id.len() == 9 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return id.to_owned();
    }
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let digest = Sha256::digest(id.as_bytes());
    let mut n = u128::from_be_bytes(digest[..16].try_into().unwrap_or([0; 16]));
    let mut out = String::with_capacity(9);
    for _ in 0..9 {
        out.push(ALPHABET[(n % 62) as usize] as char);
        n /= 62;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_call_ids_are_nine_alphanumerics_and_stable() {
        let a = tool_call_id("call_abc123XYZ");
        assert_eq!(a.len(), 9);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(a, tool_call_id("call_abc123XYZ"));
        assert_ne!(a, tool_call_id("call_abc123XYz"));
        assert_eq!(tool_call_id("aB3dE5fG7"), "aB3dE5fG7");
        assert_eq!(tool_call_id(&a), a);
        let b = tool_call_id("toolu_01A09q90qw90lq917835lq9");
        assert_eq!(b.len(), 9);
    }

    #[test]
    fn effort_is_normalised_to_accepted_levels() {
        let mut w = Warnings::default();
        assert_eq!(
            normalise_effort(E::Medium, TWO_LEVELS, &mut w).as_deref(),
            Some("high")
        );
        assert_eq!(
            normalise_effort(E::Minimal, TWO_LEVELS, &mut w).as_deref(),
            Some("high")
        );
        assert_eq!(
            normalise_effort(E::None, TWO_LEVELS, &mut w).as_deref(),
            Some("none")
        );
        assert_eq!(
            normalise_effort(E::High, TWO_LEVELS, &mut w).as_deref(),
            Some("high")
        );
        assert_eq!(
            normalise_effort(E::Max, SIX_LEVELS, &mut w).as_deref(),
            Some("xhigh")
        );
        assert_eq!(
            normalise_effort(E::Low, SIX_LEVELS, &mut w).as_deref(),
            Some("low")
        );
        assert_eq!(normalise_effort(E::High, &[], &mut w), None);
        let all: Vec<_> = w.iter().collect();
        assert!(
            all.contains(&"reasoning_effort medium->high for mistral"),
            "{all:?}"
        );
        assert!(
            all.contains(&"reasoning_effort max->xhigh for mistral"),
            "{all:?}"
        );
        assert!(
            all.contains(&"reasoning_effort high dropped for mistral"),
            "{all:?}"
        );
    }
}
