//! Bybit v5 codec: spot and linear (USDT perpetual) market data, the private streams, REST
//! responses, error mapping and request builders.
//!
//! [`decode`] takes any one Bybit message and sorts it by shape:
//! - `topic` pushes: `kline`, `publicTrade`, `orderbook`, `tickers` (public); `order`,
//!   `execution` (and `execution.fast`), `position`, `wallet` (private);
//! - `op` replies on the WebSocket streams (auth, subscribe, ping/pong, order entry) →
//!   [`Control`](crate::model::Control);
//! - REST envelopes `{"retCode","retMsg","result","time"}`, recognised by the shape of `result`.
//!
//! Two REST bodies are not events and have their own parsers: klines ([`parse_klines`], the
//! body lacks the interval) and instruments ([`parse_instruments`]). Errors: [`parse_error`].
//! Requests and URLs: see the builders re-exported from `requests`.
//!
//! Conventions: the public-trade id (a UUID on derivatives) becomes a `u64` by FNV-1a hashing;
//! order-book `u` is both first and last update id and a delta is in sequence when its `u` is the
//! previous `u` + 1 (a delta with `u` = 1 is a snapshot); funding executions are fees, not fills.

mod account;
mod control;
mod errors;
mod market;
mod requests;
mod rest;
mod util;

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use crate::model::{DecodeError, VenueEvent};
use util::json_err;

pub use errors::parse_error;
pub use market::{parse_instruments, parse_klines};
pub use requests::{
    Category, DcpProduct, Network, OrderRef, TOPIC_EXECUTION, TOPIC_EXECUTION_FAST, TOPIC_ORDER,
    TOPIC_POSITION, TOPIC_WALLET, cancel_all, cancel_order, dcp_topic, executions,
    instruments_info, kline_interval, klines, open_orders, order_history, orderbook, place_order,
    positions, query_order, rest_base_url, set_dcp, topic_kline, topic_orderbook,
    topic_public_trade, topic_tickers, wallet_balance, ws_auth, ws_auth_payload, ws_order_cancel,
    ws_order_create, ws_ping, ws_private_url, ws_public_url, ws_subscribe, ws_trade_url,
    ws_unsubscribe,
};

/// Just enough of a message to know which decoder it needs; everything else is skipped.
#[derive(Deserialize)]
struct Sniff<'a> {
    #[serde(borrow, default)]
    topic: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    op: Option<Cow<'a, str>>,
    #[serde(rename = "retCode", default)]
    ret_code: Option<IgnoredAny>,
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
}

/// Decode one message (WebSocket frame or REST response body).
pub fn decode(text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    let sniff: Sniff = match serde_json::from_str(text) {
        Ok(s) => s,
        Err(e) => return Err(not_a_message(text, e)),
    };
    if let Some(topic) = sniff.topic.as_deref() {
        return by_topic(text, topic);
    }
    if sniff.op.is_some() || sniff.kind.as_deref() == Some("COMMAND_RESP") {
        let v: Value = serde_json::from_str(text).map_err(|e| json_err("bybit reply", e))?;
        return control::decode(&v);
    }
    if sniff.ret_code.is_some() {
        let v: Value = serde_json::from_str(text).map_err(|e| json_err("bybit REST", e))?;
        return rest::decode(&v);
    }
    Err(DecodeError::Unsupported(
        "bybit message without topic, op or retCode".into(),
    ))
}

fn not_a_message(text: &str, err: serde_json::Error) -> DecodeError {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(_)) => {
            DecodeError::Unsupported("bybit top-level JSON array (Bybit sends objects)".into())
        }
        Ok(_) => json_err("bybit message", err),
        Err(e) => DecodeError::malformed("bybit message", format!("not JSON: {e}")),
    }
}

fn by_topic(text: &str, topic: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    // Private topics also come per category (`order.linear`, `execution.fast.linear`).
    match topic.split('.').next().unwrap_or("") {
        "kline" => market::ws_kline(text, topic),
        "publicTrade" => market::ws_trades(text),
        "orderbook" => market::ws_orderbook(text),
        "tickers" => market::ws_tickers(text),
        "order" => account::ws_orders(text),
        "execution" => account::ws_executions(text),
        "position" => account::ws_positions(text),
        "wallet" => account::ws_wallet(text),
        _ => Err(DecodeError::Unsupported(format!("bybit topic {topic}"))),
    }
}
