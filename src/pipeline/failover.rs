//! The attempt loop: try the route's candidates, and each candidate's keys, until one
//! serves or nothing more may be tried (RELIABILITY 14-17).
//!
//! - Candidates come in the order routing chose. An ejected backend is skipped unless every
//!   candidate is ejected; a provider whose own budget is spent is skipped; a provider whose
//!   every key rests after a 429 is skipped.
//! - On a provider, keys are used in its balance order. A 429 rests that key and tries the
//!   provider's next key; any other retryable failure (5xx, connect error, timeout, a stream
//!   that failed before its first content) moves to the next candidate; any other failure
//!   (4xx other than 429, a request we cannot translate) ends the loop at once.
//! - At most `[routing] max_attempts` (≤ 5) attempts, each (backend, key) at most once.
//!   Every attempt after the first must be allowed by the gateway's retry budget and waits a
//!   jittered backoff first. A rule's `timeout` bounds the whole loop, backoffs included.
//! - Nothing here runs after the first byte went to the client: streams are committed by
//!   the attempt itself (`super::chat_attempt`).

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::{Instant, sleep_until, timeout_at};

use super::{Attempt, RequestCtx};
use crate::codec::Warnings;
use crate::error::{ErrorKind, GatewayError};
use crate::routing::KeyPlan;
use crate::routing::{self, Candidate, Live, Resolved, retry};

/// The route for `model`, as resolved at admission (or the fallback target of a spent
/// budget, or resolved again when admission found budgets spent that rules test), ordered
/// for this request; the decision is noted in `ctx`.
pub fn plan(live: &Live, ctx: &mut RequestCtx, model: &str) -> Result<Resolved, GatewayError> {
    let (route_to, spent) = ctx
        .settle
        .admission()
        .map(|a| (a.route_to.clone(), a.spent.clone()))
        .unwrap_or_default();
    let resolved = match (&route_to, ctx.route.take()) {
        // A spent budget routes this request to its fallback target.
        (Some(t), _) => routing::resolve_target(live, t, model)?,
        (None, Some(resolved)) if spent.is_empty() => routing::order(live, resolved?, &ctx.facts),
        _ => {
            ctx.facts
                .spent
                .extend(spent.iter().filter_map(|k| k.budget_of()));
            routing::route(live, model, &ctx.facts)?
        }
    };
    ctx.rule = resolved.rule;
    ctx.requested = model.to_owned();
    ctx.first_choice = resolved
        .candidates
        .first()
        .map(|c| (c.provider.name().to_owned(), c.model.clone()));
    Ok(resolved)
}

/// Run the attempts, then note the decision for the usage record and count it in the
/// routing metrics.
pub async fn run<'a, T>(
    live: &Live,
    ctx: &mut RequestCtx,
    resolved: Resolved,
    attempt: impl FnMut(Candidate, Option<usize>) -> BoxFuture<'a, (Result<T, GatewayError>, Warnings)>,
) -> Result<T, GatewayError> {
    let r = attempts(live, ctx, resolved, attempt).await;
    let rule = ctx.rule.and_then(|i| live.config.routes.get(i));
    let route = rule.map_or("-", |r| r.name.as_str());
    let (provider, model) = ctx
        .served
        .as_ref()
        .map_or(("-", "-"), |(p, m)| (p.as_str(), m.as_str()));
    // Looked up once: the served model's price says whether it was cheaper than the one
    // asked for, and whether its metric label is its name.
    let served_price = live.config.pricing.lookup(model);
    let cheaper = ctx.served.is_some()
        && ctx.requested != model
        && served_price.is_some_and(|b| {
            live.config
                .pricing
                .lookup(&ctx.requested)
                .is_some_and(|a| b.input + b.output < a.input + a.output)
        });
    let fallback = ctx.served_by_fallback();
    let attempts = ctx
        .attempts
        .iter()
        .map(|a| crate::governance::AttemptNote {
            provider: a.provider.clone(),
            model: a.model.clone(),
            key: a.key,
            outcome: if a.skipped {
                "skipped"
            } else {
                a.error.as_ref().map_or("ok", GatewayError::label)
            },
            status: a.error.as_ref().and_then(|e| e.upstream_status),
            error: a.error.as_ref().map(|e| e.message.clone()),
            latency_ms: crate::millis(a.latency),
            index: a.index,
            started: a.started,
            latency: a.latency,
            config: Some(Arc::clone(&a.config)),
        })
        .collect();
    let note = crate::governance::RouteNote {
        rule: rule.map(|r| r.name.clone()),
        fallback,
        attempts,
    };
    if let Some(adm) = ctx.settle.admission_mut() {
        adm.note_route(note);
    }
    // A model the price table does not know (a name a client chose freely) is `other`.
    let model = if served_price.is_some() {
        model
    } else {
        "other"
    };
    crate::metrics::request(&crate::metrics::Served {
        route,
        provider,
        model,
        fallback,
        cheaper,
        outcome: match &r {
            Ok(_) => "ok",
            Err(e) => e.label(),
        },
    });
    r
}

