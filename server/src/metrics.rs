//! Prometheus metrics (`GET /metrics`): what the process did since it started, in the
//! Prometheus text format, through the `metrics` crate's recorder and its Prometheus
//! exporter.
//!
//! Why a recorder per [`Metrics`] and not the process-global one: an embedding (the
//! end-to-end tests start many servers in one process) gets one registry per server,
//! so one server's counters never show on another's `/metrics`. Every label has a
//! bounded set of values — provider, model, project, operation, outcome, plugin,
//! channel — never a user, endpoint, idempotency key or other client-chosen text.
//!
//! Counters are per process: behind a load balancer, sum them across replicas.

use crate::domain::credential::CredentialMaterial;
use crate::domain::ids::ProjectId;
use crate::domain::provider::Provider;
use crate::domain::sync::{
    ReportFetcher, SourceError, SourcePage, SyncKind, SyncSupport, SyncWindow,
};
use crate::domain::usage::UsageEvent;
use crate::domain::usage::ingest::{LedgerChange, LedgerHook};
use futures::future::BoxFuture;
use metrics::{Key, Label, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use sea_orm::DatabaseTransaction;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Spend, in billionths of a US dollar (the ledger's own unit, so sums are exact).
pub const SPEND: &str = "aispend_spend_nano_usd_total";
/// Tokens by class.
pub const TOKENS: &str = "aispend_tokens_total";
/// Stored usage events by source.
pub const EVENTS: &str = "aispend_usage_events_total";
/// Ingest latency by operation (`graphql`, `rest`, `otlp`) and outcome.
pub const INGEST_SECONDS: &str = "aispend_ingest_duration_seconds";
/// OTLP spans by outcome (`stored`, `duplicate`, `skipped`, `rejected`).
pub const OTLP_SPANS: &str = "aispend_otlp_spans_total";
/// GraphQL latency by operation (the first root field).
pub const GRAPHQL_SECONDS: &str = "aispend_graphql_duration_seconds";
/// Provider sync runs by outcome.
pub const SYNC_RUNS: &str = "aispend_sync_runs_total";
/// Plugin call errors by plugin and error kind.
pub const PLUGIN_ERRORS: &str = "aispend_plugin_errors_total";
/// Alert deliveries by channel and outcome.
pub const ALERT_DELIVERIES: &str = "aispend_alert_deliveries_total";
/// Live subscribers now.
pub const LIVE_SUBSCRIBERS: &str = "aispend_live_subscribers";

/// Latency buckets (seconds): from a cached read to a slow batch.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// The `outcome` label of a result: `ok` or `error`.
pub fn outcome<T, E>(result: &Result<T, E>) -> &'static str {
    if result.is_ok() { "ok" } else { "error" }
}

/// This server's metrics.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn labels(pairs: &[(&'static str, &str)]) -> Vec<Label> {
    pairs
        .iter()
        .map(|(k, v)| Label::new(*k, (*v).to_owned()))
        .collect()
}

impl Metrics {
    /// A fresh registry with every metric described.
    pub fn new() -> Metrics {
        // Only an empty bucket list is an error; the fallback renders summaries.
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let metrics = Metrics { recorder, handle };
        metrics.describe();
        metrics
    }

