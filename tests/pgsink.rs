//! `keel data push` end to end through the binary, into a real PostgreSQL server.
//!
//! Expected values come from the bundled source CSV (string splitting, no keel code), and
//! what landed in PostgreSQL is read back with tokio-postgres. Tests that need a server are
//! `#[ignore]`d so the README's test command passes on a machine without one; `.ci/run` starts
//! a throwaway cluster, sets `KEEL_TEST_PG_URL` (a URL with a password, to a server that
//! checks it) and runs them with `--ignored`. Each test uses its own table, so they run in
//! parallel, except the one that restarts the server (it needs `KEEL_TEST_PG_DATA` and
//! `KEEL_TEST_PG_BIN`, the cluster's data directory and PostgreSQL's bin directory), which
//! waits for the others to finish and makes them wait.
//!
//! The session sink's tests feed it through its non-blocking API, as a session would, and
//! compare what landed with what was given: decimals as the server's `numeric(38,8)` text
//! against the raw integers formatted here, times as integer microseconds since the epoch.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use common::{BUNDLED_CSV, ROOT, assert_ok, import_bundled, keel, text};
use keel::pgsink::{
    Hypertable, PgSink, PgSinkError, PushSummary, SessionSinkConfig, SinkStats, spawn_session_sink,
};
use keel_engine::event::{Fill, Liquidity, Side};
use keel_engine::{Candle, Fixed, Symbol};
use tokio_postgres::{NoTls, Row};

const BUNDLED_BARS: usize = 45_031;
/// A password no test server has; it must never show up in keel's output.
const WRONG_PASSWORD: &str = "Wr0ngPassw0rd-not-this-one";

/// Held (shared) by every test that talks to the server; the restart test holds it alone.
static SERVER: RwLock<()> = RwLock::new(());

fn shared_server() -> RwLockReadGuard<'static, ()> {
    // A poisoned lock only means another test failed.
    SERVER.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive_server() -> RwLockWriteGuard<'static, ()> {
    SERVER.write().unwrap_or_else(|e| e.into_inner())
}

fn pg_url() -> String {
    std::env::var("KEEL_TEST_PG_URL").unwrap_or_else(|_| {
        panic!(
            "KEEL_TEST_PG_URL is unset: these tests need a PostgreSQL server with password \
             authentication, e.g. postgres://keel:PASSWORD@127.0.0.1:54329/postgres \
             (.ci/run starts one)"
        )
    })
}

/// The password inside `KEEL_TEST_PG_URL` (`postgres://user:password@host...`).
fn pg_password() -> String {
    let url = pg_url();
    let rest = url.split_once("://").map_or("", |(_, r)| r);
    let userinfo = rest.split_once('@').map_or("", |(u, _)| u);
    match userinfo.split_once(':') {
        Some((_, password)) if !password.is_empty() => password.to_string(),
        _ => panic!("KEEL_TEST_PG_URL must be postgres://USER:PASSWORD@HOST:PORT/DB"),
    }
}

/// Runs `statements` (`;`-separated, no results) or one query on the test server.
fn sql(query: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> Vec<Row> {
    let url = pg_url();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&url, NoTls)
            .await
            .expect("the test server at KEEL_TEST_PG_URL accepts connections");
        tokio::spawn(connection);
        client
            .query(query, params)
            .await
            .unwrap_or_else(|e| panic!("{query}: {e:?}"))
    })
}

/// A table name of this test and process, dropped first so re-runs start clean.
fn fresh_table(test: &str) -> String {
    let table = format!("keel_test_{test}_{}", std::process::id());
    sql(&format!("DROP TABLE IF EXISTS {table}"), &[]);
    table
}

fn count(table: &str) -> i64 {
    sql(&format!("SELECT count(*) FROM {table}"), &[])[0].get(0)
}

fn push(dir: &Path, table: &str, range: &[&str]) -> std::process::Output {
    let url = pg_url();
    let mut args = vec![
        "data",
        "push",
        "--postgres",
        &url,
        "--store",
        "store",
        "--symbol",
        "BTCUSDT",
        "--interval",
        "1m",
        "--table",
        table,
    ];
    args.extend_from_slice(range);
    keel(&args, dir)
}

/// One line of the bundled CSV: `YYYY-MM-DD HH:MM:SS` and open, high, low, close, volume as
/// written there.
#[derive(Clone, Debug, PartialEq)]
struct Bar {
    time: String,
    values: [String; 5],
}

fn source_bars() -> Vec<Bar> {
    let text = std::fs::read_to_string(Path::new(ROOT).join(BUNDLED_CSV)).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("timestamp,open,high,low,close,volume"));
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 6, "{line}");
            // `2021-12-31 23:01:00.000000`: whole minutes, so the seconds part is the time.
            assert!(f[0].ends_with(".000000"), "{line}");
            Bar {
                time: f[0][..19].to_string(),
                values: [1, 2, 3, 4, 5].map(|i| f[i].to_string()),
            }
        })
        .collect()
}

/// Source bars opening in `[from, to)`, times as `YYYY-MM-DD HH:MM:SS`.
fn source_range(from: &str, to: &str) -> Vec<Bar> {
    source_bars()
        .into_iter()
        .filter(|b| b.time.as_str() >= from && b.time.as_str() < to)
        .collect()
}

/// A decimal as an integer count of 1e-8, rounded half away from zero past 8 places (the
/// source has float artifacts such as `218102.59507500002`, which import rounds this way).
fn units8(text: &str) -> i128 {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let mut kept: String = frac.chars().take(8).collect();
    while kept.len() < 8 {
        kept.push('0');
    }
    let mut units = int.parse::<i128>().unwrap() * 100_000_000 + kept.parse::<i128>().unwrap();
    if frac.as_bytes().get(8).is_some_and(|&d| d >= b'5') {
        units += 1;
    }
    if neg { -units } else { units }
}

