//! The sandbox: every misbehaviour ends in a clear error within its limit, and the
//! host serves the next call normally.

use super::{daily, host, material};
use aispend::plugins::{FetchKind, Limits, PluginErrorKind, PluginHost};
use aispend_e2e::fake_provider::{FakeProvider, Reply};
use aispend_e2e::{MISBEHAVE, READS_FILES, plugin_dir};
use std::time::{Duration, Instant};

const SECRET: &str = "sk-fixture-0123456789abcdef";

fn limits() -> Limits {
    Limits {
        cpu: Duration::from_millis(500),
        wall: Duration::from_secs(10),
        memory_bytes: 32 << 20,
        hostcall_bytes: 4 << 20,
        http_requests: 5,
        response_bytes: 1 << 20,
        request_timeout: Duration::from_secs(1),
        rows_per_page: 1_000,
        pages_per_sync: 10,
        ..Limits::default()
    }
}

struct Setup {
    host: PluginHost,
    provider: FakeProvider,
    elsewhere: FakeProvider,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let elsewhere = FakeProvider::start(|_| Reply::status(200, "{}")).await;
    let target = format!("{}/landed", elsewhere.base_url());
    let provider = FakeProvider::start(move |seen| match seen.path.as_str() {
        "/redirect" => Reply::status(302, "").header("location", &target),
        "/huge" => Reply::status(200, "x".repeat(3 << 20)),
        "/slow" => Reply {
            delay: Some(Duration::from_secs(3)),
            ..Reply::status(200, "{}")
        },
        _ => Reply::status(200, "{}"),
    })
    .await;
    let dir = plugin_dir(&[MISBEHAVE, READS_FILES]);
    let host = host(Some(dir.path()), &[provider.host_port()], limits(), false);
    Setup {
        host,
        provider,
        elsewhere,
        _dir: dir,
    }
}

impl Setup {
    async fn run(&self, mode: &str) -> Result<usize, aispend::plugins::PluginError> {
        let m = material(SECRET, &self.provider.base_url(), &[("mode", mode)]);
        self.host
            .fetch_page("misbehave", FetchKind::Usage, &m, &daily(1))
            .await
            .map(|p| p.rows.len())
    }

    /// The host still works after a failure: a well-behaved call succeeds.
    async fn still_serves(&self) {
        assert_eq!(
            self.run("ok").await.expect("a normal call after a failure"),
            1
        );
    }
}

fn crashed(e: &aispend::plugins::PluginError) -> &str {
    assert_eq!(
        e.plugin, "misbehave@0.1.0",
        "the error names the plugin and its version"
    );
    match &e.kind {
        PluginErrorKind::Crashed(m) => m,
        other => panic!("expected a crash, got {other:?}"),
    }
}

#[tokio::test]
async fn an_infinite_loop_is_interrupted_at_the_cpu_limit() {
    let s = setup().await;
    // Warm up first (compiling the component is not part of a call's limit), then
    // time the call: the CPU limit (500 ms) stops it, long before the wall-clock limit
    // (10 s) would. Only that order is asserted; a loaded machine may take longer than
    // 500 ms of wall time to spend 500 ms of CPU.
    s.still_serves().await;
    let started = Instant::now();
    let e = s.run("loop").await.unwrap_err();
    assert!(crashed(&e).contains("CPU time limit"), "{e}");
    assert!(
        started.elapsed() < limits().wall,
        "took {:?}, the wall-clock limit would have stopped it first",
        started.elapsed()
    );
    s.still_serves().await;
}

#[tokio::test]
async fn a_memory_bomb_traps_at_the_memory_cap() {
    let s = setup().await;
    let e = s.run("memory").await.unwrap_err();
    assert!(crashed(&e).contains("memory limit of 32 MiB"), "{e}");
    s.still_serves().await;
}

#[tokio::test]
async fn a_panic_is_reported_with_its_message() {
    let s = setup().await;
    let e = s.run("panic").await.unwrap_err();
    let m = crashed(&e);
    assert!(
        m.starts_with("panicked") && m.contains("the fixture panics on purpose"),
        "{e}"
    );
    s.still_serves().await;
}

