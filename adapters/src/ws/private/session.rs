//! One private connection's life, over and over: fetch a token, connect, authenticate,
//! subscribe, announce `NeedsReconcile`, read and decode, keep alive (pings, listen-key
//! keep-alives), notice silence, hand events over with back-pressure, and reconnect after a
//! jittered backoff, stopping after too many refusals or failures.
//!
//! One task, one `select!` loop (no reader/writer split), as in the public client: the socket
//! is read as soon as a frame arrives, which also writes the pong tungstenite queued for a
//! server ping. A listen-key keep-alive runs as its own small task so a slow REST call never
//! stops the socket being read.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinError, JoinHandle};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::super::DisconnectReason;
use super::super::plan::ping_message;
use super::venue::{self, AuthStyle, Plan};
use super::{
    Counters, PrivateConfig, PrivateConnectionEvent as Ev, PrivateDisconnectReason as Why,
    PrivateEvent, StopReason, TokenError,
};
use crate::client::retry::XorShift64;
use crate::model::{Control, DecodeError, Venue, VenueEvent};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type KeepAliveTask = JoinHandle<Result<(), TokenError>>;

/// Largest message accepted (a Kraken order snapshot of a busy account stays far below).
const MAX_MESSAGE_BYTES: usize = 16 << 20;
/// Characters of an undecodable frame quoted in its report.
const FRAME_HEAD_CHARS: usize = 160;
/// How long a polite close may take before the socket is just dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// What a secret is replaced with in any text the client passes on.
const REDACTED: &str = "<redacted>";

/// Why a session stopped.
enum End {
    /// Stop the task: shutdown, or the consumer dropped the receiver.
    Stop,
    /// The connection ended; `live` when it had been authenticated and subscribed.
    Lost { reason: Why, live: bool },
}

fn lost(reason: Why, live: bool) -> End {
    End::Lost { reason, live }
}

fn socket_lost(reason: DisconnectReason, live: bool) -> End {
    lost(Why::Socket(reason), live)
}

/// What one connection leaves to the next.
#[derive(Default)]
struct Memory {
    /// Some connection has been live before (the next `Subscribed` is a resubscription).
    live_before: bool,
    /// Unix ms of the last frame received while live: where a reconcile must start.
    last_live_frame_ms: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Authenticating,
    Subscribing,
    Live,
}

/// What a control frame moves the connection to.
enum Step {
    /// The login was accepted: send the subscriptions.
    Authenticated,
    /// Every subscription is acknowledged.
    Live,
    /// The connection must end.
    End(Why),
}

/// The client's own keep-alive on a private connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ping {
    /// Binance: WebSocket protocol pings every `ping_every` (the server's are answered too).
    Protocol,
    /// Bybit `op: ping`, Kraken `method: ping`: every `ping_every`.
    Periodic,
    /// OKX: the text `ping` after `ping_every` without a frame.
    WhenIdle,
}

fn ping_rule(venue: Venue) -> Ping {
    match venue {
        Venue::BinanceSpot | Venue::BinanceUsdm => Ping::Protocol,
        Venue::Bybit | Venue::Kraken => Ping::Periodic,
        Venue::Okx => Ping::WhenIdle,
    }
}

/// The state of one open connection.
struct Conn {
    plan: Plan,
    /// The listen key or WebSocket token of this connection.
    token: Option<String>,
    attempt: u64,
    phase: Phase,
    acks: usize,
    authenticated: bool,
    started: Instant,
    last_rx: Instant,
    last_ping: Instant,
    pings: u64,
    /// The oldest client ping not answered yet.
    awaiting_pong: Option<Instant>,
    /// When the listen key is next extended (Binance USD-M, once live).
    next_keepalive: Option<Instant>,
    keepalive: Option<KeepAliveTask>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(task) = self.keepalive.take() {
            task.abort();
        }
    }
}

pub(super) struct Task {
    config: PrivateConfig,
    ping: Ping,
    tx: mpsc::Sender<PrivateEvent>,
    stop: watch::Receiver<bool>,
    counters: Arc<Counters>,
}

