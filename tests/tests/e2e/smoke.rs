use aispend_e2e::{TestApp, db_tests};
use serde_json::json;

async fn records_usage_and_returns_its_exact_cost(app: TestApp) {
    let project = app.create_project("smoke").await;
    let payload = app
        .record(json!({"projectId": project, "provider": "openai", "model": "gpt-4o", "inputTokens": 1000, "outputTokens": 500}))
        .await;
    assert_eq!(payload["duplicate"], false);
    assert_eq!(payload["event"]["costUsd"], "0.0075");
    assert_eq!(payload["event"]["costSource"], "COMPUTED");
}

db_tests!(records_usage_and_returns_its_exact_cost);
