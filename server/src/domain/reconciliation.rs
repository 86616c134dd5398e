//! Reconciliation: what we tracked per request against what the provider says it
//! billed, per provider, UTC day and model.
//!
//! Tracked numbers come from ingested events; reported numbers from provider reports
//! (synced usage and cost buckets, and manual entries). The two are compared, never
//! added. Model names on both sides go through the normalisation pricing uses
//! (`price/model_name.rs`): lower case, without date and version suffixes, so
//! `gpt-4o-2024-08-06` and `GPT-4o` meet while `gpt-4o-mini` stays apart. A cost row without a model is attributed by its line item
//! (`gpt-4o-2024-08-06, input` → `gpt-4o`), else it stays unattributed (model `""`).
//!
//! Status per row: `MISSING_REPORTED` when only tracked numbers exist,
//! `MISSING_TRACKED` when only reported ones do, else `MATCHED` when the cost (or, with
//! no reported cost, the total tokens) agrees within the tolerance, else `DRIFT`.

use crate::domain::analytics;
use crate::domain::auth::Principal;
use crate::domain::error::{Context, Error, FieldError, Result};
use crate::domain::ids::ProjectId;
use crate::domain::money::Usd;
use crate::domain::price::model_name;
use crate::domain::provider::Provider;
use crate::domain::rollup;
use crate::domain::time;
use crate::domain::usage::query::UsageFilter;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
use std::collections::BTreeMap;

/// Longest range one reconciliation covers.
pub const MAX_DAYS: i64 = 400;

/// Default tolerance, in percent.
pub const DEFAULT_TOLERANCE_PCT: Decimal = Decimal::from_parts(5, 0, 0, false, 0);

/// What to reconcile.
#[derive(Debug, Clone)]
pub struct ReconciliationFilter {
    /// Providers (all when empty).
    pub providers: Vec<Provider>,
    /// Projects (all readable when empty).
    pub projects: Vec<ProjectId>,
    /// First day (inclusive).
    pub from: NaiveDate,
    /// Last day (inclusive).
    pub to: NaiveDate,
    /// Tolerance in percent.
    pub tolerance_pct: Decimal,
}

impl ReconciliationFilter {
    /// Checks the range and tolerance.
    pub fn new(
        providers: Vec<Provider>,
        projects: Vec<ProjectId>,
        from: NaiveDate,
        to: NaiveDate,
        tolerance_pct: Option<Decimal>,
    ) -> Result<ReconciliationFilter> {
        if from > to {
            return Err(Error::InvalidDateRange("`from` is after `to`".into()));
        }
        if (to - from).num_days() >= MAX_DAYS {
            return Err(Error::invalid(
                "to",
                format!("a reconciliation covers at most {MAX_DAYS} days"),
            ));
        }
        let tolerance_pct = tolerance_pct.unwrap_or(DEFAULT_TOLERANCE_PCT);
        if tolerance_pct.is_sign_negative() || tolerance_pct > Decimal::from(100) {
            return Err(Error::InvalidInput(vec![FieldError::new(
                "tolerancePct",
                "must be between 0 and 100",
            )]));
        }
        Ok(ReconciliationFilter {
            providers,
            projects,
            from,
            to,
            tolerance_pct,
        })
    }
}

/// How a row compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReconciliationStatus {
    /// Within tolerance.
    Matched,
    /// Both sides, outside tolerance.
    Drift,
    /// The provider reported it; we tracked nothing.
    MissingTracked,
    /// We tracked it; the provider reported nothing (yet).
    MissingReported,
}

/// Cost, tokens and requests of one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Side {
    /// Cost (tracked: priced events; reported: cost rows and manual amounts).
    pub cost: Option<Usd>,
    /// All tokens (input, output, cache reads and writes).
    pub tokens: i128,
    /// Input tokens including cache reads and writes.
    pub input_tokens: i128,
    /// Output tokens.
    pub output_tokens: i128,
    /// Requests.
    pub requests: i128,
    /// Whether anything was there.
    pub present: bool,
}

impl Side {
    /// Adds a cost (sums read from the ledger are far inside `i128`: see
    /// `money::Wide`).
    fn add_cost(&mut self, nanos: i128) {
        let c = Usd::from_wide_nanos(nanos);
        self.cost = Some(match self.cost {
            Some(x) => x.saturating_add(c),
            None => c,
        });
    }

    fn add_tokens(&mut self, input: i128, output: i128, requests: i128) {
        self.input_tokens = self.input_tokens.saturating_add(input);
        self.output_tokens = self.output_tokens.saturating_add(output);
        self.tokens = self.tokens.saturating_add(input.saturating_add(output));
        self.requests = self.requests.saturating_add(requests);
    }
}

