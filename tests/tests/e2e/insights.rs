//! `insights`: recommendations with savings computed from the real token mix, and
//! anomalies against a trailing baseline, on data worked out by hand.

use aispend_e2e::{TestApp, db_tests};
use serde_json::{Value, json};

const RECOMMENDATIONS: &str = "query($f: UsageFilter) { recommendations(filter: $f) { action endpoint provider model alternativeProvider alternativeModel currentCostUsd projectedCostUsd potentialSavingsUsd confidence reasoning } }";

async fn recommendations_price_the_real_token_mix(app: TestApp) {
    let p = app.create_project("reco").await;
    // gpt-4o at $2.50 input / $10 output per million (batch $1.25 / $5, cache reads
    // $1.25): 2,000,000 input and 100,000 output tokens over 100 requests cost $6.00.
    let r = app
        .record(json!({"projectId": p, "provider": "openai", "model": "gpt-4o", "endpoint": "nightly-report",
                       "inputTokens": 2_000_000, "outputTokens": 100_000, "requests": 100, "occurredAt": "2026-03-02T02:00:00Z"}))
        .await;
    assert_eq!(r["event"]["costUsd"], "6", "{r}");
    // A pair below 1% of the spend gets no advice.
    app.record(json!({"projectId": p, "provider": "openai", "model": "gpt-4o-mini", "endpoint": "chat",
                      "inputTokens": 1000, "outputTokens": 100, "occurredAt": "2026-03-02T03:00:00Z"}))
        .await;
    let r = app
        .admin(
            RECOMMENDATIONS,
            json!({"f": {"from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}}),
        )
        .await;
    let list = r.data()["recommendations"]
        .as_array()
        .expect("a list")
        .clone();
    let brief: Vec<(String, Option<String>, String, String)> = list
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap_or("").to_owned(),
                r["alternativeModel"].as_str().map(str::to_owned),
                r["projectedCostUsd"].as_str().unwrap_or("").to_owned(),
                r["potentialSavingsUsd"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        brief,
        [
            // The cheapest chat model of at least the same (strong) tier in the
            // catalog: mistral-large at $0.50 / $1.50 -> 2 x 0.50 + 0.1 x 1.50 = $1.15.
            (
                "CHEAPER_MODEL".to_owned(),
                Some("mistral-large-2512".to_owned()),
                "1.15".to_owned(),
                "4.85".to_owned()
            ),
            // The Batch API: 2 x 1.25 + 0.1 x 5 = $3.00.
            ("BATCH_API".to_owned(), None, "3".to_owned(), "3".to_owned()),
            // Caching half the input: 1 x 2.50 + 1 x 1.25 + 0.1 x 10 = $4.75.
            (
                "PROMPT_CACHING".to_owned(),
                None,
                "4.75".to_owned(),
                "1.25".to_owned()
            ),
        ]
    );
    let cheaper = &list[0];
    assert_eq!(
        (
            cheaper["provider"].as_str(),
            cheaper["model"].as_str(),
            cheaper["endpoint"].as_str()
        ),
        (Some("openai"), Some("gpt-4o"), Some("nightly-report"))
    );
    assert_eq!(cheaper["alternativeProvider"], "mistral");
    // Confidence by the documented rule (domain/insights.rs): another provider's model
    // (openai -> mistral) 0.60; the Batch API for an endpoint named as offline work
    // ("nightly-report" contains "nightly" and "report") 0.70; prompt caching 0.50.
    let confidences: Vec<(&str, f64)> = list
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap(),
                r["confidence"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        confidences,
        vec![
            ("CHEAPER_MODEL", 0.6),
            ("BATCH_API", 0.7),
            ("PROMPT_CACHING", 0.5)
        ]
    );
    assert!(
        cheaper["reasoning"]
            .as_str()
            .is_some_and(|t| t.contains("strong") && t.contains("$6.00") && t.contains("$1.15")),
        "{cheaper}"
    );
    assert!(
        list.iter().all(|r| r["model"] == "gpt-4o"),
        "no advice for a pair under 1%"
    );

    // The dashboard's REST shape.
    let body: Value = app
        .client
        .get(format!(
            "{}/api/recommendations?start_date=2026-03-01&end_date=2026-04-01",
            app.base_url
        ))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .expect("an answer")
        .json()
        .await
        .expect("JSON");
    let first = &body["recommendations"][0];
    assert_eq!(first["model"], "gpt-4o");
    assert_eq!(first["alternative"], "mistral-large-2512");
    assert_eq!(first["potential_savings"].as_f64(), Some(4.85));
    assert_eq!(first["confidence"].as_f64(), Some(0.6));
    assert!(first["reasoning"].is_string());
    assert_eq!(body["filters"]["start_date"], "2026-03-01T00:00:00Z");
}

async fn anomalies_compare_a_day_with_its_trailing_week(app: TestApp) {
    let p = app.create_project("spiky").await;
    let mut batch = Vec::new();
    for day in 1..=7 {
        batch.push(json!({"projectId": p, "provider": "anthropic", "model": "claude-sonnet-4-5", "endpoint": "support",
                          "inputTokens": 10, "occurredAt": format!("2026-03-{day:02}T12:00:00Z"), "reportedCostUsd": "1"}));
        batch.push(json!({"projectId": p, "provider": "openai", "model": "gpt-4o", "endpoint": "chat",
                          "inputTokens": 10, "occurredAt": format!("2026-03-{day:02}T12:00:00Z"), "reportedCostUsd": "2"}));
    }
    // March 8: support jumps to $7, a new endpoint adds $3; OpenAI stays at $2.
    batch.push(json!({"projectId": p, "provider": "anthropic", "model": "claude-sonnet-4-5", "endpoint": "support",
                      "inputTokens": 10, "occurredAt": "2026-03-08T09:00:00Z", "reportedCostUsd": "7"}));
    batch.push(json!({"projectId": p, "provider": "anthropic", "model": "claude-sonnet-4-5", "endpoint": "triage",
                      "inputTokens": 10, "occurredAt": "2026-03-08T10:00:00Z", "reportedCostUsd": "3"}));
    batch.push(json!({"projectId": p, "provider": "openai", "model": "gpt-4o", "endpoint": "chat",
                      "inputTokens": 10, "occurredAt": "2026-03-08T12:00:00Z", "reportedCostUsd": "2"}));
    let r = app
        .admin(
            "mutation($i: [UsageInput!]!) { recordUsageBatch(inputs: $i) { accepted } }",
            json!({"i": batch}),
        )
        .await;
    assert_eq!(r.data()["recordUsageBatch"]["accepted"], 17);
    let r = app
        .admin(
            "query($f: UsageFilter) { anomalies(filter: $f) { subject value day spendUsd baselineUsd factor drivers { name costUsd } } }",
            json!({"f": {"from": "2026-03-08T00:00:00Z", "to": "2026-03-09T00:00:00Z"}}),
        )
        .await;
    assert_eq!(
        r.data()["anomalies"],
        json!([
            {"subject": "PROVIDER", "value": "anthropic", "day": "2026-03-08", "spendUsd": "10", "baselineUsd": "1", "factor": "10",
             "drivers": [{"name": "claude-sonnet-4-5", "costUsd": "10"}]},
            {"subject": "MODEL", "value": "claude-sonnet-4-5", "day": "2026-03-08", "spendUsd": "10", "baselineUsd": "1", "factor": "10",
             "drivers": [{"name": "support", "costUsd": "7"}, {"name": "triage", "costUsd": "3"}]},
            {"subject": "ENDPOINT", "value": "support", "day": "2026-03-08", "spendUsd": "7", "baselineUsd": "1", "factor": "7",
             "drivers": [{"name": "claude-sonnet-4-5", "costUsd": "7"}]}
        ])
    );
    // A higher bar leaves only the tenfold days.
    let r = app
        .admin(
            "query($f: UsageFilter) { anomalies(filter: $f, minFactor: \"8\") { subject value } }",
            json!({"f": {"from": "2026-03-08T00:00:00Z", "to": "2026-03-09T00:00:00Z"}}),
        )
        .await;
    assert_eq!(r.data()["anomalies"].as_array().map(Vec::len), Some(2));
    // The steady week itself has none.
    let r = app
        .admin(
            "query($f: UsageFilter) { anomalies(filter: $f) { value } }",
            json!({"f": {"from": "2026-03-02T00:00:00Z", "to": "2026-03-08T00:00:00Z"}}),
        )
        .await;
    assert_eq!(r.data()["anomalies"], json!([]));
}

db_tests!(
    recommendations_price_the_real_token_mix,
    anomalies_compare_a_day_with_its_trailing_week
);
