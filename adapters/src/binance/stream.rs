//! WebSocket stream events (market data and user data), decoded straight into typed structs
//! that borrow from the frame.

use std::borrow::Cow;

use keel_engine::candle::{Candle, Interval};
use keel_engine::event::{BookTicker, Liquidity, Side, Trade};
use keel_engine::fixed::Fixed;
use keel_engine::symbol::Symbol;
use serde::Deserialize;

use super::common::{
    Market, algo_state, avg_price, is_partial_depth_stream, json_err, locked, ms, num, num_lossy,
    opt_num, opt_num_lossy, order_state, order_type, side, stream_symbol, sym, time_in_force,
};
use crate::model::{
    BalanceUpdate, Control, DecodeError, DepthUpdate, FillEvent, FundingRate, Level, OrderEvent,
    PositionUpdate, VenueEvent,
};

/// Where the event sits in the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Wrap {
    /// The frame is the event.
    None,
    /// Combined stream: `{"stream":..,"data":<event>}`.
    Data,
    /// WebSocket API user data: `{"subscriptionId":..,"event":<event>}`.
    Event,
}

#[derive(Deserialize)]
struct DataEnv<T> {
    data: T,
}

#[derive(Deserialize)]
struct EventEnv<T> {
    event: T,
}

fn typed<'a, T: Deserialize<'a>>(text: &'a str, wrap: Wrap, kind: &str) -> Result<T, DecodeError> {
    match wrap {
        Wrap::None => serde_json::from_str::<T>(text),
        Wrap::Data => serde_json::from_str::<DataEnv<T>>(text).map(|e| e.data),
        Wrap::Event => serde_json::from_str::<EventEnv<T>>(text).map(|e| e.event),
    }
    .map_err(|e| json_err(kind, e))
}

/// Decode one event whose type (`e`) the first pass found.
pub(super) fn decode_event(
    market: Market,
    text: &str,
    wrap: Wrap,
    e: &str,
    stream: Option<&str>,
) -> Result<Vec<VenueEvent>, DecodeError> {
    let spot_only = |f: fn(&str, Wrap) -> Result<Vec<VenueEvent>, DecodeError>| match market {
        Market::Spot => f(text, wrap),
        Market::Usdm => Err(DecodeError::Unsupported(format!(
            "binance-usdm {e} (a spot user-data event)"
        ))),
    };
    let usdm_only = |f: fn(&str, Wrap) -> Result<Vec<VenueEvent>, DecodeError>| match market {
        Market::Usdm => f(text, wrap),
        Market::Spot => Err(DecodeError::Unsupported(format!(
            "binance-spot {e} (a USD-M user-data event)"
        ))),
    };
    match e {
        "kline" => kline(text, wrap),
        "trade" => trade(text, wrap),
        "aggTrade" => agg_trade(text, wrap),
        "bookTicker" => book_ticker(text, wrap),
        "depthUpdate" => depth_update(text, wrap, stream.is_some_and(is_partial_depth_stream)),
        "markPriceUpdate" => mark_price(text, wrap),
        "executionReport" => spot_only(execution_report),
        "outboundAccountPosition" => spot_only(account_position),
        // These end the stream: the client must resubscribe (or reconnect) to keep user data.
        "eventStreamTerminated" | "serverShutdown" | "listenKeyExpired" => {
            Ok(vec![VenueEvent::Control(Control::StreamExpiring {
                reason: e.to_string(),
            })])
        }
        "balanceUpdate" => Err(DecodeError::Unsupported(format!(
            "{} balanceUpdate (a balance delta; the new balance follows in outboundAccountPosition)",
            market.name()
        ))),
        "ORDER_TRADE_UPDATE" => usdm_only(order_trade_update),
        "ACCOUNT_UPDATE" => usdm_only(account_update),
        "TRADE_LITE" => usdm_only(trade_lite),
        "ALGO_UPDATE" => usdm_only(algo_update),
        other => Err(DecodeError::Unsupported(format!(
            "{} {other}",
            market.name()
        ))),
    }
}

