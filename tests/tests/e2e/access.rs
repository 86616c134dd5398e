//! The access matrix: every GraphQL query, mutation and subscription, every REST
//! route and export, called with no token, a revoked token, an INGEST token of the
//! project, a READ token of another project, a READ token of the project and an
//! ADMIN token, each answering as the README's "Tokens and scopes" says.
//!
//! The operations are read from the schema itself: an operation added to the API
//! fails this test until it has a row here. Project P holds the data; everything a
//! READ token of project Q gets back is searched for P's id and for marker strings
//! only P's data carries, so a leak fails even where access is (rightly) allowed.

use aispend_e2e::{TestApp, WsEvent, db_tests};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    NoToken,
    Revoked,
    IngestP,
    ReadQ,
    ReadP,
    Admin,
}

const CALLERS: [Caller; 6] = [
    Caller::NoToken,
    Caller::Revoked,
    Caller::IngestP,
    Caller::ReadQ,
    Caller::ReadP,
    Caller::Admin,
];

/// What an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Anyone, with or without a token (who am I, the server's version).
    Public,
    /// INGEST (or ADMIN), for the token's own project.
    Ingest,
    /// INGEST or READ (or ADMIN), for the token's own project: an application's
    /// pre-flight budget check.
    IngestOrRead,
    /// READ (or ADMIN); a token of another project is refused (`Refused`) or served
    /// without any of P's data (`Hidden`).
    Read(Other),
    /// ADMIN only.
    Admin,
    /// ADMIN only, by id: any other valid token gets NOT_FOUND, so ids do not leak.
    AdminById,
}

/// What a READ token of another project gets from a read of P's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Other {
    /// An error: FORBIDDEN (P named in a filter) or NOT_FOUND (P's object by id, so
    /// its existence is not revealed).
    Refused(&'static str),
    /// Served, with none of P's data.
    Hidden,
}

/// The expected outcome: `ok` or an error code.
fn expected(class: Class, caller: Caller) -> &'static str {
    match (caller, class) {
        (_, Class::Public) => "ok",
        (Caller::NoToken | Caller::Revoked, _) => "UNAUTHORIZED",
        (Caller::Admin, _) => "ok",
        (Caller::IngestP, Class::Ingest) => "ok",
        (Caller::IngestP | Caller::ReadP, Class::IngestOrRead) => "ok",
        (_, Class::IngestOrRead) => "FORBIDDEN",
        (_, Class::Ingest) => "FORBIDDEN",
        (Caller::IngestP, Class::Read(_)) => "FORBIDDEN",
        (Caller::ReadP, Class::Read(_)) => "ok",
        (Caller::ReadQ, Class::Read(Other::Refused(code))) => code,
        (Caller::ReadQ, Class::Read(Other::Hidden)) => "ok",
        (_, Class::Admin) => "FORBIDDEN",
        (_, Class::AdminById) => "NOT_FOUND",
    }
}

/// One GraphQL operation: its root field, a document using placeholders (`{P}` and
/// the fixture ids below), and what it needs.
struct Op {
    field: &'static str,
    document: &'static str,
    class: Class,
}

const fn op(field: &'static str, document: &'static str, class: Class) -> Op {
    Op {
        field,
        document,
        class,
    }
}

const HIDDEN: Class = Class::Read(Other::Hidden);
const NOT_FOUND: Class = Class::Read(Other::Refused("NOT_FOUND"));
const FORBIDDEN: Class = Class::Read(Other::Refused("FORBIDDEN"));

