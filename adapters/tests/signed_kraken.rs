//! Kraken spot through `RestClient` against the loopback mock exchange: order round trips,
//! balances, refusals in Kraken's words, authentication (wrong secret, nonce reuse), a lost
//! placement reconciled by `cl_ord_id`, the account-wide dead-man switch, and the session
//! tokens the private streams take (Kraken WebSocket tokens, Binance USD-M listen keys). The
//! mock checks every `API-Sign` with its own HMAC-SHA512, so a signing bug fails these tests.

use std::sync::Arc;
use std::time::Duration;

use keel_adapters::client::tokens::RestTokens;
use keel_adapters::client::trading::Placement;
use keel_adapters::client::{ClientConfig, RestClient};
use keel_adapters::credentials::Credentials;
use keel_adapters::mock::{
    Fault, MOCK_API_KEY, MOCK_SECRET, MockApiKey, MockConfig, MockInstrument, MockVenue,
    TradingConfig,
};
use keel_adapters::model::{
    OrderSpec, OrderSpecKind, OrderState, OrderType, TimeInForce, Venue, VenueError,
};
use keel_adapters::ws::private::{TokenError, TokenSource};
use keel_engine::event::Side;
use keel_engine::fixed::Fixed;
use keel_engine::symbol::Symbol;

const KEY: &str = "kraken-mock-key";
/// Kraken secrets are base64.
const SECRET: &str = "a2VlbC1rcmFrZW4tbW9jay1zZWNyZXQtZm9yLXNpZ25lZC10ZXN0cw==";
const WRONG_SECRET: &str = "d3Jvbmctc2VjcmV0LWQ0MWQ4Y2Q5OGYwMGIyMDRlOTgwMDk5OGVjZjg0Mjdl";

fn fx(text: &str) -> Fixed {
    Fixed::parse_exact(text).expect("decimal")
}

fn xbt() -> Symbol {
    Symbol::new("XBTUSD").expect("symbol")
}

/// XBTUSD at 50,000 and ETHUSD at 3,000; 100,000 USD and 10 XBT; 0.1 % fees.
fn mock() -> MockVenue {
    let mut config = MockConfig::new(Venue::Kraken, "XBTUSD", 60_000, Vec::new());
    let mut trading = TradingConfig::new(true, "XBTUSD", fx("50000"));
    trading
        .instruments
        .push(MockInstrument::new("ETHUSD", fx("3000")));
    trading.keys = vec![MockApiKey {
        api_key: KEY.into(),
        secret: SECRET.into(),
    }];
    config.trading = trading;
    MockVenue::start(config).expect("mock starts")
}

fn client_with(m: &MockVenue, key: &str, secret: &str) -> RestClient {
    let mut config =
        ClientConfig::new(Venue::Kraken).with_credentials(Credentials::new(key, secret));
    config.base_url = m.url();
    config.timeout = Duration::from_millis(1000);
    config.retry.base_delay = Duration::from_millis(10);
    config.retry.max_delay = Duration::from_millis(40);
    // The default Kraken budget is the public one request per second, which would only slow
    // these tests down (and let a one-second dead-man switch run out while a call waits).
    config.limits = Vec::new();
    RestClient::new(config).expect("client")
}

fn client(m: &MockVenue) -> RestClient {
    client_with(m, KEY, SECRET)
}

