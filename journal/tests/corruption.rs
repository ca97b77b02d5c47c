//! Damage on disk: torn tails are truncated and reported, everything else is refused with the
//! segment and byte offset, by `Journal::open`, `verify`, `inspect` and the `Reader` alike.

mod common;

use common::*;
use keel_journal::{Integrity, Journal, JournalError, Reader, inspect, verify};
use std::path::{Path, PathBuf};

/// (offset, len) of every published frame in a segment file.
fn frames(path: &Path) -> Vec<(usize, usize)> {
    let b = std::fs::read(path).unwrap();
    let mut off = 64;
    let mut out = Vec::new();
    while off + 8 <= b.len() {
        let len = u32::from_le_bytes(b[off + 4..off + 8].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        out.push((off, len));
        off += (len + 7) & !7;
    }
    out
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

fn patch(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut b = std::fs::read(path).unwrap();
    f(&mut b);
    std::fs::write(path, b).unwrap();
}

/// A journal of `n` records over several 4 KiB segments.
fn journal_with(n: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), small_opts()).unwrap();
    append_range(&mut j, 1, n);
    dir
}

fn expect_corrupt(err: JournalError, seg: &Path, offset: u64) -> String {
    let msg = err.to_string();
    match err {
        JournalError::Corrupt {
            segment, offset: o, ..
        } => {
            assert_eq!((segment.as_path(), o), (seg, offset), "{msg}");
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    let name = seg.file_name().unwrap().to_str().unwrap();
    assert!(
        msg.contains(name) && msg.contains(&offset.to_string()),
        "{msg}"
    );
    assert!(
        msg.contains("keel journal verify"),
        "says what to do: {msg}"
    );
    msg
}

#[test]
fn recovers_torn_tail_by_truncation_and_appends_after_it() {
    let dir = journal_with(60);
    let last = segments(dir.path()).pop().unwrap();
    let (off, len) = *frames(&last).last().unwrap();
    assert!(len > 40, "test needs a record with a payload");
    // A partial write: the header persisted, the end of the payload did not.
    patch(&last, |b| b[off + len - 8..off + len].fill(0));
    let torn = verify(dir.path())
        .unwrap()
        .torn_tail
        .expect("verify reports the torn tail");
    assert_eq!(
        (torn.segment.as_path(), torn.offset),
        (last.as_path(), off as u64)
    );

    let (mut j, rec) = Journal::open(dir.path(), small_opts()).unwrap();
    let t = rec.truncated.expect("torn tail reported");
    assert_eq!(
        (t.segment.as_path(), t.offset),
        (last.as_path(), off as u64)
    );
    assert!(t.bytes_discarded > 0 && t.bytes_discarded <= len as u64);
    assert_eq!((rec.records, rec.last_seq), (59, 59));
    append_range(&mut j, 60, 80);
    drop(j);
    assert_eq!(
        check_all(&mut Reader::open(dir.path()).unwrap()).unwrap(),
        80
    );
    assert_eq!(verify(dir.path()).unwrap().torn_tail, None);
}

#[test]
fn unpublished_bytes_after_the_last_record_are_zeroed_as_a_torn_tail() {
    let dir = journal_with(30);
    let last = segments(dir.path()).pop().unwrap();
    let (off, len) = *frames(&last).last().unwrap();
    let end = off + ((len + 7) & !7);
    // A record whose body was written but whose first 8 bytes were never published.
    patch(&last, |b| b[end + 8..end + 200].fill(0xAB));
    let (mut j, rec) = Journal::open(dir.path(), small_opts()).unwrap();
    let t = rec.truncated.expect("reported");
    assert_eq!((t.offset, t.bytes_discarded), (end as u64, 200));
    // A shorter record must not leave garbage behind it.
    j.append(310, kind_for(31), 1, &payload_for(31)).unwrap();
    drop(j);
    let (_, rec) = Journal::open(dir.path(), small_opts()).unwrap();
    assert_eq!((rec.truncated, rec.records), (None, 31));
}

#[test]
fn flipped_bit_mid_log_is_refused_with_segment_and_offset() {
    let dir = journal_with(60);
    let first = segments(dir.path()).remove(0);
    let (off, _) = frames(&first)[2];
    patch(&first, |b| b[off + 40] ^= 0x04);
    let e = Journal::open(dir.path(), small_opts())
        .err()
        .expect("open refuses");
    expect_corrupt(e, &first, off as u64);
    expect_corrupt(verify(dir.path()).unwrap_err(), &first, off as u64);
    let mut r = Reader::open(dir.path()).unwrap();
    assert!(r.next().unwrap().is_some() && r.next().unwrap().is_some());
    expect_corrupt(r.next().unwrap_err(), &first, off as u64);
    let report = inspect(dir.path()).unwrap();
    assert_eq!(report.records, 2, "inspect returns what it could read");
    assert!(matches!(report.integrity, Integrity::Corrupt { offset, .. } if offset == off as u64));
}

#[test]
fn flipped_bit_in_the_last_segment_followed_by_records_is_corruption() {
    let dir = journal_with(60);
    let last = segments(dir.path()).pop().unwrap();
    let fr = frames(&last);
    assert!(fr.len() >= 2);
    let (off, _) = fr[0];
    patch(&last, |b| b[off + 9] ^= 0x80); // inside the seq field
    let e = Journal::open(dir.path(), small_opts())
        .err()
        .expect("open refuses");
    expect_corrupt(e, &last, off as u64);
}

#[test]
fn flipped_bit_in_the_final_record_followed_by_zeros_is_treated_as_torn_tail() {
    let dir = journal_with(60);
    let last = segments(dir.path()).pop().unwrap();
    let (off, _) = *frames(&last).last().unwrap();
    patch(&last, |b| b[off + 20] ^= 0x01);
    let (_, rec) = Journal::open(dir.path(), small_opts()).unwrap();
    assert_eq!(rec.truncated.map(|t| t.offset), Some(off as u64));
    assert_eq!(rec.last_seq, 59);
}

#[test]
fn damaged_segment_header_is_corruption() {
    let dir = journal_with(60);
    let seg = segments(dir.path()).remove(1);
    patch(&seg, |b| b[11] ^= 0x01); // schema_version: only the header CRC notices
    let e = Journal::open(dir.path(), small_opts()).err().unwrap();
    let msg = expect_corrupt(e, &seg, 0);
    assert!(msg.contains("header CRC"), "{msg}");
}

#[test]
fn wrong_magic_is_corruption() {
    let dir = journal_with(10);
    let seg = segments(dir.path()).remove(0);
    patch(&seg, |b| b[0..8].copy_from_slice(b"NOTKEEL\0"));
    let msg = expect_corrupt(verify(dir.path()).unwrap_err(), &seg, 0);
    assert!(msg.contains("magic"), "{msg}");
}

#[test]
fn missing_segment_in_the_middle_is_a_sequence_gap() {
    let dir = journal_with(80);
    let segs = segments(dir.path());
    assert!(segs.len() >= 3);
    std::fs::remove_file(&segs[1]).unwrap();
    let e = Journal::open(dir.path(), small_opts()).err().unwrap();
    let msg = expect_corrupt(e, &segs[2], 16);
    assert!(msg.contains("gap"), "{msg}");
}

#[test]
fn segment_renamed_to_a_wrong_base_seq_is_corruption() {
    let dir = journal_with(80);
    let segs = segments(dir.path());
    let wrong = seg_path(dir.path(), 999_999);
    std::fs::rename(segs.last().unwrap(), &wrong).unwrap();
    expect_corrupt(verify(dir.path()).unwrap_err(), &wrong, 16);
}

#[test]
fn garbage_file_contents_never_panic_recovery() {
    // Every byte value at many positions of a small journal: open must return, never panic.
    let dir = journal_with(12);
    let seg = segments(dir.path()).remove(0);
    let orig = std::fs::read(&seg).unwrap();
    let used = frames(&seg).last().map_or(64, |(o, l)| o + l);
    for pos in (0..used + 16).step_by(5) {
        for val in [0x00, 0x01, 0x7f, 0xff] {
            let mut b = orig.clone();
            b[pos] = val;
            std::fs::write(&seg, &b).unwrap();
            let _ = verify(dir.path());
            let _ = inspect(dir.path());
            if let Ok(mut r) = Reader::open(dir.path()) {
                while let Ok(Some(_)) = r.next() {}
            }
        }
    }
    std::fs::write(&seg, &orig).unwrap();
    assert_eq!(verify(dir.path()).unwrap().records, 12);
}

#[test]
fn inspect_reports_segments_kinds_and_ranges() {
    let dir = journal_with(100);
    let r = inspect(dir.path()).unwrap();
    assert_eq!(r.integrity, Integrity::Ok);
    assert_eq!(
        (r.records, r.first_seq, r.last_seq),
        (100, Some(1), Some(100))
    );
    assert_eq!((r.first_ts_ns, r.last_ts_ns), (Some(10), Some(1000)));
    assert_eq!(r.kinds.values().sum::<u64>(), 100);
    assert_eq!(r.kinds[&0], 14);
    assert_eq!(r.segments.iter().map(|s| s.records).sum::<u64>(), 100);
    assert_eq!(r.segments[0].base_seq, 1);
    assert!(
        r.segments
            .iter()
            .all(|s| s.capacity == 4096 - 64 && s.bytes_used <= 4096)
    );
    assert!(
        r.segments
            .windows(2)
            .all(|w| w[1].base_seq == w[0].base_seq + w[0].records)
    );
}

/// Body CRC and chain step exactly as the crate docs state them.
fn body_crc(frame: &[u8], len: usize) -> u32 {
    let c = crc32c::crc32c_append(0, &(len as u32).to_le_bytes());
    crc32c::crc32c_append(c, &frame[8..len])
}

fn chain(prev: u32, body: u32) -> u32 {
    crc32c::crc32c_append(prev, &body.to_le_bytes())
}

fn stored_crc(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

#[test]
fn stored_crcs_follow_the_documented_chain_rule_across_segments() {
    let dir = journal_with(120);
    let segs = segments(dir.path());
    assert!(segs.len() > 2, "want several segments");
    let mut prev = 0u32;
    let mut seen = 0;
    for seg in &segs {
        let b = std::fs::read(seg).unwrap();
        let prev_chain = u32::from_le_bytes(b[24..28].try_into().unwrap());
        assert_eq!(prev_chain, prev, "{}: header prev_chain", seg.display());
        for (off, len) in frames(seg) {
            let body = body_crc(&b[off..], len);
            assert_eq!(stored_crc(&b, off), chain(prev, body), "frame at {off}");
            prev = stored_crc(&b, off);
            seen += 1;
        }
    }
    assert_eq!(seen, 120);
}

/// Rewrites record `idx` of `seg` with `edit` and recomputes its stored CRC by the rule, so the
/// record is self-consistent and only the chain into the next record can notice.
fn edit_and_recrc(seg: &Path, idx: usize, edit: impl FnOnce(&mut [u8])) -> (usize, usize) {
    let fr = frames(seg);
    let (off, len) = fr[idx];
    let next_off = fr[idx + 1].0;
    patch(seg, |b| {
        let prev = if idx == 0 {
            u32::from_le_bytes(b[24..28].try_into().unwrap())
        } else {
            stored_crc(b, fr[idx - 1].0)
        };
        edit(&mut b[off..off + len]);
        let crc = chain(prev, body_crc(&b[off..], len));
        b[off..off + 4].copy_from_slice(&crc.to_le_bytes());
    });
    (off, next_off)
}

#[test]
fn an_edited_record_with_a_recomputed_crc_breaks_the_chain_at_the_next_record() {
    let dir = journal_with(40);
    let seg = segments(dir.path())[0].clone();
    let (_, next_off) = edit_and_recrc(&seg, 2, |f| f[40] ^= 0x55);
    // Every reader of the journal stops at the record after the edited one.
    let mut r = Reader::open(dir.path()).unwrap();
    let mut n = 0;
    let err = loop {
        match r.next() {
            Ok(Some(_)) => n += 1,
            Ok(None) => panic!("edit not detected"),
            Err(e) => break e,
        }
    };
    assert_eq!(
        n, 3,
        "records up to the edited one are returned (it is self-consistent)"
    );
    let msg = expect_corrupt(err, &seg, next_off as u64);
    assert!(msg.contains("CRC"), "{msg}");
    expect_corrupt(verify(dir.path()).unwrap_err(), &seg, next_off as u64);
    let Err(err) = Journal::open(dir.path(), small_opts()) else {
        panic!("open accepted an edited journal");
    };
    expect_corrupt(err, &seg, next_off as u64);
}

#[test]
fn swapped_records_are_refused() {
    // Swap two whole frames of equal length (each one intact, CRC field included).
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), small_opts()).unwrap();
    for i in 0..10u64 {
        j.append(i, 1, 1, &[i as u8; 20]).unwrap();
    }
    drop(j);
    let seg = segments(dir.path())[0].clone();
    let fr = frames(&seg);
    let (i, j) = (3, 6);
    patch(&seg, |b| {
        let (a, c, len) = (fr[i].0, fr[j].0, (fr[i].1 + 7) & !7);
        let fa = b[a..a + len].to_vec();
        let fc = b[c..c + len].to_vec();
        b[a..a + len].copy_from_slice(&fc);
        b[c..c + len].copy_from_slice(&fa);
    });
    expect_corrupt(verify(dir.path()).unwrap_err(), &seg, fr[i].0 as u64);
    let mut r = Reader::open(dir.path()).unwrap();
    let err = loop {
        match r.next() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("swap not detected"),
            Err(e) => break e,
        }
    };
    expect_corrupt(err, &seg, fr[i].0 as u64);
}

