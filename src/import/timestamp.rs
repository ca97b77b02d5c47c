//! Timestamp text → Unix nanoseconds (UTC), and back for messages.
//!
//! Hand-written rather than chrono-based so that a year of rows parses without allocating and
//! every failure becomes a sentence, not a panic. The calendar maths is Howard Hinnant's
//! `days_from_civil`, exact for every year that fits an `i64` of nanoseconds (1677..2262).

use keel_adapters::civil::{civil_from_days, days_from_civil};

const NS_PER_SEC: i64 = 1_000_000_000;
const NS_PER_DAY: i64 = 86_400 * NS_PER_SEC;

/// How many nanoseconds one unit of an epoch number stands for, chosen by magnitude: below
/// 1e11 seconds, below 1e14 milliseconds, below 1e17 microseconds, else nanoseconds. Each band
/// covers 1973..5138 in its unit, so real market data is never ambiguous.
pub(super) fn epoch_unit_ns(integer_part: u64) -> i64 {
    match integer_part {
        0..100_000_000_000 => NS_PER_SEC,
        100_000_000_000..100_000_000_000_000 => 1_000_000,
        100_000_000_000_000..100_000_000_000_000_000 => 1_000,
        _ => 1,
    }
}

/// Parses any timestamp the plain CSV format accepts: an epoch number (unit by magnitude,
/// optional fraction) or an ISO-8601 / RFC 3339 date-time, naive ones taken as UTC.
pub(super) fn parse_any(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        parse_epoch(t)
    } else {
        parse_datetime(t)
    }
}

