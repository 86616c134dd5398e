//! `latency`: percentiles by end user and by source from their sketches (migration
//! 000022), and from raw events where a project's long tail hides the values asked.

use crate::analytics::check_percentiles;
use aispend_e2e::{Backend, TestApp, backend_tests, spawn_app_with};
use serde_json::{Value, json};

/// One generated event: when, which project (index), its end user, its source and its
/// latency in milliseconds.
struct Ev {
    at: i64,
    project: usize,
    user: Option<&'static str>,
    source: &'static str,
    ms: i64,
}

fn time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .expect("a time")
        .to_rfc3339()
}

/// What a breakdown is grouped by, and the group of an event under it.
#[derive(Clone, Copy)]
enum By {
    User,
    Source,
    Project,
    Model,
}

impl By {
    fn name(self) -> &'static str {
        match self {
            By::User => "USER",
            By::Source => "SOURCE",
            By::Project => "PROJECT",
            By::Model => "MODEL",
        }
    }

    fn field(self) -> &'static str {
        match self {
            By::User => "user",
            By::Source => "source",
            By::Project => "projectId",
            By::Model => "model",
        }
    }
}

/// The server with its generated events, their projects' ids (by index) and the range
/// every question asks about.
struct Seeded<'a> {
    app: &'a TestApp,
    events: &'a [Ev],
    projects: &'a [String],
    range: (i64, i64),
}

impl Seeded<'_> {
    /// The breakdown of `filter` (the range added) by `by`, with each group's keys,
    /// percentiles and event count; `max`: its `maxRawLatencies`.
    async fn ask(&self, mut filter: Value, by: By, max: Option<i64>) -> aispend_e2e::Gql {
        filter["from"] = json!(time(self.range.0));
        filter["to"] = json!(time(self.range.1));
        self.app
            .admin(
                &format!(
                    "query($f: UsageFilter, $max: Int) {{ costBreakdown(filter: $f, groupBy: [{}], maxRawLatencies: $max) {{ user source projectId model latencyP50Ms latencyP95Ms totals {{ events }} }} }}",
                    by.name()
                ),
                json!({"f": filter, "max": max}),
            )
            .await
    }

    /// The breakdown of `filter` (the range added) by `by`, each group's p50 and p95
    /// against the exact nearest-rank ones of the events `keep` selects: within 1 %
    /// plus half a millisecond when `within`, else equal, and its event count against
    /// theirs. Returns how many percentiles were not exact, how many latencies the
    /// groups held, and the groups.
    async fn check(
        &self,
        filter: Value,
        by: By,
        keep: impl Fn(&Ev) -> bool,
        within: bool,
    ) -> (usize, usize, Vec<String>) {
        let Seeded {
            events,
            projects,
            range: (from, to),
            ..
        } = *self;
        let r = self.ask(filter.clone(), by, None).await;
        let groups = r.data()["costBreakdown"]
            .as_array()
            .expect("groups")
            .clone();
        let (mut inexact, mut counted, mut names) = (0, 0, vec![]);
        for g in &groups {
            let key = g[by.field()].as_str();
            names.push(key.unwrap_or("-").to_owned());
            let group = |e: &Ev| match by {
                By::User => e.user,
                By::Source => Some(e.source),
                By::Project => Some(projects[e.project].as_str()),
                By::Model => Some("gpt-4o"),
            };
            let mut v: Vec<i64> = events
                .iter()
                .filter(|e| e.at >= from && e.at < to && keep(e) && group(e) == key)
                .map(|e| e.ms)
                .collect();
            v.sort_unstable();
            counted += v.len();
            // Every event has a latency: the group's events are those latencies.
            assert_eq!(g["totals"]["events"], v.len(), "{key:?} ({filter}): events");
            inexact += check_percentiles(g, &v, within, &format!("{key:?} ({filter})"));
        }
        names.sort();
        (inexact, counted, names)
    }
}

