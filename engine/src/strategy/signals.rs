//! The indicator-driven strategies: EMA crossover, RSI overbought/oversold, Bollinger
//! breakout and MACD signal cross. Long only; each turns one closed candle into at most one
//! signal, computed from that candle's close and earlier ones only.

use super::{Signal, Strategy};
use crate::candle::Candle;
use crate::event::SignalAction;
use crate::indicators::{Bollinger, Ema, Macd, Rsi};

fn signal(action: SignalAction, detail: String) -> Option<Signal> {
    Some(Signal { action, detail })
}

/// Sign of a difference, with exact zero as 0.
fn sign(x: f64) -> i8 {
    if x > 0.0 {
        1
    } else if x < 0.0 {
        -1
    } else {
        0
    }
}

/// A cross of a difference through zero: enter when it turns positive, exit when negative.
fn cross(prev: Option<i8>, now: i8) -> Option<SignalAction> {
    match prev? {
        p if p <= 0 && now > 0 => Some(SignalAction::EnterLong),
        p if p >= 0 && now < 0 => Some(SignalAction::ExitLong),
        _ => None,
    }
}

/// Enter when the fast EMA crosses above the slow one, exit when it crosses below.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct EmaCross {
    fast_len: u32,
    slow_len: u32,
    fast: Ema,
    slow: Ema,
    prev_sign: Option<i8>,
}

impl EmaCross {
    pub fn new(fast: usize, slow: usize) -> EmaCross {
        EmaCross {
            fast_len: fast as u32,
            slow_len: slow as u32,
            fast: Ema::new(fast),
            slow: Ema::new(slow),
            prev_sign: None,
        }
    }
}

impl Strategy for EmaCross {
    fn name(&self) -> &'static str {
        "ema_cross"
    }

    fn on_candle(&mut self, candle: &Candle) -> Option<Signal> {
        let close = candle.close.to_f64();
        let (f, s) = (self.fast.update(close), self.slow.update(close));
        let (f, s) = (f?, s?);
        let now = sign(f - s);
        let action = cross(self.prev_sign.replace(now), now)?;
        let dir = if now > 0 { "above" } else { "below" };
        signal(
            action,
            format!(
                "ema({})={f:.8} crossed {dir} ema({})={s:.8} at close {}",
                self.fast_len, self.slow_len, candle.close
            ),
        )
    }
}

/// Enter when RSI crosses up through `oversold`, exit when it crosses down through
/// `overbought`.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct RsiLevels {
    period: u32,
    oversold: f64,
    overbought: f64,
    rsi: Rsi,
    prev: Option<f64>,
}

impl RsiLevels {
    pub fn new(period: usize, oversold: f64, overbought: f64) -> RsiLevels {
        RsiLevels {
            period: period as u32,
            oversold,
            overbought,
            rsi: Rsi::new(period),
            prev: None,
        }
    }
}

impl Strategy for RsiLevels {
    fn name(&self) -> &'static str {
        "rsi"
    }

    fn on_candle(&mut self, candle: &Candle) -> Option<Signal> {
        let now = self.rsi.update(candle.close.to_f64())?;
        let prev = self.prev.replace(now)?;
        let p = self.period;
        if prev < self.oversold && now >= self.oversold {
            return signal(
                SignalAction::EnterLong,
                format!(
                    "rsi({p}) crossed up through {} ({prev:.4} → {now:.4})",
                    self.oversold
                ),
            );
        }
        if prev > self.overbought && now <= self.overbought {
            return signal(
                SignalAction::ExitLong,
                format!(
                    "rsi({p}) crossed down through {} ({prev:.4} → {now:.4})",
                    self.overbought
                ),
            );
        }
        None
    }
}

/// Enter on a close above the upper band, exit on a close below the middle band.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct BollingerBreakout {
    period: u32,
    k: f64,
    bands: Bollinger,
}

impl BollingerBreakout {
    pub fn new(period: usize, k: f64) -> BollingerBreakout {
        BollingerBreakout {
            period: period as u32,
            k,
            bands: Bollinger::new(period, k),
        }
    }
}

impl Strategy for BollingerBreakout {
    fn name(&self) -> &'static str {
        "bollinger"
    }

    fn on_candle(&mut self, candle: &Candle) -> Option<Signal> {
        let close = candle.close.to_f64();
        let b = self.bands.update(close)?;
        let (n, k) = (self.period, self.k);
        if close > b.upper {
            return signal(
                SignalAction::EnterLong,
                format!("close {close} above bb({n},{k}) upper {:.8}", b.upper),
            );
        }
        if close < b.middle {
            return signal(
                SignalAction::ExitLong,
                format!("close {close} below bb({n},{k}) middle {:.8}", b.middle),
            );
        }
        None
    }
}

/// Enter when MACD crosses above its signal line, exit when it crosses below.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct MacdCross {
    macd: Macd,
    prev_sign: Option<i8>,
}

impl MacdCross {
    pub fn new(fast: usize, slow: usize, signal: usize) -> MacdCross {
        MacdCross {
            macd: Macd::new(fast, slow, signal),
            prev_sign: None,
        }
    }
}

impl Strategy for MacdCross {
    fn name(&self) -> &'static str {
        "macd"
    }

    fn on_candle(&mut self, candle: &Candle) -> Option<Signal> {
        let m = self.macd.update(candle.close.to_f64())?;
        let now = sign(m.histogram);
        let action = cross(self.prev_sign.replace(now), now)?;
        let dir = if now > 0 { "above" } else { "below" };
        signal(
            action,
            format!(
                "macd {:.8} crossed {dir} signal {:.8} at close {}",
                m.macd, m.signal, candle.close
            ),
        )
    }
}
