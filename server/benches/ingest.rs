//! Ingest benchmark (see BENCHMARKS.md).
//!
//! 1. Batched: sends N events (default 200,000) through `recordUsageBatch` over HTTP,
//!    in batches of 10,000, to a real `aispend serve` process on a fresh SQLite file.
//! 2. Baseline, same run: reads back exactly the rows the server stored and inserts
//!    them with plain prepared statements (one `INSERT` per row, transactions of
//!    10,000) into a fresh database with the same schema and connection settings.
//!    Prints both rates and their ratio.
//! 3. Single calls: M `recordUsage` calls (default 50,000) from 32 concurrent clients;
//!    prints the rate, p50 and p99.
//!
//! `cargo bench -p aispend --bench ingest [-- --events N --single M --clients C]`

use aispend::config::DatabaseTarget;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::sqlx::{self, Row};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BATCH: usize = 10_000;
const TOKEN: &str = "bench-admin-token";

struct Args {
    events: usize,
    single: usize,
    clients: usize,
}

fn args() -> Args {
    let mut a = Args {
        events: 200_000,
        single: 50_000,
        clients: 32,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let value = argv.get(i + 1).and_then(|v| v.parse().ok());
        match (argv[i].as_str(), value) {
            ("--events", Some(v)) => a.events = v,
            ("--single", Some(v)) => a.single = v,
            ("--clients", Some(v)) => a.clients = v,
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(data_dir: &std::path::Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aispend"))
        .arg("serve")
        .env("AISPEND_DATA_DIR", data_dir)
        .env("AISPEND_LISTEN", "127.0.0.1:0")
        .env("AISPEND_ADMIN_TOKEN", TOKEN)
        .env("AISPEND_LOG", "warn,aispend::startup=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the aispend binary starts");
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut lines = stderr.lines();
    let address = loop {
        let line = lines
            .next()
            .expect("the server logs its address")
            .expect("a line");
        if let Some(rest) = line.split("address=").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .expect("an address")
                .to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        url: format!("http://{address}/graphql"),
    }
}

async fn gql(client: &reqwest::Client, url: &str, body: &Value) -> Value {
    let r: Value = client
        .post(url)
        .bearer_auth(TOKEN)
        .json(body)
        .send()
        .await
        .expect("a response")
        .json()
        .await
        .expect("JSON");
    assert!(r.get("errors").is_none(), "GraphQL errors: {r}");
    r
}

const MODELS: &[(&str, &str)] = &[
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4.1-mini"),
    ("openai", "o4-mini"),
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-haiku-4-5"),
    ("google", "gemini-2.5-flash"),
    ("google", "gemini-2.5-pro"),
    ("mistral", "mistral-small-latest"),
    ("acme", "in-house-llm"),
];
const ENDPOINTS: &[&str] = &[
    "chat",
    "search",
    "summarise",
    "classify",
    "extract",
    "agent",
    "rerank",
    "draft",
];

fn event(rng: &mut StdRng, project: &str, key: String) -> Value {
    let (provider, model) = MODELS[rng.random_range(0..MODELS.len())];
    let output = rng.random_range(10..2_000);
    json!({
        "projectId": project,
        "provider": provider,
        "model": model,
        "inputTokens": rng.random_range(50..20_000),
        "cacheReadTokens": if rng.random_bool(0.3) { rng.random_range(0..50_000) } else { 0 },
        "outputTokens": output,
        "reasoningTokens": if model.starts_with('o') { output / 2 } else { 0 },
        "endpoint": ENDPOINTS[rng.random_range(0..ENDPOINTS.len())],
        "user": format!("user-{}", rng.random_range(0..500)),
        "latencyMs": rng.random_range(100..9_000),
        "idempotencyKey": key,
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

const COLUMNS: &str = "id, project_id, provider, model, endpoint, source, occurred_at, received_at, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, requests, service_tier, latency_ms, cost_nanos, cost_source, price_id, idempotency_key, end_user, metadata";

/// Inserts the server's rows into a fresh database with prepared statements of
/// `per_statement` rows each (1 = one `INSERT` per row), in transactions of 10,000.
async fn raw_baseline(
    source: &std::path::Path,
    fresh: &std::path::Path,
    per_statement: usize,
) -> (usize, Duration) {
    let from = aispend::db::connect(&DatabaseTarget::Sqlite(source.to_path_buf()))
        .await
        .expect("the server's database");
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM usage_events ORDER BY id"
    )))
    .fetch_all(from.get_sqlite_connection_pool())
    .await
    .expect("rows");
    let to = aispend::db::connect(&DatabaseTarget::Sqlite(fresh.to_path_buf()))
        .await
        .expect("a fresh database");
    aispend::db::migrate(&to).await.expect("the same schema");
    let pool = to.get_sqlite_connection_pool();
    // Projects and prices the events reference (foreign keys are on, as in the server).
    let mut conn = pool.acquire().await.expect("a connection");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ATTACH DATABASE '{}' AS src",
        source.display()
    )))
    .execute(&mut *conn)
    .await
    .expect("attach");
    sqlx::query("INSERT INTO projects SELECT * FROM src.projects")
        .execute(&mut *conn)
        .await
        .expect("projects");
    sqlx::query("DELETE FROM prices")
        .execute(&mut *conn)
        .await
        .expect("prices");
    sqlx::query("INSERT INTO prices SELECT * FROM src.prices")
        .execute(&mut *conn)
        .await
        .expect("prices");
    sqlx::query("DETACH DATABASE src")
        .execute(&mut *conn)
        .await
        .expect("detach");

    // `&'static str`s so each statement binds to its cached prepared statement without
    // copying the SQL.
    let sql = |n: usize| -> &'static str {
        let row = format!("({})", vec!["?"; 23].join(", "));
        format!(
            "INSERT INTO usage_events ({COLUMNS}) VALUES {}",
            vec![row; n].join(", ")
        )
        .leak()
    };
    let full = sql(per_statement);
    let started = Instant::now();
    for chunk in rows.chunks(BATCH) {
        let mut tx = sqlx::Connection::begin(&mut *conn).await.expect("begin");
        for group in chunk.chunks(per_statement) {
            let mut q = sqlx::query(if group.len() == per_statement {
                full
            } else {
                sql(group.len())
            });
            for r in group {
                q = q
                    .bind(r.get::<i64, _>(0))
                    .bind(r.get::<Vec<u8>, _>(1))
                    .bind(r.get::<String, _>(2))
                    .bind(r.get::<String, _>(3))
                    .bind(r.get::<Option<String>, _>(4))
                    .bind(r.get::<String, _>(5))
                    .bind(r.get::<i64, _>(6))
                    .bind(r.get::<i64, _>(7));
                for c in 8..15 {
                    q = q.bind(r.get::<i64, _>(c));
                }
                q = q
                    .bind(r.get::<String, _>(15))
                    .bind(r.get::<Option<i64>, _>(16))
                    .bind(r.get::<Option<i64>, _>(17))
                    .bind(r.get::<String, _>(18))
                    .bind(r.get::<Option<i64>, _>(19))
                    .bind(r.get::<Option<String>, _>(20))
                    .bind(r.get::<Option<String>, _>(21))
                    .bind(r.get::<Option<String>, _>(22));
            }
            q.execute(&mut *tx).await.expect("insert");
        }
        tx.commit().await.expect("commit");
    }
    (rows.len(), started.elapsed())
}

