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
#[cfg(test)]
mod stream_props;

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
