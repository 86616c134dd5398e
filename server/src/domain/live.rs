//! Live updates: every committed ledger change, fanned out to subscribers with
//! running totals, and fired alerts.
//!
//! - **Ingest never waits on a subscriber.** [`LiveHook::committed`] hands the change
//!   to a fan-out task through a bounded channel without waiting (and does nothing at
//!   all when the process has no subscriber); should the fan-out task itself fall
//!   [`FANOUT_QUEUE`] changes behind, the change is not queued and every subscriber
//!   re-seeds its totals from the ledger, as after a lost `LISTEN` connection. The fan-out task filters per subscriber and
//!   `try_send`s into that subscriber's bounded queue; a full queue means the
//!   subscriber is too slow: it is dropped and its connection told why, instead of
//!   slowing anyone else down.
//! - **Totals are exact.** Every change gets a number, unique across processes (SQLite:
//!   `ledger_state.change_seq`, incremented inside the change's transaction, one
//!   writer at a time; PostgreSQL: the sequence `ledger_change_seq`, without a lock,
//!   so ingest transactions run side by side). A subscriber subscribes first, then
//!   reads a watermark and its sums for today and this month in one snapshot, and
//!   from then on adds exactly the changes that snapshot did not hold. SQLite's
//!   watermark is `change_seq` (numbers follow commits). On PostgreSQL numbers need
//!   not follow commits, so the watermark is the snapshot itself
//!   (`pg_current_snapshot()`) and each change carries its transaction id: a change
//!   is in the totals exactly when its transaction is visible in that snapshot. A new
//!   day (or month) re-seeds the same way.
//! - **Several processes.** On PostgreSQL each change is also published with
//!   `pg_notify` from inside its transaction (so only committed changes are sent),
//!   with compact `[id, cost]` payloads under the 8000-byte limit; every process
//!   listens (`pg::Relay`), reads the events by id and fans them out locally. A
//!   process skips its own notifications (it already delivered them in memory). On
//!   SQLite there is one process, and the fan-out is in memory only.

pub mod pg;

use crate::domain::alert::{Alert, AlertFilter};
use crate::domain::analytics;
use crate::domain::auth::{Principal, Scope};
use crate::domain::calendar::{self, Granularity};
use crate::domain::error::{Context, Error, Result};
use crate::domain::money::Usd;
use crate::domain::time;
use crate::domain::usage::UsageEvent;
use crate::domain::usage::ingest::{LedgerChange, LedgerHook};
use crate::domain::usage::query::UsageFilter;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use futures::Stream;
use futures::future::BoxFuture;
use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend,
    IsolationLevel, Statement, TransactionTrait,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;
use tokio::sync::mpsc;

/// Called when a subscriber's queue overflowed (the transport closes the connection
/// with a reason).
pub type OnOverflow = Arc<dyn Fn() + Send + Sync>;

/// What kind of change happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Events were recorded.
    Ingested,
    /// Events were re-priced.
    Repriced,
}

/// One event of a change and how much it moved the cost.
#[derive(Debug, Clone)]
pub struct ChangedEvent {
    /// The event, with its cost after the change.
    pub event: UsageEvent,
    /// The cost change in nano-dollars (the full cost for a new event).
    pub delta: i64,
}

/// One committed ledger change.
#[derive(Debug)]
pub struct Change {
    /// Its number, unique across processes (see the module docs).
    pub seq: i64,
    /// Its PostgreSQL transaction id (`None` on SQLite), which tells whether a
    /// subscriber's snapshot holds it.
    pub xid: Option<i64>,
    /// Ingest or re-pricing.
    pub kind: ChangeKind,
    /// The changed events.
    pub events: Vec<ChangedEvent>,
}

type Delivery = (Arc<Change>, Vec<u32>);

/// Identifies a change between its `apply` and `committed` (see [`change_key`]).
type ChangeKey = (u8, usize, usize);

struct CostSub {
    filter: UsageFilter,
    tx: mpsc::Sender<Delivery>,
    on_overflow: OnOverflow,
}

struct AlertSub {
    filter: AlertFilter,
    tx: mpsc::Sender<Arc<Alert>>,
    on_overflow: OnOverflow,
}

