//! Live updates over `/graphql/ws` with a real websocket client speaking
//! graphql-transport-ws: running totals, authentication close codes, project
//! isolation, alerts, and a slow subscriber being dropped while ingest goes on.

use crate::budgets::{create_budget, spend};
use aispend_e2e::{Backend, TestApp, WsClient, WsEvent, backend_tests, db_tests, spawn_app_with};
use chrono::{Datelike, TimeZone, Utc};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub const COST: &str = r#"subscription($f: UsageFilter, $tz: String) {
  costUpdates(filter: $f, timezone: $tz) {
    sequence kind eventCount deltaUsd timezone
    today { start end costUsd } month { start end costUsd }
    events { id projectId costUsd idempotencyKey } changes
  }
}"#;

pub const ALERT_RAISED: &str = r#"subscription($f: AlertFilter) {
  alertRaised(filter: $f) { id budgetId budgetName threshold spentUsd projectId }
}"#;

const WAIT: Duration = Duration::from_secs(10);

/// Records tiny events in `project` until subscription `1` of `ws` delivers one (the
/// server registers a subscription asynchronously); returns that update and the
/// keys recorded, in order.
pub async fn sync(
    app: &TestApp,
    ws: &mut WsClient,
    project: &str,
    usd: &str,
) -> (Value, Vec<String>) {
    let mut keys = vec![];
    for i in 0..100 {
        let key = format!("sync-{i}-{}", rand_suffix());
        app.record(
            json!({"projectId": project, "provider": "acme", "model": "acme-large",
                          "inputTokens": 1, "reportedCostUsd": usd, "idempotencyKey": key}),
        )
        .await;
        keys.push(key);
        if let Some(WsEvent::Message(m)) = ws.recv(Duration::from_millis(300)).await {
            assert_eq!(m["type"], "next", "{m:#}");
            return (m["payload"]["data"]["costUpdates"].clone(), keys);
        }
    }
    panic!("the subscription never delivered");
}

/// Reads subscription `1`'s updates for the rest of the events [`sync`] recorded
/// (`first` is the update it returned), so that the next update is for whatever is
/// recorded next. Returns how many updates that took.
pub async fn rest_of_sync(ws: &mut WsClient, first: &Value, keys: &[String]) -> usize {
    let k = keys
        .iter()
        .position(|key| first["events"][0]["idempotencyKey"] == key.as_str())
        .expect("one of the sync events");
    let mut left = keys.len() - k - first["eventCount"].as_u64().expect("a count") as usize;
    let mut updates = 0;
    while left > 0 {
        let u = ws.next_data("1", WAIT).await["costUpdates"].clone();
        left -= u["eventCount"].as_u64().expect("a count") as usize;
        updates += 1;
    }
    updates
}

fn rand_suffix() -> u64 {
    rand::random::<u64>()
}

fn cost(v: &Value) -> rust_decimal::Decimal {
    v.as_str()
        .expect("a decimal string")
        .parse()
        .expect("a decimal")
}

