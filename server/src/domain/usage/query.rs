//! Reading usage events: one filter shared by every query (and by analytics), keyset
//! pagination with opaque cursors, and re-pricing.

use super::ingest::{Hooks, LedgerChange, Repriced, apply_hooks, committed_hooks, price};
use super::input::NewUsage;
use super::{CostSource, UsageEvent, UsageSource};
use crate::domain::auth::{Principal, Scope};
use crate::domain::error::{Context, Error, FieldError, Result, parse_each};
use crate::domain::ids::{ProjectId, UsageEventId};
use crate::domain::money::{Usd, Wide};
use crate::domain::price::book::PriceBook;
use crate::domain::provider::Provider;
use crate::domain::time;
use crate::entity::usage_event::{self, Column};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Condition, Expr, ExprTrait, Func};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, Order,
    QueryFilter, QueryOrder, QuerySelect,
};

/// Which usage to look at. Empty lists mean "any"; `from` is inclusive, `to` exclusive.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsageFilter {
    /// Projects.
    pub projects: Vec<ProjectId>,
    /// Providers.
    pub providers: Vec<Provider>,
    /// Model ids, exactly as recorded.
    pub models: Vec<String>,
    /// Endpoints.
    pub endpoints: Vec<String>,
    /// Sources.
    pub sources: Vec<UsageSource>,
    /// End-user tags.
    pub users: Vec<String>,
    /// Start (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// End (exclusive).
    pub to: Option<DateTime<Utc>>,
}

/// A filter as a client sent it.
#[derive(Debug, Clone, Default)]
pub struct RawUsageFilter {
    /// Project ids (text).
    pub projects: Option<Vec<String>>,
    /// Provider names.
    pub providers: Option<Vec<String>>,
    /// Model ids.
    pub models: Option<Vec<String>>,
    /// Endpoints.
    pub endpoints: Option<Vec<String>>,
    /// Sources.
    pub sources: Option<Vec<UsageSource>>,
    /// End-user tags.
    pub users: Option<Vec<String>>,
    /// Start.
    pub from: Option<DateTime<Utc>>,
    /// End.
    pub to: Option<DateTime<Utc>>,
}

