//! Rollups by endpoint, end user and source, and latency sketches, kept exact inside
//! the ingest and re-pricing transactions like the others (see
//! `server/src/domain/rollup.rs`):
//!
//! - `usage_rollup_endpoint_days`: per UTC day, project, provider, model and endpoint
//!   (the model too, for recommendations and anomalies, which ask by endpoint and
//!   model together); `usage_rollup_endpoint_hours`: per UTC hour, project, provider
//!   and endpoint, for the edges.
//! - `usage_rollup_user_days` / `usage_rollup_user_hours`: per UTC day or hour,
//!   project, provider and end user.
//! - `usage_rollup_source_days` / `usage_rollup_source_hours`: the same by source.
//! - `usage_rollup_values`: the endpoints and end users each project's rollups keep
//!   apart. At most a configured number per project and dimension are admitted (the
//!   first ones seen; here, backfilling, the ones with the most events, at most 1,000);
//!   every other value goes to the rollups' "other" bucket, the value `' other'` (with
//!   a leading space, which a trimmed endpoint or user never has), and a row
//!   `' other'` marks the project as overflowed, after which nothing more is admitted.
//!   A value is admitted with its first event or never, so an admitted value's rollup
//!   rows hold all of its events. An event without an endpoint or user is kept under
//!   `''`.
//! - `usage_latency_days` / `usage_latency_hours`: per UTC day or hour, project,
//!   provider and model, how many events had a latency in each bucket of a log-bucketed
//!   sketch with 1 % relative accuracy (see `sketch.rs`).

use crate::sql::Ddl;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

const MEASURES: &str = "    cost_nanos BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cache_read_tokens BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    cache_write_1h_tokens BIGINT NOT NULL,
    reasoning_tokens BIGINT NOT NULL,
    events BIGINT NOT NULL,
    unpriced BIGINT NOT NULL,
    latency_sum BIGINT NOT NULL,
    latency_count BIGINT NOT NULL";

const SUMS: &str = "COALESCE(SUM(cost_nanos), 0), SUM(requests), SUM(input_tokens), SUM(output_tokens), \
    SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(cache_write_1h_tokens), SUM(reasoning_tokens), \
    COUNT(*), SUM(CASE WHEN cost_nanos IS NULL THEN 1 ELSE 0 END), COALESCE(SUM(latency_ms), 0), COUNT(latency_ms)";

const COLUMNS: &str = "cost_nanos, requests, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, \
    cache_write_1h_tokens, reasoning_tokens, events, unpriced, latency_sum, latency_count";

/// Values admitted per project and dimension when backfilling.
const BACKFILL_DISTINCT: i64 = 1000;

/// The tables: `(name, time column, key columns after the time and project)`.
const TABLES: [(&str, &str, &str); 6] = [
    (
        "usage_rollup_endpoint_days",
        "day",
        "provider, model, endpoint",
    ),
    ("usage_rollup_endpoint_hours", "hour", "provider, endpoint"),
    ("usage_rollup_user_days", "day", "provider, end_user"),
    ("usage_rollup_user_hours", "hour", "provider, end_user"),
    ("usage_rollup_source_days", "day", "provider, source"),
    ("usage_rollup_source_hours", "hour", "provider, source"),
];

fn unit(time: &str) -> i64 {
    if time == "day" {
        86_400_000_000
    } else {
        3_600_000_000
    }
}

/// `table_options` is ` WITHOUT ROWID` on SQLite, as for the other rollups.
fn up(project: &str, table_options: &str) -> String {
    let mut s = format!(
        "CREATE TABLE usage_rollup_values (
    project_id {project} NOT NULL,
    dimension TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (project_id, dimension, value)
){table_options};
CREATE TABLE latency_sketch_bounds (bucket BIGINT NOT NULL PRIMARY KEY, lo BIGINT NOT NULL, hi BIGINT NOT NULL);
"
    );
    for (table, time, keys) in TABLES {
        let cols: String = keys
            .split(", ")
            .map(|k| format!("    {k} TEXT NOT NULL,\n"))
            .collect();
        s.push_str(&format!(
            "CREATE TABLE {table} (
    {time} BIGINT NOT NULL,
    project_id {project} NOT NULL,
{cols}{MEASURES},
    PRIMARY KEY ({time}, project_id, {keys})
){table_options};
"
        ));
    }
    for time in ["day", "hour"] {
        s.push_str(&format!(
            "CREATE TABLE usage_latency_{time}s (
    {time} BIGINT NOT NULL,
    project_id {project} NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    bucket BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY ({time}, project_id, provider, model, bucket)
){table_options};
"
        ));
    }
    s
}

