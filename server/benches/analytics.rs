//! Analytics benchmark (see BENCHMARKS.md).
//!
//! 1. Bulk-loads N events (default 10,000,000) into a fresh SQLite ledger made by the
//!    real server (90 days, 8 providers, 60 models, 40 endpoints, 200 end users, 20 projects), then
//!    builds the five rollups with the same `INSERT … SELECT … GROUP BY` their
//!    migrations use to backfill.
//!    Migration 000010's rollups (endpoint, user, source, latency sketches) are built by
//!    the migration itself: undone after the load, run again by the next start.
//! 2. Restarts `aispend serve` on that file and times `costSummary`,
//!    `costBreakdown(groupBy: [MODEL])` and `costTrend(granularity: DAY)` over 30 days
//!    (from 00:37 UTC to 00:37 UTC, so the edges need the hourly rollups and raw
//!    events) through HTTP GraphQL, then every other analytic of issue 13 (breakdowns
//!    by endpoint, user and source, an endpoint filter, percentiles, a Berlin hourly
//!    trend, recommendations, anomalies, reconciliation, REST routes), checking those
//!    a plain `GROUP BY` answers against it.
//! 3. Baseline, same run and file: the same answers from a plain `GROUP BY` over the
//!    raw events. Prints each p50, the ratio, and checks the answers are identical.
//!
//! `cargo bench -p aispend --bench analytics [-- --events N --runs R --raw-runs K]`
//!
//! `AISPEND_BENCH_LEDGER=DIR` loads the ledger into `DIR` and leaves it there; when
//! `DIR` already holds one, the load is skipped and the queries run on it (for tuning:
//! the load takes minutes, the queries seconds).

mod common;

use common::{Server, TOKEN, gql_data as gql};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use sea_orm::sqlx::{self, Row, sqlite::SqlitePoolOptions};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

const DAY: i64 = 86_400_000_000;
/// 2026-01-01T00:00:00Z in microseconds.
const START: i64 = 1_767_225_600_000_000;

fn arg(name: &str, default: usize) -> usize {
    common::arg(name, default)
}

