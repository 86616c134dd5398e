//! `subscription_costs`: fixed plans (seats, monthly or yearly), spread over their days.

use sea_orm::entity::prelude::*;

/// One row of `subscription_costs`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subscription_costs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub provider: String,
    pub plan: String,
    pub project_id: Option<Uuid>,
    /// Per seat and period.
    pub amount_nanos: i64,
    pub period: String,
    pub seats: i64,
    /// `YYYY-MM-DD`.
    pub starts_on: String,
    pub ends_on: Option<String>,
    pub note: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
