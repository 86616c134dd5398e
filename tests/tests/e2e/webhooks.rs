//! Alert webhooks: a receiver on loopback (allowed by the operator) that fails twice
//! and then succeeds; signatures checked the way a receiver would; backoff, attempts
//! and the destination policy.

use crate::budgets::{ALERTS, create_budget, spend};
use aispend_e2e::{Backend, TestApp, backend_tests, spawn_app, spawn_app_with};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "whsec-e2e-0123456789abcdef";

#[derive(Clone, Debug)]
struct Received {
    at: Instant,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Received>>>,
}

async fn hook(
    State((got, fail_first)): State<(Arc<Mutex<Vec<Received>>>, usize)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut got = got.lock().unwrap();
    got.push(Received {
        at: Instant::now(),
        headers,
        body,
    });
    if got.len() <= fail_first {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    }
}

impl Receiver {
    /// A webhook receiver on 127.0.0.1 (port 0) that answers 500 to the first
    /// `fail_first` requests and 204 after.
    async fn start(fail_first: usize) -> Receiver {
        let got = Arc::new(Mutex::new(vec![]));
        let app = axum::Router::new()
            .route("/hooks/aispend", axum::routing::post(hook))
            .with_state((got.clone(), fail_first));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { addr, got }
    }

    fn requests(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        let started = Instant::now();
        while self.requests().len() < n && started.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.requests()
    }
}

/// Verifies `X-Aispend-Signature` as the README tells receivers to: HMAC-SHA256 of
/// `"<t>.<body>"`, constant-time comparison, timestamp close to now.
fn verify(header: &str, body: &[u8]) -> i64 {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1 = hex::decode(value).ok(),
            _ => {}
        }
    }
    let (t, v1) = (t.expect("a timestamp"), v1.expect("a v1 signature"));
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&v1)
        .expect("the signature matches the body");
    let now = aispend_e2e::now().timestamp();
    assert!((now - t).abs() < 120, "the timestamp is current");
    t
}

/// The example payload in the README's Webhooks section.
fn readme_payload() -> Value {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let section = readme
        .split("### Webhooks")
        .nth(1)
        .expect("README.md has a Webhooks section");
    let block = section
        .split("```json\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the Webhooks section shows a JSON payload");
    serde_json::from_str(block).expect("the README's payload is JSON")
}

/// Every key path of a JSON value (arrays by their first element), sorted.
fn shape(v: &Value) -> Vec<String> {
    fn walk(v: &Value, at: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let path = format!("{at}.{k}");
                    out.push(path.clone());
                    walk(v, &path, out);
                }
            }
            Value::Array(a) => {
                if let Some(first) = a.first() {
                    walk(first, &format!("{at}[]"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = vec![];
    walk(v, "", &mut out);
    out.sort();
    out
}

/// Runs the README's Python `verify` (the block a receiver would copy) on a delivery,
/// with Python's clock set to the server's.
fn readme_python_verify(header: &str, body: &[u8]) -> bool {
    use std::io::Write;
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let snippet = readme
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README.md has a Python block");
    // The receiver's clock is the server's (the test clock), so the snippet's freshness
    // check compares like with like.
    let now = aispend_e2e::now().timestamp();
    let program = format!(
        "import time as _clock\n_clock.time = lambda: {now}.0\n{snippet}\nimport sys\nbody = sys.stdin.buffer.read()\nprint(verify(sys.argv[1].encode(), sys.argv[2], body))\n"
    );
    let mut child = std::process::Command::new("python3")
        .args(["-c", &program, SECRET, header])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body)
        .expect("writing the body");
    let out = child.wait_with_output().expect("python3 finishes");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    match String::from_utf8_lossy(&out.stdout).trim() {
        "True" => true,
        "False" => false,
        other => panic!("the README's verify printed {other}"),
    }
}

async fn alert_of(app: &TestApp, budget: &str) -> Value {
    let q = r#"query($f: AlertFilter) { alerts(filter: $f) { id threshold deliveryStatus deliveredAt
        deliveries { attempt statusCode error succeeded durationMs startedAt } } }"#;
    let r = app.admin(q, json!({"f": {"budgets": [budget]}})).await;
    let alerts = r.data()["alerts"].as_array().cloned().unwrap_or_default();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    alerts[0].clone()
}