fn trimmed(values: Option<Vec<String>>) -> Vec<String> {
    values
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Most values one list of a usage filter may hold: a person picks a handful; a
/// list of thousands is an attempt to make one query do the work of thousands.
pub const MAX_FILTER_VALUES: usize = 100;

impl RawUsageFilter {
    /// Parses ids and names; `from` after `to` is `INVALID_DATE_RANGE`.
    pub fn parse(self) -> Result<UsageFilter> {
        let mut errors = vec![];
        for (field, len) in [
            ("projects", self.projects.as_ref().map(Vec::len)),
            ("providers", self.providers.as_ref().map(Vec::len)),
            ("models", self.models.as_ref().map(Vec::len)),
            ("endpoints", self.endpoints.as_ref().map(Vec::len)),
            ("sources", self.sources.as_ref().map(Vec::len)),
            ("users", self.users.as_ref().map(Vec::len)),
        ] {
            if len.is_some_and(|n| n > MAX_FILTER_VALUES) {
                errors.push(FieldError::new(
                    field,
                    format!("may list at most {MAX_FILTER_VALUES} values"),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(Error::InvalidInput(errors));
        }
        let projects = parse_each(
            self.projects,
            "projects",
            "is not a project id",
            |p| p.parse::<ProjectId>().ok(),
            &mut errors,
        );
        let providers = parse_each(
            self.providers,
            "providers",
            "is not a provider name",
            Provider::parse,
            &mut errors,
        );
        if !errors.is_empty() {
            return Err(Error::InvalidInput(errors));
        }
        if let (Some(from), Some(to)) = (self.from, self.to)
            && from > to
        {
            return Err(Error::InvalidDateRange(format!(
                "`from` ({}) is after `to` ({})",
                from.to_rfc3339(),
                to.to_rfc3339()
            )));
        }
        Ok(UsageFilter {
            projects,
            providers,
            models: trimmed(self.models),
            endpoints: trimmed(self.endpoints),
            sources: self.sources.unwrap_or_default(),
            users: trimmed(self.users),
            from: self.from,
            to: self.to,
        })
    }
}

impl UsageFilter {
    /// The filter as a SQL condition on `usage_events`.
    pub fn condition(&self) -> Condition {
        let mut c = Condition::all();
        if !self.projects.is_empty() {
            c = c.add(Column::ProjectId.is_in(self.projects.iter().map(|p| p.0)));
        }
        if !self.providers.is_empty() {
            c = c.add(Column::Provider.is_in(self.providers.iter().map(|p| p.as_str().to_owned())));
        }
        if !self.models.is_empty() {
            c = c.add(Column::Model.is_in(self.models.iter().cloned()));
        }
        if !self.endpoints.is_empty() {
            c = c.add(Column::Endpoint.is_in(self.endpoints.iter().cloned()));
        }
        if !self.sources.is_empty() {
            c = c.add(Column::Source.is_in(self.sources.iter().map(|s| s.as_str())));
        }
        if !self.users.is_empty() {
            c = c.add(Column::EndUser.is_in(self.users.iter().cloned()));
        }
        if let Some(from) = self.from {
            c = c.add(Column::OccurredAt.gte(time::to_micros(from)));
        }
        if let Some(to) = self.to {
            c = c.add(Column::OccurredAt.lt(time::to_micros(to)));
        }
        c
    }

    /// Whether one event passes the filter: the in-memory twin of [`Self::condition`],
    /// for budgets and live updates, which match events as they are written.
    pub fn matches(&self, e: &UsageEvent) -> bool {
        fn any_or<T: PartialEq>(list: &[T], value: &T) -> bool {
            list.is_empty() || list.contains(value)
        }
        fn any_or_opt(list: &[String], value: Option<&String>) -> bool {
            list.is_empty() || value.is_some_and(|v| list.contains(v))
        }
        any_or(&self.projects, &e.project)
            && any_or(&self.providers, &e.provider)
            && any_or(&self.models, &e.model)
            && any_or_opt(&self.endpoints, e.endpoint.as_ref())
            && any_or(&self.sources, &e.source)
            && any_or_opt(&self.users, e.user.as_ref())
            && self.from.is_none_or(|from| e.occurred_at >= from)
            && self.to.is_none_or(|to| e.occurred_at < to)
    }

    /// Restricts the filter to what the caller may read (`FORBIDDEN` when it asks for
    /// a project it may not see).
    pub fn authorized(mut self, principal: &Principal) -> Result<UsageFilter> {
        self.projects = principal.readable_projects(&self.projects)?;
        Ok(self)
    }
}

/// The exact total cost of the events matching `filter` (no authorisation: callers
/// pass a filter they already restricted). Budgets seed their counters with it.
/// Summed in two pieces (see `money::Wide`), so no number of events overflows it;
/// unpriced events count as zero.
pub async fn total_cost(conn: &impl ConnectionTrait, filter: &UsageFilter) -> Result<Usd> {
    let b = Wide::BASE;
    let total: Option<(i64, i64)> = usage_event::Entity::find()
        .select_only()
        .expr_as(
            Expr::cust(format!(
                "CAST(COALESCE(SUM(cost_nanos / {b}), 0) AS BIGINT)"
            )),
            "hi",
        )
        .expr_as(
            Expr::cust(format!(
                "CAST(COALESCE(SUM(cost_nanos % {b}), 0) AS BIGINT)"
            )),
            "lo",
        )
        .filter(filter.condition())
        .into_tuple()
        .one(conn)
        .await
        .context("summing the cost of usage events")?;
    let (hi, lo) = total.unwrap_or((0, 0));
    Ok(Usd::from_wide_nanos(Wide::join(hi, lo)))
}

/// Sort orders of `usageEvents`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UsageOrder {
    /// Newest first.
    #[default]
    OccurredAtDesc,
    /// Oldest first.
    OccurredAtAsc,
    /// Dearest first (unpriced last).
    CostDesc,
    /// Cheapest first (unpriced first).
    CostAsc,
}

impl UsageOrder {
    fn tag(self) -> &'static str {
        match self {
            UsageOrder::OccurredAtDesc => "td",
            UsageOrder::OccurredAtAsc => "ta",
            UsageOrder::CostDesc => "cd",
            UsageOrder::CostAsc => "ca",
        }
    }

    fn descending(self) -> bool {
        matches!(self, UsageOrder::OccurredAtDesc | UsageOrder::CostDesc)
    }

    fn by_cost(self) -> bool {
        matches!(self, UsageOrder::CostDesc | UsageOrder::CostAsc)
    }

    fn key_of(self, e: &UsageEvent) -> i64 {
        if self.by_cost() {
            e.cost.map(Usd::stored_nanos).unwrap_or(-1)
        } else {
            time::to_micros(e.occurred_at)
        }
    }
}

/// A position in a sorted list of events: the sort key and id of the last one seen.
/// Stable: new events never shift a cursor, and equal keys are ordered by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    order: UsageOrder,
    key: i64,
    id: i64,
}

impl Cursor {
    /// The opaque text handed to clients.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("v1:{}:{}:{}", self.order.tag(), self.key, self.id))
    }

    /// Reads a cursor for the given order; one from another order is an input error.
    pub fn decode(text: &str, order: UsageOrder) -> std::result::Result<Cursor, FieldError> {
        let bad = || FieldError::new("after", "is not a cursor returned by this query");
        let raw = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let parts: Vec<&str> = raw.split(':').collect();
        match parts.as_slice() {
            ["v1", tag, key, id] if *tag == order.tag() => Ok(Cursor {
                order,
                key: key.parse().map_err(|_| bad())?,
                id: id.parse().map_err(|_| bad())?,
            }),
            ["v1", _, _, _] => Err(FieldError::new(
                "after",
                "was issued for a different orderBy",
            )),
            _ => Err(bad()),
        }
    }
}