/// Backfills from the events already stored (after the bounds table is filled).
fn backfill() -> String {
    let mut s = String::new();
    for (dimension, column) in [("endpoint", "endpoint"), ("end_user", "end_user")] {
        let ranked = format!(
            "(SELECT project_id, {column} AS value, ROW_NUMBER() OVER (PARTITION BY project_id ORDER BY COUNT(*) DESC, {column}) AS n \
             FROM usage_events WHERE {column} IS NOT NULL GROUP BY project_id, {column}) ranked"
        );
        s.push_str(&format!(
            "INSERT INTO usage_rollup_values (project_id, dimension, value)
    SELECT project_id, '{dimension}', value FROM {ranked} WHERE n <= {BACKFILL_DISTINCT};
INSERT INTO usage_rollup_values (project_id, dimension, value)
    SELECT DISTINCT project_id, '{dimension}', ' other' FROM {ranked} WHERE n > {BACKFILL_DISTINCT};
"
        ));
    }
    for (table, time, keys) in TABLES {
        let u = unit(time);
        let mut select = vec![
            format!("e.occurred_at / {u} * {u}"),
            "e.project_id".to_owned(),
        ];
        let mut join = String::new();
        for k in keys.split(", ") {
            select.push(match k {
                "endpoint" | "end_user" => {
                    join = format!(
                        " LEFT JOIN usage_rollup_values v ON v.project_id = e.project_id AND v.dimension = '{k}' AND v.value = e.{k}"
                    );
                    format!(
                        "CASE WHEN e.{k} IS NULL THEN '' WHEN v.value IS NULL THEN ' other' ELSE e.{k} END"
                    )
                }
                other => format!("e.{other}"),
            });
        }
        let group: Vec<String> = (1..=select.len()).map(|i| i.to_string()).collect();
        s.push_str(&format!(
            "INSERT INTO {table} ({time}, project_id, {keys}, {COLUMNS})
    SELECT {}, {SUMS} FROM usage_events e{join} GROUP BY {};
",
            select.join(", "),
            group.join(", ")
        ));
    }
    for time in ["day", "hour"] {
        let u = unit(time);
        s.push_str(&format!(
            "INSERT INTO usage_latency_{time}s ({time}, project_id, provider, model, bucket, count)
    SELECT e.occurred_at / {u} * {u}, e.project_id, e.provider, e.model, b.bucket, COUNT(*)
    FROM usage_events e JOIN latency_sketch_bounds b ON e.latency_ms >= b.lo AND e.latency_ms <= b.hi
    GROUP BY 1, 2, 3, 4, 5;
"
        ));
    }
    s.push_str("DROP TABLE latency_sketch_bounds;\n");
    s
}

const DOWN: &str = "DROP TABLE usage_latency_hours;
DROP TABLE usage_latency_days;
DROP TABLE usage_rollup_source_hours;
DROP TABLE usage_rollup_source_days;
DROP TABLE usage_rollup_user_hours;
DROP TABLE usage_rollup_user_days;
DROP TABLE usage_rollup_endpoint_hours;
DROP TABLE usage_rollup_endpoint_days;
DROP TABLE usage_rollup_values;
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
        .await?;
        // The sketch's buckets, for the backfill's join (negative latencies count as 0).
        let bounds = crate::sketch::bounds();
        let rows: Vec<String> = (0..bounds.len())
            .map(|k| {
                let (lo, hi) = crate::sketch::range(&bounds, k as i64);
                let lo = if k == 0 { i64::MIN } else { lo };
                format!("({k}, {lo}, {hi})")
            })
            .collect();
        for chunk in rows.chunks(500) {
            manager
                .get_connection()
                .execute_unprepared(&format!(
                    "INSERT INTO latency_sketch_bounds (bucket, lo, hi) VALUES {}",
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
        Ddl {
            sqlite: DOWN,
            postgres: DOWN,
        }
        .run(manager)
        .await
    }
}
