//! Connecting to and migrating the database.

use crate::config::DatabaseTarget;
use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use std::time::Duration;

/// How long a request waits for a pooled PostgreSQL connection (including opening a
/// new one) before it is answered `UNAVAILABLE`.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long opening one PostgreSQL connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a connection pool. SQLite runs in WAL mode with `synchronous=NORMAL` (durable
/// across application crashes; a power loss can lose the last commits), a busy timeout
/// and foreign keys on.
pub async fn connect(target: &DatabaseTarget) -> anyhow::Result<DatabaseConnection> {
    let mut options = match target {
        DatabaseTarget::Sqlite(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating the data directory {}", parent.display()))?;
            }
            let mut o = ConnectOptions::new(format!("sqlite://{}?mode=rwc", path.display()));
            o.max_connections(8)
                .min_connections(1)
                .map_sqlx_sqlite_opts(|opts| {
                    opts.journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Normal)
                        .busy_timeout(Duration::from_secs(10))
                        .foreign_keys(true)
                        .create_if_missing(true)
                });
            // A local file cannot go away like a server can: waiting for a connection
            // only means other writers hold them, so wait longer.
            o.connect_timeout(Duration::from_secs(10))
                .acquire_timeout(Duration::from_secs(30));
            o
        }
        DatabaseTarget::Postgres(url) => {
            let mut o = ConnectOptions::new(url.clone());
            // While the database is down a request fails within ACQUIRE_TIMEOUT with
            // `UNAVAILABLE` (503) instead of queueing; the pool reconnects by itself
            // once the database is back (each pooled connection is checked before it
            // is handed out).
            o.max_connections(16)
                .min_connections(1)
                .connect_timeout(CONNECT_TIMEOUT)
                .acquire_timeout(ACQUIRE_TIMEOUT);
            o
        }
    };
    options.sqlx_logging(false);
    Database::connect(options)
        .await
        .with_context(|| format!("connecting to the {} database", target.kind()))
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None)
        .await
        .context("migrating the database")
}
