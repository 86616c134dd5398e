//! Insights on tracked spend: recommendations (what to change, and what it would have
//! saved over the window) and anomalies (days far above their trailing baseline).
//!
//! **Savings are computed, never guessed.** For each significant (endpoint, provider,
//! model) pair, the real token mix over the window (every token class summed, and the
//! requests) is priced again with the same cost function as ingest:
//!
//! - *Cheaper model*: every model in the price book of the same kind whose capability
//!   tier is at least as high (`frontier` > `strong` > `balanced` > `fast`), priced on
//!   that mix; the cheapest wins if it is strictly cheaper than what the pair cost.
//! - *Batch API*: the mix at the model's batch rates, for endpoints whose traffic is not
//!   latency-sensitive: a name that says so (`batch`, `nightly`, `report`, `eval`,
//!   `backfill`, `etl`, `offline`, `cron`, `job`, `index`, `embed`, `summar`) or an
//!   average latency of at least 10 s.
//! - *Prompt caching*: for input-heavy pairs (≥ 1,024 uncached input tokens per request)
//!   that read less than 10% of their input from the cache, on models with a cheaper
//!   cache-read rate: half of the uncached input moved to cache reads (a stated,
//!   conservative fraction), and one cache write per ten requests where writes cost
//!   more than input.
//!
//! A recommendation appears only with positive savings. Its confidence says how sure
//! the change is to keep the work the same, by a fixed rule: a cheaper model of the same
//! provider 0.80, of another provider 0.60; the Batch API 0.70 for an endpoint whose
//! name says it is offline work, 0.50 when only its latency does; prompt caching 0.50
//! (the share of repeated prefix is a guess).

use crate::domain::analytics::{self, Dimension, Need};
use crate::domain::auth::{Principal, Scope};
use crate::domain::error::{Error, Result};
use crate::domain::money::Usd;
use crate::domain::price::book::PriceBook;
use crate::domain::price::rates::{RateCard, TokenClass};
use crate::domain::provider::Provider;
use crate::domain::time;
use crate::domain::tokens::{ServiceTier, TokenCounts};
use crate::domain::usage::query::UsageFilter;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use rust_decimal::Decimal;
use sea_orm::ConnectionTrait;
use std::collections::{BTreeMap, BTreeSet};

/// What to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Use a cheaper model of comparable capability.
    CheaperModel,
    /// Send the traffic through the provider's Batch API.
    BatchApi,
    /// Cache the large repeated inputs.
    PromptCaching,
}

/// One recommendation.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    /// What to do.
    pub action: Action,
    /// The endpoint (`None`: recorded without one).
    pub endpoint: Option<String>,
    /// Provider.
    pub provider: Provider,
    /// Model as recorded.
    pub model: String,
    /// The alternative model, for `CheaperModel`.
    pub alternative: Option<(Provider, String)>,
    /// What the pair cost over the window.
    pub current: Usd,
    /// What it would have cost.
    pub projected: Usd,
    /// `current - projected`, always positive.
    pub savings: Usd,
    /// 0 to 1.
    pub confidence: Decimal,
    /// Why, in words and numbers.
    pub reasoning: String,
}

/// Options of [`recommendations`].
#[derive(Debug, Clone, Copy)]
pub struct RecommendOptions {
    /// A pair is significant from this share of the window's spend (percent).
    pub min_share_pct: Decimal,
}

impl Default for RecommendOptions {
    fn default() -> Self {
        RecommendOptions {
            min_share_pct: Decimal::ONE,
        }
    }
}

/// Tracked spend of one (endpoint, provider, model) pair.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pair {
    endpoint: Option<String>,
    provider: String,
    model: String,
    cost: i128,
    requests: i64,
    tokens: TokenCounts,
    latency_avg_ms: Option<i64>,
}

fn tier_rank(tier: Option<&str>) -> Option<u8> {
    match tier? {
        "frontier" => Some(4),
        "strong" => Some(3),
        "balanced" => Some(2),
        "fast" => Some(1),
        _ => None,
    }
}

const NOT_INTERACTIVE: &[&str] = &[
    "batch", "nightly", "report", "eval", "backfill", "etl", "offline", "cron", "job", "index",
    "embed", "summar",
];

