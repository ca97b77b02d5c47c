//! Byte layout of segments and record frames (see the crate docs for the table), plus the small
//! helpers every other module uses to read them: header encode/decode, frame validation, the
//! CRC chain rule and segment file names. Nothing here does I/O.

use crate::crc::{Hw, Kernel};
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a segment header was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderProblem {
    /// The bytes are not an intact header.
    Damaged(String),
    /// An intact header of another format version: written by another keel version, not
    /// damaged.
    Version(u16),
}

impl HeaderProblem {
    pub fn into_error(self, segment: &std::path::Path) -> crate::JournalError {
        match self {
            HeaderProblem::Damaged(reason) => crate::JournalError::corrupt(segment, 0, reason),
            HeaderProblem::Version(found) => crate::JournalError::UnsupportedFormat {
                segment: segment.to_path_buf(),
                found,
                supported: FORMAT_VERSION,
            },
        }
    }
}

impl From<String> for HeaderProblem {
    fn from(reason: String) -> Self {
        HeaderProblem::Damaged(reason)
    }
}

/// First 8 bytes of every segment.
pub const MAGIC: [u8; 8] = *b"KEELJNL\0";
/// Version of this byte layout. 2: the chain stores `mix(previous stored CRC, frame CRC)`
/// (version 1, never released, seeded each frame's CRC with the previous one).
pub const FORMAT_VERSION: u16 = 2;
/// Size of the segment header; the first record starts here.
pub const SEGMENT_HEADER_LEN: usize = 64;
/// Size of a record frame header; the payload starts here (8-byte aligned).
pub const FRAME_HEADER_LEN: usize = 32;
/// Alignment of frames and therefore of payloads.
pub const FRAME_ALIGN: usize = 8;
/// Extension of published segment files.
pub const SEGMENT_EXT: &str = ".seg";
/// Extension of segments being created (never read).
pub const TMP_EXT: &str = ".seg.tmp";

/// Decoded segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    pub schema_version: u16,
    pub base_seq: u64,
    pub prev_chain: u32,
}

impl SegmentHeader {
    /// Encodes the header, including its CRC.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut b = [0u8; SEGMENT_HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[10..12].copy_from_slice(&self.schema_version.to_le_bytes());
        b[16..24].copy_from_slice(&self.base_seq.to_le_bytes());
        b[24..28].copy_from_slice(&self.prev_chain.to_le_bytes());
        let crc = crc32c::crc32c(&b[..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks a header; the error says which check failed.
    pub fn decode(b: &[u8]) -> Result<SegmentHeader, HeaderProblem> {
        if b.len() < SEGMENT_HEADER_LEN {
            return Err(HeaderProblem::Damaged(format!(
                "segment is {} bytes, shorter than its {SEGMENT_HEADER_LEN}-byte header",
                b.len()
            )));
        }
        if b[0..8] != MAGIC {
            return Err(HeaderProblem::Damaged(format!(
                "bad magic {:02x?}, not a keel journal segment",
                &b[0..8]
            )));
        }
        let stored = le_u32(b, 60);
        let computed = crc32c::crc32c(&b[..60]);
        if stored != computed {
            return Err(HeaderProblem::Damaged(format!(
                "segment header CRC mismatch (stored {stored:#010x}, computed {computed:#010x})"
            )));
        }
        let format_version = le_u16(b, 8);
        if format_version != FORMAT_VERSION {
            return Err(HeaderProblem::Version(format_version));
        }
        Ok(SegmentHeader {
            schema_version: le_u16(b, 10),
            base_seq: le_u64(b, 16),
            prev_chain: le_u32(b, 24),
        })
    }
}

/// Metadata of one validated frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameMeta {
    pub crc: u32,
    /// 32 + payload length.
    pub len: u32,
    pub seq: u64,
    pub ts_ns: u64,
    pub kind: u16,
    pub ver: u16,
}

impl FrameMeta {
    /// Bytes the frame occupies including padding.
    #[inline]
    pub fn frame_len(&self) -> usize {
        round_up8(self.len as usize)
    }
}

#[inline]
pub const fn round_up8(n: usize) -> usize {
    (n + (FRAME_ALIGN - 1)) & !(FRAME_ALIGN - 1)
}

/// The publication word as it sits in memory: crc in bytes 0..4, len in bytes 4..8.
#[inline]
pub fn pack_word(crc: u32, len: u32) -> u64 {
    let c = crc.to_le_bytes();
    let l = len.to_le_bytes();
    u64::from_ne_bytes([c[0], c[1], c[2], c[3], l[0], l[1], l[2], l[3]])
}

/// Inverse of [`pack_word`]: `(crc, len)`.
#[inline]
pub fn unpack_word(word: u64) -> (u32, u32) {
    let b = word.to_ne_bytes();
    (
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
    )
}

/// Body CRC of a frame (CRC32C, seed 0): `len` LE bytes, then `rest` = frame bytes `[8..len)`.
/// Portable reference version; the hot paths use `crc` module kernels that compute the same.
pub fn frame_body_crc(len: u32, rest: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c_append(0, &len.to_le_bytes()), rest)
}

