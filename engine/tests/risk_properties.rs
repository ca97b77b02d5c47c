//! Property tests of the risk manager over random multi-symbol candle series, random
//! strategies and random risk settings, played through the core and the simulated venue.
//! After every input:
//! - the core's cash, positions and equity equal the test's own ledger (kept from the fills
//!   and the last closes), and the venue's equal it once a bar's answers are delivered;
//! - fees are never negative;
//! - an entry never exceeds the exposure cap (quantity × price ≤ cap × equity, at the
//!   decision's price and equity);
//! - no more symbols hold a position than `max_positions`;
//! - no entry is placed after the daily loss limit tripped, until the next UTC day — with
//!   the day's start equity and the trip tracked here independently of the core.

use std::collections::BTreeMap;

use keel_engine::config::Direction;
use keel_engine::config::{RiskConfig, StopRule, TargetRule};
use keel_engine::event::{Decision, Event, Input, Mode, SessionStart, Side};
use keel_engine::{
    Candle, Core, CoreConfig, Fixed, Market, SimConfig, SimVenue, Sizing, StrategyConfig, Symbol,
};
use proptest::prelude::*;

const MIN: i64 = 60_000_000_000;
const DAY: i64 = 86_400_000_000_000;

fn symbols(n: usize) -> Vec<Symbol> {
    ["AAA", "BBB", "CCC", "DDD"][..n]
        .iter()
        .map(|s| Symbol::new(s).unwrap())
        .collect()
}

/// Random walks, one per symbol, starting 23:00 UTC so every run crosses a midnight.
fn series(steps: &[Vec<(i32, u16)>], syms: &[Symbol]) -> Vec<Candle> {
    let start = DAY - 60 * MIN;
    let mut out = Vec::new();
    for (s, walk) in syms.iter().zip(steps) {
        let mut price: i64 = 100 * Fixed::SCALE;
        for (i, &(step, range)) in walk.iter().enumerate() {
            let open = price;
            let close = (price + step as i64 * Fixed::SCALE / 100).max(Fixed::SCALE);
            let wick = range as i64 * Fixed::SCALE / 100;
            out.push(Candle {
                symbol: *s,
                open_time_ns: start + i as i64 * MIN,
                interval_ns: MIN,
                open: Fixed::from_raw(open),
                high: Fixed::from_raw(open.max(close) + wick),
                low: Fixed::from_raw((open.min(close) - wick).max(Fixed::SCALE / 2)),
                close: Fixed::from_raw(close),
                volume: Fixed::ONE,
            });
            price = close;
        }
    }
    // The backtest's merge order: open time, then symbol.
    out.sort_by(|a, b| {
        (a.open_time_ns, a.symbol.as_str()).cmp(&(b.open_time_ns, b.symbol.as_str()))
    });
    out
}

/// The test's own account, kept from the fills the core is given.
#[derive(Default)]
struct Ledger {
    cash: Fixed,
    positions: BTreeMap<Symbol, Fixed>,
}

impl Ledger {
    fn apply(&mut self, fill: &keel_engine::event::Fill) {
        let notional = fill.price.checked_mul(fill.qty).unwrap();
        let q = self.positions.entry(fill.symbol).or_default();
        match fill.side {
            keel_engine::event::Side::Buy => {
                self.cash -= notional;
                *q += fill.qty;
            }
            keel_engine::event::Side::Sell => {
                self.cash += notional;
                *q -= fill.qty;
            }
        }
        self.cash -= fill.fee;
    }

    fn position(&self, s: &Symbol) -> Fixed {
        self.positions.get(s).copied().unwrap_or(Fixed::ZERO)
    }

    fn equity(&self, marks: &BTreeMap<Symbol, Fixed>) -> Fixed {
        let mut e = self.cash;
        for (s, q) in &self.positions {
            if !q.is_zero() {
                e += q.checked_mul(marks[s]).unwrap();
            }
        }
        e
    }
}

struct DayWatch {
    day: i64,
    start: Fixed,
    tripped: bool,
}

/// Perpetual settings of a run: leverage, direction, and a funding rate settled every 8th
/// bar of each symbol.
#[derive(Clone, Copy, Debug)]
struct Perp {
    leverage: i64,
    direction: Direction,
    funding_rate: Fixed,
}

