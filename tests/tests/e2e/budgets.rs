//! Budgets: definitions, periods in a time zone, exact counters, exactly-once alerts,
//! and the spend check.

use aispend_e2e::{TestApp, db_tests};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use serde_json::{Value, json};

pub const CREATE: &str = r#"mutation($i: CreateBudgetInput!) {
  createBudget(input: $i) {
    id name amountUsd period timezone thresholds enforce webhookUrl webhookSecretSet
    scope { projects providers models endpoints users }
    status { periodStart periodEnd spentUsd remainingUsd percentUsed forecastUsd thresholdsReached }
  }
}"#;

const STATUS: &str = r#"query($id: ID!) {
  budget(id: $id) { id status { periodStart periodEnd spentUsd remainingUsd percentUsed forecastUsd thresholdsReached } }
}"#;

pub const ALERTS: &str = r#"query($f: AlertFilter) {
  alerts(filter: $f, first: 1000) {
    id kind budgetId budgetName threshold spentUsd amountUsd periodStart periodEnd summary
    firedAt acknowledged deliveryStatus
  }
}"#;

const BATCH: &str = r#"mutation($inputs: [UsageInput!]!) {
  recordUsageBatch(inputs: $inputs) {
    accepted totalCostUsd
    budgetCheck { decision budgets { name decision spentUsd percentUsed } }
  }
}"#;

/// Creates a budget as the operator; returns its id.
pub async fn create_budget(app: &TestApp, input: Value) -> String {
    let r = app.admin(CREATE, json!({ "i": input })).await;
    r.data()["createBudget"]["id"]
        .as_str()
        .expect("a budget id")
        .to_owned()
}

/// Records one event with a known cost (a provider-reported cost wins over prices).
pub async fn spend(app: &TestApp, project: &str, usd: &str, occurred_at: Option<&str>) -> Value {
    app.record(json!({
        "projectId": project, "provider": "acme", "model": "acme-large",
        "inputTokens": 10, "reportedCostUsd": usd, "occurredAt": occurred_at,
    }))
    .await
}

/// Every alert of one budget, oldest threshold first.
pub async fn alerts_of(app: &TestApp, budget: &str) -> Vec<Value> {
    let r = app.admin(ALERTS, json!({"f": {"budgets": [budget]}})).await;
    let mut alerts = r.data()["alerts"].as_array().cloned().unwrap_or_default();
    alerts.sort_by_key(|a| {
        (
            a["periodStart"].as_str().unwrap_or_default().to_owned(),
            a["threshold"].as_i64(),
        )
    });
    alerts
}

pub async fn status(app: &TestApp, id: &str) -> Value {
    app.admin(STATUS, json!({"id": id})).await.data()["budget"]["status"].clone()
}

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().expect("an RFC 3339 time")
}

/// The start of the current month in a zone, in UTC.
fn month_start(tz: chrono_tz::Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    let local = now.with_timezone(&tz);
    let first = NaiveDate::from_ymd_opt(local.year(), local.month(), 1)
        .expect("a date")
        .and_hms_opt(0, 0, 0)
        .expect("midnight");
    tz.from_local_datetime(&first)
        .earliest()
        .expect("a local midnight")
        .with_timezone(&Utc)
}

