//! Prices over GraphQL: list, upsert, import.

use super::context::ContextExt;
use super::error::{GqlResult, under_argument};
use super::scalars::Decimal;
use super::scalars::Timestamp;
use crate::domain::auth::Scope;
use crate::domain::ids::PriceId;
use crate::domain::price::changes::{self, ChangeFilter, ChangeKind, PriceChange};
use crate::domain::price::rates::{LongContext, RateCard, RateSet};
use crate::domain::price::sources::{SourceFormat, SourceState, SourceStatus};
use crate::domain::price::unpriced::UnpricedReason;
use crate::domain::price::variant::Variant;
use crate::domain::price::{self, MatchRule, Price, PriceFilter, PriceSource, RawPrice, litellm};
use crate::domain::provider::Provider;
use crate::domain::{Error, FieldError};
use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use chrono::DateTime;
use std::collections::BTreeMap;

/// Whether a price may also price longer model ids.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "MatchRule", remote = "MatchRule")]
pub enum MatchRuleGql {
    /// Only the id, its aliases and its date-suffixed forms.
    Exact,
    /// Kept for compatibility; matches like EXACT (a prefix never prices a longer id).
    Prefix,
}

/// Where a price came from.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "PriceSource", remote = "PriceSource")]
pub enum PriceSourceGql {
    /// The built-in catalog.
    Builtin,
    /// Entered by an operator (wins over the others).
    User,
    /// Imported from a price map.
    Import,
    /// Written by a price sync from a configured source (`priceSources`).
    Sync,
}

/// Why an event is unpriced.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "UnpricedReason", remote = "UnpricedReason")]
pub enum UnpricedReasonGql {
    /// No price of the provider names this model, an alias of it, or a model it is
    /// a variant of.
    NoSuchModel,
    /// A known model with an extra word (a different product) that has no price of
    /// its own; it is never priced as its base model.
    VariantWithoutPrice,
    /// The model has prices, but none in effect when the event happened.
    NoPriceAtThatTime,
    /// The model has a price, but not for a unit the event used (audio tokens, image
    /// output tokens, generated images, web-search calls, video seconds): it is not
    /// priced as text.
    UnitWithoutRate,
    /// A price arrived after the event was stored; it is being re-priced.
    PriceArrived,
}

/// The format of a price source's document.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "PriceDocumentFormat", remote = "SourceFormat")]
pub enum SourceFormatGql {
    /// LiteLLM's `model_prices_and_context_window.json`.
    Litellm,
    /// genai-prices' `data.json`.
    GenaiPrices,
}

/// Where the last sync of a price source left it.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "PriceSourceStatus", remote = "SourceStatus")]
pub enum SourceStatusGql {
    /// Configured, not synced yet.
    Never,
    /// The last document was applied.
    Ok,
    /// The last document was refused whole; `error` says why.
    Refused,
    /// The last document could not be fetched or read; `error` says why.
    Failed,
}

/// A configured price source (`AISPEND_PRICE_SOURCES`) and its last sync.
#[derive(SimpleObject)]
#[graphql(name = "PriceSourceState")]
pub struct SourceStateGql {
    /// The document's URL.
    pub url: String,
    /// The format it was read as.
    pub format: Option<SourceFormatGql>,
    /// Where the last sync left it.
    pub status: SourceStatusGql,
    /// Why the last document was refused or could not be read.
    pub error: Option<String>,
    /// The last sync that was applied.
    pub last_sync_at: Option<Timestamp>,
    /// The last attempt, applied or not.
    pub last_attempt_at: Option<Timestamp>,
    /// Prices the last sync added (for a refused one: would have added).
    pub added: i64,
    /// Prices that got a new period with other rates.
    pub changed: i64,
    /// Prices whose period was closed because the source dropped them.
    pub removed: i64,
    /// Prices that already said the same.
    pub unchanged: i64,
    /// Entries skipped: not billable by aispend, listed by an earlier source, or a
    /// model with a USER price.
    pub skipped: i64,
}

impl From<SourceState> for SourceStateGql {
    fn from(s: SourceState) -> Self {
        SourceStateGql {
            url: s.url,
            format: s.format.map(Into::into),
            status: s.status.into(),
            error: s.error,
            last_sync_at: s.last_sync_at.map(Into::into),
            last_attempt_at: s.last_attempt_at.map(Into::into),
            added: s.added as i64,
            changed: s.changed as i64,
            removed: s.removed as i64,
            unchanged: s.unchanged as i64,
            skipped: s.skipped as i64,
        }
    }
}

