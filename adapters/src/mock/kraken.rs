//! The mock's Kraken spot dialect (`POST /0/private/*`), written from Kraken's REST
//! documentation and independent of the codec and of `crate::sign`, which the tests check
//! against it.
//!
//! - Every private call is a form body with a `nonce`, authenticated in this order: the
//!   `API-Key` header must name a key of the mock (`EAPI:Invalid key`); `API-Sign` must be
//!   base64(HMAC-SHA512(base64-decoded secret, path + SHA-256(nonce + body))), computed here
//!   from SHA-512 and SHA-256 by RFC 2104 (`EAPI:Invalid signature`); the nonce must be larger
//!   than the last one the key used (`EAPI:Invalid nonce`). Kraken answers with HTTP 200 and
//!   `{"error":["E..."]}`, success with `{"error":[],"result":{..}}`.
//! - `AddOrder` (market, limit with `oflags=post` and `timeinforce=IOC`, stop-loss,
//!   take-profit and their `-limit` forms with `price2`; `cl_ord_id`, `userref`) places on the
//!   venue-neutral [`super::exchange`] and answers `descr` and `txid`. `QueryOrders` (by txid),
//!   `OpenOrders` and `ClosedOrders` (filtered by `cl_ord_id` or `userref`), `CancelOrder` (by
//!   txid, userref or `cl_ord_id`), `CancelAll` (every pair), `Balance`, `BalanceEx` (under
//!   Kraken's asset names, `ZUSD`, `XXBT`), `CancelAllOrdersAfter` (every countdown recorded;
//!   when it runs out every open order is canceled; 0 disarms) and `GetWebSocketsToken`.
//! - Trades, from the exchange's recorded executions: `QueryOrders`, `OpenOrders` and
//!   `ClosedOrders` with `trades=true` list an order's trade txids (`trades`, in execution
//!   order); `QueryTrades` (`txid`: at most 20 trade txids, comma-separated) describes them
//!   (`ordertxid`, `pair`, `time`, `type`, `ordertype`, `price`, `cost`, `fee`, `vol`, `margin`,
//!   `misc`, `trade_id`, `maker`); an unknown trade txid is `EGeneral:Invalid arguments:txid`.
//! - Refusals use Kraken's strings: `EQuery:Unknown asset pair`, `EGeneral:Invalid
//!   arguments:<field>`, `EOrder:Order minimum not met`, `EOrder:Cost minimum not met`,
//!   `EOrder:Tick size check failed`, `EOrder:Insufficient funds`, `EOrder:Post only order`,
//!   `EOrder:Unknown order`; a `cl_ord_id` already open is `EOrder:Duplicate order` (the one
//!   string here not found in Kraken's published list).
//! - Fees: the exchange charges them as the Binance spot mock does (from what the order
//!   receives); `fee` in an order and in a trade is that charge in the quote asset, as Kraken
//!   states fees (a charge in the base asset is valued at the trade's price).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use keel_engine::event::Side;
use keel_engine::fixed::Fixed;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256, Sha512};

use super::exchange::{Exchange, MockExecution, MockOrder, NewOrder, OrderKind, Reject};
use super::venues::Answer;
use super::{MockVenue, decode_query, lock};

/// What the mock remembers of the Kraken account besides the exchange.
#[derive(Default)]
pub(super) struct KrakenState {
    /// The last nonce each key used.
    last_nonce: BTreeMap<String, u64>,
    /// Every `CancelAllOrdersAfter` timeout accepted, in seconds, in order.
    countdowns: Vec<u64>,
    /// WebSocket tokens issued, in order.
    tokens: Vec<String>,
    /// `userref` of the orders that had one, by order id.
    userrefs: BTreeMap<u64, i64>,
}

/// What the dialect needs of one HTTP request.
pub(super) struct HttpRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub body: &'a str,
    pub api_key: Option<&'a str>,
    pub api_sign: Option<&'a str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    AddOrder,
    QueryOrders,
    OpenOrders,
    ClosedOrders,
    CancelOrder,
    CancelAll,
    Balance,
    BalanceEx,
    CancelAllOrdersAfter,
    GetWebSocketsToken,
    QueryTrades,
}

