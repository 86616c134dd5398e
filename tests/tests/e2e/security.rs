//! Regression tests of the security review (issue 19): each failed before its fix.

use crate::budgets::{create_budget, spend};
use aispend_e2e::{Backend, TestApp, WsEvent, backend_tests, db_tests, spawn_app};
use serde_json::{Value, json};
use std::time::Duration;

const COST_UPDATES: &str = "subscription { costUpdates { kind deltaUsd } }";

async fn token_with_id(app: &TestApp, project: Option<&str>, scopes: &[&str]) -> (String, String) {
    let r = app
        .admin(
            "mutation($p: ID, $s: [Scope!]!) { createApiToken(name: \"t\", projectId: $p, scopes: $s) { token apiToken { id } } }",
            json!({"p": project, "s": scopes}),
        )
        .await;
    let d = &r.data()["createApiToken"];
    (
        d["token"].as_str().expect("a token").to_owned(),
        d["apiToken"]["id"].as_str().expect("an id").to_owned(),
    )
}

async fn revoke(app: &TestApp, id: &str) {
    let r = app
        .admin(
            "mutation($id: ID!) { revokeApiToken(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    r.data();
}

/// Reads until the socket closes; the close code, failing after `wait`.
async fn close_code(ws: &mut aispend_e2e::WsClient, wait: Duration) -> u16 {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match ws.recv(left).await {
            Some(WsEvent::Closed(code, _)) => return code,
            Some(WsEvent::Message(_)) => continue,
            other => panic!("expected the socket to close, got {other:?}"),
        }
    }
}

async fn a_revoked_token_loses_its_open_socket_at_once(app: TestApp) {
    let (token, id) = token_with_id(&app, None, &["ADMIN"]).await;
    let mut ws = app.subscribe(&token, COST_UPDATES, json!({})).await;
    let project = app.create_project("p").await;
    // The server registers a subscription asynchronously: spend until it follows, so
    // the socket is known to be live before the revocation.
    let mut followed = false;
    for _ in 0..100 {
        spend(&app, &project, "1", None).await;
        match ws.recv(Duration::from_millis(300)).await {
            Some(WsEvent::Message(m)) => {
                assert_eq!(m["type"], "next", "{m}");
                assert_eq!(m["payload"]["data"]["costUpdates"]["kind"], "INGESTED");
                followed = true;
                break;
            }
            Some(other) => panic!("expected data, got {other:?}"),
            None => {}
        }
    }
    assert!(followed, "the subscription never delivered");
    revoke(&app, &id).await;
    assert_eq!(close_code(&mut ws, Duration::from_secs(10)).await, 4401);
}

async fn a_revoked_token_cannot_start_an_operation_on_its_socket(app: TestApp) {
    let (token, id) = token_with_id(&app, None, &["READ"]).await;
    let mut ws = app
        .ws_connect(json!({"Authorization": format!("Bearer {token}")}))
        .await;
    ws.expect_ack().await;
    revoke(&app, &id).await;
    // Whichever comes first (the revocation notice or this subscribe), nothing runs
    // for the revoked token: the socket closes with 4401 and no data arrives.
    ws.subscribe("9", "{ projects { id } }", json!({})).await;
    loop {
        match ws.recv(Duration::from_secs(10)).await {
            Some(WsEvent::Closed(code, _)) => {
                assert_eq!(code, 4401);
                break;
            }
            Some(WsEvent::Message(m)) => assert_ne!(m["type"], "next", "an operation ran: {m}"),
            other => panic!("expected a close, got {other:?}"),
        }
    }
}

/// A token revoked through another server process on the same database: the socket
/// closes within the re-check interval (10 s).
async fn a_token_revoked_by_another_process_loses_its_socket(backend: Backend) {
    let app = spawn_app(backend).await;
    let peer = app.spawn_peer().await;
    let (token, id) = token_with_id(&app, None, &["READ"]).await;
    let mut ws = app.subscribe(&token, COST_UPDATES, json!({})).await;
    revoke(&peer, &id).await;
    assert_eq!(close_code(&mut ws, Duration::from_secs(25)).await, 4401);
}

