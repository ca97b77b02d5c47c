//! The core's configuration. It reaches the core inside the `SessionStart` input, so a
//! journal alone is enough to re-run a session.

use crate::fixed::Fixed;
use crate::symbol::Symbol;

#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub struct CoreConfig {
    /// The symbols traded, each with its own strategy instance. Order matters only for
    /// display; candles of other symbols are ignored.
    pub symbols: Vec<Symbol>,
    /// Interval of the bars the core receives.
    pub interval_ns: i64,
    /// Interval of the bars the strategy sees: `interval_ns`, or a multiple of it that the
    /// core resamples to (see `resample`).
    pub strategy_interval_ns: i64,
    /// Quote-asset cash at the start of the session.
    pub starting_balance: Fixed,
    pub strategy: StrategyConfig,
    pub sizing: Sizing,
    pub risk: RiskConfig,
    /// Which sides the strategy's signals trade (spot: long only).
    pub direction: Direction,
    /// Perpetuals: the leverage the venue applies (margin = notional / leverage). Spot: 1,
    /// and entries are paid in full from cash.
    pub leverage: Fixed,
    /// Whether the account trades perpetuals (short selling, margin) or spot.
    pub perpetual: bool,
}

/// Which way a strategy's two signals trade. The strategy says "enter long" and "exit long";
/// with shorts allowed, its exit opens the short and its entry covers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub enum Direction {
    Long,
    Short,
    LongShort,
}

impl Direction {
    pub fn long(self) -> bool {
        matches!(self, Direction::Long | Direction::LongShort)
    }

    pub fn short(self) -> bool {
        matches!(self, Direction::Short | Direction::LongShort)
    }
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
    /// A ladder of limit orders (see `strategy::grid`). Bounds are absolute (`lower`,
    /// `upper`) or, when `range_pct` is positive, that fraction either side of the price the
    /// grid starts at.
    Grid {
        lower: Fixed,
        upper: Fixed,
        range_pct: Fixed,
        /// Number of steps between the bounds (levels + 1 prices).
        levels: u32,
        /// How far beyond the range a close must be to end the grid (0.01 = 1%).
        exit_pct: Fixed,
    },
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
            StrategyConfig::Grid { .. } => "grid",
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
            StrategyConfig::Grid {
                lower,
                upper,
                range_pct,
                levels,
                exit_pct,
            } => {
                let max = crate::strategy::grid::GRID_LEVELS_MAX;
                if !(2..=max).contains(&levels) {
                    return Err(format!("grid: `levels` must be 2..={max}, got {levels}"));
                }
                let absolute = !lower.is_zero() || !upper.is_zero();
                match (absolute, range_pct > Fixed::ZERO) {
                    (true, true) => {
                        return Err(
                            "grid: give `lower` and `upper`, or `range_pct`, not both".into()
                        );
                    }
                    (false, false) => {
                        return Err("grid: needs `lower` and `upper`, or `range_pct`".into());
                    }
                    (true, false) if !(Fixed::ZERO < lower && lower < upper) => {
                        return Err(format!("grid: need 0 < lower ({lower}) < upper ({upper})"));
                    }
                    (false, true) if range_pct >= Fixed::ONE => {
                        return Err(format!(
                            "grid: `range_pct` must be below 1, got {range_pct}"
                        ));
                    }
                    _ => {}
                }
                if exit_pct.is_negative() || exit_pct >= Fixed::ONE {
                    return Err(format!(
                        "grid: `exit_pct` must be in [0, 1), got {exit_pct}"
                    ));
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
    /// Rate of the price the core reserves on top of it when sizing a market order: the
    /// taker fee plus the expected slippage (0.0011 = 11 bps). Without it, an entry sized to
    /// all the cash is rejected whenever it fills at the price it was decided at.
    pub cost_reserve: Fixed,
}

/// Where the protective stop of a new position goes.
#[derive(Clone, Copy, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub enum StopRule {
    /// No stop: entries are sized by `Sizing::allocation` instead of by risk.
    None,
    /// `pct` below the entry price (0.02 = 2%).
    Percent(Fixed),
    /// `mult` × ATR below the entry price.
    Atr(Fixed),
    /// `pct` below the highest high since entry, raised as the price rises.
    TrailingPercent(Fixed),
    /// `mult` × ATR below the highest high since entry, raised as the price rises.
    TrailingAtr(Fixed),
}

/// Where the take-profit of a new position goes.
#[derive(Clone, Copy, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub enum TargetRule {
    None,
    /// `pct` above the entry price.
    Percent(Fixed),
    /// `mult` × ATR above the entry price.
    Atr(Fixed),
}

