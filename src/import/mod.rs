//! Candle files → validated [`Candle`]s, for `keel data import`.
//!
//! Three formats are read (see [`Format`]); gzip input (`.gz`, detected by its magic bytes,
//! not its name) works for all of them, `.zip` does not. The contract: either every row of the
//! file becomes a candle, or nothing is returned and [`ImportError::Invalid`] lists the
//! problems by 1-based file line — nothing is silently skipped, repaired or reordered. A row
//! is a problem if a field does not parse, the column count is wrong, the bar breaks
//! [`Candle::check`], its time is not after the previous row's, or its time is not a multiple
//! of the interval (bars open at `k × interval` since the epoch; weekly bars on Mondays). A
//! spacing that is not a multiple of the interval always makes a row misaligned and is
//! reported there. Gaps (spacing of k > 1 intervals) are real exchange outages, not errors:
//! they are returned in [`Imported::gaps`]. A file in which no two rows are one interval
//! apart is rejected too, because it means `--interval` is shorter than the file's bars.
//!
//! Prices and volumes go through [`Fixed::parse`], which rounds to 8 decimals: that is what
//! float artifacts such as `0.09946999000000001` in pandas output need.
//!
//! This module only parses; writing the store is the caller's job.

mod binance;
mod collect;
mod freqtrade;
pub mod funding;
mod plain_csv;
mod timestamp;

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use keel_engine::{Candle, Interval, Symbol};

pub use collect::MAX_REPORTED_PROBLEMS;

#[cfg(doc)]
use keel_engine::Fixed;

/// The file formats `keel data import --format` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `binance-csv`: data.binance.vision kline dumps, 12 columns `open_time, open, high, low,
    /// close, volume, close_time, quote_volume, count, taker_buy_base, taker_buy_quote,
    /// ignore`, with or without an `open_time,...` header line. Times are milliseconds, or
    /// microseconds (spot files since 2025), told apart per row by magnitude; `close_time` must
    /// be `open_time + interval − 1 unit`, which catches a wrong `--interval`.
    BinanceCsv,
    /// `freqtrade-json`: freqtrade's `[[time_ms, open, high, low, close, volume], ...]`.
    /// Problems name the element's 0-based index (`jq '.[17]'` shows it) and its line.
    FreqtradeJson,
    /// `csv`: any CSV whose header names the columns (case-insensitive, any order, extra
    /// columns ignored): a time column called `time`, `timestamp`, `date`, `datetime`,
    /// `open_time` or `ts`, and `open`, `high`, `low`, `close`, optionally `volume` (missing
    /// volume imports as 0). Times are bar open times: RFC 3339 / ISO-8601 with `Z` or an
    /// offset, naive date-times or dates taken as UTC, or epoch numbers in s/ms/µs/ns told
    /// apart by magnitude.
    Csv,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::BinanceCsv, Format::FreqtradeJson, Format::Csv];

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Format::BinanceCsv => "binance-csv",
            Format::FreqtradeJson => "freqtrade-json",
            Format::Csv => "csv",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown format `{s}`: use binance-csv, freqtrade-json or csv"))
    }
}

/// A run of missing bars: the bar opening at `after_open_time_ns` is followed by
/// `missing_bars` absent ones before the next row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gap {
    pub after_open_time_ns: i64,
    pub missing_bars: u64,
}

/// A whole file, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Imported {
    /// One per data row, in file (= time) order.
    pub candles: Vec<Candle>,
    pub gaps: Vec<Gap>,
    /// Data rows read (header lines not counted); equals `candles.len()`.
    pub rows: usize,
}

