//! Input-token estimates for providers that cannot count a request themselves
//! (`POST /v1/messages/count_tokens` on OpenAI, Mistral and OpenAI-compatible providers).
//!
//! Text is counted with a real BPE tokenizer, OpenAI's `o200k_base` (GPT-4o and later),
//! loaded on first use so that a gateway that never counts never holds its tables. Other
//! vendors' tokenizers differ by roughly ±15 % on English and code, so the figure is an
//! estimate and the reply says so in `x-gatehouse-warnings`. What is not text is priced by
//! fixed, documented rules:
//! - every message costs [`PER_MESSAGE`] tokens of framing, the request [`PER_REQUEST`];
//! - a tool costs its name, description and JSON Schema as text, plus [`PER_TOOL`];
//! - a tool call its name and arguments, a tool result its content;
//! - an image [`PER_IMAGE`] (Anthropic's figure for a ~1.15 megapixel image), a document
//!   [`PER_DOCUMENT`], audio [`PER_AUDIO`]; inline data is never tokenized as text.

use std::sync::OnceLock;

use tiktoken_rs::CoreBPE;

use crate::schema::{ChatRequest, Part};

pub const PER_REQUEST: u64 = 3;
pub const PER_MESSAGE: u64 = 4;
pub const PER_TOOL: u64 = 8;
pub const PER_IMAGE: u64 = 1_600;
pub const PER_DOCUMENT: u64 = 3_000;
pub const PER_AUDIO: u64 = 1_000;
/// The tokenizer's name, for the reply's warning.
pub const TOKENIZER: &str = "o200k_base";

fn bpe() -> Option<&'static CoreBPE> {
    static BPE: OnceLock<Option<CoreBPE>> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::o200k_base().ok()).as_ref()
}

/// Tokens in `text`; `None` if the tokenizer could not be loaded (it is built in, so only a
/// corrupt binary gets there).
pub fn count_text(text: &str) -> Option<u64> {
    Some(bpe()?.encode_ordinary(text).len() as u64)
}

/// How many texts may wait for the counting thread; a text that finds the queue full is
/// estimated from its size instead (see [`count_text_queued`]).
const COUNT_QUEUE: usize = 256;

type CountJob = (String, tokio::sync::oneshot::Sender<Option<u64>>);

/// Count `text` on the gateway's one counting thread, or `None` at once when the tokenizer
/// is missing or that thread is behind (its queue of [`COUNT_QUEUE`] full). Settlements
/// count what a stream delivered this way: one thread, however many streams end, so a
/// flood of streams without usage cannot grow threads or memory, nor take more than one
/// core from the requests; under such a flood the caller falls back to an estimate.
pub async fn count_text_queued(text: String) -> Option<u64> {
    static QUEUE: OnceLock<Option<std::sync::mpsc::SyncSender<CountJob>>> = OnceLock::new();
    let tx = QUEUE
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<CountJob>(COUNT_QUEUE);
            std::thread::Builder::new()
                .name("gatehouse-tokens".into())
                .spawn(move || {
                    while let Ok((text, reply)) = rx.recv() {
                        let _ = reply.send(count_text(&text));
                    }
                })
                .ok()
                .map(|_| tx)
        })
        .as_ref()?;
    let (reply, answer) = tokio::sync::oneshot::channel();
    tx.try_send((text, reply)).ok()?;
    answer.await.ok().flatten()
}

/// The estimated input tokens of a request. CPU-bound (about a millisecond per 10 KB of
/// text): call it off the async runtime.
pub fn estimate(req: &ChatRequest) -> Option<u64> {
    let bpe = bpe()?;
    Some(estimate_with(req, &|s: &str| {
        bpe.encode_ordinary(s).len() as u64
    }))
}

/// [`estimate`] run on the blocking pool, for the token-count endpoints.
pub async fn estimate_off_runtime(req: ChatRequest) -> Result<u64, crate::error::GatewayError> {
    tokio::task::spawn_blocking(move || estimate(&req))
        .await
        .ok()
        .flatten()
        .ok_or_else(|| crate::error::GatewayError::internal("the tokenizer could not be loaded"))
}

/// A cheap upper estimate of a request's input tokens for budget and rate-limit
/// reservations, taken on the request path: a token per three bytes of text (real text runs
/// about four bytes per token in English and code), with the same fixed costs as
/// [`estimate`]. Overestimating only holds a little more budget until the request settles.
pub fn quick_estimate(req: &ChatRequest) -> u64 {
    estimate_with(req, &|s: &str| s.len().div_ceil(3) as u64)
}

fn estimate_with(req: &ChatRequest, text: &dyn Fn(&str) -> u64) -> u64 {
    let mut total = PER_REQUEST;
    for m in &req.messages {
        total += PER_MESSAGE + parts(&m.parts, text);
    }
    for t in &req.tools {
        total += PER_TOOL + text(&t.name) + t.description.as_deref().map_or(0, text);
        total += text(&t.parameters.to_string());
    }
    total
}

fn parts(list: &[Part], text: &dyn Fn(&str) -> u64) -> u64 {
    list.iter()
        .map(|p| match p {
            Part::Text(t) => text(&t.text),
            Part::Image(_) => PER_IMAGE,
            Part::File(_) => PER_DOCUMENT,
            Part::Audio { .. } => PER_AUDIO,
            Part::ToolCall(c) => text(&c.name) + text(&c.arguments),
            Part::ToolResult(r) => parts(&r.content, text),
            Part::Reasoning { text: t, .. } => text(t),
            // Encrypted reasoning is counted by its size: base64 of roughly one token per
            // four bytes of plain text.
            Part::RedactedReasoning { data } => data.len() as u64 / 4,
            Part::Opaque { value, .. } => text(&value.to_string()),
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Message, Role, Tool};

    #[test]
    fn known_strings_count_as_the_tokenizer_says() {
        // Reference values of o200k_base (OpenAI's tokenizer playground / tiktoken).
        assert_eq!(count_text("hello world"), Some(2));
        assert_eq!(count_text(""), Some(0));
        assert!(count_text(&"word ".repeat(1000)).unwrap() >= 1000);
    }

    #[test]
    fn an_estimate_adds_framing_tools_and_fixed_costs() {
        let mut req = ChatRequest {
            messages: vec![Message::text(Role::User, "hello world")],
            ..ChatRequest::default()
        };
        assert_eq!(estimate(&req), Some(PER_REQUEST + PER_MESSAGE + 2));
        req.tools.push(Tool {
            name: "get_weather".to_owned(),
            description: None,
            parameters: serde_json::json!({"type": "object"}),
            strict: None,
            cache_control: None,
        });
        let with_tool = estimate(&req).unwrap();
        assert!(
            with_tool > PER_REQUEST + PER_MESSAGE + 2 + PER_TOOL,
            "{with_tool}"
        );
    }
}
