//! Kraken WebSocket v2: channel messages and method responses. Input has been through
//! [`super::quote_numbers`], so every number is a string token here.

use std::borrow::Cow;

use keel_engine::candle::Candle;
use keel_engine::event::{BookTicker, Liquidity, Side, Trade};
use keel_engine::fixed::Fixed;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::rfc3339_to_ns;
use crate::model::{
    BalanceUpdate, Control, DecodeError, DepthUpdate, FillEvent, Level, OrderEvent, OrderState,
    OrderType, TimeInForce, VenueEvent, dec, dec_lossy, symbol,
};

/// The symbol of an execution update that does not repeat it. Kraken v2 execution updates are
/// deltas: after the first report of an order, updates (`new`, `canceled`, `filled`, ...) may
/// carry only `order_id`, the status and the changed fields. Such an `OrderEvent` has this
/// symbol, side `Buy`, type `Other` and zero quantities/prices; merge it into the order known by
/// `venue_order_id`. (No Kraken v2 symbol can collide: they all contain '/'.)
pub const UNREPORTED_SYMBOL: &str = "UNREPORTED";

#[derive(Deserialize)]
pub(super) struct Head<'a> {
    #[serde(borrow, default)]
    pub channel: Option<Cow<'a, str>>,
    #[serde(default)]
    pub method: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct Message<'a, T> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(default = "Vec::new")]
    data: Vec<T>,
}

fn parse<'a, T: Deserialize<'a>>(
    text: &'a str,
    channel: &str,
) -> Result<Message<'a, T>, DecodeError> {
    serde_json::from_str(text)
        .map_err(|e| DecodeError::malformed(format!("kraken {channel}"), e.to_string()))
}

fn is_snapshot(what: &str, kind: Option<&str>) -> Result<bool, DecodeError> {
    match kind {
        Some("snapshot") => Ok(true),
        Some("update") | None => Ok(false),
        Some(other) => Err(DecodeError::malformed(
            format!("{what} type"),
            format!("{other:?} is not snapshot/update"),
        )),
    }
}

fn opt_time(what: &str, t: Option<&str>) -> Result<i64, DecodeError> {
    t.map_or(Ok(0), |t| rfc3339_to_ns(what, t))
}

pub(super) fn decode_channel(text: &str, channel: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    match channel {
        // Sent every second on an idle connection: proof of life, like a pong.
        "heartbeat" => Ok(vec![VenueEvent::Control(Control::Pong)]),
        "status" => status(text),
        "ticker" => ticker(text),
        "trade" => trades(text),
        "book" => book(text),
        "ohlc" => ohlc(text),
        "executions" => executions(text),
        "balances" => balances(text),
        other => Err(DecodeError::Unsupported(format!("kraken {other} channel"))),
    }
}

// ---------------------------------------------------------------------------------------------
// Public channels

#[derive(Deserialize)]
struct StatusRow<'a> {
    #[serde(borrow)]
    system: Cow<'a, str>,
    #[serde(borrow, default)]
    version: Option<Cow<'a, str>>,
}

/// The `status` channel: `system` online / maintenance / cancel_only / post_only. Anything but
/// online is `ok: false`.
fn status(text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    let m: Message<StatusRow> = parse(text, "status")?;
    Ok(m.data
        .iter()
        .map(|s| {
            VenueEvent::Control(Control::Response {
                id: "status".into(),
                ok: s.system == "online",
                detail: format!(
                    "system {} version {}",
                    s.system,
                    s.version.as_deref().unwrap_or("?")
                ),
            })
        })
        .collect())
}

#[derive(Deserialize)]
struct TickerRow<'a> {
    symbol: &'a str,
    bid: &'a str,
    bid_qty: &'a str,
    ask: &'a str,
    ask_qty: &'a str,
    #[serde(borrow, default)]
    timestamp: Option<&'a str>,
}

fn ticker(text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    let m: Message<TickerRow> = parse(text, "ticker")?;
    m.data
        .iter()
        .map(|t| {
            Ok(VenueEvent::BookTicker(BookTicker {
                symbol: symbol("kraken ticker symbol", t.symbol)?,
                ts_event_ns: opt_time("kraken ticker timestamp", t.timestamp)?,
                bid: dec("kraken ticker bid", t.bid)?,
                bid_qty: dec("kraken ticker bid_qty", t.bid_qty)?,
                ask: dec("kraken ticker ask", t.ask)?,
                ask_qty: dec("kraken ticker ask_qty", t.ask_qty)?,
            }))
        })
        .collect()
}

