//! `analytics`: summaries, breakdowns, trends and filters on a crafted data set whose
//! answers are worked out by hand, in the TRACKED, REPORTED and BEST views.

use aispend_e2e::{Backend, TestApp, backend_tests, db_tests, spawn_app_with};
use serde_json::{Value, json};

const TOTALS: &str = "costUsd requests inputTokens outputTokens cacheReadTokens totalTokens events unpricedEvents averageCostPerRequestUsd";

async fn event(app: &TestApp, project: &str, fields: Value) {
    let mut input = json!({"projectId": project});
    for (k, v) in fields.as_object().expect("an object") {
        input[k] = v.clone();
    }
    let r = app.record(input).await;
    assert_eq!(r["duplicate"], false, "{r}");
}

/// Three priced events and one unpriced, in two projects.
async fn crafted(app: &TestApp) -> (String, String) {
    let a = app.create_project("alpha").await;
    let b = app.create_project("beta").await;
    event(app, &a, json!({"provider": "openai", "model": "gpt-4o", "endpoint": "chat", "inputTokens": 1000, "outputTokens": 200, "requests": 2,
                           "latencyMs": 100, "occurredAt": "2026-03-02T10:00:00Z", "reportedCostUsd": "1.50", "user": "u1"})).await;
    event(app, &a, json!({"provider": "openai", "model": "gpt-4o", "endpoint": "search", "inputTokens": 3000, "outputTokens": 100, "cacheReadTokens": 500,
                           "latencyMs": 300, "occurredAt": "2026-03-02T11:00:00Z", "reportedCostUsd": "2.50", "user": "u2"})).await;
    event(app, &b, json!({"provider": "anthropic", "model": "claude-sonnet-4-5", "endpoint": "chat", "inputTokens": 10, "outputTokens": 10,
                           "latencyMs": 200, "occurredAt": "2026-03-03T09:00:00Z", "reportedCostUsd": "4"})).await;
    event(app, &b, json!({"provider": "acme", "model": "mystery-1", "endpoint": "chat", "inputTokens": 5, "outputTokens": 5,
                           "occurredAt": "2026-03-03T09:30:00Z"})).await;
    (a, b)
}

const MARCH: &str = r#"{"from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}"#;

fn march() -> Value {
    serde_json::from_str(MARCH).expect("json")
}

async fn summary_totals_every_class_and_counts_unpriced_events(app: TestApp) {
    crafted(&app).await;
    let r = app
        .admin(&format!("query($f: UsageFilter) {{ costSummary(filter: $f) {{ basis totals {{ {TOTALS} }} providers {{ provider totals {{ costUsd requests }} }} }} }}"), json!({"f": march()}))
        .await;
    let s = &r.data()["costSummary"];
    assert_eq!(s["basis"], "TRACKED");
    assert_eq!(
        s["totals"],
        json!({"costUsd": "8", "requests": 5, "inputTokens": 4015, "outputTokens": 315, "cacheReadTokens": 500,
               "totalTokens": 4830, "events": 4, "unpricedEvents": 1, "averageCostPerRequestUsd": "1.6"})
    );
    assert_eq!(
        s["providers"],
        json!([
            {"provider": "acme", "totals": {"costUsd": "0", "requests": 1}},
            {"provider": "anthropic", "totals": {"costUsd": "4", "requests": 1}},
            {"provider": "openai", "totals": {"costUsd": "4", "requests": 3}}
        ])
    );
    // Only the measures asked for are read, fragments included: through a named and
    // an inline fragment the totals are the same as written inline.
    let r = app
        .admin(
            "query($f: UsageFilter) { costSummary(filter: $f) { totals { ...t } providers { provider totals { ... on CostTotals { totalTokens } } } } \
             costBreakdown(filter: $f, groupBy: [MODEL]) { model latencyAvgMs } \
             costTrend(filter: $f, granularity: MONTH) { totals { ...t } } } \
             fragment t on CostTotals { costUsd requests cacheReadTokens averageCostPerRequestUsd }",
            json!({"f": march()}),
        )
        .await;
    let d = r.data();
    let t = json!({"costUsd": "8", "requests": 5, "cacheReadTokens": 500, "averageCostPerRequestUsd": "1.6"});
    assert_eq!(d["costSummary"]["totals"], t);
    assert_eq!(d["costTrend"], json!([{"totals": t}]));
    assert_eq!(
        d["costSummary"]["providers"],
        json!([
            {"provider": "acme", "totals": {"totalTokens": 10}},
            {"provider": "anthropic", "totals": {"totalTokens": 20}},
            {"provider": "openai", "totals": {"totalTokens": 4800}}
        ])
    );
    assert_eq!(
        d["costBreakdown"],
        json!([
            {"model": "claude-sonnet-4-5", "latencyAvgMs": 200.0},
            {"model": "gpt-4o", "latencyAvgMs": 200.0},
            {"model": "mystery-1", "latencyAvgMs": null}
        ])
    );
    // An empty range is zero, not an error.
    let empty = app
        .admin("{ costSummary(filter: {from: \"2025-01-01T00:00:00Z\", to: \"2025-02-01T00:00:00Z\"}) { basis totals { costUsd requests averageCostPerRequestUsd } } }", json!({}))
        .await;
    assert_eq!(
        empty.data()["costSummary"],
        json!({"basis": null, "totals": {"costUsd": "0", "requests": 0, "averageCostPerRequestUsd": null}})
    );
    let backwards = app
        .admin("{ costSummary(filter: {from: \"2026-04-01T00:00:00Z\", to: \"2026-03-01T00:00:00Z\"}) { basis } }", json!({}))
        .await;
    assert_eq!(backwards.code(), "INVALID_DATE_RANGE");
}

async fn breakdowns_group_by_several_dimensions_with_shares_and_latency(app: TestApp) {
    crafted(&app).await;
    let r = app
        .admin(
            "query($f: UsageFilter) { costBreakdown(filter: $f, groupBy: [PROVIDER, ENDPOINT]) { provider endpoint model sharePct totals { costUsd requests } latencyAvgMs latencyP50Ms latencyP95Ms } }",
            json!({"f": march()}),
        )
        .await;
    assert_eq!(
        r.data()["costBreakdown"],
        json!([
            {"provider": "anthropic", "endpoint": "chat", "model": null, "sharePct": "50", "totals": {"costUsd": "4", "requests": 1}, "latencyAvgMs": 200.0, "latencyP50Ms": 200, "latencyP95Ms": 200},
            {"provider": "openai", "endpoint": "search", "model": null, "sharePct": "31.25", "totals": {"costUsd": "2.5", "requests": 1}, "latencyAvgMs": 300.0, "latencyP50Ms": 300, "latencyP95Ms": 300},
            {"provider": "openai", "endpoint": "chat", "model": null, "sharePct": "18.75", "totals": {"costUsd": "1.5", "requests": 2}, "latencyAvgMs": 100.0, "latencyP50Ms": 100, "latencyP95Ms": 100},
            {"provider": "acme", "endpoint": "chat", "model": null, "sharePct": "0", "totals": {"costUsd": "0", "requests": 1}, "latencyAvgMs": null, "latencyP50Ms": null, "latencyP95Ms": null}
        ])
    );
    let by_model = app
        .admin("query($f: UsageFilter) { costBreakdown(filter: $f, groupBy: [MODEL]) { model latencyP50Ms latencyP95Ms } }", json!({"f": march()}))
        .await;
    let openai = by_model.data()["costBreakdown"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["model"] == "gpt-4o").cloned())
        .expect("gpt-4o");
    // Latencies 100 and 300: nearest-rank median 100, p95 300.
    assert_eq!(
        (
            openai["latencyP50Ms"].as_i64(),
            openai["latencyP95Ms"].as_i64()
        ),
        (Some(100), Some(300))
    );
    let none = app
        .admin("{ costBreakdown(groupBy: []) { sharePct } }", json!({}))
        .await;
    assert_eq!(none.code(), "INVALID_INPUT");
}

