//! Request builders (unsigned `RestRequest`s with the documented request weights) and the
//! stream URLs.
//!
//! Signed endpoints get `timestamp` (and optionally `recvWindow`) and the signature from the
//! client; the builders put the order's own parameters in the query, in the order the docs'
//! examples use. POST parameters go in the query string, which Binance accepts for all
//! endpoints used here.

use keel_engine::event::Side;
use keel_engine::fixed::Fixed;
use keel_engine::symbol::Symbol;

use crate::model::{Method, OrderSpec, OrderSpecKind, RestRequest, TimeInForce};

/// Spot REST base URL.
pub const SPOT_REST_URL: &str = "https://api.binance.com";
/// USD-M futures REST base URL.
pub const USDM_REST_URL: &str = "https://fapi.binance.com";
/// Spot market streams (combined-stream endpoint is `/stream?streams=`).
pub const SPOT_STREAM_URL: &str = "wss://stream.binance.com:9443";
/// Spot WebSocket API. Spot user data comes through it (`userDataStream.subscribe.signature`):
/// listen keys for spot were retired on 2026-02-20.
pub const SPOT_WS_API_URL: &str = "wss://ws-api.binance.com:443/ws-api/v3";
/// USD-M stream host. Since 2026-04-23 only the routed paths (`/public`, `/market`, `/private`)
/// are served; see [`usdm_route`].
pub const USDM_STREAM_HOST: &str = "wss://fstream.binance.com";

/// The user-data events keel consumes on USD-M (the `events` of the private route).
pub const USDM_PRIVATE_EVENTS: [&str; 4] = [
    "ORDER_TRADE_UPDATE",
    "ACCOUNT_UPDATE",
    "ALGO_UPDATE",
    "listenKeyExpired",
];

/// Why a request could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// Binance has no way to express this (spot reduce-only, post-only stop orders, ...).
    #[error("binance cannot express this: {0}")]
    Unsupported(String),
    /// A parameter is out of the venue's range (non-positive quantity, bad limit, bad id).
    #[error("invalid request: {0}")]
    Invalid(String),
}

/// Which order a cancel or query refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderRef<'a> {
    /// The client order id keel sent (`origClientOrderId`; `clientalgoid` for algo orders).
    Client(&'a str),
    /// The venue's order id (`orderId`; `algoid` for algo orders).
    Venue(&'a str),
}

fn pair(k: &str, v: impl Into<String>) -> (String, String) {
    (k.to_string(), v.into())
}

fn side_text(side: Side) -> &'static str {
    match side {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    }
}

fn positive(what: &str, v: Fixed) -> Result<String, BuildError> {
    if v > Fixed::ZERO {
        Ok(v.to_string())
    } else {
        Err(BuildError::Invalid(format!(
            "{what} must be positive, got {v}"
        )))
    }
}

/// Binance client ids: 1 to 36 characters of `[A-Za-z0-9._:/-]` (keel's are decimal u64s).
fn check_client_id(id: &str) -> Result<(), BuildError> {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b"._:/-".contains(&b);
    if id.len() > 36 || !id.bytes().all(ok) {
        return Err(BuildError::Invalid(format!(
            "client order id {id:?} must be at most 36 characters of [A-Za-z0-9._:/-]"
        )));
    }
    Ok(())
}

fn order_ref(
    query: &mut Vec<(String, String)>,
    r: OrderRef,
    client_key: &str,
    venue_key: &str,
) -> Result<(), BuildError> {
    match r {
        OrderRef::Client(c) if !c.is_empty() => {
            check_client_id(c)?;
            query.push(pair(client_key, c));
        }
        OrderRef::Venue(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
            query.push(pair(venue_key, v));
        }
        other => {
            return Err(BuildError::Invalid(format!(
                "no usable order id in {other:?}"
            )));
        }
    }
    Ok(())
}

fn request(method: Method, path: &str, query: Vec<(String, String)>, weight: u32) -> RestRequest {
    RestRequest {
        method,
        path: path.to_string(),
        query,
        body: None,
        signed: false,
        weight,
        retry_safe: true,
    }
}

