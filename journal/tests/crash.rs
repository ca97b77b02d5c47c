//! kill -9 crash loop: a child process (this test binary, re-executed) appends continuously and
//! is killed at random moments; after every kill the journal must open, hold a gap-free prefix
//! 1..=N of records equal to `payload_for(seq)`, verify its chain, and N must cover every seq the
//! child reported as appended. The child reopens each time, so recovery runs after every kill.

mod common;

use common::*;
use keel_journal::{Journal, Options, Reader, verify};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const DIR_ENV: &str = "KEEL_CRASH_CHILD_DIR";

fn opts() -> Options {
    Options {
        segment_size: 64 * 1024,
        ..small_opts()
    }
}

/// The child half: runs only when re-executed by the parent with `DIR_ENV` set.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(DIR_ENV) else {
        return;
    };
    let (mut j, _) = Journal::open(dir.as_ref(), opts()).expect("child open");
    let mut out = std::io::stdout().lock();
    loop {
        let seq = j.next_seq();
        j.append(seq * 10, kind_for(seq), 1, &payload_for(seq))
            .expect("child append");
        // Report only after append returned: the parent may demand this record.
        writeln!(out, "{seq}").expect("stdout");
        out.flush().expect("stdout");
        if seq % 4 == 0 {
            // Bound the journal's growth so the whole loop stays fast.
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[test]
fn journal_survives_repeated_sigkill_of_an_appending_process() {
    let seed = std::env::var("KEEL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("crash loop seed {seed} (rerun with KEEL_CRASH_SEED={seed})");
    let mut rng = seed;
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut torn_tails = 0;
    let mut checked = 0u64;
    for iteration in 0..60 {
        let mut child = Command::new(&exe)
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(DIR_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let reported = Arc::new(AtomicU64::new(0));
        let stdout = child.stdout.take().unwrap();
        let r = reported.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(seq) = line.trim().parse::<u64>() {
                    r.fetch_max(seq, Ordering::SeqCst);
                }
            }
        });
        std::thread::sleep(Duration::from_micros(3_000 + splitmix(&mut rng) % 25_000));
        // SAFETY: plain kill(2) of our own child by pid.
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
        assert_eq!(rc, 0);
        child.wait().unwrap();
        reader.join().unwrap();
        let reported = reported.load(Ordering::SeqCst);

        let (j, rec) = Journal::open(dir.path(), opts())
            .unwrap_or_else(|e| panic!("iteration {iteration}, seed {seed}: {e}"));
        torn_tails += usize::from(rec.truncated.is_some());
        assert!(
            rec.last_seq >= reported,
            "iteration {iteration}, seed {seed}: journal ends at {} but the child reported {reported}",
            rec.last_seq
        );
        drop(j);
        // Opening already validated every frame and the whole chain; compare the contents of
        // the records that are new since the last iteration (all of them again at the end).
        let mut r = Reader::from_seq(dir.path(), checked + 1).unwrap();
        while let Some(rec) = r.next().unwrap() {
            assert_eq!(rec.seq, checked + 1, "iteration {iteration}, seed {seed}");
            assert_eq!(
                rec.payload,
                payload_for(rec.seq).as_slice(),
                "seq {}",
                rec.seq
            );
            checked = rec.seq;
        }
        assert_eq!(checked, rec.last_seq, "iteration {iteration}, seed {seed}");
    }
    let n = check_all(&mut Reader::open(dir.path()).unwrap()).unwrap();
    let v = verify(dir.path()).unwrap();
    assert_eq!((v.records, v.torn_tail), (n, None));
    println!(
        "crash loop: 60 kills, {} records in {} segments, {torn_tails} torn tails truncated",
        v.records, v.segments
    );
    assert!(v.segments > 1, "segments must roll under kill");
}
