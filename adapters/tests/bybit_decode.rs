//! Bybit decoding against recorded payloads (nautilus captures in `data/bybit`, official doc
//! examples in `data/bybit_docs`). Expected values are the literals in those files.

use keel_adapters::bybit;
use keel_adapters::model::{
    BalanceUpdate, Control, DecodeError, DepthUpdate, FillEvent, FundingRate, OrderEvent,
    OrderState, OrderType, PositionUpdate, TimeInForce, VenueEvent,
};
use keel_engine::candle::{Candle, Interval};
use keel_engine::event::{BookTicker, Liquidity, Side, Trade};
use keel_engine::fixed::Fixed;
use keel_engine::symbol::Symbol;

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

const MS: i64 = 1_000_000;

fn one(text: &str) -> VenueEvent {
    let mut v = bybit::decode(text).unwrap();
    assert_eq!(v.len(), 1, "{v:?}");
    v.remove(0)
}

fn order(text: &str) -> OrderEvent {
    match one(text) {
        VenueEvent::Order(o) => o,
        other => panic!("not an order: {other:?}"),
    }
}

fn fill(text: &str) -> FillEvent {
    match one(text) {
        VenueEvent::Fill(f) => f,
        other => panic!("not a fill: {other:?}"),
    }
}

fn control(text: &str) -> Control {
    match one(text) {
        VenueEvent::Control(c) => c,
        other => panic!("not control: {other:?}"),
    }
}

