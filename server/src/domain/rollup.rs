//! Rollups of tracked usage (see [`ALL`]): per UTC day, project, provider and model
//! (`usage_rollup_days`); per UTC day, project and provider
//! (`usage_rollup_provider_days`); per UTC day, provider and model, every project
//! together (`usage_rollup_global_days`); per UTC hour, project and provider
//! (`usage_rollup_hours`); and per UTC hour, project, provider and model
//! (`usage_rollup_model_hours`). The coarser the table, the fewer rows a question
//! reads; analytics pick the smallest one that has every dimension asked for.
//!
//! Why they are exact: [`RollupHook`] is a ledger hook, so it runs inside the very
//! transaction that inserts or re-prices events, with exactly the changed events, and
//! adds their deltas with `INSERT … ON CONFLICT DO UPDATE SET x = x + excluded.x`. A
//! rollup row therefore always equals the `GROUP BY` of its events; a failure rolls
//! both back. Analytics read rollups for whole days and hours and raw events only for
//! what is left at the edges, adding or subtracting pieces (see `analytics.rs`).

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

/// The measure columns every rollup table has, in `Delta`'s order (analytics read
/// them back in this order too).
pub const COLUMNS: [&str; 12] = [
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

/// One rollup table: the time unit it sums over and which of project and model it
/// keeps apart (the provider is always kept).
#[derive(Debug, Clone, Copy)]
pub struct Rollup {
    /// The table.
    pub table: &'static str,
    /// Its time column.
    pub time: &'static str,
    /// Microseconds in its time unit.
    pub unit: i64,
    /// Whether it has `project_id`.
    pub project: bool,
    /// Whether it has `model`.
    pub model: bool,
}

/// Per UTC day, project, provider and model.
pub const DAYS: Rollup = Rollup {
    table: "usage_rollup_days",
    time: "day",
    unit: DAY,
    project: true,
    model: true,
};
/// Per UTC day, project and provider.
pub const PROVIDER_DAYS: Rollup = Rollup {
    table: "usage_rollup_provider_days",
    time: "day",
    unit: DAY,
    project: true,
    model: false,
};
/// Per UTC day, provider and model, every project together.
pub const GLOBAL_DAYS: Rollup = Rollup {
    table: "usage_rollup_global_days",
    time: "day",
    unit: DAY,
    project: false,
    model: true,
};
/// Per UTC hour, project and provider.
pub const HOURS: Rollup = Rollup {
    table: "usage_rollup_hours",
    time: "hour",
    unit: HOUR,
    project: true,
    model: false,
};
/// Per UTC hour, project, provider and model.
pub const MODEL_HOURS: Rollup = Rollup {
    table: "usage_rollup_model_hours",
    time: "hour",
    unit: HOUR,
    project: true,
    model: true,
};

/// Every rollup the hook keeps.
pub const ALL: [Rollup; 5] = [DAYS, PROVIDER_DAYS, GLOBAL_DAYS, HOURS, MODEL_HOURS];

/// A rollup row's key: time unit start, project and model where the table has them,
/// provider.
type Key = (i64, Option<ProjectId>, String, Option<String>);

impl Rollup {
    fn key(&self, e: &UsageEvent) -> Key {
        let at = crate::domain::time::to_micros(e.occurred_at);
        (
            at.div_euclid(self.unit) * self.unit,
            self.project.then_some(e.project),
            e.provider.as_str().to_owned(),
            self.model.then(|| e.model.clone()),
        )
    }

    fn key_columns(&self) -> Vec<&'static str> {
        let mut keys = vec![self.time];
        if self.project {
            keys.push("project_id");
        }
        keys.push("provider");
        if self.model {
            keys.push("model");
        }
        keys
    }
}

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
            let mut deltas: Vec<BTreeMap<Key, Delta>> = vec![BTreeMap::new(); ALL.len()];
            let mut add = |e: &UsageEvent, d: Delta| {
                for (rollup, rows) in ALL.iter().zip(deltas.iter_mut()) {
                    rows.entry(rollup.key(e)).or_default().add(&d);
                }
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
            for (rollup, rows) in ALL.iter().zip(deltas) {
                let rows: Vec<(Vec<Value>, Delta)> = rows
                    .into_iter()
                    .map(|((at, project, provider, model), d)| {
                        let mut key = vec![Value::from(at)];
                        key.extend(project.map(|p| Value::from(p.0)));
                        key.push(provider.into());
                        key.extend(model.map(Value::from));
                        (key, d)
                    })
                    .collect();
                upsert(txn, rollup.table, &rollup.key_columns(), rows).await?;
            }
            Ok(())
        })
    }
}

/// Rows per statement: at most 16 values each, far below SQLite's bind limit.
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
