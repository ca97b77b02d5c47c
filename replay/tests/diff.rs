//! `replay diff`: a session re-run as a backtest from its own journal matches itself exactly,
//! and every way the recorded venue answered differently (worse prices, missing or partial
//! fills) is listed per order, with the numbers a person can check against the candles.

use std::collections::BTreeMap;
use std::path::Path;

mod common;

use keel_engine::event::{Command, Decision, Event, Mode, OrderKind, SessionStart, Side};
use keel_engine::{
    Candle, Fixed, Interval, SimConfig, StopRule, StrategyConfig, Symbol, TargetRule,
};
use keel_journal::{Journal, JournalError, Options, Reader};
use keel_replay::backtest::BacktestSpec;
use keel_replay::codec::{Decoded, decode};
use keel_replay::diff::{DiffError, Field, FinalStatus, OrderDiff, OrderType, diff, render_text};
use keel_replay::paper::PaperEngine;
use keel_replay::{store, synthetic};

/// The first `n` bundled real bars, as BTCUSDT.
fn real_candles(n: usize) -> Vec<Candle> {
    common::real_candles(Symbol::new("BTCUSDT").unwrap(), n)
}

/// SMA cross 5/20 with the default risk rules, so every entry arms a stop and a target.
fn spec(dir: &Path, candles: &[Candle]) -> BacktestSpec {
    let mut spec = synthetic::spec(
        dir.join("store"),
        dir.join("backtest-journal"),
        candles[0].symbol,
        Interval::parse("1m").unwrap(),
        StrategyConfig::SmaCross { fast: 5, slow: 20 },
        Fixed::parse("0.0004").unwrap(),
        Fixed::parse("0.0001").unwrap(),
    );
    spec.core.risk = keel_engine::RiskConfig::default();
    spec
}

fn options() -> Options {
    Options {
        segment_size: 1 << 20,
        ..Options::default()
    }
}

const KILL_AT: usize = 150;
const RESUME_AT: usize = 160;

/// Records a paper session over `candles` (each received at its close) with the simulated
/// venue `sim`, and a kill switch and a resume part way.
fn record(dir: &Path, spec: &BacktestSpec, sim: SimConfig, candles: &[Candle]) {
    let start = SessionStart {
        mode: Mode::Paper,
        config: spec.core.clone(),
        config_text: "strategy = sma_cross".into(),
    };
    let (mut paper, _) = PaperEngine::open(dir, start, sim, options(), 1).unwrap();
    for (i, c) in candles.iter().enumerate() {
        let close = c.close_time_ns() as u64;
        paper.candle(close, *c, &mut |_| {}).unwrap();
        let command = match i {
            KILL_AT => Some(Command::KillSwitch),
            RESUME_AT => Some(Command::Resume),
            _ => None,
        };
        if let Some(command) = command {
            paper
                .input(close + 1, Event::Command(command), &mut |_| {})
                .unwrap();
        }
    }
    paper.sync().unwrap();
}

fn records(dir: &Path) -> Vec<(u64, u16, u16, Vec<u8>, Decoded)> {
    let mut reader = Reader::open(dir).unwrap();
    let mut out = Vec::new();
    while let Some(rec) = reader.next().unwrap() {
        let decoded = decode(rec.seq, rec.kind, rec.ver, rec.payload).unwrap();
        out.push((rec.ts_ns, rec.kind, rec.ver, rec.payload.to_vec(), decoded));
    }
    out
}

fn with_slippage(spec: &BacktestSpec, slippage: &str) -> SimConfig {
    SimConfig {
        slippage: Fixed::parse(slippage).unwrap(),
        ..spec.sim.clone()
    }
}

fn both(
    d: &OrderDiff,
) -> (
    &keel_replay::diff::OrderOutcome,
    &keel_replay::diff::OrderOutcome,
) {
    (d.recorded.as_ref().unwrap(), d.rerun.as_ref().unwrap())
}

