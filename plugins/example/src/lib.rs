//! The example plugin of `plugin-sdk/README.md`: a fictional provider, "Example AI",
//! whose usage API answers
//!
//! ```text
//! GET /v1/usage?start=2025-01-01&end=2025-01-02&page=CURSOR
//! {"days": [{"date": "2025-01-01", "model": "ex-1", "input": 10, "output": 5, "requests": 2}],
//!  "next": "CURSOR-or-null"}
//! ```
//!
//! It shows the whole SDK surface a real plugin uses: metadata, a credential check,
//! paging with a cursor, JSON over the host's HTTP and the error mapping.

use aispend_plugin_sdk::{
    BucketWidth, Capability, Credential, Metadata, MetadataBuilder, Plugin, ProviderError, Query,
    UsagePage, UsageRow, export_plugin, http, time,
};
use serde::Deserialize;

/// The provider's default API host.
pub const DEFAULT_BASE_URL: &str = "https://api.example-ai.test";

/// The plugin.
pub struct ExampleAi;

#[derive(Deserialize)]
struct Day {
    date: String,
    model: Option<String>,
    #[serde(default)]
    input: u64,
    #[serde(default)]
    output: u64,
    #[serde(default)]
    requests: u64,
}

#[derive(Deserialize)]
struct Page {
    days: Vec<Day>,
    next: Option<String>,
}

/// Turns one page of the provider's JSON into rows (kept apart from the HTTP call so
/// it can be unit-tested natively).
pub fn parse_page(body: &[u8]) -> Result<UsagePage, ProviderError> {
    let page: Page =
        serde_json::from_slice(body).map_err(|e| ProviderError::bad_response(e.to_string()))?;
    let mut rows = Vec::with_capacity(page.days.len());
    for day in page.days {
        let start = time::parse_rfc3339(&day.date)
            .ok_or_else(|| ProviderError::bad_response(format!("`{}` is not a date", day.date)))?;
        let mut row = UsageRow::new(start, start + 86_400);
        row.model = day.model;
        row.input_tokens = day.input;
        row.output_tokens = day.output;
        row.requests = day.requests;
        rows.push(row);
    }
    Ok(UsagePage {
        rows,
        next_cursor: page.next,
    })
}

fn auth(credential: &Credential) -> String {
    format!("Bearer {}", credential.secret)
}

impl Plugin for ExampleAi {
    fn metadata() -> Metadata {
        MetadataBuilder::new("example-ai", "Example AI", env!("CARGO_PKG_VERSION"))
            .capability(Capability::ValidateCredential)
            .capability(Capability::FetchUsage)
            .host("api.example-ai.test")
            .credential_help("An Example AI admin key (Settings → Admin keys).")
            .docs_url("https://docs.example-ai.test/usage")
            .build()
    }

    fn validate_credential(credential: Credential) -> Result<(), ProviderError> {
        let url = format!("{}/v1/me", credential.base_url_or(DEFAULT_BASE_URL));
        http::send(&http::get(&url, &[("authorization", &auth(&credential))]))?
            .error_for_status()?;
        Ok(())
    }

    fn fetch_usage(credential: Credential, query: Query) -> Result<UsagePage, ProviderError> {
        if query.bucket != BucketWidth::Day {
            return Err(ProviderError::NotSupported(
                "Example AI reports daily buckets only".into(),
            ));
        }
        let mut params = vec![
            ("start", time::date(query.window.start)),
            ("end", time::date(query.window.end)),
        ];
        if let Some(cursor) = query.cursor {
            params.push(("page", cursor));
        }
        let url = http::with_query(
            &format!("{}/v1/usage", credential.base_url_or(DEFAULT_BASE_URL)),
            &params,
        );
        let response = http::send(&http::get(&url, &[("authorization", &auth(&credential))]))?
            .error_for_status()?;
        parse_page(&response.body)
    }
}

export_plugin!(ExampleAi);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_page() {
        let page = parse_page(br#"{"days":[{"date":"2025-01-01","model":"ex-1","input":10,"output":5,"requests":2}],"next":"p2"}"#)
            .unwrap();
        assert_eq!(page.rows.len(), 1);
        assert_eq!(page.rows[0].bucket_start, 1_735_689_600);
        assert_eq!(page.rows[0].input_tokens, 10);
        assert_eq!(page.next_cursor.as_deref(), Some("p2"));
        assert!(matches!(
            parse_page(b"{"),
            Err(ProviderError::BadResponse(_))
        ));
    }
}