/// Percentiles by end user and by source above `EXACT_PERCENTILES_UP_TO` latencies
/// come from their sketches (whole days, raw events at the edges), within 1 % of the
/// exact value plus half a millisecond and not all exact; with room for three end
/// users per project, a question that meets a project's long tail (the `' other'`
/// bucket, or a filter on a user it never admitted) is answered exactly from raw
/// events. Migration 000022's backfill equals what the hook kept.
async fn user_and_source_percentiles_come_from_their_sketches_and_the_long_tail_from_raw_events(
    backend: Backend,
) {
    use rand::{Rng, SeedableRng};
    let app = spawn_app_with(backend, |s| s.limits.rollup_distinct_values = 3).await;
    let projects = [
        app.create_project("three-users").await,
        app.create_project("long-tail").await,
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261208);
    let base = chrono::DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
        .expect("a time")
        .timestamp();
    let users = ["u1", "u2", "u3", "tail"];
    // Project 1's first three events admit u1, u2 and u3; its later "tail" events go
    // to its long tail. One event in ten has no user; every other batch is imported.
    let mut events: Vec<Ev> = (0..3)
        .map(|i| Ev {
            at: base + 60 * i as i64,
            project: 1,
            user: Some(users[i]),
            source: "API",
            ms: 100,
        })
        .collect();
    for i in 0..60_000 {
        let project = usize::from(i % 4 == 0);
        let choices = if project == 1 { 4 } else { 3 };
        let user = (rng.random_range(0..10) > 0).then(|| {
            if rng.random_range(0..10) < 6 {
                "u1"
            } else {
                users[rng.random_range(0..choices)]
            }
        });
        // Batches of 5,000 are sent in turn through either call.
        let imported = (events.len() / 5_000) % 2 == 1;
        events.push(Ev {
            at: base + rng.random_range(0..3 * 86_400),
            project,
            user,
            source: if imported { "IMPORT" } else { "API" },
            // Sources differ in latency, so that a mix-up shows.
            ms: (20.0 * 1000f64.powf(rng.random::<f64>())).round() as i64
                + if imported { 300 } else { 0 },
        });
    }
    for (n, chunk) in events.chunks(5_000).enumerate() {
        let inputs: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(k, e)| {
                let mut input = json!({"projectId": projects[e.project], "provider": "openai", "model": "gpt-4o",
                    "inputTokens": 10, "latencyMs": e.ms, "occurredAt": time(e.at),
                    "idempotencyKey": format!("e-{n}-{k}")});
                if let Some(u) = e.user {
                    input["user"] = json!(u);
                }
                input
            })
            .collect();
        let import = chunk.iter().all(|e| e.source == "IMPORT");
        assert!(import || chunk.iter().all(|e| e.source == "API"));
        app.store_batch(&inputs, import).await;
    }
    // Unaligned edges: 00:17:23 on the first day to 23:43:11 on the third.
    let range = (
        base + 17 * 60 + 23,
        base + 2 * 86_400 + 23 * 3600 + 43 * 60 + 11,
    );
    let seeded = Seeded {
        app: &app,
        events: &events,
        projects: &projects,
        range,
    };
    let all = |_: &Ev| true;

    // Project 0 never overflowed: its users (and its events without one) come from the
    // per-project sketch.
    let (inexact, counted, groups) = seeded
        .check(
            json!({"projects": [projects[0]]}),
            By::User,
            |e| e.project == 0,
            true,
        )
        .await;
    assert_eq!(groups, ["-", "u1", "u2", "u3"]);
    assert!(counted > 20_000, "{counted} latencies");
    assert!(
        inexact > 0,
        "every percentile was exact: no sketch answered"
    );
    // u1, admitted in both projects, across every project: the sketch of every
    // project together.
    let (inexact, counted, groups) = seeded
        .check(
            json!({"users": ["u1"]}),
            By::User,
            |e| e.user == Some("u1"),
            true,
        )
        .await;
    assert_eq!(groups, ["u1"]);
    assert!(counted > 20_000, "{counted} latencies of u1");
    assert!(
        inexact > 0,
        "every percentile was exact: no sketch answered"
    );
    // Every user of every project: project 1's long tail is in the other bucket, so raw
    // events answer, exactly, with "tail" apart.
    let (_, counted, groups) = seeded.check(json!({}), By::User, all, false).await;
    assert_eq!(groups, ["-", "tail", "u1", "u2", "u3"]);
    assert!(counted > 20_000);
    // A filter naming the user project 1 never admitted, with u2: raw events, exactly.
    let (_, _, groups) = seeded
        .check(
            json!({"users": ["u2", "tail"]}),
            By::User,
            |e| matches!(e.user, Some("u2" | "tail")),
            false,
        )
        .await;
    assert_eq!(groups, ["tail", "u2"]);

    // By source, every project: the sketch of every project together.
    let (inexact, counted, groups) = seeded.check(json!({}), By::Source, all, true).await;
    assert_eq!(groups, ["API", "IMPORT"]);
    assert!(counted > 50_000, "{counted} latencies");
    assert!(
        inexact > 0,
        "every percentile was exact: no sketch answered"
    );
    // The imported events by project: the per-project source sketch.
    let (inexact, counted, groups) = seeded
        .check(
            json!({"sources": ["IMPORT"]}),
            By::Project,
            |e| e.source == "IMPORT",
            true,
        )
        .await;
    assert_eq!(groups.len(), 2);
    assert!(counted > 20_000, "{counted} imported latencies");
    assert!(
        inexact > 0,
        "every percentile was exact: no sketch answered"
    );
    // One source and one user together: no sketch keeps both, so raw events, exactly.
    let both = json!({"sources": ["API"], "users": ["u1"]});
    let (_, raw, _) = seeded
        .check(
            both.clone(),
            By::User,
            |e| e.source == "API" && e.user == Some("u1"),
            false,
        )
        .await;

    // A source filter naming every source of the range is no filter: by model, the
    // model sketches answer (not exact). Naming one of the two sources, it is one:
    // source and model together, raw events answer, exactly.
    let (inexact, counted, groups) = seeded
        .check(json!({"sources": ["API", "IMPORT"]}), By::Model, all, true)
        .await;
    assert_eq!(groups, ["gpt-4o"]);
    assert!(counted > 50_000, "{counted} latencies");
    assert!(
        inexact > 0,
        "every percentile was exact: no sketch answered"
    );
    seeded
        .check(
            json!({"sources": ["IMPORT", "OTLP"]}),
            By::Model,
            |e| e.source == "IMPORT",
            false,
        )
        .await;

    // maxRawLatencies: a question the sketches answer is answered whatever the limit
    // (the raw edges are not counted); one that would read every raw latency of the
    // range is declined when they are more than the limit, with the field and the
    // count named, and answered exactly up to it.
    let u1 = json!({"users": ["u1"]});
    let sketched = seeded.ask(u1.clone(), By::User, Some(0)).await;
    assert_eq!(
        sketched.data(),
        seeded.ask(u1, By::User, None).await.data(),
        "the sketch answers under any limit"
    );
    assert!(sketched.data()["costBreakdown"][0]["latencyP95Ms"].is_i64());
    let n = raw as i64;
    assert!(n > 100, "{n} raw latencies");
    let r = seeded.ask(both.clone(), By::User, Some(n - 1)).await;
    assert_eq!(
        (r.code(), r.field()),
        (
            "INVALID_INPUT".to_owned(),
            Some("maxRawLatencies".to_owned())
        )
    );
    let message = r.errors()[0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains(&format!("would read {n} latencies, more than {}", n - 1)),
        "the count is named: {message}"
    );
    // Up to the limit, the answer checked exact above.
    assert_eq!(
        seeded.ask(both.clone(), By::User, Some(n)).await.data(),
        seeded.ask(both, By::User, None).await.data(),
        "up to the limit, exact from the raw events"
    );
    let r = seeded.ask(json!({}), By::Source, Some(-1)).await;
    assert_eq!(r.field().as_deref(), Some("maxRawLatencies"), "{}", r.body);

    // Migration 000022 undone and run again: its backfill from the events (with the
    // users each project admitted) equals, row for row, what the hook kept.
    app.folded().await;
    let db = &app.state.db;
    let dump = |table: &'static str, column: &'static str, project: bool| {
        crate::analytics::sketch_rows(db, table, column, project)
    };
    let tables = [
        ("usage_latency_user_day_chunks", "end_user", true),
        ("usage_latency_user_global_day_chunks", "end_user", false),
        ("usage_latency_source_day_chunks", "source", true),
        ("usage_latency_source_global_day_chunks", "source", false),
    ];
    let mut kept = Vec::new();
    for (table, column, project) in tables {
        let rows = dump(table, column, project).await;
        assert!(rows.len() >= 3 * 2, "{table}: {} rows", rows.len());
        if column == "end_user" {
            assert!(
                rows.iter().any(|r| r.contains("| other|")),
                "{table} has project 1's long tail"
            );
        }
        kept.push(rows);
    }
    let dropped: Vec<&str> = tables.iter().map(|&(t, _, _)| t).collect();
    crate::analytics::run_again(
        db,
        "m20261208_000022_user_source_latency_sketches",
        &dropped,
    )
    .await;
    for ((table, column, project), rows) in tables.into_iter().zip(kept) {
        assert_eq!(
            dump(table, column, project).await,
            rows,
            "{table} backfilled"
        );
    }
}

backend_tests!(
    user_and_source_percentiles_come_from_their_sketches_and_the_long_tail_from_raw_events
);
