//! Signed order round trips through `RestClient` against the loopback mock exchange: Binance
//! spot and USD-M placement, query, cancel, open orders, balances, positions, conditional
//! orders on the USD-M Algo Order API and the dead-man switch. The mock verifies every
//! signature with its own HMAC code, so a signing bug fails these tests.

use std::time::Duration;

use keel_adapters::client::trading::Placement;
use keel_adapters::client::{ClientConfig, RestClient};
use keel_adapters::credentials::Credentials;
use keel_adapters::mock::{MOCK_API_KEY, MOCK_SECRET, MockConfig, MockVenue, TradingConfig};
use keel_adapters::model::{
    OrderSpec, OrderSpecKind, OrderState, OrderType, TimeInForce, Venue, VenueError,
};
use keel_engine::event::{Liquidity, Side};
use keel_engine::fixed::Fixed;
use keel_engine::symbol::Symbol;

fn fx(text: &str) -> Fixed {
    Fixed::parse_exact(text).expect("decimal")
}

fn btc() -> Symbol {
    Symbol::new("BTCUSDT").expect("symbol")
}

/// A mock exchange with BTCUSDT at 50,000 and the default account.
fn mock(venue: Venue) -> MockVenue {
    let mut config = MockConfig::new(venue, "BTCUSDT", 60_000, Vec::new());
    config.trading = TradingConfig::new(venue == Venue::BinanceSpot, "BTCUSDT", fx("50000"));
    MockVenue::start(config).expect("mock starts")
}

fn client(m: &MockVenue, venue: Venue) -> RestClient {
    let mut config =
        ClientConfig::new(venue).with_credentials(Credentials::new(MOCK_API_KEY, MOCK_SECRET));
    config.base_url = m.url();
    config.timeout = Duration::from_millis(1000);
    config.retry.base_delay = Duration::from_millis(10);
    config.retry.max_delay = Duration::from_millis(40);
    RestClient::new(config).expect("client")
}

