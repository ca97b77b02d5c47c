//! The mock's Binance trading dialect (spot `/api/v3`, USD-M `/fapi`), written from Binance's
//! documentation and independent of the codecs, which the tests check against it.
//!
//! - SIGNED endpoints (`TRADE`, `USER_DATA`) check, in this order: the `X-MBX-APIKEY` header
//!   (missing: -2014, unknown: -2015, both HTTP 401), the `signature` parameter, which must be
//!   the hex HMAC-SHA256, keyed with the key's secret, of the query string followed by the
//!   request body exactly as received, `signature` itself left out (-1022), then the timing
//!   rule `timestamp < serverTime + 1000 && serverTime − timestamp ≤ recvWindow` (-1021;
//!   `recvWindow` defaults to 5000 and may not exceed 60000). The HMAC is computed here from
//!   SHA-256 by RFC 2104, not through `crate::sign`, so a signing bug there fails the tests.
//! - Orders: spot `POST/GET/DELETE /api/v3/order`, `GET/DELETE /api/v3/openOrders`,
//!   `GET /api/v3/account`; USD-M `POST/GET/DELETE /fapi/v1/order`, conditional orders on the
//!   Algo Order API (`POST/GET/DELETE /fapi/v1/algoOrder`, `GET /fapi/v1/openAlgoOrders`,
//!   `DELETE /fapi/v1/algoOpenOrders`; the plain order endpoint refuses conditional types with
//!   -4120), `GET /fapi/v1/openOrders`, `DELETE /fapi/v1/allOpenOrders`, `GET /fapi/v3/balance`,
//!   `GET /fapi/v3/positionRisk`, the dead-man switch `POST /fapi/v1/countdownCancelAll`, and
//!   the user-data stream key `POST/PUT/DELETE /fapi/v1/listenKey` (API key header only).
//! - The account's trades, from the exchange's recorded executions: spot
//!   `GET /api/v3/myTrades`, USD-M `GET /fapi/v1/userTrades` (`symbol` mandatory; `orderId`,
//!   `fromId` (trades with that id or later), `limit` 1..=1000, default 500; without `fromId`
//!   the most recent trades; ascending by trade id). A USD-M conditional order's trades belong
//!   to the order it became when triggered (its algo order's `actualOrderId`).
//! - Public: `GET /api/v3/time`, `/fapi/v1/time`, exchangeInfo with the filters the exchange
//!   enforces, and the order-book snapshot `GET /api/v3/depth` / `GET /fapi/v1/depth`
//!   ([`depth_answer`]: the [`MockDepth`] the test set, cut to `limit` levels per side).
//!
//! Rejections use the venue's codes and messages: -1013 `Filter failure: ...` (spot), -4014,
//! -4023, -4004, -4005, -4164 (USD-M filters), -2010 `Duplicate order sent.` / -4116 (a client
//! id already open), -2013 `Order does not exist.` (query), -2011 `Unknown order sent.`
//! (cancel), -2010 / -2019 (balance or margin), -1121 `Invalid symbol.`, -1102 (a mandatory
//! parameter missing).

use keel_engine::event::Side;
use keel_engine::fixed::Fixed;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::exchange::{Exchange, MockExecution, MockOrder, NewOrder, OrderKind, Reject, reject};
use super::venues::Answer;
use super::{MockDepth, decode_query, percent_decode};

/// What the wire layer needs of one HTTP request.
pub(super) struct HttpRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub raw_query: &'a str,
    pub body: &'a str,
    pub api_key: Option<&'a str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Time,
    ExchangeInfo,
    NewOrder,
    QueryOrder,
    CancelOrder,
    CancelAll,
    OpenOrders,
    Account,
    NewAlgo,
    QueryAlgo,
    CancelAlgo,
    CancelAllAlgo,
    OpenAlgo,
    Balance,
    PositionRisk,
    Countdown,
    ListenKey,
    AccountTrades,
}

