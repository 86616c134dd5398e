//! Bindings for `aispend:provider@0.1.0` (`plugin-sdk/wit/provider.wit`), the host side
//! of its imports (`http`, `log`) and the conversion of its exports' results into the
//! host's own types. A later SDK version gets a sibling module; this one stays as long
//! as the host supports plugins built for 0.1.0.

use super::call::{CallState, LOG_LINE_CHARS};
use super::http::{self as host_http, HttpFailure, HttpRequest};
use super::rows::{self, CostRow, Page, UsageRow};
use super::{
    BucketWidth, Capability, CredentialMaterial, FetchQuery, PluginErrorKind, PluginMetadata,
};
use wasmtime::component::{HasSelf, Linker};

/// Generated from the WIT; the contract's own documentation lives there.
#[allow(missing_docs)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "../plugin-sdk/wit",
        world: "provider",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

use bindings::aispend;
pub use bindings::{Provider, ProviderPre};

use aispend::provider::http::{self as wit_http, HttpError, Method};
use aispend::provider::log::{self as wit_log, Level};
use aispend::provider::types as wit;

/// Adds the provider world's imports (`http`, `log`, `types`) to a linker.
pub fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    Provider::add_to_linker::<CallState, HasSelf<CallState>>(linker, |state| state)
}

impl wit::Host for CallState {}

impl wit_http::Host for CallState {
    async fn send(
        &mut self,
        request: wit_http::Request,
    ) -> wasmtime::Result<Result<wit_http::Response, HttpError>> {
        if self.requests >= self.call_limits.http_requests {
            tracing::warn!(plugin = %self.label, limit = self.call_limits.http_requests, "plugin exceeded its HTTP request budget");
            return Ok(Err(HttpError::TooManyRequests(
                self.call_limits.http_requests,
            )));
        }
        self.requests += 1;
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
        };
        let host_request = HttpRequest {
            method,
            url: request.url,
            headers: request.headers,
            body: request.body,
        };
        let outcome = host_http::send(
            &self.granter,
            host_request,
            self.call_limits.request_timeout,
            self.call_limits.response_bytes,
        )
        .await;
        Ok(match outcome {
            Ok(r) => {
                tracing::debug!(plugin = %self.label, status = r.status, bytes = r.body.len(), "plugin HTTP response");
                Ok(wit_http::Response {
                    status: r.status,
                    headers: r.headers,
                    body: r.body,
                })
            }
            Err(failure) => {
                tracing::info!(plugin = %self.label, error = ?failure, "plugin HTTP request failed");
                Err(match failure {
                    HttpFailure::Denied(why) => HttpError::Denied(why),
                    HttpFailure::TooLarge(n) => HttpError::TooLarge(n),
                    HttpFailure::Timeout => HttpError::Timeout,
                    HttpFailure::Transport(why) => HttpError::Transport(why),
                })
            }
        })
    }
}

impl wit_log::Host for CallState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.log_lines += 1;
        if self.log_lines > self.call_limits.log_lines {
            if self.log_lines == self.call_limits.log_lines + 1 {
                tracing::warn!(plugin = %self.label, "plugin log limit reached; further lines of this call are dropped");
            }
            return Ok(());
        }
        // Redact the whole line first: cutting first could leave the start of a secret
        // that the redactor, looking for the whole secret, would no longer recognise.
        let message = self.redact.apply(&message);
        let message: String = message.chars().take(LOG_LINE_CHARS).collect();
        let plugin = self.label.as_str();
        match level {
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
        Ok(())
    }
}

/// The credential as the plugin sees it.
pub fn credential(material: &CredentialMaterial) -> wit::Credential {
    wit::Credential {
        secret: material.secret.expose().to_owned(),
        base_url: material.base_url.clone(),
        options: material.options.clone(),
    }
}

/// The query as the plugin sees it.
pub fn query(q: &FetchQuery) -> wit::Query {
    wit::Query {
        window: wit::Window {
            start: q.start.timestamp(),
            end: q.end.timestamp(),
        },
        bucket: match q.bucket {
            BucketWidth::Minute => wit::BucketWidth::Minute,
            BucketWidth::Hour => wit::BucketWidth::Hour,
            BucketWidth::Day => wit::BucketWidth::Day,
        },
        cursor: q.cursor.clone(),
    }
}

