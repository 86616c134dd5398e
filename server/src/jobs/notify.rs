//! Sending to alert destinations: a budget's webhook, and notification channels
//! (WEBHOOK, SLACK, EMAIL). Used by the alert delivery worker and by
//! `testNotificationChannel`.
//!
//! Every connection follows the outbound policy of `domain::egress`: the destination's
//! host is resolved, every resolved address must be public unless the operator allowed
//! that exact `host:port` (`AISPEND_PLUGIN_ALLOW_HOSTS`), and the connection goes to
//! exactly the addresses that were checked (HTTP: pinned in the client; SMTP: the
//! checked address is dialled, the host name kept for TLS). HTTP redirects are never
//! followed. Error texts never contain a destination's path or query (a Slack URL holds
//! its secret there).

use crate::domain::alert::{self, Alert};
use crate::domain::budget::Budget;
use crate::domain::channel::{Channel, ChannelKind};
use crate::domain::egress::{HostPort, OperatorAllowList, first_forbidden_address};
use crate::domain::time;
use crate::domain::webhook::{self, DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, WebhookUrl};
use chrono::SecondsFormat;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use url::Url;

/// Why a send did not deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// What went wrong (no secret in it).
    pub message: String,
    /// The HTTP status, when one came back.
    pub status: Option<u16>,
    /// Retrying cannot help (the destination is refused, or the server said so).
    pub permanent: bool,
}

impl SendError {
    fn refused(message: impl Into<String>) -> SendError {
        SendError {
            message: message.into(),
            status: None,
            permanent: true,
        }
    }

    fn transient(message: impl Into<String>) -> SendError {
        SendError {
            message: message.into(),
            status: None,
            permanent: false,
        }
    }
}

/// What a successful send answered: the HTTP status (none for e-mail).
pub type Sent = Result<Option<u16>, SendError>;

/// How the SMTP connection is secured, in lettre's URL forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// `smtp://host` — plain (only sensible on a trusted network).
    None,
    /// `smtp://host?tls=opportunistic` — STARTTLS when the server offers it.
    Opportunistic,
    /// `smtp://host?tls=required` — STARTTLS, or no delivery.
    Required,
    /// `smtps://host` — TLS from the first byte.
    Wrapper,
}

/// The operator's SMTP server (`AISPEND_SMTP_URL`, `AISPEND_SMTP_FROM`).
#[derive(Clone)]
pub struct SmtpConfig {
    host: String,
    port: u16,
    tls: SmtpTls,
    credentials: Option<(String, String)>,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| "<redacted>"),
            )
            .field("from", &self.from.to_string())
            .finish()
    }
}

impl SmtpConfig {
    /// Parses `smtp://[user:password@]host[:port][?tls=required|opportunistic]` or
    /// `smtps://…` and the sender address. Errors never repeat the password.
    pub fn parse(raw_url: &str, from: &str) -> Result<SmtpConfig, String> {
        let url = Url::parse(raw_url.trim())
            .map_err(|e| format!("AISPEND_SMTP_URL is not a URL: {e}"))?;
        let mut tls = match url.scheme() {
            "smtp" => SmtpTls::None,
            "smtps" => SmtpTls::Wrapper,
            other => {
                return Err(format!(
                    "AISPEND_SMTP_URL must use smtp:// or smtps://, not `{other}://`"
                ));
            }
        };
        for (k, v) in url.query_pairs() {
            match (k.as_ref(), v.as_ref(), tls) {
                ("tls", "required", SmtpTls::None) => tls = SmtpTls::Required,
                ("tls", "opportunistic", SmtpTls::None) => tls = SmtpTls::Opportunistic,
                ("tls", _, SmtpTls::Wrapper) => {
                    return Err("AISPEND_SMTP_URL: smtps:// is always TLS; drop `tls=`".into());
                }
                ("tls", other, _) => {
                    return Err(format!(
                        "AISPEND_SMTP_URL: tls must be `required` or `opportunistic`, not `{other}`"
                    ));
                }
                (other, _, _) => {
                    return Err(format!("AISPEND_SMTP_URL: unknown parameter `{other}`"));
                }
            }
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("AISPEND_SMTP_URL must name a host")?
            .trim_matches(['[', ']'])
            .to_owned();
        let port = url.port().unwrap_or(match tls {
            SmtpTls::Wrapper => 465,
            SmtpTls::Required | SmtpTls::Opportunistic => 587,
            SmtpTls::None => 25,
        });
        let decode = |s: &str| {
            percent_decode(s).ok_or("AISPEND_SMTP_URL: the credentials are not valid UTF-8")
        };
        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            (user, pass) => Some((decode(user)?, decode(pass.unwrap_or(""))?)),
        };
        let from = from
            .trim()
            .parse::<Mailbox>()
            .map_err(|e| format!("AISPEND_SMTP_FROM is not an e-mail address: {e}"))?;
        Ok(SmtpConfig {
            host,
            port,
            tls,
            credentials,
            from,
        })
    }

