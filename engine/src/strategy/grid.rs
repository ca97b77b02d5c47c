//! Grid trading: a ladder of limit orders inside a price range, re-armed as levels fill.
//!
//! Levels are evenly spaced from `lower` to `upper`. When the grid starts (first closed bar
//! of its symbol), the reference price is that bar's close:
//! - every level below the reference gets a limit buy of one unit (`qty` per level);
//! - the levels above need inventory to sell, so the grid buys it at market (one unit per level
//!   above) and, once that fills, places a limit sell at each of them.
//!
//! A buy filled at level k is re-armed as a sell at level k + 1; a sell filled at level k as a
//! buy at level k − 1. Each round trip earns one grid step minus fees.
//!
//! Range exit: when a bar closes below `lower × (1 − exit_pct)` or above
//! `upper × (1 + exit_pct)`, the grid cancels its orders, sells what it holds at market and
//! stops for the rest of the session.
//!
//! The grid decides orders, not signals, so the core drives it directly (see `Core`); this
//! module holds its state and arithmetic only.

use crate::fixed::Fixed;

/// Most intervals a grid may have (the levels are `levels + 1` prices).
pub const GRID_LEVELS_MAX: u32 = 200;

#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Grid {
    /// Level prices, ascending; empty until the grid starts.
    pub prices: Vec<Fixed>,
    /// Base quantity per level.
    pub qty: Fixed,
    /// The close the grid started at: levels above it were seeded with inventory.
    pub reference: Fixed,
    pub phase: GridPhase,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum GridPhase {
    /// Waiting for the first closed bar.
    Idle,
    Running,
    /// Left the range (or could not start): no more orders.
    Stopped,
}

impl Default for Grid {
    fn default() -> Self {
        Grid::new()
    }
}

impl Grid {
    pub fn new() -> Grid {
        Grid {
            prices: Vec::new(),
            qty: Fixed::ZERO,
            reference: Fixed::ZERO,
            phase: GridPhase::Idle,
        }
    }

    /// The ladder from `lower` to `upper` in `levels` equal steps (each price floored to
    /// 1e-8; the last is exactly `upper`).
    pub fn ladder(lower: Fixed, upper: Fixed, levels: u32) -> Vec<Fixed> {
        let n = levels.max(1) as i64;
        let span = upper.raw().saturating_sub(lower.raw());
        (0..=n)
            .map(|k| {
                // i128 keeps k × span exact for any price keel can hold.
                let step = (span as i128 * k as i128 / n as i128) as i64;
                Fixed::from_raw(lower.raw().saturating_add(step))
            })
            .collect()
    }

    /// Whether a bar closing at `close` has left the range by more than `exit_pct`.
    pub fn out_of_range(&self, close: Fixed, exit_pct: Fixed) -> bool {
        let (Some(&lower), Some(&upper)) = (self.prices.first(), self.prices.last()) else {
            return false;
        };
        let low = lower.checked_mul(Fixed::ONE - exit_pct).unwrap_or(lower);
        let high = upper.checked_mul(Fixed::ONE + exit_pct).unwrap_or(upper);
        close < low || close > high
    }
}

/// The grid trades through the core, never by signal; the trait gives it a name.
impl crate::strategy::Strategy for Grid {
    fn name(&self) -> &'static str {
        "grid"
    }

    fn on_candle(&mut self, _candle: &crate::candle::Candle) -> Option<crate::strategy::Signal> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> Fixed {
        Fixed::parse(s).unwrap()
    }

    #[test]
    fn ladder_is_evenly_spaced_and_ends_on_the_bounds() {
        let l = Grid::ladder(f("90"), f("110"), 4);
        assert_eq!(l, vec![f("90"), f("95"), f("100"), f("105"), f("110")]);
        // 10 / 3 = 3.33333333…: floored per level, last level exact.
        let l = Grid::ladder(f("0"), f("10"), 3);
        assert_eq!(l, vec![f("0"), f("3.33333333"), f("6.66666666"), f("10")]);
    }

    #[test]
    fn range_exit_honours_the_buffer() {
        let g = Grid {
            prices: Grid::ladder(f("90"), f("110"), 4),
            qty: Fixed::ONE,
            reference: f("100"),
            phase: GridPhase::Running,
        };
        assert!(!g.out_of_range(f("90"), Fixed::ZERO));
        assert!(g.out_of_range(f("89.99"), Fixed::ZERO));
        assert!(!g.out_of_range(f("89.99"), f("0.01"))); // floor 89.1
        assert!(g.out_of_range(f("111.2"), f("0.01"))); // ceiling 111.1
    }
}
