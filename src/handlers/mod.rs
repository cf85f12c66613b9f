//! HTTP handlers: thin functions that extract, call the pipeline and encode (STYLE §4.5).
//!
//! Helpers here read a JSON body in the client's schema (so malformed JSON, a missing field
//! or an oversized body come back as that schema's error, never as plain text), and attach
//! the `x-gatehouse-*` headers to every reply.

pub mod chat;
pub mod count_tokens;
pub mod embeddings;
pub mod gemini;
pub mod health;
pub mod models;
pub mod responses;
pub mod usage;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ErrorKind, GatewayError};
use crate::pipeline::RequestCtx;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-gatehouse-request-id");
pub const PROVIDER: HeaderName = HeaderName::from_static("x-gatehouse-provider");
pub const MODEL: HeaderName = HeaderName::from_static("x-gatehouse-model");
pub const WARNINGS: HeaderName = HeaderName::from_static("x-gatehouse-warnings");

/// Read and parse a JSON body of at most `limit` bytes (see [`read_body`]).
pub async fn read_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    limit: u64,
) -> Result<T, GatewayError> {
    parse_json(&read_body(headers, body, limit).await?)
}

/// Read a body of at most `limit` bytes. An oversized body is refused from its
/// `Content-Length` before it is read, or as soon as the bytes read pass the limit.
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
    let bytes = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX))
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                GatewayError::invalid("could not read the request body")
            }
        })?
        .to_bytes();
    Ok(bytes)
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

/// A request's whole JSON reply (200), kept for its record when that keeps bodies.
pub fn reply_json<T: Serialize>(ctx: &RequestCtx, value: &T) -> Response {
    reply_bytes(
        ctx,
        Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
    )
}

/// A request's whole reply (200) of JSON already encoded, kept for its record when that
/// keeps bodies.
pub fn reply_bytes(ctx: &RequestCtx, body: Bytes) -> Response {
    if let Some(c) = &ctx.capture {
        c.reply(&body);
    }
    json_bytes_response(StatusCode::OK, body)
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
fn header_safe(s: &str) -> String {
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

/// An error reply in any schema: `body` is that schema's error object; the status,
/// `Retry-After` (when there is one) and the `x-gatehouse-*` headers come from the error.
pub fn error_response<T: Serialize>(e: &GatewayError, body: &T, ctx: &RequestCtx) -> Response {
    let mut resp = json_response(e.status(), body);
    if let Some(secs) = e.retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    add_ctx_headers(&mut resp, ctx);
    resp
}

/// An error in OpenAI's format.
pub fn openai_error(e: &GatewayError, ctx: &RequestCtx) -> Response {
    error_response(e, &crate::codec::openai_chat::error_body(e), ctx)
}

/// What needs only the request head, before the body is read: the loop guard (508 for a
/// request that already passed through this gateway), then who is calling (401 otherwise).
pub async fn authenticate(
    state: &crate::state::AppState,
    live: &crate::routing::Live,
    parts: &http::request::Parts,
    ctx: &mut RequestCtx,
) -> Result<(), GatewayError> {
    if parts
        .headers
        .contains_key(&crate::routing::loopguard::HOP_HEADER)
    {
        ctx.hop = crate::routing::loopguard::check(&parts.headers)?;
    }
    ctx.principal = state
        .governance()
        .authenticate(
            &live.config,
            state.store(),
            &parts.headers,
            parts.uri.query(),
        )
        .await?;
    Ok(())
}

/// What a request asks of admission, besides its model.
pub struct Size {
    pub input_tokens: u64,
    /// Per choice.
    pub max_output: Option<u64>,
    /// Choices asked for (OpenAI `n`); 1 for schemas without them.
    pub choices: u64,
    pub has_output: bool,
    /// The end user the body names (OpenAI `user`, Anthropic `metadata.user_id`).
    pub user: Option<String>,
}

/// Most tags kept per request, and longest tag.
const MAX_TAGS: usize = 16;
const MAX_TAG_LEN: usize = 128;

/// `x-gatehouse-tags: feature=search,env=prod` as `["feature=search", "env=prod"]`.
pub fn tags(headers: &HeaderMap) -> Vec<String> {
    let Some(v) = headers
        .get("x-gatehouse-tags")
        .and_then(|v| v.to_str().ok())
    else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for t in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let t: String = t.chars().take(MAX_TAG_LEN).collect();
        if !out.contains(&t) && out.len() < MAX_TAGS {
            out.push(t);
        }
    }
    out
}

/// Budgets and rate limits (429, or 503 when budgets cannot be checked), once the model and
/// the request's size are known and before any provider is contacted. An admitted request
/// whose record may keep bodies keeps `body` (the client's request as read).
pub async fn admit(
    state: &crate::state::AppState,
    live: &crate::routing::Live,
    ctx: &mut RequestCtx,
    headers: &HeaderMap,
    model: &str,
    size: Size,
    body: &Bytes,
) -> Result<(), GatewayError> {
    let end_user: Option<String> = headers
        .get("x-gatehouse-user")
        .and_then(|v| v.to_str().ok())
        .map(|u| u.chars().take(256).collect())
        .or(size.user);
    let tags = tags(headers);
    let p = ctx.principal.as_deref();
    ctx.facts = crate::routing::Facts {
        spent: provider_budgets_spent(state, live).await,
        key: p.map(|p| p.key_name.clone()),
        team: p.and_then(|p| p.team.clone()),
        user: p.and_then(|p| p.user.clone()).or_else(|| end_user.clone()),
        tags: tags.clone(),
        input_tokens: size.input_tokens,
        headers: crate::routing::Facts::headers_of(live, headers),
    };
    // Asked by admission only when a dollar budget applies, or a budget is spent.
    let facts = &ctx.facts;
    let candidates = || {
        crate::routing::resolve_with(live, model, facts)
            .map(|r| r.candidates.into_iter().map(|c| c.model).collect())
            .unwrap_or_default()
    };
    let exhausted_route = |spent: &[crate::governance::ScopeKind]| {
        let spent: Vec<_> = spent.iter().filter_map(|k| k.budget_of()).collect();
        crate::routing::serves_exhausted(live, model, facts, &spent)
    };
    let mut adm = state
        .governance()
        .enforcer()
        .admit(
            &live.config,
            &state.governance().directory(),
            ctx.principal.clone(),
            &ctx.id,
            crate::governance::Ask {
                model,
                input_tokens: size.input_tokens,
                max_output: size.max_output,
                choices: size.choices,
                has_output: size.has_output,
                candidates: &candidates,
                tags,
                end_user,
                exhausted_route: &exhausted_route,
                schema: ctx.schema,
            },
        )
        .await
        .inspect_err(|e| {
            if matches!(
                e.kind,
                ErrorKind::RateLimited | ErrorKind::BudgetExhausted | ErrorKind::BudgetUnavailable
            ) {
                crate::metrics::refused(e.label());
            }
        })?;
    ctx.rate_headers = adm.rate_headers();
    if let Some(t) = &live.config.traces {
        ctx.trace = crate::traces::TraceIds::start(headers, t.sample);
        adm.trace(ctx.trace);
    }
    ctx.admission = Some(adm);
    ctx.capture = crate::bodies::Capture::start(
        &live.config.log,
        ctx.principal.as_ref().and_then(|p| p.log_bodies),
    );
    if let Some(c) = &ctx.capture {
        c.request(body);
    }
    Ok(())
}

/// The providers whose budget state some routing rule tests and whose budget is used up.
/// Unreadable counters count as not spent: the attempt's own reservation on that provider
/// fails closed anyway.
async fn provider_budgets_spent(
    state: &crate::state::AppState,
    live: &crate::routing::Live,
) -> Vec<crate::config::BudgetOf> {
    let mut spent = Vec::new();
    let mut tested: Vec<&str> =
        crate::config::RouteConditions::tested_provider_budgets(&live.config.routes).collect();
    tested.sort_unstable();
    tested.dedup();
    for name in tested {
        let Some(p) = live.provider(name) else {
            continue;
        };
        match state
            .governance()
            .enforcer()
            .provider_spent(&p.config)
            .await
        {
            Ok(true) => spent.push(crate::config::BudgetOf::Provider(name.to_owned())),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(provider = name, error = %e, "provider budget unreadable; routing as if not spent")
            }
        }
    }
    spent
}

