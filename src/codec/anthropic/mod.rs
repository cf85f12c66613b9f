//! Anthropic Messages, both ways: the ingress schema of `/v1/messages` (`request`,
//! `response`, `stream`: a client's request decoded, replies and streams encoded) and the
//! upstream schema of the `anthropic` provider (`upstream*`: canonical requests encoded,
//! the provider's replies and streams decoded).

mod request;
mod response;
mod stream;
mod upstream;
mod upstream_params;
mod upstream_reply;
mod upstream_stream;
pub mod wire;

pub use request::{decode_count_request, decode_request};
pub use response::{encode_response, error_body};
pub use stream::MessageEncoder;
pub use upstream::encode_request;
pub use upstream_params::{
    ANTHROPIC_EXTRA_FIELDS, DEFAULT_MAX_TOKENS, MIN_THINKING_BUDGET, thinking_budget,
};
pub use upstream_reply::{decode_response, decode_usage, error_status, finish_reason};
pub use upstream_stream::MessageDecoder;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod upstream_stream_tests;
#[cfg(test)]
mod upstream_tests;
