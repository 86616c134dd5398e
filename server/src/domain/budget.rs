//! Budgets: a spending limit over any slice of tracked usage (projects, providers,
//! models, endpoints, end users), per day, week, month, quarter or in total, in the
//! budget's own time zone, with thresholds that raise alerts.
//!
//! Spend is exact and cheap to read: each budget period has a counter in
//! `budget_periods`, kept by [`counter::BudgetHook`] inside the transaction that
//! inserts or re-prices the events it counts (see `counter.rs` for why that is exact
//! under concurrency and with several processes). Creating or changing a budget seeds
//! the current period's counter with an exact SQL sum, so a budget starts right.
//!
//! Enforcement is advisory: `checkBudget` answers `BLOCK` when an `enforce` budget
//! would go over, so an application can decide not to make the call, but ingest always
//! records what really happened — usage is never refused because of a budget.

pub mod counter;
pub mod secret;

use crate::domain::alert::{self, NewAlert};
use crate::domain::analytics;
use crate::domain::auth::{Principal, Scope};
use crate::domain::calendar::{self, Granularity};
use crate::domain::egress::OperatorAllowList;
use crate::domain::error::{Context, Error, FieldError, Result};
use crate::domain::ids::{BudgetId, ChannelId, ProjectId};
use crate::domain::keyring::Keyring;
use crate::domain::money::Usd;
use crate::domain::provider::Provider;
use crate::domain::usage::UsageEvent;
use crate::domain::usage::query::UsageFilter;
use crate::domain::webhook::{MAX_SECRET_LEN, MIN_SECRET_LEN, WebhookUrl};
use crate::domain::{project, time};
use crate::entity::{budget, budget_period};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use rust_decimal::{Decimal, RoundingStrategy};
use sea_orm::sea_query::Condition;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::Notify;

/// How long a budget's period is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    /// Local days.
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

crate::domain::price::text_enum!(Period {
    Daily => "DAILY", Weekly => "WEEKLY", Monthly => "MONTHLY", Quarterly => "QUARTERLY", Total => "TOTAL"
});

/// The stored period key of `TOTAL` budgets (their only period has no start).
pub const TOTAL_PERIOD_KEY: i64 = 0;

/// The bounds of one budget period; both `None` for `TOTAL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeriodBounds {
    /// Start (inclusive).
    pub start: Option<DateTime<Utc>>,
    /// End (exclusive).
    pub end: Option<DateTime<Utc>>,
}

impl PeriodBounds {
    /// The key the period is stored under (`budget_periods.period_start`,
    /// `alerts.period_start`).
    pub fn key(&self) -> i64 {
        self.start.map(time::to_micros).unwrap_or(TOTAL_PERIOD_KEY)
    }

    /// Whether `t` falls inside.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start.is_none_or(|s| t >= s) && self.end.is_none_or(|e| t < e)
    }
}

impl Period {
    fn granularity(self) -> Option<Granularity> {
        match self {
            Period::Daily => Some(Granularity::Day),
            Period::Weekly => Some(Granularity::Week),
            Period::Monthly => Some(Granularity::Month),
            Period::Quarterly => Some(Granularity::Quarter),
            Period::Total => None,
        }
    }

    /// The period containing `t` in zone `tz` (DST-correct; see `calendar.rs`).
    pub fn bounds(self, t: DateTime<Utc>, tz: &Tz) -> PeriodBounds {
        match self.granularity() {
            None => PeriodBounds {
                start: None,
                end: None,
            },
            Some(g) => {
                let start = calendar::bucket_start(t, g, tz);
                PeriodBounds {
                    start: Some(start),
                    end: Some(calendar::next_bucket(start, g, tz)),
                }
            }
        }
    }

    /// Lower-case words for summaries.
    fn noun(self) -> &'static str {
        match self {
            Period::Daily => "daily",
            Period::Weekly => "weekly",
            Period::Monthly => "monthly",
            Period::Quarterly => "quarterly",
            Period::Total => "total",
        }
    }
}

/// Which usage a budget counts. Empty lists mean "any".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BudgetScope {
    /// Projects.
    pub projects: Vec<ProjectId>,
    /// Providers.
    pub providers: Vec<Provider>,
    /// Model ids, exactly as recorded.
    pub models: Vec<String>,
    /// Endpoints (application features).
    pub endpoints: Vec<String>,
    /// End-user tags.
    pub users: Vec<String>,
}

impl BudgetScope {
    /// The scope as a usage filter (for SQL sums and in-memory matching).
    pub fn filter(&self) -> UsageFilter {
        UsageFilter {
            projects: self.projects.clone(),
            providers: self.providers.clone(),
            models: self.models.clone(),
            endpoints: self.endpoints.clone(),
            users: self.users.clone(),
            ..Default::default()
        }
    }

    /// Whether a call about to be made falls inside the scope.
    pub fn covers(&self, slice: &Slice) -> bool {
        fn any_or<T: PartialEq>(list: &[T], v: &T) -> bool {
            list.is_empty() || list.contains(v)
        }
        fn any_or_opt(list: &[String], v: Option<&String>) -> bool {
            list.is_empty() || v.is_some_and(|v| list.contains(v))
        }
        any_or(&self.projects, &slice.project)
            && any_or(&self.providers, &slice.provider)
            && any_or(&self.models, &slice.model)
            && any_or_opt(&self.endpoints, slice.endpoint.as_ref())
            && any_or_opt(&self.users, slice.user.as_ref())
    }
}

/// The stored form of a scope (JSON in `budgets.scope`).
#[derive(Debug, Default, Serialize, Deserialize)]
struct StoredScope {
    #[serde(default)]
    projects: Vec<String>,
    #[serde(default)]
    providers: Vec<String>,
    #[serde(default)]
    models: Vec<String>,
    #[serde(default)]
    endpoints: Vec<String>,
    #[serde(default)]
    users: Vec<String>,
}

impl From<&BudgetScope> for StoredScope {
    fn from(s: &BudgetScope) -> Self {
        StoredScope {
            projects: s.projects.iter().map(ToString::to_string).collect(),
            providers: s.providers.iter().map(|p| p.as_str().to_owned()).collect(),
            models: s.models.clone(),
            endpoints: s.endpoints.clone(),
            users: s.users.clone(),
        }
    }
}

