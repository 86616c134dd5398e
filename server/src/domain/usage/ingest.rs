//! Recording usage: validate the whole request, price every event in memory, then
//! write through the writer tasks of [`super::writer`], which group concurrent
//! requests into multi-row transactions (group commit) that insert with
//! [`insert_events`].
//!
//! Why ids are reserved before the insert: `INSERT .. ON CONFLICT DO NOTHING
//! RETURNING id` reports which rows went in, but not in a guaranteed order. Assigning
//! each row its id first (SQLite: after `MAX(id)` inside an `IMMEDIATE` transaction;
//! PostgreSQL: from the identity sequence) makes "which input became which row" exact,
//! and lets the unique index on `(project_id, idempotency_key)` alone decide what is a
//! duplicate — also when 50 identical requests arrive at once. On PostgreSQL a large
//! group tries a plain insert first (see `insert_all_or_nothing`).

use super::input::{NewUsage, ParseContext, RawUsage};
use super::writer::{BULK_ROWS, IngestWriter};
use super::{CostSource, UsageEvent, UsageSource};
use crate::domain::auth::{Principal, Scope};
use crate::domain::error::{Context, Error, FieldError, Result};
use crate::domain::ids::{PriceId, ProjectId, UsageEventId};
use crate::domain::json_rows::{self, Kind};
use crate::domain::money::Usd;
use crate::domain::price::PriceCache;
use crate::domain::price::book::PriceBook;
use crate::domain::{project, time};
use crate::entity::usage_event::{self, Column};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, SqlErr, Statement, TransactionTrait,
};
use serde_json::Value as Json;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

/// Most events one `recordUsageBatch` may carry.
pub const MAX_BATCH: usize = 10_000;

/// An event with its cost decided, ready to store.
#[derive(Debug, Clone)]
pub struct PricedUsage {
    /// The validated input.
    pub usage: NewUsage,
    /// Its cost, unless unpriced.
    pub cost: Option<Usd>,
    /// Where the cost came from.
    pub cost_source: CostSource,
    /// The price row used.
    pub price_id: Option<PriceId>,
}

/// Prices one event: a provider-reported cost wins; otherwise the price in effect at
/// `occurred_at`, when it has a rate for every unit the event used; otherwise it stays
/// unpriced.
pub fn price(usage: NewUsage, book: &PriceBook) -> std::result::Result<PricedUsage, FieldError> {
    if let Some(cost) = usage.reported_cost {
        return Ok(PricedUsage {
            usage,
            cost: Some(cost),
            cost_source: CostSource::Reported,
            price_id: None,
        });
    }
    let found = book
        .find(&usage.provider, &usage.model, usage.occurred_at)
        .filter(|found| {
            found
                .price
                .card
                .missing_rate(
                    &usage.tokens,
                    usage.requests,
                    usage.service_tier,
                    usage.variant.as_ref(),
                )
                .is_none()
        });
    match found {
        Some(found) => {
            let cost = found
                .price
                .card
                .cost(
                    &usage.tokens,
                    usage.requests,
                    usage.service_tier,
                    usage.variant.as_ref(),
                )
                .ok_or_else(|| {
                    FieldError::new("", "the cost of this event is too large to store")
                })?;
            Ok(PricedUsage {
                usage,
                cost: Some(cost),
                cost_source: CostSource::Computed,
                price_id: Some(found.price.id),
            })
        }
        None => Ok(PricedUsage {
            usage,
            cost: None,
            cost_source: CostSource::Unpriced,
            price_id: None,
        }),
    }
}

/// One stored event and whether it was already there.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The stored event (for a duplicate: the one stored first).
    pub event: UsageEvent,
    /// True when the idempotency key had been seen: nothing was written.
    pub duplicate: bool,
}

/// An input [`Ledger::record_valid`] did not record, with every problem.
#[derive(Debug, Clone)]
pub struct RejectedInput {
    /// Its position in the request.
    pub index: usize,
    /// What is wrong (field paths relative to the input).
    pub errors: Vec<FieldError>,
}