fn route(spot: bool, method: &str, path: &str) -> Option<Route> {
    use Route::*;
    Some(match (spot, method, path) {
        (true, "GET", "/api/v3/time") | (false, "GET", "/fapi/v1/time") => Time,
        (true, "GET", "/api/v3/exchangeInfo") | (false, "GET", "/fapi/v1/exchangeInfo") => {
            ExchangeInfo
        }
        (true, "POST", "/api/v3/order") | (false, "POST", "/fapi/v1/order") => NewOrder,
        (true, "GET", "/api/v3/order") | (false, "GET", "/fapi/v1/order") => QueryOrder,
        (true, "DELETE", "/api/v3/order") | (false, "DELETE", "/fapi/v1/order") => CancelOrder,
        (true, "DELETE", "/api/v3/openOrders") | (false, "DELETE", "/fapi/v1/allOpenOrders") => {
            CancelAll
        }
        (true, "GET", "/api/v3/openOrders") | (false, "GET", "/fapi/v1/openOrders") => OpenOrders,
        (true, "GET", "/api/v3/account") => Account,
        (false, "POST", "/fapi/v1/algoOrder") => NewAlgo,
        (false, "GET", "/fapi/v1/algoOrder") => QueryAlgo,
        (false, "DELETE", "/fapi/v1/algoOrder") => CancelAlgo,
        (false, "DELETE", "/fapi/v1/algoOpenOrders") => CancelAllAlgo,
        (false, "GET", "/fapi/v1/openAlgoOrders") => OpenAlgo,
        (false, "GET", "/fapi/v3/balance") => Balance,
        (false, "GET", "/fapi/v3/positionRisk") => PositionRisk,
        (false, "POST", "/fapi/v1/countdownCancelAll") => Countdown,
        (false, "POST" | "PUT" | "DELETE", "/fapi/v1/listenKey") => ListenKey,
        (true, "GET", "/api/v3/myTrades") | (false, "GET", "/fapi/v1/userTrades") => AccountTrades,
        _ => return None,
    })
}

/// The answer to a trading, account or time request; `None` for any other path.
pub(super) fn answer(ex: &mut Exchange, req: &HttpRequest, now_ms: i64) -> Option<Answer> {
    let route = route(ex.spot, req.method, req.path)?;
    ex.expire_countdowns(now_ms);
    Some(match serve(ex, route, req, now_ms) {
        Ok(body) => Answer {
            status: 200,
            body: body.to_string(),
        },
        Err(r) => Answer {
            status: r.status,
            body: json!({"code": r.code, "msg": r.msg}).to_string(),
        },
    })
}

/// The depth snapshot for `GET /api/v3/depth` (spot) or `GET /fapi/v1/depth` (USD-M); `None`
/// for any other request. The symbol must be the mock's; `limit` (spot 1..=5000, default 100;
/// USD-M one of 5, 10, 20, 50, 100, 500, 1000, default 500) cuts each side.
pub(super) fn depth_answer(
    depth: &MockDepth,
    spot: bool,
    symbol: &str,
    req: &HttpRequest,
    now_ms: i64,
) -> Option<Answer> {
    let path = if spot {
        "/api/v3/depth"
    } else {
        "/fapi/v1/depth"
    };
    if req.method != "GET" || req.path != path {
        return None;
    }
    let q = decode_query(req.raw_query);
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let refused = |r: Reject| Answer {
        status: r.status,
        body: json!({"code": r.code, "msg": r.msg}).to_string(),
    };
    match get("symbol") {
        None => return Some(refused(mandatory("symbol"))),
        Some(s) if s != symbol => return Some(refused(reject(-1121, "Invalid symbol."))),
        Some(_) => {}
    }
    let limit = match get("limit").map(str::parse::<usize>) {
        None => {
            if spot {
                100
            } else {
                500
            }
        }
        Some(Ok(n)) if spot && (1..=5000).contains(&n) => n,
        Some(Ok(n)) if !spot && [5, 10, 20, 50, 100, 500, 1000].contains(&n) => n,
        Some(_) => return Some(refused(illegal("limit"))),
    };
    let side = |levels: &[(String, String)]| -> Vec<Value> {
        levels
            .iter()
            .take(limit)
            .map(|(p, q)| json!([p, q]))
            .collect()
    };
    let mut body = json!({"lastUpdateId": depth.last_update_id, "bids": side(&depth.bids),
                          "asks": side(&depth.asks)});
    if !spot {
        body["E"] = json!(now_ms);
        body["T"] = json!(now_ms);
    }
    Some(Answer {
        status: 200,
        body: body.to_string(),
    })
}

