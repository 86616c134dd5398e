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
        .env("AISPEND_LOG", "info");
    cmd
}

/// A running `aispend serve`, with its output lines as they come.
struct Server {
    child: Child,
    stdout: mpsc::Receiver<String>,
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
    let mut child = aispend(data_dir)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("aispend starts");
    let stdout = lines(child.stdout.take().unwrap());
    let stderr = lines(child.stderr.take().unwrap());
    let address = loop {
        let line = stderr
            .recv_timeout(Duration::from_secs(60))
            .expect("the server logs its address");
        if let Some(rest) = line.split("address=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    Server {
        child,
        stdout,
        address,
    }
}

impl Server {
    fn printed(&self) -> String {
        std::thread::sleep(Duration::from_millis(200));
        self.stdout.try_iter().collect::<Vec<_>>().join("\n")
    }

    /// Sends SIGTERM and waits for a clean exit.
    fn terminate(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        for _ in 0..100 {
            if let Some(exit) = self.child.try_wait().unwrap() {
                assert!(
                    exit.success(),
                    "a SIGTERM ends the server cleanly, got {exit}"
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        panic!("the server did not stop within 10 s of SIGTERM");
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

#[tokio::test]
async fn no_token_is_printed_when_the_operator_configured_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = aispend(dir.path());
    cmd.env("AISPEND_ADMIN_TOKEN", "operator-secret")
        .arg("migrate");
    assert!(cmd.status().unwrap().success());
    let mut child = aispend(dir.path())
        .env("AISPEND_ADMIN_TOKEN", "operator-secret")
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = lines(child.stdout.take().unwrap());
    let stderr = lines(child.stderr.take().unwrap());
    let address = loop {
        let line = stderr.recv_timeout(Duration::from_secs(60)).unwrap();
        if let Some(rest) = line.split("address=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let server = Server {
        child,
        stdout,
        address,
    };
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
