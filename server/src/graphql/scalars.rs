//! The `DateTime` scalar: RFC 3339 in, RFC 3339 in UTC with a `Z` out
//! (`2026-11-20T10:15:30.250Z`), so every time the API returns has one spelling.

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