fn unsupported(text: &str) -> String {
    match bybit::decode(text) {
        Err(DecodeError::Unsupported(kind)) => kind,
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Public market data

#[test]
fn ws_kline_in_progress_and_closed() {
    let expected = Candle {
        symbol: sym("BTCUSDT"),
        open_time_ns: 1672324800000 * MS,
        interval_ns: 5 * 60 * 1_000_000_000,
        open: fx("16649.5"),
        high: fx("16677"),
        low: fx("16608"),
        close: fx("16677"),
        volume: fx("2.081"),
    };
    for text in [
        data!("bybit/ws_kline.json"),
        data!("bybit_docs/v5/websocket/public/kline/001_response_example.json"),
    ] {
        assert_eq!(
            one(text),
            VenueEvent::Candle {
                candle: expected,
                closed: false
            }
        );
        let confirmed = text.replace("\"confirm\": false", "\"confirm\": true");
        assert_eq!(
            one(&confirmed),
            VenueEvent::Candle {
                candle: expected,
                closed: true
            }
        );
    }
}

#[test]
fn ws_kline_month_interval_is_unsupported() {
    let text = data!("bybit/ws_kline.json").replace("\"interval\": \"5\"", "\"interval\": \"M\"");
    assert!(unsupported(&text).contains("monthly"));
}

#[test]
fn ws_public_trade_doc_example() {
    let text = data!("bybit_docs/v5/websocket/public/trade/001_response_example.json");
    let VenueEvent::Trade(t) = one(text) else {
        panic!()
    };
    assert_eq!(t.symbol, sym("BTCUSDT"));
    assert_eq!(t.ts_event_ns, 1672304486865 * MS);
    assert_eq!(t.price, fx("16578.50"));
    assert_eq!(t.qty, fx("0.001"));
    assert_eq!(t.aggressor, Side::Buy);
    // A UUID id folds to the same u64 every time, and a different UUID to a different one.
    let again = one(text);
    assert_eq!(again, VenueEvent::Trade(t));
    let other = text.replace("20f43950-d8dd", "20f43950-d8de");
    let VenueEvent::Trade(t2) = one(&other) else {
        panic!()
    };
    assert_ne!(t2.trade_id, t.trade_id);
}

#[test]
fn nautilus_trade_topic_is_not_a_v5_topic() {
    // Bybit v5 names the topic publicTrade.{symbol}; this capture says trade.linear.BTCUSDT.
    assert!(unsupported(data!("bybit/ws_public_trade.json")).contains("trade.linear.BTCUSDT"));
    let fixed =
        data!("bybit/ws_public_trade.json").replace("trade.linear.BTCUSDT", "publicTrade.BTCUSDT");
    let VenueEvent::Trade(t) = one(&fixed) else {
        panic!()
    };
    assert_eq!(t.symbol, sym("BTCUSDT"));
    assert_eq!(t.ts_event_ns, 1709891679000 * MS);
    assert_eq!(
        (t.price, t.qty, t.aggressor),
        (fx("27451.00"), fx("0.010"), Side::Buy)
    );
}

#[test]
fn rest_recent_trade_numeric_id_is_kept() {
    let text = data!("bybit_docs/v5/market/recent-trade/001_response_example.json");
    assert_eq!(
        one(text),
        VenueEvent::Trade(Trade {
            symbol: sym("BTCUSDT"),
            ts_event_ns: 1672052955758 * MS,
            price: fx("16618.49"),
            qty: fx("0.00012"),
            aggressor: Side::Buy,
            trade_id: 2100000000007764263,
        })
    );
    let VenueEvent::Trade(t) = one(data!("bybit/http_get_trades_recent.json")) else {
        panic!()
    };
    assert_eq!(
        (t.price, t.qty, t.ts_event_ns),
        (fx("27450.50"), fx("0.005"), 1709891679000 * MS)
    );
}

fn depth(text: &str) -> DepthUpdate {
    match one(text) {
        VenueEvent::Depth(d) => d,
        other => panic!("not depth: {other:?}"),
    }
}

#[test]
fn ws_orderbook_snapshot_then_delta_in_sequence() {
    let snap = depth(data!("bybit/ws_orderbook_snapshot.json"));
    assert_eq!(
        snap,
        DepthUpdate {
            symbol: sym("BTCUSDT"),
            ts_event_ns: 1709891679000 * MS,
            snapshot: true,
            first_update_id: 123456789,
            last_update_id: 123456789,
            prev_last_update_id: None,
            bids: vec![(fx("27450.00"), fx("0.500")), (fx("27449.50"), fx("1.000"))],
            asks: vec![(fx("27451.00"), fx("0.750")), (fx("27451.50"), fx("0.900"))],
            checksum: None,
        }
    );
    let delta = depth(data!("bybit/ws_orderbook_delta.json"));
    assert!(!delta.snapshot);
    assert_eq!(delta.ts_event_ns, 1709891679500 * MS);
    assert_eq!(delta.bids, vec![(fx("27450.00"), fx("0.400"))]);
    assert_eq!(delta.asks, vec![(fx("27451.00"), Fixed::ZERO)]);
    // The client's gap rule: a delta follows when its u is the previous u + 1.
    assert_eq!(delta.first_update_id, snap.last_update_id + 1);
    assert_eq!(delta.last_update_id, 123456790);
}

#[test]
fn ws_orderbook_delta_with_u_1_is_a_snapshot() {
    let text = data!("bybit/ws_orderbook_delta.json").replace("\"u\": 123456790", "\"u\": 1");
    let d = depth(&text);
    assert!(d.snapshot);
    assert_eq!(d.last_update_id, 1);
}

#[test]
fn ws_orderbook_doc_delta_uses_matching_engine_time() {
    let d = depth(data!(
        "bybit_docs/v5/websocket/public/orderbook/001_response_example.json"
    ));
    assert!(!d.snapshot);
    assert_eq!(d.ts_event_ns, 1687940967464 * MS); // cts, not ts 1687940967466
    assert_eq!(d.last_update_id, 177400507);
    assert_eq!(d.bids.len(), 5);
    assert_eq!(d.asks.len(), 7);
    assert_eq!(d.bids[0], (fx("30247.20"), fx("30.028")));
    assert_eq!(d.bids[4], (fx("30240.00"), Fixed::ZERO));
    assert_eq!(d.asks[6], (fx("30252.50"), fx("4.591")));
}

#[test]
fn rest_orderbook_is_a_snapshot() {
    let d = depth(data!("bybit/http_get_orderbook.json"));
    assert!(d.snapshot);
    assert_eq!(d.last_update_id, 1234567);
    assert_eq!(d.ts_event_ns, 1709891679000 * MS);
    assert_eq!(d.bids[0], (fx("27450.50"), fx("1.500")));
    assert_eq!(d.asks[2], (fx("27452.00"), fx("0.500")));
    let doc = depth(data!(
        "bybit_docs/v5/market/orderbook/001_response_example.json"
    ));
    assert_eq!(doc.ts_event_ns, 1716863718905 * MS);
    assert_eq!(doc.last_update_id, 230704);
    assert_eq!(doc.bids, vec![(fx("65485.47"), fx("47.081829"))]);
    assert_eq!(doc.asks, vec![(fx("65557.7"), fx("16.606555"))]);
}

#[test]
fn ws_linear_ticker_gives_book_ticker_and_funding() {
    let events = bybit::decode(data!("bybit/ws_ticker_linear.json")).unwrap();
    assert_eq!(
        events,
        vec![
            VenueEvent::BookTicker(BookTicker {
                symbol: sym("BTCUSDT"),
                ts_event_ns: 1673272861686 * MS,
                bid: fx("17215.50"),
                bid_qty: fx("84.489"),
                ask: fx("17216.00"),
                ask_qty: fx("83.020"),
            }),
            VenueEvent::Funding(FundingRate {
                symbol: sym("BTCUSDT"),
                rate: fx("-0.000212"),
                funding_time_ns: 1673280000000 * MS,
                mark_price: fx("17217.33"),
                ts_event_ns: 1673272861686 * MS,
            }),
        ]
    );
}

#[test]
fn ticker_delta_without_book_fields_gives_only_what_it_has() {
    // A delta that only moved the funding rate and the mark price.
    let text = r#"{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT",
        "fundingRate":"-0.000212","nextFundingTime":"1673280000000","markPrice":"17217.33"},
        "cs":24987956059,"ts":1673272861686}"#;
    assert!(matches!(one(text), VenueEvent::Funding(_)));
    let text = r#"{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT",
        "lastPrice":"17216.00"},"cs":24987956059,"ts":1673272861686}"#;
    assert!(unsupported(text).contains("tickers"));
}

