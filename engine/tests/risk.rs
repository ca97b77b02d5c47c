//! The risk manager, rule by rule, on small hand-checked series played through the core and
//! the simulated venue exactly as a backtest plays them (fills at the next bar, answers
//! journaled as inputs). Every expected number below is worked out by hand in the comment
//! next to it.

mod common;

use common::*;
use keel_engine::config::{RiskConfig, StopRule, TargetRule};
use keel_engine::event::{Decision, OrderKind, RejectReason, Side};
use keel_engine::{Fixed, Symbol};

/// Three bars that make SmaCross(1, 2) enter on the third close (100 → 99 → 100).
fn enter(h: &mut Harness, symbol: &str, t0: i64) -> Vec<Decision> {
    h.flat(symbol, t0, "100");
    h.flat(symbol, t0 + MIN, "99");
    h.flat(symbol, t0 + 2 * MIN, "100")
}

#[test]
fn entry_size_is_equity_times_risk_over_stop_distance() {
    // 10,000 × 1% / (100 × 2%) = 100 / 2 = 50 units (notional 5,000).
    let risk = RiskConfig {
        max_exposure: Fixed::ONE,
        ..RiskConfig::default()
    };
    let mut h = Harness::new(config(&["BTC"], risk));
    let entry = placed(&enter(&mut h, "BTC", 0));
    assert_eq!(
        entry,
        vec![(Side::Buy, OrderKind::Market, Fixed::from_int(50), false)]
    );

    // Half the risk, half the size: 10,000 × 0.5% / 2 = 25.
    let risk = RiskConfig {
        risk_per_trade: f("0.005"),
        max_exposure: Fixed::ONE,
        ..RiskConfig::default()
    };
    let mut h = Harness::new(config(&["BTC"], risk));
    assert_eq!(placed(&enter(&mut h, "BTC", 0))[0].2, Fixed::from_int(25));
}

#[test]
fn default_exposure_cap_limits_the_entry_to_a_fifth_of_equity() {
    // By risk 50 units, but 20% of 10,000 at 100 is 2,000 / 100 = 20 units.
    let mut h = Harness::new(config(&["BTC"], RiskConfig::default()));
    assert_eq!(placed(&enter(&mut h, "BTC", 0))[0].2, Fixed::from_int(20));
}

#[test]
fn stop_and_target_are_armed_from_the_fill_price_and_the_stop_fills_intrabar() {
    let risk = RiskConfig {
        max_exposure: Fixed::ONE,
        ..RiskConfig::default()
    };
    let mut h = Harness::new(config(&["BTC"], risk));
    enter(&mut h, "BTC", 0);
    // The entry fills at the next open, 101; the stop goes 2% below it (98.98) and the
    // target 4% above it (105.04), both reduce-only sells of the whole position.
    let d = h.bar("BTC", 3 * MIN, ["101", "101.5", "100.5", "101"]);
    assert_eq!(h.position("BTC"), Fixed::from_int(50));
    assert_eq!(
        placed(&d),
        vec![
            (
                Side::Sell,
                OrderKind::Stop {
                    trigger: f("98.98")
                },
                Fixed::from_int(50),
                true
            ),
            (
                Side::Sell,
                OrderKind::Limit {
                    price: f("105.04"),
                    post_only: false
                },
                Fixed::from_int(50),
                true
            ),
        ]
    );
    // A bar whose low reaches 98.5 (open 100.8, above the stop): the stop fills at its
    // trigger, the position is gone and the core cancels the now useless target.
    let d = h.bar("BTC", 4 * MIN, ["100.8", "100.9", "98.5", "99"]);
    assert!(h.position("BTC").is_zero());
    assert_eq!(cancels(&d), 1, "{d:?}");
    // Loss: (98.98 − 101) × 50 = −101 (no fees): 1.01% of equity, about the 1% risked.
    assert_eq!(h.core.state().portfolio.cash, f("9899"));
    assert_eq!(h.venue.open_orders(), 0);
}

