//! Incremental technical indicators: O(1) work and no allocation per update (buffers are
//! sized once at construction), `f64` arithmetic in a fixed order so results are identical
//! on every run.
//!
//! Each indicator is seeded the way TA-Lib seeds it, so values agree with TA-Lib from the
//! first defined bar (tests compare against tables produced by TA-Lib 0.8.2 on real bars):
//! - SMA(n): first value after n inputs.
//! - EMA(n): seeded with the SMA of the first n inputs, then `k = 2 / (n + 1)`.
//! - RSI(n): Wilder; average gain and loss seeded with the simple mean of the first n
//!   changes, first value after n + 1 inputs.
//! - Bollinger(n, k): SMA ± k × population standard deviation over the same window.
//! - MACD(fast, slow, signal): both EMAs produce their first value on input `slow`; the fast
//!   one is seeded with the SMA of the `fast` inputs ending there (TA-Lib's alignment, which
//!   differs from seeding it at the start); signal = EMA(signal) of MACD, seeded with an SMA;
//!   first value after `slow + signal − 1` inputs.
//! - ATR(n): Wilder average of true range; TR needs a previous close, so the first ATR,
//!   the mean of the first n TRs, comes after n + 1 bars.

mod atr;
mod bbands;
mod ema;
mod macd;
mod rsi;
mod sma;

pub use atr::Atr;
pub use bbands::{Bands, Bollinger};
pub use ema::Ema;
pub use macd::{Macd, MacdValue};
pub use rsi::Rsi;
pub use sma::Sma;

/// A fixed-capacity ring of the last `len` values.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Window {
    values: Vec<f64>,
    next: u32,
    filled: u32,
}

impl Window {
    pub fn new(len: usize) -> Window {
        assert!(
            len > 0 && len <= u32::MAX as usize,
            "window length must be positive"
        );
        Window {
            values: vec![0.0; len],
            next: 0,
            filled: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    pub fn full(&self) -> bool {
        self.filled as usize == self.values.len()
    }

    /// Index the next value will be written to: the oldest value once full.
    pub fn next_index(&self) -> usize {
        self.next as usize
    }

    /// The value at ring index `i`.
    pub fn at(&self, i: usize) -> f64 {
        self.values[i % self.values.len()]
    }

    /// Stores `x`, returning the value it displaced once the window is full.
    pub fn push(&mut self, x: f64) -> Option<f64> {
        let i = self.next as usize;
        let old = self.full().then(|| self.values[i]);
        self.values[i] = x;
        self.next = ((i + 1) % self.values.len()) as u32;
        if !self.full() {
            self.filled += 1;
        }
        old
    }
}
