//! A loopback mock venue for client and downloader tests: an HTTP/1.1 server on 127.0.0.1
//! (port 0) that speaks one venue's kline REST dialect, serves a candle series given to it, and
//! misbehaves on command. On Binance (spot and USD-M), Kraken spot, Bybit (spot or linear) and
//! OKX (SPOT or SWAP) it is also a small exchange ([`binance`], [`kraken`], [`bybit`], [`okx`],
//! [`exchange`]): signed requests verified as the venue
//! verifies them, balances or a wallet and positions, an order book per symbol matched against
//! a settable price, and the venue's error codes.
//!
//! - Dialects ([`venues`]): Binance spot `/api/v3/klines` and USD-M `/fapi/v1/klines` (ascending,
//!   `startTime`/`endTime` inclusive, `limit` ≤ 1000/1500), Bybit `/v5/market/kline` (newest
//!   first, `start`/`end` inclusive, `limit` ≤ 1000, server `time` in the envelope), OKX
//!   `/api/v5/market/candles` (latest 1440 bars only) and `/history-candles` (newest first,
//!   `after`/`before` exclusive, `limit` ≤ 300, `confirm` 0 on the forming bar), Kraken
//!   `/0/public/OHLC` (the latest 720 bars only, `since` exclusive, the forming bar last).
//! - The venue clock is `now_ms` (or the real clock): bars that open after it do not exist
//!   yet, the one containing it is still forming, and the `Date` header tells it.
//! - The venue clock can run ahead or behind the real one ([`MockConfig::clock_skew_ms`],
//!   [`MockVenue::set_clock_skew_ms`]); Binance serves it at `/api/v3/time` and `/fapi/v1/time`.
//! - Binance also serves an order-book snapshot at `/api/v3/depth` and `/fapi/v1/depth`: the
//!   [`MockDepth`] set by [`MockVenue::set_depth_snapshot`].
//! - Faults ([`Fault`]) apply to a range of request numbers ([`MockVenue::inject`]) or to the
//!   next requests of one method and path ([`MockVenue::inject_on`]): 429 or a ban with
//!   `Retry-After`, 500, a garbage body, a connection dropped mid-body, a stall past the
//!   client's timeout, and the two halves of an unknown outcome: the connection closed before
//!   the request runs, or after it ran (an order placed whose answer never comes).
//! - Every request is recorded ([`RecordedRequest`]) with its headers and body; a request that
//!   arrives before a `Retry-After` deadline the mock gave is also listed by
//!   [`MockVenue::early_requests`]. Orders, executions (the fields of Binance's
//!   `executionReport`) and balances are readable too, for a private-stream mock to replay.
//!
//! The server runs on its own thread and runtime, so synchronous tests can use it; dropping the
//! [`MockVenue`] stops accepting, aborts open connections and joins the thread.

mod binance;
pub mod bridge;
mod bybit;
pub mod exchange;
mod kraken;
mod okx;
mod venues;
/// The WebSocket side of the mock venue (its own server; see its module docs).
pub mod ws;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

use keel_engine::fixed::Fixed;

use crate::model::Venue;
pub use exchange::{
    MOCK_API_KEY, MOCK_SECRET, MockApiKey, MockBalance, MockExecution, MockInstrument, MockOrder,
    MockPosition, TradingConfig,
};
pub use okx::MOCK_PASSPHRASE;

/// One bar of the served series, prices and volume as the decimal text the venue sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MockBar {
    pub open_time_ms: i64,
    pub open: String,
    pub high: String,
    pub low: String,
    pub close: String,
    pub volume: String,
}

/// What the mock serves.
#[derive(Clone, Debug)]
pub struct MockConfig {
    pub venue: Venue,
    /// The venue's own name of the instrument (`BTCUSDT`, `BTC-USDT`, `XBTUSD`); requests for
    /// another one are refused the way the venue refuses an unknown symbol.
    pub symbol: String,
    pub interval_ms: i64,
    /// Ascending by open time, no duplicates.
    pub bars: Vec<MockBar>,
    /// The venue's clock; `None` follows the real one.
    pub now_ms: Option<i64>,
    /// Bars per Kraken OHLC answer. Kraken sends its whole 720-bar window at once; a smaller
    /// number makes the downloader page.
    pub kraken_page: usize,
    /// Added to the real clock when `now_ms` is `None` (a venue clock ahead is positive).
    pub clock_skew_ms: i64,
    /// Keys, instruments, balances and fees of the Binance exchange.
    pub trading: TradingConfig,
}

