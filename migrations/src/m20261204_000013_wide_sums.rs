//! Sums that no reachable input overflows (issue 19 item 2). Every measure of every
//! rollup table and every budget counter was one `BIGINT`; an event may report up to
//! $100 million and 10^12 tokens per class, so a row shared by every project (the
//! global daily rollup, a budget over all projects) passed `i64::MAX` after about a
//! hundred such events from one project's ingest token, and every other project's
//! ingest into that row failed from then on.
//!
//! Each measure `m` now has a partner `m_hi`: the row's value is
//! `m_hi × 10^9 + m`, with `m` kept in `[0, 10^9)` by the upserts' carry (see
//! `Wide` in the server's `money.rs`). Existing values are split here.

use crate::sql::Ddl;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The measures of every rollup table, in the server's order.
const MEASURES: [&str; 19] = [
    "cost_nanos",
    "requests",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "reasoning_tokens",
    "events",
    "unpriced",
    "latency_sum",
    "latency_count",
    "audio_input_tokens",
    "audio_output_tokens",
    "image_input_tokens",
    "image_output_tokens",
    "images_generated",
    "web_search_calls",
    "video_seconds",
];

/// Every rollup table.
const ROLLUPS: [&str; 11] = [
    "usage_rollup_days",
    "usage_rollup_provider_days",
    "usage_rollup_global_days",
    "usage_rollup_hours",
    "usage_rollup_model_hours",
    "usage_rollup_endpoint_days",
    "usage_rollup_endpoint_hours",
    "usage_rollup_user_days",
    "usage_rollup_user_hours",
    "usage_rollup_source_days",
    "usage_rollup_source_hours",
];

/// Adds `{column}_hi` to `table` for each column, then splits the stored values
/// (the `SET` expressions all read the row as it was).
fn widen(sql: &mut String, table: &str, columns: &[&str]) {
    for c in columns {
        sql.push_str(&format!(
            "ALTER TABLE {table} ADD COLUMN {c}_hi BIGINT NOT NULL DEFAULT 0;\n"
        ));
    }
    let set: Vec<String> = columns
        .iter()
        .map(|c| format!("{c}_hi = {c} / 1000000000, {c} = {c} % 1000000000"))
        .collect();
    sql.push_str(&format!("UPDATE {table} SET {};\n", set.join(", ")));
}

fn up() -> String {
    let mut sql = String::new();
    for table in ROLLUPS {
        widen(&mut sql, table, &MEASURES);
    }
    widen(&mut sql, "budget_periods", &["spent_nanos"]);
    sql
}

fn down() -> String {
    let mut sql = String::new();
    let mut narrow = |table: &str, columns: &[&str]| {
        let set: Vec<String> = columns
            .iter()
            .map(|c| format!("{c} = {c}_hi * 1000000000 + {c}"))
            .collect();
        sql.push_str(&format!("UPDATE {table} SET {};\n", set.join(", ")));
        for c in columns {
            sql.push_str(&format!("ALTER TABLE {table} DROP COLUMN {c}_hi;\n"));
        }
    };
    for table in ROLLUPS {
        narrow(table, &MEASURES);
    }
    narrow("budget_periods", &["spent_nanos"]);
    sql
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sql = up();
        Ddl {
            sqlite: &sql,
            postgres: &sql,
        }
        .run(manager)
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sql = down();
        Ddl {
            sqlite: &sql,
            postgres: &sql,
        }
        .run(manager)
        .await
    }
}
