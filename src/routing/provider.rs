//! A configured provider at run time: its config and adapter, and the state routing keeps of
//! it: its backend (connection pool, health, load) and the load and cool-down of each of its
//! keys, shared with the same provider of other config snapshots ([`super::backends`]), and
//! the order its keys are used in ([`Provider::key_plan`], by the provider's `balance`).
//!
//! The executor (`providers::exec`) sends through a provider as a [`providers::Endpoint`]
//! (config, adapter, pool): the provider layer knows nothing of routing's state.
//!
//! [`providers::Endpoint`]: crate::providers::Endpoint

use std::sync::Arc;

use super::backends::{Backend, Backends, Load};
use super::balance::{RoundRobin, by_lowest, chosen_then_heaviest};
use crate::config::{Balance, ProviderConfig, Secret};
use crate::providers::pool::Pool;
use crate::providers::{Adapter, Endpoint};

/// A configured provider at run time: its config, adapter, and its backend (connection pool,
/// health and load, shared with the same provider of other config snapshots).
pub struct Provider {
    pub config: Arc<ProviderConfig>,
    pub adapter: Arc<dyn Adapter>,
    pub backend: Arc<Backend>,
    /// Load and cool-down of each of `config.api_keys`.
    pub keys: Vec<Arc<Load>>,
    key_rr: RoundRobin,
}

/// The keys a request may use on a provider, best first.
pub enum KeyPlan {
    /// Indices into `api_keys` (`None`: the provider has no key).
    Use(Vec<Option<usize>>),
    /// Every key rests after a 429; the soonest is usable in this many ms.
    Cooling(u64),
}

impl Provider {
    /// A provider whose connections go where `egress` allows.
    pub fn new(
        config: Arc<ProviderConfig>,
        backends: &Backends,
        egress: &Arc<crate::egress::Policy>,
    ) -> Self {
        let adapter = crate::providers::adapter_for(&config);
        let (backend, keys) = backends.backend(&config, egress);
        Self {
            config,
            adapter,
            backend,
            keys,
            key_rr: RoundRobin::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn pool(&self) -> &Pool {
        &self.backend.pool
    }

    pub fn key(&self, index: Option<usize>) -> Option<&Secret> {
        self.config.api_keys.get(index?)
    }

    /// The best key for a single request that is not retried (a token count, a mirror's
    /// shadow): the first of [`Self::key_plan`], or none while every key rests.
    pub fn first_key(&self) -> Option<&Secret> {
        match self.key_plan() {
            KeyPlan::Use(keys) => self.key(keys.first().copied().flatten()),
            KeyPlan::Cooling(_) => None,
        }
    }

    /// The order to use this provider's keys in: resting keys left out, the rest by the
    /// provider's `balance`.
    pub fn key_plan(&self) -> KeyPlan {
        if self.keys.is_empty() {
            return KeyPlan::Use(vec![None]);
        }
        let usable: Vec<usize> = (0..self.keys.len())
            .filter(|i| self.keys[*i].cooling_ms() == 0)
            .collect();
        if usable.is_empty() {
            let soonest = self.keys.iter().map(|k| k.cooling_ms()).min().unwrap_or(0);
            return KeyPlan::Cooling(soonest);
        }
        let order: Vec<usize> = match self.config.balance {
            Balance::Failover => (0..usable.len()).collect(),
            Balance::RoundRobin => {
                let weights: Vec<u32> = usable
                    .iter()
                    .map(|i| self.config.key_weights.get(*i).copied().unwrap_or(1))
                    .collect();
                chosen_then_heaviest(&weights, self.key_rr.pick(&weights))
            }
            Balance::LeastInFlight => {
                let loads: Vec<u64> = usable.iter().map(|i| self.keys[*i].in_flight()).collect();
                by_lowest(&loads)
            }
            Balance::LowestLatency => {
                let loads: Vec<u64> = usable.iter().map(|i| self.keys[*i].latency_us()).collect();
                by_lowest(&loads)
            }
        };
        KeyPlan::Use(order.into_iter().map(|i| Some(usable[i])).collect())
    }
}

impl Endpoint for Provider {
    fn config(&self) -> &ProviderConfig {
        &self.config
    }

    fn adapter(&self) -> &dyn Adapter {
        &*self.adapter
    }

    fn pool(&self) -> &Pool {
        &self.backend.pool
    }
}
