//! Candles (OHLCV bars) and bar intervals.

use crate::fixed::Fixed;
use crate::symbol::Symbol;

pub const NS_PER_MS: i64 = 1_000_000;
pub const NS_PER_SEC: i64 = 1_000_000_000;

/// One closed bar. `open_time_ns` is the start of the bar (UTC, Unix epoch, nanoseconds) and
/// the bar covers `[open_time_ns, open_time_ns + interval_ns)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub struct Candle {
    pub symbol: Symbol,
    pub open_time_ns: i64,
    pub interval_ns: i64,
    pub open: Fixed,
    pub high: Fixed,
    pub low: Fixed,
    pub close: Fixed,
    pub volume: Fixed,
}

/// Bytes of a candle's rkyv archive: the payload of `candle` (version 2) and `stored_candle`
/// records.
pub const ARCHIVED_CANDLE_LEN: usize = core::mem::size_of::<ArchivedCandle>();

/// Offsets of the eight-byte fields in [`ArchivedCandle`], in [`Candle`]'s field order.
const ARCHIVED_WORDS: [usize; 7] = [
    core::mem::offset_of!(ArchivedCandle, open_time_ns),
    core::mem::offset_of!(ArchivedCandle, interval_ns),
    core::mem::offset_of!(ArchivedCandle, open),
    core::mem::offset_of!(ArchivedCandle, high),
    core::mem::offset_of!(ArchivedCandle, low),
    core::mem::offset_of!(ArchivedCandle, close),
    core::mem::offset_of!(ArchivedCandle, volume),
];

impl Candle {
    /// Writes this candle's rkyv archive into `out` (exactly [`ARCHIVED_CANDLE_LEN`] bytes),
    /// field by field: the same bytes as `rkyv::to_bytes` (padding zero; a test compares the
    /// two), without rkyv's serializer, which cost more than the rest of journaling a bar.
    pub fn write_archive(&self, out: &mut [u8]) {
        let out = &mut out[..ARCHIVED_CANDLE_LEN];
        out.fill(0);
        self.symbol
            .write_archive(&mut out[core::mem::offset_of!(ArchivedCandle, symbol)..]);
        for (at, v) in ARCHIVED_WORDS.into_iter().zip(self.words()) {
            out[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
    }

    /// Reads a candle back from its rkyv archive: `None` unless `bytes` is exactly
    /// [`ARCHIVED_CANDLE_LEN`] long. Every bit pattern of that length is a valid archive (plain
    /// integers and bytes), so this accepts exactly what `rkyv::from_bytes` accepts.
    pub fn read_archive(bytes: &[u8]) -> Option<Candle> {
        if bytes.len() != ARCHIVED_CANDLE_LEN {
            return None;
        }
        let w = |i: usize| {
            let at = ARCHIVED_WORDS[i];
            i64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
        };
        Some(Candle {
            symbol: Symbol::read_archive(&bytes[core::mem::offset_of!(ArchivedCandle, symbol)..]),
            open_time_ns: w(0),
            interval_ns: w(1),
            open: Fixed(w(2)),
            high: Fixed(w(3)),
            low: Fixed(w(4)),
            close: Fixed(w(5)),
            volume: Fixed(w(6)),
        })
    }

    fn words(&self) -> [i64; 7] {
        [
            self.open_time_ns,
            self.interval_ns,
            self.open.0,
            self.high.0,
            self.low.0,
            self.close.0,
            self.volume.0,
        ]
    }

    pub fn close_time_ns(&self) -> i64 {
        self.open_time_ns.saturating_add(self.interval_ns)
    }

    /// The first rule a bar breaks, if any: high below low, open or close outside
    /// [low, high], or a negative volume.
    pub fn check(&self) -> Result<(), String> {
        if self.high < self.low {
            return Err(format!("high {} is below low {}", self.high, self.low));
        }
        for (name, v) in [("open", self.open), ("close", self.close)] {
            if v > self.high || v < self.low {
                return Err(format!(
                    "{name} {v} is outside [low {}, high {}]",
                    self.low, self.high
                ));
            }
        }
        if self.volume.is_negative() {
            return Err(format!("volume {} is negative", self.volume));
        }
        if self.low <= Fixed::ZERO {
            return Err(format!("low {} is not a positive price", self.low));
        }
        Ok(())
    }
}

/// A bar interval such as `1m`, `5m`, `1h`, `1d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval {
    pub ns: i64,
}

impl Interval {
    /// Parses `30s`, `1m`, `15m`, `1h`, `4h`, `1d`, `1w`.
    pub fn parse(text: &str) -> Result<Interval, String> {
        let t = text.trim();
        let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
        let n: i64 = num
            .parse()
            .map_err(|_| format!("interval `{text}` must look like 1m, 5m, 1h or 1d"))?;
        let unit_ns = match unit {
            "s" => NS_PER_SEC,
            "m" => 60 * NS_PER_SEC,
            "h" => 3_600 * NS_PER_SEC,
            "d" => 86_400 * NS_PER_SEC,
            "w" => 7 * 86_400 * NS_PER_SEC,
            _ => return Err(format!("interval `{text}` must look like 1m, 5m, 1h or 1d")),
        };
        if n <= 0 {
            return Err(format!("interval `{text}` must be positive"));
        }
        // One year is the longest bar anyone trades on; beyond it, times would overflow.
        match n.checked_mul(unit_ns) {
            Some(ns) if ns <= 366 * 86_400 * NS_PER_SEC => Ok(Interval { ns }),
            _ => Err(format!("interval `{text}` is longer than a year")),
        }
    }