impl Task {
    pub(super) fn new(
        config: PrivateConfig,
        tx: mpsc::Sender<PrivateEvent>,
        stop: watch::Receiver<bool>,
        counters: Arc<Counters>,
    ) -> Task {
        Task {
            ping: ping_rule(config.venue),
            config,
            tx,
            stop,
            counters,
        }
    }

    /// Runs connections until shutdown, the consumer leaves, too many refusals or too many
    /// failed connections.
    pub(super) async fn run(self) {
        let mut rng = XorShift64::new(self.config.retry.jitter_seed);
        let (mut failures, mut refusals) = (0u32, 0u32);
        let mut memory = Memory::default();
        let mut attempt = 0u64;
        loop {
            attempt += 1;
            let (reason, live) = match self.session(attempt, &mut memory).await {
                Err(End::Stop) => return,
                Err(End::Lost { reason, live }) => (reason, live),
                Ok(never) => match never {},
            };
            if live {
                (failures, refusals) = (0, 0);
            }
            let next = self.next_attempt(&reason, &mut failures, &mut refusals, &mut rng);
            if reason.is_rejection() {
                Counters::bump(&self.counters.auth_failures);
                let failed = Ev::AuthFailed {
                    reason: refusal_text(&reason),
                    consecutive: refusals,
                    max: self.config.max_auth_failures,
                };
                if self.emit(PrivateEvent::Connection(failed)).await.is_err() {
                    return;
                }
            }
            let reconnect_in = next.as_ref().ok().copied();
            let bye = Ev::Disconnected {
                reason,
                reconnect_in,
            };
            if self.emit(PrivateEvent::Connection(bye)).await.is_err() {
                return;
            }
            let delay = match next {
                Ok(delay) => delay,
                Err(reason) => {
                    let _ = self
                        .emit(PrivateEvent::Connection(Ev::Stopped { reason }))
                        .await;
                    return;
                }
            };
            tokio::select! {
                biased;
                _ = self.stopped() => {
                    let _ = self.tx.try_send(PrivateEvent::Connection(Ev::Stopped {
                        reason: StopReason::Shutdown,
                    }));
                    return;
                }
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// The wait before the next connection, or why there will be none.
    fn next_attempt(
        &self,
        reason: &Why,
        failures: &mut u32,
        refusals: &mut u32,
        rng: &mut XorShift64,
    ) -> Result<Duration, StopReason> {
        if reason.is_rejection() {
            *refusals += 1;
            if *refusals >= self.config.max_auth_failures {
                return Err(StopReason::AuthRejected {
                    failures: *refusals,
                    last: refusal_text(reason),
                });
            }
        } else if reason.is_planned() {
            return Ok(Duration::ZERO);
        } else {
            if *failures >= self.config.retry.max_retries {
                return Err(StopReason::TooManyFailures {
                    failures: *failures + 1,
                    last: reason.to_string(),
                });
            }
            *failures += 1;
        }
        let streak = (*failures + *refusals).saturating_sub(1);
        Ok(self.config.retry.backoff(streak, rng))
    }

    /// Resolves once shutdown is asked for (or the handle is gone).
    fn stopped(&self) -> impl Future<Output = ()> + 'static {
        let mut rx = self.stop.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }

    /// `text` with the secret, the passphrase and `token` replaced: whatever a venue or a
    /// library quotes back never carries them further.
    fn scrub(&self, text: &str, token: Option<&str>) -> String {
        let creds = &self.config.credentials;
        let mut out = text.to_string();
        for secret in [Some(creds.secret()), creds.passphrase(), token]
            .into_iter()
            .flatten()
        {
            // Shorter strings would blank out ordinary words; no real secret is that short.
            if secret.len() >= 4 {
                out = out.replace(secret, REDACTED);
            }
        }
        out
    }

    /// Hands one event over, waiting as long as the consumer needs (used when no socket is
    /// open, so waiting costs nothing but time).
    async fn emit(&self, event: PrivateEvent) -> Result<(), End> {
        let sent = tokio::select! {
            biased;
            _ = self.stopped() => return Err(End::Stop),
            r = self.tx.send(event) => r,
        };
        sent.map_err(|_| End::Stop)
    }

    fn count(&self, event: &PrivateEvent) {
        if matches!(event, PrivateEvent::Account(_)) {
            Counters::bump(&self.counters.events);
        }
    }

    /// Hands events over while a socket is open: a consumer that makes no room within
    /// `consumer_stall_timeout` gets the socket closed, then still receives every event.
    async fn deliver(
        &self,
        ws: &mut Socket,
        events: Vec<PrivateEvent>,
        live: bool,
    ) -> Result<(), End> {
        let mut pending = events.into_iter();
        while let Some(event) = pending.next() {
            let waited = self.config.timing.consumer_stall_timeout;
            let reserved = tokio::select! {
                biased;
                _ = self.stopped() => return Err(End::Stop),
                r = timeout(waited, self.tx.reserve()) => r,
            };
            match reserved {
                Ok(Ok(permit)) => {
                    self.count(&event);
                    permit.send(event);
                }
                Ok(Err(_)) => return Err(End::Stop),
                Err(_) => {
                    Counters::bump(&self.counters.consumer_stalls);
                    close_politely(ws).await;
                    for event in std::iter::once(event).chain(pending) {
                        self.count(&event);
                        self.emit(event).await?;
                    }
                    return Err(socket_lost(
                        DisconnectReason::ConsumerStalled { waited },
                        live,
                    ));
                }
            }
        }
        Ok(())
    }

    /// A token for this connection, when the venue needs one.
    async fn fetch_token(&self) -> Result<Option<String>, End> {
        let Some(tokens) = self
            .config
            .tokens
            .as_ref()
            .filter(|_| venue::needs_token(self.config.venue))
        else {
            return Ok(None);
        };
        let limit = self.config.timing.connect_timeout;
        let fetched = tokio::select! {
            biased;
            _ = self.stopped() => return Err(End::Stop),
            r = timeout(limit, tokens.token()) => r,
        };
        let token = match fetched {
            Ok(Ok(token)) if !token.is_empty() => token,
            Ok(Ok(_)) => return Err(lost(Why::TokenUnavailable("an empty token".into()), false)),
            Ok(Err(TokenError::Rejected(r))) => {
                return Err(lost(Why::TokenRejected(self.scrub(&r, None)), false));
            }
            Ok(Err(TokenError::Unavailable(r))) => {
                return Err(lost(Why::TokenUnavailable(self.scrub(&r, None)), false));
            }
            Err(_) => {
                let why = format!("no token within {} ms", limit.as_millis());
                return Err(lost(Why::TokenUnavailable(why), false));
            }
        };
        Counters::bump(&self.counters.tokens_fetched);
        Ok(Some(token))
    }

    /// TCP, TLS and the WebSocket handshake, within `connect_timeout`.
    async fn connect(&self, plan: &Plan, token: Option<&str>) -> Result<Socket, End> {
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        let connect =
            tokio_tungstenite::connect_async_with_config(plan.url.as_str(), Some(config), true);
        let limit = self.config.timing.connect_timeout;
        let connected = tokio::select! {
            biased;
            _ = self.stopped() => return Err(End::Stop),
            r = timeout(limit, connect) => r,
        };
        let why = match connected {
            Ok(Ok((ws, _response))) => return Ok(ws),
            Ok(Err(e)) => self.scrub(&e.to_string(), token),
            Err(_) => format!("no handshake within {} ms", limit.as_millis()),
        };
        Err(socket_lost(DisconnectReason::ConnectFailed(why), false))
    }

    /// One connection, from the token to its end (always an `Err`).
    async fn session(&self, attempt: u64, memory: &mut Memory) -> Result<Infallible, End> {
        let token = self.fetch_token().await?;
        let now_ms = (self.config.unix_ms)();
        let plan = venue::plan(&self.config, token.as_deref(), attempt, now_ms)
            .map_err(|e| lost(Why::AuthRejected(self.scrub(&e, token.as_deref())), false))?;
        let mut ws = self.connect(&plan, token.as_deref()).await?;
        Counters::bump(&self.counters.connections);
        let now = Instant::now();
        let mut conn = Conn {
            plan,
            token,
            attempt,
            phase: Phase::Authenticating,
            acks: 0,
            authenticated: false,
            started: now,
            last_rx: now,
            last_ping: now,
            pings: 0,
            awaiting_pong: None,
            next_keepalive: None,
            keepalive: None,
        };
        let hello = Ev::Connected {
            url: conn.plan.shown_url.clone(),
            attempt,
        };
        self.deliver(&mut ws, vec![PrivateEvent::Connection(hello)], false)
            .await?;
        self.open(&mut ws, &mut conn, memory).await?;
        self.drive(&mut ws, &mut conn, memory).await
    }

    /// What a fresh connection sends first, by the venue's style.
    async fn open(&self, ws: &mut Socket, conn: &mut Conn, memory: &mut Memory) -> Result<(), End> {
        match conn.plan.style {
            AuthStyle::Url => self.go_live(ws, conn, memory).await,
            AuthStyle::SignedSubscribe | AuthStyle::Login => {
                let auth = conn.plan.auth.clone().unwrap_or_default();
                self.send(ws, &auth, conn).await
            }
            AuthStyle::TokenInSubscribe => {
                conn.phase = Phase::Subscribing;
                self.send_all(ws, conn).await
            }
        }
    }

    async fn send(&self, ws: &mut Socket, text: &str, conn: &Conn) -> Result<(), End> {
        match ws.send(Message::text(text)).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let why = self.scrub(&e.to_string(), conn.token.as_deref());
                Err(socket_lost(
                    DisconnectReason::Error(why),
                    conn.phase == Phase::Live,
                ))
            }
        }
    }

