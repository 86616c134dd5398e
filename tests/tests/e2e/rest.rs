//! `rest`: the REST shapes existing clients speak (the usage portal's `/api/usage`,
//! the dashboard's `/api/*`), compared field by field with the documents in
//! `../shared/seeds/`, and the streamed exports.

use aispend_e2e::{TestApp, db_tests};
use serde_json::{Value, json};

async fn get(
    app: &TestApp,
    token: Option<&str>,
    path: &str,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut r = app.client.get(format!("{}{path}", app.base_url));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let response = r.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("a body"))
}

async fn get_json(app: &TestApp, path: &str) -> (u16, Value) {
    let (status, _, body) = get(app, Some(&app.admin_token), path).await;
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("JSON from {path}: {e}: {body}")),
    )
}

async fn post_usage(app: &TestApp, token: Option<&str>, body: &str) -> (u16, Value) {
    let mut r = app
        .client
        .post(format!("{}/api/usage", app.base_url))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let response = r.send().await.expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
    k.sort();
    k
}

async fn the_usage_portal_api_records_and_lists_usage(app: TestApp) {
    let project = app.create_project("portal").await;
    let body = json!({"project_id": project, "provider": "openai", "model": "gpt-4o", "input_tokens": 1500,
                      "output_tokens": 500, "request_timestamp": "2026-03-01T10:30:00Z"});
    let (status, created) = post_usage(&app, Some(&app.admin_token), &body.to_string()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        keys(&created),
        [
            "cost_usd",
            "id",
            "input_tokens",
            "model",
            "output_tokens",
            "project_id",
            "provider",
            "request_timestamp",
            "total_tokens"
        ]
    );
    assert_eq!(created["project_id"], project.as_str());
    assert_eq!(
        (
            created["input_tokens"].as_i64(),
            created["output_tokens"].as_i64(),
            created["total_tokens"].as_i64()
        ),
        (Some(1500), Some(500), Some(2000))
    );
    // gpt-4o at $2.50 / $10 per million tokens.
    assert_eq!(created["cost_usd"].as_f64(), Some(0.00875));
    assert_eq!(created["request_timestamp"], "2026-03-01T10:30:00Z");
    assert!(created["id"].is_string());

    let (status, missing) = post_usage(&app, None, &body.to_string()).await;
    assert_eq!(
        (status, missing["error"].as_str()),
        (401, Some("Unauthorized"))
    );
    let (status, _) = post_usage(&app, Some(&app.admin_token), "{not json").await;
    assert_eq!(status, 400);
    let (status, invalid) = post_usage(&app, Some(&app.admin_token), &json!({"project_id": project, "provider": "openai", "model": "gpt-4o", "input_tokens": "1500", "output_tokens": 5}).to_string()).await;
    assert_eq!(status, 422);
    assert_eq!(invalid["error"], "Validation failed");
    assert_eq!(
        invalid["details"],
        json!([{"code": "invalid_type", "expected": "number", "received": "string", "path": ["input_tokens"], "message": "Expected number, received string"}])
    );
    let (status, negative) = post_usage(&app, Some(&app.admin_token), &json!({"project_id": project, "provider": "openai", "model": "gpt-4o", "input_tokens": -1, "output_tokens": 5}).to_string()).await;
    assert_eq!(status, 422, "{negative}");
    assert_eq!(negative["details"][0]["path"], json!(["input_tokens"]));
    let (status, _) = post_usage(&app, Some(&app.admin_token), &json!({"project_id": "0190f1f8-0000-7000-8000-000000000000", "provider": "openai", "model": "gpt-4o", "input_tokens": 1, "output_tokens": 1}).to_string()).await;
    assert_eq!(status, 404, "an unknown project");
    let other = app.create_project("other").await;
    let scoped = app.create_token(Some(&other), &["INGEST"]).await;
    let (status, _) = post_usage(&app, Some(&scoped), &body.to_string()).await;
    assert_eq!(status, 404, "a project the token may not write");

    let (status, listed) = get_json(&app, &format!("/api/usage?project_id={project}&date_from=2026-03-01T00:00:00Z&date_to=2026-03-02T00:00:00Z")).await;
    assert_eq!(status, 200);
    assert_eq!(listed["count"], 1);
    assert_eq!(listed["usage"][0], created);
    let (_, empty) = get_json(
        &app,
        &format!("/api/usage?project_id={project}&date_from=2026-03-02T00:00:00Z"),
    )
    .await;
    assert_eq!(empty, json!({"usage": [], "count": 0}));
}

