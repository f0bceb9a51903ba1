//! RFC 3339 timestamps as drop writes and reads them, by `jiff`: whole
//! seconds (or milliseconds) in UTC out; in, any RFC 3339 time with its
//! offset, and the Python drop's naive times, which are UTC.

use std::time::{SystemTime, UNIX_EPOCH};

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

/// Now as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// A time as `YYYY-MM-DDTHH:MM:SSZ` (UTC); times before 1970 print as the epoch.
pub fn rfc3339(time: SystemTime) -> String {
    timestamp(time).strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A time as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC): for the moments a page
/// was opened, which `drop wait` compares with its own start.
pub fn rfc3339_millis(time: SystemTime) -> String {
    timestamp(time)
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// `time` as a timestamp, the epoch for times before it (or past 9999).
fn timestamp(time: SystemTime) -> Timestamp {
    let since = time.max(UNIX_EPOCH);
    Timestamp::try_from(since).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Reads an RFC 3339 time as drops write it: this drop's
/// `2026-02-03T10:00:00Z`, the Python drop's
/// `2026-02-03T10:00:00.123456+00:00` (fractions and offsets), and its
/// naive `2026-02-03 10:00:00`, which is UTC. Days that do not exist, and
/// anything else, are `None`.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    // A date alone, or a clock without seconds, is no time drop wrote.
    let clock = text.get(11..)?;
    if clock
        .get(..8)
        .is_none_or(|hms| hms.matches(':').count() != 2)
    {
        return None;
    }
    let at = match text.parse::<Timestamp>() {
        Ok(at) => at,
        Err(_) => {
            let naive: DateTime = text.parse().ok()?;
            naive.to_zoned(TimeZone::UTC).ok()?.timestamp()
        }
    };
    Some(SystemTime::from(at)).filter(|t| *t >= UNIX_EPOCH)
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
        // An offset without its colon is read as the offset it is, five
        // hours west, never as five hundred hours.
        assert_eq!(at("2026-12-03T05:00:00-0500"), Some(ten_utc));
        for bad in [
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