#[test]
fn a_paper_session_diffed_against_its_own_backtest_has_no_differences() {
    let dir = tempfile::tempdir().unwrap();
    let candles = real_candles(1_500);
    let spec = spec(dir.path(), &candles);
    let journal = dir.path().join("paper");
    record(&journal, &spec, spec.sim.clone(), &candles);

    let report = diff(&journal, spec.sim.clone(), &dir.path().join("rerun")).unwrap();
    let lines: Vec<String> = report.differences.iter().map(|d| d.describe()).collect();
    assert!(report.differences.is_empty(), "{lines:#?}");
    assert!(report.orders_recorded > 10, "{}", report.orders_recorded);
    assert_eq!(report.pairs, report.orders_recorded);
    assert_eq!(report.orders_rerun, report.orders_recorded);
    assert_eq!(report.recorded_pnl, report.rerun_pnl);
    assert!(report.recorded_pnl.closed_trades >= 5);
    assert_eq!(report.candles, candles.len());
    let last = candles.last().unwrap();
    assert_eq!(
        report.window,
        (candles[0].open_time_ns, last.close_time_ns())
    );
    let text = render_text(&report);
    let summary = format!("{} orders compared, 0 differ", report.orders_recorded);
    assert!(text.contains(&summary), "{text}");
    // The JSON form carries exact decimals.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["pairs"], report.pairs);
    assert_eq!(
        json["recorded_pnl"]["fees_paid"],
        report.recorded_pnl.fees_paid.to_string()
    );
}

/// The fill price of `o` in `candle` by the simulated venue's published rules (market: the
/// open moved by slippage against the taker; stop: the trigger, or the open when the candle
/// gaps past it, moved the same way).
fn expected_fill(
    o: &keel_replay::diff::OrderOutcome,
    side: Side,
    c: &Candle,
    slip: Fixed,
) -> Fixed {
    let moved = |p: Fixed| match side {
        Side::Buy => p + p.checked_mul(slip).unwrap(),
        Side::Sell => p - p.checked_mul(slip).unwrap(),
    };
    match (o.kind, o.price, side) {
        (OrderType::Market, _, _) => moved(c.open),
        (OrderType::Stop, Some(t), Side::Sell) if c.open <= t => moved(c.open),
        (OrderType::Stop, Some(t), Side::Buy) if c.open >= t => moved(c.open),
        (OrderType::Stop, Some(t), _) => moved(t),
        // A resting target fills at its price, as a maker.
        (OrderType::Limit, Some(p), _) => p,
        other => panic!("no model for {other:?}"),
    }
}

