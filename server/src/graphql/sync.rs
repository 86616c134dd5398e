//! Provider sync over GraphQL: `syncNow`, runs and schedules (ADMIN on the
//! credential), manual usage entries, provider reports and fixed subscriptions.

use super::context::ContextExt;
use super::error::{GqlResult, under_argument};
use super::scalars::Decimal;
use super::scalars::Timestamp;
use crate::domain::Error;
use crate::domain::error::{FieldError, parse_each};
use crate::domain::ids::{CredentialId, ProviderReportId, SubscriptionId, SyncRunId};
use crate::domain::money::Usd;
use crate::domain::provider::Provider;
use crate::domain::provider_report::{
    self, ProviderReport, RawManualUsage, ReportFilter, ReportKind, ReportSource,
};
use crate::domain::subscription::{self, RawSubscription, SubscriptionCost, SubscriptionPeriod};
use crate::domain::sync::{
    self, ScheduleUpdate, SyncAttempt, SyncKind, SyncRequest, SyncRun, SyncRunFilter, SyncSchedule,
    SyncStatus,
};
use crate::domain::tokens::TokenCounts;
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::NaiveDate;
use std::time::Duration;

/// What a sync fetches.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "SyncKind")]
pub enum SyncKindGql {
    /// Token usage (hourly buckets).
    Usage,
    /// Costs (daily buckets).
    Costs,
}

impl From<SyncKindGql> for SyncKind {
    fn from(k: SyncKindGql) -> Self {
        match k {
            SyncKindGql::Usage => SyncKind::Usage,
            SyncKindGql::Costs => SyncKind::Costs,
        }
    }
}

impl From<SyncKind> for SyncKindGql {
    fn from(k: SyncKind) -> Self {
        match k {
            SyncKind::Usage => SyncKindGql::Usage,
            SyncKind::Costs => SyncKindGql::Costs,
        }
    }
}

/// Where a sync run is.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "SyncStatus")]
pub enum SyncStatusGql {
    /// Waiting for a worker, or behind another run of its credential and kind.
    Queued,
    /// Fetching and writing pages.
    Running,
    /// Waiting before another attempt (see `nextAttemptAt`).
    Retrying,
    /// Every page written.
    Succeeded,
    /// Stopped (see `errorKind` and `errorMessage`).
    Failed,
}

impl From<SyncStatus> for SyncStatusGql {
    fn from(s: SyncStatus) -> Self {
        match s {
            SyncStatus::Queued => SyncStatusGql::Queued,
            SyncStatus::Running => SyncStatusGql::Running,
            SyncStatus::Retrying => SyncStatusGql::Retrying,
            SyncStatus::Succeeded => SyncStatusGql::Succeeded,
            SyncStatus::Failed => SyncStatusGql::Failed,
        }
    }
}

impl From<SyncStatusGql> for SyncStatus {
    fn from(s: SyncStatusGql) -> Self {
        match s {
            SyncStatusGql::Queued => SyncStatus::Queued,
            SyncStatusGql::Running => SyncStatus::Running,
            SyncStatusGql::Retrying => SyncStatus::Retrying,
            SyncStatusGql::Succeeded => SyncStatus::Succeeded,
            SyncStatusGql::Failed => SyncStatus::Failed,
        }
    }
}

/// One fetch attempt of a run.
#[derive(SimpleObject)]
#[graphql(name = "SyncAttempt")]
pub struct SyncAttemptGql {
    /// Attempt number within the run.
    pub number: i64,
    /// The page it fetched.
    pub page: i64,
    /// When it started.
    pub started_at: Timestamp,
    /// How long the fetch took.
    pub duration_ms: i64,
    /// Why it failed (`RATE_LIMITED`, `UNAVAILABLE`, `TIMEOUT`, `UNAUTHORIZED`,
    /// `FORBIDDEN`, `BAD_RESPONSE`, ...); null when it succeeded.
    pub error_kind: Option<String>,
    /// The error, naming the plugin.
    pub error_message: Option<String>,
    /// The wait before the next attempt.
    pub wait_ms: Option<i64>,
    /// Rows in the page.
    pub rows: i64,
}

