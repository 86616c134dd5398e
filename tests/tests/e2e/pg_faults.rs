//! PostgreSQL stopped under load and started again. The test runs its own PostgreSQL
//! server (`initdb` + `pg_ctl` as the `postgres` OS user, a temporary data directory,
//! a free port) — never the shared instance — points the real aispend server at it,
//! keeps a stream of `recordUsage` calls going, stops PostgreSQL (`pg_ctl stop -m
//! fast`) and starts it again. While it is down every request fails fast with
//! `UNAVAILABLE` (HTTP 503 when the token cannot even be checked), `/healthz` says
//! `unavailable`, and no request takes longer than the pool's acquire timeout plus
//! slack; afterwards the server recovers by itself and every acknowledged event is in
//! the ledger exactly once, with rollups equal to the `GROUP BY` of the events.
//!
//! PostgreSQL pass only (under `postgres::`): it needs the PostgreSQL binaries and the
//! `postgres` user, and fails with a message naming what is missing.

use aispend_e2e::{Backend, TestApp, spawn_app_with, wait_until};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest a request may take while the database is down or coming back: the pool
/// waits at most `ACQUIRE_TIMEOUT` for a connection (opening one included), plus
/// slack for a loaded machine.
const REQUEST_BOUND: Duration = Duration::from_secs(aispend::db::ACQUIRE_TIMEOUT.as_secs() + 5);
const WAIT: Duration = Duration::from_secs(60);
const WORKERS: usize = 4;

/// A private PostgreSQL server on a temporary data directory; stopped (immediately)
/// when dropped.
struct PgCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

fn as_postgres(bin: &Path, tool: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin.join(tool))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {tool} as the postgres user (runuser): {e}"));
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl PgCluster {
    fn start() -> PgCluster {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("pg_ctl").exists() && b.join("initdb").exists())
            .max()
            .expect(
                "this test needs PostgreSQL's server binaries (initdb, pg_ctl) under \
                 /usr/lib/postgresql/*/bin: install the postgresql package",
            );
        let user = Command::new("id").arg("postgres").output();
        assert!(
            user.is_ok_and(|o| o.status.success()),
            "this test runs initdb and pg_ctl as the `postgres` OS user, which does not exist"
        );
        let dir = tempfile::tempdir().expect("a temporary directory");
        let chown = Command::new("chown")
            .args(["postgres:", &dir.path().display().to_string()])
            .status()
            .expect("chown");
        assert!(
            chown.success(),
            "giving the temporary directory to postgres"
        );
        // A free port: bind port 0, note it, release it for PostgreSQL.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let cluster = PgCluster { bin, dir, port };
        let data = cluster.data();
        as_postgres(
            &cluster.bin,
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        cluster.pg_start();
        cluster
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        as_postgres(
            &self.bin,
            "pg_ctl",
            &[
                "start",
                "-D",
                &self.data(),
                "-l",
                &log,
                "-w",
                "-t",
                "60",
                "-o",
                &options,
            ],
        );
    }

    fn pg_stop(&self, mode: &str) {
        as_postgres(
            &self.bin,
            "pg_ctl",
            &["stop", "-D", &self.data(), "-m", mode, "-w", "-t", "60"],
        );
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["stop", "-D", &self.data(), "-m", "immediate", "-w"])
            .output();
    }
}

/// What one `recordUsage` call got.
#[derive(Debug, Clone)]
struct Outcome {
    key: String,
    acknowledged: bool,
    status: u16,
    code: Option<String>,
    message: Option<String>,
    elapsed: Duration,
    /// When the request was sent.
    sent: Instant,
}

const RECORD: &str =
    "mutation($input: UsageInput!) { recordUsage(input: $input) { duplicate event { id } } }";

