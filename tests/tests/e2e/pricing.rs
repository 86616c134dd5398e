//! Prices: unpriced events and re-pricing, corrections, effective dates, precedence,
//! import, the long-context tier and batch.

use super::ingest::price_acme;
use aispend_e2e::{TestApp, db_tests};
use serde_json::{Value, json};

const UPSERT: &str = "mutation($i: PriceInput!) { upsertPrice(input: $i) { id provider model source effectiveFrom standard { input output } } }";
const RECOMPUTE: &str = "mutation($f: UsageFilter) { recomputeCosts(filter: $f) }";

async fn upsert(app: &TestApp, input: Value) -> Value {
    app.admin(UPSERT, json!({"i": input})).await.data()["upsertPrice"].clone()
}

async fn cost_of(app: &TestApp, id: &Value) -> Value {
    let r = app
        .admin(
            "query($id: ID!) { usageEvent(id: $id) { costUsd costSource price { model source } } }",
            json!({"id": id}),
        )
        .await;
    r.data()["usageEvent"].clone()
}

async fn an_unpriced_event_is_priced_once_a_price_exists(app: TestApp) {
    let project = app.create_project("p").await;
    let e = app.record(json!({"projectId": project, "provider": "acme", "model": "acme-large", "inputTokens": 1_000_000, "outputTokens": 1_000_000})).await;
    assert_eq!(
        (e["event"]["costSource"].as_str(), &e["event"]["costUsd"]),
        (Some("UNPRICED"), &Value::Null)
    );
    // The price's arrival prices it: no recomputeCosts needed.
    price_acme(&app).await;
    assert_eq!(
        cost_of(&app, &e["event"]["id"]).await,
        json!({"costUsd": "3", "costSource": "COMPUTED", "price": {"model": "acme-large", "source": "USER"}})
    );
    assert_eq!(
        app.admin(RECOMPUTE, json!({})).await.data()["recomputeCosts"],
        0,
        "nothing left to change"
    );
}

async fn a_price_correction_reprices_the_range(app: TestApp) {
    let project = app.create_project("p").await;
    price_acme(&app).await;
    let early = app.record(json!({"projectId": project, "provider": "acme", "model": "acme-large", "inputTokens": 1_000_000, "occurredAt": "2026-01-05T00:00:00Z"})).await;
    let late = app.record(json!({"projectId": project, "provider": "acme", "model": "acme-large", "inputTokens": 1_000_000, "occurredAt": "2026-02-05T00:00:00Z"})).await;
    upsert(&app, json!({"provider": "acme", "model": "acme-large", "standard": {"input": "1.5", "output": "2"}})).await;
    let changed = app
        .admin(RECOMPUTE, json!({"f": {"from": "2026-02-01T00:00:00Z"}}))
        .await;
    assert_eq!(
        changed.data()["recomputeCosts"],
        1,
        "only the range asked for is re-priced"
    );
    assert_eq!(cost_of(&app, &early["event"]["id"]).await["costUsd"], "1");
    assert_eq!(cost_of(&app, &late["event"]["id"]).await["costUsd"], "1.5");
}

async fn an_event_is_priced_at_the_time_it_happened(app: TestApp) {
    let project = app.create_project("p").await;
    upsert(&app, json!({"provider": "acme", "model": "acme-large", "effectiveFrom": "2025-01-01T00:00:00Z", "effectiveTo": "2025-06-01T00:00:00Z", "standard": {"input": "1"}})).await;
    upsert(&app, json!({"provider": "acme", "model": "acme-large", "effectiveFrom": "2025-06-01T00:00:00Z", "standard": {"input": "2"}})).await;
    let record = |at: &str| json!({"projectId": project, "provider": "acme", "model": "acme-large", "inputTokens": 1_000_000, "occurredAt": at});
    assert_eq!(
        app.record(record("2025-03-01T00:00:00Z")).await["event"]["costUsd"],
        "1"
    );
    assert_eq!(
        app.record(record("2025-05-31T23:59:59Z")).await["event"]["costUsd"],
        "1"
    );
    assert_eq!(
        app.record(record("2025-06-01T00:00:00Z")).await["event"]["costUsd"],
        "2"
    );
    assert_eq!(
        app.record(record("2024-12-31T00:00:00Z")).await["event"]["costSource"],
        "UNPRICED"
    );
}

