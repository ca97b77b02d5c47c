//! Read-only scan of a whole journal directory: headers, frames, CRC chain and sequence
//! contiguity. Shared by recovery (which then truncates a torn tail), `verify` and `inspect`, so
//! the three can never disagree about what is valid.

use crate::crc::{Hw, Kernel, Sw};
use crate::error::JournalError;
use crate::format::{
    FrameMeta, SEGMENT_EXT, SEGMENT_HEADER_LEN, SegView, SegmentHeader, TMP_EXT,
    parse_segment_file_name, round_up8,
};
use crate::storage::Storage;
use std::path::{Path, PathBuf};

/// A segment file found in the directory.
#[derive(Debug, Clone)]
pub(crate) struct SegFile {
    pub base_seq: u64,
    pub path: PathBuf,
    pub name: String,
}

/// Lists segment files sorted by base seq. Leftover `*.seg.tmp` files are returned separately;
/// a `*.seg` whose name does not parse is corruption (someone put a file there).
pub(crate) fn list_segments(
    storage: &dyn Storage,
    dir: &Path,
) -> Result<(Vec<SegFile>, Vec<PathBuf>), JournalError> {
    let names = storage
        .list(dir)
        .map_err(|e| JournalError::io(dir, "list directory", e))?;
    let mut segs = Vec::new();
    let mut tmps = Vec::new();
    for name in names {
        if name.ends_with(TMP_EXT) {
            tmps.push(dir.join(&name));
        } else if name.ends_with(SEGMENT_EXT) {
            let Some(base_seq) = parse_segment_file_name(&name) else {
                return Err(JournalError::corrupt(
                    dir.join(&name),
                    0,
                    "segment file name is not `{20-digit seq}.seg`",
                ));
            };
            segs.push(SegFile {
                base_seq,
                path: dir.join(&name),
                name,
            });
        }
    }
    segs.sort_by_key(|s| s.base_seq);
    Ok((segs, tmps))
}

/// Per-segment facts reported by `inspect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub file_name: String,
    pub base_seq: u64,
    pub schema_version: u16,
    pub records: u64,
    /// Offset just past the last valid record (header included).
    pub bytes_used: u64,
    /// Bytes available for records (file size minus the header).
    pub capacity: u64,
}

/// How a segment scan ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Valid records, then zeros to the end.
    Clean,
    /// A bad or unpublished frame at `offset`, followed only by zeros after `dirty_end`.
    Torn {
        offset: usize,
        dirty_end: usize,
        reason: String,
    },
    /// A bad frame followed by more data.
    Corrupt { offset: usize, reason: String },
}

pub(crate) struct SegScan {
    pub records: u64,
    pub end: usize,
    pub last_crc: u32,
    pub next_seq: u64,
    pub stop: Stop,
}

/// Index one past the last non-zero byte of `b`, if any. Chunked so it vectorises: recovery
/// checks up to a whole segment of zeros.
pub(crate) fn nonzero_end(b: &[u8]) -> Option<usize> {
    let chunks = b.len() / 64;
    let tail = &b[chunks * 64..];
    if let Some(p) = tail.iter().rposition(|&x| x != 0) {
        return Some(chunks * 64 + p + 1);
    }
    for c in (0..chunks).rev() {
        let chunk = &b[c * 64..c * 64 + 64];
        if chunk.iter().fold(0u8, |a, &x| a | x) != 0 {
            return chunk.iter().rposition(|&x| x != 0).map(|p| c * 64 + p + 1);
        }
    }
    None
}

/// Scans the records of one segment whose header is already checked. Generic over the
/// per-record callback so it is inlined into the loop (no indirect call per record).
#[inline]
pub(crate) fn scan_segment<K: Kernel, F: FnMut(&FrameMeta)>(
    view: SegView,
    mut crc: u32,
    mut seq: u64,
    k: K,
    mut on_record: F,
) -> SegScan {
    let len = view.len();
    let mut off = SEGMENT_HEADER_LEN;
    let mut records = 0;
    let stop = loop {
        view.prefetch(off, crate::reader::PREFETCH_AHEAD);
        // 0 past the end of the segment (including `off + 8 > len`).
        let word = view.word(off);
        if word == 0 {
            // `off <= len`: the header is 64 bytes and every accepted frame fits the segment.
            break if len - off < 8 {
                Stop::Clean
            } else {
                zero_word_stop(view, off)
            };
        }
        match view.check_frame(off, word, crc, seq, k) {
            Ok(meta) => {
                on_record(&meta);
                crc = meta.crc;
                seq += 1;
                records += 1;
                off += meta.frame_len();
            }
            Err(bad) => break classify_bad_frame(view, off, word, bad.reason()),
        }
    };
    SegScan {
        records,
        end: off,
        last_crc: crc,
        next_seq: seq,
        stop,
    }
}