async fn one_request_cannot_run_thousands_of_analytics(app: TestApp) {
    let project = app.create_project("p").await;
    spend(&app, &project, "1", None).await;
    let aliases: Vec<String> = (0..2000)
        .map(|i| format!("a{i}: costSummary {{ basis }}"))
        .collect();
    let r = app
        .admin(&format!("{{ {} }}", aliases.join(" ")), json!({}))
        .await;
    assert_eq!(r.code(), "INVALID_INPUT");
    assert!(r.body["data"].is_null(), "nothing ran: {}", r.body);
    let analytics: Vec<String> = (0..21).map(|i| format!("t{i}: costTrend(filter: {{from: \"2026-01-01T00:00:00Z\", to: \"2026-01-02T00:00:00Z\"}}, granularity: DAY) {{ start }}")).collect();
    let r = app
        .admin(&format!("{{ {} }}", analytics.join(" ")), json!({}))
        .await;
    assert_eq!(r.code(), "INVALID_INPUT");
    assert!(
        r.errors()[0]["message"]
            .as_str()
            .unwrap()
            .contains("at most 20 analytics")
    );
    // Twenty is fine.
    let r = app
        .admin(&format!("{{ {} }}", analytics[..20].join(" ")), json!({}))
        .await;
    assert_eq!(r.data().as_object().unwrap().len(), 20);

    // A batched HTTP request holds at most ten operations.
    let batch: Vec<Value> = (0..11)
        .map(|_| json!({"query": "{ projects { id } }"}))
        .collect();
    let response = app
        .client
        .post(format!("{}/graphql", app.base_url))
        .bearer_auth(&app.admin_token)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(body.to_string().contains("at most 10 operations"), "{body}");

    // An empty batch is refused; a batch after leading whitespace is a batch.
    let send = |body: &'static str| {
        app.client
            .post(format!("{}/graphql", app.base_url))
            .bearer_auth(&app.admin_token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let response = send(" [ ] ").await.unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "INVALID_INPUT");
    assert!(
        body.to_string().contains("at least one operation"),
        "{body}"
    );
    let response = send("\n [{\"query\": \"{ version }\"}, {\"query\": \"{ projects { id } }\"}]")
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let answers = body.as_array().expect("one answer per operation");
    assert_eq!(answers.len(), 2, "{body}");
    assert!(answers[0]["data"]["version"].is_string(), "{body}");
    assert!(answers[1]["data"]["projects"].is_array(), "{body}");
}

