//! OpenTelemetry traces of requests over OTLP/HTTP (protobuf), off unless `[traces]` names an
//! endpoint.
//!
//! Each traced request is one span (kind SERVER, named `{operation} {model asked for}`) with
//! a child per attempt (kind CLIENT, `{operation} {model}`), described with the GenAI
//! semantic conventions: `gen_ai.operation.name`, `gen_ai.provider.name`,
//! `gen_ai.request.model`, `gen_ai.response.model`, `gen_ai.usage.*`,
//! `gen_ai.response.time_to_first_chunk`, `error.type`, `server.address`/`server.port`; plus
//! `gatehouse.*` attributes for what only a gateway knows (key, team, route, fallback,
//! cost). A client's W3C `traceparent` makes the request's span its child, and its sampled
//! flag decides whether the request is traced; without one, `[traces] sample` decides. Each
//! attempt sends its provider a `traceparent` naming the attempt's span, so a provider's
//! own traces join the request's.
//!
//! Nothing is recorded on the request path: the ids are chosen at admission (the attempt
//! spans' derived from the request span's), and the spans are built at settlement from the
//! request's record, then exported in batches by [`export::Exporter`].

pub mod export;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span, Status, span, status};

use crate::config::{ProviderConfig, ProviderKind};
use crate::store::UsageRecord;

/// One attempt of a request, as its usage record keeps it and its trace shows it (a span per
/// attempt sent). The settlement (`governance`) writes it and passes it here.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AttemptNote {
    pub provider: String,
    pub model: String,
    /// Index of the provider key used.
    pub key: Option<usize>,
    /// `ok`, `skipped`, or the error's code.
    pub outcome: &'static str,
    /// The provider's HTTP status, when it answered with an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub error: Option<String>,
    pub latency_ms: u64,
    /// Its place among the attempts sent (from 1; 0 when skipped), which names its span.
    #[serde(skip)]
    pub index: u32,
    /// When it started, after the request did, and how long it took.
    #[serde(skip)]
    pub started: std::time::Duration,
    #[serde(skip)]
    pub latency: std::time::Duration,
    /// The provider's config, for the trace's provider attributes.
    #[serde(skip)]
    pub config: Option<std::sync::Arc<ProviderConfig>>,
}

/// The ids of one traced request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceIds {
    pub trace: u128,
    /// The request's span.
    pub span: u64,
    /// The client's span, from its `traceparent`.
    pub parent: Option<u64>,
}

