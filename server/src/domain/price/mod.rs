//! Prices: rate cards per model and period, the built-in catalog, LiteLLM import, and
//! the in-memory price book that ingest matches against.

pub mod book;
pub mod catalog;
pub mod changes;
pub mod genai_prices;
pub mod litellm;
pub mod model_name;
pub mod quote;
pub mod rates;
pub mod sources;
pub mod unpriced;
pub mod variant;

use crate::domain::error::{Context, Error, FieldError, Result};
use crate::domain::ids::PriceId;
use crate::domain::provider::Provider;
use crate::domain::time;
use crate::entity::{model_alias, price};
use book::PriceBook;
use chrono::{DateTime, Utc};
use rates::RateCard;
use sea_orm::sea_query::{ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    TransactionSession, TransactionTrait,
};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// How a price was declared to match. Both rules now match the same names: the id,
/// its aliases and its date/version-suffixed forms. A prefix never prices a longer
/// name (`gpt-4o-my-deployment` is unpriced until an alias says it is `gpt-4o`); the
/// rule is kept so stored rows and API clients that send it keep working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchRule {
    /// Only the id itself, its aliases and its date-suffixed forms.
    Exact,
    /// Formerly: also longer ids it was a prefix of. Now the same as `Exact`.
    Prefix,
}

/// Where a price came from; on overlap a user's price beats an import, which beats the
/// built-in catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PriceSource {
    /// Shipped with aispend (`server/catalog/prices.toml`).
    Builtin,
    /// Entered by an operator.
    User,
    /// Imported from a price map (LiteLLM).
    Import,
    /// Written by a price sync from a configured source (`AISPEND_PRICE_SOURCES`).
    Sync,
}

macro_rules! text_enum {
    ($ty:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $ty {
            /// The stored spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),* }
            }
        }
        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                match s {
                    $($text => Ok($ty::$variant),)*
                    other => Err(format!("unknown {} `{other}`", stringify!($ty))),
                }
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use text_enum;

text_enum!(MatchRule { Exact => "EXACT", Prefix => "PREFIX" });
text_enum!(PriceSource { Builtin => "BUILTIN", User => "USER", Import => "IMPORT", Sync => "SYNC" });

impl PriceSource {
    /// Higher wins when two prices cover the same model and time: a synced price is
    /// newer than the catalog and a one-off import, and a person's price beats all.
    pub fn precedence(self) -> u8 {
        match self {
            PriceSource::Builtin => 0,
            PriceSource::Import => 1,
            PriceSource::Sync => 2,
            PriceSource::User => 3,
        }
    }
}

/// A stored price row.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    /// Row id, referenced by the events it priced.
    pub id: PriceId,
    /// Provider the model belongs to.
    pub provider: Provider,
    /// Model id as the provider names it.
    pub model: String,
    /// Whether it may price longer ids.
    pub match_rule: MatchRule,
    /// First instant the price applies to.
    pub effective_from: DateTime<Utc>,
    /// First instant it no longer applies to (open when `None`).
    pub effective_to: Option<DateTime<Utc>>,
    /// Where it came from.
    pub source: PriceSource,
    /// The rates.
    pub card: RateCard,
    /// `chat`, `reasoning`, `embedding`, `search`.
    pub kind: Option<String>,
    /// Capability tier, used to recommend comparable cheaper models.
    pub tier: Option<String>,
    /// The provider page the rates come from.
    pub source_url: Option<String>,
    /// Why the rates are what they are (e.g. where they differ from LiteLLM).
    pub note: Option<String>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl Price {
    fn from_row(row: price::Model) -> Result<Price> {
        let card: RateCard =
            serde_json::from_str(&row.rates).context("decoding a stored rate card")?;
        Ok(Price {
            id: PriceId(row.id),
            provider: Provider::parse(&row.provider).ok_or_else(|| {
                Error::internal(
                    "decoding a stored price",
                    anyhow::anyhow!("bad provider {}", row.provider),
                )
            })?,
            model: row.model,
            match_rule: row.match_rule.parse().map_err(|e: String| {
                Error::internal("decoding a stored price", anyhow::anyhow!(e))
            })?,
            effective_from: time::from_micros(row.effective_from),
            effective_to: row.effective_to.map(time::from_micros),
            source: row.source.parse().map_err(|e: String| {
                Error::internal("decoding a stored price", anyhow::anyhow!(e))
            })?,
            card,
            kind: row.kind,
            tier: row.tier,
            source_url: row.source_url,
            note: row.note,
            updated_at: time::from_micros(row.updated_at),
        })
    }
}

/// A validated price to store.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceDraft {
    /// Provider.
    pub provider: Provider,
    /// Model id (trimmed, non-empty).
    pub model: String,
    /// Prefix rule.
    pub match_rule: MatchRule,
    /// Start (inclusive).
    pub effective_from: DateTime<Utc>,
    /// End (exclusive).
    pub effective_to: Option<DateTime<Utc>>,
    /// Rates (validated).
    pub card: RateCard,
    /// Kind of model.
    pub kind: Option<String>,
    /// Capability tier.
    pub tier: Option<String>,
    /// Pricing page.
    pub source_url: Option<String>,
    /// Free-form note.
    pub note: Option<String>,
}

