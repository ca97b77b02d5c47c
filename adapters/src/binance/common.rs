//! Helpers shared by the Binance stream and REST decoders: field parsing with message-kind
//! context, and the venue's order vocabulary mapped onto keel's.

use keel_engine::event::Side;
use keel_engine::fixed::Fixed;
use keel_engine::symbol::Symbol;

use crate::model::{DecodeError, OrderState, OrderType, TimeInForce, dec, dec_lossy, symbol};

/// Which Binance market a message came from; some words mean different things on each
/// (spot `TAKE_PROFIT` is a market order once triggered, USD-M `TAKE_PROFIT` a limit order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Market {
    Spot,
    Usdm,
}

impl Market {
    pub(super) fn name(self) -> &'static str {
        match self {
            Market::Spot => "binance-spot",
            Market::Usdm => "binance-usdm",
        }
    }
}

/// Prefix a field-level error with the message kind, so `what` reads `binance trade p`.
pub(super) fn within(kind: &str, e: DecodeError) -> DecodeError {
    match e {
        DecodeError::Malformed { what, detail } => DecodeError::Malformed {
            what: format!("{kind} {what}"),
            detail,
        },
        other => other,
    }
}

pub(super) fn json_err(kind: &str, e: serde_json::Error) -> DecodeError {
    DecodeError::malformed(kind, e.to_string())
}

/// An exact venue decimal (price or quantity).
pub(super) fn num(kind: &str, field: &str, text: &str) -> Result<Fixed, DecodeError> {
    dec(field, text).map_err(|e| within(kind, e))
}

/// A venue-computed decimal (average price, PnL, rate, fee), rounded to 8 places.
pub(super) fn num_lossy(kind: &str, field: &str, text: &str) -> Result<Fixed, DecodeError> {
    dec_lossy(field, text).map_err(|e| within(kind, e))
}

/// Binance sends `null`, `""` or leaves a field out when a value does not apply (a market
/// order's price, an untriggered order's average); all of those are zero here.
pub(super) fn opt_num(kind: &str, field: &str, text: Option<&str>) -> Result<Fixed, DecodeError> {
    match text {
        None | Some("") => Ok(Fixed::ZERO),
        Some(t) => num(kind, field, t),
    }
}

pub(super) fn opt_num_lossy(
    kind: &str,
    field: &str,
    text: Option<&str>,
) -> Result<Fixed, DecodeError> {
    match text {
        None | Some("") => Ok(Fixed::ZERO),
        Some(t) => num_lossy(kind, field, t),
    }
}

pub(super) fn sym(kind: &str, field: &str, text: &str) -> Result<Symbol, DecodeError> {
    symbol(field, text).map_err(|e| within(kind, e))
}

pub(super) fn side(kind: &str, field: &str, text: &str) -> Result<Side, DecodeError> {
    match text {
        "BUY" => Ok(Side::Buy),
        "SELL" => Ok(Side::Sell),
        other => Err(DecodeError::malformed(
            format!("{kind} {field}"),
            format!("{other:?} is not BUY or SELL"),
        )),
    }
}

/// Venue milliseconds to nanoseconds; a value that overflows is malformed, not saturated.
pub(super) fn ms(kind: &str, field: &str, millis: i64) -> Result<i64, DecodeError> {
    millis.checked_mul(1_000_000).ok_or_else(|| {
        DecodeError::malformed(
            format!("{kind} {field}"),
            format!("{millis} ms does not fit in i64 nanoseconds"),
        )
    })
}

/// The order status word (`X` on streams, `status` on REST). `filled` decides
/// `PENDING_CANCEL`, which is not terminal: the order still rests until the cancel lands.
pub(super) fn order_state(
    kind: &str,
    field: &str,
    status: &str,
    filled: Fixed,
) -> Result<OrderState, DecodeError> {
    Ok(match status {
        // NEW_ADL / NEW_INSURANCE are USD-M auto-close orders the venue creates itself.
        "NEW" | "PENDING_NEW" | "NEW_ADL" | "NEW_INSURANCE" => OrderState::New,
        "PARTIALLY_FILLED" => OrderState::PartiallyFilled,
        "FILLED" => OrderState::Filled,
        "CANCELED" => OrderState::Canceled,
        "PENDING_CANCEL" if filled > Fixed::ZERO => OrderState::PartiallyFilled,
        "PENDING_CANCEL" => OrderState::New,
        "REJECTED" => OrderState::Rejected,
        "EXPIRED" | "EXPIRED_IN_MATCH" => OrderState::Expired,
        other => {
            return Err(DecodeError::malformed(
                format!("{kind} {field}"),
                format!("unknown order status {other:?}"),
            ));
        }
    })
}

