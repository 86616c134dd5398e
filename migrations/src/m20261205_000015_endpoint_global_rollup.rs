//! `usage_rollup_endpoint_global_days`: per UTC day, provider, model and endpoint,
//! every project together (issue 13), kept exact inside the ingest and re-pricing
//! transactions like the others (see `server/src/domain/rollup.rs`). Recommendations
//! and anomalies ask by endpoint and model, usually across every project; from
//! `usage_rollup_endpoint_days` they read a row per project as well (at ten million
//! events over 90 days and 20 projects, 1.3 million rows for 30 days).
//!
//! Filled from `usage_rollup_endpoint_days`, exactly (see `sql::summed_rollup`). An
//! endpoint is kept apart per project (`usage_rollup_values`), so a row here sums the
//! projects that admitted it, and the `' other'` rows those that did not: a question
//! that reads an `' other'` row with events reads raw events instead, as for the
//! per-project rollups.

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
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE usage_rollup_endpoint_global_days")
            .await
            .map(|_| ())
    }
}