async fn trends_fill_zero_buckets_in_a_time_zone_across_dst(app: TestApp) {
    let p = app.create_project("dst").await;
    // 00:30 local in Berlin on March 29 (CET, UTC+1) and on March 30 (CEST, UTC+2).
    event(&app, &p, json!({"provider": "openai", "model": "gpt-4o", "inputTokens": 1, "occurredAt": "2026-03-28T23:30:00Z", "reportedCostUsd": "1"})).await;
    event(&app, &p, json!({"provider": "openai", "model": "gpt-4o", "inputTokens": 1, "occurredAt": "2026-03-29T22:30:00Z", "reportedCostUsd": "2"})).await;
    let r = app
        .admin(
            "{ costTrend(filter: {from: \"2026-03-28T00:00:00Z\", to: \"2026-03-31T00:00:00Z\"}, granularity: DAY, timezone: \"Europe/Berlin\") { start end basis totals { costUsd requests } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        r.data()["costTrend"],
        json!([
            {"start": "2026-03-27T23:00:00Z", "end": "2026-03-28T23:00:00Z", "basis": null, "totals": {"costUsd": "0", "requests": 0}},
            {"start": "2026-03-28T23:00:00Z", "end": "2026-03-29T22:00:00Z", "basis": "TRACKED", "totals": {"costUsd": "1", "requests": 1}},
            {"start": "2026-03-29T22:00:00Z", "end": "2026-03-30T22:00:00Z", "basis": "TRACKED", "totals": {"costUsd": "2", "requests": 1}},
            // `to` (00:00 UTC) is 02:00 on March 31 in Berlin: that day's bucket starts before it.
            {"start": "2026-03-30T22:00:00Z", "end": "2026-03-31T22:00:00Z", "basis": null, "totals": {"costUsd": "0", "requests": 0}}
        ])
    );
    // In UTC both fall on other days.
    let utc = app
        .admin("{ costTrend(filter: {from: \"2026-03-28T00:00:00Z\", to: \"2026-03-31T00:00:00Z\"}, granularity: DAY) { start totals { costUsd } } }", json!({}))
        .await;
    let costs: Vec<&str> = utc.data()["costTrend"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|b| b["totals"]["costUsd"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(costs, ["1", "2", "0"]);
    let bad = app
        .admin("{ costTrend(filter: {from: \"2026-03-28T00:00:00Z\", to: \"2026-03-31T00:00:00Z\"}, granularity: DAY, timezone: \"Mars/Olympus\") { start } }", json!({}))
        .await;
    assert_eq!(bad.code(), "INVALID_INPUT");
    let week = app
        .admin("{ costTrend(filter: {from: \"2026-03-25T00:00:00Z\", to: \"2026-04-01T00:00:00Z\"}, granularity: WEEK) { start totals { costUsd } } }", json!({}))
        .await;
    assert_eq!(
        week.data()["costTrend"][0]["start"],
        "2026-03-23T00:00:00Z",
        "weeks start on Monday"
    );
}

async fn reported_and_best_views_never_add_tracked_and_reported(app: TestApp) {
    let p = app.create_project("views").await;
    event(&app, &p, json!({"provider": "openai", "model": "gpt-4o", "inputTokens": 100, "occurredAt": "2026-03-01T10:00:00Z", "reportedCostUsd": "10"})).await;
    event(&app, &p, json!({"provider": "openai", "model": "gpt-4o", "inputTokens": 100, "occurredAt": "2026-03-02T10:00:00Z", "reportedCostUsd": "10"})).await;
    // OpenAI reported (billed) $12 for March 1; March 2 is not reported yet.
    let r = app
        .admin(
            "mutation($i: ManualUsageInput!) { recordManualUsage(input: $i) { id } }",
            json!({"i": {"provider": "openai", "projectId": p, "from": "2026-03-01T00:00:00Z", "to": "2026-03-02T00:00:00Z", "model": "gpt-4o", "amountUsd": "12", "inputTokens": 110}}),
        )
        .await;
    assert!(r.data()["recordManualUsage"]["id"].is_string());
    // A $30 monthly seat plan: 30/31 a day, the first 15 days one nano-dollar more.
    let plan = app
        .admin(
            "mutation($p: ID) { createSubscriptionCost(input: {provider: \"github-copilot\", plan: \"Business\", amountUsd: \"30\", period: MONTHLY, startsOn: \"2026-03-01\", projectId: $p}) { id } }",
            json!({"p": p}),
        )
        .await;
    assert!(plan.data()["createSubscriptionCost"]["id"].is_string());
    let window = json!({"from": "2026-03-01T00:00:00Z", "to": "2026-03-03T00:00:00Z"});
    let summary = |view: &'static str| {
        let app = &app;
        let window = window.clone();
        async move {
            app.admin(
                &format!("query($f: UsageFilter) {{ costSummary(filter: $f, view: {view}) {{ basis totals {{ costUsd }} providers {{ provider totals {{ costUsd }} }} }} }}"),
                json!({"f": window}),
            )
            .await
            .data()["costSummary"]
                .clone()
        }
    };
    let tracked = summary("TRACKED").await;
    assert_eq!(tracked["totals"]["costUsd"], "20");
    let reported = summary("REPORTED").await;
    assert_eq!(reported["basis"], "REPORTED");
    assert_eq!(reported["totals"]["costUsd"], "13.935483872");
    let best = summary("BEST").await;
    assert_eq!(best["basis"], "MIXED");
    // March 1 from the report (12), March 2 tracked (10), the plan's two days.
    assert_eq!(best["totals"]["costUsd"], "23.935483872");
    assert_eq!(
        best["providers"],
        json!([{"provider": "github-copilot", "totals": {"costUsd": "1.935483872"}}, {"provider": "openai", "totals": {"costUsd": "22"}}])
    );
    let trend = app
        .admin(
            "query($f: UsageFilter!) { costTrend(filter: $f, granularity: DAY, view: BEST) { start basis totals { costUsd } } }",
            json!({"f": {"from": "2026-03-01T00:00:00Z", "to": "2026-03-03T00:00:00Z", "providers": ["openai"]}}),
        )
        .await;
    assert_eq!(
        trend.data()["costTrend"],
        json!([
            {"start": "2026-03-01T00:00:00Z", "basis": "REPORTED", "totals": {"costUsd": "12"}},
            {"start": "2026-03-02T00:00:00Z", "basis": "TRACKED", "totals": {"costUsd": "10"}}
        ])
    );
    let refused = app
        .admin(
            "{ costSummary(filter: {endpoints: [\"chat\"]}, view: REPORTED) { basis } }",
            json!({}),
        )
        .await;
    assert_eq!(refused.code(), "INVALID_INPUT");
    assert_eq!(refused.field().as_deref(), Some("filter.endpoints"));
}

async fn filters_list_what_the_caller_can_see(app: TestApp) {
    let (a, _) = crafted(&app).await;
    let r = app
        .admin(
            "{ filters { providers models endpoints users projects } }",
            json!({}),
        )
        .await;
    let f = &r.data()["filters"];
    assert_eq!(f["providers"], json!(["acme", "anthropic", "openai"]));
    assert_eq!(
        f["models"],
        json!(["claude-sonnet-4-5", "gpt-4o", "mystery-1"])
    );
    assert_eq!(f["endpoints"], json!(["chat", "search"]));
    assert_eq!(f["users"], json!(["u1", "u2"]));
    assert_eq!(f["projects"].as_array().map(Vec::len), Some(2));
    let reader = app.create_token(Some(&a), &["READ"]).await;
    let scoped = app
        .graphql(
            Some(&reader),
            "{ filters { providers projects } costSummary { totals { costUsd } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        scoped.data()["filters"],
        json!({"providers": ["openai"], "projects": [a]})
    );
    assert_eq!(scoped.data()["costSummary"]["totals"]["costUsd"], "4");
    let ingest = app.create_token(Some(&a), &["INGEST"]).await;
    let refused = app
        .graphql(Some(&ingest), "{ filters { providers } }", json!({}))
        .await;
    assert_eq!(refused.code(), "FORBIDDEN");
}

/// Nearest-rank percentile of sorted values.
pub(crate) fn nearest_rank(sorted: &[i64], p: usize) -> i64 {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// A breakdown group's `latencyP50Ms` and `latencyP95Ms` against the exact
/// nearest-rank ones of its `sorted` latencies: within 1 % plus half a millisecond
/// when `within` (a sketch's guarantee), else equal. `what` names the group and the
/// question in a failure. Returns how many of the two were not exact.
pub(crate) fn check_percentiles(group: &Value, sorted: &[i64], within: bool, what: &str) -> usize {
    let mut inexact = 0;
    for (got, p) in [(&group["latencyP50Ms"], 50), (&group["latencyP95Ms"], 95)] {
        let (got, want) = (got.as_i64().expect("a percentile"), nearest_rank(sorted, p));
        if within {
            assert!(
                (got - want).abs() as f64 <= 0.01 * want as f64 + 0.5,
                "{what} p{p}: {got} against the exact {want}"
            );
        } else {
            assert_eq!(got, want, "{what} p{p}: exact");
        }
        inexact += usize::from(got != want);
    }
    inexact
}

/// Above `EXACT_PERCENTILES_UP_TO` latencies in the range, p50 and p95 come from the
/// latency sketches (whole days, hours at the edges, raw events inside the edge
/// hours): each within 1 % of the exact value plus half a millisecond, as the schema
/// promises, and not all of them exact (so the sketches answered). A short range
/// below the limit is exact.
async fn percentiles_of_many_events_come_from_the_sketches_within_one_percent(app: TestApp) {
    use rand::{Rng, SeedableRng};
    let project = app.create_project("sketched").await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261206);
    let base = chrono::DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
        .expect("a time")
        .timestamp();
    let models = ["gpt-4o", "gpt-4o-mini"];
    // (at, model index, latency ms): latencies spread log-uniformly over 20 ms .. 20 s.
    let events: Vec<(i64, usize, i64)> = (0..30_000)
        .map(|_| {
            let at = base + rng.random_range(0..3 * 86_400);
            let ms = (20.0 * 1000f64.powf(rng.random::<f64>())).round() as i64;
            (at, rng.random_range(0..2), ms)
        })
        .collect();
    for chunk in events.chunks(5_000) {
        let inputs: Vec<Value> = chunk
            .iter()
            .map(|&(at, m, ms)| {
                json!({"projectId": project, "provider": "openai", "model": models[m], "inputTokens": 10,
                       "latencyMs": ms, "occurredAt": chrono::DateTime::from_timestamp(at, 0).expect("a time").to_rfc3339()})
            })
            .collect();
        let r = app
            .admin(
                "mutation($i: [UsageInput!]!) { recordUsageBatch(inputs: $i) { accepted } }",
                json!({"i": inputs}),
            )
            .await;
        assert_eq!(r.data()["recordUsageBatch"]["accepted"], chunk.len());
    }
    let ask = |from: i64, to: i64, projects: Value| {
        let app = &app;
        async move {
            let time = |t: i64| {
                chrono::DateTime::from_timestamp(t, 0)
                    .expect("a time")
                    .to_rfc3339()
            };
            app.admin(
                "query($f: UsageFilter) { costBreakdown(filter: $f, groupBy: [MODEL]) { model latencyP50Ms latencyP95Ms } }",
                json!({"f": {"from": time(from), "to": time(to), "projects": projects}}),
            )
            .await
            .data()["costBreakdown"]
                .as_array()
                .expect("groups")
                .clone()
        }
    };
    let exact = |from: i64, to: i64, model: &str| {
        let mut v: Vec<i64> = events
            .iter()
            .filter(|e| e.0 >= from && e.0 < to && models[e.1] == model)
            .map(|e| e.2)
            .collect();
        v.sort_unstable();
        (nearest_rank(&v, 50), nearest_rank(&v, 95), v.len())
    };
    // Unaligned edges: 05:17:23 on the first day to 19:43:11 on the third.
    let (from, to) = (
        base + 5 * 3600 + 17 * 60 + 23,
        base + 2 * 86_400 + 19 * 3600 + 43 * 60 + 11,
    );
    // Every project together (whole days from the sketch of all projects), then the
    // one project by id (from the per-project sketch): the same events.
    for projects in [json!(null), json!([project])] {
        let mut inexact = 0;
        let mut counted = 0;
        for g in ask(from, to, projects.clone()).await {
            let model = g["model"].as_str().expect("a model");
            let (p50, p95, n) = exact(from, to, model);
            counted += n;
            for (got, want) in [(&g["latencyP50Ms"], p50), (&g["latencyP95Ms"], p95)] {
                let got = got.as_i64().expect("a percentile");
                let bound = 0.01 * want as f64 + 0.5;
                assert!(
                    (got - want).abs() as f64 <= bound,
                    "{model} ({projects}): {got} against the exact {want}"
                );
                inexact += usize::from(got != want);
            }
        }
        assert!(counted > 20_000, "the range holds {counted} latencies");
        assert!(
            inexact > 0,
            "every percentile was exact: the sketches did not answer"
        );
    }
    // Three weeks before the events to a time inside their last day, for the project:
    // one week of the weekly sketch holds them all (2026-02-26 to 2026-03-05, weeks
    // start on the epoch's Thursday), and the days and hours after the range's end
    // are subtracted from it.
    let wide = (base - 21 * 86_400 + 5 * 3600 + 17 * 60 + 23, to);
    let answer = ask(wide.0, wide.1, json!([project])).await;
    let mut counted = 0;
    for g in &answer {
        let model = g["model"].as_str().expect("a model");
        let (p50, p95, n) = exact(wide.0, wide.1, model);
        counted += n;
        for (got, want) in [(&g["latencyP50Ms"], p50), (&g["latencyP95Ms"], p95)] {
            let got = got.as_i64().expect("a percentile");
            assert!(
                (got - want).abs() as f64 <= 0.01 * want as f64 + 0.5,
                "{model} over weeks: {got} against the exact {want}"
            );
        }
    }
    assert!(counted > 20_000, "the range holds {counted} latencies");
    // Without the weekly sketch's rows the same question loses every latency: the week
    // answered it.
    app.folded().await;
    let db = &app.state.db;
    sea_orm::ConnectionTrait::execute_unprepared(db, "DELETE FROM usage_latency_week_chunks")
        .await
        .expect("emptying the weekly sketch");
    let again = ask(wide.0, wide.1, json!([project])).await;
    assert_eq!(again.len(), answer.len(), "the sums still answer");
    for g in again {
        assert_eq!(
            (g["latencyP50Ms"].as_i64(), g["latencyP95Ms"].as_i64()),
            (None, None),
            "{g}: answered without the weekly sketch"
        );
    }
    // Six hours: fewer than 20,000 latencies, so exact.
    let (from, to) = (base + 86_400 + 600, base + 86_400 + 6 * 3600 + 600);
    for g in ask(from, to, json!(null)).await {
        let model = g["model"].as_str().expect("a model");
        let (p50, p95, _) = exact(from, to, model);
        assert_eq!(
            (g["latencyP50Ms"].as_i64(), g["latencyP95Ms"].as_i64()),
            (Some(p50), Some(p95)),
            "{model}"
        );
    }
}

db_tests!(
    percentiles_of_many_events_come_from_the_sketches_within_one_percent,
    summary_totals_every_class_and_counts_unpriced_events,
    breakdowns_group_by_several_dimensions_with_shares_and_latency,
    trends_fill_zero_buckets_in_a_time_zone_across_dst,
    reported_and_best_views_never_add_tracked_and_reported,
    filters_list_what_the_caller_can_see,
    rollup_answers_equal_sums_of_the_events_for_random_ranges,
    endpoint_breakdowns_over_weeks_equal_sums_of_the_events
);

/// Breakdowns by endpoint across projects over ranges of weeks (whole weeks from
/// `usage_rollup_endpoint_global_weeks`, days and hours at the edges, open ends too)
/// equal summing the inputs, also after a re-pricing, as does one endpoint's daily trend
/// in Europe/Berlin (from `usage_rollup_endpoint_global_hours`); the backfills of
/// migrations 000020 and 000021 equal what the hook kept.
async fn endpoint_breakdowns_over_weeks_equal_sums_of_the_events(app: TestApp) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261208);
    let projects = [
        app.create_project("w1").await,
        app.create_project("w2").await,
    ];
    let models = [("openai", "gpt-4o"), ("acme", "acme-x")];
    let endpoints = ["chat", "search", "embed"];
    let base = chrono::DateTime::parse_from_rfc3339("2026-01-03T00:00:00Z")
        .expect("a time")
        .timestamp();
    // (at, endpoint, model index, cost nanos or None)
    let mut events: Vec<(i64, &str, usize, Option<i64>)> = Vec::new();
    let mut batch = Vec::new();
    for i in 0..600 {
        let at = base + rng.random_range(0..45 * 86_400);
        let endpoint = endpoints[rng.random_range(0..3)];
        let m = rng.random_range(0..2);
        let (provider, model) = models[m];
        let cents: i64 = rng.random_range(1..1_000);
        let mut e = json!({"projectId": projects[rng.random_range(0..2)], "provider": provider, "model": model,
                           "inputTokens": 100, "endpoint": endpoint,
                           "occurredAt": chrono::DateTime::from_timestamp(at, 0).expect("a time").to_rfc3339(),
                           "idempotencyKey": format!("w{i}")});
        let cost = (m == 0).then(|| {
            e["reportedCostUsd"] = json!(format!("{}.{:02}", cents / 100, cents % 100));
            cents * 10_000_000
        });
        events.push((at, endpoint, m, cost));
        batch.push(e);
    }
    for chunk in batch.chunks(200) {
        let r = app
            .admin(
                "mutation($i: [UsageInput!]!) { recordUsageBatch(inputs: $i) { accepted } }",
                json!({"i": chunk}),
            )
            .await;
        assert_eq!(r.data()["recordUsageBatch"]["accepted"], 200);
    }
    let check = |events: Vec<(i64, &'static str, usize, Option<i64>)>, seed: u64| {
        let app = &app;
        async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            for round in 0..12 {
                let a = base - 86_400 + rng.random_range(0..20 * 86_400);
                let b = a + rng.random_range(8 * 86_400..35 * 86_400);
                // The first round has no start, the second no end.
                let (from, to) = match round {
                    0 => (None, Some(b)),
                    1 => (Some(a), None),
                    _ => (Some(a), Some(b)),
                };
                let time = |t: i64| {
                    chrono::DateTime::from_timestamp(t, 0)
                        .expect("a time")
                        .to_rfc3339()
                };
                let mut filter = json!({});
                if let Some(f) = from {
                    filter["from"] = json!(time(f));
                }
                if let Some(t) = to {
                    filter["to"] = json!(time(t));
                }
                let groups = app
                    .admin(
                        "query($f: UsageFilter) { costBreakdown(filter: $f, groupBy: [ENDPOINT]) { endpoint totals { costUsd events unpricedEvents } } }",
                        json!({"f": filter}),
                    )
                    .await
                    .data()["costBreakdown"]
                    .as_array()
                    .expect("groups")
                    .clone();
                for endpoint in ["chat", "search", "embed"] {
                    let inside: Vec<_> = events
                        .iter()
                        .filter(|e| {
                            e.1 == endpoint
                                && from.is_none_or(|f| e.0 >= f)
                                && to.is_none_or(|t| e.0 < t)
                        })
                        .collect();
                    let g = groups
                        .iter()
                        .find(|g| g["endpoint"] == endpoint)
                        .unwrap_or_else(|| panic!("{endpoint} missing for {filter}"));
                    let cost: i64 = inside.iter().filter_map(|e| e.3).sum();
                    assert_eq!(
                        g["totals"]["costUsd"],
                        rust_decimal::Decimal::new(cost, 9)
                            .normalize()
                            .to_string()
                            .as_str(),
                        "{endpoint} {filter}"
                    );
                    assert_eq!(g["totals"]["events"].as_i64(), Some(inside.len() as i64));
                    assert_eq!(
                        g["totals"]["unpricedEvents"].as_i64(),
                        Some(inside.iter().filter(|e| e.3.is_none()).count() as i64)
                    );
                }
            }
            // One endpoint's daily trend in Europe/Berlin (UTC+1 all through these
            // weeks): local days start at 23:00 UTC, so it is summed in hours, from
            // `usage_rollup_endpoint_global_hours`.
            let (from, to) = (base + 2 * 86_400 - 3_600, base + 38 * 86_400 - 3_600);
            let trend = app
                .admin(
                    "query($f: UsageFilter!) { costTrend(filter: $f, granularity: DAY, timezone: \"Europe/Berlin\") { start totals { costUsd events } } }",
                    json!({"f": {"endpoints": ["chat"],
                                 "from": chrono::DateTime::from_timestamp(from, 0).expect("a time").to_rfc3339(),
                                 "to": chrono::DateTime::from_timestamp(to, 0).expect("a time").to_rfc3339()}}),
                )
                .await;
            let got: std::collections::BTreeMap<i64, (String, i64)> = trend.data()["costTrend"]
                .as_array()
                .expect("buckets")
                .iter()
                .filter(|b| b["totals"]["events"].as_i64() != Some(0))
                .map(|b| {
                    let start =
                        chrono::DateTime::parse_from_rfc3339(b["start"].as_str().expect("a start"))
                            .expect("a time")
                            .timestamp();
                    let cost = b["totals"]["costUsd"].as_str().expect("a cost").to_owned();
                    (start, (cost, b["totals"]["events"].as_i64().unwrap_or(-1)))
                })
                .collect();
            let mut sums: std::collections::BTreeMap<i64, (i64, i64)> = Default::default();
            for e in events
                .iter()
                .filter(|e| e.1 == "chat" && e.0 >= from && e.0 < to)
            {
                let local_day = (e.0 + 3_600).div_euclid(86_400) * 86_400 - 3_600;
                let s = sums.entry(local_day).or_default();
                s.0 += e.3.unwrap_or(0);
                s.1 += 1;
            }
            let want: std::collections::BTreeMap<i64, (String, i64)> = sums
                .into_iter()
                .map(|(day, (cost, n))| {
                    (
                        day,
                        (
                            rust_decimal::Decimal::new(cost, 9).normalize().to_string(),
                            n,
                        ),
                    )
                })
                .collect();
            assert!(
                want.len() >= 30,
                "{} local days with chat events",
                want.len()
            );
            assert_eq!(got, want, "chat by Berlin day");
        }
    };
    check(events.clone(), 1).await;
    // A price for acme appears: the re-pricing moves its costs into every rollup.
    app.admin(
        r#"mutation { upsertPrice(input: {provider: "acme", model: "acme-x", standard: {input: "1000"}}) { id } }"#,
        json!({}),
    )
    .await
    .data();
    let repriced: Vec<_> = events
        .into_iter()
        .map(|mut e| {
            if e.2 == 1 {
                e.3 = Some(100 * 1_000_000);
            }
            e
        })
        .collect();
    check(repriced.clone(), 2).await;

    // Migration 000020 undone and run again: its backfill from the daily rollup equals,
    // row for row, what the hook kept.
    use sea_orm::ConnectionTrait;
    app.folded().await;
    let db = &app.state.db;
    let measures: Vec<String> = aispend::domain::rollup::COLUMNS
        .iter()
        .map(|c| format!("CAST({c}_hi AS TEXT) || ':' || CAST({c} AS TEXT)"))
        .collect();
    // A table's rows as text, key and every measure, in order.
    let dump = |keys: &'static str, table: &'static str| {
        let sql = format!(
            "SELECT {keys} || '|' || {} FROM {table} ORDER BY 1",
            measures.join(" || '|' || ")
        );
        async move {
            db.query_all_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                sql,
            ))
            .await
            .expect("the rollup's rows")
            .into_iter()
            .map(|r| r.try_get_by_index::<String>(0).expect("a row"))
            .collect::<Vec<_>>()
        }
    };
    const WEEKS: (&str, &str) = (
        "CAST(week AS TEXT) || '|' || provider || '|' || model || '|' || endpoint",
        "usage_rollup_endpoint_global_weeks",
    );
    const HOURS: (&str, &str) = (
        "CAST(hour AS TEXT) || '|' || provider || '|' || endpoint",
        "usage_rollup_endpoint_global_hours",
    );
    let kept = dump(WEEKS.0, WEEKS.1).await;
    assert!(
        kept.len() >= 7 * 3,
        "seven weeks, three endpoints: {} rows",
        kept.len()
    );
    run_again(
        db,
        "m20261207_000020_endpoint_global_weeks",
        &["usage_rollup_endpoint_global_weeks"],
    )
    .await;
    assert_eq!(dump(WEEKS.0, WEEKS.1).await, kept, "backfilled");
    // Migration 000021 the same way: the hourly endpoint rollup of every project.
    let kept_hours = dump(HOURS.0, HOURS.1).await;
    assert!(kept_hours.len() >= 500, "{} hourly rows", kept_hours.len());
    run_again(
        db,
        "m20261207_000021_endpoint_global_hours",
        &["usage_rollup_endpoint_global_hours"],
    )
    .await;
    assert_eq!(dump(HOURS.0, HOURS.1).await, kept_hours, "hours backfilled");
    check(repriced, 3).await;
}