#[test]
fn target_fills_when_traded_through_and_the_stop_is_cancelled() {
    let risk = RiskConfig {
        max_exposure: Fixed::ONE,
        ..RiskConfig::default()
    };
    let mut h = Harness::new(config(&["BTC"], risk));
    enter(&mut h, "BTC", 0);
    h.flat("BTC", 3 * MIN, "100"); // fill at 100: stop 98, target 104
    let d = h.bar("BTC", 4 * MIN, ["101", "104.5", "100.5", "104"]);
    assert!(h.position("BTC").is_zero());
    assert_eq!(cancels(&d), 1);
    // (104 − 100) × 50 = +200.
    assert_eq!(h.core.state().portfolio.cash, f("10200"));
}

#[test]
fn a_candle_holding_both_stop_and_target_counts_the_stop() {
    let risk = RiskConfig {
        max_exposure: Fixed::ONE,
        ..RiskConfig::default()
    };
    let mut h = Harness::new(config(&["BTC"], risk));
    enter(&mut h, "BTC", 0);
    h.flat("BTC", 3 * MIN, "100"); // stop 98, target 104
    h.bar("BTC", 4 * MIN, ["100", "105", "97", "100"]);
    // (98 − 100) × 50 = −100.
    assert_eq!(h.core.state().portfolio.cash, f("9900"));
}

#[test]
fn atr_stop_sizes_from_the_atr_and_waits_for_it_to_warm_up() {
    let risk = RiskConfig {
        stop: StopRule::Atr(f("1.5")),
        take_profit: TargetRule::Atr(f("3")),
        atr_period: 3,
        max_exposure: Fixed::ONE,
        ..RiskConfig::default()
    };
    // Bars of range 2 around the close with no gaps: every true range is 2, so ATR(3) = 2
    // from the fourth bar on (TA-Lib: first value at index 3). An entry on the third bar has
    // no ATR yet and is refused.
    let mut h = Harness::new(config(&["BTC"], risk.clone()));
    h.bar("BTC", 0, ["100", "101", "99", "100"]);
    h.bar("BTC", MIN, ["99", "100", "98", "99"]);
    let d = h.bar("BTC", 2 * MIN, ["100", "101", "99", "100"]);
    assert_eq!(rejects(&d), vec![RejectReason::NoStopDistance], "{d:?}");

    let mut h = Harness::new(config(&["BTC"], risk));
    h.bar("BTC", 0, ["100", "101", "99", "100"]);
    h.bar("BTC", MIN, ["100", "101", "99", "100"]);
    h.bar("BTC", 2 * MIN, ["100", "101", "99", "100"]);
    h.bar("BTC", 3 * MIN, ["99", "100", "98", "99"]);
    let d = h.bar("BTC", 4 * MIN, ["100", "101", "99", "100"]);
    // Distance 1.5 × 2 = 3: 10,000 × 1% / 3 = 33.333… → 33.33 (lot 0.01).
    assert_eq!(placed(&d)[0].2, f("33.33"), "{d:?}");
    // Fill at 100: stop 100 − 3 = 97, target 100 + 3 × 2 = 106.
    let d = h.flat("BTC", 5 * MIN, "100");
    let kinds: Vec<OrderKind> = placed(&d).iter().map(|p| p.1).collect();
    assert_eq!(
        kinds,
        vec![
            OrderKind::Stop { trigger: f("97") },
            OrderKind::Limit {
                price: f("106"),
                post_only: false
            }
        ]
    );
}

