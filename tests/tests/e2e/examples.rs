//! The programs in `examples/` (issue 14 part 5), each run as a user would run it:
//! a subprocess with `AISPEND_URL` and `AISPEND_TOKEN` pointing at the real server.
//! Then GraphQL says exactly which events landed (tokens, model, provider, tier, cost).
//! The SDK response objects are built inside the examples; no provider is called.
//!
//! The environments come from `examples/setup` (a venv under target/examples-venv,
//! `npm ci` + `tsc` in examples/node), which `scripts/test` runs first. Without them
//! these tests fail, naming that command.

use aispend_e2e::{TestApp, db_tests, wait_until};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Longest an example may take (a Python interpreter importing pydantic models on a
/// busy machine is the slow one).
const RUN_LIMIT: Duration = Duration::from_secs(60);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

/// The examples' Python interpreter, or a failure naming the setup command.
fn python() -> PathBuf {
    let python = repo_root().join("target/examples-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: prepare the examples' environments with `examples/setup` (scripts/test runs it)",
        python.display()
    );
    python
}

/// A compiled TypeScript example, or a failure naming the setup command.
fn node_example(name: &str) -> PathBuf {
    let script = repo_root().join("examples/node/dist").join(name);
    assert!(
        script.exists(),
        "{} is missing: prepare the examples' environments with `examples/setup` (scripts/test runs it)",
        script.display()
    );
    script
}

fn python_example(name: &str) -> PathBuf {
    repo_root().join("examples/python").join(name)
}

/// `program script` with nothing of the test's environment but `PATH` (to find
/// `node`), the server's URL and the token.
fn command(app: &TestApp, token: &str, program: &Path, script: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    command
        .arg(script)
        .current_dir(repo_root())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AISPEND_URL", &app.base_url)
        .env("AISPEND_TOKEN", token)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// Runs an example to its end; asserts it exited 0 and returns what it printed.
async fn run(mut command: tokio::process::Command) -> String {
    let output = tokio::time::timeout(RUN_LIMIT, command.output())
        .await
        .expect("the example finishes within the limit")
        .expect("the example starts");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(0),
        "the example failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
}

/// A project and a token bound to it with the given scopes.
async fn project_and_token(app: &TestApp, scopes: &[&str]) -> (String, String) {
    let project = app.create_project("examples").await;
    let token = app.create_token(Some(&project), scopes).await;
    (project, token)
}

const EVENT_FIELDS: &str = "source provider model endpoint user serviceTier requests
  inputTokens cacheReadTokens cacheWriteTokens cacheWrite1hTokens outputTokens reasoningTokens
  costUsd costSource price { model }";

/// Every event of `project`, as the operator reads it, ordered by model.
async fn events(app: &TestApp, project: &str, extra: &str) -> Vec<Value> {
    let r = app
        .admin(
            &format!(
                "query($p: ID!) {{ usageEvents(filter: {{projects: [$p]}}, first: 50) {{ edges {{ node {{ {EVENT_FIELDS} {extra} }} }} }} }}"
            ),
            json!({"p": project}),
        )
        .await;
    let mut nodes: Vec<Value> = r.data()["usageEvents"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|edge| edge["node"].clone())
        .collect();
    nodes.sort_by_key(|n| n["model"].as_str().unwrap_or_default().to_owned());
    nodes
}

/// What both OpenAI examples (Python and TypeScript) record: a chat completion whose
/// prompt was mostly cached, and a Responses call with reasoning.
fn openai_expected(key_suffix: &str) -> Vec<Value> {
    vec![
        // 86 × $2.50 + 1,920 × $1.25 + 300 × $10 per million.
        json!({
            "source": "API", "provider": "openai", "model": "gpt-4o-2024-08-06",
            "endpoint": "summarise-cart", "user": null, "serviceTier": "STANDARD", "requests": 1,
            "inputTokens": 86, "cacheReadTokens": 1920, "cacheWriteTokens": 0,
            "cacheWrite1hTokens": 0, "outputTokens": 300, "reasoningTokens": 0,
            "costUsd": "0.005615", "costSource": "COMPUTED",
            "price": {"model": "gpt-4o-2024-08-06"},
            "idempotencyKey": format!("chatcmpl-example{key_suffix}-0001"),
        }),
        // 304 × $0.25 + 1,024 × $0.025 + 452 × $2 per million (the dated id priced as
        // gpt-5-mini).
        json!({
            "source": "API", "provider": "openai", "model": "gpt-5-mini-2025-08-07",
            "endpoint": "refund-check", "user": null, "serviceTier": "STANDARD", "requests": 1,
            "inputTokens": 304, "cacheReadTokens": 1024, "cacheWriteTokens": 0,
            "cacheWrite1hTokens": 0, "outputTokens": 452, "reasoningTokens": 384,
            "costUsd": "0.0010056", "costSource": "COMPUTED",
            "price": {"model": "gpt-5-mini"},
            "idempotencyKey": format!("resp_example{}_0001", key_suffix.replace('-', "_")),
        }),
    ]
}

async fn python_openai_example_records_chat_and_responses_usage(app: TestApp) {
    let (project, token) = project_and_token(&app, &["INGEST"]).await;
    let stdout = run(command(
        &app,
        &token,
        &python(),
        &python_example("openai_usage.py"),
    ))
    .await;
    assert!(
        stdout.contains("= $0.005615") && stdout.contains("= $0.0010056"),
        "{stdout}"
    );
    assert_eq!(
        events(&app, &project, "idempotencyKey").await,
        openai_expected("")
    );
}

async fn node_openai_example_records_chat_and_responses_usage(app: TestApp) {
    let (project, token) = project_and_token(&app, &["INGEST"]).await;
    let node = PathBuf::from("node");
    let stdout = run(command(
        &app,
        &token,
        &node,
        &node_example("openai_usage.js"),
    ))
    .await;
    assert!(
        stdout.contains("= $0.005615") && stdout.contains("= $0.0010056"),
        "{stdout}"
    );
    assert_eq!(
        events(&app, &project, "idempotencyKey").await,
        openai_expected("-ts")
    );
}

async fn python_anthropic_example_records_cache_writes_by_ttl(app: TestApp) {
    let (project, token) = project_and_token(&app, &["INGEST"]).await;
    let stdout = run(command(
        &app,
        &token,
        &python(),
        &python_example("anthropic_usage.py"),
    ))
    .await;
    assert!(stdout.contains("= $0.023025"), "{stdout}");
    // 50 × $3 + 10,000 × $0.30 + 500 × $3.75 (5 min) + 2,000 × $6 (1 h) + 400 × $15.
    assert_eq!(
        events(&app, &project, "idempotencyKey").await,
        vec![json!({
            "source": "API", "provider": "anthropic", "model": "claude-sonnet-4-5-20250929",
            "endpoint": "contract-qa", "user": null, "serviceTier": "STANDARD", "requests": 1,
            "inputTokens": 50, "cacheReadTokens": 10000, "cacheWriteTokens": 500,
            "cacheWrite1hTokens": 2000, "outputTokens": 400, "reasoningTokens": 120,
            "costUsd": "0.023025", "costSource": "COMPUTED",
            "price": {"model": "claude-sonnet-4-5"},
            "idempotencyKey": "msg_example_0001",
        })]
    );
}

async fn node_anthropic_example_records_a_batch_result_at_the_batch_rate(app: TestApp) {
    let (project, token) = project_and_token(&app, &["INGEST"]).await;
    let node = PathBuf::from("node");
    let stdout = run(command(
        &app,
        &token,
        &node,
        &node_example("anthropic_usage.js"),
    ))
    .await;
    assert!(stdout.contains("(BATCH)"), "{stdout}");
    // The usage says `service_tier: "batch"`: 900 × $0.50 + 4,000 × $0.05 + 600 × $2.50
    // per million, and 450 of the output tokens were thinking.
    assert_eq!(
        events(&app, &project, "idempotencyKey").await,
        vec![json!({
            "source": "API", "provider": "anthropic", "model": "claude-haiku-4-5-20251001",
            "endpoint": "ticket-triage", "user": null, "serviceTier": "BATCH", "requests": 1,
            "inputTokens": 900, "cacheReadTokens": 4000, "cacheWriteTokens": 0,
            "cacheWrite1hTokens": 0, "outputTokens": 600, "reasoningTokens": 450,
            "costUsd": "0.00215", "costSource": "COMPUTED",
            "price": {"model": "claude-haiku-4-5"},
            "idempotencyKey": "msg_example_ts_0001",
        })]
    );
}

/// `python -c ON_SERVER_CLOCK OFFSET_NS SCRIPT`: runs SCRIPT as `__main__` with
/// `time.time_ns` shifted by OFFSET_NS.
const ON_SERVER_CLOCK: &str = "import runpy, sys, time
offset = int(sys.argv[1])
system_time_ns = time.time_ns
time.time_ns = lambda: system_time_ns() + offset
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name='__main__')";

async fn python_opentelemetry_example_records_its_genai_spans(app: TestApp) {
    let (project, token) = project_and_token(&app, &["INGEST"]).await;
    // The spans are dated by the example's own clock, and the server refuses a span more
    // than a day ahead of its (test) clock. So the example runs on the server's clock:
    // a wrapper shifts Python's `time.time_ns` by the test clock's offset from the
    // system clock (the one place a test reads the system clock) before running it.
    let offset = aispend_e2e::now()
        .timestamp_nanos_opt()
        .expect("a 64-bit instant")
        - i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_nanos(),
        )
        .expect("a 64-bit instant");
    let mut example = command(&app, &token, &python(), Path::new("-c"));
    example
        .arg(ON_SERVER_CLOCK)
        .arg(offset.to_string())
        .arg(python_example("otel_spans.py"));
    let stdout = run(example).await;
    assert!(stdout.starts_with("sent 3 spans"), "{stdout}");
    // Two GenAI spans became events (the plain parent span did not), their endpoint the
    // service name and their input net of the cached part.
    let events = events(&app, &project, "").await;
    assert_eq!(
        events,
        vec![
            // 1,000 × $1 + 2,000 × $1.25 + 220 × $5 per million.
            json!({
                "source": "OTLP", "provider": "anthropic", "model": "claude-haiku-4-5",
                "endpoint": "support-bot", "user": "customer-42", "serviceTier": "STANDARD",
                "requests": 1, "inputTokens": 1000, "cacheReadTokens": 0,
                "cacheWriteTokens": 2000, "cacheWrite1hTokens": 0, "outputTokens": 220,
                "reasoningTokens": 0, "costUsd": "0.0046", "costSource": "COMPUTED",
                "price": {"model": "claude-haiku-4-5"},
            }),
            // 400 × $2.50 + 800 × $1.25 + 150 × $10 per million.
            json!({
                "source": "OTLP", "provider": "openai", "model": "gpt-4o-2024-08-06",
                "endpoint": "support-bot", "user": null, "serviceTier": "STANDARD",
                "requests": 1, "inputTokens": 400, "cacheReadTokens": 800,
                "cacheWriteTokens": 0, "cacheWrite1hTokens": 0, "outputTokens": 150,
                "reasoningTokens": 0, "costUsd": "0.0035", "costSource": "COMPUTED",
                "price": {"model": "gpt-4o-2024-08-06"},
            }),
        ]
    );
}

