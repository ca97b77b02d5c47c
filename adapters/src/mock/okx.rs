//! The mock's OKX v5 trading dialect, written from OKX's documentation and independent of the
//! codecs, which the tests check against it. One mock serves SPOT (trade mode `cash`) or SWAP
//! (`cross`/`isolated`, net position mode) as its exchange is spot or not; SWAP sizes are
//! contracts of one base unit each (`ctVal` 1), so the exchange's matching applies as is.
//!
//! - Every private request checks, in this order, the `OK-ACCESS-*` headers: key, passphrase,
//!   sign and timestamp present (50103, 50104, 50106, 50107), the timestamp an ISO-8601 UTC
//!   time with milliseconds (50112), the key known (50111), the passphrase
//!   [`MOCK_PASSPHRASE`] (50105), the timestamp within 30 s of the venue clock either way
//!   (50102), then `OK-ACCESS-SIGN`, which must be the base64 HMAC-SHA256, keyed with the key's
//!   secret, of timestamp + METHOD + path (+ `?` + the query as received) + the body as
//!   received (50113). All of them answer HTTP 401. The HMAC is the mock's own
//!   ([`super::binance::hmac_sha256_hex`]), not `crate::sign`.
//! - Answers are `{"code","msg","data"}`. Order operations answer per item (`sCode`, `sMsg`),
//!   with `code` 1 when every item failed and 2 when some did; a query for an unknown order is
//!   `51603` with no data.
//! - Routes: `POST /api/v5/trade/order`, `order-algo` (`ordType` conditional, stop-loss or
//!   take-profit trigger, `-1` order price for market), `cancel-order`, `cancel-batch-orders`
//!   (20), `cancel-algos` (10), `cancel-all-after`; `GET /api/v5/trade/order`, `order-algo`,
//!   `orders-pending`, `orders-algo-pending` (100 a page, `after` an order id),
//!   `/api/v5/account/balance`, `/api/v5/account/positions`, and the transaction details
//!   `/api/v5/trade/fills` (last 3 days) and `/fills-history` (last 3 months, `instType`
//!   required) built from the exchange's recorded executions: filtered by `instType`,
//!   `instId`, `ordId`; newest first by `billId`, 100 a page (`after`: older than a bill id,
//!   `before`: newer); `fee` negative when charged, as OKX reports it.
//! - Orders: `clOrdId` 1–32 letters and digits, refused while an order with it is live (51016);
//!   a SPOT market buy without `tgtCcy=base_ccy` is a quote amount, as on OKX. An algo order
//!   that has fired is `effective`, naming the order it placed in `ordId` and `ordIdList`; that
//!   order is not listed apart, but its fills carry its `ordId`.
//! - Refusals use OKX's codes: 51001 (instrument), 51000 (parameters, price tick), 51020 /
//!   51121 (size), 51008 (balance), 51169 (reduce-only), 51400 (cancel of an unknown or
//!   finished order). A post-only order that would take is refused (51000) where OKX would
//!   accept and then cancel it.
//! - `cancel-all-after` covers every instrument: `timeOut` 10–120 s arms (or renews) the
//!   countdown, after which every open order is canceled; `0` disarms it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use keel_engine::event::Side;
use keel_engine::fixed::Fixed;
use serde_json::{Map, Value, json};

use super::binance::hmac_sha256_hex;
use super::exchange::{Exchange, MockExecution, MockOrder, NewOrder, OrderKind, Reject, reject};
use super::venues::Answer;
use super::{Arrived, decode_query};

/// The passphrase the OKX mock accepts with every key.
pub const MOCK_PASSPHRASE: &str = "mock-passphrase";

/// OKX refuses a request whose timestamp is further than this from its clock.
const TIMESTAMP_WINDOW_MS: i64 = 30_000;
const PAGE_ROWS: usize = 100;
/// How far back `/api/v5/trade/fills` and `/fills-history` reach.
const FILLS_WINDOW_MS: i64 = 3 * 24 * 3600 * 1000;
const FILLS_HISTORY_WINDOW_MS: i64 = 90 * 24 * 3600 * 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Place,
    PlaceAlgo,
    Cancel,
    CancelBatch,
    CancelAlgos,
    CancelAllAfter,
    Query,
    QueryAlgo,
    Pending,
    AlgoPending,
    Balance,
    Positions,
    Fills,
    FillsHistory,
}

