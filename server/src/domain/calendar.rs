//! Calendar arithmetic in a time zone: the buckets of trends and the periods of
//! budgets. One implementation, so "this month" means the same thing everywhere.
//!
//! Buckets are computed on local wall-clock time and converted back to UTC, so a day
//! in `Europe/Berlin` is 23 or 25 hours long across a DST change, weeks start on
//! Monday, and a local midnight that does not exist (a DST gap at 00:00) starts at the
//! first instant that does.

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone,
    Timelike, Utc,
};
use chrono_tz::Tz;
use std::str::FromStr;

/// The width of a trend bucket or budget period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// Clock hours.
    Hour,
    /// Local days.
    Day,
    /// Weeks starting Monday.
    Week,
    /// Calendar months.
    Month,
    /// Calendar quarters (Jan, Apr, Jul, Oct).
    Quarter,
    /// Calendar years.
    Year,
}

/// Parses an IANA time zone name (`Europe/Berlin`, `UTC`).
pub fn parse_tz(name: &str) -> Result<Tz, String> {
    Tz::from_str(name.trim()).map_err(|_| {
        format!("`{name}` is not an IANA time zone name (e.g. `Europe/Berlin`, `UTC`)")
    })
}

/// The UTC instant of a local wall-clock time; in a DST gap, the first valid instant
/// after it; in a fold, the earlier of the two.
fn local_to_utc(tz: &Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut probe = local;
    for _ in 0..=4 * 24 {
        match tz.from_local_datetime(&probe) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(early, _) => return early.with_timezone(&Utc),
            LocalResult::None => probe += Duration::minutes(15),
        }
    }
    Utc.from_utc_datetime(&local)
}

fn first_of_month(year: i32, month: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, 1).unwrap_or_default()
}

/// The start of the bucket containing `t`.
pub fn bucket_start(t: DateTime<Utc>, granularity: Granularity, tz: &Tz) -> DateTime<Utc> {
    let local = t.with_timezone(tz).naive_local();
    let date = local.date();
    let midnight = |d: NaiveDate| local_to_utc(tz, d.and_time(NaiveTime::MIN));
    match granularity {
        Granularity::Hour => {
            // The clock hour of the zone at `t`'s own offset (a +05:30 zone's hours
            // start at :30 UTC; in a DST fold each of the two 01:00 hours is its own).
            let into_hour = Duration::minutes(i64::from(local.minute()))
                + Duration::seconds(i64::from(local.second()))
                + Duration::nanoseconds(i64::from(local.nanosecond()));
            t - into_hour
        }
        Granularity::Day => midnight(date),
        Granularity::Week => {
            midnight(date - Duration::days(i64::from(date.weekday().num_days_from_monday())))
        }
        Granularity::Month => midnight(first_of_month(date.year(), date.month())),
        Granularity::Quarter => midnight(first_of_month(date.year(), (date.month0() / 3) * 3 + 1)),
        Granularity::Year => midnight(first_of_month(date.year(), 1)),
    }
}

/// The start of the bucket after the one starting at `start`.
pub fn next_bucket(start: DateTime<Utc>, granularity: Granularity, tz: &Tz) -> DateTime<Utc> {
    let local = start.with_timezone(tz).naive_local();
    let date = local.date();
    let midnight = |d: NaiveDate| local_to_utc(tz, d.and_time(NaiveTime::MIN));
    let add_months = |months: u32| {
        let total = date.year() * 12 + date.month0() as i32 + months as i32;
        midnight(first_of_month(
            total.div_euclid(12),
            total.rem_euclid(12) as u32 + 1,
        ))
    };
    match granularity {
        Granularity::Hour => start + Duration::hours(1),
        Granularity::Day => midnight(date + Duration::days(1)),
        Granularity::Week => midnight(date + Duration::days(7)),
        Granularity::Month => add_months(1),
        Granularity::Quarter => add_months(3),
        Granularity::Year => add_months(12),
    }
}