/// The stored CRC of a frame: `crc32c_append(prev, &body.to_le_bytes())`, where `prev` is the
/// stored CRC of the previous record and `body` is [`frame_body_crc`] of this one.
pub fn chain_crc(prev: u32, body: u32) -> u32 {
    crc32c::crc32c_append(prev, &body.to_le_bytes())
}

/// File name of the segment whose first record is `base_seq`.
pub fn segment_file_name(base_seq: u64) -> String {
    format!("{base_seq:020}{SEGMENT_EXT}")
}

/// Parses a segment file name; `None` if the name is not exactly `{20 digits}.seg`.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_EXT)?;
    if digits.len() != 20 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A read view of a mapped segment. Holds a raw pointer because the writer may be appending to
/// the same memory from another thread or process: only published bytes are turned into slices.
#[derive(Clone, Copy)]
pub(crate) struct SegView {
    base: *const u8,
    len: usize,
}

impl SegView {
    /// # Safety
    /// `base..base+len` must stay mapped and readable while the view is used, and `base` must be
    /// 8-byte aligned (mappings are page aligned).
    pub(crate) unsafe fn new(base: *const u8, len: usize) -> SegView {
        debug_assert!((base as usize).is_multiple_of(FRAME_ALIGN));
        SegView { base, len }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// An empty view (no segment): every word reads as 0.
    pub(crate) fn empty() -> SegView {
        SegView {
            base: std::ptr::NonNull::<u64>::dangling().as_ptr() as *const u8,
            len: 0,
        }
    }

    /// Acquire-loads the publication word at `off`; 0 past the end of the segment. `off` is
    /// always 8-aligned: frames start at 64 and advance by whole frames (multiples of 8).
    #[inline(always)]
    pub(crate) fn word(&self, off: usize) -> u64 {
        debug_assert!(off.is_multiple_of(FRAME_ALIGN));
        if off >= self.len || self.len - off < 8 {
            return 0;
        }
        // SAFETY: in bounds (checked above) and 8-aligned (base is page aligned, off is 8-aligned).
        unsafe { self.word_unchecked(off) }
    }

    /// [`SegView::word`] without the bounds check.
    ///
    /// # Safety
    /// `off` is 8-aligned and `off + 8 <= self.len()`.
    #[inline(always)]
    pub(crate) unsafe fn word_unchecked(&self, off: usize) -> u64 {
        debug_assert!(off.is_multiple_of(FRAME_ALIGN) && off + 8 <= self.len);
        // SAFETY: caller; the writer publishes this word with an atomic store, so it is loaded
        // atomically.
        unsafe { (*(self.base.add(off) as *const AtomicU64)).load(Ordering::Acquire) }
    }

    /// Bytes `[off..off+n)`. Callers only ask for published (immutable) ranges, or for ranges of a
    /// journal that no writer is appending to (recovery holds the lock).
    #[inline]
    pub(crate) fn bytes(&self, off: usize, n: usize) -> &[u8] {
        let end = off.saturating_add(n).min(self.len);
        let off = off.min(end);
        // SAFETY: clamped to the mapping.
        unsafe { std::slice::from_raw_parts(self.base.add(off), end - off) }
    }

    /// Hints the CPU to start loading the cache line `ahead` bytes past `off` (no effect on
    /// other architectures; a prefetch never faults, even past the mapping). Frame offsets form
    /// a chain of dependent loads (each frame's length gives the next offset), so loads that
    /// miss the cache would serialise; prefetching keeps them hitting.
    #[inline(always)]
    pub(crate) fn prefetch(&self, off: usize, ahead: usize) {
        // Two lines: a frame is often longer than one line, and lines skipped here would miss
        // the cache when their turn comes.
        let at = off.wrapping_add(ahead);
        self.prefetch_line(at);
        self.prefetch_line(at.wrapping_add(64));
    }

    /// Prefetches the cache line at `off` (past the end is harmless: no architectural effect).
    #[inline(always)]
    pub(crate) fn prefetch_line(&self, off: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            // SAFETY: SSE is part of the x86-64 baseline; prefetch has no architectural effect.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(self.base.wrapping_add(off) as *const i8) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = off;
    }

    /// Pointer to byte `off` of the mapping, for payload slices of frames `check_frame` accepted.
    #[inline(always)]
    pub(crate) fn ptr(&self, off: usize) -> *const u8 {
        self.base.wrapping_add(off)
    }

    /// Validates the frame at `off` whose publication word `word` (non-zero) was just loaded
    /// there by [`SegView::word`]: length bounds, body CRC chained on `prev_crc` (the stored CRC
    /// of the previous record, as read from it), seq `expect_seq`, reserved field and padding
    /// zero. Every check runs for every frame; the error is only classified (and formatted by
    /// the caller) when one fails.
    #[inline(always)]
    pub(crate) fn check_frame<K: Kernel>(
        &self,
        off: usize,
        word: u64,
        prev_crc: u32,
        expect_seq: u64,
        k: K,
    ) -> Result<FrameMeta, BadFrame> {
        let (crc, len) = unpack_word(word);
        if len < FRAME_HEADER_LEN as u32 {
            return Err(BadFrame::ShortLen { len });
        }
        // `off + 8 <= self.len` holds because `word` was loaded at `off`. In u64 so that
        // rounding a length near u32::MAX cannot overflow a 32-bit usize.
        let flen = (u64::from(len) + 7) & !7;
        if flen > (self.len - off) as u64 {
            return Err(BadFrame::PastEnd {
                len,
                seg_len: self.len,
            });
        }
        let flen = flen as usize;
        // SAFETY: the whole frame `[off, off + flen)` lies in the mapping (checked just above,
        // once for all reads below), `base + off` is 8-aligned, and the frame is published (the
        // acquire load of `word` happened before these reads), so its bytes no longer change.
        let (seq, ts_ns, kw, body, pad) = unsafe {
            let p = self.base.add(off);
            let seq = u64::from_le((p.add(8) as *const u64).read());
            let ts_ns = u64::from_le((p.add(16) as *const u64).read());
            let kw = u64::from_le((p.add(24) as *const u64).read());
            let body = k.body_in_place(p, len, seq, ts_ns, kw);
            // Padding is outside the CRC; requiring zeros there means no byte of a frame can
            // change unnoticed. It lives in the high bytes of the frame's last word.
            let used = len as usize % 8;
            let pad = if used != 0 {
                u64::from_le((p.add(flen - 8) as *const u64).read()) >> (8 * used)
            } else {
                0
            };
            (seq, ts_ns, kw, body, pad)
        };
        let expected = k.mix(prev_crc, body);
        let reserved = (kw >> 32) as u32;
        if (expected != crc) | (seq != expect_seq) | (reserved != 0) | (pad != 0) {
            return Err(BadFrame::classify(
                crc, expected, seq, expect_seq, reserved, pad,
            ));
        }
        Ok(FrameMeta {
            crc,
            len,
            seq,
            ts_ns,
            kind: kw as u16,
            ver: (kw >> 16) as u16,
        })
    }
}

/// Where a validation walk over a segment stands: the offset of the next frame, the stored CRC
/// of the frame before it (or the segment header's `prev_chain`), and the seq it must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Walk {
    pub(crate) off: usize,
    pub(crate) crc: u32,
    pub(crate) seq: u64,
}

