//! OKX WebSocket: channel pushes, events and order-entry (`op`) responses.

use std::borrow::Cow;

use keel_engine::candle::Candle;
use keel_engine::event::{BookTicker, Liquidity, Trade};
use keel_engine::fixed::Fixed;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{keel_fee, ms_to_ns, opt_dec, opt_dec_lossy, opt_ms_to_ns, side};
use crate::model::{
    BalanceUpdate, Control, DecodeError, DepthUpdate, FillEvent, FundingRate, Level, OrderEvent,
    OrderState, OrderType, PositionUpdate, TimeInForce, VenueEvent, dec, dec_lossy, symbol,
};

/// Just enough of a message to route it without building a `Value` tree.
#[derive(Deserialize)]
pub(super) struct Head<'a> {
    #[serde(default)]
    pub event: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    pub op: Option<serde::de::IgnoredAny>,
    #[serde(borrow, default)]
    pub arg: Option<HeadArg<'a>>,
    #[serde(default)]
    pub data: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
pub(super) struct HeadArg<'a> {
    #[serde(borrow)]
    pub channel: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg<'a> {
    #[serde(borrow, default)]
    inst_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Push<'a, T> {
    #[serde(borrow)]
    arg: Arg<'a>,
    #[serde(borrow, default)]
    action: Option<Cow<'a, str>>,
    data: Vec<T>,
}

fn parse_push<'a, T: Deserialize<'a>>(
    text: &'a str,
    channel: &str,
) -> Result<Push<'a, T>, DecodeError> {
    serde_json::from_str(text)
        .map_err(|e| DecodeError::malformed(format!("okx {channel} push"), e.to_string()))
}

fn push_inst_id<'p>(push: &'p Arg<'_>, channel: &str) -> Result<&'p str, DecodeError> {
    push.inst_id
        .as_deref()
        .ok_or_else(|| DecodeError::malformed(format!("okx {channel} arg.instId"), "missing"))
}

/// Route a channel push to its decoder.
pub(super) fn decode_push(text: &str, channel: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    if let Some(bar) = channel.strip_prefix("candle") {
        return candles(text, channel, bar);
    }
    match channel {
        "trades" | "trades-all" => trades(text, channel),
        "tickers" => tickers(text),
        "bbo-tbt" => bbo(text),
        "books" | "books5" | "books-l2-tbt" | "books50-l2-tbt" => books(text, channel),
        "funding-rate" => funding(text),
        "orders" => orders(text),
        "orders-algo" | "algo-advance" => algo_orders(text, channel),
        "positions" => positions(text),
        "account" => account(text),
        "instruments" => Err(DecodeError::Unsupported(
            "okx instruments channel: use okx::parse_instruments".into(),
        )),
        other => Err(DecodeError::Unsupported(format!("okx {other} channel"))),
    }
}

// ---------------------------------------------------------------------------------------------
// Market data

/// SPOT/MARGIN instrument ids are `BASE-QUOTE`; every derivative id has more parts.
pub(super) fn is_spot_inst(inst_id: &str) -> bool {
    inst_id.split('-').count() == 2
}

/// One candle row `[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]`. `vol` is in contracts
/// for derivatives, so they take `volCcy` (base currency) to keep volume in base units.
pub(super) fn candle_row(
    what: &str,
    sym: &str,
    interval_ns: i64,
    row: &[&str],
    default_closed: bool,
) -> Result<VenueEvent, DecodeError> {
    let field = |i: usize, name: &str| {
        row.get(i)
            .copied()
            .ok_or_else(|| DecodeError::malformed(format!("{what} {name}"), "missing"))
    };
    let volume_idx = if is_spot_inst(sym) { 5 } else { 6 };
    let candle = Candle {
        symbol: symbol(&format!("{what} instId"), sym)?,
        open_time_ns: ms_to_ns(&format!("{what} ts"), field(0, "ts")?)?,
        interval_ns,
        open: dec(&format!("{what} o"), field(1, "o")?)?,
        high: dec(&format!("{what} h"), field(2, "h")?)?,
        low: dec(&format!("{what} l"), field(3, "l")?)?,
        close: dec(&format!("{what} c"), field(4, "c")?)?,
        volume: dec_lossy(&format!("{what} vol"), field(volume_idx, "vol")?)?,
    };
    let closed = match row.get(8) {
        Some(&"1") => true,
        Some(&"0") => false,
        Some(other) => {
            return Err(DecodeError::malformed(
                format!("{what} confirm"),
                format!("{other:?} is not 0/1"),
            ));
        }
        None => default_closed,
    };
    Ok(VenueEvent::Candle { candle, closed })
}

