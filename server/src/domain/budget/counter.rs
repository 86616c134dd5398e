//! Budget counters and threshold crossings, kept inside the ledger's transactions.
//!
//! Why this is exact:
//! - [`BudgetHook::apply`] runs inside the transaction that inserts or re-prices
//!   events, with exactly the changed events, so a counter moves if and only if its
//!   events commit.
//! - Ingest and budget changes exclude each other, ingest does not exclude ingest:
//!   every ingest takes the ledger lock *shared* and every budget change takes it
//!   *exclusive* (PostgreSQL: the transaction-level advisory lock [`LEDGER_LOCK`];
//!   SQLite transactions are `IMMEDIATE`, one writer at a time anyway). So a new
//!   budget's seed sum sees every event committed before it, and every later
//!   transaction sees the new budget — it reads `budget_generation` under the lock
//!   and reloads its cached budgets when another process changed them. No event is
//!   counted twice or missed.
//! - Concurrent ingest transactions move a counter with one atomic upsert each
//!   (`spent + delta … RETURNING`): the row lock orders them, and each reads the value
//!   it produced, so "before" is that value less its own delta.
//! - A counter row is created the first time its period is touched, seeded with the
//!   exact SQL sum of the period (which already includes the transaction's own
//!   events), so late and future-dated events land in the right period, even one
//!   that had no counter yet. The seed is inserted only if no row appeared meanwhile
//!   (`ON CONFLICT DO NOTHING`, which waits for a concurrent creator to commit); if
//!   one did, the transaction adds its delta to that row instead — the other
//!   transaction's seed could not see these uncommitted events.
//! - Thresholds compare the counter before and after the change, exactly, in integer
//!   nano-dollars. A crossing inserts into `alerts`, whose unique index on (budget,
//!   period start, threshold) decides: only an inserted row fired. A batch that jumps
//!   several thresholds crosses each of them; re-pricing that lowers spend moves the
//!   counter down but never deletes an alert.

use super::{Budget, BudgetSet, Budgets, PeriodBounds, deltas, period_keys_condition};
use crate::domain::alert::{self, NewAlert};
use crate::domain::analytics;
use crate::domain::error::{Context, Result};
use crate::domain::ids::BudgetId;
use crate::domain::json_rows::{self, Kind};
use crate::domain::money::{Usd, Wide};
use crate::domain::time;
use crate::domain::usage::ingest::{LedgerChange, LedgerHook};
use crate::domain::usage::query;
use crate::entity::{budget, budget_period};
use futures::future::BoxFuture;
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter, Statement,
};
use serde_json::Value as Json;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Counter rows per statement (5 columns: far below SQLite's bind limit).
const ROWS_PER_STATEMENT: usize = 500;

async fn read_generation(conn: &impl ConnectionTrait, sql: &str) -> Result<i64> {
    let row = conn
        .query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .context("reading the budget generation")?;
    match row {
        Some(r) => r
            .try_get::<i64>("", "budget_generation")
            .context("reading the budget generation"),
        None => Err(crate::domain::Error::internal(
            "reading the budget generation",
            anyhow::anyhow!("ledger_state has no row; was the database migrated?"),
        )),
    }
}

/// The current budget generation (no lock).
pub async fn generation(conn: &impl ConnectionTrait) -> Result<i64> {
    read_generation(
        conn,
        "SELECT budget_generation FROM ledger_state WHERE id = 1",
    )
    .await
}

/// The PostgreSQL advisory lock (one `bigint` key, "aispend" in ASCII) that ingest
/// takes shared and budget changes take exclusive, until their transaction ends.
pub const LEDGER_LOCK: i64 = 0x0061_6973_7065_6e64;

/// Takes the ledger lock on PostgreSQL until the transaction ends, shared (ingest)
/// or exclusive (a budget change). A SQLite write transaction holds the database
/// lock anyway.
async fn take_ledger_lock(txn: &DatabaseTransaction, shared: bool) -> Result<()> {
    if txn.get_database_backend() == DbBackend::Postgres {
        let function = if shared {
            "pg_advisory_xact_lock_shared"
        } else {
            "pg_advisory_xact_lock"
        };
        txn.execute_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT {function}({LEDGER_LOCK})"),
        ))
        .await
        .context("taking the ledger lock")?;
    }
    Ok(())
}

