//! Ingest benchmark (see BENCHMARKS.md).
//!
//! 1. Batched: sends N events (default 200,000) through `recordUsageBatch` over HTTP,
//!    in batches of 10,000, to a real `aispend serve` process on a fresh SQLite file
//!    (with `--postgres URL`: on a fresh PostgreSQL database created through `URL`, a
//!    role that may create databases).
//! 2. Baseline, same run: reads back exactly the rows the server stored and writes
//!    them into a fresh database with the same schema. SQLite: plain prepared
//!    statements (one `INSERT` per row, and 1,000 rows per `INSERT`, transactions of
//!    10,000) with the same connection settings. PostgreSQL: one `COPY … FROM STDIN`.
//!    Prints both rates and their ratio.
//! 3. Single calls: M `recordUsage` calls (default 50,000) from 32 concurrent clients;
//!    prints the rate, p50 and p99.
//!
//! After each phase it waits until the server has folded every event into the rollups
//! (`usage_unfolded` empty) and prints how long that took after the last response, and
//! the phase's rate with that time counted.
//!
//! 4. PostgreSQL with `--servers S`: S server processes on the one database, each
//!    client talking to one of them in turn; afterwards every event sent must be
//!    stored exactly once, and the daily rollup must count each of them once.
//!
//! `cargo bench -p aispend --bench ingest [-- --events N --single M --clients C --postgres URL --servers S]`

mod common;

use aispend::config::DatabaseTarget;
use common::{PgDatabase, TOKEN, arg, event, percentile, start_server};
use futures::TryStreamExt;
use rand::SeedableRng;
use rand::rngs::StdRng;
use sea_orm::sqlx::{self, Row};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BATCH: usize = 10_000;

struct Args {
    events: usize,
    single: usize,
    clients: usize,
    servers: usize,
}

fn args() -> Args {
    Args {
        events: arg("--events", 200_000),
        single: arg("--single", 50_000),
        clients: arg("--clients", 32),
        servers: arg("--servers", 1),
    }
}

const COLUMNS: &str = "id, project_id, provider, model, endpoint, source, occurred_at, received_at, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, requests, service_tier, latency_ms, cost_nanos, cost_source, price_id, idempotency_key, end_user, metadata";

/// Sends prepared batch bodies from `clients` concurrent clients, client `k` to
/// server `k` (modulo their number); returns the elapsed time and the number of
/// batches. All `expected` events must be accepted.
async fn send_batches(
    client: &reqwest::Client,
    urls: &[String],
    bodies: Arc<Vec<Vec<u8>>>,
    clients: usize,
    expected: usize,
) -> (Duration, usize) {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let accepted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let senders: Vec<_> = (0..clients)
        .map(|k| {
            let (client, url, bodies, next, accepted) = (
                client.clone(),
                urls[k % urls.len()].clone(),
                bodies.clone(),
                next.clone(),
                accepted.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else { break };
                    let r: Value = client
                        .post(&url)
                        .bearer_auth(TOKEN)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .expect("a response")
                        .json()
                        .await
                        .expect("JSON");
                    let n = r["data"]["recordUsageBatch"]["accepted"]
                        .as_u64()
                        .unwrap_or_else(|| panic!("batch failed: {r}"));
                    accepted.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                }
            })
        })
        .collect();
    for s in senders {
        s.await.expect("a sender");
    }
    let elapsed = started.elapsed();
    let stored = accepted.load(std::sync::atomic::Ordering::Relaxed) as usize;
    assert_eq!(stored, expected, "every event was stored");
    (elapsed, bodies.len())
}

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
        "SELECT {COLUMNS} FROM usage_events WHERE idempotency_key LIKE 'a%' ORDER BY id"
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

/// What `COPY … TO STDOUT` sends, whole.
async fn copy_out(conn: &mut sqlx::PgConnection, sql: &str) -> Vec<u8> {
    conn.copy_out_raw(sql)
        .await
        .expect("COPY TO")
        .try_fold(Vec::new(), |mut all, chunk| async move {
            all.extend_from_slice(&chunk);
            Ok(all)
        })
        .await
        .expect("the copied rows")
}

