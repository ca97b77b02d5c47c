//! Helpers for the `keel paper` end-to-end tests: a WebSocket mock venue playing the bundled
//! real candles as Binance spot kline frames, a loopback Telegram recorder, a session config,
//! the metrics endpoint, and journal reading.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keel_adapters::mock::ws::{MockWsConfig, MockWsVenue};
use keel_adapters::model::Venue;
use keel_engine::event::{Decision, Event};
use keel_journal::Reader;
use keel_replay::codec::{Decoded, decode};

use crate::common::{BUNDLED_CSV, ROOT};

/// The first `n` rows of the bundled CSV (header excluded), as text lines, with volumes cut
/// to the 8 decimals a venue sends (the file holds float noise such as 218102.59507500002).
pub fn bundled_rows(n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(ROOT).join(BUNDLED_CSV)).unwrap();
    text.lines()
        .skip(1)
        .take(n)
        .map(|line| {
            let (head, volume) = line.rsplit_once(',').unwrap();
            let (int, frac) = volume.split_once('.').unwrap_or((volume, "0"));
            let frac = &frac[..frac.len().min(8)];
            format!("{head},{int}.{frac}")
        })
        .collect()
}

/// Writes the header and `rows` as a CSV `keel data import --format csv` reads.
pub fn write_csv(path: &Path, rows: &[String]) {
    let mut text = String::from("timestamp,open,high,low,close,volume\n");
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

/// Binance spot combined-stream kline frames for `rows`: an in-progress update, then the
/// closed kline, per row (values copied verbatim from the file).
pub fn binance_kline_frames(rows: &[String]) -> Vec<String> {
    binance_kline_frames_for(rows, "BTCUSDT")
}

/// Like `binance_kline_frames`, for `symbol`.
pub fn binance_kline_frames_for(rows: &[String], symbol: &str) -> Vec<String> {
    let stream = format!("{}@kline_1m", symbol.to_ascii_lowercase());
    let mut out = Vec::new();
    for row in rows {
        let f: Vec<&str> = row.split(',').collect();
        let (date, time) = f[0].split_once(' ').unwrap();
        let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
        let t: Vec<i64> = time[..8].split(':').map(|x| x.parse().unwrap()).collect();
        let open_ms = (keel_adapters::civil::days_from_civil(d[0], d[1], d[2]) * 86_400
            + t[0] * 3600
            + t[1] * 60
            + t[2])
            * 1000;
        for closed in [false, true] {
            let frame = serde_json::json!({
                "stream": stream,
                "data": {"e": "kline", "E": open_ms + if closed { 60_000 } else { 30_000 },
                  "s": symbol, "k": {
                    "t": open_ms, "T": open_ms + 59_999, "s": symbol, "i": "1m",
                    "f": 1, "L": 2, "o": f[1], "c": f[4], "h": f[2], "l": f[3], "v": f[5],
                    "n": 10, "x": closed, "q": "0", "V": "0", "Q": "0", "B": "0"}}
            });
            out.push(frame.to_string());
        }
    }
    out
}

/// A Binance spot mock playing `frames`, one every `every`.
pub fn mock_venue(frames: Vec<String>, every: Duration) -> MockWsVenue {
    let mut cfg = MockWsConfig::new(Venue::BinanceSpot, frames);
    cfg.frame_every = every;
    MockWsVenue::start(cfg).unwrap()
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP request the Telegram recorder received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub path: String,
    pub body: serde_json::Value,
}

/// A loopback HTTP server answering every request like Telegram's sendMessage does, and
/// recording it.
pub struct TelegramRecorder {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
}

impl TelegramRecorder {
    pub fn start() -> TelegramRecorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let log = log.clone();
                std::thread::spawn(move || serve(stream, &log));
            }
        });
        TelegramRecorder { url, requests }
    }

    /// The texts received so far.
    pub fn texts(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.body["text"].as_str().unwrap_or("").to_string())
            .collect()
    }

    pub fn paths(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.path.clone())
            .collect()
    }
}

