//! Records written are the records read: after reopen, via a tail reader in another thread, and
//! from a given seq.

mod common;

use common::*;
use keel_journal::{Journal, JournalError, Options, Reader, verify};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_records_read_back_identical_after_reopen_across_segment_rolls(
        records in proptest::collection::vec(
            (any::<u16>(), any::<u16>(), any::<u64>(), proptest::collection::vec(any::<u8>(), 0..3000)),
            0..60,
        ),
        reopen_at in 0usize..60,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options { segment_size: 8192, ..small_opts() };
        let (mut j, _) = Journal::open(dir.path(), opts).unwrap();
        for (i, (kind, ver, ts, payload)) in records.iter().enumerate() {
            if i == reopen_at {
                drop(j);
                j = Journal::open(dir.path(), opts).unwrap().0;
            }
            prop_assert_eq!(j.append(*ts, *kind, *ver, payload).unwrap(), i as u64 + 1);
        }
        drop(j);
        let (j, rec) = Journal::open(dir.path(), opts).unwrap();
        prop_assert_eq!(rec.records, records.len() as u64);
        prop_assert_eq!(rec.truncated, None);
        prop_assert_eq!(j.next_seq(), records.len() as u64 + 1);
        let mut r = Reader::open(dir.path()).unwrap();
        for (i, (kind, ver, ts, payload)) in records.iter().enumerate() {
            let got = r.next().unwrap().expect("record present");
            prop_assert_eq!(got.seq, i as u64 + 1);
            prop_assert_eq!((got.kind, got.ver, got.ts_ns), (*kind, *ver, *ts));
            prop_assert_eq!(got.payload, payload.as_slice());
        }
        prop_assert!(r.next().unwrap().is_none());
        prop_assert_eq!(verify(dir.path()).unwrap().records, records.len() as u64);
    }
}

#[test]
fn reader_following_a_writer_thread_sees_every_record_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), small_opts()).unwrap();
    const N: u64 = 20_000;
    let path = dir.path().to_path_buf();
    let reader = std::thread::spawn(move || {
        let mut r = Reader::open(&path).unwrap();
        let mut seen = 0u64;
        while seen < N {
            match r.next().unwrap() {
                Some(rec) => {
                    seen += 1;
                    assert_eq!(rec.seq, seen);
                    assert_eq!(rec.payload, payload_for(rec.seq).as_slice());
                }
                None => std::thread::yield_now(),
            }
        }
        assert!(
            r.next().unwrap().is_none(),
            "no record beyond the last one written"
        );
        seen
    });
    append_range(&mut j, 1, N);
    assert_eq!(reader.join().unwrap(), N);
    assert!(
        std::fs::read_dir(dir.path()).unwrap().count() > 10,
        "segments rolled"
    );
}

#[test]
fn reader_from_seq_skips_earlier_records_and_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), small_opts()).unwrap();
    append_range(&mut j, 1, 500);
    for start in [0, 1, 2, 137, 499, 500] {
        let mut r = Reader::from_seq(dir.path(), start).unwrap();
        let first = r.next().unwrap().unwrap();
        assert_eq!(first.seq, start.max(1));
        assert_eq!(first.payload, payload_for(start.max(1)).as_slice());
    }
    let mut r = Reader::from_seq(dir.path(), 501).unwrap();
    assert!(r.next().unwrap().is_none());
    j.append(5010, kind_for(501), 1, &payload_for(501)).unwrap();
    assert_eq!(
        r.next().unwrap().unwrap().seq,
        501,
        "from_seq past the end follows the tail"
    );
}

#[test]
fn writer_continues_after_last_record_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, rec) = Journal::open(dir.path(), small_opts()).unwrap();
    assert_eq!((rec.records, rec.last_seq, rec.segments), (0, 0, 0));
    append_range(&mut j, 1, 100);
    drop(j);
    let (mut j, rec) = Journal::open(dir.path(), small_opts()).unwrap();
    assert_eq!(
        (rec.records, rec.last_seq, rec.last_ts_ns),
        (100, 100, 1000)
    );
    assert_eq!(rec.schema_version, Some(3));
    append_range(&mut j, 101, 200);
    drop(j);
    assert_eq!(
        check_all(&mut Reader::open(dir.path()).unwrap()).unwrap(),
        200
    );
}

#[test]
fn second_writer_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_j, _) = Journal::open(dir.path(), small_opts()).unwrap();
    let err = Journal::open(dir.path(), small_opts())
        .err()
        .expect("must be refused");
    assert!(matches!(err, JournalError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("another writer"), "{err}");
}

#[test]
fn record_larger_than_a_segment_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), small_opts()).unwrap();
    append_range(&mut j, 1, 3);
    let err = j.append(0, 0, 0, &vec![1u8; 4096]).unwrap_err();
    assert!(matches!(err, JournalError::RecordTooLarge { .. }), "{err}");
    assert_eq!(j.next_seq(), 4);
    // The largest record that fits an empty segment is accepted.
    let seq = j
        .append(40, kind_for(4), 1, &vec![9u8; 4096 - 64 - 32])
        .unwrap();
    assert_eq!(seq, 4);
    drop(j);
    assert_eq!(verify(dir.path()).unwrap().records, 4);
}

#[test]
fn payload_written_in_place_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), small_opts()).unwrap();
    let seq = j
        .append_with(7, 2, 1, 13, |buf| {
            assert_eq!(buf.as_ptr() as usize % 8, 0);
            buf.copy_from_slice(b"hello, keel!!")
        })
        .unwrap();
    let mut r = Reader::open(dir.path()).unwrap();
    let rec = r.next().unwrap().unwrap();
    assert_eq!((rec.seq, rec.payload), (seq, &b"hello, keel!!"[..]));
}

#[test]
fn invalid_options_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let bad = Options {
        segment_size: 1000,
        ..small_opts()
    };
    assert!(matches!(
        Journal::open(dir.path(), bad).err(),
        Some(JournalError::InvalidOptions(_))
    ));
}

#[test]
fn reader_at_an_empty_newest_segment_reports_no_record_instead_of_spinning() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path(), small_opts()).unwrap();
    append_range(&mut j, 1, 40);
    let next = j.next_seq();
    drop(j);
    // A writer that crashed right after rolling leaves an empty newest segment: make one by
    // filling the last segment's remainder so the next record must roll, then kill the record.
    let (mut j, _) = Journal::open(dir.path(), small_opts()).unwrap();
    let segs_before = std::fs::read_dir(dir.path()).unwrap().count();
    let mut seq = next;
    while std::fs::read_dir(dir.path()).unwrap().count() == segs_before {
        j.append(seq * 10, kind_for(seq), 1, &payload_for(seq))
            .unwrap();
        seq += 1;
    }
    drop(j);
    // The roll happened for record seq-1, which sits alone in the newest segment; zero it.
    let newest = seg_path(dir.path(), seq - 1);
    let mut b = std::fs::read(&newest).unwrap();
    b[64..].fill(0);
    std::fs::write(&newest, b).unwrap();
    let mut r = Reader::open(dir.path()).unwrap();
    let mut n = 0;
    while r.next().unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, seq - 2);
    assert!(r.next().unwrap().is_none());
}
