//! `GET /healthz`: liveness and the database, for load balancers and people.

use super::HttpState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

/// `200 {"status":"ok",...}` when the database answers, `503` otherwise.
pub async fn healthz(State(state): State<HttpState>) -> (StatusCode, Json<Value>) {
    let db_ok = state.app.db.ping().await.is_ok();
    let status = if db_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if db_ok { "ok" } else { "unavailable" },
            "version": env!("CARGO_PKG_VERSION"),
            "database": state.app.db_kind,
        })),
    )
}
