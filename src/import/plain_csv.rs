//! CSV with a header naming its columns (pandas, freqtrade, nautilus, spreadsheets).

use std::io::Read;

use csv::ByteRecord;
use keel_engine::Fixed;

use super::collect::{Collector, Ohlcv, parse_fixed};
use super::timestamp::parse_any;
use super::{ImportError, field_text, line_of, next_record};

const TIME_NAMES: [&str; 6] = ["time", "timestamp", "date", "datetime", "open_time", "ts"];
const PRICE_NAMES: [&str; 4] = ["open", "high", "low", "close"];

/// Where each column the import uses sits in a row.
struct Layout {
    width: usize,
    time: usize,
    time_name: String,
    /// open, high, low, close.
    prices: [usize; 4],
    volume: Option<usize>,
}

pub(super) fn parse(reader: impl Read, file: &str, c: &mut Collector) -> Result<(), ImportError> {
    let mut rdr = super::csv_reader(reader);
    let mut record = ByteRecord::new();
    if !next_record(&mut rdr, &mut record, file, c)? {
        return Ok(());
    }
    let Some(layout) = read_header(c, &record) else {
        return Ok(());
    };
    while next_record(&mut rdr, &mut record, file, c)? {
        c.rows += 1;
        let line = line_of(&record);
        if record.len() != layout.width {
            c.problem(
                line,
                format!(
                    "expected {} columns as in the header, found {}",
                    layout.width,
                    record.len()
                ),
            );
        } else if let Some((open_time_ns, ohlcv)) = parse_row(c, line, &record, &layout) {
            c.row(line, open_time_ns, ohlcv);
        }
    }
    Ok(())
}

fn read_header(c: &mut Collector, record: &ByteRecord) -> Option<Layout> {
    let line = line_of(record);
    let names: Vec<String> = (0..record.len())
        .map(|i| {
            let bytes = record.get(i).unwrap_or_default();
            String::from_utf8_lossy(bytes).trim().to_ascii_lowercase()
        })
        .collect();
    let found = names.join(", ");
    let find =
        |wanted: &str| -> Vec<usize> { (0..names.len()).filter(|&i| names[i] == wanted).collect() };
    let times: Vec<usize> = TIME_NAMES.iter().flat_map(|n| find(n)).collect();
    if times.is_empty() && names.first().is_some_and(|n| parse_any(n).is_ok()) {
        c.problem(
            line,
            format!(
                "line 1 looks like data, not a header naming the columns: there is no time \
                 column ({}); --format csv needs a header, headerless Binance dumps are \
                 --format binance-csv",
                TIME_NAMES.join(", ")
            ),
        );
        return None;
    }
    let mut ok = true;
    let time = match times[..] {
        [i] => Some(i),
        [] => {
            c.problem(
                line,
                format!(
                    "the header has no time column: name one of {} (found: {found})",
                    TIME_NAMES.join(", ")
                ),
            );
            None
        }
        _ => {
            let which: Vec<&str> = times.iter().map(|&i| names[i].as_str()).collect();
            c.problem(
                line,
                format!(
                    "the header has several time columns ({}); keep the one holding bar open \
                     times",
                    which.join(", ")
                ),
            );
            None
        }
    };
    let mut prices = [0; 4];
    for (slot, name) in prices.iter_mut().zip(PRICE_NAMES) {
        match find(name)[..] {
            [i] => *slot = i,
            [] => {
                c.problem(
                    line,
                    format!("the header has no `{name}` column (found: {found})"),
                );
                ok = false;
            }
            _ => {
                c.problem(line, format!("the header names `{name}` more than once"));
                ok = false;
            }
        }
    }
    let volume = match find("volume")[..] {
        [] => None,
        [i] => Some(i),
        _ => {
            c.problem(line, "the header names `volume` more than once");
            ok = false;
            None
        }
    };
    let time = time.filter(|_| ok)?;
    Some(Layout {
        width: names.len(),
        time,
        time_name: names[time].clone(),
        prices,
        volume,
    })
}

fn parse_row(
    c: &mut Collector,
    line: usize,
    record: &ByteRecord,
    layout: &Layout,
) -> Option<(i64, Ohlcv)> {
    let time = match field_text(record, layout.time).and_then(parse_any) {
        Ok(ns) => Some(ns),
        Err(why) => {
            c.problem(line, format!("column `{}`: {why}", layout.time_name));
            None
        }
    };
    let mut prices = [None; 4];
    for ((slot, &i), name) in prices.iter_mut().zip(&layout.prices).zip(PRICE_NAMES) {
        *slot = fixed_field(c, line, record, i, name);
    }
    let volume = match layout.volume {
        Some(i) => fixed_field(c, line, record, i, "volume"),
        None => Some(Fixed::ZERO),
    };
    let [Some(open), Some(high), Some(low), Some(close)] = prices else {
        return None;
    };
    let ohlcv = Ohlcv {
        open,
        high,
        low,
        close,
        volume: volume?,
    };
    Some((time?, ohlcv))
}

fn fixed_field(
    c: &mut Collector,
    line: usize,
    record: &ByteRecord,
    i: usize,
    name: &str,
) -> Option<Fixed> {
    match field_text(record, i) {
        Ok(text) => parse_fixed(c, line, name, text),
        Err(why) => {
            c.problem(line, format!("column `{name}`: {why}"));
            None
        }
    }
}
