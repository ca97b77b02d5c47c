//! `keel data export` end to end through the binary, on the bundled month of BTC bars.
//! Expected values come from the bundled source CSV, read here with string splitting and
//! chrono, never from keel's own parsing or formatting.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{BUNDLED_CSV, ROOT, assert_ok, import_bundled, keel, text};
use parquet::basic::{LogicalType, TimeUnit, Type as PhysicalType};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::RowAccessor;

const MINUTE_NS: i64 = 60_000_000_000;
const BUNDLED_BARS: usize = 45_031;

/// One row of the bundled source CSV.
struct SourceBar {
    open_time_ns: i64,
    /// open, high, low, close, volume as written in the file.
    values: [String; 5],
}

fn source_bars() -> Vec<SourceBar> {
    let text = std::fs::read_to_string(Path::new(ROOT).join(BUNDLED_CSV)).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("timestamp,open,high,low,close,volume"));
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 6, "{line}");
            let t = chrono::NaiveDateTime::parse_from_str(f[0], "%Y-%m-%d %H:%M:%S%.f")
                .unwrap_or_else(|e| panic!("{line}: {e}"));
            SourceBar {
                open_time_ns: t.and_utc().timestamp_nanos_opt().unwrap(),
                values: [1, 2, 3, 4, 5].map(|i| f[i].to_string()),
            }
        })
        .collect()
}

fn ns(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap()
        .timestamp_nanos_opt()
        .unwrap()
}

fn iso(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// `text` as the shortest decimal with at most 8 places, rounded half away from zero:
/// `46319.0` -> `46319`. The store keeps 8 decimals, and the source has a few float
/// artifacts such as `218102.59507500002`, which import rounds this way.
fn decimal8(text: &str) -> String {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let int: i128 = if int.is_empty() {
        0
    } else {
        int.parse().unwrap()
    };
    let mut kept = frac.chars().take(8).collect::<String>();
    while kept.len() < 8 {
        kept.push('0');
    }
    let mut units = int * 100_000_000 + kept.parse::<i128>().unwrap();
    if frac.as_bytes().get(8).is_some_and(|&d| d >= b'5') {
        units += 1;
    }
    let (whole, part) = (units / 100_000_000, units % 100_000_000);
    let sign = if neg && units != 0 { "-" } else { "" };
    if part == 0 {
        format!("{sign}{whole}")
    } else {
        let part = format!("{part:08}");
        format!("{sign}{whole}.{}", part.trim_end_matches('0'))
    }
}

#[test]
fn decimal8_rounds_like_the_store() {
    assert_eq!(decimal8("46319.0"), "46319");
    assert_eq!(decimal8("2300413.7295"), "2300413.7295");
    assert_eq!(decimal8("218102.59507500002"), "218102.595075");
    assert_eq!(decimal8("0.000000015"), "0.00000002");
    assert_eq!(decimal8("-1.50"), "-1.5");
}

/// Runs `keel data export` in `dir` with the store at `dir/store`.
fn export(dir: &Path, format: &str, symbol: &str, extra: &[&str], out: &str) -> Output {
    let mut args = vec![
        "data",
        "export",
        "--format",
        format,
        "--store",
        "store",
        "--symbol",
        symbol,
        "--interval",
        "1m",
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    keel(&args, dir)
}

/// Asserts a failed run: exit 1, no panic, and stderr containing every one of `needles`.
fn assert_fails(o: &Output, needles: &[&str]) -> String {
    let (out, err) = text(o);
    assert_eq!(o.status.code(), Some(1), "stdout:\n{out}\nstderr:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks `{n}`:\n{err}");
    }
    err
}

/// Files in `dir` other than the store.
fn outputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap() != "store")
        .collect();
    files.sort();
    files
}

