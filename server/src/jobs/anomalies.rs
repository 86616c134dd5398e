//! The anomaly checker: every `AISPEND_ANOMALY_CHECK_MS` each server process asks every
//! anomaly watch for yesterday's and today's anomalies and fires the alerts not fired
//! yet (`domain::anomaly_watch::check_all`; the alert's unique `dedupe_key` makes
//! several processes, or a check repeated, fire each once). Fired alerts then wake the
//! alert dispatcher, which delivers them to the watch's channels.

use crate::domain::anomaly_watch;
use sea_orm::DatabaseConnection;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Runs the checker until the process ends.
pub fn spawn(
    db: DatabaseConnection,
    every: Duration,
    alerts_fired: Arc<Notify>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match anomaly_watch::check_all(&db).await {
                Ok(fired) if !fired.is_empty() => {
                    tracing::info!(alerts = fired.len(), "anomaly watches fired alerts");
                    alerts_fired.notify_one();
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not check anomaly watches; will retry"),
            }
            tokio::time::sleep(every).await;
        }
    })
}
