//! Anthropic: the Admin API's usage and cost reports, with an admin key.
//!
//! Follows Anthropic's API reference, checked 2026-11-23:
//! - <https://platform.claude.com/docs/en/api/admin/usage_report/retrieve_messages> —
//!   `GET /v1/organizations/usage_report/messages` with `starting_at`/`ending_at`
//!   (RFC 3339), `bucket_width` (`1m`, `1h`, `1d`), `group_by[]` (`model`,
//!   `workspace_id`, `api_key_id`, `service_tier`, …), `limit` and `page`. Each
//!   bucket's `results` carry `uncached_input_tokens`, `cache_read_input_tokens`,
//!   `cache_creation.ephemeral_5m_input_tokens` / `ephemeral_1h_input_tokens`,
//!   `output_tokens` and `server_tool_use.web_search_requests`; group fields are null
//!   when not grouped (and `workspace_id` is null for the default workspace). Pages
//!   end with `has_more` and `next_page`.
//! - <https://platform.claude.com/docs/en/api/admin/cost_report> —
//!   `GET /v1/organizations/cost_report`, daily buckets; `amount` is a decimal string
//!   in the currency's lowest unit (cents), with `currency`, `description`,
//!   `cost_type`, `model`, `workspace_id`.
//! - Headers: `x-api-key` (an admin key, `sk-ant-admin…`) and `anthropic-version`.
//!
//! Anthropic now also offers `/v1/organizations/analytics/usage` and calls these
//! endpoints its legacy Usage and Cost API; they remain documented and are what this
//! plugin reads.

use aispend_plugin_sdk::{
    BucketWidth, Capability, CostPage, CostRow, Credential, Decimal, Metadata, MetadataBuilder,
    Plugin, ProviderError, Query, UnitCount, UsagePage, UsageRow, export_plugin, http, time,
};
use serde::Deserialize;

/// The API's host.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The `anthropic-version` header sent with every request.
pub const API_VERSION: &str = "2023-06-01";

/// The plugin.
pub struct Anthropic;

#[derive(Deserialize)]
struct Bucket<R> {
    starting_at: String,
    ending_at: String,
    #[serde(default = "Vec::new")]
    results: Vec<R>,
}

#[derive(Deserialize)]
struct Envelope<R> {
    data: Vec<Bucket<R>>,
    #[serde(default)]
    has_more: bool,
    next_page: Option<String>,
}

