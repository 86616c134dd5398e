//! Reading usage back: one event, filters, stable keyset pages, orders.

use aispend_e2e::{TestApp, db_tests};
use serde_json::{Value, json};

const EVENTS: &str = r#"query($f: UsageFilter, $first: Int!, $after: String, $order: UsageOrder!) {
  usageEvents(filter: $f, first: $first, after: $after, orderBy: $order) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id model costUsd occurredAt } }
  }
}"#;

async fn page(app: &TestApp, filter: Value, first: i64, after: Option<&str>, order: &str) -> Value {
    app.admin(
        EVENTS,
        json!({"f": filter, "first": first, "after": after, "order": order}),
    )
    .await
    .data()["usageEvents"]
        .clone()
}

fn ids(page: &Value) -> Vec<String> {
    page["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn one_event_is_read_by_id(app: TestApp) {
    let project = app.create_project("p").await;
    let e = app.record(json!({"projectId": project, "provider": "openai", "model": "gpt-4o", "inputTokens": 3})).await;
    let r = app
        .admin(
            "query($id: ID!) { usageEvent(id: $id) { id inputTokens } }",
            json!({"id": e["event"]["id"]}),
        )
        .await;
    assert_eq!(r.data()["usageEvent"]["inputTokens"], 3);
    let missing = app
        .admin("{ usageEvent(id: \"987654321\") { id } }", json!({}))
        .await;
    assert_eq!(missing.code(), "NOT_FOUND");
}

async fn every_filter_narrows_the_events(app: TestApp) {
    let a = app.create_project("a").await;
    let b = app.create_project("b").await;
    let rows = [
        (&a, "openai", "gpt-4o", "chat", "u1", "2026-01-10T10:00:00Z"),
        (
            &a,
            "openai",
            "gpt-4o-mini",
            "search",
            "u2",
            "2026-01-11T10:00:00Z",
        ),
        (
            &a,
            "anthropic",
            "claude-sonnet-4-5",
            "chat",
            "u1",
            "2026-01-12T10:00:00Z",
        ),
        (&b, "openai", "gpt-4o", "chat", "u3", "2026-01-13T10:00:00Z"),
        (
            &b,
            "google",
            "gemini-2.5-flash",
            "summarise",
            "u3",
            "2026-01-14T10:00:00Z",
        ),
    ];
    for (project, provider, model, endpoint, user, at) in rows {
        app.record(json!({"projectId": project, "provider": provider, "model": model, "endpoint": endpoint, "user": user, "occurredAt": at, "inputTokens": 1})).await;
    }
    let count = |filter: Value| {
        let app = &app;
        async move {
            page(app, filter, 10, None, "OCCURRED_AT_DESC").await["totalCount"]
                .as_i64()
                .unwrap()
        }
    };
    assert_eq!(count(json!({})).await, 5);
    assert_eq!(count(json!({"projects": [a]})).await, 3);
    assert_eq!(count(json!({"providers": ["OpenAI"]})).await, 3);
    assert_eq!(count(json!({"models": ["gpt-4o"]})).await, 2);
    assert_eq!(count(json!({"endpoints": ["chat", "summarise"]})).await, 4);
    assert_eq!(count(json!({"users": ["u3"]})).await, 2);
    assert_eq!(count(json!({"sources": ["API"]})).await, 5);
    assert_eq!(count(json!({"sources": ["IMPORT"]})).await, 0);
    assert_eq!(
        count(json!({"from": "2026-01-11T10:00:00Z", "to": "2026-01-13T10:00:00Z"})).await,
        2,
        "from is inclusive, to exclusive"
    );
    assert_eq!(
        count(json!({"projects": [b], "providers": ["openai"], "users": ["u3"]})).await,
        1
    );
}

async fn keyset_pages_cover_every_event_once_and_stay_stable(app: TestApp) {
    let project = app.create_project("p").await;
    for i in 0..25 {
        app.record(json!({"projectId": project, "provider": "openai", "model": "gpt-4o", "inputTokens": i + 1, "occurredAt": format!("2026-03-01T00:00:{:02}Z", i % 20)})).await;
    }
    let first = page(&app, json!({}), 10, None, "OCCURRED_AT_DESC").await;
    assert_eq!(first["totalCount"], 25);
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    assert_eq!(first["pageInfo"]["hasPreviousPage"], false);
    // Newer events arriving between pages do not shift the next page.
    for _ in 0..3 {
        app.record(json!({"projectId": project, "provider": "openai", "model": "gpt-4o", "inputTokens": 1, "occurredAt": "2026-03-02T00:00:00Z"})).await;
    }
    let cursor = first["pageInfo"]["endCursor"].as_str().unwrap().to_owned();
    let second = page(&app, json!({}), 10, Some(&cursor), "OCCURRED_AT_DESC").await;
    let third_cursor = second["pageInfo"]["endCursor"].as_str().unwrap().to_owned();
    let third = page(&app, json!({}), 10, Some(&third_cursor), "OCCURRED_AT_DESC").await;
    assert_eq!(third["pageInfo"]["hasNextPage"], false);
    assert_eq!(second["pageInfo"]["hasPreviousPage"], true);
    let mut seen: Vec<String> = [ids(&first), ids(&second), ids(&third)].concat();
    assert_eq!(seen.len(), 25, "pages of 10, 10 and 5");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 25, "no event appears twice");
    // Order is by occurredAt descending, then id descending.
    let times: Vec<String> = [first, second, third]
        .iter()
        .flat_map(|p| {
            p["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["occurredAt"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|x, y| y.cmp(x));
    assert_eq!(times, sorted);
}

async fn events_can_be_ordered_by_cost(app: TestApp) {
    let project = app.create_project("p").await;
    for tokens in [300, 100, 200] {
        app.record(json!({"projectId": project, "provider": "openai", "model": "gpt-4o", "inputTokens": tokens})).await;
    }
    app.record(json!({"projectId": project, "provider": "openai", "model": "unknown-model-x", "inputTokens": 1})).await;
    let desc = page(&app, json!({}), 10, None, "COST_DESC").await;
    let costs: Vec<Value> = desc["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["costUsd"].clone())
        .collect();
    assert_eq!(
        costs,
        vec![
            json!("0.00075"),
            json!("0.0005"),
            json!("0.00025"),
            Value::Null
        ],
        "unpriced last"
    );
    let asc = page(&app, json!({}), 2, None, "COST_ASC").await;
    let cursor = asc["pageInfo"]["endCursor"].as_str().unwrap().to_owned();
    let rest = page(&app, json!({}), 2, Some(&cursor), "COST_ASC").await;
    let costs: Vec<Value> = rest["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["costUsd"].clone())
        .collect();
    assert_eq!(costs, vec![json!("0.0005"), json!("0.00075")]);
    let mixed = app
        .admin(
            EVENTS,
            json!({"f": {}, "first": 2, "after": cursor, "order": "OCCURRED_AT_DESC"}),
        )
        .await;
    assert_eq!(
        mixed.code(),
        "INVALID_INPUT",
        "a cursor belongs to its order"
    );
}

db_tests!(
    one_event_is_read_by_id,
    every_filter_narrows_the_events,
    keyset_pages_cover_every_event_once_and_stay_stable,
    events_can_be_ordered_by_cost,
);
