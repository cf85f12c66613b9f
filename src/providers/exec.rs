//! The shared executor: the only code that talks to providers.
//!
//! One connection pool (rustls, HTTP/1.1 and HTTP/2 by ALPN, TCP_NODELAY, keep-alive; see
//! [`super::pool`]) per provider and base URL. Three timeouts and no total deadline:
//! `connect`, `first_byte` (until the response headers), and `idle` (between two body
//! frames), so a stream may run for as long as it keeps moving. Dropping any future or stream
//! here drops the upstream request, which closes its connection: that is how a client's
//! disconnect cancels the provider call.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Request, Response, header};
use http_body::Body as _;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::time::{Instant, timeout, timeout_at};

use super::pool::{PooledBody, SendError};
use super::sse::{SseEvent, SseParser};
use super::{Endpoint, StreamDecoder, StreamStep, UpstreamRequest, bad_reply};
use crate::config::Secret;
use crate::egress::{Guarded, Policy, Resolver};
use crate::error::{ErrorKind, GatewayError};
use crate::schema::StreamEvent;

/// The loop guard's header (`routing::loopguard`): the gateways a request passed through,
/// sent with every upstream request.
pub const HOP_HEADER: http::HeaderName = http::HeaderName::from_static("x-gatehouse-hop");

/// What one attempt sends besides the adapter's request: the provider key it uses and the
/// loop guard's hop header.
pub struct Outbound<'a> {
    pub key: Option<&'a Secret>,
    pub hop: &'a http::HeaderValue,
    /// The gateway's request id, sent as `x-request-id` so that the provider's logs can be
    /// matched with ours.
    pub request_id: &'a str,
    /// The request's bodies, when its record may keep them: the attempt's request and the
    /// provider's raw response are tapped into it.
    pub capture: Option<&'a std::sync::Arc<crate::bodies::Capture>>,
    /// The W3C `traceparent` naming this attempt's span, when the request is traced.
    pub traceparent: Option<http::HeaderValue>,
}

/// An [`Outbound`] that owns what it sends, for a send that may outlive the attempt that
/// made it: a stream committed before its provider answered ([`UpstreamEvents::awaiting`]).
pub struct OwnedOutbound {
    key: Option<Secret>,
    hop: http::HeaderValue,
    request_id: String,
    capture: Option<Arc<crate::bodies::Capture>>,
    traceparent: Option<http::HeaderValue>,
}

impl Outbound<'_> {
    pub fn to_owned(&self) -> OwnedOutbound {
        OwnedOutbound {
            key: self.key.cloned(),
            hop: self.hop.clone(),
            request_id: self.request_id.to_owned(),
            capture: self.capture.cloned(),
            traceparent: self.traceparent.clone(),
        }
    }
}

/// The provider's answer to a send, awaited on its own (see [`send_owned`]).
pub type Answer = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Response<PooledBody>, GatewayError>> + Send>,
>;

/// [`send`], owning its provider and what it sends: a future that may be kept past the
/// attempt, so that a stream can be committed (headers and keep-alives to the client) while
/// its provider has not answered yet.
pub fn send_owned<P: Endpoint + 'static>(
    provider: Arc<P>,
    out: OwnedOutbound,
    up: UpstreamRequest,
    stream: bool,
) -> Answer {
    Box::pin(async move {
        let o = Outbound {
            key: out.key.as_ref(),
            hop: &out.hop,
            request_id: &out.request_id,
            capture: out.capture.as_ref(),
            traceparent: out.traceparent,
        };
        send(&*provider, &o, up, stream).await
    })
}

/// The connector of every outbound connection (see [`connector`]).
pub type Connector = hyper_rustls::HttpsConnector<Guarded<HttpConnector<Resolver>>>;
pub type HttpClient = Client<Connector, Full<Bytes>>;

/// Largest non-streaming provider reply we read (a long completion with logprobs is a few MB).
pub const MAX_REPLY_BYTES: usize = 64 * 1024 * 1024;
/// Most bytes of already-received stream frames coalesced into one batch for the client.
const MAX_BATCH_BYTES: usize = 256 * 1024;
/// Largest error body we read to extract the provider's message.
const MAX_ERROR_BYTES: usize = 64 * 1024;