/// A stored budget.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// Id.
    pub id: BudgetId,
    /// Name.
    pub name: String,
    /// What it counts.
    pub scope: BudgetScope,
    /// The limit per period.
    pub amount: Usd,
    /// The period.
    pub period: Period,
    /// The zone its periods follow.
    pub timezone: Tz,
    /// Percentages of `amount` that raise an alert, ascending.
    pub thresholds: Vec<u32>,
    /// Whether `checkBudget` answers `BLOCK` when the budget would go over.
    pub enforce: bool,
    /// Where alerts are posted.
    pub webhook_url: Option<String>,
    /// Whether a webhook secret is stored (the secret itself is never returned).
    pub webhook_secret_set: bool,
    /// Notification channels its alerts also go to.
    pub channel_ids: Vec<ChannelId>,
    /// The project a project-bound token must have to see it (set when the scope
    /// names exactly one project).
    pub owner_project: Option<ProjectId>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    filter: UsageFilter,
}

fn corrupt(what: &str, e: impl fmt::Display) -> Error {
    Error::internal("decoding a stored budget", anyhow::anyhow!("{what}: {e}"))
}

impl TryFrom<budget::Model> for Budget {
    type Error = Error;
    fn try_from(m: budget::Model) -> Result<Self> {
        let stored: StoredScope =
            serde_json::from_str(&m.scope).map_err(|e| corrupt("scope", e))?;
        let scope = BudgetScope {
            projects: stored
                .projects
                .iter()
                .map(|p| p.parse().map_err(|e| corrupt("scope project", e)))
                .collect::<Result<_>>()?,
            providers: stored
                .providers
                .iter()
                .map(|p| Provider::parse(p).ok_or_else(|| corrupt("scope provider", p)))
                .collect::<Result<_>>()?,
            models: stored.models,
            endpoints: stored.endpoints,
            users: stored.users,
        };
        let thresholds = m
            .thresholds
            .split(',')
            .filter(|t| !t.is_empty())
            .map(|t| t.parse::<u32>().map_err(|e| corrupt("thresholds", e)))
            .collect::<Result<_>>()?;
        Ok(Budget {
            id: BudgetId(m.id),
            name: m.name,
            filter: scope.filter(),
            scope,
            amount: Usd::from_nanos(m.amount_nanos),
            period: m.period.parse().map_err(|e| corrupt("period", e))?,
            timezone: calendar::parse_tz(&m.timezone).map_err(|e| corrupt("timezone", e))?,
            thresholds,
            enforce: m.enforce,
            webhook_url: m.webhook_url,
            webhook_secret_set: m.webhook_secret.is_some(),
            channel_ids: m
                .channel_ids
                .split(',')
                .filter(|c| !c.is_empty())
                .map(|c| c.parse().map_err(|e| corrupt("channel ids", e)))
                .collect::<Result<_>>()?,
            owner_project: m.owner_project_id.map(ProjectId),
            created_at: time::from_micros(m.created_at),
            updated_at: time::from_micros(m.updated_at),
        })
    }
}

impl Budget {
    /// The scope as a usage filter.
    pub fn filter(&self) -> &UsageFilter {
        &self.filter
    }

    /// Whether the budget counts this event.
    pub fn counts(&self, event: &UsageEvent) -> bool {
        self.filter.matches(event)
    }

    /// The period containing `t`.
    pub fn period_at(&self, t: DateTime<Utc>) -> PeriodBounds {
        self.period.bounds(t, &self.timezone)
    }

    /// The thresholds `spent` has reached (`spent >= t% of amount`), exactly.
    pub fn reached(&self, spent: Usd) -> Vec<u32> {
        self.thresholds
            .iter()
            .copied()
            .filter(|t| reaches(spent, self.amount, *t))
            .collect()
    }

    /// The thresholds a move from `before` to `after` crossed upwards.
    pub fn crossed(&self, before: Usd, after: Usd) -> Vec<u32> {
        self.thresholds
            .iter()
            .copied()
            .filter(|t| !reaches(before, self.amount, *t) && reaches(after, self.amount, *t))
            .collect()
    }

    /// The decision for spending `estimate` more on top of `spent`: `BLOCK` when an
    /// enforced budget is exhausted or would go over, `WARN` when the result reaches
    /// any threshold, `ALLOW` otherwise.
    pub fn decide(&self, spent: Usd, estimate: Usd) -> Decision {
        let projected = spent.saturating_add(estimate);
        if self.enforce && (projected > self.amount || spent >= self.amount) {
            Decision::Block
        } else if !self.reached(projected).is_empty() {
            Decision::Warn
        } else {
            Decision::Allow
        }
    }

    /// The human summary of an alert (plain text, no links: it lands in chat tools
    /// and mail where a link from an alert is a phishing vector).
    pub fn alert_summary(&self, threshold: u32, spent: Usd, period: &PeriodBounds) -> String {
        let money = |u: Usd| {
            u.to_decimal()
                .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
        };
        let when = match (period.start, period.end) {
            (Some(s), Some(e)) => format!(
                " in the period {} to {} ({})",
                s.with_timezone(&self.timezone).format("%Y-%m-%d %H:%M"),
                e.with_timezone(&self.timezone).format("%Y-%m-%d %H:%M"),
                self.timezone.name()
            ),
            _ => String::new(),
        };
        format!(
            "Budget \"{}\" reached {}% of its {} limit: ${:.2} of ${:.2} spent{}.",
            self.name,
            threshold,
            self.period.noun(),
            money(spent),
            money(self.amount),
            when
        )
    }
}

/// `spent >= threshold% of amount`, in exact integer arithmetic.
fn reaches(spent: Usd, amount: Usd, threshold: u32) -> bool {
    spent.nanos().saturating_mul(100) >= amount.nanos().saturating_mul(i128::from(threshold))
}

/// `spent / amount` as a percentage with two decimals.
pub fn percent(spent: Usd, amount: Usd) -> Decimal {
    if amount.nanos() == 0 {
        return Decimal::ZERO;
    }
    spent
        .to_decimal()
        .checked_mul(Decimal::from(100))
        .and_then(|s| s.checked_div(amount.to_decimal()))
        .unwrap_or(Decimal::MAX)
        .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
        .normalize()
}

/// A change to an optional field: keep it, clear it, or set it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Change<T> {
    /// Leave as is (the field was absent).
    #[default]
    Keep,
    /// Remove (the field was `null`).
    Clear,
    /// Replace.
    Set(T),
}

/// A scope as a client sent it.
#[derive(Debug, Clone, Default)]
pub struct RawScope {
    /// Project ids.
    pub projects: Option<Vec<String>>,
    /// Provider names.
    pub providers: Option<Vec<String>>,
    /// Model ids.
    pub models: Option<Vec<String>>,
    /// Endpoints.
    pub endpoints: Option<Vec<String>>,
    /// End-user tags.
    pub users: Option<Vec<String>>,
}

