//! `keel data import` parsers against real files (tests/fixtures, see NOTICE there) and
//! hand-made broken ones. Expected values come from the raw text, read with plain string
//! splitting and chrono, never from the parser under test.

use std::io::Write;
use std::path::{Path, PathBuf};

use keel::import::{Format, Gap, ImportError, Imported, parse_file, parse_reader};
use keel_engine::{Candle, Interval, Symbol};
use proptest::prelude::*;

const MS: i64 = 1_000_000;
const MINUTE_NS: i64 = 60_000 * MS;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn read_fixture(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap()
}

fn symbol() -> Symbol {
    Symbol::new("BTCUSDT").unwrap()
}

fn interval(text: &str) -> Interval {
    Interval::parse(text).unwrap()
}

fn import_file(name: &str, format: Format, bar: &str) -> Result<Imported, ImportError> {
    parse_file(&fixture(name), format, symbol(), interval(bar))
}

fn import_text(text: &str, format: Format, bar: &str) -> Result<Imported, ImportError> {
    parse_reader(text.as_bytes(), "test.csv", format, symbol(), interval(bar))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// The (line, message) pairs of an `Invalid` error; panics on anything else.
fn problems(result: Result<Imported, ImportError>) -> Vec<(usize, String)> {
    match result {
        Err(ImportError::Invalid { problems, .. }) => {
            problems.into_iter().map(|p| (p.line, p.message)).collect()
        }
        other => panic!("expected ImportError::Invalid, got {other:?}"),
    }
}

/// Asserts exactly one problem, on `line`, whose message contains every one of `words`.
fn assert_one_problem(result: Result<Imported, ImportError>, line: usize, words: &[&str]) {
    let found = problems(result);
    assert_eq!(found.len(), 1, "expected one problem, got {found:#?}");
    assert_eq!(found[0].0, line, "wrong line in {found:?}");
    for w in words {
        assert!(
            found[0].1.contains(w),
            "{:?} should mention {w:?}",
            found[0].1
        );
    }
}

/// Independent reading of a price: f64 from the raw text, compared loosely.
fn assert_price(actual: keel_engine::Fixed, raw: &str) {
    let want: f64 = raw.trim().parse().unwrap();
    assert!(
        (actual.to_f64() - want).abs() <= 1e-8 * want.abs().max(1.0),
        "{actual} != {raw}"
    );
}

/// Asserts a candle against raw `open, high, low, close, volume` text fields.
fn assert_candle(c: &Candle, open_time_ns: i64, ohlcv: &[&str]) {
    assert_eq!(c.open_time_ns, open_time_ns);
    assert_eq!(c.symbol, symbol());
    for (value, raw) in [c.open, c.high, c.low, c.close, c.volume]
        .into_iter()
        .zip(ohlcv)
    {
        assert_price(value, raw);
    }
}

fn pandas_time_ns(text: &str) -> i64 {
    chrono::DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%:z")
        .unwrap()
        .timestamp_nanos_opt()
        .unwrap()
}

fn naive_time_ns(text: &str) -> i64 {
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .unwrap()
        .and_utc()
        .timestamp_nanos_opt()
        .unwrap()
}

/// Lines of a CSV body with a plain split (no CSV library).
fn raw_rows(text: &str) -> Vec<Vec<&str>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').collect())
        .collect()
}

fn check_binance_against_raw(text: &str, imported: &Imported) {
    let rows: Vec<_> = raw_rows(text)
        .into_iter()
        .filter(|r| r[0] != "open_time")
        .collect();
    assert_eq!(imported.rows, rows.len());
    assert_eq!(imported.candles.len(), rows.len());
    for (c, r) in [
        (&imported.candles[0], &rows[0]),
        (imported.candles.last().unwrap(), rows.last().unwrap()),
    ] {
        let raw_time: i64 = r[0].parse().unwrap();
        let ns = if r[0].len() >= 16 {
            raw_time * 1_000
        } else {
            raw_time * MS
        };
        assert_candle(c, ns, &r[1..6]);
    }
}

// ---- Binance kline dumps ----------------------------------------------------------------

