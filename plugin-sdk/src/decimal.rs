//! Exact decimals for amounts and quantities: parsed from the text a provider sent
//! (`"12.50"`, `0.06`, `1.5e-7`), combined without rounding, printed in plain
//! notation for the host. Never `f64` for money.

use std::fmt;
use std::str::FromStr;

/// An exact decimal: `mantissa × 10^-scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decimal {
    mantissa: i128,
    scale: u32,
}

/// Largest scale kept; providers never send more than a few decimals.
const MAX_SCALE: u32 = 30;

impl Decimal {
    /// Zero.
    pub const ZERO: Decimal = Decimal {
        mantissa: 0,
        scale: 0,
    };

    /// An integer.
    pub fn from_int(value: i64) -> Decimal {
        Decimal {
            mantissa: i128::from(value),
            scale: 0,
        }
    }

    /// `mantissa × 10^-scale`, `None` when the scale is absurd.
    pub fn new(mantissa: i128, scale: u32) -> Option<Decimal> {
        (scale <= MAX_SCALE).then_some(Decimal { mantissa, scale }.normalized())
    }

    /// Reads a JSON number or string holding a decimal (`12.5`, `"12.5"`, `1e-3`).
    pub fn from_json(value: &serde_json::Value) -> Option<Decimal> {
        match value {
            serde_json::Value::String(s) => s.parse().ok(),
            serde_json::Value::Number(n) => n.to_string().parse().ok(),
            _ => None,
        }
    }

    /// The value divided by `10^n` (cents to dollars is `n = 2`).
    pub fn shift_left(self, n: u32) -> Option<Decimal> {
        Decimal::new(self.mantissa, self.scale.checked_add(n)?)
    }

    /// Exact sum, `None` on overflow.
    pub fn checked_add(self, other: Decimal) -> Option<Decimal> {
        let scale = self.scale.max(other.scale);
        let a = self
            .mantissa
            .checked_mul(10_i128.checked_pow(scale - self.scale)?)?;
        let b = other
            .mantissa
            .checked_mul(10_i128.checked_pow(scale - other.scale)?)?;
        Decimal::new(a.checked_add(b)?, scale)
    }

    /// Exact product, `None` on overflow.
    pub fn checked_mul(self, other: Decimal) -> Option<Decimal> {
        Decimal::new(
            self.mantissa.checked_mul(other.mantissa)?,
            self.scale.checked_add(other.scale)?,
        )
    }

    /// Whether the value is zero.
    pub fn is_zero(self) -> bool {
        self.mantissa == 0
    }

    /// The integer part, if it fits and there is no fraction.
    pub fn to_u64(self) -> Option<u64> {
        if self.scale != 0 {
            None
        } else {
            u64::try_from(self.mantissa).ok()
        }
    }

    fn normalized(mut self) -> Decimal {
        while self.scale > 0 && self.mantissa % 10 == 0 {
            self.mantissa /= 10;
            self.scale -= 1;
        }
        if self.mantissa == 0 {
            self.scale = 0;
        }
        self
    }
}

/// Why a text is not a decimal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseDecimalError(String);

impl fmt::Display for ParseDecimalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not a decimal number", self.0)
    }
}

impl std::error::Error for ParseDecimalError {}

impl FromStr for Decimal {
    type Err = ParseDecimalError;

    fn from_str(text: &str) -> Result<Decimal, ParseDecimalError> {
        let err = || ParseDecimalError(text.chars().take(40).collect());
        let s = text.trim();
        let (s, negative) = match s.strip_prefix('-') {
            Some(rest) => (rest, true),
            None => (s.strip_prefix('+').unwrap_or(s), false),
        };
        let (number, exponent) = match s.find(['e', 'E']) {
            Some(i) => (&s[..i], s[i + 1..].parse::<i32>().map_err(|_| err())?),
            None => (s, 0),
        };
        let (int, frac) = number.split_once('.').unwrap_or((number, ""));
        if int.is_empty() && frac.is_empty()
            || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        {
            return Err(err());
        }
        let mut mantissa: i128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(i128::from(b - b'0')))
                .ok_or_else(err)?;
        }
        let mut scale = i64::try_from(frac.len()).map_err(|_| err())? - i64::from(exponent);
        while scale < 0 {
            mantissa = mantissa.checked_mul(10).ok_or_else(err)?;
            scale += 1;
        }
        let scale = u32::try_from(scale).map_err(|_| err())?;
        let mut value = Decimal {
            mantissa: if negative { -mantissa } else { mantissa },
            scale,
        };
        // Trailing zeros first, so `1.000…0` with a long tail is still accepted.
        value = value.normalized();
        if value.scale > MAX_SCALE {
            return Err(err());
        }
        Ok(value)
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.mantissa.unsigned_abs().to_string();
        let sign = if self.mantissa < 0 { "-" } else { "" };
        let scale = self.scale as usize;
        if scale == 0 {
            return write!(f, "{sign}{digits}");
        }
        if digits.len() > scale {
            let (int, frac) = digits.split_at(digits.len() - scale);
            write!(f, "{sign}{int}.{frac}")
        } else {
            write!(f, "{sign}0.{}{digits}", "0".repeat(scale - digits.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn parses_plain_and_exponent_notation_exactly() {
        assert_eq!(d("12.50").to_string(), "12.5");
        assert_eq!(d("0.06").to_string(), "0.06");
        assert_eq!(d("1.5e-7").to_string(), "0.00000015");
        assert_eq!(d("2E3").to_string(), "2000");
        assert_eq!(d("-0.10").to_string(), "-0.1");
        assert_eq!(d("0.000").to_string(), "0");
        assert!("".parse::<Decimal>().is_err());
        assert!("1.2.3".parse::<Decimal>().is_err());
        assert!("NaN".parse::<Decimal>().is_err());
        assert!("1e999".parse::<Decimal>().is_err());
    }

    #[test]
    fn arithmetic_is_exact() {
        assert_eq!(d("123.45").shift_left(2).unwrap().to_string(), "1.2345");
        assert_eq!(d("0.1").checked_add(d("0.2")).unwrap(), d("0.3"));
        assert_eq!(
            d("19")
                .checked_mul(Decimal::from_int(7))
                .unwrap()
                .to_string(),
            "133"
        );
        assert_eq!(d("0.04").checked_mul(d("12.5")).unwrap().to_string(), "0.5");
        assert_eq!(
            Decimal::from_json(&serde_json::json!(0.06))
                .unwrap()
                .to_string(),
            "0.06"
        );
        assert_eq!(
            Decimal::from_json(&serde_json::json!("7.125"))
                .unwrap()
                .to_string(),
            "7.125"
        );
    }
}
