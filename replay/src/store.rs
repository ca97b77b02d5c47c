//! The embedded candle store: one journal per symbol and interval, at
//! `STORE/<SYMBOL>/<INTERVAL>/`, holding `StoredCandle` records in strictly increasing open
//! time. Appending is idempotent: bars already stored with identical values are skipped, so
//! importing the same file twice changes nothing; a stored bar with different values, or a
//! new bar older than the newest stored one, is an error that names it.

use std::path::{Path, PathBuf};

use keel_engine::{Candle, Interval, RecordKind, Symbol};
use keel_journal::{Durability, Journal, JournalError, Options, Reader};

use crate::codec::{DecodeError, Decoded, Encoder, decode};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("candle store {dir}: {source}")]
    Decode { dir: PathBuf, source: DecodeError },
    #[error(
        "no candles for {symbol} {interval} in store {store} (expected a journal at {dir}); \
         import some with `keel data import`"
    )]
    Missing {
        store: PathBuf,
        dir: PathBuf,
        symbol: String,
        interval: String,
    },
    #[error("candle store {dir}: record {seq} is not a stored candle")]
    NotACandle { dir: PathBuf, seq: u64 },
    #[error(
        "bar at {time} conflicts with the stored bar at the same time in {dir} \
         (stored {stored}, new {new}); the store keeps what it has: remove that \
         directory to re-import from scratch"
    )]
    Conflict {
        dir: PathBuf,
        time: String,
        stored: String,
        new: String,
    },
    #[error(
        "bar at {time} is older than the newest stored bar ({newest}) in {dir} and is not \
         in the store; the store only appends, so import older history into a fresh store"
    )]
    OutOfOrder {
        dir: PathBuf,
        time: String,
        newest: String,
    },
}