impl From<SyncAttempt> for SyncAttemptGql {
    fn from(a: SyncAttempt) -> Self {
        SyncAttemptGql {
            number: a.number.into(),
            page: a.page.into(),
            started_at: a.started_at.into(),
            duration_ms: i64::try_from(a.duration_ms).unwrap_or(i64::MAX),
            error_kind: a.error_kind.map(|k| k.as_str().to_owned()),
            error_message: a.error_message,
            wait_ms: a.wait_ms.map(|w| i64::try_from(w).unwrap_or(i64::MAX)),
            rows: a.rows.into(),
        }
    }
}

/// A sync run: one window of one credential's usage or costs.
#[derive(SimpleObject)]
#[graphql(name = "SyncRun")]
pub struct SyncRunGql {
    /// Id.
    pub id: ID,
    /// The credential.
    pub credential_id: ID,
    /// Its provider.
    pub provider: String,
    /// What it fetches.
    pub kind: SyncKindGql,
    /// `SCHEDULED` or `MANUAL` (syncNow).
    pub trigger: String,
    /// Window start.
    pub from: Timestamp,
    /// Window end (exclusive).
    pub to: Timestamp,
    /// A dry run compares and writes no reports.
    pub dry_run: bool,
    /// Where it is.
    pub status: SyncStatusGql,
    /// Fetch attempts made (first tries and retries).
    pub attempts: i64,
    /// Pages written (or compared).
    pub pages: i64,
    /// Report rows that were new (would be, in a dry run).
    pub rows_inserted: i64,
    /// Report rows a provider corrected.
    pub rows_updated: i64,
    /// Report rows that already said the same.
    pub rows_unchanged: i64,
    /// The last error's kind.
    pub error_kind: Option<String>,
    /// The last error, with the plugin's message.
    pub error_message: Option<String>,
    /// Every attempt, in order.
    pub attempt_log: Vec<SyncAttemptGql>,
    /// When it was queued.
    pub queued_at: Timestamp,
    /// When a worker first took it.
    pub started_at: Option<Timestamp>,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
    /// When a retrying run tries again.
    pub next_attempt_at: Option<Timestamp>,
    /// Seconds from start to end.
    pub duration_seconds: Option<f64>,
}

impl From<SyncRun> for SyncRunGql {
    fn from(r: SyncRun) -> Self {
        let duration_seconds = match (r.started_at, r.finished_at) {
            (Some(s), Some(f)) => Some((f - s).num_milliseconds() as f64 / 1000.0),
            _ => None,
        };
        SyncRunGql {
            id: ID(r.id.to_string()),
            credential_id: ID(r.credential.to_string()),
            provider: r.provider.to_string(),
            kind: r.kind.into(),
            trigger: r.trigger.as_str().to_owned(),
            from: r.window_start.into(),
            to: r.window_end.into(),
            dry_run: r.dry_run,
            status: r.status.into(),
            attempts: r.attempts.into(),
            pages: r.pages.into(),
            rows_inserted: i64::try_from(r.rows.inserted).unwrap_or(i64::MAX),
            rows_updated: i64::try_from(r.rows.updated).unwrap_or(i64::MAX),
            rows_unchanged: i64::try_from(r.rows.unchanged).unwrap_or(i64::MAX),
            error_kind: r.error_kind.map(|k| k.as_str().to_owned()),
            error_message: r.error_message,
            attempt_log: r.attempt_log.into_iter().map(Into::into).collect(),
            queued_at: r.queued_at.into(),
            started_at: r.started_at.map(Into::into),
            finished_at: r.finished_at.map(Into::into),
            next_attempt_at: r.next_attempt_at.map(Into::into),
            duration_seconds,
        }
    }
}

/// A credential's schedule for one kind.
#[derive(SimpleObject)]
#[graphql(name = "SyncSchedule")]
pub struct SyncScheduleGql {
    /// The credential.
    pub credential_id: ID,
    /// What it fetches.
    pub kind: SyncKindGql,
    /// Whether it runs.
    pub enabled: bool,
    /// Seconds between runs.
    pub every_seconds: i64,
    /// How far back each run looks, in seconds.
    pub lookback_seconds: i64,
    /// Whether these are the defaults (usage hourly over 48 h, costs daily over 7 days).
    pub is_default: bool,
}

