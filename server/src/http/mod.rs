//! The HTTP surface (axum): `/` (the web dashboard, `web.rs`, with its page routes and
//! assets) and `/README.md`, `/graphql` (POST queries, GET GraphiQL), `/graphql/ws`
//! (subscriptions), `/healthz`, the REST shapes existing clients speak (`/api/…`,
//! `rest.rs`), the streamed exports (`/export/…`, `export.rs`), OTLP/HTTP trace ingest
//! (`/v1/traces`, `otlp.rs`) and Prometheus metrics (`/metrics`, `metrics.rs`). Thin:
//! authenticate, hand over to GraphQL or the domain, translate errors once.

pub mod export;
pub mod graphql;
pub mod health;
pub mod home;
pub mod metrics;
pub mod otlp;
pub mod rate_limit;
pub mod rest;
pub mod web;
pub mod ws;

use crate::config::{IntegrationSettings, LimitSettings};
use crate::graphql::{AispendSchema, schema};
use crate::state::AppState;
use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::Response;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::json;
use std::time::Duration;
use tower_http::catch_panic::CatchPanicLayer;
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
    /// Open websocket connections per token (`ws.rs` caps them).
    pub connections: std::sync::Arc<ws::Connections>,
    /// Per-token request buckets, when `AISPEND_RATE_LIMIT_PER_TOKEN` is set.
    pub rate_limiter: Option<std::sync::Arc<rate_limit::RateLimiter>>,
    /// OTLP and metrics settings.
    pub integrations: std::sync::Arc<IntegrationSettings>,
}

/// The full router.
pub fn router(app: AppState, limits: &LimitSettings, integrations: &IntegrationSettings) -> Router {
    let state = HttpState {
        schema: schema(app.clone(), limits.graphql_introspection),
        app,
        connections: Default::default(),
        rate_limiter: limits
            .rate_limit_per_token
            .map(|l| std::sync::Arc::new(rate_limit::RateLimiter::new(l))),
        integrations: std::sync::Arc::new(integrations.clone()),
    };
    Router::new()
        .route("/", get(web::index))
        .route("/README.md", get(home::readme))
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
        .route("/v1/traces", axum::routing::post(otlp::traces))
        .route("/metrics", get(metrics::metrics))
        .fallback(web::fallback)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            rate_limit::limit,
        ))
        .layer(axum::middleware::from_fn(refuse_declared_oversized_body))
        .layer(axum::middleware::map_response(close_after_oversized_body))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(120),
        ))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state)
}

/// A request whose declared `Content-Length` is over [`MAX_BODY_BYTES`] is answered
/// 413 from its headers, before any of its body is read (a body without a declared
/// length is cut off at the limit while it is read). The answer has both error shapes,
/// GraphQL's `errors` and REST's `error`, like every answer given before a route runs;
/// `POST /api/usage` answers in its portal's shape.
async fn refuse_declared_oversized_body(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response<Body> {
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_none_or(|n| n <= MAX_BODY_BYTES as u64) {
        return next.run(request).await;
    }
    let message = body_limit_message();
    if request.uri().path() == "/api/usage" {
        return rest::portal_error(StatusCode::PAYLOAD_TOO_LARGE, &message, json!([]));
    }
    json_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        &error_body("INVALID_INPUT", &message),
    )
}

/// An error answered outside any route, readable both as a GraphQL error (`errors`)
/// and as a REST one (`error`).
fn error_body(code: &str, message: &str) -> serde_json::Value {
    json!({
        "errors": [{"message": message, "extensions": {"code": code}}],
        "error": {"code": code, "message": message},
    })
}

/// What a client whose body is over [`MAX_BODY_BYTES`] is told.
fn body_limit_message() -> String {
    format!("request body exceeds the limit of {MAX_BODY_BYTES} bytes")
}

/// A JSON answer given outside any route.
fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
}

/// A body over the limit is answered before it is read to the end, and the server then
/// closes the connection: `Connection: close` tells the client so, or it would send its
/// next request on a connection that is going away.
async fn close_after_oversized_body(mut response: Response<Body>) -> Response<Body> {
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// The answer to a request whose handler panicked: a generic 500 in the GraphQL
/// error shape (REST clients read `error.code` from it too), the panic logged. A
/// panic is always a bug; this keeps it to one failed request.
fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = detail, "a request handler panicked");
    json_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &error_body("INTERNAL", "internal error"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_and_the_server_goes_on() {
        async fn boom() -> &'static str {
            panic!("a bug")
        }
        async fn fine() -> &'static str {
            "ok"
        }
        let app: Router = Router::new()
            .route("/boom", get(boom))
            .route("/fine", get(fine))
            .layer(CatchPanicLayer::custom(panic_response));
        let request = |path: &str| {
            axum::http::Request::builder()
                .uri(path)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let response = app.clone().oneshot(request("/boom")).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "INTERNAL");
        assert!(
            !body.to_string().contains("a bug"),
            "the panic message is not shown"
        );
        let response = app.oneshot(request("/fine")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
}
