//! The canonical chat request.

use serde_json::Value;

use super::JsonMap;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatRequest {
    /// The model name as the client asked for it (routing rewrites the copy sent upstream).
    pub model: String,
    pub messages: Vec<Message>,
    pub sampling: Sampling,
    /// Upper bound on generated tokens, reasoning included (OpenAI `max_completion_tokens`,
    /// `max_tokens`; Anthropic `max_tokens`; Gemini `maxOutputTokens`).
    pub max_output_tokens: Option<u64>,
    pub stop: Vec<String>,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    pub parallel_tool_calls: Option<bool>,
    pub reasoning: Option<Reasoning>,
    pub response_format: Option<ResponseFormat>,
    pub stream: bool,
    /// The client wants usage reported in the stream (OpenAI `stream_options.include_usage`).
    /// The gateway always asks the provider for usage; this only decides what the client sees.
    pub stream_usage: bool,
    /// End-user id for attribution (OpenAI `user`, Anthropic `metadata.user_id`).
    pub user: Option<String>,
    pub metadata: Option<JsonMap>,
    /// Top-level fields the ingress schema carried that this model does not name.
    pub extra: JsonMap,
    /// The client's body as received, for a provider that speaks the client's schema and so
    /// is sent the request intact (SPEC §3). `None` for requests the gateway built itself.
    pub raw: Option<RawBody>,
}

/// A client's request body in its own schema, kept as bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct RawBody {
    pub schema: WireSchema,
    pub bytes: bytes::Bytes,
    /// The client's headers that belong to the schema (Anthropic's `anthropic-version` and
    /// `anthropic-beta`), forwarded with a passthrough.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

/// Sampling parameters; `None` means "provider default".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sampling {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u64>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    pub seed: Option<i64>,
    /// Number of choices to generate.
    pub n: Option<u32>,
    pub logprobs: Option<bool>,
    pub top_logprobs: Option<u32>,
    pub logit_bias: Option<JsonMap>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    /// OpenAI's `developer` role: system-level instructions from the application.
    Developer,
    User,
    Assistant,
    /// A message carrying tool results only.
    Tool,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::Developer => "developer",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    /// Ordered content: text, media, tool calls (assistant), tool results (tool/user), reasoning.
    pub parts: Vec<Part>,
    /// Participant name (OpenAI `name`).
    pub name: Option<String>,
    /// Fields of the message the model does not name (for same-schema passthrough).
    pub extra: JsonMap,
}

impl Message {
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Self {
            role,
            parts: vec![Part::text(text)],
            name: None,
            extra: JsonMap::new(),
        }
    }

    /// All text parts joined, for schemas whose content is a single string.
    pub fn joined_text(&self) -> String {
        let mut out = String::new();
        for p in &self.parts {
            if let Part::Text(t) = p {
                out.push_str(&t.text);
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(TextPart),
    Image(ImagePart),
    Audio {
        data: String,
        format: String,
    },
    /// A document or file (PDF and the like), by URL, inline data or provider file id.
    File(FilePart),
    ToolCall(ToolCall),
    ToolResult(ToolResult),
    /// Model reasoning; `signature` lets providers that sign reasoning verify it on replay.
    Reasoning {
        text: String,
        signature: Option<String>,
    },
    /// Reasoning the provider returned encrypted or redacted; replayed verbatim.
    RedactedReasoning {
        data: String,
    },
    /// A part of a type the model does not name, kept whole: a provider speaking the same
    /// schema receives it unchanged, others drop it with a warning.
    Opaque {
        schema: WireSchema,
        value: Value,
    },
}

/// A client schema, for parts carried opaquely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireSchema {
    OpenAiChat,
    AnthropicMessages,
    OpenAiResponses,
    Gemini,
}

impl WireSchema {
    /// How the request log names the schema.
    pub fn name(self) -> &'static str {
        match self {
            WireSchema::OpenAiChat => "chat",
            WireSchema::AnthropicMessages => "messages",
            WireSchema::OpenAiResponses => "responses",
            WireSchema::Gemini => "gemini",
        }
    }
}