/// What `syncPriceSources` did.
#[derive(SimpleObject)]
pub struct SyncPriceSourcesPayload {
    /// Each source's new state.
    pub sources: Vec<SourceStateGql>,
    /// Events stored UNPRICED that the new prices priced.
    pub repriced: i64,
}

/// What happened to a price.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "PriceChangeKind", remote = "ChangeKind")]
pub enum ChangeKindGql {
    /// The model got its first price from this source.
    Added,
    /// A new period with other rates started.
    Changed,
    /// The source dropped the model; its period was closed.
    Removed,
}

/// One entry of the price change log.
pub struct PriceChangeGql(pub PriceChange);

#[Object(name = "PriceChange")]
impl PriceChangeGql {
    /// Position in the log.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// When it changed (for a sync: when the document was seen).
    async fn at(&self) -> Timestamp {
        self.0.at.into()
    }
    /// Provider.
    async fn provider(&self) -> &str {
        self.0.provider.as_str()
    }
    /// Model id.
    async fn model(&self) -> &str {
        &self.0.model
    }
    /// What happened.
    async fn kind(&self) -> ChangeKindGql {
        self.0.kind.into()
    }
    /// The source of the price.
    async fn source(&self) -> PriceSourceGql {
        self.0.source.into()
    }
    /// For a sync, the URL of the document.
    async fn origin(&self) -> Option<&str> {
        self.0.origin.as_deref()
    }
    /// The price in effect before (its period closed at `at` for a sync).
    async fn old_price_id(&self) -> Option<ID> {
        self.0.old_price.map(|p| ID(p.to_string()))
    }
    /// The price written.
    async fn new_price_id(&self) -> Option<ID> {
        self.0.new_price.map(|p| ID(p.to_string()))
    }
    /// The rates before (as a rate card).
    async fn old_rates(&self) -> Option<Json<serde_json::Value>> {
        self.0.old_rates.clone().map(Json)
    }
    /// The rates after.
    async fn new_rates(&self) -> Option<Json<serde_json::Value>> {
        self.0.new_rates.clone().map(Json)
    }
}

/// Which price changes to list.
#[derive(InputObject, Default)]
#[graphql(name = "PriceChangeFilter")]
pub struct PriceChangeFilterInput {
    /// Providers.
    pub providers: Option<Vec<String>>,
    /// Model ids containing this text.
    pub model: Option<String>,
    /// Sources.
    pub sources: Option<Vec<PriceSourceGql>>,
    /// Kinds of change.
    pub kinds: Option<Vec<ChangeKindGql>>,
    /// Only changes from this source URL.
    pub origin: Option<String>,
    /// From (inclusive).
    pub from: Option<Timestamp>,
    /// To (exclusive).
    pub to: Option<Timestamp>,
}

/// Price map formats `importPrices` reads.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum PriceFormat {
    /// LiteLLM's `model_prices_and_context_window.json`.
    Litellm,
    /// genai-prices' `data.json` (an array of providers).
    GenaiPrices,
}

/// USD per one million tokens for each token class; USD per unit for `image`,
/// `webSearch`, `videoSecond` and `request`.
#[derive(SimpleObject, InputObject, Clone, Default)]
#[graphql(input_name = "RateSetInput", name = "RateSet")]
pub struct RateSetGql {
    /// Uncached input.
    pub input: Option<Decimal>,
    /// Output (reasoning included).
    pub output: Option<Decimal>,
    /// Cache reads (default: input).
    pub cache_read: Option<Decimal>,
    /// 5-minute cache writes (default: input).
    pub cache_write: Option<Decimal>,
    /// 1-hour cache writes (default: cacheWrite).
    #[graphql(name = "cacheWrite1h")]
    pub cache_write_1h: Option<Decimal>,
    /// Reasoning tokens, when billed apart from output (default: output).
    pub reasoning: Option<Decimal>,
    /// Audio input tokens (no default: an event with audio input under a price
    /// without this rate is unpriced).
    pub audio_input: Option<Decimal>,
    /// Audio output tokens (no default).
    pub audio_output: Option<Decimal>,
    /// Image input tokens (default: input).
    pub image_input: Option<Decimal>,
    /// Image output tokens (no default).
    pub image_output: Option<Decimal>,
    /// USD per generated image (no default).
    pub image: Option<Decimal>,
    /// USD per web-search call (no default).
    pub web_search: Option<Decimal>,
    /// USD per second of generated video (no default).
    pub video_second: Option<Decimal>,
    /// USD per request, on top of the tokens (default: none).
    pub request: Option<Decimal>,
}

