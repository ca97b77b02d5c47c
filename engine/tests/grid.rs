//! Grid trading on a hand-checked series: the ladder, the seed purchase for the sell levels,
//! re-arming after each fill, and the range exit. Numbers are worked out in the comments.

mod common;

use common::*;
use keel_engine::config::RiskConfig;
use keel_engine::event::{Decision, OrderKind, RejectReason, Side, SignalAction};
use keel_engine::{Fixed, StrategyConfig};

fn grid(lower: &str, upper: &str, levels: u32) -> StrategyConfig {
    StrategyConfig::Grid {
        lower: f(lower),
        upper: f(upper),
        range_pct: Fixed::ZERO,
        levels,
        exit_pct: Fixed::ZERO,
    }
}

fn limit(price: &str) -> OrderKind {
    OrderKind::Limit {
        price: f(price),
        post_only: false,
    }
}

#[test]
fn grid_buys_below_sells_above_rearms_and_exits_the_range() {
    let mut config = config(&["BTC"], RiskConfig::default());
    config.strategy = grid("90", "110", 4); // levels 90, 95, 100, 105, 110
    let mut h = Harness::new(config);

    // Starts on the first close, 100. One unit per level: 20% of 10,000 over 4 levels at
    // 100 = 2,000 / 400 = 5. Buys at 90 and 95; 2 levels above need 10 units bought now.
    let d = h.bar("BTC", 0, ["100", "100", "100", "100"]);
    assert_eq!(
        placed(&d),
        vec![
            (Side::Buy, limit("90"), Fixed::from_int(5), false),
            (Side::Buy, limit("95"), Fixed::from_int(5), false),
            (Side::Buy, OrderKind::Market, Fixed::from_int(10), false),
        ]
    );
    // The seed fills at the next open, 100; the sells at 105 and 110 are placed.
    let d = h.bar("BTC", MIN, ["100", "100.5", "99.5", "100"]);
    assert_eq!(
        placed(&d),
        vec![
            (Side::Sell, limit("105"), Fixed::from_int(5), true),
            (Side::Sell, limit("110"), Fixed::from_int(5), true),
        ]
    );
    assert_eq!(h.core.state().portfolio.cash, f("9000"));
    // Low 94 trades through 95: bought 5 at 95 (cash 8,525), re-armed as a sell at 100.
    let d = h.bar("BTC", 2 * MIN, ["100", "101", "94", "96"]);
    assert_eq!(
        placed(&d),
        vec![(Side::Sell, limit("100"), Fixed::from_int(5), true)]
    );
    assert_eq!(h.core.state().portfolio.cash, f("8525"));
    // High 100.5 trades through 100: sold 5 (cash 9,025), re-armed as a buy at 95.
    let d = h.bar("BTC", 3 * MIN, ["96", "100.5", "95.5", "100"]);
    assert_eq!(
        placed(&d),
        vec![(Side::Buy, limit("95"), Fixed::from_int(5), false)]
    );
    // High 106: the 105 sell fills (cash 9,550), re-armed as a buy at 100.
    h.bar("BTC", 4 * MIN, ["100", "106", "99", "105.5"]);
    assert_eq!(h.core.state().portfolio.cash, f("9550"));
    assert_eq!(h.position("BTC"), Fixed::from_int(5));
    // High 112: the 110 sell fills (cash 10,100, flat) and the close, 112, is above the
    // range: the grid stops and cancels its four resting buys (90, 95, 100 and the 105 it
    // just re-armed).
    let d = h.bar("BTC", 5 * MIN, ["105.5", "112", "105", "112"]);
    let stopped = d.iter().any(|d| {
        matches!(d, Decision::Signal { action: SignalAction::ExitLong, detail, .. }
            if detail.contains("left the range"))
    });
    assert!(stopped, "{d:?}");
    assert_eq!(cancels(&d), 4, "{d:?}");
    // Round trips: 95 → 100, seed 100 → 105, seed 100 → 110: 5 × (5 + 5 + 10) = +100.
    assert_eq!(h.core.state().portfolio.cash, f("10100"));
    assert!(h.position("BTC").is_zero());
    assert_eq!(h.venue.open_orders(), 0);
    // Stopped for good: nothing more is placed.
    let d = h.bar("BTC", 6 * MIN, ["100", "100", "100", "100"]);
    assert!(placed(&d).is_empty(), "{d:?}");
}

#[test]
fn grid_waits_for_the_price_to_enter_its_range() {
    let mut config = config(&["BTC"], RiskConfig::default());
    config.strategy = grid("90", "110", 4);
    let mut h = Harness::new(config);
    assert!(placed(&h.flat("BTC", 0, "120")).is_empty());
    assert_eq!(placed(&h.flat("BTC", MIN, "107")).len(), 5); // 4 buys below, 1 seed
}

#[test]
fn halted_grid_does_not_rebuy_after_a_sell() {
    let mut config = config(&["BTC"], RiskConfig::default());
    config.strategy = grid("90", "110", 4);
    let mut h = Harness::new(config);
    h.flat("BTC", 0, "100");
    h.flat("BTC", MIN, "100"); // seed filled, sells at 105/110 placed
    h.input(
        2 * MIN,
        keel_engine::Event::Command(keel_engine::event::Command::Halt),
    );
    // The 105 sell fills; the buy it would re-arm at 100 is refused, with the reason.
    let d = h.bar("BTC", 2 * MIN, ["100", "106", "100", "104"]);
    assert_eq!(rejects(&d), vec![RejectReason::Halted], "{d:?}");
    assert!(placed(&d).is_empty());
}

#[test]
fn grid_config_is_validated() {
    let bad = |strategy: StrategyConfig, needle: &str| {
        let err = strategy.validate().unwrap_err();
        assert!(err.contains(needle), "{err}");
    };
    bad(grid("110", "90", 4), "lower");
    bad(grid("90", "110", 1), "levels");
    bad(
        StrategyConfig::Grid {
            lower: f("90"),
            upper: f("110"),
            range_pct: f("0.05"),
            levels: 4,
            exit_pct: Fixed::ZERO,
        },
        "not both",
    );
    assert!(grid("90", "110", 200).validate().is_ok());
}