fn signed(method: Method, path: &str, query: Vec<(String, String)>, weight: u32) -> RestRequest {
    RestRequest {
        signed: true,
        ..request(method, path, query, weight)
    }
}

/// The query string as sent: `k=v` joined by `&`, values percent-encoded (RFC 3986
/// unreserved characters pass through). Binance signs exactly this text.
pub fn query_string(query: &[(String, String)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in query.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode_into(&mut out, k);
        out.push('=');
        encode_into(&mut out, v);
    }
    out
}

fn encode_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

const SPOT_INTERVALS: [&str; 16] = [
    "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w",
    "1M",
];

fn check_interval(interval: &str, spot: bool) -> Result<(), BuildError> {
    let known = SPOT_INTERVALS.contains(&interval) && (spot || interval != "1s");
    if known {
        Ok(())
    } else {
        Err(BuildError::Invalid(format!(
            "{interval:?} is not a Binance kline interval"
        )))
    }
}

fn kline_query(
    symbol: &Symbol,
    interval: &str,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
    limit: Option<u32>,
) -> Vec<(String, String)> {
    let mut q = vec![pair("symbol", symbol.as_str()), pair("interval", interval)];
    if let Some(s) = start_ms {
        q.push(pair("startTime", s.to_string()));
    }
    if let Some(e) = end_ms {
        q.push(pair("endTime", e.to_string()));
    }
    if let Some(l) = limit {
        q.push(pair("limit", l.to_string()));
    }
    q
}

// ---------------------------------------------------------------------------------------------
// Spot

/// `POST /api/v3/order` (weight 1). Market, limit (GTC/IOC/FOK; post-only becomes
/// `LIMIT_MAKER`), stop market (`STOP_LOSS`), stop limit (`STOP_LOSS_LIMIT`) and take profit
/// (`TAKE_PROFIT`), answered with `newOrderRespType=FULL` so fills come back at once.
///
/// Not retry-safe: spot rejects a repeated `newClientOrderId` only while the first order is
/// still open, so a retry after a fill would place a second order.
pub fn spot_place_order(spec: &OrderSpec) -> Result<RestRequest, BuildError> {
    if spec.reduce_only {
        return Err(BuildError::Unsupported(
            "spot orders cannot be reduce-only".into(),
        ));
    }
    check_client_id(&spec.client_order_id)?;
    let post_only = spec.time_in_force == TimeInForce::PostOnly;
    let tif = match spec.time_in_force {
        TimeInForce::Gtc => "GTC",
        TimeInForce::Ioc => "IOC",
        TimeInForce::Fok => "FOK",
        TimeInForce::PostOnly => "",
    };
    let qty = positive("quantity", spec.qty)?;
    let (order_type, price, stop, with_tif) = match spec.kind {
        OrderSpecKind::Market if post_only => {
            return Err(BuildError::Unsupported(
                "a market order cannot be post-only".into(),
            ));
        }
        OrderSpecKind::Market => ("MARKET", None, None, false),
        OrderSpecKind::Limit { price } if post_only => ("LIMIT_MAKER", Some(price), None, false),
        OrderSpecKind::Limit { price } => ("LIMIT", Some(price), None, true),
        OrderSpecKind::StopMarket { .. }
        | OrderSpecKind::StopLimit { .. }
        | OrderSpecKind::TakeProfitMarket { .. }
            if post_only =>
        {
            return Err(BuildError::Unsupported(
                "spot stop / take-profit orders cannot be post-only".into(),
            ));
        }
        OrderSpecKind::StopMarket { trigger } => ("STOP_LOSS", None, Some(trigger), false),
        OrderSpecKind::StopLimit { trigger, price } => {
            ("STOP_LOSS_LIMIT", Some(price), Some(trigger), true)
        }
        OrderSpecKind::TakeProfitMarket { trigger } => ("TAKE_PROFIT", None, Some(trigger), false),
    };
    let mut q = vec![
        pair("symbol", spec.symbol.as_str()),
        pair("side", side_text(spec.side)),
        pair("type", order_type),
    ];
    if with_tif {
        q.push(pair("timeInForce", tif));
    }
    q.push(pair("quantity", qty));
    if let Some(p) = price {
        q.push(pair("price", positive("price", p)?));
    }
    if let Some(s) = stop {
        q.push(pair("stopPrice", positive("stop price", s)?));
    }
    if !spec.client_order_id.is_empty() {
        q.push(pair("newClientOrderId", spec.client_order_id.as_str()));
    }
    q.push(pair("newOrderRespType", "FULL"));
    Ok(RestRequest {
        retry_safe: false,
        ..signed(Method::Post, "/api/v3/order", q, 1)
    })
}