#[test]
fn csv_export_of_a_range_equals_the_source_rows() {
    let dir = tempfile::tempdir().unwrap();
    import_bundled(dir.path());
    let (from, to) = ("2022-01-10T00:00:00Z", "2022-01-20T12:00:00Z");
    let o = export(
        dir.path(),
        "csv",
        "BTCUSDT",
        &["--from", "2022-01-10", "--to", to],
        "btc.csv",
    );
    let stdout = assert_ok(&o);

    let expected: Vec<SourceBar> = source_bars()
        .into_iter()
        .filter(|b| b.open_time_ns >= ns(from) && b.open_time_ns < ns(to))
        .collect();
    // 10.5 days of contiguous minutes.
    assert_eq!(expected.len(), 15_120);
    assert_eq!(stdout.trim(), "15120 bars written to btc.csv");
    assert_eq!(outputs(dir.path()), [dir.path().join("btc.csv")]);

    let text = std::fs::read_to_string(dir.path().join("btc.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("open_time,open,high,low,close,volume,close_time")
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), expected.len());
    // Lines 13021 and 28140 of the source, `2022-01-10 00:00:00.000000,41869.0,41879.0,
    // 41853.0,41879.0,1013583.5273` and `2022-01-20 11:59:00.000000,42171.0,42175.0,42164.0,
    // 42164.0,668704.67`, spelled out; every row is compared with the source below.
    assert_eq!(
        rows[0],
        "2022-01-10T00:00:00Z,41869,41879,41853,41879,1013583.5273,2022-01-10T00:01:00Z"
    );
    assert_eq!(
        *rows.last().unwrap(),
        "2022-01-20T11:59:00Z,42171,42175,42164,42164,668704.67,2022-01-20T12:00:00Z"
    );
    for (i, (row, bar)) in rows.iter().zip(&expected).enumerate() {
        let mut want = vec![iso(bar.open_time_ns)];
        want.extend(bar.values.iter().map(|v| decimal8(v)));
        want.push(iso(bar.open_time_ns + MINUTE_NS));
        assert_eq!(*row, want.join(","), "row {i}");
    }
}

#[test]
fn csv_export_of_everything_and_re_export_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    import_bundled(dir.path());
    let source = source_bars();
    assert_eq!(source.len(), BUNDLED_BARS);

    assert_ok(&export(dir.path(), "csv", "BTCUSDT", &[], "btc.csv"));
    let text = std::fs::read_to_string(dir.path().join("btc.csv")).unwrap();
    assert_eq!(text.lines().count(), BUNDLED_BARS + 1);
    // The one value with more than 8 decimals in the first rows, rounded as stored.
    let artifact = source
        .iter()
        .position(|b| b.values[4] == "218102.59507500002")
        .unwrap();
    let line = text.lines().nth(artifact + 1).unwrap();
    assert!(line.contains(",218102.595075,"), "{line}");

    // A re-export replaces the file.
    let extra = ["--from", "2022-02-01T05:00:00Z"];
    assert_ok(&export(dir.path(), "csv", "BTCUSDT", &extra, "btc.csv"));
    let text = std::fs::read_to_string(dir.path().join("btc.csv")).unwrap();
    assert_eq!(text.lines().count(), 32 + 1);
    assert_eq!(outputs(dir.path()), [dir.path().join("btc.csv")]);
}

