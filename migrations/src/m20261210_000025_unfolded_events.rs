//! The events the rollups and sketches do not count yet (issue 13): ingest no longer
//! upserts every rollup and sketch inside its own transaction. It stores its events
//! and their ids here; a folder folds them into the rollups in large batches after the
//! commit, deleting their ids in the same transaction. Every rollup or sketch read adds
//! the unfolded events of its range in the same statement, so answers stay exact
//! whatever the folder's lag. Empty on an upgraded ledger: its rollups count every
//! event already.

use crate::sql::Ddl;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        Ddl {
            sqlite: "CREATE TABLE usage_unfolded (id INTEGER NOT NULL PRIMARY KEY);",
            postgres: "CREATE TABLE usage_unfolded (id BIGINT NOT NULL PRIMARY KEY);",
        }
        .run(manager)
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Rolling back leaves the rollups without the unfolded events: a ledger must be
        // folded (the server does it within seconds) before this runs.
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE usage_unfolded")
            .await?;
        Ok(())
    }
}