/// One provider, day and model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconciliationRow {
    /// Provider.
    pub provider: Provider,
    /// UTC day.
    pub day: NaiveDate,
    /// Normalised model (`""`: reported without a model).
    pub model: String,
    /// What we tracked.
    pub tracked: Side,
    /// What the provider reported.
    pub reported: Side,
    /// Reported cost minus tracked cost.
    pub delta: Option<Decimal>,
    /// The delta as a percentage of the tracked cost.
    pub delta_pct: Option<Decimal>,
    /// The comparison.
    pub status: ReconciliationStatus,
}

type Key = (String, NaiveDate, String);

/// Rows for the filter, ordered by provider, day and model.
pub async fn reconcile(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    filter: &ReconciliationFilter,
) -> Result<Vec<ReconciliationRow>> {
    principal.require(crate::domain::auth::Scope::Read)?;
    let projects = principal.readable_projects(&filter.projects)?;
    let start = day_start(filter.from);
    let end = day_start(filter.to) + TimeDelta::days(1);
    let mut rows: BTreeMap<Key, (Side, Side)> = BTreeMap::new();
    let mut normalised: BTreeMap<String, String> = BTreeMap::new();
    let mut canonical = |model: &str| -> String {
        normalised
            .entry(model.to_owned())
            .or_insert_with(|| canonical_model(model))
            .clone()
    };

    for t in tracked(conn, filter, &projects, start, end).await? {
        let Some(provider) = Provider::parse(&t.provider) else {
            continue;
        };
        let day = time::from_micros(t.day * DAY_MICROS).date_naive();
        let model = canonical(&t.model);
        let side = &mut rows
            .entry((provider.as_str().to_owned(), day, model))
            .or_default()
            .0;
        side.present = true;
        if let Some(c) = t.cost_nanos {
            side.add_cost(c);
        }
        side.add_tokens(t.input, t.output, t.requests);
    }
    for r in reported(conn, filter, &projects, start, end).await? {
        let Some(provider) = Provider::parse(&r.provider) else {
            continue;
        };
        let day = time::from_micros(r.day * DAY_MICROS).date_naive();
        let raw_model = if r.model.is_empty() {
            model_of_line_item(&r.line_item)
        } else {
            r.model.clone()
        };
        let model = if raw_model.is_empty() {
            String::new()
        } else {
            canonical(&raw_model)
        };
        let side = &mut rows
            .entry((provider.as_str().to_owned(), day, model))
            .or_default()
            .1;
        side.present = true;
        if r.counts_cost
            && let Some(c) = r.amount_nanos
        {
            side.add_cost(c);
        }
        if r.counts_tokens {
            side.add_tokens(r.input, r.output, r.requests);
        }
    }
    Ok(rows
        .into_iter()
        .filter_map(|((provider, day, model), (tracked, reported))| {
            let provider = Provider::parse(&provider)?;
            Some(compare(
                provider,
                day,
                model,
                tracked,
                reported,
                filter.tolerance_pct,
            ))
        })
        .collect())
}

fn compare(
    provider: Provider,
    day: NaiveDate,
    model: String,
    tracked: Side,
    reported: Side,
    tolerance_pct: Decimal,
) -> ReconciliationRow {
    let delta = match (tracked.cost, reported.cost) {
        (t, Some(r)) => Some(r.to_decimal() - t.map(Usd::to_decimal).unwrap_or_default()),
        (Some(t), None) if !reported.present => Some(-t.to_decimal()),
        _ => None,
    };
    let delta_pct = match (delta, tracked.cost) {
        (Some(d), Some(t)) if !t.to_decimal().is_zero() => {
            Some((d * Decimal::from(100) / t.to_decimal()).round_dp(4))
        }
        _ => None,
    };
    let status = if !reported.present {
        ReconciliationStatus::MissingReported
    } else if !tracked.present {
        ReconciliationStatus::MissingTracked
    } else {
        let within = |tracked: Decimal, reported: Decimal| {
            let diff = (reported - tracked).abs();
            diff * Decimal::from(100) <= tolerance_pct * tracked.abs().max(reported.abs())
        };
        let ok = match (tracked.cost, reported.cost) {
            (Some(t), Some(r)) => within(t.to_decimal(), r.to_decimal()),
            // No reported money for this model: compare tokens.
            (_, None) => within(
                crate::domain::money::decimal_of(tracked.tokens),
                crate::domain::money::decimal_of(reported.tokens),
            ),
            (None, Some(r)) => r.to_decimal().is_zero(),
        };
        if ok {
            ReconciliationStatus::Matched
        } else {
            ReconciliationStatus::Drift
        }
    };
    ReconciliationRow {
        provider,
        day,
        model,
        tracked,
        reported,
        delta: delta.map(|d| d.normalize()),
        delta_pct: delta_pct.map(|d| d.normalize()),
        status,
    }
}

