//! OKX request builders: pure functions from keel intents to `RestRequest`s and WebSocket
//! frames. The client signs (OK-ACCESS-* headers over timestamp + method + path + body) and
//! sends.
//!
//! OKX rate-limits per endpoint (e.g. 60 orders / 2 s per instrument), not with weights, so every
//! request has `weight` 1 and the client keeps one budget per endpoint.

use crate::json::Obj;
use keel_engine::candle::Interval;
use keel_engine::fixed::Fixed;

use super::interval_to_bar;
use crate::model::{Method, OrderSpec, OrderSpecKind, RestRequest, TimeInForce};

/// REST base URL (live and demo trading; demo adds [`DEMO_HEADER`]).
pub const REST_URL: &str = "https://www.okx.com";
/// Public market data WebSocket.
pub const WS_PUBLIC_URL: &str = "wss://ws.okx.com:8443/ws/v5/public";
/// Private WebSocket (login; orders, positions, account; order entry).
pub const WS_PRIVATE_URL: &str = "wss://ws.okx.com:8443/ws/v5/private";
/// Business WebSocket: candles, `orders-algo` and other non-core channels live here.
pub const WS_BUSINESS_URL: &str = "wss://ws.okx.com:8443/ws/v5/business";
/// Demo trading (paper) public WebSocket.
pub const DEMO_WS_PUBLIC_URL: &str = "wss://wspap.okx.com:8443/ws/v5/public";
/// Demo trading private WebSocket.
pub const DEMO_WS_PRIVATE_URL: &str = "wss://wspap.okx.com:8443/ws/v5/private";
/// Demo trading business WebSocket.
pub const DEMO_WS_BUSINESS_URL: &str = "wss://wspap.okx.com:8443/ws/v5/business";
/// Header every demo-trading REST request carries (same host as live).
pub const DEMO_HEADER: (&str, &str) = ("x-simulated-trading", "1");

/// Why a keel intent cannot be expressed as an OKX request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode okx {what}: {detail}")]
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

/// Trade mode: `cash` for spot without margin, `cross`/`isolated` for margin and derivatives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TdMode {
    /// Spot, no borrowing.
    Cash,
    /// Cross margin.
    Cross,
    /// Isolated margin.
    Isolated,
}

impl TdMode {
    /// The `tdMode` value.
    pub fn as_str(self) -> &'static str {
        match self {
            TdMode::Cash => "cash",
            TdMode::Cross => "cross",
            TdMode::Isolated => "isolated",
        }
    }
}

/// An order by client id (`clOrdId`/`algoClOrdId`) or by OKX id (`ordId`/`algoId`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderRef<'a> {
    /// keel's client order id.
    Client(&'a str),
    /// OKX's order id.
    Venue(&'a str),
}

fn get(path: &str, query: Vec<(String, String)>, signed: bool) -> RestRequest {
    RestRequest {
        method: Method::Get,
        path: path.to_string(),
        query,
        body: None,
        signed,
        weight: 1,
        retry_safe: true,
    }
}

fn post(path: &str, body: String, retry_safe: bool) -> RestRequest {
    RestRequest {
        method: Method::Post,
        path: path.to_string(),
        query: Vec::new(),
        body: Some(body),
        signed: true,
        weight: 1,
        retry_safe,
    }
}

fn q(pairs: &[(&str, Option<&str>)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v.to_string())))
        .collect()
}

/// OKX client ids: 1–32 ASCII letters and digits.
pub fn check_client_order_id(id: &str) -> Result<(), EncodeError> {
    if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(enc_err(
            "clOrdId",
            format!("{id:?} must be 1-32 ASCII letters and digits"),
        ));
    }
    Ok(())
}

fn positive(what: &str, v: Fixed) -> Result<String, EncodeError> {
    if v <= Fixed::ZERO {
        return Err(enc_err(what, format!("{v} must be positive")));
    }
    Ok(v.to_string())
}