fn route(method: &str, path: &str) -> Option<Route> {
    use Route::*;
    Some(match (method, path) {
        ("POST", "/api/v5/trade/order") => Place,
        ("POST", "/api/v5/trade/order-algo") => PlaceAlgo,
        ("POST", "/api/v5/trade/cancel-order") => Cancel,
        ("POST", "/api/v5/trade/cancel-batch-orders") => CancelBatch,
        ("POST", "/api/v5/trade/cancel-algos") => CancelAlgos,
        ("POST", "/api/v5/trade/cancel-all-after") => CancelAllAfter,
        ("GET", "/api/v5/trade/order") => Query,
        ("GET", "/api/v5/trade/order-algo") => QueryAlgo,
        ("GET", "/api/v5/trade/orders-pending") => Pending,
        ("GET", "/api/v5/trade/orders-algo-pending") => AlgoPending,
        ("GET", "/api/v5/account/balance") => Balance,
        ("GET", "/api/v5/account/positions") => Positions,
        ("GET", "/api/v5/trade/fills") => Fills,
        ("GET", "/api/v5/trade/fills-history") => FillsHistory,
        _ => return None,
    })
}

fn failure(code: i64, msg: impl Into<String>) -> Reject {
    reject(code, msg)
}

/// The answer to a trading or account request; `None` for any other path.
pub(super) fn answer(ex: &mut Exchange, req: &Arrived, now_ms: i64) -> Option<Answer> {
    let route = route(&req.method, &req.path)?;
    ex.expire_countdowns(now_ms);
    if let Err(r) = authenticate(ex, req, now_ms) {
        let body = json!({"msg": r.msg, "code": r.code.to_string()});
        return Some(Answer {
            status: 401,
            body: body.to_string(),
        });
    }
    let served = body_value(req).and_then(|body| serve(ex, route, req, &body, now_ms));
    let body = match served {
        Ok(v) => v,
        Err(r) => json!({"code": r.code.to_string(), "msg": r.msg, "data": []}),
    };
    Some(Answer {
        status: 200,
        body: body.to_string(),
    })
}

fn serve(
    ex: &mut Exchange,
    route: Route,
    req: &Arrived,
    body: &Value,
    now: i64,
) -> Result<Value, Reject> {
    let query = Params::query(req);
    match route {
        Route::Place => Ok(ops(vec![place(ex, &Params::object(body)?, false, now)])),
        Route::PlaceAlgo => Ok(ops(vec![place(ex, &Params::object(body)?, true, now)])),
        Route::Cancel => Ok(ops(vec![cancel(ex, &Params::object(body)?, false, now)])),
        Route::CancelBatch => batch(ex, body, 20, false, now),
        Route::CancelAlgos => batch(ex, body, 10, true, now),
        Route::CancelAllAfter => cancel_all_after(ex, &Params::object(body)?, now),
        Route::Query => query_order(ex, &query, false),
        Route::QueryAlgo => query_order(ex, &query, true),
        Route::Pending => pending(ex, &query, false),
        Route::AlgoPending => {
            if query.get("ordType") != Some("conditional") {
                return Err(failure(51000, "Parameter ordType error"));
            }
            pending(ex, &query, true)
        }
        Route::Balance => Ok(balance(ex, &query, now)),
        Route::Positions => Ok(positions(ex, &query)),
        Route::Fills => fills(ex, &query, FILLS_WINDOW_MS, now),
        Route::FillsHistory => {
            query.req("instType")?;
            fills(ex, &query, FILLS_HISTORY_WINDOW_MS, now)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Authentication

fn header<'a>(req: &'a Arrived, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

fn authenticate(ex: &Exchange, req: &Arrived, now_ms: i64) -> Result<(), Reject> {
    let need = |name: &str, code: i64| {
        header(req, name).ok_or_else(|| {
            let upper = name.to_ascii_uppercase();
            failure(code, format!("Request header {upper} cannot be empty."))
        })
    };
    let key = need("ok-access-key", 50103)?;
    let passphrase = need("ok-access-passphrase", 50104)?;
    let sign = need("ok-access-sign", 50106)?;
    let stamp = need("ok-access-timestamp", 50107)?;
    let stamp_ms =
        parse_iso_ms(stamp).ok_or_else(|| failure(50112, "Invalid OK-ACCESS-TIMESTAMP"))?;
    let secret = ex
        .secret_of(key)
        .ok_or_else(|| failure(50111, "Invalid OK-ACCESS-KEY"))?;
    if passphrase != MOCK_PASSPHRASE {
        return Err(failure(50105, "OK-ACCESS-PASSPHRASE incorrect"));
    }
    if (now_ms - stamp_ms).abs() > TIMESTAMP_WINDOW_MS {
        return Err(failure(50102, "Timestamp request expired"));
    }
    let mut path = req.path.clone();
    if !req.raw_query.is_empty() {
        path.push('?');
        path.push_str(&req.raw_query);
    }
    let prehash = format!("{stamp}{}{path}{}", req.method, req.body);
    let mac_hex = hmac_sha256_hex(secret.as_bytes(), prehash.as_bytes());
    let expected = hex::decode(mac_hex).map(|mac| BASE64.encode(mac));
    if expected.ok().as_deref() != Some(sign) {
        return Err(failure(50113, "Invalid Sign"));
    }
    Ok(())
}

/// `2020-12-08T09:08:57.715Z` → ms since the epoch; any other form is `None`.
fn parse_iso_ms(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let shape_ok = b.len() == 24
        && [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'.'),
            (23, b'Z'),
        ]
        .iter()
        .all(|&(i, c)| b[i] == c);
    if !shape_ok {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let part = text.get(from..to)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second, ms) = (num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 23)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 59 {
        return None;
    }
    let days = crate::civil::days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + ms)
}

// ---------------------------------------------------------------------------------------------
// Parameters

fn body_value(req: &Arrived) -> Result<Value, Reject> {
    if req.body.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&req.body).map_err(|_| failure(50002, "Json data format error"))
}

