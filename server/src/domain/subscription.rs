//! Fixed subscriptions (a Copilot seat plan, a ChatGPT or Perplexity plan): a price per
//! seat and period, booked for every period that starts while the plan runs, and spread
//! evenly over the days of its period in analytics, so a monthly plan shows in daily
//! trends without a spike.
//!
//! Spreading is exact: a period's total in nano-dollars is divided by its number of
//! days, and the remainder goes one nano-dollar each to its first days, so the days of a
//! period always add up to the period's total.

use crate::domain::auth::{Principal, Scope};
use crate::domain::error::{Context, Error, FieldError, Result};
use crate::domain::ids::{ProjectId, SubscriptionId};
use crate::domain::money::Usd;
use crate::domain::price::text_enum;
use crate::domain::provider::Provider;
use crate::domain::time;
use crate::entity::subscription_cost::{self, Column};
use chrono::{Months, NaiveDate};
use rust_decimal::Decimal;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};
use std::fmt;
use std::str::FromStr;

/// How often a plan is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscriptionPeriod {
    /// Every month, on the start day's date.
    Monthly,
    /// Every year.
    Yearly,
}

text_enum!(SubscriptionPeriod { Monthly => "MONTHLY", Yearly => "YEARLY" });

impl SubscriptionPeriod {
    fn months(self) -> u32 {
        match self {
            SubscriptionPeriod::Monthly => 1,
            SubscriptionPeriod::Yearly => 12,
        }
    }
}

/// A stored plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionCost {
    /// Id.
    pub id: SubscriptionId,
    /// Provider.
    pub provider: Provider,
    /// Plan name (`Copilot Business`).
    pub plan: String,
    /// Project it is attributed to.
    pub project: Option<ProjectId>,
    /// Price per seat and period.
    pub amount: Usd,
    /// Billing period.
    pub period: SubscriptionPeriod,
    /// Seats.
    pub seats: i64,
    /// First day of the first period.
    pub starts_on: NaiveDate,
    /// Last day covered; a period that starts on or before it is booked whole.
    pub ends_on: Option<NaiveDate>,
    /// Note.
    pub note: Option<String>,
}

impl SubscriptionCost {
    /// The total booked per period.
    pub fn period_total(&self) -> Option<Usd> {
        self.amount
            .nanos()
            .checked_mul(i128::from(self.seats))
            .map(Usd::from_wide_nanos)
    }

    /// The start of the `n`th period (0-based), on the start date's day of month (the
    /// last day of shorter months).
    fn period_start(&self, n: u32) -> Option<NaiveDate> {
        self.starts_on
            .checked_add_months(Months::new(n.checked_mul(self.period.months())?))
    }

    /// The booked amount of every day from `from` (inclusive) to `to` (exclusive).
    /// Periods that start after today (UTC) are not booked yet, so a range reaching
    /// far into the future costs no more work than one ending today.
    pub fn daily(&self, from: NaiveDate, to: NaiveDate) -> Vec<(NaiveDate, Usd)> {
        self.daily_until(from, to, crate::domain::time::now().date_naive())
    }

    fn daily_until(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        today: NaiveDate,
    ) -> Vec<(NaiveDate, Usd)> {
        let mut out = vec![];
        let Some(total) = self.period_total() else {
            return out;
        };
        let mut n = 0u32;
        while let (Some(start), Some(next)) = (self.period_start(n), self.period_start(n + 1)) {
            n += 1;
            if start >= to || start > today || self.ends_on.is_some_and(|end| start > end) {
                break;
            }
            if next <= from {
                continue;
            }
            let days = (next - start).num_days();
            if days <= 0 {
                continue;
            }
            let days = i128::from(days);
            let (base, remainder) = (total.nanos() / days, total.nanos() % days);
            let mut day = start;
            let mut i = 0;
            while day < next {
                if day >= from && day < to {
                    out.push((day, Usd::from_wide_nanos(base + i128::from(i < remainder))));
                }
                i += 1;
                match day.succ_opt() {
                    Some(d) => day = d,
                    None => break,
                }
            }
        }
        out
    }
}