async fn a_user_price_beats_the_builtin_catalog(app: TestApp) {
    let project = app.create_project("p").await;
    let before = app.record(json!({"projectId": project, "provider": "openai", "model": "gpt-4o", "inputTokens": 1_000_000})).await;
    assert_eq!(before["event"]["costUsd"], "2.5");
    let stored = upsert(&app, json!({"provider": "openai", "model": "gpt-4o", "standard": {"input": "2", "output": "8"}, "note": "negotiated"})).await;
    assert_eq!(stored["source"], "USER");
    let after = app.record(json!({"projectId": project, "provider": "openai", "model": "gpt-4o", "inputTokens": 1_000_000})).await;
    assert_eq!(after["event"]["costUsd"], "2");
    assert_eq!(
        after["event"]["price"],
        json!({"model": "gpt-4o", "source": "USER"})
    );
}

async fn names_with_dates_match_and_other_words_do_not(app: TestApp) {
    let project = app.create_project("p").await;
    price_acme(&app).await;
    let cost = |model: &str| {
        let app = &app;
        let input = json!({"projectId": project, "provider": "acme", "model": model, "inputTokens": 1_000_000});
        async move { app.record(input).await["event"]["costUsd"].clone() }
    };
    assert_eq!(cost("acme-large").await, "1");
    assert_eq!(cost("ACME-Large").await, "1");
    assert_eq!(cost("acme-large-2025-10-01").await, "1");
    assert_eq!(cost("acme-large@20251001").await, "1");
    assert_eq!(
        cost("acme-large-eu-deployment").await,
        Value::Null,
        "an unknown word makes another model"
    );
    assert_eq!(
        cost("acme-large-mini").await,
        Value::Null,
        "a variant is another model"
    );
    assert_eq!(cost("acme-large-pro-2025-10-01").await, Value::Null);
    let alias = app.admin(r#"mutation { upsertPrice(input: {provider: "acme", model: "acme-small", standard: {input: "0.5"}, aliases: ["tiny-acme"]}) { id } }"#, json!({})).await;
    alias.data();
    assert_eq!(cost("tiny-acme").await, "0.5");
}

async fn long_context_and_batch_rates_apply(app: TestApp) {
    let project = app.create_project("p").await;
    upsert(
        &app,
        json!({
            "provider": "acme", "model": "acme-long",
            "standard": {"input": "1", "output": "4"},
            "longContext": {"threshold": 1000, "rates": {"input": "2", "output": "6"}},
            "batch": {"input": "0.4"}
        }),
    )
    .await;
    let cost = |input: i64, output: i64, tier: &str, requests: i64| {
        let app = &app;
        let body = json!({"projectId": project, "provider": "acme", "model": "acme-long", "inputTokens": input, "outputTokens": output, "serviceTier": tier, "requests": requests});
        async move { app.record(body).await["event"]["costUsd"].clone() }
    };
    assert_eq!(
        cost(1000, 1000, "STANDARD", 1).await,
        "0.005",
        "at the threshold: standard rates"
    );
    assert_eq!(
        cost(1001, 1000, "STANDARD", 1).await,
        "0.008002",
        "over it: the whole request at long-context rates"
    );
    assert_eq!(
        cost(1500, 0, "STANDARD", 2).await,
        "0.0015",
        "the threshold is per request"
    );
    assert_eq!(
        cost(1000, 1000, "BATCH", 1).await,
        "0.0024",
        "batch: its own input rate, half the output rate"
    );
    assert_eq!(
        cost(1001, 1000, "BATCH", 1).await,
        "0.004001",
        "batch above the threshold: half the long-context rates"
    );
}

async fn prices_are_listed_and_validated(app: TestApp) {
    let listed = app.admin("{ prices(filter: {providers: [\"openai\"], model: \"gpt-4o\"}) { model source standard { input } } }", json!({})).await;
    let rows = listed.data()["prices"].as_array().unwrap().clone();
    assert!(
        rows.iter().any(|p| p["model"] == "gpt-4o"
            && p["source"] == "BUILTIN"
            && p["standard"]["input"] == "2.50"),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .all(|p| p["model"].as_str().unwrap().contains("gpt-4o"))
    );
    let no_input = app
        .admin(
            UPSERT,
            json!({"i": {"provider": "acme", "model": "x", "standard": {"output": "1"}}}),
        )
        .await;
    assert_eq!(no_input.code(), "INVALID_INPUT");
    assert_eq!(no_input.field().as_deref(), Some("input.standard.input"));
    let negative = app
        .admin(
            UPSERT,
            json!({"i": {"provider": "acme", "model": "x", "standard": {"input": "-1"}}}),
        )
        .await;
    assert_eq!(negative.field().as_deref(), Some("input.standard.input"));
    let project = app.create_project("p").await;
    let reader = app.create_token(Some(&project), &["READ"]).await;
    let denied = app
        .graphql(
            Some(&reader),
            UPSERT,
            json!({"i": {"provider": "acme", "model": "x", "standard": {"input": "1"}}}),
        )
        .await;
    assert_eq!(denied.code(), "FORBIDDEN");
}

async fn a_litellm_price_map_is_imported(app: TestApp) {
    let document = json!({
        "sample_spec": {"input_cost_per_token": 0, "litellm_provider": "one of https://docs.litellm.ai/docs/providers"},
        "acme-pro": {"litellm_provider": "acme", "mode": "chat", "input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
                     "cache_read_input_token_cost": 3e-07, "input_cost_per_token_above_200k_tokens": 6e-06},
        "acme/acme-flash": {"litellm_provider": "acme", "mode": "chat", "input_cost_per_token": 1.875e-08, "output_cost_per_token": 7.5e-08},
        "acme-image": {"litellm_provider": "acme", "mode": "image_generation", "output_cost_per_image": 0.04}
    });
    let import = "mutation($d: JSON!) { importPrices(format: LITELLM, document: $d) { imported updated unchanged skipped skippedReasons { reason count } } }";
    let first = app.admin(import, json!({"d": document})).await;
    let r = &first.data()["importPrices"];
    assert_eq!(
        (
            r["imported"].as_i64(),
            r["updated"].as_i64(),
            r["skipped"].as_i64()
        ),
        (Some(3), Some(0), Some(1))
    );
    let again = app.admin(import, json!({"d": document})).await;
    assert_eq!(
        again.data()["importPrices"]["unchanged"],
        3,
        "a re-import changes nothing"
    );

    let project = app.create_project("p").await;
    let e = app.record(json!({"projectId": project, "provider": "acme", "model": "acme-flash", "inputTokens": 1_000_000, "outputTokens": 1_000_000})).await;
    assert_eq!(e["event"]["costUsd"], "0.09375");
    assert_eq!(e["event"]["price"]["source"], "IMPORT");
    let long = app.record(json!({"projectId": project, "provider": "acme", "model": "acme-pro", "inputTokens": 200_001})).await;
    assert_eq!(
        long["event"]["costUsd"], "1.200006",
        "above 200k the whole prompt bills at the higher rate"
    );
    // An image model LiteLLM prices per image needs no token rate.
    let images = app.record(json!({"projectId": project, "provider": "acme", "model": "acme-image", "imagesGenerated": 3})).await;
    assert_eq!(images["event"]["costUsd"], "0.12");
}

db_tests!(
    an_unpriced_event_is_priced_once_a_price_exists,
    a_price_correction_reprices_the_range,
    an_event_is_priced_at_the_time_it_happened,
    a_user_price_beats_the_builtin_catalog,
    names_with_dates_match_and_other_words_do_not,
    long_context_and_batch_rates_apply,
    prices_are_listed_and_validated,
    a_litellm_price_map_is_imported,
);
