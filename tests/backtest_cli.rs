//! End-to-end tests of the `keel` binary: import → backtest → report, determinism,
//! `replay verify`, and bad input. They run the real binary as a user would.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{assert_ok, keel, text};

use keel_engine::RecordKind;
use keel_engine::event::Decision;
use keel_journal::{Journal, Options, Reader};
use keel_replay::codec::{Decoded, Encoder, decode};

/// Asserts the command failed cleanly: non-zero exit, a message, no panic.
fn assert_clean_failure(o: &Output, code: i32, needles: &[&str]) {
    let (out, err) = text(o);
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout:\n{out}\nstderr:\n{err}"
    );
    assert!(!err.contains("panicked"), "panicked:\n{err}");
    let all = format!("{out}{err}");
    for n in needles {
        assert!(all.contains(n), "expected `{n}` in:\n{all}");
    }
}

const SMA_CONFIG: &str = r#"
[data]
store = "store"
symbol = "BTCUSDT"
interval = "1m"
[account]
starting_balance = 10000
[strategy]
kind = "sma_cross"
fast = 20
slow = 100
[execution]
taker_fee_bps = 5
slippage_bps = 1
lot_size = 0.001
"#;

/// Imports the bundled month of BTC perpetual bars into `dir/store`.
fn import_bundled(dir: &Path) {
    let out = common::import_bundled(dir);
    assert!(out.contains("45031 bars added"), "{out}");
}

/// A temporary directory with the bundled bars imported, `sma.toml` (SMA_CONFIG) written,
/// and one backtest of it run into `out`.
fn bundled_run(out: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    import_bundled(dir);
    std::fs::write(dir.join("sma.toml"), SMA_CONFIG).unwrap();
    assert_ok(&keel(
        &["backtest", "--config", "sma.toml", "--out", out],
        dir,
    ));
    tmp
}

fn segment_bytes(journal: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(journal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap()
}

#[test]
fn same_backtest_twice_gives_identical_journals_and_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    import_bundled(dir);
    // Importing the same file again changes nothing.
    let again = common::import_bundled(dir);
    assert!(
        again.contains("0 bars added, 45031 already present"),
        "{again}"
    );

    std::fs::write(dir.join("sma.toml"), SMA_CONFIG).unwrap();
    let a = assert_ok(&keel(
        &["backtest", "--config", "sma.toml", "--out", "a"],
        dir,
    ));
    let b = assert_ok(&keel(
        &["backtest", "--config", "sma.toml", "--out", "b"],
        dir,
    ));
    assert!(a.contains("max drawdown"), "{a}");
    // The printed summaries are the same but for the output paths.
    assert_eq!(a.replace("a/", "OUT/"), b.replace("b/", "OUT/"));

    let (ja, jb) = (dir.join("a/journal"), dir.join("b/journal"));
    let (sa, sb) = (segment_bytes(&ja), segment_bytes(&jb));
    assert!(!sa.is_empty());
    assert!(
        sa == sb,
        "run journals differ between two identical backtests"
    );
    let (ra, rb) = (report(&dir.join("a")), report(&dir.join("b")));
    assert_eq!(ra["digest"], rb["digest"]);
    assert_eq!(ra["candles"], 45031);
    // Sizing reserves fee and slippage: an entry filled at the price it was decided at (this
    // data's opens equal the previous close) is never rejected for its own costs.
    assert_eq!(ra["orders_rejected"], 0, "{}", ra["orders_placed"]);
    let trades = ra["trades"].as_u64().unwrap();
    assert!(trades > 10, "expected the crossover to trade: {ra}");
    assert_eq!(ra["trade_list"].as_array().unwrap().len() as u64, trades);

    // Re-running into the same directory replaces the earlier run.
    assert_ok(&keel(
        &["backtest", "--config", "sma.toml", "--out", "a"],
        dir,
    ));
    assert!(segment_bytes(&ja) == sb);

    let v = assert_ok(&keel(&["replay", "verify", ja.to_str().unwrap()], dir));
    assert!(v.contains("0 divergences"), "{v}");
    let digest = ra["digest"].as_str().unwrap();
    assert!(
        v.contains(digest),
        "verify's final digest should be the report's:\n{v}"
    );

    let inspect = assert_ok(&keel(&["journal", "inspect", ja.to_str().unwrap()], dir));
    // The bars are references to the store's records (the first names the store).
    let count = |kind: &str| {
        inspect.lines().find_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some(kind)).then(|| words.next().map(str::to_string))?
        })
    };
    assert_eq!(count("first_candle_ref").as_deref(), Some("1"), "{inspect}");
    assert_eq!(count("candle_ref").as_deref(), Some("45030"), "{inspect}");
    assert_ok(&keel(&["journal", "verify", ja.to_str().unwrap()], dir));
}

