//! Analytics benchmark (see BENCHMARKS.md).
//!
//! 1. The real server (release build) creates a ledger — a SQLite file, or with
//!    `--postgres URL` a fresh PostgreSQL database created through `URL` — and 20
//!    projects; then, the server stopped, N events (default 10,000,000; 90 days, 8
//!    providers, 60 models, 40 endpoints, 200 end users, the same events on both
//!    engines) are bulk-loaded (SQLite: multi-row `INSERT`s; PostgreSQL:
//!    `COPY … FROM STDIN`), every rollup of `rollup::ALL`, every latency sketch of
//!    `rollup::SKETCHES` and `usage_rollup_values` are rebuilt with
//!    `INSERT … SELECT … GROUP BY` generated from the rollups' definitions
//!    ([`rebuild`]), and the ledger is analyzed.
//!    Before loading, [`check_rebuild`] checks that rebuild against the server itself:
//!    on a small ledger the server filled through `recordUsageBatch` (its rollup hook),
//!    the rebuilt tables must equal the rows the server wrote.
//! 2. Starts `aispend serve` on that ledger and times `costSummary`,
//!    `costBreakdown(groupBy: [MODEL])` and `costTrend(granularity: DAY)` over 30 days
//!    (from 00:37 UTC to 00:37 UTC, so the edges need the hourly rollups and raw
//!    events) through HTTP GraphQL, then every other analytic of issue 13 (breakdowns
//!    by endpoint, user and source, an endpoint filter, percentiles, a Berlin hourly
//!    trend, recommendations, anomalies, reconciliation, REST routes), checking those
//!    a plain `GROUP BY` answers against it.
//! 3. Baseline, same run and ledger: the same answers from a plain `GROUP BY` over the
//!    raw events. Prints each p50, the ratio, and checks the answers are identical.
//! 4. The dashboard's own requests, page by page ([`pages`]); `--pages-only` times
//!    only those.
//!
//! `cargo bench -p aispend --bench analytics [-- --events N --runs R --raw-runs K
//! --other-runs O --page-runs P --page NAME --postgres URL --pg-keep NAME --load-only --pages-only]`
//!
//! Reuse (for tuning: the load takes minutes, the queries seconds): on SQLite,
//! `AISPEND_BENCH_LEDGER=DIR` loads the ledger into `DIR` and leaves it there; when
//! `DIR` already holds one, the load is skipped and the queries run on it. On
//! PostgreSQL, `--pg-keep NAME` does the same with the database `NAME` (reused when it
//! exists, else created, loaded and kept; `DROP DATABASE NAME` to load afresh); without
//! it the database is dropped at the end. Either way a ledger is reused as found, even
//! one whose load was interrupted. `--load-only` stops after loading a kept ledger.

#[path = "../common/mod.rs"]
mod common;
mod pages;

