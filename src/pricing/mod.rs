//! Model prices and what a request costs: the built-in price table (`builtin.toml`, embedded
//! in the binary), the operator's `[pricing]` overrides, and the arithmetic from [`Usage`]
//! to nano-USD.
//!
//! Where it sits: `config::load` builds one [`PriceTable`] (built-ins plus overrides) into
//! the live config. Before a request runs, the budget stage reserves
//! [`worst_case_nanos`]; when it ends (stream end or drop), accounting settles
//! [`cost_nanos`] of the usage the provider reported.
//!
//! # Prices
//! A [`Price`] is USD per million tokens for input, output, cache reads and cache writes;
//! a missing cache price means the input price. An optional [`PriceTier`] replaces all four
//! for the *whole* request when its input tokens (cache reads and writes included, see
//! [`Usage`]) exceed `above_input_tokens`: Gemini 2.5 Pro and 3 Pro above 200k, Claude
//! Sonnet 4 / 4.5 with the 1M context above 200k, GPT-5.4 / 5.5 above 272k.
//!
//! # Lookup rules
//! [`PriceTable::lookup`] takes a model as the provider names it. Names are compared in
//! ASCII lower case. The overrides are searched first, with every rule below, and only then
//! the built-ins, so an override of `claude-sonnet-4-5` also prices
//! `us.anthropic.claude-sonnet-4-5-20250929-v1:0`. Within one set, the name is tried as
//! given and then after each of these steps in turn, stopping at the first hit:
//! 1. a `provider/` prefix is dropped, up to the last `/` (`openai/gpt-4o`,
//!    `models/gemini-2.5-pro`, a Bedrock ARN);
//! 2. a Bedrock inference-profile prefix (`us.`, `us-gov.`, `eu.`, `apac.`, `au.`, `jp.`,
//!    `ca.`, `global.`);
//! 3. the `anthropic.` vendor prefix of Bedrock Claude ids;
//! 4. a Vertex `@date` suffix (`claude-3-5-haiku@20241022`);
//! 5. a Bedrock version suffix (`-v1:0`, `-v2:0`, `-v1:0:200k`, `-v2`);
//! 6. a `-latest` suffix;
//! 7. trailing all-digit segments of 2 to 8 digits, one at a time (`-20250929`,
//!    `-2024-08-06`, `-2512`, `-001`): a dated id costs what its plain name costs unless the
//!    table has an entry for the dated id itself (`gpt-4o-2024-05-13`, `mistral-large-2411`);
//!    single digits are never stripped, so `claude-opus-4-9` does not become `claude-opus-4`;
//! 8. a `-preview` or `-exp` suffix.
//!
//! At each step an exact entry wins over the globs, and among globs (`*`, `?`, `[…]`, `{…}`)
//! the one with the most literal characters wins. Exact names live in a `HashMap` and the
//! globs in a short `Vec` sorted longest-literal first, and the steps only re-slice the
//! name, so a lookup allocates at most once (to lower-case a name that has capitals).
//!
//! # Arithmetic
//! Costs are nano-USD (1e-9 dollars) in a `u64`, like the budget counters. Each price is
//! turned into an exact integer of femto-USD per token (USD per million × 1e9, rounded: exact
//! for any price with up to nine decimals), multiplied by the token counts in `u128`, summed,
//! and rounded up to nano-USD once, saturating at `u64::MAX`. This is exact where `f64`
//! arithmetic per component with a tolerance before the ceil would only be nearly so (3
//! tokens at $0.10/M is 300 nano-USD, never 301), and it cannot overflow.
//!
//! Cost of a usage report: `(input − cache_read − cache_write, saturating) × input price +
//! cache_read × cache-read price + cache_write × cache-write price + output × output price`,
//! reasoning tokens being part of `output` already.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use globset::{Glob, GlobMatcher};
use serde::Deserialize;

use crate::schema::Usage;

/// The built-in table; its header says where the prices come from and when they were checked.
const BUILTIN_TOML: &str = include_str!("builtin.toml");

/// Femto-USD per token for a price of one dollar per million tokens.
const FEMTO_PER_TOKEN_PER_USD_PER_MILLION: f64 = 1e9;
/// Femto-USD per nano-USD.
const FEMTO_PER_NANO: u128 = 1_000_000;

