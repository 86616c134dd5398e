//! `GET /`: a short page for a person who opens the server in a browser, pointing at
//! the GraphiQL playground and the README (served at `/README.md` from the copy built
//! into the binary, so it always matches the running version). The web dashboard will
//! replace this page.

use axum::http::header;
use axum::response::{Html, IntoResponse};

/// The README this binary was built with.
const README: &str = include_str!("../../../README.md");

/// The landing page.
pub async fn index() -> Html<String> {
    Html(format!(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>aispend</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}}
code{{background:#f3f3f3;padding:0 .25rem}}</style></head>
<body>
<h1>aispend {version}</h1>
<p>A self-hosted ledger of AI API spend. This server answers GraphQL at <code>/graphql</code>.</p>
<ul>
<li><a href="/graphql">Open the GraphiQL playground</a> — paste an API token as
<code>Authorization: Bearer …</code> in its headers pane.</li>
<li><a href="/README.md">Read the README</a>: the quick start, every query and the configuration.</li>
<li><a href="/healthz">Health</a> of this server and its database.</li>
</ul>
</body>
</html>
"#,
        version = env!("CARGO_PKG_VERSION"),
    ))
}

/// The README as plain text.
pub async fn readme() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
        README,
    )
}
