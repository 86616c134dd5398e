//! Room on every rollup and sketch page for its rows' next versions (PostgreSQL only):
//! `fillfactor = 70` on the 17 rollups and 10 latency sketches.
//!
//! The folder updates the same rows again and again: every fold adds to the current
//! hour's, day's and week's rows of each project, model, endpoint and end user. With
//! PostgreSQL's default `fillfactor` of 100 an insert fills a page, so an update finds
//! no room for the row's new version on its page: the version goes to another page and
//! the primary key gets another entry (not a heap-only tuple), and the table and its
//! index grow with dead versions until vacuum catches up. Measured in psql on a copy of
//! `usage_rollup_user_hours` (8,000 rows upserted ten times, as ten folds of the same
//! hour would): with 100 each upsert took longer than the last, 80 → 168 ms; with 70
//! they stayed at 76–98 ms and 83 % of the updates were heap-only; with 50 every one
//! was, at 72 ms, but the pages of past hours and days, which no fold updates again,
//! would stay half empty and every analytic would read twice as many of them. 70 is
//! the middle: past pages are 70 % full.
//!
//! The setting applies to pages filled from now on; pages already full stay full until
//! a `VACUUM FULL` rewrites them (not done here: it locks the table). SQLite has no
//! such setting and is unchanged. A rollup or sketch table created by a later migration
//! should be created `WITH (fillfactor = 70)` on PostgreSQL.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The rollups and sketches the folder upserts, as of this migration.
const TABLES: [&str; 27] = [
    "usage_rollup_days",
    "usage_rollup_provider_days",
    "usage_rollup_global_days",
    "usage_rollup_hours",
    "usage_rollup_model_hours",
    "usage_rollup_endpoint_days",
    "usage_rollup_endpoint_hours",
    "usage_rollup_user_days",
    "usage_rollup_user_hours",
    "usage_rollup_source_days",
    "usage_rollup_source_hours",
    "usage_rollup_endpoint_global_days",
    "usage_rollup_user_global_days",
    "usage_rollup_global_hours",
    "usage_rollup_global_model_hours",
    "usage_rollup_endpoint_global_weeks",
    "usage_rollup_endpoint_global_hours",
    "usage_latency_day_chunks",
    "usage_latency_week_chunks",
    "usage_latency_hour_chunks",
    "usage_latency_global_day_chunks",
    "usage_latency_endpoint_day_chunks",
    "usage_latency_endpoint_global_day_chunks",
    "usage_latency_user_day_chunks",
    "usage_latency_user_global_day_chunks",
    "usage_latency_source_day_chunks",
    "usage_latency_source_global_day_chunks",
];

/// The `fillfactor` of every table in [`TABLES`].
pub const FILLFACTOR: u8 = 70;

async fn set_all(manager: &SchemaManager<'_>, option: &str) -> Result<(), DbErr> {
    let db = manager.get_connection();
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    for table in TABLES {
        db.execute_unprepared(&format!("ALTER TABLE {table} {option}"))
            .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_all(manager, &format!("SET (fillfactor = {FILLFACTOR})")).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_all(manager, "RESET (fillfactor)").await
    }
}
