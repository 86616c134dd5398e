//! End-to-end scenarios against the real server (see the `aispend-e2e` harness). Each
//! module lists its scenarios in `db_tests!`, so they run on SQLite and, in the
//! PostgreSQL pass, on a fresh PostgreSQL database.

mod access;
mod analytics;
mod anomaly_alerts;
mod auth;
mod budgets;
mod channels;
mod cli_tools;
mod clock;
mod credentials;
mod cross_process;
mod dashboard;
mod docs;
mod examples;
mod fold;
mod health;
mod hostile;
mod idempotency;
mod import;
mod ingest;
mod insights;
mod latency;
mod metrics;
mod otlp;
mod pg_faults;
mod plugins;
mod price_sync;
mod pricing;
mod queries;
mod reconciliation;
mod rest;
mod security;
mod subscriptions;
mod sync;
mod units;
mod validation;
mod variants;
mod webhooks;
