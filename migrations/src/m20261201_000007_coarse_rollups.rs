//! Two coarser daily rollups, kept in the same transactions as the others, for the
//! questions most people ask most often:
//!
//! - `usage_rollup_provider_days`: per UTC day, project and provider (about 160 rows a
//!   day for 20 projects and 8 providers, against 1,200 in `usage_rollup_days`): totals,
//!   trends, breakdowns by provider or project.
//! - `usage_rollup_global_days`: per UTC day, provider and model, every project
//!   together (about 60 rows a day): breakdowns by model when no project is asked for.
//!
//! Summing 36,000 rows of `usage_rollup_days` for 30 days took about 28 ms on SQLite,
//! most of it sorting them for the `GROUP BY`; these answer the same from 5,000 and
//! 1,800 rows. Both are backfilled from `usage_rollup_days`, which they coarsen.

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

const COLUMNS: &str = "cost_nanos, requests, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, \
    cache_write_1h_tokens, reasoning_tokens, events, unpriced, latency_sum, latency_count";

const SUMS: &str = "SUM(cost_nanos), SUM(requests), SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens), \
    SUM(cache_write_tokens), SUM(cache_write_1h_tokens), SUM(reasoning_tokens), SUM(events), SUM(unpriced), \
    SUM(latency_sum), SUM(latency_count)";

/// `table_options` is ` WITHOUT ROWID` on SQLite, as for the other rollups: a range of
/// days is then one sequential read of the primary key.
fn up(project: &str, table_options: &str) -> String {
    format!(
        "CREATE TABLE usage_rollup_provider_days (
    day BIGINT NOT NULL,
    project_id {project} NOT NULL,
    provider TEXT NOT NULL,
{MEASURES},
    PRIMARY KEY (day, project_id, provider)
){table_options};
CREATE TABLE usage_rollup_global_days (
    day BIGINT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
{MEASURES},
    PRIMARY KEY (day, provider, model)
){table_options};
INSERT INTO usage_rollup_provider_days (day, project_id, provider, {COLUMNS})
    SELECT day, project_id, provider, {SUMS}
    FROM usage_rollup_days GROUP BY day, project_id, provider;
INSERT INTO usage_rollup_global_days (day, provider, model, {COLUMNS})
    SELECT day, provider, model, {SUMS}
    FROM usage_rollup_days GROUP BY day, provider, model;
"
    )
}

const DOWN: &str = "DROP TABLE usage_rollup_global_days;\nDROP TABLE usage_rollup_provider_days;\n";

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
