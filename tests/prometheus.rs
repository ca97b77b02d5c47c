//! keel's metrics endpoint scraped by a real Prometheus server: what keel sets is what a
//! PromQL query reads back. Ignored by default (it needs the `prometheus` binary and takes a
//! few seconds); CI runs it with `--ignored` and `KEEL_REQUIRE_PROMETHEUS=1`.

#[path = "common/prometheus.rs"]
mod prometheus;

use std::sync::Arc;
use std::time::Duration;

use keel::metrics::{self, Metrics};
use prometheus::{Prometheus, tool_or_skip};

#[test]
#[ignore = "needs the prometheus binary; CI runs it with --ignored"]
fn prometheus_scrapes_keel_and_reads_back_the_values_set() {
    let Some(binary) = tool_or_skip("prometheus") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let listener = metrics::bind("127.0.0.1:0").expect("bind the metrics listener");
    let target = listener.local_addr().expect("metrics address");

    let m = Arc::new(Metrics::new());
    m.set_session_info("paper", "binance-usdm", "sma_cross");
    m.set_equity(10_250.5);
    m.set_position("BTCUSDT", -0.25);
    m.set_position("ETHUSDT", 3.0);
    m.add_decisions("place_order", 3);
    m.observe_decision_latency(Duration::from_micros(40));
    m.observe_decision_latency(Duration::from_millis(3));
    m.set_venue_connected("binance-usdm", true);

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn({
        let m = m.clone();
        async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            metrics::serve(listener, m, async {
                let _ = stop_rx.await;
            })
            .await;
        }
    });

    let prom = Prometheus::start(&binary, target);
    assert_eq!(prom.wait_for_value("keel_equity"), 10_250.5);
    // The rest came in the same scrape as the equity.
    let query = |expr: &str| prom.query(expr).unwrap_or_else(|e| panic!("{e}"));
    let position = query(r#"keel_position{symbol="BTCUSDT"}"#);
    assert_eq!(position.len(), 1, "{position:?}");
    assert_eq!(position[0].value, -0.25);
    assert_eq!(position[0].labels["job"], "keel");
    assert_eq!(position[0].labels["instance"], target.to_string());
    let orders = query(r#"keel_decisions_total{kind="place_order"}"#);
    assert_eq!(orders.len(), 1, "{orders:?}");
    assert_eq!(orders[0].value, 3.0);
    assert_eq!(query("count(keel_decisions_total)")[0].value, 5.0);
    assert_eq!(query("keel_decision_latency_seconds_count")[0].value, 2.0);
    let in_5ms = query(r#"keel_decision_latency_seconds_bucket{le="0.005"}"#);
    assert_eq!(in_5ms[0].value, 2.0, "{in_5ms:?}");
    let session = query("keel_session_info");
    assert_eq!(session[0].labels["mode"], "paper", "{session:?}");
    assert_eq!(
        query(r#"keel_venue_connected{venue="binance-usdm"}"#)[0].value,
        1.0
    );

    // A value changed later is seen by a later scrape.
    m.set_equity(9_000.0);
    prom.wait_for("keel_equity", |s| {
        s.first().is_some_and(|s| s.value == 9_000.0)
    });

    drop(prom);
    stop_tx.send(()).expect("metrics server still running");
    rt.block_on(server).expect("metrics server stops cleanly");
}

#[path = "common/mod.rs"]
mod common;
#[path = "common/paper.rs"]
mod paper;

/// A real Prometheus scraping a running `keel paper` session: the equity, the fills and the
/// candles it reads back are the session's, checked against the session's own journal.
#[test]
#[ignore = "needs the prometheus binary; CI runs it with --ignored"]
fn prometheus_scrapes_a_running_paper_session() {
    let Some(binary) = tool_or_skip("prometheus") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rows = paper::bundled_rows(300);
    let venue = paper::mock_venue(paper::binance_kline_frames(&rows), Duration::from_millis(2));
    let journal = dir.path().join("session");
    let port = paper::free_port();
    let config = dir.path().join("paper.toml");
    std::fs::write(
        &config,
        paper::session_config(&venue.url(), &journal, port, None),
    )
    .unwrap();
    let mut child = std::process::Command::new(common::KEEL)
        .args(["paper", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let prom = Prometheus::start(&binary, format!("127.0.0.1:{port}").parse().unwrap());
    let candles = prom.wait_for(r#"keel_inputs_total{kind="candle"}"#, |s| {
        s.first().is_some_and(|s| s.value >= 300.0)
    });
    assert_eq!(candles[0].value, 300.0);
    let fills = prom.query(r#"keel_inputs_total{kind="fill"}"#).unwrap();
    let equity = prom.query("keel_equity").unwrap();
    paper::signal(child.id(), libc::SIGTERM);
    let _ = child.wait();
    let journal_fills = paper::fills(&journal);
    assert!(!journal_fills.is_empty());
    assert_eq!(fills[0].value as usize, journal_fills.len());
    // The equity scraped is the core's after the last candle: cash + position at the close.
    let last_close: f64 = rows[299].split(',').nth(4).unwrap().parse().unwrap();
    let (mut cash, mut qty) = (10_000.0f64, 0.0f64);
    for f in &journal_fills {
        let (p, q, fee) = (f.price.to_f64(), f.qty.to_f64(), f.fee.to_f64());
        match f.side {
            keel_engine::event::Side::Buy => {
                cash -= p * q + fee;
                qty += q;
            }
            keel_engine::event::Side::Sell => {
                cash += p * q - fee;
                qty -= q;
            }
        }
    }
    let expected = cash + qty * last_close;
    assert!(
        (equity[0].value - expected).abs() < 1e-6,
        "{} vs {expected}",
        equity[0].value
    );
}
