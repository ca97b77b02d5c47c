//! Instrument metadata loaded from each venue's own answer (recorded payloads served by the
//! mock), and an order that breaks its rules refused before it is sent, for Bybit, OKX and
//! Kraken (Binance's exchangeInfo path is covered in signed_orders.rs).

use std::time::Duration;

use keel_adapters::client::{ClientConfig, RestClient};
use keel_adapters::credentials::Credentials;
use keel_adapters::mock::{MOCK_API_KEY, MOCK_PASSPHRASE, MOCK_SECRET, MockConfig, MockVenue};
use keel_adapters::model::{OrderSpec, OrderSpecKind, TimeInForce, Venue};
use keel_engine::event::Side;
use keel_engine::fixed::Fixed;
use keel_engine::symbol::Symbol;
use serde_json::Value;

fn data(path: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/data/{path}", env!("CARGO_MANIFEST_DIR")))
        .expect("recorded payload")
}

fn fx(text: &str) -> Fixed {
    Fixed::parse(text).expect("decimal")
}

fn setup(venue: Venue, canned: &[(&str, &str)]) -> (MockVenue, RestClient) {
    let mock = MockVenue::start(MockConfig::new(venue, "BTCUSDT", 60_000, Vec::new())).unwrap();
    for (path, file) in canned {
        mock.serve_canned(path, &data(file));
    }
    let creds = Credentials::new(MOCK_API_KEY, MOCK_SECRET).with_passphrase(MOCK_PASSPHRASE);
    let mut config = ClientConfig::new(venue).with_credentials(creds);
    config.base_url = mock.url();
    config.limits = Vec::new();
    config.retry.base_delay = Duration::from_millis(10);
    (mock, RestClient::new(config).unwrap())
}

/// Places `qty` of `symbol`, which breaks its lot size: refused without a request.
async fn refused_before_sending(mock: &MockVenue, client: &RestClient, symbol: &str, qty: &str) {
    let before = mock.requests().len();
    let spec = OrderSpec {
        symbol: Symbol::new(symbol).unwrap(),
        client_order_id: "k77".into(),
        side: Side::Buy,
        kind: OrderSpecKind::Limit { price: fx("100") },
        qty: fx(qty),
        time_in_force: TimeInForce::Gtc,
        reduce_only: false,
    };
    let err = client.place_order(&spec).await.expect_err("refused");
    let text = err.to_string();
    assert!(text.contains("not sent"), "{text}");
    assert_eq!(mock.requests().len(), before, "nothing was sent: {text}");
}

#[tokio::test]
async fn bybit_instruments_come_from_instruments_info() {
    let (mock, client) = setup(
        Venue::Bybit,
        &[(
            "/v5/market/instruments-info",
            "bybit/http_get_instruments_linear.json",
        )],
    );
    let list = client.load_instruments().await.expect("loaded");
    let v: Value = serde_json::from_str(&data("bybit/http_get_instruments_linear.json")).unwrap();
    let row = &v["result"]["list"][0];
    let btc = list
        .iter()
        .find(|i| i.symbol.as_str() == row["symbol"].as_str().unwrap())
        .expect("BTCUSDT listed");
    assert_eq!(
        btc.tick_size,
        fx(row["priceFilter"]["tickSize"].as_str().unwrap())
    );
    assert_eq!(
        btc.lot_size,
        fx(row["lotSizeFilter"]["qtyStep"].as_str().unwrap())
    );
    assert_eq!(
        btc.min_qty,
        fx(row["lotSizeFilter"]["minOrderQty"].as_str().unwrap())
    );
    // Below the minimum quantity (0.001): refused here.
    refused_before_sending(&mock, &client, "BTCUSDT", "0.0001").await;
}

#[tokio::test]
async fn okx_instruments_come_from_public_instruments_spot_and_swap() {
    let (mock, client) = setup(Venue::Okx, &[]);
    // One path serves both types in the venue; the mock answers by path, so give the swap list
    // (the spot list is checked through the parser's own tests).
    mock.serve_canned(
        "/api/v5/public/instruments",
        &data("okx/http_get_instruments_swap.json"),
    );
    let list = client.load_instruments().await.expect("loaded");
    let v: Value = serde_json::from_str(&data("okx/http_get_instruments_swap.json")).unwrap();
    let row = &v["data"][0];
    let swap = list
        .iter()
        .find(|i| i.symbol.as_str() == row["instId"].as_str().unwrap())
        .expect("the swap listed");
    assert_eq!(swap.tick_size, fx(row["tickSz"].as_str().unwrap()));
    assert_eq!(swap.lot_size, fx(row["lotSz"].as_str().unwrap()));
    assert_eq!(swap.contract_size, fx(row["ctVal"].as_str().unwrap()));
    // Half a contract when the lot is one contract: refused here.
    refused_before_sending(&mock, &client, row["instId"].as_str().unwrap(), "0.5").await;
}

#[tokio::test]
async fn kraken_instruments_come_from_asset_pairs() {
    let (mock, client) = setup(
        Venue::Kraken,
        &[("/0/public/AssetPairs", "kraken/http_asset_pairs.json")],
    );
    let list = client.load_instruments().await.expect("loaded");
    let v: Value = serde_json::from_str(&data("kraken/http_asset_pairs.json")).unwrap();
    let (_, pair) = v["result"].as_object().unwrap().iter().next().unwrap();
    let min = fx(pair["ordermin"].as_str().unwrap());
    let listed = list
        .iter()
        .find(|i| i.min_qty == min && i.tick_size == fx(pair["tick_size"].as_str().unwrap()))
        .expect("the first pair listed with its ordermin and tick size");
    // Below `ordermin`: refused here.
    let below = Fixed(min.0 / 2);
    refused_before_sending(&mock, &client, listed.symbol.as_str(), &below.to_string()).await;
}
