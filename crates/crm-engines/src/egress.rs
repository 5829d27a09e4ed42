//! Where the platform may send requests on a tenant's behalf (webhook deliveries): `http` and
//! `https` only, and never to an address of the server's own networks: loopback, private,
//! shared (carrier-grade NAT), link-local (cloud metadata services live there), multicast,
//! broadcast, unspecified and other reserved ranges, IPv4-mapped IPv6 forms of those included.
//!
//! The check runs twice: when a webhook is saved (a literal address is refused at once), and at
//! every delivery **against the addresses the host name resolves to at that moment**. The
//! resolver handed to the HTTP client ([`Egress::client`]) drops refused addresses and fails when
//! none is left, so the connection is made only to an address that passed (no DNS rebinding
//! between check and connect). Redirects are never followed.
//!
//! An operator may allow internal receivers with an allow-list of networks (`127.0.0.1/32`,
//! `10.20.0.0/16`, `::1/128`): addresses inside it pass whatever their class.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// A network of the allow-list: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `10.0.0.0/8`, `::1/128`, or a bare address (the whole address).
    ///
    /// # Errors
    /// Not an address, or a prefix longer than the address.
    pub fn parse(s: &str) -> Result<Network, String> {
        let (a, p) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = a.parse().map_err(|_| format!("`{s}` is not an IP address or network (`10.0.0.0/8`)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("`{s}`: the prefix must be 0 to {max}"))?,
        };
        Ok(Network { addr, prefix })
    }

    /// Whether `ip` is inside the network.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |a: IpAddr| -> (u128, u8) {
            match a {
                IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
                IpAddr::V6(v) => (u128::from(v), 128),
            }
        };
        let ((net, width), (addr, other)) = (bits(self.addr), bits(canonical(ip)));
        if width != other {
            return false;
        }
        let shift = u32::from(width - self.prefix);
        shift >= 128 || (net >> shift) == (addr >> shift)
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it stands for; anything else as is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v) => v.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// The class of address `ip` belongs to when deliveries to it are refused, `None` for a public
/// address.
#[must_use]
pub fn refused_class(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v) => v4_class(v),
        IpAddr::V6(v) => v6_class(v),
    }
}

fn v4_class(v: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = v.octets();
    if v.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if v.is_loopback() {
        Some("loopback")
    } else if v.is_private() {
        Some("private")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (carrier-grade NAT)")
    } else if v.is_link_local() {
        Some("link-local")
    } else if v.is_multicast() {
        Some("multicast")
    } else if v.is_broadcast() || a >= 240 || (a == 192 && b == 0 && c == 0) {
        Some("reserved")
    } else if a == 198 && (b == 18 || b == 19) {
        Some("benchmarking")
    } else {
        None
    }
}

fn v6_class(v: Ipv6Addr) -> Option<&'static str> {
    let first = v.segments()[0];
    if v.is_unspecified() {
        Some("unspecified")
    } else if v.is_loopback() {
        Some("loopback")
    } else if v.is_multicast() {
        Some("multicast")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfec0 {
        Some("private")
    } else if v.to_ipv4().is_some() && first == 0 {
        // Deprecated IPv4-compatible forms (`::a.b.c.d`).
        Some("reserved")
    } else if first == 0x0064 && v.segments()[1] == 0xff9b {
        // NAT64 (`64:ff9b::/96`) reaches the IPv4 address it embeds.
        let [.., c, d] = v.segments();
        let embedded = Ipv4Addr::from((u32::from(c) << 16) | u32::from(d));
        v4_class(embedded)
    } else if first == 0x2002 {
        // 6to4 (`2002:a.b.c.d::/48`) embeds an IPv4 address too.
        let s = v.segments();
        v4_class(Ipv4Addr::from((u32::from(s[1]) << 16) | u32::from(s[2])))
    } else {
        None
    }
}

/// Why a delivery target was refused: safe to show to the tenant (it names the class of the
/// address, never the address or what answered there).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not an absolute `http`/`https` URL with a host.
    #[error("the URL must be an absolute http:// or https:// URL with a host")]
    Url,
    /// The address is of a refused class.
    #[error("the URL's host is a {0} address, which webhooks may not be sent to")]
    Address(&'static str),
    /// The host name resolved to refused addresses only.
    #[error("the URL's host resolves to a {0} address, which webhooks may not be sent to")]
    Resolved(&'static str),
}

/// The delivery policy: refused address classes plus the operator's allow-list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Egress {
    allow: Vec<Network>,
}

impl Egress {
    /// The policy with `allow` (networks whose addresses pass whatever their class).
    ///
    /// # Errors
    /// An entry that is not an address or network.
    pub fn with_allowed(allow: &[String]) -> Result<Egress, String> {
        Ok(Egress { allow: allow.iter().map(|s| Network::parse(s)).collect::<Result<_, _>>()? })
    }

