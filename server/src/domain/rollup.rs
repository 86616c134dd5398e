//! Rollups of tracked usage (see [`ALL`]): per UTC day, project, provider and model
//! (`usage_rollup_days`); per UTC day, project and provider
//! (`usage_rollup_provider_days`); per UTC day, provider and model, every project
//! together (`usage_rollup_global_days`); per UTC hour, project and provider
//! (`usage_rollup_hours`); per UTC hour, project, provider and model
//! (`usage_rollup_model_hours`); the same two per UTC hour with every project together
//! (`usage_rollup_global_hours`, `usage_rollup_global_model_hours`); by endpoint
//! (per UTC day with the model, `usage_rollup_endpoint_days`, and the same with every
//! project together, `usage_rollup_endpoint_global_days`, also per week,
//! `usage_rollup_endpoint_global_weeks`; per UTC hour without the model,
//! `usage_rollup_endpoint_hours`, and the same with every project together,
//! `usage_rollup_endpoint_global_hours`), by end user and by source (per UTC day and hour,
//! project and provider), and by end user per UTC day and provider, every project
//! together (`usage_rollup_user_global_days`). The coarser the table, the
//! fewer rows a question reads; analytics pick the smallest one that has every
//! dimension asked for or filtered by. Latency sketches ([`SKETCHES`]: per week, UTC day
//! or hour, project, provider and model, the daily one also with every project together;
//! per UTC day, project and endpoint, also with every project together; an event count
//! per bucket, 32 buckets to a row; see `migration::sketch`) answer percentiles.
//!
//! Endpoints and end users are unbounded, so each project keeps at most
//! `AISPEND_ROLLUP_DISTINCT_VALUES` of each apart (`usage_rollup_values`): a value is
//! admitted with its first event while the project has room, else never, and its
//! events go to the [`OTHER`] bucket, which marks the project as overflowed (nothing
//! more is admitted then, even if the limit grows). An admitted value's rows therefore
//! hold all of its events, and a question that needs a value of the long tail reads
//! raw events instead (see `analytics/tables.rs`). Ingest holds the ledger lock while it
//! admits, so two transactions never admit past the limit.
//!
//! Why they are exact: [`RollupHook`] is a ledger hook, so it runs inside the very
//! transaction that inserts or re-prices events, with exactly the changed events. An
//! insert admits the new events' endpoints and end users there and records their ids
//! as unfolded (`usage_unfolded`); the folder ([`fold`]) later adds them to every
//! rollup and sketch with `INSERT … ON CONFLICT DO UPDATE`, deleting their ids in the
//! same transaction, in batches of thousands. Every rollup or sketch read adds the
//! unfolded events of its range in the same statement (`analytics/tables.rs`), so a
//! rollup row plus its range's unfolded events always equals the `GROUP BY` of its
//! events, at any moment and in any snapshot; a failure rolls back the fold with its
//! deletions. Re-pricing, under the folder's lock, folds the unfolded events it changes
//! with their new cost and adds only the cost's delta for the others.
//!
//! Why they never overflow: each measure `x` is stored as two columns, `x` in
//! `[0, 10^9)` and `x_hi`, the value being `x_hi × 10^9 + x` (see
//! [`crate::domain::money::Wide`]); deltas are summed in `i128` and the upsert
//! carries. A row shared by every project (`usage_rollup_global_days`) can take more
//! than 9 × 10^10 events of the largest value an event may carry, so no ingest token
//! can make another project's ingest fail by filling it.
//!
//! Analytics read rollups for whole days and hours and raw events only for what is
//! left at the edges, adding or subtracting pieces (see `analytics/tables.rs`).

use crate::domain::error::{Context, Result};
use crate::domain::ids::ProjectId;
use crate::domain::json_rows::{self, Kind};
use crate::domain::money::Wide;
use crate::domain::usage::UsageEvent;
use crate::domain::usage::ingest::{LedgerChange, LedgerHook, Repriced};
use futures::future::BoxFuture;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement, Value};
use serde_json::Value as Json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

pub mod fold;

/// Microseconds in a UTC day and hour.
pub const DAY: i64 = 86_400_000_000;
/// Microseconds in an hour.
pub const HOUR: i64 = 3_600_000_000;
/// Microseconds in a week: seven UTC days, weeks counted from the Unix epoch (a
/// Thursday).
pub const WEEK: i64 = 7 * DAY;

/// Additive measures of a rollup row (same order as the table's columns), summed
/// wide: a transaction's delta may exceed an `i64`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Delta([i128; 19]);

/// The measure columns every rollup table has, in `Delta`'s order (analytics read
/// them back in this order too).
pub const COLUMNS: [&str; 19] = migration::ROLLUP_MEASURES;

