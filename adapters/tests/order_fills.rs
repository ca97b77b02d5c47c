//! `RestClient::order_fills` on all five venues against the loopback mock exchange: an order
//! that fills in two parts (the mock fills a resting order at most `set_fill_qty_max` per price
//! move) read back after each part, a taker order, a resting order without fills, an unknown
//! client id, conditional orders whose fills belong to the order they became, and the checks
//! that turn a short or foreign trade list into an error. Every fill is compared field by field
//! with the mock exchange's own record of the execution (`MockVenue::fills`), never with what
//! the client reported elsewhere; the mock serves the trade endpoints from that record and
//! verifies every signature with its own code.

use std::time::Duration;

use keel_adapters::bybit::Category;
use keel_adapters::client::{ClientConfig, RestClient};
use keel_adapters::credentials::Credentials;
use keel_adapters::mock::{
    MOCK_API_KEY, MOCK_PASSPHRASE, MOCK_SECRET, MockApiKey, MockConfig, MockExecution,
    MockInstrument, MockVenue, RecordedRequest, TradingConfig,
};
use keel_adapters::model::{
    FillEvent, Instrument, OrderSpec, OrderSpecKind, TimeInForce, Venue, VenueError,
};
use keel_engine::event::{Liquidity, Side};
use keel_engine::fixed::Fixed;
use keel_engine::symbol::Symbol;

/// Kraken secrets are base64.
const KRAKEN_SECRET: &str = "a2VlbC1rcmFrZW4tbW9jay1zZWNyZXQtZm9yLXNpZ25lZC10ZXN0cw==";

fn fx(text: &str) -> Fixed {
    Fixed::parse_exact(text).expect("decimal")
}

fn sym(name: &str) -> Symbol {
    Symbol::new(name).expect("symbol")
}

/// A mock of `venue` trading `symbol` at 50,000, spot or margined.
fn mock(venue: Venue, symbol: &str, spot: bool) -> MockVenue {
    let mut config = MockConfig::new(venue, symbol, 60_000, Vec::new());
    config.trading = TradingConfig::new(spot, symbol, fx("50000"));
    match venue {
        // OKX has no minimum notional.
        Venue::Okx => {
            config.trading.instruments = vec![MockInstrument {
                min_notional: Fixed::ZERO,
                ..MockInstrument::new(symbol, fx("50000"))
            }];
        }
        Venue::Kraken => {
            config.trading.keys = vec![MockApiKey {
                api_key: MOCK_API_KEY.into(),
                secret: KRAKEN_SECRET.into(),
            }];
        }
        _ => {}
    }
    MockVenue::start(config).expect("mock starts")
}

