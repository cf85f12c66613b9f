//! Virtual keys in the store: create, list, revoke, and load them all for the key ring.
//!
//! Only the key's SHA-256 is stored (see `governance::keys`); nothing here ever sees or
//! returns the key itself.

use sqlx::Row;

use super::{Store, StoreError, on_store, sql};

/// One virtual key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    pub id: String,
    pub name: String,
    /// Hex SHA-256 of the key.
    pub hash: String,
    /// What listings show: the prefix and the last four characters.
    pub hint: String,
    pub user: Option<String>,
    pub team: Option<String>,
    pub project: Option<String>,
    /// Model globs this key may use; `None` = whatever its team may use.
    pub models: Option<Vec<String>>,
    /// Unix seconds.
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The key's own budgets and rate limit, as JSON (`config::StoredPolicy`).
    pub policy: Option<String>,
    /// `team_admin`, or `None` for an ordinary key.
    pub role: Option<String>,
}

const COLUMNS: &str = "id, name, hash, hint, user_name, team, project, models, created_at, expires_at, revoked_at, policy, role";

/// A `virtual_keys` row (any backend) as a [`KeyRow`].
macro_rules! key_row {
    ($r:expr) => {{
        let r = $r;
        (|| -> Result<KeyRow, sqlx::Error> {
            let models: Option<String> = r.try_get("models")?;
            let models = match models {
                Some(text) => Some(
                    serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                ),
                None => None,
            };
            Ok(KeyRow {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                hash: r.try_get("hash")?,
                hint: r.try_get("hint")?,
                user: r.try_get("user_name")?,
                team: r.try_get("team")?,
                project: r.try_get("project")?,
                models,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
                revoked_at: r.try_get("revoked_at")?,
                policy: r.try_get("policy")?,
                role: r.try_get("role")?,
            })
        })()
    }};
}

impl Store {
    pub async fn insert_key(&self, k: &KeyRow) -> Result<(), StoreError> {
        self.bounded(async {
            let models = k
                .models
                .as_ref()
                .map(|m| serde_json::to_string(m).unwrap_or_else(|_| "[]".to_owned()));
            let insert = format!(
                "INSERT INTO virtual_keys ({COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)"
            );
            let text = sql(self, &insert);
            on_store!(self, pool => {
                sqlx::query(&text)
                    .bind(&k.id)
                    .bind(&k.name)
                    .bind(&k.hash)
                    .bind(&k.hint)
                    .bind(&k.user)
                    .bind(&k.team)
                    .bind(&k.project)
                    .bind(&models)
                    .bind(k.created_at)
                    .bind(k.expires_at)
                    .bind(k.revoked_at)
                    .bind(&k.policy)
                    .bind(&k.role)
                    .execute(pool)
                    .await
                    .map(|_| ())
            })
            .map_err(|e| self.error(&e))
        })
        .await
    }

    /// Every key, revoked and expired ones included, oldest first.
    pub async fn list_keys(&self) -> Result<Vec<KeyRow>, StoreError> {
        self.bounded(async {
            let text = format!("SELECT {COLUMNS} FROM virtual_keys ORDER BY created_at, id");
            on_store!(self, pool => {
                match sqlx::query(&text).fetch_all(pool).await {
                    Ok(rows) => rows.iter().map(|r| key_row!(r)).collect::<Result<Vec<_>, _>>(),
                    Err(e) => Err(e),
                }
            })
            .map_err(|e| self.error(&e))
        })
        .await
    }

    /// Revoke the key with this id, or the one key with this name. Returns the revoked key;
    /// `None` when nothing matched. A name shared by several keys is refused (use the id).
    pub async fn revoke_key(
        &self,
        id_or_name: &str,
        now: i64,
    ) -> Result<Option<KeyRow>, StoreError> {
        self.bounded(async {
            let keys = self.list_keys().await?;
            let by_id: Vec<_> = keys.iter().filter(|k| k.id == id_or_name).collect();
            let matched: Vec<_> = if by_id.is_empty() {
                keys.iter().filter(|k| k.name == id_or_name).collect()
            } else {
                by_id
            };
            let key = match matched.as_slice() {
                [] => return Ok(None),
                [one] => (*one).clone(),
                _ => {
                    return Err(StoreError::invalid(format!(
                        "{} keys are named `{id_or_name}`; revoke by id",
                        matched.len()
                    )));
                }
            };
            let text = sql(
                self,
                "UPDATE virtual_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            );
            on_store!(self, pool => {
                sqlx::query(&text).bind(now).bind(&key.id).execute(pool).await.map(|_| ())
            })
            .map_err(|e| self.error(&e))?;
            Ok(Some(KeyRow {
                revoked_at: key.revoked_at.or(Some(now)),
                ..key
            }))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, name: &str) -> KeyRow {
        KeyRow {
            id: id.to_owned(),
            name: name.to_owned(),
            hash: format!("{:0>64}", id),
            hint: "sk-gate-AAAA…zzzz".to_owned(),
            user: Some("u@example.com".to_owned()),
            team: Some("t".to_owned()),
            project: None,
            models: Some(vec!["gpt-*".to_owned()]),
            created_at: 1_700_000_000,
            expires_at: Some(1_800_000_000),
            revoked_at: None,
            policy: Some(r#"{"rate_limit":{"rpm":5}}"#.to_owned()),
            role: None,
        }
    }

    async fn round_trip(store: &Store) {
        store.insert_key(&row("k1", "alice")).await.unwrap();
        store.insert_key(&row("k2", "bob")).await.unwrap();
        store.insert_key(&row("k3", "bob")).await.unwrap();
        // The hash is unique.
        assert!(
            store
                .insert_key(&KeyRow {
                    id: "k4".into(),
                    ..row("k1", "x")
                })
                .await
                .is_err()
        );
        let all = store.list_keys().await.unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0], row("k1", "alice"));
        let revoked = store
            .revoke_key("alice", 1_750_000_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(revoked.revoked_at, Some(1_750_000_000));
        // Revoking again keeps the first time.
        let again = store
            .revoke_key("k1", 1_760_000_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.revoked_at, Some(1_750_000_000));
        assert!(
            store
                .revoke_key("bob", 1)
                .await
                .unwrap_err()
                .to_string()
                .contains("revoke by id")
        );
        assert!(store.revoke_key("k3", 1).await.unwrap().is_some());
        assert!(store.revoke_key("nobody", 1).await.unwrap().is_none());
        // SQL in a parameter is data.
        assert!(store.revoke_key("x' OR '1'='1", 1).await.unwrap().is_none());
        let all = store.list_keys().await.unwrap();
        assert_eq!(all.iter().filter(|k| k.revoked_at.is_some()).count(), 2);
    }

    #[tokio::test]
    async fn keys_round_trip_on_sqlite() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        round_trip(&store).await;
    }

    #[tokio::test]
    async fn keys_round_trip_on_postgres() {
        let Some(store) = crate::store::test_postgres().await else {
            return;
        };
        round_trip(&store).await;
    }
}
