//! Validation of budgets and rate limits (SPEC §2): `budget = {...}` on keys, users, teams,
//! projects and providers, `rate_limit = {...}` on keys, users, teams and projects.
//!
//! Amounts become integers here, once: dollars as nano-USD (so that the counters shared
//! between instances never add floats), tokens as tokens.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::Target;
use super::raw::{OneOrMany, RawBudget, RawOnExhausted, RawRateLimit};
use super::source::Source;

/// Nano-USD per US dollar.
pub const NANOS_PER_USD: f64 = 1e9;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Daily,
    Weekly,
    Monthly,
}

impl Period {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "daily" => Some(Self::Daily),
            "weekly" => Some(Self::Weekly),
            "monthly" => Some(Self::Monthly),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetUnit {
    /// Amounts in nano-USD.
    Usd,
    Tokens,
}

impl BudgetUnit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Usd => "usd",
            Self::Tokens => "tokens",
        }
    }
}

/// What happens to a request whose budget is spent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OnExhausted {
    /// 429 naming the budget, `Retry-After` at the period's end.
    #[default]
    Block,
    /// Serve the request from this target instead.
    RouteTo(Target),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub unit: BudgetUnit,
    /// In the unit's integer amount (nano-USD or tokens).
    pub limit: u64,
    pub period: Period,
    /// IANA name; `UTC` by default.
    pub timezone: String,
    pub tz: jiff::tz::TimeZone,
    pub on_exhausted: OnExhausted,
}

impl Budget {
    /// The limit as written: dollars (as a float) or tokens.
    pub fn limit_display(&self) -> f64 {
        match self.unit {
            BudgetUnit::Usd => self.limit as f64 / NANOS_PER_USD,
            BudgetUnit::Tokens => self.limit as f64,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent: Option<u64>,
}

impl RateLimit {
    pub fn is_empty(&self) -> bool {
        self.rpm.is_none() && self.tpm.is_none() && self.concurrent.is_none()
    }
}

/// The limits of one key, user, team or project.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    pub budgets: Vec<Budget>,
    pub rate_limit: RateLimit,
}

impl Policy {
    pub fn is_empty(&self) -> bool {
        self.budgets.is_empty() && self.rate_limit.is_empty()
    }
}

/// Where a budget is declared decides what `on_exhausted` may say.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Holder {
    /// Keys, users, teams, projects.
    Caller,
    /// A provider: when spent, routing skips it; nothing else is possible.
    Provider,
}

pub(super) fn budgets(
    src: &mut Source<'_>,
    span: &Range<usize>,
    raw: Option<&OneOrMany<RawBudget>>,
    holder: Holder,
    target: &mut dyn FnMut(&mut Source<'_>, &toml::Spanned<String>) -> Option<Target>,
) -> Vec<Budget> {
    let mut out: Vec<Budget> = Vec::new();
    for b in raw.into_iter().flat_map(OneOrMany::iter) {
        let Some(budget) = budget(src, span, b, holder, target) else {
            continue;
        };
        if out
            .iter()
            .any(|o| o.unit == budget.unit && o.period == budget.period)
        {
            src.error(
                span,
                format!(
                    "two {} budgets in {} over the same period: keep one",
                    budget.period.as_str(),
                    budget.unit.as_str()
                ),
            );
            continue;
        }
        out.push(budget);
    }
    out
}

/// What is wrong with a budget's amount.
#[derive(Debug, Clone, Copy)]
enum AmountError {
    Usd,
    Tokens,
    Both,
    Neither,
}

impl AmountError {
    fn message(self) -> &'static str {
        match self {
            AmountError::Usd => "budget usd must be a positive amount below 1e9",
            AmountError::Tokens => "budget tokens must be greater than 0",
            AmountError::Both => "a budget is in usd or in tokens, not both: write two budgets",
            AmountError::Neither => "a budget needs `usd = ...` or `tokens = ...`",
        }
    }
}

/// A budget's unit and limit (nano-USD or tokens), the same for the config and stored keys.
fn amount(usd: Option<f64>, tokens: Option<u64>) -> Result<(BudgetUnit, u64), AmountError> {
    match (usd, tokens) {
        (Some(v), None) if v.is_finite() && v > 0.0 && v < 1e9 => {
            Ok((BudgetUnit::Usd, (v * NANOS_PER_USD).round() as u64))
        }
        (Some(_), None) => Err(AmountError::Usd),
        (None, Some(t)) if t > 0 => Ok((BudgetUnit::Tokens, t)),
        (None, Some(_)) => Err(AmountError::Tokens),
        (Some(_), Some(_)) => Err(AmountError::Both),
        (None, None) => Err(AmountError::Neither),
    }
}

fn time_zone(name: &str) -> Result<jiff::tz::TimeZone, ()> {
    jiff::tz::TimeZone::get(name).map_err(|_| ())
}

fn time_zone_error(written: &str) -> String {
    format!("unknown time zone `{written}`: expected an IANA name such as `Europe/Paris`")
}

