//! Google's Gemini API (`generateContent`, `streamGenerateContent`, `countTokens`), the
//! ingress schema of Gemini CLI and the `google-genai` SDKs.
//!
//! - `wire`: the request's wire types (`GenerateContentRequest`, `CountTokensRequest`), read
//!   in one pass with the tolerance Gemini clients have always had here.
//! - `request`: a `GenerateContentRequest` (and the model and method from the path) -> the
//!   canonical request.
//! - `response`: a canonical reply -> `GenerateContentResponse`; Gemini's error body.
//! - `stream`: canonical stream events -> `GenerateContentResponse` chunks, as SSE
//!   (`alt=sse`) or as the streamed JSON array Gemini sends without it.
//! - `upstream`: the `gemini` provider's half: canonical requests encoded for Gemini, its
//!   replies and stream chunks decoded.

mod request;
mod response;
mod schema;
mod stream;
pub mod upstream;
pub mod wire;

pub use request::{Decoded, count_tokens_request, decode_request, normalize_schema};
pub use response::{encode_response, error_body, finish_reason};
pub use stream::GeminiEncoder;

#[cfg(test)]
mod tests;
