//! Runs one backend-specific DDL script statement by statement.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// DDL for each backend this project supports.
pub struct Ddl<'a> {
    pub sqlite: &'a str,
    pub postgres: &'a str,
}

impl Ddl<'_> {
    /// Executes the script for the connected backend; statements are separated by `;`
    /// at the end of a line.
    pub async fn run(&self, manager: &SchemaManager<'_>) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let script = match db.get_database_backend() {
            DbBackend::Sqlite => self.sqlite,
            DbBackend::Postgres => self.postgres,
            other => {
                return Err(DbErr::Migration(format!(
                    "unsupported database backend {other:?}"
                )));
            }
        };
        for statement in script.split(";\n").map(str::trim).filter(|s| !s.is_empty()) {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
