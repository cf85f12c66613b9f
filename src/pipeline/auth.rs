//! The first stage, authentication, as the layer `app` puts around every route: who is
//! calling, before the request's body is read. The loop guard comes first (508 for a
//! request that already passed through this gateway), then the caller's key (401 without a
//! valid one, once any key exists). The handler finds the result as [`Caller`] in the
//! request's extensions.

use std::sync::Arc;

use crate::error::GatewayError;
use crate::governance::Principal;
use crate::state::AppState;

/// Who is calling an inference route (`principal` is `None` when the gateway is open: no
/// keys exist), and the loop guard's hop header for its upstream requests.
#[derive(Clone, Debug, Default)]
pub struct Caller {
    pub principal: Option<Arc<Principal>>,
    /// `None`: the request's first pass through a gateway.
    pub hop: Option<http::HeaderValue>,
}

/// Authenticate an inference request from its head.
pub async fn authenticate(
    state: &AppState,
    head: &http::request::Parts,
) -> Result<Caller, GatewayError> {
    let hop = hop(head)?;
    let live = state.live();
    let principal = state
        .governance()
        .authenticate(&live.config, state.store(), &head.headers, head.uri.query())
        .await?;
    Ok(Caller { principal, hop })
}

/// [`authenticate`] without waiting, as almost every request can be: `None` when the key
/// is unknown and the keys in memory may be stale (then `authenticate` looks again).
pub fn authenticate_now(
    state: &AppState,
    head: &http::request::Parts,
) -> Option<Result<Caller, GatewayError>> {
    let hop = match hop(head) {
        Ok(hop) => hop,
        Err(e) => return Some(Err(e)),
    };
    let principal = state
        .governance()
        .authenticate_now(&head.headers, head.uri.query())?;
    Some(principal.map(|principal| Caller { principal, hop }))
}

/// The loop guard: the hop header for this request's upstream requests (`None` on its
/// first pass through a gateway), or 508 when it already passed through this one.
fn hop(head: &http::request::Parts) -> Result<Option<http::HeaderValue>, GatewayError> {
    if head
        .headers
        .contains_key(&crate::routing::loopguard::HOP_HEADER)
    {
        crate::routing::loopguard::check(&head.headers).map(Some)
    } else {
        Ok(None)
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = axum::response::Response;

    /// The caller the authentication layer found; 401 on a route the layer let through
    /// unauthenticated (a public one), which must not act for a caller.
    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            let e = GatewayError::new(
                crate::error::ErrorKind::Unauthorized,
                "this route is not authenticated",
            );
            super::reply::openai_error(&e, &super::RequestCtx::new())
        })
    }
}