#[test]
fn trailing_stop_follows_new_highs_and_never_falls() {
    let risk = RiskConfig {
        stop: StopRule::TrailingPercent(f("0.05")),
        take_profit: TargetRule::None,
        max_exposure: Fixed::ONE,
        ..RiskConfig::default()
    };
    let mut h = Harness::new(config(&["BTC"], risk));
    enter(&mut h, "BTC", 0);
    let d = h.flat("BTC", 3 * MIN, "100"); // fill at 100: stop 95
    assert_eq!(placed(&d)[0].1, OrderKind::Stop { trigger: f("95") });
    // A new high of 110: the stop moves to 110 × 0.95 = 104.5 (cancel and replace).
    let d = h.bar("BTC", 4 * MIN, ["101", "110", "100.5", "108"]);
    assert_eq!(cancels(&d), 1);
    assert_eq!(
        placed(&d)[0].1,
        OrderKind::Stop {
            trigger: f("104.5")
        }
    );
    // A lower high: nothing moves.
    let d = h.bar("BTC", 5 * MIN, ["108", "109", "106", "108.5"]);
    assert!(placed(&d).is_empty() && cancels(&d) == 0, "{d:?}");
    // The price falls through 104.5: filled there, (104.5 − 100) × stop qty.
    let qty = h.position("BTC");
    h.bar("BTC", 6 * MIN, ["107", "107", "103", "104"]);
    assert!(h.position("BTC").is_zero());
    assert_eq!(
        h.core.state().portfolio.cash,
        Fixed::from_int(10_000) + f("4.5").checked_mul(qty).unwrap()
    );
}

#[test]
fn exit_signal_cancels_the_protective_orders_first() {
    let mut h = Harness::new(config(&["BTC"], RiskConfig::default()));
    enter(&mut h, "BTC", 0);
    h.flat("BTC", 3 * MIN, "100"); // filled; stop and target armed
    let d = h.flat("BTC", 4 * MIN, "99.5"); // close below the previous: exit
    assert_eq!(cancels(&d), 2);
    assert_eq!(
        placed(&d),
        vec![(Side::Sell, OrderKind::Market, Fixed::from_int(20), true)]
    );
    h.flat("BTC", 5 * MIN, "99.5");
    assert!(h.position("BTC").is_zero());
    assert_eq!(h.venue.open_orders(), 0);
}

#[test]
fn max_concurrent_positions_refuses_the_extra_entry_with_its_reason() {
    let risk = RiskConfig {
        max_positions: 2,
        ..RiskConfig::default()
    };
    let mut h = Harness::new(config(&["AAA", "BBB", "CCC"], risk));
    for (i, price) in ["100", "99", "100"].iter().enumerate() {
        for s in ["AAA", "BBB", "CCC"] {
            h.flat(s, i as i64 * MIN, price);
        }
    }
    let entries: Vec<&Decision> = h
        .log
        .iter()
        .map(|(_, d)| d)
        .filter(|d| matches!(d, Decision::PlaceOrder(_)))
        .collect();
    assert_eq!(entries.len(), 2);
    let refused: Vec<(Symbol, RejectReason)> = h
        .log
        .iter()
        .filter_map(|(_, d)| match d {
            Decision::Reject { symbol, reason, .. } => Some((*symbol, *reason)),
            _ => None,
        })
        .collect();
    assert_eq!(refused, vec![(sym("CCC"), RejectReason::MaxPositions)]);
}

#[test]
fn exposure_cap_holds_per_asset_with_several_symbols() {
    // Two symbols at different prices; each entry is capped at 20% of equity at its own
    // price: 2,000 / 100 = 20 units and 2,000 / 40 = 50 units.
    let mut h = Harness::new(config(&["AAA", "BBB"], RiskConfig::default()));
    for (i, (a, b)) in [("100", "40"), ("99", "39"), ("100", "40")]
        .into_iter()
        .enumerate()
    {
        h.flat("AAA", i as i64 * MIN, a);
        h.flat("BBB", i as i64 * MIN, b);
    }
    let sizes: Vec<(Symbol, Fixed)> = h
        .log
        .iter()
        .filter_map(|(_, d)| match d {
            Decision::PlaceOrder(o) => Some((o.symbol, o.qty)),
            _ => None,
        })
        .collect();
    assert_eq!(
        sizes,
        vec![
            (sym("AAA"), Fixed::from_int(20)),
            (sym("BBB"), Fixed::from_int(50))
        ]
    );
}

