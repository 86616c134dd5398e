//! Two narrower attribute rollups (issue 13), kept exact inside the ingest and
//! re-pricing transactions like the others (see `server/src/domain/rollup.rs`):
//!
//! - `usage_rollup_endpoint_provider_days`: per UTC day, project, provider and
//!   endpoint. `usage_rollup_endpoint_days` keeps the model too, so a question by
//!   endpoint alone read a row per model; at ten million events over 90 days with 60
//!   models that was 3.9 million rows.
//! - `usage_rollup_user_project_days`: per UTC day, project and end user, every
//!   provider together, for questions by end user that neither ask for nor filter by
//!   the provider.
//!
//! Both are filled from the finer rollups they sum (`usage_rollup_endpoint_days` and
//! `usage_rollup_user_days`), which hold the same admitted values and 'other' buckets
//! as the events. A measure is two columns, `x_hi × 10^9 + x` with `x` in
//! `[0, 10^9)` (migration 000013): the sum of the low parts is carried into the high
//! part, so the backfill is exact.

use crate::ROLLUP_MEASURES as MEASURES;
use crate::sql::Ddl;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The new tables: `(name, key columns after day and project, the table it sums)`.
const TABLES: [(&str, &str, &str); 2] = [
    (
        "usage_rollup_endpoint_provider_days",
        "provider, endpoint",
        "usage_rollup_endpoint_days",
    ),
    (
        "usage_rollup_user_project_days",
        "end_user",
        "usage_rollup_user_days",
    ),
];

/// `project` is the project id's type; `table_options` is ` WITHOUT ROWID` on SQLite,
/// as for the other rollups.
fn up(project: &str, table_options: &str) -> String {
    let mut s = String::new();
    for (table, keys, source) in TABLES {
        let key_columns: String = keys
            .split(", ")
            .map(|k| format!("    {k} TEXT NOT NULL,\n"))
            .collect();
        let measures: Vec<String> = MEASURES
            .iter()
            .flat_map(|m| {
                [
                    format!("    {m}_hi BIGINT NOT NULL"),
                    format!("    {m} BIGINT NOT NULL"),
                ]
            })
            .collect();
        s.push_str(&format!(
            "CREATE TABLE {table} (
    day BIGINT NOT NULL,
    project_id {project} NOT NULL,
{key_columns}{},
    PRIMARY KEY (day, project_id, {keys})
){table_options};
",
            measures.join(",\n")
        ));
        // Sums of the low parts (each below 10^9, so no overflow below 9 × 10^9
        // rows) carried into the high parts, in integer division on both engines
        // (PostgreSQL's SUM of a BIGINT is a NUMERIC, whose division has a fraction).
        let columns: Vec<String> = MEASURES
            .iter()
            .flat_map(|m| [format!("{m}_hi"), (*m).to_owned()])
            .collect();
        let sums: Vec<String> = MEASURES
            .iter()
            .flat_map(|m| {
                [
                    format!("CAST(SUM({m}_hi) AS BIGINT) + CAST(SUM({m}) AS BIGINT) / 1000000000"),
                    format!("CAST(SUM({m}) AS BIGINT) % 1000000000"),
                ]
            })
            .collect();
        s.push_str(&format!(
            "INSERT INTO {table} (day, project_id, {keys}, {})
    SELECT day, project_id, {keys}, {} FROM {source} GROUP BY day, project_id, {keys};
",
            columns.join(", "),
            sums.join(", ")
        ));
    }
    s
}

const DOWN: &str = "DROP TABLE usage_rollup_user_project_days;
DROP TABLE usage_rollup_endpoint_provider_days;
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sqlite = up("BLOB", " WITHOUT ROWID");
        let postgres = up("UUID", "");
        Ddl {
            sqlite: &sqlite,
            postgres: &postgres,
        }
        .run(manager)
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        Ddl {
            sqlite: DOWN,
            postgres: DOWN,
        }
        .run(manager)
        .await
    }
}
