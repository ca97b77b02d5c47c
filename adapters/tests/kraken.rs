//! Kraken spot codec tests. Expected values are the literals in the recorded payloads under
//! `tests/data/kraken/` (nautilus captures) or in Kraken's API documentation examples.
//! Epoch seconds for RFC 3339 times were computed outside the program (`date -u -d ... +%s`).

use keel_adapters::kraken;
use keel_adapters::model::{
    Control, DecodeError, Method, OrderSpec, OrderSpecKind, OrderState, OrderType, TimeInForce,
    VenueError, VenueEvent,
};
use keel_engine::candle::Interval;
use keel_engine::event::{Liquidity, Side};
use keel_engine::fixed::Fixed;
use keel_engine::symbol::Symbol;
use serde_json::Value;

macro_rules! data {
    ($f:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/kraken/",
            $f
        ))
    };
}

fn fx(s: &str) -> Fixed {
    Fixed::parse_exact(s).unwrap()
}

fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

fn decode(text: &str) -> Vec<VenueEvent> {
    kraken::decode(text).unwrap_or_else(|e| panic!("decode failed: {e}"))
}

const S: i64 = 1_000_000_000;

// ---------------------------------------------------------------------------------------------
// WebSocket v2, public

#[test]
fn ohlc_update() {
    let ev = decode(data!("ws_ohlc_update.json"));
    let VenueEvent::Candle { candle, closed } = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(candle.symbol, sym("BTC/USD"));
    // "2023-10-04T16:25:00.000000000Z" = 1696436700 s
    assert_eq!(candle.open_time_ns, 1696436700 * S);
    assert_eq!(candle.interval_ns, 60 * S, "interval 1 (minutes)");
    assert_eq!(candle.open, fx("106038.2"));
    assert_eq!(candle.high, fx("106044.3"));
    assert_eq!(candle.low, fx("106038.1"));
    assert_eq!(candle.close, fx("106040.1"));
    assert_eq!(candle.volume, fx("30927.68066226"));
    assert!(!closed, "an update is the bar in progress");
}

#[test]
fn ohlc_snapshot_closes_all_but_the_latest_bar() {
    let one = data!("ws_ohlc_update.json");
    let two = one
        .replace("\"update\"", "\"snapshot\"")
        .replace(
            "\"trades\": 12\n    }",
            "\"trades\": 12\n    },\n    {\"symbol\": \"BTC/USD\", \"interval\": 1, \"interval_begin\": \"2023-10-04T16:26:00.000000000Z\", \"open\": 106040.1, \"high\": 106040.1, \"low\": 106040.1, \"close\": 106040.1, \"volume\": 0, \"vwap\": 0, \"trades\": 0}",
        );
    let ev = decode(&two);
    assert_eq!(ev.len(), 2);
    assert!(matches!(ev[0], VenueEvent::Candle { closed: true, .. }));
    assert!(matches!(ev[1], VenueEvent::Candle { closed: false, .. }));
}

#[test]
fn trade_update() {
    let ev = decode(data!("ws_trade_update.json"));
    assert_eq!(ev.len(), 2);
    let VenueEvent::Trade(t) = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(t.symbol, sym("BTC/USD"));
    assert_eq!(t.price, fx("105944.20"));
    assert_eq!(t.qty, fx("0.00027625"));
    assert_eq!(t.aggressor, Side::Buy);
    assert_eq!(t.trade_id, 10218208);
    // "2023-10-06T17:35:55.440295Z" = 1696613755 s + 440295 µs
    assert_eq!(t.ts_event_ns, 1696613755 * S + 440_295_000);
    let VenueEvent::Trade(t) = &ev[1] else {
        panic!()
    };
    assert_eq!(t.aggressor, Side::Sell);
    assert_eq!(t.ts_event_ns, 1696613756 * S + 123_456_000);
}

#[test]
fn ticker_is_a_book_ticker() {
    let ev = decode(data!("ws_ticker_snapshot.json"));
    let VenueEvent::BookTicker(b) = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(b.symbol, sym("BTC/USD"));
    assert_eq!((b.bid, b.bid_qty), (fx("105944.20"), fx("2.5")));
    assert_eq!((b.ask, b.ask_qty), (fx("105944.30"), fx("3.2")));
    // "2022-12-25T09:30:59.123456Z" = 1671960659 s
    assert_eq!(b.ts_event_ns, 1671960659 * S + 123_456_000);
}

#[test]
fn book_snapshot_and_update_expose_the_checksum() {
    let ev = decode(data!("ws_book_snapshot.json"));
    let VenueEvent::Depth(d) = &ev[0] else {
        panic!("{ev:?}")
    };
    assert!(d.snapshot);
    assert_eq!(d.symbol, sym("BTC/USD"));
    assert_eq!(d.checksum, Some(2439117997));
    assert_eq!(
        d.bids,
        [
            (fx("105944.20"), fx("0.136")),
            (fx("105935.40"), fx("0.024")),
            (fx("105920.10"), fx("0.052"))
        ]
    );
    assert_eq!(d.asks[2], (fx("105955.80"), fx("0.003")));
    assert_eq!(
        (d.first_update_id, d.last_update_id, d.prev_last_update_id),
        (0, 0, None)
    );

    let ev = decode(data!("ws_book_update.json"));
    let VenueEvent::Depth(d) = &ev[0] else {
        panic!("{ev:?}")
    };
    assert!(!d.snapshot);
    assert_eq!(d.bids, [(fx("105944.20"), fx("0.250"))]);
    assert!(d.asks.is_empty());
    assert_eq!(d.checksum, Some(2114181697));
}

