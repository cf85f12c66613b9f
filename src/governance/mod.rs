//! Governance: who may call the gateway, what for, and how much (issue #3).
//!
//! - [`keys`]: virtual keys. Every inference request goes through
//!   [`Governance::authenticate`] before its body is read (401 for a missing, unknown,
//!   revoked or expired key) and through [`authorize_model`] once its model is known (403).
//!   With no key at all the gateway is open, which `serve` allows on loopback only (SPEC §1).
//! - [`admission`]: budgets ([`budget`], [`period`], counted by the [`ledger`]) and rate
//!   limits ([`limits`]) admit the request before any provider is contacted, and settle it
//!   when it ends; the [`recorder`] writes its usage record, [`alerts`] watch the budgets.
//! - [`shared`]: the Redis counters that several instances share.

pub mod admission;
pub mod alerts;
pub mod budget;
pub mod directory;
pub mod keys;
pub mod ledger;
pub mod limits;
pub mod period;
pub mod recorder;
pub mod sessions;
pub mod shared;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::time::Instant;

use crate::config::Config;
use crate::error::{ErrorKind, GatewayError};
use crate::store::{Store, StoreError};
pub use admission::{Admission, Ask, AttemptNote, Enforcer, Outcome, Report, RouteNote};
pub use budget::ScopeKind;
pub use keys::{KeyRing, Principal, Refusal};

/// The wall clock of budgets and rate limits; tests drive a manual one across period ends.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    #[default]
    System,
    /// Unix milliseconds, set by the test.
    Manual(Arc<AtomicU64>),
}

impl Clock {
    pub fn manual(unix_ms: u64) -> Self {
        Clock::Manual(Arc::new(AtomicU64::new(unix_ms)))
    }

    pub fn now_ms(&self) -> u64 {
        match self {
            Clock::System => crate::unix_now_ms(),
            Clock::Manual(t) => t.load(Ordering::Relaxed),
        }
    }

    /// Unix seconds, as the store keeps times.
    pub fn now_secs(&self) -> i64 {
        i64::try_from(self.now_ms() / 1000).unwrap_or(i64::MAX)
    }

    /// Move a manual clock (no effect on the system clock).
    pub fn set_ms(&self, unix_ms: u64) {
        if let Clock::Manual(t) = self {
            t.store(unix_ms, Ordering::Relaxed);
        }
    }
}

/// [`crate::unix_now`] as the store keeps times (signed seconds).
pub fn now_unix() -> i64 {
    i64::try_from(crate::unix_now()).unwrap_or(i64::MAX)
}

pub struct Governance {
    ring: ArcSwap<KeyRing>,
    directory: ArcSwap<directory::Directory>,
    enforcer: Arc<Enforcer>,
    shared: Option<Arc<shared::Shared>>,
    /// When the keys were last read, or a read of them last began.
    last_load: Mutex<Instant>,
    /// The last read of the keys succeeded: an unknown key is unknown (401), rather than
    /// perhaps a key the store holds and could not say (503).
    keys_fresh: AtomicBool,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
    /// Counts the reloads that ended: what an unknown key waits on while one is under way.
    reloaded: tokio::sync::watch::Sender<u64>,
    /// Dashboard sessions read lately.
    sessions: sessions::Sessions,
}

impl Governance {
    /// Build the key ring from the config's static keys and the store's keys, and the
    /// budget and rate-limit machinery (with Redis when `[redis]` is configured; a Redis that
    /// does not answer leaves the gateway running degraded, as the log says).
    pub async fn load(config: &Config, store: &Store, clock: Clock) -> Result<Self, StoreError> {
        let stored = store.list_keys().await?;
        let entities = directory::StoredEntities::read(store).await?;
        let shared = match &config.redis {
            Some(r) => {
                let s = shared::Shared::new(r)
                    .map_err(|e| StoreError::invalid(format!("redis: {e}")))?;
                if !s.probe().await {
                    tracing::error!(
                        "Redis does not answer at start: budgets refuse requests (503) and rate limits are local until it does"
                    );
                }
                s.spawn_health();
                Some(s)
            }
            None => None,
        };
        let ledger = match &shared {
            Some(s) => ledger::Ledger::Redis {
                shared: Arc::clone(s),
                store: store.clone(),
            },
            None => ledger::Ledger::Store(store.clone()),
        };
        let enforcer = Arc::new(Enforcer::new(
            ledger,
            limits::Limiter::new(shared.clone()),
            recorder::Recorder::new(store.clone(), config.log.queue, config.log.requests),
            alerts::Alerts::new(config.alert_webhook.as_deref(), &config.server.egress),
            clock,
            config
                .traces
                .as_ref()
                .map(crate::traces::export::Exporter::start),
        ));
        Ok(Self {
            enforcer,
            shared,
            ring: ArcSwap::from_pointee(KeyRing::build(config, &stored)),
            directory: ArcSwap::from_pointee(directory::Directory::build(config, &entities)),
            last_load: Mutex::new(Instant::now()),
            keys_fresh: AtomicBool::new(true),
            reloading: tokio::sync::Mutex::new(()),
            reloaded: tokio::sync::watch::Sender::new(0),
            sessions: sessions::Sessions::default(),
        })
    }

    /// Re-read the store's keys, teams, users and projects, within one `[store] timeout`.
    /// On failure the current ones stay (and the error is logged).
    pub async fn reload(&self, config: &Config, store: &Store) {
        let _one = self.reloading.lock().await;
        self.reload_locked(config, store).await;
    }

