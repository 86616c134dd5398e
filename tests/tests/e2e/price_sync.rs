//! Prices that keep themselves current: price sources served from 127.0.0.1 in
//! LiteLLM's and genai-prices' formats, synced as new price periods; a person's price
//! untouched; a tenfold jump, a mass removal and an unreadable document refused whole
//! with the reason; unpriced events priced when their price arrives, with rollups
//! equal to the `GROUP BY` of the events — also when two re-pricings run at once.

use aispend::domain::price::rates::{RateCard, RateSet};
use aispend::domain::price::{self, MatchRule, PriceSource, RawPrice};
use aispend_e2e::fake_provider::{FakeProvider, Reply};
use aispend_e2e::{Backend, TestApp, backend_tests, db_tests, spawn_app_with};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SYNC: &str = "mutation { syncPriceSources { repriced sources { url status error added changed removed unchanged skipped lastSyncAt } } }";
const SOURCES: &str =
    "{ priceSources { url status error added changed removed lastSyncAt lastAttemptAt format } }";
const CHANGES: &str = "query($f: PriceChangeFilter) { priceChanges(filter: $f) { at provider model kind source origin oldPriceId newPriceId newRates } }";
const PRICES: &str = "query($f: PriceFilter) { prices(filter: $f) { id model source effectiveFrom effectiveTo standard { input output } } }";
const EVENT: &str = "query($id: ID!) { usageEvent(id: $id) { costUsd costSource unpricedReason price { model source } } }";

/// A LiteLLM map of `openai` chat models with (input, output) USD per million tokens.
fn litellm(models: &[(&str, f64, f64)]) -> Value {
    let mut map = serde_json::Map::new();
    for (model, input, output) in models {
        map.insert(
            (*model).to_owned(),
            json!({
                "litellm_provider": "openai",
                "mode": "chat",
                "input_cost_per_token": input / 1e6,
                "output_cost_per_token": output / 1e6,
            }),
        );
    }
    Value::Object(map)
}

/// A document server on 127.0.0.1 whose answer the test can change.
struct DocServer {
    server: FakeProvider,
    doc: Arc<Mutex<Reply>>,
}

impl DocServer {
    async fn start(doc: Value) -> DocServer {
        let current = Arc::new(Mutex::new(Reply::json(doc)));
        let served = current.clone();
        let server = FakeProvider::start(move |_| served.lock().expect("lock").clone()).await;
        DocServer {
            server,
            doc: current,
        }
    }

    fn serve(&self, reply: Reply) {
        *self.doc.lock().expect("lock") = reply;
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.server.base_url())
    }
}

/// A server with these sources and no schedule (each scenario syncs when it wants).
async fn app_with_sources(backend: Backend, sources: &[String]) -> TestApp {
    let sources: Vec<_> = sources
        .iter()
        .map(|s| s.parse().expect("a price source"))
        .collect();
    spawn_app_with(backend, move |s| {
        s.prices.price_sources = sources;
        s.prices.price_sync_interval_secs = 0;
    })
    .await
}

async fn sync(app: &TestApp) -> Value {
    app.admin(SYNC, json!({})).await.data()["syncPriceSources"].clone()
}

async fn prices_of(app: &TestApp, model: &str) -> Vec<Value> {
    let r = app
        .admin(PRICES, json!({"f": {"model": model, "sources": ["SYNC"]}}))
        .await;
    r.data()["prices"]
        .as_array()
        .expect("prices")
        .iter()
        .filter(|p| p["model"] == model)
        .cloned()
        .collect()
}

async fn budget_status(app: &TestApp, id: &str) -> Value {
    app.admin(
        "query($id: ID!) { budget(id: $id) { status { spentUsd thresholdsReached } } }",
        json!({"id": id}),
    )
    .await
    .data()["budget"]["status"]
        .clone()
}

async fn event(app: &TestApp, id: &Value) -> Value {
    app.admin(EVENT, json!({"id": id})).await.data()["usageEvent"].clone()
}

