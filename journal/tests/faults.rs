//! Fault injection without a real crash: power loss on MemStorage, failed flushes and segment
//! creation and bit flips on FaultyStorage, interval durability.

mod common;

use common::*;
use keel_journal::storage::Storage;
use keel_journal::{
    Durability, FaultyStorage, Journal, JournalError, MemStorage, Options, Reader,
    verify_with_storage,
};
use std::path::Path;
use std::sync::Arc;

fn dir() -> &'static Path {
    Path::new("/journal")
}

fn read_all(storage: Arc<dyn Storage>) -> u64 {
    check_all(&mut Reader::open_with_storage(storage, dir(), 0).unwrap()).unwrap()
}

#[test]
fn power_loss_keeps_a_valid_prefix_with_every_record_synced_before_it() {
    for seed in 0..200u64 {
        let mem = MemStorage::new();
        let (mut j, _) = Journal::open_with_storage(mem.clone(), dir(), small_opts()).unwrap();
        let synced_upto = 20 + seed % 90;
        append_range(&mut j, 1, synced_upto);
        j.sync().unwrap();
        append_range(&mut j, synced_upto + 1, synced_upto + 1 + seed % 37);
        let crashed: Arc<dyn Storage> = mem.crash(Some(seed));
        drop(j);
        let (mut j, rec) = Journal::open_with_storage(crashed.clone(), dir(), small_opts())
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(
            rec.last_seq >= synced_upto,
            "seed {seed}: lost synced records"
        );
        append_range(&mut j, rec.last_seq + 1, rec.last_seq + 5);
        drop(j);
        assert_eq!(read_all(crashed), rec.last_seq + 5, "seed {seed}");
    }
}

#[test]
fn power_loss_without_any_unflushed_bytes_loses_exactly_the_unsynced_records() {
    let mem = MemStorage::new();
    let (mut j, _) = Journal::open_with_storage(mem.clone(), dir(), small_opts()).unwrap();
    append_range(&mut j, 1, 10);
    j.sync().unwrap();
    append_range(&mut j, 11, 12);
    let crashed: Arc<dyn Storage> = mem.crash(None);
    let (_, rec) = Journal::open_with_storage(crashed, dir(), small_opts()).unwrap();
    assert_eq!(rec.last_seq, 10);
}

#[test]
fn every_record_durability_survives_power_loss_of_everything_appended() {
    let mem = MemStorage::new();
    let opts = Options {
        durability: Durability::EveryRecord,
        ..small_opts()
    };
    let (mut j, _) = Journal::open_with_storage(mem.clone(), dir(), opts).unwrap();
    append_range(&mut j, 1, 77);
    let (_, rec) = Journal::open_with_storage(mem.crash(None), dir(), opts).unwrap();
    assert_eq!(rec.last_seq, 77);
}

#[test]
fn interval_durability_syncs_in_the_background_while_appends_pause() {
    let mem = MemStorage::new();
    let opts = Options {
        durability: Durability::IntervalMs(5),
        ..small_opts()
    };
    let (mut j, _) = Journal::open_with_storage(mem.clone(), dir(), opts).unwrap();
    append_range(&mut j, 1, 7);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while j.background_flushes() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let (_, rec) = Journal::open_with_storage(mem.crash(None), dir(), opts).unwrap();
    assert_eq!(
        rec.last_seq, 7,
        "no explicit sync, yet everything is durable"
    );
}

#[test]
fn failed_flush_poisons_the_journal_and_is_never_retried() {
    let faulty = FaultyStorage::new(MemStorage::new());
    let (mut j, _) = Journal::open_with_storage(faulty.clone(), dir(), small_opts()).unwrap();
    append_range(&mut j, 1, 5);
    faulty.fail_next_flush();
    let err = j.sync().unwrap_err();
    assert!(matches!(err, JournalError::Poisoned { .. }), "{err}");
    let flushes = faulty.flush_count();
    assert!(matches!(
        j.append(0, 0, 0, b"x"),
        Err(JournalError::Poisoned { .. })
    ));
    assert!(matches!(j.sync(), Err(JournalError::Poisoned { .. })));
    assert_eq!(
        faulty.flush_count(),
        flushes,
        "no flush retried after the failure"
    );
    assert_eq!(j.next_seq(), 6);
}

