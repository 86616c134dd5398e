//! Runs one backend-specific DDL script statement by statement.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// DDL for each backend this project supports.
pub struct Ddl<'a> {
    pub sqlite: &'a str,
    pub postgres: &'a str,
}

impl Ddl<'_> {
    /// Executes the script for the connected backend; statements are separated by `;`
    /// at the end of a line.
    pub async fn run(&self, manager: &SchemaManager<'_>) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let script = match db.get_database_backend() {
            DbBackend::Sqlite => self.sqlite,
            DbBackend::Postgres => self.postgres,
            other => {
                return Err(DbErr::Migration(format!(
                    "unsupported database backend {other:?}"
                )));
            }
        };
        for statement in script.split(";\n").map(str::trim).filter(|s| !s.is_empty()) {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}

/// The DDL of a rollup summed from a finer one, and its backfill: `CREATE TABLE` with
/// the time column `time` (`day`, `hour` or `week`), the `keys` (name, SQL type) and
/// every measure as `x_hi` and `x`, keyed by the time and `keys`; then
/// `INSERT … SELECT … GROUP BY` from `source`, which has those columns (its time as the
/// expression `time_from`: the same column for a rollup of the same time unit) and
/// more keys. The sum of the low parts (each below 10^9, so no
/// overflow below 9 × 10^9 rows) is carried into the high part in integer division on
/// both engines (PostgreSQL's `SUM` of a `BIGINT` is a `NUMERIC`, whose division has a
/// fraction), so the backfill is exact. `table_options`: ` WITHOUT ROWID` on SQLite.
pub fn summed_rollup(
    time: &str,
    time_from: &str,
    table: &str,
    keys: &[(&str, &str)],
    source: &str,
    table_options: &str,
) -> String {
    let names: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
    let names = names.join(", ");
    let mut columns: Vec<String> = keys
        .iter()
        .map(|(k, kind)| format!("    {k} {kind} NOT NULL"))
        .collect();
    let mut measures = vec![];
    let mut sums = vec![];
    for m in crate::ROLLUP_MEASURES {
        columns.push(format!("    {m}_hi BIGINT NOT NULL"));
        columns.push(format!("    {m} BIGINT NOT NULL"));
        measures.push(format!("{m}_hi, {m}"));
        sums.push(format!(
            "CAST(SUM({m}_hi) AS BIGINT) + CAST(SUM({m}) AS BIGINT) / 1000000000, \
             CAST(SUM({m}) AS BIGINT) % 1000000000"
        ));
    }
    format!(
        "CREATE TABLE {table} (
    {time} BIGINT NOT NULL,
{},
    PRIMARY KEY ({time}, {names})
){table_options};
INSERT INTO {table} ({time}, {names}, {})
    SELECT {time_from}, {names}, {} FROM {source} GROUP BY {time_from}, {names};
",
        columns.join(",\n"),
        measures.join(", "),
        sums.join(", ")
    )
}

/// Creates and fills a daily [`summed_rollup`] whose key columns have the same type on
/// both engines (no project id).
pub async fn create_summed_rollup(
    manager: &SchemaManager<'_>,
    table: &str,
    keys: &[(&str, &str)],
    source: &str,
) -> Result<(), DbErr> {
    create_summed_rollup_from(manager, "day", "day", table, keys, source).await
}

/// Creates and fills a [`summed_rollup`] per `time`, summed from `source`'s time
/// expression `time_from` (the same column for the same unit; for a coarser one, the
/// finer unit's start rounded down), whose key columns have the same type on both
/// engines (no project id).
pub async fn create_summed_rollup_from(
    manager: &SchemaManager<'_>,
    time: &str,
    time_from: &str,
    table: &str,
    keys: &[(&str, &str)],
    source: &str,
) -> Result<(), DbErr> {
    Ddl {
        sqlite: &summed_rollup(time, time_from, table, keys, source, " WITHOUT ROWID"),
        postgres: &summed_rollup(time, time_from, table, keys, source, ""),
    }
    .run(manager)
    .await
}

/// Fills `table` (`hi BIGINT, bucket BIGINT`) with the latency sketch's buckets
/// (`crate::sketch::bounds`): each bucket's inclusive upper bound and its number, the
/// helper a backfill joins each distinct latency to.
pub async fn insert_sketch_bounds(manager: &SchemaManager<'_>, table: &str) -> Result<(), DbErr> {
    let rows: Vec<String> = crate::sketch::bounds()
        .iter()
        .enumerate()
        .map(|(bucket, hi)| format!("({hi}, {bucket})"))
        .collect();
    for chunk in rows.chunks(500) {
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "INSERT INTO {table} (hi, bucket) VALUES {}",
                chunk.join(", ")
            ))
            .await?;
    }
    Ok(())
}
