//! The web dashboard (`web/`), built by `build.rs` and embedded in the binary: `GET /`
//! and every page route answer `index.html` (the front end routes in the browser);
//! `/assets/…` are content-hashed files, cached for a year. The dashboard talks only
//! to the public GraphQL API.

use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// Path prefixes that belong to the API: never answered with the dashboard.
const API_PREFIXES: &[&str] = &["/api/", "/graphql", "/export/", "/v1/", "/metrics"];

/// The file at `path`, if the build produced one.
fn find(path: &str) -> Option<&'static [u8]> {
    WEB_ASSETS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, bytes)| *bytes)
}

/// The content type for a file name.
fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "json" | "map" => "application/json",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn file(path: &str, bytes: &'static [u8]) -> Response {
    // Vite names every bundled file by its content hash: it never changes in place.
    let cache = if path.starts_with("/assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(path)),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        bytes,
    )
        .into_response()
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "not found",
    )
        .into_response()
}

/// The dashboard's page: `index.html`.
pub async fn index() -> Response {
    match find("/index.html") {
        Some(bytes) => file("/index.html", bytes),
        None => not_found(),
    }
}

/// Any other path: a built file, else `index.html` for a page route (a path whose last
/// segment has no extension, outside the API), else 404.
pub async fn fallback(method: Method, uri: Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return not_found();
    }
    let path = uri.path();
    if let Some(bytes) = find(path) {
        return file(path, bytes);
    }
    let last = path.rsplit('/').next().unwrap_or("");
    let api = API_PREFIXES.iter().any(|p| path.starts_with(p));
    if api || last.contains('.') {
        return not_found();
    }
    index().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_embeds_an_index_page_and_hashed_assets() {
        let index = find("/index.html").expect("index.html is embedded");
        let html = String::from_utf8_lossy(index);
        assert!(html.contains("<div id=\"app\""), "{html}");
        assert!(
            WEB_ASSETS
                .iter()
                .any(|(p, _)| p.starts_with("/assets/") && p.ends_with(".js")),
            "a bundled script under /assets/"
        );
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("/a/b.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("/x.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("/index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("/blob"), "application/octet-stream");
    }
}
