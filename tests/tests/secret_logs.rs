//! A failed plugin call's logs never contain the credential's secret: the plugin below
//! logs it and puts it in its error, and the host redacts both.

use aispend_e2e::fake_provider::{FakeProvider, Reply};
use aispend_e2e::{Backend, MISBEHAVE, backend_tests, plugin_dir, spawn_app_with};
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every log line of this process, at debug level (installed before the server's own
/// subscriber, which then stays out of the way).
fn logs() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = Capture(Arc::new(Mutex::new(Vec::new())));
        let writer = capture.clone();
        tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .init();
        capture
    })
}

async fn logs_of_a_failed_call_do_not_contain_the_secret(backend: Backend) {
    let capture = logs();
    let secret = format!("sk-cut-9f8e7d6c5b4a-{}", backend == Backend::Postgres);
    let provider = FakeProvider::start(|_| Reply::status(401, "{}")).await;
    let dir = plugin_dir(&[MISBEHAVE]);
    let allow = provider.host_port();
    let app = spawn_app_with(backend, |s| {
        s.plugin_dir = Some(dir.path().into());
        s.plugin_allow_hosts = vec![allow];
    })
    .await;
    let added = app
        .admin(
            "mutation($i: AddCredentialInput!) { addCredential(input: $i) { id } }",
            json!({"i": {"provider": "misbehave", "label": "leaky", "secret": secret, "baseUrl": provider.base_url(), "options": {"mode": "log-secret"}}}),
        )
        .await;
    let id = added.data()["addCredential"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let r = app
        .admin(
            "mutation($id: ID!) { validateCredential(id: $id) { status lastError } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r.data()["validateCredential"]["status"], "INVALID");
    assert!(!r.body.to_string().contains(&secret));
    let text = String::from_utf8_lossy(&capture.0.lock().expect("lock")).into_owned();
    assert!(
        text.contains("about to fail with key [redacted]"),
        "the plugin's log line is captured, redacted"
    );
    assert!(!text.contains(&secret), "the secret leaked into the logs");
    // The plugin also logs a 2,000-character line that the secret straddles: the host
    // redacts before it cuts, so not even the secret's start survives.
    assert!(text.contains(&"x".repeat(1_990)), "the long line is logged");
    assert!(
        !text.contains(&secret[..10]),
        "the start of a cut secret leaked into the logs"
    );
}

backend_tests!(logs_of_a_failed_call_do_not_contain_the_secret);