    /// Whether deliveries may go to `ip`.
    ///
    /// # Errors
    /// The class of a refused address.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), &'static str> {
        if self.allow.iter().any(|n| n.contains(ip)) {
            return Ok(());
        }
        refused_class(ip).map_or(Ok(()), Err)
    }

    /// Checks a webhook URL before anything is resolved: an absolute `http`/`https` URL with a
    /// host, and a literal address host must pass [`Egress::check_ip`]. Returns the URL parsed.
    ///
    /// # Errors
    /// [`Refused::Url`] or [`Refused::Address`].
    pub fn check_url(&self, url: &str) -> Result<reqwest::Url, Refused> {
        let u = reqwest::Url::parse(url).map_err(|_| Refused::Url)?;
        if !matches!(u.scheme(), "http" | "https") || !u.username().is_empty() || u.password().is_some() {
            return Err(Refused::Url);
        }
        let host = u.host_str().filter(|h| !h.is_empty()).ok_or(Refused::Url)?;
        let literal = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if let Ok(ip) = literal.parse::<IpAddr>() {
            self.check_ip(ip).map_err(Refused::Address)?;
        }
        Ok(u)
    }

    /// An HTTP client for deliveries under this policy: host names resolve only to addresses
    /// that pass, redirects are not followed, no proxy from the environment.
    ///
    /// # Errors
    /// The client could not be built (TLS set-up).
    pub fn client(self: &Arc<Self>) -> reqwest::Result<reqwest::Client> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(Resolver(Arc::clone(self))))
            .build()
    }
}

/// Resolves with the system resolver and keeps only the addresses [`Egress`] lets through.
struct Resolver(Arc<Egress>);

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let egress = Arc::clone(&self.0);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match egress.check_ip(a.ip()) {
                    Ok(()) => true,
                    Err(class) => {
                        refused.get_or_insert(class);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let err: Box<dyn std::error::Error + Send + Sync> = match refused {
                    Some(class) => Box::new(Refused::Resolved(class)),
                    None => "the host name did not resolve".into(),
                };
                return Err(err);
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// The tenant-safe text of a failed delivery attempt: what class of failure, never the
/// transport's own message (which names addresses, ports and system errors of the server's
/// network).
#[must_use]
pub fn failure_text(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<Refused>() {
            return r.to_string();
        }
        source = s.source();
    }
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "the request failed".to_owned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;

    fn class(s: &str) -> Option<&'static str> {
        refused_class(s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)))
    }

    #[test]
    fn address_classes() {
        for (ip, want) in [
            ("127.0.0.1", Some("loopback")),
            ("127.8.9.10", Some("loopback")),
            ("::1", Some("loopback")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("10.1.2.3", Some("private")),
            ("172.16.0.1", Some("private")),
            ("192.168.1.1", Some("private")),
            ("fd00::1", Some("private")),
            ("100.64.0.1", Some("shared (carrier-grade NAT)")),
            ("169.254.169.254", Some("link-local")),
            ("fe80::1", Some("link-local")),
            ("224.0.0.1", Some("multicast")),
            ("ff02::1", Some("multicast")),
            ("0.0.0.0", Some("unspecified")),
            ("::", Some("unspecified")),
            ("255.255.255.255", Some("reserved")),
            ("64:ff9b::7f00:1", Some("loopback")),
            ("2002:7f00:1::", Some("loopback")),
            ("93.184.216.34", None),
            ("2606:2800:220:1:248:1893:25c8:1946", None),
        ] {
            assert_eq!(class(ip), want, "{ip}");
        }
    }

    #[test]
    fn urls() {
        let e = Egress::default();
        assert_eq!(e.check_url("ftp://example.com/x").unwrap_err(), Refused::Url);
        assert_eq!(e.check_url("/relative").unwrap_err(), Refused::Url);
        assert_eq!(e.check_url("http://user:pw@example.com/").unwrap_err(), Refused::Url);
        assert_eq!(e.check_url("http://169.254.169.254/latest/meta-data/").unwrap_err(), Refused::Address("link-local"));
        assert_eq!(e.check_url("http://[::1]:22/").unwrap_err(), Refused::Address("loopback"));
        assert_eq!(e.check_url("http://127.0.0.1:1/").unwrap_err(), Refused::Address("loopback"));
        // Other spellings of loopback that URL parsers normalise.
        assert_eq!(e.check_url("http://2130706433/").unwrap_err(), Refused::Address("loopback"));
        assert_eq!(e.check_url("http://0x7f.1/").unwrap_err(), Refused::Address("loopback"));
        assert!(e.check_url("https://hooks.example.com/crm").is_ok());
        let allowed = Egress::with_allowed(&["127.0.0.1/32".to_owned()]).unwrap();
        assert!(allowed.check_url("http://127.0.0.1:9000/hook").is_ok());
        assert_eq!(allowed.check_url("http://127.0.0.2/").unwrap_err(), Refused::Address("loopback"));
    }

    #[test]
    fn networks() {
        let n = Network::parse("10.20.0.0/16").unwrap();
        assert!(n.contains("10.20.3.4".parse().unwrap()) && !n.contains("10.21.0.1".parse().unwrap()));
        assert!(Network::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!(Network::parse("::1").unwrap().contains("::1".parse().unwrap()));
        assert!(Network::parse("127.0.0.1").unwrap().contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(Network::parse("10.0.0.0/33").is_err() && Network::parse("nope").is_err());
    }
}
