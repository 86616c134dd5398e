//! The HTTP surface (axum): `/graphql` (POST queries, GET GraphiQL), `/graphql/ws`
//! (subscriptions), `/healthz`, the REST shapes existing clients speak (`/api/…`,
//! `rest.rs`) and the streamed exports (`/export/…`, `export.rs`). Thin:
//! authenticate, hand over to GraphQL or the domain, translate errors once.

pub mod export;
pub mod graphql;
pub mod health;
pub mod rest;
pub mod ws;

use crate::graphql::{AispendSchema, schema};
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::get;
use std::time::Duration;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// Largest request body accepted (a full 10,000-event batch is a few megabytes).
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// What handlers share.
#[derive(Clone)]
pub struct HttpState {
    /// Process state.
    pub app: AppState,
    /// The GraphQL schema.
    pub schema: AispendSchema,
}

/// The full router.
pub fn router(app: AppState) -> Router {
    let state = HttpState {
        schema: schema(app.clone()),
        app,
    };
    Router::new()
        .route("/graphql", get(graphql::graphiql).post(graphql::execute))
        .route("/graphql/ws", get(ws::graphql_ws))
        .route("/healthz", get(health::healthz))
        .route("/api/health", get(rest::health))
        .route("/api/filters", get(rest::filters))
        .route("/api/metrics/summary", get(rest::summary))
        .route("/api/metrics/by-model", get(rest::by_model))
        .route("/api/metrics/by-endpoint", get(rest::by_endpoint))
        .route("/api/metrics/trend", get(rest::trend))
        .route("/api/recommendations", get(rest::recommendations))
        .route("/api/logs", get(rest::logs))
        .route("/api/usage", get(rest::list_usage).post(rest::record_usage))
        .route("/export/usage.csv", get(export::csv))
        .route("/export/usage.jsonl", get(export::jsonl))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(120),
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