impl From<RateSet> for RateSetGql {
    fn from(r: RateSet) -> Self {
        RateSetGql {
            input: r.input.map(Into::into),
            output: r.output.map(Into::into),
            cache_read: r.cache_read.map(Into::into),
            cache_write: r.cache_write.map(Into::into),
            cache_write_1h: r.cache_write_1h.map(Into::into),
            reasoning: r.reasoning.map(Into::into),
            audio_input: r.audio_input.map(Into::into),
            audio_output: r.audio_output.map(Into::into),
            image_input: r.image_input.map(Into::into),
            image_output: r.image_output.map(Into::into),
            image: r.image.map(Into::into),
            web_search: r.web_search.map(Into::into),
            video_second: r.video_second.map(Into::into),
            request: r.request.map(Into::into),
        }
    }
}

impl From<RateSetGql> for RateSet {
    fn from(r: RateSetGql) -> Self {
        RateSet {
            input: r.input.map(Into::into),
            output: r.output.map(Into::into),
            cache_read: r.cache_read.map(Into::into),
            cache_write: r.cache_write.map(Into::into),
            cache_write_1h: r.cache_write_1h.map(Into::into),
            reasoning: r.reasoning.map(Into::into),
            audio_input: r.audio_input.map(Into::into),
            audio_output: r.audio_output.map(Into::into),
            image_input: r.image_input.map(Into::into),
            image_output: r.image_output.map(Into::into),
            image: r.image.map(Into::into),
            web_search: r.web_search.map(Into::into),
            video_second: r.video_second.map(Into::into),
            request: r.request.map(Into::into),
        }
    }
}

/// Rates that apply to a whole request when its prompt exceeds the threshold.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "LongContextInput", name = "LongContextRates")]
pub struct LongContextGql {
    /// Prompt tokens (input + cache) per request above which these rates apply.
    pub threshold: i64,
    /// The rates above the threshold (a missing class keeps its standard rate).
    pub rates: RateSetGql,
}

/// Per-unit rates for one pricing variant (Perplexity's search context size, an
/// image's quality and size, a video's resolution). An event naming this variant pays
/// these rates; see `UsageInput.pricingVariant`.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "RateVariantInput", name = "RateVariant")]
pub struct RateVariantGql {
    /// The variant, e.g. `low`, `hd/1024x1024`, `720p` (stored lower case, with
    /// `1024-x-1024` read as `1024x1024`).
    pub variant: String,
    /// USD per generated image.
    pub image: Option<Decimal>,
    /// USD per web-search call.
    pub web_search: Option<Decimal>,
    /// USD per second of generated video.
    pub video_second: Option<Decimal>,
    /// USD per request.
    pub request: Option<Decimal>,
}

/// A price's variants for the API, in variant order.
fn variants_out(variants: &BTreeMap<String, RateSet>) -> Vec<RateVariantGql> {
    variants
        .iter()
        .map(|(variant, set)| RateVariantGql {
            variant: variant.clone(),
            image: set.image.map(Into::into),
            web_search: set.web_search.map(Into::into),
            video_second: set.video_second.map(Into::into),
            request: set.request.map(Into::into),
        })
        .collect()
}

/// Reads the variants of a price input: each spelled canonically, none twice.
fn variants_in(input: Vec<RateVariantGql>) -> Result<BTreeMap<String, RateSet>, Error> {
    let mut out = BTreeMap::new();
    for (i, v) in input.into_iter().enumerate() {
        let field = format!("input.variants.{i}.variant");
        let key = Variant::parse(&v.variant).map_err(|e| Error::invalid(&field, e))?;
        let set = RateSet {
            image: v.image.map(Into::into),
            web_search: v.web_search.map(Into::into),
            video_second: v.video_second.map(Into::into),
            request: v.request.map(Into::into),
            ..RateSet::default()
        };
        if out.insert(key.as_str().to_owned(), set).is_some() {
            return Err(Error::invalid(&field, format!("`{key}` is listed twice")));
        }
    }
    Ok(out)
}

/// Loads prices by id in batches, so a page of 1,000 events that selects `price`
/// costs one query, not 1,000. Shared by all requests; it batches, it does not cache
/// (a price may change between requests).
pub struct PriceLoader {
    /// The connection pool.
    pub db: sea_orm::DatabaseConnection,
}