/// Copies `src` into `dst` record by record, passing each decision through `edit`. The copy
/// has a valid CRC chain, so only a replay can tell it was altered.
fn rewrite_journal(src: &Path, dst: &Path, edit: impl FnMut(u64, Decision) -> Decision) {
    rewrite_journal_until(src, dst, u64::MAX, edit)
}

/// `rewrite_journal`, keeping only records with a sequence number below `end_seq`.
fn rewrite_journal_until(
    src: &Path,
    dst: &Path,
    end_seq: u64,
    mut edit: impl FnMut(u64, Decision) -> Decision,
) {
    let mut reader = Reader::open(src).unwrap();
    let (mut journal, _) = Journal::open(dst, Options::default()).unwrap();
    let mut enc = Encoder::new();
    while let Some(rec) = reader.next().unwrap() {
        let seq = rec.seq;
        if seq >= end_seq {
            break;
        }
        match decode(seq, rec.kind, rec.ver, rec.payload).unwrap() {
            Decoded::Decision(d) => {
                let d = edit(seq, d);
                let k = RecordKind::Decision;
                journal
                    .append(rec.ts_ns, k as u16, k.version(), enc.decision(&d))
                    .unwrap();
            }
            _ => {
                journal
                    .append(rec.ts_ns, rec.kind, rec.ver, rec.payload)
                    .unwrap();
            }
        }
    }
    journal.sync().unwrap();
}

#[test]
fn replay_verify_reports_a_tampered_decision_by_sequence_number() {
    let tmp = bundled_run("run");
    let dir = tmp.path();
    let src = dir.join("run/journal");

    // Double the quantity of the third order.
    let mut orders = 0;
    let mut tampered_seq = None;
    rewrite_journal(&src, &dir.join("tampered"), |seq, d| match d {
        Decision::PlaceOrder(mut req) => {
            orders += 1;
            if orders == 3 {
                req.qty = req.qty + req.qty;
                tampered_seq = Some(seq);
            }
            Decision::PlaceOrder(req)
        }
        other => other,
    });
    let seq = tampered_seq.expect("the run placed at least three orders");

    // An untouched copy made the same way verifies, so the rewrite itself is faithful.
    rewrite_journal(&src, &dir.join("copy"), |_, d| d);
    let ok = assert_ok(&keel(&["replay", "verify", "copy"], dir));
    assert!(ok.contains("0 divergences"), "{ok}");

    // The CRC chain of the tampered copy is valid ...
    assert_ok(&keel(&["journal", "verify", "tampered"], dir));
    // ... but replay finds the decision the core would not have made.
    let o = keel(&["replay", "verify", "tampered"], dir);
    assert_clean_failure(&o, 2, &[&format!("first divergent sequence number {seq}")]);
}

#[test]
fn flipped_bit_in_a_run_journal_is_reported_with_segment_and_offset() {
    let tmp = bundled_run("run");
    let dir = tmp.path();
    let journal = dir.join("run/journal");
    let (name, mut bytes) = segment_bytes(&journal).remove(0);
    // Somewhere in the middle of the written records.
    let offset = 64 + 100_000;
    bytes[offset] ^= 0x10;
    std::fs::write(journal.join(&name), &bytes).unwrap();

    let o = keel(&["journal", "verify", journal.to_str().unwrap()], dir);
    assert_clean_failure(&o, 2, &[&name]);
    let o = keel(&["replay", "verify", journal.to_str().unwrap()], dir);
    assert_clean_failure(&o, 1, &[&name]);
}

