//! Budgets and live-updates benchmark (see BENCHMARKS.md).
//!
//! Real `aispend serve` processes, each on a fresh SQLite file, measured in the same
//! run with the same workload:
//! 1. baseline: no budget, no subscriber (run first and again last; the mean is used);
//! 2. loaded: 100 active budgets (varied scopes, periods and time zones) and 50
//!    websocket subscribers (graphql-transport-ws, varied filters) reading every
//!    update.
//!
//! For each it prints the rate of single `recordUsage` calls from concurrent clients
//! and of `recordUsageBatch` (1,000 events per call), and the ratio loaded/baseline;
//! two more servers (budgets only, subscribers only) show where the cost goes. The
//! subscribers' clients run on the same machine, so on a small machine their reading
//! competes with the server for the same cores.
//! Then, on the loaded server, it measures the delay from a `recordUsage` call
//! returning to a subscriber receiving its update (p50, p99), one call at a time.
//!
//! `cargo bench -p aispend --bench budgets [-- --single N --clients C --batches B --latency L]`

mod common;

use common::{
    ENDPOINTS, MODELS, TOKEN, arg, gql, percentile, reported_event as event, start_server,
    subscribe,
};
use futures::StreamExt;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

struct Args {
    single: usize,
    clients: usize,
    batches: usize,
    latency: usize,
    budgets: usize,
    subscribers: usize,
}

fn args() -> Args {
    Args {
        single: arg("--single", 40_000),
        clients: arg("--clients", 32),
        batches: arg("--batches", 100),
        latency: arg("--latency", 2_000),
        budgets: arg("--budgets", 100),
        subscribers: arg("--subscribers", 50),
    }
}

const PERIODS: &[&str] = &["DAILY", "WEEKLY", "MONTHLY", "QUARTERLY", "TOTAL"];
const ZONES: &[&str] = &["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"];

async fn projects(client: &reqwest::Client, url: &str) -> Vec<String> {
    common::create_projects(
        client,
        url,
        &["web", "mobile", "batch-jobs", "internal", "latency"],
    )
    .await
}

async fn create_budgets(client: &reqwest::Client, url: &str, projects: &[String], n: usize) {
    for i in 0..n {
        let (provider, model) = MODELS[i % MODELS.len()];
        let project = &projects[i % 4];
        let scope = match i % 5 {
            0 => json!({}),
            1 => json!({"projects": [project]}),
            2 => json!({"projects": [project], "providers": [provider]}),
            3 => json!({"endpoints": [ENDPOINTS[i % ENDPOINTS.len()]]}),
            _ => json!({"models": [model]}),
        };
        gql(
            client,
            url,
            &json!({
                "query": "mutation($i: CreateBudgetInput!) { createBudget(input: $i) { id } }",
                "variables": {"i": {
                    "name": format!("budget-{i}"), "amountUsd": "1000000", "scope": scope,
                    "period": PERIODS[i % PERIODS.len()], "timezone": ZONES[i % ZONES.len()],
                    "thresholds": [50, 80, 100], "enforce": i % 7 == 0,
                }}
            }),
        )
        .await;
    }
}

const SUBSCRIPTION: &str = "subscription($f: UsageFilter) { costUpdates(filter: $f) { sequence eventCount deltaUsd today { costUsd } month { costUsd } } }";