#[test]
fn binance_dump_without_header_parses_every_row() {
    for name in ["ADABTC-1m-2021-11-27.csv", "ADABTC-1m-2021-11-28.csv"] {
        let imported = import_file(name, Format::BinanceCsv, "1m").unwrap();
        check_binance_against_raw(&read_fixture(name), &imported);
        assert!(imported.gaps.is_empty());
        assert!(imported.candles.iter().all(|c| c.interval_ns == MINUTE_NS));
    }
    let first = import_file("ADABTC-1m-2021-11-27.csv", Format::BinanceCsv, "1m").unwrap();
    assert_eq!(first.candles[0].open.to_string(), "0.00002853");
    assert_eq!(first.candles[0].volume.to_string(), "36304.2");
}

#[test]
fn binance_header_line_is_optional() {
    let body = read_fixture("ADABTC-1m-2021-11-27.csv");
    let header = "open_time,open,high,low,close,volume,close_time,quote_volume,count,\
                  taker_buy_volume,taker_buy_quote_volume,ignore\n";
    let with_header = format!("{header}{body}");
    let a = import_text(&with_header, Format::BinanceCsv, "1m").unwrap();
    let b = import_text(&body, Format::BinanceCsv, "1m").unwrap();
    assert_eq!(a, b);
    check_binance_against_raw(&with_header, &a);
}

#[test]
fn binance_header_in_the_middle_is_reported() {
    let body = read_fixture("ADABTC-1m-2021-11-27.csv");
    let text = format!("{body}open_time,open,high,low,close,volume,close_time,a,b,c,d,e\n");
    assert_one_problem(
        import_text(&text, Format::BinanceCsv, "1m"),
        11,
        &["header", "concatenated"],
    );
}

/// Spot dumps since 2025-01-01 use microseconds; the unit is told per row by magnitude.
#[test]
fn binance_microsecond_timestamps_are_detected_per_row() {
    let body = read_fixture("ADABTC-1m-2021-11-27.csv");
    let micros: String = raw_rows(&body)
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut r: Vec<String> = r.iter().map(|f| f.to_string()).collect();
            // Odd rows in µs, even rows left in ms: a mixed file must still line up.
            if i % 2 == 1 {
                r[0] += "000";
                r[6] += "999";
                r[6] = (r[6].parse::<i64>().unwrap() / 1000 * 1000 + 999).to_string();
            }
            r.join(",") + "\n"
        })
        .collect();
    let imported = import_text(&micros, Format::BinanceCsv, "1m").unwrap();
    let plain = import_file("ADABTC-1m-2021-11-27.csv", Format::BinanceCsv, "1m").unwrap();
    assert_eq!(imported.candles, plain.candles);
    check_binance_against_raw(&micros, &imported);
}

#[test]
fn binance_wrong_interval_is_caught_by_close_time() {
    let found = problems(import_file(
        "ADABTC-1m-2021-11-27.csv",
        Format::BinanceCsv,
        "5m",
    ));
    assert_eq!(found.len(), 10, "one problem per row: {found:#?}");
    assert_eq!(found[0].0, 1);
    assert!(
        found[0].1.contains("close_time 1637971259999"),
        "{}",
        found[0].1
    );
    assert!(found[0].1.contains("1m long"), "{}", found[0].1);
    assert!(found[9].0 == 10);
}

#[test]
fn binance_row_with_wrong_column_count_names_the_line() {
    let mut lines: Vec<String> = read_fixture("ADABTC-1m-2021-11-27.csv")
        .lines()
        .map(String::from)
        .collect();
    lines[3] = lines[3].rsplit_once(',').unwrap().0.to_string();
    let text = lines.join("\n");
    assert_one_problem(
        import_text(&text, Format::BinanceCsv, "1m"),
        4,
        &["expected 12 columns", "found 11"],
    );
}

// ---- freqtrade JSON ---------------------------------------------------------------------

/// `[[a, b, ...], [...]]` split by hand.
fn raw_json_rows(text: &str) -> Vec<Vec<String>> {
    let inner = text.trim().trim_start_matches("[[").trim_end_matches("]]");
    inner
        .split("], [")
        .map(|r| r.split(',').map(|f| f.trim().to_string()).collect())
        .collect()
}

fn check_freqtrade_against_raw(text: &str, imported: &Imported) {
    let rows = raw_json_rows(text);
    assert_eq!(imported.rows, rows.len());
    for (c, r) in [
        (&imported.candles[0], &rows[0]),
        (imported.candles.last().unwrap(), rows.last().unwrap()),
    ] {
        let ms: i64 = r[0].parse().unwrap();
        let fields: Vec<&str> = r[1..6].iter().map(String::as_str).collect();
        assert_candle(c, ms * MS, &fields);
    }
}

