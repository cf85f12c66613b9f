//! Gemini `models/{model}:generateContent` and `:streamGenerateContent` (under `/v1beta`,
//! `/gemini/v1beta` and `/gemini/v1`). Credentials come as `x-goog-api-key` or `?key=`
//! (never logged).

use axum::body::Body;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use http::request::Parts;
use http::{HeaderValue, header};

use super::{ClientSchema, Decoded, sse_response, to_json};
use crate::codec::gemini::{self, GeminiEncoder};
use crate::error::GatewayError;
use crate::pipeline::RequestCtx;
use crate::pipeline::relay::{KEEPALIVE_COMMENT, StreamEncoder};
use crate::schema::{ChatRequest, ChatResponse, StreamEvent, WireSchema};
use crate::state::AppState;

pub struct Gemini;

impl ClientSchema for Gemini {
    const SCHEMA: WireSchema = WireSchema::Gemini;
    const FORWARDED: &'static [&'static str] = &[];
    type Encoder = GeminiEncoder;
    type Turn = ();

    async fn decode(
        _: &AppState,
        ctx: &mut RequestCtx,
        head: &Parts,
        body: &Bytes,
    ) -> Result<Decoded<()>, GatewayError> {
        let (model, method) = target(head.uri.path());
        let w: gemini::wire::GeminiRequest = crate::pipeline::parse_json(body)?;
        let d = gemini::decode_request(w, model, method == "streamGenerateContent")?;
        for n in &d.warnings {
            ctx.ingress_warnings.push(n.as_str());
        }
        Ok(Decoded::plain(d.chat))
    }

    async fn reply(_: &AppState, _: (), r: &ChatResponse) -> Result<Bytes, GatewayError> {
        Ok(to_json(&gemini::encode_response(r)))
    }

    fn encoder(_: &AppState, _: (), req: &ChatRequest, head: &Parts) -> GeminiEncoder {
        GeminiEncoder::new(sse(head), &req.model)
    }

    fn stream_response(body: Body, head: &Parts) -> Response {
        if sse(head) {
            return sse_response(body);
        }
        let mut r = Response::new(body);
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    }

    fn error_body(e: &GatewayError) -> Bytes {
        to_json(&gemini::error_body(e))
    }
}

/// The model and method of a Gemini path (`.../models/{model}:{method}`).
pub fn target(path: &str) -> (&str, &str) {
    let last = path.rsplit('/').next().unwrap_or("");
    last.rsplit_once(':').unwrap_or((last, ""))
}

/// `alt=sse`: the stream as server-sent events rather than a JSON array.
fn sse(head: &Parts) -> bool {
    head.uri
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "alt=sse"))
}

impl StreamEncoder for GeminiEncoder {
    const SCHEMA: WireSchema = WireSchema::Gemini;
    fn event(&mut self, ev: &StreamEvent, out: &mut BytesMut) {
        self.encode(ev, out);
    }
    fn finish(&mut self, out: &mut BytesMut) {
        GeminiEncoder::finish(self, out);
    }
    fn finish_raw(&mut self, out: &mut BytesMut) {
        GeminiEncoder::finish_raw(self, out);
    }
    fn error(&mut self, err: &GatewayError, out: &mut BytesMut) {
        GeminiEncoder::error(self, err, out);
    }
    /// A JSON array may hold whitespace between its elements.
    fn keepalive(&self) -> &'static [u8] {
        if self.is_sse() {
            KEEPALIVE_COMMENT
        } else {
            b"\r\n"
        }
    }
}

/// A Gemini `models/{model}:{method}` request, by its method: a chat request (streamed or
/// not), a token count, or 404.
pub fn dispatch(
    state: AppState,
    req: axum::extract::Request,
) -> futures_util::future::BoxFuture<'static, Response> {
    match target(req.uri().path()).1 {
        "generateContent" | "streamGenerateContent" => {
            Box::pin(crate::pipeline::serve::<Gemini>(state, req))
        }
        "countTokens" => Box::pin(crate::pipeline::count::gemini(state, req)),
        other => {
            let e = GatewayError::new(
                crate::error::ErrorKind::NotFound,
                format!(
                    "method `{other}` is not served: use generateContent, streamGenerateContent or countTokens"
                ),
            );
            let r = crate::pipeline::reply::error_response(
                &e,
                Gemini::error_body(&e),
                &RequestCtx::new(),
            );
            Box::pin(std::future::ready(r))
        }
    }
}
