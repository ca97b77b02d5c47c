//! A loopback mock venue for client and downloader tests: an HTTP/1.1 server on 127.0.0.1
//! (port 0) that speaks one venue's kline REST dialect, serves a candle series given to it, and
//! misbehaves on command.
//!
//! - Dialects ([`venues`]): Binance spot `/api/v3/klines` and USD-M `/fapi/v1/klines` (ascending,
//!   `startTime`/`endTime` inclusive, `limit` ≤ 1000/1500), Bybit `/v5/market/kline` (newest
//!   first, `start`/`end` inclusive, `limit` ≤ 1000, server `time` in the envelope), OKX
//!   `/api/v5/market/candles` (latest 1440 bars only) and `/history-candles` (newest first,
//!   `after`/`before` exclusive, `limit` ≤ 300, `confirm` 0 on the forming bar), Kraken
//!   `/0/public/OHLC` (the latest 720 bars only, `since` exclusive, the forming bar last).
//! - The venue clock is `now_ms` (or the real clock): bars that open after it do not exist
//!   yet, the one containing it is still forming, and the `Date` header tells it.
//! - Faults ([`Fault`]) apply to a range of request numbers: 429 or a ban with `Retry-After`,
//!   500, a garbage body, a connection dropped mid-body, a stall past the client's timeout.
//! - Every request is recorded ([`RecordedRequest`]); a request that arrives before a
//!   `Retry-After` deadline the mock gave is also listed by [`MockVenue::early_requests`].
//!
//! The server runs on its own thread and runtime, so synchronous tests can use it; dropping the
//! [`MockVenue`] stops accepting, aborts open connections and joins the thread.

mod venues;
/// The WebSocket side of the mock venue (its own server; see its module docs).
pub mod ws;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

use crate::model::Venue;

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
}

impl MockConfig {
    pub fn new(venue: Venue, symbol: &str, interval_ms: i64, bars: Vec<MockBar>) -> MockConfig {
        MockConfig {
            venue,
            symbol: symbol.to_string(),
            interval_ms,
            bars,
            now_ms: None,
            kraken_page: venues::KRAKEN_WINDOW,
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
    /// Answer normally, but only after this long.
    Stall { ms: u64 },
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
}

/// A request that arrived while a `Retry-After` the mock had sent was still running.
#[derive(Clone, Debug)]
pub struct EarlyRequest {
    pub n: usize,
    /// How long before the deadline it came.
    pub early_by: Duration,
}

struct FaultRule {
    from: usize,
    until: usize,
    fault: Fault,
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
    state: Arc<Mutex<State>>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
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
        let state = Arc::new(Mutex::new(State::default()));
        let (shutdown, stop) = oneshot::channel();
        let shared = Arc::new(Shared {
            config,
            state: state.clone(),
        });
        let thread = std::thread::Builder::new()
            .name(format!("mock-venue-{}", addr.port()))
            .spawn(move || runtime.block_on(serve(listener, shared, stop)))?;
        Ok(MockVenue {
            addr,
            state,
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
        lock(&self.state).rules.push(FaultRule {
            from,
            until: from.saturating_add(times),
            fault,
        });
    }

    /// Removes every fault rule; later requests get normal answers.
    pub fn clear_faults(&self) {
        lock(&self.state).rules.clear();
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }

    /// Requests that came before a `Retry-After` deadline had passed.
    pub fn early_requests(&self) -> Vec<EarlyRequest> {
        lock(&self.state).early.clone()
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
    state: Arc<Mutex<State>>,
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

/// The venue clock in ms.
fn now_ms(config: &MockConfig) -> i64 {
    config.now_ms.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
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

/// Records the request and picks the fault to serve, if any.
fn record(shared: &Shared, req: &Request<Incoming>) -> (RecordedRequest, Option<Fault>) {
    let now = Instant::now();
    let mut st = lock(&shared.state);
    let n = st.requests.len();
    if let Some(deadline) = st.deadline {
        if now < deadline {
            st.early.push(EarlyRequest {
                n,
                early_by: deadline - now,
            });
        }
    }
    let fault = st
        .rules
        .iter()
        .find(|r| (r.from..r.until).contains(&n))
        .map(|r| r.fault.clone());
    let rec = RecordedRequest {
        n,
        at: now,
        method: req.method().as_str().to_string(),
        path: req.uri().path().to_string(),
        query: decode_query(req.uri().query().unwrap_or("")),
        fault: fault.clone(),
    };
    st.requests.push(rec.clone());
    (rec, fault)
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<MockBody>, Infallible> {
    let (rec, fault) = record(&shared, &req);
    let config = &shared.config;
    if let Some(Fault::Stall { ms }) = fault {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let answer = venues::answer(config, &rec.path, &rec.query, now_ms(config));
    let response = match fault {
        None | Some(Fault::Stall { .. }) => full(answer.status, answer.body),
        Some(Fault::RateLimited { retry_after_secs }) => {
            let (status, body) = venues::rate_limited(config.venue, false);
            limited(&shared, status, body, retry_after_secs)
        }
        Some(Fault::Banned { retry_after_secs }) => {
            let (status, body) = venues::rate_limited(config.venue, true);
            limited(&shared, status, body, retry_after_secs)
        }
        Some(Fault::ServerError) => full(500, venues::server_error(config.venue)),
        Some(Fault::Garbage) => full(200, "<html><body>502 Bad Gateway</body></html>{\"".into()),
        Some(Fault::DropMidResponse) => truncated(answer.body),
    };
    Ok(with_date(response, now_ms(config)))
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
