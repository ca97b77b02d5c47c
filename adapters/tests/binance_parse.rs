//! Binance responses that need context or have their own shape: exchange info, klines, depth
//! snapshots, server time, listen keys. Expected values are the literals in the recorded files.

use keel_adapters::binance::{
    parse_depth_snapshot, parse_exchange_info, parse_klines, parse_listen_key, parse_server_time,
};
use keel_adapters::model::{DecodeError, Instrument, VenueEvent};
use keel_engine::fixed::Fixed;
use keel_engine::symbol::Symbol;

macro_rules! data {
    ($p:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/", $p))
    };
}

fn fx(raw: i64) -> Fixed {
    Fixed::from_raw(raw)
}

fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

const MS: i64 = 1_000_000;

fn find<'a>(list: &'a [Instrument], name: &str) -> &'a Instrument {
    list.iter()
        .find(|i| i.symbol.as_str() == name)
        .unwrap_or_else(|| panic!("{name} missing"))
}

#[test]
fn spot_exchange_info_filters() {
    let list = parse_exchange_info(data!(
        "binance_py/http_responses/http_spot_market_exchange_info.json"
    ))
    .unwrap();
    assert_eq!(list.len(), 2);
    let btc = find(&list, "BTCUSDT");
    assert_eq!(btc.base, "BTC");
    assert_eq!(btc.quote, "USDT");
    assert_eq!(btc.tick_size, fx(1_000_000)); // PRICE_FILTER "0.01000000"
    assert_eq!(btc.lot_size, fx(1_000)); // LOT_SIZE stepSize "0.00001000"
    assert_eq!(btc.min_qty, fx(1_000));
    assert_eq!(btc.max_qty, fx(900_000_000_000)); // "9000.00000000"
    assert_eq!(btc.min_notional, fx(1_000_000_000)); // MIN_NOTIONAL "10.00000000"
    assert_eq!(btc.contract_size, Fixed::ONE);
    assert!(btc.trading);
    assert_eq!(find(&list, "ETHUSDT").lot_size, fx(10_000)); // "0.00010000"
}

#[test]
fn usdm_exchange_info_filters() {
    let list = parse_exchange_info(data!(
        "binance_py/http_responses/http_futures_market_exchange_info.json"
    ))
    .unwrap();
    assert_eq!(list.len(), 3);
    let btc = find(&list, "BTCUSDT");
    assert_eq!(btc.tick_size, fx(10_000_000)); // "0.10"
    assert_eq!(btc.lot_size, fx(100_000)); // "0.001"
    assert_eq!(btc.max_qty, fx(100_000_000_000)); // "1000"
    assert_eq!(btc.min_notional, fx(1_000_000_000)); // MIN_NOTIONAL "notional": "10"
    let quarterly = find(&list, "BTCUSDT_220325");
    assert_eq!(quarterly.max_qty, fx(50_000_000_000));
    assert!(quarterly.trading);
}

#[test]
fn documented_symbol_without_filters_has_zero_rules() {
    let list = parse_exchange_info(data!(
        "binance_docs/spot/rest-api/004_exchange_information.json"
    ))
    .unwrap();
    let eth = find(&list, "ETHBTC");
    assert_eq!(eth.tick_size, Fixed::ZERO);
    assert_eq!(eth.min_notional, Fixed::ZERO);
    assert!(eth.trading);
}

#[test]
fn exchange_info_newer_notional_filter_and_unrepresentable_symbols() {
    let body = r#"{"symbols":[
        {"symbol":"AAAUSDT","status":"BREAK","baseAsset":"AAA","quoteAsset":"USDT","filters":[
            {"filterType":"NOTIONAL","minNotional":"5.00000000","maxNotional":"9000000.00000000"}]},
        {"symbol":"TINYUSDT","status":"TRADING","baseAsset":"TINY","quoteAsset":"USDT","filters":[
            {"filterType":"PRICE_FILTER","tickSize":"0.0000000001","minPrice":"0","maxPrice":"1"}]},
        {"symbol":"币安人生USDT","status":"TRADING","baseAsset":"币安人生","quoteAsset":"USDT","filters":[]}
    ]}"#;
    let list = parse_exchange_info(body).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].min_notional, fx(500_000_000));
    assert!(!list[0].trading);
    // A tick that is not a number at all is malformed, not skipped.
    let bad = body.replace("0.0000000001", "tick");
    assert!(matches!(
        parse_exchange_info(&bad),
        Err(DecodeError::Malformed { .. })
    ));
}

