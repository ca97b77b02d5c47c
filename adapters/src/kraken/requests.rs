//! Kraken spot request builders: pure functions from keel intents to `RestRequest`s (form-encoded
//! bodies for private endpoints) and WebSocket v2 frames.
//!
//! Private REST calls take the `nonce` as an argument: it must increase with every call of an
//! API key (ms since the epoch works), and it is inside the body the signature covers
//! (HMAC-SHA512 over path + SHA256(nonce + body)), so the body is only final with it.
//!
//! Weights follow Kraken's REST counter: most calls cost 1, history calls 2. AddOrder and
//! CancelOrder do not count there (they have a per-pair trading limiter), so their weight is 0.

use crate::json::{Obj, json_string};
use keel_engine::candle::Interval;
use keel_engine::fixed::Fixed;

use crate::model::{Method, OrderSpec, OrderSpecKind, RestRequest, TimeInForce};

/// REST base URL.
pub const REST_URL: &str = "https://api.kraken.com";
/// WebSocket v2, public market data.
pub const WS_PUBLIC_URL: &str = "wss://ws.kraken.com/v2";
/// WebSocket v2, authenticated (executions, balances, order methods; needs a token).
pub const WS_PRIVATE_URL: &str = "wss://ws-auth.kraken.com/v2";

/// Why a keel intent cannot be expressed as a Kraken request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode kraken {what}: {detail}")]
pub struct EncodeError {
    /// The request field or request kind.
    pub what: String,
    /// Why it cannot be encoded.
    pub detail: String,
}

fn enc_err(what: &str, detail: impl Into<String>) -> EncodeError {
    EncodeError {
        what: what.to_string(),
        detail: detail.into(),
    }
}

/// An order by client id (`cl_ord_id`) or Kraken id (`txid` / `order_id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderRef<'a> {
    /// keel's client order id (`cl_ord_id`).
    Client(&'a str),
    /// Kraken's order id (`txid` / `order_id`).
    Venue(&'a str),
}

/// `application/x-www-form-urlencoded` value encoding (RFC 3986 unreserved kept).
fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn form(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn private(
    path: &str,
    nonce: u64,
    params: &[(&str, String)],
    weight: u32,
    retry_safe: bool,
) -> RestRequest {
    let mut all = vec![("nonce", nonce.to_string())];
    all.extend(params.iter().cloned());
    RestRequest {
        method: Method::Post,
        path: path.to_string(),
        query: Vec::new(),
        body: Some(form(&all)),
        signed: true,
        weight,
        retry_safe,
    }
}

fn public(path: &str, query: Vec<(&str, String)>) -> RestRequest {
    RestRequest {
        method: Method::Get,
        path: path.to_string(),
        query: query.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        body: None,
        signed: false,
        weight: 1,
        retry_safe: true,
    }
}

/// Kraken `cl_ord_id` formats: a UUID with hyphens (36 chars), a UUID without (32 hex), or free
/// text of up to 18 printable ASCII characters.
pub fn check_client_order_id(id: &str) -> Result<(), EncodeError> {
    let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    let long_uuid = id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        });
    let short_uuid = id.len() == 32 && hex(id);
    let free = (1..=18).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic());
    if long_uuid || short_uuid || free {
        Ok(())
    } else {
        Err(enc_err(
            "cl_ord_id",
            format!("{id:?} is neither a UUID nor 1-18 printable ASCII characters"),
        ))
    }
}

fn positive(what: &str, v: Fixed) -> Result<String, EncodeError> {
    if v <= Fixed::ZERO {
        return Err(enc_err(what, format!("{v} must be positive")));
    }
    Ok(v.to_string())
}

