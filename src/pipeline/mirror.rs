//! Mirroring: a sampled shadow copy of a chat request, sent to a rule's `mirror` target
//! after admission, on a task of its own (tracked: shutdown waits for it, `crate::tasks`).
//!
//! The shadow never delays or changes the reply: it is spawned before the primary's first
//! attempt and nothing waits for it. It is admitted on the mirror's own budgets only (the
//! caller's budgets and rate limits never count it); when one is spent, no shadow goes out.
//! It always asks for a whole (non-streaming) reply, translated from the canonical request.
//! Its usage record names the primary in `mirror_of` and keeps its reply text and latency;
//! the primary's record keeps its own text, so the two can be compared.

use crate::codec::Warnings;
use crate::providers::exec::{self, Outbound};
use crate::routing::{self, Live};
use crate::schema::ChatRequest;

use super::RequestCtx;
use super::settle::{Settle, Summary};

/// Send a shadow of `req` when rule `rule` mirrors and this request is sampled.
pub fn maybe_spawn(live: &Live, ctx: &mut RequestCtx, model: &str, req: &ChatRequest) {
    let Some((route, mirror, candidate)) = routing::mirror_for(live, ctx.rule, model) else {
        return;
    };
    let shadow = ctx
        .settle
        .admission()
        .map(|a| a.shadow(&route.name, mirror.budgets.clone(), &candidate.model));
    let mut req = req.clone();
    req.stream = false;
    req.stream_usage = false;
    let mut w = Warnings::default();
    // The client's unmodelled top-level fields mean something only to a provider of its own
    // schema; with the client's body gone (below), the encoders can no longer tell.
    if let Some(raw) = &req.raw
        && !speaks(candidate.provider.config.kind, raw.schema)
    {
        for k in req.extra.keys() {
            w.push(format!("{k} dropped"));
        }
        req.extra.clear();
    }
    // Translated from the canonical request: the client's own body asks for a stream.
    req.raw = None;
    if let Ok(std::borrow::Cow::Owned(fitted)) =
        super::ceiling::fit(&req, &candidate.model, &live.config.pricing, &mut w)
    {
        req = fitted;
    }
    let hop = ctx.hop.clone();
    ctx.settle.set_mirrored();
    crate::tasks::spawn(crate::tasks::Kind::Mirror, async move {
        let started = tokio::time::Instant::now();
        // The shadow settles by a guard of its own, as a request does.
        let mut settle = match shadow {
            Some(s) => match s.admit().await {
                Ok(a) => Settle::new(a, None),
                Err(e) => {
                    tracing::info!(error = %e, "mirror not sent");
                    crate::metrics::mirror("budget");
                    return;
                }
            },
            None => Settle::default(),
        };
        // Its record keeps the reply's text, to compare with the primary's.
        settle.set_mirrored();
        let p = &candidate.provider;
        let shadow_id = settle
            .admission()
            .map_or_else(super::new_request_id, |a| a.request_id().to_owned());
        let out = Outbound {
            key: p.first_key(),
            hop: &hop,
            request_id: &shadow_id,
            capture: None,
            traceparent: None,
        };
        let result = async {
            let up = p.adapter.build_chat(&req, &candidate.model, &mut w)?;
            let body = exec::send_for_body(p, &out, up).await?;
            p.adapter.parse_chat(&body)
        }
        .await;
        let served = (p.name().to_owned(), candidate.model.clone());
        let summary = Summary {
            request_id: &shadow_id,
            served: Some(&served),
            started,
            warnings: &w,
        };
        match result {
            Ok(reply) => {
                crate::metrics::mirror("ok");
                let usage = reply.usage.unwrap_or_default();
                settle.complete(&summary, usage, || Some(reply.output_text()));
            }
            Err(e) => {
                tracing::info!(provider = p.name(), error = %e, "mirror request failed");
                crate::metrics::mirror("error");
                settle.fail(&summary, &e);
            }
        }
    });
}

/// Whether a provider of `kind` speaks client schema `schema` (takes its top-level fields).
fn speaks(kind: crate::config::ProviderKind, schema: crate::schema::WireSchema) -> bool {
    use crate::config::ProviderKind as K;
    use crate::schema::WireSchema as S;
    matches!(
        (kind, schema),
        (
            K::OpenAi | K::AzureOpenAi | K::OpenAiCompatible | K::Mistral,
            S::OpenAiChat | S::OpenAiResponses
        ) | (K::Anthropic, S::AnthropicMessages)
            | (K::Gemini, S::Gemini)
    )
}
