//! What the benchmarks share: starting a real `aispend serve` (the release binary
//! `cargo bench` builds), GraphQL over HTTP and graphql-ws, the model and endpoint
//! tables, event generators, arguments and percentiles.
//!
//! Each bench uses a part of it (`mod common;`), so items unused by one are allowed.
#![allow(dead_code)]

use futures::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The bootstrap admin token every bench server accepts.
pub const TOKEN: &str = "bench-admin-token";

/// Whether this process should run the benchmark: `cargo test --all-targets` and
/// nextest build, list and run bench targets too; only `cargo bench` passes `--bench`.
pub fn is_bench_run() -> bool {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter().any(|a| a == "--bench") && !argv.iter().any(|a| a == "--list")
}

/// The value after `name` on the command line, parsed, or `default`.
pub fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    arg_text(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The text after `name` on the command line.
pub fn arg_text(name: &str) -> Option<String> {
    let argv: Vec<String> = std::env::args().collect();
    argv.windows(2).find(|w| w[0] == name).map(|w| w[1].clone())
}

/// The element at quantile `p` (0–1) of sorted values (nearest rank).
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> T {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// A running `aispend serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    /// `127.0.0.1:PORT`.
    pub address: String,
    /// `http://127.0.0.1:PORT/graphql`.
    pub url: String,
}

impl Server {
    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the release `aispend serve` on `data_dir` (SQLite there unless `env` sets
/// `AISPEND_DATABASE_URL`) on a free loopback port, with the bench admin token and
/// `env` on top; waits for its address. Its WARN and ERROR lines go to stderr.
/// `AISPEND_BENCH_SERVER=PATH` runs another build instead (an A/B in one session).
pub fn start_server(data_dir: &Path, env: &[(&str, String)]) -> Server {
    let binary = std::env::var_os("AISPEND_BENCH_SERVER")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_aispend").into());
    let mut command = Command::new(binary);
    command
        .arg("serve")
        .env("AISPEND_DATA_DIR", data_dir)
        .env("AISPEND_LISTEN", "127.0.0.1:0")
        .env("AISPEND_ADMIN_TOKEN", TOKEN)
        .env(
            "AISPEND_LOG",
            // AISPEND_BENCH_LOG adds directives; its lines are written to
            // AISPEND_BENCH_LOG_FILE (default: dropped).
            std::env::var("AISPEND_BENCH_LOG")
                .map(|d| format!("warn,aispend::startup=info,{d}"))
                .unwrap_or_else(|_| "warn,aispend::startup=info".to_owned()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("the aispend binary starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
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
    let mut log = std::env::var_os("AISPEND_BENCH_LOG_FILE").and_then(|path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()
    });
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if line.contains("WARN") || line.contains("ERROR") {
                eprintln!("server: {line}");
            }
            if let Some(file) = log.as_mut() {
                use std::io::Write;
                let _ = writeln!(file, "{line}");
            }
        }
    });
    Server {
        url: format!("http://{address}/graphql"),
        address,
        child,
    }
}

/// An HTTP client keeping enough idle connections for the benches' concurrency.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("a client")
}

/// Posts a GraphQL body as the admin; returns the answer, errors and all.
pub async fn gql_answer(client: &reqwest::Client, url: &str, body: &Value) -> Value {
    client
        .post(url)
        .bearer_auth(TOKEN)
        .json(body)
        .send()
        .await
        .expect("a response")
        .json()
        .await
        .expect("JSON")
}

/// Posts a GraphQL body as the admin; panics on GraphQL errors; returns the answer.
pub async fn gql(client: &reqwest::Client, url: &str, body: &Value) -> Value {
    let r = gql_answer(client, url, body).await;
    assert!(r.get("errors").is_none(), "GraphQL errors: {r}");
    r
}

/// `gql` with a query and its variables; returns `data`.
pub async fn gql_data(client: &reqwest::Client, url: &str, query: &str, variables: Value) -> Value {
    gql(
        client,
        url,
        &json!({"query": query, "variables": variables}),
    )
    .await
    .get("data")
    .cloned()
    .unwrap_or(Value::Null)
}

/// Creates projects by name; returns their ids in order.
pub async fn create_projects(client: &reqwest::Client, url: &str, names: &[&str]) -> Vec<String> {
    let mut out = vec![];
    for name in names {
        let r = gql_data(
            client,
            url,
            "mutation($n: String!) { createProject(name: $n) { id } }",
            json!({"n": name}),
        )
        .await;
        out.push(r["createProject"]["id"].as_str().expect("an id").to_owned());
    }
    out
}

pub const MODELS: &[(&str, &str)] = &[
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

pub const ENDPOINTS: &[&str] = &[
    "chat",
    "search",
    "summarise",
    "classify",
    "extract",
    "agent",
    "rerank",
    "draft",
];

/// A `UsageInput` priced by the server: a random model (one unpriced), token mix with
/// cache reads and reasoning, endpoint, user and latency.
pub fn event(rng: &mut StdRng, project: &str, key: String) -> Value {
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

/// A `UsageInput` carrying the cost the provider reported (`reportedCostUsd`).
pub fn reported_event(rng: &mut StdRng, project: &str, key: String) -> Value {
    let (provider, model) = MODELS[rng.random_range(0..MODELS.len())];
    json!({
        "projectId": project,
        "provider": provider,
        "model": model,
        "inputTokens": rng.random_range(50..20_000),
        "outputTokens": rng.random_range(10..2_000),
        "endpoint": ENDPOINTS[rng.random_range(0..ENDPOINTS.len())],
        "user": format!("user-{}", rng.random_range(0..500)),
        "reportedCostUsd": format!("0.{:06}", rng.random_range(1..50_000)),
        "idempotencyKey": key,
    })
}

/// A seeded generator (each bench's runs are repeatable).
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a graphql-transport-ws connection as the admin and subscribes to `query`.
pub async fn subscribe(address: &str, query: &str, variables: Value) -> Ws {
    let mut request = format!("ws://{address}/graphql/ws")
        .into_client_request()
        .expect("a request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().expect("a header"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("a websocket");
    ws.send(Message::Text(
        json!({"type": "connection_init", "payload": {"token": TOKEN}})
            .to_string()
            .into(),
    ))
    .await
    .expect("init");
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("connection_ack") => break,
            Some(Ok(_)) => continue,
            other => panic!("no connection_ack: {other:?}"),
        }
    }
    ws.send(Message::Text(
        json!({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}})
            .to_string()
            .into(),
    ))
    .await
    .expect("subscribe");
    ws
}

/// A fresh PostgreSQL database on the server `admin` names (a URL of a role that may
/// create databases), named `<prefix>_<random>`; dropped with the value.
pub struct PgDatabase {
    admin: String,
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
}

impl PgDatabase {
    /// Creates it (named `prefix` and a random suffix).
    pub async fn create(admin: &str, prefix: &str) -> PgDatabase {
        let name = format!("{prefix}_{:016x}", rand::rng().random::<u64>());
        PgDatabase::open_or_create(admin, &name).await.0
    }

    /// Drops it (connections still open are closed by force).
    pub async fn drop_now(self) {
        if let Ok(conn) = sea_orm::Database::connect(self.admin.as_str()).await {
            let _ = sea_orm::ConnectionTrait::execute_unprepared(
                &conn,
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            )
            .await;
        }
    }

    /// The database `name` (lower-case letters, digits and `_`) on the server `admin`
    /// names, created unless it exists, and whether it existed: a database a bench
    /// keeps between runs (nothing drops it unless `drop_now` is called).
    pub async fn open_or_create(admin: &str, name: &str) -> (PgDatabase, bool) {
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "a database name of a-z, 0-9 and _: {name}"
        );
        let conn = sea_orm::Database::connect(admin)
            .await
            .expect("connecting to --postgres");
        let existed = sea_orm::ConnectionTrait::query_one_raw(
            &conn,
            sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"),
            ),
        )
        .await
        .expect("listing the databases")
        .is_some();
        if !existed {
            sea_orm::ConnectionTrait::execute_unprepared(&conn, &format!("CREATE DATABASE {name}"))
                .await
                .expect("creating a bench database");
        }
        let _ = conn.close().await;
        let mut url = reqwest::Url::parse(admin).expect("--postgres is a URL");
        url.set_path(&format!("/{name}"));
        let db = PgDatabase {
            admin: admin.to_owned(),
            name: name.to_owned(),
            url: url.to_string(),
        };
        (db, existed)
    }
}

/// What one event adds to the rollup measure `column` (one of
/// `aispend::domain::rollup::COLUMNS`), as the server's rollup hook counts it, in SQL
/// over `usage_events` (`prefix`: its alias and a dot, or nothing).
pub fn rollup_measure(column: &str, prefix: &str) -> String {
    match column {
        "cost_nanos" => format!("COALESCE({prefix}cost_nanos, 0)"),
        "events" => "1".to_owned(),
        "unpriced" => format!("CASE WHEN {prefix}cost_nanos IS NULL THEN 1 ELSE 0 END"),
        "latency_sum" => format!("COALESCE({prefix}latency_ms, 0)"),
        "latency_count" => format!("CASE WHEN {prefix}latency_ms IS NULL THEN 0 ELSE 1 END"),
        // Requests, the token classes and the units (audio and image tokens, images,
        // web-search calls, video seconds) are the events' columns of the same name.
        other => format!("{prefix}{other}"),
    }
}
