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
}

#[derive(Debug, Default, Deserialize)]
pub struct RawTeam {
    /// Model globs the team's keys may use.
    pub models: Option<Vec<Str>>,
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
}

#[derive(Debug, Default, Deserialize)]
pub struct RawServer {
    pub listen: Option<Str>,
    pub admin_token: Option<Str>,
    pub max_body_bytes: Option<Spanned<u64>>,
    pub drain_timeout: Option<Str>,
    pub stream_keepalive: Option<Str>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawStore {
    pub url: Option<Str>,
}

#[derive(Debug, Deserialize)]
pub struct RawProvider {
    pub kind: Str,
    pub base_url: Option<Str>,
    pub api_key: Option<Str>,
    pub api_keys: Option<Vec<Str>>,
    /// Model names (globs) this provider serves when a request names no provider.
    pub models: Option<Vec<Str>>,
    pub timeouts: Option<RawTimeouts>,
    /// Extra headers sent to this provider on every request (e.g. OpenRouter's `HTTP-Referer`).
    pub headers: Option<IndexMap<String, Str>>,
    /// Reasoning-effort levels each model accepts: model glob -> levels.
    pub reasoning_effort: Option<IndexMap<String, Vec<Str>>>,
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
    pub rewrite: Option<Str>,
    pub targets: Option<Vec<Str>>,
}

#[derive(Debug, Deserialize)]
pub struct RawMatch {
    pub model: Option<Str>,
}
