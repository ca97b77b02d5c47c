//! The private-stream client against the loopback private mock, per venue: authentication the
//! mock verifies with its own HMAC, refusals reported (never with a secret), account frames
//! from recorded venue payloads decoded into fills and orders, reconnects that authenticate
//! again and ask for a reconcile, listen-key expiry and keep-alive, stale streams.
//! Waits are bounded polls of the event channel, never timing assertions.

use std::time::{Duration, Instant};

use keel_adapters::credentials::Credentials;
use keel_adapters::mock::ws::private::{
    MockPrivateConfig, MockPrivateVenue, PrivateConnLog, PrivateFault,
};
use keel_adapters::model::{FillEvent, OrderEvent, OrderState, Venue, VenueEvent};
use keel_adapters::ws::private::{
    PrivateConfig, PrivateConnectionEvent as Ev, PrivateDisconnectReason as Why, PrivateEvent,
    PrivateHandle, StopReason, spawn,
};
use keel_adapters::ws::{DisconnectReason, Timing};
use keel_engine::event::Side;
use keel_engine::fixed::Fixed;
use serde_json::Value;
use tokio::sync::mpsc;

/// Long enough for anything a healthy test waits for on a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(20);
const KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
const SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
const WRONG_SECRET: &str = "WrongSecretZ9YdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5";
const PASSPHRASE: &str = "keelPassphrase-42";

fn fx(s: &str) -> Fixed {
    Fixed::parse(s).expect("decimal")
}

