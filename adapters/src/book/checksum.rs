//! Book checksums as OKX and Kraken document them, computed from a local book's best levels.
//!
//! Both venues hash a text rendering of the top of the book with CRC-32 in its common IEEE
//! form (reflected polynomial 0xEDB88320, the one zlib and `crc32fast` compute). The adapters
//! crate depends on no CRC crate and the workspace only has `crc32c` (Castagnoli, a different
//! polynomial that gives different sums), so the 256-entry table is built here at compile time.
//!
//! - OKX `books`: the top 25 levels interleaved `bid:bidSize:ask:askSize:...` (a side that runs
//!   out is skipped), sent as a signed 32-bit integer. OKX hashes the decimal strings it sent;
//!   keel keeps `Fixed`, whose display is the shortest exact decimal, the form OKX sends
//!   (`"0.0703"`, `"8477"`). A venue string with trailing zeros would make the sums differ,
//!   which shows up as a checksum error and a resync, never as a silently wrong book.
//! - Kraken v2 `book`: the top 10 asks (lowest first) then the top 10 bids (highest first),
//!   each price and quantity printed with the instrument's precision, the decimal point removed
//!   and leading zeros stripped, concatenated without separators; sent unsigned.

use keel_engine::fixed::Fixed;

use crate::model::{Instrument, Level};

/// Levels per side OKX's checksum covers.
pub const OKX_CHECKSUM_LEVELS: usize = 25;
/// Levels per side Kraken's checksum covers.
pub const KRAKEN_CHECKSUM_LEVELS: usize = 10;

const CRC32_TABLE: [u32; 256] = crc32_table();

const fn crc32_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

/// CRC-32 (IEEE 802.3 / zlib) of `bytes`.
pub fn crc32_ieee(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc = CRC32_TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

/// OKX's checksum over `bids` (best first) and `asks` (best first), as OKX sends it.
pub fn okx_checksum(bids: &[Level], asks: &[Level]) -> i32 {
    crc32_ieee(okx_checksum_text(bids, asks).as_bytes()) as i32
}

/// The text OKX hashes (public so a mismatch can be shown next to the venue's value).
pub fn okx_checksum_text(bids: &[Level], asks: &[Level]) -> String {
    use std::fmt::Write;
    let mut text = String::with_capacity(OKX_CHECKSUM_LEVELS * 40);
    for i in 0..OKX_CHECKSUM_LEVELS {
        for side in [bids, asks] {
            if let Some((price, qty)) = side.get(i) {
                if !text.is_empty() {
                    text.push(':');
                }
                // Writing to a String cannot fail.
                let _ = write!(text, "{price}:{qty}");
            }
        }
    }
    text
}

/// The decimals Kraken prints an instrument's prices and quantities with (the `price_precision`
/// and `qty_precision` of its `instrument` channel, `pair_decimals` / `lot_decimals` in REST).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KrakenPrecision {
    pub price_decimals: u32,
    pub qty_decimals: u32,
}

impl KrakenPrecision {
    /// Kraken quotes at most 18 decimals anywhere; more is a configuration mistake.
    pub const MAX_DECIMALS: u32 = 18;

    pub fn new(price_decimals: u32, qty_decimals: u32) -> Option<KrakenPrecision> {
        (price_decimals <= Self::MAX_DECIMALS && qty_decimals <= Self::MAX_DECIMALS).then_some(
            KrakenPrecision {
                price_decimals,
                qty_decimals,
            },
        )
    }

    /// From an instrument parsed from Kraken's `AssetPairs`: the number of decimals of the tick
    /// size and of the lot size (which keel derives from `pair_decimals` and `lot_decimals`).
    pub fn from_instrument(instrument: &Instrument) -> KrakenPrecision {
        KrakenPrecision {
            price_decimals: decimals(instrument.tick_size),
            qty_decimals: decimals(instrument.lot_size),
        }
    }
}

