//! The `aispend` binary as an operator runs it: first start, shutdown, and the other
//! commands. Each scenario runs on SQLite, and on PostgreSQL in its pass
//! (`AISPEND_TEST_POSTGRES_URL`).

mod common;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A loopback address that refuses connections (an unreachable provider in the worker
/// test): bound but never listening, reserved for as long as the socket lives.
fn refusing_address() -> (tokio::net::TcpSocket, std::net::SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let address = socket.local_addr().unwrap();
    (socket, address)
}

/// Which database a scenario runs on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A scenario's data directory and, on PostgreSQL, its database (dropped afterwards).
struct Env {
    dir: tempfile::TempDir,
    pg: Option<common::PgDatabase>,
}

impl Env {
    async fn new(backend: Backend) -> Env {
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(common::PgDatabase::create().await),
        };
        Env {
            dir: tempfile::tempdir().unwrap(),
            pg,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The binary with a clean environment: nothing `AISPEND_*` inherited from the shell
/// that runs the tests (`env_clear`), only what is set here.
fn aispend(env: &Env) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aispend"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AISPEND_DATA_DIR", env.path())
        .env("AISPEND_LISTEN", "127.0.0.1:0")
        .env("AISPEND_LOG", "info")
        .env("AISPEND_SYNC_RETRIES", "0")
        .env("AISPEND_SYNC_SCHEDULER_MS", "100")
        .env("AISPEND_JOBS_POLL_MS", "50");
    if let Some(pg) = &env.pg {
        cmd.env("AISPEND_DATABASE_URL", &pg.url);
    }
    cmd
}

/// A running `aispend serve`, with its output lines as they come.
struct Server {
    child: Child,
    stdout: mpsc::Receiver<String>,
    /// Kept (and so drained) for the whole run: a dropped reader would leave the
    /// server writing its log into a closed pipe.
    stderr: mpsc::Receiver<String>,
    /// stderr lines before the address line.
    early: Vec<String>,
    address: String,
}

fn lines(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn serve(env: &Env) -> Server {
    let mut cmd = aispend(env);
    cmd.arg("serve");
    start(cmd)
}

/// Starts a server command and waits for the address it logs.
fn start(mut cmd: Command) -> Server {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("aispend starts");
    let stdout = lines(child.stdout.take().unwrap());
    let stderr = lines(child.stderr.take().unwrap());
    let mut early = vec![];
    let address = loop {
        let line = stderr
            .recv_timeout(Duration::from_secs(60))
            .expect("the server logs its address");
        if let Some(rest) = line.split("address=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
        early.push(line);
    };
    Server {
        child,
        stdout,
        stderr,
        early,
        address,
    }
}

/// A failed assertion must not leave a server running on the machine.
impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Server {
    /// What the server wrote to the terminal before it was listening (a bootstrap
    /// token is printed to stderr then, before the address is logged), and anything
    /// on stdout so far.
    fn printed(&self) -> String {
        let mut out = self.early.clone();
        out.extend(self.stdout.try_iter());
        out.join("\n")
    }

    /// Sends SIGTERM and waits for a clean exit.
    fn terminate(mut self) {
        terminate_child(&mut self.child, "the server", &self.stderr);
    }

    async fn graphql(&self, token: &str, query: &str) -> Value {
        reqwest::Client::new()
            .post(format!("http://{}/graphql", self.address))
            .bearer_auth(token)
            .json(&json!({"query": query}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// How long a SIGTERM may take: in-flight requests and jobs are given up to 10 s to
/// finish, and a loaded test machine adds to that.
const STOP_WITHIN: Duration = Duration::from_secs(30);

/// Sends SIGTERM to a child and waits for a clean exit; a failure shows the child's
/// last log lines.
fn terminate_child(child: &mut Child, what: &str, log: &mpsc::Receiver<String>) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let sent = std::time::Instant::now();
    let mut tail = std::collections::VecDeque::new();
    let outcome = loop {
        tail.extend(log.try_iter());
        while tail.len() > 20 {
            tail.pop_front();
        }
        if let Some(exit) = child.try_wait().unwrap() {
            break Some(exit);
        }
        if sent.elapsed() > STOP_WITHIN {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    tail.extend(log.try_iter());
    let tail = Vec::from(tail);
    match outcome {
        Some(exit) => assert!(
            exit.success(),
            "a SIGTERM ends {what} cleanly, got {exit} after {:?}; its last lines: {tail:#?}",
            sent.elapsed()
        ),
        None => panic!(
            "{what} did not stop within {STOP_WITHIN:?} of SIGTERM; its last lines: {tail:#?}"
        ),
    }
}

fn token_in(output: &str) -> Option<String> {
    output
        .split_whitespace()
        .find(|w| w.starts_with("asp_"))
        .map(str::to_owned)
}

async fn a_first_start_prints_an_admin_token_once_and_sigterm_stops_cleanly(backend: Backend) {
    let dir = Env::new(backend).await;
    let first = serve(&dir);
    let token = token_in(&first.printed()).expect("a first start prints a token");
    let viewer = first.graphql(&token, "{ viewer { kind scopes } }").await;
    assert_eq!(
        viewer["data"]["viewer"],
        json!({"kind": "TOKEN", "scopes": ["ADMIN"]})
    );
    first.terminate();

    let second = serve(&dir);
    assert_eq!(
        token_in(&second.printed()),
        None,
        "the token is printed only on the first start"
    );
    let again = second.graphql(&token, "{ viewer { kind } }").await;
    assert_eq!(
        again["data"]["viewer"]["kind"], "TOKEN",
        "the printed token keeps working"
    );
    second.terminate();
}

const ADMIN: &str = "cli-worker-admin-0123456789";

/// `aispend serve` with a configured admin token and no sync scheduler.
fn serve_with_admin_token(env: &Env, unreachable: std::net::SocketAddr) -> Server {
    let mut cmd = aispend(env);
    cmd.env("AISPEND_ADMIN_TOKEN", ADMIN)
        .env("AISPEND_PLUGIN_ALLOW_HOSTS", unreachable.to_string())
        .env("AISPEND_SYNC_SCHEDULER", "false")
        .arg("serve");
    start(cmd)
}

async fn aispend_worker_runs_scheduled_syncs_without_http_and_stops_on_sigterm(backend: Backend) {
    let dir = Env::new(backend).await;
    // The server stores a credential (its own scheduler is off), then stops: what
    // follows is the worker's alone, with no server to share the queue with.
    let (_held, unreachable) = refusing_address();
    let server = serve_with_admin_token(&dir, unreachable);
    let added = server.graphql(ADMIN, &format!("mutation {{ addCredential(input: {{provider: \"openai\", label: \"w\", secret: \"sk-admin-0123456789abcdef\", baseUrl: \"http://{unreachable}\"}}) {{ id }} }}")).await;
    assert!(added["data"]["addCredential"]["id"].is_string(), "{added}");
    assert_eq!(
        server.graphql(ADMIN, "{ syncRuns { id } }").await["data"]["syncRuns"],
        json!([])
    );
    server.terminate();

    // A worker process (no HTTP) schedules and executes the credential's syncs.
    let mut worker = aispend(&dir)
        .env("AISPEND_PLUGIN_ALLOW_HOSTS", unreachable.to_string())
        .arg("worker")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("aispend worker starts");
    let log = lines(worker.stderr.take().unwrap());
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if let Ok(line) = log.recv_timeout(Duration::from_millis(200)) {
            let finished = line.contains("sync run finished");
            seen.push(line);
            if finished {
                break;
            }
        }
    }
    assert!(
        seen.iter().any(|l| l.contains("aispend worker is running")),
        "{seen:#?}"
    );
    assert!(
        !seen.iter().any(|l| l.contains("aispend is serving")),
        "a worker serves no HTTP"
    );
    assert!(
        seen.iter().any(|l| l.contains("sync run finished")),
        "{seen:#?}"
    );
    terminate_child(&mut worker, "the worker", &log);

    // A server started afterwards sees what the worker did: a scheduled run that
    // could not reach the provider (the closed port), after one attempt (retries are
    // 0 here).
    let server = serve_with_admin_token(&dir, unreachable);
    let runs = server
        .graphql(ADMIN, "{ syncRuns { trigger status errorKind attempts } }")
        .await;
    let runs = runs["data"]["syncRuns"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        runs.iter().any(|r| r["trigger"] == "SCHEDULED"
            && r["status"] == "FAILED"
            && r["errorKind"] == "UNAVAILABLE"
            && r["attempts"] == 1),
        "{runs:#?}"
    );
    server.terminate();
}

async fn no_token_is_printed_when_the_operator_configured_one(backend: Backend) {
    let dir = Env::new(backend).await;
    let mut cmd = aispend(&dir);
    cmd.env("AISPEND_ADMIN_TOKEN", "operator-secret")
        .arg("migrate");
    assert!(cmd.status().unwrap().success());
    let mut cmd = aispend(&dir);
    cmd.env("AISPEND_ADMIN_TOKEN", "operator-secret")
        .arg("serve");
    let server = start(cmd);
    assert_eq!(token_in(&server.printed()), None);
    let viewer = server
        .graphql("operator-secret", "{ viewer { kind } }")
        .await;
    assert_eq!(viewer["data"]["viewer"]["kind"], "OPERATOR");
    server.terminate();
}

async fn token_create_prints_a_token_with_the_scopes_asked_for(backend: Backend) {
    let dir = Env::new(backend).await;
    let out = aispend(&dir)
        .args(["token", "create", "--name", "grafana", "--scope", "read"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        token_in(&stdout).is_some(),
        "stdout holds the token: {stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("READ"));
    let missing = aispend(&dir)
        .args([
            "token",
            "create",
            "--name",
            "x",
            "--project",
            "0190c3d4-0000-7000-8000-000000000000",
        ])
        .output()
        .unwrap();
    assert!(
        !missing.status.success(),
        "a token for an unknown project is refused"
    );
}

async fn prices_import_reads_a_litellm_file_and_reports_counts(backend: Backend) {
    let dir = Env::new(backend).await;
    let file = dir.path().join("prices.json");
    std::fs::write(
        &file,
        json!({
            "sample_spec": {"input_cost_per_token": 0},
            "acme-large": {"litellm_provider": "acme", "mode": "chat", "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06}
        })
        .to_string(),
    )
    .unwrap();
    let run = || {
        aispend(&dir)
            .args(["prices", "import", "--format", "litellm"])
            .arg(&file)
            .output()
            .unwrap()
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        String::from_utf8_lossy(&first.stdout)
            .contains("imported 1, updated 0, unchanged 0, skipped 1")
    );
    let second = run();
    assert!(
        String::from_utf8_lossy(&second.stdout)
            .contains("imported 0, updated 0, unchanged 1, skipped 1")
    );
}

/// Offline: no database is opened.
#[tokio::test]
async fn prices_quote_prices_usages_offline_with_the_builtin_catalog() {
    let dir = Env::new(Backend::Sqlite).await;
    let file = dir.path().join("usages.jsonl");
    let lines = [
        json!({"provider": "openai", "model": "gpt-4o-2024-08-06", "at": "2025-03-01T12:00:00Z", "input": 1200, "cacheRead": 800, "output": 350}),
        json!({"provider": "openai", "model": "gpt-4o-audio-preview", "input": 1000, "audioInput": 500}),
        json!({"model": "bedrock/anthropic.claude-3-5-sonnet-20241022-v2:0", "input": 1_000_000}),
        json!({"model": "openrouter/anthropic/claude-sonnet-4.5", "input": 1_000_000, "serviceTier": "batch"}),
        json!({"model": "perplexity/sonar", "input": 1000, "output": 1000, "variant": "Low"}),
        json!({"model": "perplexity/sonar", "input": 1000, "output": 1000}),
    ];
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    std::fs::write(&file, text.join("\n")).unwrap();
    let out = aispend(&dir)
        .args(["prices", "quote"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), 6);
    assert_eq!(
        (&answers[0]["model"], &answers[0]["costUsd"]),
        (&json!("gpt-4o-2024-08-06"), &json!("0.0075"))
    );
    // An audio model is its own row, not gpt-4o's; that row has no audio rate, so the
    // audio leaves the usage unpriced and the quote says which rate is missing.
    assert_eq!(answers[1]["model"], "gpt-4o-audio-preview");
    assert_eq!(answers[1]["costUsd"], Value::Null);
    assert_eq!(answers[1]["missingRate"], "audio_input");
    assert_eq!(answers[2]["provider"], "bedrock");
    assert_eq!(answers[2]["costUsd"], "3");
    assert_eq!(answers[3]["provider"], "openrouter");
    assert_eq!(
        answers[3]["costUsd"], "3",
        "OpenRouter has no batch discount: batch bills the standard rate"
    );
    // Sonar's request fee at the `low` search context size: 2,000 x $1/M + $0.005. Without
    // a size the fee is unknown, so the usage is unpriced, naming the rate.
    assert_eq!(answers[4]["costUsd"], "0.007");
    assert_eq!(
        (&answers[5]["costUsd"], &answers[5]["missingRate"]),
        (&Value::Null, &json!("request"))
    );
    let bad = aispend(&dir)
        .args(["prices", "quote", "-"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(bad.status.success(), "empty input is no quotes");
}

/// `schema.graphql` at the repository root is what `aispend schema` prints: a renamed
/// field or type shows up in review as a change to that file. After changing the API,
/// regenerate it with `cargo run -p aispend -- schema > schema.graphql`.
#[tokio::test]
async fn the_committed_schema_is_what_aispend_schema_prints() {
    let dir = Env::new(Backend::Sqlite).await;
    let (ok, printed, stderr) = run({
        let mut cmd = aispend(&dir);
        cmd.env("AISPEND_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
            .arg("schema");
        cmd
    });
    assert!(ok, "no database is needed: {stderr}");
    assert!(
        printed.contains("costBreakdown(") && printed.contains("type Mutation"),
        "{printed}"
    );
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql"))
            .expect("schema.graphql at the repository root");
    if committed != printed {
        let line = committed
            .lines()
            .zip(printed.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(printed.lines().count()));
        panic!(
            "schema.graphql differs from `aispend schema` from line {}: regenerate it with \
             `cargo run -p aispend -- schema > schema.graphql` and review the change\n\
             committed: {:?}\nprinted:   {:?}",
            line + 1,
            committed.lines().nth(line),
            printed.lines().nth(line)
        );
    }
    assert!(
        !dir.path().join("aispend.db").exists(),
        "no database was opened"
    );
}

async fn migrate_is_repeatable_and_a_bad_database_url_is_a_clear_error(backend: Backend) {
    let dir = Env::new(backend).await;
    assert!(aispend(&dir).arg("migrate").status().unwrap().success());
    assert!(aispend(&dir).arg("migrate").status().unwrap().success());
    assert_eq!(
        dir.path().join("aispend.db").exists(),
        backend == Backend::Sqlite,
        "SQLite lives in the data directory by default; with a PostgreSQL URL there is none"
    );
    let bad = aispend(&dir)
        .env("AISPEND_DATABASE_URL", "mysql://user:hunter2@host/db")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("AISPEND_DATABASE_URL"), "{stderr}");
    assert!(
        !stderr.contains("hunter2"),
        "the URL's password is never printed"
    );
}

/// Runs a one-shot command to completion; (success, stdout, stderr).
fn run(mut cmd: Command) -> (bool, String, String) {
    let out = cmd.output().expect("aispend runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Opens every stored secret of the scenario's database with the keys `aispend`
/// would load (`env_key` and the key file); (credentials, webhook secrets, channel
/// secrets).
async fn open_every_secret(env: &Env, env_key: Option<&str>) -> (usize, usize, usize) {
    use aispend::domain::budget::secret;
    use aispend::domain::channel;
    use aispend::domain::ids::{BudgetId, ChannelId};
    use aispend::domain::keyring::{Keyring, Sealed};
    use aispend::entity::{budget, credential, notification_channel};
    use sea_orm::EntityTrait;
    let keyring = Keyring::load(env_key, env.path()).expect("the keys load");
    let url = match &env.pg {
        Some(pg) => pg.url.clone(),
        None => format!(
            "sqlite://{}?mode=ro",
            env.path().join("aispend.db").display()
        ),
    };
    let db = sea_orm::Database::connect(url)
        .await
        .expect("the database opens");
    let credentials = credential::Entity::find().all(&db).await.unwrap();
    for c in &credentials {
        let sealed = Sealed {
            bytes: c.secret_ciphertext.clone(),
            key_id: c.secret_key_id.clone(),
        };
        let plain = keyring.open(&sealed, c.id.as_bytes()).expect("opens");
        assert!(plain.starts_with("sk-admin-rotate-"), "{plain}");
    }
    let budgets = budget::Entity::find().all(&db).await.unwrap();
    let mut secrets = 0;
    for b in &budgets {
        if let Some(stored) = &b.webhook_secret {
            let plain = secret::open(&keyring, BudgetId(b.id), stored).expect("opens");
            assert!(plain.starts_with("rotate-webhook-secret-"), "{plain}");
            secrets += 1;
        }
    }
    let channels = notification_channel::Entity::find().all(&db).await.unwrap();
    for c in &channels {
        let stored = c
            .secret
            .as_deref()
            .expect("every channel here has a secret");
        let plain = channel::open(&keyring, ChannelId(c.id), stored).expect("opens");
        assert!(
            plain.starts_with("rotate-channel-secret-") || plain.contains("/rotate-slack/"),
            "{plain}"
        );
    }
    (credentials.len(), secrets, channels.len())
}

/// The number `aispend keys status` reports as still under another key.
fn outside(dir: &Env, env_key: &str) -> u64 {
    let mut cmd = aispend(dir);
    cmd.env("AISPEND_MASTER_KEY", env_key)
        .args(["keys", "status"]);
    let (ok, stdout, stderr) = run(cmd);
    assert!(ok, "{stderr}");
    stdout
        .lines()
        .find_map(|l| l.strip_suffix(" secrets under another key"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {stdout}"))
}

async fn keys_rotate_killed_half_way_finishes_on_a_second_run_and_the_old_key_can_go(
    backend: Backend,
) {
    let dir = Env::new(backend).await;
    // The first start creates master.key (the old key); secrets are stored under it.
    let (_held, unreachable) = refusing_address();
    let server = serve_with_admin_token(&dir, unreachable);
    const CREDENTIALS: usize = 120;
    for chunk in 0..CREDENTIALS / 20 {
        let mutations: String = (0..20)
            .map(|i| {
                let n = chunk * 20 + i;
                format!("c{n}: addCredential(input: {{provider: \"openai\", label: \"k{n}\", secret: \"sk-admin-rotate-{n:04}-abcdef\"}}) {{ id }} ")
            })
            .collect();
        let r = server
            .graphql(ADMIN, &format!("mutation {{ {mutations} }}"))
            .await;
        assert!(r.get("errors").is_none(), "{r:#}");
    }
    for n in 0..3 {
        let r = server
            .graphql(ADMIN, &format!("mutation {{ createBudget(input: {{name: \"b{n}\", amountUsd: \"10\", period: MONTHLY, thresholds: [50], webhookUrl: \"https://hooks.example.com/{n}\", webhookSecret: \"rotate-webhook-secret-{n:04}-0123456789\"}}) {{ id }} }}"))
            .await;
        assert!(r.get("errors").is_none(), "{r:#}");
    }
    // A WEBHOOK channel's signing key and a SLACK channel's URL are sealed too.
    let r = server
        .graphql(ADMIN, "mutation { w: createNotificationChannel(input: {name: \"hook\", kind: WEBHOOK, url: \"https://hooks.example.com/channel\", secret: \"rotate-channel-secret-0123456789\"}) { id } s: createNotificationChannel(input: {name: \"slack\", kind: SLACK, url: \"https://hooks.slack.com/services/rotate-slack/T0/secret\"}) { id } }")
        .await;
    assert!(r.get("errors").is_none(), "{r:#}");
    server.terminate();
    let total = (CREDENTIALS + 3 + 2) as u64;
    let new_key = "bmV3LW1hc3Rlci1rZXktZm9yLXJvdGF0aW9uLXRlc3Q="; // 32 bytes
    assert_eq!(outside(&dir, new_key), total);

    // Without the new key in the environment there is nothing to rotate to.
    let mut cmd = aispend(&dir);
    cmd.args(["keys", "rotate"]);
    let (ok, _, stderr) = run(cmd);
    assert!(!ok);
    assert!(stderr.contains("set AISPEND_MASTER_KEY"), "{stderr}");

    // One secret per transaction, paced: kill -9 once 20 are done.
    let mut child = aispend(&dir)
        .env("AISPEND_MASTER_KEY", new_key)
        .args(["keys", "rotate", "--batch", "1", "--pause-ms", "50"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("aispend keys rotate starts");
    let progress = lines(child.stderr.take().unwrap());
    loop {
        let line = progress
            .recv_timeout(Duration::from_secs(60))
            .expect("rotation reports progress");
        if line.starts_with("re-encrypted 20 of") {
            break;
        }
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let left = outside(&dir, new_key);
    assert!(
        left > 0 && left <= total - 20,
        "{left} of {total} left after the kill"
    );
    // Half-rotated: every secret still opens with both keys loaded.
    assert_eq!(
        open_every_secret(&dir, Some(new_key)).await,
        (CREDENTIALS, 3, 2)
    );

    // The second run finishes the job and replaces the key file with the new key.
    let mut cmd = aispend(&dir);
    cmd.env("AISPEND_MASTER_KEY", new_key)
        .args(["keys", "rotate", "--write-key-file"]);
    let (ok, stdout, stderr) = run(cmd);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("0 secrets left under another key"),
        "{stdout}"
    );
    assert_eq!(outside(&dir, new_key), 0);
    // The old key is gone: the key file alone (no AISPEND_MASTER_KEY) opens everything.
    assert_eq!(open_every_secret(&dir, None).await, (CREDENTIALS, 3, 2));
    let file = std::fs::read_to_string(dir.path().join("master.key")).unwrap();
    assert_eq!(file.trim(), new_key);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Postgres).await
                }
            )*
        }
    };
}

on_both!(
    a_first_start_prints_an_admin_token_once_and_sigterm_stops_cleanly,
    aispend_worker_runs_scheduled_syncs_without_http_and_stops_on_sigterm,
    no_token_is_printed_when_the_operator_configured_one,
    token_create_prints_a_token_with_the_scopes_asked_for,
    prices_import_reads_a_litellm_file_and_reports_counts,
    migrate_is_repeatable_and_a_bad_database_url_is_a_clear_error,
    keys_rotate_killed_half_way_finishes_on_a_second_run_and_the_old_key_can_go,
    prices_sync_fetches_a_loopback_source_and_fails_on_a_bad_one,
);

/// A tiny HTTP server on 127.0.0.1 answering every request with `body` (status 200)
/// until the test ends; returns its base URL.
fn serve_document(body: String) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut chunk = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&chunk[..n]),
                }
            }
            let status = if request.starts_with(b"GET /missing") {
                "404 Not Found"
            } else {
                "200 OK"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{address}")
}

async fn prices_sync_fetches_a_loopback_source_and_fails_on_a_bad_one(backend: Backend) {
    let dir = Env::new(backend).await;
    let base = serve_document(
        json!({
            "acme-synced": {"litellm_provider": "acme", "mode": "chat", "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06}
        })
        .to_string(),
    );
    let run = |sources: &str| {
        aispend(&dir)
            .env("AISPEND_PRICE_SOURCES", sources)
            .args(["prices", "sync"])
            .output()
            .unwrap()
    };
    let source = format!("litellm:{base}/map.json");
    let first = run(&source);
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "OK {base}/map.json: added 1, changed 0, removed 0, unchanged 0"
        )),
        "{stdout}"
    );
    let second = run(&source);
    assert!(
        String::from_utf8_lossy(&second.stdout)
            .contains("added 0, changed 0, removed 0, unchanged 1"),
        "{}",
        String::from_utf8_lossy(&second.stdout)
    );
    let bad = run(&format!("{base}/missing.json"));
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stdout).contains("FAILED"),
        "{}",
        String::from_utf8_lossy(&bad.stdout)
    );
    let none = aispend(&dir).args(["prices", "sync"]).output().unwrap();
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("AISPEND_PRICE_SOURCES"));
}
