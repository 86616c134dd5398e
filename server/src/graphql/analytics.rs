//! Analytics over GraphQL: `costSummary`, `costBreakdown`, `costTrend` and `filters`,
//! each in the `view` asked for (TRACKED by default).

use super::context::ContextExt;
use super::error::GqlResult;
use super::scalars::Decimal;
use super::scalars::Timestamp;
use super::usage::UsageFilterInput;
use crate::domain::Error;
use crate::domain::analytics::{
    self, Basis, Dimension, Group, Measure, Measures, Need, RawLatencyLimit, TrendBucket, View,
};
use crate::domain::calendar::{self, Granularity};
use crate::domain::insights;
use crate::domain::money::clamp_i64;
use crate::domain::price::rates::TokenClass;
use async_graphql::{Context, Enum, ID, Lookahead, Object, SimpleObject};

/// Which numbers analytics use.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
#[graphql(name = "AnalyticsView")]
pub enum ViewGql {
    /// Events applications recorded, priced by aispend.
    #[default]
    Tracked,
    /// What providers reported (synced and manual) and fixed subscriptions.
    Reported,
    /// Reported where a provider has reported the day, tracked elsewhere; never both.
    Best,
}

impl From<ViewGql> for View {
    fn from(v: ViewGql) -> Self {
        match v {
            ViewGql::Tracked => View::Tracked,
            ViewGql::Reported => View::Reported,
            ViewGql::Best => View::Best,
        }
    }
}

/// Which numbers a result used.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "AnalyticsBasis")]
pub enum BasisGql {
    /// Tracked events.
    Tracked,
    /// Provider reports.
    Reported,
    /// Tracked for some providers, reported for others.
    Mixed,
}

fn basis(b: Option<Basis>) -> Option<BasisGql> {
    b.map(|b| match b {
        Basis::Tracked => BasisGql::Tracked,
        Basis::Reported => BasisGql::Reported,
        Basis::Mixed => BasisGql::Mixed,
    })
}

/// Bucket width of a trend.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "TrendGranularity")]
pub enum GranularityGql {
    /// Clock hours.
    Hour,
    /// Local days.
    Day,
    /// Weeks from Monday.
    Week,
    /// Calendar months.
    Month,
    /// Calendar quarters.
    Quarter,
    /// Calendar years.
    Year,
}

impl From<GranularityGql> for Granularity {
    fn from(g: GranularityGql) -> Self {
        match g {
            GranularityGql::Hour => Granularity::Hour,
            GranularityGql::Day => Granularity::Day,
            GranularityGql::Week => Granularity::Week,
            GranularityGql::Month => Granularity::Month,
            GranularityGql::Quarter => Granularity::Quarter,
            GranularityGql::Year => Granularity::Year,
        }
    }
}

/// A dimension of `costBreakdown`.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "BreakdownDimension")]
pub enum DimensionGql {
    /// Provider.
    Provider,
    /// Model as recorded.
    Model,
    /// Endpoint (tracked view only).
    Endpoint,
    /// Project.
    Project,
    /// Source (tracked view only).
    Source,
    /// End user (tracked view only).
    User,
}

impl From<DimensionGql> for Dimension {
    fn from(d: DimensionGql) -> Self {
        match d {
            DimensionGql::Provider => Dimension::Provider,
            DimensionGql::Model => Dimension::Model,
            DimensionGql::Endpoint => Dimension::Endpoint,
            DimensionGql::Project => Dimension::Project,
            DimensionGql::Source => Dimension::Source,
            DimensionGql::User => Dimension::User,
        }
    }
}

