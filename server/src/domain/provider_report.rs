//! Provider reports: the reported half of the ledger — buckets of usage and cost a
//! provider's own API returned (synced by plugins) or a person entered.
//!
//! A report row is unique on its natural key: its origin (the credential it was synced
//! with, or the manual entry itself), kind, bucket and every dimension, with `""` for
//! "none". Writing a page compares each row with what is stored under its key first, so
//! a re-run reports rows as unchanged, a provider's correction as updated, and a dry
//! run can say exactly what it would do without writing.
//!
//! Tracked events and reports are never summed together: they are two views of the
//! same spend (see reconciliation and the analytics `view`).

use crate::domain::auth::{Principal, Scope};
use crate::domain::error::{Context, Error, FieldError, Result};
use crate::domain::ids::{CredentialId, ProjectId, ProviderReportId};
use crate::domain::money::Usd;
use crate::domain::price::text_enum;
use crate::domain::provider::Provider;
use crate::domain::time;
use crate::domain::tokens::{MAX_COUNT, TokenCounts};
use crate::entity::provider_report::{self, Column};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// What a report row counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportKind {
    /// Tokens and requests (a provider's usage API).
    Usage,
    /// Money (a provider's cost API).
    Cost,
    /// Both, entered by a person.
    Manual,
}

/// Where a report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportSource {
    /// A provider's API, through its plugin.
    ProviderSync,
    /// Entered by a person (shown as user-entered everywhere).
    Manual,
}

text_enum!(ReportKind { Usage => "USAGE", Cost => "COST", Manual => "MANUAL" });
text_enum!(ReportSource { ProviderSync => "PROVIDER_SYNC", Manual => "MANUAL" });

impl ReportKind {
    /// Whether rows of this kind carry tokens and requests.
    pub fn counts_tokens(self) -> bool {
        matches!(self, ReportKind::Usage | ReportKind::Manual)
    }

    /// Whether rows of this kind carry money.
    pub fn counts_cost(self) -> bool {
        matches!(self, ReportKind::Cost | ReportKind::Manual)
    }
}

/// The natural key of a report row within its origin and kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReportKey {
    /// Bucket start (inclusive).
    pub bucket_start: DateTime<Utc>,
    /// Bucket end (exclusive).
    pub bucket_end: DateTime<Utc>,
    /// Model as the provider names it (`""` when not reported).
    pub model: String,
    /// The provider's project id (`""` when none).
    pub external_project: String,
    /// The provider's workspace id (`""` when none).
    pub workspace: String,
    /// The provider's API key id (`""` when none).
    pub api_key: String,
    /// Service tier (`""` when none).
    pub service_tier: String,
    /// Cost line item (`""` when none).
    pub line_item: String,
}

/// An amount of some unit that is not a token (seats, premium requests, searches).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitCount {
    /// The unit's name.
    pub unit: String,
    /// How many (exact).
    #[serde(with = "rust_decimal::serde::str")]
    pub quantity: Decimal,
}

/// What a report row counts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReportMeasures {
    /// Token classes.
    pub tokens: TokenCounts,
    /// Requests.
    pub requests: i64,
    /// Other units, sorted by unit.
    pub units: Vec<UnitCount>,
    /// Amount, for cost and manual rows.
    pub amount: Option<Usd>,
    /// Currency of the amount (upper case, `USD` for manual entries).
    pub currency: Option<String>,
}

impl ReportMeasures {
    /// Adds another row's measures (two rows a provider sent for one key).
    fn absorb(&mut self, other: &ReportMeasures) {
        self.tokens = self.tokens.saturating_add(&other.tokens);
        self.requests = self.requests.saturating_add(other.requests);
        for u in &other.units {
            match self.units.iter_mut().find(|x| x.unit == u.unit) {
                Some(x) => x.quantity += u.quantity,
                None => self.units.push(u.clone()),
            }
        }
        self.units.sort_by(|a, b| a.unit.cmp(&b.unit));
        self.amount = match (self.amount, other.amount) {
            (Some(a), Some(b)) => a.checked_add(b),
            (a, b) => a.or(b),
        };
        if self.currency.is_none() {
            self.currency = other.currency.clone();
        }
    }
}