/// The table's rows in time order, as the source CSV would write them.
fn stored_bars(table: &str) -> Vec<Bar> {
    let rows = sql(
        &format!(
            "SELECT symbol, \"interval\",
                    to_char(open_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                    open::text, high::text, low::text, close::text, volume::text
             FROM {table} ORDER BY open_time"
        ),
        &[],
    );
    rows.iter()
        .map(|r| {
            assert_eq!(r.get::<_, &str>(0), "BTCUSDT");
            assert_eq!(r.get::<_, &str>(1), "1m");
            Bar {
                time: r.get(2),
                values: [3, 4, 5, 6, 7].map(|i| r.get::<_, String>(i)),
            }
        })
        .collect()
}

/// Compares bars by time and exact decimal value.
fn assert_same_bars(stored: &[Bar], source: &[Bar]) {
    assert_eq!(stored.len(), source.len(), "row count");
    for (k, (s, want)) in stored.iter().zip(source).enumerate() {
        assert_eq!(s.time, want.time, "row {k}");
        for (field, (got, exp)) in ["open", "high", "low", "close", "volume"]
            .iter()
            .zip(s.values.iter().zip(&want.values))
        {
            assert_eq!(
                units8(got),
                units8(exp),
                "{field} of the bar at {}: stored {got}, source {exp}",
                want.time
            );
        }
    }
}

fn server_has_timescaledb() -> bool {
    sql(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')",
        &[],
    )[0]
    .get(0)
}

fn line_value<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .unwrap_or_else(|| panic!("no `{key}` line in:\n{out}"))
        .trim()
}

#[test]
#[ignore = "needs PostgreSQL; .ci/run installs it and runs these with --ignored"]
fn pushes_every_bundled_bar_exactly_as_the_source_csv_has_it() {
    let _server = shared_server();
    let dir = tempfile::tempdir().unwrap();
    import_bundled(dir.path());
    let table = fresh_table("all");

    let out = assert_ok(&push(dir.path(), &table, &[]));

    let source = source_bars();
    assert_eq!(source.len(), BUNDLED_BARS);
    assert!(
        line_value(&out, "bars sent:").starts_with(&format!("{BUNDLED_BARS} ")),
        "{out}"
    );
    assert_eq!(line_value(&out, "inserted:"), BUNDLED_BARS.to_string());
    assert_eq!(line_value(&out, "already present:"), "0");
    let hypertable = line_value(&out, "hypertable:");
    if server_has_timescaledb() {
        assert_eq!(hypertable, "yes", "{out}");
    } else {
        assert!(hypertable.starts_with("no ("), "{out}");
    }
    assert!(!out.contains(&pg_password()), "password printed:\n{out}");
    assert!(out.contains(":***@"), "{out}");

    assert_eq!(count(&table), BUNDLED_BARS as i64);
    let stored = stored_bars(&table);
    // First and last rows against the CSV's first and last lines, spelled out, then all.
    assert_eq!(stored[0].time, "2021-12-31 23:01:00");
    assert_eq!(units8(&stored[0].values[3]), units8("46377.0"));
    assert_eq!(stored[BUNDLED_BARS - 1].time, "2022-02-01 05:31:00");
    assert_eq!(
        units8(&stored[BUNDLED_BARS - 1].values[4]),
        units8("685906.9735")
    );
    assert_same_bars(&stored, &source);
    sql(&format!("DROP TABLE {table}"), &[]);
}

#[test]
#[ignore = "needs PostgreSQL; .ci/run installs it and runs these with --ignored"]
fn re_pushing_is_idempotent_and_a_wider_range_adds_only_the_new_bars() {
    let _server = shared_server();
    let dir = tempfile::tempdir().unwrap();
    import_bundled(dir.path());
    let table = fresh_table("again");
    let day = source_range("2022-01-10", "2022-01-11");
    let two_days = source_range("2022-01-10", "2022-01-12");
    assert!(!day.is_empty() && two_days.len() > day.len());

    let first = assert_ok(&push(
        dir.path(),
        &table,
        &["--from", "2022-01-10", "--to", "2022-01-11"],
    ));
    assert_eq!(line_value(&first, "inserted:"), day.len().to_string());
    assert_eq!(count(&table), day.len() as i64);

    let again = assert_ok(&push(
        dir.path(),
        &table,
        &["--from", "2022-01-10", "--to", "2022-01-11"],
    ));
    assert_eq!(line_value(&again, "inserted:"), "0");
    assert_eq!(
        line_value(&again, "already present:"),
        day.len().to_string()
    );
    assert_eq!(count(&table), day.len() as i64);

    let wider = assert_ok(&push(
        dir.path(),
        &table,
        &["--from", "2022-01-10", "--to", "2022-01-12"],
    ));
    assert_eq!(
        line_value(&wider, "inserted:"),
        (two_days.len() - day.len()).to_string()
    );
    assert_eq!(
        line_value(&wider, "already present:"),
        day.len().to_string()
    );
    assert_same_bars(&stored_bars(&table), &two_days);
    sql(&format!("DROP TABLE {table}"), &[]);
}