    async fn send_all(&self, ws: &mut Socket, conn: &Conn) -> Result<(), End> {
        for message in &conn.plan.subscribe {
            self.send(ws, message, conn).await?;
        }
        Ok(())
    }

    fn authenticated_event(&self, conn: &mut Conn) -> Option<PrivateEvent> {
        if conn.authenticated {
            return None;
        }
        conn.authenticated = true;
        Counters::bump(&self.counters.authenticated);
        Some(PrivateEvent::Connection(Ev::Authenticated {
            attempt: conn.attempt,
        }))
    }

    /// The login was accepted: report it and subscribe.
    async fn on_authenticated(
        &self,
        ws: &mut Socket,
        conn: &mut Conn,
        memory: &mut Memory,
    ) -> Result<(), End> {
        let events = self.authenticated_event(conn).into_iter().collect();
        self.deliver(ws, events, false).await?;
        conn.phase = Phase::Subscribing;
        self.send_all(ws, conn).await?;
        if conn.plan.acks == 0 {
            return self.go_live(ws, conn, memory).await;
        }
        Ok(())
    }

    /// Everything is subscribed: report it and ask for a reconcile.
    async fn go_live(
        &self,
        ws: &mut Socket,
        conn: &mut Conn,
        memory: &mut Memory,
    ) -> Result<(), End> {
        let mut events: Vec<PrivateEvent> = self.authenticated_event(conn).into_iter().collect();
        events.push(PrivateEvent::Connection(Ev::Subscribed {
            topics: conn.plan.topics.clone(),
            resubscribed: memory.live_before,
        }));
        events.push(PrivateEvent::Connection(Ev::NeedsReconcile {
            since_unix_ms: memory.last_live_frame_ms,
            attempt: conn.attempt,
        }));
        Counters::bump(&self.counters.reconciles);
        conn.phase = Phase::Live;
        memory.live_before = true;
        memory.last_live_frame_ms = Some((self.config.unix_ms)());
        if self.config.venue == Venue::BinanceUsdm {
            conn.next_keepalive = Some(Instant::now() + self.config.listen_key_keepalive_every);
        }
        self.deliver(ws, events, true).await
    }