#[tokio::main]
async fn main() {
    // `cargo test` and `cargo nextest` build and list benchmarks too (nextest runs the
    // binary with `--list`); only `cargo bench`, which passes `--bench`, runs it.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let args = args();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server_dir = dir.path().join("server");
    let server = start_server(&server_dir);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("a client");

    let mut projects = vec![];
    for name in ["web", "mobile", "batch-jobs", "internal"] {
        let r = gql(&client, &server.url, &json!({"query": "mutation($n: String!) { createProject(name: $n) { id } }", "variables": {"n": name}})).await;
        projects.push(
            r["data"]["createProject"]["id"]
                .as_str()
                .expect("an id")
                .to_owned(),
        );
    }

    // Bodies are built before the clock starts: the server's work is what is measured.
    let mut rng = StdRng::seed_from_u64(42);
    let bodies: Vec<Vec<u8>> = (0..args.events.div_ceil(BATCH))
        .map(|b| {
            let n = BATCH.min(args.events - b * BATCH);
            let inputs: Vec<Value> = (0..n).map(|i| event(&mut rng, &projects[i % projects.len()], format!("b{b}-{i}"))).collect();
            serde_json::to_vec(&json!({
                "query": "mutation($inputs: [UsageInput!]!) { recordUsageBatch(inputs: $inputs) { accepted duplicates } }",
                "variables": {"inputs": inputs}
            }))
            .expect("JSON")
        })
        .collect();
    let started = Instant::now();
    let mut accepted = 0;
    for body in &bodies {
        let r: Value = client
            .post(&server.url)
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("a response")
            .json()
            .await
            .expect("JSON");
        accepted += r["data"]["recordUsageBatch"]["accepted"]
            .as_u64()
            .unwrap_or_else(|| panic!("batch failed: {r}"));
    }
    let batched = started.elapsed();
    assert_eq!(accepted as usize, args.events, "every event was stored");
    let batched_rate = args.events as f64 / batched.as_secs_f64();

    println!(
        "batched ingest over HTTP: {} events in {} batches in {:.2} s = {:.0} events/s",
        args.events,
        bodies.len(),
        batched.as_secs_f64(),
        batched_rate
    );
    let source = server_dir.join("aispend.db");
    for (name, per_statement) in [("one INSERT per row", 1), ("1,000 rows per INSERT", 1000)] {
        let fresh = dir
            .path()
            .join(format!("raw-{per_statement}"))
            .join("raw.db");
        let (rows, elapsed) = raw_baseline(&source, &fresh, per_statement).await;
        let rate = rows as f64 / elapsed.as_secs_f64();
        println!(
            "raw prepared statements ({name}), same rows, same schema: {rows} rows in {:.2} s = {rate:.0} rows/s; batched ingest is {:.1}% of it (target >= 40%)",
            elapsed.as_secs_f64(),
            100.0 * batched_rate / rate
        );
    }

    // Single calls from concurrent clients.
    let single = Arc::new(
        (0..args.single)
            .map(|i| {
                let mut rng = StdRng::seed_from_u64(i as u64);
                serde_json::to_vec(&json!({
                    "query": "mutation($input: UsageInput!) { recordUsage(input: $input) { duplicate event { id costUsd } } }",
                    "variables": {"input": event(&mut rng, &projects[i % projects.len()], format!("s{i}"))}
                }))
                .expect("JSON")
            })
            .collect::<Vec<_>>(),
    );
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..args.clients)
        .map(|_| {
            let (client, url, single, next) = (
                client.clone(),
                server.url.clone(),
                single.clone(),
                next.clone(),
            );
            tokio::spawn(async move {
                let mut latencies = vec![];
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(body) = single.get(i) else { break };
                    let t = Instant::now();
                    let r = client
                        .post(&url)
                        .bearer_auth(TOKEN)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .expect("a response");
                    let text = r.bytes().await.expect("a body");
                    latencies.push(t.elapsed());
                    assert!(
                        text.starts_with(b"{\"data\":{\"recordUsage\""),
                        "{}",
                        String::from_utf8_lossy(&text)
                    );
                }
                latencies
            })
        })
        .collect();
    let mut latencies = vec![];
    for w in workers {
        latencies.extend(w.await.expect("a worker"));
    }
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "single recordUsage, {} clients: {} calls in {:.2} s = {:.0} calls/s, p50 {:.2} ms, p99 {:.2} ms (target >= 5000/s, p99 < 20 ms)",
        args.clients,
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3
    );
}
