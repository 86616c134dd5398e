//! Syncing provider reports: runs, their retry rules, schedules and the one-at-a-time
//! rule per credential and kind.
//!
//! A **sync run** row is the durable record of one window to fetch. The job system
//! only carries a run's id; everything a run has done (pages written, the cursor to
//! continue from, every attempt) is in its row, so a run survives a crash:
//!
//! - **One at a time.** A partial unique index allows one `RUNNING`/`RETRYING` run per
//!   (credential, kind). A worker claims a `QUEUED` run with one `UPDATE`; if another
//!   run holds the slot the claim fails on the index and the run stays queued behind
//!   it. This holds across processes on one PostgreSQL database.
//! - **Fenced.** Each claim belongs to a dispatch generation (`dispatch_gen`). Every
//!   write of an executor names its generation, so an executor whose lease was taken
//!   over (it stalled past the lease, or its process was killed) writes nothing more.
//! - **Leased.** A running executor refreshes `heartbeat_at`; a run whose heartbeat is
//!   older than the lease is re-queued under a new generation by any process's
//!   dispatcher and continues from its stored cursor.
//! - **Each page in one transaction**: the rows of a page are upserted on their
//!   natural key ([`provider_report::write_page`]) in the same transaction that moves
//!   the run's counters and cursor, so a crash leaves either the whole page and its
//!   cursor or neither — never partial duplicates.
//! - **Scheduled once.** A scheduled run carries a `tick_key` (credential, kind, tick),
//!   unique in the table: of several processes scheduling the same tick, one inserts.
//!
//! Retry rules (per page): `rate-limited` waits at least the provider's retry-after;
//! `unavailable` and timeouts back off exponentially with jitter; both up to
//! [`SyncSettings::retries`] retries. `unauthorized` and `forbidden` are not retried:
//! the credential becomes `INVALID` with the error. Anything else fails the run with
//! the plugin's message. Every attempt is kept in the run's log.

use crate::domain::auth::{Principal, Scope};
use crate::domain::credential::{self, CredentialMaterial, CredentialStatus};
use crate::domain::error::{Context, Error, FieldError, Result};
use crate::domain::ids::{CredentialId, SyncRunId};
use crate::domain::keyring::Keyring;
use crate::domain::price::text_enum;
use crate::domain::provider::Provider;
use crate::domain::provider_report::{self, PageWrite, ReportKind, ReportRow, ReportTarget};
use crate::domain::time;
use crate::entity::{sync_run, sync_schedule};
use chrono::{DateTime, Duration as ChronoDuration, DurationRound, TimeDelta, Utc};
use futures::future::BoxFuture;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr, Statement,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// What a run fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncKind {
    /// Token usage, in hourly buckets.
    Usage,
    /// Money, in daily buckets.
    Costs,
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncStatus {
    /// Waiting for a worker (or behind another run of its credential and kind).
    Queued,
    /// Fetching and writing.
    Running,
    /// Waiting before another attempt.
    Retrying,
    /// Done: every page written.
    Succeeded,
    /// Stopped: see the error.
    Failed,
}

/// Why a run exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncTrigger {
    /// A credential's schedule.
    Scheduled,
    /// `syncNow`.
    Manual,
}

text_enum!(SyncKind { Usage => "USAGE", Costs => "COSTS" });
text_enum!(SyncStatus { Queued => "QUEUED", Running => "RUNNING", Retrying => "RETRYING", Succeeded => "SUCCEEDED", Failed => "FAILED" });
text_enum!(SyncTrigger { Scheduled => "SCHEDULED", Manual => "MANUAL" });

impl SyncKind {
    /// Both kinds.
    pub const ALL: [SyncKind; 2] = [SyncKind::Usage, SyncKind::Costs];

    /// The bucket width asked of the provider.
    pub fn bucket(self) -> TimeDelta {
        match self {
            SyncKind::Usage => TimeDelta::hours(1),
            SyncKind::Costs => TimeDelta::days(1),
        }
    }

    /// The kind of report rows it writes.
    pub fn report_kind(self) -> ReportKind {
        match self {
            SyncKind::Usage => ReportKind::Usage,
            SyncKind::Costs => ReportKind::Cost,
        }
    }

    /// The default schedule: usage hourly over 48 hours, costs daily over 7 days.
    pub fn default_schedule(self) -> (Duration, Duration) {
        match self {
            SyncKind::Usage => (Duration::from_secs(3_600), Duration::from_secs(48 * 3_600)),
            SyncKind::Costs => (Duration::from_secs(86_400), Duration::from_secs(7 * 86_400)),
        }
    }
}

impl SyncStatus {
    /// Whether the run may still change.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            SyncStatus::Queued | SyncStatus::Running | SyncStatus::Retrying
        )
    }
}

/// Why an attempt failed, as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SyncErrorKind {
    /// The provider rejected the credential.
    Unauthorized,
    /// The credential lacks a permission.
    Forbidden,
    /// Too many requests.
    RateLimited,
    /// The provider is unavailable (or the connection failed).
    Unavailable,
    /// The call took too long.
    Timeout,
    /// The provider answered something unreadable.
    BadResponse,
    /// The plugin does not fetch this kind.
    NotSupported,
    /// The plugin broke (panic, CPU or memory limit, garbage).
    PluginFailed,
    /// Past the caps on pages or rows per run.
    LimitExceeded,
    /// Any other provider error.
    Other,
    /// The credential was removed while the run waited.
    CredentialRemoved,
    /// The server could not read or write its own state.
    Internal,
}

impl SyncErrorKind {
    /// The stored spelling (as in the API).
    pub fn as_str(self) -> &'static str {
        match self {
            SyncErrorKind::Unauthorized => "UNAUTHORIZED",
            SyncErrorKind::Forbidden => "FORBIDDEN",
            SyncErrorKind::RateLimited => "RATE_LIMITED",
            SyncErrorKind::Unavailable => "UNAVAILABLE",
            SyncErrorKind::Timeout => "TIMEOUT",
            SyncErrorKind::BadResponse => "BAD_RESPONSE",
            SyncErrorKind::NotSupported => "NOT_SUPPORTED",
            SyncErrorKind::PluginFailed => "PLUGIN_FAILED",
            SyncErrorKind::LimitExceeded => "LIMIT_EXCEEDED",
            SyncErrorKind::Other => "OTHER",
            SyncErrorKind::CredentialRemoved => "CREDENTIAL_REMOVED",
            SyncErrorKind::Internal => "INTERNAL",
        }
    }
}

/// A failed fetch, in domain terms (the plugin host maps its errors to this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    /// What kind of failure.
    pub kind: SyncErrorKind,
    /// For rate limits: how long the provider asked to wait.
    pub retry_after: Option<Duration>,
    /// The message, naming the plugin, safe to show (no secrets).
    pub message: String,
}