    /// The read loop of a connection (always ends in an `Err`).
    async fn drive(
        &self,
        ws: &mut Socket,
        conn: &mut Conn,
        memory: &mut Memory,
    ) -> Result<Infallible, End> {
        loop {
            let deadline = self.next_deadline(conn);
            tokio::select! {
                biased;
                _ = self.stopped() => {
                    close_politely(ws).await;
                    let bye = Ev::Disconnected {
                        reason: Why::Socket(DisconnectReason::Shutdown),
                        reconnect_in: None,
                    };
                    let _ = self.tx.try_send(PrivateEvent::Connection(bye));
                    let _ = self.tx.try_send(PrivateEvent::Connection(Ev::Stopped {
                        reason: StopReason::Shutdown,
                    }));
                    return Err(End::Stop);
                }
                frame = ws.next() => {
                    conn.last_rx = Instant::now();
                    if conn.phase == Phase::Live {
                        memory.last_live_frame_ms = Some((self.config.unix_ms)());
                    }
                    self.on_frame(ws, frame, conn, memory).await?;
                }
                done = joined(&mut conn.keepalive) => {
                    conn.keepalive = None;
                    self.on_keepalive(ws, done, conn).await?;
                }
                _ = sleep_until(deadline) => self.on_timer(ws, conn).await?,
            }
        }
    }