struct Params(Vec<(String, String)>);

impl Params {
    fn query(req: &Arrived) -> Params {
        Params(decode_query(&req.raw_query))
    }

    fn object(v: &Value) -> Result<Params, Reject> {
        let obj = v
            .as_object()
            .ok_or_else(|| failure(50002, "Json data format error"))?;
        Ok(Params::from_map(obj))
    }

    fn from_map(obj: &Map<String, Value>) -> Params {
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        Params(obj.iter().map(|(k, v)| (k.clone(), text(v))).collect())
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    fn req(&self, key: &str) -> Result<&str, Reject> {
        self.get(key)
            .ok_or_else(|| failure(50014, format!("Parameter {key} can not be empty.")))
    }

    fn decimal(&self, key: &str) -> Result<Option<Fixed>, Reject> {
        self.get(key)
            .map(|v| Fixed::parse_exact(v).map_err(|_| param_error(key)))
            .transpose()
    }
}

fn param_error(key: &str) -> Reject {
    failure(51000, format!("Parameter {key} error"))
}

fn is_swap(symbol: &str) -> bool {
    symbol.ends_with("-SWAP")
}

fn inst_type(symbol: &str) -> &'static str {
    if is_swap(symbol) { "SWAP" } else { "SPOT" }
}

// ---------------------------------------------------------------------------------------------
// Order operations

/// An operation answer from its items: `code` 0 when every `sCode` is 0, 1 when none is, 2
/// otherwise.
fn ops(items: Vec<Value>) -> Value {
    let failed = items.iter().filter(|i| i["sCode"] != "0").count();
    let (code, msg) = match failed {
        0 => ("0", ""),
        n if n == items.len() => ("1", "All operations failed"),
        _ => ("2", "Bulk operation partially succeeded"),
    };
    json!({"code": code, "msg": msg, "data": items})
}

/// One item of an operation answer: the ids, and `sCode`/`sMsg` from `outcome`.
fn item(ids: Value, outcome: Result<&str, Reject>, now: i64) -> Value {
    let mut v = ids;
    let (code, msg) = match outcome {
        Ok(msg) => ("0".to_string(), msg.to_string()),
        Err(r) => (r.code.to_string(), r.msg),
    };
    if let Some(m) = v.as_object_mut() {
        m.insert("tag".into(), json!(""));
        m.insert("ts".into(), json!(now.to_string()));
        m.insert("sCode".into(), json!(code));
        m.insert("sMsg".into(), json!(msg));
    }
    v
}

