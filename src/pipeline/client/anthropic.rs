//! Anthropic Messages: `POST /v1/messages` (also under `/anthropic`).

use bytes::{Bytes, BytesMut};
use http::request::Parts;

use super::{ClientSchema, Decoded, to_json};
use crate::codec::anthropic::{self, MessageEncoder};
use crate::error::GatewayError;
use crate::pipeline::RequestCtx;
use crate::pipeline::relay::StreamEncoder;
use crate::schema::{ChatRequest, ChatResponse, StreamEvent, WireSchema};
use crate::state::AppState;

pub struct AnthropicMessages;

impl ClientSchema for AnthropicMessages {
    const SCHEMA: WireSchema = WireSchema::AnthropicMessages;
    const FORWARDED: &'static [&'static str] = &["anthropic-version", "anthropic-beta"];
    type Encoder = MessageEncoder;
    type Turn = ();

    async fn decode(
        _: &AppState,
        _: &mut RequestCtx,
        _: &Parts,
        body: &Bytes,
    ) -> Result<Decoded<()>, GatewayError> {
        let chat = anthropic::decode_request(crate::pipeline::parse_json(body)?)?;
        Ok(Decoded::plain(chat))
    }

    async fn reply(_: &AppState, _: (), r: &ChatResponse) -> Result<Bytes, GatewayError> {
        Ok(to_json(&anthropic::encode_response(r)))
    }

    fn encoder(_: &AppState, _: (), _: &ChatRequest, _: &Parts) -> MessageEncoder {
        MessageEncoder::new()
    }

    fn error_body(e: &GatewayError) -> Bytes {
        to_json(&anthropic::error_body(e))
    }
}

impl StreamEncoder for MessageEncoder {
    const SCHEMA: WireSchema = WireSchema::AnthropicMessages;
    fn event(&mut self, ev: &StreamEvent, out: &mut BytesMut) {
        self.encode(ev, out);
    }
    fn finish(&mut self, out: &mut BytesMut) {
        MessageEncoder::finish(self, out);
    }
    fn finish_raw(&mut self, out: &mut BytesMut) {
        out.extend_from_slice(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    }
    fn error(&mut self, err: &GatewayError, out: &mut BytesMut) {
        MessageEncoder::error(self, err, out);
    }
}