/// Bedrock inference-profile prefixes: geographic and global cross-region inference.
const REGION_PREFIXES: &[&str] = &[
    "us.", "us-gov.", "eu.", "apac.", "au.", "jp.", "ca.", "global.",
];
/// Bedrock's vendor prefix for Claude; other vendors' Bedrock prices differ from their own
/// APIs', so their Bedrock ids have entries of their own and keep the prefix.
const CLAUDE_VENDOR_PREFIX: &str = "anthropic.";
/// Characters that make a table key a glob.
const GLOB_META: &[char] = &['*', '?', '[', ']', '{', '}'];

/// The price of one model, in USD per million tokens.
///
/// Deserialized from the built-in table and from the configuration's `[pricing]` entries
/// (`input = 2.5`, `output = 10`, optional `cache_read`, `cache_write` and
/// `tier = { above_input_tokens = 200000, input = …, output = … }`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    /// A prompt-cache hit; `None`: the input price.
    #[serde(default)]
    pub cache_read: Option<f64>,
    /// A prompt-cache write (Anthropic's 5-minute cache); `None`: the input price.
    #[serde(default)]
    pub cache_write: Option<f64>,
    /// Higher prices for requests with more input tokens than the tier's threshold.
    #[serde(default)]
    pub tier: Option<PriceTier>,
    /// The most tokens the model generates in one reply (reasoning included): a request
    /// asking for more is clamped to it, since providers refuse a maximum above it. `None`:
    /// not known, so the request's own maximum is sent as it is.
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    /// The model's context window in tokens (input and output together).
    #[serde(default)]
    pub context_window: Option<u64>,
}

/// A `[pricing."MODEL"]` entry of the configuration: prices, limits, or both. Prices and
/// limits are overridden separately: an entry that gives `input` or `output` replaces every
/// price of the built-in entry (a missing cache price is the input price, as in the table);
/// one that gives neither changes no price at all (the models it names keep theirs, or stay
/// unpriced), only limits; `max_output_tokens` and `context_window` replace the built-in
/// limits one by one.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ModelOverride {
    #[serde(default)]
    pub input: Option<f64>,
    #[serde(default)]
    pub output: Option<f64>,
    #[serde(default)]
    pub cache_read: Option<f64>,
    #[serde(default)]
    pub cache_write: Option<f64>,
    #[serde(default)]
    pub tier: Option<PriceTier>,
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    #[serde(default)]
    pub context_window: Option<u64>,
}

impl ModelOverride {
    /// It sets prices (`input` or `output`), not only limits.
    pub fn gives_prices(&self) -> bool {
        self.input.is_some() || self.output.is_some()
    }

    /// The entry this override makes of `base` (the built-in entry of the same name, if any).
    /// `Err`: it gives one of `input` and `output` for a model the table does not price, or
    /// cache or tier prices without either.
    pub fn apply(&self, base: Option<&Price>) -> Result<Price, String> {
        let prices = self.input.is_some() || self.output.is_some();
        let mut price = match (prices, base) {
            (true, _) => Price {
                input: self
                    .input
                    .or(base.map(|b| b.input))
                    .ok_or("`output` is given without `input`")?,
                output: self
                    .output
                    .or(base.map(|b| b.output))
                    .ok_or("`input` is given without `output`")?,
                cache_read: self.cache_read,
                cache_write: self.cache_write,
                tier: self.tier.clone(),
                ..Price::default()
            },
            (false, _)
                if self.cache_read.is_some()
                    || self.cache_write.is_some()
                    || self.tier.is_some() =>
            {
                return Err(
                    "cache and tier prices need `input` and `output` beside them".to_owned(),
                );
            }
            (false, Some(b)) => b.clone(),
            (false, None) => Price::default(),
        };
        price.max_output_tokens = self
            .max_output_tokens
            .or(base.and_then(|b| b.max_output_tokens));
        price.context_window = self.context_window.or(base.and_then(|b| b.context_window));
        if price.max_output_tokens == Some(0) {
            return Err("max_output_tokens must be above 0".to_owned());
        }
        price.validate()?;
        Ok(price)
    }
}