#[test]
fn intact_segment_of_another_format_version_is_not_called_corrupt() {
    let dir = journal_with(10);
    let seg = segments(dir.path()).remove(0);
    patch(&seg, |b| {
        b[8..10].copy_from_slice(&1u16.to_le_bytes());
        let crc = crc32c::crc32c(&b[..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
    });
    for err in [
        Journal::open(dir.path(), small_opts()).err().unwrap(),
        Reader::open(dir.path())
            .and_then(|mut r| r.next().map(|_| ()))
            .err()
            .unwrap(),
        verify(dir.path()).err().unwrap(),
    ] {
        assert!(
            matches!(err, JournalError::UnsupportedFormat { found: 1, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("not damaged"), "{err}");
    }
}

/// The reader validates runs of same-length frames four at a time (CRCs interleaved) and
/// everything else frame by frame. A change to any byte of such a run — length, CRC, seq,
/// timestamp, kind, reserved field, payload or padding — must be refused at the frame holding
/// that byte, after every record before it was returned intact.
#[test]
fn any_flipped_byte_in_a_run_of_same_length_frames_is_refused_at_its_frame() {
    let dir = tempfile::tempdir().unwrap();
    let n = 13u64;
    {
        let (mut j, _) = Journal::open(dir.path(), small_opts()).unwrap();
        for i in 0..n {
            // 37-byte payloads: frames of 69 bytes, 3 of them padding.
            let payload: Vec<u8> = (0..37).map(|b| (b as u8) ^ (i as u8 * 11)).collect();
            j.append(1_000 + i, 4, 1, &payload).unwrap();
        }
    }
    let seg = segments(dir.path()).remove(0);
    let name = seg.file_name().unwrap().to_owned();
    let clean = std::fs::read(&seg).unwrap();
    let fr = frames(&seg);
    assert_eq!(fr.len(), n as usize, "one segment holds the run");
    assert!(fr.iter().all(|&(_, len)| len == 69));
    let end = fr.last().unwrap().0 + 72;
    let mut cases = 0;
    for (idx, &(start, _)) in fr.iter().enumerate() {
        for at in start..start + 72 {
            for bit in [0x01u8, 0x80] {
                let mut bytes = clean.clone();
                bytes[at] ^= bit;
                let case = tempfile::tempdir().unwrap();
                let path = case.path().join(&name);
                std::fs::write(&path, &bytes).unwrap();
                let mut r = Reader::open(case.path()).unwrap();
                for want in 0..idx {
                    let rec = r.next().unwrap().expect("records before the damage");
                    assert_eq!(rec.seq, want as u64 + 1);
                    assert_eq!(rec.payload.len(), 37);
                }
                let err = r
                    .next()
                    .expect_err(&format!("byte {at} (frame {idx}) bit {bit:#x} accepted"));
                expect_corrupt(err, &path, start as u64);
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 2 * 72 * n as usize);
    assert!(clean[end..].iter().all(|&b| b == 0));
}

/// Rewrites every stored CRC of a segment's frames so that the chain is intact again: the
/// frames then differ from a valid journal only by what the caller changed.
fn rechain(bytes: &mut [u8], frames: &[(usize, usize)]) {
    let mut prev = u32::from_le_bytes(bytes[24..28].try_into().unwrap());
    for &(off, len) in frames {
        let crc = chain(prev, body_crc(&bytes[off..], len));
        bytes[off..off + 4].copy_from_slice(&crc.to_le_bytes());
        prev = crc;
    }
}

/// A frame whose CRCs were forged to match but whose seq is out of order, or whose reserved
/// field is not zero, is refused at that frame too — in a run of same-length frames, at each
/// position of a group of four.
#[test]
fn forged_crcs_do_not_hide_a_wrong_seq_or_reserved_field_in_a_run() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut j, _) = Journal::open(dir.path(), small_opts()).unwrap();
        for i in 0..9u8 {
            j.append(7, 2, 1, &[i; 40]).unwrap();
        }
    }
    let seg = segments(dir.path()).remove(0);
    let name = seg.file_name().unwrap().to_owned();
    let clean = std::fs::read(&seg).unwrap();
    let fr = frames(&seg);
    assert_eq!(fr.len(), 9);
    for (idx, &(off, _)) in fr.iter().enumerate() {
        for (field, what) in [(8usize, "seq"), (28, "reserved")] {
            let mut bytes = clean.clone();
            bytes[off + field] ^= 0x02;
            rechain(&mut bytes, &fr);
            let case = tempfile::tempdir().unwrap();
            let path = case.path().join(&name);
            std::fs::write(&path, &bytes).unwrap();
            let mut r = Reader::open(case.path()).unwrap();
            for _ in 0..idx {
                r.next().unwrap().expect("records before the forged one");
            }
            let err = r
                .next()
                .expect_err(&format!("forged {what} in frame {idx} accepted"));
            let msg = expect_corrupt(err, &path, off as u64);
            assert!(msg.contains(what), "{msg}");
        }
    }
}
