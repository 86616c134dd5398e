//! OpenAI: the organization Usage API and Costs API, with an admin key.
//!
//! Follows the API reference as published on platform.openai.com, checked 2026-11-23:
//! - Usage: <https://platform.openai.com/docs/api-reference/usage> —
//!   `GET /v1/organization/usage/{completions,embeddings,moderations,images,audio_speeches,audio_transcriptions,vector_stores,code_interpreter_sessions}`
//!   with `start_time`/`end_time` (Unix seconds), `bucket_width` (`1m`, `1h`, `1d`),
//!   `group_by`, `limit` and `page`/`next_page`. Completions results carry
//!   `input_tokens` (cached tokens included), `input_cached_tokens`, `output_tokens`,
//!   `input_audio_tokens`, `output_audio_tokens`, `num_model_requests`, and the group
//!   fields `project_id`, `api_key_id`, `model`, `batch`, `service_tier`.
//! - Costs: <https://platform.openai.com/docs/api-reference/usage/costs> —
//!   `GET /v1/organization/costs`, daily buckets only, `amount.value` and
//!   `amount.currency`, `line_item`, `project_id`.
//!
//! Both need an admin key (`sk-admin-…`, Organization settings → Admin keys).

use aispend_plugin_sdk::{
    BucketWidth, Capability, CostPage, CostRow, Credential, Decimal, Metadata, MetadataBuilder,
    Plugin, ProviderError, Query, UnitCount, UsagePage, UsageRow, export_plugin, http,
};
use serde::Deserialize;
use serde_json::value::RawValue;

/// The API's host.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com";

/// The usage endpoints, in the order a sync walks them, with the group-by fields each
/// accepts.
pub const USAGE_ENDPOINTS: &[(&str, &[&str])] = &[
    (
        "completions",
        &["project_id", "api_key_id", "model", "batch", "service_tier"],
    ),
    ("embeddings", &["project_id", "api_key_id", "model"]),
    ("moderations", &["project_id", "api_key_id", "model"]),
    ("images", &["project_id", "api_key_id", "model"]),
    ("audio_speeches", &["project_id", "api_key_id", "model"]),
    (
        "audio_transcriptions",
        &["project_id", "api_key_id", "model"],
    ),
    ("vector_stores", &["project_id"]),
    ("code_interpreter_sessions", &["project_id"]),
];

/// The plugin.
pub struct OpenAi;

