//! Analytics: cost summaries, breakdowns and trends, in three views of the same spend.
//!
//! - `TRACKED`: the events applications recorded, priced by aispend.
//! - `REPORTED`: what providers reported (synced cost and usage buckets, manual
//!   entries) plus fixed subscriptions spread evenly over their days.
//! - `BEST`: per provider and UTC day, the reported numbers when the provider has
//!   reported money for that day, else the tracked ones — never both. Each bucket says
//!   which it used (`TRACKED`, `REPORTED` or `MIXED` when providers differ).
//!
//! Tracked numbers are summed in SQL per provider and 15-minute slot (every IANA
//! offset is a multiple of 15 minutes), then folded into local buckets with
//! `calendar.rs`, so a day in `Europe/Berlin` is exact across a DST change. Money is
//! summed as nano-dollar integers: exact.
//!
//! Reports carry neither endpoints, sources nor end users: the REPORTED and BEST views
//! refuse filters and groupings by them rather than answer something else.

use crate::domain::auth::{Principal, Scope};
use crate::domain::calendar::{self, Granularity};
use crate::domain::error::{Context, Error, Result};
use crate::domain::ids::ProjectId;
use crate::domain::money::{Usd, Wide, clamp_i64};
use crate::domain::price::rates::TokenClass;
use crate::domain::reconciliation::{Sql, filter_in, sum};
use crate::domain::rollup;
use crate::domain::subscription;
use crate::domain::time;
use crate::domain::tokens::TokenSums;
use crate::domain::usage::query::UsageFilter;
use crate::entity::usage_event;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use sea_orm::sea_query::Expr;
use sea_orm::{ConnectionTrait, QueryResult, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

mod filters;
mod latency;
mod logs;
mod tables;

pub use filters::{Filters, filters};
pub use latency::EXACT_PERCENTILES_UP_TO;
pub use latency::RawLatencyLimit;
use latency::{LatencyCounts, latency_counts, percentiles};
pub use logs::{LogSort, MAX_LOG_PAGE, cost_split, logs};
use tables::{Part, Table, split, tiers, unfolded_twin};

/// Which numbers to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum View {
    /// Recorded events.
    #[default]
    Tracked,
    /// Provider reports and fixed subscriptions.
    Reported,
    /// Reported where the provider has reported the day, tracked elsewhere.
    Best,
}

/// Which side a number came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Basis {
    /// Tracked events only.
    Tracked,
    /// Provider reports only.
    Reported,
    /// Some providers tracked, some reported.
    Mixed,
}

impl Basis {
    fn join(a: Option<Basis>, b: Basis) -> Basis {
        match a {
            None => b,
            Some(a) if a == b => a,
            Some(_) => Basis::Mixed,
        }
    }
}

/// Sums of one slice of spend, wide: no number of events overflows them (see
/// `money::Wide`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Measures {
    /// Cost in nano-dollars (unpriced events count zero).
    pub cost_nanos: i128,
    /// Requests.
    pub requests: i128,
    /// Token classes.
    pub tokens: TokenSums,
    /// Events (tracked) or report rows (reported).
    pub events: i128,
    /// Tracked events without a price.
    pub unpriced: i128,
    /// Sum of the reported latencies in milliseconds (tracked only).
    pub latency_sum: i128,
    /// Events that reported a latency.
    pub latency_count: i128,
}

impl Measures {
    /// Adds `o`. Every sum read from the ledger is below 10^28 and a question adds a
    /// handful of them, so the `i128` never fills; it saturates all the same.
    fn add(&mut self, o: &Measures) {
        self.cost_nanos = self.cost_nanos.saturating_add(o.cost_nanos);
        self.requests = self.requests.saturating_add(o.requests);
        self.tokens = self.tokens.add(&o.tokens);
        self.events = self.events.saturating_add(o.events);
        self.unpriced = self.unpriced.saturating_add(o.unpriced);
        self.latency_sum = self.latency_sum.saturating_add(o.latency_sum);
        self.latency_count = self.latency_count.saturating_add(o.latency_count);
    }

    /// The same sums with the opposite sign, to subtract a piece read from a rollup.
    fn negated(&self) -> Measures {
        Measures {
            cost_nanos: -self.cost_nanos,
            requests: -self.requests,
            tokens: self.tokens.negated(),
            events: -self.events,
            unpriced: -self.unpriced,
            latency_sum: -self.latency_sum,
            latency_count: -self.latency_count,
        }
    }

    /// Mean latency in milliseconds of the events that reported one: exact from the
    /// rollups' sums, so a breakdown needs raw events only for percentiles.
    pub fn average_latency(&self) -> Option<f64> {
        (self.latency_count > 0).then(|| self.latency_sum as f64 / self.latency_count as f64)
    }

    /// The cost.
    pub fn cost(&self) -> Usd {
        Usd::from_wide_nanos(self.cost_nanos)
    }

    /// Average cost per request (exact decimal, rounded to 9 places).
    pub fn average_cost(&self) -> Option<rust_decimal::Decimal> {
        let requests = crate::domain::money::decimal_of(self.requests);
        (self.requests > 0).then(|| {
            (self.cost().to_decimal() / requests)
                .round_dp(9)
                .normalize()
        })
    }

    /// All tokens (input, output, cache reads and writes, audio and image tokens;
    /// reasoning is part of output).
    pub fn total_tokens(&self) -> i128 {
        self.tokens.total()
    }
}

/// One piece of spend at an instant, before bucketing.
#[derive(Debug, Clone)]
struct Item {
    at: DateTime<Utc>,
    provider: String,
    model: String,
    project: Option<ProjectId>,
    measures: Measures,
    basis: Basis,
}