/// The exchange's (Binance-worded) refusal in OKX's words.
fn translate(r: Reject) -> Reject {
    let m = r.msg.as_str();
    match r.code {
        -1121 => failure(51001, "Instrument ID does not exist."),
        -1013 if m.ends_with("PRICE_FILTER") => param_error("px"),
        -4014 => param_error("px"),
        -1013 if m.ends_with("NOTIONAL") => failure(
            51020,
            "Order amount should be greater than the min available amount.",
        ),
        -4164 | -4004 => failure(
            51020,
            "Order amount should be greater than the min available amount.",
        ),
        -1013 | -4023 | -4005 => {
            failure(51121, "Order quantity must be a multiple of the lot size.")
        }
        -4116 => failure(51016, "Duplicated clOrdId"),
        -2010 if m.starts_with("Duplicate") => failure(51016, "Duplicated clOrdId"),
        -2010 if m.contains("insufficient") => {
            failure(51008, "Order failed. Insufficient balance in account.")
        }
        -2019 => failure(51008, "Order failed. Insufficient margin in account."),
        -2022 => failure(
            51169,
            "Order failed because you don't have any positions in this direction for this \
             contract to reduce or close.",
        ),
        -2011 => cancel_failed(),
        -5022 => failure(
            51000,
            "Parameter ordType error: post_only would take liquidity",
        ),
        -2010 if m.contains("take") => failure(
            51000,
            "Parameter ordType error: post_only would take liquidity",
        ),
        -2021 => param_error("slTriggerPx"),
        -2010 if m.contains("trigger") => param_error("slTriggerPx"),
        _ => failure(51000, m.to_string()),
    }
}

fn cancel_failed() -> Reject {
    failure(
        51400,
        "Cancellation failed as the order has been filled, canceled or does not exist.",
    )
}

/// Places a regular (or algo) order; the answer item names it.
fn place(ex: &mut Exchange, p: &Params, algo: bool, now: i64) -> Value {
    let (client_key, id_key) = if algo {
        ("algoClOrdId", "algoId")
    } else {
        ("clOrdId", "ordId")
    };
    let client = p.get(client_key).unwrap_or("").to_string();
    let placed = parse_order(ex, p, algo).and_then(|o| ex.place(o, now).map_err(translate));
    match placed {
        Ok(idx) => {
            let o = &ex.orders[idx];
            let ids = json!({client_key: client, id_key: o.order_id.to_string()});
            item(ids, Ok("Order placed"), now)
        }
        Err(r) => item(json!({client_key: client, id_key: ""}), Err(r), now),
    }
}

fn check_client_id(key: &str, id: &str) -> Result<(), Reject> {
    let ok = id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric());
    if ok { Ok(()) } else { Err(param_error(key)) }
}

fn parse_order(ex: &Exchange, p: &Params, algo: bool) -> Result<NewOrder, Reject> {
    let symbol = p.req("instId")?.to_string();
    let inst = ex.instrument(&symbol).map_err(translate)?;
    let current = inst.price;
    let td_ok = match p.req("tdMode")? {
        "cash" => !is_swap(&symbol),
        "cross" | "isolated" => is_swap(&symbol),
        _ => false,
    };
    if !td_ok {
        return Err(param_error("tdMode"));
    }
    let side = match p.req("side")? {
        "buy" => Side::Buy,
        "sell" => Side::Sell,
        _ => return Err(param_error("side")),
    };
    let mut qty = p.decimal("sz")?.ok_or_else(|| param_error("sz"))?;
    if qty <= Fixed::ZERO {
        return Err(param_error("sz"));
    }
    let order_type = p.req("ordType")?.to_string();
    let (kind, price, stop_price, time_in_force) = if algo {
        conditional(p, &order_type)?
    } else {
        let price = p.decimal("px")?.unwrap_or(Fixed::ZERO);
        let limit = |tif: &str, post_only| -> Result<_, Reject> {
            if price <= Fixed::ZERO {
                return Err(param_error("px"));
            }
            Ok((
                OrderKind::Limit { post_only },
                price,
                Fixed::ZERO,
                tif.to_string(),
            ))
        };
        match order_type.as_str() {
            "market" => (OrderKind::Market, Fixed::ZERO, Fixed::ZERO, String::new()),
            "limit" => limit("GTC", false)?,
            "post_only" => limit("GTC", true)?,
            "ioc" => limit("IOC", false)?,
            "fok" => limit("FOK", false)?,
            _ => return Err(param_error("ordType")),
        }
    };
    let base_units = p.get("tgtCcy") == Some("base_ccy");
    if ex.spot && kind == OrderKind::Market && side == Side::Buy && !base_units {
        // OKX sizes a SPOT market buy in the quote currency unless told otherwise.
        qty = qty
            .checked_div(current)
            .unwrap_or(Fixed::ZERO)
            .floor_to(inst.step_size);
    }
    let reduce_only = p.get("reduceOnly") == Some("true");
    if reduce_only && !is_swap(&symbol) {
        return Err(param_error("reduceOnly"));
    }
    let client_key = if algo { "algoClOrdId" } else { "clOrdId" };
    let client_order_id = match p.get(client_key) {
        Some(id) => {
            check_client_id(client_key, id)?;
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
        price,
        stop_price,
        qty,
        reduce_only,
        algo,
    })
}