/// One page of a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePage {
    /// Its rows.
    pub rows: Vec<ReportRow>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// What a provider's plugin can sync.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncSupport {
    /// `id@version` of the plugin.
    pub plugin: String,
    /// It fetches usage.
    pub usage: bool,
    /// It fetches costs.
    pub costs: bool,
    /// It has no API: the help text for entering numbers by hand.
    pub manual_entry_help: Option<String>,
}

impl SyncSupport {
    /// Whether it fetches this kind.
    pub fn fetches(&self, kind: SyncKind) -> bool {
        match kind {
            SyncKind::Usage => self.usage,
            SyncKind::Costs => self.costs,
        }
    }
}

/// Where report pages come from: the plugin host in the server, a fake in tests. The
/// domain knows no wasmtime; `plugins/` implements this.
pub trait ReportFetcher: Send + Sync {
    /// What the provider's plugin can do; `None` when no plugin has this id.
    fn support<'a>(&'a self, provider: &'a Provider) -> BoxFuture<'a, Option<SyncSupport>>;

    /// Fetches one page of a window.
    fn fetch_page<'a>(
        &'a self,
        provider: &'a Provider,
        kind: SyncKind,
        material: &'a CredentialMaterial,
        window: SyncWindow,
        cursor: Option<String>,
    ) -> BoxFuture<'a, std::result::Result<SourcePage, SourceError>>;
}

/// A window of buckets: `[start, end)`, both on bucket boundaries of the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncWindow {
    /// Start (inclusive).
    pub start: DateTime<Utc>,
    /// End (exclusive).
    pub end: DateTime<Utc>,
    /// Bucket width.
    pub bucket: SyncKind,
}

/// Longest window one run may cover.
pub const MAX_WINDOW_DAYS: i64 = 400;

impl SyncWindow {
    /// Widens `[from, to)` to whole buckets of the kind (UTC); `from` must be before
    /// `to`, and the window at most [`MAX_WINDOW_DAYS`].
    pub fn covering(
        kind: SyncKind,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> std::result::Result<SyncWindow, FieldError> {
        if from >= to {
            return Err(FieldError::new("to", "must be after `from`"));
        }
        if to - from > TimeDelta::days(MAX_WINDOW_DAYS) {
            return Err(FieldError::new(
                "to",
                format!("a sync window is at most {MAX_WINDOW_DAYS} days"),
            ));
        }
        let bucket = kind.bucket();
        let start = from
            .duration_trunc(bucket)
            .map_err(|_| FieldError::new("from", "is out of range"))?;
        let mut end = to
            .duration_trunc(bucket)
            .map_err(|_| FieldError::new("to", "is out of range"))?;
        if end < to {
            end += bucket;
        }
        Ok(SyncWindow {
            start,
            end,
            bucket: kind,
        })
    }
}

/// How runs retry, lease and page. `AISPEND_SYNC_*` settings fill it.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// Retries of one page after its first attempt (rate limits, outages, timeouts).
    pub retries: u32,
    /// The first backoff for outages and timeouts; doubled per retry, plus up to 50%
    /// jitter.
    pub backoff: Duration,
    /// The longest backoff.
    pub backoff_max: Duration,
    /// The longest retry-after a run waits for; a provider asking for more fails the
    /// page (the next scheduled run tries again).
    pub max_retry_after: Duration,
    /// A running run whose heartbeat is older than this is taken over.
    pub lease: Duration,
    /// How often the dispatcher sweeps for queued and abandoned runs (besides being
    /// woken).
    pub sweep: Duration,
    /// How often the scheduler looks for due schedules.
    pub scheduler_tick: Duration,
    /// A queued run whose job no worker took within this long is pushed again.
    pub redispatch_after: Duration,
    /// Whether this process schedules runs.
    pub scheduler: bool,
    /// Most pages of one run.
    pub max_pages: u32,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            retries: 5,
            backoff: Duration::from_secs(2),
            backoff_max: Duration::from_secs(120),
            max_retry_after: Duration::from_secs(15 * 60),
            lease: Duration::from_secs(60),
            sweep: Duration::from_secs(5),
            scheduler_tick: Duration::from_secs(30),
            redispatch_after: Duration::from_secs(60),
            scheduler: true,
            max_pages: 1_000,
        }
    }
}

impl SyncSettings {
    /// The backoff before retry number `retry` (1-based) of an outage or timeout:
    /// exponential, capped, with up to 50% jitter.
    pub fn backoff_for(&self, retry: u32) -> Duration {
        let base = self
            .backoff
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20))
            .min(self.backoff_max.max(self.backoff));
        let jitter = base.mul_f64(rand::random::<f64>() * 0.5);
        base + jitter
    }
}

/// One attempt, as the run's log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncAttempt {
    /// Attempt number within the run (1-based).
    pub number: u32,
    /// The page it fetched (1-based).
    pub page: u32,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long the fetch took.
    pub duration_ms: u64,
    /// `None` when it succeeded.
    pub error_kind: Option<SyncErrorKind>,
    /// The error.
    pub error_message: Option<String>,
    /// The wait before the next attempt, when one followed.
    pub wait_ms: Option<u64>,
    /// Rows the page had.
    pub rows: u32,
}

/// Attempts kept per run (the first and the latest).
const MAX_LOG: usize = 200;

/// A sync run, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRun {
    /// Id.
    pub id: SyncRunId,
    /// The credential.
    pub credential: CredentialId,
    /// Its provider.
    pub provider: Provider,
    /// What it fetches.
    pub kind: SyncKind,
    /// Why it exists.
    pub trigger: SyncTrigger,
    /// The window.
    pub window_start: DateTime<Utc>,
    /// The window's end (exclusive).
    pub window_end: DateTime<Utc>,
    /// A dry run writes no reports.
    pub dry_run: bool,
    /// Where it is.
    pub status: SyncStatus,
    /// Fetch attempts made.
    pub attempts: u32,
    /// Pages written (or compared, in a dry run).
    pub pages: u32,
    /// Rows counts.
    pub rows: PageWrite,
    /// The last error's kind.
    pub error_kind: Option<SyncErrorKind>,
    /// The last error.
    pub error_message: Option<String>,
    /// Every attempt.
    pub attempt_log: Vec<SyncAttempt>,
    /// Created.
    pub queued_at: DateTime<Utc>,
    /// First claimed.
    pub started_at: Option<DateTime<Utc>>,
    /// Done.
    pub finished_at: Option<DateTime<Utc>>,
    /// When a retrying run tries again.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::internal("decoding a sync run", anyhow::anyhow!("{what}: {e}"))
}

