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
use crate::domain::usage::writer::sqlite_turn;
use crate::entity::usage_event;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, Statement, Value,
};
use serde_json::Value as Json;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

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
        &[Kind::IntNotNull],
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

/// Folds one batch of at most `limit` ([`fold_batch_size`]) unfolded events in one
/// transaction; returns how many it folded (0: none was left).
async fn fold_batch(db: &DatabaseConnection, hook: &RollupHook, limit: usize) -> Result<usize> {
    let txn = crate::db::begin_write(db)
        .await
        .context("starting a fold")?;
    let started = Instant::now();
    lock(&txn).await?;
    crate::db::generic_plans(&txn)
        .await
        .context("planning a fold")?;
    let backend = txn.get_database_backend();
    let ids = deleted(
        &txn,
        Statement::from_string(
            backend,
            format!(
                "DELETE FROM usage_unfolded WHERE id IN (SELECT id FROM usage_unfolded ORDER BY id LIMIT {limit}) RETURNING id"
            ),
        ),
    )
    .await?;
    if ids.is_empty() {
        txn.commit().await.context("ending a fold")?;
        return Ok(0);
    }
    let taken = started.elapsed();
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
    let read = started.elapsed();
    hook.fold_events(&txn, &events).await?;
    let written = started.elapsed();
    txn.commit().await.context("committing a fold")?;
    tracing::debug!(
        events = events.len(),
        take_ms = taken.as_secs_f64() * 1e3,
        read_ms = (read - taken).as_secs_f64() * 1e3,
        write_ms = (written - read).as_secs_f64() * 1e3,
        commit_ms = (started.elapsed() - written).as_secs_f64() * 1e3,
        "folded"
    );
    Ok(events.len())
}

/// Folds every unfolded event committed by the time it starts; returns how many. On
/// SQLite it holds `gate` (the ingest writer's, see `IngestWriter::write_gate`) for
/// each batch.
pub async fn fold_all(
    db: &DatabaseConnection,
    hook: &RollupHook,
    gate: &tokio::sync::Mutex<()>,
) -> Result<usize> {
    let limit = fold_batch_size(db.get_database_backend());
    let mut total = 0;
    loop {
        let _turn = sqlite_turn(db, gate).await;
        // A batch short of full took every event listed when it started: those
        // listed since are the next call's, or this loop would chase a steady stream
        // of single calls in folds of a few events each.
        let n = fold_batch(db, hook, limit).await?;
        total += n;
        if n < limit {
            return Ok(total);
        }
    }
}

/// The folder rests this many times as long as its last fold took before it folds
/// again (a full batch waiting ends the rest sooner). Under a steady stream of single
/// calls its folds grow until it works about a quarter of the time, instead of folding
/// each commit's few events: a small fold finds few events per rollup row. Measured on
/// PostgreSQL (BENCHMARKS.md, "The folder rests"): folds of about 110 events upserted
/// 11.9 rows and took 391 µs per event, folds of about 5,300 events 2.7 rows and
/// 101 µs. An idle server's rest is a few milliseconds.
const REST_RATIO: u32 = 3;

/// The longest rest: how long an event can wait unfolded beyond the fold itself.
const MAX_REST: Duration = Duration::from_secs(2);

/// Runs the folder of this process. With no `interval` it folds when an ingest of
/// this process commits, paced by [`REST_RATIO`], and every [`FOLD_EVERY`] otherwise;
/// with one, every `interval`.
pub fn spawn(
    db: DatabaseConnection,
    hook: Arc<RollupHook>,
    interval: Option<Duration>,
    gate: Arc<tokio::sync::Mutex<()>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let woken = hook.unfolded.clone();
        let full = fold_batch_size(db.get_database_backend());
        let mut rested_from = Instant::now();
        let mut rest = Duration::ZERO;
        loop {
            match interval {
                Some(wait) => tokio::time::sleep(wait).await,
                None => {
                    tokio::select! {
                        () = woken.notified() => {}
                        () = tokio::time::sleep(FOLD_EVERY) => {}
                    }
                    let until = rested_from + rest;
                    while hook.pending.load(Ordering::Relaxed) < full {
                        tokio::select! {
                            () = woken.notified() => {}
                            () = tokio::time::sleep_until(until) => break,
                        }
                    }
                }
            }
            let started = Instant::now();
            hook.pending.store(0, Ordering::Relaxed);
            match fold_all(&db, &hook, &gate).await {
                Ok(_) => {
                    rested_from = Instant::now();
                    rest = (rested_from - started)
                        .saturating_mul(REST_RATIO)
                        .min(MAX_REST);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not fold events into the rollups; retrying");
                    tokio::time::sleep(FOLD_EVERY).await;
                }
            }
        }
    })
}
