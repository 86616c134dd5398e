//! Time windows in Unix seconds (UTC) and the few calendar conversions providers need:
//! RFC 3339 in and out, civil dates, month lengths. No clock: a plugin is given its
//! window, so it never needs "now".

/// `(year, month 1-12, day 1-31)` of a day number (days since 1970-01-01).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's algorithm: shift to eras of 400 years starting in March.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a civil date.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Number of days in a month.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    let (ny, nm) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    (days_from_civil(ny, nm, 1) - days_from_civil(year, month, 1)) as u32
}

/// The start (Unix seconds) of the UTC day containing `t`.
pub fn start_of_day(t: i64) -> i64 {
    t.div_euclid(86_400) * 86_400
}

/// The start (Unix seconds) of the UTC month containing `t`.
pub fn start_of_month(t: i64) -> i64 {
    let (y, m, _) = civil_from_days(t.div_euclid(86_400));
    days_from_civil(y, m, 1) * 86_400
}

/// The start of the month after the one containing `t`.
pub fn start_of_next_month(t: i64) -> i64 {
    let (y, m, _) = civil_from_days(t.div_euclid(86_400));
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    days_from_civil(ny, nm, 1) * 86_400
}

/// `2025-01-31T00:00:00Z`.
pub fn rfc3339(t: i64) -> String {
    let (y, mo, d) = civil_from_days(t.div_euclid(86_400));
    let secs = t.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3_600,
        secs / 60 % 60,
        secs % 60
    )
}

/// `2025-01-31`.
pub fn date(t: i64) -> String {
    let (y, mo, d) = civil_from_days(t.div_euclid(86_400));
    format!("{y:04}-{mo:02}-{d:02}")
}

/// Parses RFC 3339 (`2025-01-31T00:00:00Z`, fractions and offsets allowed) or a bare
/// date (`2025-01-31`, midnight UTC) into Unix seconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let s = text.trim();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if s.get(4..5)? != "-" || s.get(7..8)? != "-" || !(1..=12).contains(&month) {
        return None;
    }
    if day < 1 || day > i64::from(days_in_month(year, month as u32)) {
        return None;
    }
    let days = days_from_civil(year, month as u32, day as u32);
    if s.len() == 10 {
        return Some(days * 86_400);
    }
    if !matches!(s.get(10..11)?, "T" | "t" | " ") || s.get(13..14)? != ":" || s.get(16..17)? != ":"
    {
        return None;
    }
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = s.get(19..)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.get(0..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            if rest.len() != 6 || rest.get(3..4)? != ":" {
                return None;
            }
            sign * (oh * 3_600 + om * 60)
        }
    };
    Some(days * 86_400 + h * 3_600 + mi * 60 + se - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        for days in [-719_468, -1, 0, 1, 10_957, 19_723, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn months_have_their_lengths() {
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2025, 2), 28);
        assert_eq!(days_in_month(2025, 12), 31);
        assert_eq!(
            start_of_next_month(parse_rfc3339("2025-12-15T10:00:00Z").unwrap()),
            parse_rfc3339("2026-01-01").unwrap()
        );
    }

    #[test]
    fn rfc3339_parses_and_prints() {
        let t = parse_rfc3339("2025-01-31T12:34:56Z").unwrap();
        assert_eq!(rfc3339(t), "2025-01-31T12:34:56Z");
        assert_eq!(parse_rfc3339("2025-01-31T14:34:56.123+02:00"), Some(t));
        assert_eq!(
            parse_rfc3339("2025-01-31"),
            Some(t - 12 * 3_600 - 34 * 60 - 56)
        );
        assert_eq!(parse_rfc3339("2025-02-30T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2025-01-31T00:00:00"), None);
    }
}
