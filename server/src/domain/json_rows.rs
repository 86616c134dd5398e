//! Writing many rows with few statements whose text does not depend on the row count.
//!
//! PostgreSQL: the rows travel column by column, one array parameter per column that
//! the server reads back with `unnest`, so each statement is prepared once per
//! connection (a multi-row `VALUES` list has a new text for every row count: an extra
//! `Parse` round trip each time and, once the statement cache is full, a `Close` one
//! too) and a table is written in one statement whatever the number of rows. Arrays
//! rather than one `jsonb` array of rows: PostgreSQL reads them for less (an upsert of
//! 16,000 sketch rows: 228–239 ms against 292–325 ms, BENCHMARKS.md). A column that is
//! never `NULL` ([`Kind::IntNotNull`], [`Kind::TextNotNull`]) travels as a binary array,
//! which PostgreSQL reads without parsing; one that may be `NULL` as an array literal,
//! because the ORM binds arrays only of values that are all present. The rows are still
//! built as JSON values, which name each cell's kind for both engines.
//!
//! SQLite runs in-process, where preparing costs little and reading JSON back costs
//! more than binding (measured: 3–7 times slower per row), so there the rows are bound
//! as `VALUES` lists. Parsing is not free either (an upsert of 16 rows with 38
//! `SET` expressions): a list is padded with NULL rows to a power of two, so each
//! table has a few statement texts that stay prepared in the connection's cache.

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
    /// A JSON integer, never `null`. PostgreSQL receives the column as a binary
    /// `int8[]`, which it reads for less than an array literal.
    IntNotNull,
    /// A JSON string, never `null`: a binary `text[]` on PostgreSQL.
    TextNotNull,
}

/// An id (a project's, a budget's) as a [`Kind::Uuid`] value.
pub fn uuid(id: uuid::Uuid) -> Json {
    Json::from(id.simple().to_string())
}

/// SQLite's limit on bound parameters per statement.
const SQLITE_MAX_PARAMS: usize = 32_766;

/// SQLite: most rows per statement. Larger statements save little (their rows cost
/// the same) and cost memory in every connection's statement cache.
const SQLITE_MOST_ROWS: usize = 256;

/// PostgreSQL: `INSERT INTO {head} … {tail}` of the rows held column by column in the
/// array parameters `first`, `first + 1`, … (one per kind, see [`pg_params`]).
pub fn pg_insert(head: &str, kinds: &[Kind], tail: &str, first: usize) -> String {
    format!("INSERT INTO {head} {} {tail}", pg_select(kinds, first))
}

/// PostgreSQL: the `SELECT` of one row per element of the arrays in parameters
/// `first`, `first + 1`, …, one array per kind, in order.
fn pg_select(kinds: &[Kind], first: usize) -> String {
    let arrays: Vec<String> = kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            let ty = match kind {
                Kind::Int | Kind::IntNotNull => "int8",
                Kind::Text | Kind::TextNotNull => "text",
                Kind::Uuid => "uuid",
            };
            format!("${}::{ty}[]", first + i)
        })
        .collect();
    format!("SELECT * FROM unnest({})", arrays.join(", "))
}

/// One column's array on its way to PostgreSQL.
enum Column {
    /// An array literal (`{1,NULL,3}`), for columns that may hold `NULL`: the ORM binds
    /// arrays only of values that are all present.
    Literal(String),
    /// The values of a [`Kind::IntNotNull`] column, bound as a binary `int8[]`.
    Ints(Vec<i64>),
    /// The values of a [`Kind::TextNotNull`] column, bound as a binary `text[]`.
    Texts(Vec<String>),
}

