//! `budgets`: a spending limit over a slice of usage (see `domain::budget`).

use sea_orm::entity::prelude::*;

/// One row of `budgets`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "budgets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    /// The project when the scope names exactly one (what a project-bound token sees).
    pub owner_project_id: Option<Uuid>,
    /// JSON: `{"projects": [...], "providers": [...], ...}`.
    pub scope: String,
    pub amount_nanos: i64,
    pub period: String,
    pub timezone: String,
    /// Comma-separated percentages, ascending.
    pub thresholds: String,
    pub enforce: bool,
    pub webhook_url: Option<String>,
    /// Sealed by `domain::budget::secret`; never returned by the API.
    pub webhook_secret: Option<String>,
    /// Comma-separated notification channel ids.
    pub channel_ids: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
