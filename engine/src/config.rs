//! The core's configuration. It reaches the core inside the `SessionStart` input, so a
//! journal alone is enough to re-run a session.

use crate::fixed::Fixed;
use crate::symbol::Symbol;

#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub struct CoreConfig {
    pub symbol: Symbol,
    /// Interval of the bars the core receives.
    pub interval_ns: i64,
    /// Interval of the bars the strategy sees: `interval_ns`, or a multiple of it that the
    /// core resamples to (see `resample`).
    pub strategy_interval_ns: i64,
    /// Quote-asset cash at the start of the session.
    pub starting_balance: Fixed,
    pub strategy: StrategyConfig,
    pub sizing: Sizing,
}

#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub enum StrategyConfig {
    /// Long only: enter when the fast SMA crosses above the slow one, exit when it crosses
    /// below.
    SmaCross { fast: u32, slow: u32 },
    /// Long only: enter when the fast EMA crosses above the slow one, exit below.
    EmaCross { fast: u32, slow: u32 },
    /// Enter when RSI crosses up through `oversold`, exit when it crosses down through
    /// `overbought`.
    Rsi {
        period: u32,
        oversold: f64,
        overbought: f64,
    },
    /// Enter on a close above the upper band, exit on a close below the middle band.
    Bollinger { period: u32, k: f64 },
    /// Enter when MACD crosses above its signal line, exit when it crosses below.
    Macd { fast: u32, slow: u32, signal: u32 },
}

const PERIOD_MAX: u32 = 100_000;

fn check_period(strategy: &str, name: &str, v: u32) -> Result<(), String> {
    if v == 0 || v > PERIOD_MAX {
        return Err(format!(
            "{strategy}: `{name}` must be 1..={PERIOD_MAX}, got {v}"
        ));
    }
    Ok(())
}

fn check_fast_slow(strategy: &str, fast: u32, slow: u32) -> Result<(), String> {
    check_period(strategy, "fast", fast)?;
    check_period(strategy, "slow", slow)?;
    if fast >= slow {
        return Err(format!(
            "{strategy}: `fast` ({fast}) must be smaller than `slow` ({slow})"
        ));
    }
    Ok(())
}

impl StrategyConfig {
    pub fn name(&self) -> &'static str {
        match self {
            StrategyConfig::SmaCross { .. } => "sma_cross",
            StrategyConfig::EmaCross { .. } => "ema_cross",
            StrategyConfig::Rsi { .. } => "rsi",
            StrategyConfig::Bollinger { .. } => "bollinger",
            StrategyConfig::Macd { .. } => "macd",
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        let name = self.name();
        match *self {
            StrategyConfig::SmaCross { fast, slow } | StrategyConfig::EmaCross { fast, slow } => {
                check_fast_slow(name, fast, slow)
            }
            StrategyConfig::Rsi {
                period,
                oversold,
                overbought,
            } => {
                check_period(name, "period", period)?;
                if !(0.0 < oversold && oversold < overbought && overbought < 100.0) {
                    return Err(format!(
                        "rsi: need 0 < oversold ({oversold}) < overbought ({overbought}) < 100"
                    ));
                }
                Ok(())
            }
            StrategyConfig::Bollinger { period, k } => {
                check_period(name, "period", period)?;
                if !(k.is_finite() && k > 0.0) {
                    return Err(format!("bollinger: `k` must be positive, got {k}"));
                }
                Ok(())
            }
            StrategyConfig::Macd { fast, slow, signal } => {
                check_fast_slow(name, fast, slow)?;
                check_period(name, "signal", signal)
            }
        }
    }
}

/// How an entry is sized until the risk manager takes over sizing.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub struct Sizing {
    /// Fraction of equity committed to an entry (1.0 = all of it).
    pub allocation: Fixed,
    /// Quantity step: orders are rounded down to a multiple of it.
    pub lot_size: Fixed,
    /// Rate of the price the core reserves on top of it when sizing a market order: the
    /// taker fee plus the expected slippage (0.0011 = 11 bps). Without it, an entry sized to
    /// all the cash is rejected whenever it fills at the price it was decided at.
    pub cost_reserve: Fixed,
}