fn serve(ex: &mut Exchange, route: Route, req: &HttpRequest, now: i64) -> Result<Value, Reject> {
    use Route::*;
    match route {
        Time => return Ok(json!({ "serverTime": now })),
        ExchangeInfo => return Ok(exchange_info(ex, now)),
        ListenKey => return listen_key(ex, req),
        _ => {}
    }
    let p = authenticate(ex, req, now)?;
    match route {
        NewOrder => new_order(ex, &p, false, now),
        NewAlgo => new_order(ex, &p, true, now),
        QueryOrder => {
            let idx = regular_ref(ex, &p, -2013, "Order does not exist.")?;
            Ok(order_json(ex, &ex.orders[idx]))
        }
        CancelOrder => {
            let idx = regular_ref(ex, &p, -2011, "Unknown order sent.")?;
            ex.cancel(idx, now)?;
            Ok(cancel_json(ex, idx, now))
        }
        QueryAlgo => {
            let idx = algo_ref(ex, &p, -2013, "Order does not exist.")?;
            Ok(algo_json(&ex.orders[idx]))
        }
        CancelAlgo => {
            let idx = algo_ref(ex, &p, -2011, "Unknown order sent.")?;
            ex.cancel(idx, now)?;
            let o = &ex.orders[idx];
            Ok(
                json!({"algoId": o.order_id, "clientAlgoId": o.client_order_id,
                      "code": "200", "msg": "success"}),
            )
        }
        CancelAll | CancelAllAlgo => cancel_all(ex, &p, route == CancelAllAlgo, now),
        OpenOrders | OpenAlgo => Ok(open_orders(ex, &p, route == OpenAlgo)),
        Account => Ok(spot_account(ex, now)),
        Balance => Ok(usdm_balance(ex, now)),
        PositionRisk => Ok(position_risk(ex, &p)),
        AccountTrades => account_trades(ex, &p),
        Countdown => {
            let symbol = p.req("symbol")?.to_string();
            ex.instrument(&symbol)?;
            let ms = p.int("countdownTime")?.unwrap_or(0).max(0) as u64;
            ex.set_countdown(&symbol, ms);
            Ok(json!({"symbol": symbol, "countdownTime": ms.to_string()}))
        }
        // Answered above, before authentication.
        Time | ExchangeInfo | ListenKey => Err(reject(
            -1000,
            "An unknown error occurred while processing the request.",
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Authentication

/// Hex HMAC-SHA256 built from SHA-256 by RFC 2104: key longer than the block is hashed, then
/// zero-padded; H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m)).
pub(super) fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(message)
        .finalize();
    let outer = Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

/// `raw` without its `signature=` pair (as sent, not decoded), and the signature decoded.
fn split_signature(raw: &str) -> (String, Option<String>) {
    let mut kept = Vec::new();
    let mut signature = None;
    for part in raw.split('&').filter(|p| !p.is_empty()) {
        match part.strip_prefix("signature=") {
            Some(sig) => signature = Some(percent_decode(sig)),
            None => kept.push(part),
        }
    }
    (kept.join("&"), signature)
}

fn unauthorized(code: i64, msg: &str) -> Reject {
    Reject {
        status: 401,
        code,
        msg: msg.into(),
    }
}

fn authenticate(ex: &Exchange, req: &HttpRequest, now_ms: i64) -> Result<Params, Reject> {
    let Some(key) = req.api_key.filter(|k| !k.is_empty()) else {
        return Err(unauthorized(-2014, "API-key format invalid."));
    };
    let Some(secret) = ex.secret_of(key) else {
        return Err(unauthorized(
            -2015,
            "Invalid API-key, IP, or permissions for action.",
        ));
    };
    let (query, query_sig) = split_signature(req.raw_query);
    let (body, body_sig) = split_signature(req.body);
    let mut pairs = decode_query(&query);
    pairs.extend(decode_query(&body));
    let params = Params(pairs);
    let Some(signature) = query_sig.or(body_sig).filter(|s| !s.is_empty()) else {
        return Err(mandatory("signature"));
    };
    let expected = hmac_sha256_hex(secret.as_bytes(), format!("{query}{body}").as_bytes());
    if !signature.eq_ignore_ascii_case(&expected) {
        return Err(reject(-1022, "Signature for this request is not valid."));
    }
    let timestamp = params
        .int("timestamp")?
        .ok_or_else(|| mandatory("timestamp"))?;
    let recv_window = params.int("recvWindow")?.unwrap_or(5000);
    if recv_window > 60_000 {
        return Err(reject(-1131, "recvWindow must be less than 60000"));
    }
    if timestamp >= now_ms + 1000 {
        return Err(reject(
            -1021,
            "Timestamp for this request was 1000ms ahead of the server's time.",
        ));
    }
    if now_ms - timestamp > recv_window {
        return Err(reject(
            -1021,
            "Timestamp for this request is outside of the recvWindow.",
        ));
    }
    Ok(params)
}

/// USD-M user-data stream keys (USER_STREAM: the API key header, no signature). One key per
/// account, derived from its API key: `POST` answers the active key, `PUT` extends it.
fn listen_key(ex: &Exchange, req: &HttpRequest) -> Result<Value, Reject> {
    let Some(key) = req.api_key.filter(|k| !k.is_empty()) else {
        return Err(unauthorized(-2014, "API-key format invalid."));
    };
    if ex.secret_of(key).is_none() {
        return Err(unauthorized(
            -2015,
            "Invalid API-key, IP, or permissions for action.",
        ));
    }
    if req.method == "DELETE" {
        return Ok(json!({}));
    }
    Ok(json!({ "listenKey": listen_key_of(key) }))
}

fn listen_key_of(api_key: &str) -> String {
    let digest = Sha256::digest(format!("listenKey:{api_key}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("mockListenKey{hex}")
}

impl super::MockVenue {
    /// Binance USD-M: the listen key `POST /fapi/v1/listenKey` gives the account of `api_key`.
    pub fn usdm_listen_key(&self, api_key: &str) -> String {
        listen_key_of(api_key)
    }
}

// ---------------------------------------------------------------------------------------------
// Parameters

struct Params(Vec<(String, String)>);

fn mandatory(name: &str) -> Reject {
    reject(
        -1102,
        format!("Mandatory parameter '{name}' was not sent, was empty/null, or malformed."),
    )
}

impl Params {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// USD-M algo cancel documents its parameters in lowercase (`algoid`, `clientalgoid`).
    fn get_any_case(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k.eq_ignore_ascii_case(key) && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    fn req(&self, key: &str) -> Result<&str, Reject> {
        self.get(key).ok_or_else(|| mandatory(key))
    }

    fn int(&self, key: &str) -> Result<Option<i64>, Reject> {
        self.get(key)
            .map(|v| v.parse::<i64>().map_err(|_| illegal(key)))
            .transpose()
    }

    fn decimal(&self, key: &str) -> Result<Option<Fixed>, Reject> {
        self.get(key)
            .map(|v| Fixed::parse_exact(v).map_err(|_| illegal(key)))
            .transpose()
    }
}

fn illegal(key: &str) -> Reject {
    reject(
        -1100,
        format!(
            "Illegal characters found in parameter '{key}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'."
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// Orders

fn new_order(ex: &mut Exchange, p: &Params, algo: bool, now: i64) -> Result<Value, Reject> {
    let order = parse_order(ex, p, algo)?;
    let idx = ex.place(order, now)?;
    let o = &ex.orders[idx];
    if algo {
        return Ok(algo_json(o));
    }
    if !ex.spot {
        return Ok(usdm_order_json(o));
    }
    let fills: Vec<Value> = ex
        .executions
        .iter()
        .filter(|e| e.execution_type == "TRADE" && e.order_id == o.order_id)
        .map(|e| {
            json!({
                "price": d8(e.last_price),
                "qty": d8(e.last_qty),
                "commission": d8(e.commission),
                "commissionAsset": e.commission_asset,
                "tradeId": e.trade_id,
            })
        })
        .collect();
    let mut v = spot_order_json(o);
    if let Some(m) = v.as_object_mut() {
        for key in ["time", "updateTime", "isWorking", "icebergQty"] {
            m.remove(key);
        }
        m.insert("transactTime".into(), json!(now));
        m.insert("fills".into(), Value::Array(fills));
    }
    Ok(v)
}

fn parse_side(p: &Params) -> Result<Side, Reject> {
    match p.req("side")? {
        "BUY" => Ok(Side::Buy),
        "SELL" => Ok(Side::Sell),
        _ => Err(reject(-1117, "Invalid side.")),
    }
}

/// The order type word → (kind, needs price, needs trigger, needs timeInForce).
fn order_kind(spot: bool, algo: bool, t: &str) -> Result<(OrderKind, bool, bool, bool), Reject> {
    let cond = |take_profit, limit| OrderKind::Conditional { take_profit, limit };
    let limit = OrderKind::Limit { post_only: false };
    Ok(match (spot, algo, t) {
        (_, false, "MARKET") => (OrderKind::Market, false, false, false),
        (_, false, "LIMIT") => (limit, true, false, true),
        (true, false, "LIMIT_MAKER") => (OrderKind::Limit { post_only: true }, true, false, false),
        (true, false, "STOP_LOSS") => (cond(false, false), false, true, false),
        (true, false, "STOP_LOSS_LIMIT") => (cond(false, true), true, true, true),
        (true, false, "TAKE_PROFIT") => (cond(true, false), false, true, false),
        (true, false, "TAKE_PROFIT_LIMIT") => (cond(true, true), true, true, true),
        (false, true, "STOP_MARKET") => (cond(false, false), false, true, false),
        (false, true, "STOP") => (cond(false, true), true, true, false),
        (false, true, "TAKE_PROFIT_MARKET") => (cond(true, false), false, true, false),
        (false, true, "TAKE_PROFIT") => (cond(true, true), true, true, false),
        (false, false, "STOP_MARKET" | "STOP" | "TAKE_PROFIT_MARKET" | "TAKE_PROFIT") => {
            return Err(reject(
                -4120,
                "Order type not supported for this endpoint. Please use the Algo Order API \
                 endpoints instead.",
            ));
        }
        _ => return Err(reject(-1116, "Invalid orderType.")),
    })
}

fn parse_order(ex: &Exchange, p: &Params, algo: bool) -> Result<NewOrder, Reject> {
    let spot = ex.spot;
    let symbol = p.req("symbol")?.to_string();
    ex.instrument(&symbol)?;
    if algo && p.get("algoType") != Some("CONDITIONAL") {
        return Err(mandatory("algoType"));
    }
    let side = parse_side(p)?;
    let order_type = p.req("type")?.to_string();
    let (mut kind, needs_price, needs_trigger, needs_tif) = order_kind(spot, algo, &order_type)?;
    let qty = p
        .decimal("quantity")?
        .ok_or_else(|| mandatory("quantity"))?;
    if qty.is_negative() || qty.is_zero() {
        return Err(reject(-4003, "Quantity less than or equal to zero."));
    }
    let price = p.decimal("price")?.unwrap_or(Fixed::ZERO);
    if needs_price && price.is_zero() {
        return Err(mandatory("price"));
    }
    let trigger_key = if algo { "triggerPrice" } else { "stopPrice" };
    let stop_price = p.decimal(trigger_key)?.unwrap_or(Fixed::ZERO);
    if needs_trigger && stop_price.is_zero() {
        return Err(mandatory(trigger_key));
    }
    let time_in_force = match p.get("timeInForce") {
        None if needs_tif => return Err(mandatory("timeInForce")),
        None => String::new(),
        Some(t @ ("GTC" | "IOC" | "FOK")) => t.to_string(),
        Some("GTX") if !spot => {
            kind = OrderKind::Limit { post_only: true };
            "GTX".to_string()
        }
        Some(_) => return Err(reject(-1115, "Invalid timeInForce.")),
    };
    let reduce_only = match p.get("reduceOnly") {
        None | Some("false") => false,
        Some("true") if !spot => true,
        Some(_) => {
            return Err(reject(
                -1106,
                "Parameter 'reduceOnly' sent when not required.",
            ));
        }
    };
    let id_key = if algo {
        "clientAlgoId"
    } else {
        "newClientOrderId"
    };
    let client_order_id = match p.get(id_key) {
        Some(id) => id.to_string(),
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

/// The regular order named by `origClientOrderId` or `orderId` on `symbol`.
fn regular_ref(ex: &Exchange, p: &Params, code: i64, msg: &str) -> Result<usize, Reject> {
    let symbol = p.req("symbol")?;
    ex.instrument(symbol)?;
    let found = match (p.get("origClientOrderId"), p.int("orderId")?) {
        (Some(c), _) => ex.find(Some(symbol), c, false),
        (None, Some(id)) => ex.find_id(Some(symbol), id as u64, false),
        (None, None) => {
            return Err(reject(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            ));
        }
    };
    found.ok_or_else(|| reject(code, msg))
}

/// The algo order named by `algoId` or `clientAlgoId` (any letter case).
fn algo_ref(ex: &Exchange, p: &Params, code: i64, msg: &str) -> Result<usize, Reject> {
    let by_id = p.get_any_case("algoId").and_then(|v| v.parse::<u64>().ok());
    let found = match (p.get_any_case("clientAlgoId"), by_id) {
        (Some(c), _) => ex.find(None, c, true),
        (None, Some(id)) => ex.find_id(None, id, true),
        (None, None) => return Err(mandatory("algoId")),
    };
    found.ok_or_else(|| reject(code, msg))
}

/// `GET /api/v3/myTrades`, `GET /fapi/v1/userTrades`: the account's trades on `symbol`,
/// ascending by trade id.
fn account_trades(ex: &Exchange, p: &Params) -> Result<Value, Reject> {
    let symbol = p.req("symbol")?;
    ex.instrument(symbol)?;
    let order_id = p.int("orderId")?;
    let from_id = p.int("fromId")?;
    let limit = match p.int("limit")?.unwrap_or(500) {
        n @ 1..=1000 => n as usize,
        _ => {
            return Err(reject(
                -1130,
                "Data sent for parameter 'limit' is not valid.",
            ));
        }
    };
    let trades: Vec<&MockExecution> = ex
        .executions
        .iter()
        .filter(|e| e.execution_type == "TRADE" && e.symbol == symbol)
        .filter(|e| order_id.is_none_or(|id| e.order_id as i64 == id))
        .filter(|e| {
            let id = e.trade_id.unwrap_or(0) as i64;
            from_id.is_none_or(|from| id >= from)
        })
        .collect();
    // From `fromId` on; without it the most recent ones.
    let skip = match from_id {
        Some(_) => 0,
        None => trades.len().saturating_sub(limit),
    };
    let rows = trades
        .into_iter()
        .skip(skip)
        .take(limit)
        .map(|e| {
            if ex.spot {
                spot_trade_json(e)
            } else {
                usdm_trade_json(e)
            }
        })
        .collect();
    Ok(Value::Array(rows))
}

/// A `GET /api/v3/myTrades` row.
fn spot_trade_json(e: &MockExecution) -> Value {
    let quote_qty = e.last_qty.checked_mul(e.last_price).unwrap_or(Fixed::ZERO);
    json!({
        "symbol": e.symbol,
        "id": e.trade_id.unwrap_or(0),
        "orderId": e.order_id,
        "orderListId": -1,
        "price": d8(e.last_price),
        "qty": d8(e.last_qty),
        "quoteQty": d8(quote_qty),
        "commission": d8(e.commission),
        "commissionAsset": e.commission_asset,
        "time": e.transaction_time_ms,
        "isBuyer": e.side == Side::Buy,
        "isMaker": e.is_maker,
        "isBestMatch": true,
    })
}

/// A `GET /fapi/v1/userTrades` row.
fn usdm_trade_json(e: &MockExecution) -> Value {
    let quote_qty = e.last_qty.checked_mul(e.last_price).unwrap_or(Fixed::ZERO);
    json!({
        "buyer": e.side == Side::Buy,
        "commission": e.commission.to_string(),
        "commissionAsset": e.commission_asset,
        "id": e.trade_id.unwrap_or(0),
        "maker": e.is_maker,
        "orderId": e.order_id,
        "price": e.last_price.to_string(),
        "qty": e.last_qty.to_string(),
        "quoteQty": quote_qty.to_string(),
        "realizedPnl": e.realized_pnl.to_string(),
        "side": side_word(e.side),
        "positionSide": "BOTH",
        "symbol": e.symbol,
        "time": e.transaction_time_ms,
    })
}

fn cancel_all(ex: &mut Exchange, p: &Params, algo: bool, now: i64) -> Result<Value, Reject> {
    let symbol = p.req("symbol")?.to_string();
    ex.instrument(&symbol)?;
    let canceled = ex.cancel_all(&symbol, Some(algo), now);
    if !ex.spot {
        return Ok(json!({"code": 200, "msg": "The operation of cancel all open order is done."}));
    }
    if canceled.is_empty() {
        return Err(reject(-2011, "Unknown order sent."));
    }
    Ok(Value::Array(
        canceled
            .into_iter()
            .map(|i| cancel_json(ex, i, now))
            .collect(),
    ))
}

fn open_orders(ex: &Exchange, p: &Params, algo: bool) -> Value {
    let symbol = p.get("symbol");
    let list = ex
        .orders
        .iter()
        .filter(|o| o.is_open() && o.algo == algo && symbol.is_none_or(|s| o.symbol == s))
        .map(|o| {
            if algo {
                algo_json(o)
            } else {
                order_json(ex, o)
            }
        })
        .collect();
    Value::Array(list)
}

// ---------------------------------------------------------------------------------------------
// JSON

/// Spot prints 8 decimals (`"0.00100000"`).
fn d8(x: Fixed) -> String {
    let sign = if x.is_negative() { "-" } else { "" };
    let abs = x.raw().unsigned_abs();
    let scale = Fixed::SCALE.unsigned_abs();
    format!("{sign}{}.{:08}", abs / scale, abs % scale)
}

fn side_word(side: Side) -> &'static str {
    match side {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    }
}

fn order_json(ex: &Exchange, o: &MockOrder) -> Value {
    if ex.spot {
        spot_order_json(o)
    } else {
        usdm_order_json(o)
    }
}

/// `GET /api/v3/order` shape.
fn spot_order_json(o: &MockOrder) -> Value {
    let tif = if o.time_in_force.is_empty() {
        "GTC"
    } else {
        o.time_in_force.as_str()
    };
    let working = !matches!(o.kind, OrderKind::Conditional { .. }) || o.triggered;
    json!({
        "symbol": o.symbol,
        "orderId": o.order_id,
        "orderListId": -1,
        "clientOrderId": o.client_order_id,
        "price": d8(o.price),
        "origQty": d8(o.qty),
        "executedQty": d8(o.executed_qty),
        "cummulativeQuoteQty": d8(o.cum_quote),
        "status": o.status,
        "timeInForce": tif,
        "type": o.order_type,
        "side": side_word(o.side),
        "stopPrice": d8(o.stop_price),
        "icebergQty": d8(Fixed::ZERO),
        "time": o.created_ms,
        "updateTime": o.updated_ms,
        "isWorking": working,
        "workingTime": if working { o.created_ms } else { -1 },
        "origQuoteOrderQty": d8(Fixed::ZERO),
        "selfTradePreventionMode": "NONE",
    })
}

/// `GET /fapi/v1/order` shape (also the `RESULT` placement answer).
fn usdm_order_json(o: &MockOrder) -> Value {
    let tif = if o.time_in_force.is_empty() {
        "GTC"
    } else {
        o.time_in_force.as_str()
    };
    json!({
        "orderId": o.order_id,
        "symbol": o.symbol,
        "status": o.status,
        "clientOrderId": o.client_order_id,
        "price": o.price.to_string(),
        "avgPrice": o.avg_price().to_string(),
        "origQty": o.qty.to_string(),
        "executedQty": o.executed_qty.to_string(),
        "cumQty": o.executed_qty.to_string(),
        "cumQuote": o.cum_quote.to_string(),
        "timeInForce": tif,
        "type": o.order_type,
        "reduceOnly": o.reduce_only,
        "closePosition": false,
        "side": side_word(o.side),
        "positionSide": "BOTH",
        "stopPrice": o.stop_price.to_string(),
        "workingType": "CONTRACT_PRICE",
        "priceProtect": false,
        "origType": o.order_type,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "goodTillDate": 0,
        "time": o.created_ms,
        "updateTime": o.updated_ms,
    })
}

/// An Algo Order API order (`POST/GET /fapi/v1/algoOrder`, `openAlgoOrders`).
fn algo_json(o: &MockOrder) -> Value {
    let tif = if o.time_in_force.is_empty() {
        "GTC"
    } else {
        o.time_in_force.as_str()
    };
    json!({
        "algoId": o.order_id,
        "clientAlgoId": o.client_order_id,
        "algoType": "CONDITIONAL",
        "orderType": o.order_type,
        "symbol": o.symbol,
        "side": side_word(o.side),
        "positionSide": "BOTH",
        "timeInForce": tif,
        "quantity": o.qty.to_string(),
        "algoStatus": o.status,
        "actualOrderId": o.actual_order_id.map(|id| id.to_string()).unwrap_or_default(),
        "executedQty": o.executed_qty.to_string(),
        "avgPrice": o.avg_price().to_string(),
        "triggerPrice": o.stop_price.to_string(),
        "price": o.price.to_string(),
        "icebergQuantity": null,
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "workingType": "CONTRACT_PRICE",
        "priceMatch": "NONE",
        "closePosition": false,
        "priceProtect": false,
        "reduceOnly": o.reduce_only,
        "createTime": o.created_ms,
        "updateTime": o.updated_ms,
        "triggerTime": if o.triggered { o.updated_ms } else { 0 },
        "goodTillDate": 0,
    })
}

/// The answer to a cancel: the order, with `origClientOrderId` and a fresh `clientOrderId`
/// naming the cancel request (spot), or the order itself (USD-M).
fn cancel_json(ex: &Exchange, idx: usize, now: i64) -> Value {
    let o = &ex.orders[idx];
    if !ex.spot {
        return usdm_order_json(o);
    }
    let mut v = spot_order_json(o);
    if let Some(m) = v.as_object_mut() {
        for key in [
            "time",
            "updateTime",
            "isWorking",
            "workingTime",
            "icebergQty",
        ] {
            m.remove(key);
        }
        m.insert("origClientOrderId".into(), json!(o.client_order_id));
        m.insert(
            "clientOrderId".into(),
            json!(format!("cancel{}", o.order_id)),
        );
        m.insert("transactTime".into(), json!(now));
    }
    v
}

fn spot_account(ex: &Exchange, now: i64) -> Value {
    let balances: Vec<Value> = ex
        .balances
        .iter()
        .map(|(asset, b)| json!({"asset": asset, "free": d8(b.free), "locked": d8(b.locked)}))
        .collect();
    json!({
        "makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
        "canTrade": true, "canWithdraw": true, "canDeposit": true, "brokered": false,
        "requireSelfTradePrevention": false, "preventSor": false,
        "updateTime": now, "accountType": "SPOT", "balances": balances,
        "permissions": ["SPOT"], "uid": 1,
    })
}

fn usdm_balance(ex: &Exchange, now: i64) -> Value {
    let list = ex
        .balances
        .iter()
        .map(|(asset, b)| {
            let available = ex.available(asset);
            json!({
                "accountAlias": "mock", "asset": asset,
                "balance": b.free.to_string(), "crossWalletBalance": b.free.to_string(),
                "crossUnPnl": unrealized(ex, asset).to_string(),
                "availableBalance": available.to_string(),
                "maxWithdrawAmount": available.to_string(),
                "marginAvailable": true, "updateTime": now,
            })
        })
        .collect();
    Value::Array(list)
}

fn unrealized(ex: &Exchange, asset: &str) -> Fixed {
    let mut total = Fixed::ZERO;
    for (symbol, p) in &ex.positions {
        if let Some(inst) = ex.instruments.get(symbol).filter(|i| i.quote == asset) {
            total += (inst.price - p.entry_price)
                .checked_mul(p.qty)
                .unwrap_or(Fixed::ZERO);
        }
    }
    total
}

/// v3 lists only symbols with a position.
fn position_risk(ex: &Exchange, p: &Params) -> Value {
    let symbol = p.get("symbol");
    let list = ex
        .positions
        .iter()
        .filter(|(s, pos)| !pos.qty.is_zero() && symbol.is_none_or(|x| x == s.as_str()))
        .filter_map(|(s, pos)| {
            let inst = ex.instruments.get(s)?;
            let notional = inst.price.checked_mul(pos.qty).unwrap_or(Fixed::ZERO);
            let upnl = (inst.price - pos.entry_price)
                .checked_mul(pos.qty)
                .unwrap_or(Fixed::ZERO);
            let margin = notional
                .abs()
                .checked_div(ex.leverage)
                .unwrap_or(Fixed::ZERO);
            Some(json!({
                "symbol": s, "positionSide": "BOTH",
                "positionAmt": pos.qty.to_string(), "entryPrice": pos.entry_price.to_string(),
                "breakEvenPrice": pos.entry_price.to_string(), "markPrice": inst.price.to_string(),
                "unRealizedProfit": upnl.to_string(), "liquidationPrice": "0",
                "isolatedMargin": "0", "notional": notional.to_string(),
                "marginAsset": inst.quote, "isolatedWallet": "0",
                "initialMargin": margin.to_string(), "maintMargin": "0",
                "positionInitialMargin": margin.to_string(), "openOrderInitialMargin": "0",
                "adl": 0, "bidNotional": "0", "askNotional": "0", "updateTime": pos.updated_ms,
            }))
        })
        .collect();
    Value::Array(list)
}

fn exchange_info(ex: &Exchange, now: i64) -> Value {
    let symbols: Vec<Value> = ex
        .instruments
        .values()
        .map(|i| {
            let notional = if ex.spot {
                json!({"filterType": "NOTIONAL", "minNotional": d8(i.min_notional),
                       "applyMinToMarket": true, "maxNotional": "9000000.00000000",
                       "applyMaxToMarket": false, "avgPriceMins": 5})
            } else {
                json!({"filterType": "MIN_NOTIONAL", "notional": i.min_notional.to_string()})
            };
            json!({
                "symbol": i.symbol, "status": "TRADING", "contractStatus": "TRADING",
                "baseAsset": i.base, "quoteAsset": i.quote,
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": i.tick_size.to_string(),
                     "maxPrice": "1000000", "tickSize": i.tick_size.to_string()},
                    {"filterType": "LOT_SIZE", "minQty": i.min_qty.to_string(),
                     "maxQty": i.max_qty.to_string(), "stepSize": i.step_size.to_string()},
                    notional,
                ],
            })
        })
        .collect();
    json!({"timezone": "UTC", "serverTime": now, "rateLimits": [], "exchangeFilters": [],
           "symbols": symbols})
}