    /// The earliest moment a timer needs looking at.
    fn next_deadline(&self, conn: &Conn) -> Instant {
        let t = &self.config.timing;
        let mut at = conn.last_rx + t.stale_after;
        if let Some(since) = conn.awaiting_pong {
            at = at.min(since + t.pong_timeout);
        }
        if let Some(age) = t.max_connection_age {
            at = at.min(conn.started + age);
        }
        if conn.phase != Phase::Live {
            at = at.min(conn.started + self.config.auth_timeout);
        }
        if let (Some(due), None) = (conn.next_keepalive, &conn.keepalive) {
            at = at.min(due);
        }
        if let Some(ping_at) = self.ping_due_at(conn) {
            at = at.min(ping_at);
        }
        at
    }

    fn ping_due_at(&self, conn: &Conn) -> Option<Instant> {
        let every = self.config.timing.ping_every;
        match self.ping {
            Ping::Protocol | Ping::Periodic => Some(conn.last_ping + every),
            Ping::WhenIdle if conn.awaiting_pong.is_some() => None,
            Ping::WhenIdle => Some(conn.last_rx.max(conn.last_ping) + every),
        }
    }

    async fn on_timer(&self, ws: &mut Socket, conn: &mut Conn) -> Result<(), End> {
        let now = Instant::now();
        let live = conn.phase == Phase::Live;
        let t = &self.config.timing;
        let silent_for = now.saturating_duration_since(conn.last_rx);
        let age = now.saturating_duration_since(conn.started);
        let ended = if silent_for >= t.stale_after {
            Some(Why::Socket(DisconnectReason::Stale { silent_for }))
        } else if let Some(waited) = conn
            .awaiting_pong
            .map(|since| now.saturating_duration_since(since))
            .filter(|w| *w >= t.pong_timeout)
        {
            Some(Why::Socket(DisconnectReason::PongTimeout { waited }))
        } else if t.max_connection_age.is_some_and(|max| age >= max) {
            Some(Why::Socket(DisconnectReason::MaxAge { age }))
        } else if !live && age >= self.config.auth_timeout {
            Some(Why::AuthTimeout { waited: age })
        } else {
            None
        };
        if let Some(reason) = ended {
            close_politely(ws).await;
            return Err(lost(reason, live));
        }
        if conn.keepalive.is_none() && conn.next_keepalive.is_some_and(|due| due <= now) {
            conn.keepalive = self.start_keepalive(conn);
        }
        if self.ping_due_at(conn).is_some_and(|at| at <= now) {
            self.send_ping(ws, conn, now).await?;
        }
        Ok(())
    }

    async fn send_ping(&self, ws: &mut Socket, conn: &mut Conn, now: Instant) -> Result<(), End> {
        conn.pings += 1;
        let message = match self.ping {
            Ping::Protocol => Message::Ping(conn.pings.to_string().into_bytes().into()),
            Ping::Periodic | Ping::WhenIdle => match ping_message(self.config.venue, conn.pings) {
                Some(text) => Message::text(text),
                None => return Ok(()),
            },
        };
        if let Err(e) = ws.send(message).await {
            let why = self.scrub(&e.to_string(), conn.token.as_deref());
            return Err(socket_lost(
                DisconnectReason::Error(why),
                conn.phase == Phase::Live,
            ));
        }
        Counters::bump(&self.counters.pings_sent);
        conn.awaiting_pong.get_or_insert(now);
        conn.last_ping = now;
        Ok(())
    }

