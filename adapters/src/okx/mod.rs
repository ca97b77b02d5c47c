//! OKX v5 codec: WebSocket pushes, REST responses, error classification and request builders.
//!
//! [`decode`] takes any one message OKX sends: a WebSocket push (`{"arg":..,"data":[..]}`), a
//! WebSocket event (`login`, `subscribe`, `error`, `notice`), an order-entry (`op`) response, the
//! text `pong`, or a REST body (`{"code":"0","msg":"","data":[..]}`). REST bodies that do not say
//! which instrument or bar they describe (candles, order book) have their own parsers
//! ([`parse_candles`], [`parse_order_book`]); instrument metadata goes through
//! [`parse_instruments`].
//!
//! Conventions worth knowing:
//! - Fees: OKX reports a charged fee as a *negative* number and a rebate as a positive one;
//!   keel's `FillEvent::fee` is the opposite (charged positive), so every OKX fee is negated.
//! - Quantities are in OKX's own unit: contracts for SWAP/FUTURES/OPTION (multiply by the
//!   instrument's `contract_size`, OKX `ctVal`), base currency for SPOT/MARGIN.
//! - Timestamps are the message's own (`ts`, `uTime`, `fillTime`), in ms, converted to ns.

mod errors;
mod requests;
mod rest;
mod ws;

pub use errors::parse_error;
pub use requests::*;
pub use rest::{parse_candles, parse_instruments, parse_order_book};

use crate::model::{DecodeError, VenueEvent, dec, dec_lossy};
use keel_engine::candle::Interval;
use keel_engine::event::Side;
use keel_engine::fixed::Fixed;

