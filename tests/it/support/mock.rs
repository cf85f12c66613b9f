//! An in-process mock provider: axum-free hyper server on 127.0.0.1:0, scriptable per test.
//!
//! Each request pops the next scripted [`Reply`] (or uses the default): status, JSON body or
//! SSE events, a delay before the first byte, a delay between events, truncation without the
//! terminator. It records every request (path, headers, body) and the instant each inbound
//! connection closed, so tests can measure cancellation. Each [`Profile`] behaves like its
//! provider (`profiles`: what it refuses and answers by default); `wire` builds replies in
//! each provider's format. The `Mistral` profile, for one, validates request bodies against
//! Mistral's published OpenAPI schema (422 `extra_forbidden`-style errors), wants tool-call
//! ids of 9 letters and digits, and refuses a `reasoning_effort` other than none/high for
//! the models listed in `two_level_models`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::profiles::*;
pub use super::wire::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    OpenAi,
    Mistral,
    /// api.anthropic.com: `POST /v1/messages` with `x-api-key` and `anthropic-version`.
    Anthropic,
    /// Azure OpenAI: `POST /openai/deployments/{deployment}/{op}?api-version=...` with an
    /// `api-key` header; OpenAI's bodies.
    Azure,
    /// generativelanguage.googleapis.com: `POST /v1beta/models/{model}:{method}` with
    /// `x-goog-api-key`; every request body is checked against Google's discovery document.
    Gemini,
    /// bedrock-runtime.us-east-1.amazonaws.com: `POST /model/{id}/converse` (and
    /// `/converse-stream`, `/invoke`), SigV4-signed (the signature is verified) or with a
    /// Bedrock API key; Converse bodies are checked against Amazon's service model.
    Bedrock,
}

/// The AWS credentials of the test environment (`test_env`), which the Bedrock mock
/// verifies signatures with.
pub const AWS_KEY_ID: &str = "AKIDGATEHOUSETEST01";

pub const AWS_SECRET: &str = "gatehouseTestSecretKey/0123456789abcdefXYZ";

pub const AWS_TOKEN: &str = "gatehouse-test-session-token";

#[derive(Clone, Debug)]
pub enum Body {
    Json(Value),
    /// `data:` payloads, sent one event each; `[DONE]` is appended unless truncated.
    Sse(Vec<String>),
    Raw(&'static str),
    /// A whole SSE body, sent one event (up to its blank line) per frame as written.
    SseText(String),
    /// Binary frames (AWS event-stream messages), one write each, with this content type.
    Binary(Vec<Vec<u8>>, &'static str),
}

#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Body,
    /// Before the response headers.
    pub first_byte_delay: Duration,
    /// SSE: after the headers, before the first event.
    pub first_event_delay: Duration,
    /// SSE: between events.
    pub event_delay: Duration,
    /// SSE: after the last event, before the body ends (its chunked terminator), which a
    /// provider may send in a packet of its own.
    pub end_delay: Duration,
    /// SSE: close the connection after this many events, without the terminator.
    pub truncate_after: Option<usize>,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body: Body::Json(body),
            first_byte_delay: Duration::ZERO,
            first_event_delay: Duration::ZERO,
            event_delay: Duration::ZERO,
            end_delay: Duration::ZERO,
            truncate_after: None,
            headers: Vec::new(),
        }
    }

    /// A Chat Completions reply with text and usage, in the profile's shape.
    pub fn chat(text: &str) -> Self {
        Self::json(200, chat_body(text, 12, 3))
    }

    /// A Chat Completions stream of `pieces`, then finish and usage.
    pub fn stream(pieces: &[&str]) -> Self {
        let mut events = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
        for p in pieces {
            events.push(chunk(json!({"content": p}), None));
        }
        events.push(chunk(json!({}), Some("stop")));
        events.push(usage_chunk(12, pieces.len() as u64));
        Self {
            body: Body::Sse(events.into_iter().map(|v| v.to_string()).collect()),
            ..Self::json(200, Value::Null)
        }
    }

    pub fn error(status: u16, message: &str) -> Self {
        Self::json(
            status,
            json!({"error": {"message": message, "type": "server_error", "param": null, "code": null}}),
        )
    }

    pub fn sse(events: Vec<Value>) -> Self {
        Self {
            body: Body::Sse(events.into_iter().map(|v| v.to_string()).collect()),
            ..Self::json(200, Value::Null)
        }
    }

    pub fn delay(mut self, d: Duration) -> Self {
        self.first_byte_delay = d;
        self
    }

    pub fn first_event_delay(mut self, d: Duration) -> Self {
        self.first_event_delay = d;
        self
    }

    pub fn every(mut self, d: Duration) -> Self {
        self.event_delay = d;
        self
    }

    pub fn pause_before_end(mut self, d: Duration) -> Self {
        self.end_delay = d;
        self
    }

    pub fn truncate_after(mut self, n: usize) -> Self {
        self.truncate_after = Some(n);
        self
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }
}