fn client(m: &MockVenue, venue: Venue, category: Category) -> RestClient {
    let secret = if venue == Venue::Kraken {
        KRAKEN_SECRET
    } else {
        MOCK_SECRET
    };
    let mut credentials = Credentials::new(MOCK_API_KEY, secret);
    if venue == Venue::Okx {
        credentials = credentials.with_passphrase(MOCK_PASSPHRASE);
    }
    let mut config = ClientConfig::new(venue).with_credentials(credentials);
    config.base_url = m.url();
    config.timeout = Duration::from_millis(1000);
    config.retry.base_delay = Duration::from_millis(10);
    config.retry.max_delay = Duration::from_millis(40);
    config.bybit_category = category;
    // Kraken's default budget (one request a second) would only slow these tests down.
    config.limits = Vec::new();
    RestClient::new(config).expect("client")
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

/// The mock's record of the fills of `client_order_id`, in the order they happened.
fn recorded(m: &MockVenue, client_order_id: &str) -> Vec<MockExecution> {
    m.fills()
        .into_iter()
        .filter(|e| e.client_order_id == client_order_id)
        .collect()
}

/// What a venue's trade list says of one recorded execution where it differs from the record
/// itself (ids in the venue's format, Kraken's fee in the quote currency).
struct Expected {
    venue_order_id: String,
    trade_id: String,
    fee: Fixed,
    fee_asset: String,
}

/// Binance, Bybit and OKX: numeric ids, the fee as charged, in the asset it was charged in.
fn as_recorded(e: &MockExecution) -> Expected {
    Expected {
        venue_order_id: e.order_id.to_string(),
        trade_id: e.trade_id.expect("a trade has an id").to_string(),
        fee: e.commission,
        fee_asset: e.commission_asset.clone(),
    }
}

/// The Kraken mock's ids (`OMOCKK-…` orders, `TMOCKK-…` trades), and the fee as Kraken states
/// it: in the quote currency (a charge in the base asset valued at the trade's price), named by
/// the client's instrument when it has one.
fn kraken_view(quote: &'static str) -> impl Fn(&MockExecution) -> Expected {
    let id = |prefix: &str, n: u64| {
        format!(
            "{prefix}-{:05}-{:06}",
            n / 1_000_000 % 100_000,
            n % 1_000_000
        )
    };
    move |e| Expected {
        venue_order_id: id("OMOCKK", e.order_id),
        trade_id: id("TMOCKK", e.trade_id.expect("a trade has an id")),
        fee: if e.commission_asset == "USD" {
            e.commission
        } else {
            e.commission.checked_mul(e.last_price).expect("fee in USD")
        },
        fee_asset: quote.to_string(),
    }
}

/// Every field of every fill against the mock's record, in the record's order.
fn assert_fills_are(
    fills: &[FillEvent],
    record: &[MockExecution],
    expected: &impl Fn(&MockExecution) -> Expected,
) {
    assert_eq!(
        fills.len(),
        record.len(),
        "fills {fills:#?}\nrecord {record:#?}"
    );
    for (f, e) in fills.iter().zip(record) {
        let x = expected(e);
        let what = format!("fill {f:?} against {e:?}");
        assert_eq!(f.symbol.as_str(), e.symbol, "{what}");
        assert_eq!(f.client_order_id, e.client_order_id, "{what}");
        assert_eq!(f.venue_order_id, x.venue_order_id, "{what}");
        assert_eq!(f.trade_id, x.trade_id, "{what}");
        assert_eq!(f.side, e.side, "{what}");
        assert_eq!((f.price, f.qty), (e.last_price, e.last_qty), "{what}");
        assert_eq!(
            (f.fee, f.fee_asset.as_str()),
            (x.fee, x.fee_asset.as_str()),
            "{what}"
        );
        let liquidity = if e.is_maker {
            Liquidity::Maker
        } else {
            Liquidity::Taker
        };
        assert_eq!(f.liquidity, liquidity, "{what}");
        assert_eq!(f.ts_event_ns, e.transaction_time_ms * 1_000_000, "{what}");
    }
}

/// How one venue's trade endpoint is reached and signed.
struct TradeEndpoint {
    method: &'static str,
    path: &'static str,
    signed: fn(&RecordedRequest) -> bool,
}

const BINANCE_SPOT_TRADES: TradeEndpoint = TradeEndpoint {
    method: "GET",
    path: "/api/v3/myTrades",
    signed: |r| r.param("signature").is_some() && r.header("x-mbx-apikey").is_some(),
};
const BINANCE_USDM_TRADES: TradeEndpoint = TradeEndpoint {
    method: "GET",
    path: "/fapi/v1/userTrades",
    signed: |r| r.param("signature").is_some() && r.header("x-mbx-apikey").is_some(),
};
const BYBIT_EXECUTIONS: TradeEndpoint = TradeEndpoint {
    method: "GET",
    path: "/v5/execution/list",
    signed: |r| r.header("x-bapi-sign").is_some() && r.param("orderLinkId").is_some(),
};
const OKX_FILLS: TradeEndpoint = TradeEndpoint {
    method: "GET",
    path: "/api/v5/trade/fills",
    signed: |r| r.header("ok-access-sign").is_some() && r.param("ordId").is_some(),
};
const KRAKEN_QUERY_TRADES: TradeEndpoint = TradeEndpoint {
    method: "POST",
    path: "/0/private/QueryTrades",
    signed: |r| r.header("api-sign").is_some() && r.body.contains("txid="),
};

/// The common script: a buy limit under the price that fills in two parts (0.03, then 0.02) as
/// the price comes down, read back before, between and after; a taker sell; a resting order
/// with no fills; an unknown client id.
async fn fills_of_a_two_part_order_a_taker_an_idle_and_an_unknown_order(
    m: &MockVenue,
    c: &RestClient,
    symbol: &str,
    endpoint: &TradeEndpoint,
    expected: impl Fn(&MockExecution) -> Expected,
) {
    let s = sym(symbol);
    m.set_fill_qty_max(fx("0.03"));
    c.place_order(&spec(symbol, "fills1", Side::Buy, limit("49000"), "0.05"))
        .await
        .expect("placed");
    let none = c
        .order_fills(&s, "fills1")
        .await
        .expect("fills of a new order");
    assert!(none.is_empty(), "{none:?}");

    m.set_price(symbol, fx("49000"));
    let first = c
        .order_fills(&s, "fills1")
        .await
        .expect("fills after one part");
    assert_fills_are(&first, &recorded(m, "fills1"), &expected);
    assert_eq!(first.len(), 1);

    m.set_price(symbol, fx("48900"));
    let record = recorded(m, "fills1");
    let parts: Vec<Fixed> = record.iter().map(|e| e.last_qty).collect();
    assert_eq!(
        parts,
        [fx("0.03"), fx("0.02")],
        "the mock filled in two parts"
    );
    let both = c
        .order_fills(&s, "fills1")
        .await
        .expect("fills after both parts");
    assert_fills_are(&both, &record, &expected);

    c.place_order(&spec(
        symbol,
        "taker1",
        Side::Sell,
        OrderSpecKind::Market,
        "0.01",
    ))
    .await
    .expect("placed");
    let record = recorded(m, "taker1");
    assert!(record.len() == 1 && !record[0].is_maker, "{record:?}");
    let taker = c.order_fills(&s, "taker1").await.expect("fills of a taker");
    assert_fills_are(&taker, &record, &expected);

    c.place_order(&spec(symbol, "idle1", Side::Buy, limit("40000"), "0.01"))
        .await
        .expect("placed");
    let idle = c
        .order_fills(&s, "idle1")
        .await
        .expect("fills of an idle order");
    assert!(idle.is_empty(), "{idle:?}");

    let e = c.order_fills(&s, "nosuch1").await.expect_err("unknown id");
    assert!(matches!(e.error, VenueError::OrderNotFound(_)), "{e}");
    assert!(e.to_string().contains("nosuch1"), "{e}");

    let sent = m.requests_to(endpoint.method, endpoint.path);
    assert!(!sent.is_empty(), "no request to {}", endpoint.path);
    assert!(sent.iter().all(|r| (endpoint.signed)(r)), "{sent:#?}");
}

#[tokio::test]
async fn binance_spot_fills_come_from_my_trades_with_the_fee_in_what_the_order_received() {
    let m = mock(Venue::BinanceSpot, "BTCUSDT", true);
    let c = client(&m, Venue::BinanceSpot, Category::Spot);
    fills_of_a_two_part_order_a_taker_an_idle_and_an_unknown_order(
        &m,
        &c,
        "BTCUSDT",
        &BINANCE_SPOT_TRADES,
        as_recorded,
    )
    .await;
    // The spot mock charges a buy in the base asset and a sell in the quote asset.
    let fees: Vec<String> = m.fills().into_iter().map(|e| e.commission_asset).collect();
    assert_eq!(fees, ["BTC", "BTC", "USDT"]);
    let by_order = &m.requests_to("GET", "/api/v3/myTrades")[0];
    assert_eq!(by_order.param("symbol"), Some("BTCUSDT"));
    assert_eq!(
        by_order.param("orderId"),
        Some(m.orders()[0].order_id.to_string().as_str())
    );
}

#[tokio::test]
async fn binance_usdm_fills_come_from_user_trades() {
    let m = mock(Venue::BinanceUsdm, "BTCUSDT", false);
    let c = client(&m, Venue::BinanceUsdm, Category::Linear);
    fills_of_a_two_part_order_a_taker_an_idle_and_an_unknown_order(
        &m,
        &c,
        "BTCUSDT",
        &BINANCE_USDM_TRADES,
        as_recorded,
    )
    .await;
}

#[tokio::test]
async fn binance_usdm_conditional_order_fills_are_those_of_the_order_it_became() {
    let m = mock(Venue::BinanceUsdm, "BTCUSDT", false);
    let c = client(&m, Venue::BinanceUsdm, Category::Linear);
    let stop = OrderSpecKind::StopMarket {
        trigger: fx("51000"),
    };
    c.place_order(&spec("BTCUSDT", "algo1", Side::Buy, stop, "0.01"))
        .await
        .expect("placed");
    let waiting = c
        .order_fills(&sym("BTCUSDT"), "algo1")
        .await
        .expect("untriggered");
    assert!(waiting.is_empty(), "{waiting:?}");
    assert!(
        m.requests_to("GET", "/fapi/v1/userTrades").is_empty(),
        "an order that never fired has no trades to ask for"
    );

    m.set_price("BTCUSDT", fx("51000"));
    let record = recorded(&m, "algo1");
    let fills = c
        .order_fills(&sym("BTCUSDT"), "algo1")
        .await
        .expect("triggered");
    assert_fills_are(&fills, &record, &as_recorded);
    let algo = m
        .orders()
        .into_iter()
        .find(|o| o.client_order_id == "algo1");
    let actual = algo.and_then(|o| o.actual_order_id).expect("it fired");
    assert_eq!(fills[0].venue_order_id, actual.to_string());
    let asked = &m.requests_to("GET", "/fapi/v1/userTrades")[0];
    assert_eq!(asked.param("orderId"), Some(actual.to_string().as_str()));
}

#[tokio::test]
async fn bybit_spot_fills_come_from_the_execution_list_with_the_fee_in_the_base_coin_on_buys() {
    let m = mock(Venue::Bybit, "BTCUSDT", true);
    let c = client(&m, Venue::Bybit, Category::Spot);
    fills_of_a_two_part_order_a_taker_an_idle_and_an_unknown_order(
        &m,
        &c,
        "BTCUSDT",
        &BYBIT_EXECUTIONS,
        as_recorded,
    )
    .await;
    let fees: Vec<String> = m.fills().into_iter().map(|e| e.commission_asset).collect();
    assert_eq!(fees, ["BTC", "BTC", "USDT"]);
}

#[tokio::test]
async fn bybit_linear_fills_come_from_the_execution_list() {
    let m = mock(Venue::Bybit, "BTCUSDT", false);
    let c = client(&m, Venue::Bybit, Category::Linear);
    fills_of_a_two_part_order_a_taker_an_idle_and_an_unknown_order(
        &m,
        &c,
        "BTCUSDT",
        &BYBIT_EXECUTIONS,
        as_recorded,
    )
    .await;
}

#[tokio::test]
async fn okx_spot_fills_come_from_trade_fills_with_charged_fees_positive() {
    let m = mock(Venue::Okx, "BTC-USDT", true);
    let c = client(&m, Venue::Okx, Category::Spot);
    fills_of_a_two_part_order_a_taker_an_idle_and_an_unknown_order(
        &m,
        &c,
        "BTC-USDT",
        &OKX_FILLS,
        as_recorded,
    )
    .await;
    let fees: Vec<String> = m.fills().into_iter().map(|e| e.commission_asset).collect();
    assert_eq!(fees, ["BTC", "BTC", "USDT"]);
    // The fills above compared keel's positive fees with the mock's; OKX sent them negative.
    let sent = m.requests_to("GET", "/api/v5/trade/fills");
    assert!(
        sent.iter().all(|r| r.param("instType") == Some("SPOT")),
        "{sent:#?}"
    );
}

#[tokio::test]
async fn okx_swap_fills_come_from_trade_fills() {
    let m = mock(Venue::Okx, "BTC-USDT-SWAP", false);
    let c = client(&m, Venue::Okx, Category::Linear);
    fills_of_a_two_part_order_a_taker_an_idle_and_an_unknown_order(
        &m,
        &c,
        "BTC-USDT-SWAP",
        &OKX_FILLS,
        as_recorded,
    )
    .await;
}

#[tokio::test]
async fn okx_algo_order_fills_are_those_of_the_order_it_placed() {
    let m = mock(Venue::Okx, "BTC-USDT", true);
    let c = client(&m, Venue::Okx, Category::Spot);
    let stop = OrderSpecKind::StopMarket {
        trigger: fx("49000"),
    };
    c.place_order(&spec("BTC-USDT", "algo1", Side::Sell, stop, "0.01"))
        .await
        .expect("placed");
    let waiting = c
        .order_fills(&sym("BTC-USDT"), "algo1")
        .await
        .expect("untriggered");
    assert!(waiting.is_empty(), "{waiting:?}");

    m.set_price("BTC-USDT", fx("49000"));
    let record = recorded(&m, "algo1");
    assert_eq!(record.len(), 1, "{record:?}");
    let fills = c
        .order_fills(&sym("BTC-USDT"), "algo1")
        .await
        .expect("triggered");
    assert_fills_are(&fills, &record, &as_recorded);
    let algo = m
        .orders()
        .into_iter()
        .find(|o| o.client_order_id == "algo1");
    let placed = algo.and_then(|o| o.actual_order_id).expect("it fired");
    assert_eq!(fills[0].venue_order_id, placed.to_string());
}

#[tokio::test]
async fn okx_fills_older_than_three_days_come_from_the_fills_history() {
    let m = mock(Venue::Okx, "BTC-USDT", true);
    let c = client(&m, Venue::Okx, Category::Spot);
    c.place_order(&spec(
        "BTC-USDT",
        "old1",
        Side::Buy,
        OrderSpecKind::Market,
        "0.01",
    ))
    .await
    .expect("placed");
    // As if the fill had left the 3-day window of `/fills`.
    m.serve_canned("/api/v5/trade/fills", r#"{"code":"0","msg":"","data":[]}"#);
    let fills = c
        .order_fills(&sym("BTC-USDT"), "old1")
        .await
        .expect("fills");
    assert_fills_are(&fills, &recorded(&m, "old1"), &as_recorded);
    let history = m.requests_to("GET", "/api/v5/trade/fills-history");
    assert_eq!(history.len(), 1, "{history:#?}");
    assert_eq!(history[0].param("instType"), Some("SPOT"));
    assert!(history[0].header("ok-access-sign").is_some());
}

fn kraken_instrument() -> Instrument {
    Instrument {
        symbol: sym("XBTUSD"),
        base: "XBT".into(),
        quote: "USD".into(),
        tick_size: fx("0.01"),
        lot_size: fx("0.00001"),
        min_qty: fx("0.00001"),
        max_qty: fx("9000"),
        min_notional: fx("5"),
        contract_size: Fixed::ONE,
        trading: true,
    }
}

#[tokio::test]
async fn kraken_fills_come_from_the_orders_trade_txids_and_query_trades() {
    let m = mock(Venue::Kraken, "XBTUSD", true);
    let c = client(&m, Venue::Kraken, Category::Spot);
    c.set_instruments([kraken_instrument()]);
    fills_of_a_two_part_order_a_taker_an_idle_and_an_unknown_order(
        &m,
        &c,
        "XBTUSD",
        &KRAKEN_QUERY_TRADES,
        kraken_view("USD"),
    )
    .await;
    // The exchange charged the buys in XBT; Kraken states them in USD.
    let fees: Vec<String> = m.fills().into_iter().map(|e| e.commission_asset).collect();
    assert_eq!(fees, ["XBT", "XBT", "USD"]);
    let asked = m.requests_to("POST", "/0/private/QueryOrders");
    assert!(
        asked.iter().any(|r| r.body.contains("trades=true")),
        "{asked:#?}"
    );
}

#[tokio::test]
async fn kraken_fills_leave_the_fee_asset_empty_when_the_client_does_not_know_the_pair() {
    let m = mock(Venue::Kraken, "XBTUSD", true);
    let c = client(&m, Venue::Kraken, Category::Spot);
    c.place_order(&spec(
        "XBTUSD",
        "k1",
        Side::Buy,
        OrderSpecKind::Market,
        "0.01",
    ))
    .await
    .expect("placed");
    let fills = c.order_fills(&sym("XBTUSD"), "k1").await.expect("fills");
    assert_fills_are(&fills, &recorded(&m, "k1"), &kraken_view(""));
}

#[tokio::test]
async fn a_trade_list_short_of_what_the_order_filled_is_an_error_not_a_short_list() {
    let m = mock(Venue::BinanceSpot, "BTCUSDT", true);
    let c = client(&m, Venue::BinanceSpot, Category::Spot);
    c.place_order(&spec(
        "BTCUSDT",
        "short1",
        Side::Buy,
        OrderSpecKind::Market,
        "0.01",
    ))
    .await
    .expect("placed");
    m.serve_canned("/api/v3/myTrades", "[]");
    let e = c
        .order_fills(&sym("BTCUSDT"), "short1")
        .await
        .expect_err("short");
    match &e.error {
        VenueError::Other { code, message } => {
            assert_eq!(code, "incomplete-fills", "{e}");
            assert!(message.contains("0.01"), "{e}");
        }
        other => panic!("not an incomplete-fills error: {other:?}"),
    }
}

#[tokio::test]
async fn a_trade_of_another_order_in_the_list_is_an_error() {
    let m = mock(Venue::BinanceSpot, "BTCUSDT", true);
    let c = client(&m, Venue::BinanceSpot, Category::Spot);
    c.place_order(&spec(
        "BTCUSDT",
        "mine1",
        Side::Buy,
        OrderSpecKind::Market,
        "0.01",
    ))
    .await
    .expect("placed");
    let foreign = r#"[{"symbol":"BTCUSDT","id":77,"orderId":1,"orderListId":-1,
        "price":"50000.00000000","qty":"0.01000000","quoteQty":"500.00000000",
        "commission":"0.00001000","commissionAsset":"BTC","time":1700000000000,
        "isBuyer":true,"isMaker":false,"isBestMatch":true}]"#;
    m.serve_canned("/api/v3/myTrades", foreign);
    let e = c
        .order_fills(&sym("BTCUSDT"), "mine1")
        .await
        .expect_err("foreign");
    assert!(
        matches!(&e.error, VenueError::Other { code, .. } if code == "foreign-trade"),
        "{e}"
    );
}
