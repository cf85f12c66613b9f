//! Configuration: the TOML file of SPEC §2, read raw first and validated second (STYLE §4.9).
//!
//! `load`/`parse` turn text into a validated [`Config`] or into *every* [`ConfigError`] found,
//! each with `file:line:col`: syntax errors, unknown keys (all of them, via `serde_ignored`),
//! type errors, missing `${VAR}`s and semantic errors (unknown provider in a target, bad URL).
//! Without a file, [`embedded_default`] builds the same document from the environment, so the
//! default goes through the one validation path.
//!
//! Defaults are the `DEFAULT_*` consts below, each with its reason.
//!
//! `config` sits low in the crate (see `lib.rs`): it names no module above it, so the types
//! its settings hold are defined here, such as the body level ([`BodyLevel`]) and the
//! [`Redactor`] built from the config's secrets.

mod governance;
mod idempotency;
mod policy;
mod providers;
mod raw;
mod redact;
mod routes;
mod secret;
mod source;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use globset::{Glob, GlobMatcher};
use indexmap::IndexMap;

pub use governance::{MIN_STATIC_KEY_LEN, StaticKey, Team};
pub use idempotency::{
    DEFAULT_IDEMPOTENCY_MAX_REPLY, DEFAULT_IDEMPOTENCY_MEMORY, DEFAULT_IDEMPOTENCY_TTL,
    IdempotencySettings, RedisDown,
};
pub use policy::{
    Budget, BudgetUnit, NANOS_PER_USD, OnExhausted, Period, Policy, RateLimit, StoredBudget,
    StoredPolicy,
};
pub use providers::{AZURE_API_VERSION, AwsCredentials, ProviderConfig, ProviderKind, Timeouts};
pub use redact::{LogWriter, REDACTED, Redactor};
pub use redact::{live as live_redactor, publish as publish_secrets};
pub use routes::{
    Balance, BudgetOf, BudgetState, MAX_ATTEMPTS, Mirror, Route, RouteAction, RouteConditions,
    RoutingSettings, Sticky, Target, Weighted,
};
pub use secret::Secret;
pub use source::{ConfigError, Env, ProcessEnv, parse_duration};

use providers::{check_outbound_url, validate_provider};
use raw::{RawConfig, Str};
use routes::{parse_target, validate_route};
use source::Source;

/// Loopback only: the gateway is open when no keys are configured, so it must not be reachable
/// from the network by default (SPEC §1).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_STORE_URL: &str = "sqlite://gatehouse.db";
/// 32 MiB: a coding agent's request with a few base64 screenshots stays well under it (Claude
/// Code's first request is ~49 KB), while a runaway client cannot make us buffer much more.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 32 * 1024 * 1024;
/// How long SIGTERM waits for in-flight requests before exiting.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// SSE keep-alive comment interval during silences; also how long a stream may wait for its
/// first chunk while fallback is still possible (see `pipeline`). 15 s is under every common
/// idle timeout of proxies and load balancers (AWS ALB 60 s, nginx 60 s).
pub const DEFAULT_STREAM_KEEPALIVE: Duration = Duration::from_secs(15);
/// A client that leaves cancels its provider call: generating a reply nobody reads costs
/// money and a provider's capacity (RELIABILITY 13). Off is for callers who retry with an
/// `Idempotency-Key` or who want the provider's real usage recorded rather than an estimate.
pub const DEFAULT_CANCEL_ON_DISCONNECT: bool = true;
/// A client must send a whole request head within this time (HAProxy's `timeout
/// http-request` is commonly 10 s); hyper's timer for it also bounds the wait for the next
/// request on a kept-alive HTTP/1 connection.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A client connection with nothing in progress is closed after this (nginx's HTTP/2 idle
/// default is 75 s); an HTTP/1 one usually sooner, by `header_read_timeout`.
pub const DEFAULT_CLIENT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// HTTP/2 PING interval and acknowledgement timeout: a peer gone without a FIN is noticed
/// within 40 s even while its streams are silent.
pub const DEFAULT_HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
pub const DEFAULT_HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Request-head limits, Envoy's defaults (RELIABILITY 20): more header fields than
/// [`MAX_HEADERS`], or a head over [`MAX_HEAD_BYTES`], gets 431. HTTP/1: hyper counts the
/// fields and the head's bytes from the request line to its blank line (`server`). HTTP/2:
/// the `h2` crate counts the header list as RFC 9113 §6.5.2 does (each field's name and value
/// plus 32 bytes, pseudo-headers included; `server`), and `app` counts the fields.
pub const MAX_HEADERS: usize = 100;
pub const MAX_HEAD_BYTES: usize = 60 * 1024;
/// The upper bound on `[server] busy_poll`: past a few hundred microseconds the wake it saves
/// is small beside the CPU it spends (see `busy_poll`).
pub const MAX_BUSY_POLL: Duration = Duration::from_millis(10);
/// TCP + TLS connect to a provider.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Until the provider's response headers (non-streaming: the whole generation may happen
/// before them, and reasoning models can think for minutes).
pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(600);
/// Between two chunks of a provider's body. There is deliberately no total deadline.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// The validated configuration, immutable once built (hot reload swaps whole configs).
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    /// In file order.
    pub providers: Vec<Arc<ProviderConfig>>,
    pub routes: Vec<Route>,
    /// `[routing]`: retries, attempts, backoff and outlier ejection.
    pub routing: RoutingSettings,
    pub teams: IndexMap<String, Team>,
    /// `[users.NAME]`: limits of end users (keys say which user they belong to).
    pub users: IndexMap<String, Policy>,
    /// `[projects.NAME]`: limits of projects.
    pub projects: IndexMap<String, Policy>,
    /// The built-in prices with the file's `[pricing]` overrides.
    pub pricing: Arc<crate::pricing::PriceTable>,
    pub redis: Option<RedisConfig>,
    /// Where budget alerts go besides the log.
    pub alert_webhook: Option<String>,
    /// Static virtual keys (`[[keys]]`); more live in the store.
    pub keys: Vec<StaticKey>,
    /// `[log]`: the request log's writer.
    pub log: LogSettings,
    /// `[traces]`: OpenTelemetry export (`None`: no traces).
    pub traces: Option<TracesConfig>,
    /// `[idempotency]`: replies kept for retries with an `Idempotency-Key`.
    pub idempotency: IdempotencySettings,
}

