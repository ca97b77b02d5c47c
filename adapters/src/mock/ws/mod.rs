//! The mock venue's WebSocket side: a loopback server (its own port, thread and runtime, like
//! the HTTP mock) that speaks one venue's public-stream dialect and misbehaves on command.
//!
//! - Dialects ([`dialect`]), written from the venues' documentation and independent of the
//!   codecs: Binance spot `/stream?streams=` and `/ws/<stream>`, Binance USD-M only on the
//!   `/public` and `/market` routes with each stream on its route (the unrouted paths are
//!   refused with 404), Bybit `/v5/public/spot|linear` (`op` subscribe with its ack, `op` ping
//!   answered the spot or the linear way), OKX `/ws/v5/public|business` (candles only on
//!   business; one `event` subscribe ack per channel; text `ping` → `pong`), Kraken `/v2` (a
//!   `status` greeting, one ack per channel and symbol, `ping` → `pong`, `heartbeat` frames).
//!   Subscriptions that break the venue's rules are answered with the venue's error and listed
//!   by [`MockWsVenue::violations`].
//! - Every connection plays the script ([`MockWsConfig::script`]) from its first frame, one
//!   frame per `frame_every`, sending only the frames of streams the connection subscribed to
//!   (frames that name no stream are always sent): a venue sends nothing for a subscription it
//!   never got, so a client that forgets to resubscribe sees silence. When the script ends the
//!   connection stays open with keep-alive traffic only (Binance protocol pings every
//!   `server_ping_every`, Kraken heartbeats every `heartbeat_every`).
//! - Faults ([`WsFault`]) apply to the connections open when injected: drop them, stall them
//!   (nothing more is sent, pings go unanswered, the socket stays open), send garbage, a
//!   duplicate of the last frame, skip a frame (a sequence gap), swap the next two frames.
//!   [`MockWsVenue::refuse_next`] refuses handshakes with HTTP 503.
//! - Everything is recorded per connection ([`WsConnectionLog`]): the request path and query,
//!   handshake time, what the client sent (text, pings, pongs, close), the mock's pings.
//!
//! [`samples`] builds scripts of realistic frames for each venue.

mod dialect;
pub mod private;
pub mod samples;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

use crate::model::Venue;

/// What the mock serves.
#[derive(Clone, Debug)]
pub struct MockWsConfig {
    pub venue: Venue,
    /// Frames streamed on every connection, in order, once the connection has subscriptions.
    pub script: Vec<String>,
    pub frame_every: Duration,
    /// Binance: a protocol ping this often (the venues: 20 s spot, 3 min USD-M).
    pub server_ping_every: Option<Duration>,
    /// Kraken: a `heartbeat` frame this often once subscribed (the venue: about 1 s).
    pub heartbeat_every: Option<Duration>,
}

impl MockWsConfig {
    /// A frame every 20 ms; Binance pings every 20 s, Kraken heartbeats every second.
    pub fn new(venue: Venue, script: Vec<String>) -> MockWsConfig {
        let binance = matches!(venue, Venue::BinanceSpot | Venue::BinanceUsdm);
        MockWsConfig {
            venue,
            script,
            frame_every: Duration::from_millis(20),
            server_ping_every: binance.then(|| Duration::from_secs(20)),
            heartbeat_every: (venue == Venue::Kraken).then(|| Duration::from_secs(1)),
        }
    }
}

/// A misbehaviour, applied to every connection open when it is injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsFault {
    /// Close the TCP connection without a close frame.
    Drop,
    /// Send nothing more (no frames, pongs, pings or acks); keep the socket open.
    Stall,
    /// Send a frame that is not the venue's JSON.
    Garbage,
    /// Send the last scripted frame again.
    Duplicate,
    /// Leave out the next scripted frame.
    Skip,
    /// Send the next two scripted frames in reverse order.
    Swap,
}

/// What a client sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientFrame {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close,
}

/// One connection attempt and what happened on it.
#[derive(Clone, Debug)]
pub struct WsConnectionLog {
    /// Attempt number, from 0.
    pub n: usize,
    /// When the handshake request arrived.
    pub at: Instant,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// False when the handshake was refused.
    pub accepted: bool,
    /// Streams subscribed (URL streams, or acknowledged subscriptions), in the mock's naming:
    /// Binance stream names, Bybit topics, OKX `channel:instId`, Kraken `channel:symbol`.
    pub topics: Vec<String>,
    pub received: Vec<(Instant, ClientFrame)>,
    /// Payloads of the protocol pings the mock sent.
    pub pings_sent: Vec<Vec<u8>>,
    /// Scripted frames sent.
    pub frames_sent: usize,
    /// When the mock closed or lost the connection (refused: when it answered).
    pub ended: Option<Instant>,
}

