//! Alerts: a budget threshold reached in a period, or an anomaly an anomaly watch
//! caught (`domain::anomaly_watch`) — they travel the same way.
//!
//! **An alert row is the only proof it fired.** [`fire`] inserts with `ON CONFLICT DO
//! NOTHING` against the unique index on (budget, period start, threshold), or for an
//! anomaly the one on its `dedupe_key` (watch, day, subject, value); only the
//! transaction whose insert went in fired it, whatever the concurrency or the number
//! of processes. The row is written in the same transaction as the spend that
//! crossed the threshold, so an alert exists if and only if that spend committed.
//!
//! **Delivery goes through an outbox.** The row is born undispatched
//! (`dispatched_at` null) with `delivery_status` `PENDING` when its budget has a
//! webhook or notification channels, and one `alert_targets` row per destination.
//! After commit, the dispatcher (`jobs::alerts`) pushes one apalis job per pending
//! destination, keyed by the alert id and target (so pushing twice queues once), then
//! claims the row; the claimer also announces the alert to live subscribers. Each job
//! records every attempt in `alert_deliveries`.

use crate::domain::auth::{Principal, Scope};
use crate::domain::budget::{Budget, PeriodBounds, TOTAL_PERIOD_KEY, percent};
use crate::domain::error::{Context, Error, Result, parse_each};
use crate::domain::ids::ChannelId;
use crate::domain::ids::{AlertId, BudgetId, ProjectId};
use crate::domain::money::Usd;
use crate::domain::price::text_enum;
use crate::domain::time;
use crate::entity::{alert, alert_delivery, alert_target};
use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::json;
use std::fmt;

/// What raised an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// A budget threshold was reached.
    Budget,
    /// Spend looked anomalous (raised by analytics).
    Anomaly,
}

/// Where the webhook delivery of an alert stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// No webhook configured.
    None,
    /// Queued or being retried.
    Pending,
    /// A webhook answered 2xx.
    Delivered,
    /// Every attempt failed, or the destination was refused.
    Failed,
    /// The budget or its webhook was removed before delivery.
    Skipped,
}

text_enum!(AlertKind { Budget => "BUDGET", Anomaly => "ANOMALY" });
text_enum!(DeliveryStatus {
    None => "NONE", Pending => "PENDING", Delivered => "DELIVERED", Failed => "FAILED", Skipped => "SKIPPED"
});

/// The target name of a budget's own webhook.
pub const WEBHOOK_TARGET: &str = "webhook";

/// The target name of a notification channel.
pub fn channel_target(id: ChannelId) -> String {
    format!("channel:{id}")
}

/// The channel a target names (`None` for the budget's webhook).
pub fn target_channel(target: &str) -> Option<ChannelId> {
    target.strip_prefix("channel:")?.parse().ok()
}

/// A fired alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Id (also the webhook's delivery id).
    pub id: AlertId,
    /// What raised it.
    pub kind: AlertKind,
    /// The budget (none once the budget is deleted).
    pub budget: Option<BudgetId>,
    /// The budget's name when the alert fired.
    pub budget_name: String,
    /// The project a project-bound token must have to see it.
    pub owner_project: Option<ProjectId>,
    /// The period it fired in.
    pub period: PeriodBounds,
    /// The percentage reached.
    pub threshold: u32,
    /// Spent in the period when it fired.
    pub spent: Usd,
    /// The budget's amount when it fired.
    pub amount: Usd,
    /// Plain-text summary (no links).
    pub summary: String,
    /// When it fired.
    pub fired_at: DateTime<Utc>,
    /// When someone acknowledged it.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Webhook delivery state.
    pub delivery_status: DeliveryStatus,
    /// When the webhook was delivered.
    pub delivered_at: Option<DateTime<Utc>>,
}

fn corrupt(what: &str, e: impl fmt::Display) -> Error {
    Error::internal("decoding a stored alert", anyhow::anyhow!("{what}: {e}"))
}

