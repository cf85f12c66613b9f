//! Integration tests: the gateway in-process against mock providers on loopback.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

mod admin;
mod anthropic;
mod anthropic_provider;
mod balancing;
mod budgets;
mod chat;
mod cli;
mod clients;
mod fallback;
mod keys;
mod lifecycle;
mod limits;
mod mistral;
mod passthrough;
mod ratelimits;
mod reload;
mod routing;
mod sdk;
mod spec_conformance;
mod streaming;
mod support;