async fn extreme_dates_are_refused_not_a_crash(app: TestApp) {
    for path in [
        "/api/metrics/trend?granularity=year&end_date=0001-01-01",
        "/api/metrics/summary?end_date=0001-01-01T00:00:00Z",
        "/api/metrics/trend?granularity=hour&start_date=9999-12-31T23:00:00Z&end_date=9999-12-31T23:59:59Z",
        "/api/usage?project_id=00000000-0000-0000-0000-000000000000&date_from=0001-01-01",
        "/export/usage.csv?to=9999-12-31T23:59:59Z",
    ] {
        let response = app
            .client
            .get(format!("{}{path}", app.base_url))
            .bearer_auth(&app.admin_token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert!((400..500).contains(&status), "{path}: {status}");
    }
    let r = app
        .admin(
            "{ costTrend(filter: {from: \"0001-01-01T00:00:00Z\"}, granularity: YEAR) { start } }",
            json!({}),
        )
        .await;
    assert_eq!(r.code(), "INVALID_INPUT");
    assert!(r.errors()[0]["message"].as_str().unwrap().contains("1970"));
    // The server is still there.
    assert_eq!(app.event_count().await, 0);
}

async fn a_base_url_with_a_multibyte_character_is_invalid_not_a_crash(app: TestApp) {
    let r = app
        .admin(
            "mutation($i: AddCredentialInput!) { addCredential(input: $i) { id } }",
            json!({"i": {"provider": "openai", "label": "x", "secret": "sk-admin-abcdefgh", "baseUrl": "http://é@evil.example"}}),
        )
        .await;
    assert_eq!(r.code(), "INVALID_INPUT");
    assert_eq!(r.field().as_deref(), Some("input.baseUrl"));
}

async fn a_webhook_url_is_shown_whole_only_to_admins(app: TestApp) {
    let project = app.create_project("p").await;
    let url = "https://hooks.slack.com/services/T000/B000/XXXXsecretpart";
    create_budget(
        &app,
        json!({"name": "b", "amountUsd": "10", "period": "TOTAL", "scope": {"projects": [project]},
               "webhookUrl": url, "webhookSecret": "0123456789abcdef0123"}),
    )
    .await;
    let q = "{ budgets { webhookUrl } }";
    let admin = app.admin(q, json!({})).await;
    assert_eq!(admin.data()["budgets"][0]["webhookUrl"], url);
    let reader = app.create_token(None, &["READ"]).await;
    let r = app.graphql(Some(&reader), q, json!({})).await;
    assert_eq!(
        r.data()["budgets"][0]["webhookUrl"],
        "https://hooks.slack.com/…"
    );
    assert!(!r.body.to_string().contains("secretpart"));
}

async fn a_project_token_never_sees_a_global_budgets_numbers(app: TestApp) {
    let mine = app.create_project("mine").await;
    let theirs = app.create_project("theirs").await;
    // A company-wide budget, nearly used up by the other project.
    create_budget(
        &app,
        json!({"name": "company total", "amountUsd": "100", "period": "TOTAL", "enforce": true}),
    )
    .await;
    create_budget(
        &app,
        json!({"name": "mine", "amountUsd": "50", "period": "TOTAL", "scope": {"projects": [mine]}}),
    )
    .await;
    spend(&app, &theirs, "99", None).await;
    let ingest = app.create_token(Some(&mine), &["INGEST"]).await;
    let r = app
        .graphql(
            Some(&ingest),
            "{ checkBudget(provider: \"acme\", model: \"acme-large\", estimatedCostUsd: \"5\") { decision hiddenBudgets budgets { name spentUsd } } }",
            json!({}),
        )
        .await;
    let check = &r.data()["checkBudget"];
    // The global budget still decides (99 + 5 > 100, enforced) ...
    assert_eq!(check["decision"], "BLOCK");
    // ... but only the project's own budget is named, with its own numbers.
    assert_eq!(check["hiddenBudgets"], 1);
    assert_eq!(check["budgets"], json!([{"name": "mine", "spentUsd": "0"}]));
    assert!(!r.body.to_string().contains("99"), "{}", r.body);

    let recorded = app
        .graphql(
            Some(&ingest),
            "mutation { recordUsage(input: {provider: \"acme\", model: \"acme-large\", reportedCostUsd: \"1\"}) { budgetCheck { hiddenBudgets budgets { name } } } }",
            json!({}),
        )
        .await;
    let check = &recorded.data()["recordUsage"]["budgetCheck"];
    assert_eq!(check["hiddenBudgets"], 1);
    assert_eq!(check["budgets"], json!([{"name": "mine"}]));
}

async fn random_tokens_do_not_fill_the_token_cache(app: TestApp) {
    let real = app.create_token(None, &["READ"]).await;
    let q = "{ projects { id } }";
    assert!(
        app.graphql(Some(&real), q, json!({}))
            .await
            .errors()
            .is_empty()
    );
    assert_eq!(app.state.auth.cached_tokens(), 1);
    for i in 0..200 {
        let r = app
            .graphql(Some(&format!("asp_guess{i:036}")), q, json!({}))
            .await;
        assert_eq!(r.code(), "UNAUTHORIZED");
    }
    assert_eq!(
        app.state.auth.cached_tokens(),
        1,
        "guesses are never cached"
    );
}

async fn a_long_export_stops_when_its_token_is_revoked(app: TestApp) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let project = app.create_project("p").await;
    // 20 pages of 1,000 events: more than the socket buffers hold while the client
    // below does not read.
    for batch in 0..2 {
        let inputs: Vec<Value> = (0..10_000)
            .map(|i| {
                json!({"projectId": project, "provider": "acme", "model": "acme-large",
                            "inputTokens": 10, "idempotencyKey": format!("e{batch}-{i}"),
                            "endpoint": "a-rather-long-endpoint-name-to-make-lines-longer",
                            "metadata": {"note": "x".repeat(200)}})
            })
            .collect();
        let r = app
            .admin(
                "mutation($i: [UsageInput!]!) { recordUsageBatch(inputs: $i) { events { id } } }",
                json!({"i": inputs}),
            )
            .await;
        r.data();
    }
    let (token, id) = token_with_id(&app, None, &["READ"]).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(app.address).await.unwrap();
    stream
        .write_all(
            format!(
                "GET /export/usage.jsonl HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut first = vec![0u8; 4096];
    let n = stream.read(&mut first).await.unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    revoke(&app, &id).await;
    let mut rest = vec![];
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut rest)).await;
    let body = [&first[..n], &rest[..]].concat();
    let text = String::from_utf8_lossy(&body);
    let lines = text.matches("\"occurred_at\"").count();
    assert!(
        lines < 20_000,
        "the export went on after the revocation ({lines} lines)"
    );
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "the body ended as if complete"
    );
}

