//! Bad input gets a clear error with its field path, changes nothing, and the server
//! stays up whatever it is sent.

use aispend_e2e::{RECORD_USAGE, TestApp, db_tests};
use serde_json::{Value, json};

fn valid(project: &str) -> Value {
    json!({"projectId": project, "provider": "openai", "model": "gpt-4o", "inputTokens": 10, "outputTokens": 5})
}

async fn assert_nothing_stored_and_still_serving(app: &TestApp) {
    assert_eq!(
        app.event_count().await,
        0,
        "a rejected request must not store anything"
    );
    let health = app
        .client
        .get(format!("{}/healthz", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

async fn each_invalid_field_is_rejected_with_its_path(app: TestApp) {
    let project = app.create_project("p").await;
    let in_48h = (aispend_e2e::now() + chrono::Duration::hours(48)).to_rfc3339();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("inputTokens", json!(-1), "input.inputTokens"),
        (
            "outputTokens",
            json!(1_000_000_000_001_i64),
            "input.outputTokens",
        ),
        ("cacheReadTokens", json!(-5), "input.cacheReadTokens"),
        ("requests", json!(0), "input.requests"),
        ("provider", json!(""), "input.provider"),
        ("provider", json!("   "), "input.provider"),
        ("model", json!(""), "input.model"),
        ("occurredAt", json!(in_48h), "input.occurredAt"),
        (
            "occurredAt",
            json!("1999-12-31T23:59:59Z"),
            "input.occurredAt",
        ),
        ("latencyMs", json!(-3), "input.latencyMs"),
        ("metadata", json!([1, 2]), "input.metadata"),
        ("reasoningTokens", json!(6), "input.reasoningTokens"),
        ("reportedCostUsd", json!("-1"), "input.reportedCostUsd"),
        ("reportedCostUsd", json!("abc"), "input.reportedCostUsd"),
        ("reportedCostUsd", json!(true), "input.reportedCostUsd"),
        ("projectId", json!("not-a-uuid"), "input.projectId"),
        ("usage", json!({"no": "idea"}), "input.usage"),
        ("endpoint", json!("x".repeat(201)), "input.endpoint"),
    ];
    for (field, value, path) in cases {
        let mut input = valid(&project);
        input[field] = value.clone();
        let r = app.admin(RECORD_USAGE, json!({"input": input})).await;
        assert_eq!(r.code(), "INVALID_INPUT", "{field} = {value}: {:#}", r.body);
        assert_eq!(r.field().as_deref(), Some(path), "{field} = {value}");
    }
    assert_nothing_stored_and_still_serving(&app).await;
}

async fn every_problem_of_an_input_is_reported_at_once(app: TestApp) {
    let project = app.create_project("p").await;
    let r = app
        .admin(RECORD_USAGE, json!({"input": {"projectId": project, "provider": "", "model": "", "inputTokens": -1, "requests": 0}}))
        .await;
    assert_eq!(r.code(), "INVALID_INPUT");
    assert_eq!(
        r.fields(),
        vec![
            "input.provider",
            "input.model",
            "input.inputTokens",
            "input.requests"
        ]
    );
}

async fn token_fields_and_a_usage_object_together_are_an_input_error(app: TestApp) {
    let project = app.create_project("p").await;
    let mut input = valid(&project);
    input["usage"] = json!({"prompt_tokens": 10, "completion_tokens": 5});
    let r = app.admin(RECORD_USAGE, json!({"input": input})).await;
    assert_eq!(r.code(), "INVALID_INPUT");
    assert_eq!(r.field().as_deref(), Some("input.usage"));
    assert_nothing_stored_and_still_serving(&app).await;
}

async fn an_unknown_service_tier_is_an_input_error(app: TestApp) {
    let project = app.create_project("p").await;
    let mut input = valid(&project);
    input["serviceTier"] = json!("TURBO");
    let by_variable = app.admin(RECORD_USAGE, json!({"input": input})).await;
    assert_eq!(by_variable.code(), "INVALID_INPUT");
    assert!(
        by_variable.errors()[0]["message"]
            .as_str()
            .unwrap()
            .contains("TURBO")
    );
    let inline = app
        .admin(&format!("mutation {{ recordUsage(input: {{projectId: \"{project}\", provider: \"openai\", model: \"gpt-4o\", serviceTier: TURBO}}) {{ duplicate }} }}"), json!({}))
        .await;
    assert_eq!(inline.code(), "INVALID_INPUT");
    assert!(
        inline.field().is_some_and(|f| f.contains("serviceTier")),
        "{:#}",
        inline.body
    );
    let wrong_type = app.admin(RECORD_USAGE, json!({"input": {"projectId": project, "provider": "openai", "model": "gpt-4o", "inputTokens": "ten"}})).await;
    assert_eq!(wrong_type.code(), "INVALID_INPUT");
    assert_nothing_stored_and_still_serving(&app).await;
}

async fn one_bad_input_rejects_the_whole_batch(app: TestApp) {
    let project = app.create_project("p").await;
    let mut inputs: Vec<Value> = (0..5).map(|_| valid(&project)).collect();
    inputs[3]["inputTokens"] = json!(-7);
    inputs[4]["model"] = json!("");
    let r = app
        .admin(
            "mutation($i: [UsageInput!]!) { recordUsageBatch(inputs: $i) { accepted } }",
            json!({"i": inputs}),
        )
        .await;
    assert_eq!(r.code(), "INVALID_INPUT");
    assert_eq!(r.fields(), vec!["inputs.3.inputTokens", "inputs.4.model"]);
    assert_nothing_stored_and_still_serving(&app).await;
}

async fn a_batch_over_ten_thousand_is_refused(app: TestApp) {
    let project = app.create_project("p").await;
    let inputs: Vec<Value> = (0..10_001).map(|_| valid(&project)).collect();
    let r = app
        .admin(
            "mutation($i: [UsageInput!]!) { recordUsageBatch(inputs: $i) { accepted } }",
            json!({"i": inputs}),
        )
        .await;
    assert_eq!(r.code(), "INVALID_INPUT");
    assert_eq!(r.field().as_deref(), Some("inputs"));
    assert_nothing_stored_and_still_serving(&app).await;
}

async fn malformed_json_and_oversized_bodies_are_input_errors(app: TestApp) {
    let url = format!("{}/graphql", app.base_url);
    let garbage = app
        .client
        .post(&url)
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/json")
        .body("{\"query\": \"mutation { recordUsage(")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);
    let body: Value = garbage.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "INVALID_INPUT");

    let huge = format!(
        "{{\"query\": \"{{ __typename }}\", \"variables\": {{\"pad\": \"{}\"}}}}",
        "x".repeat(33 * 1024 * 1024)
    );
    let too_big = app
        .client
        .post(&url)
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await;
    match too_big {
        Ok(too_big) => {
            assert_eq!(too_big.status(), 413);
            // The server closes this connection: it says so, so that the client does
            // not send the next request on it.
            assert_eq!(too_big.headers()["connection"], "close");
            let body: Value = too_big.json().await.unwrap();
            assert_eq!(body["errors"][0]["extensions"]["code"], "INVALID_INPUT");
        }
        // The server answers 413 as soon as the declared length is over the limit and
        // closes without reading the rest; a client still writing may see that close
        // before the answer. Anything else (refused, timed out) is a failure.
        Err(e) => assert!(
            closed_while_sending(&e),
            "the oversized body was neither refused with 413 nor cut off: {e:?}"
        ),
    }

    let bad_query = app.admin("mutation { recordUsage(", json!({})).await;
    assert_eq!(bad_query.code(), "INVALID_INPUT");
    assert_nothing_stored_and_still_serving(&app).await;
}

