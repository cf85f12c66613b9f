//! OpenAI Chat Completions: `POST /v1/chat/completions` (also under `/openai`).

use bytes::{Bytes, BytesMut};
use http::request::Parts;

use super::{ClientSchema, Decoded, to_json};
use crate::codec::openai_chat::{self, ChunkEncoder};
use crate::error::GatewayError;
use crate::pipeline::RequestCtx;
use crate::pipeline::relay::StreamEncoder;
use crate::schema::{ChatRequest, ChatResponse, StreamEvent, WireSchema};
use crate::state::AppState;

pub struct OpenAiChat;

impl ClientSchema for OpenAiChat {
    const SCHEMA: WireSchema = WireSchema::OpenAiChat;
    const FORWARDED: &'static [&'static str] = &[];
    type Encoder = ChunkEncoder;
    type Turn = ();

    async fn decode(
        _: &AppState,
        _: &mut RequestCtx,
        _: &Parts,
        body: &Bytes,
    ) -> Result<Decoded<()>, GatewayError> {
        let chat = openai_chat::decode_request(crate::pipeline::parse_json(body)?)?;
        Ok(Decoded::plain(chat))
    }

    async fn reply(_: &AppState, _: (), r: &ChatResponse) -> Result<Bytes, GatewayError> {
        Ok(to_json(&openai_chat::encode_response(r)))
    }

    fn encoder(_: &AppState, _: (), req: &ChatRequest, _: &Parts) -> ChunkEncoder {
        ChunkEncoder::new(req.stream_usage)
    }

    fn error_body(e: &GatewayError) -> Bytes {
        to_json(&openai_chat::error_body(e))
    }
}

impl StreamEncoder for ChunkEncoder {
    const SCHEMA: WireSchema = WireSchema::OpenAiChat;
    fn event(&mut self, ev: &StreamEvent, out: &mut BytesMut) {
        self.encode(ev, out);
    }
    fn finish(&mut self, out: &mut BytesMut) {
        ChunkEncoder::finish(self, out);
    }
    fn finish_raw(&mut self, out: &mut BytesMut) {
        out.extend_from_slice(b"data: [DONE]\n\n");
    }
    fn error(&mut self, err: &GatewayError, out: &mut BytesMut) {
        ChunkEncoder::error(self, err, out);
    }
}
