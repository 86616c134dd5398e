//! `usage_rollup_user_global_days`: per UTC day and end user, every project and
//! provider together (issue 13), kept exact inside the ingest and re-pricing
//! transactions like the others (see `server/src/domain/rollup.rs`). An operator's
//! breakdown by end user read a row per project and provider from
//! `usage_rollup_user_days` (at ten million events over 90 days, 20 projects, 8
//! providers and 200 users: 2.8 million rows; here 18,000).
//!
//! Filled from `usage_rollup_user_days`, exactly (see `sql::summed_rollup`).
//! End users are kept apart per project (`usage_rollup_values`), so the `' other'` row
//! of a day sums every project's long tail, and a question that reads it with events
//! reads raw events instead.

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
            "usage_rollup_user_global_days",
            &[("end_user", "TEXT")],
            "usage_rollup_user_days",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE usage_rollup_user_global_days")
            .await
            .map(|_| ())
    }
}
