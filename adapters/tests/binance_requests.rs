//! Binance request builders against the documentation: the signed-request examples (query
//! string and signature from `signing_vectors.json`), documented weights, parameter names and
//! the USD-M stream routes.

use hmac::{Hmac, Mac};
use keel_adapters::binance::{
    BuildError, OrderRef, UsdmRoute, book_ticker_stream, depth_stream, kline_stream,
    mark_price_stream, query_string, spot_account, spot_cancel_all, spot_cancel_order, spot_depth,
    spot_exchange_info, spot_klines, spot_open_orders, spot_place_order, spot_query_order,
    spot_server_time, spot_stream_url, spot_user_stream_signature_payload,
    spot_user_stream_subscribe_request, trade_stream, usdm_balance, usdm_cancel_algo_order,
    usdm_cancel_all, usdm_cancel_all_algo, usdm_cancel_order, usdm_countdown_cancel_all,
    usdm_depth, usdm_exchange_info, usdm_klines, usdm_listen_key_create, usdm_listen_key_keepalive,
    usdm_open_orders, usdm_place_order, usdm_position_risk, usdm_private_url, usdm_query_order,
    usdm_route, usdm_stream_urls, ws_api_signature_payload,
};
use keel_adapters::model::{Method, OrderSpec, OrderSpecKind, RestRequest, TimeInForce};
use keel_engine::event::Side;
use keel_engine::fixed::Fixed;
use keel_engine::symbol::Symbol;
use serde_json::Value;
use sha2::Sha256;

fn vector(id: &str) -> Value {
    let all: Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/signing_vectors/signing_vectors.json"
    )))
    .unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == id)
        .cloned()
        .unwrap()
}

fn hmac_hex(secret: &str, payload: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

fn spec(symbol: &str, side: Side, kind: OrderSpecKind, qty: Fixed, tif: TimeInForce) -> OrderSpec {
    OrderSpec {
        symbol: sym(symbol),
        client_order_id: String::new(),
        side,
        kind,
        qty,
        time_in_force: tif,
        reduce_only: false,
    }
}

fn get<'a>(r: &'a RestRequest, key: &str) -> Option<&'a str> {
    r.query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The query as the client signs it: the builder's parameters minus the response-type
/// preference (not in the doc examples), then recvWindow and timestamp.
fn signed_payload(r: &RestRequest, recv_window: &str, timestamp: &str) -> String {
    let mut q: Vec<(String, String)> = r
        .query
        .iter()
        .filter(|(k, _)| k != "newOrderRespType")
        .cloned()
        .collect();
    q.push(("recvWindow".into(), recv_window.into()));
    q.push(("timestamp".into(), timestamp.into()));
    query_string(&q)
}

#[test]
fn spot_limit_order_matches_the_documented_signed_request() {
    let v = vector("binance_spot_rest_hmac_ascii");
    // symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&...
    let r = spot_place_order(&spec(
        "LTCBTC",
        Side::Buy,
        OrderSpecKind::Limit {
            price: Fixed::from_raw(10_000_000),
        },
        Fixed::from_raw(100_000_000),
        TimeInForce::Gtc,
    ))
    .unwrap();
    assert_eq!((r.method, r.path.as_str()), (Method::Post, "/api/v3/order"));
    assert!(r.signed);
    assert_eq!(r.weight, 1);
    assert!(!r.retry_safe);
    assert_eq!(get(&r, "newOrderRespType"), Some("FULL"));
    let payload = signed_payload(&r, "5000", "1499827319559");
    assert_eq!(payload, v["payload"].as_str().unwrap());
    assert_eq!(
        hmac_hex(v["secret"].as_str().unwrap(), &payload),
        v["expected"]
    );
}