#[test]
fn numbers_keep_their_exact_digits() {
    // A quantity f64 cannot hold exactly keeps its text: 0.1 + 8 digits.
    let text = data!("ws_trade_update.json").replace("0.00027625", "12345678.12345679");
    let VenueEvent::Trade(t) = &decode(&text)[0] else {
        panic!()
    };
    assert_eq!(t.qty, fx("12345678.12345679"));
    // More than 8 decimals in a price is refused, not rounded.
    let text = data!("ws_trade_update.json").replace("105944.20", "105944.123456789");
    assert!(matches!(
        kraken::decode(&text),
        Err(DecodeError::Malformed { .. })
    ));
}

#[test]
fn control_messages() {
    assert_eq!(
        decode(data!("ws_pong.json")),
        [VenueEvent::Control(Control::Pong)]
    );
    assert_eq!(
        decode(data!("ws_subscribe_response.json")),
        [VenueEvent::Control(Control::Subscribed {
            topic: "ticker:BTC/USD".into()
        })]
    );
    assert_eq!(
        decode(r#"{"channel":"heartbeat"}"#),
        [VenueEvent::Control(Control::Pong)]
    );
    // Kraken docs, status channel example.
    let ev = decode(
        r#"{"channel":"status","data":[{"api_version":"v2","connection_id":12393906104898154338,"system":"online","version":"2.0.0"}],"type":"update"}"#,
    );
    assert!(matches!(
        &ev[0],
        VenueEvent::Control(Control::Response { ok: true, .. })
    ));
    let ev = decode(
        r#"{"method":"subscribe","error":"Currency pair not supported XBT/USDX","success":false,"time_in":"2023-09-25T09:04:31.742599Z","time_out":"2023-09-25T09:04:31.742648Z"}"#,
    );
    assert!(
        matches!(&ev[0], VenueEvent::Control(Control::SubscribeFailed { reason, .. }) if reason == "Currency pair not supported XBT/USDX")
    );
}

#[test]
fn order_method_responses() {
    assert_eq!(
        decode(data!("ws_add_order_response_success.json")),
        [VenueEvent::Control(Control::Response {
            id: "42".into(),
            ok: true,
            detail: "add_order OABCDE-12345-FGHIJ".into()
        })]
    );
    let failure = data!("ws_add_order_response_failure.json");
    assert_eq!(
        decode(failure),
        [VenueEvent::Control(Control::Response {
            id: "99".into(),
            ok: false,
            detail: "EOrder:Insufficient funds".into()
        })]
    );
    assert_eq!(
        kraken::parse_error(200, failure, None),
        Some(VenueError::InsufficientBalance(
            "EOrder:Insufficient funds".into()
        ))
    );
    assert_eq!(
        decode(data!("ws_batch_add_response_partial.json")),
        [VenueEvent::Control(Control::Response {
            id: "45".into(),
            ok: false,
            detail: "O-B: EOrder:Invalid price".into()
        })]
    );
    for f in [
        data!("ws_add_order_request.json"),
        data!("ws_cancel_order_request.json"),
        data!("ws_amend_order_request.json"),
    ] {
        assert!(
            matches!(kraken::decode(f), Err(DecodeError::Unsupported(k)) if k.ends_with("request"))
        );
    }
}

// ---------------------------------------------------------------------------------------------
// WebSocket v2, private. No recorded executions/balances payloads exist in tests/data, so these
// use Kraken's documented examples and schema.

/// Kraken docs, executions channel "Example: Pending".
const EXEC_PENDING: &str = r#"{"channel":"executions","type":"update","data":[{"order_id":"OK4GJX-KSTLS-7DZZO5","order_userref":3,"symbol":"BTC/USD","order_qty":0.005,"cum_cost":0.0,"time_in_force":"GTC","exec_type":"pending_new","side":"sell","order_type":"limit","limit_price_type":"static","limit_price":26500.0,"stop_price":0.0,"order_status":"pending_new","fee_usd_equiv":0.0,"fee_ccy_pref":"fciq","timestamp":"2023-09-22T10:33:05.709950Z"}],"sequence":8}"#;

#[test]
fn executions_pending_order() {
    let ev = decode(EXEC_PENDING);
    assert_eq!(ev.len(), 1);
    let VenueEvent::Order(o) = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(o.symbol, sym("BTC/USD"));
    assert_eq!(o.venue_order_id, "OK4GJX-KSTLS-7DZZO5");
    assert_eq!(o.state, OrderState::New);
    assert_eq!(o.side, Side::Sell);
    assert_eq!(o.order_type, OrderType::Limit);
    assert_eq!(o.time_in_force, Some(TimeInForce::Gtc));
    assert_eq!(o.price, fx("26500.0"));
    assert_eq!(o.qty, fx("0.005"));
    assert_eq!(o.trigger_price, Fixed::ZERO);
    // "2023-09-22T10:33:05.709950Z" = 1695378785 s
    assert_eq!(o.ts_event_ns, 1695378785 * S + 709_950_000);
}

#[test]
fn executions_trade_emits_order_and_fill() {
    // The documented trade-execution fields (exec_id, last_qty, last_price, liquidity_ind,
    // fees[{asset, qty}]) with values written here.
    let text = r#"{"channel":"executions","type":"update","data":[{"order_id":"OK4GJX-KSTLS-7DZZO5","cl_ord_id":"k1","exec_id":"TZX2WP-XSEOP-FP7WYR","exec_type":"trade","trade_id":365573,"symbol":"BTC/USD","side":"sell","last_qty":0.005,"last_price":26599.9,"liquidity_ind":"t","cost":132.9995,"order_userref":0,"order_status":"filled","order_type":"limit","cum_qty":0.005,"avg_price":26599.9,"fee_usd_equiv":0.3458,"fees":[{"asset":"USD","qty":0.3458}],"timestamp":"2023-09-22T10:33:05.709993Z"}],"sequence":20}"#;
    let ev = decode(text);
    assert_eq!(ev.len(), 2);
    let VenueEvent::Order(o) = &ev[0] else {
        panic!()
    };
    assert_eq!(o.state, OrderState::Filled);
    assert_eq!(o.filled_qty, fx("0.005"));
    assert_eq!(o.avg_price, fx("26599.9"));
    let VenueEvent::Fill(f) = &ev[1] else {
        panic!()
    };
    assert_eq!(f.trade_id, "TZX2WP-XSEOP-FP7WYR");
    assert_eq!(f.client_order_id, "k1");
    assert_eq!(f.side, Side::Sell);
    assert_eq!(f.price, fx("26599.9"));
    assert_eq!(f.qty, fx("0.005"));
    assert_eq!(f.fee, fx("0.3458"));
    assert_eq!(f.fee_asset, "USD");
    assert_eq!(f.liquidity, Liquidity::Taker);
    assert_eq!(f.ts_event_ns, 1695378785 * S + 709_993_000);
}

#[test]
fn sparse_execution_update_is_marked_unreported() {
    // Kraken docs, a cancel update carries no symbol or side.
    let text = r#"{"channel":"executions","type":"update","data":[{"timestamp":"2023-09-22T10:40:45.437848Z","order_status":"canceled","exec_type":"canceled","order_userref":0,"order_id":"OK4GJX-KSTLS-7DZZO5","cum_qty":0.0,"cum_cost":0.0,"fee_usd_equiv":0.0,"avg_price":0.0,"cancel_reason":"User requested","reason":"User requested"}],"sequence":9}"#;
    let VenueEvent::Order(o) = &decode(text)[0] else {
        panic!()
    };
    assert_eq!(o.symbol, sym(kraken::UNREPORTED_SYMBOL));
    assert_eq!(o.state, OrderState::Canceled);
    assert_eq!(o.reason, "User requested");
    // A trade without its symbol is not a usable fill.
    let text = r#"{"channel":"executions","type":"update","data":[{"order_id":"O1","exec_id":"T1","exec_type":"trade","last_qty":1,"last_price":2,"timestamp":"2023-09-22T10:40:45Z"}]}"#;
    assert!(matches!(
        kraken::decode(text),
        Err(DecodeError::Malformed { .. })
    ));
}

#[test]
fn balances_channel() {
    // Kraken docs, balances snapshot and update shapes.
    let snap = r#"{"channel":"balances","type":"snapshot","data":[{"asset":"BTC","asset_class":"currency","balance":1.2,"wallets":[{"type":"spot","id":"main","balance":1.2}]},{"asset":"USD","asset_class":"currency","balance":1000.5,"wallets":[]}],"sequence":1}"#;
    let ev = decode(snap);
    assert_eq!(ev.len(), 2);
    let VenueEvent::Balance(b) = &ev[1] else {
        panic!()
    };
    assert_eq!(b.asset, "USD");
    assert_eq!(b.free, fx("1000.5"));
    let update = r#"{"channel":"balances","type":"update","data":[{"ledger_id":"DATKX6-PEHL1-HZKND8","ref_id":"LKAKN2-N3N3N-TF2DXU","timestamp":"2023-10-06T17:35:55.440295Z","type":"trade","asset":"USD","asset_class":"currency","category":"trade","wallet_type":"spot","wallet_id":"main","amount":-19.9743,"fee":0.0499,"balance":118.0867}],"sequence":4}"#;
    let VenueEvent::Balance(b) = &decode(update)[0] else {
        panic!()
    };
    assert_eq!(b.free, fx("118.0867"));
    assert_eq!(b.ts_event_ns, 1696613755 * S + 440_295_000);
}

// ---------------------------------------------------------------------------------------------
// REST

#[test]
fn rest_ohlc_infers_the_interval_and_leaves_the_last_bar_open() {
    let body = data!("http_ohlc.json");
    let ev = decode(body);
    assert_eq!(ev.len(), 721);
    let VenueEvent::Candle { candle, closed } = &ev[0] else {
        panic!()
    };
    assert_eq!(candle.symbol, sym("XBTUSDT"));
    assert_eq!(candle.open_time_ns, 1762777020 * S);
    assert_eq!(candle.interval_ns, 60 * S);
    assert_eq!(candle.open, fx("106038.2"));
    assert_eq!(candle.volume, fx("0.00000000"));
    assert!(*closed);
    let VenueEvent::Candle { candle, closed } = &ev[720] else {
        panic!()
    };
    assert_eq!(candle.open_time_ns, 1762820220 * S);
    assert_eq!(candle.close, fx("105899.4"));
    assert!(!closed, "Kraken's last row is the uncommitted bar");
    assert_eq!(
        kraken::parse_ohlc(body, Interval::parse("1m").unwrap()).unwrap(),
        ev
    );
}

#[test]
fn rest_trades_keep_sub_second_times_exact() {
    let ev = decode(data!("http_trades.json"));
    assert_eq!(ev.len(), 1000);
    let VenueEvent::Trade(t) = &ev[0] else {
        panic!()
    };
    assert_eq!(t.symbol, sym("XBTUSDT"));
    assert_eq!(t.price, fx("105433.60000"));
    assert_eq!(t.qty, fx("0.00027625"));
    assert_eq!(t.ts_event_ns, 1762795433 * S + 971_744_500); // 1762795433.9717445
    assert_eq!(t.aggressor, Side::Buy);
    assert_eq!(t.trade_id, 10218208);
    let VenueEvent::Trade(t) = &ev[999] else {
        panic!()
    };
    assert_eq!(t.price, fx("105899.40000"));
    assert_eq!(t.aggressor, Side::Sell);
    assert_eq!(t.trade_id, 10219207);
    assert_eq!(t.ts_event_ns, 1762820035 * S + 982_277_900); // 1762820035.9822779
}

#[test]
fn rest_ticker_depth_balance() {
    let VenueEvent::BookTicker(b) = &decode(data!("http_ticker.json"))[0] else {
        panic!()
    };
    assert_eq!(b.symbol, sym("XBTUSDT"));
    assert_eq!((b.bid, b.bid_qty), (fx("105944.20000"), fx("1.000")));
    assert_eq!((b.ask, b.ask_qty), (fx("105944.30000"), fx("1.000")));

    let VenueEvent::Depth(d) = &decode(data!("http_order_book.json"))[0] else {
        panic!()
    };
    assert!(d.snapshot);
    assert_eq!(d.asks[0], (fx("105944.30000"), fx("0.136")));
    assert_eq!(d.bids[4], (fx("105916.70000"), fx("0.005")));
    assert_eq!(d.ts_event_ns, 1762820249 * S, "newest level time");

    let ev = decode(data!("http_spot_balance.json"));
    let mut got: Vec<(String, Fixed)> = ev
        .iter()
        .map(|e| match e {
            VenueEvent::Balance(b) => (b.asset.clone(), b.free),
            other => panic!("{other:?}"),
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("ETH".to_string(), fx("2.0")),
            ("XXBT".to_string(), fx("0.5")),
            ("ZUSD".to_string(), fx("200000.00"))
        ]
    );
}

#[test]
fn rest_orders_and_trade_history() {
    let ev = decode(data!("http_open_orders.json"));
    let orders: Vec<_> = ev
        .iter()
        .map(|e| match e {
            VenueEvent::Order(o) => o,
            other => panic!("{other:?}"),
        })
        .collect();
    let limit = orders
        .iter()
        .find(|o| o.venue_order_id == "O26VBY-ISGAE-JP5TLU")
        .unwrap();
    assert_eq!(limit.symbol, sym("XBTUSDT"));
    assert_eq!(limit.state, OrderState::New);
    assert_eq!(limit.order_type, OrderType::Limit);
    assert_eq!(limit.price, fx("29500.0"));
    assert_eq!(limit.qty, fx("0.50000000"));
    assert_eq!(limit.ts_event_ns, 1688583840 * S + 864_800_000); // opentm 1688583840.8648
    let stop = orders
        .iter()
        .find(|o| o.venue_order_id == "OYEQF4-FDE4C-NMUYUI")
        .unwrap();
    assert_eq!(stop.order_type, OrderType::StopMarket);
    assert_eq!(stop.side, Side::Sell);
    assert_eq!(stop.trigger_price, fx("1800.0"));

    let ev = decode(data!("http_closed_orders.json"));
    let VenueEvent::Order(o) = ev
        .iter()
        .find(|e| matches!(e, VenueEvent::Order(o) if o.venue_order_id == "O5KZFT-GH3AD-LP6TLU"))
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(o.state, OrderState::Filled);
    assert_eq!(o.filled_qty, fx("0.50000000"));
    assert_eq!(o.avg_price, fx("29500.0"));
    assert_eq!(o.reason, "User requested");
    assert_eq!(o.ts_event_ns, 1688590000 * S + 543_200_000); // closetm 1688590000.5432

    let ev = decode(data!("http_trades_history.json"));
    let VenueEvent::Fill(f) = ev
        .iter()
        .find(|e| matches!(e, VenueEvent::Fill(f) if f.trade_id == "TCCCTY-WJ6EO-4FP4VZ"))
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(f.venue_order_id, "O26VBY-ISGAE-JP5TLU");
    assert_eq!(f.side, Side::Buy);
    assert_eq!(f.price, fx("29500.50"));
    assert_eq!(f.qty, fx("0.50000000"));
    assert_eq!(f.fee, fx("23.60"));
    assert_eq!(f.liquidity, Liquidity::Maker);
    assert_eq!(f.ts_event_ns, 1688585840 * S + 892_100_000);
}

#[test]
fn rest_acks() {
    assert_eq!(
        decode(data!("http_add_order_spot.json")),
        [VenueEvent::Control(Control::Response {
            id: "OUF4EM-FRGI2-MQMWZD".into(),
            ok: true,
            detail: "buy 0.01000000 XBTUSD @ limit 50000.0".into()
        })]
    );
    assert_eq!(
        decode(data!("http_cancel_order_spot.json")),
        [VenueEvent::Control(Control::Response {
            id: String::new(),
            ok: true,
            detail: "canceled 1".into()
        })]
    );
    assert_eq!(
        decode(r#"{"error":["EOrder:Insufficient funds"]}"#),
        [VenueEvent::Control(Control::Response {
            id: String::new(),
            ok: false,
            detail: "EOrder:Insufficient funds".into()
        })]
    );
}

#[test]
fn asset_pairs() {
    let pairs = kraken::parse_asset_pairs(data!("http_asset_pairs.json")).unwrap();
    assert_eq!(pairs.len(), 1);
    let p = &pairs[0];
    // wsname "XBT/USDT"; WebSocket v2 writes XBT as BTC.
    assert_eq!(p.symbol, sym("BTC/USDT"));
    assert_eq!((p.base.as_str(), p.quote.as_str()), ("BTC", "USDT"));
    assert_eq!(p.tick_size, fx("0.1"));
    assert_eq!(p.lot_size, fx("0.00000001"), "lot_decimals 8");
    assert_eq!(p.min_qty, fx("0.00005"));
    assert_eq!(p.min_notional, fx("0.5"));
    assert_eq!(p.max_qty, Fixed::ZERO);
    assert!(p.trading);

    let tok = kraken::parse_asset_pairs(data!("http_asset_pairs_tokenized.json")).unwrap();
    assert_eq!(tok[0].symbol, sym("AAPLx/USD"));
    assert_eq!(tok[0].tick_size, fx("0.01"));
    assert_eq!(tok[0].min_qty, fx("0.00000001"));

    let names = kraken::parse_asset_pair_names(data!("http_asset_pairs.json")).unwrap();
    assert_eq!(
        names,
        [kraken::PairNames {
            key: "XBTUSDT".into(),
            altname: "XBTUSDT".into(),
            wsname: "XBT/USDT".into(),
            ws_v2: "BTC/USDT".into(),
        }]
    );
}

#[test]
fn ws_token() {
    // Kraken docs, GetWebSocketsToken response example.
    let body = r#"{"error":[],"result":{"token":"1Dwc4lzSwNWOAwkMdqhssNNFhs1ed606d1WcF3XfEMw","expires":900}}"#;
    assert_eq!(
        kraken::parse_ws_token(body).unwrap(),
        "1Dwc4lzSwNWOAwkMdqhssNNFhs1ed606d1WcF3XfEMw"
    );
    assert!(matches!(
        kraken::decode(body),
        Err(DecodeError::Unsupported(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Errors

#[test]
fn error_strings() {
    let e = |s: &str| kraken::parse_error(200, &format!(r#"{{"error":["{s}"]}}"#), None);
    assert!(matches!(
        e("EAPI:Rate limit exceeded"),
        Some(VenueError::RateLimited { .. })
    ));
    assert!(matches!(
        e("EGeneral:Too many requests"),
        Some(VenueError::RateLimited { .. })
    ));
    assert!(matches!(
        e("EOrder:Rate limit exceeded"),
        Some(VenueError::RateLimited { .. })
    ));
    assert!(matches!(
        e("EAPI:Invalid nonce"),
        Some(VenueError::TimestampOutsideRecvWindow(_))
    ));
    assert!(matches!(
        e("EAPI:Invalid key"),
        Some(VenueError::AuthFailure(_))
    ));
    assert!(matches!(
        e("EAPI:Invalid signature"),
        Some(VenueError::AuthFailure(_))
    ));
    assert!(matches!(
        e("EOrder:Insufficient funds"),
        Some(VenueError::InsufficientBalance(_))
    ));
    assert!(matches!(
        e("EQuery:Unknown asset pair"),
        Some(VenueError::UnknownSymbol(_))
    ));
    assert!(matches!(
        e("EOrder:Unknown order"),
        Some(VenueError::OrderNotFound(_))
    ));
    assert!(matches!(
        e("EOrder:Order minimum not met"),
        Some(VenueError::FilterViolation(_))
    ));
    for s in [
        "EService:Unavailable",
        "EService:Busy",
        "EGeneral:Internal error",
    ] {
        assert!(matches!(e(s), Some(VenueError::UnknownOutcome(_))), "{s}");
    }
    assert_eq!(
        e("EFunding:Unknown asset"),
        Some(VenueError::Other {
            code: "EFunding".into(),
            message: "Unknown asset".into()
        })
    );
    // Warnings alone are not errors.
    assert_eq!(
        kraken::parse_error(
            200,
            r#"{"error":["WGeneral:Deprecated"],"result":{}}"#,
            None
        ),
        None
    );
    assert_eq!(
        kraken::parse_error(200, data!("http_ticker.json"), None),
        None
    );
    assert_eq!(
        kraken::parse_error(429, "Too Many Requests", Some("3")),
        Some(VenueError::RateLimited {
            retry_after_ms: Some(3000),
            banned: false
        })
    );
    assert!(matches!(
        kraken::parse_error(520, "cloudflare", None),
        Some(VenueError::UnknownOutcome(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Requests

fn form_pairs(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.replace("%2F", "/"))
        })
        .collect()
}

fn spec(kind: OrderSpecKind, tif: TimeInForce, id: &str) -> OrderSpec {
    OrderSpec {
        symbol: sym("XBTUSD"),
        client_order_id: id.into(),
        side: Side::Buy,
        kind,
        qty: fx("1.25"),
        time_in_force: tif,
        reduce_only: false,
    }
}

#[test]
fn add_order_matches_the_documented_example() {
    // Kraken docs, AddOrder request example: nonce 163245617, limit buy 1.25 XBTUSD @ 27500.
    let r = kraken::add_order(
        &spec(
            OrderSpecKind::Limit { price: fx("27500") },
            TimeInForce::Gtc,
            "6d1b345e-2821-40e2-ad83-4ecb18a06876",
        ),
        163245617,
    )
    .unwrap();
    assert_eq!(r.method, Method::Post);
    assert_eq!(r.path, "/0/private/AddOrder");
    assert!(r.signed);
    assert!(!r.retry_safe);
    let mut got = form_pairs(r.body.as_deref().unwrap());
    let mut doc: Vec<(String, String)> = [
        ("nonce", "163245617"),
        ("ordertype", "limit"),
        ("type", "buy"),
        ("volume", "1.25"),
        ("pair", "XBTUSD"),
        ("price", "27500"),
        ("cl_ord_id", "6d1b345e-2821-40e2-ad83-4ecb18a06876"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(got[0].0, "nonce", "the nonce leads the body");
    got.sort();
    doc.sort();
    assert_eq!(got, doc);
}

#[test]
fn add_order_variants() {
    let body = |kind, tif| {
        let r = kraken::add_order(&spec(kind, tif, "k1"), 1).unwrap();
        form_pairs(r.body.as_deref().unwrap())
    };
    let has = |b: &[(String, String)], k: &str, v: &str| b.iter().any(|(a, b)| a == k && b == v);
    let b = body(
        OrderSpecKind::Limit { price: fx("27500") },
        TimeInForce::PostOnly,
    );
    assert!(has(&b, "oflags", "post"));
    let b = body(
        OrderSpecKind::Limit { price: fx("27500") },
        TimeInForce::Ioc,
    );
    assert!(has(&b, "timeinforce", "IOC"));
    let b = body(
        OrderSpecKind::StopMarket {
            trigger: fx("20000"),
        },
        TimeInForce::Gtc,
    );
    assert!(has(&b, "ordertype", "stop-loss"));
    assert!(has(&b, "price", "20000"));
    let b = body(
        OrderSpecKind::StopLimit {
            trigger: fx("20000"),
            price: fx("19900.5"),
        },
        TimeInForce::Gtc,
    );
    assert!(has(&b, "ordertype", "stop-loss-limit"));
    assert!(has(&b, "price2", "19900.5"));
    let b = body(
        OrderSpecKind::TakeProfitMarket {
            trigger: fx("30000"),
        },
        TimeInForce::Gtc,
    );
    assert!(has(&b, "ordertype", "take-profit"));
    let b = body(OrderSpecKind::Market, TimeInForce::Gtc);
    assert!(has(&b, "ordertype", "market"));
    assert!(!b.iter().any(|(k, _)| k == "price"));

    let mut ro = spec(OrderSpecKind::Market, TimeInForce::Gtc, "k1");
    ro.reduce_only = true;
    let b = form_pairs(kraken::add_order(&ro, 1).unwrap().body.as_deref().unwrap());
    assert!(has(&b, "reduce_only", "true"));

    assert!(
        kraken::add_order(
            &spec(
                OrderSpecKind::Limit { price: fx("1") },
                TimeInForce::Fok,
                "k1"
            ),
            1
        )
        .is_err()
    );
    // cl_ord_id: UUID, 32 hex, or free text up to 18 characters.
    assert!(kraken::check_client_order_id("d15708c1-dbb6-465d-b77d-47258319cc90").is_ok());
    assert!(kraken::check_client_order_id("d15708c1dbb6465db77d47258319cc90").is_ok());
    assert!(kraken::check_client_order_id("O-20260505-000001").is_ok());
    assert!(kraken::check_client_order_id("this-id-is-19-chars").is_err());
    assert!(kraken::check_client_order_id("").is_err());
}

#[test]
fn private_and_public_queries() {
    let r = kraken::cancel_order(kraken::OrderRef::Venue("OYVGEW-VYV5B-UUEXSK"), 7);
    assert_eq!(r.path, "/0/private/CancelOrder");
    assert_eq!(r.body.as_deref(), Some("nonce=7&txid=OYVGEW-VYV5B-UUEXSK"));
    let r = kraken::cancel_order(kraken::OrderRef::Client("k1"), 8);
    assert_eq!(r.body.as_deref(), Some("nonce=8&cl_ord_id=k1"));
    let r = kraken::cancel_all_orders_after(60, 9);
    assert_eq!(r.path, "/0/private/CancelAllOrdersAfter");
    assert_eq!(r.body.as_deref(), Some("nonce=9&timeout=60"));
    assert_eq!(kraken::cancel_all(1).path, "/0/private/CancelAll");
    assert_eq!(kraken::open_orders(1).path, "/0/private/OpenOrders");
    assert_eq!(kraken::balance(1).path, "/0/private/Balance");
    assert_eq!(kraken::trades_history(1).weight, 2);
    assert_eq!(
        kraken::get_websockets_token(1).path,
        "/0/private/GetWebSocketsToken"
    );

    let r = kraken::ohlc("XBTUSD", Interval::parse("1h").unwrap(), Some(1762820160)).unwrap();
    assert_eq!(r.method, Method::Get);
    assert!(!r.signed);
    assert_eq!(r.path, "/0/public/OHLC");
    assert_eq!(
        r.query,
        [
            ("pair".to_string(), "XBTUSD".to_string()),
            ("interval".into(), "60".into()),
            ("since".into(), "1762820160".into())
        ]
    );
    assert!(kraken::ohlc("XBTUSD", Interval::parse("2h").unwrap(), None).is_err());
    let r = kraken::depth("XBTUSD", Some(10));
    assert_eq!(r.query[1], ("count".to_string(), "10".to_string()));
    let r = kraken::asset_pairs(&["XBTUSD", "ETHUSD"]);
    assert_eq!(r.query, [("pair".to_string(), "XBTUSD,ETHUSD".to_string())]);
}

#[test]
fn websocket_frames() {
    assert_eq!(kraken::WS_PUBLIC_URL, "wss://ws.kraken.com/v2");
    assert_eq!(kraken::WS_PRIVATE_URL, "wss://ws-auth.kraken.com/v2");
    let json = |s: &str| serde_json::from_str::<Value>(s).unwrap();

    // Kraken docs, cancel_all_orders_after example.
    assert_eq!(
        json(&kraken::ws_cancel_all_orders_after(
            100,
            "zwpdzWUe18Bn6h4TAMorh26+QbcMeST2B5tamfe+pgQ",
            Some(1234567890)
        )),
        json(
            r#"{"method":"cancel_all_orders_after","params":{"timeout":100,"token":"zwpdzWUe18Bn6h4TAMorh26+QbcMeST2B5tamfe+pgQ"},"req_id":1234567890}"#
        )
    );
    // Kraken docs, executions subscribe example.
    assert_eq!(
        json(
            &kraken::ws_subscribe(
                &kraken::Subscription::Executions {
                    token: "G38a1tGFzqGiUCmnegBcm8d4nfP3tytiNQz6tkCBYXY",
                    snap_orders: true,
                    snap_trades: true
                },
                None
            )
            .unwrap()
        ),
        json(
            r#"{"method":"subscribe","params":{"channel":"executions","token":"G38a1tGFzqGiUCmnegBcm8d4nfP3tytiNQz6tkCBYXY","snap_orders":true,"snap_trades":true}}"#
        )
    );
    let ohlc = kraken::ws_subscribe(
        &kraken::Subscription::Ohlc {
            symbols: &["BTC/USD"],
            interval: Interval::parse("5m").unwrap(),
        },
        Some(1),
    )
    .unwrap();
    assert_eq!(
        json(&ohlc),
        serde_json::json!({"method": "subscribe", "params": {"channel": "ohlc", "symbol": ["BTC/USD"], "interval": 5}, "req_id": 1})
    );
    assert_eq!(
        json(&kraken::ws_ping(Some(42))),
        serde_json::json!({"method": "ping", "req_id": 42})
    );

    // The recorded add_order request (nautilus), field by field; keel writes the documented
    // lowercase time_in_force and leaves it out for post-only.
    let recorded = json(data!("ws_add_order_request.json"));
    let mut s = spec(
        OrderSpecKind::Limit {
            price: fx("30000.0"),
        },
        TimeInForce::PostOnly,
        "O-20260505-000001",
    );
    s.symbol = sym("BTC/USD");
    s.qty = fx("0.01");
    let ours = json(&kraken::ws_add_order(&s, "TESTTOKEN", Some(42)).unwrap());
    assert_eq!(ours["method"], recorded["method"]);
    assert_eq!(ours["req_id"], recorded["req_id"]);
    for key in [
        "order_type",
        "side",
        "symbol",
        "cl_ord_id",
        "post_only",
        "token",
    ] {
        assert_eq!(ours["params"][key], recorded["params"][key], "{key}");
    }
    for key in ["order_qty", "limit_price"] {
        assert_eq!(
            ours["params"][key].as_f64(),
            recorded["params"][key].as_f64(),
            "{key}"
        );
    }
    // Exact digits on the wire.
    assert!(
        kraken::ws_add_order(&s, "T", None)
            .unwrap()
            .contains(r#""order_qty":0.01,"#)
    );

    let mut stop = s.clone();
    stop.kind = OrderSpecKind::StopMarket {
        trigger: fx("25000"),
    };
    stop.time_in_force = TimeInForce::Gtc;
    let v = json(&kraken::ws_add_order(&stop, "T", None).unwrap());
    assert_eq!(v["params"]["order_type"], "stop-loss");
    assert_eq!(v["params"]["triggers"]["price"].as_f64(), Some(25000.0));
    assert_eq!(v["params"]["triggers"]["reference"], "last");

    let v = json(
        &kraken::ws_cancel_order(
            &[kraken::OrderRef::Venue("OABCDE-12345-FGHIJ")],
            "TESTTOKEN",
            Some(44),
        )
        .unwrap(),
    );
    assert_eq!(v, json(data!("ws_cancel_order_request.json")));
}

// ---------------------------------------------------------------------------------------------
// Helpers

#[test]
fn rfc3339() {
    let ns = |t| kraken::rfc3339_to_ns("t", t);
    assert_eq!(
        ns("2023-10-06T17:35:55.440295Z").unwrap(),
        1696613755 * S + 440_295_000
    );
    assert_eq!(
        ns("2023-10-04T16:25:00.000000000Z").unwrap(),
        1696436700 * S
    );
    assert_eq!(ns("2024-02-29T23:59:59Z").unwrap(), 1709251199 * S);
    assert_eq!(ns("1969-12-31T23:00:00Z").unwrap(), -3600 * S);
    assert_eq!(ns("2023-10-06T19:35:55+02:00").unwrap(), 1696613755 * S);
    assert_eq!(
        ns("2023-10-06T17:35:55.1234567891Z").unwrap(),
        1696613755 * S + 123_456_789
    );
    for bad in [
        "2023-02-29T00:00:00Z",
        "2023-10-06 17:35:55",
        "2023-13-01T00:00:00Z",
        "2023-10-06T17:35:55+0200",
        "2500-01-01T00:00:00Z",
        "",
    ] {
        assert!(ns(bad).is_err(), "{bad}");
    }
}

#[test]
fn quote_numbers() {
    assert_eq!(
        kraken::quote_numbers(r#"{"a":-1.5e-3,"b":"x-1","c":[1,2],"d":true}"#),
        r#"{"a":"-1.5e-3","b":"x-1","c":["1","2"],"d":true}"#
    );
    assert_eq!(kraken::quote_numbers(r#"{"s":"a\"1"}"#), r#"{"s":"a\"1"}"#);
}

// ---------------------------------------------------------------------------------------------
// Every recorded payload

/// Files expected to decode to at least one event. Kraken futures files and request captures
/// must be `Unsupported`.
const DECODES: &[&str] = &[
    "http_add_order_spot.json",
    "http_cancel_order_spot.json",
    "http_closed_orders.json",
    "http_ohlc.json",
    "http_open_orders.json",
    "http_order_book.json",
    "http_spot_balance.json",
    "http_ticker.json",
    "http_trades.json",
    "http_trades_history.json",
    "ws_add_order_response_failure.json",
    "ws_add_order_response_success.json",
    "ws_batch_add_response_partial.json",
    "ws_book_snapshot.json",
    "ws_book_update.json",
    "ws_ohlc_update.json",
    "ws_pong.json",
    "ws_subscribe_response.json",
    "ws_ticker_snapshot.json",
    "ws_trade_update.json",
];

#[test]
fn every_recorded_payload_decodes_or_is_clearly_refused() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/kraken");
    let mut decoded = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        match kraken::decode(&text) {
            Ok(ev) => {
                assert!(!ev.is_empty(), "{name} decoded to no event");
                assert!(
                    DECODES.contains(&name.as_str()),
                    "{name} decodes but is not listed"
                );
                decoded += 1;
            }
            Err(DecodeError::Unsupported(kind)) => {
                assert!(kind.starts_with("kraken"), "{name}: {kind}");
                assert!(
                    !DECODES.contains(&name.as_str()),
                    "{name} regressed: {kind}"
                );
                if name.contains("futures") {
                    assert!(kind.starts_with("kraken futures"), "{name}: {kind}");
                }
            }
            Err(e @ DecodeError::Malformed { .. }) => {
                panic!("{name}: recorded payload is malformed? {e}")
            }
        }
    }
    assert_eq!(decoded, DECODES.len());
}