#[derive(Deserialize)]
struct TradeRow<'a> {
    symbol: &'a str,
    side: &'a str,
    price: &'a str,
    qty: &'a str,
    trade_id: &'a str,
    timestamp: &'a str,
}

pub(super) fn side(what: &str, s: &str) -> Result<Side, DecodeError> {
    match s {
        "buy" | "b" => Ok(Side::Buy),
        "sell" | "s" => Ok(Side::Sell),
        other => Err(DecodeError::malformed(
            what,
            format!("{other:?} is not buy/sell"),
        )),
    }
}

pub(super) fn trade_id(what: &str, s: &str) -> Result<u64, DecodeError> {
    s.parse()
        .map_err(|_| DecodeError::malformed(what, format!("{s:?} is not an integer")))
}

fn trades(text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    let m: Message<TradeRow> = parse(text, "trade")?;
    m.data
        .iter()
        .map(|t| {
            Ok(VenueEvent::Trade(Trade {
                symbol: symbol("kraken trade symbol", t.symbol)?,
                ts_event_ns: rfc3339_to_ns("kraken trade timestamp", t.timestamp)?,
                price: dec("kraken trade price", t.price)?,
                qty: dec("kraken trade qty", t.qty)?,
                aggressor: side("kraken trade side", t.side)?,
                trade_id: trade_id("kraken trade trade_id", t.trade_id)?,
            }))
        })
        .collect()
}

#[derive(Deserialize)]
struct BookLevel<'a> {
    price: &'a str,
    qty: &'a str,
}

#[derive(Deserialize)]
struct BookRow<'a> {
    symbol: &'a str,
    #[serde(borrow, default)]
    bids: Vec<BookLevel<'a>>,
    #[serde(borrow, default)]
    asks: Vec<BookLevel<'a>>,
    #[serde(borrow, default)]
    checksum: Option<&'a str>,
    #[serde(borrow, default)]
    timestamp: Option<&'a str>,
}

fn levels(what: &str, rows: &[BookLevel]) -> Result<Vec<Level>, DecodeError> {
    rows.iter()
        .map(|l| Ok((dec(what, l.price)?, dec(what, l.qty)?)))
        .collect()
}

/// `book` → depth. Kraken v2 has no sequence numbers (ids are zero); verify the CRC32
/// `checksum` over the top ten levels instead, and resubscribe on a mismatch.
fn book(text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    let m: Message<BookRow> = parse(text, "book")?;
    let snapshot = is_snapshot("kraken book", m.kind.as_deref())?;
    m.data
        .iter()
        .map(|b| {
            let checksum = match b.checksum {
                Some(c) => Some(i64::from(c.parse::<u32>().map_err(|_| {
                    DecodeError::malformed("kraken book checksum", format!("{c:?} is not a CRC32"))
                })?)),
                None => None,
            };
            Ok(VenueEvent::Depth(DepthUpdate {
                symbol: symbol("kraken book symbol", b.symbol)?,
                ts_event_ns: opt_time("kraken book timestamp", b.timestamp)?,
                snapshot,
                first_update_id: 0,
                last_update_id: 0,
                prev_last_update_id: None,
                bids: levels("kraken book bids", &b.bids)?,
                asks: levels("kraken book asks", &b.asks)?,
                checksum,
            }))
        })
        .collect()
}

#[derive(Deserialize)]
struct OhlcRow<'a> {
    symbol: &'a str,
    interval: &'a str,
    interval_begin: &'a str,
    open: &'a str,
    high: &'a str,
    low: &'a str,
    close: &'a str,
    volume: &'a str,
}

