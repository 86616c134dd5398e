//! Budgets over GraphQL: definitions, status, and the spend check.

use super::context::ContextExt;
use super::error::GqlResult;
use super::scalars::Decimal;
use super::scalars::Timestamp;
use super::usage::RecordUsagePayload;
use crate::domain::Error;
use crate::domain::auth::Scope;
use crate::domain::budget::{
    Budget, BudgetCheck, BudgetVerdict, Change, Decision, Period, RawBudget, RawScope, RawSlice,
    percent,
};
use crate::domain::ids::BudgetId;
use crate::domain::money::Usd;
use crate::domain::time;
use crate::domain::usage::UsageEvent;
use async_graphql::{
    ComplexObject, Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject,
};

/// How long a budget's period is.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "BudgetPeriod", remote = "Period")]
pub enum PeriodGql {
    /// Local days in the budget's time zone.
    Daily,
    /// Weeks starting Monday.
    Weekly,
    /// Calendar months.
    Monthly,
    /// Calendar quarters.
    Quarterly,
    /// One period for all time.
    Total,
}

/// What a budget says about spending more.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "BudgetDecision", remote = "Decision")]
pub enum DecisionGql {
    /// Within the budget.
    Allow,
    /// A threshold is (or would be) reached.
    Warn,
    /// An enforced budget is exhausted or would go over. Advisory: aispend never
    /// refuses to record usage.
    Block,
}

/// Which usage a budget counts. Absent or empty lists mean "any"; a token bound to a
/// project always budgets its own project.
#[derive(InputObject, Default, Clone)]
pub struct BudgetScopeInput {
    /// Projects.
    pub projects: Option<Vec<ID>>,
    /// Providers.
    pub providers: Option<Vec<String>>,
    /// Models, exactly as recorded.
    pub models: Option<Vec<String>>,
    /// Endpoints (application features).
    pub endpoints: Option<Vec<String>>,
    /// End-user tags.
    pub users: Option<Vec<String>>,
}

impl From<BudgetScopeInput> for RawScope {
    fn from(s: BudgetScopeInput) -> Self {
        RawScope {
            projects: s.projects.map(|v| v.into_iter().map(|id| id.0).collect()),
            providers: s.providers,
            models: s.models,
            endpoints: s.endpoints,
            users: s.users,
        }
    }
}

/// A new budget.
#[derive(InputObject)]
pub struct CreateBudgetInput {
    /// Name.
    pub name: String,
    /// What it counts (default: everything the caller may see).
    pub scope: Option<BudgetScopeInput>,
    /// The limit per period, in USD.
    pub amount_usd: Decimal,
    /// The period.
    pub period: PeriodGql,
    /// IANA time zone of its periods (default `UTC`).
    pub timezone: Option<String>,
    /// Percentages of the amount that raise an alert (default 50, 80, 100).
    pub thresholds: Option<Vec<i64>>,
    /// Whether `checkBudget` answers `BLOCK` when it would go over (default false).
    pub enforce: Option<bool>,
    /// Where alerts are posted (https; http only for hosts the operator allows).
    pub webhook_url: Option<String>,
    /// The HMAC key of `X-Aispend-Signature` (16 to 256 characters); required with
    /// `webhookUrl`, never returned.
    pub webhook_secret: Option<String>,
    /// Notification channels its alerts also go to (see `createNotificationChannel`).
    pub channel_ids: Option<Vec<ID>>,
}

impl From<CreateBudgetInput> for RawBudget {
    fn from(i: CreateBudgetInput) -> Self {
        RawBudget {
            name: Some(i.name),
            scope: i.scope.map(Into::into),
            amount_usd: Some(i.amount_usd.into()),
            period: Some(i.period.into()),
            timezone: i.timezone,
            thresholds: i.thresholds,
            enforce: i.enforce,
            webhook_url: i.webhook_url.map(Change::Set).unwrap_or_default(),
            webhook_secret: i.webhook_secret.map(Change::Set).unwrap_or_default(),
            channel_ids: i
                .channel_ids
                .map(|v| v.into_iter().map(|id| id.0).collect()),
        }
    }
}

