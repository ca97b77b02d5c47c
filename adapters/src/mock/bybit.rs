//! The mock's Bybit v5 trading dialect, written from Bybit's documentation and independent of
//! the codecs, which the tests check against it. One mock serves one category: `spot` when its
//! exchange is spot ([`super::TradingConfig::spot`]), else `linear`; a request for the other
//! one is refused with 10001.
//!
//! - Signed endpoints check, in this order: `X-BAPI-API-KEY` (missing or unknown: 10003), the
//!   timing rule `server_time − recv_window ≤ X-BAPI-TIMESTAMP < server_time + 1000`
//!   (`X-BAPI-RECV-WINDOW`, default 5000; outside: 10002), then `X-BAPI-SIGN`, which must be
//!   the hex HMAC-SHA256, keyed with the key's secret, of timestamp + key + recv window + (the
//!   query string as received for GET | the body as received otherwise) (10004). The HMAC is
//!   the mock's own ([`super::binance::hmac_sha256_hex`]), not `crate::sign`, so a signing bug
//!   there fails the tests.
//! - Every answer, errors too, is HTTP 200 with `{"retCode","retMsg","result","retExtInfo",
//!   "time"}`.
//! - Routes: `POST /v5/order/create`, `/v5/order/cancel`, `/v5/order/cancel-all`,
//!   `/v5/order/disconnected-cancel-all`; `GET /v5/order/realtime`,
//!   `/v5/account/wallet-balance` (UNIFIED), `/v5/position/list` (linear), and the trade
//!   history `/v5/execution/list` built from the exchange's recorded executions (`orderId` >
//!   `orderLinkId` > `symbol` > `baseCoin` as Bybit ranks them; newest first; `limit` 1..=100,
//!   default 50, with `nextPageCursor`; `startTime`/`endTime` at most 7 days apart, the last 7
//!   days when neither is given).
//! - Orders: `orderLinkId` must be new among every order the mock has taken (110072 linear,
//!   170141 spot); a conditional order (`triggerPrice`) needs `triggerDirection` on linear
//!   (1 rise, 2 fall; already reached: 110092 / 110093), spot derives it from the price and
//!   keeps conditional orders apart (`orderFilter=StopOrder` to cancel them); a spot market buy
//!   without `marketUnit=baseCoin` is a quote amount, as on Bybit. The realtime query by id also
//!   finds closed orders and answers an unknown id with an empty list; listings page 20 (at
//!   most 50) with `nextPageCursor`.
//! - Refusals use Bybit's codes: 10001 (parameters, `symbol invalid`, linear filters), 170134 /
//!   170137 / 170140 (spot filters), 110094 (linear notional), 110007 / 170131 (balance),
//!   110017 (reduce-only), 110001 / 170213 (unknown or finished order). A post-only order that
//!   would take is refused (10001) where Bybit would accept and then cancel it.
//! - Disconnect-cancel-all: the mock has no private stream to lose, so the window starts at the
//!   call: every open order of the mock's product (`SPOT` or `DERIVATIVES`) is cancelled when
//!   `timeWindow` seconds pass without another call. As on Bybit there is no way to switch it
//!   off (`timeWindow` outside 3..=300: 10001).

use keel_engine::event::Side;
use keel_engine::fixed::Fixed;
use serde_json::{Value, json};

use super::binance::hmac_sha256_hex;
use super::exchange::{Exchange, MockExecution, MockOrder, NewOrder, OrderKind, Reject, reject};
use super::venues::Answer;
use super::{Arrived, decode_query};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Create,
    Cancel,
    CancelAll,
    Realtime,
    Wallet,
    Positions,
    Dcp,
    Executions,
}

fn route(method: &str, path: &str) -> Option<Route> {
    Some(match (method, path) {
        ("POST", "/v5/order/create") => Route::Create,
        ("POST", "/v5/order/cancel") => Route::Cancel,
        ("POST", "/v5/order/cancel-all") => Route::CancelAll,
        ("POST", "/v5/order/disconnected-cancel-all") => Route::Dcp,
        ("GET", "/v5/order/realtime") => Route::Realtime,
        ("GET", "/v5/account/wallet-balance") => Route::Wallet,
        ("GET", "/v5/position/list") => Route::Positions,
        ("GET", "/v5/execution/list") => Route::Executions,
        _ => return None,
    })
}

