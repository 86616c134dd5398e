//! The price sync job: a scheduler in every process that queues a sync when one is
//! due, and a worker that runs it (see `domain/price/sources/`).
//!
//! A sync is due when a configured source was never attempted or not within the
//! interval (`AISPEND_PRICE_SYNC_INTERVAL_SECS`, a day by default); a sync marks its
//! sources attempted when it starts. The job's idempotency key names the interval it
//! belongs to, so several processes that find it due at once queue it once; the sync
//! itself is serialised in the database. A job still not started after a grace period
//! (a worker missed its notification) is queued again under the next key.
//! Without configured sources, or with the interval set to 0, nothing is scheduled.

use super::{Jobs, Queue, retry_policy};
use crate::domain::price::sources::PriceSync;
use crate::domain::time;
use apalis::prelude::{BoxDynError, Data, WorkerBuilder, WorkerBuilderExt};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The queue of price syncs.
pub const QUEUE: &str = "aispend.price-sync";

/// The job: sync every configured price source.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncPrices {
    /// The interval number (seconds since the epoch / interval) it was queued for.
    pub slot: i64,
}

/// Registers the worker and returns the queue the scheduler pushes to.
pub fn register(jobs: &mut Jobs, sync: Arc<PriceSync>) -> Queue<SyncPrices> {
    let queue = jobs.queue::<SyncPrices>(QUEUE);
    let policy = retry_policy(jobs.settings());
    let poll = jobs.settings().poll;
    let name = jobs.worker_name(QUEUE);
    match queue.clone() {
        Queue::Sqlite(storage) => {
            jobs.register(move |m| {
                m.register(move |_| {
                    WorkerBuilder::new(name.clone())
                        .backend(super::sqlite_backend(&storage, poll))
                        .data(sync.clone())
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
                        .data(sync.clone())
                        .retry(policy.clone())
                        .build(run)
                })
            });
        }
    }
    queue
}

async fn run(job: SyncPrices, sync: Data<Arc<PriceSync>>) -> Result<(), BoxDynError> {
    match sync.run().await {
        Ok(outcome) => {
            tracing::info!(
                slot = job.slot,
                repriced = outcome.repriced,
                "price sync finished"
            );
            Ok(())
        }
        Err(e) => {
            tracing::error!(slot = job.slot, error = ?e, "a price sync could not write");
            Err(format!("price sync: {e}").into())
        }
    }
}

/// Runs the scheduler until the process ends (nothing when no source is configured).
pub fn spawn(
    sync: Arc<PriceSync>,
    queue: Queue<SyncPrices>,
    attempts: u32,
    grace: Duration,
) -> Option<tokio::task::JoinHandle<()>> {
    let interval = sync.interval.filter(|_| !sync.specs.is_empty())?;
    let tick = (interval / 2).clamp(Duration::from_millis(50), Duration::from_secs(5));
    Some(tokio::spawn(async move {
        // The slot last queued, when, and under which try.
        let mut queued: Option<(i64, Instant, u32)> = None;
        loop {
            let now = time::now();
            match sync.due(now).await {
                Ok(true) => {
                    let slot = now.timestamp() / interval.as_secs().max(1) as i64;
                    let attempt = match queued {
                        Some((s, at, _)) if s == slot && at.elapsed() < grace => None,
                        Some((s, _, n)) if s == slot => Some(n + 1),
                        _ => Some(0),
                    };
                    if let Some(n) = attempt {
                        let key = format!("price-sync:{slot}:{n}");
                        match queue.push(SyncPrices { slot }, &key, attempts).await {
                            Ok(_) => queued = Some((slot, Instant::now(), n)),
                            Err(e) => {
                                tracing::warn!(error = %e, "could not queue a price sync; will retry")
                            }
                        }
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = ?e, "could not check whether a price sync is due"),
            }
            tokio::time::sleep(tick).await;
        }
    }))
}
