//! OTLP/HTTP trace ingest (`POST /v1/traces`, issue 14 part 1): the official
//! OpenTelemetry exporter as an application uses it, JSON and gzip bodies, retries,
//! project binding, bad bodies and the rate limit.

use aispend_e2e::{Backend, TestApp, backend_tests, db_tests};
use opentelemetry::KeyValue as OtelKeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as Any};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::{Value, json};
use std::collections::HashMap;

fn kv(key: &str, value: Any) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn text(v: &str) -> Any {
    Any::StringValue(v.into())
}

/// A request with one resource (its attributes given) and these spans, each with its
/// own span id `i + 1`.
fn request(resource: Vec<KeyValue>, spans: Vec<Vec<KeyValue>>) -> ExportTraceServiceRequest {
    // The server's clock (tests pin it), not the machine's.
    let now = aispend_e2e::now().timestamp_nanos_opt().unwrap() as u64;
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: spans
                    .into_iter()
                    .enumerate()
                    .map(|(i, attributes)| Span {
                        trace_id: vec![0x5a; 16],
                        span_id: vec![i as u8 + 1; 8],
                        name: "chat gpt-4o".into(),
                        start_time_unix_nano: now - 2_000_000_000,
                        end_time_unix_nano: now - 500_000_000,
                        attributes,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn genai(input: i64, output: i64) -> Vec<KeyValue> {
    vec![
        kv("gen_ai.provider.name", text("openai")),
        kv("gen_ai.request.model", text("gpt-4o")),
        kv("gen_ai.response.model", text("gpt-4o-2024-08-06")),
        kv("gen_ai.usage.input_tokens", Any::IntValue(input)),
        kv("gen_ai.usage.output_tokens", Any::IntValue(output)),
    ]
}

async fn post(
    app: &TestApp,
    token: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut r = app
        .client
        .post(format!("{}/v1/traces", app.base_url))
        .header("content-type", content_type)
        .body(body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().await.expect("the server answers")
}

async fn post_proto(
    app: &TestApp,
    token: &str,
    req: &ExportTraceServiceRequest,
) -> (reqwest::StatusCode, ExportTraceServiceResponse) {
    let response = post(
        app,
        Some(token),
        "application/x-protobuf",
        req.encode_to_vec(),
    )
    .await;
    let status = response.status();
    let bytes = response.bytes().await.unwrap();
    let decoded = if status.is_success() {
        ExportTraceServiceResponse::decode(&bytes[..]).expect("a protobuf response")
    } else {
        ExportTraceServiceResponse::default()
    };
    (status, decoded)
}

/// Every event visible to the operator, oldest first.
async fn events(app: &TestApp) -> Vec<Value> {
    let r = app
        .admin(
            "{ usageEvents(first: 100) { edges { node { projectId provider model endpoint source inputTokens outputTokens cacheReadTokens reasoningTokens latencyMs user idempotencyKey occurredAt costUsd } } } }",
            json!({}),
        )
        .await;
    r.data()["usageEvents"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", r.body))
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// The official exporter (`opentelemetry-otlp`, HTTP/protobuf over hyper, gzip) inside
/// an application's tracer provider, as an instrumented app sends a GenAI span.
async fn the_official_exporter_records_a_genai_span(app: TestApp) {
    let project = app.create_project("shop").await;
    let token = app.create_token(Some(&project), &["INGEST"]).await;
    let endpoint = format!("{}/v1/traces", app.base_url);
    // The SDK's span processor blocks while it exports: run the application on a
    // blocking thread (inside the runtime, so the hyper client finds it).
    // Span times on the server's clock (tests pin it), as the application's would be.
    let end = std::time::SystemTime::from(aispend_e2e::now());
    let start = end - std::time::Duration::from_millis(1_500);
    tokio::task::spawn_blocking(move || {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .with_compression(opentelemetry_otlp::Compression::Gzip)
            .with_headers(HashMap::from([(
                "authorization".to_owned(),
                format!("Bearer {token}"),
            )]))
            .build()
            .expect("an exporter");
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_simple_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name("checkout")
                    .with_attribute(OtelKeyValue::new("enduser.id", "u-42"))
                    .build(),
            )
            .build();
        let tracer = provider.tracer("genai-app");
        let mut span = tracer
            .span_builder("chat claude-sonnet-4-5")
            .with_kind(SpanKind::Client)
            .with_start_time(start)
            .with_attributes([
                OtelKeyValue::new("gen_ai.operation.name", "chat"),
                OtelKeyValue::new("gen_ai.provider.name", "anthropic"),
                OtelKeyValue::new("gen_ai.request.model", "claude-sonnet-4-5"),
                OtelKeyValue::new("gen_ai.usage.input_tokens", 1200_i64),
                OtelKeyValue::new("gen_ai.usage.cache_read.input_tokens", 1000_i64),
                OtelKeyValue::new("gen_ai.usage.output_tokens", 300_i64),
            ])
            .start(&tracer);
        span.end_with_timestamp(end);
        // A span without GenAI usage (an HTTP handler around the call).
        tracer.start("GET /cart").end();
        provider.force_flush().expect("the spans are exported");
        provider.shutdown().expect("the provider shuts down");
    })
    .await
    .expect("the application thread");

    let stored = events(&app).await;
    assert_eq!(stored.len(), 1, "only the GenAI span is usage: {stored:?}");
    let e = &stored[0];
    assert_eq!(e["projectId"], project.as_str());
    assert_eq!(e["source"], "OTLP");
    assert_eq!(e["provider"], "anthropic");
    assert_eq!(e["model"], "claude-sonnet-4-5");
    assert_eq!(e["endpoint"], "checkout");
    assert_eq!(e["user"], "u-42");
    // The conventions count cache reads inside input tokens; aispend does not.
    assert_eq!(e["inputTokens"], 200);
    assert_eq!(e["cacheReadTokens"], 1000);
    assert_eq!(e["outputTokens"], 300);
    assert!(
        e["idempotencyKey"]
            .as_str()
            .is_some_and(|k| k.starts_with("otlp:") && k.len() == 54),
        "{e}"
    );
    assert_ne!(e["costUsd"], Value::Null, "a known model is priced: {e}");
}

/// OTLP/JSON (hex ids, string-encoded integers) gets a JSON answer; a retry of the
/// same span stores nothing new.
async fn a_json_body_is_recorded_and_a_retry_stores_nothing_new(app: TestApp) {
    let project = app.create_project("p").await;
    let token = app.create_token(Some(&project), &["INGEST"]).await;
    // One clock read for both span times: two reads a millisecond apart (a busy
    // machine preempting the test between them) made the duration 1,251 ms.
    let now = aispend_e2e::now().timestamp_nanos_opt().unwrap();
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "search"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c",
            "spanId": "eee19b7ec3c1b174",
            "name": "chat",
            "startTimeUnixNano": (now - 3_000_000_000).to_string(),
            "endTimeUnixNano": (now - 1_750_000_000).to_string(),
            "attributes": [
                {"key": "gen_ai.system", "value": {"stringValue": "openai"}},
                {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "500"}},
                {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 40}},
                {"key": "user.id", "value": {"stringValue": "alice"}}
            ]
        }]}]
    }]})
    .to_string();
    for attempt in 0..2 {
        let response = post(&app, Some(&token), "application/json", body.clone().into()).await;
        assert_eq!(response.status(), 200, "attempt {attempt}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "the answer is in the request's encoding"
        );
        let answer: Value = response.json().await.unwrap();
        assert!(
            answer.get("partialSuccess").is_none_or(Value::is_null),
            "a full success: {answer}"
        );
    }
    let stored = events(&app).await;
    assert_eq!(stored.len(), 1, "the retry stored nothing new: {stored:?}");
    let e = &stored[0];
    assert_eq!(
        (
            e["provider"].as_str(),
            e["model"].as_str(),
            e["endpoint"].as_str(),
            e["user"].as_str()
        ),
        (
            Some("openai"),
            Some("gpt-4o-mini"),
            Some("search"),
            Some("alice")
        )
    );
    assert_eq!(
        (e["inputTokens"].as_i64(), e["outputTokens"].as_i64()),
        (Some(500), Some(40))
    );
    assert_eq!(e["latencyMs"], 1250);
    assert_eq!(
        e["idempotencyKey"],
        "otlp:5b8efff798038103d269b633813fc60c:eee19b7ec3c1b174"
    );
}