impl Delta {
    fn of(e: &UsageEvent) -> Delta {
        let t = &e.tokens;
        Delta(
            [
                0,
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
                t.audio_input,
                t.audio_output,
                t.image_input,
                t.image_output,
                t.images,
                t.web_searches,
                t.video_seconds,
            ]
            .map(i128::from),
        )
        .with_cost(e.cost.map(|c| c.nanos()).unwrap_or(0))
    }

    fn with_cost(mut self, nanos: i128) -> Delta {
        self.0[0] = nanos;
        self
    }

    /// Adds `o`. No reachable sum leaves `i128` (a transaction holds at most
    /// `MAX_BATCH` events, each below `i64::MAX` per measure), but the sum is checked
    /// all the same.
    fn add(&mut self, o: &Delta) -> Result<()> {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a = a.checked_add(b).ok_or_else(|| {
                crate::domain::Error::internal(
                    "summing a rollup delta",
                    anyhow::anyhow!("i128 overflow"),
                )
            })?;
        }
        Ok(())
    }
}

/// The bucket of endpoints or end users that a project's rollups do not keep apart
/// (a leading space: stored values are trimmed, so no real value is this).
pub const OTHER: &str = " other";

/// How many endpoints and how many end users each project's rollups keep apart by
/// default.
pub const DEFAULT_DISTINCT_VALUES: usize = 1000;

/// One rollup table: the time unit it sums over and which of project, provider, model
/// and an event attribute it keeps apart.
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
    /// Whether it has `provider`.
    pub provider: bool,
    /// Whether it has `model`.
    pub model: bool,
    /// The event attribute column it keeps apart (`endpoint`, `end_user` or
    /// `source`; none of the project-wide rollups).
    pub attr: Option<&'static str>,
}

/// Per UTC day, project, provider and model.
pub const DAYS: Rollup = Rollup {
    table: "usage_rollup_days",
    time: "day",
    unit: DAY,
    project: true,
    provider: true,
    model: true,
    attr: None,
};
/// Per UTC day, project and provider.
pub const PROVIDER_DAYS: Rollup = Rollup {
    table: "usage_rollup_provider_days",
    time: "day",
    unit: DAY,
    project: true,
    provider: true,
    model: false,
    attr: None,
};
/// Per UTC day, provider and model, every project together.
pub const GLOBAL_DAYS: Rollup = Rollup {
    table: "usage_rollup_global_days",
    time: "day",
    unit: DAY,
    project: false,
    provider: true,
    model: true,
    attr: None,
};
/// Per UTC hour, project and provider.
pub const HOURS: Rollup = Rollup {
    table: "usage_rollup_hours",
    time: "hour",
    unit: HOUR,
    project: true,
    provider: true,
    model: false,
    attr: None,
};
/// Per UTC hour, project, provider and model.
pub const MODEL_HOURS: Rollup = Rollup {
    table: "usage_rollup_model_hours",
    time: "hour",
    unit: HOUR,
    project: true,
    provider: true,
    model: true,
    attr: None,
};

/// Per UTC day, project, provider, model and endpoint.
pub const ENDPOINT_DAYS: Rollup = Rollup {
    table: "usage_rollup_endpoint_days",
    time: "day",
    unit: DAY,
    project: true,
    provider: true,
    model: true,
    attr: Some("endpoint"),
};
/// Per UTC hour, project, provider and endpoint.
pub const ENDPOINT_HOURS: Rollup = Rollup {
    table: "usage_rollup_endpoint_hours",
    time: "hour",
    unit: HOUR,
    project: true,
    provider: true,
    model: false,
    attr: Some("endpoint"),
};
/// Per UTC day, project, provider and end user.
pub const USER_DAYS: Rollup = Rollup {
    table: "usage_rollup_user_days",
    time: "day",
    unit: DAY,
    project: true,
    provider: true,
    model: false,
    attr: Some("end_user"),
};
/// Per UTC hour, project, provider and end user.
pub const USER_HOURS: Rollup = Rollup {
    table: "usage_rollup_user_hours",
    time: "hour",
    unit: HOUR,
    project: true,
    provider: true,
    model: false,
    attr: Some("end_user"),
};
/// Per UTC day, project, provider and source.
pub const SOURCE_DAYS: Rollup = Rollup {
    table: "usage_rollup_source_days",
    time: "day",
    unit: DAY,
    project: true,
    provider: true,
    model: false,
    attr: Some("source"),
};
/// Per UTC hour, project, provider and source.
pub const SOURCE_HOURS: Rollup = Rollup {
    table: "usage_rollup_source_hours",
    time: "hour",
    unit: HOUR,
    project: true,
    provider: true,
    model: false,
    attr: Some("source"),
};

/// Per UTC day, provider, model and endpoint, every project together: recommendations
/// and anomalies ask by endpoint and model, usually across every project, where
/// `usage_rollup_endpoint_days` holds a row per project too.
pub const ENDPOINT_GLOBAL_DAYS: Rollup = Rollup {
    table: "usage_rollup_endpoint_global_days",
    time: "day",
    unit: DAY,
    project: false,
    provider: true,
    model: true,
    attr: Some("endpoint"),
};

