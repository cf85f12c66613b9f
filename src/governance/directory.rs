//! The directory: every team, user and project with its models and limits, from the config
//! and from the store (created through the admin API). A name defined in both is the
//! config's. Rebuilt with the key ring, so the request path reads one snapshot.

use std::collections::HashMap;

use crate::config::{Config, ModelPattern, Policy, StoredPolicy};
use crate::store::{Entity, EntityRow, Store, StoreError};

#[derive(Debug, Clone, Default)]
pub struct TeamEntry {
    /// Model globs the team's keys may use; `None` = every model.
    pub models: Option<Vec<ModelPattern>>,
    pub policy: Policy,
    /// Defined in the config file (the admin API cannot change or delete it).
    pub from_config: bool,
}

#[derive(Debug, Clone, Default)]
pub struct MemberEntry {
    pub team: Option<String>,
    pub policy: Policy,
    pub from_config: bool,
}

#[derive(Debug, Default)]
pub struct Directory {
    pub teams: HashMap<String, TeamEntry>,
    pub users: HashMap<String, MemberEntry>,
    pub projects: HashMap<String, MemberEntry>,
}

/// The store's rows, read together.
#[derive(Debug, Default)]
pub struct StoredEntities {
    pub teams: Vec<EntityRow>,
    pub users: Vec<EntityRow>,
    pub projects: Vec<EntityRow>,
}

impl StoredEntities {
    pub async fn read(store: &Store) -> Result<Self, StoreError> {
        Ok(Self {
            teams: store.list_entities(Entity::Team).await?,
            users: store.list_entities(Entity::User).await?,
            projects: store.list_entities(Entity::Project).await?,
        })
    }
}

/// A stored policy; unreadable limits are logged and the entity is left out (fail closed:
/// its keys then find no team and are refused a model check, rather than run unlimited).
fn policy_of(row: &EntityRow) -> Option<Policy> {
    match row.policy.as_deref() {
        None => Some(Policy::default()),
        Some(text) => match serde_json::from_str::<StoredPolicy>(text)
            .map_err(|e| e.to_string())
            .and_then(|p| p.to_policy())
        {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!(name = %row.name, error = %e, "stored entity has unreadable limits; ignored");
                None
            }
        },
    }
}

impl Directory {
    pub fn build(config: &Config, stored: &StoredEntities) -> Self {
        let mut d = Directory::default();
        for (name, t) in &config.teams {
            d.teams.insert(
                name.clone(),
                TeamEntry {
                    models: t.models.clone(),
                    policy: t.policy.clone(),
                    from_config: true,
                },
            );
        }
        for (name, p) in &config.users {
            d.users.insert(
                name.clone(),
                MemberEntry {
                    team: None,
                    policy: p.clone(),
                    from_config: true,
                },
            );
        }
        for (name, p) in &config.projects {
            d.projects.insert(
                name.clone(),
                MemberEntry {
                    team: None,
                    policy: p.clone(),
                    from_config: true,
                },
            );
        }
        for row in &stored.teams {
            let Some(policy) = policy_of(row) else {
                continue;
            };
            let models = row
                .models
                .as_ref()
                .map(|m| m.iter().filter_map(|p| ModelPattern::new(p).ok()).collect());
            d.teams.entry(row.name.clone()).or_insert(TeamEntry {
                models,
                policy,
                from_config: false,
            });
        }
        for (rows, map) in [
            (&stored.users, &mut d.users),
            (&stored.projects, &mut d.projects),
        ] {
            for row in rows {
                let Some(policy) = policy_of(row) else {
                    continue;
                };
                map.entry(row.name.clone()).or_insert(MemberEntry {
                    team: row.team.clone(),
                    policy,
                    from_config: false,
                });
            }
        }
        d
    }
}