fn serve(stream: TcpStream, log: &Mutex<Vec<Recorded>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        log.lock().unwrap().push(Recorded {
            path,
            body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        });
        let answer = r#"{"ok":true,"result":{"message_id":1}}"#;
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if stream.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// A paper session config for the bundled BTCUSDT bars on the mock.
pub fn session_config(
    ws_url: &str,
    journal: &Path,
    metrics_port: u16,
    telegram: Option<&str>,
) -> String {
    let mut text = format!(
        r#"
[data]
symbol = "BTCUSDT"
interval = "1m"

[account]
starting_balance = 10000.0

[strategy]
kind = "sma_cross"
fast = 5
slow = 20

[execution]
taker_fee_bps = 5.0
slippage_bps = 1.0
lot_size = 0.001

[risk]
risk_per_trade = 0.01
stop = "percent"
stop_pct = 0.005
take_profit = "percent"
take_profit_pct = 0.01

[venue]
name = "binance-spot"
ws_url = "{ws_url}"

[session]
journal = "{}"
snapshot_every = 50
heartbeat_secs = 1

[failsafe]
stale_after_secs = 600
disconnected_after_secs = 600

[metrics]
listen = "127.0.0.1:{metrics_port}"
"#,
        journal.display()
    );
    if let Some(url) = telegram {
        text.push_str(&format!(
            "\n[alerts]\ntelegram_chat_id = \"4242\"\ntelegram_base_url = \"{url}\"\nmin_interval_ms = 1\n"
        ));
    }
    text
}

/// GET `path` from 127.0.0.1:`port`; the body, or None if nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// The value of the first exposition line starting with `series` (name plus labels).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Polls `f` every 50 ms for up to `limit`: a bounded wait, never a timing assertion.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let until = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every record of a journal, decoded, with its sequence number (none before the journal
/// exists).
pub fn records(dir: &Path) -> Vec<(u64, Decoded)> {
    // A journal directory being created has no segment yet: nothing to read.
    let Ok(mut reader) = Reader::open(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while let Some(rec) = reader.next().unwrap() {
        out.push((
            rec.seq,
            decode(rec.seq, rec.kind, rec.ver, rec.payload).unwrap(),
        ));
    }
    out
}

pub fn inputs(dir: &Path) -> Vec<Event> {
    records(dir)
        .into_iter()
        .filter_map(|(_, d)| match d {
            Decoded::Input(e) => Some(e),
            _ => None,
        })
        .collect()
}

pub fn fills(dir: &Path) -> Vec<keel_engine::event::Fill> {
    inputs(dir)
        .into_iter()
        .filter_map(|e| match e {
            Event::Fill(f) => Some(f),
            _ => None,
        })
        .collect()
}

pub fn placed(dir: &Path) -> Vec<keel_engine::event::OrderRequest> {
    records(dir)
        .into_iter()
        .filter_map(|(_, d)| match d {
            Decoded::Decision(Decision::PlaceOrder(r)) => Some(r),
            _ => None,
        })
        .collect()
}

pub fn candles(dir: &Path) -> usize {
    inputs(dir)
        .iter()
        .filter(|e| matches!(e, Event::Candle(_)))
        .count()
}

/// Sends `signal` to `pid`.
pub fn signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) with a child's pid and a valid signal number has no memory effects.
    unsafe {
        libc::kill(pid as i32, signal);
    }
}

pub fn dir_copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

pub fn path_buf(p: &Path) -> PathBuf {
    p.to_path_buf()
}

/// Runs `keel backtest` over `rows` (imported into a store under `dir`) with the session
/// config `text` plus that store, and returns the backtest's output directory.
pub fn backtest_over(dir: &Path, text: &str, rows: &[String]) -> PathBuf {
    let csv = dir.join("bars.csv");
    write_csv(&csv, rows);
    let store = dir.join("store");
    crate::common::assert_ok(&crate::common::keel(
        &[
            "data",
            "import",
            "--format",
            "csv",
            csv.to_str().unwrap(),
            "--symbol",
            "BTCUSDT",
            "--interval",
            "1m",
            "--store",
            store.to_str().unwrap(),
        ],
        dir,
    ));
    let config = dir.join("backtest.toml");
    let with_store = text.replace(
        "[data]\n",
        &format!("[data]\nstore = \"{}\"\n", store.display()),
    );
    std::fs::write(&config, with_store).unwrap();
    let out = dir.join("bt");
    crate::common::assert_ok(&crate::common::keel(
        &[
            "backtest",
            "--config",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        dir,
    ));
    out
}

/// Fills without their client ids, which derive from each journal's own sequence numbers (a
/// paper journal also holds heartbeats): everything else must match a backtest's.
pub fn anonymous(fills: Vec<keel_engine::event::Fill>) -> Vec<keel_engine::event::Fill> {
    fills
        .into_iter()
        .map(|f| keel_engine::event::Fill { client_id: 0, ..f })
        .collect()
}
