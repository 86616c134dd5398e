//! Units beyond text tokens (issue 12 part 4): audio input and output tokens, image
//! input and output tokens, generated images, web-search calls and seconds of
//! generated video, each a count on the usage event (zero for every event stored
//! before). Their rates live in the price rows' rate cards (JSON), which need no
//! column.

use crate::sql::Ddl;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = "ALTER TABLE usage_events ADD COLUMN audio_input_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_events ADD COLUMN audio_output_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_events ADD COLUMN image_input_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_events ADD COLUMN image_output_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_events ADD COLUMN images_generated BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_events ADD COLUMN web_search_calls BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_events ADD COLUMN video_seconds BIGINT NOT NULL DEFAULT 0;
";

const DOWN: &str = "ALTER TABLE usage_events DROP COLUMN video_seconds;
ALTER TABLE usage_events DROP COLUMN web_search_calls;
ALTER TABLE usage_events DROP COLUMN images_generated;
ALTER TABLE usage_events DROP COLUMN image_output_tokens;
ALTER TABLE usage_events DROP COLUMN image_input_tokens;
ALTER TABLE usage_events DROP COLUMN audio_output_tokens;
ALTER TABLE usage_events DROP COLUMN audio_input_tokens;
";

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
