//! Private data: orders, executions, positions and wallet balances, from the private
//! WebSocket topics and the matching REST queries (same field names in both).

use keel_engine::event::{Liquidity, Side};
use keel_engine::fixed::Fixed;
use serde::Deserialize;
use serde_json::Value;

use super::market::Push;
use super::util::{json_err, opt_dec, opt_dec_lossy, opt_i64, req_ms_to_ns, side};
use crate::model::{
    BalanceUpdate, DecodeError, FillEvent, OrderEvent, OrderState, OrderType, PositionUpdate,
    TimeInForce, VenueEvent, dec, symbol,
};

#[derive(Deserialize)]
struct OrderRow<'a> {
    symbol: &'a str,
    #[serde(rename = "orderId")]
    order_id: &'a str,
    #[serde(rename = "orderLinkId", default, borrow)]
    order_link_id: Option<&'a str>,
    side: &'a str,
    #[serde(rename = "orderType")]
    order_type: &'a str,
    #[serde(default, borrow)]
    price: Option<&'a str>,
    qty: &'a str,
    #[serde(rename = "timeInForce", default, borrow)]
    time_in_force: Option<&'a str>,
    #[serde(rename = "orderStatus")]
    order_status: &'a str,
    #[serde(rename = "cumExecQty", default, borrow)]
    cum_exec_qty: Option<&'a str>,
    #[serde(rename = "avgPrice", default, borrow)]
    avg_price: Option<&'a str>,
    #[serde(rename = "triggerPrice", default, borrow)]
    trigger_price: Option<&'a str>,
    #[serde(rename = "stopOrderType", default, borrow)]
    stop_order_type: Option<&'a str>,
    #[serde(rename = "triggerDirection", default)]
    trigger_direction: Option<i64>,
    #[serde(rename = "reduceOnly", default)]
    reduce_only: Option<bool>,
    #[serde(rename = "rejectReason", default, borrow)]
    reject_reason: Option<&'a str>,
    #[serde(rename = "cancelType", default, borrow)]
    cancel_type: Option<&'a str>,
    #[serde(rename = "updatedTime", default, deserialize_with = "opt_i64")]
    updated_time: Option<i64>,
    #[serde(rename = "createdTime", default, deserialize_with = "opt_i64")]
    created_time: Option<i64>,
}

/// Bybit `orderStatus` (docs, Enums: orderStatus) to keel.
fn order_state(status: &str) -> Result<OrderState, DecodeError> {
    Ok(match status {
        "New" => OrderState::New,
        "PartiallyFilled" => OrderState::PartiallyFilled,
        "Filled" => OrderState::Filled,
        "Cancelled" => OrderState::Canceled,
        "Rejected" => OrderState::Rejected,
        "Untriggered" => OrderState::Untriggered,
        "Triggered" => OrderState::Triggered,
        // A conditional / TP-SL / OCO order cancelled before it triggered.
        "Deactivated" => OrderState::Canceled,
        // Spot only: partly filled, the rest cancelled. `filled_qty` keeps the partial fill.
        "PartiallyFilledCanceled" => OrderState::Canceled,
        other => {
            return Err(DecodeError::malformed(
                "bybit order orderStatus",
                format!("unknown value {other:?}"),
            ));
        }
    })
}

