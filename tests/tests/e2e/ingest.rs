//! Recording usage: fields, defaults, raw provider usage objects, batches.

use aispend_e2e::{TestApp, db_tests};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

const BATCH: &str = r#"mutation($inputs: [UsageInput!]!) {
  recordUsageBatch(inputs: $inputs) {
    accepted duplicates unpriced totalCostUsd
    events { id model costUsd costSource idempotencyKey }
    results { duplicate event { id } }
  }
}"#;

/// A price with simple rates for a made-up provider, so costs are easy to check.
pub async fn price_acme(app: &TestApp) {
    let r = app
        .admin(
            r#"mutation { upsertPrice(input: {
                provider: "acme", model: "acme-large",
                standard: {input: "1", output: "2", cacheRead: "0.1", cacheWrite: "1.25", cacheWrite1h: "2"}
            }) { id } }"#,
            json!({}),
        )
        .await;
    r.data();
}

async fn records_usage_and_returns_its_exact_cost(app: TestApp) {
    let project = app.create_project("checkout").await;
    let before = aispend_e2e::now();
    let payload = app
        .record(json!({"projectId": project, "provider": "openai", "model": "gpt-4o", "inputTokens": 1000, "outputTokens": 500}))
        .await;
    let e = &payload["event"];
    assert_eq!(payload["duplicate"], false);
    // 1000 x $2.50/M + 500 x $10/M
    assert_eq!(e["costUsd"], "0.0075");
    assert_eq!(e["costSource"], "COMPUTED");
    assert_eq!(e["price"], json!({"model": "gpt-4o", "source": "BUILTIN"}));
    assert_eq!(
        (
            e["requests"].as_i64(),
            e["serviceTier"].as_str(),
            e["source"].as_str()
        ),
        (Some(1), Some("STANDARD"), Some("API"))
    );
    assert_eq!(e["totalTokens"], 1500);
    let occurred: DateTime<Utc> = e["occurredAt"].as_str().unwrap().parse().unwrap();
    assert!(
        occurred >= before - chrono::Duration::seconds(1) && occurred <= aispend_e2e::now(),
        "occurredAt defaults to now"
    );
}

async fn every_field_is_stored_and_returned(app: TestApp) {
    let project = app.create_project("checkout").await;
    price_acme(&app).await;
    let input = json!({
        "projectId": project, "provider": "acme", "model": "acme-large",
        "inputTokens": 1000, "cacheReadTokens": 10000, "cacheWriteTokens": 2000, "cacheWrite1hTokens": 1000,
        "outputTokens": 500, "reasoningTokens": 200, "requests": 3, "endpoint": "summarise",
        "serviceTier": "PRIORITY", "latencyMs": 812, "occurredAt": "2026-11-20T10:15:30.250Z",
        "idempotencyKey": "req-1", "user": "user-42", "metadata": {"route": "/cart", "retry": false}
    });
    let e = app.record(input).await["event"].clone();
    // 1000 x 1 + 10000 x 0.1 + 2000 x 1.25 + 1000 x 2 + 500 x 2 = 7500 per million.
    assert_eq!(e["costUsd"], "0.0075");
    let expected = json!({
        "projectId": project, "provider": "acme", "model": "acme-large", "endpoint": "summarise", "source": "API",
        "occurredAt": "2026-11-20T10:15:30.250Z", "inputTokens": 1000, "outputTokens": 500, "cacheReadTokens": 10000,
        "cacheWriteTokens": 2000, "cacheWrite1hTokens": 1000, "reasoningTokens": 200, "totalTokens": 14500,
        "requests": 3, "serviceTier": "PRIORITY", "latencyMs": 812, "idempotencyKey": "req-1", "user": "user-42",
        "metadata": {"route": "/cart", "retry": false}, "costSource": "COMPUTED"
    });
    for (key, value) in expected.as_object().unwrap() {
        assert_eq!(&e[key], value, "field {key}");
    }
    let read = app
        .admin(
            "query($id: ID!) { usageEvent(id: $id) { costUsd metadata occurredAt user } }",
            json!({"id": e["id"]}),
        )
        .await;
    assert_eq!(
        read.data()["usageEvent"],
        json!({"costUsd": "0.0075", "metadata": {"route": "/cart", "retry": false}, "occurredAt": "2026-11-20T10:15:30.250Z", "user": "user-42"})
    );
}

