//! The PostgreSQL relay: every process `LISTEN`s for the changes and alerts other
//! processes committed, reads them by id and fans them out to its own subscribers.
//!
//! Payloads carry each event's id and the cost the change gave it (and, for a
//! re-pricing, the cost before), never the event itself: the 8000-byte limit of
//! `NOTIFY` would not hold a batch, and reading the cost from the row later could see
//! a newer re-pricing and count it twice.

use super::{ALERTS_CHANNEL, CHANGES_CHANNEL, Change, ChangeKind, ChangedEvent, LiveHub};
use crate::domain::alert;
use crate::domain::error::{Context, Result};
use crate::domain::ids::AlertId;
use crate::domain::money::Usd;
use crate::domain::usage::UsageEvent;
use crate::entity::usage_event;
use sea_orm::sqlx::postgres::{PgListener, PgPool};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    Statement,
};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Deserialize)]
struct ChangePayload {
    o: u64,
    s: i64,
    x: Option<i64>,
    k: String,
    e: Vec<Vec<Option<i64>>>,
}

#[derive(Deserialize)]
struct AlertPayload {
    o: u64,
    id: String,
}

/// Starts listening; returns once `LISTEN` is in effect, so a change committed
/// afterwards by any process reaches this one.
pub async fn start(pool: &PgPool, db: DatabaseConnection, hub: Arc<LiveHub>) -> Result<()> {
    let mut listener = PgListener::connect_with(pool)
        .await
        .context("connecting the live-update listener")?;
    listener
        .listen_all([CHANGES_CHANNEL, ALERTS_CHANNEL])
        .await
        .context("listening for live updates")?;
    tokio::spawn(async move {
        loop {
            match listener.recv().await {
                Ok(n) => {
                    let result = match n.channel() {
                        CHANGES_CHANNEL => on_change(&db, &hub, n.payload()).await,
                        ALERTS_CHANNEL => on_alert(&db, &hub, n.payload()).await,
                        _ => Ok(()),
                    };
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "could not relay a live update; subscribers will re-seed");
                        hub.mark_gap();
                    }
                }
                Err(e) => {
                    // The listener reconnects on the next `recv`; what was sent
                    // meanwhile is lost, so subscribers re-seed their totals.
                    tracing::warn!(error = %e, "the live-update listener lost its connection");
                    hub.mark_gap();
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
    Ok(())
}

async fn on_change(db: &DatabaseConnection, hub: &LiveHub, payload: &str) -> Result<()> {
    let p: ChangePayload = serde_json::from_str(payload).context("decoding a change payload")?;
    if p.o == hub.origin() || hub.cost_subscribers() == 0 {
        return Ok(());
    }
    let kind = if p.k == "r" {
        ChangeKind::Repriced
    } else {
        ChangeKind::Ingested
    };
    // [id, cost] for an insert, [id, cost before, cost after] for a re-pricing.
    let mut costs: HashMap<i64, (i64, Option<i64>)> = HashMap::new();
    for entry in &p.e {
        let Some(Some(id)) = entry.first().copied() else {
            continue;
        };
        let (delta, after) = match kind {
            ChangeKind::Ingested => {
                let cost = entry.get(1).copied().flatten();
                (cost.unwrap_or(0), cost)
            }
            ChangeKind::Repriced => {
                let before = entry.get(1).copied().flatten().unwrap_or(0);
                let after = entry.get(2).copied().flatten();
                (after.unwrap_or(0).saturating_sub(before), after)
            }
        };
        costs.insert(id, (delta, after));
    }
    let rows = usage_event::Entity::find()
        .filter(usage_event::Column::Id.is_in(costs.keys().copied()))
        .all(db)
        .await
        .context("reading relayed events")?;
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        let mut event = UsageEvent::try_from(row)?;
        let Some((delta, after)) = costs.get(&event.id.0).copied() else {
            continue;
        };
        event.cost = after.map(Usd::from_nanos);
        events.push(ChangedEvent { event, delta });
    }
    events.sort_by_key(|c| c.event.id);
    hub.deliver(Change {
        seq: p.s,
        xid: p.x,
        kind,
        events,
    });
    Ok(())
}

async fn on_alert(db: &DatabaseConnection, hub: &LiveHub, payload: &str) -> Result<()> {
    let p: AlertPayload = serde_json::from_str(payload).context("decoding an alert payload")?;
    if p.o == hub.origin() {
        return Ok(());
    }
    let Ok(id) = p.id.parse::<AlertId>() else {
        return Ok(());
    };
    if let Some(a) = alert::find(db, id).await? {
        hub.publish_alert(Arc::new(a));
    }
    Ok(())
}

/// Tells the other processes about an alert this one announced.
pub async fn notify_alert(conn: &impl ConnectionTrait, hub: &LiveHub, id: AlertId) -> Result<()> {
    let payload = serde_json::json!({ "o": hub.origin(), "id": id.to_string() }).to_string();
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_notify($1, $2)",
        [ALERTS_CHANNEL.into(), payload.into()],
    ))
    .await
    .context("publishing an alert")?;
    Ok(())
}
