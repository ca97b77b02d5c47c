//! Steady state allocates nothing per candle: the full backtest path (candle journal → core
//! → simulated venue → run journal) is run over N and 2N bars of a flat market, where the
//! strategy never signals, and the allocation counts must not grow with N beyond the
//! amortised doubling of the equity curve's buffer (O(log N)).
//!
//! Its own test binary, with one test, so the counting allocator sees nothing else.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use keel_engine::{Fixed, Interval, StrategyConfig, Symbol};
use keel_replay::backtest;
use keel_replay::{store, synthetic};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by one backtest over `bars` flat one-minute bars.
fn allocations_for(bars: usize) -> u64 {
    let tmp = tempfile::tempdir().unwrap();
    let symbol = Symbol::new("FLATUSDT").unwrap();
    let interval = Interval::parse("1m").unwrap();
    let price = Fixed::from_int(100);
    let candles: Vec<_> = (0..bars)
        .map(|i| keel_engine::Candle {
            symbol,
            open_time_ns: 1_640_995_200_000_000_000 + i as i64 * interval.ns,
            interval_ns: interval.ns,
            open: price,
            high: price,
            low: price,
            close: price,
            volume: Fixed::ONE,
        })
        .collect();
    let store_dir = tmp.path().join("store");
    store::append(&store_dir, symbol, interval, &candles, |t| t.to_string()).unwrap();
    let spec = synthetic::spec(
        store_dir,
        tmp.path().join("run"),
        symbol,
        interval,
        StrategyConfig::SmaCross { fast: 5, slow: 20 },
        Fixed::ZERO,
        Fixed::ZERO,
    );
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let outcome = backtest::run(&spec, Box::new(|_| {})).unwrap();
    let used = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(outcome.report.candles as usize, bars);
    assert_eq!(outcome.report.trades, 0, "a flat market must not trade");
    used
}

#[test]
fn steady_state_allocates_nothing_per_candle() {
    // Both runs fit the run journal's first segment (1 MiB, 48 bytes a bar): a segment roll
    // allocates a few dozen times (the thread that prepares the next segment, file names),
    // once per segment (every 16 MiB, about 350,000 bars, at full size), which is not per bar.
    let n = 8_000;
    let small = allocations_for(n);
    let large = allocations_for(2 * n);
    // Doubling the bars may add a few buffer doublings, never anything per bar.
    eprintln!("allocations: {small} for {n} bars, {large} for {}", 2 * n);
    let extra = large.saturating_sub(small);
    assert!(
        extra <= 8,
        "{n} more bars cost {extra} more allocations ({small} for {n} bars, {large} for {})",
        2 * n
    );
}
