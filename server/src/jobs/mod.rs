//! Background jobs: apalis workers over apalis's own tables in the ledger's database,
//! sharing the ledger's connection pool, so several server replicas on one PostgreSQL
//! share the work.
//!
//! This module is the one place that builds job storage and the monitor: a job
//! module asks [`Jobs::queue`] for a typed queue and registers its workers on
//! [`Jobs`] (see `alerts.rs`); `startup.rs` builds `Jobs`, lets each job module
//! register, and starts the monitor with the server.
//!
//! Facts this relies on (see the stack notes):
//! - apalis's migrations run after SeaORM's ([`migrate`]); on SQLite through
//!   `SqliteStorage::migrations()`, because `setup()` would also switch the shared
//!   connections to `synchronous=OFF`.
//! - Every task gets `max_attempts` (the storage would otherwise re-fetch a failed
//!   job without backoff up to 25 times); retries back off exponentially with jitter
//!   in the worker ([`retry_policy`]).
//! - A SQLite worker sees a push only at its next poll: workers poll at
//!   [`JobSettings::poll`]. On PostgreSQL they are woken by apalis's pub/sub, and
//!   poll every [`JobSettings::fallback`] for the pushes it never announces
//!   ([`pg_backend`]). Both poll with [`Ticks`], not apalis's interval strategy, which
//!   can leave a worker asleep until its next heartbeat.
//! - Worker names are unique per process (a restart under the same name within the
//!   heartbeat is refused); the monitor's event hook logs worker errors, because
//!   `run_with_signal` does not report a worker that died.

pub mod alerts;
pub mod anomalies;
pub mod notify;
pub mod prices;
pub mod sync;

use anyhow::Context;
use apalis::layers::retry::backoff::{ExponentialBackoff, ExponentialBackoffMaker, MakeBackoff};
use apalis::layers::retry::{BackoffRetryPolicy, HasherRng, RetryPolicy};
use apalis::prelude::{
    BackendExt, Event, Monitor, PollSnapshot, PollStrategy, PollWith, Strategy, TaskBuilder,
    TaskSink,
};
use apalis_postgres::{PostgresStorage, Pubsub};
use apalis_sqlite::SqliteStorage;
use sea_orm::{DatabaseConnection, DbBackend};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::task::Poll;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How jobs retry and poll.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// Retries after the first attempt.
    pub retries: u32,
    /// The first backoff; each retry doubles it, plus up to 50% jitter.
    pub backoff: Duration,
    /// The longest backoff.
    pub backoff_max: Duration,
    /// How often a SQLite worker looks for new jobs.
    pub poll: Duration,
}

impl JobSettings {
    /// Attempts in all (`max_attempts` of each task).
    pub fn attempts(&self) -> u32 {
        self.retries.saturating_add(1)
    }

    /// Ten polls, from 1 to 30 seconds: a SQLite worker's heartbeat, and how often a
    /// PostgreSQL worker looks for jobs when no notification woke it
    /// ([`pg_backend`]).
    pub fn fallback(&self) -> Duration {
        self.poll
            .saturating_mul(10)
            .clamp(Duration::from_secs(1), Duration::from_secs(30))
    }
}

/// Wakes a worker every period, arming the next tick as one fires.
///
/// apalis's `IntervalStrategy` replaces a fired timer with a new one but polls it,
/// which is what arms it, only on its next call. A worker calls the strategy and then
/// fetches; when that fetch completes within the same poll (under load a query's
/// answer can be there by its first poll), nothing is left to wake the worker but its
/// heartbeat, 30 s later. Every worker of a process stalled that way at once: the e2e
/// test `a_run_nobody_announced_is_still_taken` failed 3 times in 8 under `stress`.
#[derive(Debug)]
pub struct Ticks {
    period: Duration,
    interval: tokio::time::Interval,
}

impl Ticks {
    /// Ticks every `period`, the first at once. Inside a Tokio runtime.
    pub fn every(period: Duration) -> Ticks {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ticks { period, interval }
    }
}

impl Clone for Ticks {
    fn clone(&self) -> Self {
        Ticks::every(self.period)
    }
}

impl PollStrategy for Ticks {
    fn poll_drive(
        &mut self,
        cx: &mut std::task::Context<'_>,
        _: &PollSnapshot,
    ) -> Poll<Option<()>> {
        let mut fired = false;
        // Until it is pending: that poll registers this task for the next tick.
        while self.interval.poll_tick(cx).is_ready() {
            fired = true;
        }
        if fired {
            Poll::Ready(Some(()))
        } else {
            Poll::Pending
        }
    }
}