fn budget(
    src: &mut Source<'_>,
    span: &Range<usize>,
    b: &RawBudget,
    holder: Holder,
    target: &mut dyn FnMut(&mut Source<'_>, &toml::Spanned<String>) -> Option<Target>,
) -> Option<Budget> {
    let amount = amount(
        b.usd.as_ref().map(|v| *v.get_ref()),
        b.tokens.as_ref().map(|t| *t.get_ref()),
    );
    let (unit, limit) = match amount {
        Ok(a) => a,
        Err(e) => {
            let at = match e {
                AmountError::Usd => b.usd.as_ref().map(toml::Spanned::span),
                AmountError::Tokens => b.tokens.as_ref().map(toml::Spanned::span),
                AmountError::Both | AmountError::Neither => None,
            };
            src.error(&at.unwrap_or_else(|| span.clone()), e.message());
            return None;
        }
    };
    let Some(p) = &b.period else {
        src.error(
            span,
            "a budget needs `period = \"daily\"`, `\"weekly\"` or `\"monthly\"`",
        );
        return None;
    };
    let Some(period) = Period::parse(p.get_ref()) else {
        src.error(
            &p.span(),
            format!(
                "unknown period `{}`: expected daily, weekly or monthly",
                p.get_ref()
            ),
        );
        return None;
    };
    let (timezone, tz) = match &b.timezone {
        None => ("UTC".to_owned(), jiff::tz::TimeZone::UTC),
        Some(t) => {
            let name = src.expand(t);
            match time_zone(&name) {
                Ok(tz) => (name, tz),
                Err(_) => {
                    src.error(&t.span(), time_zone_error(t.get_ref()));
                    return None;
                }
            }
        }
    };
    let on_exhausted = match &b.on_exhausted {
        None => OnExhausted::Block,
        Some(RawOnExhausted::Str(w)) if w == "block" => OnExhausted::Block,
        Some(RawOnExhausted::Str(w)) => {
            src.error(
                span,
                format!("unknown on_exhausted `{w}`: expected \"block\" or {{ route_to = \"provider/model\" }}"),
            );
            return None;
        }
        Some(RawOnExhausted::Table(r)) => {
            if holder == Holder::Provider {
                src.error(
                    &r.route_to.span(),
                    "a provider budget cannot route elsewhere: when it is spent, routing skips the provider",
                );
                return None;
            }
            OnExhausted::RouteTo(target(src, &r.route_to)?)
        }
    };
    Some(Budget {
        unit,
        limit,
        period,
        timezone,
        tz,
        on_exhausted,
    })
}

pub(super) fn rate_limit(
    src: &mut Source<'_>,
    raw: Option<&toml::Spanned<RawRateLimit>>,
) -> RateLimit {
    let Some(raw) = raw else {
        return RateLimit::default();
    };
    let mut check = |v: &Option<toml::Spanned<u64>>, what: &str| -> Option<u64> {
        let v = v.as_ref()?;
        if *v.get_ref() == 0 {
            src.error(
                &v.span(),
                format!("rate_limit {what} must be greater than 0"),
            );
            return None;
        }
        Some(*v.get_ref())
    };
    let r = raw.get_ref();
    let limit = RateLimit {
        rpm: check(&r.rpm, "rpm"),
        tpm: check(&r.tpm, "tpm"),
        concurrent: check(&r.concurrent, "concurrent"),
    };
    if limit.is_empty() && r.rpm.is_none() && r.tpm.is_none() && r.concurrent.is_none() {
        src.error(&raw.span(), "a rate_limit needs rpm, tpm or concurrent");
    }
    limit
}

/// Policies of `[users.NAME]` or `[projects.NAME]`.
pub(super) fn members(
    src: &mut Source<'_>,
    raw: &indexmap::IndexMap<String, toml::Spanned<super::raw::RawMember>>,
    target: &mut dyn FnMut(&mut Source<'_>, &toml::Spanned<String>) -> Option<Target>,
) -> indexmap::IndexMap<String, Policy> {
    raw.iter()
        .map(|(name, m)| {
            let span = m.span();
            let m = m.get_ref();
            let policy = Policy {
                budgets: budgets(src, &span, m.budget.as_ref(), Holder::Caller, target),
                rate_limit: rate_limit(src, m.rate_limit.as_ref()),
            };
            (name.clone(), policy)
        })
        .collect()
}

/// The limits of a key created through the CLI or the admin API, as the store keeps them
/// (JSON in `virtual_keys.policy`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredPolicy {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budgets: Vec<StoredBudget>,
    #[serde(default, skip_serializing_if = "RateLimit::is_empty")]
    pub rate_limit: RateLimit,
    /// Bodies kept in a key's records (keys only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_bodies: Option<super::BodyLevel>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredBudget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    pub period: Period,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// `provider/model` to serve from once this budget is spent (default: block).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_to: Option<String>,
}

impl StoredPolicy {
    /// Validate into a [`Policy`]; the error says what is wrong.
    pub fn to_policy(&self) -> Result<Policy, String> {
        let mut budgets: Vec<Budget> = Vec::new();
        for b in &self.budgets {
            let (unit, limit) = amount(b.usd, b.tokens).map_err(|e| e.message().to_owned())?;
            let timezone = b.timezone.clone().unwrap_or_else(|| "UTC".to_owned());
            let tz = time_zone(&timezone).map_err(|()| time_zone_error(&timezone))?;
            let on_exhausted = match &b.route_to {
                None => OnExhausted::Block,
                Some(t) => {
                    let (provider, model) = match t.split_once('/') {
                        Some((p, m)) if !p.is_empty() && !m.is_empty() => (p, Some(m.to_owned())),
                        _ => return Err(format!("route_to `{t}` must be provider/model")),
                    };
                    OnExhausted::RouteTo(Target {
                        provider: provider.to_owned(),
                        model,
                    })
                }
            };
            if budgets
                .iter()
                .any(|o| o.unit == unit && o.period == b.period)
            {
                return Err("two budgets in the same unit over the same period".into());
            }
            budgets.push(Budget {
                unit,
                limit,
                period: b.period,
                timezone,
                tz,
                on_exhausted,
            });
        }
        for v in [
            self.rate_limit.rpm,
            self.rate_limit.tpm,
            self.rate_limit.concurrent,
        ] {
            if v == Some(0) {
                return Err("rate limits must be greater than 0".into());
            }
        }
        Ok(Policy {
            budgets,
            rate_limit: self.rate_limit,
        })
    }
}