#[test]
#[ignore = "needs PostgreSQL; .ci/run installs it and runs these with --ignored"]
fn a_row_with_different_values_is_reported_by_time_and_nothing_is_overwritten() {
    let _server = shared_server();
    let dir = tempfile::tempdir().unwrap();
    import_bundled(dir.path());
    let table = fresh_table("conflict");
    let first_hour = source_range("2022-01-10 00:00:00", "2022-01-10 01:00:00");
    assert_ok(&push(
        dir.path(),
        &table,
        &[
            "--from",
            "2022-01-10T00:00:00Z",
            "--to",
            "2022-01-10T01:00:00Z",
        ],
    ));

    // By hand: the 01:30 bar with the source's values except the close.
    let hand = source_range("2022-01-10 01:30:00", "2022-01-10 01:31:00");
    let [open, high, low, _, volume] = &hand[0].values;
    let hand_close = "12345.6789";
    sql(
        &format!(
            "INSERT INTO {table} VALUES ('BTCUSDT', '1m', '2022-01-10 01:30:00+00',
             $1::text::numeric, $2::text::numeric, $3::text::numeric, $4::text::numeric,
             $5::text::numeric)"
        ),
        &[open, high, low, &hand_close, volume],
    );
    let before = stored_bars(&table);
    assert_eq!(before.len(), first_hour.len() + 1);

    let o = push(
        dir.path(),
        &table,
        &[
            "--from",
            "2022-01-10T00:00:00Z",
            "--to",
            "2022-01-10T03:00:00Z",
        ],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.contains("bar at 2022-01-10T01:30:00Z conflicts"),
        "{err}"
    );
    assert!(err.contains("close: stored 12345.6789, pushed "), "{err}");
    for same in ["open:", "high:", "low:", "volume:"] {
        assert!(!err.contains(same), "{same} is not a difference: {err}");
    }
    assert!(!err.contains(&pg_password()), "{err}");

    // Nothing overwritten, and nothing else from that push written.
    assert_eq!(stored_bars(&table), before);
    assert_same_bars(&before[..first_hour.len()], &first_hour);
    sql(&format!("DROP TABLE {table}"), &[]);
}

#[test]
#[ignore = "needs PostgreSQL; .ci/run installs it and runs these with --ignored"]
fn a_wrong_password_is_refused_without_printing_either_password() {
    let _server = shared_server();
    let dir = tempfile::tempdir().unwrap();
    import_bundled(dir.path());
    let right = pg_password();
    let url = pg_url().replacen(&format!(":{right}@"), &format!(":{WRONG_PASSWORD}@"), 1);
    let o = keel(
        &[
            "data",
            "push",
            "--postgres",
            &url,
            "--store",
            "store",
            "--symbol",
            "BTCUSDT",
            "--interval",
            "1m",
        ],
        dir.path(),
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("refused the login"), "{err}");
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(err.contains(":***@"), "{err}");
    for secret in [WRONG_PASSWORD, right.as_str()] {
        assert!(!out.contains(secret) && !err.contains(secret), "{err}");
    }
}

#[test]
#[ignore = "needs PostgreSQL; .ci/run installs it and runs these with --ignored"]
fn the_password_can_come_from_pgpassword_instead_of_the_url() {
    let _server = shared_server();
    let dir = tempfile::tempdir().unwrap();
    import_bundled(dir.path());
    let table = fresh_table("pgpassword");
    let password = pg_password();
    let url = pg_url().replacen(&format!(":{password}@"), "@", 1);
    let o = std::process::Command::new(common::KEEL)
        .args(["data", "push", "--postgres", &url, "--store", "store"])
        .args(["--symbol", "BTCUSDT", "--interval", "1m", "--table", &table])
        .args(["--to", "2022-01-01"])
        .env("PGPASSWORD", &password)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let out = assert_ok(&o);
    let bars = source_range("2021", "2022-01-01 00:00:00").len();
    assert_eq!(line_value(&out, "inserted:"), bars.to_string());
    assert!(!out.contains(&password), "{out}");
    assert_eq!(count(&table), bars as i64);
    sql(&format!("DROP TABLE {table}"), &[]);
}

/// Runs `keel data push` of `symbol` 1m with `url` and `extra` arguments on a freshly imported
/// store; these fail before any server is needed.
fn push_without_server(url: &str, symbol: &str, extra: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    import_bundled(dir.path());
    let mut args = vec![
        "data",
        "push",
        "--postgres",
        url,
        "--store",
        "store",
        "--symbol",
        symbol,
        "--interval",
        "1m",
    ];
    args.extend_from_slice(extra);
    let o = keel(&args, dir.path());
    let (out, err) = text(&o);
    assert!(out.is_empty(), "{out}");
    (o.status.code(), err)
}

#[test]
fn a_malformed_url_is_refused_without_printing_its_password() {
    for url in [
        "postgres://keel:Sup3rSecretPw@127.0.0.1:notaport/db",
        "host=127.0.0.1 password=Sup3rSecretPw port=notaport",
    ] {
        let (code, err) = push_without_server(url, "BTCUSDT", &[]);
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains("is not valid"), "{err}");
        assert!(err.contains("invalid value for option `port`"), "{err}");
        assert!(!err.contains("Sup3rSecretPw"), "{err}");
        assert!(err.contains("***"), "{err}");
    }
}

#[test]
fn a_refused_connection_names_the_server_but_not_the_password() {
    // Port 1 on loopback: nothing listens there, and only root could.
    let (code, err) = push_without_server(
        "postgres://keel:Sup3rSecretPw@127.0.0.1:1/db",
        "BTCUSDT",
        &[],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("cannot connect to PostgreSQL at postgres://keel:***@127.0.0.1:1/db"),
        "{err}"
    );
    assert!(err.contains("is PostgreSQL running"), "{err}");
    assert!(!err.contains("Sup3rSecretPw"), "{err}");
}