/// One row to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow {
    /// Its natural key.
    pub key: ReportKey,
    /// What it counts.
    pub measures: ReportMeasures,
}

/// A stored report row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderReport {
    /// Id.
    pub id: ProviderReportId,
    /// The credential it was synced with.
    pub credential: Option<CredentialId>,
    /// The project it is attributed to.
    pub project: Option<ProjectId>,
    /// Provider.
    pub provider: Provider,
    /// Kind.
    pub kind: ReportKind,
    /// Where it came from.
    pub source: ReportSource,
    /// Key.
    pub key: ReportKey,
    /// Measures.
    pub measures: ReportMeasures,
    /// A person's note.
    pub note: Option<String>,
    /// First stored.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

fn corrupt(what: &str, e: impl fmt::Display) -> Error {
    Error::internal(
        "decoding a stored provider report",
        anyhow::anyhow!("{what}: {e}"),
    )
}

impl TryFrom<provider_report::Model> for ProviderReport {
    type Error = Error;
    fn try_from(m: provider_report::Model) -> Result<Self> {
        Ok(ProviderReport {
            id: ProviderReportId(m.id),
            credential: m.credential_id.map(CredentialId),
            project: m.project_id.map(ProjectId),
            provider: Provider::parse(&m.provider)
                .ok_or_else(|| corrupt("provider", &m.provider))?,
            kind: m.kind.parse().map_err(|e| corrupt("kind", e))?,
            source: m.source.parse().map_err(|e| corrupt("source", e))?,
            measures: measures_of(&m)?,
            key: key_of(&m),
            note: m.note,
            created_at: time::from_micros(m.created_at),
            updated_at: time::from_micros(m.updated_at),
        })
    }
}

fn key_of(m: &provider_report::Model) -> ReportKey {
    ReportKey {
        bucket_start: time::from_micros(m.bucket_start),
        bucket_end: time::from_micros(m.bucket_end),
        model: m.model.clone(),
        external_project: m.external_project.clone(),
        workspace: m.workspace.clone(),
        api_key: m.api_key.clone(),
        service_tier: m.service_tier.clone(),
        line_item: m.line_item.clone(),
    }
}

fn measures_of(m: &provider_report::Model) -> Result<ReportMeasures> {
    Ok(ReportMeasures {
        tokens: TokenCounts {
            input: m.input_tokens,
            output: m.output_tokens,
            cache_read: m.cache_read_tokens,
            cache_write: m.cache_write_tokens,
            cache_write_1h: m.cache_write_1h_tokens,
            reasoning: m.reasoning_tokens,
            ..TokenCounts::default()
        },
        requests: m.requests,
        units: match &m.units {
            Some(text) => serde_json::from_str(text).map_err(|e| corrupt("units", e))?,
            None => vec![],
        },
        amount: m.amount_nanos.map(Usd::from_nanos),
        currency: m.currency.clone(),
    })
}

/// Where a page of rows goes: one credential's reports of one kind.
#[derive(Debug, Clone)]
pub struct ReportTarget {
    /// The credential the rows were synced with.
    pub credential: CredentialId,
    /// The project they are attributed to.
    pub project: Option<ProjectId>,
    /// Provider.
    pub provider: Provider,
    /// Kind.
    pub kind: ReportKind,
}

impl ReportTarget {
    fn origin(&self) -> String {
        format!("credential:{}", self.credential)
    }
}

/// What writing a page did (or, in a dry run, would do).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageWrite {
    /// Rows that were not there.
    pub inserted: u64,
    /// Rows whose measures changed (a provider's correction).
    pub updated: u64,
    /// Rows that already said the same.
    pub unchanged: u64,
}

impl PageWrite {
    /// Adds another page's counts.
    pub fn add(&mut self, other: PageWrite) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
    }
}

/// Rows per statement when reading existing keys or inserting.
const CHUNK: usize = 500;

