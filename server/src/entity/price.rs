//! `prices`: one rate card of one model for one period, from one source.

use sea_orm::entity::prelude::*;

/// One row of `prices`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "prices")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub provider: String,
    pub model: String,
    pub match_rule: String,
    pub effective_from: i64,
    pub effective_to: Option<i64>,
    pub source: String,
    /// The rate card as JSON with decimal strings.
    pub rates: String,
    pub kind: Option<String>,
    pub tier: Option<String>,
    pub source_url: Option<String>,
    pub note: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