impl TryFrom<sync_run::Model> for SyncRun {
    type Error = Error;
    fn try_from(m: sync_run::Model) -> Result<SyncRun> {
        Ok(SyncRun {
            id: SyncRunId(m.id),
            credential: CredentialId(m.credential_id),
            provider: Provider::parse(&m.provider)
                .ok_or_else(|| corrupt("provider", &m.provider))?,
            kind: m.kind.parse().map_err(|e| corrupt("kind", e))?,
            trigger: m.trigger_kind.parse().map_err(|e| corrupt("trigger", e))?,
            window_start: time::from_micros(m.window_start),
            window_end: time::from_micros(m.window_end),
            dry_run: m.dry_run,
            status: m.status.parse().map_err(|e| corrupt("status", e))?,
            attempts: u32::try_from(m.attempts).unwrap_or(0),
            pages: u32::try_from(m.pages).unwrap_or(0),
            rows: PageWrite {
                inserted: u64::try_from(m.rows_inserted).unwrap_or(0),
                updated: u64::try_from(m.rows_updated).unwrap_or(0),
                unchanged: u64::try_from(m.rows_unchanged).unwrap_or(0),
            },
            error_kind: match m.error_kind.as_deref() {
                None => None,
                Some(k) => Some(
                    serde_json::from_value(serde_json::Value::String(k.to_owned()))
                        .map_err(|e| corrupt("error kind", e))?,
                ),
            },
            error_message: m.error_message,
            attempt_log: serde_json::from_str(&m.attempt_log).map_err(|e| corrupt("log", e))?,
            queued_at: time::from_micros(m.queued_at),
            started_at: m.started_at.map(time::from_micros),
            finished_at: m.finished_at.map(time::from_micros),
            next_attempt_at: m.next_attempt_at.map(time::from_micros),
        })
    }
}

// ---------------------------------------------------------------------------------
// Requesting runs

/// `syncNow` as parsed.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    /// The credential.
    pub credential: CredentialId,
    /// What to fetch.
    pub kind: SyncKind,
    /// Window start; default: the schedule's lookback before `to`.
    pub from: Option<DateTime<Utc>>,
    /// Window end; default: now.
    pub to: Option<DateTime<Utc>>,
    /// Compare only.
    pub dry_run: bool,
}

/// Queues a run for a credential (`syncNow`). An active run of the same credential,
/// kind, window and dry-run flag is joined (returned) rather than duplicated; any
/// other request queues behind the active one.
pub async fn request_run(
    db: &DatabaseConnection,
    principal: &Principal,
    fetcher: &dyn ReportFetcher,
    req: SyncRequest,
) -> Result<SyncRun> {
    let cred = credential::get(db, principal, req.credential).await?;
    let support = fetcher.support(&cred.provider).await.ok_or_else(|| {
        Error::invalid(
            "credentialId",
            format!("no plugin for provider `{}`", cred.provider),
        )
    })?;
    if !support.fetches(req.kind) {
        let message = match &support.manual_entry_help {
            Some(help) => format!(
                "{} has no API to sync from; enter its usage with recordManualUsage. {help}",
                support.plugin
            ),
            None => format!(
                "{} does not fetch {}",
                support.plugin,
                req.kind.as_str().to_lowercase()
            ),
        };
        return Err(Error::invalid("kind", message));
    }
    let (_, lookback) = schedule_of(db, cred.id, req.kind)
        .await?
        .interval_and_lookback();
    let to = req.to.unwrap_or_else(time::now);
    let from = req
        .from
        .unwrap_or_else(|| to - ChronoDuration::from_std(lookback).unwrap_or(TimeDelta::days(2)));
    let window =
        SyncWindow::covering(req.kind, from, to).map_err(|e| Error::InvalidInput(vec![e]))?;
    let txn = write_txn(db).await?;
    lock_credential(&txn, &cred.id).await?;
    let joined = sync_run::Entity::find()
        .filter(sync_run::Column::CredentialId.eq(cred.id.0))
        .filter(sync_run::Column::Kind.eq(req.kind.as_str()))
        .filter(sync_run::Column::WindowStart.eq(time::to_micros(window.start)))
        .filter(sync_run::Column::WindowEnd.eq(time::to_micros(window.end)))
        .filter(sync_run::Column::DryRun.eq(req.dry_run))
        .filter(sync_run::Column::Status.is_in(["QUEUED", "RUNNING", "RETRYING"]))
        .order_by_asc(sync_run::Column::QueuedAt)
        .one(&txn)
        .await
        .context("looking for an active sync run")?;
    let run = match joined {
        Some(existing) => existing,
        None => insert_run(
            &txn,
            &cred.id,
            &cred.provider,
            req.kind,
            SyncTrigger::Manual,
            None,
            window,
            req.dry_run,
        )
        .await?
        .ok_or_else(|| Error::internal("queueing a sync run", anyhow::anyhow!("not inserted")))?,
    };
    txn.commit().await.context("queueing a sync run")?;
    SyncRun::try_from(run)
}

/// A transaction that reads, then writes: on SQLite it takes the write lock first
/// (`BEGIN IMMEDIATE`), so the busy handler waits instead of failing the upgrade.
async fn write_txn(db: &DatabaseConnection) -> Result<sea_orm::DatabaseTransaction> {
    crate::db::begin_write(db)
        .await
        .context("starting a sync transaction")
}