fn spec(id: &str, side: Side, kind: OrderSpecKind, qty: &str) -> OrderSpec {
    OrderSpec {
        symbol: xbt(),
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

fn form_param<'a>(body: &'a str, key: &str) -> Option<&'a str> {
    body.split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

#[tokio::test]
async fn market_order_is_signed_filled_at_the_mock_price_and_read_back_by_txid() {
    let m = mock();
    let c = client(&m);
    let ack = c
        .place_order(&spec("k-1001", Side::Buy, OrderSpecKind::Market, "0.01"))
        .await
        .expect("placed");
    assert_eq!(ack.placement, Placement::Sent);
    assert_eq!(ack.order.state, OrderState::Filled);
    assert_eq!(ack.order.client_order_id, "k-1001");
    assert_eq!(
        (ack.order.symbol, ack.order.filled_qty),
        (xbt(), fx("0.01"))
    );
    assert_eq!(ack.order.avg_price, fx("50000"));
    assert!(ack.order.venue_order_id.starts_with('O'), "{:?}", ack.order);
    assert!(ack.fills.is_empty(), "Kraken's AddOrder answers no fills");

    let add = &m.requests_to("POST", "/0/private/AddOrder")[0];
    assert_eq!(add.header("api-key"), Some(KEY));
    assert!(add.header("api-sign").is_some());
    assert!(add.body.starts_with("nonce="), "{}", add.body);
    assert_eq!(form_param(&add.body, "cl_ord_id"), Some("k-1001"));
    assert_eq!(form_param(&add.body, "ordertype"), Some("market"));
    assert_eq!(
        add.body.matches("nonce=").count(),
        1,
        "one nonce: {}",
        add.body
    );
    let query = &m.requests_to("POST", "/0/private/QueryOrders")[0];
    assert_eq!(
        form_param(&query.body, "txid"),
        Some(ack.order.venue_order_id.as_str())
    );

    let balances = c.balances().await.expect("BalanceEx");
    let free = |asset: &str| {
        balances
            .iter()
            .find(|b| b.asset == asset)
            .map(|b| b.free)
            .expect(asset)
    };
    assert_eq!(free("ZUSD"), fx("99500"));
    // The mock exchange takes the 0.1 % fee from what the buyer receives.
    assert_eq!(free("XXBT"), fx("10.00999"));

    let report = c.query_order(&xbt(), "k-1001").await.expect("query");
    let report = report.expect("the venue knows the order");
    assert_eq!(
        (report.state, report.filled_qty),
        (OrderState::Filled, fx("0.01"))
    );
    assert_eq!(c.query_order(&xbt(), "k-9999").await.expect("query"), None);
}

#[tokio::test]
async fn limit_rests_holding_funds_then_fills_when_the_price_comes_to_it() {
    let m = mock();
    let c = client(&m);
    let ack = c
        .place_order(&spec("k-2001", Side::Buy, limit("49000"), "0.1"))
        .await
        .expect("placed");
    assert_eq!(ack.order.state, OrderState::New);
    assert_eq!(
        (ack.order.order_type, ack.order.price),
        (OrderType::Limit, fx("49000"))
    );
    let balances = c.balances().await.expect("BalanceEx");
    let usd = balances.iter().find(|b| b.asset == "ZUSD").expect("ZUSD");
    assert_eq!((usd.free, usd.locked), (fx("95100"), fx("4900")));
    let open = c.open_orders(Some(&xbt())).await.expect("open orders");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].client_order_id, "k-2001");

    m.set_price("XBTUSD", fx("49500"));
    assert!(m.fills().is_empty(), "not there yet");
    m.set_price("XBTUSD", fx("48900"));
    let report = c
        .query_order(&xbt(), "k-2001")
        .await
        .expect("query")
        .expect("known");
    assert_eq!(
        (report.state, report.avg_price),
        (OrderState::Filled, fx("49000"))
    );
    assert!(c.open_orders(None).await.expect("open").is_empty());
}

#[tokio::test]
async fn cancel_ends_the_order_and_a_second_cancel_is_an_unknown_order() {
    let m = mock();
    let c = client(&m);
    c.place_order(&spec("k-3001", Side::Sell, limit("51000"), "0.5"))
        .await
        .expect("placed");
    assert_eq!(m.balance("XBT").locked, fx("0.5"));
    assert_eq!(
        c.cancel_order(&xbt(), "k-3001").await.expect("canceled"),
        None
    );
    let cancel = &m.requests_to("POST", "/0/private/CancelOrder")[0];
    assert_eq!(form_param(&cancel.body, "cl_ord_id"), Some("k-3001"));
    assert_eq!(m.balance("XBT").locked, Fixed::ZERO);
    let again = c
        .cancel_order(&xbt(), "k-3001")
        .await
        .expect_err("already canceled");
    assert_eq!(
        again.error,
        VenueError::OrderNotFound("EOrder:Unknown order".into())
    );
    let report = c
        .query_order(&xbt(), "k-3001")
        .await
        .expect("query")
        .expect("known");
    assert_eq!(report.state, OrderState::Canceled);
}

