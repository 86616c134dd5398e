//! Reconciliation over GraphQL: tracked against reported, per provider, UTC day and
//! model.

use super::context::ContextExt;
use super::error::{GqlResult, under_argument};
use super::scalars::Decimal;
use super::scalars::Timestamp;
use crate::domain::Error;
use crate::domain::error::parse_each;
use crate::domain::money::{Usd, clamp_i64};
use crate::domain::provider::Provider;
use crate::domain::reconciliation::{
    self, ReconciliationFilter, ReconciliationRow, ReconciliationStatus, Side,
};
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::TimeDelta;

/// How tracked and reported numbers compare.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "ReconciliationStatus")]
pub enum ReconciliationStatusGql {
    /// Within the tolerance.
    Matched,
    /// Both present, outside the tolerance.
    Drift,
    /// The provider reported it; nothing was tracked.
    MissingTracked,
    /// Tracked; the provider has not reported it (yet).
    MissingReported,
}

/// One side of a comparison.
#[derive(SimpleObject)]
#[graphql(name = "ReconciliationSide")]
pub struct SideGql {
    /// Cost in USD (null when this side has no money for the row).
    pub cost_usd: Option<Decimal>,
    /// All tokens.
    pub tokens: i64,
    /// Input tokens, cache reads and writes included.
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Requests.
    pub requests: i64,
}

impl From<Side> for SideGql {
    fn from(s: Side) -> Self {
        SideGql {
            cost_usd: s.cost.map(Usd::to_decimal).map(Into::into),
            tokens: clamp_i64(s.tokens),
            input_tokens: clamp_i64(s.input_tokens),
            output_tokens: clamp_i64(s.output_tokens),
            requests: clamp_i64(s.requests),
        }
    }
}

/// One provider, UTC day and model.
#[derive(SimpleObject)]
#[graphql(name = "ReconciliationRow")]
pub struct ReconciliationRowGql {
    /// Provider.
    pub provider: String,
    /// The UTC day (`YYYY-MM-DD`).
    pub day: String,
    /// Model after normalisation (empty: reported without a model).
    pub model: String,
    /// From ingested events.
    pub tracked: SideGql,
    /// From provider reports (synced and manual).
    pub reported: SideGql,
    /// Reported cost minus tracked cost.
    pub delta_usd: Option<Decimal>,
    /// The delta as a percentage of the tracked cost.
    pub delta_pct: Option<Decimal>,
    /// The comparison.
    pub status: ReconciliationStatusGql,
}

impl From<ReconciliationRow> for ReconciliationRowGql {
    fn from(r: ReconciliationRow) -> Self {
        ReconciliationRowGql {
            provider: r.provider.to_string(),
            day: r.day.to_string(),
            model: r.model,
            tracked: r.tracked.into(),
            reported: r.reported.into(),
            delta_usd: r.delta.map(Into::into),
            delta_pct: r.delta_pct.map(Into::into),
            status: match r.status {
                ReconciliationStatus::Matched => ReconciliationStatusGql::Matched,
                ReconciliationStatus::Drift => ReconciliationStatusGql::Drift,
                ReconciliationStatus::MissingTracked => ReconciliationStatusGql::MissingTracked,
                ReconciliationStatus::MissingReported => ReconciliationStatusGql::MissingReported,
            },
        }
    }
}

/// What to reconcile: the UTC days from `from` up to (not including) `to`.
#[derive(InputObject)]
pub struct ReconciliationFilterInput {
    /// Providers (all when omitted).
    pub providers: Option<Vec<String>>,
    /// Projects (all readable when omitted).
    pub project_ids: Option<Vec<ID>>,
    /// Start; its UTC day is the first day.
    pub from: Timestamp,
    /// End (exclusive).
    pub to: Timestamp,
}

/// Reconciliation queries.
#[derive(Default)]
pub struct ReconciliationQuery;

#[Object]
impl ReconciliationQuery {
    /// Tracked against reported per provider, UTC day and model, with the delta and a
    /// status (tolerance in percent, default 5).
    async fn reconciliation(
        &self,
        ctx: &Context<'_>,
        filter: ReconciliationFilterInput,
        tolerance_pct: Option<Decimal>,
    ) -> async_graphql::Result<Vec<ReconciliationRowGql>> {
        let state = ctx.state()?;
        let mut errors = Vec::new();
        let providers = parse_each(
            filter.providers,
            "providers",
            "must be a provider name",
            Provider::parse,
            &mut errors,
        );
        let projects = parse_each(
            filter.project_ids,
            "projectIds",
            "is not a project id",
            |p| p.parse().ok(),
            &mut errors,
        );
        if !errors.is_empty() {
            return Err(under_argument(Error::InvalidInput(errors), "filter")).gql();
        }
        let from = filter.from.0;
        let to = filter.to.0;
        if from >= to {
            return Err(Error::InvalidDateRange("`from` must be before `to`".into())).gql();
        }
        let last = (to - TimeDelta::microseconds(1)).date_naive();
        let parsed = ReconciliationFilter::new(
            providers,
            projects,
            from.date_naive(),
            last,
            tolerance_pct.map(Into::into),
        )
        .gql()?;
        Ok(
            reconciliation::reconcile(&state.db, ctx.principal(), &parsed)
                .await
                .gql()?
                .into_iter()
                .map(Into::into)
                .collect(),
        )
    }
}