/// Spend per endpoint, provider and model whose share of the window's spend is at
/// least `min_share_pct` percent, from the endpoint rollups (raw
/// events only at the edges, or when the filter needs a value of a project's long
/// tail). Two reads: the cost of every pair (three measures of each rollup row), then
/// every measure of the significant pairs' models only, since most pairs of a large
/// ledger are below the share and their token mix would never be looked at.
async fn pairs(
    conn: &impl ConnectionTrait,
    filter: &UsageFilter,
    min_share_pct: Decimal,
) -> Result<Vec<Pair>> {
    let dims = [Dimension::Endpoint, Dimension::Provider, Dimension::Model];
    let costs = analytics::tracked_sums_of(conn, filter, &dims, None, Need::COST).await?;
    let total = costs.iter().fold(Usd::ZERO, |t, (_, _, m)| {
        t.saturating_add(Usd::from_wide_nanos(m.cost_nanos))
    });
    let share = |cost: i128| {
        if total > Usd::ZERO {
            Usd::from_wide_nanos(cost).to_decimal() * Decimal::from(100) / total.to_decimal()
        } else {
            Decimal::ZERO
        }
    };
    let significant: BTreeSet<Vec<Option<String>>> = costs
        .into_iter()
        .filter(|(_, _, m)| m.cost_nanos > 0 && share(m.cost_nanos) >= min_share_pct)
        .map(|(keys, _, _)| keys)
        .collect();
    if significant.is_empty() {
        return Ok(vec![]);
    }
    let mut narrowed = filter.clone();
    narrowed.models = significant
        .iter()
        .filter_map(|k| k.get(2).cloned().flatten())
        .collect::<BTreeSet<String>>()
        .into_iter()
        .collect();
    Ok(
        analytics::tracked_sums_of(conn, &narrowed, &dims, None, Need::ALL)
            .await?
            .into_iter()
            // A pair is priced per event's size: sums beyond an `i64` (only hostile
            // input gets there) have no recommendation.
            .filter(|(keys, _, _)| significant.contains(keys))
            .filter_map(|(keys, _, m)| {
                let mut keys = keys.into_iter();
                Some(Pair {
                    endpoint: keys.next().flatten(),
                    provider: keys.next().flatten().unwrap_or_default(),
                    model: keys.next().flatten().unwrap_or_default(),
                    cost: m.cost_nanos,
                    requests: i64::try_from(m.requests).ok()?,
                    tokens: m.tokens.narrow()?,
                    // Whole milliseconds, rounded down: the mean is at least 10 s
                    // exactly when this is.
                    latency_avg_ms: (m.latency_count > 0)
                        .then(|| i64::try_from(m.latency_sum / m.latency_count).ok())
                        .flatten(),
                })
            })
            .collect(),
    )
}

/// The prompt-caching estimate of one pair's token mix: what it cost at standard
/// rates, and what it would have cost with half of its uncached input read from the
/// cache instead (plus one cache write per ten moved tokens where writes cost more
/// than input). `None` unless the pair qualifies (≥ 1,024 uncached input tokens per
/// request, under 10% of its input already read from the cache, a cache-read rate
/// below the input rate) and the estimate is strictly cheaper.
fn caching_estimate(card: &RateCard, t: TokenCounts, requests: i64) -> Option<(Usd, Usd)> {
    let read = card.rate(TokenClass::CacheRead, ServiceTier::Standard, false, None);
    let input = card.rate(TokenClass::Input, ServiceTier::Standard, false, None);
    let write = card.rate(TokenClass::CacheWrite, ServiceTier::Standard, false, None);
    let all_input = t.input + t.cache_read + t.cache_write + t.cache_write_1h;
    if requests <= 0
        || t.input / requests < 1_024
        || t.cache_read * 10 >= all_input
        || read >= input
    {
        return None;
    }
    let moved = t.input / 2;
    let written = if write > input { moved / 10 } else { 0 };
    let cached = TokenCounts {
        input: t.input - moved - written,
        cache_read: t.cache_read + moved,
        cache_write: t.cache_write + written,
        ..t
    };
    let before = card.cost(&t, requests, ServiceTier::Standard, None)?;
    let after = card.cost(&cached, requests, ServiceTier::Standard, None)?;
    (after.nanos() < before.nanos()).then_some((before, after))
}