backend_tests!(
    attribute_rollups_equal_the_group_by_and_the_long_tail_reads_raw_events,
    endpoint_percentiles_come_from_the_endpoint_sketches_and_the_long_tail_from_raw_events,
    filters_and_event_counts_hold_the_long_tail_of_an_overflowed_project
);

/// With room for two endpoints and two end users per project, `filters` (read from
/// the rollups) still lists every value of the events, the long tail of an overflowed
/// project included, each caller only its own; `usageEvents.totalCount` (counted from
/// the rollups) equals the events of the filter, long-tail values and edges inside a
/// day included.
async fn filters_and_event_counts_hold_the_long_tail_of_an_overflowed_project(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.limits.rollup_distinct_values = 2).await;
    let (a, b) = (
        app.create_project("roomy").await,
        app.create_project("overflowing").await,
    );
    // (project, provider, model, endpoint, user, hour of 2026-03-02)
    let events = [
        (&a, "openai", "gpt-4o", Some("chat"), Some("u1"), 1),
        (&a, "openai", "gpt-4o-mini", Some("search"), None, 5),
        (
            &b,
            "anthropic",
            "claude-sonnet-4-5",
            Some("chat"),
            Some("u2"),
            2,
        ),
        (
            &b,
            "anthropic",
            "claude-sonnet-4-5",
            Some("embed"),
            Some("u3"),
            3,
        ),
        (
            &b,
            "anthropic",
            "claude-sonnet-4-5",
            Some("tail-1"),
            Some("u4"),
            30,
        ),
        (&b, "openai", "gpt-4o", Some("tail-2"), Some("u5"), 50),
        (&b, "openai", "gpt-4o", None, None, 51),
    ];
    for (project, provider, model, endpoint, user, hour) in events {
        let mut e = json!({"provider": provider, "model": model, "inputTokens": 10,
                           "occurredAt": format!("2026-03-{:02}T{:02}:17:00Z", 2 + hour / 24, hour % 24)});
        if let Some(x) = endpoint {
            e["endpoint"] = json!(x);
        }
        if let Some(u) = user {
            e["user"] = json!(u);
        }
        event(&app, project, e).await;
    }
    let all = app
        .admin(
            "{ filters { providers models endpoints users projects } }",
            json!({}),
        )
        .await;
    let mut projects = vec![a.clone(), b.clone()];
    projects.sort();
    assert_eq!(
        all.data()["filters"],
        json!({"providers": ["anthropic", "openai"],
               "models": ["claude-sonnet-4-5", "gpt-4o", "gpt-4o-mini"],
               "endpoints": ["chat", "embed", "search", "tail-1", "tail-2"],
               "users": ["u1", "u2", "u3", "u4", "u5"],
               "projects": projects})
    );
    let (reader_a, reader_b) = (
        app.create_token(Some(&a), &["READ"]).await,
        app.create_token(Some(&b), &["READ"]).await,
    );
    let own = |token: String| {
        let app = &app;
        async move {
            app.graphql(
                Some(&token),
                "{ filters { providers models endpoints users projects } }",
                json!({}),
            )
            .await
            .data()["filters"]
                .clone()
        }
    };
    assert_eq!(
        own(reader_a).await,
        json!({"providers": ["openai"], "models": ["gpt-4o", "gpt-4o-mini"],
               "endpoints": ["chat", "search"], "users": ["u1"], "projects": [a]})
    );
    assert_eq!(
        own(reader_b).await,
        json!({"providers": ["anthropic", "openai"], "models": ["claude-sonnet-4-5", "gpt-4o"],
               "endpoints": ["chat", "embed", "tail-1", "tail-2"], "users": ["u2", "u3", "u4", "u5"], "projects": [b]})
    );
    // Counts: whole days, edges inside a day, a long-tail endpoint and user.
    let count = |filter: Value| {
        let app = &app;
        async move {
            app.admin(
                "query($f: UsageFilter!) { usageEvents(filter: $f, first: 1) { totalCount } }",
                json!({"f": filter}),
            )
            .await
            .data()["usageEvents"]["totalCount"]
                .as_i64()
        }
    };
    let day = json!({"from": "2026-03-02T00:00:00Z", "to": "2026-03-05T00:00:00Z"});
    assert_eq!(count(day.clone()).await, Some(7));
    assert_eq!(
        count(json!({"from": "2026-03-02T02:30:00Z", "to": "2026-03-04T03:00:00Z"})).await,
        Some(4)
    );
    let mut tail = day.clone();
    tail["endpoints"] = json!(["tail-2", "chat"]);
    assert_eq!(count(tail).await, Some(3));
    let mut users = day;
    users["users"] = json!(["u4"]);
    users["projects"] = json!([b]);
    assert_eq!(count(users).await, Some(1));
}