/// The order body (`POST /api/v5/trade/order`, also the `args` item of the WebSocket `order`
/// op). Stop kinds are algo orders: see [`place_order`].
fn order_body(spec: &OrderSpec, td_mode: TdMode) -> Result<String, EncodeError> {
    check_client_order_id(&spec.client_order_id)?;
    let sz = positive("sz", spec.qty)?;
    let mut o = Obj::default()
        .str("instId", spec.symbol.as_str())
        .str("tdMode", td_mode.as_str())
        .str("clOrdId", &spec.client_order_id)
        .str("side", spec.side.as_str());
    match spec.kind {
        OrderSpecKind::Market => {
            if spec.time_in_force == TimeInForce::PostOnly {
                return Err(enc_err("ordType", "a market order cannot be post-only"));
            }
            o = o.str("ordType", "market");
            // Spot market buys are sized in quote currency unless told otherwise; keel sizes
            // every order in base.
            if td_mode == TdMode::Cash {
                o = o.str("tgtCcy", "base_ccy");
            }
        }
        OrderSpecKind::Limit { price } => {
            let ord_type = match spec.time_in_force {
                TimeInForce::Gtc => "limit",
                TimeInForce::PostOnly => "post_only",
                TimeInForce::Ioc => "ioc",
                TimeInForce::Fok => "fok",
            };
            o = o
                .str("ordType", ord_type)
                .str("px", &positive("px", price)?);
        }
        _ => return Err(enc_err("ordType", "stop orders go to order-algo")),
    }
    o = o.str("sz", &sz);
    if spec.reduce_only {
        o = o.raw("reduceOnly", "true");
    }
    Ok(o.done())
}

/// The algo body for stop / take-profit kinds: `ordType` conditional with `slTriggerPx` /
/// `tpTriggerPx`; an order price of -1 means market on trigger. The keel id is `algoClOrdId`.
fn algo_body(spec: &OrderSpec, td_mode: TdMode) -> Result<String, EncodeError> {
    check_client_order_id(&spec.client_order_id)?;
    let sz = positive("sz", spec.qty)?;
    let o = Obj::default()
        .str("instId", spec.symbol.as_str())
        .str("tdMode", td_mode.as_str())
        .str("algoClOrdId", &spec.client_order_id)
        .str("side", spec.side.as_str())
        .str("ordType", "conditional")
        .str("sz", &sz);
    let o = match spec.kind {
        OrderSpecKind::StopMarket { trigger } => o
            .str("slTriggerPx", &positive("slTriggerPx", trigger)?)
            .str("slOrdPx", "-1")
            .str("slTriggerPxType", "last"),
        OrderSpecKind::StopLimit { trigger, price } => o
            .str("slTriggerPx", &positive("slTriggerPx", trigger)?)
            .str("slOrdPx", &positive("slOrdPx", price)?)
            .str("slTriggerPxType", "last"),
        OrderSpecKind::TakeProfitMarket { trigger } => o
            .str("tpTriggerPx", &positive("tpTriggerPx", trigger)?)
            .str("tpOrdPx", "-1")
            .str("tpTriggerPxType", "last"),
        _ => return Err(enc_err("ordType", "not a conditional order")),
    };
    let o = if spec.reduce_only {
        o.raw("reduceOnly", "true")
    } else {
        o
    };
    Ok(o.done())
}

fn is_algo(spec: &OrderSpec) -> bool {
    matches!(
        spec.kind,
        OrderSpecKind::StopMarket { .. }
            | OrderSpecKind::StopLimit { .. }
            | OrderSpecKind::TakeProfitMarket { .. }
    )
}

/// Place an order: market/limit (post-only, IOC, FOK through `ordType`) at
/// `POST /api/v5/trade/order`, stops and take-profits at `POST /api/v5/trade/order-algo`.
/// Assumes net position mode (no `posSide`). Not `retry_safe`: OKX rejects a duplicate
/// `clOrdId` (51016) only while the first order is live, so a retry after a fill would trade
/// twice; reconcile by `clOrdId` instead.
pub fn place_order(spec: &OrderSpec, td_mode: TdMode) -> Result<RestRequest, EncodeError> {
    if is_algo(spec) {
        Ok(post(
            "/api/v5/trade/order-algo",
            algo_body(spec, td_mode)?,
            false,
        ))
    } else {
        Ok(post(
            "/api/v5/trade/order",
            order_body(spec, td_mode)?,
            false,
        ))
    }
}

fn order_ref_obj(inst_id: &str, order: OrderRef, client_key: &str, venue_key: &str) -> Obj {
    let o = Obj::default().str("instId", inst_id);
    match order {
        OrderRef::Client(id) => o.str(client_key, id),
        OrderRef::Venue(id) => o.str(venue_key, id),
    }
}

/// `POST /api/v5/trade/cancel-order`.
pub fn cancel_order(inst_id: &str, order: OrderRef) -> RestRequest {
    let body = order_ref_obj(inst_id, order, "clOrdId", "ordId").done();
    post("/api/v5/trade/cancel-order", body, true)
}