async fn record_once(app: &TestApp, client: &reqwest::Client, input: Value) -> Outcome {
    let key = input["idempotencyKey"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let started = Instant::now();
    let sent = client
        .post(format!("{}/graphql", app.base_url))
        .bearer_auth(&app.admin_token)
        .json(&json!({"query": RECORD, "variables": {"input": input}}))
        .send()
        .await;
    let (status, body) = match sent {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
        Err(e) => {
            return Outcome {
                key,
                acknowledged: false,
                status: 0,
                code: Some("CLIENT_ERROR".into()),
                message: Some(e.to_string()),
                elapsed: started.elapsed(),
                sent: started,
            };
        }
    };
    let error = &body["errors"][0];
    Outcome {
        key,
        acknowledged: status == 200 && body["data"]["recordUsage"]["event"]["id"].is_string(),
        status,
        code: error["extensions"]["code"].as_str().map(str::to_owned),
        message: error["message"].as_str().map(str::to_owned),
        elapsed: started.elapsed(),
        sent: started,
    }
}

async fn healthz(app: &TestApp) -> (u16, Value) {
    let r = app
        .client
        .get(format!("{}/healthz", app.base_url))
        .timeout(REQUEST_BOUND + Duration::from_secs(5))
        .send()
        .await
        .expect("healthz answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn rows(app: &TestApp, sql: &str) -> Vec<sea_orm::QueryResult> {
    let db = &app.state.db;
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        sql.to_owned(),
    ))
    .await
    .expect("a query")
}