/// What [`Ledger::record_valid`] did with each input.
#[derive(Debug, Clone, Default)]
pub struct Lenient {
    /// The recorded inputs (stored or duplicate) with their positions, in order.
    pub recorded: Vec<(usize, Recorded)>,
    /// The rejected ones, in order.
    pub rejected: Vec<RejectedInput>,
}

impl Lenient {
    /// Events stored by this call.
    pub fn stored(&self) -> usize {
        self.recorded.iter().filter(|(_, r)| !r.duplicate).count()
    }

    /// Inputs whose idempotency key had been seen.
    pub fn duplicates(&self) -> usize {
        self.recorded.iter().filter(|(_, r)| r.duplicate).count()
    }
}

/// A change to tracked usage. Extensions that keep derived state (rollups, budget
/// counters) or tell others (live updates) follow these instead of the tables, so
/// ingest and re-pricing reach them the same way.
#[derive(Debug, Clone, Copy)]
pub enum LedgerChange<'a> {
    /// Newly stored events (duplicates excluded).
    Inserted(&'a [UsageEvent]),
    /// Events whose cost changed.
    Repriced(&'a [Repriced]),
}

/// An event whose cost `recomputeCosts` changed.
#[derive(Debug, Clone)]
pub struct Repriced {
    /// The event with its new cost.
    pub event: UsageEvent,
    /// Its cost before.
    pub previous_cost: Option<Usd>,
    /// Where that cost came from.
    pub previous_source: CostSource,
}

/// An extension of the ledger. `apply` runs inside the transaction that writes the
/// change — an error rolls the whole change back, so derived state can never disagree
/// with the events. `committed` runs after the commit and must not fail.
pub trait LedgerHook: Send + Sync {
    /// A name for logs.
    fn name(&self) -> &'static str;

    /// Updates derived state in the same transaction.
    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        change: LedgerChange<'a>,
    ) -> BoxFuture<'a, Result<()>>;

    /// Reacts to a committed change (notify subscribers, say).
    fn committed(&self, change: LedgerChange<'_>) {
        let _ = change;
    }
}

/// The hooks of a ledger, in the order they run.
pub type Hooks = Arc<[Arc<dyn LedgerHook>]>;

/// Runs every hook's `apply` for one change.
pub async fn apply_hooks(
    hooks: &Hooks,
    txn: &DatabaseTransaction,
    change: LedgerChange<'_>,
) -> Result<()> {
    for hook in hooks.iter() {
        hook.apply(txn, change).await?;
    }
    Ok(())
}

/// Runs every hook's `committed` for one change.
pub fn committed_hooks(hooks: &Hooks, change: LedgerChange<'_>) {
    for hook in hooks.iter() {
        hook.committed(change);
    }
}

/// Rows per idempotency-key lookup: far below SQLite's 32,766 bind limit.
const ROWS_PER_STATEMENT: usize = 1000;

/// The columns an event is inserted with, in the order [`insert_events`] writes them
/// (see [`json_rows`]).
const EVENT_COLUMNS: [(&str, Kind); 31] = [
    ("id", Kind::IntNotNull),
    ("project_id", Kind::Uuid),
    ("provider", Kind::TextNotNull),
    ("model", Kind::TextNotNull),
    ("endpoint", Kind::Text),
    ("source", Kind::TextNotNull),
    ("occurred_at", Kind::IntNotNull),
    ("received_at", Kind::IntNotNull),
    ("input_tokens", Kind::IntNotNull),
    ("output_tokens", Kind::IntNotNull),
    ("cache_read_tokens", Kind::IntNotNull),
    ("cache_write_tokens", Kind::IntNotNull),
    ("cache_write_1h_tokens", Kind::IntNotNull),
    ("reasoning_tokens", Kind::IntNotNull),
    ("audio_input_tokens", Kind::IntNotNull),
    ("audio_output_tokens", Kind::IntNotNull),
    ("image_input_tokens", Kind::IntNotNull),
    ("image_output_tokens", Kind::IntNotNull),
    ("images_generated", Kind::IntNotNull),
    ("web_search_calls", Kind::IntNotNull),
    ("video_seconds", Kind::IntNotNull),
    ("requests", Kind::IntNotNull),
    ("service_tier", Kind::TextNotNull),
    ("pricing_variant", Kind::Text),
    ("latency_ms", Kind::Int),
    ("cost_nanos", Kind::Int),
    ("cost_source", Kind::TextNotNull),
    ("price_id", Kind::Int),
    ("idempotency_key", Kind::Text),
    ("end_user", Kind::Text),
    ("metadata", Kind::Text),
];

