//! The bundled Anthropic plugin against a fake Admin API.

use super::{assert_error_mapping, daily, host, material};
use aispend::plugins::rows::Rows;
use aispend::plugins::{FetchKind, Limits};
use aispend_e2e::fake_provider::{FakeProvider, Reply};
use rust_decimal::Decimal;
use serde_json::json;
use std::str::FromStr;

async fn provider() -> FakeProvider {
    FakeProvider::start(|seen| match (seen.path.as_str(), seen.param("page")) {
        ("/v1/organizations/usage_report/messages", None) => Reply::json(json!({
            "data": [
                {"starting_at": "2025-08-01T00:00:00Z", "ending_at": "2025-08-02T00:00:00Z", "results": [
                    {"uncached_input_tokens": 1500, "cache_creation": {"ephemeral_1h_input_tokens": 1000, "ephemeral_5m_input_tokens": 500},
                     "cache_read_input_tokens": 200, "output_tokens": 500, "server_tool_use": {"web_search_requests": 10},
                     "api_key_id": "apikey_01Rj2N8SVvo6BePZj99NhmiT", "workspace_id": null, "model": "claude-sonnet-4-5-20250929",
                     "service_tier": "standard", "context_window": "0-200k", "inference_geo": "global"}
                ]},
                {"starting_at": "2025-08-02T00:00:00Z", "ending_at": "2025-08-03T00:00:00Z", "results": []}
            ],
            "has_more": true,
            "next_page": "page_MjAyNS0wNS0xNFQwMDowMDowMFo="
        })),
        ("/v1/organizations/usage_report/messages", Some(_)) => Reply::json(json!({
            "data": [{"starting_at": "2025-08-02T00:00:00Z", "ending_at": "2025-08-03T00:00:00Z", "results": [
                {"uncached_input_tokens": 7, "cache_creation": null, "cache_read_input_tokens": 0, "output_tokens": 3,
                 "server_tool_use": null, "api_key_id": null, "workspace_id": "wrkspc_01", "model": null, "service_tier": "batch"}]}],
            "has_more": false,
            "next_page": null
        })),
        ("/v1/organizations/cost_report", None) => Reply::json(json!({
            "data": [{"starting_at": "2025-08-01T00:00:00Z", "ending_at": "2025-08-02T00:00:00Z", "results": [
                {"currency": "USD", "amount": "123.78912", "workspace_id": "wrkspc_01", "description": "Claude Sonnet 4.5 Usage - Input Tokens",
                 "cost_type": "tokens", "context_window": "0-200k", "model": "claude-sonnet-4-5-20250929", "service_tier": "standard", "token_type": "uncached_input_tokens"},
                {"currency": "USD", "amount": "50", "workspace_id": null, "description": null, "cost_type": "web_search",
                 "context_window": null, "model": null, "service_tier": null, "token_type": null}]}],
            "has_more": false,
            "next_page": null
        })),
        ("/v1/organizations/workspaces", _) => Reply::json(json!({"data": [], "has_more": false})),
        _ => Reply::status(404, r#"{"type":"error","error":{"type":"not_found_error","message":"not found"}}"#),
    })
    .await
}

#[tokio::test]
async fn usage_pages_map_every_token_class() {
    let provider = provider().await;
    let host = host(None, &[provider.host_port()], Limits::default(), true);
    let m = material("sk-ant-admin01-0123456789abcdef", &provider.base_url(), &[]);
    let q = daily(2);
    let report = host
        .fetch_all("anthropic", FetchKind::Usage, &m, q.start, q.end, q.bucket)
        .await
        .unwrap();
    assert_eq!(report.pages, 2);
    let Rows::Usage(rows) = report.rows else {
        panic!("usage rows")
    };
    assert_eq!(rows.len(), 2);
    let t = rows[0].tokens;
    assert_eq!(
        (
            t.input,
            t.cache_write,
            t.cache_write_1h,
            t.cache_read,
            t.output
        ),
        (1500, 500, 1000, 200, 500)
    );
    assert_eq!(rows[0].units[0].unit, "web-searches");
    assert_eq!(rows[0].units[0].quantity, Decimal::from(10));
    assert_eq!(
        rows[0].dimensions.workspace_id, None,
        "the default workspace is null"
    );
    assert_eq!(rows[1].dimensions.model, None);
    assert_eq!(rows[1].dimensions.service_tier.as_deref(), Some("batch"));
    let first = &provider.seen()[0];
    assert_eq!(
        first.headers.get("x-api-key").map(String::as_str),
        Some("sk-ant-admin01-0123456789abcdef")
    );
    assert_eq!(
        first.headers.get("anthropic-version").map(String::as_str),
        Some("2023-06-01")
    );
    assert_eq!(first.param("starting_at"), Some("2025-08-01T00:00:00Z"));
    assert_eq!(
        first.params("group_by[]"),
        ["model", "workspace_id", "api_key_id", "service_tier"]
    );
    assert_eq!(
        provider.seen()[1].param("page"),
        Some("page_MjAyNS0wNS0xNFQwMDowMDowMFo=")
    );
}

#[tokio::test]
async fn cost_amounts_are_cents_converted_exactly() {
    let provider = provider().await;
    let host = host(None, &[provider.host_port()], Limits::default(), true);
    let m = material("sk-ant-admin01-0123456789abcdef", &provider.base_url(), &[]);
    let report = host
        .fetch_all(
            "anthropic",
            FetchKind::Costs,
            &m,
            daily(1).start,
            daily(1).end,
            daily(1).bucket,
        )
        .await
        .unwrap();
    let Rows::Costs(rows) = report.rows else {
        panic!("cost rows")
    };
    assert_eq!(rows[0].amount, Decimal::from_str("1.2378912").unwrap());
    assert_eq!(
        rows[0].line_item.as_deref(),
        Some("Claude Sonnet 4.5 Usage - Input Tokens")
    );
    assert_eq!(rows[1].amount, Decimal::from_str("0.5").unwrap());
    assert_eq!(rows[1].line_item.as_deref(), Some("web_search"));
    host.validate_credential("anthropic", &m).await.unwrap();
}

#[tokio::test]
async fn provider_errors_map_onto_the_contract() {
    assert_error_mapping("anthropic", FetchKind::Usage, &[]).await;
    assert_error_mapping("anthropic", FetchKind::Costs, &[]).await;
}