/// `POST /0/private/AddOrder`. Market, limit (post-only via `oflags=post`, IOC via
/// `timeinforce`), stop-loss (`price` = trigger), stop-loss-limit (`price2` = limit) and
/// take-profit. Kraken spot has no FOK. `pair` is `spec.symbol` as given: use the REST name
/// (altname, e.g. XBTUSD). Not `retry_safe`: Kraken rejects a duplicate `cl_ord_id` only among
/// open orders, so a retry after a fill would trade twice.
pub fn add_order(spec: &OrderSpec, nonce: u64) -> Result<RestRequest, EncodeError> {
    check_client_order_id(&spec.client_order_id)?;
    let mut p: Vec<(&str, String)> = Vec::new();
    let ordertype = match spec.kind {
        OrderSpecKind::Market => "market",
        OrderSpecKind::Limit { .. } => "limit",
        OrderSpecKind::StopMarket { .. } => "stop-loss",
        OrderSpecKind::StopLimit { .. } => "stop-loss-limit",
        OrderSpecKind::TakeProfitMarket { .. } => "take-profit",
    };
    p.push(("ordertype", ordertype.into()));
    p.push(("type", spec.side.as_str().into()));
    p.push(("volume", positive("volume", spec.qty)?));
    p.push(("pair", spec.symbol.as_str().into()));
    match spec.kind {
        OrderSpecKind::Market => {}
        OrderSpecKind::Limit { price } => p.push(("price", positive("price", price)?)),
        OrderSpecKind::StopMarket { trigger } | OrderSpecKind::TakeProfitMarket { trigger } => {
            p.push(("price", positive("price", trigger)?));
        }
        OrderSpecKind::StopLimit { trigger, price } => {
            p.push(("price", positive("price", trigger)?));
            p.push(("price2", positive("price2", price)?));
        }
    }
    let limit_like = matches!(
        spec.kind,
        OrderSpecKind::Limit { .. } | OrderSpecKind::StopLimit { .. }
    );
    match spec.time_in_force {
        TimeInForce::Gtc => {}
        TimeInForce::PostOnly if limit_like => p.push(("oflags", "post".into())),
        TimeInForce::PostOnly => {
            return Err(enc_err("oflags", "post-only needs a limit order"));
        }
        TimeInForce::Ioc if limit_like => p.push(("timeinforce", "IOC".into())),
        TimeInForce::Ioc => {}
        TimeInForce::Fok => return Err(enc_err("timeinforce", "Kraken spot has no FOK")),
    }
    if spec.reduce_only {
        p.push(("reduce_only", "true".into()));
    }
    p.push(("cl_ord_id", spec.client_order_id.clone()));
    Ok(private("/0/private/AddOrder", nonce, &p, 0, false))
}

/// `POST /0/private/CancelOrder` by `txid` or `cl_ord_id`.
pub fn cancel_order(order: OrderRef, nonce: u64) -> RestRequest {
    let p = match order {
        OrderRef::Venue(id) => ("txid", id.to_string()),
        OrderRef::Client(id) => ("cl_ord_id", id.to_string()),
    };
    private("/0/private/CancelOrder", nonce, &[p], 0, true)
}

/// `POST /0/private/CancelAll`.
pub fn cancel_all(nonce: u64) -> RestRequest {
    private("/0/private/CancelAll", nonce, &[], 1, true)
}

/// The dead-man switch, `POST /0/private/CancelAllOrdersAfter`: every order is canceled
/// `timeout_secs` from now unless renewed (0 disables). Kraken suggests a 60 s timeout renewed
/// every 15–30 s.
pub fn cancel_all_orders_after(timeout_secs: u32, nonce: u64) -> RestRequest {
    private(
        "/0/private/CancelAllOrdersAfter",
        nonce,
        &[("timeout", timeout_secs.to_string())],
        1,
        true,
    )
}

/// `POST /0/private/OpenOrders`.
pub fn open_orders(nonce: u64) -> RestRequest {
    private("/0/private/OpenOrders", nonce, &[], 1, true)
}

/// `POST /0/private/ClosedOrders` (history: weight 2).
pub fn closed_orders(nonce: u64) -> RestRequest {
    private("/0/private/ClosedOrders", nonce, &[], 2, true)
}

/// `POST /0/private/TradesHistory` (history: weight 2).
pub fn trades_history(nonce: u64) -> RestRequest {
    private("/0/private/TradesHistory", nonce, &[], 2, true)
}

/// `POST /0/private/Balance` (totals only).
pub fn balance(nonce: u64) -> RestRequest {
    private("/0/private/Balance", nonce, &[], 1, true)
}

/// `POST /0/private/BalanceEx` (totals and amounts held by orders).
pub fn balance_ex(nonce: u64) -> RestRequest {
    private("/0/private/BalanceEx", nonce, &[], 1, true)
}

/// `POST /0/private/GetWebSocketsToken`; read it with [`super::parse_ws_token`].
pub fn get_websockets_token(nonce: u64) -> RestRequest {
    private("/0/private/GetWebSocketsToken", nonce, &[], 1, true)
}

/// `GET /0/public/AssetPairs`, all pairs or the named ones.
pub fn asset_pairs(pairs: &[&str]) -> RestRequest {
    let query = if pairs.is_empty() {
        Vec::new()
    } else {
        vec![("pair", pairs.join(","))]
    };
    public("/0/public/AssetPairs", query)
}

/// Kraken's OHLC intervals, in minutes (REST and WebSocket).
pub const OHLC_MINUTES: [i64; 9] = [1, 5, 15, 30, 60, 240, 1440, 10080, 21600];