/// The prices of a request whose input tokens exceed `above_input_tokens`; they apply to all
/// of its tokens, output included. Missing cache prices mean the tier's input price.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PriceTier {
    pub above_input_tokens: u64,
    pub input: f64,
    pub output: f64,
    #[serde(default)]
    pub cache_read: Option<f64>,
    #[serde(default)]
    pub cache_write: Option<f64>,
}

// === impl Price ===

impl Price {
    /// Every price must be a finite number of dollars, zero or more, and a tier's threshold
    /// above zero. The built-in table is checked when it is parsed; the config layer can call
    /// this to report a bad override with its position ([`PriceTable::with_overrides`] skips
    /// one with a warning).
    pub fn validate(&self) -> Result<(), String> {
        check_prices(
            "",
            self.input,
            self.output,
            self.cache_read,
            self.cache_write,
        )?;
        if let Some(t) = &self.tier {
            if t.above_input_tokens == 0 {
                return Err("tier.above_input_tokens must be above 0".to_owned());
            }
            check_prices("tier.", t.input, t.output, t.cache_read, t.cache_write)?;
        }
        Ok(())
    }

    /// The rates for a request with `input_tokens` input tokens (the tier's if it exceeds
    /// the threshold).
    fn rates(&self, input_tokens: u64) -> Rates {
        match &self.tier {
            Some(t) if input_tokens > t.above_input_tokens => {
                Rates::new(t.input, t.output, t.cache_read, t.cache_write)
            }
            _ => Rates::new(self.input, self.output, self.cache_read, self.cache_write),
        }
    }
}

fn check_prices(
    prefix: &str,
    input: f64,
    output: f64,
    cache_read: Option<f64>,
    cache_write: Option<f64>,
) -> Result<(), String> {
    let fields = [
        ("input", Some(input)),
        ("output", Some(output)),
        ("cache_read", cache_read),
        ("cache_write", cache_write),
    ];
    for (name, value) in fields {
        if let Some(v) = value
            && !(v.is_finite() && v >= 0.0)
        {
            return Err(format!(
                "{prefix}{name} must be a finite number of dollars, 0 or more, not {v}"
            ));
        }
    }
    Ok(())
}

/// The prices that apply to one request, in femto-USD per token.
#[derive(Debug, Clone, Copy)]
struct Rates {
    input: u128,
    output: u128,
    cache_read: u128,
    cache_write: u128,
}

impl Rates {
    fn new(input: f64, output: f64, cache_read: Option<f64>, cache_write: Option<f64>) -> Self {
        let input = femto_per_token(input);
        Self {
            input,
            output: femto_per_token(output),
            cache_read: cache_read.map_or(input, femto_per_token),
            cache_write: cache_write.map_or(input, femto_per_token),
        }
    }
}

/// USD per million tokens -> femto-USD per token, rounded to the nearest integer. A NaN or
/// negative price (rejected by [`Price::validate`]) counts as free; `as` saturates huge ones.
fn femto_per_token(usd_per_million: f64) -> u128 {
    let femto = (usd_per_million * FEMTO_PER_TOKEN_PER_USD_PER_MILLION).round();
    if femto > 0.0 { femto as u128 } else { 0 }
}

fn femto(tokens: u64, rate: u128) -> u128 {
    u128::from(tokens).saturating_mul(rate)
}

/// Femto-USD -> nano-USD, rounded up, saturating.
fn nanos_ceil(femto: u128) -> u64 {
    let nanos = femto / FEMTO_PER_NANO + u128::from(!femto.is_multiple_of(FEMTO_PER_NANO));
    u64::try_from(nanos).unwrap_or(u64::MAX)
}

/// The cost of `usage` at `price`, in nano-USD (1e-9 dollars), rounded up, saturating.
///
/// `usage.input_tokens` includes the cache reads and writes (see [`Usage`]): the rest is
/// billed at the input price, the reads and writes at their own prices. The tier applies
/// when `usage.input_tokens` exceeds its threshold.
pub fn cost_nanos(price: &Price, usage: &Usage) -> u64 {
    let rates = price.rates(usage.input_tokens);
    let uncached = usage
        .input_tokens
        .saturating_sub(usage.cache_read_tokens)
        .saturating_sub(usage.cache_write_tokens);
    let total = femto(uncached, rates.input)
        .saturating_add(femto(usage.cache_read_tokens, rates.cache_read))
        .saturating_add(femto(usage.cache_write_tokens, rates.cache_write))
        .saturating_add(femto(usage.output_tokens, rates.output));
    nanos_ceil(total)
}