/// Run the attempts of `resolved`; `attempt` sends one (candidate, key) and returns its
/// result with the translation warnings of its request.
async fn attempts<'a, T>(
    live: &Live,
    ctx: &mut RequestCtx,
    resolved: Resolved,
    mut attempt: impl FnMut(
        Candidate,
        Option<usize>,
    ) -> BoxFuture<'a, (Result<T, GatewayError>, Warnings)>,
) -> Result<T, GatewayError> {
    let settings = &live.config.routing;
    let deadline = resolved
        .rule
        .and_then(|i| live.config.routes.get(i)?.timeout)
        .map(|t| (Instant::now() + t, t));
    let panic_mode = resolved
        .candidates
        .iter()
        .all(|c| c.provider.backend.is_ejected());
    let mut tries: u32 = 0;
    let mut last = None;
    'candidates: for c in resolved.candidates {
        if !panic_mode && c.provider.backend.is_ejected() {
            let e = GatewayError::new(
                ErrorKind::UpstreamUnavailable,
                format!(
                    "{} is ejected after consecutive failures",
                    c.provider.name()
                ),
            );
            last = Some(skip(ctx, &c, e));
            continue;
        }
        if let Some(adm) = ctx.settle.admission_mut()
            && let Err(e) = adm.provider(&c.provider.config, &c.model).await
        {
            // This provider's own budget is spent.
            last = Some(skip(ctx, &c, e));
            continue;
        }
        let keys = match c.provider.key_plan() {
            KeyPlan::Use(keys) => keys,
            KeyPlan::Cooling(ms) => {
                let mut e = GatewayError::new(
                    ErrorKind::RateLimited,
                    format!("every key of {} is resting after a 429", c.provider.name()),
                );
                e.retry_after = Some(ms.div_ceil(1000));
                last = Some(skip(ctx, &c, e));
                continue;
            }
        };
        for key in keys {
            if tries >= settings.max_attempts {
                break 'candidates;
            }
            if tries == 0 {
                live.backends.retry.request();
            } else {
                if !live
                    .backends
                    .retry
                    .try_retry(settings.retry_percent, settings.retry_min)
                {
                    tracing::warn!(request_id = %ctx.id, "retry budget spent: no further attempt");
                    crate::metrics::retry_budget_exhausted();
                    break 'candidates;
                }
                let wake = Instant::now()
                    + retry::backoff(tries, settings.backoff_base, settings.backoff_max);
                if deadline.is_some_and(|(d, _)| wake >= d) {
                    break 'candidates;
                }
                sleep_until(wake).await;
            }
            tries += 1;
            let holds = [
                Some(c.provider.backend.load.enter()),
                key.and_then(|k| c.provider.keys.get(k)).map(|l| l.enter()),
            ];
            let started = Instant::now();
            let offset = started.duration_since(ctx.started);
            // A client that leaves while this attempt runs is charged for it (`settle`).
            ctx.settle.sent(c.provider.name(), &c.model);
            let fut = attempt(c.clone(), key);
            let (result, warnings) = match deadline {
                Some((d, t)) => timeout_at(d, fut).await.unwrap_or_else(|_| {
                    let e = GatewayError::new(
                        ErrorKind::UpstreamTimeout,
                        format!("the route's timeout of {t:?} passed"),
                    )
                    .retryable(false);
                    (Err(e), Warnings::default())
                }),
                None => fut.await,
            };
            let latency = started.elapsed();
            let rested = observe(live, &c, key, latency, &result);
            if result.is_ok() {
                ctx.settle.hold(holds.into_iter().flatten());
            } else {
                ctx.settle.unsent();
            }
            let sent = Sent {
                key,
                index: tries,
                started: offset,
                latency,
            };
            match record(ctx, &c, sent, warnings, result) {
                ControlFlow::Break(r) => return r,
                ControlFlow::Continue(e) => {
                    last = Some(e);
                    if !rested {
                        continue 'candidates;
                    }
                }
            }
        }
    }
    Err(exhausted(ctx, last))
}

