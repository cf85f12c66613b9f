//! The OTLP/HTTP exporter: settlements hand their spans to a bounded queue and go on; one
//! task posts them in batches (`ExportTraceServiceRequest`, protobuf) to `[traces]
//! endpoint`, lingering [`LINGER`] after the first so a steady trickle goes a few dozen
//! spans a post. A post that fails with a retryable answer (429, 502, 503, 504, or no
//! answer) is tried again up to [`TRIES`] times with backoff, then dropped and counted; a
//! full queue drops new spans and counts them. Nothing here ever waits on the request path,
//! and a collector that is down costs at most the queue's memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use tokio::sync::mpsc;

use crate::config::TracesConfig;

/// Requests' span groups that may wait for the collector.
const QUEUE: usize = 4_096;
/// Most spans in one post.
const BATCH_SPANS: usize = 512;
const LINGER: Duration = Duration::from_millis(200);
const TRIES: u32 = 3;
const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Exporter {
    tx: mpsc::Sender<Vec<Span>>,
    /// Span groups handed over and not yet posted (or given up).
    pending: Arc<AtomicU64>,
}

impl Exporter {
    /// Start the export task (on the current runtime).
    pub fn start(cfg: &TracesConfig) -> Self {
        let (tx, mut rx) = mpsc::channel::<Vec<Span>>(QUEUE);
        let pending = Arc::new(AtomicU64::new(0));
        let left = Arc::clone(&pending);
        let post = Post::new(cfg);
        // Not on `crate::tasks`: the exporter ends only when its queue is dropped, with the
        // state; shutdown waits on `flush` (every span handed over posted) instead.
        #[expect(
            clippy::disallowed_methods,
            reason = "lives as long as its queue; shutdown waits on its flush, not its end"
        )]
        tokio::spawn(async move {
            let mut groups = Vec::new();
            while rx.recv_many(&mut groups, 64).await > 0 {
                let deadline = tokio::time::Instant::now() + LINGER;
                while groups.iter().map(Vec::len).sum::<usize>() < BATCH_SPANS {
                    match tokio::time::timeout_at(deadline, rx.recv_many(&mut groups, 64)).await {
                        Ok(n) if n > 0 => {}
                        _ => break,
                    }
                }
                let n = groups.len() as u64;
                let spans: Vec<Span> = groups.drain(..).flatten().collect();
                post.send(spans).await;
                left.fetch_sub(n, Ordering::AcqRel);
            }
        });
        Self { tx, pending }
    }

    /// Queue one request's spans for export (dropped and counted when the queue is full).
    pub fn send(&self, spans: Vec<Span>) {
        let n = spans.len() as u64;
        self.pending.fetch_add(1, Ordering::AcqRel);
        if self.tx.try_send(spans).is_err() {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            crate::metrics::trace_spans("dropped_queue_full", n);
        }
    }

    /// Wait (until `deadline` at most) for every span handed over to be posted.
    pub async fn flush(&self, deadline: tokio::time::Instant) -> bool {
        crate::drained(&self.pending, deadline).await
    }
}

/// How one batch is posted.
struct Post {
    client: crate::providers::exec::HttpClient,
    endpoint: String,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
    resource: Resource,
}

impl Post {
    fn new(cfg: &TracesConfig) -> Self {
        let text = |k: &str, v: &str| opentelemetry_proto::tonic::common::v1::KeyValue {
            key: k.to_owned(),
            value: Some(opentelemetry_proto::tonic::common::v1::AnyValue {
                value: Some(
                    opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                        v.to_owned(),
                    ),
                ),
            }),
            ..Default::default()
        };
        Self {
            client: crate::providers::exec::client(Duration::from_secs(5), &cfg.egress),
            endpoint: cfg.endpoint.clone(),
            headers: cfg.headers.clone(),
            resource: Resource {
                attributes: vec![
                    text("service.name", &cfg.service_name),
                    text("service.version", env!("CARGO_PKG_VERSION")),
                ],
                ..Default::default()
            },
        }
    }

    async fn send(&self, spans: Vec<Span>) {
        let n = spans.len() as u64;
        let body = Bytes::from(
            ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    resource: Some(self.resource.clone()),
                    scope_spans: vec![ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: "gatehouse".to_owned(),
                            version: env!("CARGO_PKG_VERSION").to_owned(),
                            ..Default::default()
                        }),
                        spans,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            }
            .encode_to_vec(),
        );
        let mut wait = Duration::from_millis(500);
        for attempt in 1..=TRIES {
            match self.post(body.clone()).await {
                Ok(()) => {
                    crate::metrics::trace_spans("exported", n);
                    return;
                }
                Err(Failure::Final(why)) => {
                    tracing::warn!(spans = n, "trace export refused: {why}; spans dropped");
                    break;
                }
                Err(Failure::Retry(why)) if attempt == TRIES => {
                    tracing::warn!(spans = n, "trace export failed: {why}; spans dropped");
                }
                Err(Failure::Retry(_)) => {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
            }
        }
        crate::metrics::trace_spans("dropped_export_failed", n);
    }

    async fn post(&self, body: Bytes) -> Result<(), Failure> {
        let mut req = Request::post(self.endpoint.as_str())
            .header(header::CONTENT_TYPE, "application/x-protobuf")
            .body(Full::new(body))
            .map_err(|_| Failure::Final("invalid traces.endpoint".to_owned()))?;
        for (k, v) in &self.headers {
            req.headers_mut().insert(k.clone(), v.clone());
        }
        let resp = match tokio::time::timeout(TIMEOUT, self.client.request(req)).await {
            Err(_) => return Err(Failure::Retry("the collector did not answer".to_owned())),
            Ok(Err(_)) => return Err(Failure::Retry("could not reach the collector".to_owned())),
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        // Read (a bounded amount of) the answer so the connection can be reused.
        let _ = tokio::time::timeout(
            TIMEOUT,
            http_body_util::Limited::new(resp.into_body(), 64 * 1024).collect(),
        )
        .await;
        match status.as_u16() {
            200..=299 => Ok(()),
            429 | 502 | 503 | 504 => Err(Failure::Retry(format!("status {status}"))),
            _ => Err(Failure::Final(format!("status {status}"))),
        }
    }
}

enum Failure {
    Retry(String),
    Final(String),
}