/// Bars 0..7 at one-minute spacing; fast = 2, slow = 3, fee 10 bps, allocation 0.5,
/// lot 0.01, starting balance 1000.
///
/// Closes 10 10 10 9 12 13 8 9: the fast SMA crosses above the slow at bar 4's close (12),
/// so a buy of floor(500 / (12 × 1.001), 0.01) = 41.62 fills at bar 5's open, 12.5; it
/// crosses below at bar 6's close (8), so the sell fills at bar 7's open, 8.5.
/// Reference values computed with Python's `decimal` module:
///   cash after buy 1000 − 520.25 − 0.52025 = 479.22975
///   final equity 479.22975 + 353.77 − 0.35377 = 832.64598, return −16.735402 %
///   trade pnl −167.35402, fees 0.87402
///   equity after bar 5 = 1020.28975, after bar 6 = 812.18975 → max drawdown 20.3961669 %
#[test]
fn hand_checked_crossover_trades_at_next_open_with_fees() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let bars = [
        (10.0, 10.0, 10.0, 10.0),
        (10.0, 10.0, 10.0, 10.0),
        (10.0, 10.0, 10.0, 10.0),
        (10.0, 10.0, 9.0, 9.0),
        (9.0, 12.0, 9.0, 12.0),
        (12.5, 13.0, 12.0, 13.0),
        (13.0, 13.0, 8.0, 8.0),
        (8.5, 9.0, 8.0, 9.0),
    ];
    let mut csv = String::from("time,open,high,low,close,volume\n");
    for (i, (o, h, l, c)) in bars.iter().enumerate() {
        csv += &format!("2022-01-01T00:{i:02}:00Z,{o},{h},{l},{c},1\n");
    }
    std::fs::write(dir.join("bars.csv"), csv).unwrap();
    assert_ok(&keel(
        &[
            "data",
            "import",
            "--format",
            "csv",
            "bars.csv",
            "--symbol",
            "TESTUSDT",
            "--interval",
            "1m",
            "--store",
            "store",
        ],
        dir,
    ));
    let config = r#"
[data]
store = "store"
symbol = "TESTUSDT"
interval = "1m"
[account]
starting_balance = 1000
[strategy]
kind = "sma_cross"
fast = 2
slow = 3
[execution]
taker_fee_bps = 10
allocation = 0.5
lot_size = 0.01
# Sized by allocation alone: no stops, targets, caps or daily limit.
[risk]
stop = "none"
take_profit = "none"
max_exposure = 1.0
daily_loss_limit = 0
"#;
    std::fs::write(dir.join("t.toml"), config).unwrap();
    assert_ok(&keel(
        &["backtest", "--config", "t.toml", "--out", "run"],
        dir,
    ));
    let r = report(&dir.join("run"));
    let close = |key: &str, want: f64| {
        let got = r[key].as_f64().unwrap_or(f64::NAN);
        assert!((got - want).abs() < 1e-6, "{key}: got {got}, want {want}");
    };
    close("final_equity", 832.64598);
    close("total_return_pct", -16.735402);
    close("max_drawdown_pct", 20.396_166_873);
    close("fees_paid", 0.87402);
    // In a position at the close of bars 5 and 6 only: 2 of 8 bars.
    close("exposure_pct", 25.0);
    // Held from bar 5's open to bar 7's open: two minutes.
    close("avg_holding_hours", 2.0 / 60.0);
    // One losing trade: expectancy is its PnL; ratio (1 + 0/avg_loss) × 0 − 1 = −1.
    close("expectancy", -167.35402);
    close("expectancy_ratio", -1.0);
    // Peak at bar 5's close (00:06), never regained by the last close (00:08).
    close("max_drawdown_duration_days", 2.0 / 1440.0);
    assert_eq!(r["by_symbol"][0]["name"], "TESTUSDT");
    let html = std::fs::read_to_string(dir.join("run/report.html")).unwrap();
    assert_eq!(
        html.matches("<svg").count(),
        2,
        "equity and drawdown charts"
    );
    assert_eq!(
        html.matches("<tr>").count() - 17,
        1,
        "16 metric rows, a header, one trade"
    );
    assert!(html.contains("2022-01-01T00:05:00Z") && html.contains("-167.35"));
    assert_eq!(r["by_strategy"][0]["name"], "sma_cross");
    assert_eq!(r["trades"], 1);
    let t = &r["trade_list"][0];
    assert_eq!(t["side"], "long");
    assert_eq!(t["entry_time"], "2022-01-01T00:05:00Z");
    assert_eq!(t["exit_time"], "2022-01-01T00:07:00Z");
    assert_eq!(t["entry_price"], 12.5);
    assert_eq!(t["exit_price"], 8.5);
    assert_eq!(t["quantity"], 41.62);
    assert!((t["pnl"].as_f64().unwrap() + 167.35402).abs() < 1e-9);
    assert!((t["fees"].as_f64().unwrap() - 0.87402).abs() < 1e-9);
}

