//! Who the client is, for rate limits and logs: the peer address, or, when the peer is a
//! trusted reverse proxy (`server.trusted_proxies`), the right-most address in
//! `X-Forwarded-For` that is not a trusted proxy itself. Rate limits key IPv6 clients on
//! their /64, the block a single host or site is usually given.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use shutter_core::config::{canonical_ip, ip_prefix, IpRange};

use crate::AppState;

/// The client's address as [`client_ip`] decides it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// The rate-limit key of the client: the IPv4 address, or the /64 of an IPv6 one.
    pub fn rate_key(self) -> String {
        match self.0 {
            IpAddr::V4(v4) => v4.to_string(),
            v6 @ IpAddr::V6(_) => format!("{}/64", ip_prefix(v6, 64)),
        }
    }
}

/// The client behind `peer`. Only a trusted peer's `X-Forwarded-For` counts; it is read from
/// the right (the hop nearest to us) past every trusted proxy. An entry that is not an
/// address stops the walk at the proxy that sent it.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpRange]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|range| range.contains(ip));
    let mut client = canonical_ip(peer);
    if !is_trusted(client) {
        return client;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.into_iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            return client;
        };
        client = ip;
        if !is_trusted(ip) {
            return client;
        }
    }
    client
}

/// `192.0.2.1`, `2001:db8::1`, or either with a port (`192.0.2.1:4711`, `[2001:db8::1]:4711`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(canonical_ip)
}

impl<S> FromRequestParts<S> for ClientIp
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ip) = parts.extensions.get::<ClientIp>() {
            return Ok(*ip);
        }
        let state = AppState::from_ref(state);
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let ip = ClientIp(client_ip(peer, &parts.headers, &state.trusted_proxies));
        parts.extensions.insert(ip);
        Ok(ip)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", v.parse().unwrap());
        }
        headers
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let trusted = [
            IpRange::parse("10.0.0.0/8").unwrap(),
            IpRange::parse("2001:db8:ffff::/48").unwrap(),
        ];
        let headers = xff(&["203.0.113.9, 198.51.100.7", "10.0.0.2"]);
        // An untrusted peer's header is ignored.
        assert_eq!(
            client_ip(ip("192.0.2.1"), &headers, &trusted),
            ip("192.0.2.1")
        );
        // A trusted peer: the right-most address that is not a trusted proxy.
        assert_eq!(
            client_ip(ip("10.0.0.1"), &headers, &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(
                ip("::ffff:10.0.0.1"),
                &xff(&["[2001:db8::5]:443"]),
                &trusted
            ),
            ip("2001:db8::5")
        );
        // Nothing forwarded, or only trusted hops: the left-most trusted address.
        assert_eq!(
            client_ip(ip("10.0.0.1"), &HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &xff(&["10.9.9.9"]), &trusted),
            ip("10.9.9.9")
        );
        // Junk stops the walk at the proxy that sent it.
        assert_eq!(
            client_ip(ip("10.0.0.1"), &xff(&["1.2.3.4, junk, 10.0.0.3"]), &trusted),
            ip("10.0.0.3")
        );
        // No trusted proxies: the header never counts.
        assert_eq!(client_ip(ip("10.0.0.1"), &headers, &[]), ip("10.0.0.1"));
    }

    #[test]
    fn ipv6_clients_share_a_key_per_64() {
        assert_eq!(
            ClientIp(ip("2001:db8:1:2:aaaa::1")).rate_key(),
            ClientIp(ip("2001:db8:1:2:bbbb::2")).rate_key()
        );
        assert_eq!(
            ClientIp(ip("2001:db8:1:2::9")).rate_key(),
            "2001:db8:1:2::/64"
        );
        assert_ne!(
            ClientIp(ip("2001:db8:1:2::1")).rate_key(),
            ClientIp(ip("2001:db8:1:3::1")).rate_key()
        );
        assert_eq!(ClientIp(ip("192.0.2.1")).rate_key(), "192.0.2.1");
    }
}
