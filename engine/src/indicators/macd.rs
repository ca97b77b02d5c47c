use super::{Ema, Window};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MacdValue {
    pub macd: f64,
    pub signal: f64,
    pub histogram: f64,
}

/// MACD with TA-Lib's alignment: the fast EMA is seeded with the SMA of the `fast` inputs
/// that end where the slow EMA's seed ends, so both start on the same bar.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Macd {
    fast_len: u32,
    /// The last `fast` inputs, until both EMAs are seeded.
    recent: Window,
    slow: Ema,
    fast: Option<Ema>,
    signal: Ema,
    value: Option<(f64, f64)>,
}

impl Macd {
    pub fn new(fast: usize, slow: usize, signal: usize) -> Macd {
        assert!(fast > 0 && fast < slow, "MACD needs 0 < fast < slow");
        Macd {
            fast_len: fast as u32,
            recent: Window::new(fast),
            slow: Ema::new(slow),
            fast: None,
            signal: Ema::new(signal),
            value: None,
        }
    }

    pub fn update(&mut self, x: f64) -> Option<MacdValue> {
        let slow = self.slow.update(x);
        let fast = match self.fast.as_mut() {
            Some(f) => f.update(x),
            None => {
                self.recent.push(x);
                let slow_ready = slow.is_some();
                if slow_ready {
                    let seed = self.recent_mean();
                    self.fast = Some(Ema::seeded(self.fast_len as usize, seed));
                }
                self.fast.as_ref().and_then(Ema::value)
            }
        };
        let (Some(f), Some(s)) = (fast, slow) else {
            return None;
        };
        let macd = f - s;
        let signal = self.signal.update(macd)?;
        self.value = Some((macd, signal));
        self.value()
    }

    fn recent_mean(&self) -> f64 {
        // Summed oldest to newest, in the order TA-Lib sums its seed.
        let n = self.recent.len();
        let start = self.recent_next();
        let mut sum = 0.0;
        for i in 0..n {
            sum += self.recent_at((start + i) % n);
        }
        sum / n as f64
    }

    fn recent_next(&self) -> usize {
        self.recent.next_index()
    }

    fn recent_at(&self, i: usize) -> f64 {
        self.recent.at(i)
    }

    pub fn value(&self) -> Option<MacdValue> {
        self.value.map(|(macd, signal)| MacdValue {
            macd,
            signal,
            histogram: macd - signal,
        })
    }
}