#[test]
fn wrong_config_key_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let bad = SMA_CONFIG.replace("slow = 100", "slow_period = 100");
    std::fs::write(dir.join("bad.toml"), bad).unwrap();
    let o = keel(&["backtest", "--config", "bad.toml"], dir);
    assert_clean_failure(&o, 1, &["bad.toml", "slow_period"]);
    assert!(
        !dir.join("runs").exists(),
        "a bad config must not create output"
    );
}

#[test]
fn missing_files_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let o = keel(&["backtest", "--config", "nope.toml"], dir);
    assert_clean_failure(&o, 1, &["nope.toml"]);
    let o = keel(
        &[
            "data",
            "import",
            "--format",
            "binance-csv",
            "missing.csv",
            "--symbol",
            "BTCUSDT",
            "--interval",
            "1m",
            "--store",
            "store",
        ],
        dir,
    );
    assert_clean_failure(&o, 1, &["missing.csv"]);
    // A config whose store has no such series says what to do.
    std::fs::write(dir.join("sma.toml"), SMA_CONFIG).unwrap();
    let o = keel(&["backtest", "--config", "sma.toml"], dir);
    assert_clean_failure(&o, 1, &["BTCUSDT", "keel data import"]);
    let o = keel(&["replay", "verify", "no-such-journal"], dir);
    assert_clean_failure(&o, 1, &["no-such-journal"]);
}

#[test]
fn malformed_csv_line_is_reported_by_line_and_nothing_is_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let csv = "time,open,high,low,close,volume\n\
               2022-01-01T00:00:00Z,1,2,0.5,1.5,10\n\
               2022-01-01T00:01:00Z,1.5,abc,1,1.2,10\n\
               2022-01-01T00:02:00Z,1.2,1.3,1.1,1.25,10\n";
    std::fs::write(dir.join("bad.csv"), csv).unwrap();
    let o = keel(
        &[
            "data",
            "import",
            "--format",
            "csv",
            "bad.csv",
            "--symbol",
            "BTCUSDT",
            "--interval",
            "1m",
            "--store",
            "store",
        ],
        dir,
    );
    assert_clean_failure(&o, 1, &["bad.csv", "line 3", "abc"]);
    let series: PathBuf = dir.join("store/BTCUSDT/1m");
    assert!(!series.exists(), "nothing may be stored from a bad file");
}

#[test]
fn a_journal_cut_short_or_empty_does_not_verify() {
    let tmp = bundled_run("run");
    let dir = tmp.path();
    // Cut at a record boundary half way: a valid chain, but the session's end is missing.
    rewrite_journal_until(&dir.join("run/journal"), &dir.join("cut"), 40_000, |_, d| d);
    assert_ok(&keel(&["journal", "verify", "cut"], dir));
    let o = keel(&["replay", "verify", "cut"], dir);
    assert_clean_failure(&o, 2, &["no checkpoint after the last input"]);

    std::fs::create_dir(dir.join("empty")).unwrap();
    let o = keel(&["replay", "verify", "empty"], dir);
    assert_clean_failure(&o, 1, &["empty"]);
    let o = keel(&["journal", "verify", "empty"], dir);
    assert_clean_failure(&o, 1, &["no journal segments"]);
}

