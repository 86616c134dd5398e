//! Alert channels (issue 14, part 4; branch `channels`):
//!
//! - `notification_channels`: a named destination for alerts — `WEBHOOK` (url and a
//!   signing secret), `SLACK` (an incoming-webhook url, which holds a secret in its
//!   path) or `EMAIL` (comma-separated addresses). The secret is sealed under the master
//!   key like budget webhook secrets (`aead:<key id>:…`), never stored in clear.
//! - `budgets.channel_ids`: comma-separated channel ids a budget's alerts go to, besides
//!   its own `webhook_url`.
//! - `alert_targets`: one row per destination of one alert (`webhook` for the budget's
//!   own webhook, `channel:<id>` for a channel) with its delivery state. The alert's
//!   `delivery_status` is the sum of its targets. Alerts still pending when this
//!   migration runs get their `webhook` target, so their delivery carries on.
//! - `alert_deliveries.target`: which destination an attempt was for (null on rows
//!   written before: the budget's webhook).

use crate::sql::Ddl;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn up(uuid: &str) -> String {
    format!(
        "CREATE TABLE notification_channels (
    id {uuid} PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    url TEXT NULL,
    emails TEXT NOT NULL DEFAULT '',
    secret TEXT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
ALTER TABLE budgets ADD COLUMN channel_ids TEXT NOT NULL DEFAULT '';
CREATE TABLE alert_targets (
    alert_id {uuid} NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    target TEXT NOT NULL,
    status TEXT NOT NULL,
    delivered_at BIGINT NULL,
    PRIMARY KEY (alert_id, target)
);
ALTER TABLE alert_deliveries ADD COLUMN target TEXT NULL;
INSERT INTO alert_targets (alert_id, target, status) SELECT id, 'webhook', 'PENDING' FROM alerts WHERE delivery_status = 'PENDING';
"
    )
}

const DOWN: &str = "ALTER TABLE alert_deliveries DROP COLUMN target;
DROP TABLE alert_targets;
ALTER TABLE budgets DROP COLUMN channel_ids;
DROP TABLE notification_channels;
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