#[test]
fn freqtrade_json_parses_every_element() {
    let text = read_fixture("UNITTEST_BTC-1m.json");
    let imported = import_file("UNITTEST_BTC-1m.json", Format::FreqtradeJson, "1m").unwrap();
    check_freqtrade_against_raw(&text, &imported);
    assert_eq!(imported.candles.len(), text.matches("], [").count() + 1);
    // Gaps, counted independently from the raw times.
    let times: Vec<i64> = raw_json_rows(&text)
        .iter()
        .map(|r| r[0].parse().unwrap())
        .collect();
    let raw_gaps: Vec<Gap> = times
        .windows(2)
        .filter(|w| w[1] - w[0] > 60_000)
        .map(|w| Gap {
            after_open_time_ns: w[0] * MS,
            missing_bars: ((w[1] - w[0]) / 60_000 - 1) as u64,
        })
        .collect();
    assert!(!raw_gaps.is_empty());
    assert_eq!(imported.gaps, raw_gaps);
}

#[test]
fn freqtrade_json_gz_is_decompressed_and_float_artifacts_round_to_8_decimals() {
    let gz = std::fs::read(fixture("XRP_USDT_USDT-1h-futures.json.gz")).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut text).unwrap();
    let imported = import_file(
        "XRP_USDT_USDT-1h-futures.json.gz",
        Format::FreqtradeJson,
        "1h",
    )
    .unwrap();
    assert_eq!(imported.rows, text.matches("],[").count() + 1);
    let rows: Vec<Vec<String>> = text
        .trim()
        .trim_start_matches("[[")
        .trim_end_matches("]]")
        .split("],[")
        .map(|r| r.split(',').map(String::from).collect())
        .collect();
    assert_eq!(rows[1][5], "2697616.0709080002");
    assert_eq!(imported.candles[1].volume.to_string(), "2697616.070908");
    let last = imported.candles.last().unwrap();
    let raw_last = rows.last().unwrap();
    let fields: Vec<&str> = raw_last[1..6].iter().map(String::as_str).collect();
    assert_candle(last, raw_last[0].parse::<i64>().unwrap() * MS, &fields);
}

#[test]
fn freqtrade_problems_name_the_element_and_its_line() {
    let text = "[\n[1637971200000, 1, 2, 0.5, 1.5, 10],\n[1637971260000, 1, 2, 0.5],\n\
                [1637971320000, 1, 2, 0.5, x, 10],\n[1637971380000, 1, 0.1, 0.5, 1, 10]\n]";
    let found = problems(import_text(text, Format::FreqtradeJson, "1m"));
    assert_eq!(found.len(), 3, "{found:#?}");
    assert_eq!(found[0].0, 3);
    assert!(found[0].1.contains("element 1") && found[0].1.contains("found 4"));
    assert_eq!(found[1].0, 4);
    assert!(found[1].1.contains("element 2") && found[1].1.contains("`close`"));
    assert!(found[1].1.contains("`x`"));
    assert_eq!(found[2].0, 5);
    assert!(found[2].1.contains("high 0.1 is below low 0.5"));
}

#[test]
fn freqtrade_truncated_file_is_a_syntax_problem() {
    let text = "[[1637971200000, 1, 2, 0.5, 1.5, 10],\n [1637971260000, 1, 2";
    let found = problems(import_text(text, Format::FreqtradeJson, "1m"));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, 2);
    assert!(found[0].1.contains("truncated"), "{}", found[0].1);
}

#[test]
fn freqtrade_seconds_instead_of_ms_is_rejected() {
    let text = "[[1637971200, 1, 2, 0.5, 1.5, 10]]";
    assert_one_problem(
        import_text(text, Format::FreqtradeJson, "1m"),
        1,
        &["element 0", "not milliseconds"],
    );
}

// ---- plain CSV with a header -------------------------------------------------------------

