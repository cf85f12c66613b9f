//! Virtual keys: the credentials clients present to Gatehouse (never to a provider).
//!
//! A key is `sk-gate-` followed by 43 base62 characters (256 bits from the OS generator),
//! shown once when created. The store keeps its SHA-256 and a hint (`sk-gate-AbCd…wxyz`).
//! Because keys are long and random, one SHA-256 is the right hash (a slow password hash
//! would add nothing against brute force and cost every request); the digest is found by
//! map lookup and then compared in constant time.
//!
//! The [`KeyRing`] is the in-memory index the request path reads: static keys from the
//! config plus every key of the store, refreshed in the background and on a miss (at most
//! once per [`MISS_RELOAD_INTERVAL`]), so a key created by `gatehouse keys create` in another
//! process works within a second and a revoked one stops within [`REFRESH_INTERVAL`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{Config, ModelPattern};
use crate::store::KeyRow;

/// Every key starts with this, so that leaked keys are easy to recognise (secret scanners).
pub const KEY_PREFIX: &str = "sk-gate-";
/// 43 base62 characters carry 256 bits.
const KEY_BODY_LEN: usize = 43;
/// The role of a key that administers its team through the admin API.
pub const ROLE_TEAM_ADMIN: &str = "team_admin";
/// How often the ring is reloaded from the store.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(10);
/// An unknown key reloads the ring at most this often (so guessing keys cannot hammer the
/// store).
pub const MISS_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A new random key.
pub fn generate() -> Result<String, getrandom::Error> {
    let mut key = String::with_capacity(KEY_PREFIX.len() + KEY_BODY_LEN);
    key.push_str(KEY_PREFIX);
    let mut buf = [0u8; 64];
    while key.len() < KEY_PREFIX.len() + KEY_BODY_LEN {
        getrandom::fill(&mut buf)?;
        // Rejection sampling keeps every character equally likely: 248 = 4 * 62.
        for b in buf {
            if b < 248 && key.len() < KEY_PREFIX.len() + KEY_BODY_LEN {
                key.push(BASE62[usize::from(b % 62)] as char);
            }
        }
    }
    Ok(key)
}

pub fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Whether two digests are equal, compared in constant time (`subtle`, no early exit at
/// the first differing byte). The one comparison of a presented credential with a known
/// one: virtual keys ([`KeyRing::check`]) and the admin token (`admin::caller`) alike.
pub fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    bool::from(a.ct_eq(b))
}

pub fn hex(d: &[u8; 32]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A digest written by [`hex`].
pub fn from_hex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// What listings may show of a key: its prefix and last four characters.
pub fn hint(key: &str) -> String {
    let n = key.chars().count();
    if n < 16 {
        return "***".to_owned();
    }
    let head: String = key.chars().take(KEY_PREFIX.len().min(n - 8) + 4).collect();
    let tail: String = key.chars().skip(n - 4).collect();
    format!("{head}…{tail}")
}

/// Who is calling: the key and what it belongs to. Attached to every authenticated request.
#[derive(Debug)]
pub struct Principal {
    pub key_id: String,
    pub key_name: String,
    pub user: Option<String>,
    pub team: Option<String>,
    pub project: Option<String>,
    /// The key's own budgets and rate limit.
    pub policy: crate::config::Policy,
    /// The key administers its team through the admin API.
    pub team_admin: bool,
    /// Bodies kept in this key's records (`None`: the provider's, then `[log] bodies`).
    pub log_bodies: Option<crate::config::BodyLevel>,
    /// Models this key may use (`None`: no limit of its own).
    models: Option<Vec<ModelPattern>>,
    /// Unix seconds.
    expires_at: Option<i64>,
    revoked: bool,
}

impl Principal {
    /// May this key call `model`? Both the key's own list and its team's must allow it.
    /// The key's own model list (`None`: whatever its team may use).
    pub fn models(&self) -> Option<&[ModelPattern]> {
        self.models.as_deref()
    }

    pub fn allows(&self, model: &str, team_models: Option<&[ModelPattern]>) -> bool {
        let ok =
            |list: Option<&[ModelPattern]>| list.is_none_or(|l| l.iter().any(|p| p.matches(model)));
        ok(self.models.as_deref()) && ok(team_models)
    }
}

/// A principal for unit tests elsewhere in the crate.
#[cfg(test)]
pub fn test_principal(models: Option<&[&str]>, policy: crate::config::Policy) -> Principal {
    Principal {
        key_id: "key_test".into(),
        key_name: "test".into(),
        user: None,
        team: Some("t".into()),
        project: None,
        policy,
        team_admin: true,
        log_bodies: None,
        models: models.map(|l| l.iter().filter_map(|m| ModelPattern::new(m).ok()).collect()),
        expires_at: None,
        revoked: false,
    }
}

/// Why a credential was refused; each becomes a 401 with its own message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    Unknown,
    Revoked,
    Expired,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Missing => {
                "missing API key: send it as `Authorization: Bearer <key>` or `x-api-key`"
            }
            Refusal::Unknown => "invalid API key",
            Refusal::Revoked => "this API key has been revoked",
            Refusal::Expired => "this API key has expired",
        }
    }
}

