//! OKX codec tests. Expected values are the literals in the recorded payloads under
//! `tests/data/okx/` (nautilus captures) or in OKX's v5 API documentation examples.

use keel_adapters::model::{
    Control, DecodeError, Method, OrderSpec, OrderSpecKind, OrderState, OrderType, TimeInForce,
    VenueError, VenueEvent,
};
use keel_adapters::okx;
use keel_engine::candle::Interval;
use keel_engine::event::{Liquidity, Side};
use keel_engine::fixed::Fixed;
use keel_engine::symbol::Symbol;
use serde_json::Value;

macro_rules! data {
    ($f:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/okx/", $f))
    };
}

fn fx(s: &str) -> Fixed {
    Fixed::parse_exact(s).unwrap()
}

fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

fn decode(text: &str) -> Vec<VenueEvent> {
    okx::decode(text).unwrap_or_else(|e| panic!("decode failed: {e}"))
}

const MS: i64 = 1_000_000;

// ---------------------------------------------------------------------------------------------
// Public WebSocket

#[test]
fn candle_push() {
    let ev = decode(data!("ws_candle.json"));
    assert_eq!(ev.len(), 1);
    let VenueEvent::Candle { candle, closed } = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(candle.symbol, sym("BTC-USDT"));
    assert_eq!(candle.open_time_ns, 1597026383085 * MS);
    assert_eq!(candle.interval_ns, 86_400_000_000_000); // candle1D
    assert_eq!(candle.open, fx("8533.02"));
    assert_eq!(candle.high, fx("8553.74"));
    assert_eq!(candle.low, fx("8527.17"));
    assert_eq!(candle.close, fx("8548.26"));
    // Spot: `vol` (index 5) is base currency.
    assert_eq!(candle.volume, fx("45247"));
    assert!(*closed, "confirm \"1\"");
}

#[test]
fn candle_in_progress_and_derivative_volume() {
    // The recorded row with confirm flipped to "0" and a SWAP instrument: volume comes from
    // volCcy (base currency), not vol (contracts).
    let text = data!("ws_candle.json")
        .replace("\"BTC-USDT\"", "\"BTC-USDT-SWAP\"")
        .replace("\"1\"\n", "\"0\"\n");
    let ev = decode(&text);
    let VenueEvent::Candle { candle, closed } = &ev[0] else {
        panic!("{ev:?}")
    };
    assert!(!closed);
    assert_eq!(candle.volume, fx("529.5858061"));
}

#[test]
fn trades_push() {
    let ev = decode(data!("ws_trades.json"));
    let VenueEvent::Trade(t) = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(t.symbol, sym("BTC-USD"));
    assert_eq!(t.trade_id, 130639474);
    assert_eq!(t.price, fx("42219.9"));
    assert_eq!(t.qty, fx("0.12060306"));
    assert_eq!(t.aggressor, Side::Buy);
    assert_eq!(t.ts_event_ns, 1630048897897 * MS);
}

#[test]
fn tickers_and_bbo_are_book_tickers() {
    let ev = decode(data!("ws_tickers.json"));
    let VenueEvent::BookTicker(b) = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(b.symbol, sym("BTC-USDT"));
    assert_eq!((b.bid, b.bid_qty), (fx("8888.88"), fx("5")));
    assert_eq!((b.ask, b.ask_qty), (fx("9999.99"), fx("11")));
    assert_eq!(b.ts_event_ns, 1597026383085 * MS);

    let ev = decode(data!("ws_bbo_tbt.json"));
    let VenueEvent::BookTicker(b) = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!((b.bid, b.bid_qty), (fx("8476.97"), fx("256")));
    assert_eq!((b.ask, b.ask_qty), (fx("8476.98"), fx("415")));
}

#[test]
fn books_snapshot_and_update_carry_sequence_and_checksum() {
    let ev = decode(data!("ws_books_snapshot.json"));
    let VenueEvent::Depth(d) = &ev[0] else {
        panic!("{ev:?}")
    };
    assert!(d.snapshot);
    assert_eq!(d.symbol, sym("BTC-USDT"));
    assert_eq!((d.first_update_id, d.last_update_id), (123456, 123456));
    assert_eq!(d.prev_last_update_id, None, "prevSeqId -1 on a snapshot");
    assert_eq!(d.checksum, Some(-855196043));
    assert_eq!(d.bids.len(), 8);
    assert_eq!(d.asks.len(), 8);
    assert_eq!(d.bids[0], (fx("8476.97"), fx("256")));
    assert_eq!(d.asks[7], (fx("8506.96"), fx("100")));
    assert_eq!(d.ts_event_ns, 1597026383085 * MS);

    let ev = decode(data!("ws_books_update.json"));
    let VenueEvent::Depth(d) = &ev[0] else {
        panic!("{ev:?}")
    };
    assert!(!d.snapshot);
    assert_eq!(d.last_update_id, 123457);
    assert_eq!(d.prev_last_update_id, Some(123456));
}

