//! Reading a session journal as its core saw it. A backtest journals its bars by reference
//! (`candle_ref` records naming candle store records, the first of them, `first_candle_ref`,
//! also naming the store); [`RunReader`] reads each referenced bar back from the store, checking that the
//! store still holds exactly the record the run read (same sequence number, same chained
//! CRC), and hands it out as the candle input it stood for. Every other record is decoded as
//! it is.

use std::path::{Path, PathBuf};

use keel_engine::event::Event;
use keel_engine::{Candle, Interval, RecordKind};
use keel_journal::{JournalError, Reader};

use crate::codec::{CandleRef, CandleSource, DecodeError, Decoded, decode};
use crate::store::{self, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("{dir}: {source}")]
    Decode { dir: PathBuf, source: DecodeError },
    #[error(
        "{run}: record {seq} refers to a stored candle, but no first_candle_ref came before it to name the store"
    )]
    NoSource { run: PathBuf, seq: u64 },
    #[error("{run}: record {seq} refers to series {series}, the first_candle_ref names {count}")]
    NoSeries {
        run: PathBuf,
        seq: u64,
        series: u32,
        count: usize,
    },
    #[error(
        "{run} reads its bars from the candle store {store}, which has no {symbol} {interval} \
         series (expected {dir}); pass the store the run used with --store"
    )]
    StoreMissing {
        run: PathBuf,
        store: PathBuf,
        dir: PathBuf,
        symbol: String,
        interval: String,
    },
    #[error(
        "{run}: record {seq} refers to record {store_seq} of {dir}, which that store does not \
         hold; pass the store the run used with --store"
    )]
    StoreRecordMissing {
        run: PathBuf,
        seq: u64,
        store_seq: u64,
        dir: PathBuf,
    },
    #[error(
        "{run}: record {seq} refers to record {store_seq} of {dir} with CRC {want:08x}, the \
         store's record has {found:08x}: this is not the store the run read (re-imported or \
         altered since); pass the store the run used with --store"
    )]
    StoreChanged {
        run: PathBuf,
        seq: u64,
        store_seq: u64,
        dir: PathBuf,
        want: u32,
        found: u32,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One record of a session journal, decoded, with candle references resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub seq: u64,
    pub ts_ns: u64,
    pub kind: u16,
    pub decoded: Decoded,
}

struct Series {
    dir: PathBuf,
    interval: Interval,
    symbol: keel_engine::Symbol,
    /// Positioned after the last record read from this series.
    reader: Option<Reader>,
}

/// Reads a session journal record by record; see the module docs.
pub struct RunReader {
    reader: Reader,
    dir: PathBuf,
    store_override: Option<PathBuf>,
    series: Option<Vec<Series>>,
    /// The store the bars are read from, once the journal named one.
    store: Option<PathBuf>,
}

impl RunReader {
    /// Opens the journal in `dir`. Referenced bars are read from `store` when given, else from
    /// the store the journal's `candle_source` names.
    pub fn open(dir: &Path, store: Option<&Path>) -> Result<RunReader, ResolveError> {
        Ok(RunReader {
            reader: Reader::open(dir)?,
            dir: dir.to_path_buf(),
            store_override: store.map(Path::to_path_buf),
            series: None,
            store: None,
        })
    }

    /// [`RunReader::open`], returning records from `start_seq` on (a recovery's tail after
    /// its snapshot). The store is named with the run's first candle reference, so that
    /// record is read first when it comes earlier.
    pub fn open_from(
        dir: &Path,
        store: Option<&Path>,
        start_seq: u64,
    ) -> Result<RunReader, ResolveError> {
        let mut run = RunReader::open(dir, store)?;
        if start_seq <= 1 {
            return Ok(run);
        }
        let mut head = Reader::open(dir)?;
        while let Some(rec) = head.next()? {
            if rec.seq >= start_seq {
                break;
            }
            let first = RecordKind::FirstCandleRef as u16;
            if rec.kind == first {
                let decoded =
                    decode(rec.seq, rec.kind, rec.ver, rec.payload).map_err(|source| {
                        ResolveError::Decode {
                            dir: dir.to_path_buf(),
                            source,
                        }
                    })?;
                if let Decoded::FirstCandleRef { source, .. } = decoded {
                    run.open_source(&source)?;
                }
                break;
            }
            if rec.kind == RecordKind::Candle as u16 || rec.kind == RecordKind::CandleRef as u16 {
                break; // the run's first candle is not a reference: nothing to open
            }
        }
        run.reader = Reader::from_seq(dir, start_seq)?;
        Ok(run)
    }