#[test]
fn plain_csv_from_pandas_with_offsets_parses_and_reports_gaps() {
    let text = read_fixture("XRP_ETH-1m.csv");
    let imported = import_file("XRP_ETH-1m.csv", Format::Csv, "1m").unwrap();
    let rows = raw_rows(&text);
    assert_eq!(rows[0][0], "date");
    let data = &rows[1..];
    assert_eq!(imported.rows, data.len());
    assert_candle(
        &imported.candles[0],
        pandas_time_ns(data[0][0]),
        &data[0][1..6],
    );
    let last = data.last().unwrap();
    assert_candle(
        imported.candles.last().unwrap(),
        pandas_time_ns(last[0]),
        &last[1..6],
    );
    let times: Vec<i64> = data.iter().map(|r| pandas_time_ns(r[0])).collect();
    let missing: u64 = times
        .windows(2)
        .map(|w| ((w[1] - w[0]) / MINUTE_NS - 1) as u64)
        .sum();
    let reported: u64 = imported.gaps.iter().map(|g| g.missing_bars).sum();
    assert!(missing > 0);
    assert_eq!(reported, missing);
    assert_eq!(
        imported.gaps[0].after_open_time_ns,
        pandas_time_ns(data[2][0])
    );
}

#[test]
fn plain_csv_5m_file_needs_5m_interval() {
    let imported = import_file("XRP_ETH-5m.csv", Format::Csv, "5m").unwrap();
    assert_eq!(
        imported.rows,
        read_fixture("XRP_ETH-5m.csv").lines().count() - 1
    );
    let found = problems(import_file("XRP_ETH-5m.csv", Format::Csv, "1m"));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].1.contains("no two rows are 1m apart"),
        "{}",
        found[0].1
    );
    assert!(found[0].1.contains("5m apart"), "{}", found[0].1);
}

#[test]
fn plain_csv_with_naive_timestamps_is_utc() {
    let name = "btc-perp-20211231-first200_1m.csv";
    let text = read_fixture(name);
    let imported = import_file(name, Format::Csv, "1m").unwrap();
    let rows = raw_rows(&text);
    let data = &rows[1..];
    assert_eq!(imported.rows, 200);
    assert_eq!(data.len(), 200);
    assert_candle(
        &imported.candles[0],
        naive_time_ns(data[0][0]),
        &data[0][1..6],
    );
    let last = data.last().unwrap();
    assert_candle(
        imported.candles.last().unwrap(),
        naive_time_ns(last[0]),
        &last[1..6],
    );
    assert_eq!(imported.candles[0].open.to_string(), "46319");
}

#[test]
fn plain_csv_columns_are_found_by_name_in_any_order_and_case() {
    let text = "Close,VOLUME,extra,open,Timestamp,low,high\n\
                2,5,x,1,2022-01-01T00:00:00Z,0.5,3\n\
                3,6,y,2,2022-01-01T00:01:00+00:00,1,4\n";
    let imported = import_text(text, Format::Csv, "1m").unwrap();
    let c = &imported.candles[1];
    assert_eq!(c.open_time_ns, 1_640_995_260 * 1_000_000_000);
    let values: Vec<String> = [c.open, c.high, c.low, c.close, c.volume]
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(values, ["2", "4", "1", "3", "6"]);
}

#[test]
fn plain_csv_volume_is_optional_and_defaults_to_zero() {
    let text = "date,open,high,low,close\n2021-12-30,1,2,0.5,1.5\n2021-12-31,1,2,0.5,1.5\n";
    let imported = import_text(text, Format::Csv, "1d").unwrap();
    assert_eq!(imported.candles.len(), 2);
    assert!(imported.candles.iter().all(|c| c.volume.is_zero()));
}

#[test]
fn plain_csv_epoch_numbers_in_any_unit() {
    let jan1_s = 1_640_995_200i64;
    for (unit, scale) in [
        ("s", 1i64),
        ("ms", 1_000),
        ("us", 1_000_000),
        ("ns", 1_000_000_000),
    ] {
        let text = format!(
            "ts,open,high,low,close,volume\n{},1,2,0.5,1.5,1\n{},1,2,0.5,1.5,1\n",
            jan1_s * scale,
            (jan1_s + 60) * scale
        );
        let imported = import_text(&text, Format::Csv, "1m").unwrap();
        assert_eq!(
            imported.candles[0].open_time_ns,
            jan1_s * 1_000_000_000,
            "{unit}"
        );
    }
}

#[test]
fn plain_csv_without_a_header_is_explained() {
    let text = read_fixture("ADABTC-1m-2021-11-27.csv");
    assert_one_problem(
        import_text(&text, Format::Csv, "1m"),
        1,
        &["no time column", "binance-csv"],
    );
}