impl Part {
    pub fn text(text: impl Into<String>) -> Self {
        Part::Text(TextPart {
            text: text.into(),
            cache_control: None,
            citations: Vec::new(),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TextPart {
    pub text: String,
    /// Prompt-caching marker (Anthropic `cache_control`), kept for providers that honour it.
    pub cache_control: Option<Value>,
    /// The sources a reply's text cites (Anthropic `citations`, OpenAI `url_citation`
    /// annotations).
    pub citations: Vec<Citation>,
}

/// A source a reply's text cites. Web sources (a URL) translate between schemas: Anthropic's
/// `web_search_result_location`, OpenAI's `url_citation`. Others (a passage of a document the
/// request carried: Anthropic's `char_location`, `page_location`, ...) have no form outside
/// their own schema, and are dropped there with a warning naming their kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Citation {
    /// The provider's name for the kind of citation (`web_search_result_location`,
    /// `url_citation`, `char_location`, ...).
    pub kind: String,
    pub url: Option<String>,
    pub title: Option<String>,
    /// The passage of the source the text rests on (Anthropic's `cited_text`).
    pub cited_text: Option<String>,
    /// The characters of the part's text that cite it, as `start..end` in Unicode scalar
    /// values (OpenAI's `start_index` and `end_index`); `None`: the whole part (Anthropic
    /// cites per text block).
    pub range: Option<(usize, usize)>,
}

impl Citation {
    /// A web source, in either schema's terms.
    pub fn is_web(&self) -> bool {
        self.url.is_some()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImagePart {
    pub source: MediaSource,
    /// OpenAI `detail`: `low`, `high` or `auto`.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MediaSource {
    Url(String),
    Base64 { media_type: String, data: String },
}

impl MediaSource {
    /// A `data:` URL for Base64 sources, the URL itself otherwise.
    pub fn to_url(&self) -> String {
        match self {
            MediaSource::Url(u) => u.clone(),
            MediaSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        }
    }

    /// Parse a URL, recognising `data:<type>;base64,<data>`.
    pub fn from_url(url: &str) -> Self {
        if let Some(rest) = url.strip_prefix("data:")
            && let Some((media_type, data)) = rest.split_once(";base64,")
        {
            return MediaSource::Base64 {
                media_type: media_type.to_owned(),
                data: data.to_owned(),
            };
        }
        MediaSource::Url(url.to_owned())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FilePart {
    pub source: FileSource,
    pub filename: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FileSource {
    Media(MediaSource),
    /// A provider-side file id (OpenAI `file_id`).
    FileId(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as a JSON text, exactly as the model produced them.
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    pub call_id: String,
    pub content: Vec<Part>,
    pub is_error: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments, as the client sent it (adapters clean it per target).
    pub parameters: Value,
    pub strict: Option<bool>,
    pub cache_control: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ToolChoice {
    Auto,
    None,
    /// The model must call some tool (OpenAI `required`, Anthropic `any`, Mistral `any`).
    Required,
    Tool(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReasoningEffort {
    None,
    Minimal,
    Low,
    Medium,
    High,
    XHigh,
    Max,
}

impl ReasoningEffort {
    pub const ALL: [ReasoningEffort; 7] = [
        ReasoningEffort::None,
        ReasoningEffort::Minimal,
        ReasoningEffort::Low,
        ReasoningEffort::Medium,
        ReasoningEffort::High,
        ReasoningEffort::XHigh,
        ReasoningEffort::Max,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReasoningEffort::None => "none",
            ReasoningEffort::Minimal => "minimal",
            ReasoningEffort::Low => "low",
            ReasoningEffort::Medium => "medium",
            ReasoningEffort::High => "high",
            ReasoningEffort::XHigh => "xhigh",
            ReasoningEffort::Max => "max",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reasoning {
    pub effort: Option<ReasoningEffort>,
    /// A token budget for thinking (Anthropic `budget_tokens`, Gemini `thinkingBudget`).
    pub budget_tokens: Option<u64>,
    /// Whether reasoning text should be returned to the client, where the provider can choose.
    pub include_thoughts: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema {
        name: String,
        description: Option<String>,
        schema: Value,
        strict: Option<bool>,
    },
}
