//! Rollups of tracked usage: per UTC day, project, provider and model
//! (`usage_rollup_days`), per UTC hour, project and provider (`usage_rollup_hours`),
//! and per UTC hour, project, provider and model (`usage_rollup_model_hours`).
//!
//! Why they are exact: [`RollupHook`] is a ledger hook, so it runs inside the very
//! transaction that inserts or re-prices events, with exactly the changed events, and
//! adds their deltas with `INSERT … ON CONFLICT DO UPDATE SET x = x + excluded.x`. A
//! rollup row therefore always equals the `GROUP BY` of its events; a failure rolls
//! both back. Analytics read rollups for whole days or hours inside a range and the raw
//! events only for the partial edges (see `analytics.rs`).

use crate::domain::error::{Context, Result};
use crate::domain::ids::ProjectId;
use crate::domain::usage::UsageEvent;
use crate::domain::usage::ingest::{LedgerChange, LedgerHook};
use futures::future::BoxFuture;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement, Value};
use std::collections::BTreeMap;

/// Microseconds in a UTC day and hour.
pub const DAY: i64 = 86_400_000_000;
/// Microseconds in an hour.
pub const HOUR: i64 = 3_600_000_000;

/// Additive measures of a rollup row (same order as the table's columns).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Delta([i64; 12]);

const COLUMNS: [&str; 12] = [
    "cost_nanos",
    "requests",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "reasoning_tokens",
    "events",
    "unpriced",
    "latency_sum",
    "latency_count",
];

impl Delta {
    fn of(e: &UsageEvent) -> Delta {
        let t = &e.tokens;
        Delta([
            e.cost.map(|c| c.nanos()).unwrap_or(0),
            e.requests,
            t.input,
            t.output,
            t.cache_read,
            t.cache_write,
            t.cache_write_1h,
            t.reasoning,
            1,
            i64::from(e.cost.is_none()),
            e.latency_ms.unwrap_or(0),
            i64::from(e.latency_ms.is_some()),
        ])
    }

    fn add(&mut self, o: &Delta) {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a = a.saturating_add(b);
        }
    }
}

type DayKey = (i64, ProjectId, String, String);
type HourKey = (i64, ProjectId, String);
type ModelHourKey = (i64, ProjectId, String, String);

/// The ledger hook that keeps the rollups.
pub struct RollupHook;

impl LedgerHook for RollupHook {
    fn name(&self) -> &'static str {
        "rollups"
    }

    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        change: LedgerChange<'a>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut days: BTreeMap<DayKey, Delta> = BTreeMap::new();
            let mut hours: BTreeMap<HourKey, Delta> = BTreeMap::new();
            let mut model_hours: BTreeMap<ModelHourKey, Delta> = BTreeMap::new();
            let mut add = |e: &UsageEvent, d: Delta| {
                let at = crate::domain::time::to_micros(e.occurred_at);
                let provider = e.provider.as_str().to_owned();
                days.entry((
                    at.div_euclid(DAY) * DAY,
                    e.project,
                    provider.clone(),
                    e.model.clone(),
                ))
                .or_default()
                .add(&d);
                model_hours
                    .entry((
                        at.div_euclid(HOUR) * HOUR,
                        e.project,
                        provider.clone(),
                        e.model.clone(),
                    ))
                    .or_default()
                    .add(&d);
                hours
                    .entry((at.div_euclid(HOUR) * HOUR, e.project, provider))
                    .or_default()
                    .add(&d);
            };
            match change {
                LedgerChange::Inserted(events) => {
                    for e in events {
                        add(e, Delta::of(e));
                    }
                }
                LedgerChange::Repriced(changed) => {
                    for r in changed {
                        let before = r.previous_cost;
                        let after = r.event.cost;
                        let mut d = Delta::default();
                        d.0[0] = after.map(|c| c.nanos()).unwrap_or(0)
                            - before.map(|c| c.nanos()).unwrap_or(0);
                        d.0[9] = i64::from(after.is_none()) - i64::from(before.is_none());
                        if d != Delta::default() {
                            add(&r.event, d);
                        }
                    }
                }
            }
            let day_rows: Vec<(Vec<Value>, Delta)> = days
                .into_iter()
                .map(|((day, p, provider, model), d)| {
                    (
                        vec![day.into(), p.0.into(), provider.into(), model.into()],
                        d,
                    )
                })
                .collect();
            upsert(
                txn,
                "usage_rollup_days",
                &["day", "project_id", "provider", "model"],
                day_rows,
            )
            .await?;
            let hour_rows: Vec<(Vec<Value>, Delta)> = hours
                .into_iter()
                .map(|((hour, p, provider), d)| (vec![hour.into(), p.0.into(), provider.into()], d))
                .collect();
            upsert(
                txn,
                "usage_rollup_hours",
                &["hour", "project_id", "provider"],
                hour_rows,
            )
            .await?;
            let model_hour_rows: Vec<(Vec<Value>, Delta)> = model_hours
                .into_iter()
                .map(|((hour, p, provider, model), d)| {
                    (
                        vec![hour.into(), p.0.into(), provider.into(), model.into()],
                        d,
                    )
                })
                .collect();
            upsert(
                txn,
                "usage_rollup_model_hours",
                &["hour", "project_id", "provider", "model"],
                model_hour_rows,
            )
            .await
        })
    }
}

/// Rows per statement: 16 values each, far below SQLite's bind limit.
const ROWS_PER_STATEMENT: usize = 400;

async fn upsert(
    txn: &DatabaseTransaction,
    table: &str,
    keys: &[&str],
    rows: Vec<(Vec<Value>, Delta)>,
) -> Result<()> {
    let backend = txn.get_database_backend();
    let all: Vec<&str> = keys.iter().copied().chain(COLUMNS).collect();
    let set: Vec<String> = COLUMNS
        .iter()
        .map(|c| format!("{c} = {table}.{c} + excluded.{c}"))
        .collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * all.len());
        let mut tuples = Vec::with_capacity(chunk.len());
        for (key, delta) in chunk {
            let mut marks = Vec::with_capacity(all.len());
            for v in key
                .iter()
                .cloned()
                .chain(delta.0.iter().map(|&n| Value::from(n)))
            {
                values.push(v);
                marks.push(match backend {
                    DbBackend::Postgres => format!("${}", values.len()),
                    _ => "?".to_owned(),
                });
            }
            tuples.push(format!("({})", marks.join(", ")));
        }
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES {} ON CONFLICT ({}) DO UPDATE SET {}",
            all.join(", "),
            tuples.join(", "),
            keys.join(", "),
            set.join(", ")
        );
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await
            .context("updating usage rollups")?;
    }
    Ok(())
}
