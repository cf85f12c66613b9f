//! Canonical embeddings request and response.

use super::JsonMap;

#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingRequest {
    pub model: String,
    pub input: EmbeddingInput,
    /// Requested vector size (OpenAI `dimensions`, Mistral `output_dimension`).
    pub dimensions: Option<u32>,
    /// `float` or `base64`.
    pub encoding_format: Option<String>,
    pub user: Option<String>,
    pub extra: JsonMap,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EmbeddingInput {
    Texts(Vec<String>),
    /// Pre-tokenized input (OpenAI accepts arrays of token ids).
    Tokens(Vec<Vec<u32>>),
    /// The client sent one string (not an array): replies keep the same shape either way.
    Text(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingResponse {
    pub model: String,
    pub data: Vec<Embedding>,
    pub input_tokens: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    pub index: u32,
    /// Floats, or a base64 string when `encoding_format = "base64"`.
    pub vector: serde_json::Value,
}

impl EmbeddingInput {
    pub fn is_tokens(&self) -> bool {
        matches!(self, EmbeddingInput::Tokens(_))
    }

    /// The texts to embed; `None` for token ids.
    pub fn texts(&self) -> Option<Vec<&str>> {
        match self {
            EmbeddingInput::Text(t) => Some(vec![t.as_str()]),
            EmbeddingInput::Texts(t) => Some(t.iter().map(String::as_str).collect()),
            EmbeddingInput::Tokens(_) => None,
        }
    }
}