fn spec(id: &str, side: Side, kind: OrderSpecKind, qty: &str) -> OrderSpec {
    OrderSpec {
        symbol: btc(),
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

#[tokio::test]
async fn spot_market_order_is_signed_filled_at_the_mock_price_and_charged_the_fee() {
    let m = mock(Venue::BinanceSpot);
    let c = client(&m, Venue::BinanceSpot);
    let ack = c
        .place_order(&spec("1001", Side::Buy, OrderSpecKind::Market, "0.01"))
        .await
        .expect("placed");
    assert_eq!(ack.placement, Placement::Sent);
    assert_eq!(ack.order.state, OrderState::Filled);
    assert_eq!(ack.order.client_order_id, "1001");
    assert_eq!(ack.order.avg_price, fx("50000"));
    assert_eq!(ack.fills.len(), 1);
    let fill = &ack.fills[0];
    assert_eq!((fill.price, fill.qty), (fx("50000"), fx("0.01")));
    // Spot takes the 0.1 % fee from what the buyer receives.
    assert_eq!((fill.fee, fill.fee_asset.as_str()), (fx("0.00001"), "BTC"));

    let post = &m.requests_to("POST", "/api/v3/order")[0];
    assert_eq!(post.header("x-mbx-apikey"), Some(MOCK_API_KEY));
    assert!(post.param("timestamp").is_some() && post.param("signature").is_some());
    assert_eq!(post.param("recvWindow"), Some("5000"));

    let balances = c.balances().await.expect("account");
    let free = |asset: &str| {
        balances
            .iter()
            .find(|b| b.asset == asset)
            .map(|b| b.free)
            .expect(asset)
    };
    assert_eq!(free("USDT"), fx("99500"));
    assert_eq!(free("BTC"), fx("10.00999"));

    let report = c.query_order(&btc(), "1001").await.expect("query");
    let report = report.expect("the venue knows the order");
    assert_eq!(
        (report.state, report.filled_qty),
        (OrderState::Filled, fx("0.01"))
    );
    assert_eq!(c.query_order(&btc(), "9999").await.expect("query"), None);
}

#[tokio::test]
async fn spot_limit_rests_then_fills_as_maker_when_the_price_comes_to_it() {
    let m = mock(Venue::BinanceSpot);
    let c = client(&m, Venue::BinanceSpot);
    let ack = c
        .place_order(&spec("2001", Side::Buy, limit("49000"), "0.1"))
        .await
        .expect("placed");
    assert_eq!(ack.order.state, OrderState::New);
    assert!(ack.fills.is_empty());
    assert_eq!(m.balance("USDT").locked, fx("4900"));
    let open = c.open_orders(Some(&btc())).await.expect("open orders");
    assert_eq!(open.len(), 1);
    assert_eq!(
        (open[0].price, open[0].order_type),
        (fx("49000"), OrderType::Limit)
    );

    m.set_price("BTCUSDT", fx("49500"));
    assert_eq!(m.fills().len(), 0, "not there yet");
    m.set_price("BTCUSDT", fx("48900"));
    let fills = m.fills();
    assert_eq!(fills.len(), 1);
    let f = &fills[0];
    assert_eq!(
        (f.last_price, f.last_qty, f.is_maker),
        (fx("49000"), fx("0.1"), true)
    );
    assert_eq!(
        (f.client_order_id.as_str(), f.order_status.as_str()),
        ("2001", "FILLED")
    );
    assert_eq!(
        (f.commission, f.commission_asset.as_str()),
        (fx("0.0001"), "BTC")
    );

    let report = c
        .query_order(&btc(), "2001")
        .await
        .expect("query")
        .expect("known");
    assert_eq!(report.state, OrderState::Filled);
    assert!(c.open_orders(None).await.expect("open").is_empty());
    assert_eq!(
        m.balance("USDT"),
        keel_adapters::mock::MockBalance {
            free: fx("95100"),
            locked: Fixed::ZERO
        }
    );
}

#[tokio::test]
async fn spot_cancel_releases_the_order_and_a_second_cancel_is_an_unknown_order() {
    let m = mock(Venue::BinanceSpot);
    let c = client(&m, Venue::BinanceSpot);
    c.place_order(&spec("3001", Side::Sell, limit("51000"), "0.5"))
        .await
        .expect("placed");
    assert_eq!(m.balance("BTC").locked, fx("0.5"));
    let canceled = c.cancel_order(&btc(), "3001").await.expect("canceled");
    let canceled = canceled.expect("spot answers with the order");
    assert_eq!(
        (canceled.state, canceled.client_order_id.as_str()),
        (OrderState::Canceled, "3001")
    );
    assert_eq!(m.balance("BTC").locked, Fixed::ZERO);
    let again = c
        .cancel_order(&btc(), "3001")
        .await
        .expect_err("already canceled");
    assert!(
        matches!(again.error, VenueError::OrderNotFound(_)),
        "{again}"
    );
    assert_eq!(again.status, Some(400));
    let report = c
        .query_order(&btc(), "3001")
        .await
        .expect("query")
        .expect("known");
    assert_eq!(report.state, OrderState::Canceled);
}

#[tokio::test]
async fn spot_cancel_all_cancels_every_open_order_and_is_quiet_when_none_are_left() {
    let m = mock(Venue::BinanceSpot);
    let c = client(&m, Venue::BinanceSpot);
    for (id, price) in [("4001", "48000"), ("4002", "47000")] {
        c.place_order(&spec(id, Side::Buy, limit(price), "0.01"))
            .await
            .expect("placed");
    }
    let canceled = c.cancel_all(&btc()).await.expect("cancel all");
    let mut ids: Vec<&str> = canceled
        .iter()
        .map(|o| o.client_order_id.as_str())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["4001", "4002"]);
    assert!(canceled.iter().all(|o| o.state == OrderState::Canceled));
    assert!(m.open_orders().is_empty());
    assert!(c.cancel_all(&btc()).await.expect("nothing open").is_empty());
}

#[tokio::test]
async fn spot_stop_loss_waits_for_its_trigger_and_post_only_never_takes() {
    let m = mock(Venue::BinanceSpot);
    let c = client(&m, Venue::BinanceSpot);
    let stop = OrderSpecKind::StopMarket {
        trigger: fx("49000"),
    };
    let ack = c
        .place_order(&spec("5001", Side::Sell, stop, "0.2"))
        .await
        .expect("placed");
    assert_eq!(ack.order.state, OrderState::New);
    assert_eq!(ack.order.order_type, OrderType::StopMarket);
    m.set_price("BTCUSDT", fx("48500"));
    let report = c
        .query_order(&btc(), "5001")
        .await
        .expect("query")
        .expect("known");
    assert_eq!(
        (report.state, report.avg_price),
        (OrderState::Filled, fx("48500"))
    );

    let mut post_only = spec("5002", Side::Buy, limit("49000"), "0.01");
    post_only.time_in_force = TimeInForce::PostOnly;
    let e = c.place_order(&post_only).await.expect_err("would take");
    assert_eq!(
        e.error,
        VenueError::Other {
            code: "-2010".into(),
            message: "Order would immediately match and take.".into()
        }
    );
}

#[tokio::test]
async fn usdm_market_then_reduce_only_stop_on_the_algo_api_closes_the_position() {
    let m = mock(Venue::BinanceUsdm);
    let c = client(&m, Venue::BinanceUsdm);
    let ack = c
        .place_order(&spec("6001", Side::Buy, OrderSpecKind::Market, "0.2"))
        .await
        .expect("placed");
    assert_eq!(
        (ack.order.state, ack.order.avg_price),
        (OrderState::Filled, fx("50000"))
    );
    let positions = c.positions().await.expect("positions");
    assert_eq!(positions.len(), 1);
    assert_eq!(
        (positions[0].qty, positions[0].entry_price),
        (fx("0.2"), fx("50000"))
    );

    let mut stop = spec(
        "6002",
        Side::Sell,
        OrderSpecKind::StopMarket {
            trigger: fx("49000"),
        },
        "0.2",
    );
    stop.reduce_only = true;
    let ack = c.place_order(&stop).await.expect("placed");
    assert_eq!(ack.order.state, OrderState::Untriggered);
    let algo_posts = m.requests_to("POST", "/fapi/v1/algoOrder");
    assert_eq!(
        algo_posts.len(),
        1,
        "conditional orders go to the Algo Order API"
    );
    assert_eq!(algo_posts[0].param("algoType"), Some("CONDITIONAL"));
    assert_eq!(algo_posts[0].param("clientAlgoId"), Some("6002"));
    let open = c.open_orders(Some(&btc())).await.expect("open orders");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].client_order_id, "6002");
    let report = c
        .query_order(&btc(), "6002")
        .await
        .expect("query")
        .expect("known");
    assert_eq!(report.state, OrderState::Untriggered);

    m.set_price("BTCUSDT", fx("48000"));
    let report = c
        .query_order(&btc(), "6002")
        .await
        .expect("query")
        .expect("known");
    assert_eq!(
        (report.state, report.filled_qty),
        (OrderState::Filled, fx("0.2"))
    );
    assert!(c.positions().await.expect("positions").is_empty(), "flat");
    // Loss of 0.2 × 2000, fees 0.05 % of 10,000 and of 9,600.
    let usdt = c.balances().await.expect("balances");
    let usdt = usdt.iter().find(|b| b.asset == "USDT").expect("USDT");
    assert_eq!(usdt.free, fx("99590.2"));
    let fills = m.fills();
    assert_eq!(fills.len(), 2);
    assert_eq!(fills[1].realized_pnl, fx("-400"));
    assert!(!fills[1].is_maker);
}