impl WsConnectionLog {
    /// Text frames the client sent, in order.
    pub fn texts(&self) -> Vec<&str> {
        self.received
            .iter()
            .filter_map(|(_, f)| match f {
                ClientFrame::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Payloads of the protocol pongs the client sent.
    pub fn pongs(&self) -> Vec<&[u8]> {
        self.received
            .iter()
            .filter_map(|(_, f)| match f {
                ClientFrame::Pong(p) => Some(p.as_slice()),
                _ => None,
            })
            .collect()
    }

    /// The client sent a close frame.
    pub fn closed_by_client(&self) -> bool {
        self.received
            .iter()
            .any(|(_, f)| matches!(f, ClientFrame::Close))
    }
}

#[derive(Default)]
struct State {
    connections: Vec<WsConnectionLog>,
    violations: Vec<String>,
    refuse: usize,
    open: Vec<(usize, mpsc::UnboundedSender<WsFault>)>,
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

struct Shared {
    config: MockWsConfig,
    state: Arc<Mutex<State>>,
    stop: watch::Receiver<bool>,
}

/// A loopback server on 127.0.0.1 (a free port) with its own thread and current-thread
/// runtime; dropping it signals the server to stop and joins the thread. Shared by the public
/// and private WebSocket mocks.
pub(crate) struct ServerThread {
    pub(crate) addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerThread {
    /// Binds, then runs `serve(listener, stop)` on the new thread until it returns.
    pub(crate) fn start<F, Fut>(name: &str, serve: F) -> std::io::Result<ServerThread>
    where
        F: FnOnce(std::net::TcpListener, oneshot::Receiver<()>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (shutdown, stop) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(format!("{name}-{}", addr.port()))
            .spawn(move || runtime.block_on(serve(listener, stop)))?;
        Ok(ServerThread {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A running WebSocket mock venue. Stops when dropped.
pub struct MockWsVenue {
    server: ServerThread,
    state: Arc<Mutex<State>>,
}

impl MockWsVenue {
    /// Binds 127.0.0.1 on a free port and starts serving.
    pub fn start(config: MockWsConfig) -> std::io::Result<MockWsVenue> {
        let state = Arc::new(Mutex::new(State::default()));
        let shared_state = state.clone();
        let server = ServerThread::start("mock-ws", move |listener, stop| {
            serve(listener, config, shared_state, stop)
        })?;
        Ok(MockWsVenue { server, state })
    }

    /// `ws://127.0.0.1:PORT`, the base URL to give a client.
    pub fn url(&self) -> String {
        format!("ws://{}", self.server.addr)
    }

    /// Applies `fault` to every connection open now.
    pub fn inject(&self, fault: WsFault) {
        for (_, tx) in &lock(&self.state).open {
            let _ = tx.send(fault);
        }
    }

    /// Refuses the next `n` handshakes with HTTP 503.
    pub fn refuse_next(&self, n: usize) {
        lock(&self.state).refuse += n;
    }

    /// Every connection attempt so far, in arrival order.
    pub fn connections(&self) -> Vec<WsConnectionLog> {
        lock(&self.state).connections.clone()
    }

    /// Requests that break the venue's documented rules, described.
    pub fn violations(&self) -> Vec<String> {
        lock(&self.state).violations.clone()
    }

    /// Polls until `done` holds for the connection log or `limit` passes; returns whether it
    /// held. For tests: a bounded wait, never a timing assertion.
    pub fn wait_until(&self, limit: Duration, done: impl Fn(&[WsConnectionLog]) -> bool) -> bool {
        let until = Instant::now() + limit;
        loop {
            if done(&lock(&self.state).connections) {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    config: MockWsConfig,
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

/// A handshake request as it arrived: path, query, time.
type Seen = (String, Vec<(String, String)>, Instant);

/// The handshake: records the request, refuses it when told to or when the path is not the
/// venue's.
async fn handshake(
    shared: &Shared,
    tcp: TcpStream,
) -> Option<(usize, WebSocketStream<TcpStream>, Vec<String>, String)> {
    let refuse = {
        let mut st = lock(&shared.state);
        let refuse = st.refuse > 0;
        st.refuse = st.refuse.saturating_sub(1);
        refuse
    };
    let mut seen: Option<Seen> = None;
    let mut refusal: Option<String> = None;
    let mut url_topics = Vec::new();
    let venue = shared.config.venue;
    // The error type is tungstenite's (an HTTP response), not ours to shrink.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let path = req.uri().path().to_string();
        let query = super::decode_query(req.uri().query().unwrap_or(""));
        let checked = dialect::check_path(venue, &path, &query);
        seen = Some((path, query, Instant::now()));
        let (status, why) = if refuse {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "refused on command".to_string(),
            )
        } else {
            match checked {
                Ok(topics) => {
                    url_topics = topics;
                    return Ok(resp);
                }
                Err(why) => (StatusCode::NOT_FOUND, why),
            }
        };
        refusal = Some(why.clone());
        let mut r = ErrorResponse::new(Some(why));
        *r.status_mut() = status;
        Err(r)
    };
    let accepted = tokio_tungstenite::accept_hdr_async(tcp, callback).await;
    // The request's arrival, before the answer: what a client's backoff is measured from.
    let (path, query, at) = seen.unwrap_or_else(|| (String::new(), Vec::new(), Instant::now()));
    let mut st = lock(&shared.state);
    let n = st.connections.len();
    if let Some(why) = &refusal
        && !refuse
    {
        st.violations.push(format!("connection {n}: {path}: {why}"));
    }
    st.connections.push(WsConnectionLog {
        n,
        at,
        path: path.clone(),
        query,
        accepted: accepted.is_ok(),
        topics: url_topics.clone(),
        received: Vec::new(),
        pings_sent: Vec::new(),
        frames_sent: 0,
        ended: accepted.is_err().then(Instant::now),
    });
    accepted.ok().map(|ws| (n, ws, url_topics, path))
}

/// A connection's own state.
struct Conn {
    n: usize,
    path: String,
    topics: Vec<String>,
    cursor: usize,
    last_sent: Option<String>,
    stalled: bool,
    skip: usize,
    swap: bool,
    pings: u64,
}

impl Conn {
    /// The next script frame this connection wants, from `cursor`, and the index after it.
    fn next_frame(&self, script: &[String], venue: Venue, from: usize) -> Option<(usize, usize)> {
        (from..script.len())
            .find(|&i| {
                dialect::frame_topic(venue, &script[i]).is_none_or(|t| self.topics.contains(&t))
            })
            .map(|i| (i, i + 1))
    }
}

async fn connection(shared: Arc<Shared>, tcp: TcpStream) {
    let Some((n, mut ws, url_topics, path)) = handshake(&shared, tcp).await else {
        return;
    };
    let (fault_tx, mut faults) = mpsc::unbounded_channel();
    lock(&shared.state).open.push((n, fault_tx));
    let mut conn = Conn {
        n,
        path,
        topics: url_topics,
        cursor: 0,
        last_sent: None,
        stalled: false,
        skip: 0,
        swap: false,
        pings: 0,
    };
    run(&shared, &mut ws, &mut conn, &mut faults).await;
    // Taken before the socket closes, so a client's reconnect is never measured short.
    let ended = Instant::now();
    drop(ws);
    let mut st = lock(&shared.state);
    st.open.retain(|(k, _)| *k != n);
    if let Some(log) = st.connections.get_mut(n) {
        log.ended = Some(ended);
    }
}

fn log_mut(st: &mut State, n: usize) -> Option<&mut WsConnectionLog> {
    st.connections.get_mut(n)
}

async fn run(
    shared: &Shared,
    ws: &mut WebSocketStream<TcpStream>,
    conn: &mut Conn,
    faults: &mut mpsc::UnboundedReceiver<WsFault>,
) {
    let config = &shared.config;
    let far = Duration::from_secs(86_400);
    let mut frames = tokio::time::interval(config.frame_every.max(Duration::from_millis(1)));
    let ping_period = config.server_ping_every.unwrap_or(far);
    let mut pings =
        tokio::time::interval_at(tokio::time::Instant::now() + ping_period, ping_period);
    let beat_period = config.heartbeat_every.unwrap_or(far);
    let mut beats =
        tokio::time::interval_at(tokio::time::Instant::now() + beat_period, beat_period);
    let mut stop = shared.stop.clone();
    for greeting in dialect::greeting(config.venue, conn.n) {
        if ws.send(Message::text(greeting)).await.is_err() {
            return;
        }
    }
    loop {
        let streaming = !conn.stalled && !conn.topics.is_empty();
        tokio::select! {
            _ = stopped(&mut stop) => return,
            fault = faults.recv() => {
                let Some(fault) = fault else { return };
                if !on_fault(shared, ws, conn, fault).await {
                    return;
                }
            }
            frame = ws.next() => {
                let Some(Ok(message)) = frame else { return };
                if !on_client(shared, ws, conn, message).await {
                    return;
                }
            }
            _ = frames.tick(), if streaming => {
                if !send_scripted(shared, ws, conn).await {
                    return;
                }
            }
            _ = pings.tick(), if !conn.stalled && config.server_ping_every.is_some() => {
                conn.pings += 1;
                let payload = conn.pings.to_string().into_bytes();
                if ws.send(Message::Ping(payload.clone().into())).await.is_err() {
                    return;
                }
                if let Some(log) = log_mut(&mut lock(&shared.state), conn.n) {
                    log.pings_sent.push(payload);
                }
            }
            _ = beats.tick(), if streaming && config.heartbeat_every.is_some() => {
                if ws.send(Message::text(dialect::KRAKEN_HEARTBEAT)).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`: drop it here, not in the caller's select.
    let _ = stop.wait_for(|s| *s).await;
}

/// Applies a fault; false when the connection must end.
async fn on_fault(
    shared: &Shared,
    ws: &mut WebSocketStream<TcpStream>,
    conn: &mut Conn,
    fault: WsFault,
) -> bool {
    match fault {
        WsFault::Drop => return false,
        WsFault::Stall => conn.stalled = true,
        WsFault::Garbage => {
            let garbage = "<html><body>502 Bad Gateway</body></html>";
            return ws.send(Message::text(garbage)).await.is_ok();
        }
        WsFault::Duplicate => {
            if let Some(last) = conn.last_sent.clone() {
                if ws.send(Message::text(last)).await.is_err() {
                    return false;
                }
                if let Some(log) = log_mut(&mut lock(&shared.state), conn.n) {
                    log.frames_sent += 1;
                }
            }
        }
        WsFault::Skip => conn.skip += 1,
        WsFault::Swap => conn.swap = true,
    }
    true
}

/// Sends the next scripted frame (or two, for a swap); false when the connection must end.
async fn send_scripted(
    shared: &Shared,
    ws: &mut WebSocketStream<TcpStream>,
    conn: &mut Conn,
) -> bool {
    let script = &shared.config.script;
    let venue = shared.config.venue;
    while conn.skip > 0 {
        let Some((_, after)) = conn.next_frame(script, venue, conn.cursor) else {
            break;
        };
        conn.cursor = after;
        conn.skip -= 1;
    }
    let Some((first, after)) = conn.next_frame(script, venue, conn.cursor) else {
        return true;
    };
    let mut order = vec![first];
    conn.cursor = after;
    if conn.swap {
        conn.swap = false;
        if let Some((second, after)) = conn.next_frame(script, venue, conn.cursor) {
            order.insert(0, second);
            conn.cursor = after;
        }
    }
    for i in order {
        if ws.send(Message::text(script[i].as_str())).await.is_err() {
            return false;
        }
        conn.last_sent = Some(script[i].clone());
        if let Some(log) = log_mut(&mut lock(&shared.state), conn.n) {
            log.frames_sent += 1;
        }
    }
    true
}

/// Records what the client sent and answers it; false when the connection must end.
async fn on_client(
    shared: &Shared,
    ws: &mut WebSocketStream<TcpStream>,
    conn: &mut Conn,
    message: Message,
) -> bool {
    let now = Instant::now();
    let (frame, text) = match &message {
        Message::Text(t) => (ClientFrame::Text(t.as_str().to_string()), Some(t.as_str())),
        Message::Binary(b) => (ClientFrame::Binary(b.to_vec()), None),
        Message::Ping(p) => (ClientFrame::Ping(p.to_vec()), None),
        Message::Pong(p) => (ClientFrame::Pong(p.to_vec()), None),
        Message::Close(_) => (ClientFrame::Close, None),
        Message::Frame(_) => return true,
    };
    if let Some(log) = log_mut(&mut lock(&shared.state), conn.n) {
        log.received.push((now, frame));
    }
    if matches!(message, Message::Close(_)) {
        return false;
    }
    let Some(text) = text else { return true };
    if conn.stalled {
        return true;
    }
    let reply = dialect::on_text(shared.config.venue, conn.n, &conn.path, &conn.topics, text);
    {
        let mut st = lock(&shared.state);
        for v in &reply.violations {
            let n = conn.n;
            st.violations.push(format!("connection {n}: {v}"));
        }
        if let Some(log) = log_mut(&mut st, conn.n) {
            log.topics.extend(reply.topics.iter().cloned());
        }
    }
    conn.topics.extend(reply.topics);
    for out in reply.send {
        if ws.send(Message::text(out)).await.is_err() {
            return false;
        }
    }
    true
}
