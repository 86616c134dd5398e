//! Usage events over GraphQL: recording, reading, re-pricing.

use super::context::ContextExt;
use super::error::{GqlResult, under_argument};
use super::price::{PriceGql, PriceLoader};
use super::scalars::Decimal;
use super::scalars::Timestamp;
use crate::domain::ids::UsageEventId;
use crate::domain::tokens::ServiceTier;
use crate::domain::usage::ingest::Recorded;
use crate::domain::usage::input::RawUsage;
use crate::domain::usage::query::{self, RawUsageFilter, UsageFilter, UsageOrder};
use crate::domain::usage::{CostSource, UsageEvent, UsageSource};
use crate::domain::{Error, money::Usd};
use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};

/// The service tier a request ran on.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "ServiceTier")]
pub enum ServiceTierGql {
    /// The default tier.
    Standard,
    /// The asynchronous Batch API.
    Batch,
    /// Priority processing.
    Priority,
    /// Flex processing.
    Flex,
}

impl From<ServiceTierGql> for ServiceTier {
    fn from(t: ServiceTierGql) -> Self {
        match t {
            ServiceTierGql::Standard => ServiceTier::Standard,
            ServiceTierGql::Batch => ServiceTier::Batch,
            ServiceTierGql::Priority => ServiceTier::Priority,
            ServiceTierGql::Flex => ServiceTier::Flex,
        }
    }
}

impl From<ServiceTier> for ServiceTierGql {
    fn from(t: ServiceTier) -> Self {
        match t {
            ServiceTier::Standard => ServiceTierGql::Standard,
            ServiceTier::Batch => ServiceTierGql::Batch,
            ServiceTier::Priority => ServiceTierGql::Priority,
            ServiceTier::Flex => ServiceTierGql::Flex,
        }
    }
}

/// How an event reached aispend.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "UsageSource", remote = "UsageSource")]
pub enum UsageSourceGql {
    /// Recorded through the API.
    Api,
    /// Received over OpenTelemetry.
    Otlp,
    /// Bulk-imported.
    Import,
}

/// Where an event's cost came from.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "CostSource", remote = "CostSource")]
pub enum CostSourceGql {
    /// Priced by aispend.
    Computed,
    /// Reported by the provider with the call.
    Reported,
    /// No price matched yet.
    Unpriced,
}

