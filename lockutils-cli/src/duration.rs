//! Durations on the command line (`500ms`, `10s`, `1.5s`, `2m`, `1h`, `7d`)
//! and durations and instants in output.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses a duration in lockutils' one syntax (`500ms`, `10s`, `1.5s`,
/// `2m`, `1h`, `7d`, a bare number of seconds; see `lockutils_core::parse_duration`).
///
/// Used as a clap value parser, so the error is a sentence that clap prints
/// after `invalid value … for '--timeout <DUR>':`.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    lockutils_core::parse_duration(text).map_err(|e| format!("{text:?}: {e}"))
}

/// A short human form: `850ms`, `12s`, `2m03s`, `1h02m`, `3d04h`.
pub(crate) fn human(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return match d.subsec_millis() {
            0 => "0s".into(),
            ms => format!("{ms}ms"),
        };
    }
    let (m, s) = (secs / 60, secs % 60);
    let (h, m) = (m / 60, m % 60);
    let (days, h) = (h / 24, h % 24);
    if days > 0 {
        format!("{days}d{h:02}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// Seconds since the Unix epoch, now.
pub(crate) fn now_unix() -> i64 {
    unix_secs(SystemTime::now())
}

/// Seconds since the Unix epoch of `t` (negative before it).
pub(crate) fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// How long ago `unix` was, as a duration (zero if in the future).
pub(crate) fn age(unix: i64) -> Duration {
    Duration::from_secs(now_unix().saturating_sub(unix).max(0) as u64)
}

/// RFC 3339 in UTC, e.g. `2024-05-01T10:00:00Z`.
pub(crate) fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse("7d").unwrap(), Duration::from_secs(7 * 86400));
        assert_eq!(parse("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        assert_eq!(parse("10 s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("250us").unwrap(), Duration::from_micros(250));
    }

    #[test]
    fn rejects_garbage_with_a_hint() {
        for bad in [
            "", "s", "ten", "10x", "-1s", "1..5s", "1.5.2s", ".5s", "1e3s", "1e1", ".",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("e.g. 500us, 250ms"), "{bad:?}: {err}");
        }
        assert!(parse("1e300d").is_err());
    }

    #[test]
    fn human_forms() {
        assert_eq!(human(Duration::from_millis(850)), "850ms");
        assert_eq!(human(Duration::ZERO), "0s");
        assert_eq!(human(Duration::from_secs(12)), "12s");
        assert_eq!(human(Duration::from_secs(123)), "2m03s");
        assert_eq!(human(Duration::from_secs(3720)), "1h02m");
        assert_eq!(human(Duration::from_secs(3 * 86400 + 4 * 3600)), "3d04h");
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_714_557_600), "2024-05-01T10:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }
}