impl TryFrom<alert::Model> for Alert {
    type Error = Error;
    fn try_from(m: alert::Model) -> Result<Self> {
        Ok(Alert {
            id: AlertId(m.id),
            kind: m.kind.parse().map_err(|e| corrupt("kind", e))?,
            budget: m.budget_id.map(BudgetId),
            budget_name: m.budget_name,
            owner_project: m.owner_project_id.map(ProjectId),
            period: PeriodBounds {
                start: (m.period_start != TOTAL_PERIOD_KEY || m.period_end.is_some())
                    .then(|| time::from_micros(m.period_start)),
                end: m.period_end.map(time::from_micros),
            },
            threshold: u32::try_from(m.threshold).map_err(|e| corrupt("threshold", e))?,
            spent: Usd::from_nanos(m.spent_nanos),
            amount: Usd::from_nanos(m.amount_nanos),
            summary: m.summary,
            fired_at: time::from_micros(m.fired_at),
            acknowledged_at: m.acknowledged_at.map(time::from_micros),
            delivery_status: m
                .delivery_status
                .parse()
                .map_err(|e| corrupt("delivery status", e))?,
            delivered_at: m.delivered_at.map(time::from_micros),
        })
    }
}

/// An alert about to be fired.
#[derive(Debug, Clone)]
pub struct NewAlert {
    kind: AlertKind,
    budget: Option<BudgetId>,
    budget_name: String,
    owner_project: Option<ProjectId>,
    period: PeriodBounds,
    threshold: u32,
    spent: Usd,
    amount: Usd,
    summary: String,
    delivery: DeliveryStatus,
    targets: Vec<String>,
    dedupe_key: Option<String>,
}

impl NewAlert {
    /// A budget reaching `threshold`% in `period` with `spent`.
    pub fn for_budget(b: &Budget, period: &PeriodBounds, threshold: u32, spent: Usd) -> NewAlert {
        NewAlert {
            kind: AlertKind::Budget,
            budget: Some(b.id),
            budget_name: b.name.clone(),
            owner_project: b.owner_project,
            period: *period,
            threshold,
            spent,
            amount: b.amount,
            summary: b.alert_summary(threshold, spent, period),
            delivery: if b.webhook_url.is_some() || !b.channel_ids.is_empty() {
                DeliveryStatus::Pending
            } else {
                DeliveryStatus::None
            },
            targets: b
                .webhook_url
                .is_some()
                .then(|| WEBHOOK_TARGET.to_owned())
                .into_iter()
                .chain(b.channel_ids.iter().map(|c| channel_target(*c)))
                .collect(),
            dedupe_key: None,
        }
    }

    /// An anomaly an anomaly watch named `name` raised: `spent` that day against a
    /// trailing mean of `mean`, `percent` of it; `key` makes it fire once.
    #[allow(clippy::too_many_arguments)]
    pub fn for_anomaly(
        name: String,
        owner_project: Option<ProjectId>,
        day: PeriodBounds,
        percent: u32,
        spent: Usd,
        mean: Usd,
        summary: String,
        key: String,
        channels: Vec<ChannelId>,
    ) -> NewAlert {
        NewAlert {
            kind: AlertKind::Anomaly,
            budget: None,
            budget_name: name,
            owner_project,
            period: day,
            threshold: percent,
            spent,
            amount: mean,
            summary,
            delivery: if channels.is_empty() {
                DeliveryStatus::None
            } else {
                DeliveryStatus::Pending
            },
            targets: channels.into_iter().map(channel_target).collect(),
            dedupe_key: Some(key),
        }
    }
}

