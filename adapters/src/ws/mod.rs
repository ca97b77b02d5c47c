//! The WebSocket market-data client: public streams of one instrument on one venue (klines,
//! trades, best bid/ask, depth), kept alive, watched for silence, reconnected and resubscribed,
//! decoded into [`VenueEvent`]s by the venue codecs.
//!
//! Contract:
//! - [`spawn`] plans the connections the venue needs ([`plan`]: Binance USD-M splits streams
//!   between its `/public` and `/market` routes, OKX candles live on its business endpoint, so
//!   one watch can be two sockets) and runs one task per connection. Everything the tasks learn
//!   comes out of one bounded channel as [`WsEvent`]s: market data in the order each socket
//!   delivered it, and [`ConnectionEvent`]s (connected, subscribed / resubscribed, the venue's
//!   acks and refusals, disconnected with the reason and the wait before the next attempt,
//!   depth gaps, undecodable frames, venue notices).
//! - Keep-alive follows each venue's rule ([`KeepAlive`]): Binance pings and the client answers
//!   with a pong carrying the same payload (tungstenite queues it and writes it on the next
//!   read, which the task performs at once); Bybit gets `{"op":"ping"}` every 20 s; OKX gets the
//!   text `ping` after 25 s without a frame and must answer `pong`; Kraken v2 gets
//!   `{"method":"ping"}` every 30 s (its once-a-second `heartbeat` also proves life). A ping
//!   left unanswered for [`Timing::pong_timeout`] ends the connection.
//! - A connection that delivers no frame at all (data, pong, heartbeat or protocol ping) for
//!   [`Timing::stale_after`] is stale and is replaced. Binance connections are replaced before
//!   the venue's 24-hour cut ([`Timing::max_connection_age`]), and any connection is replaced at
//!   once when the venue announces a shutdown (Binance `serverShutdown`, OKX `notice`).
//! - Reconnects wait [`RetryPolicy::backoff`] (capped exponential, equal jitter; planned
//!   replacements do not wait). The count of consecutive failures resets once a connection
//!   delivers market data; after `max_retries` consecutive failures the connection gives up,
//!   reports a final `Disconnected { reconnect_in: None }` and ends. Subscriptions are sent
//!   again on every new connection (Binance: they are in the URL).
//! - Depth sequence checks ([`gap`]) per venue rule: Binance spot `U == previous u + 1`, Binance
//!   USD-M `pu == previous u`, Bybit `u == previous u + 1` (snapshots reset), OKX
//!   `prevSeqId == previous seqId` (snapshots reset). A break is reported as
//!   [`ConnectionEvent::Gap`] before the update that shows it; the update is still delivered.
//!   Resyncing the book from a REST snapshot is the consumer's job (not built yet). Kraken v2
//!   has no sequence numbers (its CRC32 checksum needs a maintained book) and is not checked.
//! - Back-pressure, never loss: the channel is bounded ([`WsConfig::channel_capacity`]). A full
//!   channel makes the socket task wait, so the socket is not read and TCP pushes back on the
//!   venue. If the consumer has not made room after [`Timing::consumer_stall_timeout`], the
//!   task closes the socket (a venue drops slow readers anyway, and a socket that is not read
//!   cannot answer pings), still delivers every event it had decoded, reports
//!   `Disconnected { reason: ConsumerStalled }` so the consumer knows the stream has a hole,
//!   and reconnects. No decoded event is ever dropped.
//! - A frame that does not decode is counted ([`WsStats::undecodable`]) and reported with its
//!   first bytes; nothing from the venue can make the client panic.
//!
//! Private (authenticated) account streams are in [`private`]. The local order book and its
//! resync after a gap are in `crate::book` (driven by `keel venue watch --book`). Not here yet:
//! order entry over WebSocket, make-before-break rotation (a Binance 24-hour replacement leaves
//! a short hole, reported as a disconnect).