/// PostgreSQL: the parameters holding `rows`, one array per column. Whether a
/// column's array is binary depends on its kind only, never on the rows, so a
/// statement's parameters always have the same types.
pub fn pg_params(kinds: &[Kind], rows: &[Vec<Json>]) -> Result<Vec<Value>> {
    let mut columns: Vec<Column> = kinds
        .iter()
        .map(|kind| match kind {
            Kind::IntNotNull => Column::Ints(Vec::with_capacity(rows.len())),
            Kind::TextNotNull => Column::Texts(Vec::with_capacity(rows.len())),
            _ => Column::Literal(String::from("{")),
        })
        .collect();
    for (r, row) in rows.iter().enumerate() {
        if r == 1 {
            // Sized from the first row, so that a large array is not copied each time
            // it outgrows its buffer (fresh pages the kernel zeroes, for 10,000 rows).
            for c in &mut columns {
                if let Column::Literal(c) = c {
                    c.reserve((c.len() + 1) * (rows.len() + rows.len() / 4));
                }
            }
        }
        if row.len() != kinds.len() {
            return Err(Error::internal(
                "binding rows",
                anyhow::anyhow!("a row of {} values for {} columns", row.len(), kinds.len()),
            ));
        }
        for ((cell, kind), out) in row.iter().zip(kinds).zip(columns.iter_mut()) {
            let wrong = || not_a(cell, *kind);
            match out {
                Column::Ints(values) => values.push(cell.as_i64().ok_or_else(wrong)?),
                Column::Texts(values) => values.push(cell.as_str().ok_or_else(wrong)?.to_owned()),
                Column::Literal(out) => {
                    if r > 0 {
                        out.push(',');
                    }
                    push_element(out, cell, *kind)?;
                }
            }
        }
    }
    Ok(columns
        .into_iter()
        .map(|c| match c {
            Column::Literal(mut c) => {
                c.push('}');
                Value::from(c)
            }
            Column::Ints(values) => Value::from(values),
            Column::Texts(values) => Value::from(values),
        })
        .collect())
}

/// Appends one cell to an array literal: `NULL`, a number, or a quoted string with
/// `"` and `\` escaped.
fn push_element(out: &mut String, cell: &Json, kind: Kind) -> Result<()> {
    match (kind, cell) {
        (Kind::Int | Kind::Text | Kind::Uuid, Json::Null) => out.push_str("NULL"),
        (Kind::Int | Kind::IntNotNull, Json::Number(n)) if n.is_i64() => {
            out.push_str(&n.to_string())
        }
        (Kind::Text | Kind::TextNotNull | Kind::Uuid, Json::String(s)) => {
            out.push('"');
            for c in s.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
        _ => return Err(not_a(cell, kind)),
    }
    Ok(())
}

/// The statements that write `rows`: `INSERT INTO {head} <rows> {tail}`, where `head`
/// names the table and its columns (one per kind) and `tail` is what follows the rows
/// (`ON CONFLICT …`, `RETURNING …`). No rows, no statement. A row's first value must
/// not be NULL (SQLite's padding rows are told apart by it): such a row is an error on
/// both engines, never silently dropped.
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
    if rows.iter().any(|r| r.first().is_none_or(Json::is_null)) {
        return Err(Error::internal(
            "binding rows",
            anyhow::anyhow!("a row without a first value (it marks the padding on SQLite)"),
        ));
    }
    if backend == DbBackend::Postgres {
        return Ok(vec![Statement::from_sql_and_values(
            backend,
            pg_insert(head, kinds, tail, 1),
            pg_params(kinds, &rows)?,
        )]);
    }
    let most = sqlite_rows_per_statement(kinds.len());
    let mut out = vec![];
    for chunk in rows.chunks(most) {
        let shape = chunk.len().next_power_of_two().min(most);
        let mut values = Vec::with_capacity(shape * kinds.len());
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
        // Padding rows: all NULL, dropped by the `WHERE` below.
        values.resize(shape * kinds.len(), Value::BigInt(None));
        out.push(Statement::from_sql_and_values(
            backend,
            sqlite_insert(head, kinds.len(), shape, tail),
            values,
        ));
    }
    Ok(out)
}