/// Cost and unpriced count per (provider, model): from the events, and from each
/// rollup that has a model.
async fn assert_rollups_equal_group_by(app: &TestApp) {
    app.folded().await;
    let db = &app.state.db;
    let backend = db.get_database_backend();
    let query = |sql: &str| Statement::from_string(backend, sql.to_owned());
    let read = |rows: Vec<sea_orm::QueryResult>| -> Vec<(String, String, i64, i64)> {
        rows.into_iter()
            .map(|r| {
                (
                    r.try_get_by_index::<String>(0).expect("provider"),
                    r.try_get_by_index::<String>(1).expect("model"),
                    r.try_get_by_index::<i64>(2).expect("cost"),
                    r.try_get_by_index::<i64>(3).expect("unpriced"),
                )
            })
            .collect()
    };
    let events = read(
        db.query_all_raw(query(
            "SELECT provider, model, CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT), \
             CAST(SUM(CASE WHEN cost_source = 'UNPRICED' THEN 1 ELSE 0 END) AS BIGINT) \
             FROM usage_events GROUP BY provider, model ORDER BY provider, model",
        ))
        .await
        .expect("events"),
    );
    assert!(!events.is_empty());
    for table in [
        "usage_rollup_days",
        "usage_rollup_global_days",
        "usage_rollup_model_hours",
        "usage_rollup_endpoint_days",
    ] {
        let rollup = read(
            db.query_all_raw(query(&format!(
                "SELECT provider, model, CAST(SUM(cost_nanos_hi * 1000000000 + cost_nanos) AS BIGINT), \
                 CAST(SUM(unpriced_hi * 1000000000 + unpriced) AS BIGINT) \
                 FROM {table} GROUP BY provider, model ORDER BY provider, model"
            )))
            .await
            .expect("rollup"),
        );
        assert_eq!(rollup, events, "{table} against the GROUP BY of the events");
    }
}

async fn a_sync_adds_and_changes_prices_as_new_periods(backend: Backend) {
    let docs = DocServer::start(litellm(&[
        ("sync-model-a", 1.0, 2.0),
        ("sync-model-b", 3.0, 4.0),
    ]))
    .await;
    let url = docs.url("map.json");
    let app = app_with_sources(backend, &[format!("litellm:{url}")]).await;
    assert_eq!(
        app.admin(SOURCES, json!({})).await.data()["priceSources"][0]["status"],
        "NEVER",
        "a configured source is listed before its first sync"
    );
    let first = sync(&app).await;
    let s = &first["sources"][0];
    assert_eq!(
        (&s["status"], &s["added"], &s["changed"], &s["removed"]),
        (&json!("OK"), &json!(2), &json!(0), &json!(0)),
        "{first}"
    );
    let project = app.create_project("p").await;
    let before = app
        .record(json!({"projectId": project, "provider": "openai", "model": "sync-model-a", "inputTokens": 1_000_000, "outputTokens": 1_000_000}))
        .await;
    assert_eq!(before["event"]["costUsd"], "3");
    assert_eq!(before["event"]["price"]["source"], "SYNC");

    // The same document again changes nothing.
    let again = sync(&app).await;
    assert_eq!(
        (
            &again["sources"][0]["added"],
            &again["sources"][0]["unchanged"]
        ),
        (&json!(0), &json!(2))
    );

    docs.serve(Reply::json(litellm(&[
        ("sync-model-a", 1.5, 2.0),
        ("sync-model-b", 3.0, 4.0),
    ])));
    let second = sync(&app).await;
    let s = &second["sources"][0];
    assert_eq!(
        (&s["status"], &s["added"], &s["changed"], &s["unchanged"]),
        (&json!("OK"), &json!(0), &json!(1), &json!(1)),
        "{second}"
    );
    // Two periods: the first closed when the change was seen, the second open.
    let periods = prices_of(&app, "sync-model-a").await;
    assert_eq!(periods.len(), 2, "{periods:?}");
    assert_eq!(periods[0]["effectiveFrom"], "1970-01-01T00:00:00Z");
    assert_eq!(periods[0]["standard"]["input"], "1");
    assert_eq!(periods[0]["effectiveTo"], periods[1]["effectiveFrom"]);
    assert_eq!(periods[1]["standard"]["input"], "1.5");
    assert_eq!(periods[1]["effectiveTo"], Value::Null);
    // History is not edited: the earlier event keeps its price, even re-priced.
    app.admin("mutation { recomputeCosts }", json!({})).await;
    assert_eq!(event(&app, &before["event"]["id"]).await["costUsd"], "3");
    let after = app
        .record(json!({"projectId": project, "provider": "openai", "model": "sync-model-a", "inputTokens": 1_000_000, "outputTokens": 1_000_000}))
        .await;
    assert_eq!(after["event"]["costUsd"], "3.5");

    // The change log says what changed, when, and from where.
    let log = app
        .admin(CHANGES, json!({"f": {"model": "sync-model-a"}}))
        .await;
    let log = log.data()["priceChanges"]
        .as_array()
        .expect("changes")
        .clone();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(
        (&log[0]["kind"], &log[0]["source"], &log[0]["origin"]),
        (&json!("CHANGED"), &json!("SYNC"), &json!(url))
    );
    assert_eq!(log[0]["at"], periods[1]["effectiveFrom"]);
    assert_eq!(log[0]["newRates"]["standard"]["input"], "1.5");
    assert_eq!(log[1]["kind"], "ADDED");
}

