//! `alerts`: one row per fired alert; the unique index on (budget, period start,
//! threshold) is the only proof that an alert fired.

use sea_orm::entity::prelude::*;

/// One row of `alerts`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "alerts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub kind: String,
    pub budget_id: Option<Uuid>,
    pub budget_name: String,
    pub owner_project_id: Option<Uuid>,
    pub period_start: i64,
    pub period_end: Option<i64>,
    pub threshold: i32,
    pub spent_nanos: i64,
    pub amount_nanos: i64,
    pub summary: String,
    pub fired_at: i64,
    pub acknowledged_at: Option<i64>,
    pub delivery_status: String,
    pub dispatched_at: Option<i64>,
    pub delivered_at: Option<i64>,
    /// What makes an alert without a budget fire once (anomaly alerts).
    pub dedupe_key: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