/// An algo order's kind, limit price and trigger: `ordType` conditional with a stop-loss or a
/// take-profit trigger; an order price of `-1` is market.
fn conditional(p: &Params, ord_type: &str) -> Result<(OrderKind, Fixed, Fixed, String), Reject> {
    if ord_type != "conditional" {
        return Err(param_error("ordType"));
    }
    let (take_profit, trigger_key, price_key) = match (p.get("slTriggerPx"), p.get("tpTriggerPx")) {
        (Some(_), None) => (false, "slTriggerPx", "slOrdPx"),
        (None, Some(_)) => (true, "tpTriggerPx", "tpOrdPx"),
        _ => return Err(param_error("slTriggerPx")),
    };
    let trigger = p.decimal(trigger_key)?.unwrap_or(Fixed::ZERO);
    if trigger <= Fixed::ZERO {
        return Err(param_error(trigger_key));
    }
    let (limit, price) = match p.req(price_key)? {
        "-1" => (false, Fixed::ZERO),
        text => match Fixed::parse_exact(text) {
            Ok(px) if px > Fixed::ZERO => (true, px),
            _ => return Err(param_error(price_key)),
        },
    };
    let kind = OrderKind::Conditional { take_profit, limit };
    Ok((kind, price, trigger, String::new()))
}

/// The order of the family named by the client id (the latest with it) or the OKX id.
fn named(ex: &Exchange, p: &Params, algo: bool) -> Option<usize> {
    let (client_key, id_key) = if algo {
        ("algoClOrdId", "algoId")
    } else {
        ("clOrdId", "ordId")
    };
    let inst = p.get("instId");
    let fits = |o: &MockOrder| o.algo == algo && inst.is_none_or(|i| o.symbol == i);
    if let Some(client) = p.get(client_key) {
        return ex
            .orders
            .iter()
            .rposition(|o| fits(o) && o.client_order_id == client);
    }
    let id = p.get(id_key)?;
    ex.orders
        .iter()
        .position(|o| fits(o) && o.order_id.to_string() == id)
}

fn cancel(ex: &mut Exchange, p: &Params, algo: bool, now: i64) -> Value {
    let (client_key, id_key) = if algo {
        ("algoClOrdId", "algoId")
    } else {
        ("clOrdId", "ordId")
    };
    let ids = json!({
        client_key: p.get(client_key).unwrap_or(""),
        id_key: p.get(id_key).unwrap_or(""),
    });
    let instrument = p
        .req("instId")
        .and_then(|i| ex.instrument(i).map_err(translate));
    if let Err(r) = instrument {
        return item(ids, Err(r), now);
    }
    let Some(idx) = named(ex, p, algo).filter(|&i| ex.orders[i].is_open()) else {
        return item(ids, Err(cancel_failed()), now);
    };
    let done = ex.cancel(idx, now).map_err(translate);
    let o = &ex.orders[idx];
    let ids = json!({client_key: o.client_order_id, id_key: o.order_id.to_string()});
    item(ids, done.map(|()| ""), now)
}

fn batch(
    ex: &mut Exchange,
    body: &Value,
    max: usize,
    algo: bool,
    now: i64,
) -> Result<Value, Reject> {
    let list = body
        .as_array()
        .ok_or_else(|| failure(50002, "Json data format error"))?;
    if list.is_empty() || list.len() > max {
        return Err(failure(51000, "Parameter request error"));
    }
    let mut items = Vec::with_capacity(list.len());
    for entry in list {
        let p = Params::object(entry)?;
        items.push(cancel(ex, &p, algo, now));
    }
    Ok(ops(items))
}

fn cancel_all_after(ex: &mut Exchange, p: &Params, now: i64) -> Result<Value, Reject> {
    let secs: u64 = p
        .req("timeOut")?
        .parse()
        .ok()
        .filter(|s| *s == 0 || (10..=120).contains(s))
        .ok_or_else(|| param_error("timeOut"))?;
    let symbols: Vec<String> = ex.instruments.keys().cloned().collect();
    for symbol in symbols {
        ex.set_countdown(&symbol, secs * 1000);
    }
    let trigger = if secs == 0 {
        "0".to_string()
    } else {
        (now + secs as i64 * 1000).to_string()
    };
    let row = json!({"triggerTime": trigger, "tag": "", "ts": now.to_string()});
    Ok(json!({"code": "0", "msg": "", "data": [row]}))
}

// ---------------------------------------------------------------------------------------------
// Queries

