//! Money: exact decimal US dollars, stored as integer nano-dollars.
//!
//! A cost is computed exactly with `rust_decimal` and rounded once, to 9 decimal places
//! (1e-9 USD), midpoint away from zero. Nano-dollars keep sums exact in SQL on both
//! backends (an `i64` holds up to $9.2 billion) and are far below a cent, so totals are
//! exact to the cent for any realistic number of events.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use std::fmt;

/// Decimal places kept for every stored amount.
pub const SCALE: u32 = 9;

/// An exact amount of US dollars with at most nine decimal places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Usd(i64);

impl Usd {
    /// Zero dollars.
    pub const ZERO: Usd = Usd(0);

    /// Rounds an exact decimal to nano-dollars; `None` when it does not fit.
    pub fn from_decimal(value: Decimal) -> Option<Usd> {
        let rounded = value.round_dp_with_strategy(SCALE, RoundingStrategy::MidpointAwayFromZero);
        rounded
            .checked_mul(Decimal::from(1_000_000_000_i64))?
            .to_i64()
            .map(Usd)
    }

    /// Reads a stored value.
    pub const fn from_nanos(nanos: i64) -> Usd {
        Usd(nanos)
    }

    /// The stored value.
    pub const fn nanos(self) -> i64 {
        self.0
    }

    /// The amount as a normalised decimal (`0.0125`, not `0.012500000`).
    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.0, SCALE).normalize()
    }

    /// Adds two amounts, `None` on overflow.
    pub fn checked_add(self, other: Usd) -> Option<Usd> {
        self.0.checked_add(other.0).map(Usd)
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
    fn refuses_amounts_that_do_not_fit() {
        assert!(Usd::from_decimal(dec!(10_000_000_000)).is_none());
        assert!(Usd::from_decimal(dec!(9_000_000_000)).is_some());
    }
}
