//! Signed requests when things go wrong, against the loopback mock exchange: a wrong secret or
//! key, a venue clock 5 s off, a placement whose answer is lost after (or before) the order was
//! made, a duplicate client order id, filter violations caught before sending and by the
//! venue, and a 429 with `Retry-After`.

use std::time::Duration;

use keel_adapters::binance;
use keel_adapters::client::trading::Placement;
use keel_adapters::client::{ClientConfig, RestClient};
use keel_adapters::credentials::Credentials;
use keel_adapters::mock::{Fault, MOCK_API_KEY, MOCK_SECRET, MockConfig, MockVenue, TradingConfig};
use keel_adapters::model::{OrderSpec, OrderSpecKind, OrderState, TimeInForce, Venue, VenueError};
use keel_engine::event::Side;
use keel_engine::fixed::Fixed;
use keel_engine::symbol::Symbol;

const WRONG_SECRET: &str = "wrong-secret-d41d8cd98f00b204e9800998ecf8427e";

fn fx(text: &str) -> Fixed {
    Fixed::parse_exact(text).expect("decimal")
}

fn btc() -> Symbol {
    Symbol::new("BTCUSDT").expect("symbol")
}

fn mock(venue: Venue, skew_ms: i64) -> MockVenue {
    let mut config = MockConfig::new(venue, "BTCUSDT", 60_000, Vec::new());
    config.trading = TradingConfig::new(venue == Venue::BinanceSpot, "BTCUSDT", fx("50000"));
    config.clock_skew_ms = skew_ms;
    MockVenue::start(config).expect("mock starts")
}

fn config(m: &MockVenue, venue: Venue, key: &str, secret: &str) -> ClientConfig {
    let mut config = ClientConfig::new(venue).with_credentials(Credentials::new(key, secret));
    config.base_url = m.url();
    config.timeout = Duration::from_millis(1000);
    config.retry.base_delay = Duration::from_millis(10);
    config.retry.max_delay = Duration::from_millis(40);
    config
}