/// Per UTC hour, provider and endpoint, every project together: trends by endpoint in
/// hours (or in days of a zone whose midnight is not UTC's) and the hour edges of
/// questions by endpoint about no project.
pub const ENDPOINT_GLOBAL_HOURS: Rollup = Rollup {
    table: "usage_rollup_endpoint_global_hours",
    time: "hour",
    unit: HOUR,
    project: false,
    provider: true,
    model: false,
    attr: Some("endpoint"),
};

/// Per UTC day, provider and end user, every project together: an operator's
/// breakdown by end user (and provider).
pub const USER_GLOBAL_DAYS: Rollup = Rollup {
    table: "usage_rollup_user_global_days",
    time: "day",
    unit: DAY,
    project: false,
    provider: true,
    model: false,
    attr: Some("end_user"),
};

/// Per UTC hour and provider, every project together: trends in hours (or in days of a
/// zone whose midnight is not UTC's) and the hour edges of questions about no project.
pub const GLOBAL_HOURS: Rollup = Rollup {
    table: "usage_rollup_global_hours",
    time: "hour",
    unit: HOUR,
    project: false,
    provider: true,
    model: false,
    attr: None,
};
/// Per UTC hour, provider and model, every project together: the same by model.
pub const GLOBAL_MODEL_HOURS: Rollup = Rollup {
    table: "usage_rollup_global_model_hours",
    time: "hour",
    unit: HOUR,
    project: false,
    provider: true,
    model: true,
    attr: None,
};

/// Per week (see [`WEEK`]), provider, model and endpoint, every project together:
/// recommendations and breakdowns by endpoint across projects over weeks read a
/// seventh of the daily rows.
pub const ENDPOINT_GLOBAL_WEEKS: Rollup = Rollup {
    table: "usage_rollup_endpoint_global_weeks",
    time: "week",
    unit: WEEK,
    project: false,
    provider: true,
    model: true,
    attr: Some("endpoint"),
};

/// Every rollup the hook keeps.
pub const ALL: [Rollup; 17] = [
    DAYS,
    PROVIDER_DAYS,
    GLOBAL_DAYS,
    HOURS,
    MODEL_HOURS,
    ENDPOINT_DAYS,
    ENDPOINT_HOURS,
    USER_DAYS,
    USER_HOURS,
    SOURCE_DAYS,
    SOURCE_HOURS,
    ENDPOINT_GLOBAL_DAYS,
    USER_GLOBAL_DAYS,
    GLOBAL_HOURS,
    GLOBAL_MODEL_HOURS,
    ENDPOINT_GLOBAL_WEEKS,
    ENDPOINT_GLOBAL_HOURS,
];

/// A latency sketch table: per time unit, project, provider and model, or project and
/// one attribute (endpoint, end user or source), and chunk of [`migration::sketch::CHUNK`] buckets, a count per bucket
/// (columns [`migration::sketch::COUNT_COLUMNS`]).
#[derive(Debug, Clone, Copy)]
pub struct Sketch {
    /// The table.
    pub table: &'static str,
    /// Its time column.
    pub time: &'static str,
    /// Microseconds in its time unit.
    pub unit: i64,
    /// Whether it has `project_id`.
    pub project: bool,
    /// Whether it has `provider` and `model` (the endpoint sketches have neither).
    pub model: bool,
    /// The event attribute it keeps apart (`endpoint`, stored as the endpoint rollups
    /// store it), if any.
    pub attr: Option<&'static str>,
}

impl Sketch {
    /// Its keys but the chunk, as those of a rollup of the same table: a sketch row is
    /// keyed like a rollup row, then by the chunk.
    fn row_keys(&self) -> Rollup {
        Rollup {
            table: self.table,
            time: self.time,
            unit: self.unit,
            project: self.project,
            provider: self.model,
            model: self.model,
            attr: self.attr,
        }
    }

    /// Its key columns and their kinds, in the order of its primary key: the time, the
    /// project, provider, model and attribute it has, then the chunk.
    pub fn key_columns(&self) -> Vec<(&'static str, Kind)> {
        let mut keys = self.row_keys().key_columns();
        keys.push(("chunk", Kind::IntNotNull));
        keys
    }
}