async fn crafted(app: &TestApp) {
    let p = app.create_project("dashboard").await;
    for (model, endpoint, input, output, latency, at, cost) in [
        (
            "gpt-4o",
            "chat, assistant",
            100,
            50,
            2000,
            "2026-03-01T12:00:00Z",
            "0.15",
        ),
        (
            "gpt-4o",
            "text-to-sql",
            300,
            100,
            1000,
            "2026-03-02T12:00:00Z",
            "0.25",
        ),
        (
            "claude-sonnet-4-5",
            "chat, assistant",
            1000,
            0,
            3000,
            "2026-03-02T13:00:00Z",
            "0.6",
        ),
    ] {
        let r = app
            .record(json!({"projectId": p, "provider": if model.starts_with("gpt") { "openai" } else { "anthropic" }, "model": model,
                           "endpoint": endpoint, "inputTokens": input, "outputTokens": output, "latencyMs": latency,
                           "occurredAt": at, "reportedCostUsd": cost}))
            .await;
        assert_eq!(r["duplicate"], false);
    }
}

const RANGE: &str = "start_date=2026-03-01T00:00:00Z&end_date=2026-03-03T00:00:00Z";

async fn the_dashboard_api_answers_in_its_documented_shapes(app: TestApp) {
    crafted(&app).await;
    let (status, health) = get_json(&app, "/api/health").await;
    assert_eq!(status, 200);
    assert_eq!(keys(&health), ["status", "timestamp", "version"]);
    assert_eq!(health["status"], "healthy");

    let (_, filters) = get_json(&app, "/api/filters").await;
    assert_eq!(
        keys(&filters),
        [
            "endpoints",
            "example_usage",
            "granularities",
            "models",
            "providers"
        ]
    );
    assert_eq!(filters["models"], json!(["claude-sonnet-4-5", "gpt-4o"]));
    assert_eq!(
        filters["granularities"],
        json!(["hour", "day", "week", "month", "year"])
    );

    let (_, summary) = get_json(&app, &format!("/api/metrics/summary?{RANGE}")).await;
    assert_eq!(
        keys(&summary),
        [
            "avg_cost_per_request",
            "filters",
            "provider_breakdown",
            "total_requests",
            "total_spend"
        ]
    );
    assert_eq!(summary["total_spend"].as_f64(), Some(1.0));
    assert_eq!(summary["total_requests"], 3);
    assert_eq!(summary["avg_cost_per_request"].as_f64(), Some(0.333333));
    assert_eq!(
        summary["provider_breakdown"]["openai"],
        json!({"total_spend": 0.4, "total_requests": 2, "total_tokens": 550})
    );
    assert_eq!(
        summary["filters"],
        json!({"granularity": "day", "start_date": "2026-03-01T00:00:00Z", "end_date": "2026-03-03T00:00:00Z", "models": [], "endpoints": [], "providers": []})
    );

    let (_, by_model) = get_json(
        &app,
        &format!("/api/metrics/by-model?{RANGE}&provider=OpenAI"),
    )
    .await;
    assert_eq!(
        by_model["models"],
        json!([{"name": "gpt-4o", "total_tokens": 550, "total_cost": 0.4, "total_requests": 2, "average_latency": 1.5}])
    );
    assert_eq!(by_model["filters"]["providers"], json!(["OpenAI"]));
    let (_, by_endpoint) = get_json(&app, &format!("/api/metrics/by-endpoint?{RANGE}")).await;
    assert_eq!(
        by_endpoint["endpoints"][0],
        json!({"name": "chat, assistant", "total_tokens": 1150, "total_cost": 0.75, "total_requests": 2, "average_latency": 2.5})
    );

    let (_, trend) = get_json(
        &app,
        &format!("/api/metrics/trend?{RANGE}&model=gpt-4o&model=claude-sonnet-4-5"),
    )
    .await;
    assert_eq!(
        trend["trends"],
        json!([
            {"timestamp": "2026-03-01T00:00:00Z", "total_tokens": 150, "total_cost": 0.15, "request_count": 1},
            {"timestamp": "2026-03-02T00:00:00Z", "total_tokens": 1400, "total_cost": 0.85, "request_count": 2}
        ])
    );

    let (_, logs) = get_json(
        &app,
        &format!("/api/logs?{RANGE}&per_page=2&sort_by=total_cost&sort_desc=true"),
    )
    .await;
    assert_eq!(
        logs["pagination"],
        json!({"current_page": 1, "total_pages": 2, "total_items": 3, "per_page": 2})
    );
    let first = &logs["logs"][0];
    assert_eq!(
        keys(first),
        [
            "api_provider",
            "completion_tokens",
            "endpoint",
            "input_cost",
            "latency_ms",
            "model",
            "output_cost",
            "prompt_tokens",
            "timestamp",
            "total_cost",
            "total_tokens"
        ]
    );
    assert_eq!(
        (first["model"].as_str(), first["total_cost"].as_f64()),
        (Some("claude-sonnet-4-5"), Some(0.6))
    );
    let (_, page2) = get_json(
        &app,
        &format!("/api/logs?{RANGE}&per_page=2&page=2&sort_by=total_cost&sort_desc=true"),
    )
    .await;
    assert_eq!(page2["logs"].as_array().map(Vec::len), Some(1));
    assert_eq!(page2["logs"][0]["total_cost"].as_f64(), Some(0.15));

    let (status, headers, csv) = get(
        &app,
        Some(&app.admin_token),
        &format!("/api/logs?{RANGE}&format=csv&sort_desc=false"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/csv")
    );
    let disposition = headers["content-disposition"].to_str().unwrap_or("");
    assert!(
        disposition.starts_with("attachment; filename=\"token_logs_")
            && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "timestamp,model,endpoint,prompt_tokens,completion_tokens,total_tokens,input_cost,output_cost,total_cost,latency_ms,api_provider"
    );
    assert_eq!(
        lines[1],
        "\"2026-03-01T12:00:00Z\",\"gpt-4o\",\"chat, assistant\",100,50,150,,,0.150000,2000,\"openai\""
    );
    assert_eq!(lines.len(), 4);
}

async fn the_dashboard_api_reports_errors_in_its_documented_shape(app: TestApp) {
    for (query, code) in [
        (
            "start_date=2026-04-01&end_date=2026-03-01",
            "INVALID_DATE_RANGE",
        ),
        ("granularity=fortnight", "INVALID_GRANULARITY"),
        ("per_page=101", "INVALID_PAGE"),
        ("page=0", "INVALID_PAGE"),
        ("sort_by=colour", "INVALID_SORT"),
    ] {
        let (status, body) = get_json(&app, &format!("/api/logs?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], code, "{query}: {body}");
        assert!(
            body["error"]["message"].is_string() && body["error"]["details"].is_object(),
            "{body}"
        );
    }
    let (status, _, body) = get(&app, None, "/api/metrics/summary").await;
    assert_eq!(status, 401);
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["error"]["code"], "UNAUTHORIZED");
    let (status, _, _) = get(&app, Some("not-a-token"), "/api/filters").await;
    assert_eq!(status, 401);
}

async fn exports_stream_every_event_with_rfc4180_quoting(app: TestApp) {
    let p = app.create_project("export").await;
    let batch: Vec<Value> = (0..2_500)
        .map(|i| json!({"projectId": p, "provider": "openai", "model": "gpt-4o", "inputTokens": 10, "outputTokens": 1,
                        "occurredAt": format!("2026-03-01T00:{:02}:{:02}Z", i / 60 % 60, i % 60), "reportedCostUsd": "0.0000015",
                        "endpoint": if i == 0 { "a \"quoted\", comma" } else { "plain" }, "idempotencyKey": format!("k{i}")}))
        .collect();
    let r = app
        .admin(
            "mutation($i: [UsageInput!]!) { recordUsageBatch(inputs: $i) { accepted } }",
            json!({"i": batch}),
        )
        .await;
    assert_eq!(r.data()["recordUsageBatch"]["accepted"], 2_500);
    let (status, headers, csv) = get(
        &app,
        Some(&app.admin_token),
        &format!("/export/usage.csv?project={p}"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/csv")
    );
    assert!(
        csv.starts_with("id,occurred_at,project_id,provider,model,endpoint,source,user,requests,")
    );
    // 2,500 events over three pages, one header; the first endpoint is quoted, its
    // quotes doubled. (A line break cannot reach an identifier since control
    // characters are refused at ingest.)
    assert_eq!(csv.matches(",openai,gpt-4o,").count(), 2_500);
    assert!(
        csv.contains(",\"a \"\"quoted\"\", comma\",API,"),
        "{}",
        &csv[..600.min(csv.len())]
    );
    assert!(
        csv.contains(",0.000002,REPORTED,\n"),
        "costs have six decimals"
    );
    let (status, headers, jsonl) = get(
        &app,
        Some(&app.admin_token),
        "/export/usage.jsonl?from=2026-03-01T00:00:00Z&to=2026-03-01T00:01:00Z",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/x-ndjson");
    let rows: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(rows.len(), 60, "one minute of events");
    assert_eq!(rows[0]["endpoint"], "a \"quoted\", comma");
    assert_eq!(rows[0]["occurred_at"], "2026-03-01T00:00:00.000000Z");
    let (status, _, _) = get(&app, None, "/export/usage.csv").await;
    assert_eq!(status, 401);
    let reader = app
        .create_token(Some(&app.create_project("elsewhere").await), &["READ"])
        .await;
    let (status, _, _) = get(
        &app,
        Some(&reader),
        &format!("/export/usage.jsonl?project={p}"),
    )
    .await;
    assert_eq!(status, 403);
}

/// Parses RFC 4180 CSV (quoted fields with doubled quotes and line breaks inside).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = vec![];
    let mut row = vec![];
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        !quoted && field.is_empty() && row.is_empty(),
        "the CSV ends with a line break"
    );
    rows
}

async fn csv_exports_quote_neutralise_formulas_keep_unicode_and_split_computed_costs(app: TestApp) {
    let p = app.create_project("csv").await;
    let metadata = json!({"note": "a, \"b\"", "city": "Zürich"});
    // gpt-4o at $2.50 input / $10 output per million, priced by the server (COMPUTED):
    // 1,000 x 2.50/M = $0.0025 input + 500 x 10/M = $0.005 output = $0.0075;
    // 2,000 x 2.50/M = $0.005 input + 0 output = $0.005.
    let first = app
        .record(json!({"projectId": p, "provider": "openai", "model": "gpt-4o", "endpoint": "=1+1",
                       "user": "@admin, \"root\"", "metadata": metadata, "inputTokens": 1000, "outputTokens": 500,
                       "occurredAt": "2026-03-01T10:00:00Z"}))
        .await;
    assert_eq!(
        (
            first["event"]["costUsd"].as_str(),
            first["event"]["costSource"].as_str()
        ),
        (Some("0.0075"), Some("COMPUTED"))
    );
    let second = app
        .record(json!({"projectId": p, "provider": "openai", "model": "gpt-4o", "endpoint": "résumé-摘要",
                       "user": "-Zoë 👋", "inputTokens": 2000, "outputTokens": 0,
                       "occurredAt": "2026-03-01T11:00:00Z"}))
        .await;
    let (status, _, csv) = get(
        &app,
        Some(&app.admin_token),
        &format!("/export/usage.csv?project={p}"),
    )
    .await;
    assert_eq!(status, 200);
    // Byte-level RFC 4180: a field with a comma or quote is quoted, quotes doubled; a
    // cell a spreadsheet would evaluate starts with '.
    assert!(
        csv.contains(",'=1+1,API,\"'@admin, \"\"root\"\"\",1,"),
        "{csv}"
    );
    let rows = parse_csv(&csv);
    assert_eq!(rows.len(), 3, "a header and two events: {rows:#?}");
    let header = rows[0].clone();
    let col = |row: &Vec<String>, name: &str| -> String {
        let i = header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("a {name} column"));
        row[i].clone()
    };
    let by_id = |id: &Value| {
        rows.iter()
            .find(|r| r[0] == id.as_str().unwrap())
            .expect("the event's row")
            .clone()
    };
    let a = by_id(&first["event"]["id"]);
    assert_eq!(col(&a, "endpoint"), "'=1+1");
    assert_eq!(col(&a, "user"), "'@admin, \"root\"");
    assert_eq!(
        serde_json::from_str::<Value>(&col(&a, "metadata")).expect("JSON metadata"),
        metadata
    );
    assert_eq!(
        (col(&a, "cost_usd"), col(&a, "cost_source")),
        ("0.007500".into(), "COMPUTED".into())
    );
    let b = by_id(&second["event"]["id"]);
    assert_eq!(col(&b, "endpoint"), "résumé-摘要");
    assert_eq!(col(&b, "user"), "'-Zoë 👋");
    assert_eq!(col(&b, "metadata"), "");

    // The dashboard's log CSV splits the computed cost into input and output.
    let (status, _, logs) = get(
        &app,
        Some(&app.admin_token),
        "/api/logs?start_date=2026-03-01T00:00:00Z&end_date=2026-03-02T00:00:00Z&format=csv&sort_desc=false",
    )
    .await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(
        lines[1..],
        [
            "\"2026-03-01T10:00:00Z\",\"gpt-4o\",\"'=1+1\",1000,500,1500,0.002500,0.005000,0.007500,,\"openai\"",
            "\"2026-03-01T11:00:00Z\",\"gpt-4o\",\"résumé-摘要\",2000,0,2000,0.005000,0.000000,0.005000,,\"openai\"",
        ]
    );
}

db_tests!(
    the_usage_portal_api_records_and_lists_usage,
    csv_exports_quote_neutralise_formulas_keep_unicode_and_split_computed_costs,
    the_dashboard_api_answers_in_its_documented_shapes,
    the_dashboard_api_reports_errors_in_its_documented_shape,
    exports_stream_every_event_with_rfc4180_quoting
);