fn route(path: &str) -> Option<Route> {
    use Route::*;
    Some(match path.strip_prefix("/0/private/")? {
        "AddOrder" => AddOrder,
        "QueryOrders" => QueryOrders,
        "OpenOrders" => OpenOrders,
        "ClosedOrders" => ClosedOrders,
        "CancelOrder" => CancelOrder,
        "CancelAll" => CancelAll,
        "Balance" => Balance,
        "BalanceEx" => BalanceEx,
        "CancelAllOrdersAfter" => CancelAllOrdersAfter,
        "GetWebSocketsToken" => GetWebSocketsToken,
        "QueryTrades" => QueryTrades,
        _ => return None,
    })
}

/// The answer to a private call; `None` for any other path (public ones are elsewhere).
pub(super) fn answer(
    ex: &mut Exchange,
    st: &mut KrakenState,
    req: &HttpRequest,
    now_ms: i64,
) -> Option<Answer> {
    let route = route(req.path).filter(|_| req.method == "POST")?;
    ex.expire_countdowns(now_ms);
    let envelope = match authenticate(ex, st, req).and_then(|p| serve(ex, st, route, &p, now_ms)) {
        Ok(result) => json!({"error": [], "result": result}),
        Err(error) => json!({ "error": [error] }),
    };
    Some(Answer {
        status: 200,
        body: envelope.to_string(),
    })
}