/// An array of events (all-market streams such as `!markPrice@arr`).
pub(super) fn decode_array(
    market: Market,
    text: &str,
    wrap: Wrap,
    e: &str,
) -> Result<Vec<VenueEvent>, DecodeError> {
    match e {
        "markPriceUpdate" => {
            let items: Vec<MarkPrice> = typed(text, wrap, "binance markPriceUpdate array")?;
            let mut out = Vec::with_capacity(items.len());
            for m in items {
                out.extend(m.into_event()?);
            }
            Ok(out)
        }
        other => Err(DecodeError::Unsupported(format!(
            "{} array of {other}",
            market.name()
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// Market data

#[derive(Deserialize)]
struct KlineEvent<'a> {
    #[serde(borrow, rename = "s")]
    symbol: Cow<'a, str>,
    #[serde(borrow)]
    k: KlineBody<'a>,
}

#[derive(Deserialize)]
struct KlineBody<'a> {
    t: i64,
    #[serde(borrow)]
    i: Cow<'a, str>,
    #[serde(borrow)]
    o: Cow<'a, str>,
    #[serde(borrow)]
    h: Cow<'a, str>,
    #[serde(borrow)]
    l: Cow<'a, str>,
    #[serde(borrow)]
    c: Cow<'a, str>,
    #[serde(borrow)]
    v: Cow<'a, str>,
    x: bool,
}

fn kline(text: &str, wrap: Wrap) -> Result<Vec<VenueEvent>, DecodeError> {
    const K: &str = "binance kline";
    let ev: KlineEvent = typed(text, wrap, K)?;
    let k = ev.k;
    let interval = match Interval::parse(&k.i) {
        Ok(i) => i,
        // Monthly bars have no fixed length; keel's bars do.
        Err(_) if k.i.ends_with('M') => {
            return Err(DecodeError::Unsupported(format!(
                "binance kline interval {} (months have no fixed length)",
                k.i
            )));
        }
        Err(e) => return Err(DecodeError::malformed(format!("{K} k.i"), e)),
    };
    let candle = Candle {
        symbol: sym(K, "s", &ev.symbol)?,
        open_time_ns: ms(K, "k.t", k.t)?,
        interval_ns: interval.ns,
        open: num(K, "k.o", &k.o)?,
        high: num(K, "k.h", &k.h)?,
        low: num(K, "k.l", &k.l)?,
        close: num(K, "k.c", &k.c)?,
        volume: num(K, "k.v", &k.v)?,
    };
    Ok(vec![VenueEvent::Candle {
        candle,
        closed: k.x,
    }])
}

#[derive(Deserialize)]
struct TradeEvent<'a> {
    #[serde(borrow, rename = "s")]
    symbol: Cow<'a, str>,
    t: u64,
    #[serde(borrow)]
    p: Cow<'a, str>,
    #[serde(borrow)]
    q: Cow<'a, str>,
    #[serde(rename = "T")]
    time: i64,
    m: bool,
}

fn trade_event(kind: &str, t: TradeEvent) -> Result<Vec<VenueEvent>, DecodeError> {
    Ok(vec![VenueEvent::Trade(Trade {
        symbol: sym(kind, "s", &t.symbol)?,
        ts_event_ns: ms(kind, "T", t.time)?,
        price: num(kind, "p", &t.p)?,
        qty: num(kind, "q", &t.q)?,
        // `m`: the buyer was the maker, so the seller hit the bid.
        aggressor: if t.m { Side::Sell } else { Side::Buy },
        trade_id: t.t,
    })])
}

fn trade(text: &str, wrap: Wrap) -> Result<Vec<VenueEvent>, DecodeError> {
    const K: &str = "binance trade";
    trade_event(K, typed(text, wrap, K)?)
}

/// Aggregate trades carry their aggregate id in `a` (and `a` is not the ask here).
#[derive(Deserialize)]
struct AggTradeEvent<'a> {
    #[serde(borrow, rename = "s")]
    symbol: Cow<'a, str>,
    a: u64,
    #[serde(borrow)]
    p: Cow<'a, str>,
    #[serde(borrow)]
    q: Cow<'a, str>,
    #[serde(rename = "T")]
    time: i64,
    m: bool,
}

fn agg_trade(text: &str, wrap: Wrap) -> Result<Vec<VenueEvent>, DecodeError> {
    const K: &str = "binance aggTrade";
    let a: AggTradeEvent = typed(text, wrap, K)?;
    trade_event(
        K,
        TradeEvent {
            symbol: a.symbol,
            t: a.a,
            p: a.p,
            q: a.q,
            time: a.time,
            m: a.m,
        },
    )
}

#[derive(Deserialize)]
struct BookTickerEvent<'a> {
    #[serde(borrow, rename = "s")]
    symbol: Cow<'a, str>,
    #[serde(borrow)]
    b: Cow<'a, str>,
    #[serde(borrow, rename = "B")]
    bid_qty: Cow<'a, str>,
    #[serde(borrow)]
    a: Cow<'a, str>,
    #[serde(borrow, rename = "A")]
    ask_qty: Cow<'a, str>,
    #[serde(rename = "E")]
    event_time: Option<i64>,
    #[serde(rename = "T")]
    tx_time: Option<i64>,
}

