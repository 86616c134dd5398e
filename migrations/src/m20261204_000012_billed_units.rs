//! Units beyond text tokens (issue 12 part 4): audio input and output tokens, image
//! input and output tokens, generated images, web-search calls and seconds of
//! generated video, each a count on the usage event and a measure of every rollup
//! table (zero for everything stored before, which had none). Their rates live in the
//! price rows' rate cards (JSON), which need no column.

use crate::sql::Ddl;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The new columns, in the order the rollups' measures list them.
const UNITS: [&str; 7] = [
    "audio_input_tokens",
    "audio_output_tokens",
    "image_input_tokens",
    "image_output_tokens",
    "images_generated",
    "web_search_calls",
    "video_seconds",
];

/// Every table with the measure columns: the events and each rollup.
const TABLES: [&str; 12] = [
    "usage_events",
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

fn up() -> String {
    let mut sql = String::new();
    for table in TABLES {
        for column in UNITS {
            sql.push_str(&format!(
                "ALTER TABLE {table} ADD COLUMN {column} BIGINT NOT NULL DEFAULT 0;\n"
            ));
        }
    }
    sql
}

fn down() -> String {
    let mut sql = String::new();
    for table in TABLES {
        for column in UNITS.iter().rev() {
            sql.push_str(&format!("ALTER TABLE {table} DROP COLUMN {column};\n"));
        }
    }
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