/// Every row of the latency sketch `table` keyed by `column`, as text in order: the
/// project by name (`-` in a table of every project together, `per_project` false),
/// the day, the value, the chunk and its counts.
pub(crate) async fn sketch_rows(
    db: &sea_orm::DatabaseConnection,
    table: &str,
    column: &str,
    per_project: bool,
) -> Vec<String> {
    use sea_orm::{ConnectionTrait, Statement};
    let counts: Vec<String> = migration::sketch::COUNT_COLUMNS
        .iter()
        .map(|c| format!("CAST({c} AS TEXT)"))
        .collect();
    // By name: a project id's type differs between the engines.
    let project = if per_project {
        "(SELECT name FROM projects WHERE id = project_id)"
    } else {
        "'-'"
    };
    let sql = format!(
        "SELECT {project} || '|' || CAST(day AS TEXT) || '|' || {column} || '|' || CAST(chunk AS TEXT) || '|' || {} FROM {table} ORDER BY 1",
        counts.join(" || ',' || ")
    );
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("a sketch's rows")
        .into_iter()
        .map(|r| r.try_get_by_index::<String>(0).expect("a row"))
        .collect()
}

/// Undoes a migration that only created `tables` (dropped in that order) and runs the
/// migrations again, so that it backfills them afresh from what is stored.
pub(crate) async fn run_again(db: &sea_orm::DatabaseConnection, version: &str, tables: &[&str]) {
    use sea_orm::{ConnectionTrait, Statement};
    let mut statements: Vec<String> = tables.iter().map(|t| format!("DROP TABLE {t}")).collect();
    statements.push(format!(
        "DELETE FROM seaql_migrations WHERE version = '{version}'"
    ));
    for sql in statements {
        db.execute_raw(Statement::from_string(
            db.get_database_backend(),
            sql.clone(),
        ))
        .await
        .expect(&sql);
    }
    aispend::db::migrate(db)
        .await
        .unwrap_or_else(|e| panic!("{version} again: {e}"));
}

