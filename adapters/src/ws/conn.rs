//! One socket's life, over and over: connect, subscribe, read and decode, keep alive, notice
//! silence, hand events over with back-pressure, and reconnect after a jittered backoff.
//!
//! Each connection is one task with one `select!` loop (no reader/writer split): the socket is
//! read as soon as a frame arrives, which is also when tungstenite writes the pong it queued
//! for a server ping; timers (stale, pong deadline, ping due, maximum age) share one sleep.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::gap::{self, GapTracker};
use super::plan::{ConnPlan, KeepAlive, keep_alive, ping_message};
use super::{ConnectionEvent, Counters, DisconnectReason, Timing, WsConfig, WsEvent};
use crate::client::retry::{RetryPolicy, XorShift64};
use crate::model::{Control, Venue, VenueEvent};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Largest message accepted: a full 400-level OKX book or a 1000-level Binance partial depth
/// is far below this.
const MAX_MESSAGE_BYTES: usize = 16 << 20;
/// Characters of an undecodable frame quoted in its report.
const FRAME_HEAD_CHARS: usize = 160;
/// How long a polite close may take before the socket is just dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Why a session stopped.
enum End {
    /// Stop the task: shutdown, or the consumer dropped the receiver.
    Stop,
    /// The connection ended; `healthy` when it had delivered market data.
    Lost {
        reason: DisconnectReason,
        healthy: bool,
    },
}

fn lost(reason: DisconnectReason, healthy: bool) -> End {
    End::Lost { reason, healthy }
}

/// The state of one live connection.
struct Live {
    started: Instant,
    last_rx: Instant,
    last_ping: Instant,
    pings: u64,
    /// The oldest client ping not answered yet.
    awaiting_pong: Option<Instant>,
    healthy: bool,
    gaps: GapTracker,
}

pub(super) struct ConnTask {
    id: usize,
    plan: ConnPlan,
    venue: Venue,
    keep_alive: KeepAlive,
    timing: Timing,
    retry: RetryPolicy,
    tx: mpsc::Sender<WsEvent>,
    stop: watch::Receiver<bool>,
    counters: Arc<Counters>,
}

impl ConnTask {
    pub(super) fn new(
        id: usize,
        plan: ConnPlan,
        config: &WsConfig,
        tx: mpsc::Sender<WsEvent>,
        stop: watch::Receiver<bool>,
        counters: Arc<Counters>,
    ) -> ConnTask {
        ConnTask {
            id,
            plan,
            venue: config.venue,
            keep_alive: keep_alive(config.venue),
            timing: config.timing.clone(),
            retry: config.retry.clone(),
            tx,
            stop,
            counters,
        }
    }