impl MockConfig {
    /// Trading defaults to [`TradingConfig::new`] with `symbol` priced at the last bar's close
    /// (100 without bars).
    pub fn new(venue: Venue, symbol: &str, interval_ms: i64, bars: Vec<MockBar>) -> MockConfig {
        let price = bars
            .last()
            .and_then(|b| Fixed::parse(&b.close).ok())
            .unwrap_or(Fixed::from_int(100));
        MockConfig {
            venue,
            symbol: symbol.to_string(),
            interval_ms,
            bars,
            now_ms: None,
            kraken_page: venues::KRAKEN_WINDOW,
            clock_skew_ms: 0,
            trading: TradingConfig::new(
                matches!(venue, Venue::BinanceSpot | Venue::Kraken),
                symbol,
                price,
            ),
        }
    }
}

/// The order-book snapshot the Binance mock serves at `GET /api/v3/depth` and
/// `GET /fapi/v1/depth`: levels as the decimal text the venue sends, best first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MockDepth {
    pub last_update_id: u64,
    /// Bids from the highest price down.
    pub bids: Vec<(String, String)>,
    /// Asks from the lowest price up.
    pub asks: Vec<(String, String)>,
}

impl MockDepth {
    /// A snapshot at `last_update_id` with `(price, qty)` levels, best first.
    pub fn new(last_update_id: u64, bids: &[(&str, &str)], asks: &[(&str, &str)]) -> MockDepth {
        let own = |ls: &[(&str, &str)]| -> Vec<(String, String)> {
            ls.iter()
                .map(|(p, q)| (p.to_string(), q.to_string()))
                .collect()
        };
        MockDepth {
            last_update_id,
            bids: own(bids),
            asks: own(asks),
        }
    }
}

/// A misbehaviour, served instead of the normal answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 429 with `Retry-After` (seconds).
    RateLimited { retry_after_secs: u64 },
    /// An IP ban with `Retry-After`: 418 on Binance, 403 on Bybit, 429 elsewhere.
    Banned { retry_after_secs: u64 },
    /// HTTP 500 with the venue's generic error body.
    ServerError,
    /// HTTP 200 with a body that is not the venue's JSON.
    Garbage,
    /// The headers and half the body, then the connection is closed.
    DropMidResponse,
    /// Answer normally (the request runs), but only after this long.
    Stall { ms: u64 },
    /// Close the connection without an answer before the request runs: the venue never saw it.
    DropBeforeExecution,
    /// Run the request (place the order), then close the connection without an answer: the
    /// outcome the client cannot know.
    DropAfterExecution,
}

impl Fault {
    /// Whether the request still runs (and so changes the exchange) under this fault.
    pub fn executes(&self) -> bool {
        matches!(
            self,
            Fault::Stall { .. } | Fault::DropMidResponse | Fault::DropAfterExecution
        )
    }
}

/// One request the mock received.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// Request number, from 0.
    pub n: usize,
    pub at: Instant,
    pub method: String,
    pub path: String,
    /// Decoded query parameters in the order sent.
    pub query: Vec<(String, String)>,
    /// Headers, names lowercase, in the order sent.
    pub headers: Vec<(String, String)>,
    /// The body as sent (empty when none).
    pub body: String,
    /// The fault served instead of an answer, if any.
    pub fault: Option<Fault>,
}