/// `DELETE /api/v3/order` (weight 1). Retry-safe: a repeated cancel only fails as unknown.
pub fn spot_cancel_order(symbol: &Symbol, order: OrderRef) -> Result<RestRequest, BuildError> {
    let mut q = vec![pair("symbol", symbol.as_str())];
    order_ref(&mut q, order, "origClientOrderId", "orderId")?;
    Ok(signed(Method::Delete, "/api/v3/order", q, 1))
}

/// `DELETE /api/v3/openOrders` (weight 1): cancel every open order (and order list) on a symbol.
pub fn spot_cancel_all(symbol: &Symbol) -> RestRequest {
    signed(
        Method::Delete,
        "/api/v3/openOrders",
        vec![pair("symbol", symbol.as_str())],
        1,
    )
}

/// `GET /api/v3/order` (weight 4).
pub fn spot_query_order(symbol: &Symbol, order: OrderRef) -> Result<RestRequest, BuildError> {
    let mut q = vec![pair("symbol", symbol.as_str())];
    order_ref(&mut q, order, "origClientOrderId", "orderId")?;
    Ok(signed(Method::Get, "/api/v3/order", q, 4))
}

/// `GET /api/v3/openOrders` (weight 6 for one symbol, 80 for all).
pub fn spot_open_orders(symbol: Option<&Symbol>) -> RestRequest {
    match symbol {
        Some(s) => signed(
            Method::Get,
            "/api/v3/openOrders",
            vec![pair("symbol", s.as_str())],
            6,
        ),
        None => signed(Method::Get, "/api/v3/openOrders", Vec::new(), 80),
    }
}

/// `GET /api/v3/account` (weight 20): balances.
pub fn spot_account() -> RestRequest {
    signed(Method::Get, "/api/v3/account", Vec::new(), 20)
}

/// `GET /api/v3/exchangeInfo` (weight 20), for one symbol or all.
pub fn spot_exchange_info(symbol: Option<&Symbol>) -> RestRequest {
    let q = symbol
        .map(|s| vec![pair("symbol", s.as_str())])
        .unwrap_or_default();
    request(Method::Get, "/api/v3/exchangeInfo", q, 20)
}

/// `GET /api/v3/klines` (weight 2). Page forward with `start_ms` = last open time + interval;
/// `limit` is 1..=1000 (venue default 500).
pub fn spot_klines(
    symbol: &Symbol,
    interval: &str,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
    limit: Option<u32>,
) -> Result<RestRequest, BuildError> {
    check_interval(interval, true)?;
    if limit.is_some_and(|l| !(1..=1000).contains(&l)) {
        return Err(BuildError::Invalid("spot klines limit is 1..=1000".into()));
    }
    Ok(request(
        Method::Get,
        "/api/v3/klines",
        kline_query(symbol, interval, start_ms, end_ms, limit),
        2,
    ))
}

