//! Property tests of the core driven by the simulated venue, over random bar series, every
//! built-in strategy and random strategy parameters. Checked after every input:
//! - the core's cash equals the venue's (the core follows what the venue booked);
//! - each position equals the signed sum of its fills;
//! - fees are never negative; client order ids are never reused.
//!
//! At the end, a core restored from a snapshot taken at a random point and fed the rest
//! reaches the same digest as the uninterrupted core, as does a second run.

use std::collections::BTreeSet;

use keel_engine::config::Direction;
use keel_engine::event::{Decision, Event, Input, Mode, SessionStart, Side};
use keel_engine::{
    Candle, Core, CoreConfig, Fixed, Market, RiskConfig, SimConfig, SimVenue, Sizing,
    StrategyConfig, Symbol,
};
use proptest::prelude::*;

fn symbol() -> Symbol {
    Symbol::new("PROPUSDT").unwrap()
}

fn bars(steps: &[(i32, u16)]) -> Vec<Candle> {
    let mut price: i64 = 50 * Fixed::SCALE;
    steps
        .iter()
        .enumerate()
        .map(|(i, &(step, wiggle))| {
            let open = price;
            price = (price + i64::from(step) * 10_000).max(Fixed::SCALE / 100);
            let w = i64::from(wiggle) * 1_000;
            Candle {
                symbol: symbol(),
                open_time_ns: i as i64 * 60_000_000_000,
                interval_ns: 60_000_000_000,
                open: Fixed(open),
                high: Fixed(open.max(price) + w),
                low: Fixed((open.min(price) - w).max(1)),
                close: Fixed(price),
                volume: Fixed::ONE,
            }
        })
        .collect()
}

struct Run {
    inputs: Vec<Input>,
    digest: [u8; 32],
}

/// Drives core and venue the way the backtest does, checking invariants per input.
fn drive(candles: &[Candle], strategy: StrategyConfig, resample: i64, fee_bps: i64) -> Run {
    let fee = Fixed(fee_bps * 10_000);
    let balance = Fixed::from_int(1_000);
    let config = CoreConfig {
        symbols: vec![symbol()],
        interval_ns: 60_000_000_000,
        strategy_interval_ns: 60_000_000_000 * resample,
        starting_balance: balance,
        strategy,
        sizing: Sizing {
            allocation: Fixed::ONE,
            lot_size: Fixed::parse("0.01").unwrap(),
            cost_reserve: fee,
        },
        risk: RiskConfig::unmanaged(),
        direction: Direction::Long,
        leverage: Fixed::ONE,
        perpetual: false,
    };
    let mut venue = SimVenue::new(SimConfig {
        taker_fee: fee,
        maker_fee: fee,
        stop_first: true,
        slippage: Fixed::ZERO,
        starting_balance: balance,
        latency_ns: 0,
        participation: Fixed::ZERO,
        market: Market::Spot,
    });
    let mut core = Core::new();
    let mut inputs = Vec::new();
    let mut pending: Vec<(u64, Event)> = vec![(
        0,
        Event::SessionStart(SessionStart {
            mode: Mode::Backtest,
            config,
            config_text: String::new(),
        }),
    )];
    let mut ids = BTreeSet::new();
    let mut fill_sum = Fixed::ZERO;
    let mut seq = 0;
    let mut scratch = Vec::new();
    let mut next_bar = 0;
    loop {
        if pending.is_empty() {
            let Some(c) = candles.get(next_bar) else {
                break;
            };
            next_bar += 1;
            venue.on_candle(c, &mut scratch);
            let open = c.open_time_ns as u64;
            pending.extend(scratch.drain(..).map(|e| (open, e)));
            pending.push((c.close_time_ns() as u64, Event::Candle(*c)));
        }
        let (ts_ns, event) = pending.remove(0);
        seq += 1;
        if let Event::Fill(f) = &event {
            assert!(f.fee >= Fixed::ZERO, "negative fee {f:?}");
            fill_sum += if f.side == Side::Buy { f.qty } else { -f.qty };
        }
        let input = Input { seq, ts_ns, event };
        let decisions = core.apply(&input).to_vec();
        inputs.push(input);
        for d in &decisions {
            if let Decision::PlaceOrder(req) = d {
                assert!(
                    ids.insert(req.client_id),
                    "client id {} reused",
                    req.client_id
                );
                venue.submit(req, ts_ns as i64, &mut scratch);
                for (i, e) in scratch.drain(..).enumerate() {
                    pending.insert(i, (ts_ns, e));
                }
            }
        }
        let state = core.state();
        assert_eq!(
            state.portfolio.cash,
            venue.cash(),
            "core cash diverged from venue at seq {seq}"
        );
        assert_eq!(
            state.portfolio.position(&symbol()),
            fill_sum,
            "position != sum of fills"
        );
        assert!(state.portfolio.fees_paid >= Fixed::ZERO);
    }
    Run {
        inputs,
        digest: core.digest(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn core_follows_the_venue_and_replays_from_any_snapshot(
        steps in prop::collection::vec((-400i32..400, 0u16..300), 50..600),
        kind in 0usize..5,
        fast in 1u32..10,
        extra in 1u32..30,
        level in 5.0f64..45.0,
        fee_bps in 0i64..30,
        resample in prop::sample::select(vec![1i64, 1, 5, 15]),
        cut in 0.0f64..1.0,
    ) {
        let candles = bars(&steps);
        let slow = fast + extra;
        let strategy = match kind {
            0 => StrategyConfig::SmaCross { fast, slow },
            1 => StrategyConfig::EmaCross { fast, slow },
            2 => StrategyConfig::Rsi { period: fast + 1, oversold: level, overbought: 100.0 - level },
            3 => StrategyConfig::Bollinger { period: fast + 1, k: level / 20.0 },
            _ => StrategyConfig::Macd { fast, slow, signal: extra.min(9) },
        };
        let a = drive(&candles, strategy.clone(), resample, fee_bps);
        let b = drive(&candles, strategy, resample, fee_bps);
        prop_assert_eq!(a.digest, b.digest);

        // Snapshot at a random input, restore, and apply the rest.
        let k = ((a.inputs.len() as f64) * cut) as usize;
        let mut first = Core::new();
        for input in &a.inputs[..k] {
            first.apply(input);
        }
        let mut restored = Core::from_state_bytes(&first.state_bytes()).unwrap();
        prop_assert_eq!(restored.digest(), first.digest());
        for input in &a.inputs[k..] {
            restored.apply(input);
        }
        prop_assert_eq!(restored.digest(), a.digest);
    }
}
