//! REST response bodies, WebSocket API replies and subscription acks. These are not on the
//! market-data hot path, so they go through `serde_json::Value`, which also copes with the
//! venue's habit of sending the same field as a number in one endpoint and a string in another.

use keel_engine::candle::Candle;
use keel_engine::event::{BookTicker, Liquidity, Side};
use keel_engine::fixed::Fixed;
use keel_engine::symbol::Symbol;
use serde_json::{Map, Value};

use super::common::{
    Market, algo_state, avg_price, locked, ms, order_state, order_type, side, sym, time_in_force,
    within,
};
use super::stream::depth_snapshot_text;
use crate::model::{
    BalanceUpdate, Control, DecodeError, DepthUpdate, FillEvent, FundingRate, Instrument,
    OrderEvent, PositionUpdate, VenueEvent, dec, dec_lossy,
};

type Obj = Map<String, Value>;

// ---------------------------------------------------------------------------------------------
// Field access on a JSON object, each error naming the message kind and field.

fn missing(kind: &str, key: &str) -> DecodeError {
    DecodeError::malformed(
        format!("{kind} {key}"),
        "missing or not of the expected type",
    )
}

fn text<'a>(o: &'a Obj, kind: &str, key: &str) -> Result<&'a str, DecodeError> {
    o.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| missing(kind, key))
}

fn opt_text<'a>(o: &'a Obj, key: &str) -> Option<&'a str> {
    o.get(key).and_then(Value::as_str)
}

