//! Process-wide state shared by every transport.

use crate::domain::auth::Authenticator;
use crate::domain::budget::Budgets;
use crate::domain::keyring::Keyring;
use crate::domain::live::LiveHub;
use crate::domain::price::PriceCache;
use crate::domain::usage::ingest::Ledger;
use crate::plugins::PluginHost;
use sea_orm::DatabaseConnection;
use std::sync::Arc;

/// Cheap to clone; everything inside is shared.
#[derive(Clone)]
pub struct AppState {
    /// The connection pool.
    pub db: DatabaseConnection,
    /// `sqlite` or `postgres`, for `/healthz`.
    pub db_kind: &'static str,
    /// Resolves bearer tokens.
    pub auth: Arc<Authenticator>,
    /// The price book.
    pub prices: Arc<PriceCache>,
    /// The recording service.
    pub ledger: Arc<Ledger>,
    /// The provider plugins.
    pub plugins: Arc<PluginHost>,
    /// The master key(s) that seal credentials.
    pub keyring: Arc<Keyring>,
    /// Budgets (and the cache ingest matches events against).
    pub budgets: Arc<Budgets>,
    /// Live updates.
    pub live: Arc<LiveHub>,
    /// Price sources and their sync.
    pub price_sync: Arc<crate::domain::price::sources::PriceSync>,
    /// Wakes this process's sync dispatcher (a run was requested).
    pub sync_wake: Arc<tokio::sync::Notify>,
    /// Scheduler passes this process has completed (each looked for due syncs and
    /// inserted what was due): lets a test wait for passes instead of sleeping.
    pub scheduler_passes: Arc<std::sync::atomic::AtomicU64>,
    /// This server's Prometheus metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Sends to alert destinations (`testNotificationChannel`).
    pub notifier: Arc<crate::jobs::notify::Notifier>,
    /// The operator's allowlist (`AISPEND_PLUGIN_ALLOW_HOSTS`), for checking URLs.
    pub allow: crate::domain::egress::OperatorAllowList,
}
