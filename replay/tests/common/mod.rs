//! What the replay tests share: the bundled real candles.
#![allow(dead_code)] // each test file uses what it needs

use std::path::Path;

use keel_engine::{Candle, Fixed, Symbol};

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm; the same
/// as `keel_adapters::civil`, which this crate does not depend on).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The first `n` bars of the bundled real BTC-PERP 1m file (`data/NOTICE`).
pub fn real_candles(symbol: Symbol, n: usize) -> Vec<Candle> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/btc-perp-20211231-20220201_1m.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .skip(1)
        .take(n)
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let (date, time) = f[0].split_once(' ').unwrap();
            let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
            let t: Vec<i64> = time[..8].split(':').map(|x| x.parse().unwrap()).collect();
            let secs = days_from_civil(d[0], d[1], d[2]) * 86_400 + t[0] * 3600 + t[1] * 60 + t[2];
            let px = |s: &str| Fixed::parse(s).unwrap();
            Candle {
                symbol,
                open_time_ns: secs * 1_000_000_000,
                interval_ns: 60_000_000_000,
                open: px(f[1]),
                high: px(f[2]),
                low: px(f[3]),
                close: px(f[4]),
                volume: px(f[5]),
            }
        })
        .collect()
}
