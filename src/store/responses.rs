//! Stored Responses API responses (`store: true`): saved once their reply is complete, read
//! back by `GET /v1/responses/{id}`, walked by `previous_response_id`; their items (input
//! and output) found by id for `item_reference` input items.
//!
//! Each row keeps only its own request's input items; a continuation reaches the earlier
//! turns through the `previous_response_id` links, read in one recursive query (newest
//! first, at most [`MAX_CHAIN`] rows) so that a long conversation costs neither quadratic
//! storage nor a query per turn.

use sqlx::Row;

use super::{Store, StoreError, on_store, sql};

/// The most turns one conversation may chain through `previous_response_id`.
pub const MAX_CHAIN: i64 = 1_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseRow {
    pub id: String,
    /// The virtual key's id; `None` on a gateway without keys.
    pub owner: Option<String>,
    pub previous_response_id: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// This request's input items (JSON array).
    pub input: String,
    /// The response object (JSON).
    pub response: String,
}

macro_rules! response_row {
    ($r:expr) => {{
        let r = $r;
        (|| -> Result<ResponseRow, sqlx::Error> {
            Ok(ResponseRow {
                id: r.try_get("id")?,
                owner: r.try_get("owner")?,
                previous_response_id: r.try_get("previous_response_id")?,
                created_at: r.try_get("created_at")?,
                input: r.try_get("input")?,
                response: r.try_get("response")?,
            })
        })()
    }};
}

/// The `owner` column of `response_items`: the key's id, '' on a gateway without keys.
fn item_owner(owner: Option<&str>) -> &str {
    owner.unwrap_or("")
}

impl Store {
    /// Save a response and its `items` (each item's id and JSON text), which
    /// [`Store::response_item`] then finds by id. An item a later turn sends again gets a row
    /// for that response too, so it outlives the deletion of the first.
    pub async fn save_response(
        &self,
        row: &ResponseRow,
        items: &[(String, String)],
    ) -> Result<(), StoreError> {
        self.bounded(async {
            let text = sql(
                self,
                "INSERT INTO responses (id, owner, previous_response_id, created_at, input, response) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            );
            let item_text = sql(
                self,
                "INSERT INTO response_items (owner, id, response_id, item) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT DO NOTHING",
            );
            let _one = match self {
                Store::Sqlite(..) => Some(super::sqlite_write_lock().await),
                Store::Postgres(_) => None,
            };
            let owner = item_owner(row.owner.as_deref());
            on_store!(self, pool => {
                async {
                    let mut tx = pool.begin().await?;
                    sqlx::query(&text)
                        .bind(&row.id)
                        .bind(&row.owner)
                        .bind(&row.previous_response_id)
                        .bind(row.created_at)
                        .bind(&row.input)
                        .bind(&row.response)
                        .execute(&mut *tx)
                        .await?;
                    for (id, item) in items {
                        sqlx::query(&item_text)
                            .bind(owner)
                            .bind(id)
                            .bind(&row.id)
                            .bind(item)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await
                }
                .await
            })
            .map_err(|e| self.error(&e))
        })
        .await
    }

    /// The item `id` of a response `owner` stored, as JSON text; `None` when there is none.
    pub async fn response_item(
        &self,
        id: &str,
        owner: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        self.bounded(async {
            let text = sql(
                self,
                "SELECT item FROM response_items WHERE owner = $1 AND id = $2 LIMIT 1",
            );
            on_store!(self, pool => {
                sqlx::query_scalar::<_, String>(&text)
                    .bind(item_owner(owner))
                    .bind(id)
                    .fetch_optional(pool)
                    .await
            })
            .map_err(|e| self.error(&e))
        })
        .await
    }

    /// The response `id` and the ones it continues, oldest first (at most [`MAX_CHAIN`]).
    /// Empty when `id` is unknown. Ownership is the caller's to check, row by row.
    pub async fn response_chain(&self, id: &str) -> Result<Vec<ResponseRow>, StoreError> {
        self.bounded(async {
            let text = sql(
                self,
                "WITH RECURSIVE chain (id, owner, previous_response_id, created_at, input, response, depth) AS ( \
                   SELECT id, owner, previous_response_id, created_at, input, response, 0 FROM responses WHERE id = $1 \
                   UNION ALL \
                   SELECT r.id, r.owner, r.previous_response_id, r.created_at, r.input, r.response, c.depth + 1 \
                   FROM responses r JOIN chain c ON r.id = c.previous_response_id WHERE c.depth + 1 < $2 \
                 ) SELECT id, owner, previous_response_id, created_at, input, response FROM chain ORDER BY depth DESC",
            );
            on_store!(self, pool => {
                match sqlx::query(&text).bind(id).bind(MAX_CHAIN).fetch_all(pool).await {
                    Ok(rows) => rows.iter().map(|r| response_row!(r)).collect::<Result<Vec<_>, _>>(),
                    Err(e) => Err(e),
                }
            })
            .map_err(|e| self.error(&e))
        })
        .await
    }

    /// Delete the response `id` and its items if `owner` made it; false when there was none
    /// to delete.
    pub async fn delete_response(&self, id: &str, owner: Option<&str>) -> Result<bool, StoreError> {
        self.bounded(async {
            let text = sql(
                self,
                "DELETE FROM responses WHERE id = $1 AND ((owner IS NULL AND $2 IS NULL) OR owner = $2)",
            );
            let items = sql(
                self,
                "DELETE FROM response_items WHERE response_id = $1 AND owner = $2",
            );
            let _one = match self {
                Store::Sqlite(..) => Some(super::sqlite_write_lock().await),
                Store::Postgres(_) => None,
            };
            on_store!(self, pool => {
                async {
                    let mut tx = pool.begin().await?;
                    let deleted = sqlx::query(&text)
                        .bind(id)
                        .bind(owner)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                        > 0;
                    if deleted {
                        sqlx::query(&items)
                            .bind(id)
                            .bind(item_owner(owner))
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await.map(|()| deleted)
                }
                .await
            })
            .map_err(|e| self.error(&e))
        })
        .await
    }
}