/// Serialises the join-or-queue of one credential's runs. SQLite's `BEGIN IMMEDIATE`
/// already does; on PostgreSQL two requests would otherwise both find no run under
/// READ COMMITTED and queue two identical ones, so the credential's row is locked
/// until the transaction ends.
async fn lock_credential(txn: &sea_orm::DatabaseTransaction, id: &CredentialId) -> Result<()> {
    if txn.get_database_backend() == DbBackend::Postgres {
        crate::entity::credential::Entity::find_by_id(id.0)
            .lock_exclusive()
            .one(txn)
            .await
            .context("locking the credential's sync runs")?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn insert_run(
    conn: &impl ConnectionTrait,
    credential: &CredentialId,
    provider: &Provider,
    kind: SyncKind,
    trigger: SyncTrigger,
    tick_key: Option<String>,
    window: SyncWindow,
    dry_run: bool,
) -> Result<Option<sync_run::Model>> {
    let id = SyncRunId::generate();
    let model = sync_run::ActiveModel {
        id: Set(id.0),
        credential_id: Set(credential.0),
        provider: Set(provider.as_str().to_owned()),
        kind: Set(kind.as_str().to_owned()),
        trigger_kind: Set(trigger.as_str().to_owned()),
        tick_key: Set(tick_key),
        window_start: Set(time::to_micros(window.start)),
        window_end: Set(time::to_micros(window.end)),
        dry_run: Set(dry_run),
        status: Set(SyncStatus::Queued.as_str().to_owned()),
        attempts: Set(0),
        pages: Set(0),
        rows_inserted: Set(0),
        rows_updated: Set(0),
        rows_unchanged: Set(0),
        error_kind: Set(None),
        error_message: Set(None),
        attempt_log: Set("[]".into()),
        queued_at: Set(time::to_micros(time::now())),
        started_at: Set(None),
        finished_at: Set(None),
        heartbeat_at: Set(None),
        next_attempt_at: Set(None),
        cursor: Set(None),
        dispatch_gen: Set(1),
        dispatched_gen: Set(0),
        dispatched_at: Set(None),
    };
    let inserted = sync_run::Entity::insert(model)
        .on_conflict(
            OnConflict::column(sync_run::Column::TickKey)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await
        .context("inserting a sync run")?;
    if inserted == 0 {
        // Another process scheduled this tick first.
        return Ok(None);
    }
    sync_run::Entity::find_by_id(id.0)
        .one(conn)
        .await
        .context("reading a new sync run")
}

// ---------------------------------------------------------------------------------
// Schedules

/// A credential's schedule for one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSchedule {
    /// The credential.
    pub credential: CredentialId,
    /// What it fetches.
    pub kind: SyncKind,
    /// Whether it runs.
    pub enabled: bool,
    /// How often.
    pub every: Duration,
    /// How far back each run looks.
    pub lookback: Duration,
    /// Whether these are the defaults (nothing stored).
    pub is_default: bool,
}

impl SyncSchedule {
    fn default_for(credential: CredentialId, kind: SyncKind) -> SyncSchedule {
        let (every, lookback) = kind.default_schedule();
        SyncSchedule {
            credential,
            kind,
            enabled: true,
            every,
            lookback,
            is_default: true,
        }
    }

    fn interval_and_lookback(&self) -> (Duration, Duration) {
        (self.every, self.lookback)
    }
}

async fn schedule_of(
    conn: &impl ConnectionTrait,
    credential: CredentialId,
    kind: SyncKind,
) -> Result<SyncSchedule> {
    let stored = sync_schedule::Entity::find_by_id((credential.0, kind.as_str().to_owned()))
        .one(conn)
        .await
        .context("reading a sync schedule")?;
    Ok(match stored {
        Some(m) => SyncSchedule {
            credential,
            kind,
            enabled: m.enabled,
            every: Duration::from_secs(u64::try_from(m.every_secs).unwrap_or(3_600)),
            lookback: Duration::from_secs(u64::try_from(m.lookback_secs).unwrap_or(0)),
            is_default: false,
        },
        None => SyncSchedule::default_for(credential, kind),
    })
}

/// A credential's schedules, one per kind its plugin fetches.
pub async fn schedules(
    db: &DatabaseConnection,
    principal: &Principal,
    fetcher: &dyn ReportFetcher,
    credential: CredentialId,
) -> Result<Vec<SyncSchedule>> {
    let cred = credential::get(db, principal, credential).await?;
    let support = fetcher.support(&cred.provider).await.unwrap_or_default();
    let mut out = Vec::new();
    for kind in SyncKind::ALL {
        if support.fetches(kind) {
            out.push(schedule_of(db, cred.id, kind).await?);
        }
    }
    Ok(out)
}

/// Shortest schedule interval and lookback.
pub const MIN_EVERY: Duration = Duration::from_secs(60);

/// A schedule change as parsed.
#[derive(Debug, Clone)]
pub struct ScheduleUpdate {
    /// The credential.
    pub credential: CredentialId,
    /// Which kind.
    pub kind: SyncKind,
    /// Enable or pause.
    pub enabled: Option<bool>,
    /// New interval (≥ 60 s).
    pub every: Option<Duration>,
    /// New lookback (≥ one bucket, ≤ the longest window).
    pub lookback: Option<Duration>,
}

/// Changes a credential's schedule for one kind.
pub async fn update_schedule(
    db: &DatabaseConnection,
    principal: &Principal,
    fetcher: &dyn ReportFetcher,
    update: ScheduleUpdate,
) -> Result<SyncSchedule> {
    let cred = credential::get(db, principal, update.credential).await?;
    let support = fetcher.support(&cred.provider).await.unwrap_or_default();
    let mut problems = Vec::new();
    if !support.fetches(update.kind) {
        problems.push(FieldError::new(
            "kind",
            format!("{} does not fetch this kind", cred.provider),
        ));
    }
    if update
        .every
        .is_some_and(|e| e < MIN_EVERY || e > Duration::from_secs(31 * 86_400))
    {
        problems.push(FieldError::new(
            "everySeconds",
            "must be between 60 seconds and 31 days",
        ));
    }
    let bucket = update
        .kind
        .bucket()
        .to_std()
        .unwrap_or(Duration::from_secs(3_600));
    if update
        .lookback
        .is_some_and(|l| l < bucket || l > Duration::from_secs(MAX_WINDOW_DAYS as u64 * 86_400))
    {
        problems.push(FieldError::new(
            "lookbackSeconds",
            format!(
                "must be between one bucket ({}s) and {MAX_WINDOW_DAYS} days",
                bucket.as_secs()
            ),
        ));
    }
    if !problems.is_empty() {
        return Err(Error::InvalidInput(problems));
    }
    let current = schedule_of(db, cred.id, update.kind).await?;
    let next = SyncSchedule {
        enabled: update.enabled.unwrap_or(current.enabled),
        every: update.every.unwrap_or(current.every),
        lookback: update.lookback.unwrap_or(current.lookback),
        is_default: false,
        ..current
    };
    let model = sync_schedule::ActiveModel {
        credential_id: Set(cred.id.0),
        kind: Set(update.kind.as_str().to_owned()),
        enabled: Set(next.enabled),
        every_secs: Set(i64::try_from(next.every.as_secs()).unwrap_or(i64::MAX)),
        lookback_secs: Set(i64::try_from(next.lookback.as_secs()).unwrap_or(i64::MAX)),
        updated_at: Set(time::to_micros(time::now())),
    };
    sync_schedule::Entity::insert(model)
        .on_conflict(
            OnConflict::columns([
                sync_schedule::Column::CredentialId,
                sync_schedule::Column::Kind,
            ])
            .update_columns([
                sync_schedule::Column::Enabled,
                sync_schedule::Column::EverySecs,
                sync_schedule::Column::LookbackSecs,
                sync_schedule::Column::UpdatedAt,
            ])
            .to_owned(),
        )
        .exec(db)
        .await
        .context("storing a sync schedule")?;
    Ok(next)
}

/// Inserts the runs of every schedule that is due at `now`: one per (credential,
/// kind, tick), decided by the unique `tick_key`, so several processes scheduling at
/// once insert each run once. A schedule whose previous scheduled run is still active
/// skips its tick. Returns the runs this call inserted.
pub async fn schedule_due(
    db: &DatabaseConnection,
    fetcher: &dyn ReportFetcher,
    now: DateTime<Utc>,
) -> Result<Vec<SyncRunId>> {
    let creds = crate::entity::credential::Entity::find()
        .all(db)
        .await
        .context("listing credentials to schedule")?;
    let mut inserted = Vec::new();
    for c in creds {
        if c.status == CredentialStatus::Invalid.as_str() {
            continue;
        }
        let Some(provider) = Provider::parse(&c.provider) else {
            continue;
        };
        let Some(support) = fetcher.support(&provider).await else {
            continue;
        };
        let credential = CredentialId(c.id);
        for kind in SyncKind::ALL {
            if !support.fetches(kind) {
                continue;
            }
            let schedule = schedule_of(db, credential, kind).await?;
            if !schedule.enabled {
                continue;
            }
            let every = i64::try_from(schedule.every.as_secs())
                .unwrap_or(3_600)
                .max(1);
            let tick = now.timestamp().div_euclid(every) * every;
            let tick_key = format!("sync:{credential}:{}:{tick}", kind.as_str());
            let active = sync_run::Entity::find()
                .filter(sync_run::Column::CredentialId.eq(credential.0))
                .filter(sync_run::Column::Kind.eq(kind.as_str()))
                .filter(sync_run::Column::TriggerKind.eq(SyncTrigger::Scheduled.as_str()))
                .filter(sync_run::Column::Status.is_in(["QUEUED", "RUNNING", "RETRYING"]))
                .count(db)
                .await
                .context("looking for an active scheduled run")?;
            if active > 0 {
                continue;
            }
            let lookback =
                ChronoDuration::from_std(schedule.lookback).unwrap_or(TimeDelta::days(2));
            let Ok(window) = SyncWindow::covering(kind, now - lookback, now) else {
                continue;
            };
            if let Some(run) = insert_run(
                db,
                &credential,
                &provider,
                kind,
                SyncTrigger::Scheduled,
                Some(tick_key),
                window,
                false,
            )
            .await?
            {
                tracing::info!(run = %run.id, credential = %credential, kind = kind.as_str(), "scheduled a sync run");
                inserted.push(SyncRunId(run.id));
            }
        }
    }
    Ok(inserted)
}

// ---------------------------------------------------------------------------------
// Dispatching

/// Re-queues runs whose executor stopped refreshing its heartbeat (a killed or stalled
/// process) under a new generation, so a worker continues them from their cursor.
pub async fn recover_abandoned(
    db: &DatabaseConnection,
    lease: Duration,
    now: DateTime<Utc>,
) -> Result<u64> {
    let cutoff = time::to_micros(now) - i64::try_from(lease.as_micros()).unwrap_or(i64::MAX);
    let r = sync_run::Entity::update_many()
        .col_expr(
            sync_run::Column::Status,
            Expr::value(SyncStatus::Queued.as_str()),
        )
        .col_expr(sync_run::Column::DispatchGen, next_generation())
        .col_expr(
            sync_run::Column::NextAttemptAt,
            Expr::value(Option::<i64>::None),
        )
        .filter(sync_run::Column::Status.is_in(["RUNNING", "RETRYING"]))
        .filter(sync_run::Column::HeartbeatAt.lt(cutoff))
        .exec(db)
        .await
        .context("re-queueing abandoned sync runs")?;
    if r.rows_affected > 0 {
        tracing::warn!(
            runs = r.rows_affected,
            "re-queued sync runs whose worker stopped"
        );
    }
    Ok(r.rows_affected)
}

/// Re-dispatches queued runs whose job was pushed more than `after` ago but never
/// claimed, though nothing else of their credential and kind runs (a job the queue
/// lost or stalled on): a new generation makes the dispatcher push a new job; the old
/// one, should it still run, finds nothing to claim.
pub async fn redispatch_stalled(
    db: &DatabaseConnection,
    after: Duration,
    now: DateTime<Utc>,
) -> Result<u64> {
    let cutoff = time::to_micros(now) - i64::try_from(after.as_micros()).unwrap_or(i64::MAX);
    let sql = "UPDATE sync_runs SET dispatch_gen = dispatch_gen + 1 \
         WHERE status = 'QUEUED' AND dispatched_gen = dispatch_gen AND dispatched_at < $1 \
         AND NOT EXISTS (SELECT 1 FROM sync_runs o WHERE o.credential_id = sync_runs.credential_id \
             AND o.kind = sync_runs.kind AND o.status IN ('RUNNING', 'RETRYING'))";
    let backend = db.get_database_backend();
    let sql = if backend == DbBackend::Sqlite {
        sql.replace("$1", "?")
    } else {
        sql.to_owned()
    };
    let r = db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [cutoff.into()],
        ))
        .await
        .context("re-dispatching stalled sync runs")?;
    if r.rows_affected() > 0 {
        tracing::warn!(
            runs = r.rows_affected(),
            "re-dispatched queued sync runs no worker had taken"
        );
    }
    Ok(r.rows_affected())
}

