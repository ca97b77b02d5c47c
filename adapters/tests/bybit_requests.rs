//! Bybit request builders against the documented request examples (Bybit v5 API docs; the
//! WebSocket ones are in `data/bybit_docs`).

use keel_adapters::bybit::{self, Category, DcpProduct, Network, OrderRef};
use keel_adapters::model::{Method, OrderSpec, OrderSpecKind, RestRequest, TimeInForce};
use keel_engine::candle::Interval;
use keel_engine::event::Side;
use keel_engine::fixed::Fixed;
use keel_engine::symbol::Symbol;
use serde_json::Value;

macro_rules! data {
    ($p:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/", $p))
    };
}

fn fx(s: &str) -> Fixed {
    Fixed::parse_exact(s).unwrap()
}

fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

fn body(r: &RestRequest) -> Value {
    json(r.body.as_deref().unwrap())
}

/// Documented examples spell "not given" as `null`; the builders leave the key out.
fn without_nulls(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.retain(|_, x| !x.is_null());
    }
    v
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

#[test]
fn spot_post_only_matches_doc_example() {
    // Place Order docs, "Spot PostOnly normal order".
    let doc = json(
        r#"{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.1","price":"15600","timeInForce":"PostOnly","orderLinkId":"spot-test-01","isLeverage":0,"orderFilter":"Order"}"#,
    );
    let mut s = spec(
        "BTCUSDT",
        "spot-test-01",
        Side::Buy,
        OrderSpecKind::Limit { price: fx("15600") },
        "0.1",
    );
    s.time_in_force = TimeInForce::PostOnly;
    let r = bybit::place_order(Category::Spot, &s).unwrap();
    assert_eq!(body(&r), doc);
    assert_eq!(
        (r.method, r.path.as_str()),
        (Method::Post, "/v5/order/create")
    );
    assert!(r.signed && r.retry_safe && r.query.is_empty());
}

#[test]
fn linear_reduce_only_matches_doc_example() {
    // Place Order docs, "USDT Perp close long position (one-way mode)".
    let doc = json(
        r#"{"category": "linear", "symbol": "BTCUSDT", "side": "Sell", "orderType": "Limit", "qty": "1", "price": "30000", "timeInForce": "GTC", "positionIdx": 0, "orderLinkId": "usdt-test-02", "reduceOnly": true}"#,
    );
    let mut s = spec(
        "BTCUSDT",
        "usdt-test-02",
        Side::Sell,
        OrderSpecKind::Limit { price: fx("30000") },
        "1",
    );
    s.reduce_only = true;
    assert_eq!(
        body(&bybit::place_order(Category::Linear, &s).unwrap()),
        doc
    );
}

#[test]
fn ws_order_create_matches_doc_example() {
    let doc = json(data!(
        "bybit_docs/v5/websocket/trade/guideline/003_request_example.json"
    ));
    let mut s = spec(
        "ETHUSDT",
        "",
        Side::Buy,
        OrderSpecKind::Limit { price: fx("2800") },
        "0.2",
    );
    s.time_in_force = TimeInForce::PostOnly;
    let msg = json(
        &bybit::ws_order_create("test-005", 1711001595207, 8000, Category::Linear, &s).unwrap(),
    );
    assert_eq!(msg["reqId"], doc["reqId"]);
    assert_eq!(msg["op"], doc["op"]);
    assert_eq!(
        msg["header"]["X-BAPI-TIMESTAMP"],
        doc["header"]["X-BAPI-TIMESTAMP"]
    );
    assert_eq!(
        msg["header"]["X-BAPI-RECV-WINDOW"],
        doc["header"]["X-BAPI-RECV-WINDOW"]
    );
    // Same order fields, plus the two keel always states for linear.
    let mut args = msg["args"][0].clone();
    let extra = args.as_object_mut().unwrap();
    assert_eq!(extra.remove("positionIdx"), Some(Value::from(0)));
    assert_eq!(extra.remove("reduceOnly"), Some(Value::from(false)));
    assert_eq!(args, doc["args"][0]);
}

#[test]
fn spot_market_order_is_in_base_units() {
    let s = spec("BTCUSDT", "k-1", Side::Buy, OrderSpecKind::Market, "0.01");
    let b = body(&bybit::place_order(Category::Spot, &s).unwrap());
    assert_eq!(b["marketUnit"], "baseCoin");
    assert_eq!(b["orderType"], "Market");
    assert_eq!(b["qty"], "0.01");
    assert!(b.get("timeInForce").is_none() && b.get("price").is_none());
    assert_eq!(b["orderFilter"], "Order");
}

