//! Governance: who may call the gateway and what for (issue #3).
//!
//! Today: virtual keys ([`keys`]) and model access per key and team. Every inference request
//! goes through [`Governance::authenticate`] before its body is read (401 for a missing,
//! unknown, revoked or expired key) and through [`authorize_model`] once its model is known
//! (403). With no key at all (none in the config, none in the store) the gateway is open, which
//! `serve` allows on loopback only (SPEC §1). Budgets and rate limits join here as stages.

pub mod keys;

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::time::Instant;

use crate::config::Config;
use crate::error::{ErrorKind, GatewayError};
use crate::store::{Store, StoreError};
pub use keys::{KeyRing, Principal, Refusal};

/// [`crate::unix_now`] as the store keeps times (signed seconds).
pub fn now_unix() -> i64 {
    i64::try_from(crate::unix_now()).unwrap_or(i64::MAX)
}

pub struct Governance {
    ring: ArcSwap<KeyRing>,
    last_load: Mutex<Instant>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
}

impl Governance {
    /// Build the key ring from the config's static keys and the store's keys.
    pub async fn load(config: &Config, store: &Store) -> Result<Self, StoreError> {
        let stored = store.list_keys().await?;
        Ok(Self {
            ring: ArcSwap::from_pointee(KeyRing::build(config, &stored)),
            last_load: Mutex::new(Instant::now()),
            reloading: tokio::sync::Mutex::new(()),
        })
    }

    /// Re-read the store's keys. On failure the current ring stays (and the error is logged).
    pub async fn reload(&self, config: &Config, store: &Store) {
        let _one = self.reloading.lock().await;
        match store.list_keys().await {
            Ok(stored) => self.ring.store(Arc::new(KeyRing::build(config, &stored))),
            Err(e) => tracing::warn!(error = %e, "could not reload keys; keeping the ones loaded"),
        }
        if let Ok(mut t) = self.last_load.lock() {
            *t = Instant::now();
        }
    }

    /// True when no key exists: the gateway is open.
    pub fn is_open(&self) -> bool {
        self.ring.load().is_empty()
    }

    /// The caller, from its credential. `Ok(None)` when the gateway is open.
    pub async fn authenticate(
        &self,
        config: &Config,
        store: &Store,
        headers: &http::HeaderMap,
        query: Option<&str>,
    ) -> Result<Option<Arc<Principal>>, GatewayError> {
        let first = {
            let ring = self.ring.load();
            if ring.is_empty() {
                return Ok(None);
            }
            let Some(presented) = keys::presented(headers, query) else {
                return Err(refused(Refusal::Missing));
            };
            (presented, ring.check(presented, now_unix()))
        };
        let (presented, checked) = first;
        match checked {
            Ok(p) => Ok(Some(p)),
            // Perhaps a key created a moment ago by another process: look once more.
            Err(Refusal::Unknown) if self.may_reload_on_miss() => {
                self.reload(config, store).await;
                self.ring
                    .load()
                    .check(presented, now_unix())
                    .map(Some)
                    .map_err(refused)
            }
            Err(r) => Err(refused(r)),
        }
    }

    fn may_reload_on_miss(&self) -> bool {
        self.last_load
            .lock()
            .map(|t| t.elapsed() >= keys::MISS_RELOAD_INTERVAL)
            .unwrap_or(false)
    }
}

fn refused(r: Refusal) -> GatewayError {
    GatewayError::new(ErrorKind::Unauthorized, r.message())
}

/// May the caller use `model` (the name the client asked for)? 403 if not.
pub fn authorize_model(
    config: &Config,
    principal: Option<&Principal>,
    model: &str,
) -> Result<(), GatewayError> {
    let Some(p) = principal else { return Ok(()) };
    let team_models = p
        .team
        .as_ref()
        .and_then(|t| config.teams.get(t))
        .and_then(|t| t.models.as_deref());
    if p.allows(model, team_models) {
        Ok(())
    } else {
        Err(GatewayError::new(
            ErrorKind::Forbidden,
            format!("this API key may not use model `{model}`"),
        )
        .with_param("model"))
    }
}
