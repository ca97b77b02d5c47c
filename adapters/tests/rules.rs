//! Instrument rules: rounding and filter checks, with the instruments' tick/lot/min values
//! copied by hand from the venues' recorded metadata in tests/data (each says which file and
//! which field), and the expected results worked out by hand from the rounding rules.

use keel_adapters::model::{Instrument, OrderSpec, OrderSpecKind, TimeInForce, VenueError};
use keel_adapters::rules::{check_order, format_decimal};
use keel_engine::event::Side;
use keel_engine::fixed::Fixed;
use keel_engine::symbol::Symbol;
use proptest::prelude::*;

fn fx(text: &str) -> Fixed {
    Fixed::parse_exact(text).unwrap()
}

#[allow(clippy::too_many_arguments)]
fn instrument(
    symbol: &str,
    tick: &str,
    lot: &str,
    min_qty: &str,
    max_qty: &str,
    min_notional: &str,
    contract_size: &str,
    trading: bool,
) -> Instrument {
    Instrument {
        symbol: Symbol::new(symbol).unwrap(),
        base: String::new(),
        quote: String::new(),
        tick_size: fx(tick),
        lot_size: fx(lot),
        min_qty: fx(min_qty),
        max_qty: fx(max_qty),
        min_notional: fx(min_notional),
        contract_size: fx(contract_size),
        trading,
    }
}

/// binance_py/http_responses/http_spot_market_exchange_info.json, BTCUSDT: status TRADING,
/// PRICE_FILTER tickSize "0.01000000", LOT_SIZE stepSize "0.00001000" minQty "0.00001000"
/// maxQty "9000.00000000", MIN_NOTIONAL minNotional "10.00000000".
fn binance_spot_btcusdt() -> Instrument {
    instrument(
        "BTCUSDT",
        "0.01000000",
        "0.00001000",
        "0.00001000",
        "9000.00000000",
        "10.00000000",
        "1",
        true,
    )
}

/// binance_py/http_responses/http_futures_market_exchange_info.json, BTCUSDT: tickSize "0.10",
/// stepSize "0.001", minQty "0.001", maxQty "1000", MIN_NOTIONAL notional "10".
fn binance_usdm_btcusdt() -> Instrument {
    instrument("BTCUSDT", "0.10", "0.001", "0.001", "1000", "10", "1", true)
}

/// bybit/http_get_instruments_linear.json, BTCUSDT: priceFilter tickSize "0.5",
/// lotSizeFilter qtyStep "0.001" minOrderQty "0.001" maxOrderQty "100.0" minNotionalValue "5".
fn bybit_btcusdt() -> Instrument {
    instrument("BTCUSDT", "0.5", "0.001", "0.001", "100.0", "5", "1", true)
}

/// kraken/http_asset_pairs.json, XBTUSDT: tick_size "0.1", lot_decimals 8 (step 0.00000001),
/// ordermin "0.00005", costmin "0.5", status "online".
fn kraken_xbtusdt() -> Instrument {
    instrument(
        "XBTUSDT",
        "0.1",
        "0.00000001",
        "0.00005",
        "0",
        "0.5",
        "1",
        true,
    )
}

/// okx/http_get_instruments_swap.json, ETH-USDT-SWAP: tickSz "0.01", lotSz "0.01",
/// minSz "0.01", maxLmtSz "100000000", ctVal "0.1" (ETH per contract), state "live". OKX
/// publishes no minimum notional; the tests that need one set it explicitly.
fn okx_eth_swap() -> Instrument {
    instrument(
        "ETH-USDT-SWAP",
        "0.01",
        "0.01",
        "0.01",
        "100000000",
        "0",
        "0.1",
        true,
    )
}

fn order(symbol: &str, side: Side, kind: OrderSpecKind, qty: &str) -> OrderSpec {
    OrderSpec {
        symbol: Symbol::new(symbol).unwrap(),
        client_order_id: "c1".to_string(),
        side,
        kind,
        qty: fx(qty),
        time_in_force: TimeInForce::Gtc,
        reduce_only: false,
    }
}

fn limit(price: &str) -> OrderSpecKind {
    OrderSpecKind::Limit { price: fx(price) }
}