/// The keys the gateway accepts, indexed by digest.
#[derive(Default)]
pub struct KeyRing {
    by_digest: HashMap<[u8; 32], Arc<Principal>>,
}

impl KeyRing {
    /// Static keys from the config, then the store's (a store key with the same digest as a
    /// static one is ignored: the config wins).
    pub fn build(config: &Config, stored: &[KeyRow]) -> Self {
        let mut by_digest = HashMap::new();
        for k in &config.keys {
            let d = digest(k.key.expose());
            by_digest.insert(
                d,
                Arc::new(Principal {
                    key_id: format!("static:{}", k.name),
                    key_name: k.name.clone(),
                    user: k.user.clone(),
                    team: k.team.clone(),
                    project: k.project.clone(),
                    policy: k.policy.clone(),
                    team_admin: k.team_admin,
                    models: k.models.clone(),
                    log_bodies: k.log_bodies,
                    expires_at: None,
                    revoked: false,
                }),
            );
        }
        for row in stored {
            let Some(d) = from_hex(&row.hash) else {
                tracing::warn!(key_id = %row.id, "stored key has a malformed hash; ignored");
                continue;
            };
            let models = row.models.as_ref().map(|list| {
                list.iter()
                    .filter_map(|m| ModelPattern::new(m).ok())
                    .collect::<Vec<_>>()
            });
            let (policy, log_bodies) = match row.policy.as_deref().map(|text| {
                serde_json::from_str::<crate::config::StoredPolicy>(text)
                    .map_err(|e| e.to_string())
                    .and_then(|p| Ok((p.to_policy()?, p.log_bodies)))
            }) {
                None => (crate::config::Policy::default(), None),
                Some(Ok(p)) => p,
                Some(Err(e)) => {
                    // Fail closed: a key whose limits cannot be read is not accepted.
                    tracing::error!(key_id = %row.id, error = %e, "stored key has unreadable limits; refused until fixed");
                    continue;
                }
            };
            by_digest.entry(d).or_insert_with(|| {
                Arc::new(Principal {
                    policy,
                    log_bodies,
                    team_admin: row.role.as_deref() == Some(ROLE_TEAM_ADMIN) && row.team.is_some(),
                    key_id: row.id.clone(),
                    key_name: row.name.clone(),
                    user: row.user.clone(),
                    team: row.team.clone(),
                    project: row.project.clone(),
                    models,
                    expires_at: row.expires_at,
                    revoked: row.revoked_at.is_some(),
                })
            });
        }
        Self { by_digest }
    }

    /// Every usable key (not revoked), for reports over all keys.
    pub fn principals(&self) -> impl Iterator<Item = &Arc<Principal>> {
        self.by_digest.values().filter(|p| !p.revoked)
    }