#[test]
fn spot_and_option_ws_tickers_are_unsupported() {
    unsupported(data!("bybit/ws_ticker_option.json"));
    unsupported(data!(
        "bybit_docs/v5/websocket/public/ticker/001_response_example.json"
    ));
    unsupported(data!(
        "bybit_docs/v5/websocket/public/ticker/002_response_example.json"
    ));
}

#[test]
fn rest_tickers() {
    let events = bybit::decode(data!(
        "bybit_docs/v5/market/tickers/001_response_example.json"
    ))
    .unwrap();
    assert_eq!(
        events,
        vec![
            VenueEvent::BookTicker(BookTicker {
                symbol: sym("BTCUSD"),
                ts_event_ns: 1760352369814 * MS,
                bid: fx("103401.00"),
                bid_qty: fx("1063"),
                ask: fx("109152.80"),
                ask_qty: fx("9854"),
            }),
            VenueEvent::Funding(FundingRate {
                symbol: sym("BTCUSD"),
                rate: fx("0.0001"),
                funding_time_ns: 1760371200000 * MS,
                mark_price: fx("114898.43"),
                ts_event_ns: 1760352369814 * MS,
            }),
        ]
    );
    let VenueEvent::BookTicker(spot) = one(data!(
        "bybit_docs/v5/market/tickers/003_response_example.json"
    )) else {
        panic!()
    };
    assert_eq!((spot.bid, spot.ask_qty), (fx("20517.96"), fx("1.862172")));
}

#[test]
fn rest_funding_history() {
    let events = bybit::decode(data!("bybit/http_get_funding_history.json")).unwrap();
    assert_eq!(
        events[1],
        VenueEvent::Funding(FundingRate {
            symbol: sym("BTCUSDT"),
            rate: fx("0.00015"),
            funding_time_ns: 1709856000000 * MS,
            mark_price: Fixed::ZERO,
            ts_event_ns: 1709856000000 * MS,
        })
    );
}

#[test]
fn rest_klines_keep_venue_order_newest_first() {
    let hour = Interval::parse("1h").unwrap();
    let events = bybit::parse_klines(
        data!("bybit_docs/v5/market/kline/001_response_example.json"),
        hour,
    )
    .unwrap();
    let starts: Vec<i64> = events
        .iter()
        .map(|e| match e {
            VenueEvent::Candle { candle, .. } => candle.open_time_ns / MS,
            _ => panic!(),
        })
        .collect();
    assert_eq!(starts, vec![1670608800000, 1670605200000, 1670601600000]);
    assert_eq!(
        events[0],
        VenueEvent::Candle {
            candle: Candle {
                symbol: sym("BTCUSD"),
                open_time_ns: 1670608800000 * MS,
                interval_ns: 3_600_000_000_000,
                open: fx("17071"),
                high: fx("17073"),
                low: fx("17027"),
                close: fx("17055.5"),
                volume: fx("268611"),
            },
            // Ended long before the server time 1672025956592.
            closed: true,
        }
    );
    // decode() cannot know the interval.
    assert!(
        unsupported(data!(
            "bybit_docs/v5/market/kline/001_response_example.json"
        ))
        .contains("parse_klines")
    );
}

#[test]
fn rest_kline_still_forming_is_not_closed() {
    let minute = Interval::parse("1m").unwrap();
    let events = bybit::parse_klines(data!("bybit/http_get_klines_linear.json"), minute).unwrap();
    // Starts 1709891679000, so it ends after the server time 1709891679050.
    assert_eq!(
        events,
        vec![VenueEvent::Candle {
            candle: Candle {
                symbol: sym("BTCUSDT"),
                open_time_ns: 1709891679000 * MS,
                interval_ns: 60_000_000_000,
                open: fx("27450"),
                high: fx("27460"),
                low: fx("27440"),
                close: fx("27455"),
                volume: fx("123.45"),
            },
            closed: false,
        }]
    );
}