async fn postgresql_stopped_under_load_and_started_again() {
    let cluster = PgCluster::start();
    let url = cluster.url();
    let app = spawn_app_with(Backend::Postgres, |s| s.database_url = Some(url)).await;
    let project = app.create_project("faults").await;

    let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let app = Arc::new(app);
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (app, outcomes, stop, project) =
            (app.clone(), outcomes.clone(), stop.clone(), project.clone());
        workers.push(tokio::spawn(async move {
            // The client's own timeout is well past the bound, so a hang shows as an
            // elapsed time over the bound rather than being cut short.
            let client = reqwest::Client::builder()
                .timeout(REQUEST_BOUND * 3)
                .build()
                .expect("a client");
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let input = json!({
                    "projectId": project, "provider": "acme", "model": format!("acme-{}", w % 2),
                    "inputTokens": i + 1, "reportedCostUsd": "0.01",
                    "idempotencyKey": format!("w{w}-{i}"),
                });
                let outcome = record_once(&app, &client, input).await;
                outcomes.lock().expect("outcomes").push(outcome);
                i += 1;
            }
        }));
    }
    let acked = |outcomes: &Arc<Mutex<Vec<Outcome>>>| {
        outcomes
            .lock()
            .expect("outcomes")
            .iter()
            .filter(|o| o.acknowledged)
            .count()
    };
    wait_until("20 acknowledged events before the stop", WAIT, || {
        let n = acked(&outcomes);
        async move { n >= 20 }
    })
    .await;

    // Stop PostgreSQL under load.
    let c = Arc::new(cluster);
    let cl = c.clone();
    tokio::task::spawn_blocking(move || cl.pg_stop("fast"))
        .await
        .expect("pg_ctl stop");
    // Requests sent before `pg_ctl stop` returned may have committed before it and be
    // answered after it (a loaded machine delays their answers): only those sent once
    // PostgreSQL was down must all fail.
    let stopped = Instant::now();
    let sent_while_down = |outcomes: &Arc<Mutex<Vec<Outcome>>>| -> Vec<Outcome> {
        outcomes
            .lock()
            .expect("outcomes")
            .iter()
            .filter(|o| o.sent > stopped)
            .cloned()
            .collect()
    };
    wait_until("3 requests answered while PostgreSQL is down", WAIT, || {
        let n = sent_while_down(&outcomes).len();
        async move { n >= 3 }
    })
    .await;
    let started = Instant::now();
    let (status, health) = healthz(&app).await;
    assert_eq!(status, 503, "healthz while the database is down: {health}");
    assert_eq!(health["status"], "unavailable");
    assert!(
        started.elapsed() < REQUEST_BOUND,
        "healthz took {:?}",
        started.elapsed()
    );
    let while_down = sent_while_down(&outcomes);
    assert!(
        while_down.iter().all(|o| !o.acknowledged),
        "nothing is acknowledged while PostgreSQL is down: {while_down:?}"
    );

    // Start it again: the server recovers by itself.
    let cl = c.clone();
    tokio::task::spawn_blocking(move || cl.pg_start())
        .await
        .expect("pg_ctl start");
    let acked_at_restart = acked(&outcomes);
    wait_until(
        "20 more acknowledged events after the restart",
        WAIT,
        || {
            let n = acked(&outcomes);
            async move { n >= acked_at_restart + 20 }
        },
    )
    .await;
    let (status, health) = healthz(&app).await;
    assert_eq!(status, 200, "healthz after the restart: {health}");
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("a worker");
    }

    let outcomes = outcomes.lock().expect("outcomes").clone();
    let failures: Vec<&Outcome> = outcomes.iter().filter(|o| !o.acknowledged).collect();
    assert!(!failures.is_empty(), "some requests failed while down");
    for o in &failures {
        assert_eq!(
            o.code.as_deref(),
            Some("UNAVAILABLE"),
            "a request failed while PostgreSQL was down or restarting without UNAVAILABLE: {o:?}"
        );
        assert!(
            o.status == 200 || o.status == 503,
            "HTTP status of a failed request: {o:?}"
        );
        assert!(
            o.message
                .as_deref()
                .is_some_and(|m| m.contains("unavailable")),
            "a clear message: {o:?}"
        );
    }
    let slow: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.elapsed >= REQUEST_BOUND)
        .collect();
    assert!(
        slow.is_empty(),
        "requests over the bound of {REQUEST_BOUND:?}: {slow:?}"
    );

    let slowest = |ok: bool| {
        outcomes
            .iter()
            .filter(|o| o.acknowledged == ok)
            .map(|o| o.elapsed)
            .max()
            .unwrap_or_default()
    };
    println!(
        "{} requests: {} acknowledged (slowest {:?}), {} UNAVAILABLE (slowest {:?})",
        outcomes.len(),
        outcomes.len() - failures.len(),
        slowest(true),
        failures.len(),
        slowest(false)
    );

    // Every acknowledged event is stored exactly once; nothing unknown is stored.
    let stored: BTreeMap<String, i64> = rows(
        &app,
        "SELECT idempotency_key, CAST(COUNT(*) AS BIGINT) FROM usage_events GROUP BY idempotency_key",
    )
    .await
    .into_iter()
    .map(|r| {
        (
            r.try_get_by_index::<String>(0).expect("a key"),
            r.try_get_by_index::<i64>(1).expect("a count"),
        )
    })
    .collect();
    let sent: BTreeSet<&str> = outcomes.iter().map(|o| o.key.as_str()).collect();
    for o in outcomes.iter().filter(|o| o.acknowledged) {
        assert_eq!(
            stored.get(&o.key),
            Some(&1),
            "acknowledged event {} stored once",
            o.key
        );
    }
    for (key, n) in &stored {
        assert!(sent.contains(key.as_str()), "stored {key} was never sent");
        assert_eq!(*n, 1, "{key} stored {n} times");
    }

    // Rollups equal the GROUP BY of the events, once the folder has folded them all.
    app.folded().await;
    let sums = |sql: String| {
        let app = app.clone();
        async move {
            rows(&app, &sql)
                .await
                .into_iter()
                .map(|r| {
                    (
                        r.try_get_by_index::<String>(0).expect("model"),
                        r.try_get_by_index::<i64>(1).expect("events"),
                        r.try_get_by_index::<i64>(2).expect("cost"),
                        r.try_get_by_index::<i64>(3).expect("input"),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let events = sums(
        "SELECT model, CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT), \
         CAST(SUM(input_tokens) AS BIGINT) FROM usage_events GROUP BY model ORDER BY model"
            .into(),
    )
    .await;
    assert_eq!(events.iter().map(|e| e.1).sum::<i64>(), stored.len() as i64);
    for table in [
        "usage_rollup_days",
        "usage_rollup_model_hours",
        "usage_rollup_endpoint_days",
    ] {
        let rollup = sums(format!(
            "SELECT model, CAST(SUM(events_hi * 1000000000 + events) AS BIGINT), \
             CAST(SUM(cost_nanos_hi * 1000000000 + cost_nanos) AS BIGINT), \
             CAST(SUM(input_tokens_hi * 1000000000 + input_tokens) AS BIGINT) FROM {table} GROUP BY model ORDER BY model"
        ))
        .await;
        assert_eq!(rollup, events, "{table} against the GROUP BY of the events");
    }
    drop(c);
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgresql_stopped_under_load_and_started_again() {
        super::postgresql_stopped_under_load_and_started_again().await
    }
}