    /// No key exists at all: on loopback the gateway is then open (SPEC §1).
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// Check a presented credential at time `now` (Unix seconds).
    pub fn check(&self, presented: &str, now: i64) -> Result<Arc<Principal>, Refusal> {
        self.check_digest(&digest(presented), now)
    }

    /// Check a credential known by its digest (a dashboard session keeps the digest of the
    /// key it signed in with, never the key) at time `now`.
    pub fn check_digest(&self, d: &[u8; 32], now: i64) -> Result<Arc<Principal>, Refusal> {
        let d = *d;
        let Some((stored, p)) = self.by_digest.get_key_value(&d) else {
            return Err(Refusal::Unknown);
        };
        // The map found it by digest; confirm without a data-dependent early exit.
        if !same_digest(stored, &d) {
            return Err(Refusal::Unknown);
        }
        if p.revoked {
            return Err(Refusal::Revoked);
        }
        if p.expires_at.is_some_and(|t| t <= now) {
            return Err(Refusal::Expired);
        }
        Ok(p.clone())
    }
}

/// The credential a client sent, in any of the forms SPEC §3 accepts:
/// `Authorization: Bearer`, `x-api-key`, `x-goog-api-key`, or `?key=`.
pub fn presented<'a>(headers: &'a http::HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
    if let Some(v) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        if v.get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("bearer "))
        {
            let key = v[7..].trim();
            if !key.is_empty() {
                return Some(key);
            }
        }
    }
    for name in ["x-api-key", "x-goog-api-key"] {
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
            let v = v.trim();
            if !v.is_empty() {
                return Some(v);
            }
        }
    }
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("key="))
        .filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_equal_only_when_every_byte_is() {
        let a = digest("sk-gate-the-one-key-0000000000000000000000000000000");
        assert!(same_digest(&a, &a.clone()));
        // Differing in the first byte, the last, and each one between: all unequal (a
        // comparison that stopped early would still say so; that it does not stop is
        // `subtle`'s `ct_eq`, which tests/guards.rs checks is the only one used).
        for i in 0..32 {
            for bit in [0x01, 0x80] {
                let mut b = a;
                b[i] ^= bit;
                assert!(!same_digest(&a, &b), "byte {i}, bit {bit:#x}");
                assert!(!same_digest(&b, &a), "byte {i}, bit {bit:#x}");
            }
        }
        assert!(!same_digest(&[0; 32], &[0xff; 32]));
        assert!(same_digest(&[0; 32], &[0; 32]));
    }

    #[test]
    fn generated_keys_are_unique_prefixed_and_base62() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(a.len(), KEY_PREFIX.len() + KEY_BODY_LEN);
        assert!(
            a[KEY_PREFIX.len()..]
                .bytes()
                .all(|c| c.is_ascii_alphanumeric())
        );
    }

    #[test]
    fn hint_shows_prefix_and_last_four_only() {
        let k = "sk-gate-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefgh";
        assert_eq!(hint(k), "sk-gate-ABCD…efgh");
        assert_eq!(hint("short"), "***");
        let d = digest(k);
        assert_eq!(from_hex(&hex(&d)), Some(d));
    }

    #[test]
    fn credentials_are_read_from_every_accepted_place() {
        let mut h = http::HeaderMap::new();
        assert_eq!(presented(&h, None), None);
        assert_eq!(presented(&h, Some("alt=sse&key=k1")), Some("k1"));
        h.insert("x-goog-api-key", "k2".parse().unwrap());
        assert_eq!(presented(&h, Some("key=k1")), Some("k2"));
        h.insert("x-api-key", "k3".parse().unwrap());
        assert_eq!(presented(&h, None), Some("k3"));
        h.insert("authorization", "bearer  k4 ".parse().unwrap());
        assert_eq!(presented(&h, None), Some("k4"));
        h.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(presented(&h, None), Some("k3"));
    }
}
