//! RFC 3339 timestamps without a date-time dependency.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// A time as `YYYY-MM-DDTHH:MM:SSZ` (UTC); times before 1970 print as the epoch.
pub fn rfc3339(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A time as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC): for the moments a page
/// was opened, which `drop wait` compares with its own start.
pub fn rfc3339_millis(time: SystemTime) -> String {
    let millis = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_millis());
    let whole = rfc3339(time);
    format!("{}.{millis:03}Z", whole.trim_end_matches('Z'))
}

/// Reads an RFC 3339 time as drops write it: this drop's
/// `2026-02-03T10:00:00Z`, and the Python drop's
/// `2026-02-03T10:00:00.123456+00:00` (fractions and offsets). `None` for
/// anything else.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    // Fixed widths, digits only: `2026-12-03T10:00:00-0500` or `+25:00`
    // must not pass as something else.
    let digits = |part: &str, width: usize| -> Option<i64> {
        (part.len() == width && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse().ok())
            .flatten()
    };
    let text = text.trim();
    let (date, rest) = (text.get(..10)?, text.get(10..)?);
    let (sep, rest) = (rest.get(..1)?, rest.get(1..)?);
    if !matches!(sep, "T" | "t" | " ") || date.get(4..5)? != "-" || date.get(7..8)? != "-" {
        return None;
    }
    let (year, month, day) = (
        digits(&date[..4], 4)?,
        digits(&date[5..7], 2)?,
        digits(&date[8..], 2)?,
    );
    let clock_end = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(clock_end);
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    if hms.len() != 8 || hms.get(2..3)? != ":" || hms.get(5..6)? != ":" {
        return None;
    }
    let (hour, minute) = (digits(&hms[..2], 2)?, digits(&hms[3..5], 2)?);
    let whole_seconds = digits(&hms[6..], 2)?;
    let fraction_ok = if clock.contains('.') {
        !fraction.is_empty() && fraction.len() <= 9 && fraction.bytes().all(|b| b.is_ascii_digit())
    } else {
        true
    };
    if !fraction_ok {
        return None;
    }
    let seconds = format!("{whole_seconds}.{fraction}0").parse::<f64>().ok()?;
    let offset = match zone {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (h, m) = zone[1..].split_once(':')?;
            let (h, m) = (digits(h, 2)?, digits(m, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let valid =
        (1..=12).contains(&month) && (1..=month_days).contains(&day) && hour < 24 && minute < 60;
    if !valid || !(0.0..61.0).contains(&seconds) {
        return None;
    }
    let days = days_from_civil(year, month as u32, day as u32);
    let whole = days * 86_400 + hour * 3600 + minute * 60 - offset;
    let secs = u64::try_from(whole).ok()?;
    Some(
        UNIX_EPOCH
            + std::time::Duration::from_secs(secs)
            + std::time::Duration::from_secs_f64(seconds),
    )
}

/// A proleptic Gregorian date to days since 1970-01-01 (the inverse of
/// [`civil_from_days`]).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_times_are_read() {
        let at = |text: &str| parse_rfc3339(text);
        let ten_utc = at("2026-12-03T10:00:00Z").unwrap();
        assert_eq!(at("2026-12-03T05:00:00-05:00"), Some(ten_utc));
        assert_eq!(at("2026-12-03T15:30:00+05:30"), Some(ten_utc));
        assert_eq!(
            at("2026-12-03 10:00:00"),
            Some(ten_utc),
            "the Python drop's naive UTC"
        );
        assert!(at("2026-12-03T10:00:00.123456+00:00").is_some());
        for bad in [
            "2026-12-03T10:00:00-0500",
            "2026-12-03T10:00:00+25:00",
            "2026-12-03T10:00:00+05:99",
            "2026-12-03T10:00:00+5",
            "2026-12-03T10:00:1e1Z",
            "+2026-12-03T10:00:00Z",
            "2026-012-031T10:00:00Z",
            "2026-12-03T1:2:3Z",
            "2026-12-03T10:00Z",
            "2026-12-03T10:00:00.Z",
            "10000-01-01T00:00:00Z",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
    }

    #[test]
    fn days_that_do_not_exist_are_refused() {
        assert_eq!(parse_rfc3339("2099-02-30T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2099-04-31T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2099-02-29T00:00:00Z"), None);
        assert!(
            parse_rfc3339("2096-02-29T00:00:00Z").is_some(),
            "a leap year"
        );
        assert!(parse_rfc3339("2000-02-29T00:00:00Z").is_some());
        assert_eq!(parse_rfc3339("2100-02-29T00:00:00Z"), None);
    }

    #[test]
    fn millis_are_kept() {
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_764_670_000_123);
        let text = rfc3339_millis(t);
        assert!(text.ends_with(".123Z"), "{text}");
        assert_eq!(parse_rfc3339(&text), Some(t));
    }
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_770_112_800);
        assert_eq!(rfc3339(t), "2026-02-03T10:00:00Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn reads_the_times_both_drops_write() {
        let t = UNIX_EPOCH + Duration::from_secs(1_770_112_800);
        assert_eq!(parse_rfc3339("2026-02-03T10:00:00Z"), Some(t));
        let python = parse_rfc3339("2026-02-03T10:00:00.250000+00:00").unwrap();
        assert_eq!(python, t + Duration::from_millis(250));
        assert_eq!(parse_rfc3339("2026-02-03T12:30:00+02:30"), Some(t));
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00Z"),
            Some(UNIX_EPOCH + Duration::from_secs(951_782_400))
        );
        for bad in ["", "yesterday", "2026-13-01T00:00:00Z", "2026-02-03"] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