#[test]
fn daily_loss_limit_stops_entries_until_the_next_utc_midnight() {
    // All-in entries without stops, so a 6% fall is a 6% loss of equity.
    let risk = RiskConfig {
        stop: StopRule::None,
        take_profit: TargetRule::None,
        max_exposure: Fixed::ONE,
        ..RiskConfig::default()
    };
    let mut h = Harness::new(config(&["BTC"], risk));
    let t0 = DAY - 10 * MIN; // 23:50 UTC on day 0
    enter(&mut h, "BTC", t0); // 100 units at mark 100 (cash 10,000 / 100)
    h.flat("BTC", t0 + 3 * MIN, "100"); // filled at 100
    assert_eq!(h.position("BTC"), Fixed::from_int(100));
    // 23:54: close 94 → equity 9,400, 6% below the day's 10,000: the limit trips.
    let d = h.flat("BTC", t0 + 4 * MIN, "94");
    let tripped = d
        .iter()
        .any(|d| matches!(d, Decision::Halted { detail } if detail.contains("daily loss")));
    assert!(tripped, "{d:?}");
    // The exit signal of that bar still goes out: limits stop entries, not exits.
    assert_eq!(placed(&d)[0].0, Side::Sell);
    h.flat("BTC", t0 + 5 * MIN, "94"); // sold at 94
    // 23:56 down, 23:57 up: an entry signal, refused for the day.
    h.flat("BTC", t0 + 6 * MIN, "93");
    let d = h.flat("BTC", t0 + 7 * MIN, "95");
    assert_eq!(rejects(&d), vec![RejectReason::DailyLossLimit]);
    // 23:58 down; the bar opening at 00:00 of day 1 signals again and is allowed.
    h.flat("BTC", t0 + 8 * MIN, "93");
    h.flat("BTC", t0 + 9 * MIN, "92");
    let d = h.flat("BTC", DAY, "96");
    assert!(rejects(&d).is_empty(), "{d:?}");
    assert_eq!(placed(&d).len(), 1);
}

#[test]
fn daily_loss_limit_can_flatten() {
    let risk = RiskConfig {
        stop: StopRule::None,
        take_profit: TargetRule::None,
        max_exposure: Fixed::ONE,
        daily_loss_flatten: true,
        ..RiskConfig::default()
    };
    let mut h = Harness::new(config(&["BTC"], risk));
    enter(&mut h, "BTC", 0);
    h.flat("BTC", 3 * MIN, "100");
    // Close 94.9: equity 9,490, 5.1% below the day's start, so the limit trips and
    // flattens before the strategy sees the bar.
    let d = h.flat("BTC", 4 * MIN, "94.9");
    let sells: Vec<_> = placed(&d)
        .into_iter()
        .filter(|p| p.0 == Side::Sell && p.3)
        .collect();
    // Exactly one sell: the strategy's own exit on this bar finds the flatten in flight.
    assert_eq!(
        sells,
        vec![(Side::Sell, OrderKind::Market, Fixed::from_int(100), true)]
    );
    h.flat("BTC", 5 * MIN, "94.9");
    assert!(h.position("BTC").is_zero());
}

fn perp(direction: keel_engine::Direction, leverage: i64, risk: RiskConfig) -> common::Harness {
    let mut c = config(&["BTC"], risk);
    c.direction = direction;
    c.leverage = Fixed::from_int(leverage);
    c.perpetual = true;
    let mut h = Harness::new(c.clone());
    h.venue = keel_engine::SimVenue::new(keel_engine::SimConfig {
        market: keel_engine::Market::Perp {
            leverage: Fixed::from_int(leverage),
            maintenance_margin: f("0.004"),
        },
        ..keel_engine::SimConfig::spot(Fixed::ZERO, Fixed::ZERO, c.starting_balance)
    });
    h
}