#[test]
fn a_failed_backtest_leaves_the_previous_run_intact() {
    let tmp = bundled_run("keep");
    let dir = tmp.path();
    let before = segment_bytes(&dir.join("keep/journal"));
    let future = SMA_CONFIG.replace("[account]", "from = \"2030-01-01\"\n[account]");
    std::fs::write(dir.join("future.toml"), future).unwrap();
    let o = keel(
        &["backtest", "--config", "future.toml", "--out", "keep"],
        dir,
    );
    assert_clean_failure(&o, 1, &["no candles"]);
    assert!(segment_bytes(&dir.join("keep/journal")) == before);
    let mut leftovers: Vec<String> = std::fs::read_dir(dir.join("keep"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    leftovers.sort();
    assert_eq!(
        leftovers,
        ["journal", "report.html", "report.json"],
        "no staging left behind"
    );
    let v = assert_ok(&keel(&["replay", "verify", "keep/journal"], dir));
    assert!(v.contains("0 divergences"));
}

#[test]
fn usage_errors_and_unsafe_symbols_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let o = keel(&["data", "import", "--format", "parquet", "x.csv"], dir);
    assert_clean_failure(&o, 1, &["parquet"]);
    std::fs::write(
        dir.join("one.csv"),
        "time,open,high,low,close,volume\n60,1,1,1,1,1\n",
    )
    .unwrap();
    for symbol in ["..", "/tmp/evil"] {
        let o = keel(
            &[
                "data",
                "import",
                "--format",
                "csv",
                "one.csv",
                "--symbol",
                symbol,
                "--interval",
                "1m",
                "--store",
                "store",
            ],
            dir,
        );
        assert_clean_failure(&o, 1, &["symbol"]);
    }
    assert!(!dir.join("store").exists() && !dir.join("1m").exists());
}

#[test]
fn damage_to_the_last_record_is_not_reported_as_ok() {
    let tmp = bundled_run("run");
    let dir = tmp.path();
    let journal = dir.join("run/journal");
    let info = keel_journal::inspect(&journal).unwrap();
    let seg = info.segments.last().unwrap();
    // Inside the final checkpoint's digest, a few bytes before the end of the records.
    let offset = usize::try_from(seg.bytes_used).unwrap() - 20;
    let path = journal.join(&seg.file_name);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[offset] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    let o = keel(&["journal", "verify", journal.to_str().unwrap()], dir);
    assert_clean_failure(&o, 2, &["TORN TAIL", &seg.file_name]);
    let o = keel(&["replay", "verify", journal.to_str().unwrap()], dir);
    assert!(
        !o.status.success(),
        "replay must not vouch for a damaged journal"
    );
}

/// Every configuration shipped in examples/ runs on the bundled data and verifies.
#[test]
fn every_example_config_runs_and_replays_without_divergence() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    import_bundled(dir);
    let examples = Path::new(common::ROOT).join("examples");
    std::fs::create_dir(dir.join("examples")).unwrap();
    let mut ran = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        // Same relative layout as the repository: examples/X.toml with store = "../store".
        std::fs::copy(&path, dir.join("examples").join(&name)).unwrap();
        let config = format!("examples/{name}");
        let out = format!("runs/{name}");
        if name.starts_with("sweep") {
            let table = assert_ok(&keel(&["sweep", "--config", &config, "--out", &out], dir));
            assert!(
                table.contains("rank") && !table.contains("skipped"),
                "{name}: {table}"
            );
            let first = std::fs::read_dir(dir.join(&out))
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.join("journal").is_dir())
                .expect("a run directory");
            let journal = first.join("journal");
            let v = assert_ok(&keel(&["replay", "verify", journal.to_str().unwrap()], dir));
            assert!(v.contains("0 divergences"), "{name}: {v}");
            ran += 1;
            continue;
        }
        let summary = assert_ok(&keel(
            &["backtest", "--config", &config, "--out", &out],
            dir,
        ));
        assert!(summary.contains("trades"), "{name}: {summary}");
        let v = assert_ok(&keel(&["replay", "verify", &format!("{out}/journal")], dir));
        assert!(v.contains("0 divergences"), "{name}: {v}");
        ran += 1;
    }
    assert!(ran >= 5, "expected an example per strategy, ran {ran}");
}