/// Where and how request traces are exported (OTLP/HTTP, protobuf).
#[derive(Debug, Clone, PartialEq)]
pub struct TracesConfig {
    pub endpoint: String,
    /// Sent with every export; marked sensitive, never logged.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub service_name: String,
    /// Share of requests traced that come without a parent's decision (0 to 1).
    pub sample: f64,
    /// Where the exporter may connect (`[server] allowed_private_upstreams`).
    pub egress: Arc<crate::egress::Policy>,
}

/// Which bodies a request's record keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum BodyLevel {
    #[default]
    Off,
    /// The client's request and the reply it got.
    Client,
    /// Also the provider request and raw response of the last attempt.
    All,
}

impl BodyLevel {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(Self::Off),
            "client" => Some(Self::Client),
            "all" => Some(Self::All),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Client => "client",
            Self::All => "all",
        }
    }
}

impl serde::Serialize for BodyLevel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for BodyLevel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown body level `{s}`: expected off, client or all"
            ))
        })
    }
}

/// 64 KiB per body by default: a long chat turn, or the head of an agent's context.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// The request log's writer.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// Records that may wait for the store; beyond it new ones are dropped and counted, so
    /// a stalled database costs at most this much memory (about 1 KB a record).
    pub queue: usize,
    /// Days request records and stored responses are kept; `None`: forever.
    pub retention_days: Option<u64>,
    /// Also write each request's record as a log line.
    pub requests: bool,
    /// Bodies kept in the records, unless a key or provider says otherwise.
    pub bodies: BodyLevel,
    /// Bytes kept of each body.
    pub body_limit: usize,
    /// Some provider keeps bodies of its own accord (`log_bodies` above off).
    pub provider_bodies: bool,
    /// Takes this config's secrets (and credential-shaped strings) out of kept bodies.
    pub redactor: Arc<Redactor>,
}

