//! Operator commands reach the core as journaled inputs: the kill switch cancels every
//! order, flattens every position and halts entries; halt refuses entries but keeps exits;
//! resume lifts both. Each refusal is a journaled `Reject` decision with its reason.

use keel_engine::config::Direction;
use keel_engine::event::{
    Command, Decision, Event, Fill, Input, Liquidity, Mode, OrderStatus, OrderUpdate, RejectReason,
    SessionStart, Side,
};
use keel_engine::{Candle, Core, CoreConfig, Fixed, RiskConfig, Sizing, StrategyConfig, Symbol};

fn sym() -> Symbol {
    Symbol::new("BTCUSDT").unwrap()
}

struct Driver {
    core: Core,
    seq: u64,
}

impl Driver {
    fn new() -> Driver {
        let mut d = Driver {
            core: Core::new(),
            seq: 0,
        };
        d.apply(Event::SessionStart(SessionStart {
            mode: Mode::Backtest,
            config: CoreConfig {
                symbols: vec![sym()],
                interval_ns: 60,
                strategy_interval_ns: 60,
                starting_balance: Fixed::from_int(1_000),
                strategy: StrategyConfig::SmaCross { fast: 1, slow: 2 },
                sizing: Sizing {
                    allocation: Fixed::ONE,
                    lot_size: Fixed::parse("0.01").unwrap(),
                    cost_reserve: Fixed::ZERO,
                },
                risk: RiskConfig::unmanaged(),
                direction: Direction::Long,
                leverage: Fixed::ONE,
                perpetual: false,
            },
            config_text: String::new(),
        }));
        d
    }

    fn apply(&mut self, event: Event) -> Vec<Decision> {
        self.seq += 1;
        self.core
            .apply(&Input {
                seq: self.seq,
                ts_ns: self.seq,
                event,
            })
            .to_vec()
    }

    fn bar(&mut self, i: i64, close: i64) -> Vec<Decision> {
        let c = Fixed::from_int(close);
        self.apply(Event::Candle(Candle {
            symbol: sym(),
            open_time_ns: i * 60,
            interval_ns: 60,
            open: c,
            high: c,
            low: c,
            close: c,
            volume: Fixed::ONE,
        }))
    }

    fn fill(&mut self, client_id: u64, side: Side, qty: Fixed, price: i64) {
        self.apply(Event::Fill(Fill {
            client_id,
            venue_order_id: 1,
            trade_id: self.seq,
            symbol: sym(),
            side,
            price: Fixed::from_int(price),
            qty,
            fee: Fixed::ZERO,
            liquidity: Liquidity::Taker,
            ts_event_ns: self.seq as i64,
        }));
    }
}

fn orders(ds: &[Decision]) -> Vec<(u64, Side, Fixed, bool)> {
    ds.iter()
        .filter_map(|d| match d {
            Decision::PlaceOrder(o) => Some((o.client_id, o.side, o.qty, o.reduce_only)),
            _ => None,
        })
        .collect()
}

#[test]
fn kill_switch_cancels_flattens_and_halts_until_resume() {
    let mut d = Driver::new();
    d.bar(0, 10);
    d.bar(1, 9); // below: sma(1) < sma(2)
    let entry = orders(&d.bar(2, 10)); // crosses above: enter
    let [(id, Side::Buy, qty, false)] = entry[..] else {
        panic!("expected one buy, got {entry:?}")
    };
    assert_eq!(qty, Fixed::from_int(100)); // 1000 / 10
    d.fill(id, Side::Buy, qty, 10);

    // Another order in flight when the switch is thrown: it must be cancelled.
    d.bar(3, 8); // exit signal: a sell is placed
    let kill = d.apply(Event::Command(Command::KillSwitch));
    assert!(matches!(kill[0], Decision::Halted { .. }), "{kill:?}");
    let cancels: Vec<u64> = kill
        .iter()
        .filter_map(|k| match k {
            Decision::CancelOrder { client_id } => Some(*client_id),
            _ => None,
        })
        .collect();
    assert_eq!(cancels.len(), 1, "the pending exit is cancelled: {kill:?}");
    let flat = orders(&kill);
    assert_eq!(flat.len(), 1);
    assert_eq!((flat[0].1, flat[0].2, flat[0].3), (Side::Sell, qty, true));
    d.apply(Event::OrderUpdate(OrderUpdate {
        client_id: cancels[0],
        venue_order_id: 2,
        status: OrderStatus::Canceled,
        ts_event_ns: 0,
        reason: String::new(),
    }));
    d.fill(flat[0].0, Side::Sell, qty, 8);
    assert!(d.core.state().portfolio.position(&sym()).is_zero());

    // Halted: the next entry signal is refused, with the reason journaled.
    d.bar(4, 7);
    let refused = d.bar(5, 9);
    assert!(orders(&refused).is_empty());
    assert!(
        refused.iter().any(|r| matches!(
            r,
            Decision::Reject {
                reason: RejectReason::Halted,
                ..
            }
        )),
        "{refused:?}"
    );

    // Resume: entries are taken again.
    d.apply(Event::Command(Command::Resume));
    d.bar(6, 8);
    assert_eq!(orders(&d.bar(7, 9)).len(), 1);
}

#[test]
fn halt_refuses_entries_but_keeps_exits() {
    let mut d = Driver::new();
    d.bar(0, 10);
    d.bar(1, 9);
    let [(id, _, qty, _)] = orders(&d.bar(2, 10))[..] else {
        panic!("expected an entry")
    };
    d.fill(id, Side::Buy, qty, 10);
    d.apply(Event::Command(Command::Halt));
    let exit = orders(&d.bar(3, 8));
    assert_eq!(exit.len(), 1, "an exit is still placed while halted");
    assert_eq!((exit[0].1, exit[0].3), (Side::Sell, true));
}

#[test]
fn cancel_all_cancels_every_order_keeps_the_position_and_halts_until_resume() {
    let mut d = Driver::new();
    d.bar(0, 10);
    d.bar(1, 9);
    let entry = orders(&d.bar(2, 10));
    let [(id, Side::Buy, qty, false)] = entry[..] else {
        panic!("expected one buy, got {entry:?}")
    };
    d.fill(id, Side::Buy, qty, 10);
    d.bar(3, 8); // exit signal: a sell is placed and in flight
    let out = d.apply(Event::Command(Command::CancelAll));
    assert!(matches!(out[0], Decision::Halted { .. }), "{out:?}");
    let cancels = out
        .iter()
        .filter(|k| matches!(k, Decision::CancelOrder { .. }))
        .count();
    assert_eq!(cancels, 1, "the pending exit is cancelled: {out:?}");
    assert!(orders(&out).is_empty(), "nothing is flattened: {out:?}");
    assert_eq!(d.core.state().portfolio.position(&sym()), qty);
    assert!(d.core.state().halted);
    d.apply(Event::Command(Command::Resume));
    assert!(!d.core.state().halted);
}