/// One LLM call (or several to one model at one time), as recorded.
#[derive(InputObject, Default)]
pub struct UsageInput {
    /// The project; optional for a token bound to a project.
    pub project_id: Option<ID>,
    /// Provider (`openai`, `anthropic`, ...); optional when the model is prefixed
    /// (`openai/gpt-4o`).
    pub provider: Option<String>,
    /// Model id as the provider named it.
    pub model: String,
    /// Input tokens billed at the base rate (excluding cache reads and writes).
    pub input_tokens: Option<i64>,
    /// Output tokens, reasoning included.
    pub output_tokens: Option<i64>,
    /// Input tokens read from the prompt cache.
    pub cache_read_tokens: Option<i64>,
    /// Input tokens written to a 5-minute cache.
    pub cache_write_tokens: Option<i64>,
    /// Input tokens written to a 1-hour cache.
    #[graphql(name = "cacheWrite1hTokens")]
    pub cache_write_1h_tokens: Option<i64>,
    /// The reasoning part of `outputTokens`.
    pub reasoning_tokens: Option<i64>,
    /// Audio input tokens (not part of `inputTokens`); priced only by an audio input
    /// rate: under a price without one the event is `UNPRICED`.
    pub audio_input_tokens: Option<i64>,
    /// Audio output tokens (not part of `outputTokens`); priced only by an audio
    /// output rate.
    pub audio_output_tokens: Option<i64>,
    /// Image input tokens (not part of `inputTokens`); billed at the input rate unless
    /// the price has an image input rate.
    pub image_input_tokens: Option<i64>,
    /// Image output tokens (not part of `outputTokens`); priced only by an image
    /// output rate.
    pub image_output_tokens: Option<i64>,
    /// Images generated, priced per image.
    pub images_generated: Option<i64>,
    /// Web-search calls (Anthropic's `server_tool_use.web_search_requests`), priced per
    /// call.
    pub web_search_calls: Option<i64>,
    /// Seconds of video generated, priced per second.
    pub video_seconds: Option<i64>,
    /// Requests this event stands for (default 1).
    pub requests: Option<i64>,
    /// The application feature that made the call.
    pub endpoint: Option<String>,
    /// Service tier (default STANDARD).
    pub service_tier: Option<ServiceTierGql>,
    /// What a per-unit fee of this call depends on, when the price lists fees by
    /// variant: Perplexity's search context size (`low`, `medium`, `high`; read from
    /// the `usage` object's `search_context_size` too), a generated image's quality and
    /// size (`hd/1024x1024`, `1024x1024`), a video's resolution (`720p`, `4k`). Lower
    /// case; `1024-x-1024` is read as `1024x1024`. Under a price with fees by variant,
    /// an event that names none is `UNPRICED` (`UNIT_WITHOUT_RATE`).
    pub pricing_variant: Option<String>,
    /// Latency in milliseconds.
    pub latency_ms: Option<i64>,
    /// When the call happened (default: now; at most 24 hours ahead).
    pub occurred_at: Option<Timestamp>,
    /// A key that makes retries safe: the same key in the same project is stored once.
    pub idempotency_key: Option<String>,
    /// A cost the provider returned with the call; it wins over aispend's price.
    pub reported_cost_usd: Option<Decimal>,
    /// Your end-user's id, for per-user analytics.
    pub user: Option<String>,
    /// A JSON object stored with the event.
    pub metadata: Option<Json<serde_json::Value>>,
    /// The provider's raw `usage` object (OpenAI, Anthropic, Gemini `usageMetadata`,
    /// Perplexity), instead of the token fields.
    pub usage: Option<Json<serde_json::Value>>,
}

impl From<UsageInput> for RawUsage {
    fn from(i: UsageInput) -> Self {
        RawUsage {
            project_id: i.project_id.map(|id| id.0),
            provider: i.provider,
            model: Some(i.model),
            input_tokens: i.input_tokens,
            output_tokens: i.output_tokens,
            cache_read_tokens: i.cache_read_tokens,
            cache_write_tokens: i.cache_write_tokens,
            cache_write_1h_tokens: i.cache_write_1h_tokens,
            reasoning_tokens: i.reasoning_tokens,
            audio_input_tokens: i.audio_input_tokens,
            audio_output_tokens: i.audio_output_tokens,
            image_input_tokens: i.image_input_tokens,
            image_output_tokens: i.image_output_tokens,
            images_generated: i.images_generated,
            web_search_calls: i.web_search_calls,
            video_seconds: i.video_seconds,
            requests: i.requests,
            endpoint: i.endpoint,
            service_tier: i
                .service_tier
                .map(|t| ServiceTier::from(t).as_str().to_owned()),
            pricing_variant: i.pricing_variant,
            latency_ms: i.latency_ms,
            occurred_at: i.occurred_at.map(Into::into),
            idempotency_key: i.idempotency_key,
            reported_cost_usd: i.reported_cost_usd.map(Into::into),
            user: i.user,
            metadata: i.metadata.map(|j| j.0),
            usage: i.usage.map(|j| j.0),
        }
    }
}

/// A stored usage event.
pub struct UsageEventGql(pub UsageEvent);

