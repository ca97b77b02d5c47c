//! `keel data export`: stored candles out to CSV or Parquet.
//!
//! Both formats have the columns `open_time, open, high, low, close, volume, close_time`,
//! one row per stored bar, in open-time order. `close_time` is `open_time + interval`, the
//! exclusive end of the bar (as in `Candle::close_time_ns`), not Binance's `end - 1 ms`.
//!
//! The output is written to `<out>.tmp` and renamed onto `out` only once complete, so `out`
//! is either the previous file or the whole new one, never a partial export.

use std::fmt::{self, Write as _};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use keel_engine::{Candle, Fixed, Interval, Symbol};
use keel_replay::report::iso8601;
use keel_replay::store::{CandleCursor, StoreError};
use parquet::basic::{Compression, Encoding};
use parquet::data_type::{DataType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::{SerializedFileWriter, SerializedRowGroupWriter};
use parquet::schema::parser::parse_message_type;
use parquet::schema::types::ColumnPath;

use crate::config::parse_time;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Csv,
    Parquet,
}

/// What to export and where.
#[derive(Clone, Debug)]
pub struct ExportRequest {
    pub format: ExportFormat,
    pub store: PathBuf,
    pub symbol: String,
    pub interval: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub out: PathBuf,
}

/// What an export wrote.
#[derive(Clone, Debug)]
pub struct ExportSummary {
    pub rows: u64,
    pub out: PathBuf,
}

impl fmt::Display for ExportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bars written to {}", self.rows, self.out.display())
    }
}

/// CSV header; the Parquet columns have the same names in the same order.
pub const COLUMNS: [&str; 7] = [
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
];

/// Parquet schema. Prices and volume are DOUBLE rather than DECIMAL(18, 8): pandas turns
/// Parquet decimals into `object` columns of Python `Decimal`s (slow, `describe()` treats
/// them as categories, NumPy ufuncs such as `np.log` fail), and INT64 decimals stop at 18
/// digits while `Fixed` reaches 19. The CSV export is the exact one.
pub const PARQUET_SCHEMA: &str = "
message candles {
    REQUIRED INT64 open_time (TIMESTAMP(NANOS, true));
    REQUIRED DOUBLE open;
    REQUIRED DOUBLE high;
    REQUIRED DOUBLE low;
    REQUIRED DOUBLE close;
    REQUIRED DOUBLE volume;
    REQUIRED INT64 close_time (TIMESTAMP(NANOS, true));
}";

/// Most rows in one Parquet row group; a row group is buffered in memory before it is
/// written (7 columns x 8 bytes x this = 56 MB at most).
pub const PARQUET_ROW_GROUP_ROWS: usize = 1_000_000;

/// Writes the bars of one stored series, limited to `[from, to)`, to `request.out`.
pub fn export(request: &ExportRequest) -> Result<ExportSummary> {
    let symbol = Symbol::new(&request.symbol).map_err(|e| anyhow!("--symbol: {e}"))?;
    let interval = Interval::parse(&request.interval).map_err(|e| anyhow!("--interval: {e}"))?;
    let from = parse_bound("--from", request.from.as_deref())?;
    let to = parse_bound("--to", request.to.as_deref())?;
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        bail!(
            "--from {} is not before --to {} (--to is exclusive)",
            iso8601(f),
            iso8601(t)
        );
    }
    // Check the output path before reading anything, so a typo fails fast.
    if request.out.is_dir() {
        bail!(
            "--out {} is a directory; give a file name",
            request.out.display()
        );
    }
    let series = format!("{symbol} {}", interval.name());
    let store = request.store.display();
    let mut cursor = match CandleCursor::open(&request.store, symbol, interval, from, to) {
        Ok(cursor) => cursor,
        // Already names the store, symbol, interval and the expected directory.
        Err(e @ StoreError::Missing { .. }) => return Err(e.into()),
        Err(e) => {
            return Err(
                anyhow::Error::new(e).context(format!("reading {series} from store {store}"))
            );
        }
    };

    let tmp = TempFile::create(temp_path(&request.out), &request.out)?;
    let written = match request.format {
        ExportFormat::Csv => write_csv(&mut cursor, &tmp.file),
        ExportFormat::Parquet => write_parquet(&mut cursor, &tmp.file, PARQUET_ROW_GROUP_ROWS),
    };
    let rows = written
        .and_then(|rows| {
            // Data on disk before the rename, so a crash cannot leave `out` truncated.
            tmp.file.sync_all()?;
            Ok(rows)
        })
        .with_context(|| {
            format!(
                "exporting {series} from store {store} to {}",
                tmp.path.display()
            )
        })?;
    if rows == 0 {
        // Refuse rather than replace a previous export with an empty file.
        bail!(
            "no bars of {series} in {} in store {store}; the series holds {}",
            describe_range(from, to),
            stored_range(&request.store, symbol, interval)
        );
    }
    tmp.persist(&request.out)?;
    Ok(ExportSummary {
        rows,
        out: request.out.clone(),
    })
}