mod conn;
pub mod gap;
mod plan;
pub mod private;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keel_engine::candle::Interval;
use keel_engine::symbol::Symbol;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::bybit::Category;
use crate::client::retry::RetryPolicy;
use crate::model::{Venue, VenueEvent};

pub use gap::{DepthGap, GapKind};
pub use plan::{ConnPlan, KeepAlive, keep_alive, plan};

/// One kind of public stream, for the watched instrument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    /// Candles of this interval (in-progress updates included, `closed` says which).
    Klines(Interval),
    /// Public trades (Binance USD-M: aggregate trades, the venue's public trade stream).
    Trades,
    /// Best bid and ask. Bybit spot has no book-ticker stream: its level-1 order book
    /// (`orderbook.1`) is used and arrives as one-level depth events.
    BookTicker,
    /// Incremental order book with sequence ids (Binance diff depth at 100 ms, Bybit
    /// `orderbook.50`, OKX `books`, Kraken `book` depth 10).
    Depth,
}

/// When things happen on a connection. [`Timing::for_venue`] gives the venue's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timing {
    /// TCP connect, TLS and WebSocket handshake together.
    pub connect_timeout: Duration,
    /// No frame of any kind for this long: the connection is stale and is replaced.
    pub stale_after: Duration,
    /// Client ping period (Bybit, Kraken) or idle time before a ping (OKX). Unused on Binance,
    /// where the server pings.
    pub ping_every: Duration,
    /// A client ping unanswered for this long ends the connection.
    pub pong_timeout: Duration,
    /// Replace the connection after this long (Binance cuts at 24 h). `None`: never.
    pub max_connection_age: Option<Duration>,
    /// How long a full channel may hold the socket task before the socket is closed.
    pub consumer_stall_timeout: Duration,
}

impl Timing {
    pub fn for_venue(venue: Venue) -> Timing {
        let (ping_every, max_connection_age) = match venue {
            // The server pings (spot every 20 s, USD-M every 3 min); connections end at 24 h.
            Venue::BinanceSpot | Venue::BinanceUsdm => (
                Duration::from_secs(20),
                Some(Duration::from_secs(23 * 3600 + 50 * 60)),
            ),
            Venue::Bybit => (Duration::from_secs(20), None),
            Venue::Okx => (Duration::from_secs(25), None),
            Venue::Kraken => (Duration::from_secs(30), None),
        };
        Timing {
            connect_timeout: Duration::from_secs(10),
            stale_after: Duration::from_secs(60),
            ping_every,
            pong_timeout: Duration::from_secs(10),
            max_connection_age,
            consumer_stall_timeout: Duration::from_secs(10),
        }
    }
}

/// What to watch and how.
#[derive(Clone, Debug)]
pub struct WsConfig {
    pub venue: Venue,
    /// The venue's name of the instrument: `BTCUSDT` (Binance, Bybit), `BTC-USDT` or
    /// `BTC-USDT-SWAP` (OKX), `BTC/USD` (Kraken v2).
    pub symbol: Symbol,
    pub streams: Vec<StreamKind>,
    /// Bybit only: spot or linear (picks the public endpoint).
    pub bybit_category: Category,
    /// Scheme, host and port replacing the venue's production ones (a testnet, the mock);
    /// the venue's path is kept. `None`: production.
    pub base_url: Option<String>,
    pub timing: Timing,
    /// Reconnect backoff; `max_retries` bounds consecutive failed connections.
    pub retry: RetryPolicy,
    /// Events buffered between the socket tasks and the consumer.
    pub channel_capacity: usize,
}

impl WsConfig {
    /// Production endpoints and the venue's timing; reconnects from 0.5 s doubling to 30 s,
    /// giving up after 50 consecutive failures.
    pub fn new(venue: Venue, symbol: Symbol, streams: Vec<StreamKind>) -> WsConfig {
        WsConfig {
            venue,
            symbol,
            streams,
            bybit_category: Category::Linear,
            base_url: None,
            timing: Timing::for_venue(venue),
            retry: RetryPolicy {
                max_retries: 50,
                base_delay: Duration::from_millis(500),
                max_delay: Duration::from_secs(30),
                max_venue_wait: Duration::from_secs(300),
                jitter_seed: 0x5EED_CAFE_F00D_0001,
            },
            channel_capacity: 4096,
        }
    }
}