/// Longest model id accepted.
pub const MAX_MODEL_LEN: usize = 200;

/// The unvalidated fields of a price, as a transport received them.
#[derive(Debug, Clone, Default)]
pub struct RawPrice {
    /// Provider name.
    pub provider: String,
    /// Model id.
    pub model: String,
    /// Prefix rule (default: prefix).
    pub match_rule: Option<MatchRule>,
    /// Start (default: the epoch, i.e. all history).
    pub effective_from: Option<DateTime<Utc>>,
    /// End.
    pub effective_to: Option<DateTime<Utc>>,
    /// Rates.
    pub card: RateCard,
    /// Kind.
    pub kind: Option<String>,
    /// Tier.
    pub tier: Option<String>,
    /// Pricing page.
    pub source_url: Option<String>,
    /// Note.
    pub note: Option<String>,
}

impl RawPrice {
    /// Parses into a draft, or every problem at once.
    pub fn parse(self) -> Result<PriceDraft> {
        let mut errors = vec![];
        let provider = Provider::parse(&self.provider);
        if provider.is_none() {
            errors.push(FieldError::new(
                "provider",
                "must be a non-empty provider name (letters, digits, `-`, `_`, `.`)",
            ));
        }
        let model = self.model.trim().to_owned();
        if model.is_empty() || model.len() > MAX_MODEL_LEN {
            errors.push(FieldError::new(
                "model",
                format!("must be 1 to {MAX_MODEL_LEN} characters"),
            ));
        } else if let Some(problem) =
            crate::domain::text::problem(&model, crate::domain::text::TextKind::Identifier)
        {
            errors.push(FieldError::new("model", problem));
        }
        let effective_from = self.effective_from.unwrap_or(DateTime::UNIX_EPOCH);
        if let Some(to) = self.effective_to
            && to <= effective_from
        {
            errors.push(FieldError::new(
                "effectiveTo",
                "must be after effectiveFrom",
            ));
        }
        if let Err(e) = self.card.validate() {
            errors.push(FieldError::new(e.field, e.message));
        }
        match provider {
            Some(provider) if errors.is_empty() => Ok(PriceDraft {
                provider,
                model,
                match_rule: self.match_rule.unwrap_or(MatchRule::Prefix),
                effective_from,
                effective_to: self.effective_to,
                card: self.card,
                kind: self.kind.filter(|s| !s.trim().is_empty()),
                tier: self.tier.filter(|s| !s.trim().is_empty()),
                source_url: self.source_url.filter(|s| !s.trim().is_empty()),
                note: self.note.filter(|s| !s.trim().is_empty()),
            }),
            _ => Err(Error::InvalidInput(errors)),
        }
    }
}

/// What a write did to one price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A new row.
    Created,
    /// An existing row got different values.
    Updated,
    /// The row already said exactly this.
    Unchanged,
}

/// Filter for listing prices.
#[derive(Debug, Clone, Default)]
pub struct PriceFilter {
    /// Only these providers.
    pub providers: Vec<Provider>,
    /// Only model ids containing this text (case-insensitive).
    pub model_contains: Option<String>,
    /// Only these sources.
    pub sources: Vec<PriceSource>,
    /// Only rows in effect at this time.
    pub effective_at: Option<DateTime<Utc>>,
}

/// Lists prices, ordered by provider, model and start.
pub async fn list(conn: &impl ConnectionTrait, filter: &PriceFilter) -> Result<Vec<Price>> {
    let mut query = price::Entity::find()
        .order_by_asc(price::Column::Provider)
        .order_by_asc(price::Column::Model)
        .order_by_asc(price::Column::EffectiveFrom)
        .order_by_asc(price::Column::Id);
    if !filter.providers.is_empty() {
        query = query.filter(
            price::Column::Provider.is_in(filter.providers.iter().map(|p| p.as_str().to_owned())),
        );
    }
    if !filter.sources.is_empty() {
        query =
            query.filter(price::Column::Source.is_in(filter.sources.iter().map(|s| s.as_str())));
    }
    if let Some(at) = filter.effective_at {
        let at = time::to_micros(at);
        query = query.filter(price::Column::EffectiveFrom.lte(at)).filter(
            price::Column::EffectiveTo
                .is_null()
                .or(price::Column::EffectiveTo.gt(at)),
        );
    }
    let rows = query.all(conn).await.context("listing prices")?;
    let needle = filter.model_contains.as_deref().map(model_name::match_key);
    rows.into_iter()
        .filter(|r| {
            needle
                .as_deref()
                .is_none_or(|n| r.model.to_ascii_lowercase().contains(n))
        })
        .map(Price::from_row)
        .collect()
}