fn parse_bound(flag: &str, text: Option<&str>) -> Result<Option<i64>> {
    text.map(|t| parse_time(t).with_context(|| format!("{flag} {t}")))
        .transpose()
}

fn describe_range(from: Option<i64>, to: Option<i64>) -> String {
    match (from, to) {
        (None, None) => "the whole series".to_string(),
        (Some(f), None) => format!("[{}, end)", iso8601(f)),
        (None, Some(t)) => format!("[start, {})", iso8601(t)),
        (Some(f), Some(t)) => format!("[{}, {})", iso8601(f), iso8601(t)),
    }
}

/// First and last stored open time, for the "nothing in range" message. Scans the series,
/// which is fine on this error path.
fn stored_range(store: &Path, symbol: Symbol, interval: Interval) -> String {
    let Ok(mut cursor) = CandleCursor::open(store, symbol, interval, None, None) else {
        return "no readable bars".to_string();
    };
    let mut first = None;
    let mut last = None;
    while let Ok(Some(c)) = cursor.next_candle() {
        first.get_or_insert(c.open_time_ns);
        last = Some(c.open_time_ns);
    }
    match (first, last) {
        (Some(f), Some(l)) => format!("bars opening {} to {}", iso8601(f), iso8601(l)),
        _ => "no bars".to_string(),
    }
}

fn write_csv(cursor: &mut CandleCursor, file: &File) -> Result<u64> {
    let mut out = csv::Writer::from_writer(file);
    out.write_record(COLUMNS)?;
    let mut field = String::new();
    let mut rows = 0u64;
    while let Some(c) = cursor.next_candle()? {
        out.write_field(iso8601(c.open_time_ns))?;
        for v in [c.open, c.high, c.low, c.close, c.volume] {
            field.clear();
            // Fixed's Display is the exact decimal; writing to a String cannot fail.
            let _ = write!(field, "{v}");
            out.write_field(&field)?;
        }
        out.write_field(iso8601(c.close_time_ns()))?;
        out.write_record(None::<&[u8]>)?;
        rows += 1;
    }
    out.flush()?;
    Ok(rows)
}

/// One row group's worth of columns, filled from the cursor.
#[derive(Default)]
struct Columns {
    open_time: Vec<i64>,
    prices: [Vec<f64>; 5],
    close_time: Vec<i64>,
}

impl Columns {
    fn push(&mut self, c: &Candle) {
        self.open_time.push(c.open_time_ns);
        for (col, v) in self
            .prices
            .iter_mut()
            .zip([c.open, c.high, c.low, c.close, c.volume])
        {
            col.push(nearest_f64(v));
        }
        self.close_time.push(c.close_time_ns());
    }

    fn len(&self) -> usize {
        self.open_time.len()
    }

    fn clear(&mut self) {
        self.open_time.clear();
        self.prices.iter_mut().for_each(Vec::clear);
        self.close_time.clear();
    }
}

/// The double nearest to the exact decimal, as parsing the CSV value would give, so that
/// readers printing the shortest repr show the stored decimal whenever it has at most 15
/// significant digits.
fn nearest_f64(v: Fixed) -> f64 {
    // Below 2^53 the raw integer converts exactly and the one division rounds correctly;
    // above, `raw as f64` would round first, so go through the decimal text.
    if v.raw().unsigned_abs() < 1 << 53 {
        v.to_f64()
    } else {
        v.to_string().parse().unwrap_or_else(|_| v.to_f64())
    }
}

fn write_parquet(cursor: &mut CandleCursor, file: &File, group_rows: usize) -> Result<u64> {
    let schema = Arc::new(parse_message_type(PARQUET_SCHEMA)?);
    let mut props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("keel {}", env!("CARGO_PKG_VERSION")));
    // Times step by the interval: delta encoding stores them in almost nothing, where the
    // default dictionary (every value distinct) falls back to plain 8 bytes a row.
    for name in ["open_time", "close_time"] {
        let col = ColumnPath::from(name);
        props = props
            .set_column_dictionary_enabled(col.clone(), false)
            .set_column_encoding(col, Encoding::DELTA_BINARY_PACKED);
    }
    let props = props.build();
    let mut writer = SerializedFileWriter::new(file, schema, Arc::new(props))?;
    let mut cols = Columns::default();
    let mut rows = 0u64;
    loop {
        cols.clear();
        while cols.len() < group_rows {
            match cursor.next_candle()? {
                Some(c) => cols.push(&c),
                None => break,
            }
        }
        if cols.len() == 0 {
            break;
        }
        let mut group = writer.next_row_group()?;
        write_column::<Int64Type>(&mut group, &cols.open_time)?;
        for values in &cols.prices {
            write_column::<DoubleType>(&mut group, values)?;
        }
        write_column::<Int64Type>(&mut group, &cols.close_time)?;
        group.close()?;
        rows += cols.len() as u64;
        if cols.len() < group_rows {
            break;
        }
    }
    writer.close()?;
    Ok(rows)
}