/// A budget as a client sent it (for create, or as a patch for update).
#[derive(Debug, Clone, Default)]
pub struct RawBudget {
    /// Name.
    pub name: Option<String>,
    /// Scope (absent: everything the caller may see).
    pub scope: Option<RawScope>,
    /// Limit per period, in USD.
    pub amount_usd: Option<Decimal>,
    /// Period.
    pub period: Option<Period>,
    /// IANA zone (default `UTC`).
    pub timezone: Option<String>,
    /// Threshold percentages (default 50, 80, 100).
    pub thresholds: Option<Vec<i64>>,
    /// Whether `checkBudget` blocks when over.
    pub enforce: Option<bool>,
    /// Webhook destination.
    pub webhook_url: Change<String>,
    /// Webhook signing secret.
    pub webhook_secret: Change<String>,
    /// Notification channel ids (absent: keep; empty: none).
    pub channel_ids: Option<Vec<String>>,
}

/// Thresholds used when none are given.
pub const DEFAULT_THRESHOLDS: [u32; 3] = [50, 80, 100];
/// Most thresholds per budget.
pub const MAX_THRESHOLDS: usize = 10;
/// Highest threshold percentage.
pub const MAX_THRESHOLD: u32 = 1000;
/// Longest budget name.
pub const MAX_NAME_LEN: usize = 100;
/// Most entries in one scope list.
pub const MAX_SCOPE_ENTRIES: usize = 100;

/// A fully validated budget definition, ready to store.
#[derive(Debug, Clone)]
pub struct BudgetSpec {
    name: String,
    scope: BudgetScope,
    amount: Usd,
    period: Period,
    timezone: Tz,
    thresholds: Vec<u32>,
    enforce: bool,
    webhook_url: Option<WebhookUrl>,
    /// A new plaintext secret to seal, `Clear`, or `Keep` the stored one.
    webhook_secret: Change<String>,
    /// New channel ids, checked against the database (`None`: keep).
    channel_ids: Option<Vec<ChannelId>>,
}

fn parse_list<T>(
    values: Option<Vec<String>>,
    field: &str,
    errors: &mut Vec<FieldError>,
    parse: impl Fn(&str) -> Option<T>,
    what: &str,
) -> Vec<T> {
    let values = values.unwrap_or_default();
    if values.len() > MAX_SCOPE_ENTRIES {
        errors.push(FieldError::new(
            field,
            format!("at most {MAX_SCOPE_ENTRIES} entries"),
        ));
        return vec![];
    }
    let mut out = vec![];
    for (i, v) in values.iter().enumerate() {
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        match parse(v) {
            Some(p) => out.push(p),
            None => errors.push(FieldError::new(
                format!("{field}.{i}"),
                format!("is not {what}"),
            )),
        }
    }
    out
}

fn text_list(
    values: Option<Vec<String>>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Vec<String> {
    parse_list(
        values,
        field,
        errors,
        |v| {
            (v.chars().count() <= 200
                && crate::domain::text::problem(v, crate::domain::text::TextKind::Identifier)
                    .is_none())
            .then(|| v.to_owned())
        },
        "a value of at most 200 characters without control characters",
    )
}

impl RawScope {
    fn parse(self, errors: &mut Vec<FieldError>) -> BudgetScope {
        let mut scope = BudgetScope {
            projects: parse_list(
                self.projects,
                "scope.projects",
                errors,
                |v| v.parse().ok(),
                "a project id",
            ),
            providers: parse_list(
                self.providers,
                "scope.providers",
                errors,
                Provider::parse,
                "a provider name",
            ),
            models: text_list(self.models, "scope.models", errors),
            endpoints: text_list(self.endpoints, "scope.endpoints", errors),
            users: text_list(self.users, "scope.users", errors),
        };
        scope.projects.sort();
        scope.projects.dedup();
        scope.providers.sort();
        scope.providers.dedup();
        scope
    }
}

impl RawBudget {
    /// Validates a new budget; every problem is reported at once.
    pub fn parse_new(self, allow: &OperatorAllowList) -> Result<BudgetSpec> {
        self.merge(None, allow)
    }

    /// Validates a change to `current`: absent fields keep their value.
    pub fn parse_update(self, current: &Budget, allow: &OperatorAllowList) -> Result<BudgetSpec> {
        self.merge(Some(current), allow)
    }

    fn merge(self, current: Option<&Budget>, allow: &OperatorAllowList) -> Result<BudgetSpec> {
        let mut errors = vec![];
        let name = crate::domain::text::merged_name(
            self.name,
            current.map(|c| c.name.as_str()),
            MAX_NAME_LEN,
            &mut errors,
        );
        let scope = match (self.scope, current) {
            (Some(s), _) => s.parse(&mut errors),
            (None, Some(c)) => c.scope.clone(),
            (None, None) => BudgetScope::default(),
        };
        let amount = match (self.amount_usd, current) {
            (Some(a), _) => match Usd::from_decimal(a) {
                Some(u) if u.nanos() > 0 => u,
                _ => {
                    errors.push(FieldError::new(
                        "amountUsd",
                        "must be a positive amount of at most 9,000,000,000",
                    ));
                    Usd::ZERO
                }
            },
            (None, Some(c)) => c.amount,
            (None, None) => {
                errors.push(FieldError::new("amountUsd", "is required"));
                Usd::ZERO
            }
        };
        let period = match (self.period, current) {
            (Some(p), _) => p,
            (None, Some(c)) => c.period,
            (None, None) => {
                errors.push(FieldError::new("period", "is required"));
                Period::Monthly
            }
        };
        let timezone = match (self.timezone, current) {
            (Some(tz), _) => calendar::parse_tz(&tz).unwrap_or_else(|e| {
                errors.push(FieldError::new("timezone", e));
                Tz::UTC
            }),
            (None, Some(c)) => c.timezone,
            (None, None) => Tz::UTC,
        };
        let thresholds = match (self.thresholds, current) {
            (Some(list), _) => {
                let mut out = vec![];
                if list.is_empty() || list.len() > MAX_THRESHOLDS {
                    errors.push(FieldError::new(
                        "thresholds",
                        format!("give 1 to {MAX_THRESHOLDS} percentages"),
                    ));
                }
                for (i, t) in list.iter().enumerate() {
                    match u32::try_from(*t) {
                        Ok(t) if (1..=MAX_THRESHOLD).contains(&t) => out.push(t),
                        _ => errors.push(FieldError::new(
                            format!("thresholds.{i}"),
                            format!("must be a percentage between 1 and {MAX_THRESHOLD}"),
                        )),
                    }
                }
                out.sort_unstable();
                out.dedup();
                out
            }
            (None, Some(c)) => c.thresholds.clone(),
            (None, None) => DEFAULT_THRESHOLDS.to_vec(),
        };
        let enforce = self.enforce.or(current.map(|c| c.enforce)).unwrap_or(false);
        let webhook_url = match (self.webhook_url, current) {
            (Change::Set(u), _) => match WebhookUrl::parse(&u, allow) {
                Ok(u) => Some(u),
                Err(message) => {
                    errors.push(FieldError::new("webhookUrl", message));
                    None
                }
            },
            (Change::Clear, _) => None,
            (Change::Keep, Some(c)) => c
                .webhook_url
                .as_deref()
                .and_then(|u| WebhookUrl::parse(u, allow).ok()),
            (Change::Keep, None) => None,
        };
        let webhook_secret = match self.webhook_secret {
            Change::Set(s) => {
                let len = s.chars().count();
                if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&len) {
                    errors.push(FieldError::new(
                        "webhookSecret",
                        format!("must be {MIN_SECRET_LEN} to {MAX_SECRET_LEN} characters"),
                    ));
                }
                Change::Set(s)
            }
            other => other,
        };
        let secret_after = match &webhook_secret {
            Change::Set(_) => true,
            Change::Clear => false,
            Change::Keep => current.is_some_and(|c| c.webhook_secret_set),
        };
        if webhook_url.is_some() && !secret_after {
            errors.push(FieldError::new(
                "webhookSecret",
                "is required with webhookUrl: every delivery is signed with it",
            ));
        }
        if !errors.is_empty() {
            return Err(Error::InvalidInput(errors));
        }
        Ok(BudgetSpec {
            name,
            scope,
            amount,
            period,
            timezone,
            thresholds,
            enforce,
            webhook_url,
            webhook_secret,
            channel_ids: None,
        })
    }
}