/// Every query and mutation. Destructive mutations act on spare fixtures (`…2`), and
/// ADMIN calls each operation last, so an allowed call never removes what a later
/// row needs.
const OPS: &[Op] = &[
    // Queries.
    op(
        "viewer",
        "{ viewer { kind scopes projectId } }",
        Class::Public,
    ),
    op("version", "{ version }", Class::Public),
    op("serverTime", "{ serverTime }", Class::Public),
    op("projects", "{ projects { id name } }", HIDDEN),
    op("project", "{ project(id: \"{P}\") { id name } }", FORBIDDEN),
    op(
        "apiTokens",
        "{ apiTokens { id name projectId } }",
        Class::Admin,
    ),
    op(
        "usageEvent",
        "{ usageEvent(id: \"{EVENT}\") { id endpoint user } }",
        FORBIDDEN,
    ),
    op(
        "usageEvents",
        "{ usageEvents(first: 10, orderBy: OCCURRED_AT_DESC) { edges { node { id projectId endpoint user } } } }",
        HIDDEN,
    ),
    op(
        "prices",
        "{ prices(filter: {providers: [\"acme\"]}) { id model } }",
        HIDDEN,
    ),
    op("price", "{ price(id: \"{PRICE}\") { id model } }", HIDDEN),
    op(
        "priceSources",
        "{ priceSources { url status } }",
        Class::Admin,
    ),
    op(
        "priceChanges",
        "{ priceChanges(first: 10) { id at } }",
        HIDDEN,
    ),
    op("plugins", "{ plugins { id } }", HIDDEN),
    op(
        "credentials",
        "{ credentials { id label projectId } }",
        Class::Admin,
    ),
    op(
        "credential",
        "{ credential(id: \"{CRED}\") { id label } }",
        Class::Admin,
    ),
    op("budgets", "{ budgets { id name } }", HIDDEN),
    op(
        "notificationChannels",
        "{ notificationChannels { id name kind url emails secretSet } }",
        HIDDEN,
    ),
    op(
        "notificationChannel",
        "{ notificationChannel(id: \"{CHANNEL}\") { id name url } }",
        HIDDEN,
    ),
    op(
        "budget",
        "{ budget(id: \"{BUDGET}\") { id name } }",
        NOT_FOUND,
    ),
    op(
        "anomalyWatches",
        "{ anomalyWatches { id name projectId channelIds } }",
        HIDDEN,
    ),
    op(
        "anomalyWatch",
        "{ anomalyWatch(id: \"{WATCH}\") { id name } }",
        NOT_FOUND,
    ),
    op(
        "checkBudget",
        "{ checkBudget(projectId: \"{P}\", provider: \"openai\", model: \"gpt-4o\", estimatedCostUsd: \"0.01\") { decision hiddenBudgets } }",
        Class::IngestOrRead,
    ),
    op(
        "alerts",
        "{ alerts(first: 10) { id budgetName projectId } }",
        HIDDEN,
    ),
    op(
        "alert",
        "{ alert(id: \"{ALERT}\") { id budgetName } }",
        NOT_FOUND,
    ),
    op(
        "syncRuns",
        "{ syncRuns(first: 10) { id credentialId } }",
        Class::Admin,
    ),
    op(
        "syncRun",
        "{ syncRun(id: \"{RUN}\") { id } }",
        Class::AdminById,
    ),
    op(
        "syncSchedules",
        "{ syncSchedules(credentialId: \"{CRED}\") { kind enabled } }",
        Class::Admin,
    ),
    op(
        "providerReports",
        "{ providerReports(first: 10) { id projectId note } }",
        HIDDEN,
    ),
    op(
        "subscriptionCosts",
        "{ subscriptionCosts { id plan projectId } }",
        HIDDEN,
    ),
    op(
        "manualEntry",
        "{ manualEntry(provider: \"groq\") { provider } }",
        HIDDEN,
    ),
    op(
        "reconciliation",
        "{ reconciliation(filter: {projectIds: [\"{P}\"], from: \"2026-01-01T00:00:00Z\", to: \"2026-02-01T00:00:00Z\"}) { provider } }",
        FORBIDDEN,
    ),
    op(
        "costSummary",
        "{ costSummary(filter: {projects: [\"{P}\"]}, view: TRACKED) { totals { costUsd } } }",
        FORBIDDEN,
    ),
    op(
        "costBreakdown",
        "{ costBreakdown(groupBy: [ENDPOINT, USER, PROJECT], view: TRACKED) { endpoint user projectId totals { costUsd } } }",
        HIDDEN,
    ),
    op(
        "costTrend",
        "{ costTrend(filter: {projects: [\"{P}\"], from: \"2026-01-01T00:00:00Z\", to: \"2026-01-03T00:00:00Z\"}, granularity: DAY, timezone: \"UTC\", view: TRACKED) { totals { costUsd } } }",
        FORBIDDEN,
    ),
    op(
        "filters",
        "{ filters { endpoints users projects } }",
        HIDDEN,
    ),
    op(
        "recommendations",
        "{ recommendations(minSharePct: \"0\") { model } }",
        HIDDEN,
    ),
    op(
        "anomalies",
        "{ anomalies(baselineDays: 7, minFactor: \"2\", minExcessUsd: \"0\") { subject value } }",
        HIDDEN,
    ),
    // Mutations.
    op(
        "createProject",
        "mutation { createProject(name: \"made\") { id } }",
        Class::Admin,
    ),
    op(
        "createApiToken",
        "mutation { createApiToken(name: \"t\", projectId: \"{P}\", scopes: [READ]) { token } }",
        Class::Admin,
    ),
    op(
        "revokeApiToken",
        "mutation { revokeApiToken(id: \"{TOKEN2}\") { id } }",
        Class::Admin,
    ),
    op(
        "recordUsage",
        "mutation { recordUsage(input: {projectId: \"{P}\", provider: \"openai\", model: \"gpt-4o\", inputTokens: 1}) { duplicate } }",
        Class::Ingest,
    ),
    op(
        "recordUsageBatch",
        "mutation { recordUsageBatch(inputs: [{projectId: \"{P}\", provider: \"openai\", model: \"gpt-4o\", inputTokens: 1}]) { accepted } }",
        Class::Ingest,
    ),
    op(
        "syncPriceSources",
        "mutation { syncPriceSources { repriced } }",
        Class::Admin,
    ),
    op(
        "importUsage",
        "mutation { importUsage(inputs: [{projectId: \"{P}\", provider: \"openai\", model: \"gpt-4o\", inputTokens: 1, idempotencyKey: \"imported\"}]) { imported } }",
        Class::Ingest,
    ),
    op(
        "recomputeCosts",
        "mutation { recomputeCosts(filter: {projects: [\"{P}\"]}) }",
        Class::Admin,
    ),
    op(
        "upsertPrice",
        "mutation { upsertPrice(input: {provider: \"acme\", model: \"access-upsert\", standard: {input: \"1\", output: \"2\"}}) { id } }",
        Class::Admin,
    ),
    op(
        "importPrices",
        "mutation { importPrices(format: LITELLM, document: {}) { imported } }",
        Class::Admin,
    ),
    op(
        "addCredential",
        "mutation { addCredential(input: {provider: \"openai\", label: \"added\", secret: \"sk-admin-access-0123456789\"}) { id } }",
        Class::Admin,
    ),
    op(
        "updateCredential",
        "mutation { updateCredential(id: \"{CRED}\", input: {label: \"renamed\"}) { id } }",
        Class::Admin,
    ),
    op(
        "removeCredential",
        "mutation { removeCredential(id: \"{CRED2}\") { id } }",
        Class::Admin,
    ),
    op(
        "validateCredential",
        "mutation { validateCredential(id: \"{CRED}\") { id } }",
        Class::Admin,
    ),
    op(
        "createBudget",
        "mutation { createBudget(input: {name: \"made\", amountUsd: \"5\", period: MONTHLY}) { id } }",
        Class::Admin,
    ),
    op(
        "updateBudget",
        "mutation { updateBudget(id: \"{BUDGET}\", input: {amountUsd: \"6\"}) { id } }",
        Class::Admin,
    ),
    op(
        "deleteBudget",
        "mutation { deleteBudget(id: \"{BUDGET2}\") }",
        Class::Admin,
    ),
    op(
        "createNotificationChannel",
        "mutation { createNotificationChannel(input: {name: \"made\", kind: EMAIL, emails: [\"made@example.com\"]}) { id } }",
        Class::Admin,
    ),
    op(
        "updateNotificationChannel",
        "mutation { updateNotificationChannel(id: \"{CHANNEL}\", input: {name: \"renamed\"}) { id } }",
        Class::Admin,
    ),
    op(
        "deleteNotificationChannel",
        "mutation { deleteNotificationChannel(id: \"{CHANNEL2}\") }",
        Class::Admin,
    ),
    op(
        "createAnomalyWatch",
        "mutation { createAnomalyWatch(input: {name: \"made\", projectId: \"{P}\", channelIds: [\"{CHANNEL}\"]}) { id } }",
        Class::Admin,
    ),
    op(
        "updateAnomalyWatch",
        "mutation { updateAnomalyWatch(id: \"{WATCH}\", input: {minFactor: \"4\"}) { id } }",
        Class::Admin,
    ),
    op(
        "deleteAnomalyWatch",
        "mutation { deleteAnomalyWatch(id: \"{WATCH2}\") }",
        Class::Admin,
    ),
    op(
        "testNotificationChannel",
        "mutation { testNotificationChannel(id: \"{CHANNEL}\") { delivered error } }",
        Class::Admin,
    ),
    op(
        "acknowledgeAlert",
        "mutation { acknowledgeAlert(id: \"{ALERT}\") { id } }",
        Class::Admin,
    ),
    op(
        "syncNow",
        "mutation { syncNow(credentialId: \"{CRED}\", kind: USAGE, dryRun: true) { id } }",
        Class::Admin,
    ),
    op(
        "updateSyncSchedule",
        "mutation { updateSyncSchedule(input: {credentialId: \"{CRED}\", kind: USAGE, enabled: false}) { kind } }",
        Class::Admin,
    ),
    op(
        "recordManualUsage",
        "mutation { recordManualUsage(input: {provider: \"groq\", projectId: \"{P}\", from: \"2026-01-01T00:00:00Z\", to: \"2026-01-02T00:00:00Z\", amountUsd: \"1\"}) { id } }",
        Class::Admin,
    ),
    op(
        "updateManualUsage",
        "mutation { updateManualUsage(id: \"{REPORT}\", input: {provider: \"groq\", projectId: \"{P}\", from: \"2026-01-01T00:00:00Z\", to: \"2026-01-02T00:00:00Z\", amountUsd: \"2\"}) { id } }",
        Class::Admin,
    ),
    op(
        "deleteManualUsage",
        "mutation { deleteManualUsage(id: \"{REPORT2}\") { id } }",
        Class::Admin,
    ),
    op(
        "createSubscriptionCost",
        "mutation { createSubscriptionCost(input: {provider: \"cursor\", plan: \"made\", amountUsd: \"20\", period: MONTHLY, startsOn: \"2026-01-01\"}) { id } }",
        Class::Admin,
    ),
    op(
        "deleteSubscriptionCost",
        "mutation { deleteSubscriptionCost(id: \"{SUB2}\") { id } }",
        Class::Admin,
    ),
];