/// The model a name stands for: lower case, without date and version suffixes (the
/// rules pricing uses to find a price for a dated id).
pub fn canonical_model(model: &str) -> String {
    let key = model_name::match_key(model);
    let mut current = key.as_str();
    while let Some(shorter) = model_name::strip_one_suffix(current) {
        current = shorter;
    }
    current.to_owned()
}

/// `gpt-4o-2024-08-06, input` → `gpt-4o-2024-08-06`; line items that do not name a
/// model (`web search`, `Copilot Business seats`) give `""`.
fn model_of_line_item(line_item: &str) -> String {
    match line_item.split_once(',') {
        Some((model, _)) if !model.trim().is_empty() && !model.trim().contains(' ') => {
            model.trim().to_owned()
        }
        _ => String::new(),
    }
}

const DAY_MICROS: i64 = 86_400_000_000;

fn day_start(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(chrono::NaiveTime::MIN).and_utc()
}

struct TrackedRow {
    provider: String,
    model: String,
    day: i64,
    cost_nanos: Option<i128>,
    input: i128,
    output: i128,
    requests: i128,
}

struct ReportedRow {
    provider: String,
    model: String,
    line_item: String,
    day: i64,
    amount_nanos: Option<i128>,
    input: i128,
    output: i128,
    requests: i128,
    counts_cost: bool,
    counts_tokens: bool,
}

/// `IN (..)` over a list, with placeholders of the backend.
pub(crate) struct Sql {
    backend: DbBackend,
    text: String,
    values: Vec<Value>,
}

impl Sql {
    pub(crate) fn new(backend: DbBackend, text: &str) -> Sql {
        Sql {
            backend,
            text: text.to_owned(),
            values: Vec::new(),
        }
    }

    pub(crate) fn param(&mut self, v: impl Into<Value>) -> String {
        self.values.push(v.into());
        match self.backend {
            DbBackend::Postgres => format!("${}", self.values.len()),
            _ => "?".to_owned(),
        }
    }

    pub(crate) fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    pub(crate) fn backend(&self) -> DbBackend {
        self.backend
    }

    pub(crate) fn statement(self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.text, self.values)
    }
}

