//! Latency percentiles: exact from raw events for few latencies, else merged from the
//! latency sketches (see `rollup::SKETCHES`) with raw events at the edges.

use super::tables::{Part, Table, asks, odd_values, split, unfolded_twin};
use super::*;
use sea_orm::DbBackend;

/// Latencies of a group as (milliseconds, how many events had it).
pub(super) type LatencyCounts = Vec<(i64, i64)>;

/// Up to this many latencies in the range, percentiles are exact (from the raw
/// events); above it they come from the latency sketches, within 1 % of the exact
/// value (plus half a millisecond of rounding), when the question can be answered by
/// them: grouped and filtered by provider, model and project only, or by one event
/// attribute (endpoint, end user or source, grouped by or filtered by) and the project
/// only.
pub const EXACT_PERCENTILES_UP_TO: i64 = 20_000;

/// How many raw events' latencies a breakdown's percentiles may read when no latency
/// sketch answers its grouping and filter (`None`: as many as the range holds). Past
/// it the breakdown fails at once, naming `maxRawLatencies`, instead of reading them:
/// a caller with a time budget (the dashboard) gets an answer it can show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RawLatencyLimit(pub Option<i64>);

impl RawLatencyLimit {
    /// `Ok` when `reported` raw latencies may be read.
    fn check(self, reported: i64) -> Result<()> {
        match self.0 {
            Some(max) if reported > max => Err(Error::invalid(
                "maxRawLatencies",
                format!(
                    "no latency sketch keeps this grouping and filter, and percentiles from the raw events would read {reported} latencies, more than {max}: narrow the range, or group and filter by provider, model and project only, or by one of endpoint, end user and source with the project"
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// Each group's latencies as (milliseconds, count): every distinct latency of the raw
/// events when `reported` (how many events in the range reported one) is at most
/// [`EXACT_PERCENTILES_UP_TO`] or the sketches cannot answer, else each sketch
/// bucket's representative with its count, merged from the week, day (and hour) sketches
/// and the raw edges (bucketed the same way) with signs, as sums are. By endpoint or
/// end user, a sketch part that reads a project's long tail (the `' other'` row) with
/// events, or a filter on a value some overflowed project never admitted, reads raw
/// events instead, as the rollups do. The caller has dropped a redundant source filter
/// (`without_redundant_sources`), as it did for the sums. Reading every raw latency
/// of the range fails when `limit` does not allow `reported` of them (raw events read
/// at a sketch answer's edges are not counted).
pub(super) async fn latency_counts(
    conn: &impl ConnectionTrait,
    filter: &UsageFilter,
    dims: &[Dimension],
    reported: i64,
    limit: RawLatencyLimit,
) -> Result<BTreeMap<Vec<Option<String>>, LatencyCounts>> {
    let only = |allowed: &[Dimension]| dims.iter().all(|d| allowed.contains(d));
    let project = asks(filter, dims, Dimension::Project);
    let no_attrs =
        filter.endpoints.is_empty() && filter.sources.is_empty() && filter.users.is_empty();
    // The one event attribute grouped or filtered by, if one is and nothing else but
    // the project is: its sketches answer.
    let attr = [Dimension::Endpoint, Dimension::User, Dimension::Source]
        .into_iter()
        .find(|&a| asks(filter, dims, a))
        .filter(|&a| {
            only(&[a, Dimension::Project])
                && filter.providers.is_empty()
                && filter.models.is_empty()
                && (a == Dimension::Endpoint || filter.endpoints.is_empty())
                && (a == Dimension::User || filter.users.is_empty())
                && (a == Dimension::Source || filter.sources.is_empty())
        });
    // Whole days from the sketch of every project together unless a project is asked
    // for (a token bound to a project always asks for its own).
    let tiers = if reported <= EXACT_PERCENTILES_UP_TO {
        None
    } else if only(&[Dimension::Provider, Dimension::Model, Dimension::Project]) && no_attrs {
        // Per project, whole weeks first: a week holds about as many rows as a day.
        Some(if project {
            vec![
                Table::LatencyWeeks,
                Table::LatencyDays,
                Table::LatencyHours,
                Table::Raw,
            ]
        } else {
            vec![Table::LatencyGlobalDays, Table::LatencyHours, Table::Raw]
        })
    } else if let Some(a) = attr
        && !odd_values(filter)
        && long_tail_safe(conn, filter).await?
    {
        let days = match (a, project) {
            (Dimension::Endpoint, true) => Table::LatencyEndpointDays,
            (Dimension::Endpoint, false) => Table::LatencyEndpointGlobalDays,
            (Dimension::User, true) => Table::LatencyUserDays,
            (Dimension::User, false) => Table::LatencyUserGlobalDays,
            (_, true) => Table::LatencySourceDays,
            (_, false) => Table::LatencySourceGlobalDays,
        };
        Some(vec![days, Table::Raw])
    } else {
        None
    };
    let (from, to) = (
        filter.from.map(time::to_micros),
        filter.to.map(time::to_micros),
    );
    if let Some(tiers) = tiers {
        let mut parts = Vec::new();
        split(from, to, &tiers, 1, &mut parts);
        if let Some(counts) = read_latencies(conn, filter, dims, &parts, true).await? {
            return Ok(counts);
        }
    }
    limit.check(reported)?;
    let raw = Part {
        table: Table::Raw,
        lo: from,
        hi: to,
        sign: 1,
    };
    Ok(read_latencies(conn, filter, dims, &[raw], false)
        .await?
        .unwrap_or_default())
}

/// The latencies of `parts` per group (see [`latency_counts`]); `bucketed`: raw
/// latencies go to their sketch buckets, as the sketch parts'. `None` when a sketch part
/// read an `' other'` endpoint with events.
async fn read_latencies(
    conn: &impl ConnectionTrait,
    filter: &UsageFilter,
    dims: &[Dimension],
    parts: &[Part],
    bucketed: bool,
) -> Result<Option<BTreeMap<Vec<Option<String>>, LatencyCounts>>> {
    let bounds = rollup::sketch_bounds();
    // Per group, per latency (exact) or per sketch bucket: a signed count.
    let mut merged: BTreeMap<Vec<Option<String>>, BTreeMap<i64, i64>> = BTreeMap::new();
    for &p in parts {
        // One row per group and distinct latency (or bucket) with its count: the
        // memory and the transfer grow with the distinct values, not with the events.
        // A sketch part reads the unfolded events of its range in the same statement.
        let mut q = Sql::new(conn.get_database_backend(), "");
        select_latencies(&mut q, filter, dims, &p);
        if let Some(twin) = unfolded_twin(&p) {
            q.push(" UNION ALL ");
            select_latencies(&mut q, filter, dims, &twin);
        }
        for r in conn
            .query_all_raw(q.statement())
            .await
            .context("reading latencies")?
        {
            let raw = r
                .try_get_by_index::<i64>(0)
                .context("reading a latency row's kind")?
                == 1;
            let keys = stored_keys(key_values(&r, 1, dims)?, dims, p.table);
            let v: i64 = r
                .try_get_by_index(dims.len() + 1)
                .context("reading a latency")?;
            if !raw {
                // A sketch row: chunk `v`, bucket `v·CHUNK + k` in column `k`.
                let mut counts = Vec::new();
                for k in 0..migration::sketch::CHUNK {
                    let n = sum(&r, dims.len() + 2 + k as usize)?.unwrap_or(0);
                    if n != 0 {
                        counts.push((v * migration::sketch::CHUNK + k, n));
                    }
                }
                if !counts.is_empty() && keys.iter().any(|k| k.as_deref() == Some(rollup::OTHER)) {
                    return Ok(None);
                }
                let group = merged.entry(keys).or_default();
                for (bucket, n) in counts {
                    *group.entry(bucket).or_default() += p.sign * n;
                }
                continue;
            }
            let group = merged.entry(keys).or_default();
            let n = sum(&r, dims.len() + 2)?.unwrap_or(0);
            let at = if bucketed {
                migration::sketch::bucket(bounds, v)
            } else {
                v
            };
            *group.entry(at).or_default() += p.sign * n;
        }
    }
    Ok(Some(
        merged
            .into_iter()
            .map(|(keys, counts)| {
                let counts = counts
                    .into_iter()
                    .filter(|&(_, n)| n > 0)
                    .map(|(v, n)| {
                        let ms = if bucketed {
                            migration::sketch::representative(bounds, v)
                        } else {
                            v
                        };
                        (ms, n)
                    })
                    .collect();
                (keys, counts)
            })
            .collect(),
    ))
}

/// Appends the `SELECT` of one part's latencies: first `1` for raw events, then the
/// group keys, each distinct latency and its count (the other count columns NULL, so
/// the rows line up with a sketch's); or `0` for a sketch, the keys, each chunk and its
/// bucket counts.
fn select_latencies(q: &mut Sql, filter: &UsageFilter, dims: &[Dimension], p: &Part) {
    let raw = p.table.is_raw();
    let mut select: Vec<String> = vec![format!("CAST({} AS BIGINT)", i64::from(raw))];
    select.extend(dims.iter().map(|d| d.column().to_owned()));
    let (value, counts) = if raw {
        let mut counts = vec!["COUNT(*)".to_owned()];
        counts.resize(migration::sketch::COUNT_COLUMNS.len(), "NULL".to_owned());
        ("latency_ms", counts.join(", "))
    } else {
        // Counts of events, read as integers on both engines. PostgreSQL sums them as
        // doubles: its SUM of a BIGINT accumulates a NUMERIC, and a month by project
        // and model sums 32 columns of tens of thousands of rows (see BENCHMARKS.md,
        // "A weekly latency sketch"). A double adds whole numbers exactly while every
        // partial sum stays below 2^53, and no ledger holds 2^53 (9 × 10^15) events.
        let sums: Vec<String> = migration::sketch::COUNT_COLUMNS
            .iter()
            .map(|c| match q.backend() {
                DbBackend::Postgres => {
                    format!("CAST(SUM(CAST({c} AS DOUBLE PRECISION)) AS BIGINT)")
                }
                _ => format!("CAST(SUM({c}) AS BIGINT)"),
            })
            .collect();
        ("chunk", sums.join(", "))
    };
    select.push(value.to_owned());
    let group = select[1..].join(", ");
    select.push(counts);
    q.push(&format!("SELECT {}", select.join(", ")));
    q.push(&format!(
        " FROM {} WHERE 1 = 1",
        p.table.source(q.backend())
    ));
    if raw {
        q.push(" AND latency_ms IS NOT NULL");
    }
    part_filters(q, filter, p);
    q.push(&format!(" GROUP BY {group}"));
}

/// Nearest-rank percentiles of latencies given as (value, how many events had it).
pub(super) fn percentiles(values: &mut [(i64, i64)]) -> Option<Percentiles> {
    let total: i64 = values.iter().map(|&(_, n)| n.max(0)).sum();
    if total == 0 {
        return None;
    }
    values.sort_unstable();
    // The smallest value whose cumulative count reaches rank ⌈total·p/100⌉ (at least 1).
    let rank = |p: i64| {
        let wanted = ((total * p) + 99) / 100;
        let wanted = wanted.max(1);
        let mut seen = 0;
        for &(value, n) in values.iter() {
            seen += n.max(0);
            if seen >= wanted {
                return value;
            }
        }
        values[values.len() - 1].0
    };
    Some(Percentiles {
        p50: rank(50),
        p95: rank(95),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut v: Vec<(i64, i64)> = (1..=100).rev().map(|x| (x, 1)).collect();
        assert_eq!(percentiles(&mut v), Some(Percentiles { p50: 50, p95: 95 }));
        assert_eq!(
            percentiles(&mut [(7, 1)]),
            Some(Percentiles { p50: 7, p95: 7 })
        );
        assert!(percentiles(&mut []).is_none());
        // 10 events at 100 ms, 9 at 200 ms, 1 at 5,000 ms: the 10th of 20 is the
        // median (100), the 19th is the 95th percentile (200).
        let mut counted = vec![(5_000, 1), (200, 9), (100, 10)];
        assert_eq!(
            percentiles(&mut counted),
            Some(Percentiles { p50: 100, p95: 200 })
        );
    }

    proptest::proptest! {
        /// Percentiles from a sketch merged with signs (a wider piece added, a
        /// narrower one subtracted, as a day minus its edge) are within the sketch's
        /// guarantee of the exact percentiles of what is left: 1 % relative error plus
        /// half a millisecond of rounding.
        #[test]
        fn sketch_percentiles_are_within_one_percent_of_the_exact_ones(
            kept in proptest::collection::vec(0_i64..2_000_000, 1..300),
            removed in proptest::collection::vec(0_i64..2_000_000, 0..100),
            scale in 0_u32..4,
        ) {
            let scale = 10_i64.pow(scale);
            let kept: Vec<i64> = kept.iter().map(|v| v / scale).collect();
            let removed: Vec<i64> = removed.iter().map(|v| v / scale).collect();
            let bounds = rollup::sketch_bounds();
            let mut buckets: BTreeMap<i64, i64> = BTreeMap::new();
            for v in kept.iter().chain(&removed) {
                *buckets.entry(migration::sketch::bucket(bounds, *v)).or_default() += 1;
            }
            for v in &removed {
                *buckets.entry(migration::sketch::bucket(bounds, *v)).or_default() -= 1;
            }
            let mut sketched: Vec<(i64, i64)> = buckets
                .into_iter()
                .filter(|&(_, n)| n > 0)
                .map(|(b, n)| (migration::sketch::representative(bounds, b), n))
                .collect();
            let mut exact: Vec<(i64, i64)> = kept.iter().map(|&v| (v, 1)).collect();
            let (Some(got), Some(want)) = (percentiles(&mut sketched), percentiles(&mut exact)) else {
                return Err(proptest::test_runner::TestCaseError::fail("no percentiles"));
            };
            for (g, w) in [(got.p50, want.p50), (got.p95, want.p95)] {
                let bound = migration::sketch::ALPHA * w as f64 + 0.5;
                proptest::prop_assert!(
                    ((g - w) as f64).abs() <= bound,
                    "sketch {g}, exact {w}"
                );
            }
        }

        /// Counting equal latencies changes nothing: the percentiles of (value,
        /// count) pairs are those of the list with each value repeated.
        #[test]
        fn counted_percentiles_equal_those_of_the_expanded_list(
            values in proptest::collection::vec((0_i64..1_000, 1_i64..20), 1..50)
        ) {
            let mut expanded: Vec<i64> = values
                .iter()
                .flat_map(|&(v, n)| std::iter::repeat_n(v, n as usize))
                .collect();
            expanded.sort_unstable();
            let at = |p: usize| expanded[(expanded.len() * p).div_ceil(100).max(1) - 1];
            let mut counted = values.clone();
            proptest::prop_assert_eq!(
                percentiles(&mut counted),
                Some(Percentiles { p50: at(50), p95: at(95) })
            );
        }
    }
}
