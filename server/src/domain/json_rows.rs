//! Writing many rows with few statements whose text does not depend on the row count.
//!
//! PostgreSQL: all rows travel as one `jsonb` parameter (a JSON array of arrays) that
//! the server reads back with `jsonb_array_elements`, so each statement is prepared
//! once per connection (a multi-row `VALUES` list has a new text for every row count:
//! an extra `Parse` round trip each time and, once the statement cache is full, a
//! `Close` one too) and a table is written in one statement whatever the number of
//! rows. SQLite runs in-process, where preparing costs little and reading JSON back
//! costs more than binding (measured: 3–7 times slower per row), so there the rows are
//! bound as `VALUES` lists, as many rows per statement as the bind limit allows.

use crate::domain::error::{Error, Result};
use sea_orm::{DbBackend, Statement, Value};
use serde_json::Value as Json;

/// How a column's JSON value is read into SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A JSON integer (an `i64`), or `null`.
    Int,
    /// A JSON string, or `null`.
    Text,
    /// A UUID written by [`uuid`] (32 hex digits).
    Uuid,
}

/// An id (a project's, a budget's) as a [`Kind::Uuid`] value.
pub fn uuid(id: uuid::Uuid) -> Json {
    Json::from(id.simple().to_string())
}

/// SQLite's limit on bound parameters per statement.
const SQLITE_MAX_PARAMS: usize = 32_766;

/// PostgreSQL: `INSERT INTO {head} … {tail}` of the rows in the `jsonb` array of
/// parameter `param` (see [`insert`]).
pub fn pg_insert(head: &str, kinds: &[Kind], tail: &str, param: usize) -> String {
    format!("INSERT INTO {head} {} {tail}", pg_select(kinds, param))
}

/// PostgreSQL: the `SELECT` of one row per element of the `jsonb` array in parameter
/// `param`, one expression per kind, in order.
fn pg_select(kinds: &[Kind], param: usize) -> String {
    let columns: Vec<String> = kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| match kind {
            Kind::Int => format!("(value ->> {i})::int8"),
            Kind::Text => format!("value ->> {i}"),
            Kind::Uuid => format!("(value ->> {i})::uuid"),
        })
        .collect();
    format!(
        "SELECT {} FROM jsonb_array_elements(${param}::jsonb)",
        columns.join(", ")
    )
}

/// The parameter holding `rows` on PostgreSQL.
pub fn pg_param(rows: Vec<Vec<Json>>) -> Value {
    Value::from(Json::from(rows).to_string())
}

/// The statements that write `rows`: `INSERT INTO {head} <rows> {tail}`, where `head`
/// names the table and its columns (one per kind) and `tail` is what follows the rows
/// (`ON CONFLICT …`, `RETURNING …`). No rows, no statement.
pub fn insert(
    backend: DbBackend,
    head: &str,
    kinds: &[Kind],
    rows: Vec<Vec<Json>>,
    tail: &str,
) -> Result<Vec<Statement>> {
    if rows.is_empty() {
        return Ok(vec![]);
    }
    if backend == DbBackend::Postgres {
        return Ok(vec![Statement::from_sql_and_values(
            backend,
            pg_insert(head, kinds, tail, 1),
            [pg_param(rows)],
        )]);
    }
    let per_statement = (SQLITE_MAX_PARAMS / kinds.len().max(1)).max(1);
    let tuple = format!("({})", vec!["?"; kinds.len()].join(", "));
    let mut out = vec![];
    for chunk in rows.chunks(per_statement) {
        let mut values = Vec::with_capacity(chunk.len() * kinds.len());
        for row in chunk {
            if row.len() != kinds.len() {
                return Err(Error::internal(
                    "binding rows",
                    anyhow::anyhow!("a row of {} values for {} columns", row.len(), kinds.len()),
                ));
            }
            for (cell, kind) in row.iter().zip(kinds) {
                values.push(bound(cell, *kind)?);
            }
        }
        let tuples = vec![tuple.as_str(); chunk.len()].join(", ");
        out.push(Statement::from_sql_and_values(
            backend,
            format!("INSERT INTO {head} VALUES {tuples} {tail}"),
            values,
        ));
    }
    Ok(out)
}

/// A JSON cell as the value SQLite binds (UUIDs as the ORM stores them).
fn bound(cell: &Json, kind: Kind) -> Result<Value> {
    let wrong = || {
        Error::internal(
            "binding rows",
            anyhow::anyhow!("{cell} is not a {kind:?} value"),
        )
    };
    Ok(match (kind, cell) {
        (Kind::Int, Json::Null) => Value::BigInt(None),
        (Kind::Int, Json::Number(n)) => Value::from(n.as_i64().ok_or_else(wrong)?),
        (Kind::Text, Json::Null) => Value::String(None),
        (Kind::Text, Json::String(s)) => Value::from(s.clone()),
        (Kind::Uuid, Json::String(s)) => {
            Value::from(uuid::Uuid::parse_str(s).map_err(|_| wrong())?)
        }
        _ => return Err(wrong()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_reads_each_kind_from_one_parameter() {
        assert_eq!(
            pg_select(&[Kind::Int, Kind::Uuid, Kind::Text], 2),
            "SELECT (value ->> 0)::int8, (value ->> 1)::uuid, value ->> 2 FROM jsonb_array_elements($2::jsonb)"
        );
        let rows = vec![vec![Json::from(1), Json::from("a")]];
        let s = insert(
            DbBackend::Postgres,
            "t (n, s)",
            &[Kind::Int, Kind::Text],
            rows,
            "ON CONFLICT DO NOTHING",
        )
        .unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(
            s[0].sql,
            "INSERT INTO t (n, s) SELECT (value ->> 0)::int8, value ->> 1 FROM jsonb_array_elements($1::jsonb) ON CONFLICT DO NOTHING"
        );
    }

    #[test]
    fn sqlite_binds_rows_within_the_parameter_limit() {
        let kinds = [Kind::Int, Kind::Uuid, Kind::Text];
        let p = uuid::Uuid::from_u128(7);
        let rows: Vec<Vec<Json>> = (0..20_000)
            .map(|i| vec![Json::from(i), uuid(p), Json::Null])
            .collect();
        let s = insert(DbBackend::Sqlite, "t (n, p, s)", &kinds, rows, "").unwrap();
        // 32,766 / 3 = 10,922 rows per statement.
        assert_eq!(s.len(), 2);
        let values = s[0].values.as_ref().unwrap();
        assert_eq!(values.0.len(), 10_922 * 3);
        assert_eq!(values.0[1], Value::from(p));
        assert_eq!(values.0[2], Value::String(None));
        assert!(
            s[1].sql
                .starts_with("INSERT INTO t (n, p, s) VALUES (?, ?, ?), ")
        );
    }

    #[test]
    fn a_cell_of_the_wrong_kind_is_an_error() {
        let rows = vec![vec![Json::from("x")]];
        assert!(insert(DbBackend::Sqlite, "t (n)", &[Kind::Int], rows, "").is_err());
    }

    #[test]
    fn a_uuid_is_written_as_bare_hex() {
        let p = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(uuid(p), Json::from("0123456789abcdef0123456789abcdef"));
    }
}