/// Cost, requests and every token class of a slice of spend. The cost is exact at any
/// size; a count is exact up to 2^63 − 1 (9.2 × 10^18) and shown as that beyond.
#[derive(SimpleObject)]
#[graphql(name = "CostTotals")]
pub struct TotalsGql {
    /// Exact cost in USD.
    pub cost_usd: Decimal,
    /// Requests.
    pub requests: i64,
    /// Input tokens at the base rate.
    pub input_tokens: i64,
    /// Output tokens (reasoning included).
    pub output_tokens: i64,
    /// Cache reads.
    pub cache_read_tokens: i64,
    /// 5-minute cache writes.
    pub cache_write_tokens: i64,
    /// 1-hour cache writes.
    #[graphql(name = "cacheWrite1hTokens")]
    pub cache_write_1h_tokens: i64,
    /// Reasoning tokens (part of output).
    pub reasoning_tokens: i64,
    /// Audio input tokens (tracked events only).
    pub audio_input_tokens: i64,
    /// Audio output tokens (tracked events only).
    pub audio_output_tokens: i64,
    /// Image input tokens (tracked events only).
    pub image_input_tokens: i64,
    /// Image output tokens (tracked events only).
    pub image_output_tokens: i64,
    /// Images generated (tracked events only).
    pub images_generated: i64,
    /// Web-search calls (tracked events only).
    pub web_search_calls: i64,
    /// Seconds of video generated (tracked events only).
    pub video_seconds: i64,
    /// All tokens (text, audio and image).
    pub total_tokens: i64,
    /// Events (tracked) or report rows with money (reported).
    pub events: i64,
    /// Tracked events without a price (counted at zero cost).
    pub unpriced_events: i64,
    /// Cost per request.
    pub average_cost_per_request_usd: Option<Decimal>,
}

/// The measures a query's `CostTotals` selections show (fragments included): the
/// cost always, each other measure only when a field needs it, so a chart of spend
/// reads three rollup sums per row instead of nineteen.
fn need_of<'a>(selections: impl IntoIterator<Item = Lookahead<'a>>) -> Need {
    use TokenClass as T;
    let fields = [
        ("requests", Measure::Units(T::Request)),
        ("averageCostPerRequestUsd", Measure::Units(T::Request)),
        ("inputTokens", Measure::Units(T::Input)),
        ("outputTokens", Measure::Units(T::Output)),
        ("cacheReadTokens", Measure::Units(T::CacheRead)),
        ("cacheWriteTokens", Measure::Units(T::CacheWrite)),
        ("cacheWrite1hTokens", Measure::Units(T::CacheWrite1h)),
        ("reasoningTokens", Measure::Units(T::Reasoning)),
        ("audioInputTokens", Measure::Units(T::AudioInput)),
        ("audioOutputTokens", Measure::Units(T::AudioOutput)),
        ("imageInputTokens", Measure::Units(T::ImageInput)),
        ("imageOutputTokens", Measure::Units(T::ImageOutput)),
        ("imagesGenerated", Measure::Units(T::Image)),
        ("webSearchCalls", Measure::Units(T::WebSearch)),
        ("videoSeconds", Measure::Units(T::VideoSecond)),
        ("totalTokens", Measure::AllTokens),
    ];
    let mut need = Need::COST;
    for totals in selections {
        for (name, measure) in fields {
            if totals.field(name).exists() {
                need = need.with(measure);
            }
        }
    }
    need
}

impl From<&Measures> for TotalsGql {
    fn from(m: &Measures) -> Self {
        let t = m.tokens.map(clamp_i64);
        TotalsGql {
            cost_usd: m.cost().to_decimal().into(),
            requests: clamp_i64(m.requests),
            input_tokens: t.input,
            output_tokens: t.output,
            cache_read_tokens: t.cache_read,
            cache_write_tokens: t.cache_write,
            cache_write_1h_tokens: t.cache_write_1h,
            reasoning_tokens: t.reasoning,
            audio_input_tokens: t.audio_input,
            audio_output_tokens: t.audio_output,
            image_input_tokens: t.image_input,
            image_output_tokens: t.image_output,
            images_generated: t.images,
            web_search_calls: t.web_searches,
            video_seconds: t.video_seconds,
            total_tokens: clamp_i64(m.total_tokens()),
            events: clamp_i64(m.events),
            unpriced_events: clamp_i64(m.unpriced),
            average_cost_per_request_usd: m.average_cost().map(Into::into),
        }
    }
}