/// Every subscription, with the filter that names P.
const SUBSCRIPTIONS: &[Op] = &[
    op(
        "costUpdates",
        "subscription { costUpdates(filter: {projects: [\"{P}\"]}) { kind } }",
        FORBIDDEN,
    ),
    op(
        "alertRaised",
        "subscription { alertRaised(filter: {projects: [\"{P}\"]}) { id } }",
        FORBIDDEN,
    ),
];

/// REST routes and exports: (method, path, class). The GraphQL rules hold here too.
const ROUTES: &[(&str, &str, Class)] = &[
    ("GET", "/api/health", Class::Public),
    // The seed's REST shapes answer for the token's own projects.
    ("GET", "/api/filters", HIDDEN),
    ("GET", "/api/metrics/summary", HIDDEN),
    ("GET", "/api/metrics/by-model", HIDDEN),
    ("GET", "/api/metrics/by-endpoint", HIDDEN),
    ("GET", "/api/metrics/trend", HIDDEN),
    ("GET", "/api/recommendations", HIDDEN),
    ("GET", "/api/logs", HIDDEN),
    // `/api/usage` keeps the seed portal's answer to a project the token may not
    // use (GET or POST): 404 "Project not found or access denied".
    ("GET", "/api/usage", HIDDEN),
    (
        "GET",
        "/api/usage?project_id={P}",
        Class::Read(Other::Refused("NOT_FOUND")),
    ),
    ("POST", "/api/usage", Class::Ingest),
    ("GET", "/export/usage.csv?project={P}", FORBIDDEN),
    ("GET", "/export/usage.jsonl?project={P}", FORBIDDEN),
    ("GET", "/export/usage.csv", HIDDEN),
    ("GET", "/export/usage.jsonl", HIDDEN),
    // OTLP/HTTP: an unbound token names the project in the resource.
    ("POST", "/v1/traces", Class::Ingest),
];

