//! Teams, users and projects kept in the store (created through the admin API), read into
//! the governance directory with the config's own.

use sqlx::Row;

use super::{Store, StoreError, on_store, sql};

/// A team, user or project as stored. Users and projects have a team; teams have models.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct EntityRow {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// JSON of `config::StoredPolicy`.
    #[serde(skip)]
    pub policy: Option<String>,
    pub created_at: i64,
}

/// Which table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Team,
    User,
    Project,
}

impl Entity {
    /// A fixed identifier per variant, never user input.
    fn table(self) -> &'static str {
        match self {
            Entity::Team => "teams",
            Entity::User => "users",
            Entity::Project => "projects",
        }
    }

    fn second_column(self) -> &'static str {
        match self {
            Entity::Team => "models",
            Entity::User | Entity::Project => "team",
        }
    }
}

/// Creating an entity whose name is taken.
pub const DUPLICATE: &str = "duplicate";

impl Store {
    pub async fn list_entities(&self, entity: Entity) -> Result<Vec<EntityRow>, StoreError> {
        self.bounded(async {
            let text = format!(
                "SELECT name, {} AS second, policy, created_at FROM {} ORDER BY name",
                entity.second_column(),
                entity.table()
            );
            let rows: Result<Vec<EntityRow>, sqlx::Error> = on_store!(self, pool => async {
                let rows = sqlx::query(&text).fetch_all(pool).await?;
                rows.iter()
                    .map(|r| {
                        let second: Option<String> = r.try_get("second")?;
                        let (team, models) = match entity {
                            Entity::Team => (
                                None,
                                match second {
                                    Some(t) => Some(serde_json::from_str(&t).map_err(|e| sqlx::Error::Decode(Box::new(e)))?),
                                    None => None,
                                },
                            ),
                            _ => (second, None),
                        };
                        Ok(EntityRow {
                            name: r.try_get("name")?,
                            team,
                            models,
                            policy: r.try_get("policy")?,
                            created_at: r.try_get("created_at")?,
                        })
                    })
                    .collect()
            }.await);
            rows.map_err(|e| self.error(&e))
        })
        .await
    }

    /// Insert a new entity; `Err` with reason [`DUPLICATE`] if the name is taken.
    pub async fn insert_entity(&self, entity: Entity, row: &EntityRow) -> Result<(), StoreError> {
        self.bounded(async {
            let second = match entity {
                Entity::Team => row
                    .models
                    .as_ref()
                    .map(|m| serde_json::to_string(m).unwrap_or_else(|_| "[]".to_owned())),
                _ => row.team.clone(),
            };
            let text = format!(
                "INSERT INTO {} (name, {}, policy, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
                entity.table(),
                entity.second_column()
            );
            let q = sql(self, &text);
            let n = on_store!(self, pool => sqlx::query(&q)
                .bind(&row.name)
                .bind(&second)
                .bind(&row.policy)
                .bind(row.created_at)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()))
            .map_err(|e| self.error(&e))?;
            if n == 0 {
                return Err(StoreError::invalid(DUPLICATE.to_owned()));
            }
            Ok(())
        })
        .await
    }

    /// Replace a team's models and limits; false if no such team.
    pub async fn update_team(
        &self,
        name: &str,
        models: Option<&[String]>,
        policy: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.bounded(async {
            let models =
                models.map(|m| serde_json::to_string(m).unwrap_or_else(|_| "[]".to_owned()));
            let q = sql(
                self,
                "UPDATE teams SET models = $2, policy = $3 WHERE name = $1",
            );
            let n = on_store!(self, pool => sqlx::query(&q)
                .bind(name)
                .bind(&models)
                .bind(policy)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()))
            .map_err(|e| self.error(&e))?;
            Ok(n == 1)
        })
        .await
    }

    /// Delete by name; false if there was none.
    pub async fn delete_entity(&self, entity: Entity, name: &str) -> Result<bool, StoreError> {
        self.bounded(async {
            let text = format!("DELETE FROM {} WHERE name = $1", entity.table());
            let q = sql(self, &text);
            let n = on_store!(self, pool => sqlx::query(&q)
                .bind(name)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()))
            .map_err(|e| self.error(&e))?;
            Ok(n == 1)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn round_trip(store: &Store) {
        let team = EntityRow {
            name: "ml".into(),
            models: Some(vec!["gpt-*".into()]),
            policy: Some(r#"{"rate_limit":{"rpm":5}}"#.into()),
            created_at: 1,
            ..EntityRow::default()
        };
        store.insert_entity(Entity::Team, &team).await.unwrap();
        let e = store.insert_entity(Entity::Team, &team).await.unwrap_err();
        assert!(e.to_string().contains(DUPLICATE));
        let user = EntityRow {
            name: "a@b.c'; DROP TABLE users; --".into(),
            team: Some("ml".into()),
            created_at: 2,
            ..EntityRow::default()
        };
        store.insert_entity(Entity::User, &user).await.unwrap();
        assert_eq!(store.list_entities(Entity::Team).await.unwrap(), vec![team]);
        assert_eq!(
            store.list_entities(Entity::User).await.unwrap(),
            vec![user.clone()]
        );
        assert!(store.update_team("ml", None, None).await.unwrap());
        assert!(!store.update_team("nope", None, None).await.unwrap());
        assert_eq!(
            store.list_entities(Entity::Team).await.unwrap()[0].models,
            None
        );
        assert!(store.delete_entity(Entity::User, &user.name).await.unwrap());
        assert!(!store.delete_entity(Entity::User, &user.name).await.unwrap());
        assert!(
            store
                .list_entities(Entity::Project)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn entities_on_sqlite() {
        round_trip(&Store::connect("sqlite::memory:").await.unwrap()).await;
    }

    #[tokio::test]
    async fn entities_on_postgres() {
        if let Some(store) = crate::store::test_postgres().await {
            round_trip(&store).await;
        }
    }
}