async fn genai_prices_data_is_read_and_the_first_source_wins(backend: Backend) {
    let litellm_docs = DocServer::start(litellm(&[("sync-model-a", 1.0, 2.0)])).await;
    let genai_docs = DocServer::start(json!([
        {"id": "openai", "name": "OpenAI", "api_pattern": "x", "models": [
            {"id": "sync-model-a", "match": {"equals": "sync-model-a"}, "prices": {"input_mtok": 9, "output_mtok": 9}},
            {"id": "sync-model-g", "match": {"equals": "sync-model-g"}, "prices": {
                "input_mtok": {"base": 2, "tiers": [{"start": 200000, "price": 4}]},
                "output_mtok": 8, "cache_read_mtok": 0.2
            }}
        ]}
    ]))
    .await;
    // Formats detected from the documents' shape (no prefix).
    let app = app_with_sources(
        backend,
        &[litellm_docs.url("map.json"), genai_docs.url("data.json")],
    )
    .await;
    let r = sync(&app).await;
    let by_url = |url: String| {
        r["sources"]
            .as_array()
            .expect("sources")
            .iter()
            .find(|s| s["url"] == url.as_str())
            .cloned()
            .expect("the source")
    };
    assert_eq!(by_url(litellm_docs.url("map.json"))["added"], 1);
    let genai = by_url(genai_docs.url("data.json"));
    assert_eq!(
        (&genai["status"], &genai["added"], &genai["skipped"]),
        (&json!("OK"), &json!(1), &json!(1)),
        "sync-model-a belongs to the source listed first: {genai}"
    );
    let formats = app.admin(SOURCES, json!({})).await;
    let mut formats: Vec<String> = formats.data()["priceSources"]
        .as_array()
        .expect("sources")
        .iter()
        .map(|s| s["format"].as_str().unwrap_or("").to_owned())
        .collect();
    formats.sort();
    assert_eq!(formats, vec!["GENAI_PRICES", "LITELLM"]);
    let project = app.create_project("p").await;
    let e = app
        .record(json!({"projectId": project, "provider": "openai", "model": "sync-model-g", "inputTokens": 100_000, "cacheReadTokens": 50_000, "outputTokens": 1_000_000}))
        .await;
    // Below the 200k tier: 0.1 M x 2 + 0.05 M x 0.2 + 1 M x 8.
    assert_eq!(e["event"]["costUsd"], "8.21");
    let long = app
        .record(json!({"projectId": project, "provider": "openai", "model": "sync-model-g", "inputTokens": 300_000}))
        .await;
    assert_eq!(long["event"]["costUsd"], "1.2", "above the tier: 0.3 M x 4");
    let a = prices_of(&app, "sync-model-a").await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["standard"]["input"], "1");
}

async fn a_price_a_person_set_is_never_overridden(backend: Backend) {
    let docs = DocServer::start(litellm(&[("sync-model-u", 5.0, 5.0)])).await;
    let app = app_with_sources(backend, &[docs.url("map.json")]).await;
    app.admin(
        "mutation($i: PriceInput!) { upsertPrice(input: $i) { id } }",
        json!({"i": {"provider": "openai", "model": "sync-model-u", "matchRule": "EXACT", "standard": {"input": "1", "output": "1"}}}),
    )
    .await
    .data();
    let r = sync(&app).await;
    assert_eq!(
        (&r["sources"][0]["added"], &r["sources"][0]["skipped"]),
        (&json!(0), &json!(1)),
        "{r}"
    );
    assert!(prices_of(&app, "sync-model-u").await.is_empty());
    let project = app.create_project("p").await;
    let e = app
        .record(json!({"projectId": project, "provider": "openai", "model": "sync-model-u", "inputTokens": 1_000_000}))
        .await;
    assert_eq!(
        (&e["event"]["costUsd"], &e["event"]["price"]["source"]),
        (&json!("1"), &json!("USER"))
    );
}