/// `dispatch_gen + 1`.
fn next_generation() -> Expr {
    sea_orm::sea_query::ExprTrait::add(Expr::col(sync_run::Column::DispatchGen), 1)
}

/// A run to hand to the job queue, with the generation that names the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dispatch {
    /// The run.
    pub run: SyncRunId,
    /// Its dispatch generation.
    pub generation: i32,
}

impl Dispatch {
    /// The job's idempotency key: pushing the same generation twice queues once.
    pub fn job_key(&self) -> String {
        format!("sync-run:{}:{}", self.run, self.generation)
    }
}

/// Queued runs not yet handed to the job queue in their current generation, oldest
/// first, skipping those whose credential and kind have a run in progress (they wait
/// behind it).
pub async fn undispatched(db: &DatabaseConnection, limit: u64) -> Result<Vec<Dispatch>> {
    let sql = "SELECT r.id, r.dispatch_gen FROM sync_runs r \
         WHERE r.status = 'QUEUED' AND r.dispatched_gen < r.dispatch_gen \
         AND NOT EXISTS (SELECT 1 FROM sync_runs o WHERE o.credential_id = r.credential_id \
             AND o.kind = r.kind AND o.status IN ('RUNNING', 'RETRYING')) \
         ORDER BY r.queued_at LIMIT $1";
    let backend = db.get_database_backend();
    let sql = if backend == DbBackend::Sqlite {
        sql.replace("$1", "?")
    } else {
        sql.to_owned()
    };
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [i64::try_from(limit).unwrap_or(100).into()],
        ))
        .await
        .context("listing undispatched sync runs")?;
    rows.into_iter()
        .map(|r| {
            Ok(Dispatch {
                run: SyncRunId(r.try_get_by_index(0).context("reading a sync run id")?),
                generation: r
                    .try_get_by_index(1)
                    .context("reading a dispatch generation")?,
            })
        })
        .collect()
}

/// Records that a generation was pushed to the job queue.
pub async fn mark_dispatched(db: &DatabaseConnection, d: Dispatch) -> Result<()> {
    sync_run::Entity::update_many()
        .col_expr(sync_run::Column::DispatchedGen, Expr::value(d.generation))
        .col_expr(
            sync_run::Column::DispatchedAt,
            Expr::value(time::to_micros(time::now())),
        )
        .filter(sync_run::Column::Id.eq(d.run.0))
        .filter(sync_run::Column::DispatchGen.eq(d.generation))
        .exec(db)
        .await
        .context("marking a sync run dispatched")?;
    Ok(())
}

