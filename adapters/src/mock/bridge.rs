//! The mock venue streaming order updates: the REST mock's executions (orders accepted,
//! filled, cancelled, expired) turned into the Binance user-data events a real account stream
//! carries — spot `executionReport`, USD-M `ORDER_TRADE_UPDATE` — and pushed on the private
//! WebSocket mock, so an order placed over REST comes back on the private stream the way it
//! does on the venue.
//!
//! The frames are built here from the execution's fields with the venues' documented keys, not
//! with keel's codecs, so a test that decodes them checks the codecs against the docs.

use serde_json::{Value, json};

use super::MockVenue;
use super::exchange::MockExecution;
use super::ws::private::MockPrivateVenue;
use crate::model::Venue;

fn side(e: &MockExecution) -> &'static str {
    match e.side {
        keel_engine::event::Side::Buy => "BUY",
        keel_engine::event::Side::Sell => "SELL",
    }
}

/// Binance spot `executionReport` for one execution.
pub fn spot_execution_report(e: &MockExecution) -> Value {
    json!({
        "e": "executionReport", "E": e.transaction_time_ms, "s": e.symbol,
        "c": e.client_order_id, "S": side(e), "o": e.order_type, "f": e.time_in_force,
        "q": e.qty.to_string(), "p": e.price.to_string(), "P": e.stop_price.to_string(),
        "F": "0.00000000", "g": -1, "C": "", "x": e.execution_type, "X": e.order_status,
        "r": "NONE", "i": e.order_id, "l": e.last_qty.to_string(), "z": e.cum_qty.to_string(),
        "L": e.last_price.to_string(), "n": e.commission.to_string(),
        "N": if e.commission_asset.is_empty() { Value::Null } else { json!(e.commission_asset) },
        "T": e.transaction_time_ms, "t": e.trade_id.map_or(-1, |t| t as i64),
        "I": 0, "w": e.order_status == "NEW", "m": e.is_maker, "M": false,
        "O": e.order_time_ms, "Z": e.cum_quote.to_string(), "Y": "0", "Q": "0"
    })
}

/// Binance USD-M `ORDER_TRADE_UPDATE` for one execution.
pub fn usdm_order_trade_update(e: &MockExecution) -> Value {
    let avg = e
        .cum_quote
        .checked_div(e.cum_qty)
        .filter(|_| !e.cum_qty.is_zero())
        .unwrap_or(keel_engine::Fixed::ZERO);
    json!({
        "e": "ORDER_TRADE_UPDATE", "E": e.transaction_time_ms, "T": e.transaction_time_ms,
        "o": {
            "s": e.symbol, "c": e.client_order_id, "S": side(e), "o": e.order_type,
            "f": e.time_in_force, "q": e.qty.to_string(), "p": e.price.to_string(),
            "ap": avg.to_string(), "sp": e.stop_price.to_string(), "x": e.execution_type,
            "X": e.order_status, "i": e.order_id, "l": e.last_qty.to_string(),
            "z": e.cum_qty.to_string(), "L": e.last_price.to_string(),
            "N": if e.commission_asset.is_empty() { "USDT".to_string() } else { e.commission_asset.clone() },
            "n": e.commission.to_string(), "T": e.transaction_time_ms,
            "t": e.trade_id.unwrap_or(0), "b": "0", "a": "0", "m": e.is_maker,
            "R": e.reduce_only, "wt": "CONTRACT_PRICE", "ot": e.order_type, "ps": "BOTH",
            "cp": false, "rp": e.realized_pnl.to_string(), "pP": false, "si": 0, "ss": 0,
            "V": "NONE", "pm": "NONE", "gtd": 0
        }
    })
}

/// Pushes the executions of `rest` from index `from` on `private` as `venue`'s user-data
/// events; returns the index to continue from. Call it after each REST action (or in a loop).
pub fn forward(rest: &MockVenue, private: &MockPrivateVenue, venue: Venue, from: usize) -> usize {
    let all = rest.executions();
    for e in all.iter().skip(from) {
        let frame = match venue {
            Venue::BinanceUsdm => usdm_order_trade_update(e),
            _ => spot_execution_report(e),
        };
        private.push(&frame.to_string());
    }
    all.len().max(from)
}