fn candles(text: &str, channel: &str, bar: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    let interval = super::bar_to_interval(bar)?;
    let push: Push<Vec<&str>> = parse_push(text, channel)?;
    let sym = push_inst_id(&push.arg, channel)?;
    let what = format!("okx {channel}");
    push.data
        .iter()
        .map(|row| candle_row(&what, sym, interval.ns, row, false))
        .collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TradeRow<'a> {
    inst_id: &'a str,
    trade_id: &'a str,
    px: &'a str,
    sz: &'a str,
    side: &'a str,
    ts: &'a str,
}

pub(super) fn trade_row(what: &str, t: &TradeRow) -> Result<VenueEvent, DecodeError> {
    Ok(VenueEvent::Trade(Trade {
        symbol: symbol(&format!("{what} instId"), t.inst_id)?,
        ts_event_ns: ms_to_ns(&format!("{what} ts"), t.ts)?,
        price: dec(&format!("{what} px"), t.px)?,
        qty: dec(&format!("{what} sz"), t.sz)?,
        aggressor: side(&format!("{what} side"), t.side)?,
        trade_id: t.trade_id.parse().map_err(|_| {
            DecodeError::malformed(
                format!("{what} tradeId"),
                format!("{:?} is not an integer", t.trade_id),
            )
        })?,
    }))
}

fn trades(text: &str, channel: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    let push: Push<TradeRow> = parse_push(text, channel)?;
    let what = format!("okx {channel}");
    push.data.iter().map(|t| trade_row(&what, t)).collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TickerRow<'a> {
    inst_id: &'a str,
    #[serde(default)]
    bid_px: &'a str,
    #[serde(default)]
    bid_sz: &'a str,
    #[serde(default)]
    ask_px: &'a str,
    #[serde(default)]
    ask_sz: &'a str,
    ts: &'a str,
}

