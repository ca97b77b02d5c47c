//! Binance spot and USDⓈ-M futures codecs.
//!
//! [`decode_spot`] and [`decode_usdm`] take one WebSocket frame or REST body each: raw or
//! combined-stream (`{"stream":..,"data":..}`) market data, spot user data from the WebSocket
//! API (`{"subscriptionId":..,"event":..}`), USD-M user data, WebSocket API replies and REST
//! responses. Bodies that need context they do not carry (klines and depth snapshots name no
//! symbol) have their own functions; so do exchange info, server time and listen keys.
//! Requests are built unsigned by the `spot_*` / `usdm_*` functions; [`parse_error`] types
//! error bodies.
//!
//! Time: every timestamp comes from the message (ms → ns). Spot `bookTicker` and spot depth
//! snapshots carry none and report 0. Streams must use the default millisecond time unit.

mod common;
mod error;
mod request;
mod rest;
mod shape;
mod stream;

pub use error::parse_error;
pub use request::{
    BuildError, OrderRef, SPOT_REST_URL, SPOT_STREAM_URL, SPOT_WS_API_URL, USDM_PRIVATE_EVENTS,
    USDM_REST_URL, USDM_STREAM_HOST, UsdmRoute, agg_trade_stream, book_ticker_stream, depth_stream,
    kline_stream, mark_price_stream, query_string, spot_account, spot_cancel_all,
    spot_cancel_order, spot_depth, spot_exchange_info, spot_klines, spot_open_orders,
    spot_place_order, spot_query_order, spot_server_time, spot_stream_url,
    spot_user_stream_signature_payload, spot_user_stream_subscribe_request, trade_stream,
    usdm_balance, usdm_cancel_algo_order, usdm_cancel_all, usdm_cancel_all_algo, usdm_cancel_order,
    usdm_countdown_cancel_all, usdm_depth, usdm_exchange_info, usdm_klines, usdm_listen_key_create,
    usdm_listen_key_keepalive, usdm_open_orders, usdm_place_order, usdm_position_risk,
    usdm_private_url, usdm_query_order, usdm_route, usdm_stream_urls, ws_api_signature_payload,
};
pub use rest::{
    parse_depth_snapshot, parse_exchange_info, parse_klines, parse_listen_key, parse_server_time,
};

use common::Market;
use shape::{K_SUBSCRIPTION_ID, Shape};
use stream::Wrap;

use crate::model::{DecodeError, VenueEvent};

/// Decode one Binance spot message (WebSocket frame or REST response body).
pub fn decode_spot(text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    decode(Market::Spot, text)
}

/// Decode one Binance USD-M futures message (WebSocket frame or REST response body).
pub fn decode_usdm(text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    decode(Market::Usdm, text)
}

fn decode(market: Market, text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    let top: Shape = serde_json::from_str(text)
        .map_err(|e| DecodeError::malformed(format!("{} message", market.name()), e.to_string()))?;
    let (inner, wrap) = match (&top.data, &top.event) {
        (Some(data), _) if top.stream.is_some() => (data.as_ref(), Wrap::Data),
        (_, Some(event)) if top.has(K_SUBSCRIPTION_ID) => (event.as_ref(), Wrap::Event),
        _ => (&top, Wrap::None),
    };
    let stream_name = match wrap {
        Wrap::Data => top.stream,
        _ => None,
    };
    if inner.array {
        if let Some(e) = inner.first.as_ref().and_then(|f| f.e) {
            return stream::decode_array(market, text, wrap, e);
        }
    } else if let Some(e) = inner.e {
        return stream::decode_event(market, text, wrap, e, stream_name);
    } else if inner.is_book_ticker() {
        return stream::book_ticker(text, wrap);
    } else if inner.is_depth_snapshot()
        && let Some(name) = stream_name
    {
        return stream::partial_depth(text, wrap, name);
    }
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| DecodeError::malformed(format!("{} message", market.name()), e.to_string()))?;
    rest::decode_value(market, &value)
}