/// An integer sent as a JSON number or as a decimal string (`"timestamp": "1583139600000"`).
fn int_value(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn opt_int(o: &Obj, key: &str) -> Option<i64> {
    o.get(key).and_then(int_value)
}

/// Ids are u64 on Binance; render them as the decimal string keel stores.
fn id(o: &Obj, kind: &str, key: &str) -> Result<String, DecodeError> {
    match o.get(key) {
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => Ok(n.to_string()),
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(missing(kind, key)),
    }
}

/// The decimal text of a field sent as a string or (on a few endpoints) as a JSON number.
fn decimal_text<'a>(v: &'a Value, buf: &'a mut String) -> Option<&'a str> {
    match v {
        Value::String(s) => Some(s),
        Value::Number(n) => {
            *buf = n.to_string();
            Some(buf)
        }
        _ => None,
    }
}

fn decimal_with(
    o: &Obj,
    kind: &str,
    key: &str,
    parse: fn(&str, &str) -> Result<Fixed, DecodeError>,
    required: bool,
) -> Result<Fixed, DecodeError> {
    let mut buf = String::new();
    match o.get(key).and_then(|v| decimal_text(v, &mut buf)) {
        Some("") | None if !required => Ok(Fixed::ZERO),
        Some(t) if !t.is_empty() => parse(key, t).map_err(|e| within(kind, e)),
        _ => Err(missing(kind, key)),
    }
}

/// Exact decimal (prices, quantities).
fn num(o: &Obj, kind: &str, key: &str) -> Result<Fixed, DecodeError> {
    decimal_with(o, kind, key, dec, true)
}

/// Exact decimal; zero when absent, null or empty.
fn opt_num(o: &Obj, kind: &str, key: &str) -> Result<Fixed, DecodeError> {
    decimal_with(o, kind, key, dec, false)
}

/// Venue-computed decimal (averages, PnL, rates, fees), rounded to 8 places.
fn num_lossy(o: &Obj, kind: &str, key: &str) -> Result<Fixed, DecodeError> {
    decimal_with(o, kind, key, dec_lossy, true)
}

fn opt_num_lossy(o: &Obj, kind: &str, key: &str) -> Result<Fixed, DecodeError> {
    decimal_with(o, kind, key, dec_lossy, false)
}

fn ts(o: &Obj, kind: &str, keys: &[&str]) -> Result<i64, DecodeError> {
    for key in keys {
        if let Some(t) = opt_int(o, key).filter(|t| *t >= 0) {
            return ms(kind, key, t);
        }
    }
    Err(DecodeError::malformed(
        format!("{kind} time"),
        format!("none of {keys:?} holds a time"),
    ))
}

fn has(o: &Obj, keys: &[&str]) -> bool {
    keys.iter().all(|k| o.contains_key(*k))
}

fn key_list(o: &Obj) -> String {
    let mut keys: Vec<&str> = o.keys().map(String::as_str).take(6).collect();
    if o.len() > 6 {
        keys.push("...");
    }
    keys.join(",")
}

// ---------------------------------------------------------------------------------------------
// Dispatch

pub(super) fn decode_value(market: Market, v: &Value) -> Result<Vec<VenueEvent>, DecodeError> {
    match v {
        Value::Array(items) => decode_array(market, items),
        Value::Object(o) => decode_object(market, o),
        _ => Err(DecodeError::Unsupported(format!(
            "{} bare JSON scalar",
            market.name()
        ))),
    }
}

fn decode_object(market: Market, o: &Obj) -> Result<Vec<VenueEvent>, DecodeError> {
    let name = market.name();
    if let (Some(_), Some(data)) = (o.get("stream"), o.get("data")) {
        return decode_value(market, data);
    }
    if o.contains_key("subscriptionId") && o.contains_key("event") {
        return Err(DecodeError::Unsupported(format!(
            "{name} user-data event without an event type"
        )));
    }
    if o.contains_key("method") {
        return Err(DecodeError::Unsupported(format!(
            "{name} {} request (outgoing)",
            opt_text(o, "method").unwrap_or("WebSocket")
        )));
    }
    if o.contains_key("id") && (o.contains_key("result") || o.contains_key("error")) {
        return ws_response(market, o);
    }
    if let Some(code) = o.get("code") {
        return code_reply(name, o, code);
    }
    if o.is_empty() {
        return Err(DecodeError::Unsupported(format!(
            "{name} empty object (ping or test-order response)"
        )));
    }
    if o.get("symbols").is_some_and(Value::is_array) {
        return Err(DecodeError::Unsupported(format!(
            "{name} exchangeInfo (use parse_exchange_info)"
        )));
    }
    if o.len() == 1 && o.contains_key("serverTime") {
        return Err(DecodeError::Unsupported(format!(
            "{name} server time (use parse_server_time)"
        )));
    }
    if o.contains_key("listenKey") {
        return Err(DecodeError::Unsupported(format!(
            "{name} listenKey response (use parse_listen_key)"
        )));
    }
    if o.contains_key("lastUpdateId") {
        return Err(DecodeError::Unsupported(format!(
            "{name} depth snapshot without a symbol (use parse_depth_snapshot)"
        )));
    }
    if o.contains_key("balances") {
        return spot_account(o);
    }
    if has(o, &["assets", "positions"]) {
        return futures_account(o);
    }
    if o.contains_key("orderReports") {
        return order_list(market, o);
    }
    if o.contains_key("orderListId") && o.contains_key("orders") {
        return Err(DecodeError::Unsupported(format!(
            "{name} order list status without order reports"
        )));
    }
    if o.contains_key("cancelResult") || o.contains_key("amendedOrder") {
        return Err(DecodeError::Unsupported(format!(
            "{name} cancel-replace / amend response"
        )));
    }
    if has(o, &["algoId", "algoStatus"]) {
        return Ok(vec![algo_order(o)?]);
    }
    if has(o, &["orderId", "symbol"]) {
        return if o.contains_key("status") {
            rest_order(market, o)
        } else {
            ack(o)
        };
    }
    if has(o, &["markPrice", "lastFundingRate"]) {
        return Ok(vec![premium_index(o)?]);
    }
    if o.contains_key("lastPrice") {
        return Err(DecodeError::Unsupported(format!(
            "{name} ticker statistics"
        )));
    }
    if has(o, &["symbol", "bidPrice", "bidQty", "askPrice", "askQty"]) {
        return Ok(vec![rest_book_ticker(o)?]);
    }
    if has(o, &["symbol", "countdownTime"]) {
        return Ok(vec![VenueEvent::Control(Control::Response {
            id: String::new(),
            ok: true,
            detail: format!(
                "countdownCancelAll {} {}",
                opt_text(o, "symbol").unwrap_or(""),
                o.get("countdownTime")
                    .map(Value::to_string)
                    .unwrap_or_default()
            ),
        })]);
    }
    Err(DecodeError::Unsupported(format!(
        "{name} REST object with keys [{}]",
        key_list(o)
    )))
}

fn decode_array(market: Market, items: &[Value]) -> Result<Vec<VenueEvent>, DecodeError> {
    let name = market.name();
    let Some(first) = items.first() else {
        // An empty list is an answer: no open orders, no positions.
        return Ok(Vec::new());
    };
    let Some(o) = first.as_object() else {
        return Err(if first.is_array() {
            DecodeError::Unsupported(format!(
                "{name} REST klines without a symbol (use parse_klines)"
            ))
        } else {
            DecodeError::Unsupported(format!("{name} REST array of scalars"))
        });
    };
    let each = |f: fn(&Obj) -> Result<Vec<VenueEvent>, DecodeError>| -> Result<Vec<VenueEvent>, DecodeError> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let obj = item.as_object().ok_or_else(|| {
                DecodeError::malformed(format!("{name} REST array"), "an element is not an object")
            })?;
            out.extend(f(obj)?);
        }
        Ok(out)
    };
    if o.contains_key("e") {
        return Err(DecodeError::Unsupported(format!(
            "{name} array of {} events",
            opt_text(o, "e").unwrap_or("unknown")
        )));
    }
    if has(o, &["orderId", "status"]) || o.contains_key("orderReports") {
        // Open orders, all orders, cancel-all (which mixes orders and order lists).
        return match market {
            Market::Spot => each(|x| {
                if x.contains_key("orderReports") {
                    order_list(Market::Spot, x)
                } else {
                    rest_order(Market::Spot, x)
                }
            }),
            Market::Usdm => each(|x| rest_order(Market::Usdm, x)),
        };
    }
    if has(o, &["algoId", "algoStatus"]) {
        return each(|x| Ok(vec![algo_order(x)?]));
    }
    if o.contains_key("positionAmt") {
        return each(|x| Ok(vec![position(x)?]));
    }
    if has(o, &["asset", "balance"]) {
        return each(futures_balance);
    }
    if has(o, &["fundingRate", "fundingTime"]) {
        return each(funding_history);
    }
    if has(o, &["markPrice", "lastFundingRate"]) {
        return each(|x| Ok(vec![premium_index(x)?]));
    }
    if has(o, &["id", "orderId", "commission"]) {
        return each(account_trade);
    }
    if has(o, &["symbol", "bidPrice", "bidQty", "askPrice", "askQty"])
        && !o.contains_key("lastPrice")
    {
        return each(|x| Ok(vec![rest_book_ticker(x)?]));
    }
    Err(DecodeError::Unsupported(format!(
        "{name} REST array of objects with keys [{}]",
        key_list(o)
    )))
}