/// `orderType` is what the order becomes once live; `stopOrderType` says whether it waits for a
/// trigger. Bybit's generic conditional (`Stop`, and spot `tpslOrder`) is a stop when the trigger
/// is against the order's side (buy on a rise, sell on a fall) and a take-profit / if-touched
/// order otherwise (`triggerDirection` 1 = rise, 2 = fall; unknown direction counts as a stop).
fn order_type(
    order_type: &str,
    stop_order_type: Option<&str>,
    side: Side,
    trigger_direction: Option<i64>,
) -> OrderType {
    let limit = match order_type {
        "Limit" => true,
        "Market" => false,
        _ => return OrderType::Other,
    };
    let take_profit = match stop_order_type.unwrap_or("") {
        "" | "UNKNOWN" => {
            return if limit {
                OrderType::Limit
            } else {
                OrderType::Market
            };
        }
        "StopLoss" | "PartialStopLoss" => false,
        "TakeProfit" | "PartialTakeProfit" => true,
        "TrailingStop" => return OrderType::TrailingStop,
        "Stop" | "tpslOrder" => matches!(
            (side, trigger_direction),
            (Side::Buy, Some(2)) | (Side::Sell, Some(1))
        ),
        // OcoOrder, BidirectionalTpslOrder, MmRateClose: several legs or venue-managed.
        _ => return OrderType::Other,
    };
    match (take_profit, limit) {
        (false, false) => OrderType::StopMarket,
        (false, true) => OrderType::StopLimit,
        (true, false) => OrderType::TakeProfitMarket,
        (true, true) => OrderType::TakeProfitLimit,
    }
}

fn time_in_force(tif: Option<&str>) -> Option<TimeInForce> {
    match tif? {
        "GTC" => Some(TimeInForce::Gtc),
        "IOC" => Some(TimeInForce::Ioc),
        "FOK" => Some(TimeInForce::Fok),
        "PostOnly" => Some(TimeInForce::PostOnly),
        // RPI and anything new: keel has no name for it.
        _ => None,
    }
}

/// Bybit fills unused reason fields with placeholders ("", "EC_NoError", "UNKNOWN"); those mean
/// no reason. A cancel's reason is its `cancelType` (e.g. `CancelByUser`, `CancelByDCP`).
fn reason(state: OrderState, reject: Option<&str>, cancel: Option<&str>) -> String {
    let meaningful = |s: &&str| !s.is_empty() && *s != "EC_NoError" && *s != "UNKNOWN";
    if let Some(r) = reject.filter(meaningful) {
        return r.to_string();
    }
    if matches!(state, OrderState::Canceled | OrderState::Rejected)
        && let Some(c) = cancel.filter(meaningful)
    {
        return c.to_string();
    }
    String::new()
}

fn order_event(what: &str, o: &OrderRow<'_>) -> Result<OrderEvent, DecodeError> {
    let state = order_state(o.order_status)?;
    let side = side(&format!("{what} side"), o.side)?;
    let order_type = order_type(o.order_type, o.stop_order_type, side, o.trigger_direction);
    // Bybit echoes a protection price on market orders; keel's model says zero for market.
    let price = if o.order_type == "Market" {
        Fixed::ZERO
    } else {
        opt_dec(&format!("{what} price"), o.price)?
    };
    Ok(OrderEvent {
        symbol: symbol(&format!("{what} symbol"), o.symbol)?,
        client_order_id: o.order_link_id.unwrap_or("").to_string(),
        venue_order_id: o.order_id.to_string(),
        state,
        side,
        order_type,
        time_in_force: time_in_force(o.time_in_force),
        price,
        trigger_price: opt_dec(&format!("{what} triggerPrice"), o.trigger_price)?,
        qty: dec(&format!("{what} qty"), o.qty)?,
        filled_qty: opt_dec(&format!("{what} cumExecQty"), o.cum_exec_qty)?,
        avg_price: opt_dec_lossy(&format!("{what} avgPrice"), o.avg_price)?,
        reduce_only: o.reduce_only.unwrap_or(false),
        reason: reason(state, o.reject_reason, o.cancel_type),
        ts_event_ns: req_ms_to_ns(
            &format!("{what} updatedTime"),
            o.updated_time.or(o.created_time),
        )?,
    })
}

/// `order` topic (and `order.spot`, `order.linear`, ...).
pub(crate) fn ws_orders(text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    const WHAT: &str = "bybit order";
    let msg: Push<Vec<OrderRow>> = serde_json::from_str(text).map_err(|e| json_err(WHAT, e))?;
    msg.data
        .iter()
        .map(|o| order_event(WHAT, o).map(VenueEvent::Order))
        .collect()
}

