//! The stages before any provider is contacted, once the request is decoded: may the caller
//! use the model (`authorize`), and its budgets and rate limits (`admit`), with the facts
//! routing rules test computed once and the route resolved once for both admission and the
//! attempt loop.

use bytes::Bytes;
use http::HeaderMap;

use super::RequestCtx;
use super::settle::Settle;
use crate::error::{ErrorKind, GatewayError};
use crate::routing::{Facts, Live, Query};
use crate::state::AppState;

/// What a request asks of admission, besides its model.
pub struct Size {
    pub input_tokens: u64,
    /// Per choice.
    pub max_output: Option<u64>,
    /// Choices asked for (OpenAI `n`); 1 for schemas without them.
    pub choices: u64,
    pub has_output: bool,
    /// The end user the body names (OpenAI `user`, Anthropic `metadata.user_id`).
    pub user: Option<String>,
}

impl Size {
    /// A chat request's.
    pub fn of_chat(req: &crate::schema::ChatRequest) -> Self {
        Self {
            input_tokens: crate::tokens::quick_estimate(req),
            max_output: req.max_output_tokens,
            choices: u64::from(req.sampling.n.unwrap_or(1).max(1)),
            has_output: true,
            user: req.user.clone(),
        }
    }
}

/// May the caller use the model it asked for (403 otherwise)?
pub fn authorize(state: &AppState, ctx: &RequestCtx, model: &str) -> Result<(), GatewayError> {
    crate::governance::authorize_model(
        &state.governance().directory(),
        ctx.principal.as_deref(),
        model,
    )
}

/// Most tags kept per request, and longest tag.
const MAX_TAGS: usize = 16;
const MAX_TAG_LEN: usize = 128;

/// `x-gatehouse-tags: feature=search,env=prod` as `["feature=search", "env=prod"]`.
pub fn tags(headers: &HeaderMap) -> Vec<String> {
    let Some(v) = headers
        .get("x-gatehouse-tags")
        .and_then(|v| v.to_str().ok())
    else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for t in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let t: String = t.chars().take(MAX_TAG_LEN).collect();
        if !out.contains(&t) && out.len() < MAX_TAGS {
            out.push(t);
        }
    }
    out
}

/// Budgets and rate limits (429, or 503 when budgets cannot be checked), once the model and
/// the request's size are known and before any provider is contacted. The admitted request's
/// settlement guard is in `ctx.settle`; its route, resolved here, in `ctx.route`. An admitted
/// request whose record may keep bodies keeps `body` (the client's request as read).
pub async fn admit(
    state: &AppState,
    live: &Live,
    ctx: &mut RequestCtx,
    headers: &HeaderMap,
    model: &str,
    size: Size,
    body: &Bytes,
) -> Result<(), GatewayError> {
    let end_user: Option<String> = headers
        .get("x-gatehouse-user")
        .and_then(|v| v.to_str().ok())
        .map(|u| u.chars().take(256).collect())
        .or(size.user);
    let tags = tags(headers);
    let p = ctx.principal.as_deref();
    let facts = Facts {
        spent: provider_budgets_spent(state, live).await,
        key: p.map(|p| p.key_name.clone()),
        team: p.and_then(|p| p.team.clone()),
        user: p.and_then(|p| p.user.clone()).or_else(|| end_user.clone()),
        tags: tags.clone(),
        input_tokens: size.input_tokens,
        headers: Facts::headers_of(live, headers),
    };
    let route = Query::new(live, model, &facts);
    let admitted = state
        .governance()
        .enforcer()
        .admit(
            &live.config,
            &state.governance().directory(),
            ctx.principal.clone(),
            &ctx.id,
            crate::governance::Ask {
                model,
                input_tokens: size.input_tokens,
                max_output: size.max_output,
                choices: size.choices,
                has_output: size.has_output,
                route: &route,
                tags,
                end_user,
                schema: ctx.schema,
            },
        )
        .await;
    ctx.route = Some(route.resolved);
    ctx.facts = facts;
    let mut adm = admitted.inspect_err(|e| {
        if matches!(
            e.kind,
            ErrorKind::RateLimited | ErrorKind::BudgetExhausted | ErrorKind::BudgetUnavailable
        ) {
            crate::metrics::refused(e.label());
        }
    })?;
    ctx.rate_headers = adm.rate_headers();
    if let Some(t) = &live.config.traces {
        ctx.trace = crate::traces::TraceIds::start(headers, t.sample);
        adm.trace(ctx.trace);
    }
    let capture = crate::bodies::Capture::start(
        &live.config.log,
        ctx.principal.as_ref().and_then(|p| p.log_bodies),
    );
    if let Some(c) = &capture {
        c.request(body);
    }
    ctx.settle = Settle::new(adm, capture);
    Ok(())
}

/// The providers whose budget state some routing rule tests and whose budget is used up.
/// Unreadable counters count as not spent: the attempt's own reservation on that provider
/// fails closed anyway.
async fn provider_budgets_spent(state: &AppState, live: &Live) -> Vec<crate::config::BudgetOf> {
    let mut spent = Vec::new();
    let mut tested: Vec<&str> =
        crate::config::RouteConditions::tested_provider_budgets(&live.config.routes).collect();
    tested.sort_unstable();
    tested.dedup();
    for name in tested {
        let Some(p) = live.provider(name) else {
            continue;
        };
        match state
            .governance()
            .enforcer()
            .provider_spent(&p.config)
            .await
        {
            Ok(true) => spent.push(crate::config::BudgetOf::Provider(name.to_owned())),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(provider = name, error = %e, "provider budget unreadable; routing as if not spent")
            }
        }
    }
    spent
}