/// Spot `bookTicker` frames carry no time at all: `ts_event_ns` is then 0 and the client
/// stamps the receive time.
pub(super) fn book_ticker(text: &str, wrap: Wrap) -> Result<Vec<VenueEvent>, DecodeError> {
    const K: &str = "binance bookTicker";
    let t: BookTickerEvent = typed(text, wrap, K)?;
    let ts = match (t.tx_time, t.event_time) {
        (Some(tt), _) => ms(K, "T", tt)?,
        (None, Some(e)) => ms(K, "E", e)?,
        (None, None) => 0,
    };
    Ok(vec![VenueEvent::BookTicker(BookTicker {
        symbol: sym(K, "s", &t.symbol)?,
        ts_event_ns: ts,
        bid: num(K, "b", &t.b)?,
        bid_qty: num(K, "B", &t.bid_qty)?,
        ask: num(K, "a", &t.a)?,
        ask_qty: num(K, "A", &t.ask_qty)?,
    })])
}

pub(super) fn levels(
    kind: &str,
    field: &str,
    raw: &[(&str, &str)],
) -> Result<Vec<Level>, DecodeError> {
    raw.iter()
        .map(|(p, q)| Ok((num(kind, field, p)?, num(kind, field, q)?)))
        .collect()
}

#[derive(Deserialize)]
struct DepthEvent<'a> {
    #[serde(borrow, rename = "s")]
    symbol: Cow<'a, str>,
    #[serde(rename = "E")]
    event_time: i64,
    #[serde(rename = "T")]
    tx_time: Option<i64>,
    #[serde(rename = "U")]
    first: u64,
    #[serde(rename = "u")]
    last: u64,
    pu: Option<u64>,
    // Decimal strings never hold escapes, so they borrow; an escaped one is malformed.
    #[serde(borrow)]
    b: Vec<(&'a str, &'a str)>,
    #[serde(borrow)]
    a: Vec<(&'a str, &'a str)>,
}

/// `depthUpdate`: a diff, or on USD-M partial-depth streams (`@depth5` etc., which use the same
/// event) a snapshot of the top levels. Only the combined-stream name tells the two apart.
fn depth_update(text: &str, wrap: Wrap, partial: bool) -> Result<Vec<VenueEvent>, DecodeError> {
    const K: &str = "binance depthUpdate";
    let d: DepthEvent = typed(text, wrap, K)?;
    let ts = match d.tx_time {
        Some(t) => ms(K, "T", t)?,
        None => ms(K, "E", d.event_time)?,
    };
    Ok(vec![VenueEvent::Depth(DepthUpdate {
        symbol: sym(K, "s", &d.symbol)?,
        ts_event_ns: ts,
        snapshot: partial,
        first_update_id: d.first,
        last_update_id: d.last,
        prev_last_update_id: d.pu,
        bids: levels(K, "b", &d.b)?,
        asks: levels(K, "a", &d.a)?,
        checksum: None,
    })])
}

#[derive(Deserialize)]
struct DepthSnapshot<'a> {
    #[serde(rename = "lastUpdateId")]
    last_update_id: u64,
    #[serde(borrow)]
    bids: Vec<(&'a str, &'a str)>,
    #[serde(borrow)]
    asks: Vec<(&'a str, &'a str)>,
    #[serde(rename = "E")]
    event_time: Option<i64>,
    #[serde(rename = "T")]
    tx_time: Option<i64>,
}