async fn reserve_ids(conn: &impl ConnectionTrait, n: usize) -> Result<Vec<i64>> {
    let backend = conn.get_database_backend();
    match backend {
        DbBackend::Postgres => {
            let rows = conn
                .query_all_raw(Statement::from_sql_and_values(
                    backend,
                    // The sequence is looked up once: `pg_get_serial_sequence` in the
                    // select list runs for every row (10,000 ids: 39 ms against 5 ms).
                    "WITH s AS MATERIALIZED (SELECT pg_get_serial_sequence('usage_events', 'id')::regclass AS seq) \
                     SELECT nextval(s.seq) AS id FROM s, generate_series(1, $1)",
                    [(n as i64).into()],
                ))
                .await
                .context("reserving usage event ids")?;
            rows.iter()
                .map(|r| r.try_get::<i64>("", "id"))
                .collect::<std::result::Result<Vec<_>, _>>()
                .context("reading reserved usage event ids")
        }
        _ => {
            let row = conn
                .query_one_raw(Statement::from_string(
                    backend,
                    "SELECT COALESCE(MAX(id), 0) AS id FROM usage_events",
                ))
                .await
                .context("reading the last usage event id")?;
            let last: i64 = match row {
                Some(row) => row
                    .try_get("", "id")
                    .context("reading the last usage event id")?,
                None => 0,
            };
            Ok((1..=n as i64).map(|i| last + i).collect())
        }
    }
}

fn to_event(row: &PricedUsage, id: i64, received_at: DateTime<Utc>) -> UsageEvent {
    let u = &row.usage;
    UsageEvent {
        id: UsageEventId(id),
        project: u.project,
        provider: u.provider.clone(),
        model: u.model.clone(),
        endpoint: u.endpoint.clone(),
        source: u.source,
        occurred_at: u.occurred_at,
        received_at,
        tokens: u.tokens,
        requests: u.requests,
        service_tier: u.service_tier,
        variant: u.variant.clone(),
        latency_ms: u.latency_ms,
        cost: row.cost,
        cost_source: row.cost_source,
        price_id: row.price_id,
        idempotency_key: u.idempotency_key.clone(),
        user: u.user.clone(),
        metadata: u
            .metadata
            .as_deref()
            .and_then(|m| serde_json::from_str(m).ok()),
    }
}

/// PostgreSQL, groups of [`BULK_ROWS`] or more: inserts every row in a savepoint with
/// a plain `INSERT` and reports true, or, when an idempotency key is already stored
/// (by an earlier request, a concurrent one that committed first, or twice in these
/// rows), undoes it and reports false; the caller then inserts with `ON CONFLICT DO
/// NOTHING`. Most batches carry new keys only, and a plain insert costs less than
/// `ON CONFLICT DO NOTHING`, which checks every key before it inserts the row (10,000
/// events: about 205 against 245 ms). The unique index alone still decides.
async fn insert_all_or_nothing(
    txn: &DatabaseTransaction,
    head: &str,
    kinds: &[Kind],
    params: Vec<sea_orm::Value>,
) -> Result<bool> {
    let savepoint = txn
        .begin()
        .await
        .context("starting the insert of usage events")?;
    let insert = Statement::from_sql_and_values(
        DbBackend::Postgres,
        json_rows::pg_insert(head, kinds, "", 1),
        params,
    );
    match savepoint.execute_raw(insert).await {
        Ok(_) => {
            savepoint.commit().await.context("inserting usage events")?;
            Ok(true)
        }
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            savepoint
                .rollback()
                .await
                .context("undoing an insert of usage events")?;
            Ok(false)
        }
        Err(e) => Err(e).context("inserting usage events"),
    }
}