/// `GET /api/v3/depth` (weight 5 / 25 / 50 / 250 for limits up to 100 / 500 / 1000 / 5000).
pub fn spot_depth(symbol: &Symbol, limit: u32) -> Result<RestRequest, BuildError> {
    let weight = match limit {
        1..=100 => 5,
        101..=500 => 25,
        501..=1000 => 50,
        1001..=5000 => 250,
        _ => return Err(BuildError::Invalid("spot depth limit is 1..=5000".into())),
    };
    Ok(request(
        Method::Get,
        "/api/v3/depth",
        vec![
            pair("symbol", symbol.as_str()),
            pair("limit", limit.to_string()),
        ],
        weight,
    ))
}

/// `GET /api/v3/time` (weight 1).
pub fn spot_server_time() -> RestRequest {
    request(Method::Get, "/api/v3/time", Vec::new(), 1)
}

/// The signature payload of a WebSocket API request: every parameter but `signature`, sorted
/// by name, joined as `k=v&...` (the WebSocket API signs sorted parameters, REST does not).
pub fn ws_api_signature_payload(params: &[(&str, &str)]) -> String {
    let mut sorted: Vec<&(&str, &str)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// What to sign for `userDataStream.subscribe.signature`.
pub fn spot_user_stream_signature_payload(api_key: &str, timestamp_ms: i64) -> String {
    let ts = timestamp_ms.to_string();
    ws_api_signature_payload(&[("apiKey", api_key), ("timestamp", &ts)])
}

/// The `userDataStream.subscribe.signature` request (sent on [`SPOT_WS_API_URL`], weight 2).
/// Its reply (`{"id":..,"status":200,"result":{"subscriptionId":N}}`) decodes to a
/// `Control::Response`; events then arrive as `{"subscriptionId":N,"event":{...}}`.
pub fn spot_user_stream_subscribe_request(
    id: &str,
    api_key: &str,
    timestamp_ms: i64,
    signature: &str,
) -> String {
    serde_json::json!({
        "id": id,
        "method": "userDataStream.subscribe.signature",
        "params": {
            "apiKey": api_key,
            "timestamp": timestamp_ms,
            "signature": signature,
        }
    })
    .to_string()
}

/// Combined spot market streams: `wss://stream.binance.com:9443/stream?streams=a/b`.
pub fn spot_stream_url(streams: &[String]) -> String {
    format!("{SPOT_STREAM_URL}/stream?streams={}", streams.join("/"))
}

// ---------------------------------------------------------------------------------------------
// Stream names (lowercase symbol, as Binance requires)

fn stream(symbol: &Symbol, channel: &str) -> String {
    format!("{}@{channel}", symbol.as_str().to_ascii_lowercase())
}

/// `<symbol>@kline_<interval>`.
pub fn kline_stream(symbol: &Symbol, interval: &str) -> String {
    stream(symbol, &format!("kline_{interval}"))
}

/// `<symbol>@trade`.
pub fn trade_stream(symbol: &Symbol) -> String {
    stream(symbol, "trade")
}

/// `<symbol>@aggTrade`.
pub fn agg_trade_stream(symbol: &Symbol) -> String {
    stream(symbol, "aggTrade")
}

/// `<symbol>@bookTicker`.
pub fn book_ticker_stream(symbol: &Symbol) -> String {
    stream(symbol, "bookTicker")
}

/// `<symbol>@depth@100ms` (diff depth, 100 ms updates) or `<symbol>@depth` (spot 1000 ms,
/// USD-M 250 ms).
pub fn depth_stream(symbol: &Symbol, fast: bool) -> String {
    stream(symbol, if fast { "depth@100ms" } else { "depth" })
}

/// USD-M `<symbol>@markPrice@1s` or `<symbol>@markPrice` (every 3 s).
pub fn mark_price_stream(symbol: &Symbol, every_second: bool) -> String {
    stream(
        symbol,
        if every_second {
            "markPrice@1s"
        } else {
            "markPrice"
        },
    )
}

// ---------------------------------------------------------------------------------------------
// USD-M

/// The USD-M stream routes. The unrouted `wss://fstream.binance.com/ws|stream` URLs were
/// retired on 2026-04-23.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UsdmRoute {
    /// High-frequency public data: book tickers and depth.
    Public,
    /// Regular market data: trades, klines, mark price, tickers, liquidations.
    Market,
    /// User data (listen key + events).
    Private,
}

