//! Shared application state: cheap to clone, one per server. Its submodule [`reload`] swaps
//! in a new config, and keeps where the config came from and what the reloads did.

pub mod reload;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::ArcSwap;

use crate::config::Config;
use crate::governance::Governance;
use crate::routing::Live;
use crate::store::{Store, StoreError};

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    /// The live config snapshot. Requests `load_full` it once at their start and keep that
    /// `Arc` to the end; a reload stores a new one without touching requests in flight.
    live: ArcSwap<Live>,
    /// Set when SIGTERM arrives: `/readyz` answers 503 from then on.
    draining: AtomicBool,
    /// The store's connection pool; closed by `main` after the server drained.
    store: Store,
    /// Keys, budgets and rate limits.
    governance: Governance,
    /// Provider health, load and connection pools, shared by every config snapshot.
    backends: Arc<crate::routing::backends::Backends>,
    /// Where the config came from, and what the reloads did.
    source: Mutex<reload::ConfigSource>,
    reload_status: Mutex<reload::ReloadStatus>,
    reload_lock: tokio::sync::Mutex<()>,
    /// The address the server listens on, once it does (the loop guard compares it).
    listener: OnceLock<SocketAddr>,
    /// Stored Responses API responses whose write is under way.
    responses: crate::responses::Responses,
    /// Claims and kept replies of `Idempotency-Key`s (in Redis too when it is configured).
    idempotency: crate::idempotency::Idempotency,
}

impl AppState {
    /// Build the state; reads the store's keys.
    pub async fn new(config: Config, store: Store) -> Result<Self, StoreError> {
        Self::with_clock(config, store, crate::governance::Clock::System).await
    }

    /// Build the state with the clock budgets and rate limits read (tests move it).
    pub async fn with_clock(
        config: Config,
        store: Store,
        clock: crate::governance::Clock,
    ) -> Result<Self, StoreError> {
        let governance = Governance::load(&config, &store, clock).await?;
        let backends: Arc<crate::routing::backends::Backends> = Arc::default();
        let idempotency = crate::idempotency::Idempotency::new(governance.shared().cloned());
        Ok(Self {
            inner: Arc::new(Inner {
                live: ArcSwap::from_pointee(Live::new(config, Arc::clone(&backends))),
                draining: AtomicBool::new(false),
                store,
                governance,
                backends,
                source: Mutex::new(reload::ConfigSource::Fixed),
                reload_status: Mutex::new(reload::ReloadStatus {
                    source: reload::ConfigSource::Fixed.describe(),
                    loaded_at: crate::unix_now(),
                    ..Default::default()
                }),
                reload_lock: tokio::sync::Mutex::new(()),
                listener: OnceLock::new(),
                responses: crate::responses::Responses::default(),
                idempotency,
            }),
        })
    }

    /// Say where the running config came from (so reloads read it again) and the digest of
    /// its text.
    pub fn set_config_source(&self, source: reload::ConfigSource, digest: &str) {
        if let Ok(mut st) = self.inner.reload_status.lock() {
            st.source = source.describe();
            digest.clone_into(&mut st.digest);
        }
        if let Ok(mut s) = self.inner.source.lock() {
            *s = source;
        }
    }

    pub fn config_source(&self) -> reload::ConfigSource {
        self.inner
            .source
            .lock()
            .map_or(reload::ConfigSource::Fixed, |s| s.clone())
    }

    pub fn reload_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.inner.reload_lock
    }

    pub fn reload_status(&self) -> reload::ReloadStatus {
        self.inner
            .reload_status
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    pub fn note_reload(&self, attempt: &reload::ReloadAttempt) {
        if let Ok(mut st) = self.inner.reload_status.lock() {
            st.last_attempt = Some(attempt.clone());
        }
    }

    /// Swap in a validated config: keys and teams are rebuilt from it, then new requests
    /// get the new snapshot (requests in flight keep theirs). The status shows the new
    /// version and `attempt`, the reload that made it, at once.
    pub async fn swap_config(&self, config: Config, digest: &str, attempt: &reload::ReloadAttempt) {
        self.governance().reload(&config, self.store()).await;
        self.inner.live.store(Arc::new(Live::new(
            config,
            Arc::clone(&self.inner.backends),
        )));
        if let Ok(mut st) = self.inner.reload_status.lock() {
            st.version += 1;
            st.loaded_at = crate::unix_now();
            digest.clone_into(&mut st.digest);
            st.last_attempt = Some(attempt.clone());
        }
    }

    pub fn backends(&self) -> &Arc<crate::routing::backends::Backends> {
        &self.inner.backends
    }

    pub fn set_listener(&self, addr: SocketAddr) {
        let _ = self.inner.listener.set(addr);
    }

    pub fn listener(&self) -> Option<SocketAddr> {
        self.inner.listener.get().copied()
    }

    pub fn governance(&self) -> &Governance {
        &self.inner.governance
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn responses(&self) -> &crate::responses::Responses {
        &self.inner.responses
    }

    pub fn idempotency(&self) -> &crate::idempotency::Idempotency {
        &self.inner.idempotency
    }

    pub fn live(&self) -> Arc<Live> {
        self.inner.live.load_full()
    }

    /// The live config for a moment's reading (no reference count taken): for checks that
    /// run before the request holds its own snapshot.
    pub fn live_now(&self) -> arc_swap::Guard<Arc<Live>> {
        self.inner.live.load()
    }

    pub fn set_draining(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
    }

    /// Should this instance receive traffic (`/readyz`)? Not while draining after SIGTERM
    /// (so a load balancer stops sending new requests), nor while the store does not
    /// answer, nor while the configured Redis does not (budgets then refuse every request:
    /// this instance is degraded). The status, and the body that says why.
    pub async fn readiness(&self) -> (http::StatusCode, serde_json::Value) {
        use serde_json::json;
        let store = self.store();
        let down = http::StatusCode::SERVICE_UNAVAILABLE;
        if self.is_draining() {
            (down, json!({"status": "draining"}))
        } else if !store.ping().await {
            (
                down,
                json!({"status": "unavailable", "store": store.backend(), "store_reachable": false}),
            )
        } else if self.governance().redis_up() == Some(false) {
            (
                down,
                json!({"status": "degraded", "store": store.backend(), "redis_reachable": false}),
            )
        } else {
            (
                http::StatusCode::OK,
                json!({"status": "ready", "store": store.backend()}),
            )
        }
    }

    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }
}