#[tokio::test]
async fn usdm_cancel_reaches_conditional_orders_and_cancel_all_clears_both_kinds() {
    let m = mock(Venue::BinanceUsdm);
    let c = client(&m, Venue::BinanceUsdm);
    let tp = OrderSpecKind::TakeProfitMarket {
        trigger: fx("55000"),
    };
    let ack = c
        .place_order(&spec("7001", Side::Sell, tp, "0.01"))
        .await
        .expect("placed");
    assert_eq!(ack.order.state, OrderState::Untriggered);
    // Not a matching-engine order: the client falls through to the Algo Service.
    assert_eq!(
        c.cancel_order(&btc(), "7001").await.expect("canceled"),
        None
    );
    let algo_cancels = m.requests_to("DELETE", "/fapi/v1/algoOrder");
    assert_eq!(algo_cancels.len(), 1);
    assert_eq!(algo_cancels[0].param("clientalgoid"), Some("7001"));
    let report = c
        .query_order(&btc(), "7001")
        .await
        .expect("query")
        .expect("known");
    assert_eq!(report.state, OrderState::Canceled);

    c.place_order(&spec("7002", Side::Buy, limit("48000"), "0.01"))
        .await
        .expect("placed");
    let stop = OrderSpecKind::StopMarket {
        trigger: fx("52000"),
    };
    c.place_order(&spec("7003", Side::Buy, stop, "0.01"))
        .await
        .expect("placed");
    assert_eq!(c.open_orders(None).await.expect("open").len(), 2);
    c.cancel_all(&btc()).await.expect("cancel all");
    assert!(m.open_orders().is_empty());
    assert_eq!(m.requests_to("DELETE", "/fapi/v1/allOpenOrders").len(), 1);
    assert_eq!(m.requests_to("DELETE", "/fapi/v1/algoOpenOrders").len(), 1);
}