/// `POST /api/v5/trade/cancel-batch-orders`: up to 20 orders of any instruments.
pub fn cancel_batch(orders: &[(&str, OrderRef)]) -> Result<RestRequest, EncodeError> {
    if orders.is_empty() || orders.len() > 20 {
        return Err(enc_err("cancel-batch-orders", "needs 1 to 20 orders"));
    }
    let items: Vec<String> = orders
        .iter()
        .map(|(inst, o)| order_ref_obj(inst, *o, "clOrdId", "ordId").done())
        .collect();
    Ok(post(
        "/api/v5/trade/cancel-batch-orders",
        format!("[{}]", items.join(",")),
        true,
    ))
}

/// `POST /api/v5/trade/cancel-algos`: up to 10 algo orders.
pub fn cancel_algos(orders: &[(&str, OrderRef)]) -> Result<RestRequest, EncodeError> {
    if orders.is_empty() || orders.len() > 10 {
        return Err(enc_err("cancel-algos", "needs 1 to 10 orders"));
    }
    let items: Vec<String> = orders
        .iter()
        .map(|(inst, o)| order_ref_obj(inst, *o, "algoClOrdId", "algoId").done())
        .collect();
    Ok(post(
        "/api/v5/trade/cancel-algos",
        format!("[{}]", items.join(",")),
        true,
    ))
}

/// `POST /api/v5/trade/mass-cancel`: cancels every order of an instrument family. OKX offers
/// it for OPTION only (market-maker protection); for other types cancel in batches.
pub fn mass_cancel(inst_type: &str, inst_family: &str) -> RestRequest {
    let body = Obj::default()
        .str("instType", inst_type)
        .str("instFamily", inst_family)
        .done();
    post("/api/v5/trade/mass-cancel", body, true)
}

/// The dead-man switch, `POST /api/v5/trade/cancel-all-after`: every order is canceled unless
/// this is sent again within `timeout_secs` (0 disables; otherwise 10–120 s).
pub fn cancel_all_after(timeout_secs: u32) -> Result<RestRequest, EncodeError> {
    if timeout_secs != 0 && !(10..=120).contains(&timeout_secs) {
        return Err(enc_err("timeOut", "must be 0 or 10..=120 seconds"));
    }
    let body = Obj::default()
        .str("timeOut", &timeout_secs.to_string())
        .done();
    Ok(post("/api/v5/trade/cancel-all-after", body, true))
}

/// `GET /api/v5/trade/orders-pending`, optionally filtered.
pub fn orders_pending(inst_type: Option<&str>, inst_id: Option<&str>) -> RestRequest {
    get(
        "/api/v5/trade/orders-pending",
        q(&[("instType", inst_type), ("instId", inst_id)]),
        true,
    )
}

/// `GET /api/v5/trade/orders-algo-pending` for one algo `ordType` (e.g. "conditional").
pub fn orders_algo_pending(ord_type: &str, inst_id: Option<&str>) -> RestRequest {
    get(
        "/api/v5/trade/orders-algo-pending",
        q(&[("ordType", Some(ord_type)), ("instId", inst_id)]),
        true,
    )
}

/// `GET /api/v5/trade/fills` (last 3 days), optionally filtered.
pub fn fills(inst_type: Option<&str>, inst_id: Option<&str>) -> RestRequest {
    get(
        "/api/v5/trade/fills",
        q(&[("instType", inst_type), ("instId", inst_id)]),
        true,
    )
}

/// `GET /api/v5/account/balance`, optionally for some currencies ("BTC,USDT").
pub fn balance(ccy: Option<&str>) -> RestRequest {
    get("/api/v5/account/balance", q(&[("ccy", ccy)]), true)
}

/// `GET /api/v5/account/positions`, optionally filtered.
pub fn positions(inst_type: Option<&str>, inst_id: Option<&str>) -> RestRequest {
    get(
        "/api/v5/account/positions",
        q(&[("instType", inst_type), ("instId", inst_id)]),
        true,
    )
}

/// `GET /api/v5/public/instruments` (`inst_type` SPOT, MARGIN, SWAP, FUTURES or OPTION).
pub fn instruments(inst_type: &str, inst_id: Option<&str>) -> RestRequest {
    get(
        "/api/v5/public/instruments",
        q(&[("instType", Some(inst_type)), ("instId", inst_id)]),
        false,
    )
}

