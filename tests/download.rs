//! `keel data download` end to end: the real binary against the loopback mock venue
//! (`keel_adapters::mock`), never the internet. Expected bars are the series handed to the mock,
//! read back from the store with `keel data export --format csv` and compared as text.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use keel_adapters::mock::{Fault, MockBar, MockConfig, MockVenue};
use keel_adapters::model::Venue;

const KEEL: &str = env!("CARGO_BIN_EXE_keel");
const MIN: i64 = 60_000;
/// 2024-01-01T00:00:00Z in ms.
const T0: i64 = 1_704_067_200_000;

/// A decimal from hundredths, written the shortest way (`101.5`, `99`, `0.07`).
fn cents(v: i64) -> String {
    canon(&format!("{}.{:02}", v / 100, v % 100))
}

/// Trailing zeros (and a bare point) removed, as keel prints decimals.
fn canon(text: &str) -> String {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text.to_string()
    }
}

/// `n` one-minute bars from `T0`, skipping the indices in `holes`.
fn series(n: i64, holes: std::ops::Range<i64>) -> Vec<MockBar> {
    (0..n)
        .filter(|i| !holes.contains(i))
        .map(|i| {
            let open = 10_000 + (i * 37) % 900;
            let close = 10_000 + (i * 53) % 900;
            MockBar {
                open_time_ms: T0 + i * MIN,
                open: cents(open),
                high: cents(open.max(close) + 25),
                low: cents(open.min(close) - 25),
                close: cents(close),
                volume: canon(&format!("{}.{:08}", i % 97, (i * 7_919) % 100_000_000)),
            }
        })
        .collect()
}

fn start(venue: Venue, symbol: &str, bars: Vec<MockBar>, now_ms: i64) -> MockVenue {
    let mut config = MockConfig::new(venue, symbol, MIN, bars);
    config.now_ms = Some(now_ms);
    MockVenue::start(config).expect("mock venue starts")
}

/// The venue clock inside the last bar: that bar is still forming.
fn inside_last(bars: &[MockBar]) -> i64 {
    bars.last().expect("bars").open_time_ms + 30_000
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("time")
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn keel(args: &[&str], dir: &Path) -> Output {
    Command::new(KEEL)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("keel runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn download(mock: &MockVenue, venue: &str, symbol: &str, extra: &[&str], dir: &Path) -> Output {
    let url = mock.url();
    let from = iso(T0);
    let mut args = vec![
        "data",
        "download",
        "--venue",
        venue,
        "--symbol",
        symbol,
        "--interval",
        "1m",
        "--from",
        &from,
        "--store",
        "store",
        "--base-url",
        &url,
    ];
    args.extend_from_slice(extra);
    keel(&args, dir)
}

fn assert_ok(o: &Output) -> String {
    let (out, err) = text(o);
    assert!(o.status.success(), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.is_empty(),
        "no progress or noise on a non-terminal stderr: {err}"
    );
    out
}

/// The stored series as rows of `open_time, open, high, low, close, volume`.
fn stored(dir: &Path, symbol: &str) -> Vec<[String; 6]> {
    let out = keel(
        &[
            "data",
            "export",
            "--format",
            "csv",
            "--store",
            "store",
            "--symbol",
            symbol,
            "--interval",
            "1m",
            "--out",
            "bars.csv",
        ],
        dir,
    );
    let (stdout, stderr) = text(&out);
    if !out.status.success() {
        assert!(
            stderr.contains("no candles") || stderr.contains("no bars"),
            "{stderr}"
        );
        return Vec::new();
    }
    assert!(stdout.contains("bars written"), "{stdout}");
    let csv = std::fs::read_to_string(dir.join("bars.csv")).expect("export file");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("open_time,open,high,low,close,volume,close_time")
    );
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            [f[0], f[1], f[2], f[3], f[4], f[5]].map(canon)
        })
        .collect()
}

fn expected(bars: &[MockBar]) -> Vec<[String; 6]> {
    bars.iter()
        .map(|b| {
            [
                iso(b.open_time_ms),
                canon(&b.open),
                canon(&b.high),
                canon(&b.low),
                canon(&b.close),
                canon(&b.volume),
            ]
        })
        .collect()
}

