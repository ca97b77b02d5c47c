//! keel-journal: an append-only, memory-mapped log of records.
//!
//! The journal knows bytes, not trading. One writer ([`Journal`]) appends framed, checksummed,
//! hash-chained records to pre-allocated segment files; any number of readers ([`Reader`]) follow
//! the tail from other threads or processes and only ever see complete records. Recovery on open
//! truncates a torn tail and refuses anything that looks like corruption.
//!
//! # On-disk format (format_version 2, all integers little-endian)
//!
//! A journal is a directory:
//!
//! ```text
//! LOCK                          flock(2)-ed by the single writer
//! 00000000000000000001.seg      segment files, named by the seq of their first record
//! 00000000000000004711.seg
//! snapshots/00000000000000004000.snap
//! ```
//!
//! Segments are pre-allocated to `Options::segment_size` (default 64 MiB) with
//! `posix_fallocate`, zero-filled and memory-mapped. A new segment is created under a temporary
//! name (`*.seg.tmp`), its header written and synced, then renamed into place and the directory
//! synced, so a tail reader never sees a half-made segment.
//!
//! Segment header, 64 bytes:
//!
//! ```text
//! 0   magic          b"KEELJNL\0"
//! 8   format_version u16 = 2
//! 10  schema_version u16   (chosen by the caller, stored and reported, never interpreted)
//! 12  reserved       u32 = 0
//! 16  base_seq       u64   (must equal the number in the file name)
//! 24  prev_chain     u32   (crc of the last record before this segment, 0 for the first)
//! 28  reserved       [u8; 32] = 0
//! 60  header_crc     u32   CRC32C of bytes [0..60)
//! ```
//!
//! Records follow at 8-byte aligned offsets starting at 64. Each frame is a 32-byte header, the
//! payload, and zero padding up to a multiple of 8:
//!
//! ```text
//! 0   crc      u32   chained CRC32C, see below
//! 4   len      u32   32 + payload length (unpadded); 0 means "no record here (end)"
//! 8   seq      u64   1, 2, 3, ... contiguous across segments
//! 16  ts_ns    u64
//! 24  kind     u16
//! 26  ver      u16
//! 28  reserved u32 = 0
//! 32  payload  (8-byte aligned, so rkyv archives can be accessed in place)
//! ```
//!
//! The `crc` field chains the records together, in two steps (CRC32C = Castagnoli, as computed
//! by `crc32c::crc32c_append`):
//!
//! ```text
//! body(n)   = crc32c_append(0, len_le ++ frame[8..len))    this record alone (unseeded)
//! crc(n)    = crc32c_append(crc(n-1), body(n)_le)           one 4-byte CRC step
//! ```
//!
//! where `crc(n-1)` is the stored `crc` of the previous record, the segment header's
//! `prev_chain` for the first record of a segment, and 0 for the first record of the journal.
//! A reader validates record n by computing `body(n)` and checking `crc(n)` against
//! `crc32c_append(crc(n-1), body(n)_le)` with `crc(n-1)` *as read from* the previous frame, so no
//! computed value depends on the computation for another record: consecutive records are
//! checked in parallel by the CPU (and the writer's CRCs overlap likewise), which is what lets
//! validation run at memory speed. Seeding each record's CRC with the previous one instead would
//! make the whole log one serial chain of 3-cycle `crc32` instructions.
//!
//! The chain still makes reordering, splicing, dropping and editing records detectable (together
//! with the contiguous `seq`): changing any byte of record n changes `body(n)`, hence `crc(n)`,
//! and a consistent edit must recompute the stored `crc` of every later record (and the
//! `prev_chain` of every later segment). It is **not** cryptographic: anyone can recompute it
//! after a deliberate edit; it detects accidents (torn writes, bit rot, misplaced files), not
//! tampering.
//!
//! # Publication and crash safety
//!
//! The writer writes bytes `[8..frame_end)` first, then publishes the record with one atomic
//! `Release` store of the first 8 bytes (`crc | len << 32`). Readers `Acquire`-load those 8 bytes;
//! zero means "not (yet) written". After a process crash (`kill -9`) every record with non-zero
//! first 8 bytes is therefore complete. After a power loss the kernel may have written back only
//! some pages; recovery treats a bad frame followed only by zeros as a torn tail (truncated and
//! reported in [`Recovery`]), and a bad frame followed by anything else as corruption
//! ([`JournalError::Corrupt`]), which is never skipped automatically.
//!
//! Modules: [`format`] (byte layout), [`storage`] (file system seam, with in-memory and
//! fault-injecting implementations), [`writer`], [`reader`], [`recovery`], [`verify`],
//! [`snapshot`].

mod crc;
pub mod error;
pub mod format;
pub mod reader;
pub mod recovery;
mod scan;
pub mod snapshot;
pub mod storage;
pub mod verify;
pub mod writer;

pub use error::JournalError;
pub use reader::{Reader, Record};
pub use recovery::{Recovery, TornTail};
pub use snapshot::{Snapshot, SnapshotLoad, load_newest_valid, prune_snapshots, write_snapshot};
pub use storage::{FaultyStorage, FsStorage, MemStorage, Storage};
pub use verify::{
    InspectReport, Integrity, SegmentInfo, VerifyReport, inspect, inspect_with_storage, verify,
    verify_with_storage,
};
pub use writer::{Durability, Journal, Options};
