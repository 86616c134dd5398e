//! `fold`: events are folded into the rollups and sketches after their commit
//! (`rollup::fold`). Every answer counts the events still unfolded exactly, folding
//! them changes no answer, and re-pricing folded and unfolded events alike leaves the
//! rollups equal to the `GROUP BY` of the events.

use aispend::domain::rollup::RollupHook;
use aispend::domain::rollup::fold;
use aispend_e2e::{Backend, TestApp, backend_tests, spawn_app_with};
use rand::{Rng, SeedableRng};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

/// 2026-03-01T00:00:00Z.
const BASE: i64 = 1_772_323_200;

fn time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .expect("a time")
        .to_rfc3339()
}

/// Folds every unfolded event here, as the server's folder would (taking turns with
/// its ingest writer on SQLite); returns how many.
async fn fold_now(app: &TestApp) -> usize {
    fold::fold_all(
        &app.state.db,
        &RollupHook::new(1000),
        &app.state.ledger.writer().write_gate(),
    )
    .await
    .expect("a fold")
}

/// Records `n` events over three days from `BASE` in batches (keys `{tag}-{i}`):
/// two projects, three models (one of acme's, unpriced), endpoints, end users, two
/// sources, latencies. Returns how many were acme's.
async fn record(app: &TestApp, projects: &[String], tag: &str, n: usize, seed: u64) -> usize {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut acme = 0;
    let inputs: Vec<Value> = (0..n)
        .map(|i| {
            let (provider, model) = match rng.random_range(0..3) {
                0 => ("openai", "gpt-4o"),
                1 => ("anthropic", "claude-sonnet-4-5"),
                _ => ("acme", "acme-x"),
            };
            acme += usize::from(provider == "acme");
            let mut e = json!({
                "projectId": projects[i % projects.len()],
                "provider": provider,
                "model": model,
                "inputTokens": rng.random_range(1..5_000),
                "outputTokens": rng.random_range(1..2_000),
                "latencyMs": (20.0 * 1000f64.powf(rng.random::<f64>())).round() as i64,
                "occurredAt": time(BASE + rng.random_range(0..3 * 86_400)),
                "idempotencyKey": format!("{tag}-{i}"),
            });
            if i % 5 != 0 {
                e["endpoint"] = json!(format!("e{}", rng.random_range(0..4)));
            }
            if i % 7 != 0 {
                e["user"] = json!(format!("u{}", rng.random_range(0..5)));
            }
            e
        })
        .collect();
    for (k, chunk) in inputs.chunks(5_000).enumerate() {
        app.store_batch(chunk, k % 2 == 1).await;
    }
    acme
}

/// The questions whose answers must not depend on what is folded: every grouping a
/// rollup or sketch answers (with percentiles, over more latencies than are computed
/// exactly), trends by day and by hour in Berlin, the pickers, all over a range with
/// unaligned edges.
async fn answers(app: &TestApp) -> Vec<Value> {
    let filter = json!({
        "from": time(BASE + 17 * 60 + 23),
        "to": time(BASE + 2 * 86_400 + 23 * 3600 + 43 * 60 + 11),
    });
    let mut out = vec![];
    for group in [
        "MODEL",
        "PROVIDER",
        "PROJECT",
        "ENDPOINT",
        "USER",
        "SOURCE",
        "PROJECT, MODEL",
    ] {
        let r = app
            .admin(
                &format!(
                    "query($f: UsageFilter) {{ costBreakdown(filter: $f, groupBy: [{group}]) {{ provider model projectId endpoint user source latencyP50Ms latencyP95Ms totals {{ costUsd events requests inputTokens unpricedEvents }} }} }}"
                ),
                json!({"f": filter}),
            )
            .await;
        out.push(r.data()["costBreakdown"].clone());
    }
    let mut one_endpoint = filter.clone();
    one_endpoint["endpoints"] = json!(["e1"]);
    for q in [
        "query($f: UsageFilter) { costSummary(filter: $f) { totals { costUsd events unpricedEvents } } }",
        "query($f: UsageFilter!) { costTrend(filter: $f, granularity: DAY) { start totals { costUsd events } } }",
        "query($f: UsageFilter!) { costTrend(filter: $f, granularity: HOUR, timezone: \"Europe/Berlin\") { start totals { costUsd events } } }",
    ] {
        for f in [&filter, &one_endpoint] {
            out.push(app.admin(q, json!({"f": f})).await.data().clone());
        }
    }
    out.push(
        app.admin(
            "{ filters { providers models endpoints users projects } }",
            json!({}),
        )
        .await
        .data()
        .clone(),
    );
    out
}

/// The events' count and cost (nano-dollars) per model, exactly.
async fn group_by_model(app: &TestApp) -> Vec<(String, i64, i64)> {
    let db = &app.state.db;
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT model, CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT) \
         FROM usage_events GROUP BY model ORDER BY model",
    ))
    .await
    .expect("the events' sums")
    .into_iter()
    .map(|r| {
        (
            r.try_get_by_index(0).expect("a model"),
            r.try_get_by_index(1).expect("a count"),
            r.try_get_by_index(2).expect("a cost"),
        )
    })
    .collect()
}

