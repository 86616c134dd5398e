//! Fees that depend on how a call was made (issue 12 part 4): Perplexity's request fee
//! by search context size, an image by quality and size, a second of video by
//! resolution. The event names its pricing variant; the price lists a rate per
//! variant; an event whose fee depends on a variant it does not name is unpriced, never
//! priced without the fee.

use aispend_e2e::{TestApp, db_tests};
use serde_json::{Value, json};

const EVENT: &str = "query($id: ID!) { usageEvent(id: $id) {
    pricingVariant requests imagesGenerated videoSeconds costUsd costSource unpricedReason } }";

async fn event(app: &TestApp, id: &Value) -> Value {
    app.admin(EVENT, json!({"id": id})).await.data()["usageEvent"].clone()
}

/// Records one event and returns it as stored.
async fn stored(app: &TestApp, input: Value) -> Value {
    let recorded = app.record(input).await;
    event(app, &recorded["event"]["id"]).await
}

fn cost(e: &Value) -> (&Value, &Value, &Value) {
    (&e["costUsd"], &e["costSource"], &e["unpricedReason"])
}

async fn fees_by_variant_are_charged_and_never_guessed(app: TestApp) {
    let project = app.create_project("search").await;

    // Perplexity's usage object names the search context size; Sonar's fee at `medium`
    // is $8 per 1,000 requests, on top of $1 per million input and output tokens.
    let sonar = |usage: Value| json!({"projectId": project, "provider": "perplexity", "model": "sonar", "usage": usage});
    let medium = stored(
        &app,
        sonar(
            json!({"prompt_tokens": 100, "completion_tokens": 200, "total_tokens": 300,
                     "search_context_size": "medium"}),
        ),
    )
    .await;
    assert_eq!(medium["pricingVariant"], "medium");
    // 300 x $1/M + $0.008
    assert_eq!(
        cost(&medium),
        (&json!("0.0083"), &json!("COMPUTED"), &Value::Null)
    );

    // Without the size the fee is unknown: unpriced, saying why.
    let unknown = stored(
        &app,
        sonar(json!({"prompt_tokens": 100, "completion_tokens": 200, "total_tokens": 300})),
    )
    .await;
    assert_eq!(
        cost(&unknown),
        (
            &Value::Null,
            &json!("UNPRICED"),
            &json!("UNIT_WITHOUT_RATE")
        )
    );

    // Named on the event itself, in any case; two requests pay two fees.
    let high = stored(
        &app,
        json!({"projectId": project, "provider": "perplexity", "model": "sonar",
               "inputTokens": 100, "outputTokens": 200, "requests": 2, "pricingVariant": " HIGH "}),
    )
    .await;
    assert_eq!(high["pricingVariant"], "high");
    // 300 x $1/M + 2 x $0.012
    assert_eq!(high["costUsd"], "0.0243");

    // Veo 3.1 bills a second of 4k video at $0.60; other resolutions at $0.40.
    let veo = |variant: Value| {
        json!({"projectId": project, "provider": "google",
        "model": "veo-3.1-generate-001", "videoSeconds": 8, "pricingVariant": variant})
    };
    assert_eq!(stored(&app, veo(json!("4K"))).await["costUsd"], "4.8");
    assert_eq!(stored(&app, veo(json!("720p"))).await["costUsd"], "3.2");
    assert_eq!(
        cost(&stored(&app, veo(Value::Null)).await),
        (
            &Value::Null,
            &json!("UNPRICED"),
            &json!("UNIT_WITHOUT_RATE")
        )
    );

    // Azure's DALL-E 3 by quality and size (LiteLLM lists it per pixel): an HD
    // 1024x1792 image is 7.19343e-08 x 1,835,008 pixels = $0.132.
    let dalle = |variant: &str| {
        json!({"projectId": project, "provider": "azure",
        "model": "dall-e-3", "imagesGenerated": 2, "pricingVariant": variant})
    };
    let hd = stored(&app, dalle("hd/1024-x-1792")).await;
    assert_eq!(hd["pricingVariant"], "hd/1024x1792");
    assert_eq!(hd["costUsd"], "0.264");
    // A size the price does not list, and no per-image rate for the rest: unpriced.
    assert_eq!(
        cost(&stored(&app, dalle("hd/512x512")).await),
        (
            &Value::Null,
            &json!("UNPRICED"),
            &json!("UNIT_WITHOUT_RATE")
        )
    );

    // A price with variants arriving later prices the events stored before it, by the
    // variant each named.
    let early = app
        .record(
            json!({"projectId": project, "provider": "acme", "model": "acme-search",
                       "inputTokens": 1000, "pricingVariant": "deep"}),
        )
        .await;
    let early_id = early["event"]["id"].clone();
    assert_eq!(
        event(&app, &early_id).await["unpricedReason"],
        "NO_SUCH_MODEL"
    );
    let price = app
        .admin(
            r#"mutation { upsertPrice(input: {provider: "acme", model: "acme-search",
                standard: {input: "2"},
                variants: [{variant: "Quick", request: "0.001"}, {variant: "DEEP", request: "0.02"}]}) {
                variants { variant image webSearch videoSecond request } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        price.data()["upsertPrice"]["variants"],
        json!([
            {"variant": "deep", "image": null, "webSearch": null, "videoSecond": null, "request": "0.02"},
            {"variant": "quick", "image": null, "webSearch": null, "videoSecond": null, "request": "0.001"}
        ])
    );
    // 1000 x $2/M + $0.02
    assert_eq!(
        cost(&event(&app, &early_id).await),
        (&json!("0.022"), &json!("COMPUTED"), &Value::Null)
    );

    // Exports carry the variant.
    let csv = app.export_csv(&project).await;
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let column = header
        .iter()
        .position(|h| *h == "pricing_variant")
        .expect("a pricing_variant column");
    let mut variants: Vec<String> = lines
        .map(|l| l.split(',').nth(column).unwrap_or_default().to_owned())
        .collect();
    variants.sort();
    assert_eq!(
        variants,
        vec![
            "",
            "",
            "4k",
            "720p",
            "deep",
            "hd/1024x1792",
            "hd/512x512",
            "high",
            "medium"
        ]
    );
}

