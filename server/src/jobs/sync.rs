//! Sync jobs: the worker that executes sync runs, the dispatcher that hands queued
//! runs to it, and the scheduler that creates scheduled runs.
//!
//! The run row (`sync_runs`) is the durable record and the job only carries its id,
//! for the same reason alerts use an outbox: apalis pushes through its own connection,
//! never inside our transaction. The dispatcher pushes every queued run under its
//! dispatch generation as the idempotency key (pushing twice queues once, across
//! processes), and re-queues runs whose worker stopped refreshing the heartbeat (a
//! kill -9) under a new generation. See `domain/sync.rs` for the claim, the fencing
//! and the retry rules.

use super::{Jobs, Queue, retry_policy};
use crate::domain::ids::SyncRunId;
use crate::domain::sync::{self, Executed, SyncEngine};
use crate::domain::time;
use apalis::prelude::{AbortError, BoxDynError, Data, WorkerBuilder, WorkerBuilderExt};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::Notify;

/// The queue of sync runs.
pub const QUEUE: &str = "aispend.sync-runs";

/// The job: execute one sync run (from where it stands).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSync {
    /// The run.
    pub run_id: String,
}

/// What the workers share.
pub struct SyncContext {
    /// Database, plugins, keyring and settings.
    pub engine: SyncEngine,
    /// Wakes the dispatcher (a run ended: the next one of its credential may start).
    pub wake: Arc<Notify>,
    /// Completed scheduler passes (successful or not), counted after each.
    pub scheduler_passes: Arc<std::sync::atomic::AtomicU64>,
    /// Counts finished runs.
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// Registers `workers` sync workers (each runs one run at a time) and returns the
/// queue the dispatcher pushes to.
pub fn register(jobs: &mut Jobs, ctx: Arc<SyncContext>, workers: usize) -> Queue<RunSync> {
    let queue = jobs.queue::<RunSync>(QUEUE);
    let policy = retry_policy(jobs.settings());
    let poll = jobs.settings().poll;
    for i in 0..workers.max(1) {
        let name = format!("{}#{i}", jobs.worker_name(QUEUE));
        let ctx = ctx.clone();
        let policy = policy.clone();
        match queue.clone() {
            Queue::Sqlite(storage) => {
                jobs.register(move |m| {
                    m.register(move |_| {
                        WorkerBuilder::new(name.clone())
                            .backend(super::sqlite_backend(&storage, poll))
                            .data(ctx.clone())
                            .retry(policy.clone())
                            .build(run)
                    })
                });
            }
            Queue::Postgres(storage) => {
                let fallback = jobs.settings().fallback();
                jobs.register(move |m| {
                    m.register(move |_| {
                        WorkerBuilder::new(name.clone())
                            .backend(super::pg_backend(&storage, fallback))
                            .data(ctx.clone())
                            .retry(policy.clone())
                            .build(run)
                    })
                });
            }
        }
    }
    queue
}

/// The worker's handler. Provider failures are handled inside the run (its retry
/// rules); only a failure to read or write our own state is retried by the job.
async fn run(job: RunSync, ctx: Data<Arc<SyncContext>>) -> Result<(), BoxDynError> {
    let Ok(id) = job.run_id.parse::<SyncRunId>() else {
        return Err(Box::new(AbortError::new(format!(
            "`{}` is not a sync run id",
            job.run_id
        ))));
    };
    let e = &ctx.engine;
    let outcome = sync::execute(&e.db, e.fetcher.as_ref(), &e.keyring, &e.settings, id).await;
    match outcome {
        Ok(Executed::Finished(run)) => {
            ctx.metrics.sync_run(
                run.provider.as_str(),
                &run.status.as_str().to_ascii_lowercase(),
            );
            ctx.wake.notify_one();
            Ok(())
        }
        Ok(Executed::LostLease) => {
            ctx.wake.notify_one();
            Ok(())
        }
        Ok(Executed::Busy) | Ok(Executed::NotClaimed) => Ok(()),
        Err(err) => {
            tracing::error!(run = %id, error = ?err, "a sync run could not read or write its state");
            Err(format!("sync run {id}: {err}").into())
        }
    }
}

/// Runs the dispatcher (every process) and, when enabled, the scheduler, until the
/// process ends.
pub fn spawn(
    ctx: Arc<SyncContext>,
    queue: Queue<RunSync>,
    attempts: u32,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let dispatcher_ctx = ctx.clone();
    tasks.push(tokio::spawn(async move {
        let ctx = dispatcher_ctx;
        loop {
            if let Err(e) = dispatch(&ctx, &queue, attempts).await {
                tracing::warn!(error = %e, "could not dispatch sync runs; will retry");
            }
            tokio::select! {
                _ = ctx.wake.notified() => {}
                _ = tokio::time::sleep(ctx.engine.settings.sweep) => {}
            }
        }
    }));
    if ctx.engine.settings.scheduler {
        tasks.push(tokio::spawn(async move {
            loop {
                match sync::schedule_due(&ctx.engine.db, ctx.engine.fetcher.as_ref(), time::now())
                    .await
                {
                    Ok(runs) if !runs.is_empty() => ctx.wake.notify_one(),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = ?e, "could not schedule sync runs; will retry")
                    }
                }
                ctx.scheduler_passes
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(ctx.engine.settings.scheduler_tick).await;
            }
        }));
    }
    tasks
}

/// Re-queues abandoned runs, then pushes every undispatched run.
pub async fn dispatch(
    ctx: &SyncContext,
    queue: &Queue<RunSync>,
    attempts: u32,
) -> anyhow::Result<usize> {
    let e = &ctx.engine;
    sync::recover_abandoned(&e.db, e.settings.lease, time::now()).await?;
    sync::redispatch_stalled(&e.db, e.settings.redispatch_after, time::now()).await?;
    let mut pushed = 0;
    loop {
        let batch = sync::undispatched(&e.db, 100).await?;
        if batch.is_empty() {
            return Ok(pushed);
        }
        for d in batch {
            queue
                .push(
                    RunSync {
                        run_id: d.run.to_string(),
                    },
                    &d.job_key(),
                    attempts,
                )
                .await?;
            sync::mark_dispatched(&e.db, d).await?;
            pushed += 1;
        }
    }
}
