//! Each strategy's entries and exits on one small series. The expected bars come from an
//! independent plain-Python implementation of the same rules with TA-Lib's seeding,
//! `engine/tests/ref_signals.py` (run it with `python3` to see the same lists).

use keel_engine::event::SignalAction::{self, EnterLong as E, ExitLong as X};
use keel_engine::strategy::{
    BollingerBreakout, EmaCross, MacdCross, RsiLevels, SmaCross, Strategy,
};
use keel_engine::{Candle, Fixed, Symbol};

const CLOSES: [i64; 22] = [
    10, 11, 12, 11, 10, 9, 8, 9, 10, 11, 12, 13, 12, 11, 10, 9, 10, 11, 12, 14, 13, 11,
];

fn signals(mut s: impl Strategy) -> Vec<(usize, SignalAction)> {
    CLOSES
        .iter()
        .enumerate()
        .filter_map(|(i, &c)| {
            let p = Fixed::from_int(c);
            let candle = Candle {
                symbol: Symbol::new("T").unwrap(),
                open_time_ns: i as i64 * 60_000_000_000,
                interval_ns: 60_000_000_000,
                open: p,
                high: p,
                low: p,
                close: p,
                volume: Fixed::ONE,
            };
            s.on_candle(&candle).map(|sig| (i, sig.action))
        })
        .collect()
}

#[test]
fn ema_cross_enters_above_and_exits_below() {
    assert_eq!(
        signals(EmaCross::new(2, 4)),
        [(4, X), (8, E), (13, X), (17, E), (21, X)]
    );
}

#[test]
fn rsi_enters_through_oversold_and_exits_through_overbought() {
    assert_eq!(
        signals(RsiLevels::new(3, 30.0, 70.0)),
        [(7, E), (12, X), (16, E), (20, X)]
    );
}

#[test]
fn bollinger_enters_above_upper_and_exits_below_middle() {
    assert_eq!(
        signals(BollingerBreakout::new(3, 1.0)),
        [
            (2, E),
            (3, X),
            (4, X),
            (5, X),
            (6, X),
            (8, E),
            (9, E),
            (10, E),
            (11, E),
            (12, X),
            (13, X),
            (14, X),
            (15, X),
            (17, E),
            (18, E),
            (19, E),
            (21, X)
        ]
    );
}

#[test]
fn macd_enters_and_exits_on_signal_line_crosses() {
    assert_eq!(
        signals(MacdCross::new(2, 4, 2)),
        [(7, E), (12, X), (16, E), (20, X)]
    );
}

/// The SMA crossover on the same series. SMA(2) − SMA(4) by bar, from bar 3 (hand-computed):
/// +0.5, −0.5 (4: exit), −1, −1, −0.5, +0.5 (8: enter), +1, +1, +1, +0.5, −0.5 (13: exit),
/// −1, −1, −0.5, +0.5 (17: enter), +1, +1.25, +1, −0.5 (21: exit).
#[test]
fn sma_cross_on_the_same_series() {
    assert_eq!(
        signals(SmaCross::new(2, 4)),
        [(4, X), (8, E), (13, X), (17, E), (21, X)]
    );
}