#[test]
fn funding_rate_push() {
    let ev = decode(data!("ws_funding_rate.json"));
    let VenueEvent::Funding(f) = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(f.symbol, sym("BTC-USDT-SWAP"));
    assert_eq!(f.rate, fx("0.0001"));
    assert_eq!(f.funding_time_ns, 1744590349506 * MS);
    assert_eq!(f.ts_event_ns, 1744590349506 * MS);
}

// ---------------------------------------------------------------------------------------------
// Private WebSocket

#[test]
fn orders_push_with_fill_converts_the_fee_sign() {
    let ev = decode(data!("ws_orders.json"));
    assert_eq!(ev.len(), 2);
    let VenueEvent::Order(o) = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(o.symbol, sym("BTC-USDT-SWAP"));
    assert_eq!(o.client_order_id, "001BTCUSDT20250106001");
    assert_eq!(o.venue_order_id, "2497956918703120384");
    assert_eq!(o.state, OrderState::Filled);
    assert_eq!(o.order_type, OrderType::Market);
    assert_eq!(o.side, Side::Buy);
    assert_eq!(o.qty, fx("0.03"));
    assert_eq!(o.filled_qty, fx("0.03"));
    assert_eq!(o.avg_price, fx("103698.9"));
    assert_eq!(o.price, Fixed::ZERO, "market order, px \"\"");
    assert_eq!(o.ts_event_ns, 1746947317402 * MS);

    let VenueEvent::Fill(f) = &ev[1] else {
        panic!("{ev:?}")
    };
    assert_eq!(f.trade_id, "1518905529");
    assert_eq!(f.price, fx("103698.9"));
    assert_eq!(f.qty, fx("0.03"));
    // OKX "fee": "-0.021776769" (negative = charged) → keel +0.02177677 (rounded to 8 dp).
    assert_eq!(f.fee, fx("0.02177677"));
    assert_eq!(f.fee_asset, "USDT");
    assert_eq!(f.liquidity, Liquidity::Maker, "execType M");
    assert_eq!(f.ts_event_ns, 1746947317402 * MS);
}

#[test]
fn fill_fee_field_wins_over_accumulated_fee() {
    // A second fill: accFillSz 0.05 > fillSz 0.02, fillFee for this fill only.
    let text = data!("ws_orders_ioc.json")
        .replace("\"accFillSz\": \"0.02\"", "\"accFillSz\": \"0.05\"")
        .replace(
            "\"fee\": \"-0.1002\",",
            "\"fee\": \"-0.25\", \"fillFee\": \"-0.04\", \"fillFeeCcy\": \"BTC\",",
        );
    let ev = decode(&text);
    let VenueEvent::Fill(f) = &ev[1] else {
        panic!("{ev:?}")
    };
    assert_eq!(f.fee, fx("0.04"));
    assert_eq!(f.fee_asset, "BTC");
    // Without fillFee, a later fill cannot take its fee from the accumulated one.
    let text =
        data!("ws_orders_ioc.json").replace("\"accFillSz\": \"0.02\"", "\"accFillSz\": \"0.05\"");
    assert!(matches!(
        okx::decode(&text),
        Err(DecodeError::Malformed { .. })
    ));
}

#[test]
fn order_types_and_states() {
    let ev = decode(data!("ws_orders_ioc.json"));
    let VenueEvent::Order(o) = &ev[0] else {
        panic!()
    };
    assert_eq!(o.state, OrderState::PartiallyFilled);
    assert_eq!(o.order_type, OrderType::Limit);
    assert_eq!(o.time_in_force, Some(TimeInForce::Ioc));
    assert_eq!(o.price, fx("50100.0"));
    assert_eq!(o.qty, fx("0.05"));
    assert_eq!(o.filled_qty, fx("0.02"));
    let VenueEvent::Fill(f) = &ev[1] else {
        panic!()
    };
    assert_eq!(f.fee, fx("0.1002"));
    assert_eq!(f.liquidity, Liquidity::Taker);
    assert_eq!(f.side, Side::Sell);

    let ev = decode(data!("ws_orders_fok.json"));
    let VenueEvent::Order(o) = &ev[0] else {
        panic!()
    };
    assert_eq!(o.time_in_force, Some(TimeInForce::Fok));
    assert_eq!(o.client_order_id, "FOK-TEST-001");

    let ev = decode(data!("ws_orders_liquidation.json"));
    let VenueEvent::Order(o) = &ev[0] else {
        panic!()
    };
    assert_eq!(o.reason, "full_liquidation");
    let ev = decode(data!("ws_orders_adl.json"));
    let VenueEvent::Order(o) = &ev[0] else {
        panic!()
    };
    assert_eq!(o.reason, "adl");

    let ev = decode(data!("ws_orders_trigger.json"));
    let VenueEvent::Order(o) = &ev[0] else {
        panic!()
    };
    assert!(o.reduce_only);
    assert_eq!(o.order_type, OrderType::StopMarket);
}

