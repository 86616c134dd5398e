//! Schema migrations for aispend.
//!
//! A migration that has landed is never edited: a schema change is a new file. The DDL
//! is written per backend (SQLite and PostgreSQL) rather than through a portable
//! builder, because the differences matter for the ledger: on SQLite the event id must
//! be an `INTEGER PRIMARY KEY` (the rowid) to keep inserts cheap, on PostgreSQL it is an
//! identity column whose sequence the ingest path reserves ids from.
//!
//! Conventions shared by every table:
//! - times are `BIGINT` microseconds since the Unix epoch (UTC), so ordering and range
//!   scans are integer comparisons on both backends;
//! - money is `BIGINT` nano-dollars (1e-9 USD), exact; a stored sum is two `BIGINT`s
//!   (`x` in `[0, 10^9)` and `x_hi`, see migration 000013), so no sum overflows;
//! - rates are decimal strings inside a JSON rate card, parsed into `rust_decimal`;
//! - natural keys are unique indexes, and writes are upserts against them.

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_ledger_core;
mod m20261124_000002_credentials;
mod m20261124_000004_budgets;
mod m20261124_000005_sync;
mod m20261124_000006_rollups;
mod m20261201_000007_coarse_rollups;
mod m20261204_000008_pricing_sync;
mod m20261204_000009_notification_channels;
mod m20261204_000010_attribute_rollups;
mod m20261204_000011_anomaly_watches;
mod m20261204_000012_billed_units;
mod m20261204_000013_wide_sums;
mod m20261204_000014_pricing_variant;
mod m20261205_000015_global_attribute_rollups;
mod m20261205_000016_change_sequence;
mod m20261206_000017_sketch_chunks;
mod m20261207_000018_global_hour_rollups;
mod m20261207_000019_endpoint_latency_sketches;
mod m20261207_000020_endpoint_global_weeks;
mod m20261207_000021_endpoint_global_hours;
mod m20261208_000022_user_source_latency_sketches;
mod m20261208_000023_end_user_index;
mod m20261209_000024_model_endpoint_indexes;
mod m20261210_000025_unfolded_events;
mod m20261211_000026_user_global_provider;
mod m20261212_000027_latency_weeks;
mod m20261213_000028_rollup_fillfactor;
pub mod sketch;
mod sql;

/// The measures every rollup table has, each stored as `x_hi` and `x` (migration
/// 000013), in the order the server's rollup hook and analytics use. Migrations that
/// landed before it keep their own copy (a landed migration is never edited).
pub const ROLLUP_MEASURES: [&str; 19] = [
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

/// The ordered list of migrations the server applies at start-up.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_ledger_core::Migration),
            Box::new(m20261124_000002_credentials::Migration),
            Box::new(m20261124_000004_budgets::Migration),
            Box::new(m20261124_000005_sync::Migration),
            Box::new(m20261124_000006_rollups::Migration),
            Box::new(m20261201_000007_coarse_rollups::Migration),
            Box::new(m20261204_000008_pricing_sync::Migration),
            Box::new(m20261204_000009_notification_channels::Migration),
            Box::new(m20261204_000010_attribute_rollups::Migration),
            Box::new(m20261204_000011_anomaly_watches::Migration),
            Box::new(m20261204_000012_billed_units::Migration),
            Box::new(m20261204_000013_wide_sums::Migration),
            Box::new(m20261204_000014_pricing_variant::Migration),
            Box::new(m20261205_000015_global_attribute_rollups::Migration),
            Box::new(m20261205_000016_change_sequence::Migration),
            Box::new(m20261206_000017_sketch_chunks::Migration),
            Box::new(m20261207_000018_global_hour_rollups::Migration),
            Box::new(m20261207_000019_endpoint_latency_sketches::Migration),
            Box::new(m20261207_000020_endpoint_global_weeks::Migration),
            Box::new(m20261207_000021_endpoint_global_hours::Migration),
            Box::new(m20261208_000022_user_source_latency_sketches::Migration),
            Box::new(m20261208_000023_end_user_index::Migration),
            Box::new(m20261209_000024_model_endpoint_indexes::Migration),
            Box::new(m20261210_000025_unfolded_events::Migration),
            Box::new(m20261211_000026_user_global_provider::Migration),
            Box::new(m20261212_000027_latency_weeks::Migration),
            Box::new(m20261213_000028_rollup_fillfactor::Migration),
        ]
    }
}
