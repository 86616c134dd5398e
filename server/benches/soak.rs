//! Soak benchmark (see BENCHMARKS.md): mixed traffic for a set time against real
//! `aispend serve` processes, then a check that the ledger holds exactly what was
//! acknowledged.
//!
//! SQLite: one server on a fresh file. With `--postgres URL` (a server where the
//! user may `CREATE DATABASE`): two servers on one fresh database, every kind of
//! traffic spread over both.
//!
//! Traffic, until the time is up:
//! - single `recordUsage` from `--clients` workers; ~5 % of the calls re-send an
//!   acknowledged body on purpose (the answer must say `duplicate`);
//! - `recordUsageBatch` of `--batch` new events plus 10 acknowledged ones re-sent
//!   (`accepted` and `duplicates` must match exactly);
//! - OTLP/JSON spans over `POST /v1/traces` (20 per request);
//! - `costSummary`, `costBreakdown(groupBy: [MODEL])`, `costTrend(granularity: HOUR)`
//!   over the last day, one after another;
//! - `GET /export/usage.csv` of the last minute, read to the end, every second;
//! - `--subscribers` `costUpdates` subscriptions (graphql-transport-ws) reading every
//!   update (sequences must increase, none may be closed by the server);
//! - a provider sync (`syncNow`, the bundled OpenAI plugin) every 15 s against a fake
//!   OpenAI admin API on 127.0.0.1, waited for until it ends.
//!
//! Then, from the database: every acknowledged idempotency key stored exactly once,
//! nothing stored that was not sent, every rollup table equal to a `GROUP BY` of
//! `usage_events`, every budget period counter equal to the sum of its events, the
//! synced provider reports not duplicated by re-runs. It prints throughput, p50/p99
//! latency and errors per kind, and each server's RSS (sampled every second from
//! `/proc/PID/status`): peak, at 1 minute and at the end. Exits 1 when a check fails.
//!
//! `cargo bench -p aispend --bench soak -- --minutes 10 [--postgres URL] [--clients 4]
//! [--batch 200] [--subscribers 8]`

mod common;

use aispend::config::DatabaseTarget;
use axum::extract::Request;
use chrono::{SecondsFormat, Utc};
use common::{Server, TOKEN, client, create_projects, event, reported_event, start_server};
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// The same master key for every server, so a credential added through one is read
/// by the other.
const MASTER_KEY: &str = "c29hay1iZW5jaC1tYXN0ZXIta2V5LTMyLWJ5dGVzISE=";
/// Acknowledged bodies and events kept for re-sending.
const RESEND_POOL: usize = 5_000;
/// 2026-03-01T00:00:00Z: the fake provider's first bucket.
const T0: i64 = 1_772_323_200;

// Traffic kinds, in report order.
const SINGLE: usize = 0;
const RESEND: usize = 1;
const BATCH: usize = 2;
const OTLP: usize = 3;
const SUMMARY: usize = 4;
const BREAKDOWN: usize = 5;
const TREND: usize = 6;
const EXPORT: usize = 7;
const SYNC: usize = 8;
const KINDS: [(&str, &str); 9] = [
    ("recordUsage", "events"),
    ("recordUsage re-sent", "duplicates"),
    ("recordUsageBatch", "new events"),
    ("OTLP /v1/traces", "spans"),
    ("costSummary", "queries"),
    ("costBreakdown", "queries"),
    ("costTrend", "queries"),
    ("export/usage.csv", "rows"),
    ("provider sync", "runs"),
];

/// Calls of one kind: successes with their latencies, errors, and the items
/// (events, rows, ...) the successes carried.
#[derive(Default)]
struct Kind {
    errors: AtomicU64,
    items: AtomicU64,
    micros: Mutex<Vec<u32>>,
    first_errors: Mutex<Vec<String>>,
}

impl Kind {
    fn ok(&self, started: Instant, items: u64) {
        let us = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
        self.micros.lock().expect("a lock").push(us);
        self.items.fetch_add(items, Ordering::Relaxed);
    }

    fn error(&self, message: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_errors.lock().expect("a lock");
        if first.len() < 3 {
            first.push(message.chars().take(300).collect());
        }
    }
}

const SENT: u8 = 1;
const ACKED: u8 = 2;

/// The keys of one kind of ingest, numbered: sent, and acknowledged.
#[derive(Default)]
struct Keys {
    next: AtomicU64,
    state: Mutex<Vec<u8>>,
}

impl Keys {
    fn take(&self, n: usize) -> std::ops::Range<u64> {
        let first = self.next.fetch_add(n as u64, Ordering::Relaxed);
        let end = first + n as u64;
        let mut state = self.state.lock().expect("a lock");
        if state.len() < end as usize {
            state.resize(end as usize, 0);
        }
        for i in first..end {
            state[i as usize] = SENT;
        }
        first..end
    }

    fn ack(&self, keys: std::ops::Range<u64>) {
        let mut state = self.state.lock().expect("a lock");
        for i in keys {
            state[i as usize] = ACKED;
        }
    }
}

