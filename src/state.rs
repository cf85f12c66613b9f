//! Shared application state: cheap to clone, one per server.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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
    /// `Arc` to the end; a reload (issue #4) stores a new one without touching requests in flight.
    live: ArcSwap<Live>,
    /// Set when SIGTERM arrives: `/readyz` answers 503 from then on.
    draining: AtomicBool,
    /// The store's connection pool; closed by `main` after the server drained.
    store: Store,
    /// Keys (and, as they land, budgets and rate limits).
    governance: Governance,
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
        Ok(Self {
            inner: Arc::new(Inner {
                live: ArcSwap::from_pointee(Live::new(config)),
                draining: AtomicBool::new(false),
                store,
                governance,
            }),
        })
    }

    pub fn governance(&self) -> &Governance {
        &self.inner.governance
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn live(&self) -> Arc<Live> {
        self.inner.live.load_full()
    }

    pub fn set_draining(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }
}
