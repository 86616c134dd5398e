//! Ledger changes numbered from a sequence on PostgreSQL (issue 13 §2).
//!
//! Until now every ingest transaction took the row lock of `ledger_state` to number its
//! change (`change_seq + 1`), so all ingest, of every process, ran one transaction at a
//! time. A sequence hands out numbers without a lock; the order in which changes
//! committed is no longer the number order, so live subscribers tell what their
//! snapshot already holds by transaction visibility instead (see the server's
//! `domain::live`). The sequence continues from the last number given. SQLite has one
//! writer at a time and keeps `ledger_state.change_seq`.

use crate::sql::Ddl;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const PG_UP: &str = "CREATE SEQUENCE ledger_change_seq AS BIGINT;
SELECT setval('ledger_change_seq', (SELECT change_seq FROM ledger_state WHERE id = 1) + 1, false);
";
const PG_DOWN: &str = "UPDATE ledger_state SET change_seq = GREATEST(change_seq, (SELECT last_value FROM ledger_change_seq)) WHERE id = 1;
DROP SEQUENCE ledger_change_seq;
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        Ddl {
            sqlite: "",
            postgres: PG_UP,
        }
        .run(manager)
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        Ddl {
            sqlite: "",
            postgres: PG_DOWN,
        }
        .run(manager)
        .await
    }
}