impl UsdmRoute {
    /// The path segment after the host.
    pub fn path(self) -> &'static str {
        match self {
            UsdmRoute::Public => "public",
            UsdmRoute::Market => "market",
            UsdmRoute::Private => "private",
        }
    }
}

/// Which route serves a public stream: `@bookTicker`, `!bookTicker` and the depth streams
/// (`@depth`, `@depth<N>`, any speed) go to `/public`, everything else to `/market`.
pub fn usdm_route(stream: &str) -> UsdmRoute {
    let channel = stream.split('@').nth(1).unwrap_or(stream);
    if stream == "!bookTicker" || channel == "bookTicker" || channel.starts_with("depth") {
        UsdmRoute::Public
    } else {
        UsdmRoute::Market
    }
}

/// Combined-stream URLs for USD-M public streams, one per route they need, e.g.
/// `wss://fstream.binance.com/public/stream?streams=btcusdt@depth@100ms` and
/// `wss://fstream.binance.com/market/stream?streams=btcusdt@aggTrade/btcusdt@markPrice`.
pub fn usdm_stream_urls(streams: &[String]) -> Vec<(UsdmRoute, String)> {
    let mut out = Vec::new();
    for route in [UsdmRoute::Public, UsdmRoute::Market] {
        let names: Vec<&str> = streams
            .iter()
            .map(String::as_str)
            .filter(|s| usdm_route(s) == route)
            .collect();
        if !names.is_empty() {
            out.push((
                route,
                format!(
                    "{USDM_STREAM_HOST}/{}/stream?streams={}",
                    route.path(),
                    names.join("/")
                ),
            ));
        }
    }
    out
}

/// The private route for one listen key:
/// `wss://fstream.binance.com/private/ws?listenKey=<key>&events=ORDER_TRADE_UPDATE/...`.
pub fn usdm_private_url(listen_key: &str, events: &[&str]) -> String {
    let mut key = String::new();
    encode_into(&mut key, listen_key);
    if events.is_empty() {
        format!("{USDM_STREAM_HOST}/private/ws?listenKey={key}")
    } else {
        format!(
            "{USDM_STREAM_HOST}/private/ws?listenKey={key}&events={}",
            events.join("/")
        )
    }
}

fn usdm_tif(tif: TimeInForce) -> &'static str {
    match tif {
        TimeInForce::Gtc => "GTC",
        TimeInForce::Ioc => "IOC",
        TimeInForce::Fok => "FOK",
        TimeInForce::PostOnly => "GTX",
    }
}

