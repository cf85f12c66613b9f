//! A local OTLP/HTTP trace receiver (`POST /v1/traces`, protobuf), as an OpenTelemetry
//! collector answers: 200 with an `ExportTraceServiceResponse`. It keeps every span it got
//! with its resource and the export's headers, and can be told to answer 503 first.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

#[derive(Default)]
struct Inner {
    exports: Mutex<Vec<(HeaderMap, ExportTraceServiceRequest)>>,
    /// Answer 503 to this many exports first.
    refuse: AtomicUsize,
    posts: AtomicUsize,
}

pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

async fn traces(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Vec<u8>) {
    inner.posts.fetch_add(1, Ordering::SeqCst);
    if inner
        .refuse
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return (StatusCode::SERVICE_UNAVAILABLE, Vec::new());
    }
    let Ok(req) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, Vec::new());
    };
    inner.exports.lock().unwrap().push((headers, req));
    (
        StatusCode::OK,
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Inner::default());
        let app = Router::new()
            .route("/v1/traces", post(traces))
            .with_state(Arc::clone(&inner));
        super::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, inner }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}/v1/traces", self.addr)
    }

    pub fn refuse_next(&self, n: usize) {
        self.inner.refuse.store(n, Ordering::SeqCst);
    }

    pub fn posts(&self) -> usize {
        self.inner.posts.load(Ordering::SeqCst)
    }

    /// Every span received, in order.
    pub fn spans(&self) -> Vec<Span> {
        self.inner
            .exports
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, r)| r.resource_spans.iter())
            .flat_map(|rs| rs.scope_spans.iter())
            .flat_map(|ss| ss.spans.iter().cloned())
            .collect()
    }

    /// The headers and resource attributes of every export.
    pub fn exports(&self) -> Vec<(HeaderMap, Vec<KeyValue>)> {
        self.inner
            .exports
            .lock()
            .unwrap()
            .iter()
            .map(|(h, r)| {
                (
                    h.clone(),
                    r.resource_spans
                        .iter()
                        .flat_map(|rs| rs.resource.iter().flat_map(|r| r.attributes.clone()))
                        .collect(),
                )
            })
            .collect()
    }
}

/// A span's attribute as JSON-ish text (strings bare, numbers and booleans as written).
pub fn attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    let v = attrs
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?;
    Some(match v {
        any_value::Value::StringValue(s) => s.clone(),
        any_value::Value::IntValue(i) => i.to_string(),
        any_value::Value::DoubleValue(d) => d.to_string(),
        any_value::Value::BoolValue(b) => b.to_string(),
        other => format!("{other:?}"),
    })
}