impl TraceIds {
    /// The ids of a request to trace, or `None`: a client's `traceparent` continues its trace
    /// when sampled and stops tracing when not; without one, a share `sample` of requests
    /// start a trace of their own.
    pub fn start(headers: &HeaderMap, sample: f64) -> Option<Self> {
        let span = nonzero(crate::random_u64());
        let parent = headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_traceparent);
        match parent {
            Some(p) => p.sampled.then_some(Self {
                trace: p.trace,
                span,
                parent: Some(p.span),
            }),
            None => {
                let draw = (crate::random_u64() >> 11) as f64 / (1u64 << 53) as f64;
                (draw < sample).then(|| Self {
                    trace: (u128::from(crate::random_u64()) << 64
                        | u128::from(crate::random_u64()))
                    .max(1),
                    span,
                    parent: None,
                })
            }
        }
    }

    /// The span of the request's `n`th attempt (from 1): derived from the request's, so the
    /// attempt loop and the settlement agree on it without passing it around.
    pub fn attempt_span(&self, n: u32) -> u64 {
        let mut z = self.span ^ u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        nonzero(z ^ (z >> 31))
    }

    /// The `traceparent` header naming `span` of this trace, sampled.
    pub fn traceparent(&self, span: u64) -> HeaderValue {
        let text = format!("00-{:032x}-{span:016x}-01", self.trace);
        HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

fn nonzero(v: u64) -> u64 {
    v.max(1)
}

/// A W3C `traceparent`: `version-trace-parent-flags`, lowercase hex.
struct Parent {
    trace: u128,
    span: u64,
    sampled: bool,
}

fn parse_traceparent(v: &str) -> Option<Parent> {
    let mut parts = v.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    // Version 00 has exactly four fields; later versions may append more.
    if !hex(version, 2) || version == "ff" || (version == "00" && parts.next().is_some()) {
        return None;
    }
    if !hex(trace, 32) || !hex(span, 16) || !hex(flags, 2) {
        return None;
    }
    let trace = u128::from_str_radix(trace, 16).ok().filter(|t| *t != 0)?;
    let span = u64::from_str_radix(span, 16).ok().filter(|s| *s != 0)?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(Parent {
        trace,
        span,
        sampled: flags & 1 == 1,
    })
}

/// `gen_ai.provider.name` of a provider: the well-known value of its kind, or, for an
/// OpenAI-compatible server (llama-server, vLLM...), the provider's own name.
fn provider_name(p: &ProviderConfig) -> String {
    match p.kind {
        ProviderKind::OpenAi => "openai",
        ProviderKind::Anthropic => "anthropic",
        ProviderKind::Mistral => "mistral_ai",
        ProviderKind::Gemini => "gcp.gemini",
        ProviderKind::Bedrock => "aws.bedrock",
        ProviderKind::AzureOpenAi => "azure.ai.openai",
        ProviderKind::OpenAiCompatible => return p.name.clone(),
    }
    .to_owned()
}

/// `gen_ai.operation.name` of a client schema.
fn operation(schema: &str) -> &'static str {
    match schema {
        "embeddings" => "embeddings",
        "gemini" => "generate_content",
        _ => "chat",
    }
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn text(key: &str, v: impl Into<String>) -> KeyValue {
    kv(key, any_value::Value::StringValue(v.into()))
}

fn int(key: &str, v: u64) -> KeyValue {
    kv(
        key,
        any_value::Value::IntValue(i64::try_from(v).unwrap_or(i64::MAX)),
    )
}

fn status_error(message: &str) -> Option<Status> {
    Some(Status {
        message: message.to_owned(),
        code: status::StatusCode::Error as i32,
    })
}

/// The spans of one request: its own, then one per attempt. `start` and `end` are when it
/// was admitted and when it ended.
pub fn request_spans(
    ids: &TraceIds,
    r: &UsageRecord,
    attempts: &[AttemptNote],
    start: SystemTime,
    end: SystemTime,
) -> Vec<Span> {
    let op = operation(r.client_schema);
    let trace_id = ids.trace.to_be_bytes().to_vec();
    let mut attrs = vec![
        text("gen_ai.operation.name", op),
        text("gen_ai.request.model", r.requested_model.as_str()),
        text("gatehouse.request_id", r.request_id.as_str()),
        text("gatehouse.client_schema", r.client_schema),
        text("gatehouse.status", r.status),
        int("http.response.status_code", u64::from(r.http_status)),
    ];
    let served = attempts
        .iter()
        .rev()
        .find(|a| a.outcome == "ok")
        .and_then(|a| a.config.as_deref());
    if let Some(p) = served {
        attrs.push(text("gen_ai.provider.name", provider_name(p)));
    }
    if let Some(m) = &r.model {
        attrs.push(text("gen_ai.response.model", m.as_str()));
    }
    let usage = usage_attributes(r);
    attrs.extend(usage.iter().cloned());
    if let Some(ms) = r.ttft_ms {
        attrs.push(kv(
            "gen_ai.response.time_to_first_chunk",
            any_value::Value::DoubleValue(ms as f64 / 1000.0),
        ));
    }
    for (key, value) in [
        ("gatehouse.key", &r.key_name),
        ("gatehouse.team", &r.team),
        ("gatehouse.project", &r.project),
        ("gatehouse.route", &r.route),
        ("gatehouse.provider", &r.provider),
    ] {
        if let Some(v) = value {
            attrs.push(text(key, v.as_str()));
        }
    }
    attrs.push(kv(
        "gatehouse.fallback",
        any_value::Value::BoolValue(r.fallback),
    ));
    attrs.push(kv(
        "gatehouse.cost_usd",
        any_value::Value::DoubleValue(r.cost_nanos as f64 / crate::config::NANOS_PER_USD),
    ));
    if let Some(class) = r.error_class {
        attrs.push(text("error.type", class));
    }
    let mut out = vec![Span {
        trace_id: trace_id.clone(),
        span_id: ids.span.to_be_bytes().to_vec(),
        parent_span_id: ids
            .parent
            .map(|p| p.to_be_bytes().to_vec())
            .unwrap_or_default(),
        flags: 0x1 | ids.parent.map_or(0, |_| 0x300),
        name: format!("{op} {}", r.requested_model),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: unix_nanos(start),
        end_time_unix_nano: unix_nanos(end),
        attributes: attrs,
        status: if r.status == "error" {
            status_error(r.error.as_deref().unwrap_or("failed"))
        } else {
            None
        },
        ..Default::default()
    }];
    for a in attempts.iter().filter(|a| a.index > 0) {
        let a_start = start + a.started;
        let mut attrs = vec![
            text("gen_ai.operation.name", op),
            text("gen_ai.request.model", a.model.as_str()),
            text("gatehouse.provider", a.provider.as_str()),
        ];
        if let Some(p) = a.config.as_deref() {
            attrs.push(text("gen_ai.provider.name", provider_name(p)));
            if let Ok(uri) = p.base_url.parse::<http::Uri>()
                && let Some(host) = uri.host()
            {
                attrs.push(text("server.address", host));
                let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
                    Some("http") => 80,
                    _ => 443,
                });
                attrs.push(int("server.port", u64::from(port)));
            }
        }
        if a.outcome == "ok" {
            if let Some(m) = &r.model {
                attrs.push(text("gen_ai.response.model", m.as_str()));
            }
            attrs.extend(usage.iter().cloned());
        } else {
            attrs.push(text("error.type", a.outcome));
        }
        out.push(Span {
            trace_id: trace_id.clone(),
            span_id: ids.attempt_span(a.index).to_be_bytes().to_vec(),
            parent_span_id: ids.span.to_be_bytes().to_vec(),
            flags: 0x1 | 0x100,
            name: format!("{op} {}", a.model),
            kind: span::SpanKind::Client as i32,
            start_time_unix_nano: unix_nanos(a_start),
            end_time_unix_nano: unix_nanos(a_start + a.latency.max(Duration::from_nanos(1))),
            attributes: attrs,
            status: a.error.as_deref().and_then(status_error),
            ..Default::default()
        });
    }
    redact(&mut out, &crate::config::live_redactor());
    out
}