/// The configuration cannot be run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    #[error("invalid websocket configuration: {0}")]
    InvalidConfig(String),
}

/// Everything the client reports, in one channel.
#[derive(Clone, Debug, PartialEq)]
pub enum WsEvent {
    /// Normalized market data (never `VenueEvent::Control`: protocol traffic becomes
    /// [`ConnectionEvent`]s or is consumed, like pongs).
    Market(VenueEvent),
    Connection(ConnectionEvent),
}

/// What happened to a connection. `conn` is the index of its [`ConnPlan`].
#[derive(Clone, Debug, PartialEq)]
pub enum ConnectionEvent {
    /// The handshake succeeded. `attempt` counts connections made by this task, from 1.
    Connected {
        conn: usize,
        url: String,
        attempt: u64,
    },
    /// The first connection sent its subscriptions.
    Subscribed { conn: usize, topics: Vec<String> },
    /// A later connection sent them again.
    Resubscribed { conn: usize, topics: Vec<String> },
    /// The venue acknowledged a subscription (as the venue names it).
    SubscribeAck { conn: usize, topic: String },
    /// The venue refused a subscription. The connection stays up (reconnecting would not help).
    SubscribeRejected {
        conn: usize,
        topic: String,
        reason: String,
    },
    /// Something the venue said about the connection: a status message, a coming shutdown.
    Notice { conn: usize, text: String },
    /// The connection ended. `reconnect_in` is the wait before the next attempt; `None` means
    /// this connection's task has stopped (shutdown, or too many consecutive failures).
    Disconnected {
        conn: usize,
        reason: DisconnectReason,
        reconnect_in: Option<Duration>,
    },
    /// A depth update does not continue the previous one.
    Gap(DepthGap),
    /// A frame that did not decode. `total` counts them on every connection so far.
    Undecodable {
        conn: usize,
        total: u64,
        error: String,
        /// The frame's first characters.
        frame: String,
    },
}

/// Why a connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DisconnectReason {
    /// TCP, TLS or the WebSocket handshake failed (or took longer than `connect_timeout`).
    ConnectFailed(String),
    /// The venue closed the connection (with a close frame, or by ending the stream).
    Closed { code: Option<u16>, reason: String },
    /// Reading or writing failed.
    Error(String),
    /// No frame for `silent_for`.
    Stale { silent_for: Duration },
    /// A client ping went unanswered for `waited`.
    PongTimeout { waited: Duration },
    /// Planned replacement before the venue's connection lifetime runs out.
    MaxAge { age: Duration },
    /// The venue announced it will close the connection.
    VenueClosing(String),
    /// The consumer did not take events for `waited`; the socket was closed.
    ConsumerStalled { waited: Duration },
    /// [`WsHandle::shutdown`] (or the handle was dropped).
    Shutdown,
}

impl DisconnectReason {
    /// Planned replacements reconnect at once; failures back off.
    pub fn is_planned(&self) -> bool {
        matches!(
            self,
            DisconnectReason::MaxAge { .. } | DisconnectReason::VenueClosing(_)
        )
    }
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DisconnectReason::ConnectFailed(e) => write!(f, "connect failed: {e}"),
            DisconnectReason::Closed { code, reason } => match code {
                Some(c) => write!(f, "closed by the venue ({c} {reason})"),
                None => write!(f, "closed by the venue ({reason})"),
            },
            DisconnectReason::Error(e) => write!(f, "connection error: {e}"),
            DisconnectReason::Stale { silent_for } => {
                write!(f, "stale: no frame for {} ms", silent_for.as_millis())
            }
            DisconnectReason::PongTimeout { waited } => {
                write!(f, "no pong within {} ms of a ping", waited.as_millis())
            }
            DisconnectReason::MaxAge { age } => {
                write!(f, "replaced after {} s (venue lifetime)", age.as_secs())
            }
            DisconnectReason::VenueClosing(r) => write!(f, "the venue announced a close: {r}"),
            DisconnectReason::ConsumerStalled { waited } => write!(
                f,
                "the consumer took no events for {} ms; socket closed",
                waited.as_millis()
            ),
            DisconnectReason::Shutdown => write!(f, "shut down"),
        }
    }
}