/// REST `GET /v5/order/realtime` and `/v5/order/history` lists.
pub(crate) fn rest_orders(list: &[Value]) -> Result<Vec<VenueEvent>, DecodeError> {
    const WHAT: &str = "bybit REST order";
    list.iter()
        .map(|item| {
            let o = OrderRow::deserialize(item).map_err(|e| json_err(WHAT, e))?;
            order_event(WHAT, &o).map(VenueEvent::Order)
        })
        .collect()
}

#[derive(Deserialize)]
struct ExecRow<'a> {
    symbol: &'a str,
    #[serde(rename = "orderId")]
    order_id: &'a str,
    #[serde(rename = "orderLinkId", default, borrow)]
    order_link_id: Option<&'a str>,
    #[serde(rename = "execId")]
    exec_id: &'a str,
    #[serde(rename = "execPrice")]
    exec_price: &'a str,
    #[serde(rename = "execQty")]
    exec_qty: &'a str,
    #[serde(rename = "execType", default, borrow)]
    exec_type: Option<&'a str>,
    #[serde(rename = "execFee", default, borrow)]
    exec_fee: Option<&'a str>,
    #[serde(rename = "feeCurrency", default, borrow)]
    fee_currency: Option<&'a str>,
    #[serde(rename = "isMaker", default)]
    is_maker: Option<bool>,
    side: &'a str,
    #[serde(rename = "execTime", default, deserialize_with = "opt_i64")]
    exec_time: Option<i64>,
}

/// Which `execType`s move a position and so are fills. `Funding` is the periodic funding fee: no
/// quantity changes hands, so it is not a fill (its cash effect shows in the `wallet` topic).
/// Liquidation (`BustTrade`), auto-deleveraging (`AdlTrade`), delivery and settlement of delisted
/// contracts, block trades, moved positions and spread legs all change the position and are
/// fills. `execution.fast` has no `execType`: it only carries trades (Bybit docs).
fn is_fill(exec_type: Option<&str>) -> bool {
    matches!(
        exec_type,
        None | Some(
            "Trade"
                | "AdlTrade"
                | "BustTrade"
                | "BlockTrade"
                | "MovePosition"
                | "Delivery"
                | "Settle"
                | "FutureSpread"
        )
    )
}

fn fill_event(what: &str, x: &ExecRow<'_>) -> Result<FillEvent, DecodeError> {
    // `execution.fast` has no isMaker in Bybit's field list and "orderLinkId ... won't be output
    // unless it is taker trade"; the regular `execution` topic always says isMaker.
    let maker = x.is_maker.unwrap_or(x.order_link_id.is_none());
    Ok(FillEvent {
        symbol: symbol(&format!("{what} symbol"), x.symbol)?,
        client_order_id: x.order_link_id.unwrap_or("").to_string(),
        venue_order_id: x.order_id.to_string(),
        trade_id: x.exec_id.to_string(),
        side: side(&format!("{what} side"), x.side)?,
        price: dec(&format!("{what} execPrice"), x.exec_price)?,
        qty: dec(&format!("{what} execQty"), x.exec_qty)?,
        // Positive = paid, negative = maker rebate, as keel wants. `execution.fast` has no
        // fee at all: zero with an empty asset, to be reconciled from `execution`.
        fee: opt_dec_lossy(&format!("{what} execFee"), x.exec_fee)?,
        fee_asset: x.fee_currency.unwrap_or("").to_string(),
        liquidity: if maker {
            Liquidity::Maker
        } else {
            Liquidity::Taker
        },
        ts_event_ns: req_ms_to_ns(&format!("{what} execTime"), x.exec_time)?,
    })
}