impl RecordedRequest {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A header by lowercase name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A request that arrived while a `Retry-After` the mock had sent was still running.
#[derive(Clone, Debug)]
pub struct EarlyRequest {
    pub n: usize,
    /// How long before the deadline it came.
    pub early_by: Duration,
}

enum FaultRule {
    /// Requests number `from..until`.
    Numbers {
        from: usize,
        until: usize,
        fault: Fault,
    },
    /// The next `remaining` requests with this method and path.
    Route {
        method: String,
        path: String,
        remaining: usize,
        fault: Fault,
    },
}

impl FaultRule {
    /// The fault for request `n`, consuming one use of a route rule.
    fn take(&mut self, n: usize, method: &str, path: &str) -> Option<Fault> {
        match self {
            FaultRule::Numbers { from, until, fault } => {
                (*from..*until).contains(&n).then(|| fault.clone())
            }
            FaultRule::Route {
                method: m,
                path: p,
                remaining,
                fault,
            } if *remaining > 0 && m == method && p == path => {
                *remaining -= 1;
                Some(fault.clone())
            }
            FaultRule::Route { .. } => None,
        }
    }
}

#[derive(Default)]
struct State {
    requests: Vec<RecordedRequest>,
    rules: Vec<FaultRule>,
    deadline: Option<Instant>,
    early: Vec<EarlyRequest>,
}

/// A running mock venue. Stops when dropped.
pub struct MockVenue {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MockVenue {
    /// Binds 127.0.0.1 on a free port and starts serving.
    pub fn start(config: MockConfig) -> std::io::Result<MockVenue> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (shutdown, stop) = oneshot::channel();
        let spot = match config.venue {
            // One mock serves one Bybit category or OKX instrument type, as configured.
            Venue::Bybit | Venue::Okx => config.trading.spot,
            venue => matches!(venue, Venue::BinanceSpot | Venue::Kraken),
        };
        let shared = Arc::new(Shared {
            exchange: Mutex::new(exchange::Exchange::new(spot, &config.trading)),
            kraken: Mutex::default(),
            depth: Mutex::default(),
            canned: Mutex::default(),
            skew_ms: AtomicI64::new(config.clock_skew_ms),
            config,
            state: Mutex::new(State::default()),
        });
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("mock-venue-{}", addr.port()))
            .spawn(move || runtime.block_on(serve(listener, serving, stop)))?;
        Ok(MockVenue {
            addr,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`, the base URL to give a client.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `fault` to requests number `from` to `from + times - 1` (from 0, counting every
    /// request the mock receives). `usize::MAX` times means for ever. Earlier rules win.
    pub fn inject(&self, from: usize, times: usize, fault: Fault) {
        lock(&self.shared.state).rules.push(FaultRule::Numbers {
            from,
            until: from.saturating_add(times),
            fault,
        });
    }

    /// Serves `fault` to the next `times` requests with `method` (`"POST"`) and `path`
    /// (`"/api/v3/order"`), whatever their number. Earlier rules win.
    pub fn inject_on(&self, method: &str, path: &str, times: usize, fault: Fault) {
        lock(&self.shared.state).rules.push(FaultRule::Route {
            method: method.to_string(),
            path: path.to_string(),
            remaining: times,
            fault,
        });
    }

    /// Removes every fault rule; later requests get normal answers.
    pub fn clear_faults(&self) {
        lock(&self.shared.state).rules.clear();
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.state).requests.clone()
    }

    /// The requests with `method` and `path`, in arrival order.
    pub fn requests_to(&self, method: &str, path: &str) -> Vec<RecordedRequest> {
        lock(&self.shared.state)
            .requests
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .cloned()
            .collect()
    }

    /// Requests that came before a `Retry-After` deadline had passed.
    pub fn early_requests(&self) -> Vec<EarlyRequest> {
        lock(&self.shared.state).early.clone()
    }

    /// The venue clock now, in ms.
    pub fn now_ms(&self) -> i64 {
        venue_now_ms(&self.shared)
    }

    /// Moves the venue clock against the real one (when `now_ms` is not fixed).
    pub fn set_clock_skew_ms(&self, skew_ms: i64) {
        self.shared.skew_ms.store(skew_ms, Ordering::Relaxed);
    }

    /// Serves `body` (e.g. a recorded venue payload) with status 200 for every `GET path` from
    /// now on, whatever the query: for public endpoints the mock does not model.
    pub fn serve_canned(&self, path: &str, body: &str) {
        lock(&self.shared.canned).insert(path.to_string(), body.to_string());
    }

    /// The Binance depth snapshot served from now on (empty at id 0 until set); a test moves it
    /// forward as the stream it plays advances.
    pub fn set_depth_snapshot(&self, depth: MockDepth) {
        *lock(&self.shared.depth) = depth;
    }

    /// Sets `symbol`'s price and matches the open orders against it (limits fill, stops
    /// trigger).
    pub fn set_price(&self, symbol: &str, price: Fixed) {
        let now = self.now_ms();
        let mut ex = lock(&self.shared.exchange);
        ex.expire_countdowns(now);
        ex.set_price(symbol, price, now);
    }

    /// Every order the exchange accepted, in placement order (algo orders included).
    pub fn orders(&self) -> Vec<MockOrder> {
        self.with_exchange(|ex| ex.orders.clone())
    }

    /// The orders still open.
    pub fn open_orders(&self) -> Vec<MockOrder> {
        self.with_exchange(|ex| ex.orders.iter().filter(|o| o.is_open()).cloned().collect())
    }

    /// Every order update (`NEW`, `TRADE`, `CANCELED`, `EXPIRED`), in order.
    pub fn executions(&self) -> Vec<MockExecution> {
        self.with_exchange(|ex| ex.executions.clone())
    }

    /// The fills (`TRADE` executions), in order.
    pub fn fills(&self) -> Vec<MockExecution> {
        self.with_exchange(|ex| {
            ex.executions
                .iter()
                .filter(|e| e.execution_type == "TRADE")
                .cloned()
                .collect()
        })
    }

    /// Spot: free and locked of `asset`. USD-M: the wallet balance as `free`.
    pub fn balance(&self, asset: &str) -> MockBalance {
        self.with_exchange(|ex| ex.balances.get(asset).copied().unwrap_or_default())
    }

    /// USD-M position of `symbol` (flat when none).
    pub fn position(&self, symbol: &str) -> MockPosition {
        self.with_exchange(|ex| ex.positions.get(symbol).copied().unwrap_or_default())
    }

    fn with_exchange<T>(&self, f: impl FnOnce(&exchange::Exchange) -> T) -> T {
        let now = self.now_ms();
        let mut ex = lock(&self.shared.exchange);
        ex.expire_countdowns(now);
        f(&ex)
    }
}

impl Drop for MockVenue {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Shared {
    config: MockConfig,
    state: Mutex<State>,
    exchange: Mutex<exchange::Exchange>,
    /// Kraken nonces, dead-man switch calls and WebSocket tokens.
    kraken: Mutex<kraken::KrakenState>,
    /// The Binance depth snapshot.
    depth: Mutex<MockDepth>,
    /// Bodies served verbatim for `GET path` (recorded venue payloads a test supplies).
    canned: Mutex<std::collections::BTreeMap<String, String>>,
    skew_ms: AtomicI64,
}

async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = shared.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| handle(shared.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    // Stalled handlers and kept-alive connections end here, not when their client gives up.
    connections.shutdown().await;
}

type MockBody = BoxBody<Bytes, std::io::Error>;

/// The venue clock in ms: the fixed `now_ms`, else the real clock plus the skew.
fn venue_now_ms(shared: &Shared) -> i64 {
    shared.config.now_ms.unwrap_or_else(|| {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        real.saturating_add(shared.skew_ms.load(Ordering::Relaxed))
    })
}

fn decode_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied(), b.get(i + 2).copied()) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                let v = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(v as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What arrived, before anything is decided about it.
struct Arrived {
    method: String,
    path: String,
    raw_query: String,
    headers: Vec<(String, String)>,
    body: String,
}

/// Records the request and picks the fault to serve, if any.
fn record(shared: &Shared, req: &Arrived) -> (RecordedRequest, Option<Fault>) {
    let now = Instant::now();
    let mut st = lock(&shared.state);
    let n = st.requests.len();
    if let Some(deadline) = st.deadline
        && now < deadline
    {
        st.early.push(EarlyRequest {
            n,
            early_by: deadline - now,
        });
    }
    let fault = st
        .rules
        .iter_mut()
        .find_map(|r| r.take(n, &req.method, &req.path));
    let rec = RecordedRequest {
        n,
        at: now,
        method: req.method.clone(),
        path: req.path.clone(),
        query: decode_query(&req.raw_query),
        headers: req.headers.clone(),
        body: req.body.clone(),
        fault: fault.clone(),
    };
    st.requests.push(rec.clone());
    (rec, fault)
}

async fn read_request(req: Request<hyper::body::Incoming>) -> Arrived {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
        Err(_) => String::new(),
    };
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| {
            let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
            (k.as_str().to_ascii_lowercase(), v)
        })
        .collect();
    Arrived {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        raw_query: parts.uri.query().unwrap_or("").to_string(),
        headers,
        body,
    }
}

/// The venue's answer, running the request (orders change the exchange).
fn execute(shared: &Shared, req: &Arrived, rec: &RecordedRequest, now_ms: i64) -> venues::Answer {
    let config = &shared.config;
    if req.method == "GET"
        && let Some(body) = lock(&shared.canned).get(&req.path)
    {
        return venues::Answer {
            status: 200,
            body: body.clone(),
        };
    }
    if matches!(config.venue, Venue::BinanceSpot | Venue::BinanceUsdm) {
        let http = binance::HttpRequest {
            method: &req.method,
            path: &req.path,
            raw_query: &req.raw_query,
            body: &req.body,
            api_key: rec.header("x-mbx-apikey"),
        };
        let spot = config.venue == Venue::BinanceSpot;
        let depth = lock(&shared.depth).clone();
        if let Some(answer) = binance::depth_answer(&depth, spot, &config.symbol, &http, now_ms) {
            return answer;
        }
        if let Some(answer) = binance::answer(&mut lock(&shared.exchange), &http, now_ms) {
            return answer;
        }
    }
    if config.venue == Venue::Kraken {
        let http = kraken::HttpRequest {
            method: &req.method,
            path: &req.path,
            body: &req.body,
            api_key: rec.header("api-key"),
            api_sign: rec.header("api-sign"),
        };
        let mut ex = lock(&shared.exchange);
        if let Some(answer) = kraken::answer(&mut ex, &mut lock(&shared.kraken), &http, now_ms) {
            return answer;
        }
    }
    let dialect = match config.venue {
        Venue::Bybit => bybit::answer(&mut lock(&shared.exchange), req, now_ms),
        Venue::Okx => okx::answer(&mut lock(&shared.exchange), req, now_ms),
        _ => None,
    };
    if let Some(answer) = dialect {
        return answer;
    }
    venues::answer(config, &rec.path, &rec.query, now_ms)
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<MockBody>, std::io::Error> {
    let incoming = read_request(req).await;
    let (rec, fault) = record(&shared, &incoming);
    let venue = shared.config.venue;
    if let Some(Fault::Stall { ms }) = fault {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let runs = fault.as_ref().is_none_or(Fault::executes);
    let answer = runs.then(|| execute(&shared, &incoming, &rec, venue_now_ms(&shared)));
    let body = || answer.as_ref().map_or(String::new(), |a| a.body.clone());
    let response = match fault {
        None | Some(Fault::Stall { .. }) => match &answer {
            Some(a) => full(a.status, a.body.clone()),
            None => full(500, venues::server_error(venue)),
        },
        Some(Fault::RateLimited { retry_after_secs }) => {
            let (status, body) = venues::rate_limited(venue, false);
            limited(&shared, status, body, retry_after_secs)
        }
        Some(Fault::Banned { retry_after_secs }) => {
            let (status, body) = venues::rate_limited(venue, true);
            limited(&shared, status, body, retry_after_secs)
        }
        Some(Fault::ServerError) => full(500, venues::server_error(venue)),
        Some(Fault::Garbage) => full(200, "<html><body>502 Bad Gateway</body></html>{\"".into()),
        Some(Fault::DropMidResponse) => truncated(body()),
        Some(Fault::DropBeforeExecution) => {
            return Err(std::io::Error::other(
                "mock venue dropped the request unread",
            ));
        }
        Some(Fault::DropAfterExecution) => {
            return Err(std::io::Error::other("mock venue dropped the answer"));
        }
    };
    Ok(with_date(response, venue_now_ms(&shared)))
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn full(code: u16, body: String) -> Response<MockBody> {
    let body = http_body_util::Full::new(Bytes::from(body))
        .map_err(|never| match never {})
        .boxed();
    let mut r = Response::new(body);
    *r.status_mut() = status(code);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// A rate-limit answer; the request after it must not come before `Retry-After` is over.
fn limited(shared: &Shared, code: u16, body: String, retry_after_secs: u64) -> Response<MockBody> {
    let deadline = Instant::now() + Duration::from_secs(retry_after_secs);
    {
        let mut st = lock(&shared.state);
        st.deadline = Some(st.deadline.map_or(deadline, |d| d.max(deadline)));
    }
    let mut r = full(code, body);
    r.headers_mut()
        .insert(hyper::header::RETRY_AFTER, retry_after_secs.into());
    r
}

fn with_date(mut r: Response<MockBody>, now_ms: i64) -> Response<MockBody> {
    if let Ok(v) = hyper::header::HeaderValue::from_str(&http_date(now_ms)) {
        r.headers_mut().insert(hyper::header::DATE, v);
    }
    r
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) for `ms` since the epoch.
fn http_date(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (year, month, day) = crate::civil::civil_from_days(days);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

/// Sends the first half of `body` under a `Content-Length` for all of it, lets it reach the
/// client, then fails, which makes hyper close the connection.
struct Truncated {
    first: Option<Bytes>,
    full_len: u64,
    /// A pause between the half body and the drop, so the client has the headers and the half
    /// (hyper flushes while the body is pending).
    pause: Pin<Box<tokio::time::Sleep>>,
}

impl Body for Truncated {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(b) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(b))));
        }
        match self.pause.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => Poll::Ready(Some(Err(std::io::Error::other(
                "mock venue dropped the connection",
            )))),
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.full_len)
    }
}

fn truncated(body: String) -> Response<MockBody> {
    let bytes = Bytes::from(body);
    let full_len = bytes.len() as u64;
    let half = bytes.slice(..bytes.len() / 2);
    let mut r = Response::new(
        Truncated {
            first: Some(half),
            full_len,
            pause: Box::pin(tokio::time::sleep(Duration::from_millis(50))),
        }
        .boxed(),
    );
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

#[cfg(test)]
mod tests;
