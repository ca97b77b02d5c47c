//! The core's configuration. It reaches the core inside the `SessionStart` input, so a
//! journal alone is enough to re-run a session.

use crate::fixed::Fixed;
use crate::symbol::Symbol;

#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub struct CoreConfig {
    pub symbol: Symbol,
    pub interval_ns: i64,
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
}

impl StrategyConfig {
    pub fn name(&self) -> &'static str {
        match self {
            StrategyConfig::SmaCross { .. } => "sma_cross",
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        match *self {
            StrategyConfig::SmaCross { fast, slow } => {
                if fast == 0 || slow == 0 {
                    return Err("sma_cross: `fast` and `slow` must be at least 1".into());
                }
                if fast >= slow {
                    return Err(format!(
                        "sma_cross: `fast` ({fast}) must be smaller than `slow` ({slow})"
                    ));
                }
                if slow > 100_000 {
                    return Err(format!("sma_cross: `slow` ({slow}) is above 100000"));
                }
                Ok(())
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
    /// Taker fee rate the core reserves cash for when sizing a market order (0.001 = 10 bps).
    pub fee_reserve: Fixed,
}