/// Inserts events inside the caller's transaction and reports, per input, the stored
/// event and whether it was a duplicate. On SQLite the transaction must be
/// `IMMEDIATE` (it reserves ids from `MAX(id)`).
pub async fn insert_events(
    txn: &DatabaseTransaction,
    rows: &[&PricedUsage],
) -> Result<Vec<Recorded>> {
    if rows.is_empty() {
        return Ok(vec![]);
    }
    let ids = reserve_ids(txn, rows.len()).await?;
    let received_at = time::now();
    let received = time::to_micros(received_at);
    let mut inserted: HashSet<i64> = HashSet::with_capacity(rows.len());
    let backend = txn.get_database_backend();
    let names: Vec<&str> = EVENT_COLUMNS.iter().map(|(c, _)| *c).collect();
    let kinds: Vec<Kind> = EVENT_COLUMNS.iter().map(|(_, k)| *k).collect();
    let head = format!("usage_events ({})", names.join(", "));
    // In the order of the unique key (project, idempotency key): concurrent writers
    // inserting the same keys wait for each other in one order, never in a cycle.
    let mut ordered: Vec<(&&PricedUsage, &i64)> = rows.iter().zip(&ids).collect();
    ordered.sort_by(|(a, _), (b, _)| {
        (a.usage.project, &a.usage.idempotency_key)
            .cmp(&(b.usage.project, &b.usage.idempotency_key))
    });
    let values: Vec<Vec<Json>> = ordered
        .into_iter()
        .map(|(row, id)| {
            let u = &row.usage;
            let t = &u.tokens;
            vec![
                Json::from(*id),
                json_rows::uuid(u.project.0),
                Json::from(u.provider.as_str()),
                Json::from(u.model.as_str()),
                Json::from(u.endpoint.clone()),
                Json::from(u.source.as_str()),
                Json::from(time::to_micros(u.occurred_at)),
                Json::from(received),
                Json::from(t.input),
                Json::from(t.output),
                Json::from(t.cache_read),
                Json::from(t.cache_write),
                Json::from(t.cache_write_1h),
                Json::from(t.reasoning),
                Json::from(t.audio_input),
                Json::from(t.audio_output),
                Json::from(t.image_input),
                Json::from(t.image_output),
                Json::from(t.images),
                Json::from(t.web_searches),
                Json::from(t.video_seconds),
                Json::from(u.requests),
                Json::from(u.service_tier.as_str()),
                Json::from(u.variant.as_ref().map(|v| v.as_str().to_owned())),
                Json::from(u.latency_ms),
                Json::from(row.cost.map(Usd::stored_nanos)),
                Json::from(row.cost_source.as_str()),
                Json::from(row.price_id.map(|p| p.0)),
                Json::from(u.idempotency_key.clone()),
                Json::from(u.user.clone()),
                Json::from(u.metadata.clone()),
            ]
        })
        .collect();
    // A savepoint costs two round trips: worth it for large groups only. When a key
    // was stored already (rare), the rows are bound again for `ON CONFLICT`.
    let all_new = backend == DbBackend::Postgres
        && rows.len() >= BULK_ROWS
        && insert_all_or_nothing(txn, &head, &kinds, json_rows::pg_params(&kinds, &values)?)
            .await?;
    let statements = if all_new {
        inserted.extend(&ids);
        vec![]
    } else {
        json_rows::insert(
            backend,
            &head,
            &kinds,
            values,
            "ON CONFLICT (project_id, idempotency_key) DO NOTHING RETURNING id",
        )?
    };
    for stmt in statements {
        for r in txn
            .query_all_raw(stmt)
            .await
            .context("inserting usage events")?
        {
            inserted.insert(
                r.try_get::<i64>("", "id")
                    .context("reading an inserted usage event id")?,
            );
        }
    }

    // Inputs whose id did not come back lost to an existing idempotency key.
    let mut wanted: HashMap<ProjectId, Vec<String>> = HashMap::new();
    for (row, id) in rows.iter().zip(&ids) {
        if !inserted.contains(id)
            && let Some(key) = &row.usage.idempotency_key
        {
            wanted
                .entry(row.usage.project)
                .or_default()
                .push(key.clone());
        }
    }
    let mut existing: HashMap<(ProjectId, String), UsageEvent> = HashMap::new();
    for (project, keys) in wanted {
        for keys in keys.chunks(ROWS_PER_STATEMENT) {
            let found = usage_event::Entity::find()
                .filter(Column::ProjectId.eq(project.0))
                .filter(Column::IdempotencyKey.is_in(keys.iter().cloned()))
                .all(txn)
                .await
                .context("reading events that already had these idempotency keys")?;
            for m in found {
                let event = UsageEvent::try_from(m)?;
                if let Some(key) = event.idempotency_key.clone() {
                    existing.insert((project, key), event);
                }
            }
        }
    }
    rows.iter()
        .zip(ids)
        .map(|(row, id)| {
            if inserted.contains(&id) {
                return Ok(Recorded {
                    event: to_event(row, id, received_at),
                    duplicate: false,
                });
            }
            // Several inputs with one key: the first inserted the row the others find.
            let key = row.usage.idempotency_key.clone().unwrap_or_default();
            existing
                .get(&(row.usage.project, key))
                .cloned()
                .map(|event| Recorded {
                    event,
                    duplicate: true,
                })
                .ok_or_else(|| {
                    Error::internal(
                        "matching duplicate usage events",
                        anyhow::anyhow!(
                            "row {id} was neither inserted nor found by its idempotency key"
                        ),
                    )
                })
        })
        .collect()
}

