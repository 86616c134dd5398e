//! The capability granter: which URLs a plugin's HTTP request may reach. It denies by
//! default; a request is allowed only when
//!
//! - its host is one the plugin declared in its metadata, over https, on the default
//!   port (or the exact `host:port` declared), and every address the name resolves to
//!   is public; or
//! - its exact `host:port` is in `AISPEND_PLUGIN_ALLOW_HOSTS` ("hosts the operator
//!   allows plugins to reach beyond their own"). Only such entries may resolve to
//!   loopback, private or link-local addresses, and only loopback entries may use plain
//!   http.
//!
//! Everything is decided before a connection is made: the URL here, the resolved
//! addresses in [`Permit::check_addresses`].

use crate::domain::egress::first_forbidden_address;
pub use crate::domain::egress::{HostPort, OperatorAllowList, is_public};
use reqwest::Url;
use std::fmt;
use std::net::IpAddr;

/// Why a request was refused. The message names the URL's host, never its query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied(pub String);

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Decides for one plugin.
#[derive(Debug, Clone)]
pub struct Granter {
    declared: Vec<HostPort>,
    operator: OperatorAllowList,
}

/// A URL the granter let through, pending the address check.
#[derive(Debug, Clone)]
pub struct Permit {
    /// The parsed URL.
    pub url: Url,
    /// Its host and port.
    pub host_port: HostPort,
    /// Whether the operator allowed this exact host:port (then any address is fine).
    pub operator_allowed: bool,
}

impl Granter {
    /// A granter for a plugin that declared `declared` hosts. Declarations that do not
    /// parse are ignored (they grant nothing).
    pub fn new(declared: &[String], operator: OperatorAllowList) -> Granter {
        Granter {
            declared: declared
                .iter()
                .filter_map(|d| HostPort::parse(d).ok())
                .collect(),
            operator,
        }
    }

    /// Checks a URL before anything is resolved or sent.
    pub fn check_url(&self, raw: &str) -> Result<Permit, Denied> {
        let url = Url::parse(raw).map_err(|_| Denied("the URL does not parse".into()))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Denied("URLs with credentials in them are refused".into()));
        }
        let host_port =
            HostPort::of_url(&url).ok_or_else(|| Denied("the URL has no host".into()))?;
        let operator_allowed = self.operator.contains(&host_port);
        match url.scheme() {
            "https" => {}
            "http" if operator_allowed && host_port.is_loopback() => {}
            "http" => {
                return Err(Denied(format!(
                    "plain http to {host_port} is refused: only https, or http to a loopback host:port the operator allows"
                )));
            }
            other => {
                return Err(Denied(format!(
                    "the scheme `{other}` is refused; use https"
                )));
            }
        }
        if !operator_allowed && !self.declared.contains(&host_port) {
            return Err(Denied(format!(
                "{host_port} is neither a host the plugin declared nor one the operator allows (AISPEND_PLUGIN_ALLOW_HOSTS)"
            )));
        }
        if let Ok(ip) = host_port.host.parse::<IpAddr>() {
            let permit = Permit {
                url,
                host_port,
                operator_allowed,
            };
            permit.check_addresses(&[ip])?;
            return Ok(permit);
        }
        Ok(Permit {
            url,
            host_port,
            operator_allowed,
        })
    }

    /// Whether a credential's base-URL override is acceptable for this plugin: https
    /// (or http to operator-allowed loopback) to a declared or operator-allowed host.
    pub fn check_base_url(&self, raw: &str) -> Result<(), Denied> {
        self.check_url(raw).map(|_| ())
    }
}