/// The plugin's metadata in host terms, checked.
pub fn metadata(m: wit::Metadata) -> Result<PluginMetadata, String> {
    let meta = PluginMetadata {
        id: m.id,
        name: m.name,
        version: m.version,
        capabilities: m
            .capabilities
            .into_iter()
            .map(|c| match c {
                wit::Capability::ValidateCredential => Capability::ValidateCredential,
                wit::Capability::FetchUsage => Capability::FetchUsage,
                wit::Capability::FetchCosts => Capability::FetchCosts,
                wit::Capability::ManualEntry => Capability::ManualEntry,
            })
            .collect(),
        hosts: m.hosts,
        credential_help: m.credential_help,
        manual_entry_help: m.manual_entry_help,
        docs_url: m.docs_url,
    };
    meta.check()?;
    Ok(meta)
}

/// A provider error in host terms.
pub fn provider_error(e: wit::ProviderError) -> PluginErrorKind {
    match e {
        wit::ProviderError::Unauthorized(m) => PluginErrorKind::Unauthorized(m),
        wit::ProviderError::Forbidden(m) => PluginErrorKind::Forbidden(m),
        wit::ProviderError::RateLimited(r) => PluginErrorKind::RateLimited {
            retry_after: r
                .retry_after_secs
                .map(|s| std::time::Duration::from_secs(u64::from(s))),
            message: r.message,
        },
        wit::ProviderError::Unavailable(m) => PluginErrorKind::Unavailable(m),
        wit::ProviderError::BadResponse(m) => PluginErrorKind::BadResponse(m),
        wit::ProviderError::NotSupported(m) => PluginErrorKind::NotSupported(m),
        wit::ProviderError::Other(m) => PluginErrorKind::Other(m),
    }
}

fn units(units: Vec<wit::UnitCount>) -> Vec<rows::RawUnit> {
    units
        .into_iter()
        .map(|u| rows::RawUnit {
            unit: u.unit,
            quantity: u.quantity,
        })
        .collect()
}

/// A usage page in host terms; rows are validated (a plugin returning garbage fails).
pub fn usage_page(p: wit::UsagePage, max_rows: usize) -> Result<Page, String> {
    if p.rows.len() > max_rows {
        return Err(format!(
            "returned {} rows in one page; the limit is {max_rows}",
            p.rows.len()
        ));
    }
    let mut out: Vec<UsageRow> = Vec::with_capacity(p.rows.len());
    for (i, r) in p.rows.into_iter().enumerate() {
        let raw = rows::RawUsageRow {
            bucket_start: r.bucket_start,
            bucket_end: r.bucket_end,
            model: r.model,
            project_id: r.project_id,
            workspace_id: r.workspace_id,
            api_key_id: r.api_key_id,
            service_tier: r.service_tier,
            tokens: [
                r.input_tokens,
                r.cache_read_tokens,
                r.cache_write_tokens,
                r.cache_write_1h_tokens,
                r.output_tokens,
                r.reasoning_tokens,
            ],
            requests: r.requests,
            units: units(r.units),
        };
        out.push(raw.parse().map_err(|e| format!("row {i}: {e}"))?);
    }
    Ok(Page::usage(out, rows::cursor(p.next_cursor)?))
}

/// A cost page in host terms; rows are validated.
pub fn cost_page(p: wit::CostPage, max_rows: usize) -> Result<Page, String> {
    if p.rows.len() > max_rows {
        return Err(format!(
            "returned {} rows in one page; the limit is {max_rows}",
            p.rows.len()
        ));
    }
    let mut out: Vec<CostRow> = Vec::with_capacity(p.rows.len());
    for (i, r) in p.rows.into_iter().enumerate() {
        let raw = rows::RawCostRow {
            bucket_start: r.bucket_start,
            bucket_end: r.bucket_end,
            model: r.model,
            project_id: r.project_id,
            workspace_id: r.workspace_id,
            api_key_id: r.api_key_id,
            service_tier: r.service_tier,
            line_item: r.line_item,
            amount: r.amount,
            currency: r.currency,
            units: units(r.units),
        };
        out.push(raw.parse().map_err(|e| format!("row {i}: {e}"))?);
    }
    Ok(Page::costs(out, rows::cursor(p.next_cursor)?))
}