/// How a segment scan ends at a zero publication word at `off`: clean if only zeros follow.
#[cold]
fn zero_word_stop(view: SegView, off: usize) -> Stop {
    match nonzero_end(view.bytes(off, view.len() - off)) {
        None => Stop::Clean,
        Some(e) => Stop::Torn {
            offset: off,
            dirty_end: off + e,
            reason: "unpublished bytes after the last record (a write interrupted by a crash)"
                .to_string(),
        },
    }
}

/// A bad frame is a torn tail if nothing but zeros follows the bytes it claims (or just its
/// first 8 bytes when its length is implausible); otherwise it is corruption.
#[cold]
fn classify_bad_frame(view: SegView, off: usize, word: u64, reason: String) -> Stop {
    let (_, flen) = crate::format::unpack_word(word);
    let flen = flen as usize;
    let extent = if flen >= 32 && off + flen <= view.len() {
        round_up8(flen).min(view.len() - off)
    } else {
        8
    };
    let after = off + extent;
    if nonzero_end(view.bytes(after, view.len() - after)).is_some() {
        return Stop::Corrupt {
            offset: off,
            reason,
        };
    }
    let dirty_end = nonzero_end(view.bytes(off, extent)).map_or(off, |e| off + e);
    Stop::Torn {
        offset: off,
        dirty_end,
        reason,
    }
}

/// What went wrong, if anything, in a directory scan.
#[derive(Debug)]
pub(crate) enum Problem {
    Torn {
        segment: PathBuf,
        offset: usize,
        dirty_end: usize,
        reason: String,
    },
    Corrupt(JournalError),
}

/// Result of scanning every segment.
#[derive(Debug, Default)]
pub(crate) struct DirScan {
    pub segments: Vec<SegmentInfo>,
    pub paths: Vec<PathBuf>,
    pub tmps: Vec<PathBuf>,
    pub records: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub first_ts_ns: Option<u64>,
    pub last_ts_ns: Option<u64>,
    pub kinds: std::collections::BTreeMap<u16, u64>,
    /// Chain value after the last valid record.
    pub last_crc: u32,
    /// Seq the next record will carry.
    pub next_seq: u64,
    pub problem: Option<Problem>,
}

/// Scans the directory read-only. I/O errors are returned; corruption and torn tails are
/// recorded in `problem` so `inspect` can still report what it read.
pub(crate) fn scan_dir(storage: &dyn Storage, dir: &Path) -> Result<DirScan, JournalError> {
    let (segs, tmps) = list_segments(storage, dir)?;
    let mut out = DirScan {
        tmps,
        next_seq: 1,
        ..DirScan::default()
    };
    let hw = Hw::detect();
    // Per-kind counts: common (small) kinds in an array, the rest in the map.
    let mut small_kinds = [0u64; 256];
    let result = scan_segments(storage, &segs, hw, &mut small_kinds, &mut out);
    for (kind, &n) in small_kinds.iter().enumerate() {
        if n > 0 {
            *out.kinds.entry(kind as u16).or_insert(0) += n;
        }
    }
    result.map(|()| out)
}

