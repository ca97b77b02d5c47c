//! Helpers shared by the integration tests.
#![allow(dead_code)]

use keel_journal::{Durability, Journal, JournalError, Options, Reader};
use std::path::Path;

/// Small segments so tests roll often.
pub fn small_opts() -> Options {
    Options {
        segment_size: 4096,
        durability: Durability::None,
        schema_version: 3,
        pretouch: true,
        sync_on_roll: true,
        grow_segments: true,
    }
}

/// The payload of record `seq`: length and bytes are a pure function of seq.
pub fn payload_for(seq: u64) -> Vec<u8> {
    let len = (seq.wrapping_mul(2_654_435_761) % 301) as usize;
    (0..len)
        .map(|i| (seq as u8).wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

pub fn kind_for(seq: u64) -> u16 {
    (seq % 7) as u16
}

/// Appends records `from..=to` with `payload_for`.
pub fn append_range(j: &mut Journal, from: u64, to: u64) {
    for seq in from..=to {
        let got = j
            .append(seq * 10, kind_for(seq), 1, &payload_for(seq))
            .expect("append");
        assert_eq!(got, seq);
    }
}

/// Reads the whole journal and checks every record equals `payload_for(seq)`; returns the count.
pub fn check_all(reader: &mut Reader) -> Result<u64, JournalError> {
    let mut n = 0;
    while let Some(r) = reader.next()? {
        n += 1;
        assert_eq!(r.seq, n, "records must be gap-free from 1");
        assert_eq!(
            r.payload,
            payload_for(r.seq).as_slice(),
            "payload of seq {}",
            r.seq
        );
        assert_eq!(r.kind, kind_for(r.seq));
        assert_eq!(r.ts_ns, r.seq * 10);
        assert_eq!(
            r.payload.as_ptr() as usize % 8,
            0,
            "payload must be 8-byte aligned"
        );
    }
    Ok(n)
}

pub fn seg_path(dir: &Path, base: u64) -> std::path::PathBuf {
    dir.join(format!("{base:020}.seg"))
}
