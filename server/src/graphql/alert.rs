//! Alerts over GraphQL: listing, acknowledging, delivery history.

use super::context::ContextExt;
use super::error::{GqlResult, under_argument};
use super::scalars::Decimal;
use super::scalars::Timestamp;
use crate::domain::Error;
use crate::domain::alert::{
    self, Alert, AlertFilter, AlertKind, DeliveryAttempt, DeliveryStatus, RawAlertFilter,
};
use crate::domain::ids::AlertId;
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};

/// What raised an alert.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "AlertKind", remote = "AlertKind")]
pub enum AlertKindGql {
    /// A budget threshold was reached.
    Budget,
    /// Spend looked anomalous.
    Anomaly,
}

/// Where an alert's webhook delivery stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "DeliveryStatus", remote = "DeliveryStatus")]
pub enum DeliveryStatusGql {
    /// No webhook configured.
    None,
    /// Queued or being retried.
    Pending,
    /// The webhook answered 2xx.
    Delivered,
    /// Every attempt failed, or the destination was refused.
    Failed,
    /// The budget or its webhook was removed before delivery.
    Skipped,
}

/// One attempt to deliver an alert's webhook.
#[derive(SimpleObject)]
#[graphql(name = "AlertDelivery")]
pub struct AlertDeliveryGql {
    /// 1 for the first attempt.
    pub attempt: i64,
    /// When it started.
    pub started_at: Timestamp,
    /// How long it took, in milliseconds.
    pub duration_ms: i64,
    /// The HTTP status, when an answer came.
    pub status_code: Option<i64>,
    /// What went wrong.
    pub error: Option<String>,
    /// Whether it was delivered.
    pub succeeded: bool,
    /// The destination: `webhook` (the budget's own) or `channel:<id>` (a notification
    /// channel).
    pub target: String,
}

impl From<DeliveryAttempt> for AlertDeliveryGql {
    fn from(d: DeliveryAttempt) -> Self {
        AlertDeliveryGql {
            attempt: i64::from(d.attempt),
            started_at: d.started_at.into(),
            duration_ms: d.duration_ms,
            status_code: d.status_code.map(i64::from),
            error: d.error,
            succeeded: d.succeeded,
            target: d.target,
        }
    }
}

/// A fired alert.
pub struct AlertGql(pub Alert);

