//! `sync`: provider reports pulled by sync runs (the bundled OpenAI plugin against a
//! fake OpenAI admin API on loopback), the retry rules with shortened delays, re-runs
//! and corrections, dry runs, one run at a time, schedules, manual entries and fixed
//! subscriptions.

use aispend_e2e::fake_provider::{FakeProvider, Reply, Seen};
use aispend_e2e::{Backend, TestApp, backend_tests, spawn_app_with};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const RUN_FIELDS: &str = "id credentialId provider kind trigger from to dryRun status attempts pages rowsInserted rowsUpdated rowsUnchanged errorKind errorMessage attemptLog { number page errorKind errorMessage waitMs rows } queuedAt startedAt finishedAt";

/// 2026-03-01T00:00:00Z and the next hour, as the fake provider's buckets.
const T0: i64 = 1_772_323_200;

fn empty_page() -> Reply {
    Reply::json(json!({"object": "page", "data": [], "has_more": false, "next_page": null}))
}

fn result(model: &str, input: i64, output: i64, requests: i64) -> Value {
    json!({"object": "organization.usage.completions.result", "input_tokens": input,
           "output_tokens": output, "input_cached_tokens": 0, "num_model_requests": requests,
           "project_id": "proj_a", "api_key_id": null, "model": model, "batch": false,
           "service_tier": "default"})
}

/// Completions usage in two pages (three rows), every other usage endpoint empty;
/// `input` is the first row's input tokens (a correction changes it).
fn usage_api(seen: &Seen, input: i64) -> Reply {
    match (seen.path.as_str(), seen.param("page")) {
        ("/v1/organization/usage/completions", None) => Reply::json(json!({
            "object": "page",
            "data": [{"object": "bucket", "start_time": T0, "end_time": T0 + 3600,
                      "results": [result("gpt-4o-2024-08-06", input, 500, 5), result("gpt-4o-mini", 300, 20, 1)]}],
            "has_more": true, "next_page": "page_2"
        })),
        ("/v1/organization/usage/completions", Some("page_2")) => Reply::json(json!({
            "object": "page",
            "data": [{"object": "bucket", "start_time": T0 + 3600, "end_time": T0 + 7200,
                      "results": [result("o3", 10, 10, 2)]}],
            "has_more": false, "next_page": null
        })),
        _ => empty_page(),
    }
}

/// Pages a usage run of the OpenAI plugin reads: eight endpoints, completions twice.
const USAGE_PAGES: i64 = 9;

struct Setup {
    app: TestApp,
    provider: FakeProvider,
    credential: String,
}

async fn setup(
    backend: Backend,
    handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
) -> Setup {
    setup_with(backend, handler, |_| {}).await
}

async fn setup_with(
    backend: Backend,
    handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    configure: impl FnOnce(&mut aispend::config::Settings),
) -> Setup {
    let provider = FakeProvider::start(handler).await;
    let allow = provider.host_port();
    let app = spawn_app_with(backend, |s| {
        s.plugin_allow_hosts = vec![allow];
        configure(s);
    })
    .await;
    let credential = add_credential(&app, &provider, "main").await;
    Setup {
        app,
        provider,
        credential,
    }
}

async fn add_credential(app: &TestApp, provider: &FakeProvider, label: &str) -> String {
    let r = app
        .admin(
            "mutation($i: AddCredentialInput!) { addCredential(input: $i) { id } }",
            json!({"i": {"provider": "openai", "label": label, "secret": "sk-admin-0123456789abcdef", "baseUrl": provider.base_url()}}),
        )
        .await;
    r.data()["addCredential"]["id"]
        .as_str()
        .expect("a credential id")
        .to_owned()
}

async fn sync_now(app: &TestApp, credential: &str, kind: &str, dry_run: bool) -> Value {
    let r = app
        .admin(
            &format!("mutation($c: ID!, $k: SyncKind!, $from: DateTime, $to: DateTime, $d: Boolean!) {{ syncNow(credentialId: $c, kind: $k, from: $from, to: $to, dryRun: $d) {{ {RUN_FIELDS} }} }}"),
            json!({"c": credential, "k": kind, "from": "2026-03-01T00:00:00Z", "to": "2026-03-02T00:00:00Z", "d": dry_run}),
        )
        .await;
    r.data()["syncNow"].clone()
}

async fn run(app: &TestApp, id: &str) -> Value {
    let r = app
        .admin(
            &format!("query($id: ID!) {{ syncRun(id: $id) {{ {RUN_FIELDS} }} }}"),
            json!({"id": id}),
        )
        .await;
    r.data()["syncRun"].clone()
}

