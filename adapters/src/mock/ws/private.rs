//! The mock venue's private (authenticated) streams: a loopback WebSocket server (its own port,
//! thread and runtime) that speaks one venue's account-stream dialect, checks authentication
//! itself, and misbehaves on command.
//!
//! Authentication is verified here with this file's own HMAC computations (not `sign`), from
//! the venues' documentation, and answered with the venue's codes:
//! - Binance spot `/ws-api/v3`: `userDataStream.subscribe.signature` with `apiKey`, `timestamp`
//!   and a hex HMAC-SHA256 over every other parameter sorted by name; `-2015` (status 401) for
//!   an unknown key, `-1021` for a timestamp outside 5 s, `-1022` (status 400) for a bad
//!   signature; success is `{"id","status":200,"result":{"subscriptionId":N}}` and events then
//!   come as `{"subscriptionId":N,"event":{..}}`.
//! - Binance USD-M `/private/ws?listenKey=..&events=..`: the listen key must be one this mock
//!   issued ([`MockPrivateVenue::token_source`] plays `POST`/`PUT /fapi/v1/listenKey`); an
//!   unknown or expired key is refused at the handshake (HTTP 400). Only events named in
//!   `events` are delivered.
//! - Bybit `/v5/private`: `op: auth` with `[key, expires, hex HMAC("GET/realtime" + expires)]`,
//!   `expires` in the future; subscriptions before auth are refused (`Request not
//!   authorized`); `op: ping` → `op: pong`.
//! - OKX `/ws/v5/private`: `op: login` with `apiKey`, `passphrase`, `timestamp` (unix seconds,
//!   within 30 s) and `sign` = base64 HMAC(`ts + "GET/users/self/verify"`); errors `60005`,
//!   `60024`, `60004`, `60007`; subscriptions before login get `60011`; text `ping` → `pong`.
//! - Kraken `/v2`: a `status` greeting; `executions` and `balances` subscriptions must carry a
//!   token this mock issued (else `ESession:Invalid session`); `method: ping` → `pong`.
//!
//! Tests push account frames with [`MockPrivateVenue::push`] (the venue's own payloads; for
//! Binance spot the bare event, which the mock wraps with the connection's subscription id).
//! A frame goes to every connection that is authenticated and subscribed to it, as the venue
//! would route it; frames pushed while no such connection is open are lost, as on the venue.
//! Faults ([`PrivateFault`]) apply to the connections open when injected;
//! [`MockPrivateVenue::reject_next_auth`] refuses the next authentications even when correct.
//! Everything is recorded: connections ([`PrivateConnLog`]), authentication attempts
//! ([`AuthAttempt`]), listen-key keep-alives, and requests that break the venue's rules.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

use crate::model::Venue;
use crate::ws::private::{TokenError, TokenFuture, TokenSource};

/// Binance's `recvWindow` default, which the signed subscription is checked against.
const BINANCE_RECV_WINDOW_MS: i64 = 5_000;
/// OKX refuses a login whose timestamp is further than this from its clock.
const OKX_WINDOW_S: i64 = 30;

/// The account the mock knows.
#[derive(Clone)]
pub struct MockPrivateConfig {
    pub venue: Venue,
    pub api_key: String,
    pub secret: String,
    /// OKX only.
    pub passphrase: String,
    /// Binance: a protocol ping this often (the venues: 20 s spot, 3 min USD-M).
    pub server_ping_every: Option<Duration>,
}

impl MockPrivateConfig {
    pub fn new(venue: Venue, api_key: &str, secret: &str) -> MockPrivateConfig {
        MockPrivateConfig {
            venue,
            api_key: api_key.into(),
            secret: secret.into(),
            passphrase: String::new(),
            server_ping_every: None,
        }
    }

    pub fn with_passphrase(mut self, passphrase: &str) -> MockPrivateConfig {
        self.passphrase = passphrase.into();
        self
    }
}

impl std::fmt::Debug for MockPrivateConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockPrivateConfig")
            .field("venue", &self.venue)
            .field("api_key", &self.api_key)
            .finish_non_exhaustive()
    }
}

/// A misbehaviour, applied to the connections open when it is injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrivateFault {
    /// Close the TCP connection without a close frame.
    Drop,
    /// Read and send nothing more (pings go unanswered); keep the socket open.
    Stall,
    /// Binance USD-M: every issued listen key lapses: `listenKeyExpired` on its connections,
    /// which carry nothing more; the key is refused from now on.
    ExpireListenKey,
    /// Binance spot: `eventStreamTerminated` on every subscription, which carries nothing more.
    TerminateStream,
    /// Binance USD-M: every issued listen key becomes invalid without a word on the stream
    /// (as after a `DELETE` elsewhere); only a keep-alive (`-1125`) finds out.
    RevokeListenKey,
}