/// The recording service: authorisation, validation, pricing, then the writer.
pub struct Ledger {
    db: DatabaseConnection,
    prices: Arc<PriceCache>,
    writer: IngestWriter,
    hooks: Hooks,
    known_projects: RwLock<HashSet<ProjectId>>,
}

impl Ledger {
    /// Builds the service and starts its writers (`pg_writers` on PostgreSQL); `hooks`
    /// see every change.
    pub fn new(
        db: DatabaseConnection,
        prices: Arc<PriceCache>,
        hooks: Vec<Arc<dyn LedgerHook>>,
        pg_writers: usize,
    ) -> Ledger {
        let hooks: Hooks = hooks.into();
        let writer = IngestWriter::start(db.clone(), hooks.clone(), pg_writers);
        Ledger {
            db,
            prices,
            writer,
            hooks,
            known_projects: RwLock::new(HashSet::new()),
        }
    }

    /// Re-prices the events matching the filter with the current prices (see
    /// [`super::query::recompute_costs`]); hooks see every changed event.
    pub async fn recompute_costs(
        &self,
        principal: &Principal,
        filter: super::query::UsageFilter,
    ) -> Result<u64> {
        let book = self.prices.book();
        super::query::recompute_costs(&self.db, principal, &book, filter, &self.hooks).await
    }

    /// Prices the events stored `UNPRICED` that the current book can price (see
    /// [`super::query::reprice_unpriced`]); called after this process changed prices.
    pub async fn reprice_unpriced(
        &self,
        providers: &[crate::domain::provider::Provider],
    ) -> Result<u64> {
        let book = self.prices.book();
        super::query::reprice_unpriced(&self.db, &book, &self.hooks, providers).await
    }

    /// The price cache this ledger prices with.
    pub fn prices(&self) -> &Arc<PriceCache> {
        &self.prices
    }

    /// The writer, for subscribers to stored events.
    pub fn writer(&self) -> &IngestWriter {
        &self.writer
    }

