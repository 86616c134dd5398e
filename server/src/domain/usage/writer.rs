//! The writers of usage events: tasks that take priced events from the requests and
//! store them, grouping concurrent requests into multi-row transactions (group
//! commit).
//!
//! Why writer tasks: SQLite allows one writer at a time, and a request that waits on
//! SQLite's busy handler sleeps in milliseconds. Funnelling event writes through one
//! task turns 32 concurrent single-event requests into a few multi-row transactions,
//! which is both faster and fairer. PostgreSQL gets the same grouping, which saves
//! commits, and its grouping writer is pipelined (see `run_pipelined_writer`). There
//! large requests (from [`BULK_ROWS`] events) also have writers of their own that run
//! side by side (`AISPEND_INGEST_WRITERS`, default [`DEFAULT_PG_WRITERS`]): ingest
//! transactions take the ledger lock shared (budget changes take it exclusive), so one
//! batch's round trips and server work overlap another's instead of waiting for them.

use super::UsageEvent;
use super::ingest::{
    Hooks, LedgerChange, PricedUsage, Recorded, apply_hooks, committed_hooks, insert_events,
};
use crate::domain::error::{Context, Error, Result};
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbBackend};
use std::sync::Arc;
use tokio::sync::{Mutex, broadcast, mpsc, oneshot};

struct Job {
    rows: Vec<PricedUsage>,
    reply: oneshot::Sender<Result<Vec<Recorded>>>,
}

/// Most rows one group transaction takes from the queue.
const GROUP_ROWS: usize = 20_000;

/// Writers of large requests per process on PostgreSQL unless configured.
pub const DEFAULT_PG_WRITERS: usize = 4;

/// A request of at least this many events is a group of its own already: on
/// PostgreSQL it goes to the bulk writers, which run side by side. Smaller ones go to
/// the one writer that groups them (several writers would split the queue into
/// smaller groups, more transactions for the same events: measured slower).
pub const BULK_ROWS: usize = 256;

/// The writers of usage events in this process (see the module docs).
#[derive(Clone)]
pub struct IngestWriter {
    jobs: mpsc::Sender<Job>,
    /// PostgreSQL: the bulk writers' queue.
    bulk: Option<mpsc::Sender<Job>>,
    stored: broadcast::Sender<Arc<[UsageEvent]>>,
    /// SQLite: held by the grouping writer for each transaction and by the rollup
    /// folder for each fold, so the two take the one write lock in turn (first come,
    /// first served) instead of polling for it in SQLite's busy handler.
    gate: Arc<Mutex<()>>,
}

impl IngestWriter {
    /// Starts the writer tasks on the current runtime: one that groups requests and,
    /// on PostgreSQL, `pg_writers` more for requests of [`BULK_ROWS`] or more.
    pub fn start(db: DatabaseConnection, hooks: Hooks, pg_writers: usize) -> IngestWriter {
        let (stored, _) = broadcast::channel(1024);
        let gate = Arc::new(Mutex::new(()));
        let postgres = db.get_database_backend() == DbBackend::Postgres;
        let lane = |writers: usize, pipelined: bool| {
            let (jobs, rx) = mpsc::channel(1024);
            let lane = Lane {
                db: db.clone(),
                hooks: hooks.clone(),
                rx: Arc::new(Mutex::new(rx)),
                stored: stored.clone(),
                gate: gate.clone(),
            };
            for _ in 0..writers {
                if pipelined {
                    tokio::spawn(run_pipelined_writer(lane.clone()));
                } else {
                    tokio::spawn(run_writer(lane.clone()));
                }
            }
            jobs
        };
        let jobs = lane(1, postgres);
        let bulk = (postgres && pg_writers > 0).then(|| lane(pg_writers, false));
        IngestWriter {
            jobs,
            bulk,
            stored,
            gate,
        }
    }

    /// The SQLite write gate (see the field): whoever else writes often in this
    /// process (the rollup folder) holds it for each transaction.
    pub fn write_gate(&self) -> Arc<Mutex<()>> {
        self.gate.clone()
    }