/// The answer to a trading or account request; `None` for any other path.
pub(super) fn answer(ex: &mut Exchange, req: &Arrived, now_ms: i64) -> Option<Answer> {
    let route = route(&req.method, &req.path)?;
    ex.expire_countdowns(now_ms);
    let served = authenticate(ex, req, now_ms).and_then(|p| serve(ex, route, &p, now_ms));
    let (code, msg, result) = match served {
        Ok(result) => (0, "OK".to_string(), result),
        Err(r) => (r.code, r.msg, json!({})),
    };
    let body = json!({"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {},
                      "time": now_ms});
    Some(Answer {
        status: 200,
        body: body.to_string(),
    })
}

fn serve(ex: &mut Exchange, route: Route, p: &Params, now: i64) -> Result<Value, Reject> {
    if !matches!(route, Route::Wallet | Route::Dcp) {
        check_category(ex, p)?;
    }
    match route {
        Route::Create => create(ex, p, now),
        Route::Cancel => cancel(ex, p, now),
        Route::CancelAll => cancel_all(ex, p, now),
        Route::Realtime => realtime(ex, p),
        Route::Wallet => wallet(ex, p),
        Route::Positions => positions(ex, p),
        Route::Dcp => dcp(ex, p),
        Route::Executions => executions(ex, p, now),
    }
}

// ---------------------------------------------------------------------------------------------
// Authentication and parameters

fn header<'a>(req: &'a Arrived, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn authenticate(ex: &Exchange, req: &Arrived, now_ms: i64) -> Result<Params, Reject> {
    let invalid_key = || reject(10003, "API key is invalid.");
    let key = header(req, "x-bapi-api-key")
        .filter(|k| !k.is_empty())
        .ok_or_else(invalid_key)?;
    let secret = ex.secret_of(key).ok_or_else(invalid_key)?;
    let stamp = header(req, "x-bapi-timestamp").unwrap_or("");
    let window = header(req, "x-bapi-recv-window").unwrap_or("");
    let recv_window: i64 = if window.is_empty() {
        5000
    } else {
        window.parse().map_err(|_| param_error("recv_window"))?
    };
    let timestamp: i64 = stamp.parse().unwrap_or(i64::MIN);
    if timestamp < now_ms - recv_window || timestamp >= now_ms + 1000 {
        return Err(reject(
            10002,
            format!(
                "invalid request, please check your server timestamp or recv_window param. \
                 req_timestamp[{stamp}],server_timestamp[{now_ms}],recv_window[{recv_window}]"
            ),
        ));
    }
    let payload = if req.method == "GET" {
        req.raw_query.as_str()
    } else {
        req.body.as_str()
    };
    let expected = hmac_sha256_hex(
        secret.as_bytes(),
        format!("{stamp}{key}{window}{payload}").as_bytes(),
    );
    let signature = header(req, "x-bapi-sign").unwrap_or("");
    if !signature.eq_ignore_ascii_case(&expected) {
        return Err(reject(
            10004,
            format!(
                "Error sign, please check your signature generation algorithm: \
                 origin_string[***{payload}]"
            ),
        ));
    }
    params(req)
}

struct Params(Vec<(String, String)>);

/// GET parameters from the query; others from the JSON body, values as text.
fn params(req: &Arrived) -> Result<Params, Reject> {
    if req.method == "GET" {
        return Ok(Params(decode_query(&req.raw_query)));
    }
    if req.body.trim().is_empty() {
        return Ok(Params(Vec::new()));
    }
    let v: Value = serde_json::from_str(&req.body)
        .map_err(|_| reject(10001, "params error: the body is not JSON"))?;
    let obj = v
        .as_object()
        .ok_or_else(|| reject(10001, "params error: the body is not a JSON object"))?;
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    Ok(Params(
        obj.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
    ))
}

fn param_error(key: &str) -> Reject {
    reject(10001, format!("params error: {key} invalid"))
}

impl Params {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    fn req(&self, key: &str) -> Result<&str, Reject> {
        self.get(key).ok_or_else(|| {
            reject(
                10001,
                format!("Missing some parameters that must be filled in: {key}"),
            )
        })
    }

