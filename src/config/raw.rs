//! The configuration file as written: serde types with spans, before validation.
//!
//! Unknown keys are *not* rejected by serde here (`deny_unknown_fields` stops at the first);
//! `config::load` collects every ignored key with `serde_ignored` and reports each with its
//! position. Strings are `Spanned` so that validation errors (a missing `${VAR}`, an unknown
//! provider in a target) can name the line and column of the value.

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

pub type Str = Spanned<String>;

#[derive(Debug, Default, Deserialize)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub store: RawStore,
    /// In file order: the order decides which provider serves a model name when several could.
    #[serde(default)]
    pub providers: IndexMap<String, Spanned<RawProvider>>,
    #[serde(default)]
    pub routes: Vec<Spanned<RawRoute>>,
    #[serde(default)]
    pub teams: IndexMap<String, Spanned<RawTeam>>,
    #[serde(default)]
    pub keys: Vec<Spanned<RawKey>>,
    /// End users (`[users.NAME]`), named by keys: their own budgets and rate limits.
    #[serde(default)]
    pub users: IndexMap<String, Spanned<RawMember>>,
    /// Projects (`[projects.NAME]`), named by keys.
    #[serde(default)]
    pub projects: IndexMap<String, Spanned<RawMember>>,
    /// Model overrides: model name or glob -> USD per million tokens and output limits.
    #[serde(default)]
    pub pricing: IndexMap<String, Spanned<crate::pricing::ModelOverride>>,
    pub redis: Option<RawRedis>,
    #[serde(default)]
    pub alerts: RawAlerts,
    /// Retries, attempts, backoff and outlier ejection, for every route.
    #[serde(default)]
    pub routing: RawRouting,
    /// The request log's writer.
    #[serde(default)]
    pub log: RawLog,
    /// OpenTelemetry traces over OTLP/HTTP.
    pub traces: Option<RawTraces>,
    /// Replies kept for retries that carry an `Idempotency-Key`.
    pub idempotency: Option<RawIdempotency>,
}

#[derive(Debug, Deserialize)]
pub struct RawIdempotency {
    pub enabled: Option<bool>,
    pub ttl: Option<Str>,
    /// Bytes of kept replies in each instance's memory.
    pub memory: Option<Spanned<u64>>,
    pub max_reply_bytes: Option<Spanned<u64>>,
    /// `local` or `refuse`.
    pub redis_down: Option<Str>,
}