/// 10,000 records: about 10 MB, several seconds of heavy traffic while the store stalls.
pub const DEFAULT_LOG_QUEUE: usize = 10_000;
/// 90 days: a quarter of history for reports, with the log kept to a bounded size.
pub const DEFAULT_RETENTION_DAYS: u64 = 90;
/// Budgets rebuild a month's spend from the records (a Redis restart), so a shorter
/// retention would forget spend they still count.
pub const MIN_RETENTION_DAYS: u64 = 32;

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            queue: DEFAULT_LOG_QUEUE,
            retention_days: Some(DEFAULT_RETENTION_DAYS),
            requests: false,
            bodies: BodyLevel::Off,
            body_limit: DEFAULT_BODY_LIMIT,
            provider_bodies: false,
            redactor: Default::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub admin_token: Option<Secret>,
    pub max_body_bytes: u64,
    /// The in-flight and buffered-body bounds, and the body read timeout.
    pub overload: Overload,
    pub drain_timeout: Duration,
    pub stream_keepalive: Duration,
    /// A client that leaves before its reply was sent cancels the request, and with it the
    /// provider call (RELIABILITY 13). Off: the request runs on to its reply (the provider
    /// answers; its usage is charged and recorded) and holds its place in flight until then;
    /// a stream being relayed still stops when its client leaves (`pipeline::detach`).
    pub cancel_on_disconnect: bool,
    /// Poll for I/O this long after each request instead of sleeping at once (`busy_poll`);
    /// zero is off.
    pub busy_poll: Duration,
    /// With no client keys: the `Host` names, besides loopback addresses and `localhost`,
    /// that requests may carry (lowercase, without a port).
    pub allowed_hosts: Vec<String>,
    /// With no client keys: the browser origins (`scheme://host[:port]`, lowercase), besides
    /// loopback ones, that requests may come from.
    pub allowed_origins: Vec<String>,
    /// What a client connection may hold, and for how long (`server::edge`).
    pub connections: ConnectionLimits,
    /// `allowed_private_upstreams`: where outbound connections may go besides public and
    /// loopback addresses (`crate::egress`).
    pub egress: Arc<crate::egress::Policy>,
}

/// `[server]` `header_read_timeout`, `idle_timeout`, `http2_keepalive_*`, `max_connections`:
/// read when the server starts (a reload that changes them says a restart applies them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From accept to a whole HTTP/1 request head (or the HTTP/2 connection preface), and
    /// between two requests on a kept-alive HTTP/1 connection.
    pub header_read_timeout: Duration,
    /// A connection with no request in progress for this long is closed (HTTP/2: GOAWAY).
    pub idle_timeout: Duration,
    /// HTTP/2 PING this often; no acknowledgement within the timeout closes the connection.
    pub http2_keepalive_interval: Duration,
    pub http2_keepalive_timeout: Duration,
    /// Open client connections at most; `None`: derived from the open-file limit at start
    /// (`server::edge::default_max_connections`).
    pub max_connections: Option<usize>,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_CLIENT_IDLE_TIMEOUT,
            http2_keepalive_interval: DEFAULT_HTTP2_KEEPALIVE_INTERVAL,
            http2_keepalive_timeout: DEFAULT_HTTP2_KEEPALIVE_TIMEOUT,
            max_connections: None,
        }
    }
}

/// `[server]`'s overload bounds (RELIABILITY 21): past them a request is refused at once with
/// 503 and `Retry-After` (`pipeline::shed`), and a body that does not arrive in time gets 408.
#[derive(Debug, Clone, Copy)]
pub struct Overload {
    /// Inference requests being served at once, each from its head to the end of its reply.
    pub max_in_flight: usize,
    /// Bytes of request bodies being read or held by requests in flight, all together.
    pub max_buffered_body_bytes: u64,
    /// A request's whole body must arrive within this time of its head.
    pub body_read_timeout: Duration,
}

/// 1,024 requests at once (Envoy's default `max_requests` per cluster): each holds a task, a
/// provider connection and its body, so a flood past it is refused instead of queued.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;
/// 512 MiB of request bodies at once: 16 bodies at the default `max_body_bytes`, or about a
/// thousand typical coding-agent requests of half a megabyte.
pub const DEFAULT_MAX_BUFFERED_BODY_BYTES: u64 = 512 * 1024 * 1024;
/// 30 s for a whole body: 32 MiB needs about 9 Mbit/s; a trickle cannot hold a slot longer.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for Overload {
    fn default() -> Self {
        Self {
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_buffered_body_bytes: DEFAULT_MAX_BUFFERED_BODY_BYTES,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
        }
    }
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub url: String,
    /// Longest one store call may take before it fails (RELIABILITY 26); also Postgres'
    /// `statement_timeout` and the pool's acquire timeout.
    pub timeout: Duration,
}

/// Default of `[store] timeout`.
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(5);
/// The range `[store] timeout` may take.
pub const STORE_TIMEOUT_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(10)..=Duration::from_secs(300);

/// Default time one Redis operation may take before Redis counts as down (RELIABILITY 7).
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(200);

/// `[redis]`: budget and rate-limit counters shared by every instance.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub url: Secret,
    pub timeout: Duration,
    pub prefix: String,
}

