//! REST response bodies: `{"retCode":0,"retMsg":"OK","result":{...},"time":..}`.
//!
//! The envelope does not say which endpoint produced it, so the kind is read from the shape of
//! `result` (and of its first `list` item). REST is not a hot path; the body is parsed once as a
//! `Value` and the rows are then read through the same typed structs as the WebSocket pushes.

use serde_json::Value;

use super::control::{batch_acks, str_of};
use super::{account, market};
use crate::model::{Control, DecodeError, VenueEvent};

/// `retCode` as Bybit writes it (a JSON integer; tolerate a numeric string).
pub(crate) fn code_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn keys(v: &Value) -> String {
    match v.as_object() {
        Some(o) => o.keys().take(8).cloned().collect::<Vec<_>>().join(","),
        None => "not an object".into(),
    }
}

fn response(id: &str, ok: bool, detail: String) -> Vec<VenueEvent> {
    vec![VenueEvent::Control(Control::Response {
        id: id.to_string(),
        ok,
        detail,
    })]
}

/// A REST body. An error envelope (`retCode` != 0) decodes to `Control::Response { ok: false }`
/// with `"{retCode}: {retMsg}"`; `bybit::parse_error` gives the typed error. A place / amend /
/// cancel acknowledgement (`result` = `{orderId, orderLinkId}`) is a `Control::Response` keyed by
/// `orderLinkId` with the venue order id as `detail`, not an `OrderEvent`: Bybit documents that
/// the acknowledgement only means the request was accepted, and the order's state comes from the
/// `order` topic or a query.
pub(crate) fn decode(v: &Value) -> Result<Vec<VenueEvent>, DecodeError> {
    let code = v
        .get("retCode")
        .and_then(code_of)
        .ok_or_else(|| DecodeError::malformed("bybit REST retCode", "not an integer"))?;
    let msg = str_of(v, "retMsg").unwrap_or("");
    if code != 0 {
        return Ok(response("", false, format!("{code}: {msg}")));
    }
    let time_ms = v.get("time").and_then(Value::as_i64);
    let Some(result) = v.get("result").filter(|r| !r.is_null()) else {
        return Ok(response("", true, msg.to_string()));
    };
    let Some(obj) = result.as_object() else {
        return Err(DecodeError::Unsupported(
            "bybit REST result that is not an object".into(),
        ));
    };
    if obj.is_empty() {
        // e.g. the disconnect-cancel-all setting: nothing but "it worked".
        return Ok(response("", true, msg.to_string()));
    }
    if let Some(list) = result.get("list").and_then(Value::as_array) {
        return decode_list(list, v, time_ms);
    }
    if ["b", "a", "u"].iter().all(|k| result.get(k).is_some()) {
        return market::rest_orderbook(result);
    }
    if let Some(order_id) = str_of(result, "orderId") {
        let link = str_of(result, "orderLinkId").unwrap_or("");
        return Ok(response(link, true, order_id.to_string()));
    }
    Err(DecodeError::Unsupported(format!(
        "bybit REST result with keys {}",
        keys(result)
    )))
}

fn has(v: &Value, key: &str) -> bool {
    v.get(key).is_some()
}

fn decode_list(
    list: &[Value],
    envelope: &Value,
    time_ms: Option<i64>,
) -> Result<Vec<VenueEvent>, DecodeError> {
    // An empty list is a complete answer (no open orders, no positions...).
    let Some(first) = list.first() else {
        return Ok(Vec::new());
    };
    if first.is_array() {
        return Err(DecodeError::Unsupported(
            "bybit REST kline list (the interval is not in the body; use bybit::parse_klines)"
                .into(),
        ));
    }
    if has(first, "orderStatus") {
        return account::rest_orders(list);
    }
    if has(first, "execType") || (has(first, "execId") && has(first, "execQty")) {
        return account::rest_executions(list);
    }
    if has(first, "execId") && has(first, "price") && has(first, "size") {
        return market::rest_trades(list);
    }
    if has(first, "priceFilter") || has(first, "lotSizeFilter") {
        return Err(DecodeError::Unsupported(
            "bybit instruments-info (not events; use bybit::parse_instruments)".into(),
        ));
    }
    if first.get("coin").is_some_and(Value::is_array) {
        return account::rest_wallet(list, time_ms);
    }
    if has(first, "positionIdx") && has(first, "size") && has(first, "side") {
        return account::rest_positions(list, time_ms);
    }
    if has(first, "fundingRateTimestamp") {
        return market::rest_funding_history(list);
    }
    if has(first, "lastPrice") {
        let time =
            time_ms.ok_or_else(|| DecodeError::malformed("bybit REST tickers time", "missing"))?;
        return market::rest_tickers(list, time);
    }
    if has(first, "orderId") {
        // cancel-all and batch acknowledgements.
        return Ok(batch_acks(list, envelope.get("retExtInfo")));
    }
    Err(DecodeError::Unsupported(format!(
        "bybit REST list of items with keys {}",
        keys(first)
    )))
}