/// Percentiles by endpoint above `EXACT_PERCENTILES_UP_TO` latencies come from the
/// endpoint sketches (whole days, raw events at the edges), within 1 % of the exact
/// value plus half a millisecond and not all exact; with room for three endpoints per
/// project, a question that meets a project's long tail (the `' other'` bucket, or a
/// filter on an endpoint it never admitted) is answered exactly from raw events.
async fn endpoint_percentiles_come_from_the_endpoint_sketches_and_the_long_tail_from_raw_events(
    backend: Backend,
) {
    use rand::{Rng, SeedableRng};
    let app = spawn_app_with(backend, |s| s.limits.rollup_distinct_values = 3).await;
    let (a, b) = (
        app.create_project("three-endpoints").await,
        app.create_project("long-tail").await,
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261207);
    let base = chrono::DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
        .expect("a time")
        .timestamp();
    let endpoints = ["chat", "search", "embed", "tail"];
    // (at, project, endpoint, latency ms). Project b's first three events admit chat,
    // search and embed; its later "tail" events go to its long tail. One event in ten
    // has no endpoint.
    let mut events: Vec<(i64, &str, Option<&str>, i64)> = (0..3)
        .map(|i| (base + 60 * i as i64, b.as_str(), Some(endpoints[i]), 100))
        .collect();
    // Chat is the commonest: more than `EXACT_PERCENTILES_UP_TO` in the range alone.
    for i in 0..50_000 {
        let at = base + rng.random_range(0..3 * 86_400);
        let (project, choices) = if i % 4 == 0 { (&b, 4) } else { (&a, 3) };
        let endpoint = (rng.random_range(0..10) > 0).then(|| {
            if rng.random_range(0..10) < 6 {
                "chat"
            } else {
                endpoints[rng.random_range(0..choices)]
            }
        });
        let ms = (20.0 * 1000f64.powf(rng.random::<f64>())).round() as i64;
        events.push((at, project.as_str(), endpoint, ms));
    }
    for chunk in events.chunks(5_000) {
        let inputs: Vec<Value> = chunk
            .iter()
            .map(|&(at, project, endpoint, ms)| {
                let mut e = json!({"projectId": project, "provider": "openai", "model": "gpt-4o", "inputTokens": 10,
                       "latencyMs": ms, "occurredAt": chrono::DateTime::from_timestamp(at, 0).expect("a time").to_rfc3339()});
                if let Some(x) = endpoint {
                    e["endpoint"] = json!(x);
                }
                e
            })
            .collect();
        let r = app
            .admin(
                "mutation($i: [UsageInput!]!) { recordUsageBatch(inputs: $i) { accepted } }",
                json!({"i": inputs}),
            )
            .await;
        assert_eq!(r.data()["recordUsageBatch"]["accepted"], chunk.len());
    }
    // Unaligned edges: 05:17:23 on the first day to 19:43:11 on the third.
    let (from, to) = (
        base + 5 * 3600 + 17 * 60 + 23,
        base + 2 * 86_400 + 19 * 3600 + 43 * 60 + 11,
    );
    let time = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .expect("a time")
            .to_rfc3339()
    };
    // Each endpoint group's percentiles against the exact ones: returns how many were
    // not exact and how many latencies the groups held.
    let check = |projects: Vec<String>, only: &'static [&'static str], within: bool| {
        let app = &app;
        let events = &events;
        async move {
            let mut filter = json!({"from": time(from), "to": time(to)});
            if !projects.is_empty() {
                filter["projects"] = json!(projects);
            }
            if !only.is_empty() {
                filter["endpoints"] = json!(only);
            }
            let groups = app
                .admin(
                    "query($f: UsageFilter) { costBreakdown(filter: $f, groupBy: [ENDPOINT]) { endpoint latencyP50Ms latencyP95Ms } }",
                    json!({"f": filter}),
                )
                .await
                .data()["costBreakdown"]
                .as_array()
                .expect("groups")
                .clone();
            let (mut inexact, mut counted) = (0, 0);
            for g in &groups {
                let endpoint = g["endpoint"].as_str();
                let mut v: Vec<i64> = events
                    .iter()
                    .filter(|e| {
                        e.0 >= from
                            && e.0 < to
                            && e.2 == endpoint
                            && (projects.is_empty() || projects.iter().any(|p| p == e.1))
                    })
                    .map(|e| e.3)
                    .collect();
                v.sort_unstable();
                counted += v.len();
                inexact += check_percentiles(g, &v, within, &format!("{endpoint:?} ({filter})"));
            }
            (inexact, counted, groups.len())
        }
    };
    // Project a never overflowed: its endpoints (and its events without one) come from
    // the per-project sketch.
    let (inexact, counted, groups) = check(vec![a.clone()], &[], true).await;
    assert_eq!(groups, 4, "chat, search, embed and none");
    assert!(counted > 20_000, "{counted} latencies");
    assert!(
        inexact > 0,
        "every percentile was exact: the sketches did not answer"
    );
    // Chat, admitted in both projects, across every project: the sketch of every
    // project together.
    let (inexact, counted, groups) = check(vec![], &["chat"], true).await;
    assert_eq!(groups, 1);
    assert!(counted > 20_000, "{counted} chat latencies");
    assert!(
        inexact > 0,
        "every percentile was exact: the sketch did not answer"
    );
    // Every endpoint of every project: b's long tail is in the sketches' other bucket,
    // so raw events answer, exactly, with "tail" apart.
    let (_, counted, groups) = check(vec![], &[], false).await;
    assert_eq!(groups, 5, "chat, search, embed, tail and none");
    assert!(counted > 20_000);
    // A filter that names the endpoint b never admitted, with chat: raw events,
    // exactly (the sketches hold tail's events in b's other bucket).
    let (_, counted, groups) = check(vec![], &["chat", "tail"], false).await;
    assert_eq!(groups, 2);
    assert!(counted > 20_000, "{counted} latencies");

    // Migration 000019 undone and run again: its backfill from the events (with the
    // endpoints each project admitted) equals, row for row, what the hook kept.
    app.folded().await;
    let db = &app.state.db;
    let dump = |table: &'static str, project: bool| sketch_rows(db, table, "endpoint", project);
    let tables = [
        ("usage_latency_endpoint_day_chunks", true),
        ("usage_latency_endpoint_global_day_chunks", false),
    ];
    let mut kept = Vec::new();
    for (table, project) in tables {
        let rows = dump(table, project).await;
        assert!(
            rows.iter().any(|r| r.contains("| other|")),
            "{table} has b's long tail"
        );
        kept.push(rows);
    }
    run_again(
        db,
        "m20261207_000019_endpoint_latency_sketches",
        &[
            "usage_latency_endpoint_global_day_chunks",
            "usage_latency_endpoint_day_chunks",
        ],
    )
    .await;
    for ((table, project), rows) in tables.into_iter().zip(kept) {
        assert_eq!(dump(table, project).await, rows, "{table} backfilled");
    }
}