// ---------------------------------------------------------------------------------
// Executing

/// What [`execute`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Executed {
    /// Ran to an end (succeeded or failed).
    Finished(Box<SyncRun>),
    /// Another run of the credential and kind is in progress: this one stays queued.
    Busy,
    /// Not claimable (finished, or claimed by someone else).
    NotClaimed,
    /// Its lease was taken over while running: another executor continues it.
    LostLease,
}

/// Executes one run: claims it, fetches page after page from its cursor with the
/// retry rules, writes each page in one transaction with the run's progress, and
/// records the end. Safe to call for any run id any number of times.
pub async fn execute(
    db: &DatabaseConnection,
    fetcher: &dyn ReportFetcher,
    keyring: &Keyring,
    settings: &SyncSettings,
    id: SyncRunId,
) -> Result<Executed> {
    let now = time::to_micros(time::now());
    let claim = sync_run::Entity::update_many()
        .col_expr(
            sync_run::Column::Status,
            Expr::value(SyncStatus::Running.as_str()),
        )
        .col_expr(sync_run::Column::HeartbeatAt, Expr::value(now))
        .col_expr(
            sync_run::Column::StartedAt,
            Expr::from(sea_orm::sea_query::Func::coalesce([
                Expr::col(sync_run::Column::StartedAt),
                Expr::val(now),
            ])),
        )
        .filter(sync_run::Column::Id.eq(id.0))
        .filter(sync_run::Column::Status.eq(SyncStatus::Queued.as_str()))
        // First in, first out per credential and kind: never start ahead of an
        // older queued run (its own job will start it).
        .filter(Expr::cust(
            "NOT EXISTS (SELECT 1 FROM sync_runs o WHERE o.credential_id = sync_runs.credential_id \
             AND o.kind = sync_runs.kind AND o.status = 'QUEUED' \
             AND (o.queued_at < sync_runs.queued_at \
                  OR (o.queued_at = sync_runs.queued_at AND o.id < sync_runs.id)))",
        ))
        .exec(db)
        .await;
    let behind_another = match claim {
        Ok(r) if r.rows_affected == 1 => false,
        Ok(_) => {
            // Still queued means an older run goes first; anything else is not ours.
            let queued = sync_run::Entity::find_by_id(id.0)
                .filter(sync_run::Column::Status.eq(SyncStatus::Queued.as_str()))
                .one(db)
                .await
                .context("reading an unclaimed sync run")?;
            if queued.is_none() {
                return Ok(Executed::NotClaimed);
            }
            true
        }
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => true,
        Err(e) => return Err(Error::internal("claiming a sync run", e)),
    };
    if behind_another {
        // Queued behind another run: make it dispatchable again once that ends.
        sync_run::Entity::update_many()
            .col_expr(sync_run::Column::DispatchGen, next_generation())
            .filter(sync_run::Column::Id.eq(id.0))
            .filter(sync_run::Column::Status.eq(SyncStatus::Queued.as_str()))
            .exec(db)
            .await
            .context("re-queueing a sync run behind another")?;
        return Ok(Executed::Busy);
    }
    let model = sync_run::Entity::find_by_id(id.0)
        .one(db)
        .await
        .context("reading a claimed sync run")?
        .ok_or(Error::NotFound { what: "sync run" })?;
    let generation = model.dispatch_gen;
    let heartbeat = spawn_heartbeat(db.clone(), id, generation, settings.lease);
    let outcome = Executor {
        db,
        fetcher,
        settings,
        id,
        generation,
        run: SyncRun::try_from(model.clone())?,
        cursor: model.cursor.clone(),
    }
    .run(keyring)
    .await;
    heartbeat.abort();
    outcome
}

fn spawn_heartbeat(
    db: DatabaseConnection,
    id: SyncRunId,
    generation: i32,
    lease: Duration,
) -> tokio::task::JoinHandle<()> {
    let every = (lease / 3).max(Duration::from_millis(50));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let r = sync_run::Entity::update_many()
                .col_expr(
                    sync_run::Column::HeartbeatAt,
                    Expr::value(time::to_micros(time::now())),
                )
                .filter(sync_run::Column::Id.eq(id.0))
                .filter(sync_run::Column::DispatchGen.eq(generation))
                .filter(sync_run::Column::Status.is_in(["RUNNING", "RETRYING"]))
                .exec(&db)
                .await;
            match r {
                Ok(r) if r.rows_affected == 0 => return,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(run = %id, error = %e, "could not refresh a sync run's heartbeat")
                }
            }
        }
    })
}

struct Executor<'a> {
    db: &'a DatabaseConnection,
    fetcher: &'a dyn ReportFetcher,
    settings: &'a SyncSettings,
    id: SyncRunId,
    generation: i32,
    run: SyncRun,
    cursor: Option<String>,
}

enum Step {
    /// Another page follows.
    Continue,
    /// That was the last page.
    Done,
    /// The run ended otherwise (failed, or its lease was lost).
    Ended(Executed),
    /// Another executor holds the run now.
    Lost,
}

