//! `usage_events`: the ledger of tracked usage, one row per recorded call (or batch of
//! calls to one model at one time).

use sea_orm::entity::prelude::*;

/// One row of `usage_events`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub project_id: Uuid,
    pub provider: String,
    pub model: String,
    pub endpoint: Option<String>,
    pub source: String,
    pub occurred_at: i64,
    pub received_at: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub cache_write_1h_tokens: i64,
    pub reasoning_tokens: i64,
    pub audio_input_tokens: i64,
    pub audio_output_tokens: i64,
    pub image_input_tokens: i64,
    pub image_output_tokens: i64,
    pub images_generated: i64,
    pub web_search_calls: i64,
    pub video_seconds: i64,
    pub requests: i64,
    pub service_tier: String,
    /// The pricing variant (search context size, image quality and size, video
    /// resolution), when the event named one.
    pub pricing_variant: Option<String>,
    pub latency_ms: Option<i64>,
    pub cost_nanos: Option<i64>,
    pub cost_source: String,
    pub price_id: Option<i64>,
    pub idempotency_key: Option<String>,
    pub end_user: Option<String>,
    /// JSON object, as text.
    pub metadata: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