#[tokio::test]
async fn cancel_all_reaches_only_its_pair_and_cancel_every_order_reaches_all() {
    let m = mock();
    let c = client(&m);
    for (id, price) in [("k-4001", "48000"), ("k-4002", "47000")] {
        c.place_order(&spec(id, Side::Buy, limit(price), "0.01"))
            .await
            .expect("placed");
    }
    let mut eth = spec("k-4003", Side::Buy, limit("2900"), "0.5");
    eth.symbol = Symbol::new("ETHUSD").expect("symbol");
    c.place_order(&eth).await.expect("placed");

    let canceled = c.cancel_all(&xbt()).await.expect("cancel all");
    let mut ids: Vec<&str> = canceled
        .iter()
        .map(|o| o.client_order_id.as_str())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["k-4001", "k-4002"]);
    assert!(canceled.iter().all(|o| o.state == OrderState::Canceled));
    let left = m.open_orders();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].client_order_id, "k-4003");
    assert!(
        m.requests_to("POST", "/0/private/CancelAll").is_empty(),
        "Kraken's CancelAll would take the ETHUSD order too"
    );
    assert!(c.cancel_all(&xbt()).await.expect("nothing open").is_empty());

    assert_eq!(c.kraken_cancel_every_order().await.expect("CancelAll"), 1);
    assert!(m.open_orders().is_empty());
}

#[tokio::test]
async fn refusals_come_back_typed_in_krakens_words() {
    let m = mock();
    let c = client(&m);
    let e = c
        .place_order(&spec("k-5001", Side::Buy, OrderSpecKind::Market, "100"))
        .await
        .expect_err("5,000,000 USD is more than the account has");
    assert_eq!(
        e.error,
        VenueError::InsufficientBalance("EOrder:Insufficient funds".into())
    );
    let mut post_only = spec("k-5002", Side::Buy, limit("50500"), "0.01");
    post_only.time_in_force = TimeInForce::PostOnly;
    let e = c.place_order(&post_only).await.expect_err("would take");
    assert_eq!(
        e.error,
        VenueError::Other {
            code: "EOrder".into(),
            message: "Post only order".into()
        }
    );
    let mut unknown = spec("k-5003", Side::Buy, limit("1"), "1");
    unknown.symbol = Symbol::new("DOGEUSD").expect("symbol");
    let e = c.place_order(&unknown).await.expect_err("no such pair");
    assert_eq!(
        e.error,
        VenueError::UnknownSymbol("EQuery:Unknown asset pair".into())
    );
    c.place_order(&spec("k-5004", Side::Buy, limit("40000"), "0.01"))
        .await
        .expect("placed");
    let e = c
        .place_order(&spec("k-5004", Side::Buy, limit("41000"), "0.01"))
        .await
        .expect_err("the id is open");
    assert_eq!(e.error, VenueError::DuplicateClientOrderId);
    assert_eq!(m.orders().len(), 1);
}

#[tokio::test]
async fn a_wrong_secret_is_an_auth_failure_that_never_shows_the_secret() {
    let m = mock();
    let c = client_with(&m, KEY, WRONG_SECRET);
    let e = c.balances().await.expect_err("bad signature");
    assert_eq!(
        e.error,
        VenueError::AuthFailure("EAPI:Invalid signature".into())
    );
    let e = c
        .place_order(&spec("k-6001", Side::Buy, OrderSpecKind::Market, "0.01"))
        .await
        .expect_err("bad signature");
    assert!(matches!(e.error, VenueError::AuthFailure(_)), "{e}");
    for text in [
        e.to_string(),
        format!("{e:?}"),
        format!("{c:?}", c = c.config()),
    ] {
        assert!(!text.contains(WRONG_SECRET), "{text}");
    }
    assert!(m.orders().is_empty());

    let stranger = client_with(&m, "not-a-key", SECRET);
    let e = stranger.balances().await.expect_err("unknown key");
    assert_eq!(e.error, VenueError::AuthFailure("EAPI:Invalid key".into()));
    assert!(!format!("{e} {e:?}").contains(SECRET));
}