// ---------------------------------------------------------------------------------------------
// Protocol replies

fn id_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn short(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 256 {
        let mut cut = 256;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// A WebSocket API reply (`{"id":..,"status":..,"result":..}`) or a stream subscription ack
/// (`{"result":null,"id":1}`). A reply carrying orders or balances also yields those events.
fn ws_response(market: Market, o: &Obj) -> Result<Vec<VenueEvent>, DecodeError> {
    let status = o.get("status").and_then(Value::as_u64);
    let error = o.get("error").filter(|e| !e.is_null());
    let ok = error.is_none() && status.is_none_or(|s| s == 200);
    let detail = match (error, o.get("result")) {
        (Some(e), _) => match e.as_object() {
            Some(eo) => format!(
                "{} {}",
                eo.get("code").map(Value::to_string).unwrap_or_default(),
                opt_text(eo, "msg").unwrap_or("")
            ),
            None => short(e),
        },
        (None, Some(Value::Null) | None) => String::new(),
        (None, Some(r)) => short(r),
    };
    let mut out = vec![VenueEvent::Control(Control::Response {
        id: id_text(o.get("id")),
        ok,
        detail,
    })];
    let result = o
        .get("result")
        .filter(|r| ok && (r.is_object() || r.is_array()));
    if let Some(result) = result {
        match decode_value(market, result) {
            Ok(events) => out.extend(events),
            // The reply itself is the useful part for results keel has no event for.
            Err(DecodeError::Unsupported(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Bodies with a `code`: USD-M success replies (`{"code":200,"msg":..}` from cancel-all, and
/// `"code":"200"` with `algoId` from an algo cancel) or error bodies, which belong to
/// `parse_error`.
fn code_reply(name: &str, o: &Obj, code: &Value) -> Result<Vec<VenueEvent>, DecodeError> {
    let success = match code {
        Value::Number(n) => n.as_i64() == Some(200),
        Value::String(s) => s == "200",
        _ => false,
    };
    if !success {
        return Err(DecodeError::Unsupported(format!(
            "{name} error response {code} (use parse_error)"
        )));
    }
    let id = opt_text(o, "clientAlgoId")
        .or_else(|| opt_text(o, "clientOrderId"))
        .unwrap_or("");
    let mut detail = opt_text(o, "msg").unwrap_or("").to_string();
    if let Some(algo) = o.get("algoId") {
        detail = format!("algoId {algo}: {detail}");
    }
    Ok(vec![VenueEvent::Control(Control::Response {
        id: id.to_string(),
        ok: true,
        detail,
    })])
}

/// `newOrderRespType=ACK`: the order was accepted, nothing more is known.
fn ack(o: &Obj) -> Result<Vec<VenueEvent>, DecodeError> {
    const K: &str = "binance order ack";
    Ok(vec![VenueEvent::Control(Control::Response {
        id: opt_text(o, "clientOrderId").unwrap_or("").to_string(),
        ok: true,
        detail: format!("orderId {}", id(o, K, "orderId")?),
    })])
}

// ---------------------------------------------------------------------------------------------
// Orders and fills

/// An order as REST returns it (new order RESULT/FULL, cancel, query, open orders, and the
/// reports inside order lists). FULL responses also yield their fills.
fn rest_order(market: Market, o: &Obj) -> Result<Vec<VenueEvent>, DecodeError> {
    const K: &str = "binance order response";
    let symbol = sym(K, "symbol", text(o, K, "symbol")?)?;
    let side = side(K, "side", text(o, K, "side")?)?;
    let type_text = text(o, K, "type")?;
    let filled = opt_num(o, K, "executedQty")?;
    let avg = match o.get("avgPrice") {
        Some(_) => opt_num_lossy(o, K, "avgPrice")?,
        None => avg_price(opt_num_lossy(o, K, "cummulativeQuoteQty")?, filled),
    };
    // On cancels `clientOrderId` names the cancel request; the order's own id is the original.
    let client = match opt_text(o, "origClientOrderId") {
        Some(c) if !c.is_empty() => c,
        _ => opt_text(o, "clientOrderId").unwrap_or(""),
    };
    let ts_ns = ts(o, K, &["updateTime", "transactTime", "time"])?;
    let venue_order_id = id(o, K, "orderId")?;
    let order = OrderEvent {
        symbol,
        client_order_id: client.to_string(),
        venue_order_id: venue_order_id.clone(),
        state: order_state(K, "status", text(o, K, "status")?, filled)?,
        side,
        order_type: order_type(market, type_text),
        time_in_force: time_in_force(type_text, opt_text(o, "timeInForce")),
        price: opt_num(o, K, "price")?,
        trigger_price: opt_num(o, K, "stopPrice")?,
        // Pending legs of order lists may leave `origQty` out.
        qty: opt_num(o, K, "origQty")?,
        filled_qty: filled,
        avg_price: avg,
        reduce_only: o
            .get("reduceOnly")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        reason: String::new(),
        ts_event_ns: ts_ns,
    };
    let mut out = Vec::new();
    if let Some(fills) = o.get("fills").and_then(Value::as_array) {
        const F: &str = "binance order response fills";
        for f in fills {
            let f = f
                .as_object()
                .ok_or_else(|| DecodeError::malformed(F, "a fill is not an object"))?;
            // SOR allocations carry tradeId -1 and an allocation id instead.
            let trade_id = match (opt_int(f, "tradeId"), opt_int(f, "allocId")) {
                (Some(t), _) if t >= 0 => t.to_string(),
                (_, Some(a)) => format!("alloc-{a}"),
                _ => return Err(missing(F, "tradeId")),
            };
            out.push(VenueEvent::Fill(FillEvent {
                symbol,
                client_order_id: order.client_order_id.clone(),
                venue_order_id: venue_order_id.clone(),
                trade_id,
                side,
                price: num(f, F, "price")?,
                qty: num(f, F, "qty")?,
                fee: num_lossy(f, F, "commission")?,
                fee_asset: opt_text(f, "commissionAsset").unwrap_or("").to_string(),
                // Fills in the placement response matched on arrival: the new order took.
                liquidity: Liquidity::Taker,
                ts_event_ns: ts_ns,
            }));
        }
    }
    out.push(VenueEvent::Order(order));
    Ok(out)
}

fn order_list(market: Market, o: &Obj) -> Result<Vec<VenueEvent>, DecodeError> {
    let reports = o
        .get("orderReports")
        .and_then(Value::as_array)
        .ok_or_else(|| missing("binance order list", "orderReports"))?;
    let mut out = Vec::new();
    for r in reports {
        let r = r.as_object().ok_or_else(|| {
            DecodeError::malformed("binance order list", "a report is not an object")
        })?;
        out.extend(rest_order(market, r)?);
    }
    Ok(out)
}

/// A USD-M algo (conditional) order from REST (`/fapi/v1/algoOrder`, `openAlgoOrders`).
fn algo_order(o: &Obj) -> Result<VenueEvent, DecodeError> {
    const K: &str = "binance algo order";
    let type_text = opt_text(o, "orderType")
        .or_else(|| opt_text(o, "type"))
        .ok_or_else(|| missing(K, "orderType"))?;
    let qty = opt_num(o, K, "quantity")?;
    let executed = opt_num(o, K, "executedQty")?;
    Ok(VenueEvent::Order(OrderEvent {
        symbol: sym(K, "symbol", text(o, K, "symbol")?)?,
        client_order_id: opt_text(o, "clientAlgoId").unwrap_or("").to_string(),
        venue_order_id: id(o, K, "algoId")?,
        state: algo_state(K, "algoStatus", text(o, K, "algoStatus")?, qty, executed)?,
        side: side(K, "side", text(o, K, "side")?)?,
        order_type: order_type(Market::Usdm, type_text),
        time_in_force: time_in_force(type_text, opt_text(o, "timeInForce")),
        price: opt_num(o, K, "price")?,
        trigger_price: opt_num(o, K, "triggerPrice")?,
        qty,
        filled_qty: executed,
        avg_price: opt_num_lossy(o, K, "avgPrice")?,
        reduce_only: o
            .get("reduceOnly")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        reason: String::new(),
        ts_event_ns: ts(o, K, &["updateTime", "createTime"])?,
    }))
}

/// A trade of the account (`GET /api/v3/myTrades`, `GET /fapi/v1/userTrades`). The venue does
/// not echo the client order id here.
fn account_trade(o: &Obj) -> Result<Vec<VenueEvent>, DecodeError> {
    const K: &str = "binance account trade";
    let side = match opt_text(o, "side") {
        Some(s) => side(K, "side", s)?,
        None => match o
            .get("isBuyer")
            .or_else(|| o.get("buyer"))
            .and_then(Value::as_bool)
        {
            Some(true) => Side::Buy,
            Some(false) => Side::Sell,
            None => return Err(missing(K, "isBuyer")),
        },
    };
    let maker = o
        .get("isMaker")
        .or_else(|| o.get("maker"))
        .and_then(Value::as_bool)
        .ok_or_else(|| missing(K, "isMaker"))?;
    Ok(vec![VenueEvent::Fill(FillEvent {
        symbol: sym(K, "symbol", text(o, K, "symbol")?)?,
        client_order_id: String::new(),
        venue_order_id: id(o, K, "orderId")?,
        trade_id: id(o, K, "id")?,
        side,
        price: num(o, K, "price")?,
        qty: num(o, K, "qty")?,
        fee: num_lossy(o, K, "commission")?,
        fee_asset: opt_text(o, "commissionAsset").unwrap_or("").to_string(),
        liquidity: if maker {
            Liquidity::Maker
        } else {
            Liquidity::Taker
        },
        ts_event_ns: ts(o, K, &["time"])?,
    })])
}

// ---------------------------------------------------------------------------------------------
// Account state

fn spot_account(o: &Obj) -> Result<Vec<VenueEvent>, DecodeError> {
    const K: &str = "binance account";
    let ts_ns = ts(o, K, &["updateTime"])?;
    let balances = o
        .get("balances")
        .and_then(Value::as_array)
        .ok_or_else(|| missing(K, "balances"))?;
    balances
        .iter()
        .map(|b| {
            let b = b.as_object().ok_or_else(|| missing(K, "balances[]"))?;
            Ok(VenueEvent::Balance(BalanceUpdate {
                asset: text(b, K, "asset")?.to_string(),
                free: num(b, K, "free")?,
                locked: num(b, K, "locked")?,
                ts_event_ns: ts_ns,
            }))
        })
        .collect()
}

/// `free` is `availableBalance`; `locked` is the wallet balance minus that, floored at zero
/// (available includes unrealized profit in cross margin, so it can exceed the wallet).
fn futures_balance(o: &Obj) -> Result<Vec<VenueEvent>, DecodeError> {
    const K: &str = "binance futures balance";
    let wallet = if o.contains_key("balance") {
        num_lossy(o, K, "balance")?
    } else {
        num_lossy(o, K, "walletBalance")?
    };
    let free = num_lossy(o, K, "availableBalance")?;
    Ok(vec![VenueEvent::Balance(BalanceUpdate {
        asset: text(o, K, "asset")?.to_string(),
        free,
        locked: locked(wallet, free),
        ts_event_ns: ts(o, K, &["updateTime"])?,
    })])
}

/// `GET /fapi/v2|v3/account`: balances per asset and a position per symbol (flat ones too).
fn futures_account(o: &Obj) -> Result<Vec<VenueEvent>, DecodeError> {
    const K: &str = "binance futures account";
    let mut out = Vec::new();
    for a in o
        .get("assets")
        .and_then(Value::as_array)
        .ok_or_else(|| missing(K, "assets"))?
    {
        out.extend(futures_balance(
            a.as_object().ok_or_else(|| missing(K, "assets[]"))?,
        )?);
    }
    for p in o
        .get("positions")
        .and_then(Value::as_array)
        .ok_or_else(|| missing(K, "positions"))?
    {
        out.push(position(
            p.as_object().ok_or_else(|| missing(K, "positions[]"))?,
        )?);
    }
    Ok(out)
}

/// A position from `positionRisk` or the account endpoint. Fields a version leaves out
/// (v3 has no leverage; account positions no liquidation price) are zero.
fn position(o: &Obj) -> Result<VenueEvent, DecodeError> {
    const K: &str = "binance position";
    let upnl = if o.contains_key("unRealizedProfit") {
        opt_num_lossy(o, K, "unRealizedProfit")?
    } else {
        opt_num_lossy(o, K, "unrealizedProfit")?
    };
    Ok(VenueEvent::Position(PositionUpdate {
        symbol: sym(K, "symbol", text(o, K, "symbol")?)?,
        qty: num(o, K, "positionAmt")?,
        entry_price: opt_num_lossy(o, K, "entryPrice")?,
        unrealized_pnl: upnl,
        liquidation_price: opt_num_lossy(o, K, "liquidationPrice")?,
        leverage: opt_num_lossy(o, K, "leverage")?,
        // Binance sends updateTime 0 for a position never opened.
        ts_event_ns: ms(K, "updateTime", opt_int(o, "updateTime").unwrap_or(0))?,
    }))
}

// ---------------------------------------------------------------------------------------------
// Market data from REST

fn funding_history(o: &Obj) -> Result<Vec<VenueEvent>, DecodeError> {
    const K: &str = "binance funding rate";
    let t = ts(o, K, &["fundingTime"])?;
    Ok(vec![VenueEvent::Funding(FundingRate {
        symbol: sym(K, "symbol", text(o, K, "symbol")?)?,
        rate: num_lossy(o, K, "fundingRate")?,
        funding_time_ns: t,
        mark_price: opt_num_lossy(o, K, "markPrice")?,
        ts_event_ns: t,
    })])
}

/// `GET /fapi/v1/premiumIndex`: the current rate and the next funding time.
fn premium_index(o: &Obj) -> Result<VenueEvent, DecodeError> {
    const K: &str = "binance premiumIndex";
    if opt_text(o, "lastFundingRate") == Some("") {
        return Err(DecodeError::Unsupported(
            "binance-usdm premiumIndex without a funding rate (delivery contract)".into(),
        ));
    }
    Ok(VenueEvent::Funding(FundingRate {
        symbol: sym(K, "symbol", text(o, K, "symbol")?)?,
        rate: num_lossy(o, K, "lastFundingRate")?,
        funding_time_ns: ts(o, K, &["nextFundingTime"])?,
        mark_price: num_lossy(o, K, "markPrice")?,
        ts_event_ns: ts(o, K, &["time"])?,
    }))
}

/// `GET /api/v3/ticker/bookTicker` (no time: 0) or `/fapi/v1/ticker/bookTicker` (`time`).
fn rest_book_ticker(o: &Obj) -> Result<VenueEvent, DecodeError> {
    const K: &str = "binance bookTicker response";
    Ok(VenueEvent::BookTicker(BookTicker {
        symbol: sym(K, "symbol", text(o, K, "symbol")?)?,
        ts_event_ns: match opt_int(o, "time") {
            Some(t) => ms(K, "time", t)?,
            None => 0,
        },
        bid: num(o, K, "bidPrice")?,
        bid_qty: num(o, K, "bidQty")?,
        ask: num(o, K, "askPrice")?,
        ask_qty: num(o, K, "askQty")?,
    }))
}

// ---------------------------------------------------------------------------------------------
// Responses that need context the body does not carry

fn parse_json(kind: &str, body: &str) -> Result<Value, DecodeError> {
    serde_json::from_str(body).map_err(|e| DecodeError::malformed(kind, e.to_string()))
}

/// Candles from `GET /api/v3/klines` or `GET /fapi/v1/klines` for `symbol` (the body names
/// neither symbol nor interval; the interval is the row's close time + 1 ms − open time).
///
/// Whether a row is closed is not in the body either: every row but the last is closed, and
/// the last is reported open because it may still be forming. A caller paging history with an
/// `endTime` in the past can treat it as closed.
pub fn parse_klines(symbol: Symbol, body: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    const K: &str = "binance klines";
    let v = parse_json(K, body)?;
    let rows = v
        .as_array()
        .ok_or_else(|| DecodeError::malformed(K, "not an array of rows"))?;
    let mut out = Vec::with_capacity(rows.len());
    for (n, row) in rows.iter().enumerate() {
        let r = row
            .as_array()
            .ok_or_else(|| DecodeError::malformed(K, format!("row {n} is not a kline array")))?;
        let field = |i: usize, name: &str| -> Result<Fixed, DecodeError> {
            let t = r.get(i).and_then(Value::as_str).ok_or_else(|| {
                DecodeError::malformed(format!("{K} {name}"), format!("row {n}: no decimal string"))
            })?;
            dec(name, t).map_err(|e| within(K, e))
        };
        let time = |i: usize, name: &str| -> Result<i64, DecodeError> {
            r.get(i)
                .and_then(int_value)
                .ok_or_else(|| DecodeError::malformed(format!("{K} {name}"), format!("row {n}")))
        };
        let open_ms = time(0, "open time")?;
        let close_ms = time(6, "close time")?;
        let interval_ms = close_ms
            .checked_sub(open_ms)
            .and_then(|d| d.checked_add(1))
            .filter(|d| *d > 0)
            .ok_or_else(|| {
                DecodeError::malformed(
                    format!("{K} close time"),
                    format!("row {n}: close {close_ms} is not after open {open_ms}"),
                )
            })?;
        let candle = Candle {
            symbol,
            open_time_ns: ms(K, "open time", open_ms)?,
            interval_ns: ms(K, "interval", interval_ms)?,
            open: field(1, "open")?,
            high: field(2, "high")?,
            low: field(3, "low")?,
            close: field(4, "close")?,
            volume: field(5, "volume")?,
        };
        out.push(VenueEvent::Candle {
            candle,
            closed: n + 1 < rows.len(),
        });
    }
    Ok(out)
}

/// The order-book snapshot from `GET /api/v3/depth` or `GET /fapi/v1/depth` for `symbol`
/// (`first_update_id` = `last_update_id` = `lastUpdateId`; time from `T`/`E` when present,
/// else 0 as spot sends none).
pub fn parse_depth_snapshot(symbol: Symbol, body: &str) -> Result<DepthUpdate, DecodeError> {
    depth_snapshot_text(symbol, body)
}

/// The venue clock from `GET /api/v3/time` or `GET /fapi/v1/time`, in nanoseconds.
pub fn parse_server_time(body: &str) -> Result<i64, DecodeError> {
    const K: &str = "binance server time";
    let v = parse_json(K, body)?;
    let o = v.as_object().ok_or_else(|| missing(K, "serverTime"))?;
    ts(o, K, &["serverTime"])
}

/// The key from a listen-key create response (`POST /fapi/v1/listenKey`).
pub fn parse_listen_key(body: &str) -> Result<String, DecodeError> {
    const K: &str = "binance listenKey";
    let v = parse_json(K, body)?;
    v.get("listenKey")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .ok_or_else(|| DecodeError::malformed(K, "no listenKey string"))
}

/// Trading rules per symbol from `GET /api/v3/exchangeInfo` or `GET /fapi/v1/exchangeInfo`:
/// tick size (`PRICE_FILTER`), quantity step/min/max (`LOT_SIZE`) and minimum notional
/// (`MIN_NOTIONAL.minNotional`, USD-M `MIN_NOTIONAL.notional`, or spot `NOTIONAL.minNotional`).
/// A filter the symbol lacks leaves its values zero; `trading` is status `TRADING`.
///
/// A symbol keel cannot represent (a name outside ASCII or over 24 bytes, or a tick/step finer
/// than 1e-8) is left out rather than failing the whole list; anything malformed is an error.
pub fn parse_exchange_info(body: &str) -> Result<Vec<Instrument>, DecodeError> {
    const K: &str = "binance exchangeInfo";
    let v = parse_json(K, body)?;
    let symbols = v
        .get("symbols")
        .and_then(Value::as_array)
        .ok_or_else(|| missing(K, "symbols"))?;
    let mut out = Vec::with_capacity(symbols.len());
    for s in symbols {
        let s = s.as_object().ok_or_else(|| missing(K, "symbols[]"))?;
        let name = text(s, K, "symbol")?;
        let Ok(symbol) = Symbol::new(name) else {
            continue;
        };
        match instrument(s, symbol) {
            Ok(i) => out.push(i),
            Err(Skip::Unrepresentable) => {}
            Err(Skip::Bad(e)) => return Err(e),
        }
    }
    Ok(out)
}

enum Skip {
    Unrepresentable,
    Bad(DecodeError),
}

impl From<DecodeError> for Skip {
    fn from(e: DecodeError) -> Skip {
        Skip::Bad(e)
    }
}

fn instrument(s: &Obj, symbol: Symbol) -> Result<Instrument, Skip> {
    const K: &str = "binance exchangeInfo symbol";
    let filter_num = |f: &Obj, key: &str| -> Result<Fixed, Skip> {
        let mut buf = String::new();
        let Some(t) = f.get(key).and_then(|v| decimal_text(v, &mut buf)) else {
            return Err(Skip::Bad(missing(K, key)));
        };
        match dec(key, t) {
            Ok(x) => Ok(x),
            // A valid number with more than 8 decimals: keel cannot place orders on it exactly.
            Err(_) if dec_lossy(key, t).is_ok() => Err(Skip::Unrepresentable),
            Err(e) => Err(Skip::Bad(within(K, e))),
        }
    };
    let mut tick_size = Fixed::ZERO;
    let mut lot_size = Fixed::ZERO;
    let mut min_qty = Fixed::ZERO;
    let mut max_qty = Fixed::ZERO;
    let mut min_notional = Fixed::ZERO;
    for f in s
        .get("filters")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
    {
        let Some(f) = f.as_object() else {
            return Err(Skip::Bad(missing(K, "filters[]")));
        };
        match opt_text(f, "filterType") {
            Some("PRICE_FILTER") => tick_size = filter_num(f, "tickSize")?,
            Some("LOT_SIZE") => {
                lot_size = filter_num(f, "stepSize")?;
                min_qty = filter_num(f, "minQty")?;
                max_qty = filter_num(f, "maxQty")?;
            }
            Some("MIN_NOTIONAL") if f.contains_key("notional") => {
                min_notional = filter_num(f, "notional")?;
            }
            Some("MIN_NOTIONAL" | "NOTIONAL") => min_notional = filter_num(f, "minNotional")?,
            _ => {}
        }
    }
    let status = opt_text(s, "status").or_else(|| opt_text(s, "contractStatus"));
    Ok(Instrument {
        symbol,
        base: text(s, K, "baseAsset")?.to_string(),
        quote: text(s, K, "quoteAsset")?.to_string(),
        tick_size,
        lot_size,
        min_qty,
        max_qty,
        min_notional,
        contract_size: Fixed::ONE,
        trading: status == Some("TRADING"),
    })
}
