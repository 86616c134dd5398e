//! `notification_channels`: named alert destinations (see `domain::channel`).

use sea_orm::entity::prelude::*;

/// One row of `notification_channels`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notification_channels")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    pub url: Option<String>,
    /// Comma-separated addresses (EMAIL).
    pub emails: String,
    /// Sealed by `domain::channel`; never returned by the API.
    pub secret: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