/// One provider's share of a summary.
#[derive(SimpleObject)]
#[graphql(name = "ProviderCost")]
pub struct ProviderCostGql {
    /// Provider.
    pub provider: String,
    /// Its totals.
    pub totals: TotalsGql,
}

/// `costSummary`.
#[derive(SimpleObject)]
#[graphql(name = "CostSummary")]
pub struct SummaryGql {
    /// Everything in the filter.
    pub totals: TotalsGql,
    /// Per provider.
    pub providers: Vec<ProviderCostGql>,
    /// Which numbers were used (null when there were none).
    pub basis: Option<BasisGql>,
}

/// One group of `costBreakdown`; dimensions not grouped by are null.
#[derive(SimpleObject)]
#[graphql(name = "CostGroup")]
pub struct GroupGql {
    /// Provider.
    pub provider: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Endpoint.
    pub endpoint: Option<String>,
    /// Project.
    pub project_id: Option<ID>,
    /// Source.
    pub source: Option<String>,
    /// End user.
    pub user: Option<String>,
    /// Totals.
    pub totals: TotalsGql,
    /// Share of the total cost, in percent.
    pub share_pct: Decimal,
    /// Mean latency (ms) where reported.
    pub latency_avg_ms: Option<f64>,
    /// Median latency (ms). Nearest-rank, over the events that reported a latency. Exact when the range holds at most 20,000 such events (or the groups or filters mix two of endpoint, end user and source, or one of them with the provider or model, or meet an endpoint or end user a project's rollups do not keep apart); above that, from log-bucketed latency sketches (DDSketch-style, relative accuracy 1 %): guaranteed within 1 % of the exact value, plus at most 0.5 ms of rounding to whole milliseconds.
    pub latency_p50_ms: Option<i64>,
    /// 95th percentile latency (ms). Nearest-rank, over the events that reported a latency. Exact when the range holds at most 20,000 such events (or the groups or filters mix two of endpoint, end user and source, or one of them with the provider or model, or meet an endpoint or end user a project's rollups do not keep apart); above that, from log-bucketed latency sketches (DDSketch-style, relative accuracy 1 %): guaranteed within 1 % of the exact value, plus at most 0.5 ms of rounding to whole milliseconds.
    pub latency_p95_ms: Option<i64>,
}

fn group(g: Group, dims: &[Dimension]) -> GroupGql {
    let mut out = GroupGql {
        provider: None,
        model: None,
        endpoint: None,
        project_id: None,
        source: None,
        user: None,
        totals: (&g.measures).into(),
        share_pct: g.share_pct.into(),
        latency_avg_ms: g.latency.map(|l| l.average),
        latency_p50_ms: g.latency.and_then(|l| l.percentiles).map(|p| p.p50),
        latency_p95_ms: g.latency.and_then(|l| l.percentiles).map(|p| p.p95),
    };
    for (d, v) in dims.iter().zip(g.keys) {
        match d {
            Dimension::Provider => out.provider = v,
            Dimension::Model => out.model = v,
            Dimension::Endpoint => out.endpoint = v,
            Dimension::Project => out.project_id = v.map(ID),
            Dimension::Source => out.source = v,
            Dimension::User => out.user = v,
        }
    }
    out
}

/// One bucket of `costTrend`.
#[derive(SimpleObject)]
#[graphql(name = "CostTrendBucket")]
pub struct BucketGql {
    /// Start (the local bucket start, as an instant).
    pub start: Timestamp,
    /// End (exclusive).
    pub end: Timestamp,
    /// Totals (zero for an empty bucket).
    pub totals: TotalsGql,
    /// Which numbers it used (null when empty).
    pub basis: Option<BasisGql>,
}