/// The per-process hub of live updates.
pub struct LiveHub {
    origin: u64,
    backend: DbBackend,
    queue: usize,
    next_id: AtomicU64,
    cost_subs: RwLock<HashMap<u64, CostSub>>,
    cost_count: AtomicUsize,
    alert_subs: RwLock<HashMap<u64, AlertSub>>,
    fanout: mpsc::Sender<Arc<Change>>,
    seqs: Mutex<HashMap<ChangeKey, (Stamp, Instant)>>,
    /// Bumped when this process may have missed remote changes (its `LISTEN`
    /// connection dropped): subscribers then re-seed their totals.
    epoch: AtomicU64,
}

/// Changes waiting for the fan-out task before new ones are dropped (and subscribers
/// re-seed). Each is one ingest transaction, so this is seconds of heavy ingest.
pub const FANOUT_QUEUE: usize = 10_000;

/// Channel of ledger changes (PostgreSQL `NOTIFY`).
pub const CHANGES_CHANNEL: &str = "aispend_changes";
/// Channel of fired alerts (PostgreSQL `NOTIFY`).
pub const ALERTS_CHANNEL: &str = "aispend_alerts";
/// Payloads stay below PostgreSQL's 8000-byte `NOTIFY` limit.
const MAX_PAYLOAD: usize = 7_000;

impl LiveHub {
    /// Starts the hub's fan-out task. `queue` is each subscriber's queue length.
    pub fn start(backend: DbBackend, queue: usize) -> Arc<LiveHub> {
        let (fanout, rx) = mpsc::channel(FANOUT_QUEUE);
        let hub = Arc::new(LiveHub {
            origin: rand::random::<u64>(),
            backend,
            queue: queue.max(1),
            next_id: AtomicU64::new(1),
            cost_subs: RwLock::new(HashMap::new()),
            cost_count: AtomicUsize::new(0),
            alert_subs: RwLock::new(HashMap::new()),
            fanout,
            seqs: Mutex::new(HashMap::new()),
            epoch: AtomicU64::new(0),
        });
        tokio::spawn(run_fanout(Arc::downgrade(&hub), rx));
        hub
    }

    /// This process's id in notifications.
    pub fn origin(&self) -> u64 {
        self.origin
    }

    /// The ledger hook that numbers, publishes and delivers changes.
    pub fn hook(self: &Arc<Self>) -> Arc<dyn LedgerHook> {
        Arc::new(LiveHook(self.clone()))
    }

    /// Live cost subscribers in this process.
    pub fn cost_subscribers(&self) -> usize {
        self.cost_count.load(Ordering::SeqCst)
    }

    /// Live alert subscribers in this process (registered: each receives every alert
    /// raised from now on that its filter admits).
    pub fn alert_subscribers(&self) -> usize {
        self.alert_subs.read().map(|subs| subs.len()).unwrap_or(0)
    }

    /// Hands a committed change to the fan-out task (never blocks).
    pub fn deliver(&self, change: Change) {
        if self.cost_subscribers() > 0
            && let Err(mpsc::error::TrySendError::Full(_)) = self.fanout.try_send(Arc::new(change))
        {
            tracing::warn!(
                queue = FANOUT_QUEUE,
                "live updates fell behind ingest; subscribers re-read their totals"
            );
            self.mark_gap();
        }
    }

