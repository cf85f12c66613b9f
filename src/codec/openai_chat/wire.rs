//! OpenAI Chat Completions wire types (request, response, stream chunk, error), as documented
//! in ../shared/specs/openai and as OpenAI-compatible servers (vLLM, llama-server, Ollama,
//! OpenRouter, Mistral) actually send them. Optional fields are skipped when absent so that a
//! strict server (Mistral: `additionalProperties: false`) never sees a field we did not mean.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

use serde_json::Value;
use serde_json::value::RawValue;

use crate::codec::extra::{deserialize_with_extra, text_or_list};
use crate::schema::JsonMap;

/// `CreateChatCompletionRequest`: OpenAI's fields, plus `top_k` (the one documented
/// extension, which vLLM, llama-server and Ollama take). Any other top-level field, another
/// server's included (Mistral's `random_seed`, `safe_prompt`, `prompt_mode`, ...), is kept in
/// `extra`: it goes on to an OpenAI-style provider as the client wrote it, and each adapter
/// decides what its server takes (the Mistral adapter keeps Mistral's own).
#[derive(Debug, Clone, Default, Serialize)]
pub struct OaiChatRequest {
    pub model: String,
    pub messages: Vec<OaiMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Not OpenAI's; vLLM, llama-server and Ollama accept it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<OaiStreamOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<OaiStop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logit_bias: Option<JsonMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<OaiTool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<OaiResponseFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<JsonMap>,
    #[serde(flatten)]
    pub extra: JsonMap,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct OaiStreamOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
    #[serde(flatten)]
    pub extra: JsonMap,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum OaiStop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct OaiMessage {
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<OaiContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<OaiToolCall>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// Reasoning text, as DeepSeek, vLLM, llama-server and LiteLLM name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// Reasoning text, as OpenRouter and some vLLM versions name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    #[serde(flatten)]
    pub extra: JsonMap,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum OaiContent {
    Text(String),
    Parts(Vec<OaiPart>),
}
text_or_list!(
    OaiContent,
    Text,
    Parts,
    "a string or an array of content parts"
);

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OaiPart {
    Text {
        text: String,
    },
    ImageUrl {
        image_url: OaiImageUrl,
    },
    InputAudio {
        input_audio: OaiInputAudio,
    },
    File {
        file: OaiFile,
    },
    Refusal {
        refusal: String,
    },
    /// Mistral's reasoning chunk: `{"type":"thinking","thinking":[{"type":"text","text":..}]}`.
    Thinking {
        thinking: Vec<OaiThinkingItem>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
    /// Mistral's document chunk.
    DocumentUrl {
        document_url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        document_name: Option<String>,
    },
    /// A part type this codec does not model (OpenAI adds new ones), kept whole so that an
    /// OpenAI-style provider receives it unchanged; other providers drop it with a warning.
    #[serde(untagged)]
    Other(Value),
}

/// The `type`s of the modelled [`OaiPart`] variants (must match the enum above). serde falls
/// back to `Other` when a part of one of these types is malformed, so decoding a client's
/// request checks `Other` parts against this list to report the malformed part as such.
pub const MODELLED_PART_TYPES: &[&str] = &[
    "text",
    "image_url",
    "input_audio",
    "file",
    "refusal",
    "thinking",
    "document_url",
];

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct OaiThinkingItem {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: String,
}

/// `image_url` is an object in OpenAI's schema; Mistral also accepts a bare string.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum OaiImageUrl {
    Object {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    Bare(String),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct OaiInputAudio {
    pub data: String,
    pub format: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct OaiFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct OaiToolCall {
    /// Mistral sends `"null"` as a default; some servers omit it.
    #[serde(default)]
    pub id: String,
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: OaiFunctionCall,
}

fn function_type() -> String {
    "function".to_owned()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct OaiFunctionCall {
    pub name: String,
    /// A JSON text per OpenAI; Mistral may send an object.
    pub arguments: Value,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct OaiTool {
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: OaiFunction,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct OaiFunction {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct OaiResponseFormat {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_schema: Option<OaiJsonSchema>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct OaiJsonSchema {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

// === response ===

#[derive(Debug, Clone, Serialize)]
pub struct OaiChatResponse {
    #[serde(default)]
    pub id: String,
    #[serde(default = "completion_object")]
    pub object: String,
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub model: String,
    pub choices: Vec<OaiChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<OaiUsage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
    #[serde(flatten)]
    pub extra: JsonMap,
}

fn completion_object() -> String {
    "chat.completion".to_owned()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct OaiChoice {
    #[serde(default)]
    pub index: u32,
    pub message: OaiMessage,
    /// Always present in OpenAI's schema (null while unknown).
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct OaiUsage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<OaiPromptDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<OaiCompletionDetails>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct OaiPromptDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    /// Tokens written to the cache (not OpenAI's; some compatible servers and our Anthropic
    /// translation report it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_tokens: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct OaiCompletionDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
}

// === stream ===

/// A stream chunk as received, borrowing from the event's text: on the hot path of every
/// stream, so strings are borrowed where they have no escapes and `content` (a string for
/// OpenAI, an array of chunks for Mistral's reasoning models) is looked at only once.
#[derive(Debug, Deserialize)]
pub struct OaiChunkIn<'a> {
    #[serde(default, borrow)]
    pub id: Cow<'a, str>,
    #[serde(default)]
    pub created: u64,
    #[serde(default, borrow)]
    pub model: Cow<'a, str>,
    #[serde(default, borrow)]
    pub choices: Vec<OaiChunkChoiceIn<'a>>,
    #[serde(default)]
    pub usage: Option<OaiUsage>,
    /// An in-stream error object (`{"error":{...}}`).
    #[serde(default, borrow)]
    pub error: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
pub struct OaiChunkChoiceIn<'a> {
    #[serde(default)]
    pub index: u32,
    #[serde(default, borrow)]
    pub delta: OaiDeltaIn<'a>,
    #[serde(default, borrow)]
    pub finish_reason: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct OaiDeltaIn<'a> {
    #[serde(default, borrow)]
    pub content: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub reasoning_content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub reasoning: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub refusal: Option<Cow<'a, str>>,
    #[serde(default)]
    pub tool_calls: Option<Vec<OaiToolCallDelta>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct OaiToolCallDelta {
    #[serde(default)]
    pub index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<OaiFunctionDelta>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct OaiFunctionDelta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Value>,
}

// === error ===

/// `{"error":{"message","type","param","code"}}`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct OaiErrorBody {
    pub error: OaiError,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct OaiError {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub param: Option<String>,
    pub code: Option<String>,
}

deserialize_with_extra!(OaiChatRequest {
    model: req,
    messages: req,
    temperature: def,
    top_p: def,
    top_k: def,
    n: def,
    stream: def,
    stream_options: def,
    stop: def,
    max_tokens: def,
    max_completion_tokens: def,
    presence_penalty: def,
    frequency_penalty: def,
    logit_bias: def,
    logprobs: def,
    top_logprobs: def,
    user: def,
    seed: def,
    tools: def,
    tool_choice: def,
    parallel_tool_calls: def,
    response_format: def,
    reasoning_effort: def,
    metadata: def,
});
deserialize_with_extra!(OaiStreamOptions { include_usage: def });
deserialize_with_extra!(OaiMessage {
    role: req,
    content: def,
    name: def,
    tool_calls: def,
    tool_call_id: def,
    refusal: def,
    reasoning_content: def,
    reasoning: def,
});
deserialize_with_extra!(OaiChatResponse {
    id: def,
    object: def_with(completion_object),
    created: def,
    model: def,
    choices: req,
    usage: def,
    system_fingerprint: def,
});