/// One thing wrong with one line of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line in the (decompressed) file.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Why a file could not be imported. `file` is the path or source name as given.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    // `error`, not `source`: the message already includes it, and a source would make
    // anyhow print the OS error twice.
    #[error("cannot read {}: {error}; {}", path.display(), io_hint(error))]
    Io { path: PathBuf, error: io::Error },
    #[error("{file} holds no candles ({detail}); check that the download finished")]
    Empty { file: String, detail: &'static str },
    #[error(
        "{file} is a .zip archive, which import does not read; unzip it and import the .csv \
         inside (plain and .gz files are read)"
    )]
    Zip { file: String },
    /// Nothing was imported. `problems` holds the first [`MAX_REPORTED_PROBLEMS`] in line
    /// order, `total` counts all of them.
    #[error("{}", invalid_message(file, problems, *total))]
    Invalid {
        file: String,
        problems: Vec<Problem>,
        total: usize,
    },
}

fn io_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::NotFound => "check the path",
        io::ErrorKind::PermissionDenied => "check the file's permissions",
        _ => "the file may be truncated or damaged; download it again",
    }
}

fn invalid_message(file: &str, problems: &[Problem], total: usize) -> String {
    let noun = if total == 1 { "problem" } else { "problems" };
    let mut s = format!(
        "{file}: {total} {noun}, nothing imported; fix the file, or check --format and \
         --interval:"
    );
    for p in problems {
        s += &format!("\n  {file}:{p}");
    }
    if total > problems.len() {
        s += &format!("\n  ... and {} more", total - problems.len());
    }
    s
}

/// Reads and checks a whole file; see the module docs for what is rejected.
pub fn parse_file(
    path: &Path,
    format: Format,
    symbol: Symbol,
    interval: Interval,
) -> Result<Imported, ImportError> {
    let file = File::open(path).map_err(|error| ImportError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    parse_reader(file, &path.display().to_string(), format, symbol, interval)
}

/// Like [`parse_file`] for any byte stream; `source_name` names it in errors.
pub fn parse_reader(
    reader: impl Read,
    source_name: &str,
    format: Format,
    symbol: Symbol,
    interval: Interval,
) -> Result<Imported, ImportError> {
    let io_err = |error| ImportError::Io {
        path: PathBuf::from(source_name),
        error,
    };
    let mut reader = reader;
    let (magic, n) = read_prefix::<2>(&mut reader).map_err(io_err)?;
    let raw = io::Cursor::new(magic).take(n as u64).chain(reader);
    match &magic[..n] {
        [] => Err(ImportError::Empty {
            file: source_name.to_string(),
            detail: "it is 0 bytes long",
        }),
        b"PK" => Err(ImportError::Zip {
            file: source_name.to_string(),
        }),
        [0x1f, 0x8b] => {
            let gz = flate2::read::MultiGzDecoder::new(raw);
            parse_decoded(gz, source_name, format, symbol, interval)
        }
        _ => parse_decoded(raw, source_name, format, symbol, interval),
    }
}

fn parse_decoded<'a>(
    mut reader: impl Read + 'a,
    file: &str,
    format: Format,
    symbol: Symbol,
    interval: Interval,
) -> Result<Imported, ImportError> {
    let io_err = |error| ImportError::Io {
        path: PathBuf::from(file),
        error,
    };
    let (head, n) = read_prefix::<3>(&mut reader).map_err(io_err)?;
    if n == 0 {
        return Err(ImportError::Empty {
            file: file.to_string(),
            detail: "it decompresses to 0 bytes",
        });
    }
    // A UTF-8 byte-order mark (Excel likes them) is not part of the first field.
    let body: Box<dyn Read + 'a> = if head[..n] == [0xef, 0xbb, 0xbf] {
        Box::new(reader)
    } else {
        Box::new(io::Cursor::new(head).take(n as u64).chain(reader))
    };
    let mut c = collect::Collector::new(symbol, interval);
    match format {
        Format::BinanceCsv => binance::parse(body, file, &mut c)?,
        Format::FreqtradeJson => freqtrade::parse(body, file, &mut c)?,
        Format::Csv => plain_csv::parse(body, file, &mut c)?,
    }
    c.finish(file)
}

