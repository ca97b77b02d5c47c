//! `keel venue watch` end to end: the real binary against the loopback WebSocket mock venue
//! (`keel_adapters::mock::ws`) and, for Binance's book snapshot, the REST mock
//! (`keel_adapters::mock`), never the internet. Values come from the mock's sample script
//! (`keel_adapters::mock::ws::samples`); the expected books are computed here from the frames'
//! JSON, not through the codecs.

use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use keel_adapters::mock::ws::{MockWsConfig, MockWsVenue, WsFault, samples};
use keel_adapters::mock::{MockConfig, MockDepth, MockVenue};
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
    let out = watch(&["--venue", "kraken", "--symbol", "BTC/USD", "--book"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--book on kraken needs --price-precision")
    );
    let out = watch(&[
        "--venue",
        "okx",
        "--symbol",
        "BTC-USDT",
        "--book",
        "--rest-url",
        "http://x",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rest-url is for --book on binance"));
}

/// A running `keel venue watch` whose stdout lines are collected as they come.
struct Running {
    child: Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    reader: std::thread::JoinHandle<()>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = spawn_watch(args);
        let stdout = child.stdout.take().expect("stdout");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v = serde_json::from_str(&line).unwrap_or(Value::String(line));
                sink.lock().expect("lines").push(v);
            }
        });
        Running {
            child,
            lines,
            reader,
        }
    }

    /// Polls the lines so far until `done` holds or the patience runs out.
    fn wait_for(&self, done: impl Fn(&[Value]) -> bool) -> bool {
        let until = Instant::now() + PATIENCE;
        while Instant::now() < until {
            if done(&self.lines.lock().expect("lines")) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Ctrl-C, then everything it printed: (exit status, stdout lines, stderr).
    fn interrupt(self) -> (std::process::ExitStatus, Vec<Value>, String) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) with a child's pid and SIGINT has no memory effects.
        let rc = unsafe { libc::kill(pid, libc::SIGINT) };
        assert_eq!(rc, 0);
        let (status, _, err) = finish(self.child);
        self.reader.join().expect("reader");
        let lines = self.lines.lock().expect("lines").clone();
        (status, lines, err)
    }
}

fn book_lines(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|l| l["kind"] == "book").collect()
}

fn update_id(line: &Value) -> u64 {
    line["update_id"].as_u64().expect("update_id")
}

/// One depth frame as the test reads it from the sample JSON, independently of the codecs.
struct Frame {
    first_id: u64,
    last_id: u64,
    bids: Vec<(String, String)>,
    asks: Vec<(String, String)>,
}

fn frames(venue: Venue, symbol: &str, count: usize) -> Vec<Frame> {
    let side = |v: &Value| -> Vec<(String, String)> {
        v.as_array()
            .expect("levels")
            .iter()
            .map(|l| {
                (
                    l[0].as_str().expect("price").into(),
                    l[1].as_str().expect("qty").into(),
                )
            })
            .collect()
    };
    samples::depth_frames(venue, symbol, count)
        .iter()
        .map(|text| {
            let v: Value = serde_json::from_str(text).expect("json");
            match venue {
                Venue::BinanceSpot => Frame {
                    first_id: v["data"]["U"].as_u64().expect("U"),
                    last_id: v["data"]["u"].as_u64().expect("u"),
                    bids: side(&v["data"]["b"]),
                    asks: side(&v["data"]["a"]),
                },
                Venue::Bybit => Frame {
                    first_id: v["data"]["u"].as_u64().expect("u"),
                    last_id: v["data"]["u"].as_u64().expect("u"),
                    bids: side(&v["data"]["b"]),
                    asks: side(&v["data"]["a"]),
                },
                other => panic!("no frame reader for {other:?}"),
            }
        })
        .collect()
}

