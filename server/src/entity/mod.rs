//! SeaORM entities: the shape of each table, nothing more. Only `domain/` uses them;
//! they are never GraphQL or REST types. Times are microseconds since the epoch and
//! money is nano-dollars (see the migrations crate).
//!
//! Fields mirror the columns documented in the migrations crate; the derive macros
//! generate many public items, so documentation lints are relaxed here only.
#![allow(missing_docs)]

pub mod alert;
pub mod alert_delivery;
pub mod alert_target;
pub mod anomaly_watch;
pub mod api_token;
pub mod budget;
pub mod budget_period;
pub mod credential;
pub mod model_alias;
pub mod notification_channel;
pub mod price;
pub mod price_change;
pub mod price_source;
pub mod project;
pub mod provider_report;
pub mod subscription_cost;
pub mod sync_run;
pub mod sync_schedule;
pub mod usage_event;