/// A model-name glob (`claude-*`), kept with its source text.
#[derive(Debug, Clone)]
pub struct ModelPattern {
    pub pattern: String,
    matcher: GlobMatcher,
    /// The common shapes, matched without the glob engine (which builds a candidate, an
    /// allocation, per match): routing tests every rule's patterns on every request.
    shape: Shape,
}

#[derive(Debug, Clone)]
enum Shape {
    Any,
    Exact,
    /// `text*`
    Prefix(String),
    /// `*text`
    Suffix(String),
    Glob,
}

impl ModelPattern {
    pub fn new(pattern: &str) -> Result<Self, String> {
        let matcher = Glob::new(pattern)
            .map_err(|e| e.kind().to_string())?
            .compile_matcher();
        let plain = |t: &str| !t.contains(['*', '?', '[', ']', '{', '}', '\\']);
        let shape = if pattern == "*" {
            Shape::Any
        } else if plain(pattern) {
            Shape::Exact
        } else if let Some(p) = pattern.strip_suffix('*').filter(|p| plain(p)) {
            Shape::Prefix(p.to_owned())
        } else if let Some(s) = pattern.strip_prefix('*').filter(|s| plain(s)) {
            Shape::Suffix(s.to_owned())
        } else {
            Shape::Glob
        };
        Ok(Self {
            pattern: pattern.to_owned(),
            matcher,
            shape,
        })
    }

    pub fn matches(&self, model: &str) -> bool {
        match &self.shape {
            Shape::Any => true,
            Shape::Exact => model == self.pattern,
            Shape::Prefix(p) => model.starts_with(p.as_str()),
            Shape::Suffix(s) => model.ends_with(s.as_str()),
            Shape::Glob => self.matcher.is_match(model),
        }
    }

    /// A pattern without wildcards names exactly one model (listed by `/v1/models`).
    pub fn literal(&self) -> Option<&str> {
        (!self.pattern.contains(['*', '?', '[', '{'])).then_some(self.pattern.as_str())
    }
}

impl Config {
    pub fn provider(&self, name: &str) -> Option<&Arc<ProviderConfig>> {
        self.providers.iter().find(|p| p.name == name)
    }
}

/// Read and validate a config file.
pub fn load(path: &Path, env: &dyn Env) -> Result<Config, Vec<ConfigError>> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError {
            file: file.clone(),
            line: 0,
            col: 0,
            message: format!("cannot read: {e}"),
        }]
    })?;
    parse(&file, &text, env)
}

/// The embedded default (SPEC §1): loopback, SQLite file, one provider per API key found in the
/// environment, plus `GATEHOUSE_OPENAI_COMPATIBLE_URL`. Written as a TOML document with
/// `${VAR}` references so that it is validated exactly like a user's file.
pub fn embedded_default(env: &dyn Env) -> Result<Config, Vec<ConfigError>> {
    parse("<embedded default>", &embedded_default_text(env), env)
}

pub fn embedded_default_text(env: &dyn Env) -> String {
    let mut text = format!(
        "[server]\nlisten = \"{DEFAULT_LISTEN}\"\n\n[store]\nurl = \"{DEFAULT_STORE_URL}\"\n"
    );
    for (var, name, kind) in [
        ("OPENAI_API_KEY", "openai", ProviderKind::OpenAi),
        ("MISTRAL_API_KEY", "mistral", ProviderKind::Mistral),
        ("ANTHROPIC_API_KEY", "anthropic", ProviderKind::Anthropic),
        ("GEMINI_API_KEY", "gemini", ProviderKind::Gemini),
    ] {
        if env.var(var).is_some_and(|v| !v.is_empty()) && kind.implemented() {
            text.push_str(&format!(
                "\n[providers.{name}]\nkind = \"{}\"\napi_key = \"${{{var}}}\"\n",
                kind.as_str()
            ));
        }
    }
    if env
        .var("GATEHOUSE_OPENAI_COMPATIBLE_URL")
        .is_some_and(|v| !v.is_empty())
    {
        text.push_str(
            "\n[providers.local]\nkind = \"openai-compatible\"\nbase_url = \"${GATEHOUSE_OPENAI_COMPATIBLE_URL}\"\n",
        );
        if env.var("GATEHOUSE_OPENAI_COMPATIBLE_KEY").is_some() {
            text.push_str("api_key = \"${GATEHOUSE_OPENAI_COMPATIBLE_KEY}\"\n");
        }
    }
    text
}