/// SQLite: rows per statement, a power of two within the bind limit and at most
/// [`SQLITE_MOST_ROWS`].
fn sqlite_rows_per_statement(columns: usize) -> usize {
    let fit = (SQLITE_MAX_PARAMS / columns.max(1)).max(1);
    let power = 1usize << fit.ilog2();
    power.min(SQLITE_MOST_ROWS)
}

/// SQLite: `INSERT INTO {head} … {tail}` of `shape` bound rows, of which those whose
/// first value is NULL (the padding) are skipped. Every statement has one of a few
/// shapes (powers of two), so each is prepared once per connection and stays in the
/// statement cache, where a `VALUES` list of exactly the rows had a new text for
/// every row count and was parsed again each time.
fn sqlite_insert(head: &str, columns: usize, shape: usize, tail: &str) -> String {
    let tuple = format!("({})", vec!["?"; columns].join(", "));
    let tuples = vec![tuple.as_str(); shape].join(", ");
    format!("INSERT INTO {head} SELECT * FROM (VALUES {tuples}) WHERE column1 IS NOT NULL {tail}")
}

/// A cell that does not hold a value of its column's kind (a bug in the caller).
fn not_a(cell: &Json, kind: Kind) -> Error {
    Error::internal(
        "binding rows",
        anyhow::anyhow!("{cell} is not a {kind:?} value"),
    )
}

