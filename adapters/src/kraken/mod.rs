//! Kraken spot codec: WebSocket v2, REST responses, error classification and request builders.
//!
//! [`decode`] takes one message: a WebSocket v2 channel message
//! (`{"channel":..,"type":"snapshot"|"update","data":[..]}`), a v2 method response
//! (`{"method":"add_order","success":..,"req_id":..}`), or a REST body
//! (`{"error":[],"result":{..}}`). Kraken futures (a different API: `feed` messages,
//! `"result":"success"` bodies) is reported as `Unsupported("kraken futures ...")`.
//!
//! Conventions worth knowing:
//! - Kraken v2 writes prices and quantities as JSON numbers. serde_json (as keel builds it,
//!   without `arbitrary_precision`) would turn them into `f64` and lose the decimal text, so
//!   the decoder first rewrites every number token outside strings into a string token
//!   ([`quote_numbers`]) and then parses the original digits exactly.
//! - Kraken v2 has no sequence numbers on the book; the CRC32 `checksum` is the integrity
//!   check, exposed as `DepthUpdate::checksum` (ids are zero).
//! - Symbols: v2 uses `BTC/USD`; REST bodies are keyed by Kraken's pair name (`XBTUSDT`,
//!   `XXBTZUSD`) and events decoded from them carry that name. [`parse_asset_pair_names`] maps
//!   one to the other. keel's `Symbol` accepts `/`.
//! - Fees are positive when charged, as keel's.

mod errors;
mod requests;
mod rest;
mod ws;

pub use errors::parse_error;
pub use requests::*;
pub use rest::{PairNames, parse_asset_pair_names, parse_asset_pairs, parse_ohlc, parse_ws_token};
pub use ws::UNREPORTED_SYMBOL;

use crate::civil::days_from_civil;
use crate::model::{DecodeError, VenueEvent};
use serde_json::Value;

/// Decode one message (WebSocket frame or REST response body).
pub fn decode(text: &str) -> Result<Vec<VenueEvent>, DecodeError> {
    let quoted = quote_numbers(text.trim());
    // Channel messages are the hot path: route them from a light header, parse rows typed.
    if let Ok(head) = serde_json::from_str::<ws::Head>(&quoted)
        && head.method.is_none()
        && let Some(channel) = &head.channel
    {
        return ws::decode_channel(&quoted, channel);
    }
    let value: Value = serde_json::from_str(&quoted)
        .map_err(|e| DecodeError::malformed("kraken message", format!("not JSON: {e}")))?;
    let obj = match &value {
        Value::Object(obj) => obj,
        Value::Array(_) => {
            return Err(DecodeError::Unsupported(
                "kraken websocket v1 array message".into(),
            ));
        }
        _ => {
            return Err(DecodeError::Unsupported(
                "kraken message that is not a JSON object".into(),
            ));
        }
    };
    if obj.contains_key("channel") {
        return Err(DecodeError::malformed(
            "kraken channel message",
            "channel is not a string",
        ));
    }
    if let Some(method) = obj.get("method") {
        let method = method.as_str().unwrap_or("?");
        if obj.contains_key("params") {
            return Err(DecodeError::Unsupported(format!("kraken {method} request")));
        }
        return ws::decode_method_response(method, obj);
    }
    if matches!(obj.get("error"), Some(Value::Array(_))) {
        return rest::decode_rest(obj);
    }
    if let Some(feed) = obj.get("feed").and_then(Value::as_str) {
        return Err(DecodeError::Unsupported(format!(
            "kraken futures {feed} feed"
        )));
    }
    if let Some(event) = obj.get("event").and_then(Value::as_str) {
        return Err(DecodeError::Unsupported(format!(
            "kraken websocket v1 {event} event"
        )));
    }
    const FUTURES_KEYS: [&str; 9] = [
        "serverTime",
        "candles",
        "elements",
        "orderEvents",
        "rates",
        "instruments",
        "sendStatus",
        "cancelStatus",
        "openPositions",
    ];
    if matches!(obj.get("result"), Some(Value::String(_)))
        || FUTURES_KEYS.iter().any(|k| obj.contains_key(*k))
    {
        return Err(DecodeError::Unsupported(
            "kraken futures REST response".into(),
        ));
    }
    Err(DecodeError::Unsupported(
        "kraken JSON object that is neither a v2 message nor a REST body".into(),
    ))
}