fn violation(result: Result<OrderSpec, VenueError>) -> String {
    match result {
        Err(VenueError::FilterViolation(reason)) => reason,
        other => panic!("expected a filter violation, got {other:?}"),
    }
}

#[test]
fn quantity_is_floored_to_the_lot_never_rounded_up() {
    let btc = binance_spot_btcusdt();
    let out = check_order(
        &btc,
        &order("BTCUSDT", Side::Buy, limit("50000"), "0.12345999"),
        None,
    )
    .unwrap();
    assert_eq!(out.qty, fx("0.12345"));
    // Everything else passes through.
    assert_eq!(out.client_order_id, "c1");
    assert_eq!(out.time_in_force, TimeInForce::Gtc);

    let usdm = binance_usdm_btcusdt();
    let out = check_order(
        &usdm,
        &order("BTCUSDT", Side::Sell, limit("50000"), "1.9999"),
        None,
    )
    .unwrap();
    assert_eq!(out.qty, fx("1.999"));

    let okx = okx_eth_swap();
    let out = check_order(
        &okx,
        &order("ETH-USDT-SWAP", Side::Buy, limit("2000"), "3.019"),
        None,
    )
    .unwrap();
    assert_eq!(out.qty, fx("3.01"));
}

#[test]
fn limit_prices_round_away_from_the_market() {
    let btc = binance_spot_btcusdt();
    let cases = [
        (Side::Buy, "50000.019", "50000.01"),
        (Side::Buy, "50000.01", "50000.01"),
        (Side::Sell, "50000.011", "50000.02"),
        (Side::Sell, "50000.01", "50000.01"),
    ];
    for (side, asked, sent) in cases {
        let out = check_order(&btc, &order("BTCUSDT", side, limit(asked), "0.001"), None).unwrap();
        assert_eq!(out.kind, limit(sent), "{side:?} {asked}");
    }
    // Bybit's half-dollar tick.
    let bybit = bybit_btcusdt();
    let out = check_order(
        &bybit,
        &order("BTCUSDT", Side::Buy, limit("42000.9"), "0.01"),
        None,
    )
    .unwrap();
    assert_eq!(out.kind, limit("42000.5"));
    let out = check_order(
        &bybit,
        &order("BTCUSDT", Side::Sell, limit("42000.1"), "0.01"),
        None,
    )
    .unwrap();
    assert_eq!(out.kind, limit("42000.5"));
}

#[test]
fn triggers_round_so_the_order_fires_no_earlier() {
    let usdm = binance_usdm_btcusdt();
    let run = |side, kind| {
        check_order(&usdm, &order("BTCUSDT", side, kind, "0.01"), None)
            .unwrap()
            .kind
    };
    // A buy stop sits above the market: up. A sell stop below: down.
    assert_eq!(
        run(
            Side::Buy,
            OrderSpecKind::StopMarket {
                trigger: fx("50000.01")
            }
        ),
        OrderSpecKind::StopMarket {
            trigger: fx("50000.1")
        }
    );
    assert_eq!(
        run(
            Side::Sell,
            OrderSpecKind::StopMarket {
                trigger: fx("49999.99")
            }
        ),
        OrderSpecKind::StopMarket {
            trigger: fx("49999.9")
        }
    );
    // A take-profit sell sits above the market: up. A take-profit buy below: down.
    assert_eq!(
        run(
            Side::Sell,
            OrderSpecKind::TakeProfitMarket {
                trigger: fx("60000.01")
            }
        ),
        OrderSpecKind::TakeProfitMarket {
            trigger: fx("60000.1")
        }
    );
    assert_eq!(
        run(
            Side::Buy,
            OrderSpecKind::TakeProfitMarket {
                trigger: fx("40000.09")
            }
        ),
        OrderSpecKind::TakeProfitMarket {
            trigger: fx("40000")
        }
    );
    // Stop-limit: trigger by the stop rule, limit price by the limit rule.
    assert_eq!(
        run(
            Side::Sell,
            OrderSpecKind::StopLimit {
                trigger: fx("49999.99"),
                price: fx("49899.91")
            }
        ),
        OrderSpecKind::StopLimit {
            trigger: fx("49999.9"),
            price: fx("49900")
        }
    );
    assert_eq!(
        run(
            Side::Buy,
            OrderSpecKind::StopLimit {
                trigger: fx("50000.01"),
                price: fx("50100.09")
            }
        ),
        OrderSpecKind::StopLimit {
            trigger: fx("50000.1"),
            price: fx("50100")
        }
    );
}