/// A JSON cell as the value SQLite binds (UUIDs as the ORM stores them).
fn bound(cell: &Json, kind: Kind) -> Result<Value> {
    let wrong = || not_a(cell, kind);
    Ok(match (kind, cell) {
        (Kind::Int, Json::Null) => Value::BigInt(None),
        (Kind::Int | Kind::IntNotNull, Json::Number(n)) => {
            Value::from(n.as_i64().ok_or_else(wrong)?)
        }
        (Kind::Text, Json::Null) => Value::String(None),
        (Kind::Text | Kind::TextNotNull, Json::String(s)) => Value::from(s.clone()),
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
    fn postgres_reads_each_column_from_one_array_parameter() {
        assert_eq!(
            pg_select(&[Kind::Int, Kind::Uuid, Kind::Text], 2),
            "SELECT * FROM unnest($2::int8[], $3::uuid[], $4::text[])"
        );
        let p = uuid::Uuid::from_u128(7);
        let kinds = [Kind::Int, Kind::Uuid, Kind::Text];
        let rows = vec![
            vec![Json::from(1), uuid(p), Json::from(r#"a"b\c,{d} NULL"#)],
            vec![Json::from(-2), Json::Null, Json::Null],
            vec![Json::from(3), uuid(p), Json::from("NULL")],
        ];
        let write = |rows| {
            insert(
                DbBackend::Postgres,
                "t (n, p, s)",
                &kinds,
                rows,
                "ON CONFLICT DO NOTHING",
            )
        };
        // A first value of NULL marks SQLite's padding: refused on both engines.
        let mut padded = rows.clone();
        padded[2][0] = Json::Null;
        assert!(write(padded).is_err());
        let s = write(rows).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(
            s[0].sql,
            "INSERT INTO t (n, p, s) SELECT * FROM unnest($1::int8[], $2::uuid[], $3::text[]) ON CONFLICT DO NOTHING"
        );
        let uuid_text = p.simple().to_string();
        let values = s[0].values.as_ref().expect("values").0.clone();
        assert_eq!(
            values,
            vec![
                Value::from("{1,-2,3}"),
                Value::from(format!("{{\"{uuid_text}\",NULL,\"{uuid_text}\"}}")),
                Value::from(r#"{"a\"b\\c,{d} NULL",NULL,"NULL"}"#),
            ]
        );
        // A value of the wrong kind is an error, not a malformed literal.
        assert!(pg_params(&[Kind::Int], &[vec![Json::from("1")]]).is_err());
        assert!(pg_params(&[Kind::Int], &[vec![Json::from(1.5)]]).is_err());
    }

    #[test]
    fn postgres_gets_binary_arrays_for_columns_never_null() {
        let kinds = [Kind::IntNotNull, Kind::TextNotNull, Kind::Int];
        assert_eq!(
            pg_select(&kinds, 1),
            "SELECT * FROM unnest($1::int8[], $2::text[], $3::int8[])"
        );
        let rows = vec![
            vec![Json::from(1), Json::from(r#"a"b\c"#), Json::Null],
            vec![Json::from(-2), Json::from("NULL"), Json::from(5)],
        ];
        assert_eq!(
            pg_params(&kinds, &rows).unwrap(),
            vec![
                Value::from(vec![1i64, -2]),
                Value::from(vec![r#"a"b\c"#.to_owned(), "NULL".to_owned()]),
                Value::from("{NULL,5}"),
            ]
        );
        // The kind decides, not the rows: one row makes the same types.
        let one = pg_params(&kinds, &rows[1..]).unwrap();
        assert_eq!(one[0], Value::from(vec![-2i64]));
        // Such a column refuses NULL and values of another kind, on both engines.
        for bad in [Json::Null, Json::from("1"), Json::from(1.5)] {
            assert!(
                pg_params(&kinds[..1], &[vec![bad.clone()]]).is_err(),
                "{bad}"
            );
            assert!(
                insert(
                    DbBackend::Sqlite,
                    "t (n, m)",
                    &[Kind::Int, Kind::IntNotNull],
                    vec![vec![Json::from(1), bad.clone()]],
                    ""
                )
                .is_err(),
                "{bad}"
            );
        }
        assert!(pg_params(&kinds[1..2], &[vec![Json::Null]]).is_err());
    }

    #[test]
    fn sqlite_binds_rows_in_statements_of_few_shapes() {
        let kinds = [Kind::Int, Kind::Uuid, Kind::Text];
        let p = uuid::Uuid::from_u128(7);
        let rows: Vec<Vec<Json>> = (0..1_000)
            .map(|i| vec![Json::from(i), uuid(p), Json::Null])
            .collect();
        let s = insert(
            DbBackend::Sqlite,
            "t (n, p, s)",
            &kinds,
            rows,
            "RETURNING n",
        )
        .unwrap();
        // 3 full statements of 256 rows, then 232 rows padded to 256.
        assert_eq!(s.len(), 4);
        assert!(s.iter().all(|t| t.sql == s[0].sql));
        let first = s[0].values.as_ref().unwrap();
        assert_eq!(first.0.len(), 256 * 3);
        assert_eq!(first.0[1], Value::from(p));
        assert_eq!(first.0[2], Value::String(None));
        let last = s[3].values.as_ref().unwrap();
        assert_eq!(last.0[231 * 3], Value::from(999i64));
        assert_eq!(last.0[232 * 3], Value::BigInt(None));
        assert!(
            s[0].sql.starts_with(
                "INSERT INTO t (n, p, s) SELECT * FROM (VALUES (?, ?, ?), (?, ?, ?), "
            )
        );
        assert!(
            s[0].sql
                .ends_with(") WHERE column1 IS NOT NULL RETURNING n")
        );
        // 5 rows take the shape of 8; wide rows fewer per statement.
        let five = insert(
            DbBackend::Sqlite,
            "t (n, p, s)",
            &kinds,
            vec![vec![Json::from(1), uuid(p), Json::Null]; 5],
            "",
        )
        .unwrap();
        assert_eq!(five[0].values.as_ref().unwrap().0.len(), 8 * 3);
        assert_eq!(sqlite_rows_per_statement(45), 256);
        assert_eq!(sqlite_rows_per_statement(200), 128);
    }

    #[test]
    fn a_row_whose_first_value_is_null_is_an_error_on_both_engines() {
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            let rows = vec![
                vec![Json::from(1), Json::Null],
                vec![Json::Null, Json::from(2)],
            ];
            assert!(insert(backend, "t (a, b)", &[Kind::Int, Kind::Int], rows, "").is_err());
        }
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