/// Parse and validate config text; `file` names it in errors.
pub fn parse(file: &str, text: &str, env: &dyn Env) -> Result<Config, Vec<ConfigError>> {
    let mut src = Source::new(file, text, env);

    // 1. Syntax: report every error the parser can recover from.
    let (doc, syntax) = toml::de::DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        for e in syntax {
            let offset = e.span().map_or(0, |s| s.start);
            src.error_at(offset, e.message().to_owned());
        }
        return Err(src.errors);
    }

    // 2. Shape: serde, collecting every unknown key with its position.
    let mut unknown = Vec::new();
    let raw: Result<RawConfig, _> = toml::de::Deserializer::parse(text)
        .map_err(|e| vec![e])
        .and_then(|de| {
            serde_ignored::deserialize(de, |path| unknown.push(source::segments(&path)))
                .map_err(|e| vec![e])
        });
    for path in &unknown {
        let offset = source::key_offset(doc.get_ref(), path).unwrap_or(0);
        let name = path
            .iter()
            .map(|s| match s {
                source::Segment::Key(k) => k.clone(),
                source::Segment::Index(i) => i.to_string(),
            })
            .collect::<Vec<_>>()
            .join(".");
        src.error_at(offset, format!("unknown key `{name}`"));
    }
    let raw = match raw {
        Ok(raw) => raw,
        Err(errs) => {
            for e in errs {
                let offset = e.span().map_or(0, |s| s.start);
                src.error_at(offset, e.message().to_owned());
            }
            src.errors.sort_by_key(|e| (e.line, e.col));
            return Err(src.errors);
        }
    };

    // 3. Meaning.
    let config = validate(&mut src, raw);
    if src.errors.is_empty() {
        Ok(config)
    } else {
        src.errors.sort_by_key(|e| (e.line, e.col));
        Err(src.errors)
    }
}

fn validate(src: &mut Source<'_>, raw: RawConfig) -> Config {
    let server = server_settings(src, &raw.server);
    let store = StoreConfig {
        url: raw
            .store
            .url
            .as_ref()
            .map_or_else(|| DEFAULT_STORE_URL.to_owned(), |v| src.expand(v)),
        timeout: store_timeout(src, raw.store.timeout.as_ref()),
    };
    if !(store.url.starts_with("sqlite:") || store.url.starts_with("postgres"))
        && let Some(v) = &raw.store.url
    {
        src.error(
            &v.span(),
            "store.url must start with `sqlite:` or `postgres://`",
        );
    }

    let mut providers = Vec::new();
    for (name, p) in &raw.providers {
        if let Some(pc) = validate_provider(src, name, p, &raw, &server.egress) {
            providers.push(Arc::new(pc));
        }
    }
    let routes = raw
        .routes
        .iter()
        .enumerate()
        .filter_map(|(i, r)| validate_route(src, i, r, &raw))
        .collect();
    let routing = routes::settings(src, &raw.routing);

    let mut target = |src: &mut Source<'_>, t: &Str| parse_target(src, t, &raw);
    let teams = governance::teams(src, &raw.teams, &mut target);
    let keys = governance::keys(src, &raw.keys, &teams, &mut target);
    let users = policy::members(src, &raw.users, &mut target);
    let projects = policy::members(src, &raw.projects, &mut target);
    let pricing = pricing(src, &raw.pricing);
    let redis = redis_settings(src, raw.redis.as_ref());
    let alert_webhook = raw.alerts.webhook.as_ref().map(|w| {
        let url = src.expand(w);
        if let Err(msg) = check_outbound_url(&url, &server.egress) {
            src.error(&w.span(), format!("invalid alerts.webhook: {msg}"));
        }
        url
    });
    let mut secrets = config_secrets(server.admin_token.as_ref(), &providers, &keys);
    for (_, v) in raw.traces.iter().flat_map(|t| t.headers.iter().flatten()) {
        secrets.extend(credential(&src.expand(v)));
    }
    secrets.extend(redis.iter().map(|r| r.url.clone()));
    secrets.extend(alert_webhook.iter().map(|w| Secret::new(w.as_str())));
    let log = log_settings(src, &raw.log, &providers, secrets);
    // Logs, metrics, traces and provider text hide this config's secrets from now on.
    redact::publish(log.redactor.secrets());
    let idempotency = idempotency::settings(src, raw.idempotency.as_ref());
    let traces = raw
        .traces
        .as_ref()
        .map(|t| traces_settings(src, t, &server.egress));
    Config {
        log,
        traces,
        idempotency,
        teams,
        keys,
        users,
        projects,
        pricing,
        redis,
        alert_webhook,
        server,
        store,
        providers,
        routes,
        routing,
    }
}