/// A candles page. OKX pages backwards from newest: `after` (ms) returns bars older than it,
/// `before` (ms) bars newer than it; `limit` up to 300 (`candles`) / 100 (`history`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CandlePage {
    /// Bars older than this open time (ms).
    pub after_ms: Option<i64>,
    /// Bars newer than this open time (ms).
    pub before_ms: Option<i64>,
    /// Page size.
    pub limit: Option<u32>,
}

fn candles_req(
    path: &str,
    inst_id: &str,
    interval: Interval,
    page: CandlePage,
) -> Result<RestRequest, EncodeError> {
    let bar = interval_to_bar(interval)
        .ok_or_else(|| enc_err("bar", format!("{} is not an OKX bar", interval.name())))?;
    let after = page.after_ms.map(|v| v.to_string());
    let before = page.before_ms.map(|v| v.to_string());
    let limit = page.limit.map(|v| v.to_string());
    Ok(get(
        path,
        q(&[
            ("instId", Some(inst_id)),
            ("bar", Some(&bar)),
            ("after", after.as_deref()),
            ("before", before.as_deref()),
            ("limit", limit.as_deref()),
        ]),
        false,
    ))
}

/// `GET /api/v5/market/candles` (recent bars). Decode with [`super::parse_candles`].
pub fn candles(
    inst_id: &str,
    interval: Interval,
    page: CandlePage,
) -> Result<RestRequest, EncodeError> {
    candles_req("/api/v5/market/candles", inst_id, interval, page)
}

/// `GET /api/v5/market/history-candles` (older bars).
pub fn history_candles(
    inst_id: &str,
    interval: Interval,
    page: CandlePage,
) -> Result<RestRequest, EncodeError> {
    candles_req("/api/v5/market/history-candles", inst_id, interval, page)
}

/// `GET /api/v5/market/books` with `depth` levels per side (max 400). Decode with
/// [`super::parse_order_book`].
pub fn books(inst_id: &str, depth: Option<u32>) -> RestRequest {
    let sz = depth.map(|d| d.to_string());
    get(
        "/api/v5/market/books",
        q(&[("instId", Some(inst_id)), ("sz", sz.as_deref())]),
        false,
    )
}

// ---------------------------------------------------------------------------------------------
// WebSocket

/// Which OKX WebSocket a channel lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsEndpoint {
    /// Public market data.
    Public,
    /// Login; orders, positions, account; order entry.
    Private,
    /// Candles, algo orders and other non-core channels.
    Business,
}

impl WsEndpoint {
    /// The endpoint's URL, live or demo trading.
    pub fn url(self, demo: bool) -> &'static str {
        match (self, demo) {
            (WsEndpoint::Public, false) => WS_PUBLIC_URL,
            (WsEndpoint::Private, false) => WS_PRIVATE_URL,
            (WsEndpoint::Business, false) => WS_BUSINESS_URL,
            (WsEndpoint::Public, true) => DEMO_WS_PUBLIC_URL,
            (WsEndpoint::Private, true) => DEMO_WS_PRIVATE_URL,
            (WsEndpoint::Business, true) => DEMO_WS_BUSINESS_URL,
        }
    }
}

/// A channel keel subscribes to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // field names say it: an OKX instId / instType
pub enum Channel {
    /// `candle<bar>` (business endpoint), UTC-aligned bars for 6h and longer.
    Candles { inst_id: String, interval: Interval },
    /// Public trades.
    Trades { inst_id: String },
    /// Tickers (best bid/ask and 24 h stats).
    Tickers { inst_id: String },
    /// Best bid/offer, tick by tick.
    BboTbt { inst_id: String },
    /// 400-level book: snapshot, then updates with seqId/prevSeqId and checksum.
    Books { inst_id: String },
    /// 5-level book, whole on every push.
    Books5 { inst_id: String },
    /// Funding rate of a perpetual swap.
    FundingRate { inst_id: String },
    /// Private: orders of `inst_type` (SPOT, SWAP, ..., or ANY).
    Orders { inst_type: String },
    /// Business, private: algo orders of `inst_type`.
    OrdersAlgo { inst_type: String },
    /// Private: positions of `inst_type`.
    Positions { inst_type: String },
    /// Private: balances of every currency.
    Account,
}