    /// Tells subscribers that changes may have been missed.
    pub fn mark_gap(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    fn fan_out(&self, change: &Arc<Change>) {
        let mut dropped = vec![];
        {
            let Ok(subs) = self.cost_subs.read() else {
                return;
            };
            for (id, sub) in subs.iter() {
                let matching: Vec<u32> = change
                    .events
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| sub.filter.matches(&c.event))
                    .map(|(i, _)| i as u32)
                    .collect();
                if matching.is_empty() {
                    continue;
                }
                match sub.tx.try_send((change.clone(), matching)) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::warn!(
                            subscriber = id,
                            "dropping a live subscriber: its queue is full"
                        );
                        (sub.on_overflow)();
                        dropped.push(*id);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => dropped.push(*id),
                }
            }
        }
        for id in dropped {
            self.remove_cost(id);
        }
    }

    fn remove_cost(&self, id: u64) {
        if let Ok(mut subs) = self.cost_subs.write()
            && subs.remove(&id).is_some()
        {
            self.cost_count.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn remove_alert(&self, id: u64) {
        if let Ok(mut subs) = self.alert_subs.write() {
            subs.remove(&id);
        }
    }

    /// Announces a fired alert to this process's subscribers (the dispatcher that
    /// claimed it calls this, and [`pg::Relay`] for other processes' alerts).
    pub fn publish_alert(&self, alert: Arc<Alert>) {
        let mut dropped = vec![];
        if let Ok(subs) = self.alert_subs.read() {
            for (id, sub) in subs.iter() {
                if !sub.filter.matches(&alert) {
                    continue;
                }
                match sub.tx.try_send(alert.clone()) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        (sub.on_overflow)();
                        dropped.push(*id);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => dropped.push(*id),
                }
            }
        }
        for id in dropped {
            self.remove_alert(id);
        }
    }

    fn stash_seq(&self, key: ChangeKey, seq: Stamp) {
        if let Ok(mut seqs) = self.seqs.lock() {
            // Entries of transactions that rolled back are never taken; forget them.
            if seqs.len() > 64 {
                seqs.retain(|_, (_, at)| at.elapsed().as_secs() < 60);
            }
            seqs.insert(key, (seq, Instant::now()));
        }
    }

    fn take_seq(&self, key: ChangeKey) -> Option<Stamp> {
        self.seqs.lock().ok()?.remove(&key).map(|(s, _)| s)
    }
}

async fn run_fanout(hub: std::sync::Weak<LiveHub>, mut rx: mpsc::Receiver<Arc<Change>>) {
    while let Some(change) = rx.recv().await {
        let Some(hub) = hub.upgrade() else { break };
        hub.fan_out(&change);
    }
}

/// The identity of a change between `apply` and `committed`: the address and length
/// of its slice, which the writer keeps alive across both calls (two changes in
/// flight at once are distinct allocations).
fn change_key(change: &LedgerChange<'_>) -> ChangeKey {
    match change {
        LedgerChange::Inserted(e) => (0, e.as_ptr() as usize, e.len()),
        LedgerChange::Repriced(r) => (1, r.as_ptr() as usize, r.len()),
    }
}

/// Numbers each change and publishes it (see the module docs).
pub struct LiveHook(Arc<LiveHub>);

fn cost_json(c: Option<Usd>) -> serde_json::Value {
    c.map(|c| serde_json::Value::from(c.stored_nanos()))
        .unwrap_or(serde_json::Value::Null)
}

/// The start of every `NOTIFY` payload of process `origin`, up to its sequence number.
fn payload_head(origin: u64) -> String {
    format!("{{\"o\":{origin},\"s\":")
}

/// What follows the sequence number in each payload, up to the transaction id.
const PAYLOAD_XID: &str = ",\"x\":";

/// What follows the transaction id in each `NOTIFY` payload of a change: its entries,
/// split so that each whole payload (head, a sequence number and a transaction id of
/// up to 20 characters each, tail) stays under `MAX_PAYLOAD`.
fn payload_tails(origin: u64, change: &LedgerChange<'_>) -> Vec<String> {
    let (kind, entries): (&str, Vec<serde_json::Value>) = match change {
        LedgerChange::Inserted(events) => (
            "i",
            events
                .iter()
                .map(|e| serde_json::json!([e.id.0, cost_json(e.cost)]))
                .collect(),
        ),
        LedgerChange::Repriced(changes) => (
            "r",
            changes
                .iter()
                .map(|c| {
                    serde_json::json!([
                        c.event.id.0,
                        cost_json(c.previous_cost),
                        cost_json(c.event.cost)
                    ])
                })
                .collect(),
        ),
    };
    let limit = MAX_PAYLOAD.saturating_sub(payload_head(origin).len() + PAYLOAD_XID.len() + 40);
    let start = format!(",\"k\":\"{kind}\",\"e\":[");
    let mut out = vec![];
    let mut current = start.clone();
    let mut empty = true;
    for entry in entries {
        let text = entry.to_string();
        if !empty && current.len() + text.len() + 3 > limit {
            current.push_str("]}");
            out.push(std::mem::replace(&mut current, start.clone()));
            empty = true;
        }
        if !empty {
            current.push(',');
        }
        current.push_str(&text);
        empty = false;
    }
    if !empty {
        current.push_str("]}");
        out.push(current);
    }
    out
}