fn query_order(ex: &Exchange, p: &Params, algo: bool) -> Result<Value, Reject> {
    if !algo {
        let inst = p.req("instId")?;
        ex.instrument(inst).map_err(translate)?;
        if p.get("ordId").is_none() && p.get("clOrdId").is_none() {
            return Err(param_error("ordId"));
        }
    } else if p.get("algoId").is_none() && p.get("algoClOrdId").is_none() {
        return Err(param_error("algoId"));
    }
    let idx = named(ex, p, algo).ok_or_else(|| failure(51603, "Order does not exist"))?;
    let row = row_json(ex, &ex.orders[idx]);
    Ok(json!({"code": "0", "msg": "", "data": [row]}))
}

/// Live orders of the family, newest first, 100 a page older than `after`.
fn pending(ex: &Exchange, p: &Params, algo: bool) -> Result<Value, Reject> {
    let inst = p.get("instId");
    let kind = p.get("instType");
    let after = p.get("after");
    let limit = match p.get("limit") {
        None => PAGE_ROWS,
        Some(l) => l
            .parse()
            .ok()
            .filter(|n| (1..=PAGE_ROWS).contains(n))
            .ok_or_else(|| param_error("limit"))?,
    };
    let mut rows = Vec::new();
    let mut older = after.is_none();
    for o in ex.orders.iter().rev() {
        if !older {
            older = after == Some(o.order_id.to_string().as_str());
            continue;
        }
        let live = o.is_open() && !(algo && o.triggered);
        let wanted = o.algo == algo
            && live
            && inst.is_none_or(|i| o.symbol == i)
            && kind.is_none_or(|k| inst_type(&o.symbol) == k);
        if wanted {
            rows.push(row_json(ex, o));
        }
        if rows.len() == limit {
            break;
        }
    }
    Ok(json!({"code": "0", "msg": "", "data": rows}))
}

fn row_json(ex: &Exchange, o: &MockOrder) -> Value {
    if o.algo {
        algo_json(ex, o)
    } else {
        order_json(ex, o)
    }
}

fn opt(x: Fixed) -> String {
    if x.is_zero() {
        String::new()
    } else {
        x.to_string()
    }
}

fn td_mode(symbol: &str) -> &'static str {
    if is_swap(symbol) { "cross" } else { "cash" }
}

/// `GET /api/v5/trade/order` row; the fill fields describe the order's latest fill.
fn order_json(ex: &Exchange, o: &MockOrder) -> Value {
    let trades: Vec<_> = ex
        .executions
        .iter()
        .filter(|e| e.execution_type == "TRADE" && e.order_id == o.order_id)
        .collect();
    let fee = trades.iter().fold(Fixed::ZERO, |sum, e| sum + e.commission);
    let last = trades.last();
    let state = match o.status.as_str() {
        "NEW" => "live",
        "PARTIALLY_FILLED" => "partially_filled",
        "FILLED" => "filled",
        _ => "canceled",
    };
    json!({
        "instType": inst_type(&o.symbol), "instId": o.symbol, "ordId": o.order_id.to_string(),
        "clOrdId": o.client_order_id, "tag": "", "px": opt(o.price), "sz": o.qty.to_string(),
        "ordType": o.order_type, "side": o.side.as_str(), "posSide": "net",
        "tdMode": td_mode(&o.symbol), "accFillSz": o.executed_qty.to_string(),
        "fillPx": last.map(|e| e.last_price.to_string()).unwrap_or_default(),
        "fillSz": last.map(|e| e.last_qty.to_string()).unwrap_or_else(|| "0".into()),
        "tradeId": last.and_then(|e| e.trade_id).map(|t| t.to_string()).unwrap_or_default(),
        "fillTime": last.map(|e| e.transaction_time_ms.to_string()).unwrap_or_default(),
        "avgPx": opt(o.avg_price()), "state": state,
        "lever": if ex.spot { String::new() } else { ex.leverage.to_string() },
        // OKX reports a charged fee as a negative number.
        "fee": (-fee).to_string(),
        "feeCcy": last.map(|e| e.commission_asset.clone()).unwrap_or_default(),
        "reduceOnly": o.reduce_only.to_string(), "cancelSource": "", "category": "normal",
        "uTime": o.updated_ms.to_string(), "cTime": o.created_ms.to_string(),
    })
}

