//! Reading a request's body and writing its reply: the JSON body read within the size
//! limit and parsed in the client's schema (so malformed JSON, a missing field or an
//! oversized body come back as that schema's error, never as plain text), and the
//! `x-gatehouse-*` headers every reply carries.

use axum::body::Body;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::RequestCtx;
use crate::error::{ErrorKind, GatewayError};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-gatehouse-request-id");
pub const PROVIDER: HeaderName = HeaderName::from_static("x-gatehouse-provider");
pub const MODEL: HeaderName = HeaderName::from_static("x-gatehouse-model");
pub const WARNINGS: HeaderName = HeaderName::from_static("x-gatehouse-warnings");

/// Read a body of at most `limit` bytes (then [`parse_json`]). An oversized body is refused from its
/// `Content-Length` before it is read, or as soon as the bytes read pass the limit; either
/// way the rest is drained by the body's lingering close (`intake`), so the client reads
/// the 413. A body that does not arrive in time is 408, one that does not fit the gateway's
/// body budget 503 (`intake`). The bytes are copied at most once: a body that arrives in one
/// piece is not copied, a longer one is gathered into a buffer of its declared size.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: u64) -> Result<Bytes, GatewayError> {
    let too_large = || {
        GatewayError::new(
            ErrorKind::PayloadTooLarge,
            format!("request body is larger than the limit of {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = body;
    let mut first: Option<Bytes> = None;
    let mut buf = BytesMut::new();
    let mut total: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| match super::intake::IntakeError::find(&e) {
            Some(i) => i.to_gateway(),
            None => GatewayError::invalid("could not read the request body"),
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total += data.len() as u64;
        if total > limit {
            return Err(too_large());
        }
        match first.take() {
            None if buf.is_empty() => first = Some(data),
            None => buf.extend_from_slice(&data),
            Some(f) => {
                let size = declared.unwrap_or(0).max(total);
                buf.reserve(usize::try_from(size).unwrap_or(usize::MAX));
                buf.extend_from_slice(&f);
                buf.extend_from_slice(&data);
            }
        }
    }
    Ok(first.unwrap_or_else(|| buf.freeze()))
}

/// Parse JSON, naming the field at fault (`messages[0].content: invalid type ...`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, GatewayError> {
    if bytes.is_empty() {
        return Err(GatewayError::invalid(
            "request body is empty: expected a JSON object",
        ));
    }
    // The fast path parses plainly; only a body that fails is parsed again with path tracking,
    // to name the field at fault. UTF-8 is checked once for the whole body, not string by
    // string as `from_slice` does.
    if let Ok(text) = std::str::from_utf8(bytes)
        && let Ok(v) = serde_json::from_str(text)
    {
        return Ok(v);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return GatewayError::invalid(format!("malformed JSON in request body: {inner}"));
        }
        let msg = strip_position(&inner.to_string());
        let param = if path == "." {
            msg.split('`').nth(1).map(str::to_owned)
        } else {
            Some(path.clone())
        };
        let text = if path == "." {
            msg
        } else {
            format!("invalid value at `{path}`: {msg}")
        };
        let mut err = GatewayError::invalid(text);
        err.param = param;
        err
    })
}

/// serde_json appends " at line 1 column 42", which means nothing to the caller.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// A JSON reply with `Content-Length` (sent in one write: STYLE §4.18).
pub fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    json_bytes_response(status, Bytes::from(body))
}

/// A request's whole reply (200) of JSON already encoded, with the request's headers; kept
/// for its record when that keeps bodies.
pub fn whole(ctx: &RequestCtx, body: Bytes) -> Response {
    if let Some(c) = ctx.settle.capture() {
        c.reply(&body);
    }
    let mut r = json_bytes_response(StatusCode::OK, body);
    add_ctx_headers(&mut r, ctx);
    r
}

/// A reply of JSON already encoded.
pub fn json_bytes_response(status: StatusCode, body: Bytes) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The `x-gatehouse-*` headers for a request.
pub fn add_ctx_headers(resp: &mut Response, ctx: &RequestCtx) {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::try_from(ctx.id.as_str()) {
        h.insert(REQUEST_ID, v);
    }
    if let Some((provider, model)) = &ctx.served {
        if let Ok(v) = HeaderValue::try_from(provider.as_str()) {
            h.insert(PROVIDER, v);
        }
        if let Ok(v) = HeaderValue::from_str(model).or_else(|_| header_safe(model).try_into()) {
            h.insert(MODEL, v);
        }
    }
    if !ctx.warnings.is_empty()
        && let Ok(v) = HeaderValue::try_from(header_safe(&ctx.warnings.header_value()))
    {
        h.insert(WARNINGS, v);
    }
    for (name, value) in &ctx.rate_headers {
        if let Ok(v) = HeaderValue::try_from(value.as_str()) {
            h.insert(HeaderName::from_static(name), v);
        }
    }
}

/// Header values must be visible ASCII (`HeaderValue::from_str` also lets through bytes we
/// do not want to echo): anything else becomes `?`.
pub fn header_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// An error reply: `body` is the client schema's error object; the status, `Retry-After`
/// (when there is one) and the `x-gatehouse-*` headers come from the error.
pub fn error_response(e: &GatewayError, body: Bytes, ctx: &RequestCtx) -> Response {
    let mut resp = json_bytes_response(e.status(), body);
    if let Some(secs) = e.retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    add_ctx_headers(&mut resp, ctx);
    resp
}

/// An error in OpenAI's format.
pub fn openai_error(e: &GatewayError, ctx: &RequestCtx) -> Response {
    use super::client::ClientSchema;
    error_response(e, super::client::OpenAiChat::error_body(e), ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_name_the_field() {
        #[derive(serde::Deserialize, Debug)]
        struct T {
            #[expect(dead_code, reason = "only the error matters")]
            a: Vec<u32>,
        }
        let e = parse_json::<T>(br#"{"a":[1,"x"]}"#).unwrap_err();
        assert!(e.message.contains("`a[1]`"), "{}", e.message);
        assert_eq!(e.param.as_deref(), Some("a[1]"));
        let e = parse_json::<T>(br#"{"b":1}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("a"), "{}", e.message);
        let e = parse_json::<T>(br#"{"a":"#).unwrap_err();
        assert!(e.message.starts_with("malformed JSON"), "{}", e.message);
    }
}