impl async_graphql::dataloader::Loader<PriceId> for PriceLoader {
    type Value = Price;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[PriceId],
    ) -> Result<std::collections::HashMap<PriceId, Price>, Self::Error> {
        price::get_many(&self.db, keys).await.gql()
    }
}

/// A price: one rate card of one model for one period, from one source.
pub struct PriceGql(pub Price);

impl From<Price> for PriceGql {
    fn from(p: Price) -> Self {
        PriceGql(p)
    }
}

#[Object(name = "Price")]
impl PriceGql {
    /// Id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Provider.
    async fn provider(&self) -> &str {
        self.0.provider.as_str()
    }
    /// Model id.
    async fn model(&self) -> &str {
        &self.0.model
    }
    /// Whether it also prices longer ids.
    async fn match_rule(&self) -> MatchRuleGql {
        self.0.match_rule.into()
    }
    /// First instant it applies to.
    async fn effective_from(&self) -> Timestamp {
        self.0.effective_from.into()
    }
    /// First instant it no longer applies to.
    async fn effective_to(&self) -> Option<Timestamp> {
        self.0.effective_to.map(Into::into)
    }
    /// Where it came from.
    async fn source(&self) -> PriceSourceGql {
        self.0.source.into()
    }
    /// Standard-tier rates.
    async fn standard(&self) -> RateSetGql {
        self.0.card.standard.clone().into()
    }
    /// Batch rates, when the price has its own (otherwise half of standard).
    async fn batch(&self) -> Option<RateSetGql> {
        self.0.card.batch.clone().map(Into::into)
    }
    /// Priority rates, when the price has its own (otherwise standard).
    async fn priority(&self) -> Option<RateSetGql> {
        self.0.card.priority.clone().map(Into::into)
    }
    /// Flex rates, when the price has its own (otherwise standard).
    async fn flex(&self) -> Option<RateSetGql> {
        self.0.card.flex.clone().map(Into::into)
    }
    /// Above-threshold rates.
    async fn long_context(&self) -> Option<LongContextGql> {
        self.0.card.long_context.clone().map(|l| LongContextGql {
            threshold: l.threshold,
            rates: l.rates.into(),
        })
    }
    /// Per-unit rates by pricing variant (empty when no fee depends on one).
    async fn variants(&self) -> Vec<RateVariantGql> {
        variants_out(&self.0.card.variants)
    }
    /// `chat`, `reasoning`, `embedding` or `search`.
    async fn kind(&self) -> Option<&str> {
        self.0.kind.as_deref()
    }
    /// Capability tier (`frontier`, `strong`, `balanced`, `fast`, `embedding`).
    async fn tier(&self) -> Option<&str> {
        self.0.tier.as_deref()
    }
    /// The provider's pricing page.
    async fn source_url(&self) -> Option<&str> {
        self.0.source_url.as_deref()
    }
    /// Why the rates are what they are.
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
    /// Last change.
    async fn updated_at(&self) -> Timestamp {
        self.0.updated_at.into()
    }
}

/// A price to create or replace (natural key: provider, model, effectiveFrom).
#[derive(InputObject)]
pub struct PriceInput {
    /// Provider.
    pub provider: String,
    /// Model id.
    pub model: String,
    /// Default PREFIX.
    pub match_rule: Option<MatchRuleGql>,
    /// Default: the beginning of time (prices all history).
    pub effective_from: Option<Timestamp>,
    /// Exclusive end.
    pub effective_to: Option<Timestamp>,
    /// Standard-tier rates (input is required).
    pub standard: RateSetGql,
    /// Batch rates.
    pub batch: Option<RateSetGql>,
    /// Priority rates.
    pub priority: Option<RateSetGql>,
    /// Flex rates.
    pub flex: Option<RateSetGql>,
    /// Above-threshold rates.
    pub long_context: Option<LongContextGql>,
    /// Per-unit rates by pricing variant: an event naming a listed variant pays its
    /// rate; one naming another variant pays the standard rate of the unit (unpriced
    /// without one); one naming none is unpriced.
    pub variants: Option<Vec<RateVariantGql>>,
    /// Model kind.
    pub kind: Option<String>,
    /// Capability tier.
    pub tier: Option<String>,
    /// Pricing page.
    pub source_url: Option<String>,
    /// Note.
    pub note: Option<String>,
    /// Other ids of this model at these rates.
    pub aliases: Option<Vec<String>>,
}