#[test]
fn usdm_limit_order_matches_the_documented_signed_request() {
    let v = vector("binance_usdm_futures_hmac_query_or_body");
    // symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000&...
    let r = usdm_place_order(&spec(
        "BTCUSDT",
        Side::Buy,
        OrderSpecKind::Limit {
            price: Fixed::from_raw(900_000_000_000),
        },
        Fixed::from_raw(100_000_000),
        TimeInForce::Gtc,
    ))
    .unwrap();
    assert_eq!(
        (r.method, r.path.as_str()),
        (Method::Post, "/fapi/v1/order")
    );
    assert_eq!(r.weight, 0);
    assert_eq!(get(&r, "newOrderRespType"), Some("RESULT"));
    let payload = signed_payload(&r, "5000", "1591702613943");
    assert_eq!(payload, v["payload"].as_str().unwrap());
    assert_eq!(
        hmac_hex(v["secret"].as_str().unwrap(), &payload),
        v["expected"]
    );
}

#[test]
fn spot_order_types() {
    let qty = Fixed::from_raw(100_000_000);
    let price = Fixed::from_raw(250_000_000_000);
    let trigger = Fixed::from_raw(245_000_000_000);

    let post_only = spot_place_order(&spec(
        "ETHUSDT",
        Side::Sell,
        OrderSpecKind::Limit { price },
        qty,
        TimeInForce::PostOnly,
    ))
    .unwrap();
    assert_eq!(get(&post_only, "type"), Some("LIMIT_MAKER"));
    assert_eq!(get(&post_only, "timeInForce"), None);

    let market = spot_place_order(&spec(
        "ETHUSDT",
        Side::Buy,
        OrderSpecKind::Market,
        qty,
        TimeInForce::Ioc,
    ))
    .unwrap();
    assert_eq!(get(&market, "type"), Some("MARKET"));
    assert_eq!(get(&market, "timeInForce"), None);
    assert_eq!(get(&market, "price"), None);

    let ioc = spot_place_order(&spec(
        "ETHUSDT",
        Side::Buy,
        OrderSpecKind::Limit { price },
        qty,
        TimeInForce::Fok,
    ))
    .unwrap();
    assert_eq!(get(&ioc, "timeInForce"), Some("FOK"));

    let stop = spot_place_order(&spec(
        "ETHUSDT",
        Side::Sell,
        OrderSpecKind::StopMarket { trigger },
        qty,
        TimeInForce::Gtc,
    ))
    .unwrap();
    assert_eq!(get(&stop, "type"), Some("STOP_LOSS"));
    assert_eq!(get(&stop, "stopPrice"), Some("2450"));

    let stop_limit = spot_place_order(&spec(
        "ETHUSDT",
        Side::Sell,
        OrderSpecKind::StopLimit { trigger, price },
        qty,
        TimeInForce::Gtc,
    ))
    .unwrap();
    assert_eq!(get(&stop_limit, "type"), Some("STOP_LOSS_LIMIT"));
    assert_eq!(get(&stop_limit, "timeInForce"), Some("GTC"));
    assert_eq!(get(&stop_limit, "price"), Some("2500"));

    let tp = spot_place_order(&spec(
        "ETHUSDT",
        Side::Sell,
        OrderSpecKind::TakeProfitMarket { trigger: price },
        qty,
        TimeInForce::Gtc,
    ))
    .unwrap();
    assert_eq!(get(&tp, "type"), Some("TAKE_PROFIT"));

    let mut with_id = spec(
        "ETHUSDT",
        Side::Buy,
        OrderSpecKind::Market,
        qty,
        TimeInForce::Gtc,
    );
    with_id.client_order_id = "18446744073709551615".into();
    let r = spot_place_order(&with_id).unwrap();
    assert_eq!(get(&r, "newClientOrderId"), Some("18446744073709551615"));
}

#[test]
fn spot_refuses_what_it_cannot_express() {
    let qty = Fixed::from_raw(100_000_000);
    let mut reduce = spec(
        "ETHUSDT",
        Side::Sell,
        OrderSpecKind::Market,
        qty,
        TimeInForce::Gtc,
    );
    reduce.reduce_only = true;
    assert!(matches!(
        spot_place_order(&reduce),
        Err(BuildError::Unsupported(_))
    ));
    let stop_post_only = spec(
        "ETHUSDT",
        Side::Sell,
        OrderSpecKind::StopMarket {
            trigger: Fixed::ONE,
        },
        qty,
        TimeInForce::PostOnly,
    );
    assert!(matches!(
        spot_place_order(&stop_post_only),
        Err(BuildError::Unsupported(_))
    ));
    let zero = spec(
        "ETHUSDT",
        Side::Sell,
        OrderSpecKind::Market,
        Fixed::ZERO,
        TimeInForce::Gtc,
    );
    assert!(matches!(
        spot_place_order(&zero),
        Err(BuildError::Invalid(_))
    ));
    let mut bad_id = spec(
        "ETHUSDT",
        Side::Sell,
        OrderSpecKind::Market,
        qty,
        TimeInForce::Gtc,
    );
    bad_id.client_order_id = "has space".into();
    assert!(matches!(
        spot_place_order(&bad_id),
        Err(BuildError::Invalid(_))
    ));
    bad_id.client_order_id = "x".repeat(37);
    assert!(matches!(
        spot_place_order(&bad_id),
        Err(BuildError::Invalid(_))
    ));
}