/// Takes the ledger lock shared, then reads the budget generation: a separate
/// statement, so its snapshot is taken after a budget change the lock waited for had
/// committed.
pub async fn lock_generation(txn: &DatabaseTransaction) -> Result<i64> {
    take_ledger_lock(txn, true).await?;
    generation(txn).await
}

/// Marks a budget change, under the ledger lock taken exclusive (it waits for the
/// ingest transactions in flight and holds back new ones until it ends).
pub async fn bump_generation(txn: &DatabaseTransaction) -> Result<i64> {
    take_ledger_lock(txn, false).await?;
    read_generation(
        txn,
        "UPDATE ledger_state SET budget_generation = budget_generation + 1 WHERE id = 1 RETURNING budget_generation",
    )
    .await
}

/// Every budget, with the generation read *before* them (so a concurrent change can
/// only make the set look older than it is, which the next check corrects).
pub async fn load_set(conn: &impl ConnectionTrait) -> Result<BudgetSet> {
    let generation = generation(conn).await?;
    let budgets = budget::Entity::find()
        .all(conn)
        .await
        .context("loading budgets")?
        .into_iter()
        .map(|m| Budget::try_from(m).map(Arc::new))
        .collect::<Result<Vec<_>>>()?;
    Ok(BudgetSet {
        generation,
        budgets,
    })
}

fn period_filter(b: &Budget, period: &PeriodBounds) -> query::UsageFilter {
    let mut f = b.filter().clone();
    f.from = period.start;
    f.to = period.end;
    f
}

/// The insert of a period's counter holding `spent` (without its conflict clause).
fn counter_insert(
    b: &Budget,
    period: &PeriodBounds,
    spent: Usd,
) -> Result<sea_orm::sea_query::InsertStatement> {
    let (hi, lo) = Wide::parts(spent.nanos(), "seeding a budget counter")?;
    let mut stmt = Query::insert();
    stmt.into_table(budget_period::Entity)
        .columns([
            budget_period::Column::BudgetId,
            budget_period::Column::PeriodStart,
            budget_period::Column::PeriodEnd,
            budget_period::Column::SpentNanos,
            budget_period::Column::SpentNanosHi,
            budget_period::Column::UpdatedAt,
        ])
        .values([
            Expr::val(b.id.0),
            Expr::val(period.key()),
            Expr::val(period.end.map(time::to_micros)),
            Expr::val(lo),
            Expr::val(hi),
            Expr::val(time::to_micros(time::now())),
        ])
        .context("building a budget counter insert")?;
    Ok(stmt)
}

/// A conflict on a counter's key (budget, period start).
fn on_counter_key() -> OnConflict {
    OnConflict::columns([
        budget_period::Column::BudgetId,
        budget_period::Column::PeriodStart,
    ])
}

/// Sets a period's counter to the exact sum of its events and returns it. Only under
/// the ledger lock taken exclusive (a budget change): no ingest runs meanwhile.
pub async fn recount(txn: &DatabaseTransaction, b: &Budget, period: &PeriodBounds) -> Result<Usd> {
    let spent = analytics::tracked_cost(txn, &period_filter(b, period)).await?;
    let mut stmt = counter_insert(b, period, spent)?;
    stmt.on_conflict(
        on_counter_key()
            .update_columns([
                budget_period::Column::SpentNanos,
                budget_period::Column::SpentNanosHi,
                budget_period::Column::UpdatedAt,
            ])
            .to_owned(),
    );
    txn.execute(&stmt)
        .await
        .context("seeding a budget counter")?;
    Ok(spent)
}

/// Creates a period's counter holding the exact sum of its events (this transaction's
/// included, summed from the raw events: this hook runs before the rollups take the
/// transaction's events) unless a row exists by then; returns the sum it was created with, or
/// `None` when another transaction had created it (the caller then adds its delta).
async fn seed_if_absent(
    txn: &DatabaseTransaction,
    b: &Budget,
    period: &PeriodBounds,
) -> Result<Option<Usd>> {
    let spent = query::total_cost(txn, &period_filter(b, period)).await?;
    let mut stmt = counter_insert(b, period, spent)?;
    stmt.on_conflict(on_counter_key().do_nothing().to_owned())
        .returning_col(budget_period::Column::PeriodStart);
    let created = txn
        .query_one(&stmt)
        .await
        .context("seeding a budget counter")?;
    Ok(created.map(|_| spent))
}