/// The worst-case cost of a request before it runs, in nano-USD, rounded up: `input_tokens`
/// at the input price plus `max_output` at the output price, at the tier's prices if
/// `input_tokens` exceeds its threshold.
///
/// Cache reads can only make the real cost lower; a cache write priced above the input
/// (Anthropic's 1.25×) can make it up to a quarter of the input part higher, which the
/// settlement with [`cost_nanos`] corrects.
pub fn worst_case_nanos(price: &Price, input_tokens: u64, max_output: u64) -> u64 {
    let rates = price.rates(input_tokens);
    nanos_ceil(femto(input_tokens, rates.input).saturating_add(femto(max_output, rates.output)))
}

// === impl PriceTable ===

/// Model prices: the built-in table plus overrides, with the forgiving lookup described in
/// the module header.
#[derive(Debug, Clone)]
pub struct PriceTable {
    /// Parsed from [`BUILTIN_TOML`] once per process and shared by every table (a config
    /// reload builds a new table without parsing again); never changes.
    builtin: Arc<Entries>,
    /// The operator's `[pricing]` entries that give prices, searched before the built-ins.
    overrides: Entries,
    /// The operator's entries that give only limits: searched for a model's limits before
    /// the prices' entries, never for its prices (a limits-only glob must not make the
    /// models it matches free).
    limits: Entries,
    /// Names known to have no price: an unknown model would otherwise walk every glob on
    /// each request. Bounded by [`MAX_REMEMBERED_MISSES`].
    misses: Arc<std::sync::RwLock<foldhash::HashSet<String>>>,
}

/// Most unpriced names remembered (beyond, lookups of new unknown names just walk the globs).
const MAX_REMEMBERED_MISSES: usize = 1024;

impl PriceTable {
    /// The built-in table, parsed once from the embedded TOML. A parse failure is a bug that
    /// the unit tests catch; should one ship, it is logged once and every model is unpriced
    /// (an empty table) rather than the gateway failing to start.
    pub fn builtin() -> Self {
        static BUILTIN: OnceLock<Arc<Entries>> = OnceLock::new();
        let builtin = BUILTIN.get_or_init(|| match parse_builtin(BUILTIN_TOML) {
            Ok(entries) => Arc::new(entries),
            Err(e) => {
                tracing::error!(
                    error = %e,
                    "the built-in price table does not parse; no model has a built-in price"
                );
                Arc::new(Entries::default())
            }
        });
        Self {
            builtin: Arc::clone(builtin),
            overrides: Entries::default(),
            limits: Entries::default(),
            misses: Arc::default(),
        }
    }

    /// A table with no prices at all (tests, or pricing switched off).
    pub fn empty() -> Self {
        Self {
            builtin: Arc::new(Entries::default()),
            overrides: Entries::default(),
            limits: Entries::default(),
            misses: Arc::default(),
        }
    }