#[derive(Clone, Debug)]
pub struct Recorded {
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Value,
    /// The body's bytes as they arrived.
    pub raw: Bytes,
}

/// Computes a reply from the request's path and body, for clients whose calls are not known
/// in advance.
pub type Responder = Arc<dyn Fn(&str, &Value) -> Reply + Send + Sync>;

#[derive(Default)]
struct State {
    responder: Mutex<Option<Responder>>,
    script: Mutex<VecDeque<Reply>>,
    calls: AtomicUsize,
    requests: Mutex<Vec<Recorded>>,
    closed: Mutex<Vec<Instant>>,
    open: AtomicUsize,
    two_level_models: Mutex<Vec<String>>,
    openai_itself: std::sync::atomic::AtomicBool,
}

pub struct MockProvider {
    pub addr: SocketAddr,
    profile: Profile,
    state: Arc<State>,
}

impl MockProvider {
    pub async fn start(profile: Profile) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let st = state.clone();
        super::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let st = st.clone();
                st.open.fetch_add(1, Ordering::SeqCst);
                super::spawn(async move {
                    let st2 = st.clone();
                    let svc = service_fn(move |req| handle(st2.clone(), profile, req));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                    st.closed.lock().unwrap().push(Instant::now());
                    st.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            addr,
            profile,
            state,
        }
    }

    /// The provider's base URL, as a config's `base_url` (Anthropic's has no `/v1`).
    pub fn base_url(&self) -> String {
        match self.profile {
            Profile::Anthropic | Profile::Azure | Profile::Gemini | Profile::Bedrock => {
                format!("http://{}", self.addr)
            }
            _ => format!("http://{}/v1", self.addr),
        }
    }

    /// Answer every request not covered by the script with `f(body)`.
    pub fn respond_with(&self, f: impl Fn(&Value) -> Reply + Send + Sync + 'static) {
        self.respond_to(move |_, body| f(body));
    }

    /// [`Self::respond_with`], also given the path (where Gemini says whether to stream).
    pub fn respond_to(&self, f: impl Fn(&str, &Value) -> Reply + Send + Sync + 'static) {
        *self.state.responder.lock().unwrap() = Some(Arc::new(f));
    }

    pub fn push(&self, reply: Reply) -> &Self {
        self.state.script.lock().unwrap().push_back(reply);
        self
    }

    /// Models that, like Mistral's older generation, take only `none`/`high`.
    pub fn two_level_models(&self, models: &[&str]) {
        *self.state.two_level_models.lock().unwrap() =
            models.iter().map(|m| (*m).to_owned()).collect();
    }

    /// Play OpenAI's own API (or Azure's deployments of its models, named after them), not a
    /// compatible server: body keys outside OpenAI's request schema are refused, and so is
    /// a reasoning effort for a model that does not reason (`openai_itself_refusal`).
    pub fn openai_itself(&self) {
        self.state.openai_itself.store(true, Ordering::SeqCst);
    }

    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn last_request(&self) -> Recorded {
        self.requests().pop().expect("no request reached the mock")
    }

    /// Instants at which inbound connections closed.
    pub fn closed(&self) -> Vec<Instant> {
        self.state.closed.lock().unwrap().clone()
    }

    pub fn open_connections(&self) -> usize {
        self.state.open.load(Ordering::SeqCst)
    }

    /// Wait until at least `n` connections have closed (or `within` passes); the first
    /// closing instant at or after `n` closes, if any.
    pub async fn wait_closed(&self, n: usize, within: Duration) -> Option<Instant> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(t) = self.closed().get(n - 1) {
                return Some(*t);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

type MockBody = BoxBody<Bytes, Infallible>;

fn full(status: u16, body: Value) -> Response<MockBody> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}

async fn handle(
    st: Arc<State>,
    profile: Profile,
    req: Request<Incoming>,
) -> Result<Response<MockBody>, Infallible> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let headers = req.headers().clone();
    let bytes = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    st.calls.fetch_add(1, Ordering::SeqCst);
    st.requests.lock().unwrap().push(Recorded {
        path: path.clone(),
        query: query.clone(),
        headers: headers.clone(),
        body: body.clone(),
        raw: bytes.clone(),
    });

