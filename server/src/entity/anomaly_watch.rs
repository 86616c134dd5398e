//! `anomaly_watches`: which anomalies raise alerts and where they go (see
//! `domain::anomaly_watch`).

use sea_orm::entity::prelude::*;

/// One row of `anomaly_watches`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "anomaly_watches")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    /// None: every project (a global watch).
    pub project_id: Option<Uuid>,
    /// Comma-separated `PROVIDER`, `MODEL`, `ENDPOINT`.
    pub subjects: String,
    /// A decimal in text.
    pub min_factor: String,
    pub min_excess_nanos: i64,
    pub baseline_days: i64,
    /// Comma-separated channel ids.
    pub channel_ids: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
