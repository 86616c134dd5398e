//! Connecting to and migrating the database.

use crate::config::DatabaseTarget;
use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use std::time::Duration;

/// How long a request waits for a pooled PostgreSQL connection (including opening a
/// new one) before it is answered `UNAVAILABLE`.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long opening one PostgreSQL connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a serving process checkpoints SQLite's write-ahead log (see
/// [`spawn_checkpointer`]).
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// Opens a connection pool. SQLite runs in WAL mode with `synchronous=NORMAL` (durable
/// across application crashes; a power loss can lose the last commits), a busy timeout
/// and foreign keys on, and without automatic checkpoints: a serving process
/// checkpoints in the background ([`spawn_checkpointer`]); a short-lived one leaves it
/// to SQLite, which checkpoints when its last connection closes.
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
                        .pragma("wal_autocheckpoint", "0")
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

/// SQLite: checkpoints the write-ahead log every [`CHECKPOINT_EVERY`] on a connection
/// of its own until aborted. Why not SQLite's automatic checkpoint: it runs inside the
/// commit that fills the log past 1,000 pages, copying those pages into the database
/// file and syncing it, so every tenth or so ingest commit took milliseconds longer
/// and every request of its group waited. A `PASSIVE` checkpoint runs beside the
/// writer (it never takes the write lock) and copies what no reader still needs.
/// PostgreSQL: nothing to do (`None`).
pub fn spawn_checkpointer(db: &DatabaseConnection) -> Option<tokio::task::JoinHandle<()>> {
    if db.get_database_backend() != sea_orm::DbBackend::Sqlite {
        return None;
    }
    let pool = db.get_sqlite_connection_pool().clone();
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if pool.is_closed() {
                return;
            }
            if let Err(e) = sea_orm::sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                tracing::warn!(error = %e, "could not checkpoint the SQLite write-ahead log");
            }
        }
    }))
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None)
        .await
        .context("migrating the database")
}

/// PostgreSQL: the rest of `txn` runs its prepared statements with generic plans,
/// made once per connection, instead of planning each execution for its parameters
/// (the default for a statement's first five executions on a connection, and the
/// pool spreads executions over many connections). For the large array-parameter
/// statements of a fold or a batch that planning cost more than their parameters did:
/// see BENCHMARKS.md, "Generic plans for the fold and for batches". SQLite: nothing.
pub async fn generic_plans(txn: &DatabaseTransaction) -> Result<(), DbErr> {
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared("SET LOCAL plan_cache_mode = force_generic_plan")
            .await?;
    }
    Ok(())
}

/// Starts a transaction that writes. On SQLite it is `BEGIN IMMEDIATE`: it takes the
/// write lock first, where a deferred transaction that reads before it writes can
/// fail to upgrade its lock once another has written. On PostgreSQL, a plain `BEGIN`.
pub async fn begin_write<C: TransactionTrait>(db: &C) -> Result<C::Transaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}
