//! The canonical model: the hub of hub-and-spoke translation (STYLE §3.3).
//!
//! Every client schema (Chat Completions now; Responses, Anthropic Messages and Gemini next)
//! decodes into these types, and every provider adapter encodes from them, so N schemas and
//! M providers need N + M codecs rather than N × M. The model is a superset: messages are
//! role + ordered parts (text, images, audio, documents, tool calls, tool results, reasoning
//! with signatures), so Anthropic's interleaved blocks and OpenAI's separate `tool_calls`
//! both fit without loss. Fields a schema carries that the model does not name travel in an
//! `extra` map (the escape hatch), which same-family providers may forward and others drop
//! with a warning.
//!
//! No I/O, no HTTP, no provider names here.

mod embeddings;
mod request;
mod response;
mod stream;
mod usage;

pub use embeddings::*;
pub use request::*;
pub use response::*;
pub use stream::*;
pub use usage::*;

/// A JSON object, as used for escape-hatch fields.
pub type JsonMap = serde_json::Map<String, serde_json::Value>;
