//! A paper session's stop and restart actions: `on_stop = "cancel"` leaves no order working,
//! and `flatten_on_restart` closes the inherited position with the first bar after the
//! restart, at the price the simulated venue's rules give (computed here from the bar itself).

mod common;
#[path = "common/paper.rs"]
mod paper;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::KEEL;
use keel_engine::Fixed;
use keel_engine::event::{Command as Cmd, Event, OrderStatus, Side};
use paper::*;

fn run_until(
    config: &std::path::Path,
    port: u16,
    journal: &std::path::Path,
    bars: usize,
) -> String {
    let err = config.with_extension("err");
    let mut child = Command::new(KEEL)
        .args(["paper", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let done = wait_for(Duration::from_secs(60), || {
        let t = http_get(port, "/metrics")?;
        let _ = metric(&t, "keel_equity")?;
        (candles(journal) >= bars).then_some(())
    });
    signal(child.id(), libc::SIGTERM);
    let status = wait_for(Duration::from_secs(30), || child.try_wait().unwrap());
    let text = std::fs::read_to_string(&err).unwrap();
    assert!(done.is_some(), "{text}");
    assert!(status.is_some_and(|s| s.success()), "{text}");
    text
}

#[test]
fn on_stop_cancel_and_flatten_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let rows = bundled_rows(400);
    let first = mock_venue(binance_kline_frames(&rows[..300]), Duration::from_millis(2));
    let journal = dir.path().join("session");
    let port = free_port();
    let grid = |text: String| {
        text.replace(
            "kind = \"sma_cross\"\nfast = 5\nslow = 20",
            "kind = \"grid\"\nrange_pct = 0.05\nlevels = 10",
        )
        .replace(
            "stop = \"percent\"\nstop_pct = 0.005\ntake_profit = \"percent\"\ntake_profit_pct = 0.01",
            "max_exposure = 0.5",
        )
    };
    let config = dir.path().join("first.toml");
    let text = grid(session_config(&first.url(), &journal, port, None))
        .replace("[session]", "[session]\non_stop = \"cancel\"");
    std::fs::write(&config, text).unwrap();
    let err = run_until(&config, port, &journal, 300);
    assert!(err.contains("journaling CancelAll"), "{err}");

    // Every order placed ended: filled in full, or cancelled/expired/rejected.
    let events = inputs(&journal);
    assert!(
        matches!(events.last(), Some(Event::Command(Cmd::CancelAll)))
            || events
                .iter()
                .rev()
                .take(50)
                .any(|e| matches!(e, Event::Command(Cmd::CancelAll)))
    );
    for order in placed(&journal) {
        let filled: i64 = fills(&journal)
            .iter()
            .filter(|f| f.client_id == order.client_id)
            .map(|f| f.qty.0)
            .sum();
        let ended = events.iter().any(|e| matches!(e, Event::OrderUpdate(u)
            if u.client_id == order.client_id
                && matches!(u.status, OrderStatus::Canceled | OrderStatus::Expired | OrderStatus::Rejected)));
        assert!(
            filled == order.qty.0 || ended,
            "order {} still working",
            order.client_id
        );
    }
    let held: i64 = fills(&journal)
        .iter()
        .map(|f| {
            if f.side == Side::Buy {
                f.qty.0
            } else {
                -f.qty.0
            }
        })
        .sum();
    assert!(held > 0, "the grid holds its seed inventory");

    // Restart on a venue with 100 more bars, flattening first.
    let second = mock_venue(binance_kline_frames(&rows), Duration::from_millis(2));
    let config2 = dir.path().join("second.toml");
    let text = grid(session_config(&second.url(), &journal, port, None))
        .replace("[session]", "[session]\nflatten_on_restart = true");
    std::fs::write(&config2, text).unwrap();
    let fills_before = fills(&journal).len();
    let err = run_until(&config2, port, &journal, 400);
    assert!(err.contains("flatten_on_restart"), "{err}");
    let all = fills(&journal);
    let exit = all[fills_before];
    assert_eq!(exit.side, Side::Sell);
    assert_eq!(exit.qty.0, held);
    // The restart came about a second (of local time) after the last bar arrived, so in market
    // time the flatten order reaches the venue inside bar 300: a market order arriving inside
    // a bar fills at its close, here with 1 bp of slippage against the seller.
    let close = Fixed::parse(rows[300].split(',').nth(4).unwrap()).unwrap();
    let expected = close.0 - close.0 / 10_000;
    assert!(
        (exit.price.0 - expected).abs() <= 1,
        "{} vs {expected}",
        exit.price.0
    );
    // Flat, and the stopped grid trades no more.
    let net: i64 = all
        .iter()
        .map(|f| {
            if f.side == Side::Buy {
                f.qty.0
            } else {
                -f.qty.0
            }
        })
        .sum();
    assert_eq!(net, 0);
    assert_eq!(all.len(), fills_before + 1);
}
