//! Anthropic Messages: the ingress schema of `/v1/messages` (and, with issue #2, the
//! upstream schema of the `anthropic` provider). Request decoding lands first; replies,
//! streams and the provider side follow.

mod request;
mod response;
mod stream;
pub mod wire;

pub use request::decode_request;
pub use response::{encode_response, error_body};
pub use stream::MessageEncoder;

#[cfg(test)]
mod tests;