#[test]
fn usdm_conditional_orders_use_the_algo_api() {
    let qty = Fixed::from_raw(100_000);
    let trigger = Fixed::from_raw(4_500_000_000_000);
    let mut stop = spec(
        "BTCUSDT",
        Side::Sell,
        OrderSpecKind::StopMarket { trigger },
        qty,
        TimeInForce::Gtc,
    );
    stop.reduce_only = true;
    stop.client_order_id = "42".into();
    let r = usdm_place_order(&stop).unwrap();
    assert_eq!(
        (r.method, r.path.as_str()),
        (Method::Post, "/fapi/v1/algoOrder")
    );
    assert_eq!(get(&r, "algoType"), Some("CONDITIONAL"));
    assert_eq!(get(&r, "type"), Some("STOP_MARKET"));
    assert_eq!(get(&r, "triggerPrice"), Some("45000"));
    assert_eq!(get(&r, "quantity"), Some("0.001"));
    assert_eq!(get(&r, "reduceOnly"), Some("true"));
    assert_eq!(get(&r, "clientAlgoId"), Some("42"));
    assert_eq!(get(&r, "newClientOrderId"), None);
    assert_eq!(get(&r, "stopPrice"), None);
    assert!(r.signed && !r.retry_safe);

    let tp = usdm_place_order(&spec(
        "BTCUSDT",
        Side::Sell,
        OrderSpecKind::TakeProfitMarket { trigger },
        qty,
        TimeInForce::Gtc,
    ))
    .unwrap();
    assert_eq!(get(&tp, "type"), Some("TAKE_PROFIT_MARKET"));
    assert_eq!(get(&tp, "timeInForce"), None);

    let stop_limit = usdm_place_order(&spec(
        "BTCUSDT",
        Side::Buy,
        OrderSpecKind::StopLimit {
            trigger,
            price: Fixed::from_raw(4_510_000_000_000),
        },
        qty,
        TimeInForce::Ioc,
    ))
    .unwrap();
    assert_eq!(get(&stop_limit, "type"), Some("STOP"));
    assert_eq!(get(&stop_limit, "price"), Some("45100"));
    assert_eq!(get(&stop_limit, "timeInForce"), Some("IOC"));

    let gtx = usdm_place_order(&spec(
        "BTCUSDT",
        Side::Buy,
        OrderSpecKind::Limit {
            price: Fixed::from_raw(4_510_000_000_000),
        },
        qty,
        TimeInForce::PostOnly,
    ))
    .unwrap();
    assert_eq!(get(&gtx, "timeInForce"), Some("GTX"));
    assert_eq!(gtx.path, "/fapi/v1/order");
}

