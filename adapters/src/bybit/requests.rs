//! Request builders: unsigned REST requests with JSON bodies, WebSocket messages, endpoint URLs.
//!
//! Pure: timestamps and ids are parameters. Signing (`X-BAPI-*` headers over
//! `timestamp + api_key + recv_window + query-or-body`) is the client's job with `sign`.
//!
//! Weights: Bybit limits per endpoint and UID in requests per second (e.g. `/v5/order/create`
//! 10/s linear, 20/s spot) plus a per-IP limit over all requests, so every request counts 1.

use keel_engine::candle::Interval;
use keel_engine::event::Side;
use keel_engine::fixed::Fixed;
use keel_engine::symbol::Symbol;

use super::util::{JsonObj, json_str_array, push_json_str};
use crate::model::{Method, OrderSpec, OrderSpecKind, RestRequest, TimeInForce};

/// The Bybit product categories keel trades.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    Spot,
    /// USDT (and USDC) perpetuals and futures, quantities in the base coin.
    Linear,
}

impl Category {
    /// The `category` value Bybit expects.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Spot => "spot",
            Category::Linear => "linear",
        }
    }
}

/// Bybit's production or test environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    Mainnet,
    Testnet,
}

/// REST base URL.
pub fn rest_base_url(net: Network) -> &'static str {
    match net {
        Network::Mainnet => "https://api.bybit.com",
        Network::Testnet => "https://api-testnet.bybit.com",
    }
}

/// Public market-data stream for a category.
pub fn ws_public_url(net: Network, category: Category) -> &'static str {
    match (net, category) {
        (Network::Mainnet, Category::Spot) => "wss://stream.bybit.com/v5/public/spot",
        (Network::Mainnet, Category::Linear) => "wss://stream.bybit.com/v5/public/linear",
        (Network::Testnet, Category::Spot) => "wss://stream-testnet.bybit.com/v5/public/spot",
        (Network::Testnet, Category::Linear) => "wss://stream-testnet.bybit.com/v5/public/linear",
    }
}

/// Private stream (order, execution, position, wallet, dcp); needs `op=auth` first.
pub fn ws_private_url(net: Network) -> &'static str {
    match net {
        Network::Mainnet => "wss://stream.bybit.com/v5/private",
        Network::Testnet => "wss://stream-testnet.bybit.com/v5/private",
    }
}

/// Order-entry stream (`order.create`, `order.cancel`, ...); needs `op=auth` first.
pub fn ws_trade_url(net: Network) -> &'static str {
    match net {
        Network::Mainnet => "wss://stream.bybit.com/v5/trade",
        Network::Testnet => "wss://stream-testnet.bybit.com/v5/trade",
    }
}

/// Which order a cancel or query is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderRef<'a> {
    /// keel's client order id (Bybit `orderLinkId`).
    Client(&'a str),
    /// Bybit `orderId`.
    Venue(&'a str),
}

impl OrderRef<'_> {
    fn field(self) -> (&'static str, String) {
        match self {
            OrderRef::Client(id) => ("orderLinkId", id.to_string()),
            OrderRef::Venue(id) => ("orderId", id.to_string()),
        }
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

fn get(path: &str, query: Vec<(&str, String)>, signed: bool) -> RestRequest {
    RestRequest {
        method: Method::Get,
        path: path.to_string(),
        query: query.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        body: None,
        signed,
        weight: 1,
        retry_safe: true,
    }
}

/// Bybit: "A max of 36 characters. Combinations of numbers, letters (upper and lower cases),
/// dashes, and underscores are supported."
fn check_link_id(id: &str) -> Result<(), String> {
    if id.len() > 36 {
        return Err(format!(
            "client order id {id:?} is longer than 36 characters"
        ));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "client order id {id:?} may hold only letters, digits, '-' and '_'"
        ));
    }
    Ok(())
}

fn positive(what: &str, v: Fixed) -> Result<String, String> {
    if v > Fixed::ZERO {
        Ok(v.to_string())
    } else {
        Err(format!("{what} must be positive, got {v}"))
    }
}