/// `[server]`.
fn server_settings(src: &mut Source<'_>, raw: &raw::RawServer) -> ServerConfig {
    let listen = match &raw.listen {
        Some(v) => {
            let s = src.expand(v);
            s.parse().unwrap_or_else(|_| {
                src.error(
                    &v.span(),
                    format!("invalid listen address `{}`: expected IP:PORT", v.get_ref()),
                );
                default_listen()
            })
        }
        None => default_listen(),
    };
    let admin_token = raw.admin_token.as_ref().map(|v| Secret::new(src.expand(v)));
    let max_body_bytes = match &raw.max_body_bytes {
        Some(v) if *v.get_ref() == 0 => {
            src.error(&v.span(), "max_body_bytes must be greater than 0");
            DEFAULT_MAX_BODY_BYTES
        }
        Some(v) => *v.get_ref(),
        None => DEFAULT_MAX_BODY_BYTES,
    };
    let drain_timeout = raw
        .drain_timeout
        .as_ref()
        .and_then(|v| src.duration(v))
        .unwrap_or(DEFAULT_DRAIN_TIMEOUT);
    let stream_keepalive = raw
        .stream_keepalive
        .as_ref()
        .and_then(|v| src.duration(v))
        .unwrap_or(DEFAULT_STREAM_KEEPALIVE);
    let busy_poll = match &raw.busy_poll {
        Some(v) => match src.duration(v) {
            Some(d) if d > MAX_BUSY_POLL => {
                let max = MAX_BUSY_POLL;
                src.error(&v.span(), format!("busy_poll must be at most {max:?}"));
                Duration::ZERO
            }
            d => d.unwrap_or_default(),
        },
        None => Duration::ZERO,
    };
    let mut allowed_hosts = Vec::new();
    for v in raw.allowed_hosts.iter().flatten() {
        let h = src.expand(v).to_ascii_lowercase();
        if h.is_empty() || h.contains(['/', ' ', '*']) {
            src.error(
                &v.span(),
                format!("invalid allowed_hosts entry `{}`: expected a host name or address, without a scheme or path", v.get_ref()),
            );
        } else {
            allowed_hosts.push(h);
        }
    }
    let mut allowed_origins = Vec::new();
    for v in raw.allowed_origins.iter().flatten() {
        let o = src.expand(v).to_ascii_lowercase();
        let well_formed = o == "null"
            || o.split_once("://").is_some_and(|(scheme, rest)| {
                !scheme.is_empty() && !rest.is_empty() && !rest.contains(['/', ' ', '*'])
            });
        if well_formed {
            allowed_origins.push(o);
        } else {
            src.error(
                &v.span(),
                format!("invalid allowed_origins entry `{}`: expected an origin such as `https://app.example.com` or `http://localhost:3000`", v.get_ref()),
            );
        }
    }
    ServerConfig {
        listen,
        admin_token,
        max_body_bytes,
        overload: overload_settings(src, raw, max_body_bytes),
        drain_timeout,
        stream_keepalive,
        cancel_on_disconnect: raw
            .cancel_on_disconnect
            .unwrap_or(DEFAULT_CANCEL_ON_DISCONNECT),
        busy_poll,
        allowed_hosts,
        allowed_origins,
        connections: connection_limits(src, raw),
        egress: providers::egress_policy(src, raw.allowed_private_upstreams.as_ref()),
    }
}

/// `[server]`'s connection settings: every duration above zero, `max_connections` at least 1.
fn connection_limits(src: &mut Source<'_>, raw: &raw::RawServer) -> ConnectionLimits {
    let mut duration = |v: &Option<raw::Str>, name: &str, default: Duration| match v {
        Some(v) => match src.duration(v) {
            Some(d) if d.is_zero() => {
                src.error(&v.span(), format!("{name} must be greater than 0"));
                default
            }
            d => d.unwrap_or(default),
        },
        None => default,
    };
    let header_read_timeout = duration(
        &raw.header_read_timeout,
        "header_read_timeout",
        DEFAULT_HEADER_READ_TIMEOUT,
    );
    let idle_timeout = duration(
        &raw.idle_timeout,
        "idle_timeout",
        DEFAULT_CLIENT_IDLE_TIMEOUT,
    );
    let http2_keepalive_interval = duration(
        &raw.http2_keepalive_interval,
        "http2_keepalive_interval",
        DEFAULT_HTTP2_KEEPALIVE_INTERVAL,
    );
    let http2_keepalive_timeout = duration(
        &raw.http2_keepalive_timeout,
        "http2_keepalive_timeout",
        DEFAULT_HTTP2_KEEPALIVE_TIMEOUT,
    );
    let max_connections = match &raw.max_connections {
        Some(v) if *v.get_ref() == 0 => {
            src.error(&v.span(), "max_connections must be at least 1");
            None
        }
        Some(v) => Some(usize::try_from(*v.get_ref()).unwrap_or(usize::MAX)),
        None => None,
    };
    ConnectionLimits {
        header_read_timeout,
        idle_timeout,
        http2_keepalive_interval,
        http2_keepalive_timeout,
        max_connections,
    }
}