/// The risk manager's rules. Every entry passes them; what fails is a journaled `Reject`.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub struct RiskConfig {
    /// Fraction of equity lost when a position's stop is hit (0.01 = 1%): the entry's size is
    /// `equity × risk_per_trade / |entry − stop|`.
    pub risk_per_trade: Fixed,
    pub stop: StopRule,
    pub take_profit: TargetRule,
    /// ATR period for ATR stops and targets (Wilder, on the strategy's bars).
    pub atr_period: u32,
    /// Most symbols holding a position (or an entry in flight) at once.
    pub max_positions: u32,
    /// Largest position value per asset, as a fraction of equity, at decision time.
    pub max_exposure: Fixed,
    /// Loss from the UTC day's starting equity that stops new entries until the next UTC
    /// day (0.05 = 5%; zero disables it).
    pub daily_loss_limit: Fixed,
    /// Also cancel orders and close every position when the daily loss limit trips.
    pub daily_loss_flatten: bool,
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            risk_per_trade: Fixed::from_raw(Fixed::SCALE / 100),
            stop: StopRule::Percent(Fixed::from_raw(Fixed::SCALE / 50)),
            take_profit: TargetRule::Percent(Fixed::from_raw(Fixed::SCALE / 25)),
            atr_period: 14,
            max_positions: 5,
            max_exposure: Fixed::from_raw(Fixed::SCALE / 5),
            daily_loss_limit: Fixed::from_raw(Fixed::SCALE / 20),
            daily_loss_flatten: false,
        }
    }
}

impl RiskConfig {
    /// No stops or targets, no caps, no daily limit: entries sized by `Sizing::allocation`
    /// alone. For tests and benchmarks that check sizing and fills in isolation.
    pub fn unmanaged() -> RiskConfig {
        RiskConfig {
            stop: StopRule::None,
            take_profit: TargetRule::None,
            max_positions: u32::MAX,
            max_exposure: Fixed::ONE,
            daily_loss_limit: Fixed::ZERO,
            ..RiskConfig::default()
        }
    }

    /// Whether ATR values are needed (ATR stops or targets).
    pub fn uses_atr(&self) -> bool {
        matches!(self.stop, StopRule::Atr(_) | StopRule::TrailingAtr(_))
            || matches!(self.take_profit, TargetRule::Atr(_))
    }

    /// Checks the rules; `leverage` bounds `max_exposure` (1 on spot).
    pub fn validate(&self, leverage: Fixed) -> Result<(), String> {
        if !(self.max_exposure > Fixed::ZERO && self.max_exposure <= leverage.max(Fixed::ONE)) {
            return Err(format!(
                "risk: `max_exposure` must be above 0 and at most the leverage ({leverage}), got {}",
                self.max_exposure
            ));
        }
        let unit = |name: &str, v: Fixed, allow_zero: bool| {
            let ok = if allow_zero {
                v >= Fixed::ZERO
            } else {
                v > Fixed::ZERO
            } && v <= Fixed::ONE;
            if ok {
                Ok(())
            } else {
                let low = if allow_zero { "0" } else { "above 0" };
                Err(format!(
                    "risk: `{name}` must be {low} and at most 1, got {v}"
                ))
            }
        };
        unit("risk_per_trade", self.risk_per_trade, false)?;
        unit("daily_loss_limit", self.daily_loss_limit, true)?;
        match self.stop {
            StopRule::Percent(p) | StopRule::TrailingPercent(p) => {
                if !(p > Fixed::ZERO && p < Fixed::ONE) {
                    return Err(format!(
                        "risk: stop percentage must be between 0 and 1, got {p}"
                    ));
                }
            }
            StopRule::Atr(m) | StopRule::TrailingAtr(m) => {
                if m <= Fixed::ZERO {
                    return Err(format!("risk: stop ATR multiple must be positive, got {m}"));
                }
            }
            StopRule::None => {}
        }
        match self.take_profit {
            TargetRule::Percent(p) | TargetRule::Atr(p) => {
                if p <= Fixed::ZERO {
                    return Err(format!(
                        "risk: take-profit distance must be positive, got {p}"
                    ));
                }
            }
            TargetRule::None => {}
        }
        if self.uses_atr() {
            check_period("risk", "atr_period", self.atr_period)?;
        }
        if self.max_positions == 0 {
            return Err("risk: `max_positions` must be at least 1".into());
        }
        Ok(())
    }
}