impl From<SyncSchedule> for SyncScheduleGql {
    fn from(s: SyncSchedule) -> Self {
        SyncScheduleGql {
            credential_id: ID(s.credential.to_string()),
            kind: s.kind.into(),
            enabled: s.enabled,
            every_seconds: i64::try_from(s.every.as_secs()).unwrap_or(i64::MAX),
            lookback_seconds: i64::try_from(s.lookback.as_secs()).unwrap_or(i64::MAX),
            is_default: s.is_default,
        }
    }
}

/// Which runs to list.
#[derive(InputObject, Default)]
pub struct SyncRunFilterInput {
    /// Only these credentials.
    pub credential_ids: Option<Vec<ID>>,
    /// Only this kind.
    pub kind: Option<SyncKindGql>,
    /// Only these statuses.
    pub statuses: Option<Vec<SyncStatusGql>>,
    /// Runs whose window ends after this.
    pub from: Option<Timestamp>,
    /// Runs whose window starts before this.
    pub to: Option<Timestamp>,
}

/// A schedule change; omitted fields stay.
#[derive(InputObject)]
pub struct UpdateSyncScheduleInput {
    /// The credential.
    pub credential_id: ID,
    /// Which kind.
    pub kind: SyncKindGql,
    /// Run or pause.
    pub enabled: Option<bool>,
    /// Seconds between runs (60 s to 31 days).
    pub every_seconds: Option<i64>,
    /// How far back each run looks, in seconds.
    pub lookback_seconds: Option<i64>,
}

fn credential_id(id: &ID, field: &str) -> Result<CredentialId, Error> {
    id.parse()
        .map_err(|_| Error::invalid(field, "is not a credential id"))
}

fn seconds(value: Option<i64>, field: &str, errors: &mut Vec<FieldError>) -> Option<Duration> {
    match value {
        None => None,
        Some(v) if v > 0 => Some(Duration::from_secs(v as u64)),
        Some(_) => {
            errors.push(FieldError::new(field, "must be positive"));
            None
        }
    }
}

// ---------------------------------------------------------------------------------
// Reports, manual entries, subscriptions

/// What a report row counts.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "ReportKind")]
pub enum ReportKindGql {
    /// Tokens and requests from a provider's usage API.
    Usage,
    /// Money from a provider's cost API.
    Cost,
    /// Entered by a person.
    Manual,
}

/// Where a report came from.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "ReportSource")]
pub enum ReportSourceGql {
    /// A provider's API, through its plugin.
    ProviderSync,
    /// Entered by a person.
    Manual,
}

impl From<ReportSource> for ReportSourceGql {
    fn from(s: ReportSource) -> Self {
        match s {
            ReportSource::ProviderSync => ReportSourceGql::ProviderSync,
            ReportSource::Manual => ReportSourceGql::Manual,
        }
    }
}

impl From<ReportSourceGql> for ReportSource {
    fn from(s: ReportSourceGql) -> Self {
        match s {
            ReportSourceGql::ProviderSync => ReportSource::ProviderSync,
            ReportSourceGql::Manual => ReportSource::Manual,
        }
    }
}

/// A non-token unit (seats, premium requests, searches).
#[derive(SimpleObject)]
#[graphql(name = "ReportUnit")]
pub struct ReportUnitGql {
    /// Unit name.
    pub unit: String,
    /// Exact quantity.
    pub quantity: Decimal,
}

/// A bucket a provider (or a person) reported.
#[derive(SimpleObject)]
#[graphql(name = "ProviderReport")]
pub struct ProviderReportGql {
    /// Id.
    pub id: ID,
    /// The credential it was synced with (null for manual entries).
    pub credential_id: Option<ID>,
    /// The project it is attributed to.
    pub project_id: Option<ID>,
    /// Provider.
    pub provider: String,
    /// Kind.
    pub kind: ReportKindGql,
    /// `PROVIDER_SYNC` or `MANUAL`.
    pub source: ReportSourceGql,
    /// True for numbers a person entered.
    pub user_entered: bool,
    /// Bucket start.
    pub from: Timestamp,
    /// Bucket end (exclusive).
    pub to: Timestamp,
    /// Model as the provider names it (null when not reported).
    pub model: Option<String>,
    /// The provider's project id.
    pub external_project: Option<String>,
    /// The provider's workspace id.
    pub workspace: Option<String>,
    /// The provider's API key id.
    pub api_key: Option<String>,
    /// Service tier as reported.
    pub service_tier: Option<String>,
    /// Cost line item.
    pub line_item: Option<String>,
    /// Requests.
    pub requests: i64,
    /// Input tokens (base rate).
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Cache reads.
    pub cache_read_tokens: i64,
    /// 5-minute cache writes.
    pub cache_write_tokens: i64,
    /// 1-hour cache writes.
    #[graphql(name = "cacheWrite1hTokens")]
    pub cache_write_1h_tokens: i64,
    /// Reasoning tokens (part of output).
    pub reasoning_tokens: i64,
    /// Other units.
    pub units: Vec<ReportUnitGql>,
    /// Amount (in `currency`).
    pub amount: Option<Decimal>,
    /// Amount when the currency is USD.
    pub amount_usd: Option<Decimal>,
    /// ISO 4217 currency of the amount.
    pub currency: Option<String>,
    /// A person's note.
    pub note: Option<String>,
    /// First stored.
    pub created_at: Timestamp,
    /// Last changed (a provider's correction, an edit).
    pub updated_at: Timestamp,
}

