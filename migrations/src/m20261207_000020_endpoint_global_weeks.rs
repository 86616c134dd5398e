//! A weekly endpoint rollup with every project together (issue 13), kept exact inside
//! the ingest and re-pricing transactions like the others (see
//! `server/src/domain/rollup.rs`):
//!
//! - `usage_rollup_endpoint_global_weeks`: per week (seven UTC days from the Unix epoch,
//!   a Thursday), provider, model and endpoint. Recommendations and breakdowns by
//!   endpoint across projects read 2,400 rows a day from
//!   `usage_rollup_endpoint_global_days` at ten million events (60 models × 40
//!   endpoints): 72,000 for 30 days. Whole weeks read a seventh of that, and the days
//!   at the edges the rest.
//!
//! Filled exactly from `usage_rollup_endpoint_global_days` (see `sql::summed_rollup`).
//! A week starts at the day rounded down to a multiple of seven days, also before
//! 1970 (the server's `div_euclid`).

use crate::sql::create_summed_rollup_from;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

const WEEK: i64 = 7 * 86_400_000_000;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_summed_rollup_from(
            manager,
            "week",
            &format!("day - ((day % {WEEK}) + {WEEK}) % {WEEK}"),
            "usage_rollup_endpoint_global_weeks",
            &[
                ("provider", "TEXT"),
                ("model", "TEXT"),
                ("endpoint", "TEXT"),
            ],
            "usage_rollup_endpoint_global_days",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE usage_rollup_endpoint_global_weeks")
            .await?;
        Ok(())
    }
}