// ---- validation rules, one hand-made file each ------------------------------------------

const HEADER: &str = "time,open,high,low,close,volume\n";

fn csv_rows(rows: &[&str]) -> String {
    HEADER.to_string() + &rows.join("\n") + "\n"
}

#[test]
fn unparsable_field_names_column_text_and_line() {
    let text = csv_rows(&[
        "2022-01-01T00:00:00Z,1,2,0.5,1.5,10",
        "2022-01-01T00:01:00Z,1,2,abc,1.5,10",
    ]);
    assert_one_problem(
        import_text(&text, Format::Csv, "1m"),
        3,
        &["`low`", "`abc`"],
    );
    let text = csv_rows(&[
        "2022-01-01T00:00:00Z,1,2,0.5,1.5,10",
        "yesterday,1,2,0.5,1.5,10",
    ]);
    assert_one_problem(
        import_text(&text, Format::Csv, "1m"),
        3,
        &["`time`", "`yesterday`"],
    );
}

#[test]
fn wrong_column_count_names_the_line() {
    let text = csv_rows(&[
        "2022-01-01T00:00:00Z,1,2,0.5,1.5,10",
        "2022-01-01T00:01:00Z,1,2",
    ]);
    assert_one_problem(
        import_text(&text, Format::Csv, "1m"),
        3,
        &["expected 6 columns", "found 3"],
    );
}

#[test]
fn broken_bar_invariants_name_the_line() {
    let text = csv_rows(&[
        "2022-01-01T00:00:00Z,1,2,0.5,1.5,10",
        "2022-01-01T00:01:00Z,1,2,0.5,1.5,10",
        "2022-01-01T00:02:00Z,1,0.4,0.5,0.45,10",
        "2022-01-01T00:03:00Z,3,2,0.5,1.5,10",
        "2022-01-01T00:04:00Z,1,2,0.5,1.5,-1",
    ]);
    let found = problems(import_text(&text, Format::Csv, "1m"));
    let lines: Vec<usize> = found.iter().map(|p| p.0).collect();
    assert_eq!(lines, [4, 5, 6], "{found:#?}");
    assert!(found[0].1.contains("high 0.4 is below low 0.5"));
    assert!(found[1].1.contains("open 3 is outside"));
    assert!(found[2].1.contains("volume -1 is negative"));
}

#[test]
fn out_of_order_rows_name_the_line() {
    let text = csv_rows(&[
        "2022-01-01T00:00:00Z,1,2,0.5,1.5,10",
        "2022-01-01T00:02:00Z,1,2,0.5,1.5,10",
        "2022-01-01T00:01:00Z,1,2,0.5,1.5,10",
    ]);
    assert_one_problem(
        import_text(&text, Format::Csv, "1m"),
        4,
        &["out of order", "line 3"],
    );
}

#[test]
fn duplicate_time_names_both_lines() {
    let text = csv_rows(&[
        "2022-01-01T00:00:00Z,1,2,0.5,1.5,10",
        "2022-01-01T00:01:00Z,1,2,0.5,1.5,10",
        "2022-01-01T00:01:00Z,1,2,0.5,1.5,10",
    ]);
    assert_one_problem(
        import_text(&text, Format::Csv, "1m"),
        4,
        &["duplicate time 2022-01-01T00:01:00Z", "line 3"],
    );
}

#[test]
fn misaligned_time_names_the_line_and_suggests_interval() {
    let text = csv_rows(&[
        "2022-01-01T00:00:00Z,1,2,0.5,1.5,10",
        "2022-01-01T00:05:00Z,1,2,0.5,1.5,10",
        "2022-01-01T00:10:00Z,1,2,0.5,1.5,10",
    ]);
    assert!(import_text(&text, Format::Csv, "5m").is_ok());
    let found = problems(import_text(&text, Format::Csv, "1h"));
    let lines: Vec<usize> = found.iter().map(|p| p.0).collect();
    assert_eq!(lines, [3, 4], "{found:#?}");
    assert!(
        found[0].1.contains("not on a 1h bar boundary"),
        "{}",
        found[0].1
    );
    assert!(found[0].1.contains("--interval"), "{}", found[0].1);
}

