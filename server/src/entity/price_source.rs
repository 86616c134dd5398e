//! `price_sources`: a configured price source URL and the outcome of its last sync.

use sea_orm::entity::prelude::*;

/// One row of `price_sources`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "price_sources")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub url: String,
    pub format: String,
    pub status: String,
    pub error: Option<String>,
    pub last_sync_at: Option<i64>,
    pub last_attempt_at: Option<i64>,
    pub added: i64,
    pub changed: i64,
    pub removed: i64,
    pub unchanged: i64,
    pub skipped: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