impl Permit {
    /// Checks the addresses the host name resolved to: all must be public unless the
    /// operator allowed this exact host:port.
    pub fn check_addresses(&self, addresses: &[IpAddr]) -> Result<(), Denied> {
        let operator = if self.operator_allowed {
            OperatorAllowList::only(self.host_port.clone())
        } else {
            OperatorAllowList::default()
        };
        match first_forbidden_address(&self.host_port, addresses, &operator).map_err(Denied)? {
            Some(ip) => Err(Denied(format!(
                "{} resolves to the non-public address {ip}; only hosts the operator allows may",
                self.host_port.host
            ))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn granter(declared: &[&str], operator: &[&str]) -> Granter {
        let operator =
            OperatorAllowList::parse(&operator.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        Granter::new(
            &declared.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            operator,
        )
    }

    #[test]
    fn denies_by_default() {
        let g = granter(&[], &[]);
        assert!(g.check_url("https://api.openai.com/v1/x").is_err());
        assert!(g.check_url("http://127.0.0.1:8080/").is_err());
    }

    #[test]
    fn allows_declared_hosts_over_https_on_their_port_only() {
        let g = granter(&["api.openai.com"], &[]);
        let p = g
            .check_url("https://API.openai.com/v1/organization/usage/completions?x=1")
            .unwrap();
        assert!(!p.operator_allowed);
        assert!(
            g.check_url("http://api.openai.com/")
                .unwrap_err()
                .0
                .contains("plain http")
        );
        assert!(g.check_url("https://api.openai.com:8443/").is_err());
        assert!(g.check_url("https://evil.example.com/").is_err());
        assert!(
            g.check_url("https://api.openai.com.evil.example.com/")
                .is_err()
        );
        assert!(g.check_url("https://user:pw@api.openai.com/").is_err());
        assert!(g.check_url("ftp://api.openai.com/").is_err());
        assert!(g.check_url("not a url").is_err());
    }

    #[test]
    fn operator_entries_are_exact_host_ports_and_the_only_way_to_plain_http_loopback() {
        let g = granter(
            &["api.openai.com"],
            &["127.0.0.1:9000", "proxy.internal:8443"],
        );
        assert!(
            g.check_url("http://127.0.0.1:9000/v1")
                .unwrap()
                .operator_allowed
        );
        assert!(g.check_url("https://127.0.0.1:9000/v1").is_ok());
        assert!(g.check_url("http://127.0.0.1:9001/v1").is_err());
        assert!(g.check_url("https://proxy.internal:8443/").is_ok());
        // Plain http only to loopback, even when the operator allowed the host.
        assert!(g.check_url("http://proxy.internal:8443/").is_err());
        // A declared IP literal that is not public is refused without the operator.
        let g = granter(&["10.0.0.5"], &[]);
        assert!(
            g.check_url("https://10.0.0.5/")
                .unwrap_err()
                .0
                .contains("non-public")
        );
    }

    #[test]
    fn resolved_addresses_must_be_public_unless_operator_allowed() {
        let g = granter(&["api.example.com"], &["internal.example.com:443"]);
        let p = g.check_url("https://api.example.com/").unwrap();
        assert!(
            p.check_addresses(&["93.184.216.34".parse().unwrap()])
                .is_ok()
        );
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(
                p.check_addresses(&[bad.parse().unwrap()]).is_err(),
                "{bad} must be refused"
            );
        }
        // One bad address among good ones is enough to refuse (DNS rebinding).
        assert!(
            p.check_addresses(&[
                "93.184.216.34".parse().unwrap(),
                "10.0.0.1".parse().unwrap()
            ])
            .is_err()
        );
        assert!(p.check_addresses(&[]).is_err());
        let q = g.check_url("https://internal.example.com/").unwrap();
        assert!(q.check_addresses(&["10.0.0.7".parse().unwrap()]).is_ok());
    }

    #[test]
    fn parses_operator_entries() {
        assert_eq!(
            HostPort::parse("Example.COM:8443").unwrap(),
            HostPort {
                host: "example.com".into(),
                port: 8443
            }
        );
        assert_eq!(
            HostPort::parse("[::1]:9000").unwrap().to_string(),
            "[::1]:9000"
        );
        assert_eq!(HostPort::parse("example.com").unwrap().port, 443);
        assert!(HostPort::parse("https://example.com").is_err());
        assert!(HostPort::parse("example.com:http").is_err());
        assert!(OperatorAllowList::parse(&["ok.example:1".into(), "bad host".into()]).is_err());
    }
}
