//! A weekly latency sketch per project, provider and model (issue 13 §1):
//! `usage_latency_week_chunks`, keyed by week (seven UTC days from the Unix epoch, a
//! Thursday), project, provider, model and chunk, with the same 32 bucket counts to a
//! row as `usage_latency_day_chunks` (migration 000017, see `crate::sketch`).
//!
//! Percentiles by project and model over a month read the daily sketch: at ten million
//! events over 20 projects and 60 models, about 200,000 rows for 30 days (0.35–0.43 s
//! on both engines). A week holds about as many rows as one of its days, so whole weeks
//! read about a fifth of that, and the days at the edges the rest.
//!
//! Filled exactly from `usage_latency_day_chunks`: both are folded in the same
//! transactions, so they count the same events (the unfolded ones are in neither). A
//! week starts at the day rounded down to a multiple of seven days, also before 1970
//! (the server's `div_euclid`).

use crate::sketch::COUNT_COLUMNS;
use crate::sql::Ddl;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLE: &str = "usage_latency_week_chunks";
const WEEK: i64 = 7 * 86_400_000_000;

/// `project` is the project id's type; `table_options` ` WITHOUT ROWID` on SQLite.
fn up(project: &str, table_options: &str) -> String {
    let names = COUNT_COLUMNS.join(", ");
    let columns: String = COUNT_COLUMNS
        .iter()
        .map(|c| format!("    {c} BIGINT NOT NULL,\n"))
        .collect();
    // Counts of events: far from `i64::MAX` (PostgreSQL's SUM of a BIGINT is a NUMERIC).
    let sums: Vec<String> = COUNT_COLUMNS
        .iter()
        .map(|c| format!("CAST(SUM({c}) AS BIGINT)"))
        .collect();
    let week = format!("day - ((day % {WEEK}) + {WEEK}) % {WEEK}");
    format!(
        "CREATE TABLE {TABLE} (
    week BIGINT NOT NULL,
    project_id {project} NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    chunk BIGINT NOT NULL,
{columns}    PRIMARY KEY (week, project_id, provider, model, chunk)
){table_options};
INSERT INTO {TABLE} (week, project_id, provider, model, chunk, {names})
    SELECT {week}, project_id, provider, model, chunk, {sums}
    FROM usage_latency_day_chunks GROUP BY {week}, project_id, provider, model, chunk;
",
        sums = sums.join(", ")
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        Ddl {
            sqlite: &up("BLOB", " WITHOUT ROWID"),
            postgres: &up("UUID", ""),
        }
        .run(manager)
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(&format!("DROP TABLE {TABLE}"))
            .await?;
        Ok(())
    }
}