/// Latency sketches per UTC day.
pub const LATENCY_DAYS: Sketch = Sketch {
    table: "usage_latency_day_chunks",
    time: "day",
    unit: DAY,
    project: true,
    model: true,
    attr: None,
};
/// Latency sketches per week (seven UTC days from the Unix epoch), project, provider
/// and model (migration 000027): a month by project and model reads a fifth of the
/// daily rows.
pub const LATENCY_WEEKS: Sketch = Sketch {
    table: "usage_latency_week_chunks",
    time: "week",
    unit: WEEK,
    project: true,
    model: true,
    attr: None,
};
/// Latency sketches per UTC hour.
pub const LATENCY_HOURS: Sketch = Sketch {
    table: "usage_latency_hour_chunks",
    time: "hour",
    unit: HOUR,
    project: true,
    model: true,
    attr: None,
};
/// Latency sketches per UTC day, every project together.
pub const LATENCY_GLOBAL_DAYS: Sketch = Sketch {
    table: "usage_latency_global_day_chunks",
    time: "day",
    unit: DAY,
    project: false,
    model: true,
    attr: None,
};
/// Latency sketches per UTC day, project and endpoint (migration 000019).
pub const LATENCY_ENDPOINT_DAYS: Sketch = Sketch {
    table: "usage_latency_endpoint_day_chunks",
    time: "day",
    unit: DAY,
    project: true,
    model: false,
    attr: Some("endpoint"),
};
/// Latency sketches per UTC day and endpoint, every project together.
pub const LATENCY_ENDPOINT_GLOBAL_DAYS: Sketch = Sketch {
    table: "usage_latency_endpoint_global_day_chunks",
    time: "day",
    unit: DAY,
    project: false,
    model: false,
    attr: Some("endpoint"),
};

/// Latency sketches per UTC day, project and end user (migration 000022).
pub const LATENCY_USER_DAYS: Sketch = Sketch {
    table: "usage_latency_user_day_chunks",
    time: "day",
    unit: DAY,
    project: true,
    model: false,
    attr: Some("end_user"),
};
/// Latency sketches per UTC day and end user, every project together.
pub const LATENCY_USER_GLOBAL_DAYS: Sketch = Sketch {
    table: "usage_latency_user_global_day_chunks",
    time: "day",
    unit: DAY,
    project: false,
    model: false,
    attr: Some("end_user"),
};
/// Latency sketches per UTC day, project and source (migration 000022).
pub const LATENCY_SOURCE_DAYS: Sketch = Sketch {
    table: "usage_latency_source_day_chunks",
    time: "day",
    unit: DAY,
    project: true,
    model: false,
    attr: Some("source"),
};
/// Latency sketches per UTC day and source, every project together.
pub const LATENCY_SOURCE_GLOBAL_DAYS: Sketch = Sketch {
    table: "usage_latency_source_global_day_chunks",
    time: "day",
    unit: DAY,
    project: false,
    model: false,
    attr: Some("source"),
};

/// Every latency sketch the hook keeps.
pub const SKETCHES: [Sketch; 10] = [
    LATENCY_DAYS,
    LATENCY_WEEKS,
    LATENCY_HOURS,
    LATENCY_GLOBAL_DAYS,
    LATENCY_ENDPOINT_DAYS,
    LATENCY_ENDPOINT_GLOBAL_DAYS,
    LATENCY_USER_DAYS,
    LATENCY_USER_GLOBAL_DAYS,
    LATENCY_SOURCE_DAYS,
    LATENCY_SOURCE_GLOBAL_DAYS,
];

/// The sketch buckets' upper bounds (see `migration::sketch`), computed once.
pub fn sketch_bounds() -> &'static [i64] {
    static BOUNDS: std::sync::OnceLock<Vec<i64>> = std::sync::OnceLock::new();
    BOUNDS.get_or_init(migration::sketch::bounds)
}

/// A rollup row's key: time unit start, then project, provider, model and attribute
/// value where the table has them, borrowed from the event (no copy per event and
/// table).
type Key<'e> = (
    i64,
    Option<ProjectId>,
    Option<&'e str>,
    Option<&'e str>,
    Option<&'e str>,
);

impl Rollup {
    fn key<'e>(&self, e: &'e UsageEvent, admitted: &Admitted) -> Key<'e> {
        let at = crate::domain::time::to_micros(e.occurred_at);
        (
            at.div_euclid(self.unit) * self.unit,
            self.project.then_some(e.project),
            self.provider.then(|| e.provider.as_str()),
            self.model.then_some(e.model.as_str()),
            self.attr.map(|a| match a {
                "source" => e.source.as_str(),
                _ => admitted.stored(e.project, a, attr_of(e, a)),
            }),
        )
    }

    /// Its key columns and their kinds, in the order of its primary key: the time,
    /// then the project, provider, model and attribute it has.
    pub fn key_columns(&self) -> Vec<(&'static str, Kind)> {
        let mut keys = vec![(self.time, Kind::IntNotNull)];
        if self.project {
            keys.push(("project_id", Kind::Uuid));
        }
        if self.provider {
            keys.push(("provider", Kind::TextNotNull));
        }
        if self.model {
            keys.push(("model", Kind::TextNotNull));
        }
        keys.extend(self.attr.map(|a| (a, Kind::TextNotNull)));
        keys
    }
}

/// An event's endpoint or end user.
fn attr_of<'e>(e: &'e UsageEvent, column: &str) -> Option<&'e str> {
    match column {
        "endpoint" => e.endpoint.as_deref(),
        _ => e.user.as_deref(),
    }
}