/// Every point of a sweep is an ordinary backtest: its digest equals a standalone
/// `keel backtest` with the same parameters; invalid points are skipped with the reason.
#[test]
fn sweep_points_are_ordinary_backtests_ranked_by_the_metric() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    import_bundled(dir);
    let base = SMA_CONFIG.replace("[account]", "to = \"2022-01-08\"\n[account]");
    let sweep = format!(
        "{base}\n[sweep]\nrank_by = \"total_return_pct\"\n[sweep.grid]\n\
         \"strategy.fast\" = [10, 30]\n\"strategy.slow\" = [20, 60]\n"
    );
    std::fs::write(dir.join("sweep.toml"), &sweep).unwrap();
    let out = assert_ok(&keel(
        &[
            "sweep",
            "--config",
            "sweep.toml",
            "--out",
            "sw",
            "--jobs",
            "2",
        ],
        dir,
    ));
    assert!(out.contains("4 runs"), "{out}");
    // Re-running into the same directory replaces the sweep ...
    assert_ok(&keel(
        &["sweep", "--config", "sweep.toml", "--out", "sw"],
        dir,
    ));
    // ... but a directory holding anything else is never cleared, sweep.csv or not.
    std::fs::create_dir(dir.join("mixed")).unwrap();
    std::fs::write(dir.join("mixed/sweep.csv"), "x").unwrap();
    std::fs::write(dir.join("mixed/thesis.tex"), "precious").unwrap();
    let o = keel(&["sweep", "--config", "sweep.toml", "--out", "mixed"], dir);
    assert_clean_failure(&o, 1, &["thesis.tex"]);
    assert!(dir.join("mixed/thesis.tex").exists());
    let csv = std::fs::read_to_string(dir.join("sw/sweep.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 4);
    // fast 30 / slow 20 is invalid; it is listed last, skipped.
    let skipped: Vec<_> = rows
        .iter()
        .filter(|r| r.last().unwrap().contains("skipped"))
        .collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(
        (
            skipped[0][col("strategy.fast")],
            skipped[0][col("strategy.slow")]
        ),
        ("30", "20")
    );
    assert!(
        rows[3].last().unwrap().contains("must be smaller"),
        "{:?}",
        rows[3]
    );
    // Ranked by total return, highest first.
    let returns: Vec<f64> = rows[..3]
        .iter()
        .map(|r| r[col("total_return_pct")].parse().unwrap())
        .collect();
    assert!(returns.windows(2).all(|w| w[0] >= w[1]), "{returns:?}");
    // Each point equals the standalone backtest with its parameters.
    for r in &rows[..3] {
        let (fast, slow) = (r[col("strategy.fast")], r[col("strategy.slow")]);
        let single = base
            .replace("fast = 20", &format!("fast = {fast}"))
            .replace("slow = 100", &format!("slow = {slow}"));
        std::fs::write(dir.join("one.toml"), single).unwrap();
        assert_ok(&keel(
            &["backtest", "--config", "one.toml", "--out", "one"],
            dir,
        ));
        let report = report(&dir.join("one"));
        assert_eq!(
            report["digest"].as_str().unwrap(),
            r[col("digest")],
            "{fast}/{slow}"
        );
        let run = format!("sw/{}/journal", r[col("run")]);
        let v = assert_ok(&keel(&["replay", "verify", &run], dir));
        assert!(v.contains("0 divergences"), "{v}");
    }
}

/// Two symbols carrying the same bars signal on the same bars. Candles merge by time, then
/// symbol, so BTCCOPY (sorted first) always decides first: with room for one position every
/// BTCUSDT entry is refused for `max_positions`; with room for two both trade identically.
#[test]
fn several_symbols_merge_in_time_then_symbol_order_under_max_positions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::import_bundled_as(dir, "BTCUSDT");
    common::import_bundled_as(dir, "BTCCOPY");
    let config = |max_positions: u32| {
        format!(
            r#"
[data]
store = "store"
symbols = ["BTCUSDT", "BTCCOPY"]
interval = "1m"
to = "2022-01-08"
[account]
starting_balance = 10000
[strategy]
kind = "sma_cross"
fast = 20
slow = 100
[execution]
taker_fee_bps = 5
lot_size = 0.001
[risk]
max_positions = {max_positions}
"#
        )
    };
    std::fs::write(dir.join("one.toml"), config(1)).unwrap();
    std::fs::write(dir.join("two.toml"), config(2)).unwrap();
    assert_ok(&keel(
        &["backtest", "--config", "one.toml", "--out", "one"],
        dir,
    ));
    assert_ok(&keel(
        &["backtest", "--config", "two.toml", "--out", "two"],
        dir,
    ));

    let one = report(&dir.join("one"));
    assert_eq!(one["symbols"], serde_json::json!(["BTCUSDT", "BTCCOPY"]));
    let by_symbol = one["by_symbol"].as_array().unwrap();
    assert_eq!(by_symbol.len(), 1, "{by_symbol:?}");
    assert_eq!(by_symbol[0]["name"], "BTCCOPY");
    let copy_trades = by_symbol[0]["trades"].as_u64().unwrap();
    assert!(
        copy_trades > 3,
        "too few trades to mean anything: {copy_trades}"
    );
    let open = one["open_positions"].as_array().unwrap().len() as u64;
    let refused = one["entries_rejected"]["max_positions"].as_u64().unwrap();
    // One refusal per BTCCOPY entry: its closed trades plus a position still open.
    assert_eq!(refused, copy_trades + open);

    let two = report(&dir.join("two"));
    let rows = two["by_symbol"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["trades"], rows[1]["trades"]);
    assert_eq!(rows[0]["pnl"], rows[1]["pnl"]);
    assert!(two["entries_rejected"].get("max_positions").is_none());
    // Every bar of both symbols reached the core.
    assert_eq!(two["candles"].as_u64().unwrap(), 2 * one_symbol_bars(dir));
}