/// A call an application is about to make.
#[derive(Debug, Clone, PartialEq)]
pub struct Slice {
    /// Project.
    pub project: ProjectId,
    /// Provider.
    pub provider: Provider,
    /// Model id.
    pub model: String,
    /// Endpoint.
    pub endpoint: Option<String>,
    /// End-user tag.
    pub user: Option<String>,
}

/// A slice as a client sent it.
#[derive(Debug, Clone, Default)]
pub struct RawSlice {
    /// Project id (default: the caller's project).
    pub project_id: Option<String>,
    /// Provider.
    pub provider: String,
    /// Model.
    pub model: String,
    /// Endpoint.
    pub endpoint: Option<String>,
    /// End-user tag.
    pub user: Option<String>,
    /// What the call is expected to cost.
    pub estimated_cost_usd: Option<Decimal>,
}

impl RawSlice {
    /// Validates the slice and the estimate (default zero).
    pub fn parse(self, principal: &Principal) -> Result<(Slice, Usd)> {
        let mut errors = vec![];
        let project = match self.project_id.as_deref().map(str::trim) {
            Some(p) if !p.is_empty() => p.parse().ok().or_else(|| {
                errors.push(FieldError::new("projectId", "is not a project id"));
                None
            }),
            _ => principal.project().or_else(|| {
                errors.push(FieldError::new("projectId", "is required"));
                None
            }),
        };
        let provider = Provider::parse(&self.provider).or_else(|| {
            errors.push(FieldError::new("provider", "is not a provider name"));
            None
        });
        let model = self.model.trim().to_owned();
        if model.is_empty() {
            errors.push(FieldError::new("model", "is required"));
        }
        let estimate = match self.estimated_cost_usd {
            None => Usd::ZERO,
            Some(d) => match Usd::from_decimal(d) {
                Some(u) if u.nanos() >= 0 => u,
                _ => {
                    errors.push(FieldError::new(
                        "estimatedCostUsd",
                        "must be a non-negative amount of at most 9,000,000,000",
                    ));
                    Usd::ZERO
                }
            },
        };
        let clean = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        match (project, provider) {
            (Some(project), Some(provider)) if errors.is_empty() => Ok((
                Slice {
                    project,
                    provider,
                    model,
                    endpoint: clean(self.endpoint),
                    user: clean(self.user),
                },
                estimate,
            )),
            _ => Err(Error::InvalidInput(errors)),
        }
    }
}

/// `ALLOW`, `WARN` or `BLOCK`, ordered by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Decision {
    /// Within every budget.
    Allow,
    /// A threshold is (or would be) reached.
    Warn,
    /// An enforced budget is exhausted or would go over.
    Block,
}

/// One budget's view of a call (or of events just recorded).
#[derive(Debug, Clone)]
pub struct BudgetVerdict {
    /// The budget.
    pub budget: Arc<Budget>,
    /// The period considered (the current one).
    pub period: PeriodBounds,
    /// Spent in the period so far.
    pub spent: Usd,
    /// `spent` plus the estimate.
    pub projected: Usd,
    /// This budget's decision.
    pub decision: Decision,
}

/// The combined answer of every covering budget.
///
/// The decision counts every covering budget, also one the caller may not list (a
/// global budget still applies to a project's calls); but only budgets the caller may
/// see are named with their numbers. The others are only counted in `hidden`, so a
/// project-bound token never learns another project's (or the whole company's) spend.
#[derive(Debug, Clone)]
pub struct BudgetCheck {
    /// The most severe decision (`ALLOW` when no budget covers the call).
    pub decision: Decision,
    /// Each covering budget the caller may see.
    pub budgets: Vec<BudgetVerdict>,
    /// Covering budgets the caller may not see (they count in `decision`).
    pub hidden: usize,
}

impl BudgetCheck {
    /// Keeps the names and numbers of the budgets `principal` may see; counts the rest.
    fn visible_to(mut self, principal: &Principal) -> BudgetCheck {
        let before = self.budgets.len();
        self.budgets.retain(|v| visible(principal, &v.budget));
        self.hidden = before - self.budgets.len();
        self
    }
}

/// A budget's current state.
#[derive(Debug, Clone)]
pub struct BudgetStatus {
    /// The current period.
    pub period: PeriodBounds,
    /// Spent in it.
    pub spent: Usd,
    /// What is left (never negative).
    pub remaining: Usd,
    /// `spent / amount`, in percent.
    pub percent_used: Decimal,
    /// Expected spend at the end of the period at the recent rate (none for `TOTAL`).
    pub forecast: Option<Usd>,
    /// Thresholds reached in this period.
    pub reached: Vec<u32>,
}