/// Take every secret out of the spans' text (names, string attributes, status messages):
/// what a client named its model, or an error's words, leave the process only redacted.
fn redact(spans: &mut [Span], r: &crate::config::Redactor) {
    for s in spans {
        s.name = r.redact(&s.name);
        for a in &mut s.attributes {
            if let Some(AnyValue {
                value: Some(any_value::Value::StringValue(v)),
            }) = &mut a.value
            {
                *v = r.redact(v);
            }
        }
        if let Some(st) = &mut s.status {
            st.message = r.redact(&st.message);
        }
    }
}

/// The usage of a request as GenAI attributes (input tokens count cached ones, as the
/// conventions ask).
fn usage_attributes(r: &UsageRecord) -> Vec<KeyValue> {
    let mut out = vec![
        int(
            "gen_ai.usage.input_tokens",
            r.input_tokens + r.cache_read_tokens + r.cache_write_tokens,
        ),
        int("gen_ai.usage.output_tokens", r.output_tokens),
    ];
    for (key, n) in [
        ("gen_ai.usage.cache_read.input_tokens", r.cache_read_tokens),
        (
            "gen_ai.usage.cache_creation.input_tokens",
            r.cache_write_tokens,
        ),
        ("gen_ai.usage.reasoning.output_tokens", r.reasoning_tokens),
    ] {
        if n > 0 {
            out.push(int(key, n));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(tp: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("traceparent", HeaderValue::try_from(tp).unwrap());
        h
    }

    #[test]
    fn a_clients_traceparent_decides() {
        let ids = TraceIds::start(
            &headers("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            0.0,
        )
        .unwrap();
        assert_eq!(ids.trace, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(ids.parent, Some(0x00f067aa0ba902b7));
        assert_ne!(ids.span, 0);
        // Not sampled by the client: not traced, whatever the local share.
        assert!(
            TraceIds::start(
                &headers("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
                1.0
            )
            .is_none()
        );
        // Malformed or zero ids are ignored: the request starts its own trace.
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "garbage",
        ] {
            let ids = TraceIds::start(&headers(bad), 1.0).unwrap();
            assert_eq!(ids.parent, None, "{bad}");
            assert_ne!(ids.trace, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        }
        // A later version may carry more fields.
        let ids = TraceIds::start(
            &headers("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more"),
            0.0,
        );
        assert!(ids.is_some());
    }

    #[test]
    fn the_local_share_is_sampled() {
        let h = HeaderMap::new();
        assert!(TraceIds::start(&h, 0.0).is_none());
        assert!(TraceIds::start(&h, 1.0).is_some());
        let traced = (0..10_000)
            .filter(|_| TraceIds::start(&h, 0.25).is_some())
            .count();
        assert!((2_200..2_800).contains(&traced), "{traced}");
    }

    #[test]
    fn attempt_spans_are_distinct_and_named_upstream() {
        let ids = TraceIds {
            trace: 0xabc,
            span: 42,
            parent: None,
        };
        let spans: std::collections::HashSet<u64> = (1..=5).map(|n| ids.attempt_span(n)).collect();
        assert_eq!(spans.len(), 5);
        assert!(!spans.contains(&42));
        assert_eq!(
            ids.traceparent(0x1f).to_str().unwrap(),
            "00-00000000000000000000000000000abc-000000000000001f-01"
        );
    }
}
