//! Time as the ledger stores it: microseconds since the Unix epoch, UTC.

use chrono::{DateTime, TimeZone, Utc};

/// Converts a UTC time to the stored representation.
pub fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Converts a stored time back. Stored values always come from [`to_micros`], so the
/// fallback (the epoch) is unreachable in practice and never panics on a request path.
pub fn from_micros(us: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(us).single().unwrap_or_default()
}

/// The current time, truncated to microseconds so a value survives a round trip
/// through the database unchanged.
pub fn now() -> DateTime<Utc> {
    from_micros(to_micros(Utc::now()))
}