/// The budgets known to this process, and the generation they were read at.
#[derive(Debug, Default)]
pub struct BudgetSet {
    /// `ledger_state.budget_generation` when read.
    pub generation: i64,
    /// Every budget.
    pub budgets: Vec<Arc<Budget>>,
}

/// The budget service: storage, the in-process cache ingest matches against, and the
/// signal that wakes the alert dispatcher.
pub struct Budgets {
    cache: RwLock<Arc<BudgetSet>>,
    keyring: Arc<Keyring>,
    allow: OperatorAllowList,
    alerts: Arc<Notify>,
    fired: AtomicBool,
}

fn cache_poisoned() -> Error {
    Error::internal("reading the budget cache", anyhow::anyhow!("poisoned lock"))
}

impl Budgets {
    /// Loads every budget. `alerts` is notified after a transaction fired an alert.
    pub async fn load(
        db: &DatabaseConnection,
        keyring: Arc<Keyring>,
        allow: OperatorAllowList,
        alerts: Arc<Notify>,
    ) -> Result<Budgets> {
        let set = counter::load_set(db).await?;
        Ok(Budgets {
            cache: RwLock::new(Arc::new(set)),
            keyring,
            allow,
            alerts,
            fired: AtomicBool::new(false),
        })
    }

    /// The cached budgets (possibly behind other processes' changes).
    pub fn snapshot(&self) -> Result<Arc<BudgetSet>> {
        self.cache
            .read()
            .map(|s| s.clone())
            .map_err(|_| cache_poisoned())
    }

    fn replace(&self, set: BudgetSet) -> Result<Arc<BudgetSet>> {
        let set = Arc::new(set);
        let mut cache = self.cache.write().map_err(|_| cache_poisoned())?;
        if cache.generation <= set.generation {
            *cache = set.clone();
        }
        Ok(set)
    }

    /// The budgets as of the database's current generation (re-read when another
    /// process changed them).
    pub async fn current(&self, conn: &impl ConnectionTrait) -> Result<Arc<BudgetSet>> {
        let cached = self.snapshot()?;
        if counter::generation(conn).await? == cached.generation {
            return Ok(cached);
        }
        self.replace(counter::load_set(conn).await?)
    }

    /// Validates a budget (new, or a change to `current`) with its channel ids; every
    /// problem is reported at once.
    async fn parse(
        &self,
        conn: &impl ConnectionTrait,
        mut raw: RawBudget,
        current: Option<&Budget>,
    ) -> Result<BudgetSpec> {
        let channels = match raw.channel_ids.take() {
            Some(list) => Some(crate::domain::channel::check_ids(conn, &list).await),
            None => None,
        };
        let parsed = match current {
            Some(c) => raw.parse_update(c, &self.allow),
            None => raw.parse_new(&self.allow),
        };
        match (parsed, channels) {
            (Ok(mut spec), Some(Ok(ids))) => {
                spec.channel_ids = Some(ids);
                Ok(spec)
            }
            (Ok(spec), None) => Ok(spec),
            (Err(Error::InvalidInput(mut a)), Some(Err(Error::InvalidInput(b)))) => {
                a.extend(b);
                Err(Error::InvalidInput(a))
            }
            (Err(e), _) | (Ok(_), Some(Err(e))) => Err(e),
        }
    }

    /// Tells the dispatcher that alerts may be waiting (after commit).
    fn wake_dispatcher(&self) {
        if self.fired.swap(false, Ordering::AcqRel) {
            self.alerts.notify_one();
        }
    }

    /// Creates a budget and seeds its current period from the events already stored;
    /// thresholds already reached fire at once.
    pub async fn create(
        &self,
        db: &DatabaseConnection,
        principal: &Principal,
        raw: RawBudget,
    ) -> Result<Budget> {
        principal.require(Scope::Admin)?;
        let mut spec = self.parse(db, raw, None).await?;
        authorize_scope(principal, &mut spec.scope)?;
        ensure_projects(db, &spec.scope.projects).await?;
        let now = time::now();
        let txn = crate::db::begin_write(db)
            .await
            .context("starting a budget transaction")?;
        counter::bump_generation(&txn).await?;
        let id = BudgetId::generate();
        let row = spec_row(&self.keyring, id, &spec, now)?;
        budget::Entity::insert(row)
            .exec_without_returning(&txn)
            .await
            .context("inserting a budget")?;
        let created = load_one(&txn, id).await?;
        self.seed(&txn, &created, now, true).await?;
        txn.commit().await.context("committing a budget")?;
        self.replace(counter::load_set(db).await?)?;
        self.wake_dispatcher();
        Ok(created)
    }

    /// Changes a budget. A change of scope, period or time zone recounts it (the old
    /// counters no longer mean anything); alerts already fired stay fired.
    pub async fn update(
        &self,
        db: &DatabaseConnection,
        principal: &Principal,
        id: BudgetId,
        raw: RawBudget,
    ) -> Result<Budget> {
        let existing = find(db, id)
            .await?
            .ok_or(Error::NotFound { what: "budget" })?;
        authorize_manage(principal, &existing)?;
        let mut spec = self.parse(db, raw, Some(&existing)).await?;
        authorize_scope(principal, &mut spec.scope)?;
        ensure_projects(db, &spec.scope.projects).await?;
        let now = time::now();
        let txn = crate::db::begin_write(db)
            .await
            .context("starting a budget transaction")?;
        counter::bump_generation(&txn).await?;
        let row = spec_row(&self.keyring, id, &spec, existing.created_at)?;
        let recount = spec.scope != existing.scope
            || spec.period != existing.period
            || spec.timezone != existing.timezone;
        budget::Entity::update(row)
            .exec(&txn)
            .await
            .context("updating a budget")?;
        if recount {
            budget_period::Entity::delete_many()
                .filter(budget_period::Column::BudgetId.eq(id.0))
                .exec(&txn)
                .await
                .context("clearing a budget's counters")?;
        }
        let updated = load_one(&txn, id).await?;
        self.seed(&txn, &updated, now, recount).await?;
        txn.commit().await.context("committing a budget")?;
        self.replace(counter::load_set(db).await?)?;
        self.wake_dispatcher();
        Ok(updated)
    }

