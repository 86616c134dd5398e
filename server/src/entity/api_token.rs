//! `api_tokens`: bearer tokens. Only a SHA-256 hash of the token is stored.

use sea_orm::entity::prelude::*;

/// One row of `api_tokens`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub project_id: Option<Uuid>,
    /// Comma-separated scope names (`INGEST,READ`).
    pub scopes: String,
    pub token_hash: String,
    /// The first characters of the token, to recognise it in a list.
    pub token_hint: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