/// USD-M algo (conditional) order status. `FINISHED` means the triggered order is done in
/// the matching engine: filled when the executed quantity covers the order, else canceled.
pub(super) fn algo_state(
    kind: &str,
    field: &str,
    status: &str,
    qty: Fixed,
    executed: Fixed,
) -> Result<OrderState, DecodeError> {
    Ok(match status {
        "NEW" => OrderState::Untriggered,
        // TRIGGERING: the condition was met and the order is on its way to the matching engine.
        "TRIGGERING" | "TRIGGERED" => OrderState::Triggered,
        "FINISHED" if executed > Fixed::ZERO && (qty.is_zero() || executed >= qty) => {
            OrderState::Filled
        }
        "FINISHED" | "CANCELED" => OrderState::Canceled,
        "REJECTED" => OrderState::Rejected,
        "EXPIRED" => OrderState::Expired,
        other => {
            return Err(DecodeError::malformed(
                format!("{kind} {field}"),
                format!("unknown algo order status {other:?}"),
            ));
        }
    })
}

pub(super) fn order_type(market: Market, text: &str) -> OrderType {
    match (market, text) {
        (_, "MARKET") => OrderType::Market,
        (_, "LIMIT" | "LIMIT_MAKER") => OrderType::Limit,
        (Market::Spot, "STOP_LOSS") | (Market::Usdm, "STOP_MARKET") => OrderType::StopMarket,
        (Market::Spot, "STOP_LOSS_LIMIT") | (Market::Usdm, "STOP") => OrderType::StopLimit,
        (Market::Spot, "TAKE_PROFIT") | (Market::Usdm, "TAKE_PROFIT_MARKET") => {
            OrderType::TakeProfitMarket
        }
        (Market::Spot, "TAKE_PROFIT_LIMIT") | (Market::Usdm, "TAKE_PROFIT") => {
            OrderType::TakeProfitLimit
        }
        (Market::Usdm, "TRAILING_STOP_MARKET") => OrderType::TrailingStop,
        _ => OrderType::Other,
    }
}

/// Time in force as keel models it. Spot `LIMIT_MAKER` is Binance's post-only order type;
/// `GTD` (and anything newer) has no keel equivalent and reads as `None`.
pub(super) fn time_in_force(order_type: &str, tif: Option<&str>) -> Option<TimeInForce> {
    if order_type == "LIMIT_MAKER" {
        return Some(TimeInForce::PostOnly);
    }
    match tif? {
        "GTC" => Some(TimeInForce::Gtc),
        "IOC" => Some(TimeInForce::Ioc),
        "FOK" => Some(TimeInForce::Fok),
        "GTX" => Some(TimeInForce::PostOnly),
        _ => None,
    }
}

/// Average fill price from cumulative quote and cumulative quantity (spot reports no average).
pub(super) fn avg_price(cum_quote: Fixed, filled: Fixed) -> Fixed {
    if filled > Fixed::ZERO {
        cum_quote.checked_div(filled).unwrap_or(Fixed::ZERO)
    } else {
        Fixed::ZERO
    }
}

/// `base - part`, floored at zero (locked funds derived from two venue totals).
pub(super) fn locked(total: Fixed, free: Fixed) -> Fixed {
    total
        .checked_sub(free)
        .filter(|v| *v > Fixed::ZERO)
        .unwrap_or(Fixed::ZERO)
}

/// The symbol of a stream name such as `btcusdt@depth5@100ms` (stream names are lowercase).
pub(super) fn stream_symbol(stream: &str) -> Option<Symbol> {
    let base = stream.split('@').next()?;
    Symbol::new(&base.to_ascii_uppercase()).ok()
}

/// `<symbol>@depth5`, `<symbol>@depth20@100ms`: the partial book depth streams, which carry a
/// snapshot of the top levels rather than a diff.
pub(super) fn is_partial_depth_stream(stream: &str) -> bool {
    stream
        .split('@')
        .nth(1)
        .and_then(|ch| ch.strip_prefix("depth"))
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
}
