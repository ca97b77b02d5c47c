//! Deterministic synthetic bars (a seeded random walk) for tests and benchmarks that need
//! more history than the bundled real data, or a market with known properties. Never used
//! for anything a user would mistake for real data.

use keel_engine::{Candle, Fixed, Symbol};

/// `n` one-minute bars of `symbol` starting 2022-01-01T00:00:00Z, from a xorshift walk
/// seeded by `seed`: each close moves up to ±0.01 from the open, highs and lows add up to
/// 0.005 of wick, price never below 1.
pub fn random_walk(symbol: Symbol, n: usize, seed: u64) -> Vec<Candle> {
    let mut x = seed.max(1);
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut price: i64 = 100 * Fixed::SCALE;
    (0..n)
        .map(|i| {
            let open = price;
            let step = (next() % 2001) as i64 - 1000;
            price = (price + step * 1000).max(Fixed::SCALE);
            let wick = (next() % 500) as i64 * 1000;
            Candle {
                symbol,
                open_time_ns: 1_640_995_200_000_000_000 + i as i64 * 60_000_000_000,
                interval_ns: 60_000_000_000,
                open: Fixed(open),
                high: Fixed(open.max(price) + wick),
                low: Fixed(open.min(price) - wick),
                close: Fixed(price),
                volume: Fixed::ONE,
            }
        })
        .collect()
}

/// A backtest of `strategy` on one series of a store, with 10,000 of starting balance, the
/// given taker fee and slippage rates, the whole equity per entry and a 0.001 lot: the
/// configuration tests and benchmarks share.
pub fn spec(
    store: std::path::PathBuf,
    journal_dir: std::path::PathBuf,
    symbol: Symbol,
    interval: keel_engine::Interval,
    strategy: keel_engine::StrategyConfig,
    fee: Fixed,
    slippage: Fixed,
) -> crate::backtest::BacktestSpec {
    let balance = Fixed::from_int(10_000);
    crate::backtest::BacktestSpec {
        store,
        symbols: vec![symbol],
        interval,
        from_ns: None,
        to_ns: None,
        embed_candles: false,
        core: keel_engine::CoreConfig {
            symbols: vec![symbol],
            interval_ns: interval.ns,
            strategy_interval_ns: interval.ns,
            starting_balance: balance,
            strategy,
            sizing: keel_engine::Sizing {
                allocation: Fixed::ONE,
                lot_size: Fixed::parse("0.001").unwrap_or(Fixed::ONE),
                cost_reserve: fee + slippage,
            },
            risk: keel_engine::RiskConfig::unmanaged(),
            direction: keel_engine::Direction::Long,
            leverage: keel_engine::Fixed::ONE,
            perpetual: false,
        },
        sim: keel_engine::SimConfig {
            taker_fee: fee,
            maker_fee: fee,
            stop_first: true,
            slippage,
            starting_balance: balance,
            latency_ns: 0,
            participation: keel_engine::Fixed::ZERO,
            market: keel_engine::sim::Market::Spot,
        },
        funding: Vec::new(),
        config_text: String::new(),
        journal_dir,
    }
}