#[test]
fn spacing_not_a_multiple_of_the_interval_is_reported_on_the_row() {
    let text = csv_rows(&[
        "2022-01-01T00:00:00Z,1,2,0.5,1.5,10",
        "2022-01-01T00:01:00Z,1,2,0.5,1.5,10",
        "2022-01-01T00:02:30Z,1,2,0.5,1.5,10",
    ]);
    assert_one_problem(
        import_text(&text, Format::Csv, "1m"),
        4,
        &["90s after line 3", "not a whole number of 1m bars"],
    );
}

#[test]
fn gaps_are_returned_not_rejected() {
    let text = csv_rows(&[
        "2022-01-01T00:00:00Z,1,2,0.5,1.5,10",
        "2022-01-01T00:01:00Z,1,2,0.5,1.5,10",
        "2022-01-01T00:05:00Z,1,2,0.5,1.5,10",
        "2022-01-01T00:06:00Z,1,2,0.5,1.5,10",
    ]);
    let imported = import_text(&text, Format::Csv, "1m").unwrap();
    assert_eq!(imported.candles.len(), 4);
    assert_eq!(
        imported.gaps,
        [Gap {
            after_open_time_ns: 1_640_995_260 * 1_000_000_000,
            missing_bars: 3
        }]
    );
}