/// Feed one attempt's result to the backend's and key's health. True when the key was
/// rested (a 429), so the provider's next key may serve.
fn observe<T>(
    live: &Live,
    c: &Candidate,
    key: Option<usize>,
    latency: Duration,
    result: &Result<T, GatewayError>,
) -> bool {
    let p = &c.provider;
    let key_load = key.and_then(|k| p.keys.get(k));
    crate::metrics::attempt(
        p.name(),
        result.as_ref().err().map_or("ok", GatewayError::label),
    );
    match result {
        Ok(_) => {
            p.backend.success();
            p.backend.load.observe(latency);
            if let Some(l) = key_load {
                l.observe(latency);
            }
            false
        }
        Err(e) if e.upstream_status == Some(429) => {
            let rest = e
                .retry_after
                .map_or(live.config.routing.key_cooldown, Duration::from_secs);
            if let Some(l) = key_load {
                l.cool(rest);
                crate::metrics::key_rest(p.name());
                tracing::info!(
                    provider = p.name(),
                    key = key.unwrap_or(0),
                    seconds = rest.as_secs(),
                    "provider key resting after 429"
                );
            }
            key_load.is_some()
        }
        Err(e) if e.retryable => {
            if live.backends.failure(&p.backend, &live.config.routing) {
                crate::metrics::ejection(p.name());
            }
            false
        }
        // The provider answered (a 4xx of the caller's making) or we never sent: healthy.
        Err(_) => {
            p.backend.success();
            false
        }
    }
}

/// Note a candidate skipped without an attempt.
fn skip(ctx: &mut RequestCtx, c: &Candidate, e: GatewayError) -> GatewayError {
    crate::metrics::attempt(c.provider.name(), "skipped");
    ctx.attempts.push(Attempt {
        provider: c.provider.name().to_owned(),
        model: c.model.clone(),
        key: None,
        latency: Duration::ZERO,
        error: Some(e.clone()),
        skipped: true,
        index: 0,
        started: ctx.started.elapsed(),
        config: Arc::clone(&c.provider.config),
    });
    e
}

/// One attempt sent: with which key, its place among the attempts, when it started (after
/// the request did) and how long it took.
struct Sent {
    key: Option<usize>,
    index: u32,
    started: Duration,
    latency: Duration,
}

/// Record one attempt. `Break` ends the loop with this result (success, or a failure that
/// may not be retried); `Continue` carries a retryable failure on to the next try.
fn record<T>(
    ctx: &mut RequestCtx,
    c: &Candidate,
    sent: Sent,
    warnings: Warnings,
    result: Result<T, GatewayError>,
) -> ControlFlow<Result<T, GatewayError>, GatewayError> {
    // Whatever an attempt's error quotes (a provider's words, a reply it could not read)
    // reaches the client, the log, the record and the trace without a secret.
    let result = result.map_err(|e| crate::providers::exec::redacted(e, &[]));
    ctx.attempts.push(Attempt {
        provider: c.provider.name().to_owned(),
        model: c.model.clone(),
        key: sent.key,
        latency: sent.latency,
        error: result.as_ref().err().cloned(),
        skipped: false,
        index: sent.index,
        started: sent.started,
        config: Arc::clone(&c.provider.config),
    });
    ctx.warnings = warnings;
    match result {
        Ok(v) => {
            ctx.served = Some((c.provider.name().to_owned(), c.model.clone()));
            ControlFlow::Break(Ok(v))
        }
        Err(e) if e.retryable => {
            match c.provider.backend.should_warn() {
                Some(since) => {
                    tracing::warn!(request_id = %ctx.id, provider = c.provider.name(), model = %c.model, error = %e, failed_since_last_warning = since, "attempt failed; trying the next target");
                }
                None => {
                    tracing::debug!(request_id = %ctx.id, provider = c.provider.name(), model = %c.model, error = %e, "attempt failed; trying the next target");
                }
            }
            ControlFlow::Continue(e)
        }
        Err(e) => ControlFlow::Break(Err(e)),
    }
}

/// The error after every candidate failed: the last failure's class, with every attempt's
/// reason in the message when there was more than one.
fn exhausted(ctx: &RequestCtx, last: Option<GatewayError>) -> GatewayError {
    match last {
        Some(mut e) if ctx.attempts.len() > 1 => {
            let summary: Vec<String> = ctx
                .attempts
                .iter()
                .map(|a| {
                    let why = a
                        .error
                        .as_ref()
                        .map_or_else(|| "ok".to_owned(), |e| e.message.clone());
                    format!("{}/{}: {why}", a.provider, a.model)
                })
                .collect();
            e.message = format!(
                "all {} targets failed: {}",
                ctx.attempts.len(),
                summary.join("; ")
            );
            e
        }
        Some(e) => e,
        None => GatewayError::new(
            ErrorKind::ModelNotFound,
            "no target is configured for this model",
        ),
    }
}
