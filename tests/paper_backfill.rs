//! Candles the WebSocket stream missed (a disconnect) are fetched over the venue's REST API and
//! applied in order before the next live one, so the session trades exactly as the backtest
//! over every bar does.

mod common;
#[path = "common/paper.rs"]
mod paper;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::KEEL;
use keel_adapters::mock::{MockBar, MockConfig, MockVenue};
use keel_adapters::model::Venue;
use keel_engine::event::Event;
use paper::*;

#[test]
fn missed_candles_are_backfilled_over_rest_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let rows = bundled_rows(300);
    // The stream never sends bars 100..110 (as if the connection was down for ten minutes).
    let live: Vec<String> = rows
        .iter()
        .enumerate()
        .filter(|(i, _)| !(100..110).contains(i))
        .map(|(_, r)| r.clone())
        .collect();
    let ws = mock_venue(binance_kline_frames(&live), Duration::from_millis(2));
    // The REST side has every bar.
    let frames = binance_kline_frames(&rows);
    let bars: Vec<MockBar> = frames
        .iter()
        .skip(1)
        .step_by(2)
        .map(|f| {
            let v: serde_json::Value = serde_json::from_str(f).unwrap();
            let k = &v["data"]["k"];
            MockBar {
                open_time_ms: k["t"].as_i64().unwrap(),
                open: k["o"].as_str().unwrap().into(),
                high: k["h"].as_str().unwrap().into(),
                low: k["l"].as_str().unwrap().into(),
                close: k["c"].as_str().unwrap().into(),
                volume: k["v"].as_str().unwrap().into(),
            }
        })
        .collect();
    let rest =
        MockVenue::start(MockConfig::new(Venue::BinanceSpot, "BTCUSDT", 60_000, bars)).unwrap();
    let journal = dir.path().join("session");
    let port = free_port();
    let config = dir.path().join("paper.toml");
    let text = session_config(&ws.url(), &journal, port, None).replace(
        "[session]",
        &format!("rest_url = \"{}\"\n\n[session]", rest.url()),
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
        (candles(&journal) >= 300).then_some(())
    });
    signal(child.id(), libc::SIGTERM);
    let status = wait_for(Duration::from_secs(30), || child.try_wait().unwrap());
    let stderr = std::fs::read_to_string(&err).unwrap();
    assert!(done.is_some(), "{stderr}");
    assert!(status.is_some_and(|s| s.success()), "{stderr}");
    assert!(
        stderr.contains("10 of 10 missed closed candle(s) fetched over REST"),
        "{stderr}"
    );
    // Every bar once, in order.
    let opens: Vec<i64> = inputs(&journal)
        .iter()
        .filter_map(|e| match e {
            Event::Candle(c) => Some(c.open_time_ns),
            _ => None,
        })
        .collect();
    assert_eq!(opens.len(), 300);
    assert!(opens.windows(2).all(|w| w[1] - w[0] == 60_000_000_000));

    // The same fills as the backtest over all 300 bars.
    let out = backtest_over(dir.path(), &text, &rows);
    let reference = fills(&out.join("journal"));
    assert!(!reference.is_empty());
    assert_eq!(anonymous(fills(&journal)), anonymous(reference));
}