#[Object(name = "UsageEvent")]
impl UsageEventGql {
    /// Id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Owning project.
    async fn project_id(&self) -> ID {
        ID(self.0.project.to_string())
    }
    /// Provider (normalised).
    async fn provider(&self) -> &str {
        self.0.provider.as_str()
    }
    /// Model id as recorded.
    async fn model(&self) -> &str {
        &self.0.model
    }
    /// Application feature.
    async fn endpoint(&self) -> Option<&str> {
        self.0.endpoint.as_deref()
    }
    /// How it arrived.
    async fn source(&self) -> UsageSourceGql {
        self.0.source.into()
    }
    /// When the call happened.
    async fn occurred_at(&self) -> Timestamp {
        self.0.occurred_at.into()
    }
    /// When aispend stored it.
    async fn received_at(&self) -> Timestamp {
        self.0.received_at.into()
    }
    /// Input tokens billed at the base rate.
    async fn input_tokens(&self) -> i64 {
        self.0.tokens.input
    }
    /// Output tokens, reasoning included.
    async fn output_tokens(&self) -> i64 {
        self.0.tokens.output
    }
    /// Cache reads.
    async fn cache_read_tokens(&self) -> i64 {
        self.0.tokens.cache_read
    }
    /// 5-minute cache writes.
    async fn cache_write_tokens(&self) -> i64 {
        self.0.tokens.cache_write
    }
    /// 1-hour cache writes.
    #[graphql(name = "cacheWrite1hTokens")]
    async fn cache_write_1h_tokens(&self) -> i64 {
        self.0.tokens.cache_write_1h
    }
    /// The reasoning part of output.
    async fn reasoning_tokens(&self) -> i64 {
        self.0.tokens.reasoning
    }
    /// Audio input tokens.
    async fn audio_input_tokens(&self) -> i64 {
        self.0.tokens.audio_input
    }
    /// Audio output tokens.
    async fn audio_output_tokens(&self) -> i64 {
        self.0.tokens.audio_output
    }
    /// Image input tokens.
    async fn image_input_tokens(&self) -> i64 {
        self.0.tokens.image_input
    }
    /// Image output tokens.
    async fn image_output_tokens(&self) -> i64 {
        self.0.tokens.image_output
    }
    /// Images generated.
    async fn images_generated(&self) -> i64 {
        self.0.tokens.images
    }
    /// Web-search calls.
    async fn web_search_calls(&self) -> i64 {
        self.0.tokens.web_searches
    }
    /// Seconds of video generated.
    async fn video_seconds(&self) -> i64 {
        self.0.tokens.video_seconds
    }
    /// Every token (text, audio and image), reasoning counted once.
    async fn total_tokens(&self) -> i64 {
        self.0.tokens.total()
    }
    /// Requests represented.
    async fn requests(&self) -> i64 {
        self.0.requests
    }
    /// Service tier.
    async fn service_tier(&self) -> ServiceTierGql {
        self.0.service_tier.into()
    }
    /// The pricing variant the event named (search context size, image quality and
    /// size, video resolution), in its canonical spelling.
    async fn pricing_variant(&self) -> Option<&str> {
        self.0.variant.as_ref().map(|v| v.as_str())
    }
    /// Latency in milliseconds.
    async fn latency_ms(&self) -> Option<i64> {
        self.0.latency_ms
    }
    /// Cost in USD (exact decimal string); null when unpriced.
    async fn cost_usd(&self) -> Option<Decimal> {
        self.0.cost.map(Usd::to_decimal).map(Into::into)
    }
    /// Where the cost came from.
    async fn cost_source(&self) -> CostSourceGql {
        self.0.cost_source.into()
    }
    /// Why the event has no price (null unless `costSource` is `UNPRICED`).
    async fn unpriced_reason(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<super::price::UnpricedReasonGql>> {
        if self.0.cost_source != CostSource::Unpriced {
            return Ok(None);
        }
        let state = ctx.state()?;
        let book = state.prices.book();
        Ok(Some(
            crate::domain::price::unpriced::reason(&book, &self.0).into(),
        ))
    }
    /// The price row used, when computed.
    async fn price_id(&self) -> Option<ID> {
        self.0.price_id.map(|p| ID(p.to_string()))
    }
    /// The price row used, when computed.
    async fn price(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<PriceGql>> {
        let Some(id) = self.0.price_id else {
            return Ok(None);
        };
        let loader = ctx.data::<DataLoader<PriceLoader>>()?;
        Ok(loader.load_one(id).await?.map(PriceGql))
    }
    /// The client's idempotency key.
    async fn idempotency_key(&self) -> Option<&str> {
        self.0.idempotency_key.as_deref()
    }
    /// End-user tag.
    async fn user(&self) -> Option<&str> {
        self.0.user.as_deref()
    }
    /// The JSON object stored with the event.
    async fn metadata(&self) -> Option<Json<serde_json::Value>> {
        self.0.metadata.clone().map(Json)
    }
}

/// The result of `recordUsage`.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct RecordUsagePayload {
    /// The stored event (for a duplicate: the one stored first).
    pub event: UsageEventGql,
    /// True when the idempotency key had been seen and nothing was stored.
    pub duplicate: bool,
}

impl From<Recorded> for RecordUsagePayload {
    fn from(r: Recorded) -> Self {
        RecordUsagePayload {
            event: UsageEventGql(r.event),
            duplicate: r.duplicate,
        }
    }
}

/// The result of `recordUsageBatch`.
pub struct RecordUsageBatchPayload(Vec<Recorded>);

#[Object]
impl RecordUsageBatchPayload {
    /// Events stored by this call.
    async fn accepted(&self) -> i64 {
        self.0.iter().filter(|r| !r.duplicate).count() as i64
    }
    /// Inputs whose idempotency key had been seen (nothing stored for them).
    async fn duplicates(&self) -> i64 {
        self.0.iter().filter(|r| r.duplicate).count() as i64
    }
    /// Stored events this call added that no price matched.
    async fn unpriced(&self) -> i64 {
        self.0
            .iter()
            .filter(|r| !r.duplicate && r.event.cost_source == CostSource::Unpriced)
            .count() as i64
    }
    /// Total cost of the events this call stored (duplicates excluded).
    async fn total_cost_usd(&self) -> Decimal {
        self.0
            .iter()
            .filter(|r| !r.duplicate)
            .filter_map(|r| r.event.cost)
            .map(Usd::to_decimal)
            .sum::<rust_decimal::Decimal>()
            .into()
    }
    /// The event for each input, in input order.
    async fn events(&self) -> Vec<UsageEventGql> {
        self.0
            .iter()
            .map(|r| UsageEventGql(r.event.clone()))
            .collect()
    }
    /// Each input's event and whether it was a duplicate, in input order.
    async fn results(&self) -> Vec<RecordUsagePayload> {
        self.0.iter().cloned().map(Into::into).collect()
    }
    /// The budgets this batch's events count toward, after they were recorded
    /// (current period). Advisory: the events are recorded either way.
    async fn budget_check(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<super::budget::BudgetCheckGql> {
        let events: Vec<&UsageEvent> = self.0.iter().map(|r| &r.event).collect();
        super::budget::touched(ctx, &events).await
    }
}

/// Which usage to look at. Empty or absent lists mean "any"; `from` is inclusive,
/// `to` exclusive.
#[derive(InputObject, Default, Clone)]
#[graphql(name = "UsageFilter")]
pub struct UsageFilterInput {
    /// Projects.
    pub projects: Option<Vec<ID>>,
    /// Providers.
    pub providers: Option<Vec<String>>,
    /// Models, exactly as recorded.
    pub models: Option<Vec<String>>,
    /// Endpoints.
    pub endpoints: Option<Vec<String>>,
    /// Sources.
    pub sources: Option<Vec<UsageSourceGql>>,
    /// End-user tags.
    pub users: Option<Vec<String>>,
    /// Start (inclusive).
    pub from: Option<Timestamp>,
    /// End (exclusive).
    pub to: Option<Timestamp>,
}

impl UsageFilterInput {
    /// Parses into the domain filter; errors name the `filter` argument.
    pub fn parse(self) -> Result<UsageFilter, Error> {
        RawUsageFilter {
            projects: self
                .projects
                .map(|v| v.into_iter().map(|id| id.0).collect()),
            providers: self.providers,
            models: self.models,
            endpoints: self.endpoints,
            sources: self
                .sources
                .map(|v| v.into_iter().map(Into::into).collect()),
            users: self.users,
            from: self.from.map(Into::into),
            to: self.to.map(Into::into),
        }
        .parse()
        .map_err(|e| under_argument(e, "filter"))
    }
}

/// Sort order of `usageEvents`.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
#[graphql(name = "UsageOrder", remote = "UsageOrder")]
pub enum UsageOrderGql {
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

/// Relay page information.
#[derive(SimpleObject)]
pub struct PageInfo {
    /// More events follow `endCursor`.
    pub has_next_page: bool,
    /// Events precede this page.
    pub has_previous_page: bool,
    /// Cursor of the first edge.
    pub start_cursor: Option<String>,
    /// Cursor of the last edge; pass it as `after` for the next page.
    pub end_cursor: Option<String>,
}

/// One event and its cursor.
#[derive(SimpleObject)]
pub struct UsageEventEdge {
    /// Opaque, stable cursor.
    pub cursor: String,
    /// The event.
    pub node: UsageEventGql,
}

/// A page of usage events.
#[derive(SimpleObject)]
pub struct UsageEventConnection {
    /// The events.
    pub edges: Vec<UsageEventEdge>,
    /// Page information.
    pub page_info: PageInfo,
    /// Events matching the filter (computed only when selected).
    pub total_count: Option<i64>,
}

/// Usage queries.
#[derive(Default)]
pub struct UsageQuery;

#[Object]
impl UsageQuery {
    /// One usage event.
    async fn usage_event(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<UsageEventGql> {
        let state = ctx.state()?;
        let id: UsageEventId = id
            .parse()
            .map_err(|_| Error::invalid("id", "is not a usage event id"))
            .gql()?;
        query::get(&state.db, ctx.principal(), id)
            .await
            .gql()
            .map(UsageEventGql)
    }

    /// Usage events, newest first by default; at most 1,000 per page.
    async fn usage_events(
        &self,
        ctx: &Context<'_>,
        filter: Option<UsageFilterInput>,
        #[graphql(default = 100)] first: i64,
        after: Option<String>,
        #[graphql(default)] order_by: UsageOrderGql,
    ) -> async_graphql::Result<UsageEventConnection> {
        let state = ctx.state()?;
        let filter = filter.unwrap_or_default().parse().gql()?;
        let want_total = ctx.look_ahead().field("totalCount").exists();
        let page = query::page(
            &state.db,
            ctx.principal(),
            filter,
            Some(first),
            after.as_deref(),
            order_by.into(),
            want_total,
        )
        .await
        .gql()?;
        let edges: Vec<UsageEventEdge> = page
            .events
            .into_iter()
            .map(|(e, c)| UsageEventEdge {
                cursor: c.encode(),
                node: UsageEventGql(e),
            })
            .collect();
        Ok(UsageEventConnection {
            page_info: PageInfo {
                has_next_page: page.has_next,
                has_previous_page: page.has_previous,
                start_cursor: edges.first().map(|e| e.cursor.clone()),
                end_cursor: edges.last().map(|e| e.cursor.clone()),
            },
            edges,
            total_count: page.total.map(|t| t as i64),
        })
    }
}

/// One problem of an input `importUsage` did not record.
#[derive(SimpleObject)]
pub struct ImportRejection {
    /// The input's position in `inputs` (0-based).
    pub index: i64,
    /// The field at fault, relative to the input (e.g. `inputTokens`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// The result of `importUsage`.
#[derive(SimpleObject)]
pub struct ImportUsagePayload {
    /// Events stored by this call.
    pub imported: i64,
    /// Inputs whose idempotency key had been seen (nothing stored for them).
    pub duplicates: i64,
    /// Every problem of every input not recorded, in input order.
    pub rejected: Vec<ImportRejection>,
}

/// Usage mutations.
#[derive(Default)]
pub struct UsageMutation;

#[Object]
impl UsageMutation {
    /// Records one LLM call and returns it priced. Retrying with the same
    /// `idempotencyKey` returns the stored event with `duplicate: true`.
    async fn record_usage(
        &self,
        ctx: &Context<'_>,
        input: UsageInput,
    ) -> async_graphql::Result<RecordUsagePayload> {
        let state = ctx.state()?;
        let started = std::time::Instant::now();
        let result = state
            .ledger
            .record(
                ctx.principal(),
                vec![input.into()],
                "input",
                false,
                UsageSource::Api,
            )
            .await;
        state.metrics.ingest_latency(
            "recordUsage",
            crate::metrics::outcome(&result),
            started.elapsed(),
        );
        let mut recorded = result.gql()?;
        recorded
            .pop()
            .map(Into::into)
            .ok_or_else(|| {
                Error::internal(
                    "recording usage",
                    anyhow::anyhow!("the writer returned no event"),
                )
            })
            .gql()
    }