async fn wait_for_status(app: &TestApp, budget: &str, status: &str) -> Value {
    let started = Instant::now();
    loop {
        let a = alert_of(app, budget).await;
        if a["deliveryStatus"] == status || started.elapsed() > Duration::from_secs(20) {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// After the alert's delivery status became final (`alert`, as the server reports
/// it): the receiver got exactly the attempts the server recorded. Nothing more can
/// arrive: an attempt is recorded before the status is set, and a delivery job that
/// runs again finds the status final and sends nothing.
fn nothing_more_will_arrive(alert: &Value, receiver: &Receiver) {
    assert!(
        ["DELIVERED", "FAILED"].contains(&alert["deliveryStatus"].as_str().unwrap_or("")),
        "{alert:#}"
    );
    assert_eq!(
        receiver.requests().len(),
        alert["deliveries"].as_array().map_or(0, Vec::len),
        "every request received was recorded as an attempt: {alert:#}"
    );
}

async fn a_failing_webhook_is_retried_with_backoff_and_every_delivery_is_signed(backend: Backend) {
    let receiver = Receiver::start(2).await;
    let allowed = receiver.addr.to_string();
    let app = spawn_app_with(backend, |s| s.plugin_allow_hosts = vec![allowed]).await;
    let project = app.create_project("checkout").await;
    let budget = create_budget(
        &app,
        json!({"name": "checkout daily", "amountUsd": "10", "period": "DAILY", "thresholds": [50],
               "scope": {"projects": [project]},
               "webhookUrl": format!("http://{}/hooks/aispend", receiver.addr), "webhookSecret": SECRET}),
    )
    .await;
    spend(&app, &project, "6", None).await;

    let got = receiver.wait_for(3, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 3, "two failures, then a success");
    let alert = wait_for_status(&app, &budget, "DELIVERED").await;
    assert_eq!(alert["deliveryStatus"], "DELIVERED");
    assert!(alert["deliveredAt"].is_string());
    let attempts: Vec<(i64, i64, bool)> = alert["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["attempt"].as_i64().unwrap(),
                d["statusCode"].as_i64().unwrap(),
                d["succeeded"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        vec![(1, 500, false), (2, 500, false), (3, 204, true)]
    );
    assert!(
        alert["deliveries"][0]["error"]
            .as_str()
            .unwrap()
            .contains("500")
    );

    // Every attempt is signed afresh over the exact body; the delivery id stays.
    for r in &got {
        let sig = r.headers["x-aispend-signature"].to_str().unwrap();
        verify(sig, &r.body);
        assert_eq!(
            r.headers["x-aispend-delivery"],
            alert["id"].as_str().unwrap()
        );
        assert_eq!(r.headers["content-type"], "application/json");
    }
    let tampered = format!("{} ", String::from_utf8_lossy(&got[0].body));
    let sig = got[0].headers["x-aispend-signature"].to_str().unwrap();
    let ok = std::panic::catch_unwind(|| verify(sig, tampered.as_bytes()));
    assert!(ok.is_err(), "a changed body fails verification");
    // The README's Python receiver agrees, byte for byte.
    assert!(readme_python_verify(sig, &got[0].body));
    assert!(!readme_python_verify(sig, tampered.as_bytes()));

    let body: Value = serde_json::from_slice(&got[2].body).unwrap();
    // The payload the README shows has exactly the fields (and nested fields) of a
    // real delivery.
    assert_eq!(
        shape(&readme_payload()),
        shape(&body),
        "README payload vs delivery"
    );
    assert_eq!(
        body["budget"],
        json!({"id": budget, "name": "checkout daily"})
    );
    assert_eq!(body["threshold"], 50);
    assert_eq!(body["spentUsd"], "6");
    assert_eq!(body["amountUsd"], "10");
    assert_eq!(body["percentUsed"], "60");
    assert_eq!(body["period"]["kind"], "DAILY");
    assert!(body["period"]["start"].is_string() && body["period"]["end"].is_string());
    let summary = body["summary"].as_str().unwrap();
    assert!(
        summary.contains("checkout daily") && summary.contains("50%"),
        "{summary}"
    );
    assert!(!summary.contains("http"), "no links in the summary");

    // Exponential backoff (300 ms base, up to 50% jitter): at least 300 ms, then at
    // least 600 ms. Only lower bounds: a loaded machine may add any delay.
    let first_wait = got[1].at - got[0].at;
    let second_wait = got[2].at - got[1].at;
    assert!(
        first_wait >= Duration::from_millis(300),
        "first retry after {first_wait:?}"
    );
    assert!(
        second_wait >= Duration::from_millis(600),
        "second retry after {second_wait:?}"
    );

    // Delivered means done: the job is finished, nothing more arrives.
    nothing_more_will_arrive(&alert, &receiver);
}

async fn attempts_are_capped(backend: Backend) {
    let receiver = Receiver::start(usize::MAX).await;
    let allowed = receiver.addr.to_string();
    let app = spawn_app_with(backend, |s| {
        s.plugin_allow_hosts = vec![allowed];
        s.alerts.webhook_retries = 2;
        s.alerts.webhook_backoff_ms = 100;
    })
    .await;
    let project = app.create_project("checkout").await;
    let budget = create_budget(
        &app,
        json!({"name": "b", "amountUsd": "1", "period": "DAILY", "thresholds": [100],
               "webhookUrl": format!("http://{}/hooks/aispend", receiver.addr), "webhookSecret": SECRET}),
    )
    .await;
    spend(&app, &project, "1", None).await;
    let alert = wait_for_status(&app, &budget, "FAILED").await;
    assert_eq!(alert["deliveryStatus"], "FAILED");
    assert_eq!(alert["deliveries"].as_array().unwrap().len(), 3);
    nothing_more_will_arrive(&alert, &receiver);
}

async fn a_private_destination_needs_the_operators_permission(backend: Backend) {
    let receiver = Receiver::start(0).await;
    let app = spawn_app(backend).await;
    let project = app.create_project("checkout").await;
    // A literal loopback address is refused when the budget is saved...
    let r = app
        .admin(
            crate::budgets::CREATE,
            json!({"i": {"name": "b", "amountUsd": "1", "period": "DAILY",
                         "webhookUrl": format!("http://{}/hooks/aispend", receiver.addr), "webhookSecret": SECRET}}),
        )
        .await;
    assert_eq!(r.code(), "INVALID_INPUT");
    assert_eq!(r.field().as_deref(), Some("input.webhookUrl"));
    assert!(
        r.errors()[0]["message"]
            .as_str()
            .unwrap()
            .contains("AISPEND_PLUGIN_ALLOW_HOSTS")
    );
    // ...and a name that resolves to one is refused when it is delivered.
    let budget = create_budget(
        &app,
        json!({"name": "b", "amountUsd": "1", "period": "DAILY", "thresholds": [100],
               "webhookUrl": format!("https://localhost:{}/hooks/aispend", receiver.addr.port()), "webhookSecret": SECRET}),
    )
    .await;
    spend(&app, &project, "1", None).await;
    let alert = wait_for_status(&app, &budget, "FAILED").await;
    assert_eq!(alert["deliveryStatus"], "FAILED");
    let deliveries = alert["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "a refused destination is not retried");
    assert_eq!(deliveries[0]["statusCode"], Value::Null);
    assert!(
        deliveries[0]["error"]
            .as_str()
            .unwrap()
            .contains("non-public address"),
        "{deliveries:?}"
    );
    assert!(receiver.requests().is_empty(), "nothing was sent");
    // Alerts list their delivery state.
    let r = app
        .admin(ALERTS, json!({"f": {"deliveryStatus": ["FAILED"]}}))
        .await;
    assert_eq!(r.data()["alerts"].as_array().unwrap().len(), 1);
}

backend_tests!(
    a_failing_webhook_is_retried_with_backoff_and_every_delivery_is_signed,
    attempts_are_capped,
    a_private_destination_needs_the_operators_permission,
);