async fn a_bad_variant_names_its_field_and_changes_nothing(app: TestApp) {
    let project = app.create_project("p").await;
    for (variant, why) in [
        ("hd 1024", "is not allowed"),
        ("", "must not be empty"),
        ("hd//1024x1024", "must not be empty"),
    ] {
        let r = app
            .admin(
                aispend_e2e::RECORD_USAGE,
                json!({"input": {"projectId": project, "provider": "perplexity", "model": "sonar",
                    "inputTokens": 1, "pricingVariant": variant}}),
            )
            .await;
        assert_eq!(r.code(), "INVALID_INPUT", "{variant:?}");
        assert_eq!(r.fields(), vec!["input.pricingVariant"], "{variant:?}");
        assert!(
            r.errors()[0]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(why),
            "{:#}",
            r.body
        );
    }
    // A variant that contradicts the usage object's search context size.
    let r = app
        .admin(
            aispend_e2e::RECORD_USAGE,
            json!({"input": {"projectId": project, "provider": "perplexity", "model": "sonar",
                "pricingVariant": "low",
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "search_context_size": "high"}}}),
        )
        .await;
    assert_eq!(r.fields(), vec!["input.pricingVariant"]);
    assert_eq!(app.event_count().await, 0);

    // A price's variants: each spelled once, each with a valid name and a rate.
    let upsert = |variants: &str| {
        format!(
            r#"mutation {{ upsertPrice(input: {{provider: "acme", model: "acme-x",
                standard: {{input: "1"}}, variants: {variants}}}) {{ id }} }}"#
        )
    };
    let bad_name = app
        .admin(&upsert(r#"[{variant: "a b", request: "1"}]"#), json!({}))
        .await;
    assert_eq!(
        bad_name.field().as_deref(),
        Some("input.variants.0.variant")
    );
    let twice = app
        .admin(
            &upsert(r#"[{variant: "low", request: "1"}, {variant: "LOW", request: "2"}]"#),
            json!({}),
        )
        .await;
    assert_eq!(twice.field().as_deref(), Some("input.variants.1.variant"));
    let empty = app.admin(&upsert(r#"[{variant: "low"}]"#), json!({})).await;
    assert_eq!(empty.field().as_deref(), Some("input.variants.low"));
    let negative = app
        .admin(&upsert(r#"[{variant: "low", request: "-1"}]"#), json!({}))
        .await;
    assert_eq!(
        negative.field().as_deref(),
        Some("input.variants.low.request")
    );
    let listed = app
        .admin(
            r#"{ prices(filter: {providers: ["acme"]}) { id } }"#,
            json!({}),
        )
        .await;
    assert_eq!(listed.data()["prices"], json!([]));
}

db_tests!(
    fees_by_variant_are_charged_and_never_guessed,
    a_bad_variant_names_its_field_and_changes_nothing,
);