const USER_AGENT: &str = concat!("gatehouse/", env!("CARGO_PKG_VERSION"));

/// A general client, for the gateway's own calls to URLs of the operator's (alert webhooks,
/// trace export); providers are called through their backend's [`super::pool::Pool`]. It
/// follows no redirects (hyper's client has none), and connects where `policy` allows.
pub fn client(connect_timeout: Duration, policy: &Arc<Policy>) -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(super::pool::IDLE_FOR)
        .pool_max_idle_per_host(super::pool::MAX_IDLE)
        .build(connector(connect_timeout, policy))
}

/// The connector of every outbound connection: the address policy ([`crate::egress`]: an
/// address host checked, a name resolved once, every address of the answer checked, and the
/// connection made to those addresses only), TCP (no delay, keep-alive probes, the connect
/// timeout), then TLS with the webpki roots and ALPN offering HTTP/2 and HTTP/1.1 for
/// `https`, plain HTTP/1.1 for `http`.
pub fn connector(connect_timeout: Duration, policy: &Arc<Policy>) -> Connector {
    connector_with(connect_timeout, Resolver::system(Arc::clone(policy)))
}

/// [`connector`] with the resolver given (tests script its answers).
pub fn connector_with(connect_timeout: Duration, resolver: Resolver) -> Connector {
    let policy = Arc::clone(resolver.policy());
    let mut http = HttpConnector::new_with_resolver(resolver);
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map(|b| {
        b.with_root_certificates(rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        })
        .with_no_client_auth()
    });
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    match tls {
        Ok(cfg) => builder.with_tls_config(cfg),
        // Unreachable with ring's default provider; fall back to the crate's own roots.
        Err(_) => builder.with_webpki_roots(),
    }
    .https_or_http()
    .enable_http1()
    .enable_http2()
    .wrap_connector(Guarded::new(http, policy))
}

/// Send a non-streaming request and read its whole reply.
pub async fn send_for_body(
    provider: &dyn Endpoint,
    out: &Outbound<'_>,
    up: UpstreamRequest,
) -> Result<Bytes, GatewayError> {
    let resp = send(provider, out, up, false).await?;
    let cfg = provider.config();
    let body = read_body(
        resp.into_body(),
        cfg.timeouts.idle,
        MAX_REPLY_BYTES,
        &cfg.name,
    )
    .await?;
    if let Some(c) = out.capture {
        c.provider_chunk(&body);
    }
    Ok(body)
}

/// Send one request and wait for a successful response's headers.
///
/// Errors are classified for the fallback loop: connect failures and timeouts, 429 and 5xx are
/// retryable; other 4xx carry the provider's message and are not.
pub async fn send(
    provider: &dyn Endpoint,
    out: &Outbound<'_>,
    up: UpstreamRequest,
    stream: bool,
) -> Result<Response<PooledBody>, GatewayError> {
    let cfg = provider.config();
    if let Some(c) = out.capture {
        c.attempt(&cfg.name, cfg.log_bodies, &up.body);
    }
    let pool = provider.pool();
    let Some(uri) = pool.target(&up.path) else {
        return Err(transport_error(&cfg.name, &SendError::BadUrl));
    };
    // Header values made at compile time; the map sized for what usually goes out.
    const JSON: HeaderValue = HeaderValue::from_static("application/json");
    const EVENTS: HeaderValue = HeaderValue::from_static("text/event-stream");
    const AGENT: HeaderValue = HeaderValue::from_static(USER_AGENT);
    let mut req = Request::new(Full::new(up.body));
    *req.method_mut() = http::Method::POST;
    *req.uri_mut() = uri;
    *req.headers_mut() = http::HeaderMap::with_capacity(12);
    let headers = req.headers_mut();
    headers.insert(header::CONTENT_TYPE, JSON);
    headers.insert(header::USER_AGENT, AGENT);
    headers.insert(header::ACCEPT, if stream { EVENTS } else { JSON });
    headers.insert(HOP_HEADER, out.hop.clone());
    if let Ok(v) = http::HeaderValue::from_str(out.request_id) {
        headers.insert(http::HeaderName::from_static("x-request-id"), v);
    }
    if let Some(tp) = &out.traceparent {
        headers.insert(http::HeaderName::from_static("traceparent"), tp.clone());
    }
    if let Some(key) = out.key {
        for (k, v) in provider.adapter().auth_headers(key) {
            headers.insert(k, v);
        }
    }
    for (k, v) in cfg.headers.iter().chain(up.headers.iter()) {
        headers.insert(k.clone(), v.clone());
    }
    // Last, so that a signature covers every header sent.
    provider.adapter().sign(&mut req, out.key)?;

    let resp = match timeout(cfg.timeouts.first_byte, pool.send(req)).await {
        Err(_) => {
            return Err(GatewayError::new(
                ErrorKind::UpstreamTimeout,
                format!(
                    "{} sent no response within {:?}",
                    cfg.name, cfg.timeouts.first_byte
                ),
            ));
        }
        Ok(Err(e)) => return Err(transport_error(&cfg.name, &e)),
        Ok(Ok(resp)) => resp,
    };
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let retry_after = resp
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let body = read_body(
        resp.into_body(),
        cfg.timeouts.idle,
        MAX_ERROR_BYTES,
        &cfg.name,
    )
    .await
    .unwrap_or_default();
    if let Some(c) = out.capture {
        c.provider_chunk(&body);
    }
    let err = provider
        .adapter()
        .parse_error(status.as_u16(), &body, retry_after);
    Err(redacted(err, &cfg.secrets()))
}

