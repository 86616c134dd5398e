//! `provider_reports`: what a provider's own API (or a person) reported.

use sea_orm::entity::prelude::*;

/// One row of `provider_reports`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "provider_reports")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub origin: String,
    pub credential_id: Option<Uuid>,
    pub project_id: Option<Uuid>,
    pub provider: String,
    pub kind: String,
    pub source: String,
    pub bucket_start: i64,
    pub bucket_end: i64,
    pub model: String,
    pub external_project: String,
    pub workspace: String,
    pub api_key: String,
    pub service_tier: String,
    pub line_item: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub cache_write_1h_tokens: i64,
    pub reasoning_tokens: i64,
    pub requests: i64,
    /// JSON list of `{unit, quantity}`.
    pub units: Option<String>,
    pub amount_nanos: Option<i64>,
    pub currency: Option<String>,
    pub note: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
