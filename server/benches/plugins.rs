//! Plugin host benchmark: component load (cold compile and cached), instantiate-and-call
//! overhead, and parsing a 1,000-row OpenAI usage page inside the plugin against the
//! same parser compiled natively, measured in the same run.
//!
//! Run: `cargo bench -p aispend --bench plugins`. Results are recorded in BENCHMARKS.md.

use aispend::domain::credential::{CredentialMaterial, Secret};
use aispend::plugins::{
    self, BucketWidth, FetchKind, FetchQuery, Limits, PluginHost, PluginSettings, bundled,
};
use chrono::{TimeZone, Utc};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn usage_page(rows: usize) -> Vec<u8> {
    let results: Vec<serde_json::Value> = (0..rows)
        .map(|i| {
            serde_json::json!({
                "object": "organization.usage.completions.result",
                "input_tokens": 1000 + i, "output_tokens": 500, "input_cached_tokens": 200,
                "num_model_requests": 3, "project_id": format!("proj_{}", i % 7), "user_id": null,
                "api_key_id": format!("key_{}", i % 13), "model": "gpt-4o-2024-08-06", "batch": i % 2 == 0,
                "service_tier": null
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "object": "page",
        "data": [{"object": "bucket", "start_time": 1754006400, "end_time": 1754092800, "results": results}],
        "has_more": false, "next_page": null
    }))
    .expect("json")
}

/// A tiny HTTP server answering every request with `body` (one thread per connection).
fn serve(body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    let body = Arc::new(body);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let body = body.clone();
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 8192];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            });
        }
    });
    address.to_string()
}

/// Median of `n` timed runs of `f`.
async fn median<F, Fut>(n: usize, mut f: F) -> Duration
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f(i).await;
        times.push(t.elapsed());
    }
    times.sort();
    times[n / 2]
}

/// The component with an extra custom section: same code, another content hash, so the
/// host compiles it again.
fn variant(bytes: &[u8], i: usize) -> Vec<u8> {
    let name = format!("bench-{i}");
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name.as_bytes());
    let mut out = bytes.to_vec();
    out.push(0);
    out.push(section.len() as u8);
    out.extend(section);
    out
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` and nextest's listing
    // run this binary without it: there is no test here, so do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let openai = bundled::BUNDLED
        .iter()
        .find(|(id, _)| *id == "openai")
        .expect("the openai plugin")
        .1;
    println!(
        "plugin host benchmark (medians); openai component {} KiB",
        openai.len() / 1024
    );

    // 1. Load: cold (compile + instantiate + metadata) and cached (instantiate + metadata).
    let cold = median(5, |i| {
        let bytes = variant(openai, i);
        async move {
            let inspected = plugins::inspect_file(bytes).await.expect("loads");
            assert!(inspected.problem.is_none());
        }
    })
    .await;
    let cached_bytes = variant(openai, 1_000);
    plugins::inspect_file(cached_bytes.clone())
        .await
        .expect("loads");
    let cached = median(50, |_| {
        let bytes = cached_bytes.clone();
        async move {
            plugins::inspect_file(bytes).await.expect("loads");
        }
    })
    .await;
    println!("load, cold compile:               {:>10.2} ms", ms(cold));
    println!("load, cached (InstancePre):       {:>10.3} ms", ms(cached));

    // 2. Instantiate and call: a fresh store and instance per call, one row returned.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        format!("{}/aispend_fixture_misbehave.wasm", bundled::BUILD_DIR),
        dir.path().join("m.wasm"),
    )
    .expect("fixture");
    let host = PluginHost::new(&PluginSettings {
        dir: Some(dir.path().into()),
        without_bundled: true,
        ..Default::default()
    })
    .expect("host");
    let query = FetchQuery {
        start: Utc.with_ymd_and_hms(2025, 8, 1, 0, 0, 0).unwrap(),
        end: Utc.with_ymd_and_hms(2025, 8, 2, 0, 0, 0).unwrap(),
        bucket: BucketWidth::Day,
        cursor: None,
    };
    let ok = CredentialMaterial {
        secret: Secret::new("bench-secret"),
        base_url: None,
        options: vec![("mode".into(), "ok".into())],
    };
    host.fetch_page("misbehave", FetchKind::Usage, &ok, &query)
        .await
        .expect("warm");
    let call = median(500, |_| async {
        host.fetch_page("misbehave", FetchKind::Usage, &ok, &query)
            .await
            .expect("call");
    })
    .await;
    println!("instantiate + call (no HTTP):     {:>10.1} µs", us(call));

    // 3. Parsing a 1,000-row usage page: in the plugin (HTTP from 127.0.0.1 included,
    //    so an empty page's fetch is subtracted) against the same parser natively.
    let page = usage_page(1_000);
    let empty = usage_page(0);
    let full_addr = serve(page.clone());
    let empty_addr = serve(empty);
    let host = PluginHost::new(&PluginSettings {
        allow_hosts: vec![full_addr.clone(), empty_addr.clone()],
        limits: Limits::default(),
        ..Default::default()
    })
    .expect("host");
    let full = CredentialMaterial {
        secret: Secret::new("sk-bench"),
        base_url: Some(format!("http://{full_addr}")),
        options: vec![],
    };
    let none = CredentialMaterial {
        secret: Secret::new("sk-bench"),
        base_url: Some(format!("http://{empty_addr}")),
        options: vec![],
    };
    let rows = host
        .fetch_page("openai", FetchKind::Usage, &full, &query)
        .await
        .expect("page")
        .rows
        .len();
    assert_eq!(rows, 1_000);
    let in_plugin = median(30, |_| async {
        host.fetch_page("openai", FetchKind::Usage, &full, &query)
            .await
            .expect("page");
    })
    .await;
    let fetch_only = median(30, |_| async {
        host.fetch_page("openai", FetchKind::Usage, &none, &query)
            .await
            .expect("page");
    })
    .await;
    let native = median(30, |_| async {
        let (rows, _) =
            aispend_plugin_openai::parse_usage_page(std::hint::black_box(&page)).expect("parse");
        assert_eq!(rows.len(), 1_000);
    })
    .await;
    let plugin_parse = in_plugin.saturating_sub(fetch_only);
    println!(
        "1,000-row page, plugin fetch+parse:{:>9.2} ms ({} KiB of JSON)",
        ms(in_plugin),
        page.len() / 1024
    );
    println!(
        "empty page, plugin fetch:         {:>10.2} ms",
        ms(fetch_only)
    );
    println!(
        "1,000-row page, plugin parse:     {:>10.2} ms (difference of the two)",
        ms(plugin_parse)
    );
    println!("1,000-row page, native parse:     {:>10.2} ms", ms(native));
    println!(
        "ratio plugin/native parse:        {:>10.2}x",
        plugin_parse.as_secs_f64() / native.as_secs_f64()
    );
}