#[test]
fn parquet_export_equals_the_source_rows() {
    let dir = tempfile::tempdir().unwrap();
    import_bundled(dir.path());
    let stdout = assert_ok(&export(
        dir.path(),
        "parquet",
        "BTCUSDT",
        &[],
        "btc.parquet",
    ));
    assert_eq!(stdout.trim(), "45031 bars written to btc.parquet");
    let path = dir.path().join("btc.parquet");
    assert_eq!(outputs(dir.path()), std::slice::from_ref(&path));

    let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
    let meta = reader.metadata();
    assert_eq!(meta.file_metadata().num_rows(), BUNDLED_BARS as i64);
    let schema = meta.file_metadata().schema_descr();
    let names: Vec<&str> = schema.columns().iter().map(|c| c.name()).collect();
    assert_eq!(
        names,
        [
            "open_time",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "close_time"
        ]
    );
    let utc_nanos = LogicalType::timestamp(true, TimeUnit::NANOS);
    for c in schema.columns() {
        assert!(!c.self_type().is_optional(), "{} is required", c.name());
        if c.name().ends_with("_time") {
            assert_eq!(c.physical_type(), PhysicalType::INT64, "{}", c.name());
            assert_eq!(c.logical_type_ref(), Some(&utc_nanos), "{}", c.name());
        } else {
            assert_eq!(c.physical_type(), PhysicalType::DOUBLE, "{}", c.name());
            assert_eq!(c.logical_type_ref(), None, "{}", c.name());
        }
    }
    for g in meta.row_groups() {
        for c in g.columns() {
            assert_eq!(c.compression(), parquet::basic::Compression::SNAPPY);
        }
    }

    let source = source_bars();
    let mut rows = 0;
    for (i, (row, bar)) in reader.into_iter().zip(&source).enumerate() {
        let row = row.unwrap();
        assert_eq!(
            row.get_long(0).unwrap(),
            bar.open_time_ns,
            "row {i} open_time"
        );
        for (k, v) in bar.values.iter().enumerate() {
            // The double nearest the stored decimal, as any CSV reader would parse it.
            let want: f64 = decimal8(v).parse().unwrap();
            assert_eq!(
                row.get_double(k + 1).unwrap(),
                want,
                "row {i} column {}",
                k + 1
            );
        }
        assert_eq!(
            row.get_long(6).unwrap(),
            bar.open_time_ns + MINUTE_NS,
            "row {i} close_time"
        );
        rows += 1;
    }
    assert_eq!(rows, BUNDLED_BARS);
}

