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
    /// The spend's low part, in `[0, 10^9)` nano-dollars (see `money::Wide`).
    pub spent_nanos: i64,
    /// The spend's high part, in dollars.
    pub spent_nanos_hi: i64,
    pub updated_at: i64,
}

impl Model {
    /// The spend.
    pub fn spent(&self) -> crate::domain::money::Usd {
        crate::domain::money::Usd::from_wide_nanos(crate::domain::money::Wide::join(
            self.spent_nanos_hi,
            self.spent_nanos,
        ))
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
