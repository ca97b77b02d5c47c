//! The mock's own contract: each dialect's paging, the venue clock, faults, the request log,
//! clean shutdown.

use std::time::Duration;

use serde_json::Value;

use super::*;

const MIN: i64 = 60_000;
const T0: i64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z

fn series(n: usize) -> Vec<MockBar> {
    (0..n)
        .map(|i| MockBar {
            open_time_ms: T0 + i as i64 * MIN,
            open: format!("{}.5", 100 + i),
            high: format!("{}", 102 + i),
            low: format!("{}", 99 + i),
            close: format!("{}.25", 101 + i),
            volume: format!("{}.125", i),
        })
        .collect()
}

fn start(venue: Venue, symbol: &str, n: usize, now_ms: i64) -> MockVenue {
    let mut config = MockConfig::new(venue, symbol, MIN, series(n));
    config.now_ms = Some(now_ms);
    MockVenue::start(config).expect("mock starts")
}

async fn get(url: String) -> (u16, Value, reqwest::header::HeaderMap) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let r = reqwest::get(url).await.expect("answer");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.expect("body");
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v, headers)
}

fn first_times(rows: &Value, pick: impl Fn(&Value) -> i64) -> Vec<i64> {
    rows.as_array()
        .expect("rows")
        .iter()
        .map(|r| (pick(r) - T0) / MIN)
        .collect()
}

#[tokio::test]
async fn binance_pages_forward_from_start_time_and_serves_only_existing_bars() {
    let now = T0 + 9 * MIN + 30_000; // bar 9 is forming; 10.. do not exist yet
    let m = start(Venue::BinanceSpot, "BTCUSDT", 20, now);
    let base = m.url();
    let url = format!(
        "{base}/api/v3/klines?symbol=BTCUSDT&interval=1m&startTime={}&limit=3",
        T0 + 2 * MIN
    );
    let (status, rows, headers) = get(url).await;
    assert_eq!(status, 200);
    assert_eq!(first_times(&rows, |r| r[0].as_i64().unwrap()), [2, 3, 4]);
    assert_eq!(rows[0][6].as_i64(), Some(T0 + 3 * MIN - 1), "close time");
    assert_eq!(rows[0][1], "102.5");
    assert_eq!(
        headers.get("date").and_then(|d| d.to_str().ok()),
        Some("Mon, 01 Jan 2024 00:09:30 GMT")
    );
    let url = format!("{base}/api/v3/klines?symbol=BTCUSDT&interval=1m&startTime={T0}&limit=1000");
    let (_, rows, _) = get(url).await;
    assert_eq!(
        rows.as_array().unwrap().len(),
        10,
        "bars 0..=9 exist at now"
    );
    let (status, body, _) = get(format!("{base}/api/v3/klines?symbol=ETHUSDT&interval=1m")).await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(-1121)));
    let url = format!("{base}/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=1001");
    assert_eq!(get(url).await.0, 400);
}

#[tokio::test]
async fn bybit_answers_newest_first_within_an_inclusive_range() {
    let m = start(Venue::Bybit, "BTCUSDT", 20, T0 + 100 * MIN);
    let url = format!(
        "{}/v5/market/kline?category=linear&symbol=BTCUSDT&interval=1&start={}&end={}&limit=3",
        m.url(),
        T0 + 2 * MIN,
        T0 + 10 * MIN
    );
    let (_, body, _) = get(url).await;
    assert_eq!(body["retCode"], 0);
    assert_eq!(body["time"].as_i64(), Some(T0 + 100 * MIN));
    let list = &body["result"]["list"];
    let t = |r: &Value| r[0].as_str().unwrap().parse::<i64>().unwrap();
    assert_eq!(first_times(list, t), [10, 9, 8]);
}

