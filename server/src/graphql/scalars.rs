//! The `DateTime` and `Decimal` scalars. `DateTime`: RFC 3339 in, RFC 3339 in UTC with a
//! `Z` out (`2026-11-20T10:15:30.250Z`), so every time the API returns has one spelling.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::{DateTime, SecondsFormat, Utc};

/// A point in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub DateTime<Utc>);

/// An RFC 3339 date and time, always returned in UTC (`2026-11-20T10:15:30.25Z`).
/// Accepted from 1970-01-01T00:00:00Z up to (not including) 2200-01-01T00:00:00Z.
#[Scalar(name = "DateTime")]
impl ScalarType for Timestamp {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => {
                let t = DateTime::parse_from_rfc3339(s.trim())
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| {
                        InputValueError::custom(format!("`{s}` is not an RFC 3339 date-time: {e}"))
                    })?;
                crate::domain::time::accepted(t)
                    .map(Timestamp)
                    .map_err(InputValueError::custom)
            }
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    /// Checked during validation too, so a bad value inside an input object is
    /// reported with its argument path (`input.occurredAt`), not only the object.
    fn is_valid(value: &Value) -> bool {
        Self::parse(value.clone()).is_ok()
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(t: DateTime<Utc>) -> Self {
        Timestamp(t)
    }
}

impl From<Timestamp> for DateTime<Utc> {
    fn from(t: Timestamp) -> Self {
        t.0
    }
}

/// The `Decimal` scalar: an exact decimal number, as a string (`"0.0075"`) or a JSON
/// number (read from its written digits, never through a float). Every money amount,
/// rate and factor of the API is one; answers are always strings.
///
/// async-graphql's own `Decimal` scalar is parsed only when a resolver runs, so a bad
/// value inside an input object was reported against the whole operation. This one is
/// checked during validation too (like `DateTime`), so the error names its argument
/// path (`input.reportedCostUsd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Decimal(pub rust_decimal::Decimal);

#[Scalar(name = "Decimal")]
impl ScalarType for Decimal {
    fn parse(value: Value) -> InputValueResult<Self> {
        let text = match &value {
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) => n.to_string(),
            _ => return Err(InputValueError::expected_type(value)),
        };
        rust_decimal::Decimal::from_str_exact(&text)
            .or_else(|_| rust_decimal::Decimal::from_scientific(&text))
            .map(Decimal)
            .map_err(|_| InputValueError::custom(format!("`{text}` is not a decimal number")))
    }

    fn is_valid(value: &Value) -> bool {
        Self::parse(value.clone()).is_ok()
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

impl Decimal {
    /// One.
    pub const ONE: Decimal = Decimal(rust_decimal::Decimal::ONE);
}

impl From<rust_decimal::Decimal> for Decimal {
    fn from(d: rust_decimal::Decimal) -> Self {
        Decimal(d)
    }
}

impl From<Decimal> for rust_decimal::Decimal {
    fn from(d: Decimal) -> Self {
        d.0
    }
}

impl From<i64> for Decimal {
    fn from(n: i64) -> Self {
        Decimal(rust_decimal::Decimal::from(n))
    }
}