/// `GET /api/v5/trade/order-algo` row.
fn algo_json(ex: &Exchange, o: &MockOrder) -> Value {
    let take_profit = matches!(
        o.kind,
        OrderKind::Conditional {
            take_profit: true,
            ..
        }
    );
    let ord_px = if o.price.is_zero() {
        "-1".to_string()
    } else {
        o.price.to_string()
    };
    let (sl, sl_px, tp, tp_px) = if take_profit {
        (
            String::new(),
            String::new(),
            o.stop_price.to_string(),
            ord_px,
        )
    } else {
        (
            o.stop_price.to_string(),
            ord_px,
            String::new(),
            String::new(),
        )
    };
    // The order the algo order placed when it fired.
    let placed = o.actual_order_id.map(|id| id.to_string());
    let state = match o.status.as_str() {
        "NEW" if o.triggered => "effective",
        "NEW" | "PARTIALLY_FILLED" => "live",
        "FINISHED" | "FILLED" => "effective",
        "CANCELED" => "canceled",
        _ => "order_failed",
    };
    json!({
        "instType": inst_type(&o.symbol), "instId": o.symbol, "algoId": o.order_id.to_string(),
        "algoClOrdId": o.client_order_id, "clOrdId": "", "ordType": "conditional",
        "state": state, "side": o.side.as_str(), "posSide": "net", "sz": o.qty.to_string(),
        "tdMode": td_mode(&o.symbol), "triggerPx": "", "ordPx": "",
        "slTriggerPx": sl, "slOrdPx": sl_px, "tpTriggerPx": tp, "tpOrdPx": tp_px,
        "slTriggerPxType": "last", "tpTriggerPxType": "last",
        "reduceOnly": o.reduce_only.to_string(),
        "actualSz": opt(o.executed_qty), "actualPx": opt(o.avg_price()),
        "actualSide": if o.executed_qty.is_zero() { "" } else if take_profit { "tp" } else { "sl" },
        "lever": if ex.spot { String::new() } else { ex.leverage.to_string() },
        "failCode": "", "uTime": o.updated_ms.to_string(), "cTime": o.created_ms.to_string(),
        "ordId": placed.clone().unwrap_or_default(),
        "ordIdList": placed.into_iter().collect::<Vec<_>>(),
    })
}

// ---------------------------------------------------------------------------------------------
// Transaction details

/// `GET /api/v5/trade/fills` (and `/fills-history`): the fills of the last `window_ms`, newest
/// first. The bill id of a fill is its trade id, so bills rise with time as on OKX.
fn fills(ex: &Exchange, p: &Params, window_ms: i64, now: i64) -> Result<Value, Reject> {
    let inst = p.get("instId");
    if let Some(i) = inst {
        ex.instrument(i).map_err(translate)?;
    }
    let kind = p.get("instType");
    if kind.is_some_and(|k| k != "SPOT" && k != "SWAP") {
        return Err(param_error("instType"));
    }
    let bill = |key: &str| -> Result<Option<u64>, Reject> {
        p.get(key)
            .map(|v| v.parse::<u64>().map_err(|_| param_error(key)))
            .transpose()
    };
    let (after, before) = (bill("after")?, bill("before")?);
    let limit = match p.get("limit") {
        None => PAGE_ROWS,
        Some(l) => l
            .parse()
            .ok()
            .filter(|n| (1..=PAGE_ROWS).contains(n))
            .ok_or_else(|| param_error("limit"))?,
    };
    let ord_id = p.get("ordId");
    let rows: Vec<Value> = ex
        .executions
        .iter()
        .rev()
        .filter(|e| e.execution_type == "TRADE" && e.transaction_time_ms >= now - window_ms)
        .filter(|e| {
            let id = e.trade_id.unwrap_or(0);
            inst.is_none_or(|i| e.symbol == i)
                && kind.is_none_or(|k| inst_type(&e.symbol) == k)
                && ord_id.is_none_or(|o| e.order_id.to_string() == o)
                && after.is_none_or(|a| id < a)
                && before.is_none_or(|b| id > b)
        })
        .take(limit)
        .map(|e| fill_json(ex, e))
        .collect();
    Ok(json!({"code": "0", "msg": "", "data": rows}))
}

