//! The failsafe of a running `keel paper`: one symbol's market data goes silent while the
//! other's keeps flowing → the configured action (flatten) is journaled, an alert goes out,
//! the metric shows it, and entries are refused while the data is unhealthy; the venue drops
//! the connections, the client reconnects, data flows again → entries resume (journaled),
//! with an alert.

mod common;
#[path = "common/paper.rs"]
mod paper;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::KEEL;
use keel_adapters::mock::ws::WsFault;
use keel_engine::event::{Command as Cmd, Decision, Event, RejectReason};
use keel_replay::codec::Decoded;
use paper::*;

#[test]
fn stale_data_trips_the_failsafe_and_healthy_data_clears_it() {
    let dir = tempfile::tempdir().unwrap();
    let rows = bundled_rows(400);
    // ETHUSDT (the same real bars) stops after 150 bars; BTCUSDT goes on to 400.
    let mut frames = Vec::new();
    let eth = binance_kline_frames_for(&rows[..150], "ETHUSDT");
    let btc = binance_kline_frames_for(&rows, "BTCUSDT");
    for (i, f) in btc.into_iter().enumerate() {
        frames.push(f);
        if let Some(e) = eth.get(i) {
            frames.push(e.clone());
        }
    }
    let venue = mock_venue(frames, Duration::from_millis(8));
    let telegram = TelegramRecorder::start();
    let journal = dir.path().join("session");
    let port = free_port();
    let config = dir.path().join("paper.toml");
    let text = session_config(&venue.url(), &journal, port, Some(&telegram.url))
        .replace(
            "symbol = \"BTCUSDT\"",
            "symbols = [\"BTCUSDT\", \"ETHUSDT\"]",
        )
        .replace(
            "stale_after_secs = 600",
            "stale_after_secs = 1\naction = \"flatten\"",
        )
        .replace(
            "disconnected_after_secs = 600",
            "disconnected_after_secs = 5",
        );
    std::fs::write(&config, text).unwrap();
    let err = dir.path().join("paper.err");
    let mut child = Command::new(KEEL)
        .args(["paper", "--config"])
        .arg(&config)
        .env("KEEL_TELEGRAM_TOKEN", "1:tok")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let stderr = || std::fs::read_to_string(&err).unwrap_or_default();

    // ETHUSDT goes silent: the failsafe trips, flattening, while BTCUSDT still streams.
    let tripped = wait_for(Duration::from_secs(60), || {
        let text = http_get(port, "/metrics")?;
        (metric(&text, "keel_failsafe_active")? == 1.0).then_some(())
    });
    assert!(
        tripped.is_some(),
        "the failsafe never tripped:\n{}",
        stderr()
    );
    assert!(
        stderr().contains("failsafe: no market data for ETHUSDT"),
        "{}",
        stderr()
    );
    // Let BTCUSDT's remaining bars arrive while the session is halted.
    assert!(venue.wait_until(Duration::from_secs(60), |c| {
        c.iter().filter(|l| l.frames_sent >= 800).count() >= 1
    }));
    let after_trip = wait_for(Duration::from_secs(10), || {
        let recs = records(&journal);
        let at = recs
            .iter()
            .position(|(_, d)| matches!(d, Decoded::Input(Event::Command(Cmd::KillSwitch))))?;
        let refused = recs[at..].iter().any(|(_, d)| {
            matches!(
                d,
                Decoded::Decision(Decision::Reject {
                    reason: RejectReason::Halted,
                    ..
                })
            )
        });
        refused.then_some(recs[at..].to_vec())
    })
    .unwrap_or_else(|| panic!("no entry was refused after the failsafe:\n{}", stderr()));
    // Nothing but closing orders after the trip.
    for (_, d) in &after_trip {
        if let Decoded::Decision(Decision::PlaceOrder(r)) = d {
            assert!(r.reduce_only, "an entry was placed while unhealthy: {r:?}");
        }
    }
    assert!(telegram.texts().iter().any(|t| t.contains("failsafe")));

    // The venue drops every connection; the client reconnects, the data flows again.
    venue.inject(WsFault::Drop);
    let cleared = wait_for(Duration::from_secs(60), || {
        inputs(&journal)
            .iter()
            .any(|e| matches!(e, Event::Command(Cmd::Resume)))
            .then_some(())
    });
    assert!(
        cleared.is_some(),
        "the failsafe never cleared:\n{}",
        stderr()
    );
    assert!(stderr().contains("failsafe cleared"), "{}", stderr());
    let alerts = wait_for(Duration::from_secs(10), || {
        let t = telegram.texts();
        t.iter()
            .any(|m| m.contains("failsafe cleared"))
            .then_some(t)
    });
    assert!(alerts.is_some(), "{:?}", telegram.texts());
    let reconnects = http_get(port, "/metrics")
        .and_then(|t| metric(&t, r#"keel_venue_reconnects_total{venue="binance-spot"}"#));
    assert!(reconnects.unwrap_or(0.0) >= 1.0);
    signal(child.id(), libc::SIGTERM);
    let status = wait_for(Duration::from_secs(30), || child.try_wait().unwrap());
    assert!(status.is_some_and(|s| s.success()), "{}", stderr());
}