#[tokio::test]
async fn a_nonce_not_above_the_keys_last_is_refused() {
    let m = mock();
    let c = client(&m);
    c.balances().await.expect("first call");
    let sent = m.requests_to("POST", "/0/private/BalanceEx").remove(0);

    // The same request again, signature and all: a replay.
    let http = reqwest::Client::new();
    let mut replay = http.post(format!("{}{}", m.url(), sent.path));
    for name in ["api-key", "api-sign", "content-type"] {
        replay = replay.header(name, sent.header(name).expect(name));
    }
    let answer = replay
        .body(sent.body.clone())
        .send()
        .await
        .expect("answer")
        .text()
        .await
        .expect("body");
    assert_eq!(answer, r#"{"error":["EAPI:Invalid nonce"]}"#);

    // A second client on the same key whose clock is a minute behind the first one's: its
    // nonces are lower. It re-syncs once, is refused again, and says so.
    m.set_clock_skew_ms(60_000);
    c.sync_clock().await.expect("time");
    c.balances().await.expect("a nonce a minute ahead");
    let ahead = m.kraken_last_nonce(KEY).expect("a nonce");
    m.set_clock_skew_ms(0);
    let behind = client(&m);
    let e = behind.balances().await.expect_err("nonce too low");
    assert_eq!(
        e.error,
        VenueError::TimestampOutsideRecvWindow("EAPI:Invalid nonce".into())
    );
    assert_eq!(e.attempts, 2, "sent once more after the re-sync");
    assert_eq!(m.kraken_last_nonce(KEY), Some(ahead));
}

#[tokio::test]
async fn a_lost_answer_to_an_executed_placement_is_found_by_cl_ord_id_and_not_resent() {
    let m = mock();
    let c = client(&m);
    m.inject_on("POST", "/0/private/AddOrder", 1, Fault::DropAfterExecution);
    let ack = c
        .place_order(&spec("k-7001", Side::Buy, OrderSpecKind::Market, "0.02"))
        .await
        .expect("found after the lost answer");
    assert_eq!(
        ack.placement,
        Placement::FoundAfterUnknownOutcome { sends: 1 }
    );
    assert_eq!(
        (ack.order.state, ack.order.client_order_id.as_str()),
        (OrderState::Filled, "k-7001")
    );
    assert_eq!(m.requests_to("POST", "/0/private/AddOrder").len(), 1);
    assert_eq!(m.orders().len(), 1, "traded once");
    // Filled, so not open: found among the closed orders by its cl_ord_id.
    let closed = m.requests_to("POST", "/0/private/ClosedOrders");
    assert_eq!(form_param(&closed[0].body, "cl_ord_id"), Some("k-7001"));
}

#[tokio::test]
async fn a_lost_placement_the_venue_never_ran_is_resent_exactly_once() {
    let m = mock();
    let c = client(&m);
    m.inject_on("POST", "/0/private/AddOrder", 1, Fault::DropBeforeExecution);
    let ack = c
        .place_order(&spec("k-7101", Side::Buy, limit("48000"), "0.01"))
        .await
        .expect("resent");
    assert_eq!(ack.placement, Placement::Resent { sends: 2 });
    assert_eq!(ack.order.state, OrderState::New);
    let adds = m.requests_to("POST", "/0/private/AddOrder");
    assert_eq!(adds.len(), 2);
    assert_ne!(
        form_param(&adds[0].body, "nonce"),
        form_param(&adds[1].body, "nonce"),
        "a resend carries a fresh nonce"
    );
    assert_eq!(m.orders().len(), 1);
    let open = m.requests_to("POST", "/0/private/OpenOrders");
    assert_eq!(form_param(&open[0].body, "cl_ord_id"), Some("k-7101"));
}

#[tokio::test]
async fn dead_man_switch_cancels_every_order_when_it_runs_out_and_zero_disarms_it() {
    let m = mock();
    let c = client(&m);
    c.place_order(&spec("k-8001", Side::Buy, limit("48000"), "0.01"))
        .await
        .expect("placed");
    // Kraken counts whole seconds: 300 ms is sent as 1 s.
    c.cancel_all_after(&xbt(), Duration::from_millis(300))
        .await
        .expect("armed");
    let armed = m.requests_to("POST", "/0/private/CancelAllOrdersAfter");
    assert_eq!(form_param(&armed[0].body, "timeout"), Some("1"));
    assert_eq!(c.open_orders(None).await.expect("open").len(), 1);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(c.open_orders(None).await.expect("open").is_empty());
    let report = c
        .query_order(&xbt(), "k-8001")
        .await
        .expect("query")
        .expect("known");
    assert_eq!(report.state, OrderState::Canceled);

    c.place_order(&spec("k-8002", Side::Buy, limit("48000"), "0.01"))
        .await
        .expect("placed");
    c.cancel_all_after(&xbt(), Duration::from_secs(1))
        .await
        .expect("armed");
    c.cancel_all_after(&xbt(), Duration::ZERO)
        .await
        .expect("disarmed");
    assert_eq!(m.kraken_countdowns(), [1, 1, 0]);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(c.open_orders(None).await.expect("open").len(), 1);

    let e = c
        .cancel_all_after(&xbt(), Duration::from_secs(86_400))
        .await
        .expect_err("a day is too long");
    assert!(e.to_string().contains("not sent"), "{e}");
    assert_eq!(m.kraken_countdowns().len(), 3);
}

#[tokio::test]
async fn a_spot_account_has_no_positions_and_says_so_without_sending() {
    let m = mock();
    let c = client(&m);
    let e = c.positions().await.expect_err("spot");
    assert!(e.to_string().contains("not positions"), "{e}");
    assert!(m.requests().is_empty());
}

#[tokio::test]
async fn the_kraken_token_source_returns_the_mocks_websocket_token() {
    let m = mock();
    let tokens = RestTokens::new(Arc::new(client(&m)));
    let first = tokens.token().await.expect("token");
    let second = tokens.token().await.expect("token");
    assert_eq!(m.kraken_ws_tokens(), [first.clone(), second]);
    tokens.keep_alive(&first).await.expect("nothing to extend");
    let calls = m.requests_to("POST", "/0/private/GetWebSocketsToken");
    assert_eq!(calls.len(), 2, "a keep-alive sends nothing");
    assert!(calls.iter().all(|r| r.header("api-sign").is_some()));

    let refused = RestTokens::new(Arc::new(client_with(&m, KEY, WRONG_SECRET)));
    match refused.token().await {
        Err(TokenError::Rejected(text)) => {
            assert!(text.contains("EAPI:Invalid signature"), "{text}");
            assert!(!text.contains(WRONG_SECRET), "{text}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn the_binance_token_source_returns_the_mocks_listen_key_with_the_key_header_only() {
    let mut config = MockConfig::new(Venue::BinanceUsdm, "BTCUSDT", 60_000, Vec::new());
    config.trading = TradingConfig::new(false, "BTCUSDT", fx("50000"));
    let m = MockVenue::start(config).expect("mock starts");
    let usdm = |key: &str| {
        let mut config = ClientConfig::new(Venue::BinanceUsdm)
            .with_credentials(Credentials::new(key, MOCK_SECRET));
        config.base_url = m.url();
        config.timeout = Duration::from_millis(1000);
        Arc::new(RestClient::new(config).expect("client"))
    };
    let tokens = RestTokens::new(usdm(MOCK_API_KEY));
    let key = tokens.token().await.expect("listen key");
    assert_eq!(key, m.usdm_listen_key(MOCK_API_KEY));
    tokens.keep_alive(&key).await.expect("extended");
    for method in ["POST", "PUT"] {
        let sent = m.requests_to(method, "/fapi/v1/listenKey");
        assert_eq!(sent.len(), 1, "{method}");
        assert_eq!(sent[0].header("x-mbx-apikey"), Some(MOCK_API_KEY));
        assert!(
            sent[0].param("signature").is_none(),
            "USER_STREAM is not signed"
        );
    }

    let refused = RestTokens::new(usdm("not-a-key"));
    match refused.token().await {
        Err(TokenError::Rejected(text)) => assert!(text.contains("Invalid API-key"), "{text}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}