/// The book a client must hold: `levels` patched by `frames` (quantity 0 removes a level);
/// returns the best bid and ask as [price, qty] text.
fn best_of(bids: &[(String, String)], asks: &[(String, String)], frames: &[&Frame]) -> [String; 4] {
    fn patch(side: &mut Vec<(String, String)>, levels: &[(String, String)]) {
        for (p, q) in levels {
            side.retain(|(sp, _)| sp != p);
            if q.parse::<f64>().expect("qty") != 0.0 {
                side.push((p.clone(), q.clone()));
            }
        }
    }
    let (mut b, mut a) = (bids.to_vec(), asks.to_vec());
    for f in frames {
        patch(&mut b, &f.bids);
        patch(&mut a, &f.asks);
    }
    let px = |l: &(String, String)| l.0.parse::<f64>().expect("price");
    let best_bid = b
        .iter()
        .max_by(|x, y| px(x).total_cmp(&px(y)))
        .expect("a bid");
    let best_ask = a
        .iter()
        .min_by(|x, y| px(x).total_cmp(&px(y)))
        .expect("an ask");
    [
        best_bid.0.clone(),
        best_bid.1.clone(),
        best_ask.0.clone(),
        best_ask.1.clone(),
    ]
}

fn printed_best(line: &Value) -> [String; 4] {
    ["bid", "bid_qty", "ask", "ask_qty"].map(|k| line[k].as_str().expect(k).to_string())
}

#[test]
fn binance_book_syncs_from_the_rest_snapshot_and_resyncs_after_a_gap() {
    let venue = Venue::BinanceSpot;
    let all = frames(venue, "BTCUSDT", 300);
    let ws = mock(venue, samples::depth_frames(venue, "BTCUSDT", 300));
    let rest = MockVenue::start(MockConfig::new(venue, "BTCUSDT", 60_000, Vec::new()))
        .expect("rest mock starts");
    // Inside the range the stream starts with: the first frame (100) is covered by it.
    let first = MockDepth::new(
        samples::DEPTH_FIRST_ID + 1,
        &[("101.2", "9"), ("101.1", "4")],
        &[("101.3", "7"), ("101.4", "1")],
    );
    rest.set_depth_snapshot(first.clone());
    let (ws_url, rest_url) = (ws.url(), rest.url());
    let watch = Running::start(&[
        "--venue",
        "binance-spot",
        "--symbol",
        "BTCUSDT",
        "--book",
        "--base-url",
        &ws_url,
        "--rest-url",
        &rest_url,
        "--for-seconds",
        "60",
    ]);
    assert!(watch.wait_for(|l| book_lines(l).len() >= 3));
    let depth_requests = || rest.requests_to("GET", "/api/v3/depth");
    assert_eq!(depth_requests().len(), 1);

    // The next snapshot is ahead of anything sent so far, so it is after the gap.
    let sent = ws.connections()[0].frames_sent as u64;
    let second_id = samples::DEPTH_FIRST_ID + sent + 40;
    let second = MockDepth::new(
        second_id,
        &[("101.2", "9"), ("101.15", "3")],
        &[("101.25", "0.7"), ("101.3", "5")],
    );
    rest.set_depth_snapshot(second.clone());
    ws.inject(WsFault::Skip);
    assert!(watch.wait_for(|l| book_lines(l).iter().any(|b| update_id(b) >= second_id + 20)));
    let (status, lines, err) = watch.interrupt();
    assert!(status.success(), "{err}");

    let requests = depth_requests();
    assert_eq!(
        requests.len(),
        2,
        "one snapshot at the start, one after the gap: {err}"
    );
    assert!(
        requests
            .iter()
            .all(|r| r.param("symbol") == Some("BTCUSDT"))
    );
    assert!(
        err.contains(&format!(
            "book synced from REST snapshot lastUpdateId={} (replayed ",
            first.last_update_id
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "book synced from REST snapshot lastUpdateId={second_id} (replayed "
        )),
        "{err}"
    );
    assert!(
        err.contains("book BTCUSDT: gap: the book is at id "),
        "{err}"
    );
    assert!(err.contains("; resyncing from a REST snapshot"), "{err}");
    assert!(
        err.contains("1 book resyncs, 2 book snapshots loaded"),
        "{err}"
    );

    let book = book_lines(&lines);
    let ids: Vec<u64> = book.iter().map(|b| update_id(b)).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert!(ids.iter().any(|&id| id < second_id), "{ids:?}");
    assert!(ids.iter().any(|&id| id > second_id), "{ids:?}");
    for line in book {
        let id = update_id(line);
        let snap = if id < second_id { &first } else { &second };
        let after: Vec<&Frame> = all
            .iter()
            .filter(|f| f.last_id > snap.last_update_id && f.last_id <= id)
            .collect();
        // Nothing between the snapshot and this line is missing.
        assert!(after.windows(2).all(|w| w[1].first_id == w[0].last_id + 1));
        assert_eq!(
            printed_best(line),
            best_of(&snap.bids, &snap.asks, &after),
            "{line}"
        );
        assert_eq!(line["crossed"], false);
        assert_eq!(line["symbol"], "BTCUSDT");
    }
}

