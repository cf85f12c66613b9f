//! The canonical stream: what a provider's event stream decodes into, and what each client
//! schema's stream encoder consumes. Events are small and ordered; an encoder keeps whatever
//! state its schema needs (open content blocks, indexes).

use super::{FinishReason, Usage};

#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The stream's identity, sent once before any content.
    Start {
        id: String,
        model: String,
        created: u64,
    },
    Delta {
        choice: u32,
        delta: Delta,
    },
    Finish {
        choice: u32,
        reason: FinishReason,
    },
    /// Usage so far; later reports are merged with [`Usage::merge`].
    Usage(Usage),
    /// One upstream event, already in the client's schema, to relay byte for byte (a
    /// same-schema passthrough, SPEC §3). A decoder that emits it also emits the event's
    /// meaning (usage, finish) as ordinary events, for accounting; once a stream carries raw
    /// events the relay writes only those.
    Raw(bytes::Bytes),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Delta {
    Text(String),
    Refusal(String),
    Reasoning(String),
    /// The signature that closes a reasoning block.
    ReasoningSignature(String),
    /// A whole block of reasoning the provider returned redacted (Anthropic's
    /// `redacted_thinking` `data`, Bedrock's `redactedContent`), replayed verbatim.
    RedactedReasoning(String),
    /// A web source the last `chars` characters of the text cite (Anthropic cites per text
    /// block, so it is known when the block ends).
    Citation {
        citation: super::Citation,
        chars: usize,
    },
    /// A block the canonical stream has no form for (a server tool's call or result, a
    /// citation), by its type: no encoder writes it; the client's warnings name it.
    Unrepresented(String),
    /// A tool call begins: `index` is its position among this choice's tool calls.
    ToolCallStart {
        index: u32,
        id: String,
        name: String,
    },
    /// A fragment of a tool call's JSON arguments.
    ToolCallArgs {
        index: u32,
        fragment: String,
    },
}
