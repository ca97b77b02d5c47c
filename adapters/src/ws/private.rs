//! The private (authenticated) stream client: one connection per venue account carrying the
//! account's orders, fills, balances and positions, decoded by the venue codecs into
//! [`VenueEvent`]s.
//!
//! Contract:
//! - [`spawn`] runs one task that connects, authenticates the venue's way, subscribes the
//!   account channels, keeps the connection alive, notices silence and reconnects with capped
//!   exponential backoff and jitter, authenticating and subscribing again every time:
//!   - Binance spot: the WebSocket API (`/ws-api/v3`), `userDataStream.subscribe.signature`
//!     signed over the sorted `apiKey` and `timestamp` (HMAC, or Ed25519 when the credentials
//!     carry a key). Spot listen keys were retired on 2026-02-20.
//!   - Binance USD-M: a listen key from the [`TokenSource`] (`POST /fapi/v1/listenKey`), the
//!     routed `/private/ws?listenKey=..&events=..` URL, the key kept alive with
//!     [`TokenSource::keep_alive`] (`PUT /fapi/v1/listenKey`) every
//!     [`PrivateConfig::listen_key_keepalive_every`]; `listenKeyExpired` gets a new key.
//!   - Bybit v5 `/v5/private`: `op: auth` with `[api_key, expires, hex HMAC("GET/realtime" +
//!     expires)]`, then `order`, `execution`, `position`, `wallet`; `op: ping` every 20 s.
//!   - OKX v5 `/ws/v5/private`: `op: login` (key, passphrase, seconds, base64 HMAC of
//!     `ts + "GET/users/self/verify"`), then `orders`, `positions`, `account`; text `ping`.
//!   - Kraken v2 `ws-auth /v2`: a fresh token from the [`TokenSource`] (REST
//!     `GetWebSocketsToken`) on every connection, in the `executions` and `balances`
//!     subscriptions; `method: ping` every 30 s.
//! - Every connection gets a fresh token or listen key, so the client needs no REST client of
//!   its own: the caller's [`TokenSource`] does that call.
//! - **Reconcile after every connection.** Once a connection is authenticated and every
//!   subscription acknowledged, the client emits
//!   [`PrivateConnectionEvent::NeedsReconcile`]. Account events delivered after it are live;
//!   anything between `since_unix_ms` (the last frame of the previous live connection, `None`
//!   on the first one) and now may have been missed. The consumer must then query open orders,
//!   recent fills, balances and positions over REST and merge them, treating fills already
//!   seen (same trade id) as duplicates: the venue's snapshot and the stream can overlap.
//! - Authentication refusals (bad key, bad signature, expired timestamp, a refused token or a
//!   refused account subscription) are reported as [`PrivateConnectionEvent::AuthFailed`] and
//!   retried with backoff, but they rarely fix themselves: after
//!   [`PrivateConfig::max_auth_failures`] consecutive refusals the task stops with
//!   [`StopReason::AuthRejected`]. Other failures count against `retry.max_retries`.
//! - Secrets never leave: the API secret, the OKX passphrase, tokens and listen keys are not in
//!   `Debug` output, events or errors (listen keys are masked in URLs, and any text quoted from
//!   the venue is scrubbed of them).
//! - Back-pressure as in the public client: a consumer that takes no event for
//!   `consumer_stall_timeout` gets the socket closed, still receives every decoded event, and
//!   the reconnect that follows ends in a `NeedsReconcile`. No account event is dropped.
//! - Frames the codecs do not consume (`Unsupported`, e.g. Binance `balanceUpdate` deltas) are
//!   counted in [`PrivateStats::ignored`]; frames that fail to decode are reported as
//!   [`PrivateConnectionEvent::Undecodable`].
//!
//! Not here: order entry over the WebSocket, Binance USD-M via the WebSocket API.

mod session;
mod venue;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{DisconnectReason, Timing, WsError};
use crate::client::retry::RetryPolicy;
use crate::credentials::Credentials;
use crate::model::{Venue, VenueEvent};

/// Why a [`TokenSource`] could not produce a token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The venue refused the credentials (bad key, missing permission, unknown listen key):
    /// retrying will not help. Counts as an authentication failure.
    #[error("refused by the venue: {0}")]
    Rejected(String),
    /// The venue could not be asked (network, 5xx, rate limit): try again later.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// A boxed future, for [`TokenSource`]'s methods.