fn data(path: &str) -> String {
    let full = format!("{}/tests/data/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// The `data` object of a recorded `{"stream":..,"data":..}` capture: the bare event.
fn inner_data(path: &str) -> String {
    let v: Value = serde_json::from_str(&data(path)).expect("JSON");
    v.get("data").expect("data").to_string()
}

fn mock(venue: Venue) -> MockPrivateVenue {
    let config = MockPrivateConfig::new(venue, KEY, SECRET).with_passphrase(PASSPHRASE);
    MockPrivateVenue::start(config).expect("mock starts")
}

/// Timers that never fire unless a test shortens them; reconnects after 20–200 ms.
fn config_with(venue: Venue, mock: &MockPrivateVenue, key: &str, secret: &str) -> PrivateConfig {
    let creds = Credentials::new(key, secret).with_passphrase(PASSPHRASE);
    let mut c = PrivateConfig::new(venue, creds).with_tokens(mock.token_source(key));
    c.base_url = Some(mock.url());
    c.timing = Timing {
        connect_timeout: Duration::from_secs(5),
        stale_after: Duration::from_secs(30),
        ping_every: Duration::from_secs(30),
        pong_timeout: Duration::from_secs(30),
        max_connection_age: None,
        consumer_stall_timeout: Duration::from_secs(30),
    };
    c.auth_timeout = Duration::from_secs(5);
    c.retry.base_delay = Duration::from_millis(40);
    c.retry.max_delay = Duration::from_millis(200);
    c.retry.max_retries = 20;
    c.max_auth_failures = 3;
    c
}

fn config(venue: Venue, mock: &MockPrivateVenue) -> PrivateConfig {
    config_with(venue, mock, KEY, SECRET)
}

/// A running client and everything it has reported so far.
struct Run {
    handle: PrivateHandle,
    rx: mpsc::Receiver<PrivateEvent>,
    seen: Vec<PrivateEvent>,
}

impl Run {
    fn start(config: PrivateConfig) -> Run {
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
        mock: &MockPrivateVenue,
        what: &str,
        done: impl Fn(&[PrivateEvent], &[PrivateConnLog]) -> bool,
    ) {
        let until = Instant::now() + PATIENCE;
        loop {
            if done(&self.seen, &mock.connections()) {
                return;
            }
            assert!(
                Instant::now() < until,
                "timed out waiting for {what}\nevents: {:#?}\nmock: {:#?}\nauths: {:?}\nviolations: {:?}",
                self.seen,
                mock.connections(),
                mock.auths(),
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

    /// Waits for the `n`-th `NeedsReconcile` (from 1).
    async fn live(&mut self, mock: &MockPrivateVenue, n: usize) {
        self.until(mock, &format!("reconcile #{n}"), |seen, log| {
            reconciles(seen).len() >= n && log.iter().filter(|c| c.is_live()).count() >= 1
        })
        .await;
    }
}

fn connection(seen: &[PrivateEvent]) -> Vec<&Ev> {
    seen.iter()
        .filter_map(|e| match e {
            PrivateEvent::Connection(c) => Some(c),
            _ => None,
        })
        .collect()
}

fn fills(seen: &[PrivateEvent]) -> Vec<&FillEvent> {
    seen.iter()
        .filter_map(|e| match e {
            PrivateEvent::Account(VenueEvent::Fill(f)) => Some(f),
            _ => None,
        })
        .collect()
}

fn orders(seen: &[PrivateEvent]) -> Vec<&OrderEvent> {
    seen.iter()
        .filter_map(|e| match e {
            PrivateEvent::Account(VenueEvent::Order(o)) => Some(o),
            _ => None,
        })
        .collect()
}

fn reconciles(seen: &[PrivateEvent]) -> Vec<Option<u64>> {
    connection(seen)
        .into_iter()
        .filter_map(|c| match c {
            Ev::NeedsReconcile { since_unix_ms, .. } => Some(*since_unix_ms),
            _ => None,
        })
        .collect()
}

fn disconnects(seen: &[PrivateEvent]) -> Vec<(Why, Option<Duration>)> {
    connection(seen)
        .into_iter()
        .filter_map(|c| match c {
            Ev::Disconnected {
                reason,
                reconnect_in,
            } => Some((reason.clone(), *reconnect_in)),
            _ => None,
        })
        .collect()
}

fn stopped(seen: &[PrivateEvent]) -> Option<StopReason> {
    connection(seen).into_iter().find_map(|c| match c {
        Ev::Stopped { reason } => Some(reason.clone()),
        _ => None,
    })
}

// ---------------------------------------------------------------------------------------------
// What each venue sends, and what it must decode to

/// One account fill as the venue pushes it (recorded payloads), and its values.
struct Sample {
    frame: String,
    symbol: &'static str,
    client_order_id: &'static str,
    trade_id: &'static str,
    side: Side,
    price: &'static str,
    qty: &'static str,
    fee: &'static str,
    fee_asset: &'static str,
    /// The order state the same frame reports.
    state: OrderState,
}

fn sample(venue: Venue) -> Sample {
    match venue {
        // The WebSocket API sends the bare event inside `{"subscriptionId","event"}`; the
        // mock wraps it with the connection's subscription id.
        Venue::BinanceSpot => Sample {
            frame: inner_data("binance_py/ws_messages/ws_spot_execution_report_trade.json"),
            symbol: "ETHUSDT",
            client_order_id: "O-12345-test-trade",
            trade_id: "98765432",
            side: Side::Buy,
            price: "2499.5",
            qty: "0.5",
            fee: "0.0005",
            fee_asset: "ETH",
            state: OrderState::PartiallyFilled,
        },
        Venue::BinanceUsdm => Sample {
            frame: inner_data(
                "binance_py/ws_messages/ws_futures_order_update_trade_reduce_only_qty.json",
            ),
            symbol: "ETHUSDT",
            client_order_id: "O-12345-test-reduce-only-trade",
            trade_id: "9988776655",
            side: Side::Sell,
            price: "2500",
            qty: "1",
            fee: "0.5",
            fee_asset: "USDT",
            state: OrderState::Filled,
        },
        Venue::Bybit => Sample {
            frame: data("bybit/ws_account_execution.json"),
            symbol: "BTCUSDT",
            client_order_id: "test-order-link-001",
            trade_id: "0ab1bdf7-4219-438b-b30a-32ec863018f7",
            side: Side::Sell,
            price: "95900.1",
            qty: "0.5",
            fee: "26.3725275",
            // The execution names no fee currency (`feeCurrency` is on the order).
            fee_asset: "",
            // An execution is not an order update on Bybit: the order comes on `order`.
            state: OrderState::Filled,
        },
        Venue::Okx => Sample {
            frame: data("okx/ws_orders.json"),
            symbol: "BTC-USDT-SWAP",
            client_order_id: "001BTCUSDT20250106001",
            trade_id: "1518905529",
            side: Side::Buy,
            price: "103698.9",
            qty: "0.03",
            fee: "0.021776769",
            fee_asset: "USDT",
            state: OrderState::Filled,
        },
        // The documented trade-execution fields (see tests/kraken.rs).
        Venue::Kraken => Sample {
            frame: r#"{"channel":"executions","type":"update","data":[{"order_id":"OK4GJX-KSTLS-7DZZO5","cl_ord_id":"k1","exec_id":"TZX2WP-XSEOP-FP7WYR","exec_type":"trade","trade_id":365573,"symbol":"BTC/USD","side":"sell","last_qty":0.005,"last_price":26599.9,"liquidity_ind":"t","cost":132.9995,"order_userref":0,"order_status":"filled","order_type":"limit","cum_qty":0.005,"avg_price":26599.9,"fee_usd_equiv":0.3458,"fees":[{"asset":"USD","qty":0.3458}],"timestamp":"2023-09-22T10:33:05.709993Z"}],"sequence":20}"#.into(),
            symbol: "BTC/USD",
            client_order_id: "k1",
            trade_id: "TZX2WP-XSEOP-FP7WYR",
            side: Side::Sell,
            price: "26599.9",
            qty: "0.005",
            fee: "0.3458",
            fee_asset: "USD",
            state: OrderState::Filled,
        },
    }
}

/// Bybit sends orders on their own topic (a recorded cancel).
fn bybit_order_frame() -> String {
    data("bybit/ws_account_order.json")
}

fn check_fill(f: &FillEvent, s: &Sample) {
    assert_eq!(f.symbol.as_str(), s.symbol);
    assert_eq!(f.client_order_id, s.client_order_id);
    assert_eq!(f.trade_id, s.trade_id);
    assert_eq!(f.side, s.side);
    assert_eq!(f.price, fx(s.price));
    assert_eq!(f.qty, fx(s.qty));
    assert_eq!(f.fee, fx(s.fee));
    assert_eq!(f.fee_asset, s.fee_asset);
}

/// What the mock must have seen subscribed, in its naming.
fn expected_topics(venue: Venue) -> Vec<&'static str> {
    match venue {
        Venue::BinanceSpot => vec!["userDataStream"],
        Venue::BinanceUsdm => vec![
            "ORDER_TRADE_UPDATE",
            "ACCOUNT_UPDATE",
            "ALGO_UPDATE",
            "listenKeyExpired",
        ],
        Venue::Bybit => vec!["order", "execution", "position", "wallet"],
        Venue::Okx => vec!["orders", "positions", "account"],
        Venue::Kraken => vec!["executions", "balances"],
    }
}

/// Pushes the venue's fill frame until a live connection takes it (the client may report
/// `NeedsReconcile` a moment before the mock has marked the subscription).
async fn push(mock: &MockPrivateVenue, frame: &str) {
    let until = Instant::now() + PATIENCE;
    while mock.push(frame) == 0 {
        assert!(Instant::now() < until, "no live connection took {frame}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios, run for each venue

async fn authenticates_subscribes_and_delivers_fills(venue: Venue) {
    let mock = mock(venue);
    let mut run = Run::start(config(venue, &mock));
    run.live(&mock, 1).await;
    let auths = mock.auths();
    assert!(!auths.is_empty() && auths.iter().all(|a| a.ok), "{auths:?}");
    let conns = mock.connections();
    assert_eq!(conns.len(), 1, "{conns:?}");
    assert_eq!(conns[0].topics, expected_topics(venue));
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    // Connected, Authenticated, Subscribed, NeedsReconcile { since: None }, in that order.
    let kinds: Vec<&str> = connection(&run.seen)
        .iter()
        .map(|c| match c {
            Ev::Connected { .. } => "connected",
            Ev::Authenticated { .. } => "authenticated",
            Ev::Subscribed {
                resubscribed: false,
                ..
            } => "subscribed",
            Ev::NeedsReconcile {
                since_unix_ms: None,
                ..
            } => "reconcile",
            _ => "other",
        })
        .filter(|k| *k != "other")
        .collect();
    assert_eq!(
        kinds,
        ["connected", "authenticated", "subscribed", "reconcile"]
    );

    let s = sample(venue);
    push(&mock, &s.frame).await;
    if venue == Venue::Bybit {
        push(&mock, &bybit_order_frame()).await;
    }
    run.until(&mock, "a fill and an order", |seen, _| {
        !fills(seen).is_empty() && !orders(seen).is_empty()
    })
    .await;
    check_fill(fills(&run.seen)[0], &s);
    let order = orders(&run.seen)[0];
    if venue == Venue::Bybit {
        assert_eq!(order.client_order_id, "client-1");
        assert_eq!(order.state, OrderState::Canceled);
    } else {
        assert_eq!(order.client_order_id, s.client_order_id);
        assert_eq!(order.state, s.state);
    }
    assert!(run.handle.stats().events >= 2);
    run.handle.shutdown().await;
}

async fn wrong_secret_is_refused_without_leaking_it(venue: Venue) {
    let mock = mock(venue);
    // Binance USD-M and Kraken authenticate through the token source: a wrong key fails there.
    let key = match venue {
        Venue::BinanceUsdm | Venue::Kraken => "WrongKeyAbcdefghijklmnop",
        _ => KEY,
    };
    let config = config_with(venue, &mock, key, WRONG_SECRET);
    let shown = format!("{config:?}");
    let mut run = Run::start(config);
    run.until(&mock, "the task to stop", |seen, _| stopped(seen).is_some())
        .await;
    let Some(StopReason::AuthRejected { failures, last }) = stopped(&run.seen) else {
        panic!("stopped for another reason: {:#?}", run.seen);
    };
    assert_eq!(failures, 3);
    let code = match venue {
        Venue::BinanceSpot => "-1022",
        Venue::BinanceUsdm => "-2015",
        Venue::Bybit => "Invalid sign",
        Venue::Okx => "60007",
        Venue::Kraken => "EAPI:Invalid key",
    };
    assert!(last.contains(code), "{last:?} does not name {code}");
    let consecutive: Vec<u32> = connection(&run.seen)
        .iter()
        .filter_map(|c| match c {
            Ev::AuthFailed {
                consecutive,
                max: 3,
                ..
            } => Some(*consecutive),
            _ => None,
        })
        .collect();
    assert_eq!(consecutive, [1, 2, 3]);
    let d = disconnects(&run.seen);
    assert!(d.iter().all(|(why, _)| why.is_rejection()), "{d:?}");
    assert_eq!(d.last().map(|(_, next)| *next), Some(None));
    assert!(reconciles(&run.seen).is_empty());
    match venue {
        Venue::BinanceUsdm | Venue::Kraken => assert!(mock.connections().is_empty()),
        _ => {
            let auths = mock.auths();
            assert_eq!(auths.len(), 3, "{auths:?}");
            assert!(auths.iter().all(|a| !a.ok));
        }
    }
    let everything = format!("{:?}{shown}{:?}", run.seen, run.handle.stats());
    for secret in [WRONG_SECRET, SECRET, PASSPHRASE] {
        assert!(
            !everything.contains(secret),
            "a secret leaked: {everything}"
        );
    }
    assert!(run.handle.is_finished() || wait_finished(&run.handle).await);
}

async fn wait_finished(handle: &PrivateHandle) -> bool {
    let until = Instant::now() + PATIENCE;
    while !handle.is_finished() {
        if Instant::now() > until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

async fn a_refused_authentication_is_retried_and_recovers(venue: Venue) {
    let mock = mock(venue);
    mock.reject_next_auth(1);
    let mut run = Run::start(config(venue, &mock));
    run.live(&mock, 1).await;
    let failed = connection(&run.seen)
        .into_iter()
        .filter(|c| matches!(c, Ev::AuthFailed { consecutive: 1, .. }))
        .count();
    assert_eq!(failed, 1, "{:#?}", run.seen);
    let auths = mock.auths();
    assert!(
        !auths[0].ok && auths.last().is_some_and(|a| a.ok),
        "{auths:?}"
    );
    let d = disconnects(&run.seen);
    assert!(matches!(d[0], (Why::AuthRejected(_), Some(_))), "{d:?}");
    run.handle.shutdown().await;
}

async fn drop_reconnects_reauthenticates_and_asks_for_reconcile(venue: Venue) {
    let mock = mock(venue);
    let mut run = Run::start(config(venue, &mock));
    run.live(&mock, 1).await;
    let s = sample(venue);
    push(&mock, &s.frame).await;
    run.until(&mock, "the first fill", |seen, _| fills(seen).len() == 1)
        .await;

    mock.inject(PrivateFault::Drop);
    run.until(&mock, "a second live connection", |seen, log| {
        reconciles(seen).len() == 2 && log.iter().filter(|c| c.is_live()).count() == 1
    })
    .await;
    let since = reconciles(&run.seen);
    assert_eq!(since[0], None);
    assert!(since[1].is_some(), "a reconnect says since when: {since:?}");
    let resubscribed = connection(&run.seen).iter().any(|c| {
        matches!(
            c,
            Ev::Subscribed {
                resubscribed: true,
                ..
            }
        )
    });
    assert!(resubscribed);
    let d = disconnects(&run.seen);
    assert!(
        matches!(
            d[0],
            (
                Why::Socket(DisconnectReason::Closed { .. } | DisconnectReason::Error(_)),
                Some(_)
            )
        ),
        "{d:?}"
    );
    let conns = mock.connections();
    assert!(conns.len() >= 2);
    assert!(conns.last().is_some_and(|c| c.authenticated));
    if venue == Venue::Kraken {
        assert_eq!(mock.tokens().len(), 2, "a fresh token for every connection");
    }

    push(&mock, &s.frame).await;
    run.until(&mock, "a fill after the reconnect", |seen, _| {
        fills(seen).len() == 2
    })
    .await;
    check_fill(fills(&run.seen)[1], &s);
    run.handle.shutdown().await;
}

async fn a_stalled_stream_is_replaced(venue: Venue) {
    let mock = mock(venue);
    let mut config = config(venue, &mock);
    config.timing.ping_every = Duration::from_millis(100);
    config.timing.pong_timeout = Duration::from_millis(400);
    config.timing.stale_after = Duration::from_millis(600);
    let mut run = Run::start(config);
    run.live(&mock, 1).await;
    mock.inject(PrivateFault::Stall);
    run.until(&mock, "a replacement after the stall", |seen, _| {
        reconciles(seen).len() >= 2
    })
    .await;
    let d = disconnects(&run.seen);
    assert!(
        matches!(
            d[0].0,
            Why::Socket(DisconnectReason::Stale { .. } | DisconnectReason::PongTimeout { .. })
        ),
        "{d:?}"
    );
    push(&mock, &sample(venue).frame).await;
    run.until(&mock, "a fill after the stall", |seen, _| {
        !fills(seen).is_empty()
    })
    .await;
    run.handle.shutdown().await;
}

macro_rules! per_venue {
    ($name:ident, $scenario:ident, [$($venue:ident => $test:ident),*]) => {
        mod $name {
            use super::*;
            $(
                #[tokio::test]
                async fn $test() {
                    $scenario(Venue::$venue).await;
                }
            )*
        }
    };
    ($name:ident, $scenario:ident) => {
        per_venue!($name, $scenario, [
            BinanceSpot => binance_spot,
            BinanceUsdm => binance_usdm,
            Bybit => bybit,
            Okx => okx,
            Kraken => kraken
        ]);
    };
}

per_venue!(authenticates, authenticates_subscribes_and_delivers_fills);
per_venue!(wrong_secret, wrong_secret_is_refused_without_leaking_it);
// Binance USD-M has no authentication on the socket: the listen key is checked at the handshake.
per_venue!(refused_then_recovers, a_refused_authentication_is_retried_and_recovers, [
    BinanceSpot => binance_spot,
    Bybit => bybit,
    Okx => okx,
    Kraken => kraken
]);
per_venue!(
    drop_and_reconcile,
    drop_reconnects_reauthenticates_and_asks_for_reconcile
);
per_venue!(stall, a_stalled_stream_is_replaced);

// ---------------------------------------------------------------------------------------------
// Venue specifics

#[tokio::test]
async fn usdm_listen_key_expiry_fetches_a_new_key_and_reconnects() {
    let venue = Venue::BinanceUsdm;
    let mock = mock(venue);
    let mut run = Run::start(config(venue, &mock));
    run.live(&mock, 1).await;
    mock.inject(PrivateFault::ExpireListenKey);
    run.until(&mock, "a connection on a new listen key", |seen, log| {
        reconciles(seen).len() == 2 && log.iter().any(|c| c.is_live())
    })
    .await;
    let d = disconnects(&run.seen);
    assert_eq!(
        d[0],
        (
            Why::SessionExpired("listenKeyExpired".into()),
            Some(Duration::ZERO)
        )
    );
    let keys = mock.listen_keys();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let conns = mock.connections();
    assert_eq!(conns[0].listen_key(), Some(keys[0].as_str()));
    assert_eq!(
        conns.last().and_then(|c| c.listen_key()),
        Some(keys[1].as_str())
    );
    // Listen keys never show: the URL in `Connected` is masked.
    let everything = format!("{:?}", run.seen);
    assert!(
        keys.iter().all(|k| !everything.contains(k.as_str())),
        "{everything}"
    );

    let s = sample(venue);
    push(&mock, &s.frame).await;
    run.until(&mock, "a fill on the new key", |seen, _| {
        !fills(seen).is_empty()
    })
    .await;
    check_fill(fills(&run.seen)[0], &s);
    run.handle.shutdown().await;
}

#[tokio::test]
async fn usdm_listen_key_is_kept_alive_while_connected() {
    let venue = Venue::BinanceUsdm;
    let mock = mock(venue);
    let mut config = config(venue, &mock);
    config.listen_key_keepalive_every = Duration::from_millis(100);
    let mut run = Run::start(config);
    run.until(&mock, "two keep-alives", |seen, _| {
        connection(seen)
            .iter()
            .filter(|c| matches!(c, Ev::ListenKeyExtended))
            .count()
            >= 2
    })
    .await;
    let keys = mock.listen_keys();
    let extended = mock.keepalives();
    assert!(extended.len() >= 2 && extended.iter().all(|k| *k == keys[0]));
    assert!(run.handle.stats().listen_key_keepalives >= 2);
    run.handle.shutdown().await;
}

#[tokio::test]
async fn usdm_refused_keepalive_gets_a_new_listen_key() {
    let venue = Venue::BinanceUsdm;
    let mock = mock(venue);
    let mut config = config(venue, &mock);
    config.listen_key_keepalive_every = Duration::from_millis(200);
    let mut run = Run::start(config);
    run.live(&mock, 1).await;
    // The key is revoked without the stream saying so: only the keep-alive finds out.
    mock.inject(PrivateFault::RevokeListenKey);
    run.until(&mock, "a reconnect on a new key", |seen, log| {
        reconciles(seen).len() >= 2 && log.iter().any(|c| c.is_live())
    })
    .await;
    let d = disconnects(&run.seen);
    assert!(
        matches!(&d[0], (Why::SessionExpired(why), Some(_)) if why.contains("-1125")),
        "{d:?}"
    );
    let keys = mock.listen_keys();
    assert_eq!(keys.len(), 2);
    let conns = mock.connections();
    assert_eq!(
        conns.last().and_then(|c| c.listen_key()),
        Some(keys[1].as_str())
    );
    run.handle.shutdown().await;
}

#[tokio::test]
async fn binance_spot_terminated_stream_is_subscribed_again() {
    let venue = Venue::BinanceSpot;
    let mock = mock(venue);
    let mut run = Run::start(config(venue, &mock));
    run.live(&mock, 1).await;
    mock.inject(PrivateFault::TerminateStream);
    run.until(&mock, "a new subscription", |seen, _| {
        reconciles(seen).len() == 2
    })
    .await;
    let d = disconnects(&run.seen);
    assert_eq!(
        d[0],
        (
            Why::SessionExpired("eventStreamTerminated".into()),
            Some(Duration::ZERO)
        )
    );
    assert_eq!(mock.auths().iter().filter(|a| a.ok).count(), 2);
    push(&mock, &sample(venue).frame).await;
    run.until(&mock, "a fill after resubscribing", |seen, _| {
        !fills(seen).is_empty()
    })
    .await;
    run.handle.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_the_connection_and_reports_it() {
    let venue = Venue::Bybit;
    let mock = mock(venue);
    let mut run = Run::start(config(venue, &mock));
    run.live(&mock, 1).await;
    let Run {
        handle,
        mut rx,
        mut seen,
    } = run;
    handle.shutdown().await;
    while let Ok(ev) = rx.try_recv() {
        seen.push(ev);
    }
    assert_eq!(stopped(&seen), Some(StopReason::Shutdown));
    let d = disconnects(&seen);
    assert_eq!(
        d.last(),
        Some(&(Why::Socket(DisconnectReason::Shutdown), None))
    );
}

#[tokio::test]
async fn okx_needs_a_passphrase_and_usdm_a_token_source() {
    let okx = PrivateConfig::new(Venue::Okx, Credentials::new(KEY, SECRET));
    assert!(spawn(okx).is_err());
    let usdm = PrivateConfig::new(Venue::BinanceUsdm, Credentials::new(KEY, SECRET));
    assert!(spawn(usdm).is_err());
}

/// Bybit acts on its disconnect-cancel-all window only for connections subscribed to the
/// category's `dcp` topic (Bybit v5 docs, "Disconnection Protection"): asked for, the client
/// subscribes it with the account topics.
#[tokio::test]
async fn bybit_subscribes_the_dcp_topic_when_asked() {
    let venue = Venue::Bybit;
    let mock = mock(venue);
    let mut cfg = config(venue, &mock);
    cfg.bybit_dcp = Some(keel_adapters::bybit::Category::Linear);
    let mut run = Run::start(cfg);
    run.live(&mock, 1).await;
    let conns = mock.connections();
    let mut expected = expected_topics(venue);
    expected.push("dcp.future");
    assert_eq!(conns[0].topics, expected);
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}
