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

impl Candle {
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