/// The `NOTIFY` payloads of a change numbered `seq` in transaction `xid`.
#[cfg(test)]
fn payloads(origin: u64, seq: i64, xid: i64, change: &LedgerChange<'_>) -> Vec<String> {
    let head = payload_head(origin);
    payload_tails(origin, change)
        .into_iter()
        .map(|tail| format!("{head}{seq}{PAYLOAD_XID}{xid}{tail}"))
        .collect()
}

/// What numbers a change: its sequence number and, on PostgreSQL, its transaction.
#[derive(Debug, Clone, Copy)]
struct Stamp {
    seq: i64,
    xid: Option<i64>,
}

/// Numbers a change. PostgreSQL (`publish`): from the sequence, with the transaction's
/// id, and the same statement (one round trip) sends the change's payloads in order,
/// inside the transaction: `NOTIFY` delivers them at commit. SQLite: `change_seq`.
async fn next_seq(
    txn: &DatabaseTransaction,
    publish: Option<(u64, &LedgerChange<'_>)>,
) -> Result<Stamp> {
    let stmt = match publish {
        None => Statement::from_string(
            txn.get_database_backend(),
            "UPDATE ledger_state SET change_seq = change_seq + 1 WHERE id = 1 RETURNING change_seq, NULL AS xid",
        ),
        Some((origin, change)) => Statement::from_sql_and_values(
            DbBackend::Postgres,
            "WITH s AS (SELECT nextval('ledger_change_seq') AS change_seq, pg_current_xact_id()::text::int8 AS xid) \
             SELECT s.change_seq, s.xid, (SELECT count(pg_notify($1, $2 || s.change_seq || $3 || s.xid || t.tail)) \
             FROM json_array_elements_text($4::json) WITH ORDINALITY AS t(tail, n)) AS sent FROM s",
            [
                CHANGES_CHANNEL.into(),
                payload_head(origin).into(),
                PAYLOAD_XID.into(),
                serde_json::Value::from(payload_tails(origin, change))
                    .to_string()
                    .into(),
            ],
        ),
    };
    let row = txn
        .query_one_raw(stmt)
        .await
        .context("numbering a ledger change")?;
    match row {
        Some(r) => Ok(Stamp {
            seq: r
                .try_get("", "change_seq")
                .context("numbering a ledger change")?,
            xid: r.try_get("", "xid").context("numbering a ledger change")?,
        }),
        None => Err(Error::internal(
            "numbering a ledger change",
            anyhow::anyhow!("ledger_state has no row; was the database migrated?"),
        )),
    }
}

impl LedgerHook for LiveHook {
    fn name(&self) -> &'static str {
        "live updates"
    }

    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        change: LedgerChange<'a>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let publish =
                (self.0.backend == DbBackend::Postgres).then_some((self.0.origin, &change));
            let seq = next_seq(txn, publish).await?;
            self.0.stash_seq(change_key(&change), seq);
            Ok(())
        })
    }

    fn committed(&self, change: LedgerChange<'_>) {
        let Some(stamp) = self.0.take_seq(change_key(&change)) else {
            tracing::warn!(
                "a committed ledger change had no sequence number; live subscribers may re-seed"
            );
            self.0.mark_gap();
            return;
        };
        if self.0.cost_subscribers() == 0 {
            return;
        }
        let (kind, events) = match change {
            LedgerChange::Inserted(events) => (
                ChangeKind::Ingested,
                events
                    .iter()
                    .map(|e| ChangedEvent {
                        delta: e.cost.map(Usd::stored_nanos).unwrap_or(0),
                        event: e.clone(),
                    })
                    .collect(),
            ),
            LedgerChange::Repriced(changes) => (
                ChangeKind::Repriced,
                changes
                    .iter()
                    .map(|c| ChangedEvent {
                        delta: c
                            .event
                            .cost
                            .map(Usd::stored_nanos)
                            .unwrap_or(0)
                            .saturating_sub(c.previous_cost.map(Usd::stored_nanos).unwrap_or(0)),
                        event: c.event.clone(),
                    })
                    .collect(),
            ),
        };
        self.0.deliver(Change {
            seq: stamp.seq,
            xid: stamp.xid,
            kind,
            events,
        });
    }
}