/// Most events per page.
pub const MAX_PAGE: u64 = 1000;

/// One page of events.
#[derive(Debug, Clone)]
pub struct Page {
    /// Events with their cursors.
    pub events: Vec<(UsageEvent, Cursor)>,
    /// Whether more follow.
    pub has_next: bool,
    /// Whether a cursor was given (so events precede this page).
    pub has_previous: bool,
    /// Total matching the filter, when asked for.
    pub total: Option<u64>,
}

fn cost_key() -> Expr {
    Func::coalesce([Expr::col(Column::CostNanos), Expr::val(-1_i64)]).into()
}

/// One page of events, newest first by default.
pub async fn page(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    filter: UsageFilter,
    first: Option<i64>,
    after: Option<&str>,
    order: UsageOrder,
    want_total: bool,
) -> Result<Page> {
    let filter = filter.authorized(principal)?;
    let first = first.unwrap_or(100);
    if !(0..=MAX_PAGE as i64).contains(&first) {
        return Err(Error::invalid(
            "first",
            format!("must be between 0 and {MAX_PAGE}"),
        ));
    }
    let cursor = after
        .map(|a| Cursor::decode(a, order))
        .transpose()
        .map_err(|e| Error::InvalidInput(vec![e]))?;
    let key: Expr = if order.by_cost() {
        cost_key()
    } else {
        Expr::col(Column::OccurredAt)
    };
    let mut query = usage_event::Entity::find().filter(filter.condition());
    if let Some(c) = cursor {
        let after_key = if order.descending() {
            key.clone()
                .lt(c.key)
                .or(key.clone().eq(c.key).and(Expr::col(Column::Id).lt(c.id)))
        } else {
            key.clone()
                .gt(c.key)
                .or(key.clone().eq(c.key).and(Expr::col(Column::Id).gt(c.id)))
        };
        query = query.filter(after_key);
    }
    let dir = if order.descending() {
        Order::Desc
    } else {
        Order::Asc
    };
    let rows = query
        .order_by(key, dir.clone())
        .order_by(Column::Id, dir)
        .limit(first as u64 + 1)
        .all(conn)
        .await
        .context("listing usage events")?;
    let has_next = rows.len() as i64 > first;
    let events = rows
        .into_iter()
        .take(first as usize)
        .map(|m| {
            let e = UsageEvent::try_from(m)?;
            let c = Cursor {
                order,
                key: order.key_of(&e),
                id: e.id.0,
            };
            Ok((e, c))
        })
        .collect::<Result<Vec<_>>>()?;
    let total = if want_total {
        Some(crate::domain::analytics::tracked_events(conn, &filter).await?)
    } else {
        None
    };
    Ok(Page {
        events,
        has_next,
        has_previous: cursor.is_some(),
        total,
    })
}

/// One event, if the caller may read its project.
pub async fn get(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    id: UsageEventId,
) -> Result<UsageEvent> {
    principal.require(Scope::Read)?;
    let event = usage_event::Entity::find_by_id(id.0)
        .one(conn)
        .await
        .context("reading a usage event")?
        .ok_or(Error::NotFound {
            what: "usage event",
        })
        .and_then(UsageEvent::try_from)?;
    principal.readable_projects(&[event.project])?;
    Ok(event)
}

/// Events re-priced per transaction by [`recompute_costs`].
const RECOMPUTE_CHUNK: u64 = 1000;

/// Re-prices every event matching the filter with the current price book (events
/// whose cost the provider reported keep it) and returns how many changed. Used after
/// adding a missing price or correcting one.
pub async fn recompute_costs(
    db: &DatabaseConnection,
    principal: &Principal,
    book: &PriceBook,
    mut filter: UsageFilter,
    hooks: &Hooks,
) -> Result<u64> {
    principal.require(Scope::Admin)?;
    if let Some(own) = principal.project() {
        if filter.projects.iter().any(|p| *p != own) {
            return Err(Error::Forbidden(
                "this token may only re-price its own project".into(),
            ));
        }
        filter.projects = vec![own];
    }
    reprice_where(
        db,
        book,
        filter
            .condition()
            .add(Column::CostSource.ne(CostSource::Reported.as_str())),
        hooks,
    )
    .await
}