fn fills(what: &str, rows: &[ExecRow<'_>]) -> Result<Vec<VenueEvent>, DecodeError> {
    let mut out = Vec::with_capacity(rows.len());
    let mut skipped = None;
    for x in rows {
        if is_fill(x.exec_type) {
            out.push(VenueEvent::Fill(fill_event(what, x)?));
        } else {
            skipped = x.exec_type;
        }
    }
    match skipped {
        Some(kind) if out.is_empty() => Err(DecodeError::Unsupported(format!(
            "{what} execType={kind} (not a fill; a funding fee shows in the wallet balance)"
        ))),
        _ => Ok(out),
    }
}

/// `execution`, `execution.fast` and their per-category variants.
pub(crate) fn ws_executions(text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    const WHAT: &str = "bybit execution";
    let msg: Push<Vec<ExecRow>> = serde_json::from_str(text).map_err(|e| json_err(WHAT, e))?;
    fills(WHAT, &msg.data)
}

/// REST `GET /v5/execution/list`.
pub(crate) fn rest_executions(list: &[Value]) -> Result<Vec<VenueEvent>, DecodeError> {
    const WHAT: &str = "bybit REST execution";
    let rows = list
        .iter()
        .map(|item| ExecRow::deserialize(item).map_err(|e| json_err(WHAT, e)))
        .collect::<Result<Vec<_>, _>>()?;
    fills(WHAT, &rows)
}

#[derive(Deserialize)]
struct PositionRow<'a> {
    symbol: &'a str,
    #[serde(default, borrow)]
    side: Option<&'a str>,
    size: &'a str,
    #[serde(rename = "entryPrice", default, borrow)]
    entry_price: Option<&'a str>,
    #[serde(rename = "avgPrice", default, borrow)]
    avg_price: Option<&'a str>,
    #[serde(rename = "liqPrice", default, borrow)]
    liq_price: Option<&'a str>,
    #[serde(default, borrow)]
    leverage: Option<&'a str>,
    #[serde(rename = "unrealisedPnl", default, borrow)]
    unrealised_pnl: Option<&'a str>,
    #[serde(rename = "updatedTime", default, deserialize_with = "opt_i64")]
    updated_time: Option<i64>,
}

/// `side` Buy = long, Sell = short, ""/None = flat (Bybit sends "" for an empty one-way
/// position). In hedge mode each side is its own row (`positionIdx` 1/2), reported separately.
fn position_event(
    what: &str,
    p: &PositionRow<'_>,
    fallback_ms: Option<i64>,
) -> Result<PositionUpdate, DecodeError> {
    let size = dec(&format!("{what} size"), p.size)?;
    let qty = match p.side.unwrap_or("") {
        "Buy" => size,
        "Sell" => Fixed::ZERO
            .checked_sub(size)
            .ok_or_else(|| DecodeError::malformed(format!("{what} size"), "out of range"))?,
        "" | "None" if size.is_zero() => Fixed::ZERO,
        other => {
            return Err(DecodeError::malformed(
                format!("{what} side"),
                format!("{other:?} with size {size}"),
            ));
        }
    };
    // WebSocket rows say entryPrice, REST rows avgPrice.
    let entry = p.entry_price.filter(|s| !s.is_empty()).or(p.avg_price);
    Ok(PositionUpdate {
        symbol: symbol(&format!("{what} symbol"), p.symbol)?,
        qty,
        entry_price: opt_dec_lossy(&format!("{what} entryPrice"), entry)?,
        unrealized_pnl: opt_dec_lossy(&format!("{what} unrealisedPnl"), p.unrealised_pnl)?,
        liquidation_price: opt_dec_lossy(&format!("{what} liqPrice"), p.liq_price)?,
        leverage: opt_dec_lossy(&format!("{what} leverage"), p.leverage)?,
        ts_event_ns: req_ms_to_ns(
            &format!("{what} updatedTime"),
            p.updated_time.or(fallback_ms),
        )?,
    })
}

/// `position` topic (and per-category variants).
pub(crate) fn ws_positions(text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    const WHAT: &str = "bybit position";
    let msg: Push<Vec<PositionRow>> = serde_json::from_str(text).map_err(|e| json_err(WHAT, e))?;
    msg.data
        .iter()
        .map(|p| position_event(WHAT, p, msg.creation_time).map(VenueEvent::Position))
        .collect()
}