    /// Canonical short name (`1m`, `4h`, `1d`).
    pub fn name(&self) -> String {
        let s = self.ns / NS_PER_SEC;
        for (unit, secs) in [("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)] {
            if s % secs == 0 {
                return format!("{}{unit}", s / secs);
            }
        }
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_written_and_read_by_hand_is_rkyvs() {
        let syms = ["BTCUSDT", "X", "BTC-USD-241227-100000-C", "XBT/USD"];
        let mut n = 0u64;
        for (k, sym) in syms.into_iter().enumerate() {
            for v in [0i64, 1, -1, i64::MAX, i64::MIN, 0x0102_0304_0506_0708] {
                n = n
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let c = Candle {
                    symbol: Symbol::new(sym).unwrap(),
                    open_time_ns: v ^ n as i64,
                    interval_ns: 60_000_000_000 + k as i64,
                    open: Fixed(v),
                    high: Fixed(n as i64),
                    low: Fixed(v.wrapping_sub(n as i64)),
                    close: Fixed(!v),
                    volume: Fixed((n >> 3) as i64),
                };
                let want = rkyv::to_bytes::<rkyv::rancor::Error>(&c).unwrap();
                let mut got = [0xAAu8; ARCHIVED_CANDLE_LEN];
                c.write_archive(&mut got);
                assert_eq!(&got[..], &want[..], "{c:?}");
                assert_eq!(Candle::read_archive(&want), Some(c));
                let back = rkyv::from_bytes::<Candle, rkyv::rancor::Error>(&got).unwrap();
                assert_eq!(back, c);
            }
        }
        assert_eq!(Candle::read_archive(&[0u8; ARCHIVED_CANDLE_LEN + 8]), None);
        assert_eq!(Candle::read_archive(&[0u8; ARCHIVED_CANDLE_LEN - 8]), None);
    }

    #[test]
    fn parses_and_names_intervals() {
        for (t, ns) in [("1m", 60), ("15m", 900), ("4h", 14_400), ("1d", 86_400)] {
            let i = Interval::parse(t).unwrap();
            assert_eq!(i.ns, ns * NS_PER_SEC);
            assert_eq!(i.name(), t);
        }
        assert!(Interval::parse("m").is_err());
        assert!(Interval::parse("0m").is_err());
        assert!(Interval::parse("5y").is_err());
        assert!(Interval::parse("36028797018963968s").is_err());
        assert!(Interval::parse("9223372036854775807s").is_err());
        assert!(Interval::parse("15250285w").is_err());
        assert!(Interval::parse("99999999999999999999m").is_err());
    }
}