async fn a_socket_runs_at_most_32_operations_and_a_token_holds_at_most_32_sockets(app: TestApp) {
    let token = app.create_token(None, &["READ"]).await;
    let mut ws = app.subscribe(&token, COST_UPDATES, json!({})).await;
    for i in 2..=32 {
        ws.subscribe(&i.to_string(), COST_UPDATES, json!({})).await;
    }
    // Completing one frees its place.
    ws.send(json!({"id": "32", "type": "complete"})).await;
    ws.subscribe("33", COST_UPDATES, json!({})).await;
    ws.subscribe("34", COST_UPDATES, json!({})).await;
    assert_eq!(close_code(&mut ws, Duration::from_secs(10)).await, 4429);

    let other = app.create_token(None, &["READ"]).await;
    let mut open = vec![];
    for _ in 0..32 {
        let mut s = app
            .ws_connect(json!({"Authorization": format!("Bearer {other}")}))
            .await;
        s.expect_ack().await;
        open.push(s);
    }
    let mut one_more = app
        .ws_connect(json!({"Authorization": format!("Bearer {other}")}))
        .await;
    assert_eq!(
        close_code(&mut one_more, Duration::from_secs(10)).await,
        4429
    );
    // A closed socket gives its place back.
    drop(open.pop());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut again = app
            .ws_connect(json!({"Authorization": format!("Bearer {other}")}))
            .await;
        match again.recv(Duration::from_secs(10)).await {
            Some(WsEvent::Message(m)) if m["type"] == "connection_ack" => break,
            Some(WsEvent::Closed(4429, _)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => panic!("expected an ack once a socket closed, got {other:?}"),
        }
    }
}