    /// Deletes a budget and its counters; its alerts stay, detached.
    pub async fn delete(
        &self,
        db: &DatabaseConnection,
        principal: &Principal,
        id: BudgetId,
    ) -> Result<()> {
        let existing = find(db, id)
            .await?
            .ok_or(Error::NotFound { what: "budget" })?;
        authorize_manage(principal, &existing)?;
        let txn = crate::db::begin_write(db)
            .await
            .context("starting a budget transaction")?;
        counter::bump_generation(&txn).await?;
        budget::Entity::delete_by_id(id.0)
            .exec(&txn)
            .await
            .context("deleting a budget")?;
        txn.commit().await.context("committing a budget deletion")?;
        self.replace(counter::load_set(db).await?)?;
        Ok(())
    }

    /// Fires the thresholds the current period has reached; with `recount`, first sets
    /// its counter to the exact sum of its events (a new budget, or a new scope, period
    /// or zone). The sum runs under the ledger lock, so ingest waits for it: a change
    /// that keeps the counters valid (name, amount, thresholds, webhook) reads the
    /// counter instead.
    async fn seed(
        &self,
        txn: &DatabaseTransaction,
        b: &Budget,
        now: DateTime<Utc>,
        recount: bool,
    ) -> Result<()> {
        let period = b.period_at(now);
        let spent = if recount {
            counter::recount(txn, b, &period).await?
        } else {
            counter::spent(txn, b, &period).await?
        };
        for threshold in b.reached(spent) {
            let fired =
                alert::fire(txn, NewAlert::for_budget(b, &period, threshold, spent)).await?;
            if fired.is_some() {
                self.fired.store(true, Ordering::Release);
            }
        }
        Ok(())
    }

    /// Budgets the caller may see, by name.
    pub async fn list(
        &self,
        conn: &impl ConnectionTrait,
        principal: &Principal,
    ) -> Result<Vec<Budget>> {
        principal.require(Scope::Read)?;
        let mut q = budget::Entity::find().order_by_asc(budget::Column::Name);
        if let Some(own) = principal.project() {
            q = q.filter(budget::Column::OwnerProjectId.eq(own.0));
        }
        q.all(conn)
            .await
            .context("listing budgets")?
            .into_iter()
            .map(Budget::try_from)
            .collect()
    }

    /// One budget the caller may see (`NOT_FOUND` when it may not).
    pub async fn find_visible(
        &self,
        conn: &impl ConnectionTrait,
        principal: &Principal,
        id: BudgetId,
    ) -> Result<Budget> {
        principal.require(Scope::Read)?;
        let b = find(conn, id)
            .await?
            .ok_or(Error::NotFound { what: "budget" })?;
        if !visible(principal, &b) {
            return Err(Error::NotFound { what: "budget" });
        }
        Ok(b)
    }

    /// The budget's current period, spend, remainder and forecast.
    pub async fn status(
        &self,
        conn: &impl ConnectionTrait,
        b: &Budget,
        now: DateTime<Utc>,
    ) -> Result<BudgetStatus> {
        let period = b.period_at(now);
        let spent = counter::spent(conn, b, &period).await?;
        let forecast = match (period.start, period.end) {
            (Some(start), Some(end)) => Some(forecast(conn, b, start, end, now, spent).await?),
            _ => None,
        };
        Ok(BudgetStatus {
            period,
            spent,
            remaining: Usd::from_wide_nanos((b.amount.nanos() - spent.nanos()).max(0)),
            percent_used: percent(spent, b.amount),
            forecast,
            reached: b.reached(spent),
        })
    }

    /// `ALLOW`, `WARN` or `BLOCK` for a call about to be made, from every budget
    /// covering it (also budgets the caller cannot list: a global budget still
    /// applies to a project's calls).
    pub async fn check(
        &self,
        conn: &impl ConnectionTrait,
        principal: &Principal,
        slice: &Slice,
        estimate: Usd,
    ) -> Result<BudgetCheck> {
        if principal.require_on(Scope::Ingest, slice.project).is_err() {
            principal.require_on(Scope::Read, slice.project)?;
        }
        let set = self.current(conn).await?;
        let covering = set
            .budgets
            .iter()
            .filter(|b| b.scope.covers(slice))
            .cloned()
            .collect::<Vec<_>>();
        Ok(self
            .verdicts(conn, covering, estimate, time::now())
            .await?
            .visible_to(principal))
    }

    /// The status of the budgets `events` count toward (in their current period),
    /// for `recordUsage` results, as `principal` may see it. Read after the write; no
    /// locks.
    pub async fn touched(
        &self,
        conn: &impl ConnectionTrait,
        principal: &Principal,
        events: &[&UsageEvent],
    ) -> Result<BudgetCheck> {
        let set = self.current(conn).await?;
        let touched = set
            .budgets
            .iter()
            .filter(|b| events.iter().any(|e| b.counts(e)))
            .cloned()
            .collect::<Vec<_>>();
        Ok(self
            .verdicts(conn, touched, Usd::ZERO, time::now())
            .await?
            .visible_to(principal))
    }

    async fn verdicts(
        &self,
        conn: &impl ConnectionTrait,
        budgets: Vec<Arc<Budget>>,
        estimate: Usd,
        now: DateTime<Utc>,
    ) -> Result<BudgetCheck> {
        let keyed: Vec<(Arc<Budget>, PeriodBounds)> = budgets
            .into_iter()
            .map(|b| {
                let p = b.period_at(now);
                (b, p)
            })
            .collect();
        let spent = counter::spent_many(conn, &keyed).await?;
        let mut out = BudgetCheck {
            decision: Decision::Allow,
            budgets: vec![],
            hidden: 0,
        };
        for ((b, period), spent) in keyed.into_iter().zip(spent) {
            let decision = b.decide(spent, estimate);
            out.decision = out.decision.max(decision);
            out.budgets.push(BudgetVerdict {
                projected: spent.saturating_add(estimate),
                budget: b,
                period,
                spent,
                decision,
            });
        }
        Ok(out)
    }

    /// The hook that keeps counters and fires alerts inside ingest transactions.
    pub fn hook(self: &Arc<Self>) -> Arc<dyn crate::domain::usage::ingest::LedgerHook> {
        Arc::new(counter::BudgetHook::new(self.clone()))
    }
}