pub type TokenFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, TokenError>> + Send + 'a>>;

/// Where session tokens come from (the caller's REST client, or a test's mock).
///
/// - Binance USD-M: [`TokenSource::token`] is `POST /fapi/v1/listenKey` (the account's active
///   key, or a new one), [`TokenSource::keep_alive`] is `PUT /fapi/v1/listenKey`; a refused
///   keep-alive (`-1125`, the key no longer exists) should be [`TokenError::Rejected`].
/// - Kraken: [`TokenSource::token`] is `POST /0/private/GetWebSocketsToken`; tokens need no
///   keep-alive once used.
///
/// Messages in a [`TokenError`] end up in events: they must not quote secrets.
pub trait TokenSource: Send + Sync {
    /// A token for a new connection.
    fn token(&self) -> TokenFuture<'_, String>;

    /// Extends `token`'s validity.
    fn keep_alive<'a>(&'a self, token: &'a str) -> TokenFuture<'a, ()> {
        let _ = token;
        Box::pin(async { Ok(()) })
    }
}

/// One account's private stream, and how to run it.
#[derive(Clone)]
pub struct PrivateConfig {
    pub venue: Venue,
    /// The key and secret (OKX: with its passphrase). Unused on Binance USD-M and Kraken, where
    /// the [`TokenSource`] authenticates.
    pub credentials: Credentials,
    /// Required on Binance USD-M (listen keys) and Kraken (WebSocket tokens).
    pub tokens: Option<Arc<dyn TokenSource>>,
    /// Scheme, host and port replacing the venue's production ones (a testnet, the mock); the
    /// venue's path is kept. `None`: production.
    pub base_url: Option<String>,
    /// OKX `instType` of the `orders` and `positions` channels (`ANY`, `SPOT`, `SWAP`, ...).
    pub okx_inst_type: String,
    /// Bybit: also subscribe the disconnection-protection topic of this category
    /// (`dcp.spot`, `dcp.future`), which Bybit requires for its disconnect-cancel-all window
    /// to act on this connection. `None`: not subscribed.
    pub bybit_dcp: Option<crate::bybit::Category>,
    pub timing: Timing,
    /// From the handshake to the last subscription acknowledged.
    pub auth_timeout: Duration,
    /// How far in the future a Bybit `expires` is set.
    pub bybit_expires_in: Duration,
    /// Binance USD-M: how often the listen key is extended (it lapses after 60 min).
    pub listen_key_keepalive_every: Duration,
    /// Reconnect backoff; `max_retries` bounds consecutive failed connections.
    pub retry: RetryPolicy,
    /// Consecutive authentication refusals after which the task stops (at least 1).
    pub max_auth_failures: u32,
    /// Events buffered between the socket task and the consumer.
    pub channel_capacity: usize,
    /// Wall-clock unix ms, for the timestamps the venues require in signatures.
    pub unix_ms: fn() -> u64,
}

/// The system clock in unix ms (0 before 1970).
pub fn system_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl PrivateConfig {
    /// Production endpoints and the venue's timing (client pings every 20–30 s, stale after
    /// 60 s of silence), 10 s to authenticate, listen keys extended every 30 min, reconnects
    /// from 0.5 s doubling to 30 s, stopping after 50 failed connections or 5 refusals.
    pub fn new(venue: Venue, credentials: Credentials) -> PrivateConfig {
        let mut timing = Timing::for_venue(venue);
        if matches!(venue, Venue::BinanceSpot | Venue::BinanceUsdm) {
            // Private streams can be silent for hours: the client pings (protocol frames) so a
            // dead socket is noticed in seconds, not at the server's 3-minute ping.
            timing.ping_every = Duration::from_secs(30);
        }
        PrivateConfig {
            venue,
            credentials,
            tokens: None,
            base_url: None,
            okx_inst_type: "ANY".into(),
            bybit_dcp: None,
            timing,
            auth_timeout: Duration::from_secs(10),
            bybit_expires_in: Duration::from_secs(10),
            listen_key_keepalive_every: Duration::from_secs(30 * 60),
            retry: RetryPolicy {
                max_retries: 50,
                base_delay: Duration::from_millis(500),
                max_delay: Duration::from_secs(30),
                max_venue_wait: Duration::from_secs(300),
                jitter_seed: 0x5EED_CAFE_F00D_0002,
            },
            max_auth_failures: 5,
            channel_capacity: 4096,
            unix_ms: system_unix_ms,
        }
    }

    /// Adds the token source Binance USD-M and Kraken need.
    pub fn with_tokens(mut self, tokens: Arc<dyn TokenSource>) -> PrivateConfig {
        self.tokens = Some(tokens);
        self
    }
}