fn non_empty(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

impl From<ProviderReport> for ProviderReportGql {
    fn from(r: ProviderReport) -> Self {
        let m = r.measures;
        let t = m.tokens;
        let amount = m.amount.map(Usd::to_decimal);
        let usd = m.currency.as_deref().is_none_or(|c| c == "USD");
        ProviderReportGql {
            id: ID(r.id.to_string()),
            credential_id: r.credential.map(|c| ID(c.to_string())),
            project_id: r.project.map(|p| ID(p.to_string())),
            provider: r.provider.to_string(),
            kind: match r.kind {
                ReportKind::Usage => ReportKindGql::Usage,
                ReportKind::Cost => ReportKindGql::Cost,
                ReportKind::Manual => ReportKindGql::Manual,
            },
            source: r.source.into(),
            user_entered: r.source == ReportSource::Manual,
            from: r.key.bucket_start.into(),
            to: r.key.bucket_end.into(),
            model: non_empty(r.key.model),
            external_project: non_empty(r.key.external_project),
            workspace: non_empty(r.key.workspace),
            api_key: non_empty(r.key.api_key),
            service_tier: non_empty(r.key.service_tier),
            line_item: non_empty(r.key.line_item),
            requests: m.requests,
            input_tokens: t.input,
            output_tokens: t.output,
            cache_read_tokens: t.cache_read,
            cache_write_tokens: t.cache_write,
            cache_write_1h_tokens: t.cache_write_1h,
            reasoning_tokens: t.reasoning,
            units: m
                .units
                .into_iter()
                .map(|u| ReportUnitGql {
                    unit: u.unit,
                    quantity: u.quantity.into(),
                })
                .collect(),
            amount: amount.map(Into::into),
            amount_usd: if usd { amount.map(Into::into) } else { None },
            currency: m.currency,
            note: r.note,
            created_at: r.created_at.into(),
            updated_at: r.updated_at.into(),
        }
    }
}

/// Usage a person enters for a provider without an API (or to fill a gap).
#[derive(InputObject)]
pub struct ManualUsageInput {
    /// Provider.
    pub provider: String,
    /// The project; a bound token's own project by default.
    pub project_id: Option<ID>,
    /// Period start.
    pub from: Timestamp,
    /// Period end (exclusive).
    pub to: Timestamp,
    /// Model, when the numbers are for one.
    pub model: Option<String>,
    /// Requests.
    pub requests: Option<i64>,
    /// Input tokens (base rate).
    pub input_tokens: Option<i64>,
    /// Output tokens.
    pub output_tokens: Option<i64>,
    /// Cache reads.
    pub cache_read_tokens: Option<i64>,
    /// 5-minute cache writes.
    pub cache_write_tokens: Option<i64>,
    /// 1-hour cache writes.
    #[graphql(name = "cacheWrite1hTokens")]
    pub cache_write_1h_tokens: Option<i64>,
    /// Reasoning tokens (part of output).
    pub reasoning_tokens: Option<i64>,
    /// What it cost, in USD.
    pub amount_usd: Option<Decimal>,
    /// Where the numbers come from.
    pub note: Option<String>,
}

impl From<ManualUsageInput> for RawManualUsage {
    fn from(i: ManualUsageInput) -> Self {
        RawManualUsage {
            provider: i.provider,
            project_id: i.project_id.map(|p| p.0),
            from: i.from.into(),
            to: i.to.into(),
            model: i.model,
            requests: i.requests,
            tokens: TokenCounts {
                input: i.input_tokens.unwrap_or(0),
                output: i.output_tokens.unwrap_or(0),
                cache_read: i.cache_read_tokens.unwrap_or(0),
                cache_write: i.cache_write_tokens.unwrap_or(0),
                cache_write_1h: i.cache_write_1h_tokens.unwrap_or(0),
                reasoning: i.reasoning_tokens.unwrap_or(0),
                ..TokenCounts::default()
            },
            amount_usd: i.amount_usd.map(Into::into),
            note: i.note,
        }
    }
}

/// Which reports to list.
#[derive(InputObject, Default)]
pub struct ProviderReportFilterInput {
    /// Providers.
    pub providers: Option<Vec<String>>,
    /// Projects.
    pub project_ids: Option<Vec<ID>>,
    /// Credentials.
    pub credential_ids: Option<Vec<ID>>,
    /// Sources.
    pub sources: Option<Vec<ReportSourceGql>>,
    /// Buckets starting at or after.
    pub from: Option<Timestamp>,
    /// Buckets starting before.
    pub to: Option<Timestamp>,
}

fn parse_report_filter(f: ProviderReportFilterInput) -> Result<ReportFilter, Error> {
    let mut errors = Vec::new();
    let providers = parse_each(
        f.providers,
        "providers",
        "must be a provider name",
        Provider::parse,
        &mut errors,
    );
    let projects = parse_each(
        f.project_ids,
        "projectIds",
        "is not a project id",
        |p| p.parse().ok(),
        &mut errors,
    );
    let credentials = parse_each(
        f.credential_ids,
        "credentialIds",
        "is not a credential id",
        |c| c.parse().ok(),
        &mut errors,
    );
    if !errors.is_empty() {
        return Err(Error::InvalidInput(errors));
    }
    Ok(ReportFilter {
        providers,
        projects,
        credentials,
        sources: f
            .sources
            .unwrap_or_default()
            .into_iter()
            .map(Into::into)
            .collect(),
        from: f.from.map(Into::into),
        to: f.to.map(Into::into),
    })
}

/// How often a plan is billed.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "SubscriptionPeriod")]
pub enum SubscriptionPeriodGql {
    /// Monthly, on the start day's date.
    Monthly,
    /// Yearly.
    Yearly,
}

/// A fixed subscription (a Copilot seat plan, a ChatGPT or Perplexity plan).
#[derive(SimpleObject)]
#[graphql(name = "SubscriptionCost")]
pub struct SubscriptionCostGql {
    /// Id.
    pub id: ID,
    /// Provider.
    pub provider: String,
    /// Plan name.
    pub plan: String,
    /// Project it is attributed to.
    pub project_id: Option<ID>,
    /// Price per seat and period, USD.
    pub amount_usd: Decimal,
    /// Period.
    pub period: SubscriptionPeriodGql,
    /// Seats.
    pub seats: i64,
    /// Total per period (amount × seats).
    pub period_total_usd: Option<Decimal>,
    /// First day (`YYYY-MM-DD`).
    pub starts_on: String,
    /// Last day covered (`YYYY-MM-DD`).
    pub ends_on: Option<String>,
    /// Note.
    pub note: Option<String>,
}

impl From<SubscriptionCost> for SubscriptionCostGql {
    fn from(s: SubscriptionCost) -> Self {
        SubscriptionCostGql {
            id: ID(s.id.to_string()),
            provider: s.provider.to_string(),
            plan: s.plan.clone(),
            project_id: s.project.map(|p| ID(p.to_string())),
            amount_usd: s.amount.to_decimal().into(),
            period: match s.period {
                SubscriptionPeriod::Monthly => SubscriptionPeriodGql::Monthly,
                SubscriptionPeriod::Yearly => SubscriptionPeriodGql::Yearly,
            },
            seats: s.seats,
            period_total_usd: s.period_total().map(Usd::to_decimal).map(Into::into),
            starts_on: s.starts_on.to_string(),
            ends_on: s.ends_on.map(|d| d.to_string()),
            note: s.note,
        }
    }
}

/// A new fixed subscription.
#[derive(InputObject)]
pub struct SubscriptionCostInput {
    /// Provider.
    pub provider: String,
    /// Plan name.
    pub plan: String,
    /// Price per seat and period, USD.
    pub amount_usd: Decimal,
    /// Billing period.
    pub period: SubscriptionPeriodGql,
    /// Seats (default 1).
    pub seats: Option<i64>,
    /// First day (`YYYY-MM-DD`).
    pub starts_on: String,
    /// Last day covered (`YYYY-MM-DD`), open-ended when omitted.
    pub ends_on: Option<String>,
    /// Project.
    pub project_id: Option<ID>,
    /// Note.
    pub note: Option<String>,
}

fn date(text: &str, field: &str, errors: &mut Vec<FieldError>) -> Option<NaiveDate> {
    let parsed = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| errors.push(FieldError::new(field, "must be a date like 2026-01-31")))
        .ok()?;
    crate::domain::time::accepted_date(parsed)
        .map_err(|m| errors.push(FieldError::new(field, m)))
        .ok()
}

