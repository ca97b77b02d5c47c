//! Strategies turn closed candles into signals. They hold indicator state only: positions,
//! orders and sizing belong to the core, so a strategy never needs to know what was filled.

pub mod grid;
pub mod signals;
pub mod sma_cross;

use crate::candle::Candle;
use crate::config::StrategyConfig;
use crate::event::SignalAction;

pub use grid::Grid;
pub use signals::{BollingerBreakout, EmaCross, MacdCross, RsiLevels};
pub use sma_cross::SmaCross;

/// A strategy's view after a closed candle.
#[derive(Clone, Debug, PartialEq)]
pub struct Signal {
    pub action: SignalAction,
    /// The numbers behind the signal, for the journal and the logs.
    pub detail: String,
}

/// Implemented by every strategy, built-in or a user's own. Must be deterministic: the same
/// candles in the same order give the same signals, with no clock, RNG or I/O.
pub trait Strategy {
    fn name(&self) -> &'static str;
    /// Called once per closed candle of the configured symbol and interval.
    fn on_candle(&mut self, candle: &Candle) -> Option<Signal>;
}

/// The built-in strategies, as one archivable enum so the core's state (and so its digest
/// and snapshots) covers them.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum StrategyState {
    SmaCross(SmaCross),
    EmaCross(EmaCross),
    Rsi(RsiLevels),
    Bollinger(BollingerBreakout),
    Macd(MacdCross),
    Grid(Grid),
}

impl StrategyState {
    pub fn from_config(config: &StrategyConfig) -> StrategyState {
        match *config {
            StrategyConfig::SmaCross { fast, slow } => {
                StrategyState::SmaCross(SmaCross::new(fast as usize, slow as usize))
            }
            StrategyConfig::EmaCross { fast, slow } => {
                StrategyState::EmaCross(EmaCross::new(fast as usize, slow as usize))
            }
            StrategyConfig::Rsi {
                period,
                oversold,
                overbought,
            } => StrategyState::Rsi(RsiLevels::new(period as usize, oversold, overbought)),
            StrategyConfig::Bollinger { period, k } => {
                StrategyState::Bollinger(BollingerBreakout::new(period as usize, k))
            }
            StrategyConfig::Macd { fast, slow, signal } => StrategyState::Macd(MacdCross::new(
                fast as usize,
                slow as usize,
                signal as usize,
            )),
            StrategyConfig::Grid { .. } => StrategyState::Grid(Grid::new()),
        }
    }

    pub fn as_strategy(&mut self) -> &mut dyn Strategy {
        match self {
            StrategyState::SmaCross(s) => s,
            StrategyState::EmaCross(s) => s,
            StrategyState::Rsi(s) => s,
            StrategyState::Bollinger(s) => s,
            StrategyState::Macd(s) => s,
            StrategyState::Grid(s) => s,
        }
    }
}
