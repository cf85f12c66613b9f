//! Configuration: the TOML file of SPEC §2, read raw first and validated second (STYLE §4.9).
//!
//! `load`/`parse` turn text into a validated [`Config`] or into *every* [`ConfigError`] found,
//! each with `file:line:col`: syntax errors, unknown keys (all of them, via `serde_ignored`),
//! type errors, missing `${VAR}`s and semantic errors (unknown provider in a target, bad URL).
//! Without a file, [`embedded_default`] builds the same document from the environment, so the
//! default goes through the one validation path.
//!
//! Defaults are the `DEFAULT_*` consts below, each with its reason.

mod governance;
mod policy;
mod raw;
mod routes;
mod secret;
mod source;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use globset::{Glob, GlobMatcher};
use http::{HeaderName, HeaderValue, Uri};
use indexmap::IndexMap;

pub use governance::{MIN_STATIC_KEY_LEN, StaticKey, Team};
pub use policy::{
    Budget, BudgetUnit, NANOS_PER_USD, OnExhausted, Period, Policy, RateLimit, StoredBudget,
    StoredPolicy,
};
pub use routes::{
    Balance, MAX_ATTEMPTS, Mirror, Route, RouteAction, RouteConditions, RoutingSettings, Sticky,
    Target, Weighted,
};
pub use secret::Secret;
pub use source::{ConfigError, Env, ProcessEnv, parse_duration};

use crate::schema::ReasoningEffort;
use raw::{RawConfig, RawProvider, Str};
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
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub admin_token: Option<Secret>,
    pub max_body_bytes: u64,
    pub drain_timeout: Duration,
    pub stream_keepalive: Duration,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub url: String,
}

/// Default time one Redis operation may take before Redis counts as down (RELIABILITY 7).
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(200);

/// `[redis]`: budget and rate-limit counters shared by every instance.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub url: Secret,
    pub timeout: Duration,
    pub prefix: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    OpenAi,
    OpenAiCompatible,
    Mistral,
    Anthropic,
    Gemini,
    Bedrock,
    AzureOpenAi,
}

