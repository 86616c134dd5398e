//! The domain: the ledger, pricing, projects, tokens. It knows neither axum,
//! async-graphql nor wasmtime; services take `&impl ConnectionTrait` so they run
//! inside a caller's transaction, and parse raw input into the types below before
//! doing anything.

pub mod alert;
pub mod analytics;
pub mod anomaly_watch;
pub mod api_token;
pub mod auth;
pub mod budget;
pub mod calendar;
pub mod channel;
pub mod credential;
pub mod egress;
pub mod error;
pub mod ids;
pub mod insights;
pub mod json_rows;
pub mod key_rotation;
pub mod keyring;
pub mod live;
pub mod money;
pub mod price;
pub mod project;
pub mod provider;
pub mod provider_report;
pub mod reconciliation;
pub mod rollup;
pub mod subscription;
pub mod sync;
pub mod text;
pub mod time;
pub mod tokens;
pub mod usage;
pub mod webhook;

pub use error::{Error, FieldError, Result};
