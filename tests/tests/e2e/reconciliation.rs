//! `reconciliation`: a crafted month of tracked events and provider reports, with
//! every status worked out by hand.

use aispend_e2e::{TestApp, db_tests};
use serde_json::{Value, json};

const QUERY: &str = "query($f: ReconciliationFilterInput!, $t: Decimal) { reconciliation(filter: $f, tolerancePct: $t) { provider day model status deltaUsd deltaPct tracked { costUsd tokens requests } reported { costUsd tokens requests } } }";

async fn track(
    app: &TestApp,
    project: &str,
    provider: &str,
    model: &str,
    day: &str,
    cost: &str,
    (input, output): (i64, i64),
) {
    let r = app
        .record(json!({"projectId": project, "provider": provider, "model": model, "inputTokens": input,
                       "outputTokens": output, "occurredAt": format!("2026-03-{day}T12:00:00Z"), "reportedCostUsd": cost}))
        .await;
    assert_eq!(r["duplicate"], false, "{r}");
}

async fn report(
    app: &TestApp,
    project: &str,
    provider: &str,
    model: &str,
    day: &str,
    amount: Option<&str>,
    (input, output): (i64, i64),
) {
    let next = format!(
        "2026-03-{:02}T00:00:00Z",
        day.parse::<u32>().expect("a day") + 1
    );
    let mut input_obj = json!({"provider": provider, "projectId": project, "model": model,
                               "from": format!("2026-03-{day}T00:00:00Z"), "to": next,
                               "inputTokens": input, "outputTokens": output, "requests": 1});
    if let Some(a) = amount {
        input_obj["amountUsd"] = json!(a);
    }
    let r = app
        .admin(
            "mutation($i: ManualUsageInput!) { recordManualUsage(input: $i) { id } }",
            json!({"i": input_obj}),
        )
        .await;
    assert!(r.data()["recordManualUsage"]["id"].is_string());
}

async fn crafted_month(app: &TestApp) -> String {
    let p = app.create_project("reconciled").await;
    // 03-01: tracked $10, reported $10.20 (2%): matched at 5%.
    track(
        app,
        &p,
        "openai",
        "gpt-4o-2024-08-06",
        "01",
        "10",
        (1000, 100),
    )
    .await;
    report(
        app,
        &p,
        "openai",
        "GPT-4o",
        "01",
        Some("10.20"),
        (1000, 100),
    )
    .await;
    // 03-02: tracked $10, reported $12 (20%): drift.
    track(app, &p, "openai", "gpt-4o", "02", "4", (400, 40)).await;
    track(app, &p, "openai", "gpt-4o-2024-11-20", "02", "6", (600, 60)).await;
    report(app, &p, "openai", "gpt-4o", "02", Some("12"), (1000, 100)).await;
    // 03-03: tracked only.
    track(app, &p, "openai", "gpt-4o-mini", "03", "5", (5000, 500)).await;
    // 03-04: reported only.
    report(app, &p, "openai", "o3", "04", Some("3"), (300, 30)).await;
    // 03-05: tokens only on the reported side, 2000 against 2010 (0.5%).
    track(
        app,
        &p,
        "anthropic",
        "claude-sonnet-4-5-20250929",
        "05",
        "1",
        (1000, 1000),
    )
    .await;
    report(
        app,
        &p,
        "anthropic",
        "claude-sonnet-4-5",
        "05",
        None,
        (1010, 1000),
    )
    .await;
    // 03-06: tracked, but no price is known and none was reported: no tracked money.
    let r = app
        .record(json!({"projectId": p, "provider": "openai", "model": "gpt-unpriced-x", "inputTokens": 70,
                       "outputTokens": 7, "occurredAt": "2026-03-06T12:00:00Z"}))
        .await;
    assert_eq!(r["event"]["costSource"], "UNPRICED", "{r}");
    // Outside the range asked for.
    track(app, &p, "openai", "gpt-4o", "31", "99", (1, 1)).await;
    p
}

fn by_day_of(rows: &[Value], day: &str, model: &str) -> Value {
    rows.iter()
        .find(|r| r["day"] == day && r["model"] == model)
        .cloned()
        .expect("a row")
}

fn rows_of(r: &aispend_e2e::Gql) -> Vec<Value> {
    r.data()["reconciliation"].as_array().expect("rows").clone()
}

fn summary(rows: &[Value]) -> Vec<(String, String, String, String)> {
    rows.iter()
        .map(|r| {
            let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
            (
                s(&r["provider"]),
                s(&r["day"]),
                s(&r["model"]),
                s(&r["status"]),
            )
        })
        .collect()
}