/// Waits until the run has ended; returns it.
async fn finished(app: &TestApp, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = run(app, id).await;
        if r["status"] == "SUCCEEDED" || r["status"] == "FAILED" {
            return r;
        }
        assert!(Instant::now() < deadline, "the run did not end: {r:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn sync_and_wait(app: &TestApp, credential: &str, kind: &str, dry_run: bool) -> Value {
    let queued = sync_now(app, credential, kind, dry_run).await;
    finished(app, queued["id"].as_str().expect("a run id")).await
}

async fn reports(app: &TestApp) -> Vec<Value> {
    let r = app
        .admin(
            "{ providerReports(first: 1000) { id credentialId provider kind source userEntered from to model externalProject serviceTier lineItem requests inputTokens outputTokens amountUsd currency note } }",
            json!({}),
        )
        .await;
    r.data()["providerReports"]
        .as_array()
        .expect("a list")
        .clone()
}

fn num(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("a number, got {v}"))
}

async fn a_sync_writes_every_page_and_ten_reruns_change_nothing(backend: Backend) {
    let s = setup(backend, |seen| usage_api(seen, 1000)).await;
    let first = sync_and_wait(&s.app, &s.credential, "USAGE", false).await;
    assert_eq!(first["status"], "SUCCEEDED", "{first:#}");
    assert_eq!(first["trigger"], "MANUAL");
    assert_eq!(
        (first["from"].as_str(), first["to"].as_str()),
        (Some("2026-03-01T00:00:00Z"), Some("2026-03-02T00:00:00Z"))
    );
    assert_eq!(num(&first["pages"]), USAGE_PAGES);
    assert_eq!(num(&first["attempts"]), USAGE_PAGES);
    assert_eq!(
        (
            num(&first["rowsInserted"]),
            num(&first["rowsUpdated"]),
            num(&first["rowsUnchanged"])
        ),
        (3, 0, 0)
    );
    assert_eq!(
        first["attemptLog"].as_array().map(Vec::len),
        Some(USAGE_PAGES as usize)
    );
    // The plugin was asked for hourly buckets of exactly the window.
    let asked = s.provider.seen();
    let completions: Vec<&Seen> = asked
        .iter()
        .filter(|r| r.path == "/v1/organization/usage/completions")
        .collect();
    assert_eq!(
        completions.len(),
        2,
        "{:#?}",
        asked
            .iter()
            .map(|r| (&r.path, &r.query))
            .collect::<Vec<_>>()
    );
    assert_eq!(completions[0].param("bucket_width"), Some("1h"));
    assert_eq!(
        completions[0].param("start_time"),
        Some(T0.to_string().as_str())
    );

    let stored = reports(&s.app).await;
    assert_eq!(stored.len(), 3, "{stored:#?}");
    let gpt4o = stored
        .iter()
        .find(|r| r["model"] == "gpt-4o-2024-08-06")
        .expect("the gpt-4o bucket");
    assert_eq!(
        (
            num(&gpt4o["inputTokens"]),
            num(&gpt4o["outputTokens"]),
            num(&gpt4o["requests"])
        ),
        (1000, 500, 5)
    );
    assert_eq!(gpt4o["source"], "PROVIDER_SYNC");
    assert_eq!(gpt4o["userEntered"], false);
    assert_eq!(gpt4o["credentialId"], s.credential.as_str());
    assert_eq!(gpt4o["externalProject"], "proj_a");

    for _ in 0..10 {
        let again = sync_and_wait(&s.app, &s.credential, "USAGE", false).await;
        assert_eq!(again["status"], "SUCCEEDED");
        assert_eq!(
            (
                num(&again["rowsInserted"]),
                num(&again["rowsUpdated"]),
                num(&again["rowsUnchanged"])
            ),
            (0, 0, 3)
        );
    }
    let after = reports(&s.app).await;
    assert_eq!(after.len(), 3, "ten re-runs added nothing");
    let ids = |v: &[Value]| {
        let mut ids: Vec<String> = v.iter().map(|r| r["id"].to_string()).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&after), ids(&stored));
    let runs = s
        .app
        .admin("query($c: ID!) { syncRuns(filter: {credentialIds: [$c], statuses: [SUCCEEDED]}) { id } }", json!({"c": s.credential}))
        .await;
    assert_eq!(runs.data()["syncRuns"].as_array().map(Vec::len), Some(11));
}

