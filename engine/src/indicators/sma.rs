use super::Window;

/// Simple moving average, kept as a running sum (as TA-Lib does).
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Sma {
    window: Window,
    sum: f64,
}

impl Sma {
    pub fn new(len: usize) -> Sma {
        Sma {
            window: Window::new(len),
            sum: 0.0,
        }
    }

    pub fn update(&mut self, x: f64) -> Option<f64> {
        self.sum += x;
        if let Some(old) = self.window.push(x) {
            self.sum -= old;
        }
        self.value()
    }

    pub fn value(&self) -> Option<f64> {
        self.window
            .full()
            .then(|| self.sum / self.window.len() as f64)
    }
}
