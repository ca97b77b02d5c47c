//! Binance decoders on recorded payloads. Expected values are the literals in the JSON files
//! (read by eye and written here as raw 1e-8 counts), not the program's own output.

use keel_adapters::binance::{decode_spot, decode_usdm};
use keel_adapters::model::{
    Control, DecodeError, FillEvent, OrderEvent, OrderState, OrderType, TimeInForce, VenueEvent,
};
use keel_engine::event::{Liquidity, Side};
use keel_engine::fixed::Fixed;
use keel_engine::symbol::Symbol;

macro_rules! data {
    ($p:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/", $p))
    };
}

/// A decimal as its raw count of 1e-8.
fn fx(raw: i64) -> Fixed {
    Fixed::from_raw(raw)
}

fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

const MS: i64 = 1_000_000;

fn fill(ev: &VenueEvent) -> &FillEvent {
    match ev {
        VenueEvent::Fill(f) => f,
        other => panic!("expected a fill, got {other:?}"),
    }
}

fn order(ev: &VenueEvent) -> &OrderEvent {
    match ev {
        VenueEvent::Order(o) => o,
        other => panic!("expected an order, got {other:?}"),
    }
}

fn kinds(evs: &[VenueEvent]) -> Vec<&'static str> {
    evs.iter().map(VenueEvent::kind).collect()
}

// ---------------------------------------------------------------------------------------------
// Spot market data

#[test]
fn spot_trade_combined_stream() {
    let evs = decode_spot(data!("binance_py/ws_messages/ws_spot_trade.json")).unwrap();
    let VenueEvent::Trade(t) = &evs[0] else {
        panic!("{evs:?}")
    };
    assert_eq!(t.symbol, sym("ETHUSDT"));
    assert_eq!(t.trade_id, 705291099);
    assert_eq!(t.price, fx(414_974_000_000)); // "4149.74000000"
    assert_eq!(t.qty, fx(43_870_000)); // "0.43870000"
    assert_eq!(t.aggressor, Side::Sell); // "m": true, the buyer made
    assert_eq!(t.ts_event_ns, 1639351062243 * MS); // "T"
}

#[test]
fn spot_agg_trade_uses_aggregate_id() {
    let evs = decode_spot(data!("binance_py/ws_messages/ws_spot_agg_trade.json")).unwrap();
    let VenueEvent::Trade(t) = &evs[0] else {
        panic!("{evs:?}")
    };
    assert_eq!(t.trade_id, 226532);
    assert_eq!(t.price, fx(163_246_000_000));
    assert_eq!(t.qty, fx(34_305_000));
    assert_eq!(t.aggressor, Side::Buy); // "m": false
    assert_eq!(t.ts_event_ns, 1675759520847 * MS);
}

#[test]
fn spot_book_ticker_without_event_type() {
    // The documented spot bookTicker has neither `e` nor a time.
    let evs = decode_spot(data!(
        "binance_docs/spot/web-socket-streams/024_individual_symbol_book_ticker_streams.json"
    ))
    .unwrap();
    let VenueEvent::BookTicker(b) = &evs[0] else {
        panic!("{evs:?}")
    };
    assert_eq!(b.symbol, sym("BNBUSDT"));
    assert_eq!(b.bid, fx(2_535_190_000));
    assert_eq!(b.bid_qty, fx(3_121_000_000));
    assert_eq!(b.ask, fx(2_536_520_000));
    assert_eq!(b.ask_qty, fx(4_066_000_000));
    assert_eq!(b.ts_event_ns, 0);

    let evs = decode_spot(data!("binance_py/ws_messages/ws_spot_ticker_book.json")).unwrap();
    let VenueEvent::BookTicker(b) = &evs[0] else {
        panic!("{evs:?}")
    };
    assert_eq!(b.bid, fx(450_724_000_000));
    assert_eq!(b.ask_qty, fx(284_570_000));
    assert_eq!(b.ts_event_ns, 1646199228121 * MS); // "T"
}

#[test]
fn spot_diff_depth() {
    let evs = decode_spot(data!(
        "binance_docs/spot/web-socket-streams/027_diff_depth_stream.json"
    ))
    .unwrap();
    let VenueEvent::Depth(d) = &evs[0] else {
        panic!("{evs:?}")
    };
    assert_eq!(d.symbol, sym("BNBBTC"));
    assert!(!d.snapshot);
    assert_eq!((d.first_update_id, d.last_update_id), (157, 160));
    assert_eq!(d.prev_last_update_id, None);
    assert_eq!(d.bids, vec![(fx(240_000), fx(1_000_000_000))]);
    assert_eq!(d.asks, vec![(fx(260_000), fx(10_000_000_000))]);
    assert_eq!(d.ts_event_ns, 1672515782136 * MS);
}