/// `ohlc` → candles (`interval` in minutes). Kraken does not mark a bar closed: an update is the
/// in-progress bar (`closed: false`); in a snapshot every bar but each symbol's latest is
/// closed.
fn ohlc(text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    let m: Message<OhlcRow> = parse(text, "ohlc")?;
    let snapshot = is_snapshot("kraken ohlc", m.kind.as_deref())?;
    let mut candles = Vec::with_capacity(m.data.len());
    for o in &m.data {
        let minutes: i64 = o.interval.parse().map_err(|_| {
            DecodeError::malformed(
                "kraken ohlc interval",
                format!("{:?} is not minutes", o.interval),
            )
        })?;
        let interval_ns = minutes
            .checked_mul(60_000_000_000)
            .filter(|ns| *ns > 0)
            .ok_or_else(|| {
                DecodeError::malformed("kraken ohlc interval", format!("{minutes} out of range"))
            })?;
        candles.push(Candle {
            symbol: symbol("kraken ohlc symbol", o.symbol)?,
            open_time_ns: rfc3339_to_ns("kraken ohlc interval_begin", o.interval_begin)?,
            interval_ns,
            open: dec("kraken ohlc open", o.open)?,
            high: dec("kraken ohlc high", o.high)?,
            low: dec("kraken ohlc low", o.low)?,
            close: dec("kraken ohlc close", o.close)?,
            volume: dec_lossy("kraken ohlc volume", o.volume)?,
        });
    }
    let latest = |c: &Candle| {
        candles
            .iter()
            .filter(|o| o.symbol == c.symbol)
            .map(|o| o.open_time_ns)
            .max()
            .unwrap_or(c.open_time_ns)
    };
    Ok(candles
        .iter()
        .map(|c| VenueEvent::Candle {
            candle: *c,
            closed: snapshot && c.open_time_ns < latest(c),
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Private channels

#[derive(Deserialize)]
struct Fee<'a> {
    asset: &'a str,
    qty: &'a str,
}

#[derive(Deserialize)]
struct Triggers<'a> {
    #[serde(borrow, default)]
    price: Option<&'a str>,
    #[serde(borrow, default)]
    status: Option<&'a str>,
}

#[derive(Deserialize)]
struct ExecRow<'a> {
    exec_type: &'a str,
    order_id: &'a str,
    #[serde(borrow, default)]
    cl_ord_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    symbol: Option<&'a str>,
    #[serde(borrow, default)]
    side: Option<&'a str>,
    #[serde(borrow, default)]
    order_type: Option<&'a str>,
    #[serde(borrow, default)]
    order_qty: Option<&'a str>,
    #[serde(borrow, default)]
    limit_price: Option<&'a str>,
    #[serde(borrow, default)]
    stop_price: Option<&'a str>,
    #[serde(borrow, default)]
    triggers: Option<Triggers<'a>>,
    #[serde(borrow, default)]
    order_status: Option<&'a str>,
    #[serde(borrow, default)]
    cum_qty: Option<&'a str>,
    #[serde(borrow, default)]
    avg_price: Option<&'a str>,
    #[serde(borrow, default)]
    time_in_force: Option<&'a str>,
    #[serde(default)]
    post_only: Option<bool>,
    #[serde(default)]
    reduce_only: Option<bool>,
    timestamp: &'a str,
    #[serde(borrow, default)]
    exec_id: Option<&'a str>,
    #[serde(borrow, default)]
    last_qty: Option<&'a str>,
    #[serde(borrow, default)]
    last_price: Option<&'a str>,
    #[serde(borrow, default)]
    liquidity_ind: Option<&'a str>,
    #[serde(borrow, default)]
    fees: Vec<Fee<'a>>,
    #[serde(borrow, default)]
    reason: Option<Cow<'a, str>>,
}

/// Kraken order type names (REST `ordertype`, v2 `order_type`).
pub(super) fn order_type(t: &str) -> OrderType {
    match t {
        "market" => OrderType::Market,
        "limit" | "iceberg" => OrderType::Limit,
        "stop-loss" => OrderType::StopMarket,
        "stop-loss-limit" => OrderType::StopLimit,
        "take-profit" => OrderType::TakeProfitMarket,
        "take-profit-limit" => OrderType::TakeProfitLimit,
        "trailing-stop" | "trailing-stop-limit" => OrderType::TrailingStop,
        _ => OrderType::Other,
    }
}

fn opt_dec(what: &str, v: Option<&str>) -> Result<Fixed, DecodeError> {
    v.map_or(Ok(Fixed::ZERO), |v| dec(what, v))
}

fn opt_dec_lossy(what: &str, v: Option<&str>) -> Result<Fixed, DecodeError> {
    v.map_or(Ok(Fixed::ZERO), |v| dec_lossy(what, v))
}

/// `order_status` when the update carries it; otherwise what `exec_type` implies.
fn exec_state(e: &ExecRow) -> Result<OrderState, DecodeError> {
    let status = e.order_status.unwrap_or(match e.exec_type {
        "filled" => "filled",
        "canceled" => "canceled",
        "expired" => "expired",
        "trade" => "partially_filled",
        _ => "new",
    });
    let untriggered = e
        .triggers
        .as_ref()
        .and_then(|t| t.status)
        .is_some_and(|s| s == "untriggered");
    Ok(match status {
        "pending_new" | "new" if untriggered => OrderState::Untriggered,
        "pending_new" | "new" => OrderState::New,
        "partially_filled" => OrderState::PartiallyFilled,
        "filled" => OrderState::Filled,
        "canceled" => OrderState::Canceled,
        "expired" => OrderState::Expired,
        "triggered" => OrderState::Triggered,
        other => {
            return Err(DecodeError::malformed(
                "kraken executions order_status",
                format!("unknown status {other:?}"),
            ));
        }
    })
}

fn fill(e: &ExecRow, ts: i64) -> Result<FillEvent, DecodeError> {
    let need = |field: &str, v: Option<&str>| -> Result<String, DecodeError> {
        v.map(str::to_string).ok_or_else(|| {
            DecodeError::malformed(format!("kraken executions trade {field}"), "missing")
        })
    };
    let sym = need("symbol", e.symbol)?;
    let side_text = need("side", e.side)?;
    // One fee per fill; Kraken lists it as [{asset, qty}] and charges it in one asset.
    let mut fee = Fixed::ZERO;
    let mut fee_asset: Option<&str> = None;
    for f in &e.fees {
        if fee_asset.is_some_and(|a| a != f.asset) {
            return Err(DecodeError::malformed(
                "kraken executions fees",
                "fees in more than one asset",
            ));
        }
        fee_asset = Some(f.asset);
        fee = fee
            .checked_add(dec_lossy("kraken executions fees qty", f.qty)?)
            .ok_or_else(|| DecodeError::malformed("kraken executions fees qty", "overflow"))?;
    }
    let liquidity = match e.liquidity_ind {
        Some("m") => Liquidity::Maker,
        Some("t") | None => Liquidity::Taker,
        Some(other) => {
            return Err(DecodeError::malformed(
                "kraken executions liquidity_ind",
                format!("{other:?} is not m/t"),
            ));
        }
    };
    Ok(FillEvent {
        symbol: symbol("kraken executions symbol", &sym)?,
        client_order_id: e.cl_ord_id.as_deref().unwrap_or("").to_string(),
        venue_order_id: e.order_id.to_string(),
        trade_id: need("exec_id", e.exec_id)?,
        side: side("kraken executions side", &side_text)?,
        price: dec(
            "kraken executions last_price",
            &need("last_price", e.last_price)?,
        )?,
        qty: dec("kraken executions last_qty", &need("last_qty", e.last_qty)?)?,
        fee,
        fee_asset: fee_asset.unwrap_or("").to_string(),
        liquidity,
        ts_event_ns: ts,
    })
}

fn exec_events(e: &ExecRow) -> Result<Vec<VenueEvent>, DecodeError> {
    let ts = rfc3339_to_ns("kraken executions timestamp", e.timestamp)?;
    let trigger = match e.triggers.as_ref().and_then(|t| t.price) {
        Some(p) => dec("kraken executions triggers.price", p)?,
        None => opt_dec("kraken executions stop_price", e.stop_price)?,
    };
    let time_in_force = if e.post_only == Some(true) {
        Some(TimeInForce::PostOnly)
    } else {
        match e.time_in_force.map(str::to_ascii_lowercase).as_deref() {
            Some("gtc") | Some("gtd") => Some(TimeInForce::Gtc),
            Some("ioc") => Some(TimeInForce::Ioc),
            Some("fok") => Some(TimeInForce::Fok),
            _ => None,
        }
    };
    let order = OrderEvent {
        symbol: symbol(
            "kraken executions symbol",
            e.symbol.unwrap_or(UNREPORTED_SYMBOL),
        )?,
        client_order_id: e.cl_ord_id.as_deref().unwrap_or("").to_string(),
        venue_order_id: e.order_id.to_string(),
        state: exec_state(e)?,
        side: match e.side {
            Some(s) => side("kraken executions side", s)?,
            None => Side::Buy,
        },
        order_type: e.order_type.map_or(OrderType::Other, order_type),
        time_in_force,
        price: opt_dec("kraken executions limit_price", e.limit_price)?,
        trigger_price: trigger,
        qty: opt_dec("kraken executions order_qty", e.order_qty)?,
        filled_qty: opt_dec("kraken executions cum_qty", e.cum_qty)?,
        avg_price: opt_dec_lossy("kraken executions avg_price", e.avg_price)?,
        reduce_only: e.reduce_only == Some(true),
        reason: e.reason.as_deref().unwrap_or("").to_string(),
        ts_event_ns: ts,
    };
    let mut out = vec![VenueEvent::Order(order)];
    if e.exec_type == "trade" {
        out.push(VenueEvent::Fill(fill(e, ts)?));
    }
    Ok(out)
}

/// `executions` → an `OrderEvent` per report, plus a `FillEvent` for `exec_type` trade (fee from
/// `fees[]`, maker/taker from `liquidity_ind`). See [`UNREPORTED_SYMBOL`] for sparse updates.
fn executions(text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    let m: Message<ExecRow> = parse(text, "executions")?;
    let mut out = Vec::with_capacity(m.data.len());
    for e in &m.data {
        out.extend(exec_events(e)?);
    }
    Ok(out)
}

#[derive(Deserialize)]
struct BalanceRow<'a> {
    asset: &'a str,
    balance: &'a str,
    #[serde(borrow, default)]
    timestamp: Option<&'a str>,
}