    async fn reload_locked(&self, config: &Config, store: &Store) {
        self.touch();
        let read = store
            .bounded(async {
                Ok((
                    store.list_keys().await,
                    directory::StoredEntities::read(store).await,
                ))
            })
            .await;
        let (keys, entities) = match read {
            Ok(both) => both,
            Err(e) => (Err(e.clone()), Err(e)),
        };
        self.keys_fresh.store(keys.is_ok(), Ordering::Relaxed);
        match keys {
            Ok(stored) => self.ring.store(Arc::new(KeyRing::build(config, &stored))),
            Err(e) => tracing::warn!(error = %e, "could not reload keys; keeping the ones loaded"),
        }
        match entities {
            Ok(stored) => self
                .directory
                .store(Arc::new(directory::Directory::build(config, &stored))),
            Err(e) => {
                tracing::warn!(error = %e, "could not reload teams and users; keeping the ones loaded")
            }
        }
        self.touch();
        self.reloaded.send_modify(|n| *n += 1);
    }

    /// The reload an unknown key asks for, single-flight: when one is under way (for any
    /// reason), wait for it instead of starting another, so that a flood of unknown keys
    /// makes at most one read of the store at a time, and none waits longer than the one
    /// under way (at most `[store] timeout`).
    async fn reload_on_miss(&self, config: &Config, store: &Store) {
        // Subscribed first, so that the end of the reload holding the lock is not missed.
        let mut ended = self.reloaded.subscribe();
        match self.reloading.try_lock() {
            Ok(_one) => self.reload_locked(config, store).await,
            // The end of the reload under way, not of others queued behind it.
            Err(_) => {
                let _ = tokio::time::timeout(store.timeout(), ended.changed()).await;
            }
        }
    }

    fn touch(&self) {
        if let Ok(mut t) = self.last_load.lock() {
            *t = Instant::now();
        }
    }

    /// The current teams, users and projects.
    pub fn directory(&self) -> Arc<directory::Directory> {
        self.directory.load_full()
    }

    /// Every usable key.
    pub fn principals(&self) -> Vec<Arc<Principal>> {
        self.ring.load().principals().cloned().collect()
    }

    /// Check a presented credential against the key ring (no reload on a miss).
    pub fn principal(&self, presented: &str) -> Option<Arc<Principal>> {
        self.ring.load().check(presented, now_unix()).ok()
    }

    /// Dashboard sessions (`ui`).
    pub fn sessions(&self) -> &sessions::Sessions {
        &self.sessions
    }

    /// The usable key whose digest this is (no reload on a miss).
    pub fn principal_by_digest(&self, d: &[u8; 32]) -> Option<Arc<Principal>> {
        self.ring.load().check_digest(d, now_unix()).ok()
    }

    pub fn enforcer(&self) -> &Arc<Enforcer> {
        &self.enforcer
    }

    /// `None` without `[redis]`; otherwise whether Redis answers.
    /// The Redis every instance shares (`[redis]`), for the other state kept there
    /// (`crate::idempotency`).
    pub fn shared(&self) -> Option<&Arc<shared::Shared>> {
        self.shared.as_ref()
    }

    pub fn redis_up(&self) -> Option<bool> {
        self.shared.as_ref().map(|s| s.is_up())
    }

    /// `None` without `[redis]`; otherwise how many instances share the limits, as last
    /// seen while Redis was up.
    pub fn redis_instances(&self) -> Option<u64> {
        self.shared.as_ref().map(|s| s.instances())
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
        if let Some(known) = self.authenticate_now(headers, query) {
            return known;
        }
        // Perhaps a key created a moment ago by another process: look once more.
        self.reload_on_miss(config, store).await;
        let presented = keys::presented(headers, query).unwrap_or_default();
        match self.ring.load().check(presented, now_unix()) {
            Ok(p) => Ok(Some(p)),
            Err(r) => Err(self.refused_unknown(r)),
        }
    }

    /// The refusal of a key the ring does not hold: 401, or 503 while the store cannot be
    /// read (the key may be one it holds).
    fn refused_unknown(&self, r: Refusal) -> GatewayError {
        if matches!(r, Refusal::Unknown) && !self.keys_fresh.load(Ordering::Relaxed) {
            return GatewayError::new(
                ErrorKind::Unavailable,
                "this API key cannot be checked right now (the key store does not answer); try again shortly",
            )
            .with_retry_after(1);
        }
        refused(r)
    }

    /// [`Self::authenticate`] from the keys in memory, without waiting: `None` when the key
    /// is unknown and the keys may have changed since they were loaded (then
    /// `authenticate` loads them once more).
    pub fn authenticate_now(
        &self,
        headers: &http::HeaderMap,
        query: Option<&str>,
    ) -> Option<Result<Option<Arc<Principal>>, GatewayError>> {
        let ring = self.ring.load();
        if ring.is_empty() {
            return Some(Ok(None));
        }
        let Some(presented) = keys::presented(headers, query) else {
            return Some(Err(refused(Refusal::Missing)));
        };
        match ring.check(presented, now_unix()) {
            Ok(p) => Some(Ok(Some(p))),
            Err(Refusal::Unknown) if self.may_reload_on_miss() => None,
            Err(r) => Some(Err(self.refused_unknown(r))),
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

/// May the caller use `model` (the name the client asked for)? 403 if not. A key whose team
/// is gone from the directory may use nothing.
pub fn authorize_model(
    directory: &directory::Directory,
    principal: Option<&Principal>,
    model: &str,
) -> Result<(), GatewayError> {
    let Some(p) = principal else { return Ok(()) };
    let allowed = match p.team.as_ref().map(|t| directory.teams.get(t)) {
        None => p.allows(model, None),
        Some(Some(team)) => p.allows(model, team.models.as_deref()),
        Some(None) => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(GatewayError::new(
            ErrorKind::Forbidden,
            format!("this API key may not use model `{model}`"),
        )
        .with_param("model"))
    }
}