impl std::fmt::Debug for PrivateConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateConfig")
            .field("venue", &self.venue)
            .field("credentials", &self.credentials)
            .field("tokens", &self.tokens.as_ref().map(|_| "<token source>"))
            .field("base_url", &self.base_url)
            .field("okx_inst_type", &self.okx_inst_type)
            .field("timing", &self.timing)
            .field("auth_timeout", &self.auth_timeout)
            .field(
                "listen_key_keepalive_every",
                &self.listen_key_keepalive_every,
            )
            .field("retry", &self.retry)
            .field("max_auth_failures", &self.max_auth_failures)
            .field("channel_capacity", &self.channel_capacity)
            .finish_non_exhaustive()
    }
}

/// Everything the client reports, in one channel.
#[derive(Clone, Debug, PartialEq)]
pub enum PrivateEvent {
    /// An order, fill, balance or position update (never `Control`, never market data).
    Account(VenueEvent),
    Connection(PrivateConnectionEvent),
}

/// What happened to the connection, in the order it happens on a good one: `Connected`,
/// `Authenticated`, `Subscribed`, `NeedsReconcile`.
#[derive(Clone, Debug, PartialEq)]
pub enum PrivateConnectionEvent {
    /// The handshake succeeded. `url` has listen keys masked; `attempt` counts from 1.
    Connected { url: String, attempt: u64 },
    /// The venue accepted the credentials (Binance USD-M: the listen key was issued and the
    /// socket opened; Kraken: the token was accepted by the first subscription).
    Authenticated { attempt: u64 },
    /// The venue refused the credentials or an account subscription. `consecutive` refusals
    /// so far; the task stops when it reaches `max`.
    AuthFailed {
        reason: String,
        consecutive: u32,
        max: u32,
    },
    /// Every account channel is acknowledged. `resubscribed` on every connection but the first.
    Subscribed {
        topics: Vec<String>,
        resubscribed: bool,
    },
    /// The stream is live again: reconcile through REST now (see the module docs).
    /// `since_unix_ms` is the last frame of the previous live connection; `None` on the first.
    NeedsReconcile {
        since_unix_ms: Option<u64>,
        attempt: u64,
    },
    /// Binance USD-M: the listen key was extended.
    ListenKeyExtended,
    /// Something the venue said that is not an account event (a status, an unknown reply).
    Notice { text: String },
    /// The connection ended. `reconnect_in` is the wait before the next attempt; `None` means
    /// the task stops (a `Stopped` follows).
    Disconnected {
        reason: PrivateDisconnectReason,
        reconnect_in: Option<Duration>,
    },
    /// The task has ended and sends nothing more.
    Stopped { reason: StopReason },
    /// A frame that did not decode. `total` counts them over every connection.
    Undecodable {
        total: u64,
        error: String,
        /// The frame's first characters.
        frame: String,
    },
}

/// Why a private connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrivateDisconnectReason {
    /// The socket's reasons, as in the public client.
    Socket(DisconnectReason),
    /// The venue refused the credentials.
    AuthRejected(String),
    /// The venue refused an account subscription.
    SubscribeRejected { topic: String, reason: String },
    /// No authentication or subscription answer within `auth_timeout`.
    AuthTimeout { waited: Duration },
    /// The token source refused (counts as an authentication failure).
    TokenRejected(String),
    /// The token source could not be asked; no socket was opened.
    TokenUnavailable(String),
    /// The session lapsed: `listenKeyExpired`, `eventStreamTerminated`, a refused listen-key
    /// keep-alive. Reconnects at once with a new session.
    SessionExpired(String),
}

impl PrivateDisconnectReason {
    /// A refusal by the venue: counted against `max_auth_failures`.
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            PrivateDisconnectReason::AuthRejected(_)
                | PrivateDisconnectReason::SubscribeRejected { .. }
                | PrivateDisconnectReason::TokenRejected(_)
        )
    }

    /// Planned replacements reconnect at once; failures back off.
    pub fn is_planned(&self) -> bool {
        match self {
            PrivateDisconnectReason::Socket(r) => r.is_planned(),
            PrivateDisconnectReason::SessionExpired(_) => true,
            _ => false,
        }
    }
}