#[derive(Deserialize, Default)]
struct CacheCreation {
    #[serde(default)]
    ephemeral_5m_input_tokens: Option<u64>,
    #[serde(default)]
    ephemeral_1h_input_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
struct ServerToolUse {
    #[serde(default)]
    web_search_requests: Option<u64>,
}

#[derive(Deserialize)]
struct UsageResult {
    #[serde(default)]
    uncached_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation: Option<CacheCreation>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    server_tool_use: Option<ServerToolUse>,
    model: Option<String>,
    workspace_id: Option<String>,
    api_key_id: Option<String>,
    service_tier: Option<String>,
}

#[derive(Deserialize)]
struct CostResult {
    amount: serde_json::Value,
    currency: Option<String>,
    description: Option<String>,
    cost_type: Option<String>,
    model: Option<String>,
    workspace_id: Option<String>,
    service_tier: Option<String>,
}

fn bad(e: impl std::fmt::Display) -> ProviderError {
    ProviderError::bad_response(format!("Anthropic returned unexpected JSON: {e}"))
}

fn bucket_times(start: &str, end: &str) -> Result<(i64, i64), ProviderError> {
    let s = time::parse_rfc3339(start).ok_or_else(|| bad(format!("`{start}` is not a time")))?;
    let e = time::parse_rfc3339(end).ok_or_else(|| bad(format!("`{end}` is not a time")))?;
    Ok((s, e))
}

fn next(has_more: bool, next_page: Option<String>) -> Option<String> {
    next_page.filter(|p| has_more && !p.is_empty())
}

/// One page of the messages usage report as rows, and the next page token.
pub fn parse_usage_page(body: &[u8]) -> Result<(Vec<UsageRow>, Option<String>), ProviderError> {
    let envelope: Envelope<UsageResult> = serde_json::from_slice(body).map_err(bad)?;
    let mut rows = Vec::new();
    for bucket in envelope.data {
        let (start, end) = bucket_times(&bucket.starting_at, &bucket.ending_at)?;
        for r in bucket.results {
            let mut row = UsageRow::new(start, end);
            let cache = r.cache_creation.unwrap_or_default();
            row.input_tokens = r.uncached_input_tokens.unwrap_or(0);
            row.cache_read_tokens = r.cache_read_input_tokens.unwrap_or(0);
            row.cache_write_tokens = cache.ephemeral_5m_input_tokens.unwrap_or(0);
            row.cache_write_1h_tokens = cache.ephemeral_1h_input_tokens.unwrap_or(0);
            row.output_tokens = r.output_tokens.unwrap_or(0);
            row.model = r.model;
            row.workspace_id = r.workspace_id;
            row.api_key_id = r.api_key_id;
            row.service_tier = r.service_tier;
            if let Some(searches) = r
                .server_tool_use
                .and_then(|s| s.web_search_requests)
                .filter(|n| *n > 0)
            {
                row.units.push(UnitCount::new(
                    "web-searches",
                    Decimal::from_int(searches as i64),
                ));
            }
            rows.push(row);
        }
    }
    Ok((rows, next(envelope.has_more, envelope.next_page)))
}

/// One page of the cost report as rows (amounts converted from cents), and the next
/// page token.
pub fn parse_cost_page(body: &[u8]) -> Result<(Vec<CostRow>, Option<String>), ProviderError> {
    let envelope: Envelope<CostResult> = serde_json::from_slice(body).map_err(bad)?;
    let mut rows = Vec::new();
    for bucket in envelope.data {
        let (start, end) = bucket_times(&bucket.starting_at, &bucket.ending_at)?;
        for r in bucket.results {
            let cents =
                Decimal::from_json(&r.amount).ok_or_else(|| bad("`amount` is not a decimal"))?;
            let dollars = cents
                .shift_left(2)
                .ok_or_else(|| bad("`amount` is out of range"))?;
            let mut row = CostRow::new(start, end, dollars, r.currency.as_deref().unwrap_or("usd"));
            row.line_item = r.description.or(r.cost_type);
            row.model = r.model;
            row.workspace_id = r.workspace_id;
            row.service_tier = r.service_tier;
            rows.push(row);
        }
    }
    Ok((rows, next(envelope.has_more, envelope.next_page)))
}

/// The largest `limit` the API accepts for a bucket width.
pub fn bucket_limit(bucket: BucketWidth) -> u32 {
    match bucket {
        BucketWidth::Day => 31,
        BucketWidth::Hour => 168,
        BucketWidth::Minute => 1_440,
    }
}

fn get(
    credential: &Credential,
    path: &str,
    params: &[(&str, String)],
) -> Result<Vec<u8>, ProviderError> {
    let url = http::with_query(
        &format!("{}{path}", credential.base_url_or(DEFAULT_BASE_URL)),
        params,
    );
    let request = http::get(
        &url,
        &[
            ("x-api-key", &credential.secret),
            ("anthropic-version", API_VERSION),
        ],
    );
    Ok(http::send(&request)?.error_for_status()?.body)
}

fn window(query: &Query) -> Vec<(&'static str, String)> {
    vec![
        ("starting_at", time::rfc3339(query.window.start)),
        ("ending_at", time::rfc3339(query.window.end)),
    ]
}

impl Plugin for Anthropic {
    fn metadata() -> Metadata {
        MetadataBuilder::new("anthropic", "Anthropic", env!("CARGO_PKG_VERSION"))
            .capability(Capability::ValidateCredential)
            .capability(Capability::FetchUsage)
            .capability(Capability::FetchCosts)
            .host("api.anthropic.com")
            .credential_help("An Anthropic Admin API key (sk-ant-admin…): Claude Console → Settings → Admin keys. Only organization admins can create one; ordinary API keys cannot read usage.")
            .docs_url("https://platform.claude.com/docs/en/api/admin/usage_report/retrieve_messages")
            .build()
    }

