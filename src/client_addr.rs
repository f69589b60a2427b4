//! The client address of a request: the TCP peer, or, when the peer is a trusted proxy, the
//! rightmost forwarded hop that is not itself a trusted proxy.
//!
//! The leftmost `X-Forwarded-For` entry is whatever the client wrote; only the hops appended by
//! proxies we trust can be believed, so the walk goes from the right and stops at the first
//! address that is not one of them. A request that came through a proxy we do not trust (any
//! forwarding header present) has an unknown client: it keys on its peer and is never loopback.

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

/// The request headers that say a proxy forwarded the request.
pub const FORWARDING_HEADERS: [&str; 4] = ["forwarded", "x-forwarded-for", "x-real-ip", "via"];

/// The proxies whose forwarding headers are believed (`TRUSTED_PROXIES`).
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// A comma-separated list of CIDR blocks or single addresses; empty trusts no one.
    pub fn parse(list: &str) -> Result<Self, String> {
        let entries = list.split(',').map(str::trim).filter(|e| !e.is_empty());
        let nets = entries
            .map(|entry| {
                IpNet::from_str(entry)
                    .or_else(|_| IpAddr::from_str(entry).map(IpNet::from))
                    .map_err(|_| format!("{entry:?} is not a CIDR block such as 10.0.0.0/8"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self(nets))
    }

    /// Whether `ip` (`::ffff:a.b.c.d` counts as `a.b.c.d`) is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// The forwarding headers of one request, as read by [`client_addr`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Forwarding {
    /// Every `X-Forwarded-For` line, in order.
    x_forwarded_for: Vec<String>,
    /// Every `Forwarded` line, in order.
    forwarded: Vec<String>,
    /// Whether any of [`FORWARDING_HEADERS`] came (`X-Real-IP` and `Via` name no hop chain we
    /// can check, so they only mark the request as proxied).
    proxied: bool,
}

impl Forwarding {
    /// From header names and raw values, as a request head parser gives them.
    pub fn from_pairs<'a>(headers: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let mut forwarding = Self::default();
        for (name, value) in headers {
            let value = || String::from_utf8_lossy(value).into_owned();
            if name.eq_ignore_ascii_case("x-forwarded-for") {
                forwarding.x_forwarded_for.push(value());
            } else if name.eq_ignore_ascii_case("forwarded") {
                forwarding.forwarded.push(value());
            }
            forwarding.proxied |= FORWARDING_HEADERS
                .iter()
                .any(|h| name.eq_ignore_ascii_case(h));
        }
        forwarding
    }

    /// From axum's headers.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        Self::from_pairs(
            headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_bytes())),
        )
    }

    /// `X-Forwarded-For`'s hops, leftmost first (`None` for one that is not an address).
    fn x_forwarded_for_hops(&self) -> Option<Vec<Option<IpAddr>>> {
        let lines = (!self.x_forwarded_for.is_empty()).then_some(&self.x_forwarded_for)?;
        Some(lines.iter().flat_map(|l| l.split(',')).map(node).collect())
    }

    /// `Forwarded`'s `for=` hops, leftmost first (`None` for an element without one).
    fn forwarded_hops(&self) -> Option<Vec<Option<IpAddr>>> {
        let lines = (!self.forwarded.is_empty()).then_some(&self.forwarded)?;
        let elements = lines.iter().flat_map(|line| line.split(','));
        let hop = |element: &str| {
            let pairs = element.split(';').filter_map(|pair| pair.split_once('='));
            let mut named = pairs.filter(|(name, _)| name.trim().eq_ignore_ascii_case("for"));
            named.next().and_then(|(_, value)| node(value))
        };
        Some(elements.map(hop).collect())
    }
}

/// Who sent a request, as far as this server can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr {
    /// The address rate limits key on (`::ffff:a.b.c.d` is given as `a.b.c.d`).
    pub ip: IpAddr,
    /// Whether `ip` is the client itself: the peer of a request no proxy forwarded, or a hop that
    /// trusted proxies named. `false` means `ip` is a proxy standing for someone unknown.
    pub known: bool,
}

impl ClientAddr {
    /// The client address of an axum request (`ConnectInfo` is its TCP peer); without one
    /// (a request built in-process), an unknown client at `0.0.0.0`.
    pub fn of_request(parts: &Parts, trusted: &TrustedProxies) -> Self {
        match parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            Some(ConnectInfo(peer)) => client_addr(
                peer.ip(),
                &Forwarding::from_headers(&parts.headers),
                trusted,
            ),
            None => Self::unknown(Ipv4Addr::UNSPECIFIED.into()),
        }
    }

    /// Whether the client is on this host (admitted as admin while `ADMIN_TOKEN` is unset).
    pub fn is_loopback(&self) -> bool {
        self.known && self.ip.is_loopback()
    }

    fn known(ip: IpAddr) -> Self {
        Self { ip, known: true }
    }

    fn unknown(ip: IpAddr) -> Self {
        Self { ip, known: false }
    }
}

