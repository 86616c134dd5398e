//! `budget_periods`: the exact spend of one budget in one period.

use sea_orm::entity::prelude::*;

/// One row of `budget_periods`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "budget_periods")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub budget_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub period_start: i64,
    pub period_end: Option<i64>,
    pub spent_nanos: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
