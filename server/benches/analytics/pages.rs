//! The dashboard's own requests on the benchmark's ledger (issue 15: every page's
//! queries under 200 ms at ten million events).
//!
//! The query documents are read from the dashboard's sources (`web/src`, every
//! `graphql(` … `)` holding a `query`), so the bench sends exactly what the pages send.
//! Each page's loads are listed here with the variables the page computes: its default
//! state and each choice of its controls (range, time zone, granularity, view, stack,
//! groupings and filters), as of a "now" inside the loaded days (the pages take "now"
//! from the server, whose clock is past the loaded events). A query document the
//! dashboard has and this list does not name fails the bench, so a new page cannot go
//! untimed.

use crate::common::{gql_answer, gql_data};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

/// The pages' "now": 2026-03-27 14:00 UTC, day 86 of the 90 loaded from 2026-01-01.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 27, 14, 0, 0)
        .single()
        .expect("a time")
}

/// Documents the pages send only after a user action, with why they are not timed.
const NOT_AT_LOAD: [(&str, &str); 1] = [(
    "Schedules",
    "read for a credential the user opens; the ledger has none",
)];

/// The `query` documents of the dashboard by operation name.
fn documents() -> BTreeMap<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/src");
    let mut files = vec![root.clone()];
    let mut out = BTreeMap::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("the dashboard's sources") {
                files.push(entry.expect("a directory entry").path());
            }
            continue;
        }
        if path.extension().is_none_or(|e| e != "ts") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a source file");
        for piece in text.split("graphql(`").skip(1) {
            let doc = piece.split("`)").next().unwrap_or("").trim();
            let mut words = doc.split(|c: char| !c.is_alphanumeric() && c != '_');
            if words.next() == Some("query")
                && let Some(name) = words.next()
            {
                out.insert(name.to_owned(), doc.to_owned());
            }
        }
    }
    out
}

/// Midnight of a local date in `tz` (the earliest instant of that date).
fn local_midnight(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    tz.from_local_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight"))
        .earliest()
        .expect("a local midnight")
        .with_timezone(&Utc)
}

/// A date from a year, a month that may run past 1–12, and a day that may run past the
/// month (as JavaScript's `Date` normalises them, which `web/src/range.ts` relies on).
fn date(year: i32, month: i32, day: i64) -> NaiveDate {
    let months = year * 12 + (month - 1);
    NaiveDate::from_ymd_opt(months.div_euclid(12), (months.rem_euclid(12) + 1) as u32, 1)
        .expect("a month")
        + chrono::Duration::days(day - 1)
}

/// `web/src/range.ts`'s presets: the range `kind` around `now` in `tz`, as a filter.
fn range(kind: &str, tz: Tz) -> Value {
    let local = now().with_timezone(&tz);
    let (y, m, d) = (local.year(), local.month() as i32, local.day() as i64);
    let (from, to) = match kind {
        "today" => (date(y, m, d), date(y, m, d + 1)),
        "7d" => (date(y, m, d - 6), date(y, m, d + 1)),
        "30d" => (date(y, m, d - 29), date(y, m, d + 1)),
        "prev-month" => (date(y, m - 1, 1), date(y, m, 1)),
        "year" => (date(y, 1, 1), date(y + 1, 1, 1)),
        _ => (date(y, m, 1), date(y, m + 1, 1)),
    };
    json!({
        "from": local_midnight(tz, from).to_rfc3339(),
        "to": local_midnight(tz, to).to_rfc3339(),
    })
}

/// One request a page sends: its page, operation, what varies, and variables.
struct Request {
    page: &'static str,
    op: &'static str,
    label: String,
    variables: Value,
}

fn request(page: &'static str, op: &'static str, label: String, variables: Value) -> Request {
    Request {
        page,
        op,
        label,
        variables,
    }
}

/// Sends `op` with `variables`; panics on GraphQL errors.
async fn send(
    client: &reqwest::Client,
    url: &str,
    docs: &BTreeMap<String, String>,
    op: &str,
    variables: &Value,
) -> Value {
    let query = docs.get(op).expect("a dashboard query");
    gql_data(client, url, query, variables.clone()).await
}