async fn oversized_messages_and_long_filter_lists_are_refused(app: TestApp) {
    let token = app.create_token(None, &["READ"]).await;
    let mut ws = app
        .ws_connect(json!({"Authorization": format!("Bearer {token}")}))
        .await;
    ws.expect_ack().await;
    ws.subscribe(
        "1",
        &format!(
            "subscription {{ costUpdates {{ kind }} }} # {}",
            "x".repeat(70_000)
        ),
        json!({}),
    )
    .await;
    match ws.recv(Duration::from_secs(10)).await {
        Some(WsEvent::Closed(code, _)) => assert_eq!(code, 1009, "message too big"),
        Some(WsEvent::Ended) => {}
        other => panic!("expected the socket to close, got {other:?}"),
    }
    let models: Vec<String> = (0..101).map(|i| format!("m{i}")).collect();
    let r = app
        .admin(
            "query($f: UsageFilter!) { costSummary(filter: $f) { basis } }",
            json!({"f": {"models": models}}),
        )
        .await;
    assert_eq!(r.code(), "INVALID_INPUT");
    assert!(
        r.errors()[0].to_string().contains("at most 100 values"),
        "{}",
        r.body
    );
}

/// `AISPEND_RATE_LIMIT_PER_TOKEN=0.05/3`: three requests at once, then one every 20
/// seconds, per token, on every route. (Slow enough that a loaded machine cannot refill
/// a request between the calls below; the refill itself is unit-tested.)
async fn a_token_over_its_rate_gets_429_with_retry_after(backend: Backend) {
    let app = aispend_e2e::spawn_app_with(backend, |s| {
        s.limits.rate_limit_per_token = Some("0.05/3".parse().unwrap());
    })
    .await;
    let token = app.create_token(None, &["ADMIN"]).await;
    let q = "{ projects { id } }";
    for _ in 0..3 {
        assert!(
            app.graphql(Some(&token), q, json!({}))
                .await
                .errors()
                .is_empty()
        );
    }
    let limited = app.graphql(Some(&token), q, json!({})).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.code(), "RATE_LIMITED");
    let wait = limited.errors()[0]["extensions"]["retryAfterSeconds"]
        .as_u64()
        .expect("retryAfterSeconds");
    assert!((1..=20).contains(&wait), "{wait}");
    let rest = app
        .client
        .get(format!("{}/api/filters", app.base_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 429);
    let header: u64 = rest.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&header), "{header}");
    let body: Value = rest.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
    // Another token is not affected.
    let other = app.create_token(None, &["READ"]).await;
    assert!(
        app.graphql(Some(&other), q, json!({}))
            .await
            .errors()
            .is_empty()
    );
}

async fn introspection_can_be_turned_off(backend: Backend) {
    let q = "{ __schema { queryType { name } } }";
    let on = spawn_app(backend).await;
    assert_eq!(
        on.admin(q, json!({})).await.data()["__schema"]["queryType"]["name"],
        "Query"
    );
    drop(on);
    let off =
        aispend_e2e::spawn_app_with(backend, |s| s.limits.graphql_introspection = false).await;
    let r = off.admin(q, json!({})).await;
    assert!(!r.errors().is_empty(), "{}", r.body);
    assert_eq!(r.code(), "INVALID_INPUT");
}