#[Object(name = "Alert")]
impl AlertGql {
    /// Id (also the webhook's `X-Aispend-Delivery`).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// What raised it.
    async fn kind(&self) -> AlertKindGql {
        self.0.kind.into()
    }
    /// The budget (null once the budget was deleted).
    async fn budget_id(&self) -> Option<ID> {
        self.0.budget.map(|b| ID(b.to_string()))
    }
    /// The budget's name when the alert fired (ANOMALY: the anomaly watch's name).
    async fn budget_name(&self) -> &str {
        &self.0.budget_name
    }
    /// The budget's project, when it budgets exactly one (ANOMALY: the watch's project;
    /// null for a watch of every project).
    async fn project_id(&self) -> Option<ID> {
        self.0.owner_project.map(|p| ID(p.to_string()))
    }
    /// Start of the period it fired in (null for TOTAL budgets; ANOMALY: the UTC day).
    async fn period_start(&self) -> Option<Timestamp> {
        self.0.period.start.map(Into::into)
    }
    /// End of that period (null for TOTAL budgets).
    async fn period_end(&self) -> Option<Timestamp> {
        self.0.period.end.map(Into::into)
    }
    /// The percentage reached (ANOMALY: the day's spend in percent of its trailing mean).
    async fn threshold(&self) -> i64 {
        i64::from(self.0.threshold)
    }
    /// Spent in the period when it fired (ANOMALY: that day).
    async fn spent_usd(&self) -> Decimal {
        self.0.spent.to_decimal().into()
    }
    /// The budget's amount when it fired (ANOMALY: the trailing daily mean).
    async fn amount_usd(&self) -> Decimal {
        self.0.amount.to_decimal().into()
    }
    /// Plain-text summary.
    async fn summary(&self) -> &str {
        &self.0.summary
    }
    /// When it fired.
    async fn fired_at(&self) -> Timestamp {
        self.0.fired_at.into()
    }
    /// Whether someone acknowledged it.
    async fn acknowledged(&self) -> bool {
        self.0.acknowledged_at.is_some()
    }
    /// When it was acknowledged.
    async fn acknowledged_at(&self) -> Option<Timestamp> {
        self.0.acknowledged_at.map(Into::into)
    }
    /// Webhook delivery state.
    async fn delivery_status(&self) -> DeliveryStatusGql {
        self.0.delivery_status.into()
    }
    /// When the webhook was delivered.
    async fn delivered_at(&self) -> Option<Timestamp> {
        self.0.delivered_at.map(Into::into)
    }
    /// Every delivery attempt, first first.
    async fn deliveries(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<AlertDeliveryGql>> {
        let state = ctx.state()?;
        Ok(alert::deliveries(&state.db, self.0.id)
            .await
            .gql()?
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

/// Which alerts to list or follow. Absent or empty lists mean "any".
#[derive(InputObject, Default, Clone)]
#[graphql(name = "AlertFilter")]
pub struct AlertFilterInput {
    /// Budgets.
    pub budgets: Option<Vec<ID>>,
    /// Projects (of single-project budgets).
    pub projects: Option<Vec<ID>>,
    /// Kinds.
    pub kinds: Option<Vec<AlertKindGql>>,
    /// Only acknowledged (true) or unacknowledged (false) alerts.
    pub acknowledged: Option<bool>,
    /// Delivery states.
    pub delivery_status: Option<Vec<DeliveryStatusGql>>,
    /// Fired at or after.
    pub from: Option<Timestamp>,
    /// Fired before.
    pub to: Option<Timestamp>,
}

impl AlertFilterInput {
    /// Parses into the domain filter; errors name the `filter` argument.
    pub fn parse(self) -> Result<AlertFilter, Error> {
        RawAlertFilter {
            budgets: self.budgets.map(|v| v.into_iter().map(|id| id.0).collect()),
            projects: self
                .projects
                .map(|v| v.into_iter().map(|id| id.0).collect()),
            kinds: self.kinds.map(|v| v.into_iter().map(Into::into).collect()),
            acknowledged: self.acknowledged,
            delivery: self
                .delivery_status
                .map(|v| v.into_iter().map(Into::into).collect()),
            from: self.from.map(Into::into),
            to: self.to.map(Into::into),
        }
        .parse()
        .map_err(|e| under_argument(e, "filter"))
    }
}

fn alert_id(id: &ID) -> Result<AlertId, Error> {
    id.parse()
        .map_err(|_| Error::invalid("id", "is not an alert id"))
}

/// Alert queries.
#[derive(Default)]
pub struct AlertQuery;

#[Object]
impl AlertQuery {
    /// Alerts the caller may see, newest first (at most 1,000).
    async fn alerts(
        &self,
        ctx: &Context<'_>,
        filter: Option<AlertFilterInput>,
        #[graphql(default = 100)] first: i64,
    ) -> async_graphql::Result<Vec<AlertGql>> {
        let state = ctx.state()?;
        let filter = filter.unwrap_or_default().parse().gql()?;
        Ok(alert::list(&state.db, ctx.principal(), filter, first)
            .await
            .gql()?
            .into_iter()
            .map(AlertGql)
            .collect())
    }

    /// One alert.
    async fn alert(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<AlertGql> {
        let state = ctx.state()?;
        let id = alert_id(&id).gql()?;
        alert::get(&state.db, ctx.principal(), id)
            .await
            .gql()
            .map(AlertGql)
    }
}

/// Alert mutations.
#[derive(Default)]
pub struct AlertMutation;

#[Object]
impl AlertMutation {
    /// Marks an alert as seen (ADMIN); acknowledging again keeps the first time.
    async fn acknowledge_alert(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<AlertGql> {
        let state = ctx.state()?;
        let id = alert_id(&id).gql()?;
        alert::acknowledge(&state.db, ctx.principal(), id)
            .await
            .gql()
            .map(AlertGql)
    }
}
