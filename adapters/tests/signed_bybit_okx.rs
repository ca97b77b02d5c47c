//! Bybit v5 and OKX v5 through the typed trading calls of `RestClient`, against the loopback
//! mock exchange speaking each venue's dialect: order round trips (market, resting limit filled
//! by a price move, cancel, cancel-all, open orders, balances, positions), authentication and
//! clock failures, lost placement answers, duplicate client ids and the dead-man switches. The
//! mock verifies every signature with its own HMAC code, so a signing bug in `crate::sign`
//! fails these tests.

use std::time::Duration;

use keel_adapters::bybit::Category;
use keel_adapters::client::trading::Placement;
use keel_adapters::client::{ClientConfig, RestClient};
use keel_adapters::credentials::Credentials;
use keel_adapters::mock::{
    Fault, MOCK_API_KEY, MOCK_PASSPHRASE, MOCK_SECRET, MockConfig, MockInstrument, MockVenue,
    TradingConfig,
};
use keel_adapters::model::{
    OrderSpec, OrderSpecKind, OrderState, OrderType, TimeInForce, Venue, VenueError,
};
use keel_engine::event::Side;
use keel_engine::fixed::Fixed;
use keel_engine::symbol::Symbol;

const WRONG_SECRET: &str = "wrong-secret-d41d8cd98f00b204e9800998ecf8427e";

fn fx(text: &str) -> Fixed {
    Fixed::parse_exact(text).expect("decimal")
}

fn sym(name: &str) -> Symbol {
    Symbol::new(name).expect("symbol")
}

/// A mock of `venue` trading `symbol` at 50,000, spot or margined, its clock `skew_ms` off.
fn mock(venue: Venue, symbol: &str, spot: bool, skew_ms: i64) -> MockVenue {
    let mut config = MockConfig::new(venue, symbol, 60_000, Vec::new());
    config.trading = TradingConfig::new(spot, symbol, fx("50000"));
    if venue == Venue::Okx {
        // OKX has no minimum notional.
        config.trading.instruments = vec![MockInstrument {
            min_notional: Fixed::ZERO,
            ..MockInstrument::new(symbol, fx("50000"))
        }];
    }
    config.clock_skew_ms = skew_ms;
    MockVenue::start(config).expect("mock starts")
}

fn config(m: &MockVenue, venue: Venue, secret: &str) -> ClientConfig {
    let mut credentials = Credentials::new(MOCK_API_KEY, secret);
    if venue == Venue::Okx {
        credentials = credentials.with_passphrase(MOCK_PASSPHRASE);
    }
    let mut config = ClientConfig::new(venue).with_credentials(credentials);
    config.base_url = m.url();
    config.timeout = Duration::from_millis(1000);
    config.retry.base_delay = Duration::from_millis(10);
    config.retry.max_delay = Duration::from_millis(40);
    config
}

fn bybit_client(m: &MockVenue, category: Category) -> RestClient {
    let mut config = config(m, Venue::Bybit, MOCK_SECRET);
    config.bybit_category = category;
    RestClient::new(config).expect("client")
}

fn okx_client(m: &MockVenue) -> RestClient {
    RestClient::new(config(m, Venue::Okx, MOCK_SECRET)).expect("client")
}

fn spec(symbol: &str, id: &str, side: Side, kind: OrderSpecKind, qty: &str) -> OrderSpec {
    OrderSpec {
        symbol: sym(symbol),
        client_order_id: id.into(),
        side,
        kind,
        qty: fx(qty),
        time_in_force: TimeInForce::Gtc,
        reduce_only: false,
    }
}

fn limit(price: &str) -> OrderSpecKind {
    OrderSpecKind::Limit { price: fx(price) }
}

