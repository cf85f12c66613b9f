//! Kept bodies of logged requests (`request_bodies`, one row per request that keeps any):
//! written in the same transaction as the request's record, read one request at a time, and
//! deleted with their record by retention. See `crate::bodies` for what is kept.

use sqlx::Row;

use super::{Store, StoreError, on_store, sql};
use crate::bodies::{BodyRecord, Kept};

pub(super) const INSERT: &str = "INSERT INTO request_bodies (request_id, created_at, provider, \
    request, request_bytes, reply, reply_bytes, provider_request, provider_request_bytes, \
    provider_response, provider_response_bytes, truncated) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (request_id) DO NOTHING";

/// One body as two columns: its text and its size before the cut.
pub(super) fn columns(k: &Option<Kept>) -> (Option<&str>, Option<i64>) {
    match k {
        Some(k) => (Some(k.text.as_str()), Some(super::usage::to_i64(k.bytes))),
        None => (None, None),
    }
}

impl Store {
    /// The bodies kept of one request, if any.
    pub async fn request_bodies(&self, request_id: &str) -> Result<Option<BodyRecord>, StoreError> {
        self.bounded(async {
            let q = sql(
                self,
                "SELECT provider, request, request_bytes, reply, reply_bytes, provider_request, \
                 provider_request_bytes, provider_response, provider_response_bytes, truncated \
                 FROM request_bodies WHERE request_id = $1",
            );
            let rec: Result<Option<BodyRecord>, sqlx::Error> = on_store!(self, pool => async {
                let Some(r) = sqlx::query(&q).bind(request_id).fetch_optional(pool).await? else {
                    return Ok(None);
                };
                let truncated: String = r.try_get("truncated")?;
                let kept = |name: &str| -> Result<Option<Kept>, sqlx::Error> {
                    let text: Option<String> = r.try_get(name)?;
                    let bytes: Option<i64> = r.try_get(format!("{name}_bytes").as_str())?;
                    Ok(text.map(|text| Kept {
                        bytes: bytes.and_then(|b| u64::try_from(b).ok()).unwrap_or(text.len() as u64),
                        truncated: truncated.split(',').any(|t| t == name),
                        text,
                    }))
                };
                Ok(Some(BodyRecord {
                    provider: r.try_get("provider")?,
                    request: kept("request")?,
                    reply: kept("reply")?,
                    provider_request: kept("provider_request")?,
                    provider_response: kept("provider_response")?,
                }))
            }.await);
            rec.map_err(|e| self.error(&e))
        })
        .await
    }
}