async fn cost_updates_carry_exact_running_totals(app: TestApp) {
    let project = app.create_project("checkout").await;
    let other = app.create_project("search").await;
    crate::ingest::price_acme(&app).await;
    let now = aispend_e2e::now();
    spend(&app, &project, "1.5", None).await;
    // Earlier this month but not today (skipped on the 1st).
    let earlier_this_month = now.day() > 1;
    if earlier_this_month {
        let yesterday = (now - chrono::Duration::days(1)).to_rfc3339();
        spend(&app, &project, "4", Some(&yesterday)).await;
    }
    spend(&app, &other, "100", None).await;

    let mut ws = app
        .subscribe(
            &app.admin_token,
            COST,
            json!({"f": {"projects": [project]}}),
        )
        .await;
    let (first, keys) = sync(&app, &mut ws, &project, "0.25").await;
    assert_eq!(first["kind"], "INGESTED");
    assert_eq!(first["timezone"], "UTC");
    assert_eq!(first["eventCount"], 1);
    // The first update is for the first event after the subscription's snapshot; its
    // totals include everything before it, exactly.
    let k = keys
        .iter()
        .position(|key| first["events"][0]["idempotencyKey"] == key.as_str())
        .expect("one of the sync events")
        + 1;
    let quarter = rust_decimal::Decimal::new(25, 2);
    let today = rust_decimal::Decimal::new(15, 1) + quarter * rust_decimal::Decimal::from(k);
    assert_eq!(cost(&first["today"]["costUsd"]), today, "{first:#}");
    let month_extra = if earlier_this_month {
        rust_decimal::Decimal::from(4)
    } else {
        rust_decimal::Decimal::ZERO
    };
    assert_eq!(cost(&first["month"]["costUsd"]), today + month_extra);
    let day_start = Utc
        .with_ymd_and_hms(now.year(), now.month(), now.day(), 0, 0, 0)
        .unwrap();
    assert_eq!(
        first["today"]["start"],
        day_start.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    );
    // The rest of the sync events arrive in order (possibly several per update when
    // they queued up), each adding exactly its cost.
    let mut seq = first["sequence"].as_i64().unwrap();
    let mut running = today;
    let mut left = keys.len() - k;
    while left > 0 {
        let u = ws.next_data("1", WAIT).await["costUpdates"].clone();
        let n = u["eventCount"].as_u64().unwrap() as usize;
        running += quarter * rust_decimal::Decimal::from(n);
        left -= n;
        assert_eq!(cost(&u["today"]["costUsd"]), running);
        assert!(u["sequence"].as_i64().unwrap() > seq);
        seq = u["sequence"].as_i64().unwrap();
    }
    // Another project's events are not delivered.
    spend(&app, &other, "7", None).await;
    spend(&app, &project, "2.25", None).await;
    let u = ws.next_data("1", WAIT).await["costUpdates"].clone();
    assert_eq!(u["events"][0]["projectId"], project);
    assert_eq!(u["deltaUsd"], "2.25");
    running += rust_decimal::Decimal::new(225, 2);
    assert_eq!(cost(&u["today"]["costUsd"]), running);
    assert_eq!(cost(&u["month"]["costUsd"]), running + month_extra);

    // A re-pricing moves the totals too.
    app.record(json!({"projectId": project, "provider": "acme", "model": "acme-large", "inputTokens": 1_000_000}))
        .await;
    let u = ws.next_data("1", WAIT).await["costUpdates"].clone();
    assert_eq!(u["deltaUsd"], "1");
    running += rust_decimal::Decimal::ONE;
    app.admin(
        r#"mutation { upsertPrice(input: {provider: "acme", model: "acme-large", standard: {input: "0.5", output: "2"}}) { id } }"#,
        json!({}),
    )
    .await
    .data();
    app.admin(
        "mutation { recomputeCosts(filter: {providers: [\"acme\"]}) }",
        json!({}),
    )
    .await
    .data();
    let u = ws.next_data("1", WAIT).await["costUpdates"].clone();
    assert_eq!(u["kind"], "REPRICED");
    assert_eq!(u["deltaUsd"], "-0.5");
    assert_eq!(u["events"][0]["costUsd"], "0.5");
    running -= rust_decimal::Decimal::new(5, 1);
    assert_eq!(cost(&u["today"]["costUsd"]), running);

    // Totals follow the subscription's time zone.
    let mut tz = app
        .subscribe(
            &app.admin_token,
            COST,
            json!({"f": {"projects": [project]}, "tz": "Pacific/Kiritimati"}),
        )
        .await;
    let (u, _) = sync(&app, &mut tz, &project, "0.01").await;
    let local = chrono_tz::Pacific::Kiritimati;
    let l = aispend_e2e::now().with_timezone(&local);
    let start = local
        .with_ymd_and_hms(l.year(), l.month(), l.day(), 0, 0, 0)
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(u["timezone"], "Pacific/Kiritimati");
    assert_eq!(
        u["today"]["start"],
        start.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    );
    let r = app.admin(COST, json!({})).await;
    assert!(
        !r.errors().is_empty(),
        "subscriptions are not served over POST"
    );
}