fn paths(m: &MockVenue) -> Vec<String> {
    m.requests()
        .into_iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

const BTCUSDT: &str = "BTCUSDT";
const SWAP: &str = "BTC-USDT-SWAP";
const SPOT: &str = "BTC-USDT";
const BYBIT_CREATE: &str = "/v5/order/create";
const BYBIT_REALTIME: &str = "/v5/order/realtime";
const OKX_ORDER: &str = "/api/v5/trade/order";

// ---------------------------------------------------------------------------------------------
// Bybit round trips

#[tokio::test]
async fn bybit_linear_market_order_is_signed_filled_and_opens_a_position() {
    let m = mock(Venue::Bybit, BTCUSDT, false, 0);
    let c = bybit_client(&m, Category::Linear);
    let ack = c
        .place_order(&spec(
            BTCUSDT,
            "b1001",
            Side::Buy,
            OrderSpecKind::Market,
            "0.01",
        ))
        .await
        .expect("placed");
    assert_eq!(ack.placement, Placement::Sent);
    // Bybit acknowledges with ids only; the order is read back by its orderLinkId.
    assert_eq!(
        (ack.order.state, ack.order.filled_qty, ack.order.avg_price),
        (OrderState::Filled, fx("0.01"), fx("50000"))
    );
    assert_eq!(ack.order.client_order_id, "b1001");
    assert_eq!(ack.order.venue_order_id, m.orders()[0].order_id.to_string());

    let post = &m.requests_to("POST", BYBIT_CREATE)[0];
    assert_eq!(post.header("x-bapi-api-key"), Some(MOCK_API_KEY));
    assert_eq!(post.header("x-bapi-recv-window"), Some("5000"));
    let sign = post.header("x-bapi-sign").expect("signed");
    assert!(sign.len() == 64 && sign.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(
        post.body.contains(r#""category":"linear""#),
        "{}",
        post.body
    );
    let read_back = &m.requests_to("GET", BYBIT_REALTIME)[0];
    assert_eq!(read_back.param("orderLinkId"), Some("b1001"));

    let positions = c.positions().await.expect("positions");
    assert_eq!(positions.len(), 1);
    assert_eq!(
        (
            positions[0].symbol,
            positions[0].qty,
            positions[0].entry_price
        ),
        (sym(BTCUSDT), fx("0.01"), fx("50000"))
    );
    // 0.05 % taker fee on 500 USDT of notional; 50 USDT of initial margin at 10x is held.
    let balances = c.balances().await.expect("wallet");
    let usdt = balances.iter().find(|b| b.asset == "USDT").expect("USDT");
    assert_eq!((usdt.free, usdt.locked), (fx("99949.75"), fx("50")));
    assert_eq!(
        c.query_order(&sym(BTCUSDT), "nope").await.expect("query"),
        None
    );
}

#[tokio::test]
async fn bybit_spot_limit_rests_then_fills_as_maker_when_the_price_comes_to_it() {
    let m = mock(Venue::Bybit, BTCUSDT, true, 0);
    let c = bybit_client(&m, Category::Spot);
    let ack = c
        .place_order(&spec(BTCUSDT, "b2001", Side::Buy, limit("49000"), "0.1"))
        .await
        .expect("placed");
    assert_eq!(ack.order.state, OrderState::New);
    assert!(
        m.requests_to("POST", BYBIT_CREATE)[0]
            .body
            .contains(r#""category":"spot""#)
    );
    assert_eq!(m.balance("USDT").locked, fx("4900"));
    let open = c.open_orders(Some(&sym(BTCUSDT))).await.expect("open");
    assert_eq!(open.len(), 1);
    assert_eq!(
        (
            open[0].price,
            open[0].order_type,
            open[0].client_order_id.as_str()
        ),
        (fx("49000"), OrderType::Limit, "b2001")
    );

    m.set_price(BTCUSDT, fx("49500"));
    assert!(m.fills().is_empty(), "not there yet");
    m.set_price(BTCUSDT, fx("48900"));
    let fills = m.fills();
    assert_eq!(fills.len(), 1);
    assert_eq!(
        (fills[0].last_price, fills[0].is_maker),
        (fx("49000"), true)
    );

    let report = c.query_order(&sym(BTCUSDT), "b2001").await.expect("query");
    let report = report.expect("known");
    assert_eq!(
        (report.state, report.filled_qty, report.avg_price),
        (OrderState::Filled, fx("0.1"), fx("49000"))
    );
    assert!(c.open_orders(None).await.expect("open").is_empty());
    let balances = c.balances().await.expect("wallet");
    let free = |asset: &str| balances.iter().find(|b| b.asset == asset).map(|b| b.free);
    assert_eq!(free("USDT"), Some(fx("95100")));
    // The 0.1 % fee comes out of the BTC received.
    assert_eq!(free("BTC"), Some(fx("10.0999")));
}

#[tokio::test]
async fn bybit_cancel_cancel_all_and_a_second_cancel_is_an_unknown_order() {
    let m = mock(Venue::Bybit, BTCUSDT, false, 0);
    let c = bybit_client(&m, Category::Linear);
    for (id, price) in [("b3001", "49000"), ("b3002", "48000"), ("b3003", "47000")] {
        c.place_order(&spec(BTCUSDT, id, Side::Buy, limit(price), "0.01"))
            .await
            .expect("placed");
    }
    let stop = OrderSpecKind::StopMarket {
        trigger: fx("45000"),
    };
    let ack = c
        .place_order(&spec(BTCUSDT, "b3004", Side::Sell, stop, "0.01"))
        .await
        .expect("conditional placed");
    assert_eq!(
        (
            ack.order.state,
            ack.order.order_type,
            ack.order.trigger_price
        ),
        (OrderState::Untriggered, OrderType::StopMarket, fx("45000"))
    );
    assert_eq!(c.open_orders(None).await.expect("open").len(), 4);

    assert_eq!(
        c.cancel_order(&sym(BTCUSDT), "b3001")
            .await
            .expect("canceled"),
        None
    );
    let report = c.query_order(&sym(BTCUSDT), "b3001").await.expect("query");
    assert_eq!(report.map(|o| o.state), Some(OrderState::Canceled));
    let again = c
        .cancel_order(&sym(BTCUSDT), "b3001")
        .await
        .expect_err("already canceled");
    assert!(
        matches!(again.error, VenueError::OrderNotFound(_)),
        "{again}"
    );

    c.cancel_all(&sym(BTCUSDT)).await.expect("cancel all");
    assert!(c.open_orders(None).await.expect("open").is_empty());
    assert!(m.open_orders().is_empty());
    c.cancel_all(&sym(BTCUSDT))
        .await
        .expect("nothing left is fine");
}

#[tokio::test]
async fn bybit_spot_cancels_reach_conditional_orders_through_their_own_filter() {
    let m = mock(Venue::Bybit, BTCUSDT, true, 0);
    let c = bybit_client(&m, Category::Spot);
    let stop = OrderSpecKind::StopMarket {
        trigger: fx("45000"),
    };
    c.place_order(&spec(BTCUSDT, "b3101", Side::Sell, stop, "0.01"))
        .await
        .expect("placed");
    c.place_order(&spec(BTCUSDT, "b3102", Side::Sell, stop, "0.01"))
        .await
        .expect("placed");
    c.cancel_order(&sym(BTCUSDT), "b3101")
        .await
        .expect("canceled");
    let cancels = m.requests_to("POST", "/v5/order/cancel");
    assert_eq!(cancels.len(), 2, "plain orders first, then StopOrder");
    assert!(cancels[1].body.contains(r#""orderFilter":"StopOrder""#));
    c.cancel_all(&sym(BTCUSDT)).await.expect("cancel all");
    assert!(m.open_orders().is_empty());
}

#[tokio::test]
async fn bybit_spot_has_no_positions_and_says_so_without_sending() {
    let m = mock(Venue::Bybit, BTCUSDT, true, 0);
    let c = bybit_client(&m, Category::Spot);
    let e = c.positions().await.expect_err("spot");
    assert!(matches!(e.error, VenueError::Other { ref code, .. } if code == "unsupported"));
    assert!(m.requests().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Bybit failures

#[tokio::test]
async fn bybit_wrong_secret_is_refused_with_10004_as_auth_failure_without_the_secret() {
    let m = mock(Venue::Bybit, BTCUSDT, false, 0);
    let config = config(&m, Venue::Bybit, WRONG_SECRET);
    let c = RestClient::new(config).expect("client");
    let e = c
        .place_order(&spec(
            BTCUSDT,
            "b4001",
            Side::Buy,
            OrderSpecKind::Market,
            "0.01",
        ))
        .await
        .expect_err("bad signature");
    assert!(matches!(e.error, VenueError::AuthFailure(ref msg) if msg.starts_with("Error sign")));
    assert_eq!(e.attempts, 1, "never retried");
    let shown = format!("{e} {e:?}");
    assert!(
        !shown.contains(WRONG_SECRET) && !shown.contains(MOCK_SECRET),
        "{shown}"
    );
    let sign = m.requests()[0]
        .header("x-bapi-sign")
        .expect("sent")
        .to_string();
    assert!(!shown.contains(&sign), "{shown}");
    assert_eq!(m.requests().len(), 1);
    assert!(m.orders().is_empty());
}

/// With a 1 s receive window and the venue clock `skew_ms` off, the first placement is refused
/// (10002); the client reads `/v5/market/time` once and the resend is accepted.
async fn bybit_resyncs_once_after_a_timestamp_refusal(skew_ms: i64) {
    let m = mock(Venue::Bybit, BTCUSDT, false, skew_ms);
    let mut config = config(&m, Venue::Bybit, MOCK_SECRET);
    config.recv_window_ms = 1000;
    let c = RestClient::new(config).expect("client");
    let ack = c
        .place_order(&spec(BTCUSDT, "b5001", Side::Buy, limit("49000"), "0.01"))
        .await
        .expect("placed after the re-sync");
    assert_eq!(ack.order.state, OrderState::New);
    assert_eq!(
        paths(&m),
        [
            "POST /v5/order/create",
            "GET /v5/market/time",
            "POST /v5/order/create",
            "GET /v5/order/realtime",
        ]
    );
    assert_eq!(m.orders().len(), 1);
    let offset = c.clock_offset_ms();
    assert!(
        (offset - skew_ms).abs() < 500,
        "offset {offset} for skew {skew_ms}"
    );
}

#[tokio::test]
async fn bybit_venue_clock_5_s_ahead_is_resynced_after_10002() {
    bybit_resyncs_once_after_a_timestamp_refusal(5000).await;
}

#[tokio::test]
async fn bybit_venue_clock_5_s_behind_is_resynced_after_10002() {
    bybit_resyncs_once_after_a_timestamp_refusal(-5000).await;
}

#[tokio::test]
async fn bybit_lost_answer_after_execution_is_found_by_order_link_id_and_not_resent() {
    let m = mock(Venue::Bybit, BTCUSDT, false, 0);
    let c = bybit_client(&m, Category::Linear);
    m.inject_on("POST", BYBIT_CREATE, 1, Fault::DropAfterExecution);
    let ack = c
        .place_order(&spec(
            BTCUSDT,
            "b6001",
            Side::Buy,
            OrderSpecKind::Market,
            "0.01",
        ))
        .await
        .expect("reconciled");
    assert_eq!(
        ack.placement,
        Placement::FoundAfterUnknownOutcome { sends: 1 }
    );
    assert_eq!(ack.order.state, OrderState::Filled);
    assert_eq!(m.requests_to("POST", BYBIT_CREATE).len(), 1, "never resent");
    let queries = m.requests_to("GET", BYBIT_REALTIME);
    assert_eq!(queries.len(), 1);
    assert_eq!(queries[0].param("orderLinkId"), Some("b6001"));
    assert_eq!((m.orders().len(), m.fills().len()), (1, 1));
}

#[tokio::test]
async fn bybit_lost_placement_the_venue_never_ran_is_resent_exactly_once() {
    let m = mock(Venue::Bybit, BTCUSDT, false, 0);
    let c = bybit_client(&m, Category::Linear);
    m.inject_on("POST", BYBIT_CREATE, 1, Fault::DropBeforeExecution);
    let ack = c
        .place_order(&spec(
            BTCUSDT,
            "b6002",
            Side::Buy,
            OrderSpecKind::Market,
            "0.01",
        ))
        .await
        .expect("resent");
    assert_eq!(ack.placement, Placement::Resent { sends: 2 });
    assert_eq!(ack.order.state, OrderState::Filled);
    assert_eq!(m.requests_to("POST", BYBIT_CREATE).len(), 2);
    // One lookup before the resend, one read-back after it.
    assert_eq!(m.requests_to("GET", BYBIT_REALTIME).len(), 2);
    assert_eq!(m.orders().len(), 1, "exactly one order");
}

#[tokio::test]
async fn bybit_duplicate_order_link_id_is_a_typed_error_even_after_the_first_is_done() {
    for (category, spot) in [(Category::Linear, false), (Category::Spot, true)] {
        let m = mock(Venue::Bybit, BTCUSDT, spot, 0);
        let c = bybit_client(&m, category);
        c.place_order(&spec(
            BTCUSDT,
            "b7001",
            Side::Buy,
            OrderSpecKind::Market,
            "0.01",
        ))
        .await
        .expect("first");
        let queries = m.requests_to("GET", BYBIT_REALTIME).len();
        let e = c
            .place_order(&spec(BTCUSDT, "b7001", Side::Buy, limit("48000"), "0.01"))
            .await
            .expect_err("duplicate");
        assert_eq!(e.error, VenueError::DuplicateClientOrderId, "{category:?}");
        assert_eq!(m.orders().len(), 1);
        let after = m.requests_to("GET", BYBIT_REALTIME).len();
        assert_eq!(after, queries, "no reconciliation");
    }
}

#[tokio::test]
async fn bybit_insufficient_balance_is_a_typed_error() {
    let m = mock(Venue::Bybit, BTCUSDT, false, 0);
    let c = bybit_client(&m, Category::Linear);
    // 100 BTC at 49,000 is 490,000 USDT of margin at 10x; the wallet has 100,000.
    let e = c
        .place_order(&spec(BTCUSDT, "b7101", Side::Buy, limit("49000"), "100"))
        .await
        .expect_err("too big");
    assert!(matches!(e.error, VenueError::InsufficientBalance(_)), "{e}");
    assert!(m.orders().is_empty());
}

#[tokio::test]
async fn bybit_disconnect_cancel_all_fires_and_a_zero_window_is_refused_unsent() {
    let m = mock(Venue::Bybit, BTCUSDT, false, 0);
    let c = bybit_client(&m, Category::Linear);
    c.place_order(&spec(BTCUSDT, "b8001", Side::Buy, limit("49000"), "0.01"))
        .await
        .expect("placed");
    c.cancel_all_after(&sym(BTCUSDT), Duration::from_millis(2500))
        .await
        .expect("armed");
    let dcp = &m.requests_to("POST", "/v5/order/disconnected-cancel-all")[0];
    // Rounded up to Bybit's whole seconds, for the product the category trades.
    assert!(dcp.body.contains(r#""timeWindow":3"#), "{}", dcp.body);
    assert!(
        dcp.body.contains(r#""product":"DERIVATIVES""#),
        "{}",
        dcp.body
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(m.open_orders().len(), 1, "not yet");
    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert!(m.open_orders().is_empty(), "the window passed");
    let report = c.query_order(&sym(BTCUSDT), "b8001").await.expect("query");
    assert_eq!(report.map(|o| o.state), Some(OrderState::Canceled));

    let sent = m.requests().len();
    let e = c
        .cancel_all_after(&sym(BTCUSDT), Duration::ZERO)
        .await
        .expect_err("Bybit cannot disarm it");
    assert!(matches!(e.error, VenueError::Other { ref code, .. } if code == "unsupported"));
    assert_eq!(m.requests().len(), sent, "nothing sent");
}

// ---------------------------------------------------------------------------------------------
// OKX round trips

#[tokio::test]
async fn okx_swap_market_order_is_signed_filled_and_opens_a_net_position() {
    let m = mock(Venue::Okx, SWAP, false, 0);
    let c = okx_client(&m);
    let ack = c
        .place_order(&spec(
            SWAP,
            "o1001",
            Side::Buy,
            OrderSpecKind::Market,
            "0.01",
        ))
        .await
        .expect("placed");
    assert_eq!(ack.placement, Placement::Sent);
    assert_eq!(
        (ack.order.state, ack.order.filled_qty, ack.order.avg_price),
        (OrderState::Filled, fx("0.01"), fx("50000"))
    );
    let post = &m.requests_to("POST", OKX_ORDER)[0];
    assert_eq!(post.header("ok-access-key"), Some(MOCK_API_KEY));
    assert_eq!(post.header("ok-access-passphrase"), Some(MOCK_PASSPHRASE));
    let stamp = post.header("ok-access-timestamp").expect("stamped");
    assert!(stamp.len() == 24 && stamp.ends_with('Z'), "{stamp}");
    assert!(post.body.contains(r#""tdMode":"cross""#), "{}", post.body);
    let read_back = &m.requests_to("GET", OKX_ORDER)[0];
    assert_eq!(read_back.param("clOrdId"), Some("o1001"));

    let positions = c.positions().await.expect("positions");
    assert_eq!(positions.len(), 1);
    assert_eq!(
        (
            positions[0].symbol,
            positions[0].qty,
            positions[0].entry_price
        ),
        (sym(SWAP), fx("0.01"), fx("50000"))
    );
    let balances = c.balances().await.expect("balance");
    let usdt = balances.iter().find(|b| b.asset == "USDT").expect("USDT");
    assert_eq!((usdt.free, usdt.locked), (fx("99949.75"), fx("50")));
}

#[tokio::test]
async fn okx_spot_limit_rests_then_fills_as_maker_when_the_price_comes_to_it() {
    let m = mock(Venue::Okx, SPOT, true, 0);
    let c = okx_client(&m);
    let ack = c
        .place_order(&spec(SPOT, "o2001", Side::Buy, limit("49000"), "0.1"))
        .await
        .expect("placed");
    assert_eq!(ack.order.state, OrderState::New);
    assert!(
        m.requests_to("POST", OKX_ORDER)[0]
            .body
            .contains(r#""tdMode":"cash""#)
    );
    let open = c.open_orders(Some(&sym(SPOT))).await.expect("open");
    assert_eq!(open.len(), 1);
    assert_eq!(
        (open[0].price, open[0].order_type),
        (fx("49000"), OrderType::Limit)
    );

    m.set_price(SPOT, fx("48900"));
    let report = c.query_order(&sym(SPOT), "o2001").await.expect("query");
    let report = report.expect("known");
    assert_eq!(
        (report.state, report.filled_qty, report.avg_price),
        (OrderState::Filled, fx("0.1"), fx("49000"))
    );
    assert!(c.open_orders(None).await.expect("open").is_empty());
    let balances = c.balances().await.expect("balance");
    let free = |asset: &str| balances.iter().find(|b| b.asset == asset).map(|b| b.free);
    assert_eq!(
        (free("USDT"), free("BTC")),
        (Some(fx("95100")), Some(fx("10.0999")))
    );
    // A market buy is sized in the base currency (`tgtCcy`), not in USDT.
    c.place_order(&spec(
        SPOT,
        "o2002",
        Side::Buy,
        OrderSpecKind::Market,
        "0.01",
    ))
    .await
    .expect("market");
    assert_eq!(m.fills()[1].last_qty, fx("0.01"));
}

#[tokio::test]
async fn okx_cancel_cancel_all_in_batches_and_a_second_cancel_is_an_unknown_order() {
    let m = mock(Venue::Okx, SWAP, false, 0);
    let c = okx_client(&m);
    for n in 0..22 {
        let price = format!("{}", 40000 + n * 10);
        c.place_order(&spec(
            SWAP,
            &format!("o3{n:03}"),
            Side::Buy,
            limit(&price),
            "0.01",
        ))
        .await
        .expect("placed");
    }
    let stop = OrderSpecKind::StopMarket {
        trigger: fx("39000"),
    };
    let ack = c
        .place_order(&spec(SWAP, "o3999", Side::Sell, stop, "0.01"))
        .await
        .expect("algo placed");
    assert_eq!(
        (ack.order.state, ack.order.trigger_price),
        (OrderState::Untriggered, fx("39000"))
    );
    assert_eq!(m.requests_to("POST", "/api/v5/trade/order-algo").len(), 1);
    assert_eq!(c.open_orders(None).await.expect("open").len(), 23);

    assert_eq!(
        c.cancel_order(&sym(SWAP), "o3000").await.expect("canceled"),
        None
    );
    let again = c
        .cancel_order(&sym(SWAP), "o3000")
        .await
        .expect_err("already canceled");
    assert!(
        matches!(again.error, VenueError::OrderNotFound(_)),
        "{again}"
    );
    let report = c.query_order(&sym(SWAP), "o3000").await.expect("query");
    assert_eq!(report.map(|o| o.state), Some(OrderState::Canceled));

    // The second cancel looked among algo orders too before saying so.
    assert_eq!(m.requests_to("POST", "/api/v5/trade/cancel-algos").len(), 1);

    let canceled = c.cancel_all(&sym(SWAP)).await.expect("cancel all");
    assert_eq!(canceled.len(), 22, "21 orders and the algo order");
    assert!(canceled.iter().all(|o| o.state == OrderState::Canceled));
    assert_eq!(
        m.requests_to("POST", "/api/v5/trade/cancel-batch-orders")
            .len(),
        2
    );
    assert_eq!(m.requests_to("POST", "/api/v5/trade/cancel-algos").len(), 2);
    assert!(m.open_orders().is_empty());
    assert!(
        c.cancel_all(&sym(SWAP))
            .await
            .expect("none left")
            .is_empty()
    );
}

#[tokio::test]
async fn okx_stop_algo_order_waits_for_its_trigger_then_closes_the_position() {
    let m = mock(Venue::Okx, SWAP, false, 0);
    let c = okx_client(&m);
    c.place_order(&spec(
        SWAP,
        "o4001",
        Side::Buy,
        OrderSpecKind::Market,
        "0.02",
    ))
    .await
    .expect("long");
    let mut stop = spec(
        SWAP,
        "o4002",
        Side::Sell,
        OrderSpecKind::StopMarket {
            trigger: fx("48000"),
        },
        "0.02",
    );
    stop.reduce_only = true;
    c.place_order(&stop).await.expect("stop");
    m.set_price(SWAP, fx("48500"));
    let waiting = c.query_order(&sym(SWAP), "o4002").await.expect("query");
    assert_eq!(waiting.map(|o| o.state), Some(OrderState::Untriggered));
    m.set_price(SWAP, fx("47900"));
    let fired = c.query_order(&sym(SWAP), "o4002").await.expect("query");
    assert_eq!(fired.map(|o| o.state), Some(OrderState::Triggered));
    assert!(c.positions().await.expect("positions").is_empty(), "flat");
}

// ---------------------------------------------------------------------------------------------
// OKX failures

#[tokio::test]
async fn okx_wrong_secret_is_refused_with_50113_as_auth_failure_without_the_secret() {
    let m = mock(Venue::Okx, SWAP, false, 0);
    let c = RestClient::new(config(&m, Venue::Okx, WRONG_SECRET)).expect("client");
    let e = c
        .place_order(&spec(
            SWAP,
            "o5001",
            Side::Buy,
            OrderSpecKind::Market,
            "0.01",
        ))
        .await
        .expect_err("bad signature");
    assert_eq!(
        e.error,
        VenueError::AuthFailure("50113 Invalid Sign".into())
    );
    assert_eq!((e.status, e.attempts), (Some(401), 1));
    let shown = format!("{e} {e:?}");
    assert!(
        !shown.contains(WRONG_SECRET) && !shown.contains(MOCK_SECRET),
        "{shown}"
    );
    assert!(!shown.contains(MOCK_PASSPHRASE), "{shown}");
    assert!(m.orders().is_empty());
}

#[tokio::test]
async fn okx_wrong_passphrase_is_refused_with_50105() {
    let m = mock(Venue::Okx, SWAP, false, 0);
    let mut config = config(&m, Venue::Okx, MOCK_SECRET);
    config.credentials =
        Some(Credentials::new(MOCK_API_KEY, MOCK_SECRET).with_passphrase("not-it"));
    let c = RestClient::new(config).expect("client");
    let e = c.balances().await.expect_err("wrong passphrase");
    assert!(
        matches!(e.error, VenueError::AuthFailure(ref m) if m.starts_with("50105")),
        "{e}"
    );
    assert!(!format!("{e:?}").contains("not-it"));
}

/// OKX allows 30 s of clock difference; a venue clock 40 s off is refused (50102), read once at
/// `/api/v5/public/time`, and the resend is accepted.
async fn okx_resyncs_once_after_a_timestamp_refusal(skew_ms: i64) {
    let m = mock(Venue::Okx, SWAP, false, skew_ms);
    let c = okx_client(&m);
    let ack = c
        .place_order(&spec(SWAP, "o6001", Side::Buy, limit("49000"), "0.01"))
        .await
        .expect("placed after the re-sync");
    assert_eq!(ack.order.state, OrderState::New);
    assert_eq!(
        paths(&m),
        [
            "POST /api/v5/trade/order",
            "GET /api/v5/public/time",
            "POST /api/v5/trade/order",
            "GET /api/v5/trade/order",
        ]
    );
    assert_eq!(m.orders().len(), 1);
}

#[tokio::test]
async fn okx_venue_clock_40_s_ahead_is_resynced_after_50102() {
    okx_resyncs_once_after_a_timestamp_refusal(40_000).await;
}

#[tokio::test]
async fn okx_venue_clock_40_s_behind_is_resynced_after_50102() {
    okx_resyncs_once_after_a_timestamp_refusal(-40_000).await;
}

#[tokio::test]
async fn okx_lost_answer_after_execution_is_found_by_cl_ord_id_and_not_resent() {
    let m = mock(Venue::Okx, SWAP, false, 0);
    let c = okx_client(&m);
    m.inject_on("POST", OKX_ORDER, 1, Fault::DropAfterExecution);
    let ack = c
        .place_order(&spec(
            SWAP,
            "o7001",
            Side::Buy,
            OrderSpecKind::Market,
            "0.01",
        ))
        .await
        .expect("reconciled");
    assert_eq!(
        ack.placement,
        Placement::FoundAfterUnknownOutcome { sends: 1 }
    );
    assert_eq!(ack.order.state, OrderState::Filled);
    assert_eq!(m.requests_to("POST", OKX_ORDER).len(), 1, "never resent");
    let queries = m.requests_to("GET", OKX_ORDER);
    assert_eq!(queries.len(), 1);
    assert_eq!(queries[0].param("clOrdId"), Some("o7001"));
    assert_eq!((m.orders().len(), m.fills().len()), (1, 1));
}

#[tokio::test]
async fn okx_lost_placement_the_venue_never_ran_is_resent_exactly_once() {
    let m = mock(Venue::Okx, SWAP, false, 0);
    let c = okx_client(&m);
    m.inject_on("POST", OKX_ORDER, 1, Fault::DropBeforeExecution);
    let ack = c
        .place_order(&spec(
            SWAP,
            "o7002",
            Side::Buy,
            OrderSpecKind::Market,
            "0.01",
        ))
        .await
        .expect("resent");
    assert_eq!(ack.placement, Placement::Resent { sends: 2 });
    assert_eq!(m.requests_to("POST", OKX_ORDER).len(), 2);
    assert_eq!(m.orders().len(), 1, "exactly one order");
}

#[tokio::test]
async fn okx_duplicate_cl_ord_id_of_a_live_order_is_a_typed_error() {
    let m = mock(Venue::Okx, SWAP, false, 0);
    let c = okx_client(&m);
    c.place_order(&spec(SWAP, "o8001", Side::Buy, limit("49000"), "0.01"))
        .await
        .expect("first");
    let queries = m.requests_to("GET", OKX_ORDER).len();
    let e = c
        .place_order(&spec(SWAP, "o8001", Side::Buy, limit("48000"), "0.01"))
        .await
        .expect_err("duplicate");
    assert_eq!(e.error, VenueError::DuplicateClientOrderId);
    assert_eq!(m.orders().len(), 1);
    assert_eq!(
        m.requests_to("GET", OKX_ORDER).len(),
        queries,
        "no reconciliation"
    );
}

#[tokio::test]
async fn okx_insufficient_balance_is_a_typed_error() {
    let m = mock(Venue::Okx, SPOT, true, 0);
    let c = okx_client(&m);
    let e = c
        .place_order(&spec(SPOT, "o8101", Side::Buy, limit("49000"), "3"))
        .await
        .expect_err("147,000 USDT of 100,000");
    assert!(matches!(e.error, VenueError::InsufficientBalance(ref m) if m.starts_with("51008")));
}

#[tokio::test]
async fn okx_cancel_all_after_fires_on_every_order_and_zero_disarms_it() {
    // Two accounts: one armed, one armed then disarmed; OKX's shortest countdown is 10 s.
    let armed = mock(Venue::Okx, SWAP, false, 0);
    let disarmed = mock(Venue::Okx, SWAP, false, 0);
    for m in [&armed, &disarmed] {
        let c = okx_client(m);
        c.place_order(&spec(SWAP, "o9001", Side::Buy, limit("49000"), "0.01"))
            .await
            .expect("placed");
        c.cancel_all_after(&sym(SWAP), Duration::from_secs(10))
            .await
            .expect("armed");
    }
    let c = okx_client(&disarmed);
    c.cancel_all_after(&sym(SWAP), Duration::ZERO)
        .await
        .expect("disarmed");
    let bodies: Vec<String> = disarmed
        .requests_to("POST", "/api/v5/trade/cancel-all-after")
        .into_iter()
        .map(|r| r.body)
        .collect();
    assert_eq!(bodies, [r#"{"timeOut":"10"}"#, r#"{"timeOut":"0"}"#]);
    let e = c
        .cancel_all_after(&sym(SWAP), Duration::from_secs(5))
        .await
        .expect_err("below OKX's 10 s");
    assert!(matches!(e.error, VenueError::Other { ref code, .. } if code == "invalid-request"));

    tokio::time::sleep(Duration::from_millis(9000)).await;
    assert_eq!(armed.open_orders().len(), 1, "not yet");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(armed.open_orders().is_empty(), "the countdown ran out");
    assert_eq!(disarmed.open_orders().len(), 1, "disarmed");
    let report = okx_client(&armed)
        .query_order(&sym(SWAP), "o9001")
        .await
        .expect("query");
    assert_eq!(report.map(|o| o.state), Some(OrderState::Canceled));
}