/// A running total over one calendar period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Total {
    /// Start (inclusive).
    pub start: DateTime<Utc>,
    /// End (exclusive).
    pub end: DateTime<Utc>,
    /// Cost of the filter's events in the period.
    pub cost: Usd,
}

/// One update of a cost subscription: one change, or several of the same kind that
/// queued up while the subscriber was busy (coalesced, so a subscriber that falls
/// behind gets fewer, larger messages instead of falling further behind).
#[derive(Debug, Clone)]
pub struct CostUpdate {
    /// The changes with the indexes of their events that pass the subscriber's filter,
    /// in the order they were delivered.
    pub parts: Vec<(Arc<Change>, Vec<u32>)>,
    /// The cost change of those events.
    pub delta: Usd,
    /// Today's total, in the subscription's zone, after the last change.
    pub today: Total,
    /// This month's total, after the last change.
    pub month: Total,
}

impl CostUpdate {
    /// The matching events.
    pub fn events(&self) -> impl Iterator<Item = &ChangedEvent> {
        self.parts.iter().flat_map(|(change, matching)| {
            matching
                .iter()
                .filter_map(|i| change.events.get(*i as usize))
        })
    }

    /// How many matching events.
    pub fn event_count(&self) -> usize {
        self.parts.iter().map(|(_, m)| m.len()).sum()
    }

    /// The highest sequence number among the changes.
    pub fn sequence(&self) -> i64 {
        self.parts
            .iter()
            .map(|(c, _)| c.seq)
            .max()
            .unwrap_or_default()
    }

    /// Ingest or re-pricing (coalesced changes are of one kind).
    pub fn kind(&self) -> ChangeKind {
        self.parts
            .first()
            .map(|(c, _)| c.kind)
            .unwrap_or(ChangeKind::Ingested)
    }

    /// How many changes this update carries.
    pub fn changes(&self) -> usize {
        self.parts.len()
    }
}

/// Most queued changes folded into one update.
const MAX_COALESCE: usize = 64;

/// What a subscriber's seeded totals hold (see the module docs).
#[derive(Debug, Clone, PartialEq)]
enum Watermark {
    /// SQLite: every change numbered up to this.
    Seq(i64),
    /// PostgreSQL: every change whose transaction this snapshot sees.
    Snapshot(PgSnapshot),
}

impl Watermark {
    fn holds(&self, change: &Change) -> bool {
        match self {
            Watermark::Seq(seq) => change.seq <= *seq,
            Watermark::Snapshot(s) => change.xid.is_some_and(|x| s.sees(x)),
        }
    }
}

/// A PostgreSQL snapshot as `pg_current_snapshot()` prints it: `xmin:xmax:xip,…`.
#[derive(Debug, Clone, PartialEq)]
struct PgSnapshot {
    xmin: i64,
    xmax: i64,
    in_progress: Vec<i64>,
}

impl PgSnapshot {
    fn parse(text: &str) -> Option<PgSnapshot> {
        let mut parts = text.split(':');
        let xmin = parts.next()?.parse().ok()?;
        let xmax = parts.next()?.parse().ok()?;
        let in_progress = match parts.next()? {
            "" => vec![],
            list => list
                .split(',')
                .map(str::parse)
                .collect::<std::result::Result<_, _>>()
                .ok()?,
        };
        parts.next().is_none().then_some(PgSnapshot {
            xmin,
            xmax,
            in_progress,
        })
    }

    /// Whether a *committed* transaction's changes are visible in the snapshot: it
    /// ended before the snapshot was taken (below `xmin`, or below `xmax` and not in
    /// progress then). Only committed changes are ever delivered.
    fn sees(&self, xid: i64) -> bool {
        xid < self.xmin || (xid < self.xmax && !self.in_progress.contains(&xid))
    }
}

