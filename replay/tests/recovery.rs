//! Recovery = newest valid snapshot + replay of later inputs, and it must rebuild exactly the
//! core the session had: the same digest as the run's final checkpoint.

use std::path::Path;

use keel_engine::event::Input;
use keel_engine::{Core, Fixed, Interval, StrategyConfig, Symbol};
use keel_replay::backtest;
use keel_replay::codec::Decoded;
use keel_replay::{recover, store, synthetic};

fn run_backtest(dir: &Path, bars: usize) -> String {
    let symbol = Symbol::new("SIMUSDT").unwrap();
    let interval = Interval::parse("1m").unwrap();
    let store_dir = dir.join("store");
    store::append(
        &store_dir,
        symbol,
        interval,
        &synthetic::random_walk(symbol, bars, 7),
        |t| t.to_string(),
    )
    .unwrap();
    let spec = synthetic::spec(
        store_dir,
        dir.join("journal"),
        symbol,
        interval,
        StrategyConfig::SmaCross { fast: 5, slow: 20 },
        Fixed::parse("0.0005").unwrap(),
        Fixed::ZERO,
    );
    let outcome = backtest::run(&spec, Box::new(|_| {})).unwrap();
    assert!(
        outcome.report.trades > 5,
        "the walk should make the strategy trade"
    );
    outcome.report.digest
}

/// The core after applying the journal's inputs up to and including `last_seq`.
fn core_up_to(journal: &Path, last_seq: u64) -> Core {
    // The backtest's bars are references into its candle store, read back by RunReader.
    let mut reader = keel_replay::resolve::RunReader::open(journal, None).unwrap();
    let mut core = Core::new();
    while let Some(rec) = reader.next_record().unwrap() {
        if rec.seq > last_seq {
            break;
        }
        if let Decoded::Input(event) = rec.decoded {
            core.apply(&Input {
                seq: rec.seq,
                ts_ns: rec.ts_ns,
                event,
            });
        }
    }
    core
}

#[test]
fn recovers_from_snapshot_plus_tail_to_the_recorded_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let digest = run_backtest(tmp.path(), 3_000);
    let journal = tmp.path().join("journal");

    // No snapshot: a full replay.
    let full = recover::recover(&journal).unwrap();
    assert_eq!(full.snapshot_seq, None);
    assert_eq!(keel_engine::core::hex(&full.core.digest()), digest);

    // Two snapshots; the newer one is used, and only the tail is replayed.
    let early = core_up_to(&journal, 2_000);
    let late = core_up_to(&journal, 5_000);
    recover::snapshot(&journal, &early).unwrap();
    let late_path = recover::snapshot(&journal, &late).unwrap();
    let r = recover::recover(&journal).unwrap();
    assert_eq!(r.snapshot_seq, Some(late.state().last_seq));
    assert!(r.replayed_inputs < full.replayed_inputs);
    assert_eq!(keel_engine::core::hex(&r.core.digest()), digest);

    // A damaged newest snapshot is skipped and reported; the older one still gets there.
    let mut bytes = std::fs::read(&late_path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&late_path, bytes).unwrap();
    let r = recover::recover(&journal).unwrap();
    assert_eq!(r.snapshot_seq, Some(early.state().last_seq));
    assert_eq!(r.skipped_snapshots.len(), 1, "{:?}", r.skipped_snapshots);
    assert_eq!(keel_engine::core::hex(&r.core.digest()), digest);
}
