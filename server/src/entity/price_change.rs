//! `price_changes`: the append-only log of prices added, changed and removed.

use sea_orm::entity::prelude::*;

/// One row of `price_changes`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "price_changes")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub changed_at: i64,
    pub provider: String,
    pub model: String,
    pub change: String,
    pub source: String,
    pub origin: Option<String>,
    pub old_price_id: Option<i64>,
    pub new_price_id: Option<i64>,
    pub old_rates: Option<String>,
    pub new_rates: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
