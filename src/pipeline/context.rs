//! Per-request context shared by the pipeline stages (pingora's `CTX`).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

pub use crate::new_request_id;

use super::settle::{Settle, Summary};
use crate::codec::Warnings;
use crate::error::GatewayError;
use crate::governance::Principal;

/// Everything the pipeline learns about one request; the handler turns it into response
/// headers, and (with the request log) into the request's record.
pub struct RequestCtx {
    pub id: String,
    /// The client's schema (`chat`, `messages`, `responses`, `gemini`, `embeddings`), for
    /// the request log.
    pub schema: &'static str,
    pub started: Instant,
    /// Who is calling (`None` when the gateway is open: no keys exist).
    pub principal: Option<Arc<Principal>>,
    /// Index of the `[[routes]]` rule that chose the targets.
    pub rule: Option<usize>,
    pub attempts: Vec<Attempt>,
    /// (provider, model) that served.
    pub served: Option<(String, String)>,
    /// Translation notes of the client's request (what the ingress dropped), then of the
    /// attempt that served (or failed last).
    pub warnings: Warnings,
    /// What the client's request lost in the canonical model (noted by the ingress), part
    /// of every translated attempt's warnings and of none passed through.
    pub ingress_warnings: Warnings,
    /// What the request holds until it ends, and the one place it settles (nothing to
    /// settle until it is admitted).
    pub settle: Settle,
    /// `x-ratelimit-*` headers for the reply.
    pub rate_headers: Vec<(&'static str, String)>,
    /// What routing rules may test about this request.
    pub facts: crate::routing::Facts,
    /// Its route, resolved once at admission for the attempt loop.
    pub route: Option<Result<crate::routing::Resolved, GatewayError>>,
    /// The model the client asked for, and the route's first choice for it.
    pub requested: String,
    pub first_choice: Option<(String, String)>,
    /// The loop guard's hop header for upstream requests.
    pub hop: http::HeaderValue,
    /// Its trace, when it is traced.
    pub trace: Option<crate::traces::TraceIds>,
}

impl RequestCtx {
    /// The request's translation notes (`x-gatehouse-warnings`), for its record.
    pub fn warnings_text(&self) -> Option<String> {
        (!self.warnings.is_empty()).then(|| self.warnings.header_value())
    }

    pub fn new() -> Self {
        Self {
            id: new_request_id(),
            started: Instant::now(),
            principal: None,
            rule: None,
            attempts: Vec::new(),
            served: None,
            warnings: Warnings::default(),
            ingress_warnings: Warnings::default(),
            schema: "chat",
            settle: Settle::default(),
            rate_headers: Vec::new(),
            facts: crate::routing::Facts::default(),
            route: None,
            requested: String::new(),
            first_choice: None,
            hop: crate::routing::loopguard::first_hop().clone(),
            trace: None,
        }
    }
}

impl RequestCtx {
    /// A request that passed the authentication layer: who is calling, and the loop
    /// guard's hop header (see [`super::auth`]).
    pub fn of(head: &http::request::Parts, schema: &'static str) -> Self {
        let mut ctx = Self::new();
        ctx.schema = schema;
        if let Some(caller) = head.extensions.get::<super::auth::Caller>() {
            ctx.principal.clone_from(&caller.principal);
            if let Some(hop) = &caller.hop {
                ctx.hop = hop.clone();
            }
        }
        ctx
    }

    /// The settlement guard, and what it reports of the request (borrowed apart, so that
    /// the guard can settle while the summary is read).
    fn settle_with_summary(&mut self) -> (&mut Settle, Summary<'_>) {
        let of = Summary {
            request_id: &self.id,
            served: self.served.as_ref(),
            started: self.started,
            warnings: &self.warnings,
        };
        (&mut self.settle, of)
    }

    /// Settle a whole reply (see [`Settle::complete`]).
    pub fn complete(
        &mut self,
        usage: crate::schema::Usage,
        output: impl FnOnce() -> Option<String>,
    ) {
        let (settle, of) = self.settle_with_summary();
        settle.complete(&of, usage, output);
    }

    /// The provider's whole reply arrived with `usage` (see [`Settle::answered`]).
    pub fn answered(&mut self, usage: crate::schema::Usage) {
        self.settle.answered(self.served.as_ref(), usage);
    }

    /// Settle a request that failed with `e` (see [`Settle::fail`]).
    pub fn fail(&mut self, e: &GatewayError) {
        let (settle, of) = self.settle_with_summary();
        settle.fail(&of, e);
    }

    /// The guard of a stream about to be relayed (see [`Settle::streaming`]).
    pub fn streaming(&mut self) -> Settle {
        let (settle, of) = self.settle_with_summary();
        std::mem::take(settle).streaming(&of)
    }

    /// Served, but not by the route's first choice.
    pub fn served_by_fallback(&self) -> bool {
        self.served.is_some() && self.served != self.first_choice
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
    }
}

/// One try of one target.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub provider: String,
    pub model: String,
    /// Index of the provider key used.
    pub key: Option<usize>,
    pub latency: Duration,
    pub error: Option<GatewayError>,
    /// Passed over without sending (ejected, budget spent, every key resting).
    pub skipped: bool,
    /// Its place among the attempts sent (from 1; 0 when skipped): it names its trace span.
    pub index: u32,
    /// When it started, after the request did.
    pub started: Duration,
    pub config: Arc<crate::config::ProviderConfig>,
}
