//! The example plugin of plugin-sdk/README.md, built in the plugins workspace, loaded
//! from a plugin folder and run against its fake provider.

use super::{daily, host, material};
use aispend::plugins::rows::Rows;
use aispend::plugins::{FetchKind, Limits};
use aispend_e2e::fake_provider::{FakeProvider, Reply};
use aispend_e2e::{EXAMPLE, plugin_dir};
use serde_json::json;

#[tokio::test]
async fn the_example_plugin_pages_through_its_provider() {
    let provider = FakeProvider::start(|seen| match (seen.path.as_str(), seen.param("page")) {
        ("/v1/usage", None) => Reply::json(json!({"days": [{"date": "2025-08-01", "model": "ex-1", "input": 10, "output": 5, "requests": 2}], "next": "p2"})),
        ("/v1/usage", Some("p2")) => Reply::json(json!({"days": [{"date": "2025-08-02", "model": null, "input": 1}], "next": null})),
        ("/v1/me", _) => Reply::json(json!({"ok": true})),
        _ => Reply::status(404, "{}"),
    })
    .await;
    let dir = plugin_dir(&[EXAMPLE]);
    let host = host(
        Some(dir.path()),
        &[provider.host_port()],
        Limits::default(),
        false,
    );
    let m = material("ex-key-0123456789", &provider.base_url(), &[]);
    host.validate_credential("example-ai", &m).await.unwrap();
    let q = daily(2);
    let report = host
        .fetch_all("example-ai", FetchKind::Usage, &m, q.start, q.end, q.bucket)
        .await
        .unwrap();
    let Rows::Usage(rows) = report.rows else {
        panic!("usage rows")
    };
    assert_eq!(report.pages, 2);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].tokens.input, 10);
    assert_eq!(rows[1].dimensions.model, None);
    assert_eq!(provider.seen()[1].param("start"), Some("2025-08-01"));
}