async fn a_tenfold_jump_a_mass_removal_or_a_bad_document_is_refused_whole(backend: Backend) {
    let five = [
        ("sync-model-1", 1.0, 2.0),
        ("sync-model-2", 1.0, 2.0),
        ("sync-model-3", 1.0, 2.0),
        ("sync-model-4", 1.0, 2.0),
        ("sync-model-5", 1.0, 2.0),
    ];
    // A first document is checked against the prices in effect too: gpt-4o at a
    // hundred times the built-in rate is a unit mistake, not a price.
    let mut unit_mistake = five.to_vec();
    unit_mistake.push(("gpt-4o", 250.0, 1000.0));
    let docs = DocServer::start(litellm(&unit_mistake)).await;
    let url = docs.url("map.json");
    let app = app_with_sources(backend, std::slice::from_ref(&url)).await;
    let r = sync(&app).await;
    assert_eq!(r["sources"][0]["status"], "REFUSED", "{r}");
    assert!(
        r["sources"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("openai/gpt-4o") && e.contains("BUILTIN")),
        "{r}"
    );
    assert!(
        prices_of(&app, "sync-model-1").await.is_empty(),
        "refused whole"
    );

    docs.serve(Reply::json(litellm(&five)));
    let first = sync(&app).await;
    assert_eq!(first["sources"][0]["added"], 5);
    let synced_at = first["sources"][0]["lastSyncAt"].clone();

    // One rate up twentyfold (and another changed a little): nothing is written.
    let mut jump = five.to_vec();
    jump[0].2 = 40.0;
    jump[1].1 = 1.1;
    docs.serve(Reply::json(litellm(&jump)));
    let r = sync(&app).await;
    let s = &r["sources"][0];
    assert_eq!(s["status"], "REFUSED", "{r}");
    let error = s["error"].as_str().expect("a reason");
    assert!(
        error.contains("sync-model-1") && error.contains("standard.output from 2 to 40"),
        "{error}"
    );
    assert_eq!(
        prices_of(&app, "sync-model-2").await.len(),
        1,
        "refused whole"
    );
    let listed = app.admin(SOURCES, json!({})).await;
    let listed = &listed.data()["priceSources"][0];
    assert_eq!(listed["status"], "REFUSED");
    assert_eq!(listed["error"], s["error"]);
    assert_eq!(
        listed["lastSyncAt"], synced_at,
        "the last applied sync stays"
    );

    // Four of five rows gone: more than the allowed share.
    docs.serve(Reply::json(litellm(&five[..1])));
    let r = sync(&app).await;
    let s = &r["sources"][0];
    assert_eq!(s["status"], "REFUSED", "{r}");
    assert!(
        s["error"]
            .as_str()
            .is_some_and(|e| e.contains("remove 4 of the 5")),
        "{r}"
    );
    assert_eq!(s["removed"], 4, "what it would have done");
    assert_eq!(
        prices_of(&app, "sync-model-5").await[0]["effectiveTo"],
        Value::Null
    );

    // One of five (20 %) is allowed.
    docs.serve(Reply::json(litellm(&five[..4])));
    let r = sync(&app).await;
    assert_eq!(
        (&r["sources"][0]["status"], &r["sources"][0]["removed"]),
        (&json!("OK"), &json!(1)),
        "{r}"
    );
    assert_ne!(
        prices_of(&app, "sync-model-5").await[0]["effectiveTo"],
        Value::Null
    );

    // An unreachable or unreadable document fails, and changes nothing.
    docs.serve(Reply::status(500, "down"));
    let r = sync(&app).await;
    assert_eq!(r["sources"][0]["status"], "FAILED");
    assert!(
        r["sources"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("500")),
        "{r}"
    );
    docs.serve(Reply::status(200, "{not json"));
    let r = sync(&app).await;
    assert_eq!(r["sources"][0]["status"], "FAILED");
    assert_eq!(
        prices_of(&app, "sync-model-4").await[0]["effectiveTo"],
        Value::Null
    );
}

