//! Hourly rollups with every project together (issue 13), kept exact inside the ingest
//! and re-pricing transactions like the others (see `server/src/domain/rollup.rs`):
//!
//! - `usage_rollup_global_hours`: per UTC hour and provider. A trend in hours (or in
//!   days of a time zone whose midnight is not UTC's, such as Europe/Berlin) asked for
//!   no project read a row per project too from `usage_rollup_hours`: at ten million
//!   events over 90 days and 20 projects, 115,000 rows for 30 days; here 5,760.
//! - `usage_rollup_global_model_hours`: per UTC hour, provider and model, for the same
//!   questions by model (864,000 rows of `usage_rollup_model_hours` for 30 days at
//!   that size, 60 models; here 43,000).
//!
//! Both are filled exactly from those per-project tables (see `sql::summed_rollup`).

use crate::sql::create_summed_rollup_from;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_summed_rollup_from(
            manager,
            "hour",
            "hour",
            "usage_rollup_global_hours",
            &[("provider", "TEXT")],
            "usage_rollup_hours",
        )
        .await?;
        create_summed_rollup_from(
            manager,
            "hour",
            "hour",
            "usage_rollup_global_model_hours",
            &[("provider", "TEXT"), ("model", "TEXT")],
            "usage_rollup_model_hours",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "usage_rollup_global_model_hours",
            "usage_rollup_global_hours",
        ] {
            manager
                .get_connection()
                .execute_unprepared(&format!("DROP TABLE {table}"))
                .await?;
        }
        Ok(())
    }
}