/// The endpoints and end users the rollups keep apart, per project and column, for
/// the events of one change.
#[derive(Debug, Default)]
struct Admitted(HashMap<(ProjectId, &'static str), HashSet<String>>);

impl Admitted {
    /// The value a rollup row stores for an event's attribute.
    fn stored<'e>(
        &self,
        project: ProjectId,
        column: &'static str,
        value: Option<&'e str>,
    ) -> &'e str {
        match value {
            None => "",
            Some(v)
                if self
                    .0
                    .get(&(project, column))
                    .is_some_and(|s| s.contains(v)) =>
            {
                v
            }
            Some(_) => OTHER,
        }
    }

    /// Looks up (and, when `admit` and the project has room, admits) the values of
    /// `events`. Runs inside the ingest transaction (on PostgreSQL alongside others,
    /// with a lock per project and column it reads, see below). `known`
    /// answers for values it has seen admitted and projects it has seen overflow
    /// (neither is ever undone), so only values new to this process are read.
    async fn load<'e>(
        txn: &DatabaseTransaction,
        events: impl Iterator<Item = &'e UsageEvent>,
        admit: Option<usize>,
        known: &Mutex<KnownValues>,
    ) -> Result<Admitted> {
        // Per project and column, the values in order of first appearance.
        let mut wanted: BTreeMap<(ProjectId, &'static str), Vec<String>> = BTreeMap::new();
        for e in events {
            for column in ["endpoint", "end_user"] {
                if let Some(v) = attr_of(e, column) {
                    let values = wanted.entry((e.project, column)).or_default();
                    if !values.iter().any(|x| x == v) {
                        values.push(v.to_owned());
                    }
                }
            }
        }
        let backend = txn.get_database_backend();
        let mark = |n: usize| match backend {
            DbBackend::Postgres => format!("${n}"),
            _ => format!("?{n}"),
        };
        let mut out = Admitted::default();
        for ((project, column), values) in wanted {
            let (mut admitted, unknown, mut overflowed) = {
                let cache = known.lock().map_err(|_| {
                    crate::domain::Error::internal(
                        "reading the admitted values",
                        anyhow::anyhow!("poisoned lock"),
                    )
                })?;
                let seen = cache.admitted.get(&(project, column));
                let (admitted, unknown): (Vec<&String>, Vec<&String>) = values
                    .iter()
                    .partition(|v| seen.is_some_and(|seen| seen.contains(v.as_str())));
                let overflowed = cache.overflowed.contains(&(project, column));
                (
                    admitted.into_iter().cloned().collect::<HashSet<String>>(),
                    unknown,
                    overflowed,
                )
            };
            // An overflowed project admits nothing more: its unknown values are
            // [`OTHER`] without asking the database.
            if !unknown.is_empty() && !overflowed {
                if backend == DbBackend::Postgres && admit.is_some() {
                    // Ingest runs concurrently on PostgreSQL: one transaction at a
                    // time decides a project's values of a column (held to its end,
                    // taken in key order), so two never admit past the limit or put
                    // one value both apart and in [`OTHER`]. The reads below are
                    // statements of their own: they see what the last holder committed.
                    // A reader that admits nothing (the folder, re-pricing) takes no
                    // lock: its events committed, so each of their values was decided
                    // by then, and it would otherwise hold every ingest admitting
                    // that project's new values for the length of a fold.
                    txn.execute_raw(Statement::from_sql_and_values(
                        backend,
                        "SELECT pg_advisory_xact_lock($1, hashtext($2 || $3))",
                        [
                            Value::from(ADMISSION_LOCK),
                            Value::from(project.0.simple().to_string()),
                            Value::from(column),
                        ],
                    ))
                    .await
                    .context("taking the lock on the values rollups keep apart")?;
                }
                let mut values: Vec<Json> =
                    unknown.iter().map(|v| Json::from(v.as_str())).collect();
                values.push(Json::from(OTHER));
                let sql = format!(
                    "SELECT value FROM usage_rollup_values WHERE project_id = {} AND dimension = {} AND value IN (SELECT value FROM {})",
                    mark(1),
                    mark(2),
                    match backend {
                        DbBackend::Postgres => "json_array_elements_text($3::json)",
                        _ => "json_each(?3)",
                    }
                );
                let params = vec![
                    Value::from(project.0),
                    Value::from(column),
                    Value::from(Json::from(values).to_string()),
                ];
                let mut found: HashSet<String> = HashSet::new();
                for r in txn
                    .query_all_raw(Statement::from_sql_and_values(backend, sql, params))
                    .await
                    .context("reading the values rollups keep apart")?
                {
                    found.insert(r.try_get_by_index(0).context("reading a value")?);
                }
                overflowed = found.remove(OTHER);
                // These rows existed before this transaction (committed): safe to
                // remember. Values this transaction admits are remembered when a
                // later one finds them.
                if let Ok(mut cache) = known.lock() {
                    cache.remember(project, column, &found, overflowed);
                }
                admitted.extend(found);
                let new: Vec<&String> = unknown
                    .iter()
                    .copied()
                    .filter(|v| !admitted.contains(*v))
                    .collect();
                if let (Some(limit), false, false) = (admit, new.is_empty(), overflowed) {
                    let sql = format!(
                        "SELECT COUNT(*) FROM usage_rollup_values WHERE project_id = {} AND dimension = {} AND value <> {}",
                        mark(1),
                        mark(2),
                        mark(3)
                    );
                    let params = vec![
                        Value::from(project.0),
                        Value::from(column),
                        Value::from(OTHER),
                    ];
                    let count: i64 = match txn
                        .query_one_raw(Statement::from_sql_and_values(backend, sql, params))
                        .await
                        .context("counting the values rollups keep apart")?
                    {
                        Some(r) => r.try_get_by_index(0).context("reading a count")?,
                        None => 0,
                    };
                    let room = limit.saturating_sub(usize::try_from(count).unwrap_or(usize::MAX));
                    let mut insert: Vec<String> =
                        new.iter().take(room).map(|v| (*v).clone()).collect();
                    admitted.extend(insert.iter().cloned());
                    if new.len() > room {
                        insert.push(OTHER.to_owned());
                    }
                    let rows: Vec<Vec<Json>> = insert
                        .into_iter()
                        .map(|v| {
                            vec![
                                json_rows::uuid(project.0),
                                Json::from(column),
                                Json::from(v),
                            ]
                        })
                        .collect();
                    for stmt in json_rows::insert(
                        backend,
                        "usage_rollup_values (project_id, dimension, value)",
                        &[Kind::Uuid, Kind::Text, Kind::Text],
                        rows,
                        "ON CONFLICT DO NOTHING",
                    )? {
                        txn.execute_raw(stmt)
                            .await
                            .context("admitting values the rollups keep apart")?;
                    }
                }
            }
            out.0.entry((project, column)).or_default().extend(admitted);
        }
        Ok(out)
    }
}

