//! Attribute rollups with every project together (issue 13), kept exact inside the
//! ingest and re-pricing transactions like the others (see
//! `server/src/domain/rollup.rs`):
//!
//! - `usage_rollup_endpoint_global_days`: per UTC day, provider, model and endpoint.
//!   Recommendations, anomalies and an operator's questions by endpoint read a row per
//!   project as well from `usage_rollup_endpoint_days` (at ten million events over 90
//!   days and 20 projects, 1.3 million rows for 30 days; here 72,000).
//! - `usage_rollup_user_global_days`: per UTC day and end user, every provider too. An
//!   operator's breakdown by end user read a row per project and provider from
//!   `usage_rollup_user_days` (2.8 million rows at that size; here 18,000).
//!
//! Both are filled exactly from those per-project tables (see `sql::summed_rollup`).
//! Endpoints and end users are kept apart per project (`usage_rollup_values`), so a
//! day's `' other'` row sums every project's long tail, and a question that reads it
//! with events reads raw events instead, as for the per-project rollups.

use crate::sql::create_summed_rollup;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_summed_rollup(
            manager,
            "usage_rollup_endpoint_global_days",
            &[
                ("provider", "TEXT"),
                ("model", "TEXT"),
                ("endpoint", "TEXT"),
            ],
            "usage_rollup_endpoint_days",
        )
        .await?;
        create_summed_rollup(
            manager,
            "usage_rollup_user_global_days",
            &[("end_user", "TEXT")],
            "usage_rollup_user_days",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "usage_rollup_user_global_days",
            "usage_rollup_endpoint_global_days",
        ] {
            manager
                .get_connection()
                .execute_unprepared(&format!("DROP TABLE {table}"))
                .await?;
        }
        Ok(())
    }
}
