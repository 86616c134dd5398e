//! The event log in offset pages, for the REST API existing dashboards speak, and an
//! event's cost split into input and output.

use super::*;

/// What `logs` sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSort {
    /// When it happened.
    Timestamp,
    /// Model.
    Model,
    /// Endpoint.
    Endpoint,
    /// Provider.
    Provider,
    /// Total tokens.
    TotalTokens,
    /// Cost.
    Cost,
    /// Latency.
    Latency,
}

impl LogSort {
    fn expr(self) -> &'static str {
        match self {
            LogSort::Timestamp => "occurred_at",
            LogSort::Model => "model",
            LogSort::Endpoint => "endpoint",
            LogSort::Provider => "provider",
            LogSort::TotalTokens => {
                "(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens + cache_write_1h_tokens)"
            }
            LogSort::Cost => "COALESCE(cost_nanos, -1)",
            LogSort::Latency => "COALESCE(latency_ms, -1)",
        }
    }
}

/// Most events per log page.
pub const MAX_LOG_PAGE: u64 = 100;

/// One page of events (1-based page numbers) and the total matching the filter.
pub async fn logs(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    filter: UsageFilter,
    sort: LogSort,
    descending: bool,
    page: u64,
    per_page: u64,
) -> Result<(Vec<crate::domain::usage::UsageEvent>, u64)> {
    use sea_orm::{EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
    principal.require(Scope::Read)?;
    if page == 0 {
        return Err(Error::invalid("page", "pages start at 1"));
    }
    if !(1..=MAX_LOG_PAGE).contains(&per_page) {
        return Err(Error::invalid(
            "per_page",
            format!("must be between 1 and {MAX_LOG_PAGE}"),
        ));
    }
    let filter = filter.authorized(principal)?;
    let total = usage_event::Entity::find()
        .filter(filter.condition())
        .count(conn)
        .await
        .context("counting usage events")?;
    let order = if descending {
        sea_orm::Order::Desc
    } else {
        sea_orm::Order::Asc
    };
    let rows = usage_event::Entity::find()
        .filter(filter.condition())
        .order_by(Expr::cust(sort.expr()), order.clone())
        .order_by(usage_event::Column::Id, order)
        .offset((page - 1).saturating_mul(per_page))
        .limit(per_page)
        .all(conn)
        .await
        .context("reading a page of usage events")?;
    let events = rows
        .into_iter()
        .map(crate::domain::usage::UsageEvent::try_from)
        .collect::<Result<Vec<_>>>()?;
    Ok((events, total))
}

/// An event's cost split into input (with cache reads and writes) and output, from
/// the rate card that priced it; `None` when it was not priced by a card (a reported
/// cost, or unpriced).
pub fn cost_split(
    book: &crate::domain::price::book::PriceBook,
    e: &crate::domain::usage::UsageEvent,
) -> Option<(Usd, Usd)> {
    use crate::domain::price::rates::TokenClass;
    let total = e.cost?;
    if e.cost_source != crate::domain::usage::CostSource::Computed {
        return None;
    }
    let found = book.find(&e.provider, &e.model, e.occurred_at)?;
    let card = &found.price.card;
    let long = card.is_long_context(&e.tokens, e.requests);
    let rate = card.rate(TokenClass::Output, e.service_tier, long, None);
    let output = Usd::from_decimal(
        (rust_decimal::Decimal::from(e.tokens.output) * rate
            / rust_decimal::Decimal::from(1_000_000))
        .round_dp(9),
    )?;
    let output = output.min(total);
    Some((Usd::from_wide_nanos(total.nanos() - output.nanos()), output))
}
