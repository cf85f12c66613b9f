//! Wire codecs: each schema's JSON types and their translation to and from the canonical model.
//!
//! A codec is used from both sides: the ingress decodes a client's request and encodes the
//! reply; a provider adapter of the same family encodes the upstream request and decodes the
//! provider's reply. Codecs are pure (no I/O) and report every field they coerce or drop into
//! a [`Warnings`] list, which ends up in `x-gatehouse-warnings` and the request log.

pub mod anthropic;
pub mod bedrock;
pub(crate) mod extra;
pub mod gemini;
pub mod openai_chat;
pub mod openai_embeddings;
pub mod passthrough;
pub mod provider_error;
pub mod responses;
pub mod scan;
pub mod signed_id;
pub mod upstream_stream;

use crate::schema::{Delta, Part, WireSchema};

/// What every chat schema requires before anything else: a model name and a message.
pub(crate) fn require_model_and_messages(
    model: &str,
    messages: usize,
) -> Result<(), crate::error::GatewayError> {
    use crate::error::GatewayError;
    if model.is_empty() {
        return Err(GatewayError::invalid_param(
            "model",
            "`model` must not be empty",
        ));
    }
    if messages == 0 {
        return Err(GatewayError::invalid_param(
            "messages",
            "`messages` must not be empty",
        ));
    }
    Ok(())
}

/// Whether a client schema has a form for reasoning the provider returned redacted:
/// Anthropic's `redacted_thinking` block, the Responses API's reasoning item with only its
/// `encrypted_content`. Chat Completions and Gemini have none.
pub fn carries_redacted(client: WireSchema) -> bool {
    matches!(
        client,
        WireSchema::AnthropicMessages | WireSchema::OpenAiResponses
    )
}

/// Note in `w` every part of a reply that `client`'s schema has no form for, by its block
/// type: the encoder leaves it out, and the caller learns so (never silently).
pub fn note_unsent(parts: &[Part], client: WireSchema, w: &mut Warnings) {
    for p in parts {
        let kind = match p {
            // Web sources translate (OpenAI `url_citation`, Anthropic
            // `web_search_result_location`); a passage of a document has no form outside the
            // provider that made it (an Anthropic client on Anthropic gets the reply as it
            // came), and Gemini clients get no citations.
            Part::Text(t) => {
                for c in &t.citations {
                    if client == WireSchema::Gemini || !c.is_web() {
                        w.push(format!(
                            "citations {} dropped for {}",
                            c.kind,
                            client.name()
                        ));
                    }
                }
                continue;
            }
            Part::RedactedReasoning { .. } if !carries_redacted(client) => "redacted_thinking",
            Part::Opaque { schema, value } if *schema != client => value
                .get("type")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("unknown"),
            _ => continue,
        };
        w.push(format!("{kind} dropped for {}", client.name()));
    }
}

/// The warning for a streamed delta `client`'s schema has no form for, if it is one.
pub fn unsent_delta(d: &Delta, client: WireSchema) -> Option<String> {
    match d {
        Delta::RedactedReasoning(_) if !carries_redacted(client) => {
            Some(format!("redacted_thinking dropped for {}", client.name()))
        }
        Delta::Unrepresented(kind) => Some(format!("{kind} dropped for {}", client.name())),
        // Only the Responses stream has an event for it (`output_text.annotation.added`).
        Delta::Citation { .. } if client != WireSchema::OpenAiResponses => {
            Some(format!("citations dropped for {}", client.name()))
        }
        _ => None,
    }
}

/// The web sources a streamed text block cites, held until the block ends: Anthropic and
/// Bedrock cite per content block, so each becomes a `Citation` delta over the whole text
/// of its block. Used by their stream decoders.
#[derive(Debug, Default)]
pub(crate) struct BlockCitations {
    cited: Vec<crate::schema::Citation>,
    /// Characters of the open block's text so far.
    chars: usize,
}

impl BlockCitations {
    /// Text of the open block.
    pub fn text(&mut self, t: &str) {
        self.chars += t.chars().count();
    }

    /// A citation of the open block: held if it is a web source; otherwise the delta that
    /// names what was dropped.
    pub fn cite(&mut self, c: crate::schema::Citation) -> Option<Delta> {
        if c.is_web() {
            self.cited.push(c);
            None
        } else {
            Some(Delta::Unrepresented(format!("citations {}", c.kind)))
        }
    }

    /// The block ended: its web sources over its whole text; the next block starts afresh.
    pub fn end(&mut self) -> impl Iterator<Item = Delta> + use<> {
        let chars = std::mem::take(&mut self.chars);
        std::mem::take(&mut self.cited)
            .into_iter()
            .map(move |citation| Delta::Citation { citation, chars })
    }
}

/// Translation notes for `x-gatehouse-warnings`: short, comma-free phrases such as
/// `reasoning_effort medium->high for mistral`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Warnings(Vec<String>);

impl Warnings {
    pub fn push(&mut self, w: impl Into<String>) {
        let w = w.into().replace(',', ";");
        if !self.0.contains(&w) {
            self.0.push(w);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// The header value: phrases joined by `, `.
    pub fn header_value(&self) -> String {
        self.0.join(", ")
    }
}