impl TryFrom<subscription_cost::Model> for SubscriptionCost {
    type Error = Error;
    fn try_from(m: subscription_cost::Model) -> Result<Self> {
        let bad = |what: &str, e: &dyn fmt::Display| {
            Error::internal("decoding a subscription", anyhow::anyhow!("{what}: {e}"))
        };
        Ok(SubscriptionCost {
            id: SubscriptionId(m.id),
            provider: Provider::parse(&m.provider).ok_or_else(|| bad("provider", &m.provider))?,
            plan: m.plan,
            project: m.project_id.map(ProjectId),
            amount: Usd::from_nanos(m.amount_nanos),
            period: m.period.parse().map_err(|e: String| bad("period", &e))?,
            seats: m.seats,
            starts_on: NaiveDate::from_str(&m.starts_on).map_err(|e| bad("starts_on", &e))?,
            ends_on: m
                .ends_on
                .map(|d| NaiveDate::from_str(&d))
                .transpose()
                .map_err(|e| bad("ends_on", &e))?,
            note: m.note,
        })
    }
}

/// A plan as a client sent it.
#[derive(Debug, Clone)]
pub struct RawSubscription {
    /// Provider.
    pub provider: String,
    /// Plan name.
    pub plan: String,
    /// Price per seat and period.
    pub amount_usd: Decimal,
    /// Period.
    pub period: SubscriptionPeriod,
    /// Seats (default 1).
    pub seats: Option<i64>,
    /// First day.
    pub starts_on: NaiveDate,
    /// Last day covered.
    pub ends_on: Option<NaiveDate>,
    /// Project.
    pub project_id: Option<String>,
    /// Note.
    pub note: Option<String>,
}

impl RawSubscription {
    /// Validates everything at once.
    pub fn parse(self, principal: &Principal) -> Result<SubscriptionCost> {
        let mut errors = vec![];
        let provider = Provider::parse(&self.provider);
        if provider.is_none() {
            errors.push(FieldError::new("provider", "must be a provider name"));
        }
        let plan = self.plan.trim().to_owned();
        if plan.is_empty() || plan.chars().count() > 200 {
            errors.push(FieldError::new("plan", "must be 1 to 200 characters"));
        } else if let Some(problem) =
            crate::domain::text::problem(&plan, crate::domain::text::TextKind::Identifier)
        {
            errors.push(FieldError::new("plan", problem));
        }
        let amount =
            if self.amount_usd.is_sign_negative() || self.amount_usd > Decimal::from(10_000_000) {
                errors.push(FieldError::new(
                    "amountUsd",
                    "must be between 0 and 10000000",
                ));
                None
            } else {
                Usd::from_decimal(self.amount_usd)
            };
        let seats = self.seats.unwrap_or(1);
        if !(1..=1_000_000).contains(&seats) {
            errors.push(FieldError::new("seats", "must be between 1 and 1000000"));
        }
        if self.ends_on.is_some_and(|end| end < self.starts_on) {
            errors.push(FieldError::new("endsOn", "must not be before startsOn"));
        }
        let project = match self
            .project_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(p) => p
                .parse::<ProjectId>()
                .map_err(|_| errors.push(FieldError::new("projectId", "is not a project id")))
                .ok(),
            None => principal.project(),
        };
        match (provider, amount) {
            (Some(provider), Some(amount)) if errors.is_empty() => Ok(SubscriptionCost {
                id: SubscriptionId::generate(),
                provider,
                plan,
                project,
                amount,
                period: self.period,
                seats,
                starts_on: self.starts_on,
                ends_on: self.ends_on,
                note: self
                    .note
                    .map(|n| n.trim().to_owned())
                    .filter(|n| !n.is_empty()),
            }),
            _ => Err(Error::InvalidInput(errors)),
        }
    }
}

fn authorize(principal: &Principal, project: Option<ProjectId>) -> Result<()> {
    match project {
        Some(p) => principal.require_on(Scope::Admin, p),
        None => principal.require_global_admin(),
    }
}

