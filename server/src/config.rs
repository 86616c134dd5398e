//! Configuration: every setting has an environment variable and a CLI flag (the
//! contract in the brief), parsed once into typed values.

use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Settings shared by every subcommand. Its `Debug` shows whether a secret is set,
/// never the secret (the master key, the admin token, a database URL's password).
#[derive(Args, Clone)]
pub struct Settings {
    /// Address the server listens on.
    #[arg(
        long,
        env = "AISPEND_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: SocketAddr,

    /// Directory for the SQLite database, the master key file and other state.
    #[arg(
        long,
        env = "AISPEND_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// Database URL: `postgres://…` for PostgreSQL; default is SQLite in the data dir.
    #[arg(
        long,
        env = "AISPEND_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Master key for credentials at rest (base64, 32 bytes); default is a key file
    /// created in the data directory on first start.
    #[arg(
        long,
        env = "AISPEND_MASTER_KEY",
        global = true,
        hide_env_values = true
    )]
    pub master_key: Option<String>,

    /// A bootstrap admin token accepted in addition to stored tokens.
    #[arg(
        long,
        env = "AISPEND_ADMIN_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub admin_token: Option<String>,

    /// A folder of extra provider plugins (`*.wasm`).
    #[arg(long, env = "AISPEND_PLUGIN_DIR", global = true)]
    pub plugin_dir: Option<PathBuf>,

    /// Hosts (`host:port`, comma-separated) plugins may reach beyond their own;
    /// loopback entries may use plain http.
    #[arg(
        long,
        env = "AISPEND_PLUGIN_ALLOW_HOSTS",
        global = true,
        value_delimiter = ','
    )]
    pub plugin_allow_hosts: Vec<String>,

    /// Alert delivery and live-update tuning.
    #[command(flatten)]
    pub alerts: AlertSettings,

    /// Notification channels: SMTP, links.
    #[command(flatten)]
    pub channels: ChannelSettings,

    /// Provider sync tuning.
    #[command(flatten)]
    pub sync: SyncConfig,

    /// Request limits.
    #[command(flatten)]
    pub limits: LimitSettings,

    /// For tests only: the server's clock starts at this instant (RFC 3339, e.g.
    /// `2026-01-31T23:59:30Z`) and advances in real time. Every "now" and "today" the
    /// server uses (budget periods, live totals, subscriptions, defaults of date ranges,
    /// stored timestamps) reads it. Unset: the system clock.
    #[arg(long, env = "AISPEND_TEST_CLOCK", global = true, hide = true)]
    pub test_clock: Option<chrono::DateTime<chrono::Utc>>,
    /// OTLP ingest and Prometheus metrics.
    #[command(flatten)]
    pub integrations: IntegrationSettings,
    /// Price sources and their sync.
    #[command(flatten)]
    pub prices: PriceSyncConfig,
}

/// Price sources (`AISPEND_PRICE_SOURCES`) and how they are synced. With no source
/// configured (the default) the server never fetches a price document.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct PriceSyncConfig {
    /// URLs of price documents to keep prices current from, comma-separated: LiteLLM's
    /// price map or genai-prices' data, detected from the document or named with a
    /// `litellm:` or `genai-prices:` prefix.
    #[arg(
        long,
        env = "AISPEND_PRICE_SOURCES",
        global = true,
        value_delimiter = ','
    )]
    pub price_sources: Vec<crate::domain::price::sources::SourceSpec>,

    /// Seconds between scheduled price syncs (default: a day); `0` turns the schedule
    /// off (`aispend prices sync` and `syncPriceSources` still sync).
    #[arg(
        long,
        env = "AISPEND_PRICE_SYNC_INTERVAL_SECS",
        default_value_t = 86_400,
        global = true
    )]
    pub price_sync_interval_secs: u64,

    /// The largest share (percent) of a source's prices one document may remove; a
    /// document that would remove more is refused whole.
    #[arg(
        long,
        env = "AISPEND_PRICE_SYNC_MAX_REMOVED_PERCENT",
        default_value_t = 20,
        value_parser = clap::value_parser!(u32).range(0..=100),
        global = true
    )]
    pub price_sync_max_removed_percent: u32,
}

impl Default for PriceSyncConfig {
    fn default() -> Self {
        PriceSyncConfig {
            price_sources: vec![],
            price_sync_interval_secs: 86_400,
            price_sync_max_removed_percent: 20,
        }
    }
}