fn usd(d: Decimal) -> String {
    format!("${:.2}", d.round_dp(2))
}

/// Recommendations for the filter's window, largest savings first.
pub async fn recommendations(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    book: &PriceBook,
    filter: UsageFilter,
    options: RecommendOptions,
) -> Result<Vec<Recommendation>> {
    principal.require(Scope::Read)?;
    let filter = filter.authorized(principal)?;
    let at = filter.to.unwrap_or_else(time::now);
    let pairs = pairs(conn, &filter, options.min_share_pct).await?;
    let prices = book.effective_prices(at);
    let mut out = Vec::new();
    for pair in pairs {
        let Some(provider) = Provider::parse(&pair.provider) else {
            continue;
        };
        let Some(found) = book.find(&provider, &pair.model, at) else {
            continue;
        };
        let card = &found.price.card;
        let current = Usd::from_wide_nanos(pair.cost);
        let mut push =
            |action, alternative, projected: Usd, confidence: Decimal, reasoning: String| {
                if projected.nanos() < current.nanos() {
                    out.push(Recommendation {
                        action,
                        endpoint: pair.endpoint.clone(),
                        provider: provider.clone(),
                        model: pair.model.clone(),
                        alternative,
                        current,
                        projected,
                        savings: Usd::from_wide_nanos(current.nanos() - projected.nanos()),
                        confidence,
                        reasoning,
                    });
                }
            };
        let mix = format!(
            "{} requests, {} input, {} cached input and {} output tokens",
            pair.requests,
            pair.tokens.input + pair.tokens.cache_write + pair.tokens.cache_write_1h,
            pair.tokens.cache_read,
            pair.tokens.output
        );
        // A cheaper model of comparable capability.
        if let Some(rank) = tier_rank(found.price.tier.as_deref()) {
            let best = prices
                .iter()
                .filter(|p| {
                    p.kind == found.price.kind
                        && !(p.provider == provider && p.model == found.price.model)
                })
                .filter(|p| tier_rank(p.tier.as_deref()).is_some_and(|r| r >= rank))
                // An alternative must bill every unit the traffic used (audio, images,
                // searches): a text-only model is no alternative for a voice workload.
                .filter(|p| {
                    p.card
                        .missing_rate(&pair.tokens, pair.requests, ServiceTier::Standard, None)
                        .is_none()
                })
                .filter_map(|p| {
                    Some((
                        p,
                        p.card
                            .cost(&pair.tokens, pair.requests, ServiceTier::Standard, None)?,
                    ))
                })
                .min_by(|a, b| {
                    a.1.nanos()
                        .cmp(&b.1.nanos())
                        .then(a.0.model.cmp(&b.0.model))
                });
            if let Some((alt, projected)) = best {
                let same_provider = alt.provider == provider;
                let confidence = if same_provider {
                    Decimal::new(80, 2)
                } else {
                    Decimal::new(60, 2)
                };
                push(
                    Action::CheaperModel,
                    Some((alt.provider.clone(), alt.model.clone())),
                    projected,
                    confidence,
                    format!(
                        "{}/{} ({} tier) cost {} for {mix}; the same mix on {}/{} ({} tier) would have cost {}.",
                        provider,
                        pair.model,
                        found.price.tier.as_deref().unwrap_or("?"),
                        usd(current.to_decimal()),
                        alt.provider,
                        alt.model,
                        alt.tier.as_deref().unwrap_or("?"),
                        usd(projected.to_decimal())
                    ),
                );
            }
        }
        // The Batch API for traffic that is not latency-sensitive.
        let name = pair.endpoint.as_deref().unwrap_or("").to_ascii_lowercase();
        let by_name = NOT_INTERACTIVE.iter().any(|w| name.contains(w));
        let by_latency = pair.latency_avg_ms.is_some_and(|l| l >= 10_000);
        if (by_name || by_latency)
            && card.rate(TokenClass::Input, ServiceTier::Batch, false, None)
                < card.rate(TokenClass::Input, ServiceTier::Standard, false, None)
            && let Some(projected) =
                card.cost(&pair.tokens, pair.requests, ServiceTier::Batch, None)
        {
            let why = if by_name {
                format!("endpoint `{name}` reads as offline work")
            } else {
                format!(
                    "calls average {} s, so nobody waits on them",
                    pair.latency_avg_ms.unwrap_or(0) / 1000
                )
            };
            push(
                Action::BatchApi,
                None,
                projected,
                if by_name {
                    Decimal::new(70, 2)
                } else {
                    Decimal::new(50, 2)
                },
                format!(
                    "{why}; the Batch API prices {mix} at {} instead of {}.",
                    usd(projected.to_decimal()),
                    usd(current.to_decimal())
                ),
            );
        }
        // Prompt caching for large inputs billed uncached.
        let t = pair.tokens;
        let all_input = t.input + t.cache_read + t.cache_write + t.cache_write_1h;
        if let Some((before, after)) = caching_estimate(card, t, pair.requests) {
            let saved = before.nanos() - after.nanos();
            push(
                Action::PromptCaching,
                None,
                Usd::from_wide_nanos(current.nanos() - saved.min(current.nanos())),
                Decimal::new(50, 2),
                format!(
                    "{} uncached input tokens per request and {}% read from the cache; caching half of the input \
                         (a conservative share of repeated prompt prefix) would save {} over the window.",
                    t.input / pair.requests,
                    if all_input > 0 {
                        t.cache_read * 100 / all_input
                    } else {
                        0
                    },
                    usd(Decimal::from(saved) / Decimal::from(1_000_000_000))
                ),
            );
        }
    }
    out.sort_by(|a, b| {
        b.savings
            .nanos()
            .cmp(&a.savings.nanos())
            .then(a.action.cmp(&b.action))
    });
    Ok(out)
}