/// Upserts one page of a credential's reports inside the caller's transaction (or, in
/// a dry run, only compares): rows with the same key in one page are summed first.
pub async fn write_page(
    conn: &impl ConnectionTrait,
    target: &ReportTarget,
    rows: &[ReportRow],
    dry_run: bool,
) -> Result<PageWrite> {
    let mut merged: BTreeMap<ReportKey, ReportMeasures> = BTreeMap::new();
    for row in rows {
        match merged.get_mut(&row.key) {
            Some(m) => m.absorb(&row.measures),
            None => {
                merged.insert(row.key.clone(), row.measures.clone());
            }
        }
    }
    if merged.is_empty() {
        return Ok(PageWrite::default());
    }
    let origin = target.origin();
    let starts: Vec<i64> = {
        let mut s: Vec<i64> = merged
            .keys()
            .map(|k| time::to_micros(k.bucket_start))
            .collect();
        s.dedup();
        s
    };
    let mut existing: HashMap<ReportKey, provider_report::Model> = HashMap::new();
    for chunk in starts.chunks(CHUNK) {
        let found = provider_report::Entity::find()
            .filter(Column::Origin.eq(origin.as_str()))
            .filter(Column::Kind.eq(target.kind.as_str()))
            .filter(Column::BucketStart.is_in(chunk.iter().copied()))
            .all(conn)
            .await
            .context("reading stored provider reports")?;
        for m in found {
            existing.insert(key_of(&m), m);
        }
    }
    let mut write = PageWrite::default();
    let mut fresh = vec![];
    let mut changed = vec![];
    for (key, measures) in merged {
        match existing.get(&key) {
            None => {
                write.inserted += 1;
                fresh.push((key, measures));
            }
            Some(stored) if measures_of(stored)? == measures => write.unchanged += 1,
            Some(stored) => {
                write.updated += 1;
                changed.push((stored.id, measures));
            }
        }
    }
    if dry_run {
        return Ok(write);
    }
    let now = time::to_micros(time::now());
    for chunk in fresh.chunks(CHUNK) {
        insert_rows(conn, target, &origin, chunk, now).await?;
    }
    for (id, measures) in changed {
        let mut row = measures_row(&measures)?;
        row.id = Set(id);
        row.updated_at = Set(now);
        provider_report::Entity::update(row)
            .exec(conn)
            .await
            .context("updating a corrected provider report")?;
    }
    Ok(write)
}

fn measures_row(m: &ReportMeasures) -> Result<provider_report::ActiveModel> {
    Ok(provider_report::ActiveModel {
        input_tokens: Set(m.tokens.input),
        output_tokens: Set(m.tokens.output),
        cache_read_tokens: Set(m.tokens.cache_read),
        cache_write_tokens: Set(m.tokens.cache_write),
        cache_write_1h_tokens: Set(m.tokens.cache_write_1h),
        reasoning_tokens: Set(m.tokens.reasoning),
        requests: Set(m.requests),
        units: Set(if m.units.is_empty() {
            None
        } else {
            Some(serde_json::to_string(&m.units).context("encoding report units")?)
        }),
        amount_nanos: Set(m.amount.map(Usd::stored_nanos)),
        currency: Set(m.currency.clone()),
        ..Default::default()
    })
}