/// What the API knows about entering a provider's usage by hand.
#[derive(SimpleObject)]
#[graphql(name = "ManualEntryInfo")]
pub struct ManualEntryInfoGql {
    /// Provider.
    pub provider: String,
    /// `id@version` of its plugin, when one is installed.
    pub plugin: Option<String>,
    /// True when the plugin has no API and usage is entered by hand.
    pub manual_entry: bool,
    /// The plugin's help text: where to find the numbers.
    pub help: Option<String>,
    /// Whether its usage can be synced.
    pub syncs_usage: bool,
    /// Whether its costs can be synced.
    pub syncs_costs: bool,
}

// ---------------------------------------------------------------------------------

/// Sync, report and subscription queries.
#[derive(Default)]
pub struct SyncQuery;

#[Object]
impl SyncQuery {
    /// Sync runs of the credentials the caller administers, newest first.
    async fn sync_runs(
        &self,
        ctx: &Context<'_>,
        filter: Option<SyncRunFilterInput>,
        #[graphql(default = 50)] first: i32,
    ) -> async_graphql::Result<Vec<SyncRunGql>> {
        let state = ctx.state()?;
        let f = filter.unwrap_or_default();
        let mut errors = Vec::new();
        let credentials = f
            .credential_ids
            .unwrap_or_default()
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                credential_id(c, &format!("filter.credentialIds.{i}"))
                    .map_err(|e| {
                        if let Error::InvalidInput(mut es) = e {
                            errors.append(&mut es);
                        }
                    })
                    .ok()
            })
            .collect();
        if !(1..=500).contains(&first) {
            errors.push(FieldError::new("first", "must be between 1 and 500"));
        }
        if !errors.is_empty() {
            return Err(Error::InvalidInput(errors)).gql();
        }
        let filter = SyncRunFilter {
            credentials,
            kind: f.kind.map(Into::into),
            statuses: f
                .statuses
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            from: f.from.map(Into::into),
            to: f.to.map(Into::into),
        };
        Ok(
            sync::list_runs(&state.db, ctx.principal(), &filter, first as u64)
                .await
                .gql()?
                .into_iter()
                .map(Into::into)
                .collect(),
        )
    }

    /// One sync run.
    async fn sync_run(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<SyncRunGql> {
        let state = ctx.state()?;
        let id: SyncRunId = id
            .parse()
            .map_err(|_| Error::invalid("id", "is not a sync run id"))
            .gql()?;
        sync::get_run(&state.db, ctx.principal(), id)
            .await
            .gql()
            .map(Into::into)
    }

    /// A credential's schedules (one per kind its plugin fetches).
    async fn sync_schedules(
        &self,
        ctx: &Context<'_>,
        credential_id: ID,
    ) -> async_graphql::Result<Vec<SyncScheduleGql>> {
        let state = ctx.state()?;
        let id = self::credential_id(&credential_id, "credentialId").gql()?;
        Ok(
            sync::schedules(&state.db, ctx.principal(), state.plugins.as_ref(), id)
                .await
                .gql()?
                .into_iter()
                .map(Into::into)
                .collect(),
        )
    }

    /// Provider reports (synced and user-entered), newest bucket first.
    async fn provider_reports(
        &self,
        ctx: &Context<'_>,
        filter: Option<ProviderReportFilterInput>,
        #[graphql(default = 100)] first: i32,
    ) -> async_graphql::Result<Vec<ProviderReportGql>> {
        let state = ctx.state()?;
        let principal = ctx.principal();
        principal.require(crate::domain::auth::Scope::Read).gql()?;
        let filter = parse_report_filter(filter.unwrap_or_default())
            .map_err(|e| under_argument(e, "filter"))
            .gql()?;
        if !(1..=1000).contains(&first) {
            return Err(Error::invalid("first", "must be between 1 and 1000")).gql();
        }
        Ok(
            provider_report::list(&state.db, principal, &filter, first as u64)
                .await
                .gql()?
                .into_iter()
                .map(Into::into)
                .collect(),
        )
    }

    /// Fixed subscriptions the caller may read.
    async fn subscription_costs(
        &self,
        ctx: &Context<'_>,
        providers: Option<Vec<String>>,
    ) -> async_graphql::Result<Vec<SubscriptionCostGql>> {
        let state = ctx.state()?;
        let mut parsed = Vec::new();
        for (i, p) in providers.unwrap_or_default().iter().enumerate() {
            parsed.push(
                Provider::parse(p)
                    .ok_or_else(|| {
                        Error::invalid(format!("providers.{i}"), "must be a provider name")
                    })
                    .gql()?,
            );
        }
        Ok(subscription::list(&state.db, ctx.principal(), &parsed)
            .await
            .gql()?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Whether a provider's usage is entered by hand, with its plugin's help text.
    async fn manual_entry(
        &self,
        ctx: &Context<'_>,
        provider: String,
    ) -> async_graphql::Result<ManualEntryInfoGql> {
        let state = ctx.state()?;
        ctx.principal()
            .require(crate::domain::auth::Scope::Read)
            .gql()?;
        let p = Provider::parse(&provider)
            .ok_or_else(|| Error::invalid("provider", "must be a provider name"))
            .gql()?;
        let support = sync::ReportFetcher::support(state.plugins.as_ref(), &p).await;
        Ok(ManualEntryInfoGql {
            provider: p.to_string(),
            plugin: support.as_ref().map(|s| s.plugin.clone()),
            // A provider without a plugin can only be entered by hand.
            manual_entry: support
                .as_ref()
                .is_none_or(|s| s.manual_entry_help.is_some()),
            help: support.as_ref().and_then(|s| s.manual_entry_help.clone()),
            syncs_usage: support.as_ref().is_some_and(|s| s.usage),
            syncs_costs: support.as_ref().is_some_and(|s| s.costs),
        })
    }
}

/// Sync, report and subscription mutations.
#[derive(Default)]
pub struct SyncMutation;

#[Object]
impl SyncMutation {
    /// Queues a sync of one credential's usage (default) or costs over a window
    /// (default: the schedule's lookback up to now). Joins an identical active run;
    /// otherwise queues behind the active run of the credential and kind.
    async fn sync_now(
        &self,
        ctx: &Context<'_>,
        credential_id: ID,
        #[graphql(default_with = "SyncKindGql::Usage")] kind: SyncKindGql,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        #[graphql(default = false)] dry_run: bool,
    ) -> async_graphql::Result<SyncRunGql> {
        let state = ctx.state()?;
        let id = self::credential_id(&credential_id, "credentialId").gql()?;
        let run = sync::request_run(
            &state.db,
            ctx.principal(),
            state.plugins.as_ref(),
            SyncRequest {
                credential: id,
                kind: kind.into(),
                from: from.map(Into::into),
                to: to.map(Into::into),
                dry_run,
            },
        )
        .await
        .gql()?;
        state.sync_wake.notify_one();
        Ok(run.into())
    }

    /// Changes a credential's schedule for one kind.
    async fn update_sync_schedule(
        &self,
        ctx: &Context<'_>,
        input: UpdateSyncScheduleInput,
    ) -> async_graphql::Result<SyncScheduleGql> {
        let state = ctx.state()?;
        let mut errors = Vec::new();
        let credential = credential_id(&input.credential_id, "credentialId")
            .map_err(|e| {
                if let Error::InvalidInput(mut es) = e {
                    errors.append(&mut es);
                }
            })
            .ok();
        let every = seconds(input.every_seconds, "everySeconds", &mut errors);
        let lookback = seconds(input.lookback_seconds, "lookbackSeconds", &mut errors);
        let Some(credential) = credential.filter(|_| errors.is_empty()) else {
            return Err(under_argument(Error::InvalidInput(errors), "input")).gql();
        };
        sync::update_schedule(
            &state.db,
            ctx.principal(),
            state.plugins.as_ref(),
            ScheduleUpdate {
                credential,
                kind: input.kind.into(),
                enabled: input.enabled,
                every,
                lookback,
            },
        )
        .await
        .map_err(|e| under_argument(e, "input"))
        .gql()
        .map(Into::into)
    }

    /// Records usage entered by hand (source MANUAL, shown as user-entered).
    async fn record_manual_usage(
        &self,
        ctx: &Context<'_>,
        input: ManualUsageInput,
    ) -> async_graphql::Result<ProviderReportGql> {
        let state = ctx.state()?;
        let principal = ctx.principal();
        let entry = RawManualUsage::from(input)
            .parse(principal)
            .map_err(|e| under_argument(e, "input"))
            .gql()?;
        provider_report::record_manual(&state.db, principal, entry)
            .await
            .map_err(|e| under_argument(e, "input"))
            .gql()
            .map(Into::into)
    }

    /// Replaces a manual entry.
    async fn update_manual_usage(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: ManualUsageInput,
    ) -> async_graphql::Result<ProviderReportGql> {
        let state = ctx.state()?;
        let principal = ctx.principal();
        let id: ProviderReportId = id
            .parse()
            .map_err(|_| Error::invalid("id", "is not a report id"))
            .gql()?;
        let entry = RawManualUsage::from(input)
            .parse(principal)
            .map_err(|e| under_argument(e, "input"))
            .gql()?;
        provider_report::update_manual(&state.db, principal, id, entry)
            .await
            .map_err(|e| under_argument(e, "input"))
            .gql()
            .map(Into::into)
    }

    /// Deletes a manual entry (synced reports cannot be deleted); returns what it was.
    async fn delete_manual_usage(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<ProviderReportGql> {
        let state = ctx.state()?;
        let id: ProviderReportId = id
            .parse()
            .map_err(|_| Error::invalid("id", "is not a report id"))
            .gql()?;
        provider_report::delete_manual(&state.db, ctx.principal(), id)
            .await
            .gql()
            .map(Into::into)
    }

    /// Books a fixed subscription per period, spread over the period's days in
    /// analytics.
    async fn create_subscription_cost(
        &self,
        ctx: &Context<'_>,
        input: SubscriptionCostInput,
    ) -> async_graphql::Result<SubscriptionCostGql> {
        let state = ctx.state()?;
        let principal = ctx.principal();
        let mut errors = Vec::new();
        let starts_on = date(&input.starts_on, "startsOn", &mut errors);
        let ends_on = input
            .ends_on
            .as_deref()
            .and_then(|d| date(d, "endsOn", &mut errors));
        let Some(starts_on) = starts_on.filter(|_| errors.is_empty()) else {
            return Err(under_argument(Error::InvalidInput(errors), "input")).gql();
        };
        let raw = RawSubscription {
            provider: input.provider,
            plan: input.plan,
            amount_usd: input.amount_usd.into(),
            period: match input.period {
                SubscriptionPeriodGql::Monthly => SubscriptionPeriod::Monthly,
                SubscriptionPeriodGql::Yearly => SubscriptionPeriod::Yearly,
            },
            seats: input.seats,
            starts_on,
            ends_on,
            project_id: input.project_id.map(|p| p.0),
            note: input.note,
        };
        let parsed = raw
            .parse(principal)
            .map_err(|e| under_argument(e, "input"))
            .gql()?;
        subscription::create(&state.db, principal, parsed)
            .await
            .map_err(|e| under_argument(e, "input"))
            .gql()
            .map(Into::into)
    }

    /// Deletes a fixed subscription; returns what it was.
    async fn delete_subscription_cost(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<SubscriptionCostGql> {
        let state = ctx.state()?;
        let id: SubscriptionId = id
            .parse()
            .map_err(|_| Error::invalid("id", "is not a subscription id"))
            .gql()?;
        subscription::delete(&state.db, ctx.principal(), id)
            .await
            .gql()
            .map(Into::into)
    }
}