fn serve(
    ex: &mut Exchange,
    st: &mut KrakenState,
    route: Route,
    p: &Params,
    now: i64,
) -> Result<Value, String> {
    match route {
        Route::AddOrder => add_order(ex, st, p, now),
        Route::QueryOrders => query_orders(ex, st, p),
        Route::OpenOrders => Ok(json!({ "open": listed(ex, st, p, true)?.0 })),
        Route::ClosedOrders => {
            let (closed, count) = listed(ex, st, p, false)?;
            Ok(json!({"closed": closed, "count": count}))
        }
        Route::CancelOrder => cancel_order(ex, st, p, now),
        Route::CancelAll => {
            let symbols: Vec<String> = ex.instruments.keys().cloned().collect();
            let count: usize = symbols
                .iter()
                .map(|s| ex.cancel_all(s, None, now).len())
                .sum();
            Ok(json!({ "count": count }))
        }
        Route::Balance => Ok(balances(ex, false)),
        Route::BalanceEx => Ok(balances(ex, true)),
        Route::CancelAllOrdersAfter => cancel_all_orders_after(ex, st, p, now),
        Route::QueryTrades => query_trades(ex, p),
        Route::GetWebSocketsToken => {
            let token = format!(
                "mockKrakenWsToken{:04}Dn6h4TAMorh26QbcMeST2B5tamfe",
                st.tokens.len()
            );
            st.tokens.push(token.clone());
            Ok(json!({"token": token, "expires": 900}))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Authentication

/// HMAC-SHA512 built from SHA-512 by RFC 2104 (block 128 bytes): a longer key is hashed, then
/// zero-padded; H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m)).
fn hmac_sha512(key: &[u8], message: &[u8]) -> Vec<u8> {
    const BLOCK: usize = 128;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..64].copy_from_slice(&Sha512::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha512::new()
        .chain_update(&ipad)
        .chain_update(message)
        .finalize();
    Sha512::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// `API-Sign` as Kraken computes it: over the URI path and SHA-256 of the nonce text followed
/// by the body exactly as received.
fn expected_sign(secret_b64: &str, path: &str, nonce: &str, body: &str) -> Option<String> {
    let key = BASE64.decode(secret_b64.trim()).ok()?;
    let digest = Sha256::new()
        .chain_update(nonce.as_bytes())
        .chain_update(body.as_bytes())
        .finalize();
    let mut message = path.as_bytes().to_vec();
    message.extend_from_slice(&digest);
    Some(BASE64.encode(hmac_sha512(&key, &message)))
}

fn authenticate(ex: &Exchange, st: &mut KrakenState, req: &HttpRequest) -> Result<Params, String> {
    let invalid_key = || "EAPI:Invalid key".to_string();
    let key = req
        .api_key
        .filter(|k| !k.is_empty())
        .ok_or_else(invalid_key)?;
    let secret = ex.secret_of(key).ok_or_else(invalid_key)?;
    let params = Params(decode_query(req.body));
    let invalid_nonce = || "EAPI:Invalid nonce".to_string();
    let nonce_text = params.get("nonce").ok_or_else(invalid_nonce)?;
    let nonce: u64 = nonce_text.parse().map_err(|_| invalid_nonce())?;
    // A mock key whose secret is not base64 cannot sign anything.
    let expected = expected_sign(secret, req.path, nonce_text, req.body).ok_or_else(invalid_key)?;
    if req.api_sign != Some(expected.as_str()) {
        return Err("EAPI:Invalid signature".into());
    }
    if st.last_nonce.get(key).is_some_and(|last| nonce <= *last) {
        return Err(invalid_nonce());
    }
    st.last_nonce.insert(key.to_string(), nonce);
    Ok(params)
}

// ---------------------------------------------------------------------------------------------
// Parameters

struct Params(Vec<(String, String)>);

fn invalid(field: &str) -> String {
    format!("EGeneral:Invalid arguments:{field}")
}

impl Params {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    fn req(&self, key: &str) -> Result<&str, String> {
        self.get(key).ok_or_else(|| invalid(key))
    }

    fn decimal(&self, key: &str) -> Result<Option<Fixed>, String> {
        self.get(key)
            .map(|v| Fixed::parse_exact(v).map_err(|_| invalid(key)))
            .transpose()
    }

    fn int(&self, key: &str) -> Result<Option<i64>, String> {
        self.get(key)
            .map(|v| v.parse::<i64>().map_err(|_| invalid(key)))
            .transpose()
    }
}

// ---------------------------------------------------------------------------------------------
// Orders

/// Kraken's order ids look like `OQCLML-BW3P3-BUCMWZ`; the mock's carry the order number.
fn txid(order_id: u64) -> String {
    format!(
        "OMOCKK-{:05}-{:06}",
        order_id / 1_000_000 % 100_000,
        order_id % 1_000_000
    )
}

/// The venue-neutral exchange's refusal in Kraken's words.
fn kraken_reject(r: &Reject) -> String {
    let msg = r.msg.as_str();
    match r.code {
        -1121 => "EQuery:Unknown asset pair".into(),
        -2011 | -2013 => "EOrder:Unknown order".into(),
        -1013 if msg.contains("PRICE_FILTER") => "EOrder:Tick size check failed".into(),
        -1013 if msg.contains("NOTIONAL") => "EOrder:Cost minimum not met".into(),
        -1013 => invalid("volume"),
        -2010 if msg.starts_with("Duplicate") => "EOrder:Duplicate order".into(),
        -2010 if msg.contains("insufficient balance") => "EOrder:Insufficient funds".into(),
        -2010 if msg.contains("match and take") => "EOrder:Post only order".into(),
        -2010 if msg.contains("trigger") => invalid("price"),
        _ => invalid(msg),
    }
}

/// The order type word → (kind, trigger in `price`, limit in `price2`).
fn order_kind(ordertype: &str, post_only: bool) -> Result<(OrderKind, bool, bool), String> {
    let cond = |take_profit, limit| OrderKind::Conditional { take_profit, limit };
    Ok(match ordertype {
        "market" => (OrderKind::Market, false, false),
        "limit" => (OrderKind::Limit { post_only }, false, false),
        "stop-loss" => (cond(false, false), true, false),
        "take-profit" => (cond(true, false), true, false),
        "stop-loss-limit" => (cond(false, true), true, true),
        "take-profit-limit" => (cond(true, true), true, true),
        _ => return Err(invalid("ordertype")),
    })
}

fn parse_order(ex: &Exchange, p: &Params) -> Result<NewOrder, String> {
    let pair = p.req("pair")?;
    let inst = ex
        .instruments
        .get(pair)
        .ok_or_else(|| "EQuery:Unknown asset pair".to_string())?;
    let side = match p.req("type")? {
        "buy" => Side::Buy,
        "sell" => Side::Sell,
        _ => return Err(invalid("type")),
    };
    let ordertype = p.req("ordertype")?;
    let post_only = p
        .get("oflags")
        .is_some_and(|f| f.split(',').any(|f| f == "post"));
    let (kind, triggered, limited) = order_kind(ordertype, post_only)?;
    if post_only && !matches!(kind, OrderKind::Limit { .. }) {
        return Err(invalid("oflags"));
    }
    let qty = p.decimal("volume")?.ok_or_else(|| invalid("volume"))?;
    if qty <= Fixed::ZERO {
        return Err(invalid("volume"));
    }
    if qty < inst.min_qty {
        return Err("EOrder:Order minimum not met".into());
    }
    let price = p.decimal("price")?.unwrap_or(Fixed::ZERO);
    let price2 = p.decimal("price2")?.unwrap_or(Fixed::ZERO);
    let needs_price = kind != OrderKind::Market;
    if (needs_price && price <= Fixed::ZERO) || (limited && price2 <= Fixed::ZERO) {
        return Err(invalid(if limited { "price2" } else { "price" }));
    }
    // Stops carry the trigger in `price` and their limit in `price2`.
    let (limit_price, stop_price) = match (triggered, limited) {
        (true, true) => (price2, price),
        (true, false) => (Fixed::ZERO, price),
        (false, _) => (price, Fixed::ZERO),
    };
    let time_in_force = match p.get("timeinforce") {
        None | Some("GTC") => String::new(),
        Some("IOC") if matches!(kind, OrderKind::Limit { .. }) => "IOC".into(),
        Some(_) => return Err(invalid("timeinforce")),
    };
    if p.get("reduce_only") == Some("true") {
        // Only margin orders reduce a position; the mock account trades spot.
        return Err(invalid("reduce_only"));
    }
    let client_order_id = match p.get("cl_ord_id") {
        Some(id) if id.len() > 36 => return Err(invalid("cl_ord_id")),
        Some(id) => id.to_string(),
        None => format!("kraken-mock-{}", ex.orders.len() + 1),
    };
    Ok(NewOrder {
        symbol: pair.to_string(),
        client_order_id,
        side,
        order_type: ordertype.to_string(),
        kind,
        time_in_force,
        price: limit_price,
        stop_price,
        qty,
        reduce_only: false,
        algo: false,
    })
}

fn add_order(
    ex: &mut Exchange,
    st: &mut KrakenState,
    p: &Params,
    now: i64,
) -> Result<Value, String> {
    let userref = p.int("userref")?;
    let order = parse_order(ex, p)?;
    let idx = ex.place(order, now).map_err(|r| kraken_reject(&r))?;
    let o = &ex.orders[idx];
    if let Some(userref) = userref {
        st.userrefs.insert(o.order_id, userref);
    }
    Ok(json!({
        "descr": { "order": description(o) },
        "txid": [txid(o.order_id)],
    }))
}

/// Kraken's one-line description: `buy 1.25000000 XBTUSD @ limit 27500.0`.
fn description(o: &MockOrder) -> String {
    let side = side_word(o.side);
    let at = match o.kind {
        OrderKind::Market => "market".to_string(),
        OrderKind::Limit { .. } => format!("limit {}", o.price),
        OrderKind::Conditional { limit: true, .. } => {
            format!("{} {} -> limit {}", o.order_type, o.stop_price, o.price)
        }
        OrderKind::Conditional { .. } => format!("{} {}", o.order_type, o.stop_price),
    };
    format!("{side} {} {} @ {at}", o.qty, o.symbol)
}

fn side_word(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

fn status_word(status: &str) -> &'static str {
    match status {
        "FILLED" | "FINISHED" => "closed",
        "CANCELED" => "canceled",
        "EXPIRED" => "expired",
        _ => "open",
    }
}

/// Seconds with the fraction, as Kraken writes times (`1688666559.8974`).
fn secs(ms: i64) -> Value {
    json!(ms as f64 / 1000.0)
}

/// The fee the exchange charged for one trade, in the quote asset.
fn trade_fee_in_quote(ex: &Exchange, e: &MockExecution) -> Fixed {
    let quote = ex.instruments.get(&e.symbol).map(|i| i.quote.as_str());
    if Some(e.commission_asset.as_str()) == quote {
        e.commission
    } else {
        e.commission
            .checked_mul(e.last_price)
            .unwrap_or(Fixed::ZERO)
    }
}

/// The fee the exchange charged the order, in the quote asset.
fn fee_in_quote(ex: &Exchange, o: &MockOrder) -> Fixed {
    trades_of(ex, o)
        .map(|e| trade_fee_in_quote(ex, e))
        .fold(Fixed::ZERO, |a, b| a + b)
}

/// The order's trades, in execution order.
fn trades_of<'a>(ex: &'a Exchange, o: &MockOrder) -> impl Iterator<Item = &'a MockExecution> {
    let order_id = o.order_id;
    ex.executions
        .iter()
        .filter(move |e| e.execution_type == "TRADE" && e.order_id == order_id)
}

/// Kraken's trade ids look like `TCWJEG-FL4SZ-3FKGH6`; the mock's carry the trade number.
fn trade_txid(trade_id: u64) -> String {
    format!(
        "TMOCKK-{:05}-{:06}",
        trade_id / 1_000_000 % 100_000,
        trade_id % 1_000_000
    )
}

/// `QueryTrades`: the trades named by `txid`, keyed by it.
fn query_trades(ex: &Exchange, p: &Params) -> Result<Value, String> {
    let ids: Vec<&str> = p.req("txid")?.split(',').map(str::trim).collect();
    if ids.len() > 20 {
        return Err(invalid("txid"));
    }
    let mut map = Map::new();
    for id in ids {
        let e = ex
            .executions
            .iter()
            .find(|e| {
                e.execution_type == "TRADE" && e.trade_id.map(trade_txid).as_deref() == Some(id)
            })
            .ok_or_else(|| invalid("txid"))?;
        let cost = e.last_qty.checked_mul(e.last_price).unwrap_or(Fixed::ZERO);
        let info = json!({
            "ordertxid": txid(e.order_id),
            "postxid": "",
            "pair": e.symbol,
            "time": secs(e.transaction_time_ms),
            "type": side_word(e.side),
            "ordertype": e.order_type,
            "price": e.last_price.to_string(),
            "cost": cost.to_string(),
            "fee": trade_fee_in_quote(ex, e).to_string(),
            "vol": e.last_qty.to_string(),
            "margin": "0.00000",
            "misc": "",
            "trade_id": e.trade_id.unwrap_or(0),
            "maker": e.is_maker,
        });
        map.insert(id.to_string(), info);
    }
    Ok(Value::Object(map))
}

/// One order as `OpenOrders`, `ClosedOrders` and `QueryOrders` describe it; with `trades`,
/// the txids of its trades too (when it has any).
fn order_json(ex: &Exchange, st: &KrakenState, o: &MockOrder, trades: bool) -> Value {
    let status = status_word(&o.status);
    let (descr_price, descr_price2) = match o.kind {
        OrderKind::Conditional { limit: true, .. } => (o.stop_price, o.price),
        OrderKind::Conditional { .. } => (o.stop_price, Fixed::ZERO),
        _ => (o.price, Fixed::ZERO),
    };
    let mut oflags = "fciq".to_string();
    if o.kind == (OrderKind::Limit { post_only: true }) {
        oflags.push_str(",post");
    }
    let mut v = json!({
        "refid": null,
        "userref": st.userrefs.get(&o.order_id).copied().unwrap_or(0),
        "cl_ord_id": o.client_order_id,
        "status": status,
        "opentm": secs(o.created_ms),
        "starttm": 0,
        "expiretm": 0,
        "descr": {
            "pair": o.symbol,
            "type": side_word(o.side),
            "ordertype": o.order_type,
            "price": descr_price.to_string(),
            "price2": descr_price2.to_string(),
            "leverage": "none",
            "order": description(o),
            "close": "",
        },
        "vol": o.qty.to_string(),
        "vol_exec": o.executed_qty.to_string(),
        "cost": o.cum_quote.to_string(),
        "fee": fee_in_quote(ex, o).to_string(),
        "price": o.avg_price().to_string(),
        "stopprice": o.stop_price.to_string(),
        "limitprice": o.price.to_string(),
        "misc": "",
        "oflags": oflags,
    });
    let trade_ids: Vec<String> = trades_of(ex, o)
        .filter_map(|e| e.trade_id.map(trade_txid))
        .collect();
    if trades
        && !trade_ids.is_empty()
        && let Some(m) = v.as_object_mut()
    {
        m.insert("trades".into(), json!(trade_ids));
    }
    if status != "open"
        && let Some(m) = v.as_object_mut()
    {
        m.insert("closetm".into(), secs(o.updated_ms));
        let reason = match status {
            "canceled" => json!("User requested"),
            _ => Value::Null,
        };
        m.insert("reason".into(), reason);
    }
    v
}

/// Open (or closed) orders matching the `cl_ord_id` and `userref` filters, by txid, and how
/// many matched; of the closed ones the 50 most recent, as Kraken pages them.
fn listed(
    ex: &Exchange,
    st: &KrakenState,
    p: &Params,
    open: bool,
) -> Result<(Value, usize), String> {
    let cl_ord_id = p.get("cl_ord_id");
    let userref = p.int("userref")?;
    let trades = wants_trades(p)?;
    let mut chosen: Vec<&MockOrder> = ex
        .orders
        .iter()
        .filter(|o| !o.algo && o.is_open() == open)
        .filter(|o| cl_ord_id.is_none_or(|c| o.client_order_id == c))
        .filter(|o| userref.is_none_or(|u| st.userrefs.get(&o.order_id) == Some(&u)))
        .collect();
    let count = chosen.len();
    if !open {
        chosen.sort_by_key(|o| std::cmp::Reverse(o.updated_ms));
        chosen.truncate(50);
    }
    let map: Map<String, Value> = chosen
        .into_iter()
        .map(|o| (txid(o.order_id), order_json(ex, st, o, trades)))
        .collect();
    Ok((Value::Object(map), count))
}

/// The `trades` flag of the order calls (`true`/`false`, default false).
fn wants_trades(p: &Params) -> Result<bool, String> {
    match p.get("trades") {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(invalid("trades")),
    }
}

fn query_orders(ex: &Exchange, st: &KrakenState, p: &Params) -> Result<Value, String> {
    let ids: Vec<&str> = p.req("txid")?.split(',').map(str::trim).collect();
    if ids.len() > 50 {
        return Err(invalid("txid"));
    }
    let userref = p.int("userref")?;
    let trades = wants_trades(p)?;
    let mut map = Map::new();
    for id in ids {
        let o = ex
            .orders
            .iter()
            .find(|o| !o.algo && txid(o.order_id) == id)
            .ok_or_else(|| "EOrder:Unknown order".to_string())?;
        if userref.is_none_or(|u| st.userrefs.get(&o.order_id) == Some(&u)) {
            map.insert(id.to_string(), order_json(ex, st, o, trades));
        }
    }
    Ok(Value::Object(map))
}

/// `CancelOrder`: `txid` is a txid or a userref (every open order carrying it); `cl_ord_id`
/// names the latest order with that id.
fn cancel_order(
    ex: &mut Exchange,
    st: &KrakenState,
    p: &Params,
    now: i64,
) -> Result<Value, String> {
    let unknown = || "EOrder:Unknown order".to_string();
    let targets: Vec<usize> = match (p.get("cl_ord_id"), p.get("txid")) {
        (Some(c), _) => ex.find(None, c, false).into_iter().collect(),
        (None, Some(t)) => match ex.orders.iter().position(|o| txid(o.order_id) == t) {
            Some(idx) => vec![idx],
            None => {
                let userref: i64 = t.parse().map_err(|_| unknown())?;
                (0..ex.orders.len())
                    .filter(|&i| {
                        let o = &ex.orders[i];
                        o.is_open() && st.userrefs.get(&o.order_id) == Some(&userref)
                    })
                    .collect()
            }
        },
        (None, None) => return Err(invalid("txid")),
    };
    let open: Vec<usize> = targets
        .into_iter()
        .filter(|&i| ex.orders[i].is_open())
        .collect();
    if open.is_empty() {
        return Err(unknown());
    }
    for &idx in &open {
        ex.cancel(idx, now).map_err(|r| kraken_reject(&r))?;
    }
    Ok(json!({ "count": open.len() }))
}

/// Kraken's names of the assets that have legacy X/Z prefixes.
fn asset_name(asset: &str) -> String {
    match asset {
        "XBT" | "ETH" | "LTC" | "XRP" | "XLM" | "ETC" | "XMR" | "ZEC" | "MLN" | "REP" => {
            format!("X{asset}")
        }
        "USD" | "EUR" | "GBP" | "JPY" | "CAD" => format!("Z{asset}"),
        other => other.to_string(),
    }
}

/// `Balance`: totals; `BalanceEx`: totals and what orders hold.
fn balances(ex: &Exchange, extended: bool) -> Value {
    let map: Map<String, Value> = ex
        .balances
        .iter()
        .map(|(asset, b)| {
            let total = (b.free + b.locked).to_string();
            let v = if extended {
                json!({"balance": total, "hold_trade": b.locked.to_string()})
            } else {
                json!(total)
            };
            (asset_name(asset), v)
        })
        .collect();
    Value::Object(map)
}

/// RFC 3339 in whole seconds, as Kraken writes the switch's times.
fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (year, month, day) = crate::civil::civil_from_days(secs.div_euclid(86_400));
    let tod = secs.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

/// The dead-man switch: every pair's countdown set (or with 0 cleared) at once.
fn cancel_all_orders_after(
    ex: &mut Exchange,
    st: &mut KrakenState,
    p: &Params,
    now: i64,
) -> Result<Value, String> {
    let timeout = p.int("timeout")?.ok_or_else(|| invalid("timeout"))?;
    let timeout = u64::try_from(timeout)
        .ok()
        .filter(|t| *t < 86_400)
        .ok_or_else(|| invalid("timeout"))?;
    st.countdowns.push(timeout);
    let symbols: Vec<String> = ex.instruments.keys().cloned().collect();
    for symbol in &symbols {
        ex.set_countdown(symbol, timeout * 1000);
    }
    let trigger = if timeout == 0 {
        "0".to_string()
    } else {
        rfc3339(now + timeout as i64 * 1000)
    };
    Ok(json!({"currentTime": rfc3339(now), "triggerTime": trigger}))
}

impl MockVenue {
    /// Kraken: every `CancelAllOrdersAfter` timeout accepted, in seconds, in order (0 disarms).
    pub fn kraken_countdowns(&self) -> Vec<u64> {
        lock(&self.shared.kraken).countdowns.clone()
    }

    /// Kraken: the WebSocket tokens `GetWebSocketsToken` issued, in order.
    pub fn kraken_ws_tokens(&self) -> Vec<String> {
        lock(&self.shared.kraken).tokens.clone()
    }

    /// Kraken: the last nonce `api_key` used.
    pub fn kraken_last_nonce(&self, api_key: &str) -> Option<u64> {
        lock(&self.shared.kraken).last_nonce.get(api_key).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha512_matches_rfc_4231_case_2() {
        let mac = hmac_sha512(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
             9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
    }

    #[test]
    fn api_sign_matches_krakens_published_example() {
        // Kraken's documentation example (the same vector tests/signing.rs feeds sign.rs).
        let secret = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg==";
        let body =
            "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25";
        assert_eq!(
            expected_sign(secret, "/0/private/AddOrder", "1616492376594", body).as_deref(),
            Some(
                "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
            )
        );
    }

    #[test]
    fn switch_times_are_rfc3339_seconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_679_679_716_999), "2023-03-24T17:41:56Z");
    }
}