struct Shared {
    client: reqwest::Client,
    /// `(graphql url, base url, address)` of each server.
    servers: Vec<(String, String, String)>,
    projects: Vec<String>,
    credential: String,
    deadline: tokio::time::Instant,
    kinds: [Kind; 9],
    single: Keys,
    batch: Keys,
    otlp: Keys,
    resend_bodies: Mutex<Vec<Vec<u8>>>,
    resend_events: Mutex<Vec<Value>>,
    failures: Mutex<Vec<String>>,
    next_server: AtomicUsize,
}

impl Shared {
    /// The next server, round robin.
    fn server(&self) -> &(String, String, String) {
        let i = self.next_server.fetch_add(1, Ordering::Relaxed);
        &self.servers[i % self.servers.len()]
    }

    /// Sleeps `d`, or until the time is up if that comes first.
    async fn pause(&self, d: Duration) {
        tokio::time::sleep_until(self.deadline.min(tokio::time::Instant::now() + d)).await;
    }

    fn running(&self) -> bool {
        tokio::time::Instant::now() < self.deadline
    }

    fn fail(&self, message: String) {
        eprintln!("CHECK FAILED: {message}");
        self.failures.lock().expect("a lock").push(message);
    }
}

fn keep<T>(pool: &Mutex<Vec<T>>, rng: &mut StdRng, item: T) {
    let mut pool = pool.lock().expect("a lock");
    if pool.len() < RESEND_POOL {
        pool.push(item);
    } else {
        let i = rng.random_range(0..pool.len());
        pool[i] = item;
    }
}

/// Posts a GraphQL body; the answer's `data`, or a message for any failure.
async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Result<Value, String> {
    let r = client
        .post(url)
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .timeout(Duration::from_secs(60))
        .body(body)
        .send()
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = r.status();
    let text = r.bytes().await.map_err(|e| format!("body: {e}"))?;
    let v: Value = serde_json::from_slice(&text)
        .map_err(|_| format!("{status}: {}", String::from_utf8_lossy(&text)))?;
    if let Some(e) = v.get("errors") {
        return Err(format!("{status}: {e}"));
    }
    Ok(v["data"].clone())
}

fn body(query: &str, variables: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"query": query, "variables": variables})).expect("JSON")
}

const RECORD: &str = "mutation($input: UsageInput!) { recordUsage(input: $input) { duplicate event { id costUsd } } }";
const RECORD_BATCH: &str = "mutation($inputs: [UsageInput!]!) { recordUsageBatch(inputs: $inputs) { accepted duplicates } }";

fn usage(rng: &mut StdRng, sh: &Shared, key: String) -> Value {
    let project = &sh.projects[rng.random_range(0..sh.projects.len())];
    if rng.random_bool(0.5) {
        event(rng, project, key)
    } else {
        reported_event(rng, project, key)
    }
}

async fn single_worker(sh: Arc<Shared>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    while sh.running() {
        let (url, ..) = sh.server();
        let resend = rng.random_bool(0.05).then(|| {
            let pool = sh.resend_bodies.lock().expect("a lock");
            (!pool.is_empty()).then(|| pool[rng.random_range(0..pool.len())].clone())
        });
        if let Some(Some(b)) = resend {
            let kind = &sh.kinds[RESEND];
            let t = Instant::now();
            match post(&sh.client, url, b).await {
                Ok(d) if d["recordUsage"]["duplicate"] == true => kind.ok(t, 1),
                Ok(d) => {
                    sh.fail(format!(
                        "an acknowledged body re-sent was not a duplicate: {d}"
                    ));
                    kind.error("not a duplicate".into());
                }
                Err(e) => kind.error(e),
            }
            continue;
        }
        let keys = sh.single.take(1);
        let b = body(
            RECORD,
            json!({"input": usage(&mut rng, &sh, format!("s-{}", keys.start))}),
        );
        let kind = &sh.kinds[SINGLE];
        let t = Instant::now();
        match post(&sh.client, url, b.clone()).await {
            Ok(d) if d["recordUsage"]["duplicate"] == false => {
                kind.ok(t, 1);
                sh.single.ack(keys);
                keep(&sh.resend_bodies, &mut rng, b);
            }
            Ok(d) => {
                sh.fail(format!("a new key was answered as a duplicate: {d}"));
                kind.error("unexpected duplicate".into());
            }
            Err(e) => kind.error(e),
        }
    }
}

