//! Small conversions shared by the Bybit decoders.

use core::fmt;

use keel_engine::event::Side;
use keel_engine::fixed::Fixed;
use serde::de::{self, Deserializer, Visitor};

use crate::model::{DecodeError, dec, dec_lossy};

/// Venue milliseconds to keel nanoseconds; overflow is malformed input, not a wrap.
pub(crate) fn ms_to_ns(what: &str, ms: i64) -> Result<i64, DecodeError> {
    ms.checked_mul(1_000_000)
        .ok_or_else(|| DecodeError::malformed(what, format!("{ms} ms does not fit in i64 ns")))
}

/// A required millisecond timestamp that the message may have left out.
pub(crate) fn req_ms_to_ns(what: &str, ms: Option<i64>) -> Result<i64, DecodeError> {
    match ms {
        Some(ms) => ms_to_ns(what, ms),
        None => Err(DecodeError::malformed(what, "missing timestamp")),
    }
}

pub(crate) fn side(what: &str, text: &str) -> Result<Side, DecodeError> {
    match text {
        "Buy" => Ok(Side::Buy),
        "Sell" => Ok(Side::Sell),
        other => Err(DecodeError::malformed(
            what,
            format!("{other:?} is not Buy or Sell"),
        )),
    }
}

/// Bybit writes "" (and sometimes leaves the field out or sends null) where a price does not
/// apply; that is zero in keel's vocabulary.
pub(crate) fn opt_dec(what: &str, text: Option<&str>) -> Result<Fixed, DecodeError> {
    match text {
        None | Some("") => Ok(Fixed::ZERO),
        Some(t) => dec(what, t),
    }
}

/// Like [`opt_dec`] for venue-computed values (average prices, PnL, fees, rates).
pub(crate) fn opt_dec_lossy(what: &str, text: Option<&str>) -> Result<Fixed, DecodeError> {
    match text {
        None | Some("") => Ok(Fixed::ZERO),
        Some(t) => dec_lossy(what, t),
    }
}

/// Keel trade ids are `u64`. Bybit spot ids are decimal strings and are used as they are;
/// derivatives ids are UUIDs, which are folded with 64-bit FNV-1a: stable across runs and
/// machines, so the same trade always gets the same id (collisions are possible in principle but
/// the id is only used to spot duplicates within one symbol's stream).
pub(crate) fn trade_id(text: &str) -> u64 {
    if let Ok(n) = text.parse::<u64>() {
        return n;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

pub(crate) fn json_err(what: &str, err: serde_json::Error) -> DecodeError {
    DecodeError::malformed(what, err.to_string())
}

/// Bybit sends integers as JSON numbers in some places and as decimal strings in others
/// (`"execTime":"1746270400353"` next to `"ts":1709891679000`); an empty string means absent.
pub(crate) fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer or a string holding one")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            i64::try_from(v)
                .map(Some)
                .map_err(|_| E::custom(format!("{v} is out of range")))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            if v.is_empty() {
                return Ok(None);
            }
            v.parse::<i64>()
                .map(Some)
                .map_err(|_| E::custom(format!("{v:?} is not an integer")))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(V)
        }
    }
    d.deserialize_any(V)
}

/// Minimal JSON writer for request bodies: keys in the order written (the signature covers the
/// body exactly as sent, so the order must not depend on a map implementation).
#[derive(Default)]
pub(crate) struct JsonObj {
    buf: String,
}

impl JsonObj {
    pub(crate) fn new() -> JsonObj {
        JsonObj::default()
    }

    fn key(&mut self, k: &str) {
        self.buf.push(if self.buf.is_empty() { '{' } else { ',' });
        push_json_str(&mut self.buf, k);
        self.buf.push(':');
    }

    pub(crate) fn str(mut self, k: &str, v: &str) -> JsonObj {
        self.key(k);
        push_json_str(&mut self.buf, v);
        self
    }

    pub(crate) fn int(mut self, k: &str, v: i64) -> JsonObj {
        self.key(k);
        self.buf.push_str(&v.to_string());
        self
    }

    pub(crate) fn bool(mut self, k: &str, v: bool) -> JsonObj {
        self.key(k);
        self.buf.push_str(if v { "true" } else { "false" });
        self
    }

    /// `v` must already be JSON.
    pub(crate) fn raw(mut self, k: &str, v: &str) -> JsonObj {
        self.key(k);
        self.buf.push_str(v);
        self
    }

    pub(crate) fn finish(mut self) -> String {
        if self.buf.is_empty() {
            self.buf.push('{');
        }
        self.buf.push('}');
        self.buf
    }
}

pub(crate) fn push_json_str(buf: &mut String, s: &str) {
    buf.push('"');
    for c in s.chars() {
        match c {
            '"' => buf.push_str("\\\""),
            '\\' => buf.push_str("\\\\"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            '\t' => buf.push_str("\\t"),
            c if (c as u32) < 0x20 => buf.push_str(&format!("\\u{:04x}", c as u32)),
            c => buf.push(c),
        }
    }
    buf.push('"');
}

pub(crate) fn json_str_array(items: &[&str]) -> String {
    let mut buf = String::from("[");
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            buf.push(',');
        }
        push_json_str(&mut buf, s);
    }
    buf.push(']');
    buf
}