/// Starts `n` subscribers with varied filters, each reading continuously; returns the
/// count of updates received and of subscribers whose stream ended early.
async fn subscribers(
    address: &str,
    projects: &[String],
    n: usize,
) -> (Arc<AtomicU64>, Arc<AtomicUsize>) {
    let received = Arc::new(AtomicU64::new(0));
    let ended = Arc::new(AtomicUsize::new(0));
    for i in 0..n {
        let (provider, model) = MODELS[i % MODELS.len()];
        let filter = match i % 5 {
            0 | 1 => json!({}),
            2 => json!({"projects": [projects[i % 4]]}),
            3 => json!({"providers": [provider]}),
            _ => json!({"models": [model], "projects": [projects[i % 4]]}),
        };
        let mut ws = subscribe(address, SUBSCRIPTION, json!({"f": filter})).await;
        let (received, ended) = (received.clone(), ended.clone());
        tokio::spawn(async move {
            while let Some(Ok(m)) = ws.next().await {
                match m {
                    Message::Text(_) => {
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                    Message::Close(frame) => {
                        eprintln!("a subscriber was closed: {frame:?}");
                        break;
                    }
                    _ => {}
                }
            }
            ended.fetch_add(1, Ordering::Relaxed);
        });
    }
    (received, ended)
}

struct Rates {
    single: f64,
    batched: f64,
}

async fn workload(
    client: &reqwest::Client,
    url: &str,
    projects: &[String],
    args: &Args,
    tag: &str,
) -> Rates {
    // Bodies are built before the clock starts: the server's work is what is measured.
    let single = Arc::new(
        (0..args.single)
            .map(|i| {
                let mut rng = StdRng::seed_from_u64(i as u64);
                serde_json::to_vec(&json!({
                    "query": "mutation($input: UsageInput!) { recordUsage(input: $input) { duplicate event { id costUsd } } }",
                    "variables": {"input": event(&mut rng, &projects[i % 4], format!("{tag}-s{i}"))}
                }))
                .expect("JSON")
            })
            .collect::<Vec<_>>(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..args.clients)
        .map(|_| {
            let (client, url, single, next) =
                (client.clone(), url.to_owned(), single.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = single.get(i) else { break };
                    let text = client
                        .post(&url)
                        .bearer_auth(TOKEN)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .expect("a response")
                        .bytes()
                        .await
                        .expect("a body");
                    assert!(
                        text.starts_with(b"{\"data\":{\"recordUsage\""),
                        "{}",
                        String::from_utf8_lossy(&text)
                    );
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("a worker");
    }
    let single_rate = args.single as f64 / started.elapsed().as_secs_f64();

    let mut rng = StdRng::seed_from_u64(7);
    let bodies: Vec<Vec<u8>> = (0..args.batches)
        .map(|b| {
            let inputs: Vec<Value> = (0..1000)
                .map(|i| event(&mut rng, &projects[i % 4], format!("{tag}-b{b}-{i}")))
                .collect();
            serde_json::to_vec(&json!({
                "query": "mutation($inputs: [UsageInput!]!) { recordUsageBatch(inputs: $inputs) { accepted } }",
                "variables": {"inputs": inputs}
            }))
            .expect("JSON")
        })
        .collect();
    let started = Instant::now();
    for body in &bodies {
        let r: Value = client
            .post(url)
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("a response")
            .json()
            .await
            .expect("JSON");
        assert_eq!(r["data"]["recordUsageBatch"]["accepted"], 1000, "{r}");
    }
    let batched_rate = (args.batches * 1000) as f64 / started.elapsed().as_secs_f64();
    Rates {
        single: single_rate,
        batched: batched_rate,
    }
}

#[tokio::main]
async fn main() {
    if !common::is_bench_run() {
        return;
    }
    let args = args();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let client = common::client();

    // 1. Baseline: no budget, no subscriber.
    let base = start_server(&dir.path().join("baseline"), &[]);
    let base_projects = projects(&client, &base.url).await;
    let baseline = workload(&client, &base.url, &base_projects, &args, "base").await;
    drop(base);

    // 2. Where the cost goes: budgets alone, subscribers alone (each a fresh server).
    let server = start_server(&dir.path().join("budgets-only"), &[]);
    let p = projects(&client, &server.url).await;
    create_budgets(&client, &server.url, &p, args.budgets).await;
    let budgets_only = workload(&client, &server.url, &p, &args, "budgets").await;
    drop(server);
    let server = start_server(&dir.path().join("subscribers-only"), &[]);
    let p = projects(&client, &server.url).await;
    let (only_received, only_ended) = subscribers(&server.address, &p, args.subscribers).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let subscribers_only = workload(&client, &server.url, &p, &args, "subs").await;
    let only_dropped = only_ended.load(Ordering::Relaxed);
    drop(server);

    // 3. Loaded: 100 budgets and 50 subscribers on a fresh server.
    let loaded_server = start_server(&dir.path().join("loaded"), &[]);
    let loaded_projects = projects(&client, &loaded_server.url).await;
    create_budgets(&client, &loaded_server.url, &loaded_projects, args.budgets).await;
    let (received, ended) =
        subscribers(&loaded_server.address, &loaded_projects, args.subscribers).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let loaded = workload(
        &client,
        &loaded_server.url,
        &loaded_projects,
        &args,
        "loaded",
    )
    .await;

    // The baseline again, last, on a fresh server: the machine drifts (other work,
    // caches), so the baseline is the mean of a run before and a run after.
    let again = start_server(&dir.path().join("baseline-again"), &[]);
    let again_projects = projects(&client, &again.url).await;
    let last = workload(&client, &again.url, &again_projects, &args, "again").await;
    drop(again);
    println!(
        "baseline (no budget, no subscriber), first and last run: single recordUsage ({} clients) {:.0} and {:.0} calls/s; recordUsageBatch {:.0} and {:.0} events/s",
        args.clients, baseline.single, last.single, baseline.batched, last.batched
    );
    let baseline = Rates {
        single: (baseline.single + last.single) / 2.0,
        batched: (baseline.batched + last.batched) / 2.0,
    };

    for (name, rates) in [
        (
            format!("{} budgets, no subscriber", args.budgets),
            &budgets_only,
        ),
        (
            format!("{} subscribers, no budget", args.subscribers),
            &subscribers_only,
        ),
        (
            format!(
                "{} budgets and {} subscribers",
                args.budgets, args.subscribers
            ),
            &loaded,
        ),
    ] {
        println!(
            "{name}: single recordUsage ({} clients) {:.0} calls/s = {:.2} x baseline {:.0}; recordUsageBatch (1,000 per call) {:.0} events/s = {:.2} x baseline {:.0}",
            args.clients,
            rates.single,
            rates.single / baseline.single,
            baseline.single,
            rates.batched,
            rates.batched / baseline.batched,
            baseline.batched
        );
    }
    println!(
        "subscribers-only run: {} updates received; {} of {} dropped",
        only_received.load(Ordering::Relaxed),
        only_dropped,
        args.subscribers
    );

    // 4. Delay from `recordUsage` returning to a subscriber receiving the update, on
    // the loaded server (its 50 subscribers still connected), one call at a time.
    let latency_project = loaded_projects[4].clone();
    let mut ws = subscribe(
        &loaded_server.address,
        "subscription($f: UsageFilter) { costUpdates(filter: $f) { events { idempotencyKey } today { costUsd } } }",
        json!({"f": {"projects": [latency_project]}}),
    )
    .await;
    let arrivals: Arc<Mutex<HashMap<String, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let seen = arrivals.clone();
    tokio::spawn(async move {
        while let Some(Ok(m)) = ws.next().await {
            let now = Instant::now();
            if let Message::Text(t) = m {
                let v: Value = serde_json::from_str(&t).expect("JSON");
                for e in v["payload"]["data"]["costUpdates"]["events"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                {
                    if let Some(k) = e["idempotencyKey"].as_str() {
                        seen.lock().expect("a lock").insert(k.to_owned(), now);
                    }
                }
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut rng = StdRng::seed_from_u64(99);
    let mut returned: Vec<(String, Instant)> = Vec::with_capacity(args.latency);
    for i in 0..args.latency {
        let key = format!("lat-{i}");
        let body = json!({
            "query": "mutation($input: UsageInput!) { recordUsage(input: $input) { duplicate } }",
            "variables": {"input": event(&mut rng, &latency_project, key.clone())}
        });
        gql(&client, &loaded_server.url, &body).await;
        returned.push((key, Instant::now()));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let arrivals = arrivals.lock().expect("a lock").clone();
    let mut delays: Vec<f64> = returned
        .iter()
        .filter_map(|(k, at)| {
            arrivals.get(k).map(|got| {
                if *got >= *at {
                    (*got - *at).as_secs_f64() * 1e3
                } else {
                    -((*at - *got).as_secs_f64() * 1e3)
                }
            })
        })
        .collect();
    delays.sort_by(|a, b| a.total_cmp(b));
    println!(
        "recordUsage returned -> subscriber received ({} calls, {} received; negative = the update arrived before the HTTP response was read): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        returned.len(),
        delays.len(),
        percentile(&delays, 0.50),
        percentile(&delays, 0.99),
        delays.last().copied().unwrap_or_default()
    );
    println!(
        "subscribers: {} updates received in all; {} of {} dropped",
        received.load(Ordering::Relaxed),
        ended.load(Ordering::Relaxed),
        args.subscribers
    );
}
