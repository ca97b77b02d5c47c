//! `keel venue watch` end to end: the real binary against the loopback WebSocket mock venue
//! (`keel_adapters::mock::ws`), never the internet. Values come from the mock's sample script
//! (`keel_adapters::mock::ws::samples`).

use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use keel_adapters::mock::ws::{MockWsConfig, MockWsVenue, WsFault, samples};
use keel_adapters::model::Venue;
use serde_json::{Value, json};

const KEEL: &str = env!("CARGO_BIN_EXE_keel");
const PATIENCE: Duration = Duration::from_secs(20);

fn mock(venue: Venue, script: Vec<String>) -> MockWsVenue {
    let mut c = MockWsConfig::new(venue, script);
    c.frame_every = Duration::from_millis(10);
    MockWsVenue::start(c).expect("mock starts")
}

fn watch(args: &[&str]) -> Output {
    Command::new(KEEL)
        .args(["venue", "watch"])
        .args(args)
        .output()
        .expect("keel runs")
}

fn spawn_watch(args: &[&str]) -> Child {
    Command::new(KEEL)
        .args(["venue", "watch"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("keel starts")
}

fn finish(mut child: Child) -> (std::process::ExitStatus, String, String) {
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = child.stdout.take() {
        s.read_to_string(&mut out).expect("stdout");
    }
    if let Some(mut s) = child.stderr.take() {
        s.read_to_string(&mut err).expect("stderr");
    }
    (child.wait().expect("exit"), out, err)
}

fn lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

fn first<'a>(events: &'a [Value], kind: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {events:#?}"))
}

#[test]
fn binance_spot_events_print_as_json_lines_until_the_time_is_up() {
    let venue = Venue::BinanceSpot;
    let m = mock(venue, samples::script(venue, "BTCUSDT"));
    let url = m.url();
    let out = watch(&[
        "--venue",
        "binance-spot",
        "--symbol",
        "BTCUSDT",
        "--kline",
        "1m",
        "--trades",
        "--book-ticker",
        "--depth",
        "--base-url",
        &url,
        "--for-seconds",
        "2",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let events = lines(&out.stdout);
    let candle = first(&events, "candle");
    assert_eq!(candle["symbol"], "BTCUSDT");
    assert_eq!(candle["open_time_ns"], samples::T0_MS * 1_000_000);
    assert_eq!(
        (
            &candle["open"],
            &candle["high"],
            &candle["low"],
            &candle["close"]
        ),
        (
            &json!("100.5"),
            &json!("102"),
            &json!("99"),
            &json!("101.25")
        )
    );
    assert_eq!(candle["closed"], false);
    let trade = first(&events, "trade");
    assert_eq!(
        (&trade["price"], &trade["qty"]),
        (&json!("101.25"), &json!("0.5"))
    );
    assert_eq!(trade["aggressor"], "buy");
    let bt = first(&events, "book_ticker");
    assert_eq!((&bt["bid"], &bt["ask"]), (&json!("101.2"), &json!("101.3")));
    let depth: Vec<&Value> = events.iter().filter(|e| e["kind"] == "depth").collect();
    assert_eq!(depth.len(), 3);
    assert_eq!(depth[2]["last_update_id"], samples::DEPTH_FIRST_ID + 2);

    assert!(
        stderr.contains(&format!("[0] connected to {url}/stream?streams=")),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "[0] subscribed: btcusdt@kline_1m, btcusdt@trade, btcusdt@bookTicker, btcusdt@depth@100ms"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("stopped (time is up): 6 events, 1 connections"),
        "{stderr}"
    );
    let log = m.connections();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].path, "/stream");
    assert!(log[0].closed_by_client(), "a close frame on the way out");
    assert!(m.violations().is_empty(), "{:?}", m.violations());
}

#[test]
fn kraken_watch_subscribes_each_channel_and_prints_its_events() {
    let venue = Venue::Kraken;
    let m = mock(venue, samples::script(venue, "BTC/USD"));
    let url = m.url();
    let out = watch(&[
        "--venue",
        "kraken",
        "--symbol",
        "BTC/USD",
        "--trades",
        "--book-ticker",
        "--base-url",
        &url,
        "--for-seconds",
        "2",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let events = lines(&out.stdout);
    assert_eq!(first(&events, "trade")["price"], "101.25");
    assert_eq!(first(&events, "book_ticker")["bid_qty"], "1.5");
    assert!(
        events
            .iter()
            .all(|e| e["kind"] == "trade" || e["kind"] == "book_ticker")
    );
    let log = m.connections();
    let sent: Vec<Value> = log[0]
        .texts()
        .iter()
        .map(|t| serde_json::from_str(t).expect("json"))
        .collect();
    assert_eq!(
        sent,
        [
            json!({"method": "subscribe", "params": {"channel": "trade", "symbol": ["BTC/USD"]},
                   "req_id": 1}),
            json!({"method": "subscribe", "params": {"channel": "ticker", "symbol": ["BTC/USD"],
                   "event_trigger": "bbo"}, "req_id": 2}),
        ]
    );
    assert!(
        stderr.contains("venue: status: ok system online"),
        "{stderr}"
    );
    assert!(stderr.contains("the venue acknowledged"), "{stderr}");
    assert!(m.violations().is_empty(), "{:?}", m.violations());
}

#[test]
fn a_dropped_connection_is_reported_and_resubscribed() {
    let venue = Venue::Bybit;
    let m = mock(venue, samples::script(venue, "BTCUSDT"));
    let url = m.url();
    let child = spawn_watch(&[
        "--venue",
        "bybit",
        "--category",
        "spot",
        "--symbol",
        "BTCUSDT",
        "--trades",
        "--base-url",
        &url,
        "--for-seconds",
        "4",
    ]);
    assert!(m.wait_until(PATIENCE, |log| {
        log.first().is_some_and(|c| c.frames_sent >= 1)
    }));
    m.inject(WsFault::Drop);
    assert!(m.wait_until(PATIENCE, |log| log.len() >= 2 && log[1].frames_sent >= 1));
    let (status, out, err) = finish(child);
    assert!(status.success(), "{err}");
    assert!(err.contains("[0] disconnected: "), "{err}");
    assert!(err.contains("; reconnecting in "), "{err}");
    assert!(
        err.contains("[0] connected to ") && err.contains("(attempt 2)"),
        "{err}"
    );
    assert!(
        err.contains("[0] resubscribed: publicTrade.BTCUSDT"),
        "{err}"
    );
    let trades = lines(out.as_bytes())
        .iter()
        .filter(|e| e["kind"] == "trade")
        .count();
    assert_eq!(trades, 2, "one per connection: {out}");
    let log = m.connections();
    assert_eq!(log[1].texts(), log[0].texts());
}

#[test]
fn ctrl_c_stops_the_watch_cleanly() {
    let venue = Venue::Okx;
    let m = mock(venue, samples::script(venue, "BTC-USDT"));
    let url = m.url();
    let mut child = spawn_watch(&[
        "--venue",
        "okx",
        "--symbol",
        "BTC-USDT",
        "--kline",
        "1m",
        "--depth",
        "--base-url",
        &url,
    ]);
    // Read stdout as it comes until both OKX sockets (public for books, business for
    // candles) have delivered the whole script.
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(serde_json::from_str(&line).unwrap_or(Value::String(line)));
        }
    });
    let mut events = Vec::new();
    let until = Instant::now() + PATIENCE;
    while events
        .iter()
        .filter(|e: &&Value| e["kind"] == "depth")
        .count()
        < 3
        || !events.iter().any(|e| e["kind"] == "candle")
    {
        assert!(Instant::now() < until, "{events:#?}");
        if let Ok(e) = rx.recv_timeout(Duration::from_millis(50)) {
            events.push(e);
        }
    }
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) with a child's pid and SIGINT has no memory effects.
    let rc = unsafe { libc::kill(pid, libc::SIGINT) };
    assert_eq!(rc, 0);
    let (status, _, err) = finish(child);
    reader.join().expect("reader");
    events.extend(rx.try_iter());
    assert!(status.success(), "{err}");
    assert!(err.contains("stopped (interrupted)"), "{err}");
    assert_eq!(first(&events, "candle")["close"], "101.25");
    assert_eq!(events.iter().filter(|e| e["kind"] == "depth").count(), 3);
    assert!(m.wait_until(PATIENCE, |log| log.len() == 2
        && log.iter().all(|c| c.closed_by_client())));
}

#[test]
fn a_watch_without_streams_or_with_a_bad_base_url_is_refused() {
    let out = watch(&["--venue", "okx", "--symbol", "BTC-USDT"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to watch"));
    let out = watch(&[
        "--venue",
        "okx",
        "--symbol",
        "BTC-USDT",
        "--trades",
        "--base-url",
        "http://x",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must start with ws:// or wss://"));
    let out = watch(&["--venue", "kraken", "--symbol", "BTC/USD", "--kline", "7m"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a Kraken OHLC interval"));
}