async fn insert_rows(
    conn: &impl ConnectionTrait,
    target: &ReportTarget,
    origin: &str,
    rows: &[(ReportKey, ReportMeasures)],
    now: i64,
) -> Result<()> {
    let mut stmt = Query::insert();
    stmt.into_table(provider_report::Entity).columns([
        Column::Origin,
        Column::CredentialId,
        Column::ProjectId,
        Column::Provider,
        Column::Kind,
        Column::Source,
        Column::BucketStart,
        Column::BucketEnd,
        Column::Model,
        Column::ExternalProject,
        Column::Workspace,
        Column::ApiKey,
        Column::ServiceTier,
        Column::LineItem,
        Column::InputTokens,
        Column::OutputTokens,
        Column::CacheReadTokens,
        Column::CacheWriteTokens,
        Column::CacheWrite1hTokens,
        Column::ReasoningTokens,
        Column::Requests,
        Column::Units,
        Column::AmountNanos,
        Column::Currency,
        Column::CreatedAt,
        Column::UpdatedAt,
    ]);
    for (k, m) in rows {
        let units = if m.units.is_empty() {
            None
        } else {
            Some(serde_json::to_string(&m.units).context("encoding report units")?)
        };
        stmt.values([
            Expr::val(origin),
            Expr::val(target.credential.0),
            Expr::val(target.project.map(|p| p.0)),
            Expr::val(target.provider.as_str()),
            Expr::val(target.kind.as_str()),
            Expr::val(ReportSource::ProviderSync.as_str()),
            Expr::val(time::to_micros(k.bucket_start)),
            Expr::val(time::to_micros(k.bucket_end)),
            Expr::val(k.model.as_str()),
            Expr::val(k.external_project.as_str()),
            Expr::val(k.workspace.as_str()),
            Expr::val(k.api_key.as_str()),
            Expr::val(k.service_tier.as_str()),
            Expr::val(k.line_item.as_str()),
            Expr::val(m.tokens.input),
            Expr::val(m.tokens.output),
            Expr::val(m.tokens.cache_read),
            Expr::val(m.tokens.cache_write),
            Expr::val(m.tokens.cache_write_1h),
            Expr::val(m.tokens.reasoning),
            Expr::val(m.requests),
            Expr::val(units),
            Expr::val(m.amount.map(Usd::stored_nanos)),
            Expr::val(m.currency.clone()),
            Expr::val(now),
            Expr::val(now),
        ])
        .context("building a provider report insert")?;
    }
    // Another writer of the same key (there should be none: one run per credential and
    // kind) makes this an update rather than a duplicate.
    stmt.on_conflict(
        OnConflict::columns([
            Column::Origin,
            Column::Kind,
            Column::BucketStart,
            Column::BucketEnd,
            Column::Model,
            Column::ExternalProject,
            Column::Workspace,
            Column::ApiKey,
            Column::ServiceTier,
            Column::LineItem,
        ])
        .update_columns([
            Column::InputTokens,
            Column::OutputTokens,
            Column::CacheReadTokens,
            Column::CacheWriteTokens,
            Column::CacheWrite1hTokens,
            Column::ReasoningTokens,
            Column::Requests,
            Column::Units,
            Column::AmountNanos,
            Column::Currency,
            Column::UpdatedAt,
        ])
        .to_owned(),
    );
    conn.execute(&stmt)
        .await
        .context("inserting provider reports")?;
    Ok(())
}

/// Manual usage as a client sent it.
#[derive(Debug, Clone, Default)]
pub struct RawManualUsage {
    /// Provider name.
    pub provider: String,
    /// Project (optional; a bound token's own project by default).
    pub project_id: Option<String>,
    /// Period start.
    pub from: DateTime<Utc>,
    /// Period end (exclusive).
    pub to: DateTime<Utc>,
    /// Model, if the numbers are for one.
    pub model: Option<String>,
    /// Requests.
    pub requests: Option<i64>,
    /// Token classes.
    pub tokens: TokenCounts,
    /// Amount in USD.
    pub amount_usd: Option<Decimal>,
    /// A note (where the numbers come from).
    pub note: Option<String>,
}

/// Validated manual usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManualUsage {
    /// Provider.
    pub provider: Provider,
    /// Project.
    pub project: Option<ProjectId>,
    /// Key (bucket = the period; no external dimensions).
    pub key: ReportKey,
    /// Measures.
    pub measures: ReportMeasures,
    /// Note.
    pub note: Option<String>,
}

/// Largest manual amount accepted.
const MAX_MANUAL_AMOUNT: Decimal = Decimal::from_parts(100_000_000, 0, 0, false, 0);