impl SegView {
    /// Validates the next four frames from `w` at once when they are published and all of the
    /// same length, with every check of [`SegView::check_frame`] and their CRCs computed side by
    /// side ([`Hw::bodies4`]). All or nothing: true, with `w` moved past the four frames, if
    /// all of them are valid; false, with `w` unchanged, otherwise (fewer than four published,
    /// lengths differ, or any check fails). The caller then takes the next frame alone with
    /// [`SegView::check_frame`], which gives the verdict and the error's details.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub(crate) fn check_four(&self, h: Hw, w: &mut Walk) -> bool {
        let off = w.off;
        let word0 = self.word(off);
        let (crc0, len) = unpack_word(word0);
        if len < FRAME_HEADER_LEN as u32 {
            return false; // also a zero word
        }
        // In u64 so that rounding cannot overflow (see `check_frame`).
        let flen = (u64::from(len) + 7) & !7;
        if 4 * flen > (self.len - off) as u64 {
            return false;
        }
        let flen = flen as usize;
        // The fourth word is published last: once it is non-zero the other three are too
        // (each frame is published after everything before it).
        // SAFETY: the three words lie inside `[off, off + 4 * flen)`, in the mapping (checked
        // above), 8-aligned.
        let (word3, word1, word2) = unsafe {
            (
                self.word_unchecked(off + 3 * flen),
                self.word_unchecked(off + flen),
                self.word_unchecked(off + 2 * flen),
            )
        };
        let (crc1, len1) = unpack_word(word1);
        let (crc2, len2) = unpack_word(word2);
        let (crc3, len3) = unpack_word(word3);
        if (len1 != len) | (len2 != len) | (len3 != len) {
            return false;
        }
        let p = self.base.wrapping_add(off);
        // SAFETY: the four frames lie whole in the mapping (bounds checked above), are 8-aligned
        // and published (their words were acquire-loaded), so their bytes no longer change.
        let bodies = unsafe { h.bodies4(p, len, flen) };
        let used = len as usize % 8;
        let mut bad = 0u64;
        for k in 0..4 {
            // SAFETY: as above.
            unsafe {
                let f = p.add(k * flen);
                let seq = u64::from_le((f.add(8) as *const u64).read());
                let kw = u64::from_le((f.add(24) as *const u64).read());
                bad |= (seq ^ (w.seq + k as u64)) | (kw >> 32);
                if used != 0 {
                    bad |= u64::from_le((f.add(flen - 8) as *const u64).read()) >> (8 * used);
                }
            }
        }
        let m0 = h.mix(w.crc, bodies[0]);
        let m1 = h.mix(crc0, bodies[1]);
        let m2 = h.mix(crc1, bodies[2]);
        let m3 = h.mix(crc2, bodies[3]);
        bad |= u64::from((m0 ^ crc0) | (m1 ^ crc1) | (m2 ^ crc2) | (m3 ^ crc3));
        if bad != 0 {
            return false;
        }
        *w = Walk {
            off: off + 4 * flen,
            crc: crc3,
            seq: w.seq + 4,
        };
        true
    }
}