/// The client address of a request from `peer` with `forwarding` headers: the one rule both
/// the axum routes and the direct stream path use.
///
/// Only a trusted peer's headers are read. Both `X-Forwarded-For` and `Forwarded` are walked
/// right to left; when both came they must name the same client (a proxy appends to one and
/// passes the other through untouched, so a disagreement means the client wrote one of them).
/// Any doubt — an untrusted proxy, a hop that is not an address, no hop chain at all — gives
/// an unknown client keyed on the peer.
pub fn client_addr(peer: IpAddr, forwarding: &Forwarding, trusted: &TrustedProxies) -> ClientAddr {
    let peer = peer.to_canonical();
    if !forwarding.proxied {
        return ClientAddr::known(peer);
    }
    if !trusted.contains(peer) {
        return ClientAddr::unknown(peer);
    }
    let by_x_forwarded_for = forwarding
        .x_forwarded_for_hops()
        .map(|hops| rightmost_untrusted(&hops, trusted));
    let by_forwarded = forwarding
        .forwarded_hops()
        .map(|hops| rightmost_untrusted(&hops, trusted));
    match (by_x_forwarded_for, by_forwarded) {
        (Some(Some(ip)), None) | (None, Some(Some(ip))) => ClientAddr::known(ip),
        (Some(Some(a)), Some(Some(b))) if a == b => ClientAddr::known(a),
        _ => ClientAddr::unknown(peer),
    }
}

/// Walking from the right, the first hop that is not a trusted proxy (or the leftmost when all
/// are); `None` when a hop on the way is not an address, or there is none.
fn rightmost_untrusted(hops: &[Option<IpAddr>], trusted: &TrustedProxies) -> Option<IpAddr> {
    let mut client = None;
    for hop in hops.iter().rev() {
        let ip = hop.as_ref()?.to_canonical();
        client = Some(ip);
        if !trusted.contains(ip) {
            break;
        }
    }
    client
}

/// One hop: `a.b.c.d`, `a.b.c.d:port`, `v6`, `[v6]` or `[v6]:port`, optionally quoted.
fn node(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Ok(ip) = IpAddr::from_str(text) {
        return Some(ip);
    }
    if let Ok(socket) = SocketAddr::from_str(text) {
        return Some(socket.ip());
    }
    let bracketed = text.strip_prefix('[')?.strip_suffix(']')?;
    IpAddr::from_str(bracketed).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn with(headers: &[(&str, &str)]) -> Forwarding {
        Forwarding::from_pairs(headers.iter().map(|(n, v)| (*n, v.as_bytes())))
    }

    #[test]
    fn without_forwarding_headers_the_peer_is_the_client_and_mapped_loopback_is_loopback() {
        let none = TrustedProxies::default();
        let client = client_addr(ip("::ffff:127.0.0.1"), &with(&[]), &none);
        assert_eq!(client.ip, ip("127.0.0.1"));
        assert!(client.is_loopback());
    }

    #[test]
    fn any_forwarding_header_from_an_untrusted_peer_makes_the_client_unknown() {
        let none = TrustedProxies::default();
        for header in FORWARDING_HEADERS {
            let client = client_addr(ip("127.0.0.1"), &with(&[(header, "1.2.3.4")]), &none);
            assert_eq!(client, ClientAddr::unknown(ip("127.0.0.1")), "{header}");
            assert!(!client.is_loopback());
        }
    }

    #[test]
    fn a_trusted_proxy_gives_the_rightmost_hop_that_is_not_a_trusted_proxy() {
        let trusted = TrustedProxies::parse("127.0.0.1/32, 10.0.0.0/8").unwrap();
        let chain = with(&[
            ("X-Forwarded-For", "127.0.0.1, 198.51.100.9"),
            ("x-forwarded-for", "10.1.2.3"),
        ]);
        let client = client_addr(ip("127.0.0.1"), &chain, &trusted);
        assert_eq!(client, ClientAddr::known(ip("198.51.100.9")));
        let forwarded = with(&[(
            "Forwarded",
            r#"for=1.1.1.1, for="[2001:db8::7]:4711";proto=https, for=10.0.0.2"#,
        )]);
        let client = client_addr(ip("10.9.9.9"), &forwarded, &trusted);
        assert_eq!(client, ClientAddr::known(ip("2001:db8::7")));
        let local = client_addr(
            ip("127.0.0.1"),
            &with(&[("x-forwarded-for", "127.0.0.1")]),
            &trusted,
        );
        assert!(
            local.is_loopback(),
            "a client on the proxy's host is loopback"
        );
    }

    #[test]
    fn doubt_about_the_chain_keys_on_the_trusted_peer_and_is_never_loopback() {
        let trusted = TrustedProxies::parse("127.0.0.1").unwrap();
        for headers in [
            vec![("x-forwarded-for", "127.0.0.1, unknown")],
            vec![("x-forwarded-for", "")],
            vec![("via", "1.1 nginx")],
            vec![("x-real-ip", "127.0.0.1")],
            vec![
                ("forwarded", "for=127.0.0.1"),
                ("x-forwarded-for", "127.0.0.1, 203.0.113.5"),
            ],
        ] {
            let client = client_addr(ip("127.0.0.1"), &with(&headers), &trusted);
            assert_eq!(client, ClientAddr::unknown(ip("127.0.0.1")), "{headers:?}");
        }
    }

    #[test]
    fn trusted_proxies_parse_cidr_blocks_and_addresses_and_refuse_garbage() {
        let trusted = TrustedProxies::parse("10.0.0.0/8,::1,192.168.1.1").unwrap();
        assert!(trusted.contains(ip("10.200.0.1")));
        assert!(trusted.contains(ip("::ffff:192.168.1.1")));
        assert!(trusted.contains(ip("::1")));
        assert!(!trusted.contains(ip("11.0.0.1")));
        assert!(TrustedProxies::parse("").unwrap().0.is_empty());
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("nginx").is_err());
    }
}