impl RawManualUsage {
    /// Validates everything at once.
    pub fn parse(self, principal: &Principal) -> Result<ManualUsage> {
        let mut errors = vec![];
        let provider = Provider::parse(&self.provider);
        if provider.is_none() {
            errors.push(FieldError::new("provider", "must be a provider name"));
        }
        let project = match self
            .project_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(p) => match p.parse::<ProjectId>() {
                Ok(id) => Some(id),
                Err(_) => {
                    errors.push(FieldError::new("projectId", "is not a project id"));
                    None
                }
            },
            None => principal.project(),
        };
        if self.to <= self.from {
            errors.push(FieldError::new("to", "must be after `from`"));
        }
        if self.from < crate::domain::usage::input::earliest_occurred_at() {
            errors.push(FieldError::new("from", "is before the year 2000"));
        }
        for (field, value) in self.tokens.fields() {
            if !(0..=MAX_COUNT).contains(&value) {
                errors.push(FieldError::new(
                    field,
                    format!("must be between 0 and {MAX_COUNT}"),
                ));
            }
        }
        if self.tokens.reasoning > self.tokens.output {
            errors.push(FieldError::new(
                "reasoningTokens",
                "cannot exceed outputTokens",
            ));
        }
        let requests = self.requests.unwrap_or(0);
        if !(0..=MAX_COUNT).contains(&requests) {
            errors.push(FieldError::new(
                "requests",
                format!("must be between 0 and {MAX_COUNT}"),
            ));
        }
        let amount = match self.amount_usd {
            Some(a) if a.is_sign_negative() || a > MAX_MANUAL_AMOUNT => {
                errors.push(FieldError::new(
                    "amountUsd",
                    format!("must be between 0 and {MAX_MANUAL_AMOUNT}"),
                ));
                None
            }
            Some(a) => Usd::from_decimal(a),
            None => None,
        };
        let model = self.model.map(|m| m.trim().to_owned()).unwrap_or_default();
        if model.chars().count() > crate::domain::price::MAX_MODEL_LEN {
            errors.push(FieldError::new("model", "is too long"));
        } else if let Some(problem) =
            crate::domain::text::problem(&model, crate::domain::text::TextKind::Identifier)
        {
            errors.push(FieldError::new("model", problem));
        }
        let note = self
            .note
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty());
        if note.as_ref().is_some_and(|n| n.chars().count() > 2_000) {
            errors.push(FieldError::new("note", "must be at most 2000 characters"));
        } else if let Some(problem) = note
            .as_deref()
            .and_then(|n| crate::domain::text::problem(n, crate::domain::text::TextKind::FreeForm))
        {
            errors.push(FieldError::new("note", problem));
        }
        if amount.is_none()
            && self.tokens == TokenCounts::default()
            && requests == 0
            && errors.is_empty()
        {
            errors.push(FieldError::new(
                "amountUsd",
                "give an amount, tokens or requests",
            ));
        }
        match provider {
            Some(provider) if errors.is_empty() => Ok(ManualUsage {
                provider,
                project,
                key: ReportKey {
                    bucket_start: self.from,
                    bucket_end: self.to,
                    model,
                    external_project: String::new(),
                    workspace: String::new(),
                    api_key: String::new(),
                    service_tier: String::new(),
                    line_item: String::new(),
                },
                measures: ReportMeasures {
                    tokens: self.tokens,
                    requests,
                    units: vec![],
                    amount,
                    currency: amount.map(|_| "USD".to_owned()),
                },
                note,
            }),
            _ => Err(Error::InvalidInput(errors)),
        }
    }
}

fn authorize_write(principal: &Principal, project: Option<ProjectId>) -> Result<()> {
    match project {
        Some(p) => principal.require_on(Scope::Admin, p),
        None => principal.require_global_admin(),
    }
}

/// Records a manual entry (source `MANUAL`).
pub async fn record_manual(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    entry: ManualUsage,
) -> Result<ProviderReport> {
    authorize_write(principal, entry.project)?;
    if let Some(p) = entry.project
        && crate::domain::project::find(conn, p).await?.is_none()
    {
        return Err(Error::NotFound { what: "project" });
    }
    let now = time::to_micros(time::now());
    let mut row = measures_row(&entry.measures)?;
    row.origin = Set(format!("manual:{}", uuid::Uuid::now_v7()));
    row.credential_id = Set(None);
    row.project_id = Set(entry.project.map(|p| p.0));
    row.provider = Set(entry.provider.as_str().to_owned());
    row.kind = Set(ReportKind::Manual.as_str().to_owned());
    row.source = Set(ReportSource::Manual.as_str().to_owned());
    set_key(&mut row, &entry.key);
    row.note = Set(entry.note.clone());
    row.created_at = Set(now);
    row.updated_at = Set(now);
    let stored = provider_report::Entity::insert(row)
        .exec_with_returning(conn)
        .await
        .context("storing a manual usage entry")?;
    ProviderReport::try_from(stored)
}