struct Totals {
    watermark: Watermark,
    epoch: u64,
    today: Total,
    month: Total,
}

/// Today's and this month's totals of `dims` with the watermark of the changes they
/// hold, read in one snapshot (a read-only repeatable-read transaction on
/// PostgreSQL; on SQLite a read transaction is a snapshot). The sums come from the
/// rollups with raw events only at the edges (`analytics::tracked_cost`), so a seed
/// costs the same at ten events or ten million.
async fn seed(
    conn: &DatabaseConnection,
    dims: &UsageFilter,
    tz: &Tz,
    epoch: u64,
) -> Result<Totals> {
    let now = time::now();
    let day_start = calendar::bucket_start(now, Granularity::Day, tz);
    let day_end = calendar::next_bucket(day_start, Granularity::Day, tz);
    let month_start = calendar::bucket_start(now, Granularity::Month, tz);
    let month_end = calendar::next_bucket(month_start, Granularity::Month, tz);
    let txn = match conn.get_database_backend() {
        DbBackend::Postgres => {
            conn.begin_with_config(
                Some(IsolationLevel::RepeatableRead),
                Some(AccessMode::ReadOnly),
            )
            .await
        }
        _ => conn.begin().await,
    }
    .context("seeding live totals")?;
    // The first statement of the transaction: on PostgreSQL its snapshot is the one
    // the sums below read.
    let backend = conn.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "SELECT pg_current_snapshot()::text",
        _ => "SELECT change_seq FROM ledger_state WHERE id = 1",
    };
    let row = txn
        .query_one_raw(Statement::from_string(backend, sql))
        .await
        .context("seeding live totals")?
        .ok_or_else(|| Error::internal("seeding live totals", anyhow::anyhow!("no row")))?;
    let watermark = match backend {
        DbBackend::Postgres => {
            let text: String = row.try_get_by_index(0).context("seeding live totals")?;
            Watermark::Snapshot(PgSnapshot::parse(&text).ok_or_else(|| {
                Error::internal(
                    "seeding live totals",
                    anyhow::anyhow!("unreadable snapshot {text:?}"),
                )
            })?)
        }
        _ => Watermark::Seq(row.try_get_by_index(0).context("seeding live totals")?),
    };
    let within = |from: DateTime<Utc>, to: DateTime<Utc>| {
        let mut f = dims.clone();
        f.from = Some(from);
        f.to = Some(to);
        f
    };
    let today = analytics::tracked_cost(&txn, &within(day_start, day_end)).await?;
    let month = analytics::tracked_cost(&txn, &within(month_start, month_end)).await?;
    txn.rollback().await.context("seeding live totals")?;
    Ok(Totals {
        watermark,
        epoch,
        today: Total {
            start: day_start,
            end: day_end,
            cost: today,
        },
        month: Total {
            start: month_start,
            end: month_end,
            cost: month,
        },
    })
}

/// A registered cost subscriber; unregisters when dropped.
struct CostSubscription {
    hub: Arc<LiveHub>,
    id: u64,
    rx: mpsc::Receiver<Delivery>,
}

impl Drop for CostSubscription {
    fn drop(&mut self) {
        self.hub.remove_cost(self.id);
    }
}

struct StreamState {
    sub: CostSubscription,
    /// A change taken from the queue while coalescing that starts the next update.
    pending: Option<Delivery>,
    db: DatabaseConnection,
    dims: UsageFilter,
    tz: Tz,
    totals: Totals,
}

