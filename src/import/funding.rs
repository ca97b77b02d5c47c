//! Funding-rate series for perpetual backtests: a CSV with a header naming a time column and
//! a rate column.
//!
//! Accepted headers (case-insensitive): time from `time`, `timestamp`, `date`, `datetime`,
//! `funding_time`, `calc_time` or `fundingTime`; rate from `rate`, `funding_rate`,
//! `fundingRate` or `last_funding_rate`, or else `open` (freqtrade stores funding rates as
//! candles whose open is the rate). So Binance's data.binance.vision `fundingRate` dumps and
//! freqtrade's `*-funding_rate.csv` files load as they are.

use std::path::Path;

use anyhow::{Context, Result, bail};
use keel_engine::Fixed;

use super::timestamp;

/// One funding settlement time and its rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FundingRow {
    pub time_ns: i64,
    pub rate: Fixed,
}

const TIME_NAMES: [&str; 7] = [
    "time",
    "timestamp",
    "date",
    "datetime",
    "funding_time",
    "calc_time",
    "fundingtime",
];
const RATE_NAMES: [&str; 4] = ["rate", "funding_rate", "fundingrate", "last_funding_rate"];

/// Reads a funding-rate CSV; rows must be in time order without duplicates.
pub fn read_funding(path: &Path) -> Result<Vec<FundingRow>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open funding file {}", path.display()))?;
    parse_funding(file, &path.display().to_string())
}

pub fn parse_funding(reader: impl std::io::Read, name: &str) -> Result<Vec<FundingRow>> {
    let mut csv = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(reader);
    let header: Vec<String> = csv
        .headers()
        .with_context(|| format!("{name}: cannot read the header"))?
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let find = |names: &[&str]| header.iter().position(|h| names.contains(&h.as_str()));
    let Some(time_col) = find(&TIME_NAMES) else {
        bail!("{name}: no time column (one of {TIME_NAMES:?}) in header {header:?}");
    };
    let Some(rate_col) = find(&RATE_NAMES).or_else(|| find(&["open"])) else {
        bail!("{name}: no rate column (one of {RATE_NAMES:?}, or `open`) in header {header:?}");
    };
    let mut rows: Vec<FundingRow> = Vec::new();
    for (i, record) in csv.records().enumerate() {
        let line = i + 2;
        let record = record.with_context(|| format!("{name} line {line}"))?;
        let field = |col: usize| record.get(col).unwrap_or("").trim();
        let time_ns = timestamp::parse_any(field(time_col))
            .map_err(|e| anyhow::anyhow!("{name} line {line}: time: {e}"))?;
        let rate = Fixed::parse(field(rate_col))
            .map_err(|e| anyhow::anyhow!("{name} line {line}: rate {:?}: {e}", field(rate_col)))?;
        if let Some(prev) = rows.last()
            && time_ns <= prev.time_ns
        {
            bail!("{name} line {line}: time is not after the previous row's");
        }
        rows.push(FundingRow { time_ns, rate });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_freqtrade_and_binance_layouts() {
        let ft = "date,open,high,low,close,volume\n\
                  2021-11-18 00:00:00.017+00:00,0.0001,0.0,0.0,0.0,0.0\n\
                  2021-11-18 08:00:00.007+00:00,-0.00005,0.0,0.0,0.0,0.0\n";
        let rows = parse_funding(ft.as_bytes(), "ft").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].time_ns, 1_637_193_600_017_000_000);
        assert_eq!(rows[1].rate, Fixed::parse("-0.00005").unwrap());
        let bn = "calc_time,funding_interval_hours,last_funding_rate\n1640995200000,8,0.00010000\n";
        let rows = parse_funding(bn.as_bytes(), "bn").unwrap();
        assert_eq!(rows[0].time_ns, 1_640_995_200_000_000_000);
        assert_eq!(rows[0].rate, Fixed::parse("0.0001").unwrap());
    }

    #[test]
    fn bad_rows_are_named_by_line() {
        let err = parse_funding("time,rate\n1,0.1\n1,0.2\n".as_bytes(), "f")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3"), "{err}");
        let err = parse_funding("when,rate\n1,0.1\n".as_bytes(), "f")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no time column"), "{err}");
        let err = parse_funding("time,rate\n1,abc\n".as_bytes(), "f")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
    }
}