#[test]
fn cancels_queries_and_account_requests() {
    let s = sym("BTCUSDT");
    let r = spot_cancel_order(&s, OrderRef::Client("123")).unwrap();
    assert_eq!(
        (r.method, r.path.as_str(), r.weight),
        (Method::Delete, "/api/v3/order", 1)
    );
    assert_eq!(get(&r, "origClientOrderId"), Some("123"));
    assert!(r.retry_safe);
    let r = spot_cancel_order(&s, OrderRef::Venue("28")).unwrap();
    assert_eq!(get(&r, "orderId"), Some("28"));
    assert!(spot_cancel_order(&s, OrderRef::Venue("abc")).is_err());
    assert!(spot_cancel_order(&s, OrderRef::Client("")).is_err());

    let r = spot_cancel_all(&s);
    assert_eq!(
        (r.method, r.path.as_str(), r.weight),
        (Method::Delete, "/api/v3/openOrders", 1)
    );
    let r = spot_query_order(&s, OrderRef::Venue("1")).unwrap();
    assert_eq!(
        (r.method, r.path.as_str(), r.weight),
        (Method::Get, "/api/v3/order", 4)
    );
    assert_eq!(spot_open_orders(Some(&s)).weight, 6);
    assert_eq!(spot_open_orders(None).weight, 80);
    let r = spot_account();
    assert_eq!(
        (r.path.as_str(), r.weight, r.signed),
        ("/api/v3/account", 20, true)
    );
    let r = spot_exchange_info(None);
    assert_eq!(
        (r.path.as_str(), r.weight, r.signed),
        ("/api/v3/exchangeInfo", 20, false)
    );
    assert_eq!(spot_server_time().path, "/api/v3/time");

    let r = usdm_cancel_order(&s, OrderRef::Client("7")).unwrap();
    assert_eq!((r.path.as_str(), r.weight), ("/fapi/v1/order", 1));
    let r = usdm_cancel_algo_order(OrderRef::Venue("2148719")).unwrap();
    assert_eq!(
        (r.method, r.path.as_str()),
        (Method::Delete, "/fapi/v1/algoOrder")
    );
    assert_eq!(get(&r, "algoid"), Some("2148719")); // as the docs' parameter table spells it
    assert_eq!(usdm_cancel_all(&s).path, "/fapi/v1/allOpenOrders");
    assert_eq!(usdm_cancel_all_algo(&s).path, "/fapi/v1/algoOpenOrders");
    let r = usdm_countdown_cancel_all(&s, 120_000);
    assert_eq!(
        (r.method, r.path.as_str(), r.weight),
        (Method::Post, "/fapi/v1/countdownCancelAll", 10)
    );
    assert_eq!(get(&r, "countdownTime"), Some("120000"));
    assert_eq!(
        usdm_query_order(&s, OrderRef::Venue("1")).unwrap().weight,
        1
    );
    assert_eq!(usdm_open_orders(None).weight, 40);
    let r = usdm_position_risk(Some(&s));
    assert_eq!((r.path.as_str(), r.weight), ("/fapi/v3/positionRisk", 5));
    let r = usdm_balance();
    assert_eq!((r.path.as_str(), r.weight), ("/fapi/v3/balance", 5));
    assert_eq!(usdm_exchange_info().weight, 1);
    let r = usdm_listen_key_create();
    assert_eq!(
        (r.method, r.path.as_str(), r.weight),
        (Method::Post, "/fapi/v1/listenKey", 1)
    );
    assert_eq!(usdm_listen_key_keepalive().method, Method::Put);
}

#[test]
fn klines_and_depth_paging_and_weights() {
    let s = sym("BTCUSDT");
    let r = spot_klines(
        &s,
        "1m",
        Some(1634943780000),
        Some(1634944379999),
        Some(1000),
    )
    .unwrap();
    assert_eq!(
        query_string(&r.query),
        "symbol=BTCUSDT&interval=1m&startTime=1634943780000&endTime=1634944379999&limit=1000"
    );
    assert_eq!(r.weight, 2);
    assert!(spot_klines(&s, "7m", None, None, None).is_err());
    assert!(spot_klines(&s, "1m", None, None, Some(1001)).is_err());
    // USD-M kline weight by limit: [1,100) 1, [100,500) 2, [500,1000] 5, >1000 10.
    let w = |l| usdm_klines(&s, "1h", None, None, Some(l)).unwrap().weight;
    assert_eq!(
        (w(99), w(100), w(499), w(500), w(1000), w(1001), w(1500)),
        (1, 2, 2, 5, 5, 10, 10)
    );
    assert_eq!(usdm_klines(&s, "1h", None, None, None).unwrap().weight, 5); // default 500
    assert!(usdm_klines(&s, "1s", None, None, None).is_err());
    assert!(usdm_klines(&s, "1h", None, None, Some(1501)).is_err());
    // Spot depth weight by limit: 1-100 5, 101-500 25, 501-1000 50, 1001-5000 250.
    let d = |l| spot_depth(&s, l).unwrap().weight;
    assert_eq!(
        (d(100), d(101), d(500), d(1000), d(5000)),
        (5, 25, 25, 50, 250)
    );
    assert!(spot_depth(&s, 5001).is_err());
    let u = |l| usdm_depth(&s, l).unwrap().weight;
    assert_eq!((u(5), u(50), u(100), u(500), u(1000)), (2, 2, 5, 10, 20));
    assert!(usdm_depth(&s, 30).is_err());
}