    /// This table with `overrides` (a model name or glob -> its prices and limits, merged
    /// with the built-in entry of the same name as [`ModelOverride::apply`] says) searched
    /// before the built-ins. A later override of the same name replaces an earlier one. An
    /// override that [`ModelOverride::apply`] refuses, or whose glob does not compile, is
    /// skipped with a warning (the config layer reports them with their position first).
    pub fn with_overrides(mut self, overrides: Vec<(String, ModelOverride)>) -> Self {
        for (name, entry) in overrides {
            let price = match entry.apply(self.builtin_entry(&name)) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(model = %name, error = %e, "pricing override skipped");
                    continue;
                }
            };
            let table = if entry.gives_prices() {
                &mut self.overrides
            } else {
                &mut self.limits
            };
            if let Err(e) = table.insert(&name, price) {
                tracing::warn!(model = %name, error = %e, "pricing override skipped: bad glob");
            }
        }
        self.overrides.sort_globs();
        self.limits.sort_globs();
        self.misses = Arc::default();
        self
    }

    /// The built-in entry an override named `name` merges with: the one its name finds,
    /// or for a glob, the built-in glob written the same way.
    pub fn builtin_entry(&self, name: &str) -> Option<&Price> {
        let key = name.trim().to_ascii_lowercase();
        if key.contains(GLOB_META) {
            return self
                .builtin
                .globs
                .iter()
                .find(|g| g.pattern == key)
                .map(|g| &g.price);
        }
        resolve(&key, |n| self.builtin.probe(n))
    }

    /// The most tokens `model` (as a provider names it) can generate in one reply, if the
    /// table knows.
    pub fn max_output_tokens(&self, model: &str) -> Option<u64> {
        if !self.limits.is_empty() {
            let name = model.trim().to_ascii_lowercase();
            if let Some(max) =
                resolve(&name, |n| self.limits.probe(n)).and_then(|p| p.max_output_tokens)
            {
                return Some(max);
            }
        }
        self.lookup(model).and_then(|p| p.max_output_tokens)
    }

    /// The price of `model` as a provider names it, or `None` if neither the overrides nor
    /// the built-ins know it (rules in the module header).
    pub fn lookup(&self, model: &str) -> Option<&Price> {
        let model = model.trim();
        let name: Cow<'_, str> = if model.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(model.to_ascii_lowercase())
        } else {
            Cow::Borrowed(model)
        };
        if let Some(p) = self.builtin.exact.get(name.as_ref())
            && self.overrides.is_empty()
        {
            return Some(p);
        }
        if self.misses.read().is_ok_and(|m| m.contains(name.as_ref())) {
            return None;
        }
        if !self.overrides.is_empty()
            && let Some(price) = resolve(&name, |n| self.overrides.probe(n))
        {
            return Some(price);
        }
        let found = resolve(&name, |n| self.builtin.probe(n));
        if found.is_none()
            && let Ok(mut m) = self.misses.write()
            && m.len() < MAX_REMEMBERED_MISSES
        {
            m.insert(name.into_owned());
        }
        found
    }
}

/// One set of entries: exact names and globs.
#[derive(Debug, Clone, Default)]
struct Entries {
    /// Lower-case names.
    exact: foldhash::HashMap<String, Price>,
    /// Sorted by [`GlobEntry::literal_len`], longest first, so the first match is the most
    /// specific (kept sorted by [`Entries::sort_globs`] after inserting).
    globs: Vec<GlobEntry>,
}

#[derive(Debug, Clone)]
struct GlobEntry {
    /// Lower case, as written (used to replace an entry of the same pattern).
    pattern: String,
    /// Characters of the pattern that are not glob syntax.
    literal_len: usize,
    matcher: GlobMatcher,
    price: Price,
}

impl Entries {
    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.globs.is_empty()
    }

    /// Adds or replaces `name`; `Ok(true)` if it replaced an entry. Call
    /// [`Entries::sort_globs`] when done inserting.
    fn insert(&mut self, name: &str, price: Price) -> Result<bool, globset::Error> {
        let key = name.trim().to_ascii_lowercase();
        if !key.contains(GLOB_META) {
            return Ok(self.exact.insert(key, price).is_some());
        }
        let entry = GlobEntry {
            literal_len: key.chars().filter(|c| !GLOB_META.contains(c)).count(),
            matcher: Glob::new(&key)?.compile_matcher(),
            pattern: key,
            price,
        };
        if let Some(old) = self.globs.iter_mut().find(|g| g.pattern == entry.pattern) {
            *old = entry;
            return Ok(true);
        }
        self.globs.push(entry);
        Ok(false)
    }

    fn sort_globs(&mut self) {
        self.globs.sort_by(|a, b| {
            b.literal_len
                .cmp(&a.literal_len)
                .then_with(|| a.pattern.cmp(&b.pattern))
        });
    }

    /// The entry for exactly `name` (lower case), else the most specific glob matching it.
    fn probe(&self, name: &str) -> Option<&Price> {
        self.exact.get(name).or_else(|| {
            self.globs
                .iter()
                .find(|g| g.matcher.is_match(name))
                .map(|g| &g.price)
        })
    }
}

