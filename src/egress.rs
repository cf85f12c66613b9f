//! Where the gateway may connect (RELIABILITY 28, SSRF): the address policy every outbound
//! connection passes, and the resolver that pins the addresses it checked.
//!
//! The gateway connects to URLs of the operator's: provider base URLs, the budget alert
//! webhook, the trace collector. One that reaches a link-local, cloud metadata, private,
//! shared (CGNAT), unspecified or reserved address ([`Range`]), written as an address in any
//! form (`10.0.0.5`, `[::ffff:10.0.0.5]`, `167772165`, `0xa000005`) or through a name that
//! resolves there, is refused unless `[server] allowed_private_upstreams` lists it
//! ([`Policy`]). Loopback (127/8, `::1`) is allowed: local models (llama-server, Ollama,
//! vLLM on the same machine) listen there, and the loop guard (`routing::loopguard`) covers
//! a provider pointed at the gateway itself.
//!
//! - At load, a URL whose host is an address, or a cloud metadata name, is checked
//!   ([`Policy::check_url_host`]); an error names the setting.
//! - At connect, a name is resolved once by [`Resolver`], every address of the answer is
//!   checked, and the connection is made to exactly those addresses: hyper-util's
//!   `HttpConnector` connects to what its resolver returned and never resolves again, so an
//!   answer that changes between the check and the connect (DNS rebinding) cannot move the
//!   connection. An address written as the URL's host never reaches a resolver; [`Guarded`]
//!   checks it in front of the connector.
//! - Redirects are not followed anywhere: the provider pool speaks HTTP itself and hands a
//!   3xx back as a failed reply; hyper's client (webhook, exporter) has no redirect support.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::Name;

/// The setting that allows what this module refuses, as errors name it.
pub const SETTING: &str = "server.allowed_private_upstreams";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The kind of address a connection is refused to (loopback and public ones are allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// 0.0.0.0/8, `::` (a connect to 0.0.0.0 reaches this machine).
    Unspecified,
    /// 169.254/16, fe80::/10.
    LinkLocal,
    /// A cloud's instance metadata service: 169.254.169.254 (AWS, GCP, Azure, OpenStack),
    /// fd00:ec2::254 (AWS), 169.254.170.2 (AWS ECS), 100.100.100.200 (Alibaba),
    /// 168.63.129.16 (Azure), and their names.
    Metadata,
    /// 10/8, 172.16/12, 192.168/16, fc00::/7 (and the old site-local fec0::/10).
    Private,
    /// 100.64/10, carrier-grade NAT's shared space: private in practice.
    Shared,
    /// Multicast, 240/4 and broadcast: no HTTP server lives there.
    Reserved,
}

impl Range {
    fn describe(self) -> &'static str {
        match self {
            Self::Unspecified => "an unspecified address",
            Self::LinkLocal => "a link-local address",
            Self::Metadata => "a cloud metadata address",
            Self::Private => "a private address",
            Self::Shared => "a shared (CGNAT) address",
            Self::Reserved => "a reserved or multicast address",
        }
    }
}

const METADATA_V4: [Ipv4Addr; 4] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(100, 100, 100, 200),
    Ipv4Addr::new(168, 63, 129, 16),
];
const METADATA_V6: [Ipv6Addr; 1] = [Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254)];
/// Names of metadata services, refused at load even before they resolve.
const METADATA_NAMES: [&str; 5] = [
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
];