impl From<TrendBucket> for BucketGql {
    fn from(b: TrendBucket) -> Self {
        BucketGql {
            start: b.start.into(),
            end: b.end.into(),
            totals: (&b.measures).into(),
            basis: basis(b.basis),
        }
    }
}

/// What exists, for pickers.
#[derive(SimpleObject)]
#[graphql(name = "AnalyticsFilters")]
pub struct FiltersGql {
    /// Providers.
    pub providers: Vec<String>,
    /// Models.
    pub models: Vec<String>,
    /// Endpoints.
    pub endpoints: Vec<String>,
    /// Project ids.
    pub projects: Vec<ID>,
    /// End users.
    pub users: Vec<String>,
}

/// Analytics queries.
#[derive(Default)]
pub struct AnalyticsQuery;

#[Object]
impl AnalyticsQuery {
    /// Total cost, requests and tokens of the filter, per provider too.
    async fn cost_summary(
        &self,
        ctx: &Context<'_>,
        filter: Option<UsageFilterInput>,
        #[graphql(default)] view: ViewGql,
    ) -> async_graphql::Result<SummaryGql> {
        let state = ctx.state()?;
        let filter = filter.unwrap_or_default().parse().gql()?;
        let look = ctx.look_ahead();
        let need = need_of([
            look.field("totals"),
            look.field("providers").field("totals"),
        ]);
        let s = analytics::summary(&state.db, ctx.principal(), filter, view.into(), need)
            .await
            .gql()?;
        Ok(SummaryGql {
            totals: (&s.total).into(),
            providers: s
                .providers
                .iter()
                .map(|(p, m)| ProviderCostGql {
                    provider: p.clone(),
                    totals: m.into(),
                })
                .collect(),
            basis: basis(s.basis),
        })
    }

    /// Cost by one or more dimensions at once, dearest first.
    ///
    /// `maxRawLatencies`: when `latencyP50Ms` or `latencyP95Ms` is asked for and no
    /// latency sketch keeps the grouping and filter (see `latencyP50Ms`), the
    /// percentiles are computed from every raw event of the range that reported a
    /// latency. With this set, a breakdown whose range holds more such events than it
    /// says fails at once with `INVALID_INPUT` naming `maxRawLatencies` (and the count)
    /// instead of reading them: a caller with a time budget, like the dashboard, gets
    /// an answer it can show. Unset: no limit.
    async fn cost_breakdown(
        &self,
        ctx: &Context<'_>,
        filter: Option<UsageFilterInput>,
        group_by: Vec<DimensionGql>,
        #[graphql(default)] view: ViewGql,
        max_raw_latencies: Option<i32>,
    ) -> async_graphql::Result<Vec<GroupGql>> {
        let state = ctx.state()?;
        let filter = filter.unwrap_or_default().parse().gql()?;
        let limit = match max_raw_latencies {
            Some(n) if n < 0 => {
                return Err(Error::invalid("maxRawLatencies", "give zero or more")).gql();
            }
            n => RawLatencyLimit(n.map(i64::from)),
        };
        let dims: Vec<Dimension> = group_by.into_iter().map(Into::into).collect();
        let look = ctx.look_ahead();
        // The mean comes with the sums; only percentiles read every event's latency.
        let percentiles = (look.field("latencyP50Ms").exists()
            || look.field("latencyP95Ms").exists())
        .then_some(limit);
        let mut need = need_of([look.field("totals")]);
        if look.field("latencyAvgMs").exists() {
            need = need.with(Measure::Latency);
        }
        Ok(analytics::breakdown(
            &state.db,
            ctx.principal(),
            filter,
            view.into(),
            &dims,
            need,
            percentiles,
        )
        .await
        .gql()?
        .into_iter()
        .map(|g| group(g, &dims))
        .collect())
    }