/// Spent in one period: the counter, or (no counter yet) the exact sum.
pub async fn spent(conn: &impl ConnectionTrait, b: &Budget, period: &PeriodBounds) -> Result<Usd> {
    let row = budget_period::Entity::find_by_id((b.id.0, period.key()))
        .one(conn)
        .await
        .context("reading a budget counter")?;
    match row {
        Some(r) => Ok(r.spent()),
        None => analytics::tracked_cost(conn, &period_filter(b, period)).await,
    }
}

/// Spent in each `(budget, period)`, in order: one query for the counters, a sum for
/// any period without one.
pub async fn spent_many(
    conn: &impl ConnectionTrait,
    keyed: &[(Arc<Budget>, PeriodBounds)],
) -> Result<Vec<Usd>> {
    let keys: Vec<(BudgetId, i64)> = keyed.iter().map(|(b, p)| (b.id, p.key())).collect();
    let mut found: HashMap<(BudgetId, i64), Usd> = HashMap::new();
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        for r in budget_period::Entity::find()
            .filter(period_keys_condition(chunk))
            .all(conn)
            .await
            .context("reading budget counters")?
        {
            found.insert((BudgetId(r.budget_id), r.period_start), r.spent());
        }
    }
    let mut out = Vec::with_capacity(keyed.len());
    for (b, p) in keyed {
        match found.get(&(b.id, p.key())) {
            Some(n) => out.push(*n),
            None => out.push(analytics::tracked_cost(conn, &period_filter(b, p)).await?),
        }
    }
    Ok(out)
}

/// Applies summed deltas to counters and fires crossed thresholds; returns how many
/// alerts fired.
async fn apply_deltas(
    txn: &DatabaseTransaction,
    deltas: HashMap<(BudgetId, i64), (Arc<Budget>, PeriodBounds, i128)>,
    known: &Mutex<KnownRows>,
    generation: i64,
) -> Result<usize> {
    let keys: Vec<(BudgetId, i64)> = deltas.keys().copied().collect();
    let mut existing: HashSet<(BudgetId, i64)> = HashSet::new();
    let unknown: Vec<(BudgetId, i64)> = match known.lock() {
        Ok(mut k) => {
            if k.generation != generation || k.rows.len() > MAX_KNOWN_ROWS {
                k.generation = generation;
                k.rows.clear();
            }
            keys.iter()
                .copied()
                .filter(|key| {
                    let hit = k.rows.contains(key);
                    if hit {
                        existing.insert(*key);
                    }
                    !hit
                })
                .collect()
        }
        Err(_) => keys.clone(),
    };
    for chunk in unknown.chunks(ROWS_PER_STATEMENT) {
        for r in budget_period::Entity::find()
            .filter(period_keys_condition(chunk))
            .all(txn)
            .await
            .context("reading budget counters")?
        {
            existing.insert((BudgetId(r.budget_id), r.period_start));
        }
    }
    // Rows found here existed before this transaction (committed): safe to remember.
    // Rows this transaction creates are remembered when a later one finds them.
    if let Ok(mut k) = known.lock()
        && k.generation == generation
    {
        k.rows.extend(existing.iter().copied());
    }
    let now = time::to_micros(time::now());
    let mut after: HashMap<(BudgetId, i64), i128> = HashMap::with_capacity(keys.len());
    type Keys = Vec<(BudgetId, i64)>;
    let (mut old, mut new): (Keys, Keys) = keys.iter().copied().partition(|k| existing.contains(k));
    new.sort_unstable();
    for key in new {
        let (b, period, _) = &deltas[&key];
        match seed_if_absent(txn, b, period).await? {
            Some(seeded) => {
                after.insert(key, seeded.nanos());
            }
            // Created by a transaction that committed meanwhile: add to it.
            None => old.push(key),
        }
    }
    if !old.is_empty() {
        let backend = txn.get_database_backend();
        // Counter rows in key order, as every transaction updates them: two never wait
        // for each other's rows in opposite orders.
        old.sort_unstable();
        let rows = old
            .iter()
            .map(|key| {
                let (_, period, delta) = &deltas[key];
                let (hi, lo) = Wide::parts(*delta, "updating a budget counter")?;
                Ok(vec![
                    json_rows::uuid(key.0.0),
                    Json::from(key.1),
                    Json::from(period.end.map(time::to_micros)),
                    Json::from(lo),
                    Json::from(hi),
                    Json::from(now),
                ])
            })
            .collect::<Result<Vec<_>>>()?;
        // One statement for every counter of the change, its text the same whatever
        // their number (see `json_rows`).
        let tail = format!(
            "ON CONFLICT (budget_id, period_start) DO UPDATE SET spent_nanos_hi = {}, spent_nanos = {}, updated_at = excluded.updated_at \
             RETURNING budget_id, period_start, spent_nanos, spent_nanos_hi",
            Wide::added_hi("budget_periods", "spent_nanos"),
            Wide::added_lo("budget_periods", "spent_nanos"),
        );
        let statements = json_rows::insert(
            backend,
            "budget_periods (budget_id, period_start, period_end, spent_nanos, spent_nanos_hi, updated_at)",
            &[
                Kind::Uuid,
                Kind::Int,
                Kind::Int,
                Kind::Int,
                Kind::Int,
                Kind::Int,
            ],
            rows,
            &tail,
        )?;
        let mut returned = vec![];
        for stmt in statements {
            returned.extend(
                txn.query_all_raw(stmt)
                    .await
                    .context("updating budget counters")?,
            );
        }
        for r in returned {
            let id: Uuid = r
                .try_get("", "budget_id")
                .context("reading an updated budget counter")?;
            let start: i64 = r
                .try_get("", "period_start")
                .context("reading an updated budget counter")?;
            let lo: i64 = r
                .try_get("", "spent_nanos")
                .context("reading an updated budget counter")?;
            let hi: i64 = r
                .try_get("", "spent_nanos_hi")
                .context("reading an updated budget counter")?;
            after.insert((BudgetId(id), start), Wide::join(hi, lo));
        }
    }
    let mut fired = 0;
    for (key, (b, period, delta)) in &deltas {
        if *delta <= 0 {
            continue;
        }
        let Some(spent) = after.get(key).copied() else {
            continue;
        };
        let before = Usd::from_wide_nanos(spent.saturating_sub(*delta));
        let spent = Usd::from_wide_nanos(spent);
        for threshold in b.crossed(before, spent) {
            if alert::fire(txn, NewAlert::for_budget(b, period, threshold, spent))
                .await?
                .is_some()
            {
                fired += 1;
            }
        }
    }
    Ok(fired)
}

