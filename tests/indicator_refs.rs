//! Indicators against TA-Lib 0.8.2's output on real bars (tables in tests/fixtures, made by
//! running TA-Lib itself; see tests/fixtures/NOTICE).
//!
//! Tolerance: |keel − TA-Lib| ≤ 1e-9 × max(1, |TA-Lib|), i.e. nine significant digits,
//! and both must be undefined (warm-up) on exactly the same bars.
//!
//! (Here rather than in engine/tests because it reads files, which engine/'s lint bans.)

// Reference values are quoted digit for digit from their source.
#![allow(clippy::excessive_precision)]

mod common;

use std::path::Path;

use keel_engine::indicators::{Atr, Bollinger, Ema, Macd, Rsi, Sma};

const REL_TOL: f64 = 1e-9;

struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn load(name: &str) -> Table {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        let mut lines = text.lines();
        let header = lines.next().unwrap().split(',').map(String::from).collect();
        let rows = lines
            .filter(|l| !l.is_empty())
            .map(|l| l.split(',').map(String::from).collect())
            .collect();
        Table { header, rows }
    }

    fn col(&self, name: &str) -> Vec<Option<f64>> {
        let i = self
            .header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name}"));
        self.rows
            .iter()
            .map(|r| {
                r.get(i)
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().unwrap())
            })
            .collect()
    }

    fn num(&self, name: &str) -> Vec<f64> {
        self.col(name).into_iter().map(|v| v.unwrap()).collect()
    }
}

fn compare(what: &str, got: &[Option<f64>], want: &[Option<f64>]) {
    assert_eq!(got.len(), want.len());
    let mut defined = 0;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        match (g, w) {
            (None, None) => {}
            (Some(g), Some(w)) => {
                defined += 1;
                let tol = REL_TOL * w.abs().max(1.0);
                assert!((g - w).abs() <= tol, "{what} row {i}: keel {g}, TA-Lib {w}");
            }
            _ => panic!("{what} row {i}: keel {g:?}, TA-Lib {w:?} (warm-up differs)"),
        }
    }
    assert!(
        defined > 10,
        "{what}: too few defined values to mean anything"
    );
}

fn check_table(name: &str) {
    let t = Table::load(name);
    let (high, low, close) = (t.num("high"), t.num("low"), t.num("close"));

    let mut sma = Sma::new(20);
    let got: Vec<_> = close.iter().map(|&c| sma.update(c)).collect();
    compare(&format!("{name} sma20"), &got, &t.col("talib_sma20"));

    let mut ema = Ema::new(20);
    let got: Vec<_> = close.iter().map(|&c| ema.update(c)).collect();
    compare(&format!("{name} ema20"), &got, &t.col("talib_ema20"));

    let mut rsi = Rsi::new(14);
    let got: Vec<_> = close.iter().map(|&c| rsi.update(c)).collect();
    compare(&format!("{name} rsi14"), &got, &t.col("talib_rsi14"));

    let mut bb = Bollinger::new(20, 2.0);
    let bands: Vec<_> = close.iter().map(|&c| bb.update(c)).collect();
    for (col, pick) in [
        ("talib_bb20_upper", 0),
        ("talib_bb20_middle", 1),
        ("talib_bb20_lower", 2),
    ] {
        let got: Vec<_> = bands
            .iter()
            .map(|b| b.map(|b| [b.upper, b.middle, b.lower][pick]))
            .collect();
        compare(&format!("{name} {col}"), &got, &t.col(col));
    }

    let mut macd = Macd::new(12, 26, 9);
    let m: Vec<_> = close.iter().map(|&c| macd.update(c)).collect();
    for (col, pick) in [
        ("talib_macd", 0),
        ("talib_macd_signal", 1),
        ("talib_macd_hist", 2),
    ] {
        let got: Vec<_> = m
            .iter()
            .map(|v| v.map(|v| [v.macd, v.signal, v.histogram][pick]))
            .collect();
        compare(&format!("{name} {col}"), &got, &t.col(col));
    }

    let mut atr = Atr::new(14);
    let got: Vec<_> = (0..close.len())
        .map(|i| atr.update(high[i], low[i], close[i]))
        .collect();
    compare(&format!("{name} atr14"), &got, &t.col("talib_atr14"));
}

#[test]
fn indicators_match_talib_on_btc_perp_1m_bars() {
    check_table("BTC-PERP_1m_first1000_refs.csv");
}

#[test]
fn indicators_match_talib_on_bittrex_daily_bars() {
    check_table("bittrex_btc-usdt_daily_refs.csv");
}

/// TA-Lib's own RSI(10) test vector (ta-lib-python tests/test_func.py::test_RSI).
#[test]
fn rsi_matches_talib_python_test_vector() {
    let a = 0.000_000_24;
    let b = 0.000_000_23;
    let input = [a, a, a, a, a, b, a, a, a, a, b, a, b, a, b, a, a, b, b, b];
    let want = [
        33.333333333333329,
        51.351351351351347,
        39.491916859122398,
        51.84807024709005,
        42.25953803191981,
        52.101824405061215,
        52.101824405061215,
        43.043664867691085,
        43.043664867691085,
        43.043664867691085,
    ];
    let mut rsi = Rsi::new(10);
    let got: Vec<f64> = input.iter().filter_map(|&x| rsi.update(x)).collect();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-9, "rsi {g} vs {w}");
    }
}

/// The `keel indicators` command end to end: import the bundled BTC bars, write the CSV,
/// and compare its first 1000 rows (the rows the TA-Lib table covers) column by column.
#[test]
fn keel_indicators_command_writes_talib_values() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let keel = |args: &[&str]| common::assert_ok(&common::keel(args, dir));
    common::import_bundled(dir);
    keel(&[
        "indicators",
        "--store",
        "store",
        "--symbol",
        "BTCUSDT",
        "--interval",
        "1m",
        "--indicator",
        "sma:20",
        "--indicator",
        "ema:20",
        "--indicator",
        "rsi:14",
        "--indicator",
        "bbands:20:2",
        "--indicator",
        "macd:12:26:9",
        "--indicator",
        "atr:14",
        "--out",
        "ind.csv",
    ]);
    let text = std::fs::read_to_string(dir.join("ind.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 45_031);
    let reference = Table::load("BTC-PERP_1m_first1000_refs.csv");
    for (ours, theirs) in [
        ("sma20", "talib_sma20"),
        ("ema20", "talib_ema20"),
        ("rsi14", "talib_rsi14"),
        ("bb20_2_upper", "talib_bb20_upper"),
        ("bb20_2_middle", "talib_bb20_middle"),
        ("bb20_2_lower", "talib_bb20_lower"),
        ("macd12_26_9", "talib_macd"),
        ("macd12_26_9_signal", "talib_macd_signal"),
        ("macd12_26_9_hist", "talib_macd_hist"),
        ("atr14", "talib_atr14"),
    ] {
        let i = header
            .iter()
            .position(|h| *h == ours)
            .unwrap_or_else(|| panic!("{ours}"));
        let got: Vec<Option<f64>> = rows[..1000]
            .iter()
            .map(|r| {
                Some(r[i])
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().unwrap())
            })
            .collect();
        compare(
            &format!("keel indicators {ours}"),
            &got,
            &reference.col(theirs),
        );
    }
}
