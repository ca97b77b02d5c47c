//! The core and the simulated venue driven bar by bar, the way `keel backtest` drives them.
#![allow(dead_code)] // each test file uses a different subset

use keel_engine::config::{Direction, RiskConfig};
use keel_engine::event::{
    Decision, Event, Input, Mode, OrderKind, RejectReason, SessionStart, Side,
};
use keel_engine::{
    Candle, Core, CoreConfig, Fixed, Market, SimConfig, SimVenue, Sizing, StrategyConfig, Symbol,
};

pub const MIN: i64 = 60_000_000_000;
pub const DAY: i64 = 86_400_000_000_000;

pub fn f(text: &str) -> Fixed {
    Fixed::parse(text).unwrap()
}

pub fn sym(name: &str) -> Symbol {
    Symbol::new(name).unwrap()
}

/// Core + simulated venue, driven bar by bar like `keel backtest`.
pub struct Harness {
    pub core: Core,
    pub venue: SimVenue,
    pub seq: u64,
    /// Every decision so far, with the seq of the input that caused it.
    pub log: Vec<(u64, Decision)>,
}

pub fn config(symbols: &[&str], risk: RiskConfig) -> CoreConfig {
    CoreConfig {
        symbols: symbols.iter().map(|s| sym(s)).collect(),
        interval_ns: MIN,
        strategy_interval_ns: MIN,
        starting_balance: Fixed::from_int(10_000),
        // fast 1 / slow 2: enters on the first close above the previous close after one
        // below it, exits on the first close below.
        strategy: StrategyConfig::SmaCross { fast: 1, slow: 2 },
        sizing: Sizing {
            allocation: Fixed::ONE,
            lot_size: f("0.01"),
            cost_reserve: Fixed::ZERO,
        },
        risk,
        direction: Direction::Long,
        leverage: Fixed::ONE,
        perpetual: false,
    }
}

impl Harness {
    pub fn new(config: CoreConfig) -> Harness {
        let venue = SimVenue::new(SimConfig {
            taker_fee: Fixed::ZERO,
            maker_fee: Fixed::ZERO,
            stop_first: true,
            slippage: Fixed::ZERO,
            starting_balance: config.starting_balance,
            latency_ns: 0,
            participation: Fixed::ZERO,
            market: Market::Spot,
        });
        let mut h = Harness {
            core: Core::new(),
            venue,
            seq: 0,
            log: Vec::new(),
        };
        h.input(
            0,
            Event::SessionStart(SessionStart {
                mode: Mode::Backtest,
                config,
                config_text: String::new(),
            }),
        );
        h
    }

    pub fn input(&mut self, ts: i64, event: Event) {
        let mut queue = vec![event];
        while !queue.is_empty() {
            let event = queue.remove(0);
            self.seq += 1;
            let decisions = self
                .core
                .apply(&Input {
                    seq: self.seq,
                    ts_ns: ts as u64,
                    event,
                })
                .to_vec();
            let mut answers = Vec::new();
            for d in &decisions {
                match d {
                    Decision::PlaceOrder(r) => self.venue.submit(r, ts, &mut answers),
                    Decision::CancelOrder { client_id } => {
                        self.venue.cancel(*client_id, ts, &mut answers)
                    }
                    _ => {}
                }
                self.log.push((self.seq, d.clone()));
            }
            // The venue's answers come before anything later.
            for (i, a) in answers.into_iter().enumerate() {
                queue.insert(i, a);
            }
        }
    }

    /// One bar of `symbol` opening at `open_ns`: the venue works orders on it first, then
    /// the bar closes into the core. Returns the decisions it caused.
    pub fn bar(&mut self, symbol: &str, open_ns: i64, ohlc: [&str; 4]) -> Vec<Decision> {
        let candle = Candle {
            symbol: sym(symbol),
            open_time_ns: open_ns,
            interval_ns: MIN,
            open: f(ohlc[0]),
            high: f(ohlc[1]),
            low: f(ohlc[2]),
            close: f(ohlc[3]),
            volume: Fixed::ONE,
        };
        let from = self.log.len();
        let mut answers = Vec::new();
        self.venue.on_candle(&candle, &mut answers);
        for a in answers {
            self.input(open_ns, a);
        }
        self.input(open_ns + MIN, Event::Candle(candle));
        self.log[from..].iter().map(|(_, d)| d.clone()).collect()
    }

    /// A flat bar (open = high = low = close).
    pub fn flat(&mut self, symbol: &str, open_ns: i64, price: &str) -> Vec<Decision> {
        self.bar(symbol, open_ns, [price; 4])
    }

    pub fn position(&self, symbol: &str) -> Fixed {
        self.core.state().portfolio.position(&sym(symbol))
    }
}

pub fn placed(ds: &[Decision]) -> Vec<(Side, OrderKind, Fixed, bool)> {
    ds.iter()
        .filter_map(|d| match d {
            Decision::PlaceOrder(o) => Some((o.side, o.kind, o.qty, o.reduce_only)),
            _ => None,
        })
        .collect()
}

pub fn rejects(ds: &[Decision]) -> Vec<RejectReason> {
    ds.iter()
        .filter_map(|d| match d {
            Decision::Reject { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect()
}

pub fn cancels(ds: &[Decision]) -> usize {
    ds.iter()
        .filter(|d| matches!(d, Decision::CancelOrder { .. }))
        .count()
}