#[test]
fn instruments_linear_and_spot() {
    let linear = bybit::parse_instruments(data!("bybit/http_get_instruments_linear.json")).unwrap();
    assert_eq!(linear.len(), 2);
    let btc = &linear[0];
    assert_eq!(btc.symbol, sym("BTCUSDT"));
    assert_eq!((btc.base.as_str(), btc.quote.as_str()), ("BTC", "USDT"));
    assert_eq!(btc.tick_size, fx("0.5"));
    assert_eq!(btc.lot_size, fx("0.001"));
    assert_eq!(btc.min_qty, fx("0.001"));
    assert_eq!(btc.max_qty, fx("100.0"));
    assert_eq!(btc.min_notional, fx("5"));
    assert_eq!(btc.contract_size, Fixed::ONE);
    assert!(btc.trading);
    assert_eq!(
        (linear[1].tick_size, linear[1].lot_size),
        (fx("0.05"), fx("0.01"))
    );

    let spot = bybit::parse_instruments(data!("bybit/http_get_instruments_spot.json")).unwrap();
    let s = &spot[0];
    assert_eq!(s.tick_size, fx("0.1"));
    assert_eq!(s.lot_size, fx("0.0001")); // basePrecision
    assert_eq!(s.min_qty, fx("0.001"));
    assert_eq!(s.max_qty, fx("100.0"));
    assert_eq!(s.min_notional, fx("10")); // minOrderAmt
    assert_eq!(spot[1].lot_size, fx("0.00001"));

    let stock =
        bybit::parse_instruments(data!("bybit/http_get_instruments_linear_symbol_type.json"))
            .unwrap();
    assert_eq!(
        (stock[0].symbol, stock[0].min_notional),
        (sym("TSLAUSDT"), fx("1"))
    );
    let x =
        bybit::parse_instruments(data!("bybit/http_get_instruments_spot_xstocks.json")).unwrap();
    assert_eq!((x[0].symbol, x[0].tick_size), (sym("AAPLUSDT"), fx("0.01")));
}

#[test]
fn instruments_inverse_and_option_are_unsupported() {
    for text in [
        data!("bybit/http_get_instruments_inverse.json"),
        data!("bybit/http_get_instruments_inverse_symbol_type.json"),
        data!("bybit/http_get_instruments_option.json"),
        data!("bybit/http_get_instruments_option_symbol_id.json"),
    ] {
        assert!(matches!(
            bybit::parse_instruments(text),
            Err(DecodeError::Unsupported(_))
        ));
    }
    assert!(
        unsupported(data!("bybit/http_get_instruments_spot.json")).contains("parse_instruments")
    );
}

// ---------------------------------------------------------------------------------------------
// Orders

#[test]
fn ws_order_cancelled_by_user() {
    assert_eq!(
        order(data!("bybit/ws_account_order.json")),
        OrderEvent {
            symbol: sym("BTCUSDT"),
            client_order_id: "client-1".into(),
            venue_order_id: "abcdef123456".into(),
            state: OrderState::Canceled,
            side: Side::Buy,
            // orderType Limit with stopOrderType StopLoss.
            order_type: OrderType::StopLimit,
            time_in_force: Some(TimeInForce::Gtc),
            price: fx("30000"),
            trigger_price: Fixed::ZERO,
            qty: fx("0.010"),
            filled_qty: Fixed::ZERO,
            avg_price: Fixed::ZERO,
            reduce_only: false,
            reason: "CancelByUser".into(),
            ts_event_ns: 1700000005000 * MS,
        }
    );
}

#[test]
fn ws_order_filled() {
    let o = order(data!("bybit/ws_account_order_filled.json"));
    assert_eq!(o.state, OrderState::Filled);
    assert_eq!(o.client_order_id, "test-client-order-001");
    assert_eq!(o.venue_order_id, "5cf98598-39a7-459e-97bf-76ca765ee020");
    assert_eq!((o.price, o.qty), (fx("30000.50"), fx("0.100")));
    assert_eq!((o.filled_qty, o.avg_price), (fx("0.100"), fx("30000.50")));
    assert_eq!(o.trigger_price, fx("29500.00"));
    assert_eq!(o.ts_event_ns, 1672364262457 * MS);
    assert!(o.reason.is_empty());
}

#[test]
fn rejected_after_partial_fill_keeps_the_fill() {
    let ws = order(data!(
        "bybit/ws_account_order_partially_filled_rejected.json"
    ));
    assert_eq!(ws.state, OrderState::Rejected);
    assert_eq!(ws.symbol, sym("APEXUSDT"));
    assert_eq!(ws.client_order_id, "O-20251001-164609-APEX-000-49");
    assert_eq!(
        (ws.qty, ws.filled_qty, ws.avg_price),
        (fx("100.0"), fx("50.0"), fx("1.500"))
    );
    // "UNKNOWN" is Bybit's placeholder, not a reason.
    assert_eq!(ws.reason, "");
    let rest = order(data!("bybit/http_get_order_partially_filled_rejected.json"));
    assert_eq!(rest.state, OrderState::Rejected);
    assert_eq!(rest.reason, "INSUFFICIENT_MARGIN");
    assert_eq!(
        (rest.filled_qty, rest.avg_price),
        (fx("0.005"), fx("30000"))
    );
}