/// Fetches one price.
pub async fn get(conn: &impl ConnectionTrait, id: PriceId) -> Result<Price> {
    let row = price::Entity::find_by_id(id.0)
        .one(conn)
        .await
        .context("reading a price")?
        .ok_or(Error::NotFound { what: "price" })?;
    Price::from_row(row)
}

/// Several prices by id (for resolving the price an event used).
pub async fn get_many(
    conn: &impl ConnectionTrait,
    ids: &[PriceId],
) -> Result<HashMap<PriceId, Price>> {
    let rows = price::Entity::find()
        .filter(price::Column::Id.is_in(ids.iter().map(|i| i.0)))
        .all(conn)
        .await
        .context("reading prices")?;
    rows.into_iter()
        .map(|r| Price::from_row(r).map(|p| (p.id, p)))
        .collect()
}

/// Inserts or updates the price with the draft's natural key
/// (provider, model, effective_from, source).
pub async fn upsert(
    conn: &impl ConnectionTrait,
    draft: &PriceDraft,
    source: PriceSource,
) -> Result<(Price, Change)> {
    let (price, change, _) = upsert_returning_old(conn, draft, source).await?;
    Ok((price, change))
}

/// [`upsert`], also returning the row as it was before (for the change log).
async fn upsert_returning_old(
    conn: &impl ConnectionTrait,
    draft: &PriceDraft,
    source: PriceSource,
) -> Result<(Price, Change, Option<Price>)> {
    let now = time::to_micros(time::now());
    let rates = serde_json::to_string(&draft.card).context("encoding a rate card")?;
    let existing = price::Entity::find()
        .filter(price::Column::Provider.eq(draft.provider.as_str()))
        .filter(price::Column::Model.eq(draft.model.as_str()))
        .filter(price::Column::EffectiveFrom.eq(time::to_micros(draft.effective_from)))
        .filter(price::Column::Source.eq(source.as_str()))
        .one(conn)
        .await
        .context("looking up a price by its natural key")?;
    let row = price::ActiveModel {
        id: sea_orm::ActiveValue::NotSet,
        provider: Set(draft.provider.as_str().to_owned()),
        model: Set(draft.model.clone()),
        match_rule: Set(draft.match_rule.as_str().to_owned()),
        effective_from: Set(time::to_micros(draft.effective_from)),
        effective_to: Set(draft.effective_to.map(time::to_micros)),
        source: Set(source.as_str().to_owned()),
        rates: Set(rates),
        kind: Set(draft.kind.clone()),
        tier: Set(draft.tier.clone()),
        source_url: Set(draft.source_url.clone()),
        note: Set(draft.note.clone()),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let old = existing.map(Price::from_row).transpose()?;
    let change = match &old {
        None => Change::Created,
        Some(p) => {
            let same = p.card == draft.card
                && p.match_rule == draft.match_rule
                && p.effective_to == draft.effective_to
                && p.kind == draft.kind
                && p.tier == draft.tier
                && p.source_url == draft.source_url
                && p.note == draft.note;
            if same {
                Change::Unchanged
            } else {
                Change::Updated
            }
        }
    };
    if change != Change::Unchanged {
        price::Entity::insert(row)
            .on_conflict(price_upsert())
            .exec_without_returning(conn)
            .await
            .context("upserting a price")?;
    }
    let stored = price::Entity::find()
        .filter(price::Column::Provider.eq(draft.provider.as_str()))
        .filter(price::Column::Model.eq(draft.model.as_str()))
        .filter(price::Column::EffectiveFrom.eq(time::to_micros(draft.effective_from)))
        .filter(price::Column::Source.eq(source.as_str()))
        .one(conn)
        .await
        .context("reading back an upserted price")?
        .ok_or_else(|| {
            Error::internal(
                "reading back an upserted price",
                anyhow::anyhow!("row vanished"),
            )
        })?;
    Ok((Price::from_row(stored)?, change, old))
}

/// Records an alias (`provider`, `alias` -> `model`), replacing an earlier one.
pub async fn upsert_alias(
    conn: &impl ConnectionTrait,
    provider: &Provider,
    alias: &str,
    model: &str,
    source: PriceSource,
) -> Result<()> {
    let row = model_alias::ActiveModel {
        id: sea_orm::ActiveValue::NotSet,
        provider: Set(provider.as_str().to_owned()),
        alias: Set(model_name::match_key(alias)),
        model: Set(model_name::match_key(model)),
        source: Set(source.as_str().to_owned()),
        created_at: Set(time::to_micros(time::now())),
    };
    model_alias::Entity::insert(row)
        .on_conflict(alias_upsert())
        .exec_without_returning(conn)
        .await
        .context("upserting a model alias")?;
    Ok(())
}

/// Reads every price and alias into a fresh book.
pub async fn load_book(conn: &impl ConnectionTrait) -> Result<PriceBook> {
    let prices = price::Entity::find()
        .all(conn)
        .await
        .context("loading prices")?
        .into_iter()
        .map(Price::from_row)
        .collect::<Result<Vec<_>>>()?;
    let aliases = model_alias::Entity::find()
        .all(conn)
        .await
        .context("loading model aliases")?
        .into_iter()
        .filter_map(|a| Provider::parse(&a.provider).map(|p| (p, a.alias, a.model)))
        .collect();
    Ok(PriceBook::new(prices, aliases))
}

/// The process-wide price book, swapped atomically when prices change.
///
/// Readers take a cheap `Arc` snapshot; a reload builds a new book off to the side.
/// This process reloads right after its own price writes; a periodic refresh picks up
/// writes made by other processes sharing the database.
pub struct PriceCache {
    book: RwLock<Arc<PriceBook>>,
}

impl PriceCache {
    /// Starts with the given book.
    pub fn new(book: PriceBook) -> Self {
        Self {
            book: RwLock::new(Arc::new(book)),
        }
    }

    /// The current snapshot.
    pub fn book(&self) -> Arc<PriceBook> {
        match self.book.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Rebuilds the book from the database.
    pub async fn reload(&self, conn: &impl ConnectionTrait) -> Result<()> {
        let fresh = Arc::new(load_book(conn).await?);
        match self.book.write() {
            Ok(mut guard) => *guard = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }
}

/// Counts of what a bulk price write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// New rows.
    pub imported: u64,
    /// Rows whose values changed.
    pub updated: u64,
    /// Rows that already said the same.
    pub unchanged: u64,
    /// Entries that could not be used, with the reason, grouped.
    pub skipped: Vec<(String, u64)>,
}

impl ImportReport {
    /// Total entries skipped.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.iter().map(|(_, n)| n).sum()
    }

    fn count(&mut self, change: Change) {
        match change {
            Change::Created => self.imported += 1,
            Change::Updated => self.updated += 1,
            Change::Unchanged => self.unchanged += 1,
        }
    }
}

/// Writes many drafts in one transaction, with aliases.
pub async fn upsert_all<C>(
    db: &C,
    drafts: &[(PriceDraft, Vec<String>)],
    source: PriceSource,
) -> Result<ImportReport>
where
    C: TransactionTrait,
{
    // IMMEDIATE on SQLite: this transaction reads, then writes; a deferred one fails
    // with "database is locked" when another connection (the ingest writer, a job
    // worker) commits in between.
    let txn = crate::db::begin_write(db)
        .await
        .context("starting a price import")?;
    let mut report = ImportReport::default();
    let at = time::now();
    for (draft, aliases) in drafts {
        let (stored, change, old) = upsert_returning_old(&txn, draft, source).await?;
        report.count(change);
        // The catalog is rewritten at every start; only prices people and their
        // imports set are worth a line in the change log.
        if source != PriceSource::Builtin && change != Change::Unchanged {
            changes::record(
                &txn,
                &changes::NewPriceChange {
                    at,
                    kind: if old.is_some() {
                        changes::ChangeKind::Changed
                    } else {
                        changes::ChangeKind::Added
                    },
                    source,
                    origin: None,
                    old: old.as_ref(),
                    new: Some(&stored),
                },
            )
            .await?;
        }
        for alias in aliases {
            upsert_alias(&txn, &draft.provider, alias, &draft.model, source).await?;
        }
    }
    txn.commit().await.context("committing a price import")?;
    Ok(report)
}

/// How a price row is upserted: one row per provider, model, start and source; a
/// second write of it replaces its rule, end, rates and notes.
pub(crate) fn price_upsert() -> OnConflict {
    OnConflict::columns([
        price::Column::Provider,
        price::Column::Model,
        price::Column::EffectiveFrom,
        price::Column::Source,
    ])
    .update_columns([
        price::Column::MatchRule,
        price::Column::EffectiveTo,
        price::Column::Rates,
        price::Column::Kind,
        price::Column::Tier,
        price::Column::SourceUrl,
        price::Column::Note,
        price::Column::UpdatedAt,
    ])
    .to_owned()
}

/// How a model alias is upserted: one per provider and alias.
pub(crate) fn alias_upsert() -> OnConflict {
    OnConflict::columns([model_alias::Column::Provider, model_alias::Column::Alias])
        .update_columns([model_alias::Column::Model, model_alias::Column::Source])
        .to_owned()
}