use aispend::domain::money::Wide;
use aispend::domain::rollup::{self, Rollup, Sketch};
use common::{PgDatabase, Server, TOKEN, gql_data as gql};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use sea_orm::sqlx::{
    self, AssertSqlSafe, PgPool, SqlitePool, postgres::PgPoolOptions, sqlite::SqlitePoolOptions,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
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

/// Groups of `(key, (cost in USD, requests))`, as the server's answers are compared.
type Groups = BTreeMap<String, (String, i64)>;

/// The plain `GROUP BY` over the raw events of the window (`$1` to `$2`) that answers
/// cost and requests by `key`, with `and` added to the filter. The same text on both
/// engines: `$N` parameters (which SQLite reads too) and sums cast back to `BIGINT`
/// (PostgreSQL sums `BIGINT`s as `NUMERIC`).
fn grouped(key: &str, and: &str) -> String {
    format!(
        "SELECT {key}, CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT), CAST(SUM(requests) AS BIGINT) \
         FROM usage_events WHERE occurred_at >= $1 AND occurred_at < $2{and} GROUP BY 1"
    )
}

/// The ledger's database, opened beside the server.
enum Ledger {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Ledger {
    /// Runs one statement; returns the rows it changed.
    async fn execute(&self, sql: &str) -> u64 {
        let done = match self {
            Ledger::Sqlite(pool) => sqlx::query(AssertSqlSafe(sql))
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
            Ledger::Postgres(pool) => sqlx::query(AssertSqlSafe(sql))
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
        };
        done.unwrap_or_else(|e| panic!("{e}: {sql}"))
    }

    /// The one integer a query answers.
    async fn scalar(&self, sql: &str) -> i64 {
        let value = match self {
            Ledger::Sqlite(pool) => sqlx::query_scalar(AssertSqlSafe(sql)).fetch_one(pool).await,
            Ledger::Postgres(pool) => sqlx::query_scalar(AssertSqlSafe(sql)).fetch_one(pool).await,
        };
        value.unwrap_or_else(|e| panic!("{e}: {sql}"))
    }

    /// The rows of a table or subquery.
    async fn count(&self, from: &str) -> i64 {
        self.scalar(&format!("SELECT COUNT(*) FROM {from}")).await
    }

    /// The groups a [`grouped`] query answers for `(from, to)` (no key reads as `""`).
    async fn groups(&self, sql: &str, (from, to): (i64, i64)) -> Groups {
        type Row = (Option<String>, i64, i64);
        let rows: Result<Vec<Row>, _> = match self {
            Ledger::Sqlite(pool) => {
                sqlx::query_as(AssertSqlSafe(sql))
                    .bind(from)
                    .bind(to)
                    .fetch_all(pool)
                    .await
            }
            Ledger::Postgres(pool) => {
                sqlx::query_as(AssertSqlSafe(sql))
                    .bind(from)
                    .bind(to)
                    .fetch_all(pool)
                    .await
            }
        };
        rows.unwrap_or_else(|e| panic!("{e}: {sql}"))
            .into_iter()
            .map(|(key, cost, requests)| (key.unwrap_or_default(), (usd(cost), requests)))
            .collect()
    }

    async fn close(self) {
        match self {
            Ledger::Sqlite(pool) => pool.close().await,
            Ledger::Postgres(pool) => pool.close().await,
        }
    }
}

/// Where a ledger lives: SQLite in the server's data directory, or a PostgreSQL
/// database.
struct Target {
    dir: PathBuf,
    pg: Option<PgDatabase>,
    /// Kept at the end (`AISPEND_BENCH_LEDGER`, `--pg-keep`).
    keep: bool,
}

impl Target {
    fn engine(&self) -> &'static str {
        if self.pg.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    }

    fn describe(&self) -> String {
        match &self.pg {
            Some(db) => format!("the PostgreSQL database {}", db.name),
            None => self.dir.display().to_string(),
        }
    }

    /// The release `aispend serve` on this ledger (sync scheduler off), `env` on top.
    fn start(&self, env: &[(&str, String)]) -> Server {
        let mut all = vec![("AISPEND_SYNC_SCHEDULER", "false".to_owned())];
        all.extend(
            self.pg
                .iter()
                .map(|db| ("AISPEND_DATABASE_URL", db.url.clone())),
        );
        all.extend_from_slice(env);
        common::start_server(&self.dir, &all)
    }

    /// The ledger the server created, opened beside it.
    async fn open(&self) -> Ledger {
        match &self.pg {
            Some(db) => Ledger::Postgres(
                PgPoolOptions::new()
                    .max_connections(2)
                    .connect(&db.url)
                    .await
                    .expect("the ledger database"),
            ),
            None => Ledger::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect(&format!(
                        "sqlite://{}",
                        self.dir.join("aispend.db").display()
                    ))
                    .await
                    .expect("the ledger opens"),
            ),
        }
    }

    /// Drops a PostgreSQL database unless it is kept (a SQLite file goes with its
    /// temporary directory).
    async fn finish(self) {
        if self.keep {
            println!("the ledger is kept in {}", self.describe());
        } else if let Some(db) = self.pg {
            db.drop_now().await;
        }
    }
}

/// The endpoints and end users the rollups keep apart up to a limit per project (the
/// server's `AISPEND_ROLLUP_DISTINCT_VALUES`); other attributes (the source) are kept
/// apart whatever their value.
const BOUNDED: [&str; 2] = ["endpoint", "end_user"];

/// The expression of a rollup's or sketch's key column over the event `e`: its time
/// unit's start for `time` (of `unit` microseconds); an endpoint or end user stored as
/// the value when the project admitted it, as the 'other' bucket when not, as '' when
/// the event has none (setting `join` to the join on `usage_rollup_values` it needs);
/// any other column as the event has it.
fn key_expr(column: &str, time: &str, unit: i64, join: &mut String) -> String {
    if column == time {
        format!("e.occurred_at / {unit} * {unit}")
    } else if BOUNDED.contains(&column) {
        *join = format!(
            " LEFT JOIN usage_rollup_values v ON v.project_id = e.project_id AND v.dimension = '{column}' AND v.value = e.{column}"
        );
        format!(
            "CASE WHEN e.{column} IS NULL THEN '' WHEN v.value IS NULL THEN '{}' ELSE e.{column} END",
            rollup::OTHER
        )
    } else {
        format!("e.{column}")
    }
}