async fn every_status_on_a_crafted_month(app: TestApp) {
    let project = crafted_month(&app).await;
    let filter = json!({"from": "2026-03-01T00:00:00Z", "to": "2026-03-08T00:00:00Z", "projectIds": [project]});
    let r = app.admin(QUERY, json!({"f": filter})).await;
    let rows = rows_of(&r);
    let t = |a: &str, b: &str, c: &str, d: &str| {
        (a.to_owned(), b.to_owned(), c.to_owned(), d.to_owned())
    };
    assert_eq!(
        summary(&rows),
        [
            t("anthropic", "2026-03-05", "claude-sonnet-4-5", "MATCHED"),
            t("openai", "2026-03-01", "gpt-4o", "MATCHED"),
            t("openai", "2026-03-02", "gpt-4o", "DRIFT"),
            t("openai", "2026-03-03", "gpt-4o-mini", "MISSING_REPORTED"),
            t("openai", "2026-03-04", "o3", "MISSING_TRACKED"),
            t("openai", "2026-03-06", "gpt-unpriced-x", "MISSING_REPORTED"),
        ]
    );
    let unpriced = by_day_of(&rows, "2026-03-06", "gpt-unpriced-x");
    assert_eq!(
        unpriced["tracked"],
        json!({"costUsd": null, "tokens": 77, "requests": 1}),
        "an unpriced day has no tracked money, not zero"
    );
    let by_day = |day: &str, model: &str| {
        rows.iter()
            .find(|r| r["day"] == day && r["model"] == model)
            .cloned()
            .expect("a row")
    };
    let first = by_day("2026-03-01", "gpt-4o");
    assert_eq!(
        (first["deltaUsd"].as_str(), first["deltaPct"].as_str()),
        (Some("0.2"), Some("2"))
    );
    assert_eq!(
        first["tracked"],
        json!({"costUsd": "10", "tokens": 1100, "requests": 1})
    );
    assert_eq!(
        first["reported"],
        json!({"costUsd": "10.2", "tokens": 1100, "requests": 1})
    );
    let drift = by_day("2026-03-02", "gpt-4o");
    assert_eq!(
        drift["tracked"]["costUsd"], "10",
        "two dated ids of gpt-4o meet in one row"
    );
    assert_eq!(
        (drift["deltaUsd"].as_str(), drift["deltaPct"].as_str()),
        (Some("2"), Some("20"))
    );
    let missing = by_day("2026-03-03", "gpt-4o-mini");
    assert_eq!(
        (missing["deltaUsd"].as_str(), missing["deltaPct"].as_str()),
        (Some("-5"), Some("-100"))
    );
    assert_eq!(missing["reported"]["costUsd"], Value::Null);
    let untracked = by_day("2026-03-04", "o3");
    assert_eq!(
        (
            untracked["deltaUsd"].as_str(),
            untracked["deltaPct"].as_str()
        ),
        (Some("3"), None)
    );
    let tokens = by_day("2026-03-05", "claude-sonnet-4-5");
    assert_eq!(
        (
            tokens["tracked"]["tokens"].as_i64(),
            tokens["reported"]["tokens"].as_i64()
        ),
        (Some(2000), Some(2010))
    );
    assert_eq!(
        tokens["deltaUsd"],
        Value::Null,
        "no reported money to compare"
    );

    // A tighter tolerance turns the 2% day into drift; the token day (0.5%) holds.
    let strict = app.admin(QUERY, json!({"f": filter, "t": "1"})).await;
    let strict = rows_of(&strict);
    assert_eq!(
        strict
            .iter()
            .find(|r| r["day"] == "2026-03-01")
            .expect("a row")["status"],
        "DRIFT"
    );
    assert_eq!(
        strict
            .iter()
            .find(|r| r["day"] == "2026-03-05")
            .expect("a row")["status"],
        "MATCHED"
    );

    // Provider filter, and the day outside the range never shows.
    let openai = app
        .admin(QUERY, json!({"f": {"from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z", "providers": ["openai"]}}))
        .await;
    let openai = rows_of(&openai);
    assert!(openai.iter().all(|r| r["provider"] == "openai"));
    assert_eq!(openai.len(), 6, "March 31 is in this range: {openai:#?}");
    assert_eq!(openai[5]["day"], "2026-03-31");
}

async fn ranges_tolerances_and_tokens_are_checked(app: TestApp) {
    let project = crafted_month(&app).await;
    let backwards = app
        .admin(
            QUERY,
            json!({"f": {"from": "2026-03-08T00:00:00Z", "to": "2026-03-01T00:00:00Z"}}),
        )
        .await;
    assert_eq!(backwards.code(), "INVALID_DATE_RANGE");
    let tolerance = app
        .admin(
            QUERY,
            json!({"f": {"from": "2026-03-01T00:00:00Z", "to": "2026-03-08T00:00:00Z"}, "t": "-1"}),
        )
        .await;
    assert_eq!(tolerance.code(), "INVALID_INPUT");
    // Another project's reader sees nothing of this one.
    let other = app.create_project("elsewhere").await;
    let reader = app.create_token(Some(&other), &["READ"]).await;
    let r = app
        .graphql(
            Some(&reader),
            QUERY,
            json!({"f": {"from": "2026-03-01T00:00:00Z", "to": "2026-03-08T00:00:00Z"}}),
        )
        .await;
    assert_eq!(rows_of(&r), Vec::<Value>::new());
    let r = app
        .graphql(Some(&reader), QUERY, json!({"f": {"from": "2026-03-01T00:00:00Z", "to": "2026-03-08T00:00:00Z", "projectIds": [project]}}))
        .await;
    assert_eq!(r.code(), "FORBIDDEN");
    let anonymous = app
        .graphql(
            None,
            QUERY,
            json!({"f": {"from": "2026-03-01T00:00:00Z", "to": "2026-03-08T00:00:00Z"}}),
        )
        .await;
    assert_eq!(anonymous.code(), "UNAUTHORIZED");
}

db_tests!(
    every_status_on_a_crafted_month,
    ranges_tolerances_and_tokens_are_checked
);
