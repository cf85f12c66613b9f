//! `gatehouse keys create|list|revoke`: virtual keys managed from the command line, against
//! the store the config names (SPEC §1). A running gateway picks changes up within a second
//! for a new key (on its first use) and within `keys::REFRESH_INTERVAL` for a revocation.

use std::io::Write;
use std::time::Duration;

use serde_json::json;

use crate::config::{Config, ModelPattern};
use crate::governance::{keys, now_unix};
use crate::store::{KeyRow, Store};

/// What `keys create` was asked for.
#[derive(Debug, Default)]
pub struct NewKey {
    pub name: String,
    pub team: Option<String>,
    pub user: Option<String>,
    pub project: Option<String>,
    pub models: Option<Vec<String>>,
    pub expires_in: Option<Duration>,
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
        return Err(format!(
            "unknown team `{team}`: define it in the config with [teams.{team}]"
        ));
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
    };
    store.insert_key(&row).await.map_err(|e| e.to_string())?;
    Ok((row, key))
}

/// A key as listings show it (never the key, never its hash).
pub fn key_json(k: &KeyRow, now: i64) -> serde_json::Value {
    let status = if k.revoked_at.is_some() {
        "revoked"
    } else if k.expires_at.is_some_and(|t| t <= now) {
        "expired"
    } else {
        "active"
    };
    json!({
        "id": k.id, "name": k.name, "key": k.hint, "status": status,
        "user": k.user, "team": k.team, "project": k.project, "models": k.models,
        "created_at": k.created_at, "expires_at": k.expires_at, "revoked_at": k.revoked_at,
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
