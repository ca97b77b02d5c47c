//! Recovery on open: scan every segment (see `scan`), refuse corruption, truncate a torn tail of
//! the last segment (zero the bytes, sync) and report what was found, so the writer continues
//! right after the last valid record.
//!
//! A *torn tail* is, in the last segment only: unpublished bytes after the last record (a write
//! interrupted by `kill -9`), or a bad frame followed only by zeros (a power loss that persisted
//! part of a record). A complete record with a bad CRC followed only by zeros is indistinguishable
//! from the latter and is treated the same way: truncated and reported, never silently. A bad
//! frame followed by more data, or any bad frame in an earlier segment, is corruption.

use crate::error::JournalError;
use crate::scan::{DirScan, Problem, scan_dir};
use crate::storage::Storage;
use std::path::{Path, PathBuf};

/// Bytes discarded from the end of the journal by recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub segment: PathBuf,
    /// Offset of the first discarded byte (where the next record will go).
    pub offset: u64,
    pub bytes_discarded: u64,
    /// Why the bytes there did not form a valid record.
    pub reason: String,
}

/// What recovery found when the writer opened the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub segments: usize,
    pub records: u64,
    /// 0 when the journal is empty.
    pub last_seq: u64,
    /// 0 when the journal is empty.
    pub last_ts_ns: u64,
    /// Schema version stored in the last existing segment (`None` for a new journal).
    pub schema_version: Option<u16>,
    pub truncated: Option<TornTail>,
}

/// Recovery result plus what the writer needs to continue.
pub(crate) struct Recovered {
    pub recovery: Recovery,
    pub scan: DirScan,
}

/// Scans `dir`, removes leftover temporary segments, truncates a torn tail. The caller holds the
/// writer lock.
pub(crate) fn recover(storage: &dyn Storage, dir: &Path) -> Result<Recovered, JournalError> {
    let mut scan = scan_dir(storage, dir)?;
    for tmp in std::mem::take(&mut scan.tmps) {
        // A crash during segment creation leaves a temp file nobody ever read.
        storage
            .remove(&tmp)
            .map_err(|e| JournalError::io(&tmp, "remove leftover temporary segment", e))?;
    }
    let truncated = match scan.problem.take() {
        None => None,
        Some(Problem::Corrupt(e)) => return Err(e),
        Some(Problem::Torn {
            segment,
            offset,
            dirty_end,
            reason,
        }) => {
            let map = storage
                .open_rw(&segment)
                .map_err(|e| JournalError::io(&segment, "map segment for truncation", e))?;
            let end = dirty_end.min(map.len());
            let start = offset.min(end);
            // SAFETY: range clamped to the mapping; we hold the writer lock, so nobody else
            // writes, and readers only look at published words (these bytes are not published
            // or are invalid, and readers refuse invalid frames).
            unsafe { std::ptr::write_bytes(map.as_mut_ptr().add(start), 0, end - start) };
            map.flush(start, end - start)
                .map_err(|e| JournalError::io(&segment, "sync truncated tail", e))?;
            Some(TornTail {
                segment,
                offset: start as u64,
                bytes_discarded: (end - start) as u64,
                reason,
            })
        }
    };
    let recovery = Recovery {
        segments: scan.segments.len(),
        records: scan.records,
        last_seq: scan.last_seq.unwrap_or(0),
        last_ts_ns: scan.last_ts_ns.unwrap_or(0),
        schema_version: scan.segments.last().map(|s| s.schema_version),
        truncated,
    };
    Ok(Recovered { recovery, scan })
}
