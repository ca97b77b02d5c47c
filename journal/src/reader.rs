//! Tail-following reader. Maps segments read-only, validates every record (frame, CRC chain,
//! seq contiguity) and hands out zero-copy payloads; it works while the writer appends from
//! another thread or process, and only ever returns complete records.
//!
//! Protocol: a record is visible once its first 8 bytes are non-zero (acquire load). On a zero
//! word at offset X the reader checks whether the segment named by the next seq exists; the
//! writer finishes (and syncs) a segment before creating the next one, so if that file exists the
//! word at X is re-loaded once and, still zero, the reader moves on. New segments appear by an
//! atomic rename after their header is written, so a reader never maps a half-made segment.
//!
//! A reader does not repair: a torn tail left by a crash is reported as [`JournalError::Corrupt`]
//! until the writer's recovery truncates it (open the [`crate::Journal`] first, or use
//! [`crate::verify`] to tell a torn tail from corruption).

use crate::error::JournalError;
use crate::format::{
    FRAME_HEADER_LEN, SEGMENT_HEADER_LEN, SegView, SegmentHeader, segment_file_name,
};
use crate::scan::list_segments;
use crate::storage::{FsStorage, MapRo, Storage};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One record, borrowed from the mapping. `payload` is 8-byte aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub seq: u64,
    pub ts_ns: u64,
    pub kind: u16,
    pub ver: u16,
    pub payload: &'a [u8],
}

struct OpenSeg {
    // Keeps the mapping behind `view` alive.
    _map: Arc<dyn MapRo>,
    view: SegView,
    path: PathBuf,
    base_seq: u64,
}

/// Reads records in order, following the tail. See the module docs.
pub struct Reader {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    seg: Option<OpenSeg>,
    off: usize,
    /// Seq the next frame must carry.
    next_seq: u64,
    /// Chain value the next frame is seeded with.
    prev_crc: u32,
    /// Records below this seq are validated but not returned.
    start_seq: u64,
}

// SAFETY: the raw view points into `_map`, owned by the reader.
unsafe impl Send for Reader {}

impl Reader {
    /// Reader from the first record of the journal in `dir`.
    pub fn open(dir: &Path) -> Result<Reader, JournalError> {
        Reader::open_with_storage(FsStorage::shared(), dir, 0)
    }

    /// Reader that returns records with `seq >= start_seq`, skipping whole segments by file name
    /// and validating (but not returning) earlier records of the first segment it maps. If the
    /// journal's first segment starts after `start_seq`, reading starts there.
    pub fn from_seq(dir: &Path, start_seq: u64) -> Result<Reader, JournalError> {
        Reader::open_with_storage(FsStorage::shared(), dir, start_seq)
    }

    /// Reader on any storage, returning records with `seq >= start_seq` (0 or 1 = all).
    pub fn open_with_storage(
        storage: Arc<dyn Storage>,
        dir: &Path,
        start_seq: u64,
    ) -> Result<Reader, JournalError> {
        let mut r = Reader {
            storage,
            dir: dir.to_path_buf(),
            seg: None,
            off: SEGMENT_HEADER_LEN,
            next_seq: 0,
            prev_crc: 0,
            start_seq,
        };
        r.locate_first()?;
        Ok(r)
    }

    /// Seq of the next record this reader will return (once it exists).
    pub fn next_seq(&self) -> u64 {
        self.next_seq.max(self.start_seq)
    }

    /// Maps the segment holding `start_seq` (or the first one). False if there is none yet.
    fn locate_first(&mut self) -> Result<bool, JournalError> {
        let (segs, _) = list_segments(self.storage.as_ref(), &self.dir)?;
        let Some(first) = segs.first() else {
            return Ok(false);
        };
        let seg = segs
            .iter()
            .rev()
            .find(|s| s.base_seq <= self.start_seq)
            .unwrap_or(first);
        let (open, header) = self.map_segment(seg.path.clone(), seg.base_seq)?;
        self.prev_crc = header.prev_chain;
        self.next_seq = header.base_seq;
        self.off = SEGMENT_HEADER_LEN;
        self.seg = Some(open);
        Ok(true)
    }