#[test]
fn trigger_directions_match_recorded_orders() {
    // Each recorded conditional order's side, kind and triggerDirection (1 rise, 2 fall).
    let cases = [
        (
            "bybit/ws_account_order_buy_stop_market.json",
            Side::Buy,
            false,
            1,
        ),
        (
            "bybit/ws_account_order_stop_market.json",
            Side::Sell,
            false,
            2,
        ),
        (
            "bybit/ws_account_order_market_if_touched.json",
            Side::Buy,
            true,
            2,
        ),
        (
            "bybit/ws_account_order_sell_market_if_touched.json",
            Side::Sell,
            true,
            1,
        ),
    ];
    let texts = [
        data!("bybit/ws_account_order_buy_stop_market.json"),
        data!("bybit/ws_account_order_stop_market.json"),
        data!("bybit/ws_account_order_market_if_touched.json"),
        data!("bybit/ws_account_order_sell_market_if_touched.json"),
    ];
    for ((name, side, take_profit, dir), text) in cases.into_iter().zip(texts) {
        let recorded = json(text);
        assert_eq!(recorded["data"][0]["triggerDirection"], dir, "{name}");
        let trigger = fx(recorded["data"][0]["triggerPrice"].as_str().unwrap());
        let kind = if take_profit {
            OrderSpecKind::TakeProfitMarket { trigger }
        } else {
            OrderSpecKind::StopMarket { trigger }
        };
        let b = body(
            &bybit::place_order(Category::Linear, &spec("BTCUSDT", "k-2", side, kind, "0.1"))
                .unwrap(),
        );
        assert_eq!(b["triggerDirection"], dir, "{name}");
        assert_eq!(fx(b["triggerPrice"].as_str().unwrap()), trigger, "{name}");
        assert_eq!(b["orderType"], "Market");
    }
}

#[test]
fn spot_stop_is_a_stop_order_without_direction() {
    let s = spec(
        "BTCUSDT",
        "k-3",
        Side::Sell,
        OrderSpecKind::StopLimit {
            trigger: fx("15000"),
            price: fx("14900"),
        },
        "0.1",
    );
    let b = body(&bybit::place_order(Category::Spot, &s).unwrap());
    assert_eq!(b["orderFilter"], "StopOrder");
    assert_eq!(
        (b["triggerPrice"].as_str(), b["price"].as_str()),
        (Some("15000"), Some("14900"))
    );
    assert!(b.get("triggerDirection").is_none());
}

#[test]
fn invalid_orders_are_refused() {
    let good = spec("BTCUSDT", "ok_id-1", Side::Buy, OrderSpecKind::Market, "1");
    let mut s = good.clone();
    s.reduce_only = true;
    assert!(bybit::place_order(Category::Spot, &s).is_err());
    let mut s = good.clone();
    s.client_order_id = "has space".into();
    assert!(bybit::place_order(Category::Linear, &s).is_err());
    let mut s = good.clone();
    s.client_order_id = "x".repeat(37);
    assert!(bybit::place_order(Category::Linear, &s).is_err());
    let mut s = good.clone();
    s.qty = Fixed::ZERO;
    assert!(bybit::place_order(Category::Linear, &s).is_err());
    let mut s = good.clone();
    s.time_in_force = TimeInForce::PostOnly;
    assert!(bybit::place_order(Category::Linear, &s).is_err());
    let mut s = good;
    s.client_order_id = String::new();
    let r = bybit::place_order(Category::Linear, &s).unwrap();
    assert!(!r.retry_safe);
    assert!(body(&r).get("orderLinkId").is_none());
}

#[test]
fn cancel_matches_doc_example() {
    // Cancel Order docs request example.
    let doc = json(
        r#"{"category": "linear", "symbol": "BTCPERP", "orderLinkId": null, "orderId":"c6f055d9-7f21-4079-913d-e6523a9cfffa"}"#,
    );
    let r = bybit::cancel_order(
        Category::Linear,
        &sym("BTCPERP"),
        OrderRef::Venue("c6f055d9-7f21-4079-913d-e6523a9cfffa"),
        false,
    );
    assert_eq!(body(&r), without_nulls(doc));
    assert_eq!(r.path, "/v5/order/cancel");
    let spot_stop = bybit::cancel_order(
        Category::Spot,
        &sym("BTCUSDT"),
        OrderRef::Client("k-3"),
        true,
    );
    assert_eq!(
        body(&spot_stop),
        json(
            r#"{"category":"spot","symbol":"BTCUSDT","orderLinkId":"k-3","orderFilter":"StopOrder"}"#
        )
    );
}