#[derive(Debug, Deserialize)]
pub struct RawTraces {
    /// Where spans are POSTed (OTLP/HTTP protobuf), e.g. `http://127.0.0.1:4318/v1/traces`.
    pub endpoint: Str,
    /// Headers sent with every export (an API key of the collector, say).
    pub headers: Option<IndexMap<String, Str>>,
    pub service_name: Option<Str>,
    /// Share of requests traced when the client sent no sampled `traceparent`.
    pub sample: Option<Spanned<f64>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawLog {
    /// How many records may wait for the store before new ones are dropped (and counted).
    pub queue: Option<Spanned<u64>>,
    /// Days request records and stored responses are kept (0: forever).
    pub retention_days: Option<Spanned<u64>>,
    /// Also write each request's record as a log line (`gatehouse::request`).
    pub requests: Option<bool>,
    /// Bodies kept in the records: off, client, all.
    pub bodies: Option<Str>,
    /// Bytes kept of each body.
    pub body_limit: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawRouting {
    pub max_attempts: Option<Spanned<u32>>,
    pub retry_budget: Option<RawRetryBudget>,
    pub backoff: Option<RawBackoff>,
    pub outlier: Option<RawOutlier>,
    /// How long a provider key that got 429 without `Retry-After` rests.
    pub key_cooldown: Option<Str>,
}

#[derive(Debug, Deserialize)]
pub struct RawRetryBudget {
    pub percent: Option<Spanned<u32>>,
    pub min: Option<u32>,
}

#[derive(Debug, Deserialize)]
pub struct RawBackoff {
    pub base: Option<Str>,
    pub max: Option<Str>,
}

#[derive(Debug, Deserialize)]
pub struct RawOutlier {
    pub consecutive_failures: Option<Spanned<u32>>,
    pub ejection: Option<Str>,
    pub max_ejection: Option<Str>,
    pub max_ejection_percent: Option<Spanned<u32>>,
}

/// A user or project: limits only (membership is on the keys).
#[derive(Debug, Default, Deserialize)]
pub struct RawMember {
    pub budget: Option<OneOrMany<RawBudget>>,
    pub rate_limit: Option<Spanned<RawRateLimit>>,
}

#[derive(Debug, Deserialize)]
pub struct RawRedis {
    pub url: Str,
    /// How long one Redis operation may take before the gateway treats Redis as down.
    pub timeout: Option<Str>,
    /// Prefix of every key Gatehouse writes (several deployments may share one Redis).
    pub prefix: Option<Str>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawAlerts {
    /// URL that budget alerts are POSTed to as JSON.
    pub webhook: Option<Str>,
}

/// `budget = {...}` or `budget = [{...}, {...}]` (several at once, e.g. a daily cap under a
/// monthly budget). Written by hand rather than `#[serde(untagged)]`, which would buffer the
/// table and hide its unknown keys from `serde_ignored`.
#[derive(Debug)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        match self {
            OneOrMany::One(t) => std::slice::from_ref(t).iter(),
            OneOrMany::Many(v) => v.iter(),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table or an array of tables")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(OneOrMany::One)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<Self::Value, A::Error> {
                Vec::<T>::deserialize(SeqAccessDeserializer::new(seq)).map(OneOrMany::Many)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// One budget: `{ usd = 5, period = "daily" }` or `{ tokens = 100000, period = "monthly" }`.
#[derive(Debug, Deserialize)]
pub struct RawBudget {
    pub usd: Option<Spanned<f64>>,
    pub tokens: Option<Spanned<u64>>,
    pub period: Option<Str>,
    /// IANA time zone the calendar period is aligned to (default UTC).
    pub timezone: Option<Str>,
    pub on_exhausted: Option<RawOnExhausted>,
}

/// `"block"` or `{ route_to = "provider/model" }`.
pub type RawOnExhausted = StrOr<RawRouteTo>;

#[derive(Debug, Deserialize)]
pub struct RawRouteTo {
    pub route_to: Str,
}

impl Expected for RawRouteTo {
    const EXPECTED: &'static str = "\"block\" or { route_to = \"provider/model\" }";
}

/// A value written either as a string or as a table `T` (`on_exhausted`, a weighted target,
/// `sticky`). Written by hand rather than `#[serde(untagged)]`, which would buffer the table
/// and hide its unknown keys from `serde_ignored`.
#[derive(Debug)]
pub enum StrOr<T> {
    Str(String),
    Table(T),
}

/// What a [`StrOr`] value should look like, for the type error.
pub trait Expected {
    const EXPECTED: &'static str;
}

impl<'de, T: Deserialize<'de> + Expected> Deserialize<'de> for StrOr<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::value::MapAccessDeserializer;
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de> + Expected> serde::de::Visitor<'de> for V<T> {
            type Value = StrOr<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(T::EXPECTED)
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(StrOr::Str(s.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(StrOr::Table)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// `true`, `false` or a string.
#[derive(Debug)]
pub enum BoolOrStr {
    Bool(bool),
    Str(String),
}

impl<'de> Deserialize<'de> for BoolOrStr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = BoolOrStr;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("true, false or a string")
            }
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Self::Value, E> {
                Ok(BoolOrStr::Bool(b))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(BoolOrStr::Str(s.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

/// `rate_limit = { rpm = 600, tpm = 2000000, concurrent = 20 }`.
#[derive(Debug, Deserialize)]
pub struct RawRateLimit {
    pub rpm: Option<Spanned<u64>>,
    pub tpm: Option<Spanned<u64>>,
    pub concurrent: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawTeam {
    /// Model globs the team's keys may use.
    pub models: Option<Vec<Str>>,
    pub budget: Option<OneOrMany<RawBudget>>,
    pub rate_limit: Option<Spanned<RawRateLimit>>,
}

/// A static virtual key (`[[keys]]`).
#[derive(Debug, Deserialize)]
pub struct RawKey {
    pub name: Str,
    pub key: Str,
    pub team: Option<Str>,
    pub user: Option<Str>,
    pub project: Option<Str>,
    pub models: Option<Vec<Str>>,
    pub budget: Option<OneOrMany<RawBudget>>,
    pub rate_limit: Option<Spanned<RawRateLimit>>,
    /// `"team_admin"`: the key administers its team through the admin API.
    pub role: Option<Str>,
    /// Bodies kept in this key's records (over `[log] bodies` and the provider's).
    pub log_bodies: Option<Str>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawServer {
    pub listen: Option<Str>,
    pub admin_token: Option<Str>,
    pub max_body_bytes: Option<Spanned<u64>>,
    /// Overload shedding (`config::Overload`).
    pub max_in_flight: Option<Spanned<u64>>,
    pub max_buffered_body_bytes: Option<Spanned<u64>>,
    pub body_read_timeout: Option<Str>,
    pub drain_timeout: Option<Str>,
    pub stream_keepalive: Option<Str>,
    /// A client that leaves cancels its request's provider call (`config::ServerConfig`).
    pub cancel_on_disconnect: Option<bool>,
    pub busy_poll: Option<Str>,
    /// Host names (besides loopback addresses) an open gateway answers to.
    pub allowed_hosts: Option<Vec<Str>>,
    /// Browser origins (besides loopback ones) an open gateway answers.
    pub allowed_origins: Option<Vec<Str>>,
    /// Client connections: how long they may take and how many may be open (`server::edge`).
    pub header_read_timeout: Option<Str>,
    pub idle_timeout: Option<Str>,
    pub http2_keepalive_interval: Option<Str>,
    pub http2_keepalive_timeout: Option<Str>,
    pub max_connections: Option<Spanned<u64>>,
    /// Private, link-local or metadata addresses, networks and host names the gateway may
    /// connect to (providers, the alert webhook, the trace collector); loopback needs none.
    pub allowed_private_upstreams: Option<Vec<Str>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawStore {
    pub url: Option<Str>,
    /// Longest one store call may take (budget admission, key reloads, admin API).
    pub timeout: Option<Str>,
}

#[derive(Debug, Deserialize)]
pub struct RawProvider {
    pub kind: Str,
    pub base_url: Option<Str>,
    pub api_key: Option<Str>,
    /// Several keys, balanced: `"${K1}"` or `{ key = "${K2}", weight = 3 }`.
    pub api_keys: Option<Vec<Spanned<RawWeighted>>>,
    /// How requests spread over `api_keys`: round_robin (default), least_in_flight,
    /// lowest_latency.
    pub balance: Option<Str>,
    /// Model names (globs) this provider serves when a request names no provider.
    pub models: Option<Vec<Str>>,
    pub timeouts: Option<RawTimeouts>,
    /// Extra headers sent to this provider on every request (e.g. OpenRouter's `HTTP-Referer`).
    pub headers: Option<IndexMap<String, Str>>,
    /// Reasoning-effort levels each model accepts: model glob -> levels.
    pub reasoning_effort: Option<IndexMap<String, Vec<Str>>>,
    /// Provider-wide caps: when one is spent, routing skips this provider.
    pub budget: Option<OneOrMany<RawBudget>>,
    /// Azure OpenAI's `api-version` query parameter.
    pub api_version: Option<Str>,
    /// Bedrock's AWS region (default `AWS_REGION`, then `AWS_DEFAULT_REGION`).
    pub region: Option<Str>,
    /// Bodies kept in the records of requests this provider serves (over `[log] bodies`).
    pub log_bodies: Option<Str>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawTimeouts {
    pub connect: Option<Str>,
    pub first_byte: Option<Str>,
    pub idle: Option<Str>,
}

#[derive(Debug, Deserialize)]
pub struct RawRoute {
    #[serde(rename = "match")]
    pub matcher: RawMatch,
    /// Shown in logs, metrics and request records (default `routes[i]`).
    pub name: Option<Str>,
    pub rewrite: Option<Str>,
    pub targets: Option<Vec<Spanned<RawWeighted>>>,
    /// How requests spread over `targets`: failover (default, in order), round_robin,
    /// least_in_flight, lowest_latency.
    pub balance: Option<Str>,
    pub split: Option<Vec<Spanned<RawWeighted>>>,
    /// Keep a caller on one side of a split: `"user"` or `{ header = "x-session-id" }`.
    pub sticky: Option<Spanned<RawSticky>>,
    pub mirror: Option<Spanned<RawMirror>>,
    /// Bound on the time until the reply starts, every attempt included.
    pub timeout: Option<Str>,
}

/// `"provider/model"` (or a key's text) or `{ target = "...", weight = 3 }` /
/// `{ key = "...", weight = 3 }`.
pub type RawWeighted = StrOr<RawWeightedTable>;

#[derive(Debug, Deserialize)]
pub struct RawWeightedTable {
    pub target: Option<String>,
    pub key: Option<String>,
    pub weight: Option<u32>,
}

impl Expected for RawWeightedTable {
    const EXPECTED: &'static str = "a string or { target = \"...\", weight = N }";
}

/// `"user"` or `{ header = "x-session-id" }`.
pub type RawSticky = StrOr<RawStickyHeader>;

#[derive(Debug, Deserialize)]
pub struct RawStickyHeader {
    pub header: String,
}

impl Expected for RawStickyHeader {
    const EXPECTED: &'static str = "\"user\" or { header = \"name\" }";
}

/// `mirror = { target = "local/qwen", sample = 0.05, budget = { usd = 1, period = "daily" } }`.
#[derive(Debug, Deserialize)]
pub struct RawMirror {
    pub target: Str,
    pub sample: Option<Spanned<f64>>,
    pub budget: Option<OneOrMany<RawBudget>>,
}

#[derive(Debug, Deserialize)]
pub struct RawMatch {
    pub model: Option<Str>,
    /// Match only requests whose caller's budget is spent (or, `false`, is not); a string
    /// names whose: `"key"`, `"user"`, `"team"`, `"project"`, `"provider:NAME"`.
    pub budget_exhausted: Option<Spanned<BoolOrStr>>,
    /// Match only while that budget is not spent (same names as `budget_exhausted`).
    pub budget_available: Option<Str>,
    /// Header name -> glob of its value.
    pub header: Option<IndexMap<String, Str>>,
    /// Globs of the caller's key name, team, user; of one of the request's tags.
    pub key: Option<Str>,
    pub team: Option<Str>,
    pub user: Option<Str>,
    pub tag: Option<Str>,
    /// Bounds of the estimated input tokens.
    pub min_input_tokens: Option<u64>,
    pub max_input_tokens: Option<u64>,
}
