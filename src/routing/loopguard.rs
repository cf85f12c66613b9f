//! The loop guard (RELIABILITY 18): a provider pointed at the gateway itself, directly or
//! through other gateways, must not bounce a request around forever.
//!
//! - At load (start and every reload), a provider whose `base_url` resolves to the gateway's
//!   own listener is refused.
//! - Every upstream request carries `x-gatehouse-hop`: the instance ids of the gateways it
//!   passed through, ours last. A request that arrives with our own id in it, or after
//!   [`MAX_HOPS`] gateways, is answered 508 before anything else happens.

use std::net::SocketAddr;
use std::sync::OnceLock;

use http::{HeaderMap, HeaderValue};

use crate::config::Config;
use crate::error::{ErrorKind, GatewayError};

pub use crate::providers::exec::HOP_HEADER;
/// Gateways a request may pass through before it is taken for a loop.
pub const MAX_HOPS: usize = 8;

/// This process's id: random, fixed for its life.
pub fn instance_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| format!("{:016x}", crate::random_u64()))
}

/// 508 when the request already passed through this gateway; otherwise the hop header to
/// send upstream (the incoming chain with our id added).
pub fn check(headers: &HeaderMap) -> Result<HeaderValue, GatewayError> {
    let me = instance_id();
    let chain = headers
        .get(&HOP_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let hops: Vec<&str> = chain
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    if hops.contains(&me) {
        return Err(GatewayError::new(
            ErrorKind::LoopDetected,
            "this request already passed through this gateway: a provider's base_url leads back to it",
        ));
    }
    if hops.len() >= MAX_HOPS {
        return Err(GatewayError::new(
            ErrorKind::LoopDetected,
            format!(
                "this request passed through {} gateways: taken for a loop",
                hops.len()
            ),
        ));
    }
    let value = if hops.is_empty() {
        me.to_owned()
    } else {
        format!("{},{me}", hops.join(","))
    };
    HeaderValue::try_from(value)
        .map_err(|_| GatewayError::invalid("invalid x-gatehouse-hop header"))
}

/// The hop header of a request that came with none (the common case), built once.
pub fn first_hop() -> &'static HeaderValue {
    static V: OnceLock<HeaderValue> = OnceLock::new();
    V.get_or_init(|| HeaderValue::from_static(instance_id()))
}

/// The providers whose `base_url` resolves to `listener` (the gateway's own address), each
/// as a message for the operator.
pub async fn self_pointing(config: &Config, listener: SocketAddr) -> Vec<String> {
    let mut out = Vec::new();
    for p in &config.providers {
        let Ok(uri) = p.base_url.parse::<http::Uri>() else {
            continue;
        };
        let Some(host) = uri.host() else { continue };
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        if port != listener.port() {
            continue;
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let Ok(addrs) = tokio::net::lookup_host((host, port)).await else {
            continue;
        };
        let ours = addrs.into_iter().any(|a| {
            a == listener
                || (listener.ip().is_unspecified() && (a.ip().is_loopback() || is_local(a)))
        });
        if ours {
            out.push(format!(
                "provider `{}` has a base_url that resolves to this gateway's own listener ({listener}): requests would loop",
                p.name
            ));
        }
    }
    out
}

/// Is `a` one of this machine's addresses? Binding it is possible only if it is.
fn is_local(a: SocketAddr) -> bool {
    std::net::UdpSocket::bind(SocketAddr::new(a.ip(), 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_id_in_the_chain_is_a_loop() {
        let mut h = HeaderMap::new();
        assert_eq!(check(&h).unwrap(), instance_id());
        h.insert(HOP_HEADER, HeaderValue::from_static("aaa, bbb"));
        assert_eq!(
            check(&h).unwrap().to_str().unwrap(),
            format!("aaa,bbb,{}", instance_id())
        );
        h.insert(
            HOP_HEADER,
            HeaderValue::try_from(format!("aaa,{}", instance_id())).unwrap(),
        );
        assert_eq!(check(&h).unwrap_err().status().as_u16(), 508);
        h.insert(HOP_HEADER, HeaderValue::from_static("1,2,3,4,5,6,7,8"));
        assert_eq!(check(&h).unwrap_err().status().as_u16(), 508);
    }
}