/// Why a frame failed [`SegView::check_frame`]; [`BadFrame::reason`] says it in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadFrame {
    ShortLen { len: u32 },
    PastEnd { len: u32, seg_len: usize },
    Crc { stored: u32, expected: u32 },
    Seq { got: u64, want: u64 },
    Reserved,
    Padding,
}

impl BadFrame {
    /// First failed check, in the order CRC, seq, reserved, padding.
    #[cold]
    #[inline(never)]
    fn classify(stored: u32, expected: u32, seq: u64, want: u64, reserved: u32, pad: u64) -> Self {
        if stored != expected {
            BadFrame::Crc { stored, expected }
        } else if seq != want {
            BadFrame::Seq { got: seq, want }
        } else if reserved != 0 {
            BadFrame::Reserved
        } else {
            debug_assert!(pad != 0);
            BadFrame::Padding
        }
    }

    /// Human-readable reason.
    #[cold]
    pub(crate) fn reason(&self) -> String {
        match *self {
            BadFrame::ShortLen { len } => {
                format!("frame length {len} is shorter than the 32-byte frame header")
            }
            BadFrame::PastEnd { len, seg_len } => {
                format!("frame length {len} runs past the end of the segment ({seg_len} bytes)")
            }
            BadFrame::Crc { stored, expected } => format!(
                "record CRC mismatch (stored {stored:#010x}, expected {expected:#010x} from the \
                 record's bytes and the previous record's stored CRC): the record or one before \
                 it was altered"
            ),
            BadFrame::Seq { got, want } => {
                format!("sequence number {got} where {want} was expected")
            }
            BadFrame::Reserved => "reserved frame field is not zero".to_string(),
            BadFrame::Padding => "non-zero padding after the record".to_string(),
        }
    }
}

// SAFETY: the view is plain read access to a shared mapping whose owner outlives it.
unsafe impl Send for SegView {}

#[inline]
pub(crate) fn le_u16(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[at..at + 2]);
    u16::from_le_bytes(a)
}

#[inline]
pub(crate) fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

#[inline]
pub(crate) fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_any_flipped_bit() {
        let h = SegmentHeader {
            schema_version: 7,
            base_seq: 42,
            prev_chain: 0xdead_beef,
        };
        let b = h.encode();
        assert_eq!(SegmentHeader::decode(&b), Ok(h));
        for bit in 0..SEGMENT_HEADER_LEN * 8 {
            let mut c = b;
            c[bit / 8] ^= 1 << (bit % 8);
            assert!(SegmentHeader::decode(&c).is_err(), "bit {bit} not detected");
        }
    }

    #[test]
    fn publication_word_puts_crc_first_and_len_second_in_memory() {
        let w = pack_word(0x0403_0201, 0x0807_0605);
        assert_eq!(w.to_ne_bytes(), [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(unpack_word(w), (0x0403_0201, 0x0807_0605));
    }

    #[test]
    fn segment_names_are_twenty_digits_and_parse_back() {
        assert_eq!(segment_file_name(17), "00000000000000000017.seg");
        assert_eq!(
            parse_segment_file_name("00000000000000000017.seg"),
            Some(17)
        );
        assert_eq!(parse_segment_file_name("17.seg"), None);
        assert_eq!(
            parse_segment_file_name("00000000000000000017.seg.tmp"),
            None
        );
        assert_eq!(parse_segment_file_name("99999999999999999999.seg"), None);
    }
}