#[tokio::test]
async fn usdm_dead_man_switch_cancels_open_orders_unless_renewed_or_disarmed() {
    let m = mock(Venue::BinanceUsdm);
    let c = client(&m, Venue::BinanceUsdm);
    c.place_order(&spec("8001", Side::Buy, limit("48000"), "0.01"))
        .await
        .expect("placed");
    c.cancel_all_after(&btc(), Duration::from_millis(300))
        .await
        .expect("armed");
    let armed = m.requests_to("POST", "/fapi/v1/countdownCancelAll");
    assert_eq!(armed[0].param("countdownTime"), Some("300"));
    assert_eq!(c.open_orders(None).await.expect("open").len(), 1);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(c.open_orders(None).await.expect("open").is_empty());
    let report = c
        .query_order(&btc(), "8001")
        .await
        .expect("query")
        .expect("known");
    assert_eq!(report.state, OrderState::Canceled);

    c.place_order(&spec("8002", Side::Buy, limit("48000"), "0.01"))
        .await
        .expect("placed");
    c.cancel_all_after(&btc(), Duration::from_millis(300))
        .await
        .expect("armed");
    c.cancel_all_after(&btc(), Duration::ZERO)
        .await
        .expect("disarmed");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(c.open_orders(None).await.expect("open").len(), 1);
}

#[tokio::test]
async fn spot_has_no_positions_or_dead_man_switch_and_says_so_without_sending() {
    let m = mock(Venue::BinanceSpot);
    let c = client(&m, Venue::BinanceSpot);
    let e = c.positions().await.expect_err("spot");
    assert!(e.to_string().contains("not positions"), "{e}");
    let e = c
        .cancel_all_after(&btc(), Duration::from_secs(10))
        .await
        .expect_err("spot");
    assert!(e.to_string().contains("no dead-man switch"), "{e}");
    assert!(m.requests().is_empty());
}

#[tokio::test]
async fn instruments_come_from_the_mock_exchange_info_filters() {
    let m = mock(Venue::BinanceUsdm);
    let c = client(&m, Venue::BinanceUsdm);
    let list = c.load_instruments().await.expect("exchangeInfo");
    assert_eq!(list.len(), 1);
    let i = c.instrument(&btc()).expect("kept");
    assert_eq!(
        (i.tick_size, i.lot_size, i.min_qty, i.min_notional),
        (fx("0.01"), fx("0.00001"), fx("0.00001"), fx("5"))
    );
    assert_eq!(
        (i.base.as_str(), i.quote.as_str(), i.trading),
        ("BTC", "USDT", true)
    );
    let _ = Liquidity::Maker;
}