// ---------------------------------------------------------------------------------
// Anomalies

/// What an anomaly is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// A provider's spend.
    Provider,
    /// A model's spend.
    Model,
    /// An endpoint's spend.
    Endpoint,
}

/// A day far above its trailing baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    /// Provider, model or endpoint.
    pub subject: Subject,
    /// Its value.
    pub value: String,
    /// The UTC day.
    pub day: NaiveDate,
    /// What it cost that day.
    pub spend: Usd,
    /// Mean daily spend over the trailing days.
    pub baseline: Usd,
    /// `spend / baseline` (2 decimals).
    pub factor: Decimal,
    /// What drove it: the largest contributors that day (model, endpoint or project,
    /// with their cost), largest first.
    pub drivers: Vec<(String, Usd)>,
}

/// Options of [`anomalies`].
#[derive(Debug, Clone, Copy)]
pub struct AnomalyOptions {
    /// Trailing days the baseline averages.
    pub baseline_days: i64,
    /// A day is anomalous from this multiple of its baseline.
    pub min_factor: Decimal,
    /// ... and at least this much above it.
    pub min_excess: Usd,
}

impl Default for AnomalyOptions {
    fn default() -> Self {
        AnomalyOptions {
            baseline_days: 7,
            min_factor: Decimal::from(3),
            min_excess: Usd::from_nanos(1_000_000_000),
        }
    }
}

const DAY_MICROS: i64 = 86_400_000_000;

/// One value's spend per day (days since the epoch).
type DailySeries = BTreeMap<i64, i128>;

/// The first two group keys of a row of sums.
fn two(keys: Vec<Option<String>>) -> (Option<String>, Option<String>) {
    let mut keys = keys.into_iter();
    (keys.next().flatten(), keys.next().flatten())
}

/// A day that stood out, before its drivers are read.
struct Candidate {
    subject: Subject,
    value: String,
    day: i64,
    spend: i128,
    baseline: i128,
    factor: Decimal,
}