impl ProviderKind {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "openai" => Self::OpenAi,
            "openai-compatible" => Self::OpenAiCompatible,
            "mistral" => Self::Mistral,
            "anthropic" => Self::Anthropic,
            "gemini" => Self::Gemini,
            "bedrock" => Self::Bedrock,
            "azure-openai" => Self::AzureOpenAi,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::OpenAiCompatible => "openai-compatible",
            Self::Mistral => "mistral",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
            Self::Bedrock => "bedrock",
            Self::AzureOpenAi => "azure-openai",
        }
    }

    /// Kinds this build has an adapter for.
    pub fn implemented(self) -> bool {
        matches!(
            self,
            Self::OpenAi | Self::OpenAiCompatible | Self::Mistral | Self::Anthropic
        )
    }

    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            Self::OpenAi => Some("https://api.openai.com/v1"),
            Self::Mistral => Some("https://api.mistral.ai/v1"),
            Self::Anthropic => Some("https://api.anthropic.com"),
            Self::Gemini => Some("https://generativelanguage.googleapis.com"),
            Self::OpenAiCompatible | Self::Bedrock | Self::AzureOpenAi => None,
        }
    }

    /// Model names a provider of this kind serves when its config lists none.
    pub fn default_models(self) -> &'static [&'static str] {
        match self {
            Self::OpenAi | Self::AzureOpenAi => &[
                "gpt-*",
                "o1*",
                "o3*",
                "o4*",
                "chatgpt-*",
                "codex-*",
                "text-embedding-*",
                "omni-moderation-*",
            ],
            Self::Mistral => &[
                "mistral-*",
                "devstral-*",
                "codestral-*",
                "magistral-*",
                "ministral-*",
                "pixtral-*",
                "open-mistral-*",
                "open-mixtral-*",
                "voxtral-*",
            ],
            Self::Anthropic => &["claude-*"],
            Self::Gemini => &["gemini-*", "gemma-*"],
            Self::Bedrock => &[],
            // A self-hosted server serves whatever it has loaded: it takes every name that no
            // other provider claims.
            Self::OpenAiCompatible => &["*"],
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: ProviderKind,
    /// Without a trailing slash, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    pub api_keys: Vec<Secret>,
    /// Weight of each of `api_keys` (1 unless written).
    pub key_weights: Vec<u32>,
    /// How requests spread over `api_keys`.
    pub balance: Balance,
    pub models: Vec<ModelPattern>,
    pub timeouts: Timeouts,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Per-model accepted reasoning-effort levels, consulted before the adapter's own table.
    pub reasoning_effort: Vec<(GlobMatcher, Vec<ReasoningEffort>)>,
    /// Provider-wide caps: when one is spent, routing skips this provider.
    pub budgets: Vec<Budget>,
}

impl ProviderConfig {
    pub fn serves(&self, model: &str) -> bool {
        self.models.iter().any(|m| m.matches(model))
    }

    /// True when this provider only serves models by catch-all (`*`), so named providers win.
    pub fn is_catch_all(&self) -> bool {
        self.models.iter().any(|m| m.pattern == "*")
    }

    pub fn reasoning_levels_for(&self, model: &str) -> Option<&[ReasoningEffort]> {
        self.reasoning_effort
            .iter()
            .find(|(g, _)| g.is_match(model))
            .map(|(_, levels)| levels.as_slice())
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: DEFAULT_CONNECT_TIMEOUT,
            first_byte: DEFAULT_FIRST_BYTE_TIMEOUT,
            idle: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// A model-name glob (`claude-*`), kept with its source text.
#[derive(Debug, Clone)]
pub struct ModelPattern {
    pub pattern: String,
    matcher: GlobMatcher,
}

impl ModelPattern {
    pub fn new(pattern: &str) -> Result<Self, String> {
        let matcher = Glob::new(pattern)
            .map_err(|e| e.kind().to_string())?
            .compile_matcher();
        Ok(Self {
            pattern: pattern.to_owned(),
            matcher,
        })
    }

    pub fn matches(&self, model: &str) -> bool {
        self.matcher.is_match(model)
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
    let listen = match &raw.server.listen {
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
    let admin_token = raw
        .server
        .admin_token
        .as_ref()
        .map(|v| Secret::new(src.expand(v)));
    let max_body_bytes = match &raw.server.max_body_bytes {
        Some(v) if *v.get_ref() == 0 => {
            src.error(&v.span(), "max_body_bytes must be greater than 0");
            DEFAULT_MAX_BODY_BYTES
        }
        Some(v) => *v.get_ref(),
        None => DEFAULT_MAX_BODY_BYTES,
    };
    let drain_timeout = raw
        .server
        .drain_timeout
        .as_ref()
        .and_then(|v| src.duration(v))
        .unwrap_or(DEFAULT_DRAIN_TIMEOUT);
    let stream_keepalive = raw
        .server
        .stream_keepalive
        .as_ref()
        .and_then(|v| src.duration(v))
        .unwrap_or(DEFAULT_STREAM_KEEPALIVE);
    let store = StoreConfig {
        url: raw
            .store
            .url
            .as_ref()
            .map_or_else(|| DEFAULT_STORE_URL.to_owned(), |v| src.expand(v)),
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
        if let Some(pc) = validate_provider(src, name, p, &raw) {
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
    let pricing = Arc::new(
        crate::pricing::PriceTable::builtin().with_overrides(
            raw.pricing
                .iter()
                .map(|(m, p)| (m.clone(), p.get_ref().clone()))
                .collect(),
        ),
    );
    let redis = raw.redis.as_ref().map(|r| RedisConfig {
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
    if let Some(r) = &raw.redis
        && !(r.url.get_ref().starts_with("redis://")
            || r.url.get_ref().starts_with("rediss://")
            || r.url.get_ref().starts_with("${"))
    {
        src.error(
            &r.url.span(),
            "redis.url must start with redis:// or rediss://",
        );
    }
    let alert_webhook = raw.alerts.webhook.as_ref().map(|w| {
        let url = src.expand(w);
        if let Err(msg) = check_base_url(&url) {
            src.error(&w.span(), format!("invalid alerts.webhook: {msg}"));
        }
        url
    });

    Config {
        teams,
        keys,
        users,
        projects,
        pricing,
        redis,
        alert_webhook,
        server: ServerConfig {
            listen,
            admin_token,
            max_body_bytes,
            drain_timeout,
            stream_keepalive,
        },
        store,
        providers,
        routes,
        routing,
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn validate_provider(
    src: &mut Source<'_>,
    name: &str,
    p: &toml::Spanned<RawProvider>,
    raw: &RawConfig,
) -> Option<ProviderConfig> {
    let span = p.span();
    let p = p.get_ref();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        src.error(
            &span,
            format!("provider name `{name}` may only use letters, digits, `-` and `_`"),
        );
    }
    let kind_text = src.expand(&p.kind);
    let Some(kind) = ProviderKind::parse(&kind_text) else {
        src.error(
            &p.kind.span(),
            format!(
                "unknown provider kind `{}`: expected openai, anthropic, mistral, gemini, bedrock, azure-openai or openai-compatible",
                p.kind.get_ref()
            ),
        );
        return None;
    };
    if !kind.implemented() {
        src.error(
            &p.kind.span(),
            format!(
                "provider kind `{kind_text}` is not available in this version of Gatehouse yet"
            ),
        );
    }
    let base_url = match &p.base_url {
        Some(v) => {
            let url = src.expand(v);
            if let Err(msg) = check_base_url(&url) {
                src.error(
                    &v.span(),
                    format!("invalid base_url `{}`: {msg}", v.get_ref()),
                );
            }
            url.trim_end_matches('/').to_owned()
        }
        None => match kind.default_base_url() {
            Some(u) => u.to_owned(),
            None => {
                src.error(
                    &span,
                    format!("provider `{name}` of kind `{kind_text}` needs a base_url"),
                );
                String::new()
            }
        },
    };
    let mut api_keys = Vec::new();
    let mut key_weights = Vec::new();
    if let Some(k) = &p.api_key {
        api_keys.push(Secret::new(src.expand(k)));
        key_weights.push(1);
    }
    for item in p.api_keys.iter().flatten() {
        if let Some((k, weight)) = routes::weighted_text(src, item, "key") {
            api_keys.push(Secret::new(src.expand(&k)));
            key_weights.push(weight);
        }
    }
    if key_weights.len() > 1 && key_weights.iter().all(|w| *w == 0) {
        src.error(&span, "the api_keys' weights add up to 0");
    }
    let balance = routes::balance(src, p.balance.as_ref(), Balance::RoundRobin);
    if p.api_key.is_some() && p.api_keys.is_some() {
        src.error(&span, "set either api_key or api_keys, not both");
    }
    if api_keys.is_empty() && matches!(kind, ProviderKind::OpenAi | ProviderKind::Mistral) {
        src.error(&span, format!("provider `{name}` needs an api_key"));
    }
    let models = governance::model_list(src, &p.models).unwrap_or_else(|| {
        kind.default_models()
            .iter()
            .filter_map(|m| ModelPattern::new(m).ok())
            .collect()
    });
    let mut timeouts = Timeouts::default();
    if let Some(t) = &p.timeouts {
        if let Some(d) = t.connect.as_ref().and_then(|v| src.duration(v)) {
            timeouts.connect = d;
        }
        if let Some(d) = t.first_byte.as_ref().and_then(|v| src.duration(v)) {
            timeouts.first_byte = d;
        }
        if let Some(d) = t.idle.as_ref().and_then(|v| src.duration(v)) {
            timeouts.idle = d;
        }
    }
    let mut headers = Vec::new();
    for (k, v) in p.headers.iter().flatten() {
        let value = src.expand(v);
        match (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            (Ok(n), Ok(mut hv)) => {
                hv.set_sensitive(true);
                headers.push((n, hv));
            }
            _ => src.error(
                &v.span(),
                format!("invalid header `{k}`: not a valid header name or value"),
            ),
        }
    }
    let mut reasoning_effort = Vec::new();
    for (glob, levels) in p.reasoning_effort.iter().flatten() {
        let Ok(m) = Glob::new(glob).map(|g| g.compile_matcher()) else {
            src.error(
                &span,
                format!("invalid model pattern `{glob}` in reasoning_effort"),
            );
            continue;
        };
        let mut parsed = Vec::new();
        for l in levels {
            match ReasoningEffort::parse(l.get_ref()) {
                Some(e) => parsed.push(e),
                None => src.error(
                    &l.span(),
                    format!("unknown reasoning effort `{}`: expected none, minimal, low, medium, high, xhigh or max", l.get_ref()),
                ),
            }
        }
        parsed.sort();
        reasoning_effort.push((m, parsed));
    }
    let budgets = policy::budgets(
        src,
        &span,
        p.budget.as_ref(),
        policy::Holder::Provider,
        &mut |src, t| parse_target(src, t, raw),
    );
    Some(ProviderConfig {
        budgets,
        name: name.to_owned(),
        kind,
        base_url,
        api_keys,
        key_weights,
        balance,
        models,
        timeouts,
        headers,
        reasoning_effort,
    })
}

/// A provider URL must be absolute http(s) without credentials, query or fragment. The
/// messages never repeat the URL (it may carry an expanded secret).
fn check_base_url(url: &str) -> Result<(), &'static str> {
    let uri: Uri = url.parse().map_err(|_| "not a URL")?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err("it must start with http:// or https://"),
    }
    let Some(authority) = uri.authority() else {
        return Err("it has no host");
    };
    if authority.as_str().contains('@') {
        return Err("it must not contain credentials; use api_key");
    }
    if uri.query().is_some() || url.contains('#') {
        return Err("it must not contain a query or fragment");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
