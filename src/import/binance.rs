//! data.binance.vision kline dumps: 12 columns, optional `open_time,...` header on line 1.

use std::io::Read;

use csv::ByteRecord;
use keel_engine::Fixed;

use super::collect::{Collector, Ohlcv, parse_fixed};
use super::timestamp::format_duration;
use super::{ImportError, field_text, line_of, next_record};

const COLUMNS: [&str; 12] = [
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_base",
    "taker_buy_quote",
    "ignore",
];

const NS_PER_MS: i64 = 1_000_000;
const NS_PER_US: i64 = 1_000;

pub(super) fn parse(reader: impl Read, file: &str, c: &mut Collector) -> Result<(), ImportError> {
    let mut rdr = super::csv_reader(reader);
    let mut record = ByteRecord::new();
    let mut first = true;
    while next_record(&mut rdr, &mut record, file, c)? {
        let line = line_of(&record);
        let is_header = field_text(&record, 0).is_ok_and(|f| f.eq_ignore_ascii_case("open_time"));
        if std::mem::replace(&mut first, false) && is_header {
            continue;
        }
        c.rows += 1;
        if is_header {
            c.problem(
                line,
                "a header line in the middle of the data: were files concatenated? import \
                 them one by one",
            );
        } else if record.len() != COLUMNS.len() {
            let hint = if record.len() < COLUMNS.len() {
                "; other CSV layouts need --format csv and a header"
            } else {
                ""
            };
            c.problem(
                line,
                format!(
                    "expected 12 columns (a Binance kline row), found {}{hint}",
                    record.len()
                ),
            );
        } else if let Some((open_time_ns, ohlcv)) = parse_row(c, line, &record) {
            c.row(line, open_time_ns, ohlcv);
        }
    }
    Ok(())
}

/// Every field is checked so that one pass reports all of a row's problems.
fn parse_row(c: &mut Collector, line: usize, record: &ByteRecord) -> Option<(i64, Ohlcv)> {
    let open_time = time_field(c, line, record, 0);
    let mut prices = [None; 5];
    for (i, slot) in prices.iter_mut().enumerate() {
        *slot = fixed_field(c, line, record, i + 1);
    }
    let close_time = time_field(c, line, record, 6);
    let (open_ns, open_unit_ns) = open_time?;
    let (close_ns, close_unit_ns) = close_time?;
    let [Some(open), Some(high), Some(low), Some(close), Some(volume)] = prices else {
        return None;
    };
    let interval = c.interval();
    let bar_ns = close_ns.saturating_add(close_unit_ns) - open_ns;
    if bar_ns != interval.ns {
        let unit = if open_unit_ns == NS_PER_MS {
            "ms"
        } else {
            "µs"
        };
        let expected = open_ns.saturating_add(interval.ns) / open_unit_ns - 1;
        let length = if bar_ns > 0 {
            format!("the bar is {} long", format_duration(bar_ns))
        } else {
            "it is not after open_time".to_string()
        };
        let text = field_text(record, 6).unwrap_or_default();
        c.problem(
            line,
            format!(
                "close_time {text} is not open_time + {} - 1 {unit} = {expected}: {length}; \
                 is --interval right?",
                interval.name()
            ),
        );
        return None;
    }
    let ohlcv = Ohlcv {
        open,
        high,
        low,
        close,
        volume,
    };
    Some((open_ns, ohlcv))
}

fn fixed_field(c: &mut Collector, line: usize, record: &ByteRecord, i: usize) -> Option<Fixed> {
    match field_text(record, i) {
        Ok(text) => parse_fixed(c, line, COLUMNS[i], text),
        Err(why) => {
            c.problem(line, format!("column `{}`: {why}", COLUMNS[i]));
            None
        }
    }
}

/// (nanoseconds, nanoseconds per unit): milliseconds, or microseconds when the number is at
/// least 1e14 (Binance spot files since 2025-01-01).
fn time_field(c: &mut Collector, line: usize, record: &ByteRecord, i: usize) -> Option<(i64, i64)> {
    let parsed = field_text(record, i).and_then(|text| {
        let n: u64 = text
            .parse()
            .ok()
            .filter(|_| text.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| format!("`{text}` is not a whole number of ms or µs"))?;
        let unit_ns = if n < 100_000_000_000_000 {
            NS_PER_MS
        } else {
            NS_PER_US
        };
        i64::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(unit_ns))
            .map(|ns| (ns, unit_ns))
            .ok_or_else(|| format!("`{text}` is out of range (after year 2262)"))
    });
    match parsed {
        Ok(time) => Some(time),
        Err(why) => {
            c.problem(line, format!("column `{}`: {why}", COLUMNS[i]));
            None
        }
    }
}