/// Place a USD-M order. Market and limit (GTC/IOC/FOK; post-only is `GTX`) go to
/// `POST /fapi/v1/order` with `newOrderRespType=RESULT`; stop market, stop limit and take
/// profit go to the Algo Order API (`POST /fapi/v1/algoOrder`, `algoType=CONDITIONAL`,
/// `triggerPrice`), since the plain order endpoint no longer takes conditional types.
/// Both weigh 0 on the IP limit (they count against the order rate limits).
///
/// Not retry-safe: Binance rejects a repeated client id only while the first order is open.
pub fn usdm_place_order(spec: &OrderSpec) -> Result<RestRequest, BuildError> {
    check_client_id(&spec.client_order_id)?;
    let qty = positive("quantity", spec.qty)?;
    let post_only = spec.time_in_force == TimeInForce::PostOnly;
    let (algo, order_type, price, trigger, with_tif) = match spec.kind {
        OrderSpecKind::Market if post_only => {
            return Err(BuildError::Unsupported(
                "a market order cannot be post-only".into(),
            ));
        }
        OrderSpecKind::Market => (false, "MARKET", None, None, false),
        OrderSpecKind::Limit { price } => (false, "LIMIT", Some(price), None, true),
        OrderSpecKind::StopMarket { .. }
        | OrderSpecKind::StopLimit { .. }
        | OrderSpecKind::TakeProfitMarket { .. }
            if post_only =>
        {
            return Err(BuildError::Unsupported(
                "conditional orders take GTC/IOC/FOK, not post-only".into(),
            ));
        }
        OrderSpecKind::StopMarket { trigger } => (true, "STOP_MARKET", None, Some(trigger), false),
        OrderSpecKind::StopLimit { trigger, price } => {
            (true, "STOP", Some(price), Some(trigger), true)
        }
        OrderSpecKind::TakeProfitMarket { trigger } => {
            (true, "TAKE_PROFIT_MARKET", None, Some(trigger), false)
        }
    };
    let mut q = Vec::with_capacity(10);
    if algo {
        q.push(pair("algoType", "CONDITIONAL"));
    }
    q.push(pair("symbol", spec.symbol.as_str()));
    q.push(pair("side", side_text(spec.side)));
    q.push(pair("type", order_type));
    q.push(pair("quantity", qty));
    if let Some(p) = price {
        q.push(pair("price", positive("price", p)?));
    }
    if with_tif {
        q.push(pair("timeInForce", usdm_tif(spec.time_in_force)));
    }
    if let Some(t) = trigger {
        q.push(pair("triggerPrice", positive("trigger price", t)?));
    }
    if spec.reduce_only {
        q.push(pair("reduceOnly", "true"));
    }
    if !spec.client_order_id.is_empty() {
        let key = if algo {
            "clientAlgoId"
        } else {
            "newClientOrderId"
        };
        q.push(pair(key, spec.client_order_id.as_str()));
    }
    let path = if algo {
        "/fapi/v1/algoOrder"
    } else {
        q.push(pair("newOrderRespType", "RESULT"));
        "/fapi/v1/order"
    };
    Ok(RestRequest {
        retry_safe: false,
        ..signed(Method::Post, path, q, 0)
    })
}

/// `DELETE /fapi/v1/order` (weight 1).
pub fn usdm_cancel_order(symbol: &Symbol, order: OrderRef) -> Result<RestRequest, BuildError> {
    let mut q = vec![pair("symbol", symbol.as_str())];
    order_ref(&mut q, order, "origClientOrderId", "orderId")?;
    Ok(signed(Method::Delete, "/fapi/v1/order", q, 1))
}

/// `DELETE /fapi/v1/algoOrder` (weight 1): cancel a conditional order. The documented
/// parameter names are lowercase here: `algoid` or `clientalgoid`.
pub fn usdm_cancel_algo_order(order: OrderRef) -> Result<RestRequest, BuildError> {
    let mut q = Vec::new();
    order_ref(&mut q, order, "clientalgoid", "algoid")?;
    Ok(signed(Method::Delete, "/fapi/v1/algoOrder", q, 1))
}

/// `DELETE /fapi/v1/allOpenOrders` (weight 1): cancel all open (matching-engine) orders.
pub fn usdm_cancel_all(symbol: &Symbol) -> RestRequest {
    signed(
        Method::Delete,
        "/fapi/v1/allOpenOrders",
        vec![pair("symbol", symbol.as_str())],
        1,
    )
}

/// `DELETE /fapi/v1/algoOpenOrders` (weight 1): cancel all open conditional orders.
pub fn usdm_cancel_all_algo(symbol: &Symbol) -> RestRequest {
    signed(
        Method::Delete,
        "/fapi/v1/algoOpenOrders",
        vec![pair("symbol", symbol.as_str())],
        1,
    )
}

/// `POST /fapi/v1/countdownCancelAll` (weight 10): the dead-man switch. Every open order on
/// the symbol is canceled unless this is called again within `countdown_ms`; 0 stops the timer.
pub fn usdm_countdown_cancel_all(symbol: &Symbol, countdown_ms: u64) -> RestRequest {
    signed(
        Method::Post,
        "/fapi/v1/countdownCancelAll",
        vec![
            pair("symbol", symbol.as_str()),
            pair("countdownTime", countdown_ms.to_string()),
        ],
        10,
    )
}