async fn batch_worker(sh: Arc<Shared>, size: usize) {
    let mut rng = StdRng::seed_from_u64(1_000);
    while sh.running() {
        let (url, ..) = sh.server();
        let keys = sh.batch.take(size);
        let fresh: Vec<Value> = keys
            .clone()
            .map(|n| usage(&mut rng, &sh, format!("b-{n}")))
            .collect();
        let mut inputs = fresh.clone();
        {
            let pool = sh.resend_events.lock().expect("a lock");
            if pool.len() >= 10 {
                let start = rng.random_range(0..=pool.len() - 10);
                inputs.extend(pool[start..start + 10].iter().cloned());
            }
        }
        let resent = inputs.len() - fresh.len();
        let kind = &sh.kinds[BATCH];
        let t = Instant::now();
        match post(
            &sh.client,
            url,
            body(RECORD_BATCH, json!({"inputs": inputs})),
        )
        .await
        {
            Ok(d) => {
                let r = &d["recordUsageBatch"];
                if r["accepted"] == fresh.len() && r["duplicates"] == resent {
                    kind.ok(t, fresh.len() as u64);
                    sh.batch.ack(keys);
                    for e in fresh {
                        keep(&sh.resend_events, &mut rng, e);
                    }
                } else {
                    sh.fail(format!(
                        "a batch of {} new and {resent} re-sent events was answered {r}",
                        fresh.len()
                    ));
                    kind.error(format!("answered {r}"));
                }
            }
            Err(e) => kind.error(e),
        }
        sh.pause(Duration::from_millis(50)).await;
    }
}

fn attr(key: &str, value: Value) -> Value {
    json!({"key": key, "value": value})
}

async fn otlp_worker(sh: Arc<Shared>) {
    let mut rng = StdRng::seed_from_u64(2_000);
    while sh.running() {
        let (_, base, _) = sh.server();
        let keys = sh.otlp.take(20);
        let now = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let project = &sh.projects[rng.random_range(0..sh.projects.len())];
        let spans: Vec<Value> = keys
            .clone()
            .map(|n| {
                let (provider, model) = common::MODELS[rng.random_range(0..common::MODELS.len())];
                let latency = rng.random_range(100_000_000..5_000_000_000i64);
                json!({
                    "traceId": format!("{n:032x}"),
                    "spanId": format!("{n:016x}"),
                    "name": "chat",
                    "startTimeUnixNano": (now - latency - 1_000_000_000).to_string(),
                    "endTimeUnixNano": (now - 1_000_000_000).to_string(),
                    "attributes": [
                        attr("gen_ai.system", json!({"stringValue": provider})),
                        attr("gen_ai.request.model", json!({"stringValue": model})),
                        attr("gen_ai.usage.input_tokens", json!({"intValue": rng.random_range(50..20_000).to_string()})),
                        attr("gen_ai.usage.output_tokens", json!({"intValue": rng.random_range(10..2_000)})),
                        attr("user.id", json!({"stringValue": format!("user-{}", rng.random_range(0..500))})),
                    ]
                })
            })
            .collect();
        let request = json!({"resourceSpans": [{
            "resource": {"attributes": [
                attr("service.name", json!({"stringValue": common::ENDPOINTS[rng.random_range(0..common::ENDPOINTS.len())]})),
                attr("aispend.project_id", json!({"stringValue": project})),
            ]},
            "scopeSpans": [{"spans": spans}]
        }]});
        let kind = &sh.kinds[OTLP];
        let t = Instant::now();
        let answer = async {
            let r = sh
                .client
                .post(format!("{base}/v1/traces"))
                .bearer_auth(TOKEN)
                .json(&request)
                .timeout(Duration::from_secs(60))
                .send()
                .await
                .map_err(|e| format!("request: {e}"))?;
            let status = r.status();
            let text = r.text().await.map_err(|e| format!("body: {e}"))?;
            if !status.is_success() {
                return Err(format!("{status}: {text}"));
            }
            let v: Value = serde_json::from_str(&text).map_err(|_| text.clone())?;
            match v.get("partialSuccess") {
                None | Some(Value::Null) => Ok(()),
                Some(p) => Err(format!("partial success: {p}")),
            }
        }
        .await;
        match answer {
            Ok(()) => {
                kind.ok(t, keys.end - keys.start);
                sh.otlp.ack(keys);
            }
            Err(e) => kind.error(e),
        }
        sh.pause(Duration::from_millis(50)).await;
    }
}

async fn analytics_worker(sh: Arc<Shared>) {
    let queries = [
        (
            SUMMARY,
            "query($f: UsageFilter) { costSummary(filter: $f) { totals { costUsd requests } } }",
        ),
        (
            BREAKDOWN,
            "query($f: UsageFilter) { costBreakdown(filter: $f, groupBy: [MODEL]) { model totals { costUsd } } }",
        ),
        (
            TREND,
            "query($f: UsageFilter!) { costTrend(filter: $f, granularity: HOUR) { start totals { costUsd } } }",
        ),
    ];
    let mut i = 0;
    while sh.running() {
        let (kind, query) = queries[i % queries.len()];
        i += 1;
        let (url, ..) = sh.server();
        let now = Utc::now();
        let filter = json!({
            "from": (now - chrono::Duration::days(1)).to_rfc3339_opts(SecondsFormat::Secs, true),
            "to": now.to_rfc3339_opts(SecondsFormat::Secs, true),
        });
        let t = Instant::now();
        match post(&sh.client, url, body(query, json!({"f": filter}))).await {
            Ok(_) => sh.kinds[kind].ok(t, 1),
            Err(e) => sh.kinds[kind].error(e),
        }
    }
}

