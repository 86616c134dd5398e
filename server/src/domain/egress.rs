//! Where aispend may connect on someone else's behalf (a provider plugin's HTTP request,
//! a budget's webhook): one policy for every outbound connection.
//!
//! - Hosts are exact `host:port` pairs ([`HostPort`]).
//! - The operator's `AISPEND_PLUGIN_ALLOW_HOSTS` ([`OperatorAllowList`]) lists the
//!   `host:port`s that may be reached beyond what a caller's own rules allow; only such
//!   entries may resolve to loopback, private, link-local or other non-public addresses.
//! - Everything else must resolve only to public addresses ([`is_public`]), checked on the
//!   addresses actually resolved, before connecting.
//!
//! Which schemes a caller accepts stays with the caller (plugins: https, or http to an
//! operator-allowed loopback host; webhooks: https, or http to an operator-allowed host).

use reqwest::Url;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An exact `host:port`, host lower-cased (IPv6 without brackets).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// Host name or IP literal.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl HostPort {
    /// Parses `host:port`, `[v6]:port` or a bare host (port 443).
    pub fn parse(raw: &str) -> Result<HostPort, String> {
        let s = raw.trim().to_ascii_lowercase();
        if s.is_empty() || s.contains('/') || s.contains('@') || s.contains(char::is_whitespace) {
            return Err(format!("`{raw}` is not a host:port"));
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("`{raw}` has an unclosed `[`"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| format!("`{raw}` has a bad port"))?,
                None if after.is_empty() => 443,
                None => return Err(format!("`{raw}` is not a host:port")),
            };
            host.parse::<Ipv6Addr>()
                .map_err(|_| format!("`{raw}` is not an IPv6 address"))?;
            (host.to_owned(), port)
        } else {
            match s.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (
                    h.to_owned(),
                    p.parse().map_err(|_| format!("`{raw}` has a bad port"))?,
                ),
                Some(_) => return Err(format!("`{raw}`: write IPv6 hosts as [addr]:port")),
                None => (s.clone(), 443),
            }
        };
        if host.is_empty() || port == 0 {
            return Err(format!("`{raw}` is not a host:port"));
        }
        Ok(HostPort { host, port })
    }

    /// The host and port of a URL (the scheme's default port when none is given).
    pub fn of_url(url: &Url) -> Option<HostPort> {
        let raw = url.host_str()?;
        let host = raw
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(raw)
            .to_ascii_lowercase();
        Some(HostPort {
            host,
            port: url.port_or_known_default()?,
        })
    }

    /// Whether the host is `localhost` or a loopback address.
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost" || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The operator's `AISPEND_PLUGIN_ALLOW_HOSTS`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperatorAllowList(Vec<HostPort>);

impl OperatorAllowList {
    /// Parses every entry; a bad entry is a configuration error, not silently dropped.
    pub fn parse(entries: &[String]) -> Result<OperatorAllowList, String> {
        let mut out = Vec::new();
        for e in entries.iter().filter(|e| !e.trim().is_empty()) {
            out.push(HostPort::parse(e).map_err(|m| format!("AISPEND_PLUGIN_ALLOW_HOSTS: {m}"))?);
        }
        Ok(OperatorAllowList(out))
    }

    /// Whether this exact host:port is allowed.
    pub fn contains(&self, hp: &HostPort) -> bool {
        self.0.contains(hp)
    }

    /// A list of exactly one entry.
    pub fn only(entry: HostPort) -> OperatorAllowList {
        OperatorAllowList(vec![entry])
    }

    /// The entries.
    pub fn entries(&self) -> &[HostPort] {
        &self.0
    }
}

/// The first address in `addresses` that is not public, unless the operator allowed
/// `host_port` (then any address is fine). `Err` when nothing resolved.
pub fn first_forbidden_address(
    host_port: &HostPort,
    addresses: &[IpAddr],
    operator: &OperatorAllowList,
) -> Result<Option<IpAddr>, String> {
    if addresses.is_empty() {
        return Err(format!("{} resolved to no address", host_port.host));
    }
    if operator.contains(host_port) {
        return Ok(None);
    }
    Ok(addresses.iter().copied().find(|ip| !is_public(*ip)))
}

/// Whether an address is on the public internet: not loopback, private, link-local,
/// shared (CGNAT), unique-local, multicast, documentation, benchmarking, reserved or
/// unspecified. IPv4-mapped and -compatible IPv6 addresses are judged as IPv4.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            let reserved = v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64: could reach anything
                || (s[0] == 0x2002) // 6to4: embeds an IPv4 address
                || (s[0] == 0x2001 && s[1] == 0) // Teredo
                || (s[0..6] == [0; 6]); // IPv4-compatible ::a.b.c.d and other ::/96
            !reserved
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let reserved = a == 0 // "this network"
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254) // link-local
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // documentation
        || (a == 203 && b == 0 && c == 113) // documentation
        || a >= 224; // multicast, reserved, broadcast
    !reserved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_means_routable_on_the_internet() {
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::",
            "::",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn only_operator_allowed_host_ports_may_resolve_anywhere() {
        let operator = OperatorAllowList::parse(&["127.0.0.1:9000".to_owned()]).unwrap();
        let allowed = HostPort::parse("127.0.0.1:9000").unwrap();
        let other = HostPort::parse("hooks.example.com:443").unwrap();
        let private: IpAddr = "10.0.0.7".parse().unwrap();
        assert_eq!(
            first_forbidden_address(&allowed, &["127.0.0.1".parse().unwrap()], &operator),
            Ok(None)
        );
        assert_eq!(
            first_forbidden_address(&other, &[private], &operator),
            Ok(Some(private))
        );
        assert!(first_forbidden_address(&other, &[], &operator).is_err());
    }
}
