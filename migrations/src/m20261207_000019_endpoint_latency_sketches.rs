//! Latency sketches by endpoint (issue 13), kept exact inside the ingest transaction
//! like the others (see `server/src/domain/rollup.rs`), 32 buckets to a row as in
//! migration 000017 (see `crate::sketch`):
//!
//! - `usage_latency_endpoint_day_chunks`: per UTC day, project and endpoint (as the
//!   endpoint rollups store it: the admitted value, `' other'` for a project's long
//!   tail, `''` for none).
//! - `usage_latency_endpoint_global_day_chunks`: per UTC day and endpoint, every project
//!   together.
//!
//! Percentiles by endpoint (or of one endpoint) read every event of the range before:
//! 13 s at ten million events over 90 days on SQLite. These tables hold, at that size,
//! about 7 rows per endpoint and day (or per project, endpoint and day).
//!
//! The backfill buckets each distinct latency once (one seek in the bounds) and joins
//! the events to that on equality: a lookup of the bounds per event took minutes at a
//! million events on PostgreSQL.

use crate::sketch::{CHUNK, COUNT_COLUMNS, chunk_sums};
use crate::sql::Ddl;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

const PER_PROJECT: &str = "usage_latency_endpoint_day_chunks";
const GLOBAL: &str = "usage_latency_endpoint_global_day_chunks";
const DAY: i64 = 86_400_000_000;

/// The tables and the bucket table of the backfill. `project` is the project id's type;
/// `table_options` ` WITHOUT ROWID` on SQLite.
fn create(project: &str, table_options: &str) -> String {
    let columns: String = COUNT_COLUMNS
        .iter()
        .map(|c| format!("    {c} BIGINT NOT NULL,\n"))
        .collect();
    format!(
        "CREATE TABLE {PER_PROJECT} (
    day BIGINT NOT NULL,
    project_id {project} NOT NULL,
    endpoint TEXT NOT NULL,
    chunk BIGINT NOT NULL,
{columns}    PRIMARY KEY (day, project_id, endpoint, chunk)
){table_options};
CREATE TABLE {GLOBAL} (
    day BIGINT NOT NULL,
    endpoint TEXT NOT NULL,
    chunk BIGINT NOT NULL,
{columns}    PRIMARY KEY (day, endpoint, chunk)
){table_options};
CREATE TABLE endpoint_sketch_bounds (hi BIGINT NOT NULL PRIMARY KEY, bucket BIGINT NOT NULL);
CREATE TABLE endpoint_sketch_buckets (latency_ms BIGINT NOT NULL PRIMARY KEY, bucket BIGINT NOT NULL);
"
    )
}

/// Fills both tables from the events (after the bounds are in), then drops the helpers.
fn backfill() -> String {
    let names = COUNT_COLUMNS.join(", ");
    let sums: Vec<String> = COUNT_COLUMNS.iter().map(|c| format!("SUM({c})")).collect();
    format!(
        "INSERT INTO endpoint_sketch_buckets (latency_ms, bucket)
    SELECT l.latency_ms, (SELECT b.bucket FROM endpoint_sketch_bounds b WHERE b.hi >= l.latency_ms ORDER BY b.hi LIMIT 1)
    FROM (SELECT DISTINCT latency_ms FROM usage_events WHERE latency_ms IS NOT NULL) l;
INSERT INTO {PER_PROJECT} (day, project_id, endpoint, chunk, {names})
    SELECT day, project_id, endpoint, bucket / {CHUNK}, {counts} FROM (
        SELECT e.occurred_at / {DAY} * {DAY} AS day, e.project_id,
            CASE WHEN e.endpoint IS NULL THEN '' WHEN v.value IS NULL THEN ' other' ELSE e.endpoint END AS endpoint,
            m.bucket
        FROM usage_events e
        JOIN endpoint_sketch_buckets m ON m.latency_ms = e.latency_ms
        LEFT JOIN usage_rollup_values v ON v.project_id = e.project_id AND v.dimension = 'endpoint' AND v.value = e.endpoint
    ) s
    GROUP BY day, project_id, endpoint, bucket / {CHUNK};
INSERT INTO {GLOBAL} (day, endpoint, chunk, {names})
    SELECT day, endpoint, chunk, {sums} FROM {PER_PROJECT} GROUP BY day, endpoint, chunk;
DROP TABLE endpoint_sketch_buckets;
DROP TABLE endpoint_sketch_bounds;
",
        counts = chunk_sums("bucket", "1").join(", "),
        sums = sums.join(", ")
    )
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
        let rows: Vec<String> = crate::sketch::bounds()
            .iter()
            .enumerate()
            .map(|(bucket, hi)| format!("({hi}, {bucket})"))
            .collect();
        for chunk in rows.chunks(500) {
            manager
                .get_connection()
                .execute_unprepared(&format!(
                    "INSERT INTO endpoint_sketch_bounds (hi, bucket) VALUES {}",
                    chunk.join(", ")
                ))
                .await?;
        }
        let script = backfill();
        Ddl {
            sqlite: &script,
            postgres: &script,
        }
        .run(manager)
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [GLOBAL, PER_PROJECT] {
            manager
                .get_connection()
                .execute_unprepared(&format!("DROP TABLE {table}"))
                .await?;
        }
        Ok(())
    }
}