/// Fractional digits of `step` (0.1 → 1, 0.00000001 → 8, 5 → 0).
fn decimals(step: Fixed) -> u32 {
    let frac = step.raw().unsigned_abs() % Fixed::SCALE as u64;
    if frac == 0 {
        return 0;
    }
    let mut digits = Fixed::DECIMALS;
    let mut f = frac;
    while f.is_multiple_of(10) {
        f /= 10;
        digits -= 1;
    }
    digits
}

/// Kraken's checksum over `asks` (best first) and `bids` (best first).
pub fn kraken_checksum(asks: &[Level], bids: &[Level], precision: KrakenPrecision) -> u32 {
    crc32_ieee(kraken_checksum_text(asks, bids, precision).as_bytes())
}

/// The text Kraken hashes.
pub fn kraken_checksum_text(asks: &[Level], bids: &[Level], precision: KrakenPrecision) -> String {
    let mut text = String::with_capacity(KRAKEN_CHECKSUM_LEVELS * 2 * 24);
    let top = |side: &[Level]| {
        side.iter()
            .take(KRAKEN_CHECKSUM_LEVELS)
            .copied()
            .collect::<Vec<_>>()
    };
    for (price, qty) in top(asks).into_iter().chain(top(bids)) {
        push_kraken_number(&mut text, price, precision.price_decimals);
        push_kraken_number(&mut text, qty, precision.qty_decimals);
    }
    text
}

/// `value` printed with `decimals` digits, the point removed and leading zeros stripped: that is
/// the value in units of 10^-decimals, as an integer without leading zeros. A value with more
/// digits than the precision is cut (the venue never sends one; if it did the sum differs and
/// the book resyncs). Zero prints as nothing, as stripping every zero of "0.000" leaves nothing.
fn push_kraken_number(text: &mut String, value: Fixed, decimals: u32) {
    use std::fmt::Write;
    let raw = i128::from(value.raw());
    let units = if decimals >= Fixed::DECIMALS {
        raw * 10i128.pow(decimals - Fixed::DECIMALS)
    } else {
        raw / 10i128.pow(Fixed::DECIMALS - decimals)
    };
    if units != 0 {
        // Writing to a String cannot fail.
        let _ = write!(text, "{units}");
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    fn fx(s: &str) -> Fixed {
        Fixed::parse_exact(s).expect("decimal")
    }

    #[test]
    fn crc32_matches_the_ieee_check_value() {
        // The standard check input of every CRC catalogue: CRC-32/ISO-HDLC("123456789").
        assert_eq!(crc32_ieee(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32_ieee(b""), 0);
    }

    #[test]
    fn okx_text_interleaves_and_skips_the_short_side() {
        // OKX docs: 3 bids and 1 ask give "bid1:sz1:ask1:sz1:bid2:sz2:bid3:sz3".
        let bids = [
            (fx("3366.1"), fx("7")),
            (fx("3366"), fx("6")),
            (fx("3365"), fx("1")),
        ];
        let asks = [(fx("3366.8"), fx("9"))];
        assert_eq!(
            okx_checksum_text(&bids, &asks),
            "3366.1:7:3366.8:9:3366:6:3365:1"
        );
    }

    #[test]
    fn kraken_numbers_drop_the_point_and_leading_zeros() {
        // Kraken's guide: price "45285.2" -> "452852", qty "0.00100000" -> "100000".
        let mut s = String::new();
        push_kraken_number(&mut s, fx("45285.2"), 1);
        push_kraken_number(&mut s, fx("0.001"), 8);
        assert_eq!(s, "452852100000");
        let mut s = String::new();
        push_kraken_number(&mut s, fx("0.5657"), 4);
        push_kraken_number(&mut s, fx("1098.3947558"), 8);
        push_kraken_number(&mut s, fx("7"), 10);
        assert_eq!(s, "565710983947558070000000000");
    }

    #[test]
    fn precision_from_steps() {
        assert_eq!(decimals(fx("0.1")), 1);
        assert_eq!(decimals(fx("0.00000001")), 8);
        assert_eq!(decimals(fx("0.05")), 2);
        assert_eq!(decimals(fx("1")), 0);
        assert_eq!(KrakenPrecision::new(19, 8), None);
    }
}