/// Bars of BTCUSDT in the first week (to 2022-01-08), from a single-symbol run.
fn one_symbol_bars(dir: &Path) -> u64 {
    let text = SMA_CONFIG.replace(
        "interval = \"1m\"",
        "interval = \"1m\"\nto = \"2022-01-08\"",
    );
    std::fs::write(dir.join("single.toml"), text).unwrap();
    assert_ok(&keel(
        &["backtest", "--config", "single.toml", "--out", "single"],
        dir,
    ));
    report(&dir.join("single"))["candles"].as_u64().unwrap()
}

/// Every input of a run journal, in order.
fn journal_inputs(dir: &Path) -> Vec<keel_engine::Event> {
    let mut reader = Reader::open(dir).unwrap();
    let mut out = Vec::new();
    while let Some(rec) = reader.next().unwrap() {
        if let Decoded::Input(e) = decode(rec.seq, rec.kind, rec.ver, rec.payload).unwrap() {
            out.push(e);
        }
    }
    out
}

/// A perpetual backtest on freqtrade's real XRP/USDT:USDT 5-minute futures bars with its
/// real 8-hour funding rates. Each funding settlement in the run journal is checked against
/// the source files: the rate is the funding file's for that time, the mark is the open of
/// the 5-minute bar starting at it (from the candle file), and the amount is
/// −position × mark × rate with the position summed from the journal's fills.
#[test]
fn perpetual_backtest_settles_real_funding_rates_against_the_position() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let fixtures = Path::new(common::ROOT).join("tests/fixtures");
    let candles = fixtures.join("XRP_USDT_USDT-5m-futures.csv");
    let funding = fixtures.join("XRP_USDT_USDT-8h-funding_rate.csv");
    assert_ok(&keel(
        &[
            "data",
            "import",
            "--format",
            "csv",
            candles.to_str().unwrap(),
            "--symbol",
            "XRPUSDT",
            "--interval",
            "5m",
            "--store",
            "store",
        ],
        dir,
    ));
    let config = format!(
        r#"
[data]
store = "store"
symbol = "XRPUSDT"
interval = "5m"
funding = "{}"
[account]
starting_balance = 1000
[strategy]
kind = "ema_cross"
fast = 5
slow = 20
[market]
type = "perpetual"
leverage = 3
direction = "long_short"
[execution]
taker_fee_bps = 5
lot_size = 0.1
[risk]
max_exposure = 2.0
"#,
        funding.display()
    );
    std::fs::write(dir.join("perp.toml"), config).unwrap();
    assert_ok(&keel(
        &["backtest", "--config", "perp.toml", "--out", "perp"],
        dir,
    ));
    let r = report(&dir.join("perp"));
    let shorts = r["trade_list"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["side"] == "short")
        .count();
    assert!(shorts > 0, "a long_short run shorts: {:?}", r["trade_list"]);

    // The source files, read here.
    let opens: std::collections::BTreeMap<String, String> = std::fs::read_to_string(&candles)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0][..16].to_string(), f[1].to_string()) // "2021-11-18 08:00" → open
        })
        .collect();
    let rates: std::collections::BTreeMap<String, String> = std::fs::read_to_string(&funding)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0][..16].to_string(), f[1].to_string())
        })
        .collect();
    let mut position = keel_engine::Fixed::ZERO;
    let mut settled = 0;
    let mut total = keel_engine::Fixed::ZERO;
    for e in journal_inputs(&dir.join("perp/journal")) {
        match e {
            keel_engine::Event::Fill(f) => match f.side {
                keel_engine::event::Side::Buy => position += f.qty,
                keel_engine::event::Side::Sell => position -= f.qty,
            },
            keel_engine::Event::Funding(p) => {
                let minute = chrono::DateTime::from_timestamp_nanos(p.ts_event_ns)
                    .format("%Y-%m-%d %H:%M")
                    .to_string();
                let fx = |s: &str| keel_engine::Fixed::parse(s).unwrap();
                assert_eq!(p.rate, fx(&rates[&minute]), "rate at {minute}");
                assert_eq!(p.mark, fx(&opens[&minute]), "mark at {minute}");
                assert_eq!(p.position, position, "position at {minute}");
                let want = -(position.checked_mul(p.mark).unwrap())
                    .checked_mul(p.rate)
                    .unwrap();
                assert_eq!(p.amount, want, "amount at {minute}");
                settled += 1;
                total += p.amount;
            }
            _ => {}
        }
    }
    // Funding every 8 h from 2021-11-18 00:00 while the bars run (to 2021-11-21 22:35).
    assert!(settled >= 10, "only {settled} settlements");
    assert!((r["funding"].as_f64().unwrap() - total.to_f64()).abs() < 1e-9);
}

