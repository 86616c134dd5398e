//! The latency sketch's buckets, shared by the migration that backfills the sketch
//! tables and the server that keeps them (`server/src/domain/rollup.rs`), so both put
//! a latency in the same bucket.
//!
//! A DDSketch-style log-bucketing of whole milliseconds with relative accuracy
//! [`ALPHA`] = 1 %: with γ = (1 + α) / (1 − α), bucket `i ≥ 1` holds the whole
//! milliseconds in `(⌊γ^(i−1)⌋, ⌊γ^i⌋]` (buckets whose range holds no whole number are
//! left out, so small latencies get buckets of one value each), and bucket 0 holds 0 ms.
//! A bucket's range `[lo, hi]` always has `hi < γ·lo`, so its harmonic-mean
//! representative `2·lo·hi / (lo + hi)` lies within α of every value in it. Counts per
//! bucket add and subtract, so sketches of days, hours and raw edges merge exactly.

/// The guaranteed relative error of a sketch quantile (before rounding to whole ms).
pub const ALPHA: f64 = 0.01;

/// Buckets per row of a sketch table (migration 000017): the row of chunk `c` holds
/// the counts of buckets `c·CHUNK + k` for `k` in `0..CHUNK`, bucket `c·CHUNK + k` in
/// column [`COUNT_COLUMNS`]`[k]`. A latency distribution spanning a factor of 50
/// (100 ms to 5 s) fills about 200 buckets: 7 rows instead of 200.
pub const CHUNK: i64 = 32;

/// The count columns of a sketch row, in bucket order.
pub const COUNT_COLUMNS: [&str; CHUNK as usize] = [
    "c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10", "c11", "c12", "c13", "c14",
    "c15", "c16", "c17", "c18", "c19", "c20", "c21", "c22", "c23", "c24", "c25", "c26", "c27",
    "c28", "c29", "c30", "c31",
];

/// The SQL sums that spread rows of one bucket each into a row per chunk: for each
/// column of [`COUNT_COLUMNS`] in order, the sum of `count` over the rows whose
/// `bucket` falls in that column (to be grouped by `bucket / CHUNK`).
pub fn chunk_sums(bucket: &str, count: &str) -> Vec<String> {
    (0..CHUNK)
        .map(|k| format!("SUM(CASE WHEN {bucket} % {CHUNK} = {k} THEN {count} ELSE 0 END)"))
        .collect()
}

/// Upper bounds (inclusive, whole milliseconds) of the buckets, ascending: bucket `k`
/// holds `bounds()[k-1] + 1 ..= bounds()[k]` (bucket 0 holds `0`).
pub fn bounds() -> Vec<i64> {
    let gamma = (1.0 + ALPHA) / (1.0 - ALPHA);
    let mut out = vec![0_i64];
    let mut p = 1.0_f64;
    loop {
        // ⌊γ^i⌋ while an f64 holds it exactly (2^53 ms is 285,000 years); one last
        // bucket, without the guarantee, for anything longer.
        if p >= 9.0e15 {
            out.push(i64::MAX);
            return out;
        }
        let hi = p.floor() as i64;
        if hi > *out.last().unwrap_or(&0) {
            out.push(hi);
        }
        p *= gamma;
    }
}

/// The bucket of a latency in milliseconds (negative ones count as 0).
pub fn bucket(bounds: &[i64], ms: i64) -> i64 {
    bounds.partition_point(|&hi| hi < ms.max(0)) as i64
}

/// The inclusive range of whole milliseconds of a bucket.
pub fn range(bounds: &[i64], bucket: i64) -> (i64, i64) {
    let k = usize::try_from(bucket).unwrap_or(0).min(bounds.len() - 1);
    let lo = if k == 0 { 0 } else { bounds[k - 1] + 1 };
    (lo, bounds[k])
}

/// The value a bucket stands for: the whole millisecond nearest to the harmonic mean of
/// its range (within `ALPHA` of every value in the bucket, plus at most half a
/// millisecond of rounding).
pub fn representative(bounds: &[i64], bucket: i64) -> i64 {
    let (lo, hi) = range(bounds, bucket);
    if lo == 0 || lo == hi {
        return hi;
    }
    let (l, h) = (lo as f64, hi as f64);
    let r = (2.0 * l * h / (l + h)).round() as i64;
    r.clamp(lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_narrow() {
        let b = bounds();
        let gamma = (1.0 + ALPHA) / (1.0 - ALPHA);
        assert_eq!(b[0], 0);
        for k in 1..b.len() - 1 {
            let (lo, hi) = range(&b, k as i64);
            assert!(lo <= hi);
            assert!((hi as f64) < gamma * lo as f64, "bucket {k}: {lo}..={hi}");
            assert_eq!(bucket(&b, lo), k as i64);
            assert_eq!(bucket(&b, hi), k as i64);
        }
        assert_eq!(bucket(&b, 0), 0);
        assert_eq!(bucket(&b, 1), 1);
        assert_eq!(bucket(&b, i64::MAX), b.len() as i64 - 1);
    }
}