    fn validate_credential(credential: Credential) -> Result<(), ProviderError> {
        get(
            &credential,
            "/v1/organizations/workspaces",
            &[("limit", "1".into())],
        )
        .map(|_| ())
    }

    fn fetch_usage(credential: Credential, query: Query) -> Result<UsagePage, ProviderError> {
        let mut params = window(&query);
        params.push(("bucket_width", query.bucket.as_str().to_owned()));
        params.push(("limit", bucket_limit(query.bucket).to_string()));
        for g in ["model", "workspace_id", "api_key_id", "service_tier"] {
            params.push(("group_by[]", g.to_owned()));
        }
        if let Some(p) = query.cursor {
            params.push(("page", p));
        }
        let body = get(
            &credential,
            "/v1/organizations/usage_report/messages",
            &params,
        )?;
        let (rows, next_cursor) = parse_usage_page(&body)?;
        Ok(UsagePage { rows, next_cursor })
    }

    fn fetch_costs(credential: Credential, query: Query) -> Result<CostPage, ProviderError> {
        if query.bucket != BucketWidth::Day {
            return Err(ProviderError::NotSupported(
                "Anthropic's cost report has daily buckets only (1d)".into(),
            ));
        }
        let mut params = window(&query);
        params.push(("bucket_width", "1d".to_owned()));
        params.push(("limit", "31".to_owned()));
        params.push(("group_by[]", "workspace_id".to_owned()));
        params.push(("group_by[]", "description".to_owned()));
        if let Some(p) = query.cursor {
            params.push(("page", p));
        }
        let body = get(&credential, "/v1/organizations/cost_report", &params)?;
        let (rows, next_cursor) = parse_cost_page(&body)?;
        Ok(CostPage { rows, next_cursor })
    }
}

export_plugin!(Anthropic);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_maps_cache_classes_and_searches() {
        let body = br#"{"data":[{"starting_at":"2025-08-01T00:00:00Z","ending_at":"2025-08-02T00:00:00Z","results":[
            {"uncached_input_tokens":100,"cache_read_input_tokens":50,"cache_creation":{"ephemeral_5m_input_tokens":20,"ephemeral_1h_input_tokens":10},
             "output_tokens":70,"server_tool_use":{"web_search_requests":3},"model":"claude-sonnet-4-5-20250929","workspace_id":null,"api_key_id":"apikey_1","service_tier":"standard","context_window":"0-200k"}]}],
            "has_more":true,"next_page":"page_x"}"#;
        let (rows, next) = parse_usage_page(body).unwrap();
        let r = &rows[0];
        assert_eq!(
            (
                r.input_tokens,
                r.cache_read_tokens,
                r.cache_write_tokens,
                r.cache_write_1h_tokens,
                r.output_tokens
            ),
            (100, 50, 20, 10, 70)
        );
        assert_eq!(r.units[0].unit, "web-searches");
        assert_eq!(r.workspace_id, None);
        assert_eq!(next.as_deref(), Some("page_x"));
    }

    #[test]
    fn costs_are_cents() {
        let body = br#"{"data":[{"starting_at":"2025-08-01T00:00:00Z","ending_at":"2025-08-02T00:00:00Z","results":[
            {"amount":"123.45","currency":"USD","description":"Claude Sonnet 4.5 Usage - Input Tokens","cost_type":"tokens","workspace_id":"wrkspc_1"}]}],
            "has_more":false,"next_page":null}"#;
        let (rows, _) = parse_cost_page(body).unwrap();
        assert_eq!(rows[0].amount, "1.2345");
        assert_eq!(rows[0].currency, "usd");
    }
}