/// The class of the PostgreSQL advisory locks (two `int4` keys: this and a hash of
/// project and column) under which values are admitted ("aisp" in ASCII).
pub const ADMISSION_LOCK: i32 = 0x6169_7370;

/// The endpoints and end users this process has seen admitted, and the projects it
/// has seen overflow, per column. Both only grow in the database, so what is here
/// stays true; what is not is read.
#[derive(Debug, Default)]
pub struct KnownValues {
    admitted: HashMap<(ProjectId, &'static str), HashSet<String>>,
    /// How many values `admitted` holds in all.
    values: usize,
    overflowed: HashSet<(ProjectId, &'static str)>,
}

/// More remembered values than this and the memory starts over (bounded memory).
const MAX_KNOWN_VALUES: usize = 200_000;

impl KnownValues {
    fn remember(
        &mut self,
        project: ProjectId,
        column: &'static str,
        admitted: &HashSet<String>,
        overflowed: bool,
    ) {
        if self.values + admitted.len() > MAX_KNOWN_VALUES {
            self.admitted.clear();
            self.values = 0;
        }
        let seen = self.admitted.entry((project, column)).or_default();
        for v in admitted {
            if seen.insert(v.clone()) {
                self.values += 1;
            }
        }
        if overflowed {
            self.overflowed.insert((project, column));
        }
    }
}

/// A sketch row's key: a rollup key (unit start, then project, provider, model and
/// attribute value where the table has them) and the chunk.
type SketchKey<'e> = (Key<'e>, i64);

/// The bucket counts of one sketch row.
type Chunk = [i64; migration::sketch::CHUNK as usize];

/// The ledger hook that keeps the rollups: it admits new events' values and leaves
/// the events unfolded for [`fold`], and keeps re-pricing exact.
pub struct RollupHook {
    /// How many endpoints and how many end users each project's rollups keep apart.
    distinct_values: usize,
    known: Mutex<KnownValues>,
    /// Told after every commit that left events unfolded: wakes the folder.
    unfolded: Arc<Notify>,
    /// Events this process's commits left unfolded since the folder last started: a
    /// full batch of them ends the folder's rest (see `fold::spawn`).
    pending: AtomicUsize,
}

impl RollupHook {
    /// A hook keeping `distinct_values` endpoints and end users apart per project.
    pub fn new(distinct_values: usize) -> RollupHook {
        RollupHook {
            distinct_values,
            known: Mutex::new(KnownValues::default()),
            unfolded: Arc::new(Notify::new()),
            pending: AtomicUsize::new(0),
        }
    }