#[test]
fn conditional_order_types() {
    // (payload, type, side, trigger, limit price, reduce only): stopOrderType + triggerDirection.
    let cases: [(&str, OrderType, Side, &str, &str, bool); 8] = [
        (
            data!("bybit/ws_account_order_buy_stop_market.json"),
            OrderType::StopMarket,
            Side::Buy,
            "55000.00",
            "0",
            false,
        ),
        (
            data!("bybit/ws_account_order_market_if_touched.json"),
            OrderType::TakeProfitMarket,
            Side::Buy,
            "55000.00",
            "0",
            false,
        ),
        (
            data!("bybit/ws_account_order_sell_market_if_touched.json"),
            OrderType::TakeProfitMarket,
            Side::Sell,
            "55000.00",
            "0",
            false,
        ),
        (
            data!("bybit/ws_account_order_stop_market.json"),
            OrderType::StopMarket,
            Side::Sell,
            "45000.00",
            "0",
            false,
        ),
        (
            data!("bybit/ws_account_order_stop_limit.json"),
            OrderType::StopLimit,
            Side::Sell,
            "45000.00",
            "44500.00",
            false,
        ),
        (
            data!("bybit/ws_account_order_limit_if_touched.json"),
            OrderType::TakeProfitLimit,
            Side::Buy,
            "55000.00",
            "55500.00",
            false,
        ),
        (
            data!("bybit/ws_account_order_stop_loss.json"),
            OrderType::StopMarket,
            Side::Sell,
            "48000.00",
            "0",
            true,
        ),
        (
            data!("bybit/ws_account_order_take_profit.json"),
            OrderType::TakeProfitMarket,
            Side::Sell,
            "55000.00",
            "0",
            true,
        ),
    ];
    for (text, kind, side, trigger, price, reduce_only) in cases {
        let o = order(text);
        assert_eq!(o.state, OrderState::Untriggered, "{text}");
        assert_eq!(o.order_type, kind, "{text}");
        assert_eq!(o.side, side, "{text}");
        assert_eq!(o.trigger_price, fx(trigger), "{text}");
        assert_eq!(o.price, fx(price), "{text}");
        assert_eq!(o.reduce_only, reduce_only, "{text}");
    }
}

#[test]
fn rest_orders() {
    let events = bybit::decode(data!("bybit/http_get_orders_realtime.json")).unwrap();
    let VenueEvent::Order(b) = &events[0] else {
        panic!()
    };
    let VenueEvent::Order(s) = &events[1] else {
        panic!()
    };
    assert_eq!(
        (b.side, b.price, b.state),
        (Side::Buy, fx("3930.41"), OrderState::New)
    );
    assert_eq!(
        (s.side, s.price, s.client_order_id.as_str()),
        (Side::Sell, fx("3940.42"), "client-open-2")
    );
    assert_eq!(b.avg_price, Fixed::ZERO); // avgPrice null
    assert_eq!(s.ts_event_ns, 1761355905609 * MS);

    let events = bybit::decode(data!("bybit/http_get_orders_realtime_tp_sl.json")).unwrap();
    let VenueEvent::Order(tp) = &events[0] else {
        panic!()
    };
    let VenueEvent::Order(sl) = &events[1] else {
        panic!()
    };
    assert_eq!(
        (tp.order_type, tp.trigger_price, tp.price),
        (OrderType::TakeProfitMarket, fx("55000.00"), Fixed::ZERO)
    );
    assert_eq!(
        (sl.order_type, sl.trigger_price, sl.price),
        (OrderType::StopLimit, fx("48000.00"), fx("47500.00"))
    );

    let doc = order(data!(
        "bybit_docs/v5/order/open-order/001_response_example.json"
    ));
    assert_eq!(doc.order_type, OrderType::Limit); // stopOrderType UNKNOWN
    assert_eq!(
        (doc.price, doc.qty, doc.filled_qty),
        (fx("1600.00"), fx("0.10"), Fixed::ZERO)
    );
    assert_eq!(doc.reason, ""); // EC_NoError, cancelType UNKNOWN
}

#[test]
fn doc_ws_order_market_has_no_limit_price() {
    let o = order(data!(
        "bybit_docs/v5/websocket/private/order/002_stream_example.json"
    ));
    assert_eq!(o.order_type, OrderType::Market);
    assert_eq!(o.time_in_force, Some(TimeInForce::Ioc));
    assert_eq!(o.price, Fixed::ZERO); // the echoed "72.5" is a protection price
    assert_eq!((o.filled_qty, o.avg_price), (fx("1"), fx("75")));
    assert_eq!(o.state, OrderState::Filled);
}

