/// Wilder's relative strength index.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Rsi {
    len: u32,
    prev: Option<f64>,
    changes: u32,
    avg_gain: f64,
    avg_loss: f64,
}

impl Rsi {
    pub fn new(len: usize) -> Rsi {
        assert!(
            len > 0 && len <= u32::MAX as usize,
            "RSI length must be positive"
        );
        Rsi {
            len: len as u32,
            prev: None,
            changes: 0,
            avg_gain: 0.0,
            avg_loss: 0.0,
        }
    }

    pub fn update(&mut self, x: f64) -> Option<f64> {
        let prev = self.prev.replace(x)?;
        let change = x - prev;
        let (gain, loss) = if change > 0.0 {
            (change, 0.0)
        } else {
            (0.0, -change)
        };
        let n = f64::from(self.len);
        if self.changes < self.len {
            // Seeding: simple sums, divided once the first `len` changes are in.
            self.avg_gain += gain;
            self.avg_loss += loss;
            self.changes += 1;
            if self.changes < self.len {
                return None;
            }
            self.avg_gain /= n;
            self.avg_loss /= n;
        } else {
            self.avg_gain = (self.avg_gain * (n - 1.0) + gain) / n;
            self.avg_loss = (self.avg_loss * (n - 1.0) + loss) / n;
        }
        self.value()
    }

    pub fn value(&self) -> Option<f64> {
        if self.changes < self.len {
            return None;
        }
        let total = self.avg_gain + self.avg_loss;
        Some(if total == 0.0 {
            0.0
        } else {
            100.0 * self.avg_gain / total
        })
    }
}