/// `balances` → the asset's total balance as `free`. Kraken's channel does not split holds
/// out, so `locked` is zero; the snapshot has no timestamp (0).
fn balances(text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    let m: Message<BalanceRow> = parse(text, "balances")?;
    m.data
        .iter()
        .map(|b| {
            Ok(VenueEvent::Balance(BalanceUpdate {
                asset: b.asset.to_string(),
                free: dec_lossy("kraken balances balance", b.balance)?,
                locked: Fixed::ZERO,
                ts_event_ns: opt_time("kraken balances timestamp", b.timestamp)?,
            }))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Method responses

fn text_of(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

/// `channel:symbol` (or the channel alone), how keel names a Kraken subscription.
fn topic(result: Option<&Value>) -> String {
    let Some(r) = result.and_then(Value::as_object) else {
        return String::new();
    };
    let channel = text_of(r.get("channel"));
    let sym = text_of(r.get("symbol"));
    if sym.is_empty() {
        channel
    } else {
        format!("{channel}:{sym}")
    }
}

/// The ids an order-method result names (`order_id`, else `cl_ord_id`), or the first failure of
/// a batch.
fn result_detail(result: Option<&Value>) -> (bool, String) {
    let Some(r) = result else {
        return (true, String::new());
    };
    let one = |o: &Map<String, Value>| {
        let id = text_of(o.get("order_id"));
        if id.is_empty() {
            text_of(o.get("cl_ord_id"))
        } else {
            id
        }
    };
    match r {
        Value::Object(o) => match o.get("orders").and_then(Value::as_array) {
            Some(orders) => {
                let items: Vec<&Map<String, Value>> =
                    orders.iter().filter_map(Value::as_object).collect();
                match items
                    .iter()
                    .find(|o| matches!(o.get("success"), Some(Value::Bool(false))))
                {
                    Some(f) => (
                        false,
                        format!(
                            "{}: {}",
                            text_of(f.get("cl_ord_id")),
                            text_of(f.get("error"))
                        ),
                    ),
                    None => (
                        true,
                        items.iter().map(|o| one(o)).collect::<Vec<_>>().join(","),
                    ),
                }
            }
            None => (true, one(o)),
        },
        Value::Array(items) => (
            true,
            items
                .iter()
                .filter_map(Value::as_object)
                .map(one)
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => (true, String::new()),
    }
}

pub(super) fn decode_method_response(
    method: &str,
    obj: &Map<String, Value>,
) -> Result<Vec<VenueEvent>, DecodeError> {
    let success = matches!(obj.get("success"), Some(Value::Bool(true)));
    let error = text_of(obj.get("error"));
    let control = match method {
        "pong" => Control::Pong,
        "subscribe" if success => Control::Subscribed {
            topic: topic(obj.get("result")),
        },
        "subscribe" => Control::SubscribeFailed {
            topic: topic(obj.get("result")),
            reason: error,
        },
        _ => {
            let (items_ok, detail) = result_detail(obj.get("result"));
            let ok = success && items_ok;
            Control::Response {
                id: text_of(obj.get("req_id")),
                ok,
                detail: if success && items_ok {
                    format!("{method} {detail}").trim().to_string()
                } else if !error.is_empty() {
                    error
                } else {
                    detail
                },
            }
        }
    };
    Ok(vec![VenueEvent::Control(control)])
}
