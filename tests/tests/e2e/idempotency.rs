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

db_tests!(
    a_repeated_key_returns_the_stored_event_and_stores_nothing,
    fifty_identical_concurrent_requests_store_one_event,
    the_same_key_in_two_projects_is_two_events,
    a_key_repeated_inside_one_batch_is_stored_once,
);