/// REST `GET /v5/position/list`.
pub(crate) fn rest_positions(
    list: &[Value],
    time_ms: Option<i64>,
) -> Result<Vec<VenueEvent>, DecodeError> {
    const WHAT: &str = "bybit REST position";
    list.iter()
        .map(|item| {
            let p = PositionRow::deserialize(item).map_err(|e| json_err(WHAT, e))?;
            position_event(WHAT, &p, time_ms).map(VenueEvent::Position)
        })
        .collect()
}

#[derive(Deserialize)]
struct CoinRow<'a> {
    coin: &'a str,
    #[serde(rename = "walletBalance", default, borrow)]
    wallet_balance: Option<&'a str>,
    #[serde(default, borrow)]
    locked: Option<&'a str>,
    #[serde(rename = "totalOrderIM", default, borrow)]
    total_order_im: Option<&'a str>,
    #[serde(rename = "totalPositionIM", default, borrow)]
    total_position_im: Option<&'a str>,
}

#[derive(Deserialize)]
struct AccountRow<'a> {
    #[serde(borrow)]
    coin: Vec<CoinRow<'a>>,
}

/// One coin of a unified account. `locked` is what open orders and positions hold: the spot
/// order lock (`locked`) plus the order and position initial margin (`totalOrderIM`,
/// `totalPositionIM`), capped at the wallet balance because margin can exceed it when the
/// position is under water. `free` is the rest of `walletBalance`; on the recorded wallet pushes
/// this equals the venue's own `availableToWithdraw`.
fn balance_event(what: &str, c: &CoinRow<'_>, ts_ms: i64) -> Result<BalanceUpdate, DecodeError> {
    let total = opt_dec_lossy(&format!("{what} walletBalance"), c.wallet_balance)?;
    let mut held = Fixed::ZERO;
    for (field, value) in [
        ("locked", c.locked),
        ("totalOrderIM", c.total_order_im),
        ("totalPositionIM", c.total_position_im),
    ] {
        let v = opt_dec_lossy(&format!("{what} {field}"), value)?;
        held = held
            .checked_add(v)
            .ok_or_else(|| DecodeError::malformed(format!("{what} {field}"), "sum overflows"))?;
    }
    let locked = held.min(total.max(Fixed::ZERO)).max(Fixed::ZERO);
    let free = total
        .checked_sub(locked)
        .ok_or_else(|| DecodeError::malformed(format!("{what} walletBalance"), "out of range"))?
        .max(Fixed::ZERO);
    Ok(BalanceUpdate {
        asset: c.coin.to_string(),
        free,
        locked,
        ts_event_ns: super::util::ms_to_ns(&format!("{what} time"), ts_ms)?,
    })
}

fn balances(
    what: &str,
    accounts: &[AccountRow<'_>],
    ts_ms: i64,
) -> Result<Vec<VenueEvent>, DecodeError> {
    let mut out = Vec::new();
    for a in accounts {
        for c in &a.coin {
            out.push(VenueEvent::Balance(balance_event(what, c, ts_ms)?));
        }
    }
    Ok(out)
}

/// `wallet` topic; the event time is the push's `creationTime`.
pub(crate) fn ws_wallet(text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    const WHAT: &str = "bybit wallet";
    let msg: Push<Vec<AccountRow>> = serde_json::from_str(text).map_err(|e| json_err(WHAT, e))?;
    let ts = msg
        .creation_time
        .ok_or_else(|| DecodeError::malformed("bybit wallet creationTime", "missing"))?;
    balances(WHAT, &msg.data, ts)
}

/// REST `GET /v5/account/wallet-balance`; the event time is the envelope's `time`.
pub(crate) fn rest_wallet(
    list: &[Value],
    time_ms: Option<i64>,
) -> Result<Vec<VenueEvent>, DecodeError> {
    const WHAT: &str = "bybit REST wallet-balance";
    let ts = time_ms
        .ok_or_else(|| DecodeError::malformed("bybit REST wallet-balance time", "missing"))?;
    let accounts = list
        .iter()
        .map(|item| AccountRow::deserialize(item).map_err(|e| json_err(WHAT, e)))
        .collect::<Result<Vec<_>, _>>()?;
    balances(WHAT, &accounts, ts)
}