/// The same from each rollup that keeps the model.
async fn rollups_by_model(app: &TestApp) -> Vec<Vec<(String, i64, i64)>> {
    let db = &app.state.db;
    let mut out = vec![];
    for table in [
        "usage_rollup_days",
        "usage_rollup_global_days",
        "usage_rollup_model_hours",
        "usage_rollup_global_model_hours",
        "usage_rollup_endpoint_days",
        "usage_rollup_endpoint_global_weeks",
    ] {
        out.push(
            db.query_all_raw(Statement::from_string(
                db.get_database_backend(),
                format!(
                    "SELECT model, CAST(SUM(events_hi * 1000000000 + events) AS BIGINT), \
                     CAST(SUM(cost_nanos_hi * 1000000000 + cost_nanos) AS BIGINT) \
                     FROM {table} GROUP BY model ORDER BY model"
                ),
            ))
            .await
            .expect("a rollup's sums")
            .into_iter()
            .map(|r| {
                (
                    r.try_get_by_index(0).expect("a model"),
                    r.try_get_by_index(1).expect("a count"),
                    r.try_get_by_index(2).expect("a cost"),
                )
            })
            .collect(),
        );
    }
    out
}

/// With the server's folder idle (an hour between folds), every answer reads the
/// unfolded events: the same answers as once they are folded, percentiles included.
/// Then half the events folded and half not, a price for acme re-prices both kinds;
/// the answers and the rollups stay exact.
async fn answers_count_unfolded_events_and_folding_changes_none(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.limits.fold_interval_ms = 3_600_000).await;
    let projects = [app.create_project("a").await, app.create_project("b").await];
    let first = 24_000;
    let acme_first = record(&app, &projects, "first", first, 1).await;
    assert_eq!(app.unfolded().await, first as i64, "nothing folded yet");
    assert!(
        rollups_by_model(&app).await.iter().all(Vec::is_empty),
        "the rollups hold nothing yet"
    );
    let before = answers(&app).await;
    let latencies = before[7]["costSummary"]["totals"]["events"]
        .as_i64()
        .unwrap_or(0);
    assert!(
        latencies > aispend::domain::analytics::EXACT_PERCENTILES_UP_TO,
        "the range holds more latencies than are computed exactly, so the sketches (and \
         their unfolded twins) answer the percentiles: {latencies}"
    );
    assert_eq!(fold_now(&app).await, first);
    assert_eq!(app.unfolded().await, 0);
    let after = answers(&app).await;
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert_eq!(b, a, "answer {i}: unfolded and folded differ");
    }
    let exact = group_by_model(&app).await;
    for rollup in rollups_by_model(&app).await {
        assert_eq!(rollup, exact, "a rollup against the events, after the fold");
    }

    // More events, left unfolded; acme gets a price: its events of both kinds are
    // re-priced, the folded ones by their cost's delta, the unfolded ones folded whole.
    let second = 6_000;
    let acme_second = record(&app, &projects, "second", second, 2).await;
    assert_eq!(app.unfolded().await, second as i64);
    let unpriced = |a: &[Value]| a[7]["costSummary"]["totals"]["unpricedEvents"].clone();
    let mixed = answers(&app).await;
    assert!(unpriced(&mixed).as_i64().unwrap_or(0) > 0);
    app.admin(
        r#"mutation { upsertPrice(input: {provider: "acme", model: "acme-x", standard: {input: "1000", output: "2000"}}) { id } }"#,
        json!({}),
    )
    .await
    .data();
    assert!(acme_first > 0 && acme_second > 0);
    // Every acme event of the second batch was unfolded: re-pricing folded them.
    let repriced_unfolded = second as i64 - app.unfolded().await;
    assert_eq!(
        repriced_unfolded, acme_second as i64,
        "re-pricing folds the unfolded events it prices"
    );
    let repriced = answers(&app).await;
    assert_eq!(unpriced(&repriced), json!(0), "{:?}", repriced[7]);
    let folded = fold_now(&app).await;
    assert_eq!(folded as i64, second as i64 - repriced_unfolded);
    assert_eq!(app.unfolded().await, 0);
    let after = answers(&app).await;
    for (i, (r, a)) in repriced.iter().zip(&after).enumerate() {
        assert_eq!(r, a, "answer {i}: before and after the last fold");
    }
    let exact = group_by_model(&app).await;
    assert_eq!(
        exact.iter().map(|(_, n, _)| n).sum::<i64>(),
        (first + second) as i64
    );
    for rollup in rollups_by_model(&app).await {
        assert_eq!(
            rollup, exact,
            "a rollup against the events after re-pricing"
        );
    }
}