/// Anomalous days in the filter's window (UTC days), by day then size.
///
/// Daily spend per provider and per model comes from the model rollups (one row per
/// provider, model and day, which also name each provider's models), per endpoint
/// from the daily endpoint rollup summed by endpoint; only cost is read. What drove a
/// model's or an endpoint's day (its endpoints, its models) is read afterwards, for
/// the days that stood out only: one day of the endpoint rollup each, where reading
/// every (model, endpoint, day) of the window took most of the time.
pub async fn anomalies(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    filter: UsageFilter,
    options: AnomalyOptions,
) -> Result<Vec<Anomaly>> {
    principal.require(Scope::Read)?;
    if !(1..=90).contains(&options.baseline_days) {
        return Err(Error::invalid("baselineDays", "must be between 1 and 90"));
    }
    let filter = filter.authorized(principal)?;
    let to = filter.to.unwrap_or_else(time::now);
    let from = filter.from.unwrap_or(to - TimeDelta::days(30));
    let first_day = from.date_naive();
    // Read the baseline days before the window too.
    let mut wide = filter.clone();
    wide.from = Some(day_start(first_day) - TimeDelta::days(options.baseline_days));
    wide.to = Some(to);
    let need = Need::COST;
    let day_of = |at: Option<i64>| at.unwrap_or(0).div_euclid(DAY_MICROS);
    let mut by_subject: BTreeMap<Subject, BTreeMap<String, DailySeries>> = BTreeMap::new();
    let mut add = |subject: Subject, value: String, day: i64, cost: i128| {
        let e = by_subject
            .entry(subject)
            .or_default()
            .entry(value)
            .or_default()
            .entry(day)
            .or_default();
        *e = e.saturating_add(cost);
    };
    // A provider's models on each day: its drivers.
    let mut models_of: BTreeMap<(String, i64), Vec<(String, i128)>> = BTreeMap::new();
    let dims = [Dimension::Provider, Dimension::Model];
    for (keys, at, m) in
        analytics::tracked_sums_of(conn, &wide, &dims, Some(DAY_MICROS), need).await?
    {
        let (provider, model) = two(keys);
        let day = day_of(at);
        if let Some(model) = &model {
            add(Subject::Model, model.clone(), day, m.cost_nanos);
        }
        if let Some(provider) = provider {
            add(Subject::Provider, provider.clone(), day, m.cost_nanos);
            models_of
                .entry((provider, day))
                .or_default()
                .push((model.unwrap_or_default(), m.cost_nanos));
        }
    }
    let dims = [Dimension::Endpoint];
    for (keys, at, m) in
        analytics::tracked_sums_of(conn, &wide, &dims, Some(DAY_MICROS), need).await?
    {
        if let Some(endpoint) = keys.into_iter().next().flatten() {
            add(Subject::Endpoint, endpoint, day_of(at), m.cost_nanos);
        }
    }
    let first = time::to_micros(day_start(first_day)) / DAY_MICROS;
    let mut candidates = Vec::new();
    for (subject, days) in by_subject {
        for (value, series) in days {
            // A baseline needs a full trailing window of history: a series that just
            // started is new, not anomalous.
            let Some(&seen) = series.keys().next() else {
                continue;
            };
            for (&day, &spend) in series.range(first.max(seen + options.baseline_days)..) {
                let trailing: i128 = (day - options.baseline_days..day)
                    .map(|d| series.get(&d).copied().unwrap_or(0))
                    .fold(0, i128::saturating_add);
                let baseline = trailing / i128::from(options.baseline_days);
                if baseline <= 0 {
                    continue;
                }
                let factor = Usd::from_wide_nanos(spend).to_decimal()
                    / Usd::from_wide_nanos(baseline).to_decimal();
                if factor < options.min_factor || spend - baseline < options.min_excess.nanos() {
                    continue;
                }
                candidates.push(Candidate {
                    subject,
                    value: value.clone(),
                    day,
                    spend,
                    baseline,
                    factor,
                });
            }
        }
    }
    // Each model's endpoints and each endpoint's models, on the days a model or an
    // endpoint stood out (within the window's bounds, as the series were summed).
    let mut pairs_on: BTreeMap<i64, Vec<(String, Option<String>, i128)>> = BTreeMap::new();
    for c in &candidates {
        if c.subject == Subject::Provider || pairs_on.contains_key(&c.day) {
            continue;
        }
        // A flagged day starts at or after the window's (day-aligned) start; the last
        // one may end early, at `to`.
        let mut one_day = wide.clone();
        let start = time::from_micros(c.day * DAY_MICROS);
        one_day.from = Some(start);
        one_day.to = Some(to.min(start + TimeDelta::days(1)));
        let dims = [Dimension::Model, Dimension::Endpoint];
        let rows = analytics::tracked_sums_of(conn, &one_day, &dims, None, need)
            .await?
            .into_iter()
            .filter_map(|(keys, _, m)| {
                let (model, endpoint) = two(keys);
                Some((model?, endpoint, m.cost_nanos))
            })
            .collect();
        pairs_on.insert(c.day, rows);
    }
    let mut out = Vec::with_capacity(candidates.len());
    for c in candidates {
        let drivers: Vec<(String, i128)> = match c.subject {
            Subject::Provider => models_of
                .get(&(c.value.clone(), c.day))
                .cloned()
                .unwrap_or_default(),
            Subject::Model => pairs_on
                .get(&c.day)
                .into_iter()
                .flatten()
                .filter(|(model, _, _)| *model == c.value)
                .map(|(_, endpoint, cost)| (endpoint.clone().unwrap_or_default(), *cost))
                .collect(),
            Subject::Endpoint => pairs_on
                .get(&c.day)
                .into_iter()
                .flatten()
                .filter(|(_, endpoint, _)| endpoint.as_deref() == Some(c.value.as_str()))
                .map(|(model, _, cost)| (model.clone(), *cost))
                .collect(),
        };
        let mut drivers: Vec<(String, Usd)> = drivers
            .into_iter()
            .filter(|(_, c)| *c > 0)
            .map(|(w, c)| (w, Usd::from_wide_nanos(c)))
            .collect();
        drivers.sort_by(|a, b| b.1.nanos().cmp(&a.1.nanos()).then(a.0.cmp(&b.0)));
        drivers.truncate(3);
        out.push(Anomaly {
            subject: c.subject,
            value: c.value,
            day: time::from_micros(c.day * DAY_MICROS).date_naive(),
            spend: Usd::from_wide_nanos(c.spend),
            baseline: Usd::from_wide_nanos(c.baseline),
            factor: c.factor.round_dp(2).normalize(),
            drivers,
        });
    }
    out.sort_by(|a, b| {
        a.day
            .cmp(&b.day)
            .then(b.spend.nanos().cmp(&a.spend.nanos()))
            .then(a.subject.cmp(&b.subject))
    });
    Ok(out)
}