/// Follows every committed change that passes `filter` (restricted to what the caller
/// may read: a project-bound token only ever sees its own project), with exact
/// running totals for today and this month in `tz`. The stream ends after an error
/// or when the subscriber was dropped for being too slow.
pub async fn cost_updates(
    hub: Arc<LiveHub>,
    db: DatabaseConnection,
    principal: &Principal,
    filter: UsageFilter,
    tz: Tz,
    on_overflow: OnOverflow,
) -> Result<impl Stream<Item = Result<CostUpdate>> + Send + use<>> {
    principal.require(Scope::Read)?;
    let filter = filter.authorized(principal)?;
    let mut dims = filter.clone();
    dims.from = None;
    dims.to = None;
    let (tx, rx) = mpsc::channel(hub.queue);
    let id = hub.next_id.fetch_add(1, Ordering::Relaxed);
    // Register before seeding: every change after the snapshot is then delivered.
    if let Ok(mut subs) = hub.cost_subs.write() {
        subs.insert(
            id,
            CostSub {
                filter,
                tx,
                on_overflow,
            },
        );
        hub.cost_count.fetch_add(1, Ordering::SeqCst);
    }
    let sub = CostSubscription {
        hub: hub.clone(),
        id,
        rx,
    };
    let totals = seed(&db, &dims, &tz, hub.epoch.load(Ordering::SeqCst)).await?;
    let state = Some(StreamState {
        sub,
        pending: None,
        db,
        dims,
        tz,
        totals,
    });
    Ok(futures::stream::unfold(state, |state| async move {
        let mut st = state?;
        loop {
            let first = match st.pending.take() {
                Some(d) => d,
                None => st.sub.rx.recv().await?,
            };
            let kind = first.0.kind;
            let mut batch = vec![first];
            while batch.len() < MAX_COALESCE {
                match st.sub.rx.try_recv() {
                    Ok(d) if d.0.kind == kind => batch.push(d),
                    Ok(d) => {
                        st.pending = Some(d);
                        break;
                    }
                    Err(_) => break,
                }
            }
            let now = time::now();
            let epoch = st.sub.hub.epoch.load(Ordering::SeqCst);
            if now >= st.totals.today.end || epoch != st.totals.epoch {
                match seed(&st.db, &st.dims, &st.tz, epoch).await {
                    Ok(t) => st.totals = t,
                    Err(e) => return Some((Err(e), None)),
                }
            }
            // Changes up to the snapshot are in the seeded totals already.
            batch.retain(|(change, _)| !st.totals.watermark.holds(change));
            if batch.is_empty() {
                continue;
            }
            let mut delta = 0_i128;
            for (change, matching) in &batch {
                for i in matching {
                    let Some(c) = change.events.get(*i as usize) else {
                        continue;
                    };
                    delta = delta.saturating_add(i128::from(c.delta));
                    if !st.dims.matches(&c.event) {
                        continue;
                    }
                    let t = c.event.occurred_at;
                    if t >= st.totals.today.start && t < st.totals.today.end {
                        st.totals.today.cost = st
                            .totals
                            .today
                            .cost
                            .saturating_add(Usd::from_nanos(c.delta));
                    }
                    if t >= st.totals.month.start && t < st.totals.month.end {
                        st.totals.month.cost = st
                            .totals
                            .month
                            .cost
                            .saturating_add(Usd::from_nanos(c.delta));
                    }
                }
            }
            let update = CostUpdate {
                parts: batch,
                delta: Usd::from_wide_nanos(delta),
                today: st.totals.today,
                month: st.totals.month,
            };
            return Some((Ok(update), Some(st)));
        }
    }))
}

/// A registered alert subscriber; unregisters when dropped.
struct AlertSubscription {
    hub: Arc<LiveHub>,
    id: u64,
    rx: mpsc::Receiver<Arc<Alert>>,
}

impl Drop for AlertSubscription {
    fn drop(&mut self) {
        self.hub.remove_alert(self.id);
    }
}