async fn a_valid_token_is_required_in_connection_init(app: TestApp) {
    for payload in [
        json!({}),
        json!({"Authorization": "Bearer not-a-token"}),
        json!({"token": ""}),
    ] {
        let mut ws = app.ws_connect(payload.clone()).await;
        match ws.recv(WAIT).await {
            Some(WsEvent::Closed(4401, reason)) => assert!(reason.contains("Unauthorized")),
            other => panic!("{payload}: expected 4401, got {other:?}"),
        }
    }
    // Subscribing before `connection_init` is refused the same way.
    let mut early = WsClient::open(app.address, None).await;
    early.subscribe("1", COST, json!({})).await;
    match early.recv(WAIT).await {
        Some(WsEvent::Closed(4401, _)) => {}
        other => panic!("expected 4401, got {other:?}"),
    }
    let project = app.create_project("checkout").await;
    let ingest = app.create_token(Some(&project), &["INGEST"]).await;
    let mut ws = app
        .ws_connect(json!({"Authorization": format!("Bearer {ingest}")}))
        .await;
    match ws.recv(WAIT).await {
        Some(WsEvent::Closed(4403, reason)) => assert!(reason.contains("READ")),
        other => panic!("expected 4403, got {other:?}"),
    }
    // `{"token": ...}` works as well as the header form.
    let reader = app.create_token(Some(&project), &["READ"]).await;
    let mut ws = app.ws_connect(json!({"token": reader.clone()})).await;
    ws.expect_ack().await;
    // A malformed message closes the connection with 4400.
    let mut bad = app.ws_connect(json!({"token": reader.clone()})).await;
    bad.expect_ack().await;
    bad.send(json!({"type": "no-such-message"})).await;
    match bad.recv(WAIT).await {
        Some(WsEvent::Closed(code, _)) => assert_eq!(code, 4400),
        other => panic!("expected 4400, got {other:?}"),
    }
    // A bad filter is an error for that subscription only.
    ws.subscribe("7", COST, json!({"tz": "Mars/Olympus"})).await;
    match ws.recv(WAIT).await {
        Some(WsEvent::Message(m)) => {
            // A resolver error arrives as the subscription's result (then `complete`).
            assert_eq!(
                (m["type"].as_str(), m["id"].as_str()),
                (Some("next"), Some("7")),
                "{m:#}"
            );
            assert_eq!(
                m["payload"]["errors"][0]["extensions"]["code"],
                "INVALID_INPUT"
            );
            assert_eq!(m["payload"]["errors"][0]["extensions"]["field"], "timezone");
        }
        other => panic!("expected an error message, got {other:?}"),
    }
}