/// One transaction-detail row. OKX reports a charged fee, and its rate, as negative numbers.
fn fill_json(ex: &Exchange, e: &MockExecution) -> Value {
    let value = mul(e.last_qty, e.last_price);
    let base_fee = ex
        .instruments
        .get(&e.symbol)
        .is_some_and(|i| i.base == e.commission_asset);
    let paid_on = if base_fee { e.last_qty } else { value };
    let fee_rate = e.commission.checked_div(paid_on).unwrap_or(Fixed::ZERO);
    let id = e.trade_id.unwrap_or(0).to_string();
    json!({
        "instType": inst_type(&e.symbol), "instId": e.symbol, "tradeId": id, "billId": id,
        "ordId": e.order_id.to_string(), "clOrdId": e.client_order_id, "tag": "",
        "subType": if e.side == Side::Buy { "1" } else { "2" },
        "fillPx": e.last_price.to_string(), "fillSz": e.last_qty.to_string(),
        "fillIdxPx": e.last_price.to_string(), "fillPnl": e.realized_pnl.to_string(),
        "fillPxVol": "", "fillPxUsd": "", "fillMarkVol": "", "fillFwdPx": "",
        "fillMarkPx": if is_swap(&e.symbol) { e.last_price.to_string() } else { String::new() },
        "side": e.side.as_str(), "posSide": "net",
        "execType": if e.is_maker { "M" } else { "T" },
        "feeCcy": e.commission_asset, "fee": (-e.commission).to_string(),
        "feeRate": (-fee_rate).to_string(),
        "ts": e.transaction_time_ms.to_string(), "fillTime": e.transaction_time_ms.to_string(),
    })
}

// ---------------------------------------------------------------------------------------------
// Account

fn mul(a: Fixed, b: Fixed) -> Fixed {
    a.checked_mul(b).unwrap_or(Fixed::ZERO)
}

fn unrealized(ex: &Exchange, asset: &str) -> Fixed {
    let mut total = Fixed::ZERO;
    for (symbol, pos) in &ex.positions {
        if let Some(inst) = ex.instruments.get(symbol).filter(|i| i.quote == asset) {
            total += mul(inst.price - pos.entry_price, pos.qty);
        }
    }
    total
}

/// One account row with a detail per currency: SPOT available and frozen as the exchange
/// holds them; SWAP available after margin, the rest of the equity frozen.
fn balance(ex: &Exchange, p: &Params, now: i64) -> Value {
    let wanted: Option<Vec<&str>> = p.get("ccy").map(|c| c.split(',').collect());
    let mut details = Vec::new();
    let mut total = Fixed::ZERO;
    for (asset, b) in &ex.balances {
        if wanted
            .as_ref()
            .is_some_and(|w| !w.contains(&asset.as_str()))
        {
            continue;
        }
        let (cash, equity, avail, frozen, upl) = if ex.spot {
            let cash = b.free + b.locked;
            (cash, cash, b.free, b.locked, Fixed::ZERO)
        } else {
            let upl = unrealized(ex, asset);
            let equity = b.free + upl;
            let avail = ex.available(asset);
            let frozen = (equity - avail).max(Fixed::ZERO);
            (b.free, equity, avail, frozen, upl)
        };
        total += equity;
        details.push(json!({
            "ccy": asset, "eq": equity.to_string(), "cashBal": cash.to_string(),
            "availBal": avail.to_string(), "availEq": avail.to_string(),
            "frozenBal": frozen.to_string(), "ordFrozen": frozen.to_string(),
            "upl": upl.to_string(), "uTime": now.to_string(),
        }));
    }
    let row = json!({"totalEq": total.to_string(), "uTime": now.to_string(), "details": details});
    json!({"code": "0", "msg": "", "data": [row]})
}

/// Open SWAP positions (net mode: `pos` signed).
fn positions(ex: &Exchange, p: &Params) -> Value {
    let inst = p.get("instId");
    let kind = p.get("instType");
    let mut rows = Vec::new();
    for (symbol, pos) in &ex.positions {
        let Some(i) = ex.instruments.get(symbol) else {
            continue;
        };
        let wanted = !pos.qty.is_zero()
            && is_swap(symbol)
            && inst.is_none_or(|x| x == symbol.as_str())
            && kind.is_none_or(|k| k == "SWAP");
        if !wanted {
            continue;
        }
        let upl = mul(i.price - pos.entry_price, pos.qty);
        let notional = mul(pos.qty.abs(), i.price);
        rows.push(json!({
            "instType": "SWAP", "instId": symbol, "mgnMode": "cross", "posSide": "net",
            "pos": pos.qty.to_string(), "avgPx": pos.entry_price.to_string(),
            "markPx": i.price.to_string(), "upl": upl.to_string(), "liqPx": "",
            "lever": ex.leverage.to_string(), "notionalUsd": notional.to_string(),
            "ccy": i.quote,
            "uTime": pos.updated_ms.to_string(), "cTime": pos.updated_ms.to_string(),
        }));
    }
    json!({"code": "0", "msg": "", "data": rows})
}
