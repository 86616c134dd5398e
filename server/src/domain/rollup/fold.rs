//! The folder: adds unfolded events (`usage_unfolded`, written by ingest) to the
//! rollups and sketches after their commit, in batches.
//!
//! Why this is exact:
//! - An event's id enters `usage_unfolded` in the transaction that inserts it, and
//!   leaves it in the transaction that adds it to every rollup and sketch. So at any
//!   moment, in any snapshot, each event is counted by the rollups or listed as
//!   unfolded, never both and never neither; readers add the unfolded events of a
//!   rollup's range in the same statement (`analytics/tables.rs`).
//! - One fold runs at a time per ledger, also across processes: each holds the fold
//!   lock (PostgreSQL: the transaction-level advisory lock [`FOLD_LOCK`]; SQLite: the
//!   write lock of its `IMMEDIATE` transaction). Re-pricing takes the same lock before
//!   it touches the rollups, so it knows which of its events are folded.
//! - The folder takes whatever ids are committed, in any order: it does not depend on
//!   commit order, so a slow ingest transaction with a small id is folded when it
//!   commits, never skipped.
//!
//! Why it is fast: a single `recordUsage` no longer upserts every rollup and sketch row
//! of its event (the rows every transaction of the day shares, whose row locks ordered
//! them); a fold of thousands of events sums them by key first, so a day's global row
//! is written once per fold.

use super::RollupHook;
use crate::domain::error::{Context, Error, Result};
use crate::domain::json_rows::{self, Kind};
use crate::domain::usage::UsageEvent;
use crate::entity::usage_event;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait, Value,
};
use serde_json::Value as Json;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// The PostgreSQL advisory lock (one `bigint` key, "aisfold" in ASCII) a fold and a
/// re-pricing hold until their transaction ends.
pub const FOLD_LOCK: i64 = 0x0061_6973_666f_6c64;

/// Most events one fold transaction takes. On PostgreSQL 20,000: the more events a
/// fold sums by key, the fewer rows per event it upserts (the same session's ingest
/// bench: two clients' batches folded 4–6 s after the last response instead of 14–17 s
/// with 5,000). On SQLite 5,000, measured; a fold there holds the one write lock.
pub fn fold_batch_size(backend: DbBackend) -> usize {
    match backend {
        DbBackend::Sqlite => 5_000,
        _ => 20_000,
    }
}

/// How often the folder looks for unfolded events when nothing woke it: those of
/// another process on the same database, or left by a fold that failed.
const FOLD_EVERY: Duration = Duration::from_secs(1);

/// Takes the fold lock until the transaction ends (PostgreSQL; a SQLite write
/// transaction holds the database lock anyway).
pub(super) async fn lock(txn: &DatabaseTransaction) -> Result<()> {
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT pg_advisory_xact_lock({FOLD_LOCK})"),
        ))
        .await
        .context("taking the fold lock")?;
    }
    Ok(())
}

/// Lists new events as unfolded (inside their ingest transaction).
pub(super) async fn mark(txn: &DatabaseTransaction, ids: &[i64]) -> Result<()> {
    let rows = ids.iter().map(|&id| vec![Json::from(id)]).collect();
    for stmt in json_rows::insert(
        txn.get_database_backend(),
        "usage_unfolded (id)",
        &[Kind::Int],
        rows,
        "",
    )? {
        txn.execute_raw(stmt)
            .await
            .context("listing events as unfolded")?;
    }
    Ok(())
}

/// The ids read back from a `DELETE … RETURNING id`.
async fn deleted(txn: &DatabaseTransaction, stmt: Statement) -> Result<HashSet<i64>> {
    txn.query_all_raw(stmt)
        .await
        .context("taking unfolded events")?
        .iter()
        .map(|r| {
            r.try_get_by_index::<i64>(0)
                .context("reading an unfolded id")
        })
        .collect()
}

/// Takes those of `ids` that are unfolded off the list (under the fold lock) and
/// returns them: the caller now adds them to the rollups.
pub(super) async fn take(txn: &DatabaseTransaction, ids: &[i64]) -> Result<HashSet<i64>> {
    let backend = txn.get_database_backend();
    let list = Value::from(Json::from(ids.to_vec()).to_string());
    let sql = match backend {
        DbBackend::Postgres => {
            "DELETE FROM usage_unfolded WHERE id IN (SELECT (value)::int8 FROM jsonb_array_elements_text($1::jsonb)) RETURNING id"
        }
        _ => {
            "DELETE FROM usage_unfolded WHERE id IN (SELECT value FROM json_each(?1)) RETURNING id"
        }
    };
    deleted(txn, Statement::from_sql_and_values(backend, sql, [list])).await
}

/// Folds one batch of at most [`fold_batch_size`] unfolded events in one transaction;
/// returns how many it folded (0: none was left).
async fn fold_batch(db: &DatabaseConnection, hook: &RollupHook) -> Result<usize> {
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await
        .context("starting a fold")?;
    lock(&txn).await?;
    let backend = txn.get_database_backend();
    let ids = deleted(
        &txn,
        Statement::from_string(
            backend,
            format!(
                "DELETE FROM usage_unfolded WHERE id IN (SELECT id FROM usage_unfolded ORDER BY id LIMIT {}) RETURNING id",
                fold_batch_size(backend)
            ),
        ),
    )
    .await?;
    if ids.is_empty() {
        txn.commit().await.context("ending a fold")?;
        return Ok(0);
    }
    let events = usage_event::Entity::find()
        .filter(usage_event::Column::Id.is_in(ids.iter().copied()))
        .all(&txn)
        .await
        .context("reading unfolded events")?
        .into_iter()
        .map(UsageEvent::try_from)
        .collect::<Result<Vec<_>>>()?;
    if events.len() != ids.len() {
        return Err(Error::internal(
            "folding events",
            anyhow::anyhow!(
                "{} unfolded ids but {} such events",
                ids.len(),
                events.len()
            ),
        ));
    }
    hook.fold_events(&txn, &events).await?;
    txn.commit().await.context("committing a fold")?;
    Ok(events.len())
}

/// Folds every unfolded event committed by now; returns how many. On SQLite it holds
/// `gate` (the ingest writer's, see `IngestWriter::write_gate`) for each batch.
pub async fn fold_all(
    db: &DatabaseConnection,
    hook: &RollupHook,
    gate: &tokio::sync::Mutex<()>,
) -> Result<usize> {
    let mut total = 0;
    loop {
        let _turn = match db.get_database_backend() {
            DbBackend::Sqlite => Some(gate.lock().await),
            _ => None,
        };
        match fold_batch(db, hook).await? {
            0 => return Ok(total),
            n => total += n,
        }
    }
}

/// Runs the folder of this process. With no `interval` it folds whenever an ingest of
/// this process commits, and every [`FOLD_EVERY`] otherwise; with one, every
/// `interval`.
pub fn spawn(
    db: DatabaseConnection,
    hook: Arc<RollupHook>,
    interval: Option<Duration>,
    gate: Arc<tokio::sync::Mutex<()>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let woken = hook.unfolded.clone();
        loop {
            match interval {
                Some(wait) => tokio::time::sleep(wait).await,
                None => tokio::select! {
                    () = woken.notified() => {}
                    () = tokio::time::sleep(FOLD_EVERY) => {}
                },
            }
            if let Err(e) = fold_all(&db, &hook, &gate).await {
                tracing::warn!(error = %e, "could not fold events into the rollups; retrying");
                tokio::time::sleep(FOLD_EVERY).await;
            }
        }
    })
}