impl PriceSyncConfig {
    /// The domain's sync limits.
    pub fn policy(&self) -> crate::domain::price::sources::SyncPolicy {
        crate::domain::price::sources::SyncPolicy {
            max_removed_percent: self.price_sync_max_removed_percent,
            ..Default::default()
        }
    }

    /// Time between scheduled syncs (`None`: no schedule).
    pub fn interval(&self) -> Option<std::time::Duration> {
        (self.price_sync_interval_secs > 0)
            .then(|| std::time::Duration::from_secs(self.price_sync_interval_secs))
    }
}

/// How aispend meets tools teams already run: OpenTelemetry exporters and Prometheus.
#[derive(Args, Clone, PartialEq)]
pub struct IntegrationSettings {
    /// The span (or resource) attribute whose value becomes a GenAI span's endpoint
    /// (application feature) on `POST /v1/traces`.
    #[arg(
        long,
        env = "AISPEND_OTLP_ENDPOINT_ATTRIBUTE",
        default_value = crate::domain::usage::otlp::DEFAULT_ENDPOINT_ATTRIBUTE,
        global = true
    )]
    pub otlp_endpoint_attribute: String,

    /// A token required (as `Authorization: Bearer …`) to read `/metrics`; open when
    /// unset.
    #[arg(
        long,
        env = "AISPEND_METRICS_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub metrics_token: Option<String>,
}

impl Default for IntegrationSettings {
    fn default() -> Self {
        IntegrationSettings {
            otlp_endpoint_attribute: crate::domain::usage::otlp::DEFAULT_ENDPOINT_ATTRIBUTE
                .to_owned(),
            metrics_token: None,
        }
    }
}

impl std::fmt::Debug for IntegrationSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntegrationSettings")
            .field("otlp_endpoint_attribute", &self.otlp_endpoint_attribute)
            .field("metrics_token", &redacted(&self.metrics_token))
            .finish()
    }
}

/// Alert channels: the SMTP server EMAIL channels send through, and the dashboard's
/// public address used in links.
#[derive(Args, Clone, PartialEq, Default)]
pub struct ChannelSettings {
    /// The SMTP server for EMAIL channels, in lettre's URL forms:
    /// `smtp://[user:password@]host[:port]` (plain), `…?tls=required` (STARTTLS or
    /// nothing), `…?tls=opportunistic`, or `smtps://…` (TLS from the start). Unset:
    /// EMAIL deliveries fail with a clear error.
    #[arg(long, env = "AISPEND_SMTP_URL", global = true, hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// The sender of alert e-mail (`aispend <alerts@example.com>`); required with
    /// `AISPEND_SMTP_URL`.
    #[arg(long, env = "AISPEND_SMTP_FROM", global = true)]
    pub smtp_from: Option<String>,

    /// The address people open aispend at (`https://aispend.example.com`): alert
    /// messages link to the dashboard there. Unset: no link.
    #[arg(long, env = "AISPEND_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
}

impl std::fmt::Debug for ChannelSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelSettings")
            .field("smtp_url", &redacted(&self.smtp_url))
            .field("smtp_from", &self.smtp_from)
            .field("public_url", &self.public_url)
            .finish()
    }
}

impl ChannelSettings {
    /// The SMTP server, checked; `None` when unset.
    pub fn smtp(&self) -> anyhow::Result<Option<crate::jobs::notify::SmtpConfig>> {
        match (&self.smtp_url, &self.smtp_from) {
            (None, _) => Ok(None),
            (Some(_), None) => anyhow::bail!("AISPEND_SMTP_FROM is required with AISPEND_SMTP_URL"),
            (Some(url), Some(from)) => crate::jobs::notify::SmtpConfig::parse(url, from)
                .map(Some)
                .map_err(anyhow::Error::msg),
        }
    }

    /// The public URL, checked (http or https, no query or fragment).
    pub fn public_url(&self) -> anyhow::Result<Option<String>> {
        let Some(raw) = self.public_url.as_deref() else {
            return Ok(None);
        };
        let url = url::Url::parse(raw.trim())
            .map_err(|e| anyhow::anyhow!("AISPEND_PUBLIC_URL is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https")
            || url.query().is_some()
            || url.fragment().is_some()
            || url.host_str().is_none()
        {
            anyhow::bail!(
                "AISPEND_PUBLIC_URL must be an http(s) address without a query, e.g. https://aispend.example.com"
            );
        }
        Ok(Some(url.as_str().trim_end_matches('/').to_owned()))
    }
}

/// A rate with a burst: `RATE` or `RATE/BURST` requests per second (`20`, `0.5/10`);
/// the burst defaults to twice the rate (at least 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests per second, refilled continuously.
    pub per_second: f64,
    /// Requests that may arrive at once.
    pub burst: u32,
}