/// The overview's stack filter for a breakdown group (`only` in the page).
fn only(dim: &str, group: &Value) -> Option<Value> {
    let text = |k: &str| group[k].as_str().map(str::to_owned);
    match dim {
        "PROVIDER" => Some(json!({"providers": [text("provider").unwrap_or_default()]})),
        "MODEL" => Some(json!({"models": [text("model").unwrap_or_default()]})),
        "ENDPOINT" => text("endpoint").map(|e| json!({"endpoints": [e]})),
        _ => text("projectId").map(|p| json!({"projects": [p]})),
    }
}

/// Every request of the overview: the totals, then for each range, zone, granularity,
/// view and stack the trend, the breakdown, one trend per top group (read from the
/// breakdown's answer, as the page does), the provider reports and the top tables.
async fn overview(
    client: &reqwest::Client,
    url: &str,
    docs: &BTreeMap<String, String>,
) -> Vec<Request> {
    let mut out = Vec::new();
    let zones = [chrono_tz::UTC, chrono_tz::Europe::Berlin];
    for tz in zones {
        out.push(request(
            "overview",
            "OverviewSummary",
            tz.name().to_owned(),
            json!({"today": range("today", tz), "month": range("month", tz)}),
        ));
    }
    let tracked_only = [
        ("PROVIDER", "TRACKED"),
        ("MODEL", "TRACKED"),
        ("ENDPOINT", "TRACKED"),
        ("PROJECT", "TRACKED"),
    ];
    let other_views = [
        ("PROVIDER", "REPORTED"),
        ("MODEL", "BEST"),
        ("PROJECT", "BEST"),
    ];
    for tz in zones {
        for (kind, granularity) in [
            ("month", "DAY"),
            ("today", "HOUR"),
            ("7d", "HOUR"),
            ("30d", "DAY"),
            ("year", "WEEK"),
        ] {
            let filter = range(kind, tz);
            for (dim, view) in tracked_only.iter().chain(&other_views) {
                let label = format!("{kind} {granularity} {} {view} by {dim}", tz.name());
                let trend = |f: Value| json!({"filter": f, "granularity": granularity, "timezone": tz.name(), "view": view});
                out.push(request(
                    "overview",
                    "OverviewTrend",
                    label.clone(),
                    trend(filter.clone()),
                ));
                let groups = json!({"filter": filter, "groupBy": [dim], "view": view});
                let answer = send(client, url, docs, "OverviewBreakdown", &groups).await;
                out.push(request(
                    "overview",
                    "OverviewBreakdown",
                    label.clone(),
                    groups,
                ));
                let top = answer["costBreakdown"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                for group in top.iter().take(6) {
                    if let Some(extra) = only(dim, group) {
                        let mut f = filter.clone();
                        for (k, v) in extra.as_object().into_iter().flatten() {
                            f[k] = v.clone();
                        }
                        out.push(request(
                            "overview",
                            "OverviewTrend",
                            format!("{label}, one {dim}"),
                            trend(f),
                        ));
                    }
                }
                if *view != "TRACKED" {
                    out.push(request(
                        "overview",
                        "OverviewReported",
                        label.clone(),
                        json!({"filter": {"from": filter["from"], "to": filter["to"]}}),
                    ));
                }
            }
            for dim in ["MODEL", "ENDPOINT", "PROJECT"] {
                out.push(request(
                    "overview",
                    "OverviewBreakdown",
                    format!("{kind} {} top {dim}", tz.name()),
                    json!({"filter": filter, "groupBy": [dim], "view": "TRACKED"}),
                ));
            }
        }
    }
    out
}

/// Explore: the filter lists, every grouping alone and some together (the sums, then
/// the latency percentiles, as the page asks), each filter of the form, and event-log
/// pages.
async fn explore(
    client: &reqwest::Client,
    url: &str,
    docs: &BTreeMap<String, String>,
) -> Vec<Request> {
    let month = range("month", chrono_tz::UTC);
    let lists = send(client, url, docs, "ExploreFilters", &json!({})).await;
    let first = |k: &str| lists["filters"][k][0].clone();
    let mut filters = vec![("month".to_owned(), month.clone())];
    for (key, list) in [
        ("models", "models"),
        ("endpoints", "endpoints"),
        ("projects", "projects"),
        ("users", "users"),
    ] {
        let mut f = month.clone();
        f[key] = json!([first(list)]);
        filters.push((format!("month, one of {key}"), f));
    }
    let mut f = month.clone();
    f["sources"] = json!(["API"]);
    filters.push(("month, source API".to_owned(), f));
    let mut out = vec![request(
        "explore",
        "ExploreFilters",
        String::new(),
        json!({}),
    )];
    let groupings: [&[&str]; 9] = [
        &["MODEL"],
        &["PROVIDER"],
        &["ENDPOINT"],
        &["PROJECT"],
        &["SOURCE"],
        &["USER"],
        &["MODEL", "ENDPOINT"],
        &["PROJECT", "MODEL"],
        &["PROVIDER", "USER"],
    ];
    for (name, filter) in &filters {
        for dims in groupings {
            out.push(request(
                "explore",
                "ExploreBreakdown",
                format!("{name} by {}", dims.join("+")),
                json!({"filter": filter, "groupBy": dims, "view": "TRACKED"}),
            ));
            // The percentiles, which the page asks for beside the sums.
            out.push(request(
                "explore",
                "ExploreLatency",
                format!("{name} by {}", dims.join("+")),
                json!({"filter": filter, "groupBy": dims}),
            ));
        }
        // Pages 1, 2 and 20 of the event log, following the cursors as the page does.
        let mut after = Value::Null;
        for page in 1..=20 {
            let variables = json!({"filter": filter, "after": after});
            if [1, 2, 20].contains(&page) {
                out.push(request(
                    "explore",
                    "ExploreEvents",
                    format!("{name}, page {page}"),
                    variables.clone(),
                ));
            }
            let answer = send(client, url, docs, "ExploreEvents", &variables).await;
            after = answer["usageEvents"]["pageInfo"]["endCursor"].clone();
        }
    }
    out
}

/// Budgets the benchmark creates once on its ledger, so the budgets page has some to
/// show: every period, scopes by project, provider, model and endpoint.
async fn ensure_budgets(client: &reqwest::Client, url: &str) {
    let have = gql_data(client, url, "{ budgets { id } }", json!({})).await;
    if have["budgets"].as_array().is_some_and(|b| !b.is_empty()) {
        return;
    }
    let projects = gql_data(client, url, "{ projects { id } }", json!({})).await;
    let project = projects["projects"][0]["id"].clone();
    let scopes = [
        ("everything, monthly", "MONTHLY", json!(null)),
        (
            "one project, daily",
            "DAILY",
            json!({"projects": [project]}),
        ),
        ("openai, weekly", "WEEKLY", json!({"providers": ["openai"]})),
        (
            "one model, quarterly",
            "QUARTERLY",
            json!({"models": ["openai-model-0"]}),
        ),
        (
            "one endpoint, for all time",
            "TOTAL",
            json!({"endpoints": ["endpoint-7"]}),
        ),
        ("everything, for all time", "TOTAL", json!(null)),
    ];
    for (name, period, scope) in scopes {
        gql_data(
            client,
            url,
            "mutation($i: CreateBudgetInput!) { createBudget(input: $i) { id } }",
            json!({"i": {"name": name, "amountUsd": "1000000", "period": period, "scope": scope, "timezone": "Europe/Berlin"}}),
        )
        .await;
    }
}

/// Every other page's loads.
fn the_rest() -> Vec<Request> {
    let mut out = vec![
        request("session", "Session", String::new(), json!({})),
        request(
            "insights",
            "Recommendations",
            "30d".into(),
            json!({"filter": range("30d", chrono_tz::UTC)}),
        ),
        request(
            "insights",
            "Anomalies",
            "30d".into(),
            json!({"filter": range("30d", chrono_tz::UTC)}),
        ),
        request("budgets", "Budgets", String::new(), json!({})),
        request("budgets", "Alerts", String::new(), json!({})),
        request(
            "prices",
            "Prices",
            "all".into(),
            json!({"filter": {"providers": null, "model": null}}),
        ),
        request(
            "prices",
            "Prices",
            "openai gpt-4o".into(),
            json!({"filter": {"providers": ["openai"], "model": "gpt-4o"}}),
        ),
        request("prices", "PriceChanges", String::new(), json!({})),
        request("projects", "ProjectList", String::new(), json!({})),
        request("projects", "Tokens", String::new(), json!({})),
        request("providers", "Providers", "admin".into(), json!({})),
        request("providers", "ProvidersRead", "read".into(), json!({})),
    ];
    for kind in ["month", "7d", "30d", "prev-month", "year"] {
        out.push(request(
            "reconciliation",
            "Reconciliation",
            kind.into(),
            json!({"filter": range(kind, chrono_tz::UTC), "tolerance": "5"}),
        ));
    }
    out
}

fn p50(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Sends `op` as the page does, for timing: `true` when the server declined a
/// percentile request for the raw latencies it would read (`maxRawLatencies`, which
/// Explore's `ExploreLatency` sets; the page then says why), panics on any other
/// GraphQL error.
async fn post_timed(
    client: &reqwest::Client,
    url: &str,
    docs: &BTreeMap<String, String>,
    op: &str,
    variables: &Value,
) -> bool {
    let query = docs.get(op).expect("a dashboard query");
    let r = gql_answer(
        client,
        url,
        &json!({"query": query, "variables": variables}),
    )
    .await;
    match r.get("errors") {
        None => false,
        Some(e) if e[0]["extensions"]["field"] == "maxRawLatencies" => true,
        Some(_) => panic!("GraphQL errors: {r}"),
    }
}

/// A first run slower than this is the request's only run.
const SLOW: Duration = Duration::from_secs(1);

/// Times every request of every page `runs` times (after one untimed run; a request
/// whose first run took more than [`SLOW`] only that once); prints per page how many
/// requests, the median and the slowest p50, every request above 100 ms and every
/// percentile request the server declined for its raw latencies. Returns
/// the slowest p50. `only`: that page's requests alone.
pub async fn run(client: &reqwest::Client, url: &str, runs: usize, only: Option<&str>) -> Duration {
    let docs = documents();
    ensure_budgets(client, url).await;
    let mut requests = Vec::new();
    if only.is_none_or(|p| p == "overview") {
        requests.extend(overview(client, url, &docs).await);
    }
    if only.is_none_or(|p| p == "explore") {
        requests.extend(explore(client, url, &docs).await);
    }
    requests.extend(the_rest());
    requests.retain(|r| only.is_none_or(|p| p == r.page));
    let timed: BTreeSet<&str> = requests.iter().map(|r| r.op).collect();
    let missing: Vec<&String> = docs
        .keys()
        .filter(|op| !timed.contains(op.as_str()) && !NOT_AT_LOAD.iter().any(|(n, _)| n == op))
        .collect();
    // Every query document is timed, unless one page was asked for (`--page NAME`).
    assert!(
        only.is_some() || missing.is_empty(),
        "the dashboard sends queries this bench does not time: {missing:?}"
    );
    let mut results: Vec<(&Request, Duration)> = Vec::new();
    let mut declined: Vec<&Request> = Vec::new();
    for r in &requests {
        let t = Instant::now();
        if post_timed(client, url, &docs, r.op, &r.variables).await {
            declined.push(r);
        }
        let first = t.elapsed();
        // A request far over the page budget is timed once: its first run says enough.
        if first > SLOW {
            results.push((r, first));
            continue;
        }
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            post_timed(client, url, &docs, r.op, &r.variables).await;
            times.push(t.elapsed());
        }
        results.push((r, p50(times)));
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "dashboard pages ({} requests, {runs} runs each, p50 per request):",
        results.len()
    );
    println!(
        "{:<16} {:>9} {:>12} {:>12}  slowest",
        "page", "requests", "median", "slowest"
    );
    let mut pages: BTreeMap<&str, Vec<(&Request, Duration)>> = BTreeMap::new();
    for (r, d) in &results {
        pages.entry(r.page).or_default().push((r, *d));
    }
    for (page, list) in &pages {
        let mut times: Vec<Duration> = list.iter().map(|(_, d)| *d).collect();
        times.sort();
        let (worst, at) = list
            .iter()
            .max_by_key(|(_, d)| *d)
            .map(|(r, d)| (*r, *d))
            .expect("a request");
        println!(
            "{page:<16} {:>9} {:>9.1} ms {:>9.1} ms  {} {}",
            list.len(),
            ms(times[times.len() / 2]),
            ms(at),
            worst.op,
            worst.label
        );
    }
    let mut slow: Vec<&(&Request, Duration)> =
        results.iter().filter(|(_, d)| ms(*d) > 100.0).collect();
    slow.sort_by_key(|(_, d)| std::cmp::Reverse(*d));
    for (r, d) in slow {
        println!(
            "  above 100 ms: {:>8.1} ms  {} {} {}",
            ms(*d),
            r.page,
            r.op,
            r.label
        );
    }
    for r in declined {
        println!(
            "  declined (maxRawLatencies): {} {} {}",
            r.page, r.op, r.label
        );
    }
    results.iter().map(|(_, d)| *d).max().unwrap_or_default()
}