#[test]
fn ws_api_signature_payload_sorts_parameters() {
    let v = vector("binance_spot_ws_api_hmac_ascii");
    // The documented order.place request lists its parameters unsorted.
    let params = [
        ("symbol", "BTCUSDT"),
        ("side", "SELL"),
        ("type", "LIMIT"),
        ("timeInForce", "GTC"),
        ("quantity", "0.01000000"),
        ("price", "52000.00"),
        ("recvWindow", "100"),
        ("timestamp", "1645423376532"),
        (
            "apiKey",
            "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
        ),
    ];
    let payload = ws_api_signature_payload(&params);
    assert_eq!(payload, v["payload"].as_str().unwrap());
    assert_eq!(
        hmac_hex(v["secret"].as_str().unwrap(), &payload),
        v["expected"]
    );

    assert_eq!(
        spot_user_stream_signature_payload("KEY", 1747385641636),
        "apiKey=KEY&timestamp=1747385641636"
    );
    let req: Value = serde_json::from_str(&spot_user_stream_subscribe_request(
        "1",
        "KEY",
        1747385641636,
        "SIG",
    ))
    .unwrap();
    assert_eq!(req["method"], "userDataStream.subscribe.signature");
    assert_eq!(req["params"]["apiKey"], "KEY");
    assert_eq!(req["params"]["timestamp"], 1747385641636_i64);
    assert_eq!(req["params"]["signature"], "SIG");
}

#[test]
fn usdm_stream_routes() {
    // Public: book tickers and depth; market: everything else (Binance's routing notice).
    let s = sym("BTCUSDT");
    assert_eq!(usdm_route(&book_ticker_stream(&s)), UsdmRoute::Public);
    assert_eq!(usdm_route("!bookTicker"), UsdmRoute::Public);
    assert_eq!(usdm_route(&depth_stream(&s, true)), UsdmRoute::Public);
    assert_eq!(usdm_route("btcusdt@depth20@100ms"), UsdmRoute::Public);
    assert_eq!(usdm_route(&kline_stream(&s, "1m")), UsdmRoute::Market);
    assert_eq!(usdm_route(&trade_stream(&s)), UsdmRoute::Market);
    assert_eq!(usdm_route(&mark_price_stream(&s, true)), UsdmRoute::Market);
    assert_eq!(usdm_route("!markPrice@arr"), UsdmRoute::Market);

    let urls = usdm_stream_urls(&[
        "bnbusdt@aggTrade".to_string(),
        "btcusdt@depth".to_string(),
        "btcusdt@markPrice".to_string(),
    ]);
    assert_eq!(
        urls,
        vec![
            (
                UsdmRoute::Public,
                "wss://fstream.binance.com/public/stream?streams=btcusdt@depth".to_string()
            ),
            (
                UsdmRoute::Market,
                "wss://fstream.binance.com/market/stream?streams=bnbusdt@aggTrade/btcusdt@markPrice"
                    .to_string()
            ),
        ]
    );
    assert_eq!(
        usdm_private_url("abc", &["ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE"]),
        "wss://fstream.binance.com/private/ws?listenKey=abc&events=ORDER_TRADE_UPDATE/ACCOUNT_UPDATE"
    );
    assert_eq!(
        spot_stream_url(&[kline_stream(&s, "1m"), trade_stream(&s)]),
        "wss://stream.binance.com:9443/stream?streams=btcusdt@kline_1m/btcusdt@trade"
    );
}

#[test]
fn query_string_percent_encodes_values() {
    let q = vec![("newClientOrderId".to_string(), "a:b/c d".to_string())];
    assert_eq!(query_string(&q), "newClientOrderId=a%3Ab%2Fc%20d");
}