/// Which prices to list.
#[derive(InputObject, Default)]
#[graphql(name = "PriceFilter")]
pub struct PriceFilterInput {
    /// Providers.
    pub providers: Option<Vec<String>>,
    /// Model ids containing this text.
    pub model: Option<String>,
    /// Sources.
    pub sources: Option<Vec<PriceSourceGql>>,
    /// Only prices in effect at this time.
    pub effective_at: Option<Timestamp>,
}

/// How many entries of a skipped kind.
#[derive(SimpleObject)]
pub struct SkipReason {
    /// Why they were skipped.
    pub reason: String,
    /// How many.
    pub count: i64,
}

/// What an import did.
#[derive(SimpleObject)]
pub struct ImportPricesPayload {
    /// New price rows.
    pub imported: i64,
    /// Rows whose rates changed.
    pub updated: i64,
    /// Rows that already had these rates.
    pub unchanged: i64,
    /// Entries that could not be used.
    pub skipped: i64,
    /// Why, grouped.
    pub skipped_reasons: Vec<SkipReason>,
}

fn parse_providers(
    names: Option<Vec<String>>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Vec<Provider> {
    names
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            Provider::parse(p).or_else(|| {
                errors.push(FieldError::new(
                    format!("{field}.{i}"),
                    "is not a provider name",
                ));
                None
            })
        })
        .collect()
}

/// Price queries.
#[derive(Default)]
pub struct PriceQuery;

#[Object]
impl PriceQuery {
    /// Prices, by provider, model and start.
    async fn prices(
        &self,
        ctx: &Context<'_>,
        filter: Option<PriceFilterInput>,
    ) -> async_graphql::Result<Vec<PriceGql>> {
        let state = ctx.state()?;
        ctx.principal().require(Scope::Read).gql()?;
        let f = filter.unwrap_or_default();
        let mut errors = vec![];
        let providers = parse_providers(f.providers, "filter.providers", &mut errors);
        if !errors.is_empty() {
            return Err(Error::InvalidInput(errors)).gql();
        }
        let filter = PriceFilter {
            providers,
            model_contains: f.model.filter(|m| !m.trim().is_empty()),
            sources: f
                .sources
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            effective_at: f.effective_at.map(Into::into),
        };
        Ok(price::list(&state.db, &filter)
            .await
            .gql()?
            .into_iter()
            .map(PriceGql)
            .collect())
    }

