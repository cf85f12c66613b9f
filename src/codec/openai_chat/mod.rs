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
        // OpenAI's schema lists no type for it; the name other gateways and Anthropic use.
        ErrorKind::UpstreamTimeout => "timeout_error",
        ErrorKind::UpstreamFailed
        | ErrorKind::UpstreamUnavailable
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

#[cfg(test)]
mod tests;
