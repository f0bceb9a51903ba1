//! Times and spans as users write them: `30m`, `2h`, `7d`, `90s`, `1w`
//! (or `2h30m`, `1.5h`), or an RFC 3339 time with its offset for a moment.
//! Read by `jiff`; drop keeps to spans that are positive and at most ten
//! years, and to times that say their offset.

use std::time::{Duration, SystemTime};

use jiff::{Span, SpanRelativeTo, Timestamp, Unit};

use crate::error::CliError;

/// `30s`, `15m`, `2h`, `7d`, `1w`, or several (`2h30m`): a span of time,
/// a day being 24 hours; `None` unless it is positive and at most ten
/// years.
pub fn parse_span(text: &str) -> Option<Duration> {
    let span: Span = text.trim().parse().ok()?;
    let seconds = span
        .total((Unit::Second, SpanRelativeTo::days_are_24_hours()))
        .ok()?;
    let span = Duration::try_from_secs_f64(seconds).ok()?;
    (seconds > 0.0 && span <= MAX_SPAN).then_some(span)
}

/// The longest span (and the farthest time) drop takes: ten years.
const MAX_SPAN: Duration = Duration::from_secs(10 * 365 * 86_400);

/// A span as people say it, to the nearest of its two largest units:
/// `45 s`, `30 min`, `2 h`, `1 h 59 min`, `7 d`, `1 d 3 h`. Never cut
/// down to its largest unit alone: 1 h 59 min is not "1 h".
pub fn show_span(span: Duration) -> String {
    let seconds = span.as_secs_f64().round() as u64;
    let minutes = (span.as_secs_f64() / 60.0).round() as u64;
    let hours = (span.as_secs_f64() / 3600.0).round() as u64;
    let two = |big: u64, big_unit: &str, small: u64, small_unit: &str| match small {
        0 => format!("{big} {big_unit}"),
        _ => format!("{big} {big_unit} {small} {small_unit}"),
    };
    match () {
        _ if seconds < 60 => format!("{seconds} s"),
        _ if minutes < 60 => format!("{minutes} min"),
        _ if minutes < 24 * 60 => two(minutes / 60, "h", minutes % 60, "min"),
        _ => two(hours / 24, "d", hours % 24, "h"),
    }
}

/// How long until `at` (a time drop stored, to the second), from `now`;
/// `None` once it has passed. `now` is taken to the second too, so a page
/// added with `--expires 1m` is said to expire in 1 min, not 59 s.
pub fn left_until(at: SystemTime, now: SystemTime) -> Option<Duration> {
    let since_epoch = now.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(since_epoch.as_secs());
    at.duration_since(now).ok().filter(|left| !left.is_zero())
}

/// The span a flag that takes only spans was given; `what` names the flag
/// in the error.
pub fn span_arg(text: &str, what: &'static str) -> Result<Duration, CliError> {
    parse_span(text).ok_or_else(|| CliError::BadSpan {
        what,
        value: text.to_owned(),
    })
}

/// A span, or an RFC 3339 time to come with its offset (`Z`, `+02:00`):
/// the moment it names, counted from `now`, at most as far as the longest
/// span. `what` names the flag in the error.
pub fn parse_moment(
    text: &str,
    now: SystemTime,
    what: &'static str,
) -> Result<SystemTime, CliError> {
    let bad = || CliError::BadTime {
        what,
        value: text.to_owned(),
    };
    if let Some(span) = parse_span(text) {
        return Ok(now + span);
    }
    // A time to come with its offset: without one, whose 10 o'clock?
    let at: Timestamp = text.trim().parse().map_err(|_| bad())?;
    let at = SystemTime::from(at);
    if at.duration_since(now).is_ok_and(|ahead| ahead > MAX_SPAN) {
        return Err(bad());
    }
    match at > now {
        true => Ok(at),
        false => Err(CliError::PastTime {
            what,
            value: text.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_a_number_and_a_unit() {
        assert_eq!(parse_span("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_span("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_span("7d"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_span("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_span("1w"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_span("2h30m"), Some(Duration::from_secs(9000)));
        assert_eq!(parse_span("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_span("30min"), Some(Duration::from_secs(1800)));
        for bad in ["", "m", "0h", "2", "2x", "-3h", "11y", "99999999999999d"] {
            assert_eq!(parse_span(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_moment_is_a_span_from_now_or_a_time_to_come() {
        let now = drop_registry::parse_rfc3339("2026-12-02T10:00:00Z").unwrap();
        assert_eq!(
            parse_moment("2h", now, "--expires").unwrap(),
            now + Duration::from_secs(7200)
        );
        let later = parse_moment("2026-12-03T10:00:00Z", now, "--expires").unwrap();
        assert_eq!(later, now + Duration::from_secs(86_400));
        let past = parse_moment("2026-12-01T10:00:00Z", now, "--expires").unwrap_err();
        assert!(past.to_string().contains("is in the past"), "{past}");
        let bad = parse_moment("tomorrow", now, "--expires").unwrap_err();
        assert!(bad.to_string().contains("--expires"), "{bad}");
        let plus_two = parse_moment("2026-12-02T14:00:00+02:00", now, "--expires").unwrap();
        assert_eq!(plus_two, now + Duration::from_secs(7200));
        for refused in [
            "2026-12-03T10:00:00",   // no offset: whose 10 o'clock?
            "2027-02-30T10:00:00Z",  // no such day
            "10000-01-01T00:00:00Z", // past the longest span
            "2040-01-01T00:00:00Z",  // likewise
        ] {
            assert!(
                matches!(
                    parse_moment(refused, now, "--expires"),
                    Err(CliError::BadTime { .. })
                ),
                "{refused}"
            );
        }
    }

    /// What is left of a span is said to the nearest minute (or hour,
    /// past a day), in two units: never rounded down to the largest one.
    #[test]
    fn spans_are_shown_honestly_in_two_units() {
        let shown = |secs: f64| show_span(Duration::from_secs_f64(secs));
        assert_eq!(shown(45.0), "45 s");
        assert_eq!(shown(59.98), "1 min", "a 1m link just published");
        assert_eq!(shown(200.0), "3 min");
        assert_eq!(shown(1800.0), "30 min");
        assert_eq!(shown(7200.0), "2 h");
        assert_eq!(shown(7140.0), "1 h 59 min");
        assert_eq!(shown(7199.0), "2 h");
        assert_eq!(shown(9000.0), "2 h 30 min");
        assert_eq!(shown(86_399.0), "1 d");
        assert_eq!(shown(97_200.0), "1 d 3 h");
        assert_eq!(shown(604_800.0), "7 d");
    }

    #[test]
    fn span_flags_say_they_take_spans() {
        let err = span_arg("2026-12-31T18:00:00Z", "--timeout").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("--timeout `2026-12-31T18:00:00Z` is not a span: "),
            "{err}"
        );
        assert_eq!(
            span_arg("10m", "--timeout").unwrap(),
            Duration::from_secs(600)
        );
    }
}