/// Settle the request's admission with what served, the usage it reported, and (for a
/// mirrored request) the reply's text.
pub fn settle(
    ctx: &mut RequestCtx,
    usage: crate::schema::Usage,
    status: &'static str,
    output: impl FnOnce() -> Option<String>,
) {
    if let Some(adm) = ctx.admission.take() {
        let (provider, model) = ctx.served.clone().unzip();
        let report = crate::governance::Report {
            http_status: 200,
            // A whole reply: its first byte is now.
            ttft_ms: Some(crate::millis(ctx.started.elapsed())),
            warnings: ctx.warnings_text(),
            error: None,
        };
        adm.finish(crate::governance::Outcome {
            provider,
            model,
            usage,
            status,
            delivered: None,
            output: if ctx.mirrored { output() } else { None },
            report,
            bodies: ctx.capture.take(),
        });
    }
}

/// Settle an admitted request that failed with `e` (a request refused before admission has
/// nothing to settle): its record says why.
pub fn fail(ctx: &mut RequestCtx, e: &GatewayError) {
    if let Some(adm) = ctx.admission.take() {
        let (provider, model) = ctx.served.clone().unzip();
        let mut report = crate::governance::Report::failed(e);
        report.warnings = ctx.warnings_text();
        adm.finish(crate::governance::Outcome {
            provider,
            model,
            status: "error",
            report,
            bodies: ctx.capture.take(),
            ..Default::default()
        });
    }
}

/// May the caller use the model it asked for (403 otherwise)?
pub fn authorize_model(
    state: &crate::state::AppState,
    ctx: &RequestCtx,
    model: &str,
) -> Result<(), GatewayError> {
    crate::governance::authorize_model(
        &state.governance().directory(),
        ctx.principal.as_deref(),
        model,
    )
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
