//! Integration tests: the gateway in-process against mock providers on loopback.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]
#![expect(
    clippy::disallowed_types,
    reason = "tests run programs (the gatehouse binary, node, python3, redis-server); the gateway never does"
)]

mod admin;
mod anthropic;
mod anthropic_provider;
mod azure;
mod balancing;
mod bedrock;
mod bodies;
mod browser;
mod budgets;
mod charging;
mod chat;
mod cli;
mod clients;
mod conformance;
mod dashboard;
mod durability;
mod edge;
mod egress;
mod fallback;
mod fidelity;
mod frameworks;
mod gemini;
mod gemini_provider;
mod golden;
mod idempotency;
mod isolation;
mod keys;
mod lifecycle;
mod limits;
mod mistral;
mod overload;
mod passthrough;
mod ratelimits;
mod reload;
mod request_log;
mod responses;
mod routing;
mod sdk;
mod secrets;
mod spec_conformance;
mod store_stall;
mod streaming;
mod support;
mod traces;