#[derive(Deserialize)]
struct Bucket<R> {
    start_time: i64,
    end_time: i64,
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
struct UsageResult {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    input_cached_tokens: Option<u64>,
    #[serde(default)]
    input_cache_write_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    input_audio_tokens: Option<u64>,
    #[serde(default)]
    output_audio_tokens: Option<u64>,
    #[serde(default)]
    num_model_requests: Option<u64>,
    #[serde(default)]
    images: Option<u64>,
    #[serde(default)]
    characters: Option<u64>,
    #[serde(default)]
    seconds: Option<u64>,
    #[serde(default)]
    usage_bytes: Option<u64>,
    #[serde(default)]
    num_sessions: Option<u64>,
    project_id: Option<String>,
    api_key_id: Option<String>,
    model: Option<String>,
    batch: Option<bool>,
    service_tier: Option<String>,
}

#[derive(Deserialize)]
struct Amount {
    value: Box<RawValue>,
    currency: Option<String>,
}

#[derive(Deserialize)]
struct CostResult {
    amount: Option<Amount>,
    line_item: Option<String>,
    project_id: Option<String>,
}

fn bad(e: impl std::fmt::Display) -> ProviderError {
    ProviderError::bad_response(format!("OpenAI returned unexpected JSON: {e}"))
}

/// The largest `limit` OpenAI accepts for a bucket width.
pub fn bucket_limit(bucket: BucketWidth) -> u32 {
    match bucket {
        BucketWidth::Day => 31,
        BucketWidth::Hour => 168,
        BucketWidth::Minute => 1_440,
    }
}

fn next(has_more: bool, next_page: Option<String>) -> Option<String> {
    next_page.filter(|p| has_more && !p.is_empty())
}

/// One page of a usage endpoint as rows, and the provider's next page token.
pub fn parse_usage_page(body: &[u8]) -> Result<(Vec<UsageRow>, Option<String>), ProviderError> {
    let envelope: Envelope<UsageResult> = serde_json::from_slice(body).map_err(bad)?;
    let mut rows = Vec::new();
    for bucket in envelope.data {
        for r in bucket.results {
            let mut row = UsageRow::new(bucket.start_time, bucket.end_time);
            let input = r.input_tokens.unwrap_or(0);
            let cached = r.input_cached_tokens.unwrap_or(0);
            let cache_write = r.input_cache_write_tokens.unwrap_or(0);
            // `input_tokens` includes cached (and cache-write) tokens; the ledger's input
            // class does not.
            row.input_tokens = input.saturating_sub(cached).saturating_sub(cache_write);
            row.cache_read_tokens = cached;
            row.cache_write_tokens = cache_write;
            row.output_tokens = r.output_tokens.unwrap_or(0);
            row.requests = r.num_model_requests.unwrap_or(0);
            row.model = r.model;
            row.project_id = r.project_id;
            row.api_key_id = r.api_key_id;
            row.service_tier = match (r.service_tier, r.batch) {
                (Some(tier), _) => Some(tier),
                (None, Some(true)) => Some("batch".into()),
                (None, _) => None,
            };
            for (unit, value) in [
                ("input-audio-tokens", r.input_audio_tokens),
                ("output-audio-tokens", r.output_audio_tokens),
                ("images", r.images),
                ("characters", r.characters),
                ("seconds", r.seconds),
                ("vector-store-bytes", r.usage_bytes),
                ("code-interpreter-sessions", r.num_sessions),
            ] {
                if let Some(v) = value.filter(|v| *v > 0) {
                    row.units
                        .push(UnitCount::new(unit, Decimal::from_int(v as i64)));
                }
            }
            rows.push(row);
        }
    }
    Ok((rows, next(envelope.has_more, envelope.next_page)))
}

/// One page of the Costs API as rows, and the next page token.
pub fn parse_cost_page(body: &[u8]) -> Result<(Vec<CostRow>, Option<String>), ProviderError> {
    let envelope: Envelope<CostResult> = serde_json::from_slice(body).map_err(bad)?;
    let mut rows = Vec::new();
    for bucket in envelope.data {
        for r in bucket.results {
            let Some(amount) = r.amount else { continue };
            let text = amount.value.get().trim().trim_matches('"');
            let value: Decimal = text.parse().map_err(bad)?;
            let mut row = CostRow::new(
                bucket.start_time,
                bucket.end_time,
                value,
                amount.currency.as_deref().unwrap_or("usd"),
            );
            row.line_item = r.line_item;
            row.project_id = r.project_id;
            rows.push(row);
        }
    }
    Ok((rows, next(envelope.has_more, envelope.next_page)))
}

fn headers(credential: &Credential) -> Vec<(String, String)> {
    vec![
        (
            "authorization".into(),
            format!("Bearer {}", credential.secret),
        ),
        ("content-type".into(), "application/json".into()),
    ]
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
    let headers = headers(credential);
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    Ok(http::send(&http::get(&url, &refs))?
        .error_for_status()?
        .body)
}

/// The cursor a usage sync passes between pages: which endpoint, and its page token.
fn split_cursor(cursor: Option<&str>) -> Result<(usize, Option<String>), ProviderError> {
    let Some(c) = cursor else {
        return Ok((0, None));
    };
    let (index, page) = c
        .split_once(':')
        .ok_or_else(|| ProviderError::other("malformed cursor"))?;
    let index: usize = index
        .parse()
        .map_err(|_| ProviderError::other("malformed cursor"))?;
    if index >= USAGE_ENDPOINTS.len() {
        return Err(ProviderError::other("malformed cursor"));
    }
    Ok((index, Some(page.to_owned()).filter(|p| !p.is_empty())))
}

impl Plugin for OpenAi {
    fn metadata() -> Metadata {
        MetadataBuilder::new("openai", "OpenAI", env!("CARGO_PKG_VERSION"))
            .capability(Capability::ValidateCredential)
            .capability(Capability::FetchUsage)
            .capability(Capability::FetchCosts)
            .host("api.openai.com")
            .credential_help("An OpenAI admin key (sk-admin-…): platform.openai.com → Organization settings → Admin keys. Ordinary project keys cannot read the Usage and Costs APIs.")
            .docs_url("https://platform.openai.com/docs/api-reference/usage")
            .build()
    }