async fn budgets_are_created_listed_changed_and_deleted(app: TestApp) {
    let project = app.create_project("checkout").await;
    let r = app
        .admin(
            CREATE,
            json!({"i": {
                "name": " Checkout monthly ", "amountUsd": "250.5", "period": "MONTHLY",
                "timezone": "Europe/Berlin", "scope": {"projects": [project], "providers": ["OpenAI"]},
                "webhookUrl": "https://hooks.example.com/aispend", "webhookSecret": "whsec-0123456789abcdef"
            }}),
        )
        .await;
    let b = &r.data()["createBudget"];
    assert_eq!(b["name"], "Checkout monthly");
    assert_eq!(b["amountUsd"], "250.5");
    assert_eq!(b["thresholds"], json!([50, 80, 100]), "default thresholds");
    assert_eq!(b["enforce"], false);
    assert_eq!(b["webhookSecretSet"], true);
    assert_eq!(b["scope"]["providers"], json!(["openai"]));
    assert_eq!(b["status"]["spentUsd"], "0");
    assert_eq!(b["status"]["remainingUsd"], "250.5");
    assert!(
        !r.body.to_string().contains("whsec-0123456789abcdef"),
        "the secret is never returned"
    );
    let id = b["id"].as_str().unwrap().to_owned();

    // Bad input names its field and changes nothing.
    for (input, field) in [
        (
            json!({"name": "x", "amountUsd": "10", "period": "DAILY", "webhookUrl": "https://hooks.example.com/x"}),
            "input.webhookSecret",
        ),
        (
            json!({"name": "x", "amountUsd": "10", "period": "DAILY", "timezone": "Mars/Olympus"}),
            "input.timezone",
        ),
        (
            json!({"name": "x", "amountUsd": "-1", "period": "DAILY"}),
            "input.amountUsd",
        ),
        (
            json!({"name": "x", "amountUsd": "1", "period": "DAILY", "thresholds": [0, 80]}),
            "input.thresholds.0",
        ),
        (
            json!({"name": "x", "amountUsd": "1", "period": "DAILY", "webhookUrl": "http://hooks.example.com/x", "webhookSecret": "0123456789abcdef"}),
            "input.webhookUrl",
        ),
        (
            json!({"name": "x", "amountUsd": "1", "period": "DAILY", "webhookUrl": "https://127.0.0.1:9/x", "webhookSecret": "0123456789abcdef"}),
            "input.webhookUrl",
        ),
    ] {
        let r = app.admin(CREATE, json!({ "i": input })).await;
        assert_eq!(r.code(), "INVALID_INPUT", "{input}");
        assert_eq!(r.field().as_deref(), Some(field), "{:#}", r.body);
    }

    let r = app
        .admin(
            "mutation($id: ID!) { updateBudget(id: $id, input: {name: \"Checkout\", thresholds: [90, 75], webhookUrl: null, webhookSecret: null}) { name thresholds webhookUrl webhookSecretSet amountUsd } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        r.data()["updateBudget"],
        json!({"name": "Checkout", "thresholds": [75, 90], "webhookUrl": null, "webhookSecretSet": false, "amountUsd": "250.5"})
    );

    // A token bound to another project sees none of it and may not budget it.
    let other = app.create_project("search").await;
    let bound = app.create_token(Some(&other), &["ADMIN"]).await;
    let r = app
        .graphql(Some(&bound), "{ budgets { id } }", json!({}))
        .await;
    assert_eq!(r.data()["budgets"], json!([]));
    let r = app.graphql(Some(&bound), STATUS, json!({"id": id})).await;
    assert_eq!(r.code(), "NOT_FOUND");
    let r = app
        .graphql(
            Some(&bound),
            CREATE,
            json!({"i": {"name": "theirs", "amountUsd": "1", "period": "DAILY", "scope": {"projects": [project]}}}),
        )
        .await;
    assert_eq!(r.code(), "FORBIDDEN");
    // Without a project list, a bound token budgets its own project.
    let r = app
        .graphql(
            Some(&bound),
            CREATE,
            json!({"i": {"name": "mine", "amountUsd": "1", "period": "DAILY"}}),
        )
        .await;
    assert_eq!(
        r.data()["createBudget"]["scope"]["projects"],
        json!([other])
    );
    let r = app
        .graphql(Some(&bound), "{ budgets { name } }", json!({}))
        .await;
    assert_eq!(r.data()["budgets"], json!([{"name": "mine"}]));

    let r = app
        .admin(
            "mutation($id: ID!) { deleteBudget(id: $id) }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r.data()["deleteBudget"], id);
    assert_eq!(
        app.admin(STATUS, json!({"id": id})).await.code(),
        "NOT_FOUND"
    );
}

async fn a_berlin_month_and_a_dst_week_have_their_own_periods(app: TestApp) {
    let project = app.create_project("checkout").await;
    let berlin_month = create_budget(
        &app,
        json!({"name": "berlin month", "amountUsd": "10", "period": "MONTHLY", "timezone": "Europe/Berlin", "thresholds": [50]}),
    )
    .await;
    let utc_month = create_budget(
        &app,
        json!({"name": "utc month", "amountUsd": "10", "period": "MONTHLY", "thresholds": [50, 100]}),
    )
    .await;
    let berlin_week = create_budget(
        &app,
        json!({"name": "berlin week", "amountUsd": "10", "period": "WEEKLY", "timezone": "Europe/Berlin", "thresholds": [50]}),
    )
    .await;

    // 2025-10-31 23:30 Berlin is October; 00:30 is already November (CET, UTC+1).
    spend(&app, &project, "6", Some("2025-10-31T22:30:00Z")).await;
    spend(&app, &project, "6", Some("2025-10-31T23:30:00Z")).await;
    spend(&app, &project, "1", Some("2025-10-31T23:45:00Z")).await;

    let berlin = alerts_of(&app, &berlin_month).await;
    let periods: Vec<(&str, &str, i64)> = berlin
        .iter()
        .map(|a| {
            (
                a["periodStart"].as_str().unwrap(),
                a["periodEnd"].as_str().unwrap(),
                a["threshold"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        periods,
        vec![
            // October in Berlin started under summer time (UTC+2).
            ("2025-09-30T22:00:00Z", "2025-10-31T23:00:00Z", 50),
            // A new period starts fresh: $6 alone crosses 50% of November.
            ("2025-10-31T23:00:00Z", "2025-11-30T23:00:00Z", 50),
        ]
    );
    assert_eq!(berlin[0]["spentUsd"], "6");
    assert_eq!(berlin[1]["spentUsd"], "6");
    // All three are October in UTC: 50% and 100% fire once each.
    let utc_alerts = alerts_of(&app, &utc_month).await;
    let fired: Vec<(i64, &str, &str)> = utc_alerts
        .iter()
        .map(|a| {
            (
                a["threshold"].as_i64().unwrap(),
                a["periodStart"].as_str().unwrap(),
                a["spentUsd"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        fired,
        vec![
            (50, "2025-10-01T00:00:00Z", "6"),
            (100, "2025-10-01T00:00:00Z", "12")
        ]
    );

    // The week of the autumn DST change in Berlin has 169 hours; Monday 00:30 local
    // (Sunday 23:30 UTC) already belongs to the next week.
    spend(&app, &project, "6", Some("2025-10-26T22:30:00Z")).await;
    spend(&app, &project, "6", Some("2025-10-26T23:30:00Z")).await;
    let weeks: Vec<(String, String)> = alerts_of(&app, &berlin_week)
        .await
        .iter()
        .map(|a| {
            (
                a["periodStart"].as_str().unwrap().to_owned(),
                a["periodEnd"].as_str().unwrap().to_owned(),
            )
        })
        .filter(|(s, _)| s.starts_with("2025-10-"))
        .collect();
    assert_eq!(
        weeks,
        vec![
            ("2025-10-19T22:00:00Z".into(), "2025-10-26T23:00:00Z".into()),
            ("2025-10-26T23:00:00Z".into(), "2025-11-02T23:00:00Z".into()),
        ]
    );
    assert_eq!(
        (utc(&weeks[0].1) - utc(&weeks[0].0)).num_hours(),
        169,
        "the DST week is an hour longer"
    );

    // The current Berlin month: its bounds are local midnights, and only its own
    // events count.
    let now = aispend_e2e::now();
    let start = month_start(chrono_tz::Europe::Berlin, now);
    let s = status(&app, &berlin_month).await;
    assert_eq!(utc(s["periodStart"].as_str().unwrap()), start);
    assert_eq!(s["spentUsd"], "0");
    let just_before = (start - chrono::Duration::minutes(1)).to_rfc3339();
    let just_after = (start + chrono::Duration::minutes(1)).to_rfc3339();
    spend(&app, &project, "2.5", Some(&just_before)).await;
    spend(&app, &project, "1.25", Some(&just_after)).await;
    let s = status(&app, &berlin_month).await;
    assert_eq!(s["spentUsd"], "1.25");
    assert_eq!(s["remainingUsd"], "8.75");
    assert_eq!(s["percentUsed"], "12.5");
    assert_eq!(s["thresholdsReached"], json!([]));
}

async fn every_threshold_fires_once_under_200_concurrent_ingests(app: TestApp) {
    let project = app.create_project("checkout").await;
    let budget = create_budget(
        &app,
        json!({"name": "daily", "amountUsd": "100", "period": "DAILY", "thresholds": [25, 50, 75, 100, 150]}),
    )
    .await;
    let total = create_budget(
        &app,
        json!({"name": "forever", "amountUsd": "200", "period": "TOTAL", "thresholds": [10, 90, 100]}),
    )
    .await;
    let calls = (0..200).map(|_| spend(&app, &project, "1", None));
    futures::future::join_all(calls).await;
    let alerts = alerts_of(&app, &budget).await;
    let thresholds: Vec<i64> = alerts
        .iter()
        .map(|a| a["threshold"].as_i64().unwrap())
        .collect();
    assert_eq!(thresholds, vec![25, 50, 75, 100, 150], "{alerts:#?}");
    // Each fired with the spend that crossed it: at least its threshold, and in the
    // order of the counter (a higher threshold never carries a lower spend). Concurrent
    // calls share commits, so a crossing may carry a few events at once; the exact
    // crossing spend is checked one event at a time below.
    let spent: Vec<rust_decimal::Decimal> = alerts
        .iter()
        .map(|a| a["spentUsd"].as_str().unwrap().parse().unwrap())
        .collect();
    for (a, spent) in alerts.iter().zip(&spent) {
        let t = rust_decimal::Decimal::from(a["threshold"].as_i64().unwrap());
        assert!(*spent >= t, "{a}");
    }
    assert!(spent.windows(2).all(|w| w[0] <= w[1]), "{spent:?}");
    let s = status(&app, &budget).await;
    assert_eq!(s["spentUsd"], "200", "the counter is exact");
    assert_eq!(s["percentUsed"], "200");
    assert_eq!(s["remainingUsd"], "0");
    let t: Vec<i64> = alerts_of(&app, &total)
        .await
        .iter()
        .map(|a| a["threshold"].as_i64().unwrap())
        .collect();
    assert_eq!(t, vec![10, 90, 100]);
    let s = status(&app, &total).await;
    assert_eq!(
        (s["periodStart"].clone(), s["forecastUsd"].clone()),
        (Value::Null, Value::Null)
    );
    // Another round over the same day fires nothing new.
    spend(&app, &project, "50", None).await;
    assert_eq!(alerts_of(&app, &budget).await.len(), 5);

    // One at a time, each alert carries exactly the spend of the event that crossed it:
    // 25% of $10 is crossed by the 3rd dollar, 50% by the 5th, 100% by the 10th.
    let serial = app.create_project("serial").await;
    let one_by_one = create_budget(
        &app,
        json!({"name": "serial", "amountUsd": "10", "period": "DAILY", "thresholds": [25, 50, 100], "scope": {"projects": [serial]}}),
    )
    .await;
    for _ in 0..10 {
        spend(&app, &serial, "1", None).await;
    }
    let crossed: Vec<(i64, String)> = alerts_of(&app, &one_by_one)
        .await
        .iter()
        .map(|a| {
            (
                a["threshold"].as_i64().unwrap(),
                a["spentUsd"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        crossed,
        vec![
            (25, "3".to_owned()),
            (50, "5".to_owned()),
            (100, "10".to_owned())
        ]
    );
}

async fn a_batch_crossing_several_thresholds_fires_each_once(app: TestApp) {
    let project = app.create_project("checkout").await;
    crate::ingest::price_acme(&app).await;
    let budget = create_budget(
        &app,
        json!({"name": "hard cap", "amountUsd": "10", "period": "MONTHLY", "enforce": true}),
    )
    .await;
    // 12 events of 1,000,000 input tokens at $1/M: $12 in one transaction.
    let inputs: Vec<Value> = (0..12)
        .map(|i| json!({"projectId": project, "provider": "acme", "model": "acme-large", "inputTokens": 1_000_000, "idempotencyKey": format!("k{i}")}))
        .collect();
    let r = app.admin(BATCH, json!({"inputs": inputs})).await;
    let b = &r.data()["recordUsageBatch"];
    assert_eq!(b["totalCostUsd"], "12");
    assert_eq!(
        b["budgetCheck"],
        json!({"decision": "BLOCK", "budgets": [{"name": "hard cap", "decision": "BLOCK", "spentUsd": "12", "percentUsed": "120"}]})
    );
    let alerts = alerts_of(&app, &budget).await;
    let fired: Vec<(i64, &str)> = alerts
        .iter()
        .map(|a| {
            (
                a["threshold"].as_i64().unwrap(),
                a["spentUsd"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(fired, vec![(50, "12"), (80, "12"), (100, "12")]);
    assert!(
        alerts
            .iter()
            .all(|a| a["summary"].as_str().unwrap().contains("hard cap")
                && !a["summary"].as_str().unwrap().contains("http")),
        "a plain summary without links"
    );

    // A price correction lowers the spend; the alerts stay fired.
    app.admin(
        r#"mutation { upsertPrice(input: {provider: "acme", model: "acme-large", standard: {input: "0.25", output: "1"}}) { id } }"#,
        json!({}),
    )
    .await
    .data();
    let r = app
        .admin(
            "mutation { recomputeCosts(filter: {providers: [\"acme\"]}) }",
            json!({}),
        )
        .await;
    assert_eq!(r.data()["recomputeCosts"], 12);
    assert_eq!(status(&app, &budget).await["spentUsd"], "3");
    assert_eq!(alerts_of(&app, &budget).await.len(), 3);
    // Climbing back over the thresholds in the same period fires nothing again.
    let inputs: Vec<Value> = (0..28)
        .map(|i| json!({"projectId": project, "provider": "acme", "model": "acme-large", "inputTokens": 1_000_000, "idempotencyKey": format!("m{i}")}))
        .collect();
    app.admin(BATCH, json!({"inputs": inputs})).await.data();
    assert_eq!(status(&app, &budget).await["spentUsd"], "10");
    assert_eq!(alerts_of(&app, &budget).await.len(), 3);
}

async fn a_new_budget_counts_what_was_already_spent(app: TestApp) {
    let project = app.create_project("checkout").await;
    spend(&app, &project, "3", None).await;
    spend(&app, &project, "0.5", Some("2024-01-01T00:00:00Z")).await;
    let r = app
        .admin(
            CREATE,
            json!({"i": {"name": "late", "amountUsd": "5", "period": "MONTHLY", "thresholds": [50, 80]}}),
        )
        .await;
    let b = &r.data()["createBudget"];
    assert_eq!(b["status"]["spentUsd"], "3");
    assert_eq!(b["status"]["thresholdsReached"], json!([50]));
    let id = b["id"].as_str().unwrap();
    let alerts = alerts_of(&app, id).await;
    assert_eq!(alerts.len(), 1, "a threshold already reached fires at once");
    assert_eq!(alerts[0]["threshold"], 50);
    // Changing the amount recounts against the new amount; 50% does not fire again.
    let r = app
        .admin(
            "mutation($id: ID!) { updateBudget(id: $id, input: {amountUsd: \"3.5\"}) { status { spentUsd percentUsed } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        r.data()["updateBudget"]["status"],
        json!({"spentUsd": "3", "percentUsed": "85.71"})
    );
    let t: Vec<i64> = alerts_of(&app, id)
        .await
        .iter()
        .map(|a| a["threshold"].as_i64().unwrap())
        .collect();
    assert_eq!(t, vec![50, 80]);
    // A narrower scope recounts from the events.
    let r = app
        .admin(
            "mutation($id: ID!) { updateBudget(id: $id, input: {scope: {models: [\"other-model\"]}}) { status { spentUsd } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r.data()["updateBudget"]["status"]["spentUsd"], "0");
}

const CHECK: &str = r#"query($p: ID, $m: String!, $e: String, $est: Decimal) {
  checkBudget(projectId: $p, provider: "acme", model: $m, endpoint: $e, estimatedCostUsd: $est) {
    decision budgets { name decision spentUsd projectedUsd percentUsed projectedPercent enforce }
  }
}"#;

async fn check_budget_answers_allow_warn_or_block(app: TestApp) {
    let project = app.create_project("checkout").await;
    let other = app.create_project("search").await;
    create_budget(
        &app,
        json!({"name": "soft", "amountUsd": "10", "period": "DAILY", "thresholds": [80], "scope": {"projects": [project]}}),
    )
    .await;
    create_budget(
        &app,
        json!({"name": "hard", "amountUsd": "20", "period": "DAILY", "enforce": true, "scope": {"projects": [project], "endpoints": ["summarise"]}}),
    )
    .await;
    spend(&app, &project, "7", None).await;
    let check = |p: String, e: Option<&str>, est: &str| {
        let app = &app;
        let vars = json!({"p": p, "m": "acme-large", "e": e, "est": est});
        async move { app.admin(CHECK, vars).await.data()["checkBudget"].clone() }
    };
    let r = check(project.clone(), None, "0.5").await;
    assert_eq!(r["decision"], "ALLOW");
    assert_eq!(
        r["budgets"],
        json!([{"name": "soft", "decision": "ALLOW", "spentUsd": "7", "projectedUsd": "7.5", "percentUsed": "70", "projectedPercent": "75", "enforce": false}])
    );
    assert_eq!(check(project.clone(), None, "1").await["decision"], "WARN");
    // Over a soft budget is a warning, never a block.
    assert_eq!(
        check(project.clone(), None, "100").await["decision"],
        "WARN"
    );
    // The enforced budget covers only the project's `summarise` endpoint: within it,
    // a warning; over it, a block.
    let r = check(project.clone(), Some("summarise"), "14").await;
    assert_eq!(r["decision"], "WARN");
    assert_eq!(r["budgets"].as_array().unwrap().len(), 2);
    let r = check(project.clone(), Some("summarise"), "21").await;
    assert_eq!(r["decision"], "BLOCK");
    let other_check = check(other.clone(), Some("summarise"), "21").await;
    assert_eq!(other_check, json!({"decision": "ALLOW", "budgets": []}));

    // An application's ingest-only token may ask for its own project, not another.
    let ingest = app.create_token(Some(&project), &["INGEST"]).await;
    let r = app
        .graphql(
            Some(&ingest),
            CHECK,
            json!({"m": "acme-large", "e": "summarise", "est": "0.01"}),
        )
        .await;
    assert_eq!(r.data()["checkBudget"]["decision"], "ALLOW");
    let r = app
        .graphql(
            Some(&ingest),
            CHECK,
            json!({"p": other, "m": "acme-large", "est": "0.01"}),
        )
        .await;
    assert_eq!(r.code(), "FORBIDDEN");
    // recordUsage answers with the same view of the budgets it touched; the event is
    // recorded either way (enforcement is advisory).
    let r = app
        .graphql(
            Some(&ingest),
            "mutation($i: UsageInput!) { recordUsage(input: $i) { event { costUsd } budgetCheck { decision budgets { name decision } } } }",
            json!({"i": {"provider": "acme", "model": "acme-large", "endpoint": "summarise", "inputTokens": 1, "reportedCostUsd": "25"}}),
        )
        .await;
    let p = &r.data()["recordUsage"];
    assert_eq!(p["event"]["costUsd"], "25");
    assert_eq!(p["budgetCheck"]["decision"], "BLOCK");
    let mut names: Vec<&str> = p["budgetCheck"]["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, vec!["hard", "soft"]);
    let r = app
        .admin(CHECK, json!({"m": "acme-large", "est": "1"}))
        .await;
    assert_eq!(r.code(), "INVALID_INPUT");
    assert_eq!(r.field().as_deref(), Some("projectId"));
}

async fn alerts_are_listed_filtered_and_acknowledged(app: TestApp) {
    let project = app.create_project("checkout").await;
    let budget = create_budget(
        &app,
        json!({"name": "b", "amountUsd": "10", "period": "DAILY", "thresholds": [10, 20], "scope": {"projects": [project]}}),
    )
    .await;
    spend(&app, &project, "2.5", None).await;
    let alerts = alerts_of(&app, &budget).await;
    assert_eq!(alerts.len(), 2);
    assert!(alerts.iter().all(|a| a["acknowledged"] == false
        && a["deliveryStatus"] == "NONE"
        && a["kind"] == "BUDGET"));
    let id = alerts[0]["id"].as_str().unwrap();
    let r = app
        .admin(
            "mutation($id: ID!) { acknowledgeAlert(id: $id) { acknowledged acknowledgedAt } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r.data()["acknowledgeAlert"]["acknowledged"], true);
    let r = app
        .admin(ALERTS, json!({"f": {"acknowledged": false}}))
        .await;
    assert_eq!(r.data()["alerts"].as_array().unwrap().len(), 1);
    // The project's read token sees them; another project's does not.
    let reader = app.create_token(Some(&project), &["READ"]).await;
    let r = app.graphql(Some(&reader), ALERTS, json!({})).await;
    assert_eq!(r.data()["alerts"].as_array().unwrap().len(), 2);
    let r = app
        .graphql(
            Some(&reader),
            "mutation($id: ID!) { acknowledgeAlert(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r.code(), "FORBIDDEN", "acknowledging needs ADMIN");
    let other = app.create_project("search").await;
    let stranger = app.create_token(Some(&other), &["READ"]).await;
    let r = app.graphql(Some(&stranger), ALERTS, json!({})).await;
    assert_eq!(r.data()["alerts"], json!([]));
    let r = app
        .graphql(
            Some(&stranger),
            "query($id: ID!) { alert(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r.code(), "NOT_FOUND");
}

db_tests!(
    budgets_are_created_listed_changed_and_deleted,
    a_berlin_month_and_a_dst_week_have_their_own_periods,
    every_threshold_fires_once_under_200_concurrent_ingests,
    a_batch_crossing_several_thresholds_fires_each_once,
    a_new_budget_counts_what_was_already_spent,
    check_budget_answers_allow_warn_or_block,
    alerts_are_listed_filtered_and_acknowledged,
);
