//! Crash recovery of the real binary: `keel paper` is killed with SIGKILL at random moments
//! (while starting, recovering, or trading) 20 times — set KEEL_CRASH_LOOPS for a longer run
//! — and restarted each time. After every restart no journaled record is lost, the core it
//! recovers has exactly the digest of the journal the killed process left, and the venue's
//! book agrees with the core; at the end, no order was placed twice, the journal verifies,
//! and the fills are those of an uninterrupted backtest over the same bars.

mod common;
#[path = "common/paper.rs"]
mod paper;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{KEEL, keel};
use keel_journal::Reader;
use paper::*;

const BARS: usize = 1500;

/// Every record as (seq, kind, version, timestamp, payload).
fn raw(dir: &Path) -> Vec<(u64, u16, u16, u64, Vec<u8>)> {
    let Ok(mut reader) = Reader::open(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while let Ok(Some(rec)) = reader.next() {
        out.push((rec.seq, rec.kind, rec.ver, rec.ts_ns, rec.payload.to_vec()));
    }
    out
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[test]
fn killed_at_random_moments_the_session_loses_nothing_and_trades_as_if_never_killed() {
    let loops: usize = std::env::var("KEEL_CRASH_LOOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
        .max(20);
    let dir = tempfile::tempdir().unwrap();
    let rows = bundled_rows(BARS);
    let venue = mock_venue(binance_kline_frames(&rows), Duration::from_millis(1));
    let journal = dir.path().join("session");
    let port = free_port();
    let config = dir.path().join("paper.toml");
    std::fs::write(&config, session_config(&venue.url(), &journal, port, None)).unwrap();
    let start = |n: usize| {
        let err = dir.path().join(format!("run-{n}.err"));
        let child = Command::new(KEEL)
            .args(["paper", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        (child, err)
    };
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    // What the previous killed process left: its records, and their replayed digest.
    let mut left: Vec<(u64, u16, u16, u64, Vec<u8>)> = Vec::new();
    let mut expected_digest: Option<String> = None;
    let mut resumed = 0;
    for n in 0..=loops {
        let (mut child, err) = start(n);
        if n > 0 {
            // The restarted process reports what it recovered before it trades.
            let text = wait_for(Duration::from_secs(30), || {
                let t = std::fs::read_to_string(&err).ok()?;
                (t.contains("new session") || t.contains("resumed a journal")).then_some(t)
            })
            .unwrap_or_else(|| {
                panic!(
                    "run {n} did not start: {}",
                    std::fs::read_to_string(&err).unwrap_or_default()
                )
            });
            match &expected_digest {
                None => assert!(text.contains("new session"), "run {n}: {text}"),
                Some(digest) => {
                    resumed += 1;
                    assert!(
                        text.contains(&format!("replayed digest {digest}")),
                        "run {n}: expected the journal's digest {digest}:\n{text}"
                    );
                    assert!(!text.contains("UNRECONCILED"), "run {n}: {text}");
                }
            }
        }
        if n == loops {
            // The last run trades to the end of the bars and stops cleanly.
            let done = wait_for(Duration::from_secs(60), || {
                let text = http_get(port, "/metrics")?;
                let _ = metric(&text, "keel_equity")?;
                (candles(&journal) >= BARS).then_some(())
            });
            signal(child.id(), libc::SIGTERM);
            let status = wait_for(Duration::from_secs(30), || child.try_wait().unwrap());
            let text = std::fs::read_to_string(&err).unwrap();
            assert!(
                done.is_some(),
                "the last run did not finish the bars: {text}"
            );
            assert!(status.is_some_and(|s| s.success()), "{text}");
            break;
        }
        // Let it run a random while (from before the journal opens to well into trading).
        std::thread::sleep(Duration::from_millis(20 + xorshift(&mut seed) % 700));
        signal(child.id(), libc::SIGKILL);
        let _ = child.wait();
        // Nothing journaled before the kill is gone or changed.
        let now = raw(&journal);
        assert!(now.len() >= left.len(), "run {n}: records were lost");
        assert!(
            now[..left.len()] == left[..],
            "run {n}: journaled records changed"
        );
        left = now;
        let copy = dir.path().join(format!("left-{n}"));
        if journal.is_dir() {
            dir_copy(&journal, &copy);
        }
        expected_digest = match keel_replay::verify::verify(&copy) {
            Ok(outcome) => Some(keel_engine::core::hex(&outcome.final_digest)),
            Err(_) => None, // killed before the first record
        };
        let _ = std::fs::remove_dir_all(&copy);
    }
    assert!(
        resumed >= loops / 2,
        "only {resumed} of {loops} runs resumed a journal"
    );

    // No order went out twice, and no order filled beyond its size.
    let orders = placed(&journal);
    let mut ids: Vec<u64> = orders.iter().map(|o| o.client_id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len(),
        orders.len(),
        "a client order id was placed twice"
    );
    let all_fills = fills(&journal);
    for o in &orders {
        let filled: i64 = all_fills
            .iter()
            .filter(|f| f.client_id == o.client_id)
            .map(|f| f.qty.0)
            .sum();
        assert!(filled <= o.qty.0, "order {} overfilled", o.client_id);
    }
    let verified = keel(&["replay", "verify", journal.to_str().unwrap()], dir.path());
    assert!(common::text(&verified).0.contains("0 divergences"));

    // The bars, run once as a backtest: the same fills.
    let text = std::fs::read_to_string(&config).unwrap();
    let out = backtest_over(dir.path(), &text, &rows);
    let reference = fills(&out.join("journal"));
    assert!(reference.len() >= 20, "{} fills", reference.len());
    assert_eq!(anonymous(all_fills), anonymous(reference));
}