/// The filter checked for a view.
fn check_view(filter: &UsageFilter, view: View) -> Result<()> {
    if view != View::Tracked {
        let mut unsupported = vec![];
        if !filter.endpoints.is_empty() {
            unsupported.push("endpoints");
        }
        if !filter.sources.is_empty() {
            unsupported.push("sources");
        }
        if !filter.users.is_empty() {
            unsupported.push("users");
        }
        if let Some(first) = unsupported.first() {
            return Err(Error::invalid(
                format!("filter.{first}"),
                "provider reports carry no endpoints, sources or users: use view TRACKED to filter by them",
            ));
        }
    }
    Ok(())
}

/// The spend items of a filter in a view, authorised.
async fn items(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    filter: UsageFilter,
    view: View,
    mut grain: Grain,
) -> Result<Vec<Item>> {
    if view == View::Best {
        // BEST decides per provider and UTC day.
        grain.slot_micros = Some(grain.slot_micros.unwrap_or(DAY_MICROS).min(DAY_MICROS));
    }
    principal.require(Scope::Read)?;
    check_view(&filter, view)?;
    let filter = filter.authorized(principal)?;
    let tracked = if view == View::Reported {
        vec![]
    } else {
        tracked_items(conn, &filter, grain).await?
    };
    let reported = if view == View::Tracked {
        vec![]
    } else {
        reported_items(conn, &filter).await?
    };
    Ok(match view {
        View::Tracked => tracked,
        View::Reported => reported,
        View::Best => {
            // A provider's day is covered when it reported money for it.
            let covered: BTreeSet<(String, NaiveDate)> = reported
                .iter()
                .filter(|i| i.measures.cost_nanos != 0 || i.measures.events > 0)
                .map(|i| (i.provider.clone(), i.at.date_naive()))
                .collect();
            tracked
                .into_iter()
                .filter(|i| !covered.contains(&(i.provider.clone(), i.at.date_naive())))
                .chain(reported)
                .collect()
        }
    })
}

/// Every IANA offset is a multiple of 15 minutes.
const SLOT_MICROS: i64 = 900_000_000;
const DAY_MICROS: i64 = 86_400_000_000;

/// Which measures a question reads: a set of [`rollup::COLUMNS`]. Each measure a
/// rollup row sums costs its aggregate in every row read, so a question reads only
/// what its answer shows: anomalies and live totals the cost alone, a chart of spend
/// the cost, a table its columns. Cost, events and unpriced events are always read
/// (groups are ordered by cost, and a group or bucket exists when it has events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need(u32);

/// A measure a question can ask for beyond the cost (see [`Need::with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// The sum of one token class or billed unit; [`TokenClass::Request`] is the
    /// requests.
    Units(TokenClass),
    /// Every token class and billed unit (for totals over all of them).
    AllTokens,
    /// The latency sum and count (the mean; percentiles need the count).
    Latency,
}

/// The index in [`rollup::COLUMNS`] of the sum of a class.
fn units_column(class: TokenClass) -> usize {
    match class {
        TokenClass::Request => 1,
        TokenClass::Input => 2,
        TokenClass::Output => 3,
        TokenClass::CacheRead => 4,
        TokenClass::CacheWrite => 5,
        TokenClass::CacheWrite1h => 6,
        TokenClass::Reasoning => 7,
        TokenClass::AudioInput => 12,
        TokenClass::AudioOutput => 13,
        TokenClass::ImageInput => 14,
        TokenClass::ImageOutput => 15,
        TokenClass::Image => 16,
        TokenClass::WebSearch => 17,
        TokenClass::VideoSecond => 18,
    }
}

impl Need {
    /// Every measure of [`rollup::COLUMNS`].
    pub const ALL: Need = Need((1 << 19) - 1);
    /// Cost, events and unpriced events; the other measures read as zero.
    pub const COST: Need = Need(1 | 1 << 8 | 1 << 9);

    /// This set and the columns of `m`.
    pub fn with(self, m: Measure) -> Need {
        let bits = match m {
            Measure::Units(class) => 1 << units_column(class),
            Measure::AllTokens => TokenClass::ALL
                .into_iter()
                .filter(|&c| c != TokenClass::Request)
                .fold(0, |bits, c| bits | 1 << units_column(c)),
            Measure::Latency => 1 << 10 | 1 << 11,
        };
        Need(self.0 | bits)
    }

    /// The indexes in [`rollup::COLUMNS`] of the measures read, in the order selected.
    fn columns(self) -> impl Iterator<Item = usize> {
        (0..rollup::COLUMNS.len()).filter(move |i| self.0 & (1 << i) != 0)
    }

    /// The column of the sum of events (its `hi`; `lo` follows) in a row read
    /// without groups.
    fn events_column(self) -> usize {
        2 * self.columns().position(|i| i == 8).unwrap_or(0)
    }
}

/// The measures `Table::measures(need)` selected from column `first` on, each as its
/// `(hi, lo)` pair of sums; those `need` does not name are zero.
fn measures_at(r: &QueryResult, first: usize, need: Need) -> Result<Measures> {
    let mut v = [0_i128; 19];
    for (k, i) in need.columns().enumerate() {
        v[i] = wide_sum(r, first + 2 * k)?;
    }
    Ok(Measures {
        cost_nanos: v[0],
        requests: v[1],
        tokens: TokenSums {
            input: v[2],
            output: v[3],
            cache_read: v[4],
            cache_write: v[5],
            cache_write_1h: v[6],
            reasoning: v[7],
            audio_input: v[12],
            audio_output: v[13],
            image_input: v[14],
            image_output: v[15],
            images: v[16],
            web_searches: v[17],
            video_seconds: v[18],
        },
        events: v[8],
        unpriced: v[9],
        latency_sum: v[10],
        latency_count: v[11],
    })
}

/// Whether a row read by `read_sums` without groups had any event.
fn has_events(r: &QueryResult, need: Need) -> bool {
    wide_sum(r, need.events_column()).is_ok_and(|n| n > 0)
}

