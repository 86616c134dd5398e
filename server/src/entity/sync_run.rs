//! `sync_runs`: one pull of one credential's usage or cost reports for one window.

use sea_orm::entity::prelude::*;

/// One row of `sync_runs`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sync_runs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub credential_id: Uuid,
    pub provider: String,
    pub kind: String,
    pub trigger_kind: String,
    pub tick_key: Option<String>,
    pub window_start: i64,
    pub window_end: i64,
    pub dry_run: bool,
    pub status: String,
    pub attempts: i32,
    pub pages: i32,
    pub rows_inserted: i64,
    pub rows_updated: i64,
    pub rows_unchanged: i64,
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
    /// JSON list of attempts.
    pub attempt_log: String,
    pub queued_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub heartbeat_at: Option<i64>,
    pub next_attempt_at: Option<i64>,
    pub cursor: Option<String>,
    pub dispatch_gen: i32,
    pub dispatched_gen: i32,
    pub dispatched_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