    fn describe(&self) {
        let r = &self.recorder;
        let text = |s: &'static str| SharedString::const_str(s);
        r.describe_counter(
            SPEND.into(),
            None,
            text("Spend of stored usage events in billionths of a US dollar (divide by 1e9), by provider, model and project; unpriced events add nothing"),
        );
        r.describe_counter(
            TOKENS.into(),
            None,
            text("Tokens of stored usage events by provider, model, project and class (input excludes cache reads and writes; output includes reasoning)"),
        );
        r.describe_counter(
            EVENTS.into(),
            None,
            text(
                "Usage events stored (duplicates excluded) by provider, model, project and source",
            ),
        );
        r.describe_histogram(
            INGEST_SECONDS.into(),
            Some(Unit::Seconds),
            text("Time to answer an ingest request, by operation and outcome"),
        );
        r.describe_counter(
            OTLP_SPANS.into(),
            None,
            text("Spans received on /v1/traces by outcome: stored, duplicate (a retry), skipped (no GenAI usage), rejected"),
        );
        r.describe_histogram(
            GRAPHQL_SECONDS.into(),
            Some(Unit::Seconds),
            text("Time to execute a GraphQL operation, by its first root field"),
        );
        r.describe_counter(
            SYNC_RUNS.into(),
            None,
            text("Provider sync runs finished by this process, by outcome"),
        );
        r.describe_counter(
            PLUGIN_ERRORS.into(),
            None,
            text("Provider plugin calls that failed, by plugin and error kind"),
        );
        r.describe_counter(
            ALERT_DELIVERIES.into(),
            None,
            text("Alert delivery attempts by channel and outcome"),
        );
        r.describe_gauge(
            LIVE_SUBSCRIBERS.into(),
            None,
            text("Live cost subscriptions open on this process"),
        );
    }

    fn add(&self, name: &'static str, pairs: &[(&'static str, &str)], n: u64) {
        self.recorder
            .register_counter(&Key::from_parts(name, labels(pairs)), &METADATA)
            .increment(n);
    }

    fn observe(&self, name: &'static str, pairs: &[(&'static str, &str)], d: Duration) {
        self.recorder
            .register_histogram(&Key::from_parts(name, labels(pairs)), &METADATA)
            .record(d.as_secs_f64());
    }

    /// Renders every metric in the Prometheus text format, with the live subscriber
    /// count read now.
    pub fn render(&self, live_subscribers: usize) -> String {
        self.recorder
            .register_gauge(&Key::from_name(LIVE_SUBSCRIBERS), &METADATA)
            .set(live_subscribers as f64);
        self.handle.render()
    }

    /// Counts newly stored events: spend, tokens by class, events by source.
    pub fn usage_stored(&self, events: &[UsageEvent]) {
        // Sum per series first: a 10,000-event batch touches each series once.
        type Series<'a> = (&'a str, &'a str, ProjectId);
        let mut spend: HashMap<Series<'_>, u64> = HashMap::new();
        let mut tokens: HashMap<(Series<'_>, &'static str), u64> = HashMap::new();
        let mut count: HashMap<(Series<'_>, &'static str), u64> = HashMap::new();
        for e in events {
            let series = (e.provider.as_str(), e.model.as_str(), e.project);
            if let Some(cost) = e.cost {
                let s = spend.entry(series).or_default();
                *s = s.saturating_add(u64::try_from(cost.nanos()).unwrap_or(0));
            }
            for (class, n) in [
                ("input", e.tokens.input),
                ("output", e.tokens.output),
                ("cache_read", e.tokens.cache_read),
                ("cache_write", e.tokens.cache_write),
                ("cache_write_1h", e.tokens.cache_write_1h),
                ("reasoning", e.tokens.reasoning),
            ] {
                if n > 0 {
                    *tokens.entry((series, class)).or_default() += n as u64;
                }
            }
            *count.entry((series, e.source.as_str())).or_default() += 1;
        }
        let base = |(provider, model, project): Series<'_>| -> Vec<(&'static str, String)> {
            vec![
                ("provider", provider.to_owned()),
                ("model", model.to_owned()),
                ("project", project.to_string()),
            ]
        };
        let add = |name: &'static str, labels: Vec<(&'static str, String)>, n: u64| {
            let labels: Vec<Label> = labels.into_iter().map(|(k, v)| Label::new(k, v)).collect();
            self.recorder
                .register_counter(&Key::from_parts(name, labels), &METADATA)
                .increment(n);
        };
        for (series, n) in spend {
            add(SPEND, base(series), n);
        }
        for ((series, class), n) in tokens {
            let mut labels = base(series);
            labels.push(("class", class.to_owned()));
            add(TOKENS, labels, n);
        }
        for ((series, source), n) in count {
            let mut labels = base(series);
            labels.push(("source", source.to_owned()));
            add(EVENTS, labels, n);
        }
    }

    /// One ingest request's latency.
    pub fn ingest_latency(&self, operation: &'static str, outcome: &'static str, d: Duration) {
        self.observe(
            INGEST_SECONDS,
            &[("operation", operation), ("outcome", outcome)],
            d,
        );
    }

    /// Spans of one OTLP request with one outcome.
    pub fn otlp_spans(&self, outcome: &'static str, n: usize) {
        if n > 0 {
            self.add(OTLP_SPANS, &[("outcome", outcome)], n as u64);
        }
    }

    /// One GraphQL operation's latency; `operation` is a schema field name.
    pub fn graphql_latency(&self, operation: &str, d: Duration) {
        self.observe(GRAPHQL_SECONDS, &[("operation", operation)], d);
    }

    /// A finished sync run.
    pub fn sync_run(&self, provider: &str, outcome: &str) {
        self.add(
            SYNC_RUNS,
            &[("provider", provider), ("outcome", outcome)],
            1,
        );
    }

    /// A failed plugin call.
    pub fn plugin_error(&self, plugin: &str, kind: &str) {
        self.add(PLUGIN_ERRORS, &[("plugin", plugin), ("kind", kind)], 1);
    }

    /// One alert delivery attempt.
    pub fn alert_delivery(&self, channel: &str, outcome: &str) {
        self.add(
            ALERT_DELIVERIES,
            &[("channel", channel), ("outcome", outcome)],
            1,
        );
    }

    /// The ledger hook that counts stored events after they commit.
    pub fn hook(self: &Arc<Self>) -> Arc<dyn LedgerHook> {
        Arc::new(MetricsHook(self.clone()))
    }
}