/// `INSERT … SELECT … GROUP BY` filling one rollup from the events. Each measure is
/// stored wide (`money::Wide`): `x_hi` = the sum / 10^9, `x` = the sum % 10^9, which
/// is `Wide::split` for the non-negative sums here; a sum beyond `BIGINT` fails on both
/// engines rather than wrap. Times are non-negative, so `/` is the floor the server's
/// `div_euclid` is.
fn rollup_sql(r: &Rollup) -> String {
    let mut columns = vec![];
    let mut keys = vec![];
    let mut join = String::new();
    for (column, _) in r.key_columns() {
        columns.push(column.to_owned());
        keys.push(key_expr(column, r.time, r.unit, &mut join));
    }
    let group: Vec<String> = (1..=keys.len()).map(|i| i.to_string()).collect();
    let mut sums = vec![];
    for c in rollup::COLUMNS {
        let sum = format!("CAST(SUM({}) AS BIGINT)", common::rollup_measure(c, "e."));
        columns.push(format!("{c}_hi"));
        sums.push(format!("{sum} / {}", Wide::BASE));
        columns.push(c.to_owned());
        sums.push(format!("{sum} % {}", Wide::BASE));
    }
    format!(
        "INSERT INTO {} ({}) SELECT {}, {} FROM usage_events e{join} GROUP BY {}",
        r.table,
        columns.join(", "),
        keys.join(", "),
        sums.join(", "),
        group.join(", ")
    )
}

/// `INSERT … SELECT … GROUP BY` filling one latency sketch: each latency's bucket
/// (`migration::sketch::bucket`; a negative latency is bucket 0) comes from
/// `bench_latency_buckets`, a row per distinct latency of the events, joined on equality
/// (on PostgreSQL a hash join; a correlated lookup of the bounds per event took three
/// minutes a table at a million events); a row per chunk of `CHUNK` buckets, each
/// bucket's count in its column.
fn sketch_sql(s: &Sketch) -> String {
    use migration::sketch::{CHUNK, COUNT_COLUMNS, chunk_sums};
    // The key columns but the chunk, and the expression of each over the events.
    let mut names = vec![];
    let mut keys = vec![];
    let mut join = String::new();
    for (column, _) in s.key_columns() {
        if column == "chunk" {
            continue;
        }
        names.push(column.to_owned());
        keys.push(key_expr(column, s.time, s.unit, &mut join));
    }
    let inner: Vec<String> = keys
        .iter()
        .zip(&names)
        .map(|(k, n)| format!("{k} AS {n}"))
        .collect();
    let names = names.join(", ");
    format!(
        "INSERT INTO {table} ({names}, chunk, {counts}) \
         SELECT {names}, bucket / {CHUNK}, {sums} FROM ( \
         SELECT {inner}, m.bucket \
         FROM usage_events e JOIN bench_latency_buckets m ON m.latency_ms = e.latency_ms{join}) s \
         GROUP BY {names}, bucket / {CHUNK}",
        table = s.table,
        counts = COUNT_COLUMNS.join(", "),
        inner = inner.join(", "),
        sums = chunk_sums("bucket", "1").join(", ")
    )
}

/// `usage_rollup_values` for one dimension: per project, the first `limit` values in
/// the order of their first event (by id, the order the server's hook admits them in
/// when it inserts the events one change after another), and the 'other' row that
/// marks a project with more.
fn values_sql(column: &str, limit: usize) -> String {
    format!(
        "INSERT INTO usage_rollup_values (project_id, dimension, value) \
         SELECT project_id, '{column}', CASE WHEN n <= {limit} THEN value ELSE '{other}' END FROM ( \
         SELECT project_id, {column} AS value, ROW_NUMBER() OVER (PARTITION BY project_id ORDER BY MIN(id)) AS n \
         FROM usage_events WHERE {column} IS NOT NULL GROUP BY project_id, {column}) ranked \
         WHERE n <= {next}",
        other = rollup::OTHER,
        next = limit + 1
    )
}

/// Every table [`rebuild`] fills.
fn rebuilt_tables() -> Vec<&'static str> {
    let mut tables = vec!["usage_rollup_values"];
    tables.extend(rollup::ALL.iter().map(|r| r.table));
    tables.extend(rollup::SKETCHES.iter().map(|s| s.table));
    tables
}