/// Fires an alert unless it already fired: `Some` only for the caller whose insert
/// went in (the unique index decides; see the module docs).
pub async fn fire(conn: &impl ConnectionTrait, new: NewAlert) -> Result<Option<Alert>> {
    let id = AlertId::generate();
    let fired_at = time::now();
    let mut stmt = Query::insert();
    stmt.into_table(alert::Entity)
        .columns([
            alert::Column::Id,
            alert::Column::Kind,
            alert::Column::BudgetId,
            alert::Column::BudgetName,
            alert::Column::OwnerProjectId,
            alert::Column::PeriodStart,
            alert::Column::PeriodEnd,
            alert::Column::Threshold,
            alert::Column::SpentNanos,
            alert::Column::AmountNanos,
            alert::Column::Summary,
            alert::Column::FiredAt,
            alert::Column::DeliveryStatus,
            alert::Column::DedupeKey,
        ])
        .values([
            Expr::val(id.0),
            Expr::val(new.kind.as_str()),
            Expr::val(new.budget.map(|b| b.0)),
            Expr::val(new.budget_name.clone()),
            Expr::val(new.owner_project.map(|p| p.0)),
            Expr::val(new.period.key()),
            Expr::val(new.period.end.map(time::to_micros)),
            Expr::val(i64::from(new.threshold)),
            // The spend when the threshold was crossed, for the record (a sum beyond
            // $9.2 billion, which only hostile input reaches, is stored as that).
            Expr::val(new.spent.stored_nanos()),
            Expr::val(new.amount.stored_nanos()),
            Expr::val(new.summary.clone()),
            Expr::val(time::to_micros(fired_at)),
            Expr::val(new.delivery.as_str()),
            Expr::val(new.dedupe_key.clone()),
        ])
        .context("building an alert insert")?;
    stmt.on_conflict(OnConflict::new().do_nothing().to_owned());
    stmt.returning_col(alert::Column::Id);
    let inserted = conn.query_all(&stmt).await.context("inserting an alert")?;
    if inserted.is_empty() {
        return Ok(None);
    }
    for target in &new.targets {
        alert_target::Entity::insert(alert_target::ActiveModel {
            alert_id: Set(id.0),
            target: Set(target.clone()),
            status: Set(DeliveryStatus::Pending.as_str().to_owned()),
            delivered_at: Set(None),
        })
        .exec_without_returning(conn)
        .await
        .context("recording an alert's destinations")?;
    }
    Ok(Some(Alert {
        id,
        kind: new.kind,
        budget: new.budget,
        budget_name: new.budget_name,
        owner_project: new.owner_project,
        period: new.period,
        threshold: new.threshold,
        spent: new.spent,
        amount: new.amount,
        summary: new.summary,
        fired_at,
        acknowledged_at: None,
        delivery_status: new.delivery,
        delivered_at: None,
    }))
}

/// Which alerts to list or follow. Empty lists mean "any".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertFilter {
    /// Budgets.
    pub budgets: Vec<BudgetId>,
    /// Owning projects.
    pub projects: Vec<ProjectId>,
    /// Kinds.
    pub kinds: Vec<AlertKind>,
    /// Only acknowledged (`true`) or unacknowledged (`false`) alerts.
    pub acknowledged: Option<bool>,
    /// Delivery states.
    pub delivery: Vec<DeliveryStatus>,
    /// Fired at or after.
    pub from: Option<DateTime<Utc>>,
    /// Fired before.
    pub to: Option<DateTime<Utc>>,
}

/// An alert filter as a client sent it.
#[derive(Debug, Clone, Default)]
pub struct RawAlertFilter {
    /// Budget ids.
    pub budgets: Option<Vec<String>>,
    /// Project ids.
    pub projects: Option<Vec<String>>,
    /// Kinds.
    pub kinds: Option<Vec<AlertKind>>,
    /// Acknowledged or not.
    pub acknowledged: Option<bool>,
    /// Delivery states.
    pub delivery: Option<Vec<DeliveryStatus>>,
    /// Fired at or after.
    pub from: Option<DateTime<Utc>>,
    /// Fired before.
    pub to: Option<DateTime<Utc>>,
}

impl RawAlertFilter {
    /// Parses ids; `from` after `to` is `INVALID_DATE_RANGE`.
    pub fn parse(self) -> Result<AlertFilter> {
        let mut errors = vec![];
        let budgets = parse_each(
            self.budgets,
            "budgets",
            "is not a budget id",
            |b| b.parse().ok(),
            &mut errors,
        );
        let projects = parse_each(
            self.projects,
            "projects",
            "is not a project id",
            |p| p.parse().ok(),
            &mut errors,
        );
        if !errors.is_empty() {
            return Err(Error::InvalidInput(errors));
        }
        if let (Some(from), Some(to)) = (self.from, self.to)
            && from > to
        {
            return Err(Error::InvalidDateRange(format!(
                "`from` ({}) is after `to` ({})",
                from.to_rfc3339(),
                to.to_rfc3339()
            )));
        }
        Ok(AlertFilter {
            budgets,
            projects,
            kinds: self.kinds.unwrap_or_default(),
            acknowledged: self.acknowledged,
            delivery: self.delivery.unwrap_or_default(),
            from: self.from,
            to: self.to,
        })
    }
}

impl AlertFilter {
    /// Restricts the filter to what the caller may read.
    pub fn authorized(mut self, principal: &Principal) -> Result<AlertFilter> {
        self.projects = principal.readable_projects(&self.projects)?;
        Ok(self)
    }