#[tokio::test]
async fn okx_pages_with_exclusive_after_and_before_and_flags_the_forming_bar() {
    let now = T0 + 1999 * MIN + 1000;
    let m = start(Venue::Okx, "BTC-USDT", 2000, now);
    let t = |r: &Value| r[0].as_str().unwrap().parse::<i64>().unwrap();
    let url = format!(
        "{}/api/v5/market/history-candles?instId=BTC-USDT&bar=1m&after={}&before={}&limit=100",
        m.url(),
        T0 + 5 * MIN,
        T0 + MIN
    );
    let (_, body, _) = get(url).await;
    assert_eq!(first_times(&body["data"], t), [4, 3, 2]);
    assert_eq!(body["data"][0][8], "1");
    assert_eq!(body["data"][0][5], "4.125", "spot volume in vol");
    // The recent endpoint only knows the latest 1440 bars; the newest is forming.
    let url = format!(
        "{}/api/v5/market/candles?instId=BTC-USDT&bar=1m&limit=300",
        m.url()
    );
    let (_, body, _) = get(url).await;
    assert_eq!(first_times(&body["data"], t)[0], 1999);
    assert_eq!(body["data"][0][8], "0");
    let url = format!(
        "{}/api/v5/market/candles?instId=BTC-USDT&bar=1m&after={}",
        m.url(),
        T0 + 100 * MIN
    );
    let (_, body, _) = get(url).await;
    assert_eq!(body["data"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn kraken_serves_only_its_window_after_since_with_the_forming_bar_last() {
    let now = T0 + 999 * MIN + 1000;
    let m = start(Venue::Kraken, "XBTUSD", 1000, now);
    let (_, body, _) = get(format!("{}/0/public/OHLC?pair=XBTUSD&interval=1", m.url())).await;
    let rows = &body["result"]["XBTUSD"];
    let t = |r: &Value| r[0].as_i64().unwrap() * 1000;
    let times = first_times(rows, t);
    assert_eq!((times.len(), times[0], times[719]), (720, 280, 999));
    assert_eq!(
        body["result"]["last"].as_i64(),
        Some((T0 + 998 * MIN) / 1000)
    );
    let since = (T0 + 997 * MIN) / 1000;
    let url = format!(
        "{}/0/public/OHLC?pair=XBTUSD&interval=1&since={since}",
        m.url()
    );
    let (_, body, _) = get(url).await;
    assert_eq!(first_times(&body["result"]["XBTUSD"], t), [998, 999]);
}

#[tokio::test]
async fn faults_apply_to_their_request_numbers_and_early_retries_are_recorded() {
    let m = start(Venue::BinanceSpot, "BTCUSDT", 5, T0 + 10 * MIN);
    m.inject(
        1,
        1,
        Fault::RateLimited {
            retry_after_secs: 5,
        },
    );
    m.inject(3, 1, Fault::ServerError);
    let url = format!("{}/api/v3/klines?symbol=BTCUSDT&interval=1m", m.url());
    assert_eq!(get(url.clone()).await.0, 200);
    let (status, _, headers) = get(url.clone()).await;
    assert_eq!(status, 429);
    assert_eq!(headers.get("retry-after").unwrap(), "5");
    assert_eq!(
        get(url.clone()).await.0,
        200,
        "too early: answered, but recorded"
    );
    assert_eq!(get(url.clone()).await.0, 500);
    let early = m.early_requests();
    assert_eq!(early.iter().map(|e| e.n).collect::<Vec<_>>(), [2, 3]);
    assert!(early[0].early_by > Duration::from_secs(3));
    let log = m.requests();
    assert_eq!(log.len(), 4);
    assert_eq!(
        log[1].fault,
        Some(Fault::RateLimited {
            retry_after_secs: 5
        })
    );
    assert_eq!(log[0].param("symbol"), Some("BTCUSDT"));
    m.clear_faults();
    assert_eq!(get(url).await.0, 200);
}

#[tokio::test]
async fn a_dropped_response_fails_the_read() {
    let m = start(Venue::BinanceSpot, "BTCUSDT", 50, T0 + 100 * MIN);
    m.inject(0, 1, Fault::DropMidResponse);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = format!("{}/api/v3/klines?symbol=BTCUSDT&interval=1m", m.url());
    let r = reqwest::get(url).await.expect("headers arrive");
    assert!(r.text().await.is_err());
}

#[test]
fn stops_listening_when_dropped_even_with_a_stalled_request_open() {
    let m = start(Venue::BinanceSpot, "BTCUSDT", 5, T0 + 10 * MIN);
    m.inject(0, usize::MAX, Fault::Stall { ms: 60_000 });
    let addr = m.addr();
    let mut stream = std::net::TcpStream::connect(addr).expect("listening");
    use std::io::Write;
    stream
        .write_all(b"GET /api/v3/klines?symbol=BTCUSDT&interval=1m HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("sent");
    // Wait until the mock has the request, then stop it: drop must not wait 60 s.
    while m.requests().is_empty() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let started = std::time::Instant::now();
    drop(m);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(std::net::TcpStream::connect(addr).is_err(), "port closed");
}

#[test]
fn http_date_is_imf_fixdate() {
    assert_eq!(http_date(784_111_777_000), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(http_date(T0 + 59_999), "Mon, 01 Jan 2024 00:00:59 GMT");
}
