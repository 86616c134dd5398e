//! The pricing variant of a usage event (issue 12 part 4): what a per-unit fee depends
//! on besides the model — Perplexity's search context size, a generated image's quality
//! and size, a video's resolution. NULL for everything stored before, which named none.
//! The per-variant rates live in the price rows' rate cards (JSON), which need no
//! column.

use crate::sql::Ddl;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = "ALTER TABLE usage_events ADD COLUMN pricing_variant TEXT;\n";
const DOWN: &str = "ALTER TABLE usage_events DROP COLUMN pricing_variant;\n";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        Ddl {
            sqlite: UP,
            postgres: UP,
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