/// Copies the server's rows into a fresh PostgreSQL database of the same schema with
/// one `COPY … FROM STDIN` (after its projects and prices, which the events reference),
/// and times the `COPY`.
async fn copy_baseline(source: &str, admin: &str) -> (usize, Duration) {
    let fresh = PgDatabase::create(admin, "aispend_ingest_raw").await;
    let from = aispend::db::connect(&DatabaseTarget::Postgres(source.to_owned()))
        .await
        .expect("the server's database");
    let to = aispend::db::connect(&DatabaseTarget::Postgres(fresh.url.clone()))
        .await
        .expect("a fresh database");
    aispend::db::migrate(&to).await.expect("the same schema");
    let mut src = from
        .get_postgres_connection_pool()
        .acquire()
        .await
        .expect("a connection");
    let mut dst = to
        .get_postgres_connection_pool()
        .acquire()
        .await
        .expect("a connection");
    let projects = copy_out(&mut src, "COPY projects TO STDOUT").await;
    let prices = copy_out(&mut src, "COPY prices TO STDOUT").await;
    let events = copy_out(
        &mut src,
        &format!(
            "COPY (SELECT {COLUMNS} FROM usage_events WHERE idempotency_key LIKE 'a%' ORDER BY id) TO STDOUT"
        ),
    )
    .await;
    sqlx::query("DELETE FROM prices")
        .execute(&mut *dst)
        .await
        .expect("prices");
    for (table, data) in [("projects", &projects), ("prices", &prices)] {
        let mut copy = dst
            .copy_in_raw(&format!("COPY {table} FROM STDIN"))
            .await
            .expect("COPY FROM");
        copy.send(data.as_slice()).await.expect("rows");
        copy.finish().await.expect("the copy");
    }
    let started = Instant::now();
    let mut copy = dst
        .copy_in_raw(&format!("COPY usage_events ({COLUMNS}) FROM STDIN"))
        .await
        .expect("COPY FROM");
    copy.send(events.as_slice()).await.expect("rows");
    let rows = copy.finish().await.expect("the copy");
    let elapsed = started.elapsed();
    drop((src, dst));
    let _ = (from.close().await, to.close().await);
    fresh.drop_now().await;
    (rows as usize, elapsed)
}

