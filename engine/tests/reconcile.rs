//! Reconciliation: a live session journals the venue's account state (open orders, positions
//! or spot holdings) and the core reconciles against it. Orders the venue lost are closed — a
//! lost stop or target is placed again at the same trigger, since a venue's dead-man switch
//! cancels them while the process is down —, orders the core never placed are counted and
//! left alone, positions that differ halt entries.

mod common;

use common::*;
use keel_engine::Fixed;
use keel_engine::RiskConfig;
use keel_engine::event::{
    AccountState, Decision, Event, OrderKind, Side, VenueOrder, VenuePosition,
};

/// An entry on bar 2 filled at 101 on bar 3, with its stop (98.98) and target (105.04) armed
/// (as in `risk.rs`).
fn protected() -> Harness {
    let risk = RiskConfig {
        max_exposure: Fixed::ONE,
        ..RiskConfig::default()
    };
    let mut h = Harness::new(config(&["BTC"], risk));
    h.flat("BTC", 0, "100");
    h.flat("BTC", MIN, "99");
    h.flat("BTC", 2 * MIN, "100");
    h.bar("BTC", 3 * MIN, ["101", "101.5", "100.5", "101"]);
    assert_eq!(h.position("BTC"), Fixed::from_int(50));
    assert_eq!(h.core.state().orders.len(), 2);
    h
}

fn account(h: &Harness, open: Vec<VenueOrder>, holding: &str, spot: bool) -> Event {
    Event::AccountState(AccountState {
        ts_event_ns: 5 * MIN,
        asked_after_client_id: keel_engine::event::client_order_id(h.seq, 255),
        open_orders: open,
        positions: vec![VenuePosition {
            symbol: sym("BTC"),
            qty: f(holding),
        }],
        spot,
        unsettled: Vec::new(),
    })
}

fn venue_orders(h: &Harness) -> Vec<VenueOrder> {
    h.core
        .state()
        .orders
        .values()
        .map(|o| VenueOrder {
            client_id: o.request.client_id,
            venue_order_id: 7,
            symbol: o.request.symbol,
            side: o.request.side,
            qty: o.request.qty,
            filled_qty: Fixed::ZERO,
        })
        .collect()
}

fn decided(h: &Harness, from: usize) -> Vec<Decision> {
    h.log[from..].iter().map(|(_, d)| d.clone()).collect()
}

#[test]
fn an_account_that_agrees_changes_nothing() {
    let mut h = protected();
    let before = h.core.state().clone();
    let from = h.log.len();
    let event = account(&h, venue_orders(&h), "50", true);
    h.input(5 * MIN, event);
    assert!(decided(&h, from).is_empty());
    let after = h.core.state();
    assert_eq!(after.orders, before.orders);
    assert_eq!(after.counters.reconcile_lost, 0);
    assert_eq!(after.counters.reconcile_mismatch, 0);
    assert!(!after.halted);
}

#[test]
fn protection_the_venue_dropped_is_placed_again_at_the_same_triggers() {
    let mut h = protected();
    let from = h.log.len();
    // The venue cancelled both (its dead-man switch fired while keel was down).
    let event = account(&h, Vec::new(), "50", true);
    h.input(5 * MIN, event);
    assert_eq!(h.core.state().counters.reconcile_lost, 2);
    let d = decided(&h, from);
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
        ],
        "{d:?}"
    );
    assert_eq!(h.core.state().orders.len(), 2);
    assert!(!h.core.state().halted);
}

#[test]
fn orders_decided_after_the_question_are_not_taken_for_lost() {
    let mut h = protected();
    let mut event = account(&h, Vec::new(), "50", true);
    if let Event::AccountState(a) = &mut event {
        // The answer was asked for before the entry: every order now tracked is newer.
        a.asked_after_client_id = 1;
    }
    let from = h.log.len();
    h.input(5 * MIN, event);
    assert_eq!(h.core.state().counters.reconcile_lost, 0);
    assert!(placed(&decided(&h, from)).is_empty());
}