fn p50(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn usd(nanos: i64) -> String {
    Decimal::new(nanos, 9).normalize().to_string()
}

const PROVIDERS: [&str; 8] = [
    "openai",
    "anthropic",
    "google",
    "mistral",
    "groq",
    "deepseek",
    "xai",
    "cohere",
];

/// Every other analytic of issue 13 on the same ledger and window, timed, and where a
/// plain `GROUP BY` gives the same thing, checked against it (the check's own time is
/// printed as the baseline).
async fn others(
    client: &reqwest::Client,
    server: &Server,
    pool: &sqlx::SqlitePool,
    filter: &Value,
    (from, to): (i64, i64),
    runs: usize,
) -> bool {
    let projects = gql(client, &server.url, "{ projects { id } }", json!({})).await;
    let project = projects["projects"][0]["id"].clone();
    let mut one_project = filter.clone();
    one_project["projects"] = json!([project]);
    let mut one_endpoint = filter.clone();
    one_endpoint["endpoints"] = json!(["endpoint-7"]);
    let window = json!({"from": filter["from"], "to": filter["to"]});
    // (name, query, filter, field of the groups' key, the GROUP BY that must agree)
    let graphql: [(&str, &str, &Value, &str, Option<&str>); 13] = [
        (
            "costSummary, one project",
            "query($f: UsageFilter) { costSummary(filter: $f) { totals { costUsd requests } } }",
            &one_project,
            "",
            None,
        ),
        (
            "costBreakdown(MODEL), one project",
            "query($f: UsageFilter) { costBreakdown(filter: $f, groupBy: [MODEL]) { model totals { costUsd requests } } }",
            &one_project,
            "model",
            None,
        ),
        (
            "costBreakdown(PROJECT)",
            "query($f: UsageFilter) { costBreakdown(filter: $f, groupBy: [PROJECT]) { projectId totals { costUsd requests } } }",
            filter,
            "projectId",
            None,
        ),
        (
            "costBreakdown(ENDPOINT)",
            "query($f: UsageFilter) { costBreakdown(filter: $f, groupBy: [ENDPOINT]) { endpoint totals { costUsd requests } } }",
            filter,
            "endpoint",
            Some(
                "SELECT endpoint, COALESCE(SUM(cost_nanos), 0), SUM(requests) FROM usage_events WHERE occurred_at >= ? AND occurred_at < ? GROUP BY endpoint",
            ),
        ),
        (
            "costBreakdown(USER)",
            "query($f: UsageFilter) { costBreakdown(filter: $f, groupBy: [USER]) { user totals { costUsd requests } } }",
            filter,
            "user",
            Some(
                "SELECT end_user, COALESCE(SUM(cost_nanos), 0), SUM(requests) FROM usage_events WHERE occurred_at >= ? AND occurred_at < ? GROUP BY end_user",
            ),
        ),
        (
            "costBreakdown(SOURCE)",
            "query($f: UsageFilter) { costBreakdown(filter: $f, groupBy: [SOURCE]) { source totals { costUsd requests } } }",
            filter,
            "source",
            Some(
                "SELECT source, COALESCE(SUM(cost_nanos), 0), SUM(requests) FROM usage_events WHERE occurred_at >= ? AND occurred_at < ? GROUP BY source",
            ),
        ),
        (
            "costSummary, one endpoint",
            "query($f: UsageFilter) { costBreakdown(filter: $f, groupBy: [PROVIDER]) { provider totals { costUsd requests } } }",
            &one_endpoint,
            "provider",
            Some(
                "SELECT provider, COALESCE(SUM(cost_nanos), 0), SUM(requests) FROM usage_events WHERE occurred_at >= ? AND occurred_at < ? AND endpoint = 'endpoint-7' GROUP BY provider",
            ),
        ),
        (
            "costBreakdown(MODEL) with p50/p95",
            "query($f: UsageFilter) { costBreakdown(filter: $f, groupBy: [MODEL]) { model latencyP50Ms latencyP95Ms } }",
            filter,
            "",
            None,
        ),
        (
            "costBreakdown(ENDPOINT) with p50/p95",
            "query($f: UsageFilter) { costBreakdown(filter: $f, groupBy: [ENDPOINT]) { endpoint latencyP50Ms latencyP95Ms } }",
            filter,
            "",
            None,
        ),
        (
            "costTrend(HOUR) Europe/Berlin",
            "query($f: UsageFilter!) { costTrend(filter: $f, granularity: HOUR, timezone: \"Europe/Berlin\") { start totals { costUsd } } }",
            filter,
            "",
            None,
        ),
        (
            "recommendations",
            "query($f: UsageFilter) { recommendations(filter: $f) { action model } }",
            filter,
            "",
            None,
        ),
        (
            "anomalies",
            "query($f: UsageFilter) { anomalies(filter: $f) { subject value day } }",
            filter,
            "",
            None,
        ),
        (
            "reconciliation",
            "query($f: ReconciliationFilterInput!) { reconciliation(filter: $f) { provider day } }",
            &window,
            "",
            None,
        ),
    ];
    println!("every other analytic over the same 30 days ({runs} runs each):");
    println!(
        "{:<38} {:>12} {:>14} {:>10}",
        "query", "server p50", "GROUP BY", "identical"
    );
    let mut all_identical = true;
    for (name, query, f, key, raw) in graphql {
        let mut times = Vec::new();
        let mut last = Value::Null;
        for _ in 0..runs {
            let t = Instant::now();
            last = gql(client, &server.url, query, json!({"f": f})).await;
            times.push(t.elapsed());
        }
        let (raw_ms, identical) = match raw {
            Some(sql) => {
                let t = Instant::now();
                let rows = sqlx::query(sql)
                    .bind(from)
                    .bind(to)
                    .fetch_all(pool)
                    .await
                    .expect("a raw query");
                let raw_ms = t.elapsed().as_secs_f64() * 1e3;
                let expected: BTreeMap<String, (String, i64)> = rows
                    .iter()
                    .map(|r| {
                        (
                            r.get::<Option<String>, _>(0).unwrap_or_default(),
                            (usd(r.get::<i64, _>(1)), r.get::<i64, _>(2)),
                        )
                    })
                    .collect();
                let served: BTreeMap<String, (String, i64)> = last
                    .as_object()
                    .and_then(|o| o.values().next())
                    .and_then(Value::as_array)
                    .expect("groups")
                    .iter()
                    .map(|g| {
                        (
                            g[key].as_str().unwrap_or("").to_owned(),
                            (
                                g["totals"]["costUsd"].as_str().unwrap_or("").to_owned(),
                                g["totals"]["requests"].as_i64().unwrap_or(-1),
                            ),
                        )
                    })
                    .collect();
                let same = served == expected && !expected.is_empty();
                all_identical &= same;
                (
                    format!("{raw_ms:>11.1} ms"),
                    if same { "yes" } else { "NO" },
                )
            }
            None => ("-".to_owned(), "-"),
        };
        println!(
            "{name:<38} {:>9.1} ms {raw_ms:>14} {identical:>10}",
            p50(times).as_secs_f64() * 1e3
        );
    }
    let range = [
        ("start_date", filter["from"].as_str().unwrap_or("")),
        ("end_date", filter["to"].as_str().unwrap_or("")),
    ];
    for route in [
        "/api/metrics/by-model",
        "/api/metrics/by-endpoint",
        "/api/recommendations",
    ] {
        let url = server.url.replace("/graphql", route);
        let mut times = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            let r = client
                .get(&url)
                .bearer_auth(TOKEN)
                .query(&range)
                .send()
                .await
                .expect("a response");
            assert!(r.status().is_success(), "GET {route}: {}", r.status());
            r.bytes().await.expect("a body");
            times.push(t.elapsed());
        }
        println!(
            "{:<38} {:>9.1} ms",
            format!("GET {route}"),
            p50(times).as_secs_f64() * 1e3
        );
    }
    all_identical
}

