//! OpenAI Chat Completions: the ingress schema of `/v1/chat/completions` and the upstream
//! schema of the `openai`, `openai-compatible` and `mistral` providers.

pub mod passthrough;
mod request;
mod response;
mod stream;
pub mod wire;

pub use request::{decode_request, encode_request};
pub use response::{decode_response, decode_usage, encode_response, encode_usage};
pub use stream::{ChunkDecoder, ChunkEncoder, Decoded, encode_all};

use crate::error::{ErrorKind, GatewayError};
use wire::{OaiError, OaiErrorBody};

/// The error body a Chat Completions client expects (SPEC §4).
pub fn error_body(e: &GatewayError) -> OaiErrorBody {
    let kind = match e.kind {
        ErrorKind::Unauthorized => "authentication_error",
        ErrorKind::Forbidden => "permission_error",
        ErrorKind::RateLimited | ErrorKind::BudgetExhausted => "rate_limit_error",
        ErrorKind::UpstreamFailed
        | ErrorKind::UpstreamUnavailable
        | ErrorKind::UpstreamTimeout
        | ErrorKind::Unavailable
        | ErrorKind::BudgetUnavailable
        | ErrorKind::LoopDetected => "api_error",
        ErrorKind::Internal => "server_error",
        _ => "invalid_request_error",
    };
    OaiErrorBody {
        error: OaiError {
            message: e.message.clone(),
            kind: kind.to_owned(),
            param: e.param.clone(),
            code: Some(e.label().to_owned()),
        },
    }
}

/// Pull a human message out of an OpenAI-style error body (`{"error":{"message"}}`,
/// `{"message"}`, Mistral's `{"detail":[{"msg","loc"}]}`, or `{"error":"text"}`).
pub fn upstream_error_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    if let Some(m) = v.pointer("/error/message").and_then(|m| m.as_str()) {
        return Some(m.to_owned());
    }
    if let Some(m) = v.get("error").and_then(|m| m.as_str()) {
        return Some(m.to_owned());
    }
    if let Some(m) = v.get("message").and_then(|m| m.as_str()) {
        return Some(m.to_owned());
    }
    if let Some(details) = v.get("detail").and_then(|d| d.as_array()) {
        let parts: Vec<String> = details
            .iter()
            .map(|d| {
                let msg = d.get("msg").and_then(|m| m.as_str()).unwrap_or("invalid");
                let loc = d
                    .get("loc")
                    .and_then(|l| l.as_array())
                    .map(|l| {
                        l.iter()
                            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                            .collect::<Vec<_>>()
                            .join(".")
                    })
                    .unwrap_or_default();
                format!("{loc}: {msg}")
            })
            .collect();
        return Some(parts.join("; "));
    }
    if let Some(d) = v.get("detail").and_then(|d| d.as_str()) {
        return Some(d.to_owned());
    }
    None
}

#[cfg(test)]
mod tests;