    fn validate_credential(credential: Credential) -> Result<(), ProviderError> {
        get(
            &credential,
            "/v1/organization/projects",
            &[("limit", "1".into())],
        )
        .map(|_| ())
    }

    fn fetch_usage(credential: Credential, query: Query) -> Result<UsagePage, ProviderError> {
        let (index, page) = split_cursor(query.cursor.as_deref())?;
        let (endpoint, group_by) = USAGE_ENDPOINTS[index];
        let mut params = vec![
            ("start_time", query.window.start.to_string()),
            ("end_time", query.window.end.to_string()),
            ("bucket_width", query.bucket.as_str().to_owned()),
            ("limit", bucket_limit(query.bucket).to_string()),
        ];
        params.extend(group_by.iter().map(|g| ("group_by", (*g).to_owned())));
        if let Some(p) = page {
            params.push(("page", p));
        }
        let body = get(
            &credential,
            &format!("/v1/organization/usage/{endpoint}"),
            &params,
        )?;
        let (rows, next_page) = parse_usage_page(&body)?;
        let next_cursor = match next_page {
            Some(p) => Some(format!("{index}:{p}")),
            None if index + 1 < USAGE_ENDPOINTS.len() => Some(format!("{}:", index + 1)),
            None => None,
        };
        Ok(UsagePage { rows, next_cursor })
    }

    fn fetch_costs(credential: Credential, query: Query) -> Result<CostPage, ProviderError> {
        if query.bucket != BucketWidth::Day {
            return Err(ProviderError::NotSupported(
                "OpenAI's Costs API reports daily buckets only (1d)".into(),
            ));
        }
        let mut params = vec![
            ("start_time", query.window.start.to_string()),
            ("end_time", query.window.end.to_string()),
            ("bucket_width", "1d".to_owned()),
            ("limit", "180".to_owned()),
            ("group_by", "project_id".to_owned()),
            ("group_by", "line_item".to_owned()),
        ];
        if let Some(p) = query.cursor {
            params.push(("page", p));
        }
        let body = get(&credential, "/v1/organization/costs", &params)?;
        let (rows, next_cursor) = parse_cost_page(&body)?;
        Ok(CostPage { rows, next_cursor })
    }
}

export_plugin!(OpenAi);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_split_cached_input_and_keep_groups() {
        let body = br#"{"object":"page","data":[{"object":"bucket","start_time":1730419200,"end_time":1730505600,"results":[
            {"object":"organization.usage.completions.result","input_tokens":1000,"output_tokens":500,"input_cached_tokens":800,
             "num_model_requests":5,"project_id":"proj_1","api_key_id":null,"model":"gpt-4o-2024-08-06","batch":true,"service_tier":null}]},
            {"object":"bucket","start_time":1730505600,"end_time":1730592000,"results":[]}],
            "has_more":true,"next_page":"page_2"}"#;
        let (rows, next) = parse_usage_page(body).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (
                rows[0].input_tokens,
                rows[0].cache_read_tokens,
                rows[0].output_tokens
            ),
            (200, 800, 500)
        );
        assert_eq!(rows[0].service_tier.as_deref(), Some("batch"));
        assert_eq!(rows[0].api_key_id, None);
        assert_eq!(next.as_deref(), Some("page_2"));
    }

    #[test]
    fn costs_are_exact() {
        let body = br#"{"data":[{"start_time":1730419200,"end_time":1730505600,"results":[
            {"object":"organization.costs.result","amount":{"value":0.0600000000000000005,"currency":"usd"},"line_item":"gpt-4o, input","project_id":"proj_1"}]}],
            "has_more":false,"next_page":null}"#;
        let (rows, next) = parse_cost_page(body).unwrap();
        assert_eq!(rows[0].amount, "0.0600000000000000005");
        assert_eq!(next, None);
        assert!(parse_cost_page(b"{\"data\": [").is_err());
    }
}
