//! GraphQL subscriptions (served over `/graphql/ws`, graphql-transport-ws): live cost
//! updates with running totals, and alerts as they fire.

use super::alert::{AlertFilterInput, AlertGql};
use super::context::ContextExt;
use super::error::{GqlResult, to_gql};
use super::scalars::Decimal;
use super::scalars::Timestamp;
use super::usage::{UsageEventGql, UsageFilterInput};
use crate::domain::calendar;
use crate::domain::live::{self, ChangeKind, CostUpdate, OnOverflow, Total};
use crate::domain::{Error, alert};
use async_graphql::{Context, Enum, Object, SimpleObject, Subscription as GqlSubscription};
use chrono_tz::Tz;
use futures::{Stream, StreamExt};
use std::sync::Arc;

/// Put into a websocket connection's data by the transport: what to do when one of
/// the connection's subscriptions cannot keep up (close the socket with a reason).
#[derive(Clone)]
pub struct SlowSubscriber(pub OnOverflow);

/// What happened to the ledger.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "CostChangeKind", remote = "ChangeKind")]
pub enum ChangeKindGql {
    /// Events were recorded.
    Ingested,
    /// Events were re-priced.
    Repriced,
}

/// A running total over one calendar period.
#[derive(SimpleObject)]
#[graphql(name = "CostTotal")]
pub struct CostTotalGql {
    /// Start (inclusive).
    pub start: Timestamp,
    /// End (exclusive).
    pub end: Timestamp,
    /// Cost of the subscription's filter in the period (exact).
    pub cost_usd: Decimal,
}

impl From<Total> for CostTotalGql {
    fn from(t: Total) -> Self {
        CostTotalGql {
            start: t.start.into(),
            end: t.end.into(),
            cost_usd: t.cost.to_decimal().into(),
        }
    }
}

/// One or more committed changes of the ledger that passed the filter.
pub struct CostUpdateGql {
    update: CostUpdate,
    timezone: Tz,
}

#[Object(name = "CostUpdate")]
impl CostUpdateGql {
    /// The (last) change's number (unique across processes; each change is delivered
    /// once). On SQLite changes commit one at a time and the number increases. On
    /// PostgreSQL changes commit side by side (large batches, several servers), so one
    /// numbered lower can arrive after one numbered higher: order by it if the order
    /// matters.
    async fn sequence(&self) -> i64 {
        self.update.sequence()
    }
    /// How many changes this update carries: more than one when changes queued up
    /// while the subscriber was busy (they are then delivered together).
    async fn changes(&self) -> i64 {
        self.update.changes() as i64
    }
    /// Recording or re-pricing (changes delivered together are of one kind).
    async fn kind(&self) -> ChangeKindGql {
        self.update.kind().into()
    }
    /// How many of the changes' events passed the filter.
    async fn event_count(&self) -> i64 {
        self.update.event_count() as i64
    }
    /// Those events (their cost after the change), at most `first`.
    async fn events(&self, #[graphql(default = 100)] first: i64) -> Vec<UsageEventGql> {
        self.update
            .events()
            .take(first.clamp(0, 10_000) as usize)
            .map(|c| UsageEventGql(c.event.clone()))
            .collect()
    }
    /// How much the changes moved the filter's cost.
    async fn delta_usd(&self) -> Decimal {
        self.update.delta.to_decimal().into()
    }
    /// Today's total (in `timezone`), after the change.
    async fn today(&self) -> CostTotalGql {
        self.update.today.into()
    }
    /// This month's total (in `timezone`), after the change.
    async fn month(&self) -> CostTotalGql {
        self.update.month.into()
    }
    /// The zone of `today` and `month`.
    async fn timezone(&self) -> &str {
        self.timezone.name()
    }
}

fn on_overflow(ctx: &Context<'_>) -> OnOverflow {
    ctx.data_opt::<SlowSubscriber>()
        .map(|s| s.0.clone())
        .unwrap_or_else(|| Arc::new(|| {}))
}

/// The subscription root.
#[derive(Default)]
pub struct Subscription;

#[GqlSubscription]
impl Subscription {
    /// Every recorded or re-priced event that passes `filter` (a project-bound token
    /// only ever sees its own project), with exact running totals of the filter for
    /// today and this month in `timezone` (default UTC). A subscriber that cannot keep
    /// up is disconnected (close code 4008) rather than slowing ingest down.
    async fn cost_updates(
        &self,
        ctx: &Context<'_>,
        filter: Option<UsageFilterInput>,
        timezone: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<CostUpdateGql>> + use<>>
    {
        let state = ctx.state()?;
        let filter = filter.unwrap_or_default().parse().gql()?;
        let tz = match timezone {
            Some(name) => calendar::parse_tz(&name)
                .map_err(|e| Error::invalid("timezone", e))
                .gql()?,
            None => Tz::UTC,
        };
        let stream = live::cost_updates(
            state.live.clone(),
            state.db.clone(),
            ctx.principal(),
            filter,
            tz,
            on_overflow(ctx),
        )
        .await
        .gql()?;
        Ok(stream.map(move |r| {
            r.map(|update| CostUpdateGql {
                update,
                timezone: tz,
            })
            .map_err(to_gql)
        }))
    }

    /// Alerts as they fire (in any process), restricted to `filter` and to what the
    /// caller may read.
    async fn alert_raised(
        &self,
        ctx: &Context<'_>,
        filter: Option<AlertFilterInput>,
    ) -> async_graphql::Result<impl Stream<Item = AlertGql> + use<>> {
        let state = ctx.state()?;
        let filter: alert::AlertFilter = filter.unwrap_or_default().parse().gql()?;
        let stream = live::alerts_raised(
            state.live.clone(),
            ctx.principal(),
            filter,
            on_overflow(ctx),
        )
        .gql()?;
        Ok(stream.map(|a| AlertGql((*a).clone())))
    }
}
