//! Dashboard sessions in the store (`ui::session` decides what they mean): created at sign-in,
//! read on a page view that this instance has not seen lately, revoked at sign-out, purged
//! once expired.
//!
//! Only hashes are stored: the session id's and the credential's (see the migration
//! `0014_ui_sessions.sql`); nothing here ever sees the session id or the credential itself.

use sqlx::Row;

use super::{Store, StoreError, on_store, sql};

/// One dashboard session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// Hex SHA-256 of the session id.
    pub id_hash: String,
    /// `admin` or `key`.
    pub who: String,
    /// Hex SHA-256 of the credential signed in with.
    pub credential_hash: String,
    /// Unix seconds.
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

impl Store {
    pub async fn insert_session(&self, s: &SessionRow) -> Result<(), StoreError> {
        self.bounded(async {
            let text = sql(
                self,
                "INSERT INTO ui_sessions (id_hash, who, credential_hash, created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6)",
            );
            on_store!(self, pool => {
                sqlx::query(&text)
                    .bind(&s.id_hash)
                    .bind(&s.who)
                    .bind(&s.credential_hash)
                    .bind(s.created_at)
                    .bind(s.expires_at)
                    .bind(s.revoked_at)
                    .execute(pool)
                    .await
                    .map(|_| ())
            })
            .map_err(|e| self.error(&e))
        })
        .await
    }

    /// The session with this id hash, revoked or expired ones included (the caller decides).
    pub async fn session(&self, id_hash: &str) -> Result<Option<SessionRow>, StoreError> {
        self.bounded(async {
            let text = sql(
                self,
                "SELECT id_hash, who, credential_hash, created_at, expires_at, revoked_at FROM ui_sessions WHERE id_hash = $1",
            );
            on_store!(self, pool => {
                match sqlx::query(&text).bind(id_hash).fetch_optional(pool).await {
                    Ok(Some(r)) => (|| {
                        Ok(Some(SessionRow {
                            id_hash: r.try_get("id_hash")?,
                            who: r.try_get("who")?,
                            credential_hash: r.try_get("credential_hash")?,
                            created_at: r.try_get("created_at")?,
                            expires_at: r.try_get("expires_at")?,
                            revoked_at: r.try_get("revoked_at")?,
                        }))
                    })(),
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .map_err(|e| self.error(&e))
        })
        .await
    }

    /// Mark a session signed out at `now`; whether there was one still open.
    pub async fn revoke_session(&self, id_hash: &str, now: i64) -> Result<bool, StoreError> {
        self.bounded(async {
            let text = sql(
                self,
                "UPDATE ui_sessions SET revoked_at = $2 WHERE id_hash = $1 AND revoked_at IS NULL",
            );
            on_store!(self, pool => {
                sqlx::query(&text)
                    .bind(id_hash)
                    .bind(now)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected() > 0)
            })
            .map_err(|e| self.error(&e))
        })
        .await
    }

    /// Delete the sessions that expired before `now`; how many.
    pub async fn purge_sessions(&self, now: i64) -> Result<u64, StoreError> {
        self.bounded(async {
            let text = sql(self, "DELETE FROM ui_sessions WHERE expires_at < $1");
            on_store!(self, pool => {
                sqlx::query(&text)
                    .bind(now)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())
            })
            .map_err(|e| self.error(&e))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn round_trip(store: &Store) {
        let row = SessionRow {
            id_hash: "a".repeat(64),
            who: "key".into(),
            credential_hash: "b".repeat(64),
            created_at: 1_000,
            expires_at: 2_000,
            revoked_at: None,
        };
        store.insert_session(&row).await.unwrap();
        assert_eq!(
            store.session(&row.id_hash).await.unwrap(),
            Some(row.clone())
        );
        assert_eq!(store.session(&"c".repeat(64)).await.unwrap(), None);
        assert!(store.revoke_session(&row.id_hash, 1_500).await.unwrap());
        assert!(!store.revoke_session(&row.id_hash, 1_600).await.unwrap());
        let got = store.session(&row.id_hash).await.unwrap().unwrap();
        assert_eq!(got.revoked_at, Some(1_500));
        assert_eq!(store.purge_sessions(2_000).await.unwrap(), 0);
        assert_eq!(store.purge_sessions(2_001).await.unwrap(), 1);
        assert_eq!(store.session(&row.id_hash).await.unwrap(), None);
    }

    #[tokio::test]
    async fn sessions_are_created_read_revoked_and_purged_on_sqlite() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        round_trip(&store).await;
    }

    #[tokio::test]
    async fn sessions_are_created_read_revoked_and_purged_on_postgres() {
        if let Some(store) = crate::store::test_postgres().await {
            round_trip(&store).await;
        }
    }
}