async fn a_project_token_only_receives_its_own_project(app: TestApp) {
    let mine = app.create_project("checkout").await;
    let theirs = app.create_project("search").await;
    let token = app.create_token(Some(&mine), &["READ"]).await;
    let mut ws = app.subscribe(&token, COST, json!({})).await;
    let (first, keys) = sync(&app, &mut ws, &mine, "0.01").await;
    rest_of_sync(&mut ws, &first, &keys).await;
    // Updates arrive in the order of the changes: the other project's events, recorded
    // in between, would arrive before the next of ours.
    for _ in 0..3 {
        spend(&app, &theirs, "5", None).await;
    }
    spend(&app, &mine, "1", None).await;
    spend(&app, &theirs, "5", None).await;
    spend(&app, &mine, "2", None).await;
    for usd in ["1", "2"] {
        let u = ws.next_data("1", WAIT).await["costUpdates"].clone();
        assert_eq!(
            u["events"],
            json!([{"id": u["events"][0]["id"], "projectId": mine, "costUsd": usd, "idempotencyKey": null}]),
            "nothing from the other project"
        );
    }
    // Asking for another project is refused.
    ws.subscribe("2", COST, json!({"f": {"projects": [theirs]}}))
        .await;
    match ws.recv(WAIT).await {
        Some(WsEvent::Message(m)) => {
            assert_eq!(
                (m["type"].as_str(), m["id"].as_str()),
                (Some("next"), Some("2"))
            );
            assert_eq!(m["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    // Alerts too: only the project's own budgets. Their budget's alerts fire before
    // and between ours, so a leak would arrive before one of ours.
    let mut alerts = app.subscribe(&token, ALERT_RAISED, json!({})).await;
    app.wait_for_alert_subscribers(1).await;
    // They have spent $20 so far: 10% of $200.
    let their_budget = create_budget(
        &app,
        json!({"name": "theirs", "amountUsd": "200", "period": "DAILY", "thresholds": [20, 40], "scope": {"projects": [theirs]}}),
    )
    .await;
    let my_budget = create_budget(
        &app,
        json!({"name": "mine", "amountUsd": "1000", "period": "DAILY", "thresholds": [50, 90], "scope": {"projects": [mine]}}),
    )
    .await;
    spend(&app, &theirs, "30", None).await;
    spend(&app, &mine, "500", None).await;
    spend(&app, &theirs, "40", None).await;
    spend(&app, &mine, "400", None).await;
    let theirs_fired: Vec<i64> = crate::budgets::alerts_of(&app, &their_budget)
        .await
        .iter()
        .map(|a| a["threshold"].as_i64().unwrap())
        .collect();
    assert_eq!(theirs_fired, vec![20, 40], "their alerts did fire");
    for threshold in [50, 90] {
        let a = alerts.next_data("1", WAIT).await["alertRaised"].clone();
        assert_eq!(
            (
                a["budgetId"].clone(),
                a["threshold"].clone(),
                a["projectId"].clone()
            ),
            (json!(my_budget), json!(threshold), json!(mine)),
            "{their_budget} stays hidden"
        );
    }
}

async fn alerts_are_raised_live(app: TestApp) {
    let project = app.create_project("checkout").await;
    let budget = create_budget(
        &app,
        json!({"name": "live", "amountUsd": "10", "period": "MONTHLY", "thresholds": [50, 80, 100]}),
    )
    .await;
    let mut ws = app
        .subscribe(
            &app.admin_token,
            ALERT_RAISED,
            json!({"f": {"budgets": [budget]}}),
        )
        .await;
    app.wait_for_alert_subscribers(1).await;
    let inputs: Vec<Value> = (0..9)
        .map(|_| json!({"projectId": project, "provider": "acme", "model": "acme-large", "inputTokens": 1, "reportedCostUsd": "1"}))
        .collect();
    app.admin(
        "mutation($i: [UsageInput!]!) { recordUsageBatch(inputs: $i) { accepted } }",
        json!({"i": inputs}),
    )
    .await
    .data();
    let mut got = vec![];
    for _ in 0..2 {
        let a = ws.next_data("1", WAIT).await["alertRaised"].clone();
        got.push((a["threshold"].as_i64().unwrap(), a["spentUsd"].clone()));
    }
    got.sort_by_key(|(t, _)| *t);
    assert_eq!(got, vec![(50, json!("9")), (80, json!("9"))]);
    // Each alert once: the next one is the next threshold, not a repeat.
    spend(&app, &project, "1", None).await;
    let a = ws.next_data("1", WAIT).await["alertRaised"].clone();
    assert_eq!(
        (a["threshold"].as_i64(), a["spentUsd"].as_str()),
        (Some(100), Some("10"))
    );
}

const BIG: &str = r#"subscription {
  costUpdates {
    sequence eventCount
    events(first: 10000) { id projectId provider model endpoint source occurredAt receivedAt
      inputTokens outputTokens costUsd costSource idempotencyKey user metadata }
  }
}"#;

const SMALL_WITH_KEYS: &str =
    "subscription { costUpdates { sequence eventCount events { idempotencyKey } } }";

async fn a_slow_subscriber_is_dropped_while_ingest_goes_on(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.alerts.subscriber_queue = 2).await;
    let project = app.create_project("checkout").await;
    // A client that never reads, with a small receive buffer.
    let mut slow = WsClient::connect_with(
        app.address,
        json!({"Authorization": format!("Bearer {}", app.admin_token)}),
        Some(4096),
    )
    .await;
    slow.expect_ack().await;
    slow.subscribe("1", BIG, json!({})).await;
    let mut fast = app
        .subscribe(&app.admin_token, SMALL_WITH_KEYS, json!({}))
        .await;
    let (first, keys) = sync(&app, &mut fast, &project, "0.001").await;
    rest_of_sync(&mut fast, &first, &keys).await;
    assert_eq!(app.state.live.cost_subscribers(), 2);

    // The fast subscriber reads everything in the background, until it has counted
    // the events it is told to expect (or a message is 30 s late).
    let (expect_tx, mut expect_rx) = tokio::sync::watch::channel(i64::MAX);
    let reader = tokio::spawn(async move {
        let mut events = 0_i64;
        while events < *expect_rx.borrow_and_update() {
            tokio::select! {
                m = fast.recv(Duration::from_secs(30)) => match m {
                    Some(WsEvent::Message(m)) => {
                        events += m["payload"]["data"]["costUpdates"]["eventCount"]
                            .as_i64()
                            .unwrap_or(0)
                    }
                    other => panic!("the fast subscriber stopped receiving: {other:?}"),
                },
                _ = expect_rx.changed() => {}
            }
        }
        events
    });
    let mut batches = 0;
    let mut slowest = Duration::ZERO;
    let started = Instant::now();
    while app.state.live.cost_subscribers() == 2 && batches < 60 {
        let inputs: Vec<Value> = (0..1000)
            .map(|i| json!({"projectId": project, "provider": "acme", "model": "acme-large",
                            "inputTokens": i, "outputTokens": 2 * i, "endpoint": "summarise",
                            "user": format!("user-{i}"), "reportedCostUsd": "0.001",
                            "metadata": {"request": format!("req-{batches}-{i}"), "note": "x".repeat(40)}}))
            .collect();
        let t = Instant::now();
        app.admin(
            "mutation($i: [UsageInput!]!) { recordUsageBatch(inputs: $i) { accepted } }",
            json!({"i": inputs}),
        )
        .await
        .data();
        slowest = slowest.max(t.elapsed());
        batches += 1;
    }
    assert_eq!(
        app.state.live.cost_subscribers(),
        1,
        "the slow subscriber was dropped after {batches} batches in {:?}",
        started.elapsed()
    );
    assert!(
        slowest < Duration::from_secs(10),
        "ingest never waited on the slow subscriber (slowest batch {slowest:?})"
    );
    // Ingest goes on, and the fast subscriber still gets every event.
    for _ in 0..2 {
        let inputs: Vec<Value> = (0..10)
            .map(|_| json!({"projectId": project, "provider": "acme", "model": "acme-large", "inputTokens": 1, "reportedCostUsd": "0.001"}))
            .collect();
        app.admin(
            "mutation($i: [UsageInput!]!) { recordUsageBatch(inputs: $i) { accepted } }",
            json!({"i": inputs}),
        )
        .await
        .data();
        batches += 1;
    }
    let expected = (batches - 2) * 1000 + 20;
    expect_tx.send(expected).unwrap();
    let fast_events = reader.await.unwrap();
    // Exactly: a lost update leaves the reader short (and it panics), a repeated one
    // carries it past the count.
    assert_eq!(fast_events, expected);

    // The slow client, reading at last, finds the reason it was dropped.
    let (close, _seen) = slow.until_closed(Duration::from_secs(15)).await;
    let (code, reason) = close.expect("a close frame");
    assert_eq!(code, 4008);
    assert!(reason.contains("too slow"), "{reason}");
}

db_tests!(
    cost_updates_carry_exact_running_totals,
    a_valid_token_is_required_in_connection_init,
    a_project_token_only_receives_its_own_project,
    alerts_are_raised_live,
);

mod slow {
    use super::*;
    backend_tests!(a_slow_subscriber_is_dropped_while_ingest_goes_on);
}