/// Reads up to `N` bytes, fewer only at end of input.
fn read_prefix<const N: usize>(reader: &mut impl Read) -> io::Result<([u8; N], usize)> {
    let mut buf = [0u8; N];
    let mut n = 0;
    while n < N {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((buf, n))
}

/// Maps a CSV reader's error to an import error or a problem on its line.
fn csv_error(e: csv::Error, file: &str, c: &mut collect::Collector) -> Option<ImportError> {
    let line = e
        .position()
        .map_or(0, |p| usize::try_from(p.line()).unwrap_or(usize::MAX));
    match e.into_kind() {
        csv::ErrorKind::Io(error) => Some(ImportError::Io {
            path: PathBuf::from(file),
            error,
        }),
        other => {
            c.problem(line, format!("unreadable CSV: {other:?}"));
            None
        }
    }
}

/// The CSV reader both CSV formats use: no header handling (the formats differ), rows of any
/// width (the parsers report wrong widths with the line), a large buffer. CRLF becomes LF
/// first because the csv crate miscounts lines in CRLF files (BurntSushi/rust-csv#395), and
/// every problem must point at the right line.
fn csv_reader(reader: impl Read) -> csv::Reader<impl Read> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(1 << 16)
        .from_reader(CrlfToLf::new(reader))
}

/// Drops each `\r` that is directly followed by `\n`, across read boundaries. It keeps its
/// own buffer so a `\r` can always look at the byte after it before it is passed on.
struct CrlfToLf<R> {
    inner: R,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    eof: bool,
}

impl<R: Read> CrlfToLf<R> {
    fn new(inner: R) -> Self {
        CrlfToLf {
            inner,
            buf: vec![0; 1 << 16].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
        }
    }
}

impl<R: Read> Read for CrlfToLf<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut w = 0;
        while w < out.len() {
            if self.end - self.start < 2 && !self.eof {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
                match self.inner.read(&mut self.buf[self.end..])? {
                    0 => self.eof = true,
                    n => self.end += n,
                }
                continue;
            }
            if self.start == self.end {
                break;
            }
            let b = self.buf[self.start];
            self.start += 1;
            let crlf = b == b'\r' && self.start < self.end && self.buf[self.start] == b'\n';
            if !crlf {
                out[w] = b;
                w += 1;
            }
        }
        Ok(w)
    }
}

/// 1-based line on which `record` starts.
fn line_of(record: &csv::ByteRecord) -> usize {
    record
        .position()
        .map_or(0, |p| usize::try_from(p.line()).unwrap_or(usize::MAX))
}

/// Field `i` as trimmed text.
fn field_text(record: &csv::ByteRecord, i: usize) -> Result<&str, String> {
    let bytes = record.get(i).unwrap_or_default();
    std::str::from_utf8(bytes)
        .map(str::trim)
        .map_err(|_| format!("`{}` is not UTF-8 text", String::from_utf8_lossy(bytes)))
}

/// Reads the next record; `Ok(false)` at the end or after an unreadable one (then reported).
fn next_record(
    rdr: &mut csv::Reader<impl Read>,
    record: &mut csv::ByteRecord,
    file: &str,
    c: &mut collect::Collector,
) -> Result<bool, ImportError> {
    match rdr.read_byte_record(record) {
        Ok(more) => Ok(more),
        Err(e) => match csv_error(e, file, c) {
            Some(fatal) => Err(fatal),
            None => Ok(false),
        },
    }
}

#[cfg(test)]
mod crlf_tests {
    use super::*;

    /// Reads through the adapter `chunk` bytes at a time.
    fn through(input: &[u8], chunk: usize) -> Vec<u8> {
        struct Chunks<'a>(&'a [u8], usize);
        impl Read for Chunks<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.1.min(buf.len()).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        CrlfToLf::new(Chunks(input, chunk))
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn crlf_becomes_lf_whatever_the_chunking() {
        let input = b"a,b\r\nc\rd\r\n\r\ne\r";
        for chunk in 1..=input.len() {
            assert_eq!(through(input, chunk), b"a,b\nc\rd\n\ne\r", "chunk {chunk}");
        }
    }
}
