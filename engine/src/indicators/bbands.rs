use super::Window;

/// Bollinger Bands: SMA ± k × population standard deviation of the same window.
///
/// The window's sum and sum of squares are kept relative to the first input (`anchor`), so
/// the variance of prices near 50,000 is not lost to cancellation between two huge sums.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Bollinger {
    window: Window,
    k: f64,
    anchor: Option<f64>,
    sum: f64,
    sum_sq: f64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bands {
    pub upper: f64,
    pub middle: f64,
    pub lower: f64,
}

impl Bollinger {
    pub fn new(len: usize, k: f64) -> Bollinger {
        Bollinger {
            window: Window::new(len),
            k,
            anchor: None,
            sum: 0.0,
            sum_sq: 0.0,
        }
    }

    pub fn update(&mut self, x: f64) -> Option<Bands> {
        let anchor = *self.anchor.get_or_insert(x);
        let d = x - anchor;
        self.sum += d;
        self.sum_sq += d * d;
        if let Some(old) = self.window.push(d) {
            self.sum -= old;
            self.sum_sq -= old * old;
        }
        self.value()
    }

    pub fn value(&self) -> Option<Bands> {
        if !self.window.full() {
            return None;
        }
        let n = self.window.len() as f64;
        let mean_d = self.sum / n;
        let var = (self.sum_sq / n - mean_d * mean_d).max(0.0);
        let middle = self.anchor.unwrap_or(0.0) + mean_d;
        let width = self.k * var.sqrt();
        Some(Bands {
            upper: middle + width,
            middle,
            lower: middle - width,
        })
    }
}