#[test]
fn cancel_all_matches_doc_example() {
    // Cancel All Orders docs request example.
    let doc = json(r#"{"category": "linear", "symbol": null, "settleCoin": "USDT"}"#);
    let linear = bybit::cancel_all(Category::Linear, None);
    assert_eq!(linear.len(), 1);
    assert_eq!(body(&linear[0]), without_nulls(doc));
    assert_eq!(linear[0].path, "/v5/order/cancel-all");
    let spot = bybit::cancel_all(Category::Spot, Some(&sym("BTCUSDT")));
    let filters: Vec<Value> = spot
        .iter()
        .map(|r| body(r)["orderFilter"].clone())
        .collect();
    assert_eq!(
        filters,
        vec![Value::from("Order"), Value::from("StopOrder")]
    );
}

fn query(r: &RestRequest) -> Vec<(&str, &str)> {
    r.query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[test]
fn open_orders_and_query() {
    // Docs: GET /v5/order/realtime?symbol=ETHUSDT&category=linear&openOnly=0&limit=1
    let r = bybit::open_orders(Category::Linear, Some(&sym("ETHUSDT")), None);
    assert_eq!(
        (r.method, r.path.as_str()),
        (Method::Get, "/v5/order/realtime")
    );
    let q = query(&r);
    for pair in [
        ("symbol", "ETHUSDT"),
        ("category", "linear"),
        ("openOnly", "0"),
    ] {
        assert!(q.contains(&pair), "{pair:?} in {q:?}");
    }
    assert!(r.signed && r.body.is_none());
    let all = bybit::open_orders(Category::Linear, None, Some("abc"));
    assert!(query(&all).contains(&("settleCoin", "USDT")));
    assert!(query(&all).contains(&("cursor", "abc")));
    let one = bybit::query_order(Category::Spot, &sym("BTCUSDT"), OrderRef::Client("k-9"));
    assert_eq!(
        query(&one),
        vec![
            ("category", "spot"),
            ("symbol", "BTCUSDT"),
            ("orderLinkId", "k-9")
        ]
    );
}

#[test]
fn account_queries() {
    let w = bybit::wallet_balance();
    assert_eq!(
        (w.path.as_str(), query(&w)),
        (
            "/v5/account/wallet-balance",
            vec![("accountType", "UNIFIED")]
        )
    );
    let p = bybit::positions(None, None);
    assert_eq!(p.path, "/v5/position/list");
    assert!(
        query(&p).contains(&("category", "linear")) && query(&p).contains(&("settleCoin", "USDT"))
    );
    let e = bybit::executions(
        Category::Linear,
        Some(&sym("BTCUSDT")),
        Some(1672282722429),
        None,
    );
    assert_eq!(e.path, "/v5/execution/list");
    assert!(query(&e).contains(&("startTime", "1672282722429")));
    let h = bybit::order_history(Category::Spot, None, None);
    assert_eq!(h.path, "/v5/order/history");
}

#[test]
fn market_queries() {
    // Docs: GET /v5/market/kline?category=inverse&symbol=BTCUSD&interval=60&start=1670601600000&end=1670608800000
    let k = bybit::klines(
        Category::Linear,
        &sym("BTCUSD"),
        Interval::parse("1h").unwrap(),
        Some(1670601600000),
        Some(1670608800000),
        200,
    )
    .unwrap();
    assert_eq!((k.path.as_str(), k.signed), ("/v5/market/kline", false));
    let q = query(&k);
    for pair in [
        ("symbol", "BTCUSD"),
        ("interval", "60"),
        ("start", "1670601600000"),
        ("end", "1670608800000"),
    ] {
        assert!(q.contains(&pair), "{pair:?} in {q:?}");
    }
    assert!(
        bybit::klines(
            Category::Spot,
            &sym("BTCUSDT"),
            Interval::parse("2m").unwrap(),
            None,
            None,
            5
        )
        .is_err()
    );
    // Docs: GET /v5/market/instruments-info?category=linear&symbol=BTCUSDT
    let i = bybit::instruments_info(Category::Linear, Some(&sym("BTCUSDT")), None);
    assert_eq!(
        &query(&i)[..2],
        &[("category", "linear"), ("symbol", "BTCUSDT")]
    );
    assert!(!i.signed);
    let b = bybit::orderbook(Category::Spot, &sym("BTCUSDT"), 1000);
    assert_eq!(
        query(&b),
        vec![
            ("category", "spot"),
            ("symbol", "BTCUSDT"),
            ("limit", "200")
        ]
    );
}

#[test]
fn kline_intervals() {
    let code = |s: &str| bybit::kline_interval(Interval::parse(s).unwrap());
    assert_eq!(code("1m"), Some("1"));
    assert_eq!(code("15m"), Some("15"));
    assert_eq!(code("4h"), Some("240"));
    assert_eq!(code("12h"), Some("720"));
    assert_eq!(code("1d"), Some("D"));
    assert_eq!(code("1w"), Some("W"));
    assert_eq!(code("2m"), None);
    assert_eq!(
        bybit::topic_kline(Interval::parse("5m").unwrap(), &sym("BTCUSDT")).as_deref(),
        Some("kline.5.BTCUSDT")
    );
}

#[test]
fn dead_man_switch() {
    // Set DCP docs request example body: {"timeWindow": 40}; product defaults to OPTIONS, so
    // keel always names it.
    let r = bybit::set_dcp(DcpProduct::Derivatives, 40).unwrap();
    assert_eq!(
        (r.method, r.path.as_str()),
        (Method::Post, "/v5/order/disconnected-cancel-all")
    );
    assert_eq!(
        body(&r),
        json(r#"{"product":"DERIVATIVES","timeWindow":40}"#)
    );
    assert!(bybit::set_dcp(DcpProduct::Spot, 2).is_err());
    assert!(bybit::set_dcp(DcpProduct::Spot, 301).is_err());
    assert_eq!(bybit::dcp_topic(Category::Linear), "dcp.future");
    assert_eq!(DcpProduct::for_category(Category::Spot).as_str(), "SPOT");
}

#[test]
fn websocket_messages_match_doc_examples() {
    assert_eq!(
        json(&bybit::ws_subscribe(
            "test",
            &[
                "orderbook.1.BTCUSDT",
                "publicTrade.BTCUSDT",
                "orderbook.1.ETHUSDT"
            ]
        )),
        json(data!(
            "bybit_docs/v5/websocket/wss-authentication/008_understanding_websocket_filters.json"
        ))
    );
    assert_eq!(
        json(&bybit::ws_unsubscribe(
            "customised_id",
            &["publicTrade.ETHUSD"]
        )),
        json(data!(
            "bybit_docs/v5/websocket/wss-authentication/009_understanding_websocket_filters_unsubscription.json"
        ))
    );
    assert_eq!(
        json(&bybit::ws_auth(
            "XXXXXX",
            1711010121452,
            "ec71040eff72b163a36153d770b69d6637bcb29348fbfbb16c269a76595ececf"
        )),
        json(data!(
            "bybit_docs/v5/websocket/trade/guideline/001_request_example.json"
        ))
    );
    // Connect docs: {"req_id": "100001", "op": "ping"}.
    assert_eq!(
        json(&bybit::ws_ping("100001")),
        json(r#"{"req_id": "100001", "op": "ping"}"#)
    );
    // Connect docs (python): f"GET/realtime{expires}".
    assert_eq!(
        bybit::ws_auth_payload(1662350400000),
        "GET/realtime1662350400000"
    );
    // Odd characters stay valid JSON.
    let odd = bybit::ws_subscribe("a\"b\\c\n", &["x\u{1}y"]);
    assert_eq!(json(&odd)["req_id"], "a\"b\\c\n");
    assert_eq!(json(&odd)["args"][0], "x\u{1}y");
    let cancel = json(&bybit::ws_order_cancel(
        "r-1",
        1711001595207,
        5000,
        &sym("ETHUSDT"),
        Category::Linear,
        OrderRef::Client("k-1"),
    ));
    assert_eq!(cancel["op"], "order.cancel");
    assert_eq!(
        cancel["args"][0],
        json(r#"{"category":"linear","symbol":"ETHUSDT","orderLinkId":"k-1"}"#)
    );
}

#[test]
fn urls_from_connect_docs() {
    assert_eq!(
        bybit::ws_public_url(Network::Mainnet, Category::Spot),
        "wss://stream.bybit.com/v5/public/spot"
    );
    assert_eq!(
        bybit::ws_public_url(Network::Mainnet, Category::Linear),
        "wss://stream.bybit.com/v5/public/linear"
    );
    assert_eq!(
        bybit::ws_public_url(Network::Testnet, Category::Spot),
        "wss://stream-testnet.bybit.com/v5/public/spot"
    );
    assert_eq!(
        bybit::ws_public_url(Network::Testnet, Category::Linear),
        "wss://stream-testnet.bybit.com/v5/public/linear"
    );
    assert_eq!(
        bybit::ws_private_url(Network::Mainnet),
        "wss://stream.bybit.com/v5/private"
    );
    assert_eq!(
        bybit::ws_private_url(Network::Testnet),
        "wss://stream-testnet.bybit.com/v5/private"
    );
    assert_eq!(
        bybit::ws_trade_url(Network::Mainnet),
        "wss://stream.bybit.com/v5/trade"
    );
    assert_eq!(
        bybit::ws_trade_url(Network::Testnet),
        "wss://stream-testnet.bybit.com/v5/trade"
    );
    // Request examples use Host: api-testnet.bybit.com (and api.bybit.com for mainnet).
    assert_eq!(
        bybit::rest_base_url(Network::Testnet),
        "https://api-testnet.bybit.com"
    );
    assert_eq!(
        bybit::rest_base_url(Network::Mainnet),
        "https://api.bybit.com"
    );
}
