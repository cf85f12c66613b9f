//! `gatehouse keys create|list|revoke` and `gatehouse usage`: virtual keys and usage reports
//! from the command line, against the store the config names (SPEC §1). A running gateway
//! picks key changes up within a second for a new key (on its first use) and within
//! `keys::REFRESH_INTERVAL` for a revocation.

use std::io::Write;
use std::time::Duration;

use serde_json::json;

use crate::config::{
    Config, ModelPattern, NANOS_PER_USD, Period, RateLimit, StoredBudget, StoredPolicy,
};
use crate::governance::keys::ROLE_TEAM_ADMIN;
use crate::governance::{keys, now_unix};
use crate::store::{GroupBy, KeyRow, ReportRow, Store};

/// What `keys create` was asked for.
#[derive(Debug, Default)]
pub struct NewKey {
    pub name: String,
    pub team: Option<String>,
    pub user: Option<String>,
    pub project: Option<String>,
    pub models: Option<Vec<String>>,
    pub expires_in: Option<Duration>,
    /// The key's own budgets and rate limit (JSON of [`crate::config::StoredPolicy`]).
    pub policy: Option<String>,
    /// `team_admin` to let the key administer its team.
    pub role: Option<String>,
}

/// Create a key; returns the stored row and the key itself, which is shown once and never
/// again.
pub async fn create_key(
    config: &Config,
    store: &Store,
    new: NewKey,
) -> Result<(KeyRow, String), String> {
    if new.name.trim().is_empty() {
        return Err("a key needs a --name".to_owned());
    }
    if let Some(team) = &new.team
        && !config.teams.contains_key(team)
    {
        let stored = store
            .list_entities(crate::store::Entity::Team)
            .await
            .map_err(|e| e.to_string())?;
        if !stored.iter().any(|t| &t.name == team) {
            return Err(format!(
                "unknown team `{team}`: define it in the config with [teams.{team}] or create it through the admin API"
            ));
        }
    }
    if let Some(role) = &new.role
        && role != ROLE_TEAM_ADMIN
    {
        return Err(format!(
            "unknown role `{role}`: the only role is `{ROLE_TEAM_ADMIN}`"
        ));
    }
    if new.role.is_some() && new.team.is_none() {
        return Err("a team admin key needs a team".to_owned());
    }
    for m in new.models.iter().flatten() {
        ModelPattern::new(m).map_err(|e| format!("invalid model pattern `{m}`: {e}"))?;
    }
    let key = keys::generate().map_err(|e| format!("no randomness available: {e}"))?;
    let now = now_unix();
    let row = KeyRow {
        id: format!("key_{}", uuid::Uuid::now_v7().simple()),
        name: new.name,
        hash: keys::hex(&keys::digest(&key)),
        hint: keys::hint(&key),
        user: new.user,
        team: new.team,
        project: new.project,
        models: new.models,
        created_at: now,
        expires_at: new
            .expires_in
            .map(|d| now.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))),
        revoked_at: None,
        policy: new.policy,
        role: new.role,
    };
    store.insert_key(&row).await.map_err(|e| e.to_string())?;
    Ok((row, key))
}

/// A key's status at `now`: `revoked`, `expired` or `active`.
pub fn key_status(k: &KeyRow, now: i64) -> &'static str {
    if k.revoked_at.is_some() {
        "revoked"
    } else if k.expires_at.is_some_and(|t| t <= now) {
        "expired"
    } else {
        "active"
    }
}

/// A key as listings show it (never the key, never its hash).
pub fn key_json(k: &KeyRow, now: i64) -> serde_json::Value {
    let status = key_status(k, now);
    json!({
        "id": k.id, "name": k.name, "key": k.hint, "status": status,
        "user": k.user, "team": k.team, "project": k.project, "models": k.models,
        "created_at": k.created_at, "expires_at": k.expires_at, "revoked_at": k.revoked_at,
        "role": k.role,
        "limits": k.policy.as_deref().and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok()),
    })
}

/// `keys list` as a table.
pub fn write_key_table(out: &mut impl Write, rows: &[KeyRow], now: i64) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<31} {:<16} {:<18} {:<8} {:<12} {:<12} MODELS",
        "ID", "NAME", "KEY", "STATUS", "TEAM", "USER"
    )?;
    for k in rows {
        let j = key_json(k, now);
        writeln!(
            out,
            "{:<31} {:<16} {:<18} {:<8} {:<12} {:<12} {}",
            k.id,
            k.name,
            k.hint,
            j["status"].as_str().unwrap_or(""),
            k.team.as_deref().unwrap_or("-"),
            k.user.as_deref().unwrap_or("-"),
            k.models.as_ref().map_or("*".to_owned(), |m| m.join(",")),
        )?;
    }
    Ok(())
}

/// A key's own limits as `keys create` takes them.
#[derive(Debug, Default)]
pub struct KeyLimits {
    /// `5usd/daily`, `200000tokens/monthly`.
    pub budgets: Vec<String>,
    pub timezone: Option<String>,
    pub route_to: Option<String>,
    pub rate_limit: RateLimit,
    /// Bodies kept in the key's records.
    pub log_bodies: Option<crate::config::BodyLevel>,
}

