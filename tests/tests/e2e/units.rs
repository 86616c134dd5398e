//! Units beyond text tokens (issue 12 part 4): audio and image tokens, generated
//! images, web-search calls and video seconds are recorded, read from providers' raw
//! usage objects, priced by their own rates, never priced as text without one, priced
//! as soon as a rate arrives, and carried by exports and analytics.

use aispend_e2e::{TestApp, db_tests};
use serde_json::{Value, json};

const EVENT: &str = "query($id: ID!) { usageEvent(id: $id) {
    inputTokens outputTokens cacheReadTokens audioInputTokens audioOutputTokens
    imageInputTokens imageOutputTokens imagesGenerated webSearchCalls videoSeconds
    costUsd costSource unpricedReason } }";

async fn event(app: &TestApp, id: &Value) -> Value {
    app.admin(EVENT, json!({"id": id})).await.data()["usageEvent"].clone()
}

async fn units_are_recorded_priced_and_carried(app: TestApp) {
    let project = app.create_project("voice").await;

    // A Realtime `response.done` usage: cached audio stays a cache read.
    let realtime = app
        .record(json!({"projectId": project, "provider": "openai", "model": "gpt-realtime", "usage": {
            "total_tokens": 1900, "input_tokens": 1500, "output_tokens": 400,
            "input_token_details": {"text_tokens": 300, "audio_tokens": 1200, "image_tokens": 0,
                "cached_tokens": 640, "cached_tokens_details": {"text_tokens": 128, "audio_tokens": 512}},
            "output_token_details": {"text_tokens": 100, "audio_tokens": 300}
        }}))
        .await;
    let realtime = event(&app, &realtime["event"]["id"]).await;
    assert_eq!(
        (
            &realtime["inputTokens"],
            &realtime["cacheReadTokens"],
            &realtime["outputTokens"],
            &realtime["audioInputTokens"],
            &realtime["audioOutputTokens"]
        ),
        (
            &json!(172),
            &json!(640),
            &json!(100),
            &json!(688),
            &json!(300)
        )
    );
    // gpt-realtime: text $4 / $16, cached $0.40, audio $32 / $64 per million:
    // 172 x 4 + 640 x 0.4 + 100 x 16 + 688 x 32 + 300 x 64 = 43,760 per million.
    assert_eq!(realtime["costUsd"], "0.04376");
    assert_eq!(realtime["costSource"], "COMPUTED");

    // Anthropic's server-side web searches, $10 per 1,000.
    let searched = app
        .record(json!({"projectId": project, "provider": "anthropic", "model": "claude-sonnet-4-5", "usage": {
            "input_tokens": 900, "output_tokens": 600, "cache_read_input_tokens": 0,
            "server_tool_use": {"web_search_requests": 1, "web_fetch_requests": 2}
        }}))
        .await;
    // 900 x $3/M + 600 x $15/M + 1 x $0.01
    assert_eq!(searched["event"]["costUsd"], "0.0217");
    assert_eq!(
        event(&app, &searched["event"]["id"]).await["webSearchCalls"],
        1
    );

    // Audio under a price with no audio rate: unpriced and saying why, not text.
    app.admin(
        r#"mutation { upsertPrice(input: {provider: "acme", model: "acme-voice",
            standard: {input: "1", output: "2"}}) { id } }"#,
        json!({}),
    )
    .await
    .data();
    let voice = app
        .record(
            json!({"projectId": project, "provider": "acme", "model": "acme-voice",
            "inputTokens": 10, "audioInputTokens": 1000, "imagesGenerated": 2}),
        )
        .await;
    let id = voice["event"]["id"].clone();
    let stored = event(&app, &id).await;
    assert_eq!(
        (
            &stored["costUsd"],
            &stored["costSource"],
            &stored["unpricedReason"]
        ),
        (
            &Value::Null,
            &json!("UNPRICED"),
            &json!("UNIT_WITHOUT_RATE")
        )
    );
    // The audio rate alone is not enough: the images still have none.
    app.admin(
        r#"mutation { upsertPrice(input: {provider: "acme", model: "acme-voice",
            standard: {input: "1", output: "2", audioInput: "40"}}) { id } }"#,
        json!({}),
    )
    .await
    .data();
    assert_eq!(
        event(&app, &id).await["unpricedReason"],
        "UNIT_WITHOUT_RATE"
    );
    // With a rate for every unit it used, it is priced at once.
    app.admin(
        r#"mutation { upsertPrice(input: {provider: "acme", model: "acme-voice",
            standard: {input: "1", output: "2", audioInput: "40", image: "0.04"}}) {
            id standard { audioInput image } } }"#,
        json!({}),
    )
    .await
    .data();
    // `upsertPrice` re-prices the unpriced events before it answers.
    let priced = event(&app, &id).await;
    assert_eq!(priced["costSource"], "COMPUTED");
    assert_eq!(priced["unpricedReason"], Value::Null);
    // 10 x $1/M + 1000 x $40/M + 2 x $0.04
    assert_eq!(priced["costUsd"], "0.12001");

    // Analytics sum what the units cost and count the units, from the rollups (whole
    // days) and from raw events (a window inside the day) alike.
    let now = aispend_e2e::now();
    let windows = [
        json!({"projects": [project]}),
        json!({"projects": [project],
               "from": (now - chrono::Duration::hours(1)).to_rfc3339(),
               "to": (now + chrono::Duration::hours(1)).to_rfc3339()}),
    ];
    for filter in windows {
        let r = app
            .admin(
                "query($f: UsageFilter) { costSummary(filter: $f) { totals {
                    costUsd events unpricedEvents audioInputTokens audioOutputTokens
                    imageInputTokens imageOutputTokens imagesGenerated webSearchCalls videoSeconds } } }",
                json!({"f": filter}),
            )
            .await;
        assert_eq!(
            r.data()["costSummary"]["totals"],
            json!({"costUsd": "0.18547", "events": 3, "unpricedEvents": 0,
                   "audioInputTokens": 1688, "audioOutputTokens": 300, "imageInputTokens": 0,
                   "imageOutputTokens": 0, "imagesGenerated": 2, "webSearchCalls": 1, "videoSeconds": 0}),
            "{filter}"
        );
    }

    // Exports carry every unit.
    let csv = app.export_csv(&project).await;
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let column = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let realtime_row = rows
        .iter()
        .find(|r| r[column("model")] == "gpt-realtime")
        .expect("the realtime event is exported");
    assert_eq!(
        (
            realtime_row[column("audio_input_tokens")],
            realtime_row[column("audio_output_tokens")]
        ),
        ("688", "300")
    );
    let voice_row = rows
        .iter()
        .find(|r| r[column("model")] == "acme-voice")
        .expect("the acme event is exported");
    assert_eq!(voice_row[column("images_generated")], "2");
    assert_eq!(voice_row[column("web_search_calls")], "0");
}

async fn a_bad_unit_count_names_its_field_and_stores_nothing(app: TestApp) {
    let project = app.create_project("p").await;
    let r = app
        .admin(
            aispend_e2e::RECORD_USAGE,
            json!({"input": {"projectId": project, "provider": "openai", "model": "gpt-realtime",
                "audioInputTokens": -1, "videoSeconds": 1_000_000_000_001_i64}}),
        )
        .await;
    assert_eq!(r.code(), "INVALID_INPUT");
    assert_eq!(
        r.fields(),
        vec!["input.audioInputTokens", "input.videoSeconds"]
    );
    // Unit fields and a raw usage object together are one input error too.
    let both = app
        .admin(
            aispend_e2e::RECORD_USAGE,
            json!({"input": {"projectId": project, "provider": "openai", "model": "gpt-realtime",
                "webSearchCalls": 1, "usage": {"prompt_tokens": 1}}}),
        )
        .await;
    assert_eq!(both.fields(), vec!["input.usage"]);
    assert_eq!(app.event_count().await, 0);
}

db_tests!(
    units_are_recorded_priced_and_carried,
    a_bad_unit_count_names_its_field_and_stores_nothing,
);