/// A SQLite worker's backend: polls every `poll` ([`Ticks`]).
pub fn sqlite_backend<T>(
    storage: &SqliteStorage<T>,
    poll: Duration,
) -> PollWith<SqliteStorage<T>, Ticks> {
    storage.clone().poll_with_strategy(Ticks::every(poll))
}

/// A PostgreSQL worker's backend: woken by apalis's pub/sub on every push, and every
/// `fallback` besides. apalis's listener learns of pushes with `LISTEN` on a
/// connection of its own, opened when the worker first polls: a push made before that,
/// or while the connection is re-established, is never announced, and a listener that
/// failed to connect stays closed without a word. With pub/sub alone such a job waited
/// for the worker's next heartbeat (30 s), and a scheduled price sync missed a test's
/// 30-second deadline that way. A new listener per call (each worker its own).
pub fn pg_backend<T>(
    storage: &PostgresStorage<T>,
    fallback: Duration,
) -> PollWith<PostgresStorage<T>, Strategy> {
    let pubsub = Pubsub::new(storage.pool().clone(), storage.config().queue.to_string());
    // The interval first: a strategy that is ready hides the ones after it from this
    // poll, and a closed listener is always ready.
    storage
        .clone()
        .poll_with_strategy(Strategy::new().apply(Ticks::every(fallback)).stream(pubsub))
}

/// Creates apalis's tables (after SeaORM's migrations; idempotent).
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    match db.get_database_backend() {
        DbBackend::Postgres => PostgresStorage::setup(db.get_postgres_connection_pool())
            .await
            .context("creating the job queue tables (apalis, PostgreSQL)"),
        _ => SqliteStorage::migrations()
            .run(db.get_sqlite_connection_pool())
            .await
            .context("creating the job queue tables (apalis, SQLite)"),
    }
}

/// A typed queue in apalis's storage on the shared pool.
pub enum Queue<T> {
    /// apalis-sqlite.
    Sqlite(SqliteStorage<T>),
    /// apalis-postgres.
    Postgres(PostgresStorage<T>),
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        match self {
            Queue::Sqlite(s) => Queue::Sqlite(s.clone()),
            Queue::Postgres(s) => Queue::Postgres(s.clone()),
        }
    }
}

/// Whether a push queued a job or found it queued already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// A new job.
    Queued,
    /// A job with the same idempotency key exists.
    AlreadyQueued,
}

impl<T> Queue<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + Unpin + 'static,
{
    /// Pushes a job that runs at most `attempts` times; `key` makes the push
    /// idempotent across processes (the storage's unique index on it decides).
    pub async fn push(&self, args: T, key: &str, attempts: u32) -> anyhow::Result<Pushed> {
        let task = TaskBuilder::new(args)
            .idempotency_key(key)
            .max_attempts(attempts as usize)
            .build();
        match self.clone() {
            // SQLite ignores a duplicate key (`ON CONFLICT DO NOTHING`).
            Queue::Sqlite(mut s) => s
                .push_task(task)
                .await
                .map(|_| Pushed::Queued)
                .context("queueing a job (SQLite)"),
            Queue::Postgres(mut s) => match s.push_task(task).await {
                Ok(()) => Ok(Pushed::Queued),
                // PostgreSQL raises a unique violation on the idempotency index.
                Err(e) if is_unique_violation(&e) => Ok(Pushed::AlreadyQueued),
                Err(e) => Err(anyhow::anyhow!("{e}")).context("queueing a job (PostgreSQL)"),
            },
        }
    }
}

fn is_unique_violation(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(err) = source {
        if let Some(sqlx) = err.downcast_ref::<sea_orm::sqlx::Error>()
            && let sea_orm::sqlx::Error::Database(db) = sqlx
            && db.is_unique_violation()
        {
            return true;
        }
        if let Some(apalis_postgres::Error::Database(sea_orm::sqlx::Error::Database(db))) =
            err.downcast_ref::<apalis_postgres::Error>()
            && db.is_unique_violation()
        {
            return true;
        }
        source = err.source();
    }
    e.to_string()
        .contains("duplicate key value violates unique constraint")
}

/// How long a SQLite worker may send no heartbeat before its running jobs are handed
/// to another worker (apalis's own default, two 30 s heartbeats, as on PostgreSQL).
const ORPHANED: Duration = Duration::from_secs(60);

