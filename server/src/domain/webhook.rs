//! Webhooks: where an alert may be sent, and how a receiver knows it came from us.
//!
//! **Destinations.** A webhook URL must be `https`, unless its exact `host:port` is in
//! the operator's allowlist (`AISPEND_PLUGIN_ALLOW_HOSTS`, the same list that lets
//! plugins reach extra hosts), which also permits plain `http`. A destination that
//! resolves to a private, loopback, link-local or otherwise non-public address is
//! refused unless its `host:port` is allowlisted — checked on the *resolved* addresses
//! at delivery time (and the connection goes to exactly those addresses, so DNS cannot
//! change the answer in between). Redirects are never followed.
//!
//! **Signature.** Every delivery carries
//! `X-Aispend-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
//! under the budget's webhook secret. A receiver recomputes the HMAC over the raw body
//! with the timestamp from the header, compares in constant time, and rejects a
//! timestamp too far from its clock (five minutes, say) so a captured request cannot
//! be replayed later. Each attempt is signed afresh; `X-Aispend-Delivery` stays the
//! same across the retries of one alert, so a receiver can drop duplicates.

use crate::domain::egress::{HostPort, OperatorAllowList, first_forbidden_address, is_public};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::net::{IpAddr, SocketAddr};
use url::Url;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Aispend-Signature";
/// The delivery id header (the alert id: stable across retries).
pub const DELIVERY_HEADER: &str = "X-Aispend-Delivery";
/// The event type header.
pub const EVENT_HEADER: &str = "X-Aispend-Event";

/// Shortest webhook secret accepted: shorter secrets make the HMAC guessable.
pub const MIN_SECRET_LEN: usize = 16;
/// Longest webhook secret accepted.
pub const MAX_SECRET_LEN: usize = 256;

/// A webhook destination that passed the static checks (scheme, host, no credentials,
/// no literal private address unless allowlisted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(Url);

impl WebhookUrl {
    /// Parses and checks a destination; the error is a sentence for the user.
    pub fn parse(raw: &str, allow: &OperatorAllowList) -> Result<WebhookUrl, String> {
        let url = Url::parse(raw.trim()).map_err(|e| format!("is not a URL: {e}"))?;
        let host = match url.host_str() {
            Some(h) if !h.is_empty() => h.to_owned(),
            _ => return Err("must name a host".into()),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "must not contain credentials; sign requests with the webhook secret instead"
                    .into(),
            );
        }
        if url.fragment().is_some() {
            return Err("must not have a #fragment".into());
        }
        let parsed = WebhookUrl(url);
        let allowed = allow.contains(&parsed.host_port());
        match parsed.0.scheme() {
            "https" => {}
            "http" if allowed => {}
            "http" => {
                return Err(format!(
                    "must use https (plain http only for a host:port the operator allows in AISPEND_PLUGIN_ALLOW_HOSTS, e.g. `{}`)",
                    parsed.host_port()
                ));
            }
            other => return Err(format!("must use https, not `{other}`")),
        }
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>()
            && !is_public(ip)
            && !allowed
        {
            return Err(format!(
                "points at a private address; the operator must allow `{}` in AISPEND_PLUGIN_ALLOW_HOSTS",
                parsed.host_port()
            ));
        }
        Ok(parsed)
    }

    /// The URL text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The host as written (no brackets around IPv6 literals).
    pub fn host(&self) -> String {
        self.0
            .host_str()
            .unwrap_or_default()
            .trim_matches(['[', ']'])
            .to_owned()
    }

    /// The port, explicit or the scheme's default.
    pub fn port(&self) -> u16 {
        self.0.port_or_known_default().unwrap_or(443)
    }

    /// `host:port` as the operator's allowlist spells it.
    pub fn host_port(&self) -> HostPort {
        HostPort::of_url(&self.0).unwrap_or_else(|| HostPort {
            host: self.host(),
            port: self.port(),
        })
    }

    /// Checks the addresses the host resolved to: all must be public unless the
    /// operator allowed this `host:port`.
    pub fn check_resolved(
        &self,
        addrs: &[SocketAddr],
        allow: &OperatorAllowList,
    ) -> Result<(), String> {
        let ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
        match first_forbidden_address(&self.host_port(), &ips, allow)? {
            Some(ip) => Err(format!(
                "`{}` resolves to the non-public address {ip}; the operator must allow `{}` in AISPEND_PLUGIN_ALLOW_HOSTS",
                self.host(),
                self.host_port()
            )),
            None => Ok(()),
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 keyed with `secret` over `"<timestamp>.<body>"`. HMAC takes keys of
/// any length, so keying never fails in practice; `None` keeps that impossibility out
/// of request paths without a panic.
fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// A destination as a reader without the ADMIN scope sees it: scheme, host and port,
/// never the path or query (a Slack-style incoming-webhook URL holds its secret there).
pub fn mask_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(url) => {
            let host = url.host_str().unwrap_or("");
            let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
            let rest = if url.path() == "/" && url.query().is_none() {
                "/"
            } else {
                "/…"
            };
            format!("{}://{host}{port}{rest}", url.scheme())
        }
        Err(_) => "…".to_owned(),
    }
}

