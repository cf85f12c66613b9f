//! Providers in the config: their kinds, what each defaults to, and the validation of a
//! `[providers.NAME]` table.

use std::ops::Range;
use std::time::Duration;

use globset::{Glob, GlobMatcher};
use http::{HeaderName, HeaderValue, Uri};

use super::raw::{RawConfig, RawProvider, RawTimeouts};
use super::routes::{self, parse_target};
use super::source::Source;
use super::*;
use crate::schema::ReasoningEffort;

/// Azure OpenAI's latest GA data-plane API version (Azure's "API version lifecycle" page);
/// newer or preview versions are set per provider with `api_version`.
pub const AZURE_API_VERSION: &str = "2024-10-21";

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
            Self::OpenAi
                | Self::OpenAiCompatible
                | Self::Mistral
                | Self::Anthropic
                | Self::AzureOpenAi
                | Self::Gemini
                | Self::Bedrock
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
    /// Azure OpenAI's `api-version` (the default one unless written).
    pub api_version: Option<String>,
    /// Bedrock's region, and its AWS credentials when it signs requests (SigV4) rather
    /// than sending a Bedrock API key.
    pub region: Option<String>,
    pub aws: Option<AwsCredentials>,
    /// Bodies kept in the records of requests this provider serves (`None`: `[log] bodies`).
    pub log_bodies: Option<super::BodyLevel>,
}

/// AWS credentials, read from the usual environment variables when the config is loaded (a
/// reload reads them again, so rotated session tokens are picked up).
#[derive(Debug, Clone)]
pub struct AwsCredentials {
    pub access_key_id: Secret,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

impl ProviderConfig {
    /// Every credential of the provider: its keys, and AWS's key id, secret and token.
    pub fn secrets(&self) -> Vec<&Secret> {
        let mut out: Vec<&Secret> = self.api_keys.iter().collect();
        if let Some(aws) = &self.aws {
            out.extend([&aws.access_key_id, &aws.secret_access_key]);
            out.extend(aws.session_token.as_ref());
        }
        out
    }

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

pub(super) fn validate_provider(
    src: &mut Source<'_>,
    name: &str,
    p: &toml::Spanned<RawProvider>,
    raw: &RawConfig,
    egress: &crate::egress::Policy,
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
    let api_version = match (&p.api_version, kind) {
        (Some(v), ProviderKind::AzureOpenAi) => {
            let version = src.expand(v);
            // It goes into the query string: nothing that could start another parameter.
            if !url_token(&version) {
                src.error(
                    &v.span(),
                    "invalid api_version: expected letters, digits, `.`, `-` and `_` only",
                );
            }
            Some(version)
        }
        (None, ProviderKind::AzureOpenAi) => Some(AZURE_API_VERSION.to_owned()),
        (Some(v), _) => {
            src.error(
                &v.span(),
                "api_version applies to azure-openai providers only",
            );
            None
        }
        (None, _) => None,
    };
    let region = region(src, name, &span, p.region.as_ref(), kind);
    let base_url = base_url(
        src,
        name,
        &span,
        p.base_url.as_ref(),
        kind,
        &kind_text,
        region.as_deref(),
    );
    // Its host against the address policy, once its shape is right (that error is out).
    if let Some(v) = &p.base_url
        && check_base_url(&base_url).is_ok()
        && let Err(msg) = check_outbound_url(&base_url, egress)
    {
        src.error(
            &v.span(),
            format!("invalid base_url `{}`: {msg}", v.get_ref()),
        );
    }
    let (api_keys, key_weights, balance) = api_keys(src, name, &span, p, kind);
    // Bedrock: a Bedrock API key (bearer) if one is written, else SigV4 with AWS credentials.
    let aws = if kind == ProviderKind::Bedrock && api_keys.is_empty() {
        aws_credentials(src, name, &span)
    } else {
        None
    };
    let models = governance::model_list(src, &p.models).unwrap_or_else(|| {
        kind.default_models()
            .iter()
            .filter_map(|m| ModelPattern::new(m).ok())
            .collect()
    });
    let timeouts = timeouts(src, p.timeouts.as_ref());
    let headers = header_list(src, p.headers.as_ref());
    let reasoning_effort = reasoning_levels(src, &span, p.reasoning_effort.as_ref());
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
        api_version,
        region,
        aws,
        log_bodies: super::body_level(src, p.log_bodies.as_ref()),
    })
}

/// A variable of the environment, when set and not empty.
fn env_var(src: &Source<'_>, name: &str) -> Option<String> {
    src.env.var(name).filter(|v| !v.is_empty())
}

/// `region`: Bedrock's only, where it defaults to `AWS_REGION` (or `AWS_DEFAULT_REGION`).
fn region(
    src: &mut Source<'_>,
    name: &str,
    span: &Range<usize>,
    region: Option<&Str>,
    kind: ProviderKind,
) -> Option<String> {
    // The region is part of Bedrock's host name: letters, digits and `-` only, so that it
    // cannot add a host, credentials or a path to it.
    let is_region = |r: &str| {
        !r.is_empty()
            && r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    match (region, kind) {
        (Some(v), ProviderKind::Bedrock) => {
            let r = src.expand(v);
            if !is_region(&r) {
                src.error(
                    &v.span(),
                    "invalid region: expected an AWS region such as `us-east-1`",
                );
            }
            Some(r)
        }
        (None, ProviderKind::Bedrock) => {
            let r = env_var(src, "AWS_REGION").or_else(|| env_var(src, "AWS_DEFAULT_REGION"));
            match &r {
                None => src.error(
                    span,
                    format!("bedrock provider `{name}` needs a region: set `region` or AWS_REGION"),
                ),
                Some(r) if !is_region(r) => src.error(
                    span,
                    format!("bedrock provider `{name}`: AWS_REGION is not an AWS region such as `us-east-1`"),
                ),
                Some(_) => {}
            }
            r
        }
        (Some(v), _) => {
            src.error(&v.span(), "region applies to bedrock providers only");
            None
        }
        (None, _) => None,
    }
}

/// `base_url`, without its trailing `/`; the kind's own when not written (Bedrock's from
/// its region).
fn base_url(
    src: &mut Source<'_>,
    name: &str,
    span: &Range<usize>,
    base_url: Option<&Str>,
    kind: ProviderKind,
    kind_text: &str,
    region: Option<&str>,
) -> String {
    match base_url {
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
            None if kind == ProviderKind::Bedrock => region
                .map(|r| format!("https://bedrock-runtime.{r}.amazonaws.com"))
                .unwrap_or_default(),
            None => {
                src.error(
                    span,
                    format!("provider `{name}` of kind `{kind_text}` needs a base_url"),
                );
                String::new()
            }
        },
    }
}