#[test]
fn many_problems_report_the_first_20_and_count_the_rest() {
    let rows: Vec<String> = (0..25)
        .map(|i| format!("2022-01-01T00:{i:02}:00Z,1,2,0.5,bad{i},10"))
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let err = import_text(&csv_rows(&rows), Format::Csv, "1m").unwrap_err();
    let ImportError::Invalid {
        problems, total, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(problems.len(), 20);
    assert_eq!(*total, 25);
    assert_eq!(problems[19].line, 21);
    let shown = err.to_string();
    assert!(shown.contains("and 5 more"), "{shown}");
    assert!(
        shown.contains("test.csv:line 2: column `close`: `bad0`"),
        "{shown}"
    );
}

// ---- input handling ---------------------------------------------------------------------

#[test]
fn gz_input_is_detected_by_magic_bytes_for_every_format() {
    for (name, format, bar) in [
        ("ADABTC-1m-2021-11-28.csv", Format::BinanceCsv, "1m"),
        ("UNITTEST_BTC-1m.json", Format::FreqtradeJson, "1m"),
        ("XRP_ETH-5m.csv", Format::Csv, "5m"),
    ] {
        let plain = std::fs::read(fixture(name)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        // No .gz suffix on purpose: detection is by content.
        let path = dir.path().join(name);
        std::fs::write(&path, gzip(&plain)).unwrap();
        let from_gz = parse_file(&path, format, symbol(), interval(bar)).unwrap();
        let from_plain = import_file(name, format, bar).unwrap();
        assert_eq!(from_gz, from_plain, "{name}");
    }
}

#[test]
fn missing_file_says_cannot_read_and_names_it() {
    let err = import_file("no-such-file.csv", Format::Csv, "1m").unwrap_err();
    assert!(matches!(err, ImportError::Io { .. }));
    let shown = err.to_string();
    assert!(shown.starts_with("cannot read "), "{shown}");
    assert!(
        shown.contains("no-such-file.csv: No such file or directory"),
        "{shown}"
    );
    assert!(shown.contains("check the path"), "{shown}");
}

#[test]
fn empty_inputs_are_clear_errors() {
    for (text, format) in [
        ("", Format::Csv),
        ("", Format::BinanceCsv),
        (HEADER, Format::Csv),
        ("\n\n", Format::BinanceCsv),
        ("[]", Format::FreqtradeJson),
        (" [ ] \n", Format::FreqtradeJson),
    ] {
        let err = import_text(text, format, "1m").unwrap_err();
        assert!(
            matches!(err, ImportError::Empty { .. }),
            "{text:?}: {err:?}"
        );
        assert!(
            err.to_string().contains("test.csv holds no candles"),
            "{err}"
        );
    }
    let gz_empty = gzip(b"");
    let err = parse_reader(&gz_empty[..], "x.gz", Format::Csv, symbol(), interval("1m"));
    assert!(matches!(err, Err(ImportError::Empty { .. })), "{err:?}");
}

#[test]
fn zip_archives_are_refused_with_advice() {
    let err = import_text("PK\u{3}\u{4}rest", Format::BinanceCsv, "1m").unwrap_err();
    assert!(matches!(err, ImportError::Zip { .. }));
    assert!(err.to_string().contains("unzip it"), "{err}");
}

#[test]
fn byte_order_mark_is_ignored() {
    let text = format!("\u{feff}{}", read_fixture("XRP_ETH-5m.csv"));
    let a = import_text(&text, Format::Csv, "5m").unwrap();
    let b = import_file("XRP_ETH-5m.csv", Format::Csv, "5m").unwrap();
    assert_eq!(a, b);
}

#[test]
fn format_names_round_trip() {
    for f in Format::ALL {
        assert_eq!(f.to_string().parse::<Format>(), Ok(f));
    }
    assert_eq!("binance-csv".parse(), Ok(Format::BinanceCsv));
    assert_eq!("freqtrade-json".parse(), Ok(Format::FreqtradeJson));
    assert_eq!("csv".parse(), Ok(Format::Csv));
    assert!(
        "parquet"
            .parse::<Format>()
            .unwrap_err()
            .contains("binance-csv")
    );
}

/// A year of 1m bars (525,600 rows) in Binance layout; timed only in release builds.
#[test]
fn parses_a_year_of_1m_bars() {
    let start_ms = 1_640_995_200_000i64;
    let mut text = String::with_capacity(525_600 * 110);
    for i in 0..525_600i64 {
        let t = start_ms + i * 60_000;
        text += &format!(
            "{t},46319.1,46385.2,46319.0,46377.5,2300.7295,{},1.0,79,1.0,1.0,0\n",
            t + 59_999
        );
    }
    // Correctness at scale only: speed is measured by `cargo bench`, never asserted here.
    let imported = import_text(&text, Format::BinanceCsv, "1m").unwrap();
    assert_eq!(imported.candles.len(), 525_600);
    assert!(imported.gaps.is_empty());
}

// ---- no input makes a parser panic ------------------------------------------------------

fn parse_all_formats(bytes: &[u8]) {
    for format in Format::ALL {
        for bar in ["1m", "1w"] {
            let _ = parse_reader(bytes, "fuzz", format, symbol(), interval(bar));
        }
    }
}

fn valid_samples() -> Vec<Vec<u8>> {
    vec![
        read_fixture("ADABTC-1m-2021-11-27.csv").into_bytes(),
        read_fixture("btc-perp-20211231-first200_1m.csv")
            .lines()
            .take(8)
            .collect::<Vec<_>>()
            .join("\n")
            .into_bytes(),
        b"[[1509836520000, 0.00162008, 0.00162008, 0.00162008, 0.00162008, 108.14853839], \
          [1509836580000, 0.00161, 0.00161, 0.00161, 0.00161, 82.390199]]"
            .to_vec(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        parse_all_formats(&bytes);
        let mut gz = vec![0x1f, 0x8b];
        gz.extend_from_slice(&bytes);
        parse_all_formats(&gz);
    }

    #[test]
    fn mutated_valid_files_never_panic(
        which in 0usize..3,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut bytes = valid_samples().swap_remove(which);
        for (at, byte, op) in edits {
            if bytes.is_empty() {
                bytes.push(byte);
                continue;
            }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => { bytes.remove(i); }
                _ => bytes.insert(i, b"0123456789,.-:[] \nTZe+"[usize::from(byte) % 22]),
            }
        }
        parse_all_formats(&bytes);
        parse_all_formats(&gzip(&bytes));
    }
}

#[test]
fn crlf_files_report_the_same_line_numbers_as_lf_files() {
    let lf = "time,open,high,low,close,volume\n\
              2022-01-01T00:00:00Z,1,2,0.5,1.5,10\n\
              2022-01-01T00:01:00Z,1,2,0.5,1.5,10\n\
              2022-01-01T00:02:00Z,1.5,abc,1,1.2,10\n";
    let crlf = lf.replace('\n', "\r\n");
    for text in [lf.to_string(), crlf] {
        let err = parse_reader(
            text.as_bytes(),
            "f.csv",
            Format::Csv,
            symbol(),
            interval("1m"),
        )
        .unwrap_err();
        let ImportError::Invalid { problems, .. } = err else {
            panic!("expected Invalid, got {err}")
        };
        assert_eq!(problems[0].line, 4, "{:?}", problems[0]);
    }
}