/// Downloads the whole series (to a time after it, the last bar forming) and checks that the
/// store holds every bar but the forming one, exactly.
fn downloads_all_closed_bars(
    venue: Venue,
    symbol: &str,
    n: i64,
    extra: &[&str],
    kraken_page: Option<usize>,
) -> Vec<keel_adapters::mock::RecordedRequest> {
    let dir = tempfile::tempdir().unwrap();
    let bars = series(n, 0..0);
    let mut config = MockConfig::new(venue, symbol, MIN, bars.clone());
    config.now_ms = Some(inside_last(&bars));
    if let Some(p) = kraken_page {
        config.kraken_page = p;
    }
    let mock = MockVenue::start(config).unwrap();
    let to = iso(T0 + (n + 10) * MIN);
    let mut args = vec!["--to", to.as_str()];
    args.extend_from_slice(extra);
    let out = assert_ok(&download(&mock, venue.name(), symbol, &args, dir.path()));
    let closed = &bars[..bars.len() - 1];
    assert_eq!(stored(dir.path(), symbol), expected(closed), "{out}");
    assert!(
        out.contains(&format!("{} bars added", closed.len())),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "range {} → {}",
            iso(T0),
            iso(closed.last().unwrap().open_time_ms)
        )),
        "{out}"
    );
    assert!(!out.contains("gap"), "the series has none: {out}");
    let log = mock.requests();
    assert!(
        log.len() >= 2,
        "a multi-page download: {} requests",
        log.len()
    );
    log
}

#[test]
fn binance_spot_pages_forward_and_stores_the_series_exactly() {
    let log = downloads_all_closed_bars(Venue::BinanceSpot, "BTCUSDT", 2500, &[], None);
    let starts: Vec<i64> = log
        .iter()
        .map(|r| r.param("startTime").unwrap().parse().unwrap())
        .collect();
    assert_eq!(starts, [T0, T0 + 1000 * MIN, T0 + 2000 * MIN]);
    assert!(log.iter().all(|r| r.path == "/api/v3/klines"));
}

#[test]
fn binance_usdm_pages_forward_and_stores_the_series_exactly() {
    let log = downloads_all_closed_bars(Venue::BinanceUsdm, "BTCUSDT", 1500, &[], None);
    assert_eq!(log.len(), 2);
    assert!(log.iter().all(|r| r.path == "/fapi/v1/klines"));
}

#[test]
fn bybit_pages_through_forward_windows_and_stores_the_series_exactly() {
    let log = downloads_all_closed_bars(Venue::Bybit, "BTCUSDT", 2500, &[], None);
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|r| r.param("category") == Some("linear")));
    let windows: Vec<(i64, i64)> = log
        .iter()
        .map(|r| {
            let p = |k| r.param(k).unwrap().parse::<i64>().unwrap();
            ((p("start") - T0) / MIN, (p("end") + 1 - T0) / MIN)
        })
        .collect();
    assert_eq!(windows, [(0, 1000), (1000, 2000), (2000, 2510)]);
}

#[test]
fn okx_uses_history_then_recent_candles_and_stores_the_series_exactly() {
    let log = downloads_all_closed_bars(Venue::Okx, "BTC-USDT-SWAP", 1300, &[], None);
    let paths: Vec<&str> = log.iter().map(|r| r.path.as_str()).collect();
    let history = paths
        .iter()
        .filter(|p| p.ends_with("history-candles"))
        .count();
    assert!(history >= 2, "{paths:?}");
    assert!(
        paths.last().unwrap().ends_with("/market/candles"),
        "{paths:?}"
    );
}

#[test]
fn kraken_pages_with_since_and_stores_the_series_exactly() {
    // Kraken sends its whole window at once; a smaller answer makes the downloader page.
    let log = downloads_all_closed_bars(Venue::Kraken, "XBTUSD", 250, &[], Some(100));
    assert!(log.len() >= 3, "{}", log.len());
    // The public budget is one request a second.
    for w in log.windows(2) {
        assert!(w[1].at.duration_since(w[0].at) >= Duration::from_millis(900));
    }
}

#[test]
fn kraken_only_reaches_back_720_bars_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let bars = series(1000, 0..0);
    let mock = start(Venue::Kraken, "XBTUSD", bars.clone(), inside_last(&bars));
    let out = assert_ok(&download(&mock, "kraken", "XBTUSD", &[], dir.path()));
    assert_eq!(stored(dir.path(), "XBTUSD"), expected(&bars[280..999]));
    assert!(out.contains("only its latest 720 bars"), "{out}");
    assert!(
        out.contains(&format!(
            "280 bars from {} to {}",
            iso(T0),
            iso(T0 + 280 * MIN)
        )),
        "{out}"
    );
}