/// A generated event with attributes: (at, project index, provider, model, endpoint,
/// user, cost nanos or None, latency ms).
type Attributed = (
    i64,
    usize,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<i64>,
    Option<i64>,
);

/// Endpoint, user and source rollups with room for only three endpoints and three
/// users per project: every table equals the GROUP BY of the events (values beyond
/// the third in the "other" bucket), and breakdowns and filters by endpoint and user
/// over random unaligned ranges equal summing the inputs, long-tail values included
/// (those read raw events), before and after a re-pricing.
async fn attribute_rollups_equal_the_group_by_and_the_long_tail_reads_raw_events(backend: Backend) {
    use rand::{Rng, SeedableRng};
    use sea_orm::{ConnectionTrait, Statement};
    let app = spawn_app_with(backend, |s| s.limits.rollup_distinct_values = 3).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261204);
    let projects = [
        app.create_project("a1").await,
        app.create_project("a2").await,
    ];
    let models = [
        ("openai", "gpt-4o"),
        ("anthropic", "claude-sonnet-4-5"),
        ("acme", "acme-x"),
    ];
    let endpoints = [
        "chat",
        "search",
        "summarise",
        "embed-nightly",
        "tail-1",
        "tail-2",
    ];
    let users = ["u1", "u2", "u3", "u4", "u5"];
    let base = chrono::DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
        .expect("a time")
        .timestamp();
    let mut events: Vec<Attributed> = Vec::new();
    let mut batch = Vec::new();
    for i in 0..300 {
        let at = base + rng.random_range(0..4 * 86_400);
        let project = rng.random_range(0..2);
        let (provider, model) = models[rng.random_range(0..models.len())];
        // Earlier values are commoner, so the first three seen are mostly the same.
        let upper = rng.random_range(0..endpoints.len());
        let endpoint = (rng.random_range(0..8) > 0).then(|| endpoints[rng.random_range(0..=upper)]);
        let user = (rng.random_range(0..4) > 0).then(|| users[rng.random_range(0..users.len())]);
        let cents: i64 = rng.random_range(1..1_000);
        let mut e = json!({"projectId": projects[project], "provider": provider, "model": model,
                           "inputTokens": 100,
                           "occurredAt": chrono::DateTime::from_timestamp(at, 0).expect("a time").to_rfc3339(),
                           "idempotencyKey": format!("a{i}")});
        if let Some(x) = endpoint {
            e["endpoint"] = json!(x);
        }
        if let Some(u) = user {
            e["user"] = json!(u);
        }
        let cost = if provider == "acme" {
            None
        } else {
            e["reportedCostUsd"] = json!(format!("{}.{:02}", cents / 100, cents % 100));
            Some(cents * 10_000_000)
        };
        let latency = (i % 4 != 0).then(|| rng.random_range(20..5_000i64));
        if let Some(ms) = latency {
            e["latencyMs"] = json!(ms);
        }
        events.push((at, project, provider, model, endpoint, user, cost, latency));
        batch.push(e);
    }
    // In three batches, so that values are admitted across transactions too.
    for chunk in batch.chunks(100) {
        let r = app
            .admin(
                "mutation($i: [UsageInput!]!) { recordUsageBatch(inputs: $i) { accepted } }",
                json!({"i": chunk}),
            )
            .await;
        assert_eq!(r.data()["recordUsageBatch"]["accepted"], 100);
    }

    let db = &app.state.db;
    let query = |sql: String| Statement::from_string(db.get_database_backend(), sql);
    let admitted = |column: &'static str| {
        let query = &query;
        async move {
            db.query_all_raw(query(format!(
                "SELECT value FROM usage_rollup_values WHERE dimension = '{column}' AND value <> ' other' ORDER BY value"
            )))
            .await
            .expect("admitted values")
            .into_iter()
            .map(|r| r.try_get_by_index::<String>(0).expect("a value"))
            .collect::<Vec<_>>()
        }
    };
    assert!(
        admitted("endpoint").await.len() <= 6,
        "at most three endpoints per project"
    );
    // Each table against the GROUP BY of the events, the long tail mapped to ' other'.
    let check_tables = |expect_other: bool| async move {
        for (table, column) in [
            ("usage_rollup_endpoint_days", "endpoint"),
            ("usage_rollup_endpoint_hours", "endpoint"),
            ("usage_rollup_endpoint_global_days", "endpoint"),
            ("usage_rollup_endpoint_global_hours", "endpoint"),
            ("usage_rollup_user_days", "end_user"),
            ("usage_rollup_user_hours", "end_user"),
            ("usage_rollup_user_global_days", "end_user"),
            ("usage_rollup_source_days", "source"),
            ("usage_rollup_source_hours", "source"),
        ] {
            let stored = if column == "source" {
                "e.source".to_owned()
            } else {
                format!(
                    "CASE WHEN e.{column} IS NULL THEN '' WHEN NOT EXISTS (SELECT 1 FROM usage_rollup_values v \
                     WHERE v.project_id = e.project_id AND v.dimension = '{column}' AND v.value = e.{column}) \
                     THEN ' other' ELSE e.{column} END"
                )
            };
            let read = |rows: Vec<sea_orm::QueryResult>| -> Vec<(String, String, i64, i64, i64)> {
                rows.into_iter()
                    .map(|r| {
                        (
                            r.try_get_by_index::<String>(0).expect("provider"),
                            r.try_get_by_index::<String>(1).expect("value"),
                            r.try_get_by_index::<i64>(2).expect("events"),
                            r.try_get_by_index::<i64>(3).expect("cost"),
                            r.try_get_by_index::<i64>(4).expect("latency"),
                        )
                    })
                    .collect()
            };
            let expected = read(
                db.query_all_raw(query(format!(
                    "SELECT e.provider, {stored}, CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(e.cost_nanos), 0) AS BIGINT), \
                     CAST(COALESCE(SUM(e.latency_ms), 0) AS BIGINT) FROM usage_events e GROUP BY 1, 2 ORDER BY 1, 2"
                )))
                .await
                .expect("events"),
            );
            let got = read(
                db.query_all_raw(query(format!(
                    "SELECT provider, {column}, CAST(SUM(events_hi * 1000000000 + events) AS BIGINT), \
                     CAST(SUM(cost_nanos_hi * 1000000000 + cost_nanos) AS BIGINT), \
                     CAST(SUM(latency_sum_hi * 1000000000 + latency_sum) AS BIGINT) FROM {table} GROUP BY 1, 2 ORDER BY 1, 2"
                )))
                .await
                .expect("rollup"),
            );
            assert_eq!(got, expected, "{table} against the GROUP BY of the events");
            if column != "source" && expect_other {
                assert!(
                    got.iter().any(|g| g.1 == " other"),
                    "{table}: the long tail is in the other bucket"
                );
            }
        }
        // The latency sketches count every latency once.
        let all_counts = migration::sketch::COUNT_COLUMNS.join(" + ");
        for table in [
            "usage_latency_day_chunks",
            "usage_latency_week_chunks",
            "usage_latency_hour_chunks",
            "usage_latency_global_day_chunks",
        ] {
            let n = |sql: String| {
                let query = &query;
                async move {
                    db.query_one_raw(query(sql))
                        .await
                        .expect("a count")
                        .expect("a row")
                        .try_get_by_index::<i64>(0)
                        .expect("a number")
                }
            };
            assert_eq!(
                n(format!(
                    "SELECT CAST(SUM({all_counts}) AS BIGINT) FROM {table}"
                ))
                .await,
                n("SELECT CAST(COUNT(latency_ms) AS BIGINT) FROM usage_events".into()).await,
                "{table}"
            );
        }
        // The weekly sketch holds each week's daily rows summed, bucket by bucket.
        let week = 7 * 86_400_000_000_i64;
        let columns = migration::sketch::COUNT_COLUMNS.join(", ");
        let sums: Vec<String> = migration::sketch::COUNT_COLUMNS
            .iter()
            .map(|c| format!("CAST(SUM({c}) AS BIGINT)"))
            .collect();
        let weeks = "SELECT week, project_id, provider, model, chunk, ".to_owned()
            + &columns
            + " FROM usage_latency_week_chunks";
        let days = format!(
            "SELECT day - ((day % {week}) + {week}) % {week}, project_id, provider, model, chunk, {} \
             FROM usage_latency_day_chunks GROUP BY day - ((day % {week}) + {week}) % {week}, project_id, provider, model, chunk",
            sums.join(", ")
        );
        for (a, b) in [(&weeks, &days), (&days, &weeks)] {
            let differing = db
                .query_one_raw(query(format!(
                    "SELECT CAST(COUNT(*) AS BIGINT) FROM ({a} EXCEPT {b}) d"
                )))
                .await
                .expect("the weekly sketch against the daily one")
                .expect("a row")
                .try_get_by_index::<i64>(0)
                .expect("a count");
            assert_eq!(
                differing, 0,
                "weekly sketch rows that differ from the days'"
            );
        }
    };
    app.folded().await;
    check_tables(true).await;

    let check = |events: Vec<Attributed>, seed: u64| {
        let app = &app;
        let projects = projects.clone();
        async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let cost_of = |v: &[&Attributed]| -> String {
                rust_decimal::Decimal::new(v.iter().filter_map(|e| e.6).sum::<i64>(), 9)
                    .normalize()
                    .to_string()
            };
            for round in 0..10 {
                let a = base + rng.random_range(-3_600..4 * 86_400);
                let b = a + rng.random_range(1..3 * 86_400);
                let project = (round % 3 == 0).then(|| rng.random_range(0..2));
                let inside: Vec<&Attributed> = events
                    .iter()
                    .filter(|e| e.0 >= a && e.0 < b && project.is_none_or(|p| e.1 == p))
                    .collect();
                let time = |t: i64| {
                    chrono::DateTime::from_timestamp(t, 0)
                        .expect("a time")
                        .to_rfc3339()
                };
                let mut filter = json!({"from": time(a), "to": time(b)});
                if let Some(p) = project {
                    filter["projects"] = json!([projects[p]]);
                }
                let r = app
                    .admin(
                        "query($f: UsageFilter) { e: costBreakdown(filter: $f, groupBy: [ENDPOINT]) { endpoint latencyAvgMs latencyP50Ms totals { costUsd events } } \
                         u: costBreakdown(filter: $f, groupBy: [USER, PROVIDER]) { user provider totals { costUsd events } } \
                         s: costBreakdown(filter: $f, groupBy: [SOURCE]) { source totals { costUsd events } } }",
                        json!({"f": filter}),
                    )
                    .await;
                let groups = |name: &str| r.data()[name].as_array().cloned().expect("groups");
                let e_groups = groups("e");
                let mut seen = 0;
                for x in endpoints.iter().map(|x| Some(*x)).chain([None]) {
                    let of: Vec<&Attributed> =
                        inside.iter().copied().filter(|e| e.4 == x).collect();
                    let g = e_groups.iter().find(|g| g["endpoint"].as_str() == x);
                    match g {
                        None => assert!(of.is_empty(), "endpoint {x:?} missing for {filter}"),
                        Some(g) => {
                            seen += 1;
                            assert_eq!(
                                g["totals"]["costUsd"],
                                cost_of(&of).as_str(),
                                "{x:?} {filter}"
                            );
                            assert_eq!(g["totals"]["events"].as_i64(), Some(of.len() as i64));
                            // Few latencies: exact percentiles.
                            let mut l: Vec<i64> = of.iter().filter_map(|e| e.7).collect();
                            l.sort_unstable();
                            let p50 =
                                (!l.is_empty()).then(|| l[(l.len() * 50).div_ceil(100).max(1) - 1]);
                            assert_eq!(g["latencyP50Ms"].as_i64(), p50, "{x:?} {filter}");
                        }
                    }
                }
                assert_eq!(seen, e_groups.len(), "no other groups: {filter}");
                let u_groups = groups("u");
                for g in &u_groups {
                    let of: Vec<&Attributed> = inside
                        .iter()
                        .copied()
                        .filter(|e| e.5 == g["user"].as_str() && g["provider"] == e.2)
                        .collect();
                    assert!(!of.is_empty(), "{g} {filter}");
                    assert_eq!(
                        g["totals"]["costUsd"],
                        cost_of(&of).as_str(),
                        "{g} {filter}"
                    );
                    assert_eq!(g["totals"]["events"].as_i64(), Some(of.len() as i64));
                }
                let total: i64 = u_groups
                    .iter()
                    .filter_map(|g| g["totals"]["events"].as_i64())
                    .sum();
                assert_eq!(total, inside.len() as i64, "{filter}");
                let s_groups = groups("s");
                assert_eq!(s_groups.len(), usize::from(!inside.is_empty()));
                // Filters by one endpoint and one user: admitted ones read rollups, the
                // long tail raw events; both exact.
                for (field, value) in [
                    ("endpoints", endpoints[round % endpoints.len()]),
                    ("users", users[round % users.len()]),
                ] {
                    let mut f = filter.clone();
                    f[field] = json!([value]);
                    let of: Vec<&Attributed> = inside
                        .iter()
                        .copied()
                        .filter(|e| {
                            if field == "users" {
                                e.5 == Some(value)
                            } else {
                                e.4 == Some(value)
                            }
                        })
                        .collect();
                    let r = app
                        .admin(
                            "query($f: UsageFilter) { costSummary(filter: $f) { totals { costUsd events } } costBreakdown(filter: $f, groupBy: [PROVIDER]) { provider totals { events } } }",
                            json!({"f": f}),
                        )
                        .await;
                    let totals = &r.data()["costSummary"]["totals"];
                    assert_eq!(totals["costUsd"], cost_of(&of).as_str(), "{f}");
                    assert_eq!(totals["events"].as_i64(), Some(of.len() as i64), "{f}");
                }
            }
        }
    };
    check(events.clone(), 1).await;

    // A price for acme appears: the re-pricing moves its costs in every rollup.
    app.admin(
        r#"mutation { upsertPrice(input: {provider: "acme", model: "acme-x", standard: {input: "1000"}}) { id } }"#,
        json!({}),
    )
    .await
    .data();
    let repriced: Vec<Attributed> = events
        .into_iter()
        .map(|mut e| {
            if e.2 == "acme" {
                e.6 = Some(100 * 1_000_000);
            }
            e
        })
        .collect();
    app.folded().await;
    check_tables(true).await;
    check(repriced.clone(), 2).await;

    // Migration 000010 undone and run again: its backfill (the most frequent values
    // admitted, up to 1,000 per project) builds the same rollups from the events, and
    // migration 000017, run again after it, puts its sketches 32 buckets to a row.
    for sql in [
        "DROP TABLE usage_latency_global_day_chunks",
        "DROP TABLE usage_latency_hour_chunks",
        "DROP TABLE usage_latency_day_chunks",
        "DELETE FROM seaql_migrations WHERE version = 'm20261206_000017_sketch_chunks'",
        "DROP TABLE usage_rollup_source_hours",
        "DROP TABLE usage_rollup_source_days",
        "DROP TABLE usage_rollup_user_hours",
        "DROP TABLE usage_rollup_user_days",
        "DROP TABLE usage_rollup_endpoint_hours",
        "DROP TABLE usage_rollup_endpoint_days",
        "DROP TABLE usage_rollup_values",
        "DELETE FROM seaql_migrations WHERE version = 'm20261204_000010_attribute_rollups'",
    ] {
        db.execute_raw(query(sql.to_owned())).await.expect(sql);
    }
    aispend::db::migrate(db)
        .await
        .expect("migration 000010 again");
    // Migrations 000012 and 000013 (already applied) added the unit measures and every
    // measure's high part to the tables 000010 has just created again; give them back
    // (these events have no units, so zero) and split what 000010 summed.
    for table in [
        "usage_rollup_endpoint_days",
        "usage_rollup_endpoint_hours",
        "usage_rollup_user_days",
        "usage_rollup_user_hours",
        "usage_rollup_source_days",
        "usage_rollup_source_hours",
    ] {
        for column in &aispend::domain::rollup::COLUMNS[12..] {
            let sql = format!("ALTER TABLE {table} ADD COLUMN {column} BIGINT NOT NULL DEFAULT 0");
            db.execute_raw(query(sql.clone())).await.expect(&sql);
        }
        for column in aispend::domain::rollup::COLUMNS {
            let sql =
                format!("ALTER TABLE {table} ADD COLUMN {column}_hi BIGINT NOT NULL DEFAULT 0");
            db.execute_raw(query(sql.clone())).await.expect(&sql);
            let sql = format!(
                "UPDATE {table} SET {column}_hi = {column} / 1000000000, {column} = {column} % 1000000000"
            );
            db.execute_raw(query(sql.clone())).await.expect(&sql);
        }
    }
    // Migrations 000015, 000020, 000021, 000026 and 000027 undone and run again, as
    // they would run after 000010 and 000017 on a ledger that upgrades: they sum the
    // rollups with every project together from the per-project ones 000010 has just
    // rebuilt (with the values that backfill admitted), and the weekly sketch from the
    // daily one 000017 has.
    for sql in [
        "DROP TABLE usage_latency_week_chunks",
        "DROP TABLE usage_rollup_endpoint_global_hours",
        "DROP TABLE usage_rollup_endpoint_global_weeks",
        "DROP TABLE usage_rollup_user_global_days",
        "DROP TABLE usage_rollup_endpoint_global_days",
        "DELETE FROM seaql_migrations WHERE version IN ('m20261205_000015_global_attribute_rollups', \
         'm20261207_000020_endpoint_global_weeks', 'm20261207_000021_endpoint_global_hours', \
         'm20261211_000026_user_global_provider', 'm20261212_000027_latency_weeks')",
    ] {
        db.execute_raw(query(sql.to_owned())).await.expect(sql);
    }
    aispend::db::migrate(db)
        .await
        .expect("migrations 000015, 000020, 000021, 000026 and 000027 again");
    assert_eq!(
        admitted("end_user").await.len(),
        10,
        "five users in each project"
    );
    app.folded().await;
    check_tables(false).await;
    check(repriced, 3).await;
}