impl std::str::FromStr for RateLimit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (rate, burst) = match s.trim().split_once('/') {
            Some((r, b)) => (r.trim(), Some(b.trim())),
            None => (s.trim(), None),
        };
        let per_second: f64 = rate
            .parse()
            .ok()
            .filter(|r: &f64| r.is_finite() && *r > 0.0 && *r <= 1_000_000.0)
            .ok_or_else(|| format!("`{s}`: the rate must be a number of requests per second above 0, e.g. `20` or `20/40`"))?;
        let burst = match burst {
            Some(b) => b.parse::<u32>().ok().filter(|b| *b >= 1).ok_or_else(|| {
                format!("`{s}`: the burst must be a whole number of requests, at least 1")
            })?,
            None => ((per_second * 2.0).ceil() as u32).max(1),
        };
        Ok(RateLimit { per_second, burst })
    }
}

/// What one client may ask of the server.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct LimitSettings {
    /// Requests per second per token, with a burst (`RATE` or `RATE/BURST`, e.g.
    /// `20/40`); over it, `429` with `Retry-After`. Off when unset. Counted per server
    /// process.
    #[arg(long, env = "AISPEND_RATE_LIMIT_PER_TOKEN", global = true)]
    pub rate_limit_per_token: Option<RateLimit>,

    /// Turns GraphQL introspection (the schema query GraphiQL and code generators
    /// use) off when `false`.
    #[arg(
        long,
        env = "AISPEND_GRAPHQL_INTROSPECTION",
        global = true,
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub graphql_introspection: bool,

    /// How many distinct endpoints and how many distinct end users per project the
    /// analytics rollups keep apart; later ones share an "other" bucket there, and a
    /// question about one of them reads raw events (exact, slower).
    #[arg(
        long,
        env = "AISPEND_ROLLUP_DISTINCT_VALUES",
        global = true,
        default_value_t = crate::domain::rollup::DEFAULT_DISTINCT_VALUES
    )]
    pub rollup_distinct_values: usize,

    /// PostgreSQL: how many large ingest requests (256 events or more) this process
    /// writes at once, besides the one writer that groups smaller ones (`0`: that one
    /// writes everything). SQLite always has one writer.
    #[arg(
        long,
        env = "AISPEND_INGEST_WRITERS",
        global = true,
        default_value_t = crate::domain::usage::writer::DEFAULT_PG_WRITERS
    )]
    pub ingest_writers: usize,

    /// How long the rollup folder waits between folds, in milliseconds (`0`: it folds
    /// after ingest commits, resting three times as long as its last fold took, at
    /// most 2 s). Answers are exact either way; a longer wait folds fewer, larger
    /// batches while events wait unfolded.
    #[arg(
        long,
        env = "AISPEND_FOLD_INTERVAL_MS",
        global = true,
        default_value_t = 0
    )]
    pub fold_interval_ms: u64,
}

/// How a secret setting appears in `Debug` output.
fn redacted(value: &Option<String>) -> &'static str {
    match value {
        Some(_) => "Some(<redacted>)",
        None => "None",
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &redacted(&self.database_url))
            .field("master_key", &redacted(&self.master_key))
            .field("admin_token", &redacted(&self.admin_token))
            .field("plugin_dir", &self.plugin_dir)
            .field("plugin_allow_hosts", &self.plugin_allow_hosts)
            .field("alerts", &self.alerts)
            .field("channels", &self.channels)
            .field("sync", &self.sync)
            .field("limits", &self.limits)
            .field("test_clock", &self.test_clock)
            .field("integrations", &self.integrations)
            .field("prices", &self.prices)
            .finish_non_exhaustive()
    }
}