    /// Stores priced events; one call is one atomic unit.
    pub async fn write(&self, rows: Vec<PricedUsage>) -> Result<Vec<Recorded>> {
        let (reply, answer) = oneshot::channel();
        let queue = match &self.bulk {
            Some(bulk) if rows.len() >= BULK_ROWS => bulk,
            _ => &self.jobs,
        };
        queue.send(Job { rows, reply }).await.map_err(|_| {
            Error::internal(
                "queueing usage events",
                anyhow::anyhow!("the ingest writer has stopped"),
            )
        })?;
        answer.await.map_err(|_| {
            Error::internal(
                "waiting for usage events to be stored",
                anyhow::anyhow!("the ingest writer dropped the request"),
            )
        })?
    }

    /// Newly stored (not duplicate) events, after their transaction committed.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<[UsageEvent]>> {
        self.stored.subscribe()
    }
}

/// On SQLite, waits for `gate` (see [`IngestWriter::write_gate`]) and holds it until
/// the guard drops; on PostgreSQL, which runs writers side by side, takes nothing.
pub async fn sqlite_turn<'a>(
    db: &DatabaseConnection,
    gate: &'a Mutex<()>,
) -> Option<tokio::sync::MutexGuard<'a, ()>> {
    match db.get_database_backend() {
        DbBackend::Sqlite => Some(gate.lock().await),
        _ => None,
    }
}

/// A group's transaction with its events written and the hooks applied, not yet
/// committed.
struct Prepared {
    txn: DatabaseTransaction,
    recorded: Vec<Recorded>,
    fresh: Vec<UsageEvent>,
}

async fn prepare_group(
    db: &DatabaseConnection,
    hooks: &Hooks,
    rows: &[&PricedUsage],
) -> Result<Prepared> {
    let txn = crate::db::begin_write(db)
        .await
        .context("starting an ingest transaction")?;
    if rows.len() >= BULK_ROWS {
        crate::db::generic_plans(&txn)
            .await
            .context("starting an ingest transaction")?;
    }
    let recorded = insert_events(&txn, rows).await?;
    let fresh: Vec<UsageEvent> = recorded
        .iter()
        .filter(|r| !r.duplicate)
        .map(|r| r.event.clone())
        .collect();
    if !fresh.is_empty() {
        apply_hooks(hooks, &txn, LedgerChange::Inserted(&fresh)).await?;
    }
    Ok(Prepared {
        txn,
        recorded,
        fresh,
    })
}

async fn commit_group(hooks: &Hooks, prepared: Prepared) -> Result<Vec<Recorded>> {
    let Prepared {
        txn,
        recorded,
        fresh,
    } = prepared;
    txn.commit().await.context("committing usage events")?;
    if !fresh.is_empty() {
        committed_hooks(hooks, LedgerChange::Inserted(&fresh));
    }
    Ok(recorded)
}

async fn write_group(
    db: &DatabaseConnection,
    hooks: &Hooks,
    rows: &[&PricedUsage],
    gate: &Mutex<()>,
) -> Result<Vec<Recorded>> {
    let _turn = sqlite_turn(db, gate).await;
    let prepared = prepare_group(db, hooks, rows).await?;
    commit_group(hooks, prepared).await
}

/// Takes the next group: the first job to arrive and whatever queued behind it.
async fn next_group(rx: &Mutex<mpsc::Receiver<Job>>) -> Option<Vec<Job>> {
    let mut rx = rx.lock().await;
    let first = rx.recv().await?;
    let mut total = first.rows.len();
    let mut jobs = vec![first];
    while total < GROUP_ROWS {
        match rx.try_recv() {
            Ok(job) => {
                total += job.rows.len();
                jobs.push(job);
            }
            Err(_) => break,
        }
    }
    Some(jobs)
}

/// What a writer task works with.
#[derive(Clone)]
struct Lane {
    db: DatabaseConnection,
    hooks: Hooks,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    stored: broadcast::Sender<Arc<[UsageEvent]>>,
    gate: Arc<Mutex<()>>,
}