/// Follows alerts as they fire, restricted to what the caller may read.
pub fn alerts_raised(
    hub: Arc<LiveHub>,
    principal: &Principal,
    filter: AlertFilter,
    on_overflow: OnOverflow,
) -> Result<impl Stream<Item = Arc<Alert>> + Send + use<>> {
    let filter = filter.authorized(principal)?;
    let (tx, rx) = mpsc::channel(hub.queue);
    let id = hub.next_id.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut subs) = hub.alert_subs.write() {
        subs.insert(
            id,
            AlertSub {
                filter,
                tx,
                on_overflow,
            },
        );
    }
    let sub = AlertSubscription { hub, id, rx };
    Ok(futures::stream::unfold(sub, |mut sub| async move {
        let alert = sub.rx.recv().await?;
        Some((alert, sub))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::{ProjectId, UsageEventId};
    use crate::domain::provider::Provider;
    use crate::domain::usage::ingest::Repriced;
    use crate::domain::usage::{CostSource, UsageSource};

    fn event(id: i64, cost: Option<i64>) -> UsageEvent {
        UsageEvent {
            id: UsageEventId(id),
            project: ProjectId::generate(),
            provider: Provider::parse("openai").unwrap(),
            model: "gpt-4o".into(),
            endpoint: None,
            source: UsageSource::Api,
            occurred_at: Utc::now(),
            received_at: Utc::now(),
            tokens: Default::default(),
            requests: 1,
            service_tier: Default::default(),
            variant: None,
            latency_ms: None,
            cost: cost.map(Usd::from_nanos),
            cost_source: CostSource::Computed,
            price_id: None,
            idempotency_key: None,
            user: None,
            metadata: None,
        }
    }

    fn entries(payloads: &[String]) -> Vec<serde_json::Value> {
        payloads
            .iter()
            .flat_map(|p| {
                assert!(p.len() < 8000, "payload of {} bytes", p.len());
                let v: serde_json::Value = serde_json::from_str(p).unwrap();
                assert_eq!(
                    (v["o"].as_u64(), v["s"].as_i64(), v["x"].as_i64()),
                    (Some(7), Some(42), Some(99))
                );
                v["e"].as_array().unwrap().clone()
            })
            .collect()
    }

    #[test]
    fn payloads_stay_under_the_notify_limit_and_carry_every_event() {
        let events: Vec<UsageEvent> = (1..=3000)
            .map(|i| {
                event(
                    1_000_000_000 + i,
                    (i % 3 != 0).then_some(123_456_789_012 + i),
                )
            })
            .collect();
        let split = payloads(7, 42, 99, &LedgerChange::Inserted(&events));
        assert!(split.len() > 1, "a big change is split");
        let all = entries(&split);
        assert_eq!(all.len(), 3000);
        assert_eq!(
            all[0],
            serde_json::json!([1_000_000_001_i64, 123_456_789_013_i64])
        );
        assert_eq!(all[2], serde_json::json!([1_000_000_003_i64, null]));

        let repriced: Vec<Repriced> = events
            .iter()
            .take(500)
            .map(|e| Repriced {
                event: e.clone(),
                previous_cost: None,
                previous_source: CostSource::Unpriced,
            })
            .collect();
        let all = entries(&payloads_of_repriced(&repriced));
        assert_eq!(all.len(), 500);
        assert_eq!(
            all[0],
            serde_json::json!([1_000_000_001_i64, null, 123_456_789_013_i64])
        );
        assert!(payloads(7, 42, 99, &LedgerChange::Inserted(&[])).is_empty());
    }

    #[test]
    fn a_snapshot_holds_exactly_the_transactions_that_ended_before_it() {
        let s = PgSnapshot::parse("100:110:102,107").unwrap();
        assert!(s.sees(99) && s.sees(100) && s.sees(101) && s.sees(109));
        assert!(!s.sees(102) && !s.sees(107), "in progress when taken");
        assert!(!s.sees(110) && !s.sees(111), "began after it was taken");
        let empty = PgSnapshot::parse("5:5:").unwrap();
        assert!(empty.sees(4) && !empty.sees(5));
        for bad in ["", "1", "1:2", "1:2:x", "1:2:3:4", "a:2:"] {
            assert_eq!(PgSnapshot::parse(bad), None, "{bad:?}");
        }
        let mut change = Change {
            seq: 1,
            xid: Some(107),
            kind: ChangeKind::Ingested,
            events: vec![],
        };
        let watermark = Watermark::Snapshot(s);
        assert!(!watermark.holds(&change));
        change.xid = Some(101);
        assert!(watermark.holds(&change));
        // A change without a transaction id is never taken as held on PostgreSQL.
        change.xid = None;
        assert!(!watermark.holds(&change));
        assert!(Watermark::Seq(1).holds(&change) && !Watermark::Seq(0).holds(&change));
    }

    fn payloads_of_repriced(r: &[Repriced]) -> Vec<String> {
        payloads(7, 42, 99, &LedgerChange::Repriced(r))
    }
}