#[test]
fn bybit_book_reconnects_for_a_fresh_snapshot_after_a_gap() {
    let venue = Venue::Bybit;
    let all = frames(venue, "BTCUSDT", 300);
    let ws = mock(venue, samples::depth_frames(venue, "BTCUSDT", 300));
    let url = ws.url();
    let watch = Running::start(&[
        "--venue",
        "bybit",
        "--symbol",
        "BTCUSDT",
        "--book",
        "--base-url",
        &url,
        "--for-seconds",
        "60",
    ]);
    assert!(watch.wait_for(|l| book_lines(l).len() >= 3));
    ws.inject(WsFault::Skip);
    // The second connection's snapshot, then some of its updates.
    assert!(watch.wait_for(|l| {
        let ids: Vec<u64> = book_lines(l).iter().map(|b| update_id(b)).collect();
        ids.windows(2).any(|w| w[1] < w[0]) && ids.last().is_some_and(|&i| i >= 110)
    }));
    let (status, lines, err) = watch.interrupt();
    assert!(status.success(), "{err}");
    assert!(
        err.contains("book BTCUSDT: gap: the book is at id "),
        "{err}"
    );
    assert!(
        err.contains("; resyncing by reconnecting for a fresh snapshot"),
        "{err}"
    );
    assert!(
        err.contains("1 book resyncs, 2 book snapshots loaded"),
        "{err}"
    );
    let log = ws.connections();
    assert_eq!(log.len(), 2, "one reconnect");
    assert!(log[0].closed_by_client(), "the broken stream was closed");
    assert_eq!(log[1].texts(), log[0].texts(), "subscribed again");

    let book = book_lines(&lines);
    let ids: Vec<u64> = book.iter().map(|b| update_id(b)).collect();
    let restart = ids
        .windows(2)
        .position(|w| w[1] != w[0] + 1)
        .expect("a break")
        + 1;
    assert_eq!(
        ids[restart],
        samples::DEPTH_FIRST_ID,
        "a new snapshot: {ids:?}"
    );
    assert!(
        ids[..restart].windows(2).all(|w| w[1] == w[0] + 1)
            && ids[restart..].windows(2).all(|w| w[1] == w[0] + 1),
        "{ids:?}"
    );
    assert_eq!(ids[0], samples::DEPTH_FIRST_ID);
    for line in book {
        let id = update_id(line);
        // The stream's snapshot (frame 0) and every delta up to this line.
        let upto: Vec<&Frame> = all.iter().filter(|f| f.last_id <= id).collect();
        assert_eq!(printed_best(line), best_of(&[], &[], &upto), "{line}");
        assert_eq!(line["crossed"], false);
    }
}
