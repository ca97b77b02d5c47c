//! Read-only checks behind `keel journal verify DIR` and `keel journal inspect DIR`. Neither
//! modifies the journal. `verify` fails on corruption (with segment and offset) and reports a torn
//! tail, which the next writer open would truncate. `inspect` never fails on bad contents: it
//! returns what it could read plus an [`Integrity`] verdict. Both read the journal as it is at the
//! time of the call; run them on a journal no writer is appending to for a stable answer.

use crate::error::JournalError;
use crate::recovery::TornTail;
pub use crate::scan::SegmentInfo;
use crate::scan::{DirScan, Problem, scan_dir};
use crate::storage::{FsStorage, Storage};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Result of a successful [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub segments: usize,
    pub records: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub last_ts_ns: Option<u64>,
    /// A torn tail the next writer open will truncate.
    pub torn_tail: Option<TornTail>,
}

/// Integrity verdict of [`inspect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Integrity {
    Ok,
    TornTail(TornTail),
    Corrupt {
        segment: PathBuf,
        offset: u64,
        reason: String,
    },
}

/// What [`inspect`] could read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InspectReport {
    pub segments: Vec<SegmentInfo>,
    pub kinds: BTreeMap<u16, u64>,
    pub records: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub first_ts_ns: Option<u64>,
    pub last_ts_ns: Option<u64>,
    pub integrity: Integrity,
}

fn torn(segment: PathBuf, offset: usize, dirty_end: usize, reason: String) -> TornTail {
    TornTail {
        segment,
        offset: offset as u64,
        bytes_discarded: dirty_end.saturating_sub(offset) as u64,
        reason,
    }
}

/// Full read-only check of the journal in `dir` on the real file system.
pub fn verify(dir: &Path) -> Result<VerifyReport, JournalError> {
    verify_with_storage(&FsStorage, dir)
}

/// [`verify`] on any storage.
pub fn verify_with_storage(
    storage: &dyn Storage,
    dir: &Path,
) -> Result<VerifyReport, JournalError> {
    let scan = scan_dir(storage, dir)?;
    let torn_tail = match scan.problem {
        None => None,
        Some(Problem::Corrupt(e)) => return Err(e),
        Some(Problem::Torn {
            segment,
            offset,
            dirty_end,
            reason,
        }) => Some(torn(segment, offset, dirty_end, reason)),
    };
    Ok(VerifyReport {
        segments: scan.segments.len(),
        records: scan.records,
        first_seq: scan.first_seq,
        last_seq: scan.last_seq,
        last_ts_ns: scan.last_ts_ns,
        torn_tail,
    })
}

/// Per-segment and per-kind summary of the journal in `dir`. Fails only on I/O errors.
pub fn inspect(dir: &Path) -> Result<InspectReport, JournalError> {
    inspect_with_storage(&FsStorage, dir)
}

/// [`inspect`] on any storage.
pub fn inspect_with_storage(
    storage: &dyn Storage,
    dir: &Path,
) -> Result<InspectReport, JournalError> {
    let DirScan {
        segments,
        kinds,
        records,
        first_seq,
        last_seq,
        first_ts_ns,
        last_ts_ns,
        problem,
        ..
    } = scan_dir(storage, dir)?;
    let integrity = match problem {
        None => Integrity::Ok,
        Some(Problem::Torn {
            segment,
            offset,
            dirty_end,
            reason,
        }) => Integrity::TornTail(torn(segment, offset, dirty_end, reason)),
        Some(Problem::Corrupt(JournalError::Corrupt {
            segment,
            offset,
            reason,
        })) => Integrity::Corrupt {
            segment,
            offset,
            reason,
        },
        Some(Problem::Corrupt(other)) => return Err(other),
    };
    Ok(InspectReport {
        segments,
        kinds,
        records,
        first_seq,
        last_seq,
        first_ts_ns,
        last_ts_ns,
        integrity,
    })
}