#[test]
fn spot_klines_all_but_last_closed() {
    let evs = parse_klines(
        sym("BTCUSDT"),
        data!("binance_py/http_responses/http_spot_market_klines.json"),
    )
    .unwrap();
    assert_eq!(evs.len(), 10);
    let VenueEvent::Candle { candle, closed } = &evs[0] else {
        panic!()
    };
    assert!(closed);
    assert_eq!(candle.symbol, sym("BTCUSDT"));
    assert_eq!(candle.open_time_ns, 1634943780000 * MS);
    assert_eq!(candle.interval_ns, 60_000 * MS); // 1634943839999 + 1 - 1634943780000
    assert_eq!(candle.open, fx(6_068_522_000_000));
    assert_eq!(candle.high, fx(6_072_984_000_000));
    assert_eq!(candle.low, fx(6_067_090_000_000));
    assert_eq!(candle.close, fx(6_071_927_000_000));
    assert_eq!(candle.volume, fx(2_163_272_000));
    assert!(matches!(evs[9], VenueEvent::Candle { closed: false, .. }));
}

#[test]
fn usdm_weekly_kline_interval_from_close_time() {
    let evs = parse_klines(
        sym("BTCUSDT"),
        data!("binance_py/http_responses/http_futures_market_klines.json"),
    )
    .unwrap();
    let VenueEvent::Candle { candle, closed } = &evs[0] else {
        panic!()
    };
    assert!(!closed);
    assert_eq!(candle.interval_ns, 7 * 86_400_000 * MS); // 1499644799999 + 1 - 1499040000000
    assert_eq!(candle.volume, fx(14_897_611_427_815));
}

#[test]
fn klines_rows_must_be_arrays_with_times() {
    assert!(parse_klines(sym("X"), "[[1, \"1\"]]").is_err());
    assert!(parse_klines(sym("X"), r#"[[2,"1","1","1","1","1",1,"0",1,"0","0","0"]]"#).is_err());
    assert!(parse_klines(sym("X"), "{}").is_err());
    assert_eq!(parse_klines(sym("X"), "[]").unwrap(), vec![]);
}

#[test]
fn depth_snapshots() {
    let d = parse_depth_snapshot(
        sym("LTCBTC"),
        data!("binance/spot/http_json/depth_response.json"),
    )
    .unwrap();
    assert!(d.snapshot);
    assert_eq!((d.first_update_id, d.last_update_id), (1027024, 1027024));
    assert_eq!(d.bids, vec![(fx(400_000_000), fx(43_100_000_000))]);
    assert_eq!(d.asks, vec![(fx(400_000_200), fx(1_200_000_000))]);
    assert_eq!(d.ts_event_ns, 0); // spot sends no time

    let d = parse_depth_snapshot(
        sym("BTCUSDT"),
        data!("binance_py/http_responses/http_futures_market_depth.json"),
    )
    .unwrap();
    assert_eq!(d.ts_event_ns, 1589436922959 * MS); // "T"

    let d = parse_depth_snapshot(
        sym("BTCUSDT"),
        data!("binance_py/http_responses/http_spot_market_depth.json"),
    )
    .unwrap();
    assert_eq!(d.bids.len(), 10);
    assert_eq!(d.last_update_id, 14527958487);
    assert_eq!(d.asks[0], (fx(6_065_001_000_000), fx(61_982_000)));
}

#[test]
fn server_time_and_listen_key() {
    assert_eq!(
        parse_server_time(data!("binance/spot/http_json/server_time_response.json")).unwrap(),
        1499827319559 * MS
    );
    assert!(parse_server_time("{}").is_err());
    assert_eq!(
        parse_listen_key(
            r#"{"listenKey":"pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1"}"#
        )
        .unwrap(),
        "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1"
    );
    assert!(parse_listen_key(r#"{"listenKey":""}"#).is_err());
}