    /// Adds `events`, none of them in a rollup yet, to every rollup and sketch. Their
    /// values were admitted when they were inserted, so a value not admitted by now
    /// goes to [`OTHER`].
    async fn fold_events(&self, txn: &DatabaseTransaction, events: &[UsageEvent]) -> Result<()> {
        let admitted = Admitted::load(txn, events.iter(), None, &self.known).await?;
        upsert(txn, LedgerChange::Inserted(events), &admitted).await
    }

    /// Re-pricing: the changed events still unfolded are folded with their new cost
    /// (their ids deleted here, under the folder's lock, so the folder cannot fold them
    /// too); the others' rows move by the cost's delta.
    async fn reprice(&self, txn: &DatabaseTransaction, changed: &[Repriced]) -> Result<()> {
        fold::lock(txn).await?;
        let ids: Vec<i64> = changed.iter().map(|r| r.event.id.0).collect();
        let unfolded = fold::take(txn, &ids).await?;
        let admitted =
            Admitted::load(txn, changed.iter().map(|r| &r.event), None, &self.known).await?;
        let (fresh, folded): (Vec<&Repriced>, Vec<&Repriced>) = changed
            .iter()
            .partition(|r| unfolded.contains(&r.event.id.0));
        if !fresh.is_empty() {
            let events: Vec<UsageEvent> = fresh.iter().map(|r| r.event.clone()).collect();
            upsert(txn, LedgerChange::Inserted(&events), &admitted).await?;
        }
        if !folded.is_empty() {
            let folded: Vec<Repriced> = folded.into_iter().cloned().collect();
            upsert(txn, LedgerChange::Repriced(&folded), &admitted).await?;
        }
        Ok(())
    }
}

/// Adds a change to every rollup (and, for new events, every sketch): new events
/// whole, re-priced ones by their cost's delta.
async fn upsert<'a>(
    txn: &DatabaseTransaction,
    change: LedgerChange<'a>,
    admitted: &Admitted,
) -> Result<()> {
    let mut deltas: Vec<BTreeMap<Key, Delta>> = vec![BTreeMap::new(); ALL.len()];
    let mut add = |e: &'a UsageEvent, d: Delta| -> Result<()> {
        for (rollup, rows) in ALL.iter().zip(deltas.iter_mut()) {
            rows.entry(rollup.key(e, admitted)).or_default().add(&d)?;
        }
        Ok(())
    };
    // Latencies per sketch row (see `SketchKey`).
    let mut sketches: Vec<BTreeMap<SketchKey, Chunk>> = vec![BTreeMap::new(); SKETCHES.len()];
    match change {
        LedgerChange::Inserted(events) => {
            let bounds = sketch_bounds();
            for e in events {
                add(e, Delta::of(e))?;
                if let Some(ms) = e.latency_ms {
                    let b = migration::sketch::bucket(bounds, ms);
                    let (chunk, k) = (
                        b.div_euclid(migration::sketch::CHUNK),
                        b.rem_euclid(migration::sketch::CHUNK) as usize,
                    );
                    for (sketch, rows) in SKETCHES.iter().zip(sketches.iter_mut()) {
                        let key = (sketch.row_keys().key(e, admitted), chunk);
                        rows.entry(key).or_default()[k] += 1;
                    }
                }
            }
        }
        LedgerChange::Repriced(changed) => {
            for r in changed {
                let before = r.previous_cost;
                let after = r.event.cost;
                let mut d = Delta::default();
                d.0[0] =
                    after.map(|c| c.nanos()).unwrap_or(0) - before.map(|c| c.nanos()).unwrap_or(0);
                d.0[9] = i128::from(after.is_none()) - i128::from(before.is_none());
                if d != Delta::default() {
                    add(&r.event, d)?;
                }
            }
        }
    }
    let mut writes: Vec<Upsert> = vec![];
    for (rollup, rows) in ALL.iter().zip(deltas) {
        let rows = rows
            .into_iter()
            .map(|(key, d)| {
                let mut row = key_row(&key);
                wide_measures(&mut row, &d)?;
                Ok(row)
            })
            .collect::<Result<Vec<_>>>()?;
        writes.push(Upsert::new(
            rollup.table,
            &rollup.key_columns(),
            &COLUMNS,
            true,
            rows,
        ));
    }
    // Latencies never change on re-pricing: only inserts move the sketches.
    if matches!(change, LedgerChange::Inserted(_)) {
        for (sketch, rows) in SKETCHES.iter().zip(sketches) {
            let rows = rows
                .into_iter()
                .map(|((key, chunk), counts)| {
                    let mut row = key_row(&key);
                    row.push(Json::from(chunk));
                    // A sketch bucket counts events: it cannot get near
                    // `i64::MAX`.
                    row.extend(counts.map(Json::from));
                    row
                })
                .collect();
            writes.push(Upsert::new(
                sketch.table,
                &sketch.key_columns(),
                &migration::sketch::COUNT_COLUMNS,
                false,
                rows,
            ));
        }
    }
    write_all(txn, writes).await
}

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
            match change {
                LedgerChange::Inserted(events) => {
                    // Admitted now, in the ingest transaction, so the folder and every
                    // reader find each value decided with its event.
                    Admitted::load(txn, events.iter(), Some(self.distinct_values), &self.known)
                        .await?;
                    let ids: Vec<i64> = events.iter().map(|e| e.id.0).collect();
                    fold::mark(txn, &ids).await
                }
                LedgerChange::Repriced(changed) => self.reprice(txn, changed).await,
            }
        })
    }

    fn committed(&self, change: LedgerChange<'_>) {
        if let LedgerChange::Inserted(events) = change
            && !events.is_empty()
        {
            self.pending.fetch_add(events.len(), Ordering::Relaxed);
            self.unfolded.notify_one();
        }
    }
}