/// The `X-Aispend-Signature` value for a body sent at `timestamp` (unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> Option<String> {
    let digest = mac(secret, timestamp, body)?.finalize().into_bytes();
    Some(format!("t={timestamp},v1={}", hex::encode(digest)))
}

/// Verifies a signature header the way a receiver should: constant-time comparison
/// and a timestamp within `tolerance_secs` of `now`.
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: i64, tolerance_secs: i64) -> bool {
    let mut timestamp = None;
    let mut signatures = vec![];
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    let Some(t) = timestamp else { return false };
    if (now - t).abs() > tolerance_secs {
        return false;
    }
    signatures
        .iter()
        .any(|sig| mac(secret, t, body).is_some_and(|m| m.verify_slice(sig).is_ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(entries: &[&str]) -> OperatorAllowList {
        OperatorAllowList::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>())
            .unwrap()
    }

    #[test]
    fn only_https_unless_the_operator_allows_the_host() {
        assert!(WebhookUrl::parse("https://hooks.example.com/aispend", &allow(&[])).is_ok());
        assert!(WebhookUrl::parse("http://hooks.example.com/x", &allow(&[])).is_err());
        assert!(
            WebhookUrl::parse(
                "http://hooks.example.com/x",
                &allow(&["hooks.example.com:80"])
            )
            .is_ok()
        );
        assert!(WebhookUrl::parse("ftp://hooks.example.com/x", &allow(&[])).is_err());
        assert!(WebhookUrl::parse("https://user:pw@hooks.example.com/", &allow(&[])).is_err());
    }

    #[test]
    fn literal_private_addresses_need_the_allowlist() {
        for url in [
            "https://127.0.0.1:9000/hook",
            "https://10.1.2.3/hook",
            "https://169.254.169.254/latest",
            "https://[::1]:8443/hook",
            "https://[fd00::1]/hook",
        ] {
            assert!(WebhookUrl::parse(url, &allow(&[])).is_err(), "{url}");
        }
        let u =
            WebhookUrl::parse("http://127.0.0.1:9000/hook", &allow(&["127.0.0.1:9000"])).unwrap();
        assert_eq!(u.host_port().to_string(), "127.0.0.1:9000");
        // The port must match exactly.
        assert!(
            WebhookUrl::parse("http://127.0.0.1:9001/hook", &allow(&["127.0.0.1:9000"])).is_err()
        );
    }

    #[test]
    fn a_masked_url_keeps_only_scheme_host_and_port() {
        assert_eq!(
            mask_url("https://hooks.slack.com/services/T000/B000/XXXXsecret"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            mask_url("http://127.0.0.1:9000/h?k=secret"),
            "http://127.0.0.1:9000/…"
        );
        assert_eq!(mask_url("https://example.com/"), "https://example.com/");
        assert_eq!(mask_url("not a url"), "…");
    }

    #[test]
    fn resolved_addresses_are_checked() {
        let u = WebhookUrl::parse("https://hooks.example.com/x", &allow(&[])).unwrap();
        let public: SocketAddr = "93.184.216.34:443".parse().unwrap();
        let private: SocketAddr = "192.168.1.5:443".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:443".parse().unwrap();
        assert!(u.check_resolved(&[public], &allow(&[])).is_ok());
        assert!(u.check_resolved(&[public, private], &allow(&[])).is_err());
        assert!(u.check_resolved(&[mapped], &allow(&[])).is_err());
        assert!(u.check_resolved(&[], &allow(&[])).is_err());
        assert!(
            u.check_resolved(&[private], &allow(&["hooks.example.com:443"]))
                .is_ok()
        );
    }

    #[test]
    fn signatures_verify_and_expire() {
        let body = br#"{"threshold":80}"#;
        let header = sign(b"a-very-secret-key", 1_700_000_000, body).unwrap();
        assert!(header.starts_with("t=1700000000,v1="));
        assert!(verify(
            b"a-very-secret-key",
            &header,
            body,
            1_700_000_100,
            300
        ));
        assert!(!verify(
            b"another-secret-key",
            &header,
            body,
            1_700_000_100,
            300
        ));
        assert!(!verify(
            b"a-very-secret-key",
            &header,
            b"{}",
            1_700_000_100,
            300
        ));
        assert!(!verify(
            b"a-very-secret-key",
            &header,
            body,
            1_700_001_000,
            300
        ));
    }
}