/// `SUM(x / B), SUM(x % B)` of each expression: sums of single values that no number
/// of rows overflows (see `money::Wide`), read back with [`wide_sum`].
pub(crate) fn wide_sums(exprs: &[&str]) -> String {
    let b = Wide::BASE;
    exprs
        .iter()
        .map(|e| format!("SUM(({e}) / {b}), SUM(({e}) % {b})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The sum selected by [`wide_sums`] (or as a rollup's `SUM(x_hi), SUM(x)`) at
/// columns `i` and `i + 1`.
pub(crate) fn wide_sum(r: &QueryResult, i: usize) -> Result<i128> {
    Ok(wide_sum_or_null(r, i)?.unwrap_or(0))
}

/// [`wide_sum`], `None` when SQL summed no value at all (`NULL`).
pub(crate) fn wide_sum_or_null(r: &QueryResult, i: usize) -> Result<Option<i128>> {
    Ok(match (sum(r, i)?, sum(r, i + 1)?) {
        (None, None) => None,
        (hi, lo) => Some(Wide::join(hi.unwrap_or(0), lo.unwrap_or(0))),
    })
}

/// What a rollup measure is per event (raw events): the events' column of the same
/// name, except for these four.
fn per_event(column: &'static str) -> &'static str {
    match column {
        "events" => "1",
        "unpriced" => "CASE WHEN cost_nanos IS NULL THEN 1 ELSE 0 END",
        "latency_sum" => "latency_ms",
        "latency_count" => "CASE WHEN latency_ms IS NULL THEN 0 ELSE 1 END",
        c => c,
    }
}

/// How finely tracked events are grouped before they become items: the fewer groups,
/// the faster (a summary needs no time at all, BEST needs UTC days to decide).
#[derive(Debug, Clone, Copy)]
struct Grain {
    /// Keep models apart (tracked sums; provider reports always keep them apart).
    model: bool,
    /// Keep projects apart (the same).
    project: bool,
    /// Group instants into slots of this many microseconds (`None`: no time).
    slot_micros: Option<i64>,
    /// The measures read from tracked events (provider reports give all of theirs).
    need: Need,
}

/// One group of tracked sums: its keys (per dimension), its slot start and sums.
pub(crate) type Sums = (Vec<Option<String>>, Option<i64>, Measures);

/// One measure (`pick`) of every tracked event of a filter, from the rollups with raw
/// events only at the edges; `what` names it in the overflow error.
async fn tracked_total(
    conn: &impl ConnectionTrait,
    filter: &UsageFilter,
    what: &'static str,
    pick: impl Fn(&Measures) -> i128,
) -> Result<i128> {
    tracked_sums_of(conn, filter, &[], None, Need::COST)
        .await?
        .into_iter()
        .try_fold(0_i128, |acc, (_, _, m)| acc.checked_add(pick(&m)))
        .ok_or_else(|| Error::internal(what, anyhow::anyhow!("overflow")))
}

/// The tracked cost of a filter (priced events only). No authorisation: callers pass
/// a filter they already restricted to the caller (the live hub does).
pub(crate) async fn tracked_cost(conn: &impl ConnectionTrait, filter: &UsageFilter) -> Result<Usd> {
    let total = tracked_total(conn, filter, "summing costs", |m| m.cost_nanos).await?;
    Ok(Usd::from_wide_nanos(total))
}

/// How many events match a filter, counted like [`tracked_cost`]. No authorisation:
/// callers pass a filter they already restricted.
pub(crate) async fn tracked_events(
    conn: &impl ConnectionTrait,
    filter: &UsageFilter,
) -> Result<u64> {
    let total = tracked_total(conn, filter, "counting events", |m| m.events).await?;
    u64::try_from(total).map_err(|e| Error::internal("counting events", anyhow::anyhow!("{e}")))
}

/// Tracked sums grouped by `dims` (and by slots of `slot` microseconds), read from a
/// rollup for the whole days or hours inside the range and from raw events for the
/// partial edges, then merged: the same answer as a `GROUP BY` over the events.
pub(crate) async fn tracked_sums(
    conn: &impl ConnectionTrait,
    filter: &UsageFilter,
    dims: &[Dimension],
    slot: Option<i64>,
) -> Result<Vec<Sums>> {
    tracked_sums_of(conn, filter, dims, slot, Need::ALL).await
}

/// [`tracked_sums`] of only the measures `need` names (the others are zero).
pub(crate) async fn tracked_sums_of(
    conn: &impl ConnectionTrait,
    filter: &UsageFilter,
    dims: &[Dimension],
    slot: Option<i64>,
    need: Need,
) -> Result<Vec<Sums>> {
    let pruned = without_redundant_sources(conn, filter).await?;
    pruned_sums_of(conn, pruned.as_ref().unwrap_or(filter), dims, slot, need).await
}

/// [`tracked_sums_of`] for a filter whose redundant source filter is already dropped
/// ([`without_redundant_sources`]), so a caller that reads more than sums prunes once.
async fn pruned_sums_of(
    conn: &impl ConnectionTrait,
    filter: &UsageFilter,
    dims: &[Dimension],
    slot: Option<i64>,
    need: Need,
) -> Result<Vec<Sums>> {
    let mut tiers = tiers(filter, dims, slot);
    if tiers.iter().any(|t| t.attr().is_some()) && !long_tail_safe(conn, filter).await? {
        tiers = vec![Table::Raw];
    }
    if let Some(sums) = sums_from(conn, filter, dims, slot, &tiers, need).await? {
        return Ok(sums);
    }
    // Some events in the range are in an "other" bucket: raw events answer exactly.
    Ok(sums_from(conn, filter, dims, slot, &[Table::Raw], need)
        .await?
        .unwrap_or_default())
}

/// The filter without its source filter when that keeps every event of the range
/// anyway: every source with events on the range's UTC days (in the filter's projects
/// and providers; `usage_rollup_source_days`) is one it names. There are three sources
/// and a ledger often records through one, so "source API" there is no filter, and
/// the rollups and sketches without the source answer it instead of raw events. Exact:
/// the range lies within those days, and the other filters only narrow the events
/// whose sources were looked at. `None`: the filter stays as it is.
async fn without_redundant_sources(
    conn: &impl ConnectionTrait,
    filter: &UsageFilter,
) -> Result<Option<UsageFilter>> {
    if filter.sources.is_empty() {
        return Ok(None);
    }
    let day = rollup::SOURCE_DAYS.unit;
    let backend = conn.get_database_backend();
    let mut q = Sql::new(backend, "");
    // The rollup's sources, and those of the events it does not count yet, in the
    // same statement.
    for (i, (from_clause, time)) in [
        (rollup::SOURCE_DAYS.table, "day"),
        (tables::unfolded_events(backend), "occurred_at"),
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            q.push(" UNION ");
        }
        q.push(&format!("SELECT source FROM {from_clause} WHERE 1 = 1"));
        if let Some(from) = filter.from.map(time::to_micros) {
            let m = q.param(from.div_euclid(day) * day);
            q.push(&format!(" AND {time} >= {m}"));
        }
        if let Some(to) = filter.to.map(time::to_micros) {
            let m = q.param(to);
            q.push(&format!(" AND {time} < {m}"));
        }
        project_provider_filters(&mut q, filter);
    }
    let rows = conn
        .query_all_raw(q.statement())
        .await
        .context("reading the sources of a range")?;
    for r in rows {
        let source: String = r.try_get_by_index(0).context("reading a source")?;
        if !filter.sources.iter().any(|s| s.as_str() == source) {
            return Ok(None);
        }
    }
    Ok(Some(UsageFilter {
        sources: Vec::new(),
        ..filter.clone()
    }))
}

/// Whether the attribute rollups hold every event of the filter's endpoints and end
/// users: each is admitted in every project of the filter that overflowed (see
/// `rollup.rs`). One small query per filter value.
async fn long_tail_safe(conn: &impl ConnectionTrait, filter: &UsageFilter) -> Result<bool> {
    for (column, values) in [("endpoint", &filter.endpoints), ("end_user", &filter.users)] {
        for value in values {
            let mut q = Sql::new(
                conn.get_database_backend(),
                "SELECT COUNT(*) FROM usage_rollup_values o WHERE o.dimension = ",
            );
            let c = q.param(column);
            q.push(&c);
            let other = q.param(rollup::OTHER);
            q.push(&format!(" AND o.value = {other}"));
            filter_in(
                &mut q,
                "o.project_id",
                filter.projects.iter().map(|p| Value::from(p.0)),
            );
            let v = q.param(value.clone());
            q.push(&format!(
                " AND NOT EXISTS (SELECT 1 FROM usage_rollup_values v WHERE v.project_id = o.project_id \
                 AND v.dimension = o.dimension AND v.value = {v})"
            ));
            let rows = conn
                .query_all_raw(q.statement())
                .await
                .context("checking the rollups' long tail")?;
            if rows
                .iter()
                .any(|r| sum(r, 0).ok().flatten().unwrap_or(0) > 0)
            {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// The sums of `tiers` (see [`split`]), or `None` when a rollup part read an "other"
/// bucket, whose events it cannot tell apart.
async fn sums_from(
    conn: &impl ConnectionTrait,
    filter: &UsageFilter,
    dims: &[Dimension],
    slot: Option<i64>,
    tiers: &[Table],
    need: Need,
) -> Result<Option<Vec<Sums>>> {
    let from = filter.from.map(time::to_micros);
    let to = filter.to.map(time::to_micros);
    let mut parts = Vec::new();
    split(from, to, tiers, 1, &mut parts);
    let mut merged: BTreeMap<(Vec<Option<String>>, Option<i64>), Measures> = BTreeMap::new();
    for p in parts {
        let sums = read_sums(conn, filter, &p, dims, slot, need).await?;
        if p.table.attr().is_some()
            && sums.iter().any(|(keys, _, m)| {
                m.events != 0 && keys.iter().any(|k| k.as_deref() == Some(rollup::OTHER))
            })
        {
            return Ok(None);
        }
        for (keys, slot, m) in sums {
            let m = if p.sign < 0 { m.negated() } else { m };
            merged.entry((keys, slot)).or_default().add(&m);
        }
    }
    // A group whose events were all subtracted again had none in the range.
    Ok(Some(
        merged
            .into_iter()
            .filter(|(_, m)| m.events != 0)
            .map(|((k, s), m)| (k, s, m))
            .collect(),
    ))
}

/// The sums of one part (its table, within its bounds; its sign is the caller's). A
/// rollup part adds the unfolded events of its range (see [`unfolded_twin`]) in the
/// same statement: one snapshot, so each event is counted by exactly one of the two.
async fn read_sums(
    conn: &impl ConnectionTrait,
    filter: &UsageFilter,
    part: &Part,
    dims: &[Dimension],
    slot: Option<i64>,
    need: Need,
) -> Result<Vec<Sums>> {
    let table = part.table;
    let mut q = Sql::new(conn.get_database_backend(), "");
    select_sums(&mut q, filter, part, dims, slot, need);
    if let Some(twin) = unfolded_twin(part) {
        q.push(" UNION ALL ");
        select_sums(&mut q, filter, &twin, dims, slot, need);
    }
    let rows = conn
        .query_all_raw(q.statement())
        .await
        .context("summing tracked usage")?;
    let n = dims.len() + usize::from(slot.is_some());
    rows.iter()
        .filter(|r| n > 0 || has_events(r, need))
        .map(|r| {
            // Raw events never hold `''` for an endpoint or end user, so the twin's
            // rows come through unchanged.
            let keys = stored_keys(key_values(r, 0, dims)?, dims, table);
            let at = match slot {
                Some(s) => Some(
                    r.try_get_by_index::<i64>(dims.len())
                        .context("reading a slot")?
                        * s,
                ),
                None => None,
            };
            Ok((keys, at, measures_at(r, n, need)?))
        })
        .collect()
}

/// Appends the `SELECT` of one part's sums per group (and slot).
fn select_sums(
    q: &mut Sql,
    filter: &UsageFilter,
    part: &Part,
    dims: &[Dimension],
    slot: Option<i64>,
    need: Need,
) {
    let table = part.table;
    let mut select: Vec<String> = dims.iter().map(|d| d.column().to_owned()).collect();
    if let Some(s) = slot {
        select.push(format!("{} / {s}", table.time()));
    }
    let group = select.join(", ");
    select.push(table.measures(need));
    q.push(&format!("SELECT {}", select.join(", ")));
    q.push(&format!(" FROM {} WHERE 1 = 1", table.source(q.backend())));
    part_filters(q, filter, part);
    if !group.is_empty() {
        q.push(&format!(" GROUP BY {group}"));
    }
}

/// The conditions of a part's read: its time bounds, the filter's projects, providers
/// and models (`tiers` reads a table without the project, provider or model only when
/// it is neither asked for nor filtered by) and the attribute filters its table can
/// apply.
fn part_filters(q: &mut Sql, filter: &UsageFilter, part: &Part) {
    let time = part.table.time();
    if let Some(lo) = part.lo {
        let m = q.param(lo);
        q.push(&format!(" AND {time} >= {m}"));
    }
    if let Some(hi) = part.hi {
        let m = q.param(hi);
        q.push(&format!(" AND {time} < {m}"));
    }
    key_filters(q, filter);
    attr_filters(q, filter, part.table);
}

/// The filter's projects, providers and models, on tables that have the columns
/// `project_id`, `provider` and `model` or are read only when none is filtered by.
fn key_filters(q: &mut Sql, filter: &UsageFilter) {
    project_provider_filters(q, filter);
    filter_in(
        q,
        "model",
        filter.models.iter().map(|m| Value::from(m.clone())),
    );
}

/// The filter's projects and providers, on tables that have `project_id` and
/// `provider`.
fn project_provider_filters(q: &mut Sql, filter: &UsageFilter) {
    filter_in(
        q,
        "project_id",
        filter.projects.iter().map(|p| Value::from(p.0)),
    );
    filter_in(
        q,
        "provider",
        filter
            .providers
            .iter()
            .map(|p| Value::from(p.as_str().to_owned())),
    );
}

/// The endpoint, source and end-user filters a table can apply: raw events all of
/// them, an attribute rollup its own (`tiers` reads one only for a filter on its
/// attribute alone).
fn attr_filters(q: &mut Sql, filter: &UsageFilter, table: Table) {
    let applies = |column: &str| table.is_raw() || table.attr() == Some(column);
    if applies("endpoint") {
        filter_in(
            q,
            "endpoint",
            filter.endpoints.iter().map(|e| Value::from(e.clone())),
        );
    }
    if applies("source") {
        filter_in(
            q,
            "source",
            filter.sources.iter().map(|s| Value::from(s.as_str())),
        );
    }
    if applies("end_user") {
        filter_in(
            q,
            "end_user",
            filter.users.iter().map(|u| Value::from(u.clone())),
        );
    }
}

/// Group keys as events have them: an attribute rollup keeps "not recorded" as `''`.
fn stored_keys(
    mut keys: Vec<Option<String>>,
    dims: &[Dimension],
    table: Table,
) -> Vec<Option<String>> {
    if table.attr().is_some() {
        for (k, d) in keys.iter_mut().zip(dims) {
            if matches!(d, Dimension::Endpoint | Dimension::User) && k.as_deref() == Some("") {
                *k = None;
            }
        }
    }
    keys
}

async fn tracked_items(
    conn: &impl ConnectionTrait,
    filter: &UsageFilter,
    grain: Grain,
) -> Result<Vec<Item>> {
    let mut dims = vec![Dimension::Provider];
    if grain.model {
        dims.push(Dimension::Model);
    }
    if grain.project {
        dims.push(Dimension::Project);
    }
    tracked_sums_of(conn, filter, &dims, grain.slot_micros, grain.need)
        .await?
        .into_iter()
        .map(|(keys, at, measures)| {
            let mut keys = keys.into_iter();
            let provider = keys.next().flatten().unwrap_or_default();
            let model = if grain.model {
                keys.next().flatten().unwrap_or_default()
            } else {
                String::new()
            };
            let project = if grain.project {
                keys.next().flatten().and_then(|p| p.parse().ok())
            } else {
                None
            };
            Ok(Item {
                at: at
                    .map(time::from_micros)
                    .unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
                provider,
                model,
                project,
                measures,
                basis: Basis::Tracked,
            })
        })
        .collect()
}

async fn reported_items(conn: &impl ConnectionTrait, filter: &UsageFilter) -> Result<Vec<Item>> {
    // Money only when in USD; tokens only from usage and manual rows.
    let mut q = Sql::new(
        conn.get_database_backend(),
        &format!(
            "SELECT provider, model, project_id, bucket_start, {} FROM provider_reports WHERE 1 = 1",
            wide_sums(&[
                "CASE WHEN kind IN ('COST', 'MANUAL') AND (currency IS NULL OR currency = 'USD') THEN amount_nanos ELSE 0 END",
                "CASE WHEN kind IN ('USAGE', 'MANUAL') THEN requests ELSE 0 END",
                "CASE WHEN kind IN ('USAGE', 'MANUAL') THEN input_tokens ELSE 0 END",
                "CASE WHEN kind IN ('USAGE', 'MANUAL') THEN output_tokens ELSE 0 END",
                "CASE WHEN kind IN ('USAGE', 'MANUAL') THEN cache_read_tokens ELSE 0 END",
                "CASE WHEN kind IN ('USAGE', 'MANUAL') THEN cache_write_tokens ELSE 0 END",
                "CASE WHEN kind IN ('USAGE', 'MANUAL') THEN cache_write_1h_tokens ELSE 0 END",
                "CASE WHEN kind IN ('USAGE', 'MANUAL') THEN reasoning_tokens ELSE 0 END",
                "CASE WHEN kind IN ('COST', 'MANUAL') AND amount_nanos IS NOT NULL THEN 1 ELSE 0 END",
            ])
        ),
    );
    if let Some(from) = filter.from {
        let m = q.param(time::to_micros(from));
        q.push(&format!(" AND bucket_start >= {m}"));
    }
    if let Some(to) = filter.to {
        let m = q.param(time::to_micros(to));
        q.push(&format!(" AND bucket_start < {m}"));
    }
    key_filters(&mut q, filter);
    q.push(" GROUP BY provider, model, project_id, bucket_start");
    let rows = conn
        .query_all_raw(q.statement())
        .await
        .context("summing provider reports")?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let n = |i: usize| wide_sum(r, 4 + 2 * i);
        out.push(Item {
            at: time::from_micros(r.try_get_by_index(3).context("reading a bucket")?),
            provider: r.try_get_by_index(0).context("reading a provider")?,
            model: r.try_get_by_index(1).context("reading a model")?,
            project: r
                .try_get_by_index::<Option<uuid::Uuid>>(2)
                .context("reading a project")?
                .map(ProjectId),
            measures: Measures {
                cost_nanos: n(0)?,
                requests: n(1)?,
                tokens: TokenSums {
                    input: n(2)?,
                    output: n(3)?,
                    cache_read: n(4)?,
                    cache_write: n(5)?,
                    cache_write_1h: n(6)?,
                    reasoning: n(7)?,
                    ..TokenSums::default()
                },
                events: n(8)?,
                ..Measures::default()
            },
            basis: Basis::Reported,
        });
    }
    // Fixed subscriptions, spread over their days (models and per-model filters do
    // not apply to a plan).
    if filter.models.is_empty() {
        let from = filter
            .from
            .map(|f| f.date_naive())
            .unwrap_or_else(|| time::now().date_naive() - TimeDelta::days(366));
        let to = filter
            .to
            .map(|t| t.date_naive())
            .unwrap_or_else(|| time::now().date_naive());
        for plan in subscription::list_unchecked(conn, &filter.providers, &filter.projects).await? {
            for (day, amount) in plan.daily(from, to) {
                let at = day.and_time(chrono::NaiveTime::MIN).and_utc();
                if filter.from.is_some_and(|f| at < f) || filter.to.is_some_and(|t| at >= t) {
                    continue;
                }
                out.push(Item {
                    at,
                    provider: plan.provider.as_str().to_owned(),
                    model: String::new(),
                    project: plan.project,
                    measures: Measures {
                        cost_nanos: amount.nanos(),
                        events: 1,
                        ..Measures::default()
                    },
                    basis: Basis::Reported,
                });
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------

/// `costSummary`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Everything.
    pub total: Measures,
    /// Per provider, by name.
    pub providers: Vec<(String, Measures)>,
    /// Which numbers were used.
    pub basis: Option<Basis>,
}

/// Totals of a filter in a view, of the tracked measures `need` names (the others
/// zero).
pub async fn summary(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    filter: UsageFilter,
    view: View,
    need: Need,
) -> Result<Summary> {
    let grain = Grain {
        model: false,
        project: false,
        slot_micros: None,
        need,
    };
    let items = items(conn, principal, filter, view, grain).await?;
    let mut total = Measures::default();
    let mut providers: BTreeMap<String, Measures> = BTreeMap::new();
    let mut basis = None;
    for i in &items {
        total.add(&i.measures);
        providers
            .entry(i.provider.clone())
            .or_default()
            .add(&i.measures);
        basis = Some(Basis::join(basis, i.basis));
    }
    Ok(Summary {
        total,
        providers: providers.into_iter().collect(),
        basis,
    })
}

/// One bucket of a trend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrendBucket {
    /// Start (UTC instant of the local bucket start).
    pub start: DateTime<Utc>,
    /// End (exclusive).
    pub end: DateTime<Utc>,
    /// Sums.
    pub measures: Measures,
    /// Which numbers it used; `None` for an empty bucket.
    pub basis: Option<Basis>,
}

/// Most buckets one trend returns.
pub const MAX_BUCKETS: usize = 10_000;

/// Zero-filled buckets from `from` to `to` in a time zone, of the tracked measures
/// `need` names (the others zero).
pub async fn trend(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    filter: UsageFilter,
    view: View,
    granularity: Granularity,
    tz: Tz,
    need: Need,
) -> Result<Vec<TrendBucket>> {
    let (Some(from), Some(to)) = (filter.from, filter.to) else {
        return Err(Error::invalid("filter", "a trend needs `from` and `to`"));
    };
    let starts = calendar::buckets(from, to, granularity, &tz, MAX_BUCKETS + 1);
    if starts.len() > MAX_BUCKETS {
        return Err(Error::invalid(
            "granularity",
            format!(
                "more than {MAX_BUCKETS} buckets: choose a coarser granularity or a shorter range"
            ),
        ));
    }
    let ends: Vec<DateTime<Utc>> = starts
        .iter()
        .map(|&start| calendar::next_bucket(start, granularity, &tz))
        .collect();
    let mut found = vec![];
    for (range, slot) in segments(&starts, &ends) {
        let mut piece = filter.clone();
        piece.from = Some(from.max(starts[range.start]));
        piece.to = Some(to.min(ends[range.end - 1]));
        if piece.from >= piece.to {
            continue;
        }
        let grain = Grain {
            model: false,
            project: false,
            slot_micros: Some(slot),
            need,
        };
        found.extend(items(conn, principal, piece, view, grain).await?);
    }
    let items = found;
    let mut buckets: Vec<TrendBucket> = starts
        .iter()
        .zip(ends)
        .map(|(&start, end)| TrendBucket {
            start,
            end,
            measures: Measures::default(),
            basis: None,
        })
        .collect();
    let index: HashMap<DateTime<Utc>, usize> =
        starts.iter().enumerate().map(|(i, s)| (*s, i)).collect();
    for i in &items {
        let start = calendar::bucket_start(i.at, granularity, &tz);
        if let Some(&k) = index.get(&start) {
            buckets[k].measures.add(&i.measures);
            buckets[k].basis = Some(Basis::join(buckets[k].basis, i.basis));
        }
    }
    Ok(buckets)
}

/// Most separate queries one trend runs (see [`segments`]).
const MAX_SEGMENTS: usize = 32;

/// Runs of consecutive buckets that share the longest slot their boundaries allow,
/// each with that slot. A zone's history can mix classes (Europe/London's winter days
/// are whole UTC days, its summer days are not; Africa/Monrovia kept an offset of
/// -00:44:30 until 1972), and one odd bucket must not make every other bucket read
/// raw events second by second: each run reads the coarsest rollups it can. Past
/// [`MAX_SEGMENTS`] runs, one run with the slot every boundary allows.
fn segments(
    starts: &[DateTime<Utc>],
    ends: &[DateTime<Utc>],
) -> Vec<(std::ops::Range<usize>, i64)> {
    let mut runs: Vec<(std::ops::Range<usize>, i64)> = vec![];
    for (k, (start, end)) in starts.iter().zip(ends).enumerate() {
        let slot = slot_for([start, end].into_iter());
        match runs.last_mut() {
            Some((range, s)) if *s == slot => range.end = k + 1,
            _ => runs.push((k..k + 1, slot)),
        }
    }
    if runs.len() > MAX_SEGMENTS {
        return vec![(0..starts.len(), slot_for(starts.iter().chain(ends)))];
    }
    runs
}

/// The longest slot (a UTC day, an hour, 15 minutes, a second) that every bucket
/// boundary is a multiple of, so that no slot straddles two buckets: whole UTC days
/// for daily and longer buckets in UTC, hours in zones with whole-hour offsets (across
/// their DST changes too), 15 minutes for +05:30 or +05:45.
fn slot_for<'a>(boundaries: impl Iterator<Item = &'a DateTime<Utc>> + Clone) -> i64 {
    [rollup::DAY, rollup::HOUR, SLOT_MICROS, 1_000_000]
        .into_iter()
        .find(|&slot| {
            boundaries
                .clone()
                .all(|b| time::to_micros(*b).rem_euclid(slot) == 0)
        })
        .unwrap_or(1)
}

/// A dimension to group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dimension {
    /// Provider.
    Provider,
    /// Model as recorded.
    Model,
    /// Endpoint (tracked only).
    Endpoint,
    /// Project.
    Project,
    /// Source (tracked only).
    Source,
    /// End user (tracked only).
    User,
}

impl Dimension {
    fn column(self) -> &'static str {
        match self {
            Dimension::Provider => "provider",
            Dimension::Model => "model",
            Dimension::Endpoint => "endpoint",
            Dimension::Project => "project_id",
            Dimension::Source => "source",
            Dimension::User => "end_user",
        }
    }
}

/// Latency statistics of a group, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    /// Mean (from the rollups' sums).
    pub average: f64,
    /// Median and 95th percentile, when asked for (from the raw events).
    pub percentiles: Option<Percentiles>,
}

/// Nearest-rank percentiles of latencies, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percentiles {
    /// Median.
    pub p50: i64,
    /// 95th percentile.
    pub p95: i64,
}

/// One group of a breakdown.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The group's value per dimension asked for, in order (`None`: not recorded).
    pub keys: Vec<Option<String>>,
    /// Sums.
    pub measures: Measures,
    /// Share of the total cost, in percent (4 decimals).
    pub share_pct: rust_decimal::Decimal,
    /// Latency, where reported (tracked only).
    pub latency: Option<Latency>,
}

/// Groups of a filter by one or more dimensions, dearest first, of the tracked
/// measures `need` names (the others zero). The average latency comes with the sums
/// when `need` has the latency; `with_percentiles`, when given, also reads the latency
/// sketches (or up to its limit of the events' latencies) for the median and 95th
/// percentile.
pub async fn breakdown(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    filter: UsageFilter,
    view: View,
    dims: &[Dimension],
    need: Need,
    with_percentiles: Option<RawLatencyLimit>,
) -> Result<Vec<Group>> {
    let need = if with_percentiles.is_some() {
        need.with(Measure::Latency)
    } else {
        need
    };
    if dims.is_empty() || dims.len() > 6 {
        return Err(Error::invalid("groupBy", "give one to six dimensions"));
    }
    let mut groups: BTreeMap<Vec<Option<String>>, (Measures, LatencyCounts)> = BTreeMap::new();
    if view == View::Tracked {
        principal.require(Scope::Read)?;
        let filter = filter.authorized(principal)?;
        // Sums and percentiles read the same filter: its sources are pruned once.
        let filter = without_redundant_sources(conn, &filter)
            .await?
            .unwrap_or(filter);
        for (keys, _, m) in pruned_sums_of(conn, &filter, dims, None, need).await? {
            groups.entry(keys).or_default().0.add(&m);
        }
        if let Some(limit) = with_percentiles {
            let reported = groups
                .values()
                .fold(0_i128, |n, (m, _)| n.saturating_add(m.latency_count));
            let reported = clamp_i64(reported);
            for (keys, latencies) in latency_counts(conn, &filter, dims, reported, limit).await? {
                groups.entry(keys).or_default().1 = latencies;
            }
        }
    } else {
        if let Some(d) = dims
            .iter()
            .find(|d| matches!(d, Dimension::Endpoint | Dimension::Source | Dimension::User))
        {
            return Err(Error::invalid(
                "groupBy",
                format!("provider reports carry no {}: use view TRACKED", d.column()),
            ));
        }
        // Tracked sums per provider (BEST decides per provider and day) and only the
        // dimensions asked for: a day's rows of every model and project would be read
        // and dropped otherwise.
        let grain = Grain {
            model: dims.contains(&Dimension::Model),
            project: dims.contains(&Dimension::Project),
            slot_micros: None,
            need,
        };
        for i in items(conn, principal, filter, view, grain).await? {
            let keys = dims
                .iter()
                .map(|d| match d {
                    Dimension::Provider => Some(i.provider.clone()),
                    Dimension::Model => (!i.model.is_empty()).then(|| i.model.clone()),
                    Dimension::Project => i.project.map(|p| p.to_string()),
                    _ => None,
                })
                .collect();
            groups.entry(keys).or_default().0.add(&i.measures);
        }
    }
    let total = groups
        .values()
        .fold(Usd::ZERO, |t, (m, _)| t.saturating_add(m.cost()));
    let mut out: Vec<Group> = groups
        .into_iter()
        .map(|(keys, (measures, mut latencies))| Group {
            keys,
            share_pct: if total == Usd::ZERO {
                rust_decimal::Decimal::ZERO
            } else {
                (measures.cost().to_decimal() * rust_decimal::Decimal::from(100)
                    / total.to_decimal())
                .round_dp(4)
                .normalize()
            },
            latency: measures.average_latency().map(|average| Latency {
                average,
                percentiles: percentiles(&mut latencies),
            }),
            measures,
        })
        .collect();
    out.sort_by(|a, b| {
        b.measures
            .cost_nanos
            .cmp(&a.measures.cost_nanos)
            .then(a.keys.cmp(&b.keys))
    });
    Ok(out)
}

fn key_values(r: &QueryResult, first: usize, dims: &[Dimension]) -> Result<Vec<Option<String>>> {
    dims.iter()
        .enumerate()
        .map(|(k, d)| {
            Ok(match d {
                Dimension::Project => r
                    .try_get_by_index::<Option<uuid::Uuid>>(first + k)
                    .context("reading a project")?
                    .map(|u| u.to_string()),
                _ => r
                    .try_get_by_index::<Option<String>>(first + k)
                    .context("reading a group value")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = rollup::HOUR;
    const D: i64 = rollup::DAY;

    #[test]
    fn a_cost_reads_cost_events_and_unpriced_only() {
        let names =
            |need: Need| -> Vec<&str> { need.columns().map(|i| rollup::COLUMNS[i]).collect() };
        assert_eq!(names(Need::COST), ["cost_nanos", "events", "unpriced"]);
        assert_eq!(names(Need::ALL), rollup::COLUMNS);
        assert_eq!(
            (Need::ALL.events_column(), Need::COST.events_column()),
            (16, 2)
        );
        assert_eq!(
            Table::Days.measures(Need::COST),
            "SUM(cost_nanos_hi), SUM(cost_nanos), SUM(events_hi), SUM(events), SUM(unpriced_hi), SUM(unpriced)"
        );
        assert!(Table::Raw.measures(Need::COST).contains("SUM((1) /"));
        let chart = Need::COST
            .with(Measure::Units(TokenClass::Request))
            .with(Measure::Units(TokenClass::CacheWrite1h))
            .with(Measure::Latency);
        assert_eq!(
            names(chart),
            [
                "cost_nanos",
                "requests",
                "cache_write_1h_tokens",
                "events",
                "unpriced",
                "latency_sum",
                "latency_count"
            ]
        );
        assert_eq!(chart.events_column(), 6);
        let tokens = names(Need::COST.with(Measure::AllTokens));
        assert_eq!(tokens.len(), 3 + 13);
        assert!(
            tokens
                .iter()
                .all(|c| !c.starts_with("latency") && *c != "requests")
        );
        assert_eq!(
            Need::COST
                .with(Measure::AllTokens)
                .with(Measure::Units(TokenClass::Request))
                .with(Measure::Latency),
            Need::ALL
        );
    }

    #[test]
    fn trend_slots_never_straddle_a_bucket_boundary() {
        let at = |us: i64| time::from_micros(us);
        let utc_days = [at(0), at(D), at(2 * D)];
        assert_eq!(slot_for(utc_days.iter()), D);
        let berlin_days = [at(D - H), at(2 * D - 2 * H)];
        assert_eq!(slot_for(berlin_days.iter()), H);
        let kolkata_days = [at(D - 5 * H - 30 * 60_000_000)];
        assert_eq!(slot_for(kolkata_days.iter()), SLOT_MICROS);
    }

    #[test]
    fn an_odd_offset_in_a_zone_history_slows_only_its_own_buckets() {
        use chrono::TimeZone;
        let tz: Tz = "Africa/Monrovia".parse().expect("zone");
        // Yearly buckets from 1970 to 1980: 1970 and 1971 start at -00:44:30 (the
        // 1972 bucket too: it starts before the change on 7 January); from 1973 on,
        // midnight is a whole UTC day.
        let from = tz.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap().to_utc();
        let to = tz.with_ymd_and_hms(1980, 1, 1, 0, 0, 0).unwrap().to_utc();
        let starts = calendar::buckets(from, to, Granularity::Year, &tz, 100);
        let ends: Vec<_> = starts
            .iter()
            .map(|&s| calendar::next_bucket(s, Granularity::Year, &tz))
            .collect();
        let runs = segments(&starts, &ends);
        assert_eq!(runs.first().map(|r| r.1), Some(1_000_000));
        assert_eq!(runs.last().map(|r| r.1), Some(D));
        let daily: usize = runs.iter().filter(|r| r.1 == D).map(|r| r.0.len()).sum();
        assert_eq!(daily, 7, "1973 to 1979 read whole days: {runs:?}");
        let covered: usize = runs.iter().map(|r| r.0.len()).sum();
        assert_eq!(covered, starts.len(), "every bucket in exactly one run");
        // A zone with one class throughout is one run.
        let utc_runs = segments(&starts[..1], &ends[..1]);
        assert_eq!(utc_runs.len(), 1);
    }

    #[test]
    fn bases_join_to_mixed_only_when_they_differ() {
        assert_eq!(Basis::join(None, Basis::Tracked), Basis::Tracked);
        assert_eq!(
            Basis::join(Some(Basis::Reported), Basis::Reported),
            Basis::Reported
        );
        assert_eq!(
            Basis::join(Some(Basis::Tracked), Basis::Reported),
            Basis::Mixed
        );
    }
}