#[tokio::test]
async fn an_undeclared_host_is_refused_before_any_connection() {
    let s = setup().await;
    let e = s.run("undeclared-host").await.unwrap_err();
    assert!(
        matches!(&e.kind, PluginErrorKind::Other(m) if m.contains("undeclared.example.com:443 is neither a host the plugin declared")),
        "{e}"
    );
    s.still_serves().await;
}

#[tokio::test]
async fn a_redirect_is_returned_to_the_plugin_never_followed() {
    let s = setup().await;
    let e = s.run("redirect").await.unwrap_err();
    assert!(
        matches!(&e.kind, PluginErrorKind::BadResponse(m) if m.contains("302") && m.contains("redirect")),
        "{e}"
    );
    assert!(s.provider.seen().iter().any(|r| r.path == "/redirect"));
    assert!(
        s.elsewhere.seen().is_empty(),
        "the redirect target must not be contacted"
    );
    s.still_serves().await;
}

#[tokio::test]
async fn a_huge_response_is_cut_at_the_size_cap() {
    let s = setup().await;
    let e = s.run("huge-response").await.unwrap_err();
    assert!(
        matches!(&e.kind, PluginErrorKind::BadResponse(m) if m.contains("exceeds the host's limit of 1048576 bytes")),
        "{e}"
    );
    s.still_serves().await;
}

#[tokio::test]
async fn an_endless_cursor_stops_at_the_page_cap() {
    let s = setup().await;
    let m = material(
        SECRET,
        &s.provider.base_url(),
        &[("mode", "endless-cursor")],
    );
    let q = daily(1);
    let e = s
        .host
        .fetch_all("misbehave", FetchKind::Usage, &m, q.start, q.end, q.bucket)
        .await
        .unwrap_err();
    assert!(
        matches!(&e.kind, PluginErrorKind::LimitExceeded(m) if m.contains("after 10 pages")),
        "{e}"
    );
    s.still_serves().await;
}

#[tokio::test]
async fn a_huge_payload_to_the_host_exhausts_the_hostcall_budget() {
    let s = setup().await;
    let e = s.run("huge-payload").await.unwrap_err();
    assert!(
        crashed(&e).contains("more than 4194304 bytes to the host"),
        "{e}"
    );
    s.still_serves().await;
}

#[tokio::test]
async fn the_request_budget_per_call_is_enforced() {
    let s = setup().await;
    let e = s.run("many-requests").await.unwrap_err();
    assert!(
        matches!(&e.kind, PluginErrorKind::Other(m) if m.contains("limit of 5 requests")),
        "{e}"
    );
    assert_eq!(
        s.provider
            .seen()
            .iter()
            .filter(|r| r.path == "/check")
            .count(),
        5
    );
    s.still_serves().await;
}

#[tokio::test]
async fn garbage_output_is_refused() {
    let s = setup().await;
    let e = s.run("garbage").await.unwrap_err();
    assert!(
        crashed(&e).contains("returned garbage") && crashed(&e).contains("not after its start"),
        "{e}"
    );
    let e = s.run("many-rows").await.unwrap_err();
    assert!(crashed(&e).contains("5000 rows in one page"), "{e}");
    s.still_serves().await;
}