/// The per-segment loop of [`scan_dir`]; returns early (Ok) once `out.problem` is set.
fn scan_segments(
    storage: &dyn Storage,
    segs: &[SegFile],
    hw: Option<Hw>,
    small_kinds: &mut [u64; 256],
    out: &mut DirScan,
) -> Result<(), JournalError> {
    let count = segs.len();
    for (i, seg) in segs.iter().enumerate() {
        let map = storage
            .open_ro(&seg.path)
            .map_err(|e| JournalError::io(&seg.path, "map segment read-only", e))?;
        // SAFETY: `map` outlives `view` (both live until the end of this iteration).
        let view = unsafe { SegView::new(map.as_ptr(), map.len()) };
        let header = match check_header(view, seg, (i > 0).then_some((out.next_seq, out.last_crc)))
        {
            Ok(h) => h,
            Err(e) => {
                out.problem = Some(Problem::Corrupt(e));
                return Ok(());
            }
        };
        if i == 0 {
            out.last_crc = header.prev_chain;
            out.next_seq = header.base_seq;
        }
        let mut first = None;
        let mut last_ts = 0;
        let mut on_record = |m: &FrameMeta| {
            first.get_or_insert((m.seq, m.ts_ns));
            last_ts = m.ts_ns;
            match small_kinds.get_mut(usize::from(m.kind)) {
                Some(n) => *n += 1,
                None => *out.kinds.entry(m.kind).or_insert(0) += 1,
            }
        };
        let (crc, seq) = (out.last_crc, out.next_seq);
        let scan = match hw {
            Some(h) => scan_segment(view, crc, seq, h, &mut on_record),
            None => scan_segment(view, crc, seq, Sw, &mut on_record),
        };
        if let Some((seq, ts)) = first {
            out.first_seq.get_or_insert(seq);
            out.first_ts_ns.get_or_insert(ts);
            out.last_seq = Some(scan.next_seq - 1);
            out.last_ts_ns = Some(last_ts);
        }
        out.records += scan.records;
        out.last_crc = scan.last_crc;
        out.next_seq = scan.next_seq;
        out.paths.push(seg.path.clone());
        out.segments.push(SegmentInfo {
            file_name: seg.name.clone(),
            base_seq: seg.base_seq,
            schema_version: header.schema_version,
            records: scan.records,
            bytes_used: scan.end as u64,
            capacity: view.len().saturating_sub(SEGMENT_HEADER_LEN) as u64,
        });
        match scan.stop {
            Stop::Clean => {}
            Stop::Torn {
                offset,
                dirty_end,
                reason,
            } if i + 1 == count => {
                out.problem = Some(Problem::Torn {
                    segment: seg.path.clone(),
                    offset,
                    dirty_end,
                    reason,
                });
            }
            Stop::Torn { offset, reason, .. } | Stop::Corrupt { offset, reason } => {
                let reason = if i + 1 < count {
                    format!("{reason} (in a segment that is not the last one)")
                } else {
                    format!("{reason}, and valid-looking data follows it")
                };
                out.problem = Some(Problem::Corrupt(JournalError::corrupt(
                    &seg.path,
                    offset as u64,
                    reason,
                )));
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Checks a segment header against its file name and, for all but the first segment, against
/// the end of the previous one (`expect` = next seq, chain value).
fn check_header(
    view: SegView,
    seg: &SegFile,
    expect: Option<(u64, u32)>,
) -> Result<SegmentHeader, JournalError> {
    let header = SegmentHeader::decode(view.bytes(0, SEGMENT_HEADER_LEN))
        .map_err(|p| p.into_error(&seg.path))?;
    if header.base_seq != seg.base_seq {
        return Err(JournalError::corrupt(
            &seg.path,
            16,
            format!(
                "header says base seq {} but the file name says {}",
                header.base_seq, seg.base_seq
            ),
        ));
    }
    if let Some((next_seq, crc)) = expect {
        if header.base_seq != next_seq {
            return Err(JournalError::corrupt(
                &seg.path,
                16,
                format!(
                    "sequence gap: the previous segment ends before seq {next_seq} but this one \
                     starts at seq {} (a segment file is missing or extra)",
                    header.base_seq
                ),
            ));
        }
        if header.prev_chain != crc {
            return Err(JournalError::corrupt(
                &seg.path,
                24,
                format!(
                    "chain break: header prev_chain {:#010x} does not match the last record of \
                     the previous segment ({crc:#010x})",
                    header.prev_chain
                ),
            ));
        }
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::nonzero_end;

    #[test]
    fn nonzero_end_finds_the_last_nonzero_byte_in_every_position() {
        for len in [0usize, 1, 63, 64, 65, 200] {
            assert_eq!(nonzero_end(&vec![0u8; len]), None);
            for p in 0..len {
                let mut v = vec![0u8; len];
                v[p] = 1;
                if p > 0 {
                    v[0] = 9;
                }
                assert_eq!(nonzero_end(&v), Some(p + 1), "len {len} p {p}");
            }
        }
    }
}
