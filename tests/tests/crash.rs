//! A sync survives `kill -9`: the real `aispend` binary is killed while a run waits
//! for its second page, restarted on the same database, and the run is taken over
//! from its stored cursor and completes, leaving exactly one copy of every report row.

use aispend_e2e::fake_provider::{FakeProvider, Reply, Seen};
use aispend_e2e::{POSTGRES_ENV, PgDatabase};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const ADMIN: &str = "crash-test-admin-token-0123456789";
const T0: i64 = 1_772_323_200;

/// The `aispend` binary next to this test's binary (`target/<profile>/aispend`).
fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let bin = dir.join(format!("aispend{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build the workspace (`cargo nextest run --workspace --all-targets` does)",
        bin.display()
    );
    bin
}

struct Server {
    child: Child,
    url: String,
}

async fn serve(data_dir: &Path, database_url: Option<&str>, allow: &str) -> Server {
    let mut cmd = Command::new(binary());
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AISPEND_DATA_DIR", data_dir)
        .env("AISPEND_LISTEN", "127.0.0.1:0")
        .env("AISPEND_ADMIN_TOKEN", ADMIN)
        .env("AISPEND_PLUGIN_ALLOW_HOSTS", allow)
        .env("AISPEND_JOBS_POLL_MS", "50")
        .env("AISPEND_SYNC_LEASE_MS", "1500")
        .env("AISPEND_SYNC_SWEEP_MS", "100")
        .env("AISPEND_SYNC_SCHEDULER", "false")
        .env("AISPEND_LOG", "info")
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(url) = database_url {
        cmd.env("AISPEND_DATABASE_URL", url);
    }
    let mut child = cmd.spawn().expect("aispend starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let address = tokio::time::timeout(Duration::from_secs(120), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split("address=").nth(1) {
                return rest.split_whitespace().next().map(str::to_owned);
            }
        }
        None
    })
    .await
    .expect("the server starts in time")
    .expect("the server logs its address");
    // Keep draining the log so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Server {
        child,
        url: format!("http://{address}/graphql"),
    }
}

async fn gql(server: &Server, query: &str, variables: Value) -> Value {
    let body: Value = reqwest::Client::new()
        .post(&server.url)
        .bearer_auth(ADMIN)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("JSON");
    assert!(body.get("errors").is_none(), "{body:#}");
    body["data"].clone()
}

fn usage(seen: &Seen, stall_second_page: bool) -> Reply {
    let result = |model: &str, input: i64| {
        json!({"object": "organization.usage.completions.result", "input_tokens": input, "output_tokens": 7,
               "input_cached_tokens": 0, "num_model_requests": 1, "project_id": null, "api_key_id": null,
               "model": model, "batch": false, "service_tier": "default"})
    };
    match (seen.path.as_str(), seen.param("page")) {
        ("/v1/organization/usage/completions", None) => Reply::json(json!({
            "object": "page", "data": [{"object": "bucket", "start_time": T0, "end_time": T0 + 3600,
                "results": [result("gpt-4o", 100), result("gpt-4o-mini", 200)]}],
            "has_more": true, "next_page": "page_2"})),
        ("/v1/organization/usage/completions", Some("page_2")) => {
            let mut r = Reply::json(json!({
                "object": "page", "data": [{"object": "bucket", "start_time": T0 + 3600, "end_time": T0 + 7200,
                    "results": [result("o3", 300)]}],
                "has_more": false, "next_page": null}));
            if stall_second_page {
                r.delay = Some(Duration::from_secs(600));
            }
            r
        }
        _ => {
            Reply::json(json!({"object": "page", "data": [], "has_more": false, "next_page": null}))
        }
    }
}

const RUN: &str = "query($id: ID!) { syncRun(id: $id) { status pages attempts rowsInserted rowsUpdated rowsUnchanged } }";

async fn wait_for_run(server: &Server, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let run = gql(server, RUN, json!({"id": id})).await["syncRun"].clone();
        if done(&run) {
            return run;
        }
        assert!(
            Instant::now() < deadline,
            "the run never got there: {run:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_sync_killed_mid_window_completes_after_a_restart(database_url: Option<&str>) {
    let provider = FakeProvider::start(|seen| usage(seen, true)).await;
    let data_dir = tempfile::tempdir().expect("a data directory");
    let allow = provider.host_port();
    let mut first = serve(data_dir.path(), database_url, &allow).await;
    let credential = gql(
        &first,
        "mutation($i: AddCredentialInput!) { addCredential(input: $i) { id } }",
        json!({"i": {"provider": "openai", "label": "main", "secret": "sk-admin-0123456789abcdef", "baseUrl": provider.base_url()}}),
    )
    .await["addCredential"]["id"]
        .as_str()
        .expect("a credential")
        .to_owned();
    let run = gql(
        &first,
        "mutation($c: ID!) { syncNow(credentialId: $c, from: \"2026-03-01T00:00:00Z\", to: \"2026-03-02T00:00:00Z\") { id } }",
        json!({"c": credential}),
    )
    .await["syncNow"]["id"]
        .as_str()
        .expect("a run")
        .to_owned();
    // Page one is written; the provider holds page two.
    let mid = wait_for_run(&first, &run, |r| r["pages"] == 1).await;
    assert_eq!(
        (mid["status"].as_str(), mid["rowsInserted"].as_i64()),
        (Some("RUNNING"), Some(2))
    );

    first.child.start_kill().expect("SIGKILL");
    let status = first.child.wait().await.expect("the process ends");
    assert!(!status.success(), "killed, not exited: {status:?}");

    provider.respond(|seen| usage(seen, false));
    let second = serve(data_dir.path(), database_url, &allow).await;
    let done = wait_for_run(&second, &run, |r| {
        r["status"] == "SUCCEEDED" || r["status"] == "FAILED"
    })
    .await;
    assert_eq!(done["status"], "SUCCEEDED", "{done:#}");
    // Continued from the stored cursor: page one was not fetched or counted again.
    assert_eq!(
        (
            done["pages"].as_i64(),
            done["rowsInserted"].as_i64(),
            done["rowsUnchanged"].as_i64()
        ),
        (Some(9), Some(3), Some(0))
    );
    let first_pages = provider
        .seen()
        .iter()
        .filter(|s| s.path == "/v1/organization/usage/completions" && s.param("page").is_none())
        .count();
    assert_eq!(first_pages, 1);
    let reports = gql(
        &second,
        "{ providerReports { model inputTokens } }",
        json!({}),
    )
    .await;
    let mut models: Vec<(String, i64)> = reports["providerReports"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| {
            (
                r["model"].as_str().unwrap_or("").to_owned(),
                r["inputTokens"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    models.sort();
    assert_eq!(
        models,
        [
            ("gpt-4o".to_owned(), 100),
            ("gpt-4o-mini".to_owned(), 200),
            ("o3".to_owned(), 300)
        ]
    );
}

mod crash {
    mod sqlite {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_sync_killed_mid_window_completes_after_a_restart() {
            super::super::a_sync_killed_mid_window_completes_after_a_restart(None).await;
        }
    }

    mod postgres {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_sync_killed_mid_window_completes_after_a_restart() {
            let admin = std::env::var(super::super::POSTGRES_ENV)
                .expect("the PostgreSQL pass sets AISPEND_TEST_POSTGRES_URL");
            let (_db, url) = super::super::PgDatabase::create(&admin).await;
            super::super::a_sync_killed_mid_window_completes_after_a_restart(Some(&url)).await;
        }
    }
}
