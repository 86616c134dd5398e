//! Alert delivery: the dispatcher that turns fired alerts (the outbox in `alerts`)
//! into webhook jobs and live announcements, and the worker that posts each webhook.
//!
//! Why an outbox and not a push inside the ingest transaction: apalis pushes through
//! its own connection from the pool (its SQL is not exposed to run inside SeaORM's
//! transaction), so a push "in the same transaction" is not possible. The alert row
//! itself is the durable record, written in the transaction that fired it; the
//! dispatcher pushes a job per undispatched alert with the alert id as idempotency key
//! (a second push, from a retry or another process, queues nothing), and only then
//! claims the row. A crash between push and claim leaves a row that the next sweep
//! pushes again — harmlessly.

use super::notify::{Notice, Notifier};
use super::{Jobs, Pushed, Queue, retry_policy};
use crate::domain::alert::{self, AlertKind, DeliveryAttempt, DeliveryStatus};
use crate::domain::budget;
use crate::domain::channel::{self, Channel, ChannelKind};
use crate::domain::ids::AlertId;
use crate::domain::live::{LiveHub, pg};
use crate::domain::time;
use apalis::prelude::{AbortError, BoxDynError, Data, WorkerBuilder, WorkerBuilderExt};
use sea_orm::{DatabaseConnection, DbBackend};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The queue of webhook deliveries.
pub const QUEUE: &str = "aispend.alert-webhooks";

/// How often the dispatcher sweeps for alerts nobody announced (another process's
/// crash, a failed push), besides being woken after every fire.
const SWEEP: Duration = Duration::from_secs(5);

/// The job: deliver one alert to one destination.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliverAlert {
    /// The alert.
    pub alert_id: String,
    /// `channel:<id>`; absent for the budget's own webhook (and in jobs queued before
    /// channels existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// What the delivery worker needs.
pub struct DeliveryContext {
    /// The database.
    pub db: DatabaseConnection,
    /// Opens webhook and channel secrets.
    pub keyring: Arc<crate::domain::keyring::Keyring>,
    /// Sends to every kind of destination.
    pub notifier: Arc<Notifier>,
    /// Attempts in all.
    pub attempts: u32,
    /// Counts delivery attempts.
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// Registers the delivery worker and returns the queue the dispatcher pushes to.
pub fn register(jobs: &mut Jobs, ctx: Arc<DeliveryContext>) -> Queue<DeliverAlert> {
    let queue = jobs.queue::<DeliverAlert>(QUEUE);
    let name = jobs.worker_name(QUEUE);
    let policy = retry_policy(jobs.settings());
    let poll = jobs.settings().poll;
    match queue.clone() {
        Queue::Sqlite(storage) => {
            jobs.register(move |m| {
                m.register(move |_| {
                    WorkerBuilder::new(name.clone())
                        .backend(super::sqlite_backend(&storage, poll))
                        .data(ctx.clone())
                        .retry(policy.clone())
                        .build(deliver)
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
                        .build(deliver)
                })
            });
        }
    }
    queue
}

/// The worker's handler: one attempt. An error makes the retry policy try again
/// after its backoff; an [`AbortError`] stops retrying.
async fn deliver(job: DeliverAlert, ctx: Data<Arc<DeliveryContext>>) -> Result<(), BoxDynError> {
    match attempt(&ctx, &job).await {
        Ok(()) => Ok(()),
        Err(Failure::Retry(message)) => Err(message.into()),
        Err(Failure::Stop(message)) => Err(Box::new(AbortError::new(message))),
    }
}

enum Failure {
    Retry(String),
    Stop(String),
}

impl From<crate::domain::Error> for Failure {
    fn from(e: crate::domain::Error) -> Self {
        tracing::error!(error = ?e, "alert delivery could not read or write its state");
        Failure::Retry(format!("internal error: {e}"))
    }
}

async fn attempt(ctx: &DeliveryContext, job: &DeliverAlert) -> Result<(), Failure> {
    let Ok(id) = job.alert_id.parse::<AlertId>() else {
        return Err(Failure::Stop(format!(
            "`{}` is not an alert id",
            job.alert_id
        )));
    };
    let Some(a) = alert::find(&ctx.db, id).await? else {
        return Err(Failure::Stop(format!("alert {id} no longer exists")));
    };
    let target = job
        .target
        .clone()
        .unwrap_or_else(|| alert::WEBHOOK_TARGET.to_owned());
    let pending = alert::targets(&ctx.db, id)
        .await?
        .into_iter()
        .any(|(t, s)| t == target && s == DeliveryStatus::Pending);
    if !pending {
        // Delivered (or given up on) already: a duplicate run does nothing.
        return Ok(());
    }
    let skip = || alert::set_target(&ctx.db, id, &target, DeliveryStatus::Skipped);
    // A budget alert needs its budget still there; an anomaly alert has none.
    let budget = match a.budget {
        Some(b) => budget::find(&ctx.db, b).await?,
        None => None,
    };
    if a.kind == AlertKind::Budget && budget.is_none() {
        skip().await?;
        return Ok(());
    }
    let destination = match alert::target_channel(&target) {
        None => match &budget {
            Some(budget) => match (
                budget.webhook_url.clone(),
                budget::webhook_secret(&ctx.db, &ctx.keyring, budget.id).await?,
            ) {
                (Some(url), Some(secret)) => Destination::Webhook {
                    url,
                    secret,
                    budget,
                },
                _ => {
                    skip().await?;
                    return Ok(());
                }
            },
            None => {
                skip().await?;
                return Ok(());
            }
        },
        Some(channel_id) => match channel::find(&ctx.db, channel_id).await? {
            Some(ch) => {
                let secret = channel::secret(&ctx.db, &ctx.keyring, channel_id).await?;
                Destination::Channel(ch, secret)
            }
            None => {
                skip().await?;
                return Ok(());
            }
        },
    };
    let number = alert::attempts_so_far(&ctx.db, id, &target)
        .await?
        .saturating_add(1);
    let started_at = time::now();
    let clock = Instant::now();
    let (kind, outcome) = match &destination {
        Destination::Webhook {
            url,
            secret,
            budget,
        } => (
            "webhook",
            match alert::webhook_body(&a, budget) {
                Ok(body) => {
                    ctx.notifier
                        .webhook(
                            url,
                            secret,
                            body,
                            &a.id.to_string(),
                            "budget.threshold_reached",
                        )
                        .await
                }
                Err(e) => return Err(e.into()),
            },
        ),
        Destination::Channel(ch, secret) => (
            match ch.kind {
                ChannelKind::Webhook => "webhook",
                ChannelKind::Slack => "slack",
                ChannelKind::Email => "email",
            },
            ctx.notifier
                .to_channel(
                    ch,
                    secret.as_deref(),
                    &match &budget {
                        Some(b) => Notice::Alert(&a, b),
                        None => Notice::Anomaly(&a),
                    },
                )
                .await,
        ),
    };
    let duration_ms = i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX);
    let (status_code, error, permanent) = match &outcome {
        Ok(code) => (*code, None, false),
        Err(e) => (e.status, Some(e.message.clone()), e.permanent),
    };
    let succeeded = error.is_none();
    ctx.metrics.alert_delivery(
        kind,
        match (&error, permanent) {
            (None, _) => "delivered",
            (Some(_), true) => "refused",
            (Some(_), false) => "failed",
        },
    );
    alert::record_attempt(
        &ctx.db,
        id,
        &DeliveryAttempt {
            attempt: number,
            started_at,
            duration_ms,
            status_code,
            error: error.clone(),
            succeeded,
            target: target.clone(),
        },
    )
    .await?;
    match error {
        None => {
            alert::set_target(&ctx.db, id, &target, DeliveryStatus::Delivered).await?;
            Ok(())
        }
        Some(message) if permanent || number >= ctx.attempts => {
            alert::set_target(&ctx.db, id, &target, DeliveryStatus::Failed).await?;
            tracing::warn!(alert = %id, target = %target, attempt = number, error = %message, "giving up on an alert delivery");
            Err(Failure::Stop(message))
        }
        Some(message) => {
            tracing::info!(alert = %id, target = %target, attempt = number, error = %message, "alert delivery failed; retrying");
            Err(Failure::Retry(message))
        }
    }
}