/// Spot partial book depth (`<symbol>@depth<N>`): a top-of-book snapshot without symbol or
/// time; the symbol comes from the stream name and `ts_event_ns` is 0.
pub(super) fn partial_depth(
    text: &str,
    wrap: Wrap,
    stream: &str,
) -> Result<Vec<VenueEvent>, DecodeError> {
    const K: &str = "binance partial depth";
    let symbol = stream_symbol(stream).ok_or_else(|| {
        DecodeError::malformed(format!("{K} stream"), format!("no symbol in {stream:?}"))
    })?;
    let d: DepthSnapshot = typed(text, wrap, K)?;
    Ok(vec![VenueEvent::Depth(snapshot(K, symbol, d)?)])
}

fn snapshot(kind: &str, symbol: Symbol, d: DepthSnapshot) -> Result<DepthUpdate, DecodeError> {
    let ts = match (d.tx_time, d.event_time) {
        (Some(t), _) => ms(kind, "T", t)?,
        (None, Some(e)) => ms(kind, "E", e)?,
        (None, None) => 0,
    };
    Ok(DepthUpdate {
        symbol,
        ts_event_ns: ts,
        snapshot: true,
        first_update_id: d.last_update_id,
        last_update_id: d.last_update_id,
        prev_last_update_id: None,
        bids: levels(kind, "bids", &d.bids)?,
        asks: levels(kind, "asks", &d.asks)?,
        checksum: None,
    })
}

/// A REST depth snapshot (`GET /api/v3/depth`, `GET /fapi/v1/depth`) for `symbol`.
pub(super) fn depth_snapshot_text(symbol: Symbol, text: &str) -> Result<DepthUpdate, DecodeError> {
    const K: &str = "binance depth snapshot";
    let d: DepthSnapshot = serde_json::from_str(text).map_err(|e| json_err(K, e))?;
    snapshot(K, symbol, d)
}

#[derive(Deserialize)]
struct MarkPrice<'a> {
    #[serde(borrow, rename = "s")]
    symbol: Cow<'a, str>,
    #[serde(rename = "E")]
    event_time: i64,
    #[serde(borrow)]
    p: Cow<'a, str>,
    #[serde(borrow)]
    r: Cow<'a, str>,
    #[serde(rename = "T")]
    next_funding: i64,
}

impl MarkPrice<'_> {
    fn into_event(self) -> Result<Vec<VenueEvent>, DecodeError> {
        const K: &str = "binance markPriceUpdate";
        // Delivery contracts have no funding: `r` is empty.
        if self.r.is_empty() {
            return Err(DecodeError::Unsupported(
                "binance-usdm markPriceUpdate without a funding rate (delivery contract)".into(),
            ));
        }
        Ok(vec![VenueEvent::Funding(FundingRate {
            symbol: sym(K, "s", &self.symbol)?,
            rate: num_lossy(K, "r", &self.r)?,
            funding_time_ns: ms(K, "T", self.next_funding)?,
            mark_price: num_lossy(K, "p", &self.p)?,
            ts_event_ns: ms(K, "E", self.event_time)?,
        })])
    }
}

fn mark_price(text: &str, wrap: Wrap) -> Result<Vec<VenueEvent>, DecodeError> {
    typed::<MarkPrice>(text, wrap, "binance markPriceUpdate")?.into_event()
}

// ---------------------------------------------------------------------------------------------
// Spot user data

#[derive(Deserialize)]
struct ExecutionReport<'a> {
    #[serde(borrow, rename = "s")]
    symbol: Cow<'a, str>,
    #[serde(borrow, rename = "c")]
    client_id: Cow<'a, str>,
    /// The canceled order's own client id on cancels (`c` is then the cancel request's id).
    #[serde(borrow, rename = "C")]
    orig_client_id: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "S")]
    side: Cow<'a, str>,
    #[serde(borrow, rename = "o")]
    order_type: Cow<'a, str>,
    #[serde(borrow, rename = "f")]
    tif: Option<Cow<'a, str>>,
    #[serde(borrow)]
    q: Cow<'a, str>,
    #[serde(borrow)]
    p: Cow<'a, str>,
    #[serde(borrow, rename = "P")]
    stop_price: Option<Cow<'a, str>>,
    #[serde(borrow)]
    x: Cow<'a, str>,
    #[serde(borrow, rename = "X")]
    status: Cow<'a, str>,
    #[serde(borrow)]
    r: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "eR")]
    expiry_reason: Option<Cow<'a, str>>,
    i: u64,
    #[serde(borrow)]
    l: Cow<'a, str>,
    #[serde(borrow)]
    z: Cow<'a, str>,
    #[serde(borrow, rename = "L")]
    last_price: Cow<'a, str>,
    #[serde(borrow)]
    n: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "N")]
    fee_asset: Option<Cow<'a, str>>,
    #[serde(rename = "T")]
    tx_time: i64,
    t: i64,
    m: bool,
    #[serde(borrow, rename = "Z")]
    cum_quote: Option<Cow<'a, str>>,
}