#[test]
fn a_table_name_that_is_not_a_plain_identifier_is_refused_before_connecting() {
    for table in [
        "candles; DROP TABLE candles",
        "1m_candles",
        "public.candles",
        "",
    ] {
        // Port 1: were it to connect, the message would be a connection error instead.
        let (code, err) = push_without_server(
            "postgres://keel:pw@127.0.0.1:1/db",
            "BTCUSDT",
            &["--table", table],
        );
        assert_eq!(code, Some(1), "{err}");
        assert!(
            err.contains(&format!("table name `{table}` is refused")),
            "{err}"
        );
    }
}

#[test]
fn a_missing_series_is_named_before_connecting() {
    let (code, err) = push_without_server("postgres://keel:pw@127.0.0.1:1/db", "ETHUSDT", &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("no candles for ETHUSDT 1m in store store"),
        "{err}"
    );
}

#[test]
fn tls_is_refused_as_not_supported_yet() {
    let (code, err) = push_without_server(
        "postgres://keel:pw@127.0.0.1:1/db?sslmode=require",
        "BTCUSDT",
        &[],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("does not support yet"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Fills, and the session sink.

const SESSION: &str = "paper-2024-05-01";
/// 2024-05-01T00:00:00Z.
const MAY_2024_NS: i64 = 1_714_521_600_000_000_000;
const MINUTE_NS: i64 = 60_000_000_000;
/// Long enough for any healthy server; only a broken sink gets near it.
const PATIENCE: Duration = Duration::from_secs(120);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// `raw` 1e-8 units as PostgreSQL prints a `numeric(38,8)`: `-0.50000000`.
fn numeric_text(raw: i64) -> String {
    let sign = if raw < 0 { "-" } else { "" };
    let abs = raw.unsigned_abs();
    format!("{sign}{}.{:08}", abs / 100_000_000, abs % 100_000_000)
}

fn symbol(text: &str) -> Symbol {
    Symbol::new(text).unwrap()
}

/// `n` fills, two per order, with prices and quantities using all eight decimals, a
/// negative fee (a maker rebate) now and then, ids above 2^32, and times with nanoseconds.
fn sample_fills(n: u64, first_trade: u64) -> Vec<Fill> {
    (0..n)
        .map(|k| Fill {
            client_id: 1_000 + k / 2,
            venue_order_id: 9_000_000_000 + k / 2,
            trade_id: first_trade + k,
            symbol: symbol(if k % 3 == 0 { "ETHUSDT" } else { "BTCUSDT" }),
            side: if k % 2 == 0 { Side::Buy } else { Side::Sell },
            price: Fixed::from_raw(4_637_712_345_678 + 1_000_003 * k as i64),
            qty: Fixed::from_raw(1_234 + k as i64),
            fee: Fixed::from_raw(if k % 4 == 3 {
                -(17 + k as i64)
            } else {
                23 + k as i64
            }),
            liquidity: if k % 4 == 3 {
                Liquidity::Maker
            } else {
                Liquidity::Taker
            },
            ts_event_ns: MAY_2024_NS + k as i64 * 1_000_000 + (k as i64 % 7) * 1_001,
        })
        .collect()
}

/// `n` one-minute bars alternating between two symbols.
fn sample_candles(n: i64) -> Vec<Candle> {
    (0..n)
        .map(|k| {
            let base = 6_000_012_345_678 + 100_001 * k;
            Candle {
                symbol: symbol(if k % 2 == 0 { "BTCUSDT" } else { "ETHUSDT" }),
                open_time_ns: MAY_2024_NS + (k / 2) * MINUTE_NS,
                interval_ns: MINUTE_NS,
                open: Fixed::from_raw(base),
                high: Fixed::from_raw(base + 99_999_999),
                low: Fixed::from_raw(base - 1),
                close: Fixed::from_raw(base + 12_345),
                volume: Fixed::from_raw(987_654_321 + k),
            }
        })
        .collect()
}

/// A stored fill: its text columns as the server prints them, `ts` in microseconds.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct FillRow {
    session: String,
    symbol: String,
    trade_id: i64,
    client_id: i64,
    venue_order_id: i64,
    side: String,
    /// price, qty, fee.
    values: [String; 3],
    liquidity: String,
    ts_us: i64,
}

fn expected_fill(session: &str, f: &Fill) -> FillRow {
    FillRow {
        session: session.to_string(),
        symbol: f.symbol.to_string(),
        trade_id: f.trade_id as i64,
        client_id: f.client_id as i64,
        venue_order_id: f.venue_order_id as i64,
        side: match f.side {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
        .to_string(),
        values: [f.price, f.qty, f.fee].map(|x| numeric_text(x.raw())),
        liquidity: match f.liquidity {
            Liquidity::Maker => "maker",
            Liquidity::Taker => "taker",
        }
        .to_string(),
        // timestamptz holds microseconds; the sink truncates.
        ts_us: f.ts_event_ns.div_euclid(1_000),
    }
}

fn expected_fills(session: &str, fills: &[Fill]) -> Vec<FillRow> {
    let mut rows: Vec<FillRow> = fills.iter().map(|f| expected_fill(session, f)).collect();
    rows.sort();
    rows
}

fn stored_fills(table: &str) -> Vec<FillRow> {
    let rows = sql(
        &format!(
            "SELECT session, symbol, trade_id, client_id, venue_order_id, side,
                    price::text, qty::text, fee::text, liquidity,
                    (extract(epoch FROM ts) * 1000000)::bigint
             FROM {table}"
        ),
        &[],
    );
    let mut rows: Vec<FillRow> = rows
        .iter()
        .map(|r| FillRow {
            session: r.get(0),
            symbol: r.get(1),
            trade_id: r.get(2),
            client_id: r.get(3),
            venue_order_id: r.get(4),
            side: r.get(5),
            values: [6, 7, 8].map(|i| r.get::<_, String>(i)),
            liquidity: r.get(9),
            ts_us: r.get(10),
        })
        .collect();
    rows.sort();
    rows
}

/// A stored bar: symbol, interval, open time in microseconds, open, high, low, close, volume.
type CandleRow = (String, String, i64, [String; 5]);

fn expected_candles(candles: &[Candle]) -> Vec<CandleRow> {
    let mut rows: Vec<CandleRow> = candles
        .iter()
        .map(|c| {
            assert_eq!(c.interval_ns, MINUTE_NS);
            (
                c.symbol.to_string(),
                "1m".to_string(),
                c.open_time_ns / 1_000,
                [c.open, c.high, c.low, c.close, c.volume].map(|x| numeric_text(x.raw())),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn stored_candles(table: &str) -> Vec<CandleRow> {
    let rows = sql(
        &format!(
            "SELECT symbol, \"interval\", (extract(epoch FROM open_time) * 1000000)::bigint,
                    open::text, high::text, low::text, close::text, volume::text
             FROM {table}"
        ),
        &[],
    );
    let mut rows: Vec<CandleRow> = rows
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get(2),
                [3, 4, 5, 6, 7].map(|i| r.get::<_, String>(i)),
            )
        })
        .collect();
    rows.sort();
    rows
}

/// Connects a [`PgSink`] with its fill table ready and runs `body` with it.
fn with_fill_sink<T>(table: &str, body: impl AsyncFnOnce(&mut PgSink) -> T) -> T {
    runtime().block_on(async {
        let mut sink = PgSink::connect(&pg_url()).await.unwrap();
        let hypertable = sink.ensure_fills_schema(table).await.unwrap();
        assert!(matches!(hypertable, Hypertable::No(_)), "{hypertable}");
        body(&mut sink).await
    })
}

fn session_config(candles_table: &str, fills_table: &str) -> SessionSinkConfig {
    SessionSinkConfig {
        candles_table: candles_table.to_string(),
        fills_table: fills_table.to_string(),
        // Small batches and a short pause, so a test spans many batches and flushes.
        batch_max: 64,
        flush_every: Duration::from_millis(20),
        ..SessionSinkConfig::new(pg_url(), SESSION)
    }
}

/// Waits, within [`PATIENCE`], until `done` holds for the sink's stats; returns them.
fn wait_for(what: &str, stats: impl Fn() -> SinkStats, done: impl Fn(&SinkStats) -> bool) {
    let start = Instant::now();
    loop {
        let now = stats();
        if done(&now) {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "still waiting for {what}: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
#[ignore = "needs PostgreSQL; .ci/run installs it and runs these with --ignored"]
fn fills_are_stored_exactly_with_numeric_decimals_and_microsecond_times() {
    let _server = shared_server();
    let table = fresh_table("fills");
    let fills = sample_fills(500, 7_000_000_000_000);

    let summary = with_fill_sink(&table, async |sink| {
        sink.push_fills(SESSION, &fills).await.unwrap()
    });

    assert_eq!(
        summary,
        PushSummary {
            sent: 500,
            inserted: 500,
            already_present: 0
        }
    );
    let stored = stored_fills(&table);
    assert_eq!(stored, expected_fills(SESSION, &fills));
    // Spelled out once: a rebate, a sub-microsecond time truncated.
    let rebate = stored
        .iter()
        .find(|r| r.trade_id == 7_000_000_000_003)
        .unwrap();
    assert_eq!(rebate.values[2], "-0.00000020");
    assert_eq!(rebate.liquidity, "maker");
    assert_eq!(rebate.ts_us, MAY_2024_NS / 1_000 + 3_000 + 3);
    let key = sql(
        &format!(
            "SELECT a.attname::text FROM pg_index i
             JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             WHERE i.indrelid = '{table}'::regclass AND i.indisprimary ORDER BY k.n"
        ),
        &[],
    );
    let key: Vec<String> = key.iter().map(|r| r.get(0)).collect();
    assert_eq!(key, ["session", "symbol", "trade_id", "client_id"]);
    sql(&format!("DROP TABLE {table}"), &[]);
}

#[test]
#[ignore = "needs PostgreSQL; .ci/run installs it and runs these with --ignored"]
fn re_pushing_identical_fills_is_a_no_op_and_a_conflicting_fill_is_named_and_nothing_written() {
    let _server = shared_server();
    let table = fresh_table("fills_again");
    let fills = sample_fills(40, 500);
    let mut changed = fills[17];
    changed.price = Fixed::from_raw(changed.price.raw() + 1);
    let new = sample_fills(1, 10_000)[0];

    let (again, conflict, other_session) = with_fill_sink(&table, async |sink| {
        sink.push_fills(SESSION, &fills).await.unwrap();
        let again = sink.push_fills(SESSION, &fills).await.unwrap();
        let conflict = sink.push_fills(SESSION, &[new, changed]).await.unwrap_err();
        // The same trade in another session is another fill.
        let other = sink
            .push_fills("another-session", &[changed])
            .await
            .unwrap();
        (again, conflict, other)
    });

    assert_eq!(
        again,
        PushSummary {
            sent: 40,
            inserted: 0,
            already_present: 40
        }
    );
    assert_eq!(other_session.inserted, 1);
    assert!(
        matches!(conflict, PgSinkError::FillConflict(_)),
        "{conflict:?}"
    );
    let message = conflict.to_string();
    let named = format!(
        "fill of session {SESSION}, {} trade {} of order {}, conflicts with the row already \
         in table {table}",
        changed.symbol, changed.trade_id, changed.client_id
    );
    assert!(message.contains(&named), "{message}");
    let price = format!(
        "price: stored {}, pushed {}",
        fills[17].price, changed.price
    );
    assert!(message.contains(&price), "{message}");
    for same in [
        "venue_order_id:",
        "side:",
        "qty:",
        "fee:",
        "liquidity:",
        "ts:",
    ] {
        assert!(
            !message.contains(same),
            "{same} is not a difference: {message}"
        );
    }
    let mut want = expected_fills(SESSION, &fills);
    want.push(expected_fill("another-session", &changed));
    want.sort();
    assert_eq!(
        stored_fills(&table),
        want,
        "nothing overwritten, the new fill not written"
    );
    sql(&format!("DROP TABLE {table}"), &[]);
}

#[test]
#[ignore = "needs PostgreSQL; .ci/run installs it and runs these with --ignored"]
fn the_session_sink_writes_every_candle_and_fill_it_is_given() {
    let _server = shared_server();
    let candles_table = fresh_table("sink_c");
    let fills_table = fresh_table("sink_f");
    let candles = sample_candles(1_000);
    let fills = sample_fills(300, 1);
    let rt = runtime();
    let (sink, task) =
        spawn_session_sink(session_config(&candles_table, &fills_table), rt.handle());

    // From another thread, as the engine's would, interleaved.
    let feeder = {
        let (sink, candles, fills) = (sink.clone(), candles.clone(), fills.clone());
        std::thread::spawn(move || {
            let mut fills = fills.iter();
            for (k, c) in candles.iter().enumerate() {
                assert!(sink.candle(c), "candle {k} refused");
                if k % 3 == 0
                    && let Some(f) = fills.next()
                {
                    assert!(sink.fill(f), "a fill refused");
                }
            }
            for f in fills {
                assert!(sink.fill(f), "a fill refused");
            }
        })
    };
    feeder.join().unwrap();
    let stats = rt.block_on(task.shutdown(PATIENCE));

    assert_eq!(
        stats,
        SinkStats {
            candles_written: 1_000,
            fills_written: 300,
            ..SinkStats::default()
        }
    );
    assert_eq!(sink.stats(), stats);
    assert_eq!(stored_candles(&candles_table), expected_candles(&candles));
    assert_eq!(stored_fills(&fills_table), expected_fills(SESSION, &fills));
    // Shut down: rows are refused, and counted.
    assert!(!sink.candle(&candles[0]));
    assert_eq!(sink.stats().dropped, 1);
    sql(&format!("DROP TABLE {candles_table}"), &[]);
    sql(&format!("DROP TABLE {fills_table}"), &[]);
}

#[test]
#[ignore = "needs PostgreSQL; .ci/run installs it and runs these with --ignored"]
fn a_fill_conflicting_with_the_table_is_rejected_alone_and_the_rest_of_its_batch_lands() {
    let _server = shared_server();
    let candles_table = fresh_table("reject_c");
    let fills_table = fresh_table("reject_f");
    let fills = sample_fills(50, 100);
    let mut stored_first = fills[20];
    stored_first.qty = Fixed::from_raw(42);
    with_fill_sink(&fills_table, async |sink| {
        sink.push_fills(SESSION, &[stored_first]).await.unwrap();
    });
    let rt = runtime();
    let (sink, task) =
        spawn_session_sink(session_config(&candles_table, &fills_table), rt.handle());

    for f in &fills {
        assert!(sink.fill(f));
    }
    let stats = rt.block_on(task.shutdown(PATIENCE));

    assert_eq!(
        (stats.fills_written, stats.rejected, stats.dropped),
        (49, 1, 0)
    );
    assert_eq!(stats.errors, 1, "{stats:?}");
    let error = stats.last_error.unwrap();
    assert!(
        error.contains(&format!(
            "trade {} of order {}",
            fills[20].trade_id, fills[20].client_id
        )),
        "{error}"
    );
    assert!(error.contains("qty: stored 0.00000042, pushed "), "{error}");
    let mut want: Vec<Fill> = fills.clone();
    want[20] = stored_first;
    assert_eq!(stored_fills(&fills_table), expected_fills(SESSION, &want));
    sql(&format!("DROP TABLE {candles_table}"), &[]);
    sql(&format!("DROP TABLE {fills_table}"), &[]);
}

/// Feeds `first`, waits until it is written, runs `interrupt`, feeds `second`, shuts down,
/// and checks every row landed exactly and the interruption was noticed.
fn survives(test: &str, config: SessionSinkConfig, interrupt: impl FnOnce()) {
    let (candles_table, fills_table) = (config.candles_table.clone(), config.fills_table.clone());
    let candles = sample_candles(400);
    let fills = sample_fills(200, 1);
    let rt = runtime();
    let (sink, task) = spawn_session_sink(config, rt.handle());
    let feed = |from: usize, to: usize| {
        for c in &candles[from * 2..to * 2] {
            assert!(sink.candle(c));
        }
        for f in &fills[from..to] {
            assert!(sink.fill(f));
        }
    };

    feed(0, 100);
    wait_for(
        "the first half",
        || sink.stats(),
        |s| (s.candles_written, s.fills_written) == (200, 100),
    );
    assert_eq!(sink.stats().errors, 0, "{test}: {:?}", sink.stats());
    interrupt();
    feed(100, 200);
    let stats = rt.block_on(task.shutdown(PATIENCE));

    assert_eq!(
        (
            stats.candles_written,
            stats.fills_written,
            stats.dropped,
            stats.rejected
        ),
        (400, 200, 0, 0),
        "{test}: {stats:?}"
    );
    // The batch sent on the broken connection failed, at least.
    assert!(stats.errors >= 1, "{test}: {stats:?}");
    let error = stats.last_error.unwrap_or_default();
    assert!(error.contains("connect"), "{test}: {error}");
    assert!(!error.contains(&pg_password()), "{test}: {error}");
    assert_eq!(stored_candles(&candles_table), expected_candles(&candles));
    assert_eq!(stored_fills(&fills_table), expected_fills(SESSION, &fills));
    sql(&format!("DROP TABLE {candles_table}"), &[]);
    sql(&format!("DROP TABLE {fills_table}"), &[]);
}

#[test]
#[ignore = "needs PostgreSQL; .ci/run installs it and runs these with --ignored"]
fn the_session_sink_reconnects_and_resends_after_its_connection_is_killed() {
    let _server = shared_server();
    let app = format!("keel_test_killed_{}", std::process::id());
    let mut config = session_config(&fresh_table("killed_c"), &fresh_table("killed_f"));
    config.url = format!("{}?application_name={app}", pg_url());
    let backends = |what: &str| {
        let query = format!("SELECT {what} FROM pg_stat_activity WHERE application_name = $1");
        sql(&query, &[&app])
    };

    survives("killed", config, || {
        let killed = backends("pg_terminate_backend(pid)");
        assert_eq!(killed.len(), 1, "the sink holds one connection");
        let start = Instant::now();
        while !backends("pid").is_empty() {
            assert!(
                start.elapsed() < PATIENCE,
                "the sink's backend does not end"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    });
}

#[test]
#[ignore = "needs PostgreSQL; .ci/run installs it and runs these with --ignored"]
fn the_session_sink_rides_out_a_server_restart() {
    let (Ok(data), Ok(bin)) = (
        std::env::var("KEEL_TEST_PG_DATA"),
        std::env::var("KEEL_TEST_PG_BIN"),
    ) else {
        eprintln!(
            "skipped: restarting the server needs KEEL_TEST_PG_DATA (its data directory) and \
             KEEL_TEST_PG_BIN (PostgreSQL's bin directory); .ci/run exports both"
        );
        return;
    };
    // Every other test would see its connections cut.
    let _server = exclusive_server();
    let config = session_config(&fresh_table("restart_c"), &fresh_table("restart_f"));

    survives("restart", config, || {
        let data = PathBuf::from(&data);
        let dir = data.parent().expect("the data directory has a parent");
        let log = dir.join("server.log");
        let pg_ctl = Path::new(&bin).join("pg_ctl");
        let args = [
            "-D".as_ref(),
            data.as_os_str(),
            "-l".as_ref(),
            log.as_os_str(),
            "-m".as_ref(),
            "fast".as_ref(),
            "-w".as_ref(),
            "-t".as_ref(),
            "60".as_ref(),
            "restart".as_ref(),
        ];
        // PostgreSQL refuses to run as root: as root (CI), run it as its owner, like .ci/run.
        let mut command = if unsafe { libc::geteuid() } == 0 {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&pg_ctl);
            c
        } else {
            std::process::Command::new(&pg_ctl)
        };
        let out = command
            .args(args)
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("pg_ctl runs");
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "pg_ctl restart:\n{stdout}\n{stderr}");
    });
}

#[test]
#[ignore = "needs PostgreSQL; .ci/run installs it and runs these with --ignored"]
fn a_session_sink_refused_the_login_says_so_without_either_password() {
    let _server = shared_server();
    let right = pg_password();
    let mut config = session_config("keel_test_never_c", "keel_test_never_f");
    config.url = pg_url().replacen(&format!(":{right}@"), &format!(":{WRONG_PASSWORD}@"), 1);
    let rt = runtime();
    let (sink, task) = spawn_session_sink(config, rt.handle());

    wait_for("a refused login", || sink.stats(), |s| s.errors >= 1);
    let error = sink.stats().last_error.unwrap();
    assert!(sink.candle(&sample_candles(1)[0]));
    let stats = rt.block_on(task.shutdown(Duration::from_millis(50)));

    assert!(error.contains("refused the login"), "{error}");
    assert!(error.contains("password authentication failed"), "{error}");
    assert!(error.contains(":***@"), "{error}");
    assert_eq!((stats.candles_written, stats.dropped), (0, 1), "{stats:?}");
    for secret in [WRONG_PASSWORD, right.as_str()] {
        assert!(!error.contains(secret), "{error}");
        assert!(
            !stats.last_error.as_ref().unwrap().contains(secret),
            "{stats:?}"
        );
    }
}

/// Port 1 on loopback: nothing listens there, and only root could.
const UNREACHABLE: &str = "postgres://keel:Sup3rSecretPw@127.0.0.1:1/db";

#[test]
fn a_session_sink_whose_server_is_unreachable_keeps_taking_rows_and_reports_errors() {
    let rt = runtime();
    for (url, password) in [
        (UNREACHABLE, None),
        ("postgres://keel@127.0.0.1:1/db", Some("Sup3rSecretPw")),
    ] {
        let config = SessionSinkConfig {
            password: password.map(str::to_string),
            batch_max: 4,
            queue: 8,
            flush_every: Duration::from_millis(5),
            ..SessionSinkConfig::new(url, SESSION)
        };
        assert!(
            !format!("{config:?}").contains("Sup3rSecretPw"),
            "{config:?}"
        );
        let (sink, task) = spawn_session_sink(config, rt.handle());

        // Every call returns, whatever the writer is doing; the overflow is counted.
        let (candles, fills) = (sample_candles(100), sample_fills(100, 1));
        let accepted = candles.iter().filter(|c| sink.candle(c)).count()
            + fills.iter().filter(|f| sink.fill(f)).count();
        // Held: the queue (8) and at most one batch of each kind (4 + 4).
        assert!(accepted <= 16, "{accepted} rows accepted");
        wait_for("a connection error", || sink.stats(), |s| s.errors >= 1);
        let during = sink.stats();
        assert_eq!(during.dropped, 200 - accepted as u64, "{during:?}");
        let error = during.last_error.unwrap();
        assert!(
            error.contains("cannot connect to PostgreSQL at postgres://keel:***@127.0.0.1:1/db"),
            "{error}"
        );
        assert!(!error.contains("Sup3rSecretPw"), "{error}");

        let last = rt.block_on(task.shutdown(Duration::from_millis(50)));
        assert_eq!(
            (
                last.candles_written,
                last.fills_written,
                last.rejected,
                last.dropped
            ),
            (0, 0, 0, 200),
            "every row accounted for as dropped: {last:?}"
        );
        assert!(!last.last_error.unwrap().contains("Sup3rSecretPw"));
    }
}

#[test]
fn a_session_sink_with_a_bad_table_name_rejects_rows_and_says_why() {
    let rt = runtime();
    let config = SessionSinkConfig {
        fills_table: "fills; DROP TABLE candles".to_string(),
        ..SessionSinkConfig::new(UNREACHABLE, SESSION)
    };
    let refused = config.validate().unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("table name `fills; DROP TABLE candles` is refused")
    );
    let (sink, task) = spawn_session_sink(config, rt.handle());

    assert!(sink.fill(&sample_fills(1, 1)[0]));
    let stats = rt.block_on(task.shutdown(PATIENCE));

    assert_eq!(
        (stats.fills_written, stats.rejected, stats.dropped),
        (0, 1, 0)
    );
    assert!(stats.last_error.unwrap().contains("is refused"));
}

#[path = "common/paper.rs"]
mod paper;

/// A running `keel paper` session with a [postgres] section: every closed candle and every
/// fill it journals is in the database, with the journal's exact values.
#[test]
#[ignore = "needs a PostgreSQL server: set KEEL_TEST_PG_URL (.ci/run does)"]
fn a_paper_session_sinks_its_candles_and_fills_into_postgres() {
    let _server = shared_server();
    let dir = tempfile::tempdir().unwrap();
    let rows = paper::bundled_rows(300);
    let venue = paper::mock_venue(paper::binance_kline_frames(&rows), Duration::from_millis(2));
    let journal = dir.path().join("pg-session");
    let port = paper::free_port();
    let candles = fresh_table("paper_candles");
    let fills = fresh_table("paper_fills");
    // The URL without its password: the password comes from the environment variable.
    let url = pg_url().replacen(&format!(":{}@", pg_password()), "@", 1);
    let config = dir.path().join("paper.toml");
    let text = format!(
        "{}\n[postgres]\nurl = \"{url}\"\npassword_env = \"KEEL_TEST_PG_SECRET\"\ncandles_table = \"{candles}\"\nfills_table = \"{fills}\"\n",
        paper::session_config(&venue.url(), &journal, port, None)
    );
    std::fs::write(&config, text).unwrap();
    let err = dir.path().join("paper.err");
    let mut child = std::process::Command::new(common::KEEL)
        .args(["paper", "--config"])
        .arg(&config)
        .env("KEEL_TEST_PG_SECRET", pg_password())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let done = paper::wait_for(Duration::from_secs(60), || {
        (paper::candles(&journal) >= 300).then_some(())
    });
    paper::signal(child.id(), libc::SIGTERM);
    let status = paper::wait_for(Duration::from_secs(30), || child.try_wait().unwrap());
    let stderr = std::fs::read_to_string(&err).unwrap();
    assert!(
        done.is_some() && status.is_some_and(|s| s.success()),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&pg_password()),
        "the password leaked: {stderr}"
    );
    let journaled_fills = paper::fills(&journal);
    assert!(!journaled_fills.is_empty());
    assert_eq!(count(&candles), 300, "{stderr}");
    assert_eq!(count(&fills) as usize, journaled_fills.len(), "{stderr}");
    // Values exactly as journaled (numeric text against Fixed's decimal text).
    for f in &journaled_fills {
        let row = sql(
            &format!(
                "SELECT price::text, qty::text, fee::text, side FROM {fills} \
                 WHERE session = 'pg-session' AND trade_id = $1 AND client_id = $2"
            ),
            &[&(f.trade_id as i64), &(f.client_id as i64)],
        );
        assert_eq!(row.len(), 1, "fill {} missing", f.trade_id);
        let price: String = row[0].get(0);
        let qty: String = row[0].get(1);
        let fee: String = row[0].get(2);
        assert_eq!(Fixed::parse(&price).unwrap(), f.price);
        assert_eq!(Fixed::parse(&qty).unwrap(), f.qty);
        assert_eq!(Fixed::parse(&fee).unwrap(), f.fee);
    }
    sql(&format!("DROP TABLE {candles}; "), &[]);
    sql(&format!("DROP TABLE {fills}"), &[]);
}
