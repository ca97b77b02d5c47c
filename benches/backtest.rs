//! Full backtest path: candle journal → core with the strategy → simulated venue → every
//! input and decision journaled → report. Measured over 1,000,000 synthetic one-minute bars
//! (a seeded random walk, so the strategy trades), in bars per second; and each of the six
//! strategies over one year of one-minute bars (525,600).
//!
//! Run: `cargo bench --bench backtest`.

use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use keel_engine::{Fixed, Interval, StrategyConfig, Symbol};
use keel_replay::backtest::{self, BacktestSpec};
use keel_replay::{store, synthetic};

const BARS: usize = 1_000_000;

const YEAR: usize = 525_600;

fn spec(dir: &std::path::Path, run: &str) -> BacktestSpec {
    spec_with(
        dir,
        run,
        StrategyConfig::SmaCross {
            fast: 20,
            slow: 100,
        },
    )
}

fn spec_with(dir: &std::path::Path, run: &str, strategy: StrategyConfig) -> BacktestSpec {
    synthetic::spec(
        dir.join("store"),
        dir.join(run),
        Symbol::new("SIMUSDT").unwrap(),
        Interval::parse("1m").unwrap(),
        strategy,
        Fixed::parse("0.0005").unwrap(),
        Fixed::parse("0.0001").unwrap(),
    )
}

fn full_path(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let base = spec(tmp.path(), "unused");
    let bars = synthetic::random_walk(base.symbols[0], BARS, 42);
    store::append(&base.store, base.symbols[0], base.interval, &bars, |t| {
        t.to_string()
    })
    .unwrap();
    drop(bars);

    let mut group = c.benchmark_group("backtest");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(BARS as u64));
    let mut n = 0u64;
    group.bench_function("sma_cross_1m_bars", |b| {
        b.iter_batched(
            || {
                // Clean up the previous run here, outside the measured routine.
                let _ = std::fs::remove_dir_all(tmp.path().join(format!("run{n}")));
                n += 1;
                spec(tmp.path(), &format!("run{n}"))
            },
            |s| {
                let outcome = backtest::run(&s, Box::new(|_| {})).unwrap();
                assert!(outcome.report.trades > 0);
                outcome.report.candles
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// Each strategy over a year of one-minute bars; the goal is under 0.5 s per run.
fn year_per_strategy(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let base = spec(tmp.path(), "unused");
    let bars = synthetic::random_walk(base.symbols[0], YEAR, 7);
    store::append(&base.store, base.symbols[0], base.interval, &bars, |t| {
        t.to_string()
    })
    .unwrap();
    drop(bars);
    let f = |s: &str| Fixed::parse(s).unwrap();
    let strategies = [
        StrategyConfig::SmaCross {
            fast: 20,
            slow: 100,
        },
        StrategyConfig::EmaCross { fast: 12, slow: 26 },
        StrategyConfig::Rsi {
            period: 14,
            oversold: 30.0,
            overbought: 70.0,
        },
        StrategyConfig::Bollinger { period: 20, k: 2.0 },
        StrategyConfig::Macd {
            fast: 12,
            slow: 26,
            signal: 9,
        },
        StrategyConfig::Grid {
            lower: Fixed::ZERO,
            upper: Fixed::ZERO,
            range_pct: f("0.5"),
            levels: 50,
            exit_pct: f("0.1"),
        },
    ];
    let mut group = c.benchmark_group("year_of_1m");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(YEAR as u64));
    let mut n = 0u64;
    for strategy in strategies {
        group.bench_function(strategy.name(), |b| {
            b.iter_batched(
                || {
                    let _ = std::fs::remove_dir_all(tmp.path().join(format!("run{n}")));
                    n += 1;
                    spec_with(tmp.path(), &format!("run{n}"), strategy.clone())
                },
                |s| {
                    let outcome = backtest::run(&s, Box::new(|_| {})).unwrap();
                    assert!(outcome.report.orders_placed > 0, "{}", strategy.name());
                    outcome.report.candles
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, full_path, year_per_strategy);
criterion_main!(benches);
