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

/// The first instant the API accepts in any date or time (1970-01-01T00:00:00Z).
pub fn earliest_accepted() -> DateTime<Utc> {
    DateTime::UNIX_EPOCH
}

/// The first instant the API no longer accepts (2200-01-01T00:00:00Z). Far enough for
/// any plan or range a person means; near enough that calendar arithmetic of a few
/// years around any accepted instant can never overflow.
pub fn end_of_accepted() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2200, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The instant itself when the API accepts it, else the sentence to show.
pub fn accepted(t: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if t < earliest_accepted() || t >= end_of_accepted() {
        Err(format!(
            "must be between 1970-01-01T00:00:00Z and 2200-01-01T00:00:00Z, not {}",
            t.to_rfc3339()
        ))
    } else {
        Ok(t)
    }
}

/// Whether a calendar date is in the accepted range.
pub fn accepted_date(d: chrono::NaiveDate) -> Result<chrono::NaiveDate, String> {
    accepted(d.and_time(chrono::NaiveTime::MIN).and_utc()).map(|_| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accepted_range_is_1970_to_2200() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert!(accepted(t("1970-01-01T00:00:00Z")).is_ok());
        assert!(accepted(t("2199-12-31T23:59:59Z")).is_ok());
        assert!(accepted(t("1969-12-31T23:59:59Z")).is_err());
        assert!(accepted(t("2200-01-01T00:00:00Z")).is_err());
        assert!(accepted(t("9999-12-31T23:59:59Z")).is_err());
    }
}