/// `api_key` or the weighted `api_keys`, their weights, and how requests are spread over them.
fn api_keys(
    src: &mut Source<'_>,
    name: &str,
    span: &Range<usize>,
    p: &RawProvider,
    kind: ProviderKind,
) -> (Vec<Secret>, Vec<u32>, Balance) {
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
        src.error(span, "the api_keys' weights add up to 0");
    }
    let balance = routes::balance(src, p.balance.as_ref(), Balance::RoundRobin);
    if p.api_key.is_some() && p.api_keys.is_some() {
        src.error(span, "set either api_key or api_keys, not both");
    }
    if api_keys.is_empty() && matches!(kind, ProviderKind::OpenAi | ProviderKind::Mistral) {
        src.error(span, format!("provider `{name}` needs an api_key"));
    }
    (api_keys, key_weights, balance)
}

/// SigV4 credentials from the environment, for a Bedrock provider without an API key.
fn aws_credentials(
    src: &mut Source<'_>,
    name: &str,
    span: &Range<usize>,
) -> Option<AwsCredentials> {
    match (
        env_var(src, "AWS_ACCESS_KEY_ID"),
        env_var(src, "AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(id), Some(secret)) => Some(AwsCredentials {
            access_key_id: Secret::new(id),
            secret_access_key: Secret::new(secret),
            session_token: env_var(src, "AWS_SESSION_TOKEN").map(Secret::new),
        }),
        _ => {
            src.error(
                span,
                format!("bedrock provider `{name}` needs AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or api_key (a Bedrock API key)"),
            );
            None
        }
    }
}

/// `[providers.X.timeouts]` over the defaults.
fn timeouts(src: &mut Source<'_>, raw: Option<&RawTimeouts>) -> Timeouts {
    let mut timeouts = Timeouts::default();
    if let Some(t) = raw {
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
    timeouts
}

/// `reasoning_effort`: the levels each model pattern accepts, in order.
fn reasoning_levels(
    src: &mut Source<'_>,
    span: &Range<usize>,
    raw: Option<&IndexMap<String, Vec<Str>>>,
) -> Vec<(GlobMatcher, Vec<ReasoningEffort>)> {
    let mut reasoning_effort = Vec::new();
    for (glob, levels) in raw.into_iter().flatten() {
        let Ok(m) = Glob::new(glob).map(|g| g.compile_matcher()) else {
            src.error(
                span,
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
    reasoning_effort
}

/// Extra headers (`name = "value"`, `${VAR}`s expanded), marked sensitive: they often
/// carry a credential.
pub(super) fn header_list(
    src: &mut Source<'_>,
    headers: Option<&IndexMap<String, Str>>,
) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    for (k, v) in headers.into_iter().flatten() {
        let value = src.expand(v);
        match (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            (Ok(n), Ok(mut hv)) => {
                hv.set_sensitive(true);
                out.push((n, hv));
            }
            _ => src.error(
                &v.span(),
                format!("invalid header `{k}`: not a valid header name or value"),
            ),
        }
    }
    out
}

/// `[server] allowed_private_upstreams`, each entry checked.
pub(super) fn egress_policy(
    src: &mut Source<'_>,
    entries: Option<&Vec<Str>>,
) -> std::sync::Arc<crate::egress::Policy> {
    let mut policy = crate::egress::Policy::default();
    for v in entries.into_iter().flatten() {
        if let Err(msg) = policy.allow(&src.expand(v)) {
            src.error(&v.span(), msg);
        }
    }
    std::sync::Arc::new(policy)
}

/// A URL the gateway connects to (a provider's, the alert webhook, the trace collector):
/// its shape ([`check_base_url`]), then its host against the address policy: an address
/// (in any form a resolver reads as one) or a metadata name is judged now; other names at
/// each connect, once resolved (`crate::egress`). The messages never repeat the URL.
pub(super) fn check_outbound_url(url: &str, egress: &crate::egress::Policy) -> Result<(), String> {
    check_base_url(url).map_err(str::to_owned)?;
    let host = url
        .parse::<Uri>()
        .ok()
        .and_then(|u| u.host().map(str::to_owned))
        .unwrap_or_default();
    if host.contains(['%', '\\']) {
        return Err("its host must not be percent-encoded".to_owned());
    }
    egress.check_url_host(&host).map_err(|r| r.to_string())
}

/// Letters, digits, `.`, `-` and `_`: a value that goes into a URL as it is.
fn url_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// A provider URL must be absolute http(s) without credentials, query or fragment. The
/// messages never repeat the URL (it may carry an expanded secret).
pub(super) fn check_base_url(url: &str) -> Result<(), &'static str> {
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