/// Tries `name` and then each normalisation step in the module header's order, returning
/// the first price `probe` finds.
fn resolve<'a>(name: &str, probe: impl Fn(&str) -> Option<&'a Price>) -> Option<&'a Price> {
    const STEPS: [fn(&str) -> Option<&str>; 6] = [
        strip_provider,
        strip_region,
        strip_claude_vendor,
        strip_vertex_date,
        strip_bedrock_version,
        strip_latest,
    ];
    let mut name = name;
    if let Some(price) = probe(name) {
        return Some(price);
    }
    for step in STEPS {
        if let Some(next) = step(name) {
            name = next;
            if let Some(price) = probe(name) {
                return Some(price);
            }
        }
    }
    while let Some(next) = strip_numeric_segment(name) {
        name = next;
        if let Some(price) = probe(name) {
            return Some(price);
        }
    }
    strip_preview(name).and_then(probe)
}

fn strip_provider(s: &str) -> Option<&str> {
    s.rfind('/').map(|i| &s[i + 1..])
}

fn strip_region(s: &str) -> Option<&str> {
    REGION_PREFIXES.iter().find_map(|p| s.strip_prefix(p))
}

fn strip_claude_vendor(s: &str) -> Option<&str> {
    s.strip_prefix(CLAUDE_VENDOR_PREFIX)
}

fn strip_vertex_date(s: &str) -> Option<&str> {
    s.split_once('@').map(|(model, _)| model)
}

/// `-v1:0`, `-v2:0`, `-v1:0:200k`, `-v2`: `-v`, a digit, then digits, letters and colons.
fn strip_bedrock_version(s: &str) -> Option<&str> {
    let i = s.rfind("-v")?;
    let rest = &s[i + 2..];
    let starts_with_digit = rest.bytes().next().is_some_and(|b| b.is_ascii_digit());
    if starts_with_digit && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b':') {
        Some(&s[..i])
    } else {
        None
    }
}

fn strip_latest(s: &str) -> Option<&str> {
    s.strip_suffix("-latest")
}

/// One trailing `-` segment of 2 to 8 digits (a date or a snapshot number).
fn strip_numeric_segment(s: &str) -> Option<&str> {
    let i = s.rfind('-')?;
    let segment = &s[i + 1..];
    if (2..=8).contains(&segment.len()) && segment.bytes().all(|b| b.is_ascii_digit()) {
        Some(&s[..i])
    } else {
        None
    }
}

fn strip_preview(s: &str) -> Option<&str> {
    s.strip_suffix("-preview")
        .or_else(|| s.strip_suffix("-exp"))
}

// === the built-in table ===

/// `builtin.toml`: `[models."name"]` tables of a [`Price`] plus optional `aliases`.
#[derive(Debug, Deserialize)]
struct RawBuiltin {
    models: HashMap<String, RawEntry>,
}

#[derive(Debug, Deserialize)]
struct RawEntry {
    input: f64,
    output: f64,
    cache_read: Option<f64>,
    cache_write: Option<f64>,
    tier: Option<PriceTier>,
    max_output_tokens: Option<u64>,
    context_window: Option<u64>,
    /// More names with the same price.
    #[serde(default)]
    aliases: Vec<String>,
}

/// Parses and checks the built-in table: unknown keys, invalid prices, bad globs and a name
/// listed twice are all errors (the table is ours, so any of them is a bug).
fn parse_builtin(text: &str) -> Result<Entries, String> {
    let mut unknown = Vec::new();
    let de = toml::de::Deserializer::parse(text).map_err(|e| e.to_string())?;
    let raw: RawBuiltin = serde_ignored::deserialize(de, |path| unknown.push(path.to_string()))
        .map_err(|e| e.to_string())?;
    if let Some(path) = unknown.first() {
        return Err(format!("unknown key `{path}`"));
    }
    let mut entries = Entries::default();
    for (name, raw) in raw.models {
        let price = Price {
            input: raw.input,
            output: raw.output,
            cache_read: raw.cache_read,
            cache_write: raw.cache_write,
            tier: raw.tier,
            max_output_tokens: raw.max_output_tokens,
            context_window: raw.context_window,
        };
        price.validate().map_err(|e| format!("`{name}`: {e}"))?;
        for n in std::iter::once(&name).chain(&raw.aliases) {
            let replaced = entries
                .insert(n, price.clone())
                .map_err(|e| format!("`{n}`: {e}"))?;
            if replaced {
                return Err(format!("`{n}` is listed twice"));
            }
        }
    }
    entries.sort_globs();
    Ok(entries)
}

#[cfg(test)]
mod tests;