    /// Whether an alert passes (for live subscribers).
    pub fn matches(&self, a: &Alert) -> bool {
        (self.budgets.is_empty() || a.budget.is_some_and(|b| self.budgets.contains(&b)))
            && (self.projects.is_empty()
                || a.owner_project.is_some_and(|p| self.projects.contains(&p)))
            && (self.kinds.is_empty() || self.kinds.contains(&a.kind))
            && self
                .acknowledged
                .is_none_or(|ack| ack == a.acknowledged_at.is_some())
            && (self.delivery.is_empty() || self.delivery.contains(&a.delivery_status))
            && self.from.is_none_or(|f| a.fired_at >= f)
            && self.to.is_none_or(|t| a.fired_at < t)
    }
}

/// Most alerts per page.
pub const MAX_PAGE: u64 = 1000;

/// Alerts the caller may see, newest first.
pub async fn list(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    filter: AlertFilter,
    first: i64,
) -> Result<Vec<Alert>> {
    let filter = filter.authorized(principal)?;
    if !(0..=MAX_PAGE as i64).contains(&first) {
        return Err(Error::invalid(
            "first",
            format!("must be between 0 and {MAX_PAGE}"),
        ));
    }
    let mut q = alert::Entity::find();
    if !filter.budgets.is_empty() {
        q = q.filter(alert::Column::BudgetId.is_in(filter.budgets.iter().map(|b| b.0)));
    }
    if !filter.projects.is_empty() {
        q = q.filter(alert::Column::OwnerProjectId.is_in(filter.projects.iter().map(|p| p.0)));
    }
    if !filter.kinds.is_empty() {
        q = q.filter(alert::Column::Kind.is_in(filter.kinds.iter().map(|k| k.as_str())));
    }
    if let Some(ack) = filter.acknowledged {
        q = q.filter(if ack {
            alert::Column::AcknowledgedAt.is_not_null()
        } else {
            alert::Column::AcknowledgedAt.is_null()
        });
    }
    if !filter.delivery.is_empty() {
        q = q.filter(
            alert::Column::DeliveryStatus.is_in(filter.delivery.iter().map(|d| d.as_str())),
        );
    }
    if let Some(from) = filter.from {
        q = q.filter(alert::Column::FiredAt.gte(time::to_micros(from)));
    }
    if let Some(to) = filter.to {
        q = q.filter(alert::Column::FiredAt.lt(time::to_micros(to)));
    }
    q.order_by_desc(alert::Column::FiredAt)
        .order_by_desc(alert::Column::Id)
        .limit(first as u64)
        .all(conn)
        .await
        .context("listing alerts")?
        .into_iter()
        .map(Alert::try_from)
        .collect()
}

/// Looks an alert up without an authorisation check.
pub async fn find(conn: &impl ConnectionTrait, id: AlertId) -> Result<Option<Alert>> {
    alert::Entity::find_by_id(id.0)
        .one(conn)
        .await
        .context("reading an alert")?
        .map(Alert::try_from)
        .transpose()
}

/// Whether the caller may see this alert.
pub fn visible(principal: &Principal, a: &Alert) -> bool {
    match principal.project() {
        Some(own) => a.owner_project == Some(own),
        None => true,
    }
}

/// One alert the caller may see.
pub async fn get(conn: &impl ConnectionTrait, principal: &Principal, id: AlertId) -> Result<Alert> {
    principal.require(Scope::Read)?;
    match find(conn, id).await? {
        Some(a) if visible(principal, &a) => Ok(a),
        _ => Err(Error::NotFound { what: "alert" }),
    }
}

/// Marks an alert as seen (admins of its project); acknowledging twice keeps the
/// first time.
pub async fn acknowledge(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    id: AlertId,
) -> Result<Alert> {
    principal.require(Scope::Admin)?;
    let a = get(conn, principal, id).await?;
    if a.acknowledged_at.is_some() {
        return Ok(a);
    }
    alert::Entity::update_many()
        .col_expr(
            alert::Column::AcknowledgedAt,
            Expr::val(time::to_micros(time::now())),
        )
        .filter(alert::Column::Id.eq(id.0))
        .filter(alert::Column::AcknowledgedAt.is_null())
        .exec(conn)
        .await
        .context("acknowledging an alert")?;
    get(conn, principal, id).await
}

/// One attempt to deliver an alert's webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryAttempt {
    /// 1 for the first attempt.
    pub attempt: u32,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it took, in milliseconds.
    pub duration_ms: i64,
    /// The HTTP status, when an answer came.
    pub status_code: Option<u16>,
    /// What went wrong.
    pub error: Option<String>,
    /// Whether it was delivered.
    pub succeeded: bool,
    /// The destination: `webhook` (the budget's own) or `channel:<id>`.
    pub target: String,
}