    pub fn next_record(&mut self) -> Result<Option<RunRecord>, ResolveError> {
        let Some(rec) = self.reader.next()? else {
            return Ok(None);
        };
        let (seq, ts_ns, kind) = (rec.seq, rec.ts_ns, rec.kind);
        let decoded =
            decode(seq, rec.kind, rec.ver, rec.payload).map_err(|source| ResolveError::Decode {
                dir: self.dir.clone(),
                source,
            })?;
        let decoded = match decoded {
            Decoded::CandleRef(r) => Decoded::Input(Event::Candle(self.fetch(seq, r)?)),
            Decoded::FirstCandleRef { at, source } => {
                self.open_source(&source)?;
                Decoded::Input(Event::Candle(self.fetch(seq, at)?))
            }
            d => d,
        };
        Ok(Some(RunRecord {
            seq,
            ts_ns,
            kind,
            decoded,
        }))
    }

    fn open_source(&mut self, source: &CandleSource) -> Result<(), ResolveError> {
        let store = self
            .store_override
            .clone()
            .unwrap_or_else(|| PathBuf::from(&source.store));
        let mut series = Vec::with_capacity(source.series.len());
        for s in &source.series {
            let interval = Interval { ns: s.interval_ns };
            let dir = store::series_dir(&store, s.symbol, interval);
            if !dir.is_dir() {
                return Err(ResolveError::StoreMissing {
                    run: self.dir.clone(),
                    store,
                    dir,
                    symbol: s.symbol.to_string(),
                    interval: interval.name(),
                });
            }
            series.push(Series {
                dir,
                interval,
                symbol: s.symbol,
                reader: None,
            });
        }
        self.series = Some(series);
        self.store = Some(store);
        Ok(())
    }

    /// The candle store the journal's bars were read from so far, if it refers to one.
    pub fn store(&self) -> Option<&Path> {
        self.store.as_deref()
    }

    /// The stored bar `r` names, checked against the reference.
    fn fetch(&mut self, seq: u64, r: CandleRef) -> Result<Candle, ResolveError> {
        let run = &self.dir;
        let series = self.series.as_mut().ok_or_else(|| ResolveError::NoSource {
            run: run.clone(),
            seq,
        })?;
        let count = series.len();
        let s = series
            .get_mut(r.series as usize)
            .ok_or_else(|| ResolveError::NoSeries {
                run: run.clone(),
                seq,
                series: r.series,
                count,
            })?;
        let missing = |s: &Series| ResolveError::StoreRecordMissing {
            run: run.clone(),
            seq,
            store_seq: r.store_seq,
            dir: s.dir.clone(),
        };
        // References into one series only go forward, almost always to the next record; a
        // reader opened at the referenced record serves the rest in order.
        let mut fresh = false;
        loop {
            let reader = match &mut s.reader {
                Some(reader) => reader,
                None => {
                    fresh = true;
                    s.reader.insert(Reader::open_with_storage(
                        keel_journal::FsStorage::shared(),
                        &s.dir,
                        r.store_seq,
                    )?)
                }
            };
            let Some(rec) = reader.next()? else {
                return Err(missing(s));
            };
            if rec.seq < r.store_seq {
                continue;
            }
            if rec.seq > r.store_seq {
                if fresh {
                    return Err(missing(s));
                }
                // Behind the reader (a reference that goes back): read from it again.
                s.reader = None;
                continue;
            }
            let changed = || ResolveError::StoreChanged {
                run: run.clone(),
                seq,
                store_seq: r.store_seq,
                dir: s.dir.clone(),
                want: r.store_crc,
                found: rec.crc,
            };
            if rec.crc != r.store_crc {
                return Err(changed());
            }
            let candle = store::stored_candle(&s.dir, &rec)?;
            if candle.symbol != s.symbol || candle.interval_ns != s.interval.ns {
                // A CRC match makes this unreachable short of a forged store; say so anyway.
                return Err(changed());
            }
            return Ok(candle);
        }
    }
}
