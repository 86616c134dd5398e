//! Hostile input on every ingest path: malformed JSON, wrong types, huge numbers,
//! deep nesting, long strings, invalid UTF-8 and NUL bytes. Each is refused with a
//! 4xx (or, for a well-formed GraphQL request, the GraphQL error `INVALID_INPUT` naming
//! the field, as GraphQL over HTTP answers a valid request with `application/json`)
//! and a message a client can act on, and the ledger is unchanged afterwards.

use aispend_e2e::{TestApp, db_tests};
use serde_json::{Value, json};

const RECORD: &str = "mutation($i: UsageInput!) { recordUsage(input: $i) { duplicate } }";

/// A raw POST; (status, body as text).
async fn post(app: &TestApp, path: &str, body: Vec<u8>) -> (u16, String) {
    let r = app
        .client
        .post(format!("{}{path}", app.base_url))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

fn deep(levels: usize) -> String {
    format!("{}{}", "[".repeat(levels), "]".repeat(levels))
}

async fn graphql_ingest_refuses_hostile_bodies(app: TestApp) {
    let p = app.create_project("hostile").await;
    let before = app.event_count().await;

    // Not a GraphQL request at all: 400 with what is wrong with the JSON.
    let mut invalid_utf8 = br#"{"query": "{ version }"#.to_vec();
    invalid_utf8.extend([0xff, 0xfe, b'"', b'}']);
    let deep_variables = format!(
        r#"{{"query": "{{ version }}", "variables": {{"a": {}}}}}"#,
        deep(100_000)
    );
    for (what, body, says) in [
        ("malformed", b"{\"query\": ".to_vec(), "malformed JSON"),
        ("invalid UTF-8", invalid_utf8, "malformed JSON"),
        (
            "deep nesting",
            deep_variables.into_bytes(),
            "recursion limit",
        ),
        ("wrong shape", br#"{"query": 5}"#.to_vec(), "malformed JSON"),
    ] {
        let (status, text) = post(&app, "/graphql", body).await;
        assert_eq!(status, 400, "{what}: {text}");
        let body: Value = serde_json::from_str(&text).expect("a JSON error");
        assert_eq!(body["errors"][0]["extensions"]["code"], "INVALID_INPUT");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap_or("")
                .contains(says),
            "{what}: {text}"
        );
    }

    // Declared over the body limit: 413 from the headers, before any of it is read.
    let (status, head, body) = app.post_head_only("/graphql", 33 * 1024 * 1024).await;
    assert_eq!(status, 413, "{body}");
    assert!(head.contains("connection: close"), "{head}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "INVALID_INPUT");

    // Well-formed requests with hostile values: INVALID_INPUT naming the field.
    let usage = |extra: Value| {
        let mut i =
            json!({"projectId": p, "provider": "openai", "model": "gpt-4o", "inputTokens": 10});
        for (k, v) in extra.as_object().expect("object") {
            i[k] = v.clone();
        }
        i
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        ("a string for a count", usage(json!({"inputTokens": "abc"})), "input.inputTokens"),
        ("a float for a count", usage(json!({"inputTokens": 1.5})), "input.inputTokens"),
        ("1e30 tokens", usage(json!({"inputTokens": 1e30})), "input.inputTokens"),
        ("2^63 tokens", serde_json::from_str(&format!(
            r#"{{"projectId": "{p}", "provider": "openai", "model": "gpt-4o", "inputTokens": 9223372036854775808}}"#
        )).expect("json"), "input.inputTokens"),
        ("10^15 tokens", usage(json!({"inputTokens": 1_000_000_000_000_000_i64})), "input.inputTokens"),
        ("negative tokens", usage(json!({"outputTokens": -1})), "input.outputTokens"),
        ("a 100,000-character model", usage(json!({"model": "m".repeat(100_000)})), "input.model"),
        ("NUL in a model", usage(json!({"model": "gpt\u{0}4o"})), "input.model"),
        ("C1 control in an endpoint", usage(json!({"endpoint": "/ch\u{85}at"})), "input.endpoint"),
        ("NUL in a metadata key", usage(json!({"metadata": {"a\u{0}b": "x"}})), "input.metadata"),
        ("a 1 MB metadata value", usage(json!({"metadata": {"k": "v".repeat(1_000_000)}})), "input.metadata"),
        ("deeply nested metadata", usage(json!({"metadata": serde_json::from_str::<Value>(&format!(r#"{{"k": {}}}"#, deep(100))).expect("json")})), "input.metadata"),
        ("a cost over the per-event bound", usage(json!({"reportedCostUsd": "1000000000"})), "input.reportedCostUsd"),
        ("a date past 2200", usage(json!({"occurredAt": "9999-12-31T00:00:00Z"})), "input.occurredAt"),
        ("a wrong project id", usage(json!({"projectId": "not-a-uuid"})), "input.projectId"),
    ];
    for (what, input, field) in cases {
        let r = app
            .graphql(Some(&app.admin_token), RECORD, json!({"i": input}))
            .await;
        assert!(!r.errors().is_empty(), "{what} was accepted: {:#}", r.body);
        assert_eq!(r.code(), "INVALID_INPUT", "{what}: {:#}", r.body);
        let named: Vec<String> = r.field().into_iter().chain(r.fields()).collect();
        assert!(
            named.iter().any(|f| f == field),
            "{what}: expected the field {field}, got {named:?}: {:#}",
            r.body
        );
    }

    // A `Decimal` that does not parse (too large for 28 digits) is refused during
    // validation, with its argument path.
    let r = app
        .graphql(
            Some(&app.admin_token),
            RECORD,
            json!({"i": usage(json!({"reportedCostUsd": "1e400"}))}),
        )
        .await;
    assert_eq!(r.code(), "INVALID_INPUT");
    assert_eq!(r.field().as_deref(), Some("input.reportedCostUsd"));
    let message = r.errors()[0]["message"].as_str().unwrap_or("").to_owned();
    assert!(message.contains("Decimal"), "{message}");

    // A batch with one bad event stores none of it.
    let batch = json!([
        usage(json!({"idempotencyKey": "ok-1"})),
        usage(json!({"model": "x\u{0}"})),
        usage(json!({"idempotencyKey": "ok-3"}))
    ]);
    let r = app
        .graphql(
            Some(&app.admin_token),
            "mutation($i: [UsageInput!]!) { recordUsageBatch(inputs: $i) { accepted } }",
            json!({"i": batch}),
        )
        .await;
    assert_eq!(r.code(), "INVALID_INPUT");
    let named: Vec<String> = r.field().into_iter().chain(r.fields()).collect();
    assert!(named.iter().any(|f| f == "inputs.1.model"), "{named:?}");

    assert_eq!(app.event_count().await, before, "the ledger is unchanged");
}

async fn rest_ingest_refuses_hostile_bodies(app: TestApp) {
    let p = app.create_project("hostile-rest").await;
    let before = app.event_count().await;
    let mut invalid_utf8 = format!(r#"{{"project_id": "{p}", "model": "gpt"#).into_bytes();
    invalid_utf8.extend([0xff, b'"', b'}']);
    for (what, body) in [
        ("malformed", b"{\"project_id\": ".to_vec()),
        ("invalid UTF-8", invalid_utf8),
        ("deep nesting", deep(100_000).into_bytes()),
        ("not an object", b"[1, 2, 3]".to_vec()),
    ] {
        let (status, text) = post(&app, "/api/usage", body).await;
        assert_eq!(status, 400, "{what}: {text}");
        let body: Value = serde_json::from_str(&text).expect("a JSON error");
        assert!(
            body["error"]
                .as_str()
                .unwrap_or("")
                .starts_with("Invalid request format"),
            "{what}: {text}"
        );
    }
    let (status, head, body) = app.post_head_only("/api/usage", 33 * 1024 * 1024).await;
    assert_eq!(status, 413, "{body}");
    assert!(head.contains("connection: close"), "{head}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("exceeds the limit"),
        "{body}"
    );

    let base = json!({"project_id": p, "provider": "openai", "model": "gpt-4o", "input_tokens": 10, "output_tokens": 1});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        serde_json::to_vec(&b).expect("json")
    };
    for (what, body, path) in [
        (
            "a string for a count",
            with("input_tokens", json!("abc")),
            "input_tokens",
        ),
        (
            "a float for a count",
            with("input_tokens", json!(1.5)),
            "input_tokens",
        ),
        (
            "1e30 tokens",
            with("input_tokens", json!(1e30)),
            "input_tokens",
        ),
        (
            "10^15 tokens",
            with("input_tokens", json!(1_000_000_000_000_000_i64)),
            "input_tokens",
        ),
        (
            "negative tokens",
            with("output_tokens", json!(-5)),
            "output_tokens",
        ),
        ("a number for a model", with("model", json!(7)), "model"),
        (
            "a 100,000-character model",
            with("model", json!("m".repeat(100_000))),
            "model",
        ),
        (
            "NUL in a model",
            with("model", json!("gpt\u{0}4o")),
            "model",
        ),
        (
            "a date past 2200",
            with("request_timestamp", json!("9999-12-31T00:00:00Z")),
            "request_timestamp",
        ),
        (
            "a wrong project id",
            with("project_id", json!("not-a-uuid")),
            "project_id",
        ),
    ] {
        let (status, text) = post(&app, "/api/usage", body).await;
        assert!((400..500).contains(&status), "{what}: {status} {text}");
        assert!(
            text.contains(&format!("\"{path}\"")),
            "{what}: the answer names {path}: {text}"
        );
    }
    assert_eq!(app.event_count().await, before, "the ledger is unchanged");
}

/// Text that means something inside a PostgreSQL array literal (quotes, backslashes,
/// braces, commas, the word NULL, spaces) or is just unusual (unicode) is
/// stored as sent: the events, the rollups and the values kept apart hold it exactly.
async fn text_with_array_literal_characters_is_stored_as_sent(app: TestApp) {
    let p = app.create_project("odd-text").await;
    let odd = [
        r#"a\b{c}"d",e"#,
        "NULL",
        "inner  spaces",
        r#"{"json": [1, 2]}"#,
        "résumé-摘要 👋",
        r"\",
    ];
    for (i, text) in odd.iter().enumerate() {
        app.record(json!({
            "projectId": p, "provider": "openai", "model": "gpt-4o",
            "endpoint": text, "user": text, "metadata": {"note": text},
            "inputTokens": 100 + i, "outputTokens": 1, "latencyMs": 200,
            "occurredAt": "2026-03-01T10:00:00Z"
        }))
        .await;
    }
    let events = app
        .admin(
            "{ usageEvents(first: 20) { edges { node { endpoint user metadata inputTokens } } } }",
            json!({}),
        )
        .await;
    let mut stored: Vec<(String, String, String, i64)> = events.data()["usageEvents"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            let n = &e["node"];
            (
                n["endpoint"].as_str().unwrap_or_default().to_owned(),
                n["user"].as_str().unwrap_or_default().to_owned(),
                n["metadata"]["note"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                n["inputTokens"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    stored.sort_by_key(|s| s.3);
    let sent: Vec<(String, String, String, i64)> = odd
        .iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), t.to_string(), t.to_string(), 100 + i as i64))
        .collect();
    assert_eq!(stored, sent, "the events hold the text as sent");
    // The rollups by endpoint and by end user (each value kept apart) answer with the
    // same text, one row each.
    app.folded().await;
    for (dim, field) in [("ENDPOINT", "endpoint"), ("USER", "user")] {
        let r = app
            .admin(
                &format!(
                    "query($f: UsageFilter) {{ costBreakdown(filter: $f, groupBy: [{dim}]) {{ {field} totals {{ requests }} }} }}"
                ),
                json!({"f": {"from": "2026-03-01T00:00:00Z", "to": "2026-03-02T00:00:00Z"}}),
            )
            .await;
        let mut got: Vec<String> = r.data()["costBreakdown"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|row| {
                assert_eq!(row["totals"]["requests"], json!(1), "{row}");
                row[field].as_str().unwrap_or_default().to_owned()
            })
            .collect();
        got.sort();
        let mut want: Vec<String> = odd.iter().map(|t| t.to_string()).collect();
        want.sort();
        assert_eq!(got, want, "costBreakdown by {dim}");
    }
}

db_tests!(
    graphql_ingest_refuses_hostile_bodies,
    rest_ingest_refuses_hostile_bodies,
    text_with_array_literal_characters_is_stored_as_sent
);