/// Spans without usage are skipped and counted, bad GenAI spans rejected with the
/// attribute named, the rest stored: the OTLP partial-success answer.
async fn a_partial_success_counts_rejected_and_skipped_spans(app: TestApp) {
    let project = app.create_project("p").await;
    let token = app.create_token(Some(&project), &["INGEST"]).await;
    let mut no_model = genai(10, 5);
    no_model.retain(|kv| !kv.key.ends_with(".model"));
    let req = request(
        vec![kv("service.name", text("api"))],
        vec![
            genai(100, 20),
            vec![kv("http.route", text("/chat"))],
            no_model,
            vec![
                kv("gen_ai.provider.name", text("openai")),
                kv("gen_ai.request.model", text("gpt-4o")),
                kv("gen_ai.usage.input_tokens", text("lots")),
            ],
        ],
    );
    let (status, answer) = post_proto(&app, &token, &req).await;
    assert_eq!(status, 200);
    let partial = answer.partial_success.expect("a partial success");
    assert_eq!(partial.rejected_spans, 2, "{partial:?}");
    let m = &partial.error_message;
    assert!(
        m.contains("gen_ai.response.model / gen_ai.request.model"),
        "{m}"
    );
    assert!(
        m.contains("gen_ai.usage.input_tokens: must be a whole number"),
        "{m}"
    );
    assert!(m.contains("1 span(s) without GenAI usage"), "{m}");
    assert!(
        m.contains("5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a:0303030303030303"),
        "{m}"
    );
    assert_eq!(events(&app).await.len(), 1);
}

