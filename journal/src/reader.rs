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

use crate::crc::{Hw, Kernel, Sw};
use crate::error::JournalError;
use crate::format::{
    BadFrame, FRAME_HEADER_LEN, SEGMENT_HEADER_LEN, SegView, SegmentHeader, Walk, segment_file_name,
};
use crate::scan::list_segments;
use crate::storage::{FsStorage, MapRo, Storage};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One record, borrowed from the mapping. `payload` is 8-byte aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub seq: u64,
    /// The record's stored CRC32C, the hash chain's value after it: it identifies the record's
    /// contents and every record before it (another journal can refer to it by seq and CRC).
    pub crc: u32,
    pub ts_ns: u64,
    pub kind: u16,
    pub ver: u16,
    pub payload: &'a [u8],
}

/// Bytes of frames validated per batch (small enough to stay in L1/L2 until they are read).
const BATCH: usize = 16 << 10;
/// Most frames validated per batch: a batch stops early rather than overflow its offsets list
/// (frames are at least 32 bytes; four more may be added after the check).
const MAX_BATCH_FRAMES: usize = 512;
/// How far ahead of the frame being validated cache lines are prefetched. The offset of each
/// frame comes from a load of the previous one, so without this the loop waits for memory
/// (8 KiB measured best for sequential replay from DRAM; 1 KiB was too close).
pub(crate) const PREFETCH_AHEAD: usize = 8192;

/// Little-endian u64 at byte `at` of a frame.
///
/// # Safety
/// `p + at` is 8-aligned and readable.
#[inline(always)]
unsafe fn frame_field(p: *const u8, at: usize) -> u64 {
    // SAFETY: caller's contract.
    u64::from_le(unsafe { (p.add(at) as *const u64).read() })
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
    /// Copy of `seg.view` (an empty view while there is no segment), so the hot path of
    /// [`Reader::next`] needs no `Option` check: an empty view reads as "no record here".
    view: SegView,
    /// Offsets of the frames of the current batch, validated by [`Reader::validate_ahead`];
    /// `offs[pos..count]` are still to be returned. Handing records out from this list, rather
    /// than stepping from each frame to the next by its length, keeps the reading of one
    /// frame's header from waiting on the load of the previous one's.
    offs: Box<[usize; MAX_BATCH_FRAMES]>,
    pos: usize,
    count: usize,
    /// Frames before `valid_to` in the current segment are published and fully validated (see
    /// [`Reader::validate_ahead`]); `next_seq` and `prev_crc` describe `valid_to`, where the
    /// next batch starts once `offs` is used up.
    valid_to: usize,
    /// Seq the frame at `valid_to` must carry.
    next_seq: u64,
    /// Stored CRC of the record before `valid_to` (or the segment header's `prev_chain`).
    prev_crc: u32,
    /// Records below this seq are validated but not returned.
    start_seq: u64,
    hw: Option<Hw>,
}