/// Tracked sums per provider, model and UTC day, from the rollups (whole days: the
/// project-free daily rollup unless projects are asked for) like every other analytic.
async fn tracked(
    conn: &impl ConnectionTrait,
    filter: &ReconciliationFilter,
    projects: &[ProjectId],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<TrackedRow>> {
    let usage = UsageFilter {
        projects: projects.to_vec(),
        providers: filter.providers.clone(),
        from: Some(start),
        to: Some(end),
        ..UsageFilter::default()
    };
    let dims = [analytics::Dimension::Provider, analytics::Dimension::Model];
    analytics::tracked_sums(conn, &usage, &dims, Some(rollup::DAY))
        .await?
        .into_iter()
        .map(|(keys, at, m)| {
            let t = &m.tokens;
            Ok(TrackedRow {
                provider: keys.first().cloned().flatten().unwrap_or_default(),
                model: keys.get(1).cloned().flatten().unwrap_or_default(),
                day: at.unwrap_or(0).div_euclid(rollup::DAY),
                // Like SUM over the events: no cost when none of them was priced.
                cost_nanos: (m.unpriced < m.events).then_some(m.cost_nanos),
                input: t.input + t.cache_read + t.cache_write + t.cache_write_1h,
                output: t.output,
                requests: m.requests,
            })
        })
        .collect()
}

async fn reported(
    conn: &impl ConnectionTrait,
    filter: &ReconciliationFilter,
    projects: &[ProjectId],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<ReportedRow>> {
    // Only USD money is compared with our USD costs.
    let mut q = Sql::new(
        conn.get_database_backend(),
        &format!(
            "SELECT provider, model, line_item, bucket_start / 86400000000 AS day, kind, {} \
             FROM provider_reports WHERE ",
            analytics::wide_sums(&[
                "CASE WHEN currency IS NULL OR currency = 'USD' THEN amount_nanos END",
                "input_tokens + cache_read_tokens + cache_write_tokens + cache_write_1h_tokens",
                "output_tokens",
                "requests",
            ])
        ),
    );
    let (a, b) = (
        q.param(time::to_micros(start)),
        q.param(time::to_micros(end)),
    );
    q.push(&format!("bucket_start >= {a} AND bucket_start < {b}"));
    filter_in(
        &mut q,
        "provider",
        filter
            .providers
            .iter()
            .map(|p| Value::from(p.as_str().to_owned())),
    );
    filter_in(
        &mut q,
        "project_id",
        projects.iter().map(|p| Value::from(p.0)),
    );
    q.push(" GROUP BY provider, model, line_item, bucket_start / 86400000000, kind");
    let rows = conn
        .query_all_raw(q.statement())
        .await
        .context("summing provider reports per day")?;
    rows.into_iter()
        .map(|r| {
            let kind: String = r.try_get_by_index(4).context("reading a kind")?;
            Ok(ReportedRow {
                provider: r.try_get_by_index(0).context("reading a provider")?,
                model: r.try_get_by_index(1).context("reading a model")?,
                line_item: r.try_get_by_index(2).context("reading a line item")?,
                day: r.try_get_by_index(3).context("reading a day")?,
                amount_nanos: analytics::wide_sum_or_null(&r, 5)?,
                input: analytics::wide_sum(&r, 7)?,
                output: analytics::wide_sum(&r, 9)?,
                requests: analytics::wide_sum(&r, 11)?,
                counts_cost: kind == "COST" || kind == "MANUAL",
                counts_tokens: kind == "USAGE" || kind == "MANUAL",
            })
        })
        .collect()
}

pub(crate) fn filter_in(q: &mut Sql, column: &str, values: impl Iterator<Item = Value>) {
    let values: Vec<Value> = values.collect();
    if values.is_empty() {
        return;
    }
    let marks: Vec<String> = values.into_iter().map(|v| q.param(v)).collect();
    q.push(&format!(" AND {column} IN ({})", marks.join(", ")));
}

/// A `SUM(..)` of BIGINTs: PostgreSQL returns NUMERIC, SQLite an integer.
pub(crate) fn sum(row: &sea_orm::QueryResult, index: usize) -> Result<Option<i64>> {
    if let Ok(v) = row.try_get_by_index::<Option<i64>>(index) {
        return Ok(v);
    }
    let d: Option<Decimal> = row.try_get_by_index(index).context("reading a sum")?;
    d.map(|d| {
        i64::try_from(d).map_err(|e| Error::internal("reading a sum", anyhow::anyhow!("{e}")))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(cost_nanos: Option<i64>, tokens: i64) -> Side {
        Side {
            cost: cost_nanos.map(Usd::from_nanos),
            tokens: i128::from(tokens),
            present: true,
            ..Side::default()
        }
    }

    fn status(t: Side, r: Side) -> ReconciliationStatus {
        let p = Provider::parse("openai").unwrap();
        let d = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        compare(p, d, "gpt-4o".into(), t, r, DEFAULT_TOLERANCE_PCT).status
    }

    #[test]
    fn statuses_follow_the_tolerance() {
        let usd = |d: i64| Some(d * 1_000_000_000);
        assert_eq!(
            status(side(usd(100), 0), side(usd(104), 0)),
            ReconciliationStatus::Matched
        );
        assert_eq!(
            status(side(usd(100), 0), side(usd(105), 0)),
            ReconciliationStatus::Matched
        );
        assert_eq!(
            status(side(usd(100), 0), side(usd(106), 0)),
            ReconciliationStatus::Drift
        );
        assert_eq!(
            status(side(usd(100), 0), Side::default()),
            ReconciliationStatus::MissingReported
        );
        assert_eq!(
            status(Side::default(), side(usd(3), 0)),
            ReconciliationStatus::MissingTracked
        );
        // Without reported money, tokens are compared.
        assert_eq!(
            status(side(usd(1), 1000), side(None, 990)),
            ReconciliationStatus::Matched
        );
        assert_eq!(
            status(side(usd(1), 1000), side(None, 800)),
            ReconciliationStatus::Drift
        );
    }

    #[test]
    fn line_items_name_models_only_when_they_do() {
        assert_eq!(
            model_of_line_item("gpt-4o-2024-08-06, input"),
            "gpt-4o-2024-08-06"
        );
        assert_eq!(model_of_line_item("web search"), "");
        assert_eq!(model_of_line_item("Copilot Business seats, monthly"), "");
        assert_eq!(model_of_line_item(""), "");
    }

    #[test]
    fn models_lose_case_and_date_suffixes() {
        assert_eq!(canonical_model("GPT-4o-2024-08-06"), "gpt-4o");
        assert_eq!(canonical_model("gpt-4o"), "gpt-4o");
        assert_eq!(canonical_model("gpt-4o-mini"), "gpt-4o-mini");
        assert_eq!(
            canonical_model("claude-sonnet-4-5-20250929"),
            "claude-sonnet-4-5"
        );
        assert_eq!(canonical_model("foo-large-latest"), "foo-large");
    }
}
