//! `model_aliases`: other names of a model (`chatgpt-4o-latest`, a deployment name).

use sea_orm::entity::prelude::*;

/// One row of `model_aliases`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "model_aliases")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub provider: String,
    pub alias: String,
    pub model: String,
    pub source: String,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
