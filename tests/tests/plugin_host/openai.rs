//! The bundled OpenAI plugin against a fake Usage and Costs API.

use super::{assert_error_mapping, daily, host, material};
use aispend::plugins::rows::Rows;
use aispend::plugins::{FetchKind, Limits};
use aispend_e2e::fake_provider::{FakeProvider, Reply};
use rust_decimal::Decimal;
use serde_json::json;
use std::str::FromStr;

fn empty() -> Reply {
    Reply::json(json!({"object": "page", "data": [], "has_more": false, "next_page": null}))
}

async fn provider() -> FakeProvider {
    FakeProvider::start(|seen| match (seen.path.as_str(), seen.param("page")) {
        ("/v1/organization/usage/completions", None) => Reply::json(json!({
            "object": "page",
            "data": [
                {"object": "bucket", "start_time": 1754006400, "end_time": 1754092800, "results": [
                    {"object": "organization.usage.completions.result", "input_tokens": 1000, "output_tokens": 500,
                     "input_cached_tokens": 800, "num_model_requests": 5, "project_id": "proj_a", "user_id": null,
                     "api_key_id": "key_1", "model": "gpt-4o-2024-08-06", "batch": false, "service_tier": "default"},
                    {"object": "organization.usage.completions.result", "input_tokens": 300, "output_tokens": 20,
                     "input_cached_tokens": 0, "num_model_requests": 1, "project_id": null, "user_id": null,
                     "api_key_id": null, "model": "gpt-4o-mini", "batch": true, "service_tier": null}
                ]},
                {"object": "bucket", "start_time": 1754092800, "end_time": 1754179200, "results": []}
            ],
            "has_more": true,
            "next_page": "page_AAA"
        })),
        ("/v1/organization/usage/completions", Some("page_AAA")) => Reply::json(json!({
            "object": "page",
            "data": [{"object": "bucket", "start_time": 1754092800, "end_time": 1754179200, "results": [
                {"object": "organization.usage.completions.result", "input_tokens": 10, "output_tokens": 10,
                 "input_cached_tokens": null, "num_model_requests": 2, "project_id": "proj_b", "api_key_id": null,
                 "model": "o3", "batch": null, "service_tier": "flex"}]}],
            "has_more": false,
            "next_page": null
        })),
        ("/v1/organization/usage/images", None) => Reply::json(json!({
            "object": "page",
            "data": [{"object": "bucket", "start_time": 1754006400, "end_time": 1754092800, "results": [
                {"object": "organization.usage.images.result", "images": 4, "num_model_requests": 2, "model": "gpt-image-1", "project_id": null}]}],
            "has_more": false, "next_page": null
        })),
        ("/v1/organization/costs", None) => Reply::json(json!({
            "object": "page",
            "data": [{"object": "bucket", "start_time": 1754006400, "end_time": 1754092800, "results": [
                {"object": "organization.costs.result", "amount": {"value": 0.0612345, "currency": "usd"}, "line_item": "gpt-4o-2024-08-06, input", "project_id": "proj_a"},
                {"object": "organization.costs.result", "amount": {"value": 12.5, "currency": "usd"}, "line_item": null, "project_id": null}]},
                {"object": "bucket", "start_time": 1754092800, "end_time": 1754179200, "results": []}],
            "has_more": true, "next_page": "cost_2"
        })),
        ("/v1/organization/costs", Some("cost_2")) => Reply::json(json!({
            "object": "page",
            "data": [{"object": "bucket", "start_time": 1754092800, "end_time": 1754179200, "results": [
                {"object": "organization.costs.result", "amount": {"value": 3, "currency": "usd"}, "line_item": "web search", "project_id": "proj_b"}]}],
            "has_more": false, "next_page": null
        })),
        ("/v1/organization/projects", _) => Reply::json(json!({"object": "list", "data": [], "has_more": false})),
        _ => empty(),
    })
    .await
}