/// A backtest's journal refers to the candle store's records: `replay verify` reads the bars
/// back from the store the run used, from another copy of it with `--store`, and refuses a
/// store that is missing or holds different records, saying which; `--embed-candles` makes
/// a journal that needs no store.
#[test]
fn a_run_journal_reads_its_bars_from_the_store_it_names() {
    let tmp = bundled_run("a");
    let dir = tmp.path();
    let journal = dir.join("a/journal");
    let j = journal.to_str().unwrap();
    let v = assert_ok(&keel(&["replay", "verify", j], dir));
    assert!(v.contains("0 divergences"), "{v}");

    // The store moved: refused with where it was looked for, then verified with --store.
    std::fs::rename(dir.join("store"), dir.join("moved")).unwrap();
    let o = keel(&["replay", "verify", j], dir);
    assert_clean_failure(&o, 1, &["candle store", "BTCUSDT 1m", "--store"]);
    let v = assert_ok(&keel(&["replay", "verify", j, "--store", "moved"], dir));
    assert!(v.contains("0 divergences"), "{v}");
    assert!(v.contains("bars read from the candle store moved"), "{v}");
    // replay diff reads them the same way.
    let o = keel(&["replay", "diff", "--journal", j], dir);
    assert_clean_failure(&o, 1, &["candle store", "--store"]);
    let (out, err) = text(&keel(
        &["replay", "diff", "--journal", j, "--store", "moved"],
        dir,
    ));
    assert!(!err.contains("candle store"), "{out}{err}");
    assert!(out.contains("orders compared, 0 differ"), "{out}{err}");

    // A store re-imported without the first ten bars: its records are not the run's.
    let csv = std::fs::read_to_string(Path::new(common::ROOT).join(common::BUNDLED_CSV)).unwrap();
    let mut lines: Vec<&str> = csv.lines().collect();
    lines.drain(1..11);
    std::fs::write(dir.join("cut.csv"), lines.join("\n") + "\n").unwrap();
    assert_ok(&keel(
        &[
            "data",
            "import",
            "--format",
            "csv",
            "cut.csv",
            "--symbol",
            "BTCUSDT",
            "--interval",
            "1m",
            "--store",
            "other",
        ],
        dir,
    ));
    let o = keel(&["replay", "verify", j, "--store", "other"], dir);
    assert_clean_failure(&o, 1, &["not the store the run read", "CRC"]);

    // Embedded bars: verifies with no store at all.
    std::fs::rename(dir.join("moved"), dir.join("store")).unwrap();
    assert_ok(&keel(
        &[
            "backtest",
            "--config",
            "sma.toml",
            "--out",
            "e",
            "--embed-candles",
        ],
        dir,
    ));
    std::fs::remove_dir_all(dir.join("store")).unwrap();
    let v = assert_ok(&keel(
        &["replay", "verify", dir.join("e/journal").to_str().unwrap()],
        dir,
    ));
    assert!(v.contains("0 divergences"), "{v}");
    let inspect = assert_ok(&keel(
        &[
            "journal",
            "inspect",
            dir.join("e/journal").to_str().unwrap(),
        ],
        dir,
    ));
    assert!(!inspect.contains("candle_ref"), "{inspect}");
    assert!(!v.contains("candle store"), "{v}");
}
