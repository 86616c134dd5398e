//! Rollups of tracked usage, kept exact inside the ingest and re-pricing transactions
//! (see `server/src/domain/analytics/rollup.rs`), so analytics read thousands of rows
//! instead of millions:
//!
//! - `usage_rollup_days`: per UTC day, project, provider and model.
//! - `usage_rollup_hours`: per UTC hour, project and provider.
//! - `usage_rollup_model_hours`: per UTC hour, project, provider and model: the
//!   edges of a range when the model is asked for (a breakdown by model, a model
//!   filter), which the smaller hourly table cannot answer.
//!
//! Both are backfilled from the events already stored.

use crate::sql::Ddl;
use sea_orm_migration::prelude::*;

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

/// `table_options` is ` WITHOUT ROWID` on SQLite: the primary key, which starts with
/// the time, is then the table's order, and a range of days or hours is read in one
/// sequential pass instead of an index walk with a row lookup per entry.
fn up(project: &str, table_options: &str) -> String {
    format!(
        "CREATE TABLE usage_rollup_days (
    day BIGINT NOT NULL,
    project_id {project} NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
{MEASURES},
    PRIMARY KEY (day, project_id, provider, model)
){table_options};
CREATE TABLE usage_rollup_hours (
    hour BIGINT NOT NULL,
    project_id {project} NOT NULL,
    provider TEXT NOT NULL,
{MEASURES},
    PRIMARY KEY (hour, project_id, provider)
){table_options};
CREATE TABLE usage_rollup_model_hours (
    hour BIGINT NOT NULL,
    project_id {project} NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
{MEASURES},
    PRIMARY KEY (hour, project_id, provider, model)
){table_options};
INSERT INTO usage_rollup_days (day, project_id, provider, model, {COLUMNS})
    SELECT occurred_at / 86400000000 * 86400000000, project_id, provider, model, {SUMS}
    FROM usage_events GROUP BY occurred_at / 86400000000, project_id, provider, model;
INSERT INTO usage_rollup_hours (hour, project_id, provider, {COLUMNS})
    SELECT occurred_at / 3600000000 * 3600000000, project_id, provider, {SUMS}
    FROM usage_events GROUP BY occurred_at / 3600000000, project_id, provider;
INSERT INTO usage_rollup_model_hours (hour, project_id, provider, model, {COLUMNS})
    SELECT occurred_at / 3600000000 * 3600000000, project_id, provider, model, {SUMS}
    FROM usage_events GROUP BY occurred_at / 3600000000, project_id, provider, model;
"
    )
}

const DOWN: &str = "DROP TABLE usage_rollup_model_hours;\nDROP TABLE usage_rollup_hours;\nDROP TABLE usage_rollup_days;\n";

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
