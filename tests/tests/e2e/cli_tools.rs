//! `aispend export` and `aispend usage summary` (issue 14 part 3): the real binary
//! against a running server, with a filter (range and project) that leaves events out.

use crate::import::binary;
use aispend_e2e::{TestApp, db_tests};
use serde_json::{Value, json};

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn cli(app: &TestApp, token: &str, args: &[&str]) -> Run {
    let output = tokio::process::Command::new(binary())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AISPEND_URL", &app.base_url)
        .env("AISPEND_TOKEN", token)
        .args(args)
        .output()
        .await
        .expect("the CLI runs");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Project `a` in March: gpt-4o twice (0.05 in all, 1,800 tokens, endpoint chat) and
/// claude-sonnet-4-5 once (0.15, 2,000 tokens, endpoint search); an April event of
/// `a` and a March event of `b` are outside the filter. Returns (a, b).
async fn seed(app: &TestApp) -> (String, String) {
    let a = app.create_project("a").await;
    let b = app.create_project("b").await;
    for (project, provider, model, endpoint, input, output, cost, at) in [
        (
            &a,
            "openai",
            "gpt-4o",
            "chat",
            1000,
            200,
            "0.03",
            "2026-03-01T10:00:00Z",
        ),
        (
            &a,
            "openai",
            "gpt-4o",
            "chat",
            500,
            100,
            "0.02",
            "2026-03-01T11:00:00Z",
        ),
        (
            &a,
            "anthropic",
            "claude-sonnet-4-5",
            "search",
            2000,
            0,
            "0.15",
            "2026-03-02T09:00:00Z",
        ),
        (
            &a,
            "openai",
            "gpt-4o-mini",
            "chat",
            100,
            0,
            "1",
            "2026-04-01T00:00:00Z",
        ),
        (
            &b,
            "openai",
            "gpt-4o",
            "chat",
            100,
            0,
            "0.5",
            "2026-03-01T12:00:00Z",
        ),
    ] {
        let r = app
            .record(
                json!({"projectId": project, "provider": provider, "model": model,
                "endpoint": endpoint, "inputTokens": input, "outputTokens": output,
                "reportedCostUsd": cost, "occurredAt": at}),
            )
            .await;
        assert_eq!(r["event"]["costUsd"], cost, "{r}");
    }
    (a, b)
}

const RANGE: [&str; 4] = ["--from", "2026-03-01", "--to", "2026-03-03"];

async fn usage_summary_prints_the_table_and_json_of_a_filter(app: TestApp) {
    let (a, _) = seed(&app).await;
    let reader = app.create_token(Some(&a), &["READ"]).await;
    let mut args = vec!["usage", "summary", "--project", &a];
    args.extend(RANGE);
    let run = cli(&app, &reader, &args).await;
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert_eq!(
        run.stdout,
        "MODEL              COST (USD)  TOKENS  EVENTS    SHARE\n\
         claude-sonnet-4-5    0.150000   2,000       1   75.00%\n\
         gpt-4o               0.050000   1,800       2   25.00%\n\
         ------------------------------------------------------\n\
         TOTAL                0.200000   3,800       3  100.00%\n"
    );

    let mut by_endpoint = args.clone();
    by_endpoint.extend(["--group-by", "endpoint"]);
    let run = cli(&app, &reader, &by_endpoint).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].starts_with("ENDPOINT"), "{}", run.stdout);
    assert!(
        lines[1].starts_with("search") && lines[1].ends_with("75.00%"),
        "{}",
        run.stdout
    );
    assert!(
        lines[2].starts_with("chat") && lines[2].ends_with("25.00%"),
        "{}",
        run.stdout
    );

    let mut json_args = args.clone();
    json_args.extend(["--group-by", "provider", "--json"]);
    let run = cli(&app, &reader, &json_args).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let out: Value = serde_json::from_str(&run.stdout).expect("--json prints JSON");
    assert_eq!(out["groupBy"], "PROVIDER");
    assert_eq!(out["totals"]["costUsd"], "0.2");
    assert_eq!(out["totals"]["totalTokens"], 3800);
    assert_eq!(out["totals"]["events"], 3);
    let groups: Vec<(&str, &str, i64)> = out["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["provider"].as_str().unwrap(),
                g["totals"]["costUsd"].as_str().unwrap(),
                g["totals"]["events"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(groups, [("anthropic", "0.15", 1), ("openai", "0.05", 2)]);

    // Without --project the admin sees both projects in March.
    let mut all = vec!["usage", "summary", "--json"];
    all.extend(RANGE);
    let admin = app.admin_token.clone();
    let run = cli(&app, &admin, &all).await;
    let out: Value = serde_json::from_str(&run.stdout).expect("--json prints JSON");
    assert_eq!(out["totals"]["costUsd"], "0.7");

    let run = cli(&app, "not-a-token", &args).await;
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("UNAUTHORIZED"), "{}", run.stderr);
    let run = cli(
        &app,
        &reader,
        &["usage", "summary", "--from", "last tuesday"],
    )
    .await;
    assert_eq!(run.code, Some(2), "a bad date is a usage error");
    assert!(
        run.stderr
            .contains("`last tuesday` is not an RFC 3339 date-time"),
        "{}",
        run.stderr
    );
}

async fn export_streams_the_filtered_export_to_a_file_or_stdout(app: TestApp) {
    let (a, _) = seed(&app).await;
    let reader = app.create_token(Some(&a), &["READ"]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("march.csv");
    let file_arg = file.to_str().unwrap();
    let mut args = vec!["export", "--project", &a, "-o", file_arg];
    args.extend(RANGE);
    let run = cli(&app, &reader, &args).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("exported 3 rows (") && run.stderr.contains(file_arg),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    let written = std::fs::read_to_string(&file).unwrap();
    let direct = app
        .client
        .get(format!(
            "{}/export/usage.csv?project={a}&from=2026-03-01T00:00:00Z&to=2026-03-03T00:00:00Z",
            app.base_url
        ))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        written, direct,
        "the file is the server's export, byte for byte"
    );
    assert_eq!(
        written.lines().count(),
        4,
        "a header and 3 rows:\n{written}"
    );
    assert!(!dir.path().join("march.csv.partial").exists());

    let mut jsonl = vec!["export", "--format", "jsonl", "--project", &a];
    jsonl.extend(RANGE);
    let run = cli(&app, &reader, &jsonl).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let mut rows: Vec<(String, String)> = run
        .stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["model"].as_str().unwrap().to_owned(),
                v["cost_usd"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            ("claude-sonnet-4-5", "0.150000"),
            ("gpt-4o", "0.020000"),
            ("gpt-4o", "0.030000")
        ]
        .map(|(m, c)| (m.to_owned(), c.to_owned()))
    );
    assert!(
        run.stderr.contains("exported 3 rows"),
        "a progress line when stdout is not a terminal: {}",
        run.stderr
    );

    // A refused token: the server's error, and no file under either name.
    let refused = dir.path().join("refused.csv");
    let run = cli(
        &app,
        "not-a-token",
        &["export", "-o", refused.to_str().unwrap()],
    )
    .await;
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("UNAUTHORIZED"), "{}", run.stderr);
    assert!(!refused.exists());
    assert!(!dir.path().join("refused.csv.partial").exists());
}

db_tests!(
    usage_summary_prints_the_table_and_json_of_a_filter,
    export_streams_the_filtered_export_to_a_file_or_stdout,
);