/// `5usd/daily` as a stored budget.
pub fn parse_budget(spec: &str) -> Result<StoredBudget, String> {
    let bad =
        || format!("invalid budget `{spec}`: expected e.g. `5usd/daily` or `200000tokens/monthly`");
    let (amount, period) = spec.split_once('/').ok_or_else(bad)?;
    let period = Period::parse(period.trim()).ok_or_else(bad)?;
    let amount = amount.trim();
    let (usd, tokens) = if let Some(n) = amount.strip_suffix("usd") {
        (Some(n.trim().parse::<f64>().map_err(|_| bad())?), None)
    } else if let Some(n) = amount.strip_suffix("tokens") {
        (None, Some(n.trim().parse::<u64>().map_err(|_| bad())?))
    } else {
        return Err(bad());
    };
    Ok(StoredBudget {
        usd,
        tokens,
        period,
        timezone: None,
        route_to: None,
    })
}

/// The stored JSON of a key's limits (`None` when it has none), checked like the config's.
pub fn policy_json(config: &Config, limits: &KeyLimits) -> Result<Option<String>, String> {
    let mut budgets = Vec::new();
    for spec in &limits.budgets {
        let mut b = parse_budget(spec)?;
        b.timezone.clone_from(&limits.timezone);
        b.route_to.clone_from(&limits.route_to);
        budgets.push(b);
    }
    if let Some(t) = &limits.route_to {
        let provider = t.split_once('/').map_or(t.as_str(), |(p, _)| p);
        if config.provider(provider).is_none() {
            return Err(format!(
                "route_to `{t}` names unknown provider `{provider}`"
            ));
        }
    }
    let stored = StoredPolicy {
        budgets,
        rate_limit: limits.rate_limit,
        log_bodies: limits.log_bodies,
    };
    stored.to_policy()?;
    if stored == StoredPolicy::default() {
        return Ok(None);
    }
    serde_json::to_string(&stored)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// A usage report as JSON (dollars, not nano-dollars).
pub fn report_json(by: GroupBy, rows: &[ReportRow]) -> serde_json::Value {
    let list: Vec<_> = rows
        .iter()
        .map(|r| {
            json!({
                "group": r.group, "requests": r.requests, "input_tokens": r.input_tokens,
                "output_tokens": r.output_tokens, "cost_usd": r.cost_nanos as f64 / NANOS_PER_USD,
            })
        })
        .collect();
    json!({"by": by, "rows": list})
}

/// A usage report as a table, most expensive first.
pub fn write_report(out: &mut impl Write, by: GroupBy, rows: &[ReportRow]) -> std::io::Result<()> {
    let head = serde_json::to_value(by)
        .ok()
        .and_then(|v| v.as_str().map(str::to_uppercase))
        .unwrap_or_default();
    writeln!(
        out,
        "{:<32} {:>9} {:>14} {:>14} {:>12}",
        head, "REQUESTS", "INPUT TOKENS", "OUTPUT TOKENS", "COST USD"
    )?;
    for r in rows {
        let group = if by == GroupBy::Day {
            r.group
                .parse::<i64>()
                .ok()
                .and_then(|s| jiff::Timestamp::from_second(s).ok())
                .map_or_else(|| r.group.clone(), |t| t.strftime("%Y-%m-%d").to_string())
        } else {
            r.group.clone()
        };
        writeln!(
            out,
            "{:<32} {:>9} {:>14} {:>14} {:>12.6}",
            group,
            r.requests,
            r.input_tokens,
            r.output_tokens,
            r.cost_nanos as f64 / NANOS_PER_USD
        )?;
    }
    Ok(())
}

/// The request log as a table: one line per request, newest first.
pub fn write_logs(
    out: &mut impl std::io::Write,
    rows: &[serde_json::Value],
) -> std::io::Result<()> {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_owned();
    writeln!(
        out,
        "{:<20} {:<28} {:<12} {:<24} {:<9} {:>4} {:>8} {:>8} {:>9}  error",
        "time (UTC)",
        "request id",
        "key",
        "model (served)",
        "status",
        "http",
        "ms",
        "tokens",
        "cost $"
    )?;
    for r in rows {
        let at = r["created_at"]
            .as_i64()
            .and_then(|t| jiff::Timestamp::from_second(t).ok())
            .map_or_else(
                || "-".to_owned(),
                |t| t.strftime("%Y-%m-%d %H:%M:%S").to_string(),
            );
        let model = match (r["requested_model"].as_str(), r["model"].as_str()) {
            (Some(a), Some(s)) if a != s => format!("{a} ({s})"),
            (Some(a), _) => a.to_owned(),
            _ => "-".to_owned(),
        };
        let tokens = r["tokens"]["input"].as_u64().unwrap_or(0)
            + r["tokens"]["output"].as_u64().unwrap_or(0);
        writeln!(
            out,
            "{:<20} {:<28} {:<12} {:<24} {:<9} {:>4} {:>8} {:>8} {:>9.6}  {}",
            at,
            text(&r["request_id"]),
            text(&r["key_name"]),
            model,
            text(&r["status"]),
            r["http_status"]
                .as_u64()
                .map_or_else(|| "-".to_owned(), |s| s.to_string()),
            r["latency_ms"]
                .as_u64()
                .map_or_else(|| "-".to_owned(), |s| s.to_string()),
            tokens,
            r["cost_usd"].as_f64().unwrap_or(0.0),
            r["error"].as_str().unwrap_or(""),
        )?;
    }
    Ok(())
}
