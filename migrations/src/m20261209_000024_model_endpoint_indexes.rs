//! Indexes of the events by model and time, and by endpoint and time (issue 15):
//! Explore's questions under a model or endpoint filter that no rollup or sketch
//! answers (an end user or source grouped under them, say) read that model's or
//! endpoint's events of the range, not every event of it. At ten million events over
//! 90 days, 60 models and 40 endpoints, a month holds about 3.4 million events, one
//! model's month about 57,000 and one endpoint's about 85,000. The endpoint index is
//! partial: events without an endpoint are never looked up by it.

use crate::sql::Ddl;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

const CREATE: &str = "CREATE INDEX usage_events_model ON usage_events (model, occurred_at, id);
CREATE INDEX usage_events_endpoint ON usage_events (endpoint, occurred_at, id) WHERE endpoint IS NOT NULL;
";

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
        let conn = manager.get_connection();
        conn.execute_unprepared("DROP INDEX usage_events_model")
            .await?;
        conn.execute_unprepared("DROP INDEX usage_events_endpoint")
            .await?;
        Ok(())
    }
}
