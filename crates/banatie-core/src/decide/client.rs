//! Who the client of a request is, for per-client limits.
//!
//! The runtime passes the connection's peer address as the request header
//! `spin-client-addr`. A client may send a header of that name too: Spin
//! (v3.6 `crates/trigger-http/src/headers.rs` and `wasi.rs`) appends its own
//! value after the client's, and banatie-host does the same, so only the
//! **last** value is the runtime's. When the peer is one of the operator's
//! trusted proxies, the client is the rightmost `X-Forwarded-For` hop that is
//! not itself trusted; a client-sent `X-Forwarded-For` is never believed
//! beyond the proxies the operator named.

use std::net::{IpAddr, SocketAddr};

/// The request header in which the runtime passes the peer's address.
pub const CLIENT_ADDR_HEADER: &str = "spin-client-addr";

/// An address or a CIDR block (`10.0.0.0/8`, `::1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    pub fn parse(s: &str) -> Option<Net> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Net { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, unmap(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix) };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - self.prefix) };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// `::ffff:1.2.3.4` is `1.2.3.4`.
fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The `trusted_proxies` variable: addresses and CIDR blocks, comma-separated.
pub fn parse_trusted(list: &str) -> Result<Vec<Net>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Net::parse(s).ok_or_else(|| format!("{s:?} is not an IP address or CIDR block")))
        .collect()
}

/// An address as a header carries it: `ip`, `ip:port` or `[v6]:port`.
fn address(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    s.parse::<SocketAddr>().map(|a| a.ip()).or_else(|_| s.parse::<IpAddr>()).ok().map(unmap)
}

/// How many leading bits of an IPv6 address name one client, unless
/// `client_ipv6_prefix` says otherwise: ISPs give each customer a /64 (or a
/// shorter prefix), so one customer has 2^64 addresses to rotate through.
pub const DEFAULT_IPV6_PREFIX: u8 = 64;

