//! `keel paper` end to end, as a user runs it: the real binary, live candles from a WebSocket
//! venue on loopback (the bundled real BTC bars as Binance spot kline frames), metrics over
//! HTTP, Telegram alerts to a loopback recorder, SIGTERM, restart, `keel replay verify` — and
//! the fills equal those of `keel backtest` over the same bars.

mod common;
#[path = "common/paper.rs"]
mod paper;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{KEEL, keel};
use paper::*;

const BARS: usize = 400;
const TOKEN: &str = "123456:test-token-never-printed";

fn spawn_paper(config: &std::path::Path, stderr: &std::path::Path) -> Child {
    Command::new(KEEL)
        .args(["paper", "--config"])
        .arg(config)
        .env("KEEL_TELEGRAM_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).unwrap())
        .spawn()
        .expect("keel paper starts")
}

/// Waits for the child to exit (bounded); panics with its stderr if it does not.
fn wait_exit(child: &mut Child, stderr: &std::path::Path) -> std::process::ExitStatus {
    wait_for(Duration::from_secs(30), || child.try_wait().unwrap()).unwrap_or_else(|| {
        let _ = child.kill();
        panic!(
            "keel paper did not stop:\n{}",
            std::fs::read_to_string(stderr).unwrap_or_default()
        )
    })
}

#[test]
fn a_paper_session_trades_live_candles_like_the_backtest_and_resumes_after_a_stop() {
    let dir = tempfile::tempdir().unwrap();
    let rows = bundled_rows(BARS);
    let venue = mock_venue(binance_kline_frames(&rows), Duration::from_millis(2));
    let telegram = TelegramRecorder::start();
    let journal = dir.path().join("session");
    let port = free_port();
    let config = dir.path().join("paper.toml");
    std::fs::write(
        &config,
        session_config(&venue.url(), &journal, port, Some(&telegram.url)),
    )
    .unwrap();
    let stderr = dir.path().join("paper-1.err");
    let mut child = spawn_paper(&config, &stderr);

    // Every closed bar reaches the core (metrics say so), then SIGTERM.
    let series = r#"keel_inputs_total{kind="candle"}"#;
    let exposition = wait_for(Duration::from_secs(60), || {
        let text = http_get(port, "/metrics")?;
        (metric(&text, series)? >= BARS as f64).then_some(text)
    })
    .unwrap_or_else(|| {
        let _ = child.kill();
        panic!(
            "the session never applied {BARS} candles:\n{}",
            std::fs::read_to_string(&stderr).unwrap_or_default()
        )
    });
    signal(child.id(), libc::SIGTERM);
    let status = wait_exit(&mut child, &stderr);
    let err = std::fs::read_to_string(&stderr).unwrap();
    assert!(status.success(), "{err}");
    assert!(err.contains("new session"), "{err}");
    assert!(err.contains("stopped (SIGTERM)"), "{err}");
    assert!(err.contains("journal synced, snapshot"), "{err}");
    assert!(!err.contains(TOKEN), "the bot token leaked to stderr");
    assert_eq!(candles(&journal), BARS, "each closed bar once, no updates");
    // A snapshot every 50 bars and one at the stop, of which the newest 3 are kept.
    let snapshots = std::fs::read_dir(journal.join("snapshots"))
        .unwrap()
        .count();
    assert_eq!(snapshots, 3);

    // The same bars as a backtest: the same fills, to the last digit.
    let text = std::fs::read_to_string(&config).unwrap();
    let out = backtest_over(dir.path(), &text, &rows);
    let paper_fills = fills(&journal);
    let backtest_fills = fills(&out.join("journal"));
    assert!(paper_fills.len() >= 6, "{} fills", paper_fills.len());
    assert_eq!(anonymous(paper_fills.clone()), anonymous(backtest_fills));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let final_equity = report["final_equity"].as_f64().unwrap();

    // Metrics reflect the session: equity, fills as inputs, the decisions.
    let equity = metric(&exposition, "keel_equity").unwrap();
    assert!(
        (equity - final_equity).abs() < 1e-6,
        "{equity} vs {final_equity}"
    );
    let fill_inputs = metric(&exposition, r#"keel_inputs_total{kind="fill"}"#).unwrap();
    assert_eq!(fill_inputs as usize, paper_fills.len());
    let placed_orders = metric(&exposition, r#"keel_decisions_total{kind="place_order"}"#).unwrap();
    assert_eq!(placed_orders as usize, placed(&journal).len());

    // Alerts: the start, one per fill, the stop; the token only in the URL path.
    let texts = wait_for(Duration::from_secs(10), || {
        let t = telegram.texts();
        t.iter().any(|m| m.contains("stopped")).then_some(t)
    })
    .expect("the stop alert arrives");
    assert!(texts[0].contains("new session"), "{texts:?}");
    let fill_msgs = texts.iter().filter(|t| t.contains("Fill")).count();
    assert_eq!(fill_msgs, paper_fills.len(), "{texts:?}");
    for p in telegram.paths() {
        assert_eq!(p, format!("/bot{TOKEN}/sendMessage"));
    }
    assert!(texts.iter().all(|t| !t.contains(TOKEN)));

    // The journal replays to the same decisions.
    let verified = keel(&["replay", "verify", journal.to_str().unwrap()], dir.path());
    let (out_text, err_text) = common::text(&verified);
    assert!(verified.status.success(), "{out_text}{err_text}");
    assert!(out_text.contains("0 divergences"), "{out_text}");

    // The live-vs-backtest diff: none for a paper session (its fills are simulated)...
    let diffed = keel(
        &["replay", "diff", "--journal", journal.to_str().unwrap()],
        dir.path(),
    );
    let (diff_text, diff_err) = common::text(&diffed);
    assert!(diffed.status.success(), "{diff_text}{diff_err}");
    assert!(diff_text.contains(", 0 differ"), "{diff_text}");
    // ...and every market fill differs when the backtest assumes 10 bps more slippage.
    let worse = dir.path().join("worse.toml");
    std::fs::write(
        &worse,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("slippage_bps = 1.0", "slippage_bps = 11.0"),
    )
    .unwrap();
    let diffed = keel(
        &[
            "replay",
            "diff",
            "--journal",
            journal.to_str().unwrap(),
            "--config",
            worse.to_str().unwrap(),
            "--json",
        ],
        dir.path(),
    );
    assert_eq!(diffed.status.code(), Some(2), "{}", common::text(&diffed).1);
    let report: serde_json::Value = serde_json::from_slice(&diffed.stdout).unwrap();
    let differences = report["differences"].as_array().unwrap();
    assert!(!differences.is_empty());

    // A restart resumes the journal; the venue replays its bars, none is applied twice.
    let stderr2 = dir.path().join("paper-2.err");
    let mut again = spawn_paper(&config, &stderr2);
    let resumed = wait_for(Duration::from_secs(30), || {
        let text = std::fs::read_to_string(&stderr2).ok()?;
        text.contains("trading").then_some(text)
    })
    .expect("the second session starts");
    assert!(resumed.contains("resumed a journal"), "{resumed}");
    assert!(resumed.contains("nothing was half done"), "{resumed}");
    // Let the venue play its whole script again.
    assert!(venue.wait_until(Duration::from_secs(30), |c| c.len() >= 2
        && c[1].frames_sent >= 2 * BARS));
    signal(again.id(), libc::SIGINT);
    let status = wait_exit(&mut again, &stderr2);
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&stderr2).unwrap()
    );
    assert_eq!(candles(&journal), BARS);
    assert_eq!(fills(&journal), paper_fills);
    let verified = keel(&["replay", "verify", journal.to_str().unwrap()], dir.path());
    assert!(common::text(&verified).0.contains("0 divergences"));
}
