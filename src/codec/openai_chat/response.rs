//! Chat Completions response <-> canonical response, and usage.

use serde_json::Value;

use super::request::{MessageParts, message_parts};
use super::wire::*;
use crate::schema::*;

pub fn decode_usage(u: &OaiUsage) -> Usage {
    Usage {
        input_tokens: u.prompt_tokens,
        output_tokens: u.completion_tokens,
        cache_read_tokens: u
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0),
        cache_write_tokens: u
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cache_creation_tokens)
            .unwrap_or(0),
        reasoning_tokens: u
            .completion_tokens_details
            .as_ref()
            .and_then(|d| d.reasoning_tokens)
            .unwrap_or(0),
    }
}

pub fn encode_usage(u: &Usage) -> OaiUsage {
    OaiUsage {
        prompt_tokens: u.input_tokens,
        completion_tokens: u.output_tokens,
        total_tokens: u.total(),
        prompt_tokens_details: Some(OaiPromptDetails {
            cached_tokens: Some(u.cache_read_tokens),
            cache_creation_tokens: (u.cache_write_tokens > 0).then_some(u.cache_write_tokens),
        }),
        completion_tokens_details: Some(OaiCompletionDetails {
            reasoning_tokens: Some(u.reasoning_tokens),
        }),
    }
}

/// Decode a provider's Chat Completions reply.
pub fn decode_response(w: OaiChatResponse) -> ChatResponse {
    ChatResponse {
        id: w.id,
        model: w.model,
        created: w.created,
        choices: w
            .choices
            .into_iter()
            .map(|c| {
                let MessageParts {
                    mut parts,
                    mut extra,
                    ..
                } = message_parts(c.message, true);
                if let Some(Value::Array(annotations)) = extra.remove("annotations") {
                    attach_annotations(&annotations, &mut parts);
                }
                Choice {
                    index: c.index,
                    message: Message {
                        role: Role::Assistant,
                        parts,
                        name: None,
                        extra,
                    },
                    finish_reason: c.finish_reason.as_deref().map(FinishReason::from_openai),
                    logprobs: c.logprobs,
                }
            })
            .collect(),
        usage: w.usage.as_ref().map(decode_usage),
        system_fingerprint: w.system_fingerprint,
        extra: w.extra,
    }
}

/// Encode the canonical reply for a Chat Completions client. Reasoning text is returned as
/// `reasoning_content`, the field DeepSeek, vLLM and most OpenAI-compatible clients read.
pub fn encode_response(r: &ChatResponse) -> OaiChatResponse {
    OaiChatResponse {
        id: r.id.clone(),
        object: "chat.completion".to_owned(),
        created: r.created,
        model: r.model.clone(),
        choices: r
            .choices
            .iter()
            .map(|c| {
                let mut text = String::new();
                let mut reasoning = String::new();
                let mut tool_calls = Vec::new();
                let mut signed = CallSignature::default();
                let mut annotations = Vec::new();
                for p in &c.message.parts {
                    signed.see(p);
                    match p {
                        Part::Text(t) => {
                            url_citations(t, text.chars().count(), &mut annotations);
                            text.push_str(&t.text);
                        }
                        Part::Reasoning { text: r, .. } => reasoning.push_str(r),
                        Part::ToolCall(tc) => tool_calls.push(OaiToolCall {
                            id: signed.id(&tc.id),
                            kind: "function".to_owned(),
                            function: OaiFunctionCall {
                                name: tc.name.clone(),
                                arguments: Value::String(tc.arguments.clone()),
                            },
                        }),
                        _ => {}
                    }
                }
                let refusal = c
                    .message
                    .extra
                    .get("refusal")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let mut extra = JsonMap::new();
                if !annotations.is_empty() {
                    extra.insert("annotations".to_owned(), Value::Array(annotations));
                }
                OaiChoice {
                    index: c.index,
                    message: OaiMessage {
                        role: "assistant".to_owned(),
                        // OpenAI sends `content: null` when the reply is only tool calls.
                        content: (!text.is_empty() || tool_calls.is_empty())
                            .then_some(OaiContent::Text(text)),
                        tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                        refusal,
                        reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
                        extra,
                        ..OaiMessage::default()
                    },
                    finish_reason: Some(
                        c.finish_reason
                            .as_ref()
                            .map_or("stop", FinishReason::as_openai)
                            .to_owned(),
                    ),
                    logprobs: c.logprobs.clone(),
                }
            })
            .collect(),
        usage: r.usage.as_ref().map(encode_usage),
        system_fingerprint: r.system_fingerprint.clone(),
        extra: r.extra.clone(),
    }
}

