//! The web dashboard in a real browser: Debian's chromium, driven by `playwright-core`
//! (`web/e2e/dashboard.mjs`), against the real server on a fresh database that this
//! test seeds over GraphQL. The script signs in, checks the overview's exact month
//! total, changes range and time zone, watches an event arrive live, adds a manual
//! entry (then seen in the REPORTED view and in reconciliation), a budget (whose alerts
//! fire; edited; acknowledged), a credential (shown masked), a user price and a token
//! (shown once, working, revoked) through their forms, checks the phone width, and
//! signs in again with a project-bound READ token that must see nothing of the other
//! project — on any page or in its live feed — and no admin controls. Screenshots of
//! every page land in `target/dashboard-screenshots/<backend>/` (not committed).
//!
//! Without a chromium the test says so loudly and passes: `.ci/run` installs it.

use aispend_e2e::{TestApp, db_tests};
use serde_json::json;
use std::path::{Path, PathBuf};

const CREATE_TOKEN: &str = "mutation($p: ID, $s: [Scope!]!) { createApiToken(name: \"browser\", projectId: $p, scopes: $s) { token } }";

fn chromium() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

async fn the_dashboard_works_in_a_browser(app: TestApp) {
    let Some(chromium) = chromium() else {
        eprintln!(
            "\n\n!!!!!!!! SKIPPED: no chromium at /usr/bin/chromium (set CHROMIUM, or \
             `apt-get install -y chromium`); the dashboard's browser tests did NOT run !!!!!!!!\n\n"
        );
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let web = root.join("web");
    assert!(
        web.join("node_modules/playwright-core").is_dir(),
        "web/node_modules is installed by the server's build script"
    );

    // Seed: two projects, this month (the pinned clock's December 2026) and the month
    // before, which the month total must leave out.
    let a = app.create_project("acme-alpha-proj").await;
    let b = app.create_project("acme-beta-proj").await;
    for (project, model, endpoint, cost, at) in [
        (
            &a,
            "gpt-4o",
            "alpha-endpoint",
            "12.345678",
            "2026-12-03T01:00:00Z",
        ),
        (
            &a,
            "gpt-4o-mini",
            "alpha-endpoint",
            "7.1",
            "2026-12-08T09:30:00Z",
        ),
        (
            &a,
            "gpt-4o",
            "alpha-endpoint",
            "100",
            "2026-11-15T12:00:00Z",
        ),
        (
            &b,
            "claude-sonnet-4",
            "beta-endpoint",
            "5.5",
            "2026-12-05T18:00:00Z",
        ),
    ] {
        app.record(json!({
            "projectId": project, "provider": "openai", "model": model, "endpoint": endpoint,
            "inputTokens": 1000, "outputTokens": 100, "latencyMs": 420,
            "reportedCostUsd": cost, "occurredAt": at,
        }))
        .await;
    }
    // Enough November events for the event log to need a second page.
    let november: Vec<_> = (0..30)
        .map(|i| {
            json!({
                "projectId": a, "provider": "openai", "model": "gpt-4o-mini",
                "endpoint": "alpha-endpoint", "inputTokens": 10, "reportedCostUsd": "0.01",
                "occurredAt": format!("2026-11-{:02}T08:00:00Z", i + 1),
            })
        })
        .collect();
    let r = app
        .admin(
            "mutation($i: [UsageInput!]!) { recordUsageBatch(inputs: $i) { accepted } }",
            json!({"i": november}),
        )
        .await;
    assert_eq!(r.data()["recordUsageBatch"]["accepted"], 30, "{r:?}");
    let month = json!({"from": "2026-12-01T00:00:00Z", "to": "2027-01-01T00:00:00Z"});
    let r = app
        .admin(
            "query($f: UsageFilter) { costSummary(filter: $f) { totals { costUsd } } }",
            json!({"f": month}),
        )
        .await;
    assert_eq!(r.data()["costSummary"]["totals"]["costUsd"], "24.945678");
    let r = app
        .admin(CREATE_TOKEN, json!({"p": b, "s": ["READ"]}))
        .await;
    let read_b = r.data()["createApiToken"]["token"]
        .as_str()
        .expect("a token")
        .to_owned();

    let shots = root
        .join("target/dashboard-screenshots")
        .join(format!("{:?}", app.backend).to_lowercase());
    let output = tokio::task::spawn_blocking({
        let base = app.base_url.clone();
        let admin = app.admin_token.clone();
        move || {
            std::process::Command::new("node")
                .arg("e2e/dashboard.mjs")
                .current_dir(&web)
                .env("AISPEND_URL", base)
                .env("ADMIN_TOKEN", admin)
                .env("READ_B_TOKEN", read_b)
                .env("PROJECT_A", a)
                .env("PROJECT_B", b)
                .env("MONTH_TOTAL", "24.945678")
                .env("MONTH_TOTAL_B", "5.5")
                .env("SCREENSHOT_DIR", &shots)
                .env("CHROMIUM", chromium)
                .output()
        }
    })
    .await
    .expect("the browser task")
    .expect("node runs (Node.js 20 builds the dashboard, so it is installed)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "the browser scenarios failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains("all dashboard scenarios passed"),
        "{stdout}"
    );
}

/// `/` and every page route answer the dashboard; hashed assets are cached for a year
/// with their content type; an unknown file or API path is a 404, not the page.
async fn the_dashboard_and_its_assets_are_served(app: TestApp) {
    let get = |path: &str| app.client.get(format!("{}{path}", app.base_url)).send();
    let index = get("/").await.expect("GET /");
    assert_eq!(index.status(), 200);
    assert_eq!(index.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(index.headers()["cache-control"], "no-cache");
    let html = index.text().await.expect("body");
    assert!(html.contains("<div id=\"app\">"), "{html}");
    let script = html
        .split("src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a script tag");
    assert!(
        script.starts_with("/assets/") && script.ends_with(".js"),
        "{script}"
    );
    let js = get(script).await.expect("GET the script");
    assert_eq!(js.status(), 200);
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        js.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(js.text().await.expect("body").contains("costUpdates"));
    for route in ["/budgets", "/explore", "/projects"] {
        let page = get(route).await.expect("GET a page route");
        assert_eq!(page.status(), 200, "{route}");
        assert_eq!(page.text().await.expect("body"), html, "{route} is the SPA");
    }
    for missing in [
        "/assets/nope.js",
        "/favicon.ico",
        "/api/nope",
        "/graphql/nope",
        "/export/nope",
    ] {
        let r = get(missing).await.expect("GET");
        assert_eq!(r.status(), 404, "{missing}");
    }
}

db_tests!(
    the_dashboard_works_in_a_browser,
    the_dashboard_and_its_assets_are_served
);