/// A fill is only reported with a quantity and a price: Binance has sent `TRADE` reports with
/// `L` = 0, and a zero-price fill would corrupt cost basis. Such a report still moves the
/// order's `filled_qty`; the runtime reconciles the fill from REST.
fn fill_is_priced(qty: Fixed, price: Fixed) -> bool {
    qty > Fixed::ZERO && price > Fixed::ZERO
}

/// The trade part of an execution report (spot `executionReport`, USD-M
/// `ORDER_TRADE_UPDATE`).
struct Execution {
    qty: Fixed,
    price: Fixed,
    trade_id: String,
    fee: Fixed,
    fee_asset: String,
    maker: bool,
}

/// The raw trade fields an execution report carries (same letters on spot and USD-M).
struct ExecFields<'a> {
    /// Execution type.
    x: &'a str,
    /// Last filled quantity.
    l: &'a str,
    last_price: &'a str,
    n: Option<&'a str>,
    fee_asset: Option<&'a str>,
    t: i64,
    m: bool,
}

impl Execution {
    /// The trade of a report: `None` unless its execution type trades (`TRADE`, or
    /// `CALCULATED` — liquidation / ADL / settlement, which move the position like a trade) and
    /// it carries a quantity and a price (see `fill_is_priced`). `names` are the `l`, `L` and
    /// `n` field names as the message kind spells them, for errors.
    fn from_report(
        k: &str,
        names: [&str; 3],
        f: ExecFields<'_>,
    ) -> Result<Option<Execution>, DecodeError> {
        if !matches!(f.x, "TRADE" | "CALCULATED") {
            return Ok(None);
        }
        let (qty, price) = (num(k, names[0], f.l)?, num(k, names[1], f.last_price)?);
        if !fill_is_priced(qty, price) {
            return Ok(None);
        }
        Ok(Some(Execution {
            qty,
            price,
            trade_id: f.t.to_string(),
            fee: opt_num_lossy(k, names[2], f.n)?,
            fee_asset: f.fee_asset.unwrap_or("").to_string(),
            maker: f.m,
        }))
    }
}

/// The events of one execution report: its fill first, if it traded, so the position has
/// moved before the order reads as done; then the order.
fn order_and_fill(order: OrderEvent, exec: Option<Execution>) -> Vec<VenueEvent> {
    let mut out = Vec::with_capacity(2);
    if let Some(e) = exec {
        out.push(VenueEvent::Fill(FillEvent {
            symbol: order.symbol,
            client_order_id: order.client_order_id.clone(),
            venue_order_id: order.venue_order_id.clone(),
            trade_id: e.trade_id,
            side: order.side,
            price: e.price,
            qty: e.qty,
            fee: e.fee,
            fee_asset: e.fee_asset,
            liquidity: if e.maker {
                Liquidity::Maker
            } else {
                Liquidity::Taker
            },
            ts_event_ns: order.ts_event_ns,
        }));
    }
    out.push(VenueEvent::Order(order));
    out
}

fn execution_report(text: &str, wrap: Wrap) -> Result<Vec<VenueEvent>, DecodeError> {
    const K: &str = "binance executionReport";
    let r: ExecutionReport = typed(text, wrap, K)?;
    let symbol = sym(K, "s", &r.symbol)?;
    let side = side(K, "S", &r.side)?;
    let filled = num(K, "z", &r.z)?;
    let client = match r.orig_client_id.as_deref() {
        Some(c) if !c.is_empty() => c,
        _ => &r.client_id,
    };
    let reason = match (r.r.as_deref(), r.expiry_reason.as_deref()) {
        (Some(rr), _) if !rr.is_empty() && rr != "NONE" => rr,
        (_, Some(er)) if !er.is_empty() && er != "NONE" => er,
        _ => "",
    };
    let ts = ms(K, "T", r.tx_time)?;
    let order = OrderEvent {
        symbol,
        client_order_id: client.to_string(),
        venue_order_id: r.i.to_string(),
        state: order_state(K, "X", &r.status, filled)?,
        side,
        order_type: order_type(Market::Spot, &r.order_type),
        time_in_force: time_in_force(&r.order_type, r.tif.as_deref()),
        price: num(K, "p", &r.p)?,
        trigger_price: opt_num(K, "P", r.stop_price.as_deref())?,
        qty: num(K, "q", &r.q)?,
        filled_qty: filled,
        avg_price: avg_price(opt_num_lossy(K, "Z", r.cum_quote.as_deref())?, filled),
        reduce_only: false,
        reason: reason.to_string(),
        ts_event_ns: ts,
    };
    let exec = Execution::from_report(
        K,
        ["l", "L", "n"],
        ExecFields {
            x: &r.x,
            l: &r.l,
            last_price: &r.last_price,
            n: r.n.as_deref(),
            fee_asset: r.fee_asset.as_deref(),
            t: r.t,
            m: r.m,
        },
    )?;
    Ok(order_and_fill(order, exec))
}