/// The retry policy of every worker: `retries` retries with exponential backoff and
/// jitter.
pub fn retry_policy(settings: &JobSettings) -> BackoffRetryPolicy<ExponentialBackoff> {
    let max = settings
        .backoff_max
        .max(settings.backoff)
        .max(Duration::from_millis(1));
    let backoff = ExponentialBackoffMaker::new(settings.backoff, max, 0.5, HasherRng::default())
        .map(|mut m| m.make_backoff())
        .unwrap_or_else(|_| ExponentialBackoffMaker::default().make_backoff());
    RetryPolicy::retries(settings.retries as usize).with_backoff(backoff)
}

/// The job system of one process, being assembled.
pub struct Jobs {
    db: DatabaseConnection,
    settings: JobSettings,
    monitor: Option<Monitor>,
    instance: String,
    workers: usize,
}

impl Jobs {
    /// Starts assembling; workers are registered by the job modules.
    pub fn new(db: DatabaseConnection, settings: JobSettings) -> Jobs {
        let monitor = Monitor::new().on_event(|ctx, event| match event {
            Event::Error(e) => {
                tracing::error!(worker = ctx.name(), error = %e, "a background job failed");
            }
            Event::Stop => tracing::debug!(worker = ctx.name(), "worker stopped"),
            _ => {}
        });
        Jobs {
            db,
            settings,
            monitor: Some(monitor),
            instance: format!("{}-{:08x}", std::process::id(), rand::random::<u32>()),
            workers: 0,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &JobSettings {
        &self.settings
    }

    /// A typed queue named `name` on the shared pool.
    pub fn queue<T>(&self, name: &str) -> Queue<T> {
        match self.db.get_database_backend() {
            DbBackend::Postgres => Queue::Postgres(
                PostgresStorage::new(self.db.get_postgres_connection_pool())
                    .with_config(apalis_postgres::Config::default().queue(name)),
            ),
            // A SQLite worker's poll stream was seen to go quiet until its next
            // heartbeat (30 s by default) under write contention: a heartbeat of ten
            // polls (1 to 30 s) bounds that stall. A worker is declared dead (and its
            // running jobs handed to another) after `missed_heartbeats` heartbeats,
            // compared in whole seconds: with the default two, a 1 s heartbeat made a
            // live worker that waited a second for the write lock look dead, and its
            // job ran twice at once (an alert posted twice). Dead means no heartbeat
            // for ORPHANED, whatever the interval.
            _ => {
                let heartbeat = self.settings.fallback();
                let missed = ORPHANED
                    .as_secs()
                    .div_ceil(heartbeat.as_secs().max(1))
                    .max(2);
                Queue::Sqlite(
                    SqliteStorage::new(self.db.get_sqlite_connection_pool()).with_config(
                        apalis_sqlite::Config::default()
                            .queue(name)
                            .heartbeat_interval(heartbeat)
                            .missed_heartbeats(usize::try_from(missed).unwrap_or(usize::MAX)),
                    ),
                )
            }
        }
    }

    /// A worker name unique to this process.
    pub fn worker_name(&self, queue: &str) -> String {
        format!("{queue}@{}", self.instance)
    }

    /// Adds workers to the monitor.
    pub fn register(&mut self, add: impl FnOnce(Monitor) -> Monitor) {
        self.monitor = self.monitor.take().map(add);
        self.workers += 1;
    }

    /// Starts the monitor; the handle stops it.
    pub fn start(mut self) -> JobsHandle {
        let (stop, stopped) = oneshot::channel::<()>();
        let monitor = self.monitor.take();
        let workers = self.workers;
        let task = tokio::spawn(async move {
            let Some(monitor) = monitor else { return };
            if workers == 0 {
                return;
            }
            let signal = async move {
                let _ = stopped.await;
                Ok(())
            };
            if let Err(e) = monitor
                .shutdown_timeout(Duration::from_secs(10))
                .run_with_signal(signal)
                .await
            {
                tracing::error!(error = %e, "the job monitor stopped with an error");
            }
        });
        JobsHandle {
            stop: Some(stop),
            task: Some(task),
        }
    }
}

/// A running job system.
pub struct JobsHandle {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl JobsHandle {
    /// Stops the workers, letting running jobs finish (up to a timeout).
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
        }
    }
}

impl Drop for JobsHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