/// Stores a plan.
pub async fn create(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    s: SubscriptionCost,
) -> Result<SubscriptionCost> {
    authorize(principal, s.project)?;
    let now = time::to_micros(time::now());
    subscription_cost::Entity::insert(subscription_cost::ActiveModel {
        id: Set(s.id.0),
        provider: Set(s.provider.as_str().to_owned()),
        plan: Set(s.plan.clone()),
        project_id: Set(s.project.map(|p| p.0)),
        amount_nanos: Set(s.amount.stored_nanos()),
        period: Set(s.period.as_str().to_owned()),
        seats: Set(s.seats),
        starts_on: Set(s.starts_on.to_string()),
        ends_on: Set(s.ends_on.map(|d| d.to_string())),
        note: Set(s.note.clone()),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(conn)
    .await
    .context("storing a subscription")?;
    Ok(s)
}

/// Plans the caller may read.
pub async fn list(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    providers: &[Provider],
) -> Result<Vec<SubscriptionCost>> {
    let projects = principal.readable_projects(&[])?;
    list_unchecked(conn, providers, &projects).await
}

/// Plans of these providers (any when empty) and projects (any when empty), without an
/// authorisation check (for analytics, which checks first).
pub async fn list_unchecked(
    conn: &impl ConnectionTrait,
    providers: &[Provider],
    projects: &[ProjectId],
) -> Result<Vec<SubscriptionCost>> {
    let mut q = subscription_cost::Entity::find().order_by_asc(Column::StartsOn);
    if !providers.is_empty() {
        q = q.filter(Column::Provider.is_in(providers.iter().map(|p| p.as_str().to_owned())));
    }
    if !projects.is_empty() {
        q = q.filter(Column::ProjectId.is_in(projects.iter().map(|p| p.0)));
    }
    q.all(conn)
        .await
        .context("listing subscriptions")?
        .into_iter()
        .map(SubscriptionCost::try_from)
        .collect()
}

/// Deletes a plan.
pub async fn delete(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    id: SubscriptionId,
) -> Result<SubscriptionCost> {
    let row = subscription_cost::Entity::find_by_id(id.0)
        .one(conn)
        .await
        .context("reading a subscription")?
        .ok_or(Error::NotFound {
            what: "subscription",
        })?;
    let s = SubscriptionCost::try_from(row)?;
    authorize(principal, s.project)?;
    subscription_cost::Entity::delete_by_id(id.0)
        .exec(conn)
        .await
        .context("deleting a subscription")?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(
        amount: i64,
        seats: i64,
        period: SubscriptionPeriod,
        starts: &str,
        ends: Option<&str>,
    ) -> SubscriptionCost {
        SubscriptionCost {
            id: SubscriptionId::generate(),
            provider: Provider::parse("github-copilot").unwrap(),
            plan: "Business".into(),
            project: None,
            amount: Usd::from_nanos(amount * 1_000_000_000),
            period,
            seats,
            starts_on: starts.parse().unwrap(),
            ends_on: ends.map(|e| e.parse().unwrap()),
            note: None,
        }
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_month_is_spread_exactly_over_its_days() {
        // $19 x 10 seats over the 30 days of 2026-04: 6.333... a day.
        let p = plan(19, 10, SubscriptionPeriod::Monthly, "2026-04-01", None);
        let days = p.daily(d("2026-04-01"), d("2026-05-01"));
        assert_eq!(days.len(), 30);
        let total: i128 = days.iter().map(|(_, u)| u.nanos()).sum();
        assert_eq!(total, 190_000_000_000);
        assert_eq!(days[0].1.nanos(), 6_333_333_334);
        assert_eq!(days[29].1.nanos(), 6_333_333_333);
    }

    #[test]
    fn periods_follow_the_start_day_and_stop_after_the_end() {
        let p = plan(
            31,
            1,
            SubscriptionPeriod::Monthly,
            "2026-01-31",
            Some("2026-03-15"),
        );
        let days = p.daily(d("2026-01-01"), d("2026-06-01"));
        // Periods start Jan 31, Feb 28, Mar 31 (after the end: not booked).
        assert_eq!(days.first().unwrap().0, d("2026-01-31"));
        assert_eq!(days.last().unwrap().0, d("2026-03-30"));
        let total: i128 = days.iter().map(|(_, u)| u.nanos()).sum();
        assert_eq!(total, 62_000_000_000, "two periods of $31");
    }

    #[test]
    fn periods_that_have_not_started_are_not_booked() {
        // An open-ended monthly plan asked about up to the end of the accepted range:
        // only the periods started by "today" (2026-03-10) are booked, the March one
        // whole.
        let p = plan(31, 1, SubscriptionPeriod::Monthly, "2026-01-01", None);
        let days = p.daily_until(d("2026-01-01"), d("2199-12-31"), d("2026-03-10"));
        assert_eq!(days.len(), 31 + 28 + 31);
        assert_eq!(days.last().unwrap().0, d("2026-03-31"));
    }

    #[test]
    fn a_window_sees_only_its_days() {
        let p = plan(365, 1, SubscriptionPeriod::Yearly, "2026-01-01", None);
        let days = p.daily(d("2026-03-01"), d("2026-03-08"));
        assert_eq!(days.len(), 7);
        assert!(days.iter().all(|(_, u)| u.nanos() == 1_000_000_000));
    }
}
