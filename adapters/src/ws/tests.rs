//! The client against the loopback mock venue: subscriptions in each venue's documented format,
//! decoded script values, reconnects with restored subscriptions, backoff (lower bounds from
//! the mock's clock only), stale streams, keep-alive per venue, depth gaps, garbage, slow
//! consumers and shutdown. Waits are bounded polls, never timing assertions.

use std::time::{Duration, Instant};

use keel_engine::candle::Interval;
use keel_engine::event::Side;
use keel_engine::fixed::Fixed;
use keel_engine::symbol::Symbol;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::*;
use crate::mock::ws::{MockWsConfig, MockWsVenue, WsConnectionLog, WsFault, samples};

/// Long enough for anything a healthy test waits for on a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(20);

fn sym(s: &str) -> Symbol {
    Symbol::new(s).expect("symbol")
}

fn fx(s: &str) -> Fixed {
    Fixed::parse(s).expect("decimal")
}

fn all_streams() -> Vec<StreamKind> {
    vec![
        StreamKind::Klines(Interval::parse("1m").expect("1m")),
        StreamKind::Trades,
        StreamKind::BookTicker,
        StreamKind::Depth,
    ]
}

/// Timers that never fire in a test unless it shortens them; reconnects after 20–100 ms.
fn config(venue: Venue, symbol: &str, streams: Vec<StreamKind>, mock: &MockWsVenue) -> WsConfig {
    let mut c = WsConfig::new(venue, sym(symbol), streams);
    c.base_url = Some(mock.url());
    c.timing = Timing {
        connect_timeout: Duration::from_secs(5),
        stale_after: Duration::from_secs(30),
        ping_every: Duration::from_secs(30),
        pong_timeout: Duration::from_secs(30),
        max_connection_age: None,
        consumer_stall_timeout: Duration::from_secs(30),
    };
    c.retry.base_delay = Duration::from_millis(40);
    c.retry.max_delay = Duration::from_millis(200);
    c
}

fn mock(venue: Venue, script: Vec<String>) -> MockWsVenue {
    let mut c = MockWsConfig::new(venue, script);
    c.frame_every = Duration::from_millis(10);
    c.server_ping_every = None;
    c.heartbeat_every = None;
    MockWsVenue::start(c).expect("mock starts")
}

/// A running client and everything it has reported so far.
struct Run {
    handle: WsHandle,
    rx: mpsc::Receiver<WsEvent>,
    seen: Vec<WsEvent>,
}

impl Run {
    fn start(config: WsConfig) -> Run {
        let (handle, rx) = spawn(config).expect("spawn");
        Run {
            handle,
            rx,
            seen: Vec::new(),
        }
    }

