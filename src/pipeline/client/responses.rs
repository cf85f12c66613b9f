//! OpenAI Responses API: `POST /v1/responses` (streaming and not, also under `/openai`).
//!
//! The request is decoded into the canonical model (after the turns its
//! `previous_response_id` reaches are put before its input, and its `item_reference`s are
//! replaced by the items they name), served by the ordinary pipeline from any provider, and
//! its reply encoded as a response object or the Responses event stream. OpenAI itself gets
//! the client's body as it came (with those earlier turns put in), and its reply and stream
//! are relayed as they come. With `store` (the default) the response is kept in the
//! gateway's store, visible only to the key that made it (`crate::responses`), which also
//! serves `GET` and `DELETE /v1/responses/{id}`.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::request::Parts;
use serde_json::Value;

use super::{ClientSchema, Decoded, to_json};
use crate::codec::responses::{self as codec, Echo, Output, ResponsesEncoder, wire::RespRequest};
use crate::error::GatewayError;
use crate::pipeline::RequestCtx;
use crate::pipeline::relay::StreamEncoder;
use crate::schema::{ChatRequest, ChatResponse, StreamEvent, WireSchema};
use crate::state::AppState;
use crate::store::ResponseRow;

pub struct Responses;

/// What a Responses request keeps for its reply.
pub struct Turn {
    echo: Arc<Echo>,
    head: codec::Head,
    /// Its input items as resolved (kept with the stored response).
    input: Vec<Value>,
    /// The key its stored response belongs to.
    owner: Option<String>,
}

impl ClientSchema for Responses {
    const SCHEMA: WireSchema = WireSchema::OpenAiResponses;
    const FORWARDED: &'static [&'static str] = &[];
    type Encoder = ResponsesEncoder;
    type Turn = Turn;

    async fn decode(
        state: &AppState,
        ctx: &mut RequestCtx,
        _: &Parts,
        body: &Bytes,
    ) -> Result<Decoded<Turn>, GatewayError> {
        let mut w: RespRequest = crate::pipeline::parse_json(body)?;
        let mut input = codec::normalize_input(w.input.take())?;
        let owner = owner(ctx.principal.as_deref());
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
        // For a provider that speaks Responses itself (OpenAI): the client's body, with the
        // turns the gateway keeps put before its input.
        let upstream_body = if history.is_empty() {
            None
        } else {
            Some(
                codec::upstream::with_history(body, &history)
                    .map_err(|e| GatewayError::invalid(format!("malformed request body: {e}")))?,
            )
        };
        let turn = Turn {
            echo: Arc::new(Echo::new(&w, decoded.tooling)),
            head: codec::Head {
                id: codec::response_id(),
                created_at: crate::unix_now(),
                model: String::new(),
            },
            input,
            owner,
        };
        Ok(Decoded {
            chat: decoded.chat,
            turn,
            upstream_body,
        })
    }

    async fn reply(state: &AppState, t: Turn, resp: &ChatResponse) -> Result<Bytes, GatewayError> {
        let output = Output::from_reply(resp, &t.echo.tooling);
        let status = codec::Status::of(resp.choices.first().and_then(|c| c.finish_reason.as_ref()));
        let head = codec::Head {
            model: resp.model.clone(),
            ..t.head
        };
        let body = t
            .echo
            .response(&head, &status, output.to_json(), resp.usage.as_ref());
        if t.echo.store {
            let row = row(&head, t.owner, &t.echo, &t.input, &body);
            state.responses().save(state.store(), row).await?;
        }
        Ok(to_json(&body))
    }

    /// OpenAI served it as it came: its response object is stored as is.
    async fn passthrough(state: &AppState, t: Turn, body: &Bytes) -> Result<(), GatewayError> {
        if t.echo.store
            && let Ok(v) = serde_json::from_slice::<Value>(body)
        {
            let row = row(&t.head, t.owner, &t.echo, &t.input, &v);
            state.responses().save(state.store(), row).await?;
        }
        Ok(())
    }

    fn encoder(state: &AppState, t: Turn, _: &ChatRequest, _: &Parts) -> ResponsesEncoder {
        let on_done: Option<codec::OnDone> = t.echo.store.then(|| {
            let state = state.clone();
            let echo = Arc::clone(&t.echo);
            let head = t.head.clone();
            let (owner, input) = (t.owner, t.input);
            Box::new(move |body: &Value| {
                let head = codec::Head {
                    model: body["model"].as_str().unwrap_or_default().to_owned(),
                    ..head
                };
                let row = row(&head, owner, &echo, &input, body);
                state.responses().save_later(state.store(), row);
            }) as codec::OnDone
        });
        ResponsesEncoder::new(t.echo, t.head, on_done)
    }

    fn error_body(e: &GatewayError) -> Bytes {
        to_json(&crate::codec::openai_chat::error_body(e))
    }
}

/// The id of the key a stored response belongs to (`None` on a gateway without keys).
pub fn owner(p: Option<&crate::governance::Principal>) -> Option<String> {
    p.map(|p| p.key_id.clone())
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

impl StreamEncoder for ResponsesEncoder {
    const SCHEMA: WireSchema = WireSchema::OpenAiResponses;
    fn event(&mut self, ev: &StreamEvent, out: &mut BytesMut) {
        self.encode(ev, out);
    }
    fn finish(&mut self, out: &mut BytesMut) {
        ResponsesEncoder::finish(self, out);
    }
    /// OpenAI's own stream ends with its terminal event, relayed already.
    fn finish_raw(&mut self, _: &mut BytesMut) {
        ResponsesEncoder::finish_raw(self);
    }
    fn error(&mut self, err: &GatewayError, out: &mut BytesMut) {
        ResponsesEncoder::error(self, err, out);
    }
}