// SAFETY: the raw view points into `map`, owned by the reader.
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
            view: SegView::empty(),
            offs: Box::new([0; MAX_BATCH_FRAMES]),
            pos: 0,
            count: 0,
            valid_to: SEGMENT_HEADER_LEN,
            next_seq: 0,
            prev_crc: 0,
            start_seq,
            hw: Hw::detect(),
        };
        r.locate_first()?;
        Ok(r)
    }

    /// Seq of the next record this reader will return (once it exists).
    pub fn next_seq(&self) -> u64 {
        let next = if self.pos < self.count {
            // SAFETY: a validated frame lies at each offset of `offs[..count]`.
            unsafe { frame_field(self.view.ptr(self.offs[self.pos]), 8) }
        } else {
            self.next_seq
        };
        next.max(self.start_seq)
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
        self.pos = 0;
        self.count = 0;
        self.valid_to = SEGMENT_HEADER_LEN;
        self.view = open.view;
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
            .map_err(|p| p.into_error(&path))?;
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
        self.view = open.view;
        self.seg = Some(open);
        self.pos = 0;
        self.count = 0;
        self.valid_to = SEGMENT_HEADER_LEN;
        Ok(true)
    }

    /// The next complete record, or `None` if none is available now (call again later to
    /// follow the tail). Errors on any invalid record instead of returning bad data.
    ///
    /// Records are validated in batches ahead of the read position (every check, on every
    /// record, before any of them is returned; see [`Reader::validate_ahead`]); this only decodes
    /// the already-validated frame at the read position.
    #[allow(clippy::should_implement_trait)] // lending iterator: records borrow the reader
    #[inline]
    pub fn next(&mut self) -> Result<Option<Record<'_>>, JournalError> {
        loop {
            if self.pos < self.count {
                // SAFETY: `count <= MAX_BATCH_FRAMES` (validate_ahead).
                let off = unsafe { *self.offs.get_unchecked(self.pos) };
                self.pos += 1;
                let p = self.view.ptr(off);
                // SAFETY: validate_ahead() proved that a whole frame (length >= 32, padding
                // included) lies in the mapping at `off` and is published; its bytes never
                // change, and the mapping lives in `self.seg` until the next `&mut self` call,
                // which the returned lifetime forbids meanwhile. `p` is 8-aligned.
                let (word, seq, ts_ns, kw) = unsafe {
                    (
                        u64::from_le((p as *const u64).read()),
                        frame_field(p, 8),
                        frame_field(p, 16),
                        frame_field(p, 24),
                    )
                };
                if seq < self.start_seq {
                    continue;
                }
                let (len, crc) = (word >> 32, word as u32);
                // SAFETY: as above; the payload is `[32, len)` of the frame.
                let payload = unsafe {
                    std::slice::from_raw_parts(
                        p.add(FRAME_HEADER_LEN),
                        len as usize - FRAME_HEADER_LEN,
                    )
                };
                return Ok(Some(Record {
                    seq,
                    crc,
                    ts_ns,
                    kind: kw as u16,
                    ver: (kw >> 16) as u16,
                    payload,
                }));
            }
            if !self.validate_ahead()? {
                return Ok(None);
            }
        }
    }

    /// Validates the published frames from `valid_to` (== `off`) on, up to `BATCH` bytes of
    /// them, with every check of [`SegView::check_frame`] (length bounds, body CRC, chain on the
    /// previous record's stored CRC, seq, reserved and padding zero), and moves `valid_to` past
    /// them. A tight loop with no per-record state kept beyond (offset, seq, chain value), so the
    /// CPU overlaps the CRCs of consecutive records. True if there is something new to look at
    /// (records, or another segment), false if nothing is available now. A bad frame is an error
    /// once every record before it has been returned; it is checked again then (the batch that
    /// found it only stops in front of it).
    #[inline(never)]
    fn validate_ahead(&mut self) -> Result<bool, JournalError> {
        debug_assert_eq!(self.pos, self.count);
        self.pos = 0;
        self.count = 0;
        let bad = match self.hw {
            #[cfg(target_arch = "x86_64")]
            Some(h) => self.validate_batch(h, |v: &SegView, w: &mut Walk| v.check_four(h, w)),
            #[cfg(not(target_arch = "x86_64"))]
            Some(h) => self.validate_batch(h, |_: &SegView, _: &mut Walk| false),
            None => self.validate_batch(Sw, |_: &SegView, _: &mut Walk| false),
        };
        if self.count > 0 {
            return Ok(true);
        }
        if let Some(b) = bad {
            return Err(self.bad_frame(self.valid_to, b));
        }
        self.after_zero_word()
    }

    /// The loop of [`Reader::validate_ahead`]: advances `valid_to`, `prev_crc` and `next_seq`
    /// over valid frames, recording their offsets; stops at a zero word, after `BATCH` bytes,
    /// or in front of a bad frame (returned). `four` takes four frames at once when it can
    /// (all or nothing, see [`SegView::check_four`]); otherwise frames are taken one by one
    /// with [`SegView::check_frame`], which also finds and describes a bad frame.
    #[inline(always)]
    fn validate_batch<K: Kernel>(
        &mut self,
        k: K,
        four: impl Fn(&SegView, &mut Walk) -> bool,
    ) -> Option<BadFrame> {
        let view = self.view;
        let mut w = Walk {
            off: self.valid_to,
            crc: self.prev_crc,
            seq: self.next_seq,
        };
        let limit = w.off.saturating_add(BATCH);
        // Next cache line to prefetch, each once: the frames' offsets come from loads of the
        // previous frames, so the hardware prefetcher alone lags behind.
        let mut pf = (w.off + PREFETCH_AHEAD - 1024) & !63;
        let mut bad = None;
        let mut n = 0;
        while w.off < limit && n <= MAX_BATCH_FRAMES - 4 {
            while pf < w.off + PREFETCH_AHEAD {
                view.prefetch_line(pf);
                pf += 64;
            }
            let at = w.off;
            if four(&view, &mut w) {
                let flen = (w.off - at) / 4;
                let o = &mut self.offs[n..n + 4];
                o.copy_from_slice(&[at, at + flen, at + 2 * flen, at + 3 * flen]);
                n += 4;
                continue;
            }
            // 0 past the end of the segment, and always 0 for the empty view.
            let word = view.word(w.off);
            if word == 0 {
                break;
            }
            match view.check_frame(w.off, word, w.crc, w.seq, k) {
                Ok(meta) => {
                    self.offs[n] = w.off;
                    n += 1;
                    w.crc = meta.crc;
                    w.seq += 1;
                    w.off += meta.frame_len();
                }
                Err(b) => {
                    bad = Some(b);
                    break;
                }
            }
        }
        self.count = n;
        self.valid_to = w.off;
        self.prev_crc = w.crc;
        self.next_seq = w.seq;
        bad
    }

    #[cold]
    #[inline(never)]
    fn bad_frame(&self, off: usize, bad: BadFrame) -> JournalError {
        let path = self
            .seg
            .as_ref()
            .map_or(self.dir.as_path(), |s| s.path.as_path());
        JournalError::corrupt(path, off as u64, bad.reason())
    }

    /// There is no record at `self.valid_to` (or no segment yet). True if the reader moved and
    /// should look again, false if nothing is available now.
    #[cold]
    #[inline(never)]
    fn after_zero_word(&mut self) -> Result<bool, JournalError> {
        let Some(seg) = &self.seg else {
            return self.locate_first();
        };
        if seg.base_seq == self.next_seq {
            // An empty segment is the newest one: nothing to move on to.
            return Ok(false);
        }
        // Before trusting "the writer moved on", re-load the word: the writer publishes
        // everything in a segment before it creates the next one.
        let exists = self
            .storage
            .exists(&self.dir.join(segment_file_name(self.next_seq)));
        if !exists {
            return Ok(false);
        }
        if self.view.word(self.valid_to) != 0 {
            return Ok(true);
        }
        self.advance_segment()
    }
}