fn run(
    candles: &[Candle],
    syms: &[Symbol],
    strategy: StrategyConfig,
    risk: RiskConfig,
    fee: Fixed,
    perp: Option<Perp>,
) {
    let balance = Fixed::from_int(10_000);
    let config = CoreConfig {
        symbols: syms.to_vec(),
        interval_ns: MIN,
        strategy_interval_ns: MIN,
        starting_balance: balance,
        strategy,
        sizing: Sizing {
            allocation: Fixed::ONE,
            lot_size: Fixed::parse("0.001").unwrap(),
            cost_reserve: fee,
        },
        risk: risk.clone(),
        direction: perp.map_or(Direction::Long, |p| p.direction),
        leverage: Fixed::from_int(perp.map_or(1, |p| p.leverage)),
        perpetual: perp.is_some(),
    };
    let mut venue = SimVenue::new(SimConfig {
        taker_fee: fee,
        maker_fee: fee,
        stop_first: true,
        slippage: Fixed::ZERO,
        starting_balance: balance,
        latency_ns: 0,
        participation: Fixed::ZERO,
        market: match perp {
            None => Market::Spot,
            Some(p) => Market::Perp {
                leverage: Fixed::from_int(p.leverage),
                maintenance_margin: Fixed::parse("0.004").unwrap(),
            },
        },
    });
    let mut core = Core::new();
    let mut marks: BTreeMap<Symbol, Fixed> = BTreeMap::new();
    let mut ledger = Ledger {
        cash: balance,
        ..Ledger::default()
    };
    let mut watch: Option<DayWatch> = None;
    let mut queue: Vec<(i64, Event)> = vec![(
        0,
        Event::SessionStart(SessionStart {
            mode: Mode::Backtest,
            config,
            config_text: String::new(),
        }),
    )];
    let mut seq = 0;
    let mut next = 0;
    let mut scratch = Vec::new();
    loop {
        if queue.is_empty() {
            let Some(c) = candles.get(next) else { break };
            next += 1;
            if let Some(p) = perp
                && next % 8 == 0
            {
                venue.on_funding(
                    c.symbol,
                    p.funding_rate,
                    c.open,
                    c.open_time_ns,
                    &mut scratch,
                );
            }
            venue.on_candle(c, &mut scratch);
            queue.extend(scratch.drain(..).map(|e| (c.open_time_ns, e)));
            queue.push((c.close_time_ns(), Event::Candle(*c)));
        }
        let (ts, event) = queue.remove(0);
        // What the test knows before the core sees the input.
        let before = ledger.equity(&marks);
        if let Event::Candle(c) = &event {
            let day = c.open_time_ns.div_euclid(DAY);
            if watch.as_ref().is_none_or(|w| w.day != day) {
                watch = Some(DayWatch {
                    day,
                    start: before,
                    tripped: false,
                });
            }
            marks.insert(c.symbol, c.close);
        }
        if let Event::Fill(fill) = &event {
            assert!(fill.fee >= Fixed::ZERO, "negative fee {fill:?}");
            ledger.apply(fill);
        }
        if let Event::Funding(f) = &event {
            // Longs pay shorts at a positive rate: −position × mark × rate.
            let position = ledger.position(&f.symbol);
            assert_eq!(f.position, position);
            let want = -position
                .checked_mul(f.mark)
                .unwrap()
                .checked_mul(f.rate)
                .unwrap();
            assert_eq!(f.amount, want, "funding {f:?}");
            ledger.cash += f.amount;
        }
        let equity_now = ledger.equity(&marks);
        if let Some(w) = watch.as_mut() {
            let floor = w
                .start
                .checked_mul(Fixed::ONE - risk.daily_loss_limit)
                .unwrap();
            if !risk.daily_loss_limit.is_zero() && equity_now <= floor {
                w.tripped = true;
            }
        }
        seq += 1;
        let decisions = core
            .apply(&Input {
                seq,
                ts_ns: ts as u64,
                event,
            })
            .to_vec();
        for d in &decisions {
            if let Decision::PlaceOrder(o) = d
                && !o.reduce_only
            {
                let tripped = watch.as_ref().is_some_and(|w| w.tripped);
                assert!(!tripped, "entry {o:?} after the daily loss limit tripped");
                let notional = o.qty.checked_mul(marks[&o.symbol]).unwrap();
                if let Some(p) = perp {
                    assert!(
                        (o.side == Side::Buy && p.direction.long())
                            || (o.side == Side::Sell && p.direction.short()),
                        "{o:?} opens a side {:?} does not trade",
                        p.direction
                    );
                }
                let cap = equity_now.checked_mul(risk.max_exposure).unwrap();
                // Fixed-point rounding of the cap and price may differ by a few units of
                // 1e-8 per multiplication.
                assert!(
                    notional <= cap + Fixed::from_raw(1_000),
                    "entry notional {notional} over the cap {cap}"
                );
            }
        }
        let mut answers = Vec::new();
        for d in &decisions {
            match d {
                Decision::PlaceOrder(r) => venue.submit(r, ts, &mut answers),
                Decision::CancelOrder { client_id } => venue.cancel(*client_id, ts, &mut answers),
                _ => {}
            }
        }
        for (i, a) in answers.into_iter().enumerate() {
            queue.insert(i, (ts, a));
        }
        let state = core.state();
        assert_eq!(state.portfolio.cash, ledger.cash, "cash at seq {seq}");
        for s in syms {
            assert_eq!(
                state.portfolio.position(s),
                ledger.position(s),
                "{s} at seq {seq}"
            );
        }
        assert_eq!(core.equity(), ledger.equity(&marks), "equity at seq {seq}");
        assert!(state.portfolio.fees_paid >= Fixed::ZERO);
        // Once the venue's answers to a bar are all delivered, the venue agrees too (within
        // a bar it may be several fills ahead of the core).
        if queue.iter().all(|(_, e)| matches!(e, Event::Candle(_))) {
            assert_eq!(venue.cash(), ledger.cash, "venue cash at seq {seq}");
            for s in syms {
                assert_eq!(
                    venue.position(s),
                    ledger.position(s),
                    "venue {s} at seq {seq}"
                );
            }
        }
        let holding = syms
            .iter()
            .filter(|s| !ledger.position(s).is_zero())
            .count();
        assert!(
            holding <= risk.max_positions as usize,
            "{holding} positions over the limit {}",
            risk.max_positions
        );
    }
}