/// Decode one message (WebSocket frame or REST response body).
pub fn decode(text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    let trimmed = text.trim();
    if trimmed == "pong" {
        return Ok(vec![VenueEvent::Control(crate::model::Control::Pong)]);
    }
    if trimmed == "ping" {
        return Err(DecodeError::Unsupported("okx ping request".into()));
    }
    // Pushes are the hot path: route them from a light header, then parse the rows typed.
    if let Ok(head) = serde_json::from_str::<ws::Head>(trimmed)
        && head.event.is_none()
        && head.op.is_none()
        && head.data.is_some()
        && let Some(arg) = &head.arg
    {
        return ws::decode_push(trimmed, &arg.channel);
    }
    let value: serde_json::Value = serde_json::from_str(trimmed)
        .map_err(|e| DecodeError::malformed("okx message", format!("not JSON: {e}")))?;
    let Some(obj) = value.as_object() else {
        return Err(DecodeError::Unsupported(
            "okx message that is not a JSON object".into(),
        ));
    };
    if obj.contains_key("event") {
        return ws::decode_event(obj);
    }
    if obj.contains_key("op") {
        return ws::decode_op_response(obj);
    }
    if obj.contains_key("arg") && obj.contains_key("data") {
        return Err(DecodeError::malformed(
            "okx push arg.channel",
            "missing or not a string",
        ));
    }
    if obj.contains_key("code") && (obj.contains_key("data") || obj.contains_key("msg")) {
        return rest::decode_rest(obj);
    }
    // Some captures hold one REST row without its envelope.
    rest::decode_bare_row(obj)
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the submodules.

/// OKX millisecond timestamp text → ns.
pub(crate) fn ms_to_ns(what: &str, text: &str) -> Result<i64, DecodeError> {
    let ms: i64 = text
        .parse()
        .map_err(|_| DecodeError::malformed(what, format!("{text:?} is not a ms timestamp")))?;
    ms.checked_mul(1_000_000)
        .ok_or_else(|| DecodeError::malformed(what, format!("{text:?} overflows ns")))
}

/// Like [`ms_to_ns`], but OKX's empty string (and "0") mean "not given" → 0.
pub(crate) fn opt_ms_to_ns(what: &str, text: &str) -> Result<i64, DecodeError> {
    if text.is_empty() {
        Ok(0)
    } else {
        ms_to_ns(what, text)
    }
}

/// Exact decimal where OKX's empty string means zero.
pub(crate) fn opt_dec(what: &str, text: &str) -> Result<Fixed, DecodeError> {
    if text.is_empty() {
        Ok(Fixed::ZERO)
    } else {
        dec(what, text)
    }
}

/// Rounded decimal (venue-computed values) where the empty string means zero.
pub(crate) fn opt_dec_lossy(what: &str, text: &str) -> Result<Fixed, DecodeError> {
    if text.is_empty() {
        Ok(Fixed::ZERO)
    } else {
        dec_lossy(what, text)
    }
}

pub(crate) fn side(what: &str, text: &str) -> Result<Side, DecodeError> {
    match text {
        "buy" => Ok(Side::Buy),
        "sell" => Ok(Side::Sell),
        _ => Err(DecodeError::malformed(
            what,
            format!("{text:?} is not buy/sell"),
        )),
    }
}

/// OKX negative-means-charged fee → keel positive-means-charged fee.
pub(crate) fn keel_fee(what: &str, okx_fee: &str) -> Result<Fixed, DecodeError> {
    let fee = opt_dec_lossy(what, okx_fee)?;
    fee.raw()
        .checked_neg()
        .map(Fixed::from_raw)
        .ok_or_else(|| DecodeError::malformed(what, format!("{okx_fee:?} cannot be negated")))
}

/// An OKX bar (`1m`, `1H`, `1Dutc`, ...) as a keel interval. Monthly bars have no fixed length.
pub fn bar_to_interval(bar: &str) -> Result<Interval, DecodeError> {
    let core = bar.strip_suffix("utc").unwrap_or(bar);
    let Some(unit) = core.chars().last() else {
        return Err(DecodeError::malformed("okx bar", "empty bar"));
    };
    let num = &core[..core.len() - unit.len_utf8()];
    let keel_unit = match unit {
        's' => "s",
        'm' => "m",
        'H' => "h",
        'D' => "d",
        'W' => "w",
        'M' => {
            return Err(DecodeError::Unsupported(format!(
                "okx {bar} bars (months have no fixed length)"
            )));
        }
        _ => {
            return Err(DecodeError::malformed(
                "okx bar",
                format!("{bar:?} is not an OKX bar"),
            ));
        }
    };
    Interval::parse(&format!("{num}{keel_unit}"))
        .map_err(|e| DecodeError::malformed("okx bar", format!("{bar:?}: {e}")))
}

/// The OKX bar name for a keel interval. Bars of 6h and longer use OKX's `utc` variants: the
/// plain `6H`/`12H`/`1D`/`1W` bars are aligned to Hong Kong time (UTC+8), keel's to UTC.
pub fn interval_to_bar(interval: Interval) -> Option<String> {
    const S: i64 = 1_000_000_000;
    let secs = interval.ns / S;
    if interval.ns % S != 0 || secs <= 0 {
        return None;
    }
    let (n, unit, utc) = if secs % 604_800 == 0 {
        (secs / 604_800, "W", true)
    } else if secs % 86_400 == 0 {
        (secs / 86_400, "D", true)
    } else if secs % 3_600 == 0 {
        let h = secs / 3_600;
        (h, "H", h >= 6)
    } else if secs % 60 == 0 {
        (secs / 60, "m", false)
    } else {
        (secs, "s", false)
    };
    let bar = format!("{n}{unit}{}", if utc { "utc" } else { "" });
    // Only the bars OKX lists; anything else would be rejected by the venue.
    const BARS: [&str; 15] = [
        "1s", "1m", "3m", "5m", "15m", "30m", "1H", "2H", "4H", "6Hutc", "12Hutc", "1Dutc",
        "2Dutc", "3Dutc", "1Wutc",
    ];
    BARS.contains(&bar.as_str()).then_some(bar)
}