#[test]
fn algo_orders_push() {
    let ev = decode(data!("ws_orders_algo.json"));
    let orders: Vec<_> = ev
        .iter()
        .map(|e| match e {
            VenueEvent::Order(o) => o,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(orders.len(), 5);
    let states: Vec<OrderState> = orders.iter().map(|o| o.state).collect();
    assert_eq!(
        states,
        [
            OrderState::Untriggered,
            OrderState::Untriggered,
            OrderState::Triggered,
            OrderState::Canceled,
            OrderState::Filled
        ]
    );
    let o = orders[0];
    assert_eq!(o.client_order_id, "STOP001BTCUSDT20250120");
    assert_eq!(o.venue_order_id, "706620792746729472");
    assert_eq!(o.order_type, OrderType::StopMarket, "ordPx -1");
    assert_eq!(o.trigger_price, fx("95000"));
    assert_eq!(o.qty, fx("0.01"));
    assert!(o.reduce_only);
    let o = orders[1];
    assert_eq!(o.order_type, OrderType::StopLimit);
    assert_eq!(o.price, fx("106000"));
    assert_eq!(o.trigger_price, fx("105000"));
    let o = orders[4];
    assert_eq!(o.filled_qty, fx("0.005"));
    assert_eq!(o.avg_price, fx("102920"));
    assert_eq!(o.ts_event_ns, 1737400400000 * MS);
}

#[test]
fn account_push_balances() {
    let ev = decode(data!("ws_account.json"));
    let b: Vec<_> = ev
        .iter()
        .map(|e| match e {
            VenueEvent::Balance(b) => b,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(b.len(), 3);
    assert_eq!(b[0].asset, "USDT");
    // availBal "100.52768569797846" rounded to 8 decimals.
    assert_eq!(b[0].free, fx("100.5276857"));
    assert_eq!(b[0].locked, Fixed::ZERO);
    assert_eq!(b[0].ts_event_ns, 1751526647084 * MS);
    assert_eq!(b[1].asset, "BTC");
    assert_eq!(b[1].free, fx("0.00000001")); // "0.0000000051"
    assert_eq!(b[2].asset, "ETH");
    assert_eq!(b[2].free, fx("0.00000019")); // "0.000000185"
    assert!(decode(data!("ws_account_empty.json")).is_empty());
}

#[test]
fn control_messages_from_okx_docs() {
    assert_eq!(decode("pong"), [VenueEvent::Control(Control::Pong)]);
    // OKX v5 docs, WebSocket login / subscribe / error / order examples.
    assert_eq!(
        decode(r#"{"event":"login","code":"0","msg":"","connId":"a4d3ae55"}"#),
        [VenueEvent::Control(Control::AuthOk)]
    );
    assert_eq!(
        decode(r#"{"event":"error","code":"60009","msg":"Login failed.","connId":"a4d3ae55"}"#),
        [VenueEvent::Control(Control::AuthFailed {
            reason: "60009 Login failed.".into()
        })]
    );
    assert_eq!(
        decode(
            r#"{"event":"subscribe","arg":{"channel":"tickers","instId":"BTC-USDT"},"connId":"accb8e21"}"#
        ),
        [VenueEvent::Control(Control::Subscribed {
            topic: "tickers:BTC-USDT".into()
        })]
    );
    let ev = decode(
        r#"{"event":"error","code":"60012","msg":"Invalid request: {\"op\": \"subscribe\", \"argss\":[{ \"channel\" : \"tickers\", \"instId\" : \"BTC-USDT\"}]}","connId":"a4d3ae55"}"#,
    );
    assert!(
        matches!(&ev[0], VenueEvent::Control(Control::SubscribeFailed { reason, .. }) if reason.starts_with("60012"))
    );
    assert_eq!(
        decode(
            r#"{"id":"1512","op":"order","data":[{"clOrdId":"","ordId":"12345689","tag":"","ts":"1695190491421","sCode":"0","sMsg":""}],"code":"0","msg":"","inTime":"1695190491421339","outTime":"1695190491423240"}"#
        ),
        [VenueEvent::Control(Control::Response {
            id: "1512".into(),
            ok: true,
            detail: "12345689".into()
        })]
    );
    let ev = decode(
        r#"{"id":"1512","op":"order","data":[{"clOrdId":"","ordId":"","tag":"","ts":"1695190491421","sCode":"5XXXX","sMsg":"not exist"}],"code":"1","msg":"","inTime":"1695190491421339","outTime":"1695190491423240"}"#,
    );
    assert_eq!(
        ev,
        [VenueEvent::Control(Control::Response {
            id: "1512".into(),
            ok: false,
            detail: "5XXXX not exist".into()
        })]
    );
}

// ---------------------------------------------------------------------------------------------
// REST

#[test]
fn rest_orders_positions_balance() {
    let ev = decode(data!("http_get_orders_pending.json"));
    assert_eq!(ev.len(), 1, "order lists report no fills");
    let VenueEvent::Order(o) = &ev[0] else {
        panic!()
    };
    assert_eq!(o.state, OrderState::New);
    assert_eq!(o.client_order_id, "client-order-1");
    assert_eq!(o.price, fx("103500"));
    assert_eq!(o.qty, fx("0.10"));
    assert_eq!(o.time_in_force, Some(TimeInForce::Gtc));

    let ev = decode(data!("http_get_positions.json"));
    let VenueEvent::Position(p) = &ev[0] else {
        panic!()
    };
    assert_eq!(p.symbol, sym("BTC-USDT-SWAP"));
    assert_eq!(p.qty, fx("0.5"));
    assert_eq!(p.entry_price, fx("10000"));
    assert_eq!(p.liquidation_price, fx("9000"));
    assert_eq!(p.leverage, fx("10.0"));
    assert_eq!(p.ts_event_ns, 1622559930237 * MS);
    // posSide short with a positive size (long/short mode) is a negative position.
    let short = data!("http_get_positions.json").replace("\"long\"", "\"short\"");
    let VenueEvent::Position(p) = &decode(&short)[0] else {
        panic!()
    };
    assert_eq!(p.qty, fx("-0.5"));

    let ev = decode(data!("http_get_account_balance.json"));
    let VenueEvent::Balance(b) = &ev[0] else {
        panic!()
    };
    assert_eq!(b.asset, "USDT");
    assert_eq!(b.free, fx("94.4261299")); // "94.42612990333333"
    assert_eq!(b.locked, fx("5.46856667")); // "5.468566666666667"
    assert_eq!(b.ts_event_ns, 1744498994783 * MS);
}

#[test]
fn rest_fills_negate_the_fee() {
    let ev = decode(data!("http_transaction_detail.json"));
    let VenueEvent::Fill(f) = &ev[0] else {
        panic!()
    };
    assert_eq!(f.trade_id, "123456789");
    assert_eq!(f.venue_order_id, "987654321");
    assert_eq!(f.client_order_id, "client_123");
    assert_eq!(f.price, fx("42000.5"));
    assert_eq!(f.qty, fx("0.001"));
    // OKX "fee": "0.042" is a rebate (positive) → keel -0.042.
    assert_eq!(f.fee, fx("-0.042"));
    assert_eq!(f.liquidity, Liquidity::Taker);
    assert_eq!(f.ts_event_ns, 1625097600000 * MS);
    let ev = decode(data!("http_transaction_detail_empty_fee.json"));
    let VenueEvent::Fill(f) = &ev[0] else {
        panic!()
    };
    assert_eq!(f.fee, Fixed::ZERO);
}

#[test]
fn rest_acks_and_rejects() {
    assert_eq!(
        decode(data!("http_place_order_response.json")),
        [VenueEvent::Control(Control::Response {
            id: "12345678901234567890".into(),
            ok: true,
            detail: String::new()
        })]
    );
    assert_eq!(
        decode(data!("http_place_algo_order_rejected.json")),
        [VenueEvent::Control(Control::Response {
            id: "test_algo_rej".into(),
            ok: false,
            detail: "51000 Parameter instId error".into()
        })]
    );
    let body = data!("http_place_algo_order_rejected.json");
    assert_eq!(
        okx::parse_error(200, body, None),
        Some(VenueError::FilterViolation(
            "51000 Parameter instId error".into()
        ))
    );
    assert_eq!(
        okx::parse_error(200, data!("http_place_algo_order_response.json"), None),
        None
    );
}

#[test]
fn rest_trades_and_funding_history() {
    let ev = decode(data!("http_get_trades.json"));
    assert_eq!(ev.len(), 2);
    let VenueEvent::Trade(t) = &ev[0] else {
        panic!()
    };
    assert_eq!(t.trade_id, 734864333);
    assert_eq!(t.price, fx("102537.9"));
    assert_eq!(t.qty, fx("0.00013669"));
    assert_eq!(t.aggressor, Side::Sell);

    let ev = decode(data!("http_get_funding_rate_history.json"));
    let VenueEvent::Funding(f) = &ev[1] else {
        panic!()
    };
    // "-0.0000236017" has 10 decimals: rounded.
    assert_eq!(f.rate, fx("-0.0000236"));
    assert_eq!(f.funding_time_ns, 1704038400000 * MS);
}

#[test]
fn rest_candles_need_instrument_and_bar() {
    let body = data!("http_get_candlesticks_full.json");
    assert!(matches!(
        okx::decode(body),
        Err(DecodeError::Unsupported(_))
    ));
    let ev = okx::parse_candles(body, "BTC-USDT", Interval::parse("1m").unwrap()).unwrap();
    assert_eq!(ev.len(), 2);
    // OKX sends newest first; keel returns oldest first.
    let VenueEvent::Candle { candle, closed } = &ev[0] else {
        panic!()
    };
    assert_eq!(candle.open_time_ns, 1747093980000 * MS);
    assert_eq!(candle.open, fx("102806"));
    assert_eq!(candle.high, fx("102820.5"));
    assert_eq!(candle.low, fx("102783.1"));
    assert_eq!(candle.close, fx("102806.1"));
    assert_eq!(candle.volume, fx("7164.04"));
    assert_eq!(candle.interval_ns, 60_000_000_000);
    assert!(*closed);
    let ev = okx::parse_candles(body, "BTC-USDT-SWAP", Interval::parse("1m").unwrap()).unwrap();
    let VenueEvent::Candle { candle, .. } = &ev[1] else {
        panic!()
    };
    assert_eq!(candle.volume, fx("10.4037"), "derivatives: volCcy");
    let ev = okx::parse_candles(
        data!("http_get_candlesticks.json"),
        "BTC-USDT",
        Interval::parse("1m").unwrap(),
    )
    .unwrap();
    assert!(matches!(ev[0], VenueEvent::Candle { closed: false, .. }));
}

#[test]
fn rest_order_book() {
    let d = okx::parse_order_book(data!("http_get_order_book.json"), "BTC-USDT").unwrap();
    assert!(d.snapshot);
    assert_eq!(d.asks[0], (fx("41006.8"), fx("0.60038921")));
    assert_eq!(d.bids[2], (fx("41006.5"), fx("1.12500000")));
    assert_eq!(d.ts_event_ns, 1704067200000 * MS);
}

#[test]
fn instruments() {
    let spot = okx::parse_instruments(data!("http_get_instruments_spot.json")).unwrap();
    assert_eq!(spot.len(), 5);
    let btc = &spot[0];
    assert_eq!(btc.symbol, sym("BTC-USD"));
    assert_eq!((btc.base.as_str(), btc.quote.as_str()), ("BTC", "USD"));
    assert_eq!(btc.tick_size, fx("0.1"));
    assert_eq!(btc.lot_size, fx("0.00000001"));
    assert_eq!(btc.min_qty, fx("0.00001"));
    // min(maxLmtSz 9999999999, maxMktSz 1000000)
    assert_eq!(btc.max_qty, fx("1000000"));
    assert_eq!(btc.contract_size, Fixed::ONE);
    assert!(btc.trading);
    // ETH-USD maxLmtSz 999999999999 is beyond Fixed: only the market cap remains.
    assert_eq!(spot[1].max_qty, fx("1000000"));

    let swap = okx::parse_instruments(data!("http_get_instruments_swap.json")).unwrap();
    let inverse = &swap[0];
    assert_eq!(inverse.symbol, sym("BTC-USD-SWAP"));
    assert_eq!(
        (inverse.base.as_str(), inverse.quote.as_str()),
        ("BTC", "USD")
    );
    assert_eq!(inverse.contract_size, fx("100"));
    assert_eq!(inverse.lot_size, fx("1"));
    assert_eq!(inverse.max_qty, fx("30000"));
    let linear = &swap[2];
    assert_eq!(linear.symbol, sym("BTC-USDT-SWAP"));
    assert_eq!(linear.contract_size, fx("0.01"));
    assert_eq!(linear.max_qty, fx("12000"));

    let pushed = okx::parse_instruments(data!("ws_instruments.json")).unwrap();
    assert_eq!(pushed[0].symbol, sym("BTC-USDT-SWAP"));
    assert_eq!(pushed[0].max_qty, fx("30000"));
    for f in [
        data!("http_get_instruments_futures.json"),
        data!("http_get_instruments_margin.json"),
        data!("http_get_instruments_option.json"),
    ] {
        assert!(!okx::parse_instruments(f).unwrap().is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

#[test]
fn error_codes() {
    let body = |code: &str, msg: &str| format!(r#"{{"code":"{code}","msg":"{msg}","data":[]}}"#);
    assert_eq!(
        okx::parse_error(429, &body("50011", "Rate limit reached"), Some("2")),
        Some(VenueError::RateLimited {
            retry_after_ms: Some(2000),
            banned: false
        })
    );
    assert!(matches!(
        okx::parse_error(200, &body("50061", "Sub-account rate limit reached"), None),
        Some(VenueError::RateLimited { .. })
    ));
    assert!(matches!(
        okx::parse_error(401, &body("50102", "Timestamp request expired"), None),
        Some(VenueError::TimestampOutsideRecvWindow(_))
    ));
    for code in ["50111", "50113", "50105"] {
        assert!(matches!(
            okx::parse_error(401, &body(code, "x"), None),
            Some(VenueError::AuthFailure(_))
        ));
    }
    assert!(matches!(
        okx::parse_error(200, &body("51001", "Instrument ID does not exist"), None),
        Some(VenueError::UnknownSymbol(_))
    ));
    assert!(matches!(
        okx::parse_error(200, &body("51603", "Order does not exist"), None),
        Some(VenueError::OrderNotFound(_))
    ));
    for code in ["50001", "50004"] {
        assert!(matches!(
            okx::parse_error(200, &body(code, "x"), None),
            Some(VenueError::UnknownOutcome(_))
        ));
    }
    // Order placement failures: top-level code 1, the reason in the item.
    let failed = r#"{"code":"1","msg":"All operations failed","data":[{"clOrdId":"a1","ordId":"","sCode":"51008","sMsg":"Order failed. Insufficient USDT balance in account."}]}"#;
    assert!(matches!(
        okx::parse_error(200, failed, None),
        Some(VenueError::InsufficientBalance(_))
    ));
    let dup = r#"{"code":"1","msg":"","data":[{"clOrdId":"a1","ordId":"","sCode":"51016","sMsg":"Duplicated clOrdId"}]}"#;
    assert_eq!(
        okx::parse_error(200, dup, None),
        Some(VenueError::DuplicateClientOrderId)
    );
    assert!(matches!(
        okx::parse_error(503, "<html>Service Unavailable</html>", None),
        Some(VenueError::UnknownOutcome(_))
    ));
    assert_eq!(
        okx::parse_error(200, data!("http_get_trades.json"), None),
        None
    );
}

// ---------------------------------------------------------------------------------------------
// Requests

fn spec(kind: OrderSpecKind, tif: TimeInForce) -> OrderSpec {
    OrderSpec {
        symbol: sym("BTC-USDT"),
        client_order_id: "b15".into(),
        side: Side::Buy,
        kind,
        qty: fx("2"),
        time_in_force: tif,
        reduce_only: false,
    }
}

fn body_json(r: &keel_adapters::model::RestRequest) -> Value {
    serde_json::from_str(r.body.as_deref().unwrap()).unwrap()
}

#[test]
fn place_order_matches_the_documented_example() {
    // OKX docs, POST /api/v5/trade/order request example.
    let doc: Value = serde_json::from_str(
        r#"{"instId":"BTC-USDT","tdMode":"cash","clOrdId":"b15","side":"buy","ordType":"limit","px":"2.15","sz":"2"}"#,
    )
    .unwrap();
    let r = okx::place_order(
        &spec(OrderSpecKind::Limit { price: fx("2.15") }, TimeInForce::Gtc),
        okx::TdMode::Cash,
    )
    .unwrap();
    assert_eq!(r.method, Method::Post);
    assert_eq!(r.path, "/api/v5/trade/order");
    assert!(r.signed);
    assert!(!r.retry_safe);
    assert_eq!(body_json(&r), doc);
}

#[test]
fn place_order_variants() {
    let limit = |tif| {
        body_json(
            &okx::place_order(
                &spec(OrderSpecKind::Limit { price: fx("2.15") }, tif),
                okx::TdMode::Cross,
            )
            .unwrap(),
        )
    };
    assert_eq!(limit(TimeInForce::PostOnly)["ordType"], "post_only");
    assert_eq!(limit(TimeInForce::Ioc)["ordType"], "ioc");
    assert_eq!(limit(TimeInForce::Fok)["ordType"], "fok");
    assert_eq!(limit(TimeInForce::Fok)["tdMode"], "cross");

    let mut market = spec(OrderSpecKind::Market, TimeInForce::Gtc);
    market.reduce_only = true;
    let b = body_json(&okx::place_order(&market, okx::TdMode::Cash).unwrap());
    assert_eq!(b["ordType"], "market");
    assert_eq!(b["tgtCcy"], "base_ccy");
    assert_eq!(b["reduceOnly"], true);
    assert!(b.get("px").is_none());

    let stop = okx::place_order(
        &spec(
            OrderSpecKind::StopMarket {
                trigger: fx("95000"),
            },
            TimeInForce::Gtc,
        ),
        okx::TdMode::Isolated,
    )
    .unwrap();
    assert_eq!(stop.path, "/api/v5/trade/order-algo");
    let b = body_json(&stop);
    assert_eq!(b["ordType"], "conditional");
    assert_eq!(b["slTriggerPx"], "95000");
    assert_eq!(b["slOrdPx"], "-1");
    assert_eq!(b["algoClOrdId"], "b15");
    let tp = body_json(
        &okx::place_order(
            &spec(
                OrderSpecKind::TakeProfitMarket { trigger: fx("15") },
                TimeInForce::Gtc,
            ),
            okx::TdMode::Cross,
        )
        .unwrap(),
    );
    assert_eq!(tp["tpTriggerPx"], "15");
    assert_eq!(tp["tpOrdPx"], "-1");
    let sl = body_json(
        &okx::place_order(
            &spec(
                OrderSpecKind::StopLimit {
                    trigger: fx("15"),
                    price: fx("14.5"),
                },
                TimeInForce::Gtc,
            ),
            okx::TdMode::Cross,
        )
        .unwrap(),
    );
    assert_eq!(sl["slOrdPx"], "14.5");

    // clOrdId: alphanumeric, at most 32.
    let mut bad = spec(OrderSpecKind::Market, TimeInForce::Gtc);
    bad.client_order_id = "keel-1".into();
    assert!(okx::place_order(&bad, okx::TdMode::Cash).is_err());
    bad.client_order_id = "a".repeat(33);
    assert!(okx::place_order(&bad, okx::TdMode::Cash).is_err());
    bad.client_order_id = "a".repeat(32);
    assert!(okx::place_order(&bad, okx::TdMode::Cash).is_ok());
}

#[test]
fn cancel_and_dead_man_switch() {
    // OKX docs cancel-order example body.
    let r = okx::cancel_order("BTC-USD-190927", okx::OrderRef::Venue("590908157585625111"));
    assert_eq!(r.path, "/api/v5/trade/cancel-order");
    assert_eq!(
        body_json(&r),
        serde_json::from_str::<Value>(
            r#"{"ordId":"590908157585625111","instId":"BTC-USD-190927"}"#
        )
        .unwrap()
    );
    let r = okx::cancel_all_after(60).unwrap();
    assert_eq!(r.path, "/api/v5/trade/cancel-all-after");
    assert_eq!(body_json(&r), serde_json::json!({"timeOut": "60"}));
    assert!(okx::cancel_all_after(0).is_ok());
    assert!(okx::cancel_all_after(5).is_err());
    assert!(okx::cancel_all_after(121).is_err());

    let r = okx::cancel_batch(&[
        ("BTC-USDT", okx::OrderRef::Client("a1")),
        ("ETH-USDT", okx::OrderRef::Venue("42")),
    ])
    .unwrap();
    assert_eq!(
        body_json(&r),
        serde_json::json!([
            {"instId": "BTC-USDT", "clOrdId": "a1"},
            {"instId": "ETH-USDT", "ordId": "42"}
        ])
    );
    let r = okx::cancel_algos(&[("BTC-USDT", okx::OrderRef::Client("s1"))]).unwrap();
    assert_eq!(
        body_json(&r),
        serde_json::json!([{"instId": "BTC-USDT", "algoClOrdId": "s1"}])
    );
}

#[test]
fn queries() {
    let r = okx::candles(
        "BTC-USDT",
        Interval::parse("1m").unwrap(),
        okx::CandlePage {
            after_ms: Some(1747093980000),
            before_ms: None,
            limit: Some(100),
        },
    )
    .unwrap();
    assert_eq!(r.method, Method::Get);
    assert_eq!(r.path, "/api/v5/market/candles");
    assert!(!r.signed);
    assert_eq!(
        r.query,
        [
            ("instId".to_string(), "BTC-USDT".to_string()),
            ("bar".into(), "1m".into()),
            ("after".into(), "1747093980000".into()),
            ("limit".into(), "100".into())
        ]
    );
    let r = okx::history_candles(
        "BTC-USDT",
        Interval::parse("1d").unwrap(),
        Default::default(),
    )
    .unwrap();
    assert_eq!(r.path, "/api/v5/market/history-candles");
    assert_eq!(r.query[1], ("bar".to_string(), "1Dutc".to_string()));
    assert!(
        okx::candles(
            "BTC-USDT",
            Interval::parse("7m").unwrap(),
            Default::default()
        )
        .is_err()
    );
    assert_eq!(
        okx::interval_to_bar(Interval::parse("4h").unwrap()).as_deref(),
        Some("4H")
    );
    assert_eq!(
        okx::bar_to_interval("1Dutc").unwrap().ns,
        86_400_000_000_000
    );
    assert!(matches!(
        okx::bar_to_interval("1M"),
        Err(DecodeError::Unsupported(_))
    ));

    let r = okx::orders_pending(Some("SPOT"), None);
    assert!(r.signed);
    assert_eq!(r.query, [("instType".to_string(), "SPOT".to_string())]);
    assert_eq!(okx::balance(None).path, "/api/v5/account/balance");
    assert_eq!(okx::positions(None, None).path, "/api/v5/account/positions");
    let r = okx::instruments("SWAP", None);
    assert!(!r.signed);
    assert_eq!(r.query, [("instType".to_string(), "SWAP".to_string())]);
    let r = okx::books("BTC-USDT", Some(400));
    assert_eq!(r.path, "/api/v5/market/books");
    assert_eq!(r.query[1], ("sz".to_string(), "400".to_string()));
}

#[test]
fn websocket_frames() {
    // OKX docs: {"op":"subscribe","args":[{"channel":"tickers","instId":"BTC-USDT"}]}
    let s = okx::ws_subscribe(&[okx::Channel::Tickers {
        inst_id: "BTC-USDT".into(),
    }])
    .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&s).unwrap(),
        serde_json::json!({"op": "subscribe", "args": [{"channel": "tickers", "instId": "BTC-USDT"}]})
    );
    let candles = okx::Channel::Candles {
        inst_id: "BTC-USDT".into(),
        interval: Interval::parse("1m").unwrap(),
    };
    assert_eq!(candles.endpoint(), okx::WsEndpoint::Business);
    let s = okx::ws_subscribe(&[candles]).unwrap();
    assert!(s.contains(r#""channel":"candle1m""#));
    let orders = okx::Channel::Orders {
        inst_type: "ANY".into(),
    };
    assert_eq!(orders.endpoint(), okx::WsEndpoint::Private);
    assert_eq!(
        okx::WsEndpoint::Public.url(true),
        "wss://wspap.okx.com:8443/ws/v5/public"
    );
    assert_eq!(okx::DEMO_HEADER, ("x-simulated-trading", "1"));

    // OKX docs login example.
    let login = okx::ws_login(
        "985d5b66-57ce-40fb-b714-afc0b9787083",
        "123456",
        "1538054050",
        "7L+zFQ+CEgGu5rzCj4+BdV2/uUHGqddA9pI6ztsRRPs=",
    );
    assert_eq!(
        serde_json::from_str::<Value>(&login).unwrap(),
        serde_json::json!({"op": "login", "args": [{
            "apiKey": "985d5b66-57ce-40fb-b714-afc0b9787083",
            "passphrase": "123456",
            "timestamp": "1538054050",
            "sign": "7L+zFQ+CEgGu5rzCj4+BdV2/uUHGqddA9pI6ztsRRPs="
        }]})
    );
    assert_eq!(
        okx::ws_login_prehash("1538054050"),
        "1538054050GET/users/self/verify"
    );
    assert_eq!(okx::ws_ping(), "ping");

    let s = okx::ws_place_order(
        "1512",
        &spec(OrderSpecKind::Limit { price: fx("2.15") }, TimeInForce::Gtc),
        okx::TdMode::Cash,
    )
    .unwrap();
    let v: Value = serde_json::from_str(&s).unwrap();
    assert_eq!(v["op"], "order");
    assert_eq!(v["id"], "1512");
    assert_eq!(v["args"][0]["px"], "2.15");
}

// ---------------------------------------------------------------------------------------------
// Every recorded payload

/// Files expected to decode to at least one event; every other file must give a clear
/// `Unsupported`/`Malformed`, except the ones expected to decode to no event.
const DECODES: &[&str] = &[
    "http_balance_detail_new_fields.json",
    "http_balance_detail_old_fields.json",
    "http_cancel_algo_order_response.json",
    "http_get_account_balance.json",
    "http_get_funding_rate_history.json",
    "http_get_orders_algo_history.json",
    "http_get_orders_algo_pending.json",
    "http_get_orders_algo_pending_attached_oco.json",
    "http_get_orders_algo_pending_close_fraction.json",
    "http_get_orders_history.json",
    "http_get_orders_pending.json",
    "http_get_orders_pending_with_attached_tp_sl.json",
    "http_get_positions.json",
    "http_get_trades.json",
    "http_place_algo_order_rejected.json",
    "http_place_algo_order_response.json",
    "http_place_order_response.json",
    "http_transaction_detail.json",
    "http_transaction_detail_empty_fee.json",
    "ws_account.json",
    "ws_bbo_tbt.json",
    "ws_books_snapshot.json",
    "ws_books_update.json",
    "ws_candle.json",
    "ws_funding_rate.json",
    "ws_orders.json",
    "ws_orders_adl.json",
    "ws_orders_algo.json",
    "ws_orders_fok.json",
    "ws_orders_ioc.json",
    "ws_orders_liquidation.json",
    "ws_orders_optimal_limit_ioc.json",
    "ws_orders_option.json",
    "ws_orders_trigger.json",
    "ws_tickers.json",
    "ws_trades.json",
];

/// Well-formed messages with nothing to report.
const EMPTY: &[&str] = &["ws_account_empty.json"];

#[test]
fn every_recorded_payload_decodes_or_is_clearly_refused() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/okx");
    let mut seen = 0;
    let mut decoded = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        seen += 1;
        match okx::decode(&text) {
            Ok(ev) if EMPTY.contains(&name.as_str()) => assert!(ev.is_empty(), "{name}"),
            Ok(ev) => {
                assert!(!ev.is_empty(), "{name} decoded to no event");
                assert!(
                    DECODES.contains(&name.as_str()),
                    "{name} decodes but is not listed"
                );
                decoded += 1;
            }
            Err(DecodeError::Unsupported(kind)) => {
                assert!(kind.starts_with("okx"), "{name}: {kind}");
                assert!(
                    !DECODES.contains(&name.as_str()),
                    "{name} regressed: {kind}"
                );
            }
            Err(e @ DecodeError::Malformed { .. }) => {
                panic!("{name}: recorded payload is malformed? {e}")
            }
        }
    }
    assert_eq!(decoded, DECODES.len());
    assert!(seen >= DECODES.len() + EMPTY.len());
}
