//! Money: exact decimal US dollars, stored as integer nano-dollars.
//!
//! A cost is computed exactly with `rust_decimal` and rounded once, to 9 decimal places
//! (1e-9 USD), midpoint away from zero, far below a cent.
//!
//! One stored amount (an event's cost, a budget's limit, a report row) is a `BIGINT`
//! of nano-dollars, so it fits an `i64` (up to $9.2 billion; [`Usd::from_decimal`]
//! refuses more). Sums do not have to: a [`Usd`] holds an `i128`, and the tables that
//! add amounts up (rollups, budget counters) store each sum as two `BIGINT`s, see
//! [`Wide`]. Nothing an ingest token can send makes a sum wrap, saturate or fail.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use std::fmt;

/// Decimal places kept for every stored amount.
pub const SCALE: u32 = 9;

/// An exact amount of US dollars with at most nine decimal places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Usd(i128);

impl Usd {
    /// Zero dollars.
    pub const ZERO: Usd = Usd(0);

    /// Rounds an exact decimal to nano-dollars; `None` when it does not fit one stored
    /// amount (an `i64` of nano-dollars).
    pub fn from_decimal(value: Decimal) -> Option<Usd> {
        let rounded = value.round_dp_with_strategy(SCALE, RoundingStrategy::MidpointAwayFromZero);
        rounded
            .checked_mul(Decimal::from(1_000_000_000_i64))?
            .to_i64()
            .map(Usd::from_nanos)
    }

    /// Reads a stored value.
    pub const fn from_nanos(nanos: i64) -> Usd {
        Usd(nanos as i128)
    }

    /// A sum of nano-dollars.
    pub const fn from_wide_nanos(nanos: i128) -> Usd {
        Usd(nanos)
    }

    /// The amount in nano-dollars.
    pub const fn nanos(self) -> i128 {
        self.0
    }

    /// The amount as one stored `BIGINT`. A single amount (an event's cost, a limit, a
    /// report row) fits by construction ([`Usd::from_decimal`], or read from such a
    /// column); a sum beyond `i64` is clamped (tables that store sums split them with
    /// [`Wide`] instead).
    pub fn stored_nanos(self) -> i64 {
        clamp_i64(self.0)
    }

    /// The amount as a normalised decimal (`0.0125`, not `0.012500000`). A decimal
    /// holds 96 bits, about $7.9 × 10^19, far beyond any sum the ledger can hold
    /// (see [`Wide`]); beyond it the value is clamped.
    pub fn to_decimal(self) -> Decimal {
        clamped_decimal(self.0, SCALE).normalize()
    }

    /// Adds two amounts, `None` on overflow.
    pub fn checked_add(self, other: Usd) -> Option<Usd> {
        self.0.checked_add(other.0).map(Usd)
    }

    /// Adds, clamping at the `i128` range (which no sum of stored amounts reaches).
    pub fn saturating_add(self, other: Usd) -> Usd {
        Usd(self.0.saturating_add(other.0))
    }
}

/// A count or sum as a decimal, clamped at the 96 bits a decimal holds (about
/// 7.9 × 10^28, beyond any sum the ledger can hold: see [`Wide`]).
pub fn decimal_of(n: i128) -> Decimal {
    clamped_decimal(n, 0)
}

/// `n × 10^-scale` as a decimal, clamped at the decimal's range.
fn clamped_decimal(n: i128, scale: u32) -> Decimal {
    Decimal::try_from_i128_with_scale(n, scale).unwrap_or(if n < 0 {
        Decimal::MIN
    } else {
        Decimal::MAX
    })
}

/// A count sum as a GraphQL `Int` or JSON integer: exact up to `i64::MAX`
/// (9.2 × 10^18), clamped beyond (only hostile input gets there; costs are decimals,
/// exact at any size).
pub fn clamp_i64(n: i128) -> i64 {
    i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
}