/// The client's name in its per-client counters: an IPv4 address as it is;
/// an IPv6 address as its first `ipv6_prefix` bits, spelled `net/bits`
/// (`2001:db8::/64`), or as itself when `ipv6_prefix` is 128.
pub fn client_id(ip: IpAddr, ipv6_prefix: u8) -> String {
    match unmap(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) if ipv6_prefix >= 128 => v6.to_string(),
        IpAddr::V6(v6) => {
            let mask = if ipv6_prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(ipv6_prefix)) };
            format!("{}/{ipv6_prefix}", std::net::Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

/// The client: from the runtime's `spin-client-addr` values (only the last
/// is the runtime's) and the `X-Forwarded-For` values, in order. `None`
/// when the runtime said nothing usable.
pub fn client(client_addr: &[&str], forwarded_for: &[&str], trusted: &[Net]) -> Option<IpAddr> {
    let peer = address(client_addr.last()?)?;
    if !trusted.iter().any(|n| n.contains(peer)) {
        return Some(peer);
    }
    let mut current = peer;
    let hops: Vec<&str> = forwarded_for.iter().flat_map(|v| v.split(',')).collect();
    for hop in hops.iter().rev() {
        let Some(ip) = address(hop) else { break };
        current = ip;
        if !trusted.iter().any(|n| n.contains(ip)) {
            break;
        }
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_runtimes_value_is_the_last_one() {
        assert_eq!(client(&["203.0.113.9:5555"], &[], &[]), Some(ip("203.0.113.9")));
        // A client that sends spin-client-addr itself only adds a value before the runtime's.
        assert_eq!(client(&["1.2.3.4:1", "198.51.100.7:40000"], &[], &[]), Some(ip("198.51.100.7")));
        assert_eq!(client(&["[2001:db8::1]:443"], &[], &[]), Some(ip("2001:db8::1")));
        assert_eq!(client(&["[::ffff:10.1.2.3]:80"], &[], &[]), Some(ip("10.1.2.3")));
        assert_eq!(client(&[], &[], &[]), None);
        assert_eq!(client(&["garbage"], &[], &[]), None);
    }

    #[test]
    fn forwarded_for_counts_only_behind_trusted_proxies() {
        let trusted = parse_trusted("10.0.0.0/8, 127.0.0.1").unwrap();
        // An untrusted peer's X-Forwarded-For is ignored.
        assert_eq!(client(&["203.0.113.9:1"], &["6.6.6.6"], &trusted), Some(ip("203.0.113.9")));
        // Behind a trusted proxy: the rightmost untrusted hop.
        assert_eq!(
            client(&["127.0.0.1:1"], &["6.6.6.6, 198.51.100.7, 10.0.0.5"], &trusted),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            client(&["127.0.0.1:1"], &["6.6.6.6", "198.51.100.7"], &trusted),
            Some(ip("198.51.100.7"))
        );
        // All hops trusted: the leftmost one; none at all: the proxy itself.
        assert_eq!(client(&["127.0.0.1:1"], &["10.1.1.1, 10.2.2.2"], &trusted), Some(ip("10.1.1.1")));
        assert_eq!(client(&["127.0.0.1:1"], &[], &trusted), Some(ip("127.0.0.1")));
        // A hop that is not an address stops the walk at the last trusted one.
        assert_eq!(
            client(&["127.0.0.1:1"], &["6.6.6.6, nonsense, 10.0.0.5"], &trusted),
            Some(ip("10.0.0.5"))
        );
    }

    #[test]
    fn an_ipv6_client_is_its_prefix() {
        let six: Vec<String> = (1..=6).map(|n| client_id(ip(&format!("2001:db8:0:7::{n:x}")), 64)).collect();
        assert!(six.iter().all(|c| c == "2001:db8:0:7::/64"), "{six:?}");
        assert_eq!(client_id(ip("2001:db8:0:8::1"), 64), "2001:db8:0:8::/64");
        assert_eq!(client_id(ip("2001:db8:0:7:ffff::1"), 56), "2001:db8::/56");
        assert_eq!(client_id(ip("2001:db8::1"), 128), "2001:db8::1");
        assert_eq!(client_id(ip("203.0.113.9"), 64), "203.0.113.9");
        assert_eq!(client_id(ip("::ffff:10.1.2.3"), 64), "10.1.2.3");
    }

    #[test]
    fn cidr_blocks_and_bad_entries() {
        assert!(Net::parse("192.168.0.0/16").unwrap().contains(ip("192.168.44.1")));
        assert!(!Net::parse("192.168.0.0/16").unwrap().contains(ip("192.169.0.1")));
        assert!(Net::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Net::parse("fd00::/8").unwrap().contains(ip("fd12::1")));
        assert!(!Net::parse("fd00::/8").unwrap().contains(ip("10.0.0.1")));
        assert!(parse_trusted("10.0.0.0/33").is_err());
        assert!(parse_trusted("example.com").is_err());
        assert_eq!(parse_trusted(" ").unwrap(), vec![]);
    }
}

/// New generations a client may cause per hour, unless `client_misses_per_hour` says otherwise.
pub const DEFAULT_MISSES_PER_HOUR: u32 = 10;
/// New variants a client may cause per hour, unless `client_derivations_per_hour`
/// says otherwise: enough for every `<picture>` source of a few new pages.
pub const DEFAULT_DERIVATIONS_PER_HOUR: u32 = 100;

/// The client's allowance as the `X-RateLimit-*` headers say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    pub limit: u32,
    /// New generations this hour, this request's included.
    pub used: i64,
    /// Unix time at which the hour's count starts again.
    pub reset_at: u64,
}

impl Allowance {
    pub fn new(limit: u32, used: i64, now: u64) -> Allowance {
        Allowance {
            limit,
            used,
            reset_at: (crate::stored::keys::hour(now) + 1) * crate::stored::keys::HOUR_SECONDS,
        }
    }

    pub fn remaining(&self) -> i64 {
        (self.limit as i64 - self.used).max(0)
    }
}

#[cfg(test)]
mod allowance_tests {
    use super::*;

    #[test]
    fn the_hour_resets_and_remaining_never_goes_negative() {
        let a = Allowance::new(5, 7, 7_200 + 10);
        assert_eq!((a.remaining(), a.reset_at), (0, 10_800));
        assert_eq!(Allowance::new(5, 2, 0).remaining(), 3);
    }
}