/// The delivery attempts of an alert, first first.
pub async fn deliveries(conn: &impl ConnectionTrait, id: AlertId) -> Result<Vec<DeliveryAttempt>> {
    Ok(alert_delivery::Entity::find()
        .filter(alert_delivery::Column::AlertId.eq(id.0))
        .order_by_asc(alert_delivery::Column::Attempt)
        .order_by_asc(alert_delivery::Column::Id)
        .all(conn)
        .await
        .context("listing alert deliveries")?
        .into_iter()
        .map(|m| DeliveryAttempt {
            attempt: u32::try_from(m.attempt).unwrap_or_default(),
            started_at: time::from_micros(m.started_at),
            duration_ms: m.duration_ms,
            status_code: m.status_code.and_then(|c| u16::try_from(c).ok()),
            error: m.error,
            succeeded: m.succeeded,
            target: m.target.unwrap_or_else(|| WEBHOOK_TARGET.to_owned()),
        })
        .collect())
}

/// How many delivery attempts an alert has had to one target.
pub async fn attempts_so_far(
    conn: &impl ConnectionTrait,
    id: AlertId,
    target: &str,
) -> Result<u32> {
    let mut q = alert_delivery::Entity::find()
        .select_only()
        .expr_as(Expr::cust("COUNT(*)"), "n")
        .filter(alert_delivery::Column::AlertId.eq(id.0));
    q = if target == WEBHOOK_TARGET {
        q.filter(
            sea_orm::Condition::any()
                .add(alert_delivery::Column::Target.is_null())
                .add(alert_delivery::Column::Target.eq(target)),
        )
    } else {
        q.filter(alert_delivery::Column::Target.eq(target))
    };
    let n: Option<i64> = q
        .into_tuple()
        .one(conn)
        .await
        .context("counting alert deliveries")?;
    Ok(u32::try_from(n.unwrap_or(0)).unwrap_or(u32::MAX))
}

/// Records one delivery attempt.
pub async fn record_attempt(
    conn: &impl ConnectionTrait,
    id: AlertId,
    attempt: &DeliveryAttempt,
) -> Result<()> {
    alert_delivery::Entity::insert(alert_delivery::ActiveModel {
        alert_id: Set(id.0),
        attempt: Set(i32::try_from(attempt.attempt).unwrap_or(i32::MAX)),
        started_at: Set(time::to_micros(attempt.started_at)),
        duration_ms: Set(attempt.duration_ms),
        status_code: Set(attempt.status_code.map(i32::from)),
        error: Set(attempt.error.clone()),
        succeeded: Set(attempt.succeeded),
        target: Set(Some(attempt.target.clone())),
        ..Default::default()
    })
    .exec_without_returning(conn)
    .await
    .context("recording an alert delivery")?;
    Ok(())
}

/// An alert's destinations and where each stands, in the order they were recorded.
pub async fn targets(
    conn: &impl ConnectionTrait,
    id: AlertId,
) -> Result<Vec<(String, DeliveryStatus)>> {
    alert_target::Entity::find()
        .filter(alert_target::Column::AlertId.eq(id.0))
        .order_by_asc(alert_target::Column::Target)
        .all(conn)
        .await
        .context("reading an alert's destinations")?
        .into_iter()
        .map(|t| {
            let status = t.status.parse().map_err(|e| corrupt("target status", e))?;
            Ok((t.target, status))
        })
        .collect()
}

/// Records where one destination stands, then settles the alert: once no destination
/// is pending, the alert is `FAILED` if one failed, else `DELIVERED` if one was
/// delivered, else `SKIPPED`. Settling only ever writes a final state computed from
/// final states, so two workers finishing at once write the same answer.
pub async fn set_target(
    conn: &impl ConnectionTrait,
    id: AlertId,
    target: &str,
    status: DeliveryStatus,
) -> Result<()> {
    let mut update = alert_target::Entity::update_many()
        .col_expr(alert_target::Column::Status, Expr::val(status.as_str()))
        .filter(alert_target::Column::AlertId.eq(id.0))
        .filter(alert_target::Column::Target.eq(target));
    if status == DeliveryStatus::Delivered {
        update = update.col_expr(
            alert_target::Column::DeliveredAt,
            Expr::val(time::to_micros(time::now())),
        );
    }
    update
        .exec(conn)
        .await
        .context("recording a destination's delivery state")?;
    let all = targets(conn, id).await?;
    if all.iter().any(|(_, s)| *s == DeliveryStatus::Pending) {
        return Ok(());
    }
    let settled = if all.iter().any(|(_, s)| *s == DeliveryStatus::Failed) {
        DeliveryStatus::Failed
    } else if all.iter().any(|(_, s)| *s == DeliveryStatus::Delivered) {
        DeliveryStatus::Delivered
    } else {
        DeliveryStatus::Skipped
    };
    set_delivery(conn, id, settled).await
}