/// The signature a tool call's id carries for a Chat Completions client
/// ([`crate::codec::signed_id`]): that of a reasoning part which is only a signature (Gemini's
/// call signature, Anthropic's thinking with its display omitted) and comes right before the
/// call, text aside from it undoing it. Reasoning with text cannot come back through Chat
/// Completions whole, so its signature is not carried.
#[derive(Debug, Default)]
pub(super) struct CallSignature {
    /// The signature the next call carries.
    signature: Option<String>,
    /// A stream is inside reasoning that has text (its signature is not carried).
    reasoning_text: bool,
}

impl CallSignature {
    /// Note a part of the reply, in order.
    pub fn see(&mut self, p: &Part) {
        match p {
            Part::Reasoning { text, signature } => {
                self.signature = signature.clone().filter(|_| text.is_empty());
            }
            Part::Text(_) => self.signature = None,
            _ => {}
        }
    }

    /// Note a streamed delta, in order.
    pub fn see_delta(&mut self, d: &Delta) {
        match d {
            Delta::Reasoning(t) if !t.is_empty() => {
                self.reasoning_text = true;
                self.signature = None;
            }
            Delta::ReasoningSignature(s) => {
                self.signature = (!self.reasoning_text).then(|| s.clone());
                self.reasoning_text = false;
            }
            Delta::Text(_) | Delta::Refusal(_) => {
                self.signature = None;
                self.reasoning_text = false;
            }
            _ => {}
        }
    }

    /// The id the client sees for call `id`: signed with the pending signature, if any.
    pub fn id(&mut self, id: &str) -> String {
        match self.signature.take() {
            Some(sig) => crate::codec::signed_id::sign(id, &sig),
            None => id.to_owned(),
        }
    }
}

/// OpenAI's `url_citation` annotations of a text part that starts `offset` characters into
/// the message's content: a range of it, or all of it for a citation of the whole part.
/// Other kinds of citation have no form here (noted by `codec::note_unsent`).
pub(crate) fn url_citations(t: &TextPart, offset: usize, out: &mut Vec<Value>) {
    let len = t.text.chars().count();
    for c in t.citations.iter().filter(|c| c.is_web()) {
        let (start, end) = c.range.unwrap_or((0, len));
        out.push(serde_json::json!({"type": "url_citation", "url_citation": {
            "url": c.url, "title": c.title.clone().unwrap_or_default(),
            "start_index": offset + start, "end_index": offset + end}}));
    }
}

/// A reply's `url_citation` annotations as the citations of its text: the content is one
/// text part, so the ranges stay as they are.
fn attach_annotations(annotations: &[Value], parts: &mut [Part]) {
    let Some(Part::Text(t)) = parts.iter_mut().find(|p| matches!(p, Part::Text(_))) else {
        return;
    };
    for a in annotations {
        let Some(u) = a.get("url_citation") else {
            continue;
        };
        let index = |k: &str| {
            u.get(k)
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
        };
        let text = |k: &str| u.get(k).and_then(Value::as_str).map(str::to_owned);
        t.citations.push(Citation {
            kind: "url_citation".to_owned(),
            url: text("url"),
            title: text("title"),
            cited_text: None,
            range: index("start_index").zip(index("end_index")),
        });
    }
}