enum Destination<'b> {
    Webhook {
        url: String,
        secret: String,
        budget: &'b budget::Budget,
    },
    Channel(Channel, Option<String>),
}

/// Runs the dispatcher until the process ends: woken after alerts fire, and every few
/// seconds for alerts left behind.
pub fn spawn_dispatcher(
    db: DatabaseConnection,
    queue: Queue<DeliverAlert>,
    hub: Arc<LiveHub>,
    wake: Arc<Notify>,
    attempts: u32,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = dispatch(&db, &queue, &hub, attempts).await {
                tracing::warn!(error = %e, "could not dispatch alerts; will retry");
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(SWEEP) => {}
            }
        }
    })
}

/// Hands every undispatched alert to the webhook queue (when it has a webhook) and
/// announces it; see the module docs for why each step is safe to repeat.
pub async fn dispatch(
    db: &DatabaseConnection,
    queue: &Queue<DeliverAlert>,
    hub: &LiveHub,
    attempts: u32,
) -> anyhow::Result<usize> {
    let mut announced = 0;
    loop {
        let batch = alert::undispatched(db, 100).await?;
        if batch.is_empty() {
            return Ok(announced);
        }
        for a in batch {
            if a.delivery_status == DeliveryStatus::Pending {
                for (target, status) in alert::targets(db, a.id).await? {
                    if status != DeliveryStatus::Pending {
                        continue;
                    }
                    // The budget's webhook keeps the key it always had (the alert id),
                    // so a job queued before channels existed is not queued again.
                    let (key, job_target) = if target == alert::WEBHOOK_TARGET {
                        (a.id.to_string(), None)
                    } else {
                        (format!("{}/{target}", a.id), Some(target))
                    };
                    match queue
                        .push(
                            DeliverAlert {
                                alert_id: a.id.to_string(),
                                target: job_target,
                            },
                            &key,
                            attempts,
                        )
                        .await?
                    {
                        Pushed::Queued | Pushed::AlreadyQueued => {}
                    }
                }
            }
            if alert::mark_dispatched(db, a.id).await? {
                announced += 1;
                let id = a.id;
                hub.publish_alert(Arc::new(a));
                if db.get_database_backend() == DbBackend::Postgres {
                    pg::notify_alert(db, hub, id).await?;
                }
            }
        }
    }
}