#[derive(Deserialize)]
struct AccountPosition<'a> {
    #[serde(rename = "E")]
    event_time: i64,
    #[serde(rename = "u")]
    update_time: Option<i64>,
    #[serde(borrow, rename = "B")]
    balances: Vec<SpotBalance<'a>>,
}

#[derive(Deserialize)]
struct SpotBalance<'a> {
    #[serde(borrow)]
    a: Cow<'a, str>,
    #[serde(borrow)]
    f: Cow<'a, str>,
    #[serde(borrow)]
    l: Cow<'a, str>,
}

fn account_position(text: &str, wrap: Wrap) -> Result<Vec<VenueEvent>, DecodeError> {
    const K: &str = "binance outboundAccountPosition";
    let a: AccountPosition = typed(text, wrap, K)?;
    let ts = match a.update_time {
        Some(u) => ms(K, "u", u)?,
        None => ms(K, "E", a.event_time)?,
    };
    a.balances
        .iter()
        .map(|b| {
            Ok(VenueEvent::Balance(BalanceUpdate {
                asset: b.a.to_string(),
                free: num(K, "B.f", &b.f)?,
                locked: num(K, "B.l", &b.l)?,
                ts_event_ns: ts,
            }))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// USD-M user data

#[derive(Deserialize)]
struct OrderTradeUpdate<'a> {
    #[serde(borrow)]
    o: FuturesOrder<'a>,
}

#[derive(Deserialize)]
struct FuturesOrder<'a> {
    #[serde(borrow, rename = "s")]
    symbol: Cow<'a, str>,
    #[serde(borrow, rename = "c")]
    client_id: Cow<'a, str>,
    #[serde(borrow, rename = "S")]
    side: Cow<'a, str>,
    #[serde(borrow, rename = "o")]
    order_type: Cow<'a, str>,
    #[serde(borrow, rename = "f")]
    tif: Option<Cow<'a, str>>,
    #[serde(borrow)]
    q: Cow<'a, str>,
    #[serde(borrow)]
    p: Option<Cow<'a, str>>,
    #[serde(borrow)]
    ap: Option<Cow<'a, str>>,
    #[serde(borrow)]
    sp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    x: Cow<'a, str>,
    #[serde(borrow, rename = "X")]
    status: Cow<'a, str>,
    i: u64,
    #[serde(borrow)]
    l: Cow<'a, str>,
    #[serde(borrow)]
    z: Cow<'a, str>,
    #[serde(borrow, rename = "L")]
    last_price: Cow<'a, str>,
    #[serde(borrow, rename = "N")]
    fee_asset: Option<Cow<'a, str>>,
    #[serde(borrow)]
    n: Option<Cow<'a, str>>,
    #[serde(rename = "T")]
    trade_time: i64,
    t: i64,
    m: bool,
    #[serde(rename = "R")]
    reduce_only: bool,
}

fn order_trade_update(text: &str, wrap: Wrap) -> Result<Vec<VenueEvent>, DecodeError> {
    const K: &str = "binance ORDER_TRADE_UPDATE";
    let o = typed::<OrderTradeUpdate>(text, wrap, K)?.o;
    let symbol = sym(K, "o.s", &o.symbol)?;
    let side = side(K, "o.S", &o.side)?;
    let filled = num(K, "o.z", &o.z)?;
    let ts = ms(K, "o.T", o.trade_time)?;
    let order = OrderEvent {
        symbol,
        client_order_id: o.client_id.to_string(),
        venue_order_id: o.i.to_string(),
        state: order_state(K, "o.X", &o.status, filled)?,
        side,
        order_type: order_type(Market::Usdm, &o.order_type),
        time_in_force: time_in_force(&o.order_type, o.tif.as_deref()),
        price: opt_num(K, "o.p", o.p.as_deref())?,
        trigger_price: opt_num(K, "o.sp", o.sp.as_deref())?,
        qty: num(K, "o.q", &o.q)?,
        filled_qty: filled,
        avg_price: opt_num_lossy(K, "o.ap", o.ap.as_deref())?,
        reduce_only: o.reduce_only,
        reason: String::new(),
        ts_event_ns: ts,
    };
    let exec = Execution::from_report(
        K,
        ["o.l", "o.L", "o.n"],
        ExecFields {
            x: &o.x,
            l: &o.l,
            last_price: &o.last_price,
            n: o.n.as_deref(),
            fee_asset: o.fee_asset.as_deref(),
            t: o.t,
            m: o.m,
        },
    )?;
    Ok(order_and_fill(order, exec))
}

#[derive(Deserialize)]
struct AccountUpdate<'a> {
    #[serde(rename = "T")]
    tx_time: i64,
    #[serde(borrow)]
    a: AccountUpdateBody<'a>,
}