async fn export_worker(sh: Arc<Shared>) {
    while sh.running() {
        let (_, base, _) = sh.server();
        let from =
            (Utc::now() - chrono::Duration::minutes(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
        let kind = &sh.kinds[EXPORT];
        let t = Instant::now();
        let read = async {
            let r = sh
                .client
                .get(format!("{base}/export/usage.csv"))
                .query(&[("from", from.as_str())])
                .bearer_auth(TOKEN)
                .timeout(Duration::from_secs(120))
                .send()
                .await
                .map_err(|e| format!("request: {e}"))?;
            let status = r.status();
            if !status.is_success() {
                return Err(format!("{status}: {}", r.text().await.unwrap_or_default()));
            }
            let mut stream = r.bytes_stream();
            let (mut lines, mut first) = (0u64, true);
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| format!("body: {e}"))?;
                if first && !chunk.starts_with(b"id,occurred_at,") {
                    return Err("the CSV has no header".to_owned());
                }
                first = false;
                lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
            }
            Ok(lines.saturating_sub(1))
        }
        .await;
        match read {
            Ok(rows) => kind.ok(t, rows),
            Err(e) => kind.error(e),
        }
        sh.pause(Duration::from_secs(1)).await;
    }
}

const RUN: &str = "query($id: ID!) { syncRun(id: $id) { status errorMessage rowsInserted rowsUpdated rowsUnchanged } }";

async fn sync_worker(sh: Arc<Shared>) {
    while sh.running() {
        let (url, ..) = sh.server();
        let kind = &sh.kinds[SYNC];
        let t = Instant::now();
        let run = async {
            let d = post(
                &sh.client,
                url,
                body(
                    "mutation($c: ID!) { syncNow(credentialId: $c, kind: USAGE, from: \"2026-03-01T00:00:00Z\", to: \"2026-03-02T00:00:00Z\") { id } }",
                    json!({"c": sh.credential}),
                ),
            )
            .await?;
            let id = d["syncNow"]["id"].as_str().ok_or("no run id")?.to_owned();
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let d = post(&sh.client, url, body(RUN, json!({"id": id}))).await?;
                let r = &d["syncRun"];
                match r["status"].as_str() {
                    Some("SUCCEEDED") => return Ok(()),
                    Some("FAILED") => return Err(format!("the run failed: {r}")),
                    _ if t.elapsed() > Duration::from_secs(120) => {
                        return Err(format!("the run did not end in 2 minutes: {r}"));
                    }
                    _ => {}
                }
            }
        }
        .await;
        match run {
            Ok(()) => kind.ok(t, 1),
            Err(e) => kind.error(e),
        }
        sh.pause(Duration::from_secs(15)).await;
    }
}

#[derive(Default)]
struct SubscriberStats {
    updates: AtomicU64,
    events: AtomicU64,
    dropped: AtomicU64,
    out_of_order: AtomicU64,
    examples: Mutex<Vec<String>>,
}

const SUBSCRIPTION: &str = "subscription($f: UsageFilter) { costUpdates(filter: $f) { sequence changes eventCount deltaUsd today { costUsd } } }";

async fn subscriber(sh: Arc<Shared>, address: String, filter: Value, stats: Arc<SubscriberStats>) {
    let mut ws = common::subscribe(&address, SUBSCRIPTION, json!({"f": filter})).await;
    let mut last = i64::MIN;
    loop {
        let m = tokio::select! {
            m = ws.next() => m,
            _ = tokio::time::sleep_until(sh.deadline) => break,
        };
        match m {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap_or_default();
                if v["type"] != "next" {
                    eprintln!("a subscription ended: {t}");
                    stats.dropped.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                let u = &v["payload"]["data"]["costUpdates"];
                let seq = u["sequence"].as_i64().unwrap_or(i64::MIN);
                if seq <= last {
                    stats.out_of_order.fetch_add(1, Ordering::Relaxed);
                    let mut examples = stats.examples.lock().expect("a lock");
                    if examples.len() < 3 {
                        examples.push(format!("{seq} after {last} on {address}"));
                    }
                }
                last = seq;
                stats.updates.fetch_add(1, Ordering::Relaxed);
                stats
                    .events
                    .fetch_add(u["eventCount"].as_u64().unwrap_or(0), Ordering::Relaxed);
            }
            Some(Ok(Message::Close(frame))) => {
                eprintln!("a subscription was closed: {frame:?}");
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                eprintln!("a subscription failed: {e}");
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                break;
            }
            None => {
                eprintln!("a subscription's connection ended");
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
    }
}

/// RSS samples (seconds since start, KiB) of a process, every second until `stop`.
async fn sample_rss(pid: u32, stop: Arc<AtomicBool>) -> Vec<(f64, u64)> {
    let started = Instant::now();
    let mut samples = vec![];
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            break;
        };
        if let Some(kb) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
        {
            samples.push((started.elapsed().as_secs_f64(), kb));
        }
    }
    samples
}