#[test]
fn failed_interval_flush_poisons_the_next_append() {
    let faulty = FaultyStorage::new(MemStorage::new());
    let opts = Options {
        durability: Durability::IntervalMs(2),
        ..small_opts()
    };
    let (mut j, _) = Journal::open_with_storage(faulty.clone(), dir(), opts).unwrap();
    faulty.fail_next_flush();
    append_range(&mut j, 1, 3);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match j.append(0, 0, 0, b"y") {
            Err(JournalError::Poisoned { reason }) => {
                assert!(reason.contains("injected"), "{reason}");
                break;
            }
            Err(e) => panic!("{e}"),
            Ok(_) => assert!(std::time::Instant::now() < deadline, "never poisoned"),
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

#[test]
fn failed_segment_creation_errors_cleanly_and_a_later_append_succeeds() {
    let faulty = FaultyStorage::new(MemStorage::new());
    let (mut j, _) = Journal::open_with_storage(faulty.clone(), dir(), small_opts()).unwrap();
    let mut seq = 1;
    // Fill the first segment, then make the roll fail.
    while faulty
        .list(dir())
        .unwrap()
        .iter()
        .filter(|n| n.ends_with(".seg"))
        .count()
        == 1
    {
        faulty.fail_next_create();
        match j.append(seq * 10, kind_for(seq), 1, &payload_for(seq)) {
            Ok(_) => seq += 1,
            Err(e) => {
                assert!(
                    matches!(
                        e,
                        JournalError::Io {
                            op: "create segment",
                            ..
                        }
                    ),
                    "{e}"
                );
                assert_eq!(j.next_seq(), seq, "nothing appended");
                // The condition is transient (disk freed): the same append now succeeds.
                assert_eq!(
                    j.append(seq * 10, kind_for(seq), 1, &payload_for(seq))
                        .unwrap(),
                    seq
                );
                seq += 1;
            }
        }
    }
    drop(j);
    assert_eq!(read_all(faulty), seq - 1);
}

#[test]
fn failed_sync_of_a_new_segment_header_poisons_the_journal() {
    let faulty = FaultyStorage::new(MemStorage::new());
    let (mut j, _) = Journal::open_with_storage(faulty.clone(), dir(), small_opts()).unwrap();
    faulty.fail_next_sync_dir();
    let mut result = Ok(0);
    for seq in 1..200 {
        result = j.append(seq * 10, kind_for(seq), 1, &payload_for(seq));
        if result.is_err() {
            break;
        }
    }
    assert!(
        matches!(result, Err(JournalError::Poisoned { .. })),
        "{result:?}"
    );
    assert!(j.append(0, 0, 0, b"").is_err());
}

#[test]
fn bit_flips_anywhere_in_records_are_detected() {
    let mem = MemStorage::new();
    let faulty = FaultyStorage::new(mem.clone());
    let (mut j, _) = Journal::open_with_storage(faulty.clone(), dir(), small_opts()).unwrap();
    append_range(&mut j, 1, 8);
    drop(j);
    let seg = seg_path(dir(), 1);
    let used = verify_with_storage(faulty.as_ref(), dir()).unwrap();
    assert_eq!(used.records, 8);
    let image = mem.read_live(&seg).unwrap();
    let end = (64..image.len()).rev().find(|&i| image[i] != 0).unwrap();
    for offset in 0..=end {
        for bit in [0u8, 5] {
            faulty.flip_bit(&seg, offset, bit).unwrap();
            let res = verify_with_storage(faulty.as_ref(), dir());
            let detected = match &res {
                Err(JournalError::Corrupt { .. }) => true,
                Ok(r) => r.torn_tail.is_some(), // a flip in the final record
                Err(e) => panic!("{e}"),
            };
            assert!(detected, "flip at {offset} bit {bit} undetected");
            faulty.flip_bit(&seg, offset, bit).unwrap();
        }
    }
}

#[test]
fn partial_write_of_the_last_record_is_truncated_on_open() {
    let mem = MemStorage::new();
    let faulty = FaultyStorage::new(mem.clone());
    let (mut j, _) = Journal::open_with_storage(faulty.clone(), dir(), small_opts()).unwrap();
    append_range(&mut j, 1, 3);
    drop(j);
    let seg = seg_path(dir(), 1);
    let image = mem.read_live(&seg).unwrap();
    let last_end = (64..image.len()).rev().find(|&i| image[i] != 0).unwrap() + 1;
    faulty.zero_range(&seg, last_end - 5, 5).unwrap();
    let (_, rec) = Journal::open_with_storage(faulty.clone(), dir(), small_opts()).unwrap();
    assert_eq!(rec.last_seq, 2);
    assert!(rec.truncated.is_some());
}

#[test]
fn mem_storage_lock_refuses_a_second_writer_until_the_first_drops() {
    let mem = MemStorage::new();
    let (j, _) = Journal::open_with_storage(mem.clone(), dir(), small_opts()).unwrap();
    assert!(matches!(
        Journal::open_with_storage(mem.clone(), dir(), small_opts()).err(),
        Some(JournalError::Locked { .. })
    ));
    drop(j);
    assert!(Journal::open_with_storage(mem, dir(), small_opts()).is_ok());
}

#[test]
fn rolls_sync_the_full_segment_unless_told_not_to() {
    // Default: rolling to a new segment flushes the full one first (so only the last segment
    // can be torn); a disposable journal (sync_on_roll = false) does not wait for that flush
    // (a background thread starts it at the roll), and an explicit sync waits for those and
    // makes everything durable, the new segments' headers and directory entries included.
    // Either way each full segment's data is flushed exactly once.
    for sync_on_roll in [true, false] {
        let mem = MemStorage::new();
        let faulty = FaultyStorage::new(mem.clone());
        let opts = Options {
            sync_on_roll,
            ..small_opts()
        };
        let (mut j, _) = Journal::open_with_storage(faulty.clone(), dir(), opts).unwrap();
        let before = faulty.flush_count();
        append_range(&mut j, 1, 400); // 4 KiB segments: several rolls
        let segments = mem
            .list(dir())
            .unwrap()
            .iter()
            .filter(|n| n.ends_with(".seg"))
            .count() as u64;
        assert!(segments > 2, "the test needs rolls");
        let during = faulty.flush_count() - before;
        // With sync_on_roll a roll flushes the full segment, then the new one's header,
        // before it returns; without, the full segment's flush runs in the background (it
        // may not have happened yet) and the header waits for `sync`.
        let rolls = segments - 1;
        if sync_on_roll {
            assert_eq!(during, 2 * rolls);
        } else {
            assert!(during <= rolls, "{during}");
        }
        j.sync().unwrap();
        let per_roll = if sync_on_roll { 2 } else { 1 };
        assert_eq!(
            faulty.flush_count() - before,
            per_roll * rolls + 1,
            "sync_on_roll {sync_on_roll}: each full segment once, then the last one"
        );
        let (_, rec) = Journal::open_with_storage(mem.crash(None), dir(), opts).unwrap();
        assert_eq!(rec.last_seq, 400);
    }
}

#[test]
fn the_next_segment_is_prepared_in_the_background_and_never_left_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let names = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    let prepared = tmp.path().join("next.seg.tmp");
    let opts = Options {
        segment_size: 64 << 10,
        ..small_opts()
    };
    let (mut j, _) = Journal::open(tmp.path(), opts).unwrap();
    // Past the half of the first 64 KiB segment (about 180 records), the next one is being
    // made; 250 records (about 45 KiB) still fit the first.
    append_range(&mut j, 1, 250);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !prepared.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            names(tmp.path())
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // Rolls take the prepared segment; what is left unused is removed when the writer goes.
    assert_eq!(
        names(tmp.path()).len(),
        3,
        "LOCK, a segment and the prepared one"
    );
    append_range(&mut j, 251, 2000);
    j.sync().unwrap();
    drop(j);
    let left = names(tmp.path());
    assert!(left.iter().all(|n| !n.ends_with(".tmp")), "{left:?}");
    assert!(left.iter().filter(|n| n.ends_with(".seg")).count() > 2);
    assert_eq!(
        check_all(&mut Reader::open(tmp.path()).unwrap()).unwrap(),
        2000
    );
    // One left by a process that died before using it is removed by recovery at open.
    std::fs::write(&prepared, vec![7u8; 4096]).unwrap();
    let (mut j, rec) = Journal::open(tmp.path(), opts).unwrap();
    assert_eq!(rec.last_seq, 2000);
    assert!(!prepared.exists());
    append_range(&mut j, 2001, 3000);
    drop(j);
    assert_eq!(
        check_all(&mut Reader::open(tmp.path()).unwrap()).unwrap(),
        3000
    );
}

#[test]
fn segments_grow_from_a_sixteenth_to_the_configured_size() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = Options {
        segment_size: 4 << 20,
        ..small_opts()
    };
    let sizes = |d: &Path| -> Vec<u64> {
        let mut v: Vec<(String, u64)> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
            .map(|e| {
                (
                    e.file_name().into_string().unwrap(),
                    e.metadata().unwrap().len(),
                )
            })
            .collect();
        v.sort();
        v.into_iter().map(|(_, n)| n).collect()
    };
    let (mut j, _) = Journal::open(tmp.path(), opts).unwrap();
    append_range(&mut j, 1, 60_000); // about 10 MiB
    // A frame bigger than any segment is refused.
    assert!(matches!(
        j.append(5, 1, 1, &vec![0u8; 5 << 20]),
        Err(JournalError::RecordTooLarge { .. })
    ));
    j.sync().unwrap();
    drop(j);
    let s = sizes(tmp.path());
    assert_eq!(&s[..3], &[1 << 20, 2 << 20, 4 << 20], "{s:?}");
    assert!(s[3..].iter().all(|&n| n == 4 << 20), "{s:?}");
    assert_eq!(
        check_all(&mut Reader::open(tmp.path()).unwrap()).unwrap(),
        60_000
    );
    // A first frame bigger than the 1 MiB first segment: that empty segment is replaced by
    // a bigger one with the same first seq.
    let other = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(other.path(), opts).unwrap();
    let big = vec![0x5au8; 1_500_000];
    assert_eq!(j.append(5, 1, 1, &big).unwrap(), 1);
    assert_eq!(j.append(5, 1, 1, b"after").unwrap(), 2);
    drop(j);
    assert_eq!(sizes(other.path()), [2 << 20]);
    let mut r = Reader::open(other.path()).unwrap();
    assert_eq!(r.next().unwrap().unwrap().payload, &big[..]);
    assert_eq!(r.next().unwrap().unwrap().payload, b"after");
    assert!(r.next().unwrap().is_none());
    // Without growth, the first segment has the full size.
    let fixed = tempfile::tempdir().unwrap();
    let no_growth = Options {
        grow_segments: false,
        ..opts
    };
    let (mut j, _) = Journal::open(fixed.path(), no_growth).unwrap();
    append_range(&mut j, 1, 10);
    drop(j);
    assert_eq!(sizes(fixed.path()), [4 << 20]);
    // Reopened, the journal carries on at full size.
    let (mut j, rec) = Journal::open(tmp.path(), opts).unwrap();
    assert_eq!(rec.last_seq, 60_000);
    append_range(&mut j, 60_001, 90_000);
    // Frames over half a full segment, where its next one starts being prepared.
    let half_plus = vec![0xa5u8; 3 << 20];
    for seq in 90_001..90_004 {
        assert_eq!(j.append(5, 1, 1, &half_plus).unwrap(), seq);
    }
    append_range(&mut j, 90_004, 100_000);
    drop(j);
    assert!(sizes(tmp.path())[3..].iter().all(|&n| n == 4 << 20));
    let mut r = Reader::from_seq(tmp.path(), 90_001).unwrap();
    for seq in 90_001..90_004 {
        let rec = r.next().unwrap().unwrap();
        assert_eq!((rec.seq, rec.payload), (seq, &half_plus[..]));
    }
    let mut n = 0;
    while let Some(rec) = r.next().unwrap() {
        assert_eq!(rec.payload, &payload_for(rec.seq)[..]);
        n += 1;
    }
    assert_eq!(n, 100_000 - 90_003);
}