async fn provider_names_are_normalised_and_a_model_prefix_is_understood(app: TestApp) {
    let project = app.create_project("p").await;
    let a = app.record(json!({"projectId": project, "provider": "  OpenAI ", "model": "gpt-4o", "inputTokens": 1000})).await;
    assert_eq!(a["event"]["provider"], "openai");
    let b = app
        .record(json!({"projectId": project, "model": "openai/gpt-4o", "inputTokens": 1000}))
        .await;
    assert_eq!(
        (
            b["event"]["provider"].as_str(),
            b["event"]["model"].as_str()
        ),
        (Some("openai"), Some("gpt-4o"))
    );
    assert_eq!(b["event"]["costUsd"], "0.0025");
    let c = app.record(json!({"projectId": project, "provider": "openai", "model": "openai/gpt-4o", "inputTokens": 1000})).await;
    assert_eq!(c["event"]["model"], "gpt-4o");
}

fn tokens(e: &Value) -> Value {
    json!([
        e["inputTokens"],
        e["cacheReadTokens"],
        e["cacheWriteTokens"],
        e["cacheWrite1hTokens"],
        e["outputTokens"],
        e["reasoningTokens"]
    ])
}

async fn raw_provider_usage_objects_are_normalised(app: TestApp) {
    let project = app.create_project("p").await;
    let record = |provider: &str, model: &str, usage: Value| json!({"projectId": project, "provider": provider, "model": model, "usage": usage});
    let openai_chat = app
        .record(record(
            "openai",
            "gpt-4o",
            json!({
                "prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
                "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}
            }),
        ))
        .await;
    assert_eq!(
        tokens(&openai_chat["event"]),
        json!([86, 1920, 0, 0, 300, 0])
    );
    // 86 x 2.50 + 1920 x 1.25 + 300 x 10 = 5615 per million
    assert_eq!(openai_chat["event"]["costUsd"], "0.005615");

    let responses = app
        .record(record("openai", "gpt-4o", json!({
            "input_tokens": 328, "input_tokens_details": {"cached_tokens": 128},
            "output_tokens": 52, "output_tokens_details": {"reasoning_tokens": 20}, "total_tokens": 380
        })))
        .await;
    assert_eq!(tokens(&responses["event"]), json!([200, 128, 0, 0, 52, 20]));

    let anthropic = app
        .record(record("anthropic", "claude-sonnet-4-5", json!({
            "input_tokens": 50, "cache_read_input_tokens": 10000, "cache_creation_input_tokens": 2500,
            "cache_creation": {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 2000},
            "output_tokens": 400, "service_tier": "standard"
        })))
        .await;
    assert_eq!(
        tokens(&anthropic["event"]),
        json!([50, 10000, 500, 2000, 400, 0])
    );

    let gemini = app
        .record(record(
            "google",
            "gemini-2.5-flash",
            json!({"usageMetadata": {
                "promptTokenCount": 1200, "cachedContentTokenCount": 1000,
                "candidatesTokenCount": 80, "thoughtsTokenCount": 420, "totalTokenCount": 1700
            }}),
        ))
        .await;
    assert_eq!(tokens(&gemini["event"]), json!([200, 1000, 0, 0, 500, 420]));

    let perplexity = app
        .record(record("perplexity", "sonar", json!({
            "prompt_tokens": 12, "completion_tokens": 300, "total_tokens": 312, "search_context_size": "low",
            "cost": {"input_tokens_cost": 0.0, "output_tokens_cost": 0.0003, "request_cost": 0.005, "total_cost": 0.0053}
        })))
        .await;
    assert_eq!(perplexity["event"]["costUsd"], "0.0053");
    assert_eq!(perplexity["event"]["costSource"], "REPORTED");
    assert_eq!(perplexity["event"]["price"], Value::Null);
}