/// `1640995200`, `1640995200000`, `1640995200.5`: digits, an optional fraction.
pub(super) fn parse_epoch(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let (int_text, frac_text) = t.split_once('.').unwrap_or((t, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int_text.is_empty() || !digits(int_text) || !digits(frac_text) {
        return Err(format!("`{t}` is not an epoch timestamp"));
    }
    let int: u64 = int_text
        .parse()
        .map_err(|_| format!("`{t}` is too large for a timestamp"))?;
    let unit_ns = epoch_unit_ns(int);
    let mut ns = i128::from(int) * i128::from(unit_ns);
    if !frac_text.is_empty() {
        if frac_text.len() > 18 {
            return Err(format!("`{t}` has too many fractional digits"));
        }
        let frac: i128 = frac_text.parse().unwrap_or(0);
        let scale = 10i128.pow(frac_text.len() as u32);
        let frac_ns = frac * i128::from(unit_ns);
        if frac_ns % scale != 0 {
            return Err(format!("`{t}` is more precise than a nanosecond"));
        }
        ns += frac_ns / scale;
    }
    i64::try_from(ns).map_err(|_| format!("`{t}` is out of range (after year 2262)"))
}

/// `2022-01-01T00:00:00Z`, `2018-01-10 04:55:00+00:00`, `2021-12-31 23:01:00.000000`,
/// `2021-12-31T23:01:00`, `2021-12-31`. No offset means UTC.
pub(super) fn parse_datetime(text: &str) -> Result<i64, String> {
    parse_datetime_bytes(text.trim().as_bytes()).ok_or_else(|| {
        format!(
            "`{}` is not a timestamp (expected e.g. 2022-01-01T00:00:00Z, \
             2021-12-31 23:01:00, 2021-12-31 or epoch s/ms/µs/ns)",
            text.trim()
        )
    })
}

fn parse_datetime_bytes(b: &[u8]) -> Option<i64> {
    let mut cur = Cursor { b, pos: 0 };
    let year = cur.number(4)?;
    cur.expect(b'-')?;
    let month = cur.number(2)?;
    cur.expect(b'-')?;
    let day = cur.number(2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut time_ns: i64 = 0;
    if matches!(cur.peek(), Some(b'T' | b't' | b' ')) {
        cur.pos += 1;
        time_ns = cur.time_of_day()?;
    }
    let offset_ns = cur.offset()?;
    if cur.pos != b.len() {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let total =
        i128::from(days) * i128::from(NS_PER_DAY) + i128::from(time_ns) - i128::from(offset_ns);
    i64::try_from(total).ok()
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.peek()? == want).then(|| self.pos += 1)
    }

    /// Exactly `len` ASCII digits.
    fn number(&mut self, len: usize) -> Option<i64> {
        let digits = self.b.get(self.pos..self.pos + len)?;
        let mut n = 0i64;
        for &d in digits {
            if !d.is_ascii_digit() {
                return None;
            }
            n = n * 10 + i64::from(d - b'0');
        }
        self.pos += len;
        Some(n)
    }

    /// `HH:MM[:SS[.fraction]]`, fraction up to 9 digits.
    fn time_of_day(&mut self) -> Option<i64> {
        let hour = self.number(2)?;
        self.expect(b':')?;
        let minute = self.number(2)?;
        let mut second = 0;
        let mut frac_ns = 0;
        if self.peek() == Some(b':') {
            self.pos += 1;
            second = self.number(2)?;
            if matches!(self.peek(), Some(b'.' | b',')) {
                self.pos += 1;
                frac_ns = self.fraction_ns()?;
            }
        }
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        Some(((hour * 60 + minute) * 60 + second) * NS_PER_SEC + frac_ns)
    }

    fn fraction_ns(&mut self) -> Option<i64> {
        let start = self.pos;
        let mut ns = 0i64;
        while let Some(d) = self.peek().filter(u8::is_ascii_digit) {
            if self.pos - start == 9 {
                return None;
            }
            ns = ns * 10 + i64::from(d - b'0');
            self.pos += 1;
        }
        let len = self.pos - start;
        if len == 0 {
            return None;
        }
        Some(ns * 10i64.pow(9 - len as u32))
    }

    /// `Z`, `+HH:MM`, `+HHMM`, `+HH` (or `-`), or nothing (UTC).
    fn offset(&mut self) -> Option<i64> {
        let sign = match self.peek() {
            None => return Some(0),
            Some(b'Z' | b'z') => {
                self.pos += 1;
                return Some(0);
            }
            Some(b'+') => 1,
            Some(b'-') => -1,
            Some(_) => return None,
        };
        self.pos += 1;
        let hours = self.number(2)?;
        let minutes = match self.peek() {
            None => 0,
            Some(b':') => {
                self.pos += 1;
                self.number(2)?
            }
            Some(_) => self.number(2)?,
        };
        if hours > 23 || minutes > 59 {
            return None;
        }
        Some(sign * (hours * 60 + minutes) * 60 * NS_PER_SEC)
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `2021-11-27T00:01:00Z`, with a fraction only when there is one.
pub(super) fn format_ns(ns: i64) -> String {
    let days = ns.div_euclid(NS_PER_DAY);
    let in_day = ns.rem_euclid(NS_PER_DAY);
    let (y, mo, d) = civil_from_days(days);
    let secs = in_day / NS_PER_SEC;
    let frac = in_day % NS_PER_SEC;
    let (h, mi, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if frac == 0 {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    } else {
        let digits = format!("{frac:09}");
        let digits = digits.trim_end_matches('0');
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{digits}Z")
    }
}

/// `1m`, `90s`, `1500ms`, `1500µs`, `7ns`: a duration in the largest unit that is exact.
pub(super) fn format_duration(ns: i64) -> String {
    if ns != 0 && ns % NS_PER_SEC == 0 {
        keel_engine::Interval { ns }.name()
    } else if ns % 1_000_000 == 0 {
        format!("{}ms", ns / 1_000_000)
    } else if ns % 1_000 == 0 {
        format!("{}µs", ns / 1_000)
    } else {
        format!("{ns}ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chrono_ns(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap()
    }

    #[test]
    fn parses_every_documented_datetime_shape() {
        let jan1 = chrono_ns("2022-01-01T00:00:00Z");
        assert_eq!(parse_any("2022-01-01T00:00:00Z"), Ok(jan1));
        assert_eq!(parse_any("2022-01-01"), Ok(jan1));
        assert_eq!(parse_any("2022-01-01 00:00"), Ok(jan1));
        assert_eq!(parse_any("2022-01-01T01:00:00+01:00"), Ok(jan1));
        assert_eq!(parse_any("2021-12-31T23:00:00-0100"), Ok(jan1));
        assert_eq!(parse_any("2022-01-01 00:00:00.000000"), Ok(jan1));
        assert_eq!(
            parse_any("2018-01-10 04:55:00+00:00"),
            Ok(chrono_ns("2018-01-10T04:55:00Z"))
        );
        assert_eq!(
            parse_any("2021-12-31 23:01:00.5"),
            Ok(chrono_ns("2021-12-31T23:01:00.5Z"))
        );
    }

    #[test]
    fn epoch_unit_follows_magnitude() {
        let ns = chrono_ns("2022-01-01T00:00:00Z");
        for text in [
            "1640995200",
            "1640995200000",
            "1640995200000000",
            "1640995200000000000",
        ] {
            assert_eq!(parse_any(text), Ok(ns), "{text}");
        }
        assert_eq!(parse_any("1640995200.5"), Ok(ns + 500_000_000));
    }

    #[test]
    fn rejects_impossible_dates_and_junk() {
        for text in [
            "",
            "2021-02-29",
            "2021-13-01",
            "2021-12-31 24:00",
            "2021-12-31T23:60:00",
            "2021-12-31X",
            "2021-12-31T23:01:00+25:00",
            "yesterday",
            "1.2.3",
            "2021-1-1",
            "99999999999999999999",
            "2021-12-31T23:01:00.1234567891",
        ] {
            assert!(parse_any(text).is_err(), "{text:?} should be rejected");
        }
    }

    #[test]
    fn durations_use_the_largest_exact_unit() {
        assert_eq!(format_duration(60 * NS_PER_SEC), "1m");
        assert_eq!(format_duration(90 * NS_PER_SEC), "90s");
        assert_eq!(format_duration(1_500_000_000), "1500ms");
        assert_eq!(format_duration(1_500_000), "1500µs");
        assert_eq!(format_duration(7), "7ns");
    }

    proptest! {
        #[test]
        fn format_and_parse_agree_with_chrono(ns in -2_000_000_000_000_000_000i64..9_000_000_000_000_000_000) {
            let text = format_ns(ns);
            prop_assert_eq!(parse_datetime(&text), Ok(ns));
            prop_assert_eq!(chrono_ns(&text), ns);
        }
    }
}