#[test]
fn recorded_slippage_shows_as_exact_price_differences_on_every_market_fill() {
    let dir = tempfile::tempdir().unwrap();
    let candles = real_candles(1_500);
    let by_open: BTreeMap<i64, Candle> = candles.iter().map(|c| (c.open_time_ns, *c)).collect();
    let mut spec = spec(dir.path(), &candles);
    // Stops and targets close enough to be hit within the window.
    spec.core.risk.stop = StopRule::Percent(Fixed::parse("0.003").unwrap());
    spec.core.risk.take_profit = TargetRule::Percent(Fixed::parse("0.006").unwrap());
    let journal = dir.path().join("live-like");
    let slip = Fixed::parse("0.001").unwrap();
    record(&journal, &spec, with_slippage(&spec, "0.001"), &candles);

    // Independently of the program: the recorded market orders that filled.
    let mut market = BTreeMap::new();
    let mut filled_market = std::collections::BTreeSet::new();
    for (_, _, _, _, d) in records(&journal) {
        match d {
            Decoded::Decision(Decision::PlaceOrder(r)) if r.kind == OrderKind::Market => {
                market.insert(r.client_id, r.side);
            }
            Decoded::Input(Event::Fill(f)) if market.contains_key(&f.client_id) => {
                let c = by_open[&f.ts_event_ns];
                let open_slip = c.open.checked_mul(slip).unwrap();
                let expected = match f.side {
                    Side::Buy => c.open + open_slip,
                    Side::Sell => c.open - open_slip,
                };
                assert_eq!(f.price, expected, "recorded fill {f:?}");
                filled_market.insert(f.client_id);
            }
            _ => {}
        }
    }
    assert!(filled_market.len() >= 10, "{}", filled_market.len());

    let report = diff(
        &journal,
        with_slippage(&spec, "0"),
        &dir.path().join("rerun"),
    )
    .unwrap();
    // A stop hit in one run only makes the runs part ways for a while: those orders are in
    // one run only, and reported as such.
    assert!(
        report.pairs + 10 >= report.orders_recorded,
        "{}",
        render_text(&report)
    );
    let mut reported = std::collections::BTreeSet::new();
    let mut market_pairs = 0;
    let mut resting_pairs = [0, 0];
    for d in &report.differences {
        let Some(r) = &d.recorded else {
            continue;
        };
        if r.kind == OrderType::Market && r.fills > 0 {
            reported.insert(r.client_id);
        }
        let Some(b) = &d.rerun else {
            assert_eq!(d.differs, [Field::RecordedOnly]);
            continue;
        };
        assert_eq!(r.kind, b.kind);
        let (Some(r_at), Some(b_at)) = (r.first_fill_ns, b.first_fill_ns) else {
            continue;
        };
        let c = &by_open[&r_at];
        if r.kind == OrderType::Market {
            market_pairs += 1;
            assert_eq!(r_at, b_at, "{}", d.describe());
            let open_slip = c.open.checked_mul(slip).unwrap();
            let expected = match d.key.side {
                Side::Buy => open_slip,
                Side::Sell => -open_slip,
            };
            assert_eq!(d.price_diff, Some(expected), "{}", d.describe());
            assert!(d.differs.contains(&Field::AvgPrice));
            assert!(d.differs.contains(&Field::Fees));
        } else if r_at == b_at && r.fills == 1 && b.fills == 1 {
            resting_pairs[(r.kind == OrderType::Stop) as usize] += 1;
            let expected = expected_fill(r, d.key.side, c, slip)
                - expected_fill(b, d.key.side, c, Fixed::ZERO);
            assert_eq!(d.price_diff, Some(expected), "{}", d.describe());
        }
    }
    // Every filled market order of the recorded session is reported: paired, with its
    // slippage, or as recorded only.
    assert_eq!(reported, filled_market);
    assert!(market_pairs >= 10, "{market_pairs}");
    assert!(
        resting_pairs[0] >= 3 && resting_pairs[1] >= 1,
        "targets, stops filled in the same bar in both runs: {resting_pairs:?}"
    );
    assert!(report.recorded_pnl.realized_pnl < report.rerun_pnl.realized_pnl);
    // JSON: the pairing key spelled out, amounts as exact decimals.
    let json = serde_json::to_value(&report).unwrap();
    let first = &report.differences[0];
    let j = &json["differences"][0];
    assert_eq!(j["key"]["side"], first.key.side.as_str());
    assert!(j["key"]["cause"]["input"].is_string(), "{j}");
    assert_eq!(j["price_diff"], first.price_diff.unwrap().to_string());
    // A market buy filled higher than the backtest's: worse, by 10 bps.
    let line = first.describe();
    assert!(line.contains("+10.00 bps, worse"), "{line}");
    let text = render_text(&report);
    let compared = report.orders_recorded + report.orders_rerun - report.pairs;
    let summary = format!(
        "{compared} orders compared, {} differ",
        report.differences.len()
    );
    assert!(text.contains(&summary), "{text}");
}