#[test]
fn an_interrupted_download_keeps_its_pages_and_resumes_without_refetching_them() {
    let dir = tempfile::tempdir().unwrap();
    let bars = series(3000, 0..0);
    let mock = start(Venue::BinanceSpot, "BTCUSDT", bars.clone(), T0 + 4000 * MIN);
    // Two pages answer, then every connection drops mid-answer.
    mock.inject(2, usize::MAX, Fault::DropMidResponse);
    let to = iso(T0 + 3000 * MIN);
    let args = ["--to", to.as_str(), "--retries", "1"];
    let out = download(&mock, "binance-spot", "BTCUSDT", &args, dir.path());
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("stopped after 2 pages (2000 bars added and kept"),
        "{stderr}"
    );
    assert!(
        stderr.contains("run the same command again to resume"),
        "{stderr}"
    );
    assert!(
        stderr.contains("binance-spot GET /api/v3/klines?symbol=BTCUSDT"),
        "{stderr}"
    );
    assert!(stderr.contains("unknown outcome"), "{stderr}");
    assert!(stderr.contains("gave up after 2 attempts"), "{stderr}");
    assert_eq!(stored(dir.path(), "BTCUSDT"), expected(&bars[..2000]));

    mock.clear_faults();
    let before = mock.requests().len();
    let out = assert_ok(&download(
        &mock,
        "binance-spot",
        "BTCUSDT",
        &args,
        dir.path(),
    ));
    assert!(
        out.contains("1000 bars added, 0 already present, 1 page (1 request, 0 retries)"),
        "{out}"
    );
    let rerun = &mock.requests()[before..];
    assert_eq!(rerun.len(), 1, "only the missing page is fetched");
    assert_eq!(
        rerun[0].param("startTime"),
        Some(&*(T0 + 2000 * MIN).to_string())
    );
    assert_eq!(stored(dir.path(), "BTCUSDT"), expected(&bars));

    // A finished range fetches nothing.
    let before = mock.requests().len();
    let out = assert_ok(&download(
        &mock,
        "binance-spot",
        "BTCUSDT",
        &args,
        dir.path(),
    ));
    assert!(out.contains("up to date, nothing fetched"), "{out}");
    assert_eq!(mock.requests().len(), before);
    assert_eq!(stored(dir.path(), "BTCUSDT"), expected(&bars));
}

/// One fault at the second request; the download still completes.
fn survives(fault: Fault, extra: &[&str]) -> (MockVenue, String) {
    let dir = tempfile::tempdir().unwrap();
    let bars = series(1500, 0..0);
    let mock = start(Venue::BinanceSpot, "BTCUSDT", bars.clone(), T0 + 2000 * MIN);
    mock.inject(1, 1, fault);
    let to = iso(T0 + 1500 * MIN);
    let mut args = vec!["--to", to.as_str()];
    args.extend_from_slice(extra);
    let out = assert_ok(&download(
        &mock,
        "binance-spot",
        "BTCUSDT",
        &args,
        dir.path(),
    ));
    assert_eq!(stored(dir.path(), "BTCUSDT"), expected(&bars));
    assert!(out.contains("(3 requests, 1 retry)"), "{out}");
    (mock, out)
}

fn waited_out_retry_after(mock: &MockVenue) {
    assert!(
        mock.early_requests().is_empty(),
        "{:?}",
        mock.early_requests()
    );
    let log = mock.requests();
    assert_eq!(log.len(), 3);
    assert!(log[2].at.duration_since(log[1].at) >= Duration::from_secs(1));
    assert_eq!(log[2].query, log[1].query, "the same page asked again");
}

#[test]
fn a_429_is_retried_no_earlier_than_its_retry_after() {
    let (mock, _) = survives(
        Fault::RateLimited {
            retry_after_secs: 1,
        },
        &[],
    );
    waited_out_retry_after(&mock);
}

#[test]
fn a_418_ban_is_honoured_until_its_retry_after() {
    let (mock, _) = survives(
        Fault::Banned {
            retry_after_secs: 1,
        },
        &[],
    );
    waited_out_retry_after(&mock);
}

#[test]
fn a_500_is_retried() {
    survives(Fault::ServerError, &[]);
}

#[test]
fn a_stall_past_the_timeout_is_retried() {
    survives(Fault::Stall { ms: 5_000 }, &["--timeout-ms", "500"]);
}

#[test]
fn a_garbage_answer_stops_with_a_clear_error_and_keeps_earlier_pages() {
    let dir = tempfile::tempdir().unwrap();
    let bars = series(1500, 0..0);
    let mock = start(Venue::BinanceSpot, "BTCUSDT", bars.clone(), T0 + 2000 * MIN);
    mock.inject(1, usize::MAX, Fault::Garbage);
    let to = iso(T0 + 1500 * MIN);
    let out = download(&mock, "binance-spot", "BTCUSDT", &["--to", &to], dir.path());
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.starts_with("error: download of binance-spot BTCUSDT 1m stopped"),
        "{stderr}"
    );
    assert!(
        stderr.contains("GET /api/v3/klines?symbol=BTCUSDT"),
        "{stderr}"
    );
    assert!(
        stderr.contains("HTTP 200: malformed binance klines"),
        "{stderr}"
    );
    assert_eq!(stored(dir.path(), "BTCUSDT"), expected(&bars[..1000]));
}

