//! The canonical (non-streamed) chat response.

use serde_json::Value;

use super::{JsonMap, Message, Usage};

#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    pub id: String,
    /// The model that served, as the provider named it.
    pub model: String,
    /// Unix seconds.
    pub created: u64,
    pub choices: Vec<Choice>,
    pub usage: Option<Usage>,
    pub system_fingerprint: Option<String>,
    pub extra: JsonMap,
}

impl ChatResponse {
    /// The first choice's text and tool calls as one text (tool calls as `name(arguments)`),
    /// for comparing a mirror's output with the primary's.
    pub fn output_text(&self) -> String {
        let mut out = String::new();
        for part in self
            .choices
            .first()
            .map_or(&[][..], |c| &c.message.parts[..])
        {
            match part {
                crate::schema::Part::Text(t) => out.push_str(&t.text),
                crate::schema::Part::ToolCall(c) => {
                    out.push_str(&format!("{}({})", c.name, c.arguments));
                }
                _ => {}
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub index: u32,
    /// The assistant message: text, reasoning and tool-call parts in order.
    pub message: Message,
    pub finish_reason: Option<FinishReason>,
    pub logprobs: Option<Value>,
}

/// Why generation stopped, in terms every schema can express.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    /// A stop sequence matched (Anthropic says which).
    StopSequence(Option<String>),
    Length,
    ToolCalls,
    ContentFilter,
    Refusal,
    /// The provider paused a long turn (Anthropic `pause_turn`).
    PauseTurn,
    ContextWindowExceeded,
    /// The provider reported an error as a finish reason (Mistral `error`).
    Error,
    Other(String),
}

impl FinishReason {
    /// OpenAI Chat Completions' vocabulary.
    pub fn as_openai(&self) -> &str {
        match self {
            FinishReason::Stop
            | FinishReason::StopSequence(_)
            | FinishReason::PauseTurn
            | FinishReason::Error => "stop",
            FinishReason::Length | FinishReason::ContextWindowExceeded => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter | FinishReason::Refusal => "content_filter",
            FinishReason::Other(s) => s,
        }
    }

    pub fn from_openai(s: &str) -> Self {
        match s {
            "stop" => FinishReason::Stop,
            "length" | "model_length" => FinishReason::Length,
            "tool_calls" | "function_call" => FinishReason::ToolCalls,
            "content_filter" => FinishReason::ContentFilter,
            "error" => FinishReason::Error,
            other => FinishReason::Other(other.to_owned()),
        }
    }
}
