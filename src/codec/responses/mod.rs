//! OpenAI Responses API (`POST /v1/responses`), the ingress schema of Codex CLI.
//!
//! - `wire`: the request as sent (top-level fields typed; input items and tools kept as JSON
//!   and read one by one, since their kinds are many and grow).
//! - `request`: input items (the ones `previous_response_id` reaches, then the request's
//!   own) and the request's options -> a canonical request.
//! - `output`: the output items of a reply, built from a canonical reply or from a stream's
//!   events, and the response object around them, shared by `response` and `stream`.
//! - `stream`: canonical stream events -> the Responses event stream.
//! - `upstream`: a request passed through to OpenAI's own Responses API: its reply's usage,
//!   and its event stream relayed with usage and finish read alongside.
//!
//! State (`store`, `previous_response_id`) is the gateway's own, whatever provider serves:
//! see `pipeline::client::responses`.

mod output;
mod request;
mod stream;
pub mod upstream;
pub mod wire;

pub use output::{Echo, Head, Output, Status, response_id};
pub use request::{Decoded, Tooling, decode, normalize_input};
pub use stream::{OnDone, ResponsesEncoder};

#[cfg(test)]
mod tests;