#[test]
fn long_short_reverses_on_the_exit_signal_with_a_stop_above_and_a_target_below() {
    let risk = RiskConfig {
        max_exposure: f("3"),
        ..RiskConfig::default()
    };
    let mut h = perp(keel_engine::Direction::LongShort, 3, risk);
    h.flat("BTC", 0, "100");
    h.flat("BTC", MIN, "101");
    // A close back below: the "exit long" signal opens a short. Size by risk:
    // 10,000 × 1% / (100 × 2%) = 50; the cap 3 × 10,000 / 100 = 300 is looser.
    let d = h.flat("BTC", 2 * MIN, "100");
    assert_eq!(
        placed(&d),
        vec![(Side::Sell, OrderKind::Market, f("50"), false)]
    );
    // Filled at 100: stop 2% above (102), target 4% below (96), both reduce-only buys.
    let d = h.flat("BTC", 3 * MIN, "100");
    assert_eq!(h.position("BTC"), f("-50"));
    assert_eq!(
        placed(&d),
        vec![
            (
                Side::Buy,
                OrderKind::Stop { trigger: f("102") },
                f("50"),
                true
            ),
            (
                Side::Buy,
                OrderKind::Limit {
                    price: f("96"),
                    post_only: false
                },
                f("50"),
                true
            ),
        ]
    );
    // A close above the previous: cover the short and go long in the same breath; the
    // short's stop and target are cancelled first.
    let d = h.flat("BTC", 4 * MIN, "100.5");
    assert_eq!(cancels(&d), 2);
    let p = placed(&d);
    assert_eq!(p[0], (Side::Buy, OrderKind::Market, f("50"), true));
    assert_eq!((p[1].0, p[1].3), (Side::Buy, false));
    h.flat("BTC", 5 * MIN, "100.5");
    // Short 50 from 100 covered at 100.5: −25.
    assert!(h.position("BTC") > Fixed::ZERO);
    let trades = &h.core.state().portfolio.closed_trades;
    assert_eq!(trades.len(), 1);
    assert_eq!(trades[0].pnl, f("-25"));
}

#[test]
fn short_only_never_buys_to_open() {
    let mut h = perp(keel_engine::Direction::Short, 2, RiskConfig::default());
    for (i, close) in ["100", "101", "100", "100", "100.5", "100.5"]
        .iter()
        .enumerate()
    {
        h.flat("BTC", i as i64 * MIN, close);
    }
    let orders: Vec<(Side, bool)> = h
        .log
        .iter()
        .filter_map(|(_, d)| match d {
            Decision::PlaceOrder(o) if o.kind == OrderKind::Market => Some((o.side, o.reduce_only)),
            _ => None,
        })
        .collect();
    // The exit signal opened a short; the entry signal only covered it.
    assert_eq!(orders, vec![(Side::Sell, false), (Side::Buy, true)]);
    assert!(h.position("BTC").is_zero());
}

#[test]
fn a_liquidation_cancels_the_positions_stop_and_target() {
    // 10x, an all-in long without a stop close enough: a 10% fall liquidates it.
    let risk = RiskConfig {
        stop: StopRule::Percent(f("0.5")),
        risk_per_trade: f("0.5"),
        max_exposure: f("10"),
        daily_loss_limit: Fixed::ZERO,
        ..RiskConfig::default()
    };
    let mut h = perp(keel_engine::Direction::Long, 10, risk);
    enter(&mut h, "BTC", 0);
    h.flat("BTC", 3 * MIN, "100"); // filled at 100, stop at 50, target at 104
    assert!(h.position("BTC") > Fixed::ZERO);
    let d = h.bar("BTC", 4 * MIN, ["99", "99", "89", "90"]);
    assert!(h.position("BTC").is_zero(), "{d:?}");
    assert_eq!(h.core.state().counters.liquidations, 1);
    assert_eq!(cancels(&d), 2, "{d:?}");
}