/// Every bucket start from the bucket containing `from` up to (not including) `to`.
/// Capped at `max` buckets so a careless range cannot exhaust memory.
pub fn buckets(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    granularity: Granularity,
    tz: &Tz,
    max: usize,
) -> Vec<DateTime<Utc>> {
    let mut out = vec![];
    let mut cursor = bucket_start(from, granularity, tz);
    while cursor < to && out.len() < max {
        out.push(cursor);
        cursor = next_bucket(cursor, granularity, tz);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn days_follow_local_midnight_across_dst() {
        let berlin = parse_tz("Europe/Berlin").unwrap();
        // 2026-03-29: clocks go from 02:00 to 03:00 in Berlin; the day has 23 hours.
        let start = bucket_start(utc("2026-03-29T12:00:00Z"), Granularity::Day, &berlin);
        assert_eq!(start, utc("2026-03-28T23:00:00Z"));
        let next = next_bucket(start, Granularity::Day, &berlin);
        assert_eq!(next, utc("2026-03-29T22:00:00Z"));
        assert_eq!(next - start, Duration::hours(23));
        // 2026-10-25: the day has 25 hours.
        let start = bucket_start(utc("2026-10-25T12:00:00Z"), Granularity::Day, &berlin);
        assert_eq!(
            next_bucket(start, Granularity::Day, &berlin) - start,
            Duration::hours(25)
        );
    }

    #[test]
    fn weeks_start_on_monday_and_quarters_on_the_first_month() {
        let utc_tz = parse_tz("UTC").unwrap();
        // 2026-11-23 is a Monday.
        assert_eq!(
            bucket_start(utc("2026-11-29T23:59:59Z"), Granularity::Week, &utc_tz),
            utc("2026-11-23T00:00:00Z")
        );
        assert_eq!(
            bucket_start(utc("2026-11-23T00:00:00Z"), Granularity::Week, &utc_tz),
            utc("2026-11-23T00:00:00Z")
        );
        assert_eq!(
            bucket_start(utc("2026-08-15T10:00:00Z"), Granularity::Quarter, &utc_tz),
            utc("2026-07-01T00:00:00Z")
        );
        assert_eq!(
            next_bucket(utc("2026-10-01T00:00:00Z"), Granularity::Quarter, &utc_tz),
            utc("2027-01-01T00:00:00Z")
        );
        assert_eq!(
            next_bucket(utc("2026-12-01T00:00:00Z"), Granularity::Month, &utc_tz),
            utc("2027-01-01T00:00:00Z")
        );
    }

    #[test]
    fn months_and_hours_in_a_zone_with_a_half_hour_offset() {
        let kolkata = parse_tz("Asia/Kolkata").unwrap();
        assert_eq!(
            bucket_start(utc("2026-02-01T00:00:00Z"), Granularity::Month, &kolkata),
            utc("2026-01-31T18:30:00Z")
        );
        assert_eq!(
            bucket_start(utc("2026-02-01T10:10:00Z"), Granularity::Hour, &kolkata),
            utc("2026-02-01T09:30:00Z")
        );
        assert_eq!(
            next_bucket(utc("2026-02-01T09:30:00Z"), Granularity::Hour, &kolkata),
            utc("2026-02-01T10:30:00Z")
        );
    }

    #[test]
    fn hours_across_the_spring_gap_and_autumn_fold() {
        let ny = parse_tz("America/New_York").unwrap();
        // 2026-03-08 02:00 local does not exist.
        let hours = buckets(
            utc("2026-03-08T05:00:00Z"),
            utc("2026-03-08T09:00:00Z"),
            Granularity::Hour,
            &ny,
            100,
        );
        assert_eq!(
            hours,
            vec![
                utc("2026-03-08T05:00:00Z"),
                utc("2026-03-08T06:00:00Z"),
                utc("2026-03-08T07:00:00Z"),
                utc("2026-03-08T08:00:00Z")
            ]
        );
        // 2026-11-01 01:00 local happens twice: both hours are buckets.
        let hours = buckets(
            utc("2026-11-01T04:00:00Z"),
            utc("2026-11-01T08:00:00Z"),
            Granularity::Hour,
            &ny,
            100,
        );
        assert_eq!(
            hours,
            vec![
                utc("2026-11-01T04:00:00Z"),
                utc("2026-11-01T05:00:00Z"),
                utc("2026-11-01T06:00:00Z"),
                utc("2026-11-01T07:00:00Z")
            ]
        );
        assert_eq!(
            bucket_start(utc("2026-11-01T06:30:00Z"), Granularity::Hour, &ny),
            utc("2026-11-01T06:00:00Z")
        );
        assert_eq!(
            bucket_start(utc("2026-11-01T05:30:00Z"), Granularity::Hour, &ny),
            utc("2026-11-01T05:00:00Z")
        );
    }

    #[test]
    fn a_range_is_zero_filled_and_capped() {
        let utc_tz = parse_tz("UTC").unwrap();
        let days = buckets(
            utc("2026-01-30T12:00:00Z"),
            utc("2026-02-02T00:00:00Z"),
            Granularity::Day,
            &utc_tz,
            100,
        );
        assert_eq!(
            days,
            vec![
                utc("2026-01-30T00:00:00Z"),
                utc("2026-01-31T00:00:00Z"),
                utc("2026-02-01T00:00:00Z")
            ]
        );
        assert_eq!(
            buckets(
                utc("2000-01-01T00:00:00Z"),
                utc("2030-01-01T00:00:00Z"),
                Granularity::Hour,
                &utc_tz,
                10
            )
            .len(),
            10
        );
        assert!(parse_tz("Mars/Olympus").is_err());
    }
}
