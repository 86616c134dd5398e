//! Two narrower attribute rollups (issue 13), kept exact inside the ingest and
//! re-pricing transactions like the others (see `server/src/domain/rollup.rs`):
//!
//! - `usage_rollup_endpoint_provider_days`: per UTC day, project, provider and
//!   endpoint. `usage_rollup_endpoint_days` keeps the model too, so a question by
//!   endpoint alone read a row per model; at ten million events over 90 days with 60
//!   models that was 3.9 million rows.
//! - `usage_rollup_user_project_days`: per UTC day, project and end user, every
//!   provider together, for questions by end user that neither ask for nor filter by
//!   the provider.
//!
//! Both are filled from the finer rollups they sum (`usage_rollup_endpoint_days` and
//! `usage_rollup_user_days`), which hold the same admitted values and 'other' buckets
//! as the events. A measure is two columns, `x_hi × 10^9 + x` with `x` in
//! `[0, 10^9)` (migration 000013): the sum of the low parts is carried into the high
//! part, so the backfill is exact.

use crate::sql::{Ddl, summed_rollup};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `project` is the project id's type; `table_options` is ` WITHOUT ROWID` on SQLite,
/// as for the other rollups.
fn up(project: &str, table_options: &str) -> String {
    let mut s = summed_rollup(
        "usage_rollup_endpoint_provider_days",
        &[
            ("project_id", project),
            ("provider", "TEXT"),
            ("endpoint", "TEXT"),
        ],
        "usage_rollup_endpoint_days",
        table_options,
    );
    s.push_str(&summed_rollup(
        "usage_rollup_user_project_days",
        &[("project_id", project), ("end_user", "TEXT")],
        "usage_rollup_user_days",
        table_options,
    ));
    s
}

const DOWN: &str = "DROP TABLE usage_rollup_user_project_days;
DROP TABLE usage_rollup_endpoint_provider_days;
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
