//! The `aispend` binary as an operator runs it: first start, shutdown, and the other
//! commands.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn aispend(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aispend"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AISPEND_DATA_DIR", data_dir)
        .env("AISPEND_LISTEN", "127.0.0.1:0")
        .env("AISPEND_LOG", "info")
        // A closed loopback port stands for an unreachable provider (worker test).
        .env("AISPEND_PLUGIN_ALLOW_HOSTS", "127.0.0.1:9")
        .env("AISPEND_SYNC_RETRIES", "0")
        .env("AISPEND_SYNC_SCHEDULER_MS", "100")
        .env("AISPEND_JOBS_POLL_MS", "50");
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

fn serve(data_dir: &Path) -> Server {
    let mut cmd = aispend(data_dir);
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

#[tokio::test]
async fn a_first_start_prints_an_admin_token_once_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let first = serve(dir.path());
    let token = token_in(&first.printed()).expect("a first start prints a token");
    let viewer = first.graphql(&token, "{ viewer { kind scopes } }").await;
    assert_eq!(
        viewer["data"]["viewer"],
        json!({"kind": "TOKEN", "scopes": ["ADMIN"]})
    );
    first.terminate();

    let second = serve(dir.path());
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
fn serve_with_admin_token(data_dir: &Path) -> Server {
    let mut cmd = aispend(data_dir);
    cmd.env("AISPEND_ADMIN_TOKEN", ADMIN)
        .env("AISPEND_SYNC_SCHEDULER", "false")
        .arg("serve");
    start(cmd)
}

#[tokio::test]
async fn aispend_worker_runs_scheduled_syncs_without_http_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // The server stores a credential (its own scheduler is off), then stops: what
    // follows is the worker's alone, with no server to share the queue with.
    let server = serve_with_admin_token(dir.path());
    let added = server.graphql(ADMIN, "mutation { addCredential(input: {provider: \"openai\", label: \"w\", secret: \"sk-admin-0123456789abcdef\", baseUrl: \"http://127.0.0.1:9\"}) { id } }").await;
    assert!(added["data"]["addCredential"]["id"].is_string(), "{added}");
    assert_eq!(
        server.graphql(ADMIN, "{ syncRuns { id } }").await["data"]["syncRuns"],
        json!([])
    );
    server.terminate();

    // A worker process (no HTTP) schedules and executes the credential's syncs.
    let mut worker = aispend(dir.path())
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
    let server = serve_with_admin_token(dir.path());
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

#[tokio::test]
async fn no_token_is_printed_when_the_operator_configured_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = aispend(dir.path());
    cmd.env("AISPEND_ADMIN_TOKEN", "operator-secret")
        .arg("migrate");
    assert!(cmd.status().unwrap().success());
    let mut cmd = aispend(dir.path());
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

#[test]
fn token_create_prints_a_token_with_the_scopes_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let out = aispend(dir.path())
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
    let missing = aispend(dir.path())
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

#[test]
fn prices_import_reads_a_litellm_file_and_reports_counts() {
    let dir = tempfile::tempdir().unwrap();
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
        aispend(dir.path())
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

#[test]
fn migrate_is_repeatable_and_a_bad_database_url_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        aispend(dir.path())
            .arg("migrate")
            .status()
            .unwrap()
            .success()
    );
    assert!(
        aispend(dir.path())
            .arg("migrate")
            .status()
            .unwrap()
            .success()
    );
    assert!(
        dir.path().join("aispend.db").exists(),
        "SQLite lives in the data directory by default"
    );
    let bad = aispend(dir.path())
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

#[test]
fn prices_sync_fetches_a_loopback_source_and_fails_on_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let base = serve_document(
        json!({
            "acme-synced": {"litellm_provider": "acme", "mode": "chat", "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06}
        })
        .to_string(),
    );
    let run = |sources: &str| {
        aispend(dir.path())
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
    let none = aispend(dir.path())
        .args(["prices", "sync"])
        .output()
        .unwrap();
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("AISPEND_PRICE_SOURCES"));
}
