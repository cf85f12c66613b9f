//! OpenAI Responses API: `POST /v1/responses` (streaming and not), `GET` and `DELETE
//! /v1/responses/{id}`, also under `/openai`.
//!
//! The request is decoded into the canonical model (after the turns its
//! `previous_response_id` reaches are put before its input), served by the ordinary
//! pipeline from any provider, and its reply encoded as a response object or the Responses
//! event stream. OpenAI itself gets the client's body as it came (with those earlier turns
//! put in), and its reply and stream are relayed as they come. With `store` (the default) the response is kept in the gateway's store,
//! visible only to the key that made it (`crate::responses`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use super::chat::sse_response;
use super::{
    Size, add_ctx_headers, admit, authenticate, authorize_model, json_response, openai_error,
    parse_json, read_body, reply_bytes, reply_json, settle,
};
use crate::codec::responses::{self as codec, Echo, Output, ResponsesEncoder, wire::RespRequest};
use crate::error::GatewayError;
use crate::pipeline::relay::{StreamRecord, relay};
use crate::pipeline::{self, ChatOutcome, RequestCtx};
use crate::schema::{RawBody, WireSchema};
use crate::state::AppState;
use crate::store::ResponseRow;

pub async fn create(State(state): State<AppState>, req: Request) -> Response {
    let mut ctx = RequestCtx::new();
    ctx.schema = "responses";
    let live = state.live();
    let (parts, body) = req.into_parts();
    let server = &live.config.server;
    let result: Result<_, GatewayError> = async {
        authenticate(&state, &live, &parts, &mut ctx).await?;
        let bytes = read_body(&parts.headers, body, server.max_body_bytes).await?;
        let mut w: RespRequest = parse_json(&bytes)?;
        let mut input = codec::normalize_input(w.input.take())?;
        let owner = owner(&ctx);
        // `item_reference`s name items of responses this key stored; the rest of the
        // pipeline (and the stored row) sees the items themselves. An OpenAI provider still
        // gets the client's body as it came.
        state
            .responses()
            .resolve_references(state.store(), &mut input, owner.as_deref())
            .await?;
        let history = match &w.previous_response_id {
            Some(prev) => {
                let chain = state
                    .responses()
                    .chain(state.store(), prev, owner.as_deref())
                    .await
                    .map_err(|mut e| {
                        e.message = format!("Previous response with id '{prev}' not found.");
                        e.param = Some("previous_response_id".into());
                        e
                    })?;
                crate::responses::history(&chain)
            }
            None => Vec::new(),
        };
        let decoded = codec::decode(&w, &history, &input)?;
        for warning in &decoded.warnings {
            ctx.ingress_warnings.push(warning.as_str());
        }
        ctx.warnings = ctx.ingress_warnings.clone();
        let creq = decoded.chat;
        authorize_model(&state, &ctx, &creq.model)?;
        let size = Size {
            input_tokens: crate::tokens::quick_estimate(&creq),
            max_output: creq.max_output_tokens,
            choices: 1,
            has_output: true,
            user: creq.user.clone(),
        };
        admit(
            &state,
            &live,
            &mut ctx,
            &parts.headers,
            &creq.model,
            size,
            &bytes,
        )
        .await?;
        let mut creq = creq;
        // For a provider that speaks Responses itself (OpenAI): the client's body, with the
        // turns the gateway keeps put before its input.
        let bytes = if history.is_empty() {
            bytes
        } else {
            codec::upstream::with_history(&bytes, &history)
                .map_err(|e| GatewayError::invalid(format!("malformed request body: {e}")))?
        };
        creq.raw = Some(RawBody {
            schema: WireSchema::OpenAiResponses,
            bytes,
            headers: Vec::new(),
        });
        let echo = Arc::new(Echo::new(&w, decoded.tooling));
        let outcome = pipeline::chat(&live, &mut ctx, &creq, server.stream_keepalive).await?;
        Ok((outcome, echo, input, owner))
    }
    .await;
    let head = codec::Head {
        id: codec::response_id(),
        created_at: crate::unix_now(),
        model: String::new(),
    };
    match result {
        Ok((ChatOutcome::Complete(resp), echo, input, owner)) => {
            for c in &resp.choices {
                crate::codec::note_unsent(
                    &c.message.parts,
                    WireSchema::OpenAiResponses,
                    &mut ctx.warnings,
                );
            }
            let output = Output::from_reply(&resp, &echo.tooling);
            let status =
                codec::Status::of(resp.choices.first().and_then(|c| c.finish_reason.as_ref()));
            let head = codec::Head {
                model: resp.model.clone(),
                ..head
            };
            let body = echo.response(&head, &status, output.to_json(), resp.usage.as_ref());
            if echo.store {
                let row = row(&head, owner, &echo, &input, &body);
                if let Err(e) = state.responses().save(state.store(), row).await {
                    settle(&mut ctx, resp.usage.unwrap_or_default(), "ok", || None);
                    return openai_error(&e, &ctx);
                }
            }
            let mut r = reply_json(&ctx, &body);
            add_ctx_headers(&mut r, &ctx);
            settle(&mut ctx, resp.usage.unwrap_or_default(), "ok", || {
                Some(resp.output_text())
            });
            r
        }
        // OpenAI served it as it came: its response object is relayed (and stored) as is.
        Ok((ChatOutcome::Passthrough { body, usage }, echo, input, owner)) => {
            if echo.store
                && let Ok(v) = serde_json::from_slice::<Value>(&body)
            {
                let row = row(&head, owner, &echo, &input, &v);
                if let Err(e) = state.responses().save(state.store(), row).await {
                    settle(&mut ctx, usage.unwrap_or_default(), "ok", || None);
                    return openai_error(&e, &ctx);
                }
            }
            let mut r = reply_bytes(&ctx, body);
            add_ctx_headers(&mut r, &ctx);
            settle(&mut ctx, usage.unwrap_or_default(), "ok", || None);
            r
        }
        Ok((ChatOutcome::Stream(live_stream), echo, input, owner)) => {
            let on_done: Option<codec::OnDone> = echo.store.then(|| {
                let state = state.clone();
                let echo = Arc::clone(&echo);
                let head = head.clone();
                Box::new(move |body: &Value| {
                    let head = codec::Head {
                        model: body["model"].as_str().unwrap_or_default().to_owned(),
                        ..head
                    };
                    let row = row(&head, owner, &echo, &input, body);
                    state.responses().save_later(state.store(), row);
                }) as codec::OnDone
            });
            let encoder = ResponsesEncoder::new(echo, head, on_done);
            let record = StreamRecord::new(&mut ctx);
            let body = relay(*live_stream, encoder, server.stream_keepalive, record);
            let mut r = sse_response(Body::from_stream(body));
            add_ctx_headers(&mut r, &ctx);
            r
        }
        Err(e) => {
            tracing::debug!(request_id = %ctx.id, error = %e, "request failed");
            super::fail(&mut ctx, &e);
            openai_error(&e, &ctx)
        }
    }
}