/// A sum kept in SQL as two `BIGINT` columns: `lo` in `[0, BASE)` and `hi`, the
/// value being `hi × BASE + lo`, `BASE` = 10^9 (one dollar in nano-dollars, one
/// billion tokens).
///
/// Why no reachable sum overflows: an upsert adds a delta's `lo` to the row's `lo`
/// (below 2 × 10^9) and carries into `hi`; `hi` grows by at most an event's value
/// divided by 10^9 per event (10^8 for the largest cost an event may report, $100
/// million; 1,000 for the largest token count, 10^12), so it needs more than 9 × 10^10
/// events of the largest kind in one row to pass `i64::MAX`. Reading `SUM(lo)` over
/// rows stays below `i64::MAX` for up to 9 × 10^9 rows, and `SUM(hi)` is the sum's
/// value divided by 10^9. A raw column of single values is read the same way, as
/// `SUM(x / BASE)` and `SUM(x % BASE)` (both engines truncate toward zero, so the
/// pieces add up for negative values too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Wide;

impl Wide {
    /// The base between the two columns.
    pub const BASE: i64 = 1_000_000_000;

    /// `(hi, lo)` of a value, `lo` in `[0, BASE)`.
    pub fn split(value: i128) -> Option<(i64, i64)> {
        let base = i128::from(Wide::BASE);
        let hi = i64::try_from(value.div_euclid(base)).ok()?;
        let lo = i64::try_from(value.rem_euclid(base)).ok()?;
        Some((hi, lo))
    }

    /// [`Wide::split`] of a value about to be written; failing (beyond 9.2 × 10^27,
    /// which no transaction's delta or sum reaches) is an internal error of `doing`.
    pub fn parts(value: i128, doing: &'static str) -> crate::domain::error::Result<(i64, i64)> {
        Wide::split(value).ok_or_else(|| {
            crate::domain::Error::internal(doing, anyhow::anyhow!("{value} is beyond 9.2 × 10^27"))
        })
    }

    /// The value of `(hi, lo)` sums.
    pub fn join(hi: i64, lo: i64) -> i128 {
        i128::from(hi) * i128::from(Wide::BASE) + i128::from(lo)
    }

    /// What an upsert sets `{column}_hi` to when it adds the row `excluded` to the
    /// stored row of `table`: the high parts and the carry of the low parts.
    pub fn added_hi(table: &str, column: &str) -> String {
        let b = Wide::BASE;
        format!(
            "{table}.{column}_hi + excluded.{column}_hi + {table}.{column} / {b} \
             + ({table}.{column} % {b} + excluded.{column}) / {b}"
        )
    }

    /// What the same upsert sets `{column}` to: the low parts' sum, below `BASE`
    /// again. Both expressions read the row as it was, as SQL's `SET` does, and are
    /// exact for any signs (both engines truncate toward zero).
    pub fn added_lo(table: &str, column: &str) -> String {
        let b = Wide::BASE;
        format!("({table}.{column} % {b} + excluded.{column}) % {b}")
    }
}

impl fmt::Display for Usd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_decimal())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn rounds_to_nine_places_midpoint_away_from_zero() {
        assert_eq!(Usd::from_decimal(dec!(0.0000000015)).unwrap().nanos(), 2);
        assert_eq!(Usd::from_decimal(dec!(0.0000000014)).unwrap().nanos(), 1);
        assert_eq!(
            Usd::from_decimal(dec!(12.5)).unwrap().nanos(),
            12_500_000_000
        );
    }

    #[test]
    fn prints_normalised_decimals() {
        assert_eq!(Usd::from_nanos(12_500_000).to_string(), "0.0125");
        assert_eq!(Usd::ZERO.to_string(), "0");
    }

    #[test]
    fn wide_sums_split_and_join() {
        for v in [
            0_i128,
            1,
            999_999_999,
            1_000_000_000,
            -1,
            -1_000_000_001,
            i128::from(i64::MAX) * 1000,
        ] {
            let (hi, lo) = Wide::split(v).unwrap();
            assert!((0..Wide::BASE).contains(&lo));
            assert_eq!(Wide::join(hi, lo), v);
        }
        assert!(Wide::split(i128::MAX).is_none());
        let big = Usd::from_wide_nanos(i128::from(i64::MAX) * 100);
        assert_eq!(big.to_decimal().to_string(), "922337203685.4775807");
        assert_eq!(big.stored_nanos(), i64::MAX);
        assert_eq!(Usd::from_nanos(-5).stored_nanos(), -5);
    }

    #[test]
    fn refuses_amounts_that_do_not_fit() {
        assert!(Usd::from_decimal(dec!(10_000_000_000)).is_none());
        assert!(Usd::from_decimal(dec!(9_000_000_000)).is_some());
    }
}
