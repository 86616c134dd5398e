//! Anomaly alerts (issue 14 part 4, the anomaly half):
//!
//! - `anomaly_watches`: a standing question "tell these channels when a provider,
//!   model or endpoint of this project (or of every project) spends at least
//!   `min_factor` times its trailing mean". `subjects` and `channel_ids` are
//!   comma-separated; `min_factor` is a decimal in text (exact, like every rate).
//! - `alerts.dedupe_key`: what makes an alert without a budget fire once. An anomaly
//!   alert's key names the watch, the UTC day, the subject and its value; the unique
//!   index is then the only proof it fired, as `alerts_once` is for budgets. Budget
//!   alerts leave it null (nulls never collide).

use crate::sql::Ddl;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn up(uuid: &str) -> String {
    format!(
        "CREATE TABLE anomaly_watches (
    id {uuid} PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    project_id {uuid} NULL REFERENCES projects (id),
    subjects TEXT NOT NULL,
    min_factor TEXT NOT NULL,
    min_excess_nanos BIGINT NOT NULL,
    baseline_days BIGINT NOT NULL,
    channel_ids TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX anomaly_watches_project ON anomaly_watches (project_id);
ALTER TABLE alerts ADD COLUMN dedupe_key TEXT NULL;
CREATE UNIQUE INDEX alerts_dedupe_key ON alerts (dedupe_key);
"
    )
}

const DOWN: &str = "DROP INDEX alerts_dedupe_key;
ALTER TABLE alerts DROP COLUMN dedupe_key;
DROP TABLE anomaly_watches;
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sqlite = up("BLOB");
        let postgres = up("UUID");
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