/// Pages anyone may open.
const PUBLIC: &[&str] = &["/", "/README.md", "/healthz", "/graphql", "/metrics"];

/// Strings only P's data carries.
const MARKERS: &[&str] = &[
    "p-endpoint-marker",
    "p-user-marker",
    "p-budget-marker",
    "p-plan-marker",
    "p-manual-marker",
    "p-watch-marker",
];

struct World {
    ids: HashMap<&'static str, String>,
    tokens: HashMap<&'static str, String>,
}

impl World {
    fn fill(&self, template: &str) -> String {
        let mut out = template.to_owned();
        for (k, v) in &self.ids {
            out = out.replace(&format!("{{{k}}}"), v);
        }
        assert!(!out.contains("{P}") && !out.contains("{EVENT}"), "{out}");
        out
    }

    fn token(&self, caller: Caller) -> Option<&str> {
        let key = match caller {
            Caller::NoToken => return None,
            Caller::Revoked => "revoked",
            Caller::IngestP => "ingest_p",
            Caller::ReadQ => "read_q",
            Caller::ReadP => "read_p",
            Caller::Admin => "admin",
        };
        Some(self.tokens[key].as_str())
    }

    fn leaks(&self, text: &str) -> Vec<String> {
        MARKERS
            .iter()
            .map(|m| (*m).to_owned())
            .chain([self.ids["P"].clone()])
            .filter(|m| text.contains(m.as_str()))
            .collect()
    }
}

