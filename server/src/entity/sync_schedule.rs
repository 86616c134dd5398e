//! `sync_schedules`: how often each credential's reports are pulled, and how far back.

use sea_orm::entity::prelude::*;

/// One row of `sync_schedules`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sync_schedules")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub credential_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub kind: String,
    pub enabled: bool,
    pub every_secs: i64,
    pub lookback_secs: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