    fn decimal(&self, key: &str) -> Result<Option<Fixed>, Reject> {
        self.get(key)
            .map(|v| Fixed::parse_exact(v).map_err(|_| param_error(key)))
            .transpose()
    }
}

fn category_of(ex: &Exchange) -> &'static str {
    if ex.spot { "spot" } else { "linear" }
}

fn check_category(ex: &Exchange, p: &Params) -> Result<(), Reject> {
    let category = p.req("category")?;
    if category != category_of(ex) {
        return Err(reject(
            10001,
            format!(
                "params error: category {category} is not served by this mock (it serves {})",
                category_of(ex)
            ),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Orders

fn symbol_invalid() -> Reject {
    reject(10001, "params error: symbol invalid")
}

fn duplicate(spot: bool) -> Reject {
    if spot {
        reject(170141, "Duplicate clientOrderId.")
    } else {
        reject(110072, "OrderLinkedID is duplicate")
    }
}

fn not_found(spot: bool) -> Reject {
    if spot {
        reject(170213, "Order does not exist.")
    } else {
        reject(110001, "order not exists or too late to cancel")
    }
}

/// The exchange's (Binance-worded) refusal in Bybit's words.
fn translate(spot: bool, r: Reject) -> Reject {
    let m = r.msg.as_str();
    match r.code {
        -1121 => symbol_invalid(),
        -1013 if m.ends_with("PRICE_FILTER") => reject(170134, "Order price decimal too long."),
        -1013 if m.ends_with("NOTIONAL") => reject(170140, "Order value exceeded lower limit."),
        -1013 => reject(170137, "Order volume decimal too long."),
        -4014 => reject(10001, "params error: price invalid"),
        -4004 | -4005 | -4023 => reject(10001, "params error: qty invalid"),
        -4164 => reject(110094, "Order notional value below the lower limit"),
        -4116 => duplicate(spot),
        -2010 if m.starts_with("Duplicate") => duplicate(spot),
        -2010 if m.contains("insufficient") => reject(170131, "Insufficient balance."),
        -2019 => reject(110007, "ab not enough for new order"),
        -2022 => reject(110017, "Reduce-only rule not satisfied"),
        -2011 => not_found(spot),
        -5022 => reject(10001, "params error: a PostOnly order would take liquidity"),
        -2010 if m.contains("take") => {
            reject(10001, "params error: a PostOnly order would take liquidity")
        }
        _ => reject(10001, format!("params error: {m}")),
    }
}

fn create(ex: &mut Exchange, p: &Params, now: i64) -> Result<Value, Reject> {
    let order = parse_order(ex, p)?;
    if ex
        .orders
        .iter()
        .any(|o| o.client_order_id == order.client_order_id)
    {
        return Err(duplicate(ex.spot));
    }
    let spot = ex.spot;
    let idx = ex.place(order, now).map_err(|r| translate(spot, r))?;
    let o = &ex.orders[idx];
    Ok(json!({"orderId": o.order_id.to_string(), "orderLinkId": o.client_order_id}))
}

/// `orderLinkId`: at most 36 letters, digits, `-` and `_`.
fn check_link_id(id: &str) -> Result<(), Reject> {
    let ok = id.len() <= 36
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(param_error("orderLinkId"))
    }
}

fn parse_order(ex: &Exchange, p: &Params) -> Result<NewOrder, Reject> {
    let symbol = p.req("symbol")?.to_string();
    let inst = ex.instrument(&symbol).map_err(|_| symbol_invalid())?;
    let current = inst.price;
    let side = match p.req("side")? {
        "Buy" => Side::Buy,
        "Sell" => Side::Sell,
        _ => return Err(param_error("side")),
    };
    let order_type = p.req("orderType")?.to_string();
    let limit = match order_type.as_str() {
        "Market" => false,
        "Limit" => true,
        _ => return Err(param_error("orderType")),
    };
    let mut qty = p.decimal("qty")?.ok_or_else(|| param_error("qty"))?;
    if qty <= Fixed::ZERO {
        return Err(param_error("qty"));
    }
    let price = p.decimal("price")?.unwrap_or(Fixed::ZERO);
    if limit && price <= Fixed::ZERO {
        return Err(param_error("price"));
    }
    let trigger = p.decimal("triggerPrice")?.unwrap_or(Fixed::ZERO);
    let time_in_force = match (limit, p.get("timeInForce").unwrap_or("GTC")) {
        (false, _) => "IOC".to_string(),
        (true, t @ ("GTC" | "IOC" | "FOK" | "PostOnly")) => t.to_string(),
        (true, _) => return Err(param_error("timeInForce")),
    };
    let kind = if trigger > Fixed::ZERO {
        let rises = conditional_direction(ex.spot, p, trigger, current)?;
        // A stop fires against the order's side (a buy on a rise); a take-profit with it.
        let take_profit = rises != (side == Side::Buy);
        OrderKind::Conditional { take_profit, limit }
    } else if limit {
        OrderKind::Limit {
            post_only: time_in_force == "PostOnly",
        }
    } else {
        OrderKind::Market
    };
    let base_units = p.get("marketUnit") == Some("baseCoin");
    if ex.spot && kind == OrderKind::Market && side == Side::Buy && !base_units {
        // Bybit sizes a spot market buy in the quote coin unless told otherwise.
        qty = qty
            .checked_div(current)
            .unwrap_or(Fixed::ZERO)
            .floor_to(inst.step_size);
    }
    let reduce_only = p.get("reduceOnly") == Some("true");
    if ex.spot && reduce_only {
        return Err(param_error("reduceOnly"));
    }
    let client_order_id = match p.get("orderLinkId") {
        Some(id) => {
            check_link_id(id)?;
            id.to_string()
        }
        None => format!("mock{}", ex.orders.len() + 1),
    };
    Ok(NewOrder {
        symbol,
        client_order_id,
        side,
        order_type,
        kind,
        time_in_force,
        price: if limit { price } else { Fixed::ZERO },
        stop_price: trigger,
        qty,
        reduce_only,
        algo: false,
    })
}

/// Whether a conditional order fires on a rise: linear says so (`triggerDirection`), spot
/// reads it from where the trigger is. A trigger already reached is refused.
fn conditional_direction(
    spot: bool,
    p: &Params,
    trigger: Fixed,
    current: Fixed,
) -> Result<bool, Reject> {
    let rises = if spot {
        trigger > current
    } else {
        match p.get("triggerDirection") {
            Some("1") => true,
            Some("2") => false,
            _ => return Err(param_error("triggerDirection")),
        }
    };
    if rises && current >= trigger {
        return Err(reject(
            110092,
            format!("expect Rising, but trigger_price[{trigger}] <= current[{current}]"),
        ));
    }
    if !rises && current <= trigger {
        return Err(reject(
            110093,
            format!("expect Falling, but trigger_price[{trigger}] >= current[{current}]"),
        ));
    }
    Ok(rises)
}

fn is_conditional(o: &MockOrder) -> bool {
    matches!(o.kind, OrderKind::Conditional { .. })
}

/// Spot keeps conditional orders apart: `orderFilter` `Order` (the default) or `StopOrder`.
/// Linear reaches every kind.
fn in_filter(spot: bool, p: &Params, o: &MockOrder) -> bool {
    if !spot {
        return true;
    }
    match p.get("orderFilter").unwrap_or("Order") {
        "StopOrder" => is_conditional(o),
        _ => !is_conditional(o),
    }
}

/// The order named by `orderLinkId` (the latest with it) or `orderId` on `symbol`.
fn named(ex: &Exchange, p: &Params, symbol: Option<&str>) -> Option<usize> {
    let on_symbol = |o: &MockOrder| symbol.is_none_or(|s| o.symbol == s);
    if let Some(link) = p.get("orderLinkId") {
        return ex
            .orders
            .iter()
            .rposition(|o| o.client_order_id == link && on_symbol(o));
    }
    let id = p.get("orderId")?;
    ex.orders
        .iter()
        .position(|o| o.order_id.to_string() == id && on_symbol(o))
}

fn cancel(ex: &mut Exchange, p: &Params, now: i64) -> Result<Value, Reject> {
    let symbol = p.req("symbol")?.to_string();
    ex.instrument(&symbol).map_err(|_| symbol_invalid())?;
    if p.get("orderLinkId").is_none() && p.get("orderId").is_none() {
        return Err(reject(
            10001,
            "params error: orderId or orderLinkId is required",
        ));
    }
    let spot = ex.spot;
    let idx = named(ex, p, Some(&symbol))
        .filter(|&i| ex.orders[i].is_open() && in_filter(spot, p, &ex.orders[i]))
        .ok_or_else(|| not_found(spot))?;
    ex.cancel(idx, now).map_err(|r| translate(spot, r))?;
    let o = &ex.orders[idx];
    Ok(json!({"orderId": o.order_id.to_string(), "orderLinkId": o.client_order_id}))
}

/// Whether `o` is in the scope a listing or cancel-all names: `symbol`, else `baseCoin` or
/// `settleCoin` (linear needs one of the three).
fn in_scope(ex: &Exchange, p: &Params, o: &MockOrder) -> Result<bool, Reject> {
    if let Some(s) = p.get("symbol") {
        return Ok(o.symbol == s);
    }
    let inst = ex.instruments.get(&o.symbol);
    if let Some(base) = p.get("baseCoin") {
        return Ok(inst.is_some_and(|i| i.base == base));
    }
    if let Some(settle) = p.get("settleCoin") {
        return Ok(inst.is_some_and(|i| i.quote == settle));
    }
    if ex.spot {
        Ok(true)
    } else {
        Err(reject(
            10001,
            "params error: symbol, baseCoin or settleCoin is required",
        ))
    }
}

fn cancel_all(ex: &mut Exchange, p: &Params, now: i64) -> Result<Value, Reject> {
    if let Some(s) = p.get("symbol") {
        ex.instrument(s).map_err(|_| symbol_invalid())?;
    }
    let spot = ex.spot;
    let mut targets = Vec::new();
    for (i, o) in ex.orders.iter().enumerate() {
        if o.is_open() && in_scope(ex, p, o)? && in_filter(spot, p, o) {
            targets.push(i);
        }
    }
    let mut list = Vec::new();
    for i in targets {
        ex.cancel(i, now).map_err(|r| translate(spot, r))?;
        let o = &ex.orders[i];
        list.push(json!({"orderId": o.order_id.to_string(), "orderLinkId": o.client_order_id}));
    }
    Ok(json!({"list": list, "success": "1"}))
}

fn realtime(ex: &Exchange, p: &Params) -> Result<Value, Reject> {
    let symbol = p.get("symbol");
    if let Some(s) = symbol {
        ex.instrument(s).map_err(|_| symbol_invalid())?;
    }
    let mut list: Vec<&MockOrder> = Vec::new();
    if p.get("orderLinkId").is_some() || p.get("orderId").is_some() {
        list.extend(named(ex, p, symbol).map(|i| &ex.orders[i]));
    } else {
        let open = p.get("openOnly").unwrap_or("0") == "0";
        for o in ex.orders.iter().rev() {
            if o.is_open() == open && in_scope(ex, p, o)? {
                list.push(o);
            }
        }
    }
    let limit = match p.get("limit") {
        None => 20,
        Some(l) => match l.parse::<usize>() {
            Ok(n @ 1..=50) => n,
            _ => return Err(param_error("limit")),
        },
    };
    let from: usize = match p.get("cursor") {
        None => 0,
        Some(c) => c.parse().map_err(|_| param_error("cursor"))?,
    };
    let page: Vec<Value> = list
        .iter()
        .skip(from)
        .take(limit)
        .map(|o| order_json(ex, o))
        .collect();
    let next = if from + limit < list.len() {
        (from + limit).to_string()
    } else {
        String::new()
    };
    Ok(json!({"list": page, "nextPageCursor": next, "category": category_of(ex)}))
}

fn side_word(side: Side) -> &'static str {
    match side {
        Side::Buy => "Buy",
        Side::Sell => "Sell",
    }
}

/// Bybit's `orderStatus` for the exchange's (Binance-worded) status.
fn status_word(ex: &Exchange, o: &MockOrder) -> &'static str {
    let waiting = is_conditional(o) && !o.triggered;
    match o.status.as_str() {
        "NEW" if waiting => "Untriggered",
        "NEW" => "New",
        "PARTIALLY_FILLED" => "PartiallyFilled",
        "FILLED" => "Filled",
        "CANCELED" if waiting => "Deactivated",
        "CANCELED" | "EXPIRED" if ex.spot && !o.executed_qty.is_zero() => "PartiallyFilledCanceled",
        "CANCELED" | "EXPIRED" => "Cancelled",
        _ => "Rejected",
    }
}

fn order_json(ex: &Exchange, o: &MockOrder) -> Value {
    let fee: Fixed = ex
        .executions
        .iter()
        .filter(|e| e.execution_type == "TRADE" && e.order_id == o.order_id)
        .fold(Fixed::ZERO, |sum, e| sum + e.commission);
    let (stop_order_type, direction) = match o.kind {
        OrderKind::Conditional { take_profit, .. } => {
            let rises = (o.side == Side::Buy) != take_profit;
            ("Stop", if rises { 1 } else { 2 })
        }
        _ => ("", 0),
    };
    let avg = if o.executed_qty.is_zero() {
        String::new()
    } else {
        o.avg_price().to_string()
    };
    let cancel_type = if o.status == "CANCELED" {
        "CancelByUser"
    } else {
        "UNKNOWN"
    };
    json!({
        "orderId": o.order_id.to_string(), "orderLinkId": o.client_order_id, "blockTradeId": "",
        "symbol": o.symbol, "price": o.price.to_string(), "qty": o.qty.to_string(),
        "side": side_word(o.side), "isLeverage": if ex.spot { "0" } else { "" },
        "positionIdx": 0, "orderStatus": status_word(ex, o), "cancelType": cancel_type,
        "rejectReason": "EC_NoError", "avgPrice": avg,
        "leavesQty": (o.qty - o.executed_qty).to_string(),
        "cumExecQty": o.executed_qty.to_string(), "cumExecValue": o.cum_quote.to_string(),
        "cumExecFee": fee.to_string(), "timeInForce": o.time_in_force,
        "orderType": o.order_type, "stopOrderType": stop_order_type, "orderIv": "",
        "triggerPrice": o.stop_price.to_string(), "takeProfit": "", "stopLoss": "",
        "triggerBy": if direction == 0 { "" } else { "LastPrice" },
        "triggerDirection": direction, "reduceOnly": o.reduce_only, "closeOnTrigger": false,
        "createdTime": o.created_ms.to_string(), "updatedTime": o.updated_ms.to_string(),
    })
}

// ---------------------------------------------------------------------------------------------
// Trade history

/// The longest window `/v5/execution/list` answers for, and its default.
const EXECUTION_WINDOW_MS: i64 = 7 * 24 * 3600 * 1000;

fn int_param(p: &Params, key: &str) -> Result<Option<i64>, Reject> {
    p.get(key)
        .map(|v| v.parse::<i64>().map_err(|_| param_error(key)))
        .transpose()
}

/// `GET /v5/execution/list`: the trades of the served category, newest first.
fn executions(ex: &Exchange, p: &Params, now: i64) -> Result<Value, Reject> {
    if let Some(s) = p.get("symbol") {
        ex.instrument(s).map_err(|_| symbol_invalid())?;
    }
    let (from, to) = match (int_param(p, "startTime")?, int_param(p, "endTime")?) {
        (None, None) => (now - EXECUTION_WINDOW_MS, now),
        (Some(s), None) => (s, s + EXECUTION_WINDOW_MS),
        (None, Some(e)) => (e - EXECUTION_WINDOW_MS, e),
        (Some(s), Some(e)) if s <= e && e - s <= EXECUTION_WINDOW_MS => (s, e),
        (Some(_), Some(_)) => return Err(param_error("startTime")),
    };
    let limit = match p.get("limit") {
        None => 50,
        Some(l) => match l.parse::<usize>() {
            Ok(n @ 1..=100) => n,
            _ => return Err(param_error("limit")),
        },
    };
    let start: usize = match p.get("cursor") {
        None => 0,
        Some(c) => c.parse().map_err(|_| param_error("cursor"))?,
    };
    // orderId, then orderLinkId, then symbol, then baseCoin: the first one given decides.
    let wanted = |e: &MockExecution| -> bool {
        if let Some(id) = p.get("orderId") {
            return e.order_id.to_string() == id;
        }
        if let Some(link) = p.get("orderLinkId") {
            return e.client_order_id == link;
        }
        if let Some(s) = p.get("symbol") {
            return e.symbol == s;
        }
        match p.get("baseCoin") {
            Some(base) => ex
                .instruments
                .get(&e.symbol)
                .is_some_and(|i| i.base == base),
            None => true,
        }
    };
    let list: Vec<&MockExecution> = ex
        .executions
        .iter()
        .rev()
        .filter(|e| e.execution_type == "TRADE" && wanted(e))
        .filter(|e| (from..=to).contains(&e.transaction_time_ms))
        .filter(|_| p.get("execType").is_none_or(|t| t == "Trade"))
        .collect();
    let page: Vec<Value> = list
        .iter()
        .skip(start)
        .take(limit)
        .map(|e| execution_json(ex, e))
        .collect();
    let next = if start + limit < list.len() {
        (start + limit).to_string()
    } else {
        String::new()
    };
    Ok(json!({"list": page, "nextPageCursor": next, "category": category_of(ex)}))
}

/// One `/v5/execution/list` row. `execFee` is positive when paid, in `feeCurrency` (spot: what
/// the order received; linear: the settle coin).
fn execution_json(ex: &Exchange, e: &MockExecution) -> Value {
    let value = mul(e.last_qty, e.last_price);
    let base_fee = ex
        .instruments
        .get(&e.symbol)
        .is_some_and(|i| i.base == e.commission_asset);
    let fee_rate = if base_fee {
        div(e.commission, e.last_qty)
    } else {
        div(e.commission, value)
    };
    let order_type = if e.order_type.is_empty() {
        "UNKNOWN"
    } else {
        e.order_type.as_str()
    };
    json!({
        "symbol": e.symbol, "orderId": e.order_id.to_string(),
        "orderLinkId": e.client_order_id, "side": side_word(e.side),
        "orderPrice": e.price.to_string(), "orderQty": e.qty.to_string(),
        "leavesQty": (e.qty - e.cum_qty).to_string(), "createType": "CreateByUser",
        "orderType": order_type, "stopOrderType": "",
        "execFee": e.commission.to_string(), "feeCurrency": e.commission_asset,
        "execId": e.trade_id.unwrap_or(0).to_string(),
        "execPrice": e.last_price.to_string(), "execQty": e.last_qty.to_string(),
        "execType": "Trade", "execValue": value.to_string(),
        "execTime": e.transaction_time_ms.to_string(), "isMaker": e.is_maker,
        "feeRate": fee_rate.to_string(), "tradeIv": "", "markIv": "",
        "markPrice": e.last_price.to_string(), "indexPrice": e.last_price.to_string(),
        "underlyingPrice": "", "blockTradeId": "", "closedSize": "0",
        "seq": e.trade_id.unwrap_or(0),
    })
}

// ---------------------------------------------------------------------------------------------
// Account

fn mul(a: Fixed, b: Fixed) -> Fixed {
    a.checked_mul(b).unwrap_or(Fixed::ZERO)
}

fn div(a: Fixed, b: Fixed) -> Fixed {
    a.checked_div(b).unwrap_or(Fixed::ZERO)
}

fn wallet(ex: &Exchange, p: &Params) -> Result<Value, Reject> {
    if p.req("accountType")? != "UNIFIED" {
        return Err(reject(10001, "accountType only support UNIFIED."));
    }
    let coins: Vec<Value> = ex
        .balances
        .iter()
        .map(|(asset, b)| {
            if ex.spot {
                let total = b.free + b.locked;
                return json!({"coin": asset, "walletBalance": total.to_string(),
                              "equity": total.to_string(), "locked": b.locked.to_string(),
                              "totalOrderIM": "0", "totalPositionIM": "0",
                              "unrealisedPnl": "0", "availableToWithdraw": b.free.to_string()});
            }
            let (order_im, position_im, upnl) = margins(ex, asset);
            json!({"coin": asset, "walletBalance": b.free.to_string(),
                   "equity": (b.free + upnl).to_string(), "locked": "0",
                   "totalOrderIM": order_im.to_string(),
                   "totalPositionIM": position_im.to_string(),
                   "unrealisedPnl": upnl.to_string(),
                   "availableToWithdraw": ex.available(asset).to_string()})
        })
        .collect();
    Ok(json!({"list": [{"accountType": "UNIFIED", "coin": coins}]}))
}

/// Linear margin in `asset`: open orders' and positions' initial margin, unrealized PnL.
fn margins(ex: &Exchange, asset: &str) -> (Fixed, Fixed, Fixed) {
    let quoted = |symbol: &str| ex.instruments.get(symbol).filter(|i| i.quote == asset);
    let mut order_im = Fixed::ZERO;
    for o in ex.orders.iter().filter(|o| o.is_open() && !o.reduce_only) {
        if quoted(&o.symbol).is_some() {
            let at = if o.price.is_zero() {
                o.stop_price
            } else {
                o.price
            };
            order_im += div(mul(at, o.qty - o.executed_qty), ex.leverage);
        }
    }
    let mut position_im = Fixed::ZERO;
    let mut upnl = Fixed::ZERO;
    for (symbol, pos) in &ex.positions {
        if let Some(inst) = quoted(symbol) {
            position_im += div(mul(pos.qty.abs(), pos.entry_price), ex.leverage);
            upnl += mul(inst.price - pos.entry_price, pos.qty);
        }
    }
    (order_im, position_im, upnl)
}

fn positions(ex: &Exchange, p: &Params) -> Result<Value, Reject> {
    let symbol = p.get("symbol");
    if let Some(s) = symbol {
        ex.instrument(s).map_err(|_| symbol_invalid())?;
    } else if p.get("settleCoin").is_none() && p.get("baseCoin").is_none() {
        return Err(reject(
            10001,
            "params error: symbol, baseCoin or settleCoin is required",
        ));
    }
    let mut list = Vec::new();
    for (s, inst) in &ex.instruments {
        let wanted = match (symbol, p.get("settleCoin"), p.get("baseCoin")) {
            (Some(x), ..) => x == s.as_str(),
            (None, Some(settle), _) => inst.quote == settle,
            (None, None, Some(base)) => inst.base == base,
            (None, None, None) => false,
        };
        let pos = ex.positions.get(s).copied().unwrap_or_default();
        // A symbol asked for by name is listed flat; a listing shows open positions only.
        if !wanted || (symbol.is_none() && pos.qty.is_zero()) {
            continue;
        }
        let side = match pos.qty {
            q if q.is_zero() => "",
            q if q.is_negative() => "Sell",
            _ => "Buy",
        };
        let upnl = mul(inst.price - pos.entry_price, pos.qty);
        list.push(json!({
            "symbol": s, "side": side, "size": pos.qty.abs().to_string(),
            "avgPrice": pos.entry_price.to_string(),
            "positionValue": mul(pos.qty.abs(), pos.entry_price).to_string(),
            "markPrice": inst.price.to_string(), "unrealisedPnl": upnl.to_string(),
            "liqPrice": "", "leverage": ex.leverage.to_string(), "positionIdx": 0,
            "tradeMode": 0, "positionStatus": "Normal", "autoAddMargin": 0,
            "createdTime": pos.updated_ms.to_string(), "updatedTime": pos.updated_ms.to_string(),
        }));
    }
    Ok(json!({"list": list, "nextPageCursor": "", "category": "linear"}))
}

fn dcp(ex: &mut Exchange, p: &Params) -> Result<Value, Reject> {
    let window: u64 = p
        .req("timeWindow")?
        .parse()
        .ok()
        .filter(|w| (3..=300).contains(w))
        .ok_or_else(|| param_error("timeWindow"))?;
    let product = p.get("product").unwrap_or("OPTIONS");
    let ours = if ex.spot { "SPOT" } else { "DERIVATIVES" };
    if !["OPTIONS", "DERIVATIVES", "SPOT"].contains(&product) {
        return Err(param_error("product"));
    }
    if product == ours {
        let symbols: Vec<String> = ex.instruments.keys().cloned().collect();
        for symbol in symbols {
            ex.set_countdown(&symbol, window * 1000);
        }
    }
    Ok(json!({}))
}
