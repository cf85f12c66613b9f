//! An in-process mock provider: axum-free hyper server on 127.0.0.1:0, scriptable per test.
//!
//! Each request pops the next scripted [`Reply`] (or uses the default): status, JSON body or
//! SSE events, a delay before the first byte, a delay between events, truncation without the
//! terminator. It records every request (path, headers, body) and the instant each inbound
//! connection closed, so tests can measure cancellation. The `Mistral` profile behaves like
//! api.mistral.ai: request bodies are validated against Mistral's published OpenAPI schema
//! (422 `extra_forbidden`-style errors), tool-call ids must be 9 letters and digits, and
//! models listed in `two_level_models` reject `reasoning_effort` other than none/high.

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    OpenAi,
    Mistral,
    /// api.anthropic.com: `POST /v1/messages` with `x-api-key` and `anthropic-version`.
    Anthropic,
}

#[derive(Clone, Debug)]
pub enum Body {
    Json(Value),
    /// `data:` payloads, sent one event each; `[DONE]` is appended unless truncated.
    Sse(Vec<String>),
    Raw(&'static str),
    /// A whole SSE body, sent one event (up to its blank line) per frame as written.
    SseText(String),
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

    pub fn truncate_after(mut self, n: usize) -> Self {
        self.truncate_after = Some(n);
        self
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }
}

pub fn chat_body(text: &str, prompt: u64, completion: u64) -> Value {
    json!({
        "id": "chatcmpl-mock", "object": "chat.completion", "created": 1_700_000_000, "model": "mock-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop", "logprobs": null}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    })
}

pub fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({
        "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "mock-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}]
    })
}

/// A stream with reasoning ("think"), text ("Let me check.") and a `get_weather` tool call
/// whose arguments `{"city":"Paris"}` arrive in two fragments, then usage 40/12.
pub fn thinking_text_tool_stream(call_id: &str) -> Reply {
    Reply::sse(vec![
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"reasoning_content": "think"}), None),
        chunk(json!({"content": "Let me "}), None),
        chunk(json!({"content": "check."}), None),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
        usage_chunk(40, 12),
    ])
}