/// The id of the key a stored response belongs to (`None` on a gateway without keys).
fn owner(ctx: &RequestCtx) -> Option<String> {
    ctx.principal.as_ref().map(|p| p.key_id.clone())
}

fn row(
    head: &codec::Head,
    owner: Option<String>,
    echo: &Echo,
    input: &[Value],
    body: &Value,
) -> ResponseRow {
    ResponseRow {
        // The response's own id (the provider's, for one relayed as it came).
        id: body["id"].as_str().unwrap_or(&head.id).to_owned(),
        owner,
        previous_response_id: echo.previous_response_id.clone(),
        created_at: i64::try_from(head.created_at).unwrap_or(i64::MAX),
        input: serde_json::to_string(input).unwrap_or_else(|_| "[]".into()),
        response: body.to_string(),
    }
}

pub async fn get(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let mut ctx = RequestCtx::new();
    let live = state.live();
    let (parts, _) = req.into_parts();
    let result = async {
        authenticate(&state, &live, &parts, &mut ctx).await?;
        state
            .responses()
            .get(state.store(), &id, owner(&ctx).as_deref())
            .await
    }
    .await;
    match result {
        Ok(row) => {
            let body: Value = serde_json::from_str(&row.response).unwrap_or(Value::Null);
            let mut r = json_response(StatusCode::OK, &body);
            add_ctx_headers(&mut r, &ctx);
            r
        }
        Err(e) => openai_error(&e, &ctx),
    }
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let mut ctx = RequestCtx::new();
    let live = state.live();
    let (parts, _) = req.into_parts();
    let result = async {
        authenticate(&state, &live, &parts, &mut ctx).await?;
        let deleted = state
            .store()
            .delete_response(&id, owner(&ctx).as_deref())
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "stored response not deleted");
                GatewayError::new(
                    crate::error::ErrorKind::Unavailable,
                    "stored responses cannot be changed right now",
                )
            })?;
        if deleted {
            Ok(())
        } else {
            Err(crate::responses::not_found(&id))
        }
    }
    .await;
    match result {
        Ok(()) => {
            let mut r = json_response(
                StatusCode::OK,
                &json!({"id": id, "object": "response", "deleted": true}),
            );
            add_ctx_headers(&mut r, &ctx);
            r
        }
        Err(e) => openai_error(&e, &ctx),
    }
}