/// pyarrow is how pandas and polars users will read the file, so read it with pyarrow
/// too. It needs python3 with pyarrow, which a fresh machine lacks, so it is `#[ignore]`d in
/// the README's test command; `.ci/run` installs pyarrow and runs it with `--ignored`. Run
/// there, a missing pyarrow fails rather than skips, so the
/// check cannot silently stop running.
#[test]
#[ignore = "needs python3 with pyarrow; .ci/run installs it and runs this with --ignored"]
fn parquet_export_reads_in_pyarrow() {
    let probe = Command::new("python3")
        .args(["-c", "import pyarrow; print(pyarrow.__version__)"])
        .output();
    let problem = match &probe {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(text(o).1.lines().last().unwrap_or("").to_string()),
        Err(e) => Some(format!("cannot run python3: {e}")),
    };
    if let Some(problem) = problem {
        panic!(
            "this test needs python3 with pyarrow (`python3 -m pip install pyarrow`; \
             .ci/run installs a pinned version): {problem}"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    import_bundled(dir.path());
    let extra = ["--from", "2022-01-10", "--to", "2022-01-20T12:00:00Z"];
    assert_ok(&export(
        dir.path(),
        "parquet",
        "BTCUSDT",
        &extra,
        "btc.parquet",
    ));

    let script = "import sys, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
s = t.schema
print(t.num_rows)
print(s.field('open_time').type, s.field('close').type, s.field('close_time').type)
ot, c = t.column('open_time'), t.column('close')
print(ot[0].value, ot[-1].value)
print(repr(c[0].as_py()), repr(c[-1].as_py()))";
    let o = Command::new("python3")
        .args(["-c", script])
        .arg(dir.path().join("btc.parquet"))
        .output()
        .unwrap();
    let out = assert_ok(&o);
    let lines: Vec<&str> = out.lines().collect();

    let expected: Vec<SourceBar> = source_bars()
        .into_iter()
        .filter(|b| {
            b.open_time_ns >= ns("2022-01-10T00:00:00Z")
                && b.open_time_ns < ns("2022-01-20T12:00:00Z")
        })
        .collect();
    let (first, last) = (&expected[0], expected.last().unwrap());
    assert_eq!(lines[0], expected.len().to_string());
    assert_eq!(
        lines[1],
        "timestamp[ns, tz=UTC] double timestamp[ns, tz=UTC]"
    );
    assert_eq!(
        lines[2],
        format!("{} {}", first.open_time_ns, last.open_time_ns)
    );
    let close = |b: &SourceBar| decimal8(&b.values[3]).parse::<f64>().unwrap();
    let (a, b) = lines[3].split_once(' ').unwrap();
    assert_eq!(a.parse::<f64>().unwrap(), close(first), "first close");
    assert_eq!(b.parse::<f64>().unwrap(), close(last), "last close");
}

#[test]
fn unknown_symbol_fails_naming_store_symbol_and_interval() {
    let dir = tempfile::tempdir().unwrap();
    import_bundled(dir.path());
    let o = export(dir.path(), "csv", "ETHUSDT", &[], "eth.csv");
    assert_fails(&o, &["ETHUSDT", "1m", "store", "keel data import"]);
    assert!(outputs(dir.path()).is_empty());

    // A store that does not exist at all fails the same way.
    let o = keel(
        &[
            "data",
            "export",
            "--format",
            "parquet",
            "--store",
            "nowhere",
            "--symbol",
            "BTCUSDT",
            "--interval",
            "1m",
            "--out",
            "btc.parquet",
        ],
        dir.path(),
    );
    assert_fails(&o, &["BTCUSDT", "1m", "nowhere"]);
    assert!(outputs(dir.path()).is_empty());

    let o = export(dir.path(), "csv", "BTC USDT", &[], "x.csv");
    assert_fails(&o, &["--symbol", "BTC USDT"]);
    let o = keel(
        &[
            "data",
            "export",
            "--format",
            "csv",
            "--store",
            "store",
            "--symbol",
            "BTCUSDT",
            "--interval",
            "1x",
            "--out",
            "x.csv",
        ],
        dir.path(),
    );
    assert_fails(&o, &["--interval", "1x"]);
    assert!(outputs(dir.path()).is_empty());
}

#[test]
fn bad_dates_fail_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    import_bundled(dir.path());
    let o = export(
        dir.path(),
        "csv",
        "BTCUSDT",
        &["--from", "yesterday"],
        "x.csv",
    );
    assert_fails(&o, &["--from", "yesterday"]);
    let o = export(
        dir.path(),
        "parquet",
        "BTCUSDT",
        &["--to", "2022-13-01"],
        "x.pq",
    );
    assert_fails(&o, &["--to", "2022-13-01"]);
    let o = export(
        dir.path(),
        "csv",
        "BTCUSDT",
        &["--from", "2022-01-20", "--to", "2022-01-10"],
        "x.csv",
    );
    assert_fails(&o, &["--from", "--to", "2022-01-20T00:00:00Z"]);
    assert!(outputs(dir.path()).is_empty());
}

#[test]
fn empty_range_fails_and_keeps_the_previous_export() {
    let dir = tempfile::tempdir().unwrap();
    import_bundled(dir.path());
    for (format, out) in [("csv", "btc.csv"), ("parquet", "btc.parquet")] {
        std::fs::write(dir.path().join(out), "previous export").unwrap();
        let o = export(
            dir.path(),
            format,
            "BTCUSDT",
            &["--from", "2023-01-01"],
            out,
        );
        assert_fails(
            &o,
            &[
                "no bars of BTCUSDT 1m",
                "2023-01-01T00:00:00Z",
                "2021-12-31T23:01:00Z to 2022-02-01T05:31:00Z",
            ],
        );
        // The temporary file was written, then removed; the old export is untouched.
        let kept = std::fs::read_to_string(dir.path().join(out)).unwrap();
        assert_eq!(kept, "previous export");
        assert!(!dir.path().join(format!("{out}.tmp")).exists());
    }
}

#[test]
fn unwritable_out_fails_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    import_bundled(dir.path());
    // Paths no one can create, even root: a missing directory, and a regular file used
    // as a directory.
    std::fs::write(dir.path().join("a-file"), "").unwrap();
    for out in ["missing-dir/btc.csv", "a-file/btc.csv"] {
        for format in ["csv", "parquet"] {
            let o = export(dir.path(), format, "BTCUSDT", &[], out);
            assert_fails(&o, &["cannot create", out]);
        }
    }
    // An existing directory as --out.
    std::fs::create_dir(dir.path().join("a-dir")).unwrap();
    let o = export(dir.path(), "csv", "BTCUSDT", &[], "a-dir");
    assert_fails(&o, &["a-dir", "is a directory"]);
    assert_eq!(
        outputs(dir.path()),
        [dir.path().join("a-dir"), dir.path().join("a-file")]
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("a-dir")).unwrap().count(),
        0
    );
}