fn interval_minutes(interval: Interval) -> Result<i64, EncodeError> {
    let minutes = interval.ns / 60_000_000_000;
    if interval.ns % 60_000_000_000 == 0 && OHLC_MINUTES.contains(&minutes) {
        Ok(minutes)
    } else {
        Err(enc_err(
            "interval",
            format!("{} is not a Kraken OHLC interval", interval.name()),
        ))
    }
}

/// `GET /0/public/OHLC` (up to 720 bars; `since_secs` pages forward: pass the body's `last`).
pub fn ohlc(
    pair: &str,
    interval: Interval,
    since_secs: Option<i64>,
) -> Result<RestRequest, EncodeError> {
    let mut query = vec![
        ("pair", pair.to_string()),
        ("interval", interval_minutes(interval)?.to_string()),
    ];
    if let Some(s) = since_secs {
        query.push(("since", s.to_string()));
    }
    Ok(public("/0/public/OHLC", query))
}

/// `GET /0/public/Depth` with up to `count` levels per side (1–500).
pub fn depth(pair: &str, count: Option<u32>) -> RestRequest {
    let mut query = vec![("pair", pair.to_string())];
    if let Some(c) = count {
        query.push(("count", c.to_string()));
    }
    public("/0/public/Depth", query)
}

/// `GET /0/public/Ticker`.
pub fn ticker(pair: &str) -> RestRequest {
    public("/0/public/Ticker", vec![("pair", pair.to_string())])
}

// ---------------------------------------------------------------------------------------------
// WebSocket v2

fn str_array(items: &[&str]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|s| json_string(s))
            .collect::<Vec<_>>()
            .join(",")
    )
}

fn with_req_id(o: Obj, req_id: Option<u64>) -> String {
    match req_id {
        Some(id) => o.raw("req_id", &id.to_string()).done(),
        None => o.done(),
    }
}

/// A v2 channel subscription. Symbols are v2 names (`BTC/USD`); `token` comes from
/// GetWebSocketsToken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subscription<'a> {
    /// Candles at one of [`OHLC_MINUTES`].
    Ohlc {
        /// Pairs.
        symbols: &'a [&'a str],
        /// Bar length.
        interval: Interval,
    },
    /// Public trades.
    Trade {
        /// Pairs.
        symbols: &'a [&'a str],
    },
    /// Ticker firing on best bid/offer changes (`event_trigger` bbo).
    Ticker {
        /// Pairs.
        symbols: &'a [&'a str],
    },
    /// L2 book with checksums.
    Book {
        /// Pairs.
        symbols: &'a [&'a str],
        /// Levels per side: 10, 25, 100, 500 or 1000.
        depth: u32,
    },
    /// Own orders and fills.
    Executions {
        /// Session token.
        token: &'a str,
        /// Snapshot of open orders first.
        snap_orders: bool,
        /// Snapshot of the last 50 fills first.
        snap_trades: bool,
    },
    /// Own balances.
    Balances {
        /// Session token.
        token: &'a str,
    },
}

/// `{"method":"subscribe","params":{..},"req_id":..}`.
pub fn ws_subscribe(sub: &Subscription, req_id: Option<u64>) -> Result<String, EncodeError> {
    let params = match sub {
        Subscription::Ohlc { symbols, interval } => Obj::default()
            .str("channel", "ohlc")
            .raw("symbol", &str_array(symbols))
            .raw("interval", &interval_minutes(*interval)?.to_string()),
        Subscription::Trade { symbols } => Obj::default()
            .str("channel", "trade")
            .raw("symbol", &str_array(symbols)),
        Subscription::Ticker { symbols } => Obj::default()
            .str("channel", "ticker")
            .raw("symbol", &str_array(symbols))
            .str("event_trigger", "bbo"),
        Subscription::Book { symbols, depth } => {
            if ![10, 25, 100, 500, 1000].contains(depth) {
                return Err(enc_err(
                    "book depth",
                    format!("{depth} is not 10/25/100/500/1000"),
                ));
            }
            Obj::default()
                .str("channel", "book")
                .raw("symbol", &str_array(symbols))
                .raw("depth", &depth.to_string())
        }
        Subscription::Executions {
            token,
            snap_orders,
            snap_trades,
        } => Obj::default()
            .str("channel", "executions")
            .str("token", token)
            .raw("snap_orders", &snap_orders.to_string())
            .raw("snap_trades", &snap_trades.to_string()),
        Subscription::Balances { token } => Obj::default()
            .str("channel", "balances")
            .str("token", token),
    };
    Ok(with_req_id(
        Obj::default()
            .str("method", "subscribe")
            .raw("params", &params.done()),
        req_id,
    ))
}

