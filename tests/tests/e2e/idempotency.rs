//! Never double-counted: an idempotency key stores an event once, however it arrives.

use aispend_e2e::{RECORD_USAGE, TestApp, db_tests};
use serde_json::json;

async fn a_repeated_key_returns_the_stored_event_and_stores_nothing(app: TestApp) {
    let project = app.create_project("p").await;
    let input = json!({"projectId": project, "provider": "openai", "model": "gpt-4o", "inputTokens": 1000, "idempotencyKey": "req-1"});
    let first = app.record(input.clone()).await;
    let mut changed = input.clone();
    changed["inputTokens"] = json!(999_999);
    let second = app.record(changed).await;
    assert_eq!(first["duplicate"], false);
    assert_eq!(second["duplicate"], true);
    assert_eq!(second["event"]["id"], first["event"]["id"]);
    assert_eq!(
        second["event"]["inputTokens"], 1000,
        "the stored event is returned, not the retry"
    );
    assert_eq!(app.event_count().await, 1);
}

async fn fifty_identical_concurrent_requests_store_one_event(app: TestApp) {
    let project = app.create_project("p").await;
    let input = json!({"projectId": project, "provider": "openai", "model": "gpt-4o", "inputTokens": 1000, "idempotencyKey": "burst"});
    let requests = (0..50).map(|_| app.admin(RECORD_USAGE, json!({"input": input})));
    let responses = futures::future::join_all(requests).await;
    let payloads: Vec<_> = responses
        .iter()
        .map(|r| r.data()["recordUsage"].clone())
        .collect();
    let stored = payloads.iter().filter(|p| p["duplicate"] == false).count();
    assert_eq!(stored, 1, "exactly one request stores the event");
    let ids: std::collections::HashSet<String> = payloads
        .iter()
        .map(|p| p["event"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "every response names the same event");
    assert_eq!(app.event_count().await, 1);
}

async fn the_same_key_in_two_projects_is_two_events(app: TestApp) {
    let a = app.create_project("a").await;
    let b = app.create_project("b").await;
    let input = |p: &str| json!({"projectId": p, "provider": "openai", "model": "gpt-4o", "inputTokens": 1, "idempotencyKey": "shared"});
    assert_eq!(app.record(input(&a)).await["duplicate"], false);
    assert_eq!(app.record(input(&b)).await["duplicate"], false);
    assert_eq!(app.event_count().await, 2);
}

async fn a_key_repeated_inside_one_batch_is_stored_once(app: TestApp) {
    let project = app.create_project("p").await;
    let input = json!({"projectId": project, "provider": "openai", "model": "gpt-4o", "inputTokens": 1, "idempotencyKey": "twice"});
    let r = app
        .admin(
            "mutation($i: [UsageInput!]!) { recordUsageBatch(inputs: $i) { accepted duplicates results { duplicate event { id } } } }",
            json!({"i": [input, input, input]}),
        )
        .await;
    let b = &r.data()["recordUsageBatch"];
    assert_eq!(
        (b["accepted"].as_i64(), b["duplicates"].as_i64()),
        (Some(1), Some(2))
    );
    assert_eq!(
        b["results"][1]["event"]["id"],
        b["results"][0]["event"]["id"]
    );
    assert_eq!(
        b["results"][2]["event"]["id"],
        b["results"][0]["event"]["id"]
    );
    assert_eq!(app.event_count().await, 1);
}

/// A batch large enough for PostgreSQL's plain insert (from 256 events), holding keys
/// an earlier batch stored and one key twice: the plain insert meets the unique index
/// and the batch is stored through `ON CONFLICT`, only its new keys, once.
async fn a_large_batch_with_stored_and_repeated_keys_stores_only_the_new_ones(app: TestApp) {
    let project = app.create_project("p").await;
    let input = |i: usize, tokens: usize| json!({"projectId": project, "provider": "openai", "model": "gpt-4o", "inputTokens": tokens, "idempotencyKey": format!("k{i:03}")});
    let batch = |inputs: Vec<serde_json::Value>| {
        app.admin(
            "mutation($i: [UsageInput!]!) { recordUsageBatch(inputs: $i) { accepted duplicates results { duplicate event { id inputTokens } } } }",
            json!({"i": inputs}),
        )
    };
    let first = batch((0..300).map(|i| input(i, i + 1)).collect()).await;
    let first = &first.data()["recordUsageBatch"];
    assert_eq!(
        (first["accepted"].as_i64(), first["duplicates"].as_i64()),
        (Some(300), Some(0))
    );
    // Keys 200..299 are stored already (sent again with other tokens), 300..499 are
    // new, and 450 comes twice.
    let mut inputs: Vec<serde_json::Value> = (200..500)
        .map(|i| input(i, if i < 300 { 999_999 } else { i + 1 }))
        .collect();
    inputs.push(input(450, 999_999));
    let second = batch(inputs).await;
    let second = &second.data()["recordUsageBatch"];
    assert_eq!(
        (second["accepted"].as_i64(), second["duplicates"].as_i64()),
        (Some(200), Some(101))
    );
    let results = second["results"].as_array().unwrap();
    assert_eq!(results[0]["duplicate"], true);
    assert_eq!(
        results[0]["event"]["id"], first["results"][200]["event"]["id"],
        "a stored key returns the event stored first"
    );
    assert_eq!(results[0]["event"]["inputTokens"], 201);
    assert_eq!(results[100]["duplicate"], false);
    assert_eq!(results[300]["duplicate"], true);
    assert_eq!(results[300]["event"]["id"], results[250]["event"]["id"]);
    assert_eq!(app.event_count().await, 500);
    let totals = app
        .admin(
            "{ costSummary(view: TRACKED) { totals { requests inputTokens } } }",
            json!({}),
        )
        .await;
    let totals = &totals.data()["costSummary"]["totals"];
    assert_eq!(totals["requests"], 500, "every key counted once");
    assert_eq!(totals["inputTokens"], (1..=500).sum::<usize>());
}

/// `POST /api/usage` with an optional `Idempotency-Key` header; status, header
/// `Idempotent-Replayed`, body.
async fn post_usage(
    app: &TestApp,
    key: Option<&str>,
    body: &serde_json::Value,
) -> (u16, Option<String>, serde_json::Value) {
    let mut r = app
        .client
        .post(format!("{}/api/usage", app.base_url))
        .bearer_auth(&app.admin_token)
        .json(body);
    if let Some(k) = key {
        r = r.header("Idempotency-Key", k);
    }
    let response = r.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (
        status,
        replayed,
        response.json().await.expect("a JSON body"),
    )
}

async fn a_retried_rest_post_is_counted_once(app: TestApp) {
    let project = app.create_project("portal").await;
    let body = json!({"project_id": project, "provider": "openai", "model": "gpt-4o",
                      "input_tokens": 1000, "output_tokens": 10});
    // A client retrying after a lost answer sends the same request with the same key.
    let (status, replayed, first) = post_usage(&app, Some("retry-1"), &body).await;
    assert_eq!((status, replayed), (201, None), "{first}");
    let mut retry = body.clone();
    retry["input_tokens"] = json!(999_999);
    let (status, replayed, second) = post_usage(&app, Some("retry-1"), &retry).await;
    assert_eq!(
        (status, replayed.as_deref()),
        (200, Some("true")),
        "{second}"
    );
    assert_eq!(second, first, "the stored event is returned, not the retry");
    assert_eq!(app.event_count().await, 1);

    // The key may travel in the body instead, and is the same key GraphQL uses.
    let mut keyed = body.clone();
    keyed["idempotency_key"] = json!("retry-2");
    let (status, _, by_body) = post_usage(&app, None, &keyed).await;
    assert_eq!(status, 201, "{by_body}");
    let (status, _, again) = post_usage(&app, Some("retry-2"), &keyed).await;
    assert_eq!((status, &again), (200, &by_body));
    let gql = app
        .record(json!({"projectId": project, "provider": "openai", "model": "gpt-4o", "inputTokens": 5, "idempotencyKey": "retry-2"}))
        .await;
    assert_eq!(gql["duplicate"], true);
    assert_eq!(gql["event"]["id"], by_body["id"]);
    assert_eq!(app.event_count().await, 2);

    // Without a key, each POST is an event (the client asked for no deduplication).
    assert_eq!(post_usage(&app, None, &body).await.0, 201);
    assert_eq!(post_usage(&app, None, &body).await.0, 201);
    assert_eq!(app.event_count().await, 4);

    // Two different keys, a key of the wrong type or too long: 422, nothing stored.
    let (status, _, e) = post_usage(&app, Some("header-key"), &keyed).await;
    assert_eq!(status, 422, "{e}");
    assert_eq!(e["details"][0]["path"], json!(["idempotency_key"]), "{e}");
    let mut wrong = body.clone();
    wrong["idempotency_key"] = json!(42);
    let (status, _, e) = post_usage(&app, None, &wrong).await;
    assert_eq!(status, 422, "{e}");
    assert_eq!(e["details"][0]["path"], json!(["idempotency_key"]), "{e}");
    let (status, _, e) = post_usage(&app, Some(&"k".repeat(201)), &body).await;
    assert_eq!(status, 422, "{e}");
    assert_eq!(e["details"][0]["path"], json!(["idempotency_key"]), "{e}");
    assert_eq!(app.event_count().await, 4);
}

db_tests!(
    a_repeated_key_returns_the_stored_event_and_stores_nothing,
    fifty_identical_concurrent_requests_store_one_event,
    the_same_key_in_two_projects_is_two_events,
    a_key_repeated_inside_one_batch_is_stored_once,
    a_large_batch_with_stored_and_repeated_keys_stores_only_the_new_ones,
    a_retried_rest_post_is_counted_once,
);