    /// Records one or more events as one atomic unit. `field` names the argument, for
    /// error paths (`input`, or `inputs` for a batch whose items get their index).
    /// The whole request is validated before anything is written.
    pub async fn record(
        &self,
        principal: &Principal,
        raws: Vec<RawUsage>,
        field: &str,
        batch: bool,
        source: UsageSource,
    ) -> Result<Vec<Recorded>> {
        principal.require(Scope::Ingest)?;
        if raws.len() > MAX_BATCH {
            return Err(Error::invalid(
                field,
                format!("at most {MAX_BATCH} events per batch (got {})", raws.len()),
            ));
        }
        let ctx = ParseContext {
            default_project: principal.project(),
            now: time::now(),
            source,
        };
        let path = |i: usize| {
            if batch {
                format!("{field}.{i}")
            } else {
                field.to_owned()
            }
        };
        let mut errors = vec![];
        let mut parsed = Vec::with_capacity(raws.len());
        for (i, raw) in raws.into_iter().enumerate() {
            match raw.parse(&ctx) {
                Ok(usage) => parsed.push(usage),
                Err(errs) => errors.extend(errs.into_iter().map(|e| e.under(&path(i)))),
            }
        }
        if !errors.is_empty() {
            return Err(Error::InvalidInput(errors));
        }
        let projects: HashSet<ProjectId> = parsed.iter().map(|u| u.project).collect();
        for p in &projects {
            principal.require_on(Scope::Ingest, *p)?;
        }
        self.ensure_projects_exist(&projects).await?;
        let book = self.prices.book();
        let mut priced = Vec::with_capacity(parsed.len());
        for (i, usage) in parsed.into_iter().enumerate() {
            match price(usage, &book) {
                Ok(p) => priced.push(p),
                Err(e) => errors.push(e.under(&path(i))),
            }
        }
        if !errors.is_empty() {
            return Err(Error::InvalidInput(errors));
        }
        self.writer.write(priced).await
    }

    /// Records the inputs that are valid and reports the others with every problem,
    /// for bulk sources where one bad row must not hold back the rest (file imports,
    /// OTLP spans). What concerns the whole request still fails it whole: the scope,
    /// too many inputs, a project that does not exist or that the caller may not write.
    pub async fn record_valid(
        &self,
        principal: &Principal,
        raws: Vec<RawUsage>,
        source: UsageSource,
    ) -> Result<Lenient> {
        principal.require(Scope::Ingest)?;
        if raws.len() > MAX_BATCH {
            return Err(Error::invalid(
                "inputs",
                format!("at most {MAX_BATCH} events per batch (got {})", raws.len()),
            ));
        }
        let ctx = ParseContext {
            default_project: principal.project(),
            now: time::now(),
            source,
        };
        let mut rejected = vec![];
        let mut parsed = vec![];
        for (index, raw) in raws.into_iter().enumerate() {
            match raw.parse(&ctx) {
                Ok(usage) => parsed.push((index, usage)),
                Err(errors) => rejected.push(RejectedInput { index, errors }),
            }
        }
        let projects: HashSet<ProjectId> = parsed.iter().map(|(_, u)| u.project).collect();
        for p in &projects {
            principal.require_on(Scope::Ingest, *p)?;
        }
        self.ensure_projects_exist(&projects).await?;
        let book = self.prices.book();
        let mut priced = Vec::with_capacity(parsed.len());
        let mut kept = Vec::with_capacity(parsed.len());
        for (index, usage) in parsed {
            match price(usage, &book) {
                Ok(p) => {
                    priced.push(p);
                    kept.push(index);
                }
                Err(e) => rejected.push(RejectedInput {
                    index,
                    errors: vec![e],
                }),
            }
        }
        rejected.sort_by_key(|r| r.index);
        let recorded = if priced.is_empty() {
            vec![]
        } else {
            self.writer.write(priced).await?
        };
        Ok(Lenient {
            recorded: kept.into_iter().zip(recorded).collect(),
            rejected,
        })
    }

    async fn ensure_projects_exist(&self, projects: &HashSet<ProjectId>) -> Result<()> {
        let unknown: Vec<ProjectId> = {
            let known = self.known_projects.read().map_err(|_| {
                Error::internal(
                    "reading the project cache",
                    anyhow::anyhow!("poisoned lock"),
                )
            })?;
            projects
                .iter()
                .filter(|p| !known.contains(p))
                .copied()
                .collect()
        };
        if unknown.is_empty() {
            return Ok(());
        }
        let found = project::existing(&self.db, &unknown).await?;
        if found.len() != unknown.len() {
            return Err(Error::NotFound { what: "project" });
        }
        if let Ok(mut known) = self.known_projects.write() {
            known.extend(found);
        }
        Ok(())
    }
}
