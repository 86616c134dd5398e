//! Prometheus metrics (`GET /metrics`, issue 14 part 2): counters after real ingest,
//! latency histograms, bounded labels, and the optional token.

use crate::budgets::{create_budget, spend};
use aispend_e2e::fake_provider::{FakeProvider, Reply};
use aispend_e2e::{Backend, TestApp, backend_tests, db_tests, spawn_app_with};
use rust_decimal::Decimal;
use serde_json::json;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

async fn scrape(app: &TestApp, token: Option<&str>) -> (reqwest::StatusCode, String) {
    let mut r = app.client.get(format!("{}/metrics", app.base_url));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let response = r.send().await.expect("the server answers");
    (response.status(), response.text().await.unwrap())
}

/// The value of the sample with exactly this name and label set (labels in the order
/// they are rendered).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Scrapes until the series has the value (a counter is bumped right after the state
/// a test can observe is written); panics with the last scrape after a deadline.
async fn wait_for_sample(app: &TestApp, series: &str, value: f64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, text) = scrape(app, None).await;
        if sample(&text, series) == Some(value) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "`{series}` never reached {value}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn spend_and_tokens_are_counted_by_provider_model_and_project(app: TestApp) {
    let project = app.create_project("p").await;
    let mut cost = Decimal::ZERO;
    for (i, (input, output)) in [(1000, 200), (3000, 100)].into_iter().enumerate() {
        let r = app
            .record(
                json!({"projectId": project, "provider": "openai", "model": "gpt-4o",
                "inputTokens": input, "outputTokens": output, "cacheReadTokens": 50,
                "endpoint": format!("feature-{i}"), "user": format!("user-{i}"),
                "idempotencyKey": format!("k{i}")}),
            )
            .await;
        cost += Decimal::from_str(r["event"]["costUsd"].as_str().expect("priced")).unwrap();
    }
    // A retry is a duplicate and counts nothing.
    app.record(
        json!({"projectId": project, "provider": "openai", "model": "gpt-4o",
        "inputTokens": 1000, "outputTokens": 200, "idempotencyKey": "k0"}),
    )
    .await;

    let (status, text) = scrape(&app, None).await;
    assert_eq!(status, 200);
    let base = format!(r#"provider="openai",model="gpt-4o",project="{project}""#);
    let nanos = (cost * Decimal::from(1_000_000_000)).to_string();
    assert_eq!(
        sample(&text, &format!("aispend_spend_nano_usd_total{{{base}}}")),
        Some(nanos.parse().unwrap()),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!(r#"aispend_tokens_total{{{base},class="input"}}"#)
        ),
        Some(4000.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!(r#"aispend_tokens_total{{{base},class="output"}}"#)
        ),
        Some(300.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!(r#"aispend_tokens_total{{{base},class="cache_read"}}"#)
        ),
        Some(100.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!(r#"aispend_usage_events_total{{{base},source="API"}}"#)
        ),
        Some(2.0)
    );
    // Ingest and GraphQL latency, by operation.
    assert_eq!(
        sample(
            &text,
            r#"aispend_ingest_duration_seconds_count{operation="recordUsage",outcome="ok"}"#
        ),
        Some(3.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            r#"aispend_graphql_duration_seconds_count{operation="recordUsage"}"#
        )
        .is_some_and(|n| n >= 3.0),
        "{text}"
    );
    assert!(text.contains("# TYPE aispend_graphql_duration_seconds histogram"));
    assert_eq!(sample(&text, "aispend_live_subscribers"), Some(0.0));
    // No unbounded label values: no endpoint, user or idempotency key anywhere.
    for needle in ["feature-0", "user-1", "\"k0\"", "endpoint=", "user="] {
        assert!(
            !text.contains(needle),
            "`{needle}` leaked into a label:\n{text}"
        );
    }
}

async fn otlp_spans_are_counted_by_outcome(app: TestApp) {
    let project = app.create_project("p").await;
    let token = app.create_token(Some(&project), &["INGEST"]).await;
    let now = aispend_e2e::now().timestamp_nanos_opt().unwrap();
    let span = |id: &str, attrs: serde_json::Value| {
        json!({"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": id,
               "startTimeUnixNano": (now - 1_000_000_000).to_string(),
               "endTimeUnixNano": now.to_string(), "attributes": attrs})
    };
    let usage = json!([
        {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
        {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "10"}},
        {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "2"}}
    ]);
    let body = json!({"resourceSpans": [{"scopeSpans": [{"spans": [
        span("00f067aa0ba902b7", usage),
        span("00f067aa0ba902b8", json!([])),
    ]}]}]})
    .to_string();
    for _ in 0..2 {
        let r = app
            .client
            .post(format!("{}/v1/traces", app.base_url))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let (_, text) = scrape(&app, None).await;
    for (outcome, n) in [("stored", 1.0), ("duplicate", 1.0), ("skipped", 2.0)] {
        assert_eq!(
            sample(
                &text,
                &format!(r#"aispend_otlp_spans_total{{outcome="{outcome}"}}"#)
            ),
            Some(n),
            "{outcome}: {text}"
        );
    }
    let base = format!(r#"provider="openai",model="gpt-4o",project="{project}""#);
    assert_eq!(
        sample(
            &text,
            &format!(r#"aispend_usage_events_total{{{base},source="OTLP"}}"#)
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"aispend_ingest_duration_seconds_count{operation="otlp",outcome="ok"}"#
        ),
        Some(2.0)
    );
}

/// With `AISPEND_METRICS_TOKEN` set, only that token reads `/metrics` (an admin API
/// token does not).
async fn a_metrics_token_protects_the_endpoint(backend: Backend) {
    let app = aispend_e2e::spawn_app_with(backend, |s| {
        s.integrations.metrics_token = Some("scrape-secret".into());
    })
    .await;
    assert_eq!(scrape(&app, None).await.0, 401);
    assert_eq!(scrape(&app, Some("wrong")).await.0, 401);
    let admin = app.admin_token.clone();
    assert_eq!(scrape(&app, Some(&admin)).await.0, 401);
    let (status, text) = scrape(&app, Some("scrape-secret")).await;
    assert_eq!(status, 200);
    assert!(
        text.contains("# TYPE aispend_live_subscribers gauge"),
        "{text}"
    );
}

/// A sync whose provider rejects the credential: one failed run, one plugin error of
/// kind `UNAUTHORIZED`.
async fn sync_runs_and_plugin_errors_are_counted(backend: Backend) {
    let provider = FakeProvider::start(|_| {
        Reply::status(
            401,
            r#"{"error": {"message": "Incorrect API key provided"}}"#,
        )
    })
    .await;
    let allow = provider.host_port();
    let app = spawn_app_with(backend, |s| s.plugin_allow_hosts = vec![allow]).await;
    let r = app
        .admin(
            "mutation($i: AddCredentialInput!) { addCredential(input: $i) { id } }",
            json!({"i": {"provider": "openai", "label": "main", "secret": "sk-admin-0123456789abcdef", "baseUrl": provider.base_url()}}),
        )
        .await;
    let credential = r.data()["addCredential"]["id"].as_str().unwrap().to_owned();
    let r = app
        .admin(
            "mutation($c: ID!) { syncNow(credentialId: $c, kind: USAGE, from: \"2026-03-01T00:00:00Z\", to: \"2026-03-02T00:00:00Z\") { id } }",
            json!({"c": credential}),
        )
        .await;
    assert!(r.data()["syncNow"]["id"].is_string(), "{}", r.body);
    wait_for_sample(
        &app,
        r#"aispend_sync_runs_total{provider="openai",outcome="failed"}"#,
        1.0,
    )
    .await;
    wait_for_sample(
        &app,
        r#"aispend_plugin_errors_total{plugin="openai",kind="UNAUTHORIZED"}"#,
        1.0,
    )
    .await;
}

/// A webhook that fails once and then succeeds: one failed and one delivered attempt.
async fn alert_deliveries_are_counted_by_channel_and_outcome(backend: Backend) {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, receiver).await });
    let app = spawn_app_with(backend, |s| s.plugin_allow_hosts = vec![addr.to_string()]).await;
    let project = app.create_project("p").await;
    create_budget(
        &app,
        json!({"name": "b", "amountUsd": "10", "period": "DAILY", "thresholds": [50],
               "scope": {"projects": [project]},
               "webhookUrl": format!("http://{addr}/hook"), "webhookSecret": "whsec-metrics-0123456789"}),
    )
    .await;
    spend(&app, &project, "6", None).await;
    wait_for_sample(
        &app,
        r#"aispend_alert_deliveries_total{channel="webhook",outcome="delivered"}"#,
        1.0,
    )
    .await;
    let (_, text) = scrape(&app, None).await;
    assert_eq!(
        sample(
            &text,
            r#"aispend_alert_deliveries_total{channel="webhook",outcome="failed"}"#
        ),
        Some(1.0),
        "{text}"
    );
}

db_tests!(
    spend_and_tokens_are_counted_by_provider_model_and_project,
    otlp_spans_are_counted_by_outcome,
);

backend_tests!(
    a_metrics_token_protects_the_endpoint,
    sync_runs_and_plugin_errors_are_counted,
    alert_deliveries_are_counted_by_channel_and_outcome,
);