/// The `/v5/order/create` body (also the `args[0]` of a WebSocket `order.create`).
///
/// - Spot market orders send `marketUnit=baseCoin`: Bybit's default for a spot market *buy* is a
///   quote amount, keel's quantities are always base.
/// - Spot orders send `isLeverage=0` (never borrow) and `orderFilter` `Order`, or `StopOrder`
///   for triggered orders (assets are reserved only once triggered). Spot has no reduce-only.
/// - Linear orders send `positionIdx=0` (one-way mode) and `reduceOnly`; triggered orders send
///   `triggerDirection`: 1 = fires when the price rises to the trigger (buy stop, sell take
///   profit), 2 = when it falls (sell stop, buy take profit).
/// - `timeInForce` is sent for limit orders only; Bybit always runs market orders as IOC, so a
///   post-only market order is refused here rather than silently changed.
fn order_body(category: Category, spec: &OrderSpec) -> Result<String, String> {
    check_link_id(&spec.client_order_id)?;
    let qty = positive("quantity", spec.qty)?;
    // (orderType, limit price, trigger price, is take-profit)
    let (order_type, price, trigger, take_profit) = match spec.kind {
        OrderSpecKind::Market => ("Market", None, None, false),
        OrderSpecKind::Limit { price } => ("Limit", Some(price), None, false),
        OrderSpecKind::StopMarket { trigger } => ("Market", None, Some(trigger), false),
        OrderSpecKind::StopLimit { trigger, price } => ("Limit", Some(price), Some(trigger), false),
        OrderSpecKind::TakeProfitMarket { trigger } => ("Market", None, Some(trigger), true),
    };
    let market = order_type == "Market";
    if market && spec.time_in_force == TimeInForce::PostOnly {
        return Err("a market order cannot be post-only".into());
    }
    if category == Category::Spot && spec.reduce_only {
        return Err("Bybit spot has no reduce-only orders".into());
    }
    let side = match spec.side {
        Side::Buy => "Buy",
        Side::Sell => "Sell",
    };
    let mut o = JsonObj::new()
        .str("category", category.as_str())
        .str("symbol", spec.symbol.as_str())
        .str("side", side)
        .str("orderType", order_type)
        .str("qty", &qty);
    if market && category == Category::Spot {
        o = o.str("marketUnit", "baseCoin");
    }
    if let Some(p) = price {
        o = o.str("price", &positive("limit price", p)?);
    }
    if let Some(t) = trigger {
        let t = positive("trigger price", t)?;
        if category == Category::Linear {
            let rises = (spec.side == Side::Buy) != take_profit;
            o = o.int("triggerDirection", if rises { 1 } else { 2 });
        }
        o = o.str("triggerPrice", &t);
    }
    if category == Category::Spot {
        o = o.str(
            "orderFilter",
            if trigger.is_some() {
                "StopOrder"
            } else {
                "Order"
            },
        );
    }
    if !market {
        let tif = match spec.time_in_force {
            TimeInForce::Gtc => "GTC",
            TimeInForce::Ioc => "IOC",
            TimeInForce::Fok => "FOK",
            TimeInForce::PostOnly => "PostOnly",
        };
        o = o.str("timeInForce", tif);
    }
    if category == Category::Linear {
        o = o.int("positionIdx", 0);
    }
    if !spec.client_order_id.is_empty() {
        o = o.str("orderLinkId", &spec.client_order_id);
    }
    o = match category {
        Category::Linear => o.bool("reduceOnly", spec.reduce_only),
        Category::Spot => o.int("isLeverage", 0),
    };
    Ok(o.finish())
}

/// `POST /v5/order/create`. Retry-safe when it carries a client order id: Bybit refuses a
/// second order with the same `orderLinkId` (110072), so a retry cannot double the order.
pub fn place_order(category: Category, spec: &OrderSpec) -> Result<RestRequest, String> {
    let body = order_body(category, spec)?;
    Ok(post(
        "/v5/order/create",
        body,
        !spec.client_order_id.is_empty(),
    ))
}

fn cancel_body(
    category: Category,
    symbol: &Symbol,
    order: OrderRef<'_>,
    conditional: bool,
) -> String {
    let (key, id) = order.field();
    let mut o = JsonObj::new()
        .str("category", category.as_str())
        .str("symbol", symbol.as_str())
        .str(key, &id);
    // Spot cancels look among plain orders unless told otherwise (`orderFilter`).
    if category == Category::Spot && conditional {
        o = o.str("orderFilter", "StopOrder");
    }
    o.finish()
}

/// `POST /v5/order/cancel`. `conditional` must be true to cancel a spot stop order (placed with
/// `orderFilter=StopOrder`); it is ignored for linear.
pub fn cancel_order(
    category: Category,
    symbol: &Symbol,
    order: OrderRef<'_>,
    conditional: bool,
) -> RestRequest {
    post(
        "/v5/order/cancel",
        cancel_body(category, symbol, order, conditional),
        true,
    )
}