#[test]
fn quantity_filters() {
    let btc = binance_spot_btcusdt();
    // Below one step: floors to zero.
    let reason = violation(check_order(
        &btc,
        &order("BTCUSDT", Side::Buy, limit("50000"), "0.000009"),
        None,
    ));
    assert!(
        reason.contains("BTCUSDT") && reason.contains("zero"),
        "{reason}"
    );
    // Above maxQty 9000.
    let reason = violation(check_order(
        &btc,
        &order("BTCUSDT", Side::Buy, limit("1"), "9000.00001"),
        None,
    ));
    assert!(reason.contains("maximum 9000"), "{reason}");
    // Exactly maxQty is fine.
    assert!(check_order(&btc, &order("BTCUSDT", Side::Buy, limit("1"), "9000"), None).is_ok());
    // Kraken's ordermin 0.00005 is many steps above its 1e-8 lot.
    let xbt = kraken_xbtusdt();
    let reason = violation(check_order(
        &xbt,
        &order("XBTUSDT", Side::Buy, limit("60000"), "0.00004999"),
        None,
    ));
    assert!(reason.contains("minimum 0.00005"), "{reason}");
    assert!(
        check_order(
            &xbt,
            &order("XBTUSDT", Side::Buy, limit("60000"), "0.00005"),
            None
        )
        .is_ok()
    );
    // Kraken has no max; zero means unlimited.
    assert!(
        check_order(
            &xbt,
            &order("XBTUSDT", Side::Buy, limit("60000"), "100000"),
            None
        )
        .is_ok()
    );
    for bad in ["0", "-0.001"] {
        let reason = violation(check_order(
            &btc,
            &order("BTCUSDT", Side::Buy, limit("50000"), bad),
            None,
        ));
        assert!(reason.contains("not positive"), "{reason}");
    }
}

#[test]
fn min_notional_uses_the_rounded_order() {
    let btc = binance_spot_btcusdt();
    // 0.0002 × 49999.99 = 9.999998 < 10.
    let reason = violation(check_order(
        &btc,
        &order("BTCUSDT", Side::Buy, limit("49999.99"), "0.0002"),
        None,
    ));
    assert!(reason.contains("below the minimum 10"), "{reason}");
    // 0.0002 × 50000 = 10: allowed (the filter is "at least").
    assert!(
        check_order(
            &btc,
            &order("BTCUSDT", Side::Buy, limit("50000"), "0.0002"),
            None
        )
        .is_ok()
    );
    // 0.00020999 floors to 0.0002; 0.0002 × 50000.004 rounds (sell: up) to 50000.01 → 10.000002.
    assert!(
        check_order(
            &btc,
            &order("BTCUSDT", Side::Sell, limit("50000.004"), "0.00020999"),
            None
        )
        .is_ok()
    );
    // Buy at 50000.004 rounds down to 50000.00; 0.00019999 floors to 0.00019 → 9.5 < 10.
    assert!(
        check_order(
            &btc,
            &order("BTCUSDT", Side::Buy, limit("50000.004"), "0.00019999"),
            None
        )
        .is_err()
    );
    // Kraken costmin 0.5: 0.00005 × 9999.9 = 0.499995.
    let xbt = kraken_xbtusdt();
    assert!(
        check_order(
            &xbt,
            &order("XBTUSDT", Side::Buy, limit("9999.9"), "0.00005"),
            None
        )
        .is_err()
    );
    // Stop-market orders are priced at their trigger: 0.001 × 4000 = 4 < Bybit's 5.
    let bybit = bybit_btcusdt();
    let reason = violation(check_order(
        &bybit,
        &order(
            "BTCUSDT",
            Side::Sell,
            OrderSpecKind::StopMarket {
                trigger: fx("4000"),
            },
            "0.001",
        ),
        None,
    ));
    assert!(reason.contains("below the minimum 5"), "{reason}");
}