/// Expected spend at `end`: `spent` plus the recent rate times the time left. The
/// rate is taken over the last quarter of the period (at least an hour), clipped to
/// the part of the period that has passed, in exact integer arithmetic.
async fn forecast(
    conn: &impl ConnectionTrait,
    b: &Budget,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
    spent: Usd,
) -> Result<Usd> {
    if now >= end {
        return Ok(spent);
    }
    if now <= start {
        return Ok(spent);
    }
    let window = ((end - start) / 4).max(Duration::hours(1)).min(now - start);
    let mut filter = b.filter().clone();
    filter.from = Some(now - window);
    filter.to = Some(now);
    let recent = analytics::tracked_cost(conn, &filter).await?;
    let left = (end - now).num_microseconds().unwrap_or(i64::MAX);
    let window = window.num_microseconds().unwrap_or(1).max(1);
    let extra = recent.nanos().saturating_mul(i128::from(left)) / i128::from(window);
    Ok(Usd::from_wide_nanos(spent.nanos().saturating_add(extra)))
}

fn visible(principal: &Principal, b: &Budget) -> bool {
    match principal.project() {
        Some(own) => b.owner_project == Some(own),
        None => true,
    }
}

fn authorize_manage(principal: &Principal, b: &Budget) -> Result<()> {
    principal.require(Scope::Admin)?;
    if !visible(principal, b) {
        return Err(Error::NotFound { what: "budget" });
    }
    Ok(())
}

/// A project-bound token may only budget its own project (which an empty project
/// list then means).
fn authorize_scope(principal: &Principal, scope: &mut BudgetScope) -> Result<()> {
    if let Some(own) = principal.project() {
        if scope.projects.iter().any(|p| *p != own) {
            return Err(Error::Forbidden(
                "this token may only budget its own project".into(),
            ));
        }
        scope.projects = vec![own];
    }
    Ok(())
}

async fn ensure_projects(conn: &impl ConnectionTrait, projects: &[ProjectId]) -> Result<()> {
    if projects.is_empty() {
        return Ok(());
    }
    let found = project::existing(conn, projects).await?;
    if let Some((i, _)) = projects
        .iter()
        .enumerate()
        .find(|(_, p)| !found.contains(p))
    {
        return Err(Error::invalid(
            format!("scope.projects.{i}"),
            "no such project",
        ));
    }
    Ok(())
}

