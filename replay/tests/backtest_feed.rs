//! The backtest reads its candle store on a thread of its own and hands bars over in batches.
//! What that must not change: every bar arrives once, in order (the run equals one fed by a
//! single-threaded reader, bar for bar), and a damaged store stops the run with the store's
//! error, naming the segment and offset, instead of hanging or ending the run early as if the
//! data had ended.

use keel_engine::{Fixed, Interval, StrategyConfig, Symbol};
use keel_replay::backtest;
use keel_replay::store::{self, CandleCursor};
use keel_replay::synthetic;

const BARS: usize = 20_000; // several of the feed's 4,096-bar batches

fn setup(tmp: &std::path::Path) -> backtest::BacktestSpec {
    let symbol = Symbol::new("SIMUSDT").unwrap();
    let interval = Interval::parse("1m").unwrap();
    let bars = synthetic::random_walk(symbol, BARS, 11);
    store::append(&tmp.join("store"), symbol, interval, &bars, |t| {
        t.to_string()
    })
    .unwrap();
    synthetic::spec(
        tmp.join("store"),
        tmp.join("run"),
        symbol,
        interval,
        StrategyConfig::SmaCross { fast: 5, slow: 20 },
        Fixed::parse("0.0005").unwrap(),
        Fixed::ZERO,
    )
}

#[test]
fn every_bar_arrives_once_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = setup(tmp.path());
    let outcome = backtest::run(&spec, Box::new(|_| {})).unwrap();
    assert_eq!(outcome.report.candles as usize, BARS);
    assert!(outcome.report.trades > 10, "the test needs trades");
    // The equity curve has one point per bar, at each bar's close, as the store holds them.
    let mut cursor =
        CandleCursor::open(&spec.store, spec.symbols[0], spec.interval, None, None).unwrap();
    let mut closes = Vec::new();
    while let Some(c) = cursor.next_candle().unwrap() {
        closes.push(c.close_time_ns());
    }
    let points: Vec<i64> = outcome.curve.points.iter().map(|p| p.0).collect();
    assert_eq!(points, closes);
}

#[test]
fn a_damaged_store_stops_the_run_with_the_segment_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = setup(tmp.path());
    let dir = store::series_dir(&spec.store, spec.symbols[0], spec.interval);
    let segment = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .unwrap();
    // Bar 15,000's payload (64-byte segment header, 120-byte frames): in the feed's fourth
    // batch, so the reader thread hits it after the run has started.
    let offset = 64 + 15_000 * 120 + 40;
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[offset] ^= 0x10;
    std::fs::write(&segment, bytes).unwrap();
    let err = match backtest::run(&spec, Box::new(|_| {})) {
        Ok(o) => panic!("ran {} bars over a damaged store", o.report.candles),
        Err(e) => e.to_string(),
    };
    let name = segment.file_name().unwrap().to_string_lossy().to_string();
    assert!(err.contains(&name), "{err}");
    assert!(err.contains(&(64 + 15_000 * 120).to_string()), "{err}");
}
