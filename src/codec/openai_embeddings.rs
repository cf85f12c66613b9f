//! OpenAI Embeddings (`POST /v1/embeddings`): client ingress and upstream for OpenAI-style
//! providers. Mistral's variant (no `user`, `output_dimension` for `dimensions`) is narrowed
//! by its adapter.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::GatewayError;
use crate::schema::{Embedding, EmbeddingInput, EmbeddingRequest, EmbeddingResponse, JsonMap};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct OaiEmbeddingRequest {
    pub model: String,
    pub input: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    /// Mistral's name for `dimensions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_dimension: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(flatten)]
    pub extra: JsonMap,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct OaiEmbeddingResponse {
    #[serde(default = "list")]
    pub object: String,
    pub data: Vec<OaiEmbedding>,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub usage: OaiEmbeddingUsage,
}

fn list() -> String {
    "list".to_owned()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct OaiEmbedding {
    #[serde(default = "embedding")]
    pub object: String,
    pub embedding: Value,
    #[serde(default)]
    pub index: u32,
}

fn embedding() -> String {
    "embedding".to_owned()
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct OaiEmbeddingUsage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
}

pub fn decode_request(w: OaiEmbeddingRequest) -> Result<EmbeddingRequest, GatewayError> {
    let bad = || {
        GatewayError::invalid_param(
            "input",
            "`input` must be a string, an array of strings, or an array of token arrays",
        )
    };
    let input = match w.input {
        Value::String(s) => EmbeddingInput::Text(s),
        Value::Array(items) if items.is_empty() => return Err(bad()),
        Value::Array(items) if items.iter().all(Value::is_string) => EmbeddingInput::Texts(
            items
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        ),
        Value::Array(items) if items.iter().all(Value::is_number) => {
            EmbeddingInput::Tokens(vec![tokens(&Value::Array(items)).ok_or_else(bad)?])
        }
        Value::Array(items) => EmbeddingInput::Tokens(
            items
                .iter()
                .map(tokens)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(bad)?,
        ),
        _ => return Err(bad()),
    };
    if w.model.is_empty() {
        return Err(GatewayError::invalid_param(
            "model",
            "`model` must not be empty",
        ));
    }
    Ok(EmbeddingRequest {
        model: w.model,
        input,
        dimensions: w.dimensions.or(w.output_dimension),
        encoding_format: w.encoding_format,
        user: w.user,
        extra: w.extra,
    })
}

fn tokens(v: &Value) -> Option<Vec<u32>> {
    v.as_array()?
        .iter()
        .map(|t| t.as_u64().and_then(|t| u32::try_from(t).ok()))
        .collect()
}

pub fn encode_request(r: &EmbeddingRequest, model: &str) -> OaiEmbeddingRequest {
    OaiEmbeddingRequest {
        model: model.to_owned(),
        input: match &r.input {
            EmbeddingInput::Text(s) => Value::String(s.clone()),
            EmbeddingInput::Texts(v) => Value::from(v.clone()),
            EmbeddingInput::Tokens(v) => Value::from(v.clone()),
        },
        dimensions: r.dimensions,
        output_dimension: None,
        encoding_format: r.encoding_format.clone(),
        user: r.user.clone(),
        extra: r.extra.clone(),
    }
}

pub fn decode_response(w: OaiEmbeddingResponse) -> EmbeddingResponse {
    EmbeddingResponse {
        model: w.model,
        data: w
            .data
            .into_iter()
            .map(|d| Embedding {
                index: d.index,
                vector: d.embedding,
            })
            .collect(),
        input_tokens: w.usage.prompt_tokens,
    }
}

pub fn encode_response(r: &EmbeddingResponse) -> OaiEmbeddingResponse {
    OaiEmbeddingResponse {
        object: "list".to_owned(),
        data: r
            .data
            .iter()
            .map(|e| OaiEmbedding {
                object: "embedding".to_owned(),
                embedding: e.vector.clone(),
                index: e.index,
            })
            .collect(),
        model: r.model.clone(),
        usage: OaiEmbeddingUsage {
            prompt_tokens: r.input_tokens,
            total_tokens: r.input_tokens,
        },
    }
}
/// A cheap upper estimate of an embeddings request's input tokens, for admission: a token
/// per three bytes of text, or the token ids as given.
pub fn estimate_input(req: &EmbeddingRequest) -> u64 {
    match &req.input {
        EmbeddingInput::Text(t) => t.len().div_ceil(3) as u64,
        EmbeddingInput::Texts(ts) => ts.iter().map(|t| t.len().div_ceil(3) as u64).sum(),
        EmbeddingInput::Tokens(ids) => ids.iter().map(|v| v.len() as u64).sum(),
    }
}