/// A change to a budget: absent fields keep their value; `null` removes the webhook.
#[derive(InputObject, Default)]
pub struct UpdateBudgetInput {
    /// Name.
    pub name: Option<String>,
    /// What it counts (replaces the scope; a change recounts the budget).
    pub scope: Option<BudgetScopeInput>,
    /// The limit per period, in USD.
    pub amount_usd: Option<Decimal>,
    /// The period (a change recounts the budget).
    pub period: Option<PeriodGql>,
    /// IANA time zone (a change recounts the budget).
    pub timezone: Option<String>,
    /// Threshold percentages.
    pub thresholds: Option<Vec<i64>>,
    /// Whether `checkBudget` blocks when over.
    pub enforce: Option<bool>,
    /// Webhook destination; `null` removes it.
    pub webhook_url: MaybeUndefined<String>,
    /// Webhook secret; `null` removes it.
    pub webhook_secret: MaybeUndefined<String>,
    /// Notification channels (replaces the list; `[]` removes every channel).
    pub channel_ids: Option<Vec<ID>>,
}

fn change<T>(m: MaybeUndefined<T>) -> Change<T> {
    match m {
        MaybeUndefined::Undefined => Change::Keep,
        MaybeUndefined::Null => Change::Clear,
        MaybeUndefined::Value(v) => Change::Set(v),
    }
}

impl From<UpdateBudgetInput> for RawBudget {
    fn from(i: UpdateBudgetInput) -> Self {
        RawBudget {
            name: i.name,
            scope: i.scope.map(Into::into),
            amount_usd: i.amount_usd.map(Into::into),
            period: i.period.map(Into::into),
            timezone: i.timezone,
            thresholds: i.thresholds,
            enforce: i.enforce,
            webhook_url: change(i.webhook_url),
            webhook_secret: change(i.webhook_secret),
            channel_ids: i
                .channel_ids
                .map(|v| v.into_iter().map(|id| id.0).collect()),
        }
    }
}

/// What a budget counts.
#[derive(SimpleObject)]
#[graphql(name = "BudgetScope")]
pub struct BudgetScopeGql {
    /// Projects (empty: any).
    pub projects: Vec<ID>,
    /// Providers (empty: any).
    pub providers: Vec<String>,
    /// Models (empty: any).
    pub models: Vec<String>,
    /// Endpoints (empty: any).
    pub endpoints: Vec<String>,
    /// End-user tags (empty: any).
    pub users: Vec<String>,
}

/// A budget's current period and spend.
#[derive(SimpleObject)]
#[graphql(name = "BudgetStatus")]
pub struct BudgetStatusGql {
    /// Start of the current period (null for TOTAL budgets).
    pub period_start: Option<Timestamp>,
    /// End of the current period, exclusive (null for TOTAL budgets).
    pub period_end: Option<Timestamp>,
    /// Spent in the period (exact).
    pub spent_usd: Decimal,
    /// What is left (never negative).
    pub remaining_usd: Decimal,
    /// Spent as a percentage of the amount (two decimals).
    pub percent_used: Decimal,
    /// Expected spend at the end of the period at the recent rate (the last quarter of
    /// the period, at least an hour); null for TOTAL budgets.
    pub forecast_usd: Option<Decimal>,
    /// Thresholds reached in this period.
    pub thresholds_reached: Vec<i64>,
}

/// A spending limit over a slice of usage.
pub struct BudgetGql(pub Budget);