#[tokio::main]
async fn main() {
    if !common::is_bench_run() {
        return;
    }
    let args = args();
    let postgres = common::arg_text("--postgres");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server_dir = dir.path().join("server");
    let pg = match &postgres {
        Some(admin) => Some(PgDatabase::create(admin, "aispend_ingest").await),
        None => None,
    };
    let env: Vec<(&str, String)> = pg
        .iter()
        .map(|db| ("AISPEND_DATABASE_URL", db.url.clone()))
        .collect();
    let servers = if pg.is_some() { args.servers.max(1) } else { 1 };
    let server = start_server(&server_dir, &env);
    let peers: Vec<common::Server> = (1..servers)
        .map(|i| start_server(&dir.path().join(format!("server-{i}")), &env))
        .collect();
    let urls: Vec<String> = std::iter::once(server.url.clone())
        .chain(peers.iter().map(|p| p.url.clone()))
        .collect();
    println!(
        "engine: {}{}",
        if pg.is_some() { "PostgreSQL" } else { "SQLite" },
        if servers > 1 {
            format!(", {servers} servers on one database")
        } else {
            String::new()
        }
    );
    let client = common::client();
    let ledger = aispend::db::connect(&match &pg {
        Some(db) => DatabaseTarget::Postgres(db.url.clone()),
        None => DatabaseTarget::Sqlite(server_dir.join("aispend.db")),
    })
    .await
    .expect("the server's database");

    let projects = common::create_projects(
        &client,
        &server.url,
        &["web", "mobile", "batch-jobs", "internal"],
    )
    .await;

    // Bodies are built before the clock starts: the server's work is what is measured.
    // Two sets with distinct keys: one sent by a single client, one by two at once.
    let build = |phase: &str, seed: u64| -> Vec<Vec<u8>> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..args.events.div_ceil(BATCH))
            .map(|b| {
                let n = BATCH.min(args.events - b * BATCH);
                let inputs: Vec<Value> = (0..n)
                    .map(|i| event(&mut rng, &projects[i % projects.len()], format!("{phase}{b}-{i}")))
                    .collect();
                serde_json::to_vec(&json!({
                    "query": "mutation($inputs: [UsageInput!]!) { recordUsageBatch(inputs: $inputs) { accepted duplicates } }",
                    "variables": {"inputs": inputs}
                }))
                .expect("JSON")
            })
            .collect()
    };
    let (one, batches) =
        send_batches(&client, &urls, Arc::new(build("a", 42)), 1, args.events).await;
    let one_lag = fold_lag(&ledger).await;
    let batched_rate = args.events as f64 / one.as_secs_f64();
    let (two, _) = send_batches(&client, &urls, Arc::new(build("b", 43)), 2, args.events).await;
    let two_lag = fold_lag(&ledger).await;
    println!(
        "batched ingest over HTTP, one client: {} events in {batches} batches in {:.2} s = {batched_rate:.0} events/s; {}",
        args.events,
        one.as_secs_f64(),
        folded(args.events, one, one_lag)
    );
    println!(
        "batched ingest over HTTP, two clients at once: {} more events in {:.2} s = {:.0} events/s; {}",
        args.events,
        two.as_secs_f64(),
        args.events as f64 / two.as_secs_f64(),
        folded(args.events, two, two_lag)
    );
    if let (Some(db), Some(admin)) = (&pg, &postgres) {
        let (rows, elapsed) = copy_baseline(&db.url, admin).await;
        let rate = rows as f64 / elapsed.as_secs_f64();
        let with_fold = args.events as f64 / (one + one_lag).as_secs_f64();
        println!(
            "raw COPY FROM STDIN, same rows, same schema: {rows} rows in {:.2} s = {rate:.0} rows/s; batched ingest is {:.1}% of it (target >= 50%), {:.1}% with the fold",
            elapsed.as_secs_f64(),
            100.0 * batched_rate / rate,
            100.0 * with_fold / rate
        );
    }
    let source = server_dir.join("aispend.db");
    let sqlite_baselines: &[(&str, usize)] = if pg.is_some() {
        &[]
    } else {
        &[("one INSERT per row", 1), ("1,000 rows per INSERT", 1000)]
    };
    for &(name, per_statement) in sqlite_baselines {
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
        .map(|k| {
            let (client, url, single, next) = (
                client.clone(),
                urls[k % urls.len()].clone(),
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
    let lag = fold_lag(&ledger).await;
    latencies.sort();
    println!(
        "single recordUsage, {} clients: {} calls in {:.2} s = {:.0} calls/s, p50 {:.2} ms, p99 {:.2} ms (target >= 5000/s, p99 < 20 ms); {}",
        args.clients,
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        folded(latencies.len(), elapsed, lag)
    );
    let _ = ledger.close().await;
    drop(peers);
    drop(server);
    if let Some(db) = pg {
        let sent = 2 * args.events + args.single;
        check_stored_once(&db.url, sent).await;
        db.drop_now().await;
    }
}

/// How long after now the server's folder took to empty `usage_unfolded` (polled
/// every 5 ms; more than two minutes is a failure). Zero for a server older than the
/// list (`AISPEND_BENCH_SERVER`), which kept its rollups inside each ingest.
async fn fold_lag(ledger: &sea_orm::DatabaseConnection) -> Duration {
    use sea_orm::ConnectionTrait;
    let started = Instant::now();
    loop {
        let row = match ledger
            .query_one_raw(sea_orm::Statement::from_string(
                ledger.get_database_backend(),
                "SELECT COUNT(*) FROM usage_unfolded",
            ))
            .await
        {
            Ok(row) => row.expect("a count"),
            // SQLite: "no such table"; PostgreSQL: "relation … does not exist".
            Err(e) if e.to_string().contains("usage_unfolded") => return Duration::ZERO,
            Err(e) => panic!("counting unfolded events: {e}"),
        };
        let left: i64 = row.try_get_by_index(0).expect("a count");
        if left == 0 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{left} events still unfolded after two minutes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A phase's fold lag and its rate counting that lag.
fn folded(events: usize, took: Duration, lag: Duration) -> String {
    format!(
        "all folded {:.0} ms after the last response ({:.0}/s counting that)",
        lag.as_secs_f64() * 1e3,
        events as f64 / (took + lag).as_secs_f64()
    )
}

/// Every event sent is stored, once, and counted once by the daily rollup.
async fn check_stored_once(url: &str, sent: usize) {
    let db = aispend::db::connect(&DatabaseTarget::Postgres(url.to_owned()))
        .await
        .expect("the server's database");
    let pool = db.get_postgres_connection_pool();
    let (stored, keys): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT idempotency_key) FROM usage_events")
            .fetch_one(pool)
            .await
            .expect("counts");
    let counted: i64 = sqlx::query_scalar(
        "SELECT (SUM(events_hi) * 1000000000 + SUM(events))::int8 FROM usage_rollup_days",
    )
    .fetch_one(pool)
    .await
    .expect("the rollup's count");
    let sent = sent as i64;
    assert_eq!(
        (stored, keys, counted),
        (sent, sent, sent),
        "stored, distinct keys and rolled-up events must each equal the events sent"
    );
    println!(
        "stored exactly once: {stored} events sent, {stored} stored, {counted} in the daily rollup"
    );
    let _ = db.close().await;
}