#[test]
fn order_statuses_map() {
    let base = data!("bybit/ws_account_order.json");
    for (status, state) in [
        ("New", OrderState::New),
        ("PartiallyFilled", OrderState::PartiallyFilled),
        ("Filled", OrderState::Filled),
        ("Cancelled", OrderState::Canceled),
        ("Rejected", OrderState::Rejected),
        ("Untriggered", OrderState::Untriggered),
        ("Triggered", OrderState::Triggered),
        ("Deactivated", OrderState::Canceled),
        ("PartiallyFilledCanceled", OrderState::Canceled),
    ] {
        let text = base.replace(
            "\"orderStatus\": \"Cancelled\"",
            &format!("\"orderStatus\": \"{status}\""),
        );
        assert_eq!(order(&text).state, state, "{status}");
    }
    let text = base.replace(
        "\"orderStatus\": \"Cancelled\"",
        "\"orderStatus\": \"Melted\"",
    );
    match bybit::decode(&text) {
        Err(DecodeError::Malformed { what, .. }) => assert!(what.contains("orderStatus")),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Executions

#[test]
fn ws_execution_trade() {
    assert_eq!(
        fill(data!("bybit/ws_account_execution.json")),
        FillEvent {
            symbol: sym("BTCUSDT"),
            client_order_id: "test-order-link-001".into(),
            venue_order_id: "9aac161b-8ed6-450d-9cab-c5cc67c21784".into(),
            trade_id: "0ab1bdf7-4219-438b-b30a-32ec863018f7".into(),
            side: Side::Sell,
            price: fx("95900.1"),
            qty: fx("0.5"),
            fee: fx("26.3725275"),
            fee_asset: String::new(), // this capture has no feeCurrency
            liquidity: Liquidity::Taker,
            ts_event_ns: 1746270400353 * MS,
        }
    );
    let doc = fill(data!(
        "bybit_docs/v5/websocket/private/execution/002_stream_example.json"
    ));
    assert_eq!(doc.fee_asset, "USDT");
    assert_eq!(doc.client_order_id, "");
}

#[test]
fn adl_is_a_fill_and_funding_is_not() {
    let adl = fill(data!("bybit/ws_account_execution_adl.json"));
    assert_eq!(
        (adl.price, adl.qty, adl.fee),
        (fx("95850.0"), fx("0.5"), Fixed::ZERO)
    );
    let funding = data!("bybit/ws_account_execution.json")
        .replace("\"execType\": \"Trade\"", "\"execType\": \"Funding\"");
    assert!(unsupported(&funding).contains("Funding"));
}

#[test]
fn fast_execution() {
    let f = fill(data!("bybit/ws_account_execution_fast.json"));
    assert_eq!(f.symbol, sym("ICPUSDT"));
    assert_eq!(
        (f.price, f.qty, f.side),
        (fx("12.015"), fx("3000"), Side::Sell)
    );
    assert_eq!((f.fee, f.fee_asset.as_str()), (Fixed::ZERO, ""));
    assert_eq!(f.liquidity, Liquidity::Taker);
    assert_eq!(f.ts_event_ns, 1716800399334 * MS);
    assert_eq!(f.trade_id, "3510f361-0add-5c7b-a2e7-9679810944fc");
    assert_eq!(
        bybit::decode(data!("bybit/ws_account_execution_fast_envelope_id.json")).unwrap(),
        vec![]
    );
}

#[test]
fn rest_executions() {
    let events = bybit::decode(data!("bybit/http_get_executions.json")).unwrap();
    let VenueEvent::Fill(a) = &events[0] else {
        panic!()
    };
    let VenueEvent::Fill(b) = &events[1] else {
        panic!()
    };
    assert_eq!(
        (a.price, a.qty, a.fee, a.fee_asset.as_str()),
        (fx("50000.00"), fx("0.100"), fx("0.0150"), "USDT")
    );
    assert_eq!(a.liquidity, Liquidity::Maker);
    assert_eq!(a.client_order_id, "test-order-001");
    assert_eq!(
        (b.side, b.liquidity, b.fee),
        (Side::Sell, Liquidity::Taker, fx("0.9000"))
    );
    assert_eq!(b.ts_event_ns, 1672282822529 * MS);
}

// ---------------------------------------------------------------------------------------------
// Positions and balances

fn position(text: &str) -> PositionUpdate {
    match one(text) {
        VenueEvent::Position(p) => p,
        other => panic!("not a position: {other:?}"),
    }
}

#[test]
fn ws_short_position_is_negative() {
    assert_eq!(
        position(data!("bybit/ws_account_position.json")),
        PositionUpdate {
            symbol: sym("ETHUSDT"),
            qty: fx("-0.01"),
            entry_price: fx("3641.075"),
            unrealized_pnl: fx("-0.00255"),
            liquidation_price: fx("51764.83003276"),
            leverage: fx("30"),
            ts_event_ns: 1762199125472 * MS,
        }
    );
    let flat = position(data!(
        "bybit_docs/v5/websocket/private/position/002_stream_example.json"
    ));
    assert_eq!((flat.qty, flat.leverage), (Fixed::ZERO, fx("10")));
}

#[test]
fn rest_positions_long_short_flat() {
    let events = bybit::decode(data!("bybit/http_get_positions.json")).unwrap();
    let p: Vec<&PositionUpdate> = events
        .iter()
        .map(|e| match e {
            VenueEvent::Position(p) => p,
            _ => panic!(),
        })
        .collect();
    assert_eq!(
        *p[0],
        PositionUpdate {
            symbol: sym("BTCUSDT"),
            qty: fx("0.5"),
            entry_price: fx("50000.00"),
            unrealized_pnl: fx("250.00"),
            liquidation_price: fx("45000.00"),
            leverage: fx("10"),
            ts_event_ns: 1697673600012 * MS,
        }
    );
    assert_eq!((p[1].qty, p[1].entry_price), (fx("-5.0"), fx("3000.00")));
    assert_eq!(
        (p[2].symbol, p[2].qty, p[2].liquidation_price),
        (sym("SOLUSDT"), Fixed::ZERO, Fixed::ZERO)
    );
}

#[test]
fn position_without_side_but_with_size_is_malformed() {
    let text = data!("bybit_docs/v5/websocket/private/position/002_stream_example.json")
        .replace("\"size\": \"0\"", "\"size\": \"1\"");
    match bybit::decode(&text) {
        Err(DecodeError::Malformed { what, .. }) => assert!(what.contains("side"), "{what}"),
        other => panic!("{other:?}"),
    }
}

fn balances(text: &str) -> Vec<BalanceUpdate> {
    bybit::decode(text)
        .unwrap()
        .into_iter()
        .map(|e| match e {
            VenueEvent::Balance(b) => b,
            other => panic!("not a balance: {other:?}"),
        })
        .collect()
}

#[test]
fn ws_wallet_free_matches_available_to_withdraw() {
    let b = balances(data!("bybit/ws_account_wallet.json"));
    assert_eq!(
        b,
        vec![
            BalanceUpdate {
                asset: "BTC".into(),
                free: fx("0.00092964"),   // availableToWithdraw in the payload
                locked: fx("0.00010000"), // totalOrderIM
                ts_event_ns: 1700034722104 * MS,
            },
            BalanceUpdate {
                asset: "USDT".into(),
                free: fx("9519.89806037"), // availableToWithdraw in the payload
                locked: fx("127.8573161"), // totalPositionIM
                ts_event_ns: 1700034722104 * MS,
            },
        ]
    );
}

#[test]
fn wallet_margin_above_balance_is_capped() {
    let b = balances(data!("bybit/ws_account_wallet_locked_exceeds_total.json"));
    // walletBalance 100.0, totalOrderIM 80.0 + totalPositionIM 40.0.
    assert_eq!((b[0].free, b[0].locked), (Fixed::ZERO, fx("100.0")));
    let small = balances(data!("bybit/ws_account_wallet_small_order.json"));
    assert_eq!(small[0].locked, fx("50.028"));
    assert_eq!(small[0].free, fx("51333.82543837") - fx("50.028"));
}

#[test]
fn rest_wallet_balance() {
    let b = balances(data!("bybit/http_get_wallet_balance.json"));
    assert_eq!(b.len(), 3);
    assert_eq!(
        b[1],
        BalanceUpdate {
            asset: "USDT".into(),
            free: fx("1000.50"),
            locked: Fixed::ZERO,
            ts_event_ns: 1234567890 * MS,
        }
    );
    let doc = balances(data!(
        "bybit_docs/v5/websocket/private/wallet/002_stream_example.json"
    ));
    assert_eq!(
        (doc[0].asset.as_str(), doc[0].free),
        ("BTC", fx("0.00102964"))
    );
}

// ---------------------------------------------------------------------------------------------
// Protocol traffic

#[test]
fn auth_replies() {
    assert_eq!(
        control(data!("bybit/ws_auth_success.json")),
        Control::AuthOk
    );
    let Control::AuthFailed { reason } = control(data!("bybit/ws_auth_failure.json")) else {
        panic!()
    };
    assert!(
        reason.contains("10003") && reason.contains("Invalid apikey"),
        "{reason}"
    );
    assert_eq!(
        control(data!(
            "bybit_docs/v5/websocket/trade/guideline/002_response_example.json"
        )),
        Control::AuthOk
    );
    assert_eq!(
        control(data!(
            "bybit_docs/v5/websocket/wss-authentication/002_authentication.json"
        )),
        Control::AuthOk
    );
}

#[test]
fn subscribe_replies() {
    assert_eq!(
        control(data!("bybit/ws_subscription_ack.json")),
        Control::Subscribed {
            topic: "sub-orderbook-1".into()
        }
    );
    assert_eq!(
        control(data!("bybit/ws_subscription_failure.json")),
        Control::SubscribeFailed {
            topic: String::new(),
            reason: "Invalid topic: invalid.topic.BTCUSDT".into()
        }
    );
    assert_eq!(
        control(data!(
            "bybit_docs/v5/websocket/wss-authentication/011_understanding_the_subscription_response.json"
        )),
        Control::Subscribed {
            topic: "10001".into()
        }
    );
    assert_eq!(
        control(data!(
            "bybit_docs/v5/websocket/wss-authentication/013_understanding_the_subscription_response.json"
        )),
        Control::Subscribed {
            topic: "orderbook.100.BTC-6JAN23-18000-C".into()
        }
    );
}

#[test]
fn pongs() {
    for text in [
        data!(
            "bybit_docs/v5/websocket/wss-authentication/003_how_to_send_the_heartbeat_packet.json"
        ),
        data!(
            "bybit_docs/v5/websocket/wss-authentication/004_how_to_send_the_heartbeat_packet.json"
        ),
        data!(
            "bybit_docs/v5/websocket/wss-authentication/005_how_to_send_the_heartbeat_packet.json"
        ),
        data!(
            "bybit_docs/v5/websocket/wss-authentication/006_how_to_send_the_heartbeat_packet.json"
        ),
        data!("bybit_docs/v5/websocket/trade/guideline/008_response_example.json"),
    ] {
        assert_eq!(control(text), Control::Pong);
    }
}

#[test]
fn outgoing_messages_are_unsupported_requests() {
    for text in [
        data!("bybit_docs/v5/websocket/trade/guideline/001_request_example.json"),
        data!("bybit_docs/v5/websocket/trade/guideline/003_request_example.json"),
        data!("bybit_docs/v5/websocket/trade/guideline/007_request_example.json"),
        data!(
            "bybit_docs/v5/websocket/wss-authentication/008_understanding_websocket_filters.json"
        ),
    ] {
        assert!(unsupported(text).ends_with("request"));
    }
}

#[test]
fn order_entry_replies() {
    assert_eq!(
        control(data!("bybit/ws_order_response.json")),
        Control::Response {
            id: "order-req-001".into(),
            ok: true,
            detail: "1726025498520715008".into()
        }
    );
    let doc = data!("bybit_docs/v5/websocket/trade/guideline/004_response_example.json");
    assert_eq!(
        control(doc),
        Control::Response {
            id: "test-005".into(),
            ok: true,
            detail: "a4c1718e-fe53-4659-a118-1f6ecce04ad9".into()
        }
    );
    let refused = doc
        .replace("\"retCode\": 0", "\"retCode\": 110007")
        .replace(
            "\"retMsg\": \"OK\"",
            "\"retMsg\": \"Available balance is insufficient\"",
        );
    assert_eq!(
        control(&refused),
        Control::Response {
            id: "test-005".into(),
            ok: false,
            detail: "110007: Available balance is insufficient".into()
        }
    );
    let batch = bybit::decode(data!(
        "bybit_docs/v5/websocket/trade/guideline/006_response_example.json"
    ))
    .unwrap();
    let expected: Vec<VenueEvent> = ["batch-000", "batch-001", "batch-002"]
        .iter()
        .map(|id| {
            VenueEvent::Control(Control::Response {
                id: id.to_string(),
                ok: false,
                detail: "10001: position idx not match position mode".into(),
            })
        })
        .collect();
    assert_eq!(batch, expected);
}

#[test]
fn rest_order_acks_and_errors() {
    assert_eq!(
        control(data!(
            "bybit_docs/v5/order/create-order/001_response_example.json"
        )),
        Control::Response {
            id: "spot-test-postonly".into(),
            ok: true,
            detail: "1321003749386327552".into()
        }
    );
    assert_eq!(
        control(data!(
            "bybit_docs/v5/order/cancel-order/001_response_example.json"
        )),
        Control::Response {
            id: "linear-004".into(),
            ok: true,
            detail: "c6f055d9-7f21-4079-913d-e6523a9cfffa".into()
        }
    );
    let refused = data!("bybit_docs/v5/order/create-order/001_response_example.json")
        .replace("\"retCode\": 0", "\"retCode\": 110072")
        .replace(
            "\"retMsg\": \"OK\"",
            "\"retMsg\": \"OrderLinkedID is duplicate\"",
        );
    assert_eq!(
        control(&refused),
        Control::Response {
            id: String::new(),
            ok: false,
            detail: "110072: OrderLinkedID is duplicate".into()
        }
    );
}

#[test]
fn bare_success_reply() {
    // Set DCP docs response example: no `result` at all.
    assert_eq!(
        control(r#"{"retCode": 0, "retMsg": "success"}"#),
        Control::Response {
            id: String::new(),
            ok: true,
            detail: "success".into()
        }
    );
}

#[test]
fn garbage_is_malformed_and_arrays_unsupported() {
    assert!(matches!(
        bybit::decode("not json"),
        Err(DecodeError::Malformed { .. })
    ));
    assert!(matches!(
        bybit::decode("{\"topic\": 5}"),
        Err(DecodeError::Malformed { .. })
    ));
    unsupported(data!("bybit_docs/v5/error_codes.json"));
    let bare = data!("bybit/ws_account_position_with_open_time.json");
    assert!(unsupported(bare).contains("without topic"));
}
