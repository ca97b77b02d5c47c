//! The REST client: sends the codecs' `RestRequest`s to one venue over HTTPS (reqwest with
//! rustls and the ring provider), inside that venue's request-weight budget, and turns every
//! failure into a typed [`ClientError`] that says what was asked and what went wrong.
//!
//! Contract:
//! - a request waits for the budget rather than exceed it ([`budget`]); a 429/418 (or a venue's
//!   rate-limit code) blocks every request until its `Retry-After` has passed;
//! - only requests marked `retry_safe` are sent again after an unknown outcome (timeout, dropped
//!   connection, 5xx); rate-limit refusals are retried for any request, since the venue did not
//!   run it; every retry waits a capped, jittered exponential backoff ([`retry`]), and the
//!   number of retries is bounded;
//! - an error names the venue, the method, the path with its query (any `signature`/`sign`
//!   parameter redacted), the HTTP status and the venue's text; nothing is logged, and no
//!   secret (API secret, passphrase, signature) ever appears in an error;
//! - signed requests carry the venue's authentication, stamped at each attempt from the
//!   client's clock corrected by the offset [`RestClient::sync_clock`] measured against the
//!   venue's own clock: Binance `recvWindow`/`timestamp`/`signature`, Bybit `X-BAPI-*`, OKX
//!   `OK-ACCESS-*`, Kraken `API-Key`/`API-Sign` with an always increasing nonce (the codecs'
//!   [`crate::sign`] functions do the signing). A "timestamp outside the receive window"
//!   refusal makes the client re-sync once and send once more: the venue refused the request
//!   before running it, so the resend cannot double anything.
//!
//! The typed trading calls (place, cancel, query, open orders, balances, positions, the
//! dead-man switch) are in [`trading`]; they add the unknown-outcome reconciliation an order
//! placement needs.

pub mod budget;
pub mod retry;
pub mod tokens;
pub mod trading;

mod binance;
mod bybit;
mod kraken;
mod okx;
mod placement;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use keel_engine::symbol::Symbol;

use crate::credentials::Credentials;
use crate::model::{Instrument, Method, RestRequest, Venue, VenueError};
use crate::sign::{DEFAULT_RECV_WINDOW_MS, SignedRequest};
use budget::{Budget, Limit};
use retry::{RetryPolicy, XorShift64};

/// Largest response body accepted; a kline page is a few hundred kilobytes at most.
pub const MAX_BODY_BYTES: usize = 32 << 20;

/// Binance's 418 without a `Retry-After`: the shortest ban its docs name (2 minutes).
const DEFAULT_BAN: Duration = Duration::from_secs(120);

/// The venue's production REST base URL (from the codec modules).
pub fn default_base_url(venue: Venue) -> &'static str {
    match venue {
        Venue::BinanceSpot => crate::binance::SPOT_REST_URL,
        Venue::BinanceUsdm => crate::binance::USDM_REST_URL,
        Venue::Bybit => crate::bybit::rest_base_url(crate::bybit::Network::Mainnet),
        Venue::Okx => crate::okx::REST_URL,
        Venue::Kraken => crate::kraken::REST_URL,
    }
}

/// How a [`RestClient`] talks to one venue.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub venue: Venue,
    /// Scheme, host and optional port, no trailing path (`https://api.binance.com`).
    pub base_url: String,
    /// Whole-request deadline: connect, send, and read the full body.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub retry: RetryPolicy,
    pub limits: Vec<Limit>,
    /// The account's keys; signed requests fail without sending when `None`. Printing the
    /// config never shows the secret (see `Credentials`' `Debug`).
    pub credentials: Option<Credentials>,
    /// `recvWindow` (Binance) / `X-BAPI-RECV-WINDOW` (Bybit): how old a signed request may be
    /// when it reaches the venue.
    pub recv_window_ms: u64,
    /// Bybit: the product category the typed trading calls address (spot, or linear USDT
    /// perpetuals). Binance has a venue per market; OKX reads it from the instrument id.
    pub bybit_category: crate::bybit::Category,
}

