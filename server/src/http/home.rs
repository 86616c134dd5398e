//! `GET /README.md`: the README this binary was built with (so it always matches the
//! running version); the dashboard at `/` links to it.

use axum::http::header;
use axum::response::IntoResponse;

/// The README this binary was built with.
const README: &str = include_str!("../../../README.md");

/// The README as plain text.
pub async fn readme() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
        README,
    )
}
