//! Gemini's decoders: a client's `generateContent` / `countTokens` body, and a Gemini
//! provider's reply and SSE stream.

use crate::codec::gemini::{self, wire};
use crate::config::ProviderKind;
use crate::providers::StreamMode;
use crate::schema::WireSchema;

/// A Gemini `models/{model}:generateContent` body from a client (Gemini CLI, `google-genai`),
/// decoded as the handler does, streamed and not, then encoded for every upstream; and the
/// same bytes as a `countTokens` body.
pub fn gemini_request(data: &[u8]) {
    if let Ok(w) = crate::pipeline::reply::parse_json::<wire::GeminiRequest>(data)
        && let Ok(d) = gemini::decode_request(w, "gemini-2.5-pro", true)
    {
        super::translate(d.chat, WireSchema::Gemini, data);
    }
    if let Ok(w) = crate::pipeline::reply::parse_json::<wire::GeminiCountTokensRequest>(data)
        && let Ok(r) = gemini::count_tokens_request(w)
    {
        let _ = gemini::decode_request(r, "gemini-2.5-flash", false);
    }
}

/// A non-streamed `GenerateContentResponse` from a Gemini provider: decoded, its usage read
/// as a passthrough would, and encoded for every client schema.
pub fn gemini_reply(data: &[u8]) {
    let Some(a) = super::adapter(ProviderKind::Gemini) else {
        return;
    };
    let _ = a.reply_usage(data);
    if let Ok(r) = a.parse_chat(data) {
        super::encode_reply(&r);
    }
    let _ = a.parse_error(400, data, None);
}

/// A Gemini provider's `streamGenerateContent?alt=sse` stream, by the adapter's decoder as a
/// translated stream and as the passthrough to a Gemini client (raw, with its text read).
pub fn gemini_stream(data: &[u8]) {
    super::stream(data, || {
        let Some(a) = super::adapter(ProviderKind::Gemini) else {
            return Vec::new();
        };
        vec![
            a.stream_decoder(StreamMode::default()),
            a.stream_decoder(StreamMode {
                passthrough: true,
                client_usage: false,
                text: true,
                schema: Some(WireSchema::Gemini),
            }),
        ]
    });
}