fn set_key(row: &mut provider_report::ActiveModel, key: &ReportKey) {
    row.bucket_start = Set(time::to_micros(key.bucket_start));
    row.bucket_end = Set(time::to_micros(key.bucket_end));
    row.model = Set(key.model.clone());
    row.external_project = Set(key.external_project.clone());
    row.workspace = Set(key.workspace.clone());
    row.api_key = Set(key.api_key.clone());
    row.service_tier = Set(key.service_tier.clone());
    row.line_item = Set(key.line_item.clone());
}

async fn manual_row(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    id: ProviderReportId,
) -> Result<provider_report::Model> {
    let row = provider_report::Entity::find_by_id(id.0)
        .one(conn)
        .await
        .context("reading a manual usage entry")?
        .filter(|r| r.source == ReportSource::Manual.as_str())
        .ok_or(Error::NotFound {
            what: "manual usage entry",
        })?;
    authorize_write(principal, row.project_id.map(ProjectId))?;
    Ok(row)
}

/// Replaces a manual entry's period, model, numbers and note.
pub async fn update_manual(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    id: ProviderReportId,
    entry: ManualUsage,
) -> Result<ProviderReport> {
    let current = manual_row(conn, principal, id).await?;
    authorize_write(principal, entry.project)?;
    let mut row = measures_row(&entry.measures)?;
    row.id = Set(current.id);
    row.provider = Set(entry.provider.as_str().to_owned());
    row.project_id = Set(entry.project.map(|p| p.0));
    set_key(&mut row, &entry.key);
    row.note = Set(entry.note.clone());
    row.updated_at = Set(time::to_micros(time::now()));
    let stored = provider_report::Entity::update(row)
        .exec(conn)
        .await
        .context("updating a manual usage entry")?;
    ProviderReport::try_from(stored)
}

/// Deletes a manual entry; synced rows cannot be deleted this way.
pub async fn delete_manual(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    id: ProviderReportId,
) -> Result<ProviderReport> {
    let row = manual_row(conn, principal, id).await?;
    provider_report::Entity::delete_by_id(row.id)
        .exec(conn)
        .await
        .context("deleting a manual usage entry")?;
    ProviderReport::try_from(row)
}

/// Which reports to list.
#[derive(Debug, Clone, Default)]
pub struct ReportFilter {
    /// Providers.
    pub providers: Vec<Provider>,
    /// Projects.
    pub projects: Vec<ProjectId>,
    /// Credentials.
    pub credentials: Vec<CredentialId>,
    /// Sources.
    pub sources: Vec<ReportSource>,
    /// Buckets starting at or after.
    pub from: Option<DateTime<Utc>>,
    /// Buckets starting before.
    pub to: Option<DateTime<Utc>>,
}

/// Reports the caller may read, newest bucket first.
pub async fn list(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    filter: &ReportFilter,
    limit: u64,
) -> Result<Vec<ProviderReport>> {
    let projects = principal.readable_projects(&filter.projects)?;
    let mut q = provider_report::Entity::find()
        .order_by_desc(Column::BucketStart)
        .order_by_asc(Column::Id)
        .limit(limit);
    if !projects.is_empty() {
        q = q.filter(Column::ProjectId.is_in(projects.iter().map(|p| p.0)));
    }
    if !filter.providers.is_empty() {
        q = q
            .filter(Column::Provider.is_in(filter.providers.iter().map(|p| p.as_str().to_owned())));
    }
    if !filter.credentials.is_empty() {
        q = q.filter(Column::CredentialId.is_in(filter.credentials.iter().map(|c| c.0)));
    }
    if !filter.sources.is_empty() {
        q = q.filter(Column::Source.is_in(filter.sources.iter().map(|s| s.as_str())));
    }
    if let Some(from) = filter.from {
        q = q.filter(Column::BucketStart.gte(time::to_micros(from)));
    }
    if let Some(to) = filter.to {
        q = q.filter(Column::BucketStart.lt(time::to_micros(to)));
    }
    q.all(conn)
        .await
        .context("listing provider reports")?
        .into_iter()
        .map(ProviderReport::try_from)
        .collect()
}