#[Object(name = "Budget")]
impl BudgetGql {
    /// Id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// What it counts.
    async fn scope(&self) -> BudgetScopeGql {
        let s = &self.0.scope;
        BudgetScopeGql {
            projects: s.projects.iter().map(|p| ID(p.to_string())).collect(),
            providers: s.providers.iter().map(|p| p.as_str().to_owned()).collect(),
            models: s.models.clone(),
            endpoints: s.endpoints.clone(),
            users: s.users.clone(),
        }
    }
    /// The limit per period.
    async fn amount_usd(&self) -> Decimal {
        self.0.amount.to_decimal().into()
    }
    /// The period.
    async fn period(&self) -> PeriodGql {
        self.0.period.into()
    }
    /// The IANA time zone its periods follow.
    async fn timezone(&self) -> &str {
        self.0.timezone.name()
    }
    /// Percentages of the amount that raise an alert.
    async fn thresholds(&self) -> Vec<i64> {
        self.0.thresholds.iter().map(|t| i64::from(*t)).collect()
    }
    /// Whether `checkBudget` answers BLOCK when it would go over.
    async fn enforce(&self) -> bool {
        self.0.enforce
    }
    /// Where alerts are posted. Only a token with the ADMIN scope sees the whole URL;
    /// other readers see its scheme, host and port (`https://hooks.slack.com/…`),
    /// because such URLs often carry a secret in their path.
    async fn webhook_url(&self, ctx: &Context<'_>) -> Option<String> {
        let url = self.0.webhook_url.as_deref()?;
        Some(if ctx.principal().require(Scope::Admin).is_ok() {
            url.to_owned()
        } else {
            crate::domain::webhook::mask_url(url)
        })
    }
    /// Whether a webhook secret is stored (the secret is never returned).
    async fn webhook_secret_set(&self) -> bool {
        self.0.webhook_secret_set
    }
    /// Notification channels its alerts also go to.
    async fn channel_ids(&self) -> Vec<ID> {
        self.0
            .channel_ids
            .iter()
            .map(|c| ID(c.to_string()))
            .collect()
    }
    /// Creation time.
    async fn created_at(&self) -> Timestamp {
        self.0.created_at.into()
    }
    /// Last change.
    async fn updated_at(&self) -> Timestamp {
        self.0.updated_at.into()
    }
    /// The current period, spend, remainder and forecast.
    async fn status(&self, ctx: &Context<'_>) -> async_graphql::Result<BudgetStatusGql> {
        let state = ctx.state()?;
        let s = state
            .budgets
            .status(&state.db, &self.0, time::now())
            .await
            .gql()?;
        Ok(BudgetStatusGql {
            period_start: s.period.start.map(Into::into),
            period_end: s.period.end.map(Into::into),
            spent_usd: s.spent.to_decimal().into(),
            remaining_usd: s.remaining.to_decimal().into(),
            percent_used: s.percent_used.into(),
            forecast_usd: s.forecast.map(Usd::to_decimal).map(Into::into),
            thresholds_reached: s.reached.iter().map(|t| i64::from(*t)).collect(),
        })
    }
}

/// One budget's view of a call.
#[derive(SimpleObject)]
#[graphql(name = "BudgetVerdict")]
pub struct BudgetVerdictGql {
    /// The budget.
    pub budget_id: ID,
    /// Its name.
    pub name: String,
    /// This budget's decision.
    pub decision: DecisionGql,
    /// Whether it is enforced.
    pub enforce: bool,
    /// Its amount per period.
    pub amount_usd: Decimal,
    /// Spent in the current period.
    pub spent_usd: Decimal,
    /// Spent plus the estimate.
    pub projected_usd: Decimal,
    /// Spent as a percentage of the amount.
    pub percent_used: Decimal,
    /// Projected as a percentage of the amount.
    pub projected_percent: Decimal,
    /// Start of the current period (null for TOTAL).
    pub period_start: Option<Timestamp>,
    /// End of the current period (null for TOTAL).
    pub period_end: Option<Timestamp>,
}

impl From<BudgetVerdict> for BudgetVerdictGql {
    fn from(v: BudgetVerdict) -> Self {
        BudgetVerdictGql {
            budget_id: ID(v.budget.id.to_string()),
            name: v.budget.name.clone(),
            decision: v.decision.into(),
            enforce: v.budget.enforce,
            amount_usd: v.budget.amount.to_decimal().into(),
            spent_usd: v.spent.to_decimal().into(),
            projected_usd: v.projected.to_decimal().into(),
            percent_used: percent(v.spent, v.budget.amount).into(),
            projected_percent: percent(v.projected, v.budget.amount).into(),
            period_start: v.period.start.map(Into::into),
            period_end: v.period.end.map(Into::into),
        }
    }
}

/// The answer of every budget covering a call.
#[derive(SimpleObject)]
#[graphql(name = "BudgetCheck")]
pub struct BudgetCheckGql {
    /// The most severe decision of every covering budget: ALLOW when none covers the
    /// call. It also counts budgets the caller may not see (a global budget applies
    /// to a project's calls too).
    pub decision: DecisionGql,
    /// Each covering budget the caller may see (a project-bound token sees its own
    /// project's budgets only), with its numbers.
    pub budgets: Vec<BudgetVerdictGql>,
    /// How many covering budgets the caller may not see; they count in `decision`,
    /// but their names and numbers are not shown.
    pub hidden_budgets: i32,
}

impl From<BudgetCheck> for BudgetCheckGql {
    fn from(c: BudgetCheck) -> Self {
        BudgetCheckGql {
            decision: c.decision.into(),
            budgets: c.budgets.into_iter().map(Into::into).collect(),
            hidden_budgets: i32::try_from(c.hidden).unwrap_or(i32::MAX),
        }
    }
}

