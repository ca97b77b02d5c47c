//! `keel venue decode` on every recorded venue payload the repository ships
//! (adapters/tests/data): each file either decodes to normalized events (exit 0, one JSON
//! object per line) or is refused with a clear reason (exit 2, "unsupported message kind" or
//! "malformed ..."), never a panic or a usage error. A few outputs are checked field by field
//! against the literals in the payload files.

mod common;

use std::path::{Path, PathBuf};

use common::{ROOT, keel, text};

/// The venue whose decoder a payload file belongs to.
fn venue_of(rel: &str) -> Option<&'static str> {
    let top = rel.split('/').next()?;
    Some(match top {
        "binance" | "binance_py" | "binance_docs" if rel.contains("futures") => "binance-usdm",
        "binance" | "binance_py" | "binance_docs" => "binance-spot",
        "bybit" | "bybit_docs" => "bybit",
        "okx" => "okx",
        "kraken" => "kraken",
        _ => return None,
    })
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

fn decode(venue: &str, file: &Path) -> (Option<i32>, Vec<serde_json::Value>, String) {
    let o = keel(
        &["venue", "decode", "--venue", venue, file.to_str().unwrap()],
        Path::new(ROOT),
    );
    let (out, err) = text(&o);
    let events = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    (o.status.code(), events, err)
}

#[test]
fn every_recorded_payload_decodes_or_is_refused_with_a_reason() {
    let data = Path::new(ROOT).join("adapters/tests/data");
    let mut all = Vec::new();
    files(&data, &mut all);
    all.sort();
    let mut decoded = std::collections::BTreeMap::<&str, (usize, usize)>::new();
    for file in &all {
        let rel = file
            .strip_prefix(&data)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let Some(venue) = venue_of(&rel) else {
            continue; // signing vectors
        };
        let (code, events, err) = decode(venue, file);
        assert!(!err.contains("panicked"), "{rel}: {err}");
        let tally = decoded.entry(venue).or_default();
        match code {
            Some(0) => {
                assert!(!events.is_empty() || err.is_empty(), "{rel}");
                for e in &events {
                    assert!(e["kind"].is_string(), "{rel}: {e}");
                }
                tally.0 += 1;
            }
            Some(2) => {
                let clear = err.contains("unsupported message kind") || err.contains("malformed");
                assert!(clear, "{rel}: unclear refusal: {err}");
                assert!(
                    err.contains(&rel),
                    "{rel}: the message names the file: {err}"
                );
                tally.1 += 1;
            }
            other => panic!("{rel}: exit {other:?}: {err}"),
        }
    }
    // Every venue decodes a good share of its recordings (counts at the time of writing:
    // binance-spot 79 of 177, binance-usdm 51 of 79, bybit 75 of 112, okx 37 of 59, kraken 20
    // of 65; the rest are requests, REST bodies that need a context, or kinds keel does not use).
    for (venue, min) in [
        ("binance-spot", 60),
        ("binance-usdm", 40),
        ("bybit", 60),
        ("okx", 30),
        ("kraken", 15),
    ] {
        let (ok, _) = decoded.get(venue).copied().unwrap_or_default();
        assert!(ok >= min, "{venue}: only {ok} files decoded: {decoded:?}");
    }
}

#[test]
fn decoded_values_are_the_venues_literals() {
    let data = Path::new(ROOT).join("adapters/tests/data");
    let one = |venue: &str, rel: &str| {
        let (code, events, err) = decode(venue, &data.join(rel));
        assert_eq!(code, Some(0), "{rel}: {err}");
        events
    };
    // Binance USD-M closed kline: o 0.001, h 0.0025, l 0.001, c 0.002, v 1000, x true.
    let e = &one(
        "binance-usdm",
        "binance/futures/market_data_json/kline_stream_closed.json",
    )[0];
    assert_eq!(
        (e["kind"].as_str(), e["close"].as_str(), e["high"].as_str()),
        (Some("candle"), Some("0.002"), Some("0.0025"))
    );
    assert_eq!(e["closed"], true);
    // Bybit kline.5.BTCUSDT: open 16649.5, close 16677, confirm false, start 1672324800000.
    let e = &one("bybit", "bybit/ws_kline.json")[0];
    assert_eq!(e["open"], "16649.5");
    assert_eq!(e["close"], "16677");
    assert_eq!(e["closed"], false);
    assert_eq!(e["open_time_ns"], 1_672_324_800_000_000_000i64);
    assert_eq!(e["interval_ns"], 300_000_000_000i64);
    // OKX trades BTC-USD: px 42219.9, sz 0.12060306, side buy, ts 1630048897897.
    let e = &one("okx", "okx/ws_trades.json")[0];
    assert_eq!(e["price"], "42219.9");
    assert_eq!(e["qty"], "0.12060306");
    assert_eq!(e["aggressor"], "buy");
    assert_eq!(e["ts_event_ns"], 1_630_048_897_897_000_000i64);
    // Kraken ohlc BTC/USD 1m begun 2023-10-04T16:25:00Z: close 106040.1, volume 30927.68066226.
    let e = &one("kraken", "kraken/ws_ohlc_update.json")[0];
    assert_eq!(e["symbol"], "BTC/USD");
    assert_eq!(e["close"], "106040.1");
    assert_eq!(e["volume"], "30927.68066226");
    assert_eq!(e["open_time_ns"], 1_696_436_700_000_000_000i64);
}

#[test]
fn garbage_and_unknown_venues_are_refused_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, b"\xff\xfe not json at all {").unwrap();
    for venue in ["binance-spot", "binance-usdm", "bybit", "okx", "kraken"] {
        let (code, events, err) = decode(venue, &bad);
        assert_eq!(code, Some(2), "{venue}: {err}");
        assert!(events.is_empty());
        assert!(
            err.contains("bad.json") && !err.contains("panicked"),
            "{err}"
        );
    }
    let o = keel(
        &["venue", "decode", "--venue", "ftx", bad.to_str().unwrap()],
        tmp.path(),
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("unknown venue") && err.contains("binance-spot"),
        "{err}"
    );
    let missing = keel(
        &["venue", "decode", "--venue", "okx", "nope.json"],
        tmp.path(),
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing).1.contains("nope.json"));
}