/// The range `ip` is in, `None` for a public or loopback address (allowed). IPv6 forms that
/// carry an IPv4 address (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64
/// `64:ff9b::a.b.c.d`) are judged by that address.
pub fn classify(ip: IpAddr) -> Option<Range> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Range> {
    let o = ip.octets();
    if METADATA_V4.contains(&ip) {
        Some(Range::Metadata)
    } else if ip.is_loopback() {
        None
    } else if o[0] == 0 {
        Some(Range::Unspecified)
    } else if ip.is_link_local() {
        Some(Range::LinkLocal)
    } else if ip.is_private() {
        Some(Range::Private)
    } else if o[0] == 100 && o[1] & 0xc0 == 64 {
        Some(Range::Shared)
    } else if ip.is_multicast() || o[0] >= 240 {
        Some(Range::Reserved)
    } else {
        None
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<Range> {
    if ip.is_loopback() {
        return None;
    }
    if ip.is_unspecified() {
        return Some(Range::Unspecified);
    }
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    let first = ip.segments()[0];
    if METADATA_V6.contains(&ip) {
        Some(Range::Metadata)
    } else if first & 0xffc0 == 0xfe80 {
        Some(Range::LinkLocal)
    } else if first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfec0 {
        Some(Range::Private)
    } else if first & 0xff00 == 0xff00 {
        Some(Range::Reserved)
    } else {
        None
    }
}

/// The IPv4 address an IPv6 address stands for: mapped (`::ffff:0:0/96`), compatible
/// (`::/96`, deprecated but still routed by some stacks) or NAT64 (`64:ff9b::/96`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    let low = Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7]));
    match s[..6] {
        [0, 0, 0, 0, 0, 0] | [0x64, 0xff9b, 0, 0, 0, 0] => Some(low),
        _ => None,
    }
}

/// The address a URL's host (as `http::Uri` gives it, brackets and all) stands for, when it
/// is one: in any form a resolver would read as one (`2852039166`, `0xa9fea9fe`,
/// `0251.0376.0251.0376`, `169.254.43518`), which the WHATWG URL parser normalizes.
pub fn literal(host: &str) -> Option<IpAddr> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Some(ip);
    }
    match url::Host::parse(host) {
        Ok(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Ok(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        _ => None,
    }
}

/// One entry of `allowed_private_upstreams`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allow {
    /// An address or a network (`10.0.0.0/8`, `fd00::/8`, `10.1.2.3`).
    Net(ipnet::IpNet),
    /// A host name, lowercase: connections to it may reach the private addresses it
    /// resolves to (never a metadata address; list that by address).
    Name(String),
    /// `*.example.internal`: every name under it (lowercase, with the leading dot).
    Suffix(String),
}

/// Which non-public addresses the gateway may connect to besides loopback: the parsed
/// `[server] allowed_private_upstreams`. The default allows none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    allow: Vec<Allow>,
}

impl Policy {
    /// Add one entry: an address, a network in CIDR notation, a host name, or `*.` and a
    /// domain. The error says what was expected.
    pub fn allow(&mut self, entry: &str) -> Result<(), String> {
        let e = entry.trim().to_ascii_lowercase();
        let e = e.trim_end_matches('.');
        let parsed = if let Ok(net) = e.parse::<ipnet::IpNet>() {
            Allow::Net(net.trunc())
        } else if let Some(ip) = literal(e) {
            Allow::Net(ipnet::IpNet::from(ip))
        } else if let Some(domain) = e.strip_prefix("*.").filter(|d| is_host_name(d)) {
            Allow::Suffix(format!(".{domain}"))
        } else if is_host_name(e) {
            Allow::Name(e.to_owned())
        } else {
            return Err(format!(
                "invalid {SETTING} entry `{entry}`: expected an address, a network (10.0.0.0/8), a host name or `*.` and a domain"
            ));
        };
        self.allow.push(parsed);
        Ok(())
    }

    /// A text that differs when the policy does (pools are kept across reloads by it).
    pub fn fingerprint(&self) -> String {
        format!("{:?}", self.allow)
    }

    fn allows_address(&self, ip: IpAddr) -> bool {
        let v4 = match ip {
            IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.allow.iter().any(|a| match a {
            Allow::Net(n) => n.contains(&ip) || v4.is_some_and(|v4| n.contains(&v4)),
            _ => false,
        })
    }

    fn allows_name(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.allow.iter().any(|a| match a {
            Allow::Name(n) => *n == host,
            Allow::Suffix(s) => host.ends_with(s.as_str()),
            Allow::Net(_) => false,
        })
    }

    /// May a connection for `host` go to `ip`?
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), Refused> {
        let Some(range) = classify(ip) else {
            return Ok(());
        };
        if self.allows_address(ip) || (range != Range::Metadata && self.allows_name(host)) {
            return Ok(());
        }
        Err(Refused {
            host: host.to_owned(),
            addr: Some(ip),
            range,
        })
    }

    /// The check at load, of a URL's host as `http::Uri` gives it: an address (in any form)
    /// is judged now; a metadata name is refused unless listed by name; any other name is
    /// judged when it is resolved, at each connect.
    pub fn check_url_host(&self, host: &str) -> Result<(), Refused> {
        if let Some(ip) = literal(host) {
            return self.check(host, ip);
        }
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        let listed = self.allow.iter().any(|a| *a == Allow::Name(name.clone()));
        if METADATA_NAMES.contains(&name.as_str()) && !listed {
            return Err(Refused {
                host: host.to_owned(),
                addr: None,
                range: Range::Metadata,
            });
        }
        Ok(())
    }
}