/// `[server]`'s overload bounds (see [`Overload`]).
fn overload_settings(src: &mut Source<'_>, raw: &raw::RawServer, max_body_bytes: u64) -> Overload {
    let mut o = Overload::default();
    if let Some(v) = &raw.max_in_flight {
        match usize::try_from(*v.get_ref()) {
            Ok(n) if n > 0 => o.max_in_flight = n,
            _ => src.error(&v.span(), "max_in_flight must be greater than 0"),
        }
    }
    if let Some(v) = &raw.max_buffered_body_bytes {
        o.max_buffered_body_bytes = *v.get_ref();
    }
    if o.max_buffered_body_bytes < max_body_bytes {
        let span = raw
            .max_buffered_body_bytes
            .as_ref()
            .map(toml::Spanned::span);
        let msg = format!(
            "max_buffered_body_bytes ({}) must be at least max_body_bytes ({max_body_bytes}), \
             or a body of the largest size allowed could never be read",
            o.max_buffered_body_bytes
        );
        match (span, &raw.max_body_bytes) {
            (Some(span), _) => src.error(&span, msg),
            (None, Some(v)) => src.error(&v.span(), msg),
            (None, None) => {}
        }
    }
    if let Some(v) = &raw.body_read_timeout {
        match src.duration(v) {
            Some(d) if d.is_zero() => {
                src.error(&v.span(), "body_read_timeout must be greater than 0")
            }
            Some(d) => o.body_read_timeout = d,
            None => {}
        }
    }
    o
}

/// The built-in price table with the `[pricing]` overrides, each checked against it.
fn pricing(
    src: &mut Source<'_>,
    raw: &IndexMap<String, toml::Spanned<crate::pricing::ModelOverride>>,
) -> Arc<crate::pricing::PriceTable> {
    let builtin = crate::pricing::PriceTable::builtin();
    for (model, entry) in raw {
        if let Err(e) = entry.get_ref().apply(builtin.builtin_entry(model)) {
            src.error(&entry.span(), format!("pricing.\"{model}\": {e}"));
        }
    }
    Arc::new(
        builtin.with_overrides(
            raw.iter()
                .map(|(m, p)| (m.clone(), p.get_ref().clone()))
                .collect(),
        ),
    )
}

/// `[store] timeout`: a duration within [`STORE_TIMEOUT_RANGE`].
fn store_timeout(src: &mut Source<'_>, raw: Option<&raw::Str>) -> Duration {
    let Some(v) = raw else {
        return DEFAULT_STORE_TIMEOUT;
    };
    match src.duration(v) {
        Some(d) if STORE_TIMEOUT_RANGE.contains(&d) => d,
        Some(_) => {
            src.error(
                &v.span(),
                "store.timeout must be between 10ms and 300s (it bounds every store call a request waits on)",
            );
            DEFAULT_STORE_TIMEOUT
        }
        None => DEFAULT_STORE_TIMEOUT,
    }
}

/// `[redis]`.
fn redis_settings(src: &mut Source<'_>, raw: Option<&raw::RawRedis>) -> Option<RedisConfig> {
    let redis = raw.map(|r| RedisConfig {
        url: Secret::new(src.expand(&r.url)),
        timeout: r
            .timeout
            .as_ref()
            .and_then(|t| src.duration(t))
            .unwrap_or(DEFAULT_REDIS_TIMEOUT),
        prefix: r
            .prefix
            .as_ref()
            .map_or_else(|| "gatehouse".to_owned(), |p| src.expand(p)),
    });
    if let Some(r) = raw
        && !(r.url.get_ref().starts_with("redis://")
            || r.url.get_ref().starts_with("rediss://")
            || r.url.get_ref().starts_with("${"))
    {
        src.error(
            &r.url.span(),
            "redis.url must start with redis:// or rediss://",
        );
    }
    redis
}

