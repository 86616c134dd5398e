//! Time as the ledger stores it: microseconds since the Unix epoch, UTC; and the one
//! clock every "now" and "today" of the server reads ([`now`]).
//!
//! The clock is the system clock unless the process was started with a test clock
//! (`AISPEND_TEST_CLOCK`, see [`start_clock_at`]): then it starts at that instant and
//! advances in real time. It is process-wide because every process serves one ledger;
//! the first setting wins, so a second server started in the same process (a replica in
//! a test) shares the first one's clock and time never runs backwards.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use std::sync::OnceLock;

/// How far the test clock is ahead of the system clock (unset: the system clock).
static OFFSET: OnceLock<TimeDelta> = OnceLock::new();

/// Starts this process's clock at `at`, advancing in real time from now on. Only the
/// first call has an effect; returns whether this call set the clock.
pub fn start_clock_at(at: DateTime<Utc>) -> bool {
    let mut set = false;
    OFFSET.get_or_init(|| {
        set = true;
        at - Utc::now()
    });
    set
}

/// Whether a test clock is in effect.
pub fn clock_is_shifted() -> bool {
    OFFSET.get().is_some()
}

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
    let real = Utc::now();
    let t = match OFFSET.get() {
        Some(offset) => real.checked_add_signed(*offset).unwrap_or(real),
        None => real,
    };
    from_micros(to_micros(t))
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