/// Whether a request failed because the server closed the connection while the body
/// was still being sent.
fn closed_while_sending(e: &reqwest::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            )
        {
            return e.is_request() && !e.is_connect();
        }
        source = err.source();
    }
    false
}

async fn query_arguments_are_checked(app: TestApp) {
    let too_many = app
        .admin("{ usageEvents(first: 1001) { totalCount } }", json!({}))
        .await;
    assert_eq!(too_many.code(), "INVALID_INPUT");
    assert_eq!(too_many.field().as_deref(), Some("first"));
    let range = app
        .admin("{ usageEvents(filter: {from: \"2026-02-01T00:00:00Z\", to: \"2026-01-01T00:00:00Z\"}) { totalCount } }", json!({}))
        .await;
    assert_eq!(range.code(), "INVALID_DATE_RANGE");
    let cursor = app
        .admin(
            "{ usageEvents(after: \"garbage\") { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(cursor.code(), "INVALID_INPUT");
    assert_eq!(cursor.field().as_deref(), Some("after"));
    let bad_project = app
        .admin(
            "{ usageEvents(filter: {projects: [\"nope\"]}) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(bad_project.field().as_deref(), Some("filter.projects.0"));
}

/// Money and rates are the `Decimal` scalar: a bad one is named by its argument path,
/// inline or in variables, nested or not; a JSON number is read from its digits.
async fn a_bad_decimal_is_named_and_a_number_is_read_exactly(app: TestApp) {
    let project = app.create_project("p").await;
    let inline = app
        .admin(
            r#"mutation { upsertPrice(input: {provider: "acme", model: "m",
                standard: {input: "1", output: "two"}}) { id } }"#,
            json!({}),
        )
        .await;
    assert_eq!(inline.code(), "INVALID_INPUT", "{:#}", inline.body);
    assert_eq!(inline.field().as_deref(), Some("input.standard.output"));
    let nested = app
        .admin(
            "mutation($i: PriceInput!) { upsertPrice(input: $i) { id } }",
            json!({"i": {"provider": "acme", "model": "m", "standard": {"input": "1", "output": "2"},
                         "longContext": {"threshold": 1000, "rates": {"input": "1e"}}}}),
        )
        .await;
    assert_eq!(nested.code(), "INVALID_INPUT", "{:#}", nested.body);
    assert_eq!(
        nested.field().as_deref(),
        Some("input.longContext.rates.input")
    );
    let prices = app
        .admin(
            "{ prices(filter: {providers: [\"acme\"]}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(prices.data()["prices"], json!([]), "nothing was stored");
    // 0.1 as a JSON number is one tenth, not the float nearest to it.
    let mut input = valid(&project);
    input["reportedCostUsd"] = json!(0.1);
    let r = app.record(input).await;
    assert_eq!(r["event"]["costUsd"], "0.1");
}

db_tests!(
    a_bad_decimal_is_named_and_a_number_is_read_exactly,
    each_invalid_field_is_rejected_with_its_path,
    every_problem_of_an_input_is_reported_at_once,
    token_fields_and_a_usage_object_together_are_an_input_error,
    an_unknown_service_tier_is_an_input_error,
    one_bad_input_rejects_the_whole_batch,
    a_batch_over_ten_thousand_is_refused,
    malformed_json_and_oversized_bodies_are_input_errors,
    query_arguments_are_checked,
);
