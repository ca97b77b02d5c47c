//! The mock venue streams order updates: an order placed and filled over signed REST comes
//! back on the authenticated private stream as the venue's user-data event, and keel's private
//! client decodes it into the same fill the REST answer reported (Binance spot and USD-M).

use std::time::{Duration, Instant};

use keel_adapters::client::{ClientConfig, RestClient};
use keel_adapters::credentials::Credentials;
use keel_adapters::mock::ws::private::{MockPrivateConfig, MockPrivateVenue};
use keel_adapters::mock::{
    MOCK_API_KEY, MOCK_SECRET, MockConfig, MockVenue, TradingConfig, bridge,
};
use keel_adapters::model::{OrderSpec, OrderSpecKind, OrderState, TimeInForce, Venue, VenueEvent};
use keel_adapters::ws::private::{PrivateConfig, PrivateEvent, spawn};
use keel_engine::event::Side;
use keel_engine::fixed::Fixed;
use keel_engine::symbol::Symbol;

fn fx(text: &str) -> Fixed {
    Fixed::parse_exact(text).expect("decimal")
}

async fn round_trip(venue: Venue) {
    let mut config = MockConfig::new(venue, "BTCUSDT", 60_000, Vec::new());
    config.trading = TradingConfig::new(venue == Venue::BinanceSpot, "BTCUSDT", fx("50000"));
    let rest = MockVenue::start(config).expect("REST mock");
    let private = MockPrivateVenue::start(MockPrivateConfig::new(venue, MOCK_API_KEY, MOCK_SECRET))
        .expect("private mock");
    let mut cc =
        ClientConfig::new(venue).with_credentials(Credentials::new(MOCK_API_KEY, MOCK_SECRET));
    cc.base_url = rest.url();
    cc.retry.base_delay = Duration::from_millis(10);
    let client = RestClient::new(cc).expect("client");

    let mut pc = PrivateConfig::new(venue, Credentials::new(MOCK_API_KEY, MOCK_SECRET))
        .with_tokens(private.token_source(MOCK_API_KEY));
    pc.base_url = Some(private.url());
    let (handle, mut rx) = spawn(pc).expect("private client");
    // Subscribed and told to reconcile: the stream is live.
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .ok()
            .flatten();
        if let Some(PrivateEvent::Connection(c)) = &ev
            && format!("{c:?}").contains("NeedsReconcile")
        {
            break;
        }
        assert!(
            Instant::now() < until && ev.is_some(),
            "the private stream never went live"
        );
    }

    let spec = OrderSpec {
        symbol: Symbol::new("BTCUSDT").unwrap(),
        client_order_id: "k4242".into(),
        side: Side::Buy,
        kind: OrderSpecKind::Market,
        qty: fx("0.01"),
        time_in_force: TimeInForce::Gtc,
        reduce_only: false,
    };
    let ack = client.place_order(&spec).await.expect("placed");
    let cursor = bridge::forward(&rest, &private, venue, 0);
    assert!(cursor >= 2, "a NEW and a TRADE execution: {cursor}");
    let fills = rest.fills();
    assert_eq!(fills.len(), 1);
    let trade_id = fills[0].trade_id.expect("a trade id").to_string();

    let mut got_fill = None;
    let mut got_filled = false;
    let until = Instant::now() + Duration::from_secs(20);
    while (got_fill.is_none() || !got_filled) && Instant::now() < until {
        match tokio::time::timeout(Duration::from_secs(20), rx.recv()).await {
            Ok(Some(PrivateEvent::Account(VenueEvent::Fill(f)))) => got_fill = Some(f),
            Ok(Some(PrivateEvent::Account(VenueEvent::Order(o)))) => {
                assert_eq!(o.client_order_id, "k4242");
                got_filled |= o.state == OrderState::Filled;
            }
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    let fill = got_fill.expect("the fill arrives on the private stream");
    assert!(got_filled, "the order's FILLED status arrives");
    assert_eq!(fill.client_order_id, "k4242");
    assert_eq!(fill.trade_id, trade_id);
    assert_eq!(fill.qty, fx("0.01"));
    assert_eq!(fill.price, fills[0].last_price);
    assert_eq!(fill.fee, fills[0].commission);
    assert_eq!(fill.side, Side::Buy);
    // The REST answer said the same.
    assert_eq!(ack.order.filled_qty, fx("0.01"));
    handle.shutdown().await;
}

#[tokio::test]
async fn spot_fill_placed_over_rest_arrives_on_the_private_stream() {
    round_trip(Venue::BinanceSpot).await;
}

#[tokio::test]
async fn usdm_fill_placed_over_rest_arrives_on_the_private_stream() {
    round_trip(Venue::BinanceUsdm).await;
}