    /// Runs connections until shutdown, the consumer leaves, or `max_retries` consecutive
    /// failures.
    pub(super) async fn run(self) {
        let salt = u64::try_from(self.id).unwrap_or(0).wrapping_add(1);
        let mut rng = XorShift64::new(self.retry.jitter_seed ^ salt.wrapping_mul(0x9E37_79B9));
        let mut failures: u32 = 0;
        let mut attempt: u64 = 0;
        let mut connected_before = false;
        loop {
            attempt += 1;
            let end = match self.session(attempt, &mut connected_before).await {
                Err(end) => end,
                Ok(never) => match never {},
            };
            let (reason, healthy) = match end {
                End::Stop => return,
                End::Lost { reason, healthy } => (reason, healthy),
            };
            Counters::bump(&self.counters.disconnects);
            if healthy {
                failures = 0;
            }
            let reconnect_in = if reason.is_planned() {
                Some(Duration::ZERO)
            } else if failures >= self.retry.max_retries {
                None
            } else {
                let delay = self.retry.backoff(failures, &mut rng);
                failures += 1;
                Some(delay)
            };
            let event = ConnectionEvent::Disconnected {
                conn: self.id,
                reason,
                reconnect_in,
            };
            if self.emit(WsEvent::Connection(event)).await.is_err() {
                return;
            }
            let Some(delay) = reconnect_in else { return };
            tokio::select! {
                biased;
                _ = self.stopped() => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// Resolves once shutdown is asked for (or the handle is gone).
    fn stopped(&self) -> impl Future<Output = ()> + 'static {
        let mut rx = self.stop.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }

    /// Hands one event over, waiting as long as the consumer needs (used when no socket is
    /// open, so waiting costs nothing but time).
    async fn emit(&self, event: WsEvent) -> Result<(), End> {
        let sent = tokio::select! {
            biased;
            _ = self.stopped() => return Err(End::Stop),
            r = self.tx.send(event) => r,
        };
        match sent {
            Ok(()) => Ok(()),
            Err(_) => Err(End::Stop),
        }
    }

    /// Hands events over while a socket is open: a consumer that makes no room within
    /// `consumer_stall_timeout` gets the socket closed, then still receives every event.
    async fn deliver(
        &self,
        ws: &mut Socket,
        events: Vec<WsEvent>,
        healthy: bool,
    ) -> Result<(), End> {
        let mut pending = events.into_iter();
        while let Some(event) = pending.next() {
            let waited = self.timing.consumer_stall_timeout;
            let reserved = tokio::select! {
                biased;
                _ = self.stopped() => return Err(End::Stop),
                r = timeout(waited, self.tx.reserve()) => r,
            };
            match reserved {
                Ok(Ok(permit)) => {
                    if matches!(event, WsEvent::Market(_)) {
                        Counters::bump(&self.counters.events);
                    }
                    permit.send(event);
                }
                Ok(Err(_)) => return Err(End::Stop),
                Err(_) => {
                    Counters::bump(&self.counters.consumer_stalls);
                    close_politely(ws).await;
                    for event in std::iter::once(event).chain(pending) {
                        if matches!(event, WsEvent::Market(_)) {
                            Counters::bump(&self.counters.events);
                        }
                        self.emit(event).await?;
                    }
                    return Err(lost(DisconnectReason::ConsumerStalled { waited }, healthy));
                }
            }
        }
        Ok(())
    }

    /// One connection, from the handshake to its end (always an `Err`).
    async fn session(&self, attempt: u64, connected_before: &mut bool) -> Result<Infallible, End> {
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        let connect = tokio_tungstenite::connect_async_with_config(
            self.plan.url.as_str(),
            Some(config),
            true,
        );
        let connected = tokio::select! {
            biased;
            _ = self.stopped() => return Err(End::Stop),
            r = timeout(self.timing.connect_timeout, connect) => r,
        };
        let mut ws = match connected {
            Ok(Ok((ws, _response))) => ws,
            Ok(Err(e)) => {
                return Err(lost(DisconnectReason::ConnectFailed(e.to_string()), false));
            }
            Err(_) => {
                return Err(lost(
                    DisconnectReason::ConnectFailed(format!(
                        "no handshake within {} ms",
                        self.timing.connect_timeout.as_millis()
                    )),
                    false,
                ));
            }
        };
        Counters::bump(&self.counters.connections);
        let hello = WsEvent::Connection(ConnectionEvent::Connected {
            conn: self.id,
            url: self.plan.url.clone(),
            attempt,
        });
        self.deliver(&mut ws, vec![hello], false).await?;
        for message in &self.plan.subscribe {
            if let Err(e) = ws.send(Message::text(message.as_str())).await {
                return Err(lost(DisconnectReason::Error(e.to_string()), false));
            }
        }
        let topics = self.plan.topics.clone();
        let subscribed = if *connected_before {
            ConnectionEvent::Resubscribed {
                conn: self.id,
                topics,
            }
        } else {
            ConnectionEvent::Subscribed {
                conn: self.id,
                topics,
            }
        };
        *connected_before = true;
        self.deliver(&mut ws, vec![WsEvent::Connection(subscribed)], false)
            .await?;
        let now = Instant::now();
        let mut live = Live {
            started: now,
            last_rx: now,
            last_ping: now,
            pings: 0,
            awaiting_pong: None,
            healthy: false,
            gaps: GapTracker::new(),
        };
        loop {
            let deadline = self.next_deadline(&live);
            tokio::select! {
                biased;
                _ = self.stopped() => {
                    close_politely(&mut ws).await;
                    let bye = ConnectionEvent::Disconnected {
                        conn: self.id,
                        reason: DisconnectReason::Shutdown,
                        reconnect_in: None,
                    };
                    let _ = self.tx.try_send(WsEvent::Connection(bye));
                    return Err(End::Stop);
                }
                frame = ws.next() => {
                    live.last_rx = Instant::now();
                    match frame {
                        None => {
                            let reason = DisconnectReason::Closed {
                                code: None,
                                reason: "the stream ended without a close frame".into(),
                            };
                            return Err(lost(reason, live.healthy));
                        }
                        Some(Err(e)) => {
                            return Err(lost(DisconnectReason::Error(e.to_string()), live.healthy));
                        }
                        Some(Ok(message)) => self.on_message(&mut ws, message, &mut live).await?,
                    }
                }
                _ = sleep_until(deadline) => self.on_timer(&mut ws, &mut live).await?,
            }
        }
    }

    /// The earliest moment a timer needs looking at.
    fn next_deadline(&self, live: &Live) -> Instant {
        let t = &self.timing;
        let mut at = live.last_rx + t.stale_after;
        if let Some(since) = live.awaiting_pong {
            at = at.min(since + t.pong_timeout);
        }
        if let Some(age) = t.max_connection_age {
            at = at.min(live.started + age);
        }
        if let Some(ping_at) = self.ping_due_at(live) {
            at = at.min(ping_at);
        }
        at
    }

    fn ping_due_at(&self, live: &Live) -> Option<Instant> {
        match self.keep_alive {
            KeepAlive::AnswerServerPings => None,
            KeepAlive::Periodic => Some(live.last_ping + self.timing.ping_every),
            KeepAlive::WhenIdle if live.awaiting_pong.is_some() => None,
            KeepAlive::WhenIdle => Some(live.last_rx.max(live.last_ping) + self.timing.ping_every),
        }
    }

    async fn on_timer(&self, ws: &mut Socket, live: &mut Live) -> Result<(), End> {
        let now = Instant::now();
        let silent_for = now.saturating_duration_since(live.last_rx);
        if silent_for >= self.timing.stale_after {
            close_politely(ws).await;
            return Err(lost(DisconnectReason::Stale { silent_for }, live.healthy));
        }
        if let Some(since) = live.awaiting_pong {
            let waited = now.saturating_duration_since(since);
            if waited >= self.timing.pong_timeout {
                close_politely(ws).await;
                return Err(lost(DisconnectReason::PongTimeout { waited }, live.healthy));
            }
        }
        if let Some(max_age) = self.timing.max_connection_age {
            let age = now.saturating_duration_since(live.started);
            if age >= max_age {
                close_politely(ws).await;
                return Err(lost(DisconnectReason::MaxAge { age }, live.healthy));
            }
        }
        if self.ping_due_at(live).is_some_and(|at| at <= now) {
            live.pings += 1;
            if let Some(ping) = ping_message(self.venue, live.pings) {
                if let Err(e) = ws.send(Message::text(ping)).await {
                    return Err(lost(DisconnectReason::Error(e.to_string()), live.healthy));
                }
                Counters::bump(&self.counters.pings_sent);
                live.awaiting_pong.get_or_insert(now);
            }
            live.last_ping = now;
        }
        Ok(())
    }

    async fn on_message(
        &self,
        ws: &mut Socket,
        message: Message,
        live: &mut Live,
    ) -> Result<(), End> {
        Counters::bump(&self.counters.frames);
        match message {
            Message::Text(text) => self.on_text(ws, text.as_str(), live).await,
            Message::Binary(bytes) => match std::str::from_utf8(&bytes) {
                Ok(text) => self.on_text(ws, text, live).await,
                Err(_) => {
                    let head = format!("{} bytes of binary", bytes.len());
                    let event = self.undecodable("a binary frame that is not UTF-8", head);
                    self.deliver(ws, vec![event], live.healthy).await
                }
            },
            // tungstenite has queued the pong (same payload); the next read writes it.
            Message::Ping(_) => {
                Counters::bump(&self.counters.server_pings);
                Ok(())
            }
            Message::Pong(_) | Message::Frame(_) => Ok(()),
            Message::Close(frame) => {
                let (code, reason) = match frame {
                    Some(f) => (Some(u16::from(f.code)), f.reason.as_str().to_string()),
                    None => (None, "close frame without a code".to_string()),
                };
                // Completes the closing handshake tungstenite has answered.
                close_politely(ws).await;
                Err(lost(
                    DisconnectReason::Closed { code, reason },
                    live.healthy,
                ))
            }
        }
    }

    fn undecodable(&self, error: &str, frame: String) -> WsEvent {
        let total = Counters::bump(&self.counters.undecodable);
        WsEvent::Connection(ConnectionEvent::Undecodable {
            conn: self.id,
            total,
            error: error.to_string(),
            frame,
        })
    }

    async fn on_text(&self, ws: &mut Socket, text: &str, live: &mut Live) -> Result<(), End> {
        let events = match crate::decode::decode(self.venue, text) {
            Ok(events) => events,
            Err(e) => {
                let event = self.undecodable(&e.to_string(), head(text));
                return self.deliver(ws, vec![event], live.healthy).await;
            }
        };
        let mut out = Vec::with_capacity(events.len());
        let mut closing = None;
        let mut book_stream: Option<String> = None;
        for event in events {
            match event {
                VenueEvent::Control(control) => {
                    if let Some(reason) = self.on_control(control, live, &mut out) {
                        closing = Some(reason);
                    }
                }
                VenueEvent::Depth(update) => {
                    if gap::checks(self.venue) {
                        let stream =
                            book_stream.get_or_insert_with(|| book_stream_of(self.venue, text));
                        if let Some(g) = live.gaps.check(self.id, stream, &update) {
                            Counters::bump(&self.counters.gaps);
                            out.push(WsEvent::Connection(ConnectionEvent::Gap(g)));
                        }
                    }
                    live.healthy = true;
                    out.push(WsEvent::Market(VenueEvent::Depth(update)));
                }
                other => {
                    live.healthy = true;
                    out.push(WsEvent::Market(other));
                }
            }
        }
        self.deliver(ws, out, live.healthy).await?;
        if let Some(reason) = closing {
            close_politely(ws).await;
            return Err(lost(DisconnectReason::VenueClosing(reason), live.healthy));
        }
        Ok(())
    }

    /// Protocol traffic: pongs are consumed, the rest becomes connection events. Returns the
    /// reason when the venue announces it will close the connection.
    fn on_control(
        &self,
        control: Control,
        live: &mut Live,
        out: &mut Vec<WsEvent>,
    ) -> Option<String> {
        let conn = self.id;
        let event = match control {
            Control::Pong => {
                Counters::bump(&self.counters.pongs);
                live.awaiting_pong = None;
                return None;
            }
            Control::Subscribed { topic } => ConnectionEvent::SubscribeAck { conn, topic },
            Control::SubscribeFailed { topic, reason } => ConnectionEvent::SubscribeRejected {
                conn,
                topic,
                reason,
            },
            Control::StreamExpiring { reason } => {
                out.push(WsEvent::Connection(ConnectionEvent::Notice {
                    conn,
                    text: format!("the venue will close the stream: {reason}"),
                }));
                return Some(reason);
            }
            Control::Response { id, ok, detail } => ConnectionEvent::Notice {
                conn,
                text: format!("{id}: {} {detail}", if ok { "ok" } else { "NOT OK" }),
            },
            Control::AuthOk => ConnectionEvent::Notice {
                conn,
                text: "authenticated".into(),
            },
            Control::AuthFailed { reason } => ConnectionEvent::Notice {
                conn,
                text: format!("authentication failed: {reason}"),
            },
        };
        out.push(WsEvent::Connection(event));
        None
    }
}

/// Sends a close frame if it can within a second; the socket is dropped by the caller anyway.
async fn close_politely(ws: &mut Socket) {
    let _ = timeout(CLOSE_GRACE, ws.close(None)).await;
}

/// The first characters of a frame, for a report.
fn head(text: &str) -> String {
    match text.char_indices().nth(FRAME_HEAD_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// Which book a depth frame belongs to when a venue runs several per symbol: Bybit's topic
/// (`orderbook.1.X` and `orderbook.50.X` count their ids separately). Empty elsewhere.
fn book_stream_of(venue: Venue, text: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Topic<'a> {
        #[serde(borrow, default)]
        topic: Option<std::borrow::Cow<'a, str>>,
    }
    match venue {
        Venue::Bybit => serde_json::from_str::<Topic>(text)
            .ok()
            .and_then(|t| t.topic.map(|t| t.into_owned()))
            .unwrap_or_default(),
        _ => String::new(),
    }
}