    fn map_segment(
        &self,
        path: PathBuf,
        base_seq: u64,
    ) -> Result<(OpenSeg, SegmentHeader), JournalError> {
        let map = self
            .storage
            .open_ro(&path)
            .map_err(|e| JournalError::io(&path, "map segment read-only", e))?;
        // SAFETY: the view is stored next to the mapping that keeps it valid.
        let view = unsafe { SegView::new(map.as_ptr(), map.len()) };
        let header = SegmentHeader::decode(view.bytes(0, SEGMENT_HEADER_LEN))
            .map_err(|r| JournalError::corrupt(&path, 0, r))?;
        if header.base_seq != base_seq {
            return Err(JournalError::corrupt(
                &path,
                16,
                format!(
                    "header says base seq {} but the file name says {base_seq}",
                    header.base_seq
                ),
            ));
        }
        Ok((
            OpenSeg {
                _map: map,
                view,
                path,
                base_seq,
            },
            header,
        ))
    }

    /// Moves to the segment named by `next_seq` if it exists. False if it does not (yet).
    #[cold]
    fn advance_segment(&mut self) -> Result<bool, JournalError> {
        let path = self.dir.join(segment_file_name(self.next_seq));
        if !self.storage.exists(&path) {
            return Ok(false);
        }
        let (open, header) = self.map_segment(path, self.next_seq)?;
        if header.prev_chain != self.prev_crc {
            return Err(JournalError::corrupt(
                &open.path,
                24,
                format!(
                    "chain break: header prev_chain {:#010x} does not match the last record of \
                     the previous segment ({:#010x})",
                    header.prev_chain, self.prev_crc
                ),
            ));
        }
        self.seg = Some(open);
        self.off = SEGMENT_HEADER_LEN;
        Ok(true)
    }

    /// The next complete record, or `None` if none is available now (call again later to
    /// follow the tail). Errors on any invalid record instead of returning bad data.
    #[allow(clippy::should_implement_trait)] // lending iterator: records borrow the reader
    pub fn next(&mut self) -> Result<Option<Record<'_>>, JournalError> {
        loop {
            let Some(seg) = &self.seg else {
                if self.locate_first()? {
                    continue;
                }
                return Ok(None);
            };
            let view = seg.view;
            let off = self.off;
            let word = view.word(off);
            if word == 0 {
                if seg.base_seq == self.next_seq {
                    // An empty segment is the newest one: nothing to move on to.
                    return Ok(None);
                }
                // Before trusting "the writer moved on", re-load the word: the writer publishes
                // everything in a segment before it creates the next one.
                let exists = self
                    .storage
                    .exists(&self.dir.join(segment_file_name(self.next_seq)));
                if !exists || view.word(off) != 0 {
                    if !exists {
                        return Ok(None);
                    }
                    continue;
                }
                if !self.advance_segment()? {
                    return Ok(None);
                }
                continue;
            }
            let meta = match view.check_frame(off, word, self.prev_crc, self.next_seq) {
                Ok(m) => m,
                Err(reason) => return Err(JournalError::corrupt(&seg.path, off as u64, reason)),
            };
            self.off = off + meta.frame_len();
            self.prev_crc = meta.crc;
            self.next_seq = meta.seq + 1;
            if meta.seq < self.start_seq {
                continue;
            }
            let n = meta.len as usize - FRAME_HEADER_LEN;
            let payload = view.bytes(off + FRAME_HEADER_LEN, n);
            // SAFETY: the bytes are published and never change; the mapping lives in `self.seg`
            // until the next `&mut self` call, which the returned lifetime forbids meanwhile.
            let payload = unsafe { std::slice::from_raw_parts(payload.as_ptr(), n) };
            return Ok(Some(Record {
                seq: meta.seq,
                ts_ns: meta.ts_ns,
                kind: meta.kind,
                ver: meta.ver,
                payload,
            }));
        }
    }
}