async fn a_provider_correction_updates_its_bucket(backend: Backend) {
    let s = setup(backend, |seen| usage_api(seen, 1000)).await;
    sync_and_wait(&s.app, &s.credential, "USAGE", false).await;
    // The provider restates the first bucket.
    s.provider.respond(|seen| usage_api(seen, 1250));
    let corrected = sync_and_wait(&s.app, &s.credential, "USAGE", false).await;
    assert_eq!(
        (
            num(&corrected["rowsInserted"]),
            num(&corrected["rowsUpdated"]),
            num(&corrected["rowsUnchanged"])
        ),
        (0, 1, 2)
    );
    let stored = reports(&s.app).await;
    assert_eq!(stored.len(), 3);
    let gpt4o = stored
        .iter()
        .find(|r| r["model"] == "gpt-4o-2024-08-06")
        .expect("the gpt-4o bucket");
    assert_eq!(num(&gpt4o["inputTokens"]), 1250);
}

/// A worker takes a job it was never told about. On PostgreSQL workers are woken by
/// apalis's notification of each push, which a worker misses when its listener is not
/// (yet, or any longer) connected; here no push is announced at all (the trigger that
/// announces them is disabled), so only the workers' own polling finds the run. It
/// must do so well within the 30 s between a worker's heartbeats, which was the only
/// other time it looked.
async fn a_run_nobody_announced_is_still_taken(backend: Backend) {
    let s = setup(backend, |seen| usage_api(seen, 1000)).await;
    if backend == Backend::Postgres {
        let db = &s.app.state.db;
        sea_orm::ConnectionTrait::execute_unprepared(
            db,
            "ALTER TABLE apalis.jobs DISABLE TRIGGER notify_workers",
        )
        .await
        .expect("silencing apalis's notifications");
    }
    let started = Instant::now();
    let queued = sync_now(&s.app, &s.credential, "USAGE", true).await;
    let run = finished(&s.app, queued["id"].as_str().expect("a run id")).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run:#}");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(15),
        "an unannounced run waited {took:?}, as long as a heartbeat"
    );
}

async fn a_dry_run_reports_what_it_would_do_and_writes_nothing(backend: Backend) {
    let s = setup(backend, |seen| usage_api(seen, 1000)).await;
    let dry = sync_and_wait(&s.app, &s.credential, "USAGE", true).await;
    assert_eq!(dry["status"], "SUCCEEDED");
    assert_eq!(dry["dryRun"], true);
    assert_eq!(
        (num(&dry["rowsInserted"]), num(&dry["rowsUpdated"])),
        (3, 0)
    );
    assert!(
        reports(&s.app).await.is_empty(),
        "a dry run writes no reports"
    );
    // After a real run, a dry run against a corrected provider sees the update.
    sync_and_wait(&s.app, &s.credential, "USAGE", false).await;
    s.provider.respond(|seen| usage_api(seen, 7));
    let dry = sync_and_wait(&s.app, &s.credential, "USAGE", true).await;
    assert_eq!(
        (
            num(&dry["rowsInserted"]),
            num(&dry["rowsUpdated"]),
            num(&dry["rowsUnchanged"])
        ),
        (0, 1, 2)
    );
    let gpt4o = reports(&s.app)
        .await
        .into_iter()
        .find(|r| r["model"] == "gpt-4o-2024-08-06")
        .expect("a row");
    assert_eq!(
        num(&gpt4o["inputTokens"]),
        1000,
        "the dry run changed nothing"
    );
}

async fn rate_limits_wait_at_least_the_retry_after(backend: Backend) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let s = setup(backend, move |seen| {
        if seen.path == "/v1/organization/usage/completions"
            && seen.param("page").is_none()
            && counter.fetch_add(1, Ordering::SeqCst) == 0
        {
            return Reply::status(429, r#"{"error": {"message": "slow down"}}"#)
                .header("retry-after", "1");
        }
        usage_api(seen, 1000)
    })
    .await;
    let done = sync_and_wait(&s.app, &s.credential, "USAGE", false).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done:#}");
    assert_eq!(num(&done["attempts"]), USAGE_PAGES + 1);
    let log = done["attemptLog"].as_array().expect("a log");
    assert_eq!(log[0]["errorKind"], "RATE_LIMITED");
    assert!(num(&log[0]["waitMs"]) >= 1_000, "{:#}", log[0]);
    assert_eq!(log[1]["errorKind"], Value::Null);
    // The provider saw the retry no sooner than it asked.
    let seen = s.provider.seen();
    let first: Vec<&Seen> = seen
        .iter()
        .filter(|r| r.path == "/v1/organization/usage/completions" && r.param("page").is_none())
        .collect();
    assert_eq!(first.len(), 2);
    assert!(
        first[1].at - first[0].at >= Duration::from_millis(1_000),
        "{:?}",
        first[1].at - first[0].at
    );
}

