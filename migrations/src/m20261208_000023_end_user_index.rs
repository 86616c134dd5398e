//! An index of the events by end user (issue 15): Explore's questions about one end
//! user (a breakdown under a user filter that no rollup or sketch answers, and the event
//! log filtered by user) read that user's events of the range, not every event of it.
//! At ten million events over 90 days and 200 users, a month holds about 3.4 million
//! events and one user's month about 17,000. Partial: events without an end user are
//! never looked up by it.

use crate::sql::Ddl;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

const CREATE: &str = "CREATE INDEX usage_events_end_user ON usage_events (end_user, occurred_at, id) WHERE end_user IS NOT NULL;\n";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        Ddl {
            sqlite: CREATE,
            postgres: CREATE,
        }
        .run(manager)
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX usage_events_end_user")
            .await?;
        Ok(())
    }
}