#[tokio::test]
async fn usage_walks_every_endpoint_and_page() {
    let provider = provider().await;
    let host = host(None, &[provider.host_port()], Limits::default(), true);
    let m = material("sk-admin-0123456789abcdef", &provider.base_url(), &[]);
    let q = daily(2);
    let report = host
        .fetch_all("openai", FetchKind::Usage, &m, q.start, q.end, q.bucket)
        .await
        .unwrap();
    let Rows::Usage(rows) = report.rows else {
        panic!("usage rows")
    };
    assert_eq!(rows.len(), 4, "{rows:#?}");
    let first = &rows[0];
    assert_eq!(
        (
            first.tokens.input,
            first.tokens.cache_read,
            first.tokens.output
        ),
        (200, 800, 500)
    );
    assert_eq!(first.requests, 5);
    assert_eq!(first.dimensions.project_id.as_deref(), Some("proj_a"));
    assert_eq!(first.dimensions.service_tier.as_deref(), Some("default"));
    assert_eq!(
        rows[1].dimensions.project_id, None,
        "null group fields stay empty"
    );
    assert_eq!(rows[1].dimensions.service_tier.as_deref(), Some("batch"));
    assert_eq!(rows[2].dimensions.model.as_deref(), Some("o3"));
    assert_eq!(rows[3].units[0].unit, "images");
    // Every usage endpoint was asked, completions twice (two pages).
    let seen = provider.seen();
    let completions: Vec<_> = seen
        .iter()
        .filter(|s| s.path == "/v1/organization/usage/completions")
        .collect();
    assert_eq!(completions.len(), 2);
    assert_eq!(completions[0].param("bucket_width"), Some("1d"));
    assert_eq!(completions[0].param("start_time"), Some("1754006400"));
    assert_eq!(
        completions[0].params("group_by"),
        ["project_id", "api_key_id", "model", "batch", "service_tier"]
    );
    assert_eq!(
        completions[0]
            .headers
            .get("authorization")
            .map(String::as_str),
        Some("Bearer sk-admin-0123456789abcdef")
    );
    assert_eq!(completions[1].param("page"), Some("page_AAA"));
    assert_eq!(report.pages, 9);
    assert!(
        seen.iter()
            .any(|s| s.path == "/v1/organization/usage/code_interpreter_sessions")
    );
}

#[tokio::test]
async fn costs_are_exact_decimals_across_pages() {
    let provider = provider().await;
    let host = host(None, &[provider.host_port()], Limits::default(), true);
    let m = material("sk-admin-0123456789abcdef", &provider.base_url(), &[]);
    let q = daily(2);
    let report = host
        .fetch_all("openai", FetchKind::Costs, &m, q.start, q.end, q.bucket)
        .await
        .unwrap();
    let Rows::Costs(rows) = report.rows else {
        panic!("cost rows")
    };
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].amount, Decimal::from_str("0.0612345").unwrap());
    assert_eq!(rows[0].currency, "USD");
    assert_eq!(
        rows[0].line_item.as_deref(),
        Some("gpt-4o-2024-08-06, input")
    );
    assert_eq!(rows[1].line_item, None);
    assert_eq!(rows[2].amount, Decimal::from(3));
    let hourly = aispend::plugins::FetchQuery {
        bucket: aispend::plugins::BucketWidth::Hour,
        ..daily(1)
    };
    let e = host
        .fetch_page("openai", FetchKind::Costs, &m, &hourly)
        .await
        .unwrap_err();
    assert!(matches!(
        e.kind,
        aispend::plugins::PluginErrorKind::NotSupported(_)
    ));
}

#[tokio::test]
async fn validates_with_the_admin_key() {
    let provider = provider().await;
    let host = host(None, &[provider.host_port()], Limits::default(), true);
    let m = material("sk-admin-0123456789abcdef", &provider.base_url(), &[]);
    host.validate_credential("openai", &m).await.unwrap();
    assert!(
        provider
            .seen()
            .iter()
            .any(|s| s.path == "/v1/organization/projects")
    );
}

#[tokio::test]
async fn provider_errors_map_onto_the_contract() {
    assert_error_mapping("openai", FetchKind::Usage, &[]).await;
    assert_error_mapping("openai", FetchKind::Costs, &[]).await;
}