/// Counter rows known to exist, so most transactions skip the existence check. Rows
/// are only deleted by a budget change, which moves the generation: the set is then
/// forgotten.
#[derive(Default)]
struct KnownRows {
    generation: i64,
    rows: HashSet<(BudgetId, i64)>,
}

/// More known rows than this and the set starts over (bounded memory).
const MAX_KNOWN_ROWS: usize = 100_000;

/// The ledger hook of budgets (see the module docs).
pub struct BudgetHook {
    budgets: Arc<Budgets>,
    known: Mutex<KnownRows>,
}

impl BudgetHook {
    /// A hook over the service's cache.
    pub fn new(budgets: Arc<Budgets>) -> BudgetHook {
        BudgetHook {
            budgets,
            known: Mutex::new(KnownRows::default()),
        }
    }
}

impl LedgerHook for BudgetHook {
    fn name(&self) -> &'static str {
        "budgets"
    }

    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        change: LedgerChange<'a>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let generation = lock_generation(txn).await?;
            let mut set = self.budgets.snapshot()?;
            if set.generation != generation {
                set = self.budgets.replace(load_set(txn).await?)?;
            }
            if set.budgets.is_empty() {
                return Ok(());
            }
            let deltas = match change {
                LedgerChange::Inserted(events) => deltas(
                    &set.budgets,
                    events
                        .iter()
                        .map(|e| (e, e.cost.map(Usd::nanos).unwrap_or(0))),
                ),
                LedgerChange::Repriced(changes) => deltas(
                    &set.budgets,
                    changes.iter().map(|c| {
                        let new = c.event.cost.map(Usd::nanos).unwrap_or(0);
                        let old = c.previous_cost.map(Usd::nanos).unwrap_or(0);
                        (&c.event, new.saturating_sub(old))
                    }),
                ),
            };
            if deltas.is_empty() {
                return Ok(());
            }
            if apply_deltas(txn, deltas, &self.known, generation).await? > 0 {
                self.budgets.fired.store(true, Ordering::Release);
            }
            Ok(())
        })
    }

    fn committed(&self, _change: LedgerChange<'_>) {
        self.budgets.wake_dispatcher();
    }
}