#[test]
fn an_order_the_runtime_could_not_ask_about_is_not_taken_for_lost() {
    let mut h = protected();
    let ids: Vec<u64> = h.core.state().orders.keys().copied().collect();
    let mut event = account(&h, Vec::new(), "50", true);
    if let Event::AccountState(a) = &mut event {
        a.unsettled = ids.clone();
    }
    let from = h.log.len();
    h.input(5 * MIN, event);
    assert_eq!(h.core.state().counters.reconcile_lost, 0);
    assert!(decided(&h, from).is_empty());
    assert_eq!(
        h.core.state().orders.keys().copied().collect::<Vec<_>>(),
        ids
    );
}

#[test]
fn an_order_keel_never_placed_is_counted_and_left_alone() {
    let mut h = protected();
    let mut open = venue_orders(&h);
    open.push(VenueOrder {
        client_id: 0,
        venue_order_id: 99,
        symbol: sym("BTC"),
        side: Side::Buy,
        qty: Fixed::ONE,
        filled_qty: Fixed::ZERO,
    });
    let from = h.log.len();
    let event = account(&h, open, "50", true);
    h.input(5 * MIN, event);
    assert_eq!(h.core.state().counters.reconcile_unknown, 1);
    assert!(decided(&h, from).is_empty());
}

#[test]
fn a_spot_wallet_may_hold_more_but_not_less_than_the_core() {
    let mut h = protected();
    let event = account(&h, venue_orders(&h), "75", true);
    h.input(5 * MIN, event);
    assert!(
        !h.core.state().halted,
        "the user's own coins are no divergence"
    );
    let from = h.log.len();
    let event = account(&h, venue_orders(&h), "40", true);
    h.input(6 * MIN, event);
    let d = decided(&h, from);
    assert!(
        matches!(&d[..], [Decision::Halted { detail }] if detail.contains("venue 40")),
        "{d:?}"
    );
    assert!(h.core.state().halted);
    assert_eq!(h.core.state().counters.reconcile_mismatch, 1);
}

#[test]
fn a_derivatives_position_must_match_exactly() {
    let mut h = protected();
    let event = account(&h, venue_orders(&h), "60", false);
    h.input(5 * MIN, event);
    assert!(h.core.state().halted);
    assert_eq!(h.core.state().counters.reconcile_mismatch, 1);
}

#[test]
fn a_stop_the_venue_cancels_on_its_own_is_placed_again_but_not_one_it_refuses() {
    let stop_of = |h: &Harness| {
        h.core
            .state()
            .orders
            .iter()
            .find(|(_, o)| matches!(o.request.kind, OrderKind::Stop { .. }))
            .map(|(id, o)| (*id, o.request.kind))
            .unwrap()
    };
    let update = |id: u64, status| {
        Event::OrderUpdate(keel_engine::event::OrderUpdate {
            client_id: id,
            venue_order_id: 7,
            status,
            ts_event_ns: 5 * MIN,
            reason: String::new(),
        })
    };
    let mut h = protected();
    let (id, kind) = stop_of(&h);
    let from = h.log.len();
    h.input(
        5 * MIN,
        update(id, keel_engine::event::OrderStatus::Canceled),
    );
    let d = placed(&decided(&h, from));
    assert_eq!(
        d,
        vec![(Side::Sell, kind, Fixed::from_int(50), true)],
        "{d:?}"
    );
    // Refused: placing it again would be refused again.
    let (id, _) = stop_of(&h);
    let from = h.log.len();
    h.input(
        6 * MIN,
        update(id, keel_engine::event::OrderStatus::Rejected),
    );
    assert!(placed(&decided(&h, from)).is_empty());
    assert!(
        !h.core
            .state()
            .orders
            .values()
            .any(|o| matches!(o.request.kind, OrderKind::Stop { .. }))
    );
}
