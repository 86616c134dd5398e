//! Configuration: every setting has an environment variable and a CLI flag (the
//! contract in the brief), parsed once into typed values.

use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Settings shared by every subcommand.
#[derive(Args, Debug, Clone)]
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