#[tokio::test]
async fn a_slow_provider_times_out() {
    // The reply would come after 10 s; the per-request timeout is 1 s.
    let slow = FakeProvider::start(|_| Reply {
        delay: Some(Duration::from_secs(10)),
        ..Reply::status(200, "x".repeat(10))
    })
    .await;
    let dir = plugin_dir(&[MISBEHAVE]);
    let host = host(Some(dir.path()), &[slow.host_port()], limits(), false);
    // Warm up (load, compile, one call without HTTP), then time the slow call.
    let ok = material(SECRET, &slow.base_url(), &[("mode", "ok")]);
    host.fetch_page("misbehave", FetchKind::Usage, &ok, &daily(1))
        .await
        .expect("a call without HTTP");
    let started = Instant::now();
    let m = material(SECRET, &slow.base_url(), &[("mode", "huge-response")]);
    let e = host
        .fetch_page("misbehave", FetchKind::Usage, &m, &daily(1))
        .await
        .unwrap_err();
    assert!(
        matches!(&e.kind, PluginErrorKind::Unavailable(m) if m.contains("timed out")),
        "{e}"
    );
    // It ended by the timeout, not by the reply: well before the reply was due.
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_streamed_response_without_content_length_is_cut_at_the_size_cap() {
    // 3 MiB in 64 KiB chunks, no Content-Length: the cap (1 MiB) must hold while
    // reading, not from a header.
    let provider = FakeProvider::start(|_| Reply {
        chunked: true,
        ..Reply::status(200, "x".repeat(3 << 20))
    })
    .await;
    let dir = plugin_dir(&[MISBEHAVE]);
    let host = host(Some(dir.path()), &[provider.host_port()], limits(), false);
    let m = material(SECRET, &provider.base_url(), &[("mode", "huge-response")]);
    let e = host
        .fetch_page("misbehave", FetchKind::Usage, &m, &daily(1))
        .await
        .unwrap_err();
    assert!(
        matches!(&e.kind, PluginErrorKind::BadResponse(m) if m.contains("exceeds the host's limit of 1048576 bytes")),
        "{e}"
    );
    assert_eq!(provider.seen().len(), 1, "one request, cut while reading");
}

#[tokio::test]
async fn a_stack_overflow_is_reported_and_the_host_serves_on() {
    // A Rust guest's stack lives in its linear memory: overflowing it traps as an
    // out-of-bounds access, reported in words (before: 500 characters of wasm
    // backtrace), and the next call runs normally.
    let s = setup().await;
    let e = s.run("stack-overflow").await.unwrap_err();
    assert!(
        crashed(&e).contains("accessed memory out of bounds (its stack overflowed"),
        "{e}"
    );
    s.still_serves().await;
}

#[tokio::test]
async fn a_declared_host_that_resolves_to_a_private_address_is_refused() {
    // The fixture declares `localhost`, which resolves to loopback; the operator did
    // not allow it, so no connection is made.
    let s = setup().await;
    let e = s.run("declared-private").await.unwrap_err();
    assert!(
        matches!(&e.kind, PluginErrorKind::Other(m) if m.contains("resolves to the non-public address")),
        "{e}"
    );
    s.still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_into_one_plugin_are_isolated() {
    // Twenty calls at once into the same loaded plugin, every fourth one looping
    // until its CPU limit: each ends with its own outcome, and the well-behaved ones
    // all return their row.
    let s = setup().await;
    s.still_serves().await;
    let calls = (0..20).map(|i| {
        let mode = if i % 4 == 0 { "loop" } else { "ok" };
        let s = &s;
        async move { (mode, s.run(mode).await) }
    });
    let results = futures::future::join_all(calls).await;
    for (mode, result) in &results {
        match (*mode, result) {
            ("ok", Ok(rows)) => assert_eq!(*rows, 1),
            ("loop", Err(e)) => assert!(crashed(e).contains("CPU time limit"), "{e}"),
            (mode, other) => panic!("{mode}: {other:?}"),
        }
    }
    s.still_serves().await;
}

#[tokio::test]
async fn a_component_importing_the_filesystem_is_refused_at_load() {
    let s = setup().await;
    let list = s.host.list().await;
    let reads = list
        .iter()
        .find(|p| p.origin.ends_with(READS_FILES))
        .expect("listed");
    let error = reads.load_error.as_deref().expect("a load error");
    assert!(error.contains("wasi:filesystem/"), "{error}");
    assert!(reads.metadata.is_none());
    let misbehave = list.iter().find(|p| p.id == "misbehave").expect("listed");
    assert!(misbehave.load_error.is_none());
    assert_eq!(misbehave.sdk_version.as_deref(), Some("0.1.0"));
}

#[tokio::test]
async fn secrets_never_leave_a_call() {
    let s = setup().await;
    let e = s.run("leak-secret").await.unwrap_err();
    assert!(!e.to_string().contains(SECRET), "{e}");
    assert!(e.to_string().contains("[redacted]"), "{e}");
}

#[tokio::test]
async fn plain_http_and_unallowed_base_urls_are_refused() {
    let s = setup().await;
    let other = FakeProvider::start(|_| Reply::status(200, "{}")).await;
    let m = material(SECRET, &other.base_url(), &[("mode", "ok")]);
    let e = s
        .host
        .fetch_page("misbehave", FetchKind::Usage, &m, &super::daily(1))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("plain http"), "{e}");
    assert!(other.seen().is_empty());
}