/// A project-bound INGEST token writes only its project: a span naming another project
/// is refused whole (403) and nothing is stored. An unbound token takes the project
/// from the resource's `aispend.project_id`.
async fn a_project_token_cannot_write_another_project(app: TestApp) {
    let a = app.create_project("a").await;
    let b = app.create_project("b").await;
    let token_a = app.create_token(Some(&a), &["INGEST"]).await;
    let into_b = request(vec![kv("aispend.project_id", text(&b))], vec![genai(10, 1)]);
    let (status, _) = post_proto(&app, &token_a, &into_b).await;
    assert_eq!(status, 403);
    assert_eq!(app.event_count().await, 0, "nothing stored");

    let unbound = app.create_token(None, &["INGEST", "READ"]).await;
    let (status, answer) = post_proto(&app, &unbound, &into_b).await;
    assert_eq!(status, 200, "{answer:?}");
    assert_eq!(answer.partial_success, None);
    let stored = events(&app).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["projectId"], b.as_str());

    // Unbound and no project named: the span is rejected with the attribute to set.
    let (status, answer) = post_proto(&app, &unbound, &request(vec![], vec![genai(1, 1)])).await;
    assert_eq!(status, 200);
    let partial = answer.partial_success.expect("rejected");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial.error_message.contains("aispend.project_id"),
        "{partial:?}"
    );

    // A READ-only token may not ingest; no token is unauthorized.
    let reader = app.create_token(Some(&a), &["READ"]).await;
    assert_eq!(post_proto(&app, &reader, &into_b).await.0, 403);
    let response = post(&app, None, "application/x-protobuf", into_b.encode_to_vec()).await;
    assert_eq!(response.status(), 401);
    assert_eq!(app.event_count().await, 1);
}

/// Bodies that cannot be read get 400 (415 for an unknown encoding) with a message
/// saying why, in a `google.rpc.Status`; nothing is stored.
async fn bad_bodies_get_a_useful_400_and_change_nothing(app: TestApp) {
    let project = app.create_project("p").await;
    let token = app.create_token(Some(&project), &["INGEST"]).await;
    let r = post(
        &app,
        Some(&token),
        "application/json",
        b"{\"resourceSpans\": 5}".to_vec(),
    )
    .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], 3);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not an OTLP/JSON ExportTraceServiceRequest"),
        "{body}"
    );

    let r = post(
        &app,
        Some(&token),
        "application/x-protobuf",
        vec![0xff, 0xff, 0xff],
    )
    .await;
    assert_eq!(r.status(), 400);
    #[derive(Clone, PartialEq, Message)]
    struct Status {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
    }
    let status = Status::decode(r.bytes().await.unwrap()).expect("a protobuf Status");
    assert!(
        status
            .message
            .contains("not a protobuf ExportTraceServiceRequest"),
        "{status:?}"
    );

    let r = app
        .client
        .post(format!("{}/v1/traces", app.base_url))
        .bearer_auth(&token)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(request(vec![], vec![genai(1, 1)]).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a body that says gzip but is not");

    let r = post(&app, Some(&token), "text/plain", b"hello".to_vec()).await;
    assert_eq!(r.status(), 415);

    // Valid protobuf, but a GenAI span with invalid counts inside a batch: rejected
    // with its reason, the batch's good span stored.
    let (status, answer) = post_proto(
        &app,
        &token,
        &request(vec![], vec![genai(-5, 1), genai(3, 1)]),
    )
    .await;
    assert_eq!(status, 200);
    let partial = answer.partial_success.unwrap();
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial
            .error_message
            .contains("gen_ai.usage.input_tokens: must be between 0"),
        "{partial:?}"
    );
    assert_eq!(app.event_count().await, 1);
}

/// `/v1/traces` goes through the per-token rate limit.
async fn traces_are_rate_limited_per_token(backend: Backend) {
    let app = aispend_e2e::spawn_app_with(backend, |s| {
        s.limits.rate_limit_per_token = Some("0.05/2".parse().unwrap());
    })
    .await;
    let project = app.create_project("p").await;
    let token = app.create_token(Some(&project), &["INGEST"]).await;
    let req = request(vec![], vec![genai(1, 1)]);
    for _ in 0..2 {
        assert_eq!(post_proto(&app, &token, &req).await.0, 200);
    }
    let response = post(
        &app,
        Some(&token),
        "application/x-protobuf",
        req.encode_to_vec(),
    )
    .await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
}

db_tests!(
    the_official_exporter_records_a_genai_span,
    a_json_body_is_recorded_and_a_retry_stores_nothing_new,
    a_partial_success_counts_rejected_and_skipped_spans,
    a_project_token_cannot_write_another_project,
    bad_bodies_get_a_useful_400_and_change_nothing,
);

backend_tests!(traces_are_rate_limited_per_token);