#[test]
fn a_recorded_order_missing_its_fill_is_reported_with_its_status_and_quantity() {
    let dir = tempfile::tempdir().unwrap();
    let candles = real_candles(600);
    let spec = spec(dir.path(), &candles);
    let whole = dir.path().join("whole");
    record(&whole, &spec, spec.sim.clone(), &candles);

    // The same journal without the third fill of an entry (a market buy).
    let recs = records(&whole);
    let mut buys = BTreeMap::new();
    let mut seen = 0;
    let mut dropped = None;
    let lossy = dir.path().join("lossy");
    let (mut out, _) = Journal::open(&lossy, options()).unwrap();
    for (ts_ns, kind, ver, payload, d) in &recs {
        match d {
            Decoded::Decision(Decision::PlaceOrder(r))
                if r.kind == OrderKind::Market && r.side == Side::Buy =>
            {
                buys.insert(r.client_id, r.qty);
            }
            Decoded::Input(Event::Fill(f)) if buys.contains_key(&f.client_id) => {
                seen += 1;
                if seen == 3 {
                    dropped = Some(*f);
                    continue;
                }
            }
            _ => {}
        }
        out.append(*ts_ns, *kind, *ver, payload).unwrap();
    }
    out.sync().unwrap();
    drop(out);
    let dropped = dropped.expect("three entries filled");

    let report = diff(&lossy, spec.sim.clone(), &dir.path().join("rerun")).unwrap();
    let lines: Vec<String> = report.differences.iter().map(|d| d.describe()).collect();
    assert_eq!(report.differences.len(), 1, "{lines:#?}");
    let d = &report.differences[0];
    let (r, b) = both(d);
    assert_eq!(r.client_id, dropped.client_id);
    assert_eq!((d.key.side, r.kind), (Side::Buy, OrderType::Market));
    assert_eq!(
        (r.status, r.filled_qty, r.fills),
        (FinalStatus::Open, Fixed::ZERO, 0)
    );
    assert_eq!((b.status, b.filled_qty), (FinalStatus::Filled, dropped.qty));
    assert_eq!(b.avg_price, Some(dropped.price));
    assert_eq!(d.qty_diff, -dropped.qty);
    assert_eq!(d.fees_diff, -dropped.fee);
    assert_eq!(
        d.differs,
        [
            Field::FilledQty,
            Field::AvgPrice,
            Field::FirstFill,
            Field::LastFill,
            Field::Fees,
            Field::Status
        ]
    );
    assert!(lines[0].contains("status open vs filled"), "{}", lines[0]);
    assert!(render_text(&report).contains(&format!(
        "{} orders compared, 1 differ",
        report.orders_recorded
    )));
}

#[test]
fn a_participation_cap_in_the_recorded_session_shows_as_split_and_partial_fills() {
    let dir = tempfile::tempdir().unwrap();
    let candles = real_candles(600);
    let spec = spec(dir.path(), &candles);
    let journal = dir.path().join("capped");
    // One hundred-millionth of a bar's volume: a few thousandths of a BTC per bar here.
    let capped = SimConfig {
        participation: Fixed::from_raw(1),
        ..spec.sim.clone()
    };
    record(&journal, &spec, capped, &candles);
    // Independently: the recorded orders that needed more than one fill.
    let mut fills_per_order: BTreeMap<u64, u32> = BTreeMap::new();
    for (_, _, _, _, d) in records(&journal) {
        if let Decoded::Input(Event::Fill(f)) = d {
            *fills_per_order.entry(f.client_id).or_default() += 1;
        }
    }
    let split: Vec<u64> = fills_per_order
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| *id)
        .collect();
    assert!(split.len() >= 3, "{fills_per_order:?}");

    let report = diff(&journal, spec.sim.clone(), &dir.path().join("rerun")).unwrap();
    let lines: Vec<String> = report.differences.iter().map(|d| d.describe()).collect();
    let recorded_ids: Vec<u64> = report
        .differences
        .iter()
        .filter_map(|d| d.recorded.as_ref().map(|r| r.client_id))
        .collect();
    for id in &split {
        assert!(
            recorded_ids.contains(id),
            "order {id} split, not reported: {lines:#?}"
        );
    }
    for d in &report.differences {
        if let (Some(r), Some(b)) = (&d.recorded, &d.rerun)
            && r.fills > 1
        {
            assert!(d.differs.contains(&Field::LastFill), "{}", d.describe());
            assert_eq!(b.fills, 1, "{}", d.describe());
        }
    }
    // Some order ended differently: unfilled or part filled, or with another status.
    let status_or_qty = report
        .differences
        .iter()
        .filter(|d| d.differs.contains(&Field::Status) || d.differs.contains(&Field::FilledQty))
        .count();
    assert!(status_or_qty >= 1, "{lines:#?}");
}