impl Executor<'_> {
    async fn run(mut self, keyring: &Keyring) -> Result<Executed> {
        let material = match credential::material(self.db, keyring, self.run.credential).await {
            Ok((_, m)) => m,
            Err(Error::NotFound { .. }) => {
                return self
                    .finish_failed(
                        SyncErrorKind::CredentialRemoved,
                        "the credential was removed".into(),
                    )
                    .await;
            }
            Err(e) => return Err(e),
        };
        let project = crate::entity::credential::Entity::find_by_id(self.run.credential.0)
            .one(self.db)
            .await
            .context("reading a sync run's credential")?
            .and_then(|c| c.project_id)
            .map(crate::domain::ids::ProjectId);
        let target = ReportTarget {
            credential: self.run.credential,
            project,
            provider: self.run.provider.clone(),
            kind: self.run.kind.report_kind(),
        };
        let window = SyncWindow {
            start: self.run.window_start,
            end: self.run.window_end,
            bucket: self.run.kind,
        };
        loop {
            if self.run.pages >= self.settings.max_pages {
                let message = format!("more than {} pages in one run", self.settings.max_pages);
                return self
                    .finish_failed(SyncErrorKind::LimitExceeded, message)
                    .await;
            }
            match self.page(&material, &target, window).await? {
                Step::Continue => continue,
                Step::Done => return self.finish_succeeded().await,
                Step::Ended(executed) => return Ok(executed),
                Step::Lost => return Ok(Executed::LostLease),
            }
        }
    }

    /// Fetches the next page with the retry rules and writes it.
    async fn page(
        &mut self,
        material: &CredentialMaterial,
        target: &ReportTarget,
        window: SyncWindow,
    ) -> Result<Step> {
        let page_number = self.run.pages + 1;
        let mut retries = 0u32;
        loop {
            self.run.attempts += 1;
            let started_at = time::now();
            let clock = std::time::Instant::now();
            let result = self
                .fetcher
                .fetch_page(
                    &self.run.provider,
                    self.run.kind,
                    material,
                    window,
                    self.cursor.clone(),
                )
                .await;
            let duration_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
            match result {
                Ok(page) => {
                    self.log(SyncAttempt {
                        number: self.run.attempts,
                        page: page_number,
                        started_at,
                        duration_ms,
                        error_kind: None,
                        error_message: None,
                        wait_ms: None,
                        rows: u32::try_from(page.rows.len()).unwrap_or(u32::MAX),
                    });
                    return self.write(target, page).await;
                }
                Err(e) => {
                    let wait = match e.kind {
                        SyncErrorKind::RateLimited => {
                            let asked = e.retry_after.unwrap_or_default();
                            if asked > self.settings.max_retry_after {
                                None
                            } else {
                                Some(asked.max(self.settings.backoff_for(retries + 1)))
                            }
                        }
                        SyncErrorKind::Unavailable | SyncErrorKind::Timeout => {
                            Some(self.settings.backoff_for(retries + 1))
                        }
                        _ => None,
                    }
                    .filter(|_| retries < self.settings.retries);
                    self.log(SyncAttempt {
                        number: self.run.attempts,
                        page: page_number,
                        started_at,
                        duration_ms,
                        error_kind: Some(e.kind),
                        error_message: Some(e.message.clone()),
                        wait_ms: wait.map(|w| u64::try_from(w.as_millis()).unwrap_or(u64::MAX)),
                        rows: 0,
                    });
                    self.run.error_kind = Some(e.kind);
                    self.run.error_message = Some(e.message.clone());
                    let Some(wait) = wait else {
                        if matches!(
                            e.kind,
                            SyncErrorKind::Unauthorized | SyncErrorKind::Forbidden
                        ) {
                            credential::mark_rejected(self.db, self.run.credential, &e.message)
                                .await?;
                        }
                        tracing::warn!(run = %self.id, kind = e.kind.as_str(), error = %e.message, "sync run failed");
                        return Ok(Step::Ended(self.finish_failed(e.kind, e.message).await?));
                    };
                    retries += 1;
                    tracing::info!(run = %self.id, kind = e.kind.as_str(), wait_ms = wait.as_millis() as u64, "sync page failed; retrying");
                    if !self.set_retrying(wait).await? {
                        return Ok(Step::Lost);
                    }
                    tokio::time::sleep(wait).await;
                    if !self.set_running().await? {
                        return Ok(Step::Lost);
                    }
                }
            }
        }
    }

    fn log(&mut self, attempt: SyncAttempt) {
        if self.run.attempt_log.len() >= MAX_LOG {
            // Keep the first attempts and the latest ones.
            self.run.attempt_log.remove(MAX_LOG / 2);
        }
        self.run.attempt_log.push(attempt);
    }

    fn log_text(&self) -> Result<String> {
        serde_json::to_string(&self.run.attempt_log).context("encoding a sync run's log")
    }

    fn fenced(&self) -> sea_orm::UpdateMany<sync_run::Entity> {
        sync_run::Entity::update_many()
            .filter(sync_run::Column::Id.eq(self.id.0))
            .filter(sync_run::Column::DispatchGen.eq(self.generation))
    }

    /// A fenced update that also records the attempts, their log and the current
    /// error (none after a page was written): what every step of a run stores.
    fn recorded(&self) -> Result<sea_orm::UpdateMany<sync_run::Entity>> {
        Ok(self
            .fenced()
            .col_expr(
                sync_run::Column::Attempts,
                Expr::value(i32::try_from(self.run.attempts).unwrap_or(i32::MAX)),
            )
            .col_expr(sync_run::Column::AttemptLog, Expr::value(self.log_text()?))
            .col_expr(
                sync_run::Column::ErrorKind,
                Expr::value(self.run.error_kind.map(|k| k.as_str().to_owned())),
            )
            .col_expr(
                sync_run::Column::ErrorMessage,
                Expr::value(self.run.error_message.clone()),
            ))
    }

    /// Writes a page's rows and the run's progress in one transaction (a dry run
    /// compares only).
    async fn write(&mut self, target: &ReportTarget, page: SourcePage) -> Result<Step> {
        let txn = write_txn(self.db).await?;
        let counts =
            provider_report::write_page(&txn, target, &page.rows, self.run.dry_run).await?;
        self.run.pages += 1;
        self.run.rows.add(counts);
        self.run.error_kind = None;
        self.run.error_message = None;
        let moved = self
            .recorded()?
            .col_expr(
                sync_run::Column::Pages,
                Expr::value(i32::try_from(self.run.pages).unwrap_or(i32::MAX)),
            )
            .col_expr(
                sync_run::Column::RowsInserted,
                Expr::value(self.run.rows.inserted as i64),
            )
            .col_expr(
                sync_run::Column::RowsUpdated,
                Expr::value(self.run.rows.updated as i64),
            )
            .col_expr(
                sync_run::Column::RowsUnchanged,
                Expr::value(self.run.rows.unchanged as i64),
            )
            .col_expr(
                sync_run::Column::Cursor,
                Expr::value(page.next_cursor.clone()),
            )
            .col_expr(
                sync_run::Column::HeartbeatAt,
                Expr::value(time::to_micros(time::now())),
            )
            .filter(sync_run::Column::Status.eq(SyncStatus::Running.as_str()))
            .exec(&txn)
            .await
            .context("recording a sync page")?;
        if moved.rows_affected == 0 {
            // Someone else continues this run: write nothing of this page.
            txn.rollback().await.context("abandoning a sync page")?;
            return Ok(Step::Lost);
        }
        txn.commit().await.context("committing a sync page")?;
        self.cursor = page.next_cursor;
        Ok(if self.cursor.is_some() {
            Step::Continue
        } else {
            Step::Done
        })
    }

    async fn set_retrying(&self, wait: Duration) -> Result<bool> {
        let next = time::now() + ChronoDuration::from_std(wait).unwrap_or(TimeDelta::zero());
        let r = self
            .recorded()?
            .col_expr(
                sync_run::Column::Status,
                Expr::value(SyncStatus::Retrying.as_str()),
            )
            .col_expr(
                sync_run::Column::NextAttemptAt,
                Expr::value(time::to_micros(next)),
            )
            .filter(sync_run::Column::Status.eq(SyncStatus::Running.as_str()))
            .exec(self.db)
            .await
            .context("marking a sync run retrying")?;
        Ok(r.rows_affected == 1)
    }

    async fn set_running(&self) -> Result<bool> {
        let r = self
            .fenced()
            .col_expr(
                sync_run::Column::Status,
                Expr::value(SyncStatus::Running.as_str()),
            )
            .col_expr(
                sync_run::Column::NextAttemptAt,
                Expr::value(Option::<i64>::None),
            )
            .col_expr(
                sync_run::Column::HeartbeatAt,
                Expr::value(time::to_micros(time::now())),
            )
            .filter(sync_run::Column::Status.eq(SyncStatus::Retrying.as_str()))
            .exec(self.db)
            .await
            .context("resuming a sync run")?;
        Ok(r.rows_affected == 1)
    }

    async fn finish(&mut self, status: SyncStatus) -> Result<Executed> {
        let finished = time::now();
        let r = self
            .recorded()?
            .col_expr(sync_run::Column::Status, Expr::value(status.as_str()))
            .col_expr(
                sync_run::Column::FinishedAt,
                Expr::value(time::to_micros(finished)),
            )
            .col_expr(
                sync_run::Column::NextAttemptAt,
                Expr::value(Option::<i64>::None),
            )
            .col_expr(
                sync_run::Column::Cursor,
                Expr::value(Option::<String>::None),
            )
            .filter(sync_run::Column::Status.is_in(["RUNNING", "RETRYING"]))
            .exec(self.db)
            .await
            .context("finishing a sync run")?;
        if r.rows_affected == 0 {
            return Ok(Executed::LostLease);
        }
        self.run.status = status;
        self.run.finished_at = Some(finished);
        tracing::info!(
            run = %self.id, status = status.as_str(), pages = self.run.pages,
            inserted = self.run.rows.inserted, updated = self.run.rows.updated,
            unchanged = self.run.rows.unchanged, "sync run finished"
        );
        Ok(Executed::Finished(Box::new(self.run.clone())))
    }

    async fn finish_succeeded(&mut self) -> Result<Executed> {
        self.run.error_kind = None;
        self.run.error_message = None;
        self.finish(SyncStatus::Succeeded).await
    }

    async fn finish_failed(&mut self, kind: SyncErrorKind, message: String) -> Result<Executed> {
        self.run.error_kind = Some(kind);
        self.run.error_message = Some(message);
        self.finish(SyncStatus::Failed).await
    }
}