/// Sets the delivery state (and the delivery time when delivered).
pub async fn set_delivery(
    conn: &impl ConnectionTrait,
    id: AlertId,
    status: DeliveryStatus,
) -> Result<()> {
    let mut update = alert::Entity::update_many()
        .col_expr(alert::Column::DeliveryStatus, Expr::val(status.as_str()))
        .filter(alert::Column::Id.eq(id.0));
    if status == DeliveryStatus::Delivered {
        update = update.col_expr(
            alert::Column::DeliveredAt,
            Expr::val(time::to_micros(time::now())),
        );
    }
    update
        .exec(conn)
        .await
        .context("recording an alert's delivery state")?;
    Ok(())
}

/// Alerts not yet handed to the dispatcher, oldest first.
pub async fn undispatched(conn: &impl ConnectionTrait, limit: u64) -> Result<Vec<Alert>> {
    alert::Entity::find()
        .filter(alert::Column::DispatchedAt.is_null())
        .order_by_asc(alert::Column::FiredAt)
        .limit(limit)
        .all(conn)
        .await
        .context("reading undispatched alerts")?
        .into_iter()
        .map(Alert::try_from)
        .collect()
}

/// Claims an alert for announcement: true for exactly one caller, whatever the
/// number of dispatchers racing for it.
pub async fn mark_dispatched(conn: &impl ConnectionTrait, id: AlertId) -> Result<bool> {
    let done = alert::Entity::update_many()
        .col_expr(
            alert::Column::DispatchedAt,
            Expr::val(time::to_micros(time::now())),
        )
        .filter(alert::Column::Id.eq(id.0))
        .filter(alert::Column::DispatchedAt.is_null())
        .exec(conn)
        .await
        .context("claiming an alert")?;
    Ok(done.rows_affected == 1)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The JSON body a WEBHOOK channel receives for an anomaly alert: the watch, the UTC
/// day, its spend, the trailing mean, the factor and the summary.
pub fn anomaly_webhook_body(a: &Alert) -> Result<Vec<u8>> {
    let body = json!({
        "type": "anomaly.detected",
        "alertId": a.id.to_string(),
        "watch": { "name": a.budget_name },
        "projectId": a.owner_project.map(|p| p.to_string()),
        "day": a.period.start.map(|s| s.format("%Y-%m-%d").to_string()),
        "spentUsd": a.spent.to_string(),
        "meanUsd": a.amount.to_string(),
        "factor": (rust_decimal::Decimal::from(a.threshold) / rust_decimal::Decimal::ONE_HUNDRED)
            .normalize()
            .to_string(),
        "firedAt": rfc3339(a.fired_at),
        "summary": a.summary,
    });
    serde_json::to_vec(&body).context("encoding a webhook body")
}

/// The JSON body of an alert's webhook: budget, threshold, spent, amount, period and
/// the plain-text summary. Money is a decimal string, as everywhere in the API.
pub fn webhook_body(a: &Alert, b: &Budget) -> Result<Vec<u8>> {
    let body = json!({
        "type": "budget.threshold_reached",
        "alertId": a.id.to_string(),
        "budget": { "id": b.id.to_string(), "name": a.budget_name },
        "threshold": a.threshold,
        "spentUsd": a.spent.to_string(),
        "amountUsd": a.amount.to_string(),
        "percentUsed": percent(a.spent, a.amount).to_string(),
        "period": {
            "kind": b.period.as_str(),
            "timezone": b.timezone.name(),
            "start": a.period.start.map(rfc3339),
            "end": a.period.end.map(rfc3339),
        },
        "firedAt": rfc3339(a.fired_at),
        "summary": a.summary,
    });
    serde_json::to_vec(&body).context("encoding a webhook body")
}
