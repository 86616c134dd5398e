//! Latency sketches by end user and by source (issue 15: the dashboard's Explore page
//! asks p50/p95 of every breakdown), kept exact inside the ingest transaction like the
//! others (see `server/src/domain/rollup.rs`), 32 buckets to a row as in migration
//! 000017 (see `crate::sketch`):
//!
//! - `usage_latency_user_day_chunks`: per UTC day, project and end user (as the end-user
//!   rollups store it: the admitted value, `' other'` for a project's long tail, `''`
//!   for none);
//! - `usage_latency_user_global_day_chunks`: per UTC day and end user, every project
//!   together;
//! - `usage_latency_source_day_chunks`: per UTC day, project and source (`API`, `OTLP`,
//!   `IMPORT`);
//! - `usage_latency_source_global_day_chunks`: per UTC day and source, every project
//!   together.
//!
//! Percentiles by end user or by source (or of one) read every latency of the range
//! before: at ten million events over 90 days, a month's 3.4 million, 1 to 50 seconds.
//!
//! The backfill buckets each distinct latency once and joins the events to that on
//! equality, as migration 000019 does.

use crate::sketch::{CHUNK, COUNT_COLUMNS, chunk_sums};
use crate::sql::{Ddl, insert_sketch_bounds};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

const DAY: i64 = 86_400_000_000;

/// A sketched attribute: its column, its per-project and every-project tables, and
/// whether a project keeps only its admitted values apart (`usage_rollup_values`).
struct Attr {
    column: &'static str,
    per_project: &'static str,
    global: &'static str,
    bounded: bool,
}

const ATTRS: [Attr; 2] = [
    Attr {
        column: "end_user",
        per_project: "usage_latency_user_day_chunks",
        global: "usage_latency_user_global_day_chunks",
        bounded: true,
    },
    Attr {
        column: "source",
        per_project: "usage_latency_source_day_chunks",
        global: "usage_latency_source_global_day_chunks",
        bounded: false,
    },
];

/// The tables and the bucket tables of the backfill. `project` is the project id's
/// type; `table_options` ` WITHOUT ROWID` on SQLite.
fn create(project: &str, table_options: &str) -> String {
    let counts: String = COUNT_COLUMNS
        .iter()
        .map(|c| format!("    {c} BIGINT NOT NULL,\n"))
        .collect();
    let mut sql = String::new();
    for a in &ATTRS {
        let (column, per_project, global) = (a.column, a.per_project, a.global);
        sql.push_str(&format!(
            "CREATE TABLE {per_project} (
    day BIGINT NOT NULL,
    project_id {project} NOT NULL,
    {column} TEXT NOT NULL,
    chunk BIGINT NOT NULL,
{counts}    PRIMARY KEY (day, project_id, {column}, chunk)
){table_options};
CREATE TABLE {global} (
    day BIGINT NOT NULL,
    {column} TEXT NOT NULL,
    chunk BIGINT NOT NULL,
{counts}    PRIMARY KEY (day, {column}, chunk)
){table_options};
"
        ));
    }
    sql.push_str(
        "CREATE TABLE attr_sketch_bounds (hi BIGINT NOT NULL PRIMARY KEY, bucket BIGINT NOT NULL);
CREATE TABLE attr_sketch_buckets (latency_ms BIGINT NOT NULL PRIMARY KEY, bucket BIGINT NOT NULL);
",
    );
    sql
}

/// Fills the tables from the events (after the bounds are in), then drops the helpers.
fn backfill() -> String {
    let names = COUNT_COLUMNS.join(", ");
    let sums: Vec<String> = COUNT_COLUMNS.iter().map(|c| format!("SUM({c})")).collect();
    let counts = chunk_sums("bucket", "1").join(", ");
    let sums = sums.join(", ");
    let mut sql = "INSERT INTO attr_sketch_buckets (latency_ms, bucket)
    SELECT l.latency_ms, (SELECT b.bucket FROM attr_sketch_bounds b WHERE b.hi >= l.latency_ms ORDER BY b.hi LIMIT 1)
    FROM (SELECT DISTINCT latency_ms FROM usage_events WHERE latency_ms IS NOT NULL) l;
"
    .to_owned();
    for a in &ATTRS {
        let (column, per_project, global) = (a.column, a.per_project, a.global);
        let (value, join) = if a.bounded {
            (
                format!(
                    "CASE WHEN e.{column} IS NULL THEN '' WHEN v.value IS NULL THEN ' other' ELSE e.{column} END"
                ),
                format!(
                    "LEFT JOIN usage_rollup_values v ON v.project_id = e.project_id AND v.dimension = '{column}' AND v.value = e.{column}"
                ),
            )
        } else {
            (format!("e.{column}"), String::new())
        };
        sql.push_str(&format!(
            "INSERT INTO {per_project} (day, project_id, {column}, chunk, {names})
    SELECT day, project_id, {column}, bucket / {CHUNK}, {counts} FROM (
        SELECT e.occurred_at / {DAY} * {DAY} AS day, e.project_id, {value} AS {column}, m.bucket
        FROM usage_events e
        JOIN attr_sketch_buckets m ON m.latency_ms = e.latency_ms
        {join}
    ) s
    GROUP BY day, project_id, {column}, bucket / {CHUNK};
INSERT INTO {global} (day, {column}, chunk, {names})
    SELECT day, {column}, chunk, {sums} FROM {per_project} GROUP BY day, {column}, chunk;
"
        ));
    }
    sql.push_str("DROP TABLE attr_sketch_buckets;\nDROP TABLE attr_sketch_bounds;\n");
    sql
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        Ddl {
            sqlite: &create("BLOB", " WITHOUT ROWID"),
            postgres: &create("UUID", ""),
        }
        .run(manager)
        .await?;
        insert_sketch_bounds(manager, "attr_sketch_bounds").await?;
        let script = backfill();
        Ddl {
            sqlite: &script,
            postgres: &script,
        }
        .run(manager)
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for a in &ATTRS {
            for table in [a.global, a.per_project] {
                manager
                    .get_connection()
                    .execute_unprepared(&format!("DROP TABLE {table}"))
                    .await?;
            }
        }
        Ok(())
    }
}