#[derive(Deserialize)]
struct AccountUpdateBody<'a> {
    #[serde(borrow, rename = "B", default)]
    balances: Vec<FuturesBalance<'a>>,
    #[serde(borrow, rename = "P", default)]
    positions: Vec<FuturesPosition<'a>>,
}

#[derive(Deserialize)]
struct FuturesBalance<'a> {
    #[serde(borrow)]
    a: Cow<'a, str>,
    #[serde(borrow)]
    wb: Cow<'a, str>,
    #[serde(borrow)]
    cw: Cow<'a, str>,
}

#[derive(Deserialize)]
struct FuturesPosition<'a> {
    #[serde(borrow)]
    s: Cow<'a, str>,
    #[serde(borrow)]
    pa: Cow<'a, str>,
    #[serde(borrow)]
    ep: Cow<'a, str>,
    #[serde(borrow)]
    up: Cow<'a, str>,
}

/// Balances: `free` is the cross wallet balance (`cw`), `locked` the rest of the wallet
/// (`wb - cw`, the isolated margin); the stream does not say what is available for orders.
/// Positions: one event per entry, so a hedge-mode account yields a LONG and a SHORT entry for
/// the same symbol (and a BOTH entry).
fn account_update(text: &str, wrap: Wrap) -> Result<Vec<VenueEvent>, DecodeError> {
    const K: &str = "binance ACCOUNT_UPDATE";
    let u: AccountUpdate = typed(text, wrap, K)?;
    let ts = ms(K, "T", u.tx_time)?;
    let mut out = Vec::with_capacity(u.a.balances.len() + u.a.positions.len());
    for b in &u.a.balances {
        let wallet = num_lossy(K, "a.B.wb", &b.wb)?;
        let cross = num_lossy(K, "a.B.cw", &b.cw)?;
        out.push(VenueEvent::Balance(BalanceUpdate {
            asset: b.a.to_string(),
            free: cross,
            locked: locked(wallet, cross),
            ts_event_ns: ts,
        }));
    }
    for p in &u.a.positions {
        out.push(VenueEvent::Position(PositionUpdate {
            symbol: sym(K, "a.P.s", &p.s)?,
            qty: num(K, "a.P.pa", &p.pa)?,
            entry_price: num_lossy(K, "a.P.ep", &p.ep)?,
            unrealized_pnl: num_lossy(K, "a.P.up", &p.up)?,
            liquidation_price: Fixed::ZERO,
            leverage: Fixed::ZERO,
            ts_event_ns: ts,
        }));
    }
    Ok(out)
}

#[derive(Deserialize)]
struct TradeLite<'a> {
    #[serde(borrow, rename = "s")]
    symbol: Cow<'a, str>,
    #[serde(borrow, rename = "c")]
    client_id: Cow<'a, str>,
    #[serde(borrow, rename = "S")]
    side: Cow<'a, str>,
    #[serde(borrow)]
    l: Cow<'a, str>,
    #[serde(borrow, rename = "L")]
    last_price: Cow<'a, str>,
    t: i64,
    i: u64,
    m: bool,
    #[serde(rename = "T")]
    tx_time: i64,
}