fn client(m: &MockVenue, venue: Venue) -> RestClient {
    RestClient::new(config(m, venue, MOCK_API_KEY, MOCK_SECRET)).expect("client")
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
async fn a_wrong_secret_is_refused_with_1022_and_reported_as_auth_failure_without_the_secret() {
    let m = mock(Venue::BinanceSpot, 0);
    let config = config(&m, Venue::BinanceSpot, MOCK_API_KEY, WRONG_SECRET);
    assert!(!format!("{config:?}").contains(WRONG_SECRET));
    let c = RestClient::new(config).expect("client");
    let e = c
        .place_order(&spec("1", Side::Buy, OrderSpecKind::Market, "0.01"))
        .await
        .expect_err("bad signature");
    assert_eq!(
        e.error,
        VenueError::AuthFailure("Signature for this request is not valid.".into())
    );
    assert_eq!((e.status, e.attempts), (Some(400), 1), "never retried");
    let shown = format!("{e} {e:?}");
    assert!(
        !shown.contains(WRONG_SECRET) && !shown.contains(MOCK_SECRET),
        "{shown}"
    );
    assert!(!shown.contains("signature="), "{shown}");
    assert_eq!(m.requests().len(), 1);
    assert!(m.orders().is_empty());
}

#[tokio::test]
async fn an_unknown_api_key_is_refused_with_2015() {
    let m = mock(Venue::BinanceUsdm, 0);
    let c = RestClient::new(config(&m, Venue::BinanceUsdm, "someone-else", MOCK_SECRET))
        .expect("client");
    let e = c.balances().await.expect_err("unknown key");
    assert!(matches!(e.error, VenueError::AuthFailure(ref m) if m.starts_with("Invalid API-key")));
    assert_eq!(e.status, Some(401));
}

/// The venue clock runs `skew_ms` off; with a 1 s receive window the first signed request is
/// refused (-1021), the client reads the venue's time once and the resend succeeds.
async fn resyncs_once_after_a_timestamp_refusal(skew_ms: i64) {
    let m = mock(Venue::BinanceSpot, skew_ms);
    let mut config = config(&m, Venue::BinanceSpot, MOCK_API_KEY, MOCK_SECRET);
    config.recv_window_ms = 1000;
    let c = RestClient::new(config).expect("client");
    let ack = c
        .place_order(&spec("11", Side::Buy, limit("49000"), "0.01"))
        .await
        .expect("placed after the re-sync");
    assert_eq!(ack.order.state, OrderState::New);
    let paths: Vec<(String, String)> = m
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    let expected = [
        ("POST", "/api/v3/order"),
        ("GET", "/api/v3/time"),
        ("POST", "/api/v3/order"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(paths, expected);
    assert_eq!(m.orders().len(), 1);
    let offset = c.clock_offset_ms();
    assert!(
        (offset - skew_ms).abs() < 500,
        "offset {offset} ms for a skew of {skew_ms} ms"
    );
    // Later requests carry the corrected clock from the start.
    c.balances().await.expect("in the window");
    assert_eq!(m.requests().len(), 4);
}

#[tokio::test]
async fn a_venue_clock_5_s_ahead_is_resynced_after_1021() {
    resyncs_once_after_a_timestamp_refusal(5000).await;
}

#[tokio::test]
async fn a_venue_clock_5_s_behind_is_resynced_after_1021() {
    resyncs_once_after_a_timestamp_refusal(-5000).await;
}

#[tokio::test]
async fn a_lost_answer_to_an_executed_placement_is_found_by_client_id_and_not_resent() {
    let m = mock(Venue::BinanceSpot, 0);
    let c = client(&m, Venue::BinanceSpot);
    m.inject_on("POST", "/api/v3/order", 1, Fault::DropAfterExecution);
    let ack = c
        .place_order(&spec("21", Side::Buy, OrderSpecKind::Market, "0.01"))
        .await
        .expect("reconciled");
    assert_eq!(
        ack.placement,
        Placement::FoundAfterUnknownOutcome { sends: 1 }
    );
    assert_eq!(
        (ack.order.state, ack.order.client_order_id.as_str()),
        (OrderState::Filled, "21")
    );
    assert_eq!(
        m.requests_to("POST", "/api/v3/order").len(),
        1,
        "never resent"
    );
    let queries = m.requests_to("GET", "/api/v3/order");
    assert_eq!(queries.len(), 1);
    assert_eq!(queries[0].param("origClientOrderId"), Some("21"));
    assert_eq!(m.orders().len(), 1, "exactly one order");
    assert_eq!(m.fills().len(), 1);
}

#[tokio::test]
async fn a_lost_placement_the_venue_never_ran_is_resent_exactly_once() {
    let m = mock(Venue::BinanceSpot, 0);
    let c = client(&m, Venue::BinanceSpot);
    m.inject_on("POST", "/api/v3/order", 1, Fault::DropBeforeExecution);
    let ack = c
        .place_order(&spec("22", Side::Buy, OrderSpecKind::Market, "0.01"))
        .await
        .expect("resent");
    assert_eq!(ack.placement, Placement::Resent { sends: 2 });
    assert_eq!(ack.order.state, OrderState::Filled);
    assert_eq!(m.requests_to("POST", "/api/v3/order").len(), 2);
    assert_eq!(m.requests_to("GET", "/api/v3/order").len(), 1);
    assert_eq!(m.orders().len(), 1, "exactly one order");
}

#[tokio::test]
async fn a_usdm_5xx_on_a_conditional_placement_is_checked_on_the_algo_api_then_resent_once() {
    let m = mock(Venue::BinanceUsdm, 0);
    let c = client(&m, Venue::BinanceUsdm);
    m.inject_on("POST", "/fapi/v1/algoOrder", 1, Fault::ServerError);
    let stop = OrderSpecKind::StopMarket {
        trigger: fx("48000"),
    };
    let ack = c
        .place_order(&spec("23", Side::Sell, stop, "0.01"))
        .await
        .expect("resent");
    assert_eq!(ack.placement, Placement::Resent { sends: 2 });
    assert_eq!(ack.order.state, OrderState::Untriggered);
    let queries = m.requests_to("GET", "/fapi/v1/algoOrder");
    assert_eq!(queries.len(), 1);
    assert_eq!(queries[0].param("clientAlgoId"), Some("23"));
    assert_eq!(m.requests_to("POST", "/fapi/v1/algoOrder").len(), 2);
    assert_eq!(m.orders().len(), 1);
}

#[tokio::test]
async fn a_usdm_lost_answer_after_execution_is_found_and_not_resent() {
    let m = mock(Venue::BinanceUsdm, 0);
    let c = client(&m, Venue::BinanceUsdm);
    m.inject_on("POST", "/fapi/v1/order", 1, Fault::DropAfterExecution);
    let ack = c
        .place_order(&spec("24", Side::Buy, limit("49000"), "0.01"))
        .await
        .expect("reconciled");
    assert_eq!(
        ack.placement,
        Placement::FoundAfterUnknownOutcome { sends: 1 }
    );
    assert_eq!(ack.order.state, OrderState::New);
    assert_eq!(m.requests_to("POST", "/fapi/v1/order").len(), 1);
    assert_eq!(m.orders().len(), 1);
}

#[tokio::test]
async fn a_duplicate_client_order_id_is_a_typed_error_on_both_markets() {
    for venue in [Venue::BinanceSpot, Venue::BinanceUsdm] {
        let m = mock(venue, 0);
        let c = client(&m, venue);
        c.place_order(&spec("31", Side::Buy, limit("49000"), "0.01"))
            .await
            .expect("first");
        let e = c
            .place_order(&spec("31", Side::Buy, limit("48000"), "0.01"))
            .await
            .expect_err("duplicate");
        assert_eq!(e.error, VenueError::DuplicateClientOrderId, "{venue:?}");
        assert_eq!(m.orders().len(), 1);
        assert_eq!(
            m.requests_to("GET", "/api/v3/order").len(),
            0,
            "no reconciliation"
        );
    }
}

#[tokio::test]
async fn a_filter_violation_is_refused_before_sending_and_the_venue_refuses_it_too() {
    let m = mock(Venue::BinanceSpot, 0);
    let c = client(&m, Venue::BinanceSpot);
    c.load_instruments().await.expect("exchangeInfo");
    let sent = m.requests().len();
    let tiny = spec("41", Side::Buy, limit("50000"), "0.000001");
    let e = c.place_order(&tiny).await.expect_err("below the lot size");
    assert!(matches!(e.error, VenueError::FilterViolation(_)), "{e}");
    assert_eq!((e.attempts, e.status), (0, None));
    assert_eq!(m.requests().len(), sent, "nothing sent");
    let small = spec("42", Side::Buy, limit("100"), "0.01");
    let e = c.place_order(&small).await.expect_err("below the notional");
    assert!(e.to_string().contains("minimum 5"), "{e}");
    assert_eq!(m.requests().len(), sent, "nothing sent");

    // Sent anyway, the venue answers with its own filter codes, typed the same way.
    for (bad, filter) in [
        (tiny, "Filter failure: LOT_SIZE"),
        (small, "Filter failure: NOTIONAL"),
        (
            spec("43", Side::Buy, limit("50000.005"), "0.01"),
            "Filter failure: PRICE_FILTER",
        ),
    ] {
        let req = binance::spot_place_order(&bad).expect("encodable");
        let e = c.send(&req).await.expect_err("refused");
        assert_eq!(e.error, VenueError::FilterViolation(filter.into()));
        assert_eq!(e.status, Some(400));
    }
    assert!(m.orders().is_empty());
}

#[tokio::test]
async fn usdm_filter_codes_map_to_filter_violations() {
    let m = mock(Venue::BinanceUsdm, 0);
    let c = client(&m, Venue::BinanceUsdm);
    for (bad, text) in [
        (
            spec("51", Side::Buy, limit("50000.005"), "0.01"),
            "Price not increased by tick size.",
        ),
        (
            spec("52", Side::Buy, limit("50000"), "0.000015"),
            "Qty not increased by step size.",
        ),
        (
            spec("53", Side::Buy, limit("100"), "0.01"),
            "Order's notional must be no smaller than 5",
        ),
    ] {
        let req = binance::usdm_place_order(&bad).expect("encodable");
        let e = c.send(&req).await.expect_err("refused");
        assert!(
            matches!(&e.error, VenueError::FilterViolation(m) if m.starts_with(text)),
            "{e}"
        );
    }
    assert!(m.orders().is_empty());
}

#[tokio::test]
async fn a_429_on_a_placement_waits_out_retry_after_and_places_once() {
    let m = mock(Venue::BinanceSpot, 0);
    let c = client(&m, Venue::BinanceSpot);
    m.inject_on(
        "POST",
        "/api/v3/order",
        1,
        Fault::RateLimited {
            retry_after_secs: 1,
        },
    );
    let ack = c
        .place_order(&spec("61", Side::Buy, OrderSpecKind::Market, "0.01"))
        .await
        .expect("placed after the wait");
    assert_eq!(ack.placement, Placement::Sent);
    let posts = m.requests_to("POST", "/api/v3/order");
    assert_eq!(posts.len(), 2);
    assert!(posts[1].at.duration_since(posts[0].at) >= Duration::from_secs(1));
    assert!(m.early_requests().is_empty());
    assert_eq!(m.orders().len(), 1);
    // Each attempt was stamped when it was sent.
    assert_ne!(posts[0].param("timestamp"), posts[1].param("timestamp"));
}

#[tokio::test]
async fn a_signed_request_split_between_query_and_body_is_verified_over_both() {
    let m = mock(Venue::BinanceSpot, 0);
    let c = client(&m, Venue::BinanceSpot);
    let mut req = binance::spot_place_order(&spec("71", Side::Buy, limit("49000"), "0.01"))
        .expect("encodable");
    // Symbol and side stay in the query, the rest goes in a form body (where the client then
    // appends the stamps and the signature): Binance signs the query followed by the body.
    let rest = req.query.split_off(2);
    req.body = Some(binance::query_string(&rest));
    let r = c.send(&req).await.expect("accepted");
    assert_eq!(r.status, 200);
    let post = &m.requests_to("POST", "/api/v3/order")[0];
    assert!(post.body.contains("signature="), "{}", post.body);
    assert_eq!(
        post.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(m.orders().len(), 1);
}