/// The status of the budgets some just-recorded events count toward (their current
/// period), for `recordUsage` results.
pub async fn touched(
    ctx: &Context<'_>,
    events: &[&UsageEvent],
) -> async_graphql::Result<BudgetCheckGql> {
    let state = ctx.state()?;
    let principal = ctx.principal();
    Ok(state
        .budgets
        .touched(&state.db, principal, events)
        .await
        .gql()?
        .into())
}

#[ComplexObject]
impl RecordUsagePayload {
    /// The budgets this event counts toward, after it was recorded (current period;
    /// `BLOCK` when an enforced budget is exhausted). Advisory: the event is recorded
    /// either way.
    async fn budget_check(&self, ctx: &Context<'_>) -> async_graphql::Result<BudgetCheckGql> {
        touched(ctx, &[&self.event.0]).await
    }
}

fn budget_id(id: &ID) -> Result<BudgetId, Error> {
    id.parse()
        .map_err(|_| Error::invalid("id", "is not a budget id"))
}

/// Budget queries.
#[derive(Default)]
pub struct BudgetQuery;

#[Object]
impl BudgetQuery {
    /// Every budget the caller may see, by name.
    async fn budgets(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<BudgetGql>> {
        let state = ctx.state()?;
        Ok(state
            .budgets
            .list(&state.db, ctx.principal())
            .await
            .gql()?
            .into_iter()
            .map(BudgetGql)
            .collect())
    }

    /// One budget.
    async fn budget(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<BudgetGql> {
        let state = ctx.state()?;
        let id = budget_id(&id).gql()?;
        state
            .budgets
            .find_visible(&state.db, ctx.principal(), id)
            .await
            .gql()
            .map(BudgetGql)
    }

    /// Asks before spending: ALLOW, WARN or BLOCK from every budget that covers this
    /// project, provider, model, endpoint (and user), with the estimate added. Needs
    /// INGEST or READ on the project. Advisory: recording usage is never refused.
    #[allow(clippy::too_many_arguments)]
    async fn check_budget(
        &self,
        ctx: &Context<'_>,
        project_id: Option<ID>,
        provider: String,
        model: String,
        endpoint: Option<String>,
        user: Option<String>,
        estimated_cost_usd: Option<Decimal>,
    ) -> async_graphql::Result<BudgetCheckGql> {
        let state = ctx.state()?;
        let principal = ctx.principal();
        let (slice, estimate) = RawSlice {
            project_id: project_id.map(|p| p.0),
            provider,
            model,
            endpoint,
            user,
            estimated_cost_usd: estimated_cost_usd.map(Into::into),
        }
        .parse(principal)
        .gql()?;
        Ok(state
            .budgets
            .check(&state.db, principal, &slice, estimate)
            .await
            .gql()?
            .into())
    }
}

/// Budget mutations.
#[derive(Default)]
pub struct BudgetMutation;

#[Object]
impl BudgetMutation {
    /// Creates a budget (ADMIN). Its current period is counted from the events already
    /// stored; thresholds already reached fire right away.
    async fn create_budget(
        &self,
        ctx: &Context<'_>,
        input: CreateBudgetInput,
    ) -> async_graphql::Result<BudgetGql> {
        let state = ctx.state()?;
        state
            .budgets
            .create(&state.db, ctx.principal(), input.into())
            .await
            .map_err(|e| super::error::under_argument(e, "input"))
            .gql()
            .map(BudgetGql)
    }

    /// Changes a budget (ADMIN). A new scope, period or time zone recounts it; alerts
    /// that fired stay fired.
    async fn update_budget(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateBudgetInput,
    ) -> async_graphql::Result<BudgetGql> {
        let state = ctx.state()?;
        let id = budget_id(&id).gql()?;
        state
            .budgets
            .update(&state.db, ctx.principal(), id, input.into())
            .await
            .map_err(|e| super::error::under_argument(e, "input"))
            .gql()
            .map(BudgetGql)
    }

    /// Deletes a budget (ADMIN); its alerts stay, detached. Returns the id.
    async fn delete_budget(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ID> {
        let state = ctx.state()?;
        let parsed = budget_id(&id).gql()?;
        state
            .budgets
            .delete(&state.db, ctx.principal(), parsed)
            .await
            .gql()?;
        Ok(id)
    }
}
