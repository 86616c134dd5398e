//! aispend: a self-hosted ledger of AI API spend. See `ARCHITECTURE.md` for the map.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod client;
pub mod config;
pub mod db;
pub mod domain;
pub mod entity;
pub mod graphql;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod plugins;
pub mod startup;
pub mod state;
pub mod telemetry;