async fn node_cost_updates_example_follows_what_is_recorded(app: TestApp) {
    let (project, token) = project_and_token(&app, &["READ"]).await;
    let mut follower = command(
        &app,
        &token,
        Path::new("node"),
        &node_example("cost_updates.js"),
    );
    follower
        .env("AISPEND_EXIT_AFTER", "2")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = follower.spawn().expect("the example starts");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut next_line = async || {
        tokio::time::timeout(RUN_LIMIT, lines.next_line())
            .await
            .expect("the example prints within the limit")
            .expect("its stdout reads")
            .unwrap_or_default()
    };
    assert_eq!(
        next_line().await,
        format!("following costUpdates on {}", app.base_url)
    );
    // Once its subscription is live, everything recorded from then on reaches it.
    let live = app.state.live.clone();
    wait_until("the example's costUpdates subscription", RUN_LIMIT, || {
        let live = live.clone();
        async move { live.cost_subscribers() >= 1 }
    })
    .await;
    // Each event, then the line the example prints for it (with the project's running
    // totals): 1,000 × $2.50 + 200 × $10 = $0.0045, then 2,000 × $1 + 100 × $5 = $0.0025.
    for (provider, model, input, output, endpoint, line) in [
        (
            "openai",
            "gpt-4o-2024-08-06",
            1000,
            200,
            "chat",
            "ingested openai/gpt-4o-2024-08-06 [chat] $0.0045; today $0.0045, this month $0.0045",
        ),
        (
            "anthropic",
            "claude-haiku-4-5",
            2000,
            100,
            "triage",
            "ingested anthropic/claude-haiku-4-5 [triage] $0.0025; today $0.007, this month $0.007",
        ),
    ] {
        let recorded = app
            .record(json!({
                "projectId": project, "provider": provider, "model": model,
                "inputTokens": input, "outputTokens": output, "endpoint": endpoint,
            }))
            .await;
        assert_eq!(recorded["duplicate"], json!(false), "{recorded}");
        assert_eq!(next_line().await, line);
    }
    // AISPEND_EXIT_AFTER=2: it stops by itself, successfully.
    let status = tokio::time::timeout(RUN_LIMIT, child.wait())
        .await
        .expect("the example stops after two events")
        .expect("the example runs");
    assert!(status.success(), "{status}");
}

db_tests!(
    python_openai_example_records_chat_and_responses_usage,
    node_openai_example_records_chat_and_responses_usage,
    python_anthropic_example_records_cache_writes_by_ttl,
    node_anthropic_example_records_a_batch_result_at_the_batch_rate,
    python_opentelemetry_example_records_its_genai_spans,
    node_cost_updates_example_follows_what_is_recorded,
);