/// Empties and refills every rollup of `rollup::ALL`, every latency sketch of
/// `rollup::SKETCHES` and `usage_rollup_values` from `usage_events`, keeping `limit`
/// endpoints and end users apart per project. The same SQL on both engines. Returns each statement's table,
/// rows and time.
async fn rebuild(ledger: &Ledger, limit: usize) -> Vec<(String, u64, Duration)> {
    for table in rebuilt_tables() {
        ledger.execute(&format!("DELETE FROM {table}")).await;
    }
    // Every event is in the rebuilt tables: none is left for the server's folder.
    ledger.execute("DELETE FROM usage_unfolded").await;
    ledger
        .execute("DROP TABLE IF EXISTS bench_sketch_bounds")
        .await;
    ledger
        .execute(
            "CREATE TABLE bench_sketch_bounds (hi BIGINT NOT NULL PRIMARY KEY, bucket BIGINT NOT NULL)",
        )
        .await;
    let bounds: Vec<String> = rollup::sketch_bounds()
        .iter()
        .enumerate()
        .map(|(bucket, hi)| format!("({hi}, {bucket})"))
        .collect();
    for chunk in bounds.chunks(500) {
        ledger
            .execute(&format!(
                "INSERT INTO bench_sketch_bounds (hi, bucket) VALUES {}",
                chunk.join(", ")
            ))
            .await;
    }
    // Each distinct latency's bucket: the first whose upper bound is not below it, one
    // seek per distinct value.
    ledger
        .execute("DROP TABLE IF EXISTS bench_latency_buckets")
        .await;
    ledger
        .execute(
            "CREATE TABLE bench_latency_buckets (latency_ms BIGINT NOT NULL PRIMARY KEY, bucket BIGINT NOT NULL)",
        )
        .await;
    ledger
        .execute(
            "INSERT INTO bench_latency_buckets (latency_ms, bucket) \
             SELECT l.latency_ms, (SELECT b.bucket FROM bench_sketch_bounds b WHERE b.hi >= l.latency_ms ORDER BY b.hi LIMIT 1) \
             FROM (SELECT DISTINCT latency_ms FROM usage_events WHERE latency_ms IS NOT NULL) l",
        )
        .await;
    ledger.execute("ANALYZE bench_latency_buckets").await;
    let mut statements: Vec<(String, String)> = BOUNDED
        .iter()
        .map(|c| (format!("usage_rollup_values ({c})"), values_sql(c, limit)))
        .collect();
    statements.extend(
        rollup::ALL
            .iter()
            .map(|r| (r.table.to_owned(), rollup_sql(r))),
    );
    statements.extend(
        rollup::SKETCHES
            .iter()
            .map(|s| (s.table.to_owned(), sketch_sql(s))),
    );
    let mut done = vec![];
    for (table, sql) in statements {
        let started = Instant::now();
        let rows = ledger.execute(&sql).await;
        done.push((table, rows, started.elapsed()));
    }
    ledger.execute("DROP TABLE bench_latency_buckets").await;
    ledger.execute("DROP TABLE bench_sketch_bounds").await;
    done
}

/// A `UsageInput` for [`check_rebuild`]: every measure (unit measures too), some
/// events without endpoint, user or latency, unpriced models, reported costs, times
/// over three days. The last project uses two endpoints and one user, so it stays
/// below the check's limit while the others overflow it.
fn check_event(rng: &mut StdRng, projects: &[String], now: i64, key: String) -> Value {
    let p = rng.random_range(0..projects.len());
    let (endpoints, users) = if p + 1 == projects.len() {
        (2, 1)
    } else {
        (7, 10)
    };
    let (provider, model) = common::MODELS[rng.random_range(0..common::MODELS.len())];
    let output = rng.random_range(0..3_000);
    let unit = |rng: &mut StdRng| {
        if rng.random_bool(0.2) {
            rng.random_range(1..500)
        } else {
            0
        }
    };
    let at = now - rng.random_range(0..3 * DAY);
    let mut e = json!({
        "projectId": projects[p],
        "provider": provider,
        "model": model,
        "inputTokens": rng.random_range(0..20_000),
        "outputTokens": output,
        "reasoningTokens": output / 3,
        "cacheReadTokens": rng.random_range(0..5_000),
        "cacheWriteTokens": unit(rng),
        "cacheWrite1hTokens": unit(rng),
        "audioInputTokens": unit(rng),
        "audioOutputTokens": unit(rng),
        "imageInputTokens": unit(rng),
        "imageOutputTokens": unit(rng),
        "imagesGenerated": unit(rng),
        "webSearchCalls": unit(rng),
        "videoSeconds": unit(rng),
        "requests": rng.random_range(1..4),
        "occurredAt": chrono::DateTime::from_timestamp_micros(at).expect("a time").to_rfc3339(),
        "idempotencyKey": key,
    });
    if rng.random_bool(0.8) {
        e["endpoint"] = json!(format!("endpoint-{}", rng.random_range(0..endpoints)));
    }
    if rng.random_bool(0.8) {
        e["user"] = json!(format!("user-{}", rng.random_range(0..users)));
    }
    if rng.random_bool(0.9) {
        e["latencyMs"] = json!(match rng.random_range(0..10) {
            0 => 0,
            1 => rng.random_range(1..20),
            _ => rng.random_range(20..3_000_000),
        });
    }
    if rng.random_bool(0.1) {
        e["reportedCostUsd"] = json!(format!("0.{:06}", rng.random_range(1..50_000)));
    }
    e
}

