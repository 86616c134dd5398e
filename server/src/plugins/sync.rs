//! The plugin host as the sync's [`ReportFetcher`]: plugin pages become report rows,
//! plugin errors become the sync's error kinds (which decide the retry rules).

use super::rows::{self, Rows};
use super::{
    BucketWidth, Capability, FetchKind, FetchQuery, PluginError, PluginErrorKind, PluginHost,
};
use crate::domain::credential::CredentialMaterial;
use crate::domain::money::Usd;
use crate::domain::provider::Provider;
use crate::domain::provider_report::{ReportKey, ReportMeasures, ReportRow, UnitCount};
use crate::domain::sync::{
    ReportFetcher, SourceError, SourcePage, SyncErrorKind, SyncKind, SyncSupport, SyncWindow,
};
use futures::future::BoxFuture;

impl ReportFetcher for PluginHost {
    fn support<'a>(&'a self, provider: &'a Provider) -> BoxFuture<'a, Option<SyncSupport>> {
        Box::pin(async move {
            let plugin = self.plugin(provider.as_str()).await.ok()?;
            let m = &plugin.metadata;
            Some(SyncSupport {
                plugin: m.label(),
                usage: m.can(Capability::FetchUsage),
                costs: m.can(Capability::FetchCosts),
                manual_entry_help: if m.can(Capability::ManualEntry) {
                    Some(m.manual_entry_help.clone().unwrap_or_default())
                } else {
                    None
                },
            })
        })
    }

    fn fetch_page<'a>(
        &'a self,
        provider: &'a Provider,
        kind: SyncKind,
        material: &'a CredentialMaterial,
        window: SyncWindow,
        cursor: Option<String>,
    ) -> BoxFuture<'a, Result<SourcePage, SourceError>> {
        Box::pin(async move {
            let (fetch, bucket) = match kind {
                SyncKind::Usage => (FetchKind::Usage, BucketWidth::Hour),
                SyncKind::Costs => (FetchKind::Costs, BucketWidth::Day),
            };
            let query = FetchQuery {
                start: window.start,
                end: window.end,
                bucket,
                cursor,
            };
            let page = PluginHost::fetch_page(self, provider.as_str(), fetch, material, &query)
                .await
                .map_err(source_error)?;
            let rows = match page.rows {
                Rows::Usage(rows) => rows.into_iter().map(usage_row).collect(),
                Rows::Costs(rows) => rows.into_iter().map(cost_row).collect::<Result<_, _>>()?,
            };
            Ok(SourcePage {
                rows,
                next_cursor: page.next_cursor,
            })
        })
    }
}

fn source_error(e: PluginError) -> SourceError {
    let message = e.to_string();
    let (kind, retry_after) = match e.kind {
        PluginErrorKind::Unauthorized(_) => (SyncErrorKind::Unauthorized, None),
        PluginErrorKind::Forbidden(_) => (SyncErrorKind::Forbidden, None),
        PluginErrorKind::RateLimited { retry_after, .. } => {
            (SyncErrorKind::RateLimited, retry_after)
        }
        PluginErrorKind::Unavailable(_) => (SyncErrorKind::Unavailable, None),
        PluginErrorKind::TimedOut(_) => (SyncErrorKind::Timeout, None),
        PluginErrorKind::BadResponse(_) => (SyncErrorKind::BadResponse, None),
        PluginErrorKind::NotSupported(_) => (SyncErrorKind::NotSupported, None),
        PluginErrorKind::Other(_) => (SyncErrorKind::Other, None),
        PluginErrorKind::LimitExceeded(_) => (SyncErrorKind::LimitExceeded, None),
        PluginErrorKind::Crashed(_)
        | PluginErrorKind::Unloadable(_)
        | PluginErrorKind::NotFound => (SyncErrorKind::PluginFailed, None),
    };
    SourceError {
        kind,
        retry_after,
        message,
    }
}

fn units(list: Vec<rows::UnitCount>) -> Vec<UnitCount> {
    let mut out: Vec<UnitCount> = list
        .into_iter()
        .map(|u| UnitCount {
            unit: u.unit,
            quantity: u.quantity,
        })
        .collect();
    out.sort_by(|a, b| a.unit.cmp(&b.unit));
    out
}

fn key(
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
    d: rows::Dimensions,
    line_item: Option<String>,
) -> ReportKey {
    ReportKey {
        bucket_start: start,
        bucket_end: end,
        model: d.model.unwrap_or_default(),
        external_project: d.project_id.unwrap_or_default(),
        workspace: d.workspace_id.unwrap_or_default(),
        api_key: d.api_key_id.unwrap_or_default(),
        service_tier: d.service_tier.unwrap_or_default(),
        line_item: line_item.unwrap_or_default(),
    }
}

fn usage_row(r: rows::UsageRow) -> ReportRow {
    ReportRow {
        key: key(r.bucket_start, r.bucket_end, r.dimensions, None),
        measures: ReportMeasures {
            tokens: r.tokens,
            requests: r.requests,
            units: units(r.units),
            amount: None,
            currency: None,
        },
    }
}

fn cost_row(r: rows::CostRow) -> Result<ReportRow, SourceError> {
    let amount = Usd::from_decimal(r.amount).ok_or_else(|| SourceError {
        kind: SyncErrorKind::BadResponse,
        retry_after: None,
        message: format!("a cost of {} {} is out of range", r.amount, r.currency),
    })?;
    Ok(ReportRow {
        key: key(r.bucket_start, r.bucket_end, r.dimensions, r.line_item),
        measures: ReportMeasures {
            tokens: Default::default(),
            requests: 0,
            units: units(r.units),
            amount: Some(amount),
            currency: Some(r.currency),
        },
    })
}