/// Provider sync: retries, leases and schedules. The defaults suit production; tests
/// shorten the delays so retries and take-overs can be observed.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct SyncConfig {
    /// Retries of one page after a rate limit, an outage or a timeout.
    #[arg(
        long = "sync-retries",
        env = "AISPEND_SYNC_RETRIES",
        default_value_t = 5,
        global = true
    )]
    pub retries: u32,

    /// The first backoff after an outage or timeout, in milliseconds (doubled per
    /// retry, plus up to 50% jitter).
    #[arg(
        long = "sync-backoff-ms",
        env = "AISPEND_SYNC_BACKOFF_MS",
        default_value_t = 2_000,
        global = true
    )]
    pub backoff_ms: u64,

    /// The longest backoff, in milliseconds.
    #[arg(
        long = "sync-backoff-max-ms",
        env = "AISPEND_SYNC_BACKOFF_MAX_MS",
        default_value_t = 120_000,
        global = true
    )]
    pub backoff_max_ms: u64,

    /// The longest retry-after a run waits for, in seconds.
    #[arg(
        long = "sync-max-retry-after-secs",
        env = "AISPEND_SYNC_MAX_RETRY_AFTER_SECS",
        default_value_t = 900,
        global = true
    )]
    pub max_retry_after_secs: u64,

    /// A running sync whose heartbeat is older than this (milliseconds) is taken over
    /// by another worker (its process died).
    #[arg(
        long = "sync-lease-ms",
        env = "AISPEND_SYNC_LEASE_MS",
        default_value_t = 60_000,
        global = true
    )]
    pub lease_ms: u64,

    /// How often queued and abandoned runs are swept for, in milliseconds.
    #[arg(
        long = "sync-sweep-ms",
        env = "AISPEND_SYNC_SWEEP_MS",
        default_value_t = 5_000,
        global = true
    )]
    pub sweep_ms: u64,

    /// How often schedules are checked, in milliseconds.
    #[arg(
        long = "sync-scheduler-ms",
        env = "AISPEND_SYNC_SCHEDULER_MS",
        default_value_t = 30_000,
        global = true
    )]
    pub scheduler_ms: u64,

    /// Whether this process creates scheduled runs (any number of processes may).
    #[arg(long = "sync-scheduler", env = "AISPEND_SYNC_SCHEDULER", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub scheduler: bool,

    /// Sync workers per process (runs executed at once).
    #[arg(
        long = "sync-workers",
        env = "AISPEND_SYNC_WORKERS",
        default_value_t = 4,
        global = true
    )]
    pub workers: usize,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            retries: 5,
            backoff_ms: 2_000,
            backoff_max_ms: 120_000,
            max_retry_after_secs: 900,
            lease_ms: 60_000,
            sweep_ms: 5_000,
            scheduler_ms: 30_000,
            scheduler: true,
            workers: 4,
        }
    }
}

impl SyncConfig {
    /// The domain's settings.
    pub fn settings(&self) -> crate::domain::sync::SyncSettings {
        use std::time::Duration;
        crate::domain::sync::SyncSettings {
            retries: self.retries,
            backoff: Duration::from_millis(self.backoff_ms.max(1)),
            backoff_max: Duration::from_millis(self.backoff_max_ms.max(1)),
            max_retry_after: Duration::from_secs(self.max_retry_after_secs),
            lease: Duration::from_millis(self.lease_ms.max(100)),
            sweep: Duration::from_millis(self.sweep_ms.max(10)),
            scheduler_tick: Duration::from_millis(self.scheduler_ms.max(10)),
            // Twice the lease: a worker that took the job has claimed the run long
            // before (claiming is its first statement).
            redispatch_after: Duration::from_millis(self.lease_ms.max(100)).saturating_mul(2),
            scheduler: self.scheduler,
            max_pages: crate::domain::sync::SyncSettings::default().max_pages,
        }
    }
}

