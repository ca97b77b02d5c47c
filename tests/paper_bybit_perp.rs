//! A paper session on a second venue and market type: Bybit linear perpetual klines (the mock
//! speaking Bybit's v5 dialect), 3x leverage, long and short — the same fills as the backtest
//! over the same bars.

mod common;
#[path = "common/paper.rs"]
mod paper;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::KEEL;
use keel_adapters::mock::ws::{MockWsConfig, MockWsVenue};
use keel_adapters::model::Venue;
use keel_engine::event::Side;
use paper::*;

/// Bybit v5 `kline.1.BTCUSDT` frames for the Binance-format frames' bars: an update, then the
/// confirmed bar.
fn bybit_frames(rows: &[String]) -> Vec<String> {
    binance_kline_frames(rows)
        .iter()
        .map(|f| {
            let v: serde_json::Value = serde_json::from_str(f).unwrap();
            let k = &v["data"]["k"];
            let start = k["t"].as_i64().unwrap();
            serde_json::json!({
                "topic": "kline.1.BTCUSDT", "type": "snapshot", "ts": v["data"]["E"],
                "data": [{"start": start, "end": start + 59_999, "interval": "1",
                          "open": k["o"], "close": k["c"], "high": k["h"], "low": k["l"],
                          "volume": k["v"], "turnover": "0", "confirm": k["x"],
                          "timestamp": v["data"]["E"]}]
            })
            .to_string()
        })
        .collect()
}

#[test]
fn a_bybit_perpetual_paper_session_trades_long_and_short_like_the_backtest() {
    let dir = tempfile::tempdir().unwrap();
    let rows = bundled_rows(600);
    let mut cfg = MockWsConfig::new(Venue::Bybit, bybit_frames(&rows));
    cfg.frame_every = Duration::from_millis(2);
    let ws = MockWsVenue::start(cfg).unwrap();
    let journal = dir.path().join("session");
    let port = free_port();
    let config = dir.path().join("paper.toml");
    let text = session_config(&ws.url(), &journal, port, None)
        .replace(
            "name = \"binance-spot\"",
            "name = \"bybit\"\ncategory = \"linear\"",
        )
        .replace(
            "[venue]",
            "[market]\ntype = \"perpetual\"\nleverage = 3\ndirection = \"long_short\"\n\n[venue]",
        );
    std::fs::write(&config, &text).unwrap();
    let err = dir.path().join("paper.err");
    let mut child = Command::new(KEEL)
        .args(["paper", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let done = wait_for(Duration::from_secs(60), || {
        (candles(&journal) >= 600).then_some(())
    });
    signal(child.id(), libc::SIGTERM);
    let status = wait_for(Duration::from_secs(30), || child.try_wait().unwrap());
    let stderr = std::fs::read_to_string(&err).unwrap();
    assert!(done.is_some(), "{stderr}");
    assert!(status.is_some_and(|s| s.success()), "{stderr}");
    assert!(ws.violations().is_empty(), "{:?}", ws.violations());

    let out = backtest_over(dir.path(), &text, &rows);
    let paper_fills = fills(&journal);
    // Shorts happened: some position went below zero.
    let mut net = 0i64;
    let mut went_short = false;
    for f in &paper_fills {
        net += if f.side == Side::Buy {
            f.qty.0
        } else {
            -f.qty.0
        };
        went_short |= net < 0;
    }
    assert!(went_short, "the session never sold short");
    assert_eq!(
        anonymous(paper_fills),
        anonymous(fills(&out.join("journal")))
    );
}