/// The folder of a running server folds what ingest leaves, within seconds, without
/// being asked.
async fn the_server_folds_by_itself(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let projects = [app.create_project("a").await];
    record(&app, &projects, "auto", 1_000, 3).await;
    app.folded().await;
    let exact = group_by_model(&app).await;
    for rollup in rollups_by_model(&app).await {
        assert_eq!(rollup, exact);
    }
}

backend_tests!(
    answers_count_unfolded_events_and_folding_changes_none,
    the_server_folds_by_itself
);

/// PostgreSQL: an ingest admitting a project's new endpoints or end users holds that
/// project's admission lock to its commit. The folder only reads values, each decided
/// when its event committed, so it takes no such lock: a fold neither waits for an
/// ingest admitting values nor holds one up for the length of the fold.
async fn a_fold_does_not_wait_for_values_being_admitted() {
    use aispend::domain::rollup::ADMISSION_LOCK;
    use sea_orm::TransactionTrait;
    let app = spawn_app_with(Backend::Postgres, |s| s.limits.fold_interval_ms = 3_600_000).await;
    let project = app.create_project("a").await;
    let event = |key: &str, user: &str| json!({"projectId": project, "provider": "openai", "model": "gpt-4o", "inputTokens": 1000, "endpoint": "chat", "user": user, "idempotencyKey": key});
    app.store_batch(&[event("k1", "u-1")], false).await;

    // Another transaction holds the project's admission locks, as an ingest admitting
    // new values does until it commits.
    let db = &app.state.db;
    let holder = db.begin().await.expect("a transaction");
    let simple = uuid::Uuid::parse_str(&project)
        .expect("a project id")
        .simple()
        .to_string();
    for column in ["endpoint", "end_user"] {
        holder
            .execute_raw(Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                "SELECT pg_advisory_xact_lock($1, hashtext($2 || $3))",
                [ADMISSION_LOCK.into(), simple.clone().into(), column.into()],
            ))
            .await
            .expect("the admission lock");
    }
    // The lock is the one ingest takes: a new end user waits for it.
    let waiting = tokio::spawn(
        app.client
            .post(format!("{}/graphql", app.base_url))
            .bearer_auth(&app.admin_token)
            .json(&json!({
                "query": "mutation($i: [UsageInput!]!) { recordUsageBatch(inputs: $i) { accepted } }",
                "variables": {"i": [event("k2", "u-2")]},
            }))
            .send(),
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "ingest of a new end user waits for the lock"
    );

    let folded = tokio::time::timeout(std::time::Duration::from_secs(10), fold_now(&app))
        .await
        .expect("the fold does not wait for the admission lock");
    assert_eq!(folded, 1, "the committed event, not the waiting one");

    holder.rollback().await.expect("releasing the locks");
    let stored: Value = waiting
        .await
        .expect("the waiting ingest")
        .expect("a response")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        stored["data"]["recordUsageBatch"]["accepted"], 1,
        "{stored}"
    );
    assert_eq!(fold_now(&app).await, 1);
    let users = app
        .admin(
            "{ costBreakdown(groupBy: [USER], view: TRACKED) { user totals { requests } } }",
            json!({}),
        )
        .await;
    let mut users: Vec<(String, i64)> = users.data()["costBreakdown"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["user"].as_str().unwrap_or("").to_owned(),
                r["totals"]["requests"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    users.sort();
    assert_eq!(users, [("u-1".to_owned(), 1), ("u-2".to_owned(), 1)]);
}

/// Every rollup and sketch the folder upserts leaves room on its pages for the next
/// versions of its rows (migration 000028), so that the folds' updates of the current
/// hour's and day's rows are heap-only on PostgreSQL; a table added later without it
/// fails here.
async fn every_folded_table_leaves_room_for_updates() {
    use aispend::domain::rollup::{ALL, SKETCHES};
    let app = spawn_app_with(Backend::Postgres, |_| {}).await;
    let tables: Vec<&str> = ALL
        .iter()
        .map(|r| r.table)
        .chain(SKETCHES.iter().map(|s| s.table))
        .collect();
    assert_eq!(tables.len(), 27);
    for table in tables {
        let row = app
            .state
            .db
            .query_one_raw(Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                "SELECT array_to_string(reloptions, ',') AS options FROM pg_class WHERE relname = $1 AND relkind = 'r'",
                [table.into()],
            ))
            .await
            .expect("pg_class")
            .unwrap_or_else(|| panic!("{table} exists"));
        let options: Option<String> = row.try_get("", "options").expect("options");
        assert_eq!(options.as_deref(), Some("fillfactor=70"), "{table}");
    }
}

mod room {
    mod postgres {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn every_folded_table_leaves_room_for_updates() {
            super::super::every_folded_table_leaves_room_for_updates().await
        }
    }
}

mod admission {
    mod postgres {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_fold_does_not_wait_for_values_being_admitted() {
            super::super::a_fold_does_not_wait_for_values_being_admitted().await
        }
    }
}