#[test]
fn a_garbage_answer_from_bybit_is_an_unknown_outcome_retried_then_reported() {
    let dir = tempfile::tempdir().unwrap();
    let bars = series(100, 0..0);
    let mock = start(Venue::Bybit, "BTCUSDT", bars.clone(), inside_last(&bars));
    mock.inject(0, usize::MAX, Fault::Garbage);
    let out = download(&mock, "bybit", "BTCUSDT", &["--retries", "1"], dir.path());
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("failed, no bars added"), "{stderr}");
    assert!(
        stderr.contains("bybit GET /v5/market/kline?category=linear"),
        "{stderr}"
    );
    assert!(stderr.contains("not a Bybit response"), "{stderr}");
    assert_eq!(mock.requests().len(), 2);
    assert!(stored(dir.path(), "BTCUSDT").is_empty());
}

#[test]
fn an_unknown_symbol_is_reported_with_the_venue_text() {
    let dir = tempfile::tempdir().unwrap();
    let mock = start(
        Venue::BinanceSpot,
        "BTCUSDT",
        series(10, 0..0),
        T0 + 20 * MIN,
    );
    let out = download(&mock, "binance-spot", "ETHUSDT", &[], dir.path());
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("HTTP 400: unknown symbol: Invalid symbol."),
        "{stderr}"
    );
    assert_eq!(mock.requests().len(), 1, "not retried");
}

#[test]
fn gaps_the_venue_returns_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let bars = series(1200, 500..510);
    let mock = start(Venue::BinanceSpot, "BTCUSDT", bars.clone(), T0 + 1300 * MIN);
    let to = iso(T0 + 1300 * MIN);
    let out = assert_ok(&download(
        &mock,
        "binance-spot",
        "BTCUSDT",
        &["--to", &to],
        dir.path(),
    ));
    assert_eq!(stored(dir.path(), "BTCUSDT"), expected(&bars));
    assert!(
        out.contains("2 gaps in what the venue returned (110 bars missing)"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "10 bars from {} to {}",
            iso(T0 + 500 * MIN),
            iso(T0 + 510 * MIN)
        )),
        "{out}"
    );
    // The venue's data ends at bar 1199 although the range and its clock go further.
    assert!(
        out.contains(&format!(
            "100 bars from {} to {}",
            iso(T0 + 1200 * MIN),
            iso(T0 + 1300 * MIN)
        )),
        "{out}"
    );
}

#[test]
fn bad_arguments_are_refused_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let mock = start(
        Venue::BinanceSpot,
        "BTCUSDT",
        series(10, 0..0),
        T0 + 20 * MIN,
    );
    for (args, says) in [
        (vec!["--interval", "7m"], "not a Binance kline interval"),
        (vec!["--category", "spot"], "--category is for bybit only"),
        (vec!["--to", "2023-12-31"], "is not before --to"),
    ] {
        let url = mock.url();
        let mut all = vec![
            "data",
            "download",
            "--venue",
            "binance-spot",
            "--symbol",
            "BTCUSDT",
            "--from",
            "2024-01-01",
            "--store",
            "store",
            "--base-url",
            &url,
        ];
        if !args.contains(&"--interval") {
            all.extend(["--interval", "1m"]);
        }
        all.extend(args.iter().copied());
        let out = keel(&all, dir.path());
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(says), "{says}: {stderr}");
    }
    let out = keel(
        &[
            "data",
            "download",
            "--venue",
            "ftx",
            "--symbol",
            "X",
            "--interval",
            "1m",
            "--from",
            "2024-01-01",
            "--store",
            "store",
        ],
        dir.path(),
    );
    assert!(text(&out).1.contains("unknown venue \"ftx\""));
    assert!(mock.requests().is_empty());
}

#[test]
fn bybit_walks_past_a_hole_longer_than_a_window_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let bars = series(2000, 100..1500);
    let mock = start(Venue::Bybit, "BTCUSDT", bars.clone(), inside_last(&bars));
    let out = assert_ok(&download(&mock, "bybit", "BTCUSDT", &[], dir.path()));
    assert_eq!(
        stored(dir.path(), "BTCUSDT"),
        expected(&bars[..bars.len() - 1])
    );
    assert!(
        out.contains(&format!(
            "1400 bars from {} to {}",
            iso(T0 + 100 * MIN),
            iso(T0 + 1500 * MIN)
        )),
        "{out}"
    );
    let starts: Vec<i64> = mock
        .requests()
        .iter()
        .map(|r| (r.param("start").unwrap().parse::<i64>().unwrap() - T0) / MIN)
        .collect();
    assert_eq!(starts, [0, 100, 1100]);
}
