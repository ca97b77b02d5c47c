//! `keel paper` refuses bad input with a clear message that says what and where, before the
//! journal is touched, and survives a venue sending garbage without losing anything.

mod common;
#[path = "common/paper.rs"]
mod paper;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::KEEL;
use keel_adapters::mock::ws::WsFault;
use paper::*;

fn run(config: &std::path::Path, envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(KEEL);
    cmd.args(["paper", "--for-seconds", "5", "--config"])
        .arg(config);
    cmd.env_remove("KEEL_TELEGRAM_TOKEN");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_configurations_are_refused_before_the_journal_exists() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("session");
    let good = session_config(
        "ws://127.0.0.1:9",
        &journal,
        free_port(),
        Some("http://127.0.0.1:9"),
    );
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            good.replace("slow = 20", "slow_period = 20"),
            vec![("KEEL_TELEGRAM_TOKEN", "1:a")],
            "slow_period",
        ),
        (
            good.replace("snapshot_every = 50", "snapshot_evry = 50"),
            vec![("KEEL_TELEGRAM_TOKEN", "1:a")],
            "snapshot_evry",
        ),
        (
            good.replace("name = \"binance-spot\"", "name = \"binanse\""),
            vec![("KEEL_TELEGRAM_TOKEN", "1:a")],
            "binanse",
        ),
        (good.clone(), vec![], "KEEL_TELEGRAM_TOKEN"),
        (
            good.replace("[venue]", "[venue_]"),
            vec![("KEEL_TELEGRAM_TOKEN", "1:a")],
            "venue_",
        ),
        (
            good.replace("ws_url = \"ws://127.0.0.1:9\"", "ws_url = \"http://x\""),
            vec![("KEEL_TELEGRAM_TOKEN", "1:a")],
            "ws_url",
        ),
        (
            good.replace("[session]", "[session]\non_stop = \"explode\""),
            vec![("KEEL_TELEGRAM_TOKEN", "1:a")],
            "on_stop",
        ),
    ];
    for (i, (text, envs, needle)) in cases.into_iter().enumerate() {
        let config = dir.path().join(format!("bad-{i}.toml"));
        std::fs::write(&config, &text).unwrap();
        let out = run(&config, &envs);
        let err = stderr(&out);
        assert!(!out.status.success(), "case {i} ran:\n{err}");
        assert!(
            err.contains(needle),
            "case {i}: the error should name {needle:?}:\n{err}"
        );
        assert!(
            err.contains(&format!("bad-{i}.toml")),
            "case {i} names no file:\n{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(!journal.exists(), "case {i} created the journal");
    }
}

#[test]
fn a_taken_metrics_port_is_refused_before_the_journal_exists() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let journal = dir.path().join("session");
    let config = dir.path().join("paper.toml");
    std::fs::write(
        &config,
        session_config("ws://127.0.0.1:9", &journal, port, None),
    )
    .unwrap();
    let out = run(&config, &[]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(!journal.exists());
}

#[test]
fn a_corrupt_journal_is_reported_by_file_and_offset_and_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let rows = bundled_rows(120);
    let venue = mock_venue(binance_kline_frames(&rows), Duration::from_millis(2));
    let journal = dir.path().join("session");
    let config = dir.path().join("paper.toml");
    std::fs::write(
        &config,
        session_config(&venue.url(), &journal, free_port(), None),
    )
    .unwrap();
    // A session that ran and stopped.
    let out = Command::new(KEEL)
        .args(["paper", "--for-seconds", "3", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(candles(&journal) >= 100);
    // One bit flipped inside an early record.
    let segment = std::fs::read_dir(&journal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "seg") || p.to_string_lossy().contains("seg")
        })
        .min()
        .expect("a segment file");
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[4096 + 100] ^= 0x10;
    std::fs::write(&segment, &bytes).unwrap();
    let out = Command::new(KEEL)
        .args(["paper", "--for-seconds", "3", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    let name = segment.file_name().unwrap().to_string_lossy().into_owned();
    assert!(err.contains(&name), "the error names the segment:\n{err}");
    assert!(err.contains("offset"), "the error names the offset:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        std::fs::read(&segment).unwrap(),
        bytes,
        "the journal was modified"
    );
}

#[test]
fn garbage_from_the_venue_is_counted_and_skipped_and_no_candle_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let rows = bundled_rows(200);
    let mut frames = binance_kline_frames(&rows);
    // Garbage in the middle of the stream, between real frames.
    for at in [50, 120, 300] {
        frames.insert(
            at,
            r#"{"stream":"btcusdt@kline_1m","data":{"e":"kline","k":{"t":"nope"}}}"#.into(),
        );
    }
    let venue = mock_venue(frames, Duration::from_millis(3));
    let journal = dir.path().join("session");
    let port = free_port();
    let config = dir.path().join("paper.toml");
    std::fs::write(&config, session_config(&venue.url(), &journal, port, None)).unwrap();
    let child = Command::new(KEEL)
        .args(["paper", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let errors = wait_for(Duration::from_secs(60), || {
        let text = http_get(port, "/metrics")?;
        let candles = metric(&text, r#"keel_inputs_total{kind="candle"}"#)?;
        (candles >= 200.0).then_some(text)
    });
    venue.inject(WsFault::Garbage);
    std::thread::sleep(Duration::from_millis(200));
    signal(child.id(), libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    let text = errors.unwrap_or_else(|| panic!("not every candle arrived:\n{err}"));
    assert!(out.status.success(), "{err}");
    let undecodable = metric(
        &text,
        r#"keel_venue_errors_total{venue="binance-spot",kind="undecodable"}"#,
    );
    assert!(undecodable.unwrap_or(0.0) >= 3.0, "{text}");
    assert!(err.contains("undecodable frame"), "{err}");
    assert_eq!(candles(&journal), 200);
}