    /// Reads events until `done` holds for them and the mock's log; panics after
    /// [`PATIENCE`] with what it saw.
    async fn until(
        &mut self,
        mock: &MockWsVenue,
        what: &str,
        done: impl Fn(&[WsEvent], &[WsConnectionLog]) -> bool,
    ) {
        let until = Instant::now() + PATIENCE;
        loop {
            if done(&self.seen, &mock.connections()) {
                return;
            }
            assert!(
                Instant::now() < until,
                "timed out waiting for {what}\nevents: {:#?}\nmock: {:#?}\nviolations: {:?}",
                self.seen,
                mock.connections(),
                mock.violations()
            );
            tokio::select! {
                ev = self.rx.recv() => match ev {
                    Some(ev) => self.seen.push(ev),
                    None => tokio::time::sleep(Duration::from_millis(10)).await,
                },
                _ = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
        }
    }

    fn market(&self) -> Vec<&VenueEvent> {
        market(&self.seen)
    }

    fn connection(&self) -> Vec<&ConnectionEvent> {
        connection(&self.seen)
    }
}

fn market(seen: &[WsEvent]) -> Vec<&VenueEvent> {
    seen.iter()
        .filter_map(|e| match e {
            WsEvent::Market(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn connection(seen: &[WsEvent]) -> Vec<&ConnectionEvent> {
    seen.iter()
        .filter_map(|e| match e {
            WsEvent::Connection(c) => Some(c),
            _ => None,
        })
        .collect()
}

fn count(seen: &[WsEvent], kind: &str) -> usize {
    market(seen).iter().filter(|e| e.kind() == kind).count()
}

fn disconnects(seen: &[WsEvent]) -> Vec<(DisconnectReason, Option<Duration>)> {
    connection(seen)
        .into_iter()
        .filter_map(|c| match c {
            ConnectionEvent::Disconnected {
                reason,
                reconnect_in,
                ..
            } => Some((reason.clone(), *reconnect_in)),
            _ => None,
        })
        .collect()
}

fn gaps(seen: &[WsEvent]) -> Vec<DepthGap> {
    connection(seen)
        .into_iter()
        .filter_map(|c| match c {
            ConnectionEvent::Gap(g) => Some(g.clone()),
            _ => None,
        })
        .collect()
}

fn accepted(log: &[WsConnectionLog]) -> Vec<&WsConnectionLog> {
    log.iter().filter(|c| c.accepted).collect()
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{text:?} is not JSON: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Subscribe → documented format → decoded values

/// What each venue's documentation says the client must send (Binance: the URL).
fn expected_subscriptions(venue: Venue, linear: bool) -> Vec<(&'static str, String, Vec<Value>)> {
    match venue {
        Venue::BinanceSpot => vec![(
            "/stream",
            "btcusdt@kline_1m/btcusdt@trade/btcusdt@bookTicker/btcusdt@depth@100ms".into(),
            vec![],
        )],
        Venue::BinanceUsdm => vec![
            (
                "/public/stream",
                "btcusdt@bookTicker/btcusdt@depth@100ms".into(),
                vec![],
            ),
            (
                "/market/stream",
                "btcusdt@kline_1m/btcusdt@aggTrade".into(),
                vec![],
            ),
        ],
        Venue::Bybit => vec![(
            if linear {
                "/v5/public/linear"
            } else {
                "/v5/public/spot"
            },
            String::new(),
            vec![json!({"req_id": "keel-sub", "op": "subscribe", "args": [
                "kline.1.BTCUSDT", "publicTrade.BTCUSDT",
                if linear { "tickers.BTCUSDT" } else { "orderbook.1.BTCUSDT" },
                "orderbook.50.BTCUSDT"]})],
        )],
        Venue::Okx => vec![
            (
                "/ws/v5/public",
                String::new(),
                vec![json!({"op": "subscribe", "args": [
                    {"channel": "trades", "instId": "BTC-USDT"},
                    {"channel": "bbo-tbt", "instId": "BTC-USDT"},
                    {"channel": "books", "instId": "BTC-USDT"}]})],
            ),
            (
                "/ws/v5/business",
                String::new(),
                vec![json!({"op": "subscribe", "args": [
                    {"channel": "candle1m", "instId": "BTC-USDT"}]})],
            ),
        ],
        Venue::Kraken => vec![(
            "/v2",
            String::new(),
            vec![
                json!({"method": "subscribe", "params": {"channel": "ohlc",
                       "symbol": ["BTC/USD"], "interval": 1}, "req_id": 1}),
                json!({"method": "subscribe", "params": {"channel": "trade",
                       "symbol": ["BTC/USD"]}, "req_id": 2}),
                json!({"method": "subscribe", "params": {"channel": "ticker",
                       "symbol": ["BTC/USD"], "event_trigger": "bbo"}, "req_id": 3}),
                json!({"method": "subscribe", "params": {"channel": "book",
                       "symbol": ["BTC/USD"], "depth": 10}, "req_id": 4}),
            ],
        )],
    }
}

async fn subscribes_and_decodes(venue: Venue, symbol: &str, linear: bool) {
    let mock = mock(venue, samples::script(venue, symbol));
    let mut c = config(venue, symbol, all_streams(), &mock);
    c.bybit_category = if linear {
        crate::bybit::Category::Linear
    } else {
        crate::bybit::Category::Spot
    };
    let mut run = Run::start(c);
    // Bybit spot's top of book is a one-level book: four depth frames then.
    let depth_frames = if venue == Venue::Bybit && !linear {
        4
    } else {
        3
    };
    run.until(&mock, "the whole script", |seen, _| {
        count(seen, "candle") >= 1
            && count(seen, "trade") >= 1
            && count(seen, "depth") >= depth_frames
            && (count(seen, "book_ticker") >= 1 || (venue == Venue::Bybit && !linear))
    })
    .await;

    // The subscriptions, as the mock received them.
    let log = mock.connections();
    let expected = expected_subscriptions(venue, linear);
    assert_eq!(log.len(), expected.len(), "{log:#?}");
    for (path, streams, texts) in &expected {
        let c = log
            .iter()
            .find(|c| c.path == *path)
            .unwrap_or_else(|| panic!("no connection to {path}: {log:#?}"));
        if !streams.is_empty() {
            assert_eq!(c.query, [("streams".to_string(), streams.clone())]);
        }
        let sent: Vec<Value> = c.texts().iter().map(|t| json_of(t)).collect();
        assert_eq!(&sent, texts, "{path}");
    }
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());

    // The script's values.
    let s = sym(symbol);
    let m = run.market();
    let candle = m
        .iter()
        .find_map(|e| match e {
            VenueEvent::Candle { candle, closed } => Some((*candle, *closed)),
            _ => None,
        })
        .expect("a candle");
    assert_eq!(candle.0.symbol, s);
    assert_eq!(candle.0.open_time_ns, samples::T0_MS * 1_000_000);
    assert_eq!(candle.0.interval_ns, 60_000_000_000);
    assert_eq!(
        (candle.0.open, candle.0.high, candle.0.low, candle.0.close),
        (fx("100.5"), fx("102"), fx("99"), fx("101.25"))
    );
    assert_eq!(candle.0.volume, fx("3.5"));
    assert!(!candle.1, "the scripted kline is in progress");
    let trade = m
        .iter()
        .find_map(|e| match e {
            VenueEvent::Trade(t) => Some(*t),
            _ => None,
        })
        .expect("a trade");
    assert_eq!(
        (trade.symbol, trade.price, trade.qty, trade.aggressor),
        (s, fx("101.25"), fx("0.5"), Side::Buy)
    );
    if venue != Venue::Bybit {
        // Bybit's trade ids are UUIDs on derivatives, hashed by the codec.
        assert_eq!(trade.trade_id, 1001);
    }
    if venue == Venue::Bybit && !linear {
        let top = m
            .iter()
            .find_map(|e| match e {
                VenueEvent::Depth(d) if d.bids.len() == 1 && d.last_update_id == 7000 => Some(d),
                _ => None,
            })
            .expect("the level-1 book");
        assert_eq!(top.bids, [(fx("101.2"), fx("1.5"))]);
        assert_eq!(top.asks, [(fx("101.3"), fx("2"))]);
    } else {
        let bt = m
            .iter()
            .find_map(|e| match e {
                VenueEvent::BookTicker(b) => Some(*b),
                _ => None,
            })
            .expect("a book ticker");
        assert_eq!(
            (bt.symbol, bt.bid, bt.bid_qty, bt.ask, bt.ask_qty),
            (s, fx("101.2"), fx("1.5"), fx("101.3"), fx("2"))
        );
    }
    let depth: Vec<_> = m
        .iter()
        .filter_map(|e| match e {
            VenueEvent::Depth(d) if d.last_update_id != 7000 => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(depth.len(), 3);
    for (i, d) in depth.iter().enumerate() {
        assert_eq!(d.bids, [(fx("101.2"), Fixed::from_int(1 + i as i64))]);
        if venue != Venue::Kraken {
            assert_eq!(d.last_update_id, samples::DEPTH_FIRST_ID + i as u64);
        }
    }
    assert!(gaps(&run.seen).is_empty(), "{:?}", gaps(&run.seen));

    // Connection events: connected and subscribed once per socket, acks where the venue sends
    // them, nothing undecodable, no disconnect.
    let ce = run.connection();
    let connected = ce
        .iter()
        .filter(|c| matches!(c, ConnectionEvent::Connected { attempt: 1, .. }))
        .count();
    assert_eq!(connected, expected.len());
    let subscribed = ce
        .iter()
        .filter(|c| matches!(c, ConnectionEvent::Subscribed { .. }))
        .count();
    assert_eq!(subscribed, expected.len());
    let acks = ce
        .iter()
        .filter(|c| matches!(c, ConnectionEvent::SubscribeAck { .. }))
        .count();
    let want_acks = match venue {
        Venue::BinanceSpot | Venue::BinanceUsdm => 0,
        Venue::Bybit => 1,
        Venue::Okx | Venue::Kraken => 4,
    };
    assert_eq!(acks, want_acks, "{ce:#?}");
    assert!(disconnects(&run.seen).is_empty(), "{ce:#?}");
    assert_eq!(run.handle.stats().undecodable, 0, "{ce:#?}");
    run.handle.shutdown().await;
}

#[tokio::test]
async fn binance_spot_subscribes_by_url_and_decodes_the_script() {
    subscribes_and_decodes(Venue::BinanceSpot, "BTCUSDT", false).await;
}

#[tokio::test]
async fn binance_usdm_uses_the_public_and_market_routes_and_decodes_the_script() {
    subscribes_and_decodes(Venue::BinanceUsdm, "BTCUSDT", false).await;
}

#[tokio::test]
async fn bybit_linear_subscribes_with_op_subscribe_and_decodes_the_script() {
    subscribes_and_decodes(Venue::Bybit, "BTCUSDT", true).await;
}

#[tokio::test]
async fn bybit_spot_takes_top_of_book_from_the_level_1_book() {
    subscribes_and_decodes(Venue::Bybit, "BTCUSDT", false).await;
}

#[tokio::test]
async fn okx_subscribes_candles_on_business_and_the_rest_on_public() {
    subscribes_and_decodes(Venue::Okx, "BTC-USDT", false).await;
}

#[tokio::test]
async fn kraken_subscribes_one_channel_per_message_and_decodes_the_script() {
    subscribes_and_decodes(Venue::Kraken, "BTC/USD", false).await;
}

#[tokio::test]
async fn a_refused_subscription_is_reported_and_the_connection_stays_up() {
    let venue = Venue::Okx;
    // OKX instrument ids are upper case: the mock (like OKX) refuses this one.
    let mock = mock(venue, samples::script(venue, "BTC-USDT"));
    let mut run = Run::start(config(venue, "btc-usdt", vec![StreamKind::Trades], &mock));
    run.until(&mock, "the refusal", |seen, _| {
        connection(seen)
            .iter()
            .any(|c| matches!(c, ConnectionEvent::SubscribeRejected { .. }))
    })
    .await;
    let reason = run
        .connection()
        .iter()
        .find_map(|c| match c {
            ConnectionEvent::SubscribeRejected { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .unwrap_or_default();
    assert!(reason.contains("60018"), "{reason}");
    assert_eq!(mock.violations().len(), 1);
    assert!(disconnects(&run.seen).is_empty());
    run.handle.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Reconnects

async fn reconnects_after_a_drop(venue: Venue, symbol: &str) {
    let mock = mock(venue, samples::script(venue, symbol));
    let streams = vec![
        StreamKind::Klines(Interval::parse("1m").expect("1m")),
        StreamKind::Trades,
    ];
    let mut run = Run::start(config(venue, symbol, streams, &mock));
    run.until(&mock, "the first trade", |seen, _| {
        count(seen, "trade") >= 1
    })
    .await;
    mock.inject(WsFault::Drop);
    run.until(&mock, "a second trade after the reconnect", |seen, _| {
        count(seen, "trade") >= 2
    })
    .await;

    let log = mock.connections();
    let conns = accepted(&log);
    assert_eq!(conns.len(), 2, "{log:#?}");
    // The same subscription on the new socket (Binance: the same URL).
    assert_eq!(conns[1].path, conns[0].path);
    assert_eq!(conns[1].query, conns[0].query);
    assert_eq!(conns[1].texts(), conns[0].texts());
    assert_eq!(conns[1].topics, conns[0].topics);
    assert!(!conns[1].topics.is_empty());

    let ce = run.connection();
    assert!(
        ce.iter()
            .any(|c| matches!(c, ConnectionEvent::Connected { attempt: 2, .. })),
        "{ce:#?}"
    );
    let resubscribed = ce
        .iter()
        .find_map(|c| match c {
            ConnectionEvent::Resubscribed { topics, .. } => Some(topics.clone()),
            _ => None,
        })
        .expect("resubscribed");
    assert_eq!(resubscribed.len(), 2);
    let dropped = disconnects(&run.seen);
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    let (reason, wait) = &dropped[0];
    assert!(
        matches!(
            reason,
            DisconnectReason::Closed { .. } | DisconnectReason::Error(_)
        ),
        "{reason:?}"
    );
    // The backoff, as the mock saw it: the new handshake came no sooner than the wait the
    // client announced after the drop.
    let wait = wait.expect("a reconnect");
    assert!(wait >= Duration::from_millis(20), "{wait:?}");
    let dropped_at = conns[0].ended.expect("first connection ended");
    assert!(
        conns[1].at.duration_since(dropped_at) >= wait,
        "reconnected {:?} after the drop, announced {wait:?}",
        conns[1].at.duration_since(dropped_at)
    );
    run.handle.shutdown().await;
}

#[tokio::test]
async fn binance_spot_reconnects_after_a_drop_with_the_same_streams() {
    reconnects_after_a_drop(Venue::BinanceSpot, "BTCUSDT").await;
}

#[tokio::test]
async fn bybit_reconnects_after_a_drop_and_subscribes_again() {
    reconnects_after_a_drop(Venue::Bybit, "BTCUSDT").await;
}

#[tokio::test]
async fn okx_reconnects_after_a_drop_and_subscribes_again() {
    // Klines and trades live on two OKX endpoints: both sockets are dropped and restored.
    let venue = Venue::Okx;
    let mock = mock(venue, samples::script(venue, "BTC-USDT"));
    let streams = vec![
        StreamKind::Klines(Interval::parse("1m").expect("1m")),
        StreamKind::Trades,
    ];
    let mut run = Run::start(config(venue, "BTC-USDT", streams, &mock));
    run.until(&mock, "data on both sockets", |seen, _| {
        count(seen, "trade") >= 1 && count(seen, "candle") >= 1
    })
    .await;
    mock.inject(WsFault::Drop);
    run.until(&mock, "data again on both sockets", |seen, _| {
        count(seen, "trade") >= 2 && count(seen, "candle") >= 2
    })
    .await;
    let log = mock.connections();
    for path in ["/ws/v5/public", "/ws/v5/business"] {
        let on: Vec<_> = log.iter().filter(|c| c.path == path).collect();
        assert_eq!(on.len(), 2, "{path}: {log:#?}");
        assert_eq!(on[1].texts(), on[0].texts());
    }
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    run.handle.shutdown().await;
}

#[tokio::test]
async fn kraken_reconnects_after_a_drop_and_subscribes_again() {
    reconnects_after_a_drop(Venue::Kraken, "BTC/USD").await;
}

#[tokio::test]
async fn refused_handshakes_back_off_exponentially_then_connect() {
    let venue = Venue::Bybit;
    let mock = mock(venue, samples::script(venue, "BTCUSDT"));
    mock.refuse_next(3);
    let mut c = config(venue, "BTCUSDT", vec![StreamKind::Trades], &mock);
    c.retry.base_delay = Duration::from_millis(100);
    c.retry.max_delay = Duration::from_secs(2);
    let mut run = Run::start(c);
    run.until(&mock, "a trade after three refusals", |seen, _| {
        count(seen, "trade") >= 1
    })
    .await;
    let log = mock.connections();
    assert_eq!(log.len(), 4, "{log:#?}");
    assert_eq!(
        log.iter().map(|c| c.accepted).collect::<Vec<_>>(),
        [false, false, false, true]
    );
    let waits: Vec<Duration> = disconnects(&run.seen)
        .into_iter()
        .map(|(reason, wait)| {
            assert!(
                matches!(reason, DisconnectReason::ConnectFailed(ref e) if e.contains("503")),
                "{reason:?}"
            );
            wait.expect("retrying")
        })
        .collect();
    assert_eq!(waits.len(), 3);
    for k in 0..3 {
        // Equal jitter: retry k waits at least half of base × 2^k.
        let floor = Duration::from_millis(50 << k);
        assert!(waits[k] >= floor, "retry {k}: {:?} < {floor:?}", waits[k]);
        let gap = log[k + 1].at.duration_since(log[k].at);
        assert!(
            gap >= waits[k],
            "attempt {}: {gap:?} < {:?}",
            k + 1,
            waits[k]
        );
    }
    run.handle.shutdown().await;
}

#[tokio::test]
async fn gives_up_after_max_retries_consecutive_failures() {
    let venue = Venue::Kraken;
    let mock = mock(venue, vec![]);
    mock.refuse_next(usize::MAX / 2);
    let mut c = config(venue, "BTC/USD", vec![StreamKind::Trades], &mock);
    c.retry.max_retries = 2;
    c.retry.base_delay = Duration::from_millis(10);
    let (handle, mut rx) = spawn(c).expect("spawn");
    let mut seen = Vec::new();
    // The task ends and drops its sender, which closes the channel.
    let closed = tokio::time::timeout(PATIENCE, async {
        while let Some(ev) = rx.recv().await {
            seen.push(ev);
        }
    })
    .await;
    assert!(closed.is_ok(), "{seen:#?}");
    let d = disconnects(&seen);
    assert_eq!(d.len(), 3, "{d:?}");
    assert_eq!(d[2].1, None);
    handle.shutdown().await;
    // The mock logs a refused handshake after answering it: give it the moment.
    assert!(mock.wait_until(PATIENCE, |log| log.len() >= 3));
    assert_eq!(mock.connections().len(), 3);
}

// ---------------------------------------------------------------------------------------------
// Stale streams and keep-alive

#[tokio::test]
async fn a_silent_stream_is_replaced() {
    let venue = Venue::BinanceSpot;
    let mock = mock(venue, samples::depth_frames(venue, "BTCUSDT", 500));
    let mut c = config(venue, "BTCUSDT", vec![StreamKind::Depth], &mock);
    c.timing.stale_after = Duration::from_millis(300);
    let mut run = Run::start(c);
    run.until(&mock, "depth", |seen, _| count(seen, "depth") >= 3)
        .await;
    mock.inject(WsFault::Stall);
    run.until(&mock, "depth on a new connection", |_, log| {
        accepted(log).len() >= 2 && accepted(log)[1].frames_sent >= 2
    })
    .await;
    run.until(&mock, "the disconnect", |seen, _| {
        !disconnects(seen).is_empty()
    })
    .await;
    let (reason, _) = &disconnects(&run.seen)[0];
    match reason {
        DisconnectReason::Stale { silent_for } => {
            assert!(*silent_for >= Duration::from_millis(300), "{silent_for:?}")
        }
        other => panic!("expected a stale stream, got {other:?}"),
    }
    // The mock saw the stalled connection stay silent at least `stale_after` before the new
    // handshake (its own clock, a lower bound only).
    let log = mock.connections();
    assert!(log[1].at.duration_since(log[0].at) >= Duration::from_millis(300));
    run.handle.shutdown().await;
}

#[tokio::test]
async fn binance_server_pings_are_answered_with_the_same_payload() {
    let venue = Venue::BinanceUsdm;
    let mut mc = MockWsConfig::new(venue, samples::script(venue, "BTCUSDT"));
    mc.server_ping_every = Some(Duration::from_millis(50));
    let mock = MockWsVenue::start(mc).expect("mock");
    let mut run = Run::start(config(venue, "BTCUSDT", vec![StreamKind::Trades], &mock));
    run.until(&mock, "five pongs", |_, log| {
        log.first().is_some_and(|c| c.pongs().len() >= 5)
    })
    .await;
    let c = &mock.connections()[0];
    let pongs: Vec<Vec<u8>> = c.pongs().iter().map(|p| p.to_vec()).collect();
    assert_eq!(pongs[..], c.pings_sent[..pongs.len()]);
    // Binance's rule is to answer, not to ping: the client sent no pings and no text.
    assert!(
        c.received
            .iter()
            .all(|(_, f)| matches!(f, crate::mock::ws::ClientFrame::Pong(_)))
    );
    assert!(run.handle.stats().server_pings >= 5);
    run.handle.shutdown().await;
}

#[tokio::test]
async fn bybit_pings_every_interval_and_counts_the_pongs() {
    let venue = Venue::Bybit;
    let mock = mock(venue, samples::script(venue, "BTCUSDT"));
    let mut c = config(venue, "BTCUSDT", vec![StreamKind::Trades], &mock);
    c.bybit_category = crate::bybit::Category::Spot;
    c.timing.ping_every = Duration::from_millis(100);
    c.timing.pong_timeout = Duration::from_millis(2000);
    let mut run = Run::start(c);
    run.until(&mock, "four pings", |_, log| {
        log.first()
            .is_some_and(|c| c.texts().iter().filter(|t| t.contains("ping")).count() >= 4)
    })
    .await;
    let c = &mock.connections()[0];
    let pings: Vec<Value> = c.texts().iter().skip(1).map(|t| json_of(t)).collect();
    for (i, p) in pings.iter().enumerate() {
        assert_eq!(
            p,
            &json!({"req_id": format!("keel-ping-{}", i + 1), "op": "ping"})
        );
    }
    // Pings go out on schedule: never two within less than the interval (mock's clock).
    let times: Vec<Instant> = c
        .received
        .iter()
        .filter(
            |(_, f)| matches!(f, crate::mock::ws::ClientFrame::Text(t) if t.contains("\"ping\"")),
        )
        .map(|(at, _)| *at)
        .collect();
    for w in times.windows(2) {
        assert!(w[1].duration_since(w[0]) >= Duration::from_millis(90));
    }
    let until = Instant::now() + PATIENCE;
    while run.handle.stats().pongs < 2 {
        assert!(Instant::now() < until, "{:?}", run.handle.stats());
        run.until(&mock, "a moment", |_, _| true).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(disconnects(&run.seen).is_empty());
    run.handle.shutdown().await;
}

#[tokio::test]
async fn okx_pings_when_idle_and_expects_pong() {
    let venue = Venue::Okx;
    let mock = mock(venue, samples::script(venue, "BTC-USDT"));
    let mut c = config(venue, "BTC-USDT", vec![StreamKind::Trades], &mock);
    c.timing.ping_every = Duration::from_millis(100);
    c.timing.pong_timeout = Duration::from_millis(2000);
    let mut run = Run::start(c);
    run.until(&mock, "three pings", |_, log| {
        log.first()
            .is_some_and(|c| c.texts().iter().filter(|t| **t == "ping").count() >= 3)
    })
    .await;
    assert!(run.handle.stats().pongs >= 2);
    assert!(disconnects(&run.seen).is_empty());

    // A stalled venue leaves the ping unanswered: the connection is replaced.
    mock.inject(WsFault::Stall);
    run.until(&mock, "the pong timeout", |seen, _| {
        !disconnects(seen).is_empty()
    })
    .await;
    let (reason, _) = &disconnects(&run.seen)[0];
    assert!(
        matches!(reason, DisconnectReason::PongTimeout { waited } if *waited >= Duration::from_millis(2000)),
        "{reason:?}"
    );
    run.until(&mock, "a second connection", |_, log| {
        accepted(log).len() >= 2
    })
    .await;
    run.handle.shutdown().await;
}

#[tokio::test]
async fn kraken_pings_with_method_ping_and_takes_heartbeats_as_life() {
    let venue = Venue::Kraken;
    let mut mc = MockWsConfig::new(venue, samples::script(venue, "BTC/USD"));
    mc.frame_every = Duration::from_millis(10);
    mc.heartbeat_every = Some(Duration::from_millis(30));
    let mock = MockWsVenue::start(mc).expect("mock");
    let mut c = config(venue, "BTC/USD", vec![StreamKind::Trades], &mock);
    c.timing.ping_every = Duration::from_millis(100);
    c.timing.stale_after = Duration::from_millis(500);
    let mut run = Run::start(c);
    run.until(&mock, "three pings", |_, log| {
        log.first().is_some_and(|c| c.texts().len() >= 4)
    })
    .await;
    let c = &mock.connections()[0];
    for (i, t) in c.texts().iter().skip(1).enumerate() {
        assert_eq!(json_of(t), json!({"method": "ping", "req_id": i + 1}));
    }
    // The status greeting is a notice; heartbeats and pongs keep the stream fresh well past
    // `stale_after` though the script ended long ago.
    tokio::time::sleep(Duration::from_millis(800)).await;
    run.until(&mock, "the status notice", |seen, _| {
        connection(seen)
            .iter()
            .any(|c| matches!(c, ConnectionEvent::Notice { text, .. } if text.contains("online")))
    })
    .await;
    assert!(
        disconnects(&run.seen).is_empty(),
        "{:?}",
        disconnects(&run.seen)
    );
    assert!(run.handle.stats().pongs >= 3);
    run.handle.shutdown().await;
}

#[tokio::test]
async fn binance_connections_are_replaced_before_their_maximum_age() {
    let venue = Venue::BinanceSpot;
    let mock = mock(venue, samples::script(venue, "BTCUSDT"));
    let mut c = config(venue, "BTCUSDT", vec![StreamKind::Trades], &mock);
    c.timing.max_connection_age = Some(Duration::from_millis(300));
    let mut run = Run::start(c);
    run.until(&mock, "a replacement", |seen, _| count(seen, "trade") >= 2)
        .await;
    let (reason, wait) = &disconnects(&run.seen)[0];
    assert!(
        matches!(reason, DisconnectReason::MaxAge { age } if *age >= Duration::from_millis(300))
    );
    assert_eq!(*wait, Some(Duration::ZERO));
    assert!(mock.connections()[0].closed_by_client());
    run.handle.shutdown().await;
}

#[tokio::test]
async fn a_venue_shutdown_notice_reconnects_at_once() {
    let venue = Venue::BinanceSpot;
    let mut script = samples::script(venue, "BTCUSDT");
    script.insert(2, r#"{"e":"serverShutdown","E":1704067230000}"#.to_string());
    let mock = mock(venue, script);
    let mut run = Run::start(config(venue, "BTCUSDT", all_streams(), &mock));
    run.until(&mock, "the reconnect", |_, log| accepted(log).len() >= 2)
        .await;
    run.until(&mock, "the disconnect", |seen, _| {
        !disconnects(seen).is_empty()
    })
    .await;
    let (reason, wait) = &disconnects(&run.seen)[0];
    assert_eq!(
        reason,
        &DisconnectReason::VenueClosing("serverShutdown".into())
    );
    assert_eq!(*wait, Some(Duration::ZERO));
    run.handle.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Depth gaps, garbage, back-pressure, shutdown

async fn depth_gaps_are_reported(venue: Venue, symbol: &str) {
    let mock = mock(venue, samples::depth_frames(venue, symbol, 400));
    let mut run = Run::start(config(venue, symbol, vec![StreamKind::Depth], &mock));
    run.until(&mock, "depth", |seen, _| count(seen, "depth") >= 3)
        .await;
    mock.inject(WsFault::Skip);
    run.until(&mock, "a missing-update gap", |seen, _| {
        !gaps(seen).is_empty()
    })
    .await;
    let g = &gaps(&run.seen)[0];
    assert_eq!(g.kind, GapKind::Missing);
    assert_eq!(g.symbol, sym(symbol));
    assert_eq!(g.last_update_id, g.last_seen_id + 2, "{g:?}");
    mock.inject(WsFault::Duplicate);
    run.until(&mock, "a stale-update gap", |seen, _| gaps(seen).len() >= 2)
        .await;
    let g = &gaps(&run.seen)[1];
    assert_eq!(g.kind, GapKind::Stale);
    assert_eq!(g.last_update_id, g.last_seen_id, "{g:?}");
    // The gap event comes right before the update that shows it; the update is delivered.
    let at = run
        .seen
        .iter()
        .position(|e| matches!(e, WsEvent::Connection(ConnectionEvent::Gap(_))))
        .expect("gap");
    assert!(matches!(
        &run.seen[at + 1],
        WsEvent::Market(VenueEvent::Depth(d)) if d.last_update_id == gaps(&run.seen)[0].last_update_id
    ));
    assert_eq!(run.handle.stats().gaps, 2);
    run.handle.shutdown().await;
}

#[tokio::test]
async fn binance_spot_depth_gap_when_first_id_skips() {
    depth_gaps_are_reported(Venue::BinanceSpot, "BTCUSDT").await;
}

#[tokio::test]
async fn binance_usdm_depth_gap_when_pu_breaks() {
    depth_gaps_are_reported(Venue::BinanceUsdm, "BTCUSDT").await;
}

#[tokio::test]
async fn bybit_depth_gap_when_u_skips() {
    depth_gaps_are_reported(Venue::Bybit, "BTCUSDT").await;
}

#[tokio::test]
async fn okx_depth_gap_when_prev_seq_id_breaks() {
    depth_gaps_are_reported(Venue::Okx, "BTC-USDT").await;
}

#[tokio::test]
async fn out_of_order_depth_is_a_gap_then_a_stale_update() {
    let venue = Venue::Bybit;
    let mock = mock(venue, samples::depth_frames(venue, "BTCUSDT", 400));
    let mut run = Run::start(config(venue, "BTCUSDT", vec![StreamKind::Depth], &mock));
    run.until(&mock, "depth", |seen, _| count(seen, "depth") >= 3)
        .await;
    mock.inject(WsFault::Swap);
    run.until(&mock, "two gaps", |seen, _| gaps(seen).len() >= 2)
        .await;
    let g = gaps(&run.seen);
    assert_eq!((g[0].kind, g[1].kind), (GapKind::Missing, GapKind::Stale));
    assert_eq!(g[1].last_update_id + 1, g[0].last_update_id);
    run.handle.shutdown().await;
}

#[tokio::test]
async fn garbage_frames_are_counted_and_reported_and_the_stream_goes_on() {
    let venue = Venue::Okx;
    let mock = mock(venue, samples::depth_frames(venue, "BTC-USDT", 400));
    let mut run = Run::start(config(venue, "BTC-USDT", vec![StreamKind::Depth], &mock));
    run.until(&mock, "depth", |seen, _| count(seen, "depth") >= 2)
        .await;
    mock.inject(WsFault::Garbage);
    mock.inject(WsFault::Garbage);
    run.until(&mock, "two reports", |seen, _| {
        connection(seen)
            .iter()
            .filter(|c| matches!(c, ConnectionEvent::Undecodable { .. }))
            .count()
            >= 2
    })
    .await;
    let reports: Vec<(u64, String)> = run
        .connection()
        .iter()
        .filter_map(|c| match c {
            ConnectionEvent::Undecodable { total, frame, .. } => Some((*total, frame.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(reports[0].0, 1);
    assert_eq!(reports[1].0, 2);
    assert!(reports[0].1.starts_with("<html>"), "{reports:?}");
    let before = count(&run.seen, "depth");
    run.until(&mock, "more depth", |seen, _| {
        count(seen, "depth") > before + 2
    })
    .await;
    assert_eq!(run.handle.stats().undecodable, 2);
    assert!(disconnects(&run.seen).is_empty());
    run.handle.shutdown().await;
}

#[tokio::test]
async fn a_stalled_consumer_gets_back_pressure_then_a_reported_disconnect_without_loss() {
    let venue = Venue::Bybit;
    let frames = 200;
    let mock = mock(venue, samples::depth_frames(venue, "BTCUSDT", frames));
    let mut c = config(venue, "BTCUSDT", vec![StreamKind::Depth], &mock);
    c.channel_capacity = 4;
    c.timing.consumer_stall_timeout = Duration::from_millis(200);
    let (handle, mut rx) = spawn(c).expect("spawn");
    // Read nothing for a while: the socket task fills the channel and waits.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(handle.stats().consumer_stalls >= 1, "{:?}", handle.stats());
    let mut run = Run {
        handle,
        rx: std::mem::replace(&mut rx, mpsc::channel(1).1),
        seen: Vec::new(),
    };
    run.until(&mock, "the reconnect", |seen, log| {
        accepted(log).len() >= 2 && !disconnects(seen).is_empty()
    })
    .await;
    let (reason, _) = &disconnects(&run.seen)[0];
    assert_eq!(
        reason,
        &DisconnectReason::ConsumerStalled {
            waited: Duration::from_millis(200)
        }
    );
    // Nothing decoded was dropped: every depth update before the disconnect is there, in
    // sequence from the first frame.
    let cut = run
        .seen
        .iter()
        .position(|e| matches!(e, WsEvent::Connection(ConnectionEvent::Disconnected { .. })))
        .expect("disconnect");
    let ids: Vec<u64> = market(&run.seen[..cut])
        .iter()
        .filter_map(|e| match e {
            VenueEvent::Depth(d) => Some(d.last_update_id),
            _ => None,
        })
        .collect();
    let want: Vec<u64> = (0..ids.len() as u64)
        .map(|i| samples::DEPTH_FIRST_ID + i)
        .collect();
    assert_eq!(ids, want);
    assert!(gaps(&run.seen[..cut]).is_empty());
    assert!(mock.connections()[0].closed_by_client());
    run.handle.shutdown().await;
}

#[tokio::test]
async fn shutdown_sends_a_close_frame_and_ends_every_task() {
    let venue = Venue::BinanceUsdm;
    let mock = mock(venue, samples::script(venue, "BTCUSDT"));
    let mut run = Run::start(config(venue, "BTCUSDT", all_streams(), &mock));
    run.until(&mock, "both routes", |seen, _| {
        count(seen, "trade") >= 1 && count(seen, "book_ticker") >= 1
    })
    .await;
    let Run { handle, mut rx, .. } = run;
    handle.shutdown().await;
    let ok = mock.wait_until(PATIENCE, |log| {
        log.len() == 2
            && log
                .iter()
                .all(|c| c.closed_by_client() && c.ended.is_some())
    });
    assert!(ok, "{:#?}", mock.connections());
    // Every task has ended: the channel drains and closes.
    let mut rest = Vec::new();
    while let Some(ev) = rx.recv().await {
        rest.push(ev);
    }
    let shut = disconnects(&rest)
        .iter()
        .filter(|(r, w)| *r == DisconnectReason::Shutdown && w.is_none())
        .count();
    assert_eq!(shut, 2, "{rest:#?}");
}