/// Letters, digits, `-` and `.`, with something in it: what a host name entry may be.
fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
}

/// A connection refused by the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub host: String,
    /// The address checked (`None`: refused by name, at load).
    pub addr: Option<IpAddr>,
    pub range: Range,
}

impl Refused {
    /// What the caller may be told: the kind of address and the setting, neither the host
    /// nor the address (which describe the operator's network).
    pub fn public_message(&self) -> String {
        format!(
            "its address is {}, which the gateway does not connect to unless {SETTING} allows it",
            self.range.describe()
        )
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = self.range.describe();
        match self.addr {
            None => write!(f, "`{}` is {what} name", self.host)?,
            Some(ip) if literal(&self.host) == Some(ip) => write!(f, "{ip} is {what}")?,
            Some(ip) => write!(f, "`{}` resolves to {ip}, {what}", self.host)?,
        }
        write!(
            f,
            "; the gateway connects to private, link-local and metadata addresses only when {SETTING} lists them"
        )
    }
}

impl std::error::Error for Refused {}

/// The `Refused` in an error's chain of sources, if the policy is why it failed.
pub fn refused_in<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<Refused>() {
            return Some(r);
        }
        cur = err.source();
    }
    None
}

/// Answers a name with addresses: the system's resolver in the gateway, a scripted one in
/// tests (rebinding).
pub trait Dns: Send + Sync + 'static {
    fn lookup(&self, host: &str) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;
}

/// The system's resolver (`getaddrinfo`, on tokio's blocking pool).
pub struct SystemDns;

impl Dns for SystemDns {
    fn lookup(&self, host: &str) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>> {
        let host = host.to_owned();
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// The resolver of every outbound connector: resolves a name once, checks every address
/// of the answer against the policy (one refused address refuses the name: an answer
/// that mixes public and private addresses is how rebinding looks), and hands exactly
/// those addresses to the connector.
#[derive(Clone)]
pub struct Resolver {
    policy: Arc<Policy>,
    dns: Arc<dyn Dns>,
}

impl Resolver {
    pub fn new(policy: Arc<Policy>, dns: Arc<dyn Dns>) -> Self {
        Self { policy, dns }
    }

    pub fn system(policy: Arc<Policy>) -> Self {
        Self::new(policy, Arc::new(SystemDns))
    }

    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// Resolve `host` and check the answer: the addresses to connect to (port 0, which the
    /// connector replaces with the URL's).
    pub async fn resolve(&self, host: &str) -> Result<Vec<SocketAddr>, BoxError> {
        let ips = self.dns.lookup(host).await?;
        if ips.is_empty() {
            return Err(Box::new(io::Error::new(
                io::ErrorKind::NotFound,
                "the name has no address",
            )));
        }
        for ip in &ips {
            if let Err(r) = self.policy.check(host, *ip) {
                tracing::warn!(reason = %r, "outbound connection refused");
                return Err(Box::new(r));
            }
        }
        Ok(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect())
    }
}

impl tower::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.resolve(name.as_str()).await?.into_iter()) })
    }
}

/// A connector with the policy in front: a URL whose host is an address (which the inner
/// `HttpConnector` connects to without asking its resolver) is checked here; names go on
/// to the [`Resolver`] inside.
#[derive(Clone)]
pub struct Guarded<C> {
    inner: C,
    policy: Arc<Policy>,
}

impl<C> Guarded<C> {
    pub fn new(inner: C, policy: Arc<Policy>) -> Self {
        Self { inner, policy }
    }
}

impl<C> tower::Service<http::Uri> for Guarded<C>
where
    C: tower::Service<http::Uri>,
    C::Response: Send + 'static,
    C::Error: Into<BoxError>,
    C::Future: Send + 'static,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<C::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        if let Some(host) = uri.host() {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = bare.parse::<IpAddr>()
                && let Err(r) = self.policy.check(host, ip)
            {
                tracing::warn!(reason = %r, "outbound connection refused");
                return Box::pin(std::future::ready(Err(Box::new(r) as BoxError)));
            }
        }
        let fut = self.inner.call(uri);
        Box::pin(async move { fut.await.map_err(Into::into) })
    }
}

#[cfg(test)]
mod tests;
