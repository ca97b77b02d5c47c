//! `keel live` on Binance USD-M perpetuals against the loopback mock, through the story a
//! dead-man switch exists for: the session trades with a stop and a target resting on the
//! venue and keeps the venue's `countdownCancelAll` armed; the process is killed (SIGKILL)
//! while a position is open; the venue's countdown cancels the orders nobody is left to
//! manage; the restart reconciles — the position is still there, its protection is gone — and
//! places the stop and the target again at the same triggers. At the end the journal and the
//! exchange agree on every fill and on the position, and the journal verifies.

mod common;
#[path = "common/live.rs"]
mod live;
#[path = "common/paper.rs"]
mod paper;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{KEEL, keel};
use keel_adapters::mock::{MOCK_API_KEY, MOCK_SECRET};
use keel_engine::Fixed;
use keel_engine::event::Side;
use live::*;
use paper::*;

const BARS: usize = 900;

fn start(config: &std::path::Path, err: &std::path::Path) -> Child {
    Command::new(KEEL)
        .args(["live", "--config"])
        .arg(config)
        .env("KEEL_BINANCE_USDM_API_KEY", MOCK_API_KEY)
        .env("KEEL_BINANCE_USDM_API_SECRET", MOCK_SECRET)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(err).unwrap())
        .spawn()
        .unwrap()
}

#[test]
fn the_dead_man_switch_cancels_after_a_crash_and_the_restart_rearms_the_protection() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("session");
    let rows = bundled_rows(BARS);
    let venue = LiveVenue::binance_usdm(&rows, Duration::from_millis(20), &journal);
    let port = free_port();
    let config = dir.path().join("live.toml");
    let text = live_config(
        &venue,
        &journal,
        port,
        None,
        "\n[market]\ntype = \"perpetual\"\nleverage = 2\n\n[live]\ndead_man_secs = 10\n",
    )
    .replace("binance-spot", "binance-usdm")
    .replace(
        "take_profit = \"none\"",
        "take_profit = \"percent\"\ntake_profit_pct = 0.01",
    );
    std::fs::write(&config, text).unwrap();

    // 1. Trade until a position is open with its stop and target resting on the venue; kill.
    let err1 = dir.path().join("run1.err");
    let mut child = start(&config, &err1);
    let log1 = || std::fs::read_to_string(&err1).unwrap_or_default();
    let protected = wait_for(Duration::from_secs(60), || {
        let open = venue.rest.open_orders();
        let position = venue.rest.position("BTCUSDT").qty;
        (open.len() == 2 && !position.is_zero()).then_some((open, position))
    });
    let Some((protection, position)) = protected else {
        let _ = child.kill();
        panic!("no protected position within 60 s; stderr:\n{}", log1());
    };
    signal(child.id(), libc::SIGKILL);
    child.wait().unwrap();
    let placed_before_restart = venue.rest.orders().len();
    let armed = venue
        .rest
        .requests_to("POST", "/fapi/v1/countdownCancelAll");
    assert!(
        !armed.is_empty()
            && armed
                .iter()
                .all(|r| r.param("countdownTime") == Some("10000")),
        "the dead-man switch was not kept armed at 10 s: {armed:?}\n{}",
        log1()
    );

    // 2. Nobody renews the countdown: the venue cancels the orders itself; the position stays.
    let cancelled = wait_for(Duration::from_secs(20), || {
        venue.rest.open_orders().is_empty().then_some(())
    });
    assert!(
        cancelled.is_some(),
        "the venue's countdown never cancelled the orders"
    );
    assert_eq!(venue.rest.position("BTCUSDT").qty, position);

    // 3. The restart reconciles: the lost stop and target are placed again, same triggers.
    let err2 = dir.path().join("run2.err");
    let mut child = start(&config, &err2);
    let log2 = || std::fs::read_to_string(&err2).unwrap_or_default();
    // The first two orders the restarted process places (the market data it receives first
    // is what it already journaled, skipped: nothing else decides orders before them).
    let rearmed = wait_for(Duration::from_secs(30), || {
        let orders = venue.rest.orders();
        (orders.len() >= placed_before_restart + 2)
            .then(|| orders[placed_before_restart..placed_before_restart + 2].to_vec())
    });
    let Some(rearmed) = rearmed else {
        let _ = child.kill();
        panic!("protection not re-armed; stderr:\n{}", log2());
    };
    let shape = |o: &keel_adapters::mock::MockOrder| {
        (
            o.side.as_str(),
            o.order_type.clone(),
            o.stop_price,
            o.price,
            o.qty,
        )
    };
    let before: BTreeSet<_> = protection.iter().map(shape).collect();
    let after: BTreeSet<_> = rearmed.iter().map(shape).collect();
    assert_eq!(
        before,
        after,
        "re-armed protection differs; stderr:\n{}",
        log2()
    );
    let old_ids: BTreeSet<_> = protection.iter().map(|o| &o.client_order_id).collect();
    assert!(
        rearmed
            .iter()
            .all(|o| !old_ids.contains(&o.client_order_id)),
        "the re-armed orders are new orders with new client ids"
    );
    let log = log2();
    assert!(
        log.contains("resumed a journal")
            && log
                .matches("was canceled on the venue while keel did not hear of it")
                .count()
                == 2,
        "the restart reports what it found; stderr:\n{log}"
    );

    // 4. Trade on to the end; stop cleanly (orders kept, switch disarmed).
    let done = wait_for(Duration::from_secs(90), || {
        let text = http_get(port, "/metrics")?;
        (metric(&text, r#"keel_inputs_total{kind="candle"}"#)? >= 50.0 && candles(&journal) >= BARS)
            .then_some(())
    });
    assert!(done.is_some(), "the session stalled; stderr:\n{}", log2());
    signal(child.id(), libc::SIGTERM);
    let status = child.wait().unwrap();
    let log = log2();
    assert!(status.success(), "exit {status:?}; stderr:\n{log}");
    let disarm = venue
        .rest
        .requests_to("POST", "/fapi/v1/countdownCancelAll");
    assert_eq!(
        disarm.last().and_then(|r| r.param("countdownTime")),
        Some("0"),
        "a clean stop disarms the switch"
    );

    // 5. Journal and exchange agree: every execution once, and the position exactly.
    let executions = venue.rest.fills();
    let journal_fills = fills(&journal);
    let mut by_trade: BTreeMap<(u64, u64), usize> = BTreeMap::new();
    for f in &journal_fills {
        *by_trade.entry((f.venue_order_id, f.trade_id)).or_default() += 1;
    }
    assert_eq!(journal_fills.len(), executions.len(), "fills vs executions");
    for e in &executions {
        assert_eq!(
            by_trade.get(&(e.order_id, e.trade_id.unwrap())),
            Some(&1),
            "{e:?}"
        );
    }
    let mut qty = Fixed::ZERO;
    for f in &journal_fills {
        match f.side {
            Side::Buy => qty += f.qty,
            Side::Sell => qty -= f.qty,
        }
    }
    assert_eq!(qty, venue.rest.position("BTCUSDT").qty, "position");
    let orders = venue.rest.orders();
    let ids: BTreeSet<&str> = orders.iter().map(|o| o.client_order_id.as_str()).collect();
    assert_eq!(ids.len(), orders.len(), "a client order id was used twice");
    let verify = keel(&["replay", "verify", journal.to_str().unwrap()], dir.path());
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}