/// One authentication attempt and the mock's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthAttempt {
    /// The connection, by [`PrivateConnLog::n`].
    pub conn: usize,
    pub ok: bool,
    /// The venue's code and message (`ok` on success).
    pub detail: String,
}

/// One connection attempt and what happened on it.
#[derive(Clone, Debug, Default)]
pub struct PrivateConnLog {
    /// Attempt number, from 0.
    pub n: usize,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// False when the handshake was refused.
    pub accepted: bool,
    pub authenticated: bool,
    /// Subscribed account channels in the venue's naming (Binance USD-M: the `events`).
    pub topics: Vec<String>,
    /// Text frames the client sent, in order.
    pub received: Vec<String>,
    /// Protocol pings the client sent.
    pub client_pings: usize,
    /// Frames sent on this connection by [`MockPrivateVenue::push`] and by faults.
    pub pushed: usize,
    /// The connection is closed (by either side).
    pub ended: bool,
    stalled: bool,
    /// The session lapsed (listen key expired, stream terminated): nothing more is routed.
    expired: bool,
    subscription_id: Option<u64>,
}

impl PrivateConnLog {
    /// Binance USD-M: the listen key in the URL.
    pub fn listen_key(&self) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == "listenKey")
            .map(|(_, v)| v.as_str())
    }

    /// Authenticated, subscribed and still open: pushed frames reach it.
    pub fn is_live(&self) -> bool {
        self.accepted
            && self.authenticated
            && !self.topics.is_empty()
            && !self.ended
            && !self.stalled
            && !self.expired
    }
}

enum Cmd {
    Send(String),
    Drop,
    Stall,
}

#[derive(Default)]
struct State {
    conns: Vec<PrivateConnLog>,
    open: Vec<(usize, mpsc::UnboundedSender<Cmd>)>,
    auths: Vec<AuthAttempt>,
    violations: Vec<String>,
    reject_auth: usize,
    /// Binance USD-M listen keys and whether each is still valid.
    listen_keys: Vec<(String, bool)>,
    /// Kraken WebSocket tokens issued.
    tokens: Vec<String>,
    /// Listen keys extended, in order.
    keepalives: Vec<String>,
}

impl State {
    fn log(&mut self, n: usize) -> Option<&mut PrivateConnLog> {
        self.conns.get_mut(n)
    }

    fn send(&self, n: usize, cmd: Cmd) {
        if let Some((_, tx)) = self.open.iter().find(|(k, _)| *k == n) {
            let _ = tx.send(cmd);
        }
    }