/// `tickers` → best bid/ask. An empty side (OKX sends "") is zero price and size.
fn tickers(text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    let push: Push<TickerRow> = parse_push(text, "tickers")?;
    push.data
        .iter()
        .map(|t| {
            Ok(VenueEvent::BookTicker(BookTicker {
                symbol: symbol("okx tickers instId", t.inst_id)?,
                ts_event_ns: ms_to_ns("okx tickers ts", t.ts)?,
                bid: opt_dec("okx tickers bidPx", t.bid_px)?,
                bid_qty: opt_dec("okx tickers bidSz", t.bid_sz)?,
                ask: opt_dec("okx tickers askPx", t.ask_px)?,
                ask_qty: opt_dec("okx tickers askSz", t.ask_sz)?,
            }))
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BookRow<'a> {
    #[serde(borrow, default)]
    pub asks: Vec<Vec<&'a str>>,
    #[serde(borrow, default)]
    pub bids: Vec<Vec<&'a str>>,
    pub ts: &'a str,
    #[serde(default)]
    checksum: Option<i64>,
    #[serde(default)]
    prev_seq_id: Option<i64>,
    #[serde(default)]
    seq_id: Option<i64>,
}

/// OKX level `[px, sz, "0", numOrders]` → (price, qty).
pub(super) fn levels(what: &str, rows: &[Vec<&str>]) -> Result<Vec<Level>, DecodeError> {
    rows.iter()
        .map(|l| match (l.first(), l.get(1)) {
            (Some(px), Some(sz)) => Ok((dec(what, px)?, dec(what, sz)?)),
            _ => Err(DecodeError::malformed(what, "level without price and size")),
        })
        .collect()
}

fn top(what: &str, rows: &[Vec<&str>]) -> Result<(Fixed, Fixed), DecodeError> {
    Ok(levels(what, rows)?
        .first()
        .copied()
        .unwrap_or((Fixed::ZERO, Fixed::ZERO)))
}

fn bbo(text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    let push: Push<BookRow> = parse_push(text, "bbo-tbt")?;
    let sym = push_inst_id(&push.arg, "bbo-tbt")?;
    push.data
        .iter()
        .map(|b| {
            let (bid, bid_qty) = top("okx bbo-tbt bids", &b.bids)?;
            let (ask, ask_qty) = top("okx bbo-tbt asks", &b.asks)?;
            Ok(VenueEvent::BookTicker(BookTicker {
                symbol: symbol("okx bbo-tbt instId", sym)?,
                ts_event_ns: ms_to_ns("okx bbo-tbt ts", b.ts)?,
                bid,
                bid_qty,
                ask,
                ask_qty,
            }))
        })
        .collect()
}

fn seq(what: &str, v: i64) -> Result<u64, DecodeError> {
    u64::try_from(v).map_err(|_| DecodeError::malformed(what, format!("{v} is negative")))
}

/// `books*` → depth. `books` says `action` snapshot/update; `books5` and the l2-tbt variants
/// without an action push whole books, so no action means snapshot. OKX's `prevSeqId` is -1 on
/// a snapshot.
fn books(text: &str, channel: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    let push: Push<BookRow> = parse_push(text, channel)?;
    let sym = push_inst_id(&push.arg, channel)?;
    let snapshot = match push.action.as_deref() {
        None | Some("snapshot") => true,
        Some("update") => false,
        Some(other) => {
            return Err(DecodeError::malformed(
                format!("okx {channel} action"),
                format!("{other:?} is not snapshot/update"),
            ));
        }
    };
    let what = format!("okx {channel}");
    push.data
        .iter()
        .map(|b| {
            let seq_id = seq(&format!("{what} seqId"), b.seq_id.unwrap_or(0))?;
            let prev = match b.prev_seq_id {
                Some(p) if p >= 0 => Some(seq(&format!("{what} prevSeqId"), p)?),
                _ => None,
            };
            Ok(VenueEvent::Depth(DepthUpdate {
                symbol: symbol(&format!("{what} instId"), sym)?,
                ts_event_ns: ms_to_ns(&format!("{what} ts"), b.ts)?,
                snapshot,
                first_update_id: seq_id,
                last_update_id: seq_id,
                prev_last_update_id: prev,
                bids: levels(&format!("{what} bids"), &b.bids)?,
                asks: levels(&format!("{what} asks"), &b.asks)?,
                checksum: b.checksum,
            }))
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct FundingRow<'a> {
    inst_id: &'a str,
    funding_rate: &'a str,
    funding_time: &'a str,
    #[serde(default)]
    ts: &'a str,
}

/// Funding rate; without a `ts` (REST history) the funding time is the event time.
pub(super) fn funding_row(what: &str, f: &FundingRow) -> Result<VenueEvent, DecodeError> {
    let funding_time_ns = ms_to_ns(&format!("{what} fundingTime"), f.funding_time)?;
    let ts_event_ns = if f.ts.is_empty() {
        funding_time_ns
    } else {
        ms_to_ns(&format!("{what} ts"), f.ts)?
    };
    Ok(VenueEvent::Funding(FundingRate {
        symbol: symbol(&format!("{what} instId"), f.inst_id)?,
        rate: dec_lossy(&format!("{what} fundingRate"), f.funding_rate)?,
        funding_time_ns,
        mark_price: Fixed::ZERO,
        ts_event_ns,
    }))
}

fn funding(text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    let push: Push<FundingRow> = parse_push(text, "funding-rate")?;
    push.data
        .iter()
        .map(|f| funding_row("okx funding-rate", f))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Private channels

/// An order as the `orders` channel and the orders-pending/history endpoints describe it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OrderRow<'a> {
    inst_id: &'a str,
    #[serde(default)]
    ord_id: &'a str,
    #[serde(default)]
    cl_ord_id: &'a str,
    state: &'a str,
    side: &'a str,
    ord_type: &'a str,
    #[serde(default)]
    px: &'a str,
    #[serde(default)]
    sz: &'a str,
    #[serde(default)]
    acc_fill_sz: &'a str,
    #[serde(default)]
    avg_px: &'a str,
    #[serde(default)]
    fill_sz: &'a str,
    #[serde(default)]
    fill_px: &'a str,
    #[serde(default)]
    trade_id: &'a str,
    #[serde(borrow, default)]
    fill_fee: Option<&'a str>,
    #[serde(default)]
    fill_fee_ccy: &'a str,
    #[serde(default)]
    fee: &'a str,
    #[serde(default)]
    fee_ccy: &'a str,
    #[serde(default)]
    exec_type: &'a str,
    #[serde(default)]
    reduce_only: &'a str,
    #[serde(default)]
    u_time: &'a str,
    #[serde(default)]
    fill_time: &'a str,
    #[serde(borrow, default)]
    cancel_source: Cow<'a, str>,
    #[serde(borrow, default)]
    cancel_source_reason: Cow<'a, str>,
    #[serde(default)]
    category: &'a str,
}

fn order_state(what: &str, state: &str) -> Result<OrderState, DecodeError> {
    Ok(match state {
        "live" => OrderState::New,
        "partially_filled" => OrderState::PartiallyFilled,
        "filled" => OrderState::Filled,
        "canceled" | "mmp_canceled" => OrderState::Canceled,
        other => {
            return Err(DecodeError::malformed(
                what,
                format!("unknown order state {other:?}"),
            ));
        }
    })
}

/// OKX `ordType` → (type, time in force). `trigger`/`conditional` appear on orders an algo order
/// placed when it fired; with no price they are stop-market.
fn order_type(ord_type: &str, px_empty: bool) -> (OrderType, Option<TimeInForce>) {
    match ord_type {
        "market" => (OrderType::Market, None),
        "limit" => (OrderType::Limit, Some(TimeInForce::Gtc)),
        "post_only" | "mmp_and_post_only" => (OrderType::Limit, Some(TimeInForce::PostOnly)),
        "fok" | "op_fok" => (OrderType::Limit, Some(TimeInForce::Fok)),
        "ioc" => (OrderType::Limit, Some(TimeInForce::Ioc)),
        "optimal_limit_ioc" => (OrderType::Market, Some(TimeInForce::Ioc)),
        "mmp" => (OrderType::Limit, Some(TimeInForce::Ioc)),
        "trigger" | "conditional" if px_empty => (OrderType::StopMarket, None),
        "trigger" | "conditional" => (OrderType::StopLimit, None),
        _ => (OrderType::Other, None),
    }
}

/// Decode one order row; with `with_fill`, also the fill it reports (`fillSz` > 0).
///
/// OKX's fill fields describe the order's *latest* fill and can reappear on a later push of the
/// same order (e.g. the cancel after a partial fill), so consumers dedupe fills by `trade_id`.
/// The fill's fee is `fillFee` (this fill only). When a capture lacks `fillFee` and this is the
/// order's first fill (`accFillSz == fillSz`), the accumulated `fee` is the same number; past
/// the first fill it is not, and the row is malformed.
pub(super) fn order_row_events(
    what: &str,
    o: &OrderRow,
    with_fill: bool,
) -> Result<Vec<VenueEvent>, DecodeError> {
    let f = |name: &str| format!("{what} {name}");
    let sym = symbol(&f("instId"), o.inst_id)?;
    let order_side = side(&f("side"), o.side)?;
    let px_empty = o.px.is_empty() || o.px == "-1";
    let (order_type, time_in_force) = order_type(o.ord_type, px_empty);
    let state = order_state(&f("state"), o.state)?;
    let reason = if !o.cancel_source_reason.is_empty() {
        o.cancel_source_reason.to_string()
    } else if !o.cancel_source.is_empty() {
        format!("cancelSource {}", o.cancel_source)
    } else if !o.category.is_empty() && o.category != "normal" {
        o.category.to_string()
    } else {
        String::new()
    };
    let mut events = vec![VenueEvent::Order(OrderEvent {
        symbol: sym,
        client_order_id: o.cl_ord_id.to_string(),
        venue_order_id: o.ord_id.to_string(),
        state,
        side: order_side,
        order_type,
        time_in_force,
        price: if px_empty {
            Fixed::ZERO
        } else {
            dec(&f("px"), o.px)?
        },
        trigger_price: Fixed::ZERO,
        qty: opt_dec(&f("sz"), o.sz)?,
        filled_qty: opt_dec(&f("accFillSz"), o.acc_fill_sz)?,
        avg_price: opt_dec_lossy(&f("avgPx"), o.avg_px)?,
        reduce_only: o.reduce_only == "true",
        reason,
        ts_event_ns: opt_ms_to_ns(&f("uTime"), o.u_time)?,
    })];
    if with_fill {
        let fill_qty = opt_dec(&f("fillSz"), o.fill_sz)?;
        if fill_qty > Fixed::ZERO && !o.trade_id.is_empty() {
            let fee = match o.fill_fee {
                Some(fill_fee) => keel_fee(&f("fillFee"), fill_fee)?,
                None if o.acc_fill_sz == o.fill_sz => keel_fee(&f("fee"), o.fee)?,
                None => {
                    return Err(DecodeError::malformed(
                        f("fillFee"),
                        "missing, and the accumulated fee covers earlier fills too",
                    ));
                }
            };
            let fee_asset = if o.fill_fee_ccy.is_empty() {
                o.fee_ccy
            } else {
                o.fill_fee_ccy
            };
            events.push(VenueEvent::Fill(FillEvent {
                symbol: sym,
                client_order_id: o.cl_ord_id.to_string(),
                venue_order_id: o.ord_id.to_string(),
                trade_id: o.trade_id.to_string(),
                side: order_side,
                price: dec(&f("fillPx"), o.fill_px)?,
                qty: fill_qty,
                fee,
                fee_asset: fee_asset.to_string(),
                liquidity: liquidity(o.exec_type),
                ts_event_ns: ms_to_ns(&f("fillTime"), o.fill_time)?,
            }));
        }
    }
    Ok(events)
}

/// OKX `execType` M = maker, T = taker. System fills (liquidation, ADL) may leave it empty;
/// they take liquidity.
pub(super) fn liquidity(exec_type: &str) -> Liquidity {
    if exec_type == "M" {
        Liquidity::Maker
    } else {
        Liquidity::Taker
    }
}

fn orders(text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    let push: Push<OrderRow> = parse_push(text, "orders")?;
    let mut out = Vec::with_capacity(push.data.len() * 2);
    for o in &push.data {
        out.extend(order_row_events("okx orders", o, true)?);
    }
    Ok(out)
}

/// An algo (trigger/conditional/oco/...) order from `orders-algo` or the algo REST endpoints.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AlgoRow<'a> {
    inst_id: &'a str,
    #[serde(default)]
    algo_id: &'a str,
    #[serde(default)]
    algo_cl_ord_id: &'a str,
    ord_type: &'a str,
    state: &'a str,
    side: &'a str,
    #[serde(default)]
    sz: &'a str,
    #[serde(default)]
    trigger_px: &'a str,
    #[serde(default)]
    ord_px: &'a str,
    #[serde(default)]
    sl_trigger_px: &'a str,
    #[serde(default)]
    sl_ord_px: &'a str,
    #[serde(default)]
    tp_trigger_px: &'a str,
    #[serde(default)]
    tp_ord_px: &'a str,
    #[serde(default)]
    reduce_only: &'a str,
    #[serde(default)]
    actual_sz: &'a str,
    #[serde(default)]
    actual_px: &'a str,
    #[serde(borrow, default)]
    fail_code: Cow<'a, str>,
    #[serde(default)]
    u_time: &'a str,
}

/// Algo states: `live`/`pause` wait for the trigger; `effective`/`partially_effective` (and
/// `order_placed`) fired and placed an order; `order_failed`/`partially_failed` fired but the
/// placement was rejected.
fn algo_state(what: &str, state: &str) -> Result<OrderState, DecodeError> {
    Ok(match state {
        "live" | "pause" => OrderState::Untriggered,
        "effective" | "partially_effective" | "order_placed" => OrderState::Triggered,
        "canceled" => OrderState::Canceled,
        "order_failed" | "partially_failed" => OrderState::Rejected,
        "filled" => OrderState::Filled,
        other => {
            return Err(DecodeError::malformed(
                what,
                format!("unknown algo state {other:?}"),
            ));
        }
    })
}

fn algo_px(p: &str) -> bool {
    !p.is_empty() && p != "-1"
}

pub(super) fn algo_row_event(what: &str, a: &AlgoRow) -> Result<VenueEvent, DecodeError> {
    let f = |name: &str| format!("{what} {name}");
    let state = algo_state(&f("state"), a.state)?;
    // Which trigger this algo carries, and its order price ("-1" = market).
    let (trigger, ord_px, stop) = if !a.trigger_px.is_empty() {
        (a.trigger_px, a.ord_px, true)
    } else if !a.sl_trigger_px.is_empty() {
        (a.sl_trigger_px, a.sl_ord_px, true)
    } else {
        (a.tp_trigger_px, a.tp_ord_px, false)
    };
    let limit = algo_px(ord_px);
    let order_type = match a.ord_type {
        "trigger" | "conditional" => match (stop, limit) {
            (true, false) => OrderType::StopMarket,
            (true, true) => OrderType::StopLimit,
            (false, false) => OrderType::TakeProfitMarket,
            (false, true) => OrderType::TakeProfitLimit,
        },
        "move_order_stop" => OrderType::TrailingStop,
        _ => OrderType::Other,
    };
    let (filled_qty, avg_price) = if state == OrderState::Filled {
        (
            opt_dec(&f("actualSz"), a.actual_sz)?,
            opt_dec_lossy(&f("actualPx"), a.actual_px)?,
        )
    } else {
        (Fixed::ZERO, Fixed::ZERO)
    };
    let reason = if a.fail_code.is_empty() || a.fail_code == "0" {
        String::new()
    } else {
        format!("failCode {}", a.fail_code)
    };
    Ok(VenueEvent::Order(OrderEvent {
        symbol: symbol(&f("instId"), a.inst_id)?,
        client_order_id: a.algo_cl_ord_id.to_string(),
        venue_order_id: a.algo_id.to_string(),
        state,
        side: side(&f("side"), a.side)?,
        order_type,
        time_in_force: None,
        price: if limit {
            dec(&f("ordPx"), ord_px)?
        } else {
            Fixed::ZERO
        },
        trigger_price: opt_dec(&f("triggerPx"), trigger)?,
        qty: opt_dec(&f("sz"), a.sz)?,
        filled_qty,
        avg_price,
        reduce_only: a.reduce_only == "true",
        reason,
        ts_event_ns: opt_ms_to_ns(&f("uTime"), a.u_time)?,
    }))
}

fn algo_orders(text: &str, channel: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    let push: Push<AlgoRow> = parse_push(text, channel)?;
    let what = format!("okx {channel}");
    push.data.iter().map(|a| algo_row_event(&what, a)).collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PositionRow<'a> {
    inst_id: &'a str,
    #[serde(default)]
    pos_side: &'a str,
    pos: &'a str,
    #[serde(default)]
    avg_px: &'a str,
    #[serde(default)]
    upl: &'a str,
    #[serde(default)]
    liq_px: &'a str,
    #[serde(default)]
    lever: &'a str,
    #[serde(default)]
    u_time: &'a str,
}

/// A position. In net mode OKX signs `pos`; in long/short mode `pos` is a size and `posSide`
/// says the direction, so a short becomes negative.
pub(super) fn position_row(what: &str, p: &PositionRow) -> Result<VenueEvent, DecodeError> {
    let f = |name: &str| format!("{what} {name}");
    let pos = opt_dec_lossy(&f("pos"), p.pos)?;
    let size = pos
        .raw()
        .checked_abs()
        .ok_or_else(|| DecodeError::malformed(f("pos"), format!("{:?} is out of range", p.pos)))?;
    let qty = match p.pos_side {
        "short" => Fixed::from_raw(-size),
        "long" => Fixed::from_raw(size),
        _ => pos,
    };
    Ok(VenueEvent::Position(PositionUpdate {
        symbol: symbol(&f("instId"), p.inst_id)?,
        qty,
        entry_price: opt_dec_lossy(&f("avgPx"), p.avg_px)?,
        unrealized_pnl: opt_dec_lossy(&f("upl"), p.upl)?,
        liquidation_price: opt_dec_lossy(&f("liqPx"), p.liq_px)?,
        leverage: opt_dec_lossy(&f("lever"), p.lever)?,
        ts_event_ns: opt_ms_to_ns(&f("uTime"), p.u_time)?,
    }))
}

fn positions(text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    let push: Push<PositionRow> = parse_push(text, "positions")?;
    push.data
        .iter()
        .map(|p| position_row("okx positions", p))
        .collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AccountRow<'a> {
    #[serde(borrow, default)]
    details: Vec<DetailRow<'a>>,
    #[serde(default)]
    u_time: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DetailRow<'a> {
    ccy: &'a str,
    #[serde(default)]
    avail_bal: &'a str,
    #[serde(default)]
    frozen_bal: &'a str,
    #[serde(default)]
    u_time: &'a str,
}

/// One currency's balance: `availBal` free, `frozenBal` locked. OKX prints balances with up to
/// 16 decimals (interest, conversions), so they are rounded to keel's 8.
pub(super) fn detail_row(
    what: &str,
    d: &DetailRow,
    fallback_ts: &str,
) -> Result<VenueEvent, DecodeError> {
    let f = |name: &str| format!("{what} {name}");
    let ts = if d.u_time.is_empty() {
        fallback_ts
    } else {
        d.u_time
    };
    Ok(VenueEvent::Balance(BalanceUpdate {
        asset: d.ccy.to_string(),
        free: opt_dec_lossy(&f("availBal"), d.avail_bal)?,
        locked: opt_dec_lossy(&f("frozenBal"), d.frozen_bal)?,
        ts_event_ns: opt_ms_to_ns(&f("uTime"), ts)?,
    }))
}

pub(super) fn account_row(what: &str, a: &AccountRow) -> Result<Vec<VenueEvent>, DecodeError> {
    a.details
        .iter()
        .map(|d| detail_row(what, d, a.u_time))
        .collect()
}

fn account(text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    let push: Push<AccountRow> = parse_push(text, "account")?;
    let mut out = Vec::new();
    for a in &push.data {
        out.extend(account_row("okx account", a)?);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Events and op responses (rare; `Value` is fine here)

fn str_of<'v>(obj: &'v Map<String, Value>, key: &str) -> &'v str {
    obj.get(key).and_then(Value::as_str).unwrap_or("")
}

/// `channel:instId` (or instFamily / instType), how keel names an OKX subscription.
fn topic(arg: Option<&Value>) -> String {
    let Some(arg) = arg.and_then(Value::as_object) else {
        return String::new();
    };
    let channel = str_of(arg, "channel");
    for key in ["instId", "instFamily", "instType", "ccy"] {
        let v = str_of(arg, key);
        if !v.is_empty() {
            return format!("{channel}:{v}");
        }
    }
    channel.to_string()
}

fn code_msg(obj: &Map<String, Value>) -> String {
    let code = match obj.get("code") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    format!("{code} {}", str_of(obj, "msg")).trim().to_string()
}

/// 600xx codes about the login itself (invalid key/sign/timestamp/passphrase, not logged in).
fn is_login_error(code: &str) -> bool {
    matches!(
        code,
        "60004" | "60005" | "60006" | "60007" | "60009" | "60011" | "60024" | "60026"
    )
}

pub(super) fn decode_event(obj: &Map<String, Value>) -> Result<Vec<VenueEvent>, DecodeError> {
    let control = match str_of(obj, "event") {
        "login" => {
            let code = str_of(obj, "code");
            if code == "0" || code.is_empty() {
                Control::AuthOk
            } else {
                Control::AuthFailed {
                    reason: code_msg(obj),
                }
            }
        }
        "subscribe" => Control::Subscribed {
            topic: topic(obj.get("arg")),
        },
        "unsubscribe" => Control::Response {
            id: "unsubscribe".into(),
            ok: true,
            detail: topic(obj.get("arg")),
        },
        "error" => {
            if is_login_error(str_of(obj, "code")) {
                Control::AuthFailed {
                    reason: code_msg(obj),
                }
            } else {
                Control::SubscribeFailed {
                    topic: topic(obj.get("arg")),
                    reason: code_msg(obj),
                }
            }
        }
        // e.g. 64008: the connection will close for a service upgrade; reconnect.
        "notice" => Control::StreamExpiring {
            reason: code_msg(obj),
        },
        other => return Err(DecodeError::Unsupported(format!("okx {other} event"))),
    };
    Ok(vec![VenueEvent::Control(control)])
}

/// Response to an order-entry request sent over the private WebSocket (`op` order,
/// cancel-order, amend-order, batch-orders, ...). The top-level `code` is `1`/`2` when some
/// items failed; each item has its own `sCode`/`sMsg`.
pub(super) fn decode_op_response(obj: &Map<String, Value>) -> Result<Vec<VenueEvent>, DecodeError> {
    let op = str_of(obj, "op");
    if obj.contains_key("args") {
        return Err(DecodeError::Unsupported(format!("okx {op} request")));
    }
    let (ok, detail) = ack_rows(obj);
    Ok(vec![VenueEvent::Control(Control::Response {
        id: str_of(obj, "id").to_string(),
        ok,
        detail,
    })])
}

/// Whether an envelope with per-item `sCode`s succeeded, and a detail: the ids placed, or the
/// first failure.
pub(super) fn ack_rows(obj: &Map<String, Value>) -> (bool, String) {
    let top_ok = matches!(obj.get("code"), Some(Value::String(c)) if c == "0")
        || matches!(obj.get("code"), Some(Value::Number(n)) if n.as_i64() == Some(0));
    let rows: Vec<&Map<String, Value>> = obj
        .get("data")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default();
    let failed = rows.iter().find(|r| {
        let s = str_of(r, "sCode");
        !s.is_empty() && s != "0"
    });
    match failed {
        Some(r) => (
            false,
            format!("{} {}", str_of(r, "sCode"), str_of(r, "sMsg"))
                .trim()
                .to_string(),
        ),
        None if !top_ok => (false, code_msg(obj)),
        None => (
            true,
            rows.iter().map(|r| ack_id(r)).collect::<Vec<_>>().join(","),
        ),
    }
}

/// The id an ack names: the venue order id, else the algo id, else the client id.
pub(super) fn ack_id(r: &Map<String, Value>) -> String {
    for key in ["ordId", "algoId", "clOrdId", "algoClOrdId"] {
        let v = str_of(r, key);
        if !v.is_empty() {
            return v.to_string();
        }
    }
    String::new()
}
