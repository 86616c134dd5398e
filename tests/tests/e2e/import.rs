//! `aispend import FILE` (issue 14 part 3): the real binary against a running server —
//! rejected rows with their line numbers, re-runs that add nothing, an export
//! imported into another project, the logs CSV of a token-usage dashboard.

use aispend_e2e::{TestApp, db_tests};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// The `aispend` binary next to this test binary (built with the workspace).
pub(crate) fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let bin = dir.join(format!("aispend{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build the workspace (`cargo build -p aispend`)",
        bin.display()
    );
    bin
}

struct Run {
    code: i32,
    stdout: String,
}

async fn import(app: &TestApp, token: &str, file: &Path, args: &[&str]) -> Run {
    let output = tokio::process::Command::new(binary())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AISPEND_URL", &app.base_url)
        .env("AISPEND_TOKEN", token)
        .arg("import")
        .arg(file)
        .args(args)
        .output()
        .await
        .expect("the CLI runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.code().is_some(),
        "the CLI was killed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout,
    }
}

async fn events_of(app: &TestApp, project: &str) -> Vec<Value> {
    let r = app
        .admin(
            "query($p: [ID!]) { usageEvents(filter: {projects: $p}, first: 100) { edges { node { provider model source inputTokens outputTokens costUsd costSource endpoint } } } }",
            json!({"p": [project]}),
        )
        .await;
    r.data()["usageEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

const EXPORT_HEADER: &str = "id,occurred_at,project_id,provider,model,endpoint,source,user,requests,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,cache_write_1h_tokens,reasoning_tokens,service_tier,latency_ms,cost_usd,cost_source";

async fn rejected_rows_are_named_by_line_and_a_rerun_adds_nothing(app: TestApp) {
    let project = app.create_project("history").await;
    let token = app.create_token(Some(&project), &["INGEST"]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("usage.csv");
    std::fs::write(
        &file,
        format!(
            "{EXPORT_HEADER}\n\
             1,2026-03-01T10:00:00Z,,openai,gpt-4o,chat,API,,1,1000,200,0,0,0,0,standard,120,,COMPUTED\n\
             2,2026-03-01T10:05:00Z,,openai,gpt-4o,chat,API,,1,10,5,0,0,0,9,standard,,,COMPUTED\n\
             3,2026-03-01T10:06:00Z,,openai,gpt-4o,chat,API,,1,many,5,0,0,0,0,standard,,,COMPUTED\n\
             4,2026-03-01T11:00:00Z,,perplexity,sonar,search,API,,1,50,10,0,0,0,0,standard,,0.005,REPORTED\n"
        ),
    )
    .unwrap();
    let run = import(&app, &token, &file, &["--batch-size", "2"]).await;
    assert_eq!(
        run.code, 1,
        "rejected rows make the exit code 1: {}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("4 rows: 2 imported, 0 duplicates, 2 rejected"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("line 3: reasoningTokens:"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("line 4: input_tokens: `\"many\"` is not a whole number"),
        "{}",
        run.stdout
    );
    let stored = events_of(&app, &project).await;
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|e| e["source"] == "IMPORT"), "{stored:?}");
    let sonar = stored.iter().find(|e| e["model"] == "sonar").unwrap();
    assert_eq!(sonar["costSource"], "REPORTED");
    assert_eq!(sonar["costUsd"], "0.005");

    let again = import(&app, &token, &file, &[]).await;
    assert!(
        again
            .stdout
            .contains("4 rows: 0 imported, 2 duplicates, 2 rejected"),
        "{}",
        again.stdout
    );
    assert_eq!(events_of(&app, &project).await.len(), 2, "nothing new");
}

/// An export (CSV and JSONL) loads into another project; the logs CSV of the
/// token-usage dashboard loads with its costs.
async fn an_export_imports_into_another_project(app: TestApp) {
    let a = app.create_project("a").await;
    let b = app.create_project("b").await;
    for (i, model) in ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5"]
        .iter()
        .enumerate()
    {
        let provider = if model.starts_with("claude") {
            "anthropic"
        } else {
            "openai"
        };
        app.record(json!({"projectId": a, "provider": provider, "model": model,
            "inputTokens": 1000 * (i + 1), "outputTokens": 100, "endpoint": "e",
            "occurredAt": "2026-03-02T09:00:00Z"}))
            .await;
    }
    let dir = tempfile::tempdir().unwrap();
    let admin = app.admin_token.clone();
    for ext in ["csv", "jsonl"] {
        let body = app
            .client
            .get(format!("{}/export/usage.{ext}?project={a}", app.base_url))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let file = dir.path().join(format!("export.{ext}"));
        std::fs::write(&file, body).unwrap();
        let run = import(&app, &admin, &file, &["--project", &b]).await;
        assert_eq!(run.code, 0, "{}", run.stdout);
        // The JSONL export holds the same events as the CSV one: they are duplicates.
        let expected = if ext == "csv" {
            "3 rows: 3 imported, 0 duplicates, 0 rejected"
        } else {
            "3 rows: 0 imported, 3 duplicates, 0 rejected"
        };
        assert!(run.stdout.contains(expected), "{ext}: {}", run.stdout);
    }
    let mut original: Vec<(String, String)> = events_of(&app, &a)
        .await
        .iter()
        .map(|e| (e["model"].to_string(), e["costUsd"].to_string()))
        .collect();
    let mut copied: Vec<(String, String)> = events_of(&app, &b)
        .await
        .iter()
        .map(|e| (e["model"].to_string(), e["costUsd"].to_string()))
        .collect();
    original.sort();
    copied.sort();
    // The three events once each, priced as before.
    assert_eq!(copied, original);

    let logs = dir.path().join("logs.csv");
    std::fs::write(
        &logs,
        "timestamp,model,endpoint,prompt_tokens,completion_tokens,total_tokens,input_cost,output_cost,total_cost,latency_ms,api_provider\n\
         \"2024-03-01T12:34:56Z\",\"gpt-4\",\"chat-assistant\",100,50,150,0.100000,0.050000,0.150000,2100,\"OpenAI\"\n",
    )
    .unwrap();
    let c = app.create_project("c").await;
    let run = import(&app, &admin, &logs, &["--project", &c]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    let stored = events_of(&app, &c).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (
            &stored[0]["provider"],
            &stored[0]["endpoint"],
            &stored[0]["costUsd"]
        ),
        (&json!("openai"), &json!("chat-assistant"), &json!("0.15"))
    );
}

/// A token that may not write the project stops the import with the server's error.
async fn a_refused_token_stops_the_import(app: TestApp) {
    let a = app.create_project("a").await;
    let reader = app.create_token(Some(&a), &["READ"]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("u.jsonl");
    std::fs::write(
        &file,
        "{\"provider\":\"openai\",\"model\":\"gpt-4o\",\"input_tokens\":1}\n",
    )
    .unwrap();
    let output = tokio::process::Command::new(binary())
        .env_clear()
        .arg("import")
        .arg(&file)
        .args(["--url", &app.base_url, "--token", &reader])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("FORBIDDEN"), "{stderr}");
    assert_eq!(app.event_count().await, 0);
}

db_tests!(
    rejected_rows_are_named_by_line_and_a_rerun_adds_nothing,
    an_export_imports_into_another_project,
    a_refused_token_stops_the_import,
);