/// `POST /v5/order/cancel-all`. Linear: one request (all order kinds; without a symbol, every
/// USDT-settled order). Spot cancels one `orderFilter` per request, so spot gets two: plain
/// orders and stop orders (keel places no spot TP/SL or OCO orders).
pub fn cancel_all(category: Category, symbol: Option<&Symbol>) -> Vec<RestRequest> {
    let base = |filter: Option<&str>| {
        let mut o = JsonObj::new().str("category", category.as_str());
        o = match (symbol, category) {
            (Some(s), _) => o.str("symbol", s.as_str()),
            (None, Category::Linear) => o.str("settleCoin", "USDT"),
            (None, Category::Spot) => o,
        };
        if let Some(f) = filter {
            o = o.str("orderFilter", f);
        }
        post("/v5/order/cancel-all", o.finish(), true)
    };
    match category {
        Category::Linear => vec![base(None)],
        Category::Spot => vec![base(Some("Order")), base(Some("StopOrder"))],
    }
}

fn scope(category: Category, symbol: Option<&Symbol>) -> Vec<(&'static str, String)> {
    let mut q = vec![("category", category.as_str().to_string())];
    match (symbol, category) {
        (Some(s), _) => q.push(("symbol", s.as_str().to_string())),
        // Linear queries need a symbol, base coin or settle coin.
        (None, Category::Linear) => q.push(("settleCoin", "USDT".to_string())),
        (None, Category::Spot) => {}
    }
    q
}

/// `GET /v5/order/realtime` for open orders (all kinds, 50 a page; follow `nextPageCursor`).
pub fn open_orders(
    category: Category,
    symbol: Option<&Symbol>,
    cursor: Option<&str>,
) -> RestRequest {
    let mut q = scope(category, symbol);
    q.push(("openOnly", "0".into()));
    q.push(("limit", "50".into()));
    if let Some(c) = cursor {
        q.push(("cursor", c.to_string()));
    }
    get("/v5/order/realtime", q, true)
}

/// `GET /v5/order/realtime` for one order by id. Bybit also finds recently closed orders this
/// way (the last 500); older ones need [`order_history`].
pub fn query_order(category: Category, symbol: &Symbol, order: OrderRef<'_>) -> RestRequest {
    let (key, id) = order.field();
    let q = vec![
        ("category", category.as_str().to_string()),
        ("symbol", symbol.as_str().to_string()),
        (key, id),
    ];
    get("/v5/order/realtime", q, true)
}

/// `GET /v5/order/history` (50 a page, newest first).
pub fn order_history(
    category: Category,
    symbol: Option<&Symbol>,
    cursor: Option<&str>,
) -> RestRequest {
    let mut q = vec![("category", category.as_str().to_string())];
    if let Some(s) = symbol {
        q.push(("symbol", s.as_str().to_string()));
    }
    q.push(("limit", "50".into()));
    if let Some(c) = cursor {
        q.push(("cursor", c.to_string()));
    }
    get("/v5/order/history", q, true)
}

/// `GET /v5/execution/list` (fills; 100 a page) from `start_ms` when given.
pub fn executions(
    category: Category,
    symbol: Option<&Symbol>,
    start_ms: Option<i64>,
    cursor: Option<&str>,
) -> RestRequest {
    let mut q = vec![("category", category.as_str().to_string())];
    if let Some(s) = symbol {
        q.push(("symbol", s.as_str().to_string()));
    }
    if let Some(t) = start_ms {
        q.push(("startTime", t.to_string()));
    }
    q.push(("limit", "100".into()));
    if let Some(c) = cursor {
        q.push(("cursor", c.to_string()));
    }
    get("/v5/execution/list", q, true)
}

/// `GET /v5/account/wallet-balance` of the unified trading account.
pub fn wallet_balance() -> RestRequest {
    get(
        "/v5/account/wallet-balance",
        vec![("accountType", "UNIFIED".to_string())],
        true,
    )
}

/// `GET /v5/position/list` for linear (one symbol, else every USDT-settled position; 200 a page).
pub fn positions(symbol: Option<&Symbol>, cursor: Option<&str>) -> RestRequest {
    let mut q = scope(Category::Linear, symbol);
    q.push(("limit", "200".into()));
    if let Some(c) = cursor {
        q.push(("cursor", c.to_string()));
    }
    get("/v5/position/list", q, true)
}

/// `GET /v5/market/instruments-info`. Linear pages (1000 a page, follow `nextPageCursor`: there
/// are more than 500 linear symbols); spot does not paginate.
pub fn instruments_info(
    category: Category,
    symbol: Option<&Symbol>,
    cursor: Option<&str>,
) -> RestRequest {
    let mut q = vec![("category", category.as_str().to_string())];
    if let Some(s) = symbol {
        q.push(("symbol", s.as_str().to_string()));
    }
    if category == Category::Linear {
        q.push(("limit", "1000".into()));
        if let Some(c) = cursor {
            q.push(("cursor", c.to_string()));
        }
    }
    get("/v5/market/instruments-info", q, false)
}

