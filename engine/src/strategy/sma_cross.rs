//! Simple-moving-average crossover, long only.
//!
//! The averages are kept as exact integer sums of fixed-point closes, so "fast crossed above
//! slow" is decided without floating-point ties: `fast_sum × slow_len` is compared with
//! `slow_sum × fast_len` in `i128`.

use super::{Signal, Strategy};
use crate::candle::Candle;
use crate::event::SignalAction;

/// A simple moving average over a fixed window of fixed-point raw values; O(1) per update
/// and no allocation after construction.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Sma {
    window: Vec<i64>,
    next: u32,
    filled: u32,
    sum: i128,
}

impl Sma {
    pub fn new(len: usize) -> Sma {
        assert!(len > 0, "SMA length must be positive");
        Sma {
            window: vec![0; len],
            next: 0,
            filled: 0,
            sum: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.window.len()
    }

    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    pub fn update(&mut self, raw: i64) {
        let i = self.next as usize;
        self.sum += i128::from(raw) - i128::from(self.window[i]);
        self.window[i] = raw;
        self.next = if i + 1 == self.window.len() {
            0
        } else {
            (i + 1) as u32
        };
        if (self.filled as usize) < self.window.len() {
            self.filled += 1;
        }
    }

    pub fn ready(&self) -> bool {
        self.filled as usize == self.window.len()
    }

    /// Sum of the window in fixed-point raw units.
    pub fn sum(&self) -> i128 {
        self.sum
    }

    /// The average as a float, for display.
    pub fn value(&self) -> Option<f64> {
        self.ready()
            .then(|| self.sum as f64 / self.window.len() as f64 / crate::Fixed::SCALE as f64)
    }
}

#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct SmaCross {
    fast: Sma,
    slow: Sma,
    /// Sign of (fast − slow) after the previous candle, once both averages are ready.
    prev_sign: Option<i8>,
}

impl SmaCross {
    pub fn new(fast: usize, slow: usize) -> SmaCross {
        SmaCross {
            fast: Sma::new(fast),
            slow: Sma::new(slow),
            prev_sign: None,
        }
    }

    fn sign(&self) -> i8 {
        let lhs = self.fast.sum() * self.slow.len() as i128;
        let rhs = self.slow.sum() * self.fast.len() as i128;
        match lhs.cmp(&rhs) {
            core::cmp::Ordering::Less => -1,
            core::cmp::Ordering::Equal => 0,
            core::cmp::Ordering::Greater => 1,
        }
    }
}

impl Strategy for SmaCross {
    fn name(&self) -> &'static str {
        "sma_cross"
    }

    fn on_candle(&mut self, candle: &Candle) -> Option<Signal> {
        self.fast.update(candle.close.raw());
        self.slow.update(candle.close.raw());
        if !self.slow.ready() {
            return None;
        }
        let sign = self.sign();
        let prev = self.prev_sign.replace(sign)?;
        let action = if prev <= 0 && sign > 0 {
            SignalAction::EnterLong
        } else if prev >= 0 && sign < 0 {
            SignalAction::ExitLong
        } else {
            return None;
        };
        let (f, s) = (self.fast.value()?, self.slow.value()?);
        let dir = if sign > 0 { "above" } else { "below" };
        Some(Signal {
            action,
            detail: format!(
                "sma({})={f:.8} crossed {dir} sma({})={s:.8} at close {}",
                self.fast.len(),
                self.slow.len(),
                candle.close
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Fixed, Symbol};

    fn candle(close: i64) -> Candle {
        let c = Fixed::from_int(close);
        Candle {
            symbol: Symbol::new("T").unwrap(),
            open_time_ns: 0,
            interval_ns: 60_000_000_000,
            open: c,
            high: c,
            low: c,
            close: c,
            volume: Fixed::ZERO,
        }
    }

    #[test]
    fn sma_matches_arithmetic_mean() {
        let mut sma = Sma::new(3);
        for v in [1, 2] {
            sma.update(Fixed::from_int(v).raw());
            assert!(sma.value().is_none());
        }
        sma.update(Fixed::from_int(6).raw());
        assert_eq!(sma.value(), Some(3.0));
        sma.update(Fixed::from_int(10).raw());
        assert_eq!(sma.value(), Some(6.0));
    }

    /// Hand-checked with fast=2, slow=3 (sums compared as fast×3 vs slow×2):
    /// 10 10 10 → equal, first comparison, no signal; 9 → 57 < 58, below (exit signal, a
    /// no-op when flat); 12 → 63 > 62, crossed above: enter; 13 → 75 > 68, still above;
    /// 8 → 63 < 66, crossed below: exit.
    #[test]
    fn enters_on_cross_above_and_exits_on_cross_below() {
        let mut s = SmaCross::new(2, 3);
        let got: Vec<Option<SignalAction>> = [10, 10, 10, 9, 12, 13, 8]
            .iter()
            .map(|&c| s.on_candle(&candle(c)).map(|sig| sig.action))
            .collect();
        use SignalAction::{EnterLong, ExitLong};
        assert_eq!(
            got,
            [
                None,
                None,
                None,
                Some(ExitLong),
                Some(EnterLong),
                None,
                Some(ExitLong)
            ]
        );
    }
}