/// Rewrite every JSON number token outside strings as a string token (`105944.20` →
/// `"105944.20"`), so typed structs can borrow the venue's exact digits. Invalid JSON stays
/// invalid; only number tokens change.
pub fn quote_numbers(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let mut copied = 0;
    let mut i = 0;
    let mut in_string = false;
    let mut escaped = false;
    while let Some(&b) = bytes.get(i) {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if b == b'-' || b.is_ascii_digit() {
            let start = i;
            while let Some(&c) = bytes.get(i) {
                if c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-') {
                    i += 1;
                } else {
                    break;
                }
            }
            // Number tokens are ASCII, so both ends are char boundaries.
            if let (Some(before), Some(token)) = (text.get(copied..start), text.get(start..i)) {
                out.push_str(before);
                out.push('"');
                out.push_str(token);
                out.push('"');
                copied = i;
            }
            continue;
        }
        i += 1;
    }
    out.push_str(text.get(copied..).unwrap_or(""));
    out
}

fn digits_value(what: &str, text: &str, digits: &str) -> Result<i64, DecodeError> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecodeError::malformed(
            what,
            format!("{text:?} is not a timestamp"),
        ));
    }
    digits
        .parse()
        .map_err(|_| DecodeError::malformed(what, format!("{text:?} is out of range")))
}

/// Fractional-second digits → ns (digits past the ninth are below a nanosecond and dropped).
fn frac_ns(what: &str, text: &str, frac: &str) -> Result<i64, DecodeError> {
    if frac.is_empty() {
        return Ok(0);
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecodeError::malformed(
            what,
            format!("{text:?} is not a timestamp"),
        ));
    }
    let mut ns: i64 = 0;
    for k in 0..9 {
        let d = frac.as_bytes().get(k).map_or(0, |b| i64::from(b - b'0'));
        ns = ns * 10 + d;
    }
    Ok(ns)
}

/// Kraken seconds with a fraction (`1688583840.8648`, REST) → ns, from the digits (no float).
pub fn secs_to_ns(what: &str, text: &str) -> Result<i64, DecodeError> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let secs = digits_value(what, text, int)?;
    let frac = frac_ns(what, text, frac)?;
    secs.checked_mul(1_000_000_000)
        .and_then(|ns| ns.checked_add(frac))
        .ok_or_else(|| DecodeError::malformed(what, format!("{text:?} overflows ns")))
}

/// RFC 3339 (`2023-10-06T17:35:55.440295Z`, `...+02:00`) → ns since the epoch.
///
/// Parsed by hand because the codec may not depend on a date library and must not touch a clock:
/// the calendar arithmetic is a pure function of the text.
pub fn rfc3339_to_ns(what: &str, text: &str) -> Result<i64, DecodeError> {
    let bad = || DecodeError::malformed(what, format!("{text:?} is not an RFC 3339 time"));
    let b = text.as_bytes();
    if b.len() < 20 || !text.is_ascii() {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| -> Result<i64, DecodeError> {
        let s = text.get(range).ok_or_else(bad)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse::<i64>().map_err(|_| bad())
    };
    let sep = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return Err(bad());
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    // 60 allows a leap second; it counts as the next second, as Unix time does.
    if day < 1 || day > month_days || hour > 23 || minute > 59 || second > 60 {
        return Err(bad());
    }
    let rest = text.get(19..).ok_or_else(bad)?;
    let (frac, zone) = match rest.strip_prefix('.') {
        Some(r) => {
            let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            (r.get(..end).ok_or_else(bad)?, r.get(end..).ok_or_else(bad)?)
        }
        None => ("", rest),
    };
    let offset_secs = match zone {
        "Z" | "z" => 0,
        z if z.len() == 6 => {
            let zb = z.as_bytes();
            let sign = match zb.first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return Err(bad()),
            };
            if zb.get(3) != Some(&b':') {
                return Err(bad());
            }
            let (hh, mm) = (z.get(1..3).ok_or_else(bad)?, z.get(4..6).ok_or_else(bad)?);
            if !hh.bytes().chain(mm.bytes()).all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            let hours = hh.parse::<i64>().map_err(|_| bad())?;
            let minutes = mm.parse::<i64>().map_err(|_| bad())?;
            sign * (hours * 3600 + minutes * 60)
        }
        _ => return Err(bad()),
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_secs;
    let frac = frac_ns(what, text, frac)?;
    secs.checked_mul(1_000_000_000)
        .and_then(|ns| ns.checked_add(frac))
        .ok_or_else(|| DecodeError::malformed(what, format!("{text:?} overflows ns")))
}