#[test]
fn spot_partial_depth_takes_symbol_from_stream_name() {
    let body = data!("binance_docs/spot/web-socket-streams/026_partial_book_depth_streams.json");
    // Raw, the snapshot names no symbol.
    assert!(matches!(
        decode_spot(body),
        Err(DecodeError::Unsupported(_))
    ));
    let framed = format!(r#"{{"stream":"bnbbtc@depth5@100ms","data":{body}}}"#);
    let evs = decode_spot(&framed).unwrap();
    let VenueEvent::Depth(d) = &evs[0] else {
        panic!("{evs:?}")
    };
    assert_eq!(d.symbol, sym("BNBBTC"));
    assert!(d.snapshot);
    assert_eq!((d.first_update_id, d.last_update_id), (160, 160));
    assert_eq!(d.bids, vec![(fx(240_000), fx(1_000_000_000))]);
}

#[test]
fn spot_kline_in_progress() {
    let evs = decode_spot(data!(
        "binance_docs/spot/web-socket-streams/017_kline_candlestick_streams_for_utc.json"
    ))
    .unwrap();
    let VenueEvent::Candle { candle, closed } = &evs[0] else {
        panic!("{evs:?}")
    };
    assert!(!closed);
    assert_eq!(candle.symbol, sym("BNBBTC"));
    assert_eq!(candle.open_time_ns, 1672515780000 * MS);
    assert_eq!(candle.interval_ns, 60_000 * MS);
    assert_eq!(candle.open, fx(100_000));
    assert_eq!(candle.high, fx(250_000));
    assert_eq!(candle.low, fx(150_000));
    assert_eq!(candle.close, fx(200_000));
    assert_eq!(candle.volume, fx(100_000_000_000));
}

#[test]
fn monthly_kline_is_unsupported() {
    let text =
        data!("binance_docs/spot/web-socket-streams/017_kline_candlestick_streams_for_utc.json")
            .replace("\"i\": \"1m\"", "\"i\": \"1M\"");
    assert!(matches!(
        decode_spot(&text),
        Err(DecodeError::Unsupported(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Spot user data

#[test]
fn spot_execution_report_trade_yields_fill_then_order() {
    let evs = decode_spot(data!(
        "binance/spot/user_data_json/execution_report_trade.json"
    ))
    .unwrap();
    assert_eq!(kinds(&evs), ["fill", "order"]);
    let f = fill(&evs[0]);
    assert_eq!(f.symbol, sym("ETHUSDT"));
    assert_eq!(f.client_order_id, "x-TD67BGP9-T0000000000000");
    assert_eq!(f.venue_order_id, "12345678");
    assert_eq!(f.trade_id, "98765432");
    assert_eq!(f.side, Side::Buy);
    assert_eq!(f.price, fx(250_000_000_000));
    assert_eq!(f.qty, fx(100_000_000));
    assert_eq!(f.fee, fx(100_000)); // "n": "0.00100000"
    assert_eq!(f.fee_asset, "ETH");
    assert_eq!(f.liquidity, Liquidity::Maker); // "m": true
    assert_eq!(f.ts_event_ns, 1709654401000 * MS);
    let o = order(&evs[1]);
    assert_eq!(o.state, OrderState::Filled);
    assert_eq!(o.order_type, OrderType::Limit);
    assert_eq!(o.time_in_force, Some(TimeInForce::Gtc));
    assert_eq!(o.price, fx(250_000_000_000));
    assert_eq!(o.qty, fx(100_000_000));
    assert_eq!(o.filled_qty, fx(100_000_000));
    assert_eq!(o.avg_price, fx(250_000_000_000)); // Z / z
    assert_eq!(o.trigger_price, Fixed::ZERO);
    assert!(!o.reduce_only);
    assert_eq!(o.reason, "");
}

#[test]
fn spot_execution_report_taker_fill_with_quote_fee() {
    let evs = decode_spot(data!(
        "binance_py/ws_messages/ws_spot_execution_report_binance_us.json"
    ))
    .unwrap();
    let f = fill(&evs[0]);
    assert_eq!(f.symbol, sym("BTCUSD"));
    assert_eq!(f.side, Side::Sell);
    assert_eq!(f.price, fx(11_729_077_000_000));
    assert_eq!(f.qty, fx(42_000));
    assert_eq!(f.fee, fx(492_621));
    assert_eq!(f.fee_asset, "USD");
    assert_eq!(f.liquidity, Liquidity::Taker);
    assert_eq!(f.trade_id, "88685053");
    assert_eq!(order(&evs[1]).state, OrderState::Filled);
}

#[test]
fn spot_execution_report_states() {
    let canceled = decode_spot(data!(
        "binance_py/ws_messages/ws_spot_execution_report_canceled.json"
    ))
    .unwrap();
    let o = order(&canceled[0]);
    assert_eq!(o.state, OrderState::Canceled);
    assert_eq!(o.client_order_id, "O-12345-test-cancel");
    assert_eq!(o.filled_qty, fx(10_000_000)); // "z": "0.10000000"
    assert_eq!(o.avg_price, fx(250_000_000_000)); // 250 / 0.1

    // PENDING_CANCEL with a partial fill is still a live, partially filled order.
    let pending = decode_spot(data!(
        "binance_py/ws_messages/ws_spot_execution_report_pending_cancel.json"
    ))
    .unwrap();
    assert_eq!(order(&pending[0]).state, OrderState::PartiallyFilled);

    let rejected = decode_spot(data!(
        "binance_py/ws_messages/ws_spot_execution_report_rejected.json"
    ))
    .unwrap();
    let o = order(&rejected[0]);
    assert_eq!(o.state, OrderState::Rejected);
    assert_eq!(o.reason, "GTX_ORDER_REJECT");
    assert_eq!(o.time_in_force, Some(TimeInForce::PostOnly)); // "f": "GTX"

    let expired = decode_spot(data!(
        "binance/spot/user_data_json/execution_report_expired.json"
    ))
    .unwrap();
    let o = order(&expired[0]);
    assert_eq!(o.state, OrderState::Expired);
    assert_eq!(o.reason, "INSUFFICIENT_LIQUIDITY"); // "eR"
    assert_eq!(o.time_in_force, Some(TimeInForce::Ioc));

    let stp = decode_spot(data!(
        "binance_py/ws_messages/ws_spot_execution_report_trade_prevention.json"
    ))
    .unwrap();
    assert_eq!(kinds(&stp), ["order"]); // TRADE_PREVENTION is not a trade
    assert_eq!(order(&stp[0]).state, OrderState::Expired); // EXPIRED_IN_MATCH
    assert_eq!(order(&stp[0]).reason, "SELF_TRADE_PREVENTION");
}

#[test]
fn spot_execution_report_conditional_types() {
    let evs = decode_spot(data!(
        "binance/spot/user_data_json/execution_report_stop_loss.json"
    ))
    .unwrap();
    let o = order(&evs[0]);
    assert_eq!(o.order_type, OrderType::StopLimit);
    assert_eq!(o.side, Side::Sell);
    assert_eq!(o.price, fx(240_000_000_000));
    assert_eq!(o.trigger_price, fx(245_000_000_000));
    assert_eq!(o.client_order_id, "x-TD67BGP9-T0000000000001");

    let evs = decode_spot(data!(
        "binance_py/ws_messages/ws_spot_execution_report_new_limit_if_touched_price_match.json"
    ))
    .unwrap();
    let o = order(&evs[0]);
    assert_eq!(o.order_type, OrderType::TakeProfitLimit);
    assert_eq!(o.price, fx(250_525_000_000));
    assert_eq!(o.trigger_price, fx(250_000_000_000));
}

#[test]
fn spot_trade_report_without_price_yields_no_fill() {
    // "x": "TRADE" with "L": "0.00000000": a zero-price fill would be wrong, so only the order.
    let evs = decode_spot(data!(
        "binance_py/ws_messages/ws_spot_execution_report_trade_l_zero.json"
    ))
    .unwrap();
    assert_eq!(kinds(&evs), ["order"]);
    assert_eq!(order(&evs[0]).state, OrderState::Filled);
    assert_eq!(order(&evs[0]).filled_qty, fx(100_000));
}

#[test]
fn spot_empty_client_id_is_kept_empty() {
    let evs = decode_spot(data!(
        "binance_py/ws_messages/ws_spot_execution_report_empty_client_id.json"
    ))
    .unwrap();
    assert_eq!(fill(&evs[0]).client_order_id, "");
    assert_eq!(order(&evs[1]).client_order_id, "");
}

#[test]
fn spot_ws_api_user_data_envelope() {
    let evs = decode_spot(data!(
        "binance/spot/user_data_json/execution_report_wrapped.json"
    ))
    .unwrap();
    let o = order(&evs[0]);
    assert_eq!(o.symbol, sym("ETHBTC"));
    assert_eq!(o.client_order_id, "mUvoqJxFIILMdfAW5iGSOW");
    assert_eq!(o.venue_order_id, "4293153");
    assert_eq!(o.price, fx(10_264_410));
    assert_eq!(o.state, OrderState::New);
    assert_eq!(o.ts_event_ns, 1499405658657 * MS);

    let evs = decode_spot(data!(
        "binance/spot/user_data_json/account_position_wrapped.json"
    ))
    .unwrap();
    let VenueEvent::Balance(b) = &evs[0] else {
        panic!("{evs:?}")
    };
    assert_eq!(b.asset, "ETH");
    assert_eq!(b.free, fx(1_000_000_000_000));
    assert_eq!(b.locked, Fixed::ZERO);
    assert_eq!(b.ts_event_ns, 1564034571073 * MS); // "u", the account's update time

    let evs = decode_spot(data!(
        "binance_docs/spot/user-data-stream/005_event_stream_terminated.json"
    ))
    .unwrap();
    assert_eq!(
        evs,
        vec![VenueEvent::Control(Control::StreamExpiring {
            reason: "eventStreamTerminated".into()
        })]
    );
}

#[test]
fn spot_account_position_balances() {
    let evs = decode_spot(data!("binance/spot/user_data_json/account_position.json")).unwrap();
    assert_eq!(evs.len(), 2);
    let VenueEvent::Balance(usdt) = &evs[0] else {
        panic!("{evs:?}")
    };
    assert_eq!(usdt.asset, "USDT");
    assert_eq!(usdt.free, fx(1_000_000_000_000));
    assert_eq!(usdt.locked, fx(250_000_000_000));
}

#[test]
fn spot_balance_delta_and_list_status_are_unsupported() {
    for text in [
        data!("binance/spot/user_data_json/balance_update.json"),
        data!("binance/spot/user_data_json/balance_update_wrapped.json"),
        data!("binance/spot/user_data_json/list_status_wrapped.json"),
    ] {
        assert!(matches!(
            decode_spot(text),
            Err(DecodeError::Unsupported(_))
        ));
    }
}

#[test]
fn spot_user_events_are_refused_by_the_usdm_decoder() {
    let text = data!("binance/spot/user_data_json/execution_report_trade.json");
    assert!(matches!(
        decode_usdm(text),
        Err(DecodeError::Unsupported(_))
    ));
    let text = data!("binance/futures/user_data_json/order_update_trade.json");
    assert!(matches!(
        decode_spot(text),
        Err(DecodeError::Unsupported(_))
    ));
}

#[test]
fn stream_and_ws_api_replies_are_control_responses() {
    let evs = decode_spot(data!(
        "binance_docs/spot/web-socket-streams/004_subscribe_to_a_stream.json"
    ))
    .unwrap();
    assert_eq!(
        evs,
        vec![VenueEvent::Control(Control::Response {
            id: "1".into(),
            ok: true,
            detail: String::new()
        })]
    );
    // The documented reply to userDataStream.subscribe.signature.
    let evs = decode_spot(
        r#"{"id":"d3df8a22-98ea-4fe0-9f4e-0fcea5d418b7","status":200,"result":{"subscriptionId":0}}"#,
    )
    .unwrap();
    let VenueEvent::Control(Control::Response { id, ok, detail }) = &evs[0] else {
        panic!("{evs:?}")
    };
    assert_eq!(id, "d3df8a22-98ea-4fe0-9f4e-0fcea5d418b7");
    assert!(ok);
    assert!(detail.contains("subscriptionId"));
    // An error reply (WebSocket API error format: status + error object).
    let evs = decode_spot(
        r#"{"id":"x1","status":400,"error":{"code":-1102,"msg":"Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."}}"#,
    )
    .unwrap();
    let VenueEvent::Control(Control::Response { ok, detail, .. }) = &evs[0] else {
        panic!("{evs:?}")
    };
    assert!(!ok);
    assert!(detail.starts_with("-1102 "));
    // The server-shutdown notice, raw and combined.
    for text in [
        data!("binance_docs/spot/web-socket-streams/001_server_shutdown.json"),
        data!("binance_docs/spot/web-socket-streams/002_server_shutdown.json"),
    ] {
        assert!(matches!(
            decode_spot(text).unwrap()[0],
            VenueEvent::Control(Control::StreamExpiring { .. })
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// USD-M market data

#[test]
fn usdm_kline_closed() {
    let evs = decode_usdm(data!(
        "binance/futures/market_data_json/kline_stream_closed.json"
    ))
    .unwrap();
    let VenueEvent::Candle { candle, closed } = &evs[0] else {
        panic!("{evs:?}")
    };
    assert!(closed);
    assert_eq!(candle.symbol, sym("BTCUSDT"));
    assert_eq!(candle.open_time_ns, 1638747660000 * MS);
    assert_eq!(candle.interval_ns, 60_000 * MS);
    assert_eq!(candle.low, fx(100_000)); // "l": "0.0010"
    let evs = decode_usdm(data!(
        "binance/futures/market_data_json/kline_stream_open.json"
    ))
    .unwrap();
    assert!(matches!(evs[0], VenueEvent::Candle { closed: false, .. }));
}

#[test]
fn usdm_depth_carries_previous_update_id() {
    let evs = decode_usdm(data!(
        "binance/futures/market_data_json/depth_update_stream.json"
    ))
    .unwrap();
    let VenueEvent::Depth(d) = &evs[0] else {
        panic!("{evs:?}")
    };
    assert_eq!((d.first_update_id, d.last_update_id), (157, 160));
    assert_eq!(d.prev_last_update_id, Some(149));
    assert_eq!(d.ts_event_ns, 123456788 * MS); // "T", the transaction time
    assert!(!d.snapshot);

    let evs = decode_usdm(data!("binance_py/ws_messages/ws_futures_depth_update.json")).unwrap();
    let VenueEvent::Depth(d) = &evs[0] else {
        panic!("{evs:?}")
    };
    assert_eq!(d.bids.len(), 5);
    assert_eq!(d.bids[0], (fx(740_389_000_000), fx(200_000)));
    assert_eq!(d.asks[4], (fx(740_720_000_000), fx(17_500_000)));
    assert_eq!(d.prev_last_update_id, Some(390497794));

    // The same event on a partial-depth stream is a snapshot of the top levels.
    let body = data!("binance_py/ws_messages/ws_futures_depth_update.json");
    let framed = format!(r#"{{"stream":"btcusdt@depth5@100ms","data":{body}}}"#);
    let VenueEvent::Depth(d) = &decode_usdm(&framed).unwrap()[0] else {
        panic!()
    };
    assert!(d.snapshot);
}

#[test]
fn usdm_mark_price_is_funding() {
    let evs = decode_usdm(data!(
        "binance/futures/market_data_json/mark_price_stream.json"
    ))
    .unwrap();
    let VenueEvent::Funding(f) = &evs[0] else {
        panic!("{evs:?}")
    };
    assert_eq!(f.symbol, sym("BTCUSDT"));
    assert_eq!(f.rate, fx(38_167)); // "0.00038167"
    assert_eq!(f.funding_time_ns, 1562306400000 * MS);
    assert_eq!(f.mark_price, fx(1_179_415_000_000));
    assert_eq!(f.ts_event_ns, 1562305380000 * MS);
}

#[test]
fn usdm_trades_and_book_ticker() {
    let evs = decode_usdm(data!(
        "binance/futures/market_data_json/agg_trade_stream.json"
    ))
    .unwrap();
    let VenueEvent::Trade(t) = &evs[0] else {
        panic!("{evs:?}")
    };
    assert_eq!(t.trade_id, 5933014);
    assert_eq!(t.price, fx(100_000));
    assert_eq!(t.qty, fx(10_000_000_000));
    assert_eq!(t.aggressor, Side::Sell);
    assert_eq!(t.ts_event_ns, 123456785 * MS);

    let evs = decode_usdm(data!(
        "binance/futures/market_data_json/book_ticker_stream.json"
    ))
    .unwrap();
    let VenueEvent::BookTicker(b) = &evs[0] else {
        panic!("{evs:?}")
    };
    assert_eq!(b.symbol, sym("BNBUSDT"));
    assert_eq!(b.ts_event_ns, 1568014460891 * MS);
    assert_eq!(b.ask, fx(2_536_520_000));
}

// ---------------------------------------------------------------------------------------------
// USD-M user data

#[test]
fn usdm_order_trade_update_trade() {
    let evs = decode_usdm(data!(
        "binance/futures/user_data_json/order_update_trade.json"
    ))
    .unwrap();
    assert_eq!(kinds(&evs), ["fill", "order"]);
    let f = fill(&evs[0]);
    assert_eq!(f.symbol, sym("BTCUSDT"));
    assert_eq!(f.client_order_id, "TEST");
    assert_eq!(f.venue_order_id, "8886774");
    assert_eq!(f.trade_id, "12345678");
    assert_eq!(f.side, Side::Buy);
    assert_eq!(f.price, fx(710_050_000_000));
    assert_eq!(f.qty, fx(100_000));
    assert_eq!(f.fee, fx(1_000_000)); // "n": "0.01000000"
    assert_eq!(f.fee_asset, "USDT");
    assert_eq!(f.liquidity, Liquidity::Maker);
    assert_eq!(f.ts_event_ns, 1568879465651 * MS);
    let o = order(&evs[1]);
    assert_eq!(o.state, OrderState::PartiallyFilled);
    assert_eq!(o.avg_price, fx(710_050_000_000));
    assert_eq!(o.time_in_force, Some(TimeInForce::Gtc));
}

#[test]
fn usdm_order_trade_update_new_trailing_stop() {
    let evs = decode_usdm(data!(
        "binance/futures/user_data_json/order_update_new.json"
    ))
    .unwrap();
    assert_eq!(kinds(&evs), ["order"]);
    let o = order(&evs[0]);
    assert_eq!(o.state, OrderState::New);
    assert_eq!(o.order_type, OrderType::TrailingStop);
    assert_eq!(o.trigger_price, fx(710_304_000_000)); // "sp": "7103.04"
    assert_eq!(o.price, Fixed::ZERO);
}

#[test]
fn usdm_liquidation_execution_is_a_fill() {
    // "x": "CALCULATED" moves the position like a trade.
    let evs = decode_usdm(data!(
        "binance/futures/user_data_json/order_update_calculated.json"
    ))
    .unwrap();
    assert_eq!(kinds(&evs), ["fill", "order"]);
    let f = fill(&evs[0]);
    assert_eq!(f.price, fx(991_012_000_000));
    assert_eq!(f.qty, fx(1_400_000));
    assert_eq!(f.fee, fx(6_937_084));
    assert_eq!(f.liquidity, Liquidity::Taker);
    let o = order(&evs[1]);
    assert_eq!(o.state, OrderState::Filled);
    assert!(o.reduce_only);
    assert_eq!(o.time_in_force, Some(TimeInForce::Ioc));

    let evs = decode_usdm(data!(
        "binance_py/ws_messages/ws_futures_order_update_liquidation_zero_qty.json"
    ))
    .unwrap();
    assert_eq!(kinds(&evs), ["order"]);
}

#[test]
fn usdm_conditional_types_and_null_stop_price() {
    let evs = decode_usdm(data!(
        "binance_py/ws_messages/ws_futures_order_update_new_stop_limit_price_match.json"
    ))
    .unwrap();
    let o = order(&evs[0]);
    assert_eq!(o.order_type, OrderType::StopLimit); // "o": "STOP"
    assert_eq!(o.trigger_price, fx(240_000_000_000));
    assert_eq!(o.price, fx(240_575_000_000));

    let evs = decode_usdm(data!(
        "binance_py/ws_messages/ws_futures_order_update_new_limit_if_touched_price_match.json"
    ))
    .unwrap();
    assert_eq!(order(&evs[0]).order_type, OrderType::TakeProfitLimit); // "TAKE_PROFIT"

    // "sp": null on a market order.
    let evs = decode_usdm(data!(
        "binance_py/ws_messages/ws_futures_order_update_adl_filled.json"
    ))
    .unwrap();
    assert_eq!(order(&evs[1]).trigger_price, Fixed::ZERO);
    assert_eq!(fill(&evs[0]).fee, fx(250_000_000));
}

#[test]
fn usdm_account_update_balances_and_positions() {
    let evs = decode_usdm(data!("binance/futures/user_data_json/account_update.json")).unwrap();
    assert_eq!(kinds(&evs), ["balance", "position", "position", "position"]);
    let VenueEvent::Balance(b) = &evs[0] else {
        panic!()
    };
    assert_eq!(b.asset, "USDT");
    assert_eq!(b.free, fx(10_012_345_678)); // "cw"
    assert_eq!(b.locked, fx(12_252_400_000_000)); // "wb" - "cw" = 122524
    assert_eq!(b.ts_event_ns, 1564745798939 * MS);
    let VenueEvent::Position(long) = &evs[2] else {
        panic!()
    };
    assert_eq!(long.symbol, sym("BTCUSDT"));
    assert_eq!(long.qty, fx(2_000_000_000));
    assert_eq!(long.entry_price, fx(656_360_000_000));
    assert_eq!(long.unrealized_pnl, fx(285_021_200_000));
    let VenueEvent::Position(short) = &evs[3] else {
        panic!()
    };
    assert_eq!(short.qty, fx(-1_000_000_000));
    assert_eq!(short.unrealized_pnl, fx(-142_315_600_000));
}

#[test]
fn usdm_trade_lite_is_a_fill_without_fee() {
    let evs = decode_usdm(data!("binance_py/ws_messages/ws_futures_trade_lite.json")).unwrap();
    let f = fill(&evs[0]);
    assert_eq!(f.symbol, sym("ETHUSDT"));
    assert_eq!(f.client_order_id, "O-20240930-081155-001-000-29");
    assert_eq!(f.venue_order_id, "8389765739703625592");
    assert_eq!(f.trade_id, "4467432841");
    assert_eq!(f.price, fx(263_190_000_000));
    assert_eq!(f.qty, fx(3_700_000));
    assert_eq!(f.fee, Fixed::ZERO);
    assert_eq!(f.fee_asset, "");
    assert_eq!(f.liquidity, Liquidity::Taker);
}

#[test]
fn usdm_algo_update_lifecycle() {
    let evs = decode_usdm(data!("binance/futures/user_data_json/algo_update_new.json")).unwrap();
    let o = order(&evs[0]);
    assert_eq!(o.state, OrderState::Untriggered);
    assert_eq!(o.client_order_id, "Q5xaq5EGKgXXa0fD7fs0Ip");
    assert_eq!(o.venue_order_id, "2148719");
    assert_eq!(o.side, Side::Sell);
    assert_eq!(o.order_type, OrderType::TakeProfitLimit);
    assert_eq!(o.trigger_price, fx(75_000_000_000));
    assert_eq!(o.qty, fx(1_000_000));
    assert_eq!(o.ts_event_ns, 1750515742297 * MS);

    let canceled = decode_usdm(data!(
        "binance/futures/user_data_json/algo_update_canceled.json"
    ))
    .unwrap();
    assert_eq!(order(&canceled[0]).state, OrderState::Canceled);
    assert_eq!(order(&canceled[0]).reason, "Reduce Only reject");

    let states: Vec<OrderState> = [
        data!("binance_py/ws_messages/ws_futures_algo_update_triggering.json"),
        data!("binance_py/ws_messages/ws_futures_algo_update_triggered.json"),
        data!("binance_py/ws_messages/ws_futures_algo_update_finished.json"),
        data!("binance_py/ws_messages/ws_futures_algo_update_finished_canceled.json"),
    ]
    .iter()
    .map(|t| order(&decode_usdm(t).unwrap()[0]).state)
    .collect();
    assert_eq!(
        states,
        [
            OrderState::Triggered,
            OrderState::Triggered,
            OrderState::Filled,   // FINISHED with "aq" = "q" = 38
            OrderState::Canceled  // FINISHED with "aq" = 0
        ]
    );
    let finished = decode_usdm(data!(
        "binance_py/ws_messages/ws_futures_algo_update_finished.json"
    ))
    .unwrap();
    let o = order(&finished[0]);
    assert_eq!(o.filled_qty, fx(3_800_000_000));
    assert_eq!(o.avg_price, fx(13_856_000));
    assert_eq!(o.order_type, OrderType::StopMarket);
}

#[test]
fn usdm_listen_key_expired_is_stream_expiring() {
    // The documented event sends "E" as a string.
    let evs = decode_usdm(
        r#"{"e":"listenKeyExpired","E":"1736996475556","listenKey":"WsCMN0a4KHUPTQuX6IUnqEZfB1inxmv1qR4kbf1LuEjur5VdbzqvyxqG9TSjVVxv"}"#,
    )
    .unwrap();
    assert_eq!(
        evs,
        vec![VenueEvent::Control(Control::StreamExpiring {
            reason: "listenKeyExpired".into()
        })]
    );
}

// ---------------------------------------------------------------------------------------------
// REST responses through the same decoders

#[test]
fn spot_new_order_full_response() {
    let evs = decode_spot(data!("binance/spot/http_json/new_order_full_response.json")).unwrap();
    assert_eq!(
        kinds(&evs),
        ["fill", "fill", "fill", "fill", "fill", "order"]
    );
    let f = fill(&evs[1]);
    assert_eq!(f.trade_id, "57");
    assert_eq!(f.price, fx(399_900_000_000));
    assert_eq!(f.qty, fx(500_000_000));
    assert_eq!(f.fee, fx(1_999_500_000));
    assert_eq!(f.fee_asset, "USDT");
    assert_eq!(f.liquidity, Liquidity::Taker);
    assert_eq!(f.client_order_id, "6gCrw2kRUAF9CvJDGP16IP");
    assert_eq!(f.ts_event_ns, 1507725176595 * MS);
    let o = order(&evs[5]);
    assert_eq!(o.state, OrderState::Filled);
    assert_eq!(o.order_type, OrderType::Market);
    assert_eq!(o.side, Side::Sell);
    assert_eq!(o.qty, fx(1_000_000_000));
    assert_eq!(o.filled_qty, fx(1_000_000_000));
    assert_eq!(o.venue_order_id, "28");
}

#[test]
fn spot_order_ack_is_a_response() {
    let evs = decode_spot(data!("binance_docs/spot/rest-api/036_new_order_trade.json")).unwrap();
    assert_eq!(
        evs,
        vec![VenueEvent::Control(Control::Response {
            id: "6gCrw2kRUAF9CvJDGP16IP".into(),
            ok: true,
            detail: "orderId 28".into()
        })]
    );
}

#[test]
fn spot_cancel_reports_the_original_client_id() {
    let evs = decode_spot(data!("binance/spot/http_json/cancel_order_response.json")).unwrap();
    let o = order(&evs[0]);
    assert_eq!(o.client_order_id, "myOrder1"); // origClientOrderId, not the cancel's id
    assert_eq!(o.venue_order_id, "4");
    assert_eq!(o.state, OrderState::Canceled);
    assert_eq!(o.price, fx(200_000_000));
    assert_eq!(o.ts_event_ns, 1684804350068 * MS);
}

#[test]
fn spot_cancel_all_includes_order_list_legs() {
    let evs = decode_spot(data!(
        "binance/spot/http_json/cancel_open_orders_response.json"
    ))
    .unwrap();
    assert_eq!(evs.len(), 4);
    let stop = order(&evs[2]);
    assert_eq!(stop.client_order_id, "CwOOIPHSmYywx6jZX77TdL");
    assert_eq!(stop.order_type, OrderType::StopLimit);
    assert_eq!(stop.trigger_price, fx(37_813_100));
    let maker = order(&evs[3]);
    assert_eq!(maker.time_in_force, Some(TimeInForce::PostOnly)); // LIMIT_MAKER
}

#[test]
fn spot_query_and_open_orders() {
    for text in [
        data!("binance/spot/http_json/order_response.json"),
        data!("binance/spot/http_json/open_orders_response.json"),
    ] {
        let evs = decode_spot(text).unwrap();
        let o = order(&evs[0]);
        assert_eq!(o.symbol, sym("LTCBTC"));
        assert_eq!(o.client_order_id, "myOrder1");
        assert_eq!(o.state, OrderState::New);
        assert_eq!(o.price, fx(10_000_000));
        assert_eq!(o.qty, fx(100_000_000));
        assert_eq!(o.ts_event_ns, 1499827319559 * MS);
    }
}

#[test]
fn spot_order_list_pending_leg_without_quantity() {
    let evs = decode_spot(data!(
        "binance_docs/spot/rest-api/058_new_order_list_opo_trade.json"
    ))
    .unwrap();
    let pending = order(&evs[1]);
    assert_eq!(pending.state, OrderState::New); // PENDING_NEW
    assert_eq!(pending.qty, Fixed::ZERO); // no origQty in the body
}

#[test]
fn spot_sor_allocation_fill() {
    let evs = decode_spot(data!(
        "binance_docs/spot/rest-api/061_new_order_using_sor_trade.json"
    ))
    .unwrap();
    assert_eq!(fill(&evs[0]).trade_id, "alloc-0");
    assert_eq!(fill(&evs[0]).price, fx(2_800_000_000_000));
}

#[test]
fn spot_account_and_trades() {
    let evs = decode_spot(data!("binance/spot/http_json/account_response.json")).unwrap();
    let VenueEvent::Balance(b) = &evs[0] else {
        panic!()
    };
    assert_eq!(b.asset, "BTC");
    assert_eq!(b.free, fx(472_384_689_208_129));
    assert_eq!(b.ts_event_ns, 123456789 * MS);

    let evs = decode_spot(data!("binance/spot/http_json/account_trades_response.json")).unwrap();
    let f = fill(&evs[0]);
    assert_eq!(f.symbol, sym("BNBBTC"));
    assert_eq!(f.trade_id, "28457");
    assert_eq!(f.venue_order_id, "100234");
    assert_eq!(f.side, Side::Buy);
    assert_eq!(f.price, fx(400_000_100));
    assert_eq!(f.fee, fx(1_010_000_000));
    assert_eq!(f.fee_asset, "BNB");
    assert_eq!(f.liquidity, Liquidity::Taker);
}

#[test]
fn usdm_rest_orders_positions_balances() {
    let evs = decode_usdm(data!("binance/futures/http_json/order_response.json")).unwrap();
    let o = order(&evs[0]);
    assert_eq!(o.client_order_id, "testOrder123");
    assert_eq!(o.venue_order_id, "12345678");
    assert_eq!(o.price, fx(5_000_000_000_000));
    assert_eq!(o.qty, fx(100_000));
    assert_eq!(o.state, OrderState::New);

    let evs = decode_usdm(data!("binance/futures/http_json/position_risk.json")).unwrap();
    let VenueEvent::Position(p) = &evs[0] else {
        panic!()
    };
    assert_eq!(p.qty, fx(100_000));
    assert_eq!(p.entry_price, fx(5_000_000_000_000));
    assert_eq!(p.unrealized_pnl, fx(100_000_000));
    assert_eq!(p.liquidation_price, fx(4_500_000_000_000));
    assert_eq!(p.leverage, fx(2_000_000_000));
    assert_eq!(p.ts_event_ns, 1625474304765 * MS);

    let evs = decode_usdm(data!(
        "binance_py/http_responses/http_futures_account_positions_hedge.json"
    ))
    .unwrap();
    let qtys: Vec<Fixed> = evs
        .iter()
        .map(|e| match e {
            VenueEvent::Position(p) => p.qty,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(qtys, [fx(2_000_000_000), fx(-1_000_000_000)]);

    let evs = decode_usdm(data!("binance/futures/http_json/balance.json")).unwrap();
    let VenueEvent::Balance(b) = &evs[0] else {
        panic!()
    };
    assert_eq!(b.free, fx(12_212_345_678));
    assert_eq!(b.locked, Fixed::ZERO);
    assert_eq!(b.ts_event_ns, 1617939110373 * MS);
}

#[test]
fn usdm_rest_algo_orders() {
    let evs = decode_usdm(data!("binance/futures/http_json/open_algo_orders.json")).unwrap();
    let o = order(&evs[0]);
    assert_eq!(o.state, OrderState::Untriggered);
    assert_eq!(o.order_type, OrderType::StopMarket);
    assert_eq!(o.client_order_id, "test-algo-order-1");
    assert_eq!(o.venue_order_id, "123456789");
    assert_eq!(o.trigger_price, fx(4_500_000_000_000));
    assert_eq!(o.qty, fx(100_000));
}

#[test]
fn usdm_rest_funding() {
    let evs = decode_usdm(data!(
        "binance_py/http_responses/http_futures_market_premium_index.json"
    ))
    .unwrap();
    let VenueEvent::Funding(f) = &evs[0] else {
        panic!()
    };
    assert_eq!(f.rate, fx(38_246));
    assert_eq!(f.funding_time_ns, 1597392000000 * MS);
    assert_eq!(f.mark_price, fx(1_179_363_104_562));
    assert_eq!(f.ts_event_ns, 1597370495002 * MS);

    let evs = decode_usdm(data!(
        "binance_py/http_responses/http_futures_market_funding_rate.json"
    ))
    .unwrap();
    let VenueEvent::Funding(f) = &evs[0] else {
        panic!()
    };
    assert_eq!(f.rate, fx(-3_750_000));
    assert_eq!(f.funding_time_ns, 1570608000000 * MS);
}

#[test]
fn usdm_cancel_all_reply() {
    let evs =
        decode_usdm(r#"{"code": 200, "msg": "The operation of cancel all open order is done."}"#)
            .unwrap();
    assert!(matches!(
        &evs[0],
        VenueEvent::Control(Control::Response { ok: true, .. })
    ));
}

#[test]
fn error_bodies_are_not_events() {
    let text = data!("binance_docs/spot/rest-api/001_error_codes.json");
    assert!(matches!(
        decode_spot(text),
        Err(DecodeError::Unsupported(_))
    ));
}

#[test]
fn usdm_all_market_mark_price_array() {
    let one = data!("binance/futures/market_data_json/mark_price_stream.json");
    let framed = format!(r#"{{"stream":"!markPrice@arr","data":[{one},{one}]}}"#);
    let evs = decode_usdm(&framed).unwrap();
    assert_eq!(kinds(&evs), ["funding", "funding"]);
    // Raw (ws mode) the array is the whole frame.
    assert_eq!(decode_usdm(&format!("[{one}]")).unwrap().len(), 1);
}

#[test]
fn usdm_algo_cancel_reply() {
    // The documented DELETE /fapi/v1/algoOrder response example.
    let evs = decode_usdm(
        r#"{"algoId":2146760,"clientAlgoId":"6B2I9XVcJpCjqPAJ4YoFX7","code":"200","msg":"success"}"#,
    )
    .unwrap();
    assert_eq!(
        evs,
        vec![VenueEvent::Control(Control::Response {
            id: "6B2I9XVcJpCjqPAJ4YoFX7".into(),
            ok: true,
            detail: "algoId 2146760: success".into()
        })]
    );
}