impl ClientConfig {
    /// Production URL, the venue's documented limits, 30 s timeout, default retries, no
    /// credentials, the venues' default 5 s receive window.
    pub fn new(venue: Venue) -> ClientConfig {
        ClientConfig {
            venue,
            base_url: default_base_url(venue).to_string(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            limits: budget::venue_limits(venue),
            credentials: None,
            recv_window_ms: DEFAULT_RECV_WINDOW_MS,
            bybit_category: crate::bybit::Category::Linear,
        }
    }

    /// The same config with `credentials`.
    pub fn with_credentials(mut self, credentials: Credentials) -> ClientConfig {
        self.credentials = Some(credentials);
        self
    }
}

/// A successful answer.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
    /// The venue's clock from the `Date` header (whole seconds, so never ahead of the venue).
    pub server_time_ms: Option<i64>,
    /// Attempts this request took (1 when it succeeded the first time).
    pub attempts: u32,
}

/// A request that failed for good.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{venue} {request}: {}{}{}", status_text(*.status), error_text(.error), attempts_text(*.attempts))]
pub struct ClientError {
    /// The venue's command-line name.
    pub venue: &'static str,
    /// `METHOD /path?query`, secrets redacted.
    pub request: String,
    /// The last HTTP status, if an answer came.
    pub status: Option<u16>,
    pub error: VenueError,
    pub attempts: u32,
}

fn status_text(status: Option<u16>) -> String {
    status.map_or(String::new(), |s| format!("HTTP {s}: "))
}

/// `VenueError`'s text, with a rate limit's wait in seconds.
fn error_text(error: &VenueError) -> String {
    match error {
        VenueError::RateLimited {
            retry_after_ms,
            banned,
        } => {
            let what = if *banned {
                "the venue has banned this IP"
            } else {
                "rate limited"
            };
            match retry_after_ms {
                Some(ms) => format!("{what}, Retry-After {} s", ms.div_ceil(1000)),
                None => what.to_string(),
            }
        }
        other => other.to_string(),
    }
}

fn attempts_text(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (gave up after {attempts} attempts)")
    } else {
        String::new()
    }
}

/// Counters over the client's life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests sent (every attempt counts).
    pub requests: u64,
    /// Attempts after the first, over all requests.
    pub retries: u64,
    /// Time spent waiting for the budget or a venue's `Retry-After`, in ms.
    pub waited_ms: u64,
}

/// The REST client of one venue. Methods take `&self`; the budget is shared by every request
/// sent through the same client.
pub struct RestClient {
    http: reqwest::Client,
    config: ClientConfig,
    budget: Mutex<Budget>,
    rng: Mutex<XorShift64>,
    requests: AtomicU64,
    retries: AtomicU64,
    waited_ms: AtomicU64,
    /// Venue clock minus local clock, in ms, from the last [`RestClient::sync_clock`].
    clock_offset_ms: AtomicI64,
    /// The last Kraken nonce sent; the next is larger.
    last_nonce: AtomicU64,
    /// Trading rules checked before an order is sent, by symbol.
    instruments: Mutex<BTreeMap<Symbol, Instrument>>,
}

/// What one attempt produced.
enum Attempt {
    Answer(Response),
    Failed {
        status: Option<u16>,
        error: VenueError,
    },
}

