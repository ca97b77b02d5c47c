//! Resampling against an outside reference: freqtrade's XRP/ETH 5-minute bars
//! (tests/fixtures/XRP_ETH-5m.csv) must equal keel's resampling of the 1-minute bars of the
//! same market and days (XRP_ETH-1m.csv). The 1-minute file has gaps, so this also checks
//! that incomplete buckets are built from the bars that exist. Prices must match exactly;
//! volume, summed by the exchange or pandas in floating point, within 1e-9 relative.

use std::path::Path;

use keel::import::{Format, parse_file};
use keel_engine::resample::Resampler;
use keel_engine::{Interval, Symbol};

#[test]
fn resampled_1m_bars_equal_freqtrades_5m_bars() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let symbol = Symbol::new("XRPETH").unwrap();
    let one = Interval::parse("1m").unwrap();
    let five = Interval::parse("5m").unwrap();
    let minutes = parse_file(&fixtures.join("XRP_ETH-1m.csv"), Format::Csv, symbol, one).unwrap();
    let reference =
        parse_file(&fixtures.join("XRP_ETH-5m.csv"), Format::Csv, symbol, five).unwrap();
    assert!(
        !minutes.gaps.is_empty(),
        "the 1m file is expected to have gaps"
    );

    let mut r = Resampler::new(five.ns);
    let ours: Vec<_> = minutes
        .candles
        .iter()
        .flat_map(|c| r.update(c))
        .flatten()
        .collect();
    assert_eq!(ours.len(), reference.candles.len());
    for (i, (a, b)) in ours.iter().zip(&reference.candles).enumerate() {
        assert_eq!(a.open_time_ns, b.open_time_ns, "bar {i}");
        assert_eq!(a.interval_ns, b.interval_ns, "bar {i}");
        assert_eq!(
            (a.open, a.high, a.low, a.close),
            (b.open, b.high, b.low, b.close),
            "bar {i}"
        );
        let (va, vb) = (a.volume.to_f64(), b.volume.to_f64());
        assert!(
            (va - vb).abs() <= 1e-9 * vb.abs().max(1.0),
            "bar {i}: volume {va} vs {vb}"
        );
    }
}
