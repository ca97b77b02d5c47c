//! Instrument trading rules: turn an order into one the venue will accept, or refuse it, before
//! anything is sent.
//!
//! Rounding never makes an order bigger or more aggressive than the strategy asked for:
//! - quantity is floored to the lot size (rounding up could exceed the balance or the risk
//!   limit the quantity was sized for);
//! - a limit price is rounded away from the market: a buy down, a sell up, so it never pays
//!   more (or sells for less) than intended;
//! - a trigger is rounded so the order fires no earlier than intended: a stop (buy stop above
//!   the market, sell stop below it) is rounded away from the market, buy up and sell down; a
//!   take-profit (buy below the market, sell above it) likewise, buy down and sell up. Every
//!   rounding moves the value by less than one tick.
//!
//! Then the venue's filters are checked on the rounded order: minimum and maximum quantity and
//! minimum notional. A violation is a `VenueError::FilterViolation` with a reason a user can act
//! on; sending the order anyway would only earn the same rejection from the venue, later.

use keel_engine::event::Side;
use keel_engine::fixed::Fixed;

use crate::model::{Instrument, OrderSpec, OrderSpecKind, VenueError};

/// Rounds `spec` to `instrument`'s tick and lot sizes and checks its filters.
///
/// `reference_price` prices a market order for the minimum-notional check (use the current
/// best opposite quote or last trade); it is ignored for orders that carry a price. A market
/// order without one is refused when the instrument has a minimum notional, since the check
/// cannot be made. Stop- and take-profit-market orders use their trigger as the price.
pub fn check_order(
    instrument: &Instrument,
    spec: &OrderSpec,
    reference_price: Option<Fixed>,
) -> Result<OrderSpec, VenueError> {
    let sym = instrument.symbol.as_str();
    let violation = |reason: String| VenueError::FilterViolation(format!("{sym}: {reason}"));

    if spec.symbol != instrument.symbol {
        return Err(violation(format!(
            "the order is for {}, not this instrument",
            spec.symbol
        )));
    }
    if !instrument.trading {
        return Err(violation("the instrument is not trading".to_string()));
    }
    if spec.qty.is_negative() || spec.qty.is_zero() {
        return Err(violation(format!("quantity {} is not positive", spec.qty)));
    }
    let qty = spec.qty.floor_to(instrument.lot_size);
    if qty.is_zero() {
        return Err(violation(format!(
            "quantity {} is below the lot size {} and floors to zero",
            spec.qty, instrument.lot_size
        )));
    }
    if qty < instrument.min_qty {
        return Err(violation(format!(
            "quantity {qty} (from {} floored to the lot size {}) is below the minimum {}",
            spec.qty, instrument.lot_size, instrument.min_qty
        )));
    }
    if !instrument.max_qty.is_zero() && qty > instrument.max_qty {
        return Err(violation(format!(
            "quantity {qty} is above the maximum {}",
            instrument.max_qty
        )));
    }

    let tick = instrument.tick_size;
    let price = |what: &str, value: Fixed, up: bool| -> Result<Fixed, VenueError> {
        if value.is_negative() || value.is_zero() {
            return Err(violation(format!("{what} {value} is not positive")));
        }
        let rounded = if up {
            ceil_to(value, tick)
                .ok_or_else(|| violation(format!("{what} {value} is out of range")))?
        } else {
            value.floor_to(tick)
        };
        if rounded.is_zero() {
            return Err(violation(format!(
                "{what} {value} is below the tick size {tick} and rounds to zero"
            )));
        }
        Ok(rounded)
    };
    let buy = spec.side == Side::Buy;
    let (kind, notional_price) = match spec.kind {
        OrderSpecKind::Market => (OrderSpecKind::Market, reference_price),
        OrderSpecKind::Limit { price: p } => {
            let p = price("limit price", p, !buy)?;
            (OrderSpecKind::Limit { price: p }, Some(p))
        }
        OrderSpecKind::StopMarket { trigger } => {
            let trigger = price("stop trigger", trigger, buy)?;
            (OrderSpecKind::StopMarket { trigger }, Some(trigger))
        }
        OrderSpecKind::StopLimit { trigger, price: p } => {
            let trigger = price("stop trigger", trigger, buy)?;
            let p = price("limit price", p, !buy)?;
            (OrderSpecKind::StopLimit { trigger, price: p }, Some(p))
        }
        OrderSpecKind::TakeProfitMarket { trigger } => {
            let trigger = price("take-profit trigger", trigger, !buy)?;
            (OrderSpecKind::TakeProfitMarket { trigger }, Some(trigger))
        }
    };

    if !instrument.min_notional.is_zero() {
        let Some(p) = notional_price else {
            return Err(violation(format!(
                "a market order needs a reference price to check the minimum notional {}",
                instrument.min_notional
            )));
        };
        // Contract-quoted derivatives (OKX ctVal) are worth qty × contract size in base units.
        let notional = p
            .checked_mul(qty)
            .and_then(|n| n.checked_mul(instrument.contract_size))
            .ok_or_else(|| violation(format!("notional of {qty} at {p} is out of range")))?;
        if notional < instrument.min_notional {
            return Err(violation(format!(
                "notional {notional} ({qty} at {p}) is below the minimum {}",
                instrument.min_notional
            )));
        }
    }

    Ok(OrderSpec {
        kind,
        qty,
        ..spec.clone()
    })
}

/// Smallest multiple of `step` not below `value`; `value` itself if `step <= 0`; `None` on
/// overflow.
fn ceil_to(value: Fixed, step: Fixed) -> Option<Fixed> {
    let floor = value.floor_to(step);
    if floor == value {
        Some(value)
    } else {
        floor.checked_add(step)
    }
}

/// Decimal places of a step's shortest form: `0.01000000` → 2, `1` → 0, `0.00001` → 5.
fn decimals(step: Fixed) -> usize {
    let frac = step.raw().unsigned_abs() % Fixed::SCALE.unsigned_abs();
    if frac == 0 {
        return 0;
    }
    let mut places = Fixed::DECIMALS as usize;
    let mut f = frac;
    while f.is_multiple_of(10) {
        f /= 10;
        places -= 1;
    }
    places
}

/// Prints `value` with exactly as many decimals as `step` has (`0.1` not `0.10000000` for a
/// step of `0.1`; `50000` for a step of `1`), never in exponent form. Venues reject both
/// padding and excess digits in some filters.
///
/// A value off the step's grid keeps the digits it needs rather than losing them: printing a
/// different number than the order holds would be worse than a venue rejection. Values from
/// [`check_order`] are always on the grid. A zero or negative step prints the shortest form.
pub fn format_decimal(value: Fixed, step: Fixed) -> String {
    let places = if step.raw() > 0 {
        decimals(step).max(decimals(value))
    } else {
        decimals(value)
    };
    let sign = if value.is_negative() { "-" } else { "" };
    let abs = value.raw().unsigned_abs();
    let scale = Fixed::SCALE.unsigned_abs();
    let int = abs / scale;
    if places == 0 {
        return format!("{sign}{int}");
    }
    let frac = format!("{:08}", abs % scale);
    // `places` is 1..=8 and `frac` has exactly 8 ASCII digits.
    let frac = frac.get(..places).unwrap_or(&frac);
    format!("{sign}{int}.{frac}")
}