impl RestClient {
    pub fn new(config: ClientConfig) -> Result<RestClient, ClientError> {
        // reqwest is built without a crypto provider (so aws-lc stays out of the build); ring
        // is installed as the process default. An already installed provider is kept.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("keel/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| ClientError {
                venue: config.venue.name(),
                request: "client setup".into(),
                status: None,
                error: VenueError::Other {
                    code: "client".into(),
                    message: error_chain(&e.without_url()),
                },
                attempts: 0,
            })?;
        let budget = Mutex::new(Budget::new(config.limits.clone()));
        let rng = Mutex::new(XorShift64::new(config.retry.jitter_seed));
        Ok(RestClient {
            http,
            config,
            budget,
            rng,
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            waited_ms: AtomicU64::new(0),
            clock_offset_ms: AtomicI64::new(0),
            last_nonce: AtomicU64::new(0),
            instruments: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    pub fn stats(&self) -> Stats {
        Stats {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            waited_ms: self.waited_ms.load(Ordering::Relaxed),
        }
    }

    /// Sends `req`, waiting for the budget, retrying as the module doc says. A signed request
    /// refused for its timestamp re-syncs the clock and is sent once more.
    pub async fn send(&self, req: &RestRequest) -> Result<Response, ClientError> {
        let first = self.send_with_retries(req).await;
        let Err(e) = &first else {
            return first;
        };
        if !req.signed || !matches!(e.error, VenueError::TimestampOutsideRecvWindow(_)) {
            return first;
        }
        // The venue refused before running the request, so a resend cannot double it. When
        // the clock cannot be read, the venue's refusal is the more useful error.
        if self.sync_clock().await.is_err() {
            return first;
        }
        self.retries.fetch_add(1, Ordering::Relaxed);
        let earlier = e.attempts;
        self.send_with_retries(req).await.map_err(|mut e| {
            e.attempts += earlier;
            e
        })
    }

    /// [`RestClient::send`] without the clock re-sync: budget, attempts and retries.
    async fn send_with_retries(&self, req: &RestRequest) -> Result<Response, ClientError> {
        let fail = |status, error, attempts| ClientError {
            venue: self.config.venue.name(),
            request: describe(req),
            status,
            error,
            attempts,
        };
        if req.signed && self.config.credentials.is_none() {
            let error = VenueError::AuthFailure(
                "this request must be signed and the client has no credentials".into(),
            );
            return Err(fail(None, error, 0));
        }
        let mut attempts = 0u32;
        loop {
            self.acquire(req).await;
            attempts += 1;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let (status, error) = match self.attempt(req).await {
                Attempt::Answer(mut response) => {
                    response.attempts = attempts;
                    return Ok(response);
                }
                Attempt::Failed { status, error } => (status, error),
            };
            let retries_used = attempts - 1;
            let wait = match self.retry_wait(req, status, &error, retries_used) {
                Ok(wait) if retries_used < self.config.retry.max_retries => wait,
                Ok(_) => return Err(fail(status, error, attempts)),
                Err(give_up) => return Err(fail(status, give_up, attempts)),
            };
            self.retries.fetch_add(1, Ordering::Relaxed);
            if let Some(wait) = wait {
                self.sleep(wait).await;
            }
        }
    }

    /// Reads the venue's clock and stores `venue − local` (from the middle of the round trip)
    /// as the offset signed timestamps are corrected by. Returns the offset in ms. Each
    /// attempt measures its own round trip, so a retry never skews the offset. Call it once
    /// before trading; the client calls it again by itself after a timestamp refusal.
    pub async fn sync_clock(&self) -> Result<i64, ClientError> {
        let req = time_request(self.config.venue);
        let mut attempts = 0u32;
        loop {
            self.acquire(&req).await;
            attempts += 1;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let before = local_now_ms();
            let attempt = self.attempt(&req).await;
            let after = local_now_ms();
            let (status, error) = match attempt {
                Attempt::Answer(r) => match parse_venue_time_ms(self.config.venue, &r.body) {
                    Some(venue_ms) => {
                        let offset = venue_ms - (before + after) / 2;
                        self.clock_offset_ms.store(offset, Ordering::Relaxed);
                        return Ok(offset);
                    }
                    None => (Some(r.status), decode_error("server time", &r.body)),
                },
                Attempt::Failed { status, error } => (status, error),
            };
            let fail = |error| ClientError {
                venue: self.config.venue.name(),
                request: describe(&req),
                status,
                error,
                attempts,
            };
            let retries_used = attempts - 1;
            match self.retry_wait(&req, status, &error, retries_used) {
                Ok(_) if retries_used >= self.config.retry.max_retries => return Err(fail(error)),
                Ok(wait) => {
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    if let Some(wait) = wait {
                        self.sleep(wait).await;
                    }
                }
                Err(give_up) => return Err(fail(give_up)),
            }
        }
    }

    /// Venue clock minus local clock, in ms (0 until [`RestClient::sync_clock`] ran).
    pub fn clock_offset_ms(&self) -> i64 {
        self.clock_offset_ms.load(Ordering::Relaxed)
    }

    /// The local clock corrected to the venue's, in ms.
    fn venue_now_ms(&self) -> u64 {
        let ms = local_now_ms().saturating_add(self.clock_offset_ms());
        u64::try_from(ms).unwrap_or(0)
    }

    /// The stamp a signed request carries: the corrected clock, and for Kraken a nonce that is
    /// always larger than the last one even if the clock steps back.
    fn stamp(&self) -> u64 {
        let now = self.venue_now_ms();
        if self.config.venue != Venue::Kraken {
            return now;
        }
        let mut last = self.last_nonce.load(Ordering::Relaxed);
        loop {
            let next = now.max(last + 1);
            match self
                .last_nonce
                .compare_exchange(last, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    /// Whether and how long to wait before retrying: `Ok(None)` retries as soon as the budget
    /// allows (a venue block is already set), `Ok(Some(d))` after `d`, `Err(e)` gives up with
    /// `e`.
    fn retry_wait(
        &self,
        req: &RestRequest,
        status: Option<u16>,
        error: &VenueError,
        retries_used: u32,
    ) -> Result<Option<Duration>, VenueError> {
        match error {
            VenueError::RateLimited {
                retry_after_ms,
                banned,
            } => {
                let wait = match (retry_after_ms, banned) {
                    (Some(ms), _) => Duration::from_millis(*ms),
                    (None, true) => DEFAULT_BAN,
                    (None, false) => self.backoff(retries_used),
                };
                if wait > self.config.retry.max_venue_wait {
                    return Err(VenueError::RateLimited {
                        retry_after_ms: Some(duration_ms(wait)),
                        banned: *banned,
                    });
                }
                let until = Instant::now() + wait;
                lock(&self.budget).block_until(until);
                Ok(None)
            }
            VenueError::UnknownOutcome(_) if req.retry_safe => Ok(Some(self.backoff(retries_used))),
            _ if req.retry_safe && status.is_some_and(|s| s >= 500) => {
                Ok(Some(self.backoff(retries_used)))
            }
            other => Err(other.clone()),
        }
    }

    fn backoff(&self, retry: u32) -> Duration {
        let mut rng = lock(&self.rng);
        self.config.retry.backoff(retry, &mut rng)
    }

    async fn sleep(&self, d: Duration) {
        self.waited_ms.fetch_add(duration_ms(d), Ordering::Relaxed);
        tokio::time::sleep(d).await;
    }

    /// Waits until the budget admits `req`, then records it as sent.
    async fn acquire(&self, req: &RestRequest) {
        loop {
            let wait = {
                let mut budget = lock(&self.budget);
                match budget.try_acquire(Instant::now(), &req.path, req.weight) {
                    Ok(()) => return,
                    Err(wait) => wait,
                }
            };
            self.sleep(wait).await;
        }
    }

    /// The request as it goes on the wire: signed (and stamped now) when it must be.
    fn wire(&self, req: &RestRequest) -> Result<SignedRequest, VenueError> {
        match (&self.config.credentials, req.signed) {
            (Some(credentials), true) => crate::sign::sign_request_with_recv_window(
                self.config.venue,
                credentials,
                req,
                self.stamp(),
                self.config.recv_window_ms,
            )
            // SignError never carries key material.
            .map_err(|e| VenueError::AuthFailure(e.to_string())),
            (None, true) => Err(VenueError::AuthFailure(
                "this request must be signed and the client has no credentials".into(),
            )),
            (credentials, false) => {
                let content_type = content_type(self.config.venue).to_string();
                let mut headers: Vec<(String, String)> = req
                    .body
                    .as_ref()
                    .map(|_| ("Content-Type".to_string(), content_type))
                    .into_iter()
                    .collect();
                // Binance's USER_STREAM calls (listen keys) want the key header, no signature.
                let binance = matches!(self.config.venue, Venue::BinanceSpot | Venue::BinanceUsdm);
                if let Some(c) = credentials.as_ref().filter(|_| binance) {
                    headers.push(("X-MBX-APIKEY".to_string(), c.api_key().to_string()));
                }
                Ok(SignedRequest {
                    url_query: crate::binance::query_string(&req.query),
                    headers,
                    body: req.body.clone(),
                })
            }
        }
    }

    async fn attempt(&self, req: &RestRequest) -> Attempt {
        let wire = match self.wire(req) {
            Ok(w) => w,
            Err(error) => {
                return Attempt::Failed {
                    status: None,
                    error,
                };
            }
        };
        let url = url(&self.config.base_url, &req.path, &wire.url_query);
        let method = match req.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut builder = self.http.request(method, url);
        for (name, value) in &wire.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(body) = wire.body {
            builder = builder.body(body);
        }
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) => return self.transport_failure(None, e),
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = match read_body(response).await {
            Ok(b) => b,
            Err(BodyError::Transport(e)) => return self.transport_failure(Some(status), e),
            Err(BodyError::TooLarge) => {
                return Attempt::Failed {
                    status: Some(status),
                    error: VenueError::Other {
                        code: "body".into(),
                        message: format!("response larger than {MAX_BODY_BYTES} bytes"),
                    },
                };
            }
        };
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        self.observe_used_weight(header("x-mbx-used-weight-1m"));
        let retry_after = header("retry-after").or(header("x-bapi-limit-reset-timestamp"));
        match classify(self.config.venue, status, &body, retry_after) {
            None => Attempt::Answer(Response {
                status,
                body,
                server_time_ms: header("date").and_then(parse_http_date_ms),
                attempts: 0,
            }),
            Some(error) => Attempt::Failed {
                status: Some(status),
                error,
            },
        }
    }

    fn transport_failure(&self, status: Option<u16>, e: reqwest::Error) -> Attempt {
        let detail = if e.is_timeout() {
            format!(
                "no complete answer within {} ms",
                duration_ms(self.config.timeout)
            )
        } else {
            // Without the URL: it carries the query string, so possibly a signature.
            error_chain(&e.without_url())
        };
        Attempt::Failed {
            status,
            error: VenueError::UnknownOutcome(detail),
        }
    }

    /// Binance reports the IP's weight used in the current minute; when another client on the
    /// same IP has spent it, hold requests until the next minute starts.
    fn observe_used_weight(&self, header: Option<&str>) {
        let Some(used) = header.and_then(|h| h.trim().parse::<u32>().ok()) else {
            return;
        };
        let capacity = self
            .config
            .limits
            .iter()
            .filter(|l| l.path.is_none())
            .map(|l| l.capacity)
            .min();
        if capacity.is_some_and(|c| used >= c) {
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, duration_ms);
            let to_next_minute = 60_000 - now_ms % 60_000;
            let until = Instant::now() + Duration::from_millis(to_next_minute);
            lock(&self.budget).block_until(until);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing panics while holding these locks; recover the data if something ever did.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn content_type(venue: Venue) -> &'static str {
    match venue {
        Venue::Bybit | Venue::Okx => "application/json",
        Venue::BinanceSpot | Venue::BinanceUsdm | Venue::Kraken => {
            "application/x-www-form-urlencoded"
        }
    }
}

/// The venue's error for this answer, `None` when it is a success.
pub fn classify(
    venue: Venue,
    status: u16,
    body: &str,
    retry_after: Option<&str>,
) -> Option<VenueError> {
    match venue {
        Venue::BinanceSpot | Venue::BinanceUsdm => (!(200..300).contains(&status))
            .then(|| crate::binance::parse_error(status, body, retry_after)),
        Venue::Bybit => crate::bybit::parse_error(status, body, retry_after),
        Venue::Okx => crate::okx::parse_error(status, body, retry_after),
        Venue::Kraken => crate::kraken::parse_error(status, body, retry_after),
    }
}

fn url(base: &str, path: &str, query: &str) -> String {
    let mut url = format!("{}{path}", base.trim_end_matches('/'));
    if !query.is_empty() {
        url.push('?');
        url.push_str(query);
    }
    url
}

fn local_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The venue's public server-time request.
fn time_request(venue: Venue) -> RestRequest {
    let path = match venue {
        Venue::BinanceSpot => "/api/v3/time",
        Venue::BinanceUsdm => "/fapi/v1/time",
        Venue::Bybit => "/v5/market/time",
        Venue::Okx => "/api/v5/public/time",
        Venue::Kraken => "/0/public/Time",
    };
    RestRequest {
        method: Method::Get,
        path: path.into(),
        query: Vec::new(),
        body: None,
        signed: false,
        weight: 1,
        retry_safe: true,
    }
}

/// The venue clock in ms from its server-time answer (Kraken's has whole seconds).
fn parse_venue_time_ms(venue: Venue, body: &str) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let int = |v: &serde_json::Value| match v {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    };
    match venue {
        Venue::BinanceSpot | Venue::BinanceUsdm => int(v.get("serverTime")?),
        Venue::Bybit => int(v.get("time")?),
        Venue::Okx => int(v.get("data")?.get(0)?.get("ts")?),
        Venue::Kraken => int(v.get("result")?.get("unixtime")?).map(|s| s * 1000),
    }
}

/// An answer keel could not read.
fn decode_error(what: &str, body: &str) -> VenueError {
    let mut end = body.len().min(200);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    VenueError::Other {
        code: "decode".into(),
        message: format!("unreadable {what} answer: {}", &body[..end]),
    }
}

/// Query keys whose values never appear in an error message.
fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k == "sign" || k.contains("signature") || k.contains("apikey") || k.contains("api_key")
}

/// `METHOD /path?query` with secret values replaced by `<redacted>`.
pub fn describe(req: &RestRequest) -> String {
    let shown: Vec<(String, String)> = req
        .query
        .iter()
        .map(|(k, v)| {
            let v = if is_secret(k) { "<redacted>" } else { v };
            (k.clone(), v.to_string())
        })
        .collect();
    let mut text = format!("{} {}", req.method.as_str(), req.path);
    if !shown.is_empty() {
        text.push('?');
        // Not percent-encoded, so `<redacted>` stays readable.
        let pairs: Vec<String> = shown.iter().map(|(k, v)| format!("{k}={v}")).collect();
        text.push_str(&pairs.join("&"));
    }
    text
}

/// The error and its sources, joined by ": ".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

enum BodyError {
    Transport(reqwest::Error),
    TooLarge,
}

async fn read_body(mut response: reqwest::Response) -> Result<String, BodyError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if bytes.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(BodyError::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Milliseconds since the epoch from an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the
/// only form RFC 9110 lets a server send.
pub fn parse_http_date_ms(text: &str) -> Option<i64> {
    let parts: Vec<&str> = text.split_ascii_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)? as i64 + 1;
    let day: i64 = day.parse().ok()?;
    let year: i64 = year.parse().ok()?;
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    if !(1..=31).contains(&day) || *h > 23 || *m > 59 || *s > 60 {
        return None;
    }
    let days = crate::civil::days_from_civil(year, month, day);
    Some(((days * 24 + h) * 60 + m) * 60_000 + s * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, query: &[(&str, &str)]) -> RestRequest {
        RestRequest {
            method: Method::Get,
            path: path.into(),
            query: query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: None,
            signed: false,
            weight: 1,
            retry_safe: true,
        }
    }

    #[test]
    fn describe_redacts_signatures_and_keys() {
        let r = get(
            "/api/v3/order",
            &[
                ("symbol", "BTCUSDT"),
                ("timestamp", "1"),
                ("signature", "abc123"),
            ],
        );
        let d = describe(&r);
        assert_eq!(
            d,
            "GET /api/v3/order?symbol=BTCUSDT&timestamp=1&signature=<redacted>"
        );
        let r = get(
            "/x",
            &[("sign", "s1"), ("apiKey", "k1"), ("X-Signature", "z1")],
        );
        let d = describe(&r);
        assert!(
            !d.contains("s1") && !d.contains("k1") && !d.contains("z1"),
            "{d}"
        );
        assert_eq!(d.matches("<redacted>").count(), 3);
    }

    #[test]
    fn parses_imf_fixdate() {
        assert_eq!(
            parse_http_date_ms("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777_000)
        );
        assert_eq!(parse_http_date_ms("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date_ms("Mon, 01 Jan 2024 00:01:00 GMT"),
            Some(1_704_067_260_000)
        );
        assert_eq!(parse_http_date_ms("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date_ms(""), None);
    }

    #[test]
    fn classify_follows_each_venue_convention() {
        // Binance: any 2xx is a success, the body is not inspected.
        assert_eq!(classify(Venue::BinanceSpot, 200, "not json", None), None);
        assert!(matches!(
            classify(Venue::BinanceSpot, 429, "{}", Some("3")),
            Some(VenueError::RateLimited {
                retry_after_ms: Some(3000),
                banned: false
            })
        ));
        assert!(matches!(
            classify(Venue::BinanceUsdm, 418, "{}", Some("1")),
            Some(VenueError::RateLimited { banned: true, .. })
        ));
        // Bybit answers errors with HTTP 200 and a retCode.
        assert!(
            classify(
                Venue::Bybit,
                200,
                r#"{"retCode":10006,"retMsg":"Too many visits!"}"#,
                None
            )
            .is_some()
        );
        assert!(classify(Venue::Okx, 500, "oops", None).is_some());
        assert!(classify(Venue::Kraken, 200, r#"{"error":[],"result":{}}"#, None).is_none());
    }
}

#[cfg(test)]
mod against_mock;
