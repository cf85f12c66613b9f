//! The Responses API request as sent.

use serde::Deserialize;
use serde_json::Value;

use crate::schema::JsonMap;

#[derive(Debug, Default, Deserialize)]
pub struct RespRequest {
    #[serde(default)]
    pub model: String,
    /// A string (one user message) or an array of input items.
    pub input: Option<Value>,
    /// A string, or (newer) an array of input items; applies to this request only.
    pub instructions: Option<Value>,
    pub tools: Option<Vec<Value>>,
    pub tool_choice: Option<Value>,
    pub parallel_tool_calls: Option<bool>,
    pub reasoning: Option<RespReasoning>,
    pub text: Option<RespText>,
    pub store: Option<bool>,
    pub previous_response_id: Option<String>,
    pub max_output_tokens: Option<u64>,
    pub max_tool_calls: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_logprobs: Option<u32>,
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<Value>,
    pub include: Option<Vec<String>>,
    pub metadata: Option<JsonMap>,
    pub user: Option<String>,
    pub safety_identifier: Option<String>,
    pub prompt_cache_key: Option<String>,
    pub service_tier: Option<String>,
    pub truncation: Option<String>,
    pub background: Option<bool>,
    pub conversation: Option<Value>,
    #[serde(flatten)]
    pub extra: JsonMap,
}

#[derive(Debug, Default, Clone, Deserialize, serde::Serialize)]
pub struct RespReasoning {
    pub effort: Option<String>,
    /// `auto`, `concise` or `detailed`: a summary of the reasoning is wanted.
    pub summary: Option<String>,
    /// Deprecated spelling of `summary`.
    #[serde(skip_serializing)]
    pub generate_summary: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct RespText {
    pub format: Option<Value>,
    pub verbosity: Option<String>,
}