async fn control_characters_are_refused_with_the_field_and_nothing_is_stored(app: TestApp) {
    let project = app.create_project("p").await;
    for (field, input) in [
        ("input.model", json!({"model": "gpt\u{0}4o"})),
        (
            "input.endpoint",
            json!({"model": "gpt-4o", "endpoint": "check\u{1b}[31mout"}),
        ),
        ("input.user", json!({"model": "gpt-4o", "user": "u\u{85}1"})),
        (
            "input.idempotencyKey",
            json!({"model": "gpt-4o", "idempotencyKey": "k\u{7f}"}),
        ),
        (
            "input.metadata",
            json!({"model": "gpt-4o", "metadata": {"bad\u{0}key": 1}}),
        ),
        (
            "input.metadata.note",
            json!({"model": "gpt-4o", "metadata": {"note": "nul\u{0}"}}),
        ),
    ] {
        let mut input = input;
        input["projectId"] = json!(project);
        input["provider"] = json!("openai");
        input["inputTokens"] = json!(10);
        let r = app
            .admin(aispend_e2e::RECORD_USAGE, json!({"input": input}))
            .await;
        assert_eq!(r.code(), "INVALID_INPUT", "{field}: {}", r.body);
        assert_eq!(r.field().as_deref(), Some(field), "{}", r.body);
    }
    // Tabs and line breaks are fine in free-form metadata values.
    app.record(
        json!({"projectId": project, "provider": "openai", "model": "gpt-4o", "inputTokens": 1,
                      "metadata": {"note": "two\nlines\tand a tab"}}),
    )
    .await;
    // The REST route refuses the same.
    let response = app
        .client
        .post(format!("{}/api/usage", app.base_url))
        .bearer_auth(&app.admin_token)
        .json(
            &json!({"project_id": project, "provider": "openai", "model": "gpt\u{0}4o",
                      "input_tokens": 1, "output_tokens": 1}),
        )
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
    let r = app
        .admin(
            "mutation { createProject(name: \"a\\u0000b\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(r.code(), "INVALID_INPUT");
    assert_eq!(app.event_count().await, 1);
}

db_tests!(
    control_characters_are_refused_with_the_field_and_nothing_is_stored,
    a_socket_runs_at_most_32_operations_and_a_token_holds_at_most_32_sockets,
    oversized_messages_and_long_filter_lists_are_refused,
    a_revoked_token_loses_its_open_socket_at_once,
    a_revoked_token_cannot_start_an_operation_on_its_socket,
    one_request_cannot_run_thousands_of_analytics,
    extreme_dates_are_refused_not_a_crash,
    a_base_url_with_a_multibyte_character_is_invalid_not_a_crash,
    a_webhook_url_is_shown_whole_only_to_admins,
    a_project_token_never_sees_a_global_budgets_numbers,
    random_tokens_do_not_fill_the_token_cache,
    a_long_export_stops_when_its_token_is_revoked,
    one_projects_ingest_cannot_overflow_the_shared_totals,
);

/// One project's ingest token cannot overflow what every project shares (issue 19
/// item 2): 200 events at the largest cost an event may report ($100 million each,
/// twice `i64::MAX` nano-dollars together) land in the daily rollup of every project
/// together and in a company-wide budget's counter. Another project's ingest into the
/// same rows still works, and every total stays exact.
async fn one_projects_ingest_cannot_overflow_the_shared_totals(app: TestApp) {
    let attacker = app.create_project("attacker").await;
    let victim = app.create_project("victim").await;
    let budget = create_budget(
        &app,
        json!({"name": "company", "amountUsd": "1000000", "period": "TOTAL", "thresholds": [50, 100]}),
    )
    .await;
    let ingest = app.create_token(Some(&attacker), &["INGEST"]).await;
    let event = json!({
        "provider": "acme", "model": "acme-large", "inputTokens": 1_000_000_000_000_i64,
        "reportedCostUsd": "100000000", "occurredAt": "2026-12-08T10:00:00Z",
    });
    // Four batches of 50: each fits an i64 by itself, the second already takes the
    // shared rows past it.
    for _ in 0..4 {
        let r = app
            .graphql(
                Some(&ingest),
                "mutation($i: [UsageInput!]!) { recordUsageBatch(inputs: $i) { accepted } }",
                json!({"i": vec![event.clone(); 50]}),
            )
            .await;
        assert_eq!(r.data()["recordUsageBatch"]["accepted"], 50, "{}", r.body);
    }
    // The other project records into the very same shared rows.
    let theirs = app.create_token(Some(&victim), &["INGEST", "READ"]).await;
    let r = app
        .graphql(
            Some(&theirs),
            "mutation { recordUsage(input: {provider: \"acme\", model: \"acme-large\", inputTokens: 7, reportedCostUsd: \"1.5\", occurredAt: \"2026-12-08T11:00:00Z\"}) { event { costUsd } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        r.data()["recordUsage"]["event"]["costUsd"],
        "1.5",
        "{}",
        r.body
    );

    // Whole UTC days: read from the rollups, the model breakdown from the one shared
    // by every project.
    let window = json!({"from": "2026-12-08T00:00:00Z", "to": "2026-12-09T00:00:00Z"});
    let r = app
        .admin(
            "query($f: UsageFilter) { costSummary(filter: $f) { totals { costUsd inputTokens events } } \
             costBreakdown(filter: $f, groupBy: [MODEL]) { model totals { costUsd inputTokens events } } }",
            json!({"f": window}),
        )
        .await;
    let total =
        json!({"costUsd": "20000000001.5", "inputTokens": 200_000_000_000_007_i64, "events": 201});
    assert_eq!(r.data()["costSummary"]["totals"], total, "{}", r.body);
    assert_eq!(
        r.data()["costBreakdown"],
        json!([{"model": "acme-large", "totals": total}]),
        "{}",
        r.body
    );
    // A window with edges inside the day adds raw events to rollup pieces.
    let r = app
        .admin(
            "query($f: UsageFilter) { costSummary(filter: $f) { totals { costUsd } } }",
            json!({"f": {"from": "2026-12-08T09:30:00Z", "to": "2026-12-08T10:30:00Z"}}),
        )
        .await;
    assert_eq!(
        r.data()["costSummary"]["totals"]["costUsd"],
        "20000000000",
        "{}",
        r.body
    );
    // The victim's own view holds only its own event.
    let r = app
        .graphql(
            Some(&theirs),
            "query($f: UsageFilter) { costSummary(filter: $f) { totals { costUsd } } }",
            json!({"f": window}),
        )
        .await;
    assert_eq!(
        r.data()["costSummary"]["totals"]["costUsd"],
        "1.5",
        "{}",
        r.body
    );
    // The company-wide counter is exact and crossed both thresholds once each.
    let r = app
        .admin(
            "query($id: ID!) { budget(id: $id) { status { spentUsd } } }",
            json!({"id": budget}),
        )
        .await;
    assert_eq!(
        r.data()["budget"]["status"]["spentUsd"],
        "20000000001.5",
        "{}",
        r.body
    );
    let thresholds: Vec<i64> = crate::budgets::alerts_of(&app, &budget)
        .await
        .iter()
        .filter_map(|a| a["threshold"].as_i64())
        .collect();
    assert_eq!(thresholds, vec![50, 100]);
}

/// A delivery error never shows the webhook URL's path (Slack-style URLs hold their
/// secret there): the receiver below accepts connections and drops them.
async fn a_failed_delivery_does_not_show_the_url_path(backend: Backend) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    let app = aispend_e2e::spawn_app_with(backend, |s| {
        s.plugin_allow_hosts = vec![addr.to_string()];
    })
    .await;
    let project = app.create_project("p").await;
    let budget = create_budget(
        &app,
        json!({"name": "b", "amountUsd": "1", "period": "TOTAL", "thresholds": [50],
               "scope": {"projects": [project]},
               "webhookUrl": format!("http://{addr}/services/T0/B0/secretpathpart"),
               "webhookSecret": "0123456789abcdef0123"}),
    )
    .await;
    spend(&app, &project, "1", None).await;
    let q = r#"query($f: AlertFilter) { alerts(filter: $f) { deliveries { error } } }"#;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let error = loop {
        let r = app.admin(q, json!({"f": {"budgets": [budget]}})).await;
        if let Some(e) = r.data()["alerts"][0]["deliveries"][0]["error"].as_str() {
            break e.to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery attempt"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!error.is_empty());
    assert!(!error.contains("secretpathpart"), "{error}");
}

backend_tests!(
    a_token_over_its_rate_gets_429_with_retry_after,
    introspection_can_be_turned_off,
    a_token_revoked_by_another_process_loses_its_socket,
    a_failed_delivery_does_not_show_the_url_path,
);