    /// Extends the listen key on a task of its own.
    fn start_keepalive(&self, conn: &Conn) -> Option<KeepAliveTask> {
        let tokens = self.config.tokens.clone()?;
        let token = conn.token.clone()?;
        let limit = self.config.timing.connect_timeout;
        Some(tokio::spawn(async move {
            match timeout(limit, tokens.keep_alive(&token)).await {
                Ok(done) => done,
                Err(_) => Err(TokenError::Unavailable(format!(
                    "no answer within {} ms",
                    limit.as_millis()
                ))),
            }
        }))
    }

    async fn on_keepalive(
        &self,
        ws: &mut Socket,
        done: Result<Result<(), TokenError>, JoinError>,
        conn: &mut Conn,
    ) -> Result<(), End> {
        let every = self.config.listen_key_keepalive_every;
        let why = match done {
            Ok(Ok(())) => {
                Counters::bump(&self.counters.listen_key_keepalives);
                conn.next_keepalive = Some(Instant::now() + every);
                return self
                    .deliver(
                        ws,
                        vec![PrivateEvent::Connection(Ev::ListenKeyExtended)],
                        true,
                    )
                    .await;
            }
            Ok(Err(TokenError::Rejected(r))) => {
                // The key is gone: a new connection gets a new one.
                close_politely(ws).await;
                let why = format!("listen key keep-alive refused: {r}");
                return Err(lost(
                    Why::SessionExpired(self.scrub(&why, conn.token.as_deref())),
                    true,
                ));
            }
            Ok(Err(TokenError::Unavailable(r))) => r,
            Err(e) => e.to_string(),
        };
        // Not fatal yet: the key lives 60 minutes; try again well before that.
        let retry_in = every / 6;
        conn.next_keepalive = Some(Instant::now() + retry_in);
        let text = format!(
            "listen key keep-alive failed ({}); trying again in {} s",
            self.scrub(&why, conn.token.as_deref()),
            retry_in.as_secs()
        );
        self.deliver(
            ws,
            vec![PrivateEvent::Connection(Ev::Notice { text })],
            true,
        )
        .await
    }

    async fn on_frame(
        &self,
        ws: &mut Socket,
        frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
        conn: &mut Conn,
        memory: &mut Memory,
    ) -> Result<(), End> {
        let live = conn.phase == Phase::Live;
        let message = match frame {
            None => {
                let reason = DisconnectReason::Closed {
                    code: None,
                    reason: "the stream ended without a close frame".into(),
                };
                return Err(socket_lost(reason, live));
            }
            Some(Err(e)) => {
                let why = self.scrub(&e.to_string(), conn.token.as_deref());
                return Err(socket_lost(DisconnectReason::Error(why), live));
            }
            Some(Ok(message)) => message,
        };
        Counters::bump(&self.counters.frames);
        match message {
            Message::Text(text) => self.on_text(ws, text.as_str(), conn, memory).await,
            Message::Binary(bytes) => match std::str::from_utf8(&bytes) {
                Ok(text) => self.on_text(ws, text, conn, memory).await,
                Err(_) => {
                    let head = format!("{} bytes of binary", bytes.len());
                    let event = self.undecodable("a binary frame that is not UTF-8", head);
                    self.deliver(ws, vec![event], live).await
                }
            },
            // tungstenite has queued the pong (same payload); the next read writes it.
            Message::Ping(_) | Message::Frame(_) => Ok(()),
            Message::Pong(_) => {
                Counters::bump(&self.counters.pongs);
                conn.awaiting_pong = None;
                Ok(())
            }
            Message::Close(frame) => {
                let (code, reason) = match frame {
                    Some(f) => (Some(u16::from(f.code)), f.reason.as_str().to_string()),
                    None => (None, "close frame without a code".to_string()),
                };
                let reason = self.scrub(&reason, conn.token.as_deref());
                close_politely(ws).await;
                Err(socket_lost(DisconnectReason::Closed { code, reason }, live))
            }
        }
    }

    fn undecodable(&self, error: &str, frame: String) -> PrivateEvent {
        let total = Counters::bump(&self.counters.undecodable);
        PrivateEvent::Connection(Ev::Undecodable {
            total,
            error: error.to_string(),
            frame,
        })
    }