/// Prices the events stored `UNPRICED` that the book can price now, with the same
/// hooks as ingest (rollups, budgets, live updates). Run by the server itself after
/// prices arrive (a price sync, `upsertPrice`, `importPrices`), so no caller needs a
/// scope: it only ever fills in costs the ledger lacked. `providers` narrows the scan
/// to the providers whose prices changed (empty: every provider).
pub async fn reprice_unpriced(
    db: &DatabaseConnection,
    book: &PriceBook,
    hooks: &Hooks,
    providers: &[Provider],
) -> Result<u64> {
    let mut condition = Condition::all().add(Column::CostSource.eq(CostSource::Unpriced.as_str()));
    if !providers.is_empty() {
        condition =
            condition.add(Column::Provider.is_in(providers.iter().map(|p| p.as_str().to_owned())));
    }
    reprice_where(db, book, condition, hooks).await
}

/// Re-prices the events matching `condition`, a chunk per transaction.
///
/// Two re-pricings may run at once (a price sync and `recomputeCosts`, or two server
/// processes). Each chunk's rows are read `FOR UPDATE` on PostgreSQL (SQLite write
/// transactions are `IMMEDIATE`, so they are serialised already): the second reader
/// waits for the first to commit and then sees the new cost, so it finds nothing to
/// change and no hook ever applies the same delta twice. Rows are locked in id
/// order, before `ledger_state` (the lock order of the ledger).
async fn reprice_where(
    db: &DatabaseConnection,
    book: &PriceBook,
    condition: Condition,
    hooks: &Hooks,
) -> Result<u64> {
    let mut changed = 0;
    let mut last_id = 0_i64;
    loop {
        let txn = crate::db::begin_write(db)
            .await
            .context("starting a re-pricing transaction")?;
        let rows = usage_event::Entity::find()
            .filter(condition.clone())
            .filter(Column::Id.gt(last_id))
            .order_by_asc(Column::Id)
            .limit(RECOMPUTE_CHUNK)
            .lock_exclusive()
            .all(&txn)
            .await
            .context("reading events to re-price")?;
        let Some(last) = rows.last() else {
            txn.commit().await.context("finishing re-pricing")?;
            break;
        };
        last_id = last.id;
        let mut repriced = vec![];
        for row in rows {
            let event = UsageEvent::try_from(row)?;
            if event.cost_source == CostSource::Reported {
                continue;
            }
            let priced = price(
                NewUsage {
                    project: event.project,
                    provider: event.provider.clone(),
                    model: event.model.clone(),
                    endpoint: None,
                    source: event.source,
                    occurred_at: event.occurred_at,
                    tokens: event.tokens,
                    requests: event.requests,
                    service_tier: event.service_tier,
                    variant: event.variant.clone(),
                    latency_ms: None,
                    idempotency_key: None,
                    reported_cost: None,
                    user: None,
                    metadata: None,
                },
                book,
            )
            .map_err(|e| {
                Error::internal(
                    "re-pricing an event",
                    anyhow::anyhow!("event {}: {}", event.id, e.message),
                )
            })?;
            if priced.cost != event.cost
                || priced.cost_source != event.cost_source
                || priced.price_id != event.price_id
            {
                usage_event::Entity::update(usage_event::ActiveModel {
                    id: Set(event.id.0),
                    cost_nanos: Set(priced.cost.map(Usd::stored_nanos)),
                    cost_source: Set(priced.cost_source.as_str().to_owned()),
                    price_id: Set(priced.price_id.map(|p| p.0)),
                    ..Default::default()
                })
                .exec(&txn)
                .await
                .context("storing a re-priced event")?;
                repriced.push(Repriced {
                    previous_cost: event.cost,
                    previous_source: event.cost_source,
                    event: UsageEvent {
                        cost: priced.cost,
                        cost_source: priced.cost_source,
                        price_id: priced.price_id,
                        ..event
                    },
                });
            }
        }
        if !repriced.is_empty() {
            apply_hooks(hooks, &txn, LedgerChange::Repriced(&repriced)).await?;
        }
        txn.commit().await.context("committing re-priced events")?;
        if !repriced.is_empty() {
            committed_hooks(hooks, LedgerChange::Repriced(&repriced));
        }
        changed += repriced.len() as u64;
    }
    Ok(changed)
}