/// `TRADE_LITE` is a low-latency fill notice without the fee: `fee` is zero and `fee_asset`
/// empty. The same trade arrives again in `ORDER_TRADE_UPDATE` with its fee; consumers keep
/// one fill per (venue order id, trade id) and prefer the one with a fee asset.
fn trade_lite(text: &str, wrap: Wrap) -> Result<Vec<VenueEvent>, DecodeError> {
    const K: &str = "binance TRADE_LITE";
    let t: TradeLite = typed(text, wrap, K)?;
    let qty = num(K, "l", &t.l)?;
    let price = num(K, "L", &t.last_price)?;
    if !fill_is_priced(qty, price) {
        return Err(DecodeError::malformed(
            K,
            "a trade without quantity or price".to_string(),
        ));
    }
    Ok(vec![VenueEvent::Fill(FillEvent {
        symbol: sym(K, "s", &t.symbol)?,
        client_order_id: t.client_id.to_string(),
        venue_order_id: t.i.to_string(),
        trade_id: t.t.to_string(),
        side: side(K, "S", &t.side)?,
        price,
        qty,
        fee: Fixed::ZERO,
        fee_asset: String::new(),
        liquidity: if t.m {
            Liquidity::Maker
        } else {
            Liquidity::Taker
        },
        ts_event_ns: ms(K, "T", t.tx_time)?,
    })])
}

#[derive(Deserialize)]
struct AlgoUpdate<'a> {
    #[serde(rename = "T")]
    time: i64,
    #[serde(borrow)]
    o: AlgoOrder<'a>,
}

#[derive(Deserialize)]
struct AlgoOrder<'a> {
    #[serde(borrow)]
    caid: Cow<'a, str>,
    aid: u64,
    #[serde(borrow, rename = "o")]
    order_type: Cow<'a, str>,
    #[serde(borrow, rename = "s")]
    symbol: Cow<'a, str>,
    #[serde(borrow, rename = "S")]
    side: Cow<'a, str>,
    #[serde(borrow, rename = "f")]
    tif: Option<Cow<'a, str>>,
    #[serde(borrow)]
    q: Cow<'a, str>,
    #[serde(borrow, rename = "X")]
    status: Cow<'a, str>,
    #[serde(borrow)]
    ap: Option<Cow<'a, str>>,
    #[serde(borrow)]
    aq: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    p: Option<Cow<'a, str>>,
    #[serde(rename = "R", default)]
    reduce_only: bool,
    #[serde(borrow)]
    rm: Option<Cow<'a, str>>,
}

/// `ALGO_UPDATE`: a conditional order of the Algo Service. Its ids are the algo id (`aid`) and
/// the client algo id (`caid`); once triggered, the order it became in the matching engine
/// (`ai`) reports through `ORDER_TRADE_UPDATE` under its own order id.
fn algo_update(text: &str, wrap: Wrap) -> Result<Vec<VenueEvent>, DecodeError> {
    const K: &str = "binance ALGO_UPDATE";
    let u: AlgoUpdate = typed(text, wrap, K)?;
    let o = u.o;
    let qty = num(K, "o.q", &o.q)?;
    let executed = opt_num(K, "o.aq", o.aq.as_deref())?;
    Ok(vec![VenueEvent::Order(OrderEvent {
        symbol: sym(K, "o.s", &o.symbol)?,
        client_order_id: o.caid.to_string(),
        venue_order_id: o.aid.to_string(),
        state: algo_state(K, "o.X", &o.status, qty, executed)?,
        side: side(K, "o.S", &o.side)?,
        order_type: order_type(Market::Usdm, &o.order_type),
        time_in_force: time_in_force(&o.order_type, o.tif.as_deref()),
        price: opt_num(K, "o.p", o.p.as_deref())?,
        trigger_price: opt_num(K, "o.tp", o.tp.as_deref())?,
        qty,
        filled_qty: executed,
        avg_price: opt_num_lossy(K, "o.ap", o.ap.as_deref())?,
        reduce_only: o.reduce_only,
        reason: o.rm.as_deref().unwrap_or("").to_string(),
        ts_event_ns: ms(K, "T", u.time)?,
    })])
}