/// The ledger file, opened beside the server (one connection).
async fn open(db: &Path) -> sqlx::SqlitePool {
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("the ledger opens")
}

/// Creates the projects through the server, bulk-loads `events` events and builds the
/// rollups.
async fn load(client: &reqwest::Client, dir: &Path, events: usize) {
    // 1. A ledger made by the server, then bulk-loaded.
    let mut projects: Vec<Vec<u8>> = Vec::new();
    {
        let server = common::start_server(dir, &[("AISPEND_SYNC_SCHEDULER", "false".into())]);
        for i in 0..20 {
            let r = gql(
                client,
                &server.url,
                "mutation($n: String!) { createProject(name: $n) { id } }",
                json!({"n": format!("p{i}")}),
            )
            .await;
            let id = uuid::Uuid::parse_str(r["createProject"]["id"].as_str().expect("an id"))
                .expect("a uuid");
            projects.push(id.as_bytes().to_vec());
        }
    }
    let pool = open(&dir.join("aispend.db")).await;
    sqlx::query("PRAGMA synchronous = OFF")
        .execute(&pool)
        .await
        .expect("pragma");
    let models: Vec<(&str, String)> = (0..60)
        .map(|i| (PROVIDERS[i % 8], format!("{}-model-{i}", PROVIDERS[i % 8])))
        .collect();
    let endpoints: Vec<String> = (0..40).map(|i| format!("endpoint-{i}")).collect();
    let users: Vec<String> = (0..200).map(|i| format!("user-{i}")).collect();
    let mut rng = StdRng::seed_from_u64(7);
    let load = Instant::now();
    const ROWS: usize = 400;
    let mut done = 0;
    while done < events {
        let mut tx = pool.begin().await.expect("a transaction");
        for _ in 0..250 {
            if done >= events {
                break;
            }
            let n = ROWS.min(events - done);
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO usage_events (id, project_id, provider, model, endpoint, source, occurred_at, received_at, \
                 input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, \
                 requests, service_tier, latency_ms, cost_nanos, cost_source, end_user) ",
            );
            qb.push_values(0..n, |mut b, k| {
                let (provider, model) = &models[rng.random_range(0..models.len())];
                let at = START + rng.random_range(0..90 * DAY);
                let priced = rng.random_range(0..100) != 0;
                b.push_bind((done + k + 1) as i64)
                    .push_bind(projects[rng.random_range(0..projects.len())].clone())
                    .push_bind(*provider)
                    .push_bind(model.clone())
                    .push_bind(endpoints[rng.random_range(0..endpoints.len())].clone())
                    .push_bind("API")
                    .push_bind(at)
                    .push_bind(at)
                    .push_bind(rng.random_range(0..4_000i64))
                    .push_bind(rng.random_range(0..1_000i64))
                    .push_bind(rng.random_range(0..2_000i64))
                    .push_bind(0i64)
                    .push_bind(0i64)
                    .push_bind(0i64)
                    .push_bind(1i64)
                    .push_bind("STANDARD")
                    .push_bind(rng.random_range(100..5_000i64))
                    .push_bind(if priced {
                        Some(rng.random_range(1_000..50_000_000i64))
                    } else {
                        None
                    })
                    .push_bind(if priced { "COMPUTED" } else { "UNPRICED" })
                    .push_bind(users[rng.random_range(0..users.len())].clone());
            });
            qb.build().execute(&mut *tx).await.expect("a bulk insert");
            done += n;
        }
        tx.commit().await.expect("a commit");
    }
    let loaded = load.elapsed();
    let rollups = Instant::now();
    for sql in [
        "INSERT INTO usage_rollup_days (day, project_id, provider, model, cost_nanos, requests, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, events, unpriced, latency_sum, latency_count) \
         SELECT occurred_at / 86400000000 * 86400000000, project_id, provider, model, COALESCE(SUM(cost_nanos), 0), SUM(requests), SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(cache_write_1h_tokens), SUM(reasoning_tokens), COUNT(*), SUM(CASE WHEN cost_nanos IS NULL THEN 1 ELSE 0 END), COALESCE(SUM(latency_ms), 0), COUNT(latency_ms) \
         FROM usage_events GROUP BY occurred_at / 86400000000, project_id, provider, model",
        "INSERT INTO usage_rollup_hours (hour, project_id, provider, cost_nanos, requests, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, events, unpriced, latency_sum, latency_count) \
         SELECT occurred_at / 3600000000 * 3600000000, project_id, provider, COALESCE(SUM(cost_nanos), 0), SUM(requests), SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(cache_write_1h_tokens), SUM(reasoning_tokens), COUNT(*), SUM(CASE WHEN cost_nanos IS NULL THEN 1 ELSE 0 END), COALESCE(SUM(latency_ms), 0), COUNT(latency_ms) \
         FROM usage_events GROUP BY occurred_at / 3600000000, project_id, provider",
        "INSERT INTO usage_rollup_model_hours (hour, project_id, provider, model, cost_nanos, requests, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, events, unpriced, latency_sum, latency_count) \
         SELECT occurred_at / 3600000000 * 3600000000, project_id, provider, model, COALESCE(SUM(cost_nanos), 0), SUM(requests), SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(cache_write_1h_tokens), SUM(reasoning_tokens), COUNT(*), SUM(CASE WHEN cost_nanos IS NULL THEN 1 ELSE 0 END), COALESCE(SUM(latency_ms), 0), COUNT(latency_ms) \
         FROM usage_events GROUP BY occurred_at / 3600000000, project_id, provider, model",
        "INSERT INTO usage_rollup_provider_days (day, project_id, provider, cost_nanos, requests, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, events, unpriced, latency_sum, latency_count) \
         SELECT day, project_id, provider, SUM(cost_nanos), SUM(requests), SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(cache_write_1h_tokens), SUM(reasoning_tokens), SUM(events), SUM(unpriced), SUM(latency_sum), SUM(latency_count) \
         FROM usage_rollup_days GROUP BY day, project_id, provider",
        "INSERT INTO usage_rollup_global_days (day, provider, model, cost_nanos, requests, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, events, unpriced, latency_sum, latency_count) \
         SELECT day, provider, model, SUM(cost_nanos), SUM(requests), SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(cache_write_1h_tokens), SUM(reasoning_tokens), SUM(events), SUM(unpriced), SUM(latency_sum), SUM(latency_count) \
         FROM usage_rollup_days GROUP BY day, provider, model",
        // Migration 000010 (endpoint, user and source rollups, latency sketches) ran
        // on the empty ledger: undone here, the server runs it again at its next
        // start, backfilling from the loaded events with its own SQL.
        "DROP TABLE usage_latency_hours",
        "DROP TABLE usage_latency_days",
        "DROP TABLE usage_rollup_source_hours",
        "DROP TABLE usage_rollup_source_days",
        "DROP TABLE usage_rollup_user_hours",
        "DROP TABLE usage_rollup_user_days",
        "DROP TABLE usage_rollup_endpoint_hours",
        "DROP TABLE usage_rollup_endpoint_days",
        "DROP TABLE usage_rollup_values",
        "DELETE FROM seaql_migrations WHERE version = 'm20261204_000010_attribute_rollups'",
    ] {
        sqlx::query(sql)
            .execute(&pool)
            .await
            .expect("building rollups");
    }
    drop(pool);
    let backfill = Instant::now();
    drop(common::start_server(
        dir,
        &[("AISPEND_SYNC_SCHEDULER", "false".into())],
    ));
    let pool = open(&dir.join("aispend.db")).await;
    // Migrations 000012 (unit measures) and 000013 (each measure's high part) ran
    // before 000010 was undone: the tables 000010 has just created again lack their
    // columns. Give them back and split what 000010 summed (see `money::Wide`).
    for table in [
        "usage_rollup_endpoint_days",
        "usage_rollup_endpoint_hours",
        "usage_rollup_user_days",
        "usage_rollup_user_hours",
        "usage_rollup_source_days",
        "usage_rollup_source_hours",
    ] {
        let mut sql = vec![];
        for column in &aispend::domain::rollup::COLUMNS[12..] {
            sql.push(format!(
                "ALTER TABLE {table} ADD COLUMN {column} BIGINT NOT NULL DEFAULT 0"
            ));
        }
        for column in aispend::domain::rollup::COLUMNS {
            sql.push(format!(
                "ALTER TABLE {table} ADD COLUMN {column}_hi BIGINT NOT NULL DEFAULT 0"
            ));
            sql.push(format!(
                "UPDATE {table} SET {column}_hi = {column} / 1000000000, {column} = {column} % 1000000000"
            ));
        }
        for statement in sql {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&pool)
                .await
                .expect("completing the rebuilt rollups");
        }
    }
    sqlx::query("ANALYZE")
        .execute(&pool)
        .await
        .expect("analyze");
    println!(
        "migration 000010 backfilled the endpoint, user and source rollups and the latency sketches in {:.1} s",
        backfill.elapsed().as_secs_f64()
    );
    println!(
        "loaded {events} events in {:.1} s ({:.0} rows/s), rollups built in {:.1} s",
        loaded.as_secs_f64(),
        events as f64 / loaded.as_secs_f64(),
        rollups.elapsed().as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if !common::is_bench_run() {
        return;
    }
    let events = arg("--events", 10_000_000);
    let runs = arg("--runs", 20);
    let raw_runs = arg("--raw-runs", 5).clamp(1, runs.max(1));
    let temp = tempfile::tempdir().expect("a temporary directory");
    let dir = std::env::var_os("AISPEND_BENCH_LEDGER")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir).expect("the ledger directory");
    let db = dir.join("aispend.db");
    let reuse = db.exists();
    let client = reqwest::Client::new();
    if reuse {
        println!("reusing the ledger in {}", dir.display());
    } else {
        load(&client, &dir, events).await;
    }
    let pool = open(&db).await;
    // 2. The server on that file, 30 days that do not start on a day boundary.
    // Inside the 90 loaded days, so that every day of the window has events.
    let from = START + 55 * DAY + 37 * 60_000_000;
    let to = from + 30 * DAY;
    let time = |us: i64| {
        chrono::DateTime::from_timestamp_micros(us)
            .expect("a time")
            .to_rfc3339()
    };
    let filter = json!({"from": time(from), "to": time(to)});
    let server = common::start_server(&dir, &[("AISPEND_SYNC_SCHEDULER", "false".into())]);
    let queries = [
        (
            "costSummary",
            "query($f: UsageFilter) { costSummary(filter: $f) { totals { costUsd requests } providers { provider totals { costUsd requests } } } }",
        ),
        (
            "costBreakdown(MODEL)",
            "query($f: UsageFilter) { costBreakdown(filter: $f, groupBy: [MODEL]) { model totals { costUsd requests } } }",
        ),
        (
            "costTrend(DAY)",
            "query($f: UsageFilter!) { costTrend(filter: $f, granularity: DAY) { start totals { costUsd requests } } }",
        ),
    ];
    // `aispend serve` compiles its bundled plugins in the background at start; listing
    // them waits until that is done, so the compiler does not share the two cores with
    // the timed queries.
    gql(&client, &server.url, "{ plugins { id } }", json!({})).await;
    let mut answers = Vec::new();
    let mut server_p50 = Vec::new();
    for (name, q) in queries {
        let first = gql(&client, &server.url, q, json!({"f": filter})).await;
        let mut times = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            gql(&client, &server.url, q, json!({"f": filter})).await;
            times.push(t.elapsed());
        }
        server_p50.push((name, p50(times)));
        answers.push(first);
    }

    // 3. The same answers from plain GROUP BYs over the raw events.
    let raw = [
        "SELECT provider, COALESCE(SUM(cost_nanos), 0), SUM(requests) FROM usage_events WHERE occurred_at >= ? AND occurred_at < ? GROUP BY provider",
        "SELECT model, COALESCE(SUM(cost_nanos), 0), SUM(requests) FROM usage_events WHERE occurred_at >= ? AND occurred_at < ? GROUP BY model",
        "SELECT CAST(occurred_at / 86400000000 * 86400000000 AS TEXT), COALESCE(SUM(cost_nanos), 0), SUM(requests) FROM usage_events WHERE occurred_at >= ? AND occurred_at < ? GROUP BY occurred_at / 86400000000",
    ];
    let mut raw_p50 = Vec::new();
    let mut raw_answers: Vec<BTreeMap<String, (String, i64)>> = Vec::new();
    for sql in raw {
        let mut times = Vec::new();
        let mut last = BTreeMap::new();
        for _ in 0..raw_runs {
            let t = Instant::now();
            let rows = sqlx::query(sql)
                .bind(from)
                .bind(to)
                .fetch_all(&pool)
                .await
                .expect("a raw query");
            times.push(t.elapsed());
            last = rows
                .iter()
                .map(|r| {
                    (
                        r.get::<String, _>(0),
                        (usd(r.get::<i64, _>(1)), r.get::<i64, _>(2)),
                    )
                })
                .collect();
        }
        raw_p50.push(p50(times));
        raw_answers.push(last);
    }

    // Identical answers?
    let summary: BTreeMap<String, (String, i64)> = answers[0]["costSummary"]["providers"]
        .as_array()
        .expect("providers")
        .iter()
        .map(|p| {
            (
                p["provider"].as_str().unwrap_or("").to_owned(),
                (
                    p["totals"]["costUsd"].as_str().unwrap_or("").to_owned(),
                    p["totals"]["requests"].as_i64().unwrap_or(-1),
                ),
            )
        })
        .collect();
    let breakdown: BTreeMap<String, (String, i64)> = answers[1]["costBreakdown"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| {
            (
                g["model"].as_str().unwrap_or("").to_owned(),
                (
                    g["totals"]["costUsd"].as_str().unwrap_or("").to_owned(),
                    g["totals"]["requests"].as_i64().unwrap_or(-1),
                ),
            )
        })
        .collect();
    let trend: BTreeMap<String, (String, i64)> = answers[2]["costTrend"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|b| {
            let start = chrono::DateTime::parse_from_rfc3339(b["start"].as_str().unwrap_or(""))
                .expect("a start")
                .timestamp_micros();
            (
                start.to_string(),
                (
                    b["totals"]["costUsd"].as_str().unwrap_or("").to_owned(),
                    b["totals"]["requests"].as_i64().unwrap_or(-1),
                ),
            )
        })
        .collect();
    let identical = [
        summary == raw_answers[0],
        breakdown == raw_answers[1],
        trend == raw_answers[2],
    ];

    println!(
        "{events} events, 30 days of them queried ({} runs through the server, {raw_runs} raw):",
        runs
    );
    println!(
        "{:<22} {:>12} {:>14} {:>10} {:>10}",
        "query", "server p50", "GROUP BY p50", "speed-up", "identical"
    );
    for (i, (name, s)) in server_p50.iter().enumerate() {
        println!(
            "{:<22} {:>9.2} ms {:>11.2} ms {:>9.1}x {:>10}",
            name,
            s.as_secs_f64() * 1e3,
            raw_p50[i].as_secs_f64() * 1e3,
            raw_p50[i].as_secs_f64() / s.as_secs_f64(),
            identical[i]
        );
    }
    for (i, (server, raw)) in [&summary, &breakdown, &trend]
        .into_iter()
        .zip(&raw_answers)
        .enumerate()
    {
        for key in server
            .keys()
            .chain(raw.keys())
            .collect::<std::collections::BTreeSet<_>>()
        {
            if server.get(key) != raw.get(key) {
                println!(
                    "  {}: {key}: server {:?}, GROUP BY {:?}",
                    server_p50[i].0,
                    server.get(key),
                    raw.get(key)
                );
            }
        }
    }
    assert!(
        identical.iter().all(|&x| x),
        "the server's answers differ from the raw GROUP BY"
    );
    let identical_others = others(
        &client,
        &server,
        &pool,
        &filter,
        (from, to),
        arg("--other-runs", 5),
    )
    .await;
    assert!(
        identical_others,
        "the server's answers differ from the raw GROUP BY"
    );
    drop(server);
    if reuse || std::env::var_os("AISPEND_BENCH_LEDGER").is_some() {
        println!("the ledger is kept in {}", dir.display());
    }
}