/// Bybit's code for a keel bar interval (`1`..`720` minutes, `D`, `W`), `None` when Bybit has
/// no such interval.
pub fn kline_interval(interval: Interval) -> Option<&'static str> {
    const MIN: i64 = 60_000_000_000;
    Some(match interval.ns {
        ns if ns == MIN => "1",
        ns if ns == 3 * MIN => "3",
        ns if ns == 5 * MIN => "5",
        ns if ns == 15 * MIN => "15",
        ns if ns == 30 * MIN => "30",
        ns if ns == 60 * MIN => "60",
        ns if ns == 120 * MIN => "120",
        ns if ns == 240 * MIN => "240",
        ns if ns == 360 * MIN => "360",
        ns if ns == 720 * MIN => "720",
        ns if ns == 1_440 * MIN => "D",
        ns if ns == 7 * 1_440 * MIN => "W",
        _ => return None,
    })
}

/// `GET /v5/market/kline` for `[start_ms, end_ms]`, at most `limit` bars (clamped to 1..=1000).
/// Bybit returns the newest bars of the range first; to page backwards, ask again with `end_ms`
/// just before the oldest bar received. Decode the answer with `bybit::parse_klines`.
pub fn klines(
    category: Category,
    symbol: &Symbol,
    interval: Interval,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
    limit: u32,
) -> Result<RestRequest, String> {
    let code = kline_interval(interval)
        .ok_or_else(|| format!("Bybit has no {} ns kline interval", interval.ns))?;
    let mut q = vec![
        ("category", category.as_str().to_string()),
        ("symbol", symbol.as_str().to_string()),
        ("interval", code.to_string()),
    ];
    if let Some(s) = start_ms {
        q.push(("start", s.to_string()));
    }
    if let Some(e) = end_ms {
        q.push(("end", e.to_string()));
    }
    q.push(("limit", limit.clamp(1, 1000).to_string()));
    Ok(get("/v5/market/kline", q, false))
}

/// `GET /v5/market/orderbook` with `limit` levels a side (spot 1..=200, linear 1..=500).
pub fn orderbook(category: Category, symbol: &Symbol, limit: u32) -> RestRequest {
    let max = match category {
        Category::Spot => 200,
        Category::Linear => 500,
    };
    let q = vec![
        ("category", category.as_str().to_string()),
        ("symbol", symbol.as_str().to_string()),
        ("limit", limit.clamp(1, max).to_string()),
    ];
    get("/v5/market/orderbook", q, false)
}

/// Which orders the disconnect-cancel-all (dead-man switch) covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DcpProduct {
    Options,
    /// Perpetuals and futures (linear and inverse).
    Derivatives,
    Spot,
}

impl DcpProduct {
    /// The `product` value Bybit expects.
    pub fn as_str(self) -> &'static str {
        match self {
            DcpProduct::Options => "OPTIONS",
            DcpProduct::Derivatives => "DERIVATIVES",
            DcpProduct::Spot => "SPOT",
        }
    }

    /// The product that covers a category's orders.
    pub fn for_category(category: Category) -> DcpProduct {
        match category {
            Category::Spot => DcpProduct::Spot,
            Category::Linear => DcpProduct::Derivatives,
        }
    }
}

/// `POST /v5/order/disconnected-cancel-all`: cancel every order of `product` once no private
/// connection subscribed to the DCP topic ([`dcp_topic`]) has pinged for `time_window_s`
/// seconds (Bybit accepts 3..=300). DCP must first be enabled for the account by Bybit, and
/// the setting takes about 10 s to apply. Bybit's default product is `OPTIONS`, so it is always
/// sent.
pub fn set_dcp(product: DcpProduct, time_window_s: u32) -> Result<RestRequest, String> {
    if !(3..=300).contains(&time_window_s) {
        return Err(format!(
            "DCP time window must be 3..=300 s, got {time_window_s}"
        ));
    }
    let body = JsonObj::new()
        .str("product", product.as_str())
        .int("timeWindow", i64::from(time_window_s))
        .finish();
    Ok(post("/v5/order/disconnected-cancel-all", body, true))
}

/// Private topic whose subscribers keep the DCP timer alive (`dcp.spot`, `dcp.future`; the
/// older plain `dcp` is deprecated).
pub fn dcp_topic(category: Category) -> &'static str {
    match category {
        Category::Spot => "dcp.spot",
        Category::Linear => "dcp.future",
    }
}