/// The plugins, counting every failed call by plugin and error kind.
pub struct CountingFetcher {
    /// The plugin host.
    pub inner: Arc<dyn ReportFetcher>,
    /// Where failures are counted.
    pub metrics: Arc<Metrics>,
}

impl ReportFetcher for CountingFetcher {
    fn support<'a>(&'a self, provider: &'a Provider) -> BoxFuture<'a, Option<SyncSupport>> {
        self.inner.support(provider)
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
            let result = self
                .inner
                .fetch_page(provider, kind, material, window, cursor)
                .await;
            if let Err(e) = &result {
                self.metrics
                    .plugin_error(provider.as_str(), e.kind.as_str());
            }
            result
        })
    }
}

/// Counts committed events (a rolled-back write counts nothing).
struct MetricsHook(Arc<Metrics>);

impl LedgerHook for MetricsHook {
    fn name(&self) -> &'static str {
        "metrics"
    }

    fn apply<'a>(
        &'a self,
        _txn: &'a DatabaseTransaction,
        _change: LedgerChange<'a>,
    ) -> BoxFuture<'a, crate::domain::error::Result<()>> {
        Box::pin(async { Ok(()) })
    }

    fn committed(&self, change: LedgerChange<'_>) {
        if let LedgerChange::Inserted(events) = change {
            self.0.usage_stored(events);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_registries_do_not_share_counters() {
        let a = Metrics::new();
        let b = Metrics::new();
        a.sync_run("openai", "succeeded");
        a.ingest_latency("otlp", "ok", Duration::from_millis(3));
        let text = a.render(2);
        assert!(
            text.contains(r#"aispend_sync_runs_total{provider="openai",outcome="succeeded"} 1"#),
            "{text}"
        );
        assert!(text.contains("aispend_live_subscribers 2"), "{text}");
        assert!(
            text.contains(r#"aispend_ingest_duration_seconds_bucket{operation="otlp",outcome="ok",le="0.005"} 1"#),
            "{text}"
        );
        assert!(!b.render(0).contains("aispend_sync_runs_total{"));
    }
}