    /// Zero-filled buckets between `filter.from` and `filter.to` in an IANA time zone
    /// (UTC by default; weeks start on Monday).
    async fn cost_trend(
        &self,
        ctx: &Context<'_>,
        filter: UsageFilterInput,
        granularity: GranularityGql,
        #[graphql(default_with = "String::from(\"UTC\")")] timezone: String,
        #[graphql(default)] view: ViewGql,
    ) -> async_graphql::Result<Vec<BucketGql>> {
        let state = ctx.state()?;
        let tz = calendar::parse_tz(&timezone)
            .map_err(|m| Error::invalid("timezone", m))
            .gql()?;
        let filter = filter.parse().gql()?;
        let need = need_of([ctx.look_ahead().field("totals")]);
        Ok(analytics::trend(
            &state.db,
            ctx.principal(),
            filter,
            view.into(),
            granularity.into(),
            tz,
            need,
        )
        .await
        .gql()?
        .into_iter()
        .map(Into::into)
        .collect())
    }

    /// The providers, models, endpoints, projects and users the caller can see.
    async fn filters(&self, ctx: &Context<'_>) -> async_graphql::Result<FiltersGql> {
        let state = ctx.state()?;
        let f = analytics::filters(&state.db, ctx.principal()).await.gql()?;
        Ok(FiltersGql {
            providers: f.providers,
            models: f.models,
            endpoints: f.endpoints,
            projects: f.projects.into_iter().map(|p| ID(p.to_string())).collect(),
            users: f.users,
        })
    }
}

// ---------------------------------------------------------------------------------
// Recommendations and anomalies

/// What a recommendation proposes.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "RecommendationAction")]
pub enum ActionGql {
    /// A cheaper model of comparable capability.
    CheaperModel,
    /// The provider's Batch API.
    BatchApi,
    /// Prompt caching.
    PromptCaching,
}

/// A concrete change with what it would have saved over the window.
#[derive(SimpleObject)]
#[graphql(name = "Recommendation")]
pub struct RecommendationGql {
    /// What to do.
    pub action: ActionGql,
    /// The endpoint.
    pub endpoint: Option<String>,
    /// Provider.
    pub provider: String,
    /// Model as recorded.
    pub model: String,
    /// For CHEAPER_MODEL: the alternative's provider.
    pub alternative_provider: Option<String>,
    /// For CHEAPER_MODEL: the alternative model.
    pub alternative_model: Option<String>,
    /// What the pair cost over the window.
    pub current_cost_usd: Decimal,
    /// What the same token mix would have cost.
    pub projected_cost_usd: Decimal,
    /// The difference (always positive).
    pub potential_savings_usd: Decimal,
    /// 0 to 1.
    pub confidence: Decimal,
    /// Why, with the numbers.
    pub reasoning: String,
}

impl From<insights::Recommendation> for RecommendationGql {
    fn from(r: insights::Recommendation) -> Self {
        RecommendationGql {
            action: match r.action {
                insights::Action::CheaperModel => ActionGql::CheaperModel,
                insights::Action::BatchApi => ActionGql::BatchApi,
                insights::Action::PromptCaching => ActionGql::PromptCaching,
            },
            endpoint: r.endpoint,
            provider: r.provider.to_string(),
            model: r.model,
            alternative_provider: r.alternative.as_ref().map(|(p, _)| p.to_string()),
            alternative_model: r.alternative.map(|(_, m)| m),
            current_cost_usd: r.current.to_decimal().into(),
            projected_cost_usd: r.projected.to_decimal().into(),
            potential_savings_usd: r.savings.to_decimal().into(),
            confidence: r.confidence.into(),
            reasoning: r.reasoning,
        }
    }
}

/// What an anomaly is about.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "AnomalySubject")]
pub enum SubjectGql {
    /// A provider.
    Provider,
    /// A model.
    Model,
    /// An endpoint.
    Endpoint,
}