impl Channel {
    /// The endpoint to subscribe on.
    pub fn endpoint(&self) -> WsEndpoint {
        match self {
            Channel::Candles { .. } | Channel::OrdersAlgo { .. } => WsEndpoint::Business,
            Channel::Orders { .. } | Channel::Positions { .. } | Channel::Account => {
                WsEndpoint::Private
            }
            _ => WsEndpoint::Public,
        }
    }

    fn arg(&self) -> Result<String, EncodeError> {
        let inst = |channel: &str, inst_id: &str| {
            Obj::default()
                .str("channel", channel)
                .str("instId", inst_id)
                .done()
        };
        let typ = |channel: &str, inst_type: &str| {
            Obj::default()
                .str("channel", channel)
                .str("instType", inst_type)
                .done()
        };
        Ok(match self {
            Channel::Candles { inst_id, interval } => {
                let bar = interval_to_bar(*interval).ok_or_else(|| {
                    enc_err(
                        "candle channel",
                        format!("{} is not an OKX bar", interval.name()),
                    )
                })?;
                inst(&format!("candle{bar}"), inst_id)
            }
            Channel::Trades { inst_id } => inst("trades", inst_id),
            Channel::Tickers { inst_id } => inst("tickers", inst_id),
            Channel::BboTbt { inst_id } => inst("bbo-tbt", inst_id),
            Channel::Books { inst_id } => inst("books", inst_id),
            Channel::Books5 { inst_id } => inst("books5", inst_id),
            Channel::FundingRate { inst_id } => inst("funding-rate", inst_id),
            Channel::Orders { inst_type } => typ("orders", inst_type),
            Channel::OrdersAlgo { inst_type } => typ("orders-algo", inst_type),
            Channel::Positions { inst_type } => typ("positions", inst_type),
            Channel::Account => Obj::default().str("channel", "account").done(),
        })
    }
}

/// `{"op":"subscribe","args":[..]}` for channels of one endpoint.
pub fn ws_subscribe(channels: &[Channel]) -> Result<String, EncodeError> {
    let args: Result<Vec<String>, EncodeError> = channels.iter().map(Channel::arg).collect();
    Ok(Obj::default()
        .str("op", "subscribe")
        .raw("args", &format!("[{}]", args?.join(",")))
        .done())
}

/// The text OKX's WebSocket login signs: `timestamp + "GET" + "/users/self/verify"`, with the
/// timestamp in Unix seconds. The signature is Base64(HMAC-SHA256(secret, this)).
pub fn ws_login_prehash(timestamp_secs: &str) -> String {
    format!("{timestamp_secs}GET/users/self/verify")
}

/// `{"op":"login","args":[{apiKey, passphrase, timestamp, sign}]}`; `sign` over
/// [`ws_login_prehash`].
pub fn ws_login(api_key: &str, passphrase: &str, timestamp_secs: &str, sign: &str) -> String {
    let arg = Obj::default()
        .str("apiKey", api_key)
        .str("passphrase", passphrase)
        .str("timestamp", timestamp_secs)
        .str("sign", sign)
        .done();
    Obj::default()
        .str("op", "login")
        .raw("args", &format!("[{arg}]"))
        .done()
}

/// The keep-alive frame: the literal text `ping` (OKX answers `pong`; it drops connections
/// idle for 30 s).
pub fn ws_ping() -> &'static str {
    "ping"
}

/// Place an order over the private WebSocket (`op` order); `id` (1–32 alphanumerics) comes back
/// in the response. Market/limit kinds only: algo orders have no WebSocket op.
pub fn ws_place_order(id: &str, spec: &OrderSpec, td_mode: TdMode) -> Result<String, EncodeError> {
    if is_algo(spec) {
        return Err(enc_err(
            "op order",
            "stop orders have no WebSocket op; use REST",
        ));
    }
    check_client_order_id(id)?;
    let body = order_body(spec, td_mode)?;
    Ok(Obj::default()
        .str("id", id)
        .str("op", "order")
        .raw("args", &format!("[{body}]"))
        .done())
}

/// Cancel an order over the private WebSocket (`op` cancel-order).
pub fn ws_cancel_order(id: &str, inst_id: &str, order: OrderRef) -> Result<String, EncodeError> {
    check_client_order_id(id)?;
    let arg = order_ref_obj(inst_id, order, "clOrdId", "ordId").done();
    Ok(Obj::default()
        .str("id", id)
        .str("op", "cancel-order")
        .raw("args", &format!("[{arg}]"))
        .done())
}
