//! Byte layout of segments and record frames (see the crate docs for the table), plus the small
//! helpers every other module uses to read them: header encode/decode, frame validation, the
//! chained CRC and segment file names. Nothing here does I/O.

use std::sync::atomic::{AtomicU64, Ordering};

/// First 8 bytes of every segment.
pub const MAGIC: [u8; 8] = *b"KEELJNL\0";
/// Version of this byte layout.
pub const FORMAT_VERSION: u16 = 1;
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
    pub fn decode(b: &[u8]) -> Result<SegmentHeader, String> {
        if b.len() < SEGMENT_HEADER_LEN {
            return Err(format!(
                "segment is {} bytes, shorter than its {SEGMENT_HEADER_LEN}-byte header",
                b.len()
            ));
        }
        if b[0..8] != MAGIC {
            return Err(format!(
                "bad magic {:02x?}, not a keel journal segment",
                &b[0..8]
            ));
        }
        let stored = le_u32(b, 60);
        let computed = crc32c::crc32c(&b[..60]);
        if stored != computed {
            return Err(format!(
                "segment header CRC mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ));
        }
        let format_version = le_u16(b, 8);
        if format_version != FORMAT_VERSION {
            return Err(format!(
                "unsupported format version {format_version} (this build reads {FORMAT_VERSION})"
            ));
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

/// Chained CRC of a frame: `len` LE bytes, then `rest` = frame bytes `[8..len)`.
#[inline]
pub fn frame_crc(prev: u32, len: u32, rest: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c_append(prev, &len.to_le_bytes()), rest)
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
        debug_assert!(base as usize % FRAME_ALIGN == 0);
        SegView { base, len }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Acquire-loads the publication word at `off`; 0 past the end of the segment.
    #[inline]
    pub(crate) fn word(&self, off: usize) -> u64 {
        if off % FRAME_ALIGN != 0 || off + 8 > self.len {
            return 0;
        }
        // SAFETY: in bounds (checked above) and 8-aligned (base is page aligned, off is 8-aligned);
        // the writer publishes this word with an atomic store, so we load it atomically.
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

    /// Validates the frame at `off` whose publication word is `word` (non-zero), chained on
    /// `prev_crc` and expected to carry `expect_seq`. The error is a human reason.
    #[inline]
    pub(crate) fn check_frame(
        &self,
        off: usize,
        word: u64,
        prev_crc: u32,
        expect_seq: u64,
    ) -> Result<FrameMeta, String> {
        let (crc, len) = unpack_word(word);
        let l = len as usize;
        if l < FRAME_HEADER_LEN {
            return Err(format!(
                "frame length {len} is shorter than the 32-byte frame header"
            ));
        }
        if off + l > self.len {
            return Err(format!(
                "frame length {len} runs past the end of the segment ({} bytes)",
                self.len
            ));
        }
        let rest = self.bytes(off + 8, l - 8);
        let computed = frame_crc(prev_crc, len, rest);
        if computed != crc {
            return Err(format!(
                "record CRC mismatch (stored {crc:#010x}, computed {computed:#010x} with the chain \
                 of the previous record): the record or one before it was altered"
            ));
        }
        let seq = le_u64(rest, 0);
        if seq != expect_seq {
            return Err(format!(
                "sequence number {seq} where {expect_seq} was expected"
            ));
        }
        if le_u32(rest, 20) != 0 {
            return Err("reserved frame field is not zero".to_string());
        }
        // Padding is outside the CRC; requiring zeros there means no byte of a frame can change
        // unnoticed.
        if self
            .bytes(off + l, round_up8(l) - l)
            .iter()
            .any(|&b| b != 0)
        {
            return Err("non-zero padding after the record".to_string());
        }
        Ok(FrameMeta {
            crc,
            len,
            seq,
            ts_ns: le_u64(rest, 8),
            kind: le_u16(rest, 16),
            ver: le_u16(rest, 18),
        })
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