    if profile == Profile::Mistral
        && let Some((status, err)) =
            mistral_validate(&st.two_level_models.lock().unwrap(), &path, &body)
    {
        return Ok(full(status, err));
    }
    if profile == Profile::Anthropic
        && let Some((status, err)) = anthropic_validate(&path, &headers, &body)
    {
        return Ok(full(status, err));
    }
    if profile == Profile::Azure
        && let Some((status, err)) = azure_validate(&path, query.as_deref(), &headers)
    {
        return Ok(full(status, err));
    }
    if profile == Profile::Gemini
        && let Some((status, err)) = gemini_validate(&path, &headers, &body)
    {
        return Ok(full(status, err));
    }
    if profile == Profile::Bedrock
        && let Some((status, err)) = bedrock_validate(&path, &headers, &bytes, &body)
    {
        let mut r = full(status, err);
        r.headers_mut()
            .insert("x-amzn-errortype", "AccessDeniedException".parse().unwrap());
        return Ok(r);
    }
    if matches!(profile, Profile::OpenAi | Profile::Azure | Profile::Mistral)
        && path.ends_with("/chat/completions")
        && let Some((status, err)) = openai_tool_pairs(&body)
    {
        return Ok(full(status, err));
    }
    if st.openai_itself.load(Ordering::SeqCst)
        && let Some((status, err)) = openai_itself_refusal(&path, &body)
    {
        return Ok(full(status, err));
    }
    if let Some((status, err, kind)) = model_refusal(profile, &path, &body) {
        let mut r = full(status, err);
        if let Some(kind) = kind {
            r.headers_mut()
                .insert("x-amzn-errortype", kind.parse().unwrap());
        }
        return Ok(r);
    }
    if let Some((status, err)) = output_ceiling_refusal(profile, &path, &body) {
        let mut r = full(status, err);
        if profile == Profile::Bedrock {
            r.headers_mut()
                .insert("x-amzn-errortype", "ValidationException".parse().unwrap());
        }
        return Ok(r);
    }
    let responder = st.responder.lock().unwrap().clone();
    let next = st
        .script
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| responder.map(|f| f(&path, &body)));
    let reply = next.unwrap_or_else(|| {
        if profile == Profile::Anthropic {
            anthropic_default_reply(body["stream"] == true)
        } else if profile == Profile::Gemini {
            gemini_default_reply(&path, &body)
        } else if profile == Profile::Bedrock {
            bedrock_default_reply(&path)
        } else if path.ends_with("/embeddings") {
            embeddings_reply(&body)
        } else if body["stream"] == true {
            Reply::stream(&["Hello from the mock"])
        } else {
            Reply::chat("Hello from the mock")
        }
    });
    if !reply.first_byte_delay.is_zero() {
        tokio::time::sleep(reply.first_byte_delay).await;
    }
    let pace = pace(&reply);
    let mut resp = match reply.body {
        Body::Json(v) => full(reply.status, v),
        Body::Raw(s) => {
            let mut r = Response::new(Full::new(Bytes::from_static(s.as_bytes())).boxed());
            *r.status_mut() = StatusCode::from_u16(reply.status).unwrap();
            r
        }
        Body::Binary(frames, content_type) => {
            let frames = frames.into_iter().map(Bytes::from).collect();
            let mut r = frames_reply(frames, pace);
            r.headers_mut()
                .insert("content-type", content_type.parse().unwrap());
            *r.status_mut() = StatusCode::from_u16(reply.status).unwrap();
            r
        }
        Body::SseText(text) => {
            let end = if text.contains("\r\n\r\n") {
                "\r\n\r\n"
            } else {
                "\n\n"
            };
            let frames: Vec<String> = text.split_inclusive(end).map(str::to_owned).collect();
            let mut r = sse_reply(frames, pace);
            *r.status_mut() = StatusCode::from_u16(reply.status).unwrap();
            r
        }
        Body::Sse(events) => {
            let truncate = reply.truncate_after;
            let mut frames: Vec<String> = events
                .into_iter()
                .map(|e| format!("data: {e}\n\n"))
                .collect();
            match truncate {
                Some(n) => frames.truncate(n),
                None => frames.push("data: [DONE]\n\n".to_owned()),
            }
            sse_reply(frames, pace)
        }
    };
    for (k, v) in reply.headers {
        resp.headers_mut().insert(k, v.parse().unwrap());
    }
    Ok(resp)
}

/// When a stream's frames are written: before the first, between the others, before the end.
#[derive(Clone, Copy)]
struct Pace {
    first: Duration,
    every: Duration,
    end: Duration,
}

fn pace(r: &Reply) -> Pace {
    Pace {
        first: r.first_event_delay,
        every: r.event_delay,
        end: r.end_delay,
    }
}

/// An event stream of `frames`, written as `pace` says.
fn sse_reply(frames: Vec<String>, pace: Pace) -> Response<MockBody> {
    frames_reply(frames.into_iter().map(Bytes::from).collect(), pace)
}

/// A body written frame by frame, as `pace` says.
fn frames_reply(frames: Vec<Bytes>, pace: Pace) -> Response<MockBody> {
    let end = futures_util::stream::once(async move {
        if !pace.end.is_zero() {
            tokio::time::sleep(pace.end).await;
        }
    })
    .filter_map(|()| async { None::<Result<Frame<Bytes>, Infallible>> });
    let stream = futures_util::stream::iter(frames.into_iter().enumerate())
        .then(move |(i, f)| async move {
            let d = if i == 0 { pace.first } else { pace.every };
            if !d.is_zero() {
                tokio::time::sleep(d).await;
            }
            Ok::<_, Infallible>(Frame::data(f))
        })
        .chain(end);
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    r.headers_mut()
        .insert("content-type", "text/event-stream".parse().unwrap());
    r
}