/// The string at a JSON pointer of an operator's answer.
async fn id_of(app: &TestApp, query: &str, pointer: &str) -> String {
    let r = app.admin(query, json!({})).await;
    r.data()
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no id at {pointer} in {:#}", r.data()))
        .to_owned()
}

async fn world(app: &TestApp) -> World {
    let p = app.create_project("p-access").await;
    let q = app.create_project("q-access").await;
    let mut ids: HashMap<&'static str, String> = HashMap::new();
    let event = app
        .record(
            json!({"projectId": p, "provider": "openai", "model": "gpt-4o", "inputTokens": 1000,
                       "outputTokens": 10, "endpoint": "p-endpoint-marker", "user": "p-user-marker",
                       "latencyMs": 100}),
        )
        .await;
    ids.insert("EVENT", event["event"]["id"].as_str().unwrap().to_owned());
    app.record(
        json!({"projectId": q, "provider": "openai", "model": "gpt-4o", "inputTokens": 5,
                      "endpoint": "q-endpoint", "user": "q-user"}),
    )
    .await;
    ids.insert(
        "PRICE",
        id_of(
            app,
            "mutation { upsertPrice(input: {provider: \"acme\", model: \"access-price\", standard: {input: \"1\", output: \"2\"}}) { id } }",
            "/upsertPrice/id",
        )
        .await,
    );
    for key in ["CRED", "CRED2"] {
        let q = format!(
            "mutation {{ addCredential(input: {{provider: \"openai\", label: \"{key}\", secret: \"sk-admin-access-{key}-0123456789\", projectId: \"{p}\"}}) {{ id }} }}"
        );
        ids.insert(key, id_of(app, &q, "/addCredential/id").await);
    }
    for key in ["BUDGET", "BUDGET2"] {
        let q = format!(
            "mutation {{ createBudget(input: {{name: \"p-budget-marker {key}\", amountUsd: \"0.000001\", period: TOTAL, thresholds: [50], scope: {{projects: [\"{p}\"]}}}}) {{ id }} }}"
        );
        ids.insert(key, id_of(app, &q, "/createBudget/id").await);
    }
    // E-mail channels (no SMTP server is configured: a test message fails cleanly
    // without leaving the machine).
    for key in ["CHANNEL", "CHANNEL2"] {
        let q = format!(
            "mutation {{ createNotificationChannel(input: {{name: \"{key}\", kind: EMAIL, emails: [\"ops@example.com\"]}}) {{ id }} }}"
        );
        ids.insert(key, id_of(app, &q, "/createNotificationChannel/id").await);
    }
    for key in ["WATCH", "WATCH2"] {
        let q = format!(
            "mutation {{ createAnomalyWatch(input: {{name: \"p-watch-marker {key}\", projectId: \"{p}\", channelIds: [\"{}\"]}}) {{ id }} }}",
            ids["CHANNEL"]
        );
        ids.insert(key, id_of(app, &q, "/createAnomalyWatch/id").await);
    }
    // Spend in P crosses the budgets' thresholds: an alert.
    app.record(
        json!({"projectId": p, "provider": "openai", "model": "gpt-4o", "inputTokens": 1000,
                      "endpoint": "p-endpoint-marker", "user": "p-user-marker"}),
    )
    .await;
    let budget = ids["BUDGET"].clone();
    ids.insert(
        "ALERT",
        id_of(
            app,
            &format!("{{ alerts(first: 1, filter: {{budgets: [\"{budget}\"]}}) {{ id }} }}"),
            "/alerts/0/id",
        )
        .await,
    );
    let cred = ids["CRED"].clone();
    ids.insert(
        "RUN",
        id_of(
            app,
            &format!("mutation {{ syncNow(credentialId: \"{cred}\", kind: USAGE, dryRun: true) {{ id }} }}"),
            "/syncNow/id",
        )
        .await,
    );
    for key in ["REPORT", "REPORT2"] {
        let q = format!(
            "mutation {{ recordManualUsage(input: {{provider: \"groq\", projectId: \"{p}\", from: \"2026-01-0{d}T00:00:00Z\", to: \"2026-01-0{e}T00:00:00Z\", amountUsd: \"1\", note: \"p-manual-marker\"}}) {{ id }} }}",
            d = if key == "REPORT" { 1 } else { 3 },
            e = if key == "REPORT" { 2 } else { 4 },
        );
        ids.insert(key, id_of(app, &q, "/recordManualUsage/id").await);
    }
    for key in ["SUB", "SUB2"] {
        let q = format!(
            "mutation {{ createSubscriptionCost(input: {{provider: \"cursor\", plan: \"p-plan-marker {key}\", amountUsd: \"20\", period: MONTHLY, startsOn: \"2026-01-01\", projectId: \"{p}\"}}) {{ id }} }}"
        );
        ids.insert(key, id_of(app, &q, "/createSubscriptionCost/id").await);
    }
    ids.insert(
        "TOKEN2",
        id_of(
            app,
            "mutation { createApiToken(name: \"spare\", scopes: [READ]) { apiToken { id } } }",
            "/createApiToken/apiToken/id",
        )
        .await,
    );
    let mut tokens: HashMap<&'static str, String> = HashMap::new();
    tokens.insert("admin", app.admin_token.clone());
    tokens.insert("ingest_p", app.create_token(Some(&p), &["INGEST"]).await);
    tokens.insert("read_q", app.create_token(Some(&q), &["READ"]).await);
    tokens.insert("read_p", app.create_token(Some(&p), &["READ"]).await);
    let revoked = app
        .admin(
            "mutation { createApiToken(name: \"gone\", scopes: [ADMIN]) { token apiToken { id } } }",
            json!({}),
        )
        .await;
    let revoked_id = revoked.data()["createApiToken"]["apiToken"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    tokens.insert(
        "revoked",
        revoked.data()["createApiToken"]["token"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    app.admin(
        &format!("mutation {{ revokeApiToken(id: \"{revoked_id}\") {{ id }} }}"),
        json!({}),
    )
    .await;
    ids.insert("P", p);
    ids.insert("Q", q);
    World { ids, tokens }
}

/// `ok` or the first error's code.
fn outcome(body: &Value) -> String {
    match body.get("errors").and_then(Value::as_array) {
        Some(errors) if !errors.is_empty() => errors[0]["extensions"]["code"]
            .as_str()
            .unwrap_or("NO_CODE")
            .to_owned(),
        _ => "ok".to_owned(),
    }
}

/// The root fields of the schema's query, mutation and subscription types.
async fn schema_fields(app: &TestApp) -> BTreeSet<String> {
    let r = app
        .admin(
            "{ __schema { queryType { fields { name } } mutationType { fields { name } } subscriptionType { fields { name } } } }",
            json!({}),
        )
        .await;
    let s = &r.data()["__schema"];
    ["queryType", "mutationType", "subscriptionType"]
        .iter()
        .flat_map(|t| s[*t]["fields"].as_array().cloned().unwrap_or_default())
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn every_operation_answers_each_caller_as_documented(app: TestApp) {
    let in_schema = schema_fields(&app).await;
    let in_table: BTreeSet<String> = OPS
        .iter()
        .chain(SUBSCRIPTIONS)
        .map(|o| o.field.to_owned())
        .collect();
    assert_eq!(
        in_schema.difference(&in_table).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "operations in the schema without a row in the access table"
    );
    assert_eq!(
        in_table.difference(&in_schema).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "rows for operations the schema does not have"
    );

    let w = world(&app).await;
    let mut wrong = vec![];
    // What P's own READ token saw: every marker must show up there, or the leak
    // check on Q's answers would search for strings no answer could contain.
    let mut seen_by_p = String::new();
    for o in OPS {
        let document = w.fill(o.document);
        for caller in CALLERS {
            let r = app
                .client
                .post(format!("{}/graphql", app.base_url))
                .json(&json!({"query": document}));
            let r = match w.token(caller) {
                Some(t) => r.bearer_auth(t),
                None => r,
            };
            let body: Value = r.send().await.expect("request").json().await.expect("JSON");
            let got = outcome(&body);
            let want = expected(o.class, caller);
            if got != want {
                wrong.push(format!(
                    "{} as {caller:?}: {got}, expected {want}: {body}",
                    o.field
                ));
            }
            if caller == Caller::ReadP {
                seen_by_p.push_str(&body.to_string());
            }
            if caller == Caller::ReadQ {
                let leaked = w.leaks(&body.to_string());
                if !leaked.is_empty() {
                    wrong.push(format!("{} as ReadQ leaks {leaked:?}: {body}", o.field));
                }
            }
        }
    }

    for marker in MARKERS.iter().copied().chain([w.ids["P"].as_str()]) {
        assert!(
            seen_by_p.contains(marker),
            "P's READ token never saw {marker}: the leak check would prove nothing"
        );
    }

    for o in SUBSCRIPTIONS {
        for caller in CALLERS {
            let got = subscribe(&app, &w, w.token(caller), o).await;
            let want = expected(o.class, caller);
            if got != want {
                wrong.push(format!("{} as {caller:?}: {got}, expected {want}", o.field));
            }
        }
    }

    for (method, path, class) in ROUTES {
        let path = w.fill(path);
        for caller in CALLERS {
            let url = format!("{}{path}", app.base_url);
            let r = if path == "/v1/traces" {
                app.client.post(&url).json(&otlp_span(&w.ids["P"]))
            } else if *method == "POST" {
                app.client
                    .post(&url)
                    .json(&json!({"project_id": w.ids["P"], "provider": "openai",
                    "model": "gpt-4o", "input_tokens": 1, "output_tokens": 1}))
            } else {
                app.client.get(&url)
            };
            let r = match w.token(caller) {
                Some(t) => r.bearer_auth(t),
                None => r,
            };
            let response = r.send().await.expect("request");
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            let got = match status {
                200..=299 => "ok",
                401 => "UNAUTHORIZED",
                403 => "FORBIDDEN",
                404 => "NOT_FOUND",
                _ => "OTHER",
            };
            let mut want = expected(*class, caller);
            if path.starts_with("/api/usage") && want == "FORBIDDEN" {
                want = "NOT_FOUND";
            }
            if got != want {
                wrong.push(format!(
                    "{method} {path} as {caller:?}: {status}, expected {want}: {}",
                    &text[..text.len().min(300)]
                ));
            }
            if caller == Caller::ReadQ {
                let leaked = w.leaks(&text);
                if !leaked.is_empty() {
                    wrong.push(format!("{method} {path} as ReadQ leaks {leaked:?}"));
                }
            }
        }
    }

    for path in PUBLIC {
        let status = app
            .client
            .get(format!("{}{path}", app.base_url))
            .send()
            .await
            .expect("request")
            .status();
        if !status.is_success() {
            wrong.push(format!("GET {path} without a token: {status}"));
        }
    }

    assert!(
        wrong.is_empty(),
        "{} calls answered otherwise than documented:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// An OTLP/JSON request with one GenAI span for project `p` (named in the resource, as
/// an unbound token needs; a project-bound token's own project wins).
fn otlp_span(p: &str) -> Value {
    let end = aispend_e2e::now().timestamp_nanos_opt().unwrap_or_default();
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "aispend.project_id", "value": {"stringValue": p}}]},
        "scopeSpans": [{"spans": [{
            "traceId": format!("{:032x}", rand::random::<u128>()),
            "spanId": format!("{:016x}", rand::random::<u64>()),
            "name": "chat",
            "startTimeUnixNano": (end - 1_000_000_000).to_string(),
            "endTimeUnixNano": end.to_string(),
            "attributes": [
                {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "10"}},
                {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "1"}}
            ]
        }]}]
    }]})
}

