//! The mock's own contract: each dialect's paging, the venue clock, faults, the request log,
//! clean shutdown; and its exchange: signature and timing checks with Binance's codes, its own
//! HMAC against published vectors, exchangeInfo, and matching and settlement.

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

// ---------------------------------------------------------------------------------------------
// The exchange side

fn fx(text: &str) -> Fixed {
    Fixed::parse_exact(text).expect("decimal")
}

fn exchange_mock(venue: Venue) -> MockVenue {
    let mut config = MockConfig::new(venue, "BTCUSDT", MIN, Vec::new());
    config.trading = TradingConfig::new(venue == Venue::BinanceSpot, "BTCUSDT", fx("50000"));
    MockVenue::start(config).expect("mock starts")
}

#[test]
fn the_mock_hmac_is_rfc_2104_and_matches_binance_published_example() {
    // Binance spot docs, SIGNED endpoint example (HMAC).
    let secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
    let payload = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&\
                   recvWindow=5000&timestamp=1499827319559";
    assert_eq!(
        binance::hmac_sha256_hex(secret.as_bytes(), payload.as_bytes()),
        "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    );
    // RFC 4231 test cases 2 (short key) and 6 (key longer than the block).
    assert_eq!(
        binance::hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    assert_eq!(
        binance::hmac_sha256_hex(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First"
        ),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}

/// POSTs `body` (signed with `secret` unless `signature` is given) to the spot order endpoint.
async fn post_order(m: &MockVenue, key: Option<&str>, body: &str, signature: &str) -> (u16, Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut req = reqwest::Client::new()
        .post(format!("{}/api/v3/order", m.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("{body}&signature={signature}"));
    if let Some(key) = key {
        req = req.header("X-MBX-APIKEY", key);
    }
    let r = req.send().await.expect("answer");
    let status = r.status().as_u16();
    (
        status,
        serde_json::from_str(&r.text().await.expect("body")).expect("json"),
    )
}

#[tokio::test]
async fn the_mock_verifies_key_signature_and_timing_with_binance_codes() {
    let m = exchange_mock(Venue::BinanceSpot);
    let body = |ts: i64| {
        format!("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01&recvWindow=5000&timestamp={ts}")
    };
    let sign = |text: &str| crate::sign::binance_hmac_signature(MOCK_SECRET, text);
    let now = m.now_ms();
    let key = Some(MOCK_API_KEY);
    let code = |v: &Value| v["code"].as_i64();

    let (status, v) = post_order(&m, None, &body(now), &sign(&body(now))).await;
    assert_eq!((status, code(&v)), (401, Some(-2014)));
    let (status, v) = post_order(&m, Some("nobody"), &body(now), &sign(&body(now))).await;
    assert_eq!((status, code(&v)), (401, Some(-2015)));
    let tampered = body(now).replace("0.01", "0.02");
    let (status, v) = post_order(&m, key, &tampered, &sign(&body(now))).await;
    assert_eq!((status, code(&v)), (400, Some(-1022)));
    assert_eq!(v["msg"], "Signature for this request is not valid.");
    let stale = body(now - 6000);
    let (_, v) = post_order(&m, key, &stale, &sign(&stale)).await;
    assert_eq!(code(&v), Some(-1021));
    assert_eq!(
        v["msg"],
        "Timestamp for this request is outside of the recvWindow."
    );
    let ahead = body(now + 3000);
    let (_, v) = post_order(&m, key, &ahead, &sign(&ahead)).await;
    assert_eq!(
        v["msg"],
        "Timestamp for this request was 1000ms ahead of the server's time."
    );
    assert!(m.orders().is_empty(), "nothing refused was placed");

    let (status, v) = post_order(&m, key, &body(now), &sign(&body(now))).await;
    assert_eq!((status, v["status"].as_str()), (200, Some("FILLED")));
    assert_eq!(v["fills"][0]["price"], "50000.00000000");
    assert_eq!(m.orders().len(), 1);
}

#[tokio::test]
async fn time_endpoints_follow_the_venue_clock_and_its_skew() {
    for (venue, path) in [
        (Venue::BinanceSpot, "/api/v3/time"),
        (Venue::BinanceUsdm, "/fapi/v1/time"),
        (Venue::Bybit, "/v5/market/time"),
        (Venue::Okx, "/api/v5/public/time"),
        (Venue::Kraken, "/0/public/Time"),
    ] {
        let m = start(venue, "BTCUSDT", 1, T0 + 5 * MIN + 250);
        let (status, v, _) = get(format!("{}{path}", m.url())).await;
        assert_eq!(status, 200, "{venue:?}");
        let ms = match venue {
            Venue::BinanceSpot | Venue::BinanceUsdm => v["serverTime"].as_i64(),
            Venue::Bybit => v["time"].as_i64(),
            Venue::Okx => v["data"][0]["ts"].as_str().and_then(|t| t.parse().ok()),
            Venue::Kraken => v["result"]["unixtime"].as_i64().map(|s| s * 1000 + 250),
        };
        assert_eq!(ms, Some(T0 + 5 * MIN + 250), "{venue:?}");
    }
    let m = exchange_mock(Venue::BinanceSpot);
    m.set_clock_skew_ms(-60_000);
    let (_, v, _) = get(format!("{}/api/v3/time", m.url())).await;
    let real = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let behind = real - v["serverTime"].as_i64().expect("time");
    assert!((59_000..61_000).contains(&behind), "{behind}");
}

#[tokio::test]
async fn exchange_info_carries_the_filters_the_exchange_enforces() {
    for venue in [Venue::BinanceSpot, Venue::BinanceUsdm] {
        let m = exchange_mock(venue);
        let path = if venue == Venue::BinanceSpot {
            "/api/v3/exchangeInfo"
        } else {
            "/fapi/v1/exchangeInfo"
        };
        let r = reqwest::get(format!("{}{path}", m.url()))
            .await
            .expect("answer");
        let list = crate::binance::parse_exchange_info(&r.text().await.expect("body"))
            .expect("the codec reads it");
        let i = &list[0];
        assert_eq!(
            (
                i.tick_size,
                i.lot_size,
                i.min_qty,
                i.max_qty,
                i.min_notional
            ),
            (
                fx("0.01"),
                fx("0.00001"),
                fx("0.00001"),
                fx("9000"),
                fx("5")
            ),
            "{venue:?}"
        );
    }
}

fn new_order(symbol: &str, id: &str, side: keel_engine::event::Side) -> exchange::NewOrder {
    exchange::NewOrder {
        symbol: symbol.into(),
        client_order_id: id.into(),
        side,
        order_type: "MARKET".into(),
        kind: exchange::OrderKind::Market,
        time_in_force: String::new(),
        price: Fixed::ZERO,
        stop_price: Fixed::ZERO,
        qty: fx("1"),
        reduce_only: false,
        algo: false,
    }
}

#[test]
fn usdm_positions_average_in_realize_on_the_way_out_and_flip() {
    use keel_engine::event::Side::{Buy, Sell};
    let config = TradingConfig::new(false, "BTCUSDT", fx("100"));
    let mut ex = exchange::Exchange::new(false, &config);
    ex.place(new_order("BTCUSDT", "a", Buy), 1).expect("buy");
    ex.set_price("BTCUSDT", fx("110"), 2);
    ex.place(new_order("BTCUSDT", "b", Buy), 3).expect("buy");
    let p = ex.positions["BTCUSDT"];
    assert_eq!((p.qty, p.entry_price), (fx("2"), fx("105")));
    ex.set_price("BTCUSDT", fx("120"), 4);
    let mut flip = new_order("BTCUSDT", "c", Sell);
    flip.qty = fx("3");
    ex.place(flip, 5).expect("sell");
    let p = ex.positions["BTCUSDT"];
    assert_eq!((p.qty, p.entry_price), (fx("-1"), fx("120")));
    let last = ex.executions.last().expect("fill");
    assert_eq!(last.realized_pnl, fx("30"), "2 × (120 − 105)");
    // Fees 0.05 %: 100 + 110 + 360 traded.
    assert_eq!(ex.balances["USDT"].free, fx("100029.715"));
    // Reduce-only must reduce: a sell would add to the short.
    let mut more = new_order("BTCUSDT", "d", Sell);
    more.reduce_only = true;
    assert_eq!(ex.place(more, 6).expect_err("increases").code, -2022);
}

#[test]
fn spot_ioc_that_cannot_fill_expires_and_every_change_is_an_execution() {
    use keel_engine::event::Side::Buy;
    let config = TradingConfig::new(true, "BTCUSDT", fx("100"));
    let mut ex = exchange::Exchange::new(true, &config);
    let mut ioc = new_order("BTCUSDT", "ioc", Buy);
    ioc.order_type = "LIMIT".into();
    ioc.kind = exchange::OrderKind::Limit { post_only: false };
    ioc.time_in_force = "IOC".into();
    ioc.price = fx("99");
    let idx = ex.place(ioc, 1).expect("accepted");
    assert_eq!(ex.orders[idx].status, "EXPIRED");
    assert_eq!(ex.balances["USDT"].locked, Fixed::ZERO, "lock released");
    let kinds: Vec<&str> = ex
        .executions
        .iter()
        .map(|e| e.execution_type.as_str())
        .collect();
    assert_eq!(kinds, ["NEW", "EXPIRED"]);
    let mut big = new_order("BTCUSDT", "big", Buy);
    big.qty = fx("2000");
    let e = ex.place(big, 2).expect_err("200,000 USDT needed");
    assert_eq!(
        (e.code, e.msg.as_str()),
        (
            -2010,
            "Account has insufficient balance for requested action."
        )
    );
    let mut unknown = new_order("ETHUSDT", "x", Buy);
    unknown.qty = fx("1");
    assert_eq!(
        ex.place(unknown, 3).expect_err("no such symbol").code,
        -1121
    );
}
