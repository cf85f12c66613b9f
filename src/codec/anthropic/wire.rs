//! Anthropic Messages wire types (request side), as in ../shared/specs/anthropic/openapi.json
//! (`CreateMessageParams`, `InputMessage`, the `Request*Block`s) and as Claude Code sends them.
//! Block types the codec does not model are kept whole (`Other`), like Chat Completions parts.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::codec::extra::{deserialize_with_extra, text_or_list};
use crate::schema::JsonMap;

#[derive(Debug, Clone, Serialize)]
pub struct AnthRequest {
    pub model: String,
    pub messages: Vec<AnthMessage>,
    /// Required in a Messages request (`CreateMessageParams`; [`super::decode_request`]
    /// refuses one without it), absent from a `count_tokens` one (`CountMessageTokensParams`),
    /// so that both parse into this type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<AnthContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<AnthMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<AnthTool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<AnthToolChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<AnthThinking>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_config: Option<AnthOutputConfig>,
    /// `context_management`, `container`, `service_tier`, `mcp_servers`, ...
    #[serde(flatten)]
    pub extra: JsonMap,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AnthMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AnthMessage {
    /// `user`, `assistant`, or `system` (mid-conversation system text).
    pub role: String,
    pub content: AnthContent,
}

/// A string, or a list of content blocks.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum AnthContent {
    Text(String),
    Blocks(Vec<AnthBlock>),
}
text_or_list!(
    AnthContent,
    Text,
    Blocks,
    "a string or an array of content blocks"
);

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AnthBlock {
    Text {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
        /// A reply's sources (`web_search_result_location`, `char_location`, ...).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        citations: Option<Vec<Value>>,
    },
    Image {
        source: AnthSource,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    Document {
        source: AnthSource,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    ToolResult {
        tool_use_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<AnthContent>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is_error: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    Thinking {
        thinking: String,
        #[serde(default)]
        signature: String,
    },
    RedactedThinking {
        data: String,
    },
    /// System instructions placed mid-conversation.
    MidConvSystem {
        content: AnthContent,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    #[serde(untagged)]
    Other(Value),
}

/// The `type`s of the modelled [`AnthBlock`] variants (must match the enum above); a
/// malformed block of one of these types falls back to `Other` and is refused by the decoder.
pub const MODELLED_BLOCK_TYPES: &[&str] = &[
    "text",
    "image",
    "document",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    "mid_conv_system",
];

/// The `type`s of the modelled [`AnthSource`] variants (must match the enum below).
pub const MODELLED_SOURCE_TYPES: &[&str] = &["base64", "url", "text", "file"];

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AnthSource {
    Base64 {
        media_type: String,
        data: String,
    },
    Url {
        url: String,
    },
    /// A plain-text document.
    Text {
        media_type: String,
        data: String,
    },
    File {
        file_id: String,
    },
    #[serde(untagged)]
    Other(Value),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum AnthTool {
    /// A client tool (`type` absent or `custom`), the kind Claude Code sends.
    Custom(AnthCustomTool),
    /// A server tool (`web_search_2025...`, `bash_...`): only Anthropic runs these.
    Server(Value),
}

#[derive(Debug, Clone, Serialize)]
pub struct AnthCustomTool {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub input_schema: Value,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    /// `defer_loading`, `eager_input_streaming`, `input_examples`, ...
    #[serde(flatten)]
    pub extra: JsonMap,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AnthToolChoice {
    /// `auto`, `any`, `tool` or `none`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_parallel_tool_use: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AnthThinking {
    /// `enabled`, `disabled` or `adaptive`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_tokens: Option<u64>,
    /// `summarized` or `omitted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AnthOutputConfig {
    /// `low`, `medium`, `high`, `xhigh` or `max`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Value>,
}

deserialize_with_extra!(AnthRequest {
    model: req,
    messages: req,
    max_tokens: def,
    system: def,
    metadata: def,
    stop_sequences: def,
    stream: def,
    temperature: def,
    top_p: def,
    top_k: def,
    tools: def,
    tool_choice: def,
    thinking: def,
    output_config: def,
});
deserialize_with_extra!(AnthCustomTool {
    name: req, description: def, input_schema: req, kind as "type": def, cache_control: def,
    strict: def,
});

// === reply side (upstream: what the Anthropic provider sends back) ===

/// A non-streamed reply (`Message` in the spec). Fields other than the ones named here
/// (`stop_details`, `container`, ...) are kept in `extra`.
#[derive(Debug, Clone)]
pub struct AnthResponse {
    pub id: String,
    /// Always `message`.
    pub kind: String,
    /// Always `assistant`.
    pub role: String,
    pub model: String,
    /// Blocks of types the codec does not model are `AnthBlock::Other`.
    pub content: Vec<AnthBlock>,
    pub stop_reason: Option<String>,
    pub stop_sequence: Option<String>,
    pub usage: AnthUsage,
    pub extra: JsonMap,
}

deserialize_with_extra!(AnthResponse {
    id: req,
    kind as "type": def,
    role: def,
    model: def,
    content: def,
    stop_reason: def,
    stop_sequence: def,
    usage: def,
});

/// `Usage` (replies, `message_start`) and `MessageDeltaUsage` (`message_delta`), where every
/// count may be absent or null. Anthropic's `input_tokens` excludes cache reads and writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct AnthUsage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens_details: Option<AnthOutputTokensDetails>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct AnthOutputTokensDetails {
    /// Reasoning tokens, included in `output_tokens`.
    #[serde(default)]
    pub thinking_tokens: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AnthErrorDetail {
    /// `overloaded_error`, `rate_limit_error`, `invalid_request_error`, ...
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub message: String,
}

/// One stream event's `data`, read in a single pass and borrowing its strings where they have
/// no escapes: every event type's fields side by side, each optional (the `type` says which
/// are set). Unknown event types and fields are ignored, as Anthropic asks of clients.
#[derive(Debug, Default, Deserialize)]
pub struct AnthStreamEventIn<'a> {
    #[serde(rename = "type", default, borrow)]
    pub kind: Option<std::borrow::Cow<'a, str>>,
    /// `content_block_*`: the block's position in the message.
    #[serde(default)]
    pub index: Option<u32>,
    /// `message_start`.
    #[serde(default)]
    pub message: Option<AnthStreamMessageIn>,
    /// `content_block_start`.
    #[serde(default, borrow)]
    pub content_block: Option<AnthBlockStartIn<'a>>,
    /// `content_block_delta` (a text, thinking, signature or JSON fragment) and
    /// `message_delta` (the stop reason).
    #[serde(default, borrow)]
    pub delta: Option<AnthDeltaIn<'a>>,
    /// `message_delta`.
    #[serde(default)]
    pub usage: Option<AnthUsage>,
    /// `error`.
    #[serde(default)]
    pub error: Option<AnthErrorDetail>,
}

/// The message shell in `message_start` (its `content` is always empty).
#[derive(Debug, Default, Deserialize)]
pub struct AnthStreamMessageIn {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub usage: Option<AnthUsage>,
}

/// The opening state of a content block in `content_block_start`.
#[derive(Debug, Default, Deserialize)]
pub struct AnthBlockStartIn<'a> {
    /// `text`, `thinking`, `redacted_thinking`, `tool_use`, `server_tool_use`, ...
    #[serde(rename = "type", default, borrow)]
    pub kind: std::borrow::Cow<'a, str>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub input: Option<Value>,
    #[serde(default, borrow)]
    pub text: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    pub thinking: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    pub signature: Option<String>,
    /// A `redacted_thinking` block's data (given whole in its start).
    #[serde(default)]
    pub data: Option<String>,
}

/// A `content_block_delta`'s or `message_delta`'s `delta`.
#[derive(Debug, Default, Deserialize)]
pub struct AnthDeltaIn<'a> {
    /// `text_delta`, `thinking_delta`, `signature_delta`, `input_json_delta`,
    /// `citations_delta`; absent in `message_delta`.
    #[serde(rename = "type", default, borrow)]
    pub kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    pub text: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    pub thinking: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    pub signature: Option<String>,
    #[serde(default, borrow)]
    pub partial_json: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub stop_sequence: Option<String>,
    /// A `citations_delta`'s citation.
    #[serde(default)]
    pub citation: Option<Value>,
}
