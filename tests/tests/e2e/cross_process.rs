//! Two server processes on one PostgreSQL database: a subscriber connected to one
//! receives what the other ingested (LISTEN/NOTIFY), budgets changed through one are
//! counted by the other, and an alert fired by one reaches the other's subscribers.
//! PostgreSQL only: on SQLite one process fans out in memory.

use crate::budgets::{alerts_of, create_budget, spend};
use crate::subscriptions::{ALERT_RAISED, COST, sync};
use aispend_e2e::{Backend, spawn_app};
use sea_orm::ConnectionTrait;
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

/// Both servers ingest at once, single calls and batches for the bulk writers side by
/// side: live totals seeded in the middle of it, a budget counter created by whichever transaction touched its period
/// first, and every threshold stay exact.
async fn ingest_side_by_side_keeps_live_totals_and_counters_exact() {
    let a = spawn_app(Backend::Postgres).await;
    let b = a.spawn_peer().await;
    let project = a.create_project("checkout").await;
    spend(&a, &project, "10", None).await;
    let budget = create_budget(
        &a,
        json!({"name": "shared", "amountUsd": "100", "period": "DAILY", "thresholds": [10, 30, 50, 70, 90, 100], "scope": {"projects": [project]}}),
    )
    .await;
    // Yesterday's period has no counter yet: the first transactions to touch it race
    // to create it.
    let yesterday = (aispend_e2e::now() - chrono::Duration::days(1)).to_rfc3339();
    const CLIENTS: usize = 24;
    const ROUNDS: usize = 25;
    const BATCHES: usize = 6;
    const BATCH: usize = 300;
    let ingest = async {
        let clients = (0..CLIENTS).map(|c| {
            let (a, b, project, yesterday) = (&a, &b, &project, &yesterday);
            async move {
                for r in 0..ROUNDS {
                    let app = if (c + r) % 2 == 0 { a } else { b };
                    // 100 of the 600 events are yesterday's, $1 each; the rest are
                    // today's, $0.50 each.
                    if (c * ROUNDS + r).is_multiple_of(6) {
                        spend(app, project, "1", Some(yesterday)).await;
                    } else {
                        spend(app, project, "0.5", None).await;
                    }
                }
            }
        });
        // Batches large enough for each server's bulk writers, which run side by side.
        let batches = (0..BATCHES).map(|i| {
            let app = if i % 2 == 0 { &a } else { &b };
            let inputs: Vec<_> = (0..BATCH)
                .map(|n| json!({"projectId": project, "provider": "acme", "model": "acme-large",
                    "inputTokens": n, "reportedCostUsd": "0.01"}))
                .collect();
            async move {
                let r = app
                    .admin(
                        "mutation($i: [UsageInput!]!) { recordUsageBatch(inputs: $i) { accepted } }",
                        json!({"i": inputs}),
                    )
                    .await;
                assert_eq!(r.data()["recordUsageBatch"]["accepted"], BATCH);
            }
        });
        futures::future::join(
            futures::future::join_all(clients),
            futures::future::join_all(batches),
        )
        .await;
    };
    // Subscribed on A while both servers ingest: its totals are seeded mid-stream.
    let subscribe = async {
        let mut ws = a
            .subscribe(&a.admin_token, COST, json!({"f": {"projects": [project]}}))
            .await;
        let (_, keys) = sync(&a, &mut ws, &project, "0.001").await;
        (ws, keys)
    };
    let ((mut ws, keys), ()) = tokio::join!(subscribe, ingest);
    // A last event through B: its update comes after every other (A's own changes
    // were handed to the fan-out before it was sent, and B's notifications arrive in
    // the order B committed them).
    b.record(
        json!({"projectId": project, "provider": "acme", "model": "acme-large",
        "inputTokens": 1, "reportedCostUsd": "0.01", "idempotencyKey": "marker"}),
    )
    .await;
    let expected_today = rust_decimal::Decimal::from(10)
        + rust_decimal::Decimal::new(1, 3) * rust_decimal::Decimal::from(keys.len())
        + rust_decimal::Decimal::new(5, 1) * rust_decimal::Decimal::from(500)
        + rust_decimal::Decimal::new(1, 2) * rust_decimal::Decimal::from(BATCHES * BATCH)
        + rust_decimal::Decimal::new(1, 2);
    loop {
        let u = ws.next_data("1", WAIT).await["costUpdates"].clone();
        let events = u["events"].as_array().cloned().unwrap_or_default();
        if events.iter().any(|e| e["idempotencyKey"] == "marker") {
            let today: rust_decimal::Decimal =
                u["today"]["costUsd"].as_str().unwrap().parse().unwrap();
            assert_eq!(today, expected_today, "{u:#}");
            break;
        }
    }
    // Each period crossed each threshold once; yesterday's last crossing was at
    // exactly $100 (a lost or twice-counted event would show there).
    let alerts = alerts_of(&a, &budget).await;
    let crossed: Vec<(String, i64)> = alerts
        .iter()
        .map(|x| {
            (
                x["periodStart"].as_str().unwrap()[..10].to_owned(),
                x["threshold"].as_i64().unwrap(),
            )
        })
        .collect();
    let day = |d: &str| d[..10].to_owned();
    let today = aispend_e2e::now().to_rfc3339();
    let mut expected = vec![];
    for d in [&yesterday, &today] {
        for t in [10, 30, 50, 70, 90, 100] {
            expected.push((day(d), t));
        }
    }
    assert_eq!(crossed, expected);
    let db = &a.state.db;
    let row = db
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT spent_nanos_hi, spent_nanos FROM budget_periods WHERE budget_id = $1 ORDER BY period_start",
            [budget.parse::<uuid::Uuid>().unwrap().into()],
        ))
        .await
        .unwrap()
        .expect("yesterday's counter");
    let (hi, lo): (i64, i64) = (
        row.try_get("", "spent_nanos_hi").unwrap(),
        row.try_get("", "spent_nanos").unwrap(),
    );
    assert_eq!(
        i128::from(hi) * 1_000_000_000 + i128::from(lo),
        100 * 1_000_000_000,
        "yesterday's counter holds exactly its hundred dollars"
    );
    let s = b
        .admin(
            "query($id: ID!) { budget(id: $id) { status { spentUsd } } }",
            json!({"id": budget}),
        )
        .await;
    let spent: rust_decimal::Decimal = s.data()["budget"]["status"]["spentUsd"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(spent, expected_today);
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ingest_side_by_side_keeps_live_totals_and_counters_exact() {
        super::ingest_side_by_side_keeps_live_totals_and_counters_exact().await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_subscriber_on_one_server_receives_what_another_ingested() {
        super::a_subscriber_on_one_server_receives_what_another_ingested().await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_ingest_on_two_servers_fires_each_threshold_once() {
        super::concurrent_ingest_on_two_servers_fires_each_threshold_once().await
    }
}