/// Writes groups one after the other, each committed before the next begins.
async fn run_writer(lane: Lane) {
    while let Some(jobs) = next_group(&lane.rx).await {
        let all: Vec<&PricedUsage> = jobs.iter().flat_map(|j| j.rows.iter()).collect();
        let result = write_group(&lane.db, &lane.hooks, &all, &lane.gate).await;
        drop(all);
        settle(&lane, jobs, result).await;
    }
}

/// PostgreSQL's grouping writer: while one group's `COMMIT` waits for the WAL to be
/// flushed, the next group is already written in a transaction of its own (the
/// `COMMIT` took 0.3–0.5 ms of a single-call group's 3 ms in PostgreSQL's log).
/// Commits stay in order: a group commits only after the one before it has, so live
/// updates and the folder see the groups as they were taken; at most one commit is in
/// flight.
async fn run_pipelined_writer(lane: Lane) {
    let mut in_flight: Option<tokio::task::JoinHandle<()>> = None;
    while let Some(jobs) = next_group(&lane.rx).await {
        let all: Vec<&PricedUsage> = jobs.iter().flat_map(|j| j.rows.iter()).collect();
        let prepared = prepare_group(&lane.db, &lane.hooks, &all).await;
        drop(all);
        committed(in_flight.take()).await;
        match prepared {
            Ok(prepared) => {
                let lane = lane.clone();
                in_flight = Some(tokio::spawn(async move {
                    let result = commit_group(&lane.hooks, prepared).await;
                    settle(&lane, jobs, result).await;
                }));
            }
            Err(e) => settle(&lane, jobs, Err(e)).await,
        }
    }
    committed(in_flight).await;
}

/// Waits for the commit task in flight, if any.
async fn committed(task: Option<tokio::task::JoinHandle<()>>) {
    if let Some(task) = task
        && let Err(e) = task.await
    {
        tracing::error!(error = %e, "an ingest commit task failed");
    }
}

/// Answers a group's requests with what became of it.
async fn settle(lane: &Lane, mut jobs: Vec<Job>, result: Result<Vec<Recorded>>) {
    match result {
        Ok(mut recorded) => {
            publish(&lane.stored, &recorded);
            for job in jobs.into_iter().rev() {
                let mine = recorded.split_off(recorded.len() - job.rows.len());
                let _ = job.reply.send(Ok(mine));
            }
        }
        Err(e @ Error::Unavailable { .. }) => {
            // The database is unreachable: retrying each request alone would only
            // queue them behind more acquire timeouts. Fail this group and every
            // request that arrived while it waited, so none waits past one
            // acquire timeout; they may all be retried.
            let reason = e.to_string();
            let _ = jobs.remove(0).reply.send(Err(e));
            // Not `lock().await`: another writer of the lane may hold the queue
            // while it waits for a job, and these answers must not wait for one.
            // That writer then takes what queued and fails it the same way.
            if let Ok(mut rx) = lane.rx.try_lock() {
                while let Ok(job) = rx.try_recv() {
                    jobs.push(job);
                }
            }
            for job in jobs {
                let _ = job.reply.send(Err(Error::Unavailable {
                    context: "storing usage events",
                    source: anyhow::anyhow!(reason.clone()),
                }));
            }
        }
        Err(e) if jobs.len() == 1 => {
            let _ = jobs.remove(0).reply.send(Err(e));
        }
        Err(e) => {
            tracing::warn!(error = %e, jobs = jobs.len(), "group ingest failed; retrying each request alone");
            for job in jobs {
                let rows: Vec<&PricedUsage> = job.rows.iter().collect();
                let result = write_group(&lane.db, &lane.hooks, &rows, &lane.gate).await;
                if let Ok(recorded) = &result {
                    publish(&lane.stored, recorded);
                }
                let _ = job.reply.send(result);
            }
        }
    }
}

fn publish(stored: &broadcast::Sender<Arc<[UsageEvent]>>, recorded: &[Recorded]) {
    if stored.receiver_count() == 0 {
        return;
    }
    let fresh: Arc<[UsageEvent]> = recorded
        .iter()
        .filter(|r| !r.duplicate)
        .map(|r| r.event.clone())
        .collect();
    if !fresh.is_empty() {
        let _ = stored.send(fresh);
    }
}
