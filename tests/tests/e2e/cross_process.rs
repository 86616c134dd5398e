//! Two server processes on one PostgreSQL database: a subscriber connected to one
//! receives what the other ingested (LISTEN/NOTIFY), budgets changed through one are
//! counted by the other, and an alert fired by one reaches the other's subscribers.
//! PostgreSQL only: on SQLite one process fans out in memory.

use crate::budgets::{alerts_of, create_budget, spend};
use crate::subscriptions::{ALERT_RAISED, COST, sync};
use aispend_e2e::{Backend, spawn_app};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

async fn a_subscriber_on_one_server_receives_what_another_ingested() {
    let a = spawn_app(Backend::Postgres).await;
    let b = a.spawn_peer().await;
    let project = a.create_project("checkout").await;
    spend(&a, &project, "10", None).await;

    // Subscribed on B; everything below is ingested through A.
    let mut ws = b
        .subscribe(&b.admin_token, COST, json!({"f": {"projects": [project]}}))
        .await;
    let (first, keys) = sync(&a, &mut ws, &project, "0.5").await;
    let k = keys
        .iter()
        .position(|key| first["events"][0]["idempotencyKey"] == key.as_str())
        .expect("one of A's events")
        + 1;
    let mut running = rust_decimal::Decimal::from(10)
        + rust_decimal::Decimal::new(5, 1) * rust_decimal::Decimal::from(k);
    let today = |v: &serde_json::Value| -> rust_decimal::Decimal {
        v["today"]["costUsd"].as_str().unwrap().parse().unwrap()
    };
    assert_eq!(
        today(&first),
        running,
        "totals seeded on B include A's events"
    );
    let mut left = keys.len() - k;
    while left > 0 {
        let u = ws.next_data("1", WAIT).await["costUpdates"].clone();
        let n = u["eventCount"].as_u64().unwrap() as usize;
        running += rust_decimal::Decimal::new(5, 1) * rust_decimal::Decimal::from(n);
        left -= n;
        assert_eq!(today(&u), running);
    }
    let r = a
        .admin(
            "mutation($i: [UsageInput!]!) { recordUsageBatch(inputs: $i) { accepted } }",
            json!({"i": (0..50).map(|i| json!({"projectId": project, "provider": "acme", "model": "acme-large", "inputTokens": i, "reportedCostUsd": "0.01"})).collect::<Vec<_>>()}),
        )
        .await;
    assert_eq!(r.data()["recordUsageBatch"]["accepted"], 50);
    let u = ws.next_data("1", WAIT).await["costUpdates"].clone();
    assert_eq!(u["eventCount"], 50);
    assert_eq!(u["deltaUsd"], "0.5");
    running += rust_decimal::Decimal::new(5, 1);
    assert_eq!(today(&u), running);

    // A budget created through A is counted by B's ingest at once, and the alert B
    // fires reaches a subscriber on A.
    let mut alerts = a.subscribe(&a.admin_token, ALERT_RAISED, json!({})).await;
    a.wait_for_alert_subscribers(1).await;
    let budget = create_budget(
        &a,
        json!({"name": "shared", "amountUsd": "100", "period": "DAILY", "thresholds": [50], "scope": {"projects": [project]}}),
    )
    .await;
    spend(&b, &project, "45", None).await;
    let raised = alerts.next_data("1", WAIT).await["alertRaised"].clone();
    assert_eq!(raised["budgetId"], budget);
    assert_eq!(raised["threshold"], 50);
    assert_eq!(alerts_of(&a, &budget).await.len(), 1);
    let s = a
        .admin(
            "query($id: ID!) { budget(id: $id) { status { spentUsd } } }",
            json!({"id": budget}),
        )
        .await;
    assert_eq!(
        s.data()["budget"]["status"]["spentUsd"]
            .as_str()
            .unwrap()
            .parse::<rust_decimal::Decimal>()
            .unwrap(),
        running + rust_decimal::Decimal::from(45)
    );
    // B's subscriber saw B's own event too (delivered in memory, not twice): the next
    // update after it is the next change, recorded through A, with a higher sequence.
    let u = ws.next_data("1", WAIT).await["costUpdates"].clone();
    assert_eq!(u["deltaUsd"], "45");
    let seq = u["sequence"].as_i64().unwrap();
    spend(&a, &project, "0.01", None).await;
    let next = ws.next_data("1", WAIT).await["costUpdates"].clone();
    assert_eq!(
        (next["deltaUsd"].as_str(), next["eventCount"].as_i64()),
        (Some("0.01"), Some(1)),
        "no duplicate of B's own update: {next:#}"
    );
    assert!(next["sequence"].as_i64().unwrap() > seq, "{next:#}");
    assert_eq!(today(&next), running + rust_decimal::Decimal::new(4501, 2));
}

async fn concurrent_ingest_on_two_servers_fires_each_threshold_once() {
    let a = spawn_app(Backend::Postgres).await;
    let b = a.spawn_peer().await;
    let project = a.create_project("checkout").await;
    let budget = create_budget(
        &a,
        json!({"name": "shared", "amountUsd": "100", "period": "DAILY", "thresholds": [10, 30, 50, 70, 90, 100]}),
    )
    .await;
    let calls = (0..100).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        spend(app, &project, "1", None)
    });
    futures::future::join_all(calls).await;
    let thresholds: Vec<i64> = alerts_of(&a, &budget)
        .await
        .iter()
        .map(|x| x["threshold"].as_i64().unwrap())
        .collect();
    assert_eq!(thresholds, vec![10, 30, 50, 70, 90, 100]);
    let s = b
        .admin(
            "query($id: ID!) { budget(id: $id) { status { spentUsd } } }",
            json!({"id": budget}),
        )
        .await;
    assert_eq!(s.data()["budget"]["status"]["spentUsd"], "100");
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_subscriber_on_one_server_receives_what_another_ingested() {
        super::a_subscriber_on_one_server_receives_what_another_ingested().await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_ingest_on_two_servers_fires_each_threshold_once() {
        super::concurrent_ingest_on_two_servers_fires_each_threshold_once().await
    }
}
