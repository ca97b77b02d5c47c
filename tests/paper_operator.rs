//! The operator's commands to a running `keel paper`: SIGUSR1 throws the kill switch (journaled,
//! everything flattened, entries refused, an alert), SIGUSR2 resumes entries.

mod common;
#[path = "common/paper.rs"]
mod paper;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::KEEL;
use keel_engine::event::{Command as Cmd, Decision, Event};
use keel_replay::codec::Decoded;
use paper::*;

#[test]
fn sigusr1_throws_the_kill_switch_and_sigusr2_resumes() {
    let dir = tempfile::tempdir().unwrap();
    // Bars keep coming for a while (10 ms each), so the switch lands mid-stream.
    let rows = bundled_rows(1500);
    let venue = mock_venue(binance_kline_frames(&rows), Duration::from_millis(5));
    let telegram = TelegramRecorder::start();
    let journal = dir.path().join("session");
    let port = free_port();
    let config = dir.path().join("paper.toml");
    std::fs::write(
        &config,
        session_config(&venue.url(), &journal, port, Some(&telegram.url)),
    )
    .unwrap();
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
    // Wait until a position is open, then throw the switch.
    let opened = wait_for(Duration::from_secs(60), || {
        let text = http_get(port, "/metrics")?;
        (metric(&text, r#"keel_position{symbol="BTCUSDT"}"#)? > 0.0).then_some(())
    });
    assert!(opened.is_some(), "no position opened:\n{}", stderr());
    signal(child.id(), libc::SIGUSR1);
    let halted = wait_for(Duration::from_secs(30), || {
        let text = http_get(port, "/metrics")?;
        (metric(&text, "keel_halted")? == 1.0
            && metric(&text, r#"keel_position{symbol="BTCUSDT"}"#)? == 0.0)
            .then_some(())
    });
    assert!(halted.is_some(), "not flattened and halted:\n{}", stderr());
    signal(child.id(), libc::SIGUSR2);
    let resumed = wait_for(Duration::from_secs(30), || {
        let text = http_get(port, "/metrics")?;
        (metric(&text, "keel_halted")? == 0.0).then_some(())
    });
    assert!(resumed.is_some(), "not resumed:\n{}", stderr());
    signal(child.id(), libc::SIGTERM);
    let status = wait_for(Duration::from_secs(30), || child.try_wait().unwrap());
    assert!(status.is_some_and(|s| s.success()), "{}", stderr());

    let recs = records(&journal);
    let kill = recs
        .iter()
        .position(|(_, d)| matches!(d, Decoded::Input(Event::Command(Cmd::KillSwitch))))
        .expect("the kill switch is journaled");
    let resume = recs
        .iter()
        .position(|(_, d)| matches!(d, Decoded::Input(Event::Command(Cmd::Resume))))
        .expect("the resume is journaled");
    assert!(kill < resume);
    assert!(matches!(
        recs[kill + 1].1,
        Decoded::Decision(Decision::Halted { .. })
    ));
    // Between the two, only closing orders.
    for (_, d) in &recs[kill..resume] {
        if let Decoded::Decision(Decision::PlaceOrder(r)) = d {
            assert!(r.reduce_only, "an entry while halted: {r:?}");
        }
    }
    let texts = wait_for(Duration::from_secs(10), || {
        let t = telegram.texts();
        t.iter().any(|m| m.contains("kill switch")).then_some(t)
    });
    assert!(texts.is_some(), "{:?}", telegram.texts());
}