async fn an_unpriced_event_is_priced_when_its_price_arrives(backend: Backend) {
    let docs = DocServer::start(litellm(&[("sync-model-a", 1.0, 2.0)])).await;
    let app = app_with_sources(backend, &[docs.url("map.json")]).await;
    let project = app.create_project("p").await;
    let record = |model: &str| json!({"projectId": project, "provider": "openai", "model": model, "inputTokens": 1_000_000, "outputTokens": 1_000_000, "occurredAt": "2026-01-05T10:00:00Z"});
    let z = app.record(record("sync-model-z")).await;
    let variant = app.record(record("sync-model-a-tts")).await;
    assert_eq!(z["event"]["costSource"], "UNPRICED");
    assert_eq!(
        event(&app, &z["event"]["id"]).await["unpricedReason"],
        "NO_SUCH_MODEL"
    );
    let budget = super::budgets::create_budget(
        &app,
        json!({"name": "all of openai", "amountUsd": "10", "period": "TOTAL", "thresholds": [50], "scope": {"providers": ["openai"]}}),
    )
    .await;
    assert_eq!(budget_status(&app, &budget).await["spentUsd"], "0");
    // Live updates follow the re-pricing.
    let mut ws = app
        .subscribe(
            &app.admin_token,
            "subscription { costUpdates { kind deltaUsd } }",
            json!({}),
        )
        .await;

    docs.serve(Reply::json(litellm(&[
        ("sync-model-a", 1.0, 2.0),
        ("sync-model-z", 4.0, 4.0),
    ])));
    let r = sync(&app).await;
    assert_eq!(r["repriced"], 1, "{r}");
    let priced = event(&app, &z["event"]["id"]).await;
    assert_eq!(
        priced,
        json!({"costUsd": "8", "costSource": "COMPUTED", "unpricedReason": null, "price": {"model": "sync-model-z", "source": "SYNC"}})
    );
    // A variant is not priced as its base model, and says so.
    assert_eq!(
        event(&app, &variant["event"]["id"]).await["unpricedReason"],
        "VARIANT_WITHOUT_PRICE"
    );
    let update = ws.next_data("1", Duration::from_secs(10)).await;
    assert_eq!(
        update["costUpdates"],
        json!({"kind": "REPRICED", "deltaUsd": "8"}),
        "live updates follow the re-pricing"
    );
    assert_rollups_equal_group_by(&app).await;
    assert_eq!(
        budget_status(&app, &budget).await,
        json!({"spentUsd": "8", "thresholdsReached": [50]}),
        "the budget followed, and its threshold fired"
    );

    // upsertPrice prices the variant at once.
    app.admin(
        "mutation($i: PriceInput!) { upsertPrice(input: $i) { id } }",
        json!({"i": {"provider": "openai", "model": "sync-model-a-tts", "standard": {"input": "1", "output": "1"}}}),
    )
    .await
    .data();
    assert_eq!(event(&app, &variant["event"]["id"]).await["costUsd"], "2");

    // So does importPrices, in genai-prices' format too.
    let i = app.record(record("sync-model-i")).await;
    assert_eq!(i["event"]["costSource"], "UNPRICED");
    let r = app
        .admin(
            "mutation($d: JSON!) { importPrices(format: GENAI_PRICES, document: $d) { imported skipped } }",
            json!({"d": [{"id": "openai", "models": [{"id": "sync-model-i", "prices": {"input_mtok": "0.5", "output_mtok": "0.5"}}]}]}),
        )
        .await;
    assert_eq!(
        r.data()["importPrices"],
        json!({"imported": 1, "skipped": 0})
    );
    assert_eq!(event(&app, &i["event"]["id"]).await["costUsd"], "1");
    assert_rollups_equal_group_by(&app).await;
    let log = app
        .admin(CHANGES, json!({"f": {"sources": ["IMPORT", "USER"]}}))
        .await;
    let kinds: Vec<(String, String)> = log.data()["priceChanges"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["model"].as_str().unwrap_or("").to_owned(),
                c["source"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("sync-model-i".to_owned(), "IMPORT".to_owned()),
            ("sync-model-a-tts".to_owned(), "USER".to_owned())
        ],
        "people's and imports' changes are logged too"
    );
}