    /// Whether to refuse this authentication regardless of its merit.
    fn take_rejection(&mut self) -> bool {
        let reject = self.reject_auth > 0;
        self.reject_auth = self.reject_auth.saturating_sub(1);
        reject
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

struct Shared {
    config: MockPrivateConfig,
    state: Arc<Mutex<State>>,
    stop: watch::Receiver<bool>,
}

/// A running private-stream mock. Stops when dropped.
pub struct MockPrivateVenue {
    server: super::ServerThread,
    config: MockPrivateConfig,
    state: Arc<Mutex<State>>,
}

impl MockPrivateVenue {
    /// Binds 127.0.0.1 on a free port and starts serving.
    pub fn start(config: MockPrivateConfig) -> std::io::Result<MockPrivateVenue> {
        let state = Arc::new(Mutex::new(State::default()));
        let shared_state = state.clone();
        let served = config.clone();
        let server = super::ServerThread::start("mock-private", move |listener, stop| {
            serve(listener, served, shared_state, stop)
        })?;
        Ok(MockPrivateVenue {
            server,
            config,
            state,
        })
    }

    /// `ws://127.0.0.1:PORT`, the base URL to give a client.
    pub fn url(&self) -> String {
        format!("ws://{}", self.server.addr)
    }

    /// Sends `frame` on every live connection subscribed to it; returns how many.
    pub fn push(&self, frame: &str) -> usize {
        let venue = self.config.venue;
        let st = lock(&self.state);
        let mut sent = 0;
        for log in st.conns.iter().filter(|c| c.is_live()) {
            if let Some(text) = route(venue, frame, log) {
                st.send(log.n, Cmd::Send(text));
                sent += 1;
            }
        }
        sent
    }

    /// Applies `fault` to every connection open now.
    pub fn inject(&self, fault: PrivateFault) {
        let mut st = lock(&self.state);
        let open: Vec<usize> = st.open.iter().map(|(n, _)| *n).collect();
        match fault {
            PrivateFault::Drop => open.iter().for_each(|n| st.send(*n, Cmd::Drop)),
            PrivateFault::Stall => open.iter().for_each(|n| st.send(*n, Cmd::Stall)),
            PrivateFault::ExpireListenKey => expire_listen_keys(&mut st, &open),
            PrivateFault::RevokeListenKey => {
                st.listen_keys
                    .iter_mut()
                    .for_each(|(_, valid)| *valid = false);
            }
            PrivateFault::TerminateStream => terminate_streams(&mut st, &open),
        }
    }

    /// Refuses the next `n` authentications, correct or not, with the venue's refusal.
    pub fn reject_next_auth(&self, n: usize) {
        lock(&self.state).reject_auth += n;
    }

    /// Every connection attempt so far, in arrival order.
    pub fn connections(&self) -> Vec<PrivateConnLog> {
        lock(&self.state).conns.clone()
    }

    /// Every authentication attempt so far.
    pub fn auths(&self) -> Vec<AuthAttempt> {
        lock(&self.state).auths.clone()
    }

    /// Requests that break the venue's documented rules, described.
    pub fn violations(&self) -> Vec<String> {
        lock(&self.state).violations.clone()
    }

    /// Binance USD-M listen keys issued, in order.
    pub fn listen_keys(&self) -> Vec<String> {
        lock(&self.state)
            .listen_keys
            .iter()
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Binance USD-M: accept a listen key another mock issued (the REST mock's
    /// `POST /fapi/v1/listenKey`, `MockVenue::usdm_listen_key`), as the venue's one account
    /// service does.
    pub fn accept_listen_key(&self, key: &str) {
        let mut st = lock(&self.state);
        if !st.listen_keys.iter().any(|(k, _)| k == key) {
            st.listen_keys.push((key.to_string(), true));
        }
    }

    /// Kraken tokens issued, in order.
    pub fn tokens(&self) -> Vec<String> {
        lock(&self.state).tokens.clone()
    }

    /// Listen keys extended (`PUT /fapi/v1/listenKey`), in order.
    pub fn keepalives(&self) -> Vec<String> {
        lock(&self.state).keepalives.clone()
    }

    /// The venue's REST side for session tokens, for a client holding `api_key`: Binance USD-M
    /// listen keys (the active key or a new one; keep-alives refused with `-1125` once a key
    /// lapsed) and Kraken WebSocket tokens. A wrong key is refused (`-2015`,
    /// `EAPI:Invalid key`).
    pub fn token_source(&self, api_key: &str) -> Arc<dyn TokenSource> {
        Arc::new(MockTokens {
            venue: self.config.venue,
            known_key: self.config.api_key.clone(),
            api_key: api_key.to_string(),
            state: self.state.clone(),
        })
    }
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

// ---------------------------------------------------------------------------------------------
// Tokens (the REST side)

struct MockTokens {
    venue: Venue,
    known_key: String,
    api_key: String,
    state: Arc<Mutex<State>>,
}

impl MockTokens {
    fn issue(&self) -> Result<String, TokenError> {
        let mut st = lock(&self.state);
        if self.api_key != self.known_key {
            return Err(TokenError::Rejected(match self.venue {
                Venue::Kraken => "EAPI:Invalid key".into(),
                _ => "-2015 Invalid API-key, IP, or permissions for action.".into(),
            }));
        }
        if self.venue == Venue::Kraken {
            let token = format!(
                "mockWsToken{:04}G38a1tGFzqGiUCmnegBcm8d4nfP3",
                st.tokens.len()
            );
            st.tokens.push(token.clone());
            return Ok(token);
        }
        // POST on an account with an active key returns that key.
        if let Some((key, _)) = st.listen_keys.iter().find(|(_, valid)| *valid) {
            return Ok(key.clone());
        }
        let n = st.listen_keys.len();
        let key = format!("mockListenKey{n:04}pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a8");
        st.listen_keys.push((key.clone(), true));
        Ok(key)
    }

    fn extend(&self, key: &str) -> Result<(), TokenError> {
        let mut st = lock(&self.state);
        if self.api_key != self.known_key {
            return Err(TokenError::Rejected(
                "-2015 Invalid API-key, IP, or permissions for action.".into(),
            ));
        }
        if !st.listen_keys.iter().any(|(k, valid)| k == key && *valid) {
            return Err(TokenError::Rejected(
                "-1125 This listenKey does not exist.".into(),
            ));
        }
        st.keepalives.push(key.to_string());
        Ok(())
    }
}

impl TokenSource for MockTokens {
    fn token(&self) -> TokenFuture<'_, String> {
        let issued = self.issue();
        Box::pin(async move { issued })
    }

    fn keep_alive<'a>(&'a self, token: &'a str) -> TokenFuture<'a, ()> {
        let extended = match self.venue {
            Venue::BinanceUsdm => self.extend(token),
            _ => Ok(()),
        };
        Box::pin(async move { extended })
    }
}

// ---------------------------------------------------------------------------------------------
// Faults and routing

fn expire_listen_keys(st: &mut State, open: &[usize]) {
    let mut expired = Vec::new();
    for (key, valid) in st.listen_keys.iter_mut().filter(|(_, v)| *v) {
        *valid = false;
        expired.push(key.clone());
    }
    for &n in open {
        let Some(key) = st
            .conns
            .get(n)
            .and_then(|c| c.listen_key().map(str::to_string))
        else {
            continue;
        };
        if !expired.contains(&key) {
            continue;
        }
        let frame = json!({"e": "listenKeyExpired", "E": unix_ms().to_string(), "listenKey": key});
        st.send(n, Cmd::Send(frame.to_string()));
        if let Some(log) = st.log(n) {
            log.expired = true;
        }
    }
}

fn terminate_streams(st: &mut State, open: &[usize]) {
    for &n in open {
        let Some(sid) = st.conns.get(n).and_then(|c| c.subscription_id) else {
            continue;
        };
        let frame = json!({"subscriptionId": sid,
                           "event": {"e": "eventStreamTerminated", "E": unix_ms()}});
        st.send(n, Cmd::Send(frame.to_string()));
        if let Some(log) = st.log(n) {
            log.expired = true;
        }
    }
}

/// The text `frame` becomes on connection `log`, when the venue would send it there.
fn route(venue: Venue, frame: &str, log: &PrivateConnLog) -> Option<String> {
    let v: Value = serde_json::from_str(frame).ok()?;
    let subscribed = |name: &str| log.topics.iter().any(|t| t == name);
    match venue {
        Venue::BinanceSpot => {
            let sid = log.subscription_id?;
            Some(json!({"subscriptionId": sid, "event": v}).to_string())
        }
        Venue::BinanceUsdm => {
            let e = v.get("e")?.as_str()?;
            subscribed(e).then(|| frame.to_string())
        }
        Venue::Bybit => {
            let topic = v.get("topic")?.as_str()?;
            // `order` also carries the per-category form `order.linear`.
            let hit = log.topics.iter().any(|t| {
                topic == t
                    || topic.strip_prefix(t.as_str()).is_some_and(|rest| {
                        ["spot", "linear", "inverse", "option"]
                            .iter()
                            .any(|c| rest == format!(".{c}"))
                    })
            });
            hit.then(|| frame.to_string())
        }
        Venue::Okx => {
            let channel = v.get("arg")?.get("channel")?.as_str()?;
            subscribed(channel).then(|| frame.to_string())
        }
        Venue::Kraken => {
            let channel = v.get("channel")?.as_str()?;
            subscribed(channel).then(|| frame.to_string())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Serving

async fn serve(
    listener: std::net::TcpListener,
    config: MockPrivateConfig,
    state: Arc<Mutex<State>>,
    mut stop: oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    let (stop_all, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        config,
        state,
        stop: stop_rx,
    });
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                connections.spawn(connection(shared.clone(), tcp));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    let _ = stop_all.send(true);
    connections.shutdown().await;
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
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The venue's private path; `Err` says why a handshake is refused.
fn check_path(venue: Venue, path: &str) -> Result<(), String> {
    let want = match venue {
        Venue::BinanceSpot => "/ws-api/v3",
        Venue::BinanceUsdm => "/private/ws",
        Venue::Bybit => "/v5/private",
        Venue::Okx => "/ws/v5/private",
        Venue::Kraken => "/v2",
    };
    if path == want {
        Ok(())
    } else {
        Err(format!(
            "{path}: the {} private stream is {want}",
            venue.name()
        ))
    }
}

/// Binance USD-M: the listen key and the events of a handshake, checked.
fn check_listen_key(st: &State, query: &[(String, String)]) -> Result<Vec<String>, String> {
    let get = |k: &str| {
        query
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let key = get("listenKey").ok_or("no listenKey")?;
    if !st.listen_keys.iter().any(|(k, valid)| k == key && *valid) {
        return Err("the listen key does not exist or has expired".into());
    }
    let events = get("events").unwrap_or("");
    Ok(events
        .split('/')
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect())
}

type Accepted = (usize, WebSocketStream<TcpStream>);

/// The handshake: records the request, refuses a wrong path (404) or a bad listen key (400).
async fn handshake(shared: &Shared, tcp: TcpStream) -> Option<Accepted> {
    let venue = shared.config.venue;
    let mut seen = (String::new(), Vec::new());
    let mut refusal: Option<(StatusCode, String)> = None;
    let mut events = Vec::new();
    #[allow(clippy::result_large_err)] // tungstenite's error type is an HTTP response
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let path = req.uri().path().to_string();
        let query = decode_query(req.uri().query().unwrap_or(""));
        let checked = check_path(venue, &path)
            .map_err(|why| (StatusCode::NOT_FOUND, why))
            .and_then(|()| match venue {
                Venue::BinanceUsdm => check_listen_key(&lock(&shared.state), &query)
                    .map_err(|why| (StatusCode::BAD_REQUEST, why)),
                _ => Ok(Vec::new()),
            });
        seen = (path, query);
        match checked {
            Ok(e) => {
                events = e;
                Ok(resp)
            }
            Err((status, why)) => {
                refusal = Some((status, why.clone()));
                let mut r = ErrorResponse::new(Some(why));
                *r.status_mut() = status;
                Err(r)
            }
        }
    };
    let accepted = tokio_tungstenite::accept_hdr_async(tcp, callback).await;
    let mut st = lock(&shared.state);
    let n = st.conns.len();
    let usdm = venue == Venue::BinanceUsdm;
    match &refusal {
        Some((StatusCode::NOT_FOUND, why)) => st.violations.push(format!("connection {n}: {why}")),
        Some((_, why)) if usdm => st.auths.push(AuthAttempt {
            conn: n,
            ok: false,
            detail: why.clone(),
        }),
        _ => {}
    }
    let ok = accepted.is_ok();
    if ok && usdm {
        st.auths.push(AuthAttempt {
            conn: n,
            ok: true,
            detail: "ok".into(),
        });
    }
    st.conns.push(PrivateConnLog {
        n,
        path: seen.0,
        query: seen.1,
        accepted: ok,
        authenticated: ok && usdm,
        topics: if ok { events } else { Vec::new() },
        ended: !ok,
        ..PrivateConnLog::default()
    });
    accepted.ok().map(|ws| (n, ws))
}

async fn connection(shared: Arc<Shared>, tcp: TcpStream) {
    let Some((n, mut ws)) = handshake(&shared, tcp).await else {
        return;
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    lock(&shared.state).open.push((n, tx));
    run(&shared, n, &mut ws, &mut rx).await;
    drop(ws);
    let mut st = lock(&shared.state);
    st.open.retain(|(k, _)| *k != n);
    if let Some(log) = st.log(n) {
        log.ended = true;
    }
}

async fn run(
    shared: &Shared,
    n: usize,
    ws: &mut WebSocketStream<TcpStream>,
    rx: &mut mpsc::UnboundedReceiver<Cmd>,
) {
    let far = Duration::from_secs(86_400);
    let period = shared.config.server_ping_every.unwrap_or(far);
    let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let mut stop = shared.stop.clone();
    let greeting = shared.config.venue == Venue::Kraken;
    if greeting && ws.send(Message::text(kraken_status(n))).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => return,
            cmd = rx.recv() => match cmd {
                None | Some(Cmd::Drop) => return,
                Some(Cmd::Stall) => return stall(shared, n, rx, &mut stop).await,
                Some(Cmd::Send(text)) => {
                    if ws.send(Message::text(text)).await.is_err() {
                        return;
                    }
                    if let Some(log) = lock(&shared.state).log(n) {
                        log.pushed += 1;
                    }
                }
            },
            frame = ws.next() => {
                let Some(Ok(message)) = frame else { return };
                if !on_client(shared, n, ws, message).await {
                    return;
                }
            }
            _ = pings.tick(), if shared.config.server_ping_every.is_some() => {
                if ws.send(Message::Ping(b"mock".to_vec().into())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Neither reads nor writes until told to drop the connection (or the mock stops).
async fn stall(
    shared: &Shared,
    n: usize,
    rx: &mut mpsc::UnboundedReceiver<Cmd>,
    stop: &mut watch::Receiver<bool>,
) {
    if let Some(log) = lock(&shared.state).log(n) {
        log.stalled = true;
    }
    loop {
        tokio::select! {
            _ = stopped(stop) => return,
            cmd = rx.recv() => if matches!(cmd, None | Some(Cmd::Drop)) { return },
        }
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`: drop it here, not in the caller's select.
    let _ = stop.wait_for(|s| *s).await;
}

/// Records what the client sent and answers it; false when the connection must end.
async fn on_client(
    shared: &Shared,
    n: usize,
    ws: &mut WebSocketStream<TcpStream>,
    message: Message,
) -> bool {
    let text = match &message {
        Message::Text(t) => t.as_str().to_string(),
        Message::Ping(_) => {
            if let Some(log) = lock(&shared.state).log(n) {
                log.client_pings += 1;
            }
            return true;
        }
        Message::Close(_) => return false,
        _ => return true,
    };
    let replies = {
        let mut st = lock(&shared.state);
        if let Some(log) = st.log(n) {
            log.received.push(text.clone());
        }
        answer(&shared.config, &mut st, n, &text)
    };
    for reply in replies {
        if ws.send(Message::text(reply)).await.is_err() {
            return false;
        }
    }
    true
}

// ---------------------------------------------------------------------------------------------
// The dialects

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        // HMAC takes keys of any length; this arm is never taken.
        Err(_) => Vec::new(),
    }
}

/// What the mock answers to a client text frame (and the state it changes).
fn answer(config: &MockPrivateConfig, st: &mut State, n: usize, text: &str) -> Vec<String> {
    if config.venue == Venue::Okx && text == "ping" {
        return vec!["pong".into()];
    }
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        st.violations
            .push(format!("connection {n}: not JSON: {text}"));
        return Vec::new();
    };
    match config.venue {
        Venue::BinanceSpot => binance_spot(config, st, n, &v),
        Venue::BinanceUsdm => {
            st.violations.push(format!(
                "connection {n}: the USD-M private route takes no requests: {text}"
            ));
            Vec::new()
        }
        Venue::Bybit => bybit(config, st, n, &v),
        Venue::Okx => okx(config, st, n, &v),
        Venue::Kraken => kraken(st, n, &v),
    }
}

fn record(st: &mut State, n: usize, ok: bool, detail: &str) {
    st.auths.push(AuthAttempt {
        conn: n,
        ok,
        detail: detail.into(),
    });
    if ok && let Some(log) = st.log(n) {
        log.authenticated = true;
    }
}

fn authenticated(st: &mut State, n: usize) -> bool {
    st.conns.get(n).is_some_and(|c| c.authenticated)
}

/// Binance's text for a parameter value: strings bare, numbers as written.
fn param_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Binance spot WebSocket API: `userDataStream.subscribe.signature`.
fn binance_spot(config: &MockPrivateConfig, st: &mut State, n: usize, v: &Value) -> Vec<String> {
    let id = v.get("id").cloned().unwrap_or(Value::Null);
    let limits = json!([{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                         "intervalNum": 1, "limit": 6000, "count": 2}]);
    let method = v.get("method").and_then(Value::as_str).unwrap_or("");
    if method != "userDataStream.subscribe.signature" {
        st.violations
            .push(format!("connection {n}: unexpected method {method:?}"));
        let error = json!({"code": -1020, "msg": "This operation is not supported."});
        return vec![json!({"id": id, "status": 400, "error": error}).to_string()];
    }
    let params = v.get("params").and_then(Value::as_object);
    let verdict = match params {
        Some(_) if st.take_rejection() => Err((
            401,
            -2015,
            "Invalid API-key, IP, or permissions for action.",
        )),
        Some(p) => binance_verify(config, p),
        None => Err((400, -1102, "Mandatory parameter 'params' was not sent.")),
    };
    match verdict {
        Ok(()) => {
            let sid = u64::try_from(n).unwrap_or(0);
            record(st, n, true, "ok");
            if let Some(log) = st.log(n) {
                log.subscription_id = Some(sid);
                log.topics = vec!["userDataStream".into()];
            }
            let result = json!({"subscriptionId": sid});
            vec![
                json!({"id": id, "status": 200, "result": result, "rateLimits": limits})
                    .to_string(),
            ]
        }
        Err((status, code, msg)) => {
            record(st, n, false, &format!("{code} {msg}"));
            let error = json!({"code": code, "msg": msg});
            vec![
                json!({"id": id, "status": status, "error": error, "rateLimits": limits})
                    .to_string(),
            ]
        }
    }
}

/// Key, timestamp and HMAC signature of a signed WebSocket API request, Binance's order of
/// checks. `Err((status, code, msg))`.
fn binance_verify(
    config: &MockPrivateConfig,
    params: &serde_json::Map<String, Value>,
) -> Result<(), (u16, i64, &'static str)> {
    let text = |k: &str| params.get(k).map(param_text).unwrap_or_default();
    if text("apiKey") != config.api_key {
        return Err((
            401,
            -2015,
            "Invalid API-key, IP, or permissions for action.",
        ));
    }
    let ts = params.get("timestamp").and_then(Value::as_i64).unwrap_or(0);
    let now = unix_ms();
    if ts > now + 1_000 || now - ts > BINANCE_RECV_WINDOW_MS {
        return Err((
            400,
            -1021,
            "Timestamp for this request is outside of the recvWindow.",
        ));
    }
    let mut names: Vec<&String> = params.keys().filter(|k| *k != "signature").collect();
    names.sort();
    let payload = names
        .iter()
        .map(|k| format!("{k}={}", text(k)))
        .collect::<Vec<_>>()
        .join("&");
    let expected = hex::encode(hmac_sha256(config.secret.as_bytes(), payload.as_bytes()));
    if text("signature") != expected {
        return Err((400, -1022, "Signature for this request is not valid."));
    }
    Ok(())
}

fn bybit_conn_id(n: usize) -> String {
    format!("cejreaspqfh3sjdnldmg-{n}")
}

/// Bybit v5 private: `auth`, `subscribe`, `ping`.
fn bybit(config: &MockPrivateConfig, st: &mut State, n: usize, v: &Value) -> Vec<String> {
    let op = v.get("op").and_then(Value::as_str).unwrap_or("");
    let req_id = v.get("req_id").cloned().unwrap_or(json!(""));
    let conn_id = bybit_conn_id(n);
    let reply = |success: bool, msg: &str| {
        json!({"success": success, "ret_msg": msg, "op": op, "conn_id": conn_id,
               "req_id": req_id})
        .to_string()
    };
    match op {
        "auth" => {
            let verdict = if st.take_rejection() {
                Err("Invalid apikey")
            } else {
                bybit_verify(config, v)
            };
            record(st, n, verdict.is_ok(), verdict.err().unwrap_or("ok"));
            vec![reply(verdict.is_ok(), verdict.err().unwrap_or(""))]
        }
        "subscribe" if !authenticated(st, n) => {
            st.violations
                .push(format!("connection {n}: subscribe before auth"));
            vec![reply(false, "Request not authorized")]
        }
        "subscribe" => {
            let args: Vec<String> = v
                .get("args")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            const TOPICS: [&str; 6] = [
                "order",
                "execution",
                "execution.fast",
                "position",
                "wallet",
                "dcp",
            ];
            if let Some(bad) = args
                .iter()
                .find(|t| !TOPICS.contains(&t.split('.').next().unwrap_or("")))
            {
                return vec![reply(
                    false,
                    &format!("error:handler not found,topic:{bad}"),
                )];
            }
            if let Some(log) = st.log(n) {
                log.topics.extend(args);
            }
            vec![reply(true, "")]
        }
        "ping" => {
            let pong = json!({"req_id": req_id, "op": "pong", "args": [unix_ms().to_string()],
                              "conn_id": conn_id});
            vec![pong.to_string()]
        }
        other => {
            st.violations
                .push(format!("connection {n}: unknown op {other:?}"));
            vec![reply(false, &format!("error:unknown op {other}"))]
        }
    }
}

/// `[api_key, expires, hex HMAC(secret, "GET/realtime" + expires)]`, expires in the future.
fn bybit_verify(config: &MockPrivateConfig, v: &Value) -> Result<(), &'static str> {
    let args = v
        .get("args")
        .and_then(Value::as_array)
        .ok_or("Params Error")?;
    let key = args.first().and_then(Value::as_str).ok_or("Params Error")?;
    let expires = args.get(1).and_then(Value::as_i64).ok_or("Params Error")?;
    let signature = args.get(2).and_then(Value::as_str).ok_or("Params Error")?;
    if key != config.api_key {
        return Err("Invalid apikey");
    }
    if expires <= unix_ms() {
        return Err("Params Error: request expired");
    }
    let payload = format!("GET/realtime{expires}");
    let expected = hex::encode(hmac_sha256(config.secret.as_bytes(), payload.as_bytes()));
    if signature != expected {
        return Err("Invalid sign");
    }
    Ok(())
}

/// OKX v5 private: `login`, `subscribe`.
fn okx(config: &MockPrivateConfig, st: &mut State, n: usize, v: &Value) -> Vec<String> {
    let conn_id = format!("a4d3ae5{n}");
    let error = |code: &str, msg: &str| {
        json!({"event": "error", "code": code, "msg": msg, "connId": conn_id}).to_string()
    };
    match v.get("op").and_then(Value::as_str).unwrap_or("") {
        "login" => {
            let verdict = if st.take_rejection() {
                Err(("60009", "Login failed."))
            } else {
                okx_verify(config, v)
            };
            match verdict {
                Ok(()) => {
                    record(st, n, true, "ok");
                    let ok = json!({"event": "login", "code": "0", "msg": "", "connId": conn_id});
                    vec![ok.to_string()]
                }
                Err((code, msg)) => {
                    record(st, n, false, &format!("{code} {msg}"));
                    vec![error(code, msg)]
                }
            }
        }
        "subscribe" if !authenticated(st, n) => {
            st.violations
                .push(format!("connection {n}: subscribe before login"));
            vec![error("60011", "Please log in")]
        }
        "subscribe" => {
            let args = v
                .get("args")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut out = Vec::new();
            for arg in args {
                let channel = arg.get("channel").and_then(Value::as_str).unwrap_or("");
                let typed = arg.get("instType").and_then(Value::as_str).is_some();
                let fine = match channel {
                    "orders" | "positions" => typed,
                    "account" => true,
                    _ => false,
                };
                if !fine {
                    out.push(error(
                        "60018",
                        &format!("Wrong URL or channel:{channel} doesn't exist."),
                    ));
                    continue;
                }
                if let Some(log) = st.log(n) {
                    log.topics.push(channel.to_string());
                }
                out.push(json!({"event": "subscribe", "arg": arg, "connId": conn_id}).to_string());
            }
            out
        }
        other => {
            st.violations
                .push(format!("connection {n}: unknown op {other:?}"));
            vec![error("60019", &format!("Invalid op: {other}"))]
        }
    }
}

/// Key, passphrase, timestamp and base64 HMAC of `ts + "GET/users/self/verify"`.
fn okx_verify(config: &MockPrivateConfig, v: &Value) -> Result<(), (&'static str, &'static str)> {
    let arg = v
        .get("args")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .ok_or(("60012", "Invalid request"))?;
    let field = |k: &str| arg.get(k).and_then(Value::as_str).unwrap_or("");
    if field("apiKey") != config.api_key {
        return Err(("60005", "Invalid OK-ACCESS-KEY"));
    }
    if field("passphrase") != config.passphrase {
        return Err(("60024", "Wrong passphrase"));
    }
    let ts = field("timestamp");
    let seconds: i64 = ts.parse().map_err(|_| ("60004", "Invalid timestamp"))?;
    if (unix_ms() / 1000 - seconds).abs() > OKX_WINDOW_S {
        return Err(("60004", "Invalid timestamp"));
    }
    let prehash = format!("{ts}GET/users/self/verify");
    let expected = base64::engine::general_purpose::STANDARD
        .encode(hmac_sha256(config.secret.as_bytes(), prehash.as_bytes()));
    if field("sign") != expected {
        return Err(("60007", "Invalid sign"));
    }
    Ok(())
}

const KRAKEN_TIME_IN: &str = "2024-01-01T00:00:00.000000Z";
const KRAKEN_TIME_OUT: &str = "2024-01-01T00:00:00.000050Z";

fn kraken_status(n: usize) -> String {
    json!({"channel": "status", "type": "update",
           "data": [{"api_version": "v2", "connection_id": 2000 + n, "system": "online",
                     "version": "2.0.10"}]})
    .to_string()
}

/// Kraken v2 on the authenticated endpoint: `subscribe` with a token, `ping`.
fn kraken(st: &mut State, n: usize, v: &Value) -> Vec<String> {
    let req_id = v.get("req_id").cloned().unwrap_or(Value::Null);
    match v.get("method").and_then(Value::as_str).unwrap_or("") {
        "ping" => vec![
            json!({"method": "pong", "req_id": req_id, "time_in": KRAKEN_TIME_IN,
                              "time_out": KRAKEN_TIME_OUT})
            .to_string(),
        ],
        "subscribe" => {
            let params = v.get("params").cloned().unwrap_or(Value::Null);
            let channel = params
                .get("channel")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let token = params.get("token").and_then(Value::as_str).unwrap_or("");
            let refuse = |error: &str| {
                json!({"error": error, "method": "subscribe", "req_id": req_id, "success": false,
                       "time_in": KRAKEN_TIME_IN, "time_out": KRAKEN_TIME_OUT})
                .to_string()
            };
            if !["executions", "balances"].contains(&channel.as_str()) {
                st.violations.push(format!(
                    "connection {n}: channel {channel:?} on the auth endpoint"
                ));
                return vec![refuse("EGeneral:Invalid arguments")];
            }
            let valid = st.tokens.iter().any(|t| t == token) && !st.take_rejection();
            if !valid {
                record(st, n, false, "ESession:Invalid session");
                return vec![refuse("ESession:Invalid session")];
            }
            record(st, n, true, "ok");
            if let Some(log) = st.log(n) {
                log.topics.push(channel.clone());
            }
            let result = match channel.as_str() {
                "executions" => {
                    json!({"channel": "executions", "maxratecount": 180, "snapshot": true})
                }
                _ => json!({"channel": "balances", "snapshot": true}),
            };
            vec![
                json!({"method": "subscribe", "result": result, "success": true,
                        "time_in": KRAKEN_TIME_IN, "time_out": KRAKEN_TIME_OUT,
                        "req_id": req_id})
                .to_string(),
            ]
        }
        other => {
            st.violations
                .push(format!("connection {n}: unknown method {other:?}"));
            vec![
                json!({"error": format!("EGeneral:Unknown method {other}"), "method": other,
                        "success": false, "time_in": KRAKEN_TIME_IN,
                        "time_out": KRAKEN_TIME_OUT})
                .to_string(),
            ]
        }
    }
}