    /// The configured price sources (`AISPEND_PRICE_SOURCES`) and their last sync:
    /// when, the outcome, and why a document was refused or could not be read.
    async fn price_sources(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<SourceStateGql>> {
        let state = ctx.state()?;
        ctx.principal().require_global_admin().gql()?;
        Ok(state
            .price_sync
            .list()
            .await
            .gql()?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Prices added, changed and removed (by a sync, `upsertPrice` or
    /// `importPrices`), newest first.
    async fn price_changes(
        &self,
        ctx: &Context<'_>,
        filter: Option<PriceChangeFilterInput>,
        #[graphql(default = 100)] first: i64,
    ) -> async_graphql::Result<Vec<PriceChangeGql>> {
        let state = ctx.state()?;
        ctx.principal().require(Scope::Read).gql()?;
        let f = filter.unwrap_or_default();
        let mut errors = vec![];
        if !(0..=changes::MAX_CHANGES as i64).contains(&first) {
            errors.push(FieldError::new(
                "first",
                format!("must be between 0 and {}", changes::MAX_CHANGES),
            ));
        }
        let providers = parse_providers(f.providers, "filter.providers", &mut errors);
        if let (Some(from), Some(to)) = (f.from, f.to)
            && from > to
        {
            return Err(Error::InvalidDateRange(format!(
                "`from` ({}) is after `to` ({})",
                from.0.to_rfc3339(),
                to.0.to_rfc3339()
            )))
            .gql();
        }
        if !errors.is_empty() {
            return Err(Error::InvalidInput(errors)).gql();
        }
        let filter = ChangeFilter {
            providers,
            model_contains: f.model.filter(|m| !m.trim().is_empty()),
            sources: f
                .sources
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            kinds: f
                .kinds
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            origin: f.origin.filter(|o| !o.trim().is_empty()),
            from: f.from.map(Into::into),
            to: f.to.map(Into::into),
        };
        Ok(changes::list(&state.db, &filter, first as u64)
            .await
            .gql()?
            .into_iter()
            .map(PriceChangeGql)
            .collect())
    }

    /// One price.
    async fn price(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<PriceGql> {
        let state = ctx.state()?;
        ctx.principal().require(Scope::Read).gql()?;
        let id: PriceId = id
            .parse()
            .map_err(|_| Error::invalid("id", "is not a price id"))
            .gql()?;
        price::get(&state.db, id).await.gql().map(PriceGql)
    }
}

/// Price mutations.
#[derive(Default)]
pub struct PriceMutation;

#[Object]
impl PriceMutation {
    /// Creates or replaces a USER price (which wins over built-in and imported prices
    /// for the same model and time). Run `recomputeCosts` to re-price past events.
    async fn upsert_price(
        &self,
        ctx: &Context<'_>,
        input: PriceInput,
    ) -> async_graphql::Result<PriceGql> {
        let state = ctx.state()?;
        ctx.principal().require_global_admin().gql()?;
        let aliases = input.aliases.clone().unwrap_or_default();
        let variants = variants_in(input.variants.unwrap_or_default()).gql()?;
        let draft = RawPrice {
            provider: input.provider,
            model: input.model,
            match_rule: input.match_rule.map(Into::into),
            effective_from: input.effective_from.map(Into::into),
            effective_to: input.effective_to.map(Into::into),
            card: RateCard {
                standard: input.standard.into(),
                batch: input.batch.map(Into::into),
                priority: input.priority.map(Into::into),
                flex: input.flex.map(Into::into),
                long_context: input.long_context.map(|l| LongContext {
                    threshold: l.threshold,
                    rates: l.rates.into(),
                }),
                variants,
            },
            kind: input.kind,
            tier: input.tier,
            source_url: input.source_url,
            note: input.note,
        }
        .parse()
        .map_err(|e| under_argument(e, "input"))
        .gql()?;
        let report = price::upsert_all(&state.db, &[(draft.clone(), aliases)], PriceSource::User)
            .await
            .gql()?;
        tracing::info!(provider = %draft.provider, model = %draft.model, created = report.imported, "user price stored");
        state.prices.reload(&state.db).await.gql()?;
        // Events stored without a price get this one at once.
        state
            .ledger
            .reprice_unpriced(std::slice::from_ref(&draft.provider))
            .await
            .gql()?;
        let stored = price::list(
            &state.db,
            &PriceFilter {
                providers: vec![draft.provider.clone()],
                sources: vec![PriceSource::User],
                ..Default::default()
            },
        )
        .await
        .gql()?
        .into_iter()
        .find(|p| p.model == draft.model && p.effective_from == draft.effective_from)
        .ok_or_else(|| Error::internal("reading back a stored price", anyhow::anyhow!("not found")))
        .gql()?;
        Ok(PriceGql(stored))
    }

    /// Syncs the configured price sources now (as the daily job does): fetches each
    /// document, writes what changed as new price periods, and prices the events
    /// stored UNPRICED.
    async fn sync_price_sources(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<SyncPriceSourcesPayload> {
        let state = ctx.state()?;
        ctx.principal().require_global_admin().gql()?;
        let outcome = state.price_sync.run().await.gql()?;
        Ok(SyncPriceSourcesPayload {
            sources: outcome.sources.into_iter().map(Into::into).collect(),
            repriced: outcome.repriced as i64,
        })
    }

    /// Imports a price map (LiteLLM's `model_prices_and_context_window.json` or
    /// genai-prices' `data.json`) as IMPORT prices, effective from `effectiveFrom`
    /// (default: all history); events stored UNPRICED that it prices are priced.
    async fn import_prices(
        &self,
        ctx: &Context<'_>,
        format: PriceFormat,
        document: Json<serde_json::Value>,
        effective_from: Option<Timestamp>,
    ) -> async_graphql::Result<ImportPricesPayload> {
        let state = ctx.state()?;
        ctx.principal().require_global_admin().gql()?;
        let from = effective_from
            .map(Into::into)
            .unwrap_or(DateTime::UNIX_EPOCH);
        let report = match format {
            PriceFormat::Litellm => litellm::import(&state.db, &document.0, from).await,
            PriceFormat::GenaiPrices => {
                price::genai_prices::import(&state.db, &document.0, from).await
            }
        }
        .gql()?;
        state.prices.reload(&state.db).await.gql()?;
        state.ledger.reprice_unpriced(&[]).await.gql()?;
        Ok(ImportPricesPayload {
            imported: report.imported as i64,
            updated: report.updated as i64,
            unchanged: report.unchanged as i64,
            skipped: report.skipped_total() as i64,
            skipped_reasons: report
                .skipped
                .into_iter()
                .map(|(reason, count)| SkipReason {
                    reason,
                    count: count as i64,
                })
                .collect(),
        })
    }
}
