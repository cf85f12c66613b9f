//! Dashboard sessions: a sign-in at `/ui/login` (with the admin token or a key) makes one;
//! the browser holds its id in a cookie, the store its hash (`store::SessionRow`).
//!
//! - **Ids** are 32 bytes from the OS's randomness, written as 64 hex digits. Only their
//!   SHA-256 is stored or cached: a copy of the database opens no session.
//! - **Who** is re-derived on every request from the credential's digest kept with the
//!   session: an admin session holds while the configured admin token is the one it signed
//!   in with (rotating the token ends it); a key's session while the key is usable (a revoked
//!   or expired key ends it). [`Sessions::find`] returns the row; `ui` makes the caller.
//! - **Lifetime**: a fixed one from sign-in ([`LIFETIME`]); sign-out revokes the row, which
//!   this instance forgets at once and others within [`CACHE_TTL`] (they cache rows so that
//!   a page view costs no store call).
//! - Expired rows are deleted by [`Sessions::purge`] (the request log's retention task).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::keys::{digest, hex};
use crate::store::{SessionRow, Store, StoreError};

/// How long a session lasts from sign-in.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// How long this instance trusts a cached row (a sign-out elsewhere shows within it).
pub const CACHE_TTL: Duration = Duration::from_secs(10);
/// Cached rows at most; past it the cache starts over.
const CACHE_MAX: usize = 10_000;

/// What signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    Admin,
    Key,
}

impl Who {
    fn as_str(self) -> &'static str {
        match self {
            Who::Admin => "admin",
            Who::Key => "key",
        }
    }

    pub fn parse(s: &str) -> Option<Who> {
        match s {
            "admin" => Some(Who::Admin),
            "key" => Some(Who::Key),
            _ => None,
        }
    }
}

/// The sessions this instance has read lately, by id hash (`None`: the store has none).
#[derive(Default)]
pub struct Sessions {
    cache: Mutex<HashMap<String, (Instant, Option<SessionRow>)>>,
}

/// A new session id: 64 hex digits of OS randomness.
pub fn new_id() -> Result<String, getrandom::Error> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b)?;
    Ok(hex(&b))
}

/// The hash a session id is stored and cached under.
pub fn id_hash(id: &str) -> String {
    hex(&digest(id))
}

impl Sessions {
    /// Store a new session for `who`, signed in with the credential whose digest is
    /// `credential`, at `now` (Unix seconds). Returns the id for the cookie.
    pub async fn create(
        &self,
        store: &Store,
        who: Who,
        credential: &[u8; 32],
        now: i64,
    ) -> Result<(String, SessionRow), StoreError> {
        let id = new_id().map_err(|e| StoreError::invalid(format!("no randomness: {e}")))?;
        let row = SessionRow {
            id_hash: id_hash(&id),
            who: who.as_str().to_owned(),
            credential_hash: hex(credential),
            created_at: now,
            expires_at: now.saturating_add(LIFETIME.as_secs() as i64),
            revoked_at: None,
        };
        store.insert_session(&row).await?;
        self.remember(&row.id_hash, Some(row.clone()));
        Ok((id, row))
    }

    /// The open session with this id at `now`: neither revoked nor expired.
    pub async fn find(
        &self,
        store: &Store,
        id: &str,
        now: i64,
    ) -> Result<Option<SessionRow>, StoreError> {
        // Ids are 64 hex digits; anything else cannot be one (and costs no store call).
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let key = id_hash(id);
        let cached = self
            .lock()
            .get(&key)
            .and_then(|(at, row)| (at.elapsed() < CACHE_TTL).then(|| row.clone()));
        let row = match cached {
            Some(row) => row,
            None => {
                let row = store.session(&key).await?;
                self.remember(&key, row.clone());
                row
            }
        };
        Ok(row.filter(|r| r.revoked_at.is_none() && now < r.expires_at))
    }

    /// Sign a session out at `now`: revoked in the store, forgotten here at once.
    pub async fn revoke(&self, store: &Store, id: &str, now: i64) -> Result<(), StoreError> {
        let key = id_hash(id);
        self.remember(&key, None);
        store.revoke_session(&key, now).await.map(|_| ())
    }

    /// Delete the expired sessions; how many.
    pub async fn purge(&self, store: &Store, now: i64) -> Result<u64, StoreError> {
        store.purge_sessions(now).await
    }

    fn remember(&self, key: &str, row: Option<SessionRow>) {
        let mut cache = self.lock();
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(key.to_owned(), (Instant::now(), row));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Option<SessionRow>)>> {
        // A panic while holding the lock leaves a map that is still sound.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_session_is_found_until_it_is_revoked_or_expires() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let sessions = Sessions::default();
        let (id, row) = sessions
            .create(&store, Who::Key, &digest("gh-key"), 1_000)
            .await
            .unwrap();
        assert_eq!(id.len(), 64);
        assert_ne!(row.id_hash, id, "the store holds the id's hash, not the id");
        assert_eq!(row.credential_hash, hex(&digest("gh-key")));
        assert_eq!(
            sessions.find(&store, &id, 1_001).await.unwrap(),
            Some(row.clone())
        );
        // Another instance (no cache) reads it from the store.
        let other = Sessions::default();
        assert_eq!(
            other.find(&store, &id, 1_001).await.unwrap(),
            Some(row.clone())
        );
        // Expired at its end.
        assert_eq!(other.find(&store, &id, row.expires_at).await.unwrap(), None);
        // Malformed ids and unknown ones find nothing.
        assert_eq!(sessions.find(&store, "zz", 1_001).await.unwrap(), None);
        assert_eq!(
            sessions
                .find(&store, &new_id().unwrap(), 1_001)
                .await
                .unwrap(),
            None
        );
        // Signed out: gone here at once, and for an instance that had not cached it.
        sessions.revoke(&store, &id, 1_002).await.unwrap();
        assert_eq!(sessions.find(&store, &id, 1_003).await.unwrap(), None);
        assert_eq!(
            Sessions::default().find(&store, &id, 1_003).await.unwrap(),
            None
        );
        assert_eq!(sessions.purge(&store, row.expires_at + 1).await.unwrap(), 1);
    }
}