    async fn on_text(
        &self,
        ws: &mut Socket,
        text: &str,
        conn: &mut Conn,
        memory: &mut Memory,
    ) -> Result<(), End> {
        let live = conn.phase == Phase::Live;
        let events = match crate::decode::decode(self.config.venue, text) {
            Ok(events) => events,
            Err(DecodeError::Unsupported(_)) => {
                Counters::bump(&self.counters.ignored);
                return Ok(());
            }
            Err(e) => {
                let token = conn.token.as_deref();
                let error = self.scrub(&e.to_string(), token);
                let event = self.undecodable(&error, self.scrub(&head(text), token));
                return self.deliver(ws, vec![event], live).await;
            }
        };
        let mut out = Vec::with_capacity(events.len());
        let mut step = None;
        for event in events {
            match event {
                VenueEvent::Control(control) => {
                    if let Some(s) = self.on_control(control, conn, &mut out) {
                        step.get_or_insert(s);
                    }
                }
                VenueEvent::Order(_)
                | VenueEvent::Fill(_)
                | VenueEvent::Balance(_)
                | VenueEvent::Position(_) => out.push(PrivateEvent::Account(event)),
                // Market data has no business on a private stream.
                _ => {
                    Counters::bump(&self.counters.ignored);
                }
            }
        }
        self.deliver(ws, out, live).await?;
        match step {
            None => Ok(()),
            Some(Step::Authenticated) => self.on_authenticated(ws, conn, memory).await,
            Some(Step::Live) => self.go_live(ws, conn, memory).await,
            Some(Step::End(reason)) => {
                close_politely(ws).await;
                Err(lost(reason, live))
            }
        }
    }

    /// Protocol traffic: what it means for this connection. Reports go to `out`.
    fn on_control(
        &self,
        control: Control,
        conn: &mut Conn,
        out: &mut Vec<PrivateEvent>,
    ) -> Option<Step> {
        let token = conn.token.as_deref();
        match control {
            Control::Pong => {
                Counters::bump(&self.counters.pongs);
                conn.awaiting_pong = None;
                None
            }
            Control::AuthOk => (conn.phase == Phase::Authenticating).then_some(Step::Authenticated),
            Control::AuthFailed { reason } => {
                Some(Step::End(Why::AuthRejected(self.scrub(&reason, token))))
            }
            Control::Response { id, ok, detail }
                if conn.plan.auth_id.as_deref() == Some(id.as_str()) =>
            {
                if ok {
                    Some(Step::Live)
                } else {
                    Some(Step::End(Why::AuthRejected(self.scrub(&detail, token))))
                }
            }
            Control::Response { id, ok, detail } => {
                let verdict = if ok { "ok" } else { "NOT OK" };
                let text = self.scrub(&format!("{id}: {verdict} {detail}"), token);
                out.push(PrivateEvent::Connection(Ev::Notice { text }));
                None
            }
            Control::Subscribed { .. } => {
                conn.acks += 1;
                if conn.plan.style == AuthStyle::TokenInSubscribe {
                    // Kraken: an accepted subscription is an accepted token.
                    out.extend(self.authenticated_event(conn));
                }
                (conn.phase == Phase::Subscribing && conn.acks >= conn.plan.acks)
                    .then_some(Step::Live)
            }
            Control::SubscribeFailed { topic, reason } => {
                let reason = self.scrub(&reason, token);
                if conn.plan.style == AuthStyle::TokenInSubscribe
                    && venue::is_token_refusal(&reason)
                {
                    Some(Step::End(Why::AuthRejected(reason)))
                } else {
                    Some(Step::End(Why::SubscribeRejected { topic, reason }))
                }
            }
            Control::StreamExpiring { reason } => {
                Some(Step::End(Why::SessionExpired(self.scrub(&reason, token))))
            }
        }
    }
}

/// The venue's words in a refusal.
fn refusal_text(reason: &Why) -> String {
    match reason {
        Why::AuthRejected(r) | Why::TokenRejected(r) => r.clone(),
        Why::SubscribeRejected { topic, reason } => format!("{topic}: {reason}"),
        other => other.to_string(),
    }
}

/// The keep-alive task's result, or never when none runs.
async fn joined(task: &mut Option<KeepAliveTask>) -> Result<Result<(), TokenError>, JoinError> {
    match task {
        Some(task) => task.await,
        None => std::future::pending().await,
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