/// A generated event: (at, project, provider, model, input tokens, cost nanos,
/// latency ms).
type Generated = (
    i64,
    String,
    &'static str,
    &'static str,
    i64,
    Option<i64>,
    Option<i64>,
);

/// Rollups answer whole days and hours, raw events the edges: random events and
/// random, unaligned ranges must give exactly what summing the inputs gives, also
/// after a re-pricing moves costs (and unpriced events become priced).
async fn rollup_answers_equal_sums_of_the_events_for_random_ranges(app: TestApp) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261124);
    let projects = [
        app.create_project("r1").await,
        app.create_project("r2").await,
    ];
    let models = [
        ("openai", "gpt-4o"),
        ("openai", "gpt-4o-mini"),
        ("anthropic", "claude-sonnet-4-5"),
        ("acme", "acme-x"),
    ];
    let base = chrono::DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
        .expect("a time")
        .timestamp();
    // (at, project, provider, model, input tokens, cost nanos or None)
    let mut events = Vec::new();
    let mut batch = Vec::new();
    for i in 0..400 {
        let at = base + rng.random_range(0..5 * 86_400);
        let project = &projects[rng.random_range(0..2)];
        let (provider, model) = models[rng.random_range(0..models.len())];
        let input: i64 = rng.random_range(1..5_000);
        let cents: i64 = rng.random_range(1..1_000);
        let mut e = json!({"projectId": project, "provider": provider, "model": model, "inputTokens": input,
                           "occurredAt": chrono::DateTime::from_timestamp(at, 0).expect("a time").to_rfc3339(),
                           "idempotencyKey": format!("r{i}")});
        // acme events are unpriced until a price appears; the rest carry a cost.
        let cost = if provider == "acme" {
            None
        } else {
            e["reportedCostUsd"] = json!(format!("{}.{:02}", cents / 100, cents % 100));
            Some(cents * 10_000_000)
        };
        // Two events in three report a latency.
        let latency = (i % 3 != 0).then(|| rng.random_range(50..9_000i64));
        if let Some(ms) = latency {
            e["latencyMs"] = json!(ms);
        }
        events.push((at, project.clone(), provider, model, input, cost, latency));
        batch.push(e);
    }
    let r = app
        .admin(
            "mutation($i: [UsageInput!]!) { recordUsageBatch(inputs: $i) { accepted } }",
            json!({"i": batch}),
        )
        .await;
    assert_eq!(r.data()["recordUsageBatch"]["accepted"], 400);

    let check = |events: Vec<Generated>, seed: u64| {
        let app = &app;
        let projects = projects.clone();
        async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            for _ in 0..12 {
                let a = base + rng.random_range(-3_600..5 * 86_400);
                let b = a + rng.random_range(1..4 * 86_400);
                let project =
                    (rng.random_range(0..3) < 2).then(|| projects[rng.random_range(0..2)].clone());
                let inside: Vec<_> = events
                    .iter()
                    .filter(|e| e.0 >= a && e.0 < b && project.as_ref().is_none_or(|p| &e.1 == p))
                    .collect();
                let cost: i64 = inside.iter().filter_map(|e| e.5).sum();
                let tokens: i64 = inside.iter().map(|e| e.4).sum();
                let unpriced = inside.iter().filter(|e| e.5.is_none()).count();
                let time = |t: i64| {
                    chrono::DateTime::from_timestamp(t, 0)
                        .expect("a time")
                        .to_rfc3339()
                };
                let mut filter = json!({"from": time(a), "to": time(b)});
                if let Some(p) = &project {
                    filter["projects"] = json!([p]);
                }
                let r = app
                    .admin(
                        "query($f: UsageFilter) { costSummary(filter: $f) { totals { costUsd inputTokens events unpricedEvents } } costBreakdown(filter: $f, groupBy: [MODEL]) { model latencyAvgMs totals { costUsd events } } }",
                        json!({"f": filter}),
                    )
                    .await;
                let totals = &r.data()["costSummary"]["totals"];
                let expected = rust_decimal::Decimal::new(cost, 9).normalize().to_string();
                assert_eq!(totals["costUsd"], expected.as_str(), "{filter}");
                assert_eq!(totals["inputTokens"].as_i64(), Some(tokens), "{filter}");
                assert_eq!(
                    totals["events"].as_i64(),
                    Some(inside.len() as i64),
                    "{filter}"
                );
                assert_eq!(
                    totals["unpricedEvents"].as_i64(),
                    Some(unpriced as i64),
                    "{filter}"
                );
                for g in r.data()["costBreakdown"].as_array().expect("groups") {
                    assert!(
                        g["totals"]["events"].as_i64() > Some(0),
                        "an empty group {g} for {filter}"
                    );
                }
                for (_, m) in models {
                    let of_model: Vec<_> = inside.iter().filter(|e| e.3 == m).collect();
                    let group = r.data()["costBreakdown"]
                        .as_array()
                        .and_then(|g| g.iter().find(|g| g["model"] == m).cloned());
                    match group {
                        None => assert!(of_model.is_empty(), "{m} missing for {filter}"),
                        Some(g) => {
                            let c: i64 = of_model.iter().filter_map(|e| e.5).sum();
                            assert_eq!(
                                g["totals"]["costUsd"],
                                rust_decimal::Decimal::new(c, 9)
                                    .normalize()
                                    .to_string()
                                    .as_str()
                            );
                            assert_eq!(g["totals"]["events"].as_i64(), Some(of_model.len() as i64));
                            // The mean latency comes from the rollups' sums, edges included.
                            let latencies: Vec<i64> = of_model.iter().filter_map(|e| e.6).collect();
                            let mean = (!latencies.is_empty()).then(|| {
                                latencies.iter().sum::<i64>() as f64 / latencies.len() as f64
                            });
                            // serde_json's default float parsing may be one ulp off.
                            let served = g["latencyAvgMs"].as_f64();
                            assert!(
                                served
                                    .zip(mean)
                                    .map_or(served == mean, |(a, b)| (a - b).abs() <= 1e-9 * b),
                                "{m} latency {served:?}, expected {mean:?}, for {filter}"
                            );
                        }
                    }
                }
                let trend = app
                    .admin(
                        "query($f: UsageFilter!) { hourly: costTrend(filter: $f, granularity: HOUR) { totals { costUsd } } daily: costTrend(filter: $f, granularity: DAY) { totals { costUsd } } }",
                        json!({"f": filter}),
                    )
                    .await;
                // Buckets start at the bucket of `from`, but hold only events in [from, to).
                for granularity in ["hourly", "daily"] {
                    let total: rust_decimal::Decimal = trend.data()[granularity]
                        .as_array()
                        .expect("buckets")
                        .iter()
                        .map(|b| {
                            b["totals"]["costUsd"]
                                .as_str()
                                .unwrap_or("0")
                                .parse::<rust_decimal::Decimal>()
                                .unwrap_or_default()
                        })
                        .sum();
                    assert_eq!(
                        total,
                        rust_decimal::Decimal::new(cost, 9),
                        "{granularity} {filter}"
                    );
                }
            }
        }
    };
    check(events.clone(), 1).await;

    // A price for acme appears; its unpriced events are priced at once, and the
    // re-pricing moves them into the rollups.
    let acme = events.iter().filter(|e| e.2 == "acme").count();
    assert!(acme > 0);
    app.admin(
        r#"mutation { upsertPrice(input: {provider: "acme", model: "acme-x", standard: {input: "1000"}}) { id } }"#,
        json!({}),
    )
    .await
    .data();
    let r = app
        .admin(
            "mutation { recomputeCosts(filter: {providers: [\"acme\"]}) }",
            json!({}),
        )
        .await;
    assert_eq!(
        r.data()["recomputeCosts"].as_u64(),
        Some(0),
        "upsertPrice priced them already"
    );
    // $1000 per million tokens: a nano-dollar per... 1000 nano-dollars per token.
    let repriced: Vec<_> = events
        .into_iter()
        .map(|mut e| {
            if e.2 == "acme" {
                e.5 = Some(e.4 * 1_000_000);
            }
            e
        })
        .collect();
    check(repriced.clone(), 2).await;

    // Migration 000018 undone and run again: its backfill sums the hourly rollups of
    // every project together from the per-project ones, row for row what the hook kept
    // through the ingest and the re-pricing.
    use sea_orm::{ConnectionTrait, Statement};
    app.folded().await;
    let db = &app.state.db;
    let tables = [
        ("usage_rollup_global_hours", "hour, provider"),
        ("usage_rollup_global_model_hours", "hour, provider, model"),
    ];
    let measures: Vec<String> = aispend::domain::rollup::COLUMNS
        .iter()
        .map(|c| format!("CAST({c}_hi AS TEXT) || ':' || CAST({c} AS TEXT)"))
        .collect();
    // Each row as one string: its keys, then every measure's high and low part.
    let dump = |table: &'static str, keys: &'static str| {
        let sql = format!(
            "SELECT {} FROM {table} ORDER BY {keys}",
            std::iter::once("CAST(hour AS TEXT)".to_owned())
                .chain(keys.split(", ").skip(1).map(str::to_owned))
                .chain(measures.iter().cloned())
                .collect::<Vec<_>>()
                .join(" || '|' || ")
        );
        async move {
            db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
                .await
                .expect("a rollup's rows")
                .into_iter()
                .map(|r| r.try_get_by_index::<String>(0).expect("a row"))
                .collect::<Vec<_>>()
        }
    };
    let mut kept = Vec::new();
    for (table, keys) in tables {
        let rows = dump(table, keys).await;
        assert!(rows.len() > 24, "{table} holds every hour of five days");
        kept.push(rows);
    }
    run_again(
        db,
        "m20261207_000018_global_hour_rollups",
        &[
            "usage_rollup_global_model_hours",
            "usage_rollup_global_hours",
        ],
    )
    .await;
    for ((table, keys), rows) in tables.into_iter().zip(kept) {
        assert_eq!(dump(table, keys).await, rows, "{table} backfilled");
    }
    check(repriced, 3).await;
}