/// A fake OpenAI admin API: completions usage of two models in one hourly bucket,
/// every other endpoint an empty page.
async fn fake_openai() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let address = listener.local_addr().expect("an address").to_string();
    let app = axum::Router::new().fallback(|request: Request| async move {
        let result = |model: &str, input: i64, output: i64, requests: i64| {
            json!({"object": "organization.usage.completions.result", "input_tokens": input,
                   "output_tokens": output, "input_cached_tokens": 0, "num_model_requests": requests,
                   "project_id": "proj_a", "api_key_id": null, "model": model, "batch": false,
                   "service_tier": "default"})
        };
        let page = if request.uri().path() == "/v1/organization/usage/completions" {
            json!({"object": "page", "data": [{"object": "bucket", "start_time": T0, "end_time": T0 + 3600,
                   "results": [result("gpt-4o-2024-08-06", 1200, 500, 5), result("gpt-4o-mini", 300, 20, 1)]}],
                   "has_more": false, "next_page": null})
        } else {
            json!({"object": "page", "data": [], "has_more": false, "next_page": null})
        };
        axum::Json(page)
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    address
}

async fn scalar(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .expect("a row");
    row.try_get_by_index::<i64>(0)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Every stored key against what was sent and acknowledged.
async fn check_keys(sh: &Shared, db: &DatabaseConnection) {
    let backend = db.get_database_backend();
    let counts = |k: &Keys| vec![0u8; k.state.lock().expect("a lock").len()];
    let (mut single, mut batch, mut otlp) =
        (counts(&sh.single), counts(&sh.batch), counts(&sh.otlp));
    let (mut last, mut stored, mut foreign) = (0i64, 0u64, 0u64);
    loop {
        let rows = db
            .query_all_raw(Statement::from_string(
                backend,
                format!("SELECT id, idempotency_key FROM usage_events WHERE id > {last} ORDER BY id LIMIT 20000"),
            ))
            .await
            .expect("reading keys");
        let Some(r) = rows.last() else { break };
        last = r.try_get_by_index(0).expect("an id");
        for r in &rows {
            stored += 1;
            let key: Option<String> = r.try_get_by_index(1).expect("a key");
            let key = key.unwrap_or_default();
            let slot = if let Some(n) = key.strip_prefix("s-") {
                n.parse::<usize>().ok().and_then(|n| single.get_mut(n))
            } else if let Some(n) = key.strip_prefix("b-") {
                n.parse::<usize>().ok().and_then(|n| batch.get_mut(n))
            } else if let Some(ids) = key.strip_prefix("otlp:") {
                ids.split(':')
                    .next()
                    .and_then(|t| usize::from_str_radix(t, 16).ok())
                    .and_then(|n| otlp.get_mut(n))
            } else {
                None
            };
            match slot {
                Some(c) => *c = c.saturating_add(1),
                None => {
                    foreign += 1;
                    if foreign <= 3 {
                        sh.fail(format!("stored, never sent: key {key:?}"));
                    }
                }
            }
        }
    }
    println!("stored events: {stored}");
    for (name, keys, counts) in [
        ("recordUsage", &sh.single, &single),
        ("recordUsageBatch", &sh.batch, &batch),
        ("OTLP", &sh.otlp, &otlp),
    ] {
        let state = keys.state.lock().expect("a lock");
        let (mut acked, mut lost, mut duplicated, mut unsent, mut unacked_stored, mut unacked) =
            (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
        for (s, c) in state.iter().zip(counts.iter()) {
            match *s {
                ACKED => acked += 1,
                SENT => unacked += 1,
                _ => {}
            }
            match (*s, *c) {
                (ACKED, 0) => lost += 1,
                (_, 2..) => duplicated += 1,
                (0, 1) => unsent += 1,
                (SENT, 1) => unacked_stored += 1,
                _ => {}
            }
        }
        println!(
            "{name}: {} keys sent, {acked} acknowledged; lost {lost}, stored more than once {duplicated}, stored but never sent {unsent}; of {unacked} not acknowledged (errors), {unacked_stored} stored",
            state.len()
        );
        if lost + duplicated + unsent > 0 {
            sh.fail(format!(
                "{name}: {lost} acknowledged keys lost, {duplicated} stored more than once, {unsent} stored but never sent"
            ));
        }
    }
    if foreign > 0 {
        sh.fail(format!("{foreign} stored events with keys never sent"));
    }
}

/// Every rollup table against the `GROUP BY` of the events, both ways (`EXCEPT`).
async fn check_rollups(sh: &Shared, db: &DatabaseConnection) {
    for r in aispend::domain::rollup::ALL {
        let mut keys = vec![];
        let mut rollup_keys = vec![];
        for (column, _) in r.key_columns() {
            rollup_keys.push(column.to_owned());
            keys.push(if column == r.time {
                format!("(occurred_at / {unit}) * {unit}", unit = r.unit)
            } else if r.attr == Some(column) {
                // Endpoint, end-user and source rollups: an absent value is stored
                // as '' (the soak stays far below the per-project limit of values
                // kept apart, so no event lands in the 'other' bucket).
                format!("COALESCE({column}, '')")
            } else {
                column.to_owned()
            });
        }
        let sums: Vec<String> = aispend::domain::rollup::COLUMNS
            .iter()
            .map(|c| common::rollup_measure(c, ""))
            .collect();
        let events = format!(
            "SELECT {}, {} FROM usage_events GROUP BY {}",
            keys.join(", "),
            sums.iter()
                .map(|s| format!("CAST(SUM({s}) AS BIGINT)"))
                .collect::<Vec<_>>()
                .join(", "),
            keys.join(", ")
        );
        let columns = aispend::domain::rollup::COLUMNS;
        // Each measure is `x_hi × 10^9 + x` (migration 000013); the soak's sums fit
        // a BIGINT.
        let rollup = format!(
            "SELECT {}, {} FROM {} WHERE {}",
            rollup_keys.join(", "),
            columns
                .iter()
                .map(|c| format!("{c}_hi * 1000000000 + {c}"))
                .collect::<Vec<_>>()
                .join(", "),
            r.table,
            columns
                .iter()
                .map(|c| format!("{c} <> 0 OR {c}_hi <> 0"))
                .collect::<Vec<_>>()
                .join(" OR ")
        );
        let rows = scalar(db, &format!("SELECT COUNT(*) FROM {}", r.table)).await;
        let missing = scalar(
            db,
            &format!("SELECT COUNT(*) FROM ({events} EXCEPT {rollup}) AS d"),
        )
        .await;
        let extra = scalar(
            db,
            &format!("SELECT COUNT(*) FROM ({rollup} EXCEPT {events}) AS d"),
        )
        .await;
        println!(
            "{}: {rows} rows; groups of the events not in it: {missing}; rows not a group of the events: {extra}",
            r.table
        );
        if missing + extra > 0 {
            sh.fail(format!(
                "{} differs from the GROUP BY of usage_events ({missing} groups missing or different, {extra} rows extra or different)",
                r.table
            ));
        }
    }
}

/// A budget's scope as SQL over `usage_events`.
struct BudgetSpec {
    name: String,
    scope: Value,
    sql: String,
}

fn budget_specs() -> Vec<BudgetSpec> {
    let periods = ["DAILY", "MONTHLY", "TOTAL", "WEEKLY"];
    let zones = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"];
    let mut out = vec![];
    for i in 0..12 {
        let (provider, model) = common::MODELS[i % common::MODELS.len()];
        let endpoint = common::ENDPOINTS[i % common::ENDPOINTS.len()];
        let project = ["web", "mobile", "batch-jobs"][i % 3];
        let (scope, sql) = match i % 5 {
            0 => (json!({}), "1 = 1".to_owned()),
            1 => (
                json!({"projects": [format!("@{project}")]}),
                format!("project_id = (SELECT id FROM projects WHERE name = '{project}')"),
            ),
            2 => (
                json!({"providers": [provider]}),
                format!("provider = '{provider}'"),
            ),
            3 => (
                json!({"endpoints": [endpoint]}),
                format!("endpoint = '{endpoint}'"),
            ),
            _ => (
                json!({"models": [model], "providers": [provider]}),
                format!("model = '{model}' AND provider = '{provider}'"),
            ),
        };
        out.push(BudgetSpec {
            name: format!("soak-{i}-{}-{}", periods[i % 4], zones[i % 4]),
            scope,
            sql,
        });
    }
    out
}

async fn create_budgets(client: &reqwest::Client, url: &str, projects: &[(String, String)]) {
    for (i, b) in budget_specs().into_iter().enumerate() {
        let mut scope = b.scope.clone();
        if let Some(p) = scope.get_mut("projects") {
            let name = p[0].as_str().unwrap_or_default().trim_start_matches('@');
            let id = &projects
                .iter()
                .find(|(n, _)| n == name)
                .expect("a project")
                .1;
            *p = json!([id]);
        }
        let period = ["DAILY", "MONTHLY", "TOTAL", "WEEKLY"][i % 4];
        let zone = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"][i % 4];
        common::gql_data(
            client,
            url,
            "mutation($i: CreateBudgetInput!) { createBudget(input: $i) { id } }",
            json!({"i": {"name": b.name, "amountUsd": "100000000", "scope": scope,
                         "period": period, "timezone": zone, "thresholds": [50, 80, 100]}}),
        )
        .await;
    }
}

/// Every budget period counter against the sum of its events.
async fn check_budgets(sh: &Shared, db: &DatabaseConnection) {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT b.name, p.period_start, p.period_end, p.spent_nanos FROM budget_periods p JOIN budgets b ON b.id = p.budget_id ORDER BY b.name, p.period_start",
        ))
        .await
        .expect("budget counters");
    let specs = budget_specs();
    let mut checked = 0;
    for r in &rows {
        let name: String = r.try_get_by_index(0).expect("a name");
        let start: i64 = r.try_get_by_index(1).expect("a start");
        let end: Option<i64> = r.try_get_by_index(2).expect("an end");
        let spent: i64 = r.try_get_by_index(3).expect("spent");
        let Some(spec) = specs.iter().find(|s| s.name == name) else {
            continue;
        };
        let range = match end {
            Some(end) => format!("AND occurred_at >= {start} AND occurred_at < {end}"),
            None => String::new(),
        };
        let sum = scalar(
            db,
            &format!(
                "SELECT CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT) FROM usage_events WHERE {} {range}",
                spec.sql
            ),
        )
        .await;
        checked += 1;
        if sum != spent {
            sh.fail(format!(
                "budget {name} period {start}: counter {spent} nano-USD, its events sum to {sum}"
            ));
        }
    }
    println!("budget period counters checked against their events' sums: {checked}");
    if checked == 0 {
        sh.fail("no budget period counter to check".into());
    }
}

fn report(sh: &Shared, seconds: f64) {
    println!(
        "{:<22} {:>10} {:>12} {:>12} {:>10} {:>10} {:>7}",
        "traffic", "calls", "items", "items/s", "p50 ms", "p99 ms", "errors"
    );
    for (i, (name, unit)) in KINDS.iter().enumerate() {
        let k = &sh.kinds[i];
        let mut l = k.micros.lock().expect("a lock").clone();
        l.sort_unstable();
        let (p50, p99) = if l.is_empty() {
            (f64::NAN, f64::NAN)
        } else {
            (
                f64::from(common::percentile(&l, 0.50)) / 1e3,
                f64::from(common::percentile(&l, 0.99)) / 1e3,
            )
        };
        let items = k.items.load(Ordering::Relaxed);
        println!(
            "{name:<22} {:>10} {:>12} {:>12.1} {p50:>10.2} {p99:>10.2} {:>7}   ({unit})",
            l.len(),
            items,
            items as f64 / seconds,
            k.errors.load(Ordering::Relaxed)
        );
        for e in k.first_errors.lock().expect("a lock").iter() {
            println!("    error: {e}");
        }
    }
}

#[tokio::main]
async fn main() {
    if !common::is_bench_run() {
        return;
    }
    let minutes: f64 = common::arg("--minutes", 10.0);
    let clients: usize = common::arg("--clients", 4);
    let batch: usize = common::arg("--batch", 200);
    let subscribers: usize = common::arg("--subscribers", 8);
    let postgres = common::arg_text("--postgres");

    let dir = tempfile::tempdir().expect("a temporary directory");
    let provider = fake_openai().await;
    let mut env = vec![
        ("AISPEND_MASTER_KEY", MASTER_KEY.to_owned()),
        ("AISPEND_PLUGIN_ALLOW_HOSTS", provider.clone()),
    ];
    let (target, pg) = match &postgres {
        Some(admin) => {
            let pg = common::PgDatabase::create(admin, "aispend_soak").await;
            env.push(("AISPEND_DATABASE_URL", pg.url.clone()));
            (DatabaseTarget::Postgres(pg.url.clone()), Some(pg))
        }
        None => (
            DatabaseTarget::Sqlite(dir.path().join("server-0").join("aispend.db")),
            None,
        ),
    };
    let mut servers: Vec<Server> = vec![start_server(&dir.path().join("server-0"), &env)];
    if postgres.is_some() {
        servers.push(start_server(&dir.path().join("server-1"), &env));
    }
    let engine = if postgres.is_some() {
        "PostgreSQL, two servers on one database"
    } else {
        "SQLite, one server"
    };
    let client = client();
    let url = servers[0].url.clone();
    let names = ["web", "mobile", "batch-jobs", "internal"];
    let projects = create_projects(&client, &url, &names).await;
    let named: Vec<(String, String)> = names
        .iter()
        .map(|n| n.to_string())
        .zip(projects.iter().cloned())
        .collect();
    create_budgets(&client, &url, &named).await;
    let credential = common::gql_data(
        &client,
        &url,
        "mutation($i: AddCredentialInput!) { addCredential(input: $i) { id } }",
        json!({"i": {"provider": "openai", "label": "soak", "secret": "sk-admin-0123456789abcdef", "baseUrl": format!("http://{provider}")}}),
    )
    .await["addCredential"]["id"]
        .as_str()
        .expect("a credential id")
        .to_owned();

    let duration = Duration::from_secs_f64(minutes * 60.0);
    let started = Instant::now();
    let sh = Arc::new(Shared {
        client: client.clone(),
        servers: servers
            .iter()
            .map(|s| (s.url.clone(), s.base(), s.address.clone()))
            .collect(),
        projects: projects.clone(),
        credential,
        deadline: tokio::time::Instant::now() + duration,
        kinds: Default::default(),
        single: Keys::default(),
        batch: Keys::default(),
        otlp: Keys::default(),
        resend_bodies: Mutex::new(vec![]),
        resend_events: Mutex::new(vec![]),
        failures: Mutex::new(vec![]),
        next_server: AtomicUsize::new(0),
    });
    println!(
        "soak: {engine}; {minutes} min; {clients} recordUsage clients, batches of {batch}, {subscribers} subscribers"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let samplers: Vec<_> = servers
        .iter()
        .map(|s| tokio::spawn(sample_rss(s.pid(), stop.clone())))
        .collect();
    let stats = Arc::new(SubscriberStats::default());
    let mut tasks = vec![];
    for i in 0..subscribers {
        let filter = match i % 3 {
            0 => json!({}),
            1 => json!({"projects": [projects[i % projects.len()]]}),
            _ => json!({"providers": [common::MODELS[i % common::MODELS.len()].0]}),
        };
        let address = sh.servers[i % sh.servers.len()].2.clone();
        tasks.push(tokio::spawn(subscriber(
            sh.clone(),
            address,
            filter,
            stats.clone(),
        )));
    }
    for i in 0..clients {
        tasks.push(tokio::spawn(single_worker(sh.clone(), i as u64)));
    }
    tasks.push(tokio::spawn(batch_worker(sh.clone(), batch)));
    tasks.push(tokio::spawn(otlp_worker(sh.clone())));
    tasks.push(tokio::spawn(analytics_worker(sh.clone())));
    tasks.push(tokio::spawn(export_worker(sh.clone())));
    tasks.push(tokio::spawn(sync_worker(sh.clone())));
    // Progress once a minute.
    let progress = {
        let sh = sh.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            tick.tick().await;
            while sh.running() {
                tick.tick().await;
                eprintln!(
                    "soak: {:.0} s: {} single, {} batched, {} OTLP events acknowledged",
                    started.elapsed().as_secs_f64(),
                    sh.kinds[SINGLE].items.load(Ordering::Relaxed),
                    sh.kinds[BATCH].items.load(Ordering::Relaxed),
                    sh.kinds[OTLP].items.load(Ordering::Relaxed),
                );
            }
        })
    };
    for t in tasks {
        t.await.expect("a traffic task");
    }
    progress.abort();
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut rss = vec![];
    for s in samplers {
        rss.push(s.await.expect("a sampler"));
    }

    println!("traffic ran {seconds:.1} s");
    report(&sh, seconds);
    println!(
        "costUpdates: {subscribers} subscribers, {} updates carrying {} events; {} closed early, {} out of order",
        stats.updates.load(Ordering::Relaxed),
        stats.events.load(Ordering::Relaxed),
        stats.dropped.load(Ordering::Relaxed),
        stats.out_of_order.load(Ordering::Relaxed)
    );
    if stats.dropped.load(Ordering::Relaxed) > 0 {
        sh.fail("a subscription was closed early".into());
    }
    let examples = stats.examples.lock().expect("a lock").clone();
    if !examples.is_empty() {
        // Reported, not failed: with two processes, a process delivers its own
        // changes at once and the other's when their NOTIFY arrives, so the
        // sequence one subscriber sees can step back (see BENCHMARKS.md).
        println!(
            "NOTE: costUpdates sequence stepped back {} times, e.g. {}",
            stats.out_of_order.load(Ordering::Relaxed),
            examples.join("; ")
        );
    }
    for (i, samples) in rss.iter().enumerate() {
        let peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
        let at_minute = samples
            .iter()
            .find(|s| s.0 >= 60.0)
            .or(samples.first())
            .map(|s| s.1)
            .unwrap_or(0);
        let end = samples.last().map(|s| s.1).unwrap_or(0);
        let half = samples
            .iter()
            .find(|s| s.0 >= seconds / 2.0)
            .map(|s| s.1)
            .unwrap_or(end);
        println!(
            "server {i} RSS (every 1 s, {} samples): peak {:.1} MiB; at 1 min {:.1} MiB; half way {:.1} MiB; at the end {:.1} MiB ({:+.1} % from 1 min)",
            samples.len(),
            peak as f64 / 1024.0,
            at_minute as f64 / 1024.0,
            half as f64 / 1024.0,
            end as f64 / 1024.0,
            100.0 * (end as f64 - at_minute as f64) / (at_minute.max(1) as f64)
        );
        if seconds >= 180.0 && end > 2 * at_minute {
            sh.fail(format!(
                "server {i}'s memory more than doubled after the first minute"
            ));
        }
    }

    let db = aispend::db::connect(&target).await.expect("the database");
    let check = Instant::now();
    check_keys(&sh, &db).await;
    check_rollups(&sh, &db).await;
    check_budgets(&sh, &db).await;
    let reports = scalar(&db, "SELECT COUNT(*) FROM provider_reports").await;
    println!("provider reports after every sync run: {reports} (the fake reports 2 rows)");
    if reports != 2 {
        sh.fail(format!(
            "{reports} provider reports, expected 2 (re-runs must not duplicate)"
        ));
    }
    println!("checks took {:.1} s", check.elapsed().as_secs_f64());
    let _ = db.close().await;
    drop(servers);
    if let Some(pg) = pg {
        pg.drop_now().await;
    }
    let failures = sh.failures.lock().expect("a lock").clone();
    if failures.is_empty() {
        println!("all checks passed");
    } else {
        println!("{} checks FAILED:", failures.len());
        for f in &failures {
            println!("  {f}");
        }
        std::process::exit(1);
    }
}
