//! `alert_targets`: one destination of one alert and its delivery state.

use sea_orm::entity::prelude::*;

/// One row of `alert_targets`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "alert_targets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub alert_id: Uuid,
    /// `webhook` (the budget's own) or `channel:<id>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub target: String,
    pub status: String,
    pub delivered_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