fn write_column<T: DataType>(
    group: &mut SerializedRowGroupWriter<'_, &File>,
    values: &[T::T],
) -> Result<()> {
    let mut col = group
        .next_column()?
        .ok_or_else(|| anyhow!("Parquet schema has fewer columns than written"))?;
    col.typed::<T>().write_batch(values, None, None)?;
    col.close()?;
    Ok(())
}

/// `<out>.tmp`, next to `out` so the rename stays on one file system.
fn temp_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// A file that is deleted on drop unless `persist` renamed it into place: every error path
/// (and a panic) leaves no temporary file behind.
struct TempFile {
    path: PathBuf,
    file: File,
    persisted: bool,
}

impl TempFile {
    fn create(path: PathBuf, out: &Path) -> Result<TempFile> {
        let file = File::create(&path).with_context(|| {
            format!(
                "cannot create {} (temporary file for --out {})",
                path.display(),
                out.display()
            )
        })?;
        Ok(TempFile {
            path,
            file,
            persisted: false,
        })
    }

    fn persist(mut self, to: &Path) -> Result<()> {
        std::fs::rename(&self.path, to).with_context(|| {
            format!("cannot rename {} to {}", self.path.display(), to.display())
        })?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_path_appends_suffix() {
        assert_eq!(
            temp_path(Path::new("out/btc.csv")),
            PathBuf::from("out/btc.csv.tmp")
        );
    }

    #[test]
    fn nearest_f64_matches_parsing_the_decimal() {
        for text in [
            "46319",
            "0.00002853",
            "2300413.7295",
            "-1.5",
            "92233720368.54775807",
            "90071992.54740993",
            "12345678901.12345678",
        ] {
            let v = Fixed::parse(text).unwrap();
            assert_eq!(nearest_f64(v), text.parse::<f64>().unwrap(), "{text}");
        }
    }

    /// `n` one-minute bars with distinct prices, stored as BTCUSDT 1m in `store`.
    fn store_with_bars(store: &Path, n: i64) -> (Symbol, Interval) {
        let symbol = Symbol::new("BTCUSDT").unwrap();
        let interval = Interval::parse("1m").unwrap();
        let bars: Vec<Candle> = (0..n)
            .map(|i| {
                let p = Fixed::from_int(100 + i);
                Candle {
                    symbol,
                    open_time_ns: 1_640_995_200_000_000_000 + i * interval.ns,
                    interval_ns: interval.ns,
                    open: p,
                    high: p,
                    low: p,
                    close: p,
                    volume: Fixed::from_raw(i),
                }
            })
            .collect();
        keel_replay::store::append(store, symbol, interval, &bars, iso8601).unwrap();
        (symbol, interval)
    }

    #[test]
    fn parquet_row_groups_are_bounded() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        use parquet::record::RowAccessor;

        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        for (bars, groups) in [
            (2_500, vec![1_000, 1_000, 500]),
            (2_000, vec![1_000, 1_000]),
        ] {
            let _ = std::fs::remove_dir_all(&store);
            let (symbol, interval) = store_with_bars(&store, bars);
            let mut cursor = CandleCursor::open(&store, symbol, interval, None, None).unwrap();
            let path = dir.path().join("out.parquet");
            let file = File::create(&path).unwrap();
            assert_eq!(
                write_parquet(&mut cursor, &file, 1_000).unwrap(),
                bars as u64
            );
            drop(file);

            let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
            let sizes: Vec<i64> = reader
                .metadata()
                .row_groups()
                .iter()
                .map(|g| g.num_rows())
                .collect();
            assert_eq!(sizes, groups);
            for (i, row) in reader.into_iter().enumerate() {
                let row = row.unwrap();
                assert_eq!(
                    row.get_long(0).unwrap(),
                    1_640_995_200_000_000_000 + i as i64 * interval.ns
                );
                assert_eq!(row.get_double(4).unwrap(), 100.0 + i as f64);
            }
        }
    }

    #[test]
    fn schema_parses_with_seven_columns() {
        let schema = parse_message_type(PARQUET_SCHEMA).unwrap();
        let names: Vec<_> = schema.get_fields().iter().map(|f| f.name()).collect();
        assert_eq!(names, COLUMNS);
    }
}