#[test]
fn market_orders_need_a_reference_price_for_min_notional() {
    let usdm = binance_usdm_btcusdt();
    let spec = order("BTCUSDT", Side::Buy, OrderSpecKind::Market, "0.001");
    let reason = violation(check_order(&usdm, &spec, None));
    assert!(reason.contains("reference price"), "{reason}");
    // 0.001 × 9000 = 9 < 10; 0.001 × 10000 = 10.
    assert!(check_order(&usdm, &spec, Some(fx("9000"))).is_err());
    let out = check_order(&usdm, &spec, Some(fx("10000"))).unwrap();
    assert_eq!(out.kind, OrderSpecKind::Market);
    // No minimum notional: no reference needed.
    let okx = okx_eth_swap();
    assert!(
        check_order(
            &okx,
            &order("ETH-USDT-SWAP", Side::Sell, OrderSpecKind::Market, "1"),
            None
        )
        .is_ok()
    );
}

#[test]
fn contract_size_scales_the_notional() {
    let mut okx = okx_eth_swap();
    okx.min_notional = fx("100");
    // 4 contracts × 0.1 ETH × 2000 = 800 ≥ 100.
    assert!(
        check_order(
            &okx,
            &order("ETH-USDT-SWAP", Side::Buy, limit("2000"), "4"),
            None
        )
        .is_ok()
    );
    // 0.4 contracts × 0.1 × 2000 = 80 < 100 (without the multiplier it would be 800).
    assert!(
        check_order(
            &okx,
            &order("ETH-USDT-SWAP", Side::Buy, limit("2000"), "0.4"),
            None
        )
        .is_err()
    );
}

#[test]
fn instrument_state_and_identity_are_checked() {
    let mut btc = binance_spot_btcusdt();
    let spec = order("BTCUSDT", Side::Buy, limit("50000"), "0.001");
    btc.trading = false;
    let reason = violation(check_order(&btc, &spec, None));
    assert!(reason.contains("not trading"), "{reason}");

    let eth = order("ETHUSDT", Side::Buy, limit("3000"), "0.01");
    let reason = violation(check_order(&binance_spot_btcusdt(), &eth, None));
    assert!(reason.contains("ETHUSDT"), "{reason}");
}

#[test]
fn prices_below_one_tick_or_not_positive_are_refused() {
    let btc = binance_spot_btcusdt();
    let reason = violation(check_order(
        &btc,
        &order("BTCUSDT", Side::Buy, limit("0.009"), "1"),
        None,
    ));
    assert!(reason.contains("rounds to zero"), "{reason}");
    for bad in ["0", "-5"] {
        let reason = violation(check_order(
            &btc,
            &order("BTCUSDT", Side::Buy, limit(bad), "1"),
            None,
        ));
        assert!(reason.contains("not positive"), "{reason}");
    }
    // Near the top of Fixed's range, rounding up must not overflow into a panic.
    let huge = OrderSpecKind::Limit {
        price: Fixed::from_raw(i64::MAX),
    };
    let mut spec = order("BTCUSDT", Side::Sell, huge, "1");
    spec.qty = fx("1");
    let _ = check_order(&btc, &spec, None);
}

#[test]
fn format_decimal_prints_the_steps_decimals() {
    let cases = [
        // (value, step as the venue prints it, expected)
        ("0.1", "0.01000000", "0.10"),
        ("50000.01", "0.01000000", "50000.01"),
        ("50000", "0.01000000", "50000.00"),
        ("0.12345", "0.00001000", "0.12345"),
        ("9000", "0.00001000", "9000.00000"),
        ("1.999", "0.001", "1.999"),
        ("1", "0.001", "1.000"),
        ("42000.5", "0.5", "42000.5"),
        ("42000", "0.5", "42000.0"),
        ("50000", "1", "50000"),
        ("0.00000001", "0.00000001", "0.00000001"),
        ("0.0001", "0.00000001", "0.00010000"),
        ("100", "100", "100"),
        ("-2.5", "0.01", "-2.50"),
        ("0", "0.01", "0.00"),
    ];
    for (value, step, expected) in cases {
        assert_eq!(
            format_decimal(fx(value), fx(step)),
            expected,
            "{value} / {step}"
        );
    }
    // Off the grid: keeps its digits rather than printing another number.
    assert_eq!(format_decimal(fx("0.123"), fx("0.01")), "0.123");
    // No step: shortest form, never an exponent.
    assert_eq!(format_decimal(fx("0.00000001"), Fixed::ZERO), "0.00000001");
}

