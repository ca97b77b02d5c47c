//! `keel data push` end to end through the binary, into a real PostgreSQL server.
//!
//! Expected values come from the bundled source CSV (string splitting, no keel code), and
//! what landed in PostgreSQL is read back with tokio-postgres. Tests that need a server are
//! `#[ignore]`d so the README's test command passes on a machine without one; `.ci/run` starts
//! a throwaway cluster, sets `KEEL_TEST_PG_URL` (a URL with a password, to a server that
//! checks it) and runs them with `--ignored`. Each test uses its own table, so they run in
//! parallel.

mod common;

use std::path::Path;

use common::{BUNDLED_CSV, ROOT, assert_ok, import_bundled, keel, text};
use tokio_postgres::{NoTls, Row};

const BUNDLED_BARS: usize = 45_031;
/// A password no test server has; it must never show up in keel's output.
const WRONG_PASSWORD: &str = "Wr0ngPassw0rd-not-this-one";

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
