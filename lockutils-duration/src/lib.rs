//! The one duration syntax of lockutils, parsed the same wherever a duration
//! is written: `#[synchronized(timeout = "..")]`, the `lockutils` command's
//! `--timeout` and `--older-than`, and a coordination URL's
//! `session_timeout` and `connect_timeout`.
//!
//! A duration is a decimal number, optional spaces, then a unit:
//!
//! | unit | means |
//! |---|---|
//! | `us` or `µs` | microseconds |
//! | `ms` | milliseconds |
//! | `s`, or no unit | seconds (as oslo.concurrency and tooz count) |
//! | `m` | minutes |
//! | `h` | hours |
//! | `d` | days (24 hours) |
//!
//! The number is digits with at most one `.` between digits (`10`, `1.5`,
//! `0.25`): no sign, exponent, or leading or trailing dot. It is exact down to
//! the nanosecond (digits beyond are dropped) and at most `u64::MAX`
//! nanoseconds, about 584 years. Whether zero is allowed is up to the caller.
//!
//! ```
//! use std::time::Duration;
//! use lockutils_duration::parse_duration;
//!
//! assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
//! assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
//! assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
//! assert_eq!(parse_duration("2 m"), Ok(Duration::from_secs(120)));
//! assert!(parse_duration("1e1").is_err());
//! ```
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![doc(test(attr(deny(warnings))))]

use std::fmt;
use std::time::Duration;

/// The syntax in a few words, for error messages: "write {SYNTAX}".
pub const SYNTAX: &str = "a number and a unit, e.g. 500us, 250ms, 1.5s, 2m, 1h or 7d \
                          (units: us, ms, s, m, h, d; a bare number is seconds)";

/// What is wrong with a duration; its `Display` says what and how to write
/// one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DurationError {
    /// No number where one belongs (`ms`, `-1s`, `1..2s`, `1e3`, `.5s`).
    NotANumber,
    /// A unit this syntax does not know (`10sec`, `1y`).
    UnknownUnit(String),
    /// Longer than `u64::MAX` nanoseconds.
    TooLong,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::NotANumber => write!(f, "not a duration; write {SYNTAX}"),
            DurationError::UnknownUnit(u) => write!(f, "unknown unit `{u}`; write {SYNTAX}"),
            DurationError::TooLong => f.write_str("too long; the maximum is about 584 years"),
        }
    }
}

impl std::error::Error for DurationError {}

/// Nanoseconds per unit.
fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "" | "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        _ => return None,
    })
}

/// Shows a duration in the syntax above, so that [`parse_duration`] reads
/// it back: whole seconds bare (`10`), anything finer in milliseconds
/// (`1500ms`). Sub-millisecond parts are dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DisplayDuration(pub Duration);

impl fmt::Display for DisplayDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(1000) {
            write!(f, "{}", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

/// Parses a duration written in the syntax above.
///
/// # Errors
/// [`DurationError`] saying what is wrong and how to write a duration.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = (&t[..split], t[split..].trim_start());
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !(frac.is_empty() || digits(frac)) || number.ends_with('.') {
        return Err(DurationError::NotANumber);
    }
    let per_unit = unit_nanos(unit).ok_or_else(|| {
        if unit.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == 'e') {
            DurationError::NotANumber
        } else {
            DurationError::UnknownUnit(unit.to_owned())
        }
    })?;
    let int: u128 = int.parse().map_err(|_| DurationError::TooLong)?;
    // Digits past the nanosecond add nothing (14 reach it for days); 20
    // keep the fraction times the largest unit (8.64e13 ns) in a u128.
    let frac = &frac[..frac.len().min(20)];
    let frac_nanos = if frac.is_empty() {
        0
    } else {
        let scale = 10u128.pow(u32::try_from(frac.len()).unwrap_or(20));
        frac.parse::<u128>().map_err(|_| DurationError::TooLong)? * per_unit / scale
    };
    let nanos = int
        .checked_mul(per_unit)
        .and_then(|n| n.checked_add(frac_nanos))
        .and_then(|n| u64::try_from(n).ok())
        .ok_or(DurationError::TooLong)?;
    Ok(Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    #[test]
    fn shown_durations_parse_back() {
        for ms in [1, 999, 1000, 1500, 10_000, 120_000] {
            let d = Duration::from_millis(ms);
            let shown = DisplayDuration(d).to_string();
            assert_eq!(super::parse_duration(&shown), Ok(d), "{shown}");
        }
        assert_eq!(DisplayDuration(Duration::from_secs(10)).to_string(), "10");
        assert_eq!(
            DisplayDuration(Duration::from_millis(1500)).to_string(),
            "1500ms"
        );
    }

    use super::*;

    #[test]
    fn every_unit() {
        let ok =
            |s: &str, ns: u64| assert_eq!(parse_duration(s), Ok(Duration::from_nanos(ns)), "{s}");
        ok("500us", 500_000);
        ok("500µs", 500_000);
        ok("250ms", 250_000_000);
        ok("1.5s", 1_500_000_000);
        ok("10", 10_000_000_000);
        ok("2.5", 2_500_000_000);
        ok("2m", 120_000_000_000);
        ok("1h", 3_600_000_000_000);
        ok("7d", 604_800_000_000_000);
        ok(" 10 s ", 10_000_000_000);
        ok("0.001ms", 1_000);
        ok("0s", 0);
        ok("1.0000000001s", 1_000_000_000);
    }

    /// However long the fraction, it is exact to the nanosecond (digits
    /// past it truncate) and never overflows the arithmetic.
    #[test]
    fn long_fractions_truncate_to_the_nanosecond() {
        for (unit, per_unit) in [
            ("d", 86_400_000_000_000u64),
            ("h", 3_600_000_000_000),
            ("m", 60_000_000_000),
            ("s", 1_000_000_000),
            ("ms", 1_000_000),
            ("us", 1_000),
        ] {
            for digits in [9, 14, 20, 21, 25, 30, 31, 40, 200] {
                let text = format!("0.{}{unit}", "9".repeat(digits));
                let exact = per_unit as u128 * (10u128.pow(digits.min(20) as u32) - 1)
                    / 10u128.pow(digits.min(20) as u32);
                assert_eq!(
                    parse_duration(&text).map(|d| d.as_nanos()),
                    Ok(exact),
                    "{text}"
                );
            }
            assert_eq!(
                parse_duration(&format!("1.{}{unit}", "5".repeat(30))).map(|d| d.as_nanos()),
                Ok(u128::from(per_unit)
                    + u128::from(per_unit) * 55_555_555_555_555_555_555 / 10u128.pow(20)),
                "1.555…{unit}"
            );
        }
    }

    #[test]
    fn mistakes_say_what_is_wrong() {
        for bad in [
            "", "ms", "1.s", ".5s", "1..2s", "-1s", "1e3ms", "1e1", "+1s", "1 .5s",
        ] {
            assert_eq!(
                parse_duration(bad),
                Err(DurationError::NotANumber),
                "{bad:?}"
            );
        }
        for (bad, unit) in [("10sec", "sec"), ("1y", "y"), ("5 mins", "mins")] {
            assert_eq!(
                parse_duration(bad),
                Err(DurationError::UnknownUnit(unit.into())),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_duration("99999999999999999999999m"),
            Err(DurationError::TooLong)
        );
        assert_eq!(
            parse_duration("585y").unwrap_err().to_string(),
            "unknown unit `y`; write ".to_owned() + SYNTAX
        );
        assert!(parse_duration("213503d").is_ok());
        assert_eq!(parse_duration("213504d"), Err(DurationError::TooLong));
    }
}
