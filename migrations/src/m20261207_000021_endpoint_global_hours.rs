//! An hourly endpoint rollup with every project together (issue 15), kept exact inside
//! the ingest and re-pricing transactions like the others (see
//! `server/src/domain/rollup.rs`):
//!
//! - `usage_rollup_endpoint_global_hours`: per UTC hour, provider and endpoint. The
//!   dashboard's overview stacks its trend by endpoint, one trend per endpoint; in a
//!   zone whose days do not start at a UTC midnight (Europe/Berlin) a daily trend is
//!   summed in hours, which only `usage_rollup_endpoint_hours` kept by endpoint, with a
//!   row per project: at ten million events over 90 days and 20 projects, about
//!   115,000 rows for one endpoint's month; here 5,760.
//!
//! Filled exactly from `usage_rollup_endpoint_hours` (see `sql::summed_rollup`).

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
            "usage_rollup_endpoint_global_hours",
            &[("provider", "TEXT"), ("endpoint", "TEXT")],
            "usage_rollup_endpoint_hours",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE usage_rollup_endpoint_global_hours")
            .await?;
        Ok(())
    }
}