/// Counters over every connection of one client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WsStats {
    /// Frames received (text, binary, ping, pong, close).
    pub frames: u64,
    /// Market events delivered.
    pub events: u64,
    pub undecodable: u64,
    /// Connections made (first ones included).
    pub connections: u64,
    /// Connections that ended for any reason but shutdown.
    pub disconnects: u64,
    pub gaps: u64,
    /// Client pings sent (application-level).
    pub pings_sent: u64,
    /// Pongs and heartbeats received.
    pub pongs: u64,
    /// Protocol pings the server sent (each answered with a pong).
    pub server_pings: u64,
    /// Times the consumer stalled a socket past `consumer_stall_timeout`.
    pub consumer_stalls: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    frames: AtomicU64,
    events: AtomicU64,
    undecodable: AtomicU64,
    connections: AtomicU64,
    disconnects: AtomicU64,
    gaps: AtomicU64,
    pings_sent: AtomicU64,
    pongs: AtomicU64,
    server_pings: AtomicU64,
    consumer_stalls: AtomicU64,
}

impl Counters {
    /// Adds one; returns the new total.
    fn bump(counter: &AtomicU64) -> u64 {
        counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn snapshot(&self) -> WsStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WsStats {
            frames: get(&self.frames),
            events: get(&self.events),
            undecodable: get(&self.undecodable),
            connections: get(&self.connections),
            disconnects: get(&self.disconnects),
            gaps: get(&self.gaps),
            pings_sent: get(&self.pings_sent),
            pongs: get(&self.pongs),
            server_pings: get(&self.server_pings),
            consumer_stalls: get(&self.consumer_stalls),
        }
    }
}

/// A running client. Dropping it asks every connection to close; [`WsHandle::shutdown`] also
/// waits until they have.
pub struct WsHandle {
    plans: Vec<ConnPlan>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl WsHandle {
    /// The connections being run.
    pub fn plans(&self) -> &[ConnPlan] {
        &self.plans
    }

    pub fn stats(&self) -> WsStats {
        self.counters.snapshot()
    }

    /// Closes every connection (with a close frame where the socket is up) and waits for the
    /// tasks to end. Each reports `Disconnected { reason: Shutdown }` if the channel has room.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for WsHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Starts the client: one task per planned connection on the current tokio runtime (call it
/// inside one). Returns the handle and the receiving end of the event channel.
pub fn spawn(config: WsConfig) -> Result<(WsHandle, mpsc::Receiver<WsEvent>), WsError> {
    if config.channel_capacity == 0 {
        return Err(WsError::InvalidConfig(
            "channel_capacity must be at least 1".into(),
        ));
    }
    let plans = plan(&config)?;
    // tokio-tungstenite is built without a crypto provider of its own choosing; ring is the
    // process default, as for the REST client. An already installed provider is kept.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (tx, rx) = mpsc::channel(config.channel_capacity);
    let (stop, stop_rx) = watch::channel(false);
    let counters = Arc::new(Counters::default());
    let tasks = plans
        .iter()
        .enumerate()
        .map(|(id, p)| {
            let task = conn::ConnTask::new(
                id,
                p.clone(),
                &config,
                tx.clone(),
                stop_rx.clone(),
                counters.clone(),
            );
            tokio::spawn(task.run())
        })
        .collect();
    Ok((
        WsHandle {
            plans,
            stop,
            tasks,
            counters,
        },
        rx,
    ))
}