/// `GET /fapi/v1/order` (weight 1).
pub fn usdm_query_order(symbol: &Symbol, order: OrderRef) -> Result<RestRequest, BuildError> {
    let mut q = vec![pair("symbol", symbol.as_str())];
    order_ref(&mut q, order, "origClientOrderId", "orderId")?;
    Ok(signed(Method::Get, "/fapi/v1/order", q, 1))
}

/// `GET /fapi/v1/openOrders` (weight 1 for one symbol, 40 for all).
pub fn usdm_open_orders(symbol: Option<&Symbol>) -> RestRequest {
    match symbol {
        Some(s) => signed(
            Method::Get,
            "/fapi/v1/openOrders",
            vec![pair("symbol", s.as_str())],
            1,
        ),
        None => signed(Method::Get, "/fapi/v1/openOrders", Vec::new(), 40),
    }
}

/// `GET /fapi/v3/positionRisk` (weight 5).
pub fn usdm_position_risk(symbol: Option<&Symbol>) -> RestRequest {
    let q = symbol
        .map(|s| vec![pair("symbol", s.as_str())])
        .unwrap_or_default();
    signed(Method::Get, "/fapi/v3/positionRisk", q, 5)
}

/// `GET /fapi/v3/balance` (weight 5).
pub fn usdm_balance() -> RestRequest {
    signed(Method::Get, "/fapi/v3/balance", Vec::new(), 5)
}

/// `GET /fapi/v1/exchangeInfo` (weight 1).
pub fn usdm_exchange_info() -> RestRequest {
    request(Method::Get, "/fapi/v1/exchangeInfo", Vec::new(), 1)
}

/// `GET /fapi/v1/klines`; weight by `limit` (venue default 500, max 1500): under 100 → 1,
/// under 500 → 2, up to 1000 → 5, above → 10.
pub fn usdm_klines(
    symbol: &Symbol,
    interval: &str,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
    limit: Option<u32>,
) -> Result<RestRequest, BuildError> {
    check_interval(interval, false)?;
    let weight = match limit.unwrap_or(500) {
        1..=99 => 1,
        100..=499 => 2,
        500..=1000 => 5,
        1001..=1500 => 10,
        _ => return Err(BuildError::Invalid("USD-M klines limit is 1..=1500".into())),
    };
    Ok(request(
        Method::Get,
        "/fapi/v1/klines",
        kline_query(symbol, interval, start_ms, end_ms, limit),
        weight,
    ))
}

/// `GET /fapi/v1/depth`; `limit` is one of 5, 10, 20, 50, 100, 500, 1000 (weights 2, 2, 2, 2,
/// 5, 10, 20).
pub fn usdm_depth(symbol: &Symbol, limit: u32) -> Result<RestRequest, BuildError> {
    let weight = match limit {
        5 | 10 | 20 | 50 => 2,
        100 => 5,
        500 => 10,
        1000 => 20,
        _ => {
            return Err(BuildError::Invalid(
                "USD-M depth limit is one of 5, 10, 20, 50, 100, 500, 1000".into(),
            ));
        }
    };
    Ok(request(
        Method::Get,
        "/fapi/v1/depth",
        vec![
            pair("symbol", symbol.as_str()),
            pair("limit", limit.to_string()),
        ],
        weight,
    ))
}

/// `POST /fapi/v1/listenKey` (weight 1). USER_STREAM security: the API key header only, no
/// signature (`signed` here means "authenticated").
pub fn usdm_listen_key_create() -> RestRequest {
    signed(Method::Post, "/fapi/v1/listenKey", Vec::new(), 1)
}

/// `PUT /fapi/v1/listenKey` (weight 1): extend the key by 60 minutes; send every 30 or so.
pub fn usdm_listen_key_keepalive() -> RestRequest {
    signed(Method::Put, "/fapi/v1/listenKey", Vec::new(), 1)
}
