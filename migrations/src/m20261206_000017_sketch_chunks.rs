//! Latency sketches stored 32 buckets to a row (issue 13 §1).
//!
//! Migration 000010 kept one row per (unit, project, provider, model, bucket): at
//! 10,000,000 events over 90 days that is 6.7 million daily rows, and a 30-day
//! percentile question read 2.2 million of them. `usage_latency_day_chunks` and
//! `usage_latency_hour_chunks` keep the same counts with one row per
//! (unit, project, provider, model, chunk) and the chunk's [`CHUNK`] bucket counts in
//! columns `c0 … c31` (see `sketch.rs`), and `usage_latency_global_day_chunks` the
//! same per day for every project together (a question that asks for no project
//! reads a row per model and chunk a day, not one per project too). An ingest still
//! adds exact deltas to them with one upsert per table (`c_k = c_k + excluded.c_k`);
//! the old tables are copied over and dropped.

use crate::sketch::{CHUNK, COUNT_COLUMNS};
use crate::sql::Ddl;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `(old table, new table, time column)`.
const TABLES: [(&str, &str, &str); 2] = [
    ("usage_latency_days", "usage_latency_day_chunks", "day"),
    ("usage_latency_hours", "usage_latency_hour_chunks", "hour"),
];

/// The sketch per day of every project together.
const GLOBAL: &str = "usage_latency_global_day_chunks";

/// `project` is the project id's type; `table_options` ` WITHOUT ROWID` on SQLite.
fn up(project: &str, table_options: &str) -> String {
    let mut s = String::new();
    let names = COUNT_COLUMNS.join(", ");
    let columns: String = COUNT_COLUMNS
        .iter()
        .map(|c| format!("    {c} BIGINT NOT NULL,\n"))
        .collect();
    let sums = crate::sketch::chunk_sums("bucket", "count");
    for (old, new, time) in TABLES {
        s.push_str(&format!(
            "CREATE TABLE {new} (
    {time} BIGINT NOT NULL,
    project_id {project} NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    chunk BIGINT NOT NULL,
{columns}    PRIMARY KEY ({time}, project_id, provider, model, chunk)
){table_options};
INSERT INTO {new} ({time}, project_id, provider, model, chunk, {names})
    SELECT {time}, project_id, provider, model, bucket / {CHUNK}, {sums}
    FROM {old} GROUP BY {time}, project_id, provider, model, bucket / {CHUNK};
DROP TABLE {old};
",
            sums = sums.join(", ")
        ));
    }
    let sums: Vec<String> = COUNT_COLUMNS.iter().map(|c| format!("SUM({c})")).collect();
    s.push_str(&format!(
        "CREATE TABLE {GLOBAL} (
    day BIGINT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    chunk BIGINT NOT NULL,
{columns}    PRIMARY KEY (day, provider, model, chunk)
){table_options};
INSERT INTO {GLOBAL} (day, provider, model, chunk, {names})
    SELECT day, provider, model, chunk, {sums}
    FROM usage_latency_day_chunks GROUP BY day, provider, model, chunk;
",
        sums = sums.join(", ")
    ));
    s
}

/// Back to one row per bucket.
fn down(project: &str, table_options: &str) -> String {
    let mut s = format!("DROP TABLE {GLOBAL};\n");
    for (old, new, time) in TABLES {
        let per_bucket: Vec<String> = COUNT_COLUMNS
            .iter()
            .enumerate()
            .map(|(k, c)| {
                format!(
                    "SELECT {time}, project_id, provider, model, chunk * {CHUNK} + {k} AS bucket, {c} AS count FROM {new} WHERE {c} <> 0"
                )
            })
            .collect();
        s.push_str(&format!(
            "CREATE TABLE {old} (
    {time} BIGINT NOT NULL,
    project_id {project} NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    bucket BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY ({time}, project_id, provider, model, bucket)
){table_options};
INSERT INTO {old} ({time}, project_id, provider, model, bucket, count)
    {};
DROP TABLE {new};
",
            per_bucket.join(" UNION ALL ")
        ));
    }
    s
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
        Ddl {
            sqlite: &down("BLOB", " WITHOUT ROWID"),
            postgres: &down("UUID", ""),
        }
        .run(manager)
        .await
    }
}