#[test]
fn a_candle_store_a_corrupt_or_an_empty_journal_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let candles = real_candles(200);
    let spec = spec(dir.path(), &candles);
    let sim = spec.sim.clone();
    let scratch = |name: &str| dir.path().join(format!("scratch-{name}"));

    // A candle store.
    let symbol = candles[0].symbol;
    let interval = Interval::parse("1m").unwrap();
    store::append(&spec.store, symbol, interval, &candles, |t| t.to_string()).unwrap();
    let series = store::series_dir(&spec.store, symbol, interval);
    let err = diff(&series, sim.clone(), &scratch("store")).unwrap_err();
    assert!(matches!(err, DiffError::CandleStore { .. }), "{err}");
    assert!(
        err.to_string().contains(&series.display().to_string()),
        "{err}"
    );

    // A journal with one byte flipped in the middle of its records.
    let journal = dir.path().join("paper");
    record(&journal, &spec, sim.clone(), &candles);
    let segment = std::fs::read_dir(&journal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    let used = bytes.iter().rposition(|b| *b != 0).unwrap();
    bytes[used / 2] ^= 0x40;
    std::fs::write(&segment, &bytes).unwrap();
    let err = diff(&journal, sim.clone(), &scratch("corrupt")).unwrap_err();
    let DiffError::Journal(JournalError::Corrupt {
        segment: named,
        offset,
        ..
    }) = &err
    else {
        panic!("{err}");
    };
    assert_eq!(named, &segment);
    assert!(*offset > 0 && *offset as usize <= used / 2, "{offset}");
    let text = err.to_string();
    assert!(text.contains(&segment.display().to_string()), "{text}");
    assert!(text.contains(&format!("offset {offset}")), "{text}");

    // An empty journal, and a session that never saw a candle.
    let empty = dir.path().join("empty");
    drop(Journal::open(&empty, options()).unwrap());
    let err = diff(&empty, sim.clone(), &scratch("empty")).unwrap_err();
    assert!(matches!(err, DiffError::Empty { .. }), "{err}");
    let bare = dir.path().join("bare");
    record(&bare, &spec, sim.clone(), &[]);
    let err = diff(&bare, sim.clone(), &scratch("bare")).unwrap_err();
    assert!(matches!(err, DiffError::NoCandles { .. }), "{err}");

    // A journal whose beginning is missing.
    let good = dir.path().join("good");
    record(&good, &spec, sim.clone(), &candles[..50]);
    let headless = dir.path().join("headless");
    let (mut out, _) = Journal::open(&headless, options()).unwrap();
    for (ts_ns, kind, ver, payload, _) in records(&good).into_iter().skip(1) {
        out.append(ts_ns, kind, ver, &payload).unwrap();
    }
    out.sync().unwrap();
    drop(out);
    let err = diff(&headless, sim.clone(), &scratch("headless")).unwrap_err();
    assert!(
        matches!(err, DiffError::NoSessionStart { seq: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("record 1 is a candle"), "{err}");

    // A scratch directory that already holds something.
    let err = diff(&good, sim, &bare).unwrap_err();
    assert!(matches!(err, DiffError::ScratchNotEmpty { .. }), "{err}");
}