async fn outages_back_off_exponentially_then_fail_the_run(backend: Backend) {
    let s = setup(backend, |_| {
        Reply::status(503, r#"{"error": {"message": "overloaded"}}"#)
    })
    .await;
    let done = sync_and_wait(&s.app, &s.credential, "USAGE", false).await;
    assert_eq!(done["status"], "FAILED");
    assert_eq!(done["errorKind"], "UNAVAILABLE");
    assert!(
        done["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("openai@")),
        "{done:#}"
    );
    // The test server allows 3 retries with a 100 ms first backoff (doubling, up to
    // 50% jitter): four attempts, waits of at least 100, 200 and 400 ms.
    let log = done["attemptLog"].as_array().expect("a log");
    assert_eq!(log.len(), 4, "{log:#?}");
    assert_eq!(num(&done["attempts"]), 4);
    let waits: Vec<i64> = log[..3].iter().map(|a| num(&a["waitMs"])).collect();
    for (wait, base) in waits.iter().zip([100, 200, 400]) {
        assert!(*wait >= base && *wait <= base * 3 / 2, "waits {waits:?}");
    }
    assert_eq!(
        log[3]["waitMs"],
        Value::Null,
        "no wait after the last attempt"
    );
    let seen = s.provider.seen();
    assert_eq!(seen.len(), 4);
    assert!(seen[3].at - seen[0].at >= Duration::from_millis(700));
    // The credential is not blamed for an outage.
    let c = s
        .app
        .admin(
            "query($id: ID!) { credential(id: $id) { status } }",
            json!({"id": s.credential}),
        )
        .await;
    assert_eq!(c.data()["credential"]["status"], "UNVERIFIED");
}

async fn connection_failures_back_off_like_outages(backend: Backend) {
    // A port that refuses connections, held for the whole test.
    let (_held, closed) = aispend_e2e::refusing_address();
    let port = closed.port();
    let allow = format!("127.0.0.1:{port}");
    let app = spawn_app_with(backend, |s| s.plugin_allow_hosts = vec![allow]).await;
    let r = app
        .admin(
            "mutation($i: AddCredentialInput!) { addCredential(input: $i) { id } }",
            json!({"i": {"provider": "openai", "label": "down", "secret": "sk-admin-0123456789abcdef", "baseUrl": format!("http://127.0.0.1:{port}")}}),
        )
        .await;
    let credential = r.data()["addCredential"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let done = sync_and_wait(&app, &credential, "USAGE", false).await;
    assert_eq!(
        (done["status"].as_str(), done["errorKind"].as_str()),
        (Some("FAILED"), Some("UNAVAILABLE")),
        "{done:#}"
    );
    let log = done["attemptLog"].as_array().expect("a log");
    assert_eq!(
        log.len(),
        4,
        "three retries after the first attempt: {log:#?}"
    );
    assert!(
        num(&log[0]["waitMs"]) >= 100 && num(&log[2]["waitMs"]) >= 400,
        "{log:#?}"
    );
}

async fn a_rejected_credential_is_not_retried_and_becomes_invalid(backend: Backend) {
    let s = setup(backend, |_| {
        Reply::status(
            401,
            r#"{"error": {"message": "Incorrect API key provided"}}"#,
        )
    })
    .await;
    let done = sync_and_wait(&s.app, &s.credential, "USAGE", false).await;
    assert_eq!(done["status"], "FAILED");
    assert_eq!(done["errorKind"], "UNAUTHORIZED");
    assert_eq!(num(&done["attempts"]), 1);
    assert_eq!(s.provider.seen().len(), 1);
    let c = s
        .app
        .admin(
            "query($id: ID!) { credential(id: $id) { status lastError } }",
            json!({"id": s.credential}),
        )
        .await;
    assert_eq!(c.data()["credential"]["status"], "INVALID");
    assert!(
        c.data()["credential"]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("Incorrect API key")),
        "{:#}",
        c.body
    );
}

async fn forbidden_also_invalidates_the_credential(backend: Backend) {
    let s = setup(backend, |_| {
        Reply::status(
            403,
            r#"{"error": {"message": "missing scope api.usage.read"}}"#,
        )
    })
    .await;
    let done = sync_and_wait(&s.app, &s.credential, "USAGE", false).await;
    assert_eq!(
        (done["status"].as_str(), done["errorKind"].as_str()),
        (Some("FAILED"), Some("FORBIDDEN"))
    );
    assert_eq!(num(&done["attempts"]), 1);
    let c = s
        .app
        .admin(
            "query($id: ID!) { credential(id: $id) { status } }",
            json!({"id": s.credential}),
        )
        .await;
    assert_eq!(c.data()["credential"]["status"], "INVALID");
}

async fn a_bad_response_fails_the_run_with_the_plugins_message(backend: Backend) {
    let s = setup(backend, |_| Reply::status(200, "<html>maintenance</html>")).await;
    let done = sync_and_wait(&s.app, &s.credential, "USAGE", false).await;
    assert_eq!(done["status"], "FAILED");
    assert_eq!(done["errorKind"], "BAD_RESPONSE", "{done:#}");
    assert_eq!(num(&done["attempts"]), 1, "a bad response is not retried");
    assert!(
        done["errorMessage"]
            .as_str()
            .is_some_and(|m| m.starts_with("plugin openai@")),
        "{done:#}"
    );
}

async fn concurrent_sync_now_joins_one_run_and_queues_another_behind_it(backend: Backend) {
    let s = setup(backend, |seen| {
        let mut r = usage_api(seen, 1000);
        r.delay = Some(Duration::from_millis(30));
        r
    })
    .await;
    let requests = (0..8).map(|_| sync_now(&s.app, &s.credential, "USAGE", false));
    let runs = futures::future::join_all(requests).await;
    let first = runs[0]["id"].as_str().expect("an id").to_owned();
    assert!(
        runs.iter().all(|r| r["id"] == first.as_str()),
        "identical requests join one run: {runs:#?}"
    );
    // A different window queues behind the first.
    let other = s
        .app
        .admin(
            &format!("mutation($c: ID!) {{ syncNow(credentialId: $c, from: \"2026-03-01T00:00:00Z\", to: \"2026-03-01T12:00:00Z\") {{ {RUN_FIELDS} }} }}"),
            json!({"c": s.credential}),
        )
        .await;
    let second = other.data()["syncNow"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    assert_ne!(second, first);
    let a = finished(&s.app, &first).await;
    let b = finished(&s.app, &second).await;
    assert_eq!(
        (a["status"].as_str(), b["status"].as_str()),
        (Some("SUCCEEDED"), Some("SUCCEEDED"))
    );
    // One at a time: the second started only after the first had finished.
    // (As instants: RFC 3339 strings with and without fractional seconds do not sort
    // as text, and both must be present.)
    let at = |v: &Value| -> chrono::DateTime<chrono::Utc> {
        v.as_str()
            .unwrap_or_else(|| panic!("a timestamp, got {v}"))
            .parse()
            .expect("an RFC 3339 time")
    };
    assert!(at(&b["startedAt"]) >= at(&a["finishedAt"]), "{a:#} {b:#}");
    assert_eq!(reports(&s.app).await.len(), 3);
}

async fn costs_are_synced_in_daily_buckets(backend: Backend) {
    let s = setup(backend, |seen| match (seen.path.as_str(), seen.param("page")) {
        ("/v1/organization/costs", None) => Reply::json(json!({
            "object": "page",
            "data": [{"object": "bucket", "start_time": T0, "end_time": T0 + 86400, "results": [
                {"object": "organization.costs.result", "amount": {"value": 12.125, "currency": "usd"}, "line_item": "gpt-4o-2024-08-06, input", "project_id": "proj_a"},
                {"object": "organization.costs.result", "amount": {"value": 0.5, "currency": "usd"}, "line_item": "web search", "project_id": null}]}],
            "has_more": false, "next_page": null
        })),
        _ => empty_page(),
    })
    .await;
    let done = sync_and_wait(&s.app, &s.credential, "COSTS", false).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done:#}");
    assert_eq!(done["kind"], "COSTS");
    assert_eq!(num(&done["rowsInserted"]), 2);
    let costs = s.provider.seen();
    assert_eq!(costs[0].param("bucket_width"), Some("1d"));
    let stored = reports(&s.app).await;
    let input = stored
        .iter()
        .find(|r| r["lineItem"] == "gpt-4o-2024-08-06, input")
        .expect("a cost row");
    assert_eq!(input["kind"], "COST");
    assert_eq!(input["amountUsd"], "12.125");
    assert_eq!(input["currency"], "USD");
}

async fn schedules_create_runs_for_each_kind_with_their_lookback(backend: Backend) {
    let s = setup_with(
        backend,
        |seen| usage_api(seen, 1000),
        |s| s.sync.scheduler = true,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let runs = loop {
        let r = s
            .app
            .admin("{ syncRuns(filter: {statuses: [SUCCEEDED, FAILED]}) { kind trigger status from to } }", json!({}))
            .await;
        let runs = r.data()["syncRuns"].as_array().expect("a list").clone();
        if runs.len() >= 2 {
            break runs;
        }
        assert!(Instant::now() < deadline, "no scheduled runs: {runs:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let by_kind = |k: &str| {
        runs.iter()
            .find(|r| r["kind"] == k)
            .cloned()
            .expect("a run of the kind")
    };
    let usage = by_kind("USAGE");
    let costs = by_kind("COSTS");
    assert_eq!(
        (usage["trigger"].as_str(), usage["status"].as_str()),
        (Some("SCHEDULED"), Some("SUCCEEDED"))
    );
    let span = |r: &Value| {
        let from = chrono::DateTime::parse_from_rfc3339(r["from"].as_str().expect("from"))
            .expect("a time");
        let to =
            chrono::DateTime::parse_from_rfc3339(r["to"].as_str().expect("to")).expect("a time");
        to - from
    };
    // 48 hours of whole hours (49 when now is inside an hour), 7 days of whole days.
    assert!((48..=49).contains(&span(&usage).num_hours()), "{usage:#}");
    assert!((7..=8).contains(&span(&costs).num_days()), "{costs:#}");
    // Defaults are reported, and a change is kept.
    let sched = s
        .app
        .admin("query($c: ID!) { syncSchedules(credentialId: $c) { kind enabled everySeconds lookbackSeconds isDefault } }", json!({"c": s.credential}))
        .await;
    assert_eq!(
        sched.data()["syncSchedules"],
        json!([
            {"kind": "USAGE", "enabled": true, "everySeconds": 3600, "lookbackSeconds": 172800, "isDefault": true},
            {"kind": "COSTS", "enabled": true, "everySeconds": 86400, "lookbackSeconds": 604800, "isDefault": true}
        ])
    );
    let changed = s
        .app
        .admin(
            "mutation($c: ID!) { updateSyncSchedule(input: {credentialId: $c, kind: USAGE, everySeconds: 900, lookbackSeconds: 7200}) { everySeconds lookbackSeconds isDefault } }",
            json!({"c": s.credential}),
        )
        .await;
    assert_eq!(
        changed.data()["updateSyncSchedule"],
        json!({"everySeconds": 900, "lookbackSeconds": 7200, "isDefault": false})
    );
    let too_often = s
        .app
        .admin(
            "mutation($c: ID!) { updateSyncSchedule(input: {credentialId: $c, kind: USAGE, everySeconds: 5}) { everySeconds } }",
            json!({"c": s.credential}),
        )
        .await;
    assert_eq!(too_often.code(), "INVALID_INPUT");
    assert_eq!(too_often.field().as_deref(), Some("input.everySeconds"));
}

async fn manual_providers_say_so_and_take_manual_entries(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let info = app
        .admin("{ manualEntry(provider: \"perplexity\") { provider plugin manualEntry help syncsUsage syncsCosts } }", json!({}))
        .await;
    let info = &info.data()["manualEntry"];
    assert_eq!(info["manualEntry"], true);
    assert_eq!(
        (info["syncsUsage"].as_bool(), info["syncsCosts"].as_bool()),
        (Some(false), Some(false))
    );
    assert!(
        info["help"].as_str().is_some_and(|h| !h.is_empty()),
        "{info:#}"
    );
    let openai = app
        .admin(
            "{ manualEntry(provider: \"openai\") { manualEntry syncsUsage } }",
            json!({}),
        )
        .await;
    assert_eq!(
        openai.data()["manualEntry"],
        json!({"manualEntry": false, "syncsUsage": true})
    );

    // syncNow on a manual-entry provider's credential explains, with the help text.
    let added = app
        .admin(
            "mutation { addCredential(input: {provider: \"perplexity\", label: \"team\", secret: \"pplx-0123456789abcdef\"}) { id } }",
            json!({}),
        )
        .await;
    let id = added.data()["addCredential"]["id"]
        .as_str()
        .expect("a credential id");
    let r = app
        .admin(
            &format!("mutation($c: ID!) {{ syncNow(credentialId: $c) {{ {RUN_FIELDS} }} }}"),
            json!({"c": id}),
        )
        .await;
    assert_eq!(r.code(), "INVALID_INPUT");
    let message = r.errors()[0].to_string();
    assert!(
        message.contains("recordManualUsage") && message.contains("perplexity@"),
        "{message}"
    );

    let project = app.create_project("research").await;
    let recorded = app
        .admin(
            "mutation($i: ManualUsageInput!) { recordManualUsage(input: $i) { id provider kind source userEntered from to model requests inputTokens outputTokens amountUsd currency note projectId } }",
            json!({"i": {"provider": "perplexity", "projectId": project, "from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z",
                          "model": "sonar-pro", "requests": 1200, "inputTokens": 300000, "outputTokens": 90000, "amountUsd": "42.50", "note": "from the invoice"}}),
        )
        .await;
    let entry = recorded.data()["recordManualUsage"].clone();
    assert_eq!(entry["source"], "MANUAL");
    assert_eq!(entry["kind"], "MANUAL");
    assert_eq!(entry["userEntered"], true);
    assert_eq!(entry["amountUsd"], "42.5");
    assert_eq!(entry["currency"], "USD");
    assert_eq!(entry["note"], "from the invoice");
    let id = entry["id"].as_str().expect("an id").to_owned();

    let updated = app
        .admin(
            "mutation($id: ID!, $i: ManualUsageInput!) { updateManualUsage(id: $id, input: $i) { id amountUsd requests } }",
            json!({"id": id, "i": {"provider": "perplexity", "projectId": project, "from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z",
                          "model": "sonar-pro", "requests": 1300, "amountUsd": "45"}}),
        )
        .await;
    assert_eq!(
        updated.data()["updateManualUsage"],
        json!({"id": id, "amountUsd": "45", "requests": 1300})
    );
    let bad = app
        .admin(
            "mutation($i: ManualUsageInput!) { recordManualUsage(input: $i) { id } }",
            json!({"i": {"provider": "perplexity", "from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z", "amountUsd": "-1"}}),
        )
        .await;
    assert_eq!(bad.code(), "INVALID_INPUT");
    assert_eq!(bad.fields(), ["input.to", "input.amountUsd"]);
    let listed = app
        .admin(
            "{ providerReports(filter: {sources: [MANUAL]}) { id userEntered } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed.data()["providerReports"],
        json!([{"id": id, "userEntered": true}])
    );
    let deleted = app
        .admin(
            "mutation($id: ID!) { deleteManualUsage(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(deleted.data()["deleteManualUsage"]["id"], id.as_str());
    let listed = app.admin("{ providerReports { id } }", json!({})).await;
    assert_eq!(listed.data()["providerReports"], json!([]));
}

async fn fixed_subscriptions_are_stored_with_their_period_totals(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let created = app
        .admin(
            "mutation { createSubscriptionCost(input: {provider: \"github-copilot\", plan: \"Copilot Business\", amountUsd: \"19\", period: MONTHLY, seats: 12, startsOn: \"2026-01-15\"}) { id provider plan amountUsd period seats periodTotalUsd startsOn endsOn } }",
            json!({}),
        )
        .await;
    let plan = created.data()["createSubscriptionCost"].clone();
    assert_eq!(plan["periodTotalUsd"], "228");
    assert_eq!(plan["startsOn"], "2026-01-15");
    assert_eq!(plan["endsOn"], Value::Null);
    let bad = app
        .admin(
            "mutation { createSubscriptionCost(input: {provider: \"openai\", plan: \"ChatGPT Team\", amountUsd: \"30\", period: YEARLY, startsOn: \"2026-02-30\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(bad.code(), "INVALID_INPUT");
    assert_eq!(bad.field().as_deref(), Some("input.startsOn"));
    let listed = app
        .admin("{ subscriptionCosts { id plan } }", json!({}))
        .await;
    assert_eq!(
        listed.data()["subscriptionCosts"],
        json!([{"id": plan["id"], "plan": "Copilot Business"}])
    );
    let deleted = app
        .admin(
            "mutation($id: ID!) { deleteSubscriptionCost(id: $id) { plan } }",
            json!({"id": plan["id"]}),
        )
        .await;
    assert_eq!(
        deleted.data()["deleteSubscriptionCost"]["plan"],
        "Copilot Business"
    );
}

async fn sync_runs_are_visible_only_to_their_credentials_administrators(backend: Backend) {
    let s = setup(backend, |seen| usage_api(seen, 1000)).await;
    let done = sync_and_wait(&s.app, &s.credential, "USAGE", false).await;
    let project = s.app.create_project("other").await;
    let scoped = s.app.create_token(Some(&project), &["ADMIN"]).await;
    let r = s
        .app
        .graphql(
            Some(&scoped),
            "query($id: ID!) { syncRun(id: $id) { id } }",
            json!({"id": done["id"]}),
        )
        .await;
    assert_eq!(r.code(), "NOT_FOUND");
    let r = s
        .app
        .graphql(Some(&scoped), "{ syncRuns { id } }", json!({}))
        .await;
    assert_eq!(r.data()["syncRuns"], json!([]));
    let r = s
        .app
        .graphql(
            Some(&scoped),
            &format!("mutation($c: ID!) {{ syncNow(credentialId: $c) {{ {RUN_FIELDS} }} }}"),
            json!({"c": s.credential}),
        )
        .await;
    assert_eq!(r.code(), "NOT_FOUND");
    let reader = s.app.create_token(None, &["READ"]).await;
    let r = s
        .app
        .graphql(Some(&reader), "{ syncRuns { id } }", json!({}))
        .await;
    assert_eq!(r.code(), "FORBIDDEN");
}

async fn two_processes_run_each_scheduled_sync_once(backend: Backend) {
    let key = "q83vEjdrIZ7A5n2i3mJ0dW4n1Kq3uYpQ8b6zLkM9xTs=";
    let s = setup_with(
        backend,
        |seen| usage_api(seen, 1000),
        |s| {
            s.sync.scheduler = true;
            s.master_key = Some(key.into());
        },
    )
    .await;
    let peer = s.app.spawn_peer().await;
    // Both schedule every 200 ms; each (credential, kind, tick) is inserted once. Wait
    // for the scheduled runs to end, then for three more passes of each process's
    // scheduler after that: none of them may insert a run again.
    let p = &peer;
    aispend_e2e::wait_until(
        "two scheduled runs to end",
        Duration::from_secs(30),
        move || async move {
            let r = p
                .admin(
                    "{ syncRuns(filter: {statuses: [SUCCEEDED, FAILED]}) { id } }",
                    json!({}),
                )
                .await;
            r.data()["syncRuns"].as_array().map_or(0, Vec::len) >= 2
        },
    )
    .await;
    s.app.wait_for_scheduler_passes(3).await;
    peer.wait_for_scheduler_passes(3).await;
    let r = peer
        .admin("{ syncRuns { kind trigger status } }", json!({}))
        .await;
    let runs = r.data()["syncRuns"].as_array().expect("a list").clone();
    let count = |k: &str| {
        runs.iter()
            .filter(|r| r["kind"] == k && r["trigger"] == "SCHEDULED")
            .count()
    };
    assert_eq!((count("USAGE"), count("COSTS")), (1, 1), "{runs:#?}");
    assert!(runs.iter().all(|r| r["status"] == "SUCCEEDED"), "{runs:#?}");
    let seen = s.provider.seen();
    let first_pages = seen
        .iter()
        .filter(|r| r.path == "/v1/organization/usage/completions" && r.param("page").is_none())
        .count();
    assert_eq!(first_pages, 1, "the provider was asked once");
    drop(peer);
}

backend_tests!(
    a_sync_writes_every_page_and_ten_reruns_change_nothing,
    a_run_nobody_announced_is_still_taken,
    a_provider_correction_updates_its_bucket,
    a_dry_run_reports_what_it_would_do_and_writes_nothing,
    rate_limits_wait_at_least_the_retry_after,
    outages_back_off_exponentially_then_fail_the_run,
    connection_failures_back_off_like_outages,
    a_rejected_credential_is_not_retried_and_becomes_invalid,
    forbidden_also_invalidates_the_credential,
    a_bad_response_fails_the_run_with_the_plugins_message,
    concurrent_sync_now_joins_one_run_and_queues_another_behind_it,
    costs_are_synced_in_daily_buckets,
    schedules_create_runs_for_each_kind_with_their_lookback,
    manual_providers_say_so_and_take_manual_entries,
    fixed_subscriptions_are_stored_with_their_period_totals,
    sync_runs_are_visible_only_to_their_credentials_administrators,
    two_processes_run_each_scheduled_sync_once
);
