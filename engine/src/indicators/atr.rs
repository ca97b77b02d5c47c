/// Average true range, Wilder-smoothed, seeded with the mean of the first `len` true ranges.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Atr {
    len: u32,
    prev_close: Option<f64>,
    seen: u32,
    value: f64,
}

impl Atr {
    pub fn new(len: usize) -> Atr {
        assert!(
            len > 0 && len <= u32::MAX as usize,
            "ATR length must be positive"
        );
        Atr {
            len: len as u32,
            prev_close: None,
            seen: 0,
            value: 0.0,
        }
    }

    /// True range of a bar given the previous close.
    pub fn true_range(high: f64, low: f64, prev_close: f64) -> f64 {
        (high - low)
            .max((high - prev_close).abs())
            .max((low - prev_close).abs())
    }

    pub fn update(&mut self, high: f64, low: f64, close: f64) -> Option<f64> {
        let prev = self.prev_close.replace(close)?;
        let tr = Self::true_range(high, low, prev);
        let n = f64::from(self.len);
        if self.seen < self.len {
            self.value += tr;
            self.seen += 1;
            if self.seen == self.len {
                self.value /= n;
            }
        } else {
            self.value = (self.value * (n - 1.0) + tr) / n;
        }
        self.value()
    }

    pub fn value(&self) -> Option<f64> {
        (self.seen == self.len).then_some(self.value)
    }
}