async fn a_cost_the_provider_reported_wins(app: TestApp) {
    let project = app.create_project("p").await;
    let e = app
        .record(json!({"projectId": project, "provider": "openai", "model": "gpt-4o", "inputTokens": 1000, "reportedCostUsd": "0.0123456789"}))
        .await;
    // Stored to nine decimal places, rounded half away from zero.
    assert_eq!(e["event"]["costUsd"], "0.012345679");
    assert_eq!(e["event"]["costSource"], "REPORTED");
}

async fn a_batch_is_recorded_in_one_call(app: TestApp) {
    let project = app.create_project("p").await;
    let inputs = json!([
        {"projectId": project, "provider": "openai", "model": "gpt-4o", "inputTokens": 1000, "idempotencyKey": "a"},
        {"projectId": project, "provider": "openai", "model": "gpt-4o", "outputTokens": 1000},
        {"projectId": project, "provider": "openai", "model": "not-a-model-we-price", "inputTokens": 5},
    ]);
    let first = app.admin(BATCH, json!({"inputs": inputs})).await;
    let b = &first.data()["recordUsageBatch"];
    assert_eq!(
        (
            b["accepted"].as_i64(),
            b["duplicates"].as_i64(),
            b["unpriced"].as_i64()
        ),
        (Some(3), Some(0), Some(1))
    );
    assert_eq!(b["totalCostUsd"], "0.0125");
    let models: Vec<&str> = b["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["model"].as_str().unwrap())
        .collect();
    assert_eq!(
        models,
        vec!["gpt-4o", "gpt-4o", "not-a-model-we-price"],
        "events come back in input order"
    );
    assert_eq!(b["events"][2]["costSource"], "UNPRICED");
    assert_eq!(b["events"][2]["costUsd"], Value::Null);

    // Again: the keyed input is a duplicate, the others are new calls.
    let second = app.admin(BATCH, json!({"inputs": inputs})).await;
    let b2 = &second.data()["recordUsageBatch"];
    assert_eq!(
        (b2["accepted"].as_i64(), b2["duplicates"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(b2["totalCostUsd"], "0.01");
    assert_eq!(b2["results"][0]["duplicate"], true);
    assert_eq!(b2["results"][0]["event"]["id"], b["events"][0]["id"]);
    assert_eq!(app.event_count().await, 5);
}

async fn a_batch_of_ten_thousand_is_accepted(app: TestApp) {
    let project = app.create_project("p").await;
    let inputs: Vec<Value> = (0..10_000)
        .map(|i| json!({"projectId": project, "provider": "openai", "model": "gpt-4o-mini", "inputTokens": 100 + i % 7, "outputTokens": 20, "idempotencyKey": format!("k{i}")}))
        .collect();
    let r = app.admin("mutation($inputs: [UsageInput!]!) { recordUsageBatch(inputs: $inputs) { accepted duplicates } }", json!({"inputs": inputs})).await;
    assert_eq!(
        r.data()["recordUsageBatch"],
        json!({"accepted": 10000, "duplicates": 0})
    );
    assert_eq!(app.event_count().await, 10_000);
}

db_tests!(
    records_usage_and_returns_its_exact_cost,
    every_field_is_stored_and_returned,
    provider_names_are_normalised_and_a_model_prefix_is_understood,
    raw_provider_usage_objects_are_normalised,
    a_cost_the_provider_reported_wins,
    a_batch_is_recorded_in_one_call,
    a_batch_of_ten_thousand_is_accepted,
);