/// The key columns of a rollup or sketch row, in the order of
/// [`Rollup::key_columns`]: the unit's start, then the project, provider, model and
/// attribute the table has.
fn key_row(&(at, project, provider, model, attr): &Key) -> Vec<Json> {
    let mut row = vec![Json::from(at)];
    row.extend(project.map(|p| json_rows::uuid(p.0)));
    row.extend(provider.map(Json::from));
    row.extend(model.map(Json::from));
    row.extend(attr.map(Json::from));
    row
}

/// Appends every measure of `d` to a row, each as its `(hi, lo)` parts.
fn wide_measures(row: &mut Vec<Json>, d: &Delta) -> Result<()> {
    for &v in &d.0 {
        let (hi, lo) = Wide::parts(v, "updating usage rollups")?;
        row.push(Json::from(hi));
        row.push(Json::from(lo));
    }
    Ok(())
}

/// An upsert of one table: what follows `INSERT INTO` (table and columns), the kind
/// of each column, and what follows the rows. `wide`: each column `x` has its partner
/// `x_hi`, added with the carry of [`Wide::added_hi`] and [`Wide::added_lo`]. A
/// table's keys are unique among the rows (they were summed by key), as PostgreSQL
/// requires.
struct Upsert {
    head: String,
    kinds: Vec<Kind>,
    tail: String,
    rows: Vec<Vec<Json>>,
}

impl Upsert {
    fn new(
        table: &str,
        keys: &[(&str, Kind)],
        columns: &[&str],
        wide: bool,
        rows: Vec<Vec<Json>>,
    ) -> Upsert {
        let mut all: Vec<String> = keys.iter().map(|(k, _)| (*k).to_owned()).collect();
        let mut kinds: Vec<Kind> = keys.iter().map(|(_, kind)| *kind).collect();
        let set: Vec<String> = if wide {
            all.extend(
                columns
                    .iter()
                    .flat_map(|c| [format!("{c}_hi"), (*c).to_owned()]),
            );
            columns
                .iter()
                .flat_map(|c| {
                    [
                        format!("{c}_hi = {}", Wide::added_hi(table, c)),
                        format!("{c} = {}", Wide::added_lo(table, c)),
                    ]
                })
                .collect()
        } else {
            all.extend(columns.iter().map(|c| (*c).to_owned()));
            columns
                .iter()
                .map(|c| format!("{c} = {table}.{c} + excluded.{c}"))
                .collect()
        };
        kinds.resize(all.len(), Kind::IntNotNull);
        Upsert {
            head: format!("{table} ({})", all.join(", ")),
            kinds,
            tail: format!(
                "ON CONFLICT ({}) DO UPDATE SET {}",
                keys.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", "),
                set.join(", ")
            ),
            rows,
        }
    }
}

/// Runs the upserts of one change. PostgreSQL: all of them in one statement, as
/// data-modifying `WITH` parts, each table's rows in an array parameter per column
/// (one round trip; a table without rows gets empty arrays, so the text never
/// changes). SQLite: each table's rows bound as `VALUES` lists (see [`json_rows`]).
async fn write_all(txn: &DatabaseTransaction, writes: Vec<Upsert>) -> Result<()> {
    let backend = txn.get_database_backend();
    if backend == DbBackend::Postgres {
        let mut parts = Vec::with_capacity(writes.len());
        let mut params = Vec::new();
        for (i, w) in writes.into_iter().enumerate() {
            parts.push(format!(
                "w{i} AS ({})",
                json_rows::pg_insert(&w.head, &w.kinds, &w.tail, params.len() + 1)
            ));
            params.extend(json_rows::pg_params(&w.kinds, &w.rows)?);
        }
        let sql = format!("WITH {} SELECT 1", parts.join(", "));
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, params))
            .await
            .context("updating usage rollups")?;
        return Ok(());
    }
    for w in writes {
        for stmt in json_rows::insert(backend, &w.head, &w.kinds, w.rows, &w.tail)? {
            txn.execute_raw(stmt)
                .await
                .context("updating usage rollups")?;
        }
    }
    Ok(())
}
