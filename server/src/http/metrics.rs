//! `GET /metrics`: the Prometheus text format of this server's [`crate::metrics`].
//! Open on the listen address by default; when `AISPEND_METRICS_TOKEN` is set, only a
//! request bearing that token reads it (compared in constant time), anything else gets
//! `401`. API tokens do not open it: a scraper's credential is separate from the
//! ledger's.

use super::HttpState;
use super::graphql::bearer;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The content type of the Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether `given` is `expected`, in time independent of where they differ.
fn same_token(given: &str, expected: &str) -> bool {
    let (a, b) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    if let Some(expected) = state.integrations.metrics_token.as_deref() {
        let allowed = bearer(&headers).is_some_and(|given| same_token(given, expected));
        if !allowed {
            let mut response = (
                StatusCode::UNAUTHORIZED,
                "a bearer token (AISPEND_METRICS_TOKEN) is required to read /metrics\n",
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
    }
    let body = state.app.metrics.render(state.app.live.cost_subscribers());
    let mut response = (StatusCode::OK, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("ab", "abc"));
    }
}
