//! The documentation is executable: every GraphQL block of README.md runs against the
//! real server, in order, as a reader would paste it into GraphiQL, and every answer
//! the README prints (a `json` block right after a `graphql` block) must be what the
//! server answers. A renamed field, a changed price or a stale number fails here, not
//! in front of a newcomer.
//!
//! Placeholders in angle brackets are what a reader fills in: `<the id above>` and
//! `<project id>` are the project the quick start created, `<id>` is the credential
//! the block before created, `<16 to 256 characters>` is a webhook secret. In a
//! documented answer, the string `"…"` stands for a value that differs on every run
//! (ids, times); every other value must be equal, and every documented field present.

use aispend_e2e::{TestApp, db_tests};
use serde_json::{Value, json};
use std::collections::HashMap;

/// A fenced code block of a Markdown file.
#[derive(Debug)]
struct Block {
    lang: String,
    text: String,
    /// Line of the opening fence (1-based).
    line: usize,
    /// Line of the closing fence.
    end: usize,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = vec![];
    let mut current: Option<Block> = None;
    for (n, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        match (&mut current, trimmed.strip_prefix("```")) {
            (None, Some(lang)) => {
                current = Some(Block {
                    lang: lang.trim().to_owned(),
                    text: String::new(),
                    line: n + 1,
                    end: n + 1,
                })
            }
            (Some(block), Some(_)) => {
                block.end = n + 1;
                out.extend(current.take());
            }
            (Some(block), None) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

/// Splits a block into its top-level operations (each starts at column 0 with `{`,
/// `query`, `mutation` or `subscription`).
fn operations(block: &str) -> Vec<String> {
    let mut ops: Vec<String> = vec![];
    for line in block.lines() {
        let starts = ["{", "query", "mutation", "subscription"]
            .iter()
            .any(|k| line.starts_with(k));
        if starts || ops.is_empty() {
            ops.push(String::new());
        }
        if let Some(op) = ops.last_mut() {
            op.push_str(line);
            op.push('\n');
        }
    }
    ops.into_iter().filter(|op| !op.trim().is_empty()).collect()
}

/// Whether `actual` has everything `documented` shows (`"…"` matches anything).
fn check(documented: &Value, actual: &Value, path: &str) -> Result<(), String> {
    match (documented, actual) {
        (Value::String(s), _) if s == "…" => Ok(()),
        (Value::Object(doc), Value::Object(act)) => doc.iter().try_for_each(|(k, v)| {
            let here = format!("{path}.{k}");
            let got = act
                .get(k)
                .ok_or_else(|| format!("{here} is documented but missing"))?;
            check(v, got, &here)
        }),
        (Value::Array(doc), Value::Array(act)) if doc.len() == act.len() => doc
            .iter()
            .zip(act)
            .enumerate()
            .try_for_each(|(i, (d, a))| check(d, a, &format!("{path}[{i}]"))),
        (d, a) if d == a => Ok(()),
        (d, a) => Err(format!(
            "{path}: the README says {d}, the server answered {a}"
        )),
    }
}

async fn every_graphql_example_of_the_readme_runs_and_answers_as_documented(app: TestApp) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let blocks = blocks(&readme);
    let mut bindings: HashMap<&str, String> = HashMap::from([(
        "<16 to 256 characters>",
        "readme-webhook-secret-0123456789".to_owned(),
    )]);
    let mut ran = 0;
    let mut answers_checked = 0;
    for (i, block) in blocks.iter().enumerate() {
        if block.lang != "graphql" {
            continue;
        }
        let mut last = Value::Null;
        for op in operations(&block.text) {
            let mut query = op.clone();
            for (placeholder, value) in &bindings {
                query = query.replace(placeholder, value);
            }
            assert!(
                !query.contains("\"<"),
                "README.md line {}: a placeholder this test does not know: {query}",
                block.line
            );
            let r = app.admin(&query, json!({})).await;
            let data = r.data().clone();
            ran += 1;
            if let Some(id) = data["createProject"]["id"].as_str() {
                bindings.insert("<the id above>", id.to_owned());
                bindings.insert("<project id>", id.to_owned());
            }
            if let Some(id) = data["addCredential"]["id"].as_str() {
                bindings.insert("<id>", id.to_owned());
            }
            last = data;
        }
        // A `json` block is this block's answer when only a short sentence (no
        // heading) stands between them.
        let between = |next: &Block| {
            readme
                .lines()
                .skip(block.end)
                .take(next.line - block.end - 1)
        };
        if let Some(next) = blocks.get(i + 1)
            && next.lang == "json"
            && between(next).count() <= 3
            && between(next).all(|l| !l.starts_with('#'))
        {
            let documented: Value = serde_json::from_str(&next.text).unwrap_or_else(|e| {
                panic!("README.md line {}: the answer is not JSON: {e}", next.line)
            });
            if let Err(e) = check(&documented, &last, "data") {
                panic!("README.md line {}: {e}\nfull answer: {last:#}", next.line);
            }
            answers_checked += 1;
        }
    }
    assert!(ran >= 10, "only {ran} operations found in README.md");
    assert!(
        answers_checked >= 3,
        "only {answers_checked} documented answers were checked"
    );

    // The quick start's second claim: the same idempotency key returns the stored
    // event, marked as a duplicate.
    let quick_start = operations(&blocks.iter().find(|b| b.lang == "graphql").unwrap().text)
        .remove(1)
        .replace("<the id above>", &bindings["<the id above>"]);
    let again = app.admin(&quick_start, json!({})).await;
    assert_eq!(again.data()["recordUsage"]["duplicate"], true);
    assert_eq!(app.event_count().await, 1);
}

#[test]
fn the_checker_rejects_what_differs_and_accepts_wildcards() {
    let doc = json!({"a": {"id": "…", "cost": "0.0075", "list": [1, 2]}});
    assert!(
        check(
            &doc,
            &json!({"a": {"id": "x", "cost": "0.0075", "list": [1, 2], "extra": 1}}),
            "d"
        )
        .is_ok()
    );
    assert!(
        check(
            &doc,
            &json!({"a": {"id": "x", "cost": "0.00755", "list": [1, 2]}}),
            "d"
        )
        .is_err()
    );
    assert!(check(&doc, &json!({"a": {"cost": "0.0075", "list": [1, 2]}}), "d").is_err());
    assert!(
        check(
            &doc,
            &json!({"a": {"id": 1, "cost": "0.0075", "list": [1]}}),
            "d"
        )
        .is_err()
    );
    assert_eq!(
        operations("mutation { a }\n\nmutation {\n  b\n}\n{ c }\n").len(),
        3
    );
}

/// A person who opens the server in a browser gets the dashboard, whose page links
/// GraphiQL and the README even without JavaScript (the dashboard itself links them in
/// its sign-in form and footer: tests/tests/e2e/dashboard.rs); both links answer.
async fn the_root_page_links_to_graphiql_and_the_readme(app: TestApp) {
    let page = app.client.get(&app.base_url).send().await.expect("GET /");
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .expect("content type")
            .starts_with("text/html")
    );
    let html = page.text().await.expect("body");
    assert!(html.contains("<div id=\"app\">"), "the dashboard: {html}");
    for link in ["href=\"/graphql\"", "href=\"/README.md\""] {
        assert!(html.contains(link), "{link} missing from {html}");
    }
    let readme = app
        .client
        .get(format!("{}/README.md", app.base_url))
        .send()
        .await
        .expect("GET /README.md");
    assert_eq!(readme.status(), 200);
    let served = readme.text().await.expect("body");
    let on_disk = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    assert_eq!(served, on_disk, "the served README is the repository's");
    let playground = app
        .client
        .get(format!("{}/graphql", app.base_url))
        .send()
        .await
        .expect("GET /graphql");
    assert_eq!(playground.status(), 200);
    assert!(playground.text().await.expect("body").contains("graphiql"));
}

/// The README's JavaScript `graphql-ws` example subscribes with a document that must
/// run as written: its query, sent over the real websocket with the token in the
/// same connection parameters, follows an event with every field the example reads.
async fn the_readme_subscription_example_runs(app: TestApp) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let js = blocks(&readme)
        .into_iter()
        .find(|b| b.lang == "js" && b.text.contains("graphql-ws"))
        .expect("README.md has a graphql-ws example");
    let query = js
        .text
        .split("query: `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .expect("the example has a query template");
    assert!(
        js.text
            .contains("connectionParams: { Authorization: \"Bearer <token>\" }"),
        "the example authenticates as the section says"
    );
    let project = app.create_project("readme-live").await;
    let query = query.replace("<id>", &project);
    let mut ws = app
        .ws_connect(json!({"Authorization": format!("Bearer {}", app.admin_token)}))
        .await;
    ws.expect_ack().await;
    ws.subscribe("1", &query, json!({})).await;
    // The server registers a subscription asynchronously: record until it follows.
    let mut update = None;
    for i in 0..100 {
        app.record(json!({"projectId": project, "provider": "openai", "model": "gpt-4o-2024-08-06",
                          "inputTokens": 1000, "outputTokens": 100, "idempotencyKey": format!("readme-{i}")}))
            .await;
        if let Some(aispend_e2e::WsEvent::Message(m)) =
            ws.recv(std::time::Duration::from_millis(300)).await
        {
            assert_eq!(m["type"], "next", "{m:#}");
            update = Some(m["payload"]["data"].clone());
            break;
        }
    }
    let update = update.expect("the README's subscription delivered an update");
    let u = &update["costUpdates"];
    assert_eq!(u["kind"], "INGESTED", "{update:#}");
    let events = u["events"].as_array().expect("events");
    assert!(!events.is_empty());
    for e in events {
        assert_eq!(e["model"], "gpt-4o-2024-08-06");
        // 1,000 × $2.50 + 100 × $10 per million.
        assert_eq!(e["costUsd"], "0.0035");
    }
    let delta: rust_decimal::Decimal = u["deltaUsd"]
        .as_str()
        .expect("deltaUsd")
        .parse()
        .expect("decimal");
    assert_eq!(
        delta,
        rust_decimal::Decimal::new(35, 4) * rust_decimal::Decimal::from(events.len())
    );
    assert!(u["today"]["costUsd"].is_string() && u["month"]["costUsd"].is_string());
}

db_tests!(
    every_graphql_example_of_the_readme_runs_and_answers_as_documented,
    the_readme_subscription_example_runs,
    the_root_page_links_to_graphiql_and_the_readme
);