fn transport_error(provider: &str, e: &SendError) -> GatewayError {
    match e {
        SendError::Connect { timed_out: true } => GatewayError::new(
            ErrorKind::UpstreamTimeout,
            format!("connecting to {provider} timed out"),
        ),
        SendError::Connect { timed_out: false } => GatewayError::new(
            ErrorKind::UpstreamUnavailable,
            format!("could not connect to {provider}"),
        ),
        SendError::Transport(_) => GatewayError::new(
            ErrorKind::UpstreamFailed,
            format!("{provider} closed the connection before replying"),
        ),
        SendError::BadUrl => GatewayError::internal(format!("invalid upstream URL for {provider}")),
        SendError::Refused(r) => GatewayError::new(
            ErrorKind::UpstreamUnavailable,
            format!("{provider} was not connected to: {}", r.public_message()),
        ),
    }
}

/// Read a whole body, each frame within `idle`, at most `limit` bytes.
pub async fn read_body(
    mut body: PooledBody,
    idle: Duration,
    limit: usize,
    provider: &str,
) -> Result<Bytes, GatewayError> {
    // The first frame is kept as it came; only a reply of several frames is copied into one
    // buffer (most replies arrive whole in one read).
    let mut first: Option<Bytes> = None;
    let mut buf = BytesMut::new();
    loop {
        match timeout(idle, body.frame()).await {
            Err(_) => return Err(idle_timeout(provider, idle)),
            Ok(None) => return Ok(first.unwrap_or_else(|| buf.freeze())),
            Ok(Some(Err(_))) => {
                return Err(GatewayError::new(
                    ErrorKind::UpstreamFailed,
                    format!("{provider} broke off its reply"),
                ));
            }
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    let held = first.as_ref().map_or(0, Bytes::len) + buf.len();
                    if held + data.len() > limit {
                        return Err(bad_reply(
                            provider,
                            format!("reply larger than {limit} bytes"),
                        ));
                    }
                    if data.is_empty() {
                        continue;
                    }
                    if first.is_none() && buf.is_empty() {
                        first = Some(data);
                    } else {
                        if let Some(f) = first.take() {
                            buf.extend_from_slice(&f);
                        }
                        buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}

fn idle_timeout(provider: &str, idle: Duration) -> GatewayError {
    GatewayError::new(
        ErrorKind::UpstreamTimeout,
        format!("{provider} sent nothing for {idle:?}"),
    )
}

/// How a stream's bytes are cut into events: server-sent events, or AWS's binary event
/// stream (Bedrock; told apart by its content type).
enum Framing {
    Sse(SseParser),
    Aws(super::eventstream::EventStreamParser),
}

/// A provider's event stream, decoded into canonical events as frames arrive.
///
/// `next` is cancel-safe: a frame is fed to the parser and decoded in one synchronous step
/// after the only await point, so dropping a pending `next` loses nothing.
pub struct UpstreamEvents {
    /// `None` while the provider has not answered ([`Self::awaiting`]).
    body: Option<PooledBody>,
    /// The provider's answer, when the stream was committed before it came.
    answer: Option<Answer>,
    parser: Framing,
    decoder: Box<dyn StreamDecoder>,
    pending: VecDeque<SseEvent>,
    idle: Duration,
    /// When the last frame arrived: the idle deadline spans calls to `next`, so a caller
    /// that wraps `next` in a shorter timeout (keep-alives) does not reset it.
    last_frame: Instant,
    provider: String,
    finished: bool,
    /// A decoding failure that followed events still to be delivered.
    deferred: Option<GatewayError>,
    /// The body ended while frames were taken without waiting.
    ended: bool,
    /// Where the raw frames are tapped for the request log, when it keeps them.
    capture: Option<std::sync::Arc<crate::bodies::Capture>>,
}

impl UpstreamEvents {
    pub fn new(
        resp: Response<PooledBody>,
        decoder: Box<dyn StreamDecoder>,
        idle: Duration,
        provider: &str,
    ) -> Self {
        let mut events = Self::awaiting_none(decoder, idle, provider);
        events.answered(resp);
        events
    }

    /// The events of a provider that has not answered yet: `answer` is awaited by the first
    /// [`Self::next`] (within the provider's `first_byte` timeout, which `answer` carries), its
    /// failure being the stream's. For a stream committed while its provider is silent
    /// before its headers, so that the client gets its headers and keep-alives meanwhile.
    pub fn awaiting(
        answer: Answer,
        decoder: Box<dyn StreamDecoder>,
        idle: Duration,
        provider: &str,
    ) -> Self {
        let mut events = Self::awaiting_none(decoder, idle, provider);
        events.answer = Some(answer);
        events
    }

    fn awaiting_none(decoder: Box<dyn StreamDecoder>, idle: Duration, provider: &str) -> Self {
        Self {
            parser: Framing::Sse(SseParser::new()),
            body: None,
            answer: None,
            decoder,
            pending: VecDeque::new(),
            idle,
            last_frame: Instant::now(),
            provider: provider.to_owned(),
            finished: false,
            deferred: None,
            ended: false,
            capture: None,
        }
    }

    /// False while the provider's answer is awaited ([`Self::awaiting`]).
    pub fn answered_yet(&self) -> bool {
        self.answer.is_none()
    }

    /// The provider answered: its body is the stream's, framed as its content type says.
    fn answered(&mut self, resp: Response<PooledBody>) {
        if resp.headers().get(header::CONTENT_TYPE).is_some_and(|t| {
            t.as_bytes()
                .starts_with(b"application/vnd.amazon.eventstream")
        }) {
            self.parser = Framing::Aws(Default::default());
        }
        self.body = Some(resp.into_body());
        self.last_frame = Instant::now();
    }

    /// Done with the stream. After its terminator, the rest of the body (its framing) is read
    /// on a task of its own and the connection goes back to the pool
    /// ([`PooledBody::drain`]); before it (a failure), the connection is closed.
    pub fn finish(self) {
        if self.finished
            && let Some(body) = self.body
        {
            body.drain();
        }
    }

    /// See [`crate::codec::upstream_stream::StreamDecoder::describes_raw`].
    pub fn describes_raw(&self) -> bool {
        self.decoder.describes_raw()
    }

    /// Tap the raw frames into `capture` (the request log's bodies).
    pub fn tapped(mut self, capture: Option<&std::sync::Arc<crate::bodies::Capture>>) -> Self {
        self.capture = capture.cloned();
        self
    }

    /// The next batch of events: every event already received (so a burst from the
    /// provider becomes one write to the client, not one per event), or, when none is, the
    /// next to arrive. `Ok(None)` once the provider's terminator arrived. A body that ends
    /// without its terminator is an error (never reported as a normal stop).
    pub async fn next(&mut self) -> Result<Option<Vec<StreamEvent>>, GatewayError> {
        if let Some(e) = self.deferred.take() {
            return Err(e);
        }
        if let Some(answer) = self.answer.as_mut() {
            // Cancel-safe: the answer stays here until it comes.
            let resp = answer.await;
            self.answer = None;
            self.answered(resp?);
        }
        let mut out = Vec::new();
        loop {
            while let Some(ev) = self.pending.pop_front() {
                match self.decoder.decode(&ev) {
                    Ok(StreamStep::Events(v)) => out.extend(v),
                    Ok(StreamStep::Done) => {
                        self.finished = true;
                        self.pending.clear();
                    }
                    Ok(StreamStep::Last(v)) => {
                        out.extend(v);
                        self.finished = true;
                        self.pending.clear();
                    }
                    // Deliver what came before the failure first.
                    Err(e) if !out.is_empty() => {
                        self.deferred = Some(redacted(e, &[]));
                        self.pending.clear();
                        return Ok(Some(out));
                    }
                    Err(e) => return Err(redacted(e, &[])),
                }
            }
            if !out.is_empty() {
                if !self.finished && self.take_ready_frames() {
                    continue;
                }
                return Ok(Some(out));
            }
            if self.finished {
                return Ok(None);
            }
            let frame = if self.ended {
                None
            } else {
                let Some(body) = self.body.as_mut() else {
                    return Err(GatewayError::internal(
                        "a stream read before its provider answered",
                    ));
                };
                match timeout_at(self.last_frame + self.idle, body.frame()).await {
                    Err(_) => return Err(idle_timeout(&self.provider, self.idle)),
                    Ok(f) => f,
                }
            };
            self.last_frame = Instant::now();
            match frame {
                None => {
                    return Err(GatewayError::new(
                        ErrorKind::UpstreamFailed,
                        format!("{} ended the stream without its terminator", self.provider),
                    ));
                }
                Some(Err(_)) => {
                    return Err(GatewayError::new(
                        ErrorKind::UpstreamFailed,
                        format!("{} broke off the stream", self.provider),
                    ));
                }
                Some(Ok(frame)) => self.feed(frame)?,
            }
        }
    }

    fn feed(&mut self, frame: http_body::Frame<Bytes>) -> Result<(), GatewayError> {
        if let Ok(data) = frame.into_data() {
            if let Some(c) = &self.capture {
                c.provider_chunk(&data);
            }
            let mut parsed = Vec::new();
            match &mut self.parser {
                Framing::Sse(p) => p
                    .feed_bytes(data, &mut parsed)
                    .map_err(|_| bad_reply(&self.provider, "an event line over 16 MiB"))?,
                Framing::Aws(p) => p
                    .feed(&data, &mut parsed)
                    .map_err(|e| bad_reply(&self.provider, e.0))?,
            }
            self.pending.extend(parsed);
        }
        Ok(())
    }

    /// Take body frames that are already readable, without waiting, up to
    /// [`MAX_BATCH_BYTES`]; true when new events are pending. End of body and errors are left
    /// for the next awaited read to report (after the events before them are delivered).
    fn take_ready_frames(&mut self) -> bool {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut taken = 0;
        while taken < MAX_BATCH_BYTES {
            let Some(body) = self.body.as_mut() else {
                return false;
            };
            match std::pin::Pin::new(body).poll_frame(&mut cx) {
                std::task::Poll::Ready(Some(Ok(frame))) => {
                    taken += frame.data_ref().map_or(0, Bytes::len);
                    if let Err(e) = self.feed(frame) {
                        self.deferred = Some(e);
                        break;
                    }
                }
                std::task::Poll::Ready(Some(Err(_))) => {
                    self.deferred = Some(GatewayError::new(
                        ErrorKind::UpstreamFailed,
                        format!("{} broke off the stream", self.provider),
                    ));
                    break;
                }
                std::task::Poll::Ready(None) => {
                    self.ended = true;
                    break;
                }
                std::task::Poll::Pending => break,
            }
        }
        self.last_frame = Instant::now();
        !self.pending.is_empty()
    }
}

/// A provider's error (its words: a non-2xx reply's body, or an error read from its stream)
/// with `secrets` (the provider's credentials, where known), every secret of the config and
/// anything shaped like a credential taken out of its message and blamed field. The attempt
/// loop runs every attempt's error through it again (a reply that could not be read may
/// quote it).
pub fn redacted(mut e: GatewayError, secrets: &[&crate::config::Secret]) -> GatewayError {
    use crate::config::Redactor;
    e.message = Redactor::provider_text(&e.message, secrets);
    e.param = e.param.map(|p| Redactor::provider_text(&p, secrets));
    e
}