pub fn usage_chunk(prompt: u64, completion: u64) -> Value {
    json!({
        "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "mock-model",
        "choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    })
}

#[derive(Clone, Debug)]
pub struct Recorded {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
    /// The body's bytes as they arrived.
    pub raw: Bytes,
}

/// Computes a reply from the request body, for clients whose calls are not known in advance.
pub type Responder = Arc<dyn Fn(&Value) -> Reply + Send + Sync>;

#[derive(Default)]
struct State {
    responder: Mutex<Option<Responder>>,
    script: Mutex<VecDeque<Reply>>,
    calls: AtomicUsize,
    requests: Mutex<Vec<Recorded>>,
    closed: Mutex<Vec<Instant>>,
    open: AtomicUsize,
    two_level_models: Mutex<Vec<String>>,
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
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let st = st.clone();
                st.open.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
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
            Profile::Anthropic => format!("http://{}", self.addr),
            _ => format!("http://{}/v1", self.addr),
        }
    }

    /// Answer every request not covered by the script with `f(body)`.
    pub fn respond_with(&self, f: impl Fn(&Value) -> Reply + Send + Sync + 'static) {
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
        headers: headers.clone(),
        body: body.clone(),
        raw: bytes.clone(),
    });

    if profile == Profile::Mistral
        && let Some(err) = mistral_validate(&st, &path, &body)
    {
        return Ok(full(422, err));
    }
    if profile == Profile::Anthropic
        && let Some((status, err)) = anthropic_validate(&path, &headers, &body)
    {
        return Ok(full(status, err));
    }
    let responder = st.responder.lock().unwrap().clone();
    let next = st
        .script
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| responder.map(|f| f(&body)));
    let reply = next.unwrap_or_else(|| {
        if profile == Profile::Anthropic {
            anthropic_default_reply(body["stream"] == true)
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
    let mut resp = match reply.body {
        Body::Json(v) => full(reply.status, v),
        Body::Raw(s) => {
            let mut r = Response::new(Full::new(Bytes::from_static(s.as_bytes())).boxed());
            *r.status_mut() = StatusCode::from_u16(reply.status).unwrap();
            r
        }
        Body::SseText(text) => {
            let frames: Vec<String> = text.split_inclusive("\n\n").map(str::to_owned).collect();
            let mut r = sse_reply(frames, reply.first_event_delay, reply.event_delay);
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
            sse_reply(frames, reply.first_event_delay, reply.event_delay)
        }
    };
    for (k, v) in reply.headers {
        resp.headers_mut().insert(k, v.parse().unwrap());
    }
    Ok(resp)
}

/// What api.anthropic.com refuses before looking at the request: a missing key or version
/// (401/400), a body without the required fields (400), in Anthropic's error shape.
fn anthropic_validate(path: &str, headers: &HeaderMap, body: &Value) -> Option<(u16, Value)> {
    let err = |status: u16, kind: &str, message: &str| {
        Some((
            status,
            json!({"type": "error", "error": {"type": kind, "message": message}}),
        ))
    };
    if path != "/v1/messages" && path != "/v1/messages/count_tokens" {
        return err(404, "not_found_error", "Not Found");
    }
    if headers.get("x-api-key").is_none() || headers.get("authorization").is_some() {
        return err(401, "authentication_error", "x-api-key header is required");
    }
    if headers.get("anthropic-version").is_none() {
        return err(
            400,
            "invalid_request_error",
            "anthropic-version: header is required",
        );
    }
    let counting = path.ends_with("/count_tokens");
    for field in ["model", "max_tokens", "messages"] {
        if body.get(field).is_none() && !(counting && field == "max_tokens") {
            return err(
                400,
                "invalid_request_error",
                &format!("{field}: Field required"),
            );
        }
    }
    if counting {
        for field in ["max_tokens", "stream"] {
            if body.get(field).is_some() {
                let msg = format!("{field}: Extra inputs are not permitted");
                return err(400, "invalid_request_error", &msg);
            }
        }
        // A count that no estimate would give, so a test can tell who counted.
        return Some((200, json!({"input_tokens": ANTHROPIC_COUNT})));
    }
    None
}

/// What the Anthropic mock's `count_tokens` answers.
pub const ANTHROPIC_COUNT: u64 = 31_337;

/// A reply as Anthropic writes it: one text block, usage with a cache read.
pub const ANTHROPIC_MESSAGE: &str = r#"{"id":"msg_01Mock","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Hello from Claude","citations":null}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":20,"cache_creation_input_tokens":0,"cache_read_input_tokens":5,"output_tokens":4,"service_tier":"standard"}}"#;

/// A stream as Anthropic writes it: thinking with a signature, text, a tool call whose
/// arguments arrive in pieces, usage at both ends.
pub const ANTHROPIC_STREAM: &str = concat!(
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01Mock\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":20,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":5,\"output_tokens\":1}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n",
    "event: ping\ndata: {\"type\": \"ping\"}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Check the weather.\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EqQBCgIYAhIM1gbcDa9GJwZA2b3h\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Let me look.\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01A\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"Paris\\\"}\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":42}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
);

fn anthropic_default_reply(stream: bool) -> Reply {
    let body = if stream {
        Body::SseText(ANTHROPIC_STREAM.to_owned())
    } else {
        Body::Raw(ANTHROPIC_MESSAGE)
    };
    Reply {
        body,
        ..Reply::json(200, Value::Null)
    }
}

/// An event stream of `frames`, `first` before the first and `every` between the others.
fn sse_reply(frames: Vec<String>, first: Duration, every: Duration) -> Response<MockBody> {
    let stream =
        futures_util::stream::iter(frames.into_iter().enumerate()).then(move |(i, f)| async move {
            let d = if i == 0 { first } else { every };
            if !d.is_zero() {
                tokio::time::sleep(d).await;
            }
            Ok::<_, Infallible>(Frame::data(Bytes::from(f)))
        });
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    r.headers_mut()
        .insert("content-type", "text/event-stream".parse().unwrap());
    r
}

fn embeddings_reply(body: &Value) -> Reply {
    let n = body["input"].as_array().map_or(1, Vec::len);
    let data: Vec<Value> = (0..n)
        .map(|i| json!({"object": "embedding", "embedding": [0.1, 0.2, i as f64], "index": i}))
        .collect();
    Reply::json(
        200,
        json!({"object": "list", "data": data, "model": "mock-embed", "usage": {"prompt_tokens": 5, "total_tokens": 5}}),
    )
}

/// What api.mistral.ai would refuse, as its 422 body; `None` when the request is acceptable.
fn mistral_validate(st: &State, path: &str, body: &Value) -> Option<Value> {
    let schema = if path.ends_with("/chat/completions") {
        "ChatCompletionRequest"
    } else {
        "EmbeddingRequest"
    };
    if let Some(errors) = super::mistral_spec::validate(schema, body) {
        return Some(
            json!({"detail": errors.iter().map(|e| json!({"type": "extra_forbidden", "loc": ["body"], "msg": e})).collect::<Vec<_>>()}),
        );
    }
    for m in body["messages"].as_array().into_iter().flatten() {
        let ids = m["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["id"].as_str());
        for id in ids.chain(m["tool_call_id"].as_str()) {
            if id.len() != 9 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Some(
                    json!({"object": "error", "message": format!("Tool call id was {id} but must be a-z, A-Z, 0-9, with a length of 9."), "type": "invalid_request_message_order", "param": null, "code": "3280"}),
                );
            }
        }
    }
    let model = body["model"].as_str().unwrap_or_default();
    if let Some(e) = body["reasoning_effort"].as_str()
        && st
            .two_level_models
            .lock()
            .unwrap()
            .iter()
            .any(|m| m == model)
        && !matches!(e, "none" | "high")
    {
        return Some(
            json!({"detail": [{"type": "literal_error", "loc": ["body", "reasoning_effort"], "msg": "Input should be 'high' or 'none'", "input": e}]}),
        );
    }
    None
}