/// Subscribes over the websocket: the error or close code, or `ok` once the
/// subscription delivered data (for `costUpdates`, events are recorded in P until one
/// arrives) or, for `alertRaised`, answered no error within a second.
async fn subscribe(app: &TestApp, w: &World, token: Option<&str>, o: &Op) -> String {
    let payload = match token {
        Some(t) => json!({"Authorization": format!("Bearer {t}")}),
        None => json!({}),
    };
    let mut ws = app.ws_connect(payload).await;
    match ws.recv(Duration::from_secs(10)).await {
        Some(WsEvent::Message(m)) if m["type"] == "connection_ack" => {}
        Some(WsEvent::Closed(4401, _)) => return "UNAUTHORIZED".to_owned(),
        Some(WsEvent::Closed(4403, _)) => return "FORBIDDEN".to_owned(),
        other => return format!("{other:?}"),
    }
    ws.subscribe("1", &w.fill(o.document), json!({})).await;
    for i in 0..50 {
        if o.field == "costUpdates" {
            app.record(json!({"projectId": w.ids["P"], "provider": "openai", "model": "gpt-4o",
                              "inputTokens": 1, "idempotencyKey": format!("sub-{}-{i}", rand::random::<u64>())}))
                .await;
        }
        match ws.recv(Duration::from_millis(200)).await {
            Some(WsEvent::Message(m)) if m["type"] == "error" => {
                return m["payload"][0]["extensions"]["code"]
                    .as_str()
                    .unwrap_or("NO_CODE")
                    .to_owned();
            }
            Some(WsEvent::Message(m)) if m["type"] == "next" => return outcome(&m["payload"]),
            Some(WsEvent::Closed(code, _)) => return format!("closed {code}"),
            Some(other @ WsEvent::Ended) => return format!("{other:?}"),
            Some(_) => {}
            None if o.field == "alertRaised" && i >= 4 => return "ok".to_owned(),
            None => {}
        }
    }
    "no answer".to_owned()
}

db_tests!(every_operation_answers_each_caller_as_documented);