fn day_start(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(chrono::NaiveTime::MIN).and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tiers_rank_capability() {
        assert!(tier_rank(Some("frontier")) > tier_rank(Some("strong")));
        assert!(tier_rank(Some("strong")) > tier_rank(Some("balanced")));
        assert!(tier_rank(Some("balanced")) > tier_rank(Some("fast")));
        assert_eq!(tier_rank(Some("embedding")), None);
        assert_eq!(tier_rank(None), None);
    }

    proptest! {
        /// The caching estimate the recommendations use: where cache writes cost no
        /// more than input, it saves exactly half the uncached input tokens times the
        /// difference between the input and cache-read rates (worked out by hand:
        /// rates in cents per million tokens are 10 nano-dollars per token per cent);
        /// where writes cost more, it is offered only when it still saves.
        #[test]
        fn the_caching_estimate_saves_exactly_what_the_rates_say(
            per_request in 1_024i64..20_000, requests in 1i64..5_000, output in 0i64..5_000_000,
            input_cents in 2i64..2_000, read_share in 0i64..100, write_cents in 0i64..5_000,
        ) {
            use crate::domain::price::rates::RateSet;
            let read_cents = input_cents * read_share / 100; // below input_cents
            let card = RateCard {
                standard: RateSet {
                    input: Some(Decimal::new(input_cents, 2)),
                    output: Some(Decimal::new(1000, 2)),
                    cache_read: Some(Decimal::new(read_cents, 2)),
                    cache_write: Some(Decimal::new(write_cents, 2)),
                    ..RateSet::default()
                },
                ..RateCard::default()
            };
            let input = per_request * requests;
            let t = TokenCounts { input, output, ..TokenCounts::default() };
            let estimate = caching_estimate(&card, t, requests);
            if write_cents <= input_cents {
                let (before, after) = estimate.expect("a qualifying pair gets an estimate");
                let moved = input / 2;
                prop_assert_eq!(before.nanos() - after.nanos(), i128::from(moved * (input_cents - read_cents) * 10));
            } else if let Some((before, after)) = estimate {
                prop_assert!(after.nanos() < before.nanos());
            }
            // Already reading a tenth of its input from the cache: no estimate.
            let warm = TokenCounts { cache_read: input / 9 + 1, ..t };
            prop_assert!(caching_estimate(&card, warm, requests).is_none());
        }
    }
}