    /// The TLS mode.
    pub fn tls(&self) -> SmtpTls {
        self.tls
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// What a notification says.
pub enum Notice<'a> {
    /// An alert of a budget.
    Alert(&'a Alert, &'a Budget),
    /// An alert of an anomaly watch (its name in `budget_name`, the day's spend in
    /// `spent`, the trailing mean in `amount`, the factor in percent in `threshold`).
    Anomaly(&'a Alert),
    /// `testNotificationChannel`.
    Test,
}

/// Sends alerts and test messages.
pub struct Notifier {
    /// The operator's allowlist.
    pub allow: OperatorAllowList,
    /// Timeout of one request (and of one SMTP exchange step).
    pub timeout: Duration,
    /// The SMTP server, when configured.
    pub smtp: Option<SmtpConfig>,
    /// The dashboard's base URL (`AISPEND_PUBLIC_URL`), for links.
    pub public_url: Option<String>,
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The UTC day an anomaly alert is about.
fn anomaly_day(a: &Alert) -> String {
    a.period
        .start
        .map(|s| s.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "-".into())
}

/// An anomaly alert's factor (`threshold` holds it in percent): `4.5×`.
fn anomaly_factor(a: &Alert) -> String {
    format!(
        "{}×",
        (rust_decimal::Decimal::from(a.threshold) / rust_decimal::Decimal::ONE_HUNDRED).normalize()
    )
}

/// Escapes the three characters Slack's mrkdwn treats as markup.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Notifier {
    /// The dashboard link, when a public URL is configured.
    pub fn dashboard_link(&self) -> Option<String> {
        let base = self.public_url.as_deref()?.trim_end_matches('/');
        Some(format!("{base}/"))
    }

    /// The Slack incoming-webhook message for a notice: `text` (the plain summary, what
    /// notifications show) and `blocks` (budget, threshold, spent, period, a link).
    pub fn slack_body(&self, channel: &Channel, notice: &Notice<'_>) -> Value {
        let (text, title, fields) = match notice {
            Notice::Alert(a, b) => {
                let period = match (a.period.start, a.period.end) {
                    (Some(s), Some(e)) => format!(
                        "{} {} to {} ({})",
                        b.period.as_str(),
                        s.with_timezone(&b.timezone).format("%Y-%m-%d %H:%M"),
                        e.with_timezone(&b.timezone).format("%Y-%m-%d %H:%M"),
                        b.timezone.name()
                    ),
                    _ => b.period.as_str().to_owned(),
                };
                (
                    a.summary.clone(),
                    format!("Budget {} reached {}%", a.budget_name, a.threshold),
                    vec![
                        ("Budget", a.budget_name.clone()),
                        ("Threshold", format!("{}%", a.threshold)),
                        (
                            "Spent",
                            format!(
                                "${:.2} of ${:.2}",
                                a.spent.to_decimal(),
                                a.amount.to_decimal()
                            ),
                        ),
                        ("Period", period),
                    ],
                )
            }
            Notice::Anomaly(a) => (
                a.summary.clone(),
                format!("Spend anomaly: {}", a.budget_name),
                vec![
                    ("Watch", a.budget_name.clone()),
                    ("Day (UTC)", anomaly_day(a)),
                    ("Spent", format!("${:.2}", a.spent.to_decimal())),
                    (
                        "Trailing mean",
                        format!(
                            "${:.2} ({} of it)",
                            a.amount.to_decimal(),
                            anomaly_factor(a)
                        ),
                    ),
                ],
            ),
            Notice::Test => (
                format!(
                    "Test message from aispend for the channel \"{}\".",
                    channel.name
                ),
                "aispend test message".to_owned(),
                vec![("Channel", channel.name.clone())],
            ),
        };
        let mut blocks = vec![
            json!({"type": "header", "text": {"type": "plain_text", "text": title}}),
            json!({
                "type": "section",
                "fields": fields
                    .iter()
                    .map(|(k, v)| json!({"type": "mrkdwn", "text": format!("*{k}*\n{}", slack_escape(v))}))
                    .collect::<Vec<_>>(),
            }),
        ];
        if let Some(link) = self.dashboard_link() {
            blocks.push(json!({
                "type": "actions",
                "elements": [{
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Open the aispend dashboard"},
                    "url": link,
                }],
            }));
        }
        json!({"text": text, "blocks": blocks})
    }

    /// The subject and plain-text body of an e-mail notice.
    pub fn email_text(&self, channel: &Channel, notice: &Notice<'_>) -> (String, String) {
        let link = self
            .dashboard_link()
            .map(|l| format!("\nDashboard: {l}\n"))
            .unwrap_or_default();
        match notice {
            Notice::Alert(a, b) => (
                format!(
                    "[aispend] Budget {} reached {}%",
                    a.budget_name, a.threshold
                ),
                format!(
                    "{}\n\nBudget: {}\nThreshold: {}%\nSpent: ${:.2} of ${:.2}\nPeriod: {} {} to {} ({})\nFired at: {}\n{link}",
                    a.summary,
                    a.budget_name,
                    a.threshold,
                    a.spent.to_decimal(),
                    a.amount.to_decimal(),
                    b.period.as_str(),
                    a.period.start.map(rfc3339).unwrap_or_else(|| "-".into()),
                    a.period.end.map(rfc3339).unwrap_or_else(|| "-".into()),
                    b.timezone.name(),
                    rfc3339(a.fired_at),
                ),
            ),
            Notice::Anomaly(a) => (
                format!(
                    "[aispend] Spend anomaly: {} ({})",
                    a.budget_name,
                    anomaly_day(a)
                ),
                format!(
                    "{}\n\nWatch: {}\nDay (UTC): {}\nSpent: ${:.2}\nTrailing mean: ${:.2} ({} of it)\nFired at: {}\n{link}",
                    a.summary,
                    a.budget_name,
                    anomaly_day(a),
                    a.spent.to_decimal(),
                    a.amount.to_decimal(),
                    anomaly_factor(a),
                    rfc3339(a.fired_at),
                ),
            ),
            Notice::Test => (
                "[aispend] Test message".to_owned(),
                format!(
                    "Test message from aispend for the channel \"{}\".\n{link}",
                    channel.name
                ),
            ),
        }
    }

    /// Sends a notice to a channel; `secret` is the channel's opened secret (WEBHOOK:
    /// the signing key; SLACK: the URL).
    pub async fn to_channel(
        &self,
        channel: &Channel,
        secret: Option<&str>,
        notice: &Notice<'_>,
    ) -> Sent {
        match channel.kind {
            ChannelKind::Webhook => {
                let (Some(url), Some(secret)) = (channel.url.as_deref(), secret) else {
                    return Err(SendError::refused("the channel has no URL or secret"));
                };
                let (body, delivery, event) = match notice {
                    Notice::Alert(a, b) => (
                        alert::webhook_body(a, b)
                            .map_err(|e| SendError::transient(e.to_string()))?,
                        a.id.to_string(),
                        "budget.threshold_reached",
                    ),
                    Notice::Anomaly(a) => (
                        alert::anomaly_webhook_body(a)
                            .map_err(|e| SendError::transient(e.to_string()))?,
                        a.id.to_string(),
                        "anomaly.detected",
                    ),
                    Notice::Test => (
                        serde_json::to_vec(&json!({
                            "type": "channel.test",
                            "channel": {"id": channel.id.to_string(), "name": channel.name},
                            "sentAt": rfc3339(time::now()),
                        }))
                        .map_err(|e| SendError::transient(e.to_string()))?,
                        uuid::Uuid::now_v7().to_string(),
                        "channel.test",
                    ),
                };
                self.webhook(url, secret, body, &delivery, event).await
            }
            ChannelKind::Slack => {
                let Some(url) = secret else {
                    return Err(SendError::refused("the channel has no URL"));
                };
                let body = serde_json::to_vec(&self.slack_body(channel, notice))
                    .map_err(|e| SendError::transient(e.to_string()))?;
                self.post(url, vec![], body, "Slack").await.map(Some)
            }
            ChannelKind::Email => {
                let (subject, text) = self.email_text(channel, notice);
                self.email(&channel.emails, &subject, text)
                    .await
                    .map(|()| None)
            }
        }
    }

    /// Posts a signed webhook body.
    pub async fn webhook(
        &self,
        url: &str,
        secret: &str,
        body: Vec<u8>,
        delivery: &str,
        event: &str,
    ) -> Sent {
        let signature = webhook::sign(secret.as_bytes(), time::now().timestamp(), &body)
            .ok_or_else(|| SendError::refused("the webhook secret cannot key an HMAC"))?;
        self.post(
            url,
            vec![
                (SIGNATURE_HEADER, signature),
                (DELIVERY_HEADER, delivery.to_owned()),
                (EVENT_HEADER, event.to_owned()),
            ],
            body,
            "the webhook",
        )
        .await
        .map(Some)
    }

    /// Posts JSON after checking the addresses the host resolves to; connects to exactly
    /// those, follows no redirect. A non-2xx answer is an error carrying the status.
    async fn post(
        &self,
        url: &str,
        headers: Vec<(&str, String)>,
        body: Vec<u8>,
        what: &str,
    ) -> Result<u16, SendError> {
        let url = WebhookUrl::parse(url, &self.allow).map_err(SendError::refused)?;
        let host = url.host();
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), url.port()))
            .await
            .map_err(|e| SendError::transient(format!("resolving `{host}`: {e}")))?
            .collect();
        url.check_resolved(&addrs, &self.allow)
            .map_err(SendError::refused)?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .no_proxy()
            .resolve_to_addrs(&host, &addrs)
            .user_agent(concat!("aispend/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SendError::transient(format!("building an HTTP client: {e}")))?;
        let mut request = client
            .post(url.as_str())
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request
            .body(body)
            .send()
            .await
            // Without the URL: a Slack-style URL carries its secret in the path.
            .map_err(|e| SendError::transient(format!("posting to {what}: {}", e.without_url())))?;
        let code = response.status().as_u16();
        if (200..300).contains(&code) {
            Ok(code)
        } else {
            Err(SendError {
                message: format!("{what} answered HTTP {code}"),
                status: Some(code),
                permanent: false,
            })
        }
    }

    /// Sends a plain-text e-mail through the operator's SMTP server.
    pub async fn email(&self, to: &[String], subject: &str, text: String) -> Result<(), SendError> {
        let Some(smtp) = &self.smtp else {
            return Err(SendError::refused(
                "e-mail is not configured: set AISPEND_SMTP_URL and AISPEND_SMTP_FROM",
            ));
        };
        let mut message = lettre::Message::builder()
            .from(smtp.from.clone())
            .subject(subject)
            .header(ContentType::TEXT_PLAIN);
        for address in to {
            let mailbox = address
                .parse::<Mailbox>()
                .map_err(|e| SendError::refused(format!("`{address}`: {e}")))?;
            message = message.to(mailbox);
        }
        let message = message
            .body(text)
            .map_err(|e| SendError::refused(format!("building the message: {e}")))?;
        let hp = HostPort {
            host: smtp.host.to_ascii_lowercase(),
            port: smtp.port,
        };
        let addrs: Vec<IpAddr> = tokio::net::lookup_host((smtp.host.as_str(), smtp.port))
            .await
            .map_err(|e| SendError::transient(format!("resolving `{}`: {e}", smtp.host)))?
            .map(|a| a.ip())
            .collect();
        if let Some(ip) =
            first_forbidden_address(&hp, &addrs, &self.allow).map_err(SendError::transient)?
        {
            return Err(SendError::refused(format!(
                "the SMTP server `{}` resolves to the non-public address {ip}; the operator must allow `{hp}` in AISPEND_PLUGIN_ALLOW_HOSTS",
                smtp.host
            )));
        }
        let Some(ip) = addrs.first() else {
            return Err(SendError::transient(format!(
                "`{}` resolved to no address",
                smtp.host
            )));
        };
        let tls_params = || {
            TlsParameters::new(smtp.host.clone())
                .map_err(|e| SendError::refused(format!("setting up TLS: {e}")))
        };
        let tls = match smtp.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Opportunistic => Tls::Opportunistic(tls_params()?),
            SmtpTls::Required => Tls::Required(tls_params()?),
            SmtpTls::Wrapper => Tls::Wrapper(tls_params()?),
        };
        let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(ip.to_string())
            .port(smtp.port)
            .tls(tls)
            .timeout(Some(self.timeout))
            .hello_name(ClientId::Domain("aispend.localhost".into()));
        if let Some((user, pass)) = &smtp.credentials {
            transport = transport.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        match transport.build().send(message).await {
            Ok(_) => Ok(()),
            Err(e) => Err(SendError {
                message: format!("sending the e-mail: {e}"),
                status: None,
                permanent: e.is_permanent(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_follow_lettres_forms() {
        let c = SmtpConfig::parse("smtp://mail.example.com?tls=required", "a@example.com").unwrap();
        assert_eq!((c.port, c.tls), (587, SmtpTls::Required));
        let c = SmtpConfig::parse("smtps://u:p%40ss@mail.example.com", "a@example.com").unwrap();
        assert_eq!((c.port, c.tls), (465, SmtpTls::Wrapper));
        assert_eq!(c.credentials, Some(("u".into(), "p@ss".into())));
        assert!(!format!("{c:?}").contains("p@ss"));
        let c = SmtpConfig::parse("smtp://127.0.0.1:2525", "aispend <a@example.com>").unwrap();
        assert_eq!((c.port, c.tls), (2525, SmtpTls::None));
        assert!(SmtpConfig::parse("http://mail.example.com", "a@example.com").is_err());
        assert!(SmtpConfig::parse("smtp://mail.example.com?tls=maybe", "a@example.com").is_err());
        assert!(SmtpConfig::parse("smtp://mail.example.com", "not an address").is_err());
        let err = SmtpConfig::parse("smtp://u:hunter2@mail.example.com?x=1", "a@example.com")
            .unwrap_err();
        assert!(!err.contains("hunter2"));
    }
}