impl std::fmt::Display for PrivateDisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrivateDisconnectReason::Socket(r) => r.fmt(f),
            PrivateDisconnectReason::AuthRejected(r) => write!(f, "authentication refused: {r}"),
            PrivateDisconnectReason::SubscribeRejected { topic, reason } => {
                write!(f, "subscription {topic} refused: {reason}")
            }
            PrivateDisconnectReason::AuthTimeout { waited } => write!(
                f,
                "not authenticated and subscribed within {} ms",
                waited.as_millis()
            ),
            PrivateDisconnectReason::TokenRejected(r) => write!(f, "token refused: {r}"),
            PrivateDisconnectReason::TokenUnavailable(r) => write!(f, "no token: {r}"),
            PrivateDisconnectReason::SessionExpired(r) => write!(f, "session expired: {r}"),
        }
    }
}

/// Why the task stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// [`PrivateHandle::shutdown`] (or the handle was dropped).
    Shutdown,
    /// `max_auth_failures` consecutive refusals; `last` is the venue's last word. Fix the
    /// credentials (or their permissions) and start again.
    AuthRejected { failures: u32, last: String },
    /// `retry.max_retries` consecutive failed connections.
    TooManyFailures { failures: u32, last: String },
}

/// Counters over every connection of one client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrivateStats {
    pub frames: u64,
    /// Account events delivered.
    pub events: u64,
    /// Well-formed frames the codecs do not consume.
    pub ignored: u64,
    pub undecodable: u64,
    pub connections: u64,
    pub authenticated: u64,
    pub auth_failures: u64,
    /// `NeedsReconcile` events emitted.
    pub reconciles: u64,
    pub tokens_fetched: u64,
    pub listen_key_keepalives: u64,
    pub pings_sent: u64,
    pub pongs: u64,
    pub consumer_stalls: u64,
}

#[derive(Default)]
struct Counters {
    frames: AtomicU64,
    events: AtomicU64,
    ignored: AtomicU64,
    undecodable: AtomicU64,
    connections: AtomicU64,
    authenticated: AtomicU64,
    auth_failures: AtomicU64,
    reconciles: AtomicU64,
    tokens_fetched: AtomicU64,
    listen_key_keepalives: AtomicU64,
    pings_sent: AtomicU64,
    pongs: AtomicU64,
    consumer_stalls: AtomicU64,
}

impl Counters {
    /// Adds one; returns the new total.
    fn bump(counter: &AtomicU64) -> u64 {
        counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn snapshot(&self) -> PrivateStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PrivateStats {
            frames: get(&self.frames),
            events: get(&self.events),
            ignored: get(&self.ignored),
            undecodable: get(&self.undecodable),
            connections: get(&self.connections),
            authenticated: get(&self.authenticated),
            auth_failures: get(&self.auth_failures),
            reconciles: get(&self.reconciles),
            tokens_fetched: get(&self.tokens_fetched),
            listen_key_keepalives: get(&self.listen_key_keepalives),
            pings_sent: get(&self.pings_sent),
            pongs: get(&self.pongs),
            consumer_stalls: get(&self.consumer_stalls),
        }
    }
}

/// A running private stream. Dropping it asks the task to close the connection;
/// [`PrivateHandle::shutdown`] also waits until it has.
pub struct PrivateHandle {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl PrivateHandle {
    pub fn stats(&self) -> PrivateStats {
        self.counters.snapshot()
    }

    /// The task has ended (shutdown, too many failures or refusals, consumer gone).
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Closes the connection (with a close frame when it is up) and waits for the task.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for PrivateHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Starts the client on the current tokio runtime (call it inside one). Returns the handle and
/// the receiving end of the event channel.
pub fn spawn(
    config: PrivateConfig,
) -> Result<(PrivateHandle, mpsc::Receiver<PrivateEvent>), WsError> {
    venue::check(&config)?;
    // As in the public client: ring is the process default; an installed provider is kept.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (tx, rx) = mpsc::channel(config.channel_capacity);
    let (stop, stop_rx) = watch::channel(false);
    let counters = Arc::new(Counters::default());
    let task = session::Task::new(config, tx, stop_rx, counters.clone());
    let task = tokio::spawn(task.run());
    Ok((
        PrivateHandle {
            stop,
            task: Some(task),
            counters,
        },
        rx,
    ))
}