/// `{"method":"ping","req_id":..}` (Kraken answers `pong` with the same `req_id`).
pub fn ws_ping(req_id: Option<u64>) -> String {
    with_req_id(Obj::default().str("method", "ping"), req_id)
}

/// `add_order` over the authenticated v2 socket. Prices and quantities are JSON numbers written
/// from keel's exact decimals (never through a float). Stops use `triggers` with the last price
/// as reference; post-only is `post_only`, IOC is `time_in_force` ioc; no FOK.
pub fn ws_add_order(
    spec: &OrderSpec,
    token: &str,
    req_id: Option<u64>,
) -> Result<String, EncodeError> {
    check_client_order_id(&spec.client_order_id)?;
    let (order_type, limit, trigger) = match spec.kind {
        OrderSpecKind::Market => ("market", None, None),
        OrderSpecKind::Limit { price } => ("limit", Some(price), None),
        OrderSpecKind::StopMarket { trigger } => ("stop-loss", None, Some(trigger)),
        OrderSpecKind::StopLimit { trigger, price } => {
            ("stop-loss-limit", Some(price), Some(trigger))
        }
        OrderSpecKind::TakeProfitMarket { trigger } => ("take-profit", None, Some(trigger)),
    };
    let mut p = Obj::default()
        .str("order_type", order_type)
        .str("side", spec.side.as_str())
        .raw("order_qty", &positive("order_qty", spec.qty)?)
        .str("symbol", spec.symbol.as_str());
    if let Some(price) = limit {
        p = p.raw("limit_price", &positive("limit_price", price)?);
    }
    if let Some(t) = trigger {
        let triggers = Obj::default()
            .str("reference", "last")
            .raw("price", &positive("triggers.price", t)?)
            .str("price_type", "static")
            .done();
        p = p.raw("triggers", &triggers);
    }
    match spec.time_in_force {
        TimeInForce::Gtc if limit.is_some() => p = p.str("time_in_force", "gtc"),
        TimeInForce::Gtc => {}
        TimeInForce::PostOnly if limit.is_some() => p = p.raw("post_only", "true"),
        TimeInForce::PostOnly => return Err(enc_err("post_only", "needs a limit order")),
        TimeInForce::Ioc if limit.is_some() => p = p.str("time_in_force", "ioc"),
        TimeInForce::Ioc => {}
        TimeInForce::Fok => return Err(enc_err("time_in_force", "Kraken spot has no FOK")),
    }
    if spec.reduce_only {
        p = p.raw("reduce_only", "true");
    }
    let p = p
        .str("cl_ord_id", &spec.client_order_id)
        .str("token", token);
    Ok(with_req_id(
        Obj::default()
            .str("method", "add_order")
            .raw("params", &p.done()),
        req_id,
    ))
}

/// `cancel_order` for some orders, all by Kraken id or all by client id.
pub fn ws_cancel_order(
    orders: &[OrderRef],
    token: &str,
    req_id: Option<u64>,
) -> Result<String, EncodeError> {
    let venue: Vec<&str> = orders
        .iter()
        .filter_map(|o| match o {
            OrderRef::Venue(id) => Some(*id),
            OrderRef::Client(_) => None,
        })
        .collect();
    let client: Vec<&str> = orders
        .iter()
        .filter_map(|o| match o {
            OrderRef::Client(id) => Some(*id),
            OrderRef::Venue(_) => None,
        })
        .collect();
    if orders.is_empty() {
        return Err(enc_err("cancel_order", "no orders"));
    }
    let mut p = Obj::default();
    if !venue.is_empty() {
        p = p.raw("order_id", &str_array(&venue));
    }
    if !client.is_empty() {
        p = p.raw("cl_ord_id", &str_array(&client));
    }
    let p = p.str("token", token);
    Ok(with_req_id(
        Obj::default()
            .str("method", "cancel_order")
            .raw("params", &p.done()),
        req_id,
    ))
}

/// `cancel_all` over the authenticated socket.
pub fn ws_cancel_all(token: &str, req_id: Option<u64>) -> String {
    with_req_id(
        Obj::default()
            .str("method", "cancel_all")
            .raw("params", &Obj::default().str("token", token).done()),
        req_id,
    )
}

/// The dead-man switch over the socket: `cancel_all_orders_after` with `timeout` seconds (0
/// disables).
pub fn ws_cancel_all_orders_after(timeout_secs: u32, token: &str, req_id: Option<u64>) -> String {
    let p = Obj::default()
        .raw("timeout", &timeout_secs.to_string())
        .str("token", token)
        .done();
    with_req_id(
        Obj::default()
            .str("method", "cancel_all_orders_after")
            .raw("params", &p),
        req_id,
    )
}
