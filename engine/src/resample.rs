//! Resampling base bars (e.g. 1m) into longer ones (5m, 15m, 1h, 4h, 1d) inside the core.
//!
//! Buckets are aligned to the Unix epoch, so every interval that divides a day starts at UTC
//! midnight. A bar is emitted as soon as it is known to be complete: when the base bar that
//! ends its bucket arrives, or, after a gap, when the first base bar of a later bucket
//! arrives. A bucket with missing base bars is built from the bars that exist (as exchanges
//! and freqtrade do). A bucket still open when the data ends is never emitted: it has not
//! closed. Deterministic, O(1) and allocation-free per base bar.

use crate::candle::Candle;

#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Resampler {
    target_ns: i64,
    current: Option<Candle>,
}

impl Resampler {
    pub fn new(target_ns: i64) -> Resampler {
        assert!(target_ns > 0, "resample interval must be positive");
        Resampler {
            target_ns,
            current: None,
        }
    }

    pub fn target_ns(&self) -> i64 {
        self.target_ns
    }

    fn bucket_start(&self, ts_ns: i64) -> i64 {
        ts_ns - ts_ns.rem_euclid(self.target_ns)
    }

    /// Feeds one base bar. Returns up to two completed bars, oldest first: the previous
    /// bucket if this bar starts a later one, and this bar's bucket if this bar ends it.
    pub fn update(&mut self, base: &Candle) -> [Option<Candle>; 2] {
        let start = self.bucket_start(base.open_time_ns);
        let mut done = [None, None];
        match self.current.as_mut() {
            Some(cur) if cur.open_time_ns == start => {
                cur.high = cur.high.max(base.high);
                cur.low = cur.low.min(base.low);
                cur.close = base.close;
                cur.volume += base.volume;
            }
            _ => {
                // A later bucket begins: whatever was open is complete (a gap ended it).
                done[0] = self.current.take();
                self.current = Some(Candle {
                    open_time_ns: start,
                    interval_ns: self.target_ns,
                    ..*base
                });
            }
        }
        if base.close_time_ns() >= start + self.target_ns {
            done[1] = self.current.take();
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Fixed, Symbol};

    fn bar(minute: i64, o: i64, h: i64, l: i64, c: i64) -> Candle {
        Candle {
            symbol: Symbol::new("T").unwrap(),
            open_time_ns: minute * 60_000_000_000,
            interval_ns: 60_000_000_000,
            open: Fixed::from_int(o),
            high: Fixed::from_int(h),
            low: Fixed::from_int(l),
            close: Fixed::from_int(c),
            volume: Fixed::ONE,
        }
    }

    #[test]
    fn aggregates_a_full_bucket_when_its_last_bar_arrives() {
        let mut r = Resampler::new(5 * 60_000_000_000);
        for m in 0..4 {
            assert_eq!(
                r.update(&bar(m, 10 + m, 20 + m, 5 - m, 11 + m)),
                [None, None]
            );
        }
        let [a, b] = r.update(&bar(4, 14, 30, 3, 12));
        assert!(a.is_none());
        let b = b.unwrap();
        assert_eq!(b.open_time_ns, 0);
        assert_eq!(b.interval_ns, 300_000_000_000);
        assert_eq!(
            (b.open, b.high, b.low, b.close, b.volume),
            (
                Fixed::from_int(10),
                Fixed::from_int(30),
                Fixed::from_int(2),
                Fixed::from_int(12),
                Fixed::from_int(5)
            )
        );
    }

    #[test]
    fn a_gap_closes_the_open_bucket_and_a_lone_last_bar_closes_its_own() {
        let mut r = Resampler::new(5 * 60_000_000_000);
        assert_eq!(r.update(&bar(1, 1, 2, 1, 2)), [None, None]);
        // Minute 9 is in the next bucket and is its last minute: both buckets complete.
        let [a, b] = r.update(&bar(9, 5, 6, 4, 5));
        assert_eq!(a.unwrap().open_time_ns, 0);
        assert_eq!(b.unwrap().open_time_ns, 300_000_000_000);
        // An unfinished bucket at the end is never emitted.
        assert_eq!(r.update(&bar(10, 5, 6, 4, 5)), [None, None]);
    }
}
