//! Stored Responses API responses: the gateway's own state behind `store`,
//! `previous_response_id` and `item_reference` input items, whatever provider served (issue
//! #5, issue 7). A reference names any input or output item of a response the same key stored.
//!
//! A response is saved once its reply is complete. A streamed reply completes inside the
//! relay, which cannot wait for the store, so its row is written in the background (a task
//! shutdown waits for, `crate::tasks`) and kept
//! in [`Responses::pending`] until the write lands: a client that continues the
//! conversation the moment it saw `response.completed` still finds it. Rows are visible only
//! to the virtual key that made them (`owner`); another key gets the same 404 as for an
//! unknown id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::error::{ErrorKind, GatewayError};
use crate::store::{ResponseRow, Store};

#[derive(Default)]
pub struct Responses {
    /// Rows whose write has not landed yet, by id.
    pending: Arc<Mutex<HashMap<String, ResponseRow>>>,
}

impl Responses {
    /// Save `row` now, waiting for the store.
    pub async fn save(&self, store: &Store, row: ResponseRow) -> Result<(), GatewayError> {
        store
            .save_response(&row, &items_of(&row))
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "stored response not saved");
                GatewayError::new(ErrorKind::Internal, "the response could not be stored")
            })
    }

    /// Save `row` in the background; it is readable at once.
    pub fn save_later(&self, store: &Store, row: ResponseRow) {
        let id = row.id.clone();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(id.clone(), row.clone());
        }
        let pending = Arc::clone(&self.pending);
        let store = store.clone();
        crate::tasks::spawn(crate::tasks::Kind::StoredResponse, async move {
            if let Err(e) = store.save_response(&row, &items_of(&row)).await {
                tracing::error!(error = %e, response = %id, "stored response not saved");
            }
            if let Ok(mut p) = pending.lock() {
                p.remove(&id);
            }
        });
    }

    /// The response `id` and those it continues, oldest first, if `owner` made them all.
    pub async fn chain(
        &self,
        store: &Store,
        id: &str,
        owner: Option<&str>,
    ) -> Result<Vec<ResponseRow>, GatewayError> {
        let mut tail = Vec::new();
        let mut next = Some(id.to_owned());
        // The newest turns may still be on their way to the store.
        while let Some(n) = next.take() {
            let row = self.pending.lock().ok().and_then(|p| p.get(&n).cloned());
            match row {
                Some(row) => {
                    next.clone_from(&row.previous_response_id);
                    tail.push(row);
                }
                None => {
                    next = Some(n);
                    break;
                }
            }
        }
        let mut rows = match next {
            Some(n) => store.response_chain(&n).await.map_err(|e| {
                tracing::error!(error = %e, "stored responses unreadable");
                GatewayError::new(
                    ErrorKind::Unavailable,
                    "stored responses cannot be read right now",
                )
            })?,
            None => Vec::new(),
        };
        if (rows.is_empty() && tail.is_empty())
            || rows
                .iter()
                .chain(&tail)
                .any(|r| r.owner.as_deref() != owner)
        {
            return Err(not_found(id));
        }
        tail.reverse();
        rows.extend(tail);
        Ok(rows)
    }

    /// The stored response `id` if `owner` made it.
    pub async fn get(
        &self,
        store: &Store,
        id: &str,
        owner: Option<&str>,
    ) -> Result<ResponseRow, GatewayError> {
        let chain = self.chain(store, id, owner).await?;
        chain.into_iter().last().ok_or_else(|| not_found(id))
    }

    /// `input` with every `item_reference` replaced by the item it names, from the
    /// responses `owner` stored (their input and output items); an id that is unknown, or
    /// another key's, is OpenAI's 404 for a missing item.
    pub async fn resolve_references(
        &self,
        store: &Store,
        input: &mut [Value],
        owner: Option<&str>,
    ) -> Result<(), GatewayError> {
        for item in input.iter_mut() {
            if item.get("type").and_then(Value::as_str) != Some("item_reference") {
                continue;
            }
            let id = item
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            *item = self.item(store, &id, owner).await?;
        }
        Ok(())
    }

    /// The stored item `id` of a response `owner` made.
    async fn item(
        &self,
        store: &Store,
        id: &str,
        owner: Option<&str>,
    ) -> Result<Value, GatewayError> {
        // A response whose write has not landed yet is searched in memory.
        let pending = self.pending.lock().ok().and_then(|p| {
            p.values()
                .filter(|r| r.owner.as_deref() == owner)
                .find_map(|r| {
                    items_of(r)
                        .into_iter()
                        .find(|(item_id, _)| item_id == id)
                        .map(|(_, item)| item)
                })
        });
        let text = match pending {
            Some(text) => Some(text),
            None => store.response_item(id, owner).await.map_err(|e| {
                tracing::error!(error = %e, "stored response items unreadable");
                GatewayError::new(
                    ErrorKind::Unavailable,
                    "stored responses cannot be read right now",
                )
            })?,
        };
        text.and_then(|t| serde_json::from_str(&t).ok())
            .ok_or_else(|| item_not_found(id))
    }
}

/// Every input and output item of `row` that has an id, as (id, JSON text): what an
/// `item_reference` may name later.
fn items_of(row: &ResponseRow) -> Vec<(String, String)> {
    let input = serde_json::from_str::<Value>(&row.input).ok();
    let response = serde_json::from_str::<Value>(&row.response).ok();
    let output = response.as_ref().and_then(|r| r.get("output"));
    [input.as_ref(), output]
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .filter(|item| item.get("type").and_then(Value::as_str) != Some("item_reference"))
        .filter_map(|item| {
            let id = item.get("id").and_then(Value::as_str)?;
            (!id.is_empty()).then(|| (id.to_owned(), item.to_string()))
        })
        .collect()
}

/// OpenAI's answer for an `item_reference` to an item it does not have.
pub fn item_not_found(id: &str) -> GatewayError {
    let mut e = GatewayError::new(
        ErrorKind::NotFound,
        format!("Item with id '{id}' not found."),
    );
    e.param = Some("input".into());
    e
}

pub fn not_found(id: &str) -> GatewayError {
    let mut e = GatewayError::new(
        ErrorKind::NotFound,
        format!("Response with id '{id}' not found."),
    );
    e.param = Some("response_id".into());
    e
}

/// The input items of a chain, each turn's own input then its output, oldest first: what a
/// continuation puts before its own input.
pub fn history(rows: &[ResponseRow]) -> Vec<Value> {
    let mut items = Vec::new();
    for r in rows {
        if let Ok(Value::Array(input)) = serde_json::from_str(&r.input) {
            items.extend(input);
        }
        if let Ok(resp) = serde_json::from_str::<Value>(&r.response)
            && let Some(Value::Array(output)) = resp.get("output").cloned()
        {
            items.extend(output);
        }
    }
    items
}