/// Checks [`rebuild`] against the server: a fresh small ledger on the same engine
/// (`admin`: PostgreSQL), filled by the server through `recordUsageBatch` (its rollup
/// hook writes the rollups, sketches and admitted values) with a limit of 3 endpoints
/// and end users per project, so values overflow into the 'other' bucket too; then,
/// the server stopped, its tables are copied aside, rebuilt from its events and
/// compared both ways (`EXCEPT`). Returns whether every table is equal and not empty.
async fn check_rebuild(client: &reqwest::Client, admin: Option<&str>) -> bool {
    const LIMIT: usize = 3;
    const BATCHES: usize = 6;
    const PER_BATCH: usize = 100;
    let temp = tempfile::tempdir().expect("a temporary directory");
    let target = Target {
        dir: temp.path().to_path_buf(),
        pg: match admin {
            Some(admin) => Some(PgDatabase::create(admin, "aispend_bench_check").await),
            None => None,
        },
        keep: false,
    };
    let server = target.start(&[("AISPEND_ROLLUP_DISTINCT_VALUES", LIMIT.to_string())]);
    let projects = common::create_projects(client, &server.url, &["c0", "c1", "c2"]).await;
    let mut rng = StdRng::seed_from_u64(11);
    let now = chrono::Utc::now().timestamp_micros();
    for batch in 0..BATCHES {
        let inputs: Vec<Value> = (0..PER_BATCH)
            .map(|i| check_event(&mut rng, &projects, now, format!("check-{batch}-{i}")))
            .collect();
        let r = gql(
            client,
            &server.url,
            "mutation($i: [UsageInput!]!) { recordUsageBatch(inputs: $i) { accepted } }",
            json!({"i": inputs}),
        )
        .await;
        assert_eq!(
            r["recordUsageBatch"]["accepted"].as_u64(),
            Some(PER_BATCH as u64),
            "the check's events are stored"
        );
    }
    let ledger = target.open().await;
    // The server folds its events into the rollups after their commit: compare once
    // it has folded all of them.
    let started = std::time::Instant::now();
    while ledger.scalar("SELECT COUNT(*) FROM usage_unfolded").await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the server folds its events within a minute"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(server);
    let tables = rebuilt_tables();
    for table in &tables {
        ledger
            .execute(&format!(
                "CREATE TABLE bench_server_{table} AS SELECT * FROM {table}"
            ))
            .await;
    }
    rebuild(&ledger, LIMIT).await;
    println!(
        "rebuild check: {} events stored by the server ({LIMIT} endpoints and users kept apart per project); rebuilt rows against the server's:",
        BATCHES * PER_BATCH
    );
    let mut equal = true;
    for table in &tables {
        let copy = format!("bench_server_{table}");
        let rebuilt = ledger.count(table).await;
        let written = ledger.count(&copy).await;
        let except = |a: &str, b: &str| format!("(SELECT * FROM {a} EXCEPT SELECT * FROM {b}) d");
        let missing = ledger.count(&except(&copy, table)).await;
        let extra = ledger.count(&except(table, &copy)).await;
        let same = missing == 0 && extra == 0 && rebuilt > 0;
        equal &= same;
        println!(
            "  {table:<30} {rebuilt:>6} rows, server {written:>6}; server rows not rebuilt {missing}, rebuilt rows not the server's {extra}{}",
            if same { "" } else { "  DIFFERENT" }
        );
    }
    let other = ledger
        .scalar(&format!(
            "SELECT COUNT(*) FROM usage_rollup_values WHERE value = '{}'",
            rollup::OTHER
        ))
        .await;
    println!("  overflowed (project, dimension) pairs: {other}");
    equal &= other > 0;
    ledger.close().await;
    target.finish().await;
    equal
}

/// The columns the loader writes (others keep their defaults).
const EVENT_COLUMNS: &str = "id, project_id, provider, model, endpoint, source, occurred_at, received_at, \
     input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, \
     requests, service_tier, latency_ms, cost_nanos, cost_source, end_user";