/// A contributor to an anomalous day.
#[derive(SimpleObject)]
#[graphql(name = "AnomalyDriver")]
pub struct DriverGql {
    /// The model (for provider and endpoint anomalies) or endpoint (for model ones).
    pub name: String,
    /// What it cost that day.
    pub cost_usd: Decimal,
}

/// A day whose spend stands far above its trailing baseline.
#[derive(SimpleObject)]
#[graphql(name = "Anomaly")]
pub struct AnomalyGql {
    /// Provider, model or endpoint.
    pub subject: SubjectGql,
    /// Its value.
    pub value: String,
    /// The UTC day (`YYYY-MM-DD`).
    pub day: String,
    /// Spend that day.
    pub spend_usd: Decimal,
    /// Mean daily spend over the trailing days.
    pub baseline_usd: Decimal,
    /// Spend ÷ baseline.
    pub factor: Decimal,
    /// The largest contributors that day.
    pub drivers: Vec<DriverGql>,
}

/// Recommendation and anomaly queries.
#[derive(Default)]
pub struct InsightsQuery;

#[Object]
impl InsightsQuery {
    /// For each significant (endpoint, model) pair, concrete changes with the savings
    /// computed from its real token mix over the window; largest savings first.
    async fn recommendations(
        &self,
        ctx: &Context<'_>,
        filter: Option<UsageFilterInput>,
        #[graphql(default_with = "Decimal::ONE")] min_share_pct: Decimal,
    ) -> async_graphql::Result<Vec<RecommendationGql>> {
        let state = ctx.state()?;
        let filter = filter.unwrap_or_default().parse().gql()?;
        let book = state.prices.book();
        Ok(insights::recommendations(
            &state.db,
            ctx.principal(),
            &book,
            filter,
            insights::RecommendOptions {
                min_share_pct: min_share_pct.into(),
            },
        )
        .await
        .gql()?
        .into_iter()
        .map(Into::into)
        .collect())
    }

    /// Days (UTC) whose spend for a provider, model or endpoint is at least
    /// `minFactor` times its trailing mean and `minExcessUsd` above it.
    async fn anomalies(
        &self,
        ctx: &Context<'_>,
        filter: Option<UsageFilterInput>,
        #[graphql(default = 7)] baseline_days: i32,
        #[graphql(default_with = "Decimal::from(3)")] min_factor: Decimal,
        #[graphql(default_with = "Decimal::ONE")] min_excess_usd: Decimal,
    ) -> async_graphql::Result<Vec<AnomalyGql>> {
        let state = ctx.state()?;
        let filter = filter.unwrap_or_default().parse().gql()?;
        let min_excess = crate::domain::money::Usd::from_decimal(min_excess_usd.into())
            .filter(|u| u.nanos() >= 0)
            .ok_or_else(|| Error::invalid("minExcessUsd", "must be a non-negative amount"))
            .gql()?;
        let options = insights::AnomalyOptions {
            baseline_days: baseline_days.into(),
            min_factor: min_factor.into(),
            min_excess,
        };
        Ok(
            insights::anomalies(&state.db, ctx.principal(), filter, options)
                .await
                .gql()?
                .into_iter()
                .map(|a| AnomalyGql {
                    subject: match a.subject {
                        insights::Subject::Provider => SubjectGql::Provider,
                        insights::Subject::Model => SubjectGql::Model,
                        insights::Subject::Endpoint => SubjectGql::Endpoint,
                    },
                    value: a.value,
                    day: a.day.to_string(),
                    spend_usd: a.spend.to_decimal().into(),
                    baseline_usd: a.baseline.to_decimal().into(),
                    factor: a.factor.into(),
                    drivers: a
                        .drivers
                        .into_iter()
                        .map(|(name, cost)| DriverGql {
                            name,
                            cost_usd: cost.to_decimal().into(),
                        })
                        .collect(),
                })
                .collect(),
        )
    }
}