async fn two_repricings_at_once_count_each_event_once(app: TestApp) {
    let project = app.create_project("p").await;
    let inputs: Vec<Value> = (0..600)
        .map(|i| json!({"projectId": project, "provider": "acme", "model": "acme-race", "inputTokens": 1000 + i, "occurredAt": "2026-01-05T10:00:00Z"}))
        .collect();
    app.admin(
        "mutation($i: [UsageInput!]!) { recordUsageBatch(inputs: $i) { events { id } } }",
        json!({"i": inputs}),
    )
    .await
    .data();
    // The price is written behind the server's back, so nothing re-prices yet.
    let draft = RawPrice {
        provider: "acme".into(),
        model: "acme-race".into(),
        match_rule: Some(MatchRule::Exact),
        card: RateCard {
            standard: RateSet {
                input: Some(Decimal::from(3)),
                ..Default::default()
            },
            ..Default::default()
        },
        ..Default::default()
    }
    .parse()
    .expect("a price");
    price::upsert_all(&app.state.db, &[(draft, vec![])], PriceSource::User)
        .await
        .expect("stored");
    app.state
        .prices
        .reload(&app.state.db)
        .await
        .expect("reloaded");
    let ledger = app.state.ledger.clone();
    let (a, b, c) = tokio::join!(
        ledger.reprice_unpriced(&[]),
        ledger.reprice_unpriced(&[]),
        app.admin("mutation { recomputeCosts }", json!({}))
    );
    let total =
        a.expect("first") + b.expect("second") + c.data()["recomputeCosts"].as_u64().unwrap_or(0);
    assert_eq!(total, 600, "every event re-priced exactly once");
    assert_rollups_equal_group_by(&app).await;
    let summary = app
        .admin(
            "{ costSummary(filter: {providers: [\"acme\"]}) { totals { costUsd } } }",
            json!({}),
        )
        .await;
    // 600 events of 1000..1599 input tokens at $3 per million.
    let tokens: i64 = (0..600).map(|i| 1000 + i).sum();
    let expected = Decimal::from(tokens * 3) / Decimal::from(1_000_000);
    assert_eq!(
        summary.data()["costSummary"]["totals"]["costUsd"],
        expected.normalize().to_string()
    );
}

async fn the_scheduled_job_syncs_without_being_asked(backend: Backend) {
    let docs = DocServer::start(litellm(&[("sync-model-s", 1.0, 1.0)])).await;
    let url = docs.url("map.json");
    let app = spawn_app_with(backend, |s| {
        s.prices.price_sources = vec![url.parse().expect("a source")];
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = app.admin(SOURCES, json!({})).await;
        if r.data()["priceSources"][0]["status"] == "OK" {
            assert_eq!(r.data()["priceSources"][0]["added"], 1);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no scheduled sync: {:?}",
            r.data()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(prices_of(&app, "sync-model-s").await.len(), 1);
    assert!(!docs.server.seen().is_empty());
}

async fn no_source_means_no_sync_and_price_changes_validate_input(app: TestApp) {
    let r = sync(&app).await;
    assert_eq!(r, json!({"repriced": 0, "sources": []}));
    assert_eq!(
        app.admin(SOURCES, json!({})).await.data()["priceSources"],
        json!([])
    );
    let bad = app
        .admin(CHANGES, json!({"f": {"providers": ["not a provider!"]}}))
        .await;
    assert_eq!(bad.code(), "INVALID_INPUT");
    assert_eq!(bad.field().as_deref(), Some("filter.providers.0"));
    let reader = app.create_token(None, &["READ"]).await;
    let denied = app.graphql(Some(&reader), SOURCES, json!({})).await;
    assert_eq!(denied.code(), "FORBIDDEN");
    let denied = app.graphql(Some(&reader), SYNC, json!({})).await;
    assert_eq!(denied.code(), "FORBIDDEN");
}

backend_tests!(
    a_sync_adds_and_changes_prices_as_new_periods,
    genai_prices_data_is_read_and_the_first_source_wins,
    a_price_a_person_set_is_never_overridden,
    a_tenfold_jump_a_mass_removal_or_a_bad_document_is_refused_whole,
    an_unpriced_event_is_priced_when_its_price_arrives,
    the_scheduled_job_syncs_without_being_asked,
);

db_tests!(
    two_repricings_at_once_count_each_event_once,
    no_source_means_no_sync_and_price_changes_validate_input,
);