/// One bulk-loaded event; `project` indexes the projects, `model` the models,
/// `endpoint` and `user` name `endpoint-{i}` and `user-{i}`.
struct Event {
    project: usize,
    model: usize,
    endpoint: usize,
    at: i64,
    input: i64,
    output: i64,
    cache_read: i64,
    latency: i64,
    cost: Option<i64>,
    user: usize,
}

/// The bulk-loaded events, the same sequence on both engines (seeded).
struct Events {
    rng: StdRng,
    models: Vec<(&'static str, String)>,
    projects: usize,
}

impl Events {
    fn new(projects: usize) -> Events {
        Events {
            rng: StdRng::seed_from_u64(7),
            models: (0..60)
                .map(|i| (PROVIDERS[i % 8], format!("{}-model-{i}", PROVIDERS[i % 8])))
                .collect(),
            projects,
        }
    }

    /// The next event, drawn in the order the loader has drawn them since end users
    /// joined the load (2026-12-04), so the events are those of runs since then.
    fn next(&mut self) -> Event {
        let rng = &mut self.rng;
        let model = rng.random_range(0..self.models.len());
        let at = START + rng.random_range(0..90 * DAY);
        let priced = rng.random_range(0..100) != 0;
        let project = rng.random_range(0..self.projects);
        let endpoint = rng.random_range(0..40usize);
        let input = rng.random_range(0..4_000i64);
        let output = rng.random_range(0..1_000i64);
        let cache_read = rng.random_range(0..2_000i64);
        let latency = rng.random_range(100..5_000i64);
        let cost = priced.then(|| rng.random_range(1_000..50_000_000i64));
        let user = rng.random_range(0..200usize);
        Event {
            project,
            model,
            endpoint,
            at,
            input,
            output,
            cache_read,
            latency,
            cost,
            user,
        }
    }
}

/// Rows per SQLite `INSERT` (20 columns each: below the bind limit).
const ROWS_PER_INSERT: usize = 400;

impl Ledger {
    /// Writes `events`, numbered from `first_id`: on SQLite multi-row `INSERT`s in
    /// one transaction, on PostgreSQL one `COPY … FROM STDIN` (text format).
    async fn insert_events(
        &self,
        first_id: i64,
        events: &[Event],
        generator: &Events,
        projects: &[uuid::Uuid],
    ) {
        match self {
            Ledger::Sqlite(pool) => {
                let mut tx = pool.begin().await.expect("a transaction");
                for (c, chunk) in events.chunks(ROWS_PER_INSERT).enumerate() {
                    let first = first_id + (c * ROWS_PER_INSERT) as i64;
                    let mut qb = sqlx::QueryBuilder::new(format!(
                        "INSERT INTO usage_events ({EVENT_COLUMNS}) "
                    ));
                    qb.push_values(chunk.iter().enumerate(), |mut b, (k, e)| {
                        let (provider, model) = &generator.models[e.model];
                        b.push_bind(first + k as i64)
                            .push_bind(projects[e.project].as_bytes().to_vec())
                            .push_bind(*provider)
                            .push_bind(model.clone())
                            .push_bind(format!("endpoint-{}", e.endpoint))
                            .push_bind("API")
                            .push_bind(e.at)
                            .push_bind(e.at)
                            .push_bind(e.input)
                            .push_bind(e.output)
                            .push_bind(e.cache_read)
                            .push_bind(0i64)
                            .push_bind(0i64)
                            .push_bind(0i64)
                            .push_bind(1i64)
                            .push_bind("STANDARD")
                            .push_bind(e.latency)
                            .push_bind(e.cost)
                            .push_bind(if e.cost.is_some() {
                                "COMPUTED"
                            } else {
                                "UNPRICED"
                            })
                            .push_bind(format!("user-{}", e.user));
                    });
                    qb.build().execute(&mut *tx).await.expect("a bulk insert");
                }
                tx.commit().await.expect("a commit");
            }
            Ledger::Postgres(pool) => {
                let mut text = String::with_capacity(events.len() * 160);
                for (k, e) in events.iter().enumerate() {
                    let (provider, model) = &generator.models[e.model];
                    let cost = e.cost.map_or("\\N".to_owned(), |c| c.to_string());
                    let source = if e.cost.is_some() {
                        "COMPUTED"
                    } else {
                        "UNPRICED"
                    };
                    let _ = writeln!(
                        text,
                        "{id}\t{project}\t{provider}\t{model}\tendpoint-{endpoint}\tAPI\t{at}\t{at}\t{input}\t{output}\t{cache_read}\t0\t0\t0\t1\tSTANDARD\t{latency}\t{cost}\t{source}\tuser-{user}",
                        id = first_id + k as i64,
                        project = projects[e.project],
                        endpoint = e.endpoint,
                        at = e.at,
                        input = e.input,
                        output = e.output,
                        cache_read = e.cache_read,
                        latency = e.latency,
                        user = e.user,
                    );
                }
                let mut conn = pool.acquire().await.expect("a connection");
                let mut copy = conn
                    .copy_in_raw(&format!("COPY usage_events ({EVENT_COLUMNS}) FROM STDIN"))
                    .await
                    .expect("COPY FROM");
                copy.send(text.as_bytes()).await.expect("rows");
                copy.finish().await.expect("the copy");
            }
        }
    }
}

/// Every other analytic of issue 13 on the same ledger and window, timed, and where a
/// plain `GROUP BY` gives the same thing, checked against it (the check's own time is
/// printed as the baseline).
async fn others(
    client: &reqwest::Client,
    server: &Server,
    ledger: &Ledger,
    filter: &Value,
    window: (i64, i64),
    runs: usize,
) -> bool {
    let projects = gql(client, &server.url, "{ projects { id } }", json!({})).await;
    let project = projects["projects"][0]["id"].clone();
    let mut one_project = filter.clone();
    one_project["projects"] = json!([project]);
    let mut one_endpoint = filter.clone();
    one_endpoint["endpoints"] = json!(["endpoint-7"]);
    let range = json!({"from": filter["from"], "to": filter["to"]});
    // (name, query, filter, field of the groups' key, the GROUP BY that must agree)
    let graphql: [(&str, &str, &Value, &str, Option<String>); 13] = [
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
            Some(grouped("endpoint", "")),
        ),
        (
            "costBreakdown(USER)",
            "query($f: UsageFilter) { costBreakdown(filter: $f, groupBy: [USER]) { user totals { costUsd requests } } }",
            filter,
            "user",
            Some(grouped("end_user", "")),
        ),
        (
            "costBreakdown(SOURCE)",
            "query($f: UsageFilter) { costBreakdown(filter: $f, groupBy: [SOURCE]) { source totals { costUsd requests } } }",
            filter,
            "source",
            Some(grouped("source", "")),
        ),
        (
            "costSummary, one endpoint",
            "query($f: UsageFilter) { costBreakdown(filter: $f, groupBy: [PROVIDER]) { provider totals { costUsd requests } } }",
            &one_endpoint,
            "provider",
            Some(grouped("provider", " AND endpoint = 'endpoint-7'")),
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
            &range,
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
                let expected = ledger.groups(&sql, window).await;
                let raw_ms = t.elapsed().as_secs_f64() * 1e3;
                let served: Groups = last
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

/// Creates the projects through the server, then (the server stopped) bulk-loads
/// `events` events, rebuilds the rollups and analyzes the ledger.
async fn load(client: &reqwest::Client, target: &Target, events: usize) {
    let projects: Vec<uuid::Uuid> = {
        let server = target.start(&[]);
        let names: Vec<String> = (0..20).map(|i| format!("p{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        common::create_projects(client, &server.url, &names)
            .await
            .iter()
            .map(|id| uuid::Uuid::parse_str(id).expect("a uuid"))
            .collect()
    };
    let ledger = target.open().await;
    let postgres = matches!(ledger, Ledger::Postgres(_));
    if !postgres {
        ledger.execute("PRAGMA synchronous = OFF").await;
    }
    let mut generator = Events::new(projects.len());
    const BATCH: usize = 100_000;
    let started = Instant::now();
    let mut done = 0;
    while done < events {
        let batch: Vec<Event> = (0..BATCH.min(events - done))
            .map(|_| generator.next())
            .collect();
        ledger
            .insert_events(done as i64 + 1, &batch, &generator, &projects)
            .await;
        done += batch.len();
    }
    if postgres {
        // The server numbers its events from the identity sequence: past the loaded ids.
        ledger
            .execute(
                "SELECT setval(pg_get_serial_sequence('usage_events', 'id'), (SELECT MAX(id) FROM usage_events))",
            )
            .await;
    }
    let loaded = started.elapsed();
    println!(
        "loaded {events} events in {:.1} s ({:.0} rows/s)",
        loaded.as_secs_f64(),
        events as f64 / loaded.as_secs_f64()
    );
    // What the server keeps apart per project (its setting, else its default).
    let limit = std::env::var("AISPEND_ROLLUP_DISTINCT_VALUES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(rollup::DEFAULT_DISTINCT_VALUES);
    let started = Instant::now();
    for (table, rows, took) in rebuild(&ledger, limit).await {
        println!(
            "  {table:<36} {rows:>10} rows in {:>6.1} s",
            took.as_secs_f64()
        );
    }
    let rebuilt = started.elapsed();
    // PostgreSQL: VACUUM too, as autovacuum would soon (it would otherwise run during
    // the timed queries), which also gives index-only scans their visibility map.
    let analyze = if postgres {
        "VACUUM ANALYZE"
    } else {
        "ANALYZE"
    };
    let started = Instant::now();
    ledger.execute(analyze).await;
    println!(
        "rollups, sketches and values rebuilt in {:.1} s; {analyze} in {:.1} s",
        rebuilt.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    ledger.close().await;
}

/// Times the dashboard's requests ([`pages`]) with the command line's `--page-runs`
/// and `--page`.
async fn time_pages(client: &reqwest::Client, server: &Server) {
    pages::run(
        client,
        &server.url,
        arg("--page-runs", 3),
        common::arg_text("--page").as_deref(),
    )
    .await;
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if !common::is_bench_run() {
        return;
    }
    let events = arg("--events", 10_000_000);
    let runs = arg("--runs", 20);
    let raw_runs = arg("--raw-runs", 5).clamp(1, runs.max(1));
    let postgres = common::arg_text("--postgres");
    let temp = tempfile::tempdir().expect("a temporary directory");
    let client = reqwest::Client::new();
    let (target, reuse) = match &postgres {
        Some(admin) => {
            let keep = common::arg_text("--pg-keep");
            let (db, existed) = match &keep {
                Some(name) => PgDatabase::open_or_create(admin, name).await,
                None => (
                    PgDatabase::create(admin, "aispend_bench_analytics").await,
                    false,
                ),
            };
            let target = Target {
                dir: temp.path().to_path_buf(),
                pg: Some(db),
                keep: keep.is_some(),
            };
            (target, existed)
        }
        None => {
            let kept = std::env::var_os("AISPEND_BENCH_LEDGER").map(PathBuf::from);
            let dir = kept.clone().unwrap_or_else(|| temp.path().to_path_buf());
            std::fs::create_dir_all(&dir).expect("the ledger directory");
            let reuse = dir.join("aispend.db").exists();
            let target = Target {
                dir,
                pg: None,
                keep: kept.is_some(),
            };
            (target, reuse)
        }
    };
    println!("engine: {}", target.engine());
    if reuse {
        println!("reusing the ledger in {}", target.describe());
    } else {
        if !check_rebuild(&client, postgres.as_deref()).await {
            target.finish().await;
            panic!("the rebuilt rollups differ from the server's");
        }
        load(&client, &target, events).await;
    }
    // Loading alone (a kept ledger: two engines can load at once, then be timed one
    // after the other on a quiet machine).
    if std::env::args().any(|a| a == "--load-only") {
        target.finish().await;
        return;
    }
    if std::env::args().any(|a| a == "--pages-only") {
        let server = target.start(&[]);
        gql(&client, &server.url, "{ plugins { id } }", json!({})).await;
        time_pages(&client, &server).await;
        drop(server);
        target.finish().await;
        return;
    }
    let ledger = target.open().await;
    // 2. The server on that ledger, 30 days that do not start on a day boundary.
    // Inside the 90 loaded days, so that every day of the window has events.
    let from = START + 55 * DAY + 37 * 60_000_000;
    let to = from + 30 * DAY;
    let time = |us: i64| {
        chrono::DateTime::from_timestamp_micros(us)
            .expect("a time")
            .to_rfc3339()
    };
    let filter = json!({"from": time(from), "to": time(to)});
    let server = target.start(&[]);
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
        grouped("provider", ""),
        grouped("model", ""),
        grouped(&format!("CAST(occurred_at / {DAY} * {DAY} AS TEXT)"), ""),
    ];
    let mut raw_p50 = Vec::new();
    let mut raw_answers: Vec<Groups> = Vec::new();
    for sql in &raw {
        let mut times = Vec::new();
        let mut last = Groups::new();
        for _ in 0..raw_runs {
            let t = Instant::now();
            last = ledger.groups(sql, (from, to)).await;
            times.push(t.elapsed());
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
    let identical_others = others(
        &client,
        &server,
        &ledger,
        &filter,
        (from, to),
        arg("--other-runs", 5),
    )
    .await;
    // 4. The dashboard's own requests (issue 15).
    time_pages(&client, &server).await;
    drop(server);
    ledger.close().await;
    target.finish().await;
    assert!(
        identical.iter().all(|&x| x) && identical_others,
        "the server's answers differ from the raw GROUP BY"
    );
}