/// Private topic: order updates.
pub const TOPIC_ORDER: &str = "order";
/// Private topic: fills (and funding / settlement executions).
pub const TOPIC_EXECUTION: &str = "execution";
/// Lower-latency fills without fees (linear/inverse only).
pub const TOPIC_EXECUTION_FAST: &str = "execution.fast";
/// Private topic: positions.
pub const TOPIC_POSITION: &str = "position";
/// Private topic: unified-account balances.
pub const TOPIC_WALLET: &str = "wallet";

/// `kline.{interval}.{symbol}`, `None` when Bybit has no such interval.
pub fn topic_kline(interval: Interval, symbol: &Symbol) -> Option<String> {
    kline_interval(interval).map(|i| format!("kline.{i}.{}", symbol.as_str()))
}

/// `publicTrade.{symbol}`.
pub fn topic_public_trade(symbol: &Symbol) -> String {
    format!("publicTrade.{}", symbol.as_str())
}

/// `orderbook.{depth}.{symbol}` (spot depths 1, 50, 200; linear 1, 50, 200, 500).
pub fn topic_orderbook(depth: u32, symbol: &Symbol) -> String {
    format!("orderbook.{depth}.{}", symbol.as_str())
}

/// `tickers.{symbol}` (linear: best bid/ask and funding).
pub fn topic_tickers(symbol: &Symbol) -> String {
    format!("tickers.{}", symbol.as_str())
}

/// `{"req_id":..,"op":"subscribe","args":[topics]}`. The reply echoes only `req_id`, which is
/// what `Control::Subscribed::topic` carries.
pub fn ws_subscribe(req_id: &str, topics: &[&str]) -> String {
    JsonObj::new()
        .str("req_id", req_id)
        .str("op", "subscribe")
        .raw("args", &json_str_array(topics))
        .finish()
}

/// `{"req_id":..,"op":"unsubscribe","args":[topics]}`.
pub fn ws_unsubscribe(req_id: &str, topics: &[&str]) -> String {
    JsonObj::new()
        .str("req_id", req_id)
        .str("op", "unsubscribe")
        .raw("args", &json_str_array(topics))
        .finish()
}

/// Heartbeat; Bybit recommends one every 20 s.
pub fn ws_ping(req_id: &str) -> String {
    JsonObj::new()
        .str("req_id", req_id)
        .str("op", "ping")
        .finish()
}

/// What the private / order-entry auth signature covers: hex HMAC-SHA256 with the API secret
/// of `"GET/realtime" + expires` (expires: epoch ms in the near future).
pub fn ws_auth_payload(expires_ms: i64) -> String {
    format!("GET/realtime{expires_ms}")
}

/// `{"op":"auth","args":[api_key, expires, signature]}`.
pub fn ws_auth(api_key: &str, expires_ms: i64, signature_hex: &str) -> String {
    let mut args = String::from("[");
    push_json_str(&mut args, api_key);
    args.push_str(&format!(",{expires_ms},"));
    push_json_str(&mut args, signature_hex);
    args.push(']');
    JsonObj::new().str("op", "auth").raw("args", &args).finish()
}

fn ws_trade_msg(
    req_id: &str,
    timestamp_ms: i64,
    recv_window_ms: u32,
    op: &str,
    arg: &str,
) -> String {
    let header = JsonObj::new()
        .str("X-BAPI-TIMESTAMP", &timestamp_ms.to_string())
        .str("X-BAPI-RECV-WINDOW", &recv_window_ms.to_string())
        .finish();
    JsonObj::new()
        .str("reqId", req_id)
        .raw("header", &header)
        .str("op", op)
        .raw("args", &format!("[{arg}]"))
        .finish()
}

/// Order-entry stream `order.create`, same order fields as [`place_order`]. The reply decodes
/// to `Control::Response` with `id` = `req_id`.
pub fn ws_order_create(
    req_id: &str,
    timestamp_ms: i64,
    recv_window_ms: u32,
    category: Category,
    spec: &OrderSpec,
) -> Result<String, String> {
    let body = order_body(category, spec)?;
    Ok(ws_trade_msg(
        req_id,
        timestamp_ms,
        recv_window_ms,
        "order.create",
        &body,
    ))
}

/// Order-entry stream `order.cancel`, same fields as [`cancel_order`].
pub fn ws_order_cancel(
    req_id: &str,
    timestamp_ms: i64,
    recv_window_ms: u32,
    symbol: &Symbol,
    category: Category,
    order: OrderRef<'_>,
) -> String {
    ws_trade_msg(
        req_id,
        timestamp_ms,
        recv_window_ms,
        "order.cancel",
        &cancel_body(category, symbol, order, false),
    )
}