proptest! {
    #[test]
    fn rounding_never_makes_an_order_bigger_or_more_aggressive(
        qty in 1i64..2_000_000_000_000,
        price in 1i64..10_000_000_000_000,
        trigger in 1i64..10_000_000_000_000,
        buy in any::<bool>(),
        which in 0u8..5,
    ) {
        let inst = binance_usdm_btcusdt();
        let tick = inst.tick_size.raw();
        let (p, t) = (Fixed::from_raw(price), Fixed::from_raw(trigger));
        let kind = match which {
            0 => OrderSpecKind::Market,
            1 => OrderSpecKind::Limit { price: p },
            2 => OrderSpecKind::StopMarket { trigger: t },
            3 => OrderSpecKind::StopLimit { trigger: t, price: p },
            _ => OrderSpecKind::TakeProfitMarket { trigger: t },
        };
        let side = if buy { Side::Buy } else { Side::Sell };
        let mut spec = order("BTCUSDT", side, kind, "1");
        spec.qty = Fixed::from_raw(qty);
        if let Ok(out) = check_order(&inst, &spec, Some(p)) {
            prop_assert!(out.qty <= spec.qty);
            prop_assert!(spec.qty.raw() - out.qty.raw() < inst.lot_size.raw());
            prop_assert_eq!(out.qty.raw() % inst.lot_size.raw(), 0);
            let limit_ok = |asked: Fixed, sent: Fixed| {
                sent.raw() % tick == 0
                    && (sent.raw() - asked.raw()).abs() < tick
                    && if buy { sent <= asked } else { sent >= asked }
            };
            match out.kind {
                OrderSpecKind::Market => {}
                OrderSpecKind::Limit { price } => prop_assert!(limit_ok(p, price)),
                OrderSpecKind::StopMarket { trigger } => {
                    prop_assert!(trigger.raw() % tick == 0 && (trigger.raw() - t.raw()).abs() < tick);
                    let away = if buy { trigger >= t } else { trigger <= t };
                    prop_assert!(away);
                }
                OrderSpecKind::StopLimit { trigger, price } => {
                    prop_assert!(limit_ok(p, price));
                    let away = if buy { trigger >= t } else { trigger <= t };
                    prop_assert!(away);
                }
                OrderSpecKind::TakeProfitMarket { trigger } => {
                    prop_assert!(trigger.raw() % tick == 0 && (trigger.raw() - t.raw()).abs() < tick);
                    let away = if buy { trigger <= t } else { trigger >= t };
                    prop_assert!(away);
                }
            }
        }
    }

    #[test]
    fn check_order_never_panics(
        qty in any::<i64>(),
        price in any::<i64>(),
        reference in proptest::option::of(any::<i64>()),
        tick in any::<i64>(),
        lot in any::<i64>(),
        min_notional in any::<i64>(),
        contract in any::<i64>(),
        buy in any::<bool>(),
        which in 0u8..5,
    ) {
        let mut inst = binance_spot_btcusdt();
        inst.tick_size = Fixed::from_raw(tick);
        inst.lot_size = Fixed::from_raw(lot);
        inst.min_notional = Fixed::from_raw(min_notional);
        inst.contract_size = Fixed::from_raw(contract);
        let p = Fixed::from_raw(price);
        let kind = match which {
            0 => OrderSpecKind::Market,
            1 => OrderSpecKind::Limit { price: p },
            2 => OrderSpecKind::StopMarket { trigger: p },
            3 => OrderSpecKind::StopLimit { trigger: p, price: p },
            _ => OrderSpecKind::TakeProfitMarket { trigger: p },
        };
        let mut spec = order("BTCUSDT", if buy { Side::Buy } else { Side::Sell }, kind, "1");
        spec.qty = Fixed::from_raw(qty);
        let _ = check_order(&inst, &spec, reference.map(Fixed::from_raw));
    }

    #[test]
    fn format_decimal_reads_back_exactly(value in any::<i64>(), step in any::<i64>()) {
        let text = format_decimal(Fixed::from_raw(value), Fixed::from_raw(step));
        prop_assert!(!text.contains(['e', 'E']));
        prop_assert_eq!(Fixed::parse_exact(&text).unwrap(), Fixed::from_raw(value));
    }
}