// ---------------------------------------------------------------------------------
// Reading runs

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct SyncRunFilter {
    /// Only these credentials.
    pub credentials: Vec<CredentialId>,
    /// Only this kind.
    pub kind: Option<SyncKind>,
    /// Only these statuses.
    pub statuses: Vec<SyncStatus>,
    /// Runs whose window ends after this.
    pub from: Option<DateTime<Utc>>,
    /// Runs whose window starts before this.
    pub to: Option<DateTime<Utc>>,
}

/// Runs the caller administers, newest first.
pub async fn list_runs(
    db: &DatabaseConnection,
    principal: &Principal,
    filter: &SyncRunFilter,
    limit: u64,
) -> Result<Vec<SyncRun>> {
    principal.require(Scope::Admin)?;
    let visible: Vec<uuid::Uuid> = credential::list(db, principal)
        .await?
        .into_iter()
        .map(|c| c.id.0)
        .collect();
    let mut q = sync_run::Entity::find().filter(sync_run::Column::CredentialId.is_in(visible));
    if !filter.credentials.is_empty() {
        q = q.filter(sync_run::Column::CredentialId.is_in(filter.credentials.iter().map(|c| c.0)));
    }
    if let Some(kind) = filter.kind {
        q = q.filter(sync_run::Column::Kind.eq(kind.as_str()));
    }
    if !filter.statuses.is_empty() {
        q = q.filter(sync_run::Column::Status.is_in(filter.statuses.iter().map(|s| s.as_str())));
    }
    if let Some(from) = filter.from {
        q = q.filter(sync_run::Column::WindowEnd.gt(time::to_micros(from)));
    }
    if let Some(to) = filter.to {
        q = q.filter(sync_run::Column::WindowStart.lt(time::to_micros(to)));
    }
    q.order_by_desc(sync_run::Column::QueuedAt)
        .order_by_desc(sync_run::Column::Id)
        .limit(limit)
        .all(db)
        .await
        .context("listing sync runs")?
        .into_iter()
        .map(SyncRun::try_from)
        .collect()
}

/// One run, if the caller administers its credential.
pub async fn get_run(
    db: &DatabaseConnection,
    principal: &Principal,
    id: SyncRunId,
) -> Result<SyncRun> {
    let m = sync_run::Entity::find_by_id(id.0)
        .one(db)
        .await
        .context("reading a sync run")?
        .ok_or(Error::NotFound { what: "sync run" })?;
    // Not visible is not found, so ids do not leak.
    credential::get(db, principal, CredentialId(m.credential_id))
        .await
        .map_err(|e| match e {
            Error::Forbidden(_) => Error::NotFound { what: "sync run" },
            other => other,
        })?;
    SyncRun::try_from(m)
}

/// The shared pieces a worker needs to execute runs.
pub struct SyncEngine {
    /// The database.
    pub db: DatabaseConnection,
    /// The plugins.
    pub fetcher: Arc<dyn ReportFetcher>,
    /// Opens credentials.
    pub keyring: Arc<Keyring>,
    /// Settings.
    pub settings: SyncSettings,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn windows_widen_to_whole_buckets() {
        let at = |h, m| Utc.with_ymd_and_hms(2026, 3, 1, h, m, 0).unwrap();
        let w = SyncWindow::covering(SyncKind::Usage, at(1, 30), at(3, 10)).unwrap();
        assert_eq!((w.start, w.end), (at(1, 0), at(4, 0)));
        let w = SyncWindow::covering(SyncKind::Usage, at(1, 0), at(3, 0)).unwrap();
        assert_eq!((w.start, w.end), (at(1, 0), at(3, 0)));
        let d = SyncWindow::covering(SyncKind::Costs, at(1, 30), at(3, 10)).unwrap();
        assert_eq!((d.start, d.end), (at(0, 0), at(0, 0) + TimeDelta::days(1)));
        assert!(SyncWindow::covering(SyncKind::Usage, at(3, 0), at(3, 0)).is_err());
        assert!(
            SyncWindow::covering(SyncKind::Usage, at(3, 0), at(3, 0) + TimeDelta::days(401))
                .is_err()
        );
    }

    #[test]
    fn backoff_doubles_is_capped_and_jitters_at_most_half() {
        let s = SyncSettings {
            backoff: Duration::from_millis(100),
            backoff_max: Duration::from_millis(700),
            ..SyncSettings::default()
        };
        for _ in 0..50 {
            let b1 = s.backoff_for(1);
            assert!(
                b1 >= Duration::from_millis(100) && b1 <= Duration::from_millis(150),
                "{b1:?}"
            );
            let b3 = s.backoff_for(3);
            assert!(
                b3 >= Duration::from_millis(400) && b3 <= Duration::from_millis(600),
                "{b3:?}"
            );
            let b9 = s.backoff_for(9);
            assert!(
                b9 >= Duration::from_millis(700) && b9 <= Duration::from_millis(1050),
                "{b9:?}"
            );
        }
    }
}