    /// Records up to 10,000 events in one transaction. The batch is validated whole
    /// first: one bad input rejects it all and nothing is written.
    async fn record_usage_batch(
        &self,
        ctx: &Context<'_>,
        inputs: Vec<UsageInput>,
    ) -> async_graphql::Result<RecordUsageBatchPayload> {
        let state = ctx.state()?;
        let raws = inputs.into_iter().map(Into::into).collect();
        let started = std::time::Instant::now();
        let result = state
            .ledger
            .record(ctx.principal(), raws, "inputs", true, UsageSource::Api)
            .await;
        state.metrics.ingest_latency(
            "recordUsageBatch",
            crate::metrics::outcome(&result),
            started.elapsed(),
        );
        let recorded = result.gql()?;
        Ok(RecordUsageBatchPayload(recorded))
    }

    /// Imports up to 10,000 events (source `IMPORT`, e.g. from `aispend import`):
    /// unlike `recordUsageBatch`, a bad input is reported and skipped while the others
    /// are stored. Inputs should carry idempotency keys, so re-running an import adds
    /// nothing. A project that does not exist or may not be written fails the call.
    async fn import_usage(
        &self,
        ctx: &Context<'_>,
        inputs: Vec<UsageInput>,
    ) -> async_graphql::Result<ImportUsagePayload> {
        let state = ctx.state()?;
        let raws = inputs.into_iter().map(Into::into).collect();
        let started = std::time::Instant::now();
        let result = state
            .ledger
            .record_valid(ctx.principal(), raws, UsageSource::Import)
            .await;
        state.metrics.ingest_latency(
            "importUsage",
            crate::metrics::outcome(&result),
            started.elapsed(),
        );
        let result = result.gql()?;
        Ok(ImportUsagePayload {
            imported: result.stored() as i64,
            duplicates: result.duplicates() as i64,
            rejected: result
                .rejected
                .into_iter()
                .flat_map(|r| {
                    r.errors.into_iter().map(move |e| ImportRejection {
                        index: r.index as i64,
                        field: e.field,
                        message: e.message,
                    })
                })
                .collect(),
        })
    }

    /// Re-prices the events matching the filter with the current prices (events with a
    /// provider-reported cost keep it); returns how many events changed.
    async fn recompute_costs(
        &self,
        ctx: &Context<'_>,
        filter: Option<UsageFilterInput>,
    ) -> async_graphql::Result<i64> {
        let state = ctx.state()?;
        let filter = filter.unwrap_or_default().parse().gql()?;
        let changed = state
            .ledger
            .recompute_costs(ctx.principal(), filter)
            .await
            .gql()?;
        Ok(changed as i64)
    }
}
