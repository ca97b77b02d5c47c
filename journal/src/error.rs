//! Typed errors of the journal. Every error that concerns a file names it, and a corruption error
//! names the byte offset and what the operator should do; records are never skipped silently.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// An I/O call failed; `path` is the file or directory it was about.
    #[error("journal I/O error on {}: {op}: {source}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// The bytes on disk are not a valid journal at this position.
    #[error(
        "journal corrupt in {} at byte offset {offset}: {reason}. Run `keel journal verify {}` to \
         see the damage and restore the journal directory from a backup; keel never skips records \
         automatically",
        segment.display(),
        segment.parent().map(|p| p.display().to_string()).unwrap_or_default()
    )]
    Corrupt {
        segment: PathBuf,
        offset: u64,
        reason: String,
    },
    /// An intact segment of another on-disk format version.
    #[error(
        "{} was written in journal format {found}, and this keel reads format {supported}: \
         it is not damaged; open it with the keel version that wrote it",
        segment.display()
    )]
    UnsupportedFormat {
        segment: PathBuf,
        found: u16,
        supported: u16,
    },
    /// Another process (or another `Journal` in this one) holds the writer lock.
    #[error(
        "journal directory {} is already open for writing by another writer (lock file {}/LOCK): \
         only one writer is allowed; stop the other process first",
        dir.display(),
        dir.display()
    )]
    Locked { dir: PathBuf },
    /// The record cannot fit in an empty segment; nothing was written.
    #[error("record of {frame_len} bytes exceeds the segment capacity of {capacity} bytes")]
    RecordTooLarge { frame_len: u64, capacity: u64 },
    /// A sync failed earlier. The data may or may not be durable, so the journal refuses any
    /// further work (retrying an fsync after failure can report success for lost data).
    #[error(
        "journal is poisoned after a failed sync ({reason}); stop the process and let recovery \
         run on restart"
    )]
    Poisoned { reason: String },
    /// The options are unusable.
    #[error("invalid journal options: {0}")]
    InvalidOptions(String),
    /// A snapshot file could not be written.
    #[error("snapshot {}: {reason}", path.display())]
    Snapshot { path: PathBuf, reason: String },
}

impl JournalError {
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> Self {
        JournalError::Io {
            path: path.into(),
            op,
            source,
        }
    }

    pub(crate) fn corrupt(
        segment: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        JournalError::Corrupt {
            segment: segment.into(),
            offset,
            reason: reason.into(),
        }
    }
}