/// Alert delivery and live updates. The defaults suit production; tests shorten the
/// delays so retries can be observed.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct AlertSettings {
    /// Retries of a failed webhook delivery (after the first attempt).
    #[arg(
        long,
        env = "AISPEND_WEBHOOK_RETRIES",
        default_value_t = 8,
        global = true
    )]
    pub webhook_retries: u32,

    /// The first retry delay of a webhook, in milliseconds; each retry doubles it
    /// (plus up to 50% jitter).
    #[arg(
        long,
        env = "AISPEND_WEBHOOK_BACKOFF_MS",
        default_value_t = 5_000,
        global = true
    )]
    pub webhook_backoff_ms: u64,

    /// The longest retry delay of a webhook, in milliseconds.
    #[arg(
        long,
        env = "AISPEND_WEBHOOK_BACKOFF_MAX_MS",
        default_value_t = 3_600_000,
        global = true
    )]
    pub webhook_backoff_max_ms: u64,

    /// Timeout of one webhook request, in milliseconds.
    #[arg(
        long,
        env = "AISPEND_WEBHOOK_TIMEOUT_MS",
        default_value_t = 10_000,
        global = true
    )]
    pub webhook_timeout_ms: u64,

    /// How often job workers look for new jobs on SQLite, in milliseconds
    /// (PostgreSQL wakes them on push).
    #[arg(
        long,
        env = "AISPEND_JOBS_POLL_MS",
        default_value_t = 1_000,
        global = true
    )]
    pub jobs_poll_ms: u64,

    /// Updates queued per live subscriber before it counts as too slow and is
    /// dropped.
    #[arg(
        long,
        env = "AISPEND_SUBSCRIBER_QUEUE",
        default_value_t = 256,
        global = true
    )]
    pub subscriber_queue: usize,

    /// How often anomaly watches are checked, in milliseconds.
    #[arg(
        long,
        env = "AISPEND_ANOMALY_CHECK_MS",
        default_value_t = 300_000,
        global = true
    )]
    pub anomaly_check_ms: u64,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            webhook_retries: 8,
            webhook_backoff_ms: 5_000,
            webhook_backoff_max_ms: 3_600_000,
            webhook_timeout_ms: 10_000,
            jobs_poll_ms: 1_000,
            subscriber_queue: 256,
            anomaly_check_ms: 300_000,
        }
    }
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            rate_limit_per_token: None,
            graphql_introspection: true,
            rollup_distinct_values: crate::domain::rollup::DEFAULT_DISTINCT_VALUES,
            ingest_writers: crate::domain::usage::writer::DEFAULT_PG_WRITERS,
            fold_interval_ms: 0,
        }
    }
}

/// Where the ledger lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL.
    Postgres(String),
}

impl DatabaseTarget {
    /// The kind, as `/healthz` reports it.
    pub fn kind(&self) -> &'static str {
        match self {
            DatabaseTarget::Sqlite(_) => "sqlite",
            DatabaseTarget::Postgres(_) => "postgres",
        }
    }
}

impl Settings {
    /// Decides the database from the URL (or its absence).
    pub fn database(&self) -> anyhow::Result<DatabaseTarget> {
        match self
            .database_url
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => Ok(DatabaseTarget::Sqlite(self.data_dir.join("aispend.db"))),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(DatabaseTarget::Postgres(url.to_owned()))
            }
            Some(url) if url.starts_with("sqlite:") => {
                let path = url
                    .trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:");
                let path = path.split('?').next().unwrap_or(path);
                Ok(DatabaseTarget::Sqlite(PathBuf::from(path)))
            }
            Some(_) => anyhow::bail!(
                "AISPEND_DATABASE_URL must start with postgres:// or sqlite: (the URL itself is not shown because it may hold a password)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_and_without_a_burst() {
        let r: RateLimit = "20".parse().unwrap();
        assert_eq!((r.per_second, r.burst), (20.0, 40));
        let r: RateLimit = "0.5/10".parse().unwrap();
        assert_eq!((r.per_second, r.burst), (0.5, 10));
        let r: RateLimit = "0.2".parse().unwrap();
        assert_eq!(r.burst, 1);
        for bad in ["0", "-1", "x", "5/0", "5/x", "inf"] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let settings = Settings {
            listen: "127.0.0.1:8080".parse().unwrap(),
            data_dir: "./data".into(),
            database_url: Some("postgres://app:db-password-1@db/aispend".into()),
            master_key: Some("bWFzdGVyLWtleS1zZWNyZXQ=".into()),
            admin_token: Some("admin-token-secret".into()),
            plugin_dir: None,
            plugin_allow_hosts: vec![],
            alerts: AlertSettings::default(),
            channels: ChannelSettings {
                smtp_url: Some("smtp://mailer:smtp-password-1@mail.example.com".into()),
                smtp_from: Some("aispend@example.com".into()),
                public_url: None,
            },
            sync: SyncConfig::default(),
            limits: LimitSettings::default(),
            test_clock: None,
            integrations: IntegrationSettings {
                metrics_token: Some("metrics-token-secret".into()),
                ..IntegrationSettings::default()
            },
            prices: PriceSyncConfig {
                price_sources: vec![
                    "https://u:source-password@prices.example/map.json?key=source-key"
                        .parse()
                        .unwrap(),
                ],
                ..Default::default()
            },
        };
        let shown = format!("{settings:?}");
        for secret in [
            "db-password-1",
            "bWFzdGVyLWtleS1zZWNyZXQ=",
            "admin-token-secret",
            "metrics-token-secret",
            "source-password",
            "source-key",
            "smtp-password-1",
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(
            shown.contains("master_key: \"Some(<redacted>)\""),
            "{shown}"
        );
        assert!(shown.contains("127.0.0.1:8080"), "{shown}");
    }
}
