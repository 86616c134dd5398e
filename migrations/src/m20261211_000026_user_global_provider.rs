//! The end-user rollup of every project together keeps the provider apart (issue 13):
//! `usage_rollup_user_global_days` is keyed by UTC day, provider and end user. A
//! breakdown by provider and end user across projects read a row per project too from
//! `usage_rollup_user_days` (at ten million events over 20 projects, 1.1–1.2 s on
//! SQLite and 0.47 s on PostgreSQL for 30 days). A day holds a row per provider an end
//! user called instead of one per end user, so a breakdown by end user alone reads a
//! few times more rows than before, still a twentieth of the per-project table's.
//!
//! Rebuilt exactly from `usage_rollup_user_days` (see `sql::summed_rollup`): both are
//! folded in the same transactions, so they count the same events (the unfolded ones
//! are in neither).

use crate::sql::create_summed_rollup;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLE: &str = "usage_rollup_user_global_days";

async fn rebuild(manager: &SchemaManager<'_>, keys: &[(&str, &str)]) -> Result<(), DbErr> {
    manager
        .get_connection()
        .execute_unprepared(&format!("DROP TABLE {TABLE}"))
        .await?;
    create_summed_rollup(manager, TABLE, keys, "usage_rollup_user_days").await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rebuild(manager, &[("provider", "TEXT"), ("end_user", "TEXT")]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rebuild(manager, &[("end_user", "TEXT")]).await
    }
}