/// The journal directory holding `symbol` at `interval`.
pub fn series_dir(store: &Path, symbol: Symbol, interval: Interval) -> PathBuf {
    store.join(symbol.file_name()).join(interval.name())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendSummary {
    pub added: usize,
    pub already_present: usize,
    /// Bars missing between the newest stored bar and the first added one:
    /// `(newest stored open time, missing bars)`.
    pub gap_before_added: Option<(i64, u64)>,
}

fn describe(c: &Candle) -> String {
    format!(
        "o={} h={} l={} c={} v={}",
        c.open, c.high, c.low, c.close, c.volume
    )
}

/// Appends `candles` (sorted, validated) to the series, skipping identical bars already
/// stored. Nothing is written unless every bar is acceptable.
pub fn append(
    store: &Path,
    symbol: Symbol,
    interval: Interval,
    candles: &[Candle],
    fmt_time: impl Fn(i64) -> String,
) -> Result<AppendSummary, StoreError> {
    let dir = series_dir(store, symbol, interval);
    let first_new = candles.first().map_or(i64::MAX, |c| c.open_time_ns);
    // Stored bars from the first new bar's time on: the overlap to check.
    let mut overlap: Vec<Candle> = Vec::new();
    let mut newest: Option<i64> = None;
    if dir.exists() {
        let mut cursor = CandleCursor::open_dir(&dir, None, None)?;
        while let Some(c) = cursor.next_candle()? {
            newest = Some(c.open_time_ns);
            if c.open_time_ns >= first_new {
                overlap.push(c);
            }
        }
    }
    let mut fresh = Vec::with_capacity(candles.len());
    let mut present = 0usize;
    let mut stored = overlap.iter().peekable();
    for c in candles {
        while stored
            .peek()
            .is_some_and(|s| s.open_time_ns < c.open_time_ns)
        {
            stored.next();
        }
        match stored.peek() {
            Some(s) if s.open_time_ns == c.open_time_ns => {
                if *s != c {
                    return Err(StoreError::Conflict {
                        dir,
                        time: fmt_time(c.open_time_ns),
                        stored: describe(s),
                        new: describe(c),
                    });
                }
                present += 1;
            }
            _ => match newest {
                Some(n) if c.open_time_ns <= n => {
                    return Err(StoreError::OutOfOrder {
                        dir,
                        time: fmt_time(c.open_time_ns),
                        newest: fmt_time(n),
                    });
                }
                _ => fresh.push(*c),
            },
        }
    }
    let gap_before_added = match (newest, fresh.first()) {
        (Some(n), Some(first)) => {
            let missing = (first.open_time_ns - n) / interval.ns - 1;
            (missing > 0).then_some((n, missing.unsigned_abs()))
        }
        _ => None,
    };
    if !fresh.is_empty() {
        let options = Options {
            durability: Durability::None,
            segment_size: 64 << 20,
            // A short series takes a few MiB, not 64.
            grow_segments: true,
            ..Options::default()
        };
        let (mut journal, _) = Journal::open(&dir, options)?;
        let mut enc = Encoder::new();
        let k = RecordKind::StoredCandle;
        for c in &fresh {
            journal.append(
                c.open_time_ns.max(0) as u64,
                k as u16,
                k.version(),
                enc.candle(c),
            )?;
        }
        journal.sync()?;
    }
    Ok(AppendSummary {
        added: fresh.len(),
        already_present: present,
        gap_before_added,
    })
}

/// Streams a series' bars in order, optionally limited to open times in `[from, to)`.
pub struct CandleCursor {
    reader: Reader,
    dir: PathBuf,
    from_ns: Option<i64>,
    to_ns: Option<i64>,
}

impl CandleCursor {
    pub fn open(
        store: &Path,
        symbol: Symbol,
        interval: Interval,
        from_ns: Option<i64>,
        to_ns: Option<i64>,
    ) -> Result<CandleCursor, StoreError> {
        let dir = series_dir(store, symbol, interval);
        if !dir.is_dir() {
            return Err(StoreError::Missing {
                store: store.to_path_buf(),
                dir,
                symbol: symbol.to_string(),
                interval: interval.name(),
            });
        }
        Self::open_dir(&dir, from_ns, to_ns)
    }

    fn open_dir(
        dir: &Path,
        from_ns: Option<i64>,
        to_ns: Option<i64>,
    ) -> Result<CandleCursor, StoreError> {
        Ok(CandleCursor {
            reader: Reader::open(dir)?,
            dir: dir.to_path_buf(),
            from_ns,
            to_ns,
        })
    }

    pub fn next_candle(&mut self) -> Result<Option<Candle>, StoreError> {
        Ok(self.next_stored()?.map(|(c, _, _)| c))
    }

    /// The next bar with its record's sequence number and stored CRC (what a
    /// [`crate::codec::CandleRef`] names).
    pub fn next_stored(&mut self) -> Result<Option<(Candle, u64, u32)>, StoreError> {
        loop {
            let Some(rec) = self.reader.next()? else {
                return Ok(None);
            };
            let (seq, crc) = (rec.seq, rec.crc);
            let c = stored_candle(&self.dir, &rec)?;
            if self.from_ns.is_some_and(|f| c.open_time_ns < f) {
                continue;
            }
            if self.to_ns.is_some_and(|t| c.open_time_ns >= t) {
                return Ok(None);
            }
            return Ok(Some((c, seq, crc)));
        }
    }
}

/// The candle a store record holds (`dir` names the store's series in errors).
#[inline]
pub(crate) fn stored_candle(dir: &Path, rec: &keel_journal::Record) -> Result<Candle, StoreError> {
    let k = RecordKind::StoredCandle;
    // Nearly every record: a stored candle of today's layout, read in place.
    let fast = (rec.kind == k as u16 && rec.ver == k.version())
        .then(|| Candle::read_archive(rec.payload))
        .flatten();
    match fast {
        Some(c) => Ok(c),
        None => decode_slow(dir, rec.seq, rec.kind, rec.ver, rec.payload),
    }
}

/// Any record but a stored candle of today's layout: decoded in full, for its error if it is
/// not a stored candle.
#[cold]
fn decode_slow(
    dir: &Path,
    seq: u64,
    kind: u16,
    ver: u16,
    payload: &[u8],
) -> Result<Candle, StoreError> {
    let decoded = decode(seq, kind, ver, payload).map_err(|source| StoreError::Decode {
        dir: dir.to_path_buf(),
        source,
    })?;
    match decoded {
        Decoded::StoredCandle(c) => Ok(c),
        _ => Err(StoreError::NotACandle {
            dir: dir.to_path_buf(),
            seq,
        }),
    }
}
