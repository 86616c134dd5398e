//! The price change log: every price a sync, `upsertPrice` or `importPrices` added,
//! changed or removed, when, and from which source. Rows are only ever appended, in
//! the transaction that made the change, so the log and the prices cannot disagree.

use super::{Price, PriceSource};
use crate::domain::error::{Context, Error, Result};
use crate::domain::ids::PriceId;
use crate::domain::provider::Provider;
use crate::domain::time;
use crate::entity::price_change::{self, Column};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Condition, Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

/// What happened to a model's price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// A model got its first price from this source.
    Added,
    /// A new price period with other rates started.
    Changed,
    /// The source stopped listing the model; its period was closed.
    Removed,
}

super::text_enum!(ChangeKind { Added => "ADDED", Changed => "CHANGED", Removed => "REMOVED" });

/// One entry of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceChange {
    /// Position in the log.
    pub id: i64,
    /// When the change was written (for a sync: when the source was seen).
    pub at: DateTime<Utc>,
    /// Provider.
    pub provider: Provider,
    /// Model id.
    pub model: String,
    /// What happened.
    pub kind: ChangeKind,
    /// The source of the price (`SYNC`, `USER`, `IMPORT`).
    pub source: PriceSource,
    /// For a sync, the URL of the document.
    pub origin: Option<String>,
    /// The row in effect before (closed by a sync's change or removal).
    pub old_price: Option<PriceId>,
    /// The row written.
    pub new_price: Option<PriceId>,
    /// The rates before, as stored (JSON).
    pub old_rates: Option<serde_json::Value>,
    /// The rates after.
    pub new_rates: Option<serde_json::Value>,
}

/// A change to append.
#[derive(Debug, Clone)]
pub struct NewPriceChange<'a> {
    /// When.
    pub at: DateTime<Utc>,
    /// What.
    pub kind: ChangeKind,
    /// From which source.
    pub source: PriceSource,
    /// The document URL, for a sync.
    pub origin: Option<&'a str>,
    /// The price before.
    pub old: Option<&'a Price>,
    /// The price after.
    pub new: Option<&'a Price>,
}

/// Appends one change (inside the caller's transaction).
pub async fn record(conn: &impl ConnectionTrait, change: &NewPriceChange<'_>) -> Result<()> {
    let any = change.new.or(change.old).ok_or_else(|| {
        Error::internal(
            "recording a price change",
            anyhow::anyhow!("a change without a price"),
        )
    })?;
    let rates = |p: Option<&Price>| {
        p.map(|p| serde_json::to_string(&p.card))
            .transpose()
            .context("encoding a rate card")
    };
    price_change::Entity::insert(price_change::ActiveModel {
        id: sea_orm::ActiveValue::NotSet,
        changed_at: Set(time::to_micros(change.at)),
        provider: Set(any.provider.as_str().to_owned()),
        model: Set(any.model.clone()),
        change: Set(change.kind.as_str().to_owned()),
        source: Set(change.source.as_str().to_owned()),
        origin: Set(change.origin.map(str::to_owned)),
        old_price_id: Set(change.old.map(|p| p.id.0)),
        new_price_id: Set(change.new.map(|p| p.id.0)),
        old_rates: Set(rates(change.old)?),
        new_rates: Set(rates(change.new)?),
    })
    .exec_without_returning(conn)
    .await
    .context("recording a price change")?;
    Ok(())
}

/// Which changes to list. Empty lists mean any; `from` inclusive, `to` exclusive.
#[derive(Debug, Clone, Default)]
pub struct ChangeFilter {
    /// Providers.
    pub providers: Vec<Provider>,
    /// Model ids containing this text (case-insensitive).
    pub model_contains: Option<String>,
    /// Sources.
    pub sources: Vec<PriceSource>,
    /// Kinds of change.
    pub kinds: Vec<ChangeKind>,
    /// Only changes from this document URL.
    pub origin: Option<String>,
    /// Start.
    pub from: Option<DateTime<Utc>>,
    /// End.
    pub to: Option<DateTime<Utc>>,
}

/// Most changes one query returns.
pub const MAX_CHANGES: u64 = 1000;

/// Changes matching the filter, newest first, at most `limit`.
pub async fn list(
    conn: &impl ConnectionTrait,
    filter: &ChangeFilter,
    limit: u64,
) -> Result<Vec<PriceChange>> {
    let mut c = Condition::all();
    if !filter.providers.is_empty() {
        c = c.add(Column::Provider.is_in(filter.providers.iter().map(|p| p.as_str().to_owned())));
    }
    if !filter.sources.is_empty() {
        c = c.add(Column::Source.is_in(filter.sources.iter().map(|s| s.as_str())));
    }
    if !filter.kinds.is_empty() {
        c = c.add(Column::Change.is_in(filter.kinds.iter().map(|k| k.as_str())));
    }
    if let Some(origin) = &filter.origin {
        c = c.add(Column::Origin.eq(origin.as_str()));
    }
    if let Some(needle) = &filter.model_contains {
        c = c.add(Expr::expr(Func::lower(Expr::col(Column::Model))).like(
            LikeExpr::new(format!("%{}%", escape_like(&needle.to_lowercase()))).escape('\\'),
        ));
    }
    if let Some(from) = filter.from {
        c = c.add(Column::ChangedAt.gte(time::to_micros(from)));
    }
    if let Some(to) = filter.to {
        c = c.add(Column::ChangedAt.lt(time::to_micros(to)));
    }
    let rows = price_change::Entity::find()
        .filter(c)
        .order_by_desc(Column::ChangedAt)
        .order_by_desc(Column::Id)
        .limit(Ord::min(limit, MAX_CHANGES))
        .all(conn)
        .await
        .context("listing price changes")?;
    rows.into_iter().map(from_row).collect()
}

fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

fn from_row(row: price_change::Model) -> Result<PriceChange> {
    let corrupt = |what: &str, e: String| {
        Error::internal(
            "decoding a stored price change",
            anyhow::anyhow!("{what}: {e}"),
        )
    };
    let json = |text: Option<String>| {
        text.map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(|e| corrupt("rates", e.to_string()))
    };
    Ok(PriceChange {
        id: row.id,
        at: time::from_micros(row.changed_at),
        provider: Provider::parse(&row.provider)
            .ok_or_else(|| corrupt("provider", row.provider.clone()))?,
        model: row.model,
        kind: row.change.parse().map_err(|e| corrupt("change", e))?,
        source: row.source.parse().map_err(|e| corrupt("source", e))?,
        origin: row.origin,
        old_price: row.old_price_id.map(PriceId),
        new_price: row.new_price_id.map(PriceId),
        old_rates: json(row.old_rates)?,
        new_rates: json(row.new_rates)?,
    })
}

/// The document URL that wrote each of these synced price rows (the origin of the
/// change that created it).
pub async fn origins_of(
    conn: &impl ConnectionTrait,
    ids: &[PriceId],
) -> Result<std::collections::HashMap<PriceId, String>> {
    let mut out = std::collections::HashMap::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<(Option<i64>, Option<String>)> = price_change::Entity::find()
            .select_only()
            .column(Column::NewPriceId)
            .column(Column::Origin)
            .filter(Column::NewPriceId.is_in(chunk.iter().map(|i| i.0)))
            .filter(Column::Source.eq(PriceSource::Sync.as_str()))
            .into_tuple()
            .all(conn)
            .await
            .context("reading which source wrote synced prices")?;
        for (id, origin) in rows {
            if let (Some(id), Some(origin)) = (id, origin) {
                out.insert(PriceId(id), origin);
            }
        }
    }
    Ok(out)
}
