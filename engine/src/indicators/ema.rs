/// Exponential moving average seeded with the SMA of its first `len` inputs.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Ema {
    len: u32,
    k: f64,
    seen: u32,
    seed_sum: f64,
    value: Option<f64>,
}

impl Ema {
    pub fn new(len: usize) -> Ema {
        assert!(
            len > 0 && len <= u32::MAX as usize,
            "EMA length must be positive"
        );
        Ema {
            len: len as u32,
            k: 2.0 / (len as f64 + 1.0),
            seen: 0,
            seed_sum: 0.0,
            value: None,
        }
    }

    pub fn update(&mut self, x: f64) -> Option<f64> {
        match self.value {
            Some(prev) => self.value = Some((x - prev) * self.k + prev),
            None => {
                self.seed_sum += x;
                self.seen += 1;
                if self.seen == self.len {
                    self.value = Some(self.seed_sum / f64::from(self.len));
                }
            }
        }
        self.value
    }

    /// Starts the average at `seed` as if it had been seeded by it (used by MACD).
    pub fn seeded(len: usize, seed: f64) -> Ema {
        let mut e = Ema::new(len);
        e.seen = e.len;
        e.value = Some(seed);
        e
    }

    pub fn value(&self) -> Option<f64> {
        self.value
    }
}
