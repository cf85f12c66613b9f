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
    pub max_tokens: u64,
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
    max_tokens: req,
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