/// The row for a spec. The secret column is only written when the secret changes
/// (sealed, or cleared).
fn spec_row(
    keyring: &Keyring,
    id: BudgetId,
    spec: &BudgetSpec,
    created_at: DateTime<Utc>,
) -> Result<budget::ActiveModel> {
    let scope = serde_json::to_string(&StoredScope::from(&spec.scope))
        .context("encoding a budget scope")?;
    let now = time::to_micros(time::now());
    let mut row = budget::ActiveModel {
        id: Set(id.0),
        name: Set(spec.name.clone()),
        owner_project_id: Set(match spec.scope.projects.as_slice() {
            [only] => Some(only.0),
            _ => None,
        }),
        scope: Set(scope),
        amount_nanos: Set(spec.amount.stored_nanos()),
        period: Set(spec.period.as_str().to_owned()),
        timezone: Set(spec.timezone.name().to_owned()),
        thresholds: Set(spec
            .thresholds
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")),
        enforce: Set(spec.enforce),
        webhook_url: Set(spec.webhook_url.as_ref().map(|u| u.as_str().to_owned())),
        channel_ids: match &spec.channel_ids {
            Some(ids) => Set(ids
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")),
            None => NotSet,
        },
        created_at: Set(time::to_micros(created_at)),
        updated_at: Set(now),
        ..Default::default()
    };
    match &spec.webhook_secret {
        Change::Set(plain) => row.webhook_secret = Set(Some(secret::seal(keyring, id, plain)?)),
        Change::Clear => row.webhook_secret = Set(None),
        Change::Keep => {}
    }
    Ok(row)
}

/// Looks a budget up without an authorisation check.
pub async fn find(conn: &impl ConnectionTrait, id: BudgetId) -> Result<Option<Budget>> {
    budget::Entity::find_by_id(id.0)
        .one(conn)
        .await
        .context("reading a budget")?
        .map(Budget::try_from)
        .transpose()
}

async fn load_one(conn: &impl ConnectionTrait, id: BudgetId) -> Result<Budget> {
    find(conn, id).await?.ok_or_else(|| {
        Error::internal(
            "reading a budget just written",
            anyhow::anyhow!("budget {id} vanished"),
        )
    })
}

/// The stored (sealed) webhook secret of a budget, opened; for the delivery job only.
pub async fn webhook_secret(
    conn: &impl ConnectionTrait,
    keyring: &Keyring,
    id: BudgetId,
) -> Result<Option<String>> {
    let row = budget::Entity::find_by_id(id.0)
        .one(conn)
        .await
        .context("reading a budget's webhook secret")?;
    row.and_then(|r| r.webhook_secret)
        .map(|s| secret::open(keyring, id, &s))
        .transpose()
}

/// Every period key of `budgets` touched by `events`, with the summed cost change.
///
/// Runs inside every ingest transaction, so it avoids the costly parts: a period is
/// computed (a time-zone conversion) once per budget and distinct period, not once
/// per event, and sums are kept per budget before anything is hashed.
pub fn deltas<'a>(
    budgets: &[Arc<Budget>],
    changes: impl Iterator<Item = (&'a UsageEvent, i128)>,
) -> HashMap<(BudgetId, i64), (Arc<Budget>, PeriodBounds, i128)> {
    let mut per_budget: Vec<Vec<(PeriodBounds, i128)>> = vec![vec![]; budgets.len()];
    for (event, delta) in changes {
        if delta == 0 {
            continue;
        }
        for (slot, b) in per_budget.iter_mut().zip(budgets) {
            if !b.counts(event) {
                continue;
            }
            match slot.iter_mut().find(|(p, _)| p.contains(event.occurred_at)) {
                Some(entry) => entry.1 = entry.1.saturating_add(delta),
                None => slot.push((b.period_at(event.occurred_at), delta)),
            }
        }
    }
    let mut out = HashMap::new();
    for (slot, b) in per_budget.into_iter().zip(budgets) {
        for (period, delta) in slot {
            if delta != 0 {
                out.insert((b.id, period.key()), (b.clone(), period, delta));
            }
        }
    }
    out
}

/// A condition matching the given `(budget, period)` counter rows.
pub(crate) fn period_keys_condition(keys: &[(BudgetId, i64)]) -> Condition {
    keys.iter().fold(Condition::any(), |c, (b, p)| {
        c.add(
            Condition::all()
                .add(budget_period::Column::BudgetId.eq(b.0))
                .add(budget_period::Column::PeriodStart.eq(*p)),
        )
    })
}

impl FromStr for Decision {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "ALLOW" => Ok(Decision::Allow),
            "WARN" => Ok(Decision::Warn),
            "BLOCK" => Ok(Decision::Block),
            other => Err(format!("unknown decision `{other}`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(amount: i64, thresholds: &[u32], enforce: bool) -> Budget {
        let scope = BudgetScope::default();
        Budget {
            id: BudgetId::generate(),
            name: "b".into(),
            filter: scope.filter(),
            scope,
            amount: Usd::from_nanos(amount),
            period: Period::Monthly,
            timezone: Tz::UTC,
            thresholds: thresholds.to_vec(),
            enforce,
            webhook_url: None,
            webhook_secret_set: false,
            channel_ids: vec![],
            owner_project: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn thresholds_are_crossed_exactly_once_per_move() {
        let b = budget(1000, &[50, 80, 100], false);
        assert_eq!(
            b.crossed(Usd::from_nanos(0), Usd::from_nanos(499)),
            Vec::<u32>::new()
        );
        assert_eq!(
            b.crossed(Usd::from_nanos(499), Usd::from_nanos(500)),
            vec![50]
        );
        // One jump over several thresholds crosses each.
        assert_eq!(
            b.crossed(Usd::from_nanos(100), Usd::from_nanos(1200)),
            vec![50, 80, 100]
        );
        assert_eq!(
            b.crossed(Usd::from_nanos(800), Usd::from_nanos(900)),
            Vec::<u32>::new()
        );
        assert_eq!(b.reached(Usd::from_nanos(800)), vec![50, 80]);
    }

    #[test]
    fn deltas_sum_per_budget_and_period() {
        use crate::domain::ids::UsageEventId;
        use crate::domain::usage::{CostSource, UsageSource};
        let berlin = calendar::parse_tz("Europe/Berlin").unwrap();
        let mut monthly = budget(1000, &[50], false);
        monthly.timezone = berlin;
        let mut only_gpt = budget(1000, &[50], false);
        only_gpt.scope.models = vec!["gpt-4o".into()];
        only_gpt.filter = only_gpt.scope.filter();
        let budgets = vec![Arc::new(monthly.clone()), Arc::new(only_gpt.clone())];
        let event = |id: i64, model: &str, at: &str| UsageEvent {
            id: UsageEventId(id),
            project: ProjectId::generate(),
            provider: Provider::parse("openai").unwrap(),
            model: model.into(),
            endpoint: None,
            source: UsageSource::Api,
            occurred_at: at.parse().unwrap(),
            received_at: Utc::now(),
            tokens: Default::default(),
            requests: 1,
            service_tier: Default::default(),
            variant: None,
            latency_ms: None,
            cost: None,
            cost_source: CostSource::Computed,
            price_id: None,
            idempotency_key: None,
            user: None,
            metadata: None,
        };
        let events = [
            event(1, "gpt-4o", "2025-10-31T22:30:00Z"),
            event(2, "gpt-4o", "2025-10-31T23:30:00Z"),
            event(3, "o3", "2025-10-31T23:45:00Z"),
            event(4, "gpt-4o", "2025-10-31T23:50:00Z"),
        ];
        let d = deltas(&budgets, events.iter().zip([5, 7, 11, 0]));
        // Berlin: event 1 is October; 2 and 3 are November. UTC: all October.
        let oct_berlin = monthly.period_at(events[0].occurred_at).key();
        let nov_berlin = monthly.period_at(events[1].occurred_at).key();
        let oct_utc = only_gpt.period_at(events[0].occurred_at).key();
        assert_ne!(oct_berlin, nov_berlin);
        assert_eq!(d[&(monthly.id, oct_berlin)].2, 5);
        assert_eq!(d[&(monthly.id, nov_berlin)].2, 18);
        assert_eq!(
            d[&(only_gpt.id, oct_utc)].2,
            12,
            "o3 is out of scope; zero deltas are skipped"
        );
        assert_eq!(d.len(), 3);
    }

    #[test]
    fn decisions() {
        let soft = budget(1000, &[80], false);
        let hard = budget(1000, &[80], true);
        assert_eq!(
            soft.decide(Usd::from_nanos(100), Usd::from_nanos(100)),
            Decision::Allow
        );
        assert_eq!(
            soft.decide(Usd::from_nanos(700), Usd::from_nanos(100)),
            Decision::Warn
        );
        assert_eq!(
            soft.decide(Usd::from_nanos(900), Usd::from_nanos(500)),
            Decision::Warn
        );
        assert_eq!(
            hard.decide(Usd::from_nanos(900), Usd::from_nanos(100)),
            Decision::Warn
        );
        assert_eq!(
            hard.decide(Usd::from_nanos(900), Usd::from_nanos(101)),
            Decision::Block
        );
        assert_eq!(
            hard.decide(Usd::from_nanos(1000), Usd::ZERO),
            Decision::Block
        );
    }

    #[test]
    fn periods_in_a_zone() {
        let berlin = calendar::parse_tz("Europe/Berlin").unwrap();
        let t: DateTime<Utc> = "2026-10-31T23:30:00Z".parse().unwrap();
        let p = Period::Monthly.bounds(t, &berlin);
        assert_eq!(
            p.start.unwrap(),
            "2026-10-31T23:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            p.end.unwrap(),
            "2026-11-30T23:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(Period::Total.bounds(t, &berlin).key(), TOTAL_PERIOD_KEY);
        assert!(Period::Total.bounds(t, &berlin).contains(t));
    }

    #[test]
    fn percent_is_exact_to_two_places() {
        assert_eq!(
            percent(Usd::from_nanos(1), Usd::from_nanos(3)).to_string(),
            "33.33"
        );
        assert_eq!(
            percent(Usd::from_nanos(3), Usd::from_nanos(2)).to_string(),
            "150"
        );
    }

    #[test]
    fn a_webhook_needs_a_secret() {
        let raw = RawBudget {
            name: Some("n".into()),
            amount_usd: Some(Decimal::from(10)),
            period: Some(Period::Daily),
            webhook_url: Change::Set("https://hooks.example.com/x".into()),
            ..Default::default()
        };
        let err = raw
            .clone()
            .parse_new(&OperatorAllowList::default())
            .unwrap_err();
        assert_eq!(err.code(), "INVALID_INPUT");
        let ok = RawBudget {
            webhook_secret: Change::Set("0123456789abcdef".into()),
            ..raw
        }
        .parse_new(&OperatorAllowList::default());
        assert!(ok.is_ok());
    }
}
