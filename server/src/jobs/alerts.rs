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

use super::{Jobs, Pushed, Queue, retry_policy};
use crate::domain::alert::{self, Alert, DeliveryAttempt, DeliveryStatus};
use crate::domain::budget;
use crate::domain::ids::AlertId;
use crate::domain::live::{LiveHub, pg};
use crate::domain::time;
use crate::domain::webhook::{self, DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, WebhookUrl};
use apalis::prelude::BackendExt;
use apalis::prelude::{AbortError, BoxDynError, Data, WorkerBuilder, WorkerBuilderExt};
use sea_orm::{DatabaseConnection, DbBackend};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The queue of webhook deliveries.
pub const QUEUE: &str = "aispend.alert-webhooks";

/// How often the dispatcher sweeps for alerts nobody announced (another process's
/// crash, a failed push), besides being woken after every fire.
const SWEEP: Duration = Duration::from_secs(5);

/// The job: deliver one alert's webhook.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliverAlert {
    /// The alert.
    pub alert_id: String,
}

/// What the delivery worker needs.
pub struct DeliveryContext {
    /// The database.
    pub db: DatabaseConnection,
    /// Opens webhook secrets.
    pub keyring: Arc<crate::domain::keyring::Keyring>,
    /// The operator's allowlist.
    pub allow: crate::domain::egress::OperatorAllowList,
    /// Per-request timeout.
    pub timeout: Duration,
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
            let backend = storage.poll_with_interval(poll);
            jobs.register(move |m| {
                m.register(move |_| {
                    WorkerBuilder::new(name.clone())
                        .backend(backend.clone())
                        .data(ctx.clone())
                        .retry(policy.clone())
                        .build(deliver)
                })
            });
        }
        Queue::Postgres(storage) => {
            let backend = storage.with_pubsub();
            jobs.register(move |m| {
                m.register(move |_| {
                    WorkerBuilder::new(name.clone())
                        .backend(backend.clone())
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
    if a.delivery_status != DeliveryStatus::Pending {
        // Delivered (or given up on) already: a duplicate run does nothing.
        return Ok(());
    }
    let budget = match a.budget {
        Some(b) => budget::find(&ctx.db, b).await?,
        None => None,
    };
    let (Some(budget), Some(secret)) = (
        budget.as_ref(),
        match a.budget {
            Some(b) => budget::webhook_secret(&ctx.db, &ctx.keyring, b).await?,
            None => None,
        },
    ) else {
        alert::set_delivery(&ctx.db, id, DeliveryStatus::Skipped).await?;
        return Ok(());
    };
    let Some(url) = budget.webhook_url.as_deref() else {
        alert::set_delivery(&ctx.db, id, DeliveryStatus::Skipped).await?;
        return Ok(());
    };
    let number = alert::attempts_so_far(&ctx.db, id).await?.saturating_add(1);
    let body = alert::webhook_body(&a, budget)?;
    let started_at = time::now();
    let clock = Instant::now();
    let outcome = post(ctx, url, &a, secret.as_bytes(), body).await;
    let duration_ms = i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX);
    let (status_code, error, permanent) = match &outcome {
        Ok(code) if (200..300).contains(code) => (Some(*code), None, false),
        Ok(code) => (
            Some(*code),
            Some(format!("the webhook answered HTTP {code}")),
            false,
        ),
        Err(Refused(message)) => (None, Some(message.clone()), true),
        Err(Transient(message)) => (None, Some(message.clone()), false),
    };
    let succeeded = error.is_none();
    ctx.metrics.alert_delivery(
        "webhook",
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
        },
    )
    .await?;
    match error {
        None => {
            alert::set_delivery(&ctx.db, id, DeliveryStatus::Delivered).await?;
            Ok(())
        }
        Some(message) if permanent || number >= ctx.attempts => {
            alert::set_delivery(&ctx.db, id, DeliveryStatus::Failed).await?;
            tracing::warn!(alert = %id, attempt = number, error = %message, "giving up on an alert webhook");
            Err(Failure::Stop(message))
        }
        Some(message) => {
            tracing::info!(alert = %id, attempt = number, error = %message, "alert webhook failed; retrying");
            Err(Failure::Retry(message))
        }
    }
}

use PostError::{Refused, Transient};

enum PostError {
    /// Not allowed: retrying cannot help.
    Refused(String),
    /// Might work later.
    Transient(String),
}

/// Posts the signed body to the destination, after checking the addresses it
/// resolves to; connects to exactly those addresses, follows no redirect.
async fn post(
    ctx: &DeliveryContext,
    url: &str,
    a: &Alert,
    secret: &[u8],
    body: Vec<u8>,
) -> Result<u16, PostError> {
    let url = WebhookUrl::parse(url, &ctx.allow).map_err(Refused)?;
    let host = url.host();
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), url.port()))
        .await
        .map_err(|e| Transient(format!("resolving `{host}`: {e}")))?
        .collect();
    url.check_resolved(&addrs, &ctx.allow).map_err(Refused)?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(ctx.timeout)
        .connect_timeout(ctx.timeout)
        .no_proxy()
        .resolve_to_addrs(&host, &addrs)
        .user_agent(concat!("aispend/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Transient(format!("building an HTTP client: {e}")))?;
    let timestamp = time::now().timestamp();
    let signature = webhook::sign(secret, timestamp, &body)
        .ok_or_else(|| Refused("the webhook secret cannot key an HMAC".into()))?;
    let response = client
        .post(url.as_str())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, signature)
        .header(DELIVERY_HEADER, a.id.to_string())
        .header(EVENT_HEADER, "budget.threshold_reached")
        .body(body)
        .send()
        .await
        // Without the URL: a Slack-style URL carries its secret in the path.
        .map_err(|e| Transient(format!("posting the webhook: {}", e.without_url())))?;
    Ok(response.status().as_u16())
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
                let key = a.id.to_string();
                match queue
                    .push(
                        DeliverAlert {
                            alert_id: key.clone(),
                        },
                        &key,
                        attempts,
                    )
                    .await?
                {
                    Pushed::Queued | Pushed::AlreadyQueued => {}
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
