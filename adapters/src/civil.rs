//! Proleptic Gregorian calendar arithmetic on day counts since 1970-01-01.
//!
//! The codecs, the mock venue and the REST client format and parse venue timestamps without a
//! date library (a codec must not need one, and must never read a clock). These are Howard
//! Hinnant's `days_from_civil` / `civil_from_days`: they count in 400-year eras starting on
//! March 1, so the leap day is the last day of a year and needs no special case. One copy for
//! the whole workspace (the `keel` binary's importer uses it too).

/// Days from 1970-01-01 to `year-month-day` (month 1..=12, day 1..=31; not range-checked).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // year of era, 0..=399
    let mp = (month + 9) % 12; // month index, March = 0
    let doy = (153 * mp + 2) / 5 + day - 1; // day of the March-based year
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // day of era
    era * 146_097 + doe - 719_468
}

/// `(year, month, day)` of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    // Shift the epoch to 0000-03-01: 719468 days before 1970-01-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates_and_round_trips() {
        // `date -u -d @0`, `@951782400` (2000-02-29), `@1640995200` (2022-01-01),
        // `@-86400` (1969-12-31).
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(951_782_400 / 86_400), (2000, 2, 29));
        assert_eq!(days_from_civil(2022, 1, 1), 1_640_995_200 / 86_400);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        for days in -800_000..800_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
