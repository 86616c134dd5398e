//! Usage events: the tracked half of the ledger. Applications record each LLM call;
//! aispend prices it at the time it happened and stores it exactly once.

pub mod ingest;
pub mod input;
pub mod normalize;
pub mod otlp;
pub mod query;
pub mod writer;

use crate::domain::error::{Error, Result};
use crate::domain::ids::{PriceId, ProjectId, UsageEventId};
use crate::domain::money::Usd;
use crate::domain::price::text_enum;
use crate::domain::price::variant::Variant;
use crate::domain::provider::Provider;
use crate::domain::time;
use crate::domain::tokens::{ServiceTier, TokenCounts};
use crate::entity::usage_event;
use chrono::{DateTime, Utc};
use std::fmt;
use std::str::FromStr;

/// How an event reached aispend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UsageSource {
    /// `recordUsage` / `POST /api/usage`.
    Api,
    /// OpenTelemetry.
    Otlp,
    /// A bulk import.
    Import,
}

/// Where an event's cost came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CostSource {
    /// Priced by aispend from a price row.
    Computed,
    /// Given by the provider (and so by the client) with the call.
    Reported,
    /// No price matched; the cost is unknown until `recomputeCosts`.
    Unpriced,
}

text_enum!(UsageSource { Api => "API", Otlp => "OTLP", Import => "IMPORT" });
text_enum!(CostSource { Computed => "COMPUTED", Reported => "REPORTED", Unpriced => "UNPRICED" });

/// A stored usage event.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageEvent {
    /// Id.
    pub id: UsageEventId,
    /// Owning project.
    pub project: ProjectId,
    /// Provider.
    pub provider: Provider,
    /// Model id as recorded.
    pub model: String,
    /// The application feature that made the call.
    pub endpoint: Option<String>,
    /// How it arrived.
    pub source: UsageSource,
    /// When the call happened.
    pub occurred_at: DateTime<Utc>,
    /// When aispend stored it.
    pub received_at: DateTime<Utc>,
    /// Token classes.
    pub tokens: TokenCounts,
    /// Number of requests the event stands for.
    pub requests: i64,
    /// Service tier.
    pub service_tier: ServiceTier,
    /// The pricing variant, when the event named one.
    pub variant: Option<Variant>,
    /// Latency, when reported.
    pub latency_ms: Option<i64>,
    /// Cost, unless unpriced.
    pub cost: Option<Usd>,
    /// Where the cost came from.
    pub cost_source: CostSource,
    /// The price row used, when computed.
    pub price_id: Option<PriceId>,
    /// The client's idempotency key.
    pub idempotency_key: Option<String>,
    /// The application's end-user tag.
    pub user: Option<String>,
    /// Free-form JSON object.
    pub metadata: Option<serde_json::Value>,
}

fn corrupt(what: &str, e: impl fmt::Display) -> Error {
    Error::internal(
        "decoding a stored usage event",
        anyhow::anyhow!("{what}: {e}"),
    )
}

impl TryFrom<usage_event::Model> for UsageEvent {
    type Error = Error;
    fn try_from(m: usage_event::Model) -> Result<Self> {
        Ok(UsageEvent {
            id: UsageEventId(m.id),
            project: ProjectId(m.project_id),
            provider: Provider::parse(&m.provider)
                .ok_or_else(|| corrupt("provider", &m.provider))?,
            model: m.model,
            endpoint: m.endpoint,
            source: m.source.parse().map_err(|e| corrupt("source", e))?,
            occurred_at: time::from_micros(m.occurred_at),
            received_at: time::from_micros(m.received_at),
            tokens: TokenCounts {
                input: m.input_tokens,
                output: m.output_tokens,
                cache_read: m.cache_read_tokens,
                cache_write: m.cache_write_tokens,
                cache_write_1h: m.cache_write_1h_tokens,
                reasoning: m.reasoning_tokens,
                audio_input: m.audio_input_tokens,
                audio_output: m.audio_output_tokens,
                image_input: m.image_input_tokens,
                image_output: m.image_output_tokens,
                images: m.images_generated,
                web_searches: m.web_search_calls,
                video_seconds: m.video_seconds,
            },
            requests: m.requests,
            service_tier: ServiceTier::from_str(&m.service_tier)
                .map_err(|e| corrupt("service tier", e))?,
            variant: m
                .pricing_variant
                .as_deref()
                .map(Variant::parse)
                .transpose()
                .map_err(|e| corrupt("pricing variant", e))?,
            latency_ms: m.latency_ms,
            cost: m.cost_nanos.map(Usd::from_nanos),
            cost_source: m
                .cost_source
                .parse()
                .map_err(|e| corrupt("cost source", e))?,
            price_id: m.price_id.map(PriceId),
            idempotency_key: m.idempotency_key,
            user: m.end_user,
            metadata: m
                .metadata
                .map(|s| serde_json::from_str(&s))
                .transpose()
                .map_err(|e| corrupt("metadata", e))?,
        })
    }
}