fn pct(raw_bps: u32) -> Fixed {
    Fixed::from_raw(raw_bps as i64 * 10_000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn risk_rules_hold_on_random_markets(
        n in 1usize..=4,
        steps in prop::collection::vec(
            prop::collection::vec((-300i32..300, 0u16..200), 100..160), 4),
        kind in 0usize..6,
        fast in 1u32..6,
        extra in 1u32..10,
        stop_kind in 0usize..5,
        stop_bps in 50u32..800,
        tp_kind in 0usize..3,
        risk_bps in 10u32..300,
        exposure_bps in 500u32..10_000,
        max_positions in 1u32..4,
        daily_bps in prop::sample::select(vec![0u32, 100, 200, 500]),
        flatten in any::<bool>(),
        fee_bps in 0i64..20,
        perp_kind in 0usize..4,
        leverage in 1i64..6,
        funding_bps in -10i64..10,
    ) {
        let syms = symbols(n);
        let candles = series(&steps, &syms);
        let slow = fast + extra;
        let strategy = match kind {
            0 => StrategyConfig::SmaCross { fast, slow },
            1 => StrategyConfig::EmaCross { fast, slow },
            2 => StrategyConfig::Rsi { period: fast + 1, oversold: 40.0, overbought: 60.0 },
            3 => StrategyConfig::Bollinger { period: fast + 1, k: 1.0 },
            4 => StrategyConfig::Macd { fast, slow, signal: extra.min(5) },
            _ => StrategyConfig::Grid {
                lower: Fixed::ZERO,
                upper: Fixed::ZERO,
                range_pct: pct(stop_bps * 3),
                levels: 2 + extra,
                exit_pct: pct(fast * 50),
            },
        };
        let mult = Fixed::from_raw(stop_bps as i64 * 1_000_000 / 2); // 0.25 .. 4 ATRs
        let stop = match stop_kind {
            0 => StopRule::None,
            1 => StopRule::Percent(pct(stop_bps)),
            2 => StopRule::TrailingPercent(pct(stop_bps)),
            3 => StopRule::Atr(mult),
            _ => StopRule::TrailingAtr(mult),
        };
        let take_profit = match tp_kind {
            0 => TargetRule::None,
            1 => TargetRule::Percent(pct(stop_bps * 2)),
            _ => TargetRule::Atr(mult),
        };
        let risk = RiskConfig {
            risk_per_trade: pct(risk_bps),
            stop,
            take_profit,
            atr_period: 5,
            max_positions,
            max_exposure: pct(exposure_bps),
            daily_loss_limit: pct(daily_bps),
            daily_loss_flatten: flatten,
        };
        // Spot, or a perpetual long, short or both ways at up to 5x.
        // The grid trades long only.
        let perp_kind = if kind == 5 { perp_kind.min(1) } else { perp_kind };
        let perp = [None, Some(Direction::Long), Some(Direction::Short), Some(Direction::LongShort)]
            [perp_kind]
            .map(|direction| Perp {
                leverage,
                direction,
                funding_rate: Fixed::from_raw(funding_bps * 10_000),
            });
        let mut risk = risk;
        if let Some(p) = perp {
            // Exposure may use the leverage.
            risk.max_exposure = risk.max_exposure.checked_mul(Fixed::from_int(p.leverage)).unwrap();
        }
        prop_assert!(risk.validate(Fixed::from_int(leverage)).is_ok());
        run(&candles, &syms, strategy, risk, Fixed::from_raw(fee_bps * 10_000), perp);
    }
}