/// `[log]`; `secrets` are what its redactor hides.
fn log_settings(
    src: &mut Source<'_>,
    raw: &raw::RawLog,
    providers: &[Arc<ProviderConfig>],
    secrets: Vec<Secret>,
) -> LogSettings {
    let mut log = LogSettings::default();
    if let Some(q) = &raw.queue {
        match usize::try_from(*q.get_ref()) {
            Ok(n) if n >= 1 => log.queue = n,
            _ => src.error(&q.span(), "log.queue must be at least 1"),
        }
    }
    log.requests = raw.requests.unwrap_or(false);
    log.bodies = body_level(src, raw.bodies.as_ref()).unwrap_or_default();
    if let Some(l) = &raw.body_limit {
        match usize::try_from(*l.get_ref()) {
            Ok(n) if (256..=MAX_BODY_LIMIT).contains(&n) => log.body_limit = n,
            _ => src.error(
                &l.span(),
                format!("log.body_limit must be between 256 and {MAX_BODY_LIMIT} bytes"),
            ),
        }
    }
    log.provider_bodies = providers
        .iter()
        .any(|p| p.log_bodies.is_some_and(|l| l > BodyLevel::Off));
    log.redactor = Arc::new(Redactor::new(secrets));
    if let Some(d) = &raw.retention_days {
        match *d.get_ref() {
            0 => log.retention_days = None,
            n if n < MIN_RETENTION_DAYS => src.error(
                &d.span(),
                format!("log.retention_days must be 0 (forever) or at least {MIN_RETENTION_DAYS}: monthly budgets are rebuilt from a month of records"),
            ),
            n => log.retention_days = Some(n),
        }
    }
    log
}

/// `[traces]`.
fn traces_settings(
    src: &mut Source<'_>,
    t: &raw::RawTraces,
    egress: &Arc<crate::egress::Policy>,
) -> TracesConfig {
    let endpoint = src.expand(&t.endpoint);
    if let Err(msg) = check_outbound_url(&endpoint, egress) {
        src.error(
            &t.endpoint.span(),
            format!("invalid traces.endpoint: {msg}"),
        );
    }
    let headers = providers::header_list(src, t.headers.as_ref());
    let sample = match &t.sample {
        Some(s) if !(0.0..=1.0).contains(s.get_ref()) => {
            src.error(&s.span(), "traces.sample must be between 0 and 1");
            1.0
        }
        Some(s) => *s.get_ref(),
        None => 1.0,
    };
    TracesConfig {
        endpoint,
        headers,
        service_name: t
            .service_name
            .as_ref()
            .map_or_else(|| "gatehouse".to_owned(), |s| src.expand(s)),
        sample,
        egress: Arc::clone(egress),
    }
}

/// 16 MiB: the largest body kept (a whole long-context request).
pub const MAX_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// `off`, `client` or `all`.
pub(super) fn body_level(src: &mut Source<'_>, v: Option<&Str>) -> Option<BodyLevel> {
    let v = v?;
    let level = BodyLevel::parse(v.get_ref());
    if level.is_none() {
        src.error(
            &v.span(),
            format!(
                "unknown body level `{}`: expected off, client or all",
                v.get_ref()
            ),
        );
    }
    level
}

/// Every secret of the config, for the redaction of kept bodies.
fn config_secrets(
    admin_token: Option<&Secret>,
    providers: &[Arc<ProviderConfig>],
    keys: &[StaticKey],
) -> Vec<Secret> {
    let mut out: Vec<Secret> = admin_token.cloned().into_iter().collect();
    for p in providers {
        out.extend(p.secrets().into_iter().cloned());
        // A header the operator adds that carries a credential (a proxy's key, a token).
        for (name, value) in &p.headers {
            let n = name.as_str();
            if (n.contains("auth")
                || n.contains("key")
                || n.contains("token")
                || n.contains("secret"))
                && let Ok(v) = value.to_str()
            {
                out.extend(credential(v));
            }
        }
    }
    out.extend(keys.iter().map(|k| k.key.clone()));
    out
}

/// A header value that carries a credential, whole and without its scheme (`Bearer x`
/// is also found as `x`).
fn credential(v: &str) -> Vec<Secret> {
    let mut out = vec![Secret::new(v)];
    if let Some((_, cred)) = v.split_once(' ') {
        out.push(Secret::new(cred.trim()));
    }
    out
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

#[cfg(test)]
mod tests;
